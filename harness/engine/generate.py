"""Text generation on the native engine: prefill the prompt, then decode one token at a time,
greedy by default (temperature sampling when asked), stopping at an end-of-generation token.

Timings follow llama.cpp's (llama_perf_context_print): "prompt eval" is the prefill of the prompt,
which also yields the first generated token; "eval" is the decode steps after it, one per further
generated token. tokens/s = tokens / seconds of each.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from harness.engine.session import Session
from harness.errors import UsageError


@dataclass
class Generation:
    prompt_ids: list[int]
    ids: list[int] = field(default_factory=list)        # generated, the end-of-generation token included
    prompt_seconds: float = 0.0
    eval_seconds: float = 0.0
    stop: str = "length"                                 # "length" or "eog"

    @property
    def prompt_tps(self) -> float:
        return len(self.prompt_ids) / self.prompt_seconds if self.prompt_seconds > 0 else float("nan")

    @property
    def n_eval(self) -> int:
        """Decode steps: every generated token after the first comes from one."""
        return max(0, len(self.ids) - 1)

    @property
    def gen_tps(self) -> float:
        return self.n_eval / self.eval_seconds if self.eval_seconds > 0 else float("nan")


def sample(logits: np.ndarray, temp: float, rng: np.random.Generator) -> int:
    """Greedy at temp 0; else a draw from softmax(logits / temp)."""
    if temp <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temp
    p = np.exp(z - z.max())
    return int(rng.choice(p.size, p=p / p.sum()))


def check_request(prompt_ids: list[int], n_predict: int, ctx: int) -> None:
    """UsageError for an empty prompt, nothing to generate, or more than the context holds (the
    last generated token is never run, so prompt + n_predict - 1 positions)."""
    if not prompt_ids:
        raise UsageError("the prompt has no tokens (give some text, or a file whose tokenizer adds BOS)")
    if n_predict < 1:
        raise UsageError(f"-n must be at least 1, got {n_predict}")
    if len(prompt_ids) + n_predict - 1 > ctx:
        raise UsageError(f"context overflow: {len(prompt_ids)} prompt tokens + {n_predict} to generate "
                         f"> ctx {ctx}")


def generate(session: Session, prompt_ids: list[int], n_predict: int, temp: float = 0.0, seed: int = 0,
             eog_ids=(), on_token=None) -> Generation:
    """Up to n_predict tokens after prompt_ids (the session starts empty); on_token(id) as each comes."""
    check_request(prompt_ids, n_predict, session.ctx)
    session.reset()
    g = Generation(list(prompt_ids))
    rng = np.random.default_rng(seed)
    eog = set(eog_ids)

    def step(tokens) -> tuple[int, float]:
        t0 = time.perf_counter()
        if temp <= 0:
            nxt = int(session.prefill_top1(tokens, all_positions=False)[0])
        else:
            nxt = sample(session.prefill(tokens, all_logits=False), temp, rng)
        return nxt, time.perf_counter() - t0

    nxt, g.prompt_seconds = step(prompt_ids)
    while True:              # the callback's time (printing) is not the engine's: only steps count
        g.ids.append(nxt)
        if on_token is not None:
            on_token(nxt)
        if nxt in eog:
            g.stop = "eog"
            break
        if len(g.ids) == n_predict:
            break
        nxt, dt = step([nxt])
        g.eval_seconds += dt
    return g

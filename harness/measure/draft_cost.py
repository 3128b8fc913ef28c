"""The cost model of MTP speculative decoding (harness.engine.speculative), measured.

With K drafts a step, each accepted with probability a independently of the others (the model of
Leviathan et al. 2023, "Fast Inference from Transformers via Speculative Decoding", eq. 1), a step
yields
    E[tokens] = 1 + a + ... + a^K = (1 - a^(K+1)) / (1 - a)
and takes
    E[seconds] = K t_mtp + t_save + t_verify(K) + sum_{n<K} a^n (1 - a) (t_restore + t_rerun(n))
where t_mtp is one MTP draft step, t_verify(K) a (K+1)-token trunk forward with every row's
logits, t_save / t_restore the trunk's checkpoint (recurrent state), and t_rerun(n) the (n+1)-token forward
without logits that rebuilds the state after n accepted drafts (a rejection). Plain greedy
decoding makes 1 / t_decode tokens a second; speculation pays off above the acceptance where the
two are equal (break_even).

Each time is the median of `repetitions` runs from the same saved context of `depth` tokens.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from harness.engine.session import Session
from harness.errors import UsageError
from harness.model.loader import Model


@dataclass
class DraftCost:
    model: str
    depth: int
    threads: int
    isa: str
    t_decode: float                      # seconds of one plain greedy step
    t_mtp: float                         # one MTP draft step
    t_save: float
    t_restore: float
    t_verify: dict[int, float] = field(default_factory=dict)     # K -> (K+1)-token forward, all logits
    t_rerun: dict[int, float] = field(default_factory=dict)      # n -> (n+1)-token forward, no logits

    @property
    def plain_tps(self) -> float:
        return 1.0 / self.t_decode

    @staticmethod
    def tokens_per_step(k: int, a: float) -> float:
        return float(k + 1) if a >= 1.0 else (1.0 - a ** (k + 1)) / (1.0 - a)

    def seconds_per_step(self, k: int, a: float) -> float:
        rewind = sum(a ** n * (1.0 - a) * (self.t_restore + self.t_rerun[n]) for n in range(k))
        return k * self.t_mtp + self.t_save + self.t_verify[k] + rewind

    def effective_tps(self, k: int, a: float) -> float:
        return self.tokens_per_step(k, a) / self.seconds_per_step(k, a)

    def break_even(self, k: int) -> float | None:
        """The acceptance above which K drafts a step beat plain decoding (None: never, in [0, 1])."""
        lo, hi = 0.0, 1.0
        if self.effective_tps(k, hi) <= self.plain_tps:
            return None
        if self.effective_tps(k, lo) >= self.plain_tps:
            return 0.0
        for _ in range(50):                 # effective_tps rises with a: bisect
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.effective_tps(k, mid) < self.plain_tps else (lo, mid)
        return hi

    def as_dict(self) -> dict:
        d = asdict(self)
        d["t_verify"] = {str(k): v for k, v in self.t_verify.items()}
        d["t_rerun"] = {str(k): v for k, v in self.t_rerun.items()}
        d["plain_tps"] = self.plain_tps
        d["break_even"] = {str(k): self.break_even(k) for k in self.t_verify}
        return d


def _median_seconds(fn, setup, repetitions: int) -> float:
    """Median wall time of fn() over repetitions, setup() (untimed) before each; one untimed warm-up."""
    times = []
    for i in range(repetitions + 1):
        setup()
        t0 = time.perf_counter()
        fn()
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_draft_cost(model: Model, ks=(1, 2, 3, 4), depth: int = 64, threads: int = 2, repetitions: int = 5,
                       isa: str = "auto", seed: int = 0) -> DraftCost:
    """Time every term of the cost model at a context of `depth` random tokens."""
    ks = sorted(set(int(k) for k in ks))
    if not ks or ks[0] < 1:
        raise UsageError("draft sizes must be >= 1")
    if depth < 1:
        raise UsageError("the depth must be at least 1 token (the MTP block needs a trunk row)")
    V, E = model.config.vocab_size, model.config.n_embd
    rng = np.random.default_rng([seed, 7])
    context = rng.integers(0, V, depth).tolist()
    step_tokens = rng.integers(0, V, max(ks) + 1).tolist()
    ctx = depth + max(ks) + 2
    with Session(model, isa=isa, threads=threads, ctx=ctx) as s, \
            Session(model, isa=isa, threads=threads, ctx=ctx, block="mtp") as ms:
        _, hidden = s.forward_hidden(context, logits="none")
        base = s.save_state()
        restore = lambda: s.restore_state(base)     # noqa: E731
        h_prev = np.vstack([np.zeros((1, E), np.float32), hidden[:-1]])
        ms.forward_hidden(context, h_in=h_prev, logits="none")
        h_last = hidden[-1:].copy()
        point = s.checkpoint()
        cost = DraftCost(
            model=model.name, depth=depth, threads=threads, isa=s.isa,
            t_decode=_median_seconds(lambda: s.decode_top1(step_tokens[0]), restore, repetitions),
            t_mtp=_median_seconds(lambda: ms.forward_hidden(step_tokens[:1], h_in=h_last, logits="last"),
                                  lambda: ms.truncate(depth), repetitions),
            t_save=_median_seconds(s.checkpoint, restore, repetitions),
            t_restore=_median_seconds(lambda: s.rewind(point), lambda: None, repetitions))
        for k in ks:
            toks = step_tokens[:k + 1]
            cost.t_verify[k] = _median_seconds(lambda: s.forward_hidden(toks, logits="all"), restore, repetitions)
        for n in range(max(ks)):
            toks = step_tokens[:n + 1]
            cost.t_rerun[n] = _median_seconds(lambda: s.forward_hidden(toks, logits="none"), restore, repetitions)
    return cost


def format_draft_cost(cost: DraftCost, points=(0.0, 0.5, 0.7, 0.9, 1.0), measured: list[dict] | None = None) -> str:
    """The measured terms and the effective tokens/s at a few acceptance rates, as markdown."""
    ms = lambda x: f"{1000 * x:.2f} ms"     # noqa: E731
    lines = [f"MTP drafting cost on {cost.model}: depth {cost.depth}, {cost.threads} threads, {cost.isa}",
             f"  plain greedy step {ms(cost.t_decode)} ({cost.plain_tps:.2f} tokens/s); MTP draft step "
             f"{ms(cost.t_mtp)}; state save {ms(cost.t_save)}, restore {ms(cost.t_restore)}", "",
             "| K | verify (K+1 tokens) | / plain step | " + " | ".join(f"t/s at a={a:g}" for a in points) +
             " | break-even a |",
             "|---:|---:|---:|" + "---:|" * len(points) + "---:|"]
    for k in sorted(cost.t_verify):
        be = cost.break_even(k)
        lines.append(f"| {k} | {ms(cost.t_verify[k])} | {cost.t_verify[k] / cost.t_decode:.2f} | " +
                     " | ".join(f"{cost.effective_tps(k, a):.2f}" for a in points) +
                     f" | {'never' if be is None else f'{be:.2f}'} |")
    for m in measured or []:
        lines.append(f"measured: K={m['k']}: acceptance {m['acceptance']:.2f}, {m['gen_tps']:.2f} tokens/s "
                     f"(the model predicts {cost.effective_tps(m['k'], m['acceptance']):.2f})")
    return "\n".join(lines)

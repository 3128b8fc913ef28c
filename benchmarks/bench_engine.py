"""Prompt processing and token generation on a synthetic model, per quant type, fdn threshold,
vocab strategy and ISA variant. Each benchmark times a fixed number of tokens: divide by it
for the time per token (time_pp64 / 64, time_tg16 / 16)."""
from __future__ import annotations

import os

import numpy as np

from harness.errors import UsageError

from .common import (FDN_THRESHOLDS, ISAS, PRESET, QUANTS, THREADS, VOCAB_STRATEGIES, Session, load_model,
                     require_isa, synthesize)

N_PROMPT = 64
N_GEN = 16


class _EngineBench:
    params = (QUANTS, FDN_THRESHOLDS, VOCAB_STRATEGIES, ISAS)
    param_names = ["quant", "fdn", "vocab", "isa"]
    number = 1                   # one whole pass per sample
    repeat = (3, 10, 10.0)
    warmup_time = 0.0            # setup runs an explicit warm-up pass
    timeout = 300

    def setup_cache(self):
        """Every quant type's model, written once per environment and commit (asv's cache dir)."""
        paths = {}
        for q in QUANTS:
            paths[q] = os.path.abspath(f"{PRESET}-{q}.gguf")
            synthesize(PRESET, q, paths[q], seed=0)
        return paths

    setup_cache.timeout = 1800

    def setup(self, paths, quant, fdn, vocab, isa):
        require_isa(isa)
        kw = {} if vocab == "full" else {"vocab_strategy": vocab}
        self.model = load_model(paths[quant])
        try:
            self.session = Session(self.model, isa=isa, threads=THREADS, fdn_threshold=fdn,
                                   ctx=max(N_PROMPT, N_GEN), **kw)
        except (TypeError, UsageError) as e:      # an axis value this commit does not have
            self.model.close()
            raise NotImplementedError(str(e)) from None
        rng = np.random.default_rng(0)
        self.tokens = rng.integers(0, self.model.config.vocab_size, N_PROMPT)
        self.first = int(self.tokens[0])
        self.run()                                # warm-up: page in the weights

    def teardown(self, *args):
        # asv calls teardown also when setup raised NotImplementedError
        for obj in (getattr(self, "session", None), getattr(self, "model", None)):
            if obj is not None:
                obj.close()


class PromptProcessing(_EngineBench):
    def run(self):
        self.session.reset()
        self.session.prefill(self.tokens, all_logits=False)

    def time_pp64(self, *args):
        self.run()


class TokenGeneration(_EngineBench):
    def run(self):
        self.session.reset()
        tok = self.first
        # as harness bench times tg; commits before decode_top1 existed take the argmax in numpy
        step = getattr(self.session, "decode_top1", None) or (lambda t: int(self.session.decode(t).argmax()))
        for _ in range(N_GEN):
            tok = step(tok)

    def time_tg16(self, *args):
        self.run()

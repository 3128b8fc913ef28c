"""The mixture-of-experts FFN at the 35B-A3B expert shape (embedding 2048, expert FFN 512, top-8), its
expert stacks as stored and repacked. Two delta-net layers of 32 experts and a 4096-token vocabulary
keep the file small (about 160 MB at Q4_K_M); a 64-token prompt gives each expert about 16 tokens, as
a 512-token u-batch does across the 256 experts of the real model. time_pp64 / 64 is the time per
prompt token, time_tg16 / 16 per generated token."""
from __future__ import annotations

import os

import numpy as np

from harness.errors import UsageError

from .common import ISAS, THREADS, Session, close_engine, generate_once, load_model, prefill_once, require_isa, \
    synthesize

N_PROMPT = 64
N_GEN = 16
REPACK = ["off", "on"]


def moe_shape():
    from harness.model.presets import PRESETS
    return PRESETS["35b-a3b"].with_(name="35b-a3b-mini", n_layer=2, n_expert=32, vocab_size=4096)


class _MoEBench:
    params = (REPACK, ISAS)
    param_names = ["repack", "isa"]
    number = 1
    repeat = (3, 10, 10.0)
    warmup_time = 0.0
    timeout = 300

    def setup_cache(self):
        path = os.path.abspath("35b-a3b-mini-q4_k_m.gguf")
        synthesize(moe_shape(), "q4_k_m", path, seed=0)
        return path

    setup_cache.timeout = 600

    def setup(self, path, repack, isa):
        require_isa(isa)
        self.model = load_model(path)
        try:
            self.session = Session(self.model, isa=isa, threads=THREADS, ctx=N_PROMPT, repack=repack)
        except (TypeError, UsageError) as e:      # a commit without repacking, or without it here
            self.model.close()
            raise NotImplementedError(str(e)) from None
        self.tokens = np.random.default_rng(0).integers(0, self.model.config.vocab_size, N_PROMPT)
        self.run()                                # warm-up: page in the weights

    def teardown(self, *args):
        close_engine(self)


class MoEPromptProcessing(_MoEBench):
    def run(self):
        prefill_once(self.session, self.tokens)

    def time_pp64(self, *args):
        self.run()


class MoETokenGeneration(_MoEBench):
    def run(self):
        generate_once(self.session, int(self.tokens[0]), N_GEN)

    def time_tg16(self, *args):
        self.run()

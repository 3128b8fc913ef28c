"""The user's own GGUF files, tracked by `asv run` beside the synthetic presets.

    HARNESS_ASV_MODELS=/models/Qwen3.5-0.8B-Q4_K_M.gguf,/models/Qwen3.5-4B-Q8_0.gguf asv run ...

(or in asv.conf.json: "matrix": {"env_nobuild": {"HARNESS_ASV_MODELS": ["/models/a.gguf,/models/b.gguf"]}}).
Each file is one parameter value, named by its file name (asv keys history by the parameter's repr,
so keep the names stable); the benchmarks time the same pp64 / tg16 as bench_engine on the best ISA
this CPU runs, with HARNESS_ASV_THREADS threads. Without the variable the single parameter value
says so and asv skips it: the synthetic presets stay the default suite."""
from __future__ import annotations

import os

import numpy as np

from .common import THREADS, Session, close_engine, generate_once, load_model, prefill_once

UNSET = "(set HARNESS_ASV_MODELS to GGUF paths)"
N_PROMPT = 64
N_GEN = 16


def user_models() -> dict[str, str]:
    """{file name: path} from HARNESS_ASV_MODELS (comma or os.pathsep separated)."""
    text = os.environ.get("HARNESS_ASV_MODELS", "")
    paths = [p.strip() for p in text.replace(os.pathsep, ",").split(",") if p.strip()]
    return {os.path.basename(p): p for p in paths}


class _UserModelBench:
    params = (list(user_models()) or [UNSET],)
    param_names = ["model_file"]
    number = 1
    repeat = (3, 10, 20.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, name):
        path = user_models().get(name)
        if path is None:
            raise NotImplementedError(UNSET)
        if not os.path.isfile(path):
            raise NotImplementedError(f"{path}: no such file on this machine")
        self.model = load_model(path)
        self.session = Session(self.model, threads=THREADS, ctx=max(N_PROMPT, N_GEN))
        rng = np.random.default_rng(0)
        self.tokens = rng.integers(0, self.model.config.vocab_size, N_PROMPT)
        self.first = int(self.tokens[0])
        prefill_once(self.session, self.tokens)     # warm-up: page in the weights

    def teardown(self, *args):
        close_engine(self)


class UserModelPromptProcessing(_UserModelBench):
    def time_pp64(self, name):
        prefill_once(self.session, self.tokens)


class UserModelTokenGeneration(_UserModelBench):
    def time_tg16(self, name):
        generate_once(self.session, self.first, N_GEN)

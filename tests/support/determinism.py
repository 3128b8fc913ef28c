"""Logits of fixed configurations and their digests, for the determinism tests (also run in a fresh
Python process, which imports this module)."""
import hashlib
from pathlib import Path

import numpy as np

from harness import native
from harness.engine.session import Session
from harness.model.loader import load_model

RUNNABLE = native.cpu_features()["supported"]
TOKENS = [int(t) for t in np.random.default_rng(11).integers(0, 64, 32)]   # ids valid in every model here
# (ubatch, fdn_threshold): fused delta-net in u-batches of 7; chunked over one u-batch of 24
SHAPES = [(7, 512), (32, 0)]


def run(m, isa: str, threads: int, ubatch: int, fdn: int) -> tuple[np.ndarray, np.ndarray]:
    """(prefill logits of 24 tokens, logits of 8 decode steps after them)."""
    with Session(m, isa=isa, threads=threads, ubatch=ubatch, fdn_threshold=fdn, ctx=40) as s:
        pre = s.prefill(TOKENS[:24])
        dec = np.stack([s.decode(t) for t in TOKENS[24:]])
    return pre, dec


def digests(paths: list[str]) -> dict[str, str]:
    """sha256 of the logits of every configuration, keyed by a description of it."""
    out = {}
    for p in paths:
        with load_model(p) as m:
            for isa in RUNNABLE:
                for threads in (1, 2):
                    for ubatch, fdn in SHAPES:
                        pre, dec = run(m, isa, threads, ubatch, fdn)
                        key = f"{Path(p).name} {isa} t{threads} u{ubatch} f{fdn}"
                        out[key + " prefill"] = hashlib.sha256(pre.tobytes()).hexdigest()
                        out[key + " decode"] = hashlib.sha256(dec.tobytes()).hexdigest()
    return out

"""Prefill speed of one build under different Session options, in one process, interleaved.

    python reports/comparisons/session_options_ab.py FILE.gguf --rounds 12 \
        --arm folded= --arm apart=fuse_swiglu=0

Each arm is NAME=[option=value,...] (Session keywords; 0/1 are booleans, digits integers, else
strings). Every round opens one session per arm in turn (the order reversed every other round, one
session at a time so no idle thread pool competes), prefills 64 tokens to warm it, then times the
best of --reps prefills of --tokens tokens (only the last position's logits). Prints each arm's
median tokens/s and the median of the per-round ratios of the first arm to it.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from harness.engine.session import Session
from harness.model.loader import load_model


def parse_arm(text: str) -> tuple[str, dict]:
    name, _, opts = text.partition("=")
    kw: dict = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        kw[key] = bool(int(value)) if value in ("0", "1") else int(value) if value.isdigit() else value
    return name, kw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--arm", action="append", required=True, help="NAME=[option=value,...]")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    arms = [parse_arm(a) for a in args.arm]
    tokens = [int(t) for t in np.random.default_rng(0).integers(0, 1000, args.tokens)]
    rates: dict[str, list[float]] = {name: [] for name, _ in arms}
    with load_model(args.model) as m:
        for r in range(args.rounds):
            for name, kw in (arms if r % 2 == 0 else arms[::-1]):
                with Session(m, threads=args.threads, ubatch=args.tokens, ctx=args.tokens + 64, **kw) as s:
                    s.prefill(tokens[:64], all_logits=False)
                    best = 0.0
                    for _ in range(args.reps):
                        s.reset()
                        t0 = time.perf_counter()
                        s.prefill(tokens, all_logits=False)
                        best = max(best, args.tokens / (time.perf_counter() - t0))
                rates[name].append(best)
    first = np.array(rates[arms[0][0]])
    for name, _ in arms:
        v = np.array(rates[name])
        print(f"{name:14s} median {np.median(v):7.1f} t/s   {arms[0][0]} / {name} {np.median(first / v):.3f}   "
              f"rounds {[round(x) for x in v]}")


if __name__ == "__main__":
    main()

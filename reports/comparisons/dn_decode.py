"""Decode speed of the delta-net algorithms at one token: greedy decode steps after a short prompt,
Session(dn_algo="auto") against Session(dn_algo="chunked"), alternating, the order turned each round.

    python reports/comparisons/dn_decode.py MODEL.gguf [ISA] [--rounds 4] [--steps 96] [--threads 2]

("auto" is the fused rule at one token where --fdn >= 1, else the chunked one.) Prints each round's
tok/s and the medians."""
import argparse
import statistics
import time

from harness.engine.session import Session
from harness.model.loader import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("isa", nargs="?", default="auto")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fdn", type=int, default=1, help="fdn_threshold of the auto session (1: fused decode)")
    a = ap.parse_args()
    res = {"auto": [], "chunked": []}
    with load_model(a.model) as m:
        for rnd in range(a.rounds):
            for algo in (["auto", "chunked"] if rnd % 2 == 0 else ["chunked", "auto"]):
                with Session(m, threads=a.threads, dn_algo=algo, fdn_threshold=a.fdn, ctx=a.steps + 32,
                             isa=a.isa) as s:
                    s.prefill(list(range(1, 17)))
                    tok = s.decode_top1(5)                 # warm
                    t0 = time.perf_counter()
                    for _ in range(a.steps):
                        tok = s.decode_top1(tok)
                    res[algo].append(a.steps / (time.perf_counter() - t0))
    for algo, v in res.items():
        print(f"{algo:8s} tok/s {' '.join(f'{x:.1f}' for x in v)}  median {statistics.median(v):.1f}")


if __name__ == "__main__":
    main()

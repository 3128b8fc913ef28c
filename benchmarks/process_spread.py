"""How much one measurement process's figure moves between processes, as the median of its repetitions
and as the fastest: the comparison behind `harness ab --statistic best`.

    python benchmarks/process_spread.py MODEL.gguf [--processes 8] [-n 16] [-p 0] [-r 5] [-t 1]

Runs `harness bench MODEL -p P -n N -r R -t T -o json` in fresh processes one after the other and
prints every repetition, then the spread (standard deviation over mean) of the per-process medians and
of the per-process best figures. A benchmark, not a test: it measures the machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys


def one_process(model: str, p: int, n: int, r: int, t: int) -> list[float]:
    out = subprocess.run([sys.executable, "-m", "harness.cli", "bench", model, "-p", str(p), "-n", str(n),
                          "-r", str(r), "-t", str(t), "-o", "json"], capture_output=True, text=True, check=True).stdout
    rec = next(x for x in json.loads(out) if (x.get("n_gen") if n else x.get("n_prompt")))
    return [float(x) for x in rec["samples_ts"]]


def spread(xs: list[float]) -> float:
    return statistics.pstdev(xs) / statistics.mean(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("-p", type=int, default=0)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("-t", type=int, default=1)
    a = ap.parse_args()
    medians, best = [], []
    for i in range(a.processes):
        s = one_process(a.model, a.p, a.n, a.r, a.t)
        medians.append(statistics.median(s))
        best.append(max(s))
        print(f"process {i}: " + " ".join(f"{x:.2f}" for x in s), flush=True)
    print(f"spread between processes: medians {100 * spread(medians):.1f}%, best repetitions {100 * spread(best):.1f}%")


if __name__ == "__main__":
    main()

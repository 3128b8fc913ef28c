"""Does `harness compare` cry wolf on sweeps of one commit? Issue 14's scenario, rerun.

    python benchmarks/sequential_sweeps.py --out reports/ab-power/DATE/sequential [--preset tiny,0.8b]
        [--runs 3] [--noise-rounds 10] [-- SWEEP OPTIONS]

For each preset: this machine's noise records first (`harness noise --layout random`, the spread of
fresh processes, for each quant and test of the grid), then `--runs` back-to-back sweeps of the same
commit (default grid: --quant q8_0,q4_k_m --fdn 0,16 --ubatch 8,32 --pp 32 --tg 16 -r 3
--no-profile), then every pair compared with `harness compare` (threshold 5%). Nothing changed
between the sweeps, so every SLOWER or FASTER verdict is a false alarm. Writes summary.md and
summary.json. A benchmark, not a test: it measures the machine."""
from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

GRID = ["--quant", "q8_0,q4_k_m", "--fdn", "0,16", "--ubatch", "8,32", "--pp", "32", "--tg", "16", "-r", "3",
        "--no-profile"]


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True)


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="tiny,0.8b")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--noise-rounds", type=int, default=10)
    p.add_argument("sweep_args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    grid = [x for x in a.sweep_args if x != "--"] or GRID
    opts = dict(zip(grid[::2], grid[1::2]))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"grid": grid, "presets": {}, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for preset in a.preset.split(","):
        t0 = time.monotonic()
        noise = harness("noise", "--preset", preset, "--quant", opts.get("--quant", "q4_k_m"), "-p",
                        opts.get("--pp", "32"), "-n", opts.get("--tg", "16"), "-t", opts.get("-t", "2"),
                        "--rounds", str(a.noise_rounds), "--layout", "random")
        (out / f"{preset}-noise.txt").write_text(noise.stdout + noise.stderr)
        if noise.returncode != 0:
            sys.exit(f"noise failed: {noise.stderr.strip().splitlines()[-1:]}")
        runs = []
        for i in range(a.runs):
            d = out / f"{preset}-run{i + 1}"
            r = harness("sweep", "--preset", preset, *grid, "-o", str(d))
            (out / f"{preset}-run{i + 1}.log").write_text(r.stdout + r.stderr)
            if r.returncode != 0:
                sys.exit(f"sweep failed: {r.stderr.strip().splitlines()[-1:]}")
            runs.append(d)
            print(f"{preset} sweep {i + 1} done (load {loadavg():.2f})", flush=True)
        pairs = []
        for x, y in itertools.combinations(range(len(runs)), 2):
            r = harness("compare", str(runs[x]), str(runs[y]))
            (out / f"{preset}-compare-{x + 1}-{y + 1}.txt").write_text(r.stdout + r.stderr)
            line = next((ln for ln in r.stdout.splitlines() if "configuration(s) compared" in ln), "")
            counts = {k: int(m.group(1)) if (m := re.search(rf"(\d+) {k}", line)) else 0
                      for k in ("slower", "faster", "no significant change")}
            pairs.append({"pair": f"{x + 1} vs {y + 1}", "exit": r.returncode, "summary": line, **counts,
                          "cannot judge": int(m.group(1)) if (m := re.search(r"(\d+) cannot be judged", line)) else 0})
            print(f"{preset} compare {x + 1} vs {y + 1}: {line}", flush=True)
        summary["presets"][preset] = {"pairs": pairs, "seconds": time.monotonic() - t0, "load_end": loadavg()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = ["| preset | pair | slower | faster | no significant change | cannot judge | exit |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for preset, s in summary["presets"].items():
        for q in s["pairs"]:
            lines.append(f"| {preset} | {q['pair']} | {q['slower']} | {q['faster']} | {q['no significant change']} | "
                         f"{q['cannot judge']} | {q['exit']} |")
    lines.append(f"\nsweep grid: `{' '.join(grid)}`; noise records: `harness noise --rounds {a.noise_rounds} "
                 f"--layout random` per preset first; {summary['when']}")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

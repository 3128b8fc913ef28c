"""Side-by-side tables of our `harness bench -o json` and llama.cpp's `llama-bench -o json`
records (same field names), pooled over all samples of each test.

    python -m harness.sidebyside --llama L1.json L2.json --ours O1.json O2.json
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def _test(rec: dict) -> str:
    return f"pp{rec['n_prompt']}" if rec["n_prompt"] else f"tg{rec['n_gen']}"


def _pool(paths) -> dict[tuple[str, str], list[float]]:
    """(model file name, test) -> every samples_ts value in those files."""
    out: dict[tuple[str, str], list[float]] = {}
    for p in paths:
        for rec in json.loads(Path(p).read_text()):
            key = (Path(rec["model_filename"]).name, _test(rec))
            out.setdefault(key, []).extend(rec["samples_ts"])
    return out


def side_by_side(llama_paths, ours_paths, bytes_per_token: dict[str, int] | None = None) -> list[dict]:
    llama, ours = _pool(llama_paths), _pool(ours_paths)
    rows = []
    for key in sorted(set(llama) & set(ours)):
        lm, om = statistics.median(llama[key]), statistics.median(ours[key])
        row = {"model": key[0], "test": key[1],
               "llama_median_ts": lm, "llama_min_ts": min(llama[key]), "llama_max_ts": max(llama[key]),
               "ours_median_ts": om, "ours_min_ts": min(ours[key]), "ours_max_ts": max(ours[key]),
               "ratio": om / lm, "n_samples": (len(llama[key]), len(ours[key]))}
        rows.append(row)
    return rows


def markdown(rows: list[dict], gbps: dict[str, float] | None = None) -> str:
    lines = ["| model | test | llama.cpp t/s (median, min-max) | ours t/s (median, min-max) | ours / llama.cpp |",
             "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['test']} | {r['llama_median_ts']:.2f} ({r['llama_min_ts']:.1f}-"
                     f"{r['llama_max_ts']:.1f}) | {r['ours_median_ts']:.2f} ({r['ours_min_ts']:.1f}-"
                     f"{r['ours_max_ts']:.1f}) | {r['ratio']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama", nargs="+", required=True)
    ap.add_argument("--ours", nargs="+", required=True)
    a = ap.parse_args(argv)
    print(markdown(side_by_side(a.llama, a.ours)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

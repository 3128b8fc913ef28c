"""The ours / llama.cpp table of an interleaved `harness sweep --engine native,llama-bench=...` run:
    python reports/types/ours_vs_llama.py DIR/sweep/results.csv > DIR/table.md
One row per file and test: medians of the repetitions, standard deviation in brackets, the ratio."""
import sys

import pandas as pd


def table(csv: str) -> str:
    d = pd.read_csv(csv)
    d["side"] = d["engine"].where(d["engine"] == "qwen35-harness", "llama.cpp")
    lines = ["| file | test | ours t/s (sd) | llama.cpp t/s (sd) | ours / llama.cpp |", "|---|---|---:|---:|---:|"]
    for (model, test), g in d.groupby(["model", "test"], sort=False):
        ours, theirs = g[g.side == "qwen35-harness"], g[g.side == "llama.cpp"]
        if ours.empty or theirs.empty:
            continue
        o, t = ours.iloc[0], theirs.iloc[0]
        lines.append(f"| {model.replace('-', ' ', 1)} | {test} | {o.median_ts:.1f} ({o.stddev_ts:.1f}) | "
                     f"{t.median_ts:.1f} ({t.stddev_ts:.1f}) | {o.median_ts / t.median_ts:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table(sys.argv[1]))

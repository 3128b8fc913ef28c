"""The depth curve of this sitting: pp512 and tg128 t/s against context depth, ours and llama.cpp -fa 1,
one line per engine and KV cache type, from the raw llama-bench-format JSON beside this script.

    python reports/comparisons/2026-12-07-depth/chart.py      # writes depth.png beside itself
"""
import glob
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def points():
    """{(test, engine, cache): [(depth, t/s), ...]} from <engine>-<cache>-d<depth>-<round>.json"""
    out = {}
    for f in sorted(glob.glob(os.path.join(HERE, "*-d*-*.json"))):
        engine, cache, depth, _ = os.path.basename(f)[:-5].rsplit("-", 3)
        for r in json.load(open(f)):
            test = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
            out.setdefault((test, engine, cache), []).append((int(depth[1:]), r["avg_ts"]))
    return out


def main():
    pts = points()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, test in zip(axes, ("pp512", "tg128")):
        for (t, engine, cache), xy in sorted(pts.items()):
            if t != test:
                continue
            xy.sort()
            ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o",
                    linestyle="-" if engine == "ours" else "--", label=f"{engine}, {cache} KV")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context depth (tokens)")
        ax.set_ylabel("t/s")
        ax.set_title(f"{test}, 0.8b Q4_K_M, 2 threads")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "depth.png"), dpi=110)


if __name__ == "__main__":
    main()

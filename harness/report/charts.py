"""PNG charts of the report, drawn with matplotlib's Agg canvas (no pyplot, no display, no global
state). Each function takes the small table data.py shaped and a path, and writes one PNG.

Text that reaches a chart may come from a model file (the model name): `label` strips what
matplotlib would otherwise interpret ('$' starts mathtext) and shortens it.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.analysis.stats import FASTER, SLOWER

COLORS = {SLOWER: "#c0392b", FASTER: "#1e8449"}
NEUTRAL = "#7f8c8d"
DPI = 100


def label(text, width: int = 60) -> str:
    s = str(text).replace("\n", " ").replace("$", r"\$")
    return s if len(s) <= width else s[: width - 1] + "…"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    """Write the PNG beside its final name, then rename: a reader never sees half a chart."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _bar_height(n: int) -> float:
    return min(2 + 0.32 * n, 16)


def ratio_chart(table: pd.DataFrame, labels: list[str], threshold: float, path: Path) -> None:
    """NEW/BASE ratio per configuration with its confidence interval, coloured by verdict."""
    fig = _figure(9, _bar_height(len(table)))
    ax = fig.add_subplot()
    y = np.arange(len(table))[::-1]
    ratio = table["ratio"].to_numpy(float)
    lo = np.where(np.isnan(table["ci_lo"]), ratio, table["ci_lo"])
    hi = np.where(np.isnan(table["ci_hi"]), ratio, table["ci_hi"])
    colors = [COLORS.get(v, NEUTRAL) for v in table["verdict"]]
    ax.barh(y, ratio - 1, left=1, color=colors, height=0.6)
    ax.errorbar(ratio, y, xerr=[ratio - lo, hi - ratio], fmt="none", ecolor="black", capsize=3, lw=1)
    ax.axvline(1, color="black", lw=1)
    if np.nanmax(hi) > 2 or np.nanmin(lo) < 0.5:     # large changes: equal steps up and down
        ax.set_xscale("log")
    ax.axvspan(1 - threshold, 1 + threshold, color="#dddddd", zorder=0)
    ax.set_yticks(y, [label(s) for s in labels], fontsize=8)
    ax.set_xlabel("tokens/s NEW / BASE (bars), 95% interval (whiskers); grey band = threshold")
    _save(fig, path)


def throughput_chart(labels: list[str], values: np.ndarray, errors: np.ndarray, path: Path) -> None:
    fig = _figure(9, _bar_height(len(labels)))
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]
    ax.barh(y, values, xerr=errors, color="#2e86c1", height=0.6, capsize=3)
    ax.set_yticks(y, [label(s) for s in labels], fontsize=8)
    ax.set_xlabel("tokens/s (median, whisker = stddev)")
    _save(fig, path)


def crossover_chart(points: pd.DataFrame, best: pd.DataFrame, path: Path) -> None:
    """pp t/s against ubatch, one line per fdn threshold, one panel per group; star = fastest."""
    groups = list(dict.fromkeys(points["group"]))
    cols = min(2, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig = _figure(6 * cols, 3.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, g in zip(axes, groups):
        d = points[points["group"] == g]
        for fdn, dl in d.groupby("fdn_threshold", dropna=False):
            dl = dl.sort_values("n_ubatch")
            ax.plot(dl["n_ubatch"], dl["median_ts"], marker="o", label=f"F={label(fdn, 12)}")
        b = best[best["group"] == g].iloc[0]
        top = d.loc[d["median_ts"].idxmax()]
        ax.plot([top["n_ubatch"]], [top["median_ts"]], marker="*", markersize=16, color="gold",
                markeredgecolor="black", linestyle="none", label=f"best F={label(b['best fdn threshold'], 12)}")
        if d["n_ubatch"].nunique() > 1 and (d["n_ubatch"] > 0).all():
            ax.set_xscale("log", base=2)
        ax.set_title(label(g, 70), fontsize=9)
        ax.set_xlabel("ubatch")
        ax.set_ylabel("pp tokens/s")
        ax.legend(fontsize=7)
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    _save(fig, path)


def pareto_chart(pts: pd.DataFrame, path: Path) -> None:
    """Speed against error per quant type; the Pareto front (nothing both faster and more accurate)
    is joined by a line."""
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    for v, d in pts.groupby("vocab_strategy"):
        ax.scatter(d["t/s"], d["error"], s=40, label=f"vocab {label(v, 20)}")
    for _, r in pts.iterrows():
        ax.annotate(label(r["quant"], 16), (r["t/s"], r["error"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    front = pts[pts["pareto"]].sort_values("t/s")
    ax.plot(front["t/s"], front["error"], color="black", lw=1, ls="--", label="Pareto front")
    ax.set_xlabel(f"{pts['speed of'].iloc[0]} tokens/s (best configuration)")
    ax.set_ylabel(label(pts["metric"].iloc[0]) + " (lower is better)")
    if (pts["error"] > 0).all() and pts["error"].max() / pts["error"].min() > 50:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    _save(fig, path)


def vocab_chart(d: pd.DataFrame, path: Path) -> None:
    wide = d.pivot_table(index="group", columns="vocab_strategy", values="median t/s", sort=False)
    fig = _figure(9, _bar_height(len(wide) * max(1, len(wide.columns)) / 2 + 1))
    ax = fig.add_subplot()
    y = np.arange(len(wide))[::-1]
    h = 0.8 / len(wide.columns)
    for i, c in enumerate(wide.columns):
        ax.barh(y - i * h + 0.4 - h / 2, wide[c].to_numpy(float), height=h, label=label(c, 20))
    ax.set_yticks(y, [label(s) for s in wide.index], fontsize=8)
    ax.set_xlabel("median tokens/s")
    ax.legend(fontsize=8, title="vocab strategy")
    _save(fig, path)


def op_chart(wide: pd.DataFrame, path: Path) -> None:
    """Stacked horizontal bars: share of the profiled time per op for each configuration."""
    fig = _figure(10, _bar_height(len(wide)) + 1)
    ax = fig.add_subplot()
    y = np.arange(len(wide))[::-1]
    left = np.zeros(len(wide))
    cmap = matplotlib.colormaps["tab10"]
    for i, op in enumerate(wide.columns):
        vals = wide[op].to_numpy(float) * 100
        ax.barh(y, vals, left=left, height=0.6, label=label(op, 24), color=cmap(i % 10))
        left += vals
    ax.set_yticks(y, [label(s) for s in wide.index], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of profiled time (%)")
    ax.legend(fontsize=7, ncol=min(5, len(wide.columns)), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    _save(fig, path)


def roofline_chart(d: pd.DataFrame, path: Path) -> None:
    """Achieved weight-streaming GB/s per token-generation configuration against the machine's
    measured read bandwidth (the roof: generation reads every weight once per token)."""
    fig = _figure(9, _bar_height(len(d)))
    ax = fig.add_subplot()
    y = np.arange(len(d))[::-1]
    ax.barh(y, d["weight GB/s"].to_numpy(float), height=0.6, color="#2e86c1", label="weights streamed")
    roof = d["machine read GB/s"].to_numpy(float)
    ok = np.isfinite(roof)
    ax.scatter(roof[ok], y[ok], marker="|", s=400, color="black", label="machine read bandwidth")
    for yi, (g, f) in zip(y, zip(d["weight GB/s"], d["fraction"])):
        if np.isfinite(f):
            ax.annotate(f"{100 * f:.0f}%", (g, yi), xytext=(4, -3), textcoords="offset points", fontsize=8)
    ax.set_yticks(y, [label(s) for s in d["configuration"]], fontsize=8)
    ax.set_xlabel("GB/s")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def history_chart(h: pd.DataFrame, commits: list[str], path: Path) -> None:
    fig = _figure(10, 5)
    ax = fig.add_subplot()
    for cfg, d in h.groupby("configuration", sort=False):
        ax.plot(d["order"], d["median_ts"], marker="o", label=label(cfg, 50))
    ax.set_xticks(range(len(commits)), [label(c[:10], 12) for c in commits], rotation=45, fontsize=8)
    ax.set_xlabel("commit (oldest first)")
    ax.set_ylabel("median tokens/s")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)

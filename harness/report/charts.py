"""PNG charts of the report, drawn with matplotlib's Agg canvas (no pyplot, no display, no global
state). Each function takes the small table data.py shaped and a path, and writes one PNG.

Text that reaches a chart may come from a model file (the model name): `label` strips what
matplotlib would otherwise interpret ('$' starts mathtext) and shortens it.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.analysis.stats import FASTER, SLOWER
from harness.store.schema import key_text

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
    """pp t/s against ubatch, one line per fdn threshold, one panel per group; star = the pick
    (data.crossover: the fastest settled point). Open markers: points whose spread is too wide to
    judge; a panel whose pick is one of them says so in its title."""
    groups = list(dict.fromkeys(points["group"]))
    cols = min(2, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig = _figure(6 * cols, 3.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, g in zip(axes, groups):
        d = points[points["group"] == g]
        settled = d["spread ok"] if "spread ok" in d.columns else pd.Series(True, index=d.index)
        for fdn, dl in d.groupby("fdn_threshold", dropna=False):
            dl = dl.sort_values("n_ubatch")
            (line,) = ax.plot(dl["n_ubatch"], dl["median_ts"], marker="o", label=f"F={label(fdn, 12)}")
            noisy = dl[~settled.loc[dl.index].astype(bool)]
            if len(noisy):
                ax.plot(noisy["n_ubatch"], noisy["median_ts"], marker="o", linestyle="none", markersize=9,
                        markerfacecolor="white", markeredgecolor=line.get_color())
        b = best[best["group"] == g].iloc[0]
        at = d[(d["fdn_threshold"].map(key_text) == b["best fdn threshold"])
               & (d["n_ubatch"].map(key_text) == b["at ubatch"])]
        top = at.iloc[0] if len(at) else d.loc[d["median_ts"].idxmax()]
        ax.plot([top["n_ubatch"]], [top["median_ts"]], marker="*", markersize=16, color="gold",
                markeredgecolor="black", linestyle="none", label=f"best F={label(b['best fdn threshold'], 12)}")
        if (~settled.astype(bool)).any():
            ax.plot([], [], marker="o", linestyle="none", markerfacecolor="white", markeredgecolor=NEUTRAL,
                    label="spread too wide")
        if d["n_ubatch"].nunique() > 1 and (d["n_ubatch"] > 0).all():
            ax.set_xscale("log", base=2)
        title = label(g, 70)
        if b.get("note", "") == "spread too wide to judge":
            title += "\nbest pick: spread too wide to judge"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("ubatch")
        ax.set_ylabel("pp tokens/s")
        ax.legend(fontsize=7)
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    _save(fig, path)


# where a point's label may go, in points from the point (the first that overlaps nothing is used)
LABEL_OFFSETS = [(5, 5), (5, -13), (-5, 5), (-5, -13), (5, 16), (5, -24), (-5, 16), (-5, -24),
                 (5, 27), (5, -35), (-5, 27), (-5, -35), (12, -4), (-12, -4)]


def place_labels(fig: Figure, ax, xy: list[tuple[float, float]], texts: list[str], fontsize: int = 8) -> list:
    """Annotate each point with its text at the first offset of LABEL_OFFSETS whose box overlaps no
    label placed before, no marker and stays inside the axes (else the offset that overlaps least).
    Lays the figure out first and freezes that layout, so that the boxes measured are the ones drawn."""
    fig.canvas.draw()
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    marks = [ax.transData.transform(p) for p in xy]
    r = 4 * fig.dpi / 72                                     # marker radius, pixels
    legend = ax.get_legend()
    placed, out = ([legend.get_window_extent(renderer)] if legend is not None else []), []
    for i, ((x, y), text) in enumerate(zip(xy, texts)):
        best = None
        for dx, dy in _away_from_nearest(marks, i):
            a = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                            ha="left" if dx >= 0 else "right", va="bottom")
            box = a.get_window_extent(renderer)
            cost = sum(_overlap(box, b) for b in placed)
            cost += sum(_overlap(box, _square(m, r)) for m in marks)
            cost += box.width * box.height - _overlap(box, inside)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, a, box)
            else:
                a.remove()
            if cost == 0:
                break
        placed.append(best[2])
        out.append(best[1])
    return out


def _away_from_nearest(marks: list, i: int) -> list[tuple[int, int]]:
    """LABEL_OFFSETS, those on the side away from the point nearest to point i first: a label
    then sits on its own point's side of a close pair."""
    others = [(np.hypot(*(m - marks[i])), m) for j, m in enumerate(marks) if j != i]
    if not others:
        return LABEL_OFFSETS
    near = min(others, key=lambda t: t[0])[1] - marks[i]
    return sorted(LABEL_OFFSETS, key=lambda o: ((o[0] > 0) == (near[0] > 0)) + ((o[1] > 0) == (near[1] > 0)))


def _square(c, r):
    from matplotlib.transforms import Bbox
    return Bbox([[c[0] - r, c[1] - r], [c[0] + r, c[1] + r]])


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def pareto_chart(pts: pd.DataFrame, path: Path) -> None:
    """Speed against error per (model, vocab strategy); the Pareto front (nothing both faster and
    more accurate) is ringed, and joined by a line when it has two points or more. Rows without the
    accuracy measure are not drawn: the title names them."""
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    drawn = pts[np.isfinite(pts["error"].to_numpy(float)) & np.isfinite(pts["t/s"].to_numpy(float))]
    for v, d in drawn.groupby("vocab_strategy", sort=False):
        ax.scatter(d["t/s"], d["error"], s=40, label=f"vocab {label(v, 20)}", zorder=3)
    front = drawn[drawn["pareto"]].sort_values(["t/s", "error"])
    if len(front):
        ax.scatter(front["t/s"], front["error"], s=130, facecolors="none", edgecolors="black", lw=1,
                   label="Pareto-optimal", zorder=2)
    if len(front) >= 2:
        ax.plot(front["t/s"], front["error"], color="black", lw=1, ls="--", label="Pareto front", zorder=1)
    ax.set_xlabel(f"{pts['speed of'].iloc[0]} tokens/s (best configuration)")
    ax.set_ylabel(label(pts["metric"].iloc[0]) + " (lower is better)")
    if len(drawn) and (drawn["error"] > 0).all() and drawn["error"].max() / drawn["error"].min() > 50:
        ax.set_yscale("log")
    ax.margins(0.12)
    left_out = pts[~pts.index.isin(drawn.index)]
    notes = sorted({f"{key_label(v)}: {n}" for v, n in zip(left_out["vocab_strategy"], left_out["note"])})
    if notes:
        ax.set_title(label("not drawn: " + "; ".join(notes), 110), fontsize=8)
    if len(drawn):
        ax.legend(fontsize=8)
        place_labels(fig, ax, list(zip(drawn["t/s"].astype(float), drawn["error"].astype(float))),
                     [label(t, 40) for t in drawn["label"]])
    _save(fig, path)


def key_label(v) -> str:
    return label(key_text(v), 20)


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


def op_chart(wide: pd.DataFrame, path: Path, runs: dict | None = None) -> None:
    """Stacked horizontal bars: share of the profiled time per op for each configuration, from one
    profiled run, or the median over `runs[label]` runs where that is more than one."""
    fig = _figure(10, _bar_height(len(wide)) + 1)
    ax = fig.add_subplot()
    y = np.arange(len(wide))[::-1]
    left = np.zeros(len(wide))
    cmap = matplotlib.colormaps["tab10"]
    for i, op in enumerate(wide.columns):
        vals = wide[op].to_numpy(float) * 100
        ax.barh(y, vals, left=left, height=0.6, label=label(op, 24), color=cmap(i % 10))
        left += vals
    n = [int((runs or {}).get(s, 1)) for s in wide.index]
    ax.set_yticks(y, [label(s) + (f" [median of {k} runs]" if k > 1 else "") for s, k in zip(wide.index, n)],
                  fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of profiled time (%): one profiled run per configuration"
                  + ("\n[median of n runs]: the median over the n results that hold the configuration"
                     if max(n, default=1) > 1 else ""))
    ax.legend(fontsize=7, ncol=min(5, len(wide.columns)), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    _save(fig, path)


def roofline_chart(d: pd.DataFrame, path: Path) -> None:
    """Achieved weight-streaming GB/s per token-generation configuration against the machine's
    measured read bandwidth (the roof: generation reads every weight once per token). Rows whose
    weights fit in the last-level cache are hatched and say 'in cache' (the DRAM roof does not apply
    to them); a percentage above 100 elsewhere says the reference is stale or the data cached."""
    fig = _figure(9, _bar_height(len(d)) + 0.8)
    ax = fig.add_subplot()
    y = np.arange(len(d))[::-1]
    cached = d["in cache"].to_numpy(bool) if "in cache" in d.columns else np.zeros(len(d), bool)
    gbps = d["weight GB/s"].to_numpy(float)
    if (~cached).any():
        ax.barh(y[~cached], gbps[~cached], height=0.6, color="#2e86c1", label="weights streamed")
    if cached.any():
        ax.barh(y[cached], gbps[cached], height=0.6, color="#aed6f1", hatch="//", edgecolor="#2e86c1",
                label="weights streamed, in cache (no DRAM roof)")
    roof = d["machine read GB/s"].to_numpy(float)
    ok = np.isfinite(roof)
    ax.scatter(roof[ok], y[ok], marker="|", s=400, color="black", label="machine read bandwidth (DRAM)")
    for yi, g, f, c in zip(y, gbps, d["fraction"].to_numpy(float), cached):
        if not np.isfinite(f):
            continue
        text = f"{100 * f:.0f}%"
        if c:
            text += " of DRAM bw; in cache"
        elif f > 1:
            text += ": above the roof (stale reference, or cached)"
        ax.annotate(text, (g, yi), xytext=(4, -3), textcoords="offset points", fontsize=8)
    if cached.any():
        llc = re.search(r"LLC ([\d.]+ MiB)", " ".join(d.loc[d["in cache"].astype(bool), "note"]))
        ax.set_title(f"weights of {int(cached.sum())} of {len(d)} rows fit in cache"
                     + (f" (LLC {llc.group(1)})" if llc else "") + ": the DRAM roofline does not apply to them",
                     fontsize=9)
    ax.set_yticks(y, [label(s) for s in d["configuration"]], fontsize=8)
    ax.set_xlabel("GB/s")
    ax.set_xlim(0, max(np.nanmax(gbps), np.nanmax(roof) if ok.any() else 0) * 1.6)
    fig.legend(fontsize=8, ncol=3, loc="outside lower center")
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


def depth_chart(curves: pd.DataFrame, path: Path) -> None:
    """Tokens/s against context depth: S_PP on the left, S_TG on the right, one line per curve
    (data.depth_curves: columns curve, kind ('pp' / 'tg'), n_depth, tokens_s)."""
    fig = _figure(11, 4.2)
    axes = fig.subplots(1, 2)
    for ax, kind, title in ((axes[0], "pp", "prompt processing (S_PP)"), (axes[1], "tg", "generation (S_TG)")):
        part = curves[curves["kind"] == kind]
        for name, g in part.groupby("curve", sort=True):
            g = g.sort_values("n_depth")
            ax.plot(g["n_depth"], g["tokens_s"], marker="o", markersize=3, label=label(name, 50))
        ax.set_title(title)
        ax.set_xlabel("context depth N_KV (tokens)")
        ax.set_ylabel("tokens/s")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if len(part):
            ax.legend(fontsize=7)
    _save(fig, path)


def draft_cost_chart(cost, path: Path, measured: list[dict] | None = None) -> None:
    """Effective tokens/s of MTP speculative decoding against the acceptance rate, one line per
    draft size K (harness.measure.draft_cost's model), plain decoding dashed, measured runs as points."""
    fig = _figure(7.5, 4.8)
    ax = fig.add_subplot()
    a = np.linspace(0.0, 1.0, 101)
    colors = matplotlib.colormaps["viridis"]
    ks = sorted(cost.t_verify)
    for i, k in enumerate(ks):
        color = colors(i / max(1, len(ks) - 1) * 0.85)
        ax.plot(a, [cost.effective_tps(k, x) for x in a], color=color, label=f"K = {k}")
        for m in measured or []:
            if m["k"] == k:
                ax.plot([m["acceptance"]], [m["gen_tps"]], "o", color=color, markeredgecolor="black")
    ax.axhline(cost.plain_tps, color=NEUTRAL, linestyle="--", label="plain greedy")
    ax.set_xlabel("acceptance rate of drafted tokens")
    ax.set_ylabel("generated tokens/s")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(label(f"MTP drafting on {cost.model}: depth {cost.depth}, {cost.threads} threads, {cost.isa}"
                       + ("; points: measured runs" if measured else ""), 90), fontsize=10)
    ax.legend(loc="upper left", fontsize=9)
    _save(fig, Path(path))

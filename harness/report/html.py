"""The HTML report: DIR/index.html with its PNG charts beside it (relative paths, no JavaScript,
no external resources), one section per question a user asks of a result set.

Everything that reaches the page from results or model files (model names, paths, op names,
provenance values) goes through html.escape; tables are rendered here cell by cell so that each
verdict row can carry a CSS class, and every cell is escaped.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report import charts
from harness.report import data as rd
from harness.report.asv_regressions import AsvRegressions, human_value
from harness.atomic import atomic_write_text
from harness.analysis.compare import MACHINE_BUSY, Comparison, summary_line, verdict_text
from harness.provenance import now_iso
from harness.store.schema import key_text
from harness.analysis.stats import FASTER, SLOWER

CHART_FILES = ["depth.png", "throughput.png", "ratio.png", "crossover.png", "pareto.png", "vocab.png", "ops.png",
               "roofline.png", "history.png"]

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.slower td { background: #f5b7b1; } tr.faster td { background: #abebc6; }
tr.busy td { background: #fdebd0; }
p.none { color: #777; font-style: italic; }
p.note { background: #fef9e7; border-left: 3px solid #f5b041; padding: 4px 8px; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
.summary { font-weight: bold; } .wide { overflow-x: auto; }
"""


@dataclass
class ReportInputs:
    frame: pd.DataFrame
    profile: pd.DataFrame
    quality: pd.DataFrame
    provenance: dict
    sources: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    baseline_label: str = ""
    new_label: str = "these results"
    threshold: float = 0.05
    asv: AsvRegressions | None = None     # `--asv-html DIR`: the regressions `asv publish` found

    @property
    def current(self) -> pd.DataFrame:
        return rd.latest_per_config(self.frame)


def esc(v) -> str:
    return html.escape(_cell(v), quote=True)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return ""
        return f"{v:.0f}" if float(v).is_integer() and abs(v) >= 1000 else f"{v:.4g}" if abs(v) < 1 else f"{v:.2f}"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, default=str)
    if v is pd.NA:
        return ""
    return str(v)


def html_table(df: pd.DataFrame, row_classes: list[str] | None = None, index: bool = False) -> str:
    """A plain table; every header and cell escaped."""
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    out = ['<div class="wide"><table>', "<thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr></thead>", "<tbody>"]
    for i, (idx, row) in enumerate(df.iterrows()):
        cls = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = ([f"<td>{esc(idx)}</td>"] if index else [])
        for v in row.values:
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            cells.append(f'<td class="num">{esc(v)}</td>' if num else f"<td>{esc(v)}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _ratio(v) -> str:
    return "" if pd.isna(v) else f"{v:.3f}"


def _img(name: str, alt: str) -> str:
    return f'<img src="{esc(name)}" alt="{esc(alt)}">'


def _none(text: str) -> str:
    return f'<p class="none">{esc(text)}</p>'


def _capped(df: pd.DataFrame, what: str) -> tuple[pd.DataFrame, str]:
    if len(df) <= rd.MAX_CONFIGS:
        return df, ""
    return df.head(rd.MAX_CONFIGS), _none(f"chart shows the first {rd.MAX_CONFIGS} of {len(df)} {what}; "
                                          "the table has them all")


# ---- sections: each returns an HTML fragment and writes its charts into `out` ------------------

def section_summary(inp: ReportInputs) -> str:
    f = inp.frame
    commits = sorted(set(map(str, f["commit"]))) if len(f) else []
    cpus = sorted(set(map(str, f["cpu_info"]))) if len(f) else []
    facts = pd.DataFrame({"": ["results", "measurements", "commits", "CPU", "engines", "generated"],
                          "value": ["; ".join(inp.sources), len(f), ", ".join(c[:12] for c in commits),
                                    "; ".join(cpus),
                                    ", ".join(sorted(set(map(str, f["engine"])))) if len(f) else "",
                                    now_iso()]})
    parts = [html_table(facts)]
    if len(f) and f["config_id"].duplicated().any():
        parts.append("<p>Some configurations were measured more than once: the history section and the "
                     "last table show every measurement; the other sections show each configuration's "
                     "latest.</p>")
    prov = _flatten(inp.provenance)
    if prov:
        parts.append("<details><summary>provenance</summary>"
                     + html_table(pd.DataFrame({"key": list(prov), "value": list(prov.values())}))
                     + "</details>")
    return "\n".join(parts)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + " / "))
        else:
            out[key] = v
    return out


def section_throughput(inp: ReportInputs, out: Path) -> str:
    c = inp.comparison
    if c is None:
        t = rd.throughput_table(inp.current)
        if t.empty:
            return _none("no measurements in these results")
        shown, note = _capped(t, "measurements")
        charts.throughput_chart(list(shown["configuration"]), shown["median t/s"].to_numpy(float),
                                shown["± stddev"].to_numpy(float), out / "throughput.png")
        return "\n".join([_none("no baseline given (--baseline NAME|DIR): tokens/s only, no verdicts"),
                          _img("throughput.png", "tokens/s per configuration"), note, html_table(t)])
    t = c.table
    labels = list(rd.config_labels(t))
    shown, note = _capped(t, "configurations")
    charts.ratio_chart(shown, labels[: len(shown)], inp.threshold, out / "ratio.png")
    table = pd.DataFrame({
        "configuration": labels, "base t/s": t["base_ts"], "new t/s": t["new_ts"],
        "new/base": t["ratio"].map(_ratio), "interval low": t["ci_lo"].map(_ratio),
        "interval high": t["ci_hi"].map(_ratio), "runs base/new":
            [f"{a}/{b}" for a, b in zip(t["n_base"], t["n_new"])],
        "verdict": [verdict_text(r) + (" (wide spread)" if r["noisy"] else "")
                    + (f" (machine busy: {b})" if b and r["verdict"] != MACHINE_BUSY else "")
                    for (_, r), b in zip(t.iterrows(), _column(t, "busy"))],
        "base commit": t["commit_base"].str[:10], "new commit": t["commit_new"].str[:10]})
    classes = ["slower" if v == SLOWER else "faster" if v == FASTER else "busy" if v == MACHINE_BUSY else ""
               for v in t["verdict"]]
    parts = [f'<p class="summary">{esc(summary_line(c))}</p>',
             (f"<p>BASE = {esc(inp.baseline_label)}; NEW = {esc(inp.new_label)}. Rows in red are "
              f"significantly slower by more than {esc(f'{inp.threshold * 100:g}')}%, green faster; "
              f"orange: the machine was busy on one side, so the change is not judged.</p>"),
             _img("ratio.png", "NEW/BASE tokens/s ratio per configuration"), note,
             html_table(table, classes)]
    for side, df in (("BASE", c.only_base), ("NEW", c.only_new)):
        if len(df):
            parts.append(f"<p>{len(df)} configuration(s) measured in {side} only:</p>" + html_table(df))
    return "\n".join(parts)


def section_crossover(inp: ReportInputs, out: Path) -> str:
    pts, best = rd.crossover(inp.current)
    if pts.empty:
        return _none("no prompt-processing results that vary the ubatch or the fdn threshold")
    charts.crossover_chart(pts, best, out / "crossover.png")
    parts = [
        ("<p>Prompt processing tokens/s against the u-batch size, one line per fused delta-net threshold F; "
         "the star marks the fastest point, i.e. the threshold to use on this machine. Open markers are points "
         "whose repetitions spread too wide to judge (spread_ok false): the star goes to the fastest settled "
         "point, and where every point of a panel is that noisy, the pick says "
         f"&ldquo;{esc(rd.TOO_NOISY)}&rdquo;.</p>"),
        _img("crossover.png", "pp tokens/s against ubatch for each fdn threshold")]
    unjudged = int((best["note"] == rd.TOO_NOISY).sum())
    if unjudged:
        parts.append(f'<p class="note"><strong>{unjudged} of {len(best)} pick(s): {esc(rd.TOO_NOISY)}</strong>'
                     " &mdash; more repetitions (-r) or a quieter machine settle them.</p>")
    parts.append(html_table(best))
    return "\n".join(parts)


def section_quality(inp: ReportInputs, out: Path) -> str:
    if inp.quality is None or inp.quality.empty:
        return _none("no quality measures (quality.csv) in these results")
    pts = rd.quality_points(inp.current, inp.quality)
    if pts.empty:
        return _none("quality measures present but none matches a measured configuration")
    charts.pareto_chart(pts, out / "pareto.png")
    parts = [_img("pareto.png", "speed against accuracy per quant type")]
    left = pts[pts["note"] != ""]
    if len(left):
        why = sorted({f"{key_text(v)}: {n}" for v, n in zip(left["vocab_strategy"], left["note"])})
        parts.append(f"<p>Not drawn and no candidates for the Pareto front, for want of the accuracy measure "
                     f"({esc(pts['metric'].iloc[0])}): {esc('; '.join(why))}. Their top-1 agreement is in the "
                     "table.</p>")
    presets = rd.synthetic_presets(inp.current, pts["model"])
    if presets:
        parts.append(f'<p class="note">These are synthetic model(s) (preset {esc(", ".join(presets))}): '
                     "random weights amplify rounding. Their logits have no clear winner, so the small rounding "
                     "error of a quant type flips the top-1 token and moves the distribution far more than it "
                     "would in a trained model. Compare quant types and vocab strategies with each other here; "
                     "these figures are not the accuracy a real model of that quant type would have.</p>")
    cols = ["model", "quant", "vocab_strategy", "t/s", "error", "metric", "top-1 agreement", "pareto", "note"]
    parts.append(html_table(pts[[c for c in cols if c in pts.columns]]))
    return "\n".join(parts)


def section_vocab(inp: ReportInputs, out: Path) -> str:
    d = rd.vocab_groups(inp.current)
    if d.empty:
        strategies = sorted(set(map(str, inp.current["vocab_strategy"]))) if len(inp.current) else []
        return _none(f"no configuration measured with more than one vocab strategy "
                     f"(strategies here: {', '.join(strategies) or 'none'})")
    charts.vocab_chart(d, out / "vocab.png")
    return _img("vocab.png", "tokens/s per vocab strategy") + "\n" + html_table(d)


def section_ops(inp: ReportInputs, out: Path) -> str:
    wide = rd.op_breakdown(inp.frame, inp.profile)
    if wide.empty:
        return _none("no per-op profile (profile.csv) for these results")
    spread = rd.op_spread(inp.frame, inp.profile)
    runs = spread.groupby("configuration", sort=False)["runs"].max()
    shown, note = _capped(wide, "profiled configurations")
    charts.op_chart(shown, out / "ops.png", runs.to_dict())
    cells = spread.set_index(["configuration", "op"])

    def share(cfg, op):
        r = cells.loc[(cfg, op)]
        return (f"{100 * r['median']:.1f} ({100 * r['min']:.1f}–{100 * r['max']:.1f})" if r["runs"] > 1
                else f"{100 * r['median']:.1f}")
    table = pd.DataFrame({"profiled runs": [str(int(runs[c])) for c in wide.index],
                          **{op: [share(c, op) for c in wide.index] for op in wide.columns}},
                         index=pd.Index(wide.index, name="configuration"))
    several = int((runs > 1).sum())
    parts = [("<p>Share of the profiled time per op, summed over layers. The profiler runs each test once, in a "
              "separate session after the timed repetitions: <strong>one profiled run per configuration</strong>, "
              "so the noise of that one run can make a hot spot that is not there; a difference of a few "
              "percent between configurations is not a finding.</p>")]
    if several:
        parts.append(f"<p>{several} configuration(s) are held by several results (at the commit of their latest "
                     "measurement): for them the table gives the median share and its range (min–max) over the "
                     "profiled runs, in %, and the chart the medians, scaled to 100%.</p>")
    else:
        parts.append("<p>No configuration here has more than one profiled run at one commit; a report over "
                     "several result directories of the same configurations gives the median and range per op."
                     "</p>")
    runs_all = rd.profiled_runs(inp.frame, inp.profile)
    older = runs_all[~runs_all["kept"].astype(bool)]
    if len(older):
        parts.append(f"<p>{len(older)} profiled run(s) of {older['label'].nunique()} configuration(s) at an "
                     "earlier commit than the configuration's latest measurement are left out: they measured "
                     "other code, not another sample.</p>")
    return "\n".join(parts + [_img("ops.png", "share of time per op"), note, html_table(table, index=True)])


def section_roofline(inp: ReportInputs, out: Path) -> str:
    llc, where = rd.machine_llc(inp.provenance)
    d = rd.roofline(inp.current, llc)
    if d.empty:
        return _none("no token-generation results with a weight bandwidth")
    shown, note = _capped(d, "configurations")
    charts.roofline_chart(shown, out / "roofline.png")
    parts = [("<p>Token generation reads every weight once per token, so its speed is bounded by the memory "
              "read bandwidth; the percentage is the achieved fraction of it.</p>"),
             _img("roofline.png", "achieved GB/s against machine read bandwidth"), note]
    cached = d[d["in cache"]]
    if len(cached):
        lo, hi = cached["weights MiB/token"].min(), cached["weights MiB/token"].max()
        lo, hi = rd.mib_text(lo * rd.MiB), rd.mib_text(hi * rd.MiB)
        size = lo if lo == hi else f"{lo}–{hi}"
        parts.append(f'<p class="note"><strong>weights fit in cache ({esc(size)} MiB &lt; LLC '
                     f"{esc(rd.mib_text(llc))} MiB): the DRAM roofline does not apply</strong> to {len(cached)} "
                     f"of {len(d)} row(s). Their weights stay in the last-level cache between tokens, so their "
                     f"GB/s measure the cache, not memory (LLC size {esc(where)}).</p>")
    over = d[~d["in cache"] & (d["fraction"] > 1)]
    if len(over):
        parts.append(f'<p class="note"><strong>{len(over)} row(s) exceed the measured read bandwidth</strong>: '
                     "the reference bandwidth is stale (measured on another occasion) or the working set is "
                     "cached.</p>")
    parts.append(html_table(d))
    return "\n".join(parts)


def section_history(inp: ReportInputs, out: Path) -> str:
    h = rd.history(inp.frame)
    if h.empty:
        n = inp.frame["commit"].nunique() if len(inp.frame) else 0
        return _none(f"results from {n} commit(s); history needs a configuration measured at two or more")
    commits = list(h.sort_values("order").drop_duplicates("commit")["commit"])
    drawn = list(dict.fromkeys(h["configuration"]))[: rd.MAX_HISTORY_LINES]
    charts.history_chart(h[h["configuration"].isin(drawn)], commits, out / "history.png")
    n_cfg = h["configuration"].nunique()
    note = (_none(f"chart shows the {len(drawn)} configurations measured at the most commits, of {n_cfg}; "
                  "the table has them all") if n_cfg > len(drawn) else "")
    wide = h.pivot_table(index="configuration", columns="commit", values="median_ts", sort=False)
    wide = wide[[c for c in commits if c in wide.columns]]
    wide.columns = [c[:10] for c in wide.columns]
    return "\n".join([_img("history.png", "tokens/s across commits"), note, html_table(wide, index=True)])


def section_asv(inp: ReportInputs) -> str:
    """The regressions of an `asv publish` HTML directory (harness.report.asv_regressions), one row
    per step up; asv counts larger as worse, so factor = new / old > 1 is slower."""
    a = inp.asv
    where = f"{a.html_dir}" + (f" (project {a.project})" if a.project else "")
    if not a.rows:
        return _none(f"asv found no regressions in {where}")
    several = any(r.graph_params for r in a.rows)
    table = pd.DataFrame({
        "benchmark": [r.benchmark for r in a.rows],
        "parameters": [", ".join(f"{k}={v}" for k, v in r.params.items()) for r in a.rows],
        **({"graph": [", ".join(f"{k}={v}" for k, v in r.graph_params.items()) for r in a.rows]} if several else {}),
        "commits (good..bad)": [r.commits for r in a.rows],
        "date of bad": [r.date[:16].replace("T", " ") for r in a.rows],
        "old": [human_value(r.old, r.unit) for r in a.rows],
        "new": [human_value(r.new, r.unit) for r in a.rows],
        "factor": [f"{r.factor:.2f}x" for r in a.rows],
        "latest": [human_value(r.last, r.unit) for r in a.rows],
    })
    return "\n".join([
        f"<p>{len(a.rows)} regression(s) found by <code>asv publish</code> in {esc(where)}. asv counts larger "
        "as worse (times in seconds): factor = new / old. <em>good..bad</em> is the git range that holds the "
        "step (<code>asv find</code> or <code>harness bisect</code> can narrow it); <em>bad^!</em>: the step is "
        "that one commit. New = the best value after the step, latest = the benchmark's latest value.</p>",
        html_table(table, ["slower"] * len(table))])


# the table of every measurement: (column, heading); identity columns with one value in every row are
# said once above the table instead (config_id, engine, dirty and the file name are left out: the
# summary and the provenance have them; the fraction of the read bandwidth too: the roofline section
# gives it with what it means)
ALL_COLUMNS = [("model", "model"), ("quant", "quant"), ("isa", "isa"), ("n_threads", "threads"),
               ("n_ubatch", "ubatch"), ("fdn_threshold", "fdn"), ("vocab_strategy", "vocab"), ("test", "test"),
               ("median_ts", "median t/s"), ("stddev_ts", "± stddev"), ("min_ts", "min"), ("max_ts", "max"),
               ("weight_gbps", "weights GB/s"), ("peak_rss_bytes", "peak RSS MiB"), ("spread_ok", "spread ok"),
               ("machine_busy", "machine busy"),
               ("commit", "commit"), ("test_time", "measured"), ("source", "results")]
ALL_COLLAPSIBLE = {"quant", "isa", "n_threads", "n_ubatch", "fdn_threshold", "commit", "test_time", "source"}


def _column(t: pd.DataFrame, name: str) -> list:
    """A comparison-table column as a list, or empty strings when the comparison has none (older code)."""
    return list(t[name].fillna("")) if name in t.columns else [""] * len(t)


def section_all(inp: ReportInputs) -> str:
    f = inp.frame
    if f.empty:
        return _none("no measurements")
    cols, same = {}, []
    for c, head in ALL_COLUMNS:
        if c not in f.columns:
            continue
        v = f[c]
        if c == "commit":
            v = v.map(rd.key_text).str[:10]
        elif c == "peak_rss_bytes":
            v = pd.to_numeric(v, errors="coerce") / 2**20
        if c in ALL_COLLAPSIBLE and len(f) > 1 and v.map(rd.key_text).nunique() == 1:
            same.append(f"{head} {key_text(v.iloc[0])}")
            continue
        cols[head] = v.values
    parts = [f"<p>same in every row: {esc(', '.join(same))}</p>"] if same else []
    return "\n".join(parts + [html_table(pd.DataFrame(cols))])


OURS = "qwen35-harness"


def _peer_failures(prov) -> list[dict]:
    """Every peer_failures entry anywhere in the provenance (one run, runs, or load_many's sources)."""
    found = []
    if isinstance(prov, dict):
        for k, v in prov.items():
            if k == "peer_failures" and isinstance(v, list):
                found += [x for x in v if isinstance(x, dict)]
            elif k != "runs" or not prov.get("peer_failures"):
                found += _peer_failures(v)
    elif isinstance(prov, list):
        for v in prov:
            found += _peer_failures(v)
    unique = {json.dumps(x, sort_keys=True): x for x in found}
    return list(unique.values())


def section_engines(inp: ReportInputs, out: Path) -> str:
    """Ours against each peer engine measured in the same results (sweep --engine): one table per
    peer, matched on model file, test, depth and threads, judged as compare judges (NEW = ours)."""
    from harness.analysis.compare import NothingToCompare, compare_frames, noise_records_lookup
    f = inp.current
    engines = sorted(set(map(str, f["engine"]))) if len(f) else []
    failures = _peer_failures(inp.provenance)
    if len(engines) < 2 and not failures:
        return _none("one engine in these results (`harness sweep --engine native,llama-bench=PATH` measures "
                     "llama.cpp or ik_llama.cpp beside ours)")
    ours = f[f["engine"] == OURS]
    parts = []
    for peer in (e for e in engines if e != OURS):
        theirs = f[f["engine"] == peer]
        try:
            c = compare_frames(theirs, ours, inp.threshold, noise_of=noise_records_lookup(theirs, ours))
        except NothingToCompare as e:
            parts.append(f"<h3>ours against {esc(peer)}</h3>" + _none(str(e)))
            continue
        t = c.table
        table = pd.DataFrame({
            "configuration": list(rd.config_labels(t)), f"{peer} t/s": t["base_ts"], "ours t/s": t["new_ts"],
            f"ours / {peer}": t["ratio"].map(_ratio), "interval low": t["ci_lo"].map(_ratio),
            "interval high": t["ci_hi"].map(_ratio), "verdict (ours)": [verdict_text(r) for _, r in t.iterrows()],
            f"{peer} settings": t["settings_base"], f"{peer} commit": t["commit_base"].str[:10]})
        classes = ["slower" if v == SLOWER else "faster" if v == FASTER else "" for v in t["verdict"]]
        parts.append(f"<h3>ours against {esc(peer)}</h3><p>{esc(summary_line(c))} (slower / faster: ours "
                     f"against {esc(peer)})</p>" + html_table(table, classes))
    if failures:
        parts.append("<p>Peer configurations that did not run:</p>" + html_table(pd.DataFrame(failures)))
    return "\n".join(parts)


def section_depth(inp: ReportInputs, out: Path) -> str:
    """S_PP and S_TG against context depth (harness sweep-depth, or sweeps and bench runs at several
    -d), one line per engine and setup; the TG table gives the share of the read bandwidth with the
    KV-cache bytes counted."""
    curves = rd.depth_curves(inp.frame)
    if curves.empty:
        return _none("no setup measured at two or more context depths (`harness sweep-depth MODEL -o DIR`, "
                     "or a sweep with -d 0,4096,8192)")
    charts.depth_chart(curves, out / "depth.png")
    tg = curves[curves["kind"] == "tg"]
    table = pd.DataFrame({"curve": tg["curve"], "depth": tg["n_depth"], "t/s": tg["tokens_s"],
                          "% of read bandwidth (weights + KV)": (100 * tg["bandwidth_fraction"]).round(0)})
    return "\n".join([_img("depth.png", "tokens/s against context depth"),
                      "<p>Generation at depth reads the KV cache of every full-attention layer on top of the "
                      "weights; the bandwidth share counts both (our F32 cache; peers' rows have no byte "
                      "count).</p>", html_table(table) if len(table) else ""])


SECTIONS = [
    ("Tokens/s per configuration", section_throughput),
    ("Engines side by side", section_engines),
    ("Speed against context depth", section_depth),
    ("Fused vs chunked delta-net: crossover", section_crossover),
    ("Quant type: speed vs accuracy", section_quality),
    ("Vocab strategy", section_vocab),
    ("Per-op time", section_ops),
    ("Roofline: bandwidth achieved in token generation", section_roofline),
    ("History across commits", section_history),
]


def write_report(inp: ReportInputs, out: Path) -> Path:
    """Write out/index.html and its charts; returns the path of index.html."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in CHART_FILES:              # charts of an earlier report that this one may not draw
        (out / name).unlink(missing_ok=True)
    body = ["<h1>qwen35-harness report</h1>", section_summary(inp)]
    for title, fn in SECTIONS:
        body.append(f"<h2>{esc(title)}</h2>")
        body.append(fn(inp, out))
    if inp.asv is not None:
        body += ["<h2>Regressions found by asv</h2>", section_asv(inp)]
    body += ["<h2>All measurements</h2>", section_all(inp)]
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>qwen35-harness report</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
    index = out / "index.html"
    atomic_write_text(index, page)
    return index

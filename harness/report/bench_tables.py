"""The tables `harness bench` prints: markdown (with the per-op profile), and llama-bench's CSV, JSON,
JSONL and SQL."""
from __future__ import annotations

import json

import numpy as np

from harness.measure.bench import BenchConfig, BenchResult
from harness.store import llama_bench_format as fmt
from harness.model.loader import Model


def roofline_cell(weight_gbps: float, read_gbps: float | None, under_load: bool = False) -> str:
    """'8.14 (63% of 12.9)': weight GB/s against the machine's read bandwidth. Above 100% the cell
    says the reference is stale (measured under load, when the run saw a busy machine) instead of
    printing a bare impossible percentage; '' without a figure or a reference."""
    if weight_gbps is None or np.isnan(weight_gbps) or not read_gbps or np.isnan(read_gbps) or read_gbps <= 0:
        return ""
    pct = 100 * weight_gbps / read_gbps
    if pct <= 100:
        return f"{weight_gbps:.2f} ({pct:.0f}% of {read_gbps:.1f})"
    why = " measured under load: stale reference" if under_load else ": stale reference, or the working set is cached"
    return f"{weight_gbps:.2f} ({pct:.0f}% of {read_gbps:.1f} GB/s{why})"


def format_markdown(model: Model, cfg: BenchConfig, results: list[BenchResult]) -> str:
    size = model.weight_bytes() / 2**20
    head = ("| model | size | isa | threads | ubatch | fdn | test | t/s | median t/s | "
            "weights GB/s (% of read bw) | peak RSS |\n"
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows, notes = [head], []
    if (cfg.type_k, cfg.type_v) != ("f32", "f32"):
        notes.append(f"KV cache: K {cfg.type_k}, V {cfg.type_v}")
    if cfg.prompt_ids:
        notes.append(f"prompt: {cfg.prompt_source} ({len(cfg.prompt_ids)} tokens; pp runs its first {cfg.n_prompt}, "
                     f"tg starts from its first)")
    for r in results:
        gbps = roofline_cell(r.weight_gbps, r.extra.get("read_gbps"), r.machine_busy)
        rss = f"{r.peak_rss_bytes / 2**20:.0f} MiB" if r.peak_rss_bytes else ""
        rows.append(f"| {model.name} | {size:.2f} MiB | {r.extra.get('isa')} | {cfg.threads} | {cfg.ubatch} | "
                    f"{cfg.fdn_threshold} | {r.test} | {r.avg_ts:.2f} ± {r.stddev_ts:.2f} | {r.median_ts:.2f} | "
                    f"{gbps} | {rss} |")
        if r.spread_note(cfg.spread_limit):
            notes.append("note: " + r.spread_note(cfg.spread_limit))
        if r.machine_busy:
            notes.append(f"note: {r.test}: {r.busy_note or 'machine busy'}")
    if results and results[0].extra.get("read_measured"):
        notes.append(f"read bandwidth measured {results[0].extra['read_measured']} "
                     f"({results[0].extra.get('read_threads', cfg.threads)} threads)")
    return "\n".join(rows + ([""] + notes if notes else []))


def format_profile(results: list[BenchResult], top: int = 12) -> str:
    """Time per op of each test's profiled run, summed over layers, largest first; for the weight
    products also their rate, GMAC/s (multiply-adds, rows x columns x tokens, per second)."""
    out = []
    for r in results:
        if r.profile is None or r.profile.empty:
            continue
        prof = r.profile if "macs" in r.profile.columns else r.profile.assign(macs=0)
        by_op = prof.groupby("op")[["calls", "ns", "bytes", "macs"]].sum().sort_values("ns", ascending=False)
        total = by_op["ns"].sum()
        out.append(f"profile of {r.test} (one run, profiler on): {total / 1e6:.2f} ms in ops\n"
                   "| op | calls | ms | % | GMAC/s |\n| --- | ---: | ---: | ---: | ---: |")
        for op, p in by_op.head(top).iterrows():
            rate = f"{p.macs / p.ns:.1f}" if p.macs > 0 and p.ns > 0 else ""
            out.append(f"| {op} | {int(p.calls)} | {p.ns / 1e6:.3f} | {100 * p.ns / total:.1f} | {rate} |")
        out.append("")
    return "\n".join(out).rstrip()


def format_csv(recs: list[dict]) -> str:
    """As llama-bench -o csv (every llama-bench field, quoted), our fields after its own."""
    return fmt.to_csv(recs)


def format_sql(recs: list[dict]) -> str:
    """As llama-bench -o sql: pipe it into `sqlite3 llama-bench.sqlite` beside llama-bench's."""
    return fmt.to_sql(recs)


def format_json(recs: list[dict]) -> str:
    return json.dumps(recs, indent=2, default=_json_default)


def format_jsonl(recs: list[dict]) -> str:
    """One record per line, as llama-bench -o jsonl: files of several runs concatenate."""
    return "\n".join(json.dumps(r, default=_json_default) for r in recs)


def _json_default(v):
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    raise TypeError(f"not JSON serializable: {type(v).__name__}")


def format_engines_md(ours: list[dict], peers: list[dict]) -> str:
    """Ours against each peer, test by test: median tokens/s and ours / theirs."""
    import statistics
    def med(r):
        return statistics.median(r.get("samples_ts") or [r["avg_ts"]])
    mine = {(r["n_prompt"], r["n_gen"]): med(r) for r in ours}
    lines = ["| engine | test | t/s | ours / this |", "| --- | --- | ---: | ---: |"]
    for r in peers:
        key = (int(r["n_prompt"]), int(r["n_gen"]))
        name = f"pp{key[0]}" if key[0] else f"tg{key[1]}"
        ratio = f"{mine[key] / med(r):.2f}" if key in mine and med(r) > 0 else "-"
        lines.append(f"| {r['engine']} {str(r.get('build_commit', ''))[:8]} | {name} | {med(r):.2f} | {ratio} |")
    return "\n".join(lines)

"""One measurement (a BenchResult of one configuration) as a row of the results store."""
from __future__ import annotations

import math
import os

from . import __version__
from .bench import BenchConfig, BenchResult
from .fingerprint import ModelIdentity
from .provenance import cpu_model, git_commit, load_average, now_iso
from .results import config_id


def _nan_to_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def affinity_text() -> str:
    """The CPUs this process may run on, as '0-3,6'."""
    if not hasattr(os, "sched_getaffinity"):
        return ""
    cpus, parts = sorted(os.sched_getaffinity(0)), []
    for c in cpus:
        if parts and parts[-1][1] == c - 1:
            parts[-1][1] = c
        else:
            parts.append([c, c])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in parts)


def result_row(ident: ModelIdentity, cfg: BenchConfig, r: BenchResult, commit: tuple[str, bool] | None = None) -> dict:
    """The results-store columns (harness.results.RESULT_COLUMNS) of one measurement."""
    sha, dirty = commit or git_commit()
    s = r.summary
    read = r.extra.get("read_gbps")
    gbps = r.weight_gbps
    row = dict(ident.columns())
    row.update({
        "isa": r.extra.get("isa", cfg.isa), "n_threads": cfg.threads, "n_ubatch": cfg.ubatch,
        "fdn_threshold": cfg.fdn_threshold, "vocab_strategy": cfg.vocab_strategy,
        "n_prompt": r.n_prompt, "n_gen": r.n_gen, "n_depth": r.n_depth, "test": r.test,
        "avg_ts": s.avg, "median_ts": s.median, "stddev_ts": _nan_to_none(s.stddev), "min_ts": s.min,
        "max_ts": s.max, "samples_ts": r.samples_ts, "ms_per_token": 1000.0 / s.median,
        "weight_gbps": _nan_to_none(gbps), "machine_read_gbps": read,
        "bandwidth_fraction": gbps / read if read and not math.isnan(gbps) else None,
        "peak_rss_bytes": r.peak_rss_bytes, "spread_ok": r.spread_ok(cfg.spread_limit),
        "engine": "qwen35-harness", "commit": sha, "dirty": dirty, "version": __version__,
        "test_time": now_iso(), "cpu_info": cpu_model(), "load_avg": load_average(),
        "cpu_affinity": affinity_text(),
    })
    row["config_id"] = config_id(row)
    return row


def profile_rows(cid: str, r: BenchResult) -> list[dict]:
    """The profiled run of a measurement in the long form of profile.csv."""
    if r.profile is None:
        return []
    return [{"config_id": cid, "test": r.test, "layer": int(p.layer), "op": p.op, "calls": int(p.calls),
             "ns": int(p.ns), "bytes": int(p.bytes)} for p in r.profile.itertuples()]

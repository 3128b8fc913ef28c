"""One measurement (a BenchResult of one configuration) as a row of the results store, and as the
record `harness bench -o json` prints (llama-bench's field names plus the store's columns)."""
from __future__ import annotations

import math
import os
import statistics

import numpy as np

from harness.version import __version__
from harness.measure.bench import BenchConfig, BenchResult
from harness.measure.machine import affinity_cpus
from harness.measure.system_state import SystemState, run_states_brief
from harness.model.fingerprint import ModelIdentity, identify
from harness.model.loader import Model
from harness.provenance import cpu_model, git_commit, load_average, now_iso
from harness.store import llama_bench_format as fmt
from harness.store.schema import config_id


def _nan_to_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def affinity_text() -> str:
    """The CPUs this process may run on, as '0-3,6' ('' where the OS does not say)."""
    if not hasattr(os, "sched_getaffinity"):
        return ""
    parts = []
    for c in affinity_cpus():
        if parts and parts[-1][1] == c - 1:
            parts[-1][1] = c
        else:
            parts.append([c, c])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in parts)


def result_row(ident: ModelIdentity, cfg: BenchConfig, r: BenchResult, commit: tuple[str, bool] | None = None) -> dict:
    """The results-store columns (harness.store.schema.RESULT_COLUMNS) of one measurement."""
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
        "cpu_affinity": affinity_text(), "machine_busy": bool(r.machine_busy), "busy_note": r.busy_note,
        "engine_settings": fmt.our_settings_text(cfg.type_k, cfg.type_v, cfg.prompt_source, cfg.repack),
    })
    row["config_id"] = config_id(row)
    return row


def profile_rows(cid: str, r: BenchResult) -> list[dict]:
    """The profiled run of a measurement in the long form of profile.csv."""
    if r.profile is None:
        return []
    return [{"config_id": cid, "test": r.test, "layer": int(p.layer), "op": p.op, "calls": int(p.calls),
             "ns": int(p.ns), "bytes": int(p.bytes), "macs": int(getattr(p, "macs", 0))}
            for p in r.profile.itertuples()]


def records(model: Model, cfg: BenchConfig, results: list[BenchResult],
            states: tuple[SystemState, SystemState] | None = None) -> list[dict]:
    """One dict per test with llama-bench's JSON field names, plus ours (the results-store columns);
    with `states` (the machine at the start and the end of the run) also system_state, one line
    (system_state.run_states_brief; a field the results store ignores)."""
    commit, dirty = git_commit()
    ident = identify(model)
    n_params = sum(int(np.prod(model.info(sp.name).shape)) for sp in model.specs)
    brief = run_states_brief(*states) if states is not None else None
    out = []
    for r in results:
        row = result_row(ident, cfg, r, (commit, dirty))
        test_time = str(row["test_time"]).replace("+00:00", "Z")    # llama-bench's form
        rec = {
            # every llama-bench field, in its order (harness.store.llama_bench_format)
            # build_commit: a short hash, as llama-bench writes its own (the full one is in `commit`)
            "build_commit": commit[:7], "build_number": 0, "cpu_info": cpu_model(),
            **fmt.neutral_fields(cfg.threads, cfg.ubatch), "type_k": cfg.type_k, "type_v": cfg.type_v,
            "repack": bool(r.extra.get("packed_bytes")),
            "model_filename": model.path,
            "model_type": fmt.model_type(model.config.arch, model.config.n_layer, model.config.n_embd,
                                         model.metadata.get("general.file_type")),
            "model_size": model.weight_bytes(), "model_n_params": n_params,
            "n_prompt": r.n_prompt, "n_gen": r.n_gen, "n_depth": r.n_depth, "test_time": test_time,
            "avg_ns": int(statistics.fmean(r.samples_ns)),
            "stddev_ns": int(statistics.stdev(r.samples_ns)) if len(r.samples_ns) > 1 else 0,
            "avg_ts": r.avg_ts, "stddev_ts": r.stddev_ts,
            "samples_ns": r.samples_ns, "samples_ts": r.samples_ts,
            # ours
            "ubatch": cfg.ubatch, "bytes_per_token": r.bytes_per_token,
            "machine_read_measured": r.extra.get("read_measured"),
            "machine_read_source": r.extra.get("read_source"),
            "machine_read_start_gbps": r.extra.get("read_gbps_start"),
            "machine_read_end_gbps": r.extra.get("read_gbps_end"),
            "machine_read_cached_gbps": r.extra.get("read_cached_gbps"),
            "others_cpu": r.extra.get("others_cpu"), "tg_1thread_ts": r.extra.get("tg_1thread_ts"),
            # --repack: the mode asked for, the bytes of the repacked copies and the session's start
            # (the repacking, when on): the load-time cost of the layout
            "repack_mode": cfg.repack, "packed_bytes": r.extra.get("packed_bytes"),
            "session_start_ms": r.extra.get("session_start_ms"),
        }
        for k, v in row.items():
            rec.setdefault(k, v)
        rec["spread_note"] = r.spread_note(cfg.spread_limit)
        if brief is not None:
            rec["system_state"] = brief
        if r.profile is not None:
            rec["profile"] = r.profile.drop(columns=["kind"], errors="ignore").to_dict("records")
        out.append(fmt.ordered({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}))
    return out

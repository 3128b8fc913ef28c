"""Synthetic result sets that follow the results-store contract column for column, for the tests of
compare, baseline and report (they must not depend on running a sweep)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

RESULT_COLUMNS = [
    "config_id", "model", "model_filename", "model_hash", "model_preset", "quant", "isa", "n_threads",
    "n_ubatch", "fdn_threshold", "vocab_strategy", "n_prompt", "n_gen", "n_depth", "test",
    "avg_ts", "median_ts", "stddev_ts", "min_ts", "max_ts", "samples_ts", "ms_per_token", "weight_gbps",
    "machine_read_gbps", "bandwidth_fraction", "peak_rss_bytes", "spread_ok",
    "engine", "commit", "dirty", "version", "test_time", "cpu_info",
]
PROFILE_COLUMNS = ["config_id", "test", "layer", "op", "calls", "ns", "bytes"]
QUALITY_COLUMNS = ["config_id", "model", "quant", "vocab_strategy", "n_positions", "top1_agreement",
                   "topk_recall", "k", "kl_mean", "kl_max", "max_abs_err"]
KEY = ["model_hash", "isa", "n_threads", "n_ubatch", "fdn_threshold", "vocab_strategy", "n_prompt",
       "n_gen", "n_depth", "test"]


def row(*, model="tiny-q4_k_m", quant="q4_k_m", preset="tiny", isa="avx2", threads=2, ubatch=512,
        fdn=512, vocab="full", n_prompt=0, n_gen=16, depth=0, samples=(100.0, 101.0, 99.0),
        engine="qwen35-harness", commit="a" * 40, test_time="2026-11-23T10:00:00+00:00",
        model_filename=None, bytes_per_token=30_000_000, read_gbps=24.0) -> dict:
    """One measurement row: one configuration x one test, figures derived from `samples`."""
    test = f"pp{n_prompt}" if n_prompt else f"tg{n_gen}"
    if depth:
        test += f" @ d{depth}"
    filename = model_filename or f"/cache/{model}.gguf"
    model_hash = hashlib.sha256(filename.encode()).hexdigest()
    s = np.asarray(samples, dtype=float)
    med = float(np.median(s))
    gbps = bytes_per_token * med / 1e9 if n_gen and not n_prompt else float("nan")
    r = {
        "model": model, "model_filename": filename, "model_hash": model_hash, "model_preset": preset,
        "quant": quant, "isa": isa, "n_threads": threads, "n_ubatch": ubatch, "fdn_threshold": fdn,
        "vocab_strategy": vocab, "n_prompt": n_prompt, "n_gen": n_gen, "n_depth": depth, "test": test,
        "avg_ts": float(s.mean()), "median_ts": med, "stddev_ts": float(s.std(ddof=1)) if len(s) > 1 else 0.0,
        "min_ts": float(s.min()), "max_ts": float(s.max()), "samples_ts": json.dumps([float(x) for x in s]),
        "ms_per_token": 1000 / med, "weight_gbps": gbps, "machine_read_gbps": read_gbps,
        "bandwidth_fraction": gbps / read_gbps, "peak_rss_bytes": 200_000_000,
        "spread_ok": bool(len(s) < 2 or s.std(ddof=1) / med < 0.1),
        "engine": engine, "commit": commit, "dirty": False, "version": "0.1.0", "test_time": test_time,
        "cpu_info": "AMD EPYC 7B13",
    }
    r["config_id"] = hashlib.sha256("|".join(str(r[k]) for k in KEY).encode()).hexdigest()[:12]
    return {c: r[c] for c in RESULT_COLUMNS}


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def profile_for(results: pd.DataFrame, scale: dict[str, float] | None = None) -> pd.DataFrame:
    """A plausible per-op profile for every row: a few ops over two layers and the head; op i in
    layer l costs (i + 1) * (l + 2) ms, times scale[op] where given (a noisier profiled run)."""
    out = []
    for _, r in results.iterrows():
        for layer in (-1, 0, 1):
            ops = ["lm_head", "embed"] if layer == -1 else ["matmul", "deltanet", "attention", "norm"]
            for i, op in enumerate(ops):
                ns = 1_000_000 * (i + 1) * (layer + 2) * (scale or {}).get(op, 1.0)
                out.append({"config_id": r["config_id"], "test": r["test"], "layer": layer, "op": op,
                            "calls": 10, "ns": int(ns), "bytes": 4096 * (i + 1)})
    return pd.DataFrame(out, columns=PROFILE_COLUMNS)


def provenance(commit="a" * 40, model_name="tiny-q4_k_m", cpu: str | None = None,
               cores: int | None = None) -> dict:
    """Provenance as the store writes it; the machine is this one unless told otherwise."""
    from harness.provenance import cpu_model
    return {"commit": commit, "dirty": False, "version": "0.1.0",
            "compiler": {"cc": "gcc", "cflags": "-O2"}, "isa_best": "avx2",
            "cpu_model": cpu or cpu_model(), "cpu_flags": ["avx2", "fma"],
            "cpu_count": cores if cores is not None else os.cpu_count(), "os": "Linux", "python": "3.11.7",
            "numpy": "2.4.6", "created": "2026-11-23T10:00:00+00:00", "model_name": model_name}


def write_dir(path: Path, results: pd.DataFrame, profile: pd.DataFrame | None = None,
              quality: pd.DataFrame | None = None, prov: dict | None = None) -> Path:
    """A results directory laid out as the store writes it."""
    path.mkdir(parents=True, exist_ok=True)
    results.to_csv(path / "results.csv", index=False)
    (profile if profile is not None else pd.DataFrame(columns=PROFILE_COLUMNS)).to_csv(
        path / "profile.csv", index=False)
    if quality is not None:
        quality.to_csv(path / "quality.csv", index=False)
    (path / "provenance.json").write_text(json.dumps(prov or provenance(), indent=1))
    return path

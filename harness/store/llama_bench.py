"""llama-bench-format records (`-o json` or `-o jsonl`) as rows of the results store, so they can be
listed, compared and charted next to ours. Records of llama.cpp's llama-bench become rows with
engine = llama.cpp; a record that names its engine (`harness bench -o json` writes engine =
qwen35-harness and the store's own columns beside llama-bench's) keeps its engine and those columns.

When the model file a record names can be found (as written, or by its name beside the JSON file)
it is hashed like ours, so its rows share our configuration keys' model_hash; otherwise the hash
is 'unhashed:<file name>:<size>'. The ISA and fdn threshold are not llama.cpp settings: they stay
empty. Weight GB/s is filled in for tg rows when the file is a model we can read."""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pandas as pd

from harness.errors import HarnessError, ResultsCorruptError, ResultsError
from harness.store.schema import (PROFILE_COLUMNS, QUALITY_COLUMNS, SPREAD_LIMIT, ResultSet, rows_frame, summarize,
                                  test_name)

NEEDED = ("model_filename", "n_prompt", "n_gen", "avg_ts")
LLAMA_CPP = "llama.cpp"
# store columns that a record carrying its own engine (ours) gives directly; a llama-bench record has
# none of them, so they are derived or left empty there
OWN_COLUMNS = ("model", "model_preset", "model_hash", "quant", "isa", "fdn_threshold", "vocab_strategy", "commit",
               "dirty", "version", "machine_read_gbps", "bandwidth_fraction", "weight_gbps", "peak_rss_bytes",
               "spread_ok", "load_avg", "cpu_affinity", "machine_busy", "busy_note")


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records of a llama-bench JSON array or JSONL file; errors name the file (and line)."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"{p}: cannot be read: {getattr(e, 'strerror', None) or e}") from None
    stripped = text.strip()
    if not stripped:
        raise ResultsCorruptError(f"{p}: empty file, no llama-bench records")
    if stripped.startswith("["):
        try:
            recs = json.loads(stripped)
        except ValueError as e:
            raise ResultsCorruptError(f"{p}: not valid JSON ({e})") from None
    else:
        recs = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    recs.append(json.loads(line))
                except ValueError as e:
                    raise ResultsCorruptError(f"{p}: line {i}: not valid JSON ({e})") from None
    for i, r in enumerate(recs, 1):
        if not isinstance(r, dict):
            raise ResultsCorruptError(f"{p}: record {i} is not a JSON object")
        missing = [k for k in NEEDED if k not in r]
        if missing:
            raise ResultsCorruptError(f"{p}: record {i} lacks {', '.join(missing)}: not llama-bench output")
    return recs


def quant_from_model_type(model_type: str) -> str:
    """'qwen35 0.8B Q4_K - Medium' -> 'q4_k_m'; 'qwen35 0.8B BF16' -> 'bf16'."""
    parts = model_type.split(maxsplit=2)
    ftype = parts[2] if len(parts) == 3 else model_type
    ftype = re.sub(r"\s*-\s*[\d.]+ bpw", "", ftype.strip(), flags=re.IGNORECASE)
    ftype = re.sub(r"^all\s+", "", ftype, flags=re.IGNORECASE)
    for word, suffix in (("small", "_s"), ("medium", "_m"), ("large", "_l")):
        ftype = re.sub(rf"\s*-\s*{word}$", suffix, ftype, flags=re.IGNORECASE)
    return ftype.lower().replace(" ", "_")


def _find_model(filename: str, beside: Path) -> Path | None:
    for cand in (Path(filename), beside / Path(filename).name):
        if cand.is_file():
            return cand
    return None


def _model_facts(filename: str, size, beside: Path, cache: dict) -> tuple[str, int | None]:
    """(model_hash, bytes_per_token or None) of the file a record names."""
    if filename in cache:
        return cache[filename]
    from harness.model.fingerprint import file_hash
    path = _find_model(filename, beside)
    facts = (f"unhashed:{Path(filename).name}:{size}", None)
    if path is not None:
        bpt = None
        try:
            from harness.model.loader import load_model
            with load_model(path) as m:
                bpt = m.bytes_per_token()
        except HarnessError:   # a model we cannot read: keep the hash, leave the bandwidth empty
            bpt = None
        facts = (file_hash(path), bpt)
    cache[filename] = facts
    return facts


def _num(v, default=None):
    try:
        f = float(v)
        return default if math.isnan(f) else f
    except (TypeError, ValueError):
        return default


def llama_rows(records: list[dict], beside: Path) -> list[dict]:
    cache: dict = {}
    rows = []
    for r in records:
        n_prompt, n_gen, n_depth = int(r.get("n_prompt", 0)), int(r.get("n_gen", 0)), int(r.get("n_depth", 0) or 0)
        samples = [float(x) for x in (r.get("samples_ts") or [r["avg_ts"]])]
        s = summarize(samples)
        engine = str(r.get("engine") or LLAMA_CPP)
        model_hash, bpt = (r["model_hash"], None) if r.get("model_hash") else \
            _model_facts(str(r["model_filename"]), r.get("model_size"), beside, cache)
        gbps = bpt * s.median / 1e9 if bpt and n_gen and not n_prompt else None
        spread = s.spread
        row = {
            "model": Path(str(r["model_filename"])).stem, "model_filename": str(r["model_filename"]),
            "model_hash": model_hash, "model_preset": "",
            "quant": quant_from_model_type(str(r.get("model_type", ""))) if r.get("model_type") else "",
            "isa": "", "n_threads": int(r.get("n_threads", 0)), "n_ubatch": int(r.get("n_ubatch", 0)),
            "fdn_threshold": None, "vocab_strategy": "full", "n_prompt": n_prompt, "n_gen": n_gen,
            "n_depth": n_depth, "test": test_name(n_prompt, n_gen, n_depth),
            "avg_ts": s.avg, "median_ts": s.median, "stddev_ts": _num(s.stddev), "min_ts": s.min, "max_ts": s.max,
            "samples_ts": samples, "ms_per_token": 1000.0 / s.median, "weight_gbps": gbps,
            "machine_read_gbps": None, "bandwidth_fraction": None, "peak_rss_bytes": None,
            "spread_ok": bool(spread <= SPREAD_LIMIT) if not math.isnan(spread) else False,
            "engine": engine, "commit": str(r.get("build_commit", "")), "dirty": False,
            "version": str(r.get("build_number", "")), "test_time": str(r.get("test_time", "")),
            "cpu_info": str(r.get("cpu_info", "")), "load_avg": None, "cpu_affinity": str(r.get("cpu_mask", "")),
        }
        if engine != LLAMA_CPP:
            row.update({k: r[k] for k in OWN_COLUMNS if r.get(k) is not None})
        rows.append(row)
    return rows


def load_llama_bench(path: str | os.PathLike) -> ResultSet:
    p = Path(path)
    frame = rows_frame(llama_rows(read_records(p), p.parent))
    frame["spread_ok"] = frame["spread_ok"].astype("boolean")
    frame["dirty"] = frame["dirty"].astype("boolean")
    prov = {"engine": ", ".join(sorted(set(frame["engine"]))), "imported_from": str(p)}
    return ResultSet(frame, pd.DataFrame(columns=PROFILE_COLUMNS), pd.DataFrame(columns=QUALITY_COLUMNS),
                     prov, [str(p)])

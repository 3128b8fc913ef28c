"""llama-bench output (json, jsonl, csv, sql text or an sqlite database: read_records tells them
apart) as rows of the results store, so it can be listed, compared and charted next to ours.
Records of llama.cpp's llama-bench become rows with engine = llama.cpp, ik_llama.cpp's (they carry its
own fields, such as mla_attn or fused_moe) engine = ik_llama.cpp; a record that names its engine
(`harness bench -o json` writes engine = qwen35-harness and the store's own columns beside
llama-bench's) keeps its engine and those columns. A peer record's settings beyond our configuration
key (flash_attn, type_k, n_batch, ...; harness.store.llama_bench_format.settings_text) go to the
engine_settings column, which is part of the key.

When the model file a record names can be found (as written, or by its name beside the file) it is
hashed like ours, so its rows share our configuration keys' model_hash; otherwise the hash is
'unhashed:<file name>:<size>'. The ISA and fdn threshold are not llama.cpp settings: they stay
empty. Weight GB/s is filled in for tg rows when the file is a model we can read."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sqlite3
from pathlib import Path

import pandas as pd

from harness.store import llama_bench_format as fmt
from harness.errors import HarnessError, ResultsCorruptError, ResultsError
from harness.store.schema import (PROFILE_COLUMNS, QUALITY_COLUMNS, SPREAD_LIMIT, ResultSet, rows_frame, summarize,
                                  test_name)

NEEDED = ("model_filename", "n_prompt", "n_gen", "avg_ts")
LLAMA_CPP = "llama.cpp"
# store columns that a record carrying its own engine (ours) gives directly; a llama-bench record has
# none of them, so they are derived or left empty there
OWN_COLUMNS = ("model", "model_preset", "model_hash", "quant", "isa", "fdn_threshold", "vocab_strategy", "commit",
               "dirty", "version", "machine_read_gbps", "bandwidth_fraction", "weight_gbps", "peak_rss_bytes",
               "spread_ok", "load_avg", "cpu_affinity", "machine_busy", "busy_note", "engine_settings")


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records of any llama-bench output file: JSON array, JSONL, CSV, an SQLite database or the
    SQL text of `-o sql`; errors name the file (and line or record)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ResultsError(f"{p}: cannot be read: {e.strerror or e}") from None
    if raw.startswith(SQLITE_MAGIC):
        return _checked(_sqlite_records(p, None), p)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultsCorruptError(f"{p}: neither text nor an SQLite database: not llama-bench output") from None
    return parse_records_text(text, p)


def parse_records_text(text: str, where) -> list[dict]:
    """The records of llama-bench output held in a string (json, jsonl, csv or sql text); `where`
    names it in errors (a path, or 'llama.cpp output')."""
    stripped = text.strip()
    if not stripped:
        raise ResultsCorruptError(f"{where}: empty file, no llama-bench records")
    if stripped.startswith("["):
        recs = _json_records(where, stripped)
    elif stripped.startswith("{"):
        recs = _jsonl_records(where, text)
    elif re.match(r"(?is)^(create\s+table|insert\s+into|begin)", stripped):
        recs = _sqlite_records(where, text)
    else:
        recs = _csv_records(where, text)
    return _checked(recs, where)


def _checked(recs: list, where) -> list[dict]:
    for i, r in enumerate(recs, 1):
        if not isinstance(r, dict):
            raise ResultsCorruptError(f"{where}: record {i} is not a JSON object")
        missing = [k for k in NEEDED if k not in r]
        if missing:
            raise ResultsCorruptError(f"{where}: record {i} lacks {', '.join(missing)}: not llama-bench output")
    if not recs:
        raise ResultsCorruptError(f"{where}: no llama-bench records")
    return recs


SQLITE_MAGIC = b"SQLite format 3\x00"


def _json_records(p, text: str) -> list:
    try:
        recs = json.loads(text)
    except ValueError as e:
        raise ResultsCorruptError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(recs, list):
        raise ResultsCorruptError(f"{p}: expected a JSON array of llama-bench records")
    return recs


def _jsonl_records(p, text: str) -> list:
    recs = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                recs.append(json.loads(line))
            except ValueError as e:
                raise ResultsCorruptError(f"{p}: line {i}: not valid JSON ({e})") from None
    return recs


def _loose(field: str, text: str):
    """A CSV / SQL cell as the value JSON would hold: llama-bench's typed fields by their type,
    others (our columns) read back from their text: JSON lists, numbers, True/False, '' = none."""
    if text is None:
        return None
    if field in fmt.INT_FIELDS | fmt.BOOL_FIELDS | fmt.FLOAT_FIELDS:
        return fmt.typed(field, text) if str(text).strip() != "" else None
    if not isinstance(text, str):
        return text
    s = text.strip()
    if s == "" and field not in fmt.FIELDS:
        return None
    if s.startswith(("[", "{")):
        try:
            return json.loads(s)
        except ValueError:
            return text
    if field in fmt.FIELDS:
        return text
    if s in ("True", "False", "true", "false"):
        return s.lower() == "true"
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return text


def _csv_records(p, text: str) -> list:
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as e:
        raise ResultsCorruptError(f"{p}: not valid CSV ({e})") from None
    if not rows:
        raise ResultsCorruptError(f"{p}: a header but no rows: no llama-bench records")
    head = rows[0].keys()
    if "model_filename" not in head or None in head:
        raise ResultsCorruptError(f"{p}: not JSON, JSONL, CSV with llama-bench's header, or SQL")
    recs = []
    for i, r in enumerate(rows, 2):
        if None in r:
            raise ResultsCorruptError(f"{p}: line {i}: more cells than the header has columns")
        recs.append({k: _loose(k, v) for k, v in r.items()})
    return recs


def _only_building(action, *_args) -> int:
    """sqlite3 authorizer for `-o sql` text: creating, inserting and reading only (no ATTACH, so a
    file cannot make us write anywhere)."""
    allowed = {sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_INSERT, sqlite3.SQLITE_READ, sqlite3.SQLITE_SELECT,
               sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_FUNCTION}
    return sqlite3.SQLITE_OK if action in allowed else sqlite3.SQLITE_DENY


def _sqlite_records(p, sql_text: str | None) -> list:
    """Rows of the llama_bench table, from a database file (opened read-only) or from SQL text run
    into a database in memory; our own fields (the qwen35_harness table) merged back into ours."""
    try:
        if sql_text is None:
            con = sqlite3.connect(f"file:{p.resolve()}?mode=ro", uri=True)
        else:
            con = sqlite3.connect(":memory:")
            con.set_authorizer(_only_building)
            con.executescript(sql_text)
            con.set_authorizer(None)
        con.row_factory = sqlite3.Row
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if fmt.SQL_TABLE not in tables:
            raise ResultsCorruptError(f"{p}: no {fmt.SQL_TABLE} table (tables: {', '.join(sorted(tables)) or 'none'})")
        rows = [dict(r) for r in con.execute(f"SELECT * FROM {fmt.SQL_TABLE} ORDER BY rowid")]
        own = {}
        if fmt.OWN_SQL_TABLE in tables:
            for r in con.execute(f"SELECT * FROM {fmt.OWN_SQL_TABLE}"):
                own[(r["build_commit"], r["test_time"], str(r["n_prompt"]), str(r["n_gen"]), str(r["n_depth"]))] = \
                    r["record"]
        con.close()
    except sqlite3.Error as e:
        raise ResultsCorruptError(f"{p}: not a readable llama-bench SQLite database or SQL ({e})") from None
    recs = []
    for r in rows:
        rec = {k: _loose(k, v if v is None or isinstance(v, str) else str(v)) for k, v in r.items()}
        extra = own.get((r.get("build_commit"), r.get("test_time"), str(r.get("n_prompt")), str(r.get("n_gen")),
                         str(r.get("n_depth"))))
        if extra:
            try:
                rec.update(json.loads(extra))
            except ValueError:
                raise ResultsCorruptError(f"{p}: a {fmt.OWN_SQL_TABLE} record is not JSON") from None
        recs.append(rec)
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


def llama_rows(records: list[dict], beside: Path, *, engine: str | None = None,
               known: dict | None = None) -> list[dict]:
    """Store rows of llama-bench records. engine: the engine they come from when the caller knows it
    (a sweep running a peer's binary); known: {model_filename: (model_hash, bytes_per_token)} of
    files already identified."""
    cache: dict = dict(known or {})
    rows = []
    for r in records:
        n_prompt, n_gen, n_depth = int(r.get("n_prompt", 0)), int(r.get("n_gen", 0)), int(r.get("n_depth", 0) or 0)
        samples = [float(x) for x in (r.get("samples_ts") or [])] or [float(r["avg_ts"])]
        s = summarize(samples)
        # csv and sql hold no samples: the record's own stddev then says how wide the run was
        stddev = _num(s.stddev) if len(samples) > 1 else _num(r.get("stddev_ts"))
        own = bool(r.get("engine"))        # a record that names its engine is ours
        rec_engine = engine or fmt.engine_of(r)
        model_hash, bpt = (r["model_hash"], None) if r.get("model_hash") else \
            _model_facts(str(r["model_filename"]), r.get("model_size"), beside, cache)
        gbps = bpt * s.median / 1e9 if bpt and n_gen and not n_prompt else None
        spread = stddev / s.median if stddev is not None and s.median > 0 else math.nan
        row = {
            "model": Path(str(r["model_filename"])).stem, "model_filename": str(r["model_filename"]),
            "model_hash": model_hash, "model_preset": "",
            "quant": quant_from_model_type(str(r.get("model_type", ""))) if r.get("model_type") else "",
            "isa": "", "n_threads": int(r.get("n_threads", 0)), "n_ubatch": int(r.get("n_ubatch", 0)),
            "fdn_threshold": None, "vocab_strategy": "full", "n_prompt": n_prompt, "n_gen": n_gen,
            "n_depth": n_depth, "test": test_name(n_prompt, n_gen, n_depth),
            "avg_ts": s.avg, "median_ts": s.median, "stddev_ts": stddev, "min_ts": s.min, "max_ts": s.max,
            "samples_ts": samples, "ms_per_token": 1000.0 / s.median, "weight_gbps": gbps,
            "machine_read_gbps": None, "bandwidth_fraction": None, "peak_rss_bytes": None,
            "spread_ok": bool(spread <= SPREAD_LIMIT) if not math.isnan(spread) else False,
            "engine": rec_engine, "commit": str(r.get("build_commit", "")), "dirty": False,
            "version": str(r.get("build_number", "")), "test_time": str(r.get("test_time", "")),
            "cpu_info": str(r.get("cpu_info", "")), "load_avg": None, "cpu_affinity": str(r.get("cpu_mask", "")),
            "engine_settings": "" if own else fmt.settings_text(r),
        }
        if own:
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

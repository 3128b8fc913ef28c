"""llama-bench's record format: its fields, their types, the settings that tell configurations
apart, and the four ways llama-bench writes records (json, jsonl, csv, sql).

Field list, types and writers follow `tools/llama-bench/llama-bench.cpp` of llama.cpp as vendored
in llama-cpp-python 0.3.36 (`test::get_fields`, `test::get_field_type`, the csv / json / jsonl /
sql printers); the settings that key a configuration follow `LLAMA_BENCH_KEY_PROPERTIES` of its
`scripts/compare-llama-bench.py`. Other builds of llama-bench (ik_llama.cpp, older mainline) write
other fields; a reader takes every field it finds, so nothing a record says is dropped.

Our own records (`harness bench -o json|jsonl|csv|sql`) carry every llama-bench field, in
llama-bench's order: values that describe our engine where llama.cpp has the same setting
(threads, u-batch, KV-cache types, no flash attention, no repacking), and llama-bench's neutral
values where a setting does not apply to a CPU-only engine (no GPU layers, no split, no overrides).
So `compare-llama-bench.py` tables ours against a llama-bench run made with the same settings
(`harness bench -ctk f16 -ctv f16` against `llama-bench -ctk f16 -ctv f16 -fa 0 --repack 0 -ub U`;
llama-bench has no F32 cache, our default): its join needs every key property to be equal."""
from __future__ import annotations

import csv
import io
import json
import math

# llama-bench.cpp (0.3.36) test::get_fields(), in order
FIELDS = (
    "build_commit", "build_number", "cpu_info", "gpu_info", "backends",
    "model_filename", "model_type", "model_size", "model_n_params", "n_batch",
    "n_ubatch", "n_threads", "cpu_mask", "cpu_strict", "poll",
    "type_k", "type_v", "n_gpu_layers", "n_cpu_moe", "split_mode",
    "main_gpu", "no_kv_offload", "flash_attn", "devices", "tensor_split",
    "tensor_buft_overrides", "load_mode", "lazy_mode", "embeddings",
    "no_op_offload", "no_host", "repack", "fit_target", "fit_min_ctx",
    "n_prompt", "n_gen", "n_depth",
    "test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts",
)
INT_FIELDS = frozenset({"build_number", "n_batch", "n_ubatch", "n_threads", "poll", "model_size", "model_n_params",
                        "n_gpu_layers", "main_gpu", "n_prompt", "n_gen", "n_depth", "avg_ns", "stddev_ns",
                        "no_op_offload", "n_cpu_moe", "fit_target", "fit_min_ctx", "flash_attn"})
BOOL_FIELDS = frozenset({"f16_kv", "no_kv_offload", "cpu_strict", "embeddings", "no_host", "repack"})
FLOAT_FIELDS = frozenset({"avg_ts", "stddev_ts"})
SAMPLE_FIELDS = ("samples_ns", "samples_ts")       # json / jsonl only

# compare-llama-bench.py (0.3.36) LLAMA_BENCH_KEY_PROPERTIES: what makes two rows one configuration
KEY_PROPERTIES = (
    "cpu_info", "gpu_info", "backends", "n_gpu_layers", "n_cpu_moe", "tensor_buft_overrides", "model_filename",
    "model_type", "n_batch", "n_ubatch", "embeddings", "cpu_mask", "cpu_strict", "poll", "n_threads", "type_k",
    "type_v", "load_mode", "no_kv_offload", "split_mode", "main_gpu", "tensor_split", "flash_attn", "n_prompt",
    "n_gen", "n_depth", "fit_target", "fit_min_ctx",
)

# fields that are not settings: who built it, on which machine and model, when, and what it measured.
# Everything else a record holds (KEY_PROPERTIES beyond our own key columns, and whatever settings
# another llama-bench build writes, e.g. ik_llama.cpp's mla_attn, fused_moe, rtr) is a setting.
NOT_SETTINGS = frozenset({
    "build_commit", "build_number", "cpu_info", "model_filename", "model_type", "model_size", "model_n_params",
    "n_threads", "n_ubatch", "n_prompt", "n_gen", "n_depth", "test_time", "test", "samples_ns", "samples_ts",
    # results of speculative / counter runs in other llama-bench builds
    "n_drafts", "n_accepted", "n_draft_total", "accept_rate", "mean_accept", "target_ppl_of_output",
    "platform_ts", "n_kept", "warm_skip",
    # backend flags ik_llama.cpp writes one column each for; `backends` says the same
    "cuda", "vulkan", "kompute", "metal", "sycl", "rpc", "gpu_blas", "blas",
})
RESULT_PREFIXES = ("avg_", "stddev_", "samples_")

# fields only ik_llama.cpp's llama-bench writes: a record with one of them is ik_llama.cpp's
IK_FIELDS = frozenset({"mla_attn", "attn_max_batch", "ser", "fused_moe", "grouped_er", "rtr", "fmoe",
                       "no_fused_up_gate", "use_thp", "rcache"})

# llama.h llama_ftype -> llama-model-loader.cpp llama_ftype_name()
FTYPE_NAMES = {
    0: "all F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K - Medium",
    11: "Q3_K - Small", 12: "Q3_K - Medium", 13: "Q3_K - Large", 14: "Q4_K - Small", 15: "Q4_K - Medium",
    16: "Q5_K - Small", 17: "Q5_K - Medium", 18: "Q6_K", 19: "IQ2_XXS - 2.0625 bpw", 20: "IQ2_XS - 2.3125 bpw",
    21: "Q2_K - Small", 22: "IQ3_XS - 3.3 bpw", 23: "IQ3_XXS - 3.0625 bpw", 24: "IQ1_S - 1.5625 bpw",
    25: "IQ4_NL - 4.5 bpw", 26: "IQ3_S - 3.4375 bpw", 27: "IQ3_S mix - 3.66 bpw", 28: "IQ2_S - 2.5 bpw",
    29: "IQ2_M - 2.7 bpw", 30: "IQ4_XS - 4.25 bpw", 31: "IQ1_M - 1.75 bpw", 32: "BF16",
    36: "TQ1_0 - 1.69 bpw ternary", 37: "TQ2_0 - 2.06 bpw ternary", 38: "MXFP4 MoE", 39: "NVFP4",
    40: "Q1_0", 41: "Q2_0",
}


def size_label(arch: str, n_layer: int, n_embd: int) -> str:
    """llama.cpp's model type name for Qwen3.5 (models/qwen35.cpp, qwen35moe.cpp load_arch_hparams;
    llm_type_name): '0.8B', '2B', '4B', '9B', '27B', '35B.A3B', ...; '?B' for shapes it does not know."""
    if arch == "qwen35moe":
        return {40: "35B.A3B", 48: "122B.A10B", 60: "397B.A17B"}.get(n_layer, "?B")
    if n_layer == 24:
        return "0.8B" if n_embd == 1024 else "2B"
    if n_layer == 32:
        return "4B" if n_embd == 2560 else "9B"
    return "27B" if n_layer == 64 else "?B"


def model_type(arch: str, n_layer: int, n_embd: int, file_type: int | None) -> str:
    """What llama-bench writes as model_type for this file (llama_model_desc): arch, size, file type."""
    ftype = FTYPE_NAMES.get(file_type, "unknown, may not work") if file_type is not None else "unknown, may not work"
    return f"{arch} {size_label(arch, n_layer, n_embd)} {ftype}"


# llama-bench.cpp (0.3.36) cmd_params_defaults as the records of a CPU build write them; a setting at
# its default is left out of a configuration's settings, so files of llama-bench builds that add a
# field (at its default) still match older ones
DEFAULTS = {
    "gpu_info": "", "backends": "CPU", "n_batch": 2048, "cpu_mask": "0x0", "cpu_strict": 0, "poll": 50,
    "type_k": "f16", "type_v": "f16", "n_gpu_layers": -1, "n_cpu_moe": 0, "split_mode": "layer", "main_gpu": 0,
    "no_kv_offload": 0, "flash_attn": -1, "devices": "auto", "tensor_split": 0, "tensor_buft_overrides": "none",
    "load_mode": "auto", "lazy_mode": "auto", "embeddings": 0, "no_op_offload": 0, "no_host": 0, "repack": 1,
    "fit_target": 0, "fit_min_ctx": 0,
}


def neutral_fields(n_threads: int, n_ubatch: int) -> dict:
    """llama-bench fields for our CPU engine: what applies says what our engine does (an F32 KV
    cache unless the caller sets type_k / type_v, no flash attention, no repacking at load (the
    caller sets repack when the session repacked), the
    whole prompt as one logical batch of n_ubatch-token u-batches), what does not apply keeps
    llama-bench's default, so our rows with an F16 cache join a llama-bench run made with
    `-ctk f16 -ctv f16 -fa 0 --repack 0 -ub U`."""
    return {**{k: (bool(v) if k in BOOL_FIELDS else v) for k, v in DEFAULTS.items()},
            "type_k": "f32", "type_v": "f32", "flash_attn": 0, "repack": False,
            "n_ubatch": n_ubatch, "n_threads": n_threads, "tensor_split": "0.00"}


# ----------------------------------------------------------------------------
# values

def typed(field: str, value):
    """A field's value as llama-bench's JSON has it, from JSON, CSV text or an SQL cell."""
    if value is None:
        return None
    if field in BOOL_FIELDS:
        if isinstance(value, str):
            return value.strip().lower() not in ("0", "false", "")
        return bool(value)
    if field in INT_FIELDS:
        try:
            return int(value) if not isinstance(value, bool) else int(value)
        except (TypeError, ValueError):
            try:
                return int(float(value))
            except (TypeError, ValueError):
                return value
    if field in FLOAT_FIELDS:
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    return value


def _setting_value(v):
    """One canonical form of a setting value whatever format it came from ('1', 1, true -> 1)."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return int(v) if v.is_integer() else v
    if isinstance(v, str):
        s = v.strip()
        if s.lower() in ("true", "false"):
            return int(s.lower() == "true")
        try:
            return int(s)
        except ValueError:
            try:
                f = float(s)
                return int(f) if f.is_integer() else f
            except ValueError:
                return s
    return v


def settings_of(record: dict) -> dict:
    """The settings of a llama-bench record beyond our configuration key (flash_attn, type_k, n_batch,
    n_gpu_layers, rtr, ...) that are not at llama-bench's default: canonical values, sorted by name."""
    out = {}
    for k in sorted(record):
        if k in NOT_SETTINGS or k.startswith(RESULT_PREFIXES) or record[k] is None:
            continue
        v = _setting_value(record[k])
        if k not in DEFAULTS or v != DEFAULTS[k]:
            out[k] = v
    return out


def settings_text(record: dict) -> str:
    """settings_of as compact JSON: the text the results store keys a llama-bench row on."""
    return json.dumps(settings_of(record), separators=(",", ":"))


def our_settings_text(type_k: str = "f32", type_v: str = "f32", prompt: str = "", repack: str = "auto") -> str:
    """Our engine's settings beyond the configuration key, in settings_text's form: the KV cache
    types where they are not our default F32, the source of a real prompt (`harness bench
    --prompt/--file`; default: random ids) and the repack mode where it is not auto, else '' (so
    default rows keep their config ids)."""
    extra = {k: v for k, v in (("type_k", type_k), ("type_v", type_v)) if v != "f32"}
    if prompt:
        extra["prompt"] = prompt
    if repack != "auto":
        extra["repack"] = repack
    return json.dumps(extra, separators=(",", ":")) if extra else ""


def engine_of(record: dict) -> str:
    """llama.cpp, ik_llama.cpp, or the engine a record names itself (ours: qwen35-harness)."""
    if record.get("engine"):
        return str(record["engine"])
    return "ik_llama.cpp" if IK_FIELDS & record.keys() else "llama.cpp"


# ----------------------------------------------------------------------------
# writers: the llama-bench fields first, in llama-bench's order, then whatever else a record holds

def ordered(record: dict) -> dict:
    rest = {k: v for k, v in record.items() if k not in FIELDS and k not in SAMPLE_FIELDS}
    return {**{k: record.get(k) for k in FIELDS}, **{k: record[k] for k in SAMPLE_FIELDS if k in record}, **rest}


def _cell(v) -> str:
    """A value as llama-bench's csv and sql printers write it (std::to_string of ints, 0/1 bools)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.6f}"
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def to_csv(records: list[dict]) -> str:
    """llama-bench -o csv: a header line, then every value double-quoted (quotes doubled). Fields
    beyond llama-bench's (the samples as JSON lists, our store columns) follow its own, in the same
    quoting; compare-llama-bench.py ignores them."""
    recs = [ordered(r) for r in records]
    header = list(FIELDS) + [k for k in dict.fromkeys(k for r in recs for k in r) if k not in FIELDS]
    buf = io.StringIO()
    buf.write(",".join(header) + "\n")
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for r in recs:
        w.writerow([_cell(r.get(k)) for k in header])
    return buf.getvalue()


SQL_TABLE = "llama_bench"
OWN_SQL_TABLE = "qwen35_harness"     # our fields beyond llama-bench's, one JSON object per row


def _sql_type(field: str) -> str:
    return "REAL" if field in FLOAT_FIELDS else "INTEGER" if field in INT_FIELDS | BOOL_FIELDS else "TEXT"


def _sql_quote(v) -> str:
    return "'" + _cell(v).replace("'", "''") + "'"


def to_sql(records: list[dict]) -> str:
    """llama-bench -o sql: CREATE TABLE IF NOT EXISTS llama_bench and one INSERT per record, every
    value a quoted string as llama-bench writes them, so `... | sqlite3 llama-bench.sqlite` takes
    ours and llama-bench's output into one database. What our records hold beyond llama-bench's
    fields goes to a table of its own (qwen35_harness: build_commit, test_time, the record as JSON),
    which llama-bench's table and compare-llama-bench.py never see."""
    cols = ",\n".join(f"  {f} {_sql_type(f)}" for f in FIELDS)
    out = [f"CREATE TABLE IF NOT EXISTS {SQL_TABLE} (\n{cols}\n);", "",
           f"CREATE TABLE IF NOT EXISTS {OWN_SQL_TABLE} (\n  build_commit TEXT,\n  test_time TEXT,\n"
           f"  n_prompt INTEGER,\n  n_gen INTEGER,\n  n_depth INTEGER,\n  record TEXT\n);", ""]
    for r in records:
        out.append(f"INSERT INTO {SQL_TABLE} ({', '.join(FIELDS)}) VALUES "
                   f"({', '.join(_sql_quote(r.get(f)) for f in FIELDS)});")
        extra = {k: v for k, v in r.items() if k not in FIELDS}
        if extra:
            out.append(f"INSERT INTO {OWN_SQL_TABLE} (build_commit, test_time, n_prompt, n_gen, n_depth, record) "
                       f"VALUES ({', '.join(_sql_quote(r.get(k)) for k in ('build_commit', 'test_time', 'n_prompt', 'n_gen', 'n_depth'))}, "
                       f"{_sql_quote(json.dumps(extra, separators=(',', ':'), default=_json_default))});")
    return "\n".join(out) + "\n"


def _json_default(v):
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"not JSON serializable: {type(v).__name__}")


def settings_labels(texts: list[str]) -> tuple[list[str], str]:
    """Short labels for a table: for each settings text (settings_text; '' = ours) the settings that
    differ between the texts ('flash_attn=1 type_k=q8_0'), and one line of those they all share."""
    parsed = [json.loads(t) if t else None for t in texts]
    given = [p for p in parsed if p is not None]
    if not any(given):
        return ["" for _ in texts], ""
    names = sorted({k for p in given for k in p})
    varying = [k for k in names if len({json.dumps(p.get(k)) for p in given}) > 1]
    shared = ", ".join(f"{k}={given[0][k]}" for k in names if k not in varying and k in given[0])
    labels = [" ".join(f"{k}={p.get(k, DEFAULTS.get(k, '-'))}" for k in varying) if p is not None else ""
              for p in parsed]
    return labels, shared

"""The schema of a measurement row: test names, the summary of a test's samples, the columns of
the results store, the configuration key and its id, and the in-memory form of a result set.

Everything that reads or writes rows (the store, the llama-bench importer, the measurements, the
comparisons and the report) takes these definitions from here, so a key means one thing."""
from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

SPREAD_LIMIT = 0.05   # stddev / median above this: too noisy to judge a few-percent change


def test_name(n_prompt: int, n_gen: int, n_depth: int = 0) -> str:
    """llama-bench's test names: pp512, tg128, pp512+tg128, each with ' @ d<D>' at a depth."""
    name = f"pp{n_prompt}" if not n_gen else f"tg{n_gen}" if not n_prompt else f"pp{n_prompt}+tg{n_gen}"
    return f"{name} @ d{n_depth}" if n_depth else name


@dataclass(frozen=True)
class Summary:
    avg: float
    median: float
    stddev: float
    min: float
    max: float

    @property
    def spread(self) -> float:
        """stddev relative to the median (nan for a single sample)."""
        return self.stddev / self.median if self.median > 0 and not math.isnan(self.stddev) else float("nan")


def summarize(samples: list[float]) -> Summary:
    sd = statistics.stdev(samples) if len(samples) > 1 else float("nan")
    return Summary(statistics.fmean(samples), statistics.median(samples), sd, min(samples), max(samples))


# ----------------------------------------------------------------------------
# columns

# what identifies a measurement; config_id is a hash of these values
# engine_settings: a peer engine's settings beyond these (llama-bench's flash_attn, type_k, n_batch,
# ...; harness.store.llama_bench_format.settings_text), '' for ours; it joins the id only when set,
# so the ids of our rows are what they were before it existed
KEY_COLUMNS = ("model_hash", "isa", "n_threads", "n_ubatch", "fdn_threshold", "vocab_strategy",
               "n_prompt", "n_gen", "n_depth", "test", "engine_settings")
IDENTITY_COLUMNS = ["config_id", "model", "model_filename", "model_hash", "model_preset", "quant", "isa",
                    "n_threads", "n_ubatch", "fdn_threshold", "vocab_strategy", "n_prompt", "n_gen",
                    "n_depth", "test"]
FIGURE_COLUMNS = ["avg_ts", "median_ts", "stddev_ts", "min_ts", "max_ts", "samples_ts", "ms_per_token",
                  "weight_gbps", "machine_read_gbps", "bandwidth_fraction", "peak_rss_bytes", "spread_ok"]
PROVENANCE_COLUMNS = ["engine", "commit", "dirty", "version", "test_time", "cpu_info"]
# ours, beyond the shared contract: the 1-minute load average when the row was measured (a noise
# hint), the CPUs the process was allowed to run on, and whether other work on the machine took CPU
# time the engine's threads needed (machine_busy, with the reason in busy_note). Older results
# without a column load with it empty (nan / '': not known to be busy).
EXTRA_COLUMNS = ["load_avg", "cpu_affinity", "machine_busy", "busy_note", "engine_settings"]
RESULT_COLUMNS = IDENTITY_COLUMNS + FIGURE_COLUMNS + PROVENANCE_COLUMNS + EXTRA_COLUMNS
REQUIRED_COLUMNS = IDENTITY_COLUMNS + FIGURE_COLUMNS + PROVENANCE_COLUMNS

# macs: the multiply-adds of an op's weight products (0 for the other ops); files written before it
# was kept load with 0
PROFILE_REQUIRED = ["config_id", "test", "layer", "op", "calls", "ns", "bytes"]
PROFILE_COLUMNS = PROFILE_REQUIRED + ["macs"]
QUALITY_COLUMNS = ["config_id", "model", "quant", "vocab_strategy", "n_positions", "top1_agreement",
                   "topk_recall", "k", "kl_mean", "kl_max", "max_abs_err"]

STRING_COLUMNS = ["config_id", "model", "model_filename", "model_hash", "model_preset", "quant", "isa",
                  "vocab_strategy", "test", "engine", "commit", "version", "test_time", "cpu_info",
                  "cpu_affinity", "busy_note", "engine_settings"]
BOOL_COLUMNS = ["spread_ok", "dirty"]


# ----------------------------------------------------------------------------
# identity

def key_value(v):
    """One canonical form per value, so a key hashes the same before and after a CSV round trip."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if hasattr(v, "item"):          # numpy scalar
        return key_value(v.item())
    return v if isinstance(v, int) else str(v)


def config_key(row: Mapping) -> tuple:
    key = tuple(key_value(row.get(k)) for k in KEY_COLUMNS)
    return key if key[-1] != "" else key[:-1]


def config_id(row: Mapping) -> str:
    """Short stable hash (12 hex digits) of the configuration key of a row."""
    blob = json.dumps(config_key(row), separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def key_text(v) -> str:
    """A key value as text, equal before and after a CSV round trip (1.0 -> '1', NaN -> '')."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# ----------------------------------------------------------------------------
# a result set in memory

@dataclass
class ResultSet:
    frame: pd.DataFrame                         # results.csv, one row per measurement
    profile: pd.DataFrame                       # profile.csv (possibly empty)
    quality: pd.DataFrame                       # quality.csv (possibly empty)
    provenance: dict                            # provenance.json; {"sources": {dir: provenance}} from load_many
    paths: list[str] = field(default_factory=list)


def empty_results() -> pd.DataFrame:
    return pd.DataFrame(columns=RESULT_COLUMNS)


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows (dicts with RESULT_COLUMNS keys) as a frame in store column order; config_id filled in."""
    recs = []
    for r in rows:
        missing = [c for c in REQUIRED_COLUMNS if c not in r and c != "config_id"]
        if missing:
            raise ValueError(f"result row lacks {', '.join(missing)}")
        r = dict(r)
        r["config_id"] = config_id(r)
        recs.append({c: r.get(c) for c in RESULT_COLUMNS})
    return pd.DataFrame(recs, columns=RESULT_COLUMNS)

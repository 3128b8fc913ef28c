"""Match the configurations of two result sets and judge each one: NEW/BASE tokens/s ratio,
its confidence interval, and a verdict (faster / slower / no significant change / cannot judge).

A verdict rests on the spread between runs, not on the repetitions inside one run
(harness.analysis.runs): each row is one run of its configuration, several rows of one configuration
(a comma list of result sets, a baseline saved from several runs) give the between-run spread; with
one run per side, a noise record of this machine (`harness noise`) stands in for it; without one the
pair is shown but "cannot judge". The intervals of all pairs hold together at the chosen level
(Bonferroni), so a comparison of many configurations does not cry wolf more often than one would.

Rows are matched on the configuration key of the results store, which for llama-bench rows holds
every setting compare-llama-bench.py keys on (flash_attn, type_k/v, n_batch, ...: engine_settings),
so a -fa 0/1 pair stays two configurations. When the two sides are different engines (ours against
imported llama-bench results), they share no configuration key, so rows are matched on what both
tools mean the same way: the model file name, prompt and generated lengths, context depth and
thread count; each side's settings stay apart (one pair per peer setting) and are shown.

A pair with a side measured on a busy machine (the row's machine_busy flag) is never called slower
or faster: such a figure says more about the machine's load than about the engine. Its verdict is
then "machine busy" (what the figures alone say is kept in stat_verdict); any other verdict stands,
marked with the busy side, as a wide spread is marked.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import pandas as pd

from harness.errors import HarnessError
from harness.store.schema import KEY_COLUMNS, key_text
from harness.analysis.paired import family_level, pct
from harness.analysis.runs import CANNOT_JUDGE, judge_runs
from harness.analysis.stats import FASTER, NO_CHANGE, SLOWER, TOO_FEW

CONFIG_KEY = list(KEY_COLUMNS)
CROSS_ENGINE_KEY = ["model_file", "n_prompt", "n_gen", "n_depth", "n_threads"]
MACHINE_BUSY = "machine busy"    # the verdict of a slower / faster pair with a busy side: not judged
# columns that describe a configuration in the printed table (from NEW, else BASE)
SHOWN = ["model", "test", "engine", "isa", "n_threads", "n_ubatch", "fdn_threshold", "vocab_strategy",
         "engine_settings"]


class NothingToCompare(HarnessError):
    """BASE and NEW have no configuration in common."""


@dataclass
class Comparison:
    table: pd.DataFrame        # one row per matched configuration (pair of rows)
    only_base: pd.DataFrame    # configurations measured in BASE only
    only_new: pd.DataFrame
    threshold: float
    cross_engine: bool
    cpus: tuple[str, str] = ("", "")   # CPU of BASE and NEW when they differ (figures then compare machines)

    def count(self, verdict: str) -> int:
        return int((self.table["verdict"] == verdict).sum()) if len(self.table) else 0

    def exit_status(self) -> int:
        """1 when any configuration is significantly slower beyond the threshold (a CI gate)."""
        return 1 if self.count(SLOWER) else 0


def samples_of(value) -> list[float]:
    """The per-repetition tokens/s of one row: a list, or the JSON text of one in a CSV."""
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            raise HarnessError(f"samples_ts is not a JSON list: {value[:40]!r}") from None
        if isinstance(parsed, list):
            return [float(v) for v in parsed]
        raise HarnessError(f"samples_ts is not a JSON list: {value[:40]!r}")
    return []


def row_samples(row: pd.Series) -> list[float]:
    """The samples of a row; a row without samples counts as the one sample of its median."""
    s = samples_of(row.get("samples_ts"))
    if not s:
        med = row.get("median_ts", row.get("avg_ts"))
        if med is not None and not pd.isna(med):
            s = [float(med)]
    return s


def _with_key_columns(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    df = df.copy()
    if "engine_settings" in key and "engine_settings" not in df.columns:   # frames from before the column
        df["engine_settings"] = ""
    if "model_file" in key:
        df["model_file"] = df["model_filename"].astype(str).map(os.path.basename)
    missing = [k for k in key if k not in df.columns]
    if missing:
        raise HarnessError(f"results lack the column(s) {', '.join(missing)} of the configuration key")
    for k in key:   # a CSV round trip may turn ints into floats or NaN into '': compare as text
        df[k] = df[k].map(key_text)
    return df


def _pool(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """One row per configuration; repeated measurements of one configuration pool their samples."""
    rows = []
    for _, g in df.groupby(key, sort=False, dropna=False):
        first = g.iloc[0].copy()
        first["samples"] = [x for _, r in g.iterrows() for x in row_samples(r)]
        first["run_values"] = [_median(row_samples(r)) for _, r in g.iterrows()]
        first["n_runs"] = len(g)
        first["spread_ok"] = bool(g["spread_ok"].map(_truthy).all()) if "spread_ok" in g else True
        first["machine_busy"] = bool(g["machine_busy"].map(_flagged).any()) if "machine_busy" in g else False
        rows.append(first)
    return pd.DataFrame(rows).reset_index(drop=True)


def _truthy(v) -> bool:
    """spread_ok as stored (bool, 'True'/'False' text, or missing = not known to be bad)."""
    if v is None or v is pd.NA:
        return True
    if isinstance(v, str):
        return v.strip().lower() not in ("false", "0", "no", "")
    return True if v is None or (isinstance(v, float) and math.isnan(v)) else bool(v)


def _flagged(v) -> bool:
    """machine_busy as stored (bool, 'True'/'False' text; missing or empty = not known to be busy)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return False
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def _engines(df: pd.DataFrame) -> set[str]:
    if "engine" not in df.columns:
        return {"qwen35-harness"}
    return set(df["engine"].fillna("qwen35-harness").astype(str))


def compare_frames(base: pd.DataFrame, new: pd.DataFrame, threshold: float, *, seed: int = 0,
                   level: float = 0.95, noise_of=None) -> Comparison:
    """Match and judge. noise_of(pair row) -> (sd_log, rounds, basis) or None: the run-to-run noise
    to judge a configuration measured once per side with (noise_records_lookup gives this machine's);
    None: one run per side cannot be judged. seed is kept for callers of the former bootstrap."""
    cross = _engines(base) != _engines(new)
    key = CROSS_ENGINE_KEY if cross else CONFIG_KEY
    pool_key = key + ["engine_settings"] if cross else key    # a peer's settings never pool together
    b = _pool(_with_key_columns(base, pool_key), pool_key)
    n = _pool(_with_key_columns(new, pool_key), pool_key)
    if len(b) == 0 or len(n) == 0:
        raise NothingToCompare("one side has no results")
    n["order_new"] = range(len(n))
    merged = b.merge(n, on=key, how="outer", suffixes=("_base", "_new"), indicator=True)
    pairs = merged[merged["_merge"] == "both"].sort_values("order_new")
    if len(pairs) == 0:
        how = "model file, prompt/gen lengths, depth and threads" if cross else "configuration key"
        raise NothingToCompare(f"no configuration of NEW matches one of BASE (matched on {how}): "
                               f"BASE has {len(b)}, NEW has {len(n)}")
    out = []
    each = family_level(level, len(pairs))
    for _, r in pairs.iterrows():
        noise = noise_of(r) if noise_of is not None else None
        j = judge_runs(r["run_values_base"], r["run_values_new"], threshold, each,
                       *(noise if noise else (None, 0, "")))
        row = {c: _pick(r, c, key) for c in SHOWN}
        busy_base, busy_new = bool(r["machine_busy_base"]), bool(r["machine_busy_new"])
        row.update({
            "base_ts": _median(r["samples_base"]), "new_ts": _median(r["samples_new"]),
            "ratio": j.ratio, "ci_lo": j.lo, "ci_hi": j.hi, "level": j.level, "mde": j.mde, "basis": j.basis,
            "n_base": j.n_base, "n_new": j.n_new,
            "verdict": MACHINE_BUSY if (busy_base or busy_new) and j.verdict in (SLOWER, FASTER) else j.verdict,
            "stat_verdict": j.verdict,     # what the figures alone would say
            "busy": "both" if busy_base and busy_new else "BASE" if busy_base else "NEW" if busy_new else "",
            "noisy": not (bool(r["spread_ok_base"]) and bool(r["spread_ok_new"])),
            "commit_base": _pick_side(r, "commit", "base"), "commit_new": _pick_side(r, "commit", "new"),
            "engine_base": _pick_side(r, "engine", "base") or "qwen35-harness",
            "engine_new": _pick_side(r, "engine", "new") or "qwen35-harness",
            "settings_base": _pick_side(r, "engine_settings", "base"),
            "settings_new": _pick_side(r, "engine_settings", "new"),
        })
        out.append(row)
    table = pd.DataFrame(out)
    only_b = merged[merged["_merge"] == "left_only"]
    only_n = merged[merged["_merge"] == "right_only"]
    cpus = (_cpus(base), _cpus(new))
    return Comparison(table, _side(only_b, "base", key), _side(only_n, "new", key), threshold, cross,
                      cpus if cpus[0] != cpus[1] else ("", ""))


def _cpus(df: pd.DataFrame) -> str:
    return ", ".join(sorted(set(df["cpu_info"].map(key_text)))) if "cpu_info" in df.columns else ""


def _median(samples: list[float]) -> float:
    s = sorted(samples)
    if not s:
        return math.nan
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def _pick(r: pd.Series, col: str, key: list[str]):
    if col in key:
        return r[col]
    v = r.get(f"{col}_new")
    return r.get(f"{col}_base") if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _pick_side(r: pd.Series, col: str, side: str):
    v = r.get(f"{col}_{side}", r.get(col))
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _side(df: pd.DataFrame, side: str, key: list[str]) -> pd.DataFrame:
    cols = {}
    for c in SHOWN:
        src = c if c in key else f"{c}_{side}"
        if src in df.columns:
            cols[c] = df[src].values
    return pd.DataFrame(cols)


# ---- text output ------------------------------------------------------------------------------

def _fmt_ratio(r: pd.Series) -> str:
    if math.isnan(r["ci_lo"]):
        return f"{r['ratio']:.3f} (no interval)"
    return f"{r['ratio']:.3f} [{r['ci_lo']:.3f}, {r['ci_hi']:.3f}]"


def verdict_text(r) -> str:
    """A pair's verdict as printed: with what it could have detected, or why it cannot judge."""
    v = r["verdict"]
    if v == NO_CHANGE:
        return f"{NO_CHANGE} (could have detected >= {pct(r['mde'])})"
    if v == CANNOT_JUDGE:
        return f"{CANNOT_JUDGE}: {r['basis']}"
    return v.upper() if v in (SLOWER, FASTER) else v


def noise_records_lookup(frame_base: pd.DataFrame, frame_new: pd.DataFrame):
    """noise_of for compare_frames: this machine's noise records (harness noise, measured with the
    random address layout that sweeps and bench runs have), used only when both sides ran on this
    machine's CPU."""
    from harness.provenance import cpu_model
    from harness.store import noise_records
    from harness.store.baselines import machine_key
    here = cpu_model()
    if any(set(f["cpu_info"].map(key_text)) != {here} for f in (frame_base, frame_new) if "cpu_info" in f.columns):
        return None
    machine = machine_key()

    def lookup(r):
        model = _pick_side(r, "model_filename", "new") or _pick_side(r, "model_filename", "base")
        threads = r.get("n_threads")
        try:
            threads = int(float(threads))
        except (TypeError, ValueError):
            return None
        test = r["test"] if "test" in r else (_pick_side(r, "test", "new") or _pick_side(r, "test", "base"))
        rec = noise_records.lookup(machine, model, str(test), threads)
        if rec is None or rec.layout != "random" or rec.statistic != "median":
            return None
        return rec.sd_log, rec.rounds, f"noise record of this machine ({rec.rounds} A/A rounds, {rec.measured[:10]})"
    return lookup


def format_text(cmp: Comparison, base_label: str, new_label: str) -> str:
    """Aligned plain-text table, one line per configuration, then a summary line."""
    t = cmp.table
    head = ["model", "test", "isa", "thr", "ubatch", "fdn", "vocab", "base t/s", "new t/s",
            "new/base [interval]", "verdict"]
    if cmp.cross_engine:
        head[2:7] = ["engines", "thr"]
    lines = []
    for _, r in t.iterrows():
        verdict = verdict_text(r)
        side = "both sides" if r["busy"] == "both" else f"the {r['busy']} side"
        if r["verdict"] == MACHINE_BUSY:
            verdict = f"{MACHINE_BUSY} on {side}: not judged (the figures alone: {r['stat_verdict']})"
        elif r["busy"]:
            verdict += f" ({MACHINE_BUSY} on {side})"
        if r["noisy"]:
            verdict += " (spread too wide on one side)"
        cfg = ([str(r["isa"]), str(r["n_threads"]), str(r["n_ubatch"]), str(r["fdn_threshold"]),
                str(r["vocab_strategy"])] if not cmp.cross_engine else
               [f"{r['engine_base']} -> {r['engine_new']}", str(r["n_threads"])])
        lines.append([str(r["model"]), str(r["test"]), *cfg, f"{r['base_ts']:.2f}", f"{r['new_ts']:.2f}",
                      _fmt_ratio(r), verdict])
    labels, shared = _settings_column(t)
    if any(labels):
        head.insert(-4, "settings")
        for ln, lab in zip(lines, labels):
            ln.insert(-4, lab)
    widths = [max(len(h), *(len(ln[i]) for ln in lines)) for i, h in enumerate(head)]
    out = [f"BASE {base_label}", f"NEW  {new_label}", "",
           "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(ln, widths)).rstrip() for ln in lines]
    if len(t):
        out += ["", f"intervals: {100 * (1 - (1 - t['level'].iloc[0]) * len(t)):g}% for all {len(t)} configuration(s) "
                    f"together (each {100 * t['level'].iloc[0]:.2f}%), from the spread between runs"]
    out += ["", summary_line(cmp)]
    if shared:
        out.append(f"peer settings of every row: {shared}")
    if cmp.cpus[0]:
        out.append(f"note: BASE ran on {cmp.cpus[0]!r}, NEW on {cmp.cpus[1]!r}: the ratios compare machines too")
    return "\n".join(out)


def _settings_column(t: pd.DataFrame) -> tuple[list[str], str]:
    """Per row the peer settings that differ between rows (BASE's | NEW's when both sides have
    some), and the settings every row shares (llama_bench_format.settings_labels)."""
    from harness.store.llama_bench_format import settings_labels
    if not len(t) or "settings_base" not in t.columns:
        return ["" for _ in range(len(t))], ""
    base, new = list(t["settings_base"].fillna("")), list(t["settings_new"].fillna(""))
    lab, shared = settings_labels(base + new)
    lb, ln = lab[:len(t)], lab[len(t):]
    return [f"{x} | {y}" if x and y and x != y else (x or y) for x, y in zip(lb, ln)], shared


def format_markdown(cmp: Comparison, base_label: str, new_label: str) -> str:
    """A pipe-markdown table for a pull request: one row per configuration, then the summary."""
    t = cmp.table
    labels, shared = _settings_column(t)
    head = ["model", "test"] + (["engines"] if cmp.cross_engine else ["isa", "threads", "ubatch", "fdn"]) + \
        (["settings"] if any(labels) else []) + ["BASE t/s", "NEW t/s", "NEW/BASE [interval]", "verdict"]
    out = [f"**BASE** {base_label} · **NEW** {new_label}", "", "| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if h.endswith(("t/s", "]")) else "---" for h in head) + "|"]
    for (_, r), lab in zip(t.iterrows(), labels):
        cfg = ([f"{r['engine_base']} → {r['engine_new']}"] if cmp.cross_engine else
               [str(r["isa"]), str(r["n_threads"]), str(r["n_ubatch"]), str(r["fdn_threshold"])])
        cells = [str(r["model"]), str(r["test"]), *cfg, *([lab] if any(labels) else []),
                 f"{r['base_ts']:.2f}", f"{r['new_ts']:.2f}", _fmt_ratio(r), verdict_text(r)]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += ["", summary_line(cmp)]
    if shared:
        out.append(f"\npeer settings of every row: `{shared}`")
    return "\n".join(out)


def summary_line(cmp: Comparison) -> str:
    parts = [(f"{len(cmp.table)} configuration(s) compared at threshold {cmp.threshold * 100:g}%: "
              f"{cmp.count(SLOWER)} slower, {cmp.count(FASTER)} faster, "
              f"{cmp.count(NO_CHANGE)} no significant change")]
    if cmp.count(TOO_FEW):
        parts.append(f"{cmp.count(TOO_FEW)} with too few samples to judge")
    if cmp.count(CANNOT_JUDGE):
        parts.append(f"{cmp.count(CANNOT_JUDGE)} cannot be judged: one run per side and no noise record of this "
                     "machine (compare several runs per side as comma lists, or run `harness noise --layout random` first)")
    if cmp.count(MACHINE_BUSY):
        parts.append(f"{cmp.count(MACHINE_BUSY)} not judged: machine busy when measured (rerun on a quiet machine)")
    if len(cmp.only_base) or len(cmp.only_new):
        parts.append(f"unmatched: {len(cmp.only_base)} only in BASE, {len(cmp.only_new)} only in NEW")
    return "; ".join(parts)

"""The tables behind each section of the HTML report, shaped from a result set with pandas.

Pure functions: each takes the store's frames and returns a small DataFrame (empty when the
results hold nothing for that section) or a plain value. Drawing is in charts.py, HTML in
html.py.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from harness.provenance import cpu_model
from harness.store.schema import key_text

# columns that tell configurations apart, with the short prefix used in labels
LABEL_PARTS = [("model", ""), ("test", ""), ("engine", ""), ("isa", ""), ("n_threads", "t"),
               ("n_ubatch", "ub"), ("fdn_threshold", "F"), ("vocab_strategy", "vocab "), ("commit", "@")]
MAX_CONFIGS = 40         # per chart; larger sweeps are cut to the first ones and say so
TOP_OPS = 8
MAX_HISTORY_LINES = 12   # configurations drawn across commits (those measured at the most commits)


def config_labels(df: pd.DataFrame, always: tuple[str, ...] = ("model", "test")) -> pd.Series:
    """A short label per row naming only the columns that vary across `df` (plus model and test)."""
    parts = [(c, p) for c, p in LABEL_PARTS
             if c in df.columns and (c in always or df[c].map(key_text).nunique() > 1)]
    if df.empty:
        return pd.Series([], dtype=str)
    def one(r):
        texts = ((p, key_text(r[c])[:8] if c == "commit" else key_text(r[c])) for c, p in parts)
        return " ".join(f"{p}{t}" for p, t in texts if t != "")
    return df.apply(one, axis=1)


def is_pp(df: pd.DataFrame) -> pd.Series:
    return (df["n_prompt"].fillna(0) > 0) & (df["n_gen"].fillna(0) == 0)


def is_tg(df: pd.DataFrame) -> pd.Series:
    return (df["n_gen"].fillna(0) > 0) & (df["n_prompt"].fillna(0) == 0)


def latest_per_config(frame: pd.DataFrame) -> pd.DataFrame:
    """Each configuration's most recent measurement: what the sections other than the history show
    when the results hold a configuration more than once (several runs or commits)."""
    if frame.empty or not frame["config_id"].duplicated().any():
        return frame
    order = frame["test_time"].astype(str).reset_index(drop=True).sort_values(kind="stable").index
    return frame.iloc[order].drop_duplicates("config_id", keep="last").sort_index()


def throughput_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Every measurement with its label, median and spread, in the order of the results."""
    if frame.empty:
        return pd.DataFrame()
    t = pd.DataFrame({
        "configuration": config_labels(frame).values,
        "median t/s": frame["median_ts"].values,
        "± stddev": frame["stddev_ts"].values,
        "min": frame["min_ts"].values, "max": frame["max_ts"].values,
        "ms/token": frame["ms_per_token"].values,
        "spread ok": frame["spread_ok"].values,
        "commit": frame["commit"].astype(str).str[:10].values,
    })
    return t


TOO_NOISY = "spread too wide to judge"


def _settled(d: pd.DataFrame) -> pd.Series:
    """spread_ok as booleans; a row that does not say (e.g. a llama-bench file) counts as settled."""
    if "spread_ok" not in d.columns:
        return pd.Series(True, index=d.index)
    return d["spread_ok"].map(lambda v: True if pd.isna(v) else bool(v))


def crossover(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, best): prompt-processing t/s against ubatch for each fdn threshold, for every group of
    otherwise equal configurations that varies ubatch or the threshold; best = the fastest point of
    each group, i.e. the threshold (and ubatch) to use on this machine.

    A point is settled when every measurement behind it has spread_ok; the pick is the fastest settled
    point when the group has one (its `note` counts the noisy points left out), else the fastest of
    all with the note 'spread too wide to judge'."""
    if frame.empty:
        return pd.DataFrame(), pd.DataFrame()
    pp = frame[is_pp(frame)].copy()
    if pp.empty:
        return pd.DataFrame(), pd.DataFrame()
    group_cols = [c for c in ("model", "test", "engine", "isa", "n_threads", "vocab_strategy", "n_depth")
                  if c in pp.columns]
    pp["group"] = config_labels(pp[group_cols]).values
    pp["spread ok"] = _settled(pp).values
    keep, best = [], []
    for g, d in pp.groupby("group", sort=False):
        d = d.dropna(subset=["n_ubatch", "median_ts"])
        if d["n_ubatch"].nunique() < 2 and d["fdn_threshold"].nunique() < 2:
            continue
        pts = (d.groupby(["fdn_threshold", "n_ubatch"], dropna=False)
               .agg(median_ts=("median_ts", "median"), **{"spread ok": ("spread ok", "all")})
               .reset_index().assign(group=g))
        keep.append(pts)
        settled = pts[pts["spread ok"]]
        pool = settled if len(settled) else pts
        top = pool.loc[pool["median_ts"].idxmax()]
        second = pool[pool["fdn_threshold"] != top["fdn_threshold"]]["median_ts"].max()
        noisy = len(pts) - len(settled)
        note = (TOO_NOISY if settled.empty else "" if not noisy else
                f"fastest settled point; {noisy} point{'s' if noisy > 1 else ''} with a "
                f"{TOO_NOISY} left out")
        best.append({"group": g, "best fdn threshold": key_text(top["fdn_threshold"]),
                     "at ubatch": key_text(top["n_ubatch"]), "pp t/s": top["median_ts"],
                     "next best threshold, t/s": second if not pd.isna(second) else math.nan,
                     "note": note})
    if not keep:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(keep, ignore_index=True), pd.DataFrame(best)


NO_KL_REASON = {"argmax": "no logits vector", "subset": "no complete logits row",
                "screened": "no complete logits row"}


def _no_measure_note(strategy, metric: str) -> str:
    """Why a row has no value of the accuracy measure (e.g. 'no KL (no logits vector)')."""
    if metric != "kl_mean":
        return "no top-1 agreement measured"
    kind = key_text(strategy).split(":", 1)[0]
    return f"no KL ({NO_KL_REASON.get(kind, 'not measured')})"


def quality_points(frame: pd.DataFrame, quality: pd.DataFrame) -> pd.DataFrame:
    """Speed (best token-generation t/s, else best prompt t/s) against accuracy per
    (model, quant, vocab strategy), with a `pareto` flag: no other point is both faster and
    more accurate. Accuracy is the mean KL divergence (lower is better) when measured, else
    1 - top-1 agreement. Rows without that measure (the argmax strategy has no logits vector, so
    no KL) are no candidates for the front: error NaN, pareto False, and `note` says why.
    `label` names each point (model and strategy, plus the quant where the model name repeats)."""
    if frame.empty or quality is None or quality.empty:
        return pd.DataFrame()
    q = quality.copy()
    joined = None
    if "config_id" in q.columns and q["config_id"].notna().any():
        ids = frame[["config_id", "model", "quant", "vocab_strategy"]].drop_duplicates("config_id")
        joined = q.drop(columns=[c for c in ("model", "quant", "vocab_strategy") if c in q.columns]) \
                  .merge(ids, on="config_id", how="inner")
    if joined is None or joined.empty:
        if not {"model", "quant", "vocab_strategy"} <= set(q.columns):
            return pd.DataFrame()
        joined = q
    metric = "kl_mean" if "kl_mean" in joined.columns and joined["kl_mean"].notna().any() else "top1_agreement"
    if metric not in joined.columns:
        return pd.DataFrame()
    val = pd.to_numeric(joined[metric], errors="coerce").astype(float)
    err = val if metric == "kl_mean" else 1 - val
    top1 = (pd.to_numeric(joined["top1_agreement"], errors="coerce") if "top1_agreement" in joined.columns
            else pd.Series(math.nan, index=joined.index))
    g = joined.assign(error=err, top1=top1).groupby(["model", "quant", "vocab_strategy"])
    acc = pd.concat([g["error"].mean(), g["top1"].mean().rename("top-1 agreement")], axis=1)
    fast = frame[is_tg(frame)]
    kind = "tg"
    if fast.empty:
        fast, kind = frame[is_pp(frame)], "pp"
    speed = fast.groupby(["model", "quant", "vocab_strategy"])["median_ts"].max()
    pts = pd.concat([speed.rename("t/s"), acc], axis=1, join="inner").reset_index()
    if pts.empty:
        return pts
    pts["metric"] = "mean KL divergence" if metric == "kl_mean" else "1 - top-1 agreement"
    pts["speed of"] = kind
    s, e = pts["t/s"].to_numpy(float), pts["error"].to_numpy(float)
    cand = np.isfinite(s) & np.isfinite(e)
    pts["pareto"] = [bool(cand[i]) and not np.any(cand & (s >= s[i]) & (e <= e[i]) & ((s > s[i]) | (e < e[i])))
                     for i in range(len(pts))]
    pts["note"] = ["" if c else _no_measure_note(v, metric) for c, v in zip(cand, pts["vocab_strategy"])]
    model, quant, vocab = (pts[c].map(key_text) for c in ("model", "quant", "vocab_strategy"))
    pts["label"] = model + " " + vocab
    if pts["label"].duplicated(keep=False).any():        # one model name, several quant types
        pts["label"] = model + " " + quant + " " + vocab
    return pts


def synthetic_presets(frame: pd.DataFrame, models=None) -> list[str]:
    """The synthetic presets (non-empty model_preset) of `frame`'s rows, of `models` only if given."""
    if frame.empty or "model_preset" not in frame.columns:
        return []
    f = frame if models is None else frame[frame["model"].isin(list(models))]
    return sorted({key_text(p) for p in f["model_preset"].dropna()} - {""})


def vocab_groups(frame: pd.DataFrame) -> pd.DataFrame:
    """Median t/s per vocab strategy for every configuration measured with more than one."""
    if frame.empty or frame["vocab_strategy"].map(key_text).nunique() < 2:
        return pd.DataFrame()
    cols = [c for c in ("model", "test", "engine", "isa", "n_threads", "n_ubatch", "fdn_threshold", "n_depth")
            if c in frame.columns]
    f = frame.assign(group=config_labels(frame[cols]).values)
    out = []
    for g, d in f.groupby("group", sort=False):
        if d["vocab_strategy"].nunique() < 2:
            continue
        for v, dv in d.groupby("vocab_strategy"):
            out.append({"group": g, "vocab_strategy": v, "median t/s": dv["median_ts"].median()})
    return pd.DataFrame(out)


def _profile_keys(frame: pd.DataFrame, profile: pd.DataFrame) -> list[str]:
    both = "source" in profile.columns and "source" in frame.columns
    return ["config_id", "test"] + (["source"] if both else [])


def profiled_runs(frame: pd.DataFrame, profile: pd.DataFrame) -> pd.DataFrame:
    """One row per profiled run: the profiler runs each test once per sweep, so a configuration has
    one profiled run per result set (`source`) that holds it. Columns: the profile's keys, `label`
    (the configuration), `_order` (its place in the results) and `kept`: True for the runs at the
    commit of the configuration's latest measurement, which the report aggregates (a run at another
    commit measured other code, not another sample of the same)."""
    cols = ["config_id", "test", "label", "_order", "kept"]
    if profile is None or profile.empty or frame.empty:
        return pd.DataFrame(columns=cols)
    on = _profile_keys(frame, profile)
    f = frame.assign(_when=frame["test_time"].astype(str), _commit=frame["commit"].map(key_text),
                     _order=np.arange(len(frame))).sort_values("_when", kind="stable")
    latest = f.drop_duplicates(["config_id", "test"], keep="last").sort_values("_order")
    latest = latest.assign(label=config_labels(latest).values)
    runs = f.drop_duplicates(on, keep="last")[on + ["_commit"]].merge(
        latest[["config_id", "test", "label", "_order", "_commit"]].rename(columns={"_commit": "_latest"}),
        on=["config_id", "test"])
    runs["kept"] = runs["_commit"] == runs["_latest"]
    held = profile[on].drop_duplicates()
    return runs.merge(held, on=on, how="inner").drop(columns=["_commit", "_latest"])


def _op_runs(frame: pd.DataFrame, profile: pd.DataFrame) -> pd.DataFrame:
    """Share of profiled time per op in each kept profiled run (profiled_runs): rows (label, run),
    columns = the TOP_OPS costliest ops + 'other'; configurations in the order of the results."""
    runs = profiled_runs(frame, profile)
    runs = runs[runs["kept"]]
    if runs.empty:
        return pd.DataFrame()
    on = _profile_keys(frame, profile)
    p = profile.copy()
    p["ns"] = pd.to_numeric(p["ns"], errors="coerce").fillna(0)
    p["op"] = p["op"].map(key_text)
    p = p.merge(runs[on + ["label", "_order"]], on=on, how="inner")
    if p.empty or p["ns"].sum() <= 0:
        return pd.DataFrame()
    totals = p.groupby("op")["ns"].sum().sort_values(ascending=False)
    top = list(totals.index[:TOP_OPS])
    p["op"] = p["op"].where(p["op"].isin(top), "other")
    p["run"] = p[on].astype(str).agg("|".join, axis=1)
    wide = p.pivot_table(index=["_order", "label", "run"], columns="op", values="ns", aggfunc="sum",
                         fill_value=0)
    wide = wide[[c for c in top + ["other"] if c in wide.columns]]
    wide = wide[wide.sum(axis=1) > 0]
    wide = wide.div(wide.sum(axis=1), axis=0).sort_index(level=0, sort_remaining=False)
    return wide.droplevel(0)


def op_spread(frame: pd.DataFrame, profile: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and op: the number of profiled runs and the median, min and max of the op's
    share of the profiled time over them (long form, configurations in the order of the results)."""
    runs = _op_runs(frame, profile)
    if runs.empty:
        return pd.DataFrame(columns=["configuration", "op", "runs", "median", "min", "max"])
    long = runs.stack().rename("share").reset_index().rename(columns={"label": "configuration"})
    out = (long.groupby(["configuration", "op"], sort=False)["share"]
           .agg(runs="count", median="median", min="min", max="max").reset_index())
    return out


def op_breakdown(frame: pd.DataFrame, profile: pd.DataFrame) -> pd.DataFrame:
    """Share of profiled time per op (summed over layers) for each measured configuration, as a wide
    table: rows = configurations, columns = the TOP_OPS costliest ops + 'other', values = fraction.
    Where several profiled runs hold a configuration: the median share of each op over the runs,
    scaled so that a row sums to 1 (op_spread has the range)."""
    runs = _op_runs(frame, profile)
    if runs.empty:
        return pd.DataFrame()
    med = runs.groupby(level="label", sort=False).median()
    med.index.name = None
    med.columns.name = "op"
    return med.div(med.sum(axis=1), axis=0)


SYSFS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
LLC_FALLBACK = 32 * 2**20
MiB = 2**20


def _cache_bytes(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2).upper()]


def llc_size(root: str | os.PathLike = SYSFS_CACHE) -> int | None:
    """Bytes of the last-level cache of this machine's cpu0: the size of the highest cache level in
    sysfs (cpu0/cache/index*/level and size); None when sysfs does not say."""
    best = None
    for d in sorted(Path(root).glob("index*")):
        try:
            level = int((d / "level").read_text().strip())
            size = _cache_bytes((d / "size").read_text())
        except (OSError, ValueError):
            continue
        if size and (best is None or level > best[0] or (level == best[0] and size > best[1])):
            best = (level, size)
    return best[1] if best else None


def _provenances(provenance: dict) -> list[dict]:
    """The provenance of each result set: load_many's {"sources": {dir: provenance}}, or one."""
    if isinstance((provenance or {}).get("sources"), dict):
        return [p for p in provenance["sources"].values() if isinstance(p, dict)]
    return [provenance] if provenance else []


def machine_llc(provenance: dict, root: str | os.PathLike = SYSFS_CACHE) -> tuple[int, str]:
    """(bytes, where from) of the last-level cache of the machine that measured the results: a
    cache size its provenance records (llc_bytes), else this machine's (sysfs) when the results name
    no other CPU, else 32 MiB, assumed."""
    provs = _provenances(provenance)
    recorded = {int(p["llc_bytes"]) for p in provs if str(p.get("llc_bytes", "")).isdigit()}
    if len(recorded) == 1:
        return recorded.pop(), "recorded with the results"
    cpus = {str(p.get("cpu_model")) for p in provs if p.get("cpu_model")}
    if cpus - {cpu_model()}:
        return LLC_FALLBACK, "assumed: the results come from another CPU"
    here = llc_size(root)
    if here is None:
        return LLC_FALLBACK, "assumed: no cache size found"
    return here, "of this machine (sysfs)"


def mib_text(n: float) -> str:
    if n < 0.05 * MiB:
        return f"{n / MiB:.2g}"
    t = f"{n / MiB:.1f}"
    return t[:-2] if t.endswith(".0") else t


def roofline(frame: pd.DataFrame, llc_bytes: int = LLC_FALLBACK) -> pd.DataFrame:
    """Token generation rows with their achieved weight bandwidth next to the machine's read bandwidth.

    The roof is DRAM bandwidth: it applies only when the weights read per token do not fit in the
    last-level cache (`llc_bytes`). `in cache` flags the rows whose weights do, and `note` says so;
    a fraction above 1 outside the cache says the reference is stale or the working set cached."""
    if frame.empty:
        return pd.DataFrame()
    f = frame[is_tg(frame)].copy()
    for c in ("weight_gbps", "machine_read_gbps", "median_ts"):
        f[c] = pd.to_numeric(f[c], errors="coerce")
    f = f[np.isfinite(f["weight_gbps"]) & (f["weight_gbps"] > 0)]
    if f.empty:
        return pd.DataFrame()
    per_token = (f["weight_gbps"] * 1e9 / f["median_ts"]).to_numpy(float)   # weight_gbps = bytes/token x t/s
    fraction = (f["weight_gbps"] / f["machine_read_gbps"]).to_numpy(float)
    cached = np.isfinite(per_token) & (per_token < llc_bytes)
    notes = []
    for b, fr, c in zip(per_token, fraction, cached):
        if c:
            notes.append(f"weights fit in cache ({mib_text(b)} MiB < LLC {mib_text(llc_bytes)} MiB): "
                         "the DRAM roofline does not apply")
        elif np.isfinite(fr) and fr > 1:
            notes.append(f"{100 * fr:.0f}% of the measured read bandwidth: the reference is stale "
                         "or the working set is cached")
        else:
            notes.append("")
    return pd.DataFrame({"configuration": config_labels(f).values, "weights MiB/token": per_token / MiB,
                         "weight GB/s": f["weight_gbps"].values,
                         "machine read GB/s": f["machine_read_gbps"].values,
                         "fraction": fraction, "in cache": cached, "note": notes})


def history(frame: pd.DataFrame) -> pd.DataFrame:
    """Median t/s per configuration and commit, commits ordered by their first measurement; empty
    unless the results come from at least two commits."""
    if frame.empty or frame["commit"].map(key_text).nunique() < 2:
        return pd.DataFrame()
    f = frame.copy()
    f["commit"] = f["commit"].map(key_text)
    order = f.groupby("commit")["test_time"].min().sort_values().index.tolist()
    key_cols = [c for c in ("model", "test", "engine", "isa", "n_threads", "n_ubatch", "fdn_threshold",
                            "vocab_strategy", "n_depth") if c in f.columns]
    f["configuration"] = config_labels(f[key_cols]).values
    h = f.groupby(["configuration", "commit"])["median_ts"].median().reset_index()
    # configurations measured at the most commits first; they make the readable lines
    seen = h.groupby("configuration")["commit"].nunique().sort_values(ascending=False)
    h = h[h["configuration"].isin(seen[seen >= 2].index)]
    h["order"] = h["commit"].map({c: i for i, c in enumerate(order)})
    rank = {c: i for i, c in enumerate(seen.index)}
    h["rank"] = h["configuration"].map(rank)
    return h.sort_values(["rank", "order"]).drop(columns="rank").reset_index(drop=True)


def depth_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Measurements at two or more context depths of one setup, as curves: one per (engine, model,
    threads, u-batch, peer settings, test length), kind 'pp' or 'tg', tokens/s against n_depth (the
    median of the measurements at a depth). Columns: curve, kind, n_depth, tokens_s, bandwidth_fraction."""
    cols = ["curve", "kind", "n_depth", "tokens_s", "bandwidth_fraction"]
    if frame.empty or "n_depth" not in frame.columns:
        return pd.DataFrame(columns=cols)
    f = frame.copy()
    f["kind"] = ["pp" if p and not g else "tg" if g and not p else "" for p, g in
                 zip(f["n_prompt"].fillna(0).astype(int), f["n_gen"].fillna(0).astype(int))]
    f = f[f["kind"] != ""]
    f["length"] = [int(p) if k == "pp" else int(g) for k, p, g in zip(f["kind"], f["n_prompt"].fillna(0),
                                                                        f["n_gen"].fillna(0))]
    settings = f["engine_settings"].map(key_text) if "engine_settings" in f.columns else pd.Series("", index=f.index)
    f["curve"] = [f"{e} {m} t{key_text(t)} {k}{n}" + (f" {s}" if s not in ("", "{}") else "")
                  for e, m, t, k, n, s in zip(f["engine"].map(key_text), f["model"].map(key_text), f["n_threads"],
                                              f["kind"], f["length"], settings)]
    f["n_depth"] = f["n_depth"].fillna(0).astype(int)
    rows = []
    for curve, g in f.groupby("curve", sort=True):
        if g["n_depth"].nunique() < 2:
            continue
        for d, h in g.groupby("n_depth"):
            bw = h["bandwidth_fraction"].dropna() if "bandwidth_fraction" in h.columns else pd.Series(dtype=float)
            rows.append({"curve": curve, "kind": h["kind"].iloc[0], "n_depth": int(d),
                         "tokens_s": float(h["median_ts"].median()),
                         "bandwidth_fraction": float(bw.median()) if len(bw) else float("nan")})
    return pd.DataFrame(rows, columns=cols)

"""The tables behind each section of the HTML report, shaped from a result set with pandas.

Pure functions: each takes the store's frames and returns a small DataFrame (empty when the
results hold nothing for that section) or a plain value. Drawing is in charts.py, HTML in
html.py.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

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


def crossover(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, best): prompt-processing t/s against ubatch for each fdn threshold, for every group of
    otherwise equal configurations that varies ubatch or the threshold; best = the fastest point of
    each group, i.e. the threshold (and ubatch) to use on this machine."""
    if frame.empty:
        return pd.DataFrame(), pd.DataFrame()
    pp = frame[is_pp(frame)].copy()
    if pp.empty:
        return pd.DataFrame(), pd.DataFrame()
    group_cols = [c for c in ("model", "test", "engine", "isa", "n_threads", "vocab_strategy", "n_depth")
                  if c in pp.columns]
    pp["group"] = config_labels(pp[group_cols]).values
    keep, best = [], []
    for g, d in pp.groupby("group", sort=False):
        d = d.dropna(subset=["n_ubatch", "median_ts"])
        if d["n_ubatch"].nunique() < 2 and d["fdn_threshold"].nunique() < 2:
            continue
        pts = (d.groupby(["fdn_threshold", "n_ubatch"], dropna=False)["median_ts"].median()
               .reset_index().assign(group=g))
        keep.append(pts)
        top = pts.loc[pts["median_ts"].idxmax()]
        second = pts[pts["fdn_threshold"] != top["fdn_threshold"]]["median_ts"].max()
        best.append({"group": g, "best fdn threshold": key_text(top["fdn_threshold"]),
                     "at ubatch": key_text(top["n_ubatch"]), "pp t/s": top["median_ts"],
                     "next best threshold, t/s": second if not pd.isna(second) else math.nan})
    if not keep:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(keep, ignore_index=True), pd.DataFrame(best)


def quality_points(frame: pd.DataFrame, quality: pd.DataFrame) -> pd.DataFrame:
    """Speed (best token-generation t/s, else best prompt t/s) against accuracy per
    (model, quant, vocab strategy), with a `pareto` flag: no other point is both faster and
    more accurate. Accuracy is the mean KL divergence (lower is better) when measured, else
    1 - top-1 agreement."""
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
    err = joined[metric].astype(float) if metric == "kl_mean" else 1 - joined[metric].astype(float)
    acc = joined.assign(error=err).groupby(["model", "quant", "vocab_strategy"])["error"].mean()
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
    s, e = pts["t/s"].to_numpy(), pts["error"].to_numpy()
    pts["pareto"] = [not np.any(((s >= s[i]) & (e <= e[i])) & ((s > s[i]) | (e < e[i])))
                     for i in range(len(pts))]
    return pts


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


def op_breakdown(frame: pd.DataFrame, profile: pd.DataFrame) -> pd.DataFrame:
    """Share of profiled time per op (summed over layers) for each measured configuration, as a wide
    table: rows = configurations, columns = the TOP_OPS costliest ops + 'other', values = fraction."""
    if profile is None or profile.empty or frame.empty:
        return pd.DataFrame()
    p = profile.copy()
    p["ns"] = pd.to_numeric(p["ns"], errors="coerce").fillna(0)
    p["op"] = p["op"].map(key_text)
    on = ["config_id", "test"] + (["source"] if "source" in p.columns and "source" in frame.columns else [])
    labels = frame[on].assign(label=config_labels(frame).values)
    p = p.merge(labels.drop_duplicates(on), on=on, how="inner")
    if p.empty or p["ns"].sum() <= 0:
        return pd.DataFrame()
    totals = p.groupby("op")["ns"].sum().sort_values(ascending=False)
    top = list(totals.index[:TOP_OPS])
    p["op"] = p["op"].where(p["op"].isin(top), "other")
    wide = p.pivot_table(index="label", columns="op", values="ns", aggfunc="sum", fill_value=0, sort=False)
    wide = wide[[c for c in top + ["other"] if c in wide.columns]]
    wide = wide[wide.sum(axis=1) > 0]
    return wide.div(wide.sum(axis=1), axis=0)


def roofline(frame: pd.DataFrame) -> pd.DataFrame:
    """Token generation rows with their achieved weight bandwidth next to the machine's read bandwidth."""
    if frame.empty:
        return pd.DataFrame()
    f = frame[is_tg(frame)].copy()
    for c in ("weight_gbps", "machine_read_gbps"):
        f[c] = pd.to_numeric(f[c], errors="coerce")
    f = f[np.isfinite(f["weight_gbps"]) & (f["weight_gbps"] > 0)]
    if f.empty:
        return pd.DataFrame()
    return pd.DataFrame({"configuration": config_labels(f).values, "weight GB/s": f["weight_gbps"].values,
                         "machine read GB/s": f["machine_read_gbps"].values,
                         "fraction": (f["weight_gbps"] / f["machine_read_gbps"]).values})


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

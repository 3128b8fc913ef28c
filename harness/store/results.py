"""The results store: a directory of tidy tables that sweeps append to and reports read.

    DIR/results.csv      one row per measurement (one configuration x one test), RESULT_COLUMNS
    DIR/profile.csv      per-op profile, long form, PROFILE_COLUMNS (layer -1 = global ops)
    DIR/quality.csv      optional accuracy measures, QUALITY_COLUMNS
    DIR/provenance.json  machine and build facts of the runs that wrote DIR

Every write replaces a whole file atomically (harness.atomic), the writer holds DIR/.lock for as
long as it has DIR open, and a file that does not parse is reported by name and left untouched.
`samples_ts` is stored as a JSON list and comes back as a Python list of floats.
"""
from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from harness.atomic import DirLock, atomic_write_text, remove_stale_temps
from harness.errors import ResultsCorruptError, ResultsError, ResultsFilterError
from harness.store.llama_bench import load_llama_bench
from harness.store.schema import (BOOL_COLUMNS, EXTRA_COLUMNS, PROFILE_COLUMNS, PROFILE_REQUIRED, QUALITY_COLUMNS,
                                  REQUIRED_COLUMNS, RESULT_COLUMNS, STRING_COLUMNS, ResultSet, empty_results,
                                  rows_frame)

RESULTS_FILE, PROFILE_FILE, QUALITY_FILE, PROVENANCE_FILE = (
    "results.csv", "profile.csv", "quality.csv", "provenance.json")


# ----------------------------------------------------------------------------
# reading

def _read_csv(path: Path, required: list[str], strings: list[str] = ()) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={c: str for c in strings})
    except pd.errors.EmptyDataError:
        raise ResultsCorruptError(f"{path}: empty file (no header); it was not written by the results store") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ResultsCorruptError(f"{path}: cannot be parsed as CSV ({msg})") from None
    except OSError as e:
        raise ResultsError(f"{path}: cannot be read: {e.strerror}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ResultsCorruptError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def _parse_samples(path: Path, df: pd.DataFrame) -> list:
    out = []
    for i, text in enumerate(df["samples_ts"]):
        try:
            vals = json.loads(text) if isinstance(text, str) else None
            if not isinstance(vals, list) or not all(isinstance(x, (int, float)) for x in vals):
                raise ValueError
        except ValueError:
            raise ResultsCorruptError(f"{path}: row {i + 1}: samples_ts is not a JSON list of numbers "
                                      f"({str(text)[:40]!r})") from None
        out.append([float(x) for x in vals])
    return out


def _as_bool(v):
    if isinstance(v, str):
        return {"true": True, "false": False}.get(v.strip().lower(), pd.NA)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return pd.NA
    return bool(v)


def read_results_csv(path: str | os.PathLike) -> pd.DataFrame:
    """results.csv as a typed frame; ResultsCorruptError (naming the file and row) if it is damaged."""
    path = Path(path)
    df = _read_csv(path, REQUIRED_COLUMNS, STRING_COLUMNS)
    for c in STRING_COLUMNS:
        if c in df:
            df[c] = df[c].fillna("")
    bad = df.index[(df["config_id"] == "") | (df["test"] == "")]
    if len(bad):
        raise ResultsCorruptError(f"{path}: row {bad[0] + 1} has no config_id or test")
    for c in ("avg_ts", "median_ts"):
        if len(df) and not pd.api.types.is_numeric_dtype(df[c]):
            raise ResultsCorruptError(f"{path}: column {c} is not numeric")
    df["samples_ts"] = pd.Series(_parse_samples(path, df), index=df.index, dtype=object)
    for c in BOOL_COLUMNS:
        df[c] = df[c].map(_as_bool).astype("boolean")
    for c in EXTRA_COLUMNS:
        if c not in df:
            df[c] = "" if c in STRING_COLUMNS else float("nan")
    return df[RESULT_COLUMNS + [c for c in df.columns if c not in RESULT_COLUMNS]]


def _read_optional(path: Path, columns: list[str], required: list[str]) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=columns)
    return _read_csv(path, required)


def _with_macs(profile: pd.DataFrame) -> pd.DataFrame:
    """A profile written before the macs column was kept reads with 0 there (not counted)."""
    if "macs" not in profile.columns:
        profile = profile.assign(macs=0)
    return profile


def _read_provenance(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise ResultsCorruptError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise ResultsError(f"{path}: cannot be read: {e.strerror}") from None
    if not isinstance(data, dict):
        raise ResultsCorruptError(f"{path}: expected a JSON object")
    return data


def load_results(path: str | os.PathLike) -> ResultSet:
    """A results directory (or its results.csv), or a file of llama-bench output (json, jsonl, csv,
    sql text, sqlite database: harness.store.llama_bench.read_records tells them apart)."""
    p = Path(path)
    if p.is_file() and p.name == RESULTS_FILE:
        p = p.parent
    elif p.is_file():
        return load_llama_bench(p)
    if not p.is_dir():
        raise ResultsError(f"{p}: no such results directory (or llama-bench output file)")
    if not (p / RESULTS_FILE).exists():
        raise ResultsError(f"{p}: not a results directory (no {RESULTS_FILE})")
    frame = read_results_csv(p / RESULTS_FILE)
    profile = _with_macs(_read_optional(p / PROFILE_FILE, PROFILE_COLUMNS, PROFILE_REQUIRED))
    quality = _read_optional(p / QUALITY_FILE, QUALITY_COLUMNS, [])
    return ResultSet(frame, profile, quality, _read_provenance(p / PROVENANCE_FILE), [str(p)])


def load_many(paths: Iterable[str | os.PathLike]) -> ResultSet:
    """Several result sets concatenated; every frame gains a `source` column (the path it came
    from) and provenance becomes {"sources": {path: provenance}}."""
    sets = [load_results(p) for p in paths]
    if not sets:
        raise ResultsError("no results given")

    def cat(frames, columns):
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns + ["source"])

    def tagged(name, columns):
        return cat([getattr(s, name).assign(source=s.paths[0]) for s in sets], columns)

    return ResultSet(tagged("frame", RESULT_COLUMNS), tagged("profile", PROFILE_COLUMNS),
                     tagged("quality", QUALITY_COLUMNS),
                     {"sources": {s.paths[0]: s.provenance for s in sets}},
                     [s.paths[0] for s in sets])


# ----------------------------------------------------------------------------
# writing

def csv_text(df: pd.DataFrame) -> str:
    """A results frame as the text of results.csv (samples_ts as JSON lists)."""
    return _csv_text(df)


def _csv_text(df: pd.DataFrame) -> str:
    out = df.copy()
    if "samples_ts" in out:
        out["samples_ts"] = [json.dumps([float(x) for x in v]) for v in out["samples_ts"]]
    buf = io.StringIO()
    out.to_csv(buf, index=False)
    return buf.getvalue()


class ResultStore:
    """The one writer of a results directory.

        with ResultStore(d, resume=True) as st:
            if cid not in st.done_ids: st.append(rows, profile_rows)

    Opening takes DIR/.lock (ResultsLockedError while a live process holds it), checks every file
    already there (ResultsCorruptError names a damaged one, which is then never written), and
    refuses a directory that already holds results unless resume=True.
    """

    def __init__(self, directory: str | os.PathLike, resume: bool = False):
        self.dir = Path(directory)
        self.resume = resume
        self._lock = DirLock(self.dir)
        self.frame = empty_results()
        self.profile = pd.DataFrame(columns=PROFILE_COLUMNS)
        self.removed_temps: list[str] = []

    # -- lifetime -------------------------------------------------------------------
    def open(self) -> ResultStore:
        if self.dir.exists() and not self.dir.is_dir():
            raise ResultsError(f"{self.dir}: exists and is not a directory")
        self._lock.acquire()
        try:
            self._load_existing()
        except BaseException:
            self._lock.release()
            raise
        return self

    def _load_existing(self) -> None:
        res, prof = self.dir / RESULTS_FILE, self.dir / PROFILE_FILE
        if res.exists():
            self.frame = read_results_csv(res)
        if prof.exists():
            self.profile = _with_macs(_read_csv(prof, PROFILE_REQUIRED))
        _read_provenance(self.dir / PROVENANCE_FILE)        # damaged -> error now, not at the end
        if len(self.frame) and not self.resume:
            raise ResultsError(f"{self.dir} already holds {len(self.frame)} result(s); use --resume to add to "
                               f"it (finished configurations are skipped) or choose another directory")
        self.removed_temps = remove_stale_temps(self.dir)
        if not res.exists():
            atomic_write_text(res, _csv_text(self.frame))

    def close(self) -> None:
        self._lock.release()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    # -- contents ---------------------------------------------------------------------
    @property
    def done_ids(self) -> set[str]:
        return set(self.frame["config_id"])

    @property
    def stale_lock(self) -> dict | None:
        """What a killed holder left in the lock file (None if the lock was free and clean)."""
        return self._lock.previous

    def append(self, rows: list[dict], profile_rows: list[dict] = ()) -> list[str]:
        """Add result rows (and their profile rows); returns their config ids. The profile is
        written first and results.csv last, so a row is never visible without its profile;
        profile rows of a config id replace any orphans a killed run left for it."""
        new = rows_frame(rows)
        ids = list(new["config_id"])
        if profile_rows:
            prof = pd.DataFrame(list(profile_rows), columns=PROFILE_COLUMNS)
            kept = self.profile[~self.profile["config_id"].isin(set(prof["config_id"]))]
            self.profile = pd.concat([kept, prof], ignore_index=True) if len(kept) else prof
            atomic_write_text(self.dir / PROFILE_FILE, _csv_text(self.profile))
        self.frame = pd.concat([self.frame, new], ignore_index=True) if len(self.frame) else new
        atomic_write_text(self.dir / RESULTS_FILE, _csv_text(self.frame))
        return ids

    def write_provenance(self, prov: dict) -> None:
        """Record this run's provenance; earlier runs into the same directory are kept under 'runs'."""
        path = self.dir / PROVENANCE_FILE
        old = _read_provenance(path)
        runs = old.get("runs", []) + [prov]
        merged = dict(prov)
        merged["created"] = old.get("created", prov.get("created"))
        merged["runs"] = runs
        atomic_write_text(path, json.dumps(merged, indent=1, default=str))

    def write_quality(self, frame: pd.DataFrame) -> None:
        atomic_write_text(self.dir / QUALITY_FILE, _csv_text(frame))


# ----------------------------------------------------------------------------
# queries

def select(frame: pd.DataFrame, filters: list[str]) -> pd.DataFrame:
    """Rows matching every filter: 'key=value' (a comma list matches any of its values) or
    'key!=value'. Numeric columns compare as numbers, others as text. A bad filter raises
    ResultsFilterError (a ResultsError and a bad argument)."""
    out = frame
    for f in filters:
        neg = "!=" in f
        key, sep, value = f.partition("!=" if neg else "=")
        key = key.strip()
        if not sep or not key:
            raise ResultsFilterError(f"filter {f!r}: expected KEY=VALUE or KEY!=VALUE")
        if key not in out.columns:
            raise ResultsFilterError(f"filter {f!r}: no column {key!r} (columns: {', '.join(map(str, out.columns))})")
        wanted = [v.strip() for v in value.split(",")]
        col = out[key]
        if pd.api.types.is_bool_dtype(col):
            try:
                vals = [{"true": True, "false": False}[v.lower()] for v in wanted]
            except KeyError:
                raise ResultsFilterError(f"filter {f!r}: {key} is true or false") from None
            hit = col.isin(vals)
        elif pd.api.types.is_numeric_dtype(col):
            try:
                vals = [float(v) for v in wanted]
            except ValueError:
                raise ResultsFilterError(f"filter {f!r}: {key} is numeric") from None
            hit = col.astype(float).isin(vals)
        else:
            hit = col.astype(str).isin(wanted)
        out = out[~hit if neg else hit]
    return out.reset_index(drop=True)

"""Noise records: the run-to-run spread of a test on this machine, as `harness noise` and the A/A
rounds of `harness ab` measured it, kept so that `harness compare` can judge two single runs.

One JSON file, <cache>/noise/noise.json, maps "<machine key>|<model file>|<test>|<threads>" to the spread
of ln(second run / first run) over A/A rounds (sd_log), how many rounds it rests on and when it was
measured. A new measurement of the same key replaces the old one only when it rests on at least as
many rounds or the old one is more than 30 days old (a noisy day should not be forgotten by a quick
2-round A/A). Threads 0 means the engine's default. A record keeps the address layout and the
statistic of its runs (the median of a run's repetitions, as compare judges, or the fastest, as
`harness ab` does by default), and only a random-layout median record speaks for compare.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from harness.atomic import DirLock, atomic_write_text
from harness.cache import cache_dir
from harness.errors import ResultsLockedError
from harness.provenance import now_iso

FILE = "noise.json"
STALE_DAYS = 30


@dataclass(frozen=True)
class NoiseRecord:
    machine: str
    model_file: str      # the GGUF's file name
    test: str            # pp512, tg128
    threads: int
    sd_log: float        # spread of the per-round log ratios of two runs of one build
    rounds: int
    measured: str        # ISO time
    layout: str = "random"   # the address layout of the runs: random (ASLR, as sweeps run) or matched
    statistic: str = "median"   # one run's figure from its repetitions: median or best

    @property
    def key(self) -> str:
        return record_key(self.machine, self.model_file, self.test, self.threads, self.layout, self.statistic)

    @property
    def run_spread(self) -> float:
        """The spread of one run's figure: sd_log / sqrt(2)."""
        return self.sd_log / math.sqrt(2)


def record_key(machine: str, model_file: str, test: str, threads: int, layout: str = "random",
               statistic: str = "median") -> str:
    key = f"{machine}|{os.path.basename(model_file)}|{test}|{int(threads or 0)}"
    if layout != "random":
        key += f"|{layout}"
    return key if statistic == "median" else f"{key}|{statistic}"


def _dir():
    return cache_dir() / "noise"


def _path():
    return _dir() / FILE


def _load() -> dict:
    try:
        data = json.loads(_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _age_days(iso: str) -> float:
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return math.inf
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - t).total_seconds() / 86400


def save(records: list[NoiseRecord]) -> int:
    """Merge records into the store (the rule in the module docstring); how many were kept (0 when
    another process holds the store's lock: a record is worth less than waiting)."""
    kept = 0
    try:
        lock = DirLock(_dir()).acquire()
    except ResultsLockedError:
        return 0
    try:
        data = _load()
        for r in records:
            if not (math.isfinite(r.sd_log) and r.rounds >= 2):
                continue
            old = data.get(r.key)
            if isinstance(old, dict) and old.get("rounds", 0) > r.rounds and _age_days(old.get("measured", "")) < STALE_DAYS:
                continue
            data[r.key] = {"sd_log": r.sd_log, "rounds": r.rounds, "measured": r.measured, "layout": r.layout,
                           "statistic": r.statistic}
            kept += 1
        atomic_write_text(_path(), json.dumps(data, indent=1, sort_keys=True))
    finally:
        lock.release()
    return kept


def lookup(machine: str, model_file: str, test: str, threads: int, layout: str = "random",
           statistic: str = "median") -> NoiseRecord | None:
    v = _load().get(record_key(machine, model_file, test, threads, layout, statistic))
    if not isinstance(v, dict) or not isinstance(v.get("sd_log"), (int, float)):
        return None
    return NoiseRecord(machine, os.path.basename(model_file), test, int(threads or 0), float(v["sd_log"]),
                       int(v.get("rounds", 0)), str(v.get("measured", "")), str(v.get("layout", "random")),
                       str(v.get("statistic", "median")))


def record(machine: str, model_file: str, test: str, threads: int, sd_log: float, rounds: int,
           layout: str = "random", statistic: str = "median") -> NoiseRecord:
    return NoiseRecord(machine, os.path.basename(model_file), test, int(threads or 0), sd_log, rounds, now_iso(),
                       layout, statistic)

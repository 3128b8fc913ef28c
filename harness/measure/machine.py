"""Facts about this machine that measurements are judged against: the memory read
bandwidth (measured once per machine and thread count, then cached with the time it was taken)."""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass

from harness.atomic import atomic_write_text
from harness.cache import cache_dir
from harness.native import lib
from harness.provenance import cpu_model, now_iso

BUFFER_BYTES = 1 << 30   # far larger than any cache


@dataclass(frozen=True)
class Bandwidth:
    gbps: float
    measured: str       # ISO UTC time of the measurement (or "unknown, before <time>" for old cache entries)
    threads: int


def read_bandwidth_record(threads: int, refresh: bool = False) -> Bandwidth:
    """GB/s that `threads` threads read from memory (best of 5 passes over 1 GiB), and when."""
    path = cache_dir() / "machine.json"
    key = f"{platform.node()}|{cpu_model()}|read_gbps|{threads}"
    data = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
    # the time sits under its own key so that older readers still find a bare number under `key`
    when = key + "|measured"
    if refresh or key not in data:
        data[key] = lib.q35_read_bandwidth(BUFFER_BYTES, threads, 5)
        data[when] = now_iso()
        atomic_write_text(path, json.dumps(data, indent=1))
    measured = data.get(when) or f"unknown, before {_mtime_iso(path)} (cached before times were kept)"
    return Bandwidth(float(data[key]), str(measured), threads)


def _mtime_iso(path) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).isoformat(timespec="seconds")


def read_bandwidth(threads: int, refresh: bool = False) -> float:
    """GB/s that `threads` threads read from memory (cached per machine and thread count)."""
    return read_bandwidth_record(threads, refresh).gbps

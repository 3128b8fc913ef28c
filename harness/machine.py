"""Facts about this machine that measurements are judged against: the memory read
bandwidth (measured once per machine and thread count, then cached)."""
from __future__ import annotations

import json
import platform

from .native import lib
from .provenance import cpu_model
from .cache import cache_dir

BUFFER_BYTES = 1 << 30   # far larger than any cache


def read_bandwidth(threads: int, refresh: bool = False) -> float:
    """GB/s that `threads` threads read from memory (best of 5 passes over 1 GiB)."""
    path = cache_dir() / "machine.json"
    key = f"{platform.node()}|{cpu_model()}|read_gbps|{threads}"
    data = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
    if refresh or key not in data:
        data[key] = lib.q35_read_bandwidth(BUFFER_BYTES, threads, 5)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    return float(data[key])

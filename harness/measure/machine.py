"""Facts about this machine that measurements are judged against.

The memory read bandwidth: probed briefly (~0.2 s) at the start and at the end of every run, since
a figure measured once can be stale (taken under load, it made later roofline figures exceed 100%);
the long measurement cached per machine and thread count (with the time it was taken) is only the
fallback when the probes fail, or refreshed on request.

Whether the machine was busy during a measurement: the CPU time other processes took on the CPUs
this process may use (from /proc/stat), the load average, and where cheap the speed of one thread
against the speed of the requested threads (classify_busy)."""
from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, field

from harness.atomic import atomic_write_text
from harness.cache import cache_dir
from harness.native import default_threads, lib
from harness.provenance import cpu_model, now_iso

BUFFER_BYTES = 1 << 30   # far larger than any cache: the long, cached measurement
PROBE_BYTES = 256 << 20  # the per-run probe: still far beyond the caches, ~0.2 s for 3 passes
PROBE_PASSES = 3
PROBE_MAX_THREADS = 256  # q35_read_bandwidth's limit


@dataclass(frozen=True)
class Bandwidth:
    gbps: float
    measured: str       # ISO UTC time of the measurement (or "unknown, before <time>" for old cache entries)
    threads: int


def probe_threads(threads: int) -> int:
    """The reader threads of a bandwidth probe for an engine of `threads` threads: no more than the
    CPUs available (more readers than CPUs measure the scheduler, not the memory)."""
    return max(1, min(threads, default_threads(), PROBE_MAX_THREADS))


def read_bandwidth_record(threads: int, refresh: bool = False) -> Bandwidth:
    """GB/s that `threads` threads read from memory (best of 5 passes over 1 GiB), and when; cached
    per machine and thread count (a failed measurement, e.g. more than 256 threads, is not cached:
    nan). Runs pass probe_threads(engine threads)."""
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
    cached = data.get(key)
    if refresh or not (isinstance(cached, (int, float)) and cached > 0):
        gbps = float(lib.q35_read_bandwidth(BUFFER_BYTES, threads, 5))
        if not gbps > 0:
            return Bandwidth(float("nan"), now_iso(), threads)
        data[key] = gbps
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


def probe_bandwidth(threads: int) -> float | None:
    """A short read-bandwidth probe (best of 3 passes over 256 MiB, ~0.2 s); None if it failed."""
    gbps = float(lib.q35_read_bandwidth(PROBE_BYTES, probe_threads(threads), PROBE_PASSES))
    return gbps if gbps > 0 and math.isfinite(gbps) else None


@dataclass
class RunBandwidth:
    """The read bandwidth of one run: probed at its start and at its end. The reference for the
    roofline is the better of the two probes (a probe slowed by other work reads too low); the
    cached long measurement stands in only when no probe worked."""
    threads: int
    start_gbps: float | None = None
    end_gbps: float | None = None
    start_time: str = ""
    end_time: str = ""
    fallback: Bandwidth | None = None
    refreshed: bool = False            # the cached long measurement was re-taken on request

    @property
    def gbps(self) -> float:
        probes = [g for g in (self.start_gbps, self.end_gbps) if g]
        if probes:
            return max(probes)
        return self.fallback.gbps if self.fallback else float("nan")

    @property
    def source(self) -> str:
        if self.start_gbps or self.end_gbps:
            return "probe"
        return "cache" if self.fallback else "none"

    @property
    def measured(self) -> str:
        """When and how the reference was measured, in words."""
        if self.source == "probe":
            ends = [f"{w} {g:.1f} GB/s" for w, g in (("start", self.start_gbps), ("end", self.end_gbps)) if g]
            return f"{self.start_time or self.end_time}, probed at this run's {' and '.join(ends)}"
        if self.fallback:
            return f"{self.fallback.measured} (cached: the probes of this run failed)"
        return "never (no bandwidth measurement worked)"

    def finish(self) -> RunBandwidth:
        """Probe again at the end of the run."""
        self.end_gbps = probe_bandwidth(self.threads)
        self.end_time = now_iso()
        if not self.gbps > 0 and self.fallback is None:
            self.fallback = read_bandwidth_record(self.threads)
        return self

    def as_dict(self) -> dict:
        return {"gbps": self.gbps, "measured": self.measured, "source": self.source, "threads": self.threads,
                "start_gbps": self.start_gbps, "end_gbps": self.end_gbps, "start_time": self.start_time,
                "end_time": self.end_time, "cached_gbps": self.fallback.gbps if self.fallback else None,
                "cached_measured": self.fallback.measured if self.fallback else None,
                "refreshed": self.refreshed}


def start_run_bandwidth(threads: int, refresh: bool = False) -> RunBandwidth:
    """Probe the read bandwidth at the start of a run (refresh: re-take the cached long measurement
    too); call .finish() at its end."""
    t = probe_threads(threads)
    rb = RunBandwidth(t, refreshed=refresh)
    if refresh:
        rb.fallback = read_bandwidth_record(t, refresh=True)
    rb.start_gbps = probe_bandwidth(t)
    rb.start_time = now_iso()
    if rb.start_gbps is None and rb.fallback is None:
        rb.fallback = read_bandwidth_record(t)
    return rb


# ----------------------------------------------------------------------------
# a busy machine

SLOWDOWN_LIMIT = 2.0   # N threads slower than one by this factor: they wait for each other
OTHERS_MARGIN = 0.5    # CPUs other processes may take beyond those our threads leave free
LOAD_MARGIN = 1.0      # the same for the load average (coarser: it lags and counts us too)
OTHERS_IDLE = 0.25     # others took less than this: a slowdown is the engine's own, not a busy machine
MIN_WINDOW_S = 0.25    # /proc/stat counts in ticks (10 ms): shorter windows say nothing


def affinity_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


@dataclass
class CpuSample:
    wall: float             # perf_counter seconds
    busy: float | None      # busy seconds of the CPUs this process may use (None: no /proc/stat)
    own: float              # CPU seconds of this process (all its threads)
    cpus: list[int] = field(default_factory=list)


def _busy_seconds(cpus: list[int]) -> float | None:
    """Non-idle seconds (user, nice, system, irq, softirq, steal) of the given CPUs since boot."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    want, total, seen = {f"cpu{c}" for c in cpus}, 0, 0
    for line in lines:
        parts = line.split()
        if parts and parts[0] in want:
            v = [int(x) for x in parts[1:9]] + [0] * max(0, 8 - len(parts[1:9]))
            total += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
            seen += 1
    if seen != len(want):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def cpu_sample() -> CpuSample:
    cpus = affinity_cpus()
    return CpuSample(time.perf_counter(), _busy_seconds(cpus), time.process_time(), cpus)


def others_cpu(a: CpuSample, b: CpuSample) -> float | None:
    """CPUs' worth of time that other processes took on our CPUs between two samples (0 = none,
    1.0 = one whole CPU); None when unknown (no /proc/stat, or too short a window to tell)."""
    wall = b.wall - a.wall
    if a.busy is None or b.busy is None or wall < MIN_WINDOW_S or a.cpus != b.cpus:
        return None
    return max(0.0, ((b.busy - a.busy) - (b.own - a.own)) / wall)


def others_cpu_since(before: CpuSample) -> float | None:
    """others_cpu from `before` to now; a window shorter than MIN_WINDOW_S (a fast test) is topped
    up by sleeping, so that what other processes take is still seen (we take nothing meanwhile)."""
    rest = MIN_WINDOW_S - (time.perf_counter() - before.wall)
    if before.busy is not None and rest > 0:
        time.sleep(rest + 0.01)
    return others_cpu(before, cpu_sample())


def _ts(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def _known(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def classify_busy(load: float | None, threads: int, cpus: int, speed_n: float | None = None,
                  speed_1: float | None = None, others: float | None = None) -> tuple[bool, str]:
    """(busy, note): whether other work on the machine took CPU time that `threads` engine threads
    needed, so that the figure says more about the machine's load than about the engine.

    load: the 1-minute load average before the run; cpus: the CPUs this process may use; speed_n,
    speed_1: tokens/s with `threads` threads and with one (a tg probe); others: the CPUs' worth of
    time other processes took on our CPUs during the timed runs (None: unknown). The signals:
    - N threads slower than one thread by SLOWDOWN_LIMIT or more (unless others were measured idle:
      then the slowdown is the engine's own, e.g. more threads than CPUs);
    - others took more than the CPUs our threads left free, plus OTHERS_MARGIN;
    - without that measurement: the load average beyond the free CPUs plus LOAD_MARGIN."""
    used = min(threads, cpus)
    free = cpus - used
    reasons = []
    if (threads > 1 and _known(speed_n) and _known(speed_1) and speed_n > 0
            and speed_1 >= SLOWDOWN_LIMIT * speed_n and not (_known(others) and others < OTHERS_IDLE)):
        reasons.append(f"{threads} threads ran at {_ts(speed_n)} t/s but one thread at {_ts(speed_1)} t/s "
                       f"({speed_1 / speed_n:.1f}x faster): the threads wait for each other")
    if _known(others):
        if others > free + OTHERS_MARGIN:
            reasons.append(f"other processes took {others:.1f} of the {cpus} CPU(s) during the timed runs "
                           f"({used} needed by {threads} thread(s))")
    elif _known(load) and load > free + LOAD_MARGIN:
        reasons.append(f"load average {load:.1f} on {cpus} CPU(s) before the run, {threads} thread(s) asked for")
    if not reasons:
        return False, ""
    tail = f" (load average {load:.1f})" if _known(load) and not reasons[-1].startswith("load") else ""
    return True, "machine busy: " + "; ".join(reasons) + tail

"""The state of the machine around a run, and whether it is quiet enough to measure a change.

system_state() reads, in about `sample_seconds` (two samples of /proc, a sleep between them):
the load average; the CPUs the run may use; the CPU time other processes took on them (from
/proc/stat, which also sees processes outside this PID namespace) and the other processes above
BUSY_PERCENT of one CPU (from /proc/<pid>/stat, utime + stime), this process and its descendants
excluded; and from /sys the CPU frequency governor and current / min / max frequency per cpufreq
policy, the boost / turbo state and the thermal throttle counters. Every field that cannot be read
on this machine (a VM without cpufreq, a kernel without thermal_throttle, no /proc) is None, shown
as "not readable" by as_dict() and summary(); reading never raises.

The parsing functions take file texts and the reader takes a root directory, so tests feed fake
/proc and /sys trees.

quiet_check() gives the reasons the machine is not quiet enough to resolve a change of `threshold`
with `threads` engine threads (rules in its docstring); throttled_between() compares the throttle
counters of the states read at the start and at the end of a run; check_before_measuring() is the
gate of `harness bench`, `harness sweep` and `harness ab`: warnings, or MachineNotQuietError under
--strict. Runs record both states in their provenance beside the read-bandwidth probes taken at
their start and end (machine.RunBandwidth)."""
from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import MachineNotQuietError
from harness.measure.machine import LOAD_MARGIN, affinity_cpus
from harness.provenance import now_iso

NOT_READABLE = "not readable"
BUSY_PERCENT = 5.0       # other processes above this share of one CPU are listed by name
CPU_DIR = Path("sys/devices/system/cpu")   # under the root


# ----------------------------------------------------------------------------
# the state

@dataclass(frozen=True)
class BusyProcess:
    """Another process that took CPU time while the state was sampled."""
    pid: int
    name: str
    cpu_percent: float       # % of one CPU over the sample


@dataclass(frozen=True)
class Frequency:
    """The clock of one cpufreq policy (or CPU), MHz; None where its file is not readable."""
    cur_mhz: float | None
    min_mhz: float | None
    max_mhz: float | None


@dataclass(frozen=True)
class Boost:
    """Boost / turbo: enabled when the files read say so (None: they do not say), and the files read
    (relative to /sys/devices/system/cpu) with their text."""
    enabled: bool | None
    readings: dict[str, str]


@dataclass(frozen=True)
class ThrottleCount:
    """The thermal throttle counters of one CPU since boot (None: that file is not readable)."""
    core: int | None
    package: int | None


@dataclass(frozen=True)
class SystemState:
    """The machine at one moment of a run (see the module docstring); None: not readable here."""
    time: str                                      # ISO UTC
    sample_seconds: float                          # the window the CPU times were taken over
    cpus: tuple[int, ...]                          # the CPUs the run may use
    load_avg: tuple[float, float, float] | None    # 1, 5, 15 minutes
    others_cpus: float | None                      # CPUs' worth other processes took on `cpus`
    busy_processes: tuple[BusyProcess, ...] | None  # others above BUSY_PERCENT, busiest first
    governors: dict[str, str] | None               # policy (or cpuN) -> scaling governor
    boost: Boost | None
    frequency: dict[str, Frequency] | None         # policy (or cpuN) -> MHz
    throttle: dict[int, ThrottleCount] | None      # CPU -> counters

    @property
    def cpus_available(self) -> int:
        return len(self.cpus)

    def others(self) -> float | None:
        """CPUs' worth of time other processes took: /proc/stat where readable, else the sum of the
        busy processes listed, else None."""
        if self.others_cpus is not None:
            return self.others_cpus
        if self.busy_processes is not None:
            return sum(p.cpu_percent for p in self.busy_processes) / 100.0
        return None

    def as_dict(self) -> dict:
        """JSON-ready; a field not readable on this machine is the string "not readable"."""
        def shown(value, form):
            return NOT_READABLE if value is None else form(value)
        return {
            "time": self.time, "sample_seconds": self.sample_seconds, "cpus": list(self.cpus),
            "cpus_available": self.cpus_available,
            "load_avg": shown(self.load_avg, list),
            "others_cpus": shown(self.others_cpus, lambda v: round(v, 3)),
            "busy_processes": shown(self.busy_processes, lambda ps: [asdict(p) for p in ps]),
            "governors": shown(self.governors, dict),
            "boost": shown(self.boost, asdict),
            "frequency_mhz": shown(self.frequency, lambda d: {k: asdict(f) for k, f in d.items()}),
            "throttle_counts": shown(self.throttle, lambda d: {str(c): asdict(t) for c, t in d.items()}),
        }

    def summary(self) -> str:
        """One line: load, others, governor, boost, clock, throttle counts."""
        parts = [f"{self.cpus_available} CPU(s)"]
        parts.append("load " + (" ".join(f"{v:.2f}" for v in self.load_avg) if self.load_avg else NOT_READABLE))
        others = self.others()
        parts.append("others " + (NOT_READABLE if others is None else f"{others:.2f} CPU"))
        if self.busy_processes:
            parts.append("busy " + " ".join(f"{p.name}[{p.pid}] {p.cpu_percent:.0f}%" for p in self.busy_processes[:3]))
        parts.append("governor " + ("/".join(sorted(set(self.governors.values()))) if self.governors else NOT_READABLE))
        parts.append("boost " + (NOT_READABLE if self.boost is None else
                                 {True: "on", False: "off", None: "unknown"}[self.boost.enabled]))
        cur = [f.cur_mhz for f in (self.frequency or {}).values() if f.cur_mhz is not None]
        parts.append("clock " + (f"{min(cur):.0f}-{max(cur):.0f} MHz" if cur else NOT_READABLE))
        parts.append("throttle " + (NOT_READABLE if self.throttle is None else
                                    f"core {_total(self.throttle, 'core')} package {_total(self.throttle, 'package')}"))
        return ", ".join(parts)


def _total(throttle: dict[int, ThrottleCount], which: str) -> int:
    return sum(getattr(t, which) or 0 for t in throttle.values())


# ----------------------------------------------------------------------------
# parsing (file texts in, values out: tests feed fixtures)

@dataclass(frozen=True)
class PidStat:
    """The fields of /proc/<pid>/stat the state needs."""
    pid: int
    name: str
    ppid: int
    ticks: int               # utime + stime, clock ticks


def parse_loadavg(text: str) -> tuple[float, float, float] | None:
    """/proc/loadavg -> (1, 5, 15 minute averages); None if malformed."""
    try:
        one, five, fifteen = (float(x) for x in text.split()[:3])
    except ValueError:
        return None
    return one, five, fifteen


def parse_pid_stat(text: str) -> PidStat | None:
    """/proc/<pid>/stat -> PidStat; the name sits in parentheses and may hold spaces and ')'."""
    try:
        head, _, tail = text.rpartition(")")
        pid_text, _, name = head.partition("(")
        fields = tail.split()
        # after the name: state(3) ppid(4) ... utime(14) stime(15)
        return PidStat(int(pid_text), name, int(fields[1]), int(fields[11]) + int(fields[12]))
    except (ValueError, IndexError):
        return None


def parse_cpu_ticks(text: str, cpus: Sequence[int]) -> int | None:
    """Non-idle ticks (user, nice, system, irq, softirq, steal) of the given CPUs since boot, from
    /proc/stat; None if one of them is missing."""
    want, total, seen = {f"cpu{c}" for c in cpus}, 0, 0
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in want:
            try:
                v = [int(x) for x in parts[1:9]] + [0] * max(0, 8 - len(parts[1:9]))
            except ValueError:
                return None
            total += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
            seen += 1
    return total if want and seen == len(want) else None


def descendants(stats: dict[int, PidStat], root: int) -> set[int]:
    """The pids below `root` in the process tree (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for s in stats.values():
        children.setdefault(s.ppid, []).append(s.pid)
    out, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out and c != root:
                out.add(c)
                todo.append(c)
    return out


def busy_between(first: dict[int, PidStat], second: dict[int, PidStat], seconds: float, ticks_per_second: float,
                 exclude: set[int], min_percent: float = BUSY_PERCENT) -> tuple[BusyProcess, ...]:
    """The processes in both samples, not excluded, that took more than `min_percent` of one CPU
    between them, busiest first."""
    out = []
    for pid, b in second.items():
        a = first.get(pid)
        if a is None or pid in exclude or seconds <= 0:
            continue
        pct = 100.0 * (b.ticks - a.ticks) / ticks_per_second / seconds
        if pct > min_percent:
            out.append(BusyProcess(pid, b.name, round(pct, 1)))
    return tuple(sorted(out, key=lambda p: (-p.cpu_percent, p.pid)))


def parse_int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def parse_khz(text: str | None) -> float | None:
    """A cpufreq frequency file (kHz) -> MHz."""
    khz = parse_int(text)
    return khz / 1000.0 if khz is not None and khz > 0 else None


def parse_boost(readings: dict[str, str]) -> Boost | None:
    """Boost from the files read (paths relative to /sys/devices/system/cpu): cpufreq/boost (1 on),
    else intel_pstate/no_turbo (1 off), else the per-policy cpufreq/policy*/boost (all 1 on, all 0
    off); amd_pstate/status (the driver's mode) is recorded only. None when no file was read."""
    if not readings:
        return None
    flag = {"1": True, "0": False}
    enabled = None
    if readings.get("cpufreq/boost") in flag:
        enabled = flag[readings["cpufreq/boost"]]
    elif readings.get("intel_pstate/no_turbo") in flag:
        enabled = not flag[readings["intel_pstate/no_turbo"]]
    else:
        per_policy = {v for k, v in readings.items() if re.fullmatch(r"cpufreq/policy\d+/boost", k)}
        if len(per_policy) == 1 and per_policy <= set(flag):
            enabled = flag[per_policy.pop()]
    return Boost(enabled, dict(readings))


# ----------------------------------------------------------------------------
# reading a tree (the real one, or a fake one under a test's tmp_path)

def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _numbered(paths, prefix: str) -> list[Path]:
    """The paths named prefix<N>, in the order of N."""
    found = [(int(m.group(1)), p) for p in paths if (m := re.fullmatch(prefix + r"(\d+)", p.name))]
    return [p for _, p in sorted(found)]


def _children(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def read_pid_stats(root: Path) -> dict[int, PidStat] | None:
    """Every process's PidStat from root/proc; None when /proc cannot be listed."""
    proc = root / "proc"
    try:
        names = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return None
    out = {}
    for p in names:
        text = _read(p / "stat")
        s = parse_pid_stat(text) if text else None
        if s is not None:
            out[s.pid] = s
    return out


def _cpufreq_dirs(root: Path) -> list[tuple[str, Path]]:
    """(name, directory) of each cpufreq policy, or of each CPU's cpufreq on kernels without policies."""
    cpu = root / CPU_DIR
    policies = _numbered(_children(cpu / "cpufreq"), "policy")
    if policies:
        return [(p.name, p) for p in policies]
    return [(c.name, c / "cpufreq") for c in _numbered(_children(cpu), "cpu") if (c / "cpufreq").is_dir()]


def read_cpufreq(root: Path) -> tuple[dict[str, str] | None, dict[str, Frequency] | None]:
    """(governor per policy, frequency per policy), each None when nothing was readable."""
    governors, freqs = {}, {}
    for name, d in _cpufreq_dirs(root):
        gov = _read(d / "scaling_governor")
        if gov:
            governors[name] = gov

        def mhz(*files):
            for f in files:
                v = parse_khz(_read(d / f))
                if v is not None:
                    return v
            return None
        f = Frequency(mhz("scaling_cur_freq", "cpuinfo_cur_freq"), mhz("scaling_min_freq", "cpuinfo_min_freq"),
                      mhz("scaling_max_freq", "cpuinfo_max_freq"))
        if f != Frequency(None, None, None):
            freqs[name] = f
    return governors or None, freqs or None


def read_boost(root: Path) -> Boost | None:
    cpu = root / CPU_DIR
    files = ["cpufreq/boost", "intel_pstate/no_turbo", "amd_pstate/status"]
    files += [f"cpufreq/{p.name}/boost" for p in _numbered(_children(cpu / "cpufreq"), "policy")]
    readings = {f: t for f in files if (t := _read(cpu / f)) is not None}
    return parse_boost(readings)


def read_throttle(root: Path) -> dict[int, ThrottleCount] | None:
    out = {}
    for c in _numbered(_children(root / CPU_DIR), "cpu"):
        d = c / "thermal_throttle"
        t = ThrottleCount(parse_int(_read(d / "core_throttle_count")), parse_int(_read(d / "package_throttle_count")))
        if t != ThrottleCount(None, None):
            out[int(c.name[3:])] = t
    return out or None


SAMPLE_VARIABLE = "HARNESS_STATE_SAMPLE_SECONDS"   # harness ab shortens its bench processes' samples


def default_sample_seconds() -> float:
    """0.5 s, or $HARNESS_STATE_SAMPLE_SECONDS (0.01 .. 5) when set: `harness ab` checks the machine
    itself before its rounds and sets 0.1 for the many short bench processes it runs."""
    try:
        v = float(os.environ.get(SAMPLE_VARIABLE, "0.5"))
    except ValueError:
        return 0.5
    return min(5.0, max(0.01, v)) if math.isfinite(v) else 0.5


def system_state(sample_seconds: float | None = None, *, cpus: Sequence[int] | None = None, root: str | Path = "/",
                 pid: int | None = None, ticks_per_second: float | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.perf_counter) -> SystemState:
    """The state of the machine (see the module docstring), its CPU times sampled over `sample_seconds`.

    cpus: the CPUs the run will use (default: those this process may run on; pass the --pin set);
    root: where /proc and /sys are found (a fake tree in tests), with pid standing for this process
    there and sleep / clock for the wait between the two samples."""
    root = Path(root)
    sample_seconds = default_sample_seconds() if sample_seconds is None else sample_seconds
    cpus = tuple(sorted(cpus)) if cpus else tuple(affinity_cpus())
    pid = os.getpid() if pid is None else pid
    tps = ticks_per_second or os.sysconf("SC_CLK_TCK")

    def cpu_ticks():
        text = _read(root / "proc" / "stat")
        return parse_cpu_ticks(text, cpus) if text else None

    stats_a, busy_a, t_a = read_pid_stats(root), cpu_ticks(), clock()
    sleep(sample_seconds)
    stats_b, busy_b, t_b = read_pid_stats(root), cpu_ticks(), clock()
    wall = t_b - t_a

    busy = others = None
    if stats_a is not None and stats_b is not None:
        ours = {pid} | descendants(stats_b, pid) | descendants(stats_a, pid)
        busy = busy_between(stats_a, stats_b, wall, tps, ours)
        own = sum(stats_b[p].ticks - stats_a[p].ticks for p in ours if p in stats_a and p in stats_b)
    else:
        own = 0
    if busy_a is not None and busy_b is not None and wall > 0:
        others = max(0.0, (busy_b - busy_a - own) / tps / wall)

    loadavg = _read(root / "proc" / "loadavg")
    governors, freqs = read_cpufreq(root)
    return SystemState(now_iso(), round(wall, 3), cpus, parse_loadavg(loadavg) if loadavg else None, others, busy,
                       governors, read_boost(root), freqs, read_throttle(root))


# ----------------------------------------------------------------------------
# quiet enough?

OTHERS_SHARE = 0.5    # others may take this fraction of the threshold of the engine's CPU time ...
OTHERS_FLOOR = 0.05   # ... but never less than this many CPUs: a 0.5 s sample of 10 ms ticks tells no finer


class Reason(str):
    """One reason the machine is not quiet: the sentence itself, with its kind (others, load,
    governor, throttle) and whether it refuses a --strict measurement (refuses) or is a warning only."""
    kind: str
    refuses: bool

    def __new__(cls, text: str, kind: str, refuses: bool) -> Reason:
        r = super().__new__(cls, text)
        r.kind, r.refuses = kind, refuses
        return r

    def as_dict(self) -> dict:
        return {"kind": self.kind, "refuses": self.refuses, "text": str(self)}


def allowed_others(threshold: float, threads: int, cpus: int) -> float:
    """CPUs' worth other processes may take beyond the CPUs the engine leaves free, for a change of
    `threshold` to stay resolvable: OTHERS_SHARE x threshold of the engine's CPUs, at least OTHERS_FLOOR."""
    return max(OTHERS_FLOOR, OTHERS_SHARE * threshold * min(threads, cpus))


def _pct(threshold: float) -> str:
    return f"{100 * threshold:.3g}%"


def quiet_check(state: SystemState, threshold: float, threads: int) -> list[Reason]:
    """The reasons `state` is not quiet enough to resolve a change of `threshold` (0.02 = 2%) with
    `threads` engine threads; each a Reason (a str) that says whether it refuses --strict. The rules:

    - others (refuses): other processes take more than the CPUs the threads leave free
      (cpus - threads) by over allowed_others(): OTHERS_SHARE x threshold x the threads' CPUs, at
      least OTHERS_FLOOR. A process that takes a share s of the engine's CPU time slows it by up to
      s, and by a varying amount, so it hides a change smaller than about 2s: a 10% threshold with
      4 threads tolerates 0.2 CPU, a 1% one 0.05 (the floor). Memory-bound work on the free CPUs
      can slow the engine too; that is not seen here.
    - load (refuses only when the others' CPU time is not readable, else a warning): the 1-minute
      load average above the free CPUs + machine.LOAD_MARGIN; it lags by a minute and counts this
      process's own recent work, so the direct measurement decides when there is one.
    - governor (a warning only): a cpufreq governor other than performance: the clock follows the
      load, so it may differ between runs and between the first and the last of a run.
    Not checked here: boost (recorded: it makes the clock depend on temperature and the other
    cores' load, a fact to compare runs by rather than a refusal), and the throttle counters, which
    count since boot: compare the start and the end of a run with throttled_between()."""
    cpus = state.cpus_available
    free = max(0, cpus - threads)
    reasons: list[Reason] = []
    others = state.others()
    if others is not None:
        allowed = allowed_others(threshold, threads, cpus)
        taken = others - free
        if taken > allowed:
            names = ", ".join(f"{p.name} (pid {p.pid}) {p.cpu_percent:.0f}%" for p in (state.busy_processes or ())[:3])
            reasons.append(Reason(
                f"other processes take {others:.2f} of the {cpus} CPU(s) this run may use"
                + (f" ({names})" if names else "") + f"; {threads} thread(s) leave {free} free, so {taken:.2f} CPU "
                f"would be taken from the engine, more than the {allowed:.2f} a {_pct(threshold)} change tolerates",
                "others", True))
    if state.load_avg is not None and state.load_avg[0] > free + LOAD_MARGIN:
        warn_only = others is not None
        reasons.append(Reason(
            f"load average {state.load_avg[0]:.2f} on {cpus} CPU(s), above the {free} that {threads} thread(s) "
            f"leave free + {LOAD_MARGIN:g}" + (" (a warning only: it lags and counts this process too)"
                                                if warn_only else ""),
            "load", not warn_only))
    if state.governors:
        slow = {}
        for policy, gov in state.governors.items():
            if gov != "performance":
                slow.setdefault(gov, []).append(policy)
        for gov, policies in sorted(slow.items()):
            reasons.append(Reason(
                f"CPU frequency governor {gov} on {', '.join(policies)}, not performance: the clock follows the "
                f"load and may differ between runs (a warning only)", "governor", False))
    return reasons


def throttled_between(before: SystemState, after: SystemState) -> list[Reason]:
    """The thermal throttling that happened between two states (the start and the end of a run): a
    Reason (refuses: a strict caller should not trust the run) per counter that grew; [] when it
    did not, or when the counters are not readable. The package counter is reported on every CPU of
    the package, so its largest growth is given, not the sum."""
    if before.throttle is None or after.throttle is None:
        return []
    reasons: list[Reason] = []
    for which in ("core", "package"):
        grew = {}
        for cpu, t in after.throttle.items():
            a, b = getattr(before.throttle.get(cpu, ThrottleCount(None, None)), which), getattr(t, which)
            if a is not None and b is not None and b > a:
                grew[cpu] = b - a
        if grew:
            n = sum(grew.values()) if which == "core" else max(grew.values())
            reasons.append(Reason(
                f"thermal throttling during the run: {which} throttle count +{n} on CPU(s) "
                f"{','.join(map(str, sorted(grew)))}", "throttle", True))
    return reasons


def judge_machine(threshold: float, threads: int, strict: bool, *, cpus: Sequence[int] | None = None,
                  sample_seconds: float | None = None) -> tuple[SystemState, list[Reason]]:
    """Read the state and quiet_check it; under `strict` a refusing reason raises
    MachineNotQuietError, one line naming the refusing reasons. (A sweep judges before it makes or
    locks anything, and warns once its results directory is open.)"""
    state = system_state(sample_seconds, cpus=cpus)
    reasons = quiet_check(state, threshold, threads)
    refusing = [r for r in reasons if r.refuses]
    if strict and refusing:
        raise MachineNotQuietError(f"machine not quiet enough to resolve a {_pct(threshold)} change with {threads} "
                                   f"thread(s) (--strict): " + "; ".join(refusing))
    return state, reasons


def warn_reasons(reasons: list[Reason], warn: Callable[[str], None]) -> None:
    """Each reason to `warn`; those that --strict refuses say so."""
    for r in reasons:
        warn(Reason(str(r) + (" (--strict refuses to measure)" if r.refuses else ""), r.kind, r.refuses))


def check_before_measuring(threshold: float, threads: int, strict: bool, warn: Callable[[str], None], *,
                           cpus: Sequence[int] | None = None, sample_seconds: float | None = None) -> SystemState:
    """The gate before a measurement: judge_machine (under `strict`, MachineNotQuietError, nothing
    else printed), then each reason to `warn` (warn_reasons). Returns the state, the run's state at
    its start. cpus: those the run will use (its --pin set; default: this process's affinity)."""
    state, reasons = judge_machine(threshold, threads, strict, cpus=cpus, sample_seconds=sample_seconds)
    warn_reasons(reasons, warn)
    return state


def run_states(start: SystemState, end: SystemState | None, threshold: float, threads: int) -> dict:
    """What a run's provenance records of the machine: the state at its start and at its end, the
    start's quiet_check and the throttling between the two. The read bandwidth probed at the same
    two moments is recorded beside it (machine_read_bandwidth)."""
    return {
        "start": start.as_dict(), "end": end.as_dict() if end else None,
        "quiet_check": {"threshold": threshold, "threads": threads,
                        "reasons": [r.as_dict() for r in quiet_check(start, threshold, threads)]},
        "throttled": [r.as_dict() for r in throttled_between(start, end)] if end else None,
        "read_bandwidth": "machine_read_bandwidth (probed at the start and the end of the run)",
    }


def run_states_brief(start: SystemState, end: SystemState) -> str:
    """The two states of a run in one line (a compact field of `harness bench -o json` records)."""
    throttled = throttled_between(start, end)
    return f"start: {start.summary()}; end: {end.summary()}" + (
        "; " + "; ".join(throttled) if throttled else "")

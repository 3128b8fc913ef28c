"""The machine's state in every run's provenance and checked before measuring (issue 14, item 3):
system_state() read from fake /proc and /sys trees (load, busy processes other than ours, governor,
boost, clock, throttle counters; "not readable" where a file is missing, never an exception),
quiet_check's rules on real values, throttled_between, check_before_measuring, `--strict` refusing
`harness bench` and `harness sweep` with exit 1 against a busy loop of ours, and the states at the
start and the end of a sweep in its provenance.json (and of a bench in its JSON records)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import harness.measure.system_state as ss
from harness.cli.main import main
from harness.errors import MachineNotQuietError
from harness.measure.system_state import (NOT_READABLE, Boost, BusyProcess, Frequency, SystemState, ThrottleCount,
                                          check_before_measuring, parse_boost, parse_cpu_ticks, parse_loadavg,
                                          parse_pid_stat, quiet_check, system_state, throttled_between)

# ---- fake /proc and /sys trees ----------------------------------------------------------------------

SELF, CHILD, GRANDCHILD, BUSY, IDLE, LATE = 100, 101, 102, 200, 201, 300


def pid_stat(pid: int, name: str, ppid: int, utime: int, stime: int) -> str:
    rest = ["S", str(ppid)] + ["0"] * 9 + [str(utime), str(stime)] + ["0"] * 39
    return f"{pid} ({name}) " + " ".join(rest) + "\n"


def proc_stat(cpu0: int, cpu1: int) -> str:
    """/proc/stat with `cpuN` busy ticks as user time (idle ticks beside them count for nothing)."""
    return (f"cpu  {cpu0 + cpu1} 0 0 5000 0 0 0 0 0 0\n"
            f"cpu0 {cpu0} 0 0 2500 0 0 0 0 0 0\ncpu1 {cpu1} 0 0 2500 0 0 0 0 0 0\nintr 1 2 3\n")


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def sample(root: Path, second: bool) -> None:
    """The CPU times of the fake tree at the first sample, or 0.5 s later at the second: our child
    and grandchild burn 90% of a CPU each (ours: not listed), a process named with a space and a
    parenthesis 80% (listed), an idle one 2% (below the listing threshold), one starts in between."""
    d = 1 if second else 0
    for pid, name, ppid, ticks in ((SELF, "python", 1, 10), (CHILD, "worker", SELF, 45), (GRANDCHILD, "cc1", CHILD, 45),
                                   (BUSY, "my job (x)", 1, 40), (IDLE, "sshd", 1, 1)):
        write(root, f"proc/{pid}/stat", pid_stat(pid, name, ppid, 1000 + d * ticks, 50))
    if second:
        write(root, f"proc/{LATE}/stat", pid_stat(LATE, "late", 1, 10_000, 0))
    # both CPUs: our 100 ticks + the others' 41 over 0.5 s
    write(root, "proc/stat", proc_stat(7000 + d * 100, 8000 + d * 41))


@pytest.fixture
def fake_root(tmp_path):
    root = tmp_path / "root"
    sample(root, second=False)
    write(root, "proc/loadavg", "1.50 0.75 0.25 2/180 4242\n")
    cpu = "sys/devices/system/cpu"
    for n, (gov, cur) in enumerate((("performance", 3_400_000), ("powersave", 1_500_000))):
        write(root, f"{cpu}/cpufreq/policy{n}/scaling_governor", gov + "\n")
        write(root, f"{cpu}/cpufreq/policy{n}/scaling_cur_freq", f"{cur}\n")
        write(root, f"{cpu}/cpufreq/policy{n}/scaling_min_freq", "400000\n")
        write(root, f"{cpu}/cpufreq/policy{n}/cpuinfo_max_freq", "4500000\n")
        write(root, f"{cpu}/cpu{n}/thermal_throttle/core_throttle_count", f"{3 + n}\n")
        write(root, f"{cpu}/cpu{n}/thermal_throttle/package_throttle_count", "7\n")
    write(root, f"{cpu}/cpufreq/boost", "1\n")
    return root


def read_fake(root: Path, **kw) -> SystemState:
    """system_state of a fake tree: the second sample is written during the 'sleep', the clock
    steps by exactly the sample time, 100 ticks a second."""
    clock = iter([10.0, 10.5])
    return system_state(0.5, cpus=[0, 1], root=root, pid=SELF, ticks_per_second=100,
                        sleep=lambda s: sample(root, second=True), clock=lambda: next(clock), **kw)


def test_a_fake_tree_reads_as_its_files_say(fake_root):
    s = read_fake(fake_root)
    assert s.cpus == (0, 1) and s.cpus_available == 2 and s.sample_seconds == 0.5
    assert s.load_avg == (1.5, 0.75, 0.25)
    # ours (self, child, grandchild) are not listed, nor the idle one, nor the one that started in between
    assert s.busy_processes == (BusyProcess(BUSY, "my job (x)", 80.0),)
    # /proc/stat: 141 busy ticks on the two CPUs, 100 of them ours (10 + 45 + 45): the others' 41
    # ticks over 0.5 s at 100 ticks/s are 0.82 CPU
    assert s.others_cpus == pytest.approx(0.82) and s.others() == pytest.approx(0.82)
    assert s.governors == {"policy0": "performance", "policy1": "powersave"}
    assert s.frequency == {"policy0": Frequency(3400.0, 400.0, 4500.0), "policy1": Frequency(1500.0, 400.0, 4500.0)}
    assert s.boost == Boost(True, {"cpufreq/boost": "1"})
    assert s.throttle == {0: ThrottleCount(3, 7), 1: ThrottleCount(4, 7)}
    d = s.as_dict()
    json.dumps(d)
    assert d["busy_processes"] == [{"pid": BUSY, "name": "my job (x)", "cpu_percent": 80.0}]
    assert d["throttle_counts"]["1"] == {"core": 4, "package": 7} and d["governors"]["policy1"] == "powersave"
    line = s.summary()
    assert "load 1.50 0.75 0.25" in line and "governor performance/powersave" in line and "boost on" in line
    assert "clock 1500-3400 MHz" in line and "throttle core 7 package 14" in line


def test_without_proc_stat_the_busy_processes_stand_for_the_others(fake_root):
    (fake_root / "proc" / "stat").unlink()
    s = read_fake(fake_root)
    assert s.others_cpus is None and s.others() == pytest.approx(0.80)
    assert s.as_dict()["others_cpus"] == NOT_READABLE


def test_an_empty_tree_is_not_readable_everywhere_and_raises_nothing(tmp_path):
    s = system_state(0.0, cpus=[0], root=tmp_path, sleep=lambda s: None)
    assert (s.load_avg, s.others_cpus, s.busy_processes, s.governors, s.boost, s.frequency, s.throttle) == \
        (None,) * 7
    d = s.as_dict()
    for k in ("load_avg", "others_cpus", "busy_processes", "governors", "boost", "frequency_mhz", "throttle_counts"):
        assert d[k] == NOT_READABLE, k
    assert s.summary().count(NOT_READABLE) == 6
    assert quiet_check(s, 0.02, 1) == [] and throttled_between(s, s) == []


def test_kernels_without_policy_directories_give_each_cpus_cpufreq(tmp_path):
    write(tmp_path, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "ondemand\n")
    write(tmp_path, "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_cur_freq", "2000000\n")
    write(tmp_path, "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor", "ondemand\n")
    write(tmp_path, "sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq", "garbage\n")
    s = system_state(0.0, cpus=[0, 1], root=tmp_path, sleep=lambda s: None)
    assert s.governors == {"cpu0": "ondemand", "cpu1": "ondemand"}
    assert s.frequency == {"cpu0": Frequency(2000.0, None, None)}      # a file that does not parse: not readable


def test_unreadable_files_are_not_readable(fake_root):
    gov = fake_root / "sys/devices/system/cpu/cpufreq/policy1/scaling_governor"
    gov.unlink()
    gov.mkdir()                 # reading a directory fails: that policy's governor is left out
    s = read_fake(fake_root)
    assert s.governors == {"policy0": "performance"}


@pytest.mark.parametrize("readings,enabled", [
    ({"cpufreq/boost": "0"}, False),
    ({"intel_pstate/no_turbo": "1"}, False),
    ({"intel_pstate/no_turbo": "0"}, True),
    ({"amd_pstate/status": "active", "cpufreq/policy0/boost": "1", "cpufreq/policy1/boost": "1"}, True),
    ({"amd_pstate/status": "active", "cpufreq/policy0/boost": "1", "cpufreq/policy1/boost": "0"}, None),
    ({"amd_pstate/status": "passive"}, None),
])
def test_boost_from_whichever_file_says(readings, enabled):
    b = parse_boost(readings)
    assert b.enabled is enabled and b.readings == readings
    assert parse_boost({}) is None


def test_boost_of_intel_pstate_and_amd_pstate_trees(tmp_path):
    write(tmp_path, "sys/devices/system/cpu/intel_pstate/no_turbo", "1\n")
    write(tmp_path, "sys/devices/system/cpu/amd_pstate/status", "guided\n")
    s = system_state(0.0, cpus=[0], root=tmp_path, sleep=lambda s: None)
    assert s.boost == Boost(False, {"intel_pstate/no_turbo": "1", "amd_pstate/status": "guided"})
    assert "boost off" in s.summary()


def test_pure_parsers():
    assert parse_loadavg("0.00 0.24 0.65 1/92 17815") == (0.0, 0.24, 0.65) and parse_loadavg("x y z") is None
    s = parse_pid_stat(pid_stat(42, "a) b (c", 7, 12, 30))
    assert (s.pid, s.name, s.ppid, s.ticks) == (42, "a) b (c", 7, 42)
    assert parse_pid_stat("garbage") is None
    assert parse_cpu_ticks(proc_stat(10, 20), [1]) == 20 and parse_cpu_ticks(proc_stat(10, 20), [0, 1]) == 30
    assert parse_cpu_ticks(proc_stat(10, 20), [2]) is None


# ---- quiet_check on real values -------------------------------------------------------------------------

def state(cpus=2, load=(0.1, 0.1, 0.1), others=0.0, busy=(), governors=None, throttle=None) -> SystemState:
    return SystemState("2026-01-01T00:00:00+00:00", 0.5, tuple(range(cpus)), load, others,
                       None if busy is None else tuple(busy), governors, None, None, throttle)


def kinds(reasons) -> list[tuple[str, bool]]:
    return [(r.kind, r.refuses) for r in reasons]


@pytest.mark.parametrize("cpus,threads,threshold,others,refused", [
    (2, 2, 0.02, 0.03, False),     # a few daemons on a 2-CPU machine: below the 0.05 CPU floor
    (2, 2, 0.05, 0.65, True),      # another process at 65% of a CPU the two threads need
    (2, 1, 0.02, 0.90, False),     # one busy process, one thread: it has the other CPU
    (2, 1, 0.02, 1.10, True),      # ... but not 1.1 CPUs
    (8, 4, 0.10, 4.15, False),     # 10% with 4 threads tolerates 0.2 CPU beyond the 4 free ...
    (8, 4, 0.01, 4.15, True),      # ... 1% only the 0.05 floor
    (8, 4, 0.10, 4.25, True),
])
def test_other_processes_refuse_beyond_a_share_scaled_with_the_threshold(cpus, threads, threshold, others, refused):
    got = quiet_check(state(cpus, others=others), threshold, threads)
    assert kinds(got) == ([("others", True)] if refused else [])
    if refused:
        assert f"other processes take {others:.2f} of the {cpus} CPU(s)" in got[0]
        assert f"a {100 * threshold:g}% change tolerates" in got[0]


def test_the_busy_processes_are_named_and_stand_in_when_proc_stat_is_not_readable():
    busy = [BusyProcess(4321, "cc1plus", 97.0), BusyProcess(99, "python3", 40.0)]
    got = quiet_check(state(others=None, busy=busy), 0.02, 2)
    assert kinds(got) == [("others", True)]
    assert "1.37 of the 2 CPU(s)" in got[0] and "cc1plus (pid 4321) 97%, python3 (pid 99) 40%" in got[0]


def test_the_load_average_refuses_only_when_the_others_cannot_be_read():
    assert kinds(quiet_check(state(load=(3.0, 2.0, 1.0), others=None, busy=None), 0.02, 2)) == [("load", True)]
    got = quiet_check(state(load=(3.0, 2.0, 1.0), others=0.0), 0.02, 2)
    assert kinds(got) == [("load", False)] and "a warning only" in got[0]
    # the free CPUs + the margin: 1.9 on 4 CPUs with 2 threads is quiet, 3.1 is not
    assert quiet_check(state(cpus=4, load=(2.9, 1, 1), others=None, busy=None), 0.02, 2) == []
    assert kinds(quiet_check(state(cpus=4, load=(3.1, 1, 1), others=None, busy=None), 0.02, 2)) == [("load", True)]


def test_a_governor_other_than_performance_is_a_warning_only():
    got = quiet_check(state(governors={"policy0": "powersave", "policy1": "performance", "policy2": "powersave"}),
                      0.02, 2)
    assert kinds(got) == [("governor", False)] and "powersave on policy0, policy2, not performance" in got[0]
    assert quiet_check(state(governors={"policy0": "performance"}), 0.02, 2) == []


def test_throttle_counters_that_grow_during_a_run():
    before = state(throttle={0: ThrottleCount(3, 7), 1: ThrottleCount(4, 7)})
    assert throttled_between(before, before) == []
    after = state(throttle={0: ThrottleCount(5, 9), 1: ThrottleCount(4, 9)})
    got = throttled_between(before, after)
    assert kinds(got) == [("throttle", True), ("throttle", True)]
    assert "core throttle count +2 on CPU(s) 0" in got[0] and "package throttle count +2 on CPU(s) 0,1" in got[1]
    assert throttled_between(before, state(throttle=None)) == []


def test_check_before_measuring_warns_or_refuses(monkeypatch):
    busy = state(others=0.9, busy=[BusyProcess(77, "stress", 90.0)], governors={"policy0": "schedutil"})
    monkeypatch.setattr(ss, "system_state", lambda sample_seconds=0.5, cpus=None: busy)
    warned = []
    assert check_before_measuring(0.02, 2, False, warned.append) is busy
    assert len(warned) == 2 and warned[0].endswith("(--strict refuses to measure)") and "stress (pid 77)" in warned[0]
    assert "schedutil" in warned[1] and "--strict" not in warned[1]
    warned.clear()
    with pytest.raises(MachineNotQuietError, match=r"not quiet enough to resolve a 2% change with 2 thread\(s\)"):
        check_before_measuring(0.02, 2, True, warned.append)
    assert warned == []
    # a warning only does not refuse
    quiet = state(governors={"policy0": "schedutil"})
    monkeypatch.setattr(ss, "system_state", lambda sample_seconds=0.5, cpus=None: quiet)
    assert check_before_measuring(0.02, 2, True, warned.append) is quiet and len(warned) == 1


# ---- this machine ----------------------------------------------------------------------------------------

SPIN = "import os, time\nos.sched_setaffinity(0, {{{cpu}}})\nend = time.time() + 60\nwhile time.time() < end:\n    pass\n"


@pytest.fixture
def spinner():
    """A busy loop of ours on the first CPU this process may use (it ends by itself after 60 s)."""
    cpu = min(os.sched_getaffinity(0))
    p = subprocess.Popen([sys.executable, "-c", SPIN.format(cpu=cpu)])
    try:
        yield cpu, p
    finally:
        p.kill()
        p.wait()


def test_this_machine_reads_without_error_and_leaves_out_our_children(spinner):
    cpu, child = spinner
    s = system_state(0.3)
    assert s.cpus == tuple(sorted(os.sched_getaffinity(0)))
    d = s.as_dict()
    json.dumps(d)
    assert all(d[k] is not None for k in d)
    if s.busy_processes is not None:            # our own busy child is not another process
        assert child.pid not in {p.pid for p in s.busy_processes}


@pytest.mark.parametrize("command", ["bench", "sweep"])
def test_strict_refuses_to_measure_next_to_a_busy_process(synth_dir, tmp_path, spinner, command):
    cpu, child = spinner
    out = tmp_path / "r"
    args = {"bench": ["bench", "--preset", "tiny", "--quant", "q8_0", "-p", "8", "-n", "0", "-r", "1"],
            "sweep": ["sweep", "--preset", "tiny", "--quant", "q8_0", "--pp", "8", "--tg", "0", "-r", "1",
                      "-o", str(out)]}[command]
    # pinned to the spinner's CPU, one thread: nothing is free for the spinner to take
    r = subprocess.run([sys.executable, "-m", "harness.cli", *args, "-t", "1", "--pin", str(cpu), "--strict"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: machine not quiet enough"), r.stderr
    assert "other processes take" in lines[0] and r.stdout == ""
    assert not out.exists()                     # a refused sweep makes no results directory


def test_without_strict_each_reason_is_a_warning_given_after_the_engine_took_the_configuration(synth_dir, spinner):
    cpu, child = spinner
    base = [sys.executable, "-m", "harness.cli", "bench", "--preset", "tiny", "--quant", "q8_0", "-n", "0", "-r", "1",
            "-t", "1", "--pin", str(cpu)]
    r = subprocess.run([*base, "-p", "8"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "| pp8 |" in r.stdout, r.stderr
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("harness: warning: other processes take")]
    assert len(warned) == 1 and warned[0].endswith("(--strict refuses to measure)"), r.stderr
    # what the engine refuses is still one line, busy machine or not
    r = subprocess.run([*base, "-p", "3000000000"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "harness: error: ctx must be at most 2147483647, got 3000000000"], r.stderr


def test_a_sweep_records_the_state_at_its_start_and_end(synth_dir, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["sweep", "--preset", "tiny", "--quant", "q8_0", "--pp", "8", "--tg", "0", "-r", "1", "-t", "1",
                 "--no-profile", "-o", str(out)]) == 0
    prov = json.loads((out / "provenance.json").read_text())
    st = prov["system_state"]
    assert prov["runs"][-1]["system_state"] == st
    for when in ("start", "end"):
        for k in ("time", "cpus_available", "load_avg", "others_cpus", "busy_processes", "governors", "boost",
                  "frequency_mhz", "throttle_counts"):
            assert k in st[when], (when, k)
    assert st["start"]["time"] <= st["end"]["time"]
    assert st["quiet_check"]["threshold"] == 0.05 and st["quiet_check"]["threads"] == 1
    assert isinstance(st["quiet_check"]["reasons"], list) and isinstance(st["throttled"], list)
    assert st["read_bandwidth"].startswith("machine_read_bandwidth")
    bw = prov["machine_read_bandwidth"]["1"]            # the probes at the start and the end are kept
    assert "start_gbps" in bw and "end_gbps" in bw


def test_bench_json_records_carry_the_two_states_in_one_field(synth_dir, tmp_path, capsys):
    assert main(["bench", "--preset", "tiny", "--quant", "q8_0", "-p", "8", "-n", "0", "-r", "1", "-t", "1",
                 "-o", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs[0]["system_state"].startswith("start: ") and "; end: " in recs[0]["system_state"]
    # the results store still reads the records (the field is not a column)
    from harness.store.results import load_results
    f = tmp_path / "b.json"
    f.write_text(json.dumps(recs))
    frame = load_results(f).frame
    assert len(frame) == 1 and "system_state" not in frame.columns

"""A busy machine is flagged (issue 15, item 4): two threads collapsing under two compiles (44 t/s
at 2% spread while one thread gave ~1000) went unnoticed. classify_busy decides from the CPU time
other processes took during the timed runs, the load average, and a 1-thread tg probe; the flag
and its reason reach BenchResult, the store row (old results without the columns still load), the
markdown of `harness bench` (compare: tests/analysis/test_compare_busy.py).

The flagged case runs a real bench against busy-loop processes of our own; the not-flagged cases
are table tests on synthetic inputs (the machine is shared: an idle-machine bench could be flagged
by someone else's work)."""
import math
import os
import subprocess
import sys
import time

import pytest

import harness.measure.machine as hm
from harness.measure.bench import BenchConfig, BenchResult, run_bench
from harness.measure.machine import CpuSample, classify_busy, others_cpu
from harness.model.loader import load_model
from harness.store.schema import EXTRA_COLUMNS, RESULT_COLUMNS, STRING_COLUMNS


# ---- the classification, on synthetic inputs ------------------------------------------------------

@pytest.mark.parametrize("load,threads,cpus,speed_n,speed_1,others,busy,words", [
    # quiet machine: nothing to flag
    (0.1, 2, 2, 1800.0, 1000.0, 0.02, False, ""),
    (0.1, 1, 2, 1000.0, None, 0.0, False, ""),
    (0.3, 8, 16, 300.0, 90.0, 0.4, False, ""),           # others use CPUs our threads leave free
    (1.0, 1, 2, 1000.0, None, 0.9, False, ""),           # one compile, one thread: a CPU is still free
    # the issue: two compiles, two threads, 44 t/s against ~1000 on one
    (2.1, 2, 2, 44.0, 1000.0, 1.9, True, "2 threads ran at 44 t/s but one thread at 1000 t/s (22.7x faster)"),
    (2.1, 2, 2, 900.0, 1000.0, 1.2, True, "other processes took 1.2 of the 2 CPU(s)"),
    (0.2, 2, 2, 44.0, 1000.0, None, True, "the threads wait for each other"),  # no /proc/stat: speed alone
    # without a measurement of the others, the load average decides
    (2.5, 2, 2, 900.0, None, None, True, "load average 2.5 on 2 CPU(s) before the run, 2 thread(s) asked for"),
    (3.0, 2, 2, 1000.0, 900.0, None, True, "load average 3.0"),
    (0.4, 2, 2, 900.0, None, None, False, ""),
    # more threads than CPUs on an idle machine: slow, but our own doing, not a busy machine
    (0.1, 64, 2, 20.0, 1000.0, 0.05, False, ""),
    (0.1, 64, 2, 20.0, 1000.0, 1.0, True, "other processes took 1.0"),
])
def test_classify_busy(load, threads, cpus, speed_n, speed_1, others, busy, words):
    got, note = classify_busy(load, threads, cpus, speed_n, speed_1, others)
    assert got is busy
    if busy:
        assert note.startswith("machine busy: ") and words in note
    else:
        assert note == ""


def test_other_processes_cpu_time_between_two_samples():
    a = CpuSample(wall=10.0, busy=100.0, own=5.0, cpus=[0, 1])
    b = CpuSample(wall=11.0, busy=101.8, own=5.9, cpus=[0, 1])      # 1.8 CPU-s busy, 0.9 of them ours
    assert others_cpu(a, b) == pytest.approx(0.9)
    assert others_cpu(a, CpuSample(10.1, 100.1, 5.1, [0, 1])) is None          # too short to tell
    assert others_cpu(CpuSample(10.0, None, 5.0, [0]), CpuSample(11.0, None, 6.0, [0])) is None
    assert others_cpu(a, CpuSample(11.0, 100.5, 5.9, [0, 1])) == 0.0            # tick rounding: never < 0


def test_a_cpu_sample_of_this_machine_counts_our_own_time():
    a = hm.cpu_sample()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.3:
        pass
    b = hm.cpu_sample()
    assert b.own - a.own >= 0.2
    if a.busy is not None:                      # Linux: /proc/stat saw at least what we burnt
        assert b.busy - a.busy >= 0.15


# ---- the flag in results, the store, the markdown and compare -----------------------------------------

def test_the_flag_is_a_result_column_and_old_results_without_it_still_load(tmp_path):
    from harness.store.results import read_results_csv
    assert {"machine_busy", "busy_note"} <= set(EXTRA_COLUMNS) and "busy_note" in STRING_COLUMNS
    from support import results_factory as rf
    old = rf.frame([rf.row()])
    assert "machine_busy" not in old.columns
    path = tmp_path / "results.csv"
    old.to_csv(path, index=False)
    df = read_results_csv(path)
    assert list(df.columns[:len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert math.isnan(df["machine_busy"][0]) and df["busy_note"][0] == ""


def test_the_flag_reaches_the_store_row_and_the_json_record():
    from harness.measure.rows import result_row
    from harness.model.fingerprint import ModelIdentity
    ident = ModelIdentity("tiny-q8_0", "/m.gguf", "f" * 64, "tiny", "q8_0", 10, 2_000_000, {})
    r = BenchResult("tg8", 0, 8, [10_000_000] * 3, 2_000_000, extra={"isa": "avx2", "read_gbps": 20.0},
                    machine_busy=True, busy_note="machine busy: other processes took 1.9 of the 2 CPU(s)")
    row = result_row(ident, BenchConfig(threads=2), r, commit=("abc", False))
    assert set(row) == set(RESULT_COLUMNS)
    assert row["machine_busy"] is True and row["busy_note"].startswith("machine busy: other processes")
    quiet = result_row(ident, BenchConfig(threads=2), BenchResult("tg8", 0, 8, [10_000_000] * 3, 2_000_000),
                       commit=("abc", False))
    assert quiet["machine_busy"] is False and quiet["busy_note"] == ""


class _Model:
    name = "m"

    @staticmethod
    def weight_bytes():
        return 2**20


def test_bench_markdown_prints_a_machine_busy_note():
    from harness.report.bench_tables import format_markdown
    r = BenchResult("tg16", 0, 16, [360_000_000] * 5, 2_000_000, extra={"isa": "avx2", "read_gbps": 20.0},
                    machine_busy=True, busy_note="machine busy: 2 threads ran at 44 t/s but one thread at 1000 t/s")
    out = format_markdown(_Model(), BenchConfig(threads=2), [r])
    assert "note: tg16: machine busy: 2 threads ran at 44 t/s" in out
    r.machine_busy, r.busy_note = False, ""
    assert "machine busy" not in format_markdown(_Model(), BenchConfig(threads=2), [r])


# ---- a real bench against busy loops of our own ----------------------------------------------------------

SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    pass\n"


@pytest.fixture
def spinners():
    """One busy-loop process per CPU available, each ending by itself after at most 20 s."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    procs = [subprocess.Popen([sys.executable, "-c", SPIN.format(s=20)]) for _ in range(n)]
    time.sleep(0.3)                             # let them start spinning
    try:
        yield n
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def test_a_bench_beside_busy_loops_on_every_cpu_is_flagged(tiny_model_path, spinners):
    cfg = BenchConfig(n_prompt=0, n_gen=32, repetitions=3, threads=max(2, spinners))
    with load_model(tiny_model_path) as m:
        results = run_bench(m, cfg)
    assert results
    for r in results:
        assert r.machine_busy, r.extra
        assert r.busy_note.startswith("machine busy: ")
        if r.extra["others_cpu"] is not None:
            assert r.extra["others_cpu"] > 0.5

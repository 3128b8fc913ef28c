"""Deterministic kernel counters (harness.measure.counters, `harness kernel-bench --counters`, the
asv track): under cachegrind the instructions per call of a kernel are the same in two separate
measurements, a planted 1% more work (a row of 3232 values instead of 3200) shows as 1% more
instructions, and the command line gives the figures or refuses bad flags in one line (exit 2).
The valgrind measurements are kept to three (about 30 s on two busy CPUs); the readers of
cachegrind and perf output are checked on made-up files with no valgrind at all."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from harness import native
from harness.cli.main import main
from harness.errors import UsageError
from harness.measure import counters
from harness.measure.cachegrind_out import CachegrindFileError, read_cachegrind
from harness.measure.counters import KernelSpec, count_kernels
from harness.measure.perf_counters import parse_perf_count, perf_unavailable_reason
from support.paths import ROOT


def _need_valgrind() -> None:
    if shutil.which("valgrind") is None:
        if os.environ.get("CI"):
            pytest.fail("valgrind is missing (.ci/run installs it)")
        pytest.skip("valgrind is not installed")
    if "avx2" not in native.cpu_features()["supported"]:
        pytest.skip("this CPU cannot run the avx2 variant")


BASE, PLUS_1PCT = KernelSpec("avx2", "q8_0", 3200), KernelSpec("avx2", "q8_0", 3232)   # 100 and 101 blocks


@pytest.fixture(scope="module")
def two_measurements():
    """(base and base + 1% in one measurement, base again in a second one), instructions only."""
    _need_valgrind()
    first = count_kernels([BASE, PLUS_1PCT], cache_sim=False)
    second = count_kernels([BASE], cache_sim=False)
    return first, second


def test_instructions_per_call_are_the_same_in_two_measurements(two_measurements):
    first, second = two_measurements
    a, b = first.results[0], second.results[0]
    assert a.instructions > 1000
    assert a.instructions == b.instructions                # the engine's functions: exact, to the instruction
    assert a.instructions == int(a.instructions)
    assert abs(a.with_call.instructions / b.with_call.instructions - 1) < 0.005
    assert a.with_call.instructions > a.instructions        # the Python loop and the cffi call on top
    assert first.runs == 3 and second.runs == 2 and first.base_instructions > 1e8


def test_a_planted_one_percent_more_work_is_visible(two_measurements):
    first, second = two_measurements
    base, more = first.results[0].instructions, first.results[1].instructions
    assert more - base == pytest.approx(base / 100, rel=0.15)
    assert 1.008 < more / base < 1.0101
    # the step is far beyond the spread between measurements, which is nothing
    assert more - base > 100 * abs(second.results[0].instructions - base) + 10


def test_the_cli_counts_instructions_beside_the_timings(capsys):
    _need_valgrind()
    assert main(["kernel-bench", "--type", "q8_0", "--isa", "avx2", "-n", "4096", "--counters", "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["kernel"]: r for r in doc["rows"]}
    assert set(rows) == {"vec_dot", "vec_dot4"}
    for r in rows.values():
        assert r["instructions"] > 0 and r["ns_per_call"] > 0 and r["counter_backend"] == "cachegrind"
        assert r["instructions_with_call"] > r["instructions"]
        assert r["d1_misses"] is not None and r["i1_misses"] is not None and r["ll_misses"] is not None
    assert rows["vec_dot4"]["instructions"] > rows["vec_dot"]["instructions"]
    assert doc["counters"]["runs"] == 3 and doc["counters"]["seconds"] > 0


@pytest.mark.parametrize("args, says", [
    (["--type", "q9"], "is not a weight type"),
    (["--type", "q4_k", "-n", "100"], "multiple of 256"),
    (["-n", "0"], "must be an integer >= 1"),
    (["--rows", "2"], "rows are 1"),
    (["--isa", "sparc"], "is not an ISA variant"),
    (["--backend", "papi"], "invalid choice"),
    (["-o", "xml"], "invalid choice"),
])
def test_bad_flags_exit_2_with_one_line(args, says):
    r = subprocess.run([sys.executable, "-m", "harness.cli", "kernel-bench", *args], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    assert r.stdout == ""


def test_avx512_is_refused_under_valgrind_in_one_line(capsys):
    if "avx512" not in native.cpu_features()["supported"]:
        pytest.skip("this CPU cannot run the avx512 variant (resolve_isa refuses it first)")
    _need_valgrind()
    with pytest.raises(UsageError, match="valgrind cannot run AVX-512"):
        count_kernels([KernelSpec("avx512", "q8_0")])
    assert main(["kernel-bench", "--type", "q8_0", "--counters"]) == 2       # auto is avx512 here
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "valgrind cannot run AVX-512" in err and "`auto`" in err


def test_the_cli_lists_every_dot_type():
    from harness.cli.kernel_bench import DOT_TYPES
    from harness.measure.kernel_bench import DOT_TYPES as MEASURED
    assert DOT_TYPES == MEASURED


def test_help_says_what_the_counts_miss(capsys):
    with pytest.raises(SystemExit):
        main(["kernel-bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "memory-bound decode" in text and "DRAM bandwidth" in text and "AVX-512" in text
    assert all(w in counters.__doc__ for w in ("Memory-bound decode", "simulated", "AVX-512"))


# ----------------------------------------------------------------------------
# the readers, on made-up output

CACHEGRIND_OUT = """\
desc: I1 cache:         32768 B, 64 B, 8-way associative
cmd: python -m harness.measure.counter_child plan.json
events: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw
fl=/src/native/src/arch/x86/q8_0_avx2.c
fn=q35_vec_dot_q8_0_avx2
10 100 1 0 40 2
11 50
fl=/usr/include/x86_64-linux-gnu/bits/string_fortified.h
fn=q35_vec_dot_q8_0_avx2
3 7
fl=/tmp/build/harness._native.c
fn=_cffi_f_q35_vec_dot
5 30 0 0 10 0 0 5 0 0
fl=???
fn=helper_without_debug_info
1 4
summary: 191 1 0 50 2 0 5 0 0
"""


def test_cachegrind_reader_sums_costs_per_function_and_finds_the_engine(tmp_path):
    f = tmp_path / "cg.out"
    f.write_text(CACHEGRIND_OUT)
    p = read_cachegrind(f)
    assert p.events[0] == "Ir" and p.total("Ir") == 191 and p.total("D1mr") == 2
    assert p.by_function[("/src/native/src/arch/x86/q8_0_avx2.c", "q35_vec_dot_q8_0_avx2")][:5] == [150, 1, 0, 40, 2]
    engine = counters.engine_counts(p)     # the inlined header code counts with its function; cffi's wrapper not
    assert engine["Ir"] == 157 and engine["D1mr"] == 2 and engine["Dw"] == 0
    f.write_text(CACHEGRIND_OUT.rsplit("summary", 1)[0])
    with pytest.raises(CachegrindFileError, match="summary"):
        read_cachegrind(f)


def test_perf_reader_and_the_reason_perf_cannot_count():
    assert parse_perf_count("123456,,instructions:u,1002,100.00,,\n") == 123456
    assert parse_perf_count("<not supported>,,instructions:u,0,100.00,,\n") is None
    why = perf_unavailable_reason()
    assert why is None or ("perf" in why and len(why.splitlines()) == 1)


def test_the_asv_track_skips_without_valgrind(monkeypatch):
    sys.path.insert(0, str(ROOT))
    from benchmarks import bench_counters
    monkeypatch.setattr(counters, "valgrind_path", lambda: None)
    bench = bench_counters.VecDotInstructions()
    cache = bench.setup_cache()
    assert cache == "valgrind is not installed"
    with pytest.raises(NotImplementedError, match="valgrind"):
        bench.setup(cache, "q8_0")
    assert bench.unit == "instructions" and bench_counters.VecDotInstructions.track_instructions_vec_dot


def test_the_markdown_table_shows_instructions_beside_the_timings():
    from harness.measure.counters import CounterBatch, CounterResult, Counts
    from harness.measure.kernel_table import KernelBench, KernelBenchRow
    from harness.measure.kernel_timing import CallTiming
    from harness.report.kernel_tables import format_csv, format_markdown
    spec = KernelSpec("avx2", "q8_0", 4096)
    counted = CounterResult(spec, "cachegrind", 4000, Counts(2581.0, 1.0, 13.69, 0.0), Counts(7322.7, 29.6, 26.8, 0.0))
    row = KernelBenchRow("q8_0", "avx2", 1, 4096, 4352, CallTiming(550.0, (540.0, 550.0, 580.0), 9000), counted)
    bench = KernelBench([row], CallTiming(160.0, (160.0,), 1), CounterBatch([counted], "cachegrind", 2, 9.5,
                                                                           (5.0, 6.0), 556_000_000))
    md = format_markdown(bench)
    head, _, line = md.splitlines()[:3]
    assert head.index("ns/call") < head.index("instr/call") < head.index("D1 miss/call")
    assert "| 550.0 |" in line and "| 2,581 |" in line and "| 13.69 |" in line
    assert "160.0 ns for a call of an empty C function" in md and "memory-bound decode" in md
    assert "2581.0" in format_csv(bench).splitlines()[1]

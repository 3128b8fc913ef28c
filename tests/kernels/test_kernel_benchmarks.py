"""pytest-benchmark microbenchmarks of the dot kernels (vec_dot, vec_dot4, and the gemm panel where a
variant has one) per weight type and ISA variant this CPU runs, and a check that a saved run works as
a regression gate.

The benchmarks are skipped in the normal run (pyproject's addopts has --benchmark-skip):

    pytest tests/test_kernel_benchmarks.py --benchmark-only --benchmark-save=base
    pytest tests/test_kernel_benchmarks.py --benchmark-only --benchmark-compare=0001 \
        --benchmark-compare-fail=median:10%        # exit 1 and "Performance has regressed"
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import native
from harness.errors import UsageError
from harness.measure.kernel_bench import DOT_TYPES, prepare_dot, prepare_packed_panel, prepare_panel, weight_type

RUNNABLE = native.cpu_features()["supported"]
N = 16384
HERE = Path(__file__).resolve()


@pytest.mark.parametrize("rows", [1, 4], ids=["vec_dot", "vec_dot4"])
@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("wtype", DOT_TYPES)
def test_dot_speed(benchmark, wtype, isa, rows):
    dot = prepare_dot(isa, wtype, N, rows)      # checks the timed call against Kernels
    benchmark.group = f"{'vec_dot' if rows == 1 else 'vec_dot4'} n={N}"
    benchmark.extra_info.update(isa=isa, weight_type=wtype, n=N, rows=rows, weight_bytes=dot.weight_bytes)
    benchmark(dot)
    if benchmark.stats:                         # None under --benchmark-disable
        assert benchmark.stats.stats.median > 0
        benchmark.extra_info["weight_gbps"] = dot.weight_bytes / benchmark.stats.stats.median / 1e9


PANELS = [(isa, t) for isa in RUNNABLE for t in DOT_TYPES if native.Kernels(isa).has_gemm(weight_type(t))]


@pytest.mark.parametrize("isa,wtype", PANELS or [pytest.param(None, None, marks=pytest.mark.skip("no panel kernel"))])
def test_panel_speed(benchmark, isa, wtype):
    """The prefill panel of the engine: 16 weight rows by 32 tokens of 1024 values."""
    panel = prepare_panel(isa, wtype)           # checks the timed call against Kernels.gemm
    benchmark.group = "gemm panel 16x32 n=1024"
    benchmark.extra_info.update(isa=isa, weight_type=wtype, n=panel.n, rows=panel.weight_rows, tokens=panel.tokens)
    benchmark(panel)
    if benchmark.stats:
        benchmark.extra_info["gmacs"] = panel.macs / benchmark.stats.stats.median / 1e9


PACKED = [(isa, t) for isa in RUNNABLE for t in DOT_TYPES if native.Kernels(isa).has_packed(weight_type(t))]
PACKED2 = [(isa, t) for isa, t in PACKED
           if native.lib.q35_kernels_for(native.ISAS[isa]).gemm_packed2[int(weight_type(t))] != native.ffi.NULL]


@pytest.mark.parametrize("isa,wtype", PACKED or [pytest.param(None, None, marks=pytest.mark.skip("no repacked product"))])
def test_packed_panel_speed(benchmark, isa, wtype):
    """The prefill product of repacked weights: one group of 16 interleaved rows by 32 tokens of 1024 values."""
    panel = prepare_packed_panel(isa, wtype)    # checks the timed call against Kernels.gemm_packed
    benchmark.group = "repacked panel 16x32 n=1024"
    benchmark.extra_info.update(isa=isa, weight_type=wtype, n=panel.n, rows=panel.weight_rows, tokens=panel.tokens)
    benchmark(panel)
    if benchmark.stats:
        benchmark.extra_info["gmacs"] = panel.macs / benchmark.stats.stats.median / 1e9


@pytest.mark.parametrize("isa,wtype", PACKED2 or [pytest.param(None, None, marks=pytest.mark.skip("no two-group product"))])
def test_packed2_panel_speed(benchmark, isa, wtype):
    """Two repacked groups at once (gemm_packed2: BF16 on AVX512-BF16, Q8_0 on AVX512-VNNI), 32 rows by 32
    tokens of 1024 values: the prefill product there."""
    panel = prepare_packed_panel(isa, wtype, groups=2)    # checks the timed call against Kernels.gemm_packed
    assert panel.weight_rows == 32
    benchmark.group = "repacked panel, two groups, 32x32 n=1024"
    benchmark.extra_info.update(isa=isa, weight_type=wtype, n=panel.n, rows=panel.weight_rows, tokens=panel.tokens)
    benchmark(panel)
    if benchmark.stats:
        benchmark.extra_info["gmacs"] = panel.macs / benchmark.stats.stats.median / 1e9


def test_a_two_group_panel_needs_the_product():
    with pytest.raises(UsageError, match="two-group repacked Q4_K"):
        prepare_packed_panel("scalar", "q4_k", groups=2)
    with pytest.raises(UsageError, match="1 or 2 groups"):
        prepare_packed_panel("scalar", "q4_k", groups=3)


def _bench(storage: Path, *args: str) -> subprocess.CompletedProcess:
    isa = "avx2" if "avx2" in RUNNABLE else RUNNABLE[0]
    cmd = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider", "--benchmark-only",
           "-k", f"test_dot_speed and q8_0 and {isa} and not vec_dot4", f"--benchmark-storage=file://{storage}",
           "--benchmark-min-rounds=5", "--benchmark-max-time=0.05", "--benchmark-warmup=off", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent.parent)


def _scale_saved(path: Path, original: dict, factor: float) -> None:
    """Write the saved run back with every timing statistic multiplied by factor."""
    data = json.loads(json.dumps(original))
    for b in data["benchmarks"]:
        for key in ("min", "max", "mean", "median", "stddev", "iqr", "q1", "q3", "total"):
            b["stats"][key] *= factor
        b["stats"]["ops"] /= factor
    path.write_text(json.dumps(data))


def test_a_saved_run_gates_a_slowdown_with_compare_fail(tmp_path):
    r = _bench(tmp_path, "--benchmark-save=base")
    assert r.returncode == 0, r.stdout + r.stderr
    saved = list(tmp_path.glob("*/0001_base.json"))
    assert len(saved) == 1, list(tmp_path.rglob("*"))
    original = json.loads(saved[0].read_text())
    names = [b["name"] for b in original["benchmarks"]]
    assert len(names) == 1 and "q8_0" in names[0]
    assert original["benchmarks"][0]["extra_info"]["weight_type"] == "q8_0"

    # against a baseline 4x faster than anything this machine does, the gate trips
    _scale_saved(saved[0], original, 0.25)
    r = _bench(tmp_path, "--benchmark-compare=0001", "--benchmark-compare-fail=median:10%")
    assert r.returncode == 1 and "Performance has regressed" in r.stdout + r.stderr, r.stdout + r.stderr

    # against one 4x slower, it passes
    _scale_saved(saved[0], original, 4.0)
    r = _bench(tmp_path, "--benchmark-compare=0001", "--benchmark-compare-fail=median:10%")
    assert r.returncode == 0, r.stdout + r.stderr

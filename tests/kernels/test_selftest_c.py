"""The C self-test program, built from native/ alone (no Python headers) and run."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import native
from support.paths import NATIVE



def _build(tmp_path, cc="cc", extra=()):
    out = tmp_path / "selftest"
    srcs = sorted(str(p) for p in (NATIVE / "src").rglob("*.c")) + [str(NATIVE / "tests" / "selftest.c")]
    cmd = [cc, "-O2", "-std=gnu11", "-Wall", "-Werror", "-Wno-unused-function",
           f"-I{NATIVE / 'include'}", f"-I{NATIVE / 'src'}", "-o", str(out), *srcs, *extra, "-lm", "-pthread"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def test_native_sources_have_no_python_headers():
    for p in NATIVE.rglob("*.[ch]"):
        assert "Python.h" not in p.read_text(), p


def test_selftest_reports_an_unrunnable_variant_with_77(synth_dir):
    from harness.engine.selftest import build
    exe = build("native")
    r = subprocess.run([str(exe), "--isa", "neon" if os.uname().machine == "x86_64" else "avx2"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 77 and "skipped" in r.stdout


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None or shutil.which("qemu-aarch64") is None,
                    reason="needs gcc-aarch64-linux-gnu and qemu-user (installed by .ci/run)")
def test_selftest_neon_under_qemu(tmp_path):
    exe = _build(tmp_path, cc="aarch64-linux-gnu-gcc", extra=("-static",))
    r = subprocess.run(["qemu-aarch64", str(exe), "--isa", "all"], capture_output=True, text=True, check=False, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^neon +dot_f32 ", r.stdout, re.MULTILINE) and "MISMATCH" not in r.stdout


def test_makefile_builds_the_selftest(tmp_path):
    """`make -C native selftest` (the README's way) builds every source, engine included."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    r = subprocess.run(["make", "-C", str(NATIVE), "selftest", f"BUILD={tmp_path}"], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(tmp_path / "selftest"), "--isa", "scalar"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and " passed, 0 failed" in r.stdout


@pytest.mark.slow   # a whole build of the library (~20 s); the selftest target checks the Makefile in the normal run
def test_makefile_builds_the_gemm_benchmark_and_it_times_a_product(tmp_path):
    """`make -C native gemm-bench`: the timed prefill-shaped product that the llama.cpp
    comparison quotes runs, reports its rate, and says which path it took."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    r = subprocess.run(["make", "-C", str(NATIVE), "gemm-bench", f"BUILD={tmp_path}"], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    for isa, path in (("scalar", "4-token dots"), ("avx2", "panel kernel")):
        if isa == "avx2" and "avx2" not in native.cpu_features()["supported"]:
            continue
        r = subprocess.run([str(tmp_path / "gemm_bench"), "12", "512", "40", "37", isa], capture_output=True, text=True,
                           check=False, timeout=120)
        assert r.returncode == 0, r.stderr
        assert re.search(rf"ours {isa} type 12, k 512, rows 40, tokens 37, 1 thread: [\d.]+ ms, [\d.]+ GMAC/s \({path};",
                         r.stdout), r.stdout
    r = subprocess.run([str(tmp_path / "gemm_bench"), "12", "100", "4", "4"], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "unsupported" in r.stderr     # 100 is not a multiple of 256


@pytest.mark.slow   # a whole build of the library (~20 s); the selftest target checks the Makefile in the normal run
def test_makefile_builds_the_static_engine_bench_and_it_measures_pp_and_tg(tmp_path):
    """`make -C native engine-bench-static`: the driver carried to machines without Python runs a
    synthetic model through the C API and prints one JSON line per test, finite logits included; an
    ISA this CPU cannot run is one error line and exit 1."""
    import json
    if shutil.which("make") is None:
        pytest.skip("no make")
    r = subprocess.run(["make", "-C", str(NATIVE), "engine-bench-static", f"BUILD={tmp_path}"], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0 and "cannot find -lc" in r.stderr and not os.environ.get("CI"):
        pytest.skip("no static C library here")
    assert r.returncode == 0, r.stdout + r.stderr
    exe = str(tmp_path / "engine_bench-static")
    isas = [i for i in ("scalar", "avx2") if i in native.cpu_features()["supported"]]
    r = subprocess.run([exe, "--preset", "tiny", "--quant", "q4_k_m", "--isa", ",".join(isas), "-t", "1", "-p", "8",
                        "-n", "2", "-r", "1"], capture_output=True, text=True, check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    tests = [x for x in lines if x.get("test") in ("pp8", "tg2")]
    assert sorted((x["isa"], x["test"]) for x in tests) == sorted((i, t) for i in isas for t in ("pp8", "tg2"))
    assert all(x["tps_median"] > 0 and x["nonfinite"] == 0 for x in tests), tests
    unrunnable = next(i for i in ("neon", "avx512", "avx2") if i not in native.cpu_features()["supported"])
    r = subprocess.run([exe, "--preset", "tiny", "--isa", unrunnable, "-p", "4", "-n", "0"], capture_output=True,
                       text=True, check=False, timeout=60)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, (r.returncode, r.stderr)


# ----------------------------------------------------------------------------
# every variant against scalar: the native build (scalar, avx2 and, on AVX512
# hardware, avx512) and the SIMDe build of the avx512 kernels (harness.engine.selftest)

CPU = None


def _cpu():
    global CPU
    if CPU is None:
        from harness.native import cpu_features
        CPU = cpu_features()
    return CPU


@pytest.fixture(scope="module")
def selftest_model(synth_dir):
    from harness.engine.selftest import cached_model_file
    return cached_model_file()


def _run_selftest(kind, isa, model):
    from harness.engine.selftest import build
    r = subprocess.run([str(build(kind)), "--isa", isa, "--model", str(model)], capture_output=True, text=True, check=False,
                       timeout=600)
    print(r.stdout)
    return r


def _assert_every_entry_checked(out, name):
    for what in ("dot_f32", "vec_dot4 IQ4_XS x Q8_K", "vec_dot Q5_K x Q8_K", "from_float Q8_K", "from_float BF16",
                 "silu", "softmax", "rope", "rmsnorm", "deltanet chunked T=70 Sk=19 Sv=37", "deltanet fused",
                 "forward 16 prefill + 6 decode logits"):
        assert f"{name:12s} {what}" in out, what


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 variants")
def test_selftest_avx2_every_entry_matches_scalar(selftest_model):
    if "avx2" not in _cpu()["supported"]:
        pytest.skip("this CPU has no AVX2")
    r = _run_selftest("native", "avx2", selftest_model)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MISMATCH" not in r.stdout and " passed, 0 failed" in r.stdout
    _assert_every_entry_checked(r.stdout, "avx2")
    if _cpu()["flags"]["avxvnni"]:   # both AVX2 tables, with the AVX-VNNI products and without, bit for bit
        other = "avx2+avxvnni" if os.environ.get("HARNESS_AVXVNNI") == "0" else "avx2-novnni"
        for name in ("avx2", other):
            for wt in (8, 12, 13, 14, 23):   # Q8_0, Q4_K, Q5_K, Q6_K, IQ4_XS
                assert re.search(rf"^{re.escape(name)} +gemm_packed type {wt} \(the scalar rule\) +err 0\.00e\+00 ", r.stdout,
                                 re.MULTILINE), (name, wt)
    else:
        assert "avx2+avxvnni skipped: this CPU has no avxvnni" in r.stdout


def test_selftest_scalar_deltanet_algorithms_agree(selftest_model):
    r = _run_selftest("native", "scalar", selftest_model)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "scalar       deltanet chunked T=150 Sk=32 Sv=32 vs recurrent" in r.stdout
    assert "scalar       forward logits finite" in r.stdout and " passed, 0 failed" in r.stdout


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 variants")
def test_selftest_avx512_on_hardware_or_a_clean_skip(selftest_model):
    r = _run_selftest("native", "avx512", selftest_model)
    if "avx512" in _cpu()["supported"]:
        assert r.returncode == 0, r.stdout + r.stderr
        _assert_every_entry_checked(r.stdout, "avx512")
    else:
        assert r.returncode == 77, r.stdout + r.stderr
        assert "avx512 cannot run here: this CPU cannot run it" in r.stdout


@pytest.mark.skipif(not Path("/usr/include/simde/x86/avx512.h").is_file() or os.uname().machine != "x86_64",
                    reason="needs libsimde-dev (installed by .ci/run)")
def test_selftest_simde_avx512_logic_matches_scalar(selftest_model):
    """The avx512 kernel source built on SIMDe: lanes, masks, tails and reductions on an AVX2 machine,
    with and without the VNNI dots."""
    if "avx2" not in _cpu()["supported"]:
        pytest.skip("the SIMDe build targets AVX2")
    r = _run_selftest("simde", "avx512", selftest_model)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SIMDe's emulation" in r.stdout and "MISMATCH" not in r.stdout
    _assert_every_entry_checked(r.stdout, "avx512")
    assert "avx512+vnni  vec_dot4 Q4_K x Q8_K" in r.stdout


def test_selftest_rejects_a_damaged_model_file(selftest_model, tmp_path):
    """The C reader checks every size: truncated or altered files fail with a reason, never a crash."""
    import struct
    data = selftest_model.read_bytes()
    cases = {"truncated": data[:len(data) // 2], "trailing": data + b"x" * 64,
             "magic": b"GGUF" + data[4:],
             # first tensor's nbytes (after the 16 + 56 + n_layer byte header, at +28 in the record) doubled
             "nbytes": None}
    off = 16 + 56 + struct.unpack_from("<i", data, 16)[0] + 28
    nb = struct.unpack_from("<q", data, off)[0]
    cases["nbytes"] = data[:off] + struct.pack("<q", 2 * nb) + data[off + 8:]
    for name, blob in cases.items():
        p = tmp_path / f"{name}.q35m"
        p.write_bytes(blob)
        r = _run_selftest("native", "scalar", p)
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert r.stderr.startswith("selftest: ") and str(p) in r.stderr, (name, r.stderr)


def _harness(*args):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, check=False, timeout=900)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 variants")
def test_harness_selftest_exit_codes(selftest_model):
    """0 when the variant ran and passed; 77 (with the reason, and the SIMDe check) when it cannot run here."""
    if "avx2" in _cpu()["supported"]:
        r = _harness("selftest", "--isa", "avx2")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "avx2            passed:" in r.stdout
    r = _harness("selftest", "--isa", "avx512")
    if "avx512" in _cpu()["supported"]:
        assert r.returncode == 0, r.stdout + r.stderr
    else:
        assert r.returncode == 77, r.stdout + r.stderr
        assert "avx512          skipped: cannot run here: this CPU cannot run it" in r.stdout
        assert "checking the avx512 kernels' logic through SIMDe instead" in r.stdout
    r = _harness("selftest", "--isa", "mmx")
    assert r.returncode == 2 and "invalid choice" in r.stderr

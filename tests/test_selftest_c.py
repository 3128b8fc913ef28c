"""The C self-test program, built from native/ alone (no Python headers) and run."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

NATIVE = Path(__file__).resolve().parent.parent / "native"


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


def test_selftest_native(tmp_path):
    exe = _build(tmp_path)
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MISMATCH" not in r.stdout
    assert " passed, 0 failed" in r.stdout


def test_selftest_reports_an_unrunnable_variant_with_77(tmp_path):
    exe = _build(tmp_path)
    r = subprocess.run([str(exe), "--isa", "neon" if os.uname().machine == "x86_64" else "avx2"],
                       capture_output=True, text=True)
    assert r.returncode == 77 and "skipped" in r.stdout


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None or shutil.which("qemu-aarch64") is None,
                    reason="needs gcc-aarch64-linux-gnu and qemu-user (installed by .ci/run)")
def test_selftest_neon_under_qemu(tmp_path):
    exe = _build(tmp_path, cc="aarch64-linux-gnu-gcc", extra=("-static",))
    r = subprocess.run(["qemu-aarch64", str(exe), "--isa", "all"], capture_output=True, text=True, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "neon    dot_f32 vs scalar" in r.stdout and "MISMATCH" not in r.stdout


def test_makefile_builds_the_selftest(tmp_path):
    """`make -C native selftest` (the README's way) builds every source, engine included."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    r = subprocess.run(["make", "-C", str(NATIVE), "selftest", f"BUILD={tmp_path}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(tmp_path / "selftest")], capture_output=True, text=True)
    assert r.returncode == 0 and " passed, 0 failed" in r.stdout

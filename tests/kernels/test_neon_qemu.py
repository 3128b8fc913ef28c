"""The NEON variant, cross-compiled for aarch64 (static) and run under qemu-user, once on a CPU
without the dot-product extension (cortex-a53: the widening-multiply int8 path) and once with it
(max: the sdot path). The kernel table each run resolved to is printed by the C programs, so the
tests know which path ran. native/tests/selftest.c checks the dot products and quantizers;
native/tests/table_check.c the float row kernels, the delta-net algorithms, vec_dot4 == vec_dot and
whole forward passes of a small random model."""
import re
import shutil
import subprocess

import pytest
from support.paths import NATIVE

CC = "aarch64-linux-gnu-gcc"
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Werror", "-Wno-unused-function",
          f"-I{NATIVE / 'include'}", f"-I{NATIVE / 'src'}"]
LIB_SOURCES = sorted(str(p) for p in (NATIVE / "src").rglob("*.c"))

pytestmark = pytest.mark.skipif(
    shutil.which(CC) is None or shutil.which("qemu-aarch64") is None,
    reason="needs gcc-aarch64-linux-gnu and qemu-user (installed by .ci/run)")


def _compile_lib(cc, out_dir):
    """the library's objects, compiled once per toolchain"""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([cc, *CFLAGS, "-c", *LIB_SOURCES], cwd=out_dir, check=True, capture_output=True, text=True)
    return sorted(str(p) for p in out_dir.glob("*.o"))


def _link(cc, objs, driver, out, extra=()):
    subprocess.run([cc, *CFLAGS, "-o", str(out), str(NATIVE / "tests" / driver), *objs, *extra, "-lm", "-pthread"],
                   check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="module")
def aarch64(tmp_path_factory):
    d = tmp_path_factory.mktemp("aarch64")
    objs = _compile_lib(CC, d / "obj")
    return {name: _link(CC, objs, f"{name}.c", d / name, ("-static",)) for name in ("selftest", "table_check")}


def _qemu(cpu, exe, *args):
    r = subprocess.run(["qemu-aarch64", "-cpu", cpu, str(exe), "--isa", "all", *args], capture_output=True,
                       text=True, timeout=600)
    print(r.stdout)
    return r


# cortex-a53 is ARMv8.0 (no asimddp); qemu's "max" has every extension it emulates
CPUS = [("cortex-a53", 0, "neon"), ("max", 1, "neon+dotprod")]


@pytest.mark.parametrize("cpu, dotprod, table", CPUS, ids=[c[0] for c in CPUS])
def test_neon_selftest_under_qemu_with_and_without_dotprod(aarch64, cpu, dotprod, table):
    r = _qemu(cpu, aarch64["selftest"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"neon=1 dotprod={dotprod}" in r.stdout            # HWCAP_ASIMDDP seen (or not) by q35_cpu_detect
    neon = [line for line in r.stdout.splitlines() if line.startswith("neon ")]
    # every weight type's vec_dot and vec_dot4 (9 types), besides the converters and dot_f32
    assert sum("vec_dot" in line for line in neon) >= 18
    assert all(line.endswith(" ok") for line in neon), neon
    assert re.search(r"\d+ passed, 0 failed", r.stdout)


def _neon_checks(stdout):
    return [line for line in stdout.splitlines() if line.startswith("neon ") and "max rel err" in line]


@pytest.mark.parametrize("cpu, dotprod, table", CPUS, ids=[c[0] for c in CPUS])
def test_neon_table_check_under_qemu_runs_the_cpus_int8_path(aarch64, cpu, dotprod, table):
    r = _qemu(cpu, aarch64["table_check"], "--no-forward")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"neon    kernel table: {table}\n" in r.stdout      # the path that ran
    neon = _neon_checks(r.stdout)
    for what in ("silu", "softmax", "rope", "rmsnorm", "delta-net fused", "delta-net chunked",
                 "vec_dot4 Q4_K == vec_dot", "vec_dot4 IQ4_XS == vec_dot"):
        assert any(what in line for line in neon), what
    assert all(line.endswith(" ok") for line in neon), neon


def _forward_passes(aarch64, cpu, table):
    r = _qemu(cpu, aarch64["table_check"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"neon    kernel table: {table}\n" in r.stdout
    passes = [line for line in _neon_checks(r.stdout) if "forward pass" in line]
    assert len(passes) == 26 and all(line.endswith(" ok") for line in passes), passes    # every weight type


def test_neon_engine_forward_pass_under_qemu_with_dotprod(aarch64):
    """The whole C engine (threads, u-batches, all three delta-net paths) on aarch64, every weight
    type, logits against the scalar variant's (the slow part: about 10 s of CPU under qemu)."""
    _forward_passes(aarch64, "max", "neon+dotprod")


@pytest.mark.slow
def test_neon_engine_forward_pass_under_qemu_without_dotprod(aarch64):
    _forward_passes(aarch64, "cortex-a53", "neon")


def test_sdot_instructions_only_in_the_dotprod_functions(aarch64):
    """The build stays armv8-a: sdot appears only in the *_sdot kernels (picked at run time), so a CPU
    without the extension never meets it (the cortex-a53 runs above would die with SIGILL)."""
    objdump = shutil.which("aarch64-linux-gnu-objdump")
    if objdump is None:
        pytest.skip("no aarch64-linux-gnu-objdump")
    text = subprocess.run([objdump, "-d", str(aarch64["table_check"])], capture_output=True, text=True,
                          check=True).stdout
    with_sdot, fn = set(), None
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            fn = m.group(1)
        elif "\tsdot\t" in line:
            with_sdot.add(fn)
    assert with_sdot, "no sdot at all: the dotprod kernels were not compiled"
    assert all(f.endswith("_sdot") for f in with_sdot), sorted(with_sdot)
    assert {"vec_dot_q4_K_sdot", "vec_dot4_iq4_xs_sdot"} <= with_sdot


def test_table_check_runs_natively(tmp_path):
    """The same checks on this machine's variants (the NEON files compile to nothing on x86)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    objs = _compile_lib(cc, tmp_path / "obj")
    exe = _link(cc, objs, "table_check.c", tmp_path / "table_check")
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "scalar  kernel table: scalar\n" in r.stdout and "MISMATCH" not in r.stdout
    assert re.search(r"[1-9]\d* passed, 0 failed", r.stdout)

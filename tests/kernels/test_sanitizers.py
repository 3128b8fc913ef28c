"""Memory safety of the C code, with zero reports required:

- the self-test program (every kernel of every runnable ISA variant, every format) built with
  AddressSanitizer + UndefinedBehaviorSanitizer (leak checking on), and run under valgrind
  memcheck;
- whole-model runs (prefill, decode, state save / restore, reset, every delta-net algorithm,
  1 and 2 threads) through a copy of the cffi extension built with -fsanitize=address,undefined,
  in a child Python with libasan preloaded (tests/native_workout.py);
- a short decode in a child Python under valgrind (slow): no error with a frame in our
  extension or in numpy (which would be reading logits C left uninitialised). CPython itself is
  not valgrind-clean, so its own reports are not counted.

Each tool is first shown to catch a planted bug, so a silently inactive sanitizer cannot pass.
Needs gcc with libasan / libubsan (Debian: libgcc-12-dev, pulled in by gcc) and valgrind.
"""
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from support import gguf_fuzz_lib
from support.paths import ROOT

NATIVE = ROOT / "native"
WORKOUT = ROOT / "tests" / "support" / "native_workout.py"
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
# -O0: half the compile time of -O1, and every load stays a load the sanitizer sees
SAN_CFLAGS = ["-O0", "-g", "-std=gnu11", "-fno-math-errno", *SAN]
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:")


def _need(ok: bool, what: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing (.ci/run installs it)")
        pytest.skip(f"{what} is not installed")


def _libasan() -> str:
    r = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True)
    path = r.stdout.strip() if r.returncode == 0 else ""
    _need(os.path.isabs(path) and os.path.exists(path), "gcc with libasan (libgcc-12-dev)")
    return path


def _native_sources() -> list[str]:
    return sorted(str(p) for p in (NATIVE / "src").rglob("*.c"))


def _build_selftest(out: Path, cflags) -> Path:
    cmd = ["gcc", *cflags, "-Wall", "-Wno-unused-function", f"-I{NATIVE / 'include'}", f"-I{NATIVE / 'src'}",
           "-o", str(out), *_native_sources(), str(NATIVE / "tests" / "selftest.c"), "-lm", "-pthread"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def _child_env(**extra) -> dict:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


# ----------------------------------------------------------------------------
# AddressSanitizer + UndefinedBehaviorSanitizer

@pytest.fixture(scope="session")
def asan_selftest(tmp_path_factory):
    _libasan()
    return _build_selftest(tmp_path_factory.mktemp("asan") / "selftest", SAN_CFLAGS)


@pytest.fixture(scope="session")
def asan_extension(tmp_path_factory) -> Path:
    """harness._native compiled with -fsanitize=address,undefined into a temporary directory."""
    _libasan()
    out = tmp_path_factory.mktemp("asan-ext")
    script = f"""
import sys
sys.path.insert(0, {str(NATIVE)!r})
import ffi_build
from cffi import FFI
ffi = FFI()
ffi.cdef(ffi_build._cdef_from_header(ffi_build.HEADER))
ffi.set_source("harness._native", '#include "q35.h"', sources={_native_sources()!r},
               include_dirs={[str(NATIVE / 'include'), str(NATIVE / 'src')]!r},
               extra_compile_args={SAN_CFLAGS!r}, extra_link_args={["-pthread", *SAN]!r})
print(ffi.compile(tmpdir={str(out)!r}))
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=out)
    assert r.returncode == 0, r.stderr[-3000:]
    return Path(r.stdout.strip().splitlines()[-1])


def _run_sanitized(args, timeout=600):
    env = _child_env(LD_PRELOAD=_libasan(), PYTHONMALLOC="malloc", **SAN_ENV)
    env["ASAN_OPTIONS"] = "detect_leaks=0:halt_on_error=1"   # CPython's own allocations outlive exit
    return subprocess.run([sys.executable, str(WORKOUT), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def micro_path(tmp_path_factory) -> str:
    return gguf_fuzz_lib.write_micro_model(tmp_path_factory.mktemp("micro") / "micro.gguf")


@pytest.mark.parametrize("bug,report", [
    ("int *p = malloc(8 * sizeof *p); int v = p[8]; free(p); return v;", "heap-buffer-overflow"),
    ("int *p = malloc(8 * sizeof *p); free(p); return p[0];", "heap-use-after-free"),
    ("int x = argc + 0x7fffffff; return x > 0;", "runtime error: signed integer overflow"),
    ("char b[8]; int *p = (int *)(b + 1); *p = argc; return b[2];", "runtime error: store to misaligned address"),
    ("void *p = malloc(100); p = 0; return argc - 1;", "ERROR: LeakSanitizer: detected memory leaks"),
])
def test_the_sanitizer_flags_catch_planted_bugs(tmp_path, bug, report):
    _libasan()
    src = tmp_path / "bug.c"
    src.write_text("#include <stdlib.h>\nint main(int argc, char **argv) { (void)argv; " + bug + " }\n")
    exe = tmp_path / "bug"
    subprocess.run(["gcc", *SAN_CFLAGS, "-o", str(exe), str(src)], check=True, capture_output=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True, env=dict(os.environ, **SAN_ENV))
    assert r.returncode != 0 and report in r.stderr, r.stderr


def test_selftest_under_asan_and_ubsan(asan_selftest, record_property):
    r = subprocess.run([str(asan_selftest), "--isa", "all"], capture_output=True, text=True,
                       env=dict(os.environ, **SAN_ENV), timeout=600)
    assert not REPORT.search(r.stderr), r.stderr[-5000:]
    assert r.returncode == 0 and " passed, 0 failed" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    n = re.search(r"(\d+) passed, 0 failed", r.stdout).group(1)
    record_property("cases_tried", f"self-test under ASan + UBSan (leaks checked): {n} checks, 0 reports")


def test_planted_overflow_in_the_sanitized_extension_is_caught(asan_extension):
    r = _run_sanitized(["--so", str(asan_extension), "--plant-overflow"])
    assert r.returncode != 0 and "heap-buffer-overflow" in r.stderr and "q35_dequantize" in r.stderr, r.stderr[-3000:]
    assert "overflow not caught" not in r.stdout


def _check_workout(r, extension: Path, record_property, what: str) -> None:
    assert not REPORT.search(r.stderr), r.stderr[-6000:]
    assert r.returncode == 0 and r.stdout.rstrip().endswith("workout done"), r.stdout[-3000:] + r.stderr[-3000:]
    assert f"extension {extension}" in r.stdout           # the sanitized build really ran
    sessions = r.stdout.count(": ok\n")
    record_property("cases_tried", f"{what}: {sessions} sessions, 0 ASan / UBSan reports")


def _moe_models() -> list[str]:
    """The oracle's mixture-of-experts file, where the oracle files are."""
    from support.paths import ORACLE
    p = ORACLE / "tinymoe-q4_k_m.gguf"
    return [str(p)] if p.exists() else []


def test_model_run_under_asan_and_ubsan(asan_extension, micro_path, tiny_model_path, record_property):
    """The micro model (F32 / F16 / BF16 / Q8_0 / Q4_0), tiny Q4_K_M (Q4_K, Q6_K) and the oracle's
    tiny MoE: a 3-token prefill in u-batches of 3, 2 decode steps, state save / restore, reset,
    last-logits prefill."""
    r = _run_sanitized(["--so", str(asan_extension), "--quick", micro_path, tiny_model_path, *_moe_models()])
    _check_workout(r, asan_extension, record_property, "whole-model runs under ASan + UBSan (quick)")


@pytest.mark.slow
def test_every_engine_path_under_asan_and_ubsan(asan_extension, micro_path, tiny_model_path, record_property):
    """Every runnable ISA, 1 and 2 threads, every delta-net algorithm, the profile and the
    quantizers, on the micro model and tiny files of every remaining weight type."""
    from harness.model.synth import cached_model
    models = [micro_path, tiny_model_path] + [cached_model("tiny", q) for q in ("q5_k", "q6_k", "iq4_xs")] \
        + _moe_models()
    r = _run_sanitized(["--so", str(asan_extension), *models], timeout=1800)
    _check_workout(r, asan_extension, record_property, "whole-model runs under ASan + UBSan (full)")


# ----------------------------------------------------------------------------
# valgrind memcheck

def _valgrind() -> str:
    path = shutil.which("valgrind")
    _need(path is not None, "valgrind")
    return path


def test_selftest_under_valgrind(tmp_path, record_property):
    vg = _valgrind()
    exe = _build_selftest(tmp_path / "selftest", ["-O1", "-g", "-std=gnu11"])
    r = subprocess.run([vg, "-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
                        str(exe), "--isa", "all"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-5000:]
    assert " passed, 0 failed" in r.stdout
    record_property("cases_tried", "self-test under valgrind memcheck: 0 errors, 0 bytes definitely lost")


def _valgrind_python(args, xml: Path, timeout=1200):
    env = _child_env(PYTHONMALLOC="malloc")
    # sys.executable itself, not a launcher script: valgrind does not follow exec by default
    cmd = [_valgrind(), "--leak-check=no", "--xml=yes", f"--xml-file={xml}", "-q",
           os.path.realpath(sys.executable), str(WORKOUT), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def _errors_in(xml: Path, objects=("_native", "_multiarray_umath")) -> list[str]:
    """valgrind errors (not leak records: CPython keeps its objects to the end) with a stack
    frame in one of these shared objects."""
    out = []
    for e in ET.parse(xml).getroot().findall("error"):
        if (e.findtext("kind") or "").startswith("Leak_"):
            continue
        frames = [(f.findtext("obj") or "", f.findtext("fn") or "?") for f in e.iter("frame")]
        if any(any(o in Path(obj).name for o in objects) for obj, _ in frames):
            out.append(f"{e.findtext('kind')}: {e.findtext('what') or ''} at "
                       + " <- ".join(fn for _, fn in frames[:6]))
    return out


@pytest.mark.slow
def test_short_decode_under_valgrind(micro_path, tmp_path, record_property):
    """A 3-token prefill and 2 decode steps of the micro model in a child Python under memcheck
    (about a minute: CPython and numpy start up under the emulator)."""
    r = _valgrind_python(["--quick", micro_path], tmp_path / "vg.xml")
    assert r.returncode == 0 and "workout done" in r.stdout, r.stdout[-2000:] + r.stderr[-3000:]
    errors = _errors_in(tmp_path / "vg.xml")
    assert not errors, "\n".join(errors[:20])
    record_property("cases_tried", "short decode under valgrind memcheck: 0 errors in the extension or numpy")


@pytest.mark.slow
def test_valgrind_sees_a_planted_overflow(tmp_path):
    r = _valgrind_python(["--plant-overflow"], tmp_path / "vg.xml")
    errors = _errors_in(tmp_path / "vg.xml")
    assert any("InvalidRead" in e and "q35_dequantize" in e for e in errors), errors or r.stderr[-3000:]

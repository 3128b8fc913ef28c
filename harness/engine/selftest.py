"""`harness selftest`: build the C self-test (native/tests/selftest.c) and run it per ISA variant.

The sources come from the checkout's native/, or, in an installed package, from the copy the wheel
carries (harness/_csrc, made by setup.py's build_py); the build goes to the cache.

The self-test is C only: it checks every kernel of a variant against the scalar one and
runs a whole forward pass against the scalar logits. C does not parse GGUF, so the model
for that pass is written here in a flat file (MODEL_FORMAT below): a synthetic tiny model
whose matrices cycle through every weight type, so one pass runs every dot product.

Variants and how they run:
    scalar, avx2   native build
    avx512         native build where the CPU has AVX512 F/BW/VL; elsewhere exit 77, and
                   the avx512 kernels are checked through SIMDe instead (a logic check)
    neon           aarch64 static build under qemu-aarch64 -cpu cortex-a53 (no dotprod)
    neon-dotprod   the same under qemu-aarch64 -cpu max (dotprod)
Exit codes: 0 ran and passed, 1 a mismatch, 77 cannot run here (the reason is printed).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.cache import cache_dir
from harness.errors import HarnessError, UsageError
from harness.ggml_types import GGMLType

# The C sources: a source checkout's (and an editable install's) native/, else the copy an installed
# package carries (setup.py's build_py copies them into harness/_csrc/, laid out as native/ is).
CHECKOUT_NATIVE = Path(__file__).resolve().parents[2] / "native"    # harness/engine/selftest.py -> the checkout
INSTALLED_NATIVE = Path(__file__).resolve().parents[1] / "_csrc"
ISAS = ("scalar", "avx2", "avx512", "neon", "neon-dotprod")
SKIP = 77

# Matrices take these types in turn (norms and the small delta-net tensors stay F32); the
# float types only on matrices of at most FLOAT_MAX_ELEMS values, to keep the file small.
QUANT_TYPES = (GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q5_K, GGMLType.IQ4_XS)
MIXED_TYPES = QUANT_TYPES + (GGMLType.F16, GGMLType.BF16, GGMLType.F32)
FLOAT_MAX_ELEMS = 256 * 256

MODEL_FORMAT = """little-endian: b"Q35MODEL", u32 version (1), u32 n_tensors,
i32 n_layer n_embd n_ff n_head n_head_kv head_dim rope_dims, f32 rope_theta rms_eps,
i32 conv_kernel ssm_state ssm_k_heads ssm_v_heads vocab_size, u8 recurrent[n_layer];
per tensor: i32 layer (-1 global) slot type, i64 rows cols nbytes, the bytes,
zero padding to a multiple of 64 from the start of the file"""


class SelftestError(HarnessError):
    """The self-test could not be built or run (no compiler, compile error, crash)."""


# ----------------------------------------------------------------------------
# the model file

def write_model_file(path: str | os.PathLike, preset: str = "tiny", seed: int = 0, vocab: int = 1024) -> Path:
    """A synthetic model in the self-test's flat format (MODEL_FORMAT), every weight type used;
    the vocabulary cut to its first `vocab` tokens to keep the file small (about 2 MB for tiny)."""
    from harness import native
    from harness.engine.session import tensor_slot
    from harness.model.loader import F32_ONLY, load_model
    from harness.model.synth import cached_model

    path = Path(path)
    with load_model(cached_model(preset, "f32", seed=seed)) as m:
        c = m.config
        vocab = min(vocab, c.vocab_size)
        head = b"Q35MODEL" + struct.pack("<II", 1, len(m.specs))
        head += struct.pack("<7i", c.n_layer, c.n_embd, c.n_ff, c.n_head, c.n_head_kv, c.head_dim, c.rope_dims)
        head += struct.pack("<2f", c.rope_theta, c.rms_eps)
        head += struct.pack("<5i", c.conv_kernel, c.ssm_state, c.ssm_k_heads, c.ssm_v_heads, vocab)
        head += bytes(int(r) for r in c.recurrent)
        parts, size, turn = [head], len(head), 0
        for spec in m.specs:
            x = np.asarray(m.dequantized(spec.name), dtype=np.float32)
            if spec.name in ("token_embd.weight", "output.weight"):
                x = x[:vocab]
            rows, cols = (1, x.shape[0]) if x.ndim == 1 else x.shape
            t = GGMLType.F32
            if spec.types != F32_ONLY:
                cycle = MIXED_TYPES if x.size <= FLOAT_MAX_ELEMS else QUANT_TYPES
                t = cycle[turn % len(cycle)]
                turn += 1
            data = native.quantize(x.reshape(rows, cols), t).tobytes()
            layer, slot = tensor_slot(c, spec.name)
            rec = struct.pack("<3i3q", layer, slot, int(t), rows, cols, len(data)) + data
            size += len(rec)
            pad = (-size) % 64
            parts += [rec, bytes(pad)]
            size += pad
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_bytes(b"".join(parts))
    tmp.replace(path)
    return path


def cached_model_file(preset: str = "tiny", seed: int = 0) -> Path:
    """The self-test model in the cache, written on first use."""
    path = cache_dir() / "selftest" / f"{preset}-mixed-v2-s{seed}.q35m"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_model_file(path, preset, seed)
    return path


# ----------------------------------------------------------------------------
# building

@dataclass(frozen=True)
class Build:
    """One way to compile the self-test."""
    name: str                       # native | simde | aarch64
    cc: str
    flags: tuple[str, ...] = ()
    needs: str = ""                 # Debian package that provides what is missing


BUILDS = {
    "native": Build("native", "gcc"),
    "simde": Build("simde", "gcc", ("-DQ35_AVX512_SIMDE",), "libsimde-dev"),
    "aarch64": Build("aarch64", "aarch64-linux-gnu-gcc", ("-static",), "gcc-aarch64-linux-gnu"),
}


def native_dir() -> Path:
    """The folder of the self-test's C sources: the checkout's native/ when this package runs from a
    source checkout, else the copy installed with it (harness/_csrc)."""
    for d in (CHECKOUT_NATIVE, INSTALLED_NATIVE):
        if (d / "tests" / "selftest.c").is_file() and (d / "include" / "q35.h").is_file():
            return d
    raise SelftestError(f"the C sources of the self-test are not here (looked in {CHECKOUT_NATIVE} and "
                        f"{INSTALLED_NATIVE}): reinstall the package (pip install .) or run from a source checkout")


def _sources() -> list[Path]:
    native = native_dir()
    return sorted([*(native / "src").rglob("*.c"), native / "tests" / "selftest.c"])


def build(kind: str) -> Path:
    """Compile the self-test (cached by a hash of the sources and flags); its path."""
    b = BUILDS[kind]
    if shutil.which(b.cc) is None:
        hint = f" (apt-get install {b.needs})" if b.needs else ""
        raise SelftestError(f"{b.cc} not found: the self-test is compiled from C sources with it{hint}")
    if kind == "simde" and not Path("/usr/include/simde/x86/avx512.h").is_file():
        raise SelftestError("SIMDe headers not found (apt-get install libsimde-dev)")
    native = native_dir()
    srcs = _sources()
    headers = sorted([*(native / "src").rglob("*.h"), *(native / "include").rglob("*.h")])
    cmd = [b.cc, "-O2", "-std=gnu11", "-Wall", "-Wno-unused-function", "-Wno-psabi",
           f"-I{native / 'include'}", f"-I{native / 'src'}", *b.flags]
    h = hashlib.sha256(" ".join(cmd).encode())
    for p in srcs + headers:
        h.update(p.name.encode() + p.read_bytes())
    out = cache_dir() / "selftest" / f"{kind}-{h.hexdigest()[:16]}" / "selftest"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"selftest.tmp{os.getpid()}")
    r = subprocess.run([*cmd, "-o", str(tmp), *map(str, srcs), "-lm", "-pthread"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip()[-300:])
        raise SelftestError(f"compiling the self-test ({kind}) failed: {first}")
    tmp.replace(out)
    return out


# ----------------------------------------------------------------------------
# running

@dataclass
class Outcome:
    variant: str
    code: int               # 0 passed, 1 mismatch, 77 cannot run here
    summary: str


def _run(cmd: list[str], say: Callable[[str], None], timeout: int = 900) -> tuple[int, str]:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SelftestError(f"{' '.join(cmd)}: no result after {timeout} s") from None
    out = r.stdout + r.stderr
    for line in out.rstrip().splitlines():
        say("  " + line)
    if r.returncode < 0:
        raise SelftestError(f"{Path(cmd[0]).name} {' '.join(cmd[1:])}: killed by signal {-r.returncode}")
    return r.returncode, out


def _counts(out: str) -> str:
    m = re.findall(r"^(\d+) passed, (\d+) failed", out, re.MULTILINE)
    return f"{m[-1][0]} checks passed, {m[-1][1]} failed" if m else "no summary line"


def _code(rc: int) -> int:
    return rc if rc in (0, 1, SKIP) else 1


def _native(isa: str, model: Path, say) -> Outcome:
    rc, out = _run([str(build("native")), "--isa", isa, "--model", str(model)], say)
    if rc == SKIP:
        why = re.search(r"cannot run here: (.*)\)", out)
        return Outcome(isa, SKIP, f"cannot run here: {why.group(1) if why else 'see above'}")
    return Outcome(isa, _code(rc), _counts(out))


def _avx512(model: Path, say) -> list[Outcome]:
    real = _native("avx512", model, say)
    if real.code != SKIP:
        return [real]
    say("avx512: not runnable on this CPU; checking the avx512 kernels' logic through SIMDe instead")
    try:
        rc, out = _run([str(build("simde")), "--isa", "avx512", "--model", str(model)], say)
        simde = Outcome("avx512 (SIMDe)", _code(rc), _counts(out))
    except SelftestError as e:
        simde = Outcome("avx512 (SIMDe)", SKIP, str(e))
    return [real, simde]


def _neon(dotprod: bool, model: Path, say) -> Outcome:
    variant = "neon-dotprod" if dotprod else "neon"
    if shutil.which("qemu-aarch64") is None:
        return Outcome(variant, SKIP, "qemu-aarch64 not found (apt-get install qemu-user)")
    try:
        exe = build("aarch64")
    except SelftestError as e:
        return Outcome(variant, SKIP, str(e))
    cpu = "max" if dotprod else "cortex-a53"
    rc, out = _run(["qemu-aarch64", "-cpu", cpu, str(exe), "--isa", "neon", "--model", str(model)], say)
    if f"dotprod={int(dotprod)}" not in out:
        return Outcome(variant, 1, f"qemu -cpu {cpu} did not report dotprod={int(dotprod)}")
    return Outcome(variant, _code(rc), f"{_counts(out)} (qemu-aarch64 -cpu {cpu})")


def run(isa: str, say: Callable[[str], None] = print) -> int:
    """Build and run the self-test for one variant or all; the exit code (0, 1 or 77)."""
    if isa not in (*ISAS, "all"):
        raise UsageError(f"unknown ISA {isa!r} (choose from {', '.join(ISAS)}, all)")
    say(f"C sources: {native_dir()}")
    model = cached_model_file()
    say(f"model file for the forward pass: {model}")
    outcomes: list[Outcome] = []
    for v in (ISAS if isa == "all" else (isa,)):
        say(f"== selftest {v}")
        if v in ("scalar", "avx2"):
            outcomes.append(_native(v, model, say))
        elif v == "avx512":
            outcomes += _avx512(model, say)
        else:
            outcomes.append(_neon(v == "neon-dotprod", model, say))
    say("summary:")
    for o in outcomes:
        state = {0: "passed", 1: "FAILED", SKIP: "skipped"}[o.code]
        say(f"  {o.variant:15s} {state}: {o.summary}")
    failed = [o for o in outcomes if o.code == 1]
    if isa == "all":
        skipped = [o.variant for o in outcomes if o.code == SKIP]
        if skipped:
            say(f"skipped here: {', '.join(skipped)}")
        return 1 if failed else 0
    if failed:
        return 1
    return SKIP if outcomes[0].code == SKIP else 0

"""Run every path of the C engine once on small models: the child process of the sanitizer
and valgrind tests (tests/test_sanitizers.py).

    python tests/native_workout.py [--so SANITIZED.so] [--quick] MODEL.gguf ...

--so loads that build of harness._native instead of the installed one (an AddressSanitizer /
UBSan build; the parent preloads libasan). Every ISA variant the CPU runs, 1 and 2 threads,
u-batches of 3 / 4 / 16 / 128, the recurrent, fused and chunked delta-net (70 tokens: a full
chunk of 64 and a partial one), decode, state save / restore, reset, the profile, and the
quantizers of every weight type. --quick: one ISA, a 3-token prefill and 2 decode steps.
Prints one line per session and 'workout done' at the end; exits 1 on non-finite logits.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys

import numpy as np


def use_extension(so_path: str) -> None:
    """Make `harness._native` this shared object (before harness.native imports it)."""
    spec = importlib.util.spec_from_file_location("harness._native", so_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["harness._native"] = mod


# (threads, ubatch, fdn_threshold, dn_algo, prompt length)
FULL = [(1, 3, 512, "auto", 10), (2, 4, 0, "auto", 10), (2, 16, 512, "recurrent", 20),
        (2, 128, 0, "chunked", 70), (1, 128, 512, "fused", 70)]
QUICK = [(1, 3, 512, "auto", 3)]


def workout(path: str, isas: list[str], plans) -> int:
    from harness.engine.session import Session
    from harness.model.loader import load_model
    bad = 0
    with load_model(path) as m:
        V = m.config.vocab_size
        toks = np.random.default_rng(0).integers(0, V, 80)
        for isa in isas:
            for threads, ubatch, fdn, algo, n in plans:
                with Session(m, isa=isa, threads=threads, ubatch=ubatch, fdn_threshold=fdn, ctx=96,
                             dn_algo=algo, profile=True) as s:
                    a = s.prefill(toks[:n])
                    snap = s.save_state()
                    b = [s.decode(int(t)) for t in toks[n:n + 2]]
                    s.restore_state(snap)
                    c = s.decode(int(toks[n]))
                    if plans is not QUICK:
                        s.profile()       # (imports pandas: slow under valgrind)
                    s.reset()
                    d = s.prefill(toks[:n], all_logits=False)
                # restoring the snapshot gives the same next logits, bit for bit
                ok = all(np.isfinite(x).all() for x in (a, c, d, *b)) and np.array_equal(b[0], c)
                bad += not ok
                print(f"{path}: {isa} threads={threads} ubatch={ubatch} fdn={fdn} {algo} n={n}: "
                      f"{'ok' if ok else 'WRONG'}", flush=True)
    return bad


def quantizers() -> None:
    from harness import native
    from harness.ggml_types import NATIVE_TYPES, NO_QUANTIZER_TYPES
    x = np.random.default_rng(1).standard_normal((3, 512)).astype(np.float32)
    for t in sorted(NATIVE_TYPES):
        raw = native.random_blocks(t, 3, 512, 0.1, 1) if t in NO_QUANTIZER_TYPES else native.quantize(x, t, threads=2)
        native.dequantize(raw, t, 512)
    print("quantizers ok", flush=True)


def plant_overflow() -> None:
    """A deliberate one-byte heap over-read in C: the sanitizer tests check that it is caught."""
    from harness.native import ffi, lib
    src = np.zeros(100 * 34 - 1, np.uint8)          # 100 Q8_0 blocks need 3400 bytes
    dst = np.empty(100 * 32, np.float32)
    lib.q35_dequantize(8, ffi.from_buffer("uint8_t[]", src), ffi.from_buffer("float[]", dst, require_writable=True),
                       1, 100 * 32)
    print("overflow not caught", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--so")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--plant-overflow", action="store_true")
    ap.add_argument("models", nargs="*")
    a = ap.parse_args(argv)
    if a.so:
        use_extension(a.so)
    from harness import _native, native
    print(f"extension {_native.__file__}", flush=True)
    if a.plant_overflow:
        plant_overflow()
        return 0
    isas = [native.resolve_isa("auto")] if a.quick else native.cpu_features()["supported"]
    bad = sum(workout(p, isas, QUICK if a.quick else FULL) for p in a.models)
    if not a.quick:
        quantizers()
    print("workout done", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Kernel calls prepared for timing: the asv suite and the pytest-benchmark microbenchmarks
time the same thing.

A PreparedDot calls one dispatch-table entry (vec_dot or vec_dot4 of one weight type and ISA
variant) on buffers made once, so that a timed call is the C kernel plus one cffi call;
harness.native.Kernels checks its arguments on every call, which costs more than the kernel
on rows of a few thousand values. prepare_dot() checks the prepared call against Kernels once,
so what is timed is the kernel the engine uses, giving the same answer."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness import native
from harness.errors import UsageError
from harness.ggml_types import BLOCK_GEOMETRY, NATIVE_TYPES, NO_QUANTIZER_TYPES, GGMLType

# the weight types with a dot kernel, by their lower-case names
DOT_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "iq4_xs", "mxfp4", "nvfp4", "q4_1", "q5_0", "q5_1",
             "iq4_nl", "q2_k", "q3_k", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s",
             "iq1_s", "iq1_m", "tq1_0", "tq2_0"]


@dataclass
class PreparedDot:
    isa: str
    weight_type: GGMLType
    n: int
    rows: int                  # 1: vec_dot, 4: vec_dot4
    _call: Callable[[], object]

    def __call__(self) -> None:
        self._call()

    @property
    def weight_bytes(self) -> int:
        elems, nbytes = BLOCK_GEOMETRY[self.weight_type]
        return self.n // elems * nbytes


def weight_type(name: str) -> GGMLType:
    try:
        t = GGMLType[name.upper()]
    except KeyError:
        t = None
    if t not in NATIVE_TYPES:
        raise UsageError(f"unknown weight type {name!r} (choose from {', '.join(DOT_TYPES)})")
    return t


def _weight_rows(wt: GGMLType, rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian rows quantized to wt, or random valid codes for the types without a quantizer (the
    speed of a dot does not depend on the codes)."""
    if wt in NO_QUANTIZER_TYPES:
        return native.random_blocks(wt, rows, n, 1.0, int(rng.integers(0, 2**63)))
    return native.quantize(rng.standard_normal((rows, n)).astype(np.float32), wt)


def prepare_dot(isa: str, wtype: str, n: int = 16384, rows: int = 1, seed: int = 0) -> PreparedDot:
    """A timed-call-ready dot of one weight row of n values with `rows` (1 or 4) activation rows."""
    if rows not in (1, 4):
        raise UsageError(f"rows must be 1 (vec_dot) or 4 (vec_dot4), got {rows}")
    k = native.Kernels(isa)                      # raises UsageError for an ISA this CPU cannot run
    wt = weight_type(wtype)
    at = GGMLType(native.lib.q35_act_type(int(wt)))
    for t in (wt, at):
        if n <= 0 or n % BLOCK_GEOMETRY[t][0]:
            raise UsageError(f"n must be a positive multiple of {BLOCK_GEOMETRY[t][0]} for {t.name}, got {n}")
    rng = np.random.default_rng(seed)
    w = _weight_rows(wt, 1, n, rng)[0]
    a = np.stack([k.from_float(rng.standard_normal(n).astype(np.float32), at) for _ in range(rows)])
    table = native.lib.q35_kernels_for(native.ISAS[k.isa])
    fn = (table.vec_dot if rows == 1 else table.vec_dot4)[int(wt)]
    if fn == native.ffi.NULL:
        raise UsageError(f"no {wt.name} {'vec_dot' if rows == 1 else 'vec_dot4'} in the {k.isa} table")
    wp = native.ffi.from_buffer("uint8_t[]", w)
    ap = native.ffi.from_buffer("uint8_t[]", a)
    if rows == 1:
        def call():
            return fn(wp, ap, n)
        expected = k.vec_dot(w, a[0], wt, n)
        got = call()
    else:
        out = np.empty(4, dtype=np.float32)
        outp = native.ffi.from_buffer("float[]", out, require_writable=True)
        stride = a.shape[1]

        def call():
            fn(wp, ap, stride, n, outp)
        expected = k.vec_dot4(w, a, wt, n)
        call()
        got = out
    if not np.array_equal(np.float32(got), np.float32(expected)):
        raise AssertionError(f"prepared {wt.name} dot ({k.isa}) gave {got}, Kernels gave {expected}")
    return PreparedDot(k.isa, wt, n, rows, call)   # the cffi buffers in call keep the arrays alive


@dataclass
class PreparedPanel:
    """A timed-call-ready panel (the gemm entry): weight_rows rows by tokens activation rows."""
    isa: str
    weight_type: GGMLType
    n: int
    weight_rows: int
    tokens: int
    _call: Callable[[], object]

    def __call__(self) -> None:
        self._call()

    @property
    def macs(self) -> int:
        return self.n * self.weight_rows * self.tokens


def prepare_panel(isa: str, wtype: str, n: int = 1024, weight_rows: int = 16, tokens: int = 32,
                  seed: int = 0) -> PreparedPanel:
    """The engine's prefill panel (16 weight rows by 32 tokens by default), for the variants
    and types with a panel kernel; checked once against Kernels.gemm."""
    k = native.Kernels(isa)
    wt = weight_type(wtype)
    if not k.has_gemm(wt):
        raise UsageError(f"no {wt.name} panel kernel in the {k.isa} table")
    at = GGMLType(native.lib.q35_act_type(int(wt)))
    for t in (wt, at):
        if n <= 0 or n % BLOCK_GEOMETRY[t][0]:
            raise UsageError(f"n must be a positive multiple of {BLOCK_GEOMETRY[t][0]} for {t.name}, got {n}")
    rng = np.random.default_rng(seed)
    w = _weight_rows(wt, weight_rows, n, rng)
    a = np.stack([k.from_float(rng.standard_normal(n).astype(np.float32), at) for _ in range(tokens)])
    fn = native.lib.q35_kernels_for(native.ISAS[k.isa]).gemm[int(wt)]
    out = np.empty((tokens, weight_rows), dtype=np.float32)
    wp, ap = native.ffi.from_buffer("uint8_t[]", w), native.ffi.from_buffer("uint8_t[]", a)
    outp = native.ffi.from_buffer("float[]", out, require_writable=True)

    def call():
        fn(wp, w.shape[1], weight_rows, ap, a.shape[1], tokens, n, outp, weight_rows)
    call()
    expected = k.gemm(w, a, wt, n)
    if not np.array_equal(out, expected):
        raise AssertionError(f"prepared {wt.name} panel ({k.isa}) differs from Kernels.gemm")
    return PreparedPanel(k.isa, wt, n, weight_rows, tokens, call)


def prepare_packed_panel(isa: str, wtype: str, n: int = 1024, tokens: int = 32, seed: int = 0,
                         groups: int = 1) -> PreparedPanel:
    """One repacked group (native.PACK_ROWS interleaved weight rows) by `tokens` activation rows,
    through the variant's gemm_packed, for the types it has one for; or, with groups=2, two groups at
    once through its gemm_packed2 (the prefill product where a table has one). Checked once against
    Kernels.gemm_packed. The prefill product of a session with repacked weights."""
    if groups not in (1, 2):
        raise UsageError(f"a repacked panel takes 1 or 2 groups, not {groups}")
    k = native.Kernels(isa)
    wt = weight_type(wtype)
    if not k.has_packed(wt):
        raise UsageError(f"no repacked {wt.name} product in the {k.isa} table")
    table = native.lib.q35_kernels_for(native.ISAS[k.isa])
    fn = (table.gemm_packed if groups == 1 else table.gemm_packed2)[int(wt)]
    if fn == native.ffi.NULL:
        raise UsageError(f"no two-group repacked {wt.name} product in the {k.isa} table")
    at = GGMLType(native.lib.q35_act_type(int(wt)))
    rows = groups * native.PACK_ROWS
    rng = np.random.default_rng(seed)
    w = native.repack(_weight_rows(wt, rows, n, rng), wt, n)
    a = np.stack([k.from_float(rng.standard_normal(n).astype(np.float32), at) for _ in range(tokens)])
    out = np.empty((tokens, rows), dtype=np.float32)
    wp, ap = native.ffi.from_buffer("uint8_t[]", w), k.prepare_packed(a, wt, n)  # prepared once, as per u-batch
    outp = native.ffi.from_buffer("float[]", out, require_writable=True)

    def call():
        fn(wp, ap, a.shape[1], tokens, n, outp, rows)
    call()
    if not np.array_equal(out, k.gemm_packed(w, a, wt, n)):
        raise AssertionError(f"prepared repacked {wt.name} panel ({k.isa}, {groups} group(s)) differs from "
                             f"Kernels.gemm_packed")
    return PreparedPanel(k.isa, wt, n, rows, tokens, call)

"""The cffi bridge to the C side: CPU features, ISA choice, quantization, kernels.

Every size handed to C is checked here first (dtype, contiguity, block
multiples), since the C code trusts its arguments."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from harness.errors import UsageError
from harness.ggml_types import ACTIVATION_TYPES, BLOCK_GEOMETRY, NATIVE_TYPES, NO_QUANTIZER_TYPES, GGMLType

try:
    from harness._native import ffi, lib
except ImportError as e:  # pragma: no cover - only when the package was not built
    raise ImportError("harness._native is not built: install the package with "
                      "`pip install -e .` (it compiles native/ with cffi)") from e

ISAS = {"scalar": 0, "avx2": 1, "avx512": 2, "neon": 3}
ISA_NAMES = {v: k for k, v in ISAS.items()}


def cpu_features() -> dict:
    """What this CPU has, which ISA variants were compiled in, which can run, and the best."""
    f = ffi.new("q35_cpu_features *")
    lib.q35_cpu_detect(f)
    flags = {name: bool(getattr(f, name)) for name in
             ("avx2", "fma", "f16c", "avxvnni", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16",
              "neon", "dotprod")}
    supported = [n for n, i in ISAS.items() if lib.q35_isa_supported(i)]
    return {
        "flags": flags,
        "compiled": [n for n, i in ISAS.items() if lib.q35_isa_compiled(i)],
        "supported": supported,
        "best": ISA_NAMES[lib.q35_isa_best()],
        # the kernel table each variant runs here: its extensions (avx2+avxvnni, avx512+vnni, ...)
        "tables": {n: ffi.string(lib.q35_kernels_for(ISAS[n]).name).decode() for n in supported},
    }


ISA_ENV = "HARNESS_ISA"


def resolve_isa(isa: str = "auto") -> str:
    """'auto' -> $HARNESS_ISA if set (how the tests run with a variant forced), else the best
    variant; a named one must be compiled in and runnable here."""
    source = ""
    if isa == "auto":
        isa = os.environ.get(ISA_ENV, "auto") or "auto"
        if isa == "auto":
            return ISA_NAMES[lib.q35_isa_best()]
        source = f" (from {ISA_ENV})"
    if isa not in ISAS:
        raise UsageError(f"unknown ISA {isa!r}{source} (choose from auto, {', '.join(ISAS)})")
    if not lib.q35_isa_compiled(ISAS[isa]):
        raise UsageError(f"ISA variant {isa!r}{source} is not compiled into this build "
                         f"(compiled: {', '.join(cpu_features()['compiled'])})")
    if not lib.q35_isa_supported(ISAS[isa]):
        raise UsageError(f"this CPU cannot run the {isa!r} variant{source} "
                         f"(supported here: {', '.join(cpu_features()['supported'])})")
    return isa


# ----------------------------------------------------------------------------
# quantization formats

def _f32_rows(x: np.ndarray, t: GGMLType) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        x = x.reshape(1, -1) if x.ndim == 1 else x.reshape(-1, x.shape[-1])
    elems = BLOCK_GEOMETRY[t][0]
    if x.shape[1] % elems:
        raise UsageError(f"{t.name} needs rows of a multiple of {elems} values, got {x.shape[1]}")
    return x


def native_type(t, what: str) -> GGMLType:
    """t as a GGMLType the C side has `what` for; UsageError for the types it has no code for yet
    (C is never handed a type id it does not know)."""
    t = GGMLType(t)
    if t not in NATIVE_TYPES and t not in ACTIVATION_TYPES:
        raise UsageError(f"no native {what} for {t.name} yet (native types: "
                         f"{', '.join(sorted(x.name for x in NATIVE_TYPES))})")
    return t


def quantize(x: np.ndarray, t: GGMLType, threads: int = 1) -> np.ndarray:
    """float rows [n, k] -> uint8 [n, row_bytes] in the ggml block layout of type t."""
    t = native_type(t, "quantizer")
    x = _f32_rows(x, t)
    n, k = x.shape
    elems, bsize = BLOCK_GEOMETRY[t]
    out = np.empty((n, k // elems * bsize), dtype=np.uint8)

    if t in NO_QUANTIZER_TYPES:
        raise UsageError(f"no quantizer for {t.name} (a grid search under an importance matrix); "
                         "random_blocks gives random valid codes")

    def run(r0: int, r1: int) -> None:
        if r1 > r0:
            rc = lib.q35_quantize(int(t), ffi.from_buffer("float[]", x[r0:r1]),
                                  ffi.from_buffer("uint8_t[]", out[r0:r1], require_writable=True), r1 - r0, k)
            if rc != 0:
                raise UsageError(f"cannot quantize to {t.name}")

    threads = max(1, min(threads, n))
    if threads == 1:
        run(0, n)
    else:  # cffi releases the GIL during the call, so rows quantize in parallel
        bounds = np.linspace(0, n, threads + 1).astype(int)
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(run, bounds[:-1], bounds[1:]))
    return out


def random_blocks(t: GGMLType, n_rows: int, n_cols: int, std: float, seed: int) -> np.ndarray:
    """n_rows rows of n_cols weights of a codebook or ternary type as random valid blocks, uint8
    [n_rows, row_bytes], their values with about the standard deviation std (q35_random_blocks)."""
    t = native_type(t, "random block generator")
    elems, bsize = BLOCK_GEOMETRY[t]
    if n_rows < 0 or n_cols <= 0 or n_cols % elems:
        raise UsageError(f"{t.name} rows hold whole blocks of {elems} values; {n_cols} columns do not")
    out = np.empty((n_rows, n_cols // elems * bsize), dtype=np.uint8)
    rc = lib.q35_random_blocks(int(t), seed & (2**64 - 1), float(std),
                               ffi.from_buffer("uint8_t[]", out, require_writable=True), n_rows * (n_cols // elems))
    if rc != 0:
        raise UsageError(f"no random blocks for {t.name} (codebook and ternary types only) or bad std {std}")
    return out


def dequantize(raw: np.ndarray, t: GGMLType, n_cols: int) -> np.ndarray:
    """uint8 rows in the layout of type t -> float32 [n_rows, n_cols] (the C dequantizer; types
    without C code are harness.model.dequant's)."""
    t = GGMLType(t)
    elems, bsize = BLOCK_GEOMETRY[t]
    if n_cols % elems:
        raise UsageError(f"{t.name} rows need a multiple of {elems} values, got {n_cols}")
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    rb = n_cols // elems * bsize
    if raw.size % rb:
        raise UsageError(f"{raw.size} bytes is not a whole number of {t.name} rows of {n_cols} values")
    n = raw.size // rb
    if t not in NATIVE_TYPES:
        raise UsageError(f"{t.name} has no C dequantizer (harness.model.dequant has one)")
    out = np.empty((n, n_cols), dtype=np.float32)
    lib.q35_dequantize(int(t), ffi.from_buffer("uint8_t[]", raw),
                       ffi.from_buffer("float[]", out, require_writable=True), n, n_cols)
    return out


# ----------------------------------------------------------------------------
# repacked weights (native/src/repacked.h)

PACK_ROWS = lib.Q35_PACK_ROWS


def repack(w_rows: np.ndarray, weight_type: GGMLType, n: int) -> np.ndarray:
    """Weight rows (uint8 [rows, row_bytes]) in the repacked layout of their type: groups of
    PACK_ROWS interleaved rows. Types without a repacked layout and shapes that do not fit one
    (rows a multiple of PACK_ROWS, n of the type's super-block) are a UsageError."""
    wt = native_type(weight_type, "repacked layout")
    w = np.ascontiguousarray(w_rows, dtype=np.uint8)
    elems, bsize = BLOCK_GEOMETRY[wt]
    if w.ndim != 2 or n % elems or w.shape[1] != n // elems * bsize:
        raise UsageError(f"weight rows of {n} {wt.name} values are uint8 [rows, {n // elems * bsize}], "
                         f"got {list(w.shape)}")
    size = int(lib.q35_packed_bytes(int(wt), w.shape[0], n))
    if size == 0:
        raise UsageError(f"no repacked layout for {w.shape[0]} {wt.name} rows of {n} values (rows a multiple "
                         f"of {PACK_ROWS}, and a type with a layout)")
    out = np.empty(size, dtype=np.uint8)
    rc = lib.q35_repack(int(wt), ffi.from_buffer("uint8_t[]", w), w.shape[0], n,
                        ffi.from_buffer("uint8_t[]", out, require_writable=True))
    assert rc == 0
    return out


# kernels of one ISA variant

class Kernels:
    """The kernel table of one ISA variant, callable on numpy arrays."""

    def __init__(self, isa: str = "auto"):
        self.isa = resolve_isa(isa)
        self._k = lib.q35_kernels_for(ISAS[self.isa])
        assert self._k != ffi.NULL

    def dot_f32(self, a: np.ndarray, b: np.ndarray) -> float:
        a = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
        b = np.ascontiguousarray(b, dtype=np.float32).reshape(-1)
        if a.size != b.size:
            raise UsageError(f"dot of {a.size} and {b.size} values")
        return self._k.dot_f32(ffi.from_buffer("float[]", a), ffi.from_buffer("float[]", b), a.size)

    def from_float(self, x: np.ndarray, act_type: GGMLType) -> np.ndarray:
        """Convert activations to an activation format (F32, F16, BF16, Q8_0, Q8_1, Q8_K)."""
        t = native_type(act_type, "activation converter")
        fn = self._k.from_float[int(t)]
        if fn == ffi.NULL:
            raise UsageError(f"no {t.name} activation converter")
        x = _f32_rows(x, t).reshape(-1)
        elems, bsize = BLOCK_GEOMETRY[t]
        out = np.empty(x.size // elems * bsize, dtype=np.uint8)
        fn(ffi.from_buffer("float[]", x), ffi.from_buffer("uint8_t[]", out, require_writable=True), x.size)
        return out

    def vec_dot(self, w: np.ndarray, a: np.ndarray, weight_type: GGMLType, n: int) -> float:
        """Dot of one weight row (weight_type) with one activation row in the paired format."""
        wt = native_type(weight_type, "dot product")
        at = GGMLType(lib.q35_act_type(int(wt)))
        fn = self._k.vec_dot[int(wt)]
        if fn == ffi.NULL:
            raise UsageError(f"no {wt.name} dot product")
        w = np.ascontiguousarray(w, dtype=np.uint8).reshape(-1)
        a = np.ascontiguousarray(a, dtype=np.uint8).reshape(-1)
        for arr, t in ((w, wt), (a, at)):
            elems, bsize = BLOCK_GEOMETRY[t]
            if n % elems or arr.size != n // elems * bsize:
                raise UsageError(f"a {t.name} row of {n} values has {n // elems * bsize} bytes, got {arr.size}")
        return fn(ffi.from_buffer("uint8_t[]", w), ffi.from_buffer("uint8_t[]", a), n)

    def vec_dot4(self, w: np.ndarray, a_rows: np.ndarray, weight_type: GGMLType, n: int) -> np.ndarray:
        """Dots of one weight row with 4 activation rows (uint8 [4, row_bytes], contiguous) -> float32 [4]."""
        wt = native_type(weight_type, "dot product")
        at = GGMLType(lib.q35_act_type(int(wt)))
        fn = self._k.vec_dot4[int(wt)]
        if fn == ffi.NULL:
            raise UsageError(f"no {wt.name} dot product of 4 rows")
        w = np.ascontiguousarray(w, dtype=np.uint8).reshape(-1)
        a_rows = np.ascontiguousarray(a_rows, dtype=np.uint8)
        for t in (wt, at):
            if n % BLOCK_GEOMETRY[t][0]:
                raise UsageError(f"a {t.name} row needs a multiple of {BLOCK_GEOMETRY[t][0]} values, got {n}")
        wb = n // BLOCK_GEOMETRY[wt][0] * BLOCK_GEOMETRY[wt][1]
        ab = n // BLOCK_GEOMETRY[at][0] * BLOCK_GEOMETRY[at][1]
        if w.size != wb:
            raise UsageError(f"a {wt.name} row of {n} values has {wb} bytes, got {w.size}")
        if a_rows.ndim != 2 or a_rows.shape != (4, ab):
            raise UsageError(f"4 {at.name} rows of {n} values are uint8 [4, {ab}], got {list(a_rows.shape)}")
        out = np.empty(4, dtype=np.float32)
        fn(ffi.from_buffer("uint8_t[]", w), ffi.from_buffer("uint8_t[]", a_rows), ab, n,
           ffi.from_buffer("float[]", out, require_writable=True))
        return out

    def has_gemm(self, weight_type: GGMLType) -> bool:
        """Whether this variant has a register-tiled panel kernel for weight_type."""
        t = GGMLType(weight_type)
        return t in NATIVE_TYPES and self._k.gemm[int(t)] != ffi.NULL

    def gemm(self, w_rows: np.ndarray, a_rows: np.ndarray, weight_type: GGMLType, n: int) -> np.ndarray:
        """The panel of dots of weight rows (uint8 [nr, row_bytes]) with activation rows in the
        paired format (uint8 [nt, row_bytes]) -> float32 [nt, nr]."""
        wt = native_type(weight_type, "panel kernel")
        at = GGMLType(lib.q35_act_type(int(wt)))
        fn = self._k.gemm[int(wt)]
        if fn == ffi.NULL:
            raise UsageError(f"no {wt.name} panel kernel in the {self.isa} table")
        rows = {}
        for name, arr, t in (("weight", w_rows, wt), ("activation", a_rows, at)):
            elems, bsize = BLOCK_GEOMETRY[t]
            arr = np.ascontiguousarray(arr, dtype=np.uint8)
            if n % elems or arr.ndim != 2 or arr.shape[1] != n // elems * bsize or arr.shape[0] < 1:
                raise UsageError(f"{name} rows of {n} {t.name} values are uint8 [rows, {n // elems * bsize}], "
                                 f"got {list(arr.shape)}")
            rows[name] = arr
        w, a = rows["weight"], rows["activation"]
        out = np.empty((a.shape[0], w.shape[0]), dtype=np.float32)
        fn(ffi.from_buffer("uint8_t[]", w), w.shape[1], w.shape[0], ffi.from_buffer("uint8_t[]", a), a.shape[1],
           a.shape[0], n, ffi.from_buffer("float[]", out, require_writable=True), w.shape[0])
        return out

    def has_packed(self, weight_type: GGMLType) -> bool:
        """Whether this variant has a product of repacked weight_type weights (gemm_packed)."""
        t = GGMLType(weight_type)
        return t in NATIVE_TYPES and self._k.gemm_packed[int(t)] != ffi.NULL

    def prepare_packed(self, a: np.ndarray, weight_type: GGMLType, n: int):
        """A cffi buffer of a copy of activation rows a (uint8 [nt, row_bytes], checked by the
        caller) as this variant's repacked product of weight_type takes them (prepare_packed,
        once per u-batch in a session; the rows unchanged where the variant has none)."""
        prep = self._k.prepare_packed[int(weight_type)]
        if prep == ffi.NULL:
            return ffi.from_buffer("uint8_t[]", a)
        copy = np.array(a, dtype=np.uint8, order="C", copy=True)
        buf = ffi.from_buffer("uint8_t[]", copy, require_writable=True)
        prep(buf, copy.shape[1], copy.shape[0], n)
        return buf

    def gemm_packed(self, packed: np.ndarray, a_rows: np.ndarray, weight_type: GGMLType, n: int) -> np.ndarray:
        """The product of weights repacked by `repack` (uint8, all groups of PACK_ROWS rows) with
        activation rows in the paired format (uint8 [nt, row_bytes]) -> float32 [nt, rows]."""
        wt = native_type(weight_type, "repacked product")
        at = GGMLType(lib.q35_act_type(int(wt)))
        fn = self._k.gemm_packed[int(wt)]
        if fn == ffi.NULL:
            raise UsageError(f"no repacked {wt.name} product in the {self.isa} table")
        group = int(lib.q35_packed_bytes(int(wt), PACK_ROWS, n))
        packed = np.ascontiguousarray(packed, dtype=np.uint8).reshape(-1)
        if group == 0 or packed.size == 0 or packed.size % group:
            raise UsageError(f"repacked {wt.name} rows of {n} values come in groups of {group} bytes, "
                             f"got {packed.size}")
        elems, bsize = BLOCK_GEOMETRY[at]
        a = np.ascontiguousarray(a_rows, dtype=np.uint8)
        if a.ndim != 2 or a.shape[1] != n // elems * bsize or a.shape[0] < 1:
            raise UsageError(f"activation rows of {n} {at.name} values are uint8 [rows, {n // elems * bsize}], "
                             f"got {list(a.shape)}")
        groups = packed.size // group
        out = np.empty((a.shape[0], groups * PACK_ROWS), dtype=np.float32)
        pp = ffi.from_buffer("uint8_t[]", packed)
        ap = self.prepare_packed(a, wt, n)
        op = ffi.from_buffer("float[]", out, require_writable=True)
        for g in range(groups):
            fn(pp + g * group, ap, a.shape[1], a.shape[0], n, op + g * PACK_ROWS, out.shape[1])
        return out

    # elementwise / row float kernels: each returns a new array, the inputs are not modified

    def _f32(self, x) -> np.ndarray:
        return np.array(x, dtype=np.float32, copy=True).reshape(-1)

    def _call_inplace(self, name: str, x: np.ndarray, *args):
        getattr(self._k, name)(ffi.from_buffer("float[]", x, require_writable=True), *args)
        return x

    def _same_size(self, *arrays: np.ndarray) -> None:
        if len({a.size for a in arrays}) != 1:
            raise UsageError(f"arrays of different sizes {[a.size for a in arrays]}")

    def silu(self, x) -> np.ndarray:
        x = self._f32(x)
        return self._call_inplace("silu_f32", x, x.size)

    def swiglu(self, g, u) -> np.ndarray:
        g, u = self._f32(g), self._f32(u)
        self._same_size(g, u)
        return self._call_inplace("swiglu_f32", g, ffi.from_buffer("float[]", u), g.size)

    def axpy(self, y, a: float, x) -> np.ndarray:
        y, x = self._f32(y), self._f32(x)
        self._same_size(y, x)
        return self._call_inplace("axpy_f32", y, float(a), ffi.from_buffer("float[]", x), y.size)

    def fmadd(self, acc, a, b) -> np.ndarray:
        acc, a, b = self._f32(acc), self._f32(a), self._f32(b)
        self._same_size(acc, a, b)
        return self._call_inplace("fmadd_f32", acc, ffi.from_buffer("float[]", a), ffi.from_buffer("float[]", b),
                                  acc.size)

    def scale(self, x, a: float) -> np.ndarray:
        x = self._f32(x)
        return self._call_inplace("scale_f32", x, float(a), x.size)

    def rmsnorm(self, x, w, eps: float) -> np.ndarray:
        x, w = self._f32(x), self._f32(w)
        self._same_size(x, w)
        y = np.empty_like(x)
        self._k.rmsnorm_f32(ffi.from_buffer("float[]", x), ffi.from_buffer("float[]", w),
                            ffi.from_buffer("float[]", y, require_writable=True), x.size, float(eps))
        return y

    def l2norm(self, x, eps: float) -> np.ndarray:
        x = self._f32(x)
        return self._call_inplace("l2norm_f32", x, x.size, float(eps))

    def rope(self, x, cos, sin) -> np.ndarray:
        """NeoX rotation of the first 2*len(cos) values of x: pairs (i, i + len(cos))."""
        x, cs = self._f32(x), np.concatenate([self._f32(cos), self._f32(sin)])
        if cs.size % 2 or cs.size > x.size or len(cos) != len(sin):
            raise UsageError(f"rope of {x.size} values with {len(cos)} cos / {len(sin)} sin")
        return self._call_inplace("rope_f32", x, ffi.from_buffer("float[]", cs), cs.size)

    def softmax(self, x) -> np.ndarray:
        x = self._f32(x)
        return self._call_inplace("softmax_f32", x, x.size)

    def sigmoid_mul(self, x, g) -> np.ndarray:
        x, g = self._f32(x), self._f32(g)
        self._same_size(x, g)
        return self._call_inplace("sigmoid_mul_f32", x, ffi.from_buffer("float[]", g), x.size)

    def deltanet(self, algo: str, q, k, v, g, beta, state) -> tuple[np.ndarray, np.ndarray]:
        """One value head of the gated delta rule: q, k [T, Sk], v [T, Sv], g, beta [T], state [Sk, Sv]
        -> (o [T, Sv], new state). algo: recurrent | fused | chunked."""
        algos = {"recurrent": lib.Q35_DN_RECURRENT, "fused": lib.Q35_DN_FUSED, "chunked": lib.Q35_DN_CHUNKED}
        if algo not in algos:
            raise UsageError(f"delta-net algorithm {algo!r}: one of {', '.join(algos)}")
        q, k, v = (np.ascontiguousarray(a, dtype=np.float32) for a in (q, k, v))
        g, beta = self._f32(g), self._f32(beta)
        S = np.array(state, dtype=np.float32, copy=True)
        T, Sk = q.shape
        Sv = v.shape[1]
        if k.shape != (T, Sk) or v.shape != (T, Sv) or g.size != T or beta.size != T or S.shape != (Sk, Sv):
            raise UsageError("delta-net shapes: q, k [T, Sk], v [T, Sv], g, beta [T], state [Sk, Sv]")
        o = np.empty((T, Sv), dtype=np.float32)
        fp = lambda a, w=False: ffi.from_buffer("float[]", a, require_writable=w)  # noqa: E731
        h = ffi.new("q35_dn_head *", {"q": fp(q), "k": fp(k), "v": fp(v), "g": fp(g), "beta": fp(beta),
                                      "ldqk": Sk, "ldv": Sv, "ldgb": 1, "ldo": Sv, "S": fp(S, True),
                                      "o": fp(o, True), "T": T, "Sk": Sk, "Sv": Sv})
        if lib.q35_deltanet_head(ISAS[self.isa], algos[algo], h) != 0:
            raise UsageError(f"delta-net head with Sk={Sk}, Sv={Sv} not supported (1..512)")
        return o, S


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

"""Inputs and numpy rules for the kernel tests: the weight types with dot kernels, row lengths per
type, activation and weight rows shaped like a model's, ggml's activation formats in numpy, and
which ISA variant a filled kernel-table entry comes from."""
import numpy as np

from harness import native
from harness.model.dequant import DEQUANTIZERS
from harness.ggml_types import BLOCK_GEOMETRY, NO_QUANTIZER_TYPES, GGMLType

T = GGMLType

WEIGHT_TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_XS, T.MXFP4, T.NVFP4, T.Q4_1, T.Q5_0, T.Q5_1,
                T.IQ4_NL, T.Q2_K, T.Q3_K, T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ3_XXS, T.IQ3_S, T.IQ1_S, T.IQ1_M, T.TQ1_0,
                T.TQ2_0]
LENGTHS = (256, 512, 4096, 2560, 9216)
FLOAT_TAILS = (1, 7, 37, 1001)  # float rows have no blocks: lengths that exercise the SIMD tails


def act_type(wt: GGMLType) -> GGMLType:
    return GGMLType(native.lib.q35_act_type(int(wt)))


def dequant_q8_k(raw: np.ndarray) -> np.ndarray:
    """Q8_K blocks (292 B: d f32 @0, qs int8[256] @4, bsums int16[16] @260) -> float32."""
    b = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, 292)
    d = b[:, 0:4].copy().view(np.float32)
    return (d * b[:, 4:260].view(np.int8).astype(np.float32)).reshape(-1)


def dequant_q8_1(raw: np.ndarray) -> np.ndarray:
    """Q8_1 blocks (36 B: d f16 @0, s f16 @2, qs int8[32] @4) -> float32 d * q."""
    b = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, 36)
    d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
    return (d * b[:, 4:].view(np.int8).astype(np.float32)).reshape(-1)


def dequant_act(raw: np.ndarray, t: GGMLType) -> np.ndarray:
    if t == T.Q8_K:
        return dequant_q8_k(raw)
    return dequant_q8_1(raw) if t == T.Q8_1 else DEQUANTIZERS[t](raw)


def exact_dot(w: np.ndarray, wt: GGMLType, a: np.ndarray, at: GGMLType) -> tuple[float, float]:
    """The dot as the formats define it, in float64, and the sum of |products| (the rounding scale).
    Q8_1 carries s = f16(d * sum q) for the weights' mins (Q4_1, Q5_1): ggml's dot uses that stored s,
    not d * sum q, so the min term is m * s per block."""
    prod = DEQUANTIZERS[wt](w).astype(np.float64) * dequant_act(a, at).astype(np.float64)
    want, mag = float(prod.sum()), float(np.abs(prod).sum())
    if at == T.Q8_1:
        ab = np.ascontiguousarray(a, dtype=np.uint8).reshape(-1, 36)
        d = ab[:, 0:2].copy().view(np.float16).astype(np.float64).reshape(-1)
        s = ab[:, 2:4].copy().view(np.float16).astype(np.float64).reshape(-1)
        qsum = ab[:, 4:].view(np.int8).astype(np.float64).sum(axis=1)
        m = np.ascontiguousarray(w, dtype=np.uint8).reshape(d.size, -1)[:, 2:4].copy().view(np.float16)
        want += float((m.astype(np.float64).reshape(-1) * (s - d * qsum)).sum())
    return want, mag


def q8_k_rule(x: np.ndarray) -> np.ndarray:
    """ggml's quantize_row_q8_K in numpy float32 arithmetic, as bytes."""
    out = np.zeros((x.size // 256, 292), np.uint8)
    for b, xb in enumerate(x.reshape(-1, 256)):
        ax = np.abs(xb)
        if ax.max() == 0:
            continue
        mx = xb[int(np.argmax(ax))]                  # argmax: the first of equal |x|, with its sign
        iscale = np.float32(-127) / mx
        q = np.minimum(np.rint(iscale * xb), 127).astype(np.int8)   # rint: half to even
        out[b, 0:4] = np.array([np.float32(1) / iscale], np.float32).view(np.uint8)
        out[b, 4:260] = q.view(np.uint8)
        out[b, 260:] = q.astype(np.int16).reshape(16, 16).sum(axis=1).astype(np.int16).view(np.uint8)
    return out.reshape(-1)


def bf16_rule(x: np.ndarray) -> np.ndarray:
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def activation_row(rng, n):
    """Roughly like LLM activations: Gaussian with a few large outliers."""
    x = rng.standard_normal(n).astype(np.float32)
    x[rng.integers(0, n, max(1, n // 200))] *= 20
    return x


def weight_row(rng, n):
    """Gaussian with a scale that changes every 32 values."""
    scale = rng.uniform(0.2, 3.0, (n + 31) // 32).repeat(32)[:n]
    return (rng.standard_normal(n) * scale * 0.05).astype(np.float32)


def quantized_row(rng, n, wt):
    """One weight row of type wt: weight_row quantized, or random valid codes of about its spread for
    the types without a quantizer (the IQ1 / IQ2 / IQ3 codebooks)."""
    if wt in NO_QUANTIZER_TYPES:
        return native.random_blocks(wt, 1, n, 0.05, int(rng.integers(0, 2**63)))[0]
    return native.quantize(weight_row(rng, n), wt)[0]


def lengths(wt):
    elems = max(BLOCK_GEOMETRY[wt][0], BLOCK_GEOMETRY[act_type(wt)][0])
    ns = [n for n in LENGTHS if n % elems == 0]
    if elems == 1:
        ns += list(FLOAT_TAILS)
    return ns


CHAIN = {"avx512": ["avx512", "avx2", "scalar"], "avx2": ["avx2", "scalar"],
         "neon": ["neon", "scalar"], "scalar": ["scalar"]}


def source_of(isa: str, field: str, wt: GGMLType) -> str:
    """The variant whose own entry the filled table of isa holds (a filled gap
    has the same function pointer as the variant below)."""
    chain = CHAIN[isa]
    ptrs = [native.ffi.cast("uintptr_t", getattr(native.lib.q35_kernels_for(native.ISAS[v]), field)[int(wt)])
            for v in chain]
    for i, v in enumerate(chain):
        if i + 1 == len(chain) or int(ptrs[i]) != int(ptrs[i + 1]):
            return v

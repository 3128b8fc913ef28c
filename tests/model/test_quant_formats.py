"""The quantization formats in native/src/quant.c.

Our dequantizer is checked bit for bit against an independent one (gguf-py's
numpy code), the quantizers against named round-trip error bounds, and the
fp16 / bf16 conversions against numpy.
"""
import threading
import zlib

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as GT

from harness._native import ffi, lib

# name: (ggml type id, elements per block, bytes per block)
TYPES = {
    "F32": (0, 1, 4),
    "F16": (1, 1, 2),
    "BF16": (30, 1, 2),
    "Q4_0": (2, 32, 18),
    "Q8_0": (8, 32, 34),
    "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176),
    "Q6_K": (14, 256, 210),
    "Q8_K": (15, 256, 292),
    "IQ4_XS": (23, 256, 136),
    "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24),
    "IQ4_NL": (20, 32, 18),
    "Q2_K": (10, 256, 84),
    "Q3_K": (11, 256, 110),
    "IQ2_XXS": (16, 256, 66),
    "IQ2_XS": (17, 256, 74),
    "IQ2_S": (22, 256, 82),
    "IQ3_XXS": (18, 256, 98),
    "IQ3_S": (21, 256, 110),
    "IQ1_S": (19, 256, 50),
    "IQ1_M": (29, 256, 56),
    "TQ1_0": (34, 256, 54),
    "TQ2_0": (35, 256, 66),
}
STORED = [name for name in TYPES if name != "Q8_K"]  # the weight formats
NO_QUANTIZER = {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M"}   # random codes only
QUANTIZED = [name for name in STORED if name not in NO_QUANTIZER]

# Round-trip relative RMS error, rms(x - deq) / rms(x), on Gaussian data
# (gaussian_rows(8, 4096, seed=1)). Measured with quant.c as written:
#   F32 0, F16 0.00021, BF16 0.0017, Q8_0 0.0054, Q8_K 0.0070, Q6_K 0.0173,
#   Q5_K 0.0348, Q4_K 0.0709, IQ4_XS 0.0743, Q4_0 0.0862, Q4_1 0.0783, Q5_0 0.0429, Q5_1 0.0380,
#   IQ4_NL 0.0736, Q3_K 0.156, Q2_K 0.330 (Q2_K / Q3_K: a plain scale per sub-block, no search as
#   in ggml's make_qkx2 / make_q3_quants; good enough for synthetic weights).
# (ggml, for comparison: q8_0 ~0.004-0.005, q6_K 0.018, q5_K 0.035,
# q4_K 0.07, iq4_xs ~0.065-0.075, q4_0 0.1.) Bounds: measured + ~20 %.
MAX_REL_RMS = {
    "F32": 0.0,
    "F16": 0.00026,
    "BF16": 0.0021,
    "Q8_0": 0.0065,
    "Q8_K": 0.0085,
    "Q6_K": 0.021,
    "Q5_K": 0.042,
    "Q4_K": 0.085,
    "IQ4_XS": 0.089,
    "Q4_0": 0.104,
    "Q4_1": 0.094,
    "Q5_0": 0.052,
    "Q5_1": 0.046,
    "IQ4_NL": 0.089,
    "Q3_K": 0.19,
    "Q2_K": 0.40,
}

SHAPES = [(4, 512), (3, 768), (1, 4096)]


# --------------------------------------------------------------------------- helpers


def quantize(name: str, x: np.ndarray) -> np.ndarray:
    t, elems, nbytes = TYPES[name]
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, cols = x.shape
    buf = np.zeros(rows * (cols // elems) * nbytes, dtype=np.uint8)
    rc = lib.q35_quantize(t, ffi.from_buffer("float[]", x), ffi.from_buffer("uint8_t[]", buf), rows, cols)
    assert rc == 0
    return buf


def dequantize(name: str, buf: np.ndarray, shape) -> np.ndarray:
    t = TYPES[name][0]
    y = np.empty(shape, dtype=np.float32)
    rc = lib.q35_dequantize(t, ffi.from_buffer("uint8_t[]", buf), ffi.from_buffer("float[]", y), *shape)
    assert rc == 0
    return y


def gaussian_rows(rows: int, cols: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)


def outlier_rows(rows: int, cols: int, seed: int) -> np.ndarray:
    """Gaussian with ~1% of the values blown up 20-100x, some rows all positive."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    mask = rng.random((rows, cols)) < 0.01
    x[mask] *= rng.uniform(20, 100, mask.sum()).astype(np.float32)
    x[0] = np.abs(x[0]) + 0.5  # an all-positive row exercises the min-clamp paths
    return x


def mixed_scale_rows(rows: int, cols: int, seed: int) -> np.ndarray:
    """Blocks of very different magnitudes (1e-4 .. 1e2), a zero block, a constant block."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    scales = 10.0 ** rng.uniform(-4, 2, (rows, cols // 32, 1))
    x = (x.reshape(rows, cols // 32, 32) * scales).reshape(rows, cols).astype(np.float32)
    x[0, :256] = 0.0
    x[-1, -256:] = -0.75
    return x


DATA = {"gaussian": gaussian_rows, "outliers": outlier_rows, "mixed": mixed_scale_rows}


def rel_rms(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((x.astype(np.float64) - y) ** 2) / np.mean(x.astype(np.float64) ** 2)))


# --------------------------------------------------------------------------- block sizes / errors


@pytest.mark.parametrize("name", list(TYPES))
def test_block_sizes(name):
    t, elems, nbytes = TYPES[name]
    assert lib.q35_type_block_elems(t) == elems
    assert lib.q35_type_block_bytes(t) == nbytes
    assert gguf.GGML_QUANT_SIZES[GT[name]] == (elems, nbytes)


@pytest.mark.parametrize("t", [-1, 4, 5, 24, 31, 99, 1000])   # 4, 5, 31: ggml ids no longer in use; 24: I8
def test_unknown_types_have_no_size(t):
    assert lib.q35_type_block_elems(t) == 0
    assert lib.q35_type_block_bytes(t) == 0


def test_error_codes():
    x = np.zeros(1024, dtype=np.float32)
    buf = np.zeros(4096, dtype=np.uint8)
    px, pb = ffi.from_buffer("float[]", x), ffi.from_buffer("uint8_t[]", buf)
    for fn, a, b in ((lib.q35_quantize, px, pb), (lib.q35_dequantize, pb, px)):
        assert fn(99, a, b, 1, 256) == -1  # unknown type
        assert fn(4, a, b, 1, 256) == -1
        assert fn(12, a, b, 1, 0) == -1  # ncols <= 0
        assert fn(12, a, b, 1, -256) == -1
        assert fn(12, a, b, 1, 100) == -1  # not a multiple of 256
        assert fn(12, a, b, 1, 288) == -1
        assert fn(2, a, b, 1, 48) == -1  # not a multiple of 32
        assert fn(12, a, b, -1, 256) == -1  # nrows < 0
        assert fn(12, a, b, 0, 256) == 0  # nothing to do is fine
        assert fn(0, a, b, 1, 7) == 0  # F32 takes any width
        assert fn(2, a, b, 2, 64) == 0


# --------------------------------------------------------------------------- bit-exact dequantization


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", list(DATA))
@pytest.mark.parametrize("name", QUANTIZED)
def test_dequantize_matches_gguf(name, kind, shape):
    if shape[1] % TYPES[name][1]:
        pytest.skip("width not a multiple of the block")
    x = DATA[kind](*shape, seed=zlib.crc32(f"{name}/{kind}/{shape}".encode()))
    buf = quantize(name, x)
    ours = dequantize(name, buf, shape)
    theirs = gguf.quants.dequantize(buf, GT[name]).reshape(shape)
    assert theirs.dtype == np.float32
    assert np.array_equal(ours, theirs)  # bit-identical (no nans can occur here)
    assert np.all(np.isfinite(ours))


@pytest.mark.parametrize("name", STORED)
def test_dequantize_random_bytes_matches_gguf(name):
    """Arbitrary blocks (every scale and quant bit pattern), not only ones we produce."""
    t, elems, nbytes = TYPES[name]
    rng = np.random.default_rng(7)
    nblocks = 64
    buf = rng.integers(0, 256, nblocks * nbytes, dtype=np.uint8)
    # keep the f16 scale fields finite so that both sides compute ordinary numbers
    blocks = buf.reshape(nblocks, nbytes)
    f16_offsets = {"F16": [], "Q4_0": [0], "Q8_0": [0], "Q4_K": [0, 2], "Q5_K": [0, 2],
                   "Q6_K": [208], "IQ4_XS": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "IQ4_NL": [0],
                   "Q2_K": [80, 82], "Q3_K": [108], "IQ2_XXS": [0], "IQ2_XS": [0], "IQ2_S": [0], "IQ3_XXS": [0],
                   "IQ3_S": [0], "IQ1_S": [0], "TQ1_0": [52], "TQ2_0": [64]}.get(name, [])
    for off in f16_offsets:
        blocks[:, off + 1] &= 0xBF  # exponent <= 15: |d| < 2
    if name == "IQ1_M":
        blocks[:, 55] &= 0xBF  # d's top nibble is the top of the last scale word
    if name == "F16":
        buf = (buf.view(np.uint16) & 0xBBFF).view(np.uint8)
    if name in ("F32", "BF16"):
        buf = (buf.view(np.uint16) & 0xBFFF).view(np.uint8)  # no inf / nan
    shape = (1, nblocks * elems)
    ours = dequantize(name, buf, shape)
    theirs = gguf.quants.dequantize(buf, GT[name]).reshape(shape)
    assert np.array_equal(ours, theirs)


# --------------------------------------------------------------------------- quantizer quality


@pytest.mark.parametrize("name", list(MAX_REL_RMS))
def test_round_trip_error(name):
    x = gaussian_rows(8, 4096, seed=1)
    y = dequantize(name, quantize(name, x), x.shape)
    err = rel_rms(x, y)
    assert err <= MAX_REL_RMS[name], f"{name}: rel rms {err:.5f} > {MAX_REL_RMS[name]}"


@pytest.mark.parametrize("name", ["Q4_K", "Q5_K", "Q6_K", "IQ4_XS", "Q8_0", "Q4_0"])
def test_round_trip_is_scale_invariant_enough(name):
    """Tiny and large tensors quantize as well as unit ones (no absolute epsilons)."""
    x = gaussian_rows(2, 2048, seed=3)
    for s in (1e-3, 1e3):
        xs = (x * np.float32(s)).astype(np.float32)
        y = dequantize(name, quantize(name, xs), xs.shape)
        assert rel_rms(xs, y) <= MAX_REL_RMS[name]


@pytest.mark.parametrize("name", list(MAX_REL_RMS))
def test_zero_and_constant_blocks(name):
    elems = max(TYPES[name][1], 256)
    x = np.zeros((3, elems), dtype=np.float32)
    x[1] = 0.5
    x[2] = -2.0
    y = dequantize(name, quantize(name, x), x.shape)
    assert np.array_equal(y[0], x[0])
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y[1:], x[1:], rtol=0.02, atol=0)


@pytest.mark.parametrize("name", ["Q4_K", "Q5_K", "Q6_K", "IQ4_XS", "Q8_K"])
def test_rows_are_independent_and_threads_agree(name):
    """Quantizing rows in separate calls from several threads gives the same bytes."""
    x = outlier_rows(8, 1024, seed=5)
    whole = quantize(name, x)
    parts = [None] * len(x)

    def work(i):
        parts[i] = quantize(name, x[i : i + 1])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(x))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert np.array_equal(np.concatenate(parts), whole)


def test_the_legacy_32_value_types_quantize_like_ggml():
    """Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 have a single, fixed algorithm: gguf-py reproduces ggml's
    exactly, and so do we."""
    for kind, make in DATA.items():
        x = make(4, 512, seed=11)
        for name in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"):
            ref = gguf.quants.quantize(x, GT[name]).reshape(-1)
            assert np.array_equal(quantize(name, x), ref), (name, kind)


def test_the_ternary_types_quantize_like_ggml():
    """TQ1_0 / TQ2_0: d = max |x|, each value rounded to -1, 0, 1, packed as base-3 digits / two-bit
    codes; gguf-py reproduces ggml's quantize_row_tq*_ref, and so do we, byte for byte."""
    for kind, make in DATA.items():
        x = make(4, 512, seed=12)
        for name in ("TQ1_0", "TQ2_0"):
            assert np.array_equal(quantize(name, x), gguf.quants.quantize(x, GT[name]).reshape(-1)), (name, kind)


def test_the_iq_types_have_no_quantizer_but_random_valid_blocks():
    """q35_quantize refuses the IQ1 / IQ2 / IQ3 types; q35_random_blocks gives deterministic random
    blocks whose values have the standard deviation asked for, and refuses other types and bad input."""
    x = np.zeros(256, dtype=np.float32)
    for name in sorted(NO_QUANTIZER) + ["TQ1_0", "TQ2_0"]:
        t, elems, nbytes = TYPES[name]
        buf = np.zeros(64 * nbytes, dtype=np.uint8)
        if name in NO_QUANTIZER:
            assert lib.q35_quantize(t, ffi.from_buffer("float[]", x), ffi.from_buffer("uint8_t[]", buf), 1, 256) == -1
        assert lib.q35_random_blocks(t, 5, 0.02, ffi.from_buffer("uint8_t[]", buf), 64) == 0
        again = np.zeros_like(buf)
        assert lib.q35_random_blocks(t, 5, 0.02, ffi.from_buffer("uint8_t[]", again), 64) == 0
        assert np.array_equal(buf, again)
        values = gguf.quants.dequantize(buf, GT[name]).reshape(-1)
        assert abs(float(np.std(values)) - 0.02) < 0.0005, name       # the scale is one f16 per block
    buf = np.zeros(4096, dtype=np.uint8)
    pb = ffi.from_buffer("uint8_t[]", buf)
    assert lib.q35_random_blocks(12, 5, 0.02, pb, 1) == -1              # Q4_K has a quantizer
    assert lib.q35_random_blocks(16, 5, -1.0, pb, 1) == -1
    assert lib.q35_random_blocks(16, 5, float("nan"), pb, 1) == -1
    assert lib.q35_random_blocks(16, 5, 0.02, pb, -1) == -1


# --------------------------------------------------------------------------- Q8_K


def q8_K_fields(buf: np.ndarray):
    blocks = buf.reshape(-1, 292)
    d = blocks[:, :4].copy().view(np.float32)[:, 0]
    qs = blocks[:, 4:260].copy().view(np.int8).astype(np.int32)
    bsums = blocks[:, 260:].copy().view(np.int16).astype(np.int32)
    return d, qs, bsums


@pytest.mark.parametrize("kind", list(DATA))
def test_q8_K(kind):
    x = DATA[kind](4, 1024, seed=13)
    buf = quantize("Q8_K", x)
    d, qs, bsums = q8_K_fields(buf)
    # bsums are the sums of 16 quants
    assert np.array_equal(bsums, qs.reshape(-1, 16, 16).sum(-1))
    # quants in [-127, 127], never -128
    assert qs.min() >= -127 and qs.max() <= 127
    # quantize_row_q8_K_ref: the largest |x| (signed) goes to -127, d = 1/iscale
    xb = x.reshape(-1, 256)
    imax = np.abs(xb).argmax(1)
    mx = xb[np.arange(len(xb)), imax]
    nz = mx != 0
    iscale = np.float32(-127.0) / mx[nz]
    q = np.minimum(127, np.rint(iscale[:, None] * xb[nz]).astype(np.int32))
    assert np.array_equal(qs[nz], q)
    assert np.array_equal(d[nz], (np.float32(1.0) / iscale).astype(np.float32))
    assert np.all(qs[~nz] == 0) and np.all(d[~nz] == 0)
    # and the dequantizer is d * q
    y = dequantize("Q8_K", buf, x.shape)
    assert np.array_equal(y.reshape(-1, 256), d[:, None] * qs.astype(np.float32))


def test_q8_K_negative_max_and_zero_block():
    x = np.zeros((1, 512), dtype=np.float32)
    x[0, :256] = np.linspace(-3.0, 1.0, 256, dtype=np.float32)
    buf = quantize("Q8_K", x)
    d, qs, bsums = q8_K_fields(buf)
    assert d[0] > 0 and qs[0, 0] == -127  # max is -3: iscale > 0
    x[0, :256] *= -1
    d, qs, _ = q8_K_fields(quantize("Q8_K", x))
    assert d[0] < 0 and qs[0, 0] == -127  # d may be negative
    assert d[1] == 0 and not qs[1].any() and not bsums[1].any()


# --------------------------------------------------------------------------- fp16 / bf16


def f32_bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def fp16_test_values() -> np.ndarray:
    rng = np.random.default_rng(17)
    edge = np.array(
        [0.0, -0.0, 2.0**-24, -(2.0**-24), 2.0**-25, 2.0**-26, 3 * 2.0**-26, 2.0**-25 * 1.0000001,
         2.0**-14, 2.0**-14 * (1 - 2.0**-11), 6.0975552e-05, 65504.0, -65504.0, 65519.996, 65520.0,
         -65520.0, 1e10, 1e-10, 1.0, -1.0, 0.1, 1.0 / 3, np.inf, -np.inf, 3.4028235e38, 1e-45],
        dtype=np.float32,
    )
    # every point exactly halfway between two adjacent finite halves, and
    # the floats just either side of it
    h = np.arange(0, 0x7BFF, dtype=np.uint16).view(np.float16).astype(np.float32)
    h_next = np.arange(1, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float32)
    mid = ((h.astype(np.float64) + h_next) / 2).astype(np.float32)  # exact in f32
    near = np.concatenate([mid, np.nextafter(mid, np.float32(0)), np.nextafter(mid, np.float32(np.inf))])
    # random values spread over (and beyond) the half range, plus raw random bits
    rnd = (rng.standard_normal(20000) * 10.0 ** rng.uniform(-9, 6, 20000)).astype(np.float32)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    vals = np.concatenate([edge, near, rnd, bits])
    return np.concatenate([vals, -vals]).astype(np.float32)


def test_fp32_to_fp16_matches_numpy():
    vals = fp16_test_values()
    ours = np.array([lib.q35_fp32_to_fp16(float(v)) for v in vals], dtype=np.uint16)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = vals.astype(np.float16).view(np.uint16)
    nan = np.isnan(vals)
    assert np.array_equal(ours[~nan], ref[~nan])
    assert np.all(np.isnan(ours[nan].view(np.float16)))
    # the bulk path (q35_quantize F16) is the same conversion
    assert np.array_equal(quantize("F16", vals[None, :]).view(np.uint16)[~nan], ref[~nan])


def test_fp16_to_fp32_all_patterns():
    h = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    ours = np.array([lib.q35_fp16_to_fp32(int(v)) for v in h], dtype=np.float32)
    ref = h.view(np.float16).astype(np.float32)
    nan = np.isnan(ref)
    assert nan.sum() == 2 * 1023
    assert np.array_equal(np.isnan(ours), nan)
    assert np.array_equal(f32_bits(ours[~nan]), f32_bits(ref[~nan]))
    # and through the row dequantizer
    bulk = dequantize("F16", h.view(np.uint8), (1, 65536))[0]
    assert np.array_equal(f32_bits(bulk[~nan]), f32_bits(ref[~nan]))


def bf16_reference(x: np.ndarray) -> np.ndarray:
    """Round to nearest even on the top 16 bits; nan becomes a quiet nan."""
    u = x.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    is_nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(is_nan, (u >> 16) | 0x40, rounded).astype(np.uint16)


def test_fp32_to_bf16_matches_reference():
    rng = np.random.default_rng(19)
    bits = rng.integers(0, 2**32, 50000, dtype=np.uint64).astype(np.uint32)
    # values exactly halfway (low 16 bits 0x8000), and just around it
    halves = (bits & 0xFFFF0000) | 0x8000
    vals = np.concatenate([bits, halves, halves - 1, halves + 1]).view(np.float32)
    edge = np.array([0.0, -0.0, 1.0, np.inf, -np.inf, np.nan, 3.4028235e38, 1e-45, 1e-40], np.float32)
    vals = np.concatenate([edge, vals, fp16_test_values()])
    ours = np.array([lib.q35_fp32_to_bf16(float(v)) for v in vals[:20000]], dtype=np.uint16)
    ref = bf16_reference(vals)
    # cffi passes a float through a Python float: nan payloads may not survive
    nan = np.isnan(vals[:20000])
    assert np.array_equal(ours[~nan], ref[:20000][~nan])
    assert np.all((ours[nan] & 0x7FFF) > 0x7F80)
    # the bulk path sees the exact bits, nan payloads included; gguf-py agrees
    bulk = quantize("BF16", vals[None, :]).view(np.uint16)
    assert np.array_equal(bulk, ref)
    assert np.array_equal(gguf.quants.quantize(vals, GT.BF16).view(np.uint16), ref)


def test_bf16_to_fp32_all_patterns():
    h = np.arange(65536, dtype=np.uint32)
    ours = np.array([lib.q35_bf16_to_fp32(int(v)) for v in h], dtype=np.float32)
    ref = (h << 16).view(np.float32)
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(ours), nan)
    assert np.array_equal(f32_bits(ours[~nan]), f32_bits(ref[~nan]))
    bulk = dequantize("BF16", h.astype(np.uint16).view(np.uint8), (1, 65536))[0]
    assert np.array_equal(f32_bits(bulk), f32_bits(ref))  # exact, nans included

"""Activation converters (from_float) and weight x activation dot products
(vec_dot) of every ISA variant this CPU runs, against numpy in float64."""
import numpy as np
import pytest

from harness import native
from harness.ggml_types import GGMLType

from support.kernel_rows import (LENGTHS, WEIGHT_TYPES, act_type, activation_row, bf16_rule, exact_dot, lengths,
                                 q8_k_rule, quantized_row)

RUNNABLE = native.cpu_features()["supported"]
T = GGMLType
@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("wt", WEIGHT_TYPES, ids=lambda t: t.name)
def test_vec_dot_matches_float64_of_dequantized_rows(isa, wt):
    k = native.Kernels(isa)
    at = act_type(wt)
    rng = np.random.default_rng(int(wt) * 7 + 1)
    for n in lengths(wt):
        for rep in range(3):
            w = quantized_row(rng, n, wt)
            x = activation_row(rng, n)
            if rep == 2 and n >= 512:
                x[:256] = 0.0                      # an all-zero activation block
            a = k.from_float(x, at)
            want, mag = exact_dot(w, wt, a, at)
            got = k.vec_dot(w, a, wt, n)
            assert abs(got - want) <= 1e-5 * mag + 1e-12, (isa, wt.name, n, rep, got, want, mag)


def q8_k_inputs():
    rng = np.random.default_rng(11)
    x = activation_row(rng, 256 * 9)
    blocks = x.reshape(-1, 256)
    blocks[1] = 0.0                                 # all zero: d = 0, zero quants and sums
    blocks[2, 17] = -500.0                          # largest |x| negative: d > 0
    blocks[3, 5], blocks[3, 200] = 900.0, -900.0    # tie in |x|: the first one sets the sign
    blocks[4, 40], blocks[4, 41] = -900.0, 900.0
    blocks[5] *= 1e-30                              # tiny values
    blocks[6] *= 1e6                                # large values
    blocks[7, :] = 3.0                              # constant block: every quant -127
    blocks[8] = np.arange(256) % 100 - 49.5         # max -127 gives iscale 1: every value a .5 tie
    blocks[8, 3] = -127.0
    return x


@pytest.mark.parametrize("isa", RUNNABLE)
def test_from_float_q8_k(isa):
    x = q8_k_inputs()
    want = native.quantize(x, T.Q8_K)[0]
    assert np.array_equal(want, q8_k_rule(x))       # the library's quantizer is ggml's rule
    got = native.Kernels(isa).from_float(x, T.Q8_K)
    # identical bytes: every variant computes the same float product iscale*x and rounds it half
    # to even, so not even exact ties can differ
    assert np.array_equal(got, want), (isa, np.flatnonzero(got != want)[:10])
    blocks = got.reshape(-1, 292)
    d = blocks[:, 0:4].copy().view(np.float32)[:, 0]
    q = blocks[:, 4:260].view(np.int8)
    assert d[1] == 0 and not blocks[1].any()
    assert d[2] > 0 and q[2, 17] == -127            # the extreme element always maps to -127
    assert d[3] < 0 and q[3, 5] == -127 and q[3, 200] == 127
    assert d[4] > 0 and q[4, 40] == -127 and q[4, 41] == 127
    assert d[7] < 0 and (q[7] == -127).all()
    t = np.arange(256) % 100 - 49.5
    assert d[8] == 1 and (q[8][np.arange(256) != 3] == np.rint(t)[np.arange(256) != 3]).all()
    # bsums are the sums of 16 quants
    qs = blocks[:, 4:260].view(np.int8).astype(np.int16).reshape(-1, 16, 16).sum(axis=2)
    assert np.array_equal(blocks[:, 260:].copy().view(np.int16), qs)
    # random rows of several lengths
    rng = np.random.default_rng(12)
    k = native.Kernels(isa)
    for n in LENGTHS:
        x = activation_row(rng, n)
        assert np.array_equal(k.from_float(x, T.Q8_K), native.quantize(x, T.Q8_K)[0]), (isa, n)


def float_inputs():
    rng = np.random.default_rng(13)
    x = np.concatenate([
        rng.standard_normal(1000).astype(np.float32) * np.float32(10.0) ** rng.integers(-8, 5, 1000),
        np.array([0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, 1e6, -1e6, np.inf, -np.inf,
                  6e-8, 3e-8, 2.9e-8, 1e-7, -5.96e-8, 6.1e-5, 1e-40, 3.4e38], np.float32),
        # exact f16 ties: 1 + k*2^-11 (halfway between neighbours), both parities
        (1.0 + np.arange(1, 40, 2) * 2.0 ** -11).astype(np.float32),
        # exact bf16 ties: low 16 bits 0x8000, both parities of bit 16
        np.array([0x3F808000, 0x3F818000, 0xBF808000, 0x40490000 | 0x8000, 0x7F7F8000],
                 np.uint32).view(np.float32),
    ]).astype(np.float32)
    return x


@pytest.mark.parametrize("isa", RUNNABLE)
def test_from_float_f16_bf16_f32(isa):
    k = native.Kernels(isa)
    x = float_inputs()
    assert x.size % 8 != 0                          # the SIMD tails run too
    got = k.from_float(x, T.F16).view(np.uint16)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).view(np.uint16)   # numpy: round to nearest even, overflow to inf
    assert np.array_equal(got, want), (isa, x[got != want], got[got != want], want[got != want])
    got = k.from_float(x, T.BF16).view(np.uint16)
    want = bf16_rule(x)
    assert np.array_equal(got, want), (isa, x[got != want])
    assert np.array_equal(k.from_float(x, T.F32).view(np.float32).view(np.uint32), x.view(np.uint32))
    # NaN stays NaN
    nan = np.full(19, np.nan, np.float32)
    assert np.isnan(k.from_float(nan, T.F16).view(np.float16)).all()
    assert (k.from_float(nan, T.BF16).view(np.uint16) & 0x7FC0 == 0x7FC0).all()
    for n in (1, 8, 16, 17, 4096):
        y = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        assert np.array_equal(k.from_float(y, T.F16).view(np.uint16), y.astype(np.float16).view(np.uint16))
        assert np.array_equal(k.from_float(y, T.BF16).view(np.uint16), bf16_rule(y))


@pytest.mark.parametrize("isa", RUNNABLE)
def test_vec_dot_against_scalar_variant(isa):
    """Each variant agrees with the scalar reference to float rounding (same integer sums)."""
    ref, k = native.Kernels("scalar"), native.Kernels(isa)
    rng = np.random.default_rng(14)
    for wt in WEIGHT_TYPES:
        at = act_type(wt)
        n = 4096
        w = quantized_row(rng, n, wt)
        a = ref.from_float(activation_row(rng, n), at)
        mag = exact_dot(w, wt, a, at)[1]
        assert abs(k.vec_dot(w, a, wt, n) - ref.vec_dot(w, a, wt, n)) <= 1e-5 * mag, (isa, wt.name)

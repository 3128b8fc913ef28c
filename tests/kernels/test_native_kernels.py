"""The C kernels of every ISA variant this CPU runs, against numpy, and the dispatch rules."""
import numpy as np
import pytest

import harness
from harness import native
from harness.model.dequant import dequant_q8_0
from harness.errors import UsageError
from harness.ggml_types import GGMLType

FEATURES = native.cpu_features()
RUNNABLE = FEATURES["supported"]


def test_cpu_features_report():
    f = harness.cpu_features()
    assert "scalar" in f["compiled"] and "scalar" in f["supported"]
    assert f["best"] in f["supported"]
    assert set(f["supported"]) <= set(f["compiled"])
    assert isinstance(f["flags"]["avx2"], bool)
    import platform
    if platform.machine() in ("x86_64", "AMD64"):
        # every x86 build carries the AVX2 and AVX512 variants, chosen at run time
        assert {"avx2", "avx512"} <= set(f["compiled"])
        assert ("avx2" in f["supported"]) == (f["flags"]["avx2"] and f["flags"]["fma"] and f["flags"]["f16c"])


def test_auto_picks_the_best_supported_variant():
    assert native.resolve_isa("auto") == FEATURES["best"]
    order = [i for i in ("avx512", "avx2", "neon", "scalar") if i in RUNNABLE]
    assert FEATURES["best"] == order[0]


def test_forcing_an_unrunnable_variant_is_a_clear_error():
    for isa in native.ISAS:
        if isa not in RUNNABLE:
            with pytest.raises(UsageError, match=f"'{isa}'"):
                native.Kernels(isa)
    with pytest.raises(UsageError, match="unknown ISA 'sse9'"):
        native.Kernels("sse9")


@pytest.mark.parametrize("isa", RUNNABLE)
def test_dot_f32(isa):
    k = native.Kernels(isa)
    rng = np.random.default_rng(1)
    for n in (1, 7, 8, 15, 16, 31, 33, 1000, 4099):
        a, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
        want = float(np.dot(a.astype(np.float64), b.astype(np.float64)))
        scale = float(np.abs(a.astype(np.float64) * b).sum())
        assert abs(k.dot_f32(a, b) - want) <= 1e-6 * scale + 1e-7, (isa, n)


@pytest.mark.parametrize("isa", RUNNABLE)
def test_quantize_row_q8_0_matches_ggml_rule(isa):
    """d = max|x|/127 (stored f16), q = round-half-away(x/d); checked against a numpy
    version of the rule and against dequantization."""
    k = native.Kernels(isa)
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(4096) * rng.uniform(0.01, 10, 4096)).astype(np.float32)
    x[:32] = 0.0                                   # an all-zero block
    q = k.from_float(x, GGMLType.Q8_0)
    blocks = x.reshape(-1, 32)
    d = np.abs(blocks).max(axis=1) / np.float32(127)
    inv = np.where(d > 0, np.float32(1) / np.where(d > 0, d, 1), 0).astype(np.float32)
    t = blocks * inv[:, None]
    want_q = (np.sign(t) * np.floor(np.abs(t) + np.float32(0.5))).astype(np.int8)
    got = q.reshape(-1, 34)
    assert np.array_equal(got[:, 0:2].copy().view(np.float16)[:, 0], d.astype(np.float16))
    mismatches = np.count_nonzero(got[:, 2:].view(np.int8) != want_q)
    assert mismatches <= 2, mismatches             # only exact .5 ties may round differently
    # quants use the unrounded d, dequantization the f16 one: |x - q*d16| <= d/2 + 127|d16 - d|
    err = np.abs(dequant_q8_0(q) - x).reshape(-1, 32).max(axis=1)
    d16 = d.astype(np.float16).astype(np.float32)
    assert (err <= 0.5 * d + 127 * np.abs(d16 - d) + 1e-6).all()


@pytest.mark.parametrize("isa", RUNNABLE)
def test_dot_q8_0_q8_0(isa):
    """Exact integer sums times the f16 scales: equals numpy on the dequantized blocks."""
    k = native.Kernels(isa)
    rng = np.random.default_rng(3)
    for n in (32, 256, 4096):
        w = native.quantize(rng.standard_normal(n).astype(np.float32), 8)
        a = native.quantize(rng.standard_normal(n).astype(np.float32), 8)
        want = float(np.dot(dequant_q8_0(w).astype(np.float64), dequant_q8_0(a)))
        got = k.vec_dot(w, a, GGMLType.Q8_0, n)
        assert abs(got - want) <= 1e-5 * max(1.0, abs(want)), (isa, n, got, want)
    with pytest.raises(UsageError):
        k.vec_dot(w, a[:-1], GGMLType.Q8_0, 4096)


def test_all_variants_agree_with_each_other():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(3001).astype(np.float32), rng.standard_normal(3001).astype(np.float32)
    vals = {isa: native.Kernels(isa).dot_f32(a, b) for isa in RUNNABLE}
    ref = vals["scalar"]
    assert all(abs(v - ref) < 1e-4 for v in vals.values()), vals

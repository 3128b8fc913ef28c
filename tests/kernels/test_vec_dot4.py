"""vec_dot4 (one weight row with 4 activation rows) of every ISA variant this CPU
runs against 4 calls of the same variant's vec_dot: bit for bit where both
entries come from the same variant (the 4-row kernels keep each row's float
operations in the single-row order), else within float rounding."""
import numpy as np
import pytest

from harness import native
from harness.model.dequant import DEQUANTIZERS
from harness.errors import UsageError
from harness.ggml_types import BLOCK_GEOMETRY, GGMLType

from support.kernel_rows import (WEIGHT_TYPES, act_type, activation_row, dequant_act, lengths, source_of,
                                 quantized_row)

RUNNABLE = native.cpu_features()["supported"]
T = GGMLType


def same_source(isa: str, wt: GGMLType) -> bool:
    """vec_dot and vec_dot4 of wt come from the same variant's file."""
    return source_of(isa, "vec_dot", wt) == source_of(isa, "vec_dot4", wt)


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("wt", WEIGHT_TYPES, ids=lambda t: t.name)
def test_vec_dot4_equals_four_vec_dots(isa, wt):
    k = native.Kernels(isa)
    at = act_type(wt)
    rng = np.random.default_rng(int(wt) * 13 + 5)
    exact = same_source(isa, wt)
    for n in lengths(wt) + ([96, 160] if BLOCK_GEOMETRY[at][0] == 32 == BLOCK_GEOMETRY[wt][0] else []):  # odd block counts
        for rep in range(2):
            w = quantized_row(rng, n, wt)
            xs = [activation_row(rng, n) for _ in range(4)]
            if rep == 1 and n >= 512:
                xs[2][:256] = 0.0                     # an all-zero activation block
            a = np.stack([k.from_float(x, at) for x in xs])
            got = k.vec_dot4(w, a, wt, n)
            want = np.array([k.vec_dot(w, a[r], wt, n) for r in range(4)], np.float32)
            if exact:
                assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (isa, wt.name, n, rep, got, want)
            else:
                wd = DEQUANTIZERS[wt](w).astype(np.float64)
                mag = np.array([np.abs(wd * dequant_act(a[r], at)).sum() for r in range(4)])
                assert (np.abs(got.astype(np.float64) - want) <= 1e-6 * mag + 1e-12).all(), (isa, wt.name, n, got, want)


@pytest.mark.parametrize("isa", RUNNABLE)
def test_vec_dot4_strided_rows_and_sizes(isa):
    """Rows at a stride from one buffer (as the engine passes them); size checks."""
    k = native.Kernels(isa)
    rng = np.random.default_rng(3)
    n, wt = 512, T.Q4_K
    w = quantized_row(rng, n, wt)
    a = np.stack([k.from_float(activation_row(rng, n), T.Q8_K) for _ in range(4)])
    want = [k.vec_dot(w, a[r], wt, n) for r in range(4)]
    assert np.array_equal(k.vec_dot4(w, a, wt, n), np.array(want, np.float32)) or not same_source(isa, wt)
    with pytest.raises(UsageError):
        k.vec_dot4(w, a[:3], wt, n)
    with pytest.raises(UsageError):
        k.vec_dot4(w[:-1], a, wt, n)
    with pytest.raises(UsageError):
        k.vec_dot4(w, a.reshape(-1), wt, n)
    with pytest.raises(UsageError):
        k.vec_dot4(w, a, wt, 500)

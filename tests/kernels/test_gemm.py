"""The register-tiled panel kernels (the `gemm` table entries): every value of a panel
equals the same variant's vec_dot of that pair bit for bit, for every panel shape the
engine makes (row and token edges of the tiles, one token for decode, rows too long
for the kernel's stack buffer), so prefill and decode logits never depend on batching."""
import numpy as np
import pytest

from harness import native
from harness.model.dequant import DEQUANTIZERS
from harness.errors import UsageError
from harness.ggml_types import BLOCK_GEOMETRY, GGMLType

from support.kernel_rows import WEIGHT_TYPES, act_type, activation_row, dequant_act, source_of, weight_row, quantized_row

RUNNABLE = native.cpu_features()["supported"]
SHAPES = [(1, 1), (2, 1), (5, 1), (1, 4), (2, 4), (3, 3), (5, 2), (16, 4), (16, 7), (7, 32)]  # (rows, tokens)


def panel_cases():
    cases = [(isa, wt) for isa in RUNNABLE for wt in WEIGHT_TYPES if native.Kernels(isa).has_gemm(wt)]
    return cases or [pytest.param(None, None, marks=pytest.mark.skip(reason="no panel kernel on this CPU"))]


@pytest.mark.parametrize("isa,wt", panel_cases(), ids=lambda v: getattr(v, "name", v))
def test_panel_equals_the_variants_own_dots_bit_for_bit(isa, wt):
    k = native.Kernels(isa)
    at = act_type(wt)
    rng = np.random.default_rng(int(wt) * 7 + 1)
    blk = max(BLOCK_GEOMETRY[wt][0], BLOCK_GEOMETRY[at][0])
    for n in (5 * blk, 1024, 33024):              # odd block count; a usual width; past the stack buffers
        shapes = SHAPES if n < 33024 else [(3, 5)]
        for nr, nt in shapes:
            w = np.stack([quantized_row(rng, n, wt) for _ in range(nr)])
            xs = [activation_row(rng, n) for _ in range(nt)]
            a = np.stack([k.from_float(x, at) for x in xs])
            got = k.gemm(w, a, wt, n)
            want = np.array([[k.vec_dot(w[r], a[t], wt, n) for r in range(nr)] for t in range(nt)], np.float32)
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (isa, wt.name, n, nr, nt)
    # and the dots themselves are right: against float64 on the dequantized values
    wd = DEQUANTIZERS[wt](w).astype(np.float64).reshape(w.shape[0], -1)
    ad = np.stack([dequant_act(a[t], at) for t in range(a.shape[0])])
    mag = np.abs(ad) @ np.abs(wd).T
    assert (np.abs(got - ad @ wd.T) <= 1e-5 * mag + 1e-6).all()


def test_a_variant_with_its_own_dot_never_borrows_a_panel_kernel():
    """A panel kernel taken from the variant below would round differently from this
    variant's own vec_dot, so the table fill never does that."""
    for isa in RUNNABLE:
        for wt in WEIGHT_TYPES:
            if native.Kernels(isa).has_gemm(wt):
                assert source_of(isa, "gemm", wt) == source_of(isa, "vec_dot", wt), (isa, wt.name)


def test_bad_panel_shapes_are_refused():
    isa, wt = next(((i, t) for i in RUNNABLE for t in WEIGHT_TYPES if native.Kernels(i).has_gemm(t)), (None, None))
    if isa is None:
        pytest.skip("no panel kernel on this CPU")
    k = native.Kernels(isa)
    w = native.quantize(weight_row(np.random.default_rng(0), 64), wt)
    with pytest.raises(UsageError, match="rows of 64"):
        k.gemm(w, np.zeros((2, 3), np.uint8), wt, 64)
    with pytest.raises(UsageError, match="panel kernel"):
        native.Kernels("scalar").gemm(w, w, GGMLType.F32, 64)

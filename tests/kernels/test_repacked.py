"""Repacked weights (native/src/repacked.h): 16 rows interleaved per group, one row per vector
lane, run by the gemm_packed table entries. The rule of a repacked product is the scalar entry:
every ISA's product gives its bits exactly, for any number of activation rows (decode and
prefill alike), and it is the same dot as the stored layout's up to float rounding."""
import numpy as np
import pytest

from harness import native
from harness.errors import UsageError
from harness.ggml_types import GGMLType
from harness.model.dequant import DEQUANTIZERS

from support.kernel_rows import act_type, activation_row, dequant_act, quantized_row

RUNNABLE = native.cpu_features()["supported"]
PACKED_TYPES = [GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.Q8_0, GGMLType.IQ4_XS, GGMLType.BF16]
TOKENS = (1, 3, 8, 9, 17, 32)   # one row (decode), tile edges of 8, a full engine token block


def _case(wt, rows, n, nt, seed):
    rng = np.random.default_rng(seed)
    w = np.stack([quantized_row(rng, n, wt) for _ in range(rows)])
    xs = [activation_row(rng, n) for _ in range(nt)]
    return w, xs


@pytest.mark.parametrize("wt", PACKED_TYPES, ids=lambda t: t.name)
def test_every_isa_gives_the_scalar_rule_bit_for_bit(wt):
    ref = native.Kernels("scalar")
    assert ref.has_packed(wt)
    at = act_type(wt)
    isas = [i for i in RUNNABLE if native.Kernels(i).has_packed(wt)]
    for n, rows in ((256, 16), (1024, 48), (3584, 32)):
        w, xs = _case(wt, rows, n, max(TOKENS), seed=n)
        packed = native.repack(w, wt, n)
        a = np.stack([ref.from_float(x, at) for x in xs])
        for nt in TOKENS:
            want = ref.gemm_packed(packed, a[:nt], wt, n)
            for isa in isas:
                got = native.Kernels(isa).gemm_packed(packed, a[:nt], wt, n)
                assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (isa, n, rows, nt)
        # the same dots as the stored layout's vec_dot, up to float rounding, and right in float64
        dots = np.array([[ref.vec_dot(w[r], a[t], wt, n) for r in range(rows)] for t in range(a.shape[0])])
        wd = DEQUANTIZERS[wt](w).astype(np.float64).reshape(rows, -1)
        ad = np.stack([dequant_act(a[t], at) for t in range(a.shape[0])])
        mag = np.abs(ad) @ np.abs(wd).T
        assert (np.abs(want - dots) <= 1e-6 * mag + 1e-6).all()
        assert (np.abs(want - ad @ wd.T) <= 1e-5 * mag + 1e-6).all()


def test_prepared_activations_are_a_copy_and_the_product_takes_them():
    """A variant may prepare the activation rows for its repacked product (Q8_0 on AVX512-VNNI:
    the codes as qa + 128 for vpdpbusd). Kernels.gemm_packed prepares a copy, so the caller's
    rows stay as from_float made them and the product is the rule's."""
    wt, n = GGMLType.Q8_0, 1024
    ref = native.Kernels("scalar")
    assert ref._k.prepare_packed[int(wt)] == native.ffi.NULL   # the rule takes the rows as they are
    w, xs = _case(wt, 16, n, 8, seed=7)
    a = np.stack([ref.from_float(x, act_type(wt)) for x in xs])
    before = a.copy()
    packed = native.repack(w, wt, n)
    want = ref.gemm_packed(packed, a, wt, n)
    for isa in RUNNABLE:
        k = native.Kernels(isa)
        if not k.has_packed(wt):
            continue
        assert np.array_equal(k.gemm_packed(packed, a, wt, n), want), isa
        assert np.array_equal(a, before), isa
        if k._k.prepare_packed[int(wt)] != native.ffi.NULL:   # in place, on the copy: codes ^ 0x80
            prepared = np.frombuffer(native.ffi.buffer(k.prepare_packed(a, wt, n)), np.uint8).reshape(a.shape)
            blocks = prepared.reshape(8, -1, 34)
            assert np.array_equal(blocks[:, :, 2:], a.reshape(8, -1, 34)[:, :, 2:] ^ 0x80)
            assert np.array_equal(blocks[:, :, :2], a.reshape(8, -1, 34)[:, :, :2])


def test_the_layout_holds_every_row_and_position_once():
    """Repacking is a permutation of the codes plus the unpacked scales: a weight row changed in
    one position changes one product row only, by the exact amount."""
    wt, n, rows = GGMLType.Q4_K, 512, 32
    ref = native.Kernels("scalar")
    w, xs = _case(wt, rows, n, 2, seed=3)
    a = np.stack([ref.from_float(x, act_type(wt)) for x in xs])
    base = ref.gemm_packed(native.repack(w, wt, n), a, wt, n)
    w2 = w.copy()
    w2[21, 16 + 144 + 40] ^= 0x0F      # row 21, second super-block, one byte of codes
    moved = ref.gemm_packed(native.repack(w2, wt, n), a, wt, n)
    changed = np.nonzero(np.abs(moved - base).max(axis=0) > 0)[0]
    assert changed.tolist() == [21]
    exact = np.array([[ref.vec_dot(w2[21], a[t], wt, n) - ref.vec_dot(w[21], a[t], wt, n)] for t in range(2)])
    assert np.allclose(moved[:, 21] - base[:, 21], exact[:, 0], rtol=1e-4, atol=1e-4)


def test_shapes_and_types_without_a_layout_are_refused():
    rng = np.random.default_rng(0)
    w = np.stack([quantized_row(rng, 256, GGMLType.Q4_K) for _ in range(17)])
    with pytest.raises(UsageError, match="no repacked layout for 17 Q4_K rows"):
        native.repack(w, GGMLType.Q4_K, 256)
    q3 = np.stack([quantized_row(rng, 256, GGMLType.Q3_K) for _ in range(16)])
    with pytest.raises(UsageError, match="no repacked layout for 16 Q3_K rows"):
        native.repack(q3, GGMLType.Q3_K, 256)
    with pytest.raises(UsageError, match="uint8 \\[rows, 144\\]"):
        native.repack(w[:, :100], GGMLType.Q4_K, 256)
    packed = native.repack(w[:16], GGMLType.Q4_K, 256)
    with pytest.raises(UsageError, match="groups of 2368 bytes"):
        native.Kernels("scalar").gemm_packed(packed[:-1], np.zeros((1, 292), np.uint8), GGMLType.Q4_K, 256)
    with pytest.raises(UsageError, match="no repacked Q3_K product"):
        native.Kernels("scalar").gemm_packed(packed, np.zeros((1, 292), np.uint8), GGMLType.Q3_K, 256)


def test_the_avx2_table_takes_the_avx_vnni_products_where_the_cpu_has_them():
    """The AVX2 table names its extension: avx2+avxvnni with AVX-VNNI (and not HARNESS_AVXVNNI=0), then its
    Q8_0 product prepares the activations (codes + 128) as AVX512-VNNI's does; plain avx2 otherwise."""
    import os
    feats = native.cpu_features()
    if "avx2" not in feats["supported"]:
        pytest.skip("this CPU has no AVX2")
    vnni = feats["flags"]["avxvnni"] and os.environ.get("HARNESS_AVXVNNI") != "0"
    assert feats["tables"]["avx2"] == ("avx2+avxvnni" if vnni else "avx2")
    prepares = native.Kernels("avx2")._k.prepare_packed[int(GGMLType.Q8_0)] != native.ffi.NULL
    assert prepares == vnni

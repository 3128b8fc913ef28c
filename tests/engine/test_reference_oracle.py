"""The float64 numpy reference against the independent oracle logits (transformers and
llama.cpp; docs/qwen35.md, Oracle agreement). Bounds from there:
  F32 file: within 2e-3 of transformers float64 (we measure ~4e-5);
  quantized files: within 2e-3 of llama.cpp on the dequantized twin (we measure <= 5e-4)."""
import numpy as np
import pytest

from harness.model.loader import load_model
from harness.engine.reference import Reference, reference_logits

from support.paths import ORACLE_TYPES

BOUND = 2e-3


def oracle_key(qtype: str, seq: str) -> str:
    # the F32 file is compared with transformers float64, the rest with llama.cpp's
    # computation on the dequantized weights (exact math, no activation rounding)
    return f"hf_f64_{seq}" if qtype == "f32" else f"llama_deq_{qtype}_prefill_{seq}"


@pytest.mark.parametrize("qtype", ORACLE_TYPES)
@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_reference_matches_oracle(oracle_dir, oracle_logits, qtype, mode):
    with load_model(oracle_dir / f"tiny-{qtype}.gguf") as m:
        for seq in ("seq1", "seq7", "seq64"):
            tokens = oracle_logits[f"tokens_{seq}"]
            ours = reference_logits(m, tokens, mode)
            ref = oracle_logits[oracle_key(qtype, seq)]
            err = float(np.abs(ours - ref).max())
            top1 = float(np.mean(ours.argmax(1) == ref.argmax(1)))
            print(f"{qtype} {mode} {seq}: max abs err {err:.2e} vs {oracle_key(qtype, seq)}, top-1 agreement {top1:.3f}")
            assert ours.shape == ref.shape
            assert err < BOUND, f"{qtype} {mode} {seq}: max abs error {err:.3e} >= {BOUND}"


def test_f32_reference_is_as_close_as_transformers_f32(oracle_dir, oracle_logits):
    """On F32 weights our float64 pass should be closer to transformers-f64 than
    transformers' own float32 run is (1.2e-4; docs/qwen35.md, Oracle agreement)."""
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        ours = reference_logits(m, oracle_logits["tokens_seq64"])
    ref = oracle_logits["hf_f64_seq64"]
    err_ours = np.abs(ours - ref).max()
    err_hf32 = np.abs(oracle_logits["hf_f32_seq64"] - ref).max()
    print(f"ours {err_ours:.2e}, transformers f32 {err_hf32:.2e}")
    assert err_ours < 1e-4
    assert err_ours < err_hf32


def test_state_carries_across_uneven_splits(oracle_dir, oracle_logits):
    """Prefill in pieces of 5, 1, 20, ... tokens (conv window and delta-net state and KV
    cache carried) equals one prefill of the whole sequence."""
    tokens = oracle_logits["tokens_seq64"]
    with load_model(oracle_dir / "tiny-q8_0.gguf") as m:
        ref = Reference(m)
        whole = ref.forward(tokens)
        st = ref.new_state()
        parts, i = [], 0
        for n in (5, 1, 20, 2, 36):
            parts.append(ref.forward(tokens[i:i + n], st))
            i += n
        assert i == len(tokens) and st.n_past == len(tokens)
    assert np.abs(np.concatenate(parts) - whole).max() < 1e-10


def test_out_of_range_token_is_a_clear_error(oracle_dir):
    from harness.errors import UsageError
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        with pytest.raises(UsageError, match="token id 2048 is outside the vocabulary"):
            reference_logits(m, [1, 2048])
        with pytest.raises(UsageError, match="token id -1"):
            reference_logits(m, [-1])


# ----------------------------------------------------------------------------
# Qwen3.5-MoE (tinymoe-*: 8 routed experts, top-2, one shared expert); same bounds

MOE_TYPES = ["f32", "q8_0", "q4_k_m"]


@pytest.fixture(scope="module")
def moe_logits(oracle_dir):
    return np.load(oracle_dir / "tinymoe-logits.npz")


@pytest.mark.parametrize("qtype", MOE_TYPES)
@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_moe_reference_matches_oracle(oracle_dir, moe_logits, qtype, mode):
    with load_model(oracle_dir / f"tinymoe-{qtype}.gguf") as m:
        for seq in ("seq1", "seq7", "seq64"):
            ours = reference_logits(m, moe_logits[f"tokens_{seq}"], mode)
            ref = moe_logits[oracle_key(qtype, seq)]
            err = float(np.abs(ours - ref).max())
            print(f"tinymoe-{qtype} {mode} {seq}: max abs err {err:.2e} vs {oracle_key(qtype, seq)}")
            assert err < BOUND, f"tinymoe-{qtype} {mode} {seq}: max abs error {err:.3e} >= {BOUND}"


def test_moe_router_softmax_topk_renormalized_lowest_id_wins_ties():
    from harness.engine.reference import moe_route
    logits = np.array([[0.0, 2.0, 1.0, 2.0],      # tie for first place: 1 before 3
                       [5.0, 5.0, 5.0, 5.0],      # all equal: the two lowest ids
                       [-1.0, 0.0, 3.0, 1.0]])
    ids, w = moe_route(logits, 2)
    assert ids.tolist() == [[1, 3], [0, 1], [2, 3]]
    assert np.allclose(w[:2], 0.5)
    assert np.allclose(w[2], [1 / (1 + np.exp(-2.0)), np.exp(-2.0) / (1 + np.exp(-2.0))])
    assert np.allclose(w.sum(axis=1), 1.0)


def test_moe_ffn_is_the_weighted_sum_of_expert_swiglus():
    """The pure MoE function against the formula written out token by token."""
    from harness.engine.reference import moe_ffn, sigmoid, silu
    rng = np.random.default_rng(1)
    T, E, NE, Fe, Fs, k = 5, 8, 4, 6, 3, 2
    f = rng.normal(size=(T, E))
    router, gi = rng.normal(size=(NE, E)), rng.normal(size=E)
    g, u, d = rng.normal(size=(NE, Fe, E)), rng.normal(size=(NE, Fe, E)), rng.normal(size=(NE, E, Fe))
    sg, su, sd = rng.normal(size=(Fs, E)), rng.normal(size=(Fs, E)), rng.normal(size=(E, Fs))
    got = moe_ffn(f, router, g, u, d, k, gi, sg, su, sd)
    for t in range(T):
        p = np.exp(router @ f[t]) / np.exp(router @ f[t]).sum()
        top = np.argsort(-p)[:k]
        want = sum(p[e] / p[top].sum() * (d[e] @ (silu(g[e] @ f[t]) * (u[e] @ f[t]))) for e in top)
        want = want + sigmoid(gi @ f[t]) * (sd @ (silu(sg @ f[t]) * (su @ f[t])))
        assert np.allclose(got[t], want, rtol=1e-12, atol=1e-12)

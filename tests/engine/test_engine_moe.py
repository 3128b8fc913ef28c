"""The native engine on Qwen3.5-MoE (tinymoe oracle: 8 routed experts, top-2, a shared expert).

Bounds as for the dense files (docs/qwen35.md, Oracle agreement): F32 weights within 2e-3 of
transformers float64 on every path; quantized files within 0.15 of llama.cpp on the same file
(the engine rounds activations as ggml pairs them with each weight type).

One documented exception in the comparison, not in the bound: on tinymoe-q4_k_m llama.cpp's own
prefill and decode runs differ by 0.16 (position 26 of seq64: a near-tie in the router sends a
token to another expert when activations are rounded, per docs/qwen35.md, Oracle agreement). Our prefill and
decode are bit-identical, so at such a position we can be close to only one of llama.cpp's two
runs; there the test takes, per position, the nearer of the two."""
import numpy as np
import pytest

from harness import native
from harness.engine.session import Session
from harness.model.loader import load_model
from harness.engine.reference import reference_logits
from support.oracle import run_tokens as _run
from support.oracle import within_llama_spread

F32_BOUND, QUANT_BOUND, QUANT_MEDIAN_BOUND = 2e-3, 0.15, 0.06
MOE_TYPES = ["f32", "q8_0", "q4_k_m"]
EITHER_LLAMA_MODE = {"q4_k_m"}
RUNNABLE = native.cpu_features()["supported"]    # llama.cpp's prefill and decode disagree by more than the bound


# A variant whose dot sums in another order than ggml's: on tinymoe-q8_0 the AVX512 variant (two Q8_0 blocks per
# register; the AVX2 variant has ggml's bits, tests/kernels/test_ggml_bit_identity.py) leaves the AVX2 variant's
# logits at position 53 of seq64 (0.08) and jumps at 56 (0.35, a token routed elsewhere), within the bound at
# every other position: there one burst of at most 5 consecutive positions may pass the bound.
ONE_BURST = {("q8_0", "avx512")}


@pytest.fixture(scope="module")
def moe_logits(oracle_dir):
    return np.load(oracle_dir / "tinymoe-logits.npz")


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("qtype", MOE_TYPES)
def test_moe_engine_matches_oracle(oracle_dir, moe_logits, qtype, isa):
    """Every ISA variant. Past the fixed bound the relative yardstick decides (a router near-tie: see
    the next test)."""
    with load_model(oracle_dir / f"tinymoe-{qtype}.gguf") as m:
        for mode in ("prefill", "decode"):
            for seq in ("seq7", "seq64"):
                tokens = moe_logits[f"tokens_{seq}"]
                ours = _run(m, tokens, mode, threads=2, ubatch=64, isa=isa)
                if qtype == "f32":
                    per_pos = np.abs(ours - moe_logits[f"hf_f64_{seq}"]).max(axis=1)
                    bound = F32_BOUND
                else:
                    modes = ("prefill", "decode") if qtype in EITHER_LLAMA_MODE else (mode,)
                    per_pos = np.min([np.abs(ours - moe_logits[f"llama_{qtype}_{lm}_{seq}"]).max(axis=1)
                                      for lm in modes], axis=0)
                    bound = QUANT_BOUND
                err, med = float(per_pos.max()), float(np.median(per_pos))
                relative = qtype != "f32" and err >= bound and within_llama_spread(per_pos, moe_logits, qtype, seq)
                print(f"{isa} tinymoe-{qtype} {mode} {seq}: max abs err {err:.3e} (bound {bound}), median {med:.3f}"
                      + (" (past the fixed bound: within llama.cpp's own spread)" if relative else ""))
                beyond = np.flatnonzero(per_pos >= bound)
                burst = (qtype, isa) in ONE_BURST and len(beyond) > 0 and beyond[-1] - beyond[0] < 5
                assert err < bound or relative or burst, (err, beyond.tolist())
                if qtype != "f32":
                    assert med < QUANT_MEDIAN_BOUND


@pytest.mark.parametrize("isa", RUNNABLE)
def test_q4_k_m_departs_from_llama_only_at_router_near_ties(oracle_dir, moe_logits, isa):
    """llama.cpp's own prefill and decode differ by more than the bound at a router near-tie;
    there either choice is right, and float rounding decides which one we make. Each ISA variant
    sums in its own order, so each can meet a near-tie of its own: the AVX512 variant departs at
    positions 46-49 (the float64 reference's router margin there is 0.005 in layer 3 at position 51,
    0.0075 at 41; the variant's logits stay within 0.06 of the scalar variant's up to position 45
    and jump to 0.18 at 46), AVX2 at llama.cpp's own position 26. So: at every position but
    llama.cpp's near-ties and at most one burst of 5 consecutive positions, we are within the bound
    of llama.cpp's decode run."""
    tokens = moe_logits["tokens_seq64"]
    with load_model(oracle_dir / "tinymoe-q4_k_m.gguf") as m:
        ours = _run(m, tokens, "prefill", threads=2, ubatch=64, isa=isa)
    decode = moe_logits["llama_q4_k_m_decode_seq64"]
    ours_err = np.abs(ours - decode).max(axis=1)
    llama_spread = np.abs(moe_logits["llama_q4_k_m_prefill_seq64"] - decode).max(axis=1)
    near_tie = llama_spread > QUANT_BOUND
    beyond = np.flatnonzero((ours_err >= QUANT_BOUND) & ~near_tie)
    print(f"llama prefill vs decode beyond the bound at positions {np.flatnonzero(near_tie).tolist()}; "
          f"{isa} beyond it elsewhere at {beyond.tolist()}")
    assert 0 < near_tie.sum() <= 2
    assert len(beyond) == 0 or beyond[-1] - beyond[0] < 5, beyond
    assert ours_err[~near_tie].max() < 3 * llama_spread.max()


@pytest.mark.parametrize("fdn", [0, 1, 16, 512])
def test_f32_every_threshold_ubatch_and_thread_count(oracle_dir, moe_logits, fdn):
    """Prefill (u-batches of 1, 7 and 64 tokens) and decode, 1 and 2 threads, all within 2e-3
    of transformers f64. The thread count changes no bit, nor does decode vs one-token
    u-batches (larger u-batches may switch the delta-net algorithm, which rounds differently)."""
    tokens = moe_logits["tokens_seq64"]
    ref = moe_logits["hf_f64_seq64"]
    with load_model(oracle_dir / "tinymoe-f32.gguf") as m:
        runs = {(mode, ub, th): _run(m, tokens, mode, threads=th, ubatch=ub, fdn_threshold=fdn)
                for mode, ub in (("prefill", 1), ("prefill", 7), ("prefill", 64), ("decode", 64))
                for th in (1, 2)}
    for key, got in runs.items():
        err = float(np.abs(got - ref).max())
        print(f"F={fdn} {key}: max abs err {err:.2e}")
        assert err < F32_BOUND
        assert np.array_equal(got, runs[key[:2] + (1,)]), key
    assert np.array_equal(runs[("decode", 64, 1)], runs[("prefill", 1, 1)])


def test_quantized_prefill_equals_decode_and_state_round_trips(oracle_dir, moe_logits):
    tokens = moe_logits["tokens_seq64"]
    # fused delta rule for every u-batch (as decode): what is compared is the expert grouping
    with load_model(oracle_dir / "tinymoe-q4_k_m.gguf") as m, \
            Session(m, ctx=128, ubatch=16, threads=2, fdn_threshold=16) as s:
        whole = s.prefill(tokens[:40])
        s.reset()
        s.prefill(tokens[:30])
        snap = s.save_state()
        a = np.stack([s.decode(int(t)) for t in tokens[30:40]])
        s.restore_state(snap)
        b = np.stack([s.decode(int(t)) for t in tokens[30:40]])
    assert np.array_equal(a, b)
    assert np.array_equal(whole[30:], a)       # grouping by expert does not change any sum


def _patched_router_copy(src, dst, nan_experts=()):
    """A copy of an F32 MoE file whose router rows are all equal (every expert ties) and whose
    experts in nan_experts have NaN weights."""
    from pathlib import Path

    from harness.model.gguf_reader import read_gguf
    data = bytearray(Path(src).read_bytes())
    g = read_gguf(src)
    c_ne = g.metadata["qwen35moe.expert_count"]
    for name, t in g.tensors.items():
        if name.endswith("ffn_gate_inp.weight"):
            row = t.nbytes // c_ne
            for e in range(1, c_ne):
                data[t.offset + e * row:t.offset + (e + 1) * row] = data[t.offset:t.offset + row]
        if name.endswith(("ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight")):
            slab = t.nbytes // c_ne
            for e in nan_experts:
                data[t.offset + e * slab:t.offset + (e + 1) * slab] = \
                    np.full(slab // 4, np.nan, np.float32).tobytes()
    g.close()
    Path(dst).write_bytes(data)
    return dst


def test_router_ties_go_to_the_lowest_ids_and_other_experts_are_never_touched(oracle_dir, tmp_path, moe_logits):
    """Every router row equal: all 8 experts tie for every token, so experts 0 and 1 (lowest ids)
    are picked with weight 1/2 each, in the reference and in the engine. The other experts'
    weights are NaN: one read into any sum would poison the logits."""
    p = _patched_router_copy(oracle_dir / "tinymoe-f32.gguf", tmp_path / "ties.gguf", nan_experts=range(2, 8))
    tokens = moe_logits["tokens_seq7"]
    with load_model(p) as m:
        ref = reference_logits(m, tokens)
        for mode in ("prefill", "decode"):
            got = _run(m, tokens, mode, threads=2)
            assert np.isfinite(got).all()
            assert np.abs(got - ref).max() < F32_BOUND
    assert np.isfinite(ref).all()


def test_profile_counts_only_the_selected_experts(oracle_dir, moe_logits):
    tokens = moe_logits["tokens_seq64"]
    with load_model(oracle_dir / "tinymoe-q4_k_m.gguf") as m:
        slab = {i: m.info(f"blk.{i}.ffn_down_exps.weight").nbytes // 8 for i in range(4)}  # Q4_K / Q6_K
        with Session(m, profile=True, threads=2) as s:
            s.decode(5)
            df = s.profile()
            # one token reads every weight once, of the expert stacks its 2 experts
            assert df.bytes.sum() == m.bytes_per_token()
            assert {"moe_router", "mm_exp_gate_up", "mm_exp_down", "mm_shexp_gate_up", "mm_shexp_down"} <= set(df.op)
            down = df[df.op == "mm_exp_down"]
            assert [int(b) for b in down.bytes] == [2 * slab[i] for i in down.layer]
            # and the multiply-adds of those experts only: k experts x (gate, up | down)
            c = m.config
            assert (df[df.op == "mm_exp_gate_up"].macs == c.n_expert_used * 2 * c.n_ff_expert * c.n_embd).all()
            assert (down.macs == c.n_expert_used * c.n_ff_expert * c.n_embd).all()
        # a 64-token u-batch reads each selected expert once: at most 8 slabs per layer and call,
        # against 64 x 2 when the same tokens run one by one
        slabs = {}
        for ub in (64, 1):
            with Session(m, profile=True, threads=2, ubatch=ub, ctx=128) as s:
                s.prefill(tokens)
                down = s.profile().query("op == 'mm_exp_down'")
                n = [int(b) // slab[i] for b, i in zip(down.bytes, down.layer)]
                assert [k * slab[i] for k, i in zip(n, down.layer)] == [int(b) for b in down.bytes]
                slabs[ub] = sum(n)
        assert slabs[1] == 64 * 2 * 4
        assert 2 * 4 <= slabs[64] <= 8 * 4
        print("down slabs read for 64 tokens:", slabs)


def _fused_gate_up_copy(src, dst):
    """The same model with each layer's gate and up expert stacks fused into ffn_gate_up_exps
    [NE, 2 Fe, E] (expert e: its gate rows, then its up rows), the alternative form the
    loader accepts."""
    from harness.model.gguf_reader import read_gguf
    from harness.model.gguf_writer import GGUFStreamWriter, PlannedTensor
    from harness.model.presets import PRESETS
    from harness.model.synth import synth_metadata
    g = read_gguf(src)
    plan, data = [], {}
    for name, t in g.tensors.items():
        if name.endswith("ffn_up_exps.weight"):
            continue
        if name.endswith("ffn_gate_exps.weight"):
            up = name.replace("gate_exps", "up_exps")
            ne, fe, e = t.shape
            gate_b = g.tensor_data(name).reshape(ne, -1)
            up_b = g.tensor_data(up).reshape(ne, -1)
            name = name.replace("gate_exps", "gate_up_exps")
            plan.append(PlannedTensor(name, (ne, 2 * fe, e), t.type))
            data[name] = np.concatenate([gate_b, up_b], axis=1)
        else:
            plan.append(PlannedTensor(name, t.shape, t.type))
            data[name] = g.tensor_data(name)
    with GGUFStreamWriter(dst, synth_metadata(PRESETS["tinymoe"], "q8_0", 0), plan) as w:
        for t in plan:
            w.write(t.name, data[t.name])
    g.close()
    return dst


def test_fused_gate_up_expert_stack_gives_the_same_logits(oracle_dir, tmp_path, moe_logits):
    p = _fused_gate_up_copy(oracle_dir / "tinymoe-q8_0.gguf", tmp_path / "fused.gguf")
    tokens = moe_logits["tokens_seq7"]
    out = {}
    for name, path in (("separate", oracle_dir / "tinymoe-q8_0.gguf"), ("fused", p)):
        with load_model(path) as m:
            assert ("blk.0.ffn_gate_up_exps.weight" in m.gguf.tensors) == (name == "fused")
            out[name] = (reference_logits(m, tokens), _run(m, tokens, "prefill", threads=2),
                         _run(m, tokens, "decode", threads=2))
    for a, b in zip(out["separate"], out["fused"]):
        assert np.array_equal(a, b)


def test_many_experts_top8_like_35b_a3b(tmp_path):
    """The 35B-A3B routing shape in small: 64 experts, top-8, on F32 weights. A 20-token
    u-batch leaves experts idle, which are then neither computed nor counted; the engine
    matches the float64 reference in prefill (u-batches 20 and 7) and decode."""
    from harness.model.presets import PRESETS
    from harness.model.synth import synthesize
    s = PRESETS["tinymoe"].with_(name="moe64", n_expert=64, n_expert_used=8, n_ff_expert=64, n_ff_shared=128)
    p = synthesize(s, "f32", tmp_path / "moe64.gguf", seed=5, threads=2).path
    tokens = np.random.default_rng(5).integers(0, 2048, 20)
    with load_model(p) as m:
        ref = reference_logits(m, tokens)
        for mode, ub in (("prefill", 20), ("prefill", 7), ("decode", 20)):
            got = _run(m, tokens, mode, threads=2, ubatch=ub)
            assert np.abs(got - ref).max() < F32_BOUND, (mode, ub)
        slab = m.info("blk.0.ffn_down_exps.weight").nbytes // 64
        with Session(m, profile=True, threads=2, ubatch=20) as sess:
            sess.prefill(tokens)
            active = sess.profile().query("op == 'mm_exp_down'").bytes // slab
    print("active experts per layer for 20 tokens:", list(active))
    assert (active >= 8).all() and (active < 64).all()


def test_gate_and_up_stacks_of_different_types(tmp_path):
    """Gate experts F16 and up experts BF16: the expert inputs go to two activation formats
    (F16 and BF16 rounding, both mild), so the engine stays close to the float64 reference;
    reading either input in the other's format would be far off."""
    from harness.ggml_types import GGMLType
    from harness.model.gguf_writer import GGUFStreamWriter, PlannedTensor
    from harness.model.presets import PRESETS
    from harness.model.synth import quant_plan, synth_metadata, write_weights
    s = PRESETS["tinymoe"]
    kinds = {"ffn_gate_exps.weight": GGMLType.F16, "ffn_up_exps.weight": GGMLType.BF16}
    plan = [PlannedTensor(t.name, t.shape, kinds.get(t.name.split(".", 2)[-1], t.type))
            for t in quant_plan(s, "f32")]
    p = tmp_path / "mixed.gguf"
    with GGUFStreamWriter(p, synth_metadata(s, "f32", 0), plan) as w:
        write_weights(w, s, seed=2, threads=1)
    tokens = np.random.default_rng(2).integers(0, 2048, 24)
    with load_model(p) as m:
        assert m.info("blk.1.ffn_up_exps.weight").type == GGMLType.BF16
        ref = reference_logits(m, tokens)
        one = _run(m, tokens, "prefill", threads=1, ubatch=8, fdn_threshold=8)   # fused, as decode
        two = _run(m, tokens, "decode", threads=2, fdn_threshold=8)
    err = float(np.abs(one - ref).max())
    print(f"F16 gate / BF16 up experts: max abs err vs float64 reference {err:.3f}")
    assert err < 0.1
    assert np.array_equal(one, two)

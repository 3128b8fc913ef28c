"""Synthetic models: llama-quantize's type choices, real shapes for every preset, files
the gguf package reads back, and weights that keep activations sane."""
import subprocess

import gguf
import numpy as np
import pytest

from harness.model.config import config_from_metadata
from harness.ggml_types import GGMLType
from harness.model.gguf_reader import read_gguf
from harness.model.loader import expected_tensors, load_model
from harness.model.presets import PRESETS
from harness.engine.reference import reference_logits
from harness.model.synth import QUANTS, quant_plan, synth_metadata, synthesize
from support.paths import llama_tool

# the oracle's shape, so our type choices can be compared with llama-quantize's own output
ORACLE_SHAPE = PRESETS["tiny"].with_(name="oracle", n_layer=4, tied=False, vocab_size=2048)
ORACLE_FILE = {"f32": "f32", "f16": "f16", "bf16": "bf16", "q8_0": "q8_0", "q4_0": "q4_0",
               "q6_k": "q6_k", "iq4_xs": "iq4_xs", "q4_k_m": "q4_k_m", "q4_1": "types/tiny-q4_1",
               "q5_0": "types/tiny-q5_0", "q5_1": "types/tiny-q5_1", "iq4_nl": "types/tiny-iq4_nl",
               "q2_k": "types/tiny-q2_k", "q3_k_m": "types/tiny-q3_k_m"}


@pytest.mark.parametrize("quant", sorted(ORACLE_FILE))
def test_type_choices_match_llama_quantize(oracle_dir, quant):
    """Same tensor names, shapes and types as llama-quantize wrote into the oracle file."""
    plan = {t.name: (t.type, t.shape) for t in quant_plan(ORACLE_SHAPE, quant)}
    f = ORACLE_FILE[quant]
    g = read_gguf(oracle_dir / (f"{f}.gguf" if "/" in f else f"tiny-{f}.gguf"))
    theirs = {n: (t.type, t.shape) for n, t in g.tensors.items()}
    assert plan == theirs


@pytest.mark.parametrize("quant", ["f32", "q8_0", "q4_k_m"])
def test_moe_type_choices_match_llama_quantize(oracle_dir, quant):
    """The tinymoe preset has the MoE oracle's shape: tensor by tensor the same names, shapes
    (the shared-expert gate [E, 1] from the converter, [E] from llama-quantize) and types
    (router F32; with 8 experts attn_k / attn_v / attn_qkv Q8_0 and, for Q4_K_M, attn_output
    Q5_K; expert ffn_down Q6_K in the use_more_bits layers)."""
    plan = {t.name: (t.type, t.shape) for t in quant_plan(PRESETS["tinymoe"], quant)}
    g = read_gguf(oracle_dir / f"tinymoe-{quant}.gguf")
    theirs = {n: (t.type, t.shape) for n, t in g.tensors.items()}
    assert plan == theirs


@pytest.mark.parametrize("shape,oracle", [(ORACLE_SHAPE, "tiny-f32.gguf"), (PRESETS["tinymoe"], "tinymoe-f32.gguf")])
def test_metadata_keys_are_the_converters(oracle_dir, shape, oracle):
    """Every key llama.cpp's converter wrote for the oracle model is in ours, with the same
    value type; ours adds only harness.* provenance keys."""
    g = read_gguf(oracle_dir / oracle)
    md = synth_metadata(shape, "f32", 0)
    assert set(g.metadata) <= set(md)
    assert {k for k in md if k not in g.metadata} == {k for k in md if k.startswith("harness.")}
    for k in g.metadata:
        if not k.startswith("general.") and k != "tokenizer.ggml.model":
            got = _parsed({k: md[k]})[k]
            assert np.array_equal(got, g.metadata[k]) or got == pytest.approx(g.metadata[k]), k


def _parsed(md: dict) -> dict:
    """Metadata as the reader would return it (values without their GGUF types)."""
    out = {}
    for k, (vtype, v) in md.items():
        out[k] = np.array(v[1]) if vtype == 9 else v
    return out


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("quant", QUANTS)
def test_every_preset_and_quant_has_a_valid_plan(preset, quant):
    """Header-level check of every preset x quant (the big ones are not written whole here):
    the metadata parses into the preset's config and the planned tensors are exactly what
    the loader expects."""
    s = PRESETS[preset]
    plan = quant_plan(s, quant)
    md = _parsed(synth_metadata(s, quant, 0))
    names = {t.name for t in plan}
    c = config_from_metadata(md, "<plan>", s.vocab_size, has_output="output.weight" in names)
    assert (c.n_layer, c.n_embd, c.n_ff, c.vocab_size, c.tied_output) == \
        (s.n_layer, s.n_embd, s.n_ff, s.vocab_size, s.tied)
    assert (c.ssm_k_heads, c.ssm_v_heads, c.n_head, c.n_head_kv) == \
        (s.ssm_k_heads, s.ssm_v_heads, s.n_head, s.n_head_kv)
    assert (c.arch, c.n_expert, c.n_expert_used, c.n_ff_expert, c.n_ff_shared) == \
        (s.arch, s.n_expert, s.n_expert_used, s.n_ff_expert, s.n_ff_shared)
    specs = {sp.name: sp for sp in expected_tensors(c, names)}
    assert set(specs) == names
    for t in plan:
        assert t.shape == specs[t.name].shape or t.shape in specs[t.name].alt_shapes
        assert t.type in specs[t.name].types


def test_0p8b_shape_has_the_published_parameter_count():
    """llama.cpp's converter output for the 0.8B shape holds 752.4 M parameters (docs/qwen35.md, appendix A)."""
    n = sum(int(np.prod(t.shape)) for t in quant_plan(PRESETS["0.8b"], "f32"))
    assert abs(n / 1e6 - 752.4) < 0.1, n


def test_35b_a3b_shape_has_about_3b_active_of_35b_parameters():
    """docs/qwen35.md, appendix A: the 35B-A3B shape, about 3 B parameters active per token; its Q4_K_M file
    is about 20 GB."""
    s = PRESETS["35b-a3b"]
    total = active = 0
    for t in quant_plan(s, "f32"):
        n = int(np.prod(t.shape))
        total += n
        if t.name == "token_embd.weight":
            active += s.n_embd                           # one row
        else:
            active += n * s.n_expert_used // s.n_expert if "_exps" in t.name else n
    assert abs(total / 1e9 - 34.66) < 0.01 and abs(active / 1e9 - 2.95) < 0.01, (total, active)
    size = sum(t.nbytes for t in quant_plan(s, "q4_k_m"))
    assert 19e9 < size < 22e9, size


@pytest.mark.parametrize("quant", ["f32", "q8_0", "q4_k_m", "iq4_xs"])
def test_tinymoe_file(tmp_path, quant):
    """Written whole, read back by the gguf package, loaded by us; the reference gives sane
    logits and the engine agrees with it on F32 weights."""
    from harness.engine.session import Session
    p = synthesize("tinymoe", quant, tmp_path / f"tinymoe-{quant}.gguf", seed=3, threads=2).path
    assert len(gguf.GGUFReader(p).tensors) == len(quant_plan(PRESETS["tinymoe"], quant))
    tokens = [0, 17, 2047, 3, 3, 3]
    with load_model(p) as m:
        assert m.config.is_moe and m.metadata["harness.synth.quant"] == quant
        logits = reference_logits(m, tokens)
        with Session(m, threads=2) as s:
            engine = s.prefill(tokens)
    assert np.isfinite(logits).all() and np.isfinite(engine).all()
    std = logits.std(axis=1)
    assert (std > 0.5).all() and (std < 5).all(), std
    if quant == "f32":
        assert np.abs(engine - logits).max() < 2e-3


@pytest.mark.parametrize("quant", QUANTS)
def test_tiny_file_for_every_quant(tmp_path, quant):
    """Written whole: read back by the gguf package, loaded and validated by us, and the
    reference gives finite logits with spread (the init keeps activations sane)."""
    p = synthesize("tiny", quant, tmp_path / f"tiny-{quant}.gguf", seed=3, threads=2).path
    g = gguf.GGUFReader(p)
    assert len(g.tensors) == len(quant_plan(PRESETS["tiny"], quant))
    with load_model(p) as m:
        assert m.metadata["harness.synth.quant"] == quant
        logits = reference_logits(m, [0, 17, 4095, 3, 3, 3])
    assert np.isfinite(logits).all()
    std = logits.std(axis=1)
    assert (std > 0.5).all() and (std < 5).all(), std
    assert len(set(logits.argmax(axis=1))) > 1


def test_same_seed_same_file_other_seed_other_weights(tmp_path):
    a = synthesize("tiny", "q8_0", tmp_path / "a.gguf", seed=7).path
    b = synthesize("tiny", "q8_0", tmp_path / "b.gguf", seed=7).path
    c = synthesize("tiny", "q8_0", tmp_path / "c.gguf", seed=8).path
    assert open(a, "rb").read() == open(b, "rb").read()
    with load_model(a) as ma, load_model(c) as mc:
        assert not np.array_equal(ma.raw("blk.0.ffn_up.weight"), mc.raw("blk.0.ffn_up.weight"))


def test_activations_stay_in_range_through_all_layers(tmp_path):
    """The residual stream RMS grows slowly with depth and nothing saturates."""
    from harness.engine.reference import Reference, rms_norm
    p = synthesize("tiny", "f32", tmp_path / "t.gguf", seed=0).path
    with load_model(p) as m:
        ref = Reference(m)
        st = ref.new_state()
        c = m.config
        h = ref.w("token_embd.weight")[[5, 6, 7, 8]]
        rms = []
        for i in range(c.n_layer):
            a = rms_norm(h, ref.w(f"blk.{i}.attn_norm.weight"), c.rms_eps)
            h = h + (ref.deltanet(i, a, st.layers[i]) if c.recurrent[i]
                     else ref.attention(i, a, np.arange(4), st.layers[i]))
            h = h + ref.ffn(i, rms_norm(h, ref.w(f"blk.{i}.post_attention_norm.weight"), c.rms_eps))
            rms.append(float(np.sqrt((h * h).mean())))
    print("residual RMS per layer:", np.round(rms, 2))
    assert all(0.3 < r < 10 for r in rms)


def test_lm_head_type_for_the_q4_k_m_recipe():
    plan = {t.name: t.type for t in quant_plan(PRESETS["0.8b"], "q4_k_m")}
    assert plan["token_embd.weight"] == GGMLType.Q6_K         # tied: the embedding is the LM head
    assert "output.weight" not in plan
    types = {plan[f"blk.{i}.ffn_down.weight"] for i in range(24)}
    assert types == {GGMLType.Q4_K, GGMLType.Q6_K}


LLAMA_BENCH = __import__("os").environ.get("LLAMA_BENCH")


@pytest.mark.skipif(not LLAMA_BENCH, reason="set LLAMA_BENCH to a llama-bench binary to check llama.cpp loads our files")
@pytest.mark.parametrize("preset,quant", [("tiny", q) for q in QUANTS] + [("tinymoe", q) for q in QUANTS])
def test_llama_cpp_runs_our_synthetic_files(tmp_path, preset, quant):
    """The writer's compatibility test: llama.cpp's own llama-bench loads and runs the file."""
    import subprocess
    p = synthesize(preset, quant, tmp_path / f"{preset}-{quant}.gguf", seed=1).path
    r = subprocess.run([LLAMA_BENCH, "-m", p, "-p", "8", "-n", "4", "-r", "1", "-t", "1", "-o", "json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    tests = json.loads(r.stdout)
    assert {(t["n_prompt"], t["n_gen"]) for t in tests} == {(8, 0), (0, 4)}
    assert all(t["avg_ts"] > 0 for t in tests)


# a shape deep and narrow enough for llama-quantize's layer- and GQA-dependent rules: 16 layers (so
# n_layer / 8 = 2 leading layers), 8 query heads on 2 KV heads (n_gqa = 4), an untied LM head
DEEP_SHAPE = PRESETS["tiny"].with_(name="deep", n_layer=16, n_head=8, n_head_kv=2, tied=False, vocab_size=2048)
LLAMA_FTYPES = {"q4_0": "Q4_0", "q4_1": "Q4_1", "q5_0": "Q5_0", "q5_1": "Q5_1", "iq4_nl": "IQ4_NL",
                "iq4_xs": "IQ4_XS", "q4_k_m": "Q4_K_M", "q6_k": "Q6_K", "q8_0": "Q8_0", "q2_k": "Q2_K",
                "q3_k_m": "Q3_K_M"}


@pytest.fixture(scope="module")
def deep_f32(tmp_path_factory):
    path = tmp_path_factory.mktemp("deep") / "deep-f32.gguf"
    synthesize(DEEP_SHAPE, "f32", path, seed=0)
    return path


@pytest.mark.skipif(llama_tool("llama-quantize") is None, reason="llama-quantize not built (HARNESS_LLAMA_CPP_BIN)")
@pytest.mark.parametrize("quant", sorted(LLAMA_FTYPES))
def test_type_choices_match_llama_quantize_run_here(deep_f32, tmp_path, quant):
    """llama-quantize (llama-cpp-python 0.3.36 sdist) run on our F32 file of DEEP_SHAPE: tensor by
    tensor the types our plan gives that shape."""
    out = tmp_path / f"deep-{quant}.gguf"
    r = subprocess.run([str(llama_tool("llama-quantize")), str(deep_f32), str(out), LLAMA_FTYPES[quant], "2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    theirs = {n: t.type.name for n, t in read_gguf(out).tensors.items()}
    ours = {t.name: t.type.name for t in quant_plan(DEEP_SHAPE, quant)}
    assert ours == theirs, {n: (ours.get(n), theirs.get(n)) for n in theirs if ours.get(n) != theirs.get(n)}

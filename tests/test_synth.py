"""Synthetic models: llama-quantize's type choices, real shapes for every preset, files
the gguf package reads back, and weights that keep activations sane."""
import gguf
import numpy as np
import pytest

from harness.config import config_from_metadata
from harness.ggml_types import GGMLType
from harness.gguf_file import read_gguf
from harness.model import expected_tensors, load_model
from harness.presets import PRESETS
from harness.reference import reference_logits
from harness.synth import QUANTS, quant_plan, synth_metadata, synthesize

# the oracle's shape, so our type choices can be compared with llama-quantize's own output
ORACLE_SHAPE = PRESETS["tiny"].with_(name="oracle", n_layer=4, tied=False, vocab_size=2048)
ORACLE_FILE = {"f32": "f32", "f16": "f16", "bf16": "bf16", "q8_0": "q8_0", "q4_0": "q4_0",
               "q6_k": "q6_k", "iq4_xs": "iq4_xs", "q4_k_m": "q4_k_m"}


@pytest.mark.parametrize("quant", sorted(ORACLE_FILE))
def test_type_choices_match_llama_quantize(oracle_dir, quant):
    """Same tensor names, shapes and types as llama-quantize wrote into the oracle file."""
    plan = {t.name: (t.type, t.shape) for t in quant_plan(ORACLE_SHAPE, quant)}
    g = read_gguf(oracle_dir / f"tiny-{ORACLE_FILE[quant]}.gguf")
    theirs = {n: (t.type, t.shape) for n, t in g.tensors.items()}
    assert plan == theirs


def test_metadata_keys_are_the_converters(oracle_dir):
    """Every key llama.cpp's converter wrote for the oracle model is in ours, with the same
    value type; ours adds only harness.* provenance keys."""
    g = read_gguf(oracle_dir / "tiny-f32.gguf")
    md = synth_metadata(ORACLE_SHAPE, "f32", 0)
    assert set(g.metadata) <= set(md)
    assert {k for k in md if k not in g.metadata} == {k for k in md if k.startswith("harness.")}


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
    specs = {sp.name: sp for sp in expected_tensors(c, names)}
    assert set(specs) == names
    for t in plan:
        assert specs[t.name].shape == t.shape
        assert t.type in specs[t.name].types


def test_0p8b_shape_has_the_published_parameter_count():
    """llama.cpp's converter output for the 0.8B shape holds 752.4 M parameters (SPEC appendix)."""
    n = sum(int(np.prod(t.shape)) for t in quant_plan(PRESETS["0.8b"], "f32"))
    assert abs(n / 1e6 - 752.4) < 0.1, n


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
    from harness.reference import Reference, rms_norm
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
@pytest.mark.parametrize("quant", QUANTS)
def test_llama_cpp_runs_our_synthetic_files(tmp_path, quant):
    """The writer's compatibility test: llama.cpp's own llama-bench loads and runs the file."""
    import subprocess
    p = synthesize("tiny", quant, tmp_path / f"tiny-{quant}.gguf", seed=1).path
    r = subprocess.run([LLAMA_BENCH, "-m", p, "-p", "8", "-n", "4", "-r", "1", "-t", "1", "-o", "json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    tests = json.loads(r.stdout)
    assert {(t["n_prompt"], t["n_gen"]) for t in tests} == {(8, 0), (0, 4)}
    assert all(t["avg_ts"] > 0 for t in tests)

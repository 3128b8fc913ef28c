"""Synthetic models: llama-quantize's type choices, real shapes for every preset, files
the gguf package reads back, and weights that keep activations sane."""
from pathlib import Path

import gguf
import numpy as np
import pytest

from harness.model.config import config_from_metadata
from harness.ggml_types import GGMLType
from harness.model.gguf_reader import read_gguf
from harness.model.loader import expected_tensors, load_model
from harness.model.presets import PRESETS
from harness.engine.reference import reference_logits
from harness.model.synth import LLAMA_FTYPES, QUANTS, quant_plan, synth_metadata, synthesize
from support.llama_quantize import LLAMA_QUANTIZE, NEEDS_IMATRIX, llama_quantize, uniform_imatrix

# the oracle's shape, so our type choices can be compared with llama-quantize's own output
ORACLE_SHAPE = PRESETS["tiny"].with_(name="oracle", n_layer=4, tied=False, vocab_size=2048)
# every oracle file llama-quantize made (tiny-nvfp4 / tiny-mxfp4 in types/ were written directly, not by it); the
# IQ1 / IQ2 / IQ3_XXS ones with a uniform importance matrix, which llama-quantize requires for those mixes
ORACLE_FILE = {"f32": "f32", "f16": "f16", "bf16": "bf16", "q8_0": "q8_0", "q4_0": "q4_0",
               "q6_k": "q6_k", "iq4_xs": "iq4_xs", "q4_k_m": "q4_k_m", "q5_k_m": "q5_k_m", "q4_1": "types/tiny-q4_1",
               "q5_0": "types/tiny-q5_0", "q5_1": "types/tiny-q5_1", "iq4_nl": "types/tiny-iq4_nl",
               "q2_k": "types/tiny-q2_k", "q3_k_m": "types/tiny-q3_k_m",
               **{q: f"types/tiny-{q}" for q in ("iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s",
                                                  "tq1_0", "tq2_0")}}


@pytest.mark.parametrize("quant", sorted(ORACLE_FILE))
def test_type_choices_match_llama_quantize(oracle_dir, quant):
    """Same tensor names, shapes and types as llama-quantize wrote into the oracle file."""
    plan = {t.name: (t.type, t.shape) for t in quant_plan(ORACLE_SHAPE, quant)}
    f = ORACLE_FILE[quant]
    g = read_gguf(oracle_dir / (f"{f}.gguf" if "/" in f else f"tiny-{f}.gguf"))
    theirs = {n: (t.type, t.shape) for n, t in g.tensors.items()}
    assert plan == theirs


@pytest.mark.parametrize("quant", ["f32", "q8_0", "q4_k_m", "mxfp4_moe"])
def test_moe_type_choices_match_llama_quantize(oracle_dir, quant):
    """The tinymoe preset has the MoE oracle's shape: tensor by tensor the same names, shapes
    (the shared-expert gate [E, 1] from the converter, [E] from llama-quantize) and types
    (router F32; with 8 experts attn_k / attn_v / attn_qkv Q8_0 and, for Q4_K_M, attn_output
    Q5_K; expert ffn_down Q6_K in the use_more_bits layers; MXFP4_MOE: expert stacks MXFP4, the rest Q8_0)."""
    plan = {t.name: (t.type, t.shape) for t in quant_plan(PRESETS["tinymoe"], quant)}
    g = read_gguf(oracle_dir / ("types/" if quant == "mxfp4_moe" else "") / f"tinymoe-{quant}.gguf")
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


@pytest.mark.parametrize("quant", ["f32", "q8_0", "q4_k_m", "iq4_xs", "mxfp4_moe", "iq2_xxs"])
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


@pytest.mark.parametrize("quant,main_type", [("iq2_m", "IQ2_S"), ("iq1_s", "IQ1_S"), ("iq3_xxs", "IQ3_XXS")])
def test_random_code_files_say_so_and_have_the_intended_std(tmp_path, capsys, quant, main_type):
    """The IQ1 / IQ2 / IQ3 tensors of a synthetic file are random valid codes (no grid search): the file
    records it, `harness info` says so, and they dequantize to finite values with about the standard deviation
    the float weights of that tensor would have. A file of quantizer output (q4_k_m; tq1_0, whose ternary
    quantizer is cheap) says nothing of the kind."""
    from harness.cli.main import main
    from harness.model.random_codes import RANDOM_CODE_TYPES
    from harness.model.synth import _matrix_std
    s = PRESETS["tiny"]
    p = synthesize("tiny", quant, tmp_path / f"tiny-{quant}.gguf", seed=5, threads=2).path
    random = [t for t in quant_plan(s, quant) if t.type in RANDOM_CODE_TYPES]
    assert main_type in {t.type.name for t in random}
    with load_model(p) as m:
        for t in random:
            w = m.dequantized(t.name)
            assert np.isfinite(w).all(), t.name
            assert 0.8 < w.std() / _matrix_std(t.name, t.shape, s) < 1.25, (t.name, w.std())
        codes = m.metadata["harness.synth.random_codes"]
    assert {t.type.name for t in random} == set(codes.split(" tensors hold")[0].split(", "))
    capsys.readouterr()
    assert main(["info", p, "--no-tensors"]) == 0
    info = capsys.readouterr().out
    assert "tensors hold random valid codes, not a quantizer's output" in info
    for quantized in ("q4_k_m", "tq1_0"):
        q = synthesize("tiny", quantized, tmp_path / f"tiny-{quantized}.gguf", seed=5, threads=2).path
        assert main(["info", q, "--no-tensors"]) == 0
        assert "random valid codes" not in capsys.readouterr().out


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
# their grid search over DEEP_SHAPE takes 2-15 s each on 2 cores, so these run --dry-run here: llama-quantize's own
# per-tensor choice, printed, nothing quantized (real runs of iq1_s ... iq3_xxs and iq2_xxs made the oracle files
# of ORACLE_FILE; iq2_m, iq3_xs and iq3_m run for real in tests/model/test_ftype_files_live.py)
DRY_RUN = {"iq1_s", "iq1_m", "iq2_xs", "iq2_s", "iq3_xxs", "iq2_m", "iq2_xxs", "iq3_xs", "iq3_m"}
# shapes for the rules DEEP_SHAPE does not reach: a tied LM head (token_embd takes the head's type); rows that do not
# hold whole 256-blocks (n_embd 288: every K / IQ type falls back, the head Q8_0; n_ff 304: ffn_down rows of no whole
# 32-block either, F16); MoE with exactly 8 experts (Mixtral rules; IQ1 / IQ2 count ffn_down tensors, two a layer)
# and with 4 (n_expert >= 4 rules)
RULE_SHAPES = {"tied": PRESETS["tiny"],
               "odd": PRESETS["tiny"].with_(name="odd", n_embd=288, n_ff=304, tied=False, vocab_size=2048),
               "moe8": PRESETS["tinymoe"].with_(name="moe8", n_layer=8),
               "moe4": PRESETS["tinymoe"].with_(name="moe4", n_layer=8, n_expert=4)}


def _mismatches(shape, quant: str, theirs: dict[str, str]) -> dict:
    ours = {t.name: t.type.name for t in quant_plan(shape, quant)}
    assert len(theirs) == len(quant_plan(shape, quant))
    return {n: (ours.get(n), theirs.get(n)) for n in set(ours) | set(theirs) if ours.get(n) != theirs.get(n)}


@pytest.fixture(scope="module")
def deep_f32(tmp_path_factory):
    path = tmp_path_factory.mktemp("deep") / "deep-f32.gguf"
    synthesize(DEEP_SHAPE, "f32", path, seed=0)
    return path


@pytest.mark.skipif(LLAMA_QUANTIZE is None, reason="llama-quantize not built (HARNESS_LLAMA_CPP_BIN)")
@pytest.mark.parametrize("quant", LLAMA_FTYPES)
def test_type_choices_match_llama_quantize_run_here(deep_f32, tmp_path, quant):
    """llama-quantize (llama-cpp-python 0.3.36 sdist) run on our F32 file of DEEP_SHAPE: tensor by
    tensor the types our plan gives that shape. Without an importance matrix, except for the mixes it refuses
    to make without one (it does refuse them: checked), which get a uniform one."""
    out = tmp_path / f"deep-{quant}.gguf"
    imatrix = None
    if quant in NEEDS_IMATRIX:
        refusal = llama_quantize(deep_f32, out, quant)
        assert isinstance(refusal, str) and "requires an importance matrix" in refusal, refusal
        imatrix = uniform_imatrix(deep_f32, tmp_path / "imatrix.dat")
    theirs = llama_quantize(deep_f32, None if quant in DRY_RUN else out, quant, imatrix)
    assert isinstance(theirs, dict), theirs
    assert not _mismatches(DEEP_SHAPE, quant, theirs)


@pytest.fixture(scope="module")
def rule_files(tmp_path_factory):
    """RULE_SHAPES' F32 files and uniform importance matrices, written on first use."""
    made = {}

    def get(name: str) -> tuple[Path, Path]:
        if name not in made:
            d = tmp_path_factory.mktemp(name)
            synthesize(RULE_SHAPES[name], "f32", d / "f32.gguf", seed=0)
            made[name] = d / "f32.gguf", uniform_imatrix(d / "f32.gguf", d / "imatrix.dat")
        return made[name]
    return get


@pytest.mark.skipif(LLAMA_QUANTIZE is None, reason="llama-quantize not built (HARNESS_LLAMA_CPP_BIN)")
@pytest.mark.parametrize("quant", LLAMA_FTYPES)
@pytest.mark.parametrize("shape", list(RULE_SHAPES))
def test_type_choices_match_llama_quantize_dry_run(rule_files, shape, quant):
    """llama-quantize --dry-run on our F32 files of RULE_SHAPES: tied head, fallbacks of rows that do not hold
    whole blocks, MoE rules; tensor by tensor our plan's types."""
    f32, imatrix = rule_files(shape)
    theirs = llama_quantize(f32, None, quant, imatrix if quant in NEEDS_IMATRIX else None)
    assert isinstance(theirs, dict), theirs
    assert not _mismatches(RULE_SHAPES[shape], quant, theirs)

"""Quant recipes and per-tensor overrides (issue 16 items 2-3, NVFP4 part): the nvfp4 recipe keeps
what NVFP4 checkpoints keep in BF16; `+deltanet=bf16` and llama-quantize-style
`--tensor-type REGEX=TYPE` retype tensors, are recorded in the file and shown by `harness info`;
the seed experiment's two recipes are one flag apart in a sweep."""
import pytest

from harness.cli.main import main
from harness.errors import UsageError
from harness.ggml_types import GGMLType as T
from harness.model.loader import load_model
from harness.model.presets import PRESETS
from harness.model.synth import cached_model_path, quant_plan, synthesize


def types(plan):
    return {t.name: t.type for t in plan}


def test_the_nvfp4_recipe_keeps_embedding_head_and_small_deltanet_inputs_in_bf16():
    plan = types(quant_plan(PRESETS["tiny"], "nvfp4"))
    assert plan["token_embd.weight"] == T.BF16                  # tiny ties the LM head to it
    assert types(quant_plan(PRESETS["tinymoe"], "nvfp4"))["output.weight"] == T.BF16   # an untied head
    assert plan["blk.0.ssm_alpha.weight"] == plan["blk.0.ssm_beta.weight"] == T.BF16
    for name in ("blk.0.attn_qkv.weight", "blk.0.attn_gate.weight", "blk.0.ssm_out.weight", "blk.3.attn_q.weight",
                 "blk.3.attn_output.weight", "blk.0.ffn_down.weight"):
        assert plan[name] == T.NVFP4, name
    assert plan["blk.0.attn_norm.weight"] == plan["blk.0.ssm_a"] == T.F32


def test_deltanet_group_and_the_equivalent_regex_retype_the_same_tensors():
    s = PRESETS["tiny"]
    base = types(quant_plan(s, "nvfp4"))
    grouped = types(quant_plan(s, "nvfp4+deltanet=bf16"))
    regex = types(quant_plan(s, "nvfp4", ("attn_qkv|attn_gate|ssm_out=bf16",)))
    assert grouped == regex
    changed = {n for n in base if base[n] != grouped[n]}
    recurrent = [i for i, r in enumerate(s.recurrent) if r]
    assert changed == {f"blk.{i}.{k}.weight" for i in recurrent for k in ("attn_qkv", "attn_gate", "ssm_out")}
    assert all(grouped[n] == T.BF16 for n in changed)


def test_overrides_apply_left_to_right_and_never_touch_norms():
    plan = types(quant_plan(PRESETS["tiny"], "q8_0+ffn=q4_k+ffn=bf16", (r"norm=q8_0", r"blk\.0\.ffn_up=nvfp4")))
    assert plan["blk.1.ffn_gate.weight"] == T.BF16 and plan["blk.0.ffn_up.weight"] == T.NVFP4
    assert plan["blk.0.attn_norm.weight"] == T.F32            # not quantizable: no override retypes it


@pytest.mark.parametrize("spec, says", [("nvfp4+bogus=bf16", "not a tensor group"), ("nvfp4+deltanet=q9", "unknown type"),
                                        ("q7+deltanet=bf16", "unknown quant type 'q7'"), ("nvfp4+deltanet", "PATTERN=TYPE")])
def test_bad_specs_are_named(spec, says):
    with pytest.raises(UsageError, match=says):
        quant_plan(PRESETS["tiny"], spec)


def test_a_block_that_does_not_fit_is_refused():
    narrow = PRESETS["tiny"].with_(n_embd=320)                  # rows of 320: 5 NVFP4 blocks, not whole Q4_K ones
    assert types(quant_plan(narrow, "f32", ("ffn_gate=nvfp4",)))["blk.0.ffn_gate.weight"] == T.NVFP4
    with pytest.raises(UsageError, match="whole Q4_K blocks"):
        quant_plan(narrow, "f32", ("ffn_gate=q4_k",))


def test_the_file_records_its_overrides_and_runs(tmp_path, capsys):
    out = tmp_path / "m.gguf"
    assert main(["synth", "--preset", "tiny", "--quant", "nvfp4+deltanet=bf16", "--tensor-type", "ffn_down=q8_0",
                 "-o", str(out)]) == 0
    with load_model(out) as m:
        md = m.metadata
        assert md["harness.synth.quant"] == "nvfp4+deltanet=bf16" and md["harness.synth.tensor_types"] == "ffn_down=q8_0"
        assert md["general.file_type"] == 39
        assert m.info("blk.0.ffn_down.weight").type == T.Q8_0 and m.info("blk.0.attn_qkv.weight").type == T.BF16
        from harness.engine.session import Session
        with Session(m, threads=1, ctx=16) as s:
            assert not s._nm.as_f32                     # every type of the file has C kernels
            assert s.prefill([1, 2, 3]).shape == (3, PRESETS["tiny"].vocab_size)
    capsys.readouterr()
    assert main(["info", str(out), "--no-tensors"]) == 0
    assert "then overrides deltanet=bf16, ffn_down=q8_0" in capsys.readouterr().out
    assert main(["synth", "--preset", "tiny", "--quant", "nvfp4", "--tensor-type", "x=q9", "-o", str(out)]) == 1


def test_the_seed_experiments_pair_is_one_flag_in_a_sweep(tmp_path):
    from harness.measure.grid import build_grid
    g = build_grid({"preset": "tiny", "quant": "nvfp4,nvfp4+deltanet=bf16", "pp": 8, "tg": 4}, source="test")
    assert [m.label for m in g.models] == ["tiny-nvfp4", "tiny-nvfp4+deltanet=bf16"]
    assert cached_model_path("tiny", "nvfp4+deltanet=bf16").name == "synth-tiny-nvfp4+deltanet-bf16-s0.gguf"
    synthesize("tiny", "nvfp4+deltanet=bf16", tmp_path / "x.gguf")

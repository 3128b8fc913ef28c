"""Files as llama.cpp's own converter writes them (tests/data/converter/, made by
tests/support/make_converter_fixture.py): a random transformers Qwen3.5 with an MTP block and a real
byte-level BPE tokenizer, converted to F32 twice, keeping the MTP block and with --no-mtp.

The trunk must not see the MTP block: both files give the same logits bit for bit, within the oracle's
2e-3 of transformers float64; the GGUF tokenizer gives the transformers tokenizer's ids; `harness info`
shows the MTP block and the tokenizer."""
import json

import numpy as np
import pytest

from harness.cli.main import main
from harness.engine.reference import reference_logits
from harness.model.loader import load_model
from support.oracle import run_tokens
from support.paths import ROOT

DATA = ROOT / "tests" / "data" / "converter"
MTP, NOMTP = DATA / "qwen35-mtp-f32.gguf", DATA / "qwen35-nomtp-f32.gguf"
RECORDED = json.loads((DATA / "tokenizer-ids.json").read_text(encoding="utf-8"))
with np.load(DATA / "hf-logits.npz") as _z:
    HF = dict(_z)
BOUND = 2e-3          # F32 file, any engine path, against transformers float64 (oracle README)

N_LAYER, E = 4, 64
# the MTP block as the converter writes it: a full-attention decoder layer plus the nextn tensors
MTP_TENSORS = {
    "blk.4.nextn.eh_proj.weight": (E, 2 * E),
    "blk.4.nextn.enorm.weight": (E,),
    "blk.4.nextn.hnorm.weight": (E,),
    "blk.4.nextn.shared_head_norm.weight": (E,),
    "blk.4.attn_norm.weight": (E,),
    "blk.4.attn_q.weight": (2 * 2 * 64, E),
    "blk.4.attn_k.weight": (64, E),
    "blk.4.attn_v.weight": (64, E),
    "blk.4.attn_q_norm.weight": (64,),
    "blk.4.attn_k_norm.weight": (64,),
    "blk.4.attn_output.weight": (E, 2 * 64),
    "blk.4.post_attention_norm.weight": (E,),
    "blk.4.ffn_gate.weight": (128, E),
    "blk.4.ffn_up.weight": (128, E),
    "blk.4.ffn_down.weight": (E, 128),
}


@pytest.fixture(scope="module")
def models():
    with load_model(MTP) as mtp, load_model(NOMTP) as nomtp:
        yield mtp, nomtp


def test_both_files_load_with_the_same_trunk(models):
    mtp, nomtp = models
    assert mtp.config.n_layer == nomtp.config.n_layer == N_LAYER
    assert (mtp.config.n_layer_all, mtp.config.n_mtp) == (N_LAYER + 1, 1)
    assert (nomtp.config.n_layer_all, nomtp.config.n_mtp) == (N_LAYER, 0)
    assert mtp.config.recurrent == nomtp.config.recurrent == (True, True, True, False)
    assert mtp.config.tied_output and nomtp.config.tied_output
    # the forward pass reads the same tensors, byte for byte, from both
    assert [s.name for s in mtp.specs] == [s.name for s in nomtp.specs]
    for s in mtp.specs:
        assert np.array_equal(mtp.raw(s.name), nomtp.raw(s.name)), s.name


def test_mtp_file_holds_the_nextn_block(models):
    mtp, nomtp = models
    assert mtp.metadata["qwen35.block_count"] == N_LAYER + 1
    assert mtp.metadata["qwen35.nextn_predict_layers"] == 1
    assert mtp.metadata["qwen35.attention.recurrent_layers"].tolist() == [True, True, True, False, False]
    extra = {n: mtp.info(n) for n in set(mtp.gguf.tensors) - {s.name for s in mtp.specs}}
    assert {n: t.shape for n, t in extra.items()} == MTP_TENSORS
    assert all(t.type.name == "F32" for t in extra.values())
    # --no-mtp: no nextn key, no block 4
    assert "qwen35.nextn_predict_layers" not in nomtp.metadata
    assert nomtp.metadata["qwen35.block_count"] == N_LAYER
    assert not [n for n in nomtp.gguf.tensors if n.startswith("blk.4.")]


@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_trunk_logits_equal_the_no_mtp_twin_and_transformers(models, mode):
    tokens = HF["tokens"]
    native = [run_tokens(m, tokens, mode) for m in models]
    ref = [reference_logits(m, tokens, mode) for m in models]
    assert np.array_equal(native[0], native[1]), "native engine: MTP file differs from its no-MTP twin"
    assert np.array_equal(ref[0], ref[1]), "reference: MTP file differs from its no-MTP twin"
    for name, ours in (("native", native[0]), ("reference", ref[0])):
        err = float(np.abs(ours - HF["hf_f64"]).max())
        print(f"{mode} {name}: max abs err {err:.2e} vs transformers float64 ({len(tokens)} tokens)")
        assert ours.shape == HF["hf_f64"].shape and err < BOUND


@pytest.mark.parametrize("name", sorted(RECORDED["ids"]))
def test_gguf_tokenizer_gives_the_transformers_ids(models, name):
    text, ids = RECORDED["texts"][name], RECORDED["ids"][name]
    for m in models:
        tok = m.tokenizer()
        assert tok.encode(text) == ids
        assert tok.decode(ids, special=True) == text


def test_tokenizer_metadata_is_the_converters(models):
    info = models[0].tokenizer().info()
    assert (info.model, info.pre, info.vocab_size) == ("gpt2", "qwen35", RECORDED["vocab_size"])
    tokens = models[0].tokenizer().tokens
    assert tokens[info.eos_id] == RECORDED["eos"] and tokens[info.pad_id] == RECORDED["pad"]
    assert info.bos_id is None and not info.add_bos
    assert info.special == ((1019, "<|endoftext|>"), (1020, "<|im_start|>"), (1021, "<|im_end|>"),
                            (1022, "<think>"), (1023, "</think>"))


def test_info_shows_the_mtp_block_and_the_tokenizer(capsys):
    assert main(["info", str(MTP)]) == 0
    out = capsys.readouterr().out
    assert "layers             4 trunk (+1 MTP) = block_count 5" in out
    assert ("MTP                1 block (blk.4): 15 tensors, 257.75 KiB; nextn eh_proj, enorm, hnorm, "
            "shared_head_norm; the trunk skips it; generate --draft mtp drafts with it") in out
    assert "tokenizer  gpt2 (byte-level BPE), pre qwen35, 1,024 tokens, 763 merges" in out
    assert "eos 1021 '<|im_end|>', padding 1019 '<|endoftext|>'" in out
    assert "special: 1019 '<|endoftext|>', 1020 '<|im_start|>', 1021 '<|im_end|>', 1022 '<think>'" in out
    assert "(+15 tensors not used by the forward pass" in out

    assert main(["info", str(NOMTP), "--no-tensors"]) == 0
    out = capsys.readouterr().out
    assert "layers             4 trunk (+0 MTP) = block_count 4" in out
    assert "MTP   " not in out and "pre qwen35" in out

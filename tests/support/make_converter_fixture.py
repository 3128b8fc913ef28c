"""Make the converter fixtures of tests/data/converter/ with llama.cpp's own convert_hf_to_gguf.py.

    python tests/support/make_converter_fixture.py OUT_DIR --llama-cpp LLAMA_CPP_DIR

Run it with a Python that has torch, transformers (with Qwen3_5ForCausalLM), tokenizers, safetensors
and the converter's needs (gguf from LLAMA_CPP_DIR/gguf-py, sentencepiece, protobuf); the tests do
not run it and need none of these. LLAMA_CPP_DIR is a llama.cpp tree holding convert_hf_to_gguf.py
(the tests' files came from the copy in the llama-cpp-python 0.3.36 sdist, vendor/llama.cpp).

What it does:
1. trains a byte-level BPE tokenizer with the `tokenizers` library on tests/data/tokenizer/corpus.txt,
   with transformers' own Qwen3.5 tokenizer pipeline (Qwen3_5Tokenizer: NFC, the qwen35 split regex,
   byte-level) and Qwen's special tokens, saved as a transformers tokenizer (tokenizer.json +
   tokenizer_config.json);
2. builds a random transformers Qwen3_5ForCausalLM (torch seed 1234; norm weights, A_log, dt_bias
   and conv weights randomized too) with an MTP block (`mtp_num_hidden_layers: 1`). transformers
   has no MTP module and ignores `mtp.*` weights, so the block (a full-attention decoder layer plus
   fc, pre_fc_norm_embedding, pre_fc_norm_hidden and norm, as Qwen's hub checkpoints name them) is
   made from transformers' own layer classes and added to model.safetensors by hand;
3. runs the converter twice, F32: keeping MTP (its default) -> qwen35-mtp-f32.gguf, and with
   --no-mtp -> qwen35-nomtp-f32.gguf. The converter names the pre-tokenizer by hashing the ids of a
   check text, which only knows published tokenizers, so it would refuse this one; the converter is
   imported as a module with TextModel.get_vocab_base_pre patched to return "qwen35" (what a real
   Qwen3.5 hub file says). The converter file itself is not changed;
4. records the transformers tokenizer's ids for a few texts (tokenizer-ids.json) and transformers'
   float64 logits of the model on one short token sequence (hf-logits.npz).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import Qwen3_5ForCausalLM

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "tokenizer" / "corpus.txt"

SEED = 1234
MODEL_DIR = "qwen35-tiny-mtp"          # the checkpoint folder's name
MODEL_NAME = "Qwen3.5 tiny MTP"        # general.name in the GGUF files
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED = ["<think>", "</think>"]          # added, not special (as in Qwen's tokenizer.json)

# The model: 4 layers (3 Gated DeltaNet + 1 full attention) and one MTP block, small enough to store.
CONFIG = {
    "architectures": ["Qwen3_5ForCausalLM"],
    "model_type": "qwen3_5_text",
    "vocab_size": 1024,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "layer_types": ["linear_attention", "linear_attention", "linear_attention", "full_attention"],
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 32,
    "linear_value_head_dim": 32,
    "linear_conv_kernel_dim": 4,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "initializer_range": 0.05,
    "max_position_embeddings": 4096,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25,
                        "mrope_section": [3, 3, 2], "mrope_interleaved": True},
    "tie_word_embeddings": True,       # as the small Qwen3.5 checkpoints (0.8B, 2B); keeps the files small
    "attention_bias": False,
    "mtp_num_hidden_layers": 1,
    "mtp_use_dedicated_embeddings": False,
}

# texts whose transformers ids the GGUF tokenizer must reproduce (NFC already: llama.cpp does not normalize)
TEXTS = {
    "prose": "The quick brown fox jumps over the lazy dog. It's 4 o'clock; they'd've left.",
    "code": "def f(x):\n    return {\"a\": [1, 2, 3]}  # comment\n\nfor (int i = 0; i < n; ++i) {}\n",
    "digits": "0 12 123 1234 3.14159 2026-12-05",
    "whitespace": "a    b\t\tc\n\n\nd   \n  e \r\n f",
    "unicode": "café naïve 我能吞下玻璃 😀🚀 Ünïcödé",
    "chat": "<|im_start|>user\nHello, who are you?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi!",
}


def train_tokenizer(out: Path, vocab_size: int) -> None:
    """A byte-level BPE trained on the corpus, wrapped as transformers' Qwen3_5Tokenizer and saved.
    Ids: the trained vocabulary, then <|endoftext|>, <|im_start|>, <|im_end|>, <think>, </think>."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    from transformers.models.qwen3_5.tokenization_qwen3_5 import Qwen3_5Tokenizer

    pipeline = Qwen3_5Tokenizer()._tokenizer            # transformers' Qwen3.5 pipeline, empty vocabulary
    tok = Tokenizer(models.BPE())
    tok.normalizer, tok.pre_tokenizer, tok.decoder = pipeline.normalizer, pipeline.pre_tokenizer, pipeline.decoder
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIAL) - len(ADDED), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([str(CORPUS)], trainer)
    bpe = json.loads(tok.to_str())["model"]
    hf = Qwen3_5Tokenizer(vocab=bpe["vocab"], merges=[tuple(m) for m in bpe["merges"]],
                          eos_token=None, pad_token=None, unk_token=None, bos_token=None, model_max_length=4096)
    hf.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL], special_tokens=True)
    hf.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED])
    hf.eos_token, hf.pad_token = "<|im_end|>", "<|endoftext|>"      # as Qwen's tokenizer_config.json
    hf.save_pretrained(out)


def _randomize(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Give every parameter that transformers initializes to a constant a random value, so all matter."""
    import torch
    from transformers.models.qwen3_5 import modeling_qwen3_5 as q

    def normal(p: torch.Tensor, std: float, mean: float = 0.0) -> None:
        with torch.no_grad():
            p.copy_(mean + std * torch.randn(p.shape, generator=gen, dtype=p.dtype))

    for mod in model.modules():
        if isinstance(mod, q.Qwen3_5RMSNorm):           # scale is 1 + weight
            normal(mod.weight, 0.1)
        elif isinstance(mod, q.Qwen3_5RMSNormGated):    # scale is weight
            normal(mod.weight, 0.1, 1.0)
        elif isinstance(mod, q.Qwen3_5GatedDeltaNet):
            with torch.no_grad():
                mod.A_log.copy_(torch.empty(mod.A_log.shape).uniform_(0.5, 8, generator=gen).log())
                mod.dt_bias.copy_(torch.empty(mod.dt_bias.shape).uniform_(-1, 1, generator=gen))
            normal(mod.conv1d.weight, 0.3)


def build_model(out: Path, hf_config: dict) -> tuple[Qwen3_5ForCausalLM, list[str]]:
    """The random model, saved to out with its MTP block added to model.safetensors; returns it and
    the names of the MTP weights."""
    import torch
    from safetensors.torch import load_file, save_file
    from torch import nn
    from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig
    from transformers.models.qwen3_5.modeling_qwen3_5 import Qwen3_5DecoderLayer, Qwen3_5RMSNorm

    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    config = Qwen3_5TextConfig(**{k: v for k, v in hf_config.items() if k != "model_type"})
    model = Qwen3_5ForCausalLM(config).eval()
    _randomize(model, gen)

    # the MTP block as Qwen's checkpoints hold it (mtp.*): a full-attention decoder layer, the fc that
    # joins [embedding; hidden], and its three norms
    E = config.hidden_size
    full = config.layer_types.index("full_attention")
    mtp = nn.Module()
    mtp.layers = nn.ModuleList([Qwen3_5DecoderLayer(config, full)])
    mtp.fc = nn.Linear(2 * E, E, bias=False)
    mtp.pre_fc_norm_embedding = Qwen3_5RMSNorm(E, eps=config.rms_norm_eps)
    mtp.pre_fc_norm_hidden = Qwen3_5RMSNorm(E, eps=config.rms_norm_eps)
    mtp.norm = Qwen3_5RMSNorm(E, eps=config.rms_norm_eps)
    for p in mtp.parameters():
        if p.ndim == 2:
            with torch.no_grad():
                p.copy_(config.initializer_range * torch.randn(p.shape, generator=gen))
    _randomize(mtp, gen)

    model.save_pretrained(out)
    st = out / "model.safetensors"
    tensors = load_file(st)
    if any(k.startswith("mtp.") for k in tensors):
        raise SystemExit("transformers saved mtp.* weights itself: this script adds them by hand")
    tensors |= {f"mtp.{k}": v.detach().contiguous() for k, v in mtp.state_dict().items()}
    save_file(tensors, st, metadata={"format": "pt"})
    # transformers keeps the config keys it has no field for: the converter reads the MTP count there
    if json.loads((out / "config.json").read_text()).get("mtp_num_hidden_layers") != 1:
        raise SystemExit("config.json lost mtp_num_hidden_layers")
    return model, sorted(k for k in tensors if k.startswith("mtp."))


def run_converter(llama_cpp: Path, args: list[str]) -> None:
    """convert_hf_to_gguf.py's main() in a fresh process (it sets class attributes such as no_mtp)."""
    subprocess.run([sys.executable, __file__, "--convert", str(llama_cpp), *args], check=True)


def _convert_in_process(llama_cpp: str, args: list[str]) -> None:
    sys.path[:0] = [llama_cpp, str(Path(llama_cpp) / "gguf-py")]
    from conversion.base import TextModel

    # a new tokenizer's check-text hash is unknown to the converter: name it as Qwen3.5's files do
    TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen35"
    import convert_hf_to_gguf
    sys.argv = ["convert_hf_to_gguf.py", *args]
    convert_hf_to_gguf.main()


def _json_lines(record: dict) -> str:
    """JSON with one line per top-level key and per entry of a dict value."""
    def dump(v: object) -> str:
        return json.dumps(v, ensure_ascii=False)
    rows = []
    for k, v in record.items():
        if isinstance(v, dict):
            inner = ",\n".join(f"  {dump(ik)}: {dump(iv)}" for ik, iv in v.items())
            rows.append(f" {dump(k)}: {{\n{inner}\n }}")
        else:
            rows.append(f" {dump(k)}: {dump(v)}")
    return "{\n" + ",\n".join(rows) + "\n}\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--convert":
        _convert_in_process(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder for the GGUF files, tokenizer-ids.json and hf-logits.npz")
    ap.add_argument("--llama-cpp", type=Path, required=True, help="llama.cpp tree with convert_hf_to_gguf.py")
    ap.add_argument("--checkpoint", type=Path,
                    help="keep the transformers checkpoint in this folder (default: a temporary one)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.checkpoint:
        a.checkpoint.mkdir(parents=True, exist_ok=True)
        make(a.out, a.llama_cpp, a.checkpoint)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            make(a.out, a.llama_cpp, Path(tmp) / MODEL_DIR)


def make(out: Path, llama_cpp: Path, hf_dir: Path) -> None:
    import numpy as np
    import torch
    import transformers
    from transformers import AutoTokenizer

    train_tokenizer(hf_dir, CONFIG["vocab_size"])
    model, mtp_names = build_model(hf_dir, CONFIG)

    # what the converter and the tests see: the tokenizer as AutoTokenizer loads it from the folder
    tok = AutoTokenizer.from_pretrained(hf_dir)
    ids = {name: tok.encode(text, add_special_tokens=False) for name, text in TEXTS.items()}
    head = {"transformers": transformers.__version__, "tokenizer_class": type(tok).__name__,
            "vocab_size": len(tok), "eos": tok.eos_token, "pad": tok.pad_token}
    (out / "tokenizer-ids.json").write_text(_json_lines(head | {"texts": TEXTS, "ids": ids}))

    # transformers' float64 logits of the trunk (it has no MTP module) on the chat text's ids
    tokens = ids["chat"]
    with torch.no_grad():
        f64 = model.to(torch.float64)(torch.tensor([tokens])).logits[0].numpy()
    np.savez_compressed(out / "hf-logits.npz", tokens=np.array(tokens, dtype=np.int32),
                        hf_f64=f64.astype(np.float32))

    mtp_file, nomtp_file = out / "qwen35-mtp-f32.gguf", out / "qwen35-nomtp-f32.gguf"
    common = [str(hf_dir), "--outtype", "f32", "--model-name", MODEL_NAME]
    run_converter(llama_cpp, [*common, "--outfile", str(mtp_file)])
    run_converter(llama_cpp, [*common, "--outfile", str(nomtp_file), "--no-mtp"])

    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    print(f"MTP weights added by hand: {', '.join(mtp_names)}")
    for p in (mtp_file, nomtp_file, out / "tokenizer-ids.json", out / "hf-logits.npz"):
        print(f"wrote {p} ({p.stat().st_size:,} B)")


if __name__ == "__main__":
    main()

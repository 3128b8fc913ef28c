"""Train the small byte-level BPE tokenizer the tokenizer tests use (tests/data/tokenizer/).

    python tests/support/make_test_tokenizer.py

It is Qwen3.5's tokenizer in form, not in content: the Qwen3.5 split regex (llama.cpp's qwen35
pre-tokenizer), byte-level BPE, Qwen's special tokens (<|endoftext|>, <|im_start|>, <|im_end|>
special; <think>, </think> added but not special, as in Qwen's tokenizer.json), trained with the
`tokenizers` library on tests/data/tokenizer/corpus.txt to at most 4096 tokens (the tiny preset's
vocabulary). A GGUF made from it (`harness synth --tokenizer`) says tokenizer.ggml.pre = qwen35
because we write it: llama.cpp's converter would not recognise the hash of a new tokenizer.
"""
from __future__ import annotations

import pathlib
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = pathlib.Path(__file__).resolve().parents[1] / "data" / "tokenizer"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from harness.model.tokenizer import PRE_TOKENIZER_REGEX  # noqa: E402

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED = ["<think>", "</think>"]


def train(vocab_size: int = 4096) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRE_TOKENIZER_REGEX["qwen35"]), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIAL) - len(ADDED), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([str(HERE / "corpus.txt")], trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED])
    return tok


if __name__ == "__main__":
    out = HERE / "qwen35-test-tokenizer.json"
    t = train()
    t.save(str(out))
    print(f"wrote {out}: {t.get_vocab_size()} tokens")

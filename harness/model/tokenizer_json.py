"""The tokenizer metadata llama.cpp's converter (convert_hf_to_gguf.py, get_vocab_base and
_set_vocab_gpt2) writes for a Hugging Face byte-level BPE tokenizer.json, so a synthetic model can
carry a real tokenizer: ids without a token are "[PAD<id>]" of type UNUSED, added tokens are
CONTROL when marked special or when they look special ("<|...|>"), USER_DEFINED otherwise."""
from __future__ import annotations

import json
import os

from harness.errors import ModelFileError, UsageError
from harness.model.gguf_writer import Meta
from harness.model.tokenizer import (PRE_TOKENIZER_REGEX, TOKEN_CONTROL, TOKEN_NORMAL, TOKEN_UNUSED,
                                     TOKEN_USER_DEFINED)


def _looks_special(text: str) -> bool:
    """The converter's does_token_look_special."""
    return (text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (text.startswith("<|") and text.endswith("|>"))
            or (text.startswith("<｜") and text.endswith("｜>"))
            or (text.startswith("<unused") and text.endswith(">")))


def _load_spec(tokenizer_json, vocab_size: int) -> tuple[dict, str]:
    if isinstance(tokenizer_json, dict):
        return tokenizer_json, "tokenizer"
    path = os.fspath(tokenizer_json)
    if path == "synthetic":
        return synthetic_tokenizer_json(vocab_size), "synthetic tokenizer"
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), path
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the tokenizer: {e.strerror}") from None
    except ValueError as e:
        raise ModelFileError(f"{path}: not a JSON tokenizer file ({e})") from None


def tokenizer_metadata(tokenizer_json: str | os.PathLike | dict, vocab_size: int, pre: str = "qwen35") -> dict[str, tuple]:
    """tokenizer.ggml.* metadata for a file whose vocabulary has vocab_size rows.

    tokenizer_json: a path, a parsed tokenizer.json, or "synthetic" (synthetic_tokenizer_json).
    The special ids follow Qwen's files: eos <|im_end|> (else <|endoftext|>), padding and bos
    <|endoftext|>, no BOS added. pre is written as given: the converter finds it by hashing the
    tokens of a check text, which knows only published tokenizers (a real Qwen3.5 file says qwen35)."""
    if pre not in PRE_TOKENIZER_REGEX:
        raise UsageError(f"pre-tokenizer {pre!r} is not supported (supported: {', '.join(PRE_TOKENIZER_REGEX)})")
    spec, path = _load_spec(tokenizer_json, vocab_size)
    try:
        model = spec["model"]
        vocab, merges = model["vocab"], model["merges"]
    except (KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: not a Hugging Face tokenizer.json with a BPE model (no {e})") from None
    if model.get("type", "BPE") != "BPE":
        raise ModelFileError(f"{path}: tokenizer model {model.get('type')!r} is not BPE")
    by_id = {int(i): t for t, i in vocab.items()}
    added = {int(a["id"]): a for a in spec.get("added_tokens", [])}
    for i, a in added.items():
        by_id[i] = a["content"]
    if max(by_id) >= vocab_size:
        raise ModelFileError(f"{path}: token id {max(by_id)} does not fit the model's vocabulary of {vocab_size}")
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(TOKEN_UNUSED)
        elif i in added:
            text = by_id[i]
            special = added[i].get("special", False) or _looks_special(text)
            tokens.append(text)
            types.append(TOKEN_CONTROL if special else TOKEN_USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(TOKEN_NORMAL)
    merge_text = [m if isinstance(m, str) else " ".join(m) for m in merges]
    ids = {t: i for i, t in enumerate(tokens)}
    eos = ids.get("<|im_end|>", ids.get("<|endoftext|>"))
    pad = ids.get("<|endoftext|>")
    meta = {
        "tokenizer.ggml.model": Meta.str("gpt2"),
        "tokenizer.ggml.pre": Meta.str(pre),
        "tokenizer.ggml.tokens": Meta.str_array(tokens),
        "tokenizer.ggml.token_type": Meta.i32_array(types),
        "tokenizer.ggml.merges": Meta.str_array(merge_text),
    }
    for name, tid in (("eos", eos), ("padding", pad), ("bos", pad)):
        if tid is not None:
            meta[f"tokenizer.ggml.{name}_token_id"] = Meta.u32(tid)
    meta["tokenizer.ggml.add_bos_token"] = Meta.bool(False)
    return meta


QWEN_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN_ADDED = ("<think>", "</think>")


def synthetic_tokenizer_json(vocab_size: int, seed: int = 0) -> dict:
    """A byte-level BPE tokenizer.json of exactly vocab_size tokens (Qwen's special tokens last):
    the 256 byte symbols, then merges of two random earlier tokens, short ones likelier, each
    making a new token. Its splits mean nothing; its size and shape are a real vocabulary's, so
    loading and tokenizing cost what they cost on a hub file (Qwen3.5: 248,320 ids)."""
    import numpy as np

    from harness.model.tokenizer import byte_decoder

    n_added = len(QWEN_SPECIAL) + len(QWEN_ADDED)
    if vocab_size < 256 + n_added:
        raise ValueError(f"a byte-level vocabulary needs at least {256 + n_added} tokens, not {vocab_size}")
    alphabet = sorted(byte_decoder(), key=byte_decoder().get)
    tokens, seen, merges = list(alphabet), set(alphabet), []
    rng = np.random.default_rng(seed)
    n_merge = vocab_size - 256 - n_added
    while len(merges) < n_merge:
        # draw from the first tokens more often (their merges are the frequent ones in real vocabularies)
        hi = len(tokens)
        picks = (rng.pareto(1.2, size=(4096, 2)) * 64).astype(np.int64) % hi
        for a, b in picks:
            t = tokens[a] + tokens[b]
            if t in seen or len(t) > 16:
                continue
            seen.add(t)
            tokens.append(t)
            merges.append(f"{tokens[a]} {tokens[b]}")
            if len(merges) == n_merge:
                break
    vocab = {t: i for i, t in enumerate(tokens)}
    added = [{"id": len(tokens) + k, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": k < len(QWEN_SPECIAL)} for k, t in enumerate(QWEN_SPECIAL + QWEN_ADDED)]
    return {"version": "1.0", "added_tokens": added,
            "model": {"type": "BPE", "vocab": vocab, "merges": merges}}

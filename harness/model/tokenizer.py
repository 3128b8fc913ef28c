"""The tokenizer a GGUF file carries, as llama.cpp reads it: a byte-level BPE ("gpt2" model) with
the Qwen pre-tokenizer, special tokens split off first.

llama.cpp (src/llama-vocab.cpp) tokenizes in two steps, and so do we:
1. partition: every CONTROL / USER_DEFINED / UNKNOWN token text, longest first, is cut out of the
   text where it occurs (CONTROL and UNKNOWN only when special tokens are parsed; USER_DEFINED
   always, as in Hugging Face's tokenizers);
2. each remaining piece of text is split by the pre-tokenizer regex and byte-level BPE-merged by
   merge rank. That step runs in the `tokenizers` library, built from the file's tokens and merges.

Token types are GGUF's (gguf-py TokenType): 1 normal, 2 unknown, 3 control, 4 user-defined,
5 unused, 6 byte. A piece of text is the byte-level decoding of a normal token's text (GPT-2's
bytes_to_unicode table), the text itself for a user-defined token, and the text of a control token
only when specials are rendered.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness.errors import ModelFileError, TextError

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6

# The split regexes llama.cpp uses for these `tokenizer.ggml.pre` values (llama-vocab.cpp: the
# "original regex from tokenizer.json" of each; qwen35 adds combining marks \p{M} to letter runs).
PRE_TOKENIZER_REGEX = {
    "qwen35": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"
              r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
             r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}
SUPPORTED_MODELS = ("gpt2",)
EOG_TEXTS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, inverted: the printable character that stands for each byte."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:               # the other bytes map, in order, to code points from 256 on
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


@dataclass(frozen=True)
class TokenizerInfo:
    """What `harness info` shows of a file's tokenizer."""
    model: str
    pre: str
    vocab_size: int
    n_merges: int
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    add_bos: bool
    special: tuple[tuple[int, str], ...]       # CONTROL and USER_DEFINED tokens: (id, text)


def decode_utf8(raw: bytes, what: str = "text") -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TextError(f"{what} is not UTF-8: invalid byte 0x{raw[e.start]:02x} at byte offset {e.start}") from None


def process_escapes(raw: bytes) -> bytes:
    """llama.cpp's string_process_escapes (common.cpp) on bytes: \\n \\r \\t \\' \\" \\\\ and \\xHH;
    any other backslash pair stays as it is. llama-tokenize applies it to -p and -f text (unless
    --no-escape), so the same file gives the same tokens."""
    return _ESCAPE.sub(_unescape, raw)


_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.S)
_SIMPLE_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"'": b"'", b'"': b'"', b"\\": b"\\"}


def _unescape(m: re.Match) -> bytes:
    e = m.group(1)
    if len(e) == 3:                         # \xHH: that byte
        return bytes([int(e[1:], 16)])
    return _SIMPLE_ESCAPES.get(e, b"\\" + e)


class GGUFTokenizer:
    """encode(text) -> ids and piece(id) -> bytes, as llama.cpp does for the same file."""

    def __init__(self, tokens: list[str], types: np.ndarray, merges: list[str], pre: str,
                 bos_id: int | None, eos_id: int | None, pad_id: int | None, add_bos: bool,
                 eog_ids: tuple[int, ...] = ()):
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

        self.tokens, self.types, self.pre = tokens, types, pre
        self.bos_id, self.eos_id, self.pad_id, self.add_bos = bos_id, eos_id, pad_id, add_bos
        self.n_merges = len(merges)
        vocab = dict(zip(tokens, range(len(tokens))))
        if len(vocab) != len(tokens):
            raise ModelFileError(f"tokenizer.ggml.tokens: token text {_first_duplicate(tokens)!r} occurs twice")
        try:
            tok = Tokenizer(models.BPE(vocab, _merge_pairs(merges), ignore_merges=False))
        except Exception as e:         # a merge naming a token that is not in the vocabulary
            raise ModelFileError(f"tokenizer.ggml.merges: {e}") from None
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(PRE_TOKENIZER_REGEX[pre]), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        self._bpe = tok
        special = np.flatnonzero((types == TOKEN_CONTROL) | (types == TOKEN_USER_DEFINED) | (types == TOKEN_UNKNOWN))
        # llama.cpp cuts the longest special texts out first
        self._special = sorted(((tokens[i], int(i), int(types[i])) for i in special if tokens[i]),
                               key=lambda s: -len(s[0].encode("utf-8")))
        # generation ends at eos, eot and these texts where they are tokens (llama-vocab.cpp's EOG list)
        eog = set(eog_ids) | {vocab[t] for t in EOG_TEXTS if t in vocab}
        self.eog_ids = tuple(sorted(eog | ({eos_id} if eos_id is not None else set())))
        self._pieces: dict[int, bytes] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, parse_special: bool = True, add_bos: bool | None = None) -> list[int]:
        """Token ids of text; add_bos None: as the file says (tokenizer.ggml.add_bos_token)."""
        pieces = self._partition(text, parse_special)
        raw = [p for p in pieces if isinstance(p, str)]
        encoded = iter(self._bpe.encode_batch(raw, add_special_tokens=False)) if raw else iter(())
        ids: list[int] = []
        if (self.add_bos if add_bos is None else add_bos) and self.bos_id is not None:
            ids.append(self.bos_id)
        for p in pieces:
            ids.extend(next(encoded).ids if isinstance(p, str) else (p,))
        return ids

    def _partition(self, text: str, parse_special: bool) -> list[str | int]:
        """The text cut at special tokens: str pieces for BPE, int ids for the specials."""
        pieces: list[str | int] = [text] if text else []
        for s, tid, ttype in self._special:
            if not parse_special and ttype != TOKEN_USER_DEFINED:
                continue
            out: list[str | int] = []
            for p in pieces:
                if isinstance(p, int) or s not in p:
                    out.append(p)
                    continue
                parts = p.split(s)
                for k, part in enumerate(parts):
                    if k:
                        out.append(tid)
                    if part:
                        out.append(part)
            pieces = out
        return pieces

    def piece(self, token_id: int, special: bool = False) -> bytes:
        """The bytes token_id stands for (llama_token_to_piece); control tokens only with special."""
        if not 0 <= token_id < len(self.tokens):
            raise ValueError(f"token id {token_id} is out of range (vocabulary of {len(self.tokens)})")
        t = int(self.types[token_id])
        if t == TOKEN_CONTROL or t == TOKEN_UNKNOWN:
            return self.tokens[token_id].encode("utf-8") if special else b""
        if t == TOKEN_USER_DEFINED:
            return self.tokens[token_id].encode("utf-8")
        if t == TOKEN_UNUSED and not special:
            return b""
        got = self._pieces.get(token_id)
        if got is None:
            table = byte_decoder()
            text = self.tokens[token_id]
            got = bytes(table[c] for c in text) if all(c in table for c in text) else text.encode("utf-8")
            self._pieces[token_id] = got
        return got

    def decode(self, ids, special: bool = False) -> str:
        """The text of ids; bytes that do not form UTF-8 become U+FFFD."""
        return b"".join(self.piece(int(i), special) for i in ids).decode("utf-8", errors="replace")

    def info(self) -> TokenizerInfo:
        special = tuple((i, self.tokens[i]) for i in np.flatnonzero(
            (self.types == TOKEN_CONTROL) | (self.types == TOKEN_USER_DEFINED)).tolist())
        return TokenizerInfo("gpt2", self.pre, len(self.tokens), self.n_merges, self.bos_id, self.eos_id,
                             self.pad_id, self.add_bos, special)


def _merge_pairs(merges: list[str]) -> list[tuple[str, str]]:
    """"a b" merge texts as (a, b) pairs. Byte-level token texts hold no space (a space byte is
    "Ġ"), so one join and one split make every pair without a Python loop over 248K merges."""
    parts = " ".join(merges).split(" ")
    if len(parts) != 2 * len(merges):
        bad = next(m for m in merges if m.count(" ") != 1)
        raise ModelFileError(f"tokenizer.ggml.merges: {bad!r} is not two tokens separated by one space")
    return list(zip(parts[0::2], parts[1::2]))


def _first_duplicate(tokens: list[str]) -> str:
    seen = set()
    for t in tokens:
        if t in seen:
            return t
        seen.add(t)
    return ""


def has_tokenizer(metadata: dict) -> bool:
    """Whether the file names a tokenizer model (a value of the wrong type counts, so that reading
    it gives the clear error of tokenizer_from_metadata)."""
    model = metadata.get("tokenizer.ggml.model")
    return model is not None and not (isinstance(model, str) and model == "none")


def tokenizer_from_metadata(metadata: dict, path: str = "model") -> GGUFTokenizer:
    """The tokenizer a GGUF file's metadata describes; ModelFileError naming the key otherwise."""
    def key(k, kinds, required=True):
        v = metadata.get(k)
        if v is None:
            if required:
                raise ModelFileError(f"{path}: metadata {k!r} is missing: the file has no usable tokenizer")
            return None
        if not isinstance(v, kinds):
            raise ModelFileError(f"{path}: metadata {k!r} has the wrong type ({type(v).__name__})")
        return v

    model = key("tokenizer.ggml.model", str)
    if model == "none":
        raise ModelFileError(f"{path}: tokenizer.ggml.model = 'none': the file carries no tokenizer "
                             f"(a synthetic model: pass token ids, or make one with `harness synth --tokenizer`)")
    if model not in SUPPORTED_MODELS:
        raise ModelFileError(f"{path}: tokenizer.ggml.model = {model!r} is not supported "
                             f"(supported: {', '.join(SUPPORTED_MODELS)}, byte-level BPE)")
    pre = key("tokenizer.ggml.pre", str, required=False) or "default"
    if pre not in PRE_TOKENIZER_REGEX:
        raise ModelFileError(f"{path}: tokenizer.ggml.pre = {pre!r} is not supported "
                             f"(supported: {', '.join(PRE_TOKENIZER_REGEX)})")
    tokens = key("tokenizer.ggml.tokens", list)
    merges = key("tokenizer.ggml.merges", list)
    types = metadata.get("tokenizer.ggml.token_type")
    if types is None:
        types = np.full(len(tokens), TOKEN_NORMAL, dtype=np.int32)
    types = np.asarray(types)
    if types.shape != (len(tokens),):
        raise ModelFileError(f"{path}: tokenizer.ggml.token_type has {types.size} entries for "
                             f"{len(tokens)} tokens")
    n = len(tokens)

    def token_id(k):
        v = metadata.get(k)
        if v is None:
            return None
        if not isinstance(v, (int, np.integer)) or not 0 <= int(v) < n:
            raise ModelFileError(f"{path}: metadata {k!r} = {v!r} is not a token id (vocabulary of {n})")
        return int(v)

    bos, eos, pad = (token_id(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "padding"))
    eot = token_id("tokenizer.ggml.eot_token_id")
    add_bos = bool(metadata.get("tokenizer.ggml.add_bos_token", False))
    return GGUFTokenizer(tokens, types, merges, pre, bos, eos, pad, add_bos, () if eot is None else (eot,))

"""Qwen3.5 models from GGUF files: open, check every tensor against the config, and
hand out zero-copy views of the weights (docs/qwen35.md §1.3)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from harness.model.config import SUPPORTED_ARCHS, ModelConfig, config_from_metadata
from harness.model.dequant import dequantize
from harness.errors import ModelFileError, UnsupportedModelError
from harness.ggml_types import GGMLType, WEIGHT_TYPES
from harness.model.gguf_reader import GGUFFile, TensorInfo, read_gguf

F32_ONLY = frozenset({GGMLType.F32})


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]            # numpy shape
    types: frozenset[GGMLType]        # allowed storage types
    per_token: bool = True            # read in full for every generated token
    experts: int = 0                  # > 0: a stack of this many expert matrices (MoE), of which
                                      # a token reads only its n_expert_used selected ones
    alt_shapes: tuple[tuple[int, ...], ...] = ()   # other numpy shapes the converters write


def expected_tensors(c: ModelConfig, present: set[str]) -> list[TensorSpec]:
    """Every tensor the forward pass reads, with its shape and allowed types.

    `present` picks between the alternatives a file may use (tied / untied LM
    head, fused or separate attention q/k/v)."""
    E, V = c.n_embd, c.vocab_size
    W = WEIGHT_TYPES
    specs = [
        TensorSpec("token_embd.weight", (V, E), W, per_token=False),   # one row per token
        TensorSpec("output_norm.weight", (E,), F32_ONLY),
    ]
    if not c.tied_output:
        specs.append(TensorSpec("output.weight", (V, E), W))
    for i in range(c.n_layer):
        p = f"blk.{i}."
        specs += [TensorSpec(p + "attn_norm.weight", (E,), F32_ONLY),
                  TensorSpec(p + "post_attention_norm.weight", (E,), F32_ONLY)]
        if c.recurrent[i]:
            CD, VD, Hv, Sv = c.conv_channels, c.ssm_inner, c.ssm_v_heads, c.ssm_v_dim
            specs += [
                TensorSpec(p + "attn_qkv.weight", (CD, E), W),
                TensorSpec(p + "attn_gate.weight", (VD, E), W),
                TensorSpec(p + "ssm_conv1d.weight", (CD, c.conv_kernel), F32_ONLY),
                TensorSpec(p + "ssm_dt.bias", (Hv,), F32_ONLY),
                TensorSpec(p + "ssm_a", (Hv,), F32_ONLY),
                TensorSpec(p + "ssm_beta.weight", (Hv, E), W),
                TensorSpec(p + "ssm_alpha.weight", (Hv, E), W),
                TensorSpec(p + "ssm_norm.weight", (Sv,), F32_ONLY),
                TensorSpec(p + "ssm_out.weight", (E, VD), W),
            ]
        else:
            H, Hkv, D = c.n_head, c.n_head_kv, c.head_dim
            if p + "attn_qkv.weight" in present and p + "attn_q.weight" not in present:
                specs.append(TensorSpec(p + "attn_qkv.weight", (2 * H * D + 2 * Hkv * D, E), W))
            else:
                specs += [TensorSpec(p + "attn_q.weight", (2 * H * D, E), W),
                          TensorSpec(p + "attn_k.weight", (Hkv * D, E), W),
                          TensorSpec(p + "attn_v.weight", (Hkv * D, E), W)]
            specs += [TensorSpec(p + "attn_q_norm.weight", (D,), F32_ONLY),
                      TensorSpec(p + "attn_k_norm.weight", (D,), F32_ONLY),
                      TensorSpec(p + "attn_output.weight", (E, H * D), W)]
        if c.is_moe:
            specs += moe_tensors(c, p, present)
        else:
            specs += [TensorSpec(p + "ffn_gate.weight", (c.n_ff, E), W),
                      TensorSpec(p + "ffn_up.weight", (c.n_ff, E), W),
                      TensorSpec(p + "ffn_down.weight", (E, c.n_ff), W)]
    return specs


def moe_tensors(c: ModelConfig, p: str, present: set[str]) -> list[TensorSpec]:
    """The MoE FFN of one block (docs/qwen35.md §1.3): F32 router, stacked experts (gate and up
    separate, or fused as ffn_gate_up_exps, which llama.cpp prefers when present),
    and the shared expert with its scalar sigmoid gate."""
    E, NE, Fe, Fs, W = c.n_embd, c.n_expert, c.n_ff_expert, c.n_ff_shared, WEIGHT_TYPES
    specs = [TensorSpec(p + "ffn_gate_inp.weight", (NE, E), F32_ONLY)]
    if p + "ffn_gate_up_exps.weight" in present:
        specs.append(TensorSpec(p + "ffn_gate_up_exps.weight", (NE, 2 * Fe, E), W, experts=NE))
    else:
        specs += [TensorSpec(p + "ffn_gate_exps.weight", (NE, Fe, E), W, experts=NE),
                  TensorSpec(p + "ffn_up_exps.weight", (NE, Fe, E), W, experts=NE)]
    specs += [
        TensorSpec(p + "ffn_down_exps.weight", (NE, E, Fe), W, experts=NE),
        # the converter writes [E, 1]; llama-quantize re-writes it 1-D
        TensorSpec(p + "ffn_gate_inp_shexp.weight", (E,), F32_ONLY, alt_shapes=((1, E),)),
        TensorSpec(p + "ffn_gate_shexp.weight", (Fs, E), W),
        TensorSpec(p + "ffn_up_shexp.weight", (Fs, E), W),
        TensorSpec(p + "ffn_down_shexp.weight", (E, Fs), W),
    ]
    return specs


class Model:
    """An open Qwen3.5 GGUF: config, checked tensor table, zero-copy weight views."""

    def __init__(self, gguf: GGUFFile, config: ModelConfig, specs: list[TensorSpec]):
        self.gguf = gguf
        self.config = config
        self.specs = specs
        self.path = gguf.path

    def tokenizer(self):
        """The file's own tokenizer (harness.model.tokenizer.GGUFTokenizer), built once; a
        ModelFileError naming the key when the file has none or one we do not support."""
        if getattr(self, "_tokenizer", None) is None:
            from harness.model.tokenizer import tokenizer_from_metadata
            tok = tokenizer_from_metadata(self.gguf.metadata, self.path)
            if tok.vocab_size > self.config.vocab_size:
                raise ModelFileError(f"{self.path}: the tokenizer has {tok.vocab_size} tokens, the model's "
                                     f"vocabulary only {self.config.vocab_size} rows")
            self._tokenizer = tok
        return self._tokenizer

    # -- tensors -----------------------------------------------------------
    def info(self, name: str) -> TensorInfo:
        return self.gguf.tensors[name]

    def raw(self, name: str) -> np.ndarray:
        """The stored bytes of a tensor (read-only view of the memory map)."""
        if self.closed:
            raise ModelFileError(f"{self.path}: model is closed")
        return self.gguf.tensor_data(name)

    def dequantized(self, name: str) -> np.ndarray:
        """float32 copy of a tensor in its numpy shape."""
        t = self.info(name)
        return dequantize(self.raw(name), t.type, t.shape)

    def lm_head_name(self) -> str:
        return "token_embd.weight" if self.config.tied_output else "output.weight"

    @property
    def metadata(self) -> dict:
        return self.gguf.metadata

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", os.path.basename(self.path)))

    @property
    def closed(self) -> bool:
        return self.gguf._buf is None

    def close(self) -> None:
        self.gguf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- byte accounting ------------------------------------------------------
    def weight_bytes(self) -> int:
        return sum(self.info(s.name).nbytes for s in self.specs)

    def bytes_per_token(self) -> int:
        """Weight bytes read to generate one token: every trunk tensor, the LM head, and one
        embedding row (the LM head counts once even when tied). Of a stack of NE experts a
        token reads only its k selected ones: nbytes / NE * k (every expert slab has the
        same size, so this is exact, not an average)."""
        total = 0
        for s in self.specs:
            if s.per_token:
                n = self.info(s.name).nbytes
                total += n // s.experts * self.config.n_expert_used if s.experts else n
        emb = self.info("token_embd.weight")
        total += emb.nbytes // emb.shape[0]
        if self.config.tied_output:
            total += emb.nbytes
        return total


def load_model(path: str | os.PathLike) -> Model:
    """Open and validate a Qwen3.5 GGUF. Raises ModelFileError naming the problem."""
    g = read_gguf(path)
    try:
        return _validate(g)
    except BaseException:
        g.close()
        raise


def _validate(g: GGUFFile) -> Model:
    path, md, tensors = g.path, g.metadata, g.tensors
    emb = tensors.get("token_embd.weight")
    cfg = config_from_metadata(md, path, emb.shape[0] if emb is not None else None,
                               has_output="output.weight" in tensors)
    if cfg.arch not in SUPPORTED_ARCHS:
        raise UnsupportedModelError(f"{path}: architecture {cfg.arch!r} is recognised but not supported; "
                                    f"supported: {', '.join(SUPPORTED_ARCHS)}")
    # every trunk layer has its own tensors: a block_count beyond what the file holds is refused
    # before any per-layer work, so nothing is sized from that number alone
    if cfg.n_layer > len(tensors):
        raise ModelFileError(f"{path}: block_count says {cfg.n_layer} trunk layers, but the file holds only "
                             f"{len(tensors)} tensors")
    for i in range(cfg.n_layer):
        if f"blk.{i}.attn_norm.weight" not in tensors:
            raise ModelFileError(f"{path}: missing tensor 'blk.{i}.attn_norm.weight' "
                                 f"(block_count says {cfg.n_layer} trunk layers)")
    specs = expected_tensors(cfg, set(tensors))
    for s in specs:
        t = tensors.get(s.name)
        if t is None:
            raise ModelFileError(f"{path}: missing tensor {s.name!r}")
        if t.shape != s.shape and t.shape not in s.alt_shapes:
            want = " or ".join(str(list(x)) for x in (s.shape,) + s.alt_shapes)
            raise ModelFileError(f"{path}: tensor {s.name!r} has shape {list(t.shape)}, "
                                 f"expected {want} from the metadata")
        if t.type not in s.types:
            allowed = ", ".join(sorted(x.name for x in s.types))
            raise ModelFileError(f"{path}: tensor {s.name!r} has type {t.type.name}, "
                                 f"expected one of {allowed}")
    return Model(g, cfg, specs)

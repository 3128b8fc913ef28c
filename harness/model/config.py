"""The typed model configuration, built from GGUF metadata (docs/qwen35.md §1.2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import ModelFileError

SUPPORTED_ARCHS = ("qwen35", "qwen35moe")
KNOWN_ARCHS = ("qwen35", "qwen35moe")


@dataclass(frozen=True)
class ModelConfig:
    arch: str
    n_layer_all: int          # block_count, includes MTP blocks
    n_mtp: int                # nextn_predict_layers
    n_embd: int               # E
    n_ff: int                 # F (dense FFN width)
    n_head: int               # H
    n_head_kv: int            # Hkv
    head_dim: int             # D (key_length = value_length)
    rope_dims: int            # R, rotated dims per head
    rope_theta: float
    rope_sections: tuple[int, ...]
    rms_eps: float
    conv_kernel: int          # Kc
    ssm_state: int            # Sk = Sv
    ssm_k_heads: int          # Hk (group_count)
    ssm_v_heads: int          # Hv (time_step_rank)
    ssm_inner: int            # VD = Hv * Sv
    vocab_size: int           # V
    tied_output: bool         # LM head is token_embd
    recurrent: tuple[bool, ...]  # per trunk layer: True = Gated DeltaNet, False = full attention
    context_length: int
    n_expert: int = 0         # NE, routed experts (MoE only; 0 = dense FFN)
    n_expert_used: int = 0    # k, experts per token
    n_ff_expert: int = 0      # Fe, routed-expert FFN width
    n_ff_shared: int = 0      # Fs, shared-expert FFN width

    @property
    def is_moe(self) -> bool:
        return self.arch == "qwen35moe"

    @property
    def n_layer(self) -> int:
        """Trunk layers actually run (MTP blocks excluded)."""
        return self.n_layer_all - self.n_mtp

    @property
    def ssm_v_dim(self) -> int:
        return self.ssm_inner // self.ssm_v_heads

    @property
    def ssm_qk_dim(self) -> int:
        """KD = Hk * Sk: width of q and of k."""
        return self.ssm_k_heads * self.ssm_state

    @property
    def conv_channels(self) -> int:
        """CD = 2 KD + VD."""
        return 2 * self.ssm_qk_dim + self.ssm_inner

    def layer_kind(self, i: int) -> str:
        return "deltanet" if self.recurrent[i] else "attention"


def _show(v: Any) -> str:
    """A short rendering of a metadata value for error messages (values come from the file)."""
    if isinstance(v, np.ndarray):
        return f"an array of {v.size} {v.dtype}"
    if isinstance(v, list):
        return f"a list of {len(v)} items"
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _key(md: dict[str, Any], path: str, key: str, default: Any = None, required: bool = True):
    if key in md:
        return md[key]
    if default is not None or not required:
        return default
    raise ModelFileError(f"{path}: missing metadata key {key!r}")


def _uint(md, path, key, default=None, required=True) -> int:
    v = _key(md, path, key, default, required)
    if v is None:
        return 0
    if isinstance(v, np.ndarray):
        # per-layer arrays: Qwen3.5 files use one value for all layers
        if v.dtype.kind not in "iu" or v.size == 0:
            raise ModelFileError(f"{path}: metadata {key!r} = {_show(v)} is not a non-negative integer")
        lo, hi = int(v.min()), int(v.max())
        if lo != hi:
            raise ModelFileError(f"{path}: metadata {key!r} varies per layer (from {lo} to {hi}); "
                                 "per-layer values are not supported")
        v = lo
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ModelFileError(f"{path}: metadata {key!r} = {_show(v)} is not a non-negative integer")
    return int(v)


def _int_array(md, path, key, kinds: str = "iu") -> np.ndarray | None:
    """An optional 1-D array of integers (kinds "iu") or booleans/integers ("biu")."""
    v = md.get(key)
    if v is None:
        return None
    if not isinstance(v, np.ndarray) or v.ndim != 1 or v.dtype.kind not in kinds:
        want = "integers" if kinds == "iu" else "booleans"
        raise ModelFileError(f"{path}: metadata {key!r} = {_show(v)} is not an array of {want}")
    return v


def _float(md, path, key, default=None) -> float:
    v = _key(md, path, key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)):
        raise ModelFileError(f"{path}: metadata {key!r} = {_show(v)} is not a number")
    v = float(v)
    if not np.isfinite(v):
        raise ModelFileError(f"{path}: metadata {key!r} = {v!r} is not finite")
    return v


def _vocab_size(md, path, a, token_embd_rows) -> int:
    """The token list's length, else {arch}.vocab_size, else the embedding's rows."""
    tokens = md.get("tokenizer.ggml.tokens")
    if tokens is not None:
        if not isinstance(tokens, list):
            raise ModelFileError(f"{path}: metadata 'tokenizer.ggml.tokens' = {_show(tokens)} "
                                 "is not an array of strings")
        return len(tokens)
    if f"{a}.vocab_size" in md:
        return _uint(md, path, f"{a}.vocab_size")
    if token_embd_rows is None:
        raise ModelFileError(f"{path}: cannot tell the vocabulary size (no tokenizer.ggml.tokens, "
                             f"no {a}.vocab_size, no token_embd.weight)")
    return token_embd_rows


def config_from_metadata(md: dict[str, Any], path: str, token_embd_rows: int | None,
                         has_output: bool) -> ModelConfig:
    """Read every hyperparameter the forward pass needs, checking types and ranges."""
    arch = md.get("general.architecture")
    if arch is None:
        raise ModelFileError(f"{path}: missing metadata key 'general.architecture'")
    if not isinstance(arch, str) or arch not in KNOWN_ARCHS:
        raise ModelFileError(f"{path}: architecture {_show(arch)} is not Qwen3.5 "
                             f"(expected one of {', '.join(KNOWN_ARCHS)})")
    a = arch
    n_all = _uint(md, path, f"{a}.block_count")
    n_mtp = _uint(md, path, f"{a}.nextn_predict_layers", 0, required=False)
    if n_all < 1 or n_mtp >= n_all:
        raise ModelFileError(f"{path}: {a}.block_count={n_all} with nextn_predict_layers={n_mtp} "
                             "leaves no trunk layer")
    n_layer = n_all - n_mtp
    n_embd = _uint(md, path, f"{a}.embedding_length")
    n_head = _uint(md, path, f"{a}.attention.head_count")
    n_head_kv = _uint(md, path, f"{a}.attention.head_count_kv", n_head)
    head_dim = _uint(md, path, f"{a}.attention.key_length", n_embd // max(n_head, 1))
    v_len = _uint(md, path, f"{a}.attention.value_length", head_dim)
    if v_len != head_dim:
        raise ModelFileError(f"{path}: attention key_length {head_dim} != value_length {v_len}")
    rope_dims = _uint(md, path, f"{a}.rope.dimension_count", head_dim)
    sections = _int_array(md, path, f"{a}.rope.dimension_sections")
    sections = tuple(int(x) for x in sections) if sections is not None else ()

    # which trunk layers are Gated DeltaNet: the recurrent-layer array, else the interval rule
    interval = _uint(md, path, f"{a}.full_attention_interval", 4)
    rec_arr = _int_array(md, path, f"{a}.attention.recurrent_layers", kinds="biu")
    if rec_arr is not None:
        if len(rec_arr) != n_all:
            raise ModelFileError(f"{path}: metadata '{a}.attention.recurrent_layers' has "
                                 f"{len(rec_arr)} entries, block_count is {n_all}")
        recurrent = tuple(bool(x) for x in rec_arr[:n_layer])
    else:
        if interval == 0:
            raise ModelFileError(f"{path}: metadata '{a}.full_attention_interval' is 0")
        recurrent = tuple((i + 1) % interval != 0 for i in range(n_layer))

    hk = _uint(md, path, f"{a}.ssm.group_count")
    hv = _uint(md, path, f"{a}.ssm.time_step_rank")
    sk = _uint(md, path, f"{a}.ssm.state_size")
    inner = _uint(md, path, f"{a}.ssm.inner_size")

    vocab = _vocab_size(md, path, a, token_embd_rows)

    moe = a == "qwen35moe"
    n_ff = _uint(md, path, f"{a}.feed_forward_length", 0, required=not moe)
    n_expert = n_used = n_ff_exp = n_ff_sh = 0
    if moe:
        n_expert = _uint(md, path, f"{a}.expert_count")
        n_used = _uint(md, path, f"{a}.expert_used_count")
        # llama.cpp's fallbacks when the widths are absent: F / k and F (docs/qwen35.md §1.2)
        n_ff_exp = _uint(md, path, f"{a}.expert_feed_forward_length", 0, required=False) or \
            (n_ff // n_used if n_ff and n_used else 0)
        n_ff_sh = _uint(md, path, f"{a}.expert_shared_feed_forward_length", 0, required=False) or n_ff
        if not n_ff_exp:
            raise ModelFileError(f"{path}: missing metadata key '{a}.expert_feed_forward_length' "
                                 f"(and no '{a}.feed_forward_length' to derive it from)")
        if not n_ff_sh:
            raise ModelFileError(f"{path}: missing metadata key '{a}.expert_shared_feed_forward_length' "
                                 f"(and no '{a}.feed_forward_length' to derive it from)")

    cfg = ModelConfig(
        arch=arch, n_layer_all=n_all, n_mtp=n_mtp, n_embd=n_embd,
        n_ff=n_ff,
        n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim, rope_dims=rope_dims,
        rope_theta=_float(md, path, f"{a}.rope.freq_base", 10000.0),
        rope_sections=sections,
        rms_eps=_float(md, path, f"{a}.attention.layer_norm_rms_epsilon"),
        conv_kernel=_uint(md, path, f"{a}.ssm.conv_kernel"),
        ssm_state=sk, ssm_k_heads=hk, ssm_v_heads=hv, ssm_inner=inner,
        vocab_size=int(vocab), tied_output=not has_output, recurrent=recurrent,
        context_length=_uint(md, path, f"{a}.context_length", 0, required=False),
        n_expert=n_expert, n_expert_used=n_used, n_ff_expert=n_ff_exp, n_ff_shared=n_ff_sh,
    )
    _check_consistency(cfg, path)
    return cfg


def _check_consistency(c: ModelConfig, path: str) -> None:
    def bad(msg: str):
        raise ModelFileError(f"{path}: {msg}")

    for name in ("n_embd", "n_head", "n_head_kv", "head_dim", "conv_kernel", "ssm_state",
                 "ssm_k_heads", "ssm_v_heads", "ssm_inner", "vocab_size"):
        if getattr(c, name) <= 0:
            bad(f"{name} must be positive (got {getattr(c, name)})")
    if c.n_head % c.n_head_kv:
        bad(f"attention head_count {c.n_head} is not a multiple of head_count_kv {c.n_head_kv}")
    if c.rope_dims > c.head_dim or c.rope_dims % 2:
        bad(f"rope.dimension_count {c.rope_dims} must be even and <= key_length {c.head_dim}")
    if c.ssm_v_heads % c.ssm_k_heads:
        bad(f"ssm.time_step_rank {c.ssm_v_heads} is not a multiple of ssm.group_count {c.ssm_k_heads}")
    if c.ssm_inner % c.ssm_v_heads or c.ssm_inner // c.ssm_v_heads != c.ssm_state:
        bad(f"ssm.inner_size {c.ssm_inner} / time_step_rank {c.ssm_v_heads} must equal "
            f"ssm.state_size {c.ssm_state} (value head dim = key head dim)")
    if c.is_moe:
        if c.n_expert < 1:
            bad(f"expert_count must be positive (got {c.n_expert})")
        if not 1 <= c.n_expert_used <= c.n_expert:
            bad(f"expert_used_count {c.n_expert_used} must be between 1 and expert_count {c.n_expert}")
    elif c.n_ff <= 0:
        bad(f"feed_forward_length must be positive (got {c.n_ff})")
    if not c.rms_eps > 0:
        bad(f"layer_norm_rms_epsilon must be positive (got {c.rms_eps})")
    if not c.rope_theta > 0:
        bad(f"rope.freq_base must be positive (got {c.rope_theta})")

"""Synthetic model shapes: the released Qwen3.5 dense shapes and the 35B-A3B MoE shape
(docs/qwen35.md, appendix A), and tiny ones (dense and MoE) for unit tests."""
from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Shape:
    """Everything needed to write a Qwen3.5 GGUF with random weights."""
    name: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    ssm_k_heads: int
    ssm_v_heads: int
    tied: bool
    head_dim: int = 256
    rope_dims: int = 64
    ssm_state: int = 128
    conv_kernel: int = 4
    vocab_size: int = 248320
    rope_theta: float = 1e7
    rms_eps: float = 1e-6
    full_attention_interval: int = 4
    rope_sections: tuple[int, ...] = (11, 11, 10, 0)
    context_length: int = 262144
    size_label: str = field(default="")
    # mixture of experts (arch qwen35moe); n_expert = 0 is the dense FFN of n_ff
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff_expert: int = 0
    n_ff_shared: int = 0

    @property
    def arch(self) -> str:
        return "qwen35moe" if self.n_expert else "qwen35"
    head_rank: int = 0        # > 0: the LM head is a rank-R matrix plus noise (harness.engine.vocab demos)
    head_noise: float = 0.0   # the noise's share of each head row's norm
    n_mtp: int = 0            # MTP ("nextn") blocks after the trunk, as the converter keeps them (0 or 1)

    @property
    def recurrent(self) -> tuple[bool, ...]:
        I = self.full_attention_interval
        return tuple((i + 1) % I != 0 for i in range(self.n_layer))

    def with_(self, **kw) -> "Shape":
        return replace(self, **kw)


PRESETS: dict[str, Shape] = {
    # every layer kind, real head ratios (Hv = 2 Hk, H = 2 Hkv), partial rotary (16 of 64 dims);
    # 8 layers = 6 Gated DeltaNet + 2 full attention; about 6 MB at q8_0
    "tiny": Shape("tiny", n_layer=8, n_embd=256, n_ff=512, n_head=4, n_head_kv=2,
                  ssm_k_heads=4, ssm_v_heads=8, tied=True, head_dim=64, rope_dims=16,
                  ssm_state=32, vocab_size=4096, rope_sections=(3, 3, 2, 0),
                  context_length=4096, size_label="tiny"),
    "0.8b": Shape("0.8b", 24, 1024, 3584, 8, 2, 16, 16, tied=True, size_label="0.8B"),
    "2b": Shape("2b", 24, 2048, 6144, 8, 2, 16, 16, tied=True, size_label="2B"),
    "4b": Shape("4b", 32, 2560, 9216, 16, 4, 16, 32, tied=True, size_label="4B"),
    "9b": Shape("9b", 32, 4096, 12288, 16, 4, 16, 32, tied=False, size_label="9B"),
    "27b": Shape("27b", 64, 5120, 17408, 24, 4, 16, 48, tied=False, size_label="27B"),
    # MoE: the shapes of the tinymoe oracle model (docs/qwen35.md, Oracle agreement: 4 layers, 8 experts, top-2,
    # expert and shared FFN 256, vocab 2048, untied), and transformers' default
    # Qwen3_5MoeTextConfig (docs/qwen35.md, appendix A): 256 experts, top-8, expert / shared FFN 512
    "tinymoe": Shape("tinymoe", n_layer=4, n_embd=256, n_ff=0, n_head=4, n_head_kv=2,
                     ssm_k_heads=4, ssm_v_heads=8, tied=False, head_dim=64, rope_dims=16,
                     ssm_state=32, vocab_size=2048, rope_sections=(3, 3, 2, 0), context_length=4096,
                     size_label="tinymoe", n_expert=8, n_expert_used=2, n_ff_expert=256, n_ff_shared=256),
    "35b-a3b": Shape("35b-a3b", 40, 2048, 0, 16, 2, 16, 32, tied=False, size_label="35B-A3B",
                     n_expert=256, n_expert_used=8, n_ff_expert=512, n_ff_shared=512),
}


def get_preset(name: str) -> Shape:
    from harness.errors import UsageError
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None

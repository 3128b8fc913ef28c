"""Quant recipes with per-tensor overrides, as llama-quantize's `--tensor-type PATTERN=TYPE`.

A quant spec names a base recipe (a --quant choice of harness.model.synth) and overrides:

    nvfp4                         the base recipe
    nvfp4+deltanet=bf16           ... with the delta-net projections in BF16 (the NVFP4 card's pair)
    q4_k_m+ffn=q8_0+head=bf16     overrides apply left to right; a later one wins

Groups name tensor roles: `deltanet` (the delta-net layers' attn_qkv, attn_gate and ssm_out, that is
in_proj_qkv, in_proj_z and out_proj; ssm_alpha / ssm_beta, the small in_proj_a / in_proj_b, are not in
it), `attn` (the full-attention layers' q, k, v and output), `ffn` (dense and expert FFN matrices),
`head` (token_embd and output). `harness synth --tensor-type REGEX=TYPE` takes any regular expression
over tensor names (re.search), as llama-quantize does. An override only retypes quantizable
matrices (never norms or the router); every row must hold whole blocks of the new type."""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import UsageError
from harness.ggml_types import BLOCK_GEOMETRY, GGMLType

GROUPS = {
    "deltanet": r"^blk\.\d+\.(attn_qkv|attn_gate|ssm_out)\.weight$",
    "attn": r"^blk\.\d+\.attn_(q|k|v|output)\.weight$",
    "ffn": r"^blk\.\d+\.ffn_(gate|up|down)(_exps|_shexp)?\.weight$",
    "head": r"^(token_embd|output)\.weight$",
}
# the types an override may name (each has a quantizer in C)
OVERRIDE_TYPES = {"f32": GGMLType.F32, "f16": GGMLType.F16, "bf16": GGMLType.BF16, "q8_0": GGMLType.Q8_0,
                  "q4_0": GGMLType.Q4_0, "q4_1": GGMLType.Q4_1, "q5_0": GGMLType.Q5_0, "q5_1": GGMLType.Q5_1,
                  "iq4_nl": GGMLType.IQ4_NL, "q2_k": GGMLType.Q2_K, "q3_k": GGMLType.Q3_K, "q4_k": GGMLType.Q4_K, "q5_k": GGMLType.Q5_K, "q6_k": GGMLType.Q6_K,
                  "iq4_xs": GGMLType.IQ4_XS, "mxfp4": GGMLType.MXFP4, "nvfp4": GGMLType.NVFP4}


@dataclass(frozen=True)
class Override:
    pattern: str          # a regular expression over tensor names
    type: GGMLType
    label: str            # as written: "deltanet=bf16", "attn_qkv|ssm_out=bf16"

    def matches(self, name: str) -> bool:
        return re.search(self.pattern, name) is not None


def parse_override(text: str, named_groups_only: bool = False) -> Override:
    """'deltanet=bf16' (a group) or 'REGEX=TYPE' (unless named_groups_only)."""
    pattern, sep, type_name = text.rpartition("=")
    if not sep or not pattern or not type_name:
        raise UsageError(f"tensor type override {text!r}: expected PATTERN=TYPE")
    t = OVERRIDE_TYPES.get(type_name.strip().lower())
    if t is None:
        raise UsageError(f"tensor type override {text!r}: unknown type {type_name!r} "
                         f"(choose from {', '.join(OVERRIDE_TYPES)})")
    if pattern in GROUPS:
        regex = GROUPS[pattern]
    elif named_groups_only:
        raise UsageError(f"{pattern!r} is not a tensor group (choose from {', '.join(GROUPS)}; "
                         "any regular expression: harness synth --tensor-type)")
    else:
        try:
            re.compile(pattern)
        except re.error as e:
            raise UsageError(f"tensor type override {text!r}: bad regular expression ({e})") from None
        regex = pattern
    return Override(regex, t, f"{pattern}={type_name.strip().lower()}")


def parse_spec(spec: str) -> tuple[str, list[Override]]:
    """'nvfp4+deltanet=bf16' -> ('nvfp4', [Override]); the base is checked by the caller."""
    base, *rest = spec.split("+")
    return base, [parse_override(x, named_groups_only=True) for x in rest]


def apply(plan: list, overrides: list[Override], quantizable) -> list:
    """The plan with each quantizable tensor a pattern matches retyped (the last match wins)."""
    from harness.model.gguf_writer import PlannedTensor
    out = []
    for t in plan:
        new = t.type
        if quantizable(t.name, t.shape):
            for o in overrides:
                if o.matches(t.name):
                    new = o.type
        if new != t.type:
            elems = BLOCK_GEOMETRY[new][0]
            if t.shape[-1] % elems:
                raise UsageError(f"{t.name}: rows of {t.shape[-1]} values do not hold whole {new.name} blocks "
                                 f"of {elems}")
            t = PlannedTensor(t.name, t.shape, new)
        out.append(t)
    return out


def file_label(spec: str) -> str:
    """A spec as a file-name part: 'nvfp4+deltanet=bf16' -> 'nvfp4+deltanet-bf16'."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", spec)

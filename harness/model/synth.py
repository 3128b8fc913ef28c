"""Synthetic Qwen3.5 GGUF files: real shapes, seeded random weights, metadata and tensor
names exactly as llama.cpp's converter writes them, weight types as llama-quantize
picks them. Weights are made and quantized in row chunks, so a multi-GB model never
sits in memory whole; quantization runs in C. The IQ1 / IQ2 / IQ3 types (no quantizer) get random
valid codes instead (harness.model.random_codes), and the file says so."""
from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass

import numpy as np

from harness.cache import cache_dir
from harness.errors import UsageError
from harness.ggml_types import BLOCK_GEOMETRY, GGMLType
from harness.model.gguf_writer import GGUFStreamWriter, Meta, PlannedTensor
from harness.model.presets import Shape, get_preset
from harness.model.random_codes import RANDOM_CODE_TYPES, random_blocks

T = GGMLType
# --quant choices: llama-quantize's ftypes that apply to Qwen3.5 (llama_ftype value, the ftype's default weight type
# as llama_ftype_get_default_type gives it), then three of our own: q4_k and q5_k (every matrix one K type, the LM
# head Q6_K) and nvfp4 (as NVFP4 checkpoints are converted; llama-quantize has no NVFP4 mix)
_FTYPES = {
    "f32": (0, T.F32), "f16": (1, T.F16), "bf16": (32, T.BF16), "q8_0": (7, T.Q8_0),
    "q4_0": (2, T.Q4_0), "q4_1": (3, T.Q4_1), "q5_0": (8, T.Q5_0), "q5_1": (9, T.Q5_1),
    "q2_k": (10, T.Q2_K), "q2_k_s": (21, T.Q2_K), "q3_k_s": (11, T.Q3_K), "q3_k_m": (12, T.Q3_K),
    "q3_k_l": (13, T.Q3_K), "q4_k_s": (14, T.Q4_K), "q4_k_m": (15, T.Q4_K), "q5_k_s": (16, T.Q5_K),
    "q5_k_m": (17, T.Q5_K), "q6_k": (18, T.Q6_K),
    "iq1_s": (24, T.IQ1_S), "iq1_m": (31, T.IQ1_M), "iq2_xxs": (19, T.IQ2_XXS), "iq2_xs": (20, T.IQ2_XS),
    "iq2_s": (28, T.IQ2_XS), "iq2_m": (29, T.IQ2_S), "iq3_xxs": (23, T.IQ3_XXS), "iq3_xs": (22, T.IQ3_S),
    "iq3_s": (26, T.IQ3_S), "iq3_m": (27, T.IQ3_S), "iq4_nl": (25, T.IQ4_NL), "iq4_xs": (30, T.IQ4_XS),
    "tq1_0": (36, T.TQ1_0), "tq2_0": (37, T.TQ2_0), "mxfp4_moe": (38, T.MXFP4),
    # ours (general.file_type: the nearest llama_ftype)
    "nvfp4": (39, T.NVFP4), "q4_k": (14, T.Q4_K), "q5_k": (16, T.Q5_K),
}
QUANTS = tuple(_FTYPES)
# the choices llama-quantize itself makes (the others are ours)
LLAMA_FTYPES = QUANTS[:QUANTS.index("nvfp4")]
_BASE_TYPE = {q: t for q, (_, t) in _FTYPES.items()}
# llama.cpp's general.file_type (llama_ftype) for each choice
_FILE_TYPE = {q: f for q, (f, _) in _FTYPES.items()}
# NVFP4 checkpoints (ModelOpt / compressed-tensors, converted) quantize the linear layers and keep the
# embedding, the LM head and the small delta-net in_proj_a / in_proj_b in BF16
_NVFP4_BF16 = ("token_embd.weight", "output.weight")
_NVFP4_BF16_SUFFIXES = (".ssm_alpha.weight", ".ssm_beta.weight")
# llama-quantize's per-tensor rules only apply to quantized target types
_FLOAT_TYPES = {T.F32, T.F16, T.BF16}
# llama-quantize's lowest-bit mixes, which share one set of rules (IQ1 / IQ2)
_IQ12 = ("iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq2_m")
_IQ4 = ("iq4_nl", "iq4_xs")
# with exactly 8 experts (Mixtral-style) these ftypes raise attn_output to Q5_K
_ATTN_OUT_Q5K_WITH_8_EXPERTS = ("q2_k", "iq3_xs", "iq3_xxs", "q3_k_s", "q3_k_m", "iq4_nl", "q4_k_s", "q4_k_m",
                                "iq3_s", "iq3_m", "iq4_xs")
# weight types llama-quantize refuses to write without an importance matrix (tensor_requires_imatrix; Q2_K too in
# a Q2_K_S file); token_embd and output are exempt
_NEEDS_IMATRIX = frozenset({T.IQ1_S, T.IQ1_M, T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ3_XXS})
# tensor_type_fallback: a row that does not hold whole blocks of the chosen type takes this one (then F16)
_FALLBACK = {T.IQ1_S: T.IQ4_NL, T.IQ1_M: T.IQ4_NL, T.IQ2_XXS: T.IQ4_NL, T.IQ2_XS: T.IQ4_NL, T.IQ2_S: T.IQ4_NL,
             T.IQ3_XXS: T.IQ4_NL, T.IQ3_S: T.IQ4_NL, T.IQ4_XS: T.IQ4_NL, T.Q2_K: T.Q4_0, T.Q3_K: T.Q4_0,
             T.TQ1_0: T.Q4_0, T.TQ2_0: T.Q4_0, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}

_NORMS = "norms, ssm_a, ssm_dt, ssm_conv1d F32"
_SMALL = "norms and small delta-net tensors F32"
_V = "attn_v / delta-net attn_qkv"
_MORE_BITS = "the layers llama.cpp's use_more_bits() picks (first 1/8, last 1/8, every 3rd between)"
_IMX = "(random valid codes; the choices llama-quantize makes with the importance matrix it requires)"


def _iq12_text(base: str, embd: str, low: str, out: str = "") -> str:
    """The IQ1 / IQ2 mixes: one rule set, four parameters."""
    return (f"{base} {_IMX} everywhere except: LM head Q5_K, an untied token_embd {embd}; {_V} Q4_K when "
            f"n_head / n_head_kv >= 4 or with 4+ experts, else {low}; ffn_down {low} in the first n_layer / 8 "
            f"layers; {out}{_NORMS}")


RECIPES = {
    "q4_k_m": f"Q4_K everywhere except: LM head Q6_K; {_V} and ffn_down Q6_K in {_MORE_BITS}; {_NORMS}",
    "q2_k": f"Q2_K everywhere except: LM head Q6_K; {_V} Q4_K when n_head / n_head_kv >= 4, else Q3_K; "
            f"ffn_down and attn_output Q3_K; {_NORMS}",
    "q2_k_s": "Q2_K everywhere (the choices llama-quantize makes with the importance matrix it requires) except: "
              f"LM head Q6_K; {_V} Q4_K when n_head / n_head_kv >= 4; ffn_down Q4_K in the first n_layer / 8 "
              f"layers; {_NORMS}",
    "q3_k_s": f"Q3_K everywhere except: LM head Q6_K; {_NORMS}",
    "q3_k_m": f"Q3_K everywhere except: LM head Q6_K; {_V} Q5_K in the first two, Q4_K in the others; ffn_down "
              f"Q5_K in the first n_layer / 16 layers, Q4_K in the others; attn_output Q4_K; {_NORMS}",
    "q3_k_l": f"Q3_K everywhere except: LM head Q6_K; {_V}, ffn_down and attn_output Q5_K; {_NORMS}",
    "q4_k_s": f"Q4_K everywhere except: LM head Q6_K; {_V} Q5_K in the first four layers that have one; ffn_down "
              f"Q5_K in the first n_layer / 8 layers; {_NORMS}",
    "q5_k_s": f"Q5_K everywhere except: LM head Q6_K; {_NORMS}",
    "q5_k_m": f"Q5_K everywhere except: LM head Q6_K; {_V} and ffn_down Q6_K in {_MORE_BITS}; {_NORMS}",
    "iq1_s": _iq12_text("IQ1_S", "Q2_K", "Q2_K", "attn_output IQ2_XXS; "),
    "iq1_m": _iq12_text("IQ1_M", "Q2_K", "Q2_K", "attn_output IQ2_XXS; "),
    "iq2_xxs": _iq12_text("IQ2_XXS", "Q2_K", "Q2_K"),
    "iq2_xs": _iq12_text("IQ2_XS", "Q2_K", "Q2_K"),
    "iq2_s": _iq12_text("IQ2_XS", "IQ3_S", "IQ3_S", "attn_output IQ3_S; "),
    "iq2_m": _iq12_text("IQ2_S", "IQ3_S", "IQ3_S", "attn_output IQ3_S; "),
    "iq3_xxs": f"IQ3_XXS {_IMX} everywhere except: LM head Q5_K, an untied token_embd IQ3_S; {_V} Q4_K when "
               f"n_head / n_head_kv >= 4; attn_q and attn_k IQ2_S; attn_output IQ3_S; {_NORMS}",
    "iq3_xs": f"IQ3_S {_IMX} everywhere except: LM head Q6_K; {_V} Q4_K when n_head / n_head_kv >= 4; attn_q, "
              f"attn_k, and ffn_gate / ffn_up outside the first and last n_layer / 8 layers IQ3_XXS; {_NORMS}",
    "iq3_s": f"IQ3_S (random valid codes) everywhere except: LM head Q6_K; {_V} Q4_K when n_head / n_head_kv >= 4; "
             f"{_NORMS}",
    "iq3_m": f"IQ3_S (random valid codes) everywhere except: LM head Q6_K; {_V} and attn_output Q4_K; ffn_down Q4_K "
             f"in the first n_layer / 8 layers; {_NORMS}",
    "tq1_0": f"TQ1_0 everywhere except: LM head Q6_K, an untied token_embd Q4_K; {_NORMS}",
    "tq2_0": f"TQ2_0 everywhere except: LM head Q6_K, an untied token_embd Q4_K; {_NORMS}",
    "mxfp4_moe": "MXFP4 for the routed-expert stacks (3-D), Q8_0 for every other matrix, the LM head and token_embd "
                 f"too (a dense model is all Q8_0); {_NORMS}",
    "nvfp4": "every matrix NVFP4 except token_embd, the LM head and the delta-net ssm_alpha / ssm_beta "
             "(in_proj_a / in_proj_b) in BF16, as NVFP4 checkpoints keep them; norms and small delta-net "
             "tensors F32",
}


def check_quant(spec: str) -> str:
    """A quant spec (harness.model.recipes: BASE[+GROUP=TYPE...]) checked; UsageError otherwise."""
    from harness.model.recipes import parse_spec
    base, _ = parse_spec(spec)
    if base not in _BASE_TYPE:
        raise UsageError(f"unknown quant type {base!r} (choose from {', '.join(QUANTS)}, "
                         "optionally +GROUP=TYPE, e.g. nvfp4+deltanet=bf16)")
    return spec


MOE_RECIPE = "; MoE: router and shared-expert gate F32, expert and shared ffn_down like ffn_down{eight}"
# llama-quantize's special case for exactly 8 experts (Mixtral-style), applied to quantized types
EIGHT_EXPERTS = ", and with exactly 8 experts attn_k / attn_v / attn_qkv Q8_0{out}"


def recipe_text(quant: str, s: Shape | None = None, tensor_types: tuple[str, ...] = ()) -> str:
    from harness.model.recipes import parse_spec
    quant, overrides = parse_spec(quant)
    text = _base_recipe_text(quant, s)
    labels = [o.label for o in overrides] + list(tensor_types)
    return text + (f"; then overrides {', '.join(labels)}" if labels else "")


def _base_recipe_text(quant: str, s: Shape | None = None) -> str:
    t = _BASE_TYPE[quant]
    if quant in RECIPES:
        text = RECIPES[quant]
    elif t in _FLOAT_TYPES or t in (T.Q8_0, T.Q6_K):
        text = f"every matrix {t.name}; {_SMALL}"
    else:
        text = f"every matrix {t.name}; LM head Q6_K, {_SMALL}"
        if quant in _IQ4:
            text += ("; attn_v / delta-net attn_qkv Q5_K when n_head / n_head_kv >= 4, ffn_down Q5_K in the "
                     "first n_layer / 8 layers")
    if s is not None and s.n_expert:
        if quant == "mxfp4_moe":
            return text + "; MoE: router and shared-expert gate F32"
        eight = ""
        if s.n_expert == 8 and t not in _FLOAT_TYPES:
            if quant in _IQ12:
                eight = ", and with exactly 8 experts attn_k Q4_K, attn_output Q5_K"
            else:
                out = ", attn_output Q5_K" if quant in _ATTN_OUT_Q5K_WITH_8_EXPERTS else \
                    ", attn_output Q3_K" if quant == "q3_k_l" else ""
                if quant == "iq3_m":
                    out += f", ffn_down Q4_K also in {_MORE_BITS}"
                eight = EIGHT_EXPERTS.format(out=out)
        text += MOE_RECIPE.format(eight=eight)
        if quant in _IQ12:      # llama-quantize counts ffn_down tensors here, where it parses the layer for the others
            text = text.replace("like ffn_down", "like ffn_down (n_layer / 8 of them counted in llama-quantize's "
                                "order, two a layer)", 1)
    return text


# ----------------------------------------------------------------------------
# the tensor list, in file order

def tensor_shapes(s: Shape) -> list[tuple[str, tuple[int, ...]]]:
    """(name, numpy shape) of every tensor, as llama.cpp's converter names them."""
    E, V = s.n_embd, s.vocab_size
    KD, VD, Hv = s.ssm_k_heads * s.ssm_state, s.ssm_v_heads * s.ssm_state, s.ssm_v_heads
    CD = 2 * KD + VD
    H, Hkv, D = s.n_head, s.n_head_kv, s.head_dim
    out = [("token_embd.weight", (V, E))]
    for i, rec in enumerate(s.recurrent):
        p = f"blk.{i}."
        out.append((p + "attn_norm.weight", (E,)))
        if rec:
            out += [(p + "attn_qkv.weight", (CD, E)), (p + "attn_gate.weight", (VD, E)),
                    (p + "ssm_conv1d.weight", (CD, s.conv_kernel)), (p + "ssm_dt.bias", (Hv,)),
                    (p + "ssm_a", (Hv,)), (p + "ssm_beta.weight", (Hv, E)),
                    (p + "ssm_alpha.weight", (Hv, E)), (p + "ssm_norm.weight", (s.ssm_state,)),
                    (p + "ssm_out.weight", (E, VD))]
        else:
            out += [(p + "attn_q.weight", (2 * H * D, E)), (p + "attn_k.weight", (Hkv * D, E)),
                    (p + "attn_v.weight", (Hkv * D, E)), (p + "attn_q_norm.weight", (D,)),
                    (p + "attn_k_norm.weight", (D,)), (p + "attn_output.weight", (E, H * D))]
        out.append((p + "post_attention_norm.weight", (E,)))
        if s.n_expert:
            NE, Fe, Fs = s.n_expert, s.n_ff_expert, s.n_ff_shared
            out += [(p + "ffn_gate_inp.weight", (NE, E)), (p + "ffn_gate_exps.weight", (NE, Fe, E)),
                    (p + "ffn_up_exps.weight", (NE, Fe, E)), (p + "ffn_down_exps.weight", (NE, E, Fe)),
                    (p + "ffn_gate_inp_shexp.weight", (1, E)), (p + "ffn_gate_shexp.weight", (Fs, E)),
                    (p + "ffn_up_shexp.weight", (Fs, E)), (p + "ffn_down_shexp.weight", (E, Fs))]
        else:
            out += [(p + "ffn_gate.weight", (s.n_ff, E)), (p + "ffn_up.weight", (s.n_ff, E)),
                    (p + "ffn_down.weight", (E, s.n_ff))]
    if s.n_mtp:     # the converter's MTP block: a full-attention layer, its FFN and the nextn tensors
        if s.n_expert:
            raise UsageError("an MTP block is made for dense shapes only")
        p = f"blk.{s.n_layer}."
        out += [(p + "nextn.eh_proj.weight", (E, 2 * E)), (p + "nextn.enorm.weight", (E,)),
                (p + "nextn.hnorm.weight", (E,)), (p + "attn_norm.weight", (E,)),
                (p + "attn_q.weight", (2 * H * D, E)), (p + "attn_k.weight", (Hkv * D, E)),
                (p + "attn_v.weight", (Hkv * D, E)), (p + "attn_q_norm.weight", (D,)),
                (p + "attn_k_norm.weight", (D,)), (p + "attn_output.weight", (E, H * D)),
                (p + "post_attention_norm.weight", (E,)), (p + "ffn_gate.weight", (s.n_ff, E)),
                (p + "ffn_up.weight", (s.n_ff, E)), (p + "ffn_down.weight", (E, s.n_ff)),
                (p + "nextn.shared_head_norm.weight", (E,))]
    out.append(("output_norm.weight", (E,)))
    if not s.tied:
        out.append(("output.weight", (V, E)))
    return out


def _layer(name: str) -> int:
    # the N of blk.N.*, as llama.cpp's layer_info parses it for MoE models
    return int(name.split(".")[1])


def _use_more_bits(i: int, n: int) -> bool:
    # llama-quant.cpp: first eighth, last eighth, and every third layer in between
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _quantizable(name: str, shape) -> bool:
    return len(shape) >= 2 and "ssm_conv1d" not in name and not name.endswith("_norm.weight") \
        and not name.endswith("ffn_gate_inp.weight")      # the router stays F32


def quant_plan(s: Shape, quant: str, tensor_types: tuple[str, ...] = ()) -> list[PlannedTensor]:
    """The storage type of every tensor for a quant spec (a --quant choice as llama-quantize picks
    it, then the spec's +GROUP=TYPE overrides, then tensor_types: REGEX=TYPE, as --tensor-type)."""
    from harness.model import recipes
    check_quant(quant)
    quant, overrides = recipes.parse_spec(quant)
    overrides += [recipes.parse_override(x) for x in tensor_types]
    return recipes.apply(_base_plan(s, quant), overrides, _quantizable)


def _base_plan(s: Shape, quant: str) -> list[PlannedTensor]:
    base = _BASE_TYPE[quant]
    shapes = []
    for name, shape in tensor_shapes(s):
        if quant != "f32" and len(shape) == 2 and shape[0] == 1:
            shape = shape[1:]   # llama-quantize writes [E, 1] tensors 1-D (ggml_n_dims drops trailing 1s)
        shapes.append((name, shape))
    types = {name: base if _quantizable(name, shape) else T.F32 for name, shape in shapes}
    if base == T.NVFP4:     # not a llama-quantize mix: checkpoints keep these in BF16
        for name in types:
            if types[name] == base and (name in _NVFP4_BF16 or name.endswith(_NVFP4_BF16_SUFFIXES)):
                types[name] = T.BF16
    if base not in _FLOAT_TYPES:
        chosen = _llama_types(s, quant, shapes, types, imatrix=False)
        if any(_needs_imatrix(name, t, quant) for name, t in chosen.items()):
            # llama-quantize refuses this mix without an importance matrix: choose as it does with one
            chosen = _llama_types(s, quant, shapes, types, imatrix=True)
        types.update(chosen)
    return [PlannedTensor(name, shape, types[name]) for name, shape in shapes]


def _needs_imatrix(name: str, t: GGMLType, quant: str) -> bool:
    if name in ("token_embd.weight", "output.weight"):
        return False
    return t in _NEEDS_IMATRIX or (t == T.Q2_K and quant == "q2_k_s")


def _category(name: str) -> str:
    """llama-quant.cpp's tensor_get_category, by name (attn_qkv counts as attn_v there)."""
    if name in ("output.weight", "token_embd.weight"):
        return name.split(".")[0]
    for key, cat in (("attn_qkv.weight", "attn_v"), ("attn_v.weight", "attn_v"), ("attn_k.weight", "attn_k"),
                     ("attn_q.weight", "attn_q"), ("attn_output.weight", "attn_output"), ("ffn_up", "ffn_up"),
                     ("ffn_gate", "ffn_gate"), ("ffn_down", "ffn_down")):
        if key in name:
            return cat
    return "other"


def _llama_order(name: str) -> tuple[int, str]:
    # llama.cpp's loader sorts weights by layer (-1 outside blocks), then by name: the order its counters run in
    parts = name.split(".")
    return (int(parts[1]) if parts[0] == "blk" else -1, name)


def _llama_types(s: Shape, quant: str, shapes, start: dict[str, GGMLType], imatrix: bool) -> dict[str, GGMLType]:
    """llama-quantize's choice for each tensor that starts out as the ftype's default type (llama_tensor_get_type
    without overrides, then tensor_type_fallback), for Qwen3.5 (neither Falcon nor a 70B)."""
    default = _BASE_TYPE[quant]
    tied = "output.weight" not in start
    gqa4 = s.n_head // s.n_head_kv >= 4
    n_expert = s.n_expert
    n_layer = s.n_layer + s.n_mtp                  # n_layer_all: the counters' n_ffn_down / n_ffn_gate / n_ffn_up
    n_wv = sum(1 for n, _ in shapes if _category(n) == "attn_v")
    i_wv = i_down = i_gate = i_up = 0
    q = quant
    out = {}
    for name, shape in sorted(shapes, key=lambda x: _llama_order(x[0])):
        if start[name] != default:
            continue
        cat = _category(name)
        t = default
        # the layer of an FFN tensor: its count so far for dense models, its name's for MoE (llama's layer_info)
        counts = {"ffn_down": i_down, "ffn_gate": i_gate, "ffn_up": i_up}
        layer = (_layer(name) if n_expert > 1 else counts[cat]) if cat in counts else -1
        if cat == "output" or (tied and cat == "token_embd"):
            if q == "mxfp4_moe" or shape[-1] % BLOCK_GEOMETRY[default][0]:
                t = T.Q8_0
            elif q in _IQ12 or q == "iq3_xxs":
                t = T.Q5_K
            elif t != T.Q8_0:
                t = T.Q6_K
        elif q == "mxfp4_moe":
            t = T.MXFP4 if len(shape) == 3 and shape[0] > 1 else T.Q8_0     # expert stacks, ne[2] > 1
        elif cat == "token_embd":
            if q in ("iq2_xxs", "iq2_xs", "iq1_s", "iq1_m"):
                t = T.Q2_K
            elif q in ("iq2_s", "iq2_m", "iq3_xxs"):
                t = T.IQ3_S
            elif q in ("tq1_0", "tq2_0"):
                t = T.Q4_K
        elif q in _IQ12:
            higher = T.IQ3_S if q in ("iq2_s", "iq2_m") else T.Q2_K
            if cat == "attn_v":
                t = T.Q4_K if gqa4 or n_expert >= 4 else higher
                i_wv += 1
            elif n_expert == 8 and cat == "attn_k":
                t = T.Q4_K
            elif cat == "ffn_down":
                if i_down < n_layer // 8:           # the count, for MoE too (expert and shared ffn_down both count)
                    t = higher
                i_down += 1
            elif cat == "attn_output":
                if n_expert == 8:
                    t = T.Q5_K
                elif q in ("iq1_s", "iq1_m"):
                    t = T.IQ2_XXS
                elif q in ("iq2_s", "iq2_m"):
                    t = T.IQ3_S
        elif cat == "attn_v":
            if q == "q2_k":
                t = T.Q4_K if gqa4 else T.Q3_K
            elif q == "q2_k_s" and gqa4:
                t = T.Q4_K
            elif q == "iq3_xxs":
                t = T.Q4_K if gqa4 else T.IQ3_XXS if imatrix else T.IQ3_S
            elif q in ("iq3_xs", "iq3_s") and gqa4:
                t = T.Q4_K
            elif q == "iq3_m":
                t = T.Q4_K
            elif q == "q3_k_m":
                t = T.Q5_K if i_wv < 2 else T.Q4_K
            elif q == "q3_k_l":
                t = T.Q5_K
            elif q in _IQ4 and gqa4:
                t = T.Q5_K
            elif q in ("q4_k_m", "q5_k_m") and _use_more_bits(i_wv, n_wv):
                t = T.Q6_K
            elif q == "q4_k_s" and i_wv < 4:
                t = T.Q5_K
            if n_expert == 8:
                t = T.Q8_0
            i_wv += 1
        elif cat == "attn_k":
            if n_expert == 8:
                t = T.Q8_0
            elif q == "iq3_xs":
                t = T.IQ3_XXS
            elif q == "iq3_xxs":
                t = T.IQ2_S
        elif cat == "attn_q":
            if q == "iq3_xs":
                t = T.IQ3_XXS
            elif q == "iq3_xxs":
                t = T.IQ2_S
        elif cat == "ffn_down":
            first8 = layer < n_layer // 8
            if q == "q2_k":
                t = T.Q3_K
            elif q == "q2_k_s":
                t = T.Q4_K if first8 else t
            elif q == "iq3_xxs" and not imatrix:
                t = T.Q4_K if first8 else T.Q3_K
            elif q == "q3_k_m":
                t = T.Q5_K if layer < n_layer // 16 else T.Q4_K
            elif q == "iq3_m" and (first8 or (n_expert == 8 and _use_more_bits(layer, n_layer))):
                t = T.Q4_K
            elif q == "q3_k_l":
                t = T.Q5_K
            elif q == "q4_k_m":
                t = T.Q6_K if _use_more_bits(layer, n_layer) else t
            elif first8 and q in _IQ4 and not imatrix:
                t = T.Q5_K
            elif q == "q5_k_m" and _use_more_bits(layer, n_layer):
                t = T.Q6_K
            elif q == "q4_k_s" and first8:
                t = T.Q5_K
            elif q in ("q4_0", "q5_0") and imatrix and first8:
                t = T.Q4_1 if q == "q4_0" else T.Q5_1
            i_down += 1
        elif cat == "attn_output":
            if n_expert == 8:
                if q in _ATTN_OUT_Q5K_WITH_8_EXPERTS:
                    t = T.Q5_K
            else:
                t = {"q2_k": T.Q3_K, "iq3_xxs": T.IQ3_S, "q3_k_m": T.Q4_K, "q3_k_l": T.Q5_K,
                     "iq3_m": T.Q4_K}.get(q, t)
        elif cat in ("ffn_gate", "ffn_up"):
            if q == "iq3_xs" and n_layer // 8 <= layer < 7 * n_layer // 8:
                t = T.IQ3_XXS
            if cat == "ffn_gate":
                i_gate += 1
            else:
                i_up += 1
        out[name] = _fallback(name, shape[-1], t)
    return out


def _fallback(name: str, cols: int, t: GGMLType) -> GGMLType:
    """llama-quant.cpp's tensor_type_fallback: a type whose blocks the row does not hold whole gives way."""
    elems = BLOCK_GEOMETRY[t][0]
    if cols % elems == 0:
        return t
    new = _FALLBACK.get(t)
    if new is None:
        if elems > 32:
            raise UsageError(f"{name}: row length {cols} is not a multiple of the {t.name} block size {elems} "
                             "(and llama-quantize has no fallback type for it)")
        new = t
    return new if cols % BLOCK_GEOMETRY[new][0] == 0 else T.F16


# ----------------------------------------------------------------------------
# weights

def _rng(seed: int, name: str) -> np.random.Generator:
    # one stream per tensor: a tensor's values do not depend on the others or on chunking order
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _init_small(name: str, shape, s: Shape, rng: np.random.Generator) -> np.ndarray:
    """The 1-D tensors and the conv kernel, drawn like transformers' init."""
    if name.endswith("ssm_a"):
        return -rng.uniform(1.0, 16.0, shape)                      # -exp(A_log), A in [1, 16]
    if name.endswith("ssm_dt.bias"):
        dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), shape))
        return dt + np.log(-np.expm1(-dt))                        # softplus^-1(dt)
    if name.endswith("ssm_conv1d.weight"):
        return rng.normal(0.0, 1.0 / np.sqrt(s.conv_kernel), shape)
    if name.endswith("norm.weight"):
        return 1.0 + rng.normal(0.0, 0.1, shape)                  # GGUF norms carry the +1
    raise AssertionError(name)


def _matrix_std(name: str, shape, s: Shape) -> float:
    """Scale so that every projection of a unit-RMS input is O(1); the residual-branch
    outputs are damped so the stream grows slowly with depth; logits get std ~1.5. Router
    logits get std ~3, so that routing is decisive (like the oracle's tinymoe)."""
    fan_in = shape[-1]
    if name in ("token_embd.weight", "output.weight"):
        return 1.5 / np.sqrt(s.n_embd)
    std = 1.0 / np.sqrt(fan_in)
    if name.endswith("ffn_gate_inp.weight"):
        std *= 3.0
    if name.endswith(("ssm_out.weight", "attn_output.weight", "ffn_down.weight", "ffn_down_exps.weight",
                      "ffn_down_shexp.weight")):
        std *= 0.5
    return std


def random_codes_text(plan: list[PlannedTensor]) -> str:
    """What harness.synth.random_codes says of a plan: the types written as random valid codes ('' if none)."""
    types = sorted({t.type.name for t in plan if t.type in RANDOM_CODE_TYPES})
    if not types:
        return ""
    return (f"{', '.join(types)} tensors hold random valid codes, not a quantizer's output: every bit pattern is a "
            "valid block, speed does not depend on the values, and the dequantized twin is still exact")


@dataclass
class SynthResult:
    path: str
    seconds: float
    bytes: int


def synth_metadata(s: Shape, quant: str, seed: int, tensor_types: tuple[str, ...] = ()) -> dict[str, tuple]:
    """GGUF metadata as llama.cpp's converter writes it for this shape, plus our provenance."""
    a = s.arch
    random = random_codes_text(quant_plan(s, quant, tensor_types))
    if s.n_expert:    # the MoE converter writes no dense FFN width
        ffn = {f"{a}.expert_count": Meta.u32(s.n_expert),
               f"{a}.expert_used_count": Meta.u32(s.n_expert_used),
               f"{a}.expert_feed_forward_length": Meta.u32(s.n_ff_expert),
               f"{a}.expert_shared_feed_forward_length": Meta.u32(s.n_ff_shared)}
    else:
        ffn = {f"{a}.feed_forward_length": Meta.u32(s.n_ff)}
    return {
        "general.architecture": Meta.str(a),
        "general.type": Meta.str("model"),
        "general.name": Meta.str(f"{a}-synthetic-{s.name}"),
        "general.size_label": Meta.str(s.size_label or s.name),
        f"{a}.block_count": Meta.u32(s.n_layer + s.n_mtp),
        **({f"{a}.nextn_predict_layers": Meta.u32(s.n_mtp)} if s.n_mtp else {}),
        f"{a}.context_length": Meta.u32(s.context_length),
        f"{a}.embedding_length": Meta.u32(s.n_embd),
        **ffn,
        f"{a}.attention.head_count": Meta.u32(s.n_head),
        f"{a}.attention.head_count_kv": Meta.u32(s.n_head_kv),
        f"{a}.rope.dimension_sections": Meta.i32_array(s.rope_sections),
        f"{a}.rope.freq_base": Meta.f32(s.rope_theta),
        f"{a}.attention.layer_norm_rms_epsilon": Meta.f32(s.rms_eps),
        f"{a}.attention.key_length": Meta.u32(s.head_dim),
        f"{a}.attention.value_length": Meta.u32(s.head_dim),
        f"{a}.ssm.conv_kernel": Meta.u32(s.conv_kernel),
        f"{a}.ssm.state_size": Meta.u32(s.ssm_state),
        f"{a}.ssm.group_count": Meta.u32(s.ssm_k_heads),
        f"{a}.ssm.time_step_rank": Meta.u32(s.ssm_v_heads),
        f"{a}.ssm.inner_size": Meta.u32(s.ssm_v_heads * s.ssm_state),
        f"{a}.attention.recurrent_layers": Meta.bool_array(s.recurrent + (False,) * s.n_mtp),
        f"{a}.full_attention_interval": Meta.u32(s.full_attention_interval),
        f"{a}.rope.dimension_count": Meta.u32(s.rope_dims),
        # random weights have no vocabulary: llama.cpp's "none" tokenizer plus the size
        "tokenizer.ggml.model": Meta.str("none"),
        f"{a}.vocab_size": Meta.u32(s.vocab_size),
        "general.quantization_version": Meta.u32(2),
        "general.file_type": Meta.u32(_FILE_TYPE[quant.split("+")[0]]),
        # how this file was made (ignored by llama.cpp; shown by `harness info`)
        "harness.synth.preset": Meta.str(s.name),
        "harness.synth.quant": Meta.str(quant),
        "harness.synth.recipe": Meta.str(recipe_text(quant, s, tensor_types)),
        **({"harness.synth.tensor_types": Meta.str(" ".join(tensor_types))} if tensor_types else {}),
        **({"harness.synth.random_codes": Meta.str(random)} if random else {}),
        "harness.synth.seed": Meta.u32(seed),
        **({"harness.synth.head_rank": Meta.u32(s.head_rank), "harness.synth.head_noise": Meta.f32(s.head_noise)}
           if s.head_rank else {}),
    }


def write_weights(w: GGUFStreamWriter, s: Shape, seed: int, threads: int, progress=None) -> None:
    """Draw, quantize and stream every tensor of the writer's plan, in order."""
    from harness import native

    total = sum(t.nbytes for t in w.tensors)
    done = 0
    for t in w.tensors:
        rng = _rng(seed, t.name)
        if not _is_matrix(t.name):
            data = _init_small(t.name, t.shape, s, rng).astype(np.float32)
            w.write(t.name, native.quantize(data.reshape(-1, t.shape[-1]), t.type))
        elif s.head_rank and t.name == ("token_embd.weight" if s.tied else "output.weight"):
            _write_low_rank_head(w, t, s, rng, threads)
        else:
            # a stack of experts [NE, R, cols] is NE * R rows; [E] (a 1-row gate) is one row
            rows, cols = int(np.prod(t.shape[:-1])), t.shape[-1]
            std = np.float32(_matrix_std(t.name, t.shape, s))
            step = max(1, (8 << 20) // cols)
            for r0 in range(0, rows, step):
                n = min(step, rows - r0)
                if t.type in RANDOM_CODE_TYPES:     # no grid search: random valid blocks with the same std
                    w.write(t.name, random_blocks(t.type, n, cols, float(std), rng))
                    continue
                x = rng.standard_normal((n, cols), dtype=np.float32)
                x *= std
                w.write(t.name, native.quantize(x, t.type, threads=threads))
        done += t.nbytes
        if progress:
            progress(done, total)


def _write_low_rank_head(w: GGUFStreamWriter, t: PlannedTensor, s: Shape, rng: np.random.Generator,
                         threads: int) -> None:
    """Head rows a_r B * c + noise: B [R][E] orthonormal, a_r ~ N(0, I_R), scaled so a row has the
    norm of a random one and the noise carries head_noise of it (real heads are far from random)."""
    from harness import native
    if t.type in RANDOM_CODE_TYPES:
        raise UsageError(f"a low-rank LM head cannot be {t.type.name} (random codes only)")
    rows, cols = t.shape
    R, nu = s.head_rank, s.head_noise
    std = _matrix_std(t.name, t.shape, s)
    B = np.linalg.qr(rng.standard_normal((cols, R)))[0].T.astype(np.float32)
    signal = np.float32(std * np.sqrt(cols / R) * np.sqrt(max(0.0, 1.0 - nu * nu)))
    step = max(1, (8 << 20) // cols)
    for r0 in range(0, rows, step):
        n = min(step, rows - r0)
        x = (rng.standard_normal((n, R), dtype=np.float32) @ B) * signal
        x += rng.standard_normal((n, cols), dtype=np.float32) * np.float32(std * nu)
        w.write(t.name, native.quantize(x, t.type, threads=threads))


def synthesize(shape: Shape | str, quant: str, out: str | os.PathLike, seed: int = 0,
               threads: int | None = None, progress=None, tensor_types: tuple[str, ...] = (),
               tokenizer: str | os.PathLike | None = None, tokenizer_pre: str = "qwen35") -> SynthResult:
    """Write a GGUF of the given shape (or preset name) with seeded random weights; quant is a spec
    (harness.model.recipes), tensor_types REGEX=TYPE overrides applied after it; tokenizer a
    Hugging Face tokenizer.json whose vocabulary the file then carries (else the "none" tokenizer)."""
    from harness import native

    s = get_preset(shape) if isinstance(shape, str) else shape
    tensor_types = tuple(tensor_types)
    plan = quant_plan(s, quant, tensor_types)
    meta = synth_metadata(s, quant, seed, tensor_types)
    if tokenizer is not None:
        from harness.model.tokenizer_json import tokenizer_metadata
        del meta["tokenizer.ggml.model"]
        meta.update(tokenizer_metadata(tokenizer, s.vocab_size, tokenizer_pre))
    t0 = time.perf_counter()
    with GGUFStreamWriter(out, meta, plan) as w:
        write_weights(w, s, seed, threads or native.default_threads(), progress)
    return SynthResult(os.fspath(out), time.perf_counter() - t0, sum(t.nbytes for t in plan))


def _is_matrix(name: str) -> bool:
    return not name.endswith(("ssm_conv1d.weight", "ssm_a", "ssm_dt.bias")) and not name.endswith("norm.weight")


# ----------------------------------------------------------------------------
# a cache of synthesized files, shared by the CLI, the tests and the benchmarks

def cached_model_path(preset: str, quant: str, seed: int = 0, head_rank: int = 0, head_noise: float = 0.0,
                      mtp: bool = False):
    """Where cached_model keeps (or will write) a synthetic model."""
    from harness.model.recipes import file_label
    shape = get_preset(preset)
    check_quant(quant)
    suffix = ""
    if head_rank:
        if not 0 < head_rank <= shape.n_embd or not 0.0 <= head_noise < 1.0:
            raise UsageError(f"low-rank head: rank must be in [1, {shape.n_embd}] and noise in [0, 1), "
                             f"got {head_rank}, {head_noise}")
        suffix = f"-lr{head_rank}n{head_noise:g}"
    if mtp:
        suffix += "-mtp"
    return cache_dir() / f"synth-{preset}-{file_label(quant)}-s{seed}{suffix}.gguf"


def cached_model(preset: str, quant: str, seed: int = 0, head_rank: int = 0, head_noise: float = 0.0,
                 mtp: bool = False) -> str:
    """Path of a synthetic model, written on first use. head_rank > 0: a low-rank-plus-noise LM head;
    mtp: with the MTP block real checkpoints carry."""
    path = cached_model_path(preset, quant, seed, head_rank, head_noise, mtp)
    shape = get_preset(preset)
    if mtp:
        shape = shape.with_(n_mtp=1)
    if head_rank:
        shape = shape.with_(head_rank=head_rank, head_noise=float(head_noise))
    if not path.exists():
        synthesize(shape, quant, path, seed=seed)
    return str(path)

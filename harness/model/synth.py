"""Synthetic Qwen3.5 GGUF files: real shapes, seeded random weights, metadata and tensor
names exactly as llama.cpp's converter writes them, weight types as llama-quantize
picks them. Weights are made and quantized in row chunks, so a multi-GB model never
sits in memory whole; quantization runs in C."""
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

QUANTS = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "q4_k", "q5_k", "q6_k", "iq4_xs",
          "q2_k", "q3_k_m", "q4_k_m", "nvfp4")
_BASE_TYPE = {"f32": GGMLType.F32, "f16": GGMLType.F16, "bf16": GGMLType.BF16,
              "q8_0": GGMLType.Q8_0, "q4_0": GGMLType.Q4_0, "q4_1": GGMLType.Q4_1,
              "q5_0": GGMLType.Q5_0, "q5_1": GGMLType.Q5_1, "iq4_nl": GGMLType.IQ4_NL, "q4_k": GGMLType.Q4_K,
              "q5_k": GGMLType.Q5_K, "q6_k": GGMLType.Q6_K, "iq4_xs": GGMLType.IQ4_XS,
              "q2_k": GGMLType.Q2_K, "q3_k_m": GGMLType.Q3_K, "q4_k_m": GGMLType.Q4_K, "nvfp4": GGMLType.NVFP4}
# llama.cpp's general.file_type (llama_ftype) for each choice
_FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10, "q3_k_m": 12,
              "q4_k": 14, "q4_k_m": 15,
              "q5_k": 16, "q6_k": 18, "iq4_nl": 25, "iq4_xs": 30, "bf16": 32, "nvfp4": 39}
# NVFP4 checkpoints (ModelOpt / compressed-tensors, converted) quantize the linear layers and keep the
# embedding, the LM head and the small delta-net in_proj_a / in_proj_b in BF16
_NVFP4_BF16 = ("token_embd.weight", "output.weight")
_NVFP4_BF16_SUFFIXES = (".ssm_alpha.weight", ".ssm_beta.weight")
# weight types whose LM head llama-quantize raises to Q6_K
_LM_HEAD_Q6K = {GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL, GGMLType.Q4_K,
                GGMLType.Q5_K, GGMLType.IQ4_XS}
# llama-quantize's per-tensor rules only apply to quantized target types
_FLOAT_TYPES = {GGMLType.F32, GGMLType.F16, GGMLType.BF16}

RECIPES = {
    "q4_k_m": "Q4_K everywhere except: LM head Q6_K; attn_v / delta-net attn_qkv and ffn_down "
              "Q6_K in the layers llama.cpp's use_more_bits() picks (first 1/8, last 1/8, every "
              "3rd between); norms, ssm_a, ssm_dt, ssm_conv1d F32",
    "q2_k": "Q2_K everywhere except: LM head Q6_K; attn_v / delta-net attn_qkv Q4_K when n_head / n_head_kv "
            ">= 4, else Q3_K; ffn_down and attn_output Q3_K; norms, ssm_a, ssm_dt, ssm_conv1d F32",
    "q3_k_m": "Q3_K everywhere except: LM head Q6_K; attn_v / delta-net attn_qkv Q5_K in the first two, Q4_K "
              "in the others; ffn_down Q5_K in the first n_layer / 16 layers, Q4_K in the others; attn_output "
              "Q4_K; norms, ssm_a, ssm_dt, ssm_conv1d F32",
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
MOE_RECIPE = ("; MoE: router and shared-expert gate F32, expert and shared ffn_down like ffn_down"
              "{eight}")
# llama-quantize's special case for exactly 8 experts (Mixtral-style), applied to quantized types
EIGHT_EXPERTS = ", and with exactly 8 experts attn_k / attn_v / attn_qkv Q8_0{out}"
_ATTN_OUT_Q5K_WITH_8_EXPERTS = ("q2_k", "q3_k_m", "q4_k_m", "iq4_xs", "iq4_nl")
_ATTN_OUT = {"q2_k": GGMLType.Q3_K, "q3_k_m": GGMLType.Q4_K}   # attn_output otherwise
# IQ4_NL / IQ4_XS: attn_v / attn_qkv Q5_K when n_head / n_head_kv >= 4, ffn_down Q5_K in the first
# n_layer / 8 layers (llama-quantize without an importance matrix)
_IQ4 = ("iq4_nl", "iq4_xs")


def recipe_text(quant: str, s: Shape | None = None, tensor_types: tuple[str, ...] = ()) -> str:
    from harness.model.recipes import parse_spec
    quant, overrides = parse_spec(quant)
    text = _base_recipe_text(quant, s)
    labels = [o.label for o in overrides] + list(tensor_types)
    return text + (f"; then overrides {', '.join(labels)}" if labels else "")


def _base_recipe_text(quant: str, s: Shape | None = None) -> str:
    if quant in RECIPES:
        text = RECIPES[quant]
    else:
        t = _BASE_TYPE[quant]
        head = "LM head Q6_K, " if t in _LM_HEAD_Q6K else ""
        text = f"every matrix {t.name}; {head}norms and small delta-net tensors F32"
        if quant in _IQ4:
            text += ("; attn_v / delta-net attn_qkv Q5_K when n_head / n_head_kv >= 4, ffn_down Q5_K in the "
                     "first n_layer / 8 layers")
    if s is not None and s.n_expert:
        eight = ""
        if s.n_expert == 8 and _BASE_TYPE[quant] not in _FLOAT_TYPES:
            out = ", attn_output Q5_K" if quant in _ATTN_OUT_Q5K_WITH_8_EXPERTS else ""
            eight = EIGHT_EXPERTS.format(out=out)
        text += MOE_RECIPE.format(eight=eight)
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


_FFN_DOWN = ("ffn_down.weight", "ffn_down_exps.weight", "ffn_down_shexp.weight")


def _layer(name: str) -> int:
    # llama.cpp counts ffn_down tensors for dense models and parses the name for MoE:
    # both are the layer index of the name here
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
    shapes = tensor_shapes(s)
    lm_head = "token_embd.weight" if s.tied else "output.weight"
    n_wv = sum(1 for n, _ in shapes if n.endswith(("attn_v.weight", "attn_qkv.weight")))
    eight = s.n_expert == 8 and base not in _FLOAT_TYPES     # llama-quantize's 8-expert rules
    gqa4 = s.n_head // s.n_head_kv >= 4                      # ... and its n_gqa() >= 4 ones
    i_wv = 0
    plan = []
    for name, shape in shapes:
        if quant != "f32" and len(shape) == 2 and shape[0] == 1:
            shape = shape[1:]   # llama-quantize writes [E, 1] tensors 1-D (ggml_n_dims drops trailing 1s)
        t = GGMLType.F32
        if _quantizable(name, shape):
            t = base
            if base == GGMLType.NVFP4 and (name in _NVFP4_BF16 or name.endswith(_NVFP4_BF16_SUFFIXES)):
                t = GGMLType.BF16
            elif name == lm_head and base in _LM_HEAD_Q6K:
                t = GGMLType.Q6_K
            elif name.endswith(("attn_v.weight", "attn_qkv.weight")):
                if quant in _IQ4 and gqa4:
                    t = GGMLType.Q5_K
                elif quant == "q2_k":
                    t = GGMLType.Q4_K if gqa4 else GGMLType.Q3_K
                elif quant == "q3_k_m":
                    t = GGMLType.Q5_K if i_wv < 2 else GGMLType.Q4_K
                elif quant == "q4_k_m" and _use_more_bits(i_wv, n_wv):
                    t = GGMLType.Q6_K
                if eight:
                    t = GGMLType.Q8_0
                i_wv += 1
            elif name.endswith("attn_k.weight") and eight:
                t = GGMLType.Q8_0
            elif name.endswith("attn_output.weight") and eight and quant in _ATTN_OUT_Q5K_WITH_8_EXPERTS:
                t = GGMLType.Q5_K
            elif name.endswith("attn_output.weight") and not eight and quant in _ATTN_OUT:
                t = _ATTN_OUT[quant]
            elif quant == "q2_k" and name.endswith(_FFN_DOWN):
                t = GGMLType.Q3_K
            elif quant == "q3_k_m" and name.endswith(_FFN_DOWN):
                t = GGMLType.Q5_K if _layer(name) < s.n_layer // 16 else GGMLType.Q4_K
            elif quant == "q4_k_m" and name.endswith(_FFN_DOWN) and _use_more_bits(_layer(name), s.n_layer):
                t = GGMLType.Q6_K
            elif quant in _IQ4 and name.endswith(_FFN_DOWN) and _layer(name) < s.n_layer // 8:
                t = GGMLType.Q5_K       # llama-quantize without an importance matrix
            if shape[-1] % BLOCK_GEOMETRY[t][0]:
                raise UsageError(f"{name}: row length {shape[-1]} is not a multiple of the "
                                 f"{t.name} block size {BLOCK_GEOMETRY[t][0]}")
        plan.append(PlannedTensor(name, shape, t))
    return plan


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


@dataclass
class SynthResult:
    path: str
    seconds: float
    bytes: int


def synth_metadata(s: Shape, quant: str, seed: int, tensor_types: tuple[str, ...] = ()) -> dict[str, tuple]:
    """GGUF metadata as llama.cpp's converter writes it for this shape, plus our provenance."""
    a = s.arch
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
                x = rng.standard_normal((min(step, rows - r0), cols), dtype=np.float32)
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

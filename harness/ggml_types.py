"""ggml tensor types as stored in GGUF files: ids, block geometry and names."""
from __future__ import annotations

import enum


class GGMLType(enum.IntEnum):
    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9  # activation format only (paired with Q4_1 / Q5_1)
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15  # activation format only
    IQ2_XXS = 16
    IQ2_XS = 17
    IQ3_XXS = 18
    IQ1_S = 19
    IQ4_NL = 20
    IQ3_S = 21
    IQ2_S = 22
    IQ4_XS = 23
    IQ1_M = 29
    BF16 = 30
    TQ1_0 = 34
    TQ2_0 = 35
    MXFP4 = 39
    NVFP4 = 40


# (elements per block, bytes per block)
BLOCK_GEOMETRY: dict[GGMLType, tuple[int, int]] = {
    GGMLType.F32: (1, 4),
    GGMLType.F16: (1, 2),
    GGMLType.BF16: (1, 2),
    GGMLType.Q4_0: (32, 18),
    GGMLType.Q8_0: (32, 34),
    GGMLType.Q4_K: (256, 144),
    GGMLType.Q5_K: (256, 176),
    GGMLType.Q6_K: (256, 210),
    GGMLType.Q8_K: (256, 292),
    GGMLType.Q8_1: (32, 36),
    GGMLType.IQ4_XS: (256, 136),
    GGMLType.Q4_1: (32, 20),
    GGMLType.Q5_0: (32, 22),
    GGMLType.Q5_1: (32, 24),
    GGMLType.IQ4_NL: (32, 18),
    GGMLType.Q2_K: (256, 84),
    GGMLType.Q3_K: (256, 110),
    GGMLType.IQ2_XXS: (256, 66),
    GGMLType.IQ2_XS: (256, 74),
    GGMLType.IQ2_S: (256, 82),
    GGMLType.IQ3_XXS: (256, 98),
    GGMLType.IQ3_S: (256, 110),
    GGMLType.IQ1_S: (256, 50),
    GGMLType.IQ1_M: (256, 56),
    GGMLType.TQ1_0: (256, 54),
    GGMLType.TQ2_0: (256, 66),
    GGMLType.MXFP4: (32, 17),
    GGMLType.NVFP4: (64, 36),
}

# the types the C engine has kernels for; a tensor of another weight type is dequantized to F32 when
# a session binds it (harness.engine.session), exact but 32 bits a weight
NATIVE_TYPES = frozenset({GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0,
                          GGMLType.Q5_1, GGMLType.Q8_0, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K,
                          GGMLType.Q6_K, GGMLType.IQ4_NL, GGMLType.IQ4_XS, GGMLType.MXFP4, GGMLType.NVFP4,
                          GGMLType.IQ2_XXS, GGMLType.IQ2_XS, GGMLType.IQ2_S, GGMLType.IQ3_XXS, GGMLType.IQ3_S,
                          GGMLType.IQ1_S, GGMLType.IQ1_M, GGMLType.TQ1_0, GGMLType.TQ2_0})

# native types without a C quantizer (a grid search under an importance matrix): synthetic models and
# kernel tests give them random valid codes (harness.model.random_codes)
NO_QUANTIZER_TYPES = frozenset({GGMLType.IQ2_XXS, GGMLType.IQ2_XS, GGMLType.IQ2_S, GGMLType.IQ3_XXS, GGMLType.IQ3_S,
                                GGMLType.IQ1_S, GGMLType.IQ1_M})

# the formats activations are converted to before a dot product, never stored in model files
ACTIVATION_TYPES = frozenset({GGMLType.Q8_K, GGMLType.Q8_1})

# the weight types a model file may use
WEIGHT_TYPES = frozenset(BLOCK_GEOMETRY) - ACTIVATION_TYPES


def type_name(type_id: int) -> str:
    try:
        return GGMLType(type_id).name
    except ValueError:
        return f"type#{type_id}"


def row_bytes(t: GGMLType, n: int) -> int:
    """Bytes of one row of n elements (n must be a multiple of the block size)."""
    elems, nbytes = BLOCK_GEOMETRY[t]
    if n % elems:
        raise ValueError(f"{t.name} rows need a multiple of {elems} elements, got {n}")
    return n // elems * nbytes


def bits_per_weight(t: GGMLType) -> float:
    elems, nbytes = BLOCK_GEOMETRY[t]
    return 8.0 * nbytes / elems


# KV cache types the engine holds, by llama.cpp's --cache-type-k/-v names
CACHE_TYPES = {"f32": GGMLType.F32, "f16": GGMLType.F16, "bf16": GGMLType.BF16, "q8_0": GGMLType.Q8_0}

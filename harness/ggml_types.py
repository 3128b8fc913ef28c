"""ggml tensor types as stored in GGUF files: ids, block geometry and names."""
from __future__ import annotations

import enum


class GGMLType(enum.IntEnum):
    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q8_0 = 8
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15  # activation format only
    IQ4_XS = 23
    BF16 = 30


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
    GGMLType.IQ4_XS: (256, 136),
}

# the weight types a model file may use
WEIGHT_TYPES = frozenset(BLOCK_GEOMETRY) - {GGMLType.Q8_K}


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

"""What the numpy dequantizers share: a buffer cut into blocks, f16 fields, the IQ4_NL codebook."""
from __future__ import annotations

import numpy as np

from harness.ggml_types import BLOCK_GEOMETRY, GGMLType

# ggml's kvalues_iq4nl: the 16 non-uniform levels of IQ4_NL and IQ4_XS
KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                         dtype=np.float32)


def f16_values(b: np.ndarray) -> np.ndarray:
    """Little-endian f16 fields (uint8 [..., 2]) as float32 [...]."""
    return np.ascontiguousarray(b).view(np.float16)[..., 0].astype(np.float32)


def as_blocks(raw: np.ndarray, t: GGMLType) -> np.ndarray:
    """The bytes of type-t data as uint8 [n_blocks, block_bytes]."""
    nbytes = BLOCK_GEOMETRY[t][1]
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    if raw.size % nbytes:
        raise ValueError(f"{raw.size} bytes is not a whole number of {t.name} blocks")
    return raw.reshape(-1, nbytes)

"""Random valid blocks of the codebook and ternary weight types, for synthetic models.

IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S: every bit pattern of a block other than its f16
scale is a valid block (grid indices, sign bits, sub-block scales), and decoding speed does not depend on
which point is picked, so random codes with a chosen block scale give a file with the real layout and the
real cost, without the grid search of ggml's quantizers (which is slow and needs an importance matrix).
TQ1_0 / TQ2_0 get uniform random trits. The dequantized twin of such a file is exact, as for any file.
The blocks come from the C library (q35_random_blocks in native/src/codebook_formats.c); the block scale
is set so the dequantized values have about the standard deviation asked for."""
from __future__ import annotations

import numpy as np

from harness.ggml_types import GGMLType

T = GGMLType
RANDOM_CODE_TYPES = frozenset({T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ3_XXS, T.IQ3_S, T.IQ1_S, T.IQ1_M, T.TQ1_0, T.TQ2_0})


def random_blocks(t: GGMLType, n_rows: int, n_cols: int, std: float, rng: np.random.Generator) -> np.ndarray:
    """n_rows rows of n_cols weights of type t as random valid blocks, uint8 [n_rows, row bytes]; the
    dequantized values have a standard deviation of about std (std >= 0). ValueError for other types."""
    from harness import native

    t = GGMLType(t)
    if t not in RANDOM_CODE_TYPES:
        raise ValueError(f"no random codes for {t.name} (types: {', '.join(sorted(x.name for x in RANDOM_CODE_TYPES))})")
    return native.random_blocks(t, n_rows, n_cols, std, int(rng.integers(0, 2**63)))

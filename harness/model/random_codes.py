"""Random valid blocks of the codebook and ternary weight types, for synthetic models.

IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S: every bit pattern of a block other than its f16
scale is a valid block (grid indices, sign bits, sub-block scales), and decoding speed does not depend on
which point is picked, so random codes with a chosen block scale give a file with the real layout and the
real cost, without the grid search of ggml's quantizers (which is slow and needs an importance matrix).
The dequantized twin of such a file is exact, as for any file. TQ1_0 / TQ2_0 have cheap quantizers, so
synthetic files quantize them; random_blocks still makes them (uniform random trits) on request.
The blocks come from the C library (q35_random_blocks in native/src/codebook_formats.c); the block scale
is set so the dequantized values have about the standard deviation asked for."""
from __future__ import annotations

import numpy as np

from harness.ggml_types import NO_QUANTIZER_TYPES, GGMLType

T = GGMLType
# the types synthetic files hold as random codes (no quantizer), and those random_blocks makes
RANDOM_CODE_TYPES = NO_QUANTIZER_TYPES
BLOCK_TYPES = NO_QUANTIZER_TYPES | {T.TQ1_0, T.TQ2_0}


def random_blocks(t: GGMLType, n_rows: int, n_cols: int, std: float, rng: np.random.Generator) -> np.ndarray:
    """n_rows rows of n_cols weights of type t as random valid blocks, uint8 [n_rows, row bytes]; the
    dequantized values have a standard deviation of about std (std >= 0). ValueError for other types."""
    from harness import native

    t = GGMLType(t)
    if t not in BLOCK_TYPES:
        raise ValueError(f"no random codes for {t.name} (types: {', '.join(sorted(x.name for x in BLOCK_TYPES))})")
    return native.random_blocks(t, n_rows, n_cols, std, int(rng.integers(0, 2**63)))

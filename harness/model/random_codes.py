"""Random valid blocks of the codebook and ternary weight types, for synthetic models.

IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S: every bit pattern of a block other than its f16
scale is a valid block (grid indices, sign bits, sub-block scales), and decoding speed does not depend on
which point is picked, so uniform random bytes with a chosen block scale give a file with the real
layout and the real cost, without the grid search of ggml's quantizers (which is slow and needs an
importance matrix). TQ1_0 / TQ2_0 get uniform random trits (base-3 bytes below 243, two-bit codes 0..2),
the values a ternary quantizer writes. The dequantized twin of such a file is exact, as for any file.

The block scale d is set so the dequantized values have about the standard deviation asked for: the
values are linear in d, so d = std / (the std of the same blocks decoded with d = 1)."""
from __future__ import annotations

import numpy as np

from harness.ggml_types import BLOCK_GEOMETRY, GGMLType

T = GGMLType

# byte offset of the f16 block scale d in each block (IQ1_M packs d into its scales' top nibbles)
_D_OFFSET = {T.IQ2_XXS: 0, T.IQ2_XS: 0, T.IQ2_S: 0, T.IQ3_XXS: 0, T.IQ3_S: 0, T.IQ1_S: 0, T.TQ1_0: 52,
             T.TQ2_0: 64}
_IQ1_M_SCALES = 48  # block_iq1_m: qs[32], qh[16], scales u16[4] (d's nibbles in bits 12-15)

RANDOM_CODE_TYPES = frozenset(_D_OFFSET) | {T.IQ1_M}


def _set_scale(blocks: np.ndarray, t: GGMLType, d: float) -> None:
    """Write the block scale d (as f16) into every block, in place."""
    h = int(np.array(d, dtype=np.float16).view(np.uint16))
    if t == T.IQ1_M:
        sc = blocks[:, _IQ1_M_SCALES:_IQ1_M_SCALES + 8].copy().view("<u2")    # [blocks, 4]
        for i in range(4):
            sc[:, i] = (sc[:, i] & 0x0FFF) | (((h >> (4 * i)) & 0xF) << 12)
        blocks[:, _IQ1_M_SCALES:_IQ1_M_SCALES + 8] = sc.view(np.uint8)
        return
    o = _D_OFFSET[t]
    blocks[:, o] = h & 0xFF
    blocks[:, o + 1] = h >> 8


def _random_bytes(t: GGMLType, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    block_bytes = BLOCK_GEOMETRY[t][1]
    b = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    if t == T.TQ1_0:                        # qs[48], qh[4]: base-3 fixed-point bytes, 243 = 3^5
        b[:, 0:52] = rng.integers(0, 243, size=(n_blocks, 52), dtype=np.uint8)
    elif t == T.TQ2_0:                      # four two-bit codes a byte, each 0..2 (value code - 1)
        codes = rng.integers(0, 3, size=(n_blocks, 64, 4), dtype=np.uint8)
        b[:, 0:64] = (codes << np.array([0, 2, 4, 6], dtype=np.uint8)).sum(axis=2, dtype=np.uint8)
    return b


def random_blocks(t: GGMLType, n_rows: int, n_cols: int, std: float, rng: np.random.Generator) -> np.ndarray:
    """n_rows rows of n_cols weights of type t as random valid blocks, uint8 [n_rows, row bytes]; the
    dequantized values have a standard deviation of about std (std > 0)."""
    from harness.model.dequant import DEQUANTIZERS

    t = GGMLType(t)
    if t not in RANDOM_CODE_TYPES:
        raise ValueError(f"no random codes for {t.name} (types: {', '.join(sorted(x.name for x in RANDOM_CODE_TYPES))})")
    block_values, block_bytes = BLOCK_GEOMETRY[t]
    if n_cols % block_values:
        raise ValueError(f"{t.name} rows hold whole blocks of {block_values} values; {n_cols} columns do not")
    n_blocks = n_rows * (n_cols // block_values)
    b = _random_bytes(t, n_blocks, rng)
    probe = b[: min(n_blocks, 64)].copy()
    _set_scale(probe, t, 1.0)
    unit_std = float(np.std(DEQUANTIZERS[t](probe.reshape(-1))))
    _set_scale(b, t, std / unit_std if unit_std > 0 else 0.0)
    return b.reshape(n_rows, (n_cols // block_values) * block_bytes)

"""The codebooks of ggml's IQ1 / IQ2 / IQ3 weight types, as data.

Each IQ type stores, per group of 8 (IQ2, IQ1) or 4 (IQ3) weights, an index into a fixed table of
points: IQ2_XXS 256 points of 8 values in {8, 25, 43}, IQ2_XS 512, IQ2_S 1024; IQ3_XXS 256 points of 4
values in {4, 12, ..., 62}, IQ3_S 512 points of 4 odd values 1..15; IQ1_S / IQ1_M 2048 points of 8
values in {-1, 0, 1}. They are defined in llama.cpp's ggml/src/ggml-common.h (`iq2xxs_grid`,
`iq2xs_grid`, `iq2s_grid`, `iq3xxs_grid`, `iq3s_grid`, `iq1s_grid`), where each point is packed into
one integer (a byte per value, or 2 bits per value for IQ1). They are points of lattices picked by
the IQ quantizers' authors, not something a formula gives back, so they are kept as a table:
`iq_grids.npz` beside this module, written once by `python -m harness.model.iq_grids --write` from the
same tables as gguf-py (a dependency) carries them, and checked against gguf-py by the tests.

The sign table is a definition, so it is computed: KSIGNS[i] (ggml's ksigns_iq2xs) is the 7 sign bits
i of 8 values plus an eighth bit that makes the number of minus signs even."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

GRIDS_FILE = Path(__file__).with_name("iq_grids.npz")
NAMES = ("IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S")    # IQ1_M shares IQ1_S's grid
SHAPES = {"IQ2_XXS": (256, 8), "IQ2_XS": (512, 8), "IQ2_S": (1024, 8), "IQ3_XXS": (256, 4), "IQ3_S": (512, 4),
          "IQ1_S": (2048, 8)}

# ksigns_iq2xs: i | (parity of i) << 7
KSIGNS = np.array([i | ((bin(i).count("1") & 1) << 7) for i in range(128)], dtype=np.uint8)


@functools.lru_cache(maxsize=None)
def grid(name: str) -> np.ndarray:
    """The codebook of an IQ type as float32 [points, values per point] (IQ1_M: IQ1_S's)."""
    name = "IQ1_S" if name == "IQ1_M" else name
    with np.load(GRIDS_FILE) as f:
        g = f[name].astype(np.float32)
    if g.shape != SHAPES[name]:
        raise ValueError(f"{GRIDS_FILE}: {name} grid has shape {g.shape}, expected {SHAPES[name]}")
    return g


def grids_from_gguf() -> dict[str, np.ndarray]:
    """The same codebooks as gguf-py decodes them (its quants.<TYPE>.grid), as int8 tables."""
    import gguf.quants as q
    out = {}
    for name in NAMES:
        cls = getattr(q, name)
        cls.init_grid()
        out[name] = np.asarray(cls.grid, dtype=np.float32).reshape(SHAPES[name]).astype(np.int8)
    return out


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print("usage: python -m harness.model.iq_grids --write", file=sys.stderr)
        return 2
    np.savez_compressed(GRIDS_FILE, **grids_from_gguf())
    print(f"wrote {GRIDS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

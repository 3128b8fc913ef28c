"""Running the llama-quantize built from the llama-cpp-python 0.3.36 sdist on our files (tests that need it
skip without it, see support.paths.llama_tool)."""
from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import numpy as np

from harness.model.gguf_reader import read_gguf
from support.paths import llama_tool

LLAMA_QUANTIZE = llama_tool("llama-quantize")
# llama-quantize refuses these mixes without an importance matrix (a tensor would get a type that needs one), so our
# plan chooses as llama-quantize does with one (it changes IQ3_XXS's attn_v and ffn_down)
NEEDS_IMATRIX = {"q2_k_s", "iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq2_m", "iq3_xxs", "iq3_xs"}
_DRY_RUN_LINE = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[[^\]]*\], type =\s*(\w+),.*?(?:\((\w+)\))?\s*$", re.M)


def uniform_imatrix(f32: Path, out: Path) -> Path:
    """An all-ones importance matrix for every matrix of f32, in the legacy layout llama-quantize reads
    (common_imatrix_load_legacy): int32 entry count; per entry int32 name length, the name, int32 ncall, int32
    value count, the float32 sums (llama-quantize divides them by ncall); a value per column, per expert for an
    expert stack (ne[0] * ne[2])."""
    entries = [(n, t.shape[-1] * (t.shape[0] if len(t.shape) == 3 else 1))
               for n, t in read_gguf(f32).tensors.items() if len(t.shape) >= 2]
    with open(out, "wb") as f:
        f.write(struct.pack("<i", len(entries)))
        for name, n in entries:
            b = name.encode()
            f.write(struct.pack("<i", len(b)) + b + struct.pack("<ii", 1, n) + np.ones(n, "<f4").tobytes())
    return out


def llama_quantize(f32: Path, out: Path | None, quant: str, imatrix: Path | None = None) -> dict[str, str] | str:
    """Run llama-quantize (out None: --dry-run); the type of every tensor it wrote or would write, or, when it
    refuses, its output."""
    args = [str(LLAMA_QUANTIZE)] + (["--dry-run"] if out is None else []) + \
        (["--imatrix", str(imatrix)] if imatrix else []) + [str(f32)] + ([str(out)] if out else []) + [quant.upper(), "2"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if r.returncode:
        return r.stdout[-2000:] + r.stderr[-2000:]
    if out is not None:
        return {n: t.type.name for n, t in read_gguf(out).tensors.items()}
    return {name: (new or old).upper() for name, old, new in _DRY_RUN_LINE.findall(r.stdout + "\n" + r.stderr)}

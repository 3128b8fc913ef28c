"""Who a model file is: a content hash, a display name, its quant type and its shapes."""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import asdict, dataclass

from harness.model.loader import Model

EDGE = 1 << 20   # bytes hashed at each end of the file

# llama.cpp's general.file_type (llama_ftype) -> the usual lower-case name
FILE_TYPES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1", 10: "q2_k",
              11: "q3_k_s", 12: "q3_k_m", 13: "q3_k_l", 14: "q4_k_s", 15: "q4_k_m", 16: "q5_k_s",
              17: "q5_k_m", 18: "q6_k", 19: "iq2_xxs", 20: "iq2_xs", 21: "q2_k_s", 22: "iq3_xs", 23: "iq3_xxs",
              24: "iq1_s", 25: "iq4_nl", 26: "iq3_s", 27: "iq3_m", 28: "iq2_s", 29: "iq2_m", 30: "iq4_xs",
              31: "iq1_m", 32: "bf16", 36: "tq1_0", 37: "tq2_0", 38: "mxfp4_moe", 39: "nvfp4"}


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of (size, first 1 MiB, last 1 MiB): cheap on multi-GB files, and it changes with the
    header, the tensor table, the size and the last tensor's bytes. Not a full-content hash."""
    size = os.path.getsize(path)
    h = hashlib.sha256(size.to_bytes(8, "little"))
    with open(path, "rb") as f:
        h.update(f.read(EDGE))
        if size > EDGE:
            f.seek(max(EDGE, size - EDGE))
            h.update(f.read(EDGE))
    return h.hexdigest()


def quant_name(m: Model) -> str:
    """The quant choice a synthetic file was made with, else llama.cpp's file type, else the most
    common matrix type."""
    md = m.metadata
    if "harness.synth.quant" in md:
        return str(md["harness.synth.quant"])
    ft = md.get("general.file_type")
    if ft is not None and int(ft) in FILE_TYPES:
        return FILE_TYPES[int(ft)]
    types = Counter(m.info(s.name).type.name.lower() for s in m.specs if len(m.info(s.name).shape) == 2)
    return types.most_common(1)[0][0] if types else "unknown"


@dataclass(frozen=True)
class ModelIdentity:
    model: str             # display name: preset-quant for synthetic models, else the file stem
    model_filename: str
    model_hash: str
    model_preset: str      # "" for user files
    quant: str
    weight_bytes: int
    bytes_per_token: int
    shapes: dict           # the config figures that set the cost of a token

    def columns(self) -> dict:
        return {k: getattr(self, k) for k in ("model", "model_filename", "model_hash", "model_preset", "quant")}

    def as_dict(self) -> dict:
        return asdict(self)


def identify(m: Model) -> ModelIdentity:
    c, md = m.config, m.metadata
    preset = str(md.get("harness.synth.preset", ""))
    quant = quant_name(m)
    stem = os.path.splitext(os.path.basename(m.path))[0]
    shapes = {"n_layer": c.n_layer, "n_embd": c.n_embd, "n_ff": c.n_ff, "n_head": c.n_head,
              "n_head_kv": c.n_head_kv, "head_dim": c.head_dim, "ssm_state": c.ssm_state,
              "ssm_k_heads": c.ssm_k_heads, "ssm_v_heads": c.ssm_v_heads, "vocab_size": c.vocab_size,
              "layers": "".join("D" if r else "A" for r in c.recurrent)}
    return ModelIdentity(f"{preset}-{quant}" if preset else stem, os.path.abspath(m.path), file_hash(m.path),
                         preset, quant, m.weight_bytes(), m.bytes_per_token(), shapes)

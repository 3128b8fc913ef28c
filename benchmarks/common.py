"""What the asv benchmarks share: the parameter axes and the skip rule for ISAs.

The axes are plain lists of strings and ints (asv identifies parameters by repr); append to
them, never reorder or rename, or the history of the existing combinations splits."""
from __future__ import annotations

import os

from harness import native

# synthetic model preset and thread count: the tiny preset keeps the suite quick; set
# HARNESS_ASV_PRESET=0.8b for the real shape (synthesized once per environment, slower)
PRESET = os.environ.get("HARNESS_ASV_PRESET", "tiny")
THREADS = int(os.environ.get("HARNESS_ASV_THREADS", "1"))

QUANTS = ["q4_k_m", "q8_0", "bf16"]
FDN_THRESHOLDS = [0, 512]          # 0: chunked delta-net for every u-batch; 512: fused up to 512 tokens
VOCAB_STRATEGIES = ["full"]        # grows when Session(vocab_strategy=...) lands
ISAS = ["scalar", "avx2", "avx512", "neon"]
WEIGHT_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "iq4_xs"]  # see harness.kernel_bench


def require_isa(isa: str) -> None:
    """asv skips a parameter combination whose setup raises NotImplementedError."""
    if isa not in native.cpu_features()["supported"]:
        raise NotImplementedError(f"this CPU or build cannot run the {isa} variant")

"""What the asv benchmarks share: the parameter axes and the skip rule for ISAs.

The axes are plain lists of strings and ints (asv identifies parameters by repr); append to
them, never reorder or rename, or the history of the existing combinations splits."""
from __future__ import annotations

import os

from harness import native

# asv runs this suite (from the checkout it is started in) against the package built at every commit
# of a range, so the imports take the layout of both sides of the move into rooms (harness.model,
# harness.engine, harness.measure): the new paths first, the old flat modules as the fallback, as
# asv's own benchmarks do for moved APIs. harness.engine.Session and harness.model.load_model are
# the same on both sides.
from harness.engine import Session  # noqa: E402,F401
from harness.model import load_model  # noqa: E402,F401

try:
    from harness.model.synth import synthesize  # noqa: F401
except ImportError:                                   # commits before the move
    from harness.synth import synthesize  # noqa: F401
try:
    from harness.measure import kernel_bench  # noqa: F401
except ImportError:                                   # commits before the move
    from harness import kernel_bench  # noqa: F401

# synthetic model preset and thread count: the tiny preset keeps the suite quick; set
# HARNESS_ASV_PRESET=0.8b for the real shape (synthesized once per environment, slower)
PRESET = os.environ.get("HARNESS_ASV_PRESET", "tiny")
THREADS = int(os.environ.get("HARNESS_ASV_THREADS", "1"))

QUANTS = ["q4_k_m", "q8_0", "bf16"]
FDN_THRESHOLDS = [0, 512]          # 0: chunked delta-net for every u-batch; 512: fused up to 512 tokens
VOCAB_STRATEGIES = ["full"]        # grows when Session(vocab_strategy=...) lands
ISAS = ["scalar", "avx2", "avx512", "neon"]
WEIGHT_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "iq4_xs", "mxfp4", "nvfp4", "q4_1", "q5_0",
                "q5_1", "iq4_nl", "q2_k", "q3_k", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s",
                "iq1_s", "iq1_m", "tq1_0", "tq2_0"]  # see harness.measure.kernel_bench


def require_isa(isa: str) -> None:
    """asv skips a parameter combination whose setup raises NotImplementedError."""
    if isa not in native.cpu_features()["supported"]:
        raise NotImplementedError(f"this CPU or build cannot run the {isa} variant")


# what a pp and a tg benchmark time, and their teardown (bench_user_models; bench_engine keeps its own
# copies: asv versions a benchmark by its source, and new source would split its history)

def prefill_once(session, tokens) -> None:
    session.reset()
    session.prefill(tokens, all_logits=False)


def generate_once(session, first: int, n: int) -> None:
    session.reset()
    tok = first
    # as harness bench times tg; commits before decode_top1 existed take the argmax in numpy
    step = getattr(session, "decode_top1", None) or (lambda t: int(session.decode(t).argmax()))
    for _ in range(n):
        tok = step(tok)


def close_engine(bench) -> None:
    """asv calls teardown also when setup raised NotImplementedError: close what setup opened."""
    for name in ("session", "model"):
        obj = getattr(bench, name, None)
        if obj is not None:
            obj.close()

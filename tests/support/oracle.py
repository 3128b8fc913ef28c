"""Judging logits against the oracle files (docs/qwen35.md, Oracle agreement)."""
import numpy as np

from harness.engine.session import Session


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def within_llama_spread(per_pos: np.ndarray, logits, qtype: str, seq: str) -> bool:
    """The oracle's relative yardstick: rms and median of our per-position max error within 1.5x of
    llama.cpp's own prefill-vs-decode spread on the file, the worst position within 3x."""
    own = np.abs(logits[f"llama_{qtype}_prefill_{seq}"] - logits[f"llama_{qtype}_decode_{seq}"]).max(axis=1)
    return (rms(per_pos) <= 1.5 * rms(own) and float(np.median(per_pos)) <= 1.5 * float(np.median(own))
            and float(per_pos.max()) <= 3 * float(own.max()))


def run_tokens(m, tokens, mode: str, **session_kw) -> np.ndarray:
    """Logits of every position: one prefill of all tokens, or one decode step per token."""
    with Session(m, ctx=128, **session_kw) as s:
        if mode == "prefill":
            return s.prefill(tokens)
        return np.stack([s.decode(int(t)) for t in tokens])

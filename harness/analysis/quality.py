"""Quality of a configuration against a reference, over the same token sequence: the measures of
llama.cpp's `llama-perplexity --kl-divergence` that apply to logits.

Every function takes logits rows [n_positions, n_vocab] (reference first). A strategy that leaves
entries at -inf has no full distribution there: KL(P_ref || P_test) is infinite as soon as the test
misses an id the reference gives mass to, so KL is reported only over positions whose test row is
complete (kl_positions says how many; NaN when none), and the max abs logit error only over the
entries the test computed."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Rows of logits -> log-probabilities in float64 (-inf stays -inf)."""
    x = np.asarray(logits, dtype=np.float64)
    mx = np.max(x, axis=-1, keepdims=True)
    z = x - mx
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def top1_agreement(ref: np.ndarray, test: np.ndarray) -> float:
    """Share of positions where the greedy ids agree."""
    return float(np.mean(np.argmax(ref, axis=-1) == np.argmax(test, axis=-1)))


def topk_ids(logits: np.ndarray, k: int) -> np.ndarray:
    """The k largest ids per row (unordered); -inf entries never count: rows with fewer than k
    finite entries get -1 in the missing slots."""
    k = min(k, logits.shape[-1])
    idx = np.argpartition(-logits, k - 1, axis=-1)[:, :k]
    vals = np.take_along_axis(logits, idx, axis=-1)
    return np.where(np.isfinite(vals), idx, -1)


def topk_recall_rows(ref: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    """Per position: the share of the reference's top-k ids that are in the test's top-k."""
    a, b = topk_ids(ref, k), topk_ids(test, k)
    return np.array([len(set(x[x >= 0]) & set(y[y >= 0])) / k for x, y in zip(a, b)])


def topk_recall(ref: np.ndarray, test: np.ndarray, k: int) -> float:
    return float(np.mean(topk_recall_rows(ref, test, k)))


def kl_rows(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """KL(P_ref || P_test) per position, in nats; NaN where the test row is incomplete."""
    complete = np.isfinite(test).all(axis=-1)
    out = np.full(ref.shape[0], np.nan)
    if complete.any():
        lp, lq = log_softmax(ref[complete]), log_softmax(test[complete])
        p = np.exp(lp)
        out[complete] = np.maximum(np.sum(p * (lp - lq), axis=-1), 0.0)   # >= 0 up to rounding
    return out


def max_abs_err(ref: np.ndarray, test: np.ndarray) -> float:
    """Largest |test - ref| over the entries the test computed (NaN if none)."""
    fin = np.isfinite(test)
    if not fin.any():
        return float("nan")
    return float(np.max(np.abs(test[fin].astype(np.float64) - ref[fin])))


@dataclass
class QualityMeasures:
    n_positions: int
    top1_agreement: float
    topk_recall: float
    k: int
    kl_mean: float          # over kl_positions positions (NaN when none)
    kl_max: float
    kl_positions: int
    max_abs_err: float


class QualityAccumulator:
    """The measures over a long sequence fed in blocks of positions (so that two [n, V] logits
    arrays never have to exist at once)."""

    def __init__(self, k: int = 10):
        if k < 1:
            raise ValueError("k must be >= 1")
        self.k = k
        self.n = 0
        self.top1 = 0
        self.recall = 0.0
        self.kl: list[float] = []
        self.err = float("nan")

    def add(self, ref: np.ndarray, test: np.ndarray) -> None:
        ref, test = np.atleast_2d(ref), np.atleast_2d(test)
        if ref.shape != test.shape:
            raise ValueError(f"reference {ref.shape} and test {test.shape} logits differ in shape")
        self.n += ref.shape[0]
        self.top1 += int(np.sum(np.argmax(ref, -1) == np.argmax(test, -1)))
        self.recall += float(np.sum(topk_recall_rows(ref, test, self.k)))
        kl = kl_rows(ref, test)
        self.kl += [float(x) for x in kl[np.isfinite(kl)]]
        e = max_abs_err(ref, test)
        if not math.isnan(e):
            self.err = e if math.isnan(self.err) else max(self.err, e)

    def result(self) -> QualityMeasures:
        if self.n == 0:
            raise ValueError("no positions measured")
        kl = np.array(self.kl)
        return QualityMeasures(
            n_positions=self.n, top1_agreement=self.top1 / self.n, topk_recall=self.recall / self.n, k=self.k,
            kl_mean=float(kl.mean()) if kl.size else float("nan"),
            kl_max=float(kl.max()) if kl.size else float("nan"), kl_positions=int(kl.size),
            max_abs_err=self.err)


def measure(ref: np.ndarray, test: np.ndarray, k: int = 10) -> QualityMeasures:
    acc = QualityAccumulator(k)
    acc.add(ref, test)
    return acc.result()


QUALITY_COLUMNS = ["config_id", "model", "quant", "vocab_strategy", "n_positions", "top1_agreement",
                   "topk_recall", "k", "kl_mean", "kl_max", "max_abs_err", "kl_positions", "reference",
                   "tokens"]


def quality_row(model: str, quant: str, vocab_strategy: str, m: QualityMeasures, config_id: str = "",
                reference: str = "", tokens: str = "") -> dict:
    """One row of DIR/quality.csv (the results-store contract), plus kl_positions (how many
    positions KL covers), reference (its display name) and tokens (how the sequence was made)."""
    d = asdict(m)
    row = {"config_id": config_id, "model": model, "quant": quant, "vocab_strategy": vocab_strategy,
           **{c: d[c] for c in ("n_positions", "top1_agreement", "topk_recall", "k", "kl_mean", "kl_max",
                                "max_abs_err", "kl_positions")},
           "reference": reference, "tokens": tokens}
    return {c: row[c] for c in QUALITY_COLUMNS}

"""Statistics of a speed comparison: the ratio NEW/BASE of two sets of repeated throughput
measurements (tokens/s, larger is better), a bootstrap confidence interval for it, and the verdict.

Pure functions of their arguments; the bootstrap uses its own seeded generator, so the same samples
always give the same interval.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import UsageError

FASTER = "faster"
SLOWER = "slower"
NO_CHANGE = "no significant change"
TOO_FEW = "too few samples"
VERDICTS = (FASTER, SLOWER, NO_CHANGE, TOO_FEW)

MIN_SAMPLES = 2          # per side; one sample says nothing about the noise


@dataclass(frozen=True)
class RatioCI:
    """ratio = median(new) / median(base); [lo, hi] its bootstrap interval at `level`."""
    ratio: float
    lo: float
    hi: float
    level: float
    n_base: int
    n_new: int


@dataclass(frozen=True)
class Judgement:
    ci: RatioCI
    verdict: str
    threshold: float


def parse_threshold(text: str | float) -> float:
    """'5%' or '5' -> 0.05: the relative change below which a difference does not count."""
    s = str(text).strip()
    body = s[:-1].strip() if s.endswith("%") else s
    try:
        pct = float(body)
    except ValueError:
        raise UsageError(f"threshold must be a percentage such as 5%, got {s!r}") from None
    if not (0 <= pct < 100) or math.isnan(pct):
        raise UsageError(f"threshold must be between 0% and 100%, got {s!r}")
    return pct / 100


def clean_samples(values: Sequence[float]) -> np.ndarray:
    """The finite, positive samples as float64 (a throughput of 0 or NaN is not a measurement)."""
    x = np.asarray(list(values), dtype=np.float64).ravel()
    return x[np.isfinite(x) & (x > 0)]


def bootstrap_ratio(base: Sequence[float], new: Sequence[float], *, level: float = 0.95,
                    n_boot: int = 4000, seed: int = 0) -> RatioCI:
    """Percentile bootstrap of median(new) / median(base): each side is resampled with
    replacement on its own (the repeats are independent runs, not pairs)."""
    b, n = clean_samples(base), clean_samples(new)
    if len(b) == 0 or len(n) == 0:
        raise UsageError("a comparison needs at least one positive sample on each side")
    ratio = float(np.median(n) / np.median(b))
    if len(b) < MIN_SAMPLES or len(n) < MIN_SAMPLES:
        return RatioCI(ratio, math.nan, math.nan, level, len(b), len(n))
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, len(b), (n_boot, len(b)))], axis=1)
    mn = np.median(n[rng.integers(0, len(n), (n_boot, len(n)))], axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(mn / mb, [tail, 1 - tail])
    # the point estimate lies inside its interval even when the bootstrap is coarse (2-3 repeats)
    return RatioCI(ratio, float(min(lo, ratio)), float(max(hi, ratio)), level, len(b), len(n))


def verdict(ci: RatioCI, threshold: float) -> str:
    """Slower / faster only when the whole interval lies on one side of 1 (significant) and the
    ratio itself moved by more than the threshold (large enough to matter)."""
    if math.isnan(ci.lo):
        return TOO_FEW
    if ci.hi < 1 and ci.ratio < 1 - threshold:
        return SLOWER
    if ci.lo > 1 and ci.ratio > 1 + threshold:
        return FASTER
    return NO_CHANGE


def judge(base: Sequence[float], new: Sequence[float], threshold: float, *, level: float = 0.95,
          seed: int = 0) -> Judgement:
    ci = bootstrap_ratio(base, new, level=level, seed=seed)
    return Judgement(ci, verdict(ci, threshold), threshold)


def spread(values: Sequence[float]) -> float:
    """Relative spread stddev / median of one set of samples (0 for a single sample)."""
    x = clean_samples(values)
    if len(x) < 2:
        return 0.0
    return float(np.std(x, ddof=1) / np.median(x))


def paired_ratio_ci(base: Sequence[float], new: Sequence[float], *, level: float = 0.95,
                    n_boot: int = 4000, seed: int = 0) -> RatioCI:
    """Percentile bootstrap of the median of the per-round ratios new[i] / base[i], for measurements
    taken in pairs (round i measured both sides one after the other, so a slow drift of the machine
    cancels out of each ratio). Whole rounds are resampled; a round with a sample that is not a
    positive finite number is dropped. Fewer than MIN_SAMPLES rounds give a NaN interval."""
    b = np.asarray(list(base), dtype=np.float64).ravel()
    n = np.asarray(list(new), dtype=np.float64).ravel()
    if len(b) != len(n):
        raise UsageError(f"paired samples need as many on each side, got {len(b)} and {len(n)}")
    keep = np.isfinite(b) & np.isfinite(n) & (b > 0) & (n > 0)
    r = n[keep] / b[keep]
    if len(r) == 0:
        raise UsageError("a paired comparison needs at least one round with positive samples on both sides")
    ratio = float(np.median(r))
    if len(r) < MIN_SAMPLES:
        return RatioCI(ratio, math.nan, math.nan, level, len(r), len(r))
    rng = np.random.default_rng(seed)
    meds = np.median(r[rng.integers(0, len(r), (n_boot, len(r)))], axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(meds, [tail, 1 - tail])
    return RatioCI(ratio, float(min(lo, ratio)), float(max(hi, ratio)), level, len(r), len(r))

"""Verdicts from independent runs: BASE and NEW each measured in one or more separate runs (sweeps,
bench invocations, a baseline saved from several runs), judged against the spread between runs.

The repetitions inside one run say little about the next run: on a VM a whole run moves by far more
than its repetitions scatter (the address layout a process draws, the neighbours, the bandwidth of
the hour). So each run counts as one figure (its median), and the ratio NEW/BASE is judged on the
logs of those figures with a two-sample t interval:

    d = mean(ln new_runs) - mean(ln base_runs),  s^2 = pooled variance of the logs around each side's mean
    interval = exp(d -+ t(1 - a/2, nb + nn - 2) * s * sqrt(1/nb + 1/nn))

With one run per side there is no between-run spread to pool; a noise record of this machine (the
spread of ln(run2 / run1) over A/A rounds, `harness noise`) stands in for it when there is one, with
its own degrees of freedom. Without either, the verdict is "cannot judge": the figures are shown, not
judged. SLOWER / FASTER and the minimal detectable effect follow harness.analysis.paired.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from harness.analysis.paired import POWER, classify, PairedEstimate, t_quantile

CANNOT_JUDGE = "cannot judge"


@dataclass(frozen=True)
class RunsJudgement:
    ratio: float          # geometric mean of NEW's runs over BASE's
    lo: float
    hi: float
    level: float
    verdict: str
    mde: float            # the slowdown these runs would catch 9 times in 10 (nan when unknown)
    basis: str            # what the spread came from
    n_base: int
    n_new: int


def _logs(values: Sequence[float]) -> list[float]:
    return [math.log(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]


def judge_runs(base_runs: Sequence[float], new_runs: Sequence[float], threshold: float, level: float = 0.95,
               noise_sd_log: float | None = None, noise_rounds: int = 0, noise_basis: str = "") -> RunsJudgement:
    """One configuration's verdict from each side's per-run figures (module docstring)."""
    lb, ln = _logs(base_runs), _logs(new_runs)
    nb, nn = len(lb), len(ln)
    if not nb or not nn:
        return RunsJudgement(math.nan, math.nan, math.nan, level, CANNOT_JUDGE, math.nan, "no runs", nb, nn)
    d = statistics.fmean(ln) - statistics.fmean(lb)
    df = nb + nn - 2
    if df >= 1:
        ss = sum((x - statistics.fmean(lb)) ** 2 for x in lb) + sum((x - statistics.fmean(ln)) ** 2 for x in ln)
        s = math.sqrt(ss / df)
        basis = f"between-run spread of {nb} + {nn} runs"
    elif noise_sd_log is not None and math.isfinite(noise_sd_log) and noise_rounds >= 2:
        s, df = noise_sd_log / math.sqrt(2), noise_rounds - 1
        basis = noise_basis or f"noise record ({noise_rounds} A/A rounds)"
    else:
        return RunsJudgement(math.exp(d), math.nan, math.nan, level, CANNOT_JUDGE, math.nan,
                             "run-to-run spread unknown (one run per side)", nb, nn)
    se = s * math.sqrt(1 / nb + 1 / nn)
    t = t_quantile(1 - (1 - level) / 2, df)
    est = PairedEstimate(math.exp(d), math.exp(d - t * se), math.exp(d + t * se), level, nb + nn, s)
    need = max(t * se, -math.log(1 - threshold)) + t_quantile(POWER, df) * se
    return RunsJudgement(est.ratio, est.lo, est.hi, level, classify(est, threshold), 1 - math.exp(-need), basis,
                         nb, nn)

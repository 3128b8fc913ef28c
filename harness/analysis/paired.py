"""Verdicts from paired rounds: two builds (BASE, HEAD) measured one after the other in each round,
judged on the per-round ratios HEAD/BASE, and the noise floor of the machine that goes with them.

Why pairs. Two runs of one build on a busy or drifting VM differ by far more than the repetitions
inside one run suggest; a slow drift of the machine cancels out of a ratio of two measurements taken
seconds apart, and the spread of those ratios over rounds is the run-to-run noise the verdict has to
beat. The per-round log ratios d_i = ln(head_i / base_i) are judged with the Hodges-Lehmann estimate
and the exact Wilcoxon signed-rank interval (harness.analysis.signed_rank): an outlier round (a
measurement process that ran slow for its whole life, common on VMs) moves neither much, where it
would blow up a t interval. Several tests judged at once share the false-alarm budget: each gets
level 1 - (1 - level) / k (Bonferroni), so the chance that any of k unchanged tests is called slower
stays below (1 - level) / 2.

A test is SLOWER when its interval lies wholly below 1 and the ratio fell by more than the threshold
(significant and large enough to matter); FASTER the mirror image. The minimal detectable effect
(MDE) is the smallest slowdown that rule catches 9 times in 10, from the normal approximation with
the robust spread s (1.4826 * MAD, times sqrt(pi/3) for the rank test's efficiency):

    mde = max(t(1 - a/2) * se, -ln(1 - threshold)) + t(power) * se,   se = s / sqrt(n)

and nan when n rounds cannot give an interval at that level at all (2 / 2^n > a).

Disturbed rounds. A measurement process on a shared VM now and then runs slow for its whole life
(on this project's 2-vCPU VM a tiny-model process decoded at ~1700 t/s instead of ~2700 about one
time in eight, and in bad spells nearly one in two; milder cases 3-6% slow), and such slowdowns only
ever go one way. They hit either side at random, but not one round at a time: a mirrored block
(A B | B A) puts two processes of one side next to each other, so one disturbance a few seconds long
slows that side in two rounds at once, which the signed-rank test (it assumes independent rounds)
reads as evidence. So before the ratios are judged, a round is left out when either side's figure
is a slow outlier of its own revision's figures: more than 5 sd below its revision's centre
(slow_outliers). Each revision has its own centre, so a real slowdown of HEAD (which moves all its
figures) is not left out; the sd is one yardstick for both revisions, pooled from both, so the rule
treats both sides alike in every run and not only on average. (A spread read from each revision
alone was not enough: on a VM that flips between a fast and a slow state for seconds at a time, one
revision's faster half can hold both states by chance, its spread balloons and none of its slow
figures are flagged, while the other revision's are; the rounds left out are then those where one
side was slow, the rest lean the other way, and an A/A run was called SLOWER (0.77, 5 of 12 rounds
left out, on a Zen 3 VM). Simulated, that per-revision rule called up to 40% of A/A runs on such a
machine slower or faster; the pooled rule stays near the 5% the level promises:
tests/measure/test_ab.py.) At most a third of the rounds is left out, and never so many that too few
remain for an interval at the test's level: when more are flagged, only the deepest go (undisturbed).
Slow figures that common are partly a state the machine is in, not rare disturbances: an A/A run of
12 rounds whose processes ran either at full speed (within 0.1%) or 2-7% slower had 8 rounds flagged
and no interval left; simulated, a third of such runs ended without one and a planted 5% slowdown
was caught in 56-67% of them, with the cap in none and 91-96% (tests/measure/test_ab.py). The
verdict says how many rounds were left out.

Pure functions; no randomness.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.analysis.signed_rank import RANK_EFFICIENCY, hodges_lehmann, robust_sd
from harness.analysis.stats import FASTER, NO_CHANGE, SLOWER, TOO_FEW
from harness.errors import UsageError

POWER = 0.9          # the MDE is the effect caught 9 times in 10
LEVEL = 0.95


def t_two_sided(t: float, df: int) -> float:
    """A(t|df) = P(|T| <= t) for Student's t with integer df >= 1, t >= 0: the finite series of
    Abramowitz & Stegun 26.7.3 (df odd) and 26.7.4 (df even), with theta = atan(t / sqrt(df))."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:                          # 26.7.3: (2/pi)(theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 ...))
        total, term = 0.0, 1.0
        for j in range(1, (df - 1) // 2 + 1):
            total += term
            term *= (2 * j) / (2 * j + 1) * c2
        return 2 / math.pi * (theta + (s * math.cos(theta) * total if df > 1 else 0.0))
    total, term = 0.0, 1.0              # 26.7.4: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 ...)
    for j in range(1, df // 2 + 1):
        total += term
        term *= (2 * j - 1) / (2 * j) * c2
    return s * total


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with integer df >= 1, by bisection on t_two_sided (exact to
    1e-9, no scipy needed)."""
    if not 0 < p < 1:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    want = 2 * p - 1                    # P(|T| <= t) for the upper quantile t
    lo, hi = 0.0, 1.0
    while t_two_sided(hi, df) < want:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_two_sided(mid, df) < want:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return (lo + hi) / 2


def family_level(level: float, k: int) -> float:
    """The level of each of k intervals so that all k hold together at `level` (Bonferroni)."""
    return 1 - (1 - level) / max(1, k)


def log_ratios(base: Sequence[float], head: Sequence[float]) -> list[float]:
    """ln(head_i / base_i) for the rounds where both figures are positive and finite."""
    if len(base) != len(head):
        raise UsageError(f"paired rounds need as many figures on each side, got {len(base)} and {len(head)}")
    return [math.log(h / b) for b, h in zip(base, head)
            if math.isfinite(b) and math.isfinite(h) and b > 0 and h > 0]


OUTLIER_Z = 5.0               # the cut: a figure 5 sd below its revision's centre is a disturbed process
UPPER_HALF_MEAN = 0.7979      # a normal's upper half: its mean lies sqrt(2 / pi) sd above the centre
UPPER_HALF_SD = 0.6028        # and its standard deviation is sqrt(1 - 2 / pi) sd (the half-normal's)


def _finite_logs(values: Sequence[float]) -> list[float]:
    return [math.log(v) if math.isfinite(v) and v > 0 else math.nan for v in values]


def slow_zscores(base: Sequence[float], head: Sequence[float]) -> tuple[list[float], list[float]]:
    """The z-score of each figure (tokens/s) of each revision on the slow side of its own revision's
    figures, on the logs, with each revision's centre and one spread for both read from the faster
    half of each revision's figures alone: the slow processes of a bad spell on a VM can be a third
    or more of them, and then the median and MAD of all figures sit among the slow ones, while the
    faster half stays clean. For normal figures the faster half is a half-normal distribution, so
    with u the faster half of a revision's logs

        sd = sqrt(sum over both revisions of (u - mean u)^2 / (count - 2)) / 0.6028,
        centre = mean(u) - 0.7979 sd,  z = (ln x - centre) / sd

    (the mean and SD, not the median and MAD: the faster half of 8-16 rounds is 4-8 values, too few
    for a MAD; pooled over both revisions: module docstring). +inf (never an outlier) for a figure
    that is not a positive number, and for all figures when a revision has fewer than 4 or the
    spread is zero."""
    logs = (_finite_logs(base), _finite_logs(head))
    never = [math.inf] * len(base), [math.inf] * len(head)
    uppers = [sorted(x for x in side if math.isfinite(x)) for side in logs]
    if min(len(u) for u in uppers) < 4:
        return never
    uppers = [u[len(u) // 2:] for u in uppers]
    means = [statistics.fmean(u) for u in uppers]
    squares = sum((x - m) ** 2 for u, m in zip(uppers, means) for x in u)
    sd = math.sqrt(squares / (sum(len(u) for u in uppers) - 2)) / UPPER_HALF_SD
    if not sd > 0:
        return never
    zs = []
    for side, m in zip(logs, means):
        centre = m - UPPER_HALF_MEAN * sd
        zs.append([(x - centre) / sd if math.isfinite(x) else math.inf for x in side])
    return zs[0], zs[1]


def slow_outliers(base: Sequence[float], head: Sequence[float], z: float = OUTLIER_Z) -> tuple[list[bool], list[bool]]:
    """For each figure of each revision: is it an outlier on the slow side of its own revision's
    figures, its z-score (slow_zscores) below -z? At the cut z = 5 about 0.26% of the figures are
    flagged at 8 rounds, 0.08% at 12 and 0.04% at 16 when nothing is disturbed (normal noise,
    simulated)."""
    zb, zh = slow_zscores(base, head)
    return [x < -z for x in zb], [x < -z for x in zh]


MAX_DISTURBED_SHARE = 1 / 3   # at most this share of the rounds is left out, the deepest first


def rounds_for_interval(level: float) -> int:
    """The fewest rounds whose signed-rank interval can reach `level`: 2 / 2^n <= 1 - level."""
    n = 1
    while 2 / 2 ** n > 1 - level:
        n += 1
    return n


def undisturbed(base: Sequence[float], head: Sequence[float], level: float = LEVEL
                ) -> tuple[list[float], list[float], list[int]]:
    """The rounds where neither side is a slow outlier of its own revision's figures (slow_outliers),
    as (base, head, indices of the rounds left out). At most a third of the rounds go, and never so
    many that too few are left for an interval at `level`: when more are flagged, only the deepest
    (the lowest z of either side) go. Slow figures that common are partly a state the machine is
    often in (a VM whose processes run either at full speed, within 0.1%, or 2-7% slower) rather than
    rare disturbances; leaving them all out had left an A/A run of 12 rounds with 4 and no interval.
    The ones kept are noise on both sides alike, which the signed-rank interval takes in."""
    if len(base) != len(head):
        raise UsageError(f"paired rounds need as many figures on each side, got {len(base)} and {len(head)}")
    depth = [min(b, h) for b, h in zip(*slow_zscores(base, head))]
    flagged = sorted((d, i) for i, d in enumerate(depth) if d < -OUTLIER_Z)
    allowed = min(int(MAX_DISTURBED_SHARE * len(base)), len(base) - rounds_for_interval(level))
    out = sorted(i for _, i in flagged[:max(0, allowed)])
    dropped = set(out)
    keep = [i for i in range(len(base)) if i not in dropped]
    return [base[i] for i in keep], [head[i] for i in keep], out


@dataclass(frozen=True)
class PairedEstimate:
    """The Hodges-Lehmann ratio HEAD/BASE over the undisturbed rounds and its interval at `level`."""
    ratio: float
    lo: float
    hi: float
    level: float
    rounds: int
    sd_log: float          # robust spread of the per-round log ratios: 1.4826 * MAD (nan below 2 rounds)
    left_out: tuple[int, ...] = ()   # the disturbed rounds (indices) the estimate does not use

    @property
    def se_log(self) -> float:
        return self.sd_log / math.sqrt(self.rounds) if self.rounds else math.nan


def paired_estimate(base: Sequence[float], head: Sequence[float], level: float = LEVEL,
                    leave_out_disturbed: bool = True) -> PairedEstimate:
    """The Hodges-Lehmann ratio and its signed-rank interval (nan where the rounds are too few), over
    the undisturbed rounds (module docstring) unless leave_out_disturbed is False."""
    out: list[int] = []
    if leave_out_disturbed:
        base, head, out = undisturbed(base, head, level)
    d = log_ratios(base, head)
    n = len(d)
    if n == 0:
        return PairedEstimate(math.nan, math.nan, math.nan, level, 0, math.nan, tuple(out))
    est, lo, hi = hodges_lehmann(d, level)
    return PairedEstimate(math.exp(est), math.exp(lo), math.exp(hi), level, n, robust_sd(d), tuple(out))


def classify(est: PairedEstimate, threshold: float) -> str:
    """slower / faster / no significant change / too few samples (see the module docstring)."""
    if math.isnan(est.lo):
        return TOO_FEW
    if est.hi < 1 and est.ratio < 1 - threshold:
        return SLOWER
    if est.lo > 1 and est.ratio > 1 + threshold:
        return FASTER
    return NO_CHANGE


def mde(sd_log: float, rounds: int, level: float = LEVEL, threshold: float = 0.0, power: float = POWER) -> float:
    """The smallest slowdown (a fraction: 0.021 = 2.1%) that `rounds` paired rounds with this robust
    spread of log ratios call SLOWER with probability `power` (module docstring); nan when unknown
    or when so few rounds cannot reach the level."""
    if rounds < max(2, rounds_for_interval(level)) or not math.isfinite(sd_log):
        return math.nan
    se = sd_log * RANK_EFFICIENCY / math.sqrt(rounds)
    need = max(t_quantile(1 - (1 - level) / 2, rounds - 1) * se, -math.log(1 - threshold))
    return 1 - math.exp(-(need + t_quantile(power, rounds - 1) * se))


def pct(x: float) -> str:
    """0.0213 -> '2.1%' (one decimal); nan -> '?'."""
    return "?" if not math.isfinite(x) else f"{100 * x:.1f}%"


def verdict_text(verdict: str, mde_fraction: float) -> str:
    """The verdict as printed beside a figure: 'no significant change (could have detected >= 2.1%)'."""
    if verdict == NO_CHANGE:
        return f"{NO_CHANGE} (could have detected >= {pct(mde_fraction)})"
    if verdict in (SLOWER, FASTER):
        return verdict.upper()
    return verdict


@dataclass
class PairedVerdict:
    """One test of an A/B comparison: HEAD against BASE over paired rounds.

    test: the llama-bench-style test name (pp512, tg128); model: what was measured (a preset/quant
    label or a file name); base_ts / head_ts: the medians of each side's per-round figures (tokens/s);
    ratio, lo, hi: the Hodges-Lehmann ratio HEAD/BASE and its interval at `level` (the per-test
    level after the Bonferroni split), over `rounds` undisturbed rounds (left_out: the others);
    mde: the minimal detectable slowdown at these rounds."""
    test: str
    model: str
    threads: int
    base: str                       # labels: the revision as given and its short hash
    head: str
    base_ts: float
    head_ts: float
    ratio: float
    lo: float
    hi: float
    level: float
    rounds: int
    threshold: float
    mde: float
    verdict: str
    base_samples: list[float] = field(default_factory=list)
    head_samples: list[float] = field(default_factory=list)
    left_out: list[int] = field(default_factory=list)   # disturbed rounds (indices into the samples)

    @property
    def name(self) -> str:
        return f"{self.model} {self.test}"

    @property
    def text(self) -> str:
        return verdict_text(self.verdict, self.mde)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["name"] = self.name
        d["verdict_text"] = self.text
        return d


def judge_paired(test: str, model: str, threads: int, base: str, head: str, base_values: Sequence[float],
                 head_values: Sequence[float], threshold: float, level: float = LEVEL) -> PairedVerdict:
    """The verdict of one test from its rounds; `level` is the per-test level (family_level)."""
    est = paired_estimate(base_values, head_values, level)
    med = (lambda xs: statistics.median(xs) if xs else math.nan)
    return PairedVerdict(test, model, threads, base, head, med(list(base_values)), med(list(head_values)),
                         est.ratio, est.lo, est.hi, level, est.rounds, threshold,
                         mde(est.sd_log, est.rounds, level, threshold), classify(est, threshold),
                         list(base_values), list(head_values), list(est.left_out))


@dataclass(frozen=True)
class NoiseFloor:
    """The run-to-run noise of one test on this machine, from A/A rounds (the same build twice per
    round): the spread of the per-round log ratios, and what it lets a paired comparison detect."""
    test: str
    model: str
    threads: int
    rounds: int
    sd_log: float                  # robust spread (1.4826 * MAD) of ln(second / first) over rounds
    median_ts: float

    @property
    def run_spread(self) -> float:
        """The spread of one run's figure (sd_log / sqrt 2, since a ratio holds two runs' noise)."""
        return self.sd_log / math.sqrt(2)

    def mde(self, rounds: int, level: float = LEVEL, threshold: float = 0.0) -> float:
        return mde(self.sd_log, rounds, level, threshold)


def noise_floor(test: str, model: str, threads: int, first: Sequence[float], second: Sequence[float]) -> NoiseFloor:
    d = log_ratios(first, second)
    sd = robust_sd(d)
    vals = [v for v in (*first, *second) if math.isfinite(v) and v > 0]
    return NoiseFloor(test, model, threads, len(d), sd, statistics.median(vals) if vals else math.nan)

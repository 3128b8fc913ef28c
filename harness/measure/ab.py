"""`harness ab` and `harness noise`: revisions measured against each other in one sitting, interleaved.

Every measurement is a fresh process running one revision's own `harness bench` on one model file
(warm-up and timed repetitions inside; its figure is the fastest repetition, or their median with
statistic "median": see Workload), so a round
holds one figure per revision and test, taken seconds apart. Rounds come in blocks whose order is
drawn at random and then mirrored (A B | B A, or for three revisions C A B | B A C), so neither a
drift of the machine nor "always second" favours one side. The first rounds of an A/B run measure
BASE against itself (A/A): the run-to-run noise of this machine for each test, printed beside the
verdicts. Verdicts come from the paired per-round ratios (harness.analysis.paired). Each process
draws its own address layout (ASLR) unless the matched layout is asked for (bench_process).

Stopping: after min_rounds, the run stops at the end of a block once every test is settled at a
stricter interim level (1 - (1 - level) / 5): either significantly slower by more than the
threshold, or with its whole interval above 1 - threshold (no slowdown of that size); else it goes
on until max_rounds or the time budget. The final verdicts use `level`, split over the tests.

`noise` is the same loop with one revision measured twice per round: the current code, as installed.
The measured spread is kept per machine, model and test (a noise record in the cache) so `compare`
can judge single runs against it.
"""
from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis.paired import (LEVEL, NoiseFloor, PairedVerdict, family_level, judge_paired, noise_floor,
                                     paired_estimate)
from harness.analysis.stats import SLOWER
from harness.errors import HarnessError, UsageError
from harness.measure.builds import Revision

INTERIM_SHARE = 5           # interim looks use level 1 - (1 - level) / 5
MEASURE_TIMEOUT = 900       # seconds for one measurement process


class MeasurementError(HarnessError):
    """A revision's measurement process failed or printed no usable figure."""


@dataclass(frozen=True)
class Workload:
    """One model file and the lengths to measure on it; a measurement gives one figure per test."""
    model: str                  # GGUF path
    label: str                  # what tables call it: "tiny q4_k_m", a file name
    n_prompt: int = 64
    n_gen: int = 16
    threads: int | None = None
    repetitions: int = 3
    # what one process's repetitions come to: "best" (the highest tokens/s, i.e. the shortest time)
    # or "median". Best, because the noise of a shared VM is one-sided: another tenant or the host
    # only ever takes time away, in bursts shorter than a process, so the fastest repetition is the
    # one least disturbed and a change in the code moves it as much as it moves the work (the minimum
    # estimator of Chen & Revels, "Robust benchmarking in noisy environments", 2016). Measured on this
    # project's 2-vCPU VM (0.8b q4_k_m tg16 -t 1 -r 5, 8 processes): the spread of the medians between
    # processes was 1.8%, that of the best repetitions 0.5%.
    statistic: str = "best"

    def bench_args(self) -> list[str]:
        args = [self.model, "-p", str(self.n_prompt), "-n", str(self.n_gen), "-r", str(self.repetitions)]
        if self.threads:
            args += ["-t", str(self.threads)]
        return args + ["-o", "json"]

    @property
    def tests(self) -> list[str]:
        return [t for t, n in ((f"pp{self.n_prompt}", self.n_prompt), (f"tg{self.n_gen}", self.n_gen)) if n]


STATISTICS = {"best": max, "median": statistics.median}


def figures(stdout: str, statistic: str = "best") -> dict[str, float]:
    """{test: tokens/s} from `harness bench -o json` (llama-bench-style records): each record's
    samples_ts brought to one figure by `statistic` (STATISTICS: the fastest or the median; avg_ts
    where there are no samples), named ppN / tgN as llama-bench names them."""
    if statistic not in STATISTICS:
        raise UsageError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    text = stdout.strip()
    try:
        data = json.loads(text)
    except ValueError:                      # something printed before the JSON: try its last line
        try:
            data = json.loads(text.splitlines()[-1])
        except (ValueError, IndexError):
            raise MeasurementError(f"the measurement printed no JSON: {text[-120:]!r}") from None
    out: dict[str, float] = {}
    for rec in data if isinstance(data, list) else [data]:
        if not isinstance(rec, dict):
            continue
        p, g = int(rec.get("n_prompt") or 0), int(rec.get("n_gen") or 0)
        name = f"pp{p}" if p and not g else f"tg{g}" if g and not p else f"pp{p}+tg{g}"
        s = rec.get("samples_ts")
        value = STATISTICS[statistic](s) if isinstance(s, list) and s else rec.get("avg_ts")
        if isinstance(value, (int, float)) and value > 0:
            out[name] = float(value)
    if not out:
        raise MeasurementError("the measurement's JSON holds no positive tokens/s")
    return out


LAYOUTS = ("matched", "random")
ADDR_NO_RANDOMIZE = 0x0040000      # personality(2) flag: what `setarch -R` sets
PAD_VARIABLE = "HARNESS_LAYOUT_PAD"


def layout_pad(seed: int, round_no: int) -> int:
    """The environment padding (bytes) of one round under the matched layout: it moves the stack and
    what follows it, drawn afresh each round, the same for every revision in the round."""
    return random.Random(f"{seed}:{round_no}").randrange(0, 16384, 16)


def _no_aslr() -> None:             # runs in the child between fork and exec
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.personality(ADDR_NO_RANDOMIZE)


def bench_process(workload: Workload, tree: Path | None = None, pad: int | None = None) -> dict[str, float]:
    """One fresh `python -m harness.cli bench ... -o json`: of the code in `tree` (its own directory
    on PYTHONPATH and as working directory), or of the harness this process runs (tree None).

    pad None: the address layout is random (ASLR), a fresh draw per process. pad N: ASLR off and an
    environment of N extra bytes; two processes with the same pad get the same layout wherever
    their code does not differ, so the two sides of a round are measured on one layout. (On this
    project's 2-vCPU VM one tiny-model decode figure moved 1260..2090 t/s between processes, and
    2060..2105 in eight processes with ASLR off; but two builds in an ab run with ASLR off still
    scattered as widely, so random is the default: what varies there is not only the layout.)"""
    cmd = [sys.executable, "-m", "harness.cli", "bench", *workload.bench_args()]
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    env.pop(PAD_VARIABLE, None)
    env.setdefault("HARNESS_STATE_SAMPLE_SECONDS", "0.1")   # ab checked the machine itself; keep processes short
    if pad is not None:
        env[PAD_VARIABLE] = "x" * pad
    preexec = _no_aslr if pad is not None and sys.platform.startswith("linux") else None
    # without a tree: run where this process's own harness lives, so that `python -m` finds the same
    # package (from a source checkout's root an unbuilt harness/ would shadow an installed one)
    cwd = tree if tree is not None else Path(__file__).resolve().parent.parent.parent
    try:
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=MEASURE_TIMEOUT,
                           preexec_fn=preexec)
    except subprocess.TimeoutExpired:
        raise MeasurementError(f"the measurement ran over {MEASURE_TIMEOUT} s") from None
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise MeasurementError(f"the measurement failed (exit {r.returncode}): {tail[0][:200]}")
    got = figures(r.stdout, workload.statistic)
    missing = [t for t in workload.tests if t not in got]
    if missing:
        raise MeasurementError(f"the measurement has no {', '.join(missing)} figure")
    return got


# (arm index, workload, round number) -> {test: tokens/s}; an arm is one side of the comparison
Measure = Callable[[int, Workload, int], dict[str, float]]


def block_orders(n_arms: int, rng: random.Random) -> list[list[int]]:
    """Two rounds: a random order of the arms, then the same order reversed (ABBA generalised)."""
    order = list(range(n_arms))
    rng.shuffle(order)
    return [order, order[::-1]]


@dataclass
class Rounds:
    """Per-round figures: values[arm][(workload label, test)] is one figure per round."""
    n_arms: int
    values: list[dict[tuple[str, str], list[float]]] = field(default_factory=list)
    orders: list[list[int]] = field(default_factory=list)

    def __post_init__(self):
        if not self.values:
            self.values = [{} for _ in range(self.n_arms)]

    @property
    def count(self) -> int:
        return len(self.orders)


def run_rounds(measure: Measure, n_arms: int, workloads: Sequence[Workload], *, min_rounds: int, max_rounds: int,
               time_budget: float | None, settled: Callable[[Rounds], bool] | None = None, seed: int = 0,
               log: Callable[[str], None] = lambda s: None, clock: Callable[[], float] = time.monotonic) -> tuple[Rounds, str]:
    """Blocks of two mirrored rounds until settled (checked once min_rounds are done), max_rounds,
    or the time budget would be overrun by one more block. Returns the rounds and why they stopped."""
    rng = random.Random(seed)
    r = Rounds(n_arms)
    start = clock()
    block_seconds = 0.0
    while True:
        t_block = clock()
        for order in block_orders(n_arms, rng):
            for w in workloads:
                for arm in order:
                    got = measure(arm, w, len(r.orders))
                    for test in w.tests:
                        r.values[arm].setdefault((w.label, test), []).append(got[test])
            r.orders.append(order)
        block_seconds = clock() - t_block
        log(f"  round {r.count}/{max_rounds}: {clock() - start:.0f} s")
        if r.count >= max_rounds:
            return r, "max-rounds"
        if r.count >= min_rounds and settled is not None and settled(r):
            return r, "settled"
        if time_budget is not None and clock() - start + block_seconds > time_budget and r.count >= 2:
            return r, "time-budget"


@dataclass(frozen=True)
class Policy:
    threshold: float = 0.02
    level: float = LEVEL
    min_rounds: int = 8
    max_rounds: int = 20
    time_budget: float | None = 300.0
    aa_rounds: int = 2
    seed: int = 0
    layout: str = "random"           # random: each process its own layout (ASLR); matched: ASLR off, one per round

    def pad(self, round_no: int) -> int | None:
        """The environment padding of a round's processes (bench_process), None under ASLR."""
        return layout_pad(self.seed, round_no) if self.layout == "matched" else None

    def check(self) -> None:
        if self.layout not in LAYOUTS:
            raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if not 0 <= self.threshold < 1:
            raise UsageError(f"--threshold must lie in [0%, 100%), got {self.threshold:g}")
        if not 0.5 <= self.level < 1:
            raise UsageError(f"--level must lie in [0.5, 1), got {self.level:g}")
        if self.min_rounds < 2:
            raise UsageError(f"--min-rounds must be >= 2 (one round has no interval), got {self.min_rounds}")
        if self.max_rounds < self.min_rounds:
            raise UsageError(f"--rounds must be >= --min-rounds ({self.min_rounds}), got {self.max_rounds}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise UsageError(f"--time-budget must be > 0 seconds, got {self.time_budget:g}")
        if self.aa_rounds < 0 or self.aa_rounds == 1:
            raise UsageError(f"--aa-rounds must be 0 or >= 2, got {self.aa_rounds}")


@dataclass
class AbResult:
    revisions: list[Revision]
    workloads: list[Workload]
    policy: Policy
    verdicts: list[PairedVerdict]            # each HEAD against the first revision, per test
    noise: list[NoiseFloor]                  # from the A/A rounds of the first revision
    rounds: int
    stop: str
    seconds: float
    builds: list[dict] = field(default_factory=list)
    system: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 when any test is significantly slower by more than the threshold."""
        return 1 if any(v.verdict == SLOWER for v in self.verdicts) else 0

    def as_dict(self) -> dict:
        return {"revisions": [r.__dict__ for r in self.revisions],
                "workloads": [w.__dict__ for w in self.workloads],
                "policy": self.policy.__dict__, "rounds": self.rounds, "stop": self.stop,
                "seconds": round(self.seconds, 1), "exit_code": self.exit_code,
                "verdicts": [v.as_dict() for v in self.verdicts],
                "noise": [dict(n.__dict__, run_spread=n.run_spread) for n in self.noise],
                "builds": self.builds, "system": self.system}


def tests_of(workloads: Sequence[Workload]) -> list[tuple[str, str]]:
    return [(w.label, t) for w in workloads for t in w.tests]


def settled_rule(policy: Policy, n_heads: int, keys: list[tuple[str, str]]) -> Callable[[Rounds], bool]:
    """Every HEAD's every test is settled at the interim level (module docstring)."""
    interim = family_level(1 - (1 - policy.level) / INTERIM_SHARE, n_heads * len(keys))

    def settled(r: Rounds) -> bool:
        for arm in range(1, r.n_arms):
            for key in keys:
                est = paired_estimate(r.values[0][key], r.values[arm][key], interim)
                if math.isnan(est.lo):
                    return False
                slower = est.hi < 1 and est.ratio < 1 - policy.threshold
                if not (slower or est.lo > 1 - policy.threshold):
                    return False
        return True
    return settled


def verdicts_of(r: Rounds, revisions: Sequence[Revision], workloads: Sequence[Workload],
                policy: Policy) -> list[PairedVerdict]:
    keys = tests_of(workloads)
    threads = {w.label: w.threads or 0 for w in workloads}
    level = family_level(policy.level, (len(revisions) - 1) * len(keys))
    out = []
    for arm in range(1, len(revisions)):
        for label, test in keys:
            out.append(judge_paired(test, label, threads[label], revisions[0].label, revisions[arm].label,
                                    r.values[0][(label, test)], r.values[arm][(label, test)],
                                    policy.threshold, level))
    return out


def noise_of(r: Rounds, workloads: Sequence[Workload], first: int = 0, second: int = 1) -> list[NoiseFloor]:
    threads = {w.label: w.threads or 0 for w in workloads}
    return [noise_floor(test, label, threads[label], r.values[first][(label, test)], r.values[second][(label, test)])
            for label, test in tests_of(workloads)]


def run_ab(revisions: Sequence[Revision], workloads: Sequence[Workload], measure: Measure, policy: Policy,
           log: Callable[[str], None] = lambda s: None,
           clock: Callable[[], float] = time.monotonic) -> AbResult:
    """A/A rounds of the first revision (its noise), then the rounds of all revisions; the verdicts
    of each later revision against the first. measure(i, w, n) measures revision i (i < len(revisions))
    in round n (A/A rounds are numbered -1, -2, ...)."""
    policy.check()
    if len(revisions) < 2:
        raise UsageError("give at least two revisions: BASE HEAD [HEAD2 ...]")
    t0 = clock()
    noise: list[NoiseFloor] = []
    if policy.aa_rounds:
        log(f"A/A: {revisions[0].label} against itself, {policy.aa_rounds} rounds (the noise floor)")
        aa, _ = run_rounds(lambda arm, w, rnd: measure(0, w, -1 - rnd), 2, workloads, min_rounds=policy.aa_rounds,
                           max_rounds=policy.aa_rounds, time_budget=None, seed=policy.seed + 1, log=log, clock=clock)
        noise = noise_of(aa, workloads)
    spent = clock() - t0
    budget = None if policy.time_budget is None else max(1.0, policy.time_budget - spent)
    log(f"A/B: {len(revisions)} revisions interleaved, {policy.min_rounds}-{policy.max_rounds} rounds"
        + (f", at most {budget:.0f} s" if budget else ""))
    keys = tests_of(workloads)
    r, stop = run_rounds(measure, len(revisions), workloads, min_rounds=policy.min_rounds,
                         max_rounds=policy.max_rounds, time_budget=budget,
                         settled=settled_rule(policy, len(revisions) - 1, keys), seed=policy.seed, log=log,
                         clock=clock)
    return AbResult(list(revisions), list(workloads), policy, verdicts_of(r, revisions, workloads, policy), noise,
                    r.count, stop, clock() - t0)


@dataclass
class NoiseResult:
    workloads: list[Workload]
    floors: list[NoiseFloor]
    rounds: int
    seconds: float
    level: float
    threshold: float
    at_rounds: list[int]
    system: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"rounds": self.rounds, "seconds": round(self.seconds, 1), "level": self.level,
                "threshold": self.threshold,
                "floors": [dict(f.__dict__, run_spread=f.run_spread,
                                mde={str(n): f.mde(n, family_level(self.level, len(self.floors)), self.threshold)
                                     for n in self.at_rounds})
                           for f in self.floors],
                "system": self.system}


def run_noise(workloads: Sequence[Workload], measure: Callable[[Workload, int], dict[str, float]], rounds: int,
              level: float = LEVEL, threshold: float = 0.0, at_rounds: Sequence[int] = (6, 10, 20), seed: int = 0,
              log: Callable[[str], None] = lambda s: None, clock: Callable[[], float] = time.monotonic) -> NoiseResult:
    """A/A: the same code measured twice per round, `rounds` rounds; the spread of each test."""
    if rounds < 2:
        raise UsageError(f"--rounds must be >= 2, got {rounds}")
    t0 = clock()
    r, _ = run_rounds(lambda arm, w, rnd: measure(w, rnd), 2, workloads, min_rounds=rounds, max_rounds=rounds,
                      time_budget=None, seed=seed, log=log, clock=clock)
    return NoiseResult(list(workloads), noise_of(r, workloads), r.count, clock() - t0, level, threshold,
                       sorted(set(at_rounds) | {rounds}))

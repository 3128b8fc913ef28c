"""Find the commit that made a throughput metric fall: `harness bisect`.

Each commit is checked out into a temporary git worktree, built there once, and measured by running
that commit's own code on one fixed model file, each measurement in its own process. A step does not
trust one figure: it measures the commit and the good commit interleaved, in rounds (good, commit,
good, commit, ...), and reads the paired per-round ratios commit/good through a bootstrap interval of
their median (harness.analysis.stats.paired_ratio_ci); rounds are added until the interval lies on
one side of 1 - threshold or the round / time budget is spent (then the median decides, or the step
is skipped). The search walks the first-parent path good..bad (binary search; commits that do not
build or cannot be measured are skipped, as `git bisect skip` does). The culprit is re-checked
against its parent the same way, and a culprit that changes no built code (only README.md, docs/,
tests/, ...) is not blamed: the fall is then called noise, with the good commit's run-to-run spread.

The pure parts (parsing, the rounds and their verdicts, the search with its re-check and the
built-code rule, reading a measurement) are separate from the git / subprocess parts so they can be
tested on their own.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis.stats import RatioCI, paired_ratio_ci, spread
from harness.errors import HarnessError, UsageError

DEFAULT_BUILD = "{python} setup.py build_ext --inplace"
DEFAULT_MEASURE = "{python} -m harness.cli bench {model} {bench_args} -o json"
PLACEHOLDERS = ("python", "worktree", "model", "bench_args", "n_prompt", "n_gen")


class BisectError(HarnessError):
    """The bisection cannot go on: the good commit does not build or measure, git failed, ..."""


# ----------------------------------------------------------------------------
# pure parts

@dataclass(frozen=True)
class Metric:
    """ppN (prompt processing of N tokens) or tgN (generation of N tokens), in tokens/s."""
    kind: str
    n: int

    @property
    def name(self) -> str:
        return f"{self.kind}{self.n}"


def parse_metric(text: str) -> Metric:
    m = re.fullmatch(r"(pp|tg)(\d+)", text.strip())
    if not m or int(m.group(2)) < 1:
        raise UsageError(f"metric must be ppN or tgN with N >= 1 (e.g. tg128, pp512), got {text!r}")
    return Metric(m.group(1), int(m.group(2)))


def parse_threshold(text: str) -> float:
    """'5%' -> 0.05; '0.05' -> 0.05. A fall of more than this fraction makes a commit bad."""
    s = text.strip()
    try:
        value = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        raise UsageError(f"threshold must be a percentage like 5% or a fraction like 0.05, got {text!r}") from None
    if not 0 < value < 1:
        raise UsageError(f"threshold must be between 0% and 100% (exclusive), got {text!r}")
    return value


def resolve_lengths(metric: str | None, n_prompt: int | None, n_gen: int | None) -> tuple[Metric, int, int]:
    """The metric and the -p / -n to measure it with. Without --metric the lengths name it
    (-n 8 -> tg8, else -p 64 -> pp64, else tg128); with it, a length given must agree."""
    for flag, v in (("-p", n_prompt), ("-n", n_gen)):
        if v is not None and v < 0:
            raise UsageError(f"{flag} must be >= 0, got {v}")
    if metric is None:
        if n_gen:
            m = Metric("tg", n_gen)
        elif n_prompt:
            m = Metric("pp", n_prompt)
        else:
            m = Metric("tg", 128)
    else:
        m = parse_metric(metric)
    given = n_gen if m.kind == "tg" else n_prompt
    if given is not None and given != m.n:
        flag = "-n" if m.kind == "tg" else "-p"
        raise UsageError(f"metric {m.name} needs {flag} {m.n}, got {flag} {given}")
    if m.kind == "tg":
        return m, (n_prompt or 0), m.n
    return m, m.n, (n_gen or 0)


def classify(good_value: float, value: float, threshold: float) -> str:
    """'bad' when value fell by more than threshold (a fraction) below the good commit's."""
    return "bad" if value < good_value * (1.0 - threshold) else "good"


def metric_value(stdout: str, metric: Metric) -> float:
    """Tokens/s from a measurement's output: a JSON list of llama-bench-style records (ours or
    llama-bench's `-o json`; the median of samples_ts when present, else avg_ts), or one number."""
    text = stdout.strip()
    try:
        data = json.loads(text)
    except ValueError:
        lines = text.splitlines()
        try:
            data = float(lines[-1]) if lines else None
        except ValueError:
            data = None
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise BisectError("measurement printed neither JSON records nor a number: "
                          f"{text[-120:]!r}")
    want = (0, metric.n) if metric.kind == "tg" else (metric.n, 0)
    for rec in data:
        if isinstance(rec, dict) and (rec.get("n_prompt"), rec.get("n_gen")) == want:
            samples = rec.get("samples_ts")
            if isinstance(samples, list) and samples:
                return float(statistics.median(samples))
            if "avg_ts" in rec:
                return float(rec["avg_ts"])
    raise BisectError(f"measurement has no {metric.name} record (n_prompt={want[0]}, n_gen={want[1]})")


@dataclass
class SearchState:
    """Indices into the commits after good (oldest first; the last one is bad).
    lo: the newest known good (-1 = the good commit), hi: the oldest known bad."""
    lo: int
    hi: int
    skipped: set[int] = field(default_factory=set)

    def candidates(self) -> list[int]:
        return [i for i in range(self.lo + 1, self.hi) if i not in self.skipped]

    def next_probe(self) -> int | None:
        """The untested commit nearest the middle of (lo, hi); None when none is left."""
        cands = self.candidates()
        if not cands:
            return None
        mid = (self.lo + self.hi) / 2
        return min(cands, key=lambda i: (abs(i - mid), -i))

    def suspects(self) -> list[int]:
        """Where the first bad commit can be: hi alone, or also the skipped ones before it."""
        return sorted(i for i in self.skipped if self.lo < i < self.hi) + [self.hi]


def search(n_commits: int, probe: Callable[[int], str]) -> SearchState:
    """Binary search for the first bad commit; probe(i) returns 'good', 'bad' or 'skip'."""
    st = SearchState(lo=-1, hi=n_commits - 1)
    while (i := st.next_probe()) is not None:
        verdict = probe(i)
        if verdict == "skip":
            st.skipped.add(i)
        elif verdict == "bad":
            st.hi = i
        elif verdict == "good":
            st.lo = i
        else:
            raise ValueError(f"probe returned {verdict!r}")
    return st


def expand(template: str, values: dict[str, str]) -> str:
    """Fill {placeholders} with shell-quoted values ({bench_args} is already a quoted list)."""
    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in values:
            raise UsageError(f"unknown placeholder {{{key}}} in command {template!r} "
                             f"(known: {', '.join('{' + k + '}' for k in PLACEHOLDERS)})")
        return values[key] if key == "bench_args" else shlex.quote(values[key])
    return re.sub(r"\{(\w+)\}", sub, template)


# ----------------------------------------------------------------------------
# rounds: a commit against a reference, measured interleaved

GOOD = -1          # the index of the good commit; commits after it are 0 .. n-1 (n-1 is the bad one)
GOOD_V, BAD_V, SKIP = "good", "bad", "skip"
UNDECIDED, FAILED = "undecided", "failed"
UNDECIDED_POLICIES = ("median", "skip")


@dataclass(frozen=True)
class Policy:
    """How one comparison is run and read. A commit is bad when the 95% interval of the median of
    its per-round ratios commit/reference lies wholly below 1 - threshold, good when it lies wholly
    at or above; rounds are added (min_rounds .. max_rounds, and while time_budget seconds are not
    spent) until one of the two holds. An undecided search step is then decided by the median ratio
    or skipped (`undecided`); the final re-check is never decided by the median."""
    threshold: float                   # a fraction: 0.05 = 5%
    min_rounds: int = 2
    max_rounds: int = 5
    time_budget: float | None = None   # seconds per comparison
    undecided: str = "median"          # median | skip
    level: float = 0.95

    @property
    def bound(self) -> float:
        return 1.0 - self.threshold

    def check(self) -> None:
        if self.min_rounds < 2:
            raise UsageError(f"--min-rounds must be >= 2 (one round has no interval), got {self.min_rounds}")
        if self.max_rounds < self.min_rounds:
            raise UsageError(f"--max-rounds must be >= --min-rounds ({self.min_rounds}), got {self.max_rounds}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise UsageError(f"--time-budget must be a number of seconds > 0, got {self.time_budget:g}")
        if self.undecided not in UNDECIDED_POLICIES:
            raise UsageError(f"--undecided must be one of {', '.join(UNDECIDED_POLICIES)}, got {self.undecided!r}")


@dataclass
class Comparison:
    """The rounds of one commit (new) against a reference (base): base[i] and new[i] were measured
    one after the other in round i."""
    base: list[float] = field(default_factory=list)
    new: list[float] = field(default_factory=list)
    verdict: str = UNDECIDED           # good / bad / undecided / failed
    ci: RatioCI | None = None
    stop: str = ""                     # decided / max-rounds / time-budget / failed
    note: str = ""                     # why it failed
    failed_side: str = ""              # base / new when verdict == failed

    @property
    def ratios(self) -> list[float]:
        return [n / b for b, n in zip(self.base, self.new)]

    @property
    def ratio(self) -> float:
        return self.ci.ratio if self.ci else (statistics.median(self.ratios) if self.base else math.nan)


def decide(base: Sequence[float], new: Sequence[float], policy: Policy) -> tuple[str, RatioCI]:
    """good / bad / undecided from paired rounds: where the interval lies against 1 - threshold."""
    ci = paired_ratio_ci(base, new, level=policy.level)
    if math.isnan(ci.lo):
        return UNDECIDED, ci
    if ci.hi < policy.bound:
        return BAD_V, ci
    if ci.lo >= policy.bound:
        return GOOD_V, ci
    return UNDECIDED, ci


Measure = Callable[[], "tuple[float | None, str]"]


def interleave(measure_base: Measure, measure_new: Measure, policy: Policy,
               clock: Callable[[], float] = time.monotonic) -> Comparison:
    """Rounds of (base, new), one measurement each, until decide() is no longer undecided (after at
    least min_rounds), max_rounds are done or the time budget is spent; a failed measurement ends it."""
    c = Comparison()
    start = clock()
    while True:
        for side, measure, into in (("base", measure_base, c.base), ("new", measure_new, c.new)):
            value, note = measure()
            if value is None or not (math.isfinite(value) and value > 0):
                c.verdict, c.stop, c.failed_side = FAILED, FAILED, side
                c.note = note or f"measurement gave {value!r}, not a positive figure"
                del c.base[len(c.new):]          # keep whole rounds only
                return c
            into.append(value)
        if len(c.base) < policy.min_rounds:
            continue
        c.verdict, c.ci = decide(c.base, c.new, policy)
        if c.verdict != UNDECIDED:
            c.stop = "decided"
        elif len(c.base) >= policy.max_rounds:
            c.stop = "max-rounds"
        elif policy.time_budget is not None and clock() - start >= policy.time_budget:
            c.stop = "time-budget"
        else:
            continue
        return c


def resolve(c: Comparison, policy: Policy) -> tuple[str, str]:
    """A search step's verdict (good / bad / skip) and its note."""
    if c.verdict in (GOOD_V, BAD_V):
        return c.verdict, ""
    if c.verdict == FAILED:
        return SKIP, c.note
    spent = "the time budget" if c.stop == "time-budget" else f"--max-rounds {len(c.base)}"
    why = f"undecided after {len(c.base)} round(s) ({spent}): the interval straddles {policy.bound:.3f}"
    if policy.undecided == "skip":
        return SKIP, why + "; skipped"
    v = classify(1.0, c.ratio, policy.threshold)
    return v, why + f"; decided by the median {c.ratio:.3f}x: {v}"


# which files can change what a commit builds or measures
BUILT_DIRS = ("harness/", "native/", "benchmarks/")
BUILT_FILES = ("setup.py", "pyproject.toml", "setup.cfg", "MANIFEST.in")
INERT_DIRS = ("docs/", "reports/", "tests/", ".ci/", ".github/")
INERT_SUFFIXES = (".md", ".rst", ".adoc")
INERT_NAMES = ("LICENSE", "COPYING", "AUTHORS", "CHANGELOG", ".gitignore", ".gitattributes", ".mailmap")


def affects_build(path: str) -> bool:
    """False for documentation, reports, tests and git metadata; True for the package, the C engine,
    the asv suite and the build files, and for anything else (an unknown file may be read by the
    build or by a --command measurement, so it is not ruled out)."""
    if path.startswith(BUILT_DIRS) or path in BUILT_FILES:
        return True
    name = path.rsplit("/", 1)[-1]
    return not (path.startswith(INERT_DIRS) or name.endswith(INERT_SUFFIXES) or name in INERT_NAMES)


# ----------------------------------------------------------------------------
# the search over rounds, with the re-check and the built-code rule (pure: callables in, result out)

@dataclass
class Step:
    label: str                        # bad / step N / re-check
    sha: str
    subject: str
    comparison: Comparison
    verdict: str                      # good / bad / skip
    note: str = ""
    base_label: str = "good"          # what it was measured against

    @property
    def value(self) -> float | None:  # the commit's median tokens/s over its rounds
        return statistics.median(self.comparison.new) if self.comparison.new else None


@dataclass
class BisectResult:
    status: str                       # found / not-slower / undecided / ambiguous / unconfirmed / no-built-code
    steps: list[Step]
    culprit: Step | None = None       # the commit the search ended at (found, unconfirmed, no-built-code)
    recheck: Step | None = None
    suspects: list[str] = field(default_factory=list)
    good_values: list[float] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def good_value(self) -> float:
        return statistics.median(self.good_values) if self.good_values else math.nan

    @property
    def noise(self) -> float:
        """The run-to-run spread (stddev / median) of the good commit's figures, as a fraction."""
        return spread(self.good_values)

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "found" else 1


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def format_step(s: Step) -> list[str]:
    c = s.comparison
    value = f"{s.value:.2f} t/s ({c.ratio:.2f}x)" if s.value is not None and c.base else "-"
    head = f"  {s.label:<9} {s.sha[:12]}  {value:<24} {s.verdict:<5} {s.subject[:60]}"
    lines = [head + (f"  [{s.note}]" if s.note else "")]
    if c.base:
        ci = c.ci
        interval = (f"{int(100 * ci.level)}% interval [{ci.lo:.3f}, {ci.hi:.3f}]"
                    if ci is not None and not math.isnan(ci.lo) else "no interval")
        lines.append(f"            rounds commit/{s.base_label}: "
                     f"{' '.join(f'{r:.3f}' for r in c.ratios)}; median {c.ratio:.3f}x, {interval}; "
                     f"{s.base_label} {statistics.median(c.base):.2f} t/s")
    return lines


class Bisection:
    """Binary search of commits 0 .. n-1 after the good one (n-1 is bad) where every step compares
    a commit with the good one in interleaved rounds, then the re-check of the culprit against its
    parent and the rule that a commit changing no built code is not blamed.

    compare(base, new) runs the rounds of commit index new against commit index base (GOOD = the
    good commit); describe(i) gives (sha, subject); changed(i) the paths commit i changes."""

    def __init__(self, n: int, compare: Callable[[int, int], Comparison], describe: Callable[[int], tuple[str, str]],
                 changed: Callable[[int], list[str]], policy: Policy, out: Callable[[str], None] = print):
        self.n, self.compare, self.describe, self.changed = n, compare, describe, changed
        self.policy, self.out = policy, out
        self.steps: list[Step] = []
        self.good_values: list[float] = []

    def _compare(self, base: int, new: int) -> Comparison:
        c = self.compare(base, new)
        if base == GOOD:
            if c.verdict == FAILED and c.failed_side == "base":
                raise BisectError(f"the good commit {self.describe(GOOD)[0][:12]} cannot be measured: {c.note}")
            self.good_values += c.base
        return c

    def _record(self, label: str, i: int, c: Comparison, verdict: str, note: str, base_label: str = "good") -> Step:
        sha, subj = self.describe(i)
        s = Step(label, sha, subj, c, verdict, note, base_label)
        self.steps.append(s)
        for line in format_step(s):
            self.out(line)
        return s

    def _result(self, status: str, **kw) -> BisectResult:
        return BisectResult(status, self.steps, good_values=self.good_values, **kw)

    def run(self) -> BisectResult:
        p, n = self.policy, self.n
        c = self._compare(GOOD, n - 1)
        if c.verdict == FAILED:
            raise BisectError(f"the bad commit {self.describe(n - 1)[0][:12]} cannot be measured: {c.note}")
        verdict, note = resolve(c, p)
        self._record("bad", n - 1, c, verdict, note)
        if verdict == SKIP:
            self.out(f"cannot tell whether the bad commit is slower than the good one by more than "
                     f"{p.threshold * 100:g}% ({c.ratio:.2f}x over {len(c.base)} rounds): nothing searched; "
                     "raise --max-rounds or --time-budget, or use --undecided median")
            return self._result("undecided")
        if verdict == GOOD_V:
            self.out(f"the bad commit is not slower than the good one by more than {p.threshold * 100:g}% "
                     f"({c.ratio:.2f}x): nothing to find")
            return self._result("not-slower")

        def probe(i: int) -> str:
            c = self._compare(GOOD, i)
            verdict, note = resolve(c, p)
            self._record(f"step {sum(s.label.startswith('step') for s in self.steps) + 1}", i, c, verdict, note)
            return verdict

        st = search(n, probe)
        suspects = st.suspects()
        for i in suspects[:-1]:          # a skipped commit that changes no built code cannot be the culprit
            files = self.changed(i)
            if not any(affects_build(f) for f in files):
                suspects.remove(i)
                self.out(f"{self.describe(i)[0][:12]} was skipped but changes "
                         f"{'only ' + ', '.join(files) if files else 'no file'}: not a suspect")
        if len(suspects) > 1:
            self.out("cannot isolate the first bad commit: commits that were skipped lie just before it; "
                     "it is one of:")
            for i in suspects:
                sha, subj = self.describe(i)
                self.out(f"  {sha[:12]}  {subj}")
            return self._result("ambiguous", suspects=[self.describe(i)[0] for i in suspects])

        i, parent = suspects[0], suspects[0] - 1
        culprit = next(s for s in reversed(self.steps) if s.sha == self.describe(i)[0])
        parent_sha = self.describe(parent)[0]
        self.out(f"the search ends at {culprit.sha[:12]} {culprit.subject}; re-check against its parent "
                 f"{parent_sha[:12]}:")
        c = self._compare(parent, i)
        confirmed = c.verdict == BAD_V
        note = "" if confirmed else (c.note if c.verdict == FAILED else f"{c.verdict}: not confirmed")
        recheck = self._record("re-check", i, c, BAD_V if confirmed else c.verdict, note,
                               base_label="good" if parent == GOOD else "parent")
        files = self.changed(i)
        floor, good = spread(self.good_values), statistics.median(self.good_values)
        self.out(f"good commit: {good:.2f} t/s over {len(self.good_values)} runs; "
                 f"run-to-run spread {_pct(floor)}")
        kw = dict(culprit=culprit, recheck=recheck, changed=files)
        if not any(affects_build(f) for f in files):
            what = f"only {', '.join(files)}" if files else "no file"
            self.out(f"culprit {culprit.sha[:12]} changes {what}; the regression is below the noise floor of "
                     f"{_pct(floor)}")
            self.out(f"  (it changes no built code, so its {_pct(1 - culprit.comparison.ratio)} fall against the "
                     "good commit is noise or drift of the machine between runs, and it is not blamed: measure again "
                     "on a quieter machine, with more --max-rounds, or a threshold above the noise)")
            return self._result("no-built-code", **kw)
        if not confirmed:
            why = c.note if c.verdict == FAILED else (
                f"median {c.ratio:.3f}x over {len(c.base)} rounds, not wholly below {p.bound:.3f}")
            self.out(f"the re-check does not confirm a fall at {culprit.sha[:12]} against its parent ({why}): "
                     "no culprit named")
            return self._result("unconfirmed", **kw)
        self.out(f"first bad commit: {culprit.sha} {culprit.subject}")
        self.out(f"  {c.ratio:.2f}x of its parent ({parent_sha[:12]}) over {len(c.base)} interleaved rounds; "
                 f"{culprit.comparison.ratio:.2f}x of the good commit's "
                 f"{good:.2f} t/s")
        return self._result("found", **kw)


# ----------------------------------------------------------------------------
# git and subprocesses

def git(repo: Path, *args: str) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise BisectError(f"git {' '.join(args)} failed: {r.stderr.strip().splitlines()[-1:] or r.returncode}")
    return r.stdout


def repo_top(path: Path) -> Path:
    r = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if r.returncode != 0:
        raise UsageError(f"{path} is not inside a git repository (use --repo)")
    return Path(r.stdout.strip())


def resolve_rev(repo: Path, rev: str) -> str:
    r = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise UsageError(f"{rev!r} is not a commit in {repo}")
    return r.stdout.strip()


def first_parent_path(repo: Path, good: str, bad: str) -> list[str]:
    """Commits after good up to and including bad along first parents, oldest first."""
    if subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", good, bad]).returncode != 0:
        raise UsageError(f"the good commit {good[:12]} is not an ancestor of the bad commit {bad[:12]}")
    shas = git(repo, "rev-list", "--first-parent", "--reverse", f"{good}..{bad}").split()
    if not shas:
        raise UsageError("the good and bad commits are the same commit")
    return shas


def subject(repo: Path, sha: str) -> str:
    return git(repo, "log", "-1", "--format=%s", sha).strip()


class Worktrees:
    """Temporary detached worktrees under one temp dir; close() removes them all (also after
    Ctrl-C, from a finally block) and prunes git's records of them."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.base = Path(tempfile.mkdtemp(prefix="harness-bisect-"))
        self.live: list[Path] = []

    def add(self, sha: str) -> Path:
        path = self.base / sha[:12]
        git(self.repo, "worktree", "add", "--detach", "--quiet", str(path), sha)
        self.live.append(path)
        return path

    def remove(self, path: Path) -> None:
        subprocess.run(["git", "-C", str(self.repo), "worktree", "remove", "--force", str(path)],
                       capture_output=True)
        shutil.rmtree(path, ignore_errors=True)
        if path in self.live:
            self.live.remove(path)

    def close(self) -> None:
        for p in list(self.live):
            self.remove(p)
        shutil.rmtree(self.base, ignore_errors=True)
        subprocess.run(["git", "-C", str(self.repo), "worktree", "prune"], capture_output=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else "(no output)"


def run_in(path: Path, command: str) -> subprocess.CompletedProcess:
    """A shell command in a worktree, with only that worktree's code on PYTHONPATH. It runs in a
    process group of its own, killed whole when this process is interrupted (Ctrl-C, SIGTERM): a shell
    that does not exec its command would otherwise die alone and leave the command running."""
    env = dict(os.environ, PYTHONPATH=str(path))
    with subprocess.Popen(command, shell=True, cwd=path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as p:
        try:
            out, err = p.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


# ----------------------------------------------------------------------------
# the bisection over git

@dataclass
class BisectConfig:
    repo: Path
    good: str
    bad: str
    metric: Metric
    threshold: float                  # a fraction: 0.05 = 5%
    n_prompt: int
    n_gen: int
    model: str | None = None          # one file for every commit (absolute path)
    bench_args: list[str] = field(default_factory=list)
    measure_command: str = DEFAULT_MEASURE
    build_command: str = DEFAULT_BUILD
    min_rounds: int = 2
    max_rounds: int = 5
    time_budget: float | None = None  # seconds per step
    undecided: str = "median"

    @property
    def policy(self) -> Policy:
        return Policy(self.threshold, self.min_rounds, self.max_rounds, self.time_budget, self.undecided)


class Measurer:
    """Builds a commit once in a fresh worktree (prepare), then measures it as often as asked, each
    measurement in its own process (run); release removes the worktree."""

    def __init__(self, cfg: BisectConfig, trees: Worktrees):
        self.cfg, self.trees = cfg, trees

    def values(self, path: Path) -> dict[str, str]:
        return {"python": sys.executable, "worktree": str(path), "model": self.cfg.model or "",
                "bench_args": " ".join(shlex.quote(a) for a in self.cfg.bench_args),
                "n_prompt": str(self.cfg.n_prompt), "n_gen": str(self.cfg.n_gen)}

    def prepare(self, sha: str) -> tuple[Path | None, str]:
        path = self.trees.add(sha)
        if self.cfg.build_command:
            r = run_in(path, expand(self.cfg.build_command, self.values(path)))
            if r.returncode != 0:
                self.trees.remove(path)
                return None, f"build failed: {_last_line(r.stderr + r.stdout)}"
        return path, ""

    def run(self, path: Path) -> tuple[float | None, str]:
        r = run_in(path, expand(self.cfg.measure_command, self.values(path)))
        if r.returncode != 0:
            return None, f"measurement failed (exit {r.returncode}): {_last_line(r.stderr or r.stdout)}"
        try:
            return metric_value(r.stdout, self.cfg.metric), ""
        except BisectError as e:
            return None, str(e)

    def release(self, path: Path) -> None:
        self.trees.remove(path)


def changed_files(repo: Path, sha: str) -> list[str]:
    """The paths a commit changes against its first parent."""
    out = git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", "-m", "--first-parent", sha)
    return sorted(set(filter(None, out.splitlines())))


def run_bisect(cfg: BisectConfig, out: Callable[[str], None] = print) -> BisectResult:
    """Compare good and bad in interleaved rounds, binary-search the first-parent path between them
    the same way, re-check the culprit against its parent."""
    policy = cfg.policy
    policy.check()
    shas = first_parent_path(cfg.repo, cfg.good, cfg.bad)
    n_steps = max(0, (len(shas) - 1).bit_length())
    budget = f", at most {policy.time_budget:g} s" if policy.time_budget else ""
    out(f"bisect: {cfg.metric.name} in tokens/s (higher is better); each step measures the commit and the good "
        f"one interleaved, {policy.min_rounds}-{policy.max_rounds} rounds{budget}")
    out(f"a commit is bad when the {int(100 * policy.level)}% interval of its median ratio to the good commit "
        f"lies below {policy.bound:.3f}, good when at or above it; a step still undecided is "
        + ("decided by the median ratio" if policy.undecided == "median" else "skipped"))
    if cfg.model:
        out(f"model: {cfg.model}")
    out(f"{len(shas)} commit(s) after good on the first-parent path; "
        f"about {n_steps} to test between good and bad, then a re-check against the culprit's parent")
    trees = Worktrees(cfg.repo)
    meas = Measurer(cfg, trees)
    subjects: dict[str, str] = {}

    def sha_of(i: int) -> str:
        return cfg.good if i == GOOD else shas[i]

    def describe(i: int) -> tuple[str, str]:
        sha = sha_of(i)
        if sha not in subjects:
            subjects[sha] = subject(cfg.repo, sha)
        return sha, subjects[sha]

    try:
        good_path, note = meas.prepare(cfg.good)
        if good_path is None:
            raise BisectError(f"the good commit {cfg.good[:12]} cannot be measured: {note}")

        def compare(base: int, new: int) -> Comparison:
            live: list[Path] = []
            try:
                if base == GOOD:
                    base_path = good_path
                else:
                    base_path, note = meas.prepare(sha_of(base))
                    if base_path is None:
                        return Comparison(verdict=FAILED, stop=FAILED, note=note, failed_side="base")
                    live.append(base_path)
                new_path, note = meas.prepare(sha_of(new))
                if new_path is None:
                    return Comparison(verdict=FAILED, stop=FAILED, note=note, failed_side="new")
                live.append(new_path)
                return interleave(lambda: meas.run(base_path), lambda: meas.run(new_path), policy)
            finally:
                for p in live:
                    meas.release(p)

        return Bisection(len(shas), compare, describe, lambda i: changed_files(cfg.repo, sha_of(i)),
                         policy, out).run()
    finally:
        trees.close()

"""Find the commit that made a throughput metric fall: `harness bisect`.

Each step checks one commit out into a temporary git worktree, builds it there, measures it by
running that commit's own code on one fixed model file, and classifies it against the good
commit's figure. The search walks the first-parent path good..bad (binary search; commits that do
not build or cannot be measured are skipped, as `git bisect skip` does).

The pure parts (metric and threshold parsing, classification, the search, reading a measurement)
are separate from the git / subprocess parts so they can be tested on their own.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
    """A shell command in a worktree, with only that worktree's code on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=str(path))
    return subprocess.run(command, shell=True, cwd=path, env=env, capture_output=True, text=True)


# ----------------------------------------------------------------------------
# the bisection

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


@dataclass
class Step:
    label: str                        # good / bad / step N
    sha: str
    subject: str
    value: float | None               # tokens/s, None when skipped
    verdict: str                      # good / bad / skip
    note: str = ""


@dataclass
class BisectResult:
    status: str                       # found / not-slower / ambiguous
    steps: list[Step]
    culprit: Step | None = None
    suspects: list[str] = field(default_factory=list)
    good_value: float = float("nan")

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "found" else 1


class Measurer:
    """Builds and measures one commit in a fresh worktree; returns (tokens/s or None, note)."""

    def __init__(self, cfg: BisectConfig, trees: Worktrees):
        self.cfg, self.trees = cfg, trees

    def values(self, path: Path) -> dict[str, str]:
        return {"python": sys.executable, "worktree": str(path), "model": self.cfg.model or "",
                "bench_args": " ".join(shlex.quote(a) for a in self.cfg.bench_args),
                "n_prompt": str(self.cfg.n_prompt), "n_gen": str(self.cfg.n_gen)}

    def __call__(self, sha: str) -> tuple[float | None, str]:
        path = self.trees.add(sha)
        try:
            vals = self.values(path)
            if self.cfg.build_command:
                r = run_in(path, expand(self.cfg.build_command, vals))
                if r.returncode != 0:
                    return None, f"build failed: {_last_line(r.stderr + r.stdout)}"
            r = run_in(path, expand(self.cfg.measure_command, vals))
            if r.returncode != 0:
                return None, f"measurement failed (exit {r.returncode}): {_last_line(r.stderr or r.stdout)}"
            try:
                return metric_value(r.stdout, self.cfg.metric), ""
            except BisectError as e:
                return None, str(e)
        finally:
            self.trees.remove(path)


def _fmt(value: float | None, good: float | None) -> str:
    if value is None:
        return "-"
    ratio = f" ({value / good:.2f}x)" if good else ""
    return f"{value:.2f} t/s{ratio}"


def format_step(s: Step, good_value: float | None) -> str:
    text = f"  {s.label:<8} {s.sha[:12]}  {_fmt(s.value, good_value):<24} {s.verdict:<5} {s.subject[:60]}"
    return text + (f"  [{s.note}]" if s.note else "")


def run_bisect(cfg: BisectConfig, out: Callable[[str], None] = print,
               measure: Callable[[str], tuple[float | None, str]] | None = None) -> BisectResult:
    """Measure good and bad, then binary-search the first-parent path between them."""
    shas = first_parent_path(cfg.repo, cfg.good, cfg.bad)
    n_steps = max(0, (len(shas) - 1).bit_length())
    out(f"bisect: {cfg.metric.name} in tokens/s (higher is better); a commit is bad below "
        f"{100 * (1 - cfg.threshold):.1f}% of the good commit's figure")
    if cfg.model:
        out(f"model: {cfg.model}")
    out(f"{len(shas)} commit(s) after good on the first-parent path; "
        f"about {n_steps} to test between good and bad")
    trees = Worktrees(cfg.repo)
    steps: list[Step] = []

    def record(label: str, sha: str, value: float | None, verdict: str, note: str, good: float | None) -> Step:
        s = Step(label, sha, subject(cfg.repo, sha), value, verdict, note)
        steps.append(s)
        out(format_step(s, good))
        return s

    try:
        measure = measure or Measurer(cfg, trees)
        value, note = measure(cfg.good)
        if value is None:
            raise BisectError(f"the good commit {cfg.good[:12]} cannot be measured: {note}")
        good_value = value
        record("good", cfg.good, value, "good", "", None)
        value, note = measure(cfg.bad)
        if value is None:
            raise BisectError(f"the bad commit {cfg.bad[:12]} cannot be measured: {note}")
        verdict = classify(good_value, value, cfg.threshold)
        record("bad", cfg.bad, value, verdict, "", good_value)
        if verdict == "good":
            out(f"the bad commit is not slower than the good one by more than {100 * cfg.threshold:g}% "
                f"({value / good_value:.2f}x): nothing to find")
            return BisectResult("not-slower", steps, good_value=good_value)

        figures = {len(shas) - 1: value}

        def probe(i: int) -> str:
            v, note = measure(shas[i])
            verdict = "skip" if v is None else classify(good_value, v, cfg.threshold)
            if v is not None:
                figures[i] = v
            record(f"step {sum(s.label.startswith('step') for s in steps) + 1}", shas[i], v, verdict, note,
                   good_value)
            return verdict

        st = search(len(shas), probe)
    finally:
        trees.close()

    suspects = st.suspects()
    if len(suspects) > 1:
        out("cannot isolate the first bad commit: commits that were skipped lie just before it; "
            "it is one of:")
        for i in suspects:
            out(f"  {shas[i][:12]}  {subject(cfg.repo, shas[i])}")
        return BisectResult("ambiguous", steps, suspects=[shas[i] for i in suspects], good_value=good_value)
    culprit = next(s for s in reversed(steps) if s.sha == shas[st.hi])
    before = cfg.good if st.lo < 0 else shas[st.lo]
    before_value = good_value if st.lo < 0 else figures[st.lo]
    out(f"first bad commit: {culprit.sha} {culprit.subject}")
    out(f"  {_fmt(culprit.value, good_value)} of the good commit's {good_value:.2f} t/s; its parent on the "
        f"path ({before[:12]}) measured {before_value:.2f} t/s")
    return BisectResult("found", steps, culprit=culprit, good_value=good_value)

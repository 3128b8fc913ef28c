"""harness bisect: the search, the parsing, and whole runs on throwaway git repositories
(a toy one with a fake build and measurement, and copies of this project with a planted slowdown)."""
import itertools
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from harness.analysis.stats import paired_ratio_ci
from harness.measure.bisect import (GOOD, Bisection, BisectError, Comparison, Metric, Policy, SearchState,
                                    affects_build, classify, decide, expand, interleave, metric_value,
                                    parse_metric, parse_threshold, resolve, resolve_lengths, search)
from harness.errors import UsageError
from support.project_repo import commit, git, plant_sleep, project_copy
from support.signals import sigint_default


# ----------------------------------------------------------------------------
# pure parts

@pytest.mark.parametrize("text,metric", [("tg128", Metric("tg", 128)), ("pp512", Metric("pp", 512)),
                                         (" tg8 ", Metric("tg", 8))])
def test_parse_metric(text, metric):
    assert parse_metric(text) == metric


@pytest.mark.parametrize("text", ["tg", "tg0", "pg128", "tg-1", "128", ""])
def test_parse_metric_rejects(text):
    with pytest.raises(UsageError, match="metric must be ppN or tgN"):
        parse_metric(text)


@pytest.mark.parametrize("text,value", [("5%", 0.05), ("12.5%", 0.125), ("0.3", 0.3)])
def test_parse_threshold(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0%", "100%", "5", "-3%", "abc", "%"])
def test_parse_threshold_rejects(text):
    with pytest.raises(UsageError, match="threshold"):
        parse_threshold(text)


@pytest.mark.parametrize("metric,p,n,want", [
    (None, None, None, ("tg128", 0, 128)),
    (None, None, 8, ("tg8", 0, 8)),
    (None, 64, None, ("pp64", 64, 0)),
    (None, 64, 8, ("tg8", 64, 8)),
    ("pp32", None, None, ("pp32", 32, 0)),
    ("tg16", 4, 16, ("tg16", 4, 16)),
])
def test_resolve_lengths(metric, p, n, want):
    m, n_prompt, n_gen = resolve_lengths(metric, p, n)
    assert (m.name, n_prompt, n_gen) == want


def test_resolve_lengths_rejects_a_length_that_contradicts_the_metric():
    with pytest.raises(UsageError, match="metric tg128 needs -n 128, got -n 8"):
        resolve_lengths("tg128", None, 8)
    with pytest.raises(UsageError, match="-p must be >= 0"):
        resolve_lengths(None, -1, None)


def test_classify_uses_the_good_figure_and_the_threshold():
    assert classify(100.0, 95.1, 0.05) == "good"
    assert classify(100.0, 94.9, 0.05) == "bad"
    assert classify(100.0, 140.0, 0.05) == "good"


@pytest.mark.parametrize("n", range(1, 10))
def test_search_finds_every_culprit_position_in_log_steps(n):
    for culprit in range(n):
        probed = []

        def probe(i, culprit=culprit, probed=probed):
            probed.append(i)
            return "bad" if i >= culprit else "good"
        st = search(n, probe)
        assert st.suspects() == [culprit]
        assert len(probed) <= max(0, (n - 1).bit_length())
        assert n - 1 not in probed          # the bad end is known, never measured again


def test_search_steps_around_a_skipped_commit():
    # 0 1 2 3 4 5 6 7: 3 does not build, 5 is the first bad one
    verdicts = {3: "skip"}
    st = search(8, lambda i: verdicts.get(i, "bad" if i >= 5 else "good"))
    assert st.suspects() == [5] and 3 in st.skipped


def test_search_reports_skipped_commits_next_to_the_culprit_as_suspects():
    # 4 does not build and 5 is bad: the first bad one is 4 or 5, git bisect says the same
    st = search(8, lambda i: "skip" if i == 4 else ("bad" if i >= 5 else "good"))
    assert st.suspects() == [4, 5]


def test_next_probe_prefers_the_middle():
    assert SearchState(lo=-1, hi=8).next_probe() == 4
    assert SearchState(lo=-1, hi=8, skipped={3, 4}).next_probe() == 5
    assert SearchState(lo=2, hi=3).next_probe() is None


RECORDS = """[{"n_prompt": 64, "n_gen": 0, "avg_ts": 900.0, "samples_ts": [800.0, 900.0, 1000.0]},
              {"n_prompt": 0, "n_gen": 16, "avg_ts": 50.0, "samples_ts": [10.0, 40.0, 100.0]}]"""


def test_metric_value_reads_bench_records_median_of_samples():
    assert metric_value(RECORDS, Metric("tg", 16)) == 40.0
    assert metric_value(RECORDS, Metric("pp", 64)) == 900.0
    assert metric_value('[{"n_prompt": 0, "n_gen": 16, "avg_ts": 12.5}]', Metric("tg", 16)) == 12.5


def test_metric_value_reads_a_bare_number_on_the_last_line():
    assert metric_value("building...\n123.5\n", Metric("tg", 16)) == 123.5


@pytest.mark.parametrize("text,match", [(RECORDS, "no tg128 record"), ("oops", "neither JSON records"),
                                        ("", "neither JSON records"), ("true", "neither JSON records")])
def test_metric_value_rejects(text, match):
    with pytest.raises(BisectError, match=match):
        metric_value(text, Metric("tg", 128))


def test_expand_quotes_values_and_names_unknown_placeholders():
    vals = {"python": "/usr/bin/python3", "model": "/m dir/x.gguf", "bench_args": "-p 0 -n 8"}
    assert expand("{python} b {model} {bench_args}", vals) == "/usr/bin/python3 b '/m dir/x.gguf' -p 0 -n 8"
    with pytest.raises(UsageError, match=r"unknown placeholder \{modle\}"):
        expand("{modle}", vals)


# ----------------------------------------------------------------------------
# rounds, verdicts and the whole search on synthetic measurements (no git, no processes)

def test_paired_ratio_ci_is_the_median_of_per_round_ratios():
    ci = paired_ratio_ci([100, 50, 200], [90, 45, 180])       # the machine drifts; every round says 0.9
    assert ci.ratio == pytest.approx(0.9) and ci.lo == pytest.approx(0.9) and ci.hi == pytest.approx(0.9)
    assert ci.n_base == ci.n_new == 3
    one = paired_ratio_ci([100], [90])
    assert one.ratio == pytest.approx(0.9) and one.lo != one.lo    # NaN: one round has no interval
    with pytest.raises(Exception, match="as many on each side"):
        paired_ratio_ci([1, 2], [1])


def test_decide_needs_the_whole_interval_on_one_side_of_one_minus_threshold():
    p = Policy(0.05)
    assert decide([100, 100], [90, 91], p)[0] == "bad"
    assert decide([100, 100], [99, 101], p)[0] == "good"
    assert decide([100, 100], [95, 95], p)[0] == "good"              # a fall of exactly 5% is not more than 5%
    assert decide([100, 100, 100], [90, 99, 91], p)[0] == "undecided"  # one round says good: not clear
    assert decide([100], [50], p)[0] == "undecided"                    # one round: no interval


def measurer(values):
    it = iter(values)
    return lambda: (next(it), "")


def test_interleave_alternates_base_and_new_and_stops_when_clear():
    calls = []

    def side(name, v):
        return lambda: (calls.append(name), (v, ""))[1]
    c = interleave(side("good", 100.0), side("new", 90.0), Policy(0.05))
    assert calls == ["good", "new", "good", "new"] and c.verdict == "bad" and c.stop == "decided"
    assert c.ratios == pytest.approx([0.9, 0.9])


def test_interleave_adds_rounds_up_to_max_rounds_while_undecided():
    c = interleave(measurer([100.0] * 9), measurer([90, 99, 91, 92, 90, 90, 90, 90, 90]),
                   Policy(0.05, max_rounds=4))
    assert len(c.base) == len(c.new) == 4 and c.verdict == "undecided" and c.stop == "max-rounds"
    v, note = resolve(c, Policy(0.05, max_rounds=4))
    assert v == "bad" and "undecided after 4 round(s)" in note and "decided by the median 0.915x: bad" in note
    v, note = resolve(c, Policy(0.05, max_rounds=4, undecided="skip"))
    assert v == "skip" and note.endswith("; skipped")


def test_interleave_stops_when_the_time_budget_is_spent_but_not_before_min_rounds():
    clock = itertools.count(0.0, 10.0)      # every look at the clock: 10 s later
    c = interleave(measurer([100.0] * 9), measurer([90, 99, 91, 92, 90, 90, 90, 90, 90]),
                   Policy(0.05, min_rounds=3, max_rounds=9, time_budget=5), clock=lambda: next(clock))
    assert len(c.base) == 3 and c.stop == "time-budget"
    assert "(the time budget)" in resolve(c, Policy(0.05))[1]


def test_interleave_ends_at_a_failed_measurement_with_whole_rounds_only():
    c = interleave(measurer([100.0, 100.0]), iter([(90.0, ""), (None, "measurement failed (exit 1): boom")]).__next__,
                   Policy(0.05))
    assert c.verdict == "failed" and c.failed_side == "new" and c.base == [100.0] and c.new == [90.0]
    assert resolve(c, Policy(0.05)) == ("skip", "measurement failed (exit 1): boom")


@pytest.mark.parametrize("path,built", [
    ("README.md", False), ("docs/qwen35.md", False), ("reports/device/x.json", False), ("tests/test_x.py", False),
    ("harness/engine/session.py", True), ("native/src/cpu.c", True), ("setup.py", True), ("pyproject.toml", True),
    ("benchmarks/bench_engine.py", True), ("harness/README.md", True), ("speed.txt", True), ("asv.conf.json", True),
])
def test_affects_build(path, built):
    assert affects_build(path) is built


class Synthetic:
    """Commits GOOD, 0 .. n-1 with a true speed each; every measurement is speed x noise, the noise
    from a seeded generator and optional outliers by (commit, its k-th measurement)."""

    def __init__(self, speeds, changed=None, noise=0.015, outliers=None, seed=1):
        self.speeds, self.n = speeds, len(speeds) - 1         # speeds[0] is the good commit's
        self.rng = random.Random(seed)
        self.noise, self.outliers = noise, outliers or {}
        self.counts = {}
        self.changed = changed or {}
        self.lines = []

    def measure(self, i):
        k = self.counts.get(i, 0)
        self.counts[i] = k + 1
        factor = self.outliers.get((i, k), 1 + self.rng.gauss(0, self.noise))
        return self.speeds[i + 1] * factor, ""

    def compare(self, policy):
        return lambda base, new: interleave(lambda: self.measure(base), lambda: self.measure(new), policy)

    def run(self, policy):
        b = Bisection(self.n, self.compare(policy), lambda i: ("good" if i == GOOD else f"c{i}", f"commit {i}"),
                      lambda i: self.changed.get(i, ["harness/engine/session.py"]), policy, self.lines.append)
        return b.run()

    @property
    def text(self):
        return "\n".join(self.lines)


def test_a_noisy_readme_only_commit_in_the_middle_is_not_blamed():
    # 0 1 2 3 4 5 6: 3 changes README.md only and its first measurement is a 10% low outlier; 4 is 10% slower.
    # One figure per commit (the old way) blames 3: 0.90 < 0.95, and 0, 1, 2 measure good.
    speeds = [100, 100, 100, 100, 100, 90, 90, 90]
    syn = Synthetic(speeds, changed={3: ["README.md"]}, outliers={(3, 0): 0.90})
    assert classify(speeds[0], speeds[4] * 0.90, 0.05) == "bad"
    r = syn.run(Policy(0.05))
    assert r.status == "found" and r.exit_code == 0, syn.text
    assert r.culprit.sha == "c4" and r.recheck.verdict == "bad"
    step3 = next(s for s in r.steps if s.sha == "c3")
    assert step3.verdict == "good" and "decided by the median" in step3.note
    assert len(step3.comparison.base) == 5                        # it took every round to tell
    assert "first bad commit: c4 commit 4" in syn.text
    # skipping instead of deciding by the median: 3 is passed over, 4 is still found
    syn = Synthetic(speeds, changed={3: ["README.md"]}, outliers={(3, 0): 0.90})
    r = syn.run(Policy(0.05, undecided="skip"))
    assert r.status == "found" and r.culprit.sha == "c4"
    assert next(s for s in r.steps if s.sha == "c3").verdict == "skip"
    assert "c3 was skipped but changes only README.md: not a suspect" in syn.text


@pytest.mark.parametrize("culprit", range(7))
def test_a_clear_ten_percent_drop_is_found_wherever_it_is(culprit):
    speeds = [100.0] + [100.0 if i < culprit else 90.0 for i in range(7)]
    syn = Synthetic(speeds, noise=0.02, seed=culprit)
    r = syn.run(Policy(0.05))
    assert r.status == "found", syn.text
    assert r.culprit.sha == f"c{culprit}"
    for s in r.steps:                         # every step prints its rounds
        assert s.comparison.base and len(s.comparison.base) == len(s.comparison.new)
    assert syn.text.count("rounds commit/") == len(r.steps)


def test_a_culprit_that_changes_only_readme_is_reported_as_such():
    # the speed falls at 2 (a README edit: the machine slowed down from then on, say): found, re-checked,
    # and still not blamed
    syn = Synthetic([100, 100, 100, 90, 90, 90], changed={2: ["README.md"]})
    r = syn.run(Policy(0.05))
    assert r.status == "no-built-code" and r.exit_code == 1, syn.text
    assert r.culprit.sha == "c2" and r.changed == ["README.md"]
    floor = f"{100 * r.noise:.1f}%"
    assert 0 < r.noise < 0.05
    assert f"culprit c2 changes only README.md; the regression is below the noise floor of {floor}" in syn.text
    assert "first bad commit" not in syn.text


def test_a_culprit_the_recheck_does_not_confirm_is_not_named():
    # a slow drift, 3% per commit: 1 is the first more than 5% below good, but only 3% below its parent
    syn = Synthetic([100, 97, 94.09, 91.27, 88.53], noise=0.002)
    r = syn.run(Policy(0.05))
    assert r.status == "unconfirmed" and r.exit_code == 1, syn.text
    assert r.culprit.sha == "c1" and r.recheck.comparison.ratio == pytest.approx(0.97, abs=0.01)
    assert "the re-check does not confirm a fall at c1 against its parent" in syn.text
    assert "first bad commit" not in syn.text


def test_an_undecided_bad_end_is_decided_by_the_median_or_stops_the_search():
    speeds = [100, 100, 93]
    outliers = {(1, 0): 1.0, (1, 1): 1.03, (1, 2): 0.97}     # ratios 0.93, 0.958, 0.902: not clear in 3 rounds
    syn = Synthetic(speeds, noise=0.0, outliers=outliers)
    r = syn.run(Policy(0.05, max_rounds=3, undecided="skip"))
    assert r.status == "undecided" and r.exit_code == 1 and len(r.steps) == 1
    assert "cannot tell whether the bad commit is slower" in syn.text
    syn = Synthetic(speeds, noise=0.0, outliers=outliers)
    r = syn.run(Policy(0.05, max_rounds=3))
    assert r.steps[0].verdict == "bad" and "decided by the median" in r.steps[0].note


def test_the_good_commit_failing_a_later_round_stops_the_bisection():
    def compare(base, new):
        return Comparison(verdict="failed", failed_side="base", note="measurement failed (exit 1): oops")
    b = Bisection(3, compare, lambda i: (f"c{i}", ""), lambda i: [], Policy(0.05), lambda line: None)
    with pytest.raises(BisectError, match="the good commit c-1 cannot be measured: measurement failed"):
        b.run()


def test_policy_rejects():
    for kw, match in [({"min_rounds": 1}, "--min-rounds must be >= 2"), ({"max_rounds": 1}, "--max-rounds must be"),
                      ({"time_budget": 0}, "--time-budget"), ({"undecided": "coin"}, "--undecided")]:
        with pytest.raises(UsageError, match=match):
            Policy(0.05, **kw).check()


# ----------------------------------------------------------------------------
# whole runs on throwaway repositories

def bisect(repo, *args, tmpdir=None, **popen):
    env = dict(os.environ)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run([sys.executable, "-m", "harness.cli", "bisect", "--repo", str(repo), *args],
                          capture_output=True, text=True, env=env, **popen)


def assert_cleaned_up(repo, tmpdir):
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert not [p for p in tmpdir.iterdir() if p.name.startswith("harness-bisect-")]


# the toy: a build that fails while BROKEN exists, a measurement that prints speed.txt
FAKE_BUILD = "{python} -c \"import os, sys; sys.exit(os.path.exists('BROKEN'))\""
FAKE_MEASURE = "{python} -c \"print(open('speed.txt').read())\""


@pytest.fixture
def toy(tmp_path):
    repo = tmp_path / "toy"
    repo.mkdir()
    git(repo, "init", "-q")
    c = {"base": commit(repo, "base", {"speed.txt": "100"})}
    c["filler1"] = commit(repo, "filler one", {"speed.txt": "98"})
    c["filler1b"] = commit(repo, "filler one b", {"notes.txt": "y"})
    c["break"] = commit(repo, "break the build", {"BROKEN": ""})
    c["fix"] = commit(repo, "fix the build", remove=["BROKEN"])
    c["slow"] = commit(repo, "planted slowdown", {"speed.txt": "50"})
    c["filler2"] = commit(repo, "filler two", {"speed.txt": "51", "notes.txt": "x"})
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return repo, c, tmpdir


# a noisy measurement: speed.txt (or the file named in argv[1]) times the next factor of NOISE, counted
# across processes in a file beside the script
NOISY = """import pathlib, sys
NOISE = {noise!r}
count = pathlib.Path(__file__).with_suffix(".count")
k = int(count.read_text()) if count.exists() else 0
count.write_text(str(k + 1))
print(float(open(sys.argv[1] if len(sys.argv) > 1 else "speed.txt").read()) * NOISE[min(k, len(NOISE) - 1)])
"""


def noisy_command(tmp_path, noise, *args):
    script = tmp_path / "noisy_measure.py"
    script.write_text(NOISY.format(noise=list(noise)))
    return " ".join(["{python}", str(script), *args])


def toy_bisect(toy, good, bad, *extra):
    repo, c, tmpdir = toy
    return bisect(repo, "--good", c[good], "--bad", c[bad], "--command", FAKE_MEASURE,
                  "--build-command", FAKE_BUILD, *extra, tmpdir=tmpdir)


def test_bisect_names_the_planted_commit_and_skips_the_unbuildable_one(toy):
    repo, c, tmpdir = toy
    r = toy_bisect(toy, "base", "filler2")
    assert r.returncode == 0, r.stderr
    assert f"first bad commit: {c['slow']} planted slowdown" in r.stdout
    assert "build failed" in r.stdout and c["break"][:12] in r.stdout
    assert "100.00 t/s" in r.stdout and "50.00 t/s (0.50x)" in r.stdout
    assert_cleaned_up(repo, tmpdir)


def test_bisect_exits_1_when_the_bad_commit_is_not_slower(toy):
    r = toy_bisect(toy, "base", "fix")
    assert r.returncode == 1
    assert "not slower than the good one by more than 5%" in r.stdout and "0.98x" in r.stdout
    # a larger threshold hides the planted fall too
    r = toy_bisect(toy, "base", "filler2", "--threshold", "60%")
    assert r.returncode == 1 and "nothing to find" in r.stdout


def test_bisect_exits_1_when_a_skipped_commit_hides_the_culprit(toy):
    repo, c, tmpdir = toy
    commit(repo, "break again and slow down", {"BROKEN": "", "speed.txt": "20"})
    last = commit(repo, "fix again", remove=["BROKEN"])
    r = bisect(repo, "--good", c["filler2"], "--bad", last, "--command", FAKE_MEASURE,
               "--build-command", FAKE_BUILD, tmpdir=tmpdir)
    assert r.returncode == 1
    assert "cannot isolate the first bad commit" in r.stdout
    assert "break again and slow down" in r.stdout.split("it is one of:")[1]
    assert_cleaned_up(repo, tmpdir)


def test_bisect_exits_1_when_the_good_commit_does_not_build(toy):
    r = toy_bisect(toy, "break", "filler2")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"harness: error: the good commit {toy[1]['break'][:12]} cannot be measured: build failed: (no output)"]
    assert_cleaned_up(toy[0], toy[2])


def test_bisect_does_not_blame_a_readme_only_commit_for_one_low_figure(tmp_path):
    """Issue 15 item 9: a README-only commit between good and a 10% slowdown; the good commit's first
    figure is 6% high. One figure per commit puts the README commit at 0.94x and blames it; interleaved
    rounds put every round of it near 1.0x and find the slowdown."""
    repo = tmp_path / "noisy"
    repo.mkdir()
    git(repo, "init", "-q")
    good = commit(repo, "base", {"speed.txt": "100", "README.md": "# toy\n"})
    readme = commit(repo, "README: wording", {"README.md": "# toy, reworded\n"})
    slow = commit(repo, "ten percent slower", {"speed.txt": "90"})
    bad = commit(repo, "filler", {"notes.txt": "x"})
    noise = [1.06] + [1.01, 0.99, 1.0, 1.02, 0.98, 1.0] * 10
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    r = bisect(repo, "--good", good, "--bad", bad, "--command", noisy_command(tmp_path, noise),
               "--build-command", "", tmpdir=tmpdir)
    assert f"first bad commit: {slow} ten percent slower" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0
    readme_step = next(ln for ln in r.stdout.splitlines() if readme[:12] in ln and "step" in ln)
    assert readme_step.split()[6:8] == ["good", "README:"], r.stdout
    assert "rounds commit/good: 0.858 0.909;" in r.stdout          # the bad end: good 106 then 99, bad 90.9 then 90
    assert "re-check" in r.stdout and "rounds commit/parent:" in r.stdout
    assert_cleaned_up(repo, tmpdir)


def test_bisect_exits_1_when_the_culprit_changes_only_docs(tmp_path):
    repo = tmp_path / "docs"
    repo.mkdir()
    git(repo, "init", "-q")
    good = commit(repo, "base", {"docs/speed.md": "100"})
    culprit = commit(repo, "docs: a lower figure", {"docs/speed.md": "80"})
    bad = commit(repo, "filler", {"notes.txt": "x"})
    r = bisect(repo, "--good", good, "--bad", bad, "--command", noisy_command(tmp_path, [1.0], "docs/speed.md"),
               "--build-command", "", tmpdir=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert (f"culprit {culprit[:12]} changes only docs/speed.md; the regression is below the noise floor of 0.0%"
            in r.stdout)
    assert "first bad commit" not in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--good", "nosuchrev", "--bad", "HEAD"], "'nosuchrev' is not a commit"),
    (["--good", "HEAD", "--bad", "HEAD~3"], "is not an ancestor of the bad commit"),
    (["--good", "HEAD", "--bad", "HEAD"], "the good and bad commits are the same commit"),
    (["--good", "HEAD~1", "--bad", "HEAD", "--threshold", "abc"], "threshold must be a percentage"),
    (["--good", "HEAD~1", "--bad", "HEAD", "--metric", "tg128", "-n", "8"], "needs -n 128"),
    (["--good", "HEAD~1", "--bad", "HEAD"], "give a MODEL path or --preset"),
    (["--good", "HEAD~1", "--bad", "HEAD", "/no/such.gguf"], "does not exist"),
    (["--good", "HEAD~1", "--bad", "HEAD", "--command", "echo {nope}", "--build-command", ""],
     "unknown placeholder {nope}"),
    (["--good", "HEAD~1", "--bad", "HEAD", "--command", "echo 1", "--min-rounds", "1"], "--min-rounds must be >= 2"),
    (["--good", "HEAD~1", "--bad", "HEAD", "--command", "echo 1", "--max-rounds", "1"], "--max-rounds must be >="),
    (["--good", "HEAD~1", "--bad", "HEAD", "--command", "echo 1", "--time-budget", "0"], "--time-budget must be"),
    (["--good", "HEAD~1", "--bad", "HEAD", "--command", "echo 1", "--undecided", "coin"], "invalid choice"),
])
def test_bisect_bad_arguments_exit_2_with_one_line(toy, args, message):
    r = bisect(toy[0], *args, tmpdir=toy[2])
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and r.stderr.strip().splitlines()[-1].startswith("harness bisect: error:")


def test_bisect_outside_a_git_repository_exits_2(tmp_path):
    r = bisect(tmp_path, "--good", "a", "--bad", "b")
    assert r.returncode == 2 and "is not inside a git repository" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_bisect_removes_its_worktrees_when_interrupted(toy, tmp_path, sig):
    repo, c, tmpdir = toy
    mark = tmp_path / "measuring"
    hang = f"{{python}} -c \"import pathlib, time; pathlib.Path({str(mark)!r}).touch(); time.sleep(60)\""
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    p = subprocess.Popen([sys.executable, "-m", "harness.cli", "bisect", "--repo", str(repo), "--good", c["base"],
                          "--bad", c["filler2"], "--command", hang, "--build-command", ""],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=sigint_default)
    deadline = time.monotonic() + 30
    while not mark.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert mark.exists(), p.communicate()
    # the good commit's worktree (kept for the whole run) and the step's commit's are live
    assert len(git(repo, "worktree", "list").splitlines()) == 3
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "interrupted" in err
    assert_cleaned_up(repo, tmpdir)


# ----------------------------------------------------------------------------
# copies of this project with a planted slowdown in Session.decode_top1

def test_bisect_of_this_project_with_its_own_bench_finds_a_planted_sleep(tmp_path, tiny_model_path):
    """The default measurement (each commit's own `harness bench`); the build copies this tree's
    extension (the planted change is Python only), so it stays fast."""
    from harness import _native
    repo = project_copy(tmp_path / "proj")
    good = git(repo, "rev-parse", "HEAD")
    commit(repo, "filler one", {"NOTES.txt": "1"})
    planted = plant_sleep(repo)
    bad = commit(repo, "filler two", {"NOTES.txt": "2"})
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    r = bisect(repo, tiny_model_path, "--good", good, "--bad", bad, "-n", "16", "-r", "3", "-t", "1",
               "--threshold", "50%", "--build-command", f"cp {_native.__file__} harness/", tmpdir=tmpdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"first bad commit: {planted} planted slowdown in Session.decode" in r.stdout
    assert_cleaned_up(repo, tmpdir)


@pytest.mark.slow
def test_bisect_of_this_project_builds_each_commit_and_skips_a_c_syntax_error(tmp_path, tiny_model_path):
    """Everything real: `python setup.py build_ext --inplace` per commit, `harness bench` per commit."""
    repo = project_copy(tmp_path / "proj")
    good = git(repo, "rev-parse", "HEAD")
    cpu = repo / "native" / "src" / "cpu.c"
    commit(repo, "filler one", {"NOTES.txt": "1"})
    commit(repo, "filler two", {"NOTES.txt": "2"})      # so that the first probe lands on the broken commit
    broken = commit(repo, "C syntax error", {"native/src/cpu.c": cpu.read_text() + "\nint broken(\n"})
    commit(repo, "fix the C syntax error", {"native/src/cpu.c": cpu.read_text().replace("\nint broken(\n", "")})
    planted = plant_sleep(repo)
    bad = commit(repo, "filler three", {"NOTES.txt": "3"})
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    r = bisect(repo, tiny_model_path, "--good", good, "--bad", bad, "-n", "16", "-r", "3", "-t", "1",
               "--threshold", "50%", tmpdir=tmpdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"first bad commit: {planted} planted slowdown in Session.decode" in r.stdout
    assert broken[:12] in r.stdout and "build failed" in r.stdout
    assert_cleaned_up(repo, tmpdir)

"""harness bisect: the search, the parsing, and whole runs on throwaway git repositories
(a toy one with a fake build and measurement, and copies of this project with a planted slowdown)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.measure.bisect import (BisectError, Metric, SearchState, classify, expand, metric_value, parse_metric,
                            parse_threshold, resolve_lengths, search)
from harness.errors import UsageError
from support.project_repo import commit, git, plant_sleep, project_copy


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
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not mark.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert mark.exists(), p.communicate()
    assert len(git(repo, "worktree", "list").splitlines()) == 2      # the step's worktree is live
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

"""Bad argument values on the command line (issue 15): every one, whether argparse or a later check
finds it, is one line on stderr and exit status 2; more threads than CPUs is refused unless --force;
a results directory or baseline that is not there is named as such."""
import os

import pytest

from harness.cli.main import main
from support.paths import ROOT

LLAMA_JSON = str(ROOT / "reports" / "comparisons" / "2026-11-23-llama.cpp-0.8b" / "llama-q8_0-1.json")
NO_MODEL = "/nonexistent/model.gguf"
CPUS = len(os.sched_getaffinity(0))


def status(capsys, *argv):
    """(exit status, stderr lines) of `harness ARGV` run in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:          # argparse
        code = e.code
    return code, capsys.readouterr().err.strip().splitlines()


def _one_line(code, err, *parts):
    assert code == 2, (code, err)
    assert len(err) == 1, err
    assert "error:" in err[0] and "Traceback" not in err[0] and "internal error" not in err[0], err
    for p in parts:
        assert p in err[0], (p, err[0])


SWEEP = ["sweep", "--preset", "tiny", "--quant", "q8_0", "--pp", "4", "--tg", "0", "-r", "1"]


@pytest.mark.parametrize("argv,parts", [
    # bench
    (["bench", NO_MODEL, "-p", "-5"], ["-p/--n-prompt", "-5"]),
    (["bench", NO_MODEL, "-n", "-1"], ["-n/--n-gen", "-1"]),
    (["bench", NO_MODEL, "-t", "0"], ["-t/--threads", ">= 1"]),
    (["bench", NO_MODEL, "--ubatch", "0"], ["--ubatch", ">= 1"]),
    (["bench", NO_MODEL, "-r", "0"], ["-r/--repetitions", ">= 1"]),
    (["bench", NO_MODEL, "-d", "-3"], ["-d/--depth", "-3"]),
    (["bench", NO_MODEL, "--fdn", "-1"], ["--fdn", ">= 0"]),
    (["bench", NO_MODEL, "-t", "two"], ["-t/--threads", "'two'"]),
    (["bench", NO_MODEL, "-p", "0", "-n", "0"], ["nothing to measure"]),
    (["bench", NO_MODEL, "--pin", "3-1"], ["--pin", "bad CPU range"]),
    # logits
    (["logits", NO_MODEL, "--tokens", "1", "--out", "x.npy", "-t", "0"], ["-t/--threads"]),
    (["logits", NO_MODEL, "--tokens", "1", "--out", "x.npy", "--ubatch", "-4"], ["--ubatch"]),
    # sweep: grid values found after parsing
    ([*SWEEP, "--ubatch", "8,,16", "-o", "{tmp}/r"], ["ubatch", "empty"]),
    ([*SWEEP, "--spread-limit", "-1", "-o", "{tmp}/r"], ["spread_limit", "-1"]),
    ([*SWEEP, "--spread-limit", "0%", "-o", "{tmp}/r"], ["spread_limit"]),
    ([*SWEEP, "--fdn", "0,abc", "-o", "{tmp}/r"], ["fdn: expected an integer, got 'abc'"]),
    ([*SWEEP, "--vocab-strategy", "full,subset:x", "-o", "{tmp}/r"], ["subset needs a positive count"]),
    ([*SWEEP, "-t", "0", "-o", "{tmp}/r"], ["threads: must be >= 1, got 0"]),
    # results --filter
    (["results", LLAMA_JSON, "--filter", "nonsense"], ["filter 'nonsense'", "KEY=VALUE"]),
    (["results", LLAMA_JSON, "--filter", "nosuch=1"], ["no column 'nosuch'"]),
    (["results", LLAMA_JSON, "--filter", "n_threads=abc"], ["n_threads is numeric"]),
    # vocab-bench and quality
    (["vocab-bench", NO_MODEL, "-n", "0"], ["-n/--n-gen"]),
    (["vocab-bench", NO_MODEL, "-r", "0"], ["-r/--repetitions"]),
    (["vocab-bench", NO_MODEL, "-t", "-2"], ["-t/--threads"]),
    (["vocab-bench", NO_MODEL, "-s", "full,subset:x"], ["-s/--strategies", "subset needs a positive count"]),
    (["quality", NO_MODEL, "-k", "0"], ["-k", ">= 1"]),
    (["quality", NO_MODEL, "-n", "0"], ["-n/--n-tokens"]),
    (["quality", NO_MODEL, "--seed", "-1"], ["--seed"]),
    (["quality", "--preset", "tiny", "--head-low-rank", "0:0.02"], ["--head-low-rank", "RANK"]),
    # demo, synth, compare, report
    (["demo", "-n", "0", "-o", "{tmp}/d"], ["-n/--n-tokens"]),
    (["demo", "-t", "0", "-o", "{tmp}/d"], ["-t/--threads"]),
    (["demo", "--quant", "q8_0,q9", "-o", "{tmp}/d"], ["--quant", "'q9'"]),
    (["synth", "--preset", "tiny", "--quant", "q8_0", "-o", "{tmp}/x.gguf", "-t", "0"], ["-t/--threads"]),
    (["synth", "--preset", "tiny", "--quant", "q8_0", "-o", "{tmp}/x.gguf", "--seed", "-1"], ["--seed"]),
    (["synth", "--preset", "tiny", "--quant", "q8_0", "-o", "{tmp}/x.gguf", "--layers", "0"], ["--layers"]),
    (["compare", LLAMA_JSON, LLAMA_JSON, "--threshold", "x%"], ["threshold"]),
    (["compare", LLAMA_JSON, LLAMA_JSON, "--seed", "-1"], ["--seed"]),
    (["report", LLAMA_JSON, "-o", "{tmp}/rep", "--threshold", "200%"], ["threshold"]),
])
def test_every_bad_argument_value_is_one_line_and_status_2(capsys, tmp_path, synth_dir, argv, parts):
    argv = [a.format(tmp=tmp_path) for a in argv]
    _one_line(*status(capsys, *argv), *parts)
    assert not (tmp_path / "r" / "results.csv").exists()


def test_argparse_errors_are_one_line_naming_the_command(capsys):
    code, err = status(capsys, "bench", NO_MODEL, "--isa", "sse9")
    _one_line(code, err, "harness bench: error: argument --isa: invalid choice: 'sse9'")


# ----------------------------------------------------------------------------
# threads beyond the CPUs this process may use

TOO_MANY = CPUS + 1


@pytest.mark.parametrize("argv", [
    ["bench", NO_MODEL, "-t", TOO_MANY],
    ["logits", NO_MODEL, "--tokens", "1", "--out", "x.npy", "--threads", TOO_MANY],
    ["vocab-bench", NO_MODEL, "-t", TOO_MANY],
    ["quality", NO_MODEL, "-t", TOO_MANY],
    ["demo", "-t", TOO_MANY, "-o", "{tmp}/d"],
    [*SWEEP, "-t", f"1,{TOO_MANY}", "-o", "{tmp}/r"],
])
def test_more_threads_than_cpus_is_refused_without_force(capsys, tmp_path, synth_dir, argv):
    argv = [str(a).format(tmp=tmp_path) for a in argv]
    code, err = status(capsys, *argv)
    _one_line(code, err, f"{TOO_MANY} threads", f"{CPUS} CPU", "--force")
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("argv", [
    ["bench", NO_MODEL, "-t", TOO_MANY, "--force"],
    ["logits", NO_MODEL, "--tokens", "1", "--out", "x.npy", "--threads", TOO_MANY, "--force"],
    ["vocab-bench", NO_MODEL, "-t", TOO_MANY, "--force"],
    ["quality", NO_MODEL, "-t", TOO_MANY, "--force"],
])
def test_force_runs_anyway_with_a_warning(capsys, argv):
    code, err = status(capsys, *argv)
    # the warning, then the run goes on (and stops at the missing model file, status 1)
    assert code == 1 and len(err) == 2, err
    assert err[0].startswith("harness: warning:") and f"{TOO_MANY} threads" in err[0] and f"{CPUS} CPU" in err[0]
    assert "model.gguf" in err[1]


def test_force_sweep_warns_once_and_goes_on(capsys, tmp_path, synth_dir):
    out = tmp_path / "r"
    out.mkdir()
    (out / "results.csv").write_text("config_id,test\n1,2\n")     # damaged: the sweep stops there
    code, err = status(capsys, *SWEEP, "-t", TOO_MANY, "--force", "--resume", "-o", out)
    assert code == 1 and len(err) == 2, err
    assert err[0].startswith("harness: warning:") and f"{TOO_MANY} threads" in err[0]
    assert "missing column(s)" in err[1]


def test_the_default_thread_count_only_warns_on_a_smaller_machine(capsys, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    code, err = status(capsys, "bench", NO_MODEL)
    assert code == 1 and len(err) == 2, err
    assert err[0].startswith("harness: warning:") and "2 threads" in err[0] and "1 CPU" in err[0]
    code, err = status(capsys, "bench", NO_MODEL, "-t", "2")      # asked for explicitly: refused
    _one_line(code, err, "2 threads", "1 CPU")


def test_pinned_cpus_are_the_ones_available(capsys):
    code, err = status(capsys, "bench", NO_MODEL, "--pin", "0", "-t", "2")
    _one_line(code, err, "2 threads", "1 CPU")


# ----------------------------------------------------------------------------
# report / compare: a missing results directory is called that

def test_a_missing_results_directory_is_named(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_BASELINES", str(tmp_path / "baselines"))
    monkeypatch.chdir(tmp_path)
    code, err = status(capsys, "report", "nonexist_dir", "-o", "r")
    # a name a baseline could have: both readings are named
    _one_line(code, err, "no such results directory: nonexist_dir", "no baseline 'nonexist_dir' for this machine")
    code, err = status(capsys, "report", "some/where", "-o", "r")
    _one_line(code, err, "no such results directory: some/where")
    assert "baseline" not in err[0]
    code, err = status(capsys, "compare", "results-old", LLAMA_JSON)
    _one_line(code, err, "no such results directory: results-old", "no baseline 'results-old'")
    code, err = status(capsys, "report", LLAMA_JSON, "-o", "r", "--baseline", "a b")
    _one_line(code, err, "no such results directory: a b")
    assert not (tmp_path / "r").exists()


def test_bisect_refuses_more_threads_than_cpus_for_every_commit(capsys):
    """Each commit's own `harness bench` measures: newer ones refuse -t beyond the CPUs, older ones know no
    --force, so bisect refuses it itself (before any worktree is made)."""
    code, err = status(capsys, "bisect", "--repo", str(ROOT), "--good", "HEAD~1", "--bad", "HEAD", "--preset", "tiny",
                       "-n", "4", "-t", CPUS + 1)
    _one_line(code, err, f"-t {CPUS + 1} is more than the {CPUS} CPUs available")

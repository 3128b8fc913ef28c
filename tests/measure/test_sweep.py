"""`harness sweep` and `harness results`: the grid from flags or TOML, checks before any timing, one row
per configuration written as soon as it is measured, a sweep killed with SIGKILL loses nothing that
was finished and --resume completes it, one writer per directory, damaged files named and kept."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from harness.atomic import DirLock
from harness.cli.main import main
from harness.errors import UsageError
from harness.measure.grid import ModelSource, build_grid, merge, read_toml
from harness.store.results import load_results
from support.paths import ROOT
from support.signals import sigint_default


def run(*args, timeout=300):
    r = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


ISSUE_ARGS = ["--preset", "tiny", "--quant", "q8_0,q4_k_m", "--fdn", "0,16", "--pp", "32", "--tg", "8", "-r", "2"]


# ----------------------------------------------------------------------------
# the grid

def _wait_for_first_row(proc, results, seconds: float) -> None:
    """Until the sweep in proc has written its first result row (or ended, or the time is up)."""
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and len(results.read_text().splitlines()) >= 2:
            return
        time.sleep(0.01)


def test_the_issue_grid_has_four_points_of_two_tests():
    g = build_grid({"preset": "tiny", "quant": "q8_0,q4_k_m", "fdn": "0,16", "pp": "32", "tg": "8",
                    "repetitions": "2"})
    assert g.models == [ModelSource(preset="tiny", quant="q8_0"), ModelSource(preset="tiny", quant="q4_k_m")]
    assert g.fdn == [0, 16] and g.tests() == [(32, 0), (0, 8)] and g.repetitions == 2
    pts = g.points()
    assert len(pts) == 4 and g.size == 8
    assert [(m.quant, c.fdn_threshold) for m, c in pts] == [("q8_0", 0), ("q8_0", 16), ("q4_k_m", 0), ("q4_k_m", 16)]
    assert all(c.threads == 2 and c.ubatch == 512 and c.isa == "auto" and c.vocab_strategy == "full"
               and c.n_depth == 0 for _, c in pts)


def test_toml_takes_the_same_keys_and_flags_win(tmp_path):
    f = tmp_path / "grid.toml"
    f.write_text('preset = "tiny"\nquant = ["q8_0", "q4_k_m"]\nfdn = [0, 16]\npp = 32\ntg = 8\n'
                 'repetitions = 2\n"vocab-strategy" = "full"\ndepth = [0, 64]\nubatch = "4,512"\noutput = "x"\n')
    values = read_toml(str(f))
    g = build_grid(values, str(f))
    assert len(g.points()) == 2 * 2 * 2 * 2 and g.depth == [0, 64] and g.ubatch == [4, 512]
    g2 = build_grid(merge(values, {"fdn": "512", "quant": None, "spread_limit": "10%"}), str(f))
    assert g2.fdn == [512] and len(g2.models) == 2 and g2.spread_limit == pytest.approx(0.10)


@pytest.mark.parametrize("values,message", [
    ({"preset": "tiny", "fdn": "0,x"}, "fdn: expected an integer, got 'x'"),
    ({"preset": "tiny", "threads": "0"}, "threads: must be >= 1, got 0"),
    ({"preset": "tiny", "isa": "sse9"}, "isa: 'sse9' is not one of auto, scalar"),
    ({"quant": "q8_0"}, "quant applies to synthetic presets"),
    ({}, "no models"),
    ({"model": "/no/such.gguf"}, "model file '/no/such.gguf' does not exist"),
    ({"preset": "tiny", "pp": "0", "tg": "0"}, "nothing to measure"),
    ({"preset": "tiny", "repetitions": "2,3"}, "repetitions takes one value"),
    ({"preset": "tiny", "pin": "3-1"}, "bad CPU range"),
])
def test_bad_grids_are_named(values, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_grid(values)


def test_unknown_toml_key_names_the_file(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('preset = "tiny"\nfdm = [0]\n')
    with pytest.raises(UsageError, match=f"{f}: unknown key 'fdm'"):
        read_toml(str(f))
    f.write_text("preset = [\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        read_toml(str(f))


# ----------------------------------------------------------------------------
# running

def test_the_issue_command_fills_a_results_directory(synth_dir, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["sweep", *ISSUE_ARGS, "-o", str(out)]) == 0
    cap = capsys.readouterr()
    assert "8 measured, 0 already there, 8 configurations" in cap.out
    assert "[1/8] tiny-q8_0" in cap.err and "[8/8] tiny-q4_k_m" in cap.err and "ETA" in cap.err
    rs = load_results(out)
    f = rs.frame
    assert len(f) == 8 and f["config_id"].is_unique
    assert sorted(set(f["test"])) == ["pp32", "tg8"] and set(f["quant"]) == {"q8_0", "q4_k_m"}
    assert set(f["fdn_threshold"]) == {0, 16} and set(f["model"]) == {"tiny-q8_0", "tiny-q4_k_m"}
    assert all(len(s) == 2 for s in f["samples_ts"]) and (f["median_ts"] > 0).all()
    assert (f["ms_per_token"] - 1000 / f["median_ts"]).abs().max() < 1e-9
    tg = f[f["test"] == "tg8"]
    assert (tg["weight_gbps"] > 0).all() and (tg["bandwidth_fraction"] > 0).all()
    assert f["weight_gbps"][f["test"] == "pp32"].isna().all()
    assert (f["peak_rss_bytes"] > 0).all() and set(f["engine"]) == {"qwen35-harness"}
    # every measurement has its profiled run, keyed by config id
    assert set(rs.profile["config_id"]) == set(f["config_id"])
    assert (rs.profile.groupby("config_id")["ns"].sum() > 0).all()
    p = rs.provenance
    for k in ("commit", "dirty", "version", "compiler", "isa_supported", "cpu_model", "cpu_flags", "cpu_count",
              "os", "python", "numpy", "machine_read_bandwidth", "models", "peak_rss_method"):
        assert k in p, k
    assert set(p["models"]) == set(f["model_hash"])
    # harness results lists and filters them
    assert main(["results", str(out), "--filter", "test=tg8", "--filter", "quant=q8_0", "-o", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 2 and {r["fdn_threshold"] for r in recs} == {0, 16}
    assert main(["results", str(out), "--filter", "fdn_threshold!=0"]) == 0
    assert "4 of 8 rows match fdn_threshold!=0" in capsys.readouterr().out


def test_a_sweep_killed_mid_run_keeps_what_it_finished_and_resume_completes_it(synth_dir, tmp_path, capsys):
    out = tmp_path / "r"
    args = ["sweep", "--preset", "tiny", "--quant", "q8_0", "--fdn", "0,1,2,3,4,5", "--pp", "16", "--tg", "16",
            "-r", "3", "-t", "1", "--no-profile", "-o", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_for_first_row(proc, out / "results.csv", 240)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed = load_results(out).frame
    assert 1 <= len(killed) < 12
    assert all(len(s) == 3 for s in killed["samples_ts"])
    assert (out / ".lock").exists()                 # left behind by the killed process

    assert main(["sweep", *args[1:], "--resume"]) == 0
    cap = capsys.readouterr()
    assert f"resume: {len(killed)} of 12 configurations already in" in cap.err
    assert "took over the lock" in cap.err
    assert f"{12 - len(killed)} measured, {len(killed)} already there" in cap.out
    done = load_results(out).frame
    assert len(done) == 12 and done["config_id"].is_unique
    # what the killed run finished is kept as it was
    before = killed.set_index("config_id")["samples_ts"].to_dict()
    after = done.set_index("config_id")["samples_ts"].to_dict()
    assert all(after[k] == v for k, v in before.items())
    assert not (out / ".lock").exists()

    assert main(["sweep", *args[1:], "--resume"]) == 0           # nothing left to do
    assert "0 measured, 12 already there" in capsys.readouterr().out


def test_ctrl_c_keeps_what_was_measured_and_prints_the_resume_command(synth_dir, tmp_path, capsys):
    """SIGINT (Ctrl-C) after the first configuration is written: exit 130, and stderr's last line is
    the same command plus --resume, shell-quoted, which then measures only the rest."""
    import shlex
    out = tmp_path / "my results"                     # a space: the printed command must quote it
    # each tg512 configuration takes about a second even on a fast CPU, so the sweep cannot finish
    # between its first row and the signal, even when this process is kept off the CPU for a while
    args = ["sweep", "--preset", "tiny", "--quant", "q8_0", "--fdn", "0,1,2", "--pp", "16", "--tg", "512",
            "-r", "3", "-t", "1", "--no-profile", "-o", str(out)]
    assert main(["sweep", "--preset", "tiny", "--quant", "q8_0", "--pp", "4", "--tg", "0", "-r", "1", "-t", "1",
                 "--no-profile", "-o", str(tmp_path / "warm")]) == 0
    capsys.readouterr()                               # the model is made and cached before the timing
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    try:
        _wait_for_first_row(proc, out / "results.csv", 60)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("harness: interrupted") and str(out) in last, last
    command = last.split("continue with: ", 1)[1]
    assert command == "harness " + shlex.join([*args, "--resume"])
    kept = load_results(out).frame
    assert 1 <= len(kept) < 6 and not (out / ".lock").exists()

    argv = shlex.split(command)
    assert argv[0] == "harness" and main(argv[1:]) == 0
    assert f"{6 - len(kept)} measured, {len(kept)} already there" in capsys.readouterr().out
    assert len(load_results(out).frame) == 6


def test_a_second_sweep_into_a_busy_directory_fails_clearly(synth_dir, tmp_path):
    out = tmp_path / "r"
    with DirLock(out):
        code, _, err = run("sweep", "--preset", "tiny", "--quant", "q8_0", "--pp", "4", "--tg", "0", "-r", "1",
                           "-o", str(out))
    assert code == 1 and "being written by another process (pid" in err
    assert len(err.strip().splitlines()) == 1


def test_a_damaged_results_file_stops_the_sweep_and_is_kept(synth_dir, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "results.csv").write_text("config_id,test\n1,2\n")
    code, _, err = run("sweep", "--preset", "tiny", "--quant", "q8_0", "--pp", "4", "--tg", "0", "-r", "1",
                       "-o", str(out), "--resume")
    assert code == 1 and f"{out / 'results.csv'}: missing column(s)" in err
    assert (out / "results.csv").read_text() == "config_id,test\n1,2\n"


def test_a_directory_with_results_needs_resume(synth_dir, tmp_path, capsys):
    out = tmp_path / "r"
    base = ["sweep", "--preset", "tiny", "--quant", "q8_0", "--pp", "4", "--tg", "0", "-r", "1", "--no-profile",
            "-o", str(out)]
    assert main(base) == 0
    assert main(base) == 1
    assert "already holds 1 result(s); use --resume" in capsys.readouterr().err


@pytest.mark.parametrize("extra,status,message", [
    (["--isa", "avx512"], 1, "this CPU cannot run the 'avx512' variant"),
    (["--vocab-strategy", "subset:x"], 2, "subset needs a positive count or @FILE, got 'subset:x'"),
    (["--fdn", "a"], 2, "fdn: expected an integer"),
    (["--pin", "4096"], 1, "pin: CPU(s) [4096] are not available"),
    ([], 2, "give the results directory with -o DIR"),
])
def test_problems_are_found_before_anything_is_measured(synth_dir, tmp_path, extra, status, message):
    import harness.native as hn
    if "avx512" in extra and "avx512" in hn.cpu_features()["supported"]:
        pytest.skip("this CPU runs AVX512")
    out = tmp_path / "r"
    o = ["-o", str(out)] if message != "give the results directory with -o DIR" else []
    code, _, err = run("sweep", "--preset", "tiny", "--quant", "q8_0", "--pp", "4", "--tg", "0", "-r", "1",
                       *extra, *o)
    assert code == status and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (out / "results.csv").exists() or load_results(out).frame.empty


def test_results_reads_llama_bench_json_and_rejects_bad_filters(capsys):
    root = ROOT
    llama = root / "reports" / "comparisons" / "2026-11-23-llama.cpp-0.8b" / "llama-q8_0-1.json"
    assert main(["results", str(llama), "-o", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["test"] for r in recs] == ["pp512", "tg128"] and {r["engine"] for r in recs} == {"llama.cpp"}
    code, _, err = run("results", str(llama), "--filter", "nosuch=1")
    assert code == 2 and "no column 'nosuch'" in err and len(err.strip().splitlines()) == 1


def test_sweep_quality_writes_one_row_per_model_and_strategy(synth_dir, tmp_path):
    """--quality N: accuracy against the F32 twin with the full head, per (model, vocab strategy);
    the exact top-1 strategy (argmax) agrees with full on top-1 and has no distribution (no KL)."""
    from harness.store.results import load_results
    out = tmp_path / "q"
    code, _, err = run("sweep", "--preset", "tiny", "--quant", "q8_0", "--vocab-strategy", "full,argmax",
                       "--pp", "8", "--tg", "0", "-r", "1", "--no-profile", "--quality", "32", "-o", str(out))
    assert code == 0, err
    q = load_results(out).quality.set_index("vocab_strategy")
    assert sorted(q.index) == ["argmax", "full"] and (q.n_positions == 32).all()
    assert 0 < q.loc["full", "kl_mean"] < 1 and q.loc["full", "reference"] == "synth-tiny-f32-s0.gguf"
    assert q.loc["argmax", "top1_agreement"] == q.loc["full", "top1_agreement"]
    assert np.isnan(q.loc["argmax", "kl_mean"])

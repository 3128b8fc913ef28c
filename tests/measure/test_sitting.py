"""Side-by-side sittings: `harness bench -o json` records keep their engine when read back, so
`harness compare llama.json ours.json` pairs them with llama-bench's; reports/comparisons/run_sitting.sh
interleaves a peer's llama-bench and ours on the same files and tables the result; the stored sittings
still give the figures their READMEs state."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from harness.cli.main import main
from harness.store.results import load_results
from support.paths import ROOT

SITTING = ROOT / "reports" / "comparisons" / "2026-11-23-session3-final-llama.cpp-0.8b"
SCRIPT = ROOT / "reports" / "comparisons" / "run_sitting.sh"

# a stand-in for llama-bench: the arguments it was given, and llama-bench's JSON for them (100 t/s)
FAKE_LLAMA_BENCH = textwrap.dedent("""\
    #!{python}
    import json, sys
    a = sys.argv[1:]
    val = lambda flag, d: a[a.index(flag) + 1] if flag in a else d
    m, p, n, r, t = val("-m", ""), int(val("-p", 512)), int(val("-n", 128)), int(val("-r", 5)), int(val("-t", 4))
    open({log!r}, "a").write(" ".join(a) + "\\n")
    recs = []
    for np_, ng in ((p, 0), (0, n)):
        if np_ or ng:
            recs.append(dict(build_commit="abc1234", build_number=1, cpu_info="fake", model_filename=m,
                             model_type="qwen35 ?B Q4_K - Medium", model_size=1, n_threads=t, n_ubatch=512,
                             n_prompt=np_, n_gen=ng, n_depth=0, avg_ts=100.0, stddev_ts=0.0,
                             samples_ts=[100.0] * r, samples_ns=[1] * r, test_time="2026-01-01T00:00:00Z"))
    print(json.dumps(recs))
""")


def test_our_bench_json_keeps_its_engine_and_pairs_with_llama_bench(tmp_path, capsys):
    ours = load_results(SITTING / "ours-q8_0-1.json").frame
    assert set(ours["engine"]) == {"qwen35-harness"}
    assert set(ours["isa"]) == {"avx2"} and set(ours["commit"].str[:7]) == {"ce4947f"}
    llama = load_results(SITTING / "llama-q8_0-1.json").frame
    assert set(llama["engine"]) == {"llama.cpp"}
    rc = main(["compare", str(SITTING / "llama-q8_0-1.json"), str(SITTING / "ours-q8_0-1.json"), "--format", "csv"])
    table = capsys.readouterr().out
    assert rc == 0
    import io

    import pandas as pd
    t = pd.read_csv(io.StringIO(table)).set_index("test")
    assert list(t.index) == ["pp512", "tg128"]
    assert set(t["engine_base"]) == {"llama.cpp"} and set(t["engine_new"]) == {"qwen35-harness"}
    # the first round's medians as the stored JSON has them: 106.35 / 119.47 and 23.40 / 29.95 t/s
    assert t.loc["pp512", "ratio"] == pytest.approx(119.47 / 106.35, abs=0.002)
    assert t.loc["tg128", "ratio"] == pytest.approx(29.95 / 23.40, abs=0.002)


def test_comma_lists_pool_the_rounds_of_a_sitting_into_the_readmes_table(capsys):
    llama = ",".join(str(p) for p in sorted(SITTING.glob("llama-*.json")))
    ours = ",".join(str(p) for p in sorted(SITTING.glob("ours-*.json")))
    assert main(["compare", llama, ours, "--format", "csv"]) == 0
    import io

    import pandas as pd
    t = pd.read_csv(io.StringIO(capsys.readouterr().out))
    ratios = {(r.model, r.test): r.ratio for r in t.itertuples()}
    # the README of that sitting: pp512 1.14 / 1.12 / 1.12, tg128 1.13 / 1.37 / 1.21 (bf16, q4_k_m, q8_0),
    # ratios of the pooled medians; compare now takes each file as one run and gives the geometric mean
    # of the runs' ratios, which lies within 0.05 of those
    readme = {("0.8b-bf16", "pp512"): 1.14, ("0.8b-bf16", "tg128"): 1.13,
              ("0.8b-q4_k_m", "pp512"): 1.12, ("0.8b-q4_k_m", "tg128"): 1.37,
              ("0.8b-q8_0", "pp512"): 1.12, ("0.8b-q8_0", "tg128"): 1.21}
    assert ratios.keys() == readme.keys()
    assert all(abs(ratios[k] - readme[k]) < 0.05 for k in readme), ratios
    assert set(t["n_base"]) == {2} and set(t["n_new"]) == {2}     # two runs (files) per side


def test_bench_jsonl_lines_concatenate_into_one_readable_file(tiny_model_path, tmp_path, capsys):
    out = tmp_path / "ours.jsonl"
    for _ in range(2):
        assert main(["bench", tiny_model_path, "-p", "8", "-n", "4", "-r", "2", "-t", "1", "-o", "jsonl"]) == 0
        text = capsys.readouterr().out
        assert all(json.loads(line)["engine"] == "qwen35-harness" for line in text.splitlines())
        with out.open("a") as f:
            f.write(text)
    frame = load_results(out).frame
    assert sorted(frame["test"]) == ["pp8", "pp8", "tg4", "tg4"]
    assert set(frame["engine"]) == {"qwen35-harness"}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_run_sitting_interleaves_the_peer_and_ours_and_tables_them(tiny_model_path, tmp_path):
    log = tmp_path / "peer-calls.txt"
    peer = tmp_path / "llama-bench"
    peer.write_text(FAKE_LLAMA_BENCH.format(python=sys.executable, log=str(log)))
    peer.chmod(0o755)
    model = tmp_path / "tiny.gguf"
    shutil.copy(tiny_model_path, model)
    out = tmp_path / "sitting"
    harness = f"{sys.executable} -m harness.cli"
    r = subprocess.run(["bash", str(SCRIPT), "-b", str(peer), "-o", str(out), "-r", "2", "-a", "-p 8 -n 4 -r 2 -t 1",
                        "-x", "-rtr 1", str(model)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "HARNESS": harness}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.json")) == ["ours-tiny-1.json", "ours-tiny-2.json",
                                                          "peer-tiny-1.json", "peer-tiny-2.json"]
    # the peer got the shared arguments and its own, twice
    assert log.read_text().splitlines() == [f"-m {model} -p 8 -n 4 -r 2 -t 1 -rtr 1 -o json"] * 2
    table = (out / "table.txt").read_text()
    assert "llama.cpp -> qwen35-harness" in table
    assert "pp8" in table and "tg4" in table and "2 configuration(s) compared" in table
    load = (out / "load.txt").read_text()
    assert load.count("== peer tiny round") == 2 and load.count("== ours tiny round") == 2


@pytest.mark.parametrize("args, status, says", [
    ([], 2, "usage"),
    (["-b", "/nonexistent/llama-bench", "-o", "x", "m.gguf"], 1, "is not an executable llama-bench"),
    (["-b", "/bin/true", "-o", "x", "-r", "0", "m.gguf"], 2, "-r must be a positive integer"),
    (["-b", "/bin/true", "-o", "x", "missing.gguf"], 1, "no such model file: missing.gguf"),
])
def test_run_sitting_refuses_bad_arguments(tmp_path, args, status, says):
    r = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == status and says.lower() in r.stderr.lower(), r.stderr


def test_no_script_or_module_carries_one_machines_absolute_paths():
    """Scripts take their binaries and files as arguments; /work/... paths of one machine do not belong in them."""
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "*.sh", "*.py", "*.c", "*.h", "Makefile"],
                             capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    offenders = [f for f in tracked if f != "tests/measure/test_sitting.py" and (ROOT / f).exists()
                 and any(s in (ROOT / f).read_text(errors="replace") for s in ("/work/models", "/work/llama"))]
    assert not offenders, offenders

"""The asv suite runs in the current environment (`asv run --python=same --quick`), so it cannot
rot: every benchmark runs each runnable parameter combination once, none fails, and ISA variants
this CPU cannot run are skipped (n/a), not failed. A slow test checks the other end: `asv find` over
commits of a throwaway copy of this project names the one that planted a slowdown, and another that
`asv run` over a range spanning the move of the package into rooms (harness.model, harness.engine,
harness.measure, ...) measures the commits on both sides with this suite."""
import json
import os
import re
import subprocess
import sys

import pytest

from harness import native
from support.paths import ROOT
from support.project_repo import commit, copy_working_tree, git, plant_sleep, project_copy

sys.path.insert(0, str(ROOT))
from harness.measure.kernel_bench import weight_type  # noqa: E402
from benchmarks.common import FDN_THRESHOLDS, ISAS, QUANTS, VOCAB_STRATEGIES, WEIGHT_TYPES  # noqa: E402
from benchmarks.bench_moe import REPACK  # noqa: E402

BENCHMARKS = ["bench_engine.PromptProcessing.time_pp64", "bench_engine.TokenGeneration.time_tg16",
              "bench_kernels.VecDot.time_vec_dot", "bench_kernels.VecDot4.time_vec_dot4",
              "bench_kernels.Panel.time_panel", "bench_kernels.PackedPanel.time_packed_panel",
              "bench_moe.MoEPromptProcessing.time_pp64", "bench_moe.MoETokenGeneration.time_tg16"]


def _need_asv():
    try:
        import asv  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("asv is not installed (pip install -e '.[test]')")
        pytest.skip("asv is not installed")


def load_conf() -> dict:
    from asv.util import load_json
    return load_json(str(ROOT / "asv.conf.json"), js_comments=True)


def test_asv_conf_builds_once_per_commit_and_keeps_its_files_under_dot_asv():
    _need_asv()
    conf = load_conf()
    assert conf["repo"] == "." and conf["benchmark_dir"] == "benchmarks"
    assert conf["environment_type"] == "virtualenv"
    assert all(conf[k].startswith(".asv/") for k in ("env_dir", "results_dir", "html_dir"))
    assert ".asv/" in (ROOT / ".gitignore").read_text().split()
    # runtime axes are params, not matrix entries: the matrix only names build requirements
    assert set(conf["matrix"]) <= {"req", "env_nobuild"}
    assert "--no-build-isolation" in conf["build_command"][0] and "{build_cache_dir}" in conf["build_command"][0]


def test_asv_quick_run_of_the_whole_suite_in_this_environment(tmp_path):
    _need_asv()
    conf = load_conf()
    conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"), env_dir=str(tmp_path / "env"),
                results_dir=str(tmp_path / "results"), html_dir=str(tmp_path / "html"))
    cfg = tmp_path / "asv.conf.json"
    cfg.write_text(json.dumps(conf))
    # a private HOME for asv's machine file; this tree first on the path (what is benchmarked;
    # asv drops PYTHONPATH from the benchmark processes and passes ASV_PYTHONPATH instead)
    env = {**os.environ, "HOME": str(tmp_path), "ASV_PYTHONPATH": str(ROOT)}
    asv = [sys.executable, "-m", "asv", "--config", str(cfg)]
    r = subprocess.run([*asv, "machine", "--yes", "--machine", "harness-test"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([*asv, "run", "--python=same", "--quick", "--dry-run", "--show-stderr",
                        "--machine", "harness-test"], cwd=tmp_path, env=env, capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for name in BENCHMARKS:
        assert re.search(rf"{re.escape(name)}\s+ok\b", out), f"{name} did not run:\n{out}"
    assert "failed" not in out, out
    # one timing per runnable combination; the other ISA variants, and types without a panel kernel or a
    # repacked product, are n/a
    runnable = [i for i in ISAS if i in native.cpu_features()["supported"]]
    engine = len(QUANTS) * len(FDN_THRESHOLDS) * len(VOCAB_STRATEGIES)
    panels = sum(native.Kernels(i).has_gemm(weight_type(t)) for i in runnable for t in WEIGHT_TYPES)
    packed = sum(native.Kernels(i).has_packed(weight_type(t)) for i in runnable for t in WEIGHT_TYPES)
    packed += sum(native.lib.q35_kernels_for(native.ISAS[i]).gemm_packed2[int(weight_type(t))] != native.ffi.NULL
                  for i in runnable for t in WEIGHT_TYPES)   # two groups at once (gemm_packed2)
    timings = re.findall(r"\d[\d.]*±[\d.]+(?:ms|μs|us|ns|s)\b", out)
    moe = 2 * len(REPACK)              # pp and tg, expert stacks as stored and repacked
    assert len(timings) == len(runnable) * (2 * engine + 2 * len(WEIGHT_TYPES) + moe) + panels + packed, out
    if len(runnable) < len(ISAS):
        assert "n/a" in out and "NotImplementedError('this CPU or build cannot run" in out


# the copy's benchmarks/common.py is cut down to one parameter combination: asv find needs one figure per
# commit, and every other combination would cost a timing (and a synthesized model per quant type) per commit
ONE_COMBINATION = {"QUANTS": '["q4_k_m"]', "FDN_THRESHOLDS": "[0]", "ISAS": '["scalar"]'}


BEFORE_THE_MOVE = "fd6dd71"     # the last commit with the flat harness/ package


def _cut_to_one_combination(text: str) -> str:
    for name, value in ONE_COMBINATION.items():
        text, n = re.subn(rf"^{name} = \[.*?\]", f"{name} = {value}", text, flags=re.M)
        assert n == 1, f"benchmarks/common.py no longer sets {name} = [...] on one line: update this test"
    return text


def _asv_machine(repo, tmp_path) -> tuple[list[str], dict]:
    """(asv command, environment) for runs in repo as machine ci-test: a private HOME, the tiny preset on
    one thread, and no path that would let the benchmarks see this tree instead of each commit's build."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "HARNESS_ASV_PRESET": "tiny", "HARNESS_ASV_THREADS": "1"}
    for name in ("PYTHONPATH", "ASV_PYTHONPATH", "HARNESS_CACHE"):
        env.pop(name, None)
    asv = [sys.executable, "-m", "asv"]
    r = subprocess.run([*asv, "machine", "--yes", "--machine", "ci-test"], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return asv, env


@pytest.mark.slow
def test_asv_find_names_the_commit_that_planted_a_slowdown(tmp_path):
    """`asv find` over filler, planted slowdown, filler in a throwaway copy of this project, with this
    project's asv.conf.json as it is: one virtualenv, and each probed commit (all three) built into a
    wheel there and timed. The sleep goes into Session.decode, the step time_tg16 times."""
    _need_asv()
    repo = project_copy(tmp_path / "proj")
    common = repo / "benchmarks" / "common.py"
    commit(repo, "one parameter combination", {"benchmarks/common.py": _cut_to_one_combination(common.read_text())})
    first = commit(repo, "filler one", {"NOTES.txt": "1"})
    planted = plant_sleep(repo)
    last = commit(repo, "filler two", {"NOTES.txt": "2"})
    asv, env = _asv_machine(repo, tmp_path)
    r = subprocess.run([*asv, "find", "--machine", "ci-test", "--show-stderr", f"{first}^..{last}",
                        "bench_engine.TokenGeneration.time_tg16"], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=1200)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for sha in (first, planted, last):
        assert f"commit {sha[:8]}" in out, f"asv find did not time {sha[:8]}:\n{out}"
    # the three figures, in commit order: the 0.32 s of planted sleep shows, so the answer is no toss-up
    units = {"s": 1.0, "ms": 1e-3, "μs": 1e-6, "us": 1e-6, "ns": 1e-9}
    tg16 = [float(v) * units[u] for v, u in re.findall(r"^\s*q4_k_m\s+([\d.]+)±[\d.]+(ms|μs|us|ns|s)\b", out, re.M)]
    assert len(tg16) == 3, out
    assert tg16[1] > tg16[0] + 0.25 and tg16[2] > tg16[0] + 0.25, tg16
    assert f"Greatest regression found: {planted[:8]}" in out, out


@pytest.mark.slow
def test_asv_run_measures_commits_on_both_sides_of_the_package_move(tmp_path):
    """A throwaway repo of two commits, the flat package (fd6dd71's tree) and this tree, and `asv run`
    over both with this tree's suite: asv takes the benchmarks from the checkout it runs in, so the
    suite's imports must work against the old layout too. Both commits get a time_tg16 figure."""
    _need_asv()
    try:
        git(ROOT, "cat-file", "-e", f"{BEFORE_THE_MOVE}^{{commit}}")
    except subprocess.CalledProcessError:
        if os.environ.get("CI"):
            pytest.fail(f"commit {BEFORE_THE_MOVE} is not in this clone (a shallow clone?)")
        pytest.skip(f"commit {BEFORE_THE_MOVE} is not in this clone")
    repo = tmp_path / "proj"
    repo.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE_THE_MOVE], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive.stdout, check=True)
    git(repo, "init", "-q")
    old = commit(repo, "the flat package")
    git(repo, "rm", "-r", "-q", ".")
    copy_working_tree(repo)
    common = repo / "benchmarks" / "common.py"
    new = commit(repo, "the package in rooms", {"benchmarks/common.py": _cut_to_one_combination(common.read_text())})
    assert (repo / "harness" / "engine" / "session.py").exists() and not (repo / "harness" / "bench.py").exists()
    (tmp_path / "hashes.txt").write_text(f"{old}\n{new}\n")
    asv, env = _asv_machine(repo, tmp_path)
    r = subprocess.run([*asv, "run", "--machine", "ci-test", "--show-stderr", "-b", "TokenGeneration.time_tg16",
                        f"HASHFILE:{tmp_path / 'hashes.txt'}"], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=1500)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    figures = {}
    for f in (repo / ".asv" / "results" / "ci-test").glob("*.json"):
        data = json.loads(f.read_text())
        if "commit_hash" in data:
            res = data.get("results", {}).get("bench_engine.TokenGeneration.time_tg16")
            figures[data["commit_hash"]] = res[0] if res else None
    assert set(figures) == {old, new}, out
    for sha, values in figures.items():
        assert values and all(isinstance(v, float) and v > 0 for v in values), f"{sha[:8]}: {values}\n{out}"

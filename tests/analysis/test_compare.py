"""Regression verdicts: the statistics (known answers), matching of configurations, `harness compare`
and `harness baseline`."""
import json
import math
import os
import subprocess
import sys

import pytest
from support import results_factory as rf

from harness.store import baselines as baseline
from harness.cli.main import main
from harness.analysis.compare import NothingToCompare, compare_frames, format_text
from harness.analysis.runs import CANNOT_JUDGE
from harness.errors import UsageError
from harness.analysis.stats import (
    FASTER,
    NO_CHANGE,
    SLOWER,
    TOO_FEW,
    bootstrap_ratio,
    judge,
    parse_threshold,
)

TIGHT = [100.0, 101.0, 99.0, 100.5, 99.5]


# ---- statistics -------------------------------------------------------------------------------

def test_identical_samples_are_no_change_with_a_ratio_of_one():
    j = judge(TIGHT, TIGHT, 0.05)
    assert j.ci.ratio == 1.0
    assert j.ci.lo <= 1.0 <= j.ci.hi
    assert j.verdict == NO_CHANGE


def test_a_tight_twenty_percent_slowdown_is_slower():
    j = judge(TIGHT, [x * 0.8 for x in TIGHT], 0.05)
    assert j.ci.ratio == pytest.approx(0.8)
    assert j.ci.hi < 0.95
    assert j.verdict == SLOWER


def test_a_tight_twenty_percent_speedup_is_faster():
    j = judge(TIGHT, [x * 1.2 for x in TIGHT], 0.05)
    assert j.ci.lo > 1.05 and j.verdict == FASTER


def test_overlapping_noisy_samples_are_no_significant_change():
    base = [100.0, 70.0, 130.0, 85.0, 115.0]
    new = [90.0, 125.0, 60.0, 105.0, 80.0]          # median 90 vs 100, but the runs overlap
    j = judge(base, new, 0.05)
    assert j.ci.ratio == pytest.approx(0.9)
    assert j.ci.lo < 1 < j.ci.hi
    assert j.verdict == NO_CHANGE


def test_a_significant_change_smaller_than_the_threshold_is_no_change():
    j = judge(TIGHT, [x * 0.97 for x in TIGHT], 0.05)
    assert j.ci.hi < 1                              # significant ...
    assert j.verdict == NO_CHANGE                   # ... but inside the 5% threshold
    assert judge(TIGHT, [x * 0.97 for x in TIGHT], 0.02).verdict == SLOWER


def test_one_sample_per_side_gives_a_ratio_but_no_verdict():
    ci = bootstrap_ratio([100.0], [50.0])
    assert ci.ratio == 0.5 and math.isnan(ci.lo)
    assert judge([100.0], [50.0], 0.05).verdict == TOO_FEW


def test_bootstrap_is_reproducible_and_ignores_non_positive_samples():
    a = bootstrap_ratio([1, 2, 3, 4], [2, 3, 4, 5], seed=3)
    assert a == bootstrap_ratio([1, 2, 3, 4, 0, float("nan")], [2, 3, 4, 5], seed=3)
    with pytest.raises(UsageError):
        bootstrap_ratio([0.0], [1.0])


@pytest.mark.parametrize("text,value", [("5%", 0.05), ("5", 0.05), (" 2.5 % ", 0.025), ("0%", 0.0)])
def test_threshold_parses_percentages(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "-1%", "100%", "nan", ""])
def test_bad_threshold_is_a_usage_error(text):
    with pytest.raises(UsageError):
        parse_threshold(text)


# ---- matching ---------------------------------------------------------------------------------

RUNS = (1.0, 1.01, 0.99)     # three runs per side whose medians scatter by 1%


def _runs(scale=1.0, **kw):
    """One row per run, each its own test_time, run medians at scale * RUNS."""
    return [rf.row(samples=[x * scale * f for x in TIGHT], test_time=f"2026-11-23T10:0{i}:00+00:00", **kw)
            for i, f in enumerate(RUNS)]


def _pair(new_scale=1.0, **kw):
    base = rf.frame(_runs(n_gen=16, **kw) + _runs(n_prompt=64, n_gen=0, **kw))
    new = rf.frame(_runs(new_scale, n_gen=16, commit="b" * 40, **kw) + _runs(n_prompt=64, n_gen=0, commit="b" * 40, **kw))
    return base, new


def test_compare_matches_on_the_configuration_key_and_flags_only_the_slower_test():
    base, new = _pair(0.8)
    c = compare_frames(base, new, 0.05)
    verdicts = dict(zip(c.table["test"], c.table["verdict"]))
    assert verdicts == {"tg16": SLOWER, "pp64": NO_CHANGE}
    assert c.exit_status() == 1
    assert c.table.set_index("test").loc["tg16", "commit_new"] == "b" * 40
    text = format_text(c, "base", "new")
    assert "SLOWER" in text and "1 slower, 0 faster, 1 no significant change" in text
    assert "ratios compare machines" not in text


def test_compare_says_when_base_and_new_ran_on_different_cpus():
    base, new = _pair(1.0)
    new["cpu_info"] = "Intel Xeon"
    text = format_text(compare_frames(base, new, 0.05), "base", "new")
    assert "note: BASE ran on 'AMD EPYC 7B13', NEW on 'Intel Xeon'" in text


def test_configurations_on_one_side_only_are_listed_not_judged():
    base, new = _pair(1.0)
    new = rf.frame(list(new.to_dict("records")) + [rf.row(n_gen=16, fdn=0, samples=TIGHT)])
    c = compare_frames(base, new, 0.05)
    assert len(c.table) == 2 and len(c.only_new) == 1 and len(c.only_base) == 0
    assert c.only_new.iloc[0]["fdn_threshold"] == "0"
    assert c.exit_status() == 0


def test_repeated_measurements_of_one_configuration_are_runs_judged_on_their_spread():
    base = rf.frame([rf.row(samples=[100.0, 101.0]), rf.row(samples=[99.0, 100.0]), rf.row(samples=[100.0, 100.4])])
    new = rf.frame([rf.row(samples=[80.0, 81.0, 79.0])])
    c = compare_frames(base, new, 0.05)
    r = c.table.iloc[0]
    assert (r["n_base"], r["n_new"]) == (3, 1) and r["verdict"] == SLOWER
    assert r["basis"] == "between-run spread of 3 + 1 runs" and r["ratio"] == pytest.approx(80 / 100.2, rel=2e-3)


def test_one_run_per_side_cannot_be_judged_however_tight_its_repetitions():
    """Issue 14: the repetitions inside one run say nothing about the next run, so a single run per
    side gives the ratio but no verdict (and no failed gate) unless the noise of the machine is known."""
    base = rf.frame([rf.row(samples=TIGHT)])
    new = rf.frame([rf.row(samples=[x * 0.8 for x in TIGHT])])
    c = compare_frames(base, new, 0.05)
    r = c.table.iloc[0]
    assert r["verdict"] == CANNOT_JUDGE and r["ratio"] == pytest.approx(0.8) and c.exit_status() == 0
    text = format_text(c, "base", "new")
    assert "cannot judge: run-to-run spread unknown (one run per side)" in text
    assert "1 cannot be judged" in text and "harness noise" in text
    # a noise record of 2% run-to-run spread over 10 A/A rounds judges the same pair: 20% is far beyond it
    c = compare_frames(base, new, 0.05, noise_of=lambda r: (0.02 * 2 ** 0.5, 10, "noise record"))
    assert c.table.iloc[0]["verdict"] == SLOWER and c.exit_status() == 1
    # ... and a 30% spread leaves it undecided, saying what it could have detected
    c = compare_frames(base, new, 0.05, noise_of=lambda r: (0.3 * 2 ** 0.5, 10, "noise record"))
    r = c.table.iloc[0]
    assert r["verdict"] == NO_CHANGE and r["mde"] > 0.5
    assert f"no significant change (could have detected >= {100 * r['mde']:.1f}%)" in format_text(c, "b", "n")


def test_runs_of_one_commit_compared_pairwise_give_no_verdict_across_many_configurations():
    """Issue 14's A/A: three runs of the same code per side, 16 configurations whose run medians
    scatter by a few percent (drift included): nothing is called slower or faster, because every
    interval comes from the between-run spread and the 16 share the false-alarm budget."""
    import random
    rng = random.Random(7)
    sides = []
    for side in range(2):
        rows = []
        for cfg in range(16):
            for run in range(3):
                f = rng.gauss(1.0, 0.04) * (1 - 0.03 * side)      # 4% run-to-run noise, a 3% drift of NEW
                rows.append(rf.row(n_gen=16 + cfg, samples=[x * f for x in TIGHT],
                                   test_time=f"2026-11-2{3 + side}T10:0{run}:00+00:00"))
        sides.append(rf.frame(rows))
    c = compare_frames(sides[0], sides[1], 0.02)
    assert len(c.table) == 16
    assert c.count(SLOWER) == 0 and c.count(FASTER) == 0 and c.exit_status() == 0
    assert list(c.table["level"]) == pytest.approx([1 - 0.05 / 16] * 16)


def test_nothing_in_common_is_an_error_not_a_pass():
    base = rf.frame([rf.row(isa="avx2")])
    new = rf.frame([rf.row(isa="scalar")])
    with pytest.raises(NothingToCompare, match="no configuration"):
        compare_frames(base, new, 0.05)


def test_llama_cpp_rows_match_ours_on_file_lengths_and_threads():
    fn = "/models/Qwen3.5-0.8B-Q4_K_M.gguf"
    peer = dict(engine="llama.cpp", isa="", fdn=None, ubatch=2048, vocab="", model_filename=fn)
    llama = rf.frame(_runs(27.4 / 100, **peer) + _runs(115.5 / 100, n_prompt=512, n_gen=0, **peer))
    mine = dict(model_filename="/elsewhere/Qwen3.5-0.8B-Q4_K_M.gguf")
    ours = rf.frame(_runs(32.7 / 100, **mine) + _runs(107.0 / 100, n_prompt=512, n_gen=0, **mine))
    c = compare_frames(llama, ours, 0.05)
    assert c.cross_engine
    v = c.table.set_index("test")
    assert v.loc["tg16", "verdict"] == FASTER and v.loc["tg16", "ratio"] == pytest.approx(32.7 / 27.4, rel=1e-3)
    assert v.loc["pp512", "verdict"] == SLOWER
    assert v.loc["pp512", "engine_base"] == "llama.cpp" and v.loc["pp512", "engine_new"] == "qwen35-harness"


# ---- harness compare and harness baseline (command line) --------------------------------------


@pytest.fixture
def stores(tmp_path, monkeypatch):
    """BASE and NEW result directories (NEW is 20% slower in tg16) and an empty baselines root."""
    monkeypatch.setenv("HARNESS_BASELINES", str(tmp_path / "baselines"))
    base, new = _pair(0.8)
    same = rf.frame([dict(r, commit="c" * 40) for r in base.to_dict("records")])
    return {"base": rf.write_dir(tmp_path / "base", base), "new": rf.write_dir(tmp_path / "new", new),
            "same": rf.write_dir(tmp_path / "same", same), "root": tmp_path / "baselines"}


def test_compare_exits_1_on_a_slowdown_and_names_it(stores, capsys):
    assert main(["compare", str(stores["base"]), str(stores["new"])]) == 1
    out = capsys.readouterr().out
    assert "tg16" in out and "SLOWER" in out and "1 slower" in out


def test_compare_exits_0_when_nothing_is_slower(stores, capsys):
    assert main(["compare", str(stores["base"]), str(stores["same"])]) == 0
    assert "0 slower, 0 faster, 2 no significant change" in capsys.readouterr().out


def test_compare_csv_has_one_row_per_configuration(stores, capsys):
    assert main(["compare", str(stores["base"]), str(stores["new"]), "--format", "csv"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "verdict" in lines[0]


def test_a_higher_threshold_accepts_the_slowdown(stores):
    assert main(["compare", str(stores["base"]), str(stores["new"]), "--threshold", "25%"]) == 0


@pytest.mark.parametrize("args", [["nowhere-dir", "{new}"], ["{base}", "{new}", "--threshold", "fast"],
                                  ["no_such_baseline", "{new}"]])
def test_compare_bad_arguments_exit_2_with_one_line(stores, capsys, args):
    args = [a.format(base=stores["base"], new=stores["new"]) for a in args]
    assert main(["compare", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness: error:")


def test_compare_of_a_damaged_results_file_exits_1_naming_it(stores, capsys):
    (stores["new"] / "results.csv").write_text("config_id,model\nonly,two\n")
    assert main(["compare", str(stores["base"]), str(stores["new"])]) == 1
    assert "results.csv" in capsys.readouterr().err


def test_baseline_save_list_and_compare_by_name(stores, capsys):
    assert main(["baseline", "save", "before", str(stores["base"])]) == 0
    saved = stores["root"] / baseline.machine_key() / "before"
    assert (saved / "results.csv").read_bytes() == (stores["base"] / "results.csv").read_bytes()
    meta = json.loads((saved / "baseline.json").read_text())
    assert meta["rows"] == 6 and meta["commits"] == ["a" * 40]
    capsys.readouterr()
    assert main(["baseline", "list"]) == 0
    assert "before" in capsys.readouterr().out
    assert main(["compare", "before", str(stores["new"])]) == 1
    assert "baseline before" in capsys.readouterr().out


def test_baseline_save_refuses_to_replace_without_force(stores, capsys):
    assert main(["baseline", "save", "b1", str(stores["base"])]) == 0
    saved = stores["root"] / baseline.machine_key() / "b1" / "results.csv"
    assert main(["baseline", "save", "b1", str(stores["new"])]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert saved.read_bytes() == (stores["base"] / "results.csv").read_bytes()     # untouched
    assert main(["baseline", "save", "b1", str(stores["new"]), "--force"]) == 0
    assert saved.read_bytes() == (stores["new"] / "results.csv").read_bytes()
    left = [p.name for p in saved.parent.parent.iterdir()]
    assert left == ["b1"]                          # no temporary or old copies (and the lock is gone)


def test_baseline_is_keyed_by_the_machine_the_results_came_from(tmp_path):
    base, _ = _pair()
    d = rf.write_dir(tmp_path / "r", base, prov=rf.provenance(cpu="Ampere Altra Q80-30", cores=80))
    b = baseline.save("x", d, root=tmp_path / "bl")
    assert b.machine == "ampere-altra-q80-30-80cores"
    assert [x.name for x in baseline.list_baselines(all_machines=True, root=tmp_path / "bl")] == ["x"]
    with pytest.raises(baseline.BaselineNotFoundError, match="ampere-altra-q80-30-80cores"):
        baseline.find("x", root=tmp_path / "bl")      # it belongs to another machine


@pytest.mark.parametrize("name", ["../up", ".hidden", "a/b", "", "x" * 65])
def test_bad_baseline_names_are_refused(stores, name, capsys):
    assert main(["baseline", "save", name, str(stores["base"])]) == 2
    assert not stores["root"].exists() or not any(stores["root"].rglob("results.csv"))


def test_baseline_save_of_a_missing_directory_exits_2(stores, tmp_path, capsys):
    assert main(["baseline", "save", "x", str(tmp_path / "missing")]) == 2
    assert "not a results directory" in capsys.readouterr().err


def test_compare_command_exit_status_reaches_the_shell(stores):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-m", "harness.cli", "compare", str(stores["base"]), str(stores["new"])],
                       capture_output=True, text=True, env=env, timeout=120, check=False)
    assert r.returncode == 1, r.stderr
    assert "SLOWER" in r.stdout


def test_compare_reads_llama_bench_jsonl_and_matches_it_with_ours(tmp_path, capsys):
    recs = [{"model_filename": "/models/tiny-q8_0.gguf", "model_type": "qwen35 0.8B Q8_0", "n_threads": 2,
             "n_batch": 2048, "n_ubatch": 512, "n_prompt": p, "n_gen": g, "n_depth": 0, "build_commit": "0c1e570",
             "cpu_info": "AMD EPYC", "test_time": "2026-11-23T10:00:00Z", "avg_ts": float(sum(s) / 3),
             "stddev_ts": 1.0, "samples_ts": s}
            for p, g, s in ((64, 0, [100.0, 101.0, 99.0]), (0, 16, [30.0, 30.5, 29.5]))]
    runs = [dict(r, test_time=f"2026-11-23T10:0{i}:00Z", samples_ts=[x * f for x in r["samples_ts"]])
            for i, f in enumerate(RUNS) for r in recs]
    llama = tmp_path / "llama.jsonl"
    llama.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    mine = dict(model_filename="/cache/tiny-q8_0.gguf")
    ours = rf.write_dir(tmp_path / "ours", rf.frame(_runs(0.8, n_prompt=64, n_gen=0, **mine)
                                                      + _runs(36.0 / 30.0 * 0.3, n_gen=16, **mine)))
    assert main(["compare", str(llama), str(ours)]) == 1
    out = capsys.readouterr().out
    lines = {ln.split()[1]: ln for ln in out.splitlines() if ln.startswith("tiny")}
    assert "llama.cpp -> qwen35-harness" in lines["pp64"] and "SLOWER" in lines["pp64"]
    assert "FASTER" in lines["tg16"] and "1.200" in lines["tg16"]


def test_a_baseline_saved_from_three_runs_judges_a_new_run_on_their_spread(tmp_path, monkeypatch, capsys):
    """Issue 14 item 6: `baseline save NAME r1,r2,r3` keeps every run, and a single NEW run is judged on the
    baseline's between-run spread; one run per side is not judged."""
    monkeypatch.setenv("HARNESS_BASELINES", str(tmp_path / "bl"))
    runs = []
    for i, f in enumerate((1.0, 1.02, 0.985)):
        runs.append(str(rf.write_dir(tmp_path / f"r{i}", rf.frame(
            [rf.row(samples=[x * f for x in TIGHT], test_time=f"2026-11-23T10:0{i}:00+00:00")]))))
    slow = rf.write_dir(tmp_path / "slow", rf.frame([rf.row(samples=[x * 0.8 for x in TIGHT], commit="b" * 40)]))
    assert main(["baseline", "save", "three", ",".join(runs)]) == 0
    meta = json.loads((tmp_path / "bl" / baseline.machine_key() / "three" / "baseline.json").read_text())
    assert meta["runs"] == 3 and meta["rows"] == 3
    capsys.readouterr()
    assert main(["compare", "three", str(slow)]) == 1
    out = capsys.readouterr().out
    assert "SLOWER" in out and "1 slower" in out
    assert main(["compare", runs[0], str(slow)]) == 0
    assert "cannot judge: run-to-run spread unknown" in capsys.readouterr().out

"""Regression verdicts: the statistics (known answers), matching of configurations, `harness compare`
and `harness baseline`."""
import math

import pytest

from harness.compare import NothingToCompare, compare_frames, format_text
from harness.errors import UsageError
from harness.stats import (FASTER, NO_CHANGE, SLOWER, TOO_FEW, bootstrap_ratio, judge,
                           parse_threshold)

import results_factory as rf

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

def _pair(new_scale=1.0, **kw):
    base = rf.frame([rf.row(n_gen=16, samples=TIGHT, **kw), rf.row(n_prompt=64, n_gen=0, samples=TIGHT, **kw)])
    new = rf.frame([rf.row(n_gen=16, samples=[x * new_scale for x in TIGHT], commit="b" * 40, **kw),
                    rf.row(n_prompt=64, n_gen=0, samples=TIGHT, commit="b" * 40, **kw)])
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


def test_configurations_on_one_side_only_are_listed_not_judged():
    base, new = _pair(1.0)
    new = rf.frame(list(new.to_dict("records")) + [rf.row(n_gen=16, fdn=0, samples=TIGHT)])
    c = compare_frames(base, new, 0.05)
    assert len(c.table) == 2 and len(c.only_new) == 1 and len(c.only_base) == 0
    assert c.only_new.iloc[0]["fdn_threshold"] == "0"
    assert c.exit_status() == 0


def test_repeated_measurements_of_one_configuration_pool_their_samples():
    base = rf.frame([rf.row(samples=[100.0, 101.0]), rf.row(samples=[99.0, 100.0])])
    new = rf.frame([rf.row(samples=[80.0, 81.0, 79.0])])
    c = compare_frames(base, new, 0.05)
    assert c.table.iloc[0]["n_base"] == 4 and c.table.iloc[0]["verdict"] == SLOWER


def test_nothing_in_common_is_an_error_not_a_pass():
    base = rf.frame([rf.row(isa="avx2")])
    new = rf.frame([rf.row(isa="scalar")])
    with pytest.raises(NothingToCompare, match="no configuration"):
        compare_frames(base, new, 0.05)


def test_llama_cpp_rows_match_ours_on_file_lengths_and_threads():
    fn = "/models/Qwen3.5-0.8B-Q4_K_M.gguf"
    llama = rf.frame([rf.row(engine="llama.cpp", isa="", fdn=None, ubatch=2048, vocab="", model_filename=fn,
                             samples=[27.0, 27.5, 27.4]),
                      rf.row(engine="llama.cpp", isa="", fdn=None, ubatch=2048, vocab="", model_filename=fn,
                             n_prompt=512, n_gen=0, samples=[115.0, 116.0, 115.5])])
    ours = rf.frame([rf.row(model_filename="/elsewhere/Qwen3.5-0.8B-Q4_K_M.gguf", samples=[32.5, 32.7, 32.9]),
                     rf.row(model_filename="/elsewhere/Qwen3.5-0.8B-Q4_K_M.gguf", n_prompt=512, n_gen=0,
                            samples=[107.0, 107.1, 106.9])])
    c = compare_frames(llama, ours, 0.05)
    assert c.cross_engine
    v = c.table.set_index("test")
    assert v.loc["tg16", "verdict"] == FASTER and v.loc["tg16", "ratio"] == pytest.approx(32.7 / 27.4)
    assert v.loc["pp512", "verdict"] == SLOWER
    assert v.loc["pp512", "engine_base"] == "llama.cpp" and v.loc["pp512", "engine_new"] == "qwen35-harness"

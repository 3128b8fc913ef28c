"""The A/B result as github-action-benchmark (customBiggerIsBetter) and Bencher (BMF) JSON: the
figures come out of the verdicts as computed, the files pass their validators, and the validators
refuse what the formats do not allow (the sources of each format are cited in
harness/report/exports.py)."""
import copy
import json
import math
import re
import statistics

import pytest
from support.ab_results import HEAD, PP_BASE, PP_HEAD, TG_BASE, TG_HEAD, ab_result

from harness.analysis.paired import judge_paired
from harness.measure.builds import Revision
from harness.report.exports import (bencher_bmf, github_action_benchmark, validate_bencher_bmf,
                                    validate_github_action_benchmark)

# src/extractRangeInfo.ts of benchmark-action/github-action-benchmark (commit c38cce98): the range
# the action can read as a number (to convert it with the unit)
ACTION_RANGE = re.compile(r"(?P<prefix>(\+-|±)\s*)(?P<value>\d.*)")

# the published JSON Schema of BMF, https://bencher.dev/bmf.json (draft-07), as given on
# https://bencher.dev/docs/reference/bencher-metric-format
BMF_SCHEMA = {
    "$id": "https://bencher.dev/bmf.json",
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {".+": {
        "type": "object",
        "patternProperties": {".+": {
            "type": "object",
            "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"},
                           "upper_value": {"type": "number"}},
            "required": ["value"]}}}},
}


def schema_errors(instance, schema, path="$") -> list[str]:
    """The draft-07 keywords the BMF schema uses (type object/number, properties,
    patternProperties, required), evaluated by hand: jsonschema is not a dependency."""
    errors = []
    t = schema.get("type")
    if t == "object" and not isinstance(instance, dict):
        return [f"{path}: not an object"]
    if t == "number" and (isinstance(instance, bool) or not isinstance(instance, (int, float))):
        return [f"{path}: not a number"]
    if isinstance(instance, dict):
        errors += [f"{path}: lacks {k}" for k in schema.get("required", []) if k not in instance]
        for k, sub in schema.get("properties", {}).items():
            if k in instance:
                errors += schema_errors(instance[k], sub, f"{path}.{k}")
        for pattern, sub in schema.get("patternProperties", {}).items():
            for k, v in instance.items():
                if re.search(pattern, k):
                    errors += schema_errors(v, sub, f"{path}.{k}")
    return errors


def geometric_ratio(base, head) -> float:
    return math.exp(statistics.fmean(math.log(h / b) for b, h in zip(base, head)))


@pytest.fixture
def result():
    return ab_result()


# ---- github-action-benchmark ------------------------------------------------------------------

def test_one_entry_per_verdict_with_heads_median_tokens_per_second(result):
    data = github_action_benchmark(result)
    assert [e["name"] for e in data] == ["tiny q4_k_m pp64", "tiny q4_k_m tg16"]
    assert all(e["unit"] == "tokens/s" for e in data)
    assert [e["value"] for e in data] == [statistics.median(PP_HEAD), statistics.median(TG_HEAD)] == [100.5, 18.05]
    validate_github_action_benchmark(data)
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_the_range_is_the_ratio_interval_in_tokens_per_second_and_the_action_can_read_it(result):
    data = github_action_benchmark(result)
    for entry, v in zip(data, result.verdicts):
        m = ACTION_RANGE.fullmatch(entry["range"])
        assert m and m["prefix"] == "± "
        half = float(m["value"])
        want = max(v.head_ts * (1 - v.lo / v.ratio), v.head_ts * (v.hi / v.ratio - 1))
        assert half == pytest.approx(want, abs=1e-4)


def test_extra_says_ratio_interval_verdict_rounds_and_mde(result):
    pp, tg = github_action_benchmark(result)
    tg_lines = tg["extra"].split("\n")
    v = result.verdicts[1]
    assert tg_lines[0].startswith(f"ratio HEAD/BASE: {v.ratio:.4f} [")
    assert tg_lines[0].endswith("] at 97.50%")              # 95% over two tests, Bonferroni
    assert "verdict: SLOWER" in tg_lines
    assert "rounds: 8 (stopped: settled)" in tg_lines
    assert f"MDE: {100 * v.mde:.1f}% (threshold 2%)" in tg_lines
    assert "BASE origin/main (aaaaaaaa): 20.05 tokens/s" in tg_lines
    assert "verdict: no significant change (could have detected >= 2.4%)" in pp["extra"].split("\n")
    assert pp["extra"].startswith(f"ratio HEAD/BASE: {geometric_ratio(PP_BASE, PP_HEAD):.4f} [")


def test_a_verdict_without_interval_has_no_range_and_one_without_a_figure_is_left_out(result):
    one = judge_paired("tg16", "tiny q4_k_m", 2, "b", "h", [20.0], [19.0], 0.02)
    none = judge_paired("pp64", "tiny q4_k_m", 2, "b", "h", [], [], 0.02)
    result.verdicts = [one, none]
    data = github_action_benchmark(result)
    assert len(data) == 1 and data[0]["value"] == 19.0 and "range" not in data[0]
    assert "no interval: 1 round(s)" in data[0]["extra"]
    validate_github_action_benchmark(data)
    result.verdicts = [none]
    with pytest.raises(ValueError, match="at least one entry"):
        validate_github_action_benchmark(github_action_benchmark(result))


def test_with_two_heads_the_names_carry_the_head_label():
    head2 = Revision("feature", "c" * 40, "feature (cccccccc)")
    r = ab_result()
    extra = ab_result(head=head2)
    r.revisions = [r.revisions[0], HEAD, head2]
    r.verdicts = r.verdicts + extra.verdicts
    names = [e["name"] for e in github_action_benchmark(r)]
    assert names == ["tiny q4_k_m pp64 [HEAD (bbbbbbbb)]", "tiny q4_k_m tg16 [HEAD (bbbbbbbb)]",
                     "tiny q4_k_m pp64 [feature (cccccccc)]", "tiny q4_k_m tg16 [feature (cccccccc)]"]
    validate_github_action_benchmark(github_action_benchmark(r))
    validate_bencher_bmf(bencher_bmf(r))
    assert list(bencher_bmf(r)) == names


def test_the_validator_takes_the_shape_the_readme_documents():
    # README.md, "customBiggerIsBetter": name, unit and value; range and extra optional
    validate_github_action_benchmark([
        {"name": "Request rate", "unit": "req/s", "value": 120},
        {"name": "Free memory", "unit": "MB", "value": 512.5, "range": "± 4", "extra": "run 3\nhost a"},
    ])


GOOD_ENTRY = {"name": "tiny q4_k_m tg16", "unit": "tokens/s", "value": 18.05, "range": "± 0.1662", "extra": "x"}


@pytest.mark.parametrize("broken, message", [
    ({"rows": [GOOD_ENTRY]}, "JSON array"),
    ([], "at least one entry"),
    (["tiny q4_k_m tg16"], "entry 0 must be an object"),
    ([{"unit": "tokens/s", "value": 1.0}], "entry 0 lacks 'name'"),
    ([{"name": "a", "value": 1.0}], "entry 0 lacks 'unit'"),
    ([{"name": "a", "unit": "tokens/s"}], "entry 0 lacks 'value'"),
    ([dict(GOOD_ENTRY, value="18.05")], "'value' must be a number, got str"),
    ([dict(GOOD_ENTRY, value=True)], "'value' must be a number, got bool"),
    ([dict(GOOD_ENTRY, value=float("nan"))], "'value' must be finite"),
    ([dict(GOOD_ENTRY, value=float("inf"))], "'value' must be finite"),
    ([dict(GOOD_ENTRY, name="")], "'name' must not be empty"),
    ([dict(GOOD_ENTRY, name=3)], "'name' must be a string"),
    ([dict(GOOD_ENTRY, unit=None)], "'unit' must be a string"),
    ([dict(GOOD_ENTRY, range=0.17)], "'range' must be a string"),
    ([dict(GOOD_ENTRY, extra=["a"])], "'extra' must be a string"),
    ([dict(GOOD_ENTRY, lower=1.0)], "does not know .*'lower'"),
    ([GOOD_ENTRY, dict(GOOD_ENTRY)], r"entry 1 \('tiny q4_k_m tg16'\): the name is given twice"),
])
def test_the_action_validator_names_what_is_wrong(broken, message):
    with pytest.raises(ValueError, match=message):
        validate_github_action_benchmark(broken)


# ---- Bencher Metric Format ----------------------------------------------------------------------

def test_bmf_throughput_and_ratio_with_their_intervals(result):
    data = bencher_bmf(result)
    assert list(data) == ["tiny q4_k_m pp64", "tiny q4_k_m tg16"]
    tg = data["tiny q4_k_m tg16"]
    v = result.verdicts[1]
    assert tg["throughput"] == {"value": 18.05, "lower_value": round(18.05 * v.lo / v.ratio, 4),
                                "upper_value": round(18.05 * v.hi / v.ratio, 4)}
    assert tg["ratio"]["value"] == pytest.approx(v.ratio, abs=1e-6)     # the Hodges-Lehmann ratio
    assert 0.89 < tg["ratio"]["value"] < 0.91
    assert tg["ratio"]["lower_value"] < tg["ratio"]["value"] < tg["ratio"]["upper_value"] < 1   # slower
    pp = data["tiny q4_k_m pp64"]["ratio"]
    assert pp["lower_value"] < 1 < pp["upper_value"]                                           # unchanged
    validate_bencher_bmf(data)
    assert schema_errors(data, BMF_SCHEMA) == []
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_bmf_without_interval_keeps_only_value_and_leaves_out_missing_figures(result):
    result.verdicts = [judge_paired("tg16", "m", 2, "b", "h", [20.0], [19.0], 0.02),
                       judge_paired("pp64", "m", 2, "b", "h", [], [], 0.02)]
    data = bencher_bmf(result)
    assert data == {"m tg16": {"throughput": {"value": 19.0}, "ratio": {"value": 0.95}}}
    validate_bencher_bmf(data)
    assert schema_errors(data, BMF_SCHEMA) == []


def test_the_bmf_validator_takes_the_documented_example():
    # https://bencher.dev/docs/reference/bencher-metric-format: one benchmark with two measures
    # (with bounds), two with one measure and a bare value
    example = {"benchmark_name": {"latency": {"value": 88.0, "lower_value": 87.42, "upper_value": 88.88},
                                  "throughput": {"value": 5.55, "lower_value": 3.14, "upper_value": 6.30}},
               "/bin/sh -c ./my_build_script.sh": {"build-time": {"value": 87.0}},
               "my_binary": {"file-size": {"value": 42.0}}}
    validate_bencher_bmf(example)
    assert schema_errors(example, BMF_SCHEMA) == []


GOOD_BMF = {"tiny q4_k_m tg16": {"throughput": {"value": 18.05, "lower_value": 17.88, "upper_value": 18.22}}}


def _with_metric(**metric):
    d = copy.deepcopy(GOOD_BMF)
    d["tiny q4_k_m tg16"]["throughput"] = metric
    return d


@pytest.mark.parametrize("broken, message, schema_too", [
    ([GOOD_BMF], "object of benchmarks", True),
    ({}, "no benchmark", False),
    ({"tiny q4_k_m tg16": 18.05}, "must map measures", True),
    ({"tiny q4_k_m tg16": {}}, "has no measure", False),
    ({"tiny q4_k_m tg16": {"throughput": 18.05}}, "must be an object with 'value'", True),
    (_with_metric(lower_value=1.0), "lacks 'value'", True),
    (_with_metric(value="18.05"), "'value' must be a number, got str", True),
    (_with_metric(value=False), "'value' must be a number, got bool", True),
    (_with_metric(value=float("nan")), "'value' must be finite", False),
    (_with_metric(value=18.0, lower_value=float("-inf")), "'lower_value' must be finite", False),
    (_with_metric(value=18.0, lower_value=18.5), "lower_value 18.5 is above value 18.0", False),
    (_with_metric(value=18.0, upper_value=17.5), "upper_value 17.5 is below value 18.0", False),
    (_with_metric(value=18.0, upper_value="19"), "'upper_value' must be a number", True),
    (_with_metric(value=18.0, stddev=0.1), "BMF does not know: 'stddev'", False),
    ({"x" * 1025: {"throughput": {"value": 1.0}}}, "at most 1024", False),
    ({"b": {"m" * 65: {"value": 1.0}}}, "at most 64", False),
    ({"": {"throughput": {"value": 1.0}}}, "must not be empty", False),
])
def test_the_bmf_validator_names_what_is_wrong(broken, message, schema_too):
    with pytest.raises(ValueError, match=message):
        validate_bencher_bmf(broken)
    # where the published schema has a rule, it refuses the same file
    assert bool(schema_errors(broken, BMF_SCHEMA)) == schema_too

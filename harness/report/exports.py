"""An A/B result (`harness ab`, `harness ci`) in the JSON of two benchmark trackers, and checks that
such JSON has the shape those trackers document.

github-action-benchmark, tool `customBiggerIsBetter`. Checked against
benchmark-action/github-action-benchmark at commit c38cce98 (2026-03-31):

- README.md, "customBiggerIsBetter ... Every entry in the JSON file you provide only needs to
  provide `name`, `unit`, and `value`. You can also provide optional `range` (results' variance)
  and `extra` (any additional information ...)": the file is a JSON array of such objects, `extra`
  may hold several lines (the README's example uses "\\n").
- src/extract.ts: `BenchmarkResult = z.object({name: z.coerce.string(), value: z.coerce.number(),
  range: z.coerce.string().optional(), unit: z.coerce.string(), extra: z.coerce.string().optional()})`
  parsed as an array; other keys are dropped; an empty array fails ("No benchmark result was
  found"); the tool names are `customBiggerIsBetter` / `customSmallerIsBetter` (action.yml).
- src/extractRangeInfo.ts: a range is understood as a number when it matches
  `(\\+-|±)\\s*<number>`; src/normalizeValueByUnit.ts converts only s/ms/us/ns, `*/iter` and `ops/*`
  units, so "tokens/s" is left as it is.

So each verdict gives one entry for the HEAD figure: `value` = HEAD's median tokens/s, `unit`
"tokens/s", `range` "± X" with X in tokens/s (the larger half-width of the HEAD/BASE interval,
relative to the ratio, applied to the HEAD figure; left out when there is no interval), `extra`
the ratio with its interval, the verdict as printed, the rounds, the MDE and BASE's figure.

Bencher Metric Format (BMF). Checked against https://bencher.dev/docs/reference/bencher-metric-format
and https://bencher.dev/docs/how-to/track-custom-benchmarks: a JSON object {benchmark name:
{measure name or slug: {"value": number, "lower_value": number, "upper_value": number}}},
lower_value and upper_value optional; its published JSON Schema (https://bencher.dev/bmf.json,
draft-07) requires "value" and types the three as numbers; a benchmark name is at most 1024
characters, a measure slug or name at most 64; every project has the measures `latency` (ns) and
`throughput` (operations / second), and a measure named by a new slug is created on first use.

So each verdict gives the benchmark "<model> <test>" with the measure `throughput` (HEAD's
tokens/s; bounds: the HEAD/BASE interval relative to the ratio, applied to the HEAD figure) and the
measure `ratio` (HEAD/BASE with its interval as bounds).

The validators are stricter than the trackers (they also reject NaN and infinity, which JSON
cannot carry, booleans posing as numbers, keys the format has no place for, a bound on the wrong
side of its value, and names given twice): what they pass, both trackers take as meant.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from harness.analysis.paired import PairedVerdict, pct
from harness.measure.ab import AbResult

UNIT = "tokens/s"
THROUGHPUT = "throughput"          # Bencher's built-in measure (operations / second)
RATIO = "ratio"                    # created by Bencher on first use
GAB_REQUIRED = ("name", "unit", "value")
GAB_OPTIONAL = ("range", "extra")
BMF_KEYS = ("value", "lower_value", "upper_value")
BMF_BENCHMARK_MAX = 1024
BMF_MEASURE_MAX = 64


def benchmark_name(result: AbResult, v: PairedVerdict) -> str:
    """'<model> <test>' ('tiny q4_k_m tg16'); with more than one HEAD, the HEAD's label is added
    in brackets so that every name stays unique."""
    return v.name if len(result.revisions) <= 2 else f"{v.name} [{v.head}]"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def head_bounds(v: PairedVerdict) -> tuple[float, float] | None:
    """The HEAD figure's bounds implied by the ratio's interval: head_ts * lo / ratio and
    head_ts * hi / ratio (the same relative distance from HEAD's figure as the interval's ends
    from the ratio); None without an interval."""
    if not all(_finite(x) for x in (v.head_ts, v.ratio, v.lo, v.hi)) or v.ratio <= 0:
        return None
    return v.head_ts * v.lo / v.ratio, v.head_ts * v.hi / v.ratio


def _interval_text(v: PairedVerdict) -> str:
    if not (_finite(v.lo) and _finite(v.hi)):
        return f"{v.ratio:.4f} (no interval: {v.rounds} round(s))"
    return f"{v.ratio:.4f} [{v.lo:.4f}, {v.hi:.4f}] at {100 * v.level:.2f}%"


def _extra(result: AbResult, v: PairedVerdict) -> str:
    return "\n".join([
        f"ratio HEAD/BASE: {_interval_text(v)}",
        f"verdict: {v.text}",
        f"rounds: {v.rounds} (stopped: {result.stop})",
        f"MDE: {pct(v.mde)} (threshold {100 * v.threshold:g}%)",
        f"BASE {v.base}: {v.base_ts:.2f} tokens/s",
        f"HEAD {v.head}: {v.head_ts:.2f} tokens/s",
    ])


def github_action_benchmark(result: AbResult) -> list[dict]:
    """The github-action-benchmark `customBiggerIsBetter` file: one entry per verdict whose HEAD
    figure is a finite number (module docstring). Verdicts without one are left out; a result with
    none gives an empty list, which validate_github_action_benchmark refuses as the action would."""
    out = []
    for v in result.verdicts:
        if not _finite(v.head_ts):
            continue
        entry = {"name": benchmark_name(result, v), "unit": UNIT, "value": round(float(v.head_ts), 4)}
        bounds = head_bounds(v)
        if bounds is not None:
            half = max(v.head_ts - bounds[0], bounds[1] - v.head_ts)
            entry["range"] = f"± {half:.4f}"
        entry["extra"] = _extra(result, v)
        out.append(entry)
    return out


def _metric(value: float, bounds: tuple[float, float] | None, digits: int) -> dict:
    m = {"value": round(float(value), digits)}
    if bounds is not None:         # round is monotone: lower <= value <= upper survives it
        m["lower_value"] = round(float(bounds[0]), digits)
        m["upper_value"] = round(float(bounds[1]), digits)
    return m


def bencher_bmf(result: AbResult) -> dict:
    """Bencher Metric Format: {benchmark name: {"throughput": ..., "ratio": ...}} (module docstring).
    A verdict without a finite HEAD figure is left out; `ratio` is left out without a finite
    ratio, the bounds without an interval."""
    out: dict[str, dict] = {}
    for v in result.verdicts:
        if not _finite(v.head_ts):
            continue
        measures = {THROUGHPUT: _metric(v.head_ts, head_bounds(v), 4)}
        if _finite(v.ratio):
            has_interval = _finite(v.lo) and _finite(v.hi)
            measures[RATIO] = _metric(v.ratio, (v.lo, v.hi) if has_interval else None, 6)
        out[benchmark_name(result, v)] = measures
    return out


# ---- validation -------------------------------------------------------------------------------

def _number(x, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{where} must be a number, got {type(x).__name__} {x!r}")
    if not math.isfinite(x):
        raise ValueError(f"{where} must be finite, got {x!r}")
    return float(x)


def _text(x, where: str, max_len: int | None = None, empty_ok: bool = False) -> str:
    if not isinstance(x, str):
        raise ValueError(f"{where} must be a string, got {type(x).__name__} {x!r}")
    if not x.strip() and not empty_ok:
        raise ValueError(f"{where} must not be empty")
    if max_len is not None and len(x) > max_len:
        raise ValueError(f"{where} is {len(x)} characters long, at most {max_len} allowed")
    return x


def validate_github_action_benchmark(data) -> None:
    """Raise ValueError, naming the entry and key, unless `data` is a non-empty list of objects
    with a non-empty string `name` (each name once), a non-empty string `unit`, a finite number
    `value`, optional string `range` and `extra`, and no other key."""
    if not isinstance(data, list):
        raise ValueError(f"a customBiggerIsBetter file is a JSON array, got {type(data).__name__}")
    if not data:
        raise ValueError("a customBiggerIsBetter file needs at least one entry (the action fails on none)")
    seen: set[str] = set()
    for i, entry in enumerate(data):
        where = f"entry {i}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be an object, got {type(entry).__name__}")
        missing = [k for k in GAB_REQUIRED if k not in entry]
        if missing:
            raise ValueError(f"{where} lacks {', '.join(map(repr, missing))}")
        unknown = sorted(set(entry) - set(GAB_REQUIRED) - set(GAB_OPTIONAL), key=str)
        if unknown:
            raise ValueError(f"{where} has key(s) the format does not know (the action drops them): "
                             f"{', '.join(map(repr, unknown))}")
        name = _text(entry["name"], f"{where} 'name'")
        where = f"entry {i} ({name!r})"
        if name in seen:
            raise ValueError(f"{where}: the name is given twice")
        seen.add(name)
        _text(entry["unit"], f"{where} 'unit'")
        _number(entry["value"], f"{where} 'value'")
        for k in GAB_OPTIONAL:
            if k in entry:
                _text(entry[k], f"{where} {k!r}", empty_ok=True)


def validate_bencher_bmf(data) -> None:
    """Raise ValueError, naming the benchmark, measure and key, unless `data` is a non-empty object
    of benchmarks (names 1..1024 characters) each holding a non-empty object of measures (names 1..64
    characters) each holding a finite number `value`, optional finite `lower_value` <= value and
    `upper_value` >= value, and no other key."""
    if not isinstance(data, Mapping):
        raise ValueError(f"BMF JSON is an object of benchmarks, got {type(data).__name__}")
    if not data:
        raise ValueError("BMF JSON holds no benchmark")
    for bench, measures in data.items():
        _text(bench, f"benchmark name {bench!r}", BMF_BENCHMARK_MAX)
        if not isinstance(measures, Mapping):
            raise ValueError(f"benchmark {bench!r} must map measures to metrics, got {type(measures).__name__}")
        if not measures:
            raise ValueError(f"benchmark {bench!r} has no measure")
        for measure, metric in measures.items():
            _text(measure, f"benchmark {bench!r}: measure name {measure!r}", BMF_MEASURE_MAX)
            where = f"benchmark {bench!r}, measure {measure!r}"
            if not isinstance(metric, Mapping):
                raise ValueError(f"{where} must be an object with 'value', got {type(metric).__name__}")
            if "value" not in metric:
                raise ValueError(f"{where} lacks 'value'")
            unknown = sorted(set(metric) - set(BMF_KEYS), key=str)
            if unknown:
                raise ValueError(f"{where} has key(s) BMF does not know: {', '.join(map(repr, unknown))}")
            value = _number(metric["value"], f"{where} 'value'")
            if "lower_value" in metric:
                lower = _number(metric["lower_value"], f"{where} 'lower_value'")
                if lower > value:
                    raise ValueError(f"{where}: lower_value {lower!r} is above value {value!r}")
            if "upper_value" in metric:
                upper = _number(metric["upper_value"], f"{where} 'upper_value'")
                if upper < value:
                    raise ValueError(f"{where}: upper_value {upper!r} is below value {value!r}")

"""The regressions `asv publish` found, read from its HTML directory as typed rows.

The format, from asv 0.6 (asv/plugins/regressions.py, Regressions.publish and _process_regression;
asv/commands/publish.py writes index.json; asv/www/regressions.js reads both):

regressions.json = {"regressions": [[name, graph_path, graph_params, param_idx, last_value,
best_value, jumps], ...]}, one entry per benchmark and parameter combination with a regression:

- name: the benchmark, with its parameter values when it has some: "mod.Class.time_x('q4_k_m')";
- graph_path: "graphs/branch-main/machine-m1/.../mod.Class.time_x.json";
- graph_params: the graph's parameters that take more than one value over all graphs (machine,
  python, branch, env-*, requirements), {} when there is one graph of each benchmark;
- param_idx: the flat index into itertools.product(*benchmark["params"]), null without params;
- last_value / best_value: the latest value and the best (lowest) since the regression;
- jumps: [[rev_before, rev_after, value_before, value_after], ...], revisions being asv's numbers
  of commits in the linearised history (index.json maps them to hashes: "revision_to_hash", keys
  as strings); rev_before is null when the step lies in one commit (rev_after's own change).

asv counts larger as worse (times, in seconds): a jump is a rise, factor = after / before > 1.
Parameter values stay as asv shows them (Python reprs: "'q4_k_m'").
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError, UsageError

REGRESSIONS = "regressions.json"
INDEX = "index.json"


class AsvFormatError(HarnessError):
    """regressions.json or index.json of an asv HTML directory does not have asv's format."""


@dataclass(frozen=True)
class AsvRegression:
    """One step up of one benchmark (and parameter combination) between two commits."""
    benchmark: str                      # mod.Class.time_x, without parameters
    name: str                           # as asv names it, parameters included
    params: dict[str, str]              # parameter name -> value (repr), {} without parameters
    graph_params: dict[str, str]        # machine / python / branch / env-* that tell graphs apart
    good: str | None                    # last commit before the step; None: the step is commit `bad` alone
    bad: str                            # first commit after the step
    old: float                          # value before the step
    new: float                          # best value after the step
    last: float                         # latest value of the benchmark
    best: float                         # best value since the regression
    unit: str = ""
    date: str = ""                      # commit date of `bad` (ISO 8601, UTC), "" if unknown
    hash_length: int = 8
    graph: str = ""                     # graph_path, relative to the HTML directory

    @property
    def factor(self) -> float:
        """new / old: how many times slower (asv counts larger as worse); nan when old is 0."""
        return self.new / self.old if self.old else math.nan

    @property
    def commits(self) -> str:
        """'good..bad' (git's range: the commits after good up to bad), or 'bad^!' for one commit,
        in short hashes."""
        n = self.hash_length
        return f"{self.good[:n]}..{self.bad[:n]}" if self.good else f"{self.bad[:n]}^!"


@dataclass
class AsvRegressions:
    """What one `asv publish` found: its rows and where they were read from."""
    html_dir: Path
    project: str
    rows: list[AsvRegression] = field(default_factory=list)


def _load(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise AsvFormatError(f"{path}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise AsvFormatError(f"{path}: not JSON: {e}") from None


def _hash(rev_to_hash: dict, rev, where: str) -> str:
    h = rev_to_hash.get(str(rev))
    if not isinstance(h, str):
        raise AsvFormatError(f"{where}: revision {rev!r} is not in index.json's revision_to_hash")
    return h


def _date(rev_to_date: dict, rev) -> str:
    ms = rev_to_date.get(str(rev))
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="seconds")


def _params_at(benchmark: dict | None, idx, where: str) -> dict[str, str]:
    """The parameter values at asv's flat index (as its feed code finds them)."""
    if idx is None or not benchmark:
        return {}
    values, names = benchmark.get("params") or [], benchmark.get("param_names") or []
    combos = list(itertools.product(*values))
    if not isinstance(idx, int) or not 0 <= idx < len(combos):
        raise AsvFormatError(f"{where}: parameter index {idx!r} outside the {len(combos)} combinations")
    return {str(k): str(v) for k, v in zip(names, combos[idx])}


def _number(x, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise AsvFormatError(f"{where}: expected a number, got {x!r}")
    return float(x)


def parse_regressions(data: object, index: dict) -> list[AsvRegression]:
    """Rows from the parsed regressions.json and index.json (one per jump, in file order)."""
    if not isinstance(data, dict) or not isinstance(data.get("regressions"), list):
        raise AsvFormatError('regressions.json: expected {"regressions": [...]}')
    if not isinstance(index, dict) or not isinstance(index.get("revision_to_hash"), dict):
        raise AsvFormatError("index.json: no revision_to_hash")
    rev_to_hash = index["revision_to_hash"]
    rev_to_date = index.get("revision_to_date") or {}
    benchmarks = index.get("benchmarks") or {}
    hash_length = index.get("hash_length") or 8
    rows = []
    for i, entry in enumerate(data["regressions"]):
        where = f"regressions.json entry {i}"
        if not isinstance(entry, list) or len(entry) != 7:
            raise AsvFormatError(f"{where}: expected [name, graph, params, index, last, best, jumps]")
        name, graph, graph_params, idx, last, best, jumps = entry
        if not isinstance(name, str) or not isinstance(graph_params, dict):
            raise AsvFormatError(f"{where}: bad name or graph parameters")
        if jumps is None:                       # asv's page skips these too
            continue
        if not isinstance(jumps, list):
            raise AsvFormatError(f"{where}: jumps must be a list")
        base = name.split("(", 1)[0]
        bench = benchmarks.get(base)
        params = _params_at(bench, idx, where)
        for j, jump in enumerate(jumps):
            jw = f"{where} jump {j}"
            if not isinstance(jump, list) or len(jump) != 4:
                raise AsvFormatError(f"{jw}: expected [rev_before, rev_after, before, after]")
            rev_a, rev_b, before, after = jump
            rows.append(AsvRegression(
                benchmark=base, name=name, params=params,
                graph_params={str(k): "" if v is None else str(v) for k, v in graph_params.items()},
                good=None if rev_a is None else _hash(rev_to_hash, rev_a, jw),
                bad=_hash(rev_to_hash, rev_b, jw),
                old=_number(before, jw), new=_number(after, jw),
                last=_number(last, where), best=_number(best, where),
                unit=str((bench or {}).get("unit") or ""), date=_date(rev_to_date, rev_b),
                hash_length=int(hash_length), graph=str(graph or "")))
    return rows


def read_regressions(html_dir: str | Path) -> AsvRegressions:
    """The regressions of the asv HTML directory `html_dir` (what `asv publish` wrote: its
    regressions.json and index.json). A directory that is missing or holds no regressions.json
    is a bad argument (UsageError); a file not in asv's format raises AsvFormatError."""
    d = Path(html_dir)
    if not d.is_dir():
        raise UsageError(f"no such asv HTML directory: {d}")
    for name in (REGRESSIONS, INDEX):
        if not (d / name).is_file():
            raise UsageError(f"{d} holds no {name}: not an `asv publish` output directory")
    index = _load(d / INDEX)
    rows = parse_regressions(_load(d / REGRESSIONS), index if isinstance(index, dict) else {})
    return AsvRegressions(d, str(index.get("project") or "") if isinstance(index, dict) else "", rows)


def human_value(value: float, unit: str) -> str:
    """A value as asv shows it: seconds scaled to ns / us / ms / s, other units as given."""
    if not math.isfinite(value):
        return "n/a"
    if unit == "seconds":
        for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")):
            if abs(value) >= scale or scale == 1e-9:
                return f"{value / scale:.3g} {suffix}"
    return f"{value:.4g} {unit}".strip()

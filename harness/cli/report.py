"""`harness compare`, `harness baseline save|list` and `harness report`.

Exit status: 0 done (compare: nothing significantly slower), 1 compare found a configuration
significantly slower beyond the threshold, or the results are damaged / share nothing; 2 bad
arguments (no such results directory or baseline, bad threshold or name).
"""
from __future__ import annotations

import sys
from pathlib import Path

from harness.cli.common import nonneg_int
from harness.errors import UsageError

DEFAULT_RESULTS = "results"      # where `harness sweep` writes unless told otherwise


class _BadArgument(Exception):
    """Raised inside a command for exit status 2."""


def _usage(fn):
    """Run a command; a UsageError (or an unknown baseline) is a bad argument: one line, status 2."""
    def run(a) -> int:
        from harness.store.baselines import BaselineNotFoundError
        try:
            return fn(a)
        except (UsageError, BaselineNotFoundError) as e:
            print(f"harness: error: {e}", file=sys.stderr)
            return 2
    return run


def resolve(arg: str) -> tuple[str, str]:
    """(path, label) of a results directory, a llama-bench .json/.jsonl file or a baseline name.
    Neither there: "no such results directory" (a .json/.jsonl: "no such llama-bench JSON file"),
    and for a name a baseline could have, why no baseline of that name was found either."""
    from harness.store import baselines as baseline
    p = Path(arg)
    if p.exists():
        return str(p), str(p)
    missing = (f"no such llama-bench JSON file: {arg}" if arg.endswith((".json", ".jsonl"))
               else f"no such results directory: {arg}")
    if baseline.NAME_RE.fullmatch(arg) and "/" not in arg:
        try:
            b = baseline.find(arg)
        except baseline.BaselineNotFoundError as e:
            raise UsageError(f"{missing}, and {e}") from None
        return str(b.path), f"baseline {arg} ({b.path})"
    raise UsageError(missing)


def _load_side(arg: str):
    """(result set, label) of one side of a comparison: one source, or a comma list of sources whose
    samples pool per configuration (the rounds of an interleaved sitting)."""
    from harness.store.results import load_many, load_results
    sides = [resolve(x) for x in arg.split(",") if x]
    if not sides:
        raise UsageError(f"{arg!r}: no results named")
    if len(sides) == 1:
        return load_results(sides[0][0]), sides[0][1]
    return load_many([p for p, _ in sides]), " + ".join(label for _, label in sides)


@_usage
def cmd_compare(a) -> int:
    from harness.analysis.compare import compare_frames, format_markdown, format_text, noise_records_lookup
    from harness.analysis.stats import parse_threshold
    threshold = parse_threshold(a.threshold)
    (base, blabel), (new, nlabel) = _load_side(a.base), _load_side(a.new)
    c = compare_frames(base.frame, new.frame, threshold, seed=a.seed,
                       noise_of=noise_records_lookup(base.frame, new.frame))
    if a.format == "csv":
        sys.stdout.write(c.table.to_csv(index=False))
    elif a.format == "md":
        print(format_markdown(c, blabel, nlabel))
    else:
        print(format_text(c, blabel, nlabel))
    return c.exit_status()


@_usage
def cmd_baseline_save(a) -> int:
    from harness.store import baselines as baseline
    runs = [x for x in a.results.split(",") if x]
    b = baseline.save(a.name, runs if len(runs) > 1 else a.results, force=a.force)
    print(f"saved baseline {b.name} for machine {b.machine}: {b.meta['rows']} result row(s) -> {b.path}")
    return 0


@_usage
def cmd_baseline_list(a) -> int:
    from harness.store import baselines as baseline
    found = baseline.list_baselines(all_machines=a.all)
    if not found:
        where = baseline.baselines_root() if a.all else baseline.baselines_root() / baseline.machine_key()
        print(f"no baselines under {where}")
        return 0
    for b in found:
        commits = ",".join(c[:10] for c in b.meta.get("commits", []))
        print(f"{b.machine}  {b.name}  saved {b.meta.get('saved', '?')}  rows {b.meta.get('rows', '?')}  "
              f"commits {commits}  {b.path}")
    return 0


@_usage
def cmd_report(a) -> int:
    from harness.analysis.compare import NothingToCompare, compare_frames, noise_records_lookup
    from harness.report.asv_regressions import read_regressions
    from harness.report.html import ReportInputs, write_report
    from harness.store.results import load_many, load_results
    from harness.analysis.stats import parse_threshold
    threshold = parse_threshold(a.threshold)
    paths = [resolve(r)[0] for r in a.results]
    asv = read_regressions(a.asv_html) if a.asv_html else None
    rs = load_many(paths)
    inp = ReportInputs(rs.frame, rs.profile, rs.quality, rs.provenance, paths, threshold=threshold, asv=asv)
    note = ""
    if a.baseline:
        bset, blabel = _load_side(a.baseline)
        several = bool(rs.frame["config_id"].duplicated().any())
        try:
            bframe = bset.frame
            inp.comparison = compare_frames(bframe, inp.current, threshold,
                                            noise_of=noise_records_lookup(bframe, inp.current))
            inp.baseline_label = blabel
            inp.new_label = "these results" + (", each configuration's latest measurement" if several else "")
        except NothingToCompare as e:
            note = f"; baseline not used: {e}"
            inp.baseline_label = ""
    index = write_report(inp, Path(a.output))
    summary = ""
    if inp.comparison is not None:
        from harness.analysis.compare import summary_line
        summary = f"; {summary_line(inp.comparison)}"
    if asv is not None:
        summary += f"; asv: {len(asv.rows)} regression(s) in {asv.html_dir}"
    print(f"wrote {index} ({len(rs.frame)} measurement(s){summary}{note})")
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("compare", help="NEW/BASE tokens/s per configuration with a confidence interval "
                                       "and a verdict; exit 1 if anything is significantly slower")
    s.add_argument("base", metavar="BASE", help="results directory, llama-bench output (json, jsonl, csv, sql "
                                                "text or sqlite database; llama-bench's, ik_llama.cpp's or harness "
                                                "bench's), or baseline name; a comma list pools")
    s.add_argument("new", metavar="NEW", help="as BASE")
    s.add_argument("--threshold", default="5%", help="smallest change that counts (default 5%%)")
    s.add_argument("-o", "--output", "--format", dest="format", default="text", choices=["text", "csv", "md"],
                   help="text (default), csv (the table), md (a pipe-markdown table for a pull request)")
    s.add_argument("--seed", type=nonneg_int, default=0, help="kept for scripts; verdicts no longer draw random numbers")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("baseline", help="save and list baselines (reports/baselines/<machine>/<name>)")
    bsub = s.add_subparsers(dest="baseline_cmd", metavar="{save,list}", required=True)
    b = bsub.add_parser("save", help="store a results directory as baseline NAME for its machine")
    b.add_argument("name", metavar="NAME")
    b.add_argument("results", metavar="RESULTS_DIR", nargs="?", default=DEFAULT_RESULTS,
                   help=f"results directory (default ./{DEFAULT_RESULTS}); a comma list saves several runs as one "
                        "baseline, which then carries its between-run spread")
    b.add_argument("--force", action="store_true", help="replace an existing baseline of that name")
    b.set_defaults(func=cmd_baseline_save)
    b = bsub.add_parser("list", help="baselines saved for this machine")
    b.add_argument("--all", action="store_true", help="of every machine")
    b.set_defaults(func=cmd_baseline_list)

    s = sub.add_parser("report", help="HTML report with PNG charts of one or more result sets")
    s.add_argument("results", metavar="RESULTS", nargs="+", help="results directories (or baseline names)")
    s.add_argument("-o", "--output", required=True, metavar="DIR", help="writes DIR/index.html and its charts")
    s.add_argument("--baseline", metavar="NAME|DIR", help="judge the results against this baseline")
    s.add_argument("--threshold", default="5%", help="smallest change that counts (default 5%%)")
    s.add_argument("--asv-html", metavar="DIR",
                   help="add the regressions `asv publish` found (its HTML directory, e.g. .asv/html)")
    s.set_defaults(func=cmd_report)

"""Tables of `harness ab` and `harness noise` results: aligned text for the terminal, and the
markdown of a GitHub job summary (`$GITHUB_STEP_SUMMARY`) for `harness ci`."""
from __future__ import annotations

import math

from harness.analysis.paired import PairedVerdict, family_level, pct
from harness.analysis.stats import FASTER, SLOWER, TOO_FEW
from harness.measure.ab import AbResult, NoiseResult


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    return out + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _interval(v: PairedVerdict) -> str:
    if math.isnan(v.lo):
        return f"{v.ratio:.3f} (no interval)"
    return f"{v.ratio:.3f} [{v.lo:.3f}, {v.hi:.3f}]"


def _noise_cell(result: AbResult, v: PairedVerdict) -> str:
    for n in result.noise:
        if (n.model, n.test) == (v.model, v.test):
            return pct(n.run_spread)
    return "-"


def _signed(ratio: float) -> str:
    return "?" if not math.isfinite(ratio) else f"{100 * (ratio - 1):+.1f}%"


def verdict_rows(result: AbResult, markdown: bool = False) -> list[list[str]]:
    rows = []
    for v in result.verdicts:
        text = v.text
        if markdown and v.verdict in (SLOWER, FASTER):
            text = f"**{text}**"
        rows.append([v.model, v.test, v.head if len(result.revisions) > 2 else "", f"{v.base_ts:.2f}",
                     f"{v.head_ts:.2f}", _interval(v), _signed(v.ratio), _noise_cell(result, v), text])
    return rows


HEAD = ["model", "test", "head", "base t/s", "head t/s", "head/base [interval]", "change", "A/A noise", "verdict"]


def _drop_head_column(head: list[str], rows: list[list[str]], result: AbResult) -> tuple[list[str], list[list[str]]]:
    if len(result.revisions) > 2:
        return head, rows
    return head[:2] + head[3:], [r[:2] + r[3:] for r in rows]


def level_note(result: AbResult) -> str:
    k = len(result.verdicts)
    each = family_level(result.policy.level, k)
    left = [len(v.left_out) for v in result.verdicts]
    out = ""
    if any(left):
        n = str(max(left)) if min(left) == max(left) else f"{min(left)}-{max(left)}"
        out = (f" less {n} disturbed round(s) per test (a side's figure more than 5 sd below its own "
               "revision's centre; at most a third of the rounds, the deepest first)")
    return (f"intervals: {100 * result.policy.level:g}% for all {k} test(s) together (each {100 * each:.2f}%, "
            f"Bonferroni), over {result.rounds} paired rounds{out}; slower/faster = interval wholly below/above 1 "
            f"and a change beyond {100 * result.policy.threshold:g}%")


def format_ab_text(result: AbResult) -> str:
    revs = result.revisions
    lines = [f"BASE {revs[0].label}"] + [f"HEAD {r.label}" for r in revs[1:]] + [""]
    head, rows = _drop_head_column(HEAD, verdict_rows(result), result)
    lines += _table(head, rows)
    lines += ["", level_note(result), summary_line(result)]
    return "\n".join(lines)


def summary_line(result: AbResult) -> str:
    slower = [v for v in result.verdicts if v.verdict == SLOWER]
    faster = [v for v in result.verdicts if v.verdict == FASTER]
    mdes = [v.mde for v in result.verdicts if math.isfinite(v.mde)]
    worst = f"; could have detected >= {pct(max(mdes))} on every test" if mdes else ""
    few = [v for v in result.verdicts if v.verdict == TOO_FEW]
    too_few = f", {len(few)} with too few rounds for an interval at this level" if few else ""
    return (f"{len(result.verdicts)} test(s): {len(slower)} slower, {len(faster)} faster, "
            f"{len(result.verdicts) - len(slower) - len(faster) - len(few)} no significant change{too_few}{worst} "
            f"({result.rounds} rounds, stopped: {result.stop}, {result.seconds:.0f} s)")


def format_ab_markdown(result: AbResult, links: dict[str, str] | None = None) -> str:
    """A GitHub job summary: the verdict, a table of ratios with intervals, the noise floor."""
    revs = result.revisions
    status = "a significant slowdown" if result.exit_code else "no significant slowdown"
    lines = [f"## harness ab: {status}", "",
             f"BASE `{revs[0].label}`" + "".join(f", HEAD `{r.label}`" for r in revs[1:]), ""]
    head, rows = _drop_head_column(HEAD, verdict_rows(result, markdown=True), result)
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---:" if h in ("base t/s", "head t/s", "change", "A/A noise") else "---"
                               for h in head) + "|")
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    lines += ["", f"{level_note(result)}.", "", summary_line(result) + "."]
    if result.noise:
        lines += ["", f"Noise floor: the A/A rounds ({result.policy.aa_rounds}) of BASE against itself give the "
                      "run-to-run spread of one run per test (the *A/A noise* column)."]
    for name, href in (links or {}).items():
        lines.append(f"- [{name}]({href})")
    return "\n".join(lines) + "\n"


def format_noise_text(result: NoiseResult) -> str:
    k = len(result.floors)
    level = family_level(result.level, k)
    head = ["model", "test", "median t/s", "run-to-run spread"] + [f"MDE at {n} rounds" for n in result.at_rounds]
    rows = [[f.model, f.test, f"{f.median_ts:.2f}", pct(f.run_spread)]
            + [pct(f.mde(n, level, result.threshold)) for n in result.at_rounds] for f in result.floors]
    lines = _table(head, rows)
    lines += ["", f"A/A: the same code measured twice per round, {result.rounds} rounds in {result.seconds:.0f} s. "
                  "Run-to-run spread = the standard deviation of one run's figure (from the per-round log ratios / "
                  "sqrt 2). MDE = the slowdown `harness ab` would call significant 9 times in 10 at that many rounds "
                  f"({100 * result.level:g}% over {k} test(s), threshold {100 * result.threshold:g}%)."]
    return "\n".join(lines)

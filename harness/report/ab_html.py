"""The page of one A/B run (`harness ab`, `harness ci`): OUT/ab.html with two PNG charts beside it
(relative links, no script, no external resource).

It states the verdicts as printed (with the MDE: "no significant change (could have detected >= 2.1%)"),
the revisions, the noise floor of the A/A rounds, how many rounds ran and why they stopped, and
draws the HEAD/BASE ratio of each test with its interval, the threshold and the MDE (ab-ratio.png),
and the ratio of every round (ab-rounds.png), where a drift or one outlying round shows. Every
string from the result (labels, revisions, model names) is HTML-escaped; chart text goes through
charts.label, which keeps matplotlib from reading '$' as mathtext.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis.paired import PairedVerdict, family_level, pct
from harness.analysis.stats import FASTER, SLOWER
from harness.atomic import atomic_write_text
from harness.measure.ab import AbResult
from harness.report import charts
from harness.report.ab_tables import HEAD, level_note, summary_line, verdict_rows
from harness.report.html import CSS, esc, html_table

PAGE = "ab.html"
RATIO_PNG = "ab-ratio.png"
ROUNDS_PNG = "ab-rounds.png"
MDE_COLOR = "#8e44ad"

STOP_REASONS = {
    "settled": "every test was settled at the interim level: significantly slower by more than the "
               "threshold, or with its whole interval above 1 - threshold",
    "max-rounds": "the most rounds allowed (--rounds) were run before every test was settled",
    "time-budget": "one more block of rounds would have overrun the time budget (--time-budget)",
}


def verdict_label(result: AbResult, v: PairedVerdict) -> str:
    """What a chart calls a verdict: 'tiny q4_k_m tg16', with the HEAD when there are several."""
    return v.name if len(result.revisions) <= 2 else f"{v.name} [{v.head}]"


def round_ratios(v: PairedVerdict) -> list[float]:
    """head_samples[i] / base_samples[i] per round; nan where a figure is missing or not positive."""
    return [h / b if (math.isfinite(b) and math.isfinite(h) and b > 0 and h > 0) else math.nan
            for b, h in zip(v.base_samples, v.head_samples)]


# ---- charts ---------------------------------------------------------------------------------------

def ratio_chart(result: AbResult, path: Path) -> None:
    """The HEAD/BASE ratio of each test with its interval (whiskers), coloured by verdict; lines at
    1 and at 1 - threshold; a purple tick at 1 - MDE (the smallest slowdown these rounds catch 9
    times in 10)."""
    vs = result.verdicts
    fig = charts._figure(9, charts._bar_height(len(vs)) + 0.6)
    ax = fig.add_subplot()
    y = np.arange(len(vs))[::-1]
    ratio = np.array([v.ratio for v in vs], float)
    lo = np.array([v.lo if math.isfinite(v.lo) else v.ratio for v in vs], float)
    hi = np.array([v.hi if math.isfinite(v.hi) else v.ratio for v in vs], float)
    colors = [charts.COLORS.get(v.verdict, charts.NEUTRAL) for v in vs]
    ok = np.isfinite(ratio)
    for yi, r, l, h, c in zip(y[ok], ratio[ok], lo[ok], hi[ok], np.array(colors, dtype=object)[ok]):
        ax.errorbar([r], [yi], xerr=[[r - l], [h - r]], fmt="o", color=c, ecolor=c, capsize=4, lw=1.5)
    mde = np.array([v.mde for v in vs], float)
    has_mde = np.isfinite(mde)
    if has_mde.any():
        ax.scatter(1 - mde[has_mde], y[has_mde], marker="|", s=300, color=MDE_COLOR, zorder=3,
                   label="1 - MDE (smallest slowdown caught 9 times in 10)")
        for yi, m in zip(y[has_mde], mde[has_mde]):
            ax.annotate(f"MDE {pct(m)}", (1 - m, yi), xytext=(0, -14), textcoords="offset points",
                        ha="center", fontsize=7, color=MDE_COLOR)
    threshold = result.policy.threshold
    ax.axvline(1, color="black", lw=1, label="1 (no change)")
    ax.axvline(1 - threshold, color=charts.COLORS[SLOWER], lw=1, ls="--",
               label=f"1 - threshold ({100 * threshold:g}%)")
    ax.set_yticks(y, [charts.label(verdict_label(result, v)) for v in vs], fontsize=8)
    ax.set_ylim(-0.7, len(vs) - 0.3)
    ax.set_xlabel("tokens/s HEAD / BASE: Hodges-Lehmann estimate over the undisturbed rounds; whiskers: "
                  f"interval ({100 * family_level(result.policy.level, len(vs)):.2f}% each)", fontsize=8)
    fig.legend(fontsize=7, ncol=3, loc="outside lower center")
    charts._save(fig, path)


def rounds_chart(result: AbResult, path: Path) -> None:
    """The ratio HEAD/BASE of every round, one line per test: a drift across rounds or one round
    far from the others shows here, where the interval alone would only look wide."""
    fig = charts._figure(9, 4.5)
    ax = fig.add_subplot()
    width = 1
    for v in result.verdicts:
        r = round_ratios(v)
        width = max(width, len(r))
        line, = ax.plot(np.arange(1, len(r) + 1), r, marker="o", lw=1, label=charts.label(verdict_label(result, v), 50))
        out = [i for i in v.left_out if i < len(r)]
        if out:                     # the disturbed rounds the verdict leaves out
            ax.scatter([i + 1 for i in out], [r[i] for i in out], marker="x", s=80, color=line.get_color(), zorder=3)
    ax.axhline(1, color="black", lw=1)
    ax.axhline(1 - result.policy.threshold, color=charts.COLORS[SLOWER], lw=1, ls="--")
    ax.set_xticks(np.arange(1, width + 1))
    ax.set_xlabel("round (paired: BASE and HEAD measured seconds apart)")
    ax.set_ylabel("tokens/s HEAD / BASE in the round")
    ax.set_title(f"black: 1 (no change); dashed: 1 - threshold ({100 * result.policy.threshold:g}%); "
                 "x: a disturbed round, left out of the verdict", fontsize=8)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    charts._save(fig, path)


# ---- page sections --------------------------------------------------------------------------------

def _frame(head: list[str], rows: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=head) if rows else pd.DataFrame(columns=head)


def revisions_table(result: AbResult) -> str:
    rows = [["BASE" if i == 0 else "HEAD", r.label, r.spec, r.ident] for i, r in enumerate(result.revisions)]
    return html_table(_frame(["role", "revision", "as given", "commit / tree"], rows))


def verdicts_table(result: AbResult) -> str:
    """The table the terminal and the job summary print (harness.report.ab_tables), with the MDE."""
    head, rows = list(HEAD), verdict_rows(result)
    if len(result.revisions) <= 2:
        head, rows = head[:2] + head[3:], [r[:2] + r[3:] for r in rows]
    head.insert(len(head) - 1, "MDE")
    rows = [r[:-1] + [pct(v.mde), r[-1]] for r, v in zip(rows, result.verdicts)]
    classes = ["slower" if v.verdict == SLOWER else "faster" if v.verdict == FASTER else ""
               for v in result.verdicts]
    return html_table(_frame(head, rows), classes)


def verdict_list(result: AbResult) -> str:
    items = [f"<li><strong>{esc(verdict_label(result, v))}</strong>: {esc(v.text)}</li>" for v in result.verdicts]
    return "<ul>" + "".join(items) + "</ul>"


def noise_table(result: AbResult) -> str:
    if not result.noise:
        return ('<p class="none">no A/A rounds in this run (--aa-rounds 0): the run-to-run noise of this '
                "machine was not measured</p>")
    rows = [[n.model, n.test, str(n.threads or ""), str(n.rounds), f"{n.median_ts:.2f}", pct(n.run_spread),
             "?" if not math.isfinite(n.sd_log) else f"{n.sd_log:.4f}"] for n in result.noise]
    intro = (f"<p>Before the A/B rounds, BASE was measured against itself for {result.policy.aa_rounds} rounds "
             "(A/A). The spread of those per-round ratios is the run-to-run noise of one run on this machine: "
             "a change much smaller than it cannot be told from noise in a few rounds.</p>")
    return intro + html_table(_frame(["model", "test", "threads", "A/A rounds", "median t/s",
                                      "run-to-run spread", "sd of ln(ratio)"], rows))


def rounds_section(result: AbResult) -> str:
    p = result.policy
    why = STOP_REASONS.get(result.stop, result.stop)
    budget = "no time budget" if p.time_budget is None else f"a time budget of {p.time_budget:g} s"
    text = (f"<p>{result.rounds} paired round(s) in {result.seconds:.0f} s, stopped: "
            f"<strong>{esc(result.stop)}</strong> &mdash; {esc(why)}.</p>"
            f"<p>Policy: {p.min_rounds} to {p.max_rounds} rounds, {esc(budget)}, threshold "
            f"{100 * p.threshold:g}%, level {100 * p.level:g}% for all tests together, A/A rounds "
            f"{p.aa_rounds}, seed {p.seed}. Rounds come in blocks of two mirrored orders (A B | B A), "
            "so neither a drift of the machine nor going second favours one side.</p>")
    head = ["round"]
    cols = []
    for v in result.verdicts:
        name = verdict_label(result, v)
        head += [f"{name}: BASE t/s", f"{name}: HEAD t/s", f"{name}: HEAD/BASE"]
        cols.append((v.base_samples, v.head_samples, round_ratios(v)))
    n = max((len(c[0]) for c in cols), default=0)

    def cell(xs, i, fmt):
        return fmt.format(xs[i]) if i < len(xs) and math.isfinite(xs[i]) else ""
    left_out = [set(v.left_out) for v in result.verdicts]
    rows = [[str(i + 1)] + [c for (b, h, r), out in zip(cols, left_out)
                            for c in (cell(b, i, "{:.2f}"), cell(h, i, "{:.2f}"),
                                      cell(r, i, "{:.4f}") + (" (left out: disturbed)" if i in out else ""))]
            for i in range(n)]
    return text + ("<details><summary>figures of every round</summary>" + html_table(_frame(head, rows))
                   + "</details>" if rows else "")


def system_section(result: AbResult) -> str:
    facts = {str(k): v for k, v in (result.system or {}).items()}
    for i, b in enumerate(result.builds or []):
        for k, v in (b or {}).items():
            facts[f"build {i} {k}"] = v
    if not facts:
        return ""
    table = html_table(pd.DataFrame({"key": list(facts), "value": [str(v) for v in facts.values()]}))
    return f"<details><summary>machine and builds</summary>{table}</details>"


def _img(name: str, alt: str) -> str:
    return f'<img src="{esc(name)}" alt="{esc(alt)}">'


def write_ab_report(result: AbResult, out_dir: Path) -> Path:
    """Write out_dir/ab.html, ab-ratio.png and ab-rounds.png; returns the page's path. Charts of an
    earlier run in out_dir that this one does not draw are removed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (RATIO_PNG, ROUNDS_PNG):
        (out / name).unlink(missing_ok=True)
    revs = result.revisions
    title = f"harness ab: {revs[0].label} vs " + ", ".join(r.label for r in revs[1:])
    status = ("a significant slowdown (exit status 1)" if result.exit_code
              else "no significant slowdown (exit status 0)")
    body = [f"<h1>{esc(title)}</h1>",
            f'<p class="summary">{esc(status)}: {esc(summary_line(result))}</p>',
            "<h2>Revisions</h2>", revisions_table(result),
            "<h2>Verdicts</h2>", verdict_list(result), verdicts_table(result),
            f"<p>{esc(level_note(result))}. MDE: the smallest slowdown these rounds would call significant "
            "9 times in 10.</p>"]
    if result.verdicts:
        ratio_chart(result, out / RATIO_PNG)
        rounds_chart(result, out / ROUNDS_PNG)
        body += ["<h2>HEAD / BASE per test</h2>", _img(RATIO_PNG, "HEAD/BASE ratio per test with its interval"),
                 "<h2>Ratio per round</h2>", _img(ROUNDS_PNG, "HEAD/BASE ratio of every round per test")]
    else:
        body.append('<p class="none">no verdicts: nothing was measured</p>')
    body += ["<h2>Noise floor (A/A)</h2>", noise_table(result),
             "<h2>Rounds</h2>", rounds_section(result), system_section(result)]
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(b for b in body if b) + "\n</body>\n</html>\n")
    path = out / PAGE
    atomic_write_text(path, page)
    return path

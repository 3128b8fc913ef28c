"""Issue 15, items 10 and 11: what the report's sections let a reader conclude. The Pareto front
holds only rows that carry the accuracy measure; the crossover pick says when every point is too
noisy to judge; the roofline says when the weights sit in cache; the per-op profile says it is one
run and shows the spread where there are several; the table of every measurement keeps to the
columns a reader uses; quality figures of synthetic models say that random weights amplify rounding.

Charts are checked on the figure they save (charts._save is wrapped to keep it), tables on the data
frames behind them and on the page."""
import re
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest
from support import results_factory as rf

from harness.cli.main import main
from harness.report import charts
from harness.report import data as rd

MiB = 2**20


@pytest.fixture
def saved(monkeypatch):
    """{png name: the matplotlib Figure saved under it}, for every chart drawn during the test."""
    figs = {}
    real = charts._save

    def keep(fig, path):
        figs[Path(path).name] = fig
        real(fig, path)

    monkeypatch.setattr(charts, "_save", keep)
    return figs


def section(text: str, title: str) -> str:
    """The HTML between a section's <h2> and the next one."""
    start = text.index(f"<h2>{title}")
    end = text.find("<h2>", start + 4)
    return text[start: end if end >= 0 else len(text)]


def table_cells(fragment: str, after: str = "<table>") -> tuple[list[str], list[list[str]]]:
    t = fragment[fragment.index(after):]
    t = t[: t.index("</table>")]
    head = re.findall(r"<th>(.*?)</th>", t)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", t, re.DOTALL)]
    return head, [r for r in rows if r]


# ---- (a) Pareto: rows without the accuracy measure are not on the front ------------------------

STRATEGIES = ("full", "argmax", "requant:q4_0")
# (model, quant) -> {strategy: (tg t/s, mean KL)}; argmax has no logits vector, so no KL
PARETO_CASE = {("m1-q8_0", "q8_0"): {"full": (100.0, 0.010), "argmax": (130.0, None), "requant:q4_0": (101.0, 0.012)},
               ("m2-q4_0", "q4_0"): {"full": (100.5, 0.50), "argmax": (190.0, None), "requant:q4_0": (160.0, 0.60)}}


def pareto_inputs(preset: str = "tiny"):
    rows, qual = [], []
    for (model, quant), by in PARETO_CASE.items():
        for v, (speed, kl) in by.items():
            rows.append(rf.row(model=model, quant=quant, vocab=v, preset=preset, samples=[speed] * 3))
            qual.append({"config_id": "", "model": model, "quant": quant, "vocab_strategy": v, "n_positions": 64,
                         "top1_agreement": 0.9 if kl else 0.8, "topk_recall": 0.9, "k": 10,
                         "kl_mean": kl if kl is not None else float("nan"),
                         "kl_max": 3 * kl if kl is not None else float("nan"), "max_abs_err": 0.1})
    return rf.frame(rows), pd.DataFrame(qual, columns=rf.QUALITY_COLUMNS)


def test_pareto_rows_without_kl_are_not_candidates_and_say_why():
    frame, quality = pareto_inputs()
    pts = rd.quality_points(frame, quality).set_index(["model", "vocab_strategy"])
    assert pts["pareto"].to_dict() == {
        ("m1-q8_0", "full"): True, ("m1-q8_0", "argmax"): False, ("m1-q8_0", "requant:q4_0"): True,
        ("m2-q4_0", "full"): False, ("m2-q4_0", "argmax"): False, ("m2-q4_0", "requant:q4_0"): True}
    assert pts.loc[("m1-q8_0", "argmax"), "note"] == "no KL (no logits vector)"
    assert pts.loc[("m1-q8_0", "full"), "note"] == ""
    assert pts["label"].is_unique
    assert pts.loc[("m2-q4_0", "requant:q4_0"), "label"] == "m2-q4_0 requant:q4_0"


def test_pareto_chart_has_a_legend_of_drawn_points_a_front_line_and_distinct_labels_apart(tmp_path, saved):
    frame, quality = pareto_inputs()
    pts = rd.quality_points(frame, quality)
    charts.pareto_chart(pts, tmp_path / "pareto.png")
    fig = saved["pareto.png"]
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "vocab argmax" not in legend                      # no entry without points
    assert {"vocab full", "vocab requant:q4_0", "Pareto front"} <= set(legend)
    front = [ln for ln in ax.get_lines() if ln.get_label() == "Pareto front"]
    assert len(front) == 1
    xs, ys = front[0].get_data()
    # the three candidates on the front, slowest first, every vertex a real point
    assert list(xs) == [100.0, 101.0, 160.0] and list(ys) == [0.010, 0.012, 0.60]
    labels = [t for t in ax.texts if t.get_text()]
    names = [t.get_text() for t in labels]
    assert sorted(names) == ["m1-q8_0 full", "m1-q8_0 requant:q4_0", "m2-q4_0 full", "m2-q4_0 requant:q4_0"]
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels]
    overlapping = [(names[i], names[j]) for (i, a), (j, b) in combinations(enumerate(boxes), 2) if a.overlaps(b)]
    assert overlapping == []
    assert "argmax: no KL (no logits vector)" in ax.get_title()


# ---- (b) crossover: a pick among points too noisy to judge says so ---------------------------

def crossover_frame():
    def r(model, fdn, ub, v, noisy):
        s = [v * 0.5, v, v * 1.5] if noisy else [v - 1, v, v + 1]
        return rf.row(model=model, fdn=fdn, ubatch=ub, n_prompt=64, n_gen=0, samples=s)
    return rf.frame([r("a", 0, 16, 100.0, False), r("a", 0, 64, 120.0, False), r("a", 64, 16, 110.0, False),
                     r("a", 64, 64, 200.0, True),                     # fastest, but noisy
                     r("b", 0, 16, 100.0, True), r("b", 64, 16, 130.0, True)])     # every point noisy


def test_crossover_picks_among_settled_points_and_flags_a_pick_from_noisy_ones():
    pts, best = rd.crossover(crossover_frame())
    best = best.set_index("group")
    a, b = best.loc["a pp64"], best.loc["b pp64"]
    assert (a["best fdn threshold"], a["at ubatch"], a["pp t/s"], a["next best threshold, t/s"]) == ("0", "64", 120.0, 110.0)
    assert "1 point with a spread too wide to judge left out" in a["note"]
    assert (b["best fdn threshold"], b["at ubatch"], b["pp t/s"]) == ("64", "16", 130.0)
    assert b["note"] == "spread too wide to judge"
    assert pts.set_index(["group", "fdn_threshold", "n_ubatch"])["spread ok"].to_dict()[("a pp64", 64, 64)] == False  # noqa: E712


def test_crossover_chart_title_and_table_say_spread_too_wide(tmp_path, saved):
    d = rf.write_dir(tmp_path / "r", crossover_frame())
    assert main(["report", str(d), "-o", str(tmp_path / "out")]) == 0
    titles = [ax.get_title() for ax in saved["crossover.png"].axes if ax.get_visible()]
    assert [t.endswith("spread too wide to judge") for t in titles] == [False, True]
    text = (tmp_path / "out" / "index.html").read_text()
    head, rows = table_cells(section(text, "Fused vs chunked"))
    assert head[-1] == "note" and rows[1][-1] == "spread too wide to judge"


# ---- (c) roofline: weights in cache, and never > 100% without a reason -------------------------

def roofline_frame(bytes_per_token=(6_779_792, 200_000_000, 100_000_000), speeds=(2400.0, 60.0, 300.0)):
    return rf.frame([rf.row(model=f"m{i}", bytes_per_token=b, samples=[s] * 3, read_gbps=24.0)
                     for i, (b, s) in enumerate(zip(bytes_per_token, speeds))])


def test_roofline_says_when_the_weights_fit_in_cache_or_beat_the_roof():
    d = rd.roofline(roofline_frame(), llc_bytes=32 * MiB)
    assert d["in cache"].tolist() == [True, False, False]
    assert d["weights MiB/token"].round(2).tolist() == [6.47, 190.73, 95.37]
    assert d["note"][0] == "weights fit in cache (6.5 MiB < LLC 32 MiB): the DRAM roofline does not apply"
    assert d["note"][1] == ""                                   # 12 GB/s of 24: a plain 50%
    assert d["fraction"][2] == pytest.approx(1.25)
    assert d["note"][2] == ("125% of the measured read bandwidth: the reference is stale "
                            "or the working set is cached")


def test_roofline_chart_never_prints_more_than_100_percent_bare(tmp_path, saved):
    d = rd.roofline(roofline_frame(), llc_bytes=32 * MiB)
    charts.roofline_chart(d, tmp_path / "roofline.png")
    ax = saved["roofline.png"].axes[0]
    notes = [t.get_text() for t in ax.texts]
    assert len(notes) == 3
    for t in notes:
        pct = int(re.match(r"(\d+)%", t).group(1))
        assert pct <= 100 or "stale" in t or "cache" in t, t
    assert "in cache" in notes[0] and "cache" not in notes[1]
    assert "1 of 3" in ax.get_title() and "LLC 32 MiB" in ax.get_title()


def test_roofline_section_notes_weights_in_cache_under_the_chart(tmp_path):
    d = rf.write_dir(tmp_path / "r", roofline_frame(bytes_per_token=(100_000,), speeds=(2400.0,)))
    assert main(["report", str(d), "-o", str(tmp_path / "out")]) == 0
    text = section((tmp_path / "out" / "index.html").read_text(), "Roofline")
    note = text[text.index('<p class="note">'):]
    note = note[: note.index("</p>")]                         # the note under the chart, not a table cell
    assert re.search(r"weights fit in cache \(0\.1 MiB &lt; LLC [\d.]+ MiB\): the DRAM roofline does not apply", note)
    assert "1 of 1 row(s)" in note


def test_llc_size_is_the_largest_level_in_sysfs_else_32_mib(tmp_path):
    for i, (level, size) in enumerate([(1, "32K"), (1, "32K"), (2, "1024K"), (3, "32768K")]):
        (tmp_path / f"index{i}").mkdir()
        (tmp_path / f"index{i}" / "level").write_text(f"{level}\n")
        (tmp_path / f"index{i}" / "size").write_text(f"{size}\n")
    assert rd.llc_size(tmp_path) == 32 * MiB
    (tmp_path / "index3" / "size").write_text("96M\n")
    assert rd.llc_size(tmp_path) == 96 * MiB
    assert rd.llc_size(tmp_path / "none") is None
    assert rd.machine_llc({}, root=tmp_path / "none") == (32 * MiB, "assumed: no cache size found")


# ---- (d) per-op profile: one run per configuration; median and range where there are several --

def two_profiled_runs(tmp_path):
    """The same two configurations in two result directories; the second profiled run saw matmul 3x slower."""
    def rows(when):
        return rf.frame([rf.row(test_time=when), rf.row(n_prompt=64, n_gen=0, test_time=when)])
    a, b = rows("2026-11-23T10:00:00+00:00"), rows("2026-11-23T11:00:00+00:00")
    da = rf.write_dir(tmp_path / "a", a, rf.profile_for(a))
    db = rf.write_dir(tmp_path / "b", b, rf.profile_for(b, scale={"matmul": 3.0}))
    return da, db


def test_op_profile_of_a_repeated_configuration_shows_median_and_range(tmp_path):
    da, db = two_profiled_runs(tmp_path)
    from harness.store.results import load_many
    rs = load_many([da, db])
    s = rd.op_spread(rs.frame, rs.profile).set_index(["configuration", "op"])
    # the factory's matmul is 5 of 53 ms; 3x slower it is 15 of 63 ms
    m = s.loc[("tiny-q4_k_m tg16", "matmul")]
    assert (m["runs"], m["min"], m["max"]) == (2, pytest.approx(5 / 53), pytest.approx(15 / 63))
    assert m["median"] == pytest.approx((5 / 53 + 15 / 63) / 2)
    wide = rd.op_breakdown(rs.frame, rs.profile)
    assert wide.sum(axis=1).round(12).tolist() == [1.0, 1.0]


def test_op_section_says_one_run_and_shows_the_range(tmp_path):
    da, db = two_profiled_runs(tmp_path)
    assert main(["report", str(da), str(db), "-o", str(tmp_path / "out")]) == 0
    text = section((tmp_path / "out" / "index.html").read_text(), "Per-op time")
    assert "one profiled run per configuration" in text
    head, rows = table_cells(text)
    assert head[:2] == ["configuration", "profiled runs"] and head[2] == "norm"       # costliest op first
    first = dict(zip(head, rows[0]))
    assert (first["configuration"], first["profiled runs"], first["matmul"]) == ("tiny-q4_k_m tg16", "2",
                                                                                 "16.6 (9.4–23.8)")


def test_op_section_with_single_runs_shows_plain_shares(tmp_path):
    a = rf.frame([rf.row()])
    d = rf.write_dir(tmp_path / "a", a, rf.profile_for(a))
    assert main(["report", str(d), "-o", str(tmp_path / "out")]) == 0
    text = section((tmp_path / "out" / "index.html").read_text(), "Per-op time")
    assert "one profiled run per configuration" in text
    head, rows = table_cells(text)
    first = dict(zip(head, rows[0]))
    assert (first["configuration"], first["profiled runs"], first["matmul"]) == ("tiny-q4_k_m tg16", "1", "9.4")


# ---- (e) the table of every measurement keeps to what a reader uses ---------------------------

def test_all_measurements_table_drops_low_value_columns_and_scrolls(tmp_path):
    rows = [rf.row(vocab=v, n_prompt=p, n_gen=g) for v in ("full", "argmax") for p, g in ((64, 0), (0, 16))]
    d = rf.write_dir(tmp_path / "r", rf.frame(rows))
    assert main(["report", str(d), "-o", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "index.html").read_text()
    part = section(text, "All measurements")
    head, cells = table_cells(part)
    for gone in ("config_id", "engine", "dirty", "model_filename", "isa", "n_threads"):
        assert gone not in head, gone
    assert head[:3] == ["model", "vocab", "test"]
    assert "commit" not in head                               # one commit: said once, above the table
    assert "same in every row: quant q4_k_m, isa avx2, threads 2, ubatch 512, fdn 512, commit aaaaaaaaaa" in part
    assert len(cells) == 4
    assert re.search(r'<div class="wide"><table>', part)
    assert re.search(r"\.wide \{[^}]*overflow-x: auto", text)


# ---- item 11: quality of synthetic models ------------------------------------------------------

@pytest.mark.parametrize("preset", ["tiny", ""])
def test_quality_of_synthetic_models_says_random_weights_amplify_rounding(tmp_path, preset):
    frame, quality = pareto_inputs(preset)
    d = rf.write_dir(tmp_path / "r", frame, quality=quality)
    assert main(["report", str(d), "-o", str(tmp_path / "out")]) == 0
    text = section((tmp_path / "out" / "index.html").read_text(), "Quant type")
    said = "random weights amplify rounding" in text
    assert said == bool(preset)
    if preset:
        assert "synthetic model(s) (preset tiny)" in text
    assert "argmax: no KL (no logits vector)" in text


WIDTHS = """<script>
window.addEventListener('load', function () {
  var d = document.documentElement, out = {page: [d.scrollWidth, d.clientWidth], tables: []};
  var w = document.querySelectorAll('div.wide');
  for (var i = 0; i < w.length; i++)
    out.tables.push([w[i].scrollWidth, w[i].clientWidth, getComputedStyle(w[i]).overflowX]);
  var p = document.createElement('pre'); p.id = 'widths'; p.textContent = JSON.stringify(out);
  document.body.appendChild(p);
});
</script>"""


def _chromium():
    import shutil
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(_chromium() is None and not __import__("os").environ.get("CI"),
                    reason="no Chromium installed (Debian: apt-get install chromium)")
def test_all_measurements_table_fits_a_1280_px_window_in_chromium(tmp_path):
    """A sweep's worth of rows (three quant types x three strategies x pp/tg, as issue 15's repro):
    the page never scrolls sideways, every table sits in a scrolling box, and the table of every
    measurement fits without scrolling."""
    import html
    import json
    import os
    import subprocess
    rows = [rf.row(model=f"tiny-{q}", quant=q, vocab=v, isa="avx512", threads=1, n_prompt=p, n_gen=g,
                   samples=[3000.0, 3100.0], commit="735f093fc753ba10b164ab8be8b4bbbf96772ec4")
            for q in ("q8_0", "q4_k_m", "q4_0") for v in ("full", "argmax", "requant:q4_0")
            for p, g in ((16, 0), (0, 8))]
    d = rf.write_dir(tmp_path / "r", rf.frame(rows))
    out = tmp_path / "out"
    assert main(["report", str(d), "-o", str(out)]) == 0
    probe = out / "probe.html"
    probe.write_text((out / "index.html").read_text().replace("<head>", "<head>\n" + WIDTHS, 1))
    r = subprocess.run([_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
                        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900",
                        "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, HOME=str(tmp_path)),
                       check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="widths">(.*?)</pre>', r.stdout, re.DOTALL)
    assert m, r.stdout[-500:]
    widths = json.loads(html.unescape(m.group(1)))
    assert widths["page"][0] <= widths["page"][1]
    assert {t[2] for t in widths["tables"]} == {"auto"}
    scroll, box, _ = widths["tables"][-1]                     # the last table: every measurement
    assert scroll <= box, f"the table of every measurement is {scroll} px wide in a {box} px box"

"""The A/B page (ab.html): its charts hold the figures of the verdicts and of every round, the page
states the verdicts as printed, the revisions, the noise floor and why the rounds stopped, and every
string from the result is escaped."""
import html
import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from support.ab_results import PP_BASE, PP_HEAD, TG_BASE, TG_HEAD, ab_result

from harness.measure.builds import Revision
from harness.report import ab_html, charts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script> $\\frac{a}{$ & \"q\""


class Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.images, self.scripts, self.text, self.row_classes = [], 0, [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        if tag == "script":
            self.scripts += 1
        if tag == "tr":
            self.row_classes.append(a.get("class", ""))

    def handle_data(self, data):
        self.text.append(data)

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture
def drawn(monkeypatch):
    """The figures the charts save, by file name."""
    figs = {}
    save = charts._save

    def keep(fig, path):
        figs[path.name] = fig
        save(fig, path)
    monkeypatch.setattr(charts, "_save", keep)
    return figs


def test_page_and_both_charts_are_written_with_relative_links(tmp_path):
    page_path = ab_html.write_ab_report(ab_result(), tmp_path / "out")
    assert page_path == tmp_path / "out" / "ab.html"
    page = Page(page_path.read_text())
    assert page.images == ["ab-ratio.png", "ab-rounds.png"]
    for name in page.images:
        assert (tmp_path / "out" / name).read_bytes()[:8] == PNG_MAGIC
    assert page.scripts == 0
    assert "http" not in page_path.read_text()          # nothing outside the folder


def test_page_states_verdicts_revisions_noise_and_why_the_rounds_stopped(tmp_path):
    result = ab_result()
    page = Page(ab_html.write_ab_report(result, tmp_path).read_text())
    text = page.plain
    assert "a significant slowdown (exit status 1)" in text
    pp, tg = result.verdicts
    assert f"tiny q4_k_m pp64 : no significant change (could have detected >= {100 * pp.mde:.1f}%)" in text
    assert "tiny q4_k_m tg16 : SLOWER" in text
    assert "origin/main (aaaaaaaa)" in text and "HEAD (bbbbbbbb)" in text and "b" * 40 in text
    assert f"{tg.ratio:.3f} [{tg.lo:.3f}, {tg.hi:.3f}]" in text and f"{100 * (tg.ratio - 1):+.1f}%" in text
    # the noise floor: A/A spread of one run = sd(ln ratio) / sqrt 2
    aa = {n.test: n for n in result.noise}
    assert aa["tg16"].sd_log == pytest.approx(1.4826 * abs(math.log(20.0 / 20.1) - math.log(20.2 / 19.9)) / 2)  # 1.4826 MAD
    for t in ("pp64", "tg16"):
        n = aa[t]
        assert f"{t} 2 2 {n.median_ts:.2f} {100 * n.run_spread:.1f}% {n.sd_log:.4f}" in text
    assert "8 paired round(s) in 184 s, stopped: settled" in text
    assert "every test was settled at the interim level" in text
    assert "6 to 20 rounds, a time budget of 300 s, threshold 2%" in text
    assert "each 97.50%, Bonferroni" in text
    assert page.row_classes.count("slower") == 1


@pytest.mark.parametrize("stop, why", [
    ("max-rounds", "the most rounds allowed (--rounds) were run before every test was settled"),
    ("time-budget", "one more block of rounds would have overrun the time budget (--time-budget)")])
def test_each_stop_reason_is_explained(tmp_path, stop, why):
    text = Page(ab_html.write_ab_report(ab_result(stop=stop), tmp_path).read_text()).plain
    assert f"stopped: {stop} — {why}" in text


def test_the_round_table_and_ratios_are_each_rounds_head_over_base(tmp_path):
    result = ab_result()
    tg = result.verdicts[1]
    assert ab_html.round_ratios(tg) == [h / b for b, h in zip(TG_BASE, TG_HEAD)]
    text = Page(ab_html.write_ab_report(result, tmp_path).read_text()).plain
    assert "3 99.50 99.10 0.9960 19.80 17.70 0.8939" in text        # round 3 of both tests


def test_the_ratio_chart_draws_each_interval_the_threshold_and_the_mde(tmp_path, drawn):
    result = ab_result()
    ab_html.write_ab_report(result, tmp_path)
    ax = drawn["ab-ratio.png"].axes[0]
    vlines = sorted(round(float(line.get_xdata()[0]), 6) for line in ax.lines if len(set(line.get_xdata())) == 1
                    and len(line.get_xdata()) == 2)
    assert vlines == [0.98, 1.0]                                     # 1 - threshold, and 1
    points = {round(float(line.get_ydata()[0])): float(line.get_xdata()[0])
              for line in ax.lines if line.get_marker() == "o"}
    pp, tg = result.verdicts
    assert points == {1: pytest.approx(pp.ratio), 0: pytest.approx(tg.ratio)}   # pp64 on top
    segments = [c.get_segments() for c in ax.collections if hasattr(c, "get_segments")]
    whiskers = sorted((round(s[0][0], 6), round(s[1][0], 6)) for segs in segments for s in segs
                      if s[0][1] == s[1][1])
    assert (round(tg.lo, 6), round(tg.hi, 6)) in whiskers and (round(pp.lo, 6), round(pp.hi, 6)) in whiskers
    mde = [c for c in ax.collections if c.get_label().startswith("1 - MDE")][0].get_offsets()
    assert {round(y): x for x, y in mde.tolist()} == {0: pytest.approx(1 - tg.mde), 1: pytest.approx(1 - pp.mde)}
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"MDE {100 * v.mde:.1f}%" for v in (pp, tg))


def test_the_rounds_chart_has_one_line_per_test_through_every_round(tmp_path, drawn):
    result = ab_result()
    ab_html.write_ab_report(result, tmp_path)
    ax = drawn["ab-rounds.png"].axes[0]
    series = {line.get_label(): list(line.get_ydata()) for line in ax.lines if not line.get_label().startswith("_")}
    assert series == {"tiny q4_k_m pp64": [h / b for b, h in zip(PP_BASE, PP_HEAD)],
                      "tiny q4_k_m tg16": [h / b for b, h in zip(TG_BASE, TG_HEAD)]}
    levels = sorted(float(line.get_ydata()[0]) for line in ax.lines if line.get_label().startswith("_")
                    and len(set(line.get_ydata())) == 1)
    assert levels == [pytest.approx(0.98), 1.0]


def test_strings_from_the_result_are_escaped_on_the_page_and_harmless_in_charts(tmp_path):
    base = Revision("main", "a" * 40, HOSTILE)
    result = ab_result(label=HOSTILE, base=base)
    text = ab_html.write_ab_report(result, tmp_path).read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert Page(text).scripts == 0
    assert (tmp_path / "ab-ratio.png").read_bytes()[:8] == PNG_MAGIC


def test_without_aa_rounds_or_verdicts_the_page_says_so_and_old_charts_go(tmp_path):
    ab_html.write_ab_report(ab_result(), tmp_path)
    result = ab_result()
    result.noise, result.verdicts = [], []
    text = Page(ab_html.write_ab_report(result, tmp_path).read_text()).plain
    assert "no A/A rounds in this run (--aa-rounds 0)" in text
    assert "no verdicts: nothing was measured" in text
    assert not (tmp_path / "ab-ratio.png").exists() and not (tmp_path / "ab-rounds.png").exists()
    assert "no significant slowdown (exit status 0)" in text


# records, once the page has loaded, whether each image decoded and any error the page raised
IMAGE_PROBE = """<script>
var errs = [];
window.addEventListener('error', function (e) { errs.push(String(e.message || (e.target && e.target.src))); }, true);
window.addEventListener('load', function () {
  var out = Array.prototype.map.call(document.images, function (im) {
    return {src: im.getAttribute('src'), ok: im.complete && im.naturalWidth > 0};
  });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({images: out, errors: errs});
  document.body.appendChild(pre);
});
</script>"""


def _chromium():
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(_chromium() is None and not os.environ.get("CI"),
                    reason="no Chromium installed (Debian: apt-get install chromium)")
def test_the_page_loads_both_charts_in_headless_chromium(tmp_path):
    assert _chromium(), "CI must install Chromium (.ci/run does)"
    page = ab_html.write_ab_report(ab_result(), tmp_path / "out")
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("<head>", "<head>\n" + IMAGE_PROBE, 1))
    r = subprocess.run([_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
                        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                        probe.as_uri()], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=str(tmp_path)), check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="probe">(.*?)</pre>', r.stdout, re.DOTALL)
    assert m, "the probe did not run: " + r.stdout[-500:]
    seen = json.loads(html.unescape(m.group(1)))
    assert seen == {"images": [{"src": "ab-ratio.png", "ok": True}, {"src": "ab-rounds.png", "ok": True}],
                    "errors": []}


def test_a_disturbed_round_is_marked_in_the_round_table_the_rounds_chart_and_the_text(tmp_path, drawn):
    """HEAD's process in round 3 ran at half speed: the verdict leaves that round out, and every place
    that shows the rounds says so."""
    from harness.analysis.paired import judge_paired
    from harness.report.ab_tables import format_ab_text
    result = ab_result()
    slow = list(TG_HEAD)
    slow[2] = TG_HEAD[2] / 2
    tg = judge_paired("tg16", "tiny q4_k_m", 2, result.verdicts[1].base, result.verdicts[1].head, TG_BASE, slow,
                      0.02, result.verdicts[1].level)
    assert tg.left_out == [2] and tg.rounds == 7
    result.verdicts[1] = tg
    text = Page(ab_html.write_ab_report(result, tmp_path).read_text()).plain
    assert f"3 99.50 99.10 0.9960 19.80 8.85 {8.85 / 19.8:.4f} (left out: disturbed)" in text
    marks = [c for c in drawn["ab-rounds.png"].axes[0].collections if c.get_offsets().shape[0]]
    assert [(float(x), float(y)) for c in marks for x, y in c.get_offsets().tolist()] == \
        [(3.0, pytest.approx(8.85 / 19.8))]
    assert "less 0-1 disturbed round(s) per test" in format_ab_text(result)

"""`harness report`: the HTML page and its charts on synthetic result sets, escaping of strings that
come from model files, the shaped tables behind the sections, and the page in headless Chromium."""
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from support import results_factory as rf

from harness.store.results import load_results

from harness.report import data as rd
from harness.cli.main import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script> $\\frac{a}{$ & \"q\""


class Page(HTMLParser):
    """The tags of a page: img sources, script tags, and the text."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.scripts, self.text = [], 0, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data):
        self.text.append(data)


def rich_results(tmp_path: Path, model_name: str = "tiny-q4_k_m") -> tuple[Path, Path]:
    """Two result directories, two commits: an fdn x ubatch prompt sweep, two vocab strategies,
    two quant types, quality measures and a profile; NEW is 20% slower in one configuration."""
    def rows(commit, when, slow):
        out = []
        for q, name in (("q4_k_m", model_name), ("q8_0", "tiny-q8_0")):
            for fdn in (0, 64):
                for ub in (16, 64, 256):
                    base = 100 + ub / 4 + (30 if fdn == 64 and ub >= 64 else 0)
                    scale = 0.8 if slow and (q, fdn, ub) == ("q4_k_m", 0, 16) else 1.0
                    out.append(rf.row(model=name, quant=q, fdn=fdn, ubatch=ub, n_prompt=256, n_gen=0,
                                      samples=[scale * (base + d) for d in (-1, 0, 1, 0.5)],
                                      commit=commit, test_time=when))
            for v, speed in (("full", 50.0), ("topk", 58.0)):
                out.append(rf.row(model=name, quant=q, vocab=v, samples=[speed - 1, speed, speed + 1],
                                  commit=commit, test_time=when))
        return rf.frame(out)

    quality = pd.DataFrame([{"config_id": "", "model": m, "quant": q, "vocab_strategy": v, "n_positions": 64,
                             "top1_agreement": a, "topk_recall": 0.99, "k": 10, "kl_mean": kl, "kl_max": 3 * kl,
                             "max_abs_err": 0.1}
                            for m, q, a, kl in ((model_name, "q4_k_m", 0.93, 0.02), ("tiny-q8_0", "q8_0", 0.99, 0.003))
                            for v in ("full", "topk")], columns=rf.QUALITY_COLUMNS)
    a, b = rows("a" * 40, "2026-11-23T10:00:00+00:00", False), rows("b" * 40, "2026-11-24T10:00:00+00:00", True)
    da = rf.write_dir(tmp_path / "a", a, rf.profile_for(a), quality, rf.provenance("a" * 40, model_name))
    db = rf.write_dir(tmp_path / "b", b, rf.profile_for(b), quality, rf.provenance("b" * 40, model_name))
    return da, db


@pytest.fixture(scope="module")
def rich_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    a, b = rich_results(tmp, model_name=HOSTILE)
    out = tmp / "out"
    # the baseline: A's run and two more runs of it (0.5% apart), so verdicts have a between-run spread
    runs = [str(a)]
    for i, f in enumerate((1.005, 0.995)):
        frame = load_results(a).frame
        frame["samples_ts"] = [json.dumps([x * f for x in (json.loads(v) if isinstance(v, str) else v)])
                               for v in frame["samples_ts"]]
        frame["test_time"] = f"2026-11-23T1{i + 1}:00:00+00:00"
        runs.append(str(rf.write_dir(tmp / f"a{i + 2}", frame)))
    assert main(["report", str(a), str(b), "-o", str(out), "--baseline", ",".join(runs)]) == 0
    return out


def test_report_writes_every_chart_as_a_valid_png_beside_the_page(rich_report):
    page = Page((rich_report / "index.html").read_text())
    assert sorted(page.images) == sorted(["ratio.png", "crossover.png", "pareto.png", "vocab.png", "ops.png",
                                          "roofline.png", "history.png"])
    for src in page.images:
        data = (rich_report / src).read_bytes()
        assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", src
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 300 and height >= 200, src
        import matplotlib.image
        assert matplotlib.image.imread(rich_report / src).shape[:2] == (height, width)


def test_report_highlights_the_slower_configuration(rich_report):
    text = (rich_report / "index.html").read_text()
    slower_rows = re.findall(r'<tr class="slower">(.*?)</tr>', text, re.DOTALL)
    assert len(slower_rows) == 1
    assert "pp256" in slower_rows[0] and "ub16 F0" in slower_rows[0] and "0.800" in slower_rows[0]
    assert "16 configuration(s) compared at threshold 5%: 1 slower, 0 faster, 15 no significant change" in text


def test_report_marks_the_best_fdn_threshold(rich_report):
    text = (rich_report / "index.html").read_text()
    # at ubatch 64 and 256 the threshold 64 is 30 t/s faster: best at 256 for both models
    table = text[text.index("best fdn threshold"):]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    assert [(c[1], c[2], c[3]) for c in cells] == [("64", "256", "194.25")] * 2


def test_a_script_tag_in_a_model_name_is_escaped_everywhere(rich_report):
    text = (rich_report / "index.html").read_text()
    assert "<script" not in text.lower()
    assert Page(text).scripts == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert HOSTILE in "".join(Page(text).text)       # shown to the reader as written


def test_sections_without_data_say_so_in_one_line(tmp_path):
    d = rf.write_dir(tmp_path / "r", rf.frame([rf.row()]))
    out = tmp_path / "out"
    assert main(["report", str(d), "-o", str(out)]) == 0
    text = (out / "index.html").read_text()
    for phrase in ["no baseline given", "no prompt-processing results", "no quality measures",
                   "no configuration measured with more than one vocab strategy", "no per-op profile",
                   "results from 1 commit(s)"]:
        assert phrase in text, phrase
    assert sorted(Page(text).images) == ["roofline.png", "throughput.png"]
    assert sorted(p.name for p in out.glob("*.png")) == ["roofline.png", "throughput.png"]


def test_report_bad_arguments_exit_2(tmp_path, capsys):
    d = rf.write_dir(tmp_path / "r", rf.frame([rf.row()]))
    assert main(["report", str(tmp_path / "none"), "-o", str(tmp_path / "o")]) == 2
    assert main(["report", str(d), "-o", str(tmp_path / "o"), "--threshold", "x%"]) == 2
    assert main(["report", str(d), "-o", str(tmp_path / "o"), "--baseline", "nope"]) == 2
    assert not (tmp_path / "o" / "index.html").exists()


def test_a_baseline_with_nothing_in_common_is_reported_not_fatal(tmp_path, capsys):
    d = rf.write_dir(tmp_path / "r", rf.frame([rf.row(isa="avx2")]))
    other = rf.write_dir(tmp_path / "o", rf.frame([rf.row(isa="scalar")]))
    assert main(["report", str(d), "-o", str(tmp_path / "out"), "--baseline", str(other)]) == 0
    assert "baseline not used" in capsys.readouterr().out


# ---- the tables behind the sections ---------------------------------------------------------

def test_pareto_flags_only_points_nothing_beats_on_both_axes():
    frame = rf.frame([rf.row(model=m, quant=m, samples=[s, s, s]) for m, s in (("a", 10), ("b", 20), ("c", 15))])
    quality = pd.DataFrame({"config_id": [""] * 3, "model": ["a", "b", "c"], "quant": ["a", "b", "c"],
                            "vocab_strategy": ["full"] * 3, "kl_mean": [0.01, 0.05, 0.08]})
    pts = rd.quality_points(frame, quality).set_index("quant")
    assert pts["pareto"].to_dict() == {"a": True, "b": True, "c": False}   # c: slower and worse than b


def test_op_breakdown_gives_fractions_that_sum_to_one():
    frame = rf.frame([rf.row(), rf.row(n_prompt=64, n_gen=0)])
    wide = rd.op_breakdown(frame, rf.profile_for(frame))
    assert len(wide) == 2
    assert wide.sum(axis=1).round(12).tolist() == [1.0, 1.0]
    # the factory's op i in layer l costs (i + 1) * (l + 2) ms: matmul 2 + 3 of 3 + 20 + 30 in all
    assert wide.iloc[0]["matmul"] == pytest.approx(5 / 53)
    assert wide.iloc[0]["norm"] == pytest.approx(20 / 53)


def test_history_orders_commits_by_time():
    rows = [rf.row(commit=c, test_time=t, samples=[s, s]) for c, t, s in
            (("c2", "2026-11-25T00:00:00", 90.0), ("c1", "2026-11-24T00:00:00", 100.0))]
    h = rd.history(rf.frame(rows))
    assert list(h["commit"]) == ["c1", "c2"] and list(h["median_ts"]) == [100.0, 90.0]


# ---- the page in a real browser ---------------------------------------------------------------

PROBE = """<script>
var probeErrors = [];
window.addEventListener('error', function (e) {
  probeErrors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || 'error'));
}, true);
var realConsoleError = console.error;
console.error = function () { probeErrors.push(Array.prototype.join.call(arguments, ' ')); };
window.addEventListener('load', function () {
  var imgs = [];
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i];
    imgs.push({src: im.getAttribute('src'), ok: im.complete && im.naturalWidth > 0});
  }
  var p = document.createElement('pre');
  p.id = 'probe';
  p.textContent = JSON.stringify({images: imgs, errors: probeErrors});
  document.body.appendChild(p);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None and not os.environ.get("CI"),
                    reason="no Chromium installed (Debian: apt-get install chromium)")
def test_report_in_headless_chromium_loads_every_image_without_console_errors(rich_report, tmp_path):
    assert _chromium(), "CI must install Chromium (.ci/run does)"
    # a test copy of the page beside the charts, with a probe that records image status and errors
    page = (rich_report / "index.html").read_text()
    probe = rich_report / "probe.html"
    probe.write_text(page.replace("<head>", "<head>\n" + PROBE, 1))
    r = subprocess.run([_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
                        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
                        "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, HOME=str(tmp_path)),
                       check=False)
    probe.unlink()
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="probe">(.*?)</pre>', r.stdout, re.DOTALL)
    assert m, "the probe did not run: " + r.stdout[-500:]
    import html
    result = json.loads(html.unescape(m.group(1)))
    assert len(result["images"]) == 7
    assert [i["src"] for i in result["images"] if not i["ok"]] == []
    assert result["errors"] == []
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == []


def test_report_on_a_real_sweep_of_a_model_with_a_hostile_name(synth_dir, tmp_path):
    """From a GGUF file to the page: the preset name in the file's metadata becomes the model name
    of the sweep's rows; the page shows it escaped, and the store the sweep writes is what the
    report reads (charts drawn from a real sweep)."""
    import dataclasses

    from harness.model.presets import get_preset
    from harness.model.synth import synthesize
    gguf = tmp_path / "hostile.gguf"
    synthesize(dataclasses.replace(get_preset("tiny"), name=HOSTILE), "q8_0", gguf)
    out = tmp_path / "sweep"
    assert main(["sweep", "--model", str(gguf), "--fdn", "0,16", "--ubatch", "8,32",
                 "--pp", "16", "--tg", "4", "-r", "2", "-o", str(out)]) == 0
    assert main(["report", str(out), "-o", str(tmp_path / "html"), "--baseline", str(out)]) == 0
    text = (tmp_path / "html" / "index.html").read_text()
    page = Page(text)
    assert page.scripts == 0 and "<script" not in text.lower()
    assert f"{HOSTILE}-q8_0" in "".join(page.text)
    assert {"ratio.png", "crossover.png", "ops.png", "roofline.png"} <= set(page.images)
    for src in page.images:
        assert (tmp_path / "html" / src).read_bytes()[:8] == PNG_MAGIC
    # one run per side and no noise record of the machine: shown, not judged (issue 14)
    assert ("8 configuration(s) compared at threshold 5%: 0 slower, 0 faster, 0 no significant change; "
            "8 cannot be judged") in text


def test_a_busy_side_is_shown_as_not_judged_in_the_report(tmp_path, capsys):
    """A pair whose NEW side was measured on a busy machine: the verdict row says "machine busy" (orange,
    not red), the page says why, and the All measurements table carries the flag."""
    tight = [100.0, 101.0, 99.0, 100.5, 99.5]
    runs = list(enumerate((1.0, 1.01, 0.99)))      # three runs per side: a verdict needs the between-run spread
    base = rf.frame([rf.row(n_gen=16, samples=[x * f for x in tight], test_time=f"2026-11-23T10:0{i}:00+00:00")
                     for i, f in runs])
    new = rf.frame([rf.row(n_gen=16, samples=[x * 0.5 * f for x in tight], commit="b" * 40,
                           test_time=f"2026-11-24T10:0{i}:00+00:00") for i, f in runs])
    base["machine_busy"], new["machine_busy"] = [False] * 3, [True] * 3
    new["busy_note"] = ["machine busy: other processes took 1.9 of the 2 CPU(s)"] * 3
    b, n = rf.write_dir(tmp_path / "base", base), rf.write_dir(tmp_path / "new", new)
    out = tmp_path / "report"
    assert main(["report", str(n), "-o", str(out), "--baseline", str(b)]) == 0
    text = (out / "index.html").read_text()
    assert '<tr class="busy">' in text and '<tr class="slower">' not in text
    assert "the machine was busy on one side, so the change is not judged" in text
    all_measurements = text[text.index("All measurements"):]
    assert "<th>machine busy</th>" in all_measurements

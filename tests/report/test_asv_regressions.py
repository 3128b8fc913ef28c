"""Regressions that `asv publish` found, read as typed rows and shown in `harness report --asv-html`.

The regressions.json and index.json of the main fixture are made by asv itself: a throwaway git
repository of ten commits, asv results for them written through asv's own classes
(asv.results.Results.add_result / save, asv.util.write_json for benchmarks.json and machine.json)
and `python -m asv publish`, which runs asv/plugins/regressions.py (Regressions.publish writes
regressions.json) and asv/commands/publish.py (index.json). The hand-written cases further down
follow that format, as documented in harness/report/asv_regressions.py."""
import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import results_factory as rf

from harness.cli.main import main
from harness.report.asv_regressions import AsvFormatError, human_value, parse_regressions, read_regressions

TG = "bench_engine.TokenGeneration.time_tg16"
VEC = "bench_kernels.VecDot.time_vec_dot"
HOSTILE = "<script>alert(1)</script>"


def _need_asv():
    try:
        import asv  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("asv is not installed (pip install -e '.[test]')")
        pytest.skip("asv is not installed")


def make_asv_project(root: Path) -> list[str]:
    """Ten commits (author dates 2026-01-01 .. 01-10, UTC) and asv results for them, on machine m1:
    TG(quant) is 0.10 s for q4_k_m up to commit 4 and 0.13 s from commit 5 (a step in one commit),
    0.20 s for q8_0 throughout; VEC is 1.0 s up to commit 4, not measured at commits 5 and 6, and
    1.5 s from commit 7 (a step somewhere in 4..7). Returns the commit hashes, oldest first."""
    from asv import util
    from asv.results import Results
    from asv.runner import BenchmarkResult

    root.mkdir(parents=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org")

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()
    git("init", "-q", "-b", "main")
    hashes = []
    for i in range(10):
        (root / "f.txt").write_text(str(i))
        git("add", "f.txt")
        git("commit", "-q", "-m", f"commit {i}", "--date", f"2026-01-{i + 1:02d}T00:00:00+0000")
        hashes.append(git("rev-parse", "HEAD"))
    conf = {"version": 1, "project": "demo", "project_url": "", "repo": ".", "dvcs": "git", "branches": ["main"],
            "environment_type": "virtualenv", "results_dir": "results", "html_dir": "html", "hash_length": 8,
            "show_commit_url": "https://github.com/o/r/commit/", "regressions_thresholds": {".*": 0.05}}
    (root / "asv.conf.json").write_text(json.dumps(conf))
    tg = {"name": TG, "type": "time", "unit": "seconds", "version": "1", "timeout": 60,
          "params": [["'q4_k_m'", "'q8_0'"]], "param_names": ["quant"]}
    vec = {"name": VEC, "type": "time", "unit": "seconds", "version": "1", "timeout": 60,
           "params": [], "param_names": []}
    results = str(root / "results")
    util.write_json(os.path.join(results, "benchmarks.json"), {b["name"]: b for b in (tg, vec)}, api_version=2)
    util.write_json(os.path.join(results, "m1", "machine.json"),
                    {"machine": "m1", "os": "Linux", "arch": "x86_64", "cpu": "test", "num_cpu": "2", "ram": "4GB"},
                    api_version=1)
    started = datetime.datetime(2026, 1, 11, tzinfo=datetime.timezone.utc)
    for i, h in enumerate(hashes):
        r = Results({"machine": "m1", "python": "3.11"}, {}, h, 1767225600000 + i * 86_400_000, "3.11",
                    "virtualenv-py3.11", {})
        r.add_result(tg, BenchmarkResult([0.10 if i < 5 else 0.13, 0.20], [None, None], [None, None], 0, "", None),
                     started_at=started, duration=1.0)
        if i not in (5, 6):
            r.add_result(vec, BenchmarkResult([1.0 if i < 5 else 1.5], [None], [None], 0, "", None),
                         started_at=started, duration=1.0)
        r.save(results)
    return hashes


@pytest.fixture(scope="module")
def asv_html(tmp_path_factory):
    _need_asv()
    root = tmp_path_factory.mktemp("asv") / "project"
    hashes = make_asv_project(root)
    r = subprocess.run([sys.executable, "-m", "asv", "publish"], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return root / "html", hashes


def test_asv_publish_wrote_the_format_the_reader_expects(asv_html):
    html, hashes = asv_html
    data = json.loads((html / "regressions.json").read_text())
    by_name = {e[0]: e for e in data["regressions"]}
    assert sorted(by_name) == [f"{TG}('q4_k_m')", VEC]
    assert by_name[f"{TG}('q4_k_m')"][2:] == [{}, 0, 0.13, 0.10, [[None, 5, 0.10, 0.13]]]
    assert by_name[VEC][2:] == [{}, None, 1.5, 1.0, [[4, 7, 1.0, 1.5]]]
    index = json.loads((html / "index.json").read_text())
    assert index["revision_to_hash"]["5"] == hashes[5] and index["hash_length"] == 8


def test_rows_name_benchmark_parameters_commits_values_and_factor(asv_html):
    html, hashes = asv_html
    found = read_regressions(html)
    assert found.project == "demo" and found.html_dir == html
    rows = {r.benchmark: r for r in found.rows}
    assert len(found.rows) == 2
    tg = rows[TG]
    assert (tg.name, tg.params, tg.graph_params) == (f"{TG}('q4_k_m')", {"quant": "'q4_k_m'"}, {})
    assert (tg.good, tg.bad, tg.commits) == (None, hashes[5], f"{hashes[5][:8]}^!")
    assert (tg.old, tg.new, tg.last, tg.best, tg.unit) == (0.10, 0.13, 0.13, 0.10, "seconds")
    assert tg.factor == pytest.approx(1.3)
    assert tg.date == "2026-01-06T00:00:00+00:00"
    assert tg.graph == f"graphs/branch-main/machine-m1/python-3.11/{TG}.json"
    vec = rows[VEC]
    assert (vec.params, vec.good, vec.bad) == ({}, hashes[4], hashes[7])
    assert vec.commits == f"{hashes[4][:8]}..{hashes[7][:8]}"
    assert (vec.old, vec.new, vec.factor) == (1.0, 1.5, 1.5)
    assert vec.date == "2026-01-08T00:00:00+00:00"


def test_report_shows_the_asv_regressions_only_when_asked(asv_html, tmp_path, capsys):
    html, hashes = asv_html
    d = rf.write_dir(tmp_path / "r", rf.frame([rf.row()]))
    assert main(["report", str(d), "-o", str(tmp_path / "plain")]) == 0
    assert main(["report", str(d), "-o", str(tmp_path / "asv"), "--asv-html", str(html)]) == 0
    assert f"asv: 2 regression(s) in {html}" in capsys.readouterr().out
    plain = (tmp_path / "plain" / "index.html").read_text()
    page = (tmp_path / "asv" / "index.html").read_text()
    assert "Regressions found by asv" not in plain
    heads = re.findall(r"<h2>(.*?)</h2>", page)
    assert heads == [h for h in re.findall(r"<h2>(.*?)</h2>", plain) if h != "All measurements"] + [
        "Regressions found by asv", "All measurements"]
    section = page.split("<h2>Regressions found by asv</h2>")[1].split("<h2>")[0]
    rows = re.findall(r'<tr class="slower">(.*?)</tr>', section)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    assert [TG, "quant=&#x27;q4_k_m&#x27;", f"{hashes[5][:8]}^!", "2026-01-06 00:00", "100 ms", "130 ms",
            "1.30x", "130 ms"] in cells
    assert [VEC, "", f"{hashes[4][:8]}..{hashes[7][:8]}", "2026-01-08 00:00", "1 s", "1.5 s", "1.50x",
            "1.5 s"] in cells
    assert "2 regression(s) found by <code>asv publish</code>" in section


def test_asv_html_that_is_missing_or_not_asvs_is_refused(tmp_path, capsys):
    d = rf.write_dir(tmp_path / "r", rf.frame([rf.row()]))
    assert main(["report", str(d), "-o", str(tmp_path / "o"), "--asv-html", str(tmp_path / "none")]) == 2
    assert "no such asv HTML directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(d), "-o", str(tmp_path / "o"), "--asv-html", str(tmp_path / "empty")]) == 2
    assert "holds no regressions.json" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "regressions.json").write_text('{"regressions": [["x", "g", {}, null, 1.0, 1.0]]}')
    (bad / "index.json").write_text('{"revision_to_hash": {}}')
    assert main(["report", str(d), "-o", str(tmp_path / "o"), "--asv-html", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "regressions.json entry 0: expected [name, graph, params, index, last, best, jumps]" in err
    assert not (tmp_path / "o" / "index.html").exists()


# ---- hand-written, in asv's format -----------------------------------------------------------------

INDEX = {"project": "demo", "hash_length": 10,
         "revision_to_hash": {"3": "3" * 40, "9": "9" * 40, "12": "c" * 40},
         "revision_to_date": {"9": 1767916800000},
         "benchmarks": {VEC: {"params": [["'q8_0'", "'q4_k'"], ["'avx2'", "'scalar'"]],
                              "param_names": ["type", "isa"], "unit": "seconds"}}}


def test_parameters_come_from_the_flat_index_and_graph_parameters_are_kept():
    data = {"regressions": [
        [f"{VEC}('q4_k', 'scalar')", "graphs/x.json", {"machine": "m2", "python": None}, 3, 2e-6, 1e-6,
         [[3, 9, 1e-6, 1.5e-6], [None, 12, 1.5e-6, 2e-6]]],
        ["bench.skipped", "graphs/y.json", {}, None, None, None, None],        # asv's page skips these too
    ]}
    rows = parse_regressions(data, INDEX)
    assert len(rows) == 2
    a, b = rows
    assert a.params == {"type": "'q4_k'", "isa": "'scalar'"}                   # index 3 = (q4_k, scalar)
    assert a.graph_params == {"machine": "m2", "python": ""}
    assert (a.good, a.bad, a.commits) == ("3" * 40, "9" * 40, "3333333333..9999999999")
    assert a.date == "2026-01-09T00:00:00+00:00" and b.date == ""
    assert (b.good, b.bad, b.commits, b.factor) == (None, "c" * 40, "cccccccccc^!", pytest.approx(2e-6 / 1.5e-6))
    assert (human_value(a.old, "seconds"), human_value(a.new, "seconds")) == ("1 us", "1.5 us")


@pytest.mark.parametrize("data, index, message", [
    ({"regression": []}, INDEX, 'expected {"regressions": \\[...\\]}'),
    ({"regressions": []}, {}, "no revision_to_hash"),
    ({"regressions": [[VEC, "g", {}, 7, 1.0, 1.0, [[3, 9, 1.0, 2.0]]]]}, INDEX, "parameter index 7 outside the 4"),
    ({"regressions": [[VEC, "g", {}, 0, 1.0, 1.0, [[3, 10, 1.0, 2.0]]]]}, INDEX, "revision 10 is not in"),
    ({"regressions": [[VEC, "g", {}, 0, 1.0, 1.0, [[3, 9, "1.0", 2.0]]]]}, INDEX, "expected a number, got '1.0'"),
    ({"regressions": [[VEC, "g", {}, 0, 1.0, 1.0, [[3, 9]]]]}, INDEX, "jump 0: expected"),
])
def test_a_file_not_in_asvs_format_is_named(data, index, message):
    with pytest.raises(AsvFormatError, match=message):
        parse_regressions(data, index)


def test_names_from_asv_are_escaped_in_the_report(tmp_path):
    html = tmp_path / "html"
    html.mkdir()
    name = f"bench.{HOSTILE}"
    (html / "regressions.json").write_text(json.dumps(
        {"regressions": [[name, "g", {"machine": HOSTILE}, None, 2.0, 1.0, [[None, 9, 1.0, 2.0]]]]}))
    (html / "index.json").write_text(json.dumps({"project": HOSTILE, "revision_to_hash": {"9": "9" * 40}}))
    d = rf.write_dir(tmp_path / "r", rf.frame([rf.row()]))
    assert main(["report", str(d), "-o", str(tmp_path / "out"), "--asv-html", str(html)]) == 0
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<script>" not in page
    # benchmark (cut at its first "(" as asv cuts the parameters off), graph column, project
    assert page.count("&lt;script&gt;alert") == 3


def test_no_regressions_is_said_in_one_line(tmp_path):
    html = tmp_path / "html"
    html.mkdir()
    (html / "regressions.json").write_text('{"regressions": []}')
    (html / "index.json").write_text('{"project": "demo", "revision_to_hash": {}}')
    d = rf.write_dir(tmp_path / "r", rf.frame([rf.row()]))
    assert main(["report", str(d), "-o", str(tmp_path / "out"), "--asv-html", str(html)]) == 0
    assert f"asv found no regressions in {html} (project demo)" in (tmp_path / "out" / "index.html").read_text()

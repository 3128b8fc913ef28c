"""llama-bench interop without loss (issue 18 item 2): every field llama-bench writes, in each of its
four formats, read back the same; settings such as flash_attn keep configurations apart; ik_llama.cpp
records are named as such; and llama.cpp's own compare-llama-bench.py tables our output."""
import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import ResultsCorruptError
from harness.store import llama_bench_format as fmt
from harness.store.llama_bench import read_records
from harness.store.results import load_results
from support.paths import ROOT

# real llama-bench output (llama.cpp 0c1e570, CPU build) on this project's synthetic 0.8b Q4_K_M file
LLAMA = ROOT / "reports" / "comparisons" / "2026-11-23-llama.cpp-0.8b" / "llama-q4_k_m-1.json"


def llama_records() -> list[dict]:
    return json.loads(LLAMA.read_text())


def test_the_field_list_is_the_one_llama_bench_writes():
    """The stored llama-bench JSON has exactly FIELDS, in order, then the samples."""
    for r in llama_records():
        assert list(r) == list(fmt.FIELDS) + ["samples_ns", "samples_ts"]


def test_csv_is_written_as_llama_bench_writes_it_and_read_back_typed():
    rec = llama_records()[1]
    text = fmt.to_csv([{k: v for k, v in rec.items() if k in fmt.FIELDS}])
    header, line = text.splitlines()
    assert header == ",".join(fmt.FIELDS)
    # llama-bench's csv_printer: every value std::to_string'd and double-quoted; bools as 0/1
    assert line.startswith(f'"0c1e570","1","AMD EPYC","","CPU","{rec["model_filename"]}",'
                           '"qwen35 0.8B Q4_K - Medium",')
    assert ',"0x0","0","50","f16","f16","-1","0","layer","0","0","-1","auto","0.00","none","auto","auto","0",' in line
    assert line.endswith(f'"{rec["avg_ts"]:.6f}","{rec["stddev_ts"]:.6f}"')


@pytest.mark.parametrize("form", ["json", "jsonl", "csv", "sql", "sqlite"])
def test_each_format_reads_back_every_field(tmp_path, form):
    recs = llama_records()
    path = tmp_path / f"llama.{form}"
    if form == "json":
        path.write_text(json.dumps(recs, indent=2))
    elif form == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    elif form == "csv":
        path.write_text(fmt.to_csv(recs))
    else:
        sql = fmt.to_sql(recs)
        if form == "sql":
            path.write_text(sql)
        else:                                     # `llama-bench -o sql | sqlite3 llama-bench.sqlite`
            con = sqlite3.connect(path)
            con.executescript(sql)
            con.close()
    back = read_records(path)
    assert len(back) == 2
    for got, want in zip(back, recs):
        for k in fmt.FIELDS:
            if isinstance(want[k], float):
                assert got[k] == pytest.approx(want[k], abs=1e-6), k
            elif k == "tensor_split":
                assert str(got[k]) == str(want[k]), k
            else:
                assert got[k] == want[k], (form, k)
        if form in ("json", "jsonl", "csv", "sql", "sqlite") and "samples_ts" in got:
            assert got["samples_ts"] == want["samples_ts"]
    f = load_results(path).frame
    assert list(f["test"]) == ["pp512", "tg128"] and set(f["engine"]) == {"llama.cpp"}
    assert f.loc[1, "avg_ts"] == pytest.approx(recs[1]["avg_ts"], rel=1e-5)


def test_csv_and_sql_without_samples_keep_llama_bench_stddev(tmp_path):
    recs = [{k: v for k, v in r.items() if k in fmt.FIELDS} for r in llama_records()]
    p = tmp_path / "llama.csv"
    p.write_text(fmt.to_csv(recs))
    f = load_results(p).frame
    assert f.loc[1, "stddev_ts"] == pytest.approx(recs[1]["stddev_ts"], abs=1e-6)
    assert bool(f.loc[1, "spread_ok"]) == (recs[1]["stddev_ts"] / recs[1]["avg_ts"] <= 0.05)


def test_sql_text_that_reaches_outside_the_database_is_refused(tmp_path):
    target = tmp_path / "written.db"
    p = tmp_path / "evil.sql"
    p.write_text(fmt.to_sql(llama_records()) + f"\nATTACH DATABASE '{target}' AS x;\nCREATE TABLE x.t (a);\n")
    with pytest.raises(ResultsCorruptError, match="not a readable llama-bench SQLite"):
        read_records(p)
    assert not target.exists()


@pytest.mark.parametrize("text,message", [
    ("model_filename,avg_ts\n", "a header but no rows"),
    ("a,b\n1,2\n", "not JSON, JSONL, CSV with llama-bench.s header, or SQL"),
    ("CREATE TABLE other (a TEXT);\n", "no llama_bench table"),
])
def test_bad_csv_and_sql_files_are_named(tmp_path, text, message):
    p = tmp_path / "x.txt"
    p.write_text(text)
    with pytest.raises(ResultsCorruptError, match=message) as e:
        read_records(p)
    assert str(p) in str(e.value)


def _with(recs, **over):
    return [dict(r, **over) for r in recs]


def test_a_flash_attn_pair_stays_two_configurations(tmp_path, capsys):
    """The issue's case: BASE and NEW each ran -fa 0,1; compare gives two rows per test, each judged
    on its own (fa 1 unchanged, fa 0 20% slower), where keying on model/lengths/threads merged them."""
    recs = llama_records()

    def run(fa0_factor, i):
        out = []
        for r in recs:
            for fa, f in ((0, fa0_factor), (1, 1.0)):
                out.append(dict(r, flash_attn=fa, build_commit=f"c{i}", test_time=f"2026-11-23T1{i}:00:00Z",
                                samples_ts=[x * f * (1 + 0.001 * j) for j, x in enumerate(r["samples_ts"])]))
        return out
    base = [tmp_path / f"base{i}.json" for i in range(3)]
    new = [tmp_path / f"new{i}.json" for i in range(3)]
    for i, (b, n) in enumerate(zip(base, new)):
        b.write_text(json.dumps(run(1.0, i)))
        n.write_text(json.dumps(run(0.8, i)))
    rc = main(["compare", ",".join(map(str, base)), ",".join(map(str, new)), "-o", "md"])
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| 0.8b")]
    assert len(rows) == 4, out
    fa0 = [ln for ln in rows if "flash_attn=0" in ln]
    fa1 = [ln for ln in rows if "flash_attn=1" in ln]
    assert len(fa0) == 2 and all("SLOWER" in ln and "0.800" in ln for ln in fa0), out
    assert len(fa1) == 2 and all("no significant change" in ln and "1.000" in ln for ln in fa1), out
    assert rc == 1


def test_ik_llama_records_are_named_ik_and_keep_their_settings(tmp_path):
    ik = [dict(r, mla_attn=0, fused_moe=1, rtr=1) for r in llama_records()]
    for r in ik:
        r.pop("n_depth")                   # ik's llama-bench has no depth field
    p = tmp_path / "ik.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in ik))
    f = load_results(p).frame
    assert set(f["engine"]) == {"ik_llama.cpp"}
    settings = json.loads(f.loc[0, "engine_settings"])
    assert settings["rtr"] == 1 and settings["fused_moe"] == 1 and settings["mla_attn"] == 0


def test_model_type_is_what_llama_bench_calls_the_file():
    """The synthetic 0.8b Q4_K_M file's model_type as llama-bench wrote it for the very file."""
    from harness.model.presets import PRESETS
    c = PRESETS["0.8b"]
    assert fmt.model_type("qwen35", c.n_layer, c.n_embd, 15) == llama_records()[0]["model_type"]
    assert fmt.model_type("qwen35moe", 40, 2048, 30) == "qwen35moe 35B.A3B IQ4_XS - 4.25 bpw"
    assert fmt.model_type("qwen35", 3, 256, 7) == "qwen35 ?B Q8_0"


@pytest.fixture(scope="module")
def our_records(tmp_path_factory):
    """One `harness bench` of the tiny model in each output format (fresh processes, as users run it)."""
    from harness.model.synth import cached_model
    model = cached_model("tiny", "q8_0")
    out = {}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for form in ("json", "csv", "sql"):
        r = subprocess.run([sys.executable, "-m", "harness.cli", "bench", str(model), "-p", "8", "-n", "4", "-r", "2",
                            "-t", "1", "-o", form], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        out[form] = r.stdout
    return model, out


def test_our_json_csv_and_sql_carry_every_llama_bench_field(our_records, tmp_path):
    model, out = our_records
    recs = json.loads(out["json"])
    assert all(list(r)[:len(fmt.FIELDS)] == list(fmt.FIELDS) for r in recs)
    assert out["csv"].splitlines()[0].startswith(",".join(fmt.FIELDS) + ",")
    r = recs[0]
    assert (r["type_k"], r["flash_attn"], r["n_gpu_layers"], r["backends"]) == ("f32", 0, -1, "CPU")
    assert r["model_type"] == "qwen35 ?B Q8_0" and r["test_time"].endswith("Z")
    for form in ("csv", "sql"):
        p = tmp_path / f"ours.{form}"
        p.write_text(out[form])
        back = load_results(p).frame
        assert set(back["engine"]) == {"qwen35-harness"}
        assert list(back["test"]) == ["pp8", "tg4"]
        if form == "csv":
            written = [json.loads(row["samples_ts"]) for row in csv.DictReader(io.StringIO(out[form]))]
        else:
            con = sqlite3.connect(":memory:")
            con.executescript(out[form])
            written = [json.loads(x)["samples_ts"] for (x,) in con.execute(f"SELECT record FROM {fmt.OWN_SQL_TABLE}")]
        assert [len(w) for w in written] == [2, 2]
        assert list(back["samples_ts"]) == written                  # our samples come back, not one average
        assert back.loc[1, "isa"] == recs[1]["isa"] and back.loc[1, "model_hash"] == recs[1]["model_hash"]


def _sdist_llama_cpp() -> Path | None:
    for base in filter(None, [os.environ.get("HARNESS_LLAMA_CPP_SRC"),
                              str(ROOT.parent / "sdist" / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp")]):
        if (Path(base) / "scripts" / "compare-llama-bench.py").is_file():
            return Path(base)
    return None


def test_compare_llama_bench_script_tables_our_sqlite_against_llama_cpp(our_records, tmp_path):
    """llama.cpp's own scripts/compare-llama-bench.py (llama-cpp-python 0.3.36 sdist; set
    HARNESS_LLAMA_CPP_SRC to its vendor/llama.cpp) reads one sqlite database holding our `-o sql`
    and llama-bench's rows of the same file and settings, and tables ours against theirs."""
    src = _sdist_llama_cpp()
    if src is None:
        pytest.skip("llama.cpp source (llama-cpp-python 0.3.36 sdist) not found; set HARNESS_LLAMA_CPP_SRC")
    pytest.importorskip("git", reason="compare-llama-bench.py needs GitPython")
    pytest.importorskip("tabulate", reason="compare-llama-bench.py needs tabulate")
    model, out = our_records
    (tmp_path / "ours.sql").write_text(out["sql"])
    ours = read_records(tmp_path / "ours.sql")
    # llama-bench's rows for the same file run with our settings (-fa 0 --repack 0 -ub 512, the same cache types),
    # its figures 0.9x ours
    llama = [{k: (r[k] * 0.9 if k in ("avg_ts",) else r[k]) for k in fmt.FIELDS} for r in ours]
    for r in llama:
        r.update(build_commit="0c1e570", build_number=1, test_time="2026-11-23T10:00:00Z")
    db = tmp_path / "llama-bench.sqlite"
    con = sqlite3.connect(db)
    con.executescript(fmt.to_sql(llama))           # what `llama-bench -o sql | sqlite3 db` leaves
    con.executescript(out["sql"])                   # `harness bench -o sql | sqlite3 db`
    con.close()
    if shutil.which("sqlite3"):                     # and the real pipe gives the same database
        db2 = tmp_path / "piped.sqlite"
        for text in (fmt.to_sql(llama), out["sql"]):
            subprocess.run(["sqlite3", str(db2)], input=text, text=True, check=True)
        assert read_records(db2) == read_records(db)
    ours_commit = ours[0]["build_commit"]
    assert len(ours_commit) == 7 and ours[0]["commit"].startswith(ours_commit)
    r = subprocess.run([sys.executable, str(src / "scripts" / "compare-llama-bench.py"), "-i", str(db),
                        "-b", "0c1e570", "-c", ours_commit], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    table = [ln for ln in r.stdout.splitlines() if ln.startswith("|") and ("pp8" in ln or "tg4" in ln)]
    assert len(table) == 2, r.stdout + r.stderr
    for ln, rec in zip(table, ours):
        cells = [c.strip() for c in ln.strip("|").split("|")]
        assert float(cells[-1]) == pytest.approx(1 / 0.9, abs=0.01)          # speedup, ours / theirs

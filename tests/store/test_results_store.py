"""The results store: tidy rows in, the same rows out; atomic writes, one writer at a time, damaged
files named and never overwritten, llama-bench JSON read into the same schema."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from harness.errors import ResultsCorruptError, ResultsError, ResultsLockedError
from harness.store.results import ResultStore, load_many, load_results
from harness.store.schema import KEY_COLUMNS, PROFILE_COLUMNS, RESULT_COLUMNS, config_id
from support.paths import ROOT



def make_row(**over):
    samples = over.pop("samples", [100.0, 110.0, 90.0])
    row = {"model": "tiny-q8_0", "model_filename": "/x/tiny.gguf", "model_hash": "ab" * 32,
           "model_preset": "tiny", "quant": "q8_0", "isa": "avx2", "n_threads": 2, "n_ubatch": 512,
           "fdn_threshold": 16, "vocab_strategy": "full", "n_prompt": 32, "n_gen": 0, "n_depth": 0,
           "test": "pp32", "avg_ts": sum(samples) / len(samples), "median_ts": sorted(samples)[len(samples) // 2],
           "stddev_ts": 10.0, "min_ts": min(samples), "max_ts": max(samples), "samples_ts": samples,
           "ms_per_token": 10.0, "weight_gbps": float("nan"), "machine_read_gbps": 20.0,
           "bandwidth_fraction": float("nan"), "peak_rss_bytes": 123456, "spread_ok": False,
           "engine": "qwen35-harness", "commit": "c0ffee", "dirty": True, "version": "0.1.0",
           "test_time": "2026-01-01T00:00:00+00:00", "cpu_info": "AMD EPYC", "load_avg": 1.5,
           "cpu_affinity": "0-1"}
    row.update(over)
    return row


def test_config_id_is_stable_and_depends_on_every_key_column():
    base = make_row()
    assert config_id(base) == config_id(dict(base, avg_ts=1.0, commit="other"))  # figures are not identity
    ids = {config_id(dict(base, **{k: f"changed-{k}"})) for k in KEY_COLUMNS}
    assert len(ids) == len(KEY_COLUMNS) and config_id(base) not in ids
    # the same value read back from CSV (int as float, None as NaN) hashes the same
    assert config_id(dict(base, n_threads=2.0, fdn_threshold=16.0)) == config_id(base)
    assert config_id(dict(base, fdn_threshold=None)) == config_id(dict(base, fdn_threshold=float("nan")))


def test_rows_round_trip_through_the_store(tmp_path):
    rows = [make_row(), make_row(test="tg8", n_prompt=0, n_gen=8, samples=[20.0, 21.0], weight_gbps=3.5,
                                 spread_ok=True, dirty=False)]
    prof = [{"config_id": "", "test": "pp32", "layer": 0, "op": "matmul", "calls": 3, "ns": 1000, "bytes": 64},
            {"config_id": "", "test": "pp32", "layer": -1, "op": "lm_head", "calls": 1, "ns": 500, "bytes": 32}]
    with ResultStore(tmp_path / "r") as st:
        ids = st.append(rows[:1], [dict(p, config_id=config_id(rows[0])) for p in prof])
        st.append(rows[1:])
        st.write_provenance({"created": "t0", "commit": "c0ffee"})
    assert not (tmp_path / "r" / ".lock").exists()
    rs = load_results(tmp_path / "r")
    f = rs.frame
    assert list(f.columns[:len(RESULT_COLUMNS)]) == RESULT_COLUMNS and len(f) == 2
    assert f.loc[0, "config_id"] == ids[0] == config_id(rows[0])
    assert f.loc[0, "samples_ts"] == [100.0, 110.0, 90.0] and f.loc[1, "samples_ts"] == [20.0, 21.0]
    assert list(f["spread_ok"]) == [False, True] and list(f["dirty"]) == [True, False]
    assert f.loc[1, "weight_gbps"] == 3.5 and pd.isna(f.loc[0, "weight_gbps"])
    assert list(f["model_preset"]) == ["tiny", "tiny"] and f.loc[0, "cpu_affinity"] == "0-1"
    # ids recomputed from what was read back agree with the stored ones
    assert [config_id(r) for r in f.to_dict("records")] == list(f["config_id"])
    assert list(rs.profile.columns) == PROFILE_COLUMNS and list(rs.profile["layer"]) == [0, -1]
    assert rs.provenance["commit"] == "c0ffee" and len(rs.provenance["runs"]) == 1
    assert rs.quality.empty


def test_a_profile_written_before_the_macs_column_reads_with_zero_macs(tmp_path):
    row = make_row()
    old = [{"config_id": config_id(row), "test": "pp32", "layer": 0, "op": "mm_ffn_down", "calls": 3, "ns": 1000,
            "bytes": 64}]
    with ResultStore(tmp_path / "r") as st:
        st.append([row])
    pd.DataFrame(old).to_csv(tmp_path / "r" / "profile.csv", index=False)   # the columns of an older store
    assert list(load_results(tmp_path / "r").profile.macs) == [0]
    with ResultStore(tmp_path / "r", resume=True) as st:                    # and a run adds to it
        new = make_row(test="pp64", n_prompt=64)
        st.append([new], [dict(old[0], config_id=config_id(new), test="pp64", macs=4096)])
    prof = load_results(tmp_path / "r").profile
    assert list(prof.columns) == PROFILE_COLUMNS and list(prof.macs) == [0, 4096]


def test_load_many_tags_each_row_with_its_source(tmp_path):
    for name, commit in (("a", "111"), ("b", "222")):
        with ResultStore(tmp_path / name) as st:
            st.append([make_row(commit=commit)])
            st.write_provenance({"commit": commit})
    rs = load_many([tmp_path / "a", tmp_path / "b"])
    assert list(rs.frame["commit"]) == ["111", "222"]
    assert list(rs.frame["source"]) == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert rs.provenance["sources"][str(tmp_path / "b")]["commit"] == "222"


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    with ResultStore(tmp_path / "r"):
        with pytest.raises(ResultsLockedError, match=rf"being written by another process \(pid {os.getpid()}"):
            ResultStore(tmp_path / "r", resume=True).open()
    with ResultStore(tmp_path / "r", resume=True):   # free again once the first closed
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (d / ".lock").write_text(json.dumps({"pid": int(dead), "host": "h", "since": "then"}))
    with ResultStore(d) as st:            # the kernel released the dead process's flock
        assert st.stale_lock == {"pid": int(dead), "host": "h", "since": "then"}
        st.append([make_row()])
    assert len(load_results(d).frame) == 1


def test_a_directory_with_results_needs_resume(tmp_path):
    with ResultStore(tmp_path / "r") as st:
        st.append([make_row()])
    with pytest.raises(ResultsError, match="already holds 1 result.*--resume"):
        ResultStore(tmp_path / "r").open()
    with ResultStore(tmp_path / "r", resume=True) as st:
        assert st.done_ids == {config_id(make_row())}


@pytest.mark.parametrize("damage,message", [
    (lambda t: t[: t.index("\n") + 60], "row 1"),                        # cut inside the row
    (lambda t: t + '1,"unterminated\n', "cannot be parsed as CSV"),
    (lambda t: "", "empty file"),
    (lambda t: t.replace("samples_ts", "samples"), "missing column\\(s\\) samples_ts"),
    (lambda t: t.replace("[100.0, 110.0, 90.0]", "[100.0, 1"), "row 1: samples_ts is not a JSON list"),
])
def test_a_damaged_results_file_is_named_and_never_overwritten(tmp_path, damage, message):
    d = tmp_path / "r"
    with ResultStore(d) as st:
        st.append([make_row()])
    path = d / "results.csv"
    path.write_text(damage(path.read_text()))
    before = path.read_bytes()
    with pytest.raises(ResultsCorruptError, match=message) as e:
        load_results(d)
    assert str(path) in str(e.value)
    with pytest.raises(ResultsCorruptError):
        ResultStore(d, resume=True).open()
    assert path.read_bytes() == before
    assert not (d / ".lock").exists()          # a refused open releases the lock


def test_temp_files_of_a_killed_writer_are_ignored_then_cleaned(tmp_path):
    d = tmp_path / "r"
    with ResultStore(d) as st:
        st.append([make_row()])
    (d / ".results.csv.999.tmp").write_text("half a fi")
    assert len(load_results(d).frame) == 1
    with ResultStore(d, resume=True) as st:
        assert st.removed_temps == [".results.csv.999.tmp"]
    assert not (d / ".results.csv.999.tmp").exists()


def test_missing_or_unknown_paths_are_clear_errors(tmp_path):
    with pytest.raises(ResultsError, match="no such results directory"):
        load_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="not a results directory"):
        load_results(tmp_path / "empty")


@pytest.mark.parametrize("flt,message", [
    ("nonsense", "expected KEY=VALUE"), ("nosuch=1", "no column 'nosuch'"), ("n_threads=two", "n_threads is numeric"),
    ("spread_ok=maybe", "spread_ok is true or false"),
])
def test_a_bad_filter_is_a_bad_argument(flt, message):
    """select's errors are bad arguments (exit status 2 on the command line), and still ResultsErrors."""
    from harness.errors import UsageError
    from harness.store.results import select
    from harness.store.schema import rows_frame
    frame = rows_frame([make_row()])
    with pytest.raises(UsageError, match=message) as e:
        select(frame, [flt])
    assert isinstance(e.value, ResultsError)
    assert len(select(frame, ["n_threads=2,4", "quant!=q4_0"])) == 1


# ----------------------------------------------------------------------------
# llama-bench results

LLAMA = ROOT / "reports" / "comparisons" / "2026-11-23-llama.cpp-0.8b" / "llama-q4_k_m-1.json"


def test_llama_bench_json_becomes_rows_of_the_same_schema():
    recs = json.loads(LLAMA.read_text())
    f = load_results(LLAMA).frame
    assert list(f.columns[:len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert list(f["test"]) == ["pp512", "tg128"] and set(f["engine"]) == {"llama.cpp"}
    assert list(f["samples_ts"]) == [r["samples_ts"] for r in recs]
    assert f.loc[0, "median_ts"] == sorted(recs[0]["samples_ts"])[1]
    assert f.loc[1, "avg_ts"] == pytest.approx(recs[1]["avg_ts"], rel=1e-5)
    assert (f.loc[0, "quant"], f.loc[0, "n_threads"], f.loc[0, "n_ubatch"]) == ("q4_k_m", 2, 512)
    assert f.loc[0, "commit"] == "0c1e570" and f.loc[0, "model"] == "0.8b-q4_k_m"
    assert [config_id(r) for r in f.to_dict("records")] == list(f["config_id"])


def test_llama_bench_jsonl_and_a_model_file_that_is_not_here(tmp_path):
    recs = json.loads(LLAMA.read_text())
    for r in recs:
        r["model_filename"] = "/elsewhere/m.gguf"
    p = tmp_path / "bench.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    f = load_results(p).frame
    assert list(f["test"]) == ["pp512", "tg128"]
    assert set(f["model_hash"]) == {f"unhashed:m.gguf:{recs[0]['model_size']}"}
    assert f["weight_gbps"].isna().all()          # bytes per token unknown without the file


@pytest.mark.parametrize("text,message", [
    ("", "empty file"),
    ("[1, 2]", "record 1 is not a JSON object"),
    ('{"n_prompt": 1}\n{oops\n', "line 2: not valid JSON"),
    ('[{"n_prompt": 1, "n_gen": 0}]', "lacks model_filename, avg_ts: not llama-bench output"),
])
def test_bad_llama_bench_files_are_named(tmp_path, text, message):
    p = tmp_path / "x.json"
    p.write_text(text)
    with pytest.raises(ResultsCorruptError, match=message) as e:
        load_results(p)
    assert str(p) in str(e.value)


def test_quant_names_from_llama_cpp_model_types():
    from harness.store.llama_bench import quant_from_model_type as q
    assert q("qwen35 0.8B Q4_K - Medium") == "q4_k_m"
    assert q("qwen35 0.8B Q5_K - Small") == "q5_k_s"
    assert q("qwen35 0.8B BF16") == "bf16"
    assert q("qwen35 0.8B all F32") == "f32"
    assert q("qwen35 0.8B IQ4_XS - 4.25 bpw") == "iq4_xs"

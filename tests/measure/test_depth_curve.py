"""Depth curves (issue 18 item 3): `harness sweep-depth` walks one context as llama-sweep-bench does,
for our engine and a peer; llama-sweep-bench's JSONL is read as it is; the report charts S_PP and
S_TG against depth; the bytes a generated token reads at depth include the KV cache."""
import json
from types import SimpleNamespace

import pytest

from harness.cli.main import main
from harness.measure import depth_curve as dc
from harness.model.loader import load_model
from harness.model.presets import PRESETS
from harness.store.results import load_results
from support.fake_llama_bench import write_fake_llama_bench

# two lines of llama-sweep-bench --output-format jsonl (ik_llama.cpp examples/sweep-bench), between its log lines
SWEEP_BENCH = """llama_new_context_with_model: n_ctx = 1024
{"n_kv_max": 1024, "n_batch": 2048, "n_ubatch": 512, "flash_attn": 1, "n_gpu_layers": 0, "n_threads": 2, "n_threads_batch": 2, "pp": 512, "tg": 128, "n_kv": 0, "t_pp": 4.531000, "speed_pp": 113.000000, "t_tg": 5.120000, "speed_tg": 25.000000 }
{"n_kv_max": 1024, "n_batch": 2048, "n_ubatch": 512, "flash_attn": 1, "n_gpu_layers": 0, "n_threads": 2, "n_threads_batch": 2, "pp": 512, "tg": 128, "n_kv": 512, "t_pp": 4.740000, "speed_pp": 108.016878, "t_tg": 5.333000, "speed_tg": 24.001500 }
llama_print_timings:        load time =  1000.00 ms
"""


def test_kv_bytes_a_generated_token_reads_on_the_0_8b_shape():
    """6 full-attention layers x K and V x 2 kv heads x 256 dims x 4 bytes = 24576 bytes a position;
    128 tokens from depth 8192 attend to 8192 + 64.5 positions on average."""
    c = PRESETS["0.8b"]
    model = SimpleNamespace(config=SimpleNamespace(recurrent=[(i + 1) % 4 != 0 for i in range(c.n_layer)],
                                                   n_head_kv=c.n_head_kv, head_dim=c.head_dim))
    assert sum(not r for r in model.config.recurrent) == 6 and (c.n_head_kv, c.head_dim) == (2, 256)
    assert dc.kv_bytes_read(model, 8192, 128) == 24576 * (8192 + 64.5)


def test_the_walk_measures_every_depth_that_fits():
    assert dc.depths(8192, 512, 128) == list(range(0, 8192, 512))
    assert dc.depths(100, 32, 40) == [0, 32]            # 64 + 40 > 100
    with pytest.raises(Exception, match="must fit"):
        dc.check_walk(64, 128, 4, 4096)


def test_our_walk_on_the_tiny_model(tiny_model_path):
    with load_model(tiny_model_path) as m:
        pts = dc.walk_ours(m, 64, 16, 4, threads=1)
    assert [p.n_kv for p in pts] == [0, 16, 32, 48]
    assert all(p.pp == 16 and p.tg == 4 and p.speed_pp > 0 and p.speed_tg > 0 for p in pts)
    assert pts[-1].bytes_per_tg_token > pts[0].bytes_per_tg_token          # more KV read deeper in


def test_sweep_bench_jsonl_is_read_as_ik_writes_it():
    pts = dc.read_sweep_bench(SWEEP_BENCH, "x.jsonl")
    assert [(p.engine, p.n_kv, p.speed_pp, p.speed_tg) for p in pts] == [
        ("ik_llama.cpp", 0, 113.0, 25.0), ("ik_llama.cpp", 512, 108.016878, 24.0015)]
    assert json.loads(pts[0].settings) == {"flash_attn": 1, "n_gpu_layers": 0}     # not at llama-bench defaults
    with pytest.raises(Exception, match="no llama-sweep-bench JSONL"):
        dc.read_sweep_bench("just a log line\n", "x")


def test_sweep_depth_of_ours_and_a_peer_into_a_report(tmp_path, tiny_model_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.jsonl"))
    peer = write_fake_llama_bench(tmp_path)
    out = tmp_path / "depth"
    assert main(["sweep-depth", str(tiny_model_path), "-c", "64", "--step", "16", "-n", "4", "-t", "1",
                 "--engine", f"native,llama-bench={peer}", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "S_PP t/s" in text and "llama.cpp" in text and text.count("|    16 |      4 |") == 8
    call = json.loads((tmp_path / "calls.jsonl").read_text().splitlines()[0])
    assert call[call.index("-d") + 1] == "0,16,32,48" and call[call.index("-p") + 1] == "16"
    f = load_results(out).frame
    assert set(f["engine"]) == {"qwen35-harness", "llama.cpp"}
    assert sorted(set(f["n_depth"].astype(int))) == [0, 16, 32, 48] and len(f) == 16
    assert len((out / "depth.jsonl").read_text().splitlines()) == 8
    assert main(["report", str(out), "-o", str(tmp_path / "html")]) == 0
    page = (tmp_path / "html" / "index.html").read_text()
    assert (tmp_path / "html" / "depth.png").is_file() and "Speed against context depth" in page
    assert "weights + KV" in page


def test_sweep_depth_jsonl_output_and_bad_arguments(tmp_path, tiny_model_path, capsys):
    assert main(["sweep-depth", str(tiny_model_path), "-c", "32", "--step", "16", "-n", "2", "-t", "1",
                 "--format", "jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["n_kv"] for x in lines] == [0, 16] and set(dc.IK_KEYS) <= set(lines[0])
    assert main(["sweep-depth", str(tiny_model_path), "-c", "16", "--step", "32", "-t", "1"]) == 2
    assert "must fit" in capsys.readouterr().err


def test_a_sweep_bench_file_is_imported_beside_the_model_it_was_measured_on(tmp_path, tiny_model_path, capsys):
    f = tmp_path / "ik.jsonl"
    f.write_text(SWEEP_BENCH)
    out = tmp_path / "r"
    assert main(["sweep-depth", str(tiny_model_path), "-c", "1024", "--step", "512", "--import", str(f),
                 "-o", str(out)]) == 0
    assert "ik_llama.cpp (imported from" in capsys.readouterr().out
    rows = load_results(out).frame
    assert set(rows["engine"]) == {"ik_llama.cpp"} and sorted(rows["test"]) == [
        "pp512", "pp512 @ d512", "tg128", "tg128 @ d512"]
    with load_model(tiny_model_path) as m:
        from harness.model.fingerprint import identify
        assert set(rows["model_hash"]) == {identify(m).model_hash}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert main(["sweep-depth", str(tiny_model_path), "--import", str(bad)]) == 1
    assert "no llama-sweep-bench JSONL records" in capsys.readouterr().err


def test_llama_bench_style_switches_are_rewritten_for_sweep_bench():
    """ik's llama-bench takes `-rtr 1`, its llama-sweep-bench a bare `-rtr`: the same --peer-args
    serve both binaries."""
    assert dc.sweep_bench_args(("-fa", "1", "-rtr", "1")) == ("-fa", "1", "-rtr")
    assert dc.sweep_bench_args(("-rtr", "0", "-t", "2")) == ("-t", "2")
    assert dc.sweep_bench_args(("-rtr",)) == ("-rtr",)

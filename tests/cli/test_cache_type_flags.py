"""-ctk / -ctv (llama.cpp's --cache-type-k / --cache-type-v) in bench, sweep, sweep-depth and logits: the
cache types reach the engine, the llama-bench fields say them, our rows with a non-default cache keep
them in engine_settings (so they never merge with F32 rows), and the roofline counts the cache's bytes."""
import json

import numpy as np
import pytest

from harness.cli.main import main
from harness.measure.depth_curve import kv_bytes_read
from harness.measure.grid import build_grid
from harness.model.loader import load_model
from harness.store.results import load_results


def test_bench_records_carry_the_cache_types(synth_dir, capsys):
    assert main(["bench", "--preset", "tiny", "-p", "8", "-n", "2", "-r", "1", "-ctk", "f16", "-ctv", "q8_0",
                 "-o", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert {(r["type_k"], r["type_v"]) for r in recs} == {("f16", "q8_0")}
    assert {r["engine_settings"] for r in recs} == {'{"type_k":"f16","type_v":"q8_0"}'}
    assert main(["bench", "--preset", "tiny", "-p", "8", "-n", "0", "-r", "1", "-ctk", "bf16"]) == 0
    assert "KV cache: K bf16, V f32" in capsys.readouterr().out


def test_default_rows_keep_their_settings_empty(synth_dir, capsys):
    assert main(["bench", "--preset", "tiny", "-p", "8", "-n", "0", "-r", "1", "-o", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert (rec["type_k"], rec["type_v"], rec["engine_settings"]) == ("f32", "f32", "")


def test_sweep_crosses_cache_types_as_an_axis(synth_dir, tmp_path, capsys):
    g = build_grid({"preset": "tiny", "type_k": "f32,f16", "type_v": "q8_0"})
    assert [(c.type_k, c.type_v) for _, c in g.points()] == [("f32", "q8_0"), ("f16", "q8_0")]
    out = tmp_path / "r"
    assert main(["sweep", "--preset", "tiny", "--quant", "q8_0", "-ctk", "f32,f16", "--pp", "8", "--tg", "2",
                 "-r", "1", "--no-profile", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "kv f16/f32" in err
    f = load_results(out).frame
    assert len(f) == 4 and f["config_id"].is_unique
    assert sorted(set(f["engine_settings"].fillna(""))) == ["", '{"type_k":"f16"}']


@pytest.mark.parametrize("args,message", [
    (["bench", "--preset", "tiny", "-ctk", "q4_0"], "argument -ctk/--cache-type-k: invalid choice: 'q4_0'"),
    (["sweep", "--preset", "tiny", "-ctv", "f16,q5_1", "-o", "x"], "type_v: 'q5_1' is not one of"),
])
def test_bad_cache_types_are_one_line_exit_2(args, message, capsys):
    try:
        code = main(args)
    except SystemExit as e:      # argparse's own refusal
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


def test_roofline_counts_the_cache_bytes(oracle_dir):
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        f32 = kv_bytes_read(m, 1000, 1)
        # one full-attention layer, 2 kv heads of 64: K and V at 4 bytes, 1001 positions
        assert f32 == 1 * 2 * 64 * (4 + 4) * 1001
        assert kv_bytes_read(m, 1000, 1, "f16", "f16") == f32 / 2
        assert kv_bytes_read(m, 1000, 1, "q8_0", "q8_0") == pytest.approx(f32 * 34 / 32 / 4)


def test_logits_take_the_cache_types(oracle_dir, oracle_logits, tmp_path):
    out = tmp_path / "l.npy"
    toks = ",".join(map(str, oracle_logits["tokens_seq64"]))
    for ctk in ("f32", "q8_0"):
        assert main(["logits", str(oracle_dir / "tiny-f32.gguf"), "--tokens", toks, "--engine", "native",
                     "-ctk", ctk, "-ctv", ctk, "--out", str(out)]) == 0
        err = float(np.abs(np.load(out) - oracle_logits["hf_f64_seq64"]).max())
        assert (err < 2e-3) == (ctk == "f32"), (ctk, err)    # the q8_0 cache moves the logits visibly


def test_sweep_depth_takes_the_cache_types(synth_dir, capsys):
    assert main(["sweep-depth", "--preset", "tiny", "-c", "64", "--step", "32", "-n", "2", "-t", "1",
                 "-ctk", "f16", "-ctv", "f16", "--format", "jsonl"]) == 0
    pts = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(pts) == 2 and all(p.get("settings") == '{"type_k":"f16","type_v":"f16"}' for p in pts)


def test_bench_records_say_whether_the_weights_were_repacked(synth_dir, capsys):
    """--repack: llama-bench's `repack` field says whether the session repacked anything, and a mode other
    than auto is kept in engine_settings (so its rows never merge with default ones)."""
    assert main(["bench", "--preset", "tiny", "-p", "8", "-n", "0", "-r", "1", "--repack", "off", "-o", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert (rec["repack"], rec["repack_mode"], rec["packed_bytes"], rec["engine_settings"]) == \
        (False, "off", 0, '{"repack":"off"}')
    assert main(["bench", "--preset", "tiny", "-p", "8", "-n", "0", "-r", "1", "--repack", "on", "--isa", "scalar",
                 "-o", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert rec["repack"] is True and rec["packed_bytes"] > 0 and rec["session_start_ms"] > 0
    with pytest.raises(SystemExit) as e:
        main(["bench", "--preset", "tiny", "--repack", "maybe"])
    assert e.value.code == 2

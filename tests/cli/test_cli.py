"""The command line: each subcommand's output, and one line plus exit status 1 or 2 for bad input."""
import subprocess
import sys

import numpy as np
import pytest

from harness.cli.main import main
from support.paths import ROOT


def run(*args):
    r = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def test_info_of_an_oracle_file(oracle_dir, capsys):
    assert main(["info", str(oracle_dir / "tiny-q4_k_m.gguf")]) == 0
    out = capsys.readouterr().out
    assert "layers     D D D A" in out
    assert "4 heads / 2 KV heads x 64" in out and "4 key heads / 8 value heads x 32" in out
    assert "blk.2.attn_qkv.weight" in out and "Q6_K" in out
    # bytes per generated token: every trunk matrix + LM head + one embedding row
    assert "per token  1.96 MiB (2,056,400 B)" in out


def test_info_of_a_moe_file(oracle_dir, capsys):
    assert main(["info", str(oracle_dir / "tinymoe-q4_k_m.gguf")]) == 0
    out = capsys.readouterr().out
    assert "arch       qwen35moe" in out
    assert "experts            8 routed, 2 per token" in out and "shared expert FFN 256" in out
    assert "blk.3.ffn_down_exps.weight" in out and "8x256x256" in out
    # 2 of the 8 expert slabs of each stack count: 5,916,480 B in the file, 2,764,752 B per token
    assert "per token  2.64 MiB (2,764,752 B)" in out and "stack bytes x 2/8" in out


def test_logits_native_on_a_moe_file(oracle_dir, tmp_path):
    out = tmp_path / "l.npy"
    toks = np.load(oracle_dir / "tinymoe-logits.npz")
    seq = ",".join(map(str, toks["tokens_seq7"]))
    assert main(["logits", str(oracle_dir / "tinymoe-f32.gguf"), "--tokens", seq, "--mode", "decode",
                 "--out", str(out)]) == 0
    assert np.abs(np.load(out) - toks["hf_f64_seq7"]).max() < 2e-3


def test_synth_then_info(tmp_path, capsys):
    out = tmp_path / "m.gguf"
    assert main(["synth", "--preset", "tiny", "--quant", "iq4_xs", "--seed", "5", "-o", str(out)]) == 0
    assert main(["info", str(out), "--no-tensors"]) == 0
    text = capsys.readouterr().out
    assert "synthetic  preset tiny  quant iq4_xs  seed 5" in text
    assert "LM head Q6_K" in text and "IQ4_XS" in text


def test_synth_layers_keeps_every_layer_shape_of_the_preset(tmp_path, capsys):
    """--layers N: the first N layers of the 35B-A3B shape (a full-attention layer every 4th), each as
    the preset makes it, so a big shape's per-layer speed can be measured on a small machine."""
    from harness.model.loader import load_model
    out = tmp_path / "m.gguf"
    assert main(["synth", "--preset", "tinymoe", "--layers", "6", "--quant", "q8_0", "-o", str(out)]) == 0
    with load_model(out) as m:
        assert m.config.n_layer == 6
        assert [n for n in m.gguf.tensors if n.startswith("blk.3.attn_q.")] and \
            not [n for n in m.gguf.tensors if n.startswith("blk.2.attn_q.")]
    full = tmp_path / "full.gguf"
    assert main(["synth", "--preset", "tinymoe", "--quant", "q8_0", "-o", str(full)]) == 0
    with load_model(full) as f, load_model(out) as m:
        for name, ti in f.gguf.tensors.items():   # the 4 preset layers: same shapes and types
            if name in m.gguf.tensors:
                assert (m.gguf.tensors[name].ne, m.gguf.tensors[name].type) == (ti.ne, ti.type), name
        assert "blk.5.ffn_down_exps.weight" in m.gguf.tensors and "blk.4.ffn_down_exps.weight" not in f.gguf.tensors


def test_logits_reference_writes_float32_array(oracle_dir, oracle_logits, tmp_path):
    out = tmp_path / "l.npy"
    assert main(["logits", str(oracle_dir / "tiny-f32.gguf"), "--tokens", "1,2,3",
                 "--engine", "reference", "--out", str(out)]) == 0
    a = np.load(out)
    assert a.dtype == np.float32 and a.shape == (3, 2048)
    # the same prefix of seq7 gives the same logits as the longer run (causality)
    toks = oracle_logits["tokens_seq7"][:3]
    assert main(["logits", str(oracle_dir / "tiny-f32.gguf"), "--tokens", ",".join(map(str, toks)),
                 "--mode", "decode", "--out", str(out)]) == 0
    assert np.abs(np.load(out) - oracle_logits["hf_f64_seq7"][:3]).max() < 2e-3


@pytest.mark.parametrize("args,status,message", [
    (["info", "/nonexistent.gguf"], 1, "cannot open"),
    (["info", __file__], 1, "not a GGUF file"),
    (["logits", "{oracle}/tiny-f32.gguf", "--tokens", "1,99999", "--out", "{tmp}/x.npy"], 1,
     "token id 99999 is outside the vocabulary [0, 2048)"),
    (["logits", "{oracle}/tiny-f32.gguf", "--tokens", "a,b", "--out", "{tmp}/x.npy"], 1, "tokens must be integers"),
    (["logits", "{oracle}/tinymoe-f32.gguf", "--tokens", "1,2048", "--out", "{tmp}/x.npy"], 1,
     "token id 2048 is outside the vocabulary [0, 2048)"),
    (["synth", "--preset", "huge", "--quant", "q8_0", "-o", "{tmp}/x.gguf"], 2, "invalid choice"),
    (["synth", "--preset", "tiny", "--quant", "q3_k", "-o", "{tmp}/x.gguf"], 2, "unknown quant type 'q3_k'"),
    (["frobnicate"], 2, "invalid choice"),
])
def test_bad_input_gives_one_line_and_status(oracle_dir, tmp_path, args, status, message):
    args = [a.format(oracle=oracle_dir, tmp=tmp_path) for a in args]
    code, out, err = run(*args)
    assert code == status
    assert message in err
    assert "Traceback" not in err
    if status == 1:
        assert len(err.strip().splitlines()) == 1 and err.startswith("harness: error: ")


def test_demo_checks_sweeps_and_reports_on_the_embedded_default(synth_dir, tmp_path, capsys):
    from harness.store.results import load_results
    assert main(["demo", "-n", "6", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "synthetic model:" in out and "float64 reference" in out and ": ok" in out
    (run,) = tmp_path.glob("results-*")
    rows = load_results(run).frame
    # q8_0, q4_k_m x fdn 0, 16 x ubatch 16, 64 x pp64, tg16
    assert len(rows) == 16 and set(rows.quant) == {"q8_0", "q4_k_m"} and (rows.avg_ts > 0).all()
    html = (tmp_path / "report" / "index.html").read_text()
    assert "<img" in html and str(tmp_path / "report" / "index.html") in out


def test_ci_runs_the_readmes_test_command():
    root = ROOT
    readme = (root / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:]]
    install_and_test = blocks[1]
    assert "pytest" in install_and_test
    assert install_and_test in (root / ".ci" / "run").read_text().splitlines()


def test_bench_json_uses_llama_bench_field_names(synth_dir, capsys):
    import json
    assert main(["bench", "--preset", "tiny", "-p", "16", "-n", "4", "-r", "2", "-o", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [(r["n_prompt"], r["n_gen"]) for r in recs] == [(16, 0), (0, 4)]
    for r in recs:
        for k in ("model_filename", "n_prompt", "n_gen", "n_threads", "avg_ts", "stddev_ts", "samples_ts",
                  "samples_ns", "n_ubatch", "build_commit", "isa", "fdn_threshold", "ubatch", "vocab_strategy",
                  "commit"):
            assert k in r, k
        assert len(r["samples_ts"]) == 2 and r["avg_ts"] > 0
        assert r["avg_ts"] == pytest.approx(sum(r["samples_ts"]) / 2)
    assert recs[1]["weight_gbps"] > 0 and recs[1]["machine_read_gbps"] > 0


def test_bench_markdown_rows(synth_dir, capsys):
    assert main(["bench", "--preset", "tiny", "-p", "8", "-n", "2", "-r", "1", "--fdn", "0", "--ubatch", "4"]) == 0
    out = capsys.readouterr().out
    assert "| pp8 |" in out and "| tg2 |" in out and "% of" in out


def test_logits_native_matches_the_oracle(oracle_dir, oracle_logits, tmp_path):
    out = tmp_path / "n.npy"
    toks = ",".join(map(str, oracle_logits["tokens_seq7"]))
    for mode in ("prefill", "decode"):
        assert main(["logits", str(oracle_dir / "tiny-f32.gguf"), "--tokens", toks, "--engine", "native",
                     "--mode", mode, "--threads", "2", "--ubatch", "3", "--out", str(out)]) == 0
        assert np.abs(np.load(out) - oracle_logits["hf_f64_seq7"]).max() < 2e-3


@pytest.mark.parametrize("args,status,message", [
    (["bench", "--preset", "tiny", "-t", "0"], 2, "argument -t/--threads: must be an integer >= 1"),
    (["bench", "--preset", "tiny", "-r", "0"], 2, "argument -r/--repetitions: must be an integer >= 1"),
    (["bench"], 1, "give a MODEL path or --preset"),
    (["logits", "{oracle}/tiny-f32.gguf", "--tokens", "1", "--engine", "native", "--isa", "avx512",
      "--out", "{tmp}/x.npy"], 1, "avx512"),
])
def test_bench_and_logits_bad_arguments(oracle_dir, tmp_path, synth_dir, args, status, message):
    import harness.native as hn
    if "avx512" in args and "avx512" in hn.cpu_features()["supported"]:
        pytest.skip("this CPU runs AVX512")
    args = [a.format(oracle=oracle_dir, tmp=tmp_path) for a in args]
    code, out, err = run(*args)
    assert code == status and message in err and len(err.strip().splitlines()) == 1, err

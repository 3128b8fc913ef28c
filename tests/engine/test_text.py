"""Text in, text out: `harness generate` is greedy decoding of the engine's own logits, and
`harness perplexity` gives llama-perplexity's PPL and KL divergence on the same file and text
(recorded by tests/support/record_llama_perplexity.py; also run live where the binary is built)."""
import json
import re
import subprocess

import numpy as np
import pytest

from harness.cli.main import main
from harness.engine.generate import generate
from harness.engine.session import Session
from harness.measure.perplexity import (dequantize_log_probs, quantize_log_probs, read_kld_base,
                                        write_kld_base)
from harness.model.loader import load_model
from harness.model.synth import synthesize
from support.paths import ROOT, llama_tool

TOKENIZER = ROOT / "tests" / "data" / "tokenizer" / "qwen35-test-tokenizer.json"
TEXT = ROOT / "tests" / "data" / "tokenizer" / "corpus.txt"
RECORDED = json.loads((ROOT / "tests" / "data" / "perplexity" / "llama_perplexity.json").read_text())


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("text")
    out = {}
    for q in ("q8_0", "q4_k_m"):
        out[q] = d / f"tiny-{q}.gguf"
        synthesize("tiny", q, out[q], tokenizer=TOKENIZER)
    return out


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_generate_is_greedy_decoding_of_the_engine_logits(capsys, models):
    assert main(["generate", str(models["q8_0"]), "-p", "The quick brown fox", "-n", "12", "-t", "1",
                 "--ignore-eos", "-o", "json"]) == 0
    got = last_json(capsys)
    with load_model(models["q8_0"]) as m:
        tok = m.tokenizer()
        prompt = tok.encode("The quick brown fox")
        with Session(m, threads=1, ctx=64) as s:
            ids = [int(np.argmax(s.prefill(prompt, all_logits=False)))]
            while len(ids) < 12:
                ids.append(int(np.argmax(s.decode(ids[-1]))))
        assert got["prompt_tokens"] == prompt and got["tokens"] == ids
        assert got["text"] == tok.decode(ids) and got["n_gen"] == 12
    assert got["prompt_tps"] > 0 and got["gen_tps"] > 0


def test_generate_prints_the_text_then_the_timings(capsys, models):
    assert main(["generate", str(models["q8_0"]), "-p", "Hello", "-n", "5", "-t", "1", "--ignore-eos"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Hello")
    assert re.search(r"prompt eval: +1 tokens in +[0-9.]+ s \( *[0-9.]+ tokens/s\)", out)
    assert re.search(r"eval: +4 tokens in .*stop: length, 5 tokens generated", out)


def test_generation_stops_at_an_end_of_generation_token(models):
    with load_model(models["q8_0"]) as m, Session(m, threads=1, ctx=64) as s:
        prompt = m.tokenizer().encode("Hello world")
        free = generate(s, prompt, 6)
        stopped = generate(s, prompt, 6, eog_ids=(free.ids[2],))
        assert stopped.stop == "eog" and stopped.ids == free.ids[:free.ids.index(free.ids[2]) + 1]
        a, b = (generate(s, prompt, 6, temp=0.8, seed=7).ids for _ in range(2))
        assert a == b


def test_generate_refuses_a_file_without_a_tokenizer(capsys, tmp_path):
    none = tmp_path / "none.gguf"
    synthesize("tiny", "q8_0", none)
    assert main(["generate", str(none), "-p", "hi", "-n", "2"]) == 1
    assert "tokenizer.ggml.model = 'none'" in capsys.readouterr().err


def test_perplexity_matches_llama_perplexity_on_the_same_file_and_text(capsys, models):
    rec = RECORDED["q8_0"]
    assert main(["perplexity", str(models["q8_0"]), "-f", str(TEXT), "-c", str(RECORDED["n_ctx"]), "-t", "1",
                 "-o", "json"]) == 0
    got = last_json(capsys)
    assert got["ppl"] == pytest.approx(rec["ppl"], rel=0.005)
    assert got["ppl_err"] == pytest.approx(rec["ppl_err"], rel=0.05)


def test_kl_divergence_against_a_base_file_matches_llama_perplexity(capsys, models, tmp_path):
    rec = RECORDED["q4_k_m_vs_q8_0"]
    base = tmp_path / "base.kld"
    c = str(RECORDED["n_ctx"])
    assert main(["perplexity", str(models["q8_0"]), "-f", str(TEXT), "-c", c, "-t", "1",
                 "--kl-divergence-base", str(base)]) == 0
    capsys.readouterr()
    assert main(["perplexity", str(models["q4_k_m"]), "-t", "1", "--kl-divergence-base", str(base),
                 "--kl-divergence", "-o", "json"]) == 0
    got = last_json(capsys)
    # 1%: on these random-weight files (PPL about 11000) our two exact delta-net algorithms already part by
    # 0.2-0.4% (q8_0 / q4_k_m, -c 128: chunked 11598 / 11287, fused 11616 / 11247; llama.cpp 11572 / 11216)
    assert got["ppl"] == pytest.approx(rec["ppl"], rel=0.01)
    assert got["ppl_base"] == pytest.approx(rec["ppl_base"], rel=0.01)
    assert got["kld_mean"] == pytest.approx(rec["kld_mean"], rel=0.005, abs=2e-5)
    assert got["same_top_p"] == pytest.approx(rec["same_top_p"], abs=0.01)
    # the in-memory form (--kl-divergence MODEL_BASE) gives the same figures
    assert main(["perplexity", str(models["q4_k_m"]), "-f", str(TEXT), "-c", c, "-t", "1",
                 "--kl-divergence", str(models["q8_0"]), "-o", "json"]) == 0
    again = last_json(capsys)
    assert again["kld_mean"] == pytest.approx(got["kld_mean"], rel=1e-9)


@pytest.mark.skipif(llama_tool("llama-perplexity") is None, reason="llama-perplexity not built (HARNESS_LLAMA_CPP_BIN)")
def test_llama_perplexity_reads_our_base_file_and_we_read_theirs(capsys, models, tmp_path):
    c = str(RECORDED["n_ctx"])
    ours, theirs = tmp_path / "ours.kld", tmp_path / "theirs.kld"
    assert main(["perplexity", str(models["q8_0"]), "-f", str(TEXT), "-c", c, "-t", "1",
                 "--kl-divergence-base", str(ours)]) == 0
    capsys.readouterr()
    exe = str(llama_tool("llama-perplexity"))
    subprocess.run([exe, "-m", str(models["q8_0"]), "-f", str(TEXT), "-c", c, "-b", c, "-t", "1",
                    "--kl-divergence-base", str(theirs)], capture_output=True, check=True)
    a, b = read_kld_base(ours), read_kld_base(theirs)
    assert (a.tokens == b.tokens).all() and a.rows.shape == b.rows.shape
    la = dequantize_log_probs(a.rows.reshape(-1, a.rows.shape[-1]), a.n_vocab)
    lb = dequantize_log_probs(b.rows.reshape(-1, b.rows.shape[-1]), b.n_vocab)
    # the same log-probs within the engines' agreement (llama.cpp keeps K/V in F16, we in F32)
    assert np.abs(la - lb)[lb > -10].mean() < 0.05
    r = subprocess.run([exe, "-m", str(models["q4_k_m"]), "-c", c, "-b", c, "-t", "1", "--kl-divergence-base",
                        str(ours), "--kl-divergence"], capture_output=True, text=True, check=True)
    kld = float(re.search(r"Mean    KLD:\s+([-0-9.]+)", r.stdout + r.stderr).group(1))
    assert kld == pytest.approx(RECORDED["q4_k_m_vs_q8_0"]["kld_mean"], rel=0.02, abs=2e-5)


def test_the_base_file_round_trips_and_bad_ones_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 7)).astype(np.float32) * 4
    rows = quantize_log_probs(logits)
    lp = logits - logits.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    assert np.abs(dequantize_log_probs(rows, 7) - lp).max() < 16 / 65535 + 1e-6
    f = tmp_path / "b.kld"
    write_kld_base(f, 8, 7, np.arange(8, dtype=np.int32), [rows])
    back = read_kld_base(f)
    assert back.n_ctx == 8 and back.n_chunk == 1 and (back.rows[0] == rows).all()
    f.write_bytes(f.read_bytes()[:-2])
    from harness.measure.perplexity import KLDBaseError
    with pytest.raises(KLDBaseError, match="needs"):
        read_kld_base(f)


def test_perplexity_refuses_a_text_too_short_for_two_chunks(capsys, models, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("just a few words")
    assert main(["perplexity", str(models["q8_0"]), "-f", str(short), "-c", "128"]) == 1
    assert "needs at least 256" in capsys.readouterr().err

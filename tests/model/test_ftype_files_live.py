"""Our logits on llama-quantize-written files of the ftypes the oracle folder holds no file of (issue 16).

Each file is made here by llama-quantize from one synthetic F32 tiny model with a tokenizer (a uniform
importance matrix for the mixes that need one), then llama-perplexity writes llama.cpp's log-probs on a
text twice: the whole chunk as one batch and token by token (-ub 1). Our log-probs on the same file and text
(KV cache in F16, as llama.cpp keeps it) must be as near llama.cpp's batch run as its token-by-token run is:
per scored position, the largest log-prob difference over the tokens llama.cpp gives log p > -10; median and
rms within 1.5x, the worst position within 3x (the oracle README's bound, on log-probs of a text here)."""
import subprocess

import numpy as np
import pytest

from harness.cli.main import main
from harness.ggml_types import NATIVE_TYPES
from harness.measure.perplexity import dequantize_log_probs, read_kld_base
from harness.model.loader import load_model
from harness.model.synth import synthesize
from support.llama_quantize import LLAMA_QUANTIZE, NEEDS_IMATRIX, llama_quantize, uniform_imatrix
from support.paths import ROOT, llama_tool

TOKENIZER = ROOT / "tests" / "data" / "tokenizer" / "qwen35-test-tokenizer.json"
TEXT = ROOT / "tests" / "data" / "tokenizer" / "corpus.txt"
N_CTX = 128
# the llama-quantize ftypes of synth's list without an oracle file (those are checked in test_dequant_extra and
# test_model_files against the stored llama.cpp logits)
LIVE_FTYPES = ["q2_k_s", "q3_k_s", "q3_k_l", "q4_k_s", "q5_k_s", "iq2_m", "iq3_xs", "iq3_m"]
LLAMA_PERPLEXITY = llama_tool("llama-perplexity")

pytestmark = pytest.mark.skipif(LLAMA_QUANTIZE is None or LLAMA_PERPLEXITY is None,
                                reason="llama-quantize / llama-perplexity not built (HARNESS_LLAMA_CPP_BIN)")


@pytest.fixture(scope="module")
def f32_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("ftypes")
    f32 = synthesize("tiny", "f32", d / "tiny-f32.gguf", seed=3, tokenizer=TOKENIZER).path
    return d, f32, uniform_imatrix(f32, d / "imatrix.dat")


def _llama_log_probs(model, out, *extra) -> np.ndarray:
    subprocess.run([str(LLAMA_PERPLEXITY), "-m", str(model), "-f", str(TEXT), "-c", str(N_CTX), "-b", str(N_CTX),
                    "-t", "2", *extra, "--kl-divergence-base", str(out)], capture_output=True, check=True, timeout=300)
    return _log_probs(out)


def _log_probs(path) -> np.ndarray:
    base = read_kld_base(path)
    return dequantize_log_probs(base.rows.reshape(-1, base.rows.shape[-1]), base.n_vocab)


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


@pytest.mark.parametrize("ftype", LIVE_FTYPES)
def test_our_log_probs_track_llama_cpp_on_a_llama_quantize_file(f32_model, tmp_path, capsys, ftype):
    d, f32, imatrix = f32_model
    path = tmp_path / f"tiny-{ftype}.gguf"
    types = llama_quantize(f32, path, ftype, imatrix if ftype in NEEDS_IMATRIX else None)
    assert isinstance(types, dict), types
    with load_model(path) as m:
        assert all(m.info(s.name).type in NATIVE_TYPES for s in m.specs)     # every tensor on its C kernels
    batch = _llama_log_probs(path, tmp_path / "batch.kld")
    by_token = _llama_log_probs(path, tmp_path / "by_token.kld", "-ub", "1")
    assert main(["perplexity", str(path), "-f", str(TEXT), "-c", str(N_CTX), "-t", "1", "-ctk", "f16", "-ctv", "f16",
                 "--kl-divergence-base", str(tmp_path / "ours.kld")]) == 0
    capsys.readouterr()
    ours = _log_probs(tmp_path / "ours.kld")
    seen = batch > -10
    own = np.where(seen, np.abs(by_token - batch), 0).max(axis=1)
    err = np.where(seen, np.abs(ours - batch), 0).max(axis=1)
    figures = (ftype, np.median(err), np.median(own), _rms(err), _rms(own), err.max(), own.max())
    assert np.median(err) <= 1.5 * np.median(own) and _rms(err) <= 1.5 * _rms(own), figures
    assert err.max() <= 3 * own.max(), figures

"""The GGUF tokenizer against llama.cpp's llama-tokenize: the same ids on the same file for every
text of tests/data/tokenizer/cases.py, with and without parsing special tokens. The ids recorded
from llama-tokenize (tests/support/record_llama_tokenize.py) are checked always; the live binary
too where it is built (HARNESS_LLAMA_CPP_BIN, or ../llama.cpp/build/bin)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from harness.cli.main import main
from harness.errors import ModelFileError, TextError
from harness.model.gguf_reader import read_gguf
from harness.model.synth import synthesize
from harness.model.tokenizer import tokenizer_from_metadata
from harness.model.tokenizer_json import synthetic_tokenizer_json, tokenizer_metadata
from support.paths import ROOT, llama_tool

DATA = ROOT / "tests" / "data" / "tokenizer"
TOKENIZER_JSON = DATA / "qwen35-test-tokenizer.json"
sys.path.insert(0, str(DATA))
from cases import CASES  # noqa: E402

RECORDED = json.loads((DATA / "llama_tokenize_ids.json").read_text())


@pytest.fixture(scope="module")
def tok_model(tmp_path_factory):
    """The tiny preset carrying the test tokenizer, as `harness synth --tokenizer` writes it."""
    path = tmp_path_factory.mktemp("tok") / "tiny-tok.gguf"
    synthesize("tiny", "q8_0", path, tokenizer=TOKENIZER_JSON)
    return path


@pytest.fixture(scope="module")
def tokenizer(tok_model):
    g = read_gguf(tok_model)
    try:
        return tokenizer_from_metadata(g.metadata, g.path)
    finally:
        g.close()


@pytest.fixture(scope="module")
def case_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cases")
    for name, text in CASES.items():
        (d / f"{name}.txt").write_bytes(text.encode("utf-8"))
    return d


def harness_ids(capsys, model, path, *flags) -> list[int]:
    assert main(["tokenize", str(model), "-f", str(path), "--ids", *flags]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("parse_special", [True, False], ids=["specials", "no-specials"])
def test_ids_equal_the_ones_llama_tokenize_gave_on_the_same_file(capsys, tok_model, case_files, parse_special):
    mode = "parse_special" if parse_special else "no_parse_special"
    flags = [] if parse_special else ["--no-parse-special"]
    assert set(RECORDED["cases"]) == set(CASES)
    for name in CASES:
        got = harness_ids(capsys, tok_model, case_files / f"{name}.txt", *flags)
        assert got == RECORDED["cases"][name][mode], name


@pytest.mark.skipif(llama_tool("llama-tokenize") is None, reason="llama-tokenize not built (HARNESS_LLAMA_CPP_BIN)")
@pytest.mark.parametrize("parse_special", [True, False], ids=["specials", "no-specials"])
def test_ids_equal_llama_tokenize_run_now(capsys, tok_model, case_files, parse_special):
    flags = [] if parse_special else ["--no-parse-special"]
    for name in CASES:
        path = case_files / f"{name}.txt"
        out = subprocess.run([str(llama_tool("llama-tokenize")), "-m", str(tok_model), "-f", str(path), "--ids",
                              "--log-disable", *flags], capture_output=True, text=True, check=True).stdout
        theirs = json.loads(out.strip().splitlines()[-1])
        assert harness_ids(capsys, tok_model, path, *flags) == theirs, name


def test_specials_are_single_tokens_only_when_parsed(tokenizer):
    text = "<|im_start|>user\nHi<think>x</think><|im_end|>"
    ids = tokenizer.encode(text)
    start, end, think = (tokenizer.tokens.index(t) for t in ("<|im_start|>", "<|im_end|>", "<think>"))
    assert ids[0] == start and ids[-1] == end and think in ids
    plain = tokenizer.encode(text, parse_special=False)
    # control tokens become text; <think> (user-defined) is still cut out, as in llama.cpp and tokenizers
    assert start not in plain and end not in plain and think in plain
    assert tokenizer.decode(plain) == text


def test_decoding_gives_back_every_text(tokenizer):
    for name, text in CASES.items():
        assert tokenizer.decode(tokenizer.encode(text, parse_special=False)) == text, name
        assert tokenizer.decode(tokenizer.encode(text), special=True) == text, name


def test_escapes_are_processed_as_llama_tokenize_does(capsys, tok_model, tmp_path):
    f = tmp_path / "esc.txt"
    f.write_bytes(b"a\\nb\\x41\\q")
    both = harness_ids(capsys, tok_model, f)
    plain = harness_ids(capsys, tok_model, f, "--no-escape")
    g = read_gguf(tok_model)
    t = tokenizer_from_metadata(g.metadata, g.path)
    g.close()
    assert both == t.encode("a\nbA\\q") and plain == t.encode("a\\nb\\x41\\q")


def test_the_listing_shows_each_token_as_llama_tokenize(capsys, tok_model):
    assert main(["tokenize", str(tok_model), "-p", "Hi<|im_end|>", "--show-count"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].endswith("-> '<|im_end|>'") and out[-1] == f"Total number of tokens: {len(out) - 1}"
    assert out[0].startswith(" ") and " -> 'H" in out[0]


def test_info_shows_the_tokenizer(capsys, tok_model):
    assert main(["info", str(tok_model), "--no-tensors"]) == 0
    out = capsys.readouterr().out
    assert "tokenizer  gpt2 (byte-level BPE), pre qwen35, 4,096 tokens" in out
    assert "eos 1359 '<|im_end|>'" in out and "1360 '<think>'" in out


def test_a_synthetic_vocabulary_has_the_size_asked_and_round_trips():
    meta = tokenizer_metadata(synthetic_tokenizer_json(3000, seed=1), 3000)
    md = {k: (np.asarray(v[1][1]) if k.endswith("token_type") else v[1][1] if isinstance(v[1], tuple) else v[1])
          for k, v in meta.items()}
    t = tokenizer_from_metadata(md)
    assert t.vocab_size == 3000 and t.n_merges == 3000 - 256 - 5
    text = "Hello world, 我能吞下玻璃 😀 <|im_end|>"
    ids = t.encode(text)
    assert t.decode(ids, special=True) == text and ids[-1] == t.tokens.index("<|im_end|>")


@pytest.mark.parametrize("change, message", [
    ({"tokenizer.ggml.model": "llama"}, "tokenizer.ggml.model = 'llama' is not supported"),
    ({"tokenizer.ggml.model": "bert"}, "tokenizer.ggml.model = 'bert' is not supported"),
    ({"tokenizer.ggml.pre": "gpt-4o"}, "tokenizer.ggml.pre = 'gpt-4o' is not supported"),
    ({"tokenizer.ggml.merges": None}, "metadata 'tokenizer.ggml.merges' is missing"),
    ({"tokenizer.ggml.eos_token_id": 99999}, "'tokenizer.ggml.eos_token_id' = 99999 is not a token id"),
    ({"tokenizer.ggml.merges": ["a b c"]}, "'a b c' is not two tokens"),
])
def test_an_unusable_tokenizer_is_one_clear_error(tokenizer, tok_model, change, message):
    g = read_gguf(tok_model)
    md = dict(g.metadata)
    g.close()
    for k, v in change.items():
        if v is None:
            del md[k]
        else:
            md[k] = v
    with pytest.raises(ModelFileError, match=message.replace("(", r"\(").replace("[", r"\[")):
        tokenizer_from_metadata(md, "f.gguf")


def test_the_command_line_refuses_bad_text_and_files(capsys, tok_model, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\xffdef")
    assert main(["tokenize", str(tok_model), "-f", str(bad)]) == 1
    assert capsys.readouterr().err.strip() == ("harness: error: the text is not UTF-8: invalid byte 0xff "
                                               "at byte offset 3")
    none = tmp_path / "none.gguf"
    synthesize("tiny", "q8_0", none)
    assert main(["tokenize", str(none), "-p", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tokenizer.ggml.model = 'none'" in err
    assert main(["tokenize", str(tok_model)]) == 2
    assert "exactly one of -p/--prompt, -f/--file or --stdin" in capsys.readouterr().err


def test_text_errors_name_the_byte_offset():
    from harness.model.tokenizer import decode_utf8
    with pytest.raises(TextError, match="invalid byte 0xe6 at byte offset 2"):
        decode_utf8("ab我".encode()[:3] + b"z")


def test_a_tokenizer_model_of_the_wrong_type_is_a_clear_file_error():
    """tokenizer.ggml.model given as an (empty) array instead of a string: the file counts as
    naming a tokenizer, and reading it names the key (found by the GGUF fuzzer)."""
    from harness.model.tokenizer import has_tokenizer
    md = {"tokenizer.ggml.model": np.array([], dtype=np.uint8)}
    assert has_tokenizer(md)
    assert not has_tokenizer({}) and not has_tokenizer({"tokenizer.ggml.model": "none"})
    with pytest.raises(ModelFileError, match="'tokenizer.ggml.model' has the wrong type"):
        tokenizer_from_metadata(md)

"""A real text instead of token ids (issue 17 item 3): `logits`, `quality` and `bench` take
--prompt TEXT / --file FILE, tokenized with the model's own tokenizer, and give exactly what the same
ids given as ids give; bench keys its rows on the prompt; a file without a tokenizer, an empty text,
ids and a text together are one clear line."""
import json

import numpy as np

from harness.cli.main import main
from harness.model.loader import load_model
from support.paths import ROOT

MODEL = str(ROOT / "tests" / "data" / "converter" / "qwen35-mtp-f32.gguf")
TWIN = str(ROOT / "tests" / "data" / "converter" / "qwen35-nomtp-f32.gguf")
TEXT = "The quick brown fox jumps over the lazy dog. 1234 + 5678 = 6912"


def _status(capsys, *argv):
    try:
        code = main([str(x) for x in argv])
    except SystemExit as e:          # argparse
        code = e.code
    return code, capsys.readouterr()


def _ids(text: str) -> list[int]:
    with load_model(MODEL) as m:
        return m.tokenizer().encode(text, parse_special=True)


def test_logits_of_a_prompt_equal_the_logits_of_its_ids(tmp_path, capsys):
    ids = _ids(TEXT)
    assert len(ids) > 10
    (tmp_path / "t.txt").write_bytes(TEXT.encode())
    runs = {"ids": ["--tokens", ",".join(map(str, ids))], "prompt": ["-p", TEXT],
            "file": ["-f", tmp_path / "t.txt"]}
    out = {}
    for name, how in runs.items():
        path = tmp_path / f"{name}.npy"
        assert main(["logits", MODEL, *map(str, how), "-t", "1", "--out", str(path)]) == 0
        out[name] = np.load(path)
    assert out["ids"].shape == (len(ids), 1024)      # the fixture's vocabulary
    np.testing.assert_array_equal(out["prompt"], out["ids"])
    np.testing.assert_array_equal(out["file"], out["ids"])


def test_quality_of_a_file_is_quality_of_its_ids(tmp_path, capsys):
    ids = _ids(TEXT)
    (tmp_path / "t.txt").write_bytes(TEXT.encode())
    (tmp_path / "ids.txt").write_text(" ".join(map(str, ids)))
    rows = {}
    for name, how in (("file", ["-f", tmp_path / "t.txt"]), ("ids", ["--tokens", tmp_path / "ids.txt"])):
        assert main(["quality", MODEL, "--reference", TWIN, *map(str, how), "-t", "1", "-o", "json"]) == 0
        rows[name] = json.loads(capsys.readouterr().out)
    assert rows["file"]["tokens"] == f"t.txt: {len(ids)} tokens"
    assert rows["file"]["n_positions"] == rows["ids"]["n_positions"] == len(ids)
    # the MTP file's trunk is the no-MTP twin's bit for bit: full agreement, zero divergence
    assert rows["file"]["top1_agreement"] == 1.0 and rows["file"]["kl_mean"] == 0.0
    assert rows["file"]["kl_mean"] == rows["ids"]["kl_mean"]


def test_bench_runs_the_prompt_and_keys_its_rows_on_it(capsys):
    code, cap = _status(capsys, "bench", MODEL, "--prompt", TEXT, "-n", "2", "-r", "1", "-t", "1", "-o", "json")
    assert code == 0, cap.err
    recs = json.loads(cap.out)
    pp = next(r for r in recs if r["n_prompt"])
    assert pp["n_prompt"] == len(_ids(TEXT))           # -p defaults to the whole text
    assert {json.loads(r["engine_settings"])["prompt"] for r in recs} == {"prompt"}
    code, cap = _status(capsys, "bench", MODEL, "--prompt", TEXT, "-p", "4", "-n", "0", "-r", "1", "-t", "1")
    assert code == 0, cap.err
    assert "| pp4 |" in cap.out and f"prompt: prompt ({len(_ids(TEXT))} tokens; pp runs its first 4" in cap.out


def test_prompt_mistakes_are_one_line(tmp_path, capsys, tiny_model_path):
    cases = [
        (["logits", MODEL, "--out", tmp_path / "x.npy"], 2, "give --tokens IDS or a text"),
        (["logits", MODEL, "--tokens", "1,2", "-p", "hi", "--out", tmp_path / "x.npy"], 2, "give --tokens IDS or a text"),
        (["logits", MODEL, "-p", "", "--out", tmp_path / "x.npy"], 2, "the prompt has no tokens"),
        (["bench", MODEL, "--prompt", "hello", "-p", "999", "-n", "0"], 2, "longer than the prompt"),
        (["logits", tiny_model_path, "-p", "hi", "--out", tmp_path / "x.npy"], 1, "tokenizer"),
    ]
    for argv, want, part in cases:
        code, cap = _status(capsys, *argv)
        err = cap.err.strip().splitlines()
        assert code == want, (argv, code, err)
        assert len(err) == 1 and part in err[0] and "Traceback" not in err[0], (argv, err)

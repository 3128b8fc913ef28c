"""Record llama-tokenize's ids for the tokenizer test cases (tests/data/tokenizer/llama_tokenize_ids.json).

    python tests/support/record_llama_tokenize.py /path/to/llama.cpp/build/bin/llama-tokenize

The model is the tiny preset carrying tests/data/tokenizer/qwen35-test-tokenizer.json (made with
`harness synth --preset tiny --quant q8_0 --tokenizer ...`); each case is written to a file and read
with `llama-tokenize -m MODEL -f FILE --ids --log-disable [--no-parse-special]`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "tokenizer"
sys.path[:0] = [str(ROOT), str(DATA)]

from cases import CASES  # noqa: E402

from harness.model.synth import synthesize  # noqa: E402


def main(binary: str) -> None:
    out = {"tool": "llama-tokenize (llama.cpp from the llama-cpp-python 0.3.36 sdist)",
           "command": "llama-tokenize -m tiny-tok.gguf -f CASE.txt --ids --log-disable [--no-parse-special]",
           "cases": {}}
    with tempfile.TemporaryDirectory() as d:
        model = Path(d) / "tiny-tok.gguf"
        synthesize("tiny", "q8_0", model, tokenizer=DATA / "qwen35-test-tokenizer.json")
        for name, text in CASES.items():
            f = Path(d) / f"{name}.txt"
            f.write_bytes(text.encode("utf-8"))
            ids = {}
            for mode, flags in (("parse_special", []), ("no_parse_special", ["--no-parse-special"])):
                r = subprocess.run([binary, "-m", str(model), "-f", str(f), "--ids", "--log-disable", *flags],
                                   capture_output=True, text=True, check=True)
                ids[mode] = json.loads(r.stdout.strip().splitlines()[-1])
            out["cases"][name] = ids
    path = DATA / "llama_tokenize_ids.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}: {len(out['cases'])} cases")


if __name__ == "__main__":
    main(sys.argv[1])

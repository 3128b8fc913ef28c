"""Record llama-perplexity's figures for the perplexity tests (tests/data/perplexity/llama_perplexity.json).

    python tests/support/record_llama_perplexity.py /path/to/llama.cpp/build/bin

Models: the tiny preset in q8_0 and q4_k_m, both carrying tests/data/tokenizer/qwen35-test-tokenizer.json
(`harness synth --preset tiny --quant Q --tokenizer ...`, seed 0). Text: tests/data/tokenizer/corpus.txt.
Commands (n_ctx 128, one sequence per batch):
    llama-perplexity -m tiny-q8_0.gguf -f corpus.txt -c 128 -b 128 -t 2 --kl-divergence-base base.kld
    llama-perplexity -m tiny-q4_k_m.gguf -c 128 -b 128 -t 2 --kl-divergence-base base.kld --kl-divergence
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from harness.model.synth import synthesize  # noqa: E402

TOKENIZER = ROOT / "tests" / "data" / "tokenizer" / "qwen35-test-tokenizer.json"
TEXT = ROOT / "tests" / "data" / "tokenizer" / "corpus.txt"
OUT = ROOT / "tests" / "data" / "perplexity" / "llama_perplexity.json"
N_CTX = 128


def number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    if not m:
        raise SystemExit(f"no match for {pattern!r} in llama-perplexity's output:\n{text[-3000:]}")
    return float(m.group(1))


def main(bin_dir: str) -> None:
    exe = str(Path(bin_dir) / "llama-perplexity")
    with tempfile.TemporaryDirectory() as d:
        q8, q4, base = (Path(d) / n for n in ("tiny-q8_0.gguf", "tiny-q4_k_m.gguf", "base.kld"))
        synthesize("tiny", "q8_0", q8, tokenizer=TOKENIZER)
        synthesize("tiny", "q4_k_m", q4, tokenizer=TOKENIZER)
        common = ["-c", str(N_CTX), "-b", str(N_CTX), "-t", "2"]
        a = subprocess.run([exe, "-m", str(q8), "-f", str(TEXT), *common, "--kl-divergence-base", str(base)],
                           capture_output=True, text=True, check=True)
        out_a = a.stdout + a.stderr
        b = subprocess.run([exe, "-m", str(q4), *common, "--kl-divergence-base", str(base), "--kl-divergence"],
                           capture_output=True, text=True, check=True)
        out_b = b.stdout + b.stderr
    rec = {
        "tool": "llama-perplexity (llama.cpp from the llama-cpp-python 0.3.36 sdist)",
        "commands": __doc__.split("Commands (n_ctx 128, one sequence per batch):")[1].strip(),
        "n_ctx": N_CTX,
        "q8_0": {"ppl": number(r"Final estimate: PPL = ([0-9.]+)", out_a),
                 "ppl_err": number(r"Final estimate: PPL = [0-9.]+ \+/- ([0-9.]+)", out_a)},
        "q4_k_m_vs_q8_0": {
            "ppl": number(r"Mean PPL\(Q\)\s+:\s+([0-9.]+)", out_b),
            "ppl_base": number(r"Mean PPL\(base\)\s+:\s+([0-9.]+)", out_b),
            "ppl_ratio": number(r"Mean PPL\(Q\)/PPL\(base\)\s+:\s+([0-9.]+)", out_b),
            "kld_mean": number(r"Mean    KLD:\s+([-0-9.]+)", out_b),
            "kld_median": number(r"Median  KLD:\s+([-0-9.]+)", out_b),
            "kld_p99": number(r"99\.0%   KLD:\s+([-0-9.]+)", out_b),
            "same_top_p": number(r"Same top p:\s+([0-9.]+)", out_b) / 100.0,
        },
    }
    OUT.write_text(json.dumps(rec, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])

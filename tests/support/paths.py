"""Where things are: the repository root and the oracle files (HARNESS_ORACLE_DIR overrides)."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NATIVE = ROOT / "native"
ORACLE = Path(os.environ.get("HARNESS_ORACLE_DIR", ROOT.parent / "shared" / "oracle"))

# every dense oracle file and the logits key suffix llama.cpp used for it
ORACLE_TYPES = ["f32", "bf16", "f16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k", "iq4_xs"]
# the files of oracle/types (tiny-FTYPE.gguf, logits in tiny-types-logits.npz)
ORACLE_OTHER_TYPES = ["q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m", "iq4_nl", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs",
                      "iq3_s", "iq1_s", "iq1_m", "tq1_0", "tq2_0", "mxfp4", "nvfp4"]

# llama.cpp tools built from the llama-cpp-python 0.3.36 sdist (tests that need one skip without it):
# HARNESS_LLAMA_CPP_BIN names their folder; else a llama.cpp checkout beside this one (../llama.cpp)
LLAMA_CPP_BIN = Path(os.environ.get("HARNESS_LLAMA_CPP_BIN", ROOT.parent / "llama.cpp" / "build" / "bin"))


def llama_tool(name: str) -> Path | None:
    """The path of a built llama.cpp tool (llama-tokenize, llama-perplexity, ...), or None."""
    p = LLAMA_CPP_BIN / name
    return p if p.is_file() and os.access(p, os.X_OK) else None

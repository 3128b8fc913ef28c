"""Where things are: the repository root and the oracle files (HARNESS_ORACLE_DIR overrides)."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NATIVE = ROOT / "native"
ORACLE = Path(os.environ.get("HARNESS_ORACLE_DIR", ROOT.parent / "shared" / "oracle"))

# every dense oracle file and the logits key suffix llama.cpp used for it
ORACLE_TYPES = ["f32", "bf16", "f16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k", "iq4_xs"]

"""Our logits on the oracle's files of the other weight types against llama.cpp's, built here from the same
sdist and run now on the same files (issue 16; skips without llama.cpp's static libraries, see
support/llama_cpp/build.py).

The stored llama.cpp logits (oracle/types) came from another machine's build. On a random model the two builds
of llama.cpp itself disagree where an activation sits at a rounding tie: on this project's development machine
(Zen 4, AVX512) llama.cpp's own prefill leaves the stored one's prefill-vs-decode spread on tiny-q5_1 (rms 1.71x,
worst position 4.5x) and tiny-tq1_0 / tq2_0 (rms 1.54x), as far as our engine does. So each file is judged twice:
against llama.cpp built here, with the oracle README's relative bound, and against the stored logits, where we
must be within the bound or no further than llama.cpp built here is."""
import subprocess

import numpy as np
import pytest

from harness.engine.session import Session
from harness.model.loader import load_model
from support.llama_cpp.build import build_llama_logits, find_build
from support.oracle import rms, within_llama_spread
from support.paths import ORACLE_OTHER_TYPES

BUILD = find_build()
pytestmark = pytest.mark.skipif(BUILD is None, reason="llama.cpp's static libraries not built (HARNESS_LLAMA_CPP_BIN)")


def departure(per_pos: np.ndarray, own: np.ndarray) -> tuple[float, float, float]:
    """rms, median and worst per-position max error, each over llama.cpp's own prefill-vs-decode spread's."""
    return rms(per_pos) / rms(own), float(np.median(per_pos) / np.median(own)), float(per_pos.max() / own.max())


@pytest.fixture(scope="module")
def llama_logits_exe(tmp_path_factory):
    return build_llama_logits(BUILD, tmp_path_factory.mktemp("llama"))


@pytest.mark.parametrize("ftype", ORACLE_OTHER_TYPES)
def test_our_logits_are_as_near_llama_cpp_as_its_own_builds_are(oracle_dir, llama_logits_exe, tmp_path, ftype):
    stored = np.load(oracle_dir / "types" / "tiny-types-logits.npz")
    toks = stored["tokens_seq64"]
    path = oracle_dir / "types" / f"tiny-{ftype}.gguf"
    (tmp_path / "tokens.txt").write_text(" ".join(map(str, toks)))
    subprocess.run([str(llama_logits_exe), str(path), str(tmp_path / "tokens.txt"), str(tmp_path / "logits.f32")],
                   check=True, capture_output=True, timeout=300)
    here = np.fromfile(tmp_path / "logits.f32", dtype=np.float32).reshape(len(toks), -1)
    with load_model(path) as m, Session(m, threads=1, ctx=128, type_k="f16", type_v="f16") as s:
        ours = s.prefill(toks)
    oracle = stored[f"llama_{ftype}_prefill_seq64"]
    own = np.abs(oracle - stored[f"llama_{ftype}_decode_seq64"]).max(axis=1)
    ours_here, ours_oracle = np.abs(ours - here).max(axis=1), np.abs(ours - oracle).max(axis=1)
    ours_vs_oracle, here_vs_oracle = departure(ours_oracle, own), departure(np.abs(here - oracle).max(axis=1), own)
    assert within_llama_spread(ours_here, stored, ftype, "seq64"), (departure(ours_here, own), here_vs_oracle)
    # against the stored logits: within the bound, or no further than llama.cpp built here (5% slack on rms)
    assert within_llama_spread(ours_oracle, stored, ftype, "seq64") or (ours_vs_oracle[0] <= 1.05 * here_vs_oracle[0] and ours_vs_oracle[1] <= 1.5
                                      and ours_vs_oracle[2] <= 1.05 * here_vs_oracle[2]), (ours_vs_oracle, here_vs_oracle)

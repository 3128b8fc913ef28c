"""Our kernels against ggml-cpu's own, bit for bit (llama.cpp's static libraries from the llama-cpp-python
0.3.36 sdist; skips without them, see support/llama_cpp/build.py).

llama.cpp's logits on a random model move with the summation order of its kernels: a one-ulp difference in a
dot can flip the rounding of an activation at a near-tie, and the recurrent state carries the flip on. So where
llama.cpp runs a weight type through ggml's x86 vec_dot, our AVX2 dot keeps ggml's integer lanes and float
steps and gives the same float bits, and our activation converters give ggml's bytes (Q8_0 and Q8_1 with
x * (127 / max|x|) rounded half to even, as ggml-cpu's x86 converters, not the reference's x / d rounded half
away from zero). Types llama.cpp repacks at load on AVX2 (Q4_0, IQ4_NL, MXFP4, Q4_K) or runs through
llamafile's tinyBLAS in prefill (Q8_0, Q4_0, Q5_0 and the float types) are judged on logits instead."""
import subprocess

import pytest

from harness import native
from harness.ggml_types import GGMLType
from support.llama_cpp.build import build_ggml_bitwise, find_build

BUILD = find_build()
pytestmark = pytest.mark.skipif(BUILD is None, reason="llama.cpp's static libraries not built (HARNESS_LLAMA_CPP_BIN)")

# the types whose AVX2 dot equals ggml's x86 vec_dot bit for bit
SAME_BITS_AS_GGML = ["Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q6_K", "IQ2_XXS", "IQ2_XS", "IQ2_S",
                     "IQ3_XXS", "IQ3_S", "TQ1_0", "TQ2_0"]


@pytest.fixture(scope="module")
def bitwise(tmp_path_factory):
    return build_ggml_bitwise(BUILD, tmp_path_factory.mktemp("ggml"))


def _run(exe, isa: str, types: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    r = subprocess.run([str(exe), str(native.ISAS[isa]), *(str(int(GGMLType[t])) for t in types)],
                       capture_output=True, text=True, check=True, timeout=300)
    rows = {}
    for line in r.stdout.splitlines():
        kind, t, *counts = line.split()
        assert counts != ["missing"], line
        rows[kind, int(t)] = (int(counts[0]), int(counts[1]))
    return rows


@pytest.mark.skipif("avx2" not in native.cpu_features()["supported"], reason="no AVX2 on this CPU")
def test_avx2_dots_and_converters_give_ggml_s_bits(bitwise):
    """500 rows of 1024 values per type (every third on a lattice that puts x / d on ties): no float bit of
    a dot and no activation byte differs from ggml's."""
    rows = _run(bitwise, "avx2", SAME_BITS_AS_GGML)
    differing = {t: rows["dot", int(GGMLType[t])] for t in SAME_BITS_AS_GGML if rows["dot", int(GGMLType[t])][0]}
    assert not differing, f"rows whose dot differs from ggml's (differing, rows): {differing}"
    for act in ("Q8_0", "Q8_1", "Q8_K"):
        assert rows["act", int(GGMLType[act])] == (0, 500), act

"""Determinism: one configuration gives bit-identical logits run after run (two sessions in this
process and a fresh Python process), for every ISA variant this CPU runs, in prefill and in
decode, with 1 and 2 threads; and the thread count does not change a single bit (3 threads too: the
column splits of elementwise ops fall at other places, which once moved a SIMD tail)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.model.loader import load_model
from support import gguf_fuzz_lib
from support.determinism import RUNNABLE, SHAPES, digests, run


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model_path) -> list[str]:
    """The micro model (F32, F16, BF16, Q8_0, Q4_0 weights) and tiny Q4_K_M (Q4_K, Q6_K)."""
    micro = gguf_fuzz_lib.write_micro_model(tmp_path_factory.mktemp("det") / "micro.gguf")
    return [micro, tiny_model_path]


@pytest.mark.parametrize("isa", RUNNABLE)
def test_bit_identical_run_after_run_and_across_thread_counts(models, isa):
    for p in models:
        with load_model(p) as m:
            for ubatch, fdn in SHAPES:
                first = run(m, isa, 1, ubatch, fdn)
                assert all(np.isfinite(x).all() for x in first)
                for threads in (1, 2, 3):
                    again = run(m, isa, threads, ubatch, fdn)
                    for a, b, what in zip(first, again, ("prefill", "decode")):
                        assert np.array_equal(a, b), f"{p} {isa} {what}: threads 1 vs {threads}, u{ubatch} f{fdn}"


def test_a_fresh_process_gives_the_same_bits(models, record_property):
    here = digests(models)
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r}); "
            f"from support.determinism import digests; print(json.dumps(digests({models!r})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    there = json.loads(r.stdout.strip().splitlines()[-1])
    assert there == here
    record_property("cases_tried", f"determinism: {len(here)} logit sets (2 models x {len(RUNNABLE)} ISAs x "
                                   f"threads 1, 2 x {len(SHAPES)} u-batch shapes x prefill / decode) "
                                   "bit-identical in a fresh process")

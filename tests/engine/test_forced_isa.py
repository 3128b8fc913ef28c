"""Forcing an ISA variant: HARNESS_ISA (the default of Session and Kernels, how the test suite
runs once per variant) and `harness bench --isa`; a variant this CPU cannot run is a clear error."""
import subprocess
import sys

import numpy as np
import pytest

from harness import native
from harness.engine.session import Session
from harness.errors import UsageError
from harness.model.loader import load_model

FEATS = native.cpu_features()
UNRUNNABLE = [i for i in native.ISAS if i not in FEATS["supported"]]


@pytest.mark.parametrize("isa", FEATS["supported"])
def test_harness_isa_sets_the_default_variant(monkeypatch, oracle_dir, isa):
    monkeypatch.setenv("HARNESS_ISA", isa)
    assert native.Kernels().isa == isa
    with load_model(oracle_dir / "tiny-q8_0.gguf") as m, Session(m, ctx=8) as s:
        assert s.isa == isa
        assert np.isfinite(s.prefill([1, 2, 3])).all()
        # an explicit choice still wins over the environment
        with Session(m, isa="scalar", ctx=8) as s2:
            assert s2.isa == "scalar"


def test_harness_isa_unrunnable_or_unknown_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HARNESS_ISA", "mmx")
    with pytest.raises(UsageError, match=r"unknown ISA 'mmx' \(from HARNESS_ISA\)"):
        native.Kernels()
    for isa in UNRUNNABLE:
        monkeypatch.setenv("HARNESS_ISA", isa)
        with pytest.raises(UsageError, match=rf"'{isa}' (variant )?\(from HARNESS_ISA\)"):
            native.Kernels()
    monkeypatch.setenv("HARNESS_ISA", "auto")
    assert native.Kernels().isa == FEATS["best"]


@pytest.mark.skipif(not UNRUNNABLE, reason="every variant runs here")
def test_bench_forcing_an_unrunnable_variant_exits_1_with_one_line(oracle_dir):
    isa = UNRUNNABLE[0]
    r = subprocess.run([sys.executable, "-m", "harness.cli", "bench", str(oracle_dir / "tiny-q8_0.gguf"),
                        "-p", "4", "-n", "2", "-r", "1", "--isa", isa], capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: ") and repr(isa) in lines[0], r.stderr

"""Options, markers and fixtures of the whole suite; helpers live in tests/support/."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))   # tests/: the support package

from support.paths import ORACLE


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run the heavier checks marked slow")
    parser.addoption("--fuzz-examples", type=int, default=None,
                     help="cases per fuzz test (default: a few hundred; env HARNESS_FUZZ_EXAMPLES)")


def pytest_terminal_summary(terminalreporter):
    """Tests that try many cases (fuzzing, sanitizers) say how many, whatever the verbosity."""
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])]
    lines = [v for r in reports for k, v in getattr(r, "user_properties", []) if k == "cases_tried"]
    if lines:
        terminalreporter.section("cases tried")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="heavier check: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _need_oracle():
    if not ORACLE.is_dir():
        msg = f"oracle files not found at {ORACLE} (set HARNESS_ORACLE_DIR)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def oracle_dir() -> Path:
    _need_oracle()
    return ORACLE


@pytest.fixture(scope="session")
def oracle_logits(oracle_dir):
    return np.load(oracle_dir / "tiny-logits.npz")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """Synthetic models and the machine facts of this session go to a temporary cache."""
    d = tmp_path_factory.mktemp("synth")
    os.environ["HARNESS_CACHE"] = str(d)
    return d


@pytest.fixture(scope="session")
def tiny_model_path(synth_dir):
    """A synthetic tiny Q4_K_M model, written once per test session."""
    from harness.model.synth import cached_model
    return cached_model("tiny", "q4_k_m", seed=0)

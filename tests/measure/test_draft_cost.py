"""The cost model of MTP speculative decoding (issue 17 item 5): the expected tokens and seconds
of a step follow the formulas in harness.measure.draft_cost; `harness draft-cost` measures every
term on a file with an MTP block, charts it, and places real runs on the chart."""
import json

import pytest

from harness.cli.main import main
from harness.measure.draft_cost import DraftCost
from support.paths import ROOT

DATA = ROOT / "tests" / "data" / "converter"


def _cost(t_verify: float, t_mtp=0.0, t_save=0.0, t_restore=0.0, t_rerun=0.0) -> DraftCost:
    return DraftCost("m", 8, 1, "scalar", t_decode=1.0, t_mtp=t_mtp, t_save=t_save, t_restore=t_restore,
                     t_verify={1: t_verify, 3: t_verify}, t_rerun={0: t_rerun, 1: t_rerun, 2: t_rerun})


def test_expected_tokens_and_seconds_of_a_step():
    assert DraftCost.tokens_per_step(3, 0.0) == 1.0
    assert DraftCost.tokens_per_step(3, 1.0) == 4.0
    assert DraftCost.tokens_per_step(3, 0.5) == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    c = _cost(t_verify=2.0, t_mtp=0.5, t_save=0.1, t_restore=0.2, t_rerun=1.0)
    # K = 1 at a = 0.5: one draft, save, verify, and with probability 0.5 a restore and a 1-token rerun
    assert c.seconds_per_step(1, 0.5) == pytest.approx(0.5 + 0.1 + 2.0 + 0.5 * (0.2 + 1.0))
    assert c.effective_tps(1, 0.5) == pytest.approx(1.5 / 3.2)


def test_break_even_acceptance():
    assert _cost(t_verify=1.5).break_even(1) == pytest.approx(0.5, abs=1e-9)   # (1 + a) / 1.5 = 1
    assert _cost(t_verify=1.0).break_even(1) == 0.0                            # free verify: always
    assert _cost(t_verify=2.5).break_even(1) is None                           # 2 tokens for 2.5 steps: never


def test_draft_cost_command_measures_charts_and_places_real_runs(tmp_path, capsys):
    out = tmp_path / "dc"
    assert main(["draft-cost", str(DATA / "qwen35-mtp-f32.gguf"), "-k", "1,2", "-d", "8", "-r", "1", "-t", "1",
                 "-p", "The quick brown fox", "-n", "8", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| 1 |" in text and "| 2 |" in text and "measured: K=1" in text
    d = json.loads((out / "draft-cost.json").read_text())
    assert set(d["t_verify"]) == {"1", "2"} and set(d["t_rerun"]) == {"0", "1"}
    assert d["t_decode"] > 0 and d["t_mtp"] > 0 and d["plain_tps"] == pytest.approx(1 / d["t_decode"])
    assert [m["k"] for m in d["measured"]] == [1, 2] and all(0 <= m["acceptance"] <= 1 for m in d["measured"])
    assert (out / "draft-cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draft_cost_needs_an_mtp_block(capsys):
    assert main(["draft-cost", str(DATA / "qwen35-nomtp-f32.gguf"), "-t", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no MTP block" in err[0]

"""Quality measures on cases with known answers, and the `harness quality` command."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from harness.analysis import quality as q
from harness.model.loader import load_model
from harness.measure.vocab_bench import resolve_reference, run_quality


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, check=False)


def test_kl_of_identical_distributions_is_zero():
    x = np.random.default_rng(0).normal(size=(5, 300))
    assert np.allclose(q.kl_rows(x, x), 0.0, atol=1e-12)
    assert np.allclose(q.kl_rows(x, x + 3.0), 0.0, atol=1e-12)   # a constant shift is the same distribution


def test_kl_of_a_known_two_point_pair():
    # P = (1/2, 1/2), Q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
    ref = np.array([[0.0, 0.0]])
    test = np.array([[math.log(3.0), 0.0]])
    assert q.kl_rows(ref, test)[0] == pytest.approx(0.5 * math.log(4 / 3), rel=1e-12)
    assert q.kl_rows(test, ref)[0] == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-12)


def test_kl_is_reported_only_where_the_test_row_is_complete():
    ref = np.zeros((3, 4))
    test = np.array([[0, 0, 0, 0], [0, -np.inf, 0, 0], [np.log(3), 0, 0, 0]], dtype=float)
    kl = q.kl_rows(ref, test)
    assert kl[0] == pytest.approx(0.0, abs=1e-12) and math.isnan(kl[1])
    m = q.measure(ref, test, k=2)
    assert m.kl_positions == 2 and m.kl_max == pytest.approx(kl[2])
    assert m.kl_mean == pytest.approx(kl[2] / 2)
    one_each = np.where(np.eye(3, 4) > 0, 0.0, -np.inf)      # one computed entry per row
    none = q.measure(ref, one_each, k=1)
    assert none.kl_positions == 0 and math.isnan(none.kl_mean) and none.max_abs_err == 0.0


def test_topk_recall_of_a_planted_permutation():
    rng = np.random.default_rng(1)
    ref = np.stack([rng.permutation(100).astype(float) for _ in range(6)])
    k = 10
    test = ref.copy()
    for row in test:                               # shuffle the top-k among themselves: recall 1
        top = np.argsort(-row)[:k]
        row[top] = row[rng.permutation(top)]
    assert q.topk_recall(ref, test, k) == 1.0
    swapped = ref.copy()
    for row in swapped:                            # the k-th and (k+1)-th trade places: recall (k-1)/k
        a, b = np.argsort(-row)[k - 1:k + 1]
        row[a], row[b] = row[b], row[a]
    assert q.topk_recall(ref, swapped, k) == pytest.approx((k - 1) / k)
    assert q.topk_recall(ref, -ref, k) == 0.0      # reversed order shares no top-k id out of 100


def test_topk_recall_counts_missing_entries_as_misses():
    ref = np.array([[5.0, 4.0, 3.0, 2.0]])
    test = np.array([[5.0, -np.inf, -np.inf, -np.inf]])   # only one id computed
    assert q.topk_recall(ref, test, 2) == 0.5


def test_top1_agreement_and_max_abs_err_on_planted_mismatches():
    ref = np.tile(np.arange(8, dtype=float), (4, 1))        # id 7 wins everywhere
    test = ref.copy()
    test[1, 0] = 100.0                                        # position 1 now picks id 0
    test[3, 2] = -np.inf                                      # not computed: not an error
    assert q.top1_agreement(ref, test) == 0.75
    assert q.max_abs_err(ref, test) == 100.0
    assert math.isnan(q.max_abs_err(ref, np.full_like(ref, -np.inf)))


def test_blocks_accumulate_to_the_whole():
    rng = np.random.default_rng(3)
    ref, test = rng.normal(size=(10, 50)), rng.normal(size=(10, 50))
    acc = q.QualityAccumulator(k=5)
    for i in range(0, 10, 3):
        acc.add(ref[i:i + 3], test[i:i + 3])
    a, b = acc.result(), q.measure(ref, test, k=5)
    for f in ("n_positions", "top1_agreement", "kl_max", "max_abs_err", "kl_positions"):
        assert getattr(a, f) == getattr(b, f)
    assert a.topk_recall == pytest.approx(b.topk_recall) and a.kl_mean == pytest.approx(b.kl_mean)


def test_quality_row_has_the_results_store_columns():
    m = q.measure(np.zeros((2, 3)), np.zeros((2, 3)), k=2)
    row = q.quality_row("tiny-q4_k_m", "q4_k_m", "screened:10", m, config_id="abc", reference="tiny (f32)")
    contract = ["config_id", "model", "quant", "vocab_strategy", "n_positions", "top1_agreement", "topk_recall",
                "k", "kl_mean", "kl_max", "max_abs_err"]
    assert list(row)[:len(contract)] == contract
    assert row["n_positions"] == 2 and row["top1_agreement"] == 1.0 and row["kl_mean"] == 0.0
    assert row["config_id"] == "abc" and row["vocab_strategy"] == "screened:10"


# ----------------------------------------------------------------------------
# on models

def test_full_strategy_against_itself_is_perfect_and_argmax_has_no_distribution(oracle_dir, oracle_logits):
    tokens = oracle_logits["tokens_seq64"]
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        assert resolve_reference(m, None) == m.path          # F32 weights are their own reference
        full = run_quality(m, m, "full", tokens, k=10, block=20)
        assert (full.top1_agreement, full.topk_recall, full.max_abs_err, full.kl_positions) == (1.0, 1.0, 0.0, 64)
        assert full.kl_max == pytest.approx(0.0, abs=1e-12)
        am = run_quality(m, m, "argmax", tokens, k=10)
        assert am.top1_agreement == 1.0 and am.max_abs_err == 0.0
        assert am.kl_positions == 0 and am.topk_recall == pytest.approx(0.1)   # only the top-1 is there
        rq = run_quality(m, m, "requant:q4_0", tokens, k=10)
        assert rq.kl_positions == 64 and 0 < rq.kl_mean < 0.05 and rq.max_abs_err > 0


def test_quality_cli_on_a_synthetic_model_uses_its_f32_twin(tiny_model_path):
    r = _cli("quality", tiny_model_path, "--vocab-strategy", "screened:5:q8_0", "-n", "64", "-o", "json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["n_positions"] == 64 and row["reference"] == "qwen35-synthetic-tiny (f32)"
    assert row["quant"] == "q4_k_m" and row["vocab_strategy"] == "screened:5:q8_0"
    assert 0.0 <= row["top1_agreement"] <= 1.0 and row["kl_positions"] == 0   # screened leaves -inf entries


def test_quality_cli_errors(oracle_dir, tiny_model_path, tmp_path):
    r = _cli("quality", str(oracle_dir / "tiny-q4_k_m.gguf"))
    assert r.returncode == 1 and "give --reference" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _cli("quality", tiny_model_path, "--reference", str(oracle_dir / "tiny-f32.gguf"))
    assert r.returncode == 1 and "not the same model" in r.stderr
    toks = tmp_path / "t.txt"
    toks.write_text("1 2 3 99999")
    r = _cli("quality", str(oracle_dir / "tiny-f32.gguf"), "--tokens", str(toks))
    assert r.returncode == 1 and "99999" in r.stderr

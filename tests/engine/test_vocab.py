"""LM head strategies: the exact ones give full's top-K ids and logits (bit for bit: the same kernels
on the same activations), the screening bound holds at every position, bad strategies fail clearly."""
import subprocess
import sys

import numpy as np
import pytest

from harness.engine.session import Session
from harness.errors import UsageError
from harness.ggml_types import GGMLType
from harness.model.loader import load_model
from harness.engine.vocab import EXACTNESS, KINDS, parse_strategy

from support.paths import ORACLE_TYPES

SCREENS = ["", ":q8_0", ":q4_0", ":rank32"]


def _topk_sets(logits, k):
    return [set(np.argpartition(-row, k - 1)[:k]) for row in logits]


def _check_exact_topk(full, out, k):
    """out holds full's top-K at every position: same ids (up to ties at the K-th value), same values,
    every computed entry equal to full's."""
    fin = np.isfinite(out)
    assert np.array_equal(out[fin], full[fin])
    kth_full = -np.sort(-full, axis=1)[:, k - 1]
    kth_out = -np.sort(-out, axis=1)[:, k - 1]
    assert np.array_equal(kth_full, kth_out)
    for row_full, row_out, kth in zip(full, out, kth_full):
        above = set(np.flatnonzero(row_full > kth))        # strictly inside the top-K: must be present
        assert above <= set(np.flatnonzero(row_out > kth))
        assert set(np.flatnonzero(row_out >= kth)) <= set(np.flatnonzero(row_full >= kth))


def _run(m, tokens, strategy="full", mode="prefill", **kw):
    with Session(m, ctx=len(tokens), vocab_strategy=strategy, **kw) as s:
        if mode == "prefill":
            return s.prefill(tokens), s.vocab_stats()
        return np.stack([s.decode(int(t)) for t in tokens]), s.vocab_stats()


# ----------------------------------------------------------------------------
# parsing

@pytest.mark.parametrize("text, kind, fields", [
    ("full", "full", {}),
    ("argmax", "argmax", {}),
    ("requant:q8_0", "requant", {"qtype": GGMLType.Q8_0}),
    ("requant:Q4_K", "requant", {"qtype": GGMLType.Q4_K}),
    ("subset:1000", "subset", {"n": 1000}),
    ("subset:@ids.txt", "subset", {"ids_file": "ids.txt"}),
    ("screened:10", "screened", {"n": 10, "rank": 0, "qtype": None}),
    ("screened:5:q4_0", "screened", {"n": 5, "qtype": GGMLType.Q4_0}),
    ("screened:5:rank64", "screened", {"n": 5, "rank": 64}),
])
def test_parse_strategy_reads_every_form(text, kind, fields):
    st = parse_strategy(text)
    assert st.kind == kind and st.text == text
    for f, v in fields.items():
        assert getattr(st, f) == v


@pytest.mark.parametrize("text, words", [
    ("requant:q2_k", "q2_k"), ("requant", "needs a type"), ("subset:0", "positive"), ("subset:-3", "positive"),
    ("subset:abc", "positive"), ("screened:0", "positive K"), ("screened:x", "positive K"),
    ("screened:5:q3", "q3"), ("screened:5:rank0", "rank"), ("bogus", "unknown vocab strategy"),
    ("full:3", "no argument"), ("argmax:1", "no argument"), ("", "unknown vocab strategy"),
])
def test_bad_strategy_strings_raise_usage_error(text, words):
    with pytest.raises(UsageError, match=words):
        parse_strategy(text)


def test_every_strategy_declares_its_exactness():
    assert set(EXACTNESS) == set(KINDS)
    assert EXACTNESS["full"].distribution and EXACTNESS["screened"].topk and EXACTNESS["argmax"].top1
    assert not EXACTNESS["requant"].top1 and not EXACTNESS["argmax"].topk


def test_session_rejects_strategies_that_do_not_fit(tiny_model_path, tmp_path):
    bad_ids = tmp_path / "ids.txt"
    bad_ids.write_text("1, 2, 99999")
    with load_model(tiny_model_path) as m:
        for text, words in [("subset:5000", "only 4096"), ("screened:5000", "only 4096"),
                            (f"subset:@{tmp_path}/missing.txt", "cannot read"), (f"subset:@{bad_ids}", "99999"),
                            ("screened:3:rank300", "exceeds the model width"), ("nonsense", "unknown")]:
            with pytest.raises(UsageError, match=words):
                Session(m, vocab_strategy=text)


# ----------------------------------------------------------------------------
# exact strategies against full

@pytest.mark.parametrize("qtype", ORACLE_TYPES)
def test_exact_strategies_match_full_on_oracle(oracle_dir, oracle_logits, qtype, tmp_path):
    tokens = oracle_logits["tokens_seq64"]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(" ".join(str(i) for i in range(0, 2048, 7)))
    with load_model(oracle_dir / f"tiny-{qtype}.gguf") as m:
        full, _ = _run(m, tokens, threads=2)
        # argmax: the exact greedy id and logit, nothing else
        out, _ = _run(m, tokens, "argmax", threads=2)
        assert np.array_equal(out.argmax(1), full.argmax(1))
        assert (np.isfinite(out).sum(1) == 1).all()
        assert np.array_equal(out.max(1), full.max(1))
        # screened: the exact top-K at every one of the 64 positions, for every screen
        for k, screen in [(1, "")] + [(10, sc) for sc in SCREENS]:
            out, stats = _run(m, tokens, f"screened:{k}{screen}", threads=2)
            _check_exact_topk(full, out, k)
            assert stats["rows"] == len(tokens)
            assert stats["candidates"] == np.isfinite(out).sum()
        # subset: exact on its rows, -inf elsewhere
        for text, rows in [("subset:300", np.arange(300)), (f"subset:@{ids_file}", np.arange(0, 2048, 7))]:
            out, _ = _run(m, tokens, text, threads=2)
            assert np.array_equal(out[:, rows], full[:, rows])
            assert np.isfinite(out).sum() == out.shape[0] * rows.size


def test_exact_strategies_match_full_in_decode_any_threads_and_ubatch(oracle_dir, oracle_logits):
    """The fused delta rule for every u-batch (fdn 64), so that the hidden states, and with them the
    strategies' outputs, do not depend on how the tokens are batched."""
    tokens = oracle_logits["tokens_seq64"][:16]
    with load_model(oracle_dir / "tiny-q4_k_m.gguf") as m:
        full, _ = _run(m, tokens, threads=2)
        for strategy in ("screened:5:q8_0", "argmax"):
            ref, _ = _run(m, tokens, strategy, threads=1, ubatch=64, fdn_threshold=64)
            for kw in ({"threads": 2, "ubatch": 7}, {"threads": 3, "ubatch": 64}):
                out, _ = _run(m, tokens, strategy, fdn_threshold=64, **kw)
                assert np.array_equal(out, ref), (strategy, kw)
            dec, _ = _run(m, tokens, strategy, mode="decode", threads=2, fdn_threshold=64)
            assert np.array_equal(dec, ref)
            assert np.array_equal(ref.argmax(1), full.argmax(1))


def test_exact_strategies_match_full_on_synthetic_tied_model(tiny_model_path):
    tokens = np.random.default_rng(1).integers(0, 4096, 40)
    with load_model(tiny_model_path) as m:
        assert m.config.tied_output
        full, _ = _run(m, tokens, threads=2)
        for k, screen in [(1, ""), (20, ":q8_0"), (20, ":rank64")]:
            out, _ = _run(m, tokens, f"screened:{k}{screen}", threads=2)
            _check_exact_topk(full, out, k)
        out, _ = _run(m, tokens, "argmax", threads=2)
        assert np.array_equal(out.max(1), full.max(1)) and np.array_equal(out.argmax(1), full.argmax(1))
        with Session(m, threads=2, ctx=64, vocab_strategy="argmax") as s:
            assert np.array_equal(s.prefill_top1(tokens), full.argmax(1))
            s.reset()
            assert s.decode_top1(int(tokens[0])) == int(full[0].argmax())
        with Session(m, threads=2, ctx=64) as s:
            assert np.array_equal(s.prefill_top1(tokens), full.argmax(1))
            assert s.prefill_top1(tokens[:3], all_positions=False).shape == (1,)


def test_requant_copy_is_exact_for_its_own_type_and_close_for_q8_0(oracle_dir, oracle_logits):
    tokens = oracle_logits["tokens_seq64"][:32]
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        full, _ = _run(m, tokens, threads=2)
        same, _ = _run(m, tokens, "requant:f32", threads=2)
        assert np.array_equal(same, full)              # F32 -> F32 copies the weight bit for bit
        q8, _ = _run(m, tokens, "requant:q8_0", threads=2)
        err = np.abs(q8 - full).max()
        assert np.isfinite(q8).all() and 0 < err < 0.1   # logit std 0.8: Q8_0 weights + Q8_0 activations


# ----------------------------------------------------------------------------
# does screening pay off: random rows vs a low-rank-plus-noise head

def test_screening_candidates_few_on_low_rank_head_all_on_random_head(synth_dir):
    from harness.model.synth import cached_model
    tokens = np.random.default_rng(2).integers(0, 4096, 24)
    for rank, noise, expect_few in [(16, 0.01, True), (0, 0.0, False)]:
        with load_model(cached_model("tiny", "q8_0", head_rank=rank, head_noise=noise)) as m:
            full, _ = _run(m, tokens, threads=2)
            out, stats = _run(m, tokens, "screened:10:rank16", threads=2)
            _check_exact_topk(full, out, 10)
            share = stats["candidates_per_row"] / m.config.vocab_size
            print(f"rank {rank} noise {noise}: {stats['candidates_per_row']:.0f} candidates per token ({share:.1%})")
            assert (share < 0.05) if expect_few else (share > 0.5)


# ----------------------------------------------------------------------------
# command line

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, check=False)


def test_logits_cli_writes_minus_inf_outside_the_argmax(tiny_model_path, tmp_path):
    out = tmp_path / "l.npy"
    r = _cli("logits", tiny_model_path, "--tokens", "1,2,3,4", "--vocab-strategy", "argmax", "--out", str(out))
    assert r.returncode == 0, r.stderr
    a = np.load(out)
    assert a.shape == (4, 4096) and (np.isfinite(a).sum(1) == 1).all()
    r = _cli("logits", tiny_model_path, "--tokens", "1,2,3,4", "--out", str(tmp_path / "f.npy"))
    assert r.returncode == 0
    assert np.array_equal(np.load(tmp_path / "f.npy").max(1), a.max(1))


def test_bad_strategy_on_the_command_line_exits_2_with_one_line(tiny_model_path, tmp_path):
    r = _cli("logits", tiny_model_path, "--tokens", "1", "--vocab-strategy", "requant:q2_k", "--out",
             str(tmp_path / "x.npy"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].endswith("requant type 'q2_k' is not supported (choose from f32, f16, "
                                                      "bf16, q8_0, q4_0, q4_k, q5_k, q6_k, iq4_xs)")
    r = _cli("logits", tiny_model_path, "--tokens", "1", "--vocab-strategy", "subset:9999", "--out",
             str(tmp_path / "x.npy"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "only 4096" in r.stderr


def test_bench_records_the_strategy(tiny_model_path):
    import json
    r = _cli("bench", tiny_model_path, "-p", "0", "-n", "4", "-r", "1", "-o", "json", "--vocab-strategy", "argmax")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert [x["vocab_strategy"] for x in rec] == ["argmax"] and rec[0]["n_gen"] == 4


def test_vocab_bench_reports_every_strategy(tiny_model_path):
    r = _cli("vocab-bench", tiny_model_path, "-s", "full,argmax,screened:5:q8_0", "-n", "4", "-r", "1")
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x.startswith("| ") and "strategy" not in x and "---" not in x]
    assert [x.split("|")[1].strip() for x in lines] == ["full", "argmax", "screened:5:q8_0"]
    assert lines[0].split("|")[4].strip() == "1.00"      # full against itself

"""The native engine against the oracle and the float64 reference.

Bounds (docs/qwen35.md, Oracle agreement):
  F32 file, every path: within 2e-3 of transformers float64.
  Quantized files: the engine rounds activations the way ggml pairs them with each weight type
  (Q8_0 for Q8_0/Q4_0, Q8_K for the K-quants and IQ4_XS, F16 / BF16 for F16 / BF16), so it is
  compared with llama.cpp on the same file, bound 0.15, for every ISA variant this CPU runs.
  A random model turns one activation-rounding flip at a near-tie into a tail position; where the
  fixed bound is passed, the relative yardstick (docs/qwen35.md, Oracle agreement) decides: against llama.cpp's own
  prefill-vs-decode spread on that file, rms and median of the per-position max error within 1.5x,
  the worst position within 3x. (Seen once: AVX512 on q5_k_m seq64, 0.156; the AVX512 logits equal
  the scalar variant's bit for bit up to position 7, where one Q8_K rounding flips.)"""
import threading

import numpy as np
import pytest

from harness import native
from harness.engine.session import Session
from harness.errors import ModelFileError, UsageError
from harness.model.loader import load_model
from harness.engine.reference import reference_logits

from support.paths import ORACLE_TYPES
from support.oracle import run_tokens as _run
from support.oracle import within_llama_spread

F32_BOUND, QUANT_BOUND = 2e-3, 0.15
QUANT_MEDIAN_BOUND = 0.06   # per-position max error, median over positions (llama.cpp's own: ~0.03)
RUNNABLE = native.cpu_features()["supported"]


def _runnable_types(oracle_dir):
    """Oracle types whose every weight type has a kernel in this build."""
    out = []
    for t in ORACLE_TYPES:
        with load_model(oracle_dir / f"tiny-{t}.gguf") as m:
            try:
                Session(m).close()
                out.append(t)
            except UsageError:
                pass
    return out


def _oracle(oracle_logits, qtype, mode, seq):
    if qtype == "f32":
        return oracle_logits[f"hf_f64_{seq}"], F32_BOUND
    key = f"llama_{qtype}_{mode}_{seq}" if seq != "seq1" else f"llama_{qtype}_prefill_{seq}"
    return oracle_logits[key], QUANT_BOUND


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("qtype", ORACLE_TYPES)
def test_engine_matches_oracle_every_type(oracle_dir, oracle_logits, qtype, isa):
    with load_model(oracle_dir / f"tiny-{qtype}.gguf") as m:
        try:
            Session(m, isa=isa).close()
        except UsageError as e:
            pytest.skip(f"no kernels for {qtype} in this build yet: {e}")
        for mode in ("prefill", "decode"):
            for seq in ("seq7", "seq64"):
                tokens = oracle_logits[f"tokens_{seq}"]
                ours = _run(m, tokens, mode, threads=2, ubatch=64, isa=isa)
                ref, bound = _oracle(oracle_logits, qtype, mode, seq)
                per_pos = np.abs(ours - ref).max(axis=1)
                err, med = float(per_pos.max()), float(np.median(per_pos))
                relative = qtype != "f32" and err >= bound and within_llama_spread(per_pos, oracle_logits, qtype, seq)
                print(f"{isa} {qtype} {mode} {seq}: max abs err {err:.3e} (bound {bound}), per-position median "
                      f"{med:.3f}" + (" (past the fixed bound: within llama.cpp's own spread)" if relative else ""))
                assert err < bound or relative, f"{isa} {qtype} {mode} {seq}: {err:.3e} >= {bound}"
                if qtype != "f32":
                    assert med < QUANT_MEDIAN_BOUND


@pytest.mark.parametrize("fdn", [0, 1, 16, 512])
@pytest.mark.parametrize("ubatch", [1, 7, 64, 512])
def test_f32_every_threshold_and_ubatch(oracle_dir, oracle_logits, fdn, ubatch):
    """F32 weights: prefill and decode, 1 and 2 threads, all within 2e-3 of transformers f64;
    results do not depend on the thread count at all (each output is computed by one thread)."""
    tokens = oracle_logits["tokens_seq64"]
    ref = oracle_logits["hf_f64_seq64"]
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        one = _run(m, tokens, "prefill", threads=1, ubatch=ubatch, fdn_threshold=fdn)
        two = _run(m, tokens, "prefill", threads=2, ubatch=ubatch, fdn_threshold=fdn)
        dec = _run(m, tokens, "decode", threads=2, ubatch=ubatch, fdn_threshold=fdn)
    for name, got in (("prefill/1t", one), ("prefill/2t", two), ("decode/2t", dec)):
        err = float(np.abs(got - ref).max())
        print(f"F={fdn} ubatch={ubatch} {name}: max abs err {err:.2e}")
        assert err < F32_BOUND
    assert np.array_equal(one, two)


@pytest.mark.parametrize("algo", ["recurrent", "fused", "chunked"])
def test_each_deltanet_algorithm_matches_the_reference(oracle_dir, oracle_logits, algo):
    """On the q8_0 file against the float64 reference on dequantized weights, 150 tokens
    (two full chunks of 64 and a partial one), starting after 20 tokens of carried state."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 2048, 170)
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        ref = reference_logits(m, tokens)
        with Session(m, ctx=256, ubatch=512, dn_algo=algo) as s:
            first = s.prefill(tokens[:20])
            rest = s.prefill(tokens[20:])
    err = float(np.abs(np.concatenate([first, rest]) - ref).max())
    print(f"{algo}: max abs err vs float64 reference {err:.2e}")
    assert err < 5e-4


def test_decode_equals_prefill_and_state_round_trips(oracle_dir, oracle_logits):
    tokens = oracle_logits["tokens_seq64"]
    with load_model(oracle_dir / "tiny-q8_0.gguf") as m, Session(m, ctx=128, ubatch=16) as s:
        s.prefill(tokens[:30])
        snap = s.save_state()
        a = np.stack([s.decode(int(t)) for t in tokens[30:40]])
        s.restore_state(snap)
        assert s.n_past == 30
        b = np.stack([s.decode(int(t)) for t in tokens[30:40]])
        assert np.array_equal(a, b)
        s.reset()
        assert s.n_past == 0
        fresh = s.prefill(tokens[:40])
    assert np.abs(fresh[30:] - a).max() < 0.05   # prefill vs decode: same math, other rounding order


def test_same_configuration_gives_bit_identical_logits(oracle_dir, oracle_logits):
    tokens = oracle_logits["tokens_seq64"]
    with load_model(oracle_dir / "tiny-q8_0.gguf") as m:
        runs = [_run(m, tokens, "prefill", threads=2, ubatch=7) for _ in range(3)]
    assert all(np.array_equal(runs[0], r) for r in runs)


@pytest.mark.parametrize("isa", RUNNABLE)
def test_every_isa_variant(oracle_dir, oracle_logits, isa):
    tokens = oracle_logits["tokens_seq64"]
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        got = _run(m, tokens, "prefill", isa=isa, threads=2)
    assert np.abs(got - oracle_logits["hf_f64_seq64"]).max() < F32_BOUND


def test_two_sessions_in_two_threads(oracle_dir, oracle_logits):
    tokens = oracle_logits["tokens_seq64"]
    with load_model(oracle_dir / "tiny-q8_0.gguf") as m:
        alone = _run(m, tokens, "prefill")
        out = {}

        def work(i):
            out[i] = _run(m, tokens, "prefill")
        ths = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        [t.start() for t in ths]
        [t.join() for t in ths]
    assert np.array_equal(out[0], alone) and np.array_equal(out[1], alone)


def test_profile_accounts_weight_bytes(oracle_dir):
    with load_model(oracle_dir / "tiny-q4_k_m.gguf") as m:
        try:
            s = Session(m, profile=True)
        except UsageError:
            m = load_model(oracle_dir / "tiny-q8_0.gguf")
            s = Session(m, profile=True)
        s.decode(5)
        df = s.profile()
        s.close()
        # one token reads every weight once: the profile's bytes equal the file's accounting
        assert df.bytes.sum() == m.bytes_per_token()
        assert df[df.op == "mm_lm_head"].bytes.sum() == m.info(m.lm_head_name()).nbytes
        assert set(df.op) >= {"deltanet", "attention", "conv1d", "mm_lm_head", "mm_ffn_down"}
        assert (df.ns >= 0).all() and df.ns.sum() > 0
    with load_model(oracle_dir / "tiny-f32.gguf") as m, Session(m) as s:
        s.decode(1)
        assert s.profile().empty       # profiling off records nothing


def test_profile_counts_the_multiply_adds_of_the_weight_products(oracle_dir, oracle_logits):
    """macs per op: rows x columns of its weights x the tokens through them (the GMAC/s of bench's
    profile table); the ops without weights count none."""
    tokens = oracle_logits["tokens_seq7"]
    with load_model(oracle_dir / "tiny-q8_0.gguf") as m, Session(m, profile=True) as s:
        s.prefill(tokens)
        df = s.profile()
        size = lambda name: int(np.prod(m.info(name).shape))
        T, cfg = len(tokens), m.config
        for op, names in [("mm_ffn_gate_up", ["ffn_gate", "ffn_up"]), ("mm_ffn_down", ["ffn_down"]),
                          ("mm_ssm_out", ["ssm_out"])]:
            rows = df[df.op == op]
            assert len(rows) > 0
            for layer, macs in zip(rows.layer, rows.macs):
                assert macs == T * sum(size(f"blk.{layer}.{n}.weight") for n in names), (op, layer)
        assert int(df[df.op == "mm_lm_head"].macs.sum()) == T * cfg.vocab_size * cfg.n_embd  # every token's logits
        assert (df[~df.op.str.startswith("mm_")].macs == 0).all()
    with load_model(oracle_dir / "tiny-q8_0.gguf") as m, Session(m, profile=True, vocab_strategy="screened:8") as s:
        s.prefill(tokens)
        head = s.profile().query("op == 'mm_lm_head'")
        row_bytes = m.info(m.lm_head_name()).nbytes // m.config.vocab_size
        # the screened strategy's exact rows: as many (row, token) products as it read rows
        assert int(head.macs.sum()) == int(head.bytes.sum()) // row_bytes * m.config.n_embd > 0


def test_bad_input_is_a_clear_error(oracle_dir):
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        with Session(m, ctx=8) as s:
            with pytest.raises(UsageError, match="token id 2048 is outside the vocabulary"):
                s.prefill([1, 2048])
            with pytest.raises(UsageError, match="context overflow: 0 tokens in the context \\+ 9 new > ctx 8"):
                s.prefill(list(range(9)))
            s.prefill(list(range(8)))
            with pytest.raises(UsageError, match="context overflow"):
                s.decode(1)
        for bad in (0, -1, 1.5):
            with pytest.raises(UsageError, match="threads must be an integer >= 1"):
                Session(m, threads=bad)
        with pytest.raises(UsageError, match="unknown ISA"):
            Session(m, isa="mmx")
        closed = Session(m)
        closed.close()
        for call in (lambda: closed.n_past, closed.reset_profile, closed.save_state, lambda: closed.decode(1)):
            with pytest.raises(UsageError, match="session is closed"):
                call()
        s = Session(m)
    with pytest.raises(ModelFileError, match="model is closed"):
        s.decode(1)
    with pytest.raises(ModelFileError, match="model is closed"):
        Session(m)

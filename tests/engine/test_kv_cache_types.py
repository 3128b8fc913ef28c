"""KV cache types (-ctk / -ctv: f32, f16, bf16, q8_0) against two oracles.

1. The float64 reference with the same cache rounding: K and V rows go through the gguf package's
   converter of that type (q8_0: ggml-cpu's x86 converter) before attention reads them
   (engine.reference.cache_rounded). The engine
   must stay within the F32-file bound, 2e-3, of it, while the rounding itself moves the logits by more
   than that for bf16 and q8_0 (so the check sees the cache type).
2. llama.cpp decoding token by token, whose KV cache is F16 by default (oracle README): our F16 cache
   on the F32 file within 2e-3 of it, and on a quantized file within the quantized bound, 0.15."""
import numpy as np
import pytest

from harness import native
from harness.engine.reference import cache_rounded, reference_logits
from harness.engine.session import CACHE_TYPES, Session, cache_value_bytes, check_cache_type
from harness.errors import UsageError
from harness.ggml_types import GGMLType
from harness.model.loader import load_model

from support.oracle import run_tokens

F32_BOUND, QUANT_BOUND = 2e-3, 0.15
RUNNABLE = native.cpu_features()["supported"]
ROUNDED = ["f16", "bf16", "q8_0"]


@pytest.fixture(scope="module")
def tiny_f32(oracle_dir):
    with load_model(oracle_dir / "tiny-f32.gguf") as m:
        yield m


@pytest.fixture(scope="module")
def rounded_reference(tiny_f32, oracle_logits):
    tokens = oracle_logits["tokens_seq64"]
    return {t: reference_logits(tiny_f32, tokens, "prefill", t, t) for t in ROUNDED}


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("mode", ["prefill", "decode"])
@pytest.mark.parametrize("cache", ROUNDED)
def test_engine_matches_the_reference_with_the_same_cache_rounding(tiny_f32, oracle_logits, rounded_reference,
                                                                   cache, mode, isa):
    tokens = oracle_logits["tokens_seq64"]
    ours = run_tokens(tiny_f32, tokens, mode, threads=2, ubatch=16, isa=isa, type_k=cache, type_v=cache)
    err = float(np.abs(ours - rounded_reference[cache]).max())
    unrounded = float(np.abs(ours - oracle_logits["hf_f64_seq64"]).max())
    print(f"{isa} {cache} {mode}: vs rounded-cache reference {err:.2e}, vs transformers f64 {unrounded:.2e}")
    assert err < F32_BOUND
    if cache != "f16":      # the rounding is visible: F32-exact logits are further away than the bound
        assert unrounded > F32_BOUND


def test_f16_cache_decodes_like_llama_cpp(tiny_f32, oracle_logits):
    """llama.cpp's decode logits were made with its default F16 KV cache."""
    tokens = oracle_logits["tokens_seq64"]
    ours = run_tokens(tiny_f32, tokens, "decode", threads=2, type_k="f16", type_v="f16")
    err = float(np.abs(ours - oracle_logits["llama_f32_decode_seq64"]).max())
    print(f"f16 cache decode vs llama.cpp decode: {err:.2e}")
    assert err < F32_BOUND


def test_f16_cache_on_a_quantized_file_tracks_llama_cpp(oracle_dir, oracle_logits):
    tokens = oracle_logits["tokens_seq64"]
    with load_model(oracle_dir / "tiny-q8_0.gguf") as m:
        ours = run_tokens(m, tokens, "decode", threads=2, type_k="f16", type_v="f16")
    err = float(np.abs(ours - oracle_logits["llama_q8_0_decode_seq64"]).max())
    print(f"q8_0 file, f16 cache, decode vs llama.cpp: {err:.3f}")
    assert err < QUANT_BOUND


def test_k_and_v_types_are_independent(tiny_f32, oracle_logits):
    tokens = oracle_logits["tokens_seq7"]
    ref = reference_logits(tiny_f32, tokens, "prefill", "f16", "q8_0")
    ours = run_tokens(tiny_f32, tokens, "prefill", threads=2, type_k="f16", type_v="q8_0")
    assert float(np.abs(ours - ref).max()) < F32_BOUND
    other = reference_logits(tiny_f32, tokens, "prefill", "q8_0", "f16")
    assert float(np.abs(ref - other).max()) > 10 * float(np.abs(ours - ref).max())


def test_results_do_not_depend_on_threads_or_ubatch(tiny_f32, oracle_logits):
    tokens = oracle_logits["tokens_seq64"]
    runs = [run_tokens(tiny_f32, tokens, "prefill", threads=t, ubatch=u, type_k="q8_0", type_v="f16")
            for t, u in ((1, 64), (3, 64), (2, 64))]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_state_snapshot_round_trips_and_refuses_another_cache_type(tiny_f32, oracle_logits):
    tokens = oracle_logits["tokens_seq64"]
    with Session(tiny_f32, ctx=128, type_k="q8_0", type_v="q8_0") as s:
        s.prefill(tokens[:40])
        snap = s.save_state()
        a = s.prefill(tokens[40:])
        s.restore_state(snap)
        assert np.array_equal(s.prefill(tokens[40:]), a)
        with Session(tiny_f32, ctx=128) as f32:
            small = f32.save_state()           # n_past 0: only the header would differ
        with pytest.raises(UsageError, match="cache types"):
            s.restore_state(small)
    with Session(tiny_f32, ctx=128, type_k="bf16", type_v="bf16") as s_bf16, \
            Session(tiny_f32, ctx=128, type_k="f16", type_v="f16") as s_f16:
        s_f16.prefill(tokens[:8])
        with pytest.raises(UsageError, match="cache types"):   # same size, other type
            s_bf16.restore_state(s_f16.save_state())


def test_cache_bytes_per_value():
    assert [cache_value_bytes(t) for t in CACHE_TYPES] == [4.0, 2.0, 2.0, 34 / 32]


def test_bad_cache_types_are_clear_errors(tiny_f32):
    with pytest.raises(UsageError, match="cache type k 'q4_0' is not supported"):
        Session(tiny_f32, type_k="q4_0")
    with pytest.raises(UsageError, match="head_dim 48 is not a multiple"):
        check_cache_type("v", "q8_0", 48)
    check_cache_type("v", "f16", 48)     # F16 has no blocks


def test_cache_rounding_is_the_engine_s_own():
    """f16 as numpy rounds it; q8_0 byte for byte as the engine's converter writes a cache row (ggml-cpu's
    x86 rule: x * (127 / max|x|) rounded half to even), ties included."""
    x = np.linspace(-3, 3, 64).reshape(2, 32)
    assert np.array_equal(cache_rounded(x, "f16"), x.astype(np.float16).astype(np.float64))
    ties = (np.arange(-127, 129, dtype=np.float32) / 2).reshape(8, 32)   # x * 127 / max lands on halves
    ties[:, 0] = 127.0
    rows = np.concatenate([np.random.default_rng(5).standard_normal((64, 32)).astype(np.float32), ties])
    for isa in RUNNABLE:
        stored = native.Kernels(isa).from_float(rows, GGMLType.Q8_0)
        assert np.array_equal(native.dequantize(stored, GGMLType.Q8_0, 32), cache_rounded(rows, "q8_0")), isa

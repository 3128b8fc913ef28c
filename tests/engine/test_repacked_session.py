"""Sessions with repacked weights (Session(repack=...), native/src/repacked.h): every matrix of a type
with a repacked product (Q4_K, Q5_K, Q6_K, Q8_0, IQ4_XS, BF16) in the oracle's tiny files is copied into the interleaved layout, the logits stay as close to llama.cpp's
as the stored layout's, and they do not depend on the thread count."""
import numpy as np
import pytest

from harness import native
from harness.engine.session import Session
from harness.errors import UsageError
from harness.model.loader import load_model
from harness._native import lib

from support.oracle import run_tokens, within_llama_spread

RUNNABLE = native.cpu_features()["supported"]
QUANT_BOUND, QUANT_MEDIAN_BOUND = 0.15, 0.06   # as test_engine.py


def _packed_bytes(m, isa: str) -> int:
    """What repacking every matrix of the layers takes, of the types this ISA has a repacked product for:
    each with rows a multiple of 16 (the 8-row ssm_alpha / ssm_beta stay as stored). The LM head and the
    token embedding stay as stored."""
    k = native.Kernels(isa)
    total = 0
    for name, ti in m.gguf.tensors.items():
        if not name.startswith("blk."):
            continue
        if k.has_packed(ti.type) and len(ti.ne) == 2:
            total += int(lib.q35_packed_bytes(int(ti.type), ti.ne[1], ti.ne[0]))
    return total


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("qtype", ["q4_k_m", "q5_k_m", "q6_k", "q8_0", "iq4_xs", "bf16"])
def test_repacked_files_match_llama_cpp_on_every_isa(oracle_dir, oracle_logits, qtype, isa):
    with load_model(oracle_dir / f"tiny-{qtype}.gguf") as m:
        want = _packed_bytes(m, isa)
        if want == 0:
            pytest.skip(f"{isa} has no repacked product for the types of tiny-{qtype}")
        with Session(m, isa=isa, repack="on") as s:
            assert s.packed_bytes == want
        for mode in ("prefill", "decode"):
            tokens = oracle_logits["tokens_seq64"]
            ours = run_tokens(m, tokens, mode, threads=2, ubatch=64, isa=isa, repack="on")
            per_pos = np.abs(ours - oracle_logits[f"llama_{qtype}_{mode}_seq64"]).max(axis=1)
            err, med = float(per_pos.max()), float(np.median(per_pos))
            print(f"{isa} repacked {qtype} {mode} seq64: max abs err {err:.3e}, per-position median {med:.3f}")
            assert err < QUANT_BOUND or within_llama_spread(per_pos, oracle_logits, qtype, "seq64")
            assert med < QUANT_MEDIAN_BOUND


def test_repacked_logits_do_not_depend_on_the_thread_count(oracle_dir, oracle_logits):
    tokens = oracle_logits["tokens_seq64"]
    with load_model(oracle_dir / "tiny-q4_k_m.gguf") as m:
        runs = [run_tokens(m, tokens, "prefill", threads=t, ubatch=64, repack="on") for t in (1, 2, 3)]
        off = run_tokens(m, tokens, "prefill", threads=2, ubatch=64, repack="off")
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
    assert not np.array_equal(runs[0], off)      # the repacked products round differently: it did run


@pytest.mark.parametrize("qtype", ["q8_0", "q4_k_m"])
def test_the_swiglu_folded_into_the_repacked_gate_up_product_keeps_every_bit(oracle_dir, oracle_logits, qtype):
    """Where the FFN's gate and up products are repacked, each thread applies the SwiGLU to its own gate
    and up tiles (q35_matmul_glu): the logits equal those of the separate SwiGLU pass, prefill and decode,
    at 1 and 2 threads, and the profile then has no swiglu op of its own."""
    tokens = oracle_logits["tokens_seq64"][:40]
    with load_model(oracle_dir / f"tiny-{qtype}.gguf") as m:
        for mode in ("prefill", "decode"):
            for threads in (1, 2):
                kw = dict(threads=threads, ubatch=64, repack="on")
                fused = run_tokens(m, tokens, mode, **kw)
                apart = run_tokens(m, tokens, mode, fuse_swiglu=False, **kw)
                assert np.array_equal(fused, apart), (mode, threads)
        ops = {}
        for fuse in (True, False):
            with Session(m, repack="on", profile=True, fuse_swiglu=fuse) as s:
                s.prefill(tokens)
                ops[fuse] = set(s.profile()["op"])
        assert "swiglu" not in ops[True] and "swiglu" in ops[False]


def test_repack_modes(oracle_dir):
    with load_model(oracle_dir / "tiny-q4_k_m.gguf") as m:
        with Session(m, isa="scalar") as s:            # auto: only where the product is a SIMD kernel
            assert (s.repack, s.packed_bytes) == (False, 0)
        with Session(m, isa="scalar", repack="on") as s:
            assert s.packed_bytes == _packed_bytes(m, "scalar")
        for isa in set(RUNNABLE) & {"avx2", "avx512"}:
            with Session(m, isa=isa) as s:
                assert s.repack and s.packed_bytes == _packed_bytes(m, isa)
            with Session(m, isa=isa, repack="off") as s:
                assert (s.repack, s.packed_bytes) == (False, 0)
        with pytest.raises(UsageError, match="unknown repack mode 'yes'"):
            Session(m, repack="yes")
    with load_model(oracle_dir / "tiny-f16.gguf") as m, Session(m, repack="on") as s:
        assert s.packed_bytes == 0                     # no repacked layout for F16 (yet)
    with load_model(oracle_dir / "tiny-bf16.gguf") as m, Session(m, repack="on") as s:
        # BF16 on NEON (fmla under FPCR.FZ) and on AVX512 where the CPU has AVX512-BF16 (vdpbf16ps):
        # dispatch adds the product then; AVX2 has none
        assert s.packed_bytes == _packed_bytes(m, s.isa)
        bf16_product = s.isa.startswith("neon") or (s.isa == "avx512" and native.cpu_features()["flags"]["avx512bf16"])
        assert (s.packed_bytes > 0) == bf16_product


def _resident_kib(path: str) -> int:
    """Resident KiB of this process's mappings of one file (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            if "-" in line.split(" ", 1)[0]:
                inside = line.rstrip().endswith(path)
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


def test_repacked_tensors_leave_the_mapped_bytes_to_the_page_cache(oracle_dir, oracle_logits):
    """A repacking session drops its resident pages of the tensors it copied (the RSS holds the copies, not
    both); the bytes read back unchanged, and a session without repacking still runs them."""
    path = str(oracle_dir / "tiny-q4_k_m.gguf")
    tokens = oracle_logits["tokens_seq7"]
    with load_model(path) as m:
        name = "blk.0.ffn_gate.weight"
        before = m.raw(name).copy()
        plain = run_tokens(m, tokens, "prefill", repack="off")
        touched = _resident_kib(path)
        with Session(m, isa="scalar", repack="on"):
            released = _resident_kib(path)
        assert released < touched
        assert np.array_equal(m.raw(name), before)
        assert np.array_equal(run_tokens(m, tokens, "prefill", repack="off"), plain)


def _moe_packed_bytes(m, isa: str, stacks: bool) -> int:
    """_packed_bytes counting, with stacks, the expert stacks too (each as experts x rows rows)."""
    k = native.Kernels(isa)
    total = _packed_bytes(m, isa)
    for name, ti in m.gguf.tensors.items():
        if stacks and name.endswith("_exps.weight") and k.has_packed(ti.type):
            total += int(lib.q35_packed_bytes(int(ti.type), ti.ne[1] * ti.ne[2], ti.ne[0]))
    return total


@pytest.mark.parametrize("qtype", ["q4_k_m", "q8_0"])
def test_repacked_expert_stacks_match_llama_cpp_whatever_the_batching(oracle_dir, qtype):
    """The tinymoe files' expert stacks (8 experts of 256 rows) are repacked with the dense matrices; the
    logits stay within the MoE oracle's bounds of llama.cpp (tests/engine/test_engine_moe.py), and equal
    for 1, 2 and 3 threads and for prefill and decode (grouping tokens by expert changes no sum)."""
    isa = next((i for i in ("avx512", "avx2") if i in RUNNABLE), None)
    if isa is None:
        pytest.skip("no SIMD ISA with repacked products on this CPU")
    moe = np.load(oracle_dir / "tinymoe-logits.npz")
    tokens = moe["tokens_seq64"]
    with load_model(oracle_dir / f"tinymoe-{qtype}.gguf") as m:
        with Session(m, isa=isa, repack="on") as s:
            assert s.packed_bytes == _moe_packed_bytes(m, isa, stacks=True) > _moe_packed_bytes(m, isa, stacks=False)
        # the fused delta rule in prefill too (as decode), so that only the expert grouping differs
        runs = [run_tokens(m, tokens, "prefill", threads=t, ubatch=64, isa=isa, repack="on", fdn_threshold=64)
                for t in (1, 2, 3)]
        decode = run_tokens(m, tokens, "decode", threads=2, ubatch=64, isa=isa, repack="on", fdn_threshold=64)
        off = run_tokens(m, tokens, "prefill", threads=2, ubatch=64, isa=isa, repack="off", fdn_threshold=64)
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
    assert np.array_equal(runs[0], decode)
    assert not np.array_equal(runs[0], off)
    # llama.cpp's own prefill and decode part at a router near-tie on q4_k_m: take the nearer per position
    per_pos = np.min([np.abs(runs[0] - moe[f"llama_{qtype}_{lm}_seq64"]).max(axis=1)
                      for lm in ("prefill", "decode")], axis=0)
    err, med = float(per_pos.max()), float(np.median(per_pos))
    print(f"{isa} repacked tinymoe-{qtype}: max abs err {err:.3e}, per-position median {med:.3f}")
    assert err < QUANT_BOUND or within_llama_spread(per_pos, moe, qtype, "seq64")
    assert med < QUANT_MEDIAN_BOUND


def test_auto_repacks_only_what_memory_holds_and_on_refuses(oracle_dir, monkeypatch):
    """packed_bytes_needed is what a session then copies; auto leaves the weights as stored (saying why)
    when the copies would take more than 3/4 of the available memory, and repack="on" refuses in one
    line when they would leave less than 1 GiB, instead of running out of memory (a 35B-A3B Q4_K_M on a
    24 GB machine needs 19.4 GiB)."""
    from harness.engine import session as session_module
    isa = next((i for i in ("avx512", "avx2") if i in RUNNABLE), None)
    if isa is None:
        pytest.skip("no SIMD ISA with repacked products on this CPU")
    for name in ("tiny-q4_k_m", "tinymoe-q4_k_m"):
        with load_model(oracle_dir / f"{name}.gguf") as m, Session(m, isa=isa, repack="on") as s:
            assert session_module.packed_bytes_needed(session_module.NativeModel(m), isa) == s.packed_bytes > 0
    GiB = 2 ** 30
    with load_model(oracle_dir / "tinymoe-q4_k_m.gguf") as m:
        need = session_module.packed_bytes_needed(session_module.NativeModel(m), isa)
        # the rule on the numbers of a big file: 4 GiB of copies, 5 GiB available (the copies are this file's)
        monkeypatch.setattr(session_module, "packed_bytes_needed", lambda model, isa: 4 * GiB)
        monkeypatch.setattr(session_module, "available_memory", lambda: int(4 * GiB / 0.75) + 1)
        with Session(m, isa=isa) as s:
            assert s.repack and s.packed_bytes == need and s.repack_note == ""
        monkeypatch.setattr(session_module, "available_memory", lambda: 5 * GiB)
        with Session(m, isa=isa) as s:
            assert (s.repack, s.packed_bytes) == (False, 0)
            assert "more than 75% of the 5.0 GiB" in s.repack_note and "run as stored" in s.repack_note
        with Session(m, isa=isa, repack="on") as s:          # asked for: it fits with 1 GiB left
            assert s.packed_bytes == need
        monkeypatch.setattr(session_module, "available_memory", lambda: 5 * GiB - 1)
        with pytest.raises(UsageError, match=r"repacking these weights takes 4.0 GiB.*less than 1 GiB.*--repack off"):
            Session(m, isa=isa, repack="on")
        monkeypatch.setattr(session_module, "available_memory", lambda: None)   # no /proc/meminfo: no check
        with Session(m, isa=isa, repack="on") as s:
            assert s.packed_bytes == need

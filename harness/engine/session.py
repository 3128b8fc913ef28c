"""The native engine: a Session runs the C forward pass over a Model's weights,
borrowed zero-copy from the memory-mapped GGUF.

    with Session(model, isa="auto", threads=2, ubatch=512, fdn_threshold=0, ctx=4096, type_k="f16") as s:
        logits = s.prefill(tokens)          # [n, V]; all_logits=False gives [V]
        nxt = s.decode(int(logits[-1].argmax()))
"""
from __future__ import annotations

import numpy as np

from harness import native
from harness.settings import DEFAULT_FDN_THRESHOLD
from harness.errors import ModelFileError, RepackMemoryError, UnsupportedModelError, UsageError
from harness.ggml_types import CACHE_TYPES, NATIVE_TYPES, GGMLType
from harness.model.loader import Model
from harness.native import ffi, lib
from harness.engine.vocab import bind, parse_strategy

DN_ALGOS = {"auto": 0, "recurrent": 1, "fused": 2, "chunked": 3}


def cache_value_bytes(name: str) -> float:
    """Bytes a KV cache of that type spends per value (Q8_0: 34 bytes per block of 32)."""
    t = CACHE_TYPES[name]
    return lib.q35_type_block_bytes(int(t)) / lib.q35_type_block_elems(int(t))


def check_cache_type(which: str, name, head_dim: int | None = None) -> None:
    """A KV cache type name the engine holds (and, given head_dim, one whose block fits a head)."""
    if name not in CACHE_TYPES:
        raise UsageError(f"cache type {which} {name!r} is not supported (choose from {', '.join(CACHE_TYPES)})")
    if head_dim is not None and not lib.q35_kv_type_ok(int(CACHE_TYPES[name]), head_dim):
        raise UsageError(f"cache type {which} {name}: head_dim {head_dim} is not a multiple of its block")

# GGUF tensor name (per layer: without the "blk.N." prefix) -> engine slot
GLOBAL_SLOTS = {"token_embd.weight": lib.Q35_W_TOKEN_EMBD, "output_norm.weight": lib.Q35_W_OUTPUT_NORM,
                "output.weight": lib.Q35_W_OUTPUT}
LAYER_SLOTS = {
    "attn_norm.weight": lib.Q35_W_ATTN_NORM, "post_attention_norm.weight": lib.Q35_W_POST_NORM,
    "ffn_gate.weight": lib.Q35_W_FFN_GATE, "ffn_up.weight": lib.Q35_W_FFN_UP, "ffn_down.weight": lib.Q35_W_FFN_DOWN,
    "attn_q_norm.weight": lib.Q35_W_ATTN_Q_NORM, "attn_k_norm.weight": lib.Q35_W_ATTN_K_NORM,
    "attn_output.weight": lib.Q35_W_ATTN_OUTPUT, "ssm_conv1d.weight": lib.Q35_W_SSM_CONV,
    "ssm_dt.bias": lib.Q35_W_SSM_DT, "ssm_a": lib.Q35_W_SSM_A, "ssm_beta.weight": lib.Q35_W_SSM_BETA,
    "ssm_alpha.weight": lib.Q35_W_SSM_ALPHA, "ssm_norm.weight": lib.Q35_W_SSM_NORM,
    "ssm_out.weight": lib.Q35_W_SSM_OUT, "attn_gate.weight": lib.Q35_W_SSM_GATE,
    # MoE: expert stacks [NE, R, in] go in as 2-D [NE * R, in]
    "ffn_gate_inp.weight": lib.Q35_W_FFN_GATE_INP, "ffn_gate_exps.weight": lib.Q35_W_FFN_GATE_EXPS,
    "ffn_up_exps.weight": lib.Q35_W_FFN_UP_EXPS, "ffn_gate_up_exps.weight": lib.Q35_W_FFN_GATE_UP_EXPS,
    "ffn_down_exps.weight": lib.Q35_W_FFN_DOWN_EXPS, "ffn_gate_inp_shexp.weight": lib.Q35_W_FFN_GATE_INP_SHEXP,
    "ffn_gate_shexp.weight": lib.Q35_W_FFN_GATE_SHEXP, "ffn_up_shexp.weight": lib.Q35_W_FFN_UP_SHEXP,
    "ffn_down_shexp.weight": lib.Q35_W_FFN_DOWN_SHEXP,
}
ATTN_SLOTS = {"attn_q.weight": lib.Q35_W_ATTN_Q, "attn_k.weight": lib.Q35_W_ATTN_K,
              "attn_v.weight": lib.Q35_W_ATTN_V, "attn_qkv.weight": lib.Q35_W_ATTN_QKV}
OP_NAMES = [ffi.string(lib.q35_op_name(i)).decode() for i in range(lib.Q35_OP_COUNT)]


def tensor_slot(config, name: str) -> tuple[int, int]:
    """(layer, engine slot) of a GGUF tensor name; layer -1 for the global ones."""
    if name in GLOBAL_SLOTS:
        return -1, GLOBAL_SLOTS[name]
    _, i, rest = name.split(".", 2)
    layer = int(i)
    if config.recurrent[layer] and rest == "attn_qkv.weight":
        return layer, lib.Q35_W_SSM_QKV
    return layer, LAYER_SLOTS.get(rest, ATTN_SLOTS.get(rest))


INT32_MAX = 2**31 - 1
# config field -> (metadata key it comes from, smallest and largest value q35_model_new accepts)
ENGINE_LIMITS = {
    "n_embd": ("embedding_length", 1, INT32_MAX),
    "n_head": ("attention.head_count", 1, INT32_MAX), "n_head_kv": ("attention.head_count_kv", 1, INT32_MAX),
    "head_dim": ("attention.key_length", 2, INT32_MAX), "rope_dims": ("rope.dimension_count", 0, INT32_MAX),
    "conv_kernel": ("ssm.conv_kernel", 1, 16), "ssm_state": ("ssm.state_size", 1, 512),
    "ssm_k_heads": ("ssm.group_count", 1, INT32_MAX), "ssm_v_heads": ("ssm.time_step_rank", 1, INT32_MAX),
    "vocab_size": ("vocab_size", 1, INT32_MAX), "n_ff": ("feed_forward_length", 1, INT32_MAX),
    "n_expert": ("expert_count", 0, lib.Q35_MAX_EXPERTS), "n_expert_used": ("expert_used_count", 0, INT32_MAX),
    "n_ff_expert": ("expert_feed_forward_length", 0, INT32_MAX),
    "n_ff_shared": ("expert_shared_feed_forward_length", 0, INT32_MAX),
}
# with experts: the dense FFN width may be 0, the expert fields must be set
MOE_LIMITS = {"n_ff": ("feed_forward_length", 0, INT32_MAX), "n_ff_expert": ("expert_feed_forward_length", 1, INT32_MAX),
              "n_ff_shared": ("expert_shared_feed_forward_length", 1, INT32_MAX)}


def check_engine_limits(model: Model) -> None:
    """The ranges the C engine accepts, checked here so that the error names the value."""
    c = model.config
    if c.n_layer > lib.Q35_MAX_LAYERS:
        raise UsageError(f"{c.n_layer} layers: the engine supports at most {lib.Q35_MAX_LAYERS}")
    limits = dict(ENGINE_LIMITS)
    if c.n_expert:
        limits.update(MOE_LIMITS, n_expert_used=("expert_used_count", 1, c.n_expert))
    for field, (key, lo, hi) in limits.items():
        v = getattr(c, field)
        if not lo <= v <= hi:
            raise UnsupportedModelError(f"{model.path}: {c.arch}.{key} = {v}: the engine runs {lo}..{hi}")
    for field, key in (("rms_eps", "attention.layer_norm_rms_epsilon"), ("rope_theta", "rope.freq_base")):
        v32 = np.float32(getattr(c, field))
        if not (np.isfinite(v32) and v32 > 0):
            raise UnsupportedModelError(f"{model.path}: {c.arch}.{key} = {getattr(c, field)!r} is not a "
                                        "positive single-precision number")


BLOCKS = ("trunk", "mtp")


def mtp_bindings(model: Model) -> list[tuple[str, int, int]]:
    """(tensor, layer, slot) of the file's MTP block run as a one-layer model (llama.cpp's
    graph_mtp): the block's attention layer and FFN as layer 0; its input projection and norms
    in the NEXTN slots; the embedding, final norm and LM head are the block's own where the file
    has them (nextn.embed_tokens, shared_head_norm, shared_head_head), else the trunk's.
    ModelFileError naming what is missing."""
    c = model.config
    if not c.n_mtp:
        raise ModelFileError(f"{model.path}: the file has no MTP block ({c.arch}.nextn_predict_layers is 0 or "
                             "absent; llama.cpp's converter keeps it unless --no-mtp)")
    if c.n_expert:
        raise UnsupportedModelError(f"{model.path}: MTP drafting runs dense Qwen3.5 files; the MoE MTP block "
                                    "is not supported yet")
    tensors = model.gguf.tensors
    p = f"blk.{c.n_layer}."

    def first(*names: str) -> str | None:
        return next((n for n in names if n in tensors), None)

    out = [(first(p + "nextn.embed_tokens.weight", "token_embd.weight"), -1, lib.Q35_W_TOKEN_EMBD),
           (first(p + "nextn.shared_head_norm.weight", "output_norm.weight"), -1, lib.Q35_W_OUTPUT_NORM),
           (first(p + "nextn.shared_head_head.weight", "output.weight", "token_embd.weight"), -1, lib.Q35_W_OUTPUT),
           (p + "nextn.eh_proj.weight", -1, lib.Q35_W_NEXTN_EH_PROJ),
           (p + "nextn.enorm.weight", -1, lib.Q35_W_NEXTN_ENORM),
           (p + "nextn.hnorm.weight", -1, lib.Q35_W_NEXTN_HNORM)]
    qkv = ["attn_qkv.weight"] if p + "attn_qkv.weight" in tensors else ["attn_q.weight", "attn_k.weight", "attn_v.weight"]
    for rest in ["attn_norm.weight", "post_attention_norm.weight", *qkv, "attn_q_norm.weight", "attn_k_norm.weight",
                 "attn_output.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"]:
        out.append((p + rest, 0, LAYER_SLOTS.get(rest, ATTN_SLOTS.get(rest))))
    for name, _, _ in out:
        if name is None or name not in tensors:
            raise ModelFileError(f"{model.path}: MTP block: missing tensor {name!r}")
    return out


class NativeModel:
    """The C view of a Model: config plus pointers into the memory map. block: the trunk, or the
    file's MTP block as a one-layer full-attention model (mtp_bindings)."""

    def __init__(self, model: Model, block: str = "trunk"):
        c = model.config
        check_engine_limits(model)
        cfg = ffi.new("q35_config *")
        for f in ("n_layer", "n_embd", "n_ff", "n_head", "n_head_kv", "head_dim", "rope_dims",
                  "rope_theta", "rms_eps", "conv_kernel", "ssm_state", "ssm_k_heads", "ssm_v_heads",
                  "vocab_size", "n_expert", "n_expert_used", "n_ff_expert", "n_ff_shared"):
            setattr(cfg, f, getattr(c, f))
        if block == "mtp":
            bindings = mtp_bindings(model)
            cfg.n_layer, cfg.recurrent[0] = 1, 0
        else:
            bindings = [(s.name, *tensor_slot(c, s.name)) for s in model.specs]
            for i, r in enumerate(c.recurrent):
                cfg.recurrent[i] = int(r)
        ptr = lib.q35_model_new(cfg)
        if ptr == ffi.NULL:
            raise UsageError(f"{model.path}: the engine cannot run this configuration")
        self.ptr = ffi.gc(ptr, lib.q35_model_free)
        self.model = model
        self._buffers = []  # keep the cffi views (and so the map, and any F32 copies) alive
        self.as_f32: dict[str, str] = {}   # tensors of types without C kernels, run as F32: name -> type
        self._copies = []                  # their F32 buffers
        self.bindings = bindings
        for name, layer, slot in bindings:
            self._set(name, layer, slot)
        if lib.q35_model_check(self.ptr) != 0:
            what = "the MTP block's tensors do not" if block == "mtp" else "tensor table does not"
            raise ModelFileError(f"{model.path}: {what} fit the engine")

    def _set(self, name: str, layer: int, slot: int) -> None:
        info = self.model.info(name)
        data, type_id = self.model.raw(name), int(info.type)
        if GGMLType(info.type) not in NATIVE_TYPES:
            # no C kernels for this type yet: the exact values, dequantized once, as F32 rows
            data = np.ascontiguousarray(self.model.dequantized(name), dtype=np.float32).view(np.uint8)
            type_id = int(GGMLType.F32)
            self.as_f32[name] = GGMLType(info.type).name
        buf = ffi.from_buffer("uint8_t[]", data.reshape(-1))
        if name in self.as_f32:
            self._copies.append((buf, data))   # F32 copies live outside the map
        else:
            self._buffers.append(buf)
        rows, cols = int(np.prod(info.shape[:-1])), info.shape[-1]   # 1-D: one row; 3-D: stacked rows
        t = ffi.new("q35_tensor *", {"data": buf, "type": type_id, "rows": rows, "cols": cols})
        if lib.q35_model_set(self.ptr, layer, slot, t[0]) != 0:
            raise ModelFileError(f"{self.model.path}: tensor {name!r} has no engine slot")


MAX_THREADS = 1024          # the C engine's limit (q35_session_new)
THREADS_PER_CPU = 4         # beyond this many threads per available CPU a pool only measures the scheduler
MIN_THREAD_CAP = 64         # ... but a few dozen are always allowed (oversubscription experiments)


def thread_limit(cpus: int | None = None) -> int:
    """The most threads a session may have: 4 per CPU available to this process, at least 64 and at
    most the engine's 1024 (more threads than CPUs run, but slower: every barrier waits for all)."""
    cpus = native.default_threads() if cpus is None else cpus
    return min(MAX_THREADS, max(MIN_THREAD_CAP, THREADS_PER_CPU * cpus))


def check_threads(threads) -> None:
    _check_int("threads", threads, 1, MAX_THREADS)
    cpus = native.default_threads()
    cap = thread_limit(cpus)
    if threads > cap:
        raise UsageError(f"threads must be at most {cap} on this machine, got {threads}: {cpus} CPU(s) available, "
                         f"and more than {THREADS_PER_CPU} threads per CPU (at least {MIN_THREAD_CAP}) only "
                         f"measure the scheduler")


def _check_int(name: str, value, minimum: int, maximum: int = INT32_MAX) -> None:
    if not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value > maximum:
        raise UsageError(f"{name} must be at most {maximum}, got {value}")


REPACK_MODES = ("auto", "on", "off")
REPACK_AUTO_ISAS = ("avx2", "avx512")  # where the repacked products are SIMD kernels that win


REPACK_MEMORY_SHARE = 0.75        # auto repacks only while the copies take at most this share of the available memory
REPACK_MEMORY_HEADROOM = 2 ** 30  # repack="on" leaves at least this much of it


def repack_enabled(mode: str, isa: str) -> bool:
    """Whether a session repacks: "on" and "off" say so; "auto" repacks on the ISAs whose repacked
    products are SIMD kernels and were timed (on the scalar reference the stored layout is faster; NEON's
    products are checked under qemu but not timed, so NEON keeps the stored layout unless asked). Only
    the types the ISA has a repacked product for are repacked (q35_kernels.gemm_packed)."""
    return mode == "on" or (mode == "auto" and isa in REPACK_AUTO_ISAS)


def packed_bytes_needed(nm: NativeModel, isa: str) -> int:
    """Bytes of the repacked copies a session on this ISA would make of the model (the engine's rule,
    q35_model_packed_bytes)."""
    return int(lib.q35_model_packed_bytes(nm.ptr, native.ISAS[isa]))


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (the kernel's estimate of what can be allocated without
    swapping, page cache included), or None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Session:
    """One sequence on the native engine: prefill, decode, reset, state save/restore, profile."""

    def __init__(self, model: Model, isa: str = "auto", threads: int = 1, ubatch: int = 512,
                 fdn_threshold: int = DEFAULT_FDN_THRESHOLD, ctx: int = 4096, dn_algo: str = "auto", profile: bool = False,
                 vocab_strategy="full", type_k: str = "f32", type_v: str = "f32", block: str = "trunk",
                 repack: str = "auto", fuse_swiglu: bool = True):
        # fuse_swiglu=False runs the FFN's SwiGLU as its own pass even where it could be folded into the
        # repacked gate/up product (the same bits either way: for A/B measurements and tests)
        if model.closed:
            raise ModelFileError(f"{model.path}: model is closed")
        check_threads(threads)
        _check_int("ubatch", ubatch, 1)
        _check_int("fdn threshold", fdn_threshold, 0)
        _check_int("ctx", ctx, 1)
        if dn_algo not in DN_ALGOS:
            raise UsageError(f"unknown delta-net algorithm {dn_algo!r} (choose from {', '.join(DN_ALGOS)})")
        if repack not in REPACK_MODES:
            raise UsageError(f"unknown repack mode {repack!r} (choose from {', '.join(REPACK_MODES)})")
        check_cache_type("k", type_k, model.config.head_dim)
        check_cache_type("v", type_v, model.config.head_dim)
        self.type_k, self.type_v = type_k, type_v
        self.vocab_strategy = parse_strategy(vocab_strategy)
        self.model = model
        self.isa = native.resolve_isa(isa)
        self.threads, self.ubatch, self.fdn_threshold, self.ctx = threads, ubatch, fdn_threshold, ctx
        self.dn_algo = dn_algo
        self.repack = repack_enabled(repack, self.isa)
        self.vocab = model.config.vocab_size
        if block not in BLOCKS:
            raise UsageError(f"unknown block {block!r} (choose from {', '.join(BLOCKS)})")
        self.block = block
        self._nm = NativeModel(model, block)
        self.repack_note = ""      # why auto did not repack, when memory decided it
        if self.repack:   # auto keeps a margin; on, asked for, may take all but REPACK_MEMORY_HEADROOM
            need, avail = packed_bytes_needed(self._nm, self.isa), available_memory()
            if avail is not None and repack == "on" and need > avail - REPACK_MEMORY_HEADROOM:
                raise RepackMemoryError(f"repacking these weights takes {need / 2**30:.1f} GiB of the "
                                 f"{avail / 2**30:.1f} GiB available, which leaves less than 1 GiB: run with "
                                 f"repack off (--repack off)")
            if avail is not None and repack == "auto" and need > REPACK_MEMORY_SHARE * avail:
                self.repack = False
                self.repack_note = (f"repacking these weights takes {need / 2**30:.1f} GiB, more than "
                                    f"{REPACK_MEMORY_SHARE:.0%} of the {avail / 2**30:.1f} GiB available: the "
                                    f"weights run as stored (--repack on takes all but 1 GiB)")
        p = ffi.new("q35_session_params *", {
            "isa": native.ISAS[self.isa], "n_threads": threads, "ubatch": ubatch,
            "fdn_threshold": fdn_threshold, "dn_algo": DN_ALGOS[dn_algo], "n_ctx": ctx,
            "profile": int(profile), "type_k": int(CACHE_TYPES[type_k]), "type_v": int(CACHE_TYPES[type_v]),
            "repack": int(self.repack), "unfused_swiglu": int(not fuse_swiglu)})
        ptr = lib.q35_session_new(self._nm.ptr, p)
        if ptr == ffi.NULL:
            raise UsageError(f"cannot create a session (isa {self.isa}, {threads} threads, ubatch {ubatch}, "
                             f"ctx {ctx}): out of memory?")
        self._ptr = ptr
        if self.repack:  # the repacked copies replace the mapped bytes: leave them to the page cache
            for name, layer, slot in self._nm.bindings:
                if name not in self._nm.as_f32 and lib.q35_session_is_packed(ptr, layer, slot):
                    model.gguf.release_pages(name)
        self._scratch = None  # logits rows behind prefill_top1 for strategies that need them
        try:
            self._vocab_keep = bind(ptr, model, self.vocab_strategy, threads)
        except BaseException:
            self.close()
            raise

    @property
    def packed_bytes(self) -> int:
        """Bytes of this session's repacked weight copies (0 when nothing was repacked)."""
        self._check_open()
        return int(lib.q35_session_packed_bytes(self._ptr))

    # -- running ---------------------------------------------------------------
    def _check_open(self) -> None:
        if self._ptr is None:
            raise UsageError("session is closed")
        if self.model.closed:
            raise ModelFileError(f"{self.model.path}: model is closed; this session can no longer run")

    def _checked_tokens(self, tokens) -> np.ndarray:
        toks = np.ascontiguousarray(np.asarray(tokens).reshape(-1), dtype=np.int64)
        if toks.size == 0:
            raise UsageError("no tokens given")
        bad = toks[(toks < 0) | (toks >= self.vocab)]
        if bad.size:
            raise UsageError(f"token id {int(bad[0])} is outside the vocabulary [0, {self.vocab})")
        if self.n_past + toks.size > self.ctx:
            raise UsageError(f"context overflow: {self.n_past} tokens in the context + {toks.size} new "
                             f"> ctx {self.ctx}")
        return toks.astype(np.int32)

    def prefill(self, tokens, all_logits: bool = True) -> np.ndarray:
        """Run tokens from the current position; logits [n, V] (all) or [V] (last only)."""
        self._check_open()
        toks32 = self._checked_tokens(tokens)
        out = np.empty((toks32.size if all_logits else 1, self.vocab), dtype=np.float32)
        rc = lib.q35_session_forward(self._ptr, ffi.from_buffer("int32_t[]", toks32),
                                     toks32.size, ffi.from_buffer("float[]", out, require_writable=True),
                                     int(all_logits))
        if rc != 0:  # Python checked both conditions: this is a bug
            raise RuntimeError(f"q35_session_forward returned {rc}")
        return out if all_logits else out[0]

    def forward_hidden(self, tokens, h_in: np.ndarray | None = None,
                       logits: str = "last") -> tuple[np.ndarray | None, np.ndarray]:
        """Run tokens and return (logits, hidden): logits "none" (None), "last" ([V]) or "all"
        ([n, V]); hidden [n, E], every token's final-norm row (llama.cpp's h_nextn). An MTP
        session (block="mtp") takes h_in [n, E], the rows its tokens are paired with."""
        self._check_open()
        toks32 = self._checked_tokens(tokens)
        n, E = toks32.size, self.model.config.n_embd
        if (h_in is None) != (self.block == "trunk"):
            raise UsageError("h_in goes with an MTP session (block='mtp'), and only there")
        hin = ffi.NULL
        if h_in is not None:
            h_in = np.ascontiguousarray(h_in, dtype=np.float32)
            if h_in.shape != (n, E):
                raise UsageError(f"h_in has shape {list(h_in.shape)}, expected [{n}, {E}]")
            hin = ffi.from_buffer("float[]", h_in)
        mode = {"none": lib.Q35_LOGITS_NONE, "last": lib.Q35_LOGITS_LAST, "all": lib.Q35_LOGITS_ALL}[logits]
        out = None if logits == "none" else np.empty((n if logits == "all" else 1, self.vocab), dtype=np.float32)
        hidden = np.empty((n, E), dtype=np.float32)
        rc = lib.q35_session_forward_h(self._ptr, ffi.from_buffer("int32_t[]", toks32), n, hin,
                                       ffi.NULL if out is None else ffi.from_buffer("float[]", out, require_writable=True),
                                       mode, ffi.from_buffer("float[]", hidden, require_writable=True))
        if rc != 0:  # Python checked every condition: this is a bug
            raise RuntimeError(f"q35_session_forward_h returned {rc}")
        return (out if logits != "last" or out is None else out[0]), hidden

    def truncate(self, n_past: int) -> None:
        """Forget positions n_past.. (an MTP session's drafted positions). The trunk has recurrent
        layers and cannot be rewound: restore a snapshot (save_state) instead."""
        self._check_open()
        if lib.q35_session_truncate(self._ptr, int(n_past)) != 0:
            raise UsageError(f"cannot truncate to {n_past}: {self.n_past} positions held"
                             + ("; a model with recurrent layers is rewound by restore_state" if self.block == "trunk" else ""))

    def decode(self, token: int) -> np.ndarray:
        """One token; logits [V]."""
        return self.prefill([token], all_logits=False)

    def prefill_top1(self, tokens, all_positions: bool = True) -> np.ndarray:
        """Like prefill, but only the greedy id of each position (int32 [n], or [1] for the last):
        under the argmax strategy no logits vector is made at all."""
        self._check_open()
        toks32 = self._checked_tokens(tokens)
        ids = np.empty(toks32.size if all_positions else 1, dtype=np.int32)
        out = ffi.NULL
        if self.vocab_strategy.kind != "argmax":
            if self._scratch is None or self._scratch.shape[0] < ids.size:
                self._scratch = np.empty((ids.size, self.vocab), dtype=np.float32)
            out = ffi.from_buffer("float[]", self._scratch, require_writable=True)
        rc = lib.q35_session_forward_top1(self._ptr, ffi.from_buffer("int32_t[]", toks32), toks32.size, out,
                                          ffi.from_buffer("int32_t[]", ids, require_writable=True),
                                          int(all_positions))
        if rc != 0:
            raise RuntimeError(f"q35_session_forward_top1 returned {rc}")
        return ids

    def decode_top1(self, token: int) -> int:
        """One token; the greedy next id."""
        return int(self.prefill_top1([token], all_positions=False)[0])

    def vocab_stats(self) -> dict:
        """Screened strategy, since the last profile reset: logits rows and candidate rows computed
        exactly (the rest of the vocabulary was ruled out by the screening bound)."""
        self._check_open()
        rows, cand = ffi.new("int64_t *"), ffi.new("int64_t *")
        lib.q35_session_vocab_stats(self._ptr, rows, cand)
        return {"rows": int(rows[0]), "candidates": int(cand[0]),
                "candidates_per_row": cand[0] / rows[0] if rows[0] else float("nan")}

    def reset(self) -> None:
        self._check_open()
        lib.q35_session_reset(self._ptr)

    @property
    def n_past(self) -> int:
        self._check_open()
        return int(lib.q35_session_n_past(self._ptr))

    # -- state -------------------------------------------------------------------
    def save_state(self) -> bytes:
        """A snapshot of the sequence state (conv windows, delta-net states, KV cache)."""
        self._check_open()
        n = lib.q35_session_state_size(self._ptr)
        buf = bytearray(n)
        written = lib.q35_session_state_save(self._ptr, ffi.from_buffer(buf), n)
        assert written == n
        return bytes(buf)

    def checkpoint(self) -> bytes:
        """The recurrent state and position only (no KV rows): rewind() brings this sequence back
        to it after it has run further forward (speculative decoding's rejected drafts)."""
        self._check_open()
        n = lib.q35_session_checkpoint_size(self._ptr)
        buf = bytearray(n)
        assert lib.q35_session_checkpoint_save(self._ptr, ffi.from_buffer(buf), n) == n
        return bytes(buf)

    def rewind(self, checkpoint: bytes) -> None:
        self._check_open()
        if lib.q35_session_checkpoint_load(self._ptr, ffi.from_buffer(checkpoint), len(checkpoint)) != 0:
            raise UsageError("checkpoint does not fit this session, or lies ahead of its position")

    def restore_state(self, state: bytes) -> None:
        self._check_open()
        if lib.q35_session_state_load(self._ptr, ffi.from_buffer(state), len(state)) != 0:
            raise UsageError("state snapshot does not fit this session (other model, ctx or cache types)")

    # -- profile -----------------------------------------------------------------
    def profile(self):
        """Per (layer, op): calls, ns, weight bytes read and the multiply-adds of the weight products
        (rows x columns x tokens; 0 for the other ops), as a pandas DataFrame. Layer 'head' holds the
        embedding, the final norm and the LM head."""
        import pandas as pd
        self._check_open()
        L = self.model.config.n_layer
        recs = ffi.new("q35_op_stats[]", (L + 1) * lib.Q35_OP_COUNT)
        lib.q35_session_profile(self._ptr, recs)
        rows = []
        for layer in range(L + 1):
            for op in range(lib.Q35_OP_COUNT):
                r = recs[layer * lib.Q35_OP_COUNT + op]
                if r.calls:
                    rows.append({"layer": "head" if layer == L else layer,
                                 "kind": "head" if layer == L else self.model.config.layer_kind(layer),
                                 "op": OP_NAMES[op], "calls": r.calls, "ns": r.ns, "bytes": r.bytes,
                                 "macs": r.macs})
        return pd.DataFrame(rows, columns=["layer", "kind", "op", "calls", "ns", "bytes", "macs"])

    def reset_profile(self) -> None:
        self._check_open()
        lib.q35_session_profile_reset(self._ptr)

    # -- lifetime ------------------------------------------------------------------
    def close(self) -> None:
        if self._ptr is not None:
            lib.q35_session_free(self._ptr)
            self._ptr = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

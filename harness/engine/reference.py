"""The float64 numpy reference forward pass of Qwen3.5 (docs/qwen35.md §2).

The oracle for everything after it: straightforward math on dequantized
weights, with the delta-net recurrence computed token by token (no chunking),
so the engine's fused and chunked paths can be checked against it. State
(conv window, delta-net state, KV cache) is carried between calls, so a
sequence can be run in one prefill or token by token with the same result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from gguf import GGMLQuantizationType
from gguf import quants as gguf_quants

from harness.model.config import ModelConfig
from harness.errors import UsageError
from harness.ggml_types import CACHE_TYPES
from harness.model.loader import Model


# ----------------------------------------------------------------------------
# elementwise pieces

def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """x * w / sqrt(mean(x^2) + eps) over the last axis (GGUF norm weights include the +1)."""
    return x * w / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def l2_norm(x: np.ndarray, eps: float) -> np.ndarray:
    """x / sqrt(sum(x^2) + eps) over the last axis (docs/qwen35.md §2.4.5; not an RMS norm)."""
    return x / np.sqrt(np.sum(x * x, axis=-1, keepdims=True) + eps)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def silu(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def rope_neox(x: np.ndarray, pos: np.ndarray, n_rot: int, theta: float) -> np.ndarray:
    """Rotate the first n_rot dims of every head, NeoX pairing (i, i + n_rot/2).

    x: [T, heads, D]; pos: [T]. Angle for pair i at position p: p * theta^(-2i/n_rot)."""
    half = n_rot // 2
    inv_freq = theta ** (-2.0 * np.arange(half) / n_rot)
    ang = pos[:, None].astype(np.float64) * inv_freq[None, :]          # [T, half]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., :half], x[..., half:n_rot]
    out = x.copy()
    out[..., :half] = a * cos - b * sin
    out[..., half:n_rot] = a * sin + b * cos
    return out


def swiglu(x: np.ndarray, gate: np.ndarray, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """down (silu(gate x) * up x) for rows x [T, E]; weights in numpy (out, in) layout."""
    return (silu(x @ gate.T) * (x @ up.T)) @ down.T


# llama.cpp's guard against a zero sum when renormalizing the selected weights
MOE_MIN_WEIGHT_SUM = 6.103515625e-5


def moe_route(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Router of docs/qwen35.md §2.6 for logits [T, NE]: softmax over all experts, the k most
    probable, their probabilities renormalized to sum 1. Ties go to the lowest expert
    id (the engine does the same). Returns ids [T, k] (most probable first) and
    weights [T, k]."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    ids = np.argsort(-p, axis=-1, kind="stable")[:, :k]       # stable: equal p keep id order
    w = np.take_along_axis(p, ids, axis=-1)
    w /= np.maximum(w.sum(axis=-1, keepdims=True), MOE_MIN_WEIGHT_SUM)
    return ids, w


def moe_ffn(f: np.ndarray, router: np.ndarray, gate_exps: np.ndarray, up_exps: np.ndarray,
            down_exps: np.ndarray, k: int, shared_gate_inp: np.ndarray, shared_gate: np.ndarray,
            shared_up: np.ndarray, shared_down: np.ndarray) -> np.ndarray:
    """The MoE FFN of docs/qwen35.md §2.6 for normed rows f [T, E]:
    sum over the k routed experts of w_e SwiGLU_e(f), plus SwiGLU_shared(f) * sigmoid(g . f).
    Expert weights are stacked [NE, out, in]; router [NE, E]; shared_gate_inp [E]."""
    ids, w = moe_route(f @ router.T, k)
    out = np.zeros_like(f)
    for e in np.unique(ids):
        rows, slot = np.nonzero(ids == e)                     # the tokens routed to expert e
        y = swiglu(f[rows], gate_exps[e], up_exps[e], down_exps[e])
        out[rows] += w[rows, slot][:, None] * y
    sh = swiglu(f, shared_gate, shared_up, shared_down)
    return out + sh * sigmoid(f @ shared_gate_inp.reshape(-1))[:, None]


# ----------------------------------------------------------------------------
# per-sequence state

@dataclass
class DeltaNetState:
    conv: np.ndarray      # [Kc-1, CD]: last raw (pre-conv) qkv rows, oldest first
    S: np.ndarray         # [Hv, Sk, Sv]: per value head, S[i, j] (key i, value j)


@dataclass
class AttentionState:
    k: list = field(default_factory=list)   # per position: [Hkv, D] (rotated)
    v: list = field(default_factory=list)   # per position: [Hkv, D]


@dataclass
class SequenceState:
    layers: list
    n_past: int = 0


def new_state(c: ModelConfig) -> SequenceState:
    layers = []
    for i in range(c.n_layer):
        if c.recurrent[i]:
            layers.append(DeltaNetState(
                conv=np.zeros((c.conv_kernel - 1, c.conv_channels)),
                S=np.zeros((c.ssm_v_heads, c.ssm_state, c.ssm_v_dim))))
        else:
            layers.append(AttentionState())
    return SequenceState(layers)


# ----------------------------------------------------------------------------
# layers

def gated_delta_rule(q, k, v, g, beta, S):
    """The recurrence of docs/qwen35.md §2.4.7 for one value head, token by token.

    q, k: [T, Sk] (L2-normed); v: [T, Sv]; g, beta: [T]; S: [Sk, Sv] (updated in place).
    Returns o: [T, Sv]."""
    scale = 1.0 / np.sqrt(q.shape[-1])
    o = np.empty_like(v)
    for t in range(len(v)):
        S *= np.exp(g[t])                     # decay first
        kv_mem = S.T @ k[t]                   # S^T k
        delta = beta[t] * (v[t] - kv_mem)
        S += np.outer(k[t], delta)            # S += k (x) delta
        o[t] = scale * (S.T @ q[t])           # read-out with the updated state
    return o


def q8_0_activation_rounded(x32: np.ndarray) -> np.ndarray:
    """float32 rows (length a multiple of 32) through Q8_0 as ggml-cpu's x86 converter writes them (a KV
    cache row, an activation): per 32 values d = max|x| / 127 stored as f16, q = x * (127 / max|x|) rounded
    half to even; back as q * d. (gguf's quantizer, like llama-quantize's for weights, rounds x / d half
    away from zero instead.)"""
    b = x32.reshape(-1, 32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.where(amax != 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.rint(b * inv)
    d = (amax / np.float32(127)).astype(np.float16).astype(np.float32)
    return (q.astype(np.float32) * d).reshape(x32.shape)


def cache_rounded(x: np.ndarray, cache_type: str) -> np.ndarray:
    """Rows as a KV cache of that type holds them ("f32", "f16", "bf16", "q8_0"; blocks run along the last
    axis), back in float64: the float types rounded by the gguf package's converters, q8_0 as ggml-cpu
    writes a cache row (q8_0_activation_rounded)."""
    if cache_type == "f64":
        return x
    if cache_type not in CACHE_TYPES:
        raise UsageError(f"cache type {cache_type!r} is not supported (f64, {', '.join(CACHE_TYPES)})")
    t = GGMLQuantizationType(int(CACHE_TYPES[cache_type]))
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    if t == GGMLQuantizationType.F32:
        return x32.astype(np.float64)
    if t == GGMLQuantizationType.Q8_0:
        return q8_0_activation_rounded(x32).astype(np.float64)
    return gguf_quants.dequantize(gguf_quants.quantize(x32, t), t).astype(np.float64).reshape(x.shape)


class Reference:
    """float64 forward pass over a Model's dequantized weights. type_k / type_v: the KV cache
    rounding (cache_rounded); "f64" keeps the exact values."""

    def __init__(self, model: Model, type_k: str = "f64", type_v: str = "f64"):
        self.model = model
        self.c = model.config
        self.type_k, self.type_v = type_k, type_v
        self._w: dict[str, np.ndarray] = {}

    def w(self, name: str) -> np.ndarray:
        if name not in self._w:
            self._w[name] = self.model.dequantized(name).astype(np.float64)
        return self._w[name]

    def new_state(self) -> SequenceState:
        return new_state(self.c)

    # -- the network (docs/qwen35.md §2.0) -------------------------------------
    def forward(self, tokens, state: SequenceState | None = None) -> np.ndarray:
        """Logits [T, V] for every position of `tokens`, continuing `state` (a fresh one if
        None). The state is updated in place."""
        return self.forward_hidden(tokens, state)[0]

    def _checked(self, tokens) -> np.ndarray:
        c = self.c
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
        if tokens.size == 0:
            raise UsageError("no tokens given")
        bad = tokens[(tokens < 0) | (tokens >= c.vocab_size)]
        if bad.size:
            raise UsageError(f"token id {int(bad[0])} is outside the vocabulary [0, {c.vocab_size})")
        return tokens

    def _embeddings(self, tokens: np.ndarray) -> np.ndarray:
        emb = self.model.info("token_embd.weight")
        return self.w("token_embd.weight")[tokens] if emb.nbytes <= 64 << 20 else \
            np.stack([self._embedding_row(int(t)) for t in tokens])

    def forward_hidden(self, tokens, state: SequenceState | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(logits [T, V], hidden [T, E]): hidden is the final norm's output, the row llama.cpp
        hands an MTP block (h_nextn)."""
        c = self.c
        tokens = self._checked(tokens)
        state = state if state is not None else self.new_state()
        pos = state.n_past + np.arange(tokens.size)
        h = self._embeddings(tokens)
        for i in range(c.n_layer):
            p = f"blk.{i}."
            a = rms_norm(h, self.w(p + "attn_norm.weight"), c.rms_eps)
            if c.recurrent[i]:
                h = h + self.deltanet(i, a, state.layers[i])
            else:
                h = h + self.attention(i, a, pos, state.layers[i])
            f = rms_norm(h, self.w(p + "post_attention_norm.weight"), c.rms_eps)
            h = h + self.ffn(i, f)
        state.n_past += tokens.size
        y = rms_norm(h, self.w("output_norm.weight"), c.rms_eps)
        return y @ self.w(self.model.lm_head_name()).T, y

    def mtp(self, tokens, h_in: np.ndarray, state: SequenceState) -> tuple[np.ndarray, np.ndarray]:
        """The MTP block (llama.cpp's graph_mtp for qwen35): token t at position p paired with the
        hidden row h that predicted it,
            x = eh_proj . [rmsnorm(embd(t)) * enorm ; rmsnorm(h) * hnorm]
            x = x + attention(rmsnorm(x) * attn_norm)      (a full-attention layer, own KV cache)
            x = x + ffn(rmsnorm(x) * post_attention_norm)
            y = rmsnorm(x) * shared_head_norm,  logits = head . y
        -> (logits [T, V], y [T, E]); state: an SequenceState with one AttentionState layer
        (mtp_state()), updated in place."""
        c = self.c
        p, L = f"blk.{c.n_layer}.", c.n_layer
        tokens = self._checked(tokens)
        names = self.model.gguf.tensors
        x = np.concatenate([rms_norm(self._embeddings(tokens), self.w(p + "nextn.enorm.weight"), c.rms_eps),
                            rms_norm(np.asarray(h_in, dtype=np.float64), self.w(p + "nextn.hnorm.weight"), c.rms_eps)],
                           axis=1) @ self.w(p + "nextn.eh_proj.weight").T
        pos = state.n_past + np.arange(tokens.size)
        x = x + self.attention(L, rms_norm(x, self.w(p + "attn_norm.weight"), c.rms_eps), pos, state.layers[0])
        x = x + self.ffn(L, rms_norm(x, self.w(p + "post_attention_norm.weight"), c.rms_eps))
        state.n_past += tokens.size
        norm = p + "nextn.shared_head_norm.weight" if p + "nextn.shared_head_norm.weight" in names else "output_norm.weight"
        head = p + "nextn.shared_head_head.weight" if p + "nextn.shared_head_head.weight" in names \
            else self.model.lm_head_name()
        y = rms_norm(x, self.w(norm), c.rms_eps)
        return y @ self.w(head).T, y

    @staticmethod
    def mtp_state() -> SequenceState:
        """The MTP block's sequence state: one full-attention layer's KV cache."""
        return SequenceState([AttentionState()])

    def _embedding_row(self, t: int) -> np.ndarray:
        from harness.model.dequant import dequantize
        info = self.model.info("token_embd.weight")
        rb = info.nbytes // info.shape[0]
        return dequantize(self.model.raw("token_embd.weight")[t * rb:(t + 1) * rb], info.type,
                          (info.shape[1],)).astype(np.float64)

    # -- dense SwiGLU FFN (docs/qwen35.md §2.3) --------------------------------
    def ffn(self, i: int, f: np.ndarray) -> np.ndarray:
        p = f"blk.{i}."
        if self.c.is_moe:
            return self.moe(i, f)
        gate = f @ self.w(p + "ffn_gate.weight").T
        up = f @ self.w(p + "ffn_up.weight").T
        return (silu(gate) * up) @ self.w(p + "ffn_down.weight").T

    # -- mixture of experts (docs/qwen35.md §2.6) -------------------------------
    def moe(self, i: int, f: np.ndarray) -> np.ndarray:
        p, Fe = f"blk.{i}.", self.c.n_ff_expert
        if p + "ffn_gate_up_exps.weight" in self.model.gguf.tensors:
            gu = self.w(p + "ffn_gate_up_exps.weight")            # [NE, 2Fe, E]: gate rows, then up
            gate, up = gu[:, :Fe], gu[:, Fe:]
        else:
            gate, up = self.w(p + "ffn_gate_exps.weight"), self.w(p + "ffn_up_exps.weight")
        return moe_ffn(f, self.w(p + "ffn_gate_inp.weight"), gate, up, self.w(p + "ffn_down_exps.weight"),
                       self.c.n_expert_used, self.w(p + "ffn_gate_inp_shexp.weight"),
                       self.w(p + "ffn_gate_shexp.weight"), self.w(p + "ffn_up_shexp.weight"),
                       self.w(p + "ffn_down_shexp.weight"))

    # -- gated full attention (docs/qwen35.md §2.2) ----------------------------
    def attention(self, i: int, x: np.ndarray, pos: np.ndarray, st: AttentionState) -> np.ndarray:
        c, p = self.c, f"blk.{i}."
        T, H, Hkv, D = x.shape[0], c.n_head, c.n_head_kv, c.head_dim
        if p + "attn_q.weight" in self.model.gguf.tensors:
            qg = x @ self.w(p + "attn_q.weight").T
            k = x @ self.w(p + "attn_k.weight").T
            v = x @ self.w(p + "attn_v.weight").T
        else:  # fused [Q+gate | K | V]
            qkv = x @ self.w(p + "attn_qkv.weight").T
            qg, k, v = np.split(qkv, [2 * H * D, 2 * H * D + Hkv * D], axis=1)
        qg = qg.reshape(T, H, 2 * D)                 # per head [q_h, gate_h], interleaved
        q, gate = qg[..., :D], qg[..., D:]
        k, v = k.reshape(T, Hkv, D), v.reshape(T, Hkv, D)
        q = rms_norm(q, self.w(p + "attn_q_norm.weight"), c.rms_eps)
        k = rms_norm(k, self.w(p + "attn_k_norm.weight"), c.rms_eps)
        q = rope_neox(q, pos, c.rope_dims, c.rope_theta)
        k = rope_neox(k, pos, c.rope_dims, c.rope_theta)
        st.k.extend(cache_rounded(k, self.type_k))
        st.v.extend(cache_rounded(v, self.type_v))
        K, V = np.stack(st.k), np.stack(st.v)       # [n_past + T, Hkv, D]
        n_kv = K.shape[0]
        group = H // Hkv                             # GQA is grouped: kv head = h // group
        Kh, Vh = np.repeat(K, group, axis=1), np.repeat(V, group, axis=1)   # [n_kv, H, D]
        scores = np.einsum("thd,shd->hts", q, Kh) / np.sqrt(D)
        # causal: query at absolute position pos[t] sees cached positions <= pos[t]
        mask = np.arange(n_kv)[None, :] > pos[:, None]
        scores = np.where(mask[None], -np.inf, scores)
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", probs, Vh)
        o = o * sigmoid(gate)                        # output gate before attn_output
        return o.reshape(T, H * D) @ self.w(p + "attn_output.weight").T

    # -- Gated DeltaNet (docs/qwen35.md §2.4) ----------------------------------
    def deltanet(self, i: int, x: np.ndarray, st: DeltaNetState) -> np.ndarray:
        c, p = self.c, f"blk.{i}."
        T = x.shape[0]
        Hk, Hv, Sk, Sv, KD = c.ssm_k_heads, c.ssm_v_heads, c.ssm_state, c.ssm_v_dim, c.ssm_qk_dim
        qkv = x @ self.w(p + "attn_qkv.weight").T                 # [T, CD]
        z = x @ self.w(p + "attn_gate.weight").T                  # [T, VD]
        beta = sigmoid(x @ self.w(p + "ssm_beta.weight").T)       # [T, Hv]
        g = self.w(p + "ssm_a") * softplus(x @ self.w(p + "ssm_alpha.weight").T
                                           + self.w(p + "ssm_dt.bias"))   # [T, Hv], <= 0

        # causal depthwise conv over [state rows, new rows]; column 0 = oldest input
        wconv = self.w(p + "ssm_conv1d.weight")                   # [CD, Kc]
        Kc = wconv.shape[1]
        u = np.concatenate([st.conv, qkv], axis=0)                 # [Kc-1+T, CD]
        conv = sum(wconv[:, j] * u[j:j + T] for j in range(Kc))
        st.conv = u[-(Kc - 1):].copy()
        y = silu(conv)

        q = l2_norm(y[:, :KD].reshape(T, Hk, Sk), c.rms_eps)
        k = l2_norm(y[:, KD:2 * KD].reshape(T, Hk, Sk), c.rms_eps)
        v = y[:, 2 * KD:].reshape(T, Hv, Sv)
        o = np.empty((T, Hv, Sv))
        for h in range(Hv):
            kh = h % Hk                                           # GGUF value heads are tiled
            o[:, h] = gated_delta_rule(q[:, kh], k[:, kh], v[:, h], g[:, h], beta[:, h], st.S[h])

        n = rms_norm(o, self.w(p + "ssm_norm.weight"), c.rms_eps) * silu(z.reshape(T, Hv, Sv))
        return n.reshape(T, Hv * Sv) @ self.w(p + "ssm_out.weight").T


def reference_logits(model: Model, tokens, mode: str = "prefill", type_k: str = "f64",
                     type_v: str = "f64") -> np.ndarray:
    """Logits [T, V] (float64) of a token sequence, in one prefill or token by token."""
    ref = Reference(model, type_k, type_v)
    if mode == "prefill":
        return ref.forward(tokens)
    if mode == "decode":
        st = ref.new_state()
        return np.concatenate([ref.forward([t], st) for t in tokens], axis=0)
    raise UsageError(f"unknown mode {mode!r} (prefill or decode)")

"""Vocabulary-projection strategies for the LM head: parse the strategy string, say what
each one is exact for, build what a strategy needs from the model's head (once per model,
shared by its sessions), and hand it to a C session (engine/vocab.c).

    full                 every logit, the weight as stored
    requant:TYPE         every logit, from a copy of the head re-quantized to TYPE
    subset:N             logits of ids 0..N-1 only (the rest -inf)
    subset:@FILE         logits of the ids listed in FILE only
    screened:K[:SCREEN]  the exact top-K (ids and logits); other rows -inf unless they were candidates
    argmax               the exact top-1 id and logit, no logits vector
"""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import numpy as np

from harness import native
from harness.errors import UsageError
from harness.ggml_types import BLOCK_GEOMETRY, NATIVE_TYPES, GGMLType, bits_per_weight
from harness.model.loader import Model

KINDS = ("full", "requant", "subset", "screened", "argmax")
# weight types with a quantizer and dot kernels, usable for requant copies and screening copies
COPY_TYPES = {t.name.lower(): t for t in (GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0,
                                          GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K,
                                          GGMLType.IQ4_XS)}
DEFAULT_RANK = 64
CHUNK_ROWS = 8192


@dataclass(frozen=True)
class Exactness:
    top1: bool          # the greedy id and its logit equal full's
    topk: bool          # the top-K ids and their logits equal full's
    distribution: bool  # every logit equals full's (so softmax, KL, perplexity too)
    note: str


EXACTNESS = {
    "full": Exactness(True, True, True, "the product with the weight as stored"),
    "requant": Exactness(False, False, False, "every logit present, from a re-quantized copy: approximate"),
    "subset": Exactness(False, False, False, "logits of the subset exact, the rest -inf; top-1 / top-K "
                                             "exact only when they fall inside the subset"),
    "screened": Exactness(True, True, False, "exact top-K ids and logits (provable screening bound); rows "
                                             "that were not candidates are -inf"),
    "argmax": Exactness(True, False, False, "exact top-1 id and logit; every other entry -inf"),
}


@dataclass(frozen=True)
class VocabStrategy:
    kind: str                       # one of KINDS
    qtype: GGMLType | None = None   # requant: the copy's type; screened: a low-bit screening copy
    n: int = 0                      # subset: first n ids; screened: K
    ids_file: str | None = None     # subset:@FILE
    rank: int = 0                   # screened: rank of the screening factor (0 = a low-bit copy)
    text: str = "full"

    @property
    def exactness(self) -> Exactness:
        return EXACTNESS[self.kind]


def _copy_type(name: str, what: str) -> GGMLType:
    t = COPY_TYPES.get(name.lower())
    if t is None:
        raise UsageError(f"{what} type {name!r} is not supported (choose from {', '.join(COPY_TYPES)})")
    return t


def parse_strategy(text) -> VocabStrategy:
    """'full', 'requant:q8_0', 'subset:1000', 'subset:@ids.txt', 'screened:10', 'screened:10:rank64',
    'screened:10:q8_0', 'argmax' -> VocabStrategy; UsageError for anything else."""
    if isinstance(text, VocabStrategy):
        return text
    if not isinstance(text, str):
        raise UsageError(f"vocab strategy must be a string, got {text!r}")
    s = text.strip()
    head, _, arg = s.partition(":")
    usage = "full, requant:TYPE, subset:N, subset:@FILE, screened:K[:q8_0|q4_0|rankR], argmax"
    if head in ("full", "argmax"):
        if arg:
            raise UsageError(f"vocab strategy {head!r} takes no argument, got {text!r}")
        return VocabStrategy(head, text=s)
    if head == "requant":
        if not arg:
            raise UsageError("requant needs a type, e.g. requant:q8_0")
        return VocabStrategy("requant", qtype=_copy_type(arg, "requant"), text=s)
    if head == "subset":
        if arg.startswith("@") and len(arg) > 1:
            return VocabStrategy("subset", ids_file=arg[1:], text=s)
        if not re.fullmatch(r"[0-9]+", arg) or int(arg) < 1:
            raise UsageError(f"subset needs a positive count or @FILE, got {text!r}")
        return VocabStrategy("subset", n=int(arg), text=s)
    if head == "screened":
        k, _, screen = arg.partition(":")
        if not re.fullmatch(r"[0-9]+", k) or int(k) < 1:
            raise UsageError(f"screened needs a positive K, e.g. screened:10, got {text!r}")
        if not screen:
            return VocabStrategy("screened", n=int(k), text=s)
        m = re.fullmatch(r"rank([0-9]+)", screen)
        if m:
            if int(m.group(1)) < 1:
                raise UsageError(f"screening rank must be >= 1, got {text!r}")
            return VocabStrategy("screened", n=int(k), rank=int(m.group(1)), text=s)
        return VocabStrategy("screened", n=int(k), qtype=_copy_type(screen, "screening"), text=s)
    raise UsageError(f"unknown vocab strategy {text!r} (choose from {usage})")


# ----------------------------------------------------------------------------
# what a strategy needs, built once per model and shared by its sessions

_BUILT: weakref.WeakKeyDictionary[Model, dict] = weakref.WeakKeyDictionary()


@dataclass
class Screen:
    """Screening rows u_r [V][R] (stored as `type`), the projection P [R][E] (None for a low-bit
    copy, where R = E) and the row norms [4][V] of engine/vocab.c, rounded up."""
    data: np.ndarray
    type: GGMLType
    cols: int
    proj: np.ndarray | None
    norms: np.ndarray


def _head_chunks(model: Model, chunk: int = CHUNK_ROWS):
    """(first row, float32 rows) of the LM head as the engine sees it, chunk by chunk."""
    name = model.lm_head_name()
    info = model.info(name)
    V, E = info.shape
    raw = model.raw(name)
    rb = len(raw) // V
    for r0 in range(0, V, chunk):
        r1 = min(V, r0 + chunk)
        yield r0, dequantize_rows(raw[r0 * rb:r1 * rb], info.type, E)


def dequantize_rows(raw: np.ndarray, t: GGMLType, n_cols: int) -> np.ndarray:
    """float32 [rows, n_cols]: in C where the type has kernels, else by the numpy dequantizer."""
    if t in NATIVE_TYPES:
        return native.dequantize(raw, t, n_cols)
    from harness.model.dequant import dequantize
    return dequantize(raw, t, (-1, n_cols))


def _cached(model: Model, key, build):
    per_model = _BUILT.setdefault(model, {})
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def _round_up(x: np.ndarray) -> np.ndarray:
    """float64 -> float32, never smaller (the C bound must not shrink)."""
    f = x.astype(np.float32)
    return np.where(f.astype(np.float64) < x, np.nextafter(f, np.float32(np.inf)), f)


def _check_block(model: Model, t: GGMLType, what: str) -> None:
    E = model.config.n_embd
    if E % BLOCK_GEOMETRY[t][0]:
        raise UsageError(f"{what}: {t.name} needs rows of a multiple of {BLOCK_GEOMETRY[t][0]} values; "
                         f"this model's are {E}")


def requant_copy(model: Model, t: GGMLType, threads: int = 1) -> np.ndarray:
    """The LM head re-quantized to t, from its dequantized rows: uint8 [V, row bytes]."""
    _check_block(model, t, f"requant:{t.name.lower()}")

    def build():
        return np.concatenate([native.quantize(w, t, threads=threads) for _, w in _head_chunks(model)])
    return _cached(model, ("requant", t), build)


def quant_screen(model: Model, t: GGMLType, threads: int = 1) -> Screen:
    """A low-bit copy u_r of every head row, with ||w||, ||u||, ||u - w|| and 0."""
    _check_block(model, t, f"screening copy {t.name.lower()}")

    def build():
        V, E = model.config.vocab_size, model.config.n_embd
        data, norms = [], np.zeros((4, V))
        for r0, w in _head_chunks(model):
            q = native.quantize(w, t, threads=threads)
            u = native.dequantize(q, t, E).astype(np.float64)
            w64 = w.astype(np.float64)
            r1 = r0 + len(w)
            norms[0, r0:r1] = np.linalg.norm(w64, axis=1)
            norms[1, r0:r1] = np.linalg.norm(u, axis=1)
            norms[2, r0:r1] = np.linalg.norm(u - w64, axis=1)
            data.append(q)
        return Screen(np.concatenate(data), t, E, None, _round_up(norms))
    return _cached(model, ("screen", t), build)


def _top_right_subspace(model: Model, rank: int, seed: int, power_iters: int = 1) -> np.ndarray:
    """Orthonormal rows P [rank][E] spanning (about) the top right singular vectors of the head:
    a randomized range finder on W^T, power iterations (without them a flat noise tail leaks
    into the subspace: on a rank-64 head with 2% noise the residual doubled), then a
    Rayleigh-Ritz step. One pass over the head each."""
    E = model.config.n_embd
    ell = min(E, rank + 16)
    rng = np.random.default_rng(seed)
    Y = np.zeros((E, ell))
    for _, w in _head_chunks(model):
        Y += w.T.astype(np.float64) @ rng.standard_normal((len(w), ell))
    Q = np.linalg.qr(Y)[0]                     # E x ell
    for _ in range(power_iters):               # Q <- orth(W^T W Q)
        Qf, Z = Q.astype(np.float32), np.zeros((E, ell))
        for _, w in _head_chunks(model):
            Z += w.T.astype(np.float64) @ (w @ Qf).astype(np.float64)
        Q = np.linalg.qr(Z)[0]
    Qf, C = Q.astype(np.float32), np.zeros((ell, ell))
    for _, w in _head_chunks(model):
        B = (w @ Qf).astype(np.float64)        # rows of W in the basis Q
        C += B.T @ B
    _, vecs = np.linalg.eigh(C)                # ascending eigenvalues
    top = vecs[:, ::-1][:, :rank]
    P = np.linalg.qr(Q @ top)[0]               # re-orthonormalize in float64
    return np.ascontiguousarray(P.T)


def rank_screen(model: Model, rank: int, seed: int = 0) -> Screen:
    """A rank-R factor: u_r = P w_r stored as F16, with ||w||, ||u||, ||u - P w|| and the
    residual ||w - P^T P w||, all in float64 from the dequantized rows."""
    E = model.config.n_embd
    if rank > E:
        raise UsageError(f"screening rank {rank} exceeds the model width {E}")

    def build():
        V = model.config.vocab_size
        P = _top_right_subspace(model, rank, seed)
        data, norms = [], np.zeros((4, V))
        for r0, w in _head_chunks(model):
            w64 = w.astype(np.float64)
            u_exact = w64 @ P.T
            u16 = u_exact.astype(np.float16)
            u = u16.astype(np.float64)
            r1 = r0 + len(w)
            norms[0, r0:r1] = np.linalg.norm(w64, axis=1)
            norms[1, r0:r1] = np.linalg.norm(u, axis=1)
            norms[2, r0:r1] = np.linalg.norm(u - u_exact, axis=1)
            norms[3, r0:r1] = np.linalg.norm(w64 - u_exact @ P, axis=1)
            data.append(u16.view(np.uint8))
        return Screen(np.concatenate(data), GGMLType.F16, rank, P, _round_up(norms))
    return _cached(model, ("rank", rank, seed), build)


def default_screen(model: Model) -> str:
    """A Q8_0 copy for 16/32-bit heads (half the bytes or less, a tight bound); otherwise a
    rank-64 factor (a low-bit copy of a <= 8.5-bit head saves too few bytes for its bound)."""
    head_type = model.info(model.lm_head_name()).type
    return "q8_0" if bits_per_weight(head_type) >= 16 else f"rank{DEFAULT_RANK}"


def subset_ids(model: Model, st: VocabStrategy) -> np.ndarray:
    V = model.config.vocab_size
    if st.ids_file is None:
        if st.n > V:
            raise UsageError(f"subset:{st.n}: the vocabulary has only {V} ids")
        return np.arange(st.n, dtype=np.int32)
    try:
        with open(st.ids_file) as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"cannot read id list {st.ids_file!r}: {e.strerror}") from None
    try:
        ids = np.array([int(t) for t in text.replace(",", " ").split()], dtype=np.int64)
    except ValueError:
        raise UsageError(f"{st.ids_file}: ids must be integers separated by spaces or commas") from None
    if ids.size == 0:
        raise UsageError(f"{st.ids_file}: no ids")
    bad = ids[(ids < 0) | (ids >= V)]
    if bad.size:
        raise UsageError(f"{st.ids_file}: id {int(bad[0])} is outside the vocabulary [0, {V})")
    return np.unique(ids).astype(np.int32)


# ----------------------------------------------------------------------------
# the C side

def bind(ptr, model: Model, st: VocabStrategy, threads: int = 1) -> list:
    """Set the strategy on a C session; returns what must stay alive as long as the session."""
    from harness.native import ffi, lib
    V, E = model.config.vocab_size, model.config.n_embd
    v = ffi.new("q35_vocab *")
    keep: list = [v]
    v.kind = {"full": lib.Q35_VOCAB_FULL, "requant": lib.Q35_VOCAB_REQUANT, "subset": lib.Q35_VOCAB_SUBSET,
              "screened": lib.Q35_VOCAB_SCREENED, "argmax": lib.Q35_VOCAB_ARGMAX}[st.kind]

    def tensor(arr: np.ndarray, t: GGMLType, cols: int):
        buf = ffi.from_buffer("uint8_t[]", arr)
        keep.extend([arr, buf])
        return {"data": buf, "type": int(t), "rows": V, "cols": cols}

    if st.kind == "requant":
        v.weight = tensor(requant_copy(model, st.qtype, threads), st.qtype, E)
    elif st.kind == "subset":
        ids = subset_ids(model, st)
        buf = ffi.from_buffer("int32_t[]", ids)
        keep.extend([ids, buf])
        v.ids, v.n_ids = buf, ids.size
    elif st.kind == "screened":
        if st.n > V:
            raise UsageError(f"screened:{st.n}: the vocabulary has only {V} ids")
        name = f"rank{st.rank}" if st.rank else (st.qtype.name.lower() if st.qtype else default_screen(model))
        sc = rank_screen(model, int(name[4:])) if name.startswith("rank") else \
            quant_screen(model, COPY_TYPES[name], threads)
        v.top_k = st.n
        v.screen = tensor(sc.data, sc.type, sc.cols)
        nb = ffi.from_buffer("float[]", sc.norms)
        keep.append(nb)
        v.row_norms = nb
        if sc.proj is not None:
            pb = ffi.from_buffer("double[]", sc.proj)
            keep.append(pb)
            v.proj = pb
    if lib.q35_session_set_vocab(ptr, v) != 0:
        raise UsageError(f"vocab strategy {st.text!r} does not fit this model or session "
                         f"(out of memory, or no kernels for its types)")
    return keep

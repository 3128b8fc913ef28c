"""Perplexity and KL divergence on text, computed the way llama.cpp's llama-perplexity computes them
(tools/perplexity/perplexity.cpp, functions perplexity() and kl_divergence()):

- the text's tokens are cut into chunks of n_ctx; each chunk is a fresh context (BOS replaces its
  first token when the vocabulary adds BOS); at least 2 chunks are needed;
- only the second half is scored: logits at positions first = n_ctx/2 .. n_ctx-2 predict the tokens
  at first+1 .. n_ctx-1 (n_ctx - 1 - first tokens a chunk);
- nll_i = log-sum-exp(logits_i) - logits_i[t_{i+1}]; PPL = exp(mean nll), and its uncertainty
  PPL * sqrt((mean nll^2 - mean nll^2) / (count - 1));
- a KL-divergence base file (--kl-divergence-base) holds the header "_logits_", n_ctx, n_vocab,
  n_chunk (int32 each), the tokens (n_chunk * n_ctx int32) and for every scored row
  nv = 2*ceil(n_vocab/2) + 4 uint16: scale and min log-prob as two float32, then each log-prob
  quantized to 16 bits over [max(min logit, max - 16), max] (values below: 0);
- KLD_i = sum over tokens with base log-prob > -16 of p_base (log p_base - log q); "same top p" is
  the share of rows whose argmax agrees; Δp = q(t) - p_base(t) of the true next token.
"""
from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from harness.errors import HarnessError, UsageError

MAGIC = b"_logits_"


class KLDBaseError(HarnessError):
    """A KL-divergence base file that is not llama-perplexity's format or does not fit the model."""


def log_softmax_rows(logits: np.ndarray) -> np.ndarray:
    """log p = logits - max - log(sum exp(logits - max)), float64 [rows, V]."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def quantize_log_probs(logits: np.ndarray) -> np.ndarray:
    """llama-perplexity's 16-bit rows of a base file (log_softmax with a log_prob buffer), uint16
    [rows, nv]. Arithmetic in float32 where theirs is, so the files agree."""
    rows, n_vocab = logits.shape
    nv = 2 * ((n_vocab + 1) // 2) + 4
    lg = logits.astype(np.float32)
    mx = lg.max(axis=1)
    mn = np.maximum(lg.min(axis=1), mx - np.float32(16))
    sum_exp = np.exp(lg - mx[:, None]).astype(np.float64).sum(axis=1)
    log_sum_exp = np.log(sum_exp).astype(np.float32)
    min_log_prob = (mn - mx - log_sum_exp).astype(np.float32)
    scale = ((mx - mn) / np.float32(65535)).astype(np.float32)
    out = np.zeros((rows, nv), dtype=np.uint16)
    head = np.stack([scale, min_log_prob], axis=1).astype("<f4")
    out[:, :4] = head.view("<u2").reshape(rows, 4)
    ok = scale > 0
    inv = np.where(ok, np.float32(1) / np.where(ok, scale, 1), 0).astype(np.float32)
    q = np.rint(inv[:, None] * (lg - mn[:, None])).astype(np.int64)     # nearest_int: round half to even
    q = np.where(lg > mn[:, None], q, 0)
    out[:, 4:4 + n_vocab] = np.clip(q, 0, 65535).astype(np.uint16) * ok[:, None]
    return out


def dequantize_log_probs(rows: np.ndarray, n_vocab: int) -> np.ndarray:
    """log p_base [rows, V] of 16-bit rows: scale * q + min log-prob."""
    head = np.ascontiguousarray(rows[:, :4]).view("<f4")
    scale, min_lp = head[:, 0:1], head[:, 1:2]
    return (scale * rows[:, 4:4 + n_vocab].astype(np.float32) + min_lp).astype(np.float32)


@dataclass
class KLDBase:
    n_ctx: int
    n_vocab: int
    tokens: np.ndarray          # int32 [n_chunk * n_ctx]
    rows: np.ndarray            # uint16 [n_chunk, n_ctx - 1 - n_ctx // 2, nv]

    @property
    def n_chunk(self) -> int:
        return len(self.tokens) // self.n_ctx


def write_kld_base(path, n_ctx: int, n_vocab: int, tokens: np.ndarray, chunks_rows: list[np.ndarray]) -> None:
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<iii", n_ctx, n_vocab, len(chunks_rows)))
        f.write(np.asarray(tokens[:len(chunks_rows) * n_ctx], dtype="<i4").tobytes())
        for r in chunks_rows:
            f.write(np.ascontiguousarray(r, dtype="<u2").tobytes())


def read_kld_base(path) -> KLDBase:
    """The base file; KLDBaseError on anything that is not llama-perplexity's layout."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 20 or data[:8] != MAGIC:
        raise KLDBaseError(f"{path}: not a llama-perplexity KL-divergence base file (no '_logits_' header)")
    n_ctx, n_vocab, n_chunk = struct.unpack_from("<iii", data, 8)
    if n_ctx < 4 or n_vocab < 2 or n_chunk < 1:
        raise KLDBaseError(f"{path}: header says n_ctx {n_ctx}, n_vocab {n_vocab}, n_chunk {n_chunk}")
    nv = 2 * ((n_vocab + 1) // 2) + 4
    n_rows = n_ctx - 1 - n_ctx // 2
    need = 20 + 4 * n_chunk * n_ctx + 2 * n_chunk * n_rows * nv
    if len(data) != need:
        raise KLDBaseError(f"{path}: {len(data)} bytes, the header (n_ctx {n_ctx}, n_vocab {n_vocab}, "
                           f"{n_chunk} chunks) needs {need}")
    tokens = np.frombuffer(data, dtype="<i4", count=n_chunk * n_ctx, offset=20).astype(np.int32)
    rows = np.frombuffer(data, dtype="<u2", offset=20 + 4 * n_chunk * n_ctx).reshape(n_chunk, n_rows, nv)
    return KLDBase(n_ctx, n_vocab, tokens, rows)


def mean_and_uncertainty(s: float, s2: float, n: int) -> tuple[float, float]:
    """llama-perplexity's: mean and sqrt(var / (n - 1)) (0 with 10 values or fewer)."""
    if n < 1:
        return 0.0, 0.0
    f = s / n
    df = s2 / n - f * f
    return f, (math.sqrt(df / (n - 1)) if df > 0 and n > 10 else 0.0)


def percentile(sorted_values: np.ndarray, fraction: float) -> float:
    """Linear interpolation between order statistics, as llama-perplexity's percentile()."""
    v = sorted_values
    if fraction <= 0:
        return float(v[0])
    if fraction >= 1:
        return float(v[-1])
    p = fraction * (len(v) - 1)
    i = int(p)
    p -= i
    return float((1 - p) * v[i] + p * v[min(i + 1, len(v) - 1)])


@dataclass
class Perplexity:
    n_ctx: int
    n_chunk: int
    nll: list[float] = field(default_factory=list)           # per scored token
    chunk_ppl: list[float] = field(default_factory=list)     # cumulative PPL after each chunk
    # KL divergence against a base, when there is one
    nll_base: list[float] = field(default_factory=list)
    kld: list[float] = field(default_factory=list)
    p_diff: list[float] = field(default_factory=list)
    same_top: int = 0
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.nll)

    def ppl(self) -> tuple[float, float]:
        x = np.asarray(self.nll)
        m = x.mean()
        var = (x * x).mean() - m * m
        err = math.sqrt(var / (len(x) - 1)) if var > 0 and len(x) > 1 else float("nan")
        return math.exp(m), math.exp(m) * err

    def summary(self) -> dict:
        """The figures llama-perplexity prints; KLD ones only with a base."""
        ppl, err = self.ppl()
        out = {"ppl": ppl, "ppl_err": err, "n_ctx": self.n_ctx, "n_chunk": self.n_chunk, "n_tokens_scored": self.count,
               "seconds": self.seconds}
        if not self.kld:
            return out
        n = self.count
        a, b = np.asarray(self.nll), np.asarray(self.nll_base)
        lq = mean_and_uncertainty(a.sum(), (a * a).sum(), n)
        lb = mean_and_uncertainty(b.sum(), (b * b).sum(), n)
        cov = ((a * b).sum() / n - (a.sum() / n) * (b.sum() / n)) / (n - 1) if n >= 10 else 0.0
        ratio_unc = math.sqrt(max(0.0, lq[1] ** 2 + lb[1] ** 2 - 2 * cov))
        k = np.sort(np.asarray(self.kld))
        d = np.sort(np.asarray(self.p_diff))
        km = mean_and_uncertainty(k.sum(), (k * k).sum(), n)
        dm = mean_and_uncertainty(d.sum(), (d * d).sum(), n)
        mse = mean_and_uncertainty((d * d).sum(), (d ** 4).sum(), n)
        same = self.same_top / n
        out.update({
            "ppl_base": math.exp(lb[0]), "ppl_base_err": math.exp(lb[0]) * lb[1],
            "ln_ppl_ratio": lq[0] - lb[0], "ln_ppl_ratio_err": ratio_unc,
            "ppl_ratio": math.exp(lq[0] - lb[0]), "ppl_ratio_err": math.exp(lq[0] - lb[0]) * ratio_unc,
            "kld_mean": km[0], "kld_mean_err": km[1], "kld_median": float(np.median(k)),
            "kld_p99": percentile(k, 0.99), "kld_p999": percentile(k, 0.999), "kld_p90": percentile(k, 0.90),
            "kld_max": float(k[-1]),
            "dp_mean": dm[0], "dp_mean_err": dm[1], "dp_median": float(np.median(d)),
            "dp_p01": percentile(d, 0.01), "dp_p99": percentile(d, 0.99), "dp_max": float(d[-1]),
            "dp_min": float(d[0]), "dp_rms": math.sqrt(mse[0]),
            "same_top_p": same, "same_top_p_err": math.sqrt(same * (1 - same) / (n - 1)) if n > 1 else 0.0,
        })
        return out


def chunk_tokens(tokens, n_ctx: int, n_chunks: int | None = None) -> int:
    """How many chunks of n_ctx the tokens make; UsageError below llama-perplexity's 2 * n_ctx."""
    if n_ctx < 4:
        raise UsageError(f"-c must be at least 4, got {n_ctx}")
    if len(tokens) < 2 * n_ctx:
        raise UsageError(f"the text tokenizes to only {len(tokens)} tokens; a context of {n_ctx} needs at least "
                         f"{2 * n_ctx} (as llama-perplexity)")
    n = len(tokens) // n_ctx
    return n if n_chunks is None else min(n, n_chunks)


def score_chunk(res: Perplexity, logits: np.ndarray, chunk: np.ndarray, base_rows: np.ndarray | None = None) -> None:
    """Add one chunk's scored half: logits [n_ctx - first, V] at positions first .. n_ctx-1 (the
    last row is not scored), chunk the chunk's n_ctx tokens."""
    n_ctx = len(chunk)
    first = n_ctx // 2
    lp = log_softmax_rows(logits[:n_ctx - 1 - first])
    targets = chunk[first + 1:]
    rows = np.arange(len(targets))
    nll = -lp[rows, targets]
    res.nll.extend(nll.tolist())
    if base_rows is not None:
        base = dequantize_log_probs(base_rows, logits.shape[1]).astype(np.float64)
        nll_b = -base[rows, targets]
        keep = base > -16.0
        p_base = np.where(keep, np.exp(base), 0.0)
        res.kld.extend((p_base * np.where(keep, base - lp, 0.0)).sum(axis=1).tolist())
        res.nll_base.extend(nll_b.tolist())
        res.p_diff.extend((np.exp(-nll) - np.exp(-nll_b)).tolist())
        # argmax of the base row: the first of its largest values, as llama-perplexity's loop finds it
        res.same_top += int((lp.argmax(axis=1) == base.argmax(axis=1)).sum())
    res.chunk_ppl.append(math.exp(float(np.mean(res.nll))))


def run_perplexity(session, tokens: list[int], n_ctx: int, bos_id: int | None = None,
                   n_chunks: int | None = None, base: KLDBase | None = None, write_base=None,
                   progress=None) -> Perplexity:
    """Score tokens chunk by chunk on a native Session (ctx >= n_ctx). With base, the tokens are the
    base file's and KLD is computed; with write_base a path, the base file is written."""
    toks = np.asarray(base.tokens if base is not None else tokens, dtype=np.int64)
    n_chunk = base.n_chunk if base is not None else chunk_tokens(toks, n_ctx, n_chunks)
    if base is not None and n_chunks is not None:
        n_chunk = min(n_chunk, n_chunks)
    res = Perplexity(n_ctx, n_chunk)
    first = n_ctx // 2
    written = []
    t0 = time.perf_counter()
    for c in range(n_chunk):
        chunk = toks[c * n_ctx:(c + 1) * n_ctx].copy()
        fed = chunk.copy()
        if bos_id is not None:
            fed[0] = bos_id
        session.reset()
        if first:
            session.prefill(fed[:first], all_logits=False)
        logits = session.prefill(fed[first:], all_logits=True)
        if write_base is not None:
            written.append(quantize_log_probs(logits[:n_ctx - 1 - first]))
        score_chunk(res, logits, chunk, None if base is None else base.rows[c])
        if progress:
            progress(c + 1, n_chunk, res.chunk_ppl[-1])
    res.seconds = time.perf_counter() - t0
    if write_base is not None:
        write_kld_base(write_base, n_ctx, logits.shape[1], toks, written)
    return res

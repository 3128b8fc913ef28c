"""numpy dequantizers for the weight types of GGUF files (ggml block layouts).

Each function takes the raw bytes of whole rows and returns float32 values,
computed in float32 in the same order as ggml's reference C code, so they
agree bit for bit with ggml and with gguf.quants.dequantize. The formats are
described in docs/qwen35.md §4.1.
"""
from __future__ import annotations

import numpy as np

from harness.ggml_types import GGMLType
from harness.model.quant_fields import KVALUES_IQ4NL, as_blocks, f16_values

def _k_scales_mins(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unpack the 12-byte Q4_K/Q5_K field into 8 six-bit scales and 8 six-bit mins."""
    s = scales.astype(np.uint8)
    sc = np.empty(s.shape[:-1] + (8,), np.uint8)
    mn = np.empty_like(sc)
    sc[..., :4] = s[..., 0:4] & 63
    mn[..., :4] = s[..., 4:8] & 63
    sc[..., 4:] = (s[..., 8:12] & 0xF) | ((s[..., 0:4] >> 6) << 4)
    mn[..., 4:] = (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)
    return sc.astype(np.float32), mn.astype(np.float32)


def dequant_q4_0(raw: np.ndarray) -> np.ndarray:
    b = as_blocks(raw, GGMLType.Q4_0)
    d = f16_values(b[:, 0:2])[:, None]
    qs = b[:, 2:18]
    q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.int8) - np.int8(8)
    return (d * q.astype(np.float32)).reshape(-1)


def dequant_q8_0(raw: np.ndarray) -> np.ndarray:
    b = as_blocks(raw, GGMLType.Q8_0)
    d = f16_values(b[:, 0:2])[:, None]
    return (d * b[:, 2:34].view(np.int8).astype(np.float32)).reshape(-1)


def dequant_q4_k(raw: np.ndarray) -> np.ndarray:
    b = as_blocks(raw, GGMLType.Q4_K)
    d, dmin = f16_values(b[:, 0:2]), f16_values(b[:, 2:4])
    sc, mn = _k_scales_mins(b[:, 4:16])
    qs = b[:, 16:144].reshape(-1, 4, 32)            # 4 chunks of 64 elements
    q = np.stack([qs & 0xF, qs >> 4], axis=2)       # [blk, chunk, lo/hi, 32] = sub-block 2c, 2c+1
    q = q.reshape(-1, 8, 32).astype(np.float32)
    d1 = (d[:, None] * sc)[..., None]
    m1 = (dmin[:, None] * mn)[..., None]
    return (d1 * q - m1).reshape(-1)


def dequant_q5_k(raw: np.ndarray) -> np.ndarray:
    b = as_blocks(raw, GGMLType.Q5_K)
    d, dmin = f16_values(b[:, 0:2]), f16_values(b[:, 2:4])
    sc, mn = _k_scales_mins(b[:, 4:16])
    qh = b[:, 16:48]                                 # [blk, 32]
    qs = b[:, 48:176].reshape(-1, 4, 32)
    lo, hi = qs & 0xF, qs >> 4
    shifts = np.arange(4, dtype=np.uint8)[None, :, None]
    lo = lo + (((qh[:, None, :] >> (2 * shifts)) & 1) << 4)
    hi = hi + (((qh[:, None, :] >> (2 * shifts + 1)) & 1) << 4)
    q = np.stack([lo, hi], axis=2).reshape(-1, 8, 32).astype(np.float32)
    d1 = (d[:, None] * sc)[..., None]
    m1 = (dmin[:, None] * mn)[..., None]
    return (d1 * q - m1).reshape(-1)


def dequant_q6_k(raw: np.ndarray) -> np.ndarray:
    b = as_blocks(raw, GGMLType.Q6_K)
    ql = b[:, 0:128].reshape(-1, 2, 64)              # halves of 128 elements
    qh = b[:, 128:192].reshape(-1, 2, 32)
    sc = b[:, 192:208].view(np.int8).astype(np.float32).reshape(-1, 2, 8)
    d = f16_values(b[:, 208:210])
    q1 = (ql[:, :, 0:32] & 0xF) | (((qh >> 0) & 3) << 4)
    q2 = (ql[:, :, 32:64] & 0xF) | (((qh >> 2) & 3) << 4)
    q3 = (ql[:, :, 0:32] >> 4) | (((qh >> 4) & 3) << 4)
    q4 = (ql[:, :, 32:64] >> 4) | (((qh >> 6) & 3) << 4)
    q = np.stack([q1, q2, q3, q4], axis=2).astype(np.int8) - np.int8(32)   # [blk, half, 4, 32]
    q = q.reshape(-1, 2, 8, 16).astype(np.float32)   # 8 sub-blocks of 16 per half, in order
    ds = d[:, None, None] * sc                       # [blk, half, 8]
    return (ds[..., None] * q).reshape(-1)


def dequant_iq4_xs(raw: np.ndarray) -> np.ndarray:
    b = as_blocks(raw, GGMLType.IQ4_XS)
    d = f16_values(b[:, 0:2])
    scales_h = b[:, 2:4].copy().view("<u2")[:, 0].astype(np.int32)
    scales_l = b[:, 4:8].astype(np.int32)
    ib = np.arange(8)
    ls = ((scales_l[:, ib // 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h[:, None] >> (2 * ib)) & 3) << 4)
    dl = d[:, None] * (ls - 32).astype(np.float32)   # [blk, 8]
    qs = b[:, 8:136].reshape(-1, 8, 16)
    q = KVALUES_IQ4NL[np.concatenate([qs & 0xF, qs >> 4], axis=2)]   # [blk, 8, 32]
    return (dl[..., None] * q).reshape(-1)


def dequant_f16(raw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1).view("<f2").astype(np.float32)


def dequant_bf16(raw: np.ndarray) -> np.ndarray:
    u = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1).view("<u2").astype(np.uint32)
    return (u << 16).view(np.float32)


def dequant_f32(raw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1).view("<f4").astype(np.float32)


DEQUANTIZERS = {
    GGMLType.F32: dequant_f32,
    GGMLType.F16: dequant_f16,
    GGMLType.BF16: dequant_bf16,
    GGMLType.Q4_0: dequant_q4_0,
    GGMLType.Q8_0: dequant_q8_0,
    GGMLType.Q4_K: dequant_q4_k,
    GGMLType.Q5_K: dequant_q5_k,
    GGMLType.Q6_K: dequant_q6_k,
    GGMLType.IQ4_XS: dequant_iq4_xs,
}


from harness.model.dequant_extra import DEQUANTIZERS_EXTRA  # noqa: E402

DEQUANTIZERS.update(DEQUANTIZERS_EXTRA)


def dequantize(raw: np.ndarray, t: GGMLType, shape: tuple[int, ...]) -> np.ndarray:
    """Raw tensor bytes -> float32 array of the given numpy shape (rows last-dim contiguous)."""
    return DEQUANTIZERS[GGMLType(t)](raw).reshape(shape)

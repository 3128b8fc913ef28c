"""numpy dequantizers for the weight types beyond the first nine: the legacy 32-blocks (Q4_1, Q5_0,
Q5_1, IQ4_NL), the low K-quants (Q2_K, Q3_K), the ternary types (TQ1_0, TQ2_0), the FP4 types (MXFP4,
NVFP4) and the codebook types (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M).

As in harness.model.dequant: whole blocks in, float32 out, computed in float32 in the order of ggml's
dequantize_row_<type> (ggml-quants.c), so the values agree bit for bit with ggml and with
gguf.quants.dequantize (the tests check every type on random blocks and on the oracle files). Block
layouts are ggml's block_<type> structs, fields in declaration order, little-endian."""
from __future__ import annotations

import numpy as np

from harness.ggml_types import GGMLType
from harness.model.quant_fields import KVALUES_IQ4NL, as_blocks, f16_values
from harness.model.iq_grids import KSIGNS, grid

# e2m1 values times two (ggml's kvalues_mxfp4, shared by NVFP4); the scales carry the factor 1/2
KVALUES_FP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.float32)
IQ1S_DELTA = np.float32(0.125)
F32 = np.float32


def _u16(b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(b).view("<u2").astype(np.uint32)


def _u32(b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(b).view("<u4")


def _nibbles(qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return qs & 0xF, qs >> 4


def _sign(sign_bytes: np.ndarray) -> np.ndarray:
    """8 sign bits per byte -> [..., 8] of +1 / -1 (bit j set: value j negative)."""
    bits = (sign_bytes[..., None] >> np.arange(8, dtype=np.uint8)) & 1
    return np.where(bits == 1, F32(-1), F32(1))


# ----------------------------------------------------------------------------
# legacy 32-blocks

def dequant_q4_1(raw: np.ndarray) -> np.ndarray:
    """block_q4_1: d, m (f16), 16 bytes of nibbles (low: values 0-15, high: 16-31); y = q*d + m."""
    b = as_blocks(raw, GGMLType.Q4_1)
    d, m = f16_values(b[:, 0:2])[:, None], f16_values(b[:, 2:4])[:, None]
    q = np.concatenate(_nibbles(b[:, 4:20]), axis=1).astype(F32)
    return (q * d + m).reshape(-1)


def _q5_values(qh: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """The 5-bit values of a Q5_0/Q5_1 block: nibbles plus bit j (low half) or j+16 (high half) of qh."""
    j = np.arange(16, dtype=np.uint32)
    hi0 = ((qh[:, None] >> j) & 1) << 4
    hi1 = ((qh[:, None] >> (j + 16)) & 1) << 4
    lo, hi = _nibbles(qs.astype(np.uint32))
    return np.concatenate([lo | hi0, hi | hi1], axis=1).astype(np.int32)


def dequant_q5_0(raw: np.ndarray) -> np.ndarray:
    """block_q5_0: d (f16), qh (32 high bits), 16 bytes of nibbles; y = (q - 16) * d."""
    b = as_blocks(raw, GGMLType.Q5_0)
    d = f16_values(b[:, 0:2])[:, None]
    q = _q5_values(_u32(b[:, 2:6])[:, 0], b[:, 6:22]) - 16
    return (q.astype(F32) * d).reshape(-1)


def dequant_q5_1(raw: np.ndarray) -> np.ndarray:
    """block_q5_1: d, m (f16), qh, 16 bytes of nibbles; y = q*d + m."""
    b = as_blocks(raw, GGMLType.Q5_1)
    d, m = f16_values(b[:, 0:2])[:, None], f16_values(b[:, 2:4])[:, None]
    q = _q5_values(_u32(b[:, 4:8])[:, 0], b[:, 8:24])
    return (q.astype(F32) * d + m).reshape(-1)


def dequant_iq4_nl(raw: np.ndarray) -> np.ndarray:
    """block_iq4_nl: d (f16), 16 bytes of nibbles indexing the IQ4 non-linear values."""
    b = as_blocks(raw, GGMLType.IQ4_NL)
    d = f16_values(b[:, 0:2])[:, None]
    q = KVALUES_IQ4NL[np.concatenate(_nibbles(b[:, 2:18]), axis=1)]
    return (d * q).reshape(-1)


# ----------------------------------------------------------------------------
# low K-quants (256-blocks of 16 sub-blocks of 16)

def dequant_q2_k(raw: np.ndarray) -> np.ndarray:
    """block_q2_K: scales[16] (low nibble scale, high nibble min), qs[64] (2 bits), d, dmin (f16).
    Value n*128 + j*32 + g*16 + l is bits 2j of qs[n*32 + g*16 + l], sub-block n*8 + j*2 + g."""
    b = as_blocks(raw, GGMLType.Q2_K)
    sc = b[:, 0:16]
    qs = b[:, 16:80].reshape(-1, 2, 1, 32)
    d, dmin = f16_values(b[:, 80:82])[:, None], f16_values(b[:, 82:84])[:, None]
    q = (qs >> (2 * np.arange(4, dtype=np.uint8))[None, None, :, None]) & 3     # [blk, n, j, 32]
    q = q.reshape(-1, 16, 16).astype(F32)                                       # sub-blocks n, j, g
    dl = d * (sc & 0xF).astype(F32)
    ml = dmin * (sc >> 4).astype(F32)
    return (dl[..., None] * q - ml[..., None]).reshape(-1)


def _q3_k_scales(s: np.ndarray) -> np.ndarray:
    """The 12-byte Q3_K field as 16 six-bit scales (minus 32): low nibbles from bytes 0-7, high pairs
    from bytes 8-11 (ggml's kmask1/kmask2 unpacking)."""
    aux = _u32(s)                                   # [blk, 3]
    k1, k2 = np.uint32(0x03030303), np.uint32(0x0F0F0F0F)
    a0, a1, t = aux[:, 0], aux[:, 1], aux[:, 2]
    words = np.stack([(a0 & k2) | (((t >> 0) & k1) << 4), (a1 & k2) | (((t >> 2) & k1) << 4),
                      ((a0 >> 4) & k2) | (((t >> 4) & k1) << 4), ((a1 >> 4) & k2) | (((t >> 6) & k1) << 4)], axis=1)
    return np.ascontiguousarray(words.astype("<u4")).view(np.uint8).astype(np.int32) - 32    # [blk, 16]


def dequant_q3_k(raw: np.ndarray) -> np.ndarray:
    """block_q3_K: hmask[32], qs[64] (2 bits), scales[12], d (f16). Value n*128 + j*32 + g*16 + l:
    bits 2j of qs[n*32 + g*16 + l], minus 4 unless bit n*4 + j of hmask[g*16 + l] is set."""
    b = as_blocks(raw, GGMLType.Q3_K)
    hmask = b[:, 0:32].reshape(-1, 1, 1, 32)
    qs = b[:, 32:96].reshape(-1, 2, 1, 32)
    sc = _q3_k_scales(b[:, 96:108])
    d = f16_values(b[:, 108:110])[:, None]
    j = np.arange(4, dtype=np.uint8)[None, None, :, None]
    n = np.arange(2, dtype=np.uint8)[None, :, None, None]
    q = ((qs >> (2 * j)) & 3).astype(np.int32)                          # [blk, n, j, 32]
    high = (hmask >> (n * 4 + j)) & 1
    q = (q - np.where(high == 1, 0, 4)).reshape(-1, 16, 16).astype(F32)
    dl = d * sc.astype(F32)
    return (dl[..., None] * q).reshape(-1)


# ----------------------------------------------------------------------------
# ternary

def _trits(q: np.ndarray, n: int) -> np.ndarray:
    """Digit n of base-3 fixed-point bytes: (q * 3^n mod 256) * 3 >> 8, in {0, 1, 2}."""
    return (((q.astype(np.uint16) * 3 ** n) & 0xFF) * 3) >> 8


def dequant_tq1_0(raw: np.ndarray) -> np.ndarray:
    """block_tq1_0: qs[48] (5 trits a byte), qh[4] (4 trits a byte), d (f16); y = (t - 1) * d.
    Order: bytes 0-31 digit by digit (5 x 32), bytes 32-47 likewise (5 x 16), then qh (4 x 4)."""
    b = as_blocks(raw, GGMLType.TQ1_0)
    qs, qh = b[:, 0:48], b[:, 48:52]
    d = f16_values(b[:, 52:54])[:, None]
    parts = ([_trits(qs[:, 0:32], n) for n in range(5)] + [_trits(qs[:, 32:48], n) for n in range(5)]
             + [_trits(qh, n) for n in range(4)])
    t = np.concatenate(parts, axis=1).astype(np.int32) - 1
    return (t.astype(F32) * d).reshape(-1)


def dequant_tq2_0(raw: np.ndarray) -> np.ndarray:
    """block_tq2_0: qs[64] (4 two-bit values a byte), d (f16); value j*128 + l*32 + m is bits 2l of
    qs[j*32 + m]; y = (q - 1) * d."""
    b = as_blocks(raw, GGMLType.TQ2_0)
    qs = b[:, 0:64].reshape(-1, 2, 1, 32)
    d = f16_values(b[:, 64:66])[:, None]
    q = ((qs >> (2 * np.arange(4, dtype=np.uint8))[None, None, :, None]) & 3).astype(np.int32) - 1
    return (q.reshape(-1, 256).astype(F32) * d).reshape(-1)


# ----------------------------------------------------------------------------
# FP4

def e8m0_half(e: np.ndarray) -> np.ndarray:
    """ggml_e8m0_to_fp32_half: 2^(e - 127) / 2 (for e < 2 a subnormal), exactly, as float32."""
    e = e.astype(np.uint32)
    bits = np.where(e < 2, np.uint32(0x00200000) << e, (e - 1) << np.uint32(23)).astype(np.uint32)
    return bits.view(np.float32)


def ue4m3_half(x: np.ndarray) -> np.ndarray:
    """An unsigned E4M3 scale (bias 7; 0 and 0x7F read as 0) times 1/2, as float32."""
    x = x.astype(np.int32)
    exp, man = (x >> 3) & 0xF, (x & 7).astype(F32)
    normal = (F32(1) + man / F32(8)) * np.exp2((exp - 7).astype(F32))
    v = np.where(exp == 0, man * F32(2.0 ** -9), normal)
    return np.where((x == 0) | (x == 0x7F), F32(0), v * F32(0.5)).astype(F32)


def dequant_mxfp4(raw: np.ndarray) -> np.ndarray:
    """block_mxfp4: e (E8M0 shared scale), 16 bytes of e2m1 nibbles (low: 0-15, high: 16-31)."""
    b = as_blocks(raw, GGMLType.MXFP4)
    d = e8m0_half(b[:, 0])[:, None]
    q = KVALUES_FP4[np.concatenate(_nibbles(b[:, 1:17]), axis=1)]
    return (d * q).reshape(-1)


def dequant_nvfp4(raw: np.ndarray) -> np.ndarray:
    """block_nvfp4: 4 UE4M3 scales, one per 16 values, then 4 x 8 bytes of e2m1 nibbles (low: values
    0-7 of the sub-block, high: 8-15)."""
    b = as_blocks(raw, GGMLType.NVFP4)
    d = ue4m3_half(b[:, 0:4])[..., None]                                 # [blk, 4, 1]
    qs = b[:, 4:36].reshape(-1, 4, 8)
    q = KVALUES_FP4[np.concatenate(_nibbles(qs), axis=2)]               # [blk, 4, 16]
    return (d * q).reshape(-1)


# ----------------------------------------------------------------------------
# codebook types: 8 groups of 32 values a 256-block

def _half_scale(d: np.ndarray, s: np.ndarray) -> np.ndarray:
    """IQ2 group scale: d * (0.5 + s) * 0.25, in ggml's order."""
    return d * (F32(0.5) + s.astype(F32)) * F32(0.25)


def dequant_iq2_xxs(raw: np.ndarray) -> np.ndarray:
    """block_iq2_xxs: d (f16), 8 x (4 grid indices, u32: 4 x 7 sign bits + 4-bit scale)."""
    b = as_blocks(raw, GGMLType.IQ2_XXS)
    d = f16_values(b[:, 0:2])[:, None]
    g = b[:, 2:66].reshape(-1, 8, 8)
    idx, aux = g[..., 0:4], _u32(g[..., 4:8])[..., 0]                    # [blk, 8, 4], [blk, 8]
    db = _half_scale(d, aux >> 28)                                       # [blk, 8]
    signs = KSIGNS[(aux[..., None] >> (7 * np.arange(4, dtype=np.uint32))) & 127]   # [blk, 8, 4]
    v = db[..., None, None] * grid("IQ2_XXS")[idx] * _sign(signs)
    return v.reshape(-1)


def dequant_iq2_xs(raw: np.ndarray) -> np.ndarray:
    """block_iq2_xs: d (f16), qs[32] (u16: 9-bit grid index, 7 sign bits), scales[8] (two 4-bit)."""
    b = as_blocks(raw, GGMLType.IQ2_XS)
    d = f16_values(b[:, 0:2])[:, None, None]
    qs = _u16(b[:, 2:66]).reshape(-1, 8, 4)
    sc = b[:, 66:74]
    s = np.stack([sc & 0xF, sc >> 4], axis=2)[:, :, [0, 0, 1, 1]]       # [blk, 8, 4]: l // 2
    db = _half_scale(d, s)
    v = db[..., None] * grid("IQ2_XS")[qs & 511] * _sign(KSIGNS[qs >> 9])
    return v.reshape(-1)


def dequant_iq2_s(raw: np.ndarray) -> np.ndarray:
    """block_iq2_s: d (f16), qs[32] (low 8 bits of 10-bit grid indices), signs[32], qh[8] (2 high
    bits of each of a group's 4 indices), scales[8] (two 4-bit)."""
    b = as_blocks(raw, GGMLType.IQ2_S)
    d = f16_values(b[:, 0:2])[:, None, None]
    lo = b[:, 2:34].reshape(-1, 8, 4).astype(np.int32)
    signs = b[:, 34:66].reshape(-1, 8, 4)
    qh = b[:, 66:74].astype(np.int32)[..., None]
    sc = b[:, 74:82]
    idx = lo | ((qh << (8 - 2 * np.arange(4))) & 0x300)
    s = np.stack([sc & 0xF, sc >> 4], axis=2)[:, :, [0, 0, 1, 1]]
    db = _half_scale(d, s)
    v = db[..., None] * grid("IQ2_S")[idx] * _sign(signs)
    return v.reshape(-1)


def dequant_iq3_xxs(raw: np.ndarray) -> np.ndarray:
    """block_iq3_xxs: d (f16), qs[64] (grid indices, 4 values each), 8 x u32 (4 x 7 sign bits +
    4-bit scale); group scale d * (0.5 + s) * 0.5."""
    b = as_blocks(raw, GGMLType.IQ3_XXS)
    d = f16_values(b[:, 0:2])[:, None]
    idx = b[:, 2:66].reshape(-1, 8, 4, 2)
    aux = _u32(b[:, 66:98])                                              # [blk, 8]
    db = d * (F32(0.5) + (aux >> 28).astype(F32)) * F32(0.5)
    signs = KSIGNS[(aux[..., None] >> (7 * np.arange(4, dtype=np.uint32))) & 127]
    vals = grid("IQ3_XXS")[idx].reshape(-1, 8, 4, 8)                     # two points of 4 per sign byte
    v = db[..., None, None] * vals * _sign(signs)
    return v.reshape(-1)


def dequant_iq3_s(raw: np.ndarray) -> np.ndarray:
    """block_iq3_s: d (f16), qs[64] (low 8 bits of 9-bit indices), qh[8] (the ninth bits), signs[32],
    scales[4] (two 4-bit); group scale d * (1 + 2 s)."""
    b = as_blocks(raw, GGMLType.IQ3_S)
    d = f16_values(b[:, 0:2])[:, None]
    lo = b[:, 2:66].reshape(-1, 8, 8).astype(np.int32)                  # [blk, group, 8 indices]
    qh = b[:, 66:74].astype(np.int32)[..., None]
    signs = b[:, 74:106].reshape(-1, 8, 4)
    sc = b[:, 106:110]
    k = np.arange(8)
    idx = lo | ((qh << (8 - k)) & 256)                                  # index 2l: shift 8-2l; 2l+1: 7-2l
    s = np.stack([sc & 0xF, sc >> 4], axis=2).reshape(-1, 8)
    db = d * (1 + 2 * s.astype(np.int32)).astype(F32)
    vals = grid("IQ3_S")[idx].reshape(-1, 8, 4, 8)
    v = db[..., None, None] * vals * _sign(signs)
    return v.reshape(-1)


def dequant_iq1_s(raw: np.ndarray) -> np.ndarray:
    """block_iq1_s: d (f16), qs[32] (low 8 bits of 11-bit indices), qh[8] (u16: 4 x 3 high index
    bits, 3-bit scale, delta sign); y = d * (2 s + 1) * (grid + delta)."""
    b = as_blocks(raw, GGMLType.IQ1_S)
    d = f16_values(b[:, 0:2])[:, None]
    qs = b[:, 2:34].reshape(-1, 8, 4).astype(np.int32)
    qh = _u16(b[:, 34:50]).astype(np.int32)                              # [blk, 8]
    dl = d * (2 * ((qh >> 12) & 7) + 1).astype(F32)
    delta = np.where(qh & 0x8000, -IQ1S_DELTA, IQ1S_DELTA).astype(F32)
    idx = qs | (((qh[..., None] >> (3 * np.arange(4))) & 7) << 8)
    v = dl[..., None, None] * (grid("IQ1_S")[idx] + delta[..., None, None])
    return v.reshape(-1)


def dequant_iq1_m(raw: np.ndarray) -> np.ndarray:
    """block_iq1_m: qs[32], qh[16] (per index pair: 2 x 3 high bits and 2 delta signs), scales[8]
    (u16 x 4: 3-bit sub-scales, and the f16 block scale in their top nibbles)."""
    b = as_blocks(raw, GGMLType.IQ1_M)
    qs = b[:, 0:32].reshape(-1, 8, 4).astype(np.int32)
    qh = b[:, 32:48].reshape(-1, 8, 2).astype(np.int32)
    sc = _u16(b[:, 48:56]).astype(np.int32)                              # [blk, 4]
    u = (sc[:, 0] >> 12) | ((sc[:, 1] >> 8) & 0xF0) | ((sc[:, 2] >> 4) & 0xF00) | (sc[:, 3] & 0xF000)
    d = u.astype("<u2").view(np.float16).astype(F32)[:, None]
    ib = np.arange(8)
    s = sc[:, ib // 2]
    shift = 6 * (ib % 2)
    dl1 = d * (2 * ((s >> shift) & 7) + 1).astype(F32)
    dl2 = d * (2 * ((s >> (shift + 3)) & 7) + 1).astype(F32)
    qh_of = qh[..., [0, 0, 1, 1]]                                          # [blk, 8, 4]
    idx = qs | ((qh_of << np.array([8, 4, 8, 4])) & 0x700)
    delta = np.where(qh_of & np.array([0x08, 0x80, 0x08, 0x80]), -IQ1S_DELTA, IQ1S_DELTA).astype(F32)
    dl = np.stack([dl1, dl1, dl2, dl2], axis=2)                           # [blk, 8, 4]
    v = dl[..., None] * (grid("IQ1_M")[idx] + delta[..., None])
    return v.reshape(-1)


DEQUANTIZERS_EXTRA = {
    GGMLType.Q4_1: dequant_q4_1, GGMLType.Q5_0: dequant_q5_0, GGMLType.Q5_1: dequant_q5_1,
    GGMLType.IQ4_NL: dequant_iq4_nl, GGMLType.Q2_K: dequant_q2_k, GGMLType.Q3_K: dequant_q3_k,
    GGMLType.TQ1_0: dequant_tq1_0, GGMLType.TQ2_0: dequant_tq2_0, GGMLType.MXFP4: dequant_mxfp4,
    GGMLType.NVFP4: dequant_nvfp4, GGMLType.IQ2_XXS: dequant_iq2_xxs, GGMLType.IQ2_XS: dequant_iq2_xs,
    GGMLType.IQ2_S: dequant_iq2_s, GGMLType.IQ3_XXS: dequant_iq3_xxs, GGMLType.IQ3_S: dequant_iq3_s,
    GGMLType.IQ1_S: dequant_iq1_s, GGMLType.IQ1_M: dequant_iq1_m,
}

/* Quantized block layouts, byte-identical to ggml (ggml-common.h).
 * QK_K = 256 elements per super-block for the K and IQ types. */
#ifndef Q35_BLOCKS_H
#define Q35_BLOCKS_H

#include <stdint.h>

#define QK4_0 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;          /* 18 B  */
typedef struct { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;               /* 34 B  */
typedef struct {                                                           /* 144 B */
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min) */
    uint8_t qs[QK_K / 2];
} block_q4_K;
typedef struct {                                                           /* 176 B */
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
typedef struct {                                                           /* 210 B */
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d; /* last */
} block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K; /* 292 B */
typedef struct {                                                           /* 136 B */
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
} block_iq4_xs;

/* The low K-quants: 16 sub-blocks of 16. Value 128n + 32j + l (n = 0..1, j = 0..3,
 * l = 0..31) is bits 2j, 2j+1 of qs[32n + l], in sub-block (128n + 32j + l) / 16.
 * Q2_K: sub-block scale and min 4 bits each (scales[s] low / high nibble) under
 * d and dmin. Q3_K: values (those two bits) - 4, + 4 again where bit 4n + j of
 * hmask[l] is set; 16 six-bit scales (minus 32) packed in 12 bytes under d. */
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; } block_q2_K; /* 84 B */
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; } block_q3_K; /* 110 B */

/* Where value i (0..255) of a Q2_K / Q3_K block lives: its two low bits at bit q35_lowk_shift(i)
 * of qs[q35_lowk_byte(i)], its Q3_K high bit at bit q35_q3_K_hbit(i) of hmask[i % 32] */
static inline int q35_lowk_byte(int i) { return 32 * (i / 128) + i % 32; }
static inline int q35_lowk_shift(int i) { return 2 * ((i % 128) / 32); }
static inline int q35_q3_K_hbit(int i) { return 4 * (i / 128) + (i % 128) / 32; }
static inline int q35_lowk_bits(const uint8_t *qs, int i) { return (qs[q35_lowk_byte(i)] >> q35_lowk_shift(i)) & 3; }
/* the Q3_K value i, -4..3 */
static inline int q35_q3_K_value(const block_q3_K *x, int i) {
    return q35_lowk_bits(x->qs, i) - (((x->hmask[i % 32] >> q35_q3_K_hbit(i)) & 1) ? 0 : 4);
}

/* The other 32-value block types: Q4_1 and Q5_1 carry a min (x = d q + m), Q5_0
 * and Q5_1 a fifth bit per value (qh bit j: element j), IQ4_NL the non-linear
 * grid of IQ4_XS. Q8_1 (activations paired with Q4_1 / Q5_1) stores
 * s = d * sum(qs), so the min term is one product per block. */
typedef struct { uint16_t d, m; uint8_t qs[16]; } block_q4_1;               /* 20 B  */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;  /* 22 B  */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1; /* 24 B */
typedef struct { uint16_t d, s; int8_t qs[32]; } block_q8_1;               /* 36 B  */
typedef struct { uint16_t d; uint8_t qs[16]; } block_iq4_nl;               /* 18 B  */

/* the 32 codes (0..31) of a Q5_0 / Q5_1 block: nibble | bit j of the little-endian qh << 4 */
static inline void q35_q5_codes(const uint8_t qs[16], const uint8_t qh_bytes[4], int q[32]) {
    const uint32_t qh = (uint32_t)qh_bytes[0] | (uint32_t)qh_bytes[1] << 8 | (uint32_t)qh_bytes[2] << 16 |
                        (uint32_t)qh_bytes[3] << 24;
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        q[j + 16] = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    }
}

/* FP4 (e2m1) codes, two a byte: MXFP4 shares one E8M0 scale over 32 values,
 * NVFP4 has one UE4M3 scale per 16 values (4 per 64-value block) */
#define QK_MXFP4 32
#define QK_NVFP4 64
#define QK_NVFP4_SUB 16
typedef struct { uint8_t e; uint8_t qs[QK_MXFP4 / 2]; } block_mxfp4;       /* 17 B  */
typedef struct { uint8_t d[QK_NVFP4 / QK_NVFP4_SUB]; uint8_t qs[QK_NVFP4 / 2]; } block_nvfp4; /* 36 B */

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(block_mxfp4) == 17, "mxfp4 size");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K size");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K size");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 size");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl size");
_Static_assert(sizeof(block_nvfp4) == 36, "nvfp4 size");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K size");
_Static_assert(sizeof(block_iq4_xs) == 136, "iq4_xs size");

/* the 6-bit scale (0..63; the scale is the value - 32) of sub-block ib (0..7) of an IQ4_XS block:
 * 4 low bits in scales_l, 2 high bits in scales_h */
static inline int q35_iq4_xs_scale(const block_iq4_xs *x, int ib) {
    return ((x->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((x->scales_h >> (2 * ib)) & 3) << 4);
}

/* The packed 6-bit scales of the K-quants as four little-endian words of 4 bytes
 * (ggml's kmask1 / kmask2 unpacking), from the 12 bytes read as 3 words u[0..2]:
 *   Q4_K / Q5_K: sc0-3, sc4-7, m0-3, m4-7;
 *   Q3_K: scales 0-3, 4-7, 8-11, 12-15, each 0..63 (the scale is the value - 32). */
static inline void q35_k45_scale_words(const uint32_t u[3], uint32_t w[4]) {
    w[0] = u[0] & 0x3f3f3f3fu;
    w[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    w[2] = u[1] & 0x3f3f3f3fu;
    w[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
}
static inline void q35_q3_K_scale_words(const uint32_t u[3], uint32_t w[4]) {
    const uint32_t k1 = 0x03030303u, k2 = 0x0f0f0f0fu;
    w[0] = (u[0] & k2) | (((u[2] >> 0) & k1) << 4);
    w[1] = (u[1] & k2) | (((u[2] >> 2) & k1) << 4);
    w[2] = ((u[0] >> 4) & k2) | (((u[2] >> 4) & k1) << 4);
    w[3] = ((u[1] >> 4) & k2) | (((u[2] >> 6) & k1) << 4);
}

/* Q3_K's 12 scale bytes -> 16 signed scales (-32..31) */
static inline void q35_q3_K_scales(const uint8_t packed[12], int8_t out[16]) {
    uint32_t u[3], w[4];
    for (int i = 0; i < 3; i++)
        u[i] = (uint32_t)packed[4 * i] | (uint32_t)packed[4 * i + 1] << 8 | (uint32_t)packed[4 * i + 2] << 16 |
               (uint32_t)packed[4 * i + 3] << 24;
    q35_q3_K_scale_words(u, w);
    for (int i = 0; i < 16; i++) out[i] = (int8_t)((int)((w[i / 4] >> (8 * (i % 4))) & 0xFF) - 32);
}

/* the IQ4_NL / IQ4_XS non-linear grid */
static const int8_t q35_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

/* e2m1 values times two (ggml's kvalues_mxfp4): the scales below carry the 1/2 */
static const int8_t q35_kvalues_fp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

#endif

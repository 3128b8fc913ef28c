/* The codebook (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) and ternary
 * (TQ1_0, TQ2_0) weight types of 256-value blocks (ggml-common.h), decoded to one
 * common form every kernel can take:
 *
 *     weight value i of the block = d * c * ls[i / 16] * v[i]
 *
 * with d the block's f16 scale, v[i] a small integer (int8), ls one integer scale per
 * 16 values and c a power of two of the type (q35_codebook_c). Every block dot with
 * a Q8_K activation block (its d_a, qa) is then the exact integer
 *     isum = sum_s ls[s] * sum_{i in s} v[i] qa[i]
 * times d * d_a * c, which is how ggml's dots compute them (ggml-cpu quants.c,
 * ggml_vec_dot_<type>_q8_K_generic): an integer per block, one float product.
 *
 * Per type (g = group of 32 values, sub-blocks 2g and 2g + 1):
 *   IQ2_XXS  group: 4 grid indices (bytes) + a word of 4 x 7 sign bits and a 4-bit scale s;
 *            ls = 2 s + 1 (both halves), v = grid value (8, 25, 43) * sign, c = 1/8.
 *   IQ2_XS   qs[4g + l]: 9-bit index, 7 sign bits; scales[g]: low nibble for l = 0, 1,
 *            high for 2, 3; ls = 2 s + 1, c = 1/8.
 *   IQ2_S    index qs[4g + l] | 2 bits of qh[g], sign byte qs[32 + 4g + l]; scales as IQ2_XS.
 *   IQ3_XXS  8 grid indices of 4 values (4 .. 62) and a sign / scale word per group; c = 1/4.
 *   IQ3_S    9-bit indices (qh[g] the ninth bits), sign bytes signs[4g + l], scales[g / 2]
 *            nibble g % 2; ls = 2 s + 1, c = 1.
 *   IQ1_S    11-bit indices into a grid of {-1, 0, 1}, qh[g] = 4 x 3 high bits, 3-bit scale,
 *            delta sign; value d ls (grid +- 1/8): stored as v = 8 grid +- 1, c = 1/8.
 *   IQ1_M    as IQ1_S with a 3-bit scale per 16 values, a delta sign per 8, and d packed in
 *            the top nibbles of the four scale words.
 *   TQ1_0    base-3 digits (5 a byte in qs, 4 in qh), v = digit - 1, ls = 1, c = 1.
 *   TQ2_0    two-bit codes, v = code - 1, ls = 1, c = 1.
 * The sign tables: bit j of a sign byte negates value j; a 7-bit sign index k stands for
 * the byte k | parity(k) << 7 (ggml's ksigns_iq2xs: an even number of minus signs). */
#ifndef Q35_CODEBOOKS_H
#define Q35_CODEBOOKS_H

#include <stdint.h>
#include <string.h>

#include "fp16.h"
#include "iq_grids.h"
#include "q35.h"

/* the decoders: always inlined where called directly, so each SIMD file compiles them for its own ISA */
#define Q35_DECODER static inline __attribute__((always_inline))

typedef struct {
    float d;         /* the block scale (f16 in the file) */
    int16_t ls[16];  /* integer scale of values 16 s .. 16 s + 15 */
    int8_t v[256];   /* integer values */
} q35_codebook_block;

static inline int q35_is_codebook_type(int t) {
    switch (t) {
    case Q35_TYPE_IQ2_XXS: case Q35_TYPE_IQ2_XS: case Q35_TYPE_IQ2_S: case Q35_TYPE_IQ3_XXS:
    case Q35_TYPE_IQ3_S: case Q35_TYPE_IQ1_S: case Q35_TYPE_IQ1_M: case Q35_TYPE_TQ1_0: case Q35_TYPE_TQ2_0:
        return 1;
    default: return 0;
    }
}

/* c of the type, a power of two (scaling by it is exact) */
static inline float q35_codebook_c(int t) {
    switch (t) {
    case Q35_TYPE_IQ3_XXS: return 0.25f;
    case Q35_TYPE_IQ3_S: case Q35_TYPE_TQ1_0: case Q35_TYPE_TQ2_0: return 1.0f;
    default: return 0.125f;
    }
}

static inline uint16_t q35_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t q35_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 8 bytes of a grid point with signs applied: bit j of `signs` negates byte j. The
 * bits are spread to bytes (byte j of signs * 0x0101.. masked to bit j), each nonzero
 * byte becomes 1 (ones) and 0xFF (m); the grid values here are 1..62, so negating
 * bytewise as (x ^ 0xFF) + 1 never carries into the next byte. */
static inline uint64_t q35_signed_point(uint64_t point, uint8_t signs) {
    const uint64_t bits = (signs * 0x0101010101010101ull) & 0x8040201008040201ull;
    const uint64_t ones = ((bits + 0x7F7F7F7F7F7F7F7Full) & 0x8080808080808080ull) >> 7;
    return (point ^ (ones * 0xFF)) + ones;
}

static inline uint8_t q35_ksign(uint32_t k7) { /* 7 sign bits + their parity as bit 7 */
    uint32_t p = k7 ^ k7 >> 4; /* folded, so bit 0 is the parity (no popcnt instruction needed) */
    p ^= p >> 2;
    p ^= p >> 1;
    return (uint8_t)(k7 | (p & 1) << 7);
}

static inline void q35_put8(int8_t *v, uint64_t bytes) { memcpy(v, &bytes, 8); }

/* two 4-value IQ3 points as one 8-byte point (first one in the low bytes) */
static inline uint64_t q35_iq3_pair(uint32_t p1, uint32_t p2) { return (uint64_t)p1 | (uint64_t)p2 << 32; }

Q35_DECODER void q35_decode_iq2_xxs(const uint8_t *x, q35_codebook_block *o) {
    o->d = q35_h2f(q35_le16(x));
    for (int g = 0; g < 8; g++) {
        const uint8_t *q = x + 2 + 8 * g;
        const uint32_t aux = q35_le32(q + 4);
        o->ls[2 * g] = o->ls[2 * g + 1] = (int16_t)(2 * (aux >> 28) + 1);
        for (int l = 0; l < 4; l++)
            q35_put8(o->v + 32 * g + 8 * l, q35_signed_point(q35_iq2xxs_grid[q[l]], q35_ksign(aux >> (7 * l) & 127)));
    }
}

Q35_DECODER void q35_decode_iq2_xs(const uint8_t *x, q35_codebook_block *o) {
    o->d = q35_h2f(q35_le16(x));
    const uint8_t *sc = x + 66;
    for (int g = 0; g < 8; g++) {
        o->ls[2 * g] = (int16_t)(2 * (sc[g] & 0xF) + 1);
        o->ls[2 * g + 1] = (int16_t)(2 * (sc[g] >> 4) + 1);
        for (int l = 0; l < 4; l++) {
            const uint16_t q = q35_le16(x + 2 + 2 * (4 * g + l));
            q35_put8(o->v + 32 * g + 8 * l, q35_signed_point(q35_iq2xs_grid[q & 511], q35_ksign(q >> 9)));
        }
    }
}

Q35_DECODER void q35_decode_iq2_s(const uint8_t *x, q35_codebook_block *o) {
    o->d = q35_h2f(q35_le16(x));
    const uint8_t *qs = x + 2, *signs = x + 34, *qh = x + 66, *sc = x + 74;
    for (int g = 0; g < 8; g++) {
        o->ls[2 * g] = (int16_t)(2 * (sc[g] & 0xF) + 1);
        o->ls[2 * g + 1] = (int16_t)(2 * (sc[g] >> 4) + 1);
        for (int l = 0; l < 4; l++) {
            const int idx = qs[4 * g + l] | ((qh[g] << (8 - 2 * l)) & 0x300);
            q35_put8(o->v + 32 * g + 8 * l, q35_signed_point(q35_iq2s_grid[idx], signs[4 * g + l]));
        }
    }
}

Q35_DECODER void q35_decode_iq3_xxs(const uint8_t *x, q35_codebook_block *o) {
    o->d = q35_h2f(q35_le16(x));
    const uint8_t *qs = x + 2, *gas = x + 66;
    for (int g = 0; g < 8; g++) {
        const uint32_t aux = q35_le32(gas + 4 * g);
        o->ls[2 * g] = o->ls[2 * g + 1] = (int16_t)(2 * (aux >> 28) + 1);
        for (int l = 0; l < 4; l++) {
            const uint8_t *q = qs + 8 * g + 2 * l;
            const uint64_t p = q35_iq3_pair(q35_iq3xxs_grid[q[0]], q35_iq3xxs_grid[q[1]]);
            q35_put8(o->v + 32 * g + 8 * l, q35_signed_point(p, q35_ksign(aux >> (7 * l) & 127)));
        }
    }
}

Q35_DECODER void q35_decode_iq3_s(const uint8_t *x, q35_codebook_block *o) {
    o->d = q35_h2f(q35_le16(x));
    const uint8_t *qs = x + 2, *qh = x + 66, *signs = x + 74, *sc = x + 106;
    for (int g = 0; g < 8; g++) {
        o->ls[2 * g] = o->ls[2 * g + 1] = (int16_t)(2 * ((sc[g / 2] >> (4 * (g % 2))) & 0xF) + 1);
        for (int l = 0; l < 4; l++) {
            const uint8_t *q = qs + 8 * g + 2 * l;
            const int i1 = q[0] | ((qh[g] << (8 - 2 * l)) & 256), i2 = q[1] | ((qh[g] << (7 - 2 * l)) & 256);
            const uint64_t p = q35_iq3_pair(q35_iq3s_grid[i1], q35_iq3s_grid[i2]);
            q35_put8(o->v + 32 * g + 8 * l, q35_signed_point(p, signs[4 * g + l]));
        }
    }
}

/* 8 IQ1 grid values (-1, 0, 1 as bytes) times 8, plus the delta sign (+1 or -1) */
static inline void q35_put_iq1(int8_t *v, uint64_t point, int delta) {
    for (int j = 0; j < 8; j++) v[j] = (int8_t)(8 * (int8_t)(point >> (8 * j)) + delta);
}

Q35_DECODER void q35_decode_iq1_s(const uint8_t *x, q35_codebook_block *o) {
    o->d = q35_h2f(q35_le16(x));
    const uint8_t *qs = x + 2;
    for (int g = 0; g < 8; g++) {
        const uint16_t qh = q35_le16(x + 34 + 2 * g);
        o->ls[2 * g] = o->ls[2 * g + 1] = (int16_t)(2 * ((qh >> 12) & 7) + 1);
        const int delta = qh & 0x8000 ? -1 : 1;
        for (int l = 0; l < 4; l++)
            q35_put_iq1(o->v + 32 * g + 8 * l, q35_iq1s_grid[qs[4 * g + l] | (((qh >> (3 * l)) & 7) << 8)], delta);
    }
}

Q35_DECODER void q35_decode_iq1_m(const uint8_t *x, q35_codebook_block *o) {
    const uint8_t *qs = x, *qh = x + 32;
    uint16_t sc[4];
    for (int k = 0; k < 4; k++) sc[k] = q35_le16(x + 48 + 2 * k);
    o->d = q35_h2f((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000)));
    for (int g = 0; g < 8; g++) {
        const int shift = 6 * (g % 2);
        o->ls[2 * g] = (int16_t)(2 * ((sc[g / 2] >> shift) & 7) + 1);
        o->ls[2 * g + 1] = (int16_t)(2 * ((sc[g / 2] >> (shift + 3)) & 7) + 1);
        for (int l = 0; l < 4; l++) {
            const uint8_t h = qh[2 * g + l / 2];
            const int idx = qs[4 * g + l] | ((h << (8 - 4 * (l % 2))) & 0x700);
            const int delta = h & (l % 2 ? 0x80 : 0x08) ? -1 : 1;
            q35_put_iq1(o->v + 32 * g + 8 * l, q35_iq1s_grid[idx], delta);
        }
    }
}

/* base-3 digit k of a fixed-point byte: (q 3^k mod 256) * 3 >> 8 */
static inline int q35_trit(uint8_t q, int k) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    return ((uint8_t)(q * pow3[k]) * 3) >> 8;
}

Q35_DECODER void q35_decode_tq1_0(const uint8_t *x, q35_codebook_block *o) {
    const uint8_t *qs = x, *qh = x + 48;
    o->d = q35_h2f(q35_le16(x + 52));
    for (int s = 0; s < 16; s++) o->ls[s] = 1;
    for (int k = 0; k < 5; k++)
        for (int m = 0; m < 32; m++) o->v[32 * k + m] = (int8_t)(q35_trit(qs[m], k) - 1);
    for (int k = 0; k < 5; k++)
        for (int m = 0; m < 16; m++) o->v[160 + 16 * k + m] = (int8_t)(q35_trit(qs[32 + m], k) - 1);
    for (int k = 0; k < 4; k++)
        for (int m = 0; m < 4; m++) o->v[240 + 4 * k + m] = (int8_t)(q35_trit(qh[m], k) - 1);
}

Q35_DECODER void q35_decode_tq2_0(const uint8_t *x, q35_codebook_block *o) {
    o->d = q35_h2f(q35_le16(x + 64));
    for (int s = 0; s < 16; s++) o->ls[s] = 1;
    for (int j = 0; j < 2; j++)
        for (int l = 0; l < 4; l++)
            for (int k = 0; k < 32; k++) o->v[128 * j + 32 * l + k] = (int8_t)(((x[32 * j + k] >> (2 * l)) & 3) - 1);
}

/* codebook_formats.c: the dequantizers (nblocks blocks to floats) and the ternary quantizers */
void q35_dequantize_iq2_xxs(const void *x, float *y, int64_t nblocks);
void q35_dequantize_iq2_xs(const void *x, float *y, int64_t nblocks);
void q35_dequantize_iq2_s(const void *x, float *y, int64_t nblocks);
void q35_dequantize_iq3_xxs(const void *x, float *y, int64_t nblocks);
void q35_dequantize_iq3_s(const void *x, float *y, int64_t nblocks);
void q35_dequantize_iq1_s(const void *x, float *y, int64_t nblocks);
void q35_dequantize_iq1_m(const void *x, float *y, int64_t nblocks);
void q35_dequantize_tq1_0(const void *x, float *y, int64_t nblocks);
void q35_dequantize_tq2_0(const void *x, float *y, int64_t nblocks);
void q35_quantize_tq1_0(const float *x, void *y, int64_t nblocks);
void q35_quantize_tq2_0(const float *x, void *y, int64_t nblocks);

typedef void (*q35_codebook_decode_fn)(const uint8_t *block, q35_codebook_block *out);

/* the decoder and block size of a codebook type (NULL / 0 for other types) */
static inline q35_codebook_decode_fn q35_codebook_decoder(int t, int *block_bytes) {
    switch (t) {
    case Q35_TYPE_IQ2_XXS: *block_bytes = 66; return q35_decode_iq2_xxs;
    case Q35_TYPE_IQ2_XS: *block_bytes = 74; return q35_decode_iq2_xs;
    case Q35_TYPE_IQ2_S: *block_bytes = 82; return q35_decode_iq2_s;
    case Q35_TYPE_IQ3_XXS: *block_bytes = 98; return q35_decode_iq3_xxs;
    case Q35_TYPE_IQ3_S: *block_bytes = 110; return q35_decode_iq3_s;
    case Q35_TYPE_IQ1_S: *block_bytes = 50; return q35_decode_iq1_s;
    case Q35_TYPE_IQ1_M: *block_bytes = 56; return q35_decode_iq1_m;
    case Q35_TYPE_TQ1_0: *block_bytes = 54; return q35_decode_tq1_0;
    case Q35_TYPE_TQ2_0: *block_bytes = 66; return q35_decode_tq2_0;
    default: *block_bytes = 0; return NULL;
    }
}

#endif

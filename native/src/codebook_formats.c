/* Formats of the codebook and ternary types (layouts and decoding in codebooks.h):
 * their dequantizers, the ternary quantizers (cheap: one scale and a rounding per
 * value, as ggml's quantize_row_tq1_0_ref / tq2_0_ref), and random valid blocks for
 * the IQ types, whose quantizers (a search against the grid under an importance
 * matrix) we do not have: every bit pattern of an IQ block other than its scale is a
 * valid block, and decoding costs the same whatever the codes, so random codes give
 * synthetic models with the real layout and the real speed. */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "codebooks.h"
#include "fp16.h"

/* Dequantization must round like ggml: no fused multiply-adds. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* y = (d ls c) v per value: the products ggml's dequantize_row_<type> forms, in
 * another grouping that rounds the same (c and the factor 2 between ggml's
 * (0.5 + s) and our 2 s + 1 are powers of two) */
static void dequantize_codebook(int type, const void *x, float *y, int64_t nblocks) {
    int block_bytes;
    const q35_codebook_decode_fn decode = q35_codebook_decoder(type, &block_bytes);
    const float c = q35_codebook_c(type);
    for (int64_t b = 0; b < nblocks; b++) {
        q35_codebook_block cb;
        decode((const uint8_t *)x + b * block_bytes, &cb);
        for (int s = 0; s < 16; s++) {
            const float dl = cb.d * (float)cb.ls[s] * c;
            for (int l = 0; l < 16; l++) y[256 * b + 16 * s + l] = dl * (float)cb.v[16 * s + l];
        }
    }
}

#define CODEBOOK_DEQUANTIZE(tname, type) \
    void q35_dequantize_##tname(const void *x, float *y, int64_t nblocks) { dequantize_codebook(type, x, y, nblocks); }
CODEBOOK_DEQUANTIZE(iq2_xxs, Q35_TYPE_IQ2_XXS)
CODEBOOK_DEQUANTIZE(iq2_xs, Q35_TYPE_IQ2_XS)
CODEBOOK_DEQUANTIZE(iq2_s, Q35_TYPE_IQ2_S)
CODEBOOK_DEQUANTIZE(iq3_xxs, Q35_TYPE_IQ3_XXS)
CODEBOOK_DEQUANTIZE(iq3_s, Q35_TYPE_IQ3_S)
CODEBOOK_DEQUANTIZE(iq1_s, Q35_TYPE_IQ1_S)
CODEBOOK_DEQUANTIZE(iq1_m, Q35_TYPE_IQ1_M)
CODEBOOK_DEQUANTIZE(tq1_0, Q35_TYPE_TQ1_0)
CODEBOOK_DEQUANTIZE(tq2_0, Q35_TYPE_TQ2_0)
#undef CODEBOOK_DEQUANTIZE

/* d = max |x| of the block, each value rounded to -1, 0 or 1 (half away from zero)
 * and stored as its code 0, 1, 2 */
static float ternary_codes(const float *x, uint8_t t[256]) {
    float amax = 0.0f;
    for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
    for (int j = 0; j < 256; j++) t[j] = (uint8_t)(lroundf(x[j] * id) + 1);
    return amax;
}

/* k base-3 digits (most significant first) as a fixed-point byte: ceil(q 256 / 243),
 * q padded to five digits, so digit i comes back as (byte 3^i mod 256) * 3 >> 8 */
static uint8_t trit_byte(const uint8_t *t, int k, int step) {
    unsigned q = 0;
    for (int i = 0; i < 5; i++) q = q * 3 + (i < k ? t[i * step] : 0);
    return (uint8_t)((q * 256 + 242) / 243);
}

void q35_quantize_tq1_0(const float *x, void *dst, int64_t nblocks) {
    uint8_t *y = dst;
    for (int64_t b = 0; b < nblocks; b++, x += 256, y += 54) {
        uint8_t t[256];
        const uint16_t d = q35_f2h(ternary_codes(x, t));
        for (int m = 0; m < 32; m++) y[m] = trit_byte(t + m, 5, 32);              /* values 0..159 */
        for (int m = 0; m < 16; m++) y[32 + m] = trit_byte(t + 160 + m, 5, 16);   /* 160..239 */
        for (int m = 0; m < 4; m++) y[48 + m] = trit_byte(t + 240 + m, 4, 4);     /* 240..255 */
        y[52] = d & 0xFF;
        y[53] = d >> 8;
    }
}

void q35_quantize_tq2_0(const float *x, void *dst, int64_t nblocks) {
    uint8_t *y = dst;
    for (int64_t b = 0; b < nblocks; b++, x += 256, y += 66) {
        uint8_t t[256];
        const uint16_t d = q35_f2h(ternary_codes(x, t));
        memset(y, 0, 64);
        for (int i = 0; i < 256; i++) y[32 * (i / 128) + i % 32] |= (uint8_t)(t[i] << (2 * ((i % 128) / 32)));
        y[64] = d & 0xFF;
        y[65] = d >> 8;
    }
}

/* ------------------------------------------------------------------------- */
/* Random valid blocks.                                                      */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* the block's f16 scale set to h (IQ1_M: its four nibbles in the scale words' top bits) */
static void set_scale(int type, uint8_t *blk, uint16_t h) {
    int off;
    switch (type) {
    case Q35_TYPE_IQ1_M:
        for (int k = 0; k < 4; k++) blk[48 + 2 * k + 1] = (uint8_t)((blk[48 + 2 * k + 1] & 0x0F) | ((h >> (4 * k)) & 0xF) << 4);
        return;
    case Q35_TYPE_TQ1_0: off = 52; break;
    case Q35_TYPE_TQ2_0: off = 64; break;
    default: off = 0;
    }
    blk[off] = h & 0xFF;
    blk[off + 1] = h >> 8;
}

int q35_random_blocks(int type, uint64_t seed, float std, void *dst, int64_t nblocks) {
    int bb;
    if (!q35_codebook_decoder(type, &bb) || nblocks < 0 || !(std >= 0.0f) || !isfinite(std)) return -1;
    uint8_t *y = dst;
    uint64_t s = seed;
    for (int64_t i = 0; i < nblocks * bb; i++) y[i] = (uint8_t)(splitmix64(&s) >> 56);
    for (int64_t b = 0; b < nblocks; b++) {
        uint8_t *blk = y + b * bb;
        if (type == Q35_TYPE_TQ1_0) /* base-3 bytes below 3^5 */
            for (int i = 0; i < 52; i++) blk[i] = (uint8_t)(splitmix64(&s) % 243);
        if (type == Q35_TYPE_TQ2_0) /* two-bit codes 0..2 (the values -1, 0, 1) */
            for (int i = 0; i < 64; i++) {
                const uint64_t r = splitmix64(&s);
                blk[i] = (uint8_t)(r % 3 | (r >> 8) % 3 << 2 | (r >> 16) % 3 << 4 | (r >> 24) % 3 << 6);
            }
        set_scale(type, blk, q35_f2h(1.0f));
    }
    /* the values are linear in d: d = std / (their std at d = 1), from up to 64 blocks */
    const int64_t probe = nblocks < 64 ? nblocks : 64;
    double sum = 0, sum2 = 0;
    for (int64_t b = 0; b < probe; b++) {
        float v[256];
        dequantize_codebook(type, y + b * bb, v, 1);
        for (int j = 0; j < 256; j++) sum += v[j], sum2 += (double)v[j] * v[j];
    }
    const double n = 256.0 * (double)probe, var = probe ? sum2 / n - (sum / n) * (sum / n) : 0;
    const uint16_t h = q35_f2h(var > 0 ? (float)(std / sqrt(var)) : 0.0f);
    for (int64_t b = 0; b < nblocks; b++) set_scale(type, y + b * bb, h);
    return 0;
}

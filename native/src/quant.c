/* Quantization formats: float rows <-> ggml blocks (layouts in blocks.h).
 *
 * One section per type, quantizer and dequantizer side by side. The
 * dequantizers evaluate exactly the float expressions ggml (and gguf-py)
 * use, in the same order, so results are bit-identical. The quantizers for
 * the K and IQ types are our own least-squares searches: a bounded number of
 * candidate scales per sub-block, each refit in closed form, then the
 * sub-block scales are themselves quantized against a per-super-block scale
 * and the values re-quantized with the final, rounded scales.
 *
 * Everything here is pure: no state is written outside the caller's buffers,
 * so any number of threads may quantize disjoint rows at once.
 */
#include "q35.h"
#include "blocks.h"
#include "codebooks.h"
#include "fp16.h"
#include "fp4.h"

#include <math.h>
#include <string.h>

/* Dequantization must round like ggml: no fused multiply-adds. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Round to nearest, ties to even, for |x| < 2^22 (ggml's nearest_int). */
static inline int nearest_int(float x) {
    float f = x + 12582912.f; /* 1.5 * 2^23: pushes the fraction out */
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline float clampf(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* ------------------------------------------------------------------------- */
/* F32, F16, BF16: one element per "block".                                  */

static void quantize_f32(const float *x, void *vy, int64_t n) { memcpy(vy, x, (size_t)n * 4); }
static void dequantize_f32(const void *vx, float *y, int64_t n) { memcpy(y, vx, (size_t)n * 4); }

static void quantize_f16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = q35_f2h(x[i]);
}
static void dequantize_f16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = q35_h2f(x[i]);
}

static void quantize_bf16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = q35_f2bf(x[i]);
}
static void dequantize_bf16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = q35_bf2f(x[i]);
}

/* ------------------------------------------------------------------------- */
/* Q4_0: d = (signed max) / -8, so the largest |x| lands on q = 0 (-8·d).    */

static void quantize_q4_0(const float *x, void *vy, int64_t nb) {
    block_q4_0 *y = vy;
    for (int64_t b = 0; b < nb; b++, x += QK4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        }
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = q35_f2h(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            /* x*id is in [-8, 8]; +8.5 and truncation rounds half up */
            int q0 = (int)(x[j] * id + 8.5f), q1 = (int)(x[j + QK4_0 / 2] * id + 8.5f);
            if (q0 > 15) q0 = 15;
            if (q1 > 15) q1 = 15;
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void dequantize_q4_0(const void *vx, float *y, int64_t nb) {
    const block_q4_0 *x = vx;
    for (int64_t b = 0; b < nb; b++, y += QK4_0) {
        float d = q35_h2f(x[b].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = (float)((x[b].qs[j] & 0xF) - 8) * d;
            y[j + QK4_0 / 2] = (float)((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Q8_0: d = max|x| / 127, q = round(x / d) (ties away, like ggml's ref).    */

static void quantize_q8_0(const float *x, void *vy, int64_t nb) {
    block_q8_0 *y = vy;
    for (int64_t b = 0; b < nb; b++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = q35_f2h(d);
        for (int j = 0; j < QK8_0; j++) y[b].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void dequantize_q8_0(const void *vx, float *y, int64_t nb) {
    const block_q8_0 *x = vx;
    for (int64_t b = 0; b < nb; b++, y += QK8_0) {
        float d = q35_h2f(x[b].d);
        for (int j = 0; j < QK8_0; j++) y[j] = (float)x[b].qs[j] * d;
    }
}

/* ------------------------------------------------------------------------- */
/* Q4_1, Q5_0, Q5_1, Q8_1, IQ4_NL: 32-value blocks, as ggml's quantize_row_*_ref. */
/* Element j of a block is the low nibble of qs[j] and element j + 16 the high  */
/* one; the fifth bit of element j (Q5_*) is bit j of the 32-bit qh.            */

/* min and max of a block: Q4_1 / Q5_1 map [min, max] onto 0..nmax */
static void block_min_max(const float *x, float *mn, float *mx) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; j++) {
        lo = fminf(lo, x[j]);
        hi = fmaxf(hi, x[j]);
    }
    *mn = lo;
    *mx = hi;
}

/* codes q (0..31) of one block into qs nibbles and qh bits */
static void pack_5bit(const int *q, uint8_t qs[16], uint8_t qh_out[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        qh |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh_out, &qh, 4);
}

static void quantize_q4_1(const float *x, void *vy, int64_t nb) {
    block_q4_1 *y = vy;
    for (int64_t b = 0; b < nb; b++, x += 32) {
        float mn, mx;
        block_min_max(x, &mn, &mx);
        const float d = (mx - mn) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = q35_f2h(d);
        y[b].m = q35_f2h(mn);
        for (int j = 0; j < 16; j++) { /* +0.5 and truncation: round half up, as ggml */
            int q0 = (int)((x[j] - mn) * id + 0.5f), q1 = (int)((x[j + 16] - mn) * id + 0.5f);
            y[b].qs[j] = (uint8_t)((q0 > 15 ? 15 : q0) | ((q1 > 15 ? 15 : q1) << 4));
        }
    }
}

static void dequantize_q4_1(const void *vx, float *y, int64_t nb) {
    const block_q4_1 *x = vx;
    for (int64_t b = 0; b < nb; b++, y += 32) {
        const float d = q35_h2f(x[b].d), m = q35_h2f(x[b].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(x[b].qs[j] & 0xF) * d + m;
            y[j + 16] = (float)(x[b].qs[j] >> 4) * d + m;
        }
    }
}

/* Q5_0: d = (signed max) / -16, q = x/d + 16 in 0..31 */
static void quantize_q5_0(const float *x, void *vy, int64_t nb) {
    block_q5_0 *y = vy;
    for (int64_t b = 0; b < nb; b++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = q35_f2h(d);
        int q[32];
        for (int j = 0; j < 32; j++) {
            const int v = (int)(x[j] * id + 16.5f);
            q[j] = v > 31 ? 31 : v;
        }
        pack_5bit(q, y[b].qs, y[b].qh);
    }
}

static void dequantize_q5_0(const void *vx, float *y, int64_t nb) {
    const block_q5_0 *x = vx;
    for (int64_t b = 0; b < nb; b++, y += 32) {
        const float d = q35_h2f(x[b].d);
        int q[32];
        q35_q5_codes(x[b].qs, x[b].qh, q);
        for (int j = 0; j < 32; j++) y[j] = (float)(q[j] - 16) * d;
    }
}

static void quantize_q5_1(const float *x, void *vy, int64_t nb) {
    block_q5_1 *y = vy;
    for (int64_t b = 0; b < nb; b++, x += 32) {
        float mn, mx;
        block_min_max(x, &mn, &mx);
        const float d = (mx - mn) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = q35_f2h(d);
        y[b].m = q35_f2h(mn);
        int q[32];
        for (int j = 0; j < 32; j++) {
            const int v = (int)((x[j] - mn) * id + 0.5f);
            q[j] = v > 31 ? 31 : v;
        }
        pack_5bit(q, y[b].qs, y[b].qh);
    }
}

static void dequantize_q5_1(const void *vx, float *y, int64_t nb) {
    const block_q5_1 *x = vx;
    for (int64_t b = 0; b < nb; b++, y += 32) {
        const float d = q35_h2f(x[b].d), m = q35_h2f(x[b].m);
        int q[32];
        q35_q5_codes(x[b].qs, x[b].qh, q);
        for (int j = 0; j < 32; j++) y[j] = (float)q[j] * d + m;
    }
}

/* Q8_1 (activations, paired with Q4_1 / Q5_1) as ggml-cpu's x86 quantize_row_q8_1,
 * the converter llama.cpp runs on x86: q = x * (127 / max|x|) rounded half to
 * even, d = max|x| / 127, and s = d * sum(q). */
static void quantize_q8_1(const float *x, void *vy, int64_t nb) {
    block_q8_1 *y = vy;
    for (int64_t b = 0; b < nb; b++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = q35_f2h(d);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            y[b].qs[j] = (int8_t)nearest_int(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].s = q35_f2h(d * (float)sum);
    }
}

static void dequantize_q8_1(const void *vx, float *y, int64_t nb) {
    const block_q8_1 *x = vx;
    for (int64_t b = 0; b < nb; b++, y += 32) {
        const float d = q35_h2f(x[b].d);
        for (int j = 0; j < 32; j++) y[j] = (float)x[b].qs[j] * d;
    }
}

/* ------------------------------------------------------------------------- */
/* Q8_K (activations): the element with the largest |x| maps to -127, so d  */
/* may be negative. bsums[i] = sum of qs[16i .. 16i+15].                     */

static void quantize_q8_K(const float *x, void *vy, int64_t nb) {
    block_q8_K *y = vy;
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        }
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            int q = nearest_int(iscale * x[j]);
            y[b].qs[j] = (int8_t)(q < 127 ? q : 127);
        }
        for (int i = 0; i < QK_K / 16; i++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += y[b].qs[16 * i + j];
            y[b].bsums[i] = (int16_t)s;
        }
        y[b].d = 1.0f / iscale;
    }
}

static void dequantize_q8_K(const void *vx, float *y, int64_t nb) {
    const block_q8_K *x = vx;
    for (int64_t b = 0; b < nb; b++, y += QK_K) {
        for (int j = 0; j < QK_K; j++) y[j] = x[b].d * (float)x[b].qs[j];
    }
}

/* ------------------------------------------------------------------------- */
/* Q4_K and Q5_K share everything but the number of bits: 8 sub-blocks of 32 */
/* values x ~ d·sc·q - dmin·m, q in [0, nmax], 6-bit sc and m.               */

/* The 12-byte packing of eight 6-bit scales and eight 6-bit mins: bytes 0-3
 * hold sc[0..3], bytes 4-7 m[0..3], each with 2 high bits of sc/m[4..7] on
 * top; bytes 8-11 hold the low nibbles of sc[4..7] (low) and m[4..7] (high). */
static void pack_scale_min(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
    for (int j = 0; j < 4; j++) {
        out[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
}

static void unpack_scale_min(const uint8_t in[12], uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = in[j] & 63;
        m[j] = in[j + 4] & 63;
        sc[j + 4] = (uint8_t)((in[j + 8] & 0xF) | ((in[j] >> 6) << 4));
        m[j + 4] = (uint8_t)((in[j + 8] >> 4) | ((in[j + 4] >> 6) << 4));
    }
}

#define KQ_NSTEP 12 /* candidate scales per sub-block */

/* Fit x[0..31] ~ a·q - m (a >= 0, m >= 0, q in [0, nmax] integer) with the
 * smallest squared error. Candidates map the range [min(x,0), max(x)] onto
 * nmax-1 .. nmax+1 steps; for each, q is fixed and (a, -m) is the least-
 * squares line through (q, x), with m clamped at 0. Returns a; *m_out = m. */
static float fit_scale_min(const float *x, int nmax, float *m_out) {
    float lo = x[0], hi = x[0], sx = 0.0f, sx2 = 0.0f;
    for (int i = 0; i < 32; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
        sx += x[i];
        sx2 += x[i] * x[i];
    }
    if (lo > 0.0f) lo = 0.0f; /* the offset is a subtracted min >= 0 */
    if (hi - lo < 1e-30f) {   /* constant block (zero, or all equal <= 0) */
        *m_out = -lo;
        return 0.0f;
    }
    const double n = 32.0;
    double best_err = INFINITY, best_a = 0.0, best_b = lo;
    for (int k = 0; k < KQ_NSTEP; k++) {
        float iscale = ((float)nmax - 1.0f + 2.0f * (float)k / (KQ_NSTEP - 1)) / (hi - lo);
        int sl = 0, sl2 = 0;
        float sxl = 0.0f;
        for (int i = 0; i < 32; i++) {
            /* the argument is >= 0, so +0.5 and truncation rounds */
            int l = (int)(iscale * (x[i] - lo) + 0.5f);
            l = l > nmax ? nmax : l;
            sl += l;
            sl2 += l * l;
            sxl += (float)l * x[i];
        }
        /* least squares for x ~ a·l + b, then the error in closed form:
         * sum (a·l + b - x)^2 expanded over the accumulated sums */
        double D = n * sl2 - (double)sl * sl; /* exact: 0 iff all l are equal */
        double a = 0.0, b = 1.0;
        if (D > 0.0) {
            a = (n * sxl - (double)sl * sx) / D;
            b = ((double)sl2 * sx - (double)sl * sxl) / D;
        }
        if (b > 0.0) { /* the offset must be a subtraction: refit through 0 */
            if (sl2 == 0) continue;
            b = 0.0;
            a = (double)sxl / sl2;
        }
        double err = a * a * sl2 + 2.0 * a * b * sl + n * b * b - 2.0 * a * sxl - 2.0 * b * sx + sx2;
        if (err < best_err) {
            best_err = err;
            best_a = a;
            best_b = b;
        }
    }
    *m_out = (float)-best_b;
    return (float)best_a;
}

/* Shared Q4_K / Q5_K quantizer: fills d, dmin, the packed scales and the
 * 256 integer quants L[] in [0, nmax]. */
static void quantize_kq_super(const float *x, int nmax, uint16_t *d_out, uint16_t *dmin_out,
                              uint8_t scales_out[12], uint8_t L[QK_K]) {
    float sc[8], mn[8], max_sc = 0.0f, max_mn = 0.0f;
    for (int j = 0; j < 8; j++) {
        sc[j] = fit_scale_min(x + 32 * j, nmax, &mn[j]);
        max_sc = fmaxf(max_sc, sc[j]);
        max_mn = fmaxf(max_mn, mn[j]);
    }
    /* the 8 scales and 8 mins become 6-bit multiples of d and dmin */
    *d_out = q35_f2h(max_sc / 63.0f);
    *dmin_out = q35_f2h(max_mn / 63.0f);
    float d = q35_h2f(*d_out), dmin = q35_h2f(*dmin_out);
    float id = d > 0.0f ? 1.0f / d : 0.0f, idmin = dmin > 0.0f ? 1.0f / dmin : 0.0f;
    uint8_t ls[8], lm[8], tmp[32];
    for (int j = 0; j < 8; j++) {
        const float *xb = x + 32 * j;
        /* of the integers just below and above sc/d and m/dmin, keep the pair
         * whose re-quantized values give the smallest error */
        int s0 = (int)clampf(sc[j] * id, 0.0f, 62.0f), m0 = (int)clampf(mn[j] * idmin, 0.0f, 62.0f);
        float best = INFINITY;
        for (int s = s0; s <= s0 + 1; s++) {
            for (int m = m0; m <= m0 + 1; m++) {
                float dl = d * (float)s, ml = dmin * (float)m, err = 0.0f;
                float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
                for (int i = 0; i < 32; i++) {
                    int q = nearest_int(clampf((xb[i] + ml) * idl, 0.0f, (float)nmax));
                    float e = dl * (float)q - ml - xb[i];
                    tmp[i] = (uint8_t)q;
                    err += e * e;
                }
                if (err < best) {
                    best = err;
                    ls[j] = (uint8_t)s;
                    lm[j] = (uint8_t)m;
                    memcpy(L + 32 * j, tmp, 32);
                }
            }
        }
    }
    pack_scale_min(ls, lm, scales_out);
}

static void quantize_q4_K(const float *x, void *vy, int64_t nb) {
    block_q4_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        quantize_kq_super(x, 15, &y[b].d, &y[b].dmin, y[b].scales, L);
        /* chunk c of 64: low nibbles = sub-block 2c, high nibbles = 2c+1 */
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
            }
        }
    }
}

static void dequantize_q4_K(const void *vx, float *y, int64_t nb) {
    const block_q4_K *x = vx;
    for (int64_t b = 0; b < nb; b++) {
        float d = q35_h2f(x[b].d), dmin = q35_h2f(x[b].dmin);
        uint8_t sc[8], m[8];
        unpack_scale_min(x[b].scales, sc, m);
        for (int c = 0; c < 4; c++) {
            const uint8_t *q = x[b].qs + 32 * c;
            float d1 = d * sc[2 * c], m1 = dmin * m[2 * c];
            float d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void quantize_q5_K(const float *x, void *vy, int64_t nb) {
    block_q5_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        quantize_kq_super(x, 31, &y[b].d, &y[b].dmin, y[b].scales, L);
        /* low 4 bits as in Q4_K; bit 4 of sub-block s goes to bit s of qh[l] */
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                y[b].qs[32 * c + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
                y[b].qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        }
    }
}

static void dequantize_q5_K(const void *vx, float *y, int64_t nb) {
    const block_q5_K *x = vx;
    for (int64_t b = 0; b < nb; b++) {
        float d = q35_h2f(x[b].d), dmin = q35_h2f(x[b].dmin);
        uint8_t sc[8], m[8];
        unpack_scale_min(x[b].scales, sc, m);
        for (int c = 0; c < 4; c++) {
            const uint8_t *q = x[b].qs + 32 * c, *qh = x[b].qh;
            float d1 = d * sc[2 * c], m1 = dmin * m[2 * c];
            float d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((q[l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)((q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4)) - m2;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Q6_K: 16 sub-blocks of 16 values x ~ d·sc·q, q in [-32, 31], int8 sc.    */

#define Q6_NSTEP 8 /* candidate scales per sub-block */

/* Signed scale a for x[0..15] ~ a·q, q in [-32, 31]. The element with the
 * largest |x| goes to the -32 end (the longer side of the range), scaled by
 * a factor around 1; for fixed q the best a is sum(xq)/sum(q^2) and its
 * error is sum(x^2) - sum(xq)^2/sum(q^2), so we keep the largest
 * sum(xq)^2/sum(q^2). */
static float fit_scale_q6(const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 16; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    }
    if (amax < 1e-30f) return 0.0f;
    float best_num = 0.0f, best_den = 1.0f, best_a = 0.0f;
    for (int k = 0; k < Q6_NSTEP; k++) {
        float iscale = -(31.0f + 2.0f * (float)k / (Q6_NSTEP - 1)) / max;
        float sxl = 0.0f;
        int sl2 = 0;
        for (int i = 0; i < 16; i++) {
            /* shift to [0, 63] so truncation rounds, then back */
            int l = (int)clampf(iscale * x[i] + 32.5f, 0.0f, 63.0f) - 32;
            sxl += (float)l * x[i];
            sl2 += l * l;
        }
        if (sl2 > 0 && sxl * sxl * best_den > best_num * (float)sl2) {
            best_num = sxl * sxl;
            best_den = (float)sl2;
            best_a = sxl / (float)sl2;
        }
    }
    return best_a;
}

static void quantize_q6_K(const float *x, void *vy, int64_t nb) {
    block_q6_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        float sc[16], amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_scale_q6(x + 16 * j);
            if (fabsf(sc[j]) > amax) { amax = fabsf(sc[j]); max = sc[j]; }
        }
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            memset(y[b].qh, 0xAA, sizeof y[b].qh); /* q = 0 is stored as 32 = 0b100000 */
            continue;
        }
        /* int8 sub-block scales; the largest goes to -128 */
        float iscale = -128.0f / max;
        for (int j = 0; j < 16; j++) {
            int l = nearest_int(iscale * sc[j]);
            y[b].scales[j] = (int8_t)(l < 127 ? l : 127);
        }
        y[b].d = q35_f2h(1.0f / iscale);
        float d = q35_h2f(y[b].d);
        for (int j = 0; j < 16; j++) {
            float dl = d * y[b].scales[j];
            float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
            for (int i = 0; i < 16; i++) {
                float t = clampf(x[16 * j + i] * idl, -32.0f, 31.0f);
                L[16 * j + i] = (uint8_t)(nearest_int(t) + 32);
            }
        }
        /* per half of 128: ql packs elements l and l+64 (l+32 and l+96) as
         * nibbles; qh packs the top 2 bits of l, l+32, l+64, l+96 */
        for (int n = 0; n < 2; n++) {
            const uint8_t *Lh = L + 128 * n;
            uint8_t *ql = y[b].ql + 64 * n, *qh = y[b].qh + 32 * n;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                  ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

static void dequantize_q6_K(const void *vx, float *y, int64_t nb) {
    const block_q6_K *x = vx;
    for (int64_t b = 0; b < nb; b++) {
        float d = q35_h2f(x[b].d);
        for (int n = 0; n < 2; n++, y += 128) {
            const uint8_t *ql = x[b].ql + 64 * n, *qh = x[b].qh + 32 * n;
            const int8_t *sc = x[b].scales + 8 * n;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = (d * (float)sc[is + 0]) * (float)q1;
                y[l + 32] = (d * (float)sc[is + 2]) * (float)q2;
                y[l + 64] = (d * (float)sc[is + 4]) * (float)q3;
                y[l + 96] = (d * (float)sc[is + 6]) * (float)q4;
            }
        }
    }
}

/* ------------------------------------------------------------------------- */
/* Q2_K, Q3_K: 16 sub-blocks of 16 (layout in blocks.h). The quantizers are   */
/* plain (a scale per sub-block from its range, no search like ggml's         */
/* make_qkx2 / make_q3_quants): good enough for synthetic weights, and the    */
/* dequantizers are exact, so a file's F32 twin is too.                       */

static void quantize_q2_K(const float *x, void *vy, int64_t nb) {
    block_q2_K *y = vy;
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        float scale[16], mn[16], smax = 0.0f, mmax = 0.0f;
        for (int s = 0; s < 16; s++) { /* x ~ scale * q - mn, q in 0..3, mn >= 0 */
            float lo = 0.0f, hi = 0.0f;
            for (int l = 0; l < 16; l++) {
                lo = fminf(lo, x[16 * s + l]);
                hi = fmaxf(hi, x[16 * s + l]);
            }
            scale[s] = (hi - lo) / 3.0f;
            mn[s] = -lo;
            smax = fmaxf(smax, scale[s]);
            mmax = fmaxf(mmax, mn[s]);
        }
        memset(&y[b], 0, sizeof y[b]);
        y[b].d = q35_f2h(smax / 15.0f);
        y[b].dmin = q35_f2h(mmax / 15.0f);
        const float d = q35_h2f(y[b].d), dmin = q35_h2f(y[b].dmin);
        for (int s = 0; s < 16; s++) {
            const int ls = d > 0.0f ? (int)clampf((float)nearest_int(scale[s] / d), 0.0f, 15.0f) : 0;
            const int lm = dmin > 0.0f ? (int)clampf((float)nearest_int(mn[s] / dmin), 0.0f, 15.0f) : 0;
            y[b].scales[s] = (uint8_t)(ls | lm << 4);
            const float dl = d * (float)ls, ml = dmin * (float)lm;
            for (int l = 0; l < 16; l++) {
                const int i = 16 * s + l;
                const int q = dl > 0.0f ? (int)clampf((float)nearest_int((x[i] + ml) / dl), 0.0f, 3.0f) : 0;
                y[b].qs[q35_lowk_byte(i)] |= (uint8_t)(q << q35_lowk_shift(i));
            }
        }
    }
}

static void dequantize_q2_K(const void *vx, float *y, int64_t nb) {
    const block_q2_K *x = vx;
    for (int64_t b = 0; b < nb; b++, y += QK_K) {
        const float d = q35_h2f(x[b].d), dmin = q35_h2f(x[b].dmin);
        for (int i = 0; i < QK_K; i++) {
            const uint8_t sc = x[b].scales[i / 16];
            const int q = q35_lowk_bits(x[b].qs, i);
            y[i] = d * (float)(sc & 0xF) * (float)q - dmin * (float)(sc >> 4);
        }
    }
}

/* the Q3_K scale bytes from 16 six-bit values (ls in 0..63, scale ls - 32) */
static void pack_q3_K_scales(const int ls[16], uint8_t out[12]) {
    memset(out, 0, 12);
    for (int s = 0; s < 16; s++) {
        out[s % 8] |= (uint8_t)((ls[s] & 0xF) << (4 * (s / 8)));
        out[8 + s % 4] |= (uint8_t)((ls[s] >> 4) << (2 * (s / 4)));
    }
}

static void quantize_q3_K(const float *x, void *vy, int64_t nb) {
    block_q3_K *y = vy;
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        float scale[16], amax = 0.0f, max = 0.0f;
        for (int s = 0; s < 16; s++) { /* signed scale: the largest |x| goes to q = -4 */
            float sa = 0.0f, sm = 0.0f;
            for (int l = 0; l < 16; l++)
                if (fabsf(x[16 * s + l]) > sa) { sa = fabsf(x[16 * s + l]); sm = x[16 * s + l]; }
            scale[s] = sm / -4.0f;
            if (fabsf(scale[s]) > amax) { amax = fabsf(scale[s]); max = scale[s]; }
        }
        memset(&y[b], 0, sizeof y[b]);
        int ls[16];
        const float d0 = max / -32.0f;
        y[b].d = q35_f2h(d0);
        const float d = q35_h2f(y[b].d);
        for (int s = 0; s < 16; s++) ls[s] = 32 + (d != 0.0f ? (int)clampf((float)nearest_int(scale[s] / d), -32.0f, 31.0f) : 0);
        pack_q3_K_scales(ls, y[b].scales);
        for (int s = 0; s < 16; s++) {
            const float dl = d * (float)(ls[s] - 32);
            for (int l = 0; l < 16; l++) {
                const int i = 16 * s + l;
                const int q = dl != 0.0f ? (int)clampf((float)nearest_int(x[i] / dl), -4.0f, 3.0f) + 4 : 4;
                y[b].qs[q35_lowk_byte(i)] |= (uint8_t)((q & 3) << q35_lowk_shift(i));
                if (q & 4) y[b].hmask[i % 32] |= (uint8_t)(1u << q35_q3_K_hbit(i));
            }
        }
    }
}

static void dequantize_q3_K(const void *vx, float *y, int64_t nb) {
    const block_q3_K *x = vx;
    for (int64_t b = 0; b < nb; b++, y += QK_K) {
        const float d = q35_h2f(x[b].d);
        int8_t sc[16];
        q35_q3_K_scales(x[b].scales, sc);
        for (int i = 0; i < QK_K; i++) {
            y[i] = d * (float)sc[i / 16] * (float)q35_q3_K_value(&x[b], i);
        }
    }
}

/* ------------------------------------------------------------------------- */
/* IQ4_XS: 8 sub-blocks of 32 values x ~ d·(ls-32)·K[i], with the 16-entry   */
/* non-linear grid K and 6-bit ls.                                           */

/* Index of the grid value nearest to t: a branchless binary search over the
 * 15 midpoints between neighbouring grid values (ties go down). */
static const float iq4_mid[15] = {-115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
                                  7.0f,    19.0f,  31.5f,  45.5f,  61.0f,  79.0f,  101.0f};

static inline int iq4_index(float t) {
    int i = (t > iq4_mid[7]) ? 8 : 0;
    i += (t > iq4_mid[i + 3]) ? 4 : 0;
    i += (t > iq4_mid[i + 1]) ? 2 : 0;
    i += (t > iq4_mid[i]) ? 1 : 0;
    return i;
}

/* For the scale search a cheaper approximation: the nearest grid value to
 * round(t), from a table over [-128, 127] built once per call. It can only
 * differ from iq4_index within 0.5 of a midpoint, where both choices are
 * almost equally close. */
static void iq4_build_lut(int8_t lut[256]) {
    for (int i = 0; i < 256; i++) lut[i] = q35_kvalues_iq4nl[iq4_index((float)(i - 128))];
}

static inline int iq4_lut_value(const int8_t lut[256], float t) {
    return lut[nearest_int(clampf(t, -128.0f, 127.0f)) + 128];
}

/* Candidate targets for the element with the largest |x|: the grid reaches
 * -127 but only +113, so try sending it around either end. */
static const float iq4_targets[] = {-113.0f, -117.0f, -121.0f, -124.0f, -128.0f, -132.0f,
                                    -136.0f, -140.0f, 100.0f,  108.0f,  117.0f,  125.0f};

/* Signed scale a for x[0..31] ~ a·K[idx]. For each candidate the nearest
 * grid points are fixed, and the error-minimising scale is then
 * a = sum(xq)/sum(q^2), with error sum(x^2) - sum(xq)^2/sum(q^2): we keep
 * the candidate with the largest sum(xq)^2/sum(q^2). */
static float fit_scale_iq4(const float *x, const int8_t lut[256]) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 32; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    }
    if (amax < 1e-30f) return 0.0f;
    float best_num = 0.0f, best_den = 1.0f, best_a = 0.0f;
    for (size_t k = 0; k < sizeof iq4_targets / sizeof iq4_targets[0]; k++) {
        float iscale = iq4_targets[k] / max;
        float sxq = 0.0f, sq2 = 0.0f;
        for (int i = 0; i < 32; i++) {
            float q = (float)iq4_lut_value(lut, iscale * x[i]);
            sxq += q * x[i];
            sq2 += q * q;
        }
        if (sq2 > 0.0f && sxq * sxq * best_den > best_num * sq2) {
            best_num = sxq * sxq;
            best_den = sq2;
            best_a = sxq / sq2;
        }
    }
    return best_a;
}

static void quantize_iq4_xs(const float *x, void *vy, int64_t nb) {
    block_iq4_xs *y = vy;
    int8_t lut[256];
    iq4_build_lut(lut);
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        float sc[8], amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 8; j++) {
            sc[j] = fit_scale_iq4(x + 32 * j, lut);
            if (fabsf(sc[j]) > amax) { amax = fabsf(sc[j]); max = sc[j]; }
        }
        memset(&y[b], 0, sizeof y[b]);
        if (amax == 0.0f) {
            y[b].scales_h = 0xAAAA; /* every ls = 32 (0b100000): a zero scale */
            continue;
        }
        /* 6-bit signed sub-block scales l in [-32, 31]; the largest goes to -32 */
        float d = -max / 32.0f, id = 1.0f / d;
        y[b].d = q35_f2h(d);
        float dh = q35_h2f(y[b].d);
        for (int j = 0; j < 8; j++) {
            int l = nearest_int(clampf(id * sc[j], -32.0f, 31.0f));
            int ls = l + 32;
            y[b].scales_l[j / 2] |= (uint8_t)((ls & 0xF) << (4 * (j % 2)));
            y[b].scales_h |= (uint16_t)((ls >> 4) << (2 * j));
            /* re-pick the grid points for the scale as it will be decoded */
            float dl = dh * (float)l;
            float idl = dl != 0.0f ? 1.0f / dl : 0.0f;
            const float *xb = x + 32 * j;
            uint8_t *qs = y[b].qs + 16 * j;
            for (int i = 0; i < 16; i++) {
                qs[i] = (uint8_t)(iq4_index(xb[i] * idl) | (iq4_index(xb[i + 16] * idl) << 4));
            }
        }
    }
}

static void dequantize_iq4_xs(const void *vx, float *y, int64_t nb) {
    const block_iq4_xs *x = vx;
    for (int64_t b = 0; b < nb; b++) {
        float d = q35_h2f(x[b].d);
        for (int j = 0; j < 8; j++, y += 32) {
            int ls = q35_iq4_xs_scale(&x[b], j);
            float dl = d * (float)(ls - 32);
            const uint8_t *qs = x[b].qs + 16 * j;
            for (int i = 0; i < 16; i++) {
                y[i] = dl * (float)q35_kvalues_iq4nl[qs[i] & 0xF];
                y[i + 16] = dl * (float)q35_kvalues_iq4nl[qs[i] >> 4];
            }
        }
    }
}

/* IQ4_NL: one 32-value block of IQ4_XS with an f16 scale of its own: the
 * scale fit of IQ4_XS's sub-blocks, then the grid points for the stored scale */
static void quantize_iq4_nl(const float *x, void *vy, int64_t nb) {
    block_iq4_nl *y = vy;
    int8_t lut[256];
    iq4_build_lut(lut);
    for (int64_t b = 0; b < nb; b++, x += 32) {
        y[b].d = q35_f2h(fit_scale_iq4(x, lut));
        const float d = q35_h2f(y[b].d), id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < 16; j++)
            y[b].qs[j] = (uint8_t)(iq4_index(x[j] * id) | (iq4_index(x[j + 16] * id) << 4));
    }
}

static void dequantize_iq4_nl(const void *vx, float *y, int64_t nb) {
    const block_iq4_nl *x = vx;
    for (int64_t b = 0; b < nb; b++, y += 32) {
        const float d = q35_h2f(x[b].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)q35_kvalues_iq4nl[x[b].qs[j] & 0xF];
            y[j + 16] = d * (float)q35_kvalues_iq4nl[x[b].qs[j] >> 4];
        }
    }
}

/* ------------------------------------------------------------------------- */
/* MXFP4 and NVFP4: e2m1 codes (q35_kvalues_fp4) under a shared scale.       */
/* As ggml's quantize_row_{mx,nv}fp4_ref: the scale from the block's (MXFP4) */
/* or sub-block's (NVFP4) max |x|, then the nearest code for each value.     */

static uint8_t nearest_fp4(float x, float d) {
    int best = 0;
    float err = fabsf(q35_kvalues_fp4[0] * d - x);
    for (int i = 1; i < 16; i++) {
        const float e = fabsf(q35_kvalues_fp4[i] * d - x);
        if (e < err) { best = i; err = e; }
    }
    return (uint8_t)best;
}

static void quantize_mxfp4(const float *x, void *vy, int64_t nb) {
    block_mxfp4 *y = vy;
    for (int64_t i = 0; i < nb; i++, x += QK_MXFP4) {
        float amax = 0.0f;
        for (int j = 0; j < QK_MXFP4; j++) amax = fmaxf(amax, fabsf(x[j]));
        /* the largest code (6 = 12/2) times 2^(e-127)/2 lands near amax: e = floor(log2 amax) - 2 + 127 */
        const uint8_t e = amax > 0.0f ? (uint8_t)(floorf(log2f(amax)) - 2 + 127) : 0;
        const float d = q35_e8m0_half(e);
        y[i].e = e;
        for (int j = 0; j < QK_MXFP4 / 2; j++)
            y[i].qs[j] = (uint8_t)(nearest_fp4(x[j], d) | nearest_fp4(x[j + QK_MXFP4 / 2], d) << 4);
    }
}

static void dequantize_mxfp4(const void *vx, float *y, int64_t nb) {
    const block_mxfp4 *x = vx;
    for (int64_t i = 0; i < nb; i++, y += QK_MXFP4) {
        const float d = q35_e8m0_half(x[i].e);
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            y[j] = d * q35_kvalues_fp4[x[i].qs[j] & 0xF];
            y[j + QK_MXFP4 / 2] = d * q35_kvalues_fp4[x[i].qs[j] >> 4];
        }
    }
}

static void quantize_nvfp4(const float *x, void *vy, int64_t nb) {
    block_nvfp4 *y = vy;
    for (int64_t i = 0; i < nb; i++) {
        for (int s = 0; s < QK_NVFP4 / QK_NVFP4_SUB; s++, x += QK_NVFP4_SUB) {
            float amax = 0.0f;
            for (int j = 0; j < QK_NVFP4_SUB; j++) amax = fmaxf(amax, fabsf(x[j]));
            const uint8_t ue = q35_f32_to_ue4m3(amax / 6.0f); /* e2m1's largest value, 6, maps to amax */
            const float d = q35_ue4m3_half(ue);
            y[i].d[s] = ue;
            for (int j = 0; j < QK_NVFP4_SUB / 2; j++)
                y[i].qs[s * QK_NVFP4_SUB / 2 + j] =
                    (uint8_t)(nearest_fp4(x[j], d) | nearest_fp4(x[j + QK_NVFP4_SUB / 2], d) << 4);
        }
    }
}

static void dequantize_nvfp4(const void *vx, float *y, int64_t nb) {
    const block_nvfp4 *x = vx;
    for (int64_t i = 0; i < nb; i++) {
        for (int s = 0; s < QK_NVFP4 / QK_NVFP4_SUB; s++, y += QK_NVFP4_SUB) {
            const float d = q35_ue4m3_half(x[i].d[s]);
            const uint8_t *q = x[i].qs + s * QK_NVFP4_SUB / 2;
            for (int j = 0; j < QK_NVFP4_SUB / 2; j++) {
                y[j] = d * q35_kvalues_fp4[q[j] & 0xF];
                y[j + QK_NVFP4_SUB / 2] = d * q35_kvalues_fp4[q[j] >> 4];
            }
        }
    }
}

/* ------------------------------------------------------------------------- */
/* The type table and the public entry points.                              */

typedef struct {
    int type;
    int64_t elems, bytes;
    void (*quantize)(const float *x, void *y, int64_t nblocks);
    void (*dequantize)(const void *x, float *y, int64_t nblocks);
} type_info;

static const type_info TYPES[] = {
    {Q35_TYPE_F32, 1, 4, quantize_f32, dequantize_f32},
    {Q35_TYPE_F16, 1, 2, quantize_f16, dequantize_f16},
    {Q35_TYPE_BF16, 1, 2, quantize_bf16, dequantize_bf16},
    {Q35_TYPE_Q4_0, QK4_0, sizeof(block_q4_0), quantize_q4_0, dequantize_q4_0},
    {Q35_TYPE_Q8_0, QK8_0, sizeof(block_q8_0), quantize_q8_0, dequantize_q8_0},
    {Q35_TYPE_Q4_1, 32, sizeof(block_q4_1), quantize_q4_1, dequantize_q4_1},
    {Q35_TYPE_Q5_0, 32, sizeof(block_q5_0), quantize_q5_0, dequantize_q5_0},
    {Q35_TYPE_Q5_1, 32, sizeof(block_q5_1), quantize_q5_1, dequantize_q5_1},
    {Q35_TYPE_Q8_1, 32, sizeof(block_q8_1), quantize_q8_1, dequantize_q8_1},
    {Q35_TYPE_IQ4_NL, 32, sizeof(block_iq4_nl), quantize_iq4_nl, dequantize_iq4_nl},
    {Q35_TYPE_Q2_K, QK_K, sizeof(block_q2_K), quantize_q2_K, dequantize_q2_K},
    {Q35_TYPE_Q3_K, QK_K, sizeof(block_q3_K), quantize_q3_K, dequantize_q3_K},
    {Q35_TYPE_Q4_K, QK_K, sizeof(block_q4_K), quantize_q4_K, dequantize_q4_K},
    {Q35_TYPE_Q5_K, QK_K, sizeof(block_q5_K), quantize_q5_K, dequantize_q5_K},
    {Q35_TYPE_Q6_K, QK_K, sizeof(block_q6_K), quantize_q6_K, dequantize_q6_K},
    {Q35_TYPE_Q8_K, QK_K, sizeof(block_q8_K), quantize_q8_K, dequantize_q8_K},
    {Q35_TYPE_IQ4_XS, QK_K, sizeof(block_iq4_xs), quantize_iq4_xs, dequantize_iq4_xs},
    {Q35_TYPE_MXFP4, QK_MXFP4, sizeof(block_mxfp4), quantize_mxfp4, dequantize_mxfp4},
    {Q35_TYPE_NVFP4, QK_NVFP4, sizeof(block_nvfp4), quantize_nvfp4, dequantize_nvfp4},
    /* codebook_formats.c; the IQ types without a quantizer (q35_random_blocks) */
    {Q35_TYPE_IQ2_XXS, QK_K, 66, NULL, q35_dequantize_iq2_xxs},
    {Q35_TYPE_IQ2_XS, QK_K, 74, NULL, q35_dequantize_iq2_xs},
    {Q35_TYPE_IQ2_S, QK_K, 82, NULL, q35_dequantize_iq2_s},
    {Q35_TYPE_IQ3_XXS, QK_K, 98, NULL, q35_dequantize_iq3_xxs},
    {Q35_TYPE_IQ3_S, QK_K, 110, NULL, q35_dequantize_iq3_s},
    {Q35_TYPE_IQ1_S, QK_K, 50, NULL, q35_dequantize_iq1_s},
    {Q35_TYPE_IQ1_M, QK_K, 56, NULL, q35_dequantize_iq1_m},
    {Q35_TYPE_TQ1_0, QK_K, 54, q35_quantize_tq1_0, q35_dequantize_tq1_0},
    {Q35_TYPE_TQ2_0, QK_K, 66, q35_quantize_tq2_0, q35_dequantize_tq2_0},
};

static const type_info *find_type(int type) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        if (TYPES[i].type == type) return &TYPES[i];
    }
    return NULL;
}

int64_t q35_type_block_elems(int type) {
    const type_info *t = find_type(type);
    return t ? t->elems : 0;
}

int64_t q35_type_block_bytes(int type) {
    const type_info *t = find_type(type);
    return t ? t->bytes : 0;
}

/* Rows are packed back to back and each holds whole blocks, so nrows rows
 * are simply nrows * ncols / elems consecutive blocks. */
int q35_quantize(int type, const float *src, void *dst, int64_t nrows, int64_t ncols) {
    const type_info *t = find_type(type);
    if (!t || !t->quantize || ncols <= 0 || nrows < 0 || ncols % t->elems != 0) return -1;
    t->quantize(src, dst, nrows * (ncols / t->elems));
    return 0;
}

int q35_dequantize(int type, const void *src, float *dst, int64_t nrows, int64_t ncols) {
    const type_info *t = find_type(type);
    if (!t || ncols <= 0 || nrows < 0 || ncols % t->elems != 0) return -1;
    t->dequantize(src, dst, nrows * (ncols / t->elems));
    return 0;
}

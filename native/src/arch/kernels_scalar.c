/* Scalar reference kernels: the meaning of every entry of q35_kernels.
 * SIMD variants (x86/kernels_avx2.c, x86/kernels_avx512.c,
 * arm/kernels_neon.c) must agree with these within float rounding. */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "codebooks.h"
#include "fp16.h"
#include "fp4.h"
#include "kernels.h"
#include "arch/vecops.h"

static float dot_f32_scalar(const float *a, const float *b, int64_t n) {
    /* 8 partial sums, like an 8-lane vector, to keep the rounding pattern
     * comparable with the SIMD variants */
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (int j = 0; j < 8; j++) s += acc[j];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Q8_0 activation quantization as ggml-cpu's x86 quantize_row_q8_0 (what llama.cpp runs on
 * activations and on a Q8_0 KV cache there): per 32 values d = max|x|/127 stored as f16,
 * q = x * (127 / max|x|) rounded half to even (rintf, the default rounding mode). The weight
 * quantizer (quant.c) stays gguf-py's: x / d rounded half away from zero. */
static void quantize_row_q8_0_scalar(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *xb = x + b * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = q35_f2h(d);
        for (int j = 0; j < QK8_0; j++) y[b].qs[j] = (int8_t)rintf(xb[j] * id);
    }
}

static float dot_q8_0_q8_0_scalar(const void *w, const void *a, int64_t n) {
    const block_q8_0 *x = w, *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QK8_0; j++) acc += (int32_t)x[b].qs[j] * y[b].qs[j];
        s += q35_h2f(x[b].d) * q35_h2f(y[b].d) * (float)acc;
    }
    return s;
}

/* ------------------------------------------------------------------------- */
/* Activation converters (from_float).                                       */

static void from_float_f32_scalar(const float *x, void *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
}

static void from_float_f16_scalar(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = q35_f2h(x[i]);
}

static void from_float_bf16_scalar(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = q35_f2bf(x[i]);
}

/* ------------------------------------------------------------------------- */
/* KV cache readers (to_float): the exact values of the stored rows.         */

static void to_float_f32_scalar(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }

static void to_float_f16_scalar(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = q35_h2f(h[i]);
}

static void to_float_bf16_scalar(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = q35_bf2f(h[i]);
}

/* Q8_0: y = d * q per block of 32 */
static void to_float_q8_0_scalar(const void *x, float *y, int64_t n) {
    const block_q8_0 *b = x;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float d = q35_h2f(b[i].d);
        for (int j = 0; j < QK8_0; j++) y[i * QK8_0 + j] = d * (float)b[i].qs[j];
    }
}

/* Q8_K activation quantization (ggml's quantize_row_q8_K): the format's own quantizer in quant.c */
static void from_float_q8_K_scalar(const float *x, void *dst, int64_t n) {
    q35_quantize(Q35_TYPE_Q8_K, x, dst, 1, n);
}

/* Q8_1 activation quantization (Q4_1 and Q5_1 pair with it): the format's own quantizer in quant.c */
static void from_float_q8_1_scalar(const float *x, void *dst, int64_t n) {
    q35_quantize(Q35_TYPE_Q8_1, x, dst, 1, n);
}

/* ------------------------------------------------------------------------- */
/* The other 32-value blocks, as ggml's generic dots: per block the integer   */
/* sum of q_j qa_j, then dW dA sumi (+ m s, the min against Q8_1's s).        */

static int32_t dot32(const int q[32], const int8_t *qa) {
    int32_t s = 0;
    for (int j = 0; j < 32; j++) s += q[j] * qa[j];
    return s;
}

static float vec_dot_q4_1_q8_1_scalar(const void *w, const void *a, int64_t n) {
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        int q[32];
        for (int j = 0; j < 16; j++) {
            q[j] = x[b].qs[j] & 0xF;
            q[j + 16] = x[b].qs[j] >> 4;
        }
        s += q35_h2f(x[b].d) * q35_h2f(y[b].d) * (float)dot32(q, y[b].qs) + q35_h2f(x[b].m) * q35_h2f(y[b].s);
    }
    return s;
}

static float vec_dot_q5_0_q8_0_scalar(const void *w, const void *a, int64_t n) {
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        int q[32];
        q35_q5_codes(x[b].qs, x[b].qh, q);
        for (int j = 0; j < 32; j++) q[j] -= 16;
        s += q35_h2f(x[b].d) * q35_h2f(y[b].d) * (float)dot32(q, y[b].qs);
    }
    return s;
}

static float vec_dot_q5_1_q8_1_scalar(const void *w, const void *a, int64_t n) {
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        int q[32];
        q35_q5_codes(x[b].qs, x[b].qh, q);
        s += q35_h2f(x[b].d) * q35_h2f(y[b].d) * (float)dot32(q, y[b].qs) + q35_h2f(x[b].m) * q35_h2f(y[b].s);
    }
    return s;
}

static float vec_dot_iq4_nl_q8_0_scalar(const void *w, const void *a, int64_t n) {
    const block_iq4_nl *x = w;
    const block_q8_0 *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        int q[32];
        for (int j = 0; j < 16; j++) {
            q[j] = q35_kvalues_iq4nl[x[b].qs[j] & 0xF];
            q[j + 16] = q35_kvalues_iq4nl[x[b].qs[j] >> 4];
        }
        /* llama.cpp runs IQ4_NL repacked (repack.cpp iq4_nl_8x8): one fused multiply-add per block */
        s = fmaf((float)dot32(q, y[b].qs), q35_h2f(x[b].d) * q35_h2f(y[b].d), s);
    }
    return s;
}

/* Q2_K and Q3_K x Q8_K (layouts in blocks.h): per sub-block s of 16 the integer sum of
 * q qa times its scale, summed over the super-block; Q2_K's mins come in through the
 * activation block sums, - dA dmin sum_s m_s bsum_s. */
static float vec_dot_q2_K_q8_K_scalar(const void *w, const void *a, int64_t n) {
    const block_q2_K *x = w;
    const block_q8_K *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t sumi = 0, summ = 0;
        for (int sb = 0; sb < 16; sb++) {
            int32_t isub = 0;
            for (int l = 0; l < 16; l++) {
                const int i = 16 * sb + l;
                isub += q35_lowk_bits(x[b].qs, i) * y[b].qs[i];
            }
            sumi += (x[b].scales[sb] & 0xF) * isub;
            summ += (x[b].scales[sb] >> 4) * y[b].bsums[sb];
        }
        s += y[b].d * q35_h2f(x[b].d) * (float)sumi - y[b].d * q35_h2f(x[b].dmin) * (float)summ;
    }
    return s;
}

static float vec_dot_q3_K_q8_K_scalar(const void *w, const void *a, int64_t n) {
    const block_q3_K *x = w;
    const block_q8_K *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int8_t sc[16];
        q35_q3_K_scales(x[b].scales, sc);
        int32_t sumi = 0;
        for (int sb = 0; sb < 16; sb++) {
            int32_t isub = 0;
            for (int l = 0; l < 16; l++) {
                const int i = 16 * sb + l;
                isub += q35_q3_K_value(&x[b], i) * y[b].qs[i];
            }
            sumi += sc[sb] * isub;
        }
        s += y[b].d * q35_h2f(x[b].d) * (float)sumi;
    }
    return s;
}

/* The codebook and ternary types x Q8_K (codebooks.h): per block the exact
 * integer sum_s ls_s sum_{i in s} v_i qa_i, times dW dA, as ggml's generic dots;
 * the total times the type's c at the end (a power of two: exact). */
static float codebook_dot_scalar(int type, const void *w, const void *a, int64_t n) {
    int block_bytes;
    const q35_codebook_decode_fn decode = q35_codebook_decoder(type, &block_bytes);
    const block_q8_K *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        q35_codebook_block cb;
        decode((const uint8_t *)w + b * block_bytes, &cb);
        int32_t isum = 0;
        for (int sb = 0; sb < 16; sb++) {
            int32_t sub = 0;
            for (int l = 0; l < 16; l++) sub += cb.v[16 * sb + l] * y[b].qs[16 * sb + l];
            isum += cb.ls[sb] * sub;
        }
        s += cb.d * y[b].d * (float)isum;
    }
    return s * q35_codebook_c(type);
}

#define CODEBOOK_DOT(name, type) \
    static float name(const void *w, const void *a, int64_t n) { return codebook_dot_scalar(type, w, a, n); }
CODEBOOK_DOT(vec_dot_iq2_xxs_q8_K_scalar, Q35_TYPE_IQ2_XXS)
CODEBOOK_DOT(vec_dot_iq2_xs_q8_K_scalar, Q35_TYPE_IQ2_XS)
CODEBOOK_DOT(vec_dot_iq2_s_q8_K_scalar, Q35_TYPE_IQ2_S)
CODEBOOK_DOT(vec_dot_iq3_xxs_q8_K_scalar, Q35_TYPE_IQ3_XXS)
CODEBOOK_DOT(vec_dot_iq3_s_q8_K_scalar, Q35_TYPE_IQ3_S)
CODEBOOK_DOT(vec_dot_iq1_s_q8_K_scalar, Q35_TYPE_IQ1_S)
CODEBOOK_DOT(vec_dot_iq1_m_q8_K_scalar, Q35_TYPE_IQ1_M)
CODEBOOK_DOT(vec_dot_tq1_0_q8_K_scalar, Q35_TYPE_TQ1_0)
CODEBOOK_DOT(vec_dot_tq2_0_q8_K_scalar, Q35_TYPE_TQ2_0)
#undef CODEBOOK_DOT

/* ------------------------------------------------------------------------- */
/* Dot products: one weight row with one activation row (q35_act_type).      */
/* Float rows accumulate in double, like ggml's generic vec_dot_f32/f16/bf16. */

static float vec_dot_f32_scalar(const void *w, const void *a, int64_t n) {
    const float *x = w, *y = a;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)(x[i] * y[i]);
    return (float)s;
}

static float vec_dot_f16_scalar(const void *w, const void *a, int64_t n) {
    const uint16_t *x = w, *y = a;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)(q35_h2f(x[i]) * q35_h2f(y[i]));
    return (float)s;
}

static float vec_dot_bf16_scalar(const void *w, const void *a, int64_t n) {
    const uint16_t *x = w, *y = a;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)(q35_bf2f(x[i]) * q35_bf2f(y[i]));
    return (float)s;
}

/* Q4_0 x Q8_0: sum_b dW*da * sum_j (q_j - 8) * qa_j; the low nibble of byte j
 * is element j, the high nibble element j + 16. */
static float vec_dot_q4_0_q8_0_scalar(const void *w, const void *a, int64_t n) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            acc += ((x[b].qs[j] & 0xF) - 8) * y[b].qs[j];
            acc += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
        }
        s += q35_h2f(x[b].d) * q35_h2f(y[b].d) * (float)acc;
    }
    return s;
}

/* MXFP4 x Q8_0: sum_b dy_b * e8m0_half(e_b) * sum_j K[code_j] * qa_j (ggml's order: the two
 * scales multiplied first) */
static float vec_dot_mxfp4_q8_0_scalar(const void *w, const void *a, int64_t n) {
    const block_mxfp4 *x = w;
    const block_q8_0 *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK_MXFP4; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            acc += q35_kvalues_fp4[x[b].qs[j] & 0xF] * y[b].qs[j];
            acc += q35_kvalues_fp4[x[b].qs[j] >> 4] * y[b].qs[j + QK_MXFP4 / 2];
        }
        s += q35_h2f(y[b].d) * q35_e8m0_half(x[b].e) * (float)acc;
    }
    return s;
}

/* NVFP4 x Q8_0: a 64-value block spans two Q8_0 blocks; each 16-value sub-block s has its own
 * UE4M3 scale: sum dy * ue4m3_half(d_s) * sum_j K[code_j] * qa_j */
static float vec_dot_nvfp4_q8_0_scalar(const void *w, const void *a, int64_t n) {
    const block_nvfp4 *x = w;
    const block_q8_0 *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK_NVFP4; b++) {
        for (int sb = 0; sb < QK_NVFP4 / QK_NVFP4_SUB; sb++) {
            const block_q8_0 *yb = &y[2 * b + sb / 2];
            const int8_t *qa = yb->qs + (sb % 2) * QK_NVFP4_SUB;
            const uint8_t *q = x[b].qs + sb * QK_NVFP4_SUB / 2;
            int32_t lo = 0, hi = 0;
            for (int j = 0; j < QK_NVFP4_SUB / 2; j++) {
                lo += qa[j] * q35_kvalues_fp4[q[j] & 0xF];
                hi += qa[j + QK_NVFP4_SUB / 2] * q35_kvalues_fp4[q[j] >> 4];
            }
            s += q35_h2f(yb->d) * q35_ue4m3_half(x[b].d[sb]) * (float)(lo + hi);
        }
    }
    return s;
}

/* the 6-bit scales and mins of Q4_K / Q5_K (docs/qwen35.md §4.1) */
static void k_scale_min(const uint8_t *q, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K x Q8_K, per super-block:
 *   da * (dW * sum_j sc_j * sum_{l in j} q_l qa_l - dmin * sum_j m_j (bsum_2j + bsum_2j+1)) */
static float vec_dot_q4_K_q8_K_scalar(const void *w, const void *a, int64_t n) {
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t sumq = 0, summ = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            int sc, m;
            k_scale_min(x[b].scales, j, &sc, &m);
            /* sub-block j: chunk j/2, low nibbles for even j, high for odd */
            const uint8_t *qs = x[b].qs + 32 * (j / 2);
            const int8_t *qa = y[b].qs + 32 * j;
            const int shift = 4 * (j & 1);
            int32_t acc = 0;
            for (int l = 0; l < 32; l++) acc += ((qs[l] >> shift) & 0xF) * qa[l];
            sumq += sc * acc;
            summ += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        s += y[b].d * (q35_h2f(x[b].d) * (float)sumq - q35_h2f(x[b].dmin) * (float)summ);
    }
    return s;
}

/* Q5_K x Q8_K: as Q4_K with the fifth bit of sub-block j in bit j of qh[l]. */
static float vec_dot_q5_K_q8_K_scalar(const void *w, const void *a, int64_t n) {
    const block_q5_K *x = w;
    const block_q8_K *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t sumq = 0, summ = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            int sc, m;
            k_scale_min(x[b].scales, j, &sc, &m);
            const uint8_t *qs = x[b].qs + 32 * (j / 2);
            const int8_t *qa = y[b].qs + 32 * j;
            const int shift = 4 * (j & 1);
            int32_t acc = 0;
            for (int l = 0; l < 32; l++) {
                const int q = ((qs[l] >> shift) & 0xF) | (((x[b].qh[l] >> j) & 1) << 4);
                acc += q * qa[l];
            }
            sumq += sc * acc;
            summ += m * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        s += y[b].d * (q35_h2f(x[b].d) * (float)sumq - q35_h2f(x[b].dmin) * (float)summ);
    }
    return s;
}

/* Q6_K x Q8_K: da * dW * sum_{j<16} sc_j * sum_{l in j} (q_l - 32) * qa_l */
static float vec_dot_q6_K_q8_K_scalar(const void *w, const void *a, int64_t n) {
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int8_t q[QK_K]; /* the 256 quants minus 32, in element order */
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[b].ql + 64 * h, *qh = x[b].qh + 32 * h;
            int8_t *o = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                o[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                o[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int32_t sumq = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int32_t acc = 0;
            for (int l = 0; l < 16; l++) acc += q[16 * j + l] * y[b].qs[16 * j + l];
            sumq += x[b].scales[j] * acc;
        }
        s += y[b].d * q35_h2f(x[b].d) * (float)sumq;
    }
    return s;
}

/* IQ4_XS x Q8_K: da * dW * sum_ib (ls_ib - 32) * sum_{l in ib} K[nibble_l] * qa_l */
static float vec_dot_iq4_xs_q8_K_scalar(const void *w, const void *a, int64_t n) {
    const block_iq4_xs *x = w;
    const block_q8_K *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32_t sumq = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = q35_iq4_xs_scale(&x[b], ib);
            const uint8_t *qs = x[b].qs + 16 * ib;
            const int8_t *qa = y[b].qs + 32 * ib;
            int32_t acc = 0;
            for (int j = 0; j < 16; j++) {
                acc += q35_kvalues_iq4nl[qs[j] & 0xF] * qa[j];
                acc += q35_kvalues_iq4nl[qs[j] >> 4] * qa[j + 16];
            }
            sumq += (ls - 32) * acc;
        }
        s += y[b].d * q35_h2f(x[b].d) * (float)sumq;
    }
    return s;
}

/* ------------------------------------------------------------------------- */
/* vec_dot4: one weight row with 4 activation rows, by definition 4 vec_dots. */

#define VEC_DOT4_SCALAR(name, dot)                                                              \
    static void name(const void *w, const void *a, int64_t a_stride, int64_t n, float *out) {   \
        for (int r = 0; r < 4; r++) out[r] = dot(w, (const uint8_t *)a + r * a_stride, n);      \
    }
VEC_DOT4_SCALAR(vec_dot4_f32_scalar, vec_dot_f32_scalar)
VEC_DOT4_SCALAR(vec_dot4_f16_scalar, vec_dot_f16_scalar)
VEC_DOT4_SCALAR(vec_dot4_bf16_scalar, vec_dot_bf16_scalar)
VEC_DOT4_SCALAR(vec_dot4_q4_0_q8_0_scalar, vec_dot_q4_0_q8_0_scalar)
VEC_DOT4_SCALAR(vec_dot4_q8_0_q8_0_scalar, dot_q8_0_q8_0_scalar)
VEC_DOT4_SCALAR(vec_dot4_q4_K_q8_K_scalar, vec_dot_q4_K_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_q5_K_q8_K_scalar, vec_dot_q5_K_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_q6_K_q8_K_scalar, vec_dot_q6_K_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_iq4_xs_q8_K_scalar, vec_dot_iq4_xs_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_mxfp4_q8_0_scalar, vec_dot_mxfp4_q8_0_scalar)
VEC_DOT4_SCALAR(vec_dot4_nvfp4_q8_0_scalar, vec_dot_nvfp4_q8_0_scalar)
VEC_DOT4_SCALAR(vec_dot4_q4_1_q8_1_scalar, vec_dot_q4_1_q8_1_scalar)
VEC_DOT4_SCALAR(vec_dot4_q5_0_q8_0_scalar, vec_dot_q5_0_q8_0_scalar)
VEC_DOT4_SCALAR(vec_dot4_q5_1_q8_1_scalar, vec_dot_q5_1_q8_1_scalar)
VEC_DOT4_SCALAR(vec_dot4_iq4_nl_q8_0_scalar, vec_dot_iq4_nl_q8_0_scalar)
VEC_DOT4_SCALAR(vec_dot4_q2_K_q8_K_scalar, vec_dot_q2_K_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_q3_K_q8_K_scalar, vec_dot_q3_K_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_iq2_xxs_q8_K_scalar, vec_dot_iq2_xxs_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_iq2_xs_q8_K_scalar, vec_dot_iq2_xs_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_iq2_s_q8_K_scalar, vec_dot_iq2_s_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_iq3_xxs_q8_K_scalar, vec_dot_iq3_xxs_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_iq3_s_q8_K_scalar, vec_dot_iq3_s_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_iq1_s_q8_K_scalar, vec_dot_iq1_s_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_iq1_m_q8_K_scalar, vec_dot_iq1_m_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_tq1_0_q8_K_scalar, vec_dot_tq1_0_q8_K_scalar)
VEC_DOT4_SCALAR(vec_dot4_tq2_0_q8_K_scalar, vec_dot_tq2_0_q8_K_scalar)
#undef VEC_DOT4_SCALAR

void q35_dn_fused(const q35_dn_head *h); /* engine/deltanet.c: the reference */


const q35_kernels q35_kernels_scalar = {
    .name = "scalar",
    Q35_VECOPS_ENTRIES(scalar),
    .dn_fused = q35_dn_fused,
    .dot_f32 = dot_f32_scalar,
    .from_float = {
        [Q35_TYPE_F32] = from_float_f32_scalar,
        [Q35_TYPE_F16] = from_float_f16_scalar,
        [Q35_TYPE_BF16] = from_float_bf16_scalar,
        [Q35_TYPE_Q8_0] = quantize_row_q8_0_scalar,
        [Q35_TYPE_Q8_K] = from_float_q8_K_scalar,
        [Q35_TYPE_Q8_1] = from_float_q8_1_scalar,
    },
    .to_float = {
        [Q35_TYPE_F32] = to_float_f32_scalar,
        [Q35_TYPE_F16] = to_float_f16_scalar,
        [Q35_TYPE_BF16] = to_float_bf16_scalar,
        [Q35_TYPE_Q8_0] = to_float_q8_0_scalar,
    },
    .vec_dot = {
        [Q35_TYPE_F32] = vec_dot_f32_scalar,
        [Q35_TYPE_F16] = vec_dot_f16_scalar,
        [Q35_TYPE_BF16] = vec_dot_bf16_scalar,
        [Q35_TYPE_Q4_0] = vec_dot_q4_0_q8_0_scalar,
        [Q35_TYPE_Q8_0] = dot_q8_0_q8_0_scalar,
        [Q35_TYPE_Q4_K] = vec_dot_q4_K_q8_K_scalar,
        [Q35_TYPE_Q5_K] = vec_dot_q5_K_q8_K_scalar,
        [Q35_TYPE_Q6_K] = vec_dot_q6_K_q8_K_scalar,
        [Q35_TYPE_IQ4_XS] = vec_dot_iq4_xs_q8_K_scalar,
        [Q35_TYPE_MXFP4] = vec_dot_mxfp4_q8_0_scalar,
        [Q35_TYPE_NVFP4] = vec_dot_nvfp4_q8_0_scalar,
        [Q35_TYPE_Q4_1] = vec_dot_q4_1_q8_1_scalar,
        [Q35_TYPE_Q5_0] = vec_dot_q5_0_q8_0_scalar,
        [Q35_TYPE_Q5_1] = vec_dot_q5_1_q8_1_scalar,
        [Q35_TYPE_IQ4_NL] = vec_dot_iq4_nl_q8_0_scalar,
        [Q35_TYPE_Q2_K] = vec_dot_q2_K_q8_K_scalar,
        [Q35_TYPE_Q3_K] = vec_dot_q3_K_q8_K_scalar,
        [Q35_TYPE_IQ2_XXS] = vec_dot_iq2_xxs_q8_K_scalar,
        [Q35_TYPE_IQ2_XS] = vec_dot_iq2_xs_q8_K_scalar,
        [Q35_TYPE_IQ2_S] = vec_dot_iq2_s_q8_K_scalar,
        [Q35_TYPE_IQ3_XXS] = vec_dot_iq3_xxs_q8_K_scalar,
        [Q35_TYPE_IQ3_S] = vec_dot_iq3_s_q8_K_scalar,
        [Q35_TYPE_IQ1_S] = vec_dot_iq1_s_q8_K_scalar,
        [Q35_TYPE_IQ1_M] = vec_dot_iq1_m_q8_K_scalar,
        [Q35_TYPE_TQ1_0] = vec_dot_tq1_0_q8_K_scalar,
        [Q35_TYPE_TQ2_0] = vec_dot_tq2_0_q8_K_scalar,
    },
    .vec_dot4 = {
        [Q35_TYPE_F32] = vec_dot4_f32_scalar,
        [Q35_TYPE_F16] = vec_dot4_f16_scalar,
        [Q35_TYPE_BF16] = vec_dot4_bf16_scalar,
        [Q35_TYPE_Q4_0] = vec_dot4_q4_0_q8_0_scalar,
        [Q35_TYPE_Q8_0] = vec_dot4_q8_0_q8_0_scalar,
        [Q35_TYPE_Q4_K] = vec_dot4_q4_K_q8_K_scalar,
        [Q35_TYPE_Q5_K] = vec_dot4_q5_K_q8_K_scalar,
        [Q35_TYPE_Q6_K] = vec_dot4_q6_K_q8_K_scalar,
        [Q35_TYPE_IQ4_XS] = vec_dot4_iq4_xs_q8_K_scalar,
        [Q35_TYPE_MXFP4] = vec_dot4_mxfp4_q8_0_scalar,
        [Q35_TYPE_NVFP4] = vec_dot4_nvfp4_q8_0_scalar,
        [Q35_TYPE_Q4_1] = vec_dot4_q4_1_q8_1_scalar,
        [Q35_TYPE_Q5_0] = vec_dot4_q5_0_q8_0_scalar,
        [Q35_TYPE_Q5_1] = vec_dot4_q5_1_q8_1_scalar,
        [Q35_TYPE_IQ4_NL] = vec_dot4_iq4_nl_q8_0_scalar,
        [Q35_TYPE_Q2_K] = vec_dot4_q2_K_q8_K_scalar,
        [Q35_TYPE_Q3_K] = vec_dot4_q3_K_q8_K_scalar,
        [Q35_TYPE_IQ2_XXS] = vec_dot4_iq2_xxs_q8_K_scalar,
        [Q35_TYPE_IQ2_XS] = vec_dot4_iq2_xs_q8_K_scalar,
        [Q35_TYPE_IQ2_S] = vec_dot4_iq2_s_q8_K_scalar,
        [Q35_TYPE_IQ3_XXS] = vec_dot4_iq3_xxs_q8_K_scalar,
        [Q35_TYPE_IQ3_S] = vec_dot4_iq3_s_q8_K_scalar,
        [Q35_TYPE_IQ1_S] = vec_dot4_iq1_s_q8_K_scalar,
        [Q35_TYPE_IQ1_M] = vec_dot4_iq1_m_q8_K_scalar,
        [Q35_TYPE_TQ1_0] = vec_dot4_tq1_0_q8_K_scalar,
        [Q35_TYPE_TQ2_0] = vec_dot4_tq2_0_q8_K_scalar,
    },
    .gemm_packed = {[Q35_TYPE_Q4_K] = q35_gemm_packed_q4_K_scalar, [Q35_TYPE_Q5_K] = q35_gemm_packed_q5_K_scalar,
                    [Q35_TYPE_Q6_K] = q35_gemm_packed_q6_K_scalar,
                    [Q35_TYPE_Q8_0] = q35_gemm_packed_q8_0_scalar, [Q35_TYPE_IQ4_XS] = q35_gemm_packed_iq4_xs_scalar,
                    [Q35_TYPE_BF16] = q35_gemm_packed_bf16_scalar},
};

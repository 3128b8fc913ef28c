/* The repacked products, scalar: the rule of repacked.h written out, row by row.
 * Every other variant's packed product gives these bits. */
#include <float.h>
#include <math.h>

#include "fp16.h"
#include "repacked.h"

/* Q4_K (five = 0) and Q5_K (five = 1: the fifth bits from qh, bit 2k and 2k + 1 of qh[j] for codes
 * vector 4j + k); groups bstride bytes apart, Q4_K's layout first */
static void k45_packed(const uint8_t *wp, int64_t bstride, int five, const void *a, int64_t as, int nt, int64_t n,
                       float *y, int64_t ldy) {
    const int64_t nb = n / QK_K;
    for (int t = 0; t < nt; t++) {
        const block_q8_K *q = (const block_q8_K *)(const void *)((const uint8_t *)a + t * as);
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const block_q4_K_r16 *x = (const block_q4_K_r16 *)(const void *)(wp + b * bstride);
                const block_q5_K_r16 *x5 = five ? (const block_q5_K_r16 *)(const void *)x : NULL;
                int32_t isum = 0, msum = 0;
                for (int j = 0; j < 8; j++) {
                    int32_t s = 0;
                    for (int k = 0; k < 4; k++) {
                        const uint8_t *c = x->qs[4 * j + k] + 4 * r;
                        const int8_t *qa = q[b].qs + 32 * j + 8 * k;
                        for (int i = 0; i < 4; i++) {
                            const int h = x5 ? x5->qh[j][4 * r + i] : 0;
                            s += ((c[i] & 0xF) | ((h >> (2 * k)) & 1) << 4) * qa[i] +
                                 ((c[i] >> 4) | ((h >> (2 * k + 1)) & 1) << 4) * qa[4 + i];
                        }
                    }
                    isum += x->sc[j][r] * s;
                    msum += x->m[j][r] * (q[b].bsums[2 * j] + q[b].bsums[2 * j + 1]);
                }
                const float dd = q[b].d * q35_h2f(x->d[r]), dm = q[b].d * q35_h2f(x->dmin[r]);
                acc = fmaf(dd, (float)isum, acc);
                acc = fmaf(-dm, (float)msum, acc);
            }
            y[t * ldy + r] = acc;
        }
    }
}

void q35_gemm_packed_q4_K_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                 int64_t ldy) {
    k45_packed(wp, (int64_t)sizeof(block_q4_K_r16), 0, a, as, nt, n, y, ldy);
}

/* Q4_K's rule with the fifth bits (repacked.h) */
void q35_gemm_packed_q5_K_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                 int64_t ldy) {
    k45_packed(wp, (int64_t)sizeof(block_q5_K_r16), 1, a, as, nt, n, y, ldy);
}

/* the code (0..63) of position 16j + 4e + i of row r */
static int q6_K_r16_code(const block_q6_K_r16 *x, int j, int e, int r, int i) {
    const uint8_t lb = x->sub[j].ql[e / 2][4 * r + i];
    const int low = e % 2 ? lb >> 4 : lb & 0xF;
    return low | ((x->sub[j].qh[4 * r + i] >> (2 * e)) & 3) << 4;
}

void q35_gemm_packed_q6_K_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                 int64_t ldy) {
    const block_q6_K_r16 *x = wp;
    const int64_t nb = n / QK_K;
    for (int t = 0; t < nt; t++) {
        const block_q8_K *q = (const block_q8_K *)(const void *)((const uint8_t *)a + t * as);
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t isum = 0;
                for (int j = 0; j < 16; j++) {
                    int32_t s = 0;
                    for (int e = 0; e < 4; e++) {
                        const int8_t *qa = q[b].qs + 16 * j + 4 * e;
                        for (int i = 0; i < 4; i++) s += q6_K_r16_code(&x[b], j, e, r, i) * qa[i];
                    }
                    isum += x[b].sc[j][r] * (s - 32 * q[b].bsums[j]);
                }
                acc = fmaf(q[b].d * q35_h2f(x[b].d[r]), (float)isum, acc);
            }
            y[t * ldy + r] = acc;
        }
    }
}

void q35_gemm_packed_q8_0_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                 int64_t ldy) {
    const block_q8_0_r16 *x = wp;
    const int64_t nb = n / QK8_0;
    for (int t = 0; t < nt; t++) {
        const block_q8_0 *q = (const block_q8_0 *)(const void *)((const uint8_t *)a + t * as);
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t sumi = 0;
                for (int l = 0; l < QK8_0; l++) sumi += x[b].qs[l / 4][4 * r + l % 4] * q[b].qs[l];
                acc = fmaf(q35_h2f(q[b].d) * q35_h2f(x[b].d[r]), (float)sumi, acc);
            }
            y[t * ldy + r] = acc;
        }
    }
}

void q35_gemm_packed_iq4_xs_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                   int64_t ldy) {
    const block_iq4_xs_r16 *x = wp;
    const int64_t nb = n / QK_K;
    for (int t = 0; t < nt; t++) {
        const block_q8_K *q = (const block_q8_K *)(const void *)((const uint8_t *)a + t * as);
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t isum = 0;
                for (int j = 0; j < 8; j++) {
                    int32_t s = 0;
                    for (int k = 0; k < 4; k++) {
                        const uint8_t *c = x[b].qs[4 * j + k] + 4 * r;
                        const int8_t *qa = q[b].qs + 32 * j + 8 * k;
                        for (int i = 0; i < 4; i++)
                            s += q35_kvalues_iq4nl[c[i] & 0xF] * qa[i] + q35_kvalues_iq4nl[c[i] >> 4] * qa[4 + i];
                    }
                    isum += x[b].ls[j][r] * s;
                }
                acc = fmaf(q[b].d * q35_h2f(x[b].d[r]), (float)isum, acc);
            }
            y[t * ldy + r] = acc;
        }
    }
}

/* VDPBF16PS's number handling: bf16 subnormal inputs read as zero (DAZ), float subnormal results
 * written as zero (FTZ), both keeping the sign; the product inside the fused step is not flushed */
static float ftz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }
static float bf16_daz(uint16_t h) { return ftz(q35_bits_f32((uint32_t)h << 16)); } /* a bf16 subnormal is a float one */

void q35_gemm_packed_bf16_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                 int64_t ldy) {
    const block_bf16_r16 *x = wp;
    const int64_t nb = n / Q35_BF16_R16_ELEMS;
    for (int t = 0; t < nt; t++) {
        const uint16_t *qa = (const uint16_t *)(const void *)((const uint8_t *)a + t * as);
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++)
                for (int p = 0; p < 16; p++)
                    for (int e = 1; e >= 0; e--) { /* the odd position first */
                        acc = ftz(fmaf(bf16_daz(x[b].w[p][2 * r + e]), bf16_daz(qa[b * Q35_BF16_R16_ELEMS + 2 * p + e]), acc));
                    }
            y[t * ldy + r] = acc;
        }
    }
}

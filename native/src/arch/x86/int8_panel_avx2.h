/* Panels of the types whose AVX2 dots reduce to signed bytes v under per-16 scales
 * (the codebook and ternary types, Q2_K, Q3_K): each weight row is decoded once to
 *   v[256 b + i]   the value bytes of block b,
 *   ls[16 b + s]   the integer scale of values 16 s .. 16 s + 15,
 *   d[b]           the block's float scale,
 *   and for Q2_K mins[16 b + s] and dmin[b] (the term - dA dmin sum_s m_s bsum_s),
 * then dotted with the activation rows (Q8_K) 4 at a time: per 32 values
 * maddubs(|v|, qa with v's sign) (the TQ types: maddubs(v + 1, qa) less the bsums, ggml's
 * lanes), madd with the two scales, 8 int32 lanes per block;
 * per block acc += (dW dA) float(lanes) (fused, or a product then a sum where the
 * type's dot does that), after the mins term; at the end c * the sum of the lanes.
 * These are the int32 lanes and float steps of the types' own dots, so a panel value
 * equals vec_dot bit for bit. Included by the AVX2 files after avx2.h. */
#ifndef Q35_ARCH_INT8_PANEL_AVX2_H
#define Q35_ARCH_INT8_PANEL_AVX2_H

#include <string.h>

#include "blocks.h"
#include "kernels.h"

enum { Q35_I8_PANEL_MAX_BLOCKS = 128 }; /* rows up to 32768 values decode on the stack; longer ones go by dots */

typedef struct {
    int8_t v[Q35_I8_PANEL_MAX_BLOCKS * 256];
    int16_t ls[Q35_I8_PANEL_MAX_BLOCKS * 16], mins[Q35_I8_PANEL_MAX_BLOCKS * 16];
    float d[Q35_I8_PANEL_MAX_BLOCKS], dmin[Q35_I8_PANEL_MAX_BLOCKS];
} q35_i8_row;

typedef struct {
    float c;      /* the type's final factor (a power of two) */
    int has_min;  /* Q2_K: the mins term first */
    int ternary;  /* the TQ types as ggml's x86 dots sum them: lanes of (v + 1) qa less the bsums, and
                   * acc = acc + d * lanes as a product and a sum, not fused */
} q35_i8_steps;

/* lane l: bsums[2 l] + bsums[2 l + 1], the sum of qa over values 32 l .. 32 l + 31 (the TQ lanes' offset) */
static inline __attribute__((always_inline)) __m256i q35_i8_bsum_pairs(const block_q8_K *y) {
    return _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), _mm256_set1_epi16(1));
}

static inline __attribute__((always_inline)) void q35_i8_row_dots(const q35_i8_row *row, int64_t nb,
                                                                   q35_i8_steps st, const void *a, int64_t as,
                                                                   float *out, const int nr) {
    __m256 acc[4];
    for (int r = 0; r < nr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q8_K *y[4];
        __m256i sums[4];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            y[r] = (const block_q8_K *)(const void *)((const uint8_t *)a + r * as) + b;
            sums[r] = _mm256_setzero_si256();
        }
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) { /* per 32 values: |v|, and the two scales, once for the nr rows */
            const __m256i v = _mm256_loadu_si256((const __m256i *)(row->v + 256 * b + 32 * g));
            /* ternary: the digits v + 1 against qa as they are; otherwise |v| against qa with v's sign */
            const __m256i w = st.ternary ? _mm256_add_epi8(v, _mm256_set1_epi8(1)) : _mm256_sign_epi8(v, v);
            const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(row->ls[16 * b + 2 * g + 1]),
                                                _mm_set1_epi16(row->ls[16 * b + 2 * g]));
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(y[r]->qs + 32 * g));
                sums[r] = _mm256_add_epi32(sums[r], _mm256_madd_epi16(_mm256_maddubs_epi16(w, st.ternary ? q : _mm256_sign_epi8(q, v)), sc));
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            if (st.ternary) sums[r] = _mm256_sub_epi32(sums[r], q35_i8_bsum_pairs(y[r]));
            if (st.has_min) {
                const __m256i mins = _mm256_loadu_si256((const __m256i *)(row->mins + 16 * b));
                const __m256i prod = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)y[r]->bsums));
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(-y[r]->d * row->dmin[b]), _mm256_cvtepi32_ps(prod), acc[r]);
            }
            const __m256 f = _mm256_cvtepi32_ps(sums[r]), dv = _mm256_set1_ps(row->d[b] * y[r]->d);
            acc[r] = st.ternary ? _mm256_add_ps(_mm256_mul_ps(f, dv), acc[r]) : _mm256_fmadd_ps(dv, f, acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) out[r] = st.c * hsum_ps256(acc[r]);
}

/* the panel (the gemm contract) of rows decoded by decode(row bytes, blocks, out) */
static inline __attribute__((always_inline)) void q35_i8_panel(void (*decode)(const uint8_t *, int64_t, q35_i8_row *),
                                                                q35_i8_steps st, q35_vec_dot_fn dot,
                                                                q35_vec_dot4_fn dot4, const void *w, int64_t ws,
                                                                int nr, const void *a, int64_t as, int nt, int64_t n,
                                                                float *y, int64_t ldy) {
    const int64_t nb = n / QK_K;
    if (nb > Q35_I8_PANEL_MAX_BLOCKS) {
        q35_panel_by_dots(dot, dot4, w, ws, nr, a, as, nt, n, y, ldy);
        return;
    }
    q35_i8_row row;
    for (int r = 0; r < nr; r++) {
        decode((const uint8_t *)w + r * ws, nb, &row);
        int t = 0;
        for (; t + 4 <= nt; t += 4) {
            float o[4];
            q35_i8_row_dots(&row, nb, st, (const uint8_t *)a + t * as, as, o, 4);
            for (int i = 0; i < 4; i++) y[(t + i) * ldy + r] = o[i];
        }
        for (; t < nt; t++) q35_i8_row_dots(&row, nb, st, (const uint8_t *)a + t * as, as, &y[t * ldy + r], 1);
    }
}

#endif

/* Q8_0 x Q8_0 dots on AVX2 + FMA + F16C, register-tiled.
 *
 * Every entry (one pair, one weight row with 4 activation rows, a panel) runs
 * the same float chain per (weight row, activation row) pair:
 *
 *     acc <- acc + (dW_b * dA_b) * sum_{32 values of block b} qW qA,  b = 0, 1, ...
 *     dot  = the 8 lanes of acc summed (hsum_ps256)
 *
 * so all three agree bit for bit. The integer sums use the sign trick,
 * maddubs(|qW|, sign(qA, qW)) then madd with ones; it never saturates, since a
 * Q8_0 quant is never -128 (127 * 127 * 2 < 32767).
 *
 * A tile of RM weight rows by RN activation rows holds RM * RN accumulators in
 * registers: each weight block is loaded and made absolute once for RN rows, each
 * activation block loaded once for RM rows, and the activation scales are turned
 * to floats once per panel instead of once per pair. */
#include "kernels.h"

#if Q35_HAVE_X86
#include "blocks.h"
#include "arch/x86/avx2.h" /* opens the target region */

#define MAX_BLOCKS 1024 /* activation scales of 4 rows kept on the stack: rows up to 32768 values */

/* the 8 int32 lane sums of one block pair: aw = |qW|, qw = qW */
static inline __m256i block_sums(__m256i aw, __m256i qw, __m256i qa) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(qa, qw)), _mm256_set1_epi16(1));
}

float q35_vec_dot_q8_0_avx2(const void *w, const void *a, int64_t n) {
    const block_q8_0 *x = w, *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const __m256i qw = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i p = block_sums(_mm256_sign_epi8(qw, qw), qw, _mm256_loadu_si256((const __m256i *)y[b].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum_ps256(acc);
}

/* asf[4 b + j] = dA of block b of activation row j (j < rn; the other lanes 0) */
static void act_scales(const block_q8_0 *const *y, int rn, int64_t nb, float *asf) {
    for (int64_t b = 0; b < nb; b++)
        for (int j = 0; j < 4; j++) asf[4 * b + j] = j < rn ? h2f(y[j][b].d) : 0.0f;
}

/* dA of block b of 4 activation rows as floats: the four halves packed through a general
 * register, one conversion */
static inline __m128 act_scales4(const block_q8_0 *const *y, int64_t b) {
    const uint64_t h = (uint64_t)y[0][b].d | ((uint64_t)y[1][b].d << 16) | ((uint64_t)y[2][b].d << 32) |
                       ((uint64_t)y[3][b].d << 48);
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* out[j * ldo + i] = dot(x[i], y[j]) for i < RM, j < RN (RM * RN <= 8; constants at every call,
 * so the loops unroll and the accumulators stay in registers); asf: the activation scales as
 * act_scales() lays them out, or NULL to convert them per block (4 activation rows) */
static inline __attribute__((always_inline)) void tile(const block_q8_0 *const *x, const int RM,
                                                       const block_q8_0 *const *y, const int RN, const float *asf,
                                                       int64_t nb, float *out, int64_t ldo) {
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) acc[i][j] = _mm256_setzero_ps();
    float s[16] __attribute__((aligned(16))); /* s[4 i + j] = dW_i dA_j of this block */
    for (int64_t b = 0; b < nb; b++) {
        const __m128 da = asf ? _mm_load_ps(asf + 4 * b) : act_scales4(y, b);
        __m256i qw[4], aw[4];
#pragma GCC unroll 4
        for (int i = 0; i < RM; i++) {
            _mm_store_ps(s + 4 * i, _mm_mul_ps(_mm_set1_ps(h2f(x[i][b].d)), da));
            qw[i] = _mm256_loadu_si256((const __m256i *)x[i][b].qs);
            aw[i] = _mm256_sign_epi8(qw[i], qw[i]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            const __m256i qa = _mm256_loadu_si256((const __m256i *)y[j][b].qs);
#pragma GCC unroll 4
            for (int i = 0; i < RM; i++)
                acc[i][j] = _mm256_fmadd_ps(_mm256_broadcast_ss(s + 4 * i + j),
                                            _mm256_cvtepi32_ps(block_sums(aw[i], qw[i], qa)), acc[i][j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) out[j * ldo + i] = hsum_ps256(acc[i][j]);
}

static inline const block_q8_0 *row_at(const void *base, int64_t stride, int64_t r) {
    return (const block_q8_0 *)(const void *)((const uint8_t *)base + r * stride);
}

void q35_vec_dot4_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_q8_0 *x[1] = {w}, *y[4];
    for (int j = 0; j < 4; j++) y[j] = row_at(a, as, j);
    tile(x, 1, y, 4, NULL, n / QK8_0, out, 1);
}

/* one weight row against rn (1..4) activation rows */
static void tile_1xn(const block_q8_0 *const *x, const block_q8_0 *const *y, int rn, const float *asf, int64_t nb,
                     float *out, int64_t ldo) {
    switch (rn) {
    case 4: tile(x, 1, y, 4, asf, nb, out, ldo); break;
    case 3: tile(x, 1, y, 3, asf, nb, out, ldo); break;
    case 2: tile(x, 1, y, 2, asf, nb, out, ldo); break;
    default: tile(x, 1, y, 1, asf, nb, out, ldo); break;
    }
}

void q35_gemm_q8_0_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *yo,
                        int64_t ldy) {
    const int64_t nb = n / QK8_0;
    if (nb > MAX_BLOCKS) { /* rows too long for the stack */
        q35_panel_by_dots(q35_vec_dot_q8_0_avx2, q35_vec_dot4_q8_0_avx2, w, ws, nr, a, as, nt, n, yo, ldy);
        return;
    }
    float asf[4 * MAX_BLOCKS] __attribute__((aligned(16)));
    for (int t0 = 0; t0 < nt; t0 += 4) {
        const int rn = nt - t0 < 4 ? nt - t0 : 4;
        float *out = yo + t0 * ldy;
        if (rn == 1) { /* a single activation row (decode): one weight row at a time, one stream */
            for (int r = 0; r < nr; r++) out[r] = q35_vec_dot_q8_0_avx2(row_at(w, ws, r), row_at(a, as, t0), n);
            break;
        }
        const block_q8_0 *y[4];
        for (int j = 0; j < 4; j++) y[j] = row_at(a, as, t0 + (j < rn ? j : 0));
        act_scales(y, rn, nb, asf);
        int r = 0;
        for (; r + 2 <= nr; r += 2) {
            const block_q8_0 *x[2] = {row_at(w, ws, r), row_at(w, ws, r + 1)};
            switch (rn) {
            case 4: tile(x, 2, y, 4, asf, nb, out + r, ldy); break;
            case 3: tile(x, 2, y, 3, asf, nb, out + r, ldy); break;
            default: tile(x, 2, y, 2, asf, nb, out + r, ldy); break;
            }
        }
        if (r < nr) {
            const block_q8_0 *x[1] = {row_at(w, ws, r)};
            tile_1xn(x, y, rn, asf, nb, out + r, ldy);
        }
    }
}

Q35_AVX2_END
#endif /* Q35_HAVE_X86 */

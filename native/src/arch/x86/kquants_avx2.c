/* The K-quant dots on AVX2 + FMA + F16C: Q4_K, Q5_K and Q6_K x Q8_K, one pair,
 * one weight row with 4 activation rows, and their panels (each
 * weight row unpacked once per panel). */
#include "kernels.h"

#if Q35_HAVE_X86
#include <string.h>

#include "blocks.h"
#include "arch/x86/avx2.h" /* opens the target region */

/* The 12 packed bytes of Q4_K / Q5_K -> 16 bytes: sc0..7 then m0..7 (docs/qwen35.md §4.1). */
static inline __m128i k_scales_mins(const uint8_t *scales) {
    uint32_t u[3], w[4];
    memcpy(u, scales, 12);
    q35_k45_scale_words(u, w);
    return _mm_setr_epi32((int)w[0], (int)w[1], (int)w[2], (int)w[3]);
}

/* int32 x4 mins term of Q4_K / Q5_K: m_j * (bsum_2j + bsum_2j+1), j = 0..7 */
static inline __m128i k_mins_term(__m256i mins_scales16, const int16_t *bsums) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    return _mm_madd_epi16(_mm256_extracti128_si256(mins_scales16, 1), pairs);
}

float q35_vec_dot_q4_K_q8_K_avx2(const void *w, const void *a, int64_t n) {
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = y[b].d * h2f(x[b].d);
        const float dmin = -y[b].d * h2f(x[b].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(x[b].scales)); /* sc0..7 | m0..7 */
        accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k_mins_term(ms, y[b].bsums)), accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *q4 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        __m256i sumi = _mm256_setzero_si256();
#define Q4K_CHUNK(c)                                                                                       \
        {                                                                                                  \
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q4 + 32 * (c)));                     \
            const __m256i lo = _mm256_and_si256(bits, m4);                                                 \
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);                           \
            const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * (c))));      \
            const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * (c) + 32)));  \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_shuffle_epi8(sc, BCAST_W(2 * (c)))));         \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_shuffle_epi8(sc, BCAST_W(2 * (c) + 1))));     \
        }
        Q4K_CHUNK(0) Q4K_CHUNK(1) Q4K_CHUNK(2) Q4K_CHUNK(3)
#undef Q4K_CHUNK
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    __m128 m = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return hsum_ps256(acc) + _mm_cvtss_f32(m);
}

/* Q5_K: as Q4_K, the fifth bits of chunk c are bits 2c (low) and 2c+1 (high)
 * of qh[l]; shifting qh right by 2 per chunk brings them to bits 0 and 1. */
float q35_vec_dot_q5_K_q8_K_avx2(const void *w, const void *a, int64_t n) {
    const block_q5_K *x = w;
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0xF), m16 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = y[b].d * h2f(x[b].d);
        const float dmin = -y[b].d * h2f(x[b].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(x[b].scales));
        accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k_mins_term(ms, y[b].bsums)), accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *q5 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        __m256i hb = _mm256_loadu_si256((const __m256i *)x[b].qh);
        __m256i sumi = _mm256_setzero_si256();
#define Q5K_CHUNK(c)                                                                                       \
        {                                                                                                  \
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q5 + 32 * (c)));                     \
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4),                                \
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 4), m16));           \
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),           \
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), m16));           \
            hb = _mm256_srli_epi16(hb, 2);                                                                 \
            const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * (c))));      \
            const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * (c) + 32)));  \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_shuffle_epi8(sc, BCAST_W(2 * (c)))));         \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_shuffle_epi8(sc, BCAST_W(2 * (c) + 1))));     \
        }
        Q5K_CHUNK(0) Q5K_CHUNK(1) Q5K_CHUNK(2) Q5K_CHUNK(3)
#undef Q5K_CHUNK
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    __m128 m = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return hsum_ps256(acc) + _mm_cvtss_f32(m);
}

/* Q6_K: unsigned 6-bit quants (0..63) with maddubs, the -32 folded in once per
 * super-block as 32 * sum_j sc_j * bsum_j. The 16 int8 scales are widened to
 * int16; each 128-element half broadcasts its 8 scales to both lanes, then a
 * pshufb picks scale 2k (low lane) and 2k+1 (high lane) for 32 quants. */
float q35_vec_dot_q6_K_q8_K_avx2(const void *w, const void *a, int64_t n) {
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const __m256i m15 = _mm256_set1_epi8(0xF), m48 = _mm256_set1_epi8(0x30);
    const __m256i sel0 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    const __m256i step = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = y[b].d * h2f(x[b].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales));
        const __m256i bs = _mm256_loadu_si256((const __m256i *)y[b].bsums);
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *q8 = y[b].qs;
        for (int h = 0; h < 2; h++) {
            const __m256i sch = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
            const __m256i hv = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m48));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m48));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m15), _mm256_and_si256(hv, m48));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m15),
                                               _mm256_and_si256(_mm256_srli_epi16(hv, 2), m48));
            const int8_t *qa = q8 + 128 * h;
            const __m256i p0 = _mm256_maddubs_epi16(q0, _mm256_loadu_si256((const __m256i *)qa));
            const __m256i p1 = _mm256_maddubs_epi16(q1, _mm256_loadu_si256((const __m256i *)(qa + 32)));
            const __m256i p2 = _mm256_maddubs_epi16(q2, _mm256_loadu_si256((const __m256i *)(qa + 64)));
            const __m256i p3 = _mm256_maddubs_epi16(q3, _mm256_loadu_si256((const __m256i *)(qa + 96)));
            const __m256i s1 = _mm256_add_epi8(sel0, step);
            const __m256i s2 = _mm256_add_epi8(s1, step);
            const __m256i s3 = _mm256_add_epi8(s2, step);
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_shuffle_epi8(sch, sel0)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_shuffle_epi8(sch, s1)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p2, _mm256_shuffle_epi8(sch, s2)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p3, _mm256_shuffle_epi8(sch, s3)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps256(acc);
}

/* ------------------------------------------------------------------------- */
/* 4 activation rows (see arch/x86/avx2.h).                                  */

/* The mins terms of Q4_K / Q5_K for 4 rows. Two rows share a register (lanes
 * 0-3 row 2p, 4-7 row 2p+1): lane-wise the same fmadd as the 128-bit one of
 * the single-row kernels. */
static inline void k_mins4(__m256i ms, const block_q8_K *const *y, int64_t b, float dmw, __m256 *accm) {
#pragma GCC unroll 2
    for (int p = 0; p < 2; p++) {
        const block_q8_K *y0 = &y[2 * p][b], *y1 = &y[2 * p + 1][b];
        const __m256 dmin = _mm256_set_m128(_mm_set1_ps(-y1->d * dmw), _mm_set1_ps(-y0->d * dmw));
        const __m256i t = _mm256_set_m128i(k_mins_term(ms, y1->bsums), k_mins_term(ms, y0->bsums));
        accm[p] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(t), accm[p]);
    }
}

/* One 32-byte chunk c of a Q4_K / Q5_K block for 4 rows: the quants of sub-blocks
 * 2c (lo) and 2c+1 (hi) times the rows' int8 values, weighted by their scales. */
static inline void k_chunk4(__m256i lo, __m256i hi, __m256i scl, __m256i sch, const block_q8_K *const *y,
                            int64_t b, int c, __m256i *sumi) {
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        const int8_t *q8 = y[r][b].qs + 64 * c;
        const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
        const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
        sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(_mm256_madd_epi16(pl, scl), _mm256_madd_epi16(ph, sch)));
    }
}

/* the final sums of Q4_K / Q5_K, as in the single-row kernels */
static inline void k_finish4(const __m256 *acc, const __m256 *accm, float *out) {
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        const __m128 am = (r & 1) ? _mm256_extractf128_ps(accm[r >> 1], 1) : _mm256_castps256_ps128(accm[r >> 1]);
        __m128 m = _mm_add_ps(am, _mm_movehl_ps(am, am));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        out[r] = hsum_ps256(acc[r]) + _mm_cvtss_f32(m);
    }
}

void q35_vec_dot4_q4_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_q4_K *x = w;
    ROWS4(block_q8_K, y, a, as);
    const __m256i m4 = _mm256_set1_epi8(0xF), four8 = _mm256_set1_epi8(4);
    __m256 acc[4], accm[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float dw = h2f(x[b].d), dmw = h2f(x[b].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(x[b].scales)); /* sc0..7 | m0..7 */
        k_mins4(ms, y, b, dmw, accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *q4 = x[b].qs;
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
        __m256i ctl = BCAST_W(0), cth = BCAST_W(1);
        for (int c = 0; c < 4; c++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q4 + 32 * c));
            const __m256i lo = _mm256_and_si256(bits, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i scl = _mm256_shuffle_epi8(sc, ctl);
            const __m256i sch = _mm256_shuffle_epi8(sc, cth);
            ctl = _mm256_add_epi8(ctl, four8);
            cth = _mm256_add_epi8(cth, four8);
            k_chunk4(lo, hi, scl, sch, y, b, c, sumi);
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][b].d * dw), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    k_finish4(acc, accm, out);
}

void q35_vec_dot4_q5_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_q5_K *x = w;
    ROWS4(block_q8_K, y, a, as);
    const __m256i m4 = _mm256_set1_epi8(0xF), m16 = _mm256_set1_epi8(0x10), four8 = _mm256_set1_epi8(4);
    __m256 acc[4], accm[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float dw = h2f(x[b].d), dmw = h2f(x[b].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(x[b].scales));
        k_mins4(ms, y, b, dmw, accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *q5 = x[b].qs;
        __m256i hb = _mm256_loadu_si256((const __m256i *)x[b].qh);
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
        __m256i ctl = BCAST_W(0), cth = BCAST_W(1);
        for (int c = 0; c < 4; c++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q5 + 32 * c));
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m16));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), m16));
            hb = _mm256_srli_epi16(hb, 2);
            const __m256i scl = _mm256_shuffle_epi8(sc, ctl);
            const __m256i sch = _mm256_shuffle_epi8(sc, cth);
            ctl = _mm256_add_epi8(ctl, four8);
            cth = _mm256_add_epi8(cth, four8);
            k_chunk4(lo, hi, scl, sch, y, b, c, sumi);
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][b].d * dw), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    k_finish4(acc, accm, out);
}

/* Q6_K: the four 32-quant groups of each half one at a time (quants and their
 * scale pattern built once), each applied to the 4 rows. */
void q35_vec_dot4_q6_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_q6_K *x = w;
    ROWS4(block_q8_K, y, a, as);
    const __m256i m15 = _mm256_set1_epi8(0xF), m48 = _mm256_set1_epi8(0x30);
    const __m256i sel0 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    const __m256i step = _mm256_set1_epi8(4);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float dw = h2f(x[b].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales));
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y[r][b].bsums);
            sumi[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
        }
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i sch = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
            const __m256i hv = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            __m256i q[4]; /* the quants of groups 0..3 (elements 32k..32k+31 of the half) */
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m48));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m48));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m15), _mm256_and_si256(hv, m48));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m15),
                                   _mm256_and_si256(_mm256_srli_epi16(hv, 2), m48));
            __m256i sel = sel0;
#pragma GCC unroll 1
            for (int k = 0; k < 4; k++) {
                const __m256i s = _mm256_shuffle_epi8(sch, sel);
                sel = _mm256_add_epi8(sel, step);
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(y[r][b].qs + 128 * h + 32 * k)));
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(p, s));
                }
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][b].d * dw), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) out[r] = hsum_ps256(acc[r]);
}

/* ------------------------------------------------------------------------- */
/* Panels.                                                                   */

/* A panel of Q4_K rows. The per-block work of q35_vec_dot4_q4_K_q8_K_avx2 is done once
 * per panel on each side instead of once per (row, 4 tokens):
 *   each weight row is unpacked once: codes to bytes in value order, each
 *   sub-block scale broadcast to a vector, the mins to both 128-bit lanes, dW and
 *   dminW to floats;
 *   each activation row once: dA, and its bsums summed in pairs, two rows per
 *   vector as k_mins4 lays them out.
 * The row then meets the activation rows 4 at a time with the same float
 * operations as vec_dot4 (the same products, fmadds and sums), so every value
 * equals vec_dot bit for bit. */
#define K_PANEL_MAX 16384 /* values of one row unpacked on the stack */
#define K_PANEL_TOKENS 32 /* activation rows prepared at once */

typedef struct {
    uint8_t codes[K_PANEL_MAX] __attribute__((aligned(32)));
    __m256i scale[K_PANEL_MAX / 32];  /* the sub-block's 6-bit scale in every int16 lane */
    __m256i mins[K_PANEL_MAX / QK_K]; /* Q4_K: m0..7 as int16, in both 128-bit lanes */
    __m256i sc16[K_PANEL_MAX / QK_K]; /* Q6_K: the 16 scales as int16 */
    float dw[K_PANEL_MAX / QK_K], dmw[K_PANEL_MAX / QK_K];
} k_row_unpacked;

typedef struct {
    __m256i pairs[K_PANEL_TOKENS / 2][K_PANEL_MAX / QK_K];  /* bsum_2j + bsum_2j+1 of rows 2p | 2p+1 */
    __m256 neg_d[K_PANEL_TOKENS / 2][K_PANEL_MAX / QK_K];   /* -dA of row 2p (lanes 0-3) | 2p+1 (4-7) */
    float d[K_PANEL_TOKENS][K_PANEL_MAX / QK_K];
} k_act_prepared;

/* block b's scales and mins of a Q4_K / Q5_K row, and its dW, dminW */
static inline void k_unpack_scales(const uint8_t *scales, uint16_t d, uint16_t dmin, int64_t b, k_row_unpacked *u) {
    const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(scales));
    u->mins[b] = _mm256_permute2x128_si256(ms, ms, 0x11);
    u->dw[b] = h2f(d);
    u->dmw[b] = h2f(dmin);
    const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
    for (int j = 0; j < 8; j++) u->scale[8 * b + j] = _mm256_shuffle_epi8(sc, BCAST_W(j));
}

static void unpack_q4_K_row(const void *w, int64_t nb, k_row_unpacked *u) {
    const block_q4_K *x = w;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int64_t b = 0; b < nb; b++) {
        k_unpack_scales(x[b].scales, x[b].d, x[b].dmin, b, u);
        for (int c = 0; c < 4; c++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * c));
            uint8_t *out = u->codes + QK_K * b + 64 * c;
            _mm256_store_si256((__m256i *)out, _mm256_and_si256(bits, m4));
            _mm256_store_si256((__m256i *)(out + 32), _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4));
        }
    }
}

/* rows [0, nt) (nt even or not; an odd last row is paired with itself) */
static void prepare_q8_K_rows(const uint8_t *a, int64_t as, int nt, int64_t nb, k_act_prepared *p) {
    for (int t = 0; t < nt; t += 2) {
        const block_q8_K *y0 = (const block_q8_K *)(const void *)(a + t * as);
        const block_q8_K *y1 = t + 1 < nt ? (const block_q8_K *)(const void *)(a + (t + 1) * as) : y0;
        for (int64_t b = 0; b < nb; b++) {
            const __m256i b0 = _mm256_loadu_si256((const __m256i *)y0[b].bsums);
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)y1[b].bsums);
            p->pairs[t / 2][b] = _mm256_set_m128i(_mm_hadd_epi16(_mm256_castsi256_si128(b1), _mm256_extracti128_si256(b1, 1)),
                                                  _mm_hadd_epi16(_mm256_castsi256_si128(b0), _mm256_extracti128_si256(b0, 1)));
            p->neg_d[t / 2][b] = _mm256_set_m128(_mm_set1_ps(-y1[b].d), _mm_set1_ps(-y0[b].d));
            p->d[t][b] = y0[b].d;
            if (t + 1 < nt) p->d[t + 1][b] = y1[b].d;
        }
    }
}

/* block b of an unpacked row against activation rows t..t+3: sumi[r] += the 8 sub-blocks'
 * scale_j * (codes_j . q8_j), then acc[r] += (dA_r dW) * sumi[r], as the 4-row kernels */
static inline __attribute__((always_inline)) void k_unpacked_block4(const k_row_unpacked *u, const k_act_prepared *p,
                                                                    int t, int64_t b, const block_q8_K *const *y,
                                                                    __m256i *sumi, __m256 *acc) {
#pragma GCC unroll 4
    for (int j = 0; j < 8; j++) {
        const __m256i cw = _mm256_load_si256((const __m256i *)(u->codes + QK_K * b + 32 * j));
        const __m256i sc = u->scale[8 * b + j];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m256i q = _mm256_maddubs_epi16(cw, _mm256_loadu_si256((const __m256i *)(y[r][b].qs + 32 * j)));
            sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(q, sc));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(p->d[t + r][b] * u->dw[b]), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
}

/* weight row u against activation rows t..t+3 (t a multiple of 4) */
static void q4_K_panel_dot4(const k_row_unpacked *u, const k_act_prepared *p, int t, int64_t nb,
                            const block_q8_K *const *y, float *out) {
    /* the mins terms first, in a loop of their own (as k_mins4; fewer live registers below) */
    __m256 acc[4], accm[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        const __m256 dmw = _mm256_set1_ps(u->dmw[b]);
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++)
            accm[q] = _mm256_fmadd_ps(_mm256_mul_ps(p->neg_d[t / 2 + q][b], dmw),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(u->mins[b], p->pairs[t / 2 + q][b])), accm[q]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
        k_unpacked_block4(u, p, t, b, y, sumi, acc);
    }
    k_finish4(acc, accm, out);
}

typedef void (*k_unpack_fn)(const void *w, int64_t nb, k_row_unpacked *u);
typedef void (*k_panel_dot4_fn)(const k_row_unpacked *u, const k_act_prepared *p, int t, int64_t nb,
                                const block_q8_K *const *y, float *out);

/* the panel of a K-quant type: unpack each weight row once, prepare the activation rows
 * once per K_PANEL_TOKENS, 4 activation rows per panel_dot4 call, the rest by vec_dot */
static void k_panel(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *yo,
                    int64_t ldy, k_unpack_fn unpack, k_panel_dot4_fn dot4, q35_vec_dot_fn dot, q35_vec_dot4_fn plain4) {
    const int64_t nb = n / QK_K;
    if (nt < 4 || n > K_PANEL_MAX) { /* decode (row by row), or rows too long for the stack */
        q35_panel_by_dots(dot, plain4, w, ws, nr, a, as, nt, n, yo, ldy);
        return;
    }
    k_row_unpacked u;
    k_act_prepared p;
    for (int t0 = 0; t0 < nt; t0 += K_PANEL_TOKENS) {
        const int tn = nt - t0 < K_PANEL_TOKENS ? nt - t0 : K_PANEL_TOKENS, t4 = tn / 4 * 4;
        const uint8_t *at = (const uint8_t *)a + t0 * as;
        prepare_q8_K_rows(at, as, t4, nb, &p);
        for (int r = 0; r < nr; r++) {
            const void *wr = (const uint8_t *)w + r * ws;
            float *out = yo + t0 * ldy + r;
            if (t4) unpack(wr, nb, &u);
            for (int t = 0; t < t4; t += 4) {
                ROWS4(block_q8_K, y, at + t * as, as);
                float o[4];
                dot4(&u, &p, t, nb, y, o);
                for (int i = 0; i < 4; i++) out[(t + i) * ldy] = o[i];
            }
            for (int t = t4; t < tn; t++) out[t * ldy] = dot(wr, at + t * as, n);
        }
    }
}

void q35_gemm_q4_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                             float *yo, int64_t ldy) {
    k_panel(w, ws, nr, a, as, nt, n, yo, ldy, unpack_q4_K_row, q4_K_panel_dot4, q35_vec_dot_q4_K_q8_K_avx2,
            q35_vec_dot4_q4_K_q8_K_avx2);
}

/* Q5_K: as Q4_K, the fifth bit of each code from qh (bit 2c of qh[l] for code l of chunk c's low
 * half, bit 2c + 1 for its high half), codes 0..31; its dots have Q4_K's float steps, so the Q4_K
 * panel dot serves it */
static void unpack_q5_K_row(const void *w, int64_t nb, k_row_unpacked *u) {
    const block_q5_K *x = w;
    const __m256i m4 = _mm256_set1_epi8(0xF), m16 = _mm256_set1_epi8(0x10);
    for (int64_t b = 0; b < nb; b++) {
        k_unpack_scales(x[b].scales, x[b].d, x[b].dmin, b, u);
        __m256i hb = _mm256_loadu_si256((const __m256i *)x[b].qh);
        for (int c = 0; c < 4; c++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * c));
            uint8_t *out = u->codes + QK_K * b + 64 * c;
            _mm256_store_si256((__m256i *)out, _mm256_or_si256(_mm256_and_si256(bits, m4),
                                                               _mm256_and_si256(_mm256_slli_epi16(hb, 4), m16)));
            _mm256_store_si256((__m256i *)(out + 32), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                                                                      _mm256_and_si256(_mm256_slli_epi16(hb, 3), m16)));
            hb = _mm256_srli_epi16(hb, 2);
        }
    }
}

void q35_gemm_q5_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                             float *yo, int64_t ldy) {
    k_panel(w, ws, nr, a, as, nt, n, yo, ldy, unpack_q5_K_row, q4_K_panel_dot4, q35_vec_dot_q5_K_q8_K_avx2,
            q35_vec_dot4_q5_K_q8_K_avx2);
}

/* Q6_K: the 6-bit codes (0..63) to bytes in the order of q35_vec_dot_q6_K_q8_K_avx2's
 * groups (value order), each group's pair of 16-value scales as its shuffle made them */
static void unpack_q6_K_row(const void *w, int64_t nb, k_row_unpacked *u) {
    const block_q6_K *x = w;
    const __m256i m15 = _mm256_set1_epi8(0xF), m48 = _mm256_set1_epi8(0x30);
    const __m256i sel0 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales));
        u->sc16[b] = sc16;
        u->dw[b] = h2f(x[b].d);
        for (int h = 0; h < 2; h++) {
            const __m256i sch = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[b].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x[b].ql + 64 * h + 32));
            const __m256i hv = _mm256_loadu_si256((const __m256i *)(x[b].qh + 32 * h));
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m48)),
                _mm256_or_si256(_mm256_and_si256(l1, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m48)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m15), _mm256_and_si256(hv, m48)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m15), _mm256_and_si256(_mm256_srli_epi16(hv, 2), m48)),
            };
            for (int k = 0; k < 4; k++) {
                _mm256_store_si256((__m256i *)(u->codes + QK_K * b + 128 * h + 32 * k), q[k]);
                u->scale[8 * b + 4 * h + k] = _mm256_shuffle_epi8(sch, _mm256_add_epi8(sel0, _mm256_set1_epi8((char)(4 * k))));
            }
        }
    }
}

static void q6_K_panel_dot4(const k_row_unpacked *u, const k_act_prepared *p, int t, int64_t nb,
                            const block_q8_K *const *y, float *out) {
    __m256 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) { /* the -32 offset of the codes: -32 sum_j sc_j bsum_j */
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y[r][b].bsums);
            sumi[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, u->sc16[b]), 5));
        }
        k_unpacked_block4(u, p, t, b, y, sumi, acc);
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) out[r] = hsum_ps256(acc[r]);
}

void q35_gemm_q6_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                             float *yo, int64_t ldy) {
    k_panel(w, ws, nr, a, as, nt, n, yo, ldy, unpack_q6_K_row, q6_K_panel_dot4, q35_vec_dot_q6_K_q8_K_avx2,
            q35_vec_dot4_q6_K_q8_K_avx2);
}

Q35_AVX2_END
#endif /* Q35_HAVE_X86 */

/* The repacked products on AVX512 (gemm_packed entries; repacked.h gives the layout and
 * the rule). Compiled twice, like kquants_avx512.c: as itself for q35_kernels_avx512 and
 * from repacked_avx512vnni.c with vpdpbusd / vpdpwssd for q35_kernels_avx512vnni.
 *
 * One register holds 4 positions of all 16 rows; the 4 activation bytes they meet are
 * broadcast, so a multiply-add sums each row in its own lane. Per sub-block of 32
 * positions, two chains (low and high nibbles) per activation row, then one integer
 * multiply by the 16 rows' scales; per super-block, the two float steps of the rule for
 * 16 rows at once. Up to TN activation rows share each loaded code vector. */
#include "kernels.h"

#if Q35_HAVE_X86
#include <string.h>

#include "fp16.h"
#include "repacked.h"
#include "arch/x86/avx512.h" /* opens the target region */

#define TN 8 /* activation rows per tile */
#define INLINE static inline __attribute__((always_inline))

/* 4 activation bytes in every lane */
static inline __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* bit s of every byte (s = 0..7) moved to bit 4, the other bits cleared */
INLINE __m512i bit_to_4(__m512i h, const int s) {
    const __m512i v = s <= 4 ? _mm512_slli_epi16(h, (unsigned)(4 - s)) : _mm512_srli_epi16(h, (unsigned)(s - 4));
    return _mm512_and_si512(v, _mm512_set1_epi8(0x10));
}

/* Q4_K (five = 0) and Q5_K (five = 1: the fifth bits from the group's qh, bit 2k and 2k + 1 of
 * qh vector sj for codes vector 4 sj + k); groups bstride bytes apart, Q4_K's layout first */
INLINE void k45_r16_tile(const uint8_t *xp, int64_t bstride, const int five, int64_t nb, const uint8_t *a, int64_t as,
                         const int RN, float *y, int64_t ldy) {
    const __m512i m4 = _mm512_set1_epi8(0xF);
    const block_q8_K *q[TN];
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) q[j] = (const block_q8_K *)(const void *)(a + j * as);
    __m512 acc[TN];
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q4_K_r16 *x = (const block_q4_K_r16 *)(const void *)(xp + b * bstride);
        const uint8_t(*qh)[64] = five ? ((const block_q5_K_r16 *)(const void *)x)->qh : NULL;
        if (five && RN < TN) q35_packed_prefetch_ahead_l2(x, bstride); /* Q5_K streams at a quarter of Q4_K's speed without */
        __m512i isum[TN];
#pragma GCC unroll 8
        for (int j = 0; j < RN; j++) isum[j] = _mm512_setzero_si512();
        for (int sj = 0; sj < 8; sj++) {
            __m512i s[TN]; /* one chain per activation row: the products, not the adds, bound this loop */
#pragma GCC unroll 8
            for (int j = 0; j < RN; j++) s[j] = _mm512_setzero_si512();
            const __m512i h = five ? _mm512_loadu_si512((const void *)qh[sj]) : _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m512i raw = _mm512_loadu_si512((const void *)x->qs[4 * sj + k]);
                __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
                if (five) {
                    lo = _mm512_or_si512(lo, bit_to_4(h, 2 * k));
                    hi = _mm512_or_si512(hi, bit_to_4(h, 2 * k + 1));
                }
#pragma GCC unroll 8
                for (int j = 0; j < RN; j++) {
                    const int8_t *p = q[j][b].qs + 32 * sj + 8 * k;
                    s[j] = dpbusd(s[j], lo, bcast4(p));
                    s[j] = dpbusd(s[j], hi, bcast4(p + 4));
                }
            }
            const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)x->sc[sj]));
#pragma GCC unroll 8
            for (int j = 0; j < RN; j++) isum[j] = _mm512_add_epi32(isum[j], _mm512_mullo_epi32(s[j], sc));
        }
        /* the mins as int16 pairs (m_2k, m_2k+1), against the pairs of sub-block sums */
        __m512i mp[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            mp[k] = _mm512_or_si512(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)x->m[2 * k])),
                                    _mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)x->m[2 * k + 1])), 16));
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)x->d));
        const __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)x->dmin));
#pragma GCC unroll 8
        for (int j = 0; j < RN; j++) {
            const int16_t *bs = q[j][b].bsums;
            __m512i msum = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const int32_t s0 = bs[4 * k] + bs[4 * k + 1], s1 = bs[4 * k + 2] + bs[4 * k + 3];
                msum = dpwssd(msum, mp[k], _mm512_set1_epi32((int32_t)((uint32_t)(uint16_t)s0 | (uint32_t)s1 << 16)));
            }
            const __m512 da = _mm512_set1_ps(q[j][b].d);
            acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(da, dw), _mm512_cvtepi32_ps(isum[j]), acc[j]);
            /* fma(-(da dmin), msum, acc) as the rule writes it (not fnmadd: the same value, but an
             * emulator may give the other sign of zero) */
            const __m512 ndm = _mm512_castsi512_ps(
                _mm512_xor_si512(_mm512_castps_si512(_mm512_mul_ps(da, dmw)), _mm512_set1_epi32(INT32_MIN)));
            acc[j] = _mm512_fmadd_ps(ndm, _mm512_cvtepi32_ps(msum), acc[j]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) _mm512_storeu_ps(y + j * ldy, acc[j]);
}

INLINE void q4_K_r16_tile(const block_q4_K_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    k45_r16_tile((const uint8_t *)x, (int64_t)sizeof *x, 0, nb, a, as, RN, y, ldy);
}

INLINE void q5_K_r16_tile(const block_q5_K_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    k45_r16_tile((const uint8_t *)x, (int64_t)sizeof *x, 1, nb, a, as, RN, y, ldy);
}

/* the 4 code vectors (0..63) of sub-block j: positions 16j + 4e .. 16j + 4e + 3 for e = 0..3 */
INLINE void q6_K_r16_codes(const block_q6_K_r16 *x, int j, __m512i c[4]) {
    const __m512i m4 = _mm512_set1_epi8(0xF);
    const __m512i l0 = _mm512_loadu_si512((const void *)x->sub[j].ql[0]), l1 = _mm512_loadu_si512((const void *)x->sub[j].ql[1]);
    const __m512i h = _mm512_loadu_si512((const void *)x->sub[j].qh);
    c[0] = _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_slli_epi16(_mm512_and_si512(h, _mm512_set1_epi8(0x03)), 4));
    c[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4),
                           _mm512_slli_epi16(_mm512_and_si512(h, _mm512_set1_epi8(0x0C)), 2));
    c[2] = _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_and_si512(h, _mm512_set1_epi8(0x30)));
    c[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4),
                           _mm512_srli_epi16(_mm512_and_si512(h, _mm512_set1_epi8((char)0xC0)), 2));
}

INLINE void q6_K_r16_tile(const block_q6_K_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    const block_q8_K *q[TN];
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) q[j] = (const block_q8_K *)(const void *)(a + j * as);
    __m512 acc[TN];
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i isum[TN];
#pragma GCC unroll 8
        for (int j = 0; j < RN; j++) isum[j] = _mm512_setzero_si512();
        for (int sj = 0; sj < 16; sj++) {
            __m512i c[4];
            q6_K_r16_codes(&x[b], sj, c);
            const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x[b].sc[sj]));
#pragma GCC unroll 8
            for (int j = 0; j < RN; j++) {
                const int8_t *p = q[j][b].qs + 16 * sj;
                __m512i s = _mm512_set1_epi32(-32 * q[j][b].bsums[sj]); /* the -32 offset, exact */
#pragma GCC unroll 4
                for (int e = 0; e < 4; e++) s = dpbusd(s, c[e], bcast4(p + 4 * e));
                isum[j] = _mm512_add_epi32(isum[j], _mm512_mullo_epi32(s, sc));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)x[b].d));
#pragma GCC unroll 8
        for (int j = 0; j < RN; j++)
            acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(q[j][b].d), dw), _mm512_cvtepi32_ps(isum[j]), acc[j]);
    }
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) _mm512_storeu_ps(y + j * ldy, acc[j]);
}

#if defined(Q35_AVX512_VNNI)
/* Q8_0 with vpdpbusd, whose first operand is unsigned: the activations go in as qa + 128 (qa ^ 0x80,
 * exact; prepared once per u-batch by q35_prepare_packed_q8_0_plus128_avx2), and 128 sum_l q_l,r
 * comes off again, both sums exact integers. (The plain table has no Q8_0 product: vpmaddubsw
 * would saturate on qa + 128 up to 255.) */
INLINE void q8_0_r16_tile(const block_q8_0_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    const block_q8_0 *q[TN]; /* prepared: codes qa + 128 */
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) q[j] = (const block_q8_0 *)(const void *)(a + j * as);
    __m512 acc[TN];
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) acc[j] = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++) {
        __m512i w[8], wsum = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            w[k] = _mm512_loadu_si512((const void *)x[b].qs[k]);
            wsum = _mm512_dpbusd_epi32(wsum, ones, w[k]);
        }
        const __m512i corr = _mm512_slli_epi32(wsum, 7);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)x[b].d));
#pragma GCC unroll 8
        for (int j = 0; j < RN; j++) {
            const int8_t *p = q[j][b].qs;
            __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 8; k += 2) {
                s0 = _mm512_dpbusd_epi32(s0, bcast4(p + 4 * k), w[k]);
                s1 = _mm512_dpbusd_epi32(s1, bcast4(p + 4 * k + 4), w[k + 1]);
            }
            const __m512i sumi = _mm512_sub_epi32(_mm512_add_epi32(s0, s1), corr);
            const __m512 dd = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(q[j][b].d)), dw); /* exact, as q35_h2f */
            acc[j] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(sumi), acc[j]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) _mm512_storeu_ps(y + j * ldy, acc[j]);
}
#endif

#if defined(Q35_AVX512_VNNI)
/* IQ4_XS with vpdpbusd: the codes looked up as grid value + 128 (unsigned, vpshufb), and 128 times
 * the sub-block's activation sum (from the Q8_K bsums) taken off again, both exact: each
 * sub-block's chain starts at that offset, a broadcast, which costs nothing beside vpdpbusd (a
 * vpdpwssd correction per super-block shares its unit: reports/comparisons/port_mix.c). (The plain
 * table has none: vpmaddubsw would saturate on values up to 241.) */
INLINE void iq4_xs_r16_tile(const block_iq4_xs_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN,
                            float *y, int64_t ldy) {
    const __m512i m4 = _mm512_set1_epi8(0xF);
    const __m512i grid = _mm512_add_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)q35_kvalues_iq4nl)),
                                         _mm512_set1_epi8((char)0x80)); /* k + 128 as unsigned bytes */
    const block_q8_K *q[TN];
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) q[j] = (const block_q8_K *)(const void *)(a + j * as);
    __m512 acc[TN];
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i isum[TN];
#pragma GCC unroll 8
        for (int j = 0; j < RN; j++) isum[j] = _mm512_setzero_si512();
        for (int sj = 0; sj < 8; sj++) {
            __m512i s[TN];
#pragma GCC unroll 8
            for (int j = 0; j < RN; j++) s[j] = _mm512_set1_epi32(-128 * (q[j][b].bsums[2 * sj] + q[j][b].bsums[2 * sj + 1]));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m512i raw = _mm512_loadu_si512((const void *)x[b].qs[4 * sj + k]);
                const __m512i lo = _mm512_shuffle_epi8(grid, _mm512_and_si512(raw, m4));
                const __m512i hi = _mm512_shuffle_epi8(grid, _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4));
#pragma GCC unroll 8
                for (int j = 0; j < RN; j++) {
                    const int8_t *p = q[j][b].qs + 32 * sj + 8 * k;
                    s[j] = _mm512_dpbusd_epi32(s[j], lo, bcast4(p));
                    s[j] = _mm512_dpbusd_epi32(s[j], hi, bcast4(p + 4));
                }
            }
            const __m512i ls = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x[b].ls[sj]));
#pragma GCC unroll 8
            for (int j = 0; j < RN; j++) isum[j] = _mm512_add_epi32(isum[j], _mm512_mullo_epi32(s[j], ls));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)x[b].d));
#pragma GCC unroll 8
        for (int j = 0; j < RN; j++)
            acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(q[j][b].d), dw), _mm512_cvtepi32_ps(isum[j]), acc[j]);
    }
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) _mm512_storeu_ps(y + j * ldy, acc[j]);
}

void q35_gemm_packed_iq4_xs_avx512vnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                       int64_t ldy) {
    Q35_PACKED_DRIVER(iq4_xs_r16_tile, block_iq4_xs_r16, QK_K, TN)
}
#endif

void Q35_AVX512_OWN(q35_gemm_packed_q6_K)(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                          int64_t ldy) {
    Q35_PACKED_DRIVER(q6_K_r16_tile, block_q6_K_r16, QK_K, TN)
}

#if defined(Q35_AVX512_VNNI)
void q35_gemm_packed_q8_0_avx512vnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                     int64_t ldy) {
    Q35_PACKED_DRIVER(q8_0_r16_tile, block_q8_0_r16, QK8_0, TN)
}

/* two groups (32 rows) by up to TN2 activation rows: each broadcast feeds both groups' vpdpbusd (half
 * a broadcast per product instead of one). The integer sums are exact, so one accumulator per row
 * over the 8 vectors gives the one-group tile's sumi: the same bits */
#define TN2 4

INLINE void q8_0_r16_tile2(const block_q8_0_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                           int64_t ldy) {
    const block_q8_0_r16 *x2 = x + nb; /* the next group */
    const block_q8_0 *q[TN2];          /* prepared: codes qa + 128 */
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) q[j] = (const block_q8_0 *)(const void *)(a + j * as);
    __m512 acc[TN2], acc2[TN2];
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) acc[j] = acc2[j] = _mm512_setzero_ps();
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++) {
        __m512i s[TN2], s2[TN2], wsum = _mm512_setzero_si512(), wsum2 = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) s[j] = s2[j] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const __m512i w = _mm512_loadu_si512((const void *)x[b].qs[k]);
            const __m512i w2 = _mm512_loadu_si512((const void *)x2[b].qs[k]);
            wsum = _mm512_dpbusd_epi32(wsum, ones, w);
            wsum2 = _mm512_dpbusd_epi32(wsum2, ones, w2);
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) {
                const __m512i ak = bcast4(q[j][b].qs + 4 * k);
                s[j] = _mm512_dpbusd_epi32(s[j], ak, w);
                s2[j] = _mm512_dpbusd_epi32(s2[j], ak, w2);
            }
        }
        const __m512i corr = _mm512_slli_epi32(wsum, 7), corr2 = _mm512_slli_epi32(wsum2, 7);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)x[b].d));
        const __m512 dw2 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)x2[b].d));
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            const __m512 da = _mm512_set1_ps(_cvtsh_ss(q[j][b].d));
            acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(da, dw), _mm512_cvtepi32_ps(_mm512_sub_epi32(s[j], corr)), acc[j]);
            acc2[j] = _mm512_fmadd_ps(_mm512_mul_ps(da, dw2), _mm512_cvtepi32_ps(_mm512_sub_epi32(s2[j], corr2)), acc2[j]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) {
        _mm512_storeu_ps(y + j * ldy, acc[j]);
        _mm512_storeu_ps(y + j * ldy + Q35_PACK_ROWS, acc2[j]);
    }
}

void q35_gemm_packed2_q8_0_avx512vnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                      int64_t ldy) {
    Q35_PACKED_DRIVER(q8_0_r16_tile2, block_q8_0_r16, QK8_0, TN2)
}
#endif

void Q35_AVX512_OWN(q35_gemm_packed_q4_K)(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                          int64_t ldy) {
    Q35_PACKED_DRIVER(q4_K_r16_tile, block_q4_K_r16, QK_K, TN)
}

void Q35_AVX512_OWN(q35_gemm_packed_q5_K)(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                          int64_t ldy) {
    Q35_PACKED_DRIVER(q5_K_r16_tile, block_q5_K_r16, QK_K, TN)
}

Q35_AVX512_END
#endif /* Q35_HAVE_X86 */

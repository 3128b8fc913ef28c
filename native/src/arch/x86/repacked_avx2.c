/* The repacked products on AVX2 (gemm_packed entries of q35_kernels_avx2; repacked.h gives
 * the layout and the rule). A 64-byte code vector of the layout is two registers here:
 * rows 0-7 and rows 8-15, run one after the other (Q8_0: both at once, one broadcast of the
 * activation bytes feeding the two). vpmaddubsw gives each row's position
 * pairs as int16; a few of them summed in int16 (below 32768), one vpmaddwd against the row's
 * scale (in both int16 of its lane) makes them the row's scaled int32 sum. Up to TN activation
 * rows share each loaded code vector. With 16 registers the tiles keep only a few code vectors
 * live at once: a spill in the inner loop costs more than the loads it saves. */
#include "kernels.h"

#if Q35_HAVE_X86
#include "arch/x86/avx2.h"          /* opens the target region */
#include "arch/x86/repacked_avx2.h" /* the helpers, compiled inside it */

#define TN 4 /* activation rows per tile */
/* Q6_K's tile takes twice as many: its codes cost 17 ops to unpack per 4 vectors (Q4_K's: 6), which
 * 8 rows share; its float sums wait in y between blocks so the integer sums keep the registers.
 * gemm_bench 14 1024 3584 512 avx2 packed: 94-98 GMAC/s at 4 rows, 103-106 at 8 */
#define TN_Q6K 8
/* the 8 rows [8h, 8h + 8) of a group by RN activation rows; Q4_K, or Q5_K (q5: the blocks are
 * block_q5_K_r16, whose fifth bits join the codes, 0..31). A token's int16 sums of 4 vpmaddubsw
 * stay below 4 * 2 * 31 * 128 = 31744 */
INLINE void q4_K_r16_half(const uint8_t *x0, int64_t stride, int64_t nb, int h, const block_q8_K *const *q, const int RN,
                          float *y, int64_t ldy, const int q5) {
    const __m256i m4 = _mm256_set1_epi8(0xF), b16 = _mm256_set1_epi8(0x10);
    __m256 acc[TN];
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_q4_K_r16 *xb = (const block_q4_K_r16 *)(const void *)(x0 + b * stride);
        if (RN < TN && h == 0) q35_packed_prefetch_ahead_l2(xb, stride);
        __m256i isum[TN];
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) isum[j] = _mm256_setzero_si256();
        for (int sj = 0; sj < 8; sj++) {
            /* the row's scale in both int16 of its lane: one vpmaddwd sums a lane's pair and scales it */
            const __m256i sc16 = pair16(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(xb->sc[sj] + 8 * h))));
            const __m256i qh = q5 ? _mm256_loadu_si256((const __m256i *)(((const block_q5_K_r16 *)(const void *)xb)->qh[sj] + 32 * h))
                                  : _mm256_setzero_si256();
            /* half a sub-block at a time (code vectors k, k + 1: 4 registers of codes), each token's 4
             * vpmaddubsw summed in int16 and scaled into its int32 sum at once: few registers live, none spilled */
#pragma GCC unroll 1
            for (int k = 0; k < 4; k += 2) {
                __m256i c[4];
#pragma GCC unroll 2
                for (int e = 0; e < 2; e++) {
                    const __m256i raw = _mm256_loadu_si256((const __m256i *)(xb->qs[4 * sj + k + e] + 32 * h));
                    c[2 * e] = _mm256_and_si256(raw, m4);
                    c[2 * e + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                    if (q5) { /* bit 2v of a qh byte (v = k + e): its low nibble's fifth bit; bit 2v + 1: its
                               * high one's; shifted to bit 4 (16-bit shifts: bit 4 of a byte comes from its own byte) */
                        const int v = k + e;
                        c[2 * e] = _mm256_or_si256(c[2 * e], _mm256_and_si256(shift16(qh, 4 - 2 * v), b16));
                        c[2 * e + 1] = _mm256_or_si256(c[2 * e + 1], _mm256_and_si256(shift16(qh, 3 - 2 * v), b16));
                    }
                }
#pragma GCC unroll 8
                for (int j = 0; j < RN; j++) {
                    const int8_t *p = q[j][b].qs + 32 * sj + 8 * k; /* positions +0..3, +4..7 (vector k), +8..15 (k + 1) */
                    const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(c[0], bcast4(p)), _mm256_maddubs_epi16(c[1], bcast4(p + 4)));
                    const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(c[2], bcast4(p + 8)), _mm256_maddubs_epi16(c[3], bcast4(p + 12)));
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(_mm256_add_epi16(s01, s23), sc16));
                }
            }
        }
        __m256i mp[4];
        k45_min_pairs(xb, h, mp);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xb->d + 8 * h)));
        const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xb->dmin + 8 * h)));
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            __m256i msum = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mp[k], k45_bsum_pair(q[j][b].bsums, k)));
            acc[j] = k45_step(acc[j], q[j][b].d, dw, dmw, isum[j], msum);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) _mm256_storeu_ps(y + j * ldy + 8 * h, acc[j]);
}

INLINE void q4_K_half(const block_q4_K_r16 *x, int64_t nb, int h, const block_q8_K *const *q, const int RN, float *y,
                      int64_t ldy) {
    q4_K_r16_half((const uint8_t *)x, sizeof *x, nb, h, q, RN, y, ldy, 0);
}
INLINE void q5_K_half(const block_q5_K_r16 *x, int64_t nb, int h, const block_q8_K *const *q, const int RN, float *y,
                      int64_t ldy) {
    q4_K_r16_half((const uint8_t *)x, sizeof *x, nb, h, q, RN, y, ldy, 1);
}
R16_TILE(q4_K_r16_tile, block_q4_K_r16, block_q8_K, q4_K_half, TN)
R16_TILE(q5_K_r16_tile, block_q5_K_r16, block_q8_K, q5_K_half, TN)

/* Q6_K, rows [8h, 8h + 8): two pairs of vpmaddubsw sums (at most 2 * 2 * 63 * 128 = 32256) meet the
 * row's scale, repeated in both int16 of its lane, in one vpmaddwd each; the -32 offsets as
 * sum_j sc_j bsum_j, by pairs of sub-blocks */
INLINE void q6_K_r16_half(const block_q6_K_r16 *x, int64_t nb, int h, const block_q8_K *const *q, const int RN,
                          float *y, int64_t ldy) {
    zero_rows(y, ldy, h, RN); /* the float sums wait in y between blocks: the registers go to the integer sums */
    for (int64_t b = 0; b < nb; b++) {
        if (RN < TN_Q6K && h == 0) q35_packed_prefetch_ahead_l2(&x[b], sizeof *x);
        __m256i isum[TN_Q6K];
#pragma GCC unroll 8
        for (int j = 0; j < RN; j++) isum[j] = _mm256_setzero_si256();
        for (int sj = 0; sj < 16; sj++) {
            __m256i c[4];
            q6_K_r16_codes(&x[b], sj, h, c);
            const __m256i sc32 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].sc[sj] + 8 * h)));
            const __m256i sc16 = pair16(sc32);
#pragma GCC unroll 8
            for (int j = 0; j < RN; j++) {
                const int8_t *p = q[j][b].qs + 16 * sj;
                const __m256i m0 = _mm256_add_epi16(_mm256_maddubs_epi16(c[0], bcast4(p)), _mm256_maddubs_epi16(c[1], bcast4(p + 4)));
                const __m256i m1 = _mm256_add_epi16(_mm256_maddubs_epi16(c[2], bcast4(p + 8)), _mm256_maddubs_epi16(c[3], bcast4(p + 12)));
                isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(_mm256_madd_epi16(m0, sc16), _mm256_madd_epi16(m1, sc16)));
            }
        }
        q6_K_add_block(&x[b], h, q, b, RN, isum, y, ldy);
    }
}

R16_TILE(q6_K_r16_tile, block_q6_K_r16, block_q8_K, q6_K_r16_half, TN_Q6K)

/* Q8_0, all 16 rows at once: signed codes against signed activations, so vpmaddubsw takes |w|
 * (unsigned, up to 128) and the activation bytes given w's signs (vpsignb); a pair sums to at most
 * 2 * 128 * 127 = 32512, and vpmaddwd by ones makes each vector's 4 positions a row's int32 sum.
 * One broadcast of an activation's 4 bytes feeds both halves of a code vector (rows 0-7, 8-15):
 * gemm_bench 8 1024 3584 512 avx2 packed, Zen 3, half by half at 4 rows -> both halves at 3 rows:
 * 41.7-42.3 -> 47.8-49.7 GMAC/s (alternating, the other core busy) */
#define TN_Q80 3
INLINE void q8_0_r16_tile(const block_q8_0_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    const block_q8_0 *q[TN_Q80];
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) q[j] = (const block_q8_0 *)(const void *)(a + j * as);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[2][TN_Q80];
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) acc[0][j] = acc[1][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        if (RN < TN_Q80) q35_packed_prefetch_ahead(&x[b], sizeof *x);
        __m256i isum[2][TN_Q80];
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) isum[0][j] = isum[1][j] = _mm256_setzero_si256();
#pragma GCC unroll 1
        for (int k = 0; k < 8; k++) { /* positions 4k .. 4k + 3 */
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)x[b].qs[k]), aw0 = _mm256_abs_epi8(w0);
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(x[b].qs[k] + 32)), aw1 = _mm256_abs_epi8(w1);
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) {
                const __m256i qa = bcast4(q[j][b].qs + 4 * k);
                isum[0][j] = _mm256_add_epi32(isum[0][j], _mm256_madd_epi16(_mm256_maddubs_epi16(aw0, _mm256_sign_epi8(qa, w0)), ones));
                isum[1][j] = _mm256_add_epi32(isum[1][j], _mm256_madd_epi16(_mm256_maddubs_epi16(aw1, _mm256_sign_epi8(qa, w1)), ones));
            }
        }
        const __m256 dw0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x[b].d));
        const __m256 dw1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x[b].d + 8)));
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            const __m256 da = _mm256_set1_ps(q35_h2f(q[j][b].d));
            acc[0][j] = _mm256_fmadd_ps(_mm256_mul_ps(da, dw0), _mm256_cvtepi32_ps(isum[0][j]), acc[0][j]);
            acc[1][j] = _mm256_fmadd_ps(_mm256_mul_ps(da, dw1), _mm256_cvtepi32_ps(isum[1][j]), acc[1][j]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) {
        _mm256_storeu_ps(y + j * ldy, acc[0][j]);
        _mm256_storeu_ps(y + j * ldy + 8, acc[1][j]);
    }
}

/* Q8_0 activation rows as qa + 128 for the VNNI tables (kernels.h) */
void q35_prepare_packed_q8_0_plus128_avx2(void *a, int64_t as, int nt, int64_t n) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int t = 0; t < nt; t++) {
        block_q8_0 *q = (block_q8_0 *)(void *)((uint8_t *)a + t * as);
        for (int64_t b = 0; b < n / QK8_0; b++)
            _mm256_storeu_si256((__m256i *)q[b].qs, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q[b].qs), flip));
    }
}

void q35_gemm_packed_q8_0_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    Q35_PACKED_DRIVER(q8_0_r16_tile, block_q8_0_r16, QK8_0, TN_Q80)
}

/* IQ4_XS, rows [8h, 8h + 8): the codes looked up as grid values (vpshufb), then as Q8_0 above |g|
 * against the activation bytes given g's signs; each vpmaddubsw pair (at most 2 * 127 * 127) meets
 * the row's sub-block scale, repeated in both int16 of its lane, in one vpmaddwd */
INLINE void iq4_xs_r16_half(const block_iq4_xs_r16 *x, int64_t nb, int h, const block_q8_K *const *q, const int RN,
                            float *y, int64_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q35_kvalues_iq4nl));
    __m256 acc[TN];
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        if (RN < TN && h == 0) q35_packed_prefetch_ahead_l2(&x[b], sizeof *x);
        __m256i isum[TN];
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) isum[j] = _mm256_setzero_si256();
        for (int sj = 0; sj < 8; sj++) {
            const __m256i ls32 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].ls[sj] + 8 * h)));
            const __m256i ls16 = pair16(ls32);
#pragma GCC unroll 1
            for (int k = 0; k < 4; k++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(x[b].qs[4 * sj + k] + 32 * h));
                const __m256i lo = _mm256_shuffle_epi8(grid, _mm256_and_si256(raw, m4));
                const __m256i hi = _mm256_shuffle_epi8(grid, _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
                const __m256i alo = _mm256_abs_epi8(lo), ahi = _mm256_abs_epi8(hi);
#pragma GCC unroll 4
                for (int j = 0; j < RN; j++) {
                    const int8_t *p = q[j][b].qs + 32 * sj + 8 * k; /* positions +0..3 (lo), +4..7 (hi) */
                    const __m256i plo = _mm256_maddubs_epi16(alo, _mm256_sign_epi8(bcast4(p), lo));
                    const __m256i phi = _mm256_maddubs_epi16(ahi, _mm256_sign_epi8(bcast4(p + 4), hi));
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(_mm256_madd_epi16(plo, ls16), _mm256_madd_epi16(phi, ls16)));
                }
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x[b].d + 8 * h)));
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(q[j][b].d), dw), _mm256_cvtepi32_ps(isum[j]), acc[j]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) _mm256_storeu_ps(y + j * ldy + 8 * h, acc[j]);
}

R16_TILE(iq4_xs_r16_tile, block_iq4_xs_r16, block_q8_K, iq4_xs_r16_half, TN)

void q35_gemm_packed_iq4_xs_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                 int64_t ldy) {
    Q35_PACKED_DRIVER(iq4_xs_r16_tile, block_iq4_xs_r16, QK_K, TN)
}

void q35_gemm_packed_q6_K_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    Q35_PACKED_DRIVER(q6_K_r16_tile, block_q6_K_r16, QK_K, TN_Q6K)
}

void q35_gemm_packed_q5_K_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    Q35_PACKED_DRIVER(q5_K_r16_tile, block_q5_K_r16, QK_K, TN)
}

void q35_gemm_packed_q4_K_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    Q35_PACKED_DRIVER(q4_K_r16_tile, block_q4_K_r16, QK_K, TN)
}

Q35_AVX2_END
#endif /* Q35_HAVE_X86 */

/* The repacked products of Q4_K, Q5_K, Q6_K, Q8_0 and IQ4_XS on AVX2 with AVX-VNNI (vpdpbusd on
 * ymm, VEX encoded: Intel since Alder Lake, AMD since Zen 5). Dispatch puts them over the plain
 * AVX2 table's where the CPU has the extension (q35_avx_vnni_usable). repacked.h gives the layouts
 * and the rules; every value has the bits of the plain tiles (integer sums are exact in any
 * grouping), which the self-test checks.
 *
 * vpdpbusd is vpmaddubsw + vpmaddwd + vpaddd in one instruction on the multiply pipes, with no
 * int16 step to saturate. The plain Q8_0 and IQ4_XS tiles spend two multiplies (vpmaddubsw,
 * vpmaddwd) and a vpsignb on each code vector and token; here one. The K-quants sum each
 * sub-block in int32 chains and take the row's scale with one vpmulld, where the plain tiles
 * need int16 pairs and a vpmaddwd per two or four vectors.
 *
 * As in repacked_avx2.c a 64-byte code vector of the layout is two registers (rows 0-7, rows
 * 8-15), run one after the other; the tiles' float sums wait in y between blocks, so the
 * registers hold the integer chains, two per activation row where a row's chain would be long. */
#include "kernels.h"

#if Q35_HAVE_AVXVNNI
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avxvnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avxvnni")
#endif

#include "arch/x86/repacked_avx2.h" /* the helpers, compiled inside the target region */

/* activation rows per tile: Q8_0 and IQ4_XS two chains each, Q6_K one (gemm_bench TYPE 1024 3584 512
 * avx2 packed: 5 or 6 rows spilled the chains; Q6_K at 8 rows 114, at 4 rows 115-125 GMAC/s) */
#define TN 4

/* acc + per int32 lane, the sum of 4 products u8 * s8 (exact) */
#define DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32((acc), (u), (s))

/* Q8_0: vpdpbusd's first operand is unsigned, so the activations go in as qa + 128 (qa ^ 0x80,
 * prepared once per u-batch by q35_prepare_packed_q8_0_plus128_avx2) and 128 sum_l q_l,r comes off
 * again, both sums exact */
INLINE void q8_0_half(const block_q8_0_r16 *x, int64_t nb, int h, const block_q8_0 *const *q, const int RN, float *y,
                      int64_t ldy) {
    const __m256i ones = _mm256_set1_epi8(1);
    zero_rows(y, ldy, h, RN);
    for (int64_t b = 0; b < nb; b++) {
        if (RN < TN && h == 0) q35_packed_prefetch_ahead(&x[b], sizeof *x);
        __m256i s0[TN], s1[TN], wsum = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) s0[j] = s1[j] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k += 2) { /* vectors k and k + 1: positions 4k .. 4k + 7 */
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(x[b].qs[k] + 32 * h));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(x[b].qs[k + 1] + 32 * h));
            wsum = DPBUSD(DPBUSD(wsum, ones, w0), ones, w1);
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) {
                s0[j] = DPBUSD(s0[j], bcast4(q[j][b].qs + 4 * k), w0);
                s1[j] = DPBUSD(s1[j], bcast4(q[j][b].qs + 4 * k + 4), w1);
            }
        }
        const __m256i corr = _mm256_slli_epi32(wsum, 7);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x[b].d + 8 * h)));
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            const __m256 dd = _mm256_mul_ps(_mm256_set1_ps(q35_h2f(q[j][b].d)), dw);
            add_block(y + j * ldy + 8 * h, dd, _mm256_sub_epi32(_mm256_add_epi32(s0[j], s1[j]), corr));
        }
    }
}

R16_TILE(q8_0_tile, block_q8_0_r16, block_q8_0, q8_0_half, TN)

void q35_gemm_packed_q8_0_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    Q35_PACKED_DRIVER(q8_0_tile, block_q8_0_r16, QK8_0, TN)
}

/* IQ4_XS: the codes looked up as grid value + 128 (unsigned, vpshufb), and 128 times the
 * sub-block's activation sum (the Q8_K bsums) taken off again, both exact; then the row's
 * sub-block scale, one vpmulld per sub-block and activation row */
INLINE void iq4_xs_half(const block_iq4_xs_r16 *x, int64_t nb, int h, const block_q8_K *const *q, const int RN,
                        float *y, int64_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i grid = _mm256_add_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q35_kvalues_iq4nl)),
                                         _mm256_set1_epi8((char)0x80)); /* k + 128 as unsigned bytes */
    zero_rows(y, ldy, h, RN);
    for (int64_t b = 0; b < nb; b++) {
        if (RN < TN && h == 0) q35_packed_prefetch_ahead(&x[b], sizeof *x);
        __m256i isum[TN];
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) isum[j] = _mm256_setzero_si256();
        for (int sj = 0; sj < 8; sj++) {
            __m256i sa[TN], sb[TN];
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) {
                sa[j] = _mm256_set1_epi32(-128 * (q[j][b].bsums[2 * sj] + q[j][b].bsums[2 * sj + 1]));
                sb[j] = _mm256_setzero_si256();
            }
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(x[b].qs[4 * sj + k] + 32 * h));
                const __m256i lo = _mm256_shuffle_epi8(grid, _mm256_and_si256(raw, m4));
                const __m256i hi = _mm256_shuffle_epi8(grid, _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
#pragma GCC unroll 4
                for (int j = 0; j < RN; j++) {
                    const int8_t *p = q[j][b].qs + 32 * sj + 8 * k; /* positions +0..3 (lo), +4..7 (hi) */
                    sa[j] = DPBUSD(sa[j], lo, bcast4(p));
                    sb[j] = DPBUSD(sb[j], hi, bcast4(p + 4));
                }
            }
            const __m256i ls = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].ls[sj] + 8 * h)));
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(_mm256_add_epi32(sa[j], sb[j]), ls));
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x[b].d + 8 * h)));
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) add_block(y + j * ldy + 8 * h, _mm256_mul_ps(_mm256_set1_ps(q[j][b].d), dw), isum[j]);
    }
}

R16_TILE(iq4_xs_tile, block_iq4_xs_r16, block_q8_K, iq4_xs_half, TN)

void q35_gemm_packed_iq4_xs_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                    int64_t ldy) {
    Q35_PACKED_DRIVER(iq4_xs_tile, block_iq4_xs_r16, QK_K, TN)
}

/* Q4_K, or Q5_K (q5: the blocks are block_q5_K_r16, whose fifth bits join the codes, 0..31): per
 * sub-block and activation row two chains (low and high nibbles) of 4 vpdpbusd, then the row's
 * scale (vpmulld); the mins against the pairs of sub-block sums per block (vpdpwssd) */
INLINE void k45_half(const uint8_t *x0, int64_t stride, int64_t nb, int h, const block_q8_K *const *q, const int RN,
                     float *y, int64_t ldy, const int q5) {
    const __m256i m4 = _mm256_set1_epi8(0xF), b16 = _mm256_set1_epi8(0x10);
    zero_rows(y, ldy, h, RN);
    for (int64_t b = 0; b < nb; b++) {
        const block_q4_K_r16 *xb = (const block_q4_K_r16 *)(const void *)(x0 + b * stride);
        if (RN < TN && h == 0) q35_packed_prefetch_ahead(xb, stride);
        __m256i isum[TN];
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) isum[j] = _mm256_setzero_si256();
        for (int sj = 0; sj < 8; sj++) {
            const __m256i qh = q5 ? _mm256_loadu_si256((const __m256i *)(((const block_q5_K_r16 *)(const void *)xb)->qh[sj] + 32 * h))
                                  : _mm256_setzero_si256();
            __m256i sa[TN], sb[TN];
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) sa[j] = sb[j] = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(xb->qs[4 * sj + k] + 32 * h));
                __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                if (q5) { /* bit 2k of a qh byte: its low nibble's fifth bit, bit 2k + 1: its high one's (to bit 4) */
                    lo = _mm256_or_si256(lo, _mm256_and_si256(shift16(qh, 4 - 2 * k), b16));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(shift16(qh, 3 - 2 * k), b16));
                }
#pragma GCC unroll 4
                for (int j = 0; j < RN; j++) {
                    const int8_t *p = q[j][b].qs + 32 * sj + 8 * k; /* positions +0..3 (lo), +4..7 (hi) */
                    sa[j] = DPBUSD(sa[j], lo, bcast4(p));
                    sb[j] = DPBUSD(sb[j], hi, bcast4(p + 4));
                }
            }
            const __m256i sc = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(xb->sc[sj] + 8 * h)));
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(_mm256_add_epi32(sa[j], sb[j]), sc));
        }
        __m256i mp[4];
        k45_min_pairs(xb, h, mp);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xb->d + 8 * h)));
        const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xb->dmin + 8 * h)));
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            __m256i msum = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) msum = _mm256_dpwssd_avx_epi32(msum, mp[k], k45_bsum_pair(q[j][b].bsums, k));
            float *yj = y + j * ldy + 8 * h;
            _mm256_storeu_ps(yj, k45_step(_mm256_loadu_ps(yj), q[j][b].d, dw, dmw, isum[j], msum));
        }
    }
}

INLINE void q4_K_half(const block_q4_K_r16 *x, int64_t nb, int h, const block_q8_K *const *q, const int RN, float *y,
                      int64_t ldy) {
    k45_half((const uint8_t *)x, sizeof *x, nb, h, q, RN, y, ldy, 0);
}
INLINE void q5_K_half(const block_q5_K_r16 *x, int64_t nb, int h, const block_q8_K *const *q, const int RN, float *y,
                      int64_t ldy) {
    k45_half((const uint8_t *)x, sizeof *x, nb, h, q, RN, y, ldy, 1);
}
R16_TILE(q4_K_tile, block_q4_K_r16, block_q8_K, q4_K_half, TN)
R16_TILE(q5_K_tile, block_q5_K_r16, block_q8_K, q5_K_half, TN)

void q35_gemm_packed_q4_K_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    Q35_PACKED_DRIVER(q4_K_tile, block_q4_K_r16, QK_K, TN)
}

void q35_gemm_packed_q5_K_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    Q35_PACKED_DRIVER(q5_K_tile, block_q5_K_r16, QK_K, TN)
}

/* Q6_K: per sub-block of 16 positions and activation row, one chain of 4 vpdpbusd (codes 0..63),
 * times the row's scale (vpmulld); the -32 offsets as sum_j sc_j bsum_j per block, by pairs of
 * sub-blocks (vpmaddwd) */
INLINE void q6_K_half(const block_q6_K_r16 *x, int64_t nb, int h, const block_q8_K *const *q, const int RN, float *y,
                      int64_t ldy) {
    zero_rows(y, ldy, h, RN);
    for (int64_t b = 0; b < nb; b++) {
        if (RN < TN && h == 0) q35_packed_prefetch_ahead(&x[b], sizeof *x);
        __m256i isum[TN];
#pragma GCC unroll 8
        for (int j = 0; j < RN; j++) isum[j] = _mm256_setzero_si256();
        for (int sj = 0; sj < 16; sj++) {
            __m256i c[4];
            q6_K_r16_codes(&x[b], sj, h, c);
            const __m256i sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].sc[sj] + 8 * h)));
#pragma GCC unroll 8
            for (int j = 0; j < RN; j++) {
                const int8_t *p = q[j][b].qs + 16 * sj;
                __m256i s = DPBUSD(_mm256_setzero_si256(), c[0], bcast4(p));
                s = DPBUSD(s, c[1], bcast4(p + 4));
                s = DPBUSD(s, c[2], bcast4(p + 8));
                s = DPBUSD(s, c[3], bcast4(p + 12));
                isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(s, sc));
            }
        }
        q6_K_add_block(&x[b], h, q, b, RN, isum, y, ldy);
    }
}

R16_TILE(q6_K_tile, block_q6_K_r16, block_q8_K, q6_K_half, TN)

void q35_gemm_packed_q6_K_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    Q35_PACKED_DRIVER(q6_K_tile, block_q6_K_r16, QK_K, TN)
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* Q35_HAVE_AVXVNNI */

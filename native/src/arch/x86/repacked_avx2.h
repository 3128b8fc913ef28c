/* What the AVX2 repacked tiles share: repacked_avx2.c (plain AVX2) and repacked_avxvnni.c (AVX2 with
 * AVX-VNNI). Included by those two files only, after they open their target region, so every helper
 * is compiled for the including file's instruction set. A 64-byte code vector of a layout
 * (repacked.h) is two registers here, rows 0-7 and rows 8-15 of the group: "h" picks one. */
#ifndef Q35_ARCH_REPACKED_AVX2_H
#define Q35_ARCH_REPACKED_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "fp16.h"
#include "repacked.h"

#define INLINE static inline __attribute__((always_inline))

/* 4 activation bytes in every lane */
INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* v's 16-bit lanes shifted left by s (right by -s where s < 0) */
INLINE __m256i shift16(__m256i v, int s) {
    return s >= 0 ? _mm256_slli_epi16(v, s) : _mm256_srli_epi16(v, -s);
}

/* (v, v) as int16 in each int32 lane (v a small signed scale), for one vpmaddwd against pair sums */
INLINE __m256i pair16(__m256i v) {
    return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(v, 16));
}

/* (a, b) as the two int16 of one int32, in every lane */
INLINE __m256i bcast_pair16(int32_t a, int32_t b) {
    return _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)a | (uint32_t)b << 16));
}

/* y rows [8h, 8h + 8) of RN activation rows zeroed, for tiles that add each block's step into y */
INLINE void zero_rows(float *y, int64_t ldy, int h, const int RN) {
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) _mm256_storeu_ps(y + j * ldy + 8 * h, _mm256_setzero_ps());
}

/* y_j <- fma(dd, float(isum), y_j): a rule's float step for 8 rows, its sum waiting in y */
INLINE void add_block(float *yj, __m256 dd, __m256i isum) {
    _mm256_storeu_ps(yj, _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(isum), _mm256_loadu_ps(yj)));
}

/* A group's tile: RN (at most tn) activation rows, then the group's two halves of 8 rows */
#define R16_TILE(name, block_t, act_t, half, tn)                                                             \
    INLINE void name(const block_t *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,      \
                     int64_t ldy) {                                                                         \
        const act_t *q[tn];                                                                                 \
        _Pragma("GCC unroll 8") for (int j = 0; j < RN; j++) q[j] = (const act_t *)(const void *)(a + j * as); \
        half(x, nb, 0, q, RN, y, ldy);                                                                      \
        half(x, nb, 1, q, RN, y, ldy);                                                                      \
    }

/* Q4_K / Q5_K: the 8 rows' mins as int16 pairs (m_2k, m_2k+1), k = 0..3, against the pairs of
 * sub-block sums of an activation row (k45_bsum_pair) */
INLINE void k45_min_pairs(const block_q4_K_r16 *xb, int h, __m256i mp[4]) {
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
        mp[k] = _mm256_or_si256(
            _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(xb->m[2 * k] + 8 * h))),
            _mm256_slli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(xb->m[2 * k + 1] + 8 * h))), 16));
}

/* the activation sums of sub-blocks 2k and 2k + 1 (Q8_K bsums are per 16) as one int16 pair */
INLINE __m256i k45_bsum_pair(const int16_t *bs, int k) {
    return bcast_pair16(bs[4 * k] + bs[4 * k + 1], bs[4 * k + 2] + bs[4 * k + 3]);
}

/* Q4_K / Q5_K's float steps: fma(da d, isum, acc), then fma(-(da dmin), msum, acc) as the rule writes
 * it (not fnmadd: the same value, but an emulator may give the other sign of zero) */
INLINE __m256 k45_step(__m256 acc, float da_s, __m256 dw, __m256 dmw, __m256i isum, __m256i msum) {
    const __m256 da = _mm256_set1_ps(da_s);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(da, dw), _mm256_cvtepi32_ps(isum), acc);
    const __m256 ndm = _mm256_xor_ps(_mm256_mul_ps(da, dmw), _mm256_set1_ps(-0.0f));
    return _mm256_fmadd_ps(ndm, _mm256_cvtepi32_ps(msum), acc);
}

/* Q6_K: the 4 code vectors (0..63) of sub-block j: positions 16j + 4e .. + 3, e = 0..3 */
INLINE void q6_K_r16_codes(const block_q6_K_r16 *x, int j, int h, __m256i c[4]) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x->sub[j].ql[0] + 32 * h));
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x->sub[j].ql[1] + 32 * h));
    const __m256i hb = _mm256_loadu_si256((const __m256i *)(x->sub[j].qh + 32 * h));
    c[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x03)), 4));
    c[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x0C)), 2));
    c[2] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(hb, _mm256_set1_epi8(0x30)));
    c[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_srli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8((char)0xC0)), 2));
}

/* Q6_K's -32 offsets, sum_j sc_j bsum_j over a block's 16 sub-blocks: the 8 rows' scale pairs
 * (sc_2k, sc_2k+1) once per block, then per activation row against its bsum pairs */
INLINE void q6_K_scale_pairs(const block_q6_K_r16 *x, int h, __m256i sp[8]) {
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        const __m256i s0 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x->sc[2 * k] + 8 * h)));
        const __m256i s1 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x->sc[2 * k + 1] + 8 * h)));
        sp[k] = _mm256_or_si256(_mm256_and_si256(s0, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(s1, 16));
    }
}
INLINE __m256i q6_K_offset_sum(const __m256i sp[8], const int16_t *bsums) {
    int32_t pairs[8];
    memcpy(pairs, bsums, sizeof pairs); /* (bsum_2k, bsum_2k+1) as one int32 each */
    __m256i osum = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) osum = _mm256_add_epi32(osum, _mm256_madd_epi16(sp[k], _mm256_set1_epi32(pairs[k])));
    return osum;
}

/* Q6_K's float step for block b and RN activation rows: fma(da d, isum - 32 sum_j sc_j bsum_j, y) */
INLINE void q6_K_add_block(const block_q6_K_r16 *xb, int h, const block_q8_K *const *q, int64_t b, const int RN,
                           const __m256i *isum, float *y, int64_t ldy) {
    __m256i sp[8];
    q6_K_scale_pairs(xb, h, sp);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xb->d + 8 * h)));
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++)
        add_block(y + j * ldy + 8 * h, _mm256_mul_ps(_mm256_set1_ps(q[j][b].d), dw),
                  _mm256_sub_epi32(isum[j], _mm256_slli_epi32(q6_K_offset_sum(sp, q[j][b].bsums), 5)));
}

#endif

/* Q4_0 x Q8_0 and IQ4_XS x Q8_K on AVX2 + FMA + F16C, one pair and one weight
 * row with 4 activation rows: the two 4-bit formats outside the K-quants, whose
 * nibbles both unpack with nibbles_32. */
#include "kernels.h"

#if Q35_HAVE_X86
#include <string.h>

#include "blocks.h"
#include "arch/x86/avx2.h" /* opens the target region */

/* 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15), then high
 * (16..31). A broadcast load and a per-lane variable shift (cheaper on Zen
 * than shifting a copy and inserting it as the high lane). */
static inline __m256i nibbles_32(const uint8_t *p) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0xF));
}

/* ------------------------------------------------------------------------- */
/* Q4_0 x Q8_0.                                                              */

/* f16 scales of a block pair of both rows -> the two products dW*da, each
 * broadcast: one vcvtph2ps for four halves */
static inline void pair_scales(uint16_t w0, uint16_t w1, uint16_t a0, uint16_t a1, __m256 *d0, __m256 *d1) {
    const uint64_t h = (uint64_t)w0 | ((uint64_t)w1 << 16) | ((uint64_t)a0 << 32) | ((uint64_t)a1 << 48);
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h)); /* dW0 dW1 da0 da1 */
    const __m128 dd = _mm_mul_ps(f, _mm_movehl_ps(f, f));
    *d0 = _mm256_broadcastss_ps(dd);
    *d1 = _mm256_broadcastss_ps(_mm_movehdup_ps(dd));
}

/* Q4_0 x Q8_0, sum_j (q_j - 8) qa_j = maddubs(q, qa) - maddubs(8, qa) (both
 * int16-safe: 2*15*127 and 2*8*127). Two blocks per step into two
 * accumulators; pair_scales gives the two blocks' dW dA. */
float q35_vec_dot_q4_0_q8_0_avx2(const void *w, const void *a, int64_t n) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK4_0;
    const __m256i eight = _mm256_set1_epi8(8), ones16 = _mm256_set1_epi16(1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
#define Q4_0_BLOCK(k, acc, d)                                                                               \
    {                                                                                                   \
        const __m256i qa = _mm256_loadu_si256((const __m256i *)y[b + (k)].qs);                          \
        const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles_32(x[b + (k)].qs), qa),       \
                                             _mm256_maddubs_epi16(eight, qa));                          \
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones16)), acc);              \
    }
    for (; b + 2 <= nb; b += 2) {
        __m256 d0, d1;
        pair_scales(x[b].d, x[b + 1].d, y[b].d, y[b + 1].d, &d0, &d1);
        Q4_0_BLOCK(0, acc0, d0)
        Q4_0_BLOCK(1, acc1, d1)
    }
    for (; b < nb; b++) {
        const __m256 d0 = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        Q4_0_BLOCK(0, acc0, d0)
    }
#undef Q4_0_BLOCK
    return hsum_ps256(_mm256_add_ps(acc0, acc1));
}

/* dW_b * da_{r,b} and dW_{b+1} * da_{r,b+1} of a block pair for 4 rows, as
 * floats: s[2r], s[2r+1] (the same products as pair_scales) */
static inline void pair_scales4(uint16_t w0, uint16_t w1, const block_q8_0 *const *y, int64_t b, float *s) {
    const __m256 fw = _mm256_cvtph_ps(_mm_set1_epi32((int)((uint32_t)w0 | ((uint32_t)w1 << 16))));
    const __m256 fa = _mm256_cvtph_ps(_mm_setr_epi16((short)y[0][b].d, (short)y[0][b + 1].d, (short)y[1][b].d,
                                                     (short)y[1][b + 1].d, (short)y[2][b].d, (short)y[2][b + 1].d,
                                                     (short)y[3][b].d, (short)y[3][b + 1].d));
    _mm256_store_ps(s, _mm256_mul_ps(fw, fa));
}

/* Q4_0 as q35_vec_dot_q4_0_q8_0_avx2. The weights of a block are unpacked once to
 * w = q - 8 and |w|; per row maddubs(|w|, sign(qa, w)) gives the same int16 pair
 * sums (q - 8) qa as maddubs(q, qa) - maddubs(8, qa) (Q8_0 quants are never
 * -128, as for the sign trick of the Q8_0 kernels). */
void q35_vec_dot4_q4_0_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_q4_0 *x = w;
    ROWS4(block_q8_0, y, a, as);
    const int64_t nb = n / QK4_0;
    const __m256i eight = _mm256_set1_epi8(8), ones16 = _mm256_set1_epi16(1);
    __m256 acc0[4], acc1[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
    float s[8] __attribute__((aligned(32)));
    int64_t b = 0;
#define Q4_0_DOT(wq, aw, blk, d, acc)                                                                   \
    {                                                                                                   \
        const __m256i qa = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(blk).qs), wq);         \
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(aw, qa), ones16)), acc); \
    }
    for (; b + 2 <= nb; b += 2) {
        pair_scales4(x[b].d, x[b + 1].d, y, b, s);
        const __m256i w0 = _mm256_sub_epi8(nibbles_32(x[b].qs), eight), w1 = _mm256_sub_epi8(nibbles_32(x[b + 1].qs), eight);
        const __m256i aw0 = _mm256_sign_epi8(w0, w0), aw1 = _mm256_sign_epi8(w1, w1);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            Q4_0_DOT(w0, aw0, y[r][b], _mm256_broadcast_ss(s + 2 * r), acc0[r])
            Q4_0_DOT(w1, aw1, y[r][b + 1], _mm256_broadcast_ss(s + 2 * r + 1), acc1[r])
        }
    }
    for (; b < nb; b++) {
        const __m256i w0 = _mm256_sub_epi8(nibbles_32(x[b].qs), eight), aw0 = _mm256_sign_epi8(w0, w0);
        const float dw = h2f(x[b].d);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m256 d0 = _mm256_set1_ps(dw * h2f(y[r][b].d));
            Q4_0_DOT(w0, aw0, y[r][b], d0, acc0[r])
        }
    }
#undef Q4_0_DOT
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) out[r] = hsum_ps256(_mm256_add_ps(acc0[r], acc1[r]));
}

/* ------------------------------------------------------------------------- */
/* IQ4_XS x Q8_K.                                                            */

/* IQ4_XS: nibbles -> kvalues_iq4nl through pshufb, signed x signed dot (sign
 * trick), the 8 sub-block scales (ls - 32) built as int16 once per super-block. */
float q35_vec_dot_iq4_xs_q8_K_avx2(const void *w, const void *a, int64_t n) {
    const block_iq4_xs *x = w;
    const block_q8_K *y = a;
    const __m256i values = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q35_kvalues_iq4nl));
    const __m128i m4 = _mm_set1_epi8(0xF);
    /* (scales_h * 2^(14 - 2 ib)) >> 10 & 0x30 = ((scales_h >> 2 ib) & 3) << 4 */
    const __m128i hmul = _mm_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint32_t sl;
        memcpy(&sl, x[b].scales_l, 4);
        const __m128i v = _mm_cvtsi32_si128((int)sl);
        const __m128i lo = _mm_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4)));
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(_mm_mullo_epi16(_mm_set1_epi16((short)x[b].scales_h), hmul), 10),
                                         _mm_set1_epi16(0x30));
        const __m256i ls = _mm256_broadcastsi128_si256(_mm_sub_epi16(_mm_or_si128(lo, hi), _mm_set1_epi16(32)));
        const uint8_t *qs = x[b].qs;
        const int8_t *q8 = y[b].qs;
        __m256i sumi = _mm256_setzero_si256();
#define IQ4XS_SUB(ib)                                                                                      \
        {                                                                                                  \
            const __m256i k = _mm256_shuffle_epi8(values, nibbles_32(qs + 16 * (ib)));                     \
            const __m256i qa = _mm256_loadu_si256((const __m256i *)(q8 + 32 * (ib)));                      \
            const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(k, k), _mm256_sign_epi8(qa, k));       \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(ls, BCAST_W(ib))));     \
        }
        IQ4XS_SUB(0) IQ4XS_SUB(1) IQ4XS_SUB(2) IQ4XS_SUB(3) IQ4XS_SUB(4) IQ4XS_SUB(5) IQ4XS_SUB(6) IQ4XS_SUB(7)
#undef IQ4XS_SUB
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[b].d * h2f(x[b].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps256(acc);
}

void q35_vec_dot4_iq4_xs_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_iq4_xs *x = w;
    ROWS4(block_q8_K, y, a, as);
    const __m256i values = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q35_kvalues_iq4nl));
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m128i hmul = _mm_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1);
    const __m256i two8 = _mm256_set1_epi8(2);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint32_t sl;
        memcpy(&sl, x[b].scales_l, 4);
        const __m128i v = _mm_cvtsi32_si128((int)sl);
        const __m128i lo = _mm_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4)));
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(_mm_mullo_epi16(_mm_set1_epi16((short)x[b].scales_h), hmul), 10),
                                         _mm_set1_epi16(0x30));
        const __m256i ls = _mm256_broadcastsi128_si256(_mm_sub_epi16(_mm_or_si128(lo, hi), _mm_set1_epi16(32)));
        const uint8_t *qs = x[b].qs;
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
        __m256i ctl = BCAST_W(0);
        for (int ib = 0; ib < 8; ib++) {
            const __m256i k = _mm256_shuffle_epi8(values, nibbles_32(qs + 16 * ib));
            const __m256i ak = _mm256_sign_epi8(k, k);
            const __m256i s = _mm256_shuffle_epi8(ls, ctl);
            ctl = _mm256_add_epi8(ctl, two8);
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                const __m256i qa = _mm256_loadu_si256((const __m256i *)(y[r][b].qs + 32 * ib));
                const __m256i p = _mm256_maddubs_epi16(ak, _mm256_sign_epi8(qa, k));
                sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(p, s));
            }
        }
        const float dw = h2f(x[b].d);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][b].d * dw), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) out[r] = hsum_ps256(acc[r]);
}

Q35_AVX2_END
#endif /* Q35_HAVE_X86 */

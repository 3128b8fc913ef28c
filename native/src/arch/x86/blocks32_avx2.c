/* The other 32-value block types on AVX2 + FMA + F16C: Q4_1 and Q5_1 x Q8_1,
 * Q5_0 and IQ4_NL x Q8_0, one pair and one weight row with 4 activation rows.
 *
 * Per block the 32 weights are unpacked once to bytes w:
 *   Q4_1  nibble                    (0..15, unsigned)
 *   Q5_1  nibble | bit j of qh << 4 (0..31, unsigned)
 *   Q5_0  (nibble | bit << 4) - 16  (-16..15, signed)
 *   IQ4_NL the grid value of the nibble (-127..113, signed)
 * and each activation row adds dW dA sum_j w_j qa_j (maddubs: unsigned x signed,
 * the signed kinds through |w| and qa with w's sign; the int16 pair sums stay
 * below 2 * 127 * 127) plus, for Q4_1 / Q5_1, the min term mW sA (Q8_1's
 * s = dA sum qa). Both dots come from one always-inlined helper with nr = 1 or
 * 4, so out[r] of the 4-row dot equals the single dot bit for bit.
 *
 * The float order is the one llama.cpp runs on x86, which its logits on these
 * files follow (on random weights a different summation order alone moves the
 * logits by more than llama.cpp's own prefill-vs-decode spread): for Q4_1, Q5_0
 * and Q5_1 ggml's x86 dots, one 8-lane accumulator and the min terms in a
 * scalar chain added at the end; for IQ4_NL, which llama.cpp repacks at load
 * (repack.cpp, iq4_nl_8x8) and never runs through its vec_dot on AVX2, the
 * repacked kernels' order: per block the integer sum, then
 * acc = fma(sum, dW dA, acc), block after block. */
#include "kernels.h"

#if Q35_HAVE_X86
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "arch/x86/avx2.h" /* opens the target region */

#define INLINE static inline __attribute__((always_inline))

enum { KIND_Q4_1, KIND_Q5_0, KIND_Q5_1, KIND_IQ4_NL };

/* 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0..15), then the high ones (16..31) */
INLINE __m256i nibbles32(const uint8_t *p) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0xF));
}

/* the 32 bits of qh -> 32 bytes, 0xFF where bit j is set */
INLINE __m256i bits_to_bytes(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    /* byte j takes byte j / 8 of the word, then tests its bit j % 8 */
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                               _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                                                  0x0303030303030303LL));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

/* block b's weights as bytes, its dW and (Q4_1 / Q5_1) its min mW */
INLINE __m256i unpack_block(const void *w, int kind, int64_t b, float *dw, float *mw) {
    switch (kind) {
    case KIND_Q4_1: {
        const block_q4_1 *x = (const block_q4_1 *)w + b;
        *dw = h2f(x->d);
        *mw = h2f(x->m);
        return nibbles32(x->qs);
    }
    case KIND_Q5_1: {
        const block_q5_1 *x = (const block_q5_1 *)w + b;
        *dw = h2f(x->d);
        *mw = h2f(x->m);
        return _mm256_or_si256(nibbles32(x->qs), _mm256_and_si256(bits_to_bytes(x->qh), _mm256_set1_epi8(0x10)));
    }
    case KIND_Q5_0: { /* nibble | 0xF0 where the fifth bit is clear: (nibble | bit << 4) - 16 as int8 */
        const block_q5_0 *x = (const block_q5_0 *)w + b;
        *dw = h2f(x->d);
        return _mm256_or_si256(nibbles32(x->qs), _mm256_andnot_si256(bits_to_bytes(x->qh), _mm256_set1_epi8((char)0xF0)));
    }
    default: {
        const block_iq4_nl *x = (const block_iq4_nl *)w + b;
        *dw = h2f(x->d);
        const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q35_kvalues_iq4nl));
        return _mm256_shuffle_epi8(grid, nibbles32(x->qs));
    }
    }
}

INLINE void blocks32_rows(const void *w, const int kind, const void *a, int64_t as, int64_t n, float *out,
                          const int nr) {
    const int with_min = kind == KIND_Q4_1 || kind == KIND_Q5_1, is_signed = !with_min;
    const int64_t abytes = with_min ? (int64_t)sizeof(block_q8_1) : (int64_t)sizeof(block_q8_0);
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256 acc[4];
    float accm[4] = {0, 0, 0, 0};
    __m128 acc_seq = _mm_setzero_ps(); /* IQ4_NL: lane r is row r's block-by-block sum */
    for (int r = 0; r < nr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; b++) {
        float dw, mw = 0.0f;
        const __m256i q = unpack_block(w, kind, b, &dw, &mw);
        const __m256i aq = is_signed ? _mm256_sign_epi8(q, q) : q;
        __m256i isum[4];
        uint64_t dbits = 0; /* the rows' f16 dA, 16 bits each (IQ4_NL) */
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            /* block_q8_0 and block_q8_1 both start with d; qs follows Q8_1's s */
            const uint8_t *yb = (const uint8_t *)a + r * as + b * abytes;
            const uint16_t *dh = (const uint16_t *)(const void *)yb;
            const __m256i qa = _mm256_loadu_si256((const __m256i *)(yb + (with_min ? 4 : 2)));
            const __m256i p = _mm256_maddubs_epi16(aq, is_signed ? _mm256_sign_epi8(qa, q) : qa);
            isum[r] = _mm256_madd_epi16(p, ones16);
            if (kind == KIND_IQ4_NL) {
                dbits |= (uint64_t)dh[0] << (16 * r);
                continue;
            }
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f(dh[0])), _mm256_cvtepi32_ps(isum[r]), acc[r]);
            if (with_min) accm[r] = fmaf(mw, h2f(dh[1]), accm[r]); /* one rounding, written out */
        }
        if (kind == KIND_IQ4_NL) { /* the block's integer sum of each row in lane r */
            for (int r = nr; r < 4; r++) isum[r] = _mm256_setzero_si256();
            const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(isum[0], isum[1]), _mm256_hadd_epi32(isum[2], isum[3]));
            const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            const __m128 d4 = _mm_mul_ps(_mm_set1_ps(dw), _mm_cvtph_ps(_mm_cvtsi64_si128((long long)dbits)));
            acc_seq = _mm_fmadd_ps(_mm_cvtepi32_ps(s4), d4, acc_seq);
        }
    }
    if (kind == KIND_IQ4_NL) {
        float seq[4];
        _mm_storeu_ps(seq, acc_seq);
        for (int r = 0; r < nr; r++) out[r] = seq[r];
        return;
    }
    for (int r = 0; r < nr; r++) out[r] = hsum_ps256(acc[r]) + accm[r];
}

/* IQ4_NL block b against activation block y[b]: 8 int32 lanes of its integer sum, and dW dA */
INLINE __m256i iq4_nl_block(const void *w, const block_q8_0 *y, int64_t b, float *d) {
    float dw, mw;
    const __m256i q = unpack_block(w, KIND_IQ4_NL, b, &dw, &mw);
    const __m256i qa = _mm256_loadu_si256((const __m256i *)y[b].qs);
    *d = dw * h2f(y[b].d);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(qa, q)), _mm256_set1_epi16(1));
}

/* IQ4_NL against one activation row: the blocks' integer sums reduced 4 at a time (one hadd tree for
 * 4 blocks), then the same fused multiply-adds, block after block, as blocks32_rows */
static float iq4_nl_row(const void *w, const void *a, int64_t n) {
    const block_q8_0 *y = a;
    const int64_t nb = n / 32;
    float acc = 0.0f;
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        float d[4], s[4];
        const __m256i i0 = iq4_nl_block(w, y, b, &d[0]), i1 = iq4_nl_block(w, y, b + 1, &d[1]);
        const __m256i i2 = iq4_nl_block(w, y, b + 2, &d[2]), i3 = iq4_nl_block(w, y, b + 3, &d[3]);
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(i0, i1), _mm256_hadd_epi32(i2, i3));
        _mm_storeu_ps(s, _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1))));
        for (int j = 0; j < 4; j++) acc = fmaf(s[j], d[j], acc);
    }
    for (; b < nb; b++) {
        float d;
        const __m256i i = iq4_nl_block(w, y, b, &d);
        acc = fmaf((float)hsum_i32_256(i), d, acc);
    }
    return acc;
}

#define DEFINE_DOTS(name, kind)                                                                          \
    float q35_vec_dot_##name##_avx2(const void *w, const void *a, int64_t n) {                           \
        if (kind == KIND_IQ4_NL) return iq4_nl_row(w, a, n);                                              \
        float o;                                                                                         \
        blocks32_rows(w, kind, a, 0, n, &o, 1);                                                          \
        return o;                                                                                        \
    }                                                                                                    \
    void q35_vec_dot4_##name##_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {  \
        blocks32_rows(w, kind, a, as, n, out, 4);                                                        \
    }
DEFINE_DOTS(q4_1_q8_1, KIND_Q4_1)
DEFINE_DOTS(q5_0_q8_0, KIND_Q5_0)
DEFINE_DOTS(q5_1_q8_1, KIND_Q5_1)
DEFINE_DOTS(iq4_nl_q8_0, KIND_IQ4_NL)

/* Q8_1 activations, byte-identical to the scalar reference (quant.c, as ggml-cpu's x86
 * quantize_row_q8_1): q = x * (127 / max|x|) rounded half to even, d = max|x| / 127,
 * s = d * sum(q) */
void q35_from_float_q8_1_avx2(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t b = 0; b < n / 32; b++) {
        __m256 v[4];
        const float amax = load_absmax32(x + b * 32, v);
        const float d = amax / 127.0f;
        const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        y[b].d = (uint16_t)_cvtss_sh(d, 0);
        y[b].s = (uint16_t)_cvtss_sh(d * (float)hsum_i32_256(s8), 0);
        store_packed_i8x32(q, y[b].qs);
    }
}

Q35_AVX2_END
#endif /* Q35_HAVE_X86 */

/* The codebook and ternary types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
 * IQ3_S, TQ1_0, TQ2_0) x Q8_K on AVX2 + FMA, one weight row with one or 4
 * activation rows.
 *
 * Each weight block is decoded once to its integer values v and sub-block scales ls
 * (codebooks.h); per chunk of 32 values, maddubs of |v| with qa carrying v's sign
 * (|v| <= 62, |qa| <= 127: the int16 pair sums cannot saturate) and a madd with the
 * chunk's two scales (one per 128-bit lane) add 8 int32 into the block sum. The
 * float steps are those of ggml's x86 dots: per block acc += (dW dA) * float(sums),
 * one 8-lane accumulator, summed at the end and times the type's c. The 4-row dot
 * decodes a block once for the 4 rows and keeps the single dot's float order, so
 * they agree bit for bit. */
#include "kernels.h"

#if Q35_HAVE_X86
#include "blocks.h"
#include "codebooks.h"
#include "arch/x86/avx2.h" /* opens the target region */

#define INLINE static inline __attribute__((always_inline))

/* the 8 int32 lanes of sum_s ls_s sum_{i in s} v_i qa_i over one block */
INLINE __m256i block_sums(const q35_codebook_block *cb, const int8_t *qa) {
    __m256i acc = _mm256_setzero_si256();
    for (int c = 0; c < 8; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(cb->v + 32 * c));
        const __m256i q = _mm256_loadu_si256((const __m256i *)(qa + 32 * c));
        const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(q, v));
        const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(cb->ls[2 * c + 1]), _mm_set1_epi16(cb->ls[2 * c]));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc));
    }
    return acc;
}

INLINE void codebook_rows(int type, const void *w, const void *a, int64_t as, int64_t n, float *out, const int nr) {
    int block_bytes;
    const q35_codebook_decode_fn decode = q35_codebook_decoder(type, &block_bytes);
    __m256 acc[4];
    for (int r = 0; r < nr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        q35_codebook_block cb;
        decode((const uint8_t *)w + b * block_bytes, &cb);
        for (int r = 0; r < nr; r++) {
            const block_q8_K *y = (const block_q8_K *)(const void *)((const uint8_t *)a + r * as) + b;
            const __m256 sums = _mm256_cvtepi32_ps(block_sums(&cb, y->qs)), d = _mm256_set1_ps(cb.d * y->d);
            if (type == Q35_TYPE_TQ1_0 || type == Q35_TYPE_TQ2_0) /* ggml's TQ dots: a product, then a sum */
                acc[r] = _mm256_add_ps(_mm256_mul_ps(sums, d), acc[r]);
            else
                acc[r] = _mm256_fmadd_ps(d, sums, acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) out[r] = q35_codebook_c(type) * hsum_ps256(acc[r]);
}

#define CODEBOOK_DOTS(tname, type)                                                                      \
    float q35_vec_dot_##tname##_q8_K_avx2(const void *w, const void *a, int64_t n) {                   \
        float out;                                                                                      \
        codebook_rows(type, w, a, 0, n, &out, 1);                                                       \
        return out;                                                                                     \
    }                                                                                                   \
    void q35_vec_dot4_##tname##_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) { \
        codebook_rows(type, w, a, as, n, out, 4);                                                       \
    }
CODEBOOK_DOTS(iq2_xxs, Q35_TYPE_IQ2_XXS)
CODEBOOK_DOTS(iq2_xs, Q35_TYPE_IQ2_XS)
CODEBOOK_DOTS(iq2_s, Q35_TYPE_IQ2_S)
CODEBOOK_DOTS(iq3_xxs, Q35_TYPE_IQ3_XXS)
CODEBOOK_DOTS(iq3_s, Q35_TYPE_IQ3_S)
CODEBOOK_DOTS(iq1_s, Q35_TYPE_IQ1_S)
CODEBOOK_DOTS(iq1_m, Q35_TYPE_IQ1_M)
CODEBOOK_DOTS(tq1_0, Q35_TYPE_TQ1_0)
CODEBOOK_DOTS(tq2_0, Q35_TYPE_TQ2_0)
#undef CODEBOOK_DOTS

Q35_AVX2_END
#endif

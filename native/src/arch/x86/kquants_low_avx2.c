/* Q2_K and Q3_K x Q8_K on AVX2 + FMA + F16C, one pair and one weight row with 4
 * activation rows (layouts in blocks.h).
 *
 * A super-block is 8 chunks of 32 values; chunk c = 4n + j holds bits 2j, 2j+1 of
 * qs[32n .. 32n + 31], its low 16 bytes sub-block 2c, its high 16 sub-block 2c + 1.
 * Per chunk the 32 weights are unpacked to bytes w (Q2_K: 0..3; Q3_K: -4..3, via
 * |w| and qa with w's sign), maddubs against the activation chunk gives int16 pair
 * sums, and a madd with the chunk's two sub-block scales (as int16, one per 128-bit
 * lane) adds 8 int32 into the block sum. Each int32 lane thus holds the same exact
 * integer as in ggml's x86 dots (lane k: bytes 4k..4k+3 of every 16-byte half), and
 * the float steps are theirs too: per super-block, for Q2_K first
 * acc += (-dA dmin) * madd(mins, bsums), then acc += (dA dW) * sumi; one 8-lane
 * accumulator, summed at the end. One always-inlined helper serves nr = 1 and 4, so
 * the 4-row dot equals the single one bit for bit. */
#include "kernels.h"

#if Q35_HAVE_X86
#include <string.h>

#include "blocks.h"
#include "arch/x86/avx2.h" /* opens the target region */
#include "arch/x86/int8_panel_avx2.h"

#define INLINE static inline __attribute__((always_inline))

/* pshufb controls: int16 word 2j of the low 128-bit lane, word 2j + 1 of the high one
 * (of a register holding the 8 scales of one half block twice) */
INLINE __m256i scale_pair_control(int j) {
    const __m128i lo = _mm_set1_epi16((short)(((4 * j + 1) << 8) | (4 * j)));
    const __m128i hi = _mm_set1_epi16((short)(((4 * j + 3) << 8) | (4 * j + 2)));
    return _mm256_set_m128i(hi, lo);
}

INLINE void low_k_rows(const void *w, const int is_q3, const void *a, int64_t as, int64_t n, float *out,
                       const int nr) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc[4];
    for (int r = 0; r < nr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_q2_K *x2 = (const block_q2_K *)w + b;
        const block_q3_K *x3 = (const block_q3_K *)w + b;
        const uint8_t *qs = is_q3 ? x3->qs : x2->qs;
        __m256i scales16; /* the 16 sub-block scales as int16 */
        __m256i mins16 = _mm256_setzero_si256();
        float dw, dmw = 0.0f;
        if (is_q3) { /* q35_q3_K_scales in registers: four words of 4 scales, minus 32 */
            uint32_t u[3], sw[4];
            memcpy(u, x3->scales, 12);
            q35_q3_K_scale_words(u, sw);
            const __m128i sc = _mm_setr_epi32((int)sw[0], (int)sw[1], (int)sw[2], (int)sw[3]);
            scales16 = _mm256_cvtepi8_epi16(_mm_sub_epi8(sc, _mm_set1_epi8(32)));
            dw = h2f(x3->d);
        } else {
            const __m128i ms = _mm_loadu_si128((const __m128i *)x2->scales);
            const __m128i m4 = _mm_set1_epi8(0xF);
            scales16 = _mm256_cvtepi8_epi16(_mm_and_si128(ms, m4));
            mins16 = _mm256_cvtepi8_epi16(_mm_and_si128(_mm_srli_epi16(ms, 4), m4));
            dw = h2f(x2->d);
            dmw = h2f(x2->dmin);
        }
        const __m256i hbits = is_q3 ? _mm256_loadu_si256((const __m256i *)x3->hmask) : _mm256_setzero_si256();
        __m256i sumi[4];
        for (int r = 0; r < nr; r++) sumi[r] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
            /* this half's 8 scales in both 128-bit lanes */
            const __m128i s8 = h ? _mm256_extracti128_si256(scales16, 1) : _mm256_castsi256_si128(scales16);
            const __m256i sc = _mm256_set_m128i(s8, s8);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                if (is_q3) { /* - 4 where the high bit 4h + j is clear */
                    const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + j)));
                    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hbits, bit), bit);
                    q = _mm256_sub_epi8(q, _mm256_andnot_si256(set, _mm256_set1_epi8(4)));
                }
                const __m256i aq = is_q3 ? _mm256_sign_epi8(q, q) : q;
                const __m256i s = _mm256_shuffle_epi8(sc, scale_pair_control(j));
                for (int r = 0; r < nr; r++) {
                    const block_q8_K *y = (const block_q8_K *)(const void *)((const uint8_t *)a + r * as) + b;
                    __m256i qa = _mm256_loadu_si256((const __m256i *)(y->qs + 128 * h + 32 * j));
                    if (is_q3) qa = _mm256_sign_epi8(qa, q);
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(s, _mm256_maddubs_epi16(aq, qa)));
                }
            }
        }
        for (int r = 0; r < nr; r++) {
            const block_q8_K *y = (const block_q8_K *)(const void *)((const uint8_t *)a + r * as) + b;
            if (!is_q3) { /* the mins: - dA dmin sum_s m_s bsum_s, in 8 lanes */
                const __m256i prod = _mm256_madd_epi16(mins16, _mm256_loadu_si256((const __m256i *)y->bsums));
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(-y->d * dmw), _mm256_cvtepi32_ps(prod), acc[r]);
            }
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * dw), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) out[r] = hsum_ps256(acc[r]);
}

/* a row decoded for a panel (int8_panel_avx2.h): the values of chunk 4h + j at v + 128h + 32j, as the dot
 * unpacks them; the 16 scales (and Q2_K's mins) as int16 */
INLINE void decode_low_k_row(const uint8_t *x, int64_t nb, const int is_q3, q35_i8_row *row) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int64_t b = 0; b < nb; b++) {
        const block_q2_K *x2 = (const block_q2_K *)(const void *)x + b;
        const block_q3_K *x3 = (const block_q3_K *)(const void *)x + b;
        const uint8_t *qs = is_q3 ? x3->qs : x2->qs;
        if (is_q3) {
            int8_t sc[16];
            q35_q3_K_scales(x3->scales, sc);
            for (int i = 0; i < 16; i++) row->ls[16 * b + i] = sc[i];
            row->d[b] = h2f(x3->d);
        } else {
            for (int i = 0; i < 16; i++) {
                row->ls[16 * b + i] = x2->scales[i] & 0xF;
                row->mins[16 * b + i] = x2->scales[i] >> 4;
            }
            row->d[b] = h2f(x2->d);
            row->dmin[b] = h2f(x2->dmin);
        }
        const __m256i hbits = is_q3 ? _mm256_loadu_si256((const __m256i *)x3->hmask) : _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
            for (int j = 0; j < 4; j++) {
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                if (is_q3) {
                    const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + j)));
                    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hbits, bit), bit);
                    q = _mm256_sub_epi8(q, _mm256_andnot_si256(set, _mm256_set1_epi8(4)));
                }
                _mm256_storeu_si256((__m256i *)(row->v + 256 * b + 128 * h + 32 * j), q);
            }
        }
    }
}

#define DEFINE_DOTS(name, is_q3)                                                                    \
    float q35_vec_dot_##name##_avx2(const void *w, const void *a, int64_t n) {                       \
        float o;                                                                                     \
        low_k_rows(w, is_q3, a, 0, n, &o, 1);                                                        \
        return o;                                                                                    \
    }                                                                                                \
    void q35_vec_dot4_##name##_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) { \
        low_k_rows(w, is_q3, a, as, n, out, 4);                                                      \
    }                                                                                                \
    static void decode_row_##name(const uint8_t *x, int64_t nb, q35_i8_row *row) {                  \
        decode_low_k_row(x, nb, is_q3, row);                                                         \
    }                                                                                                \
    void q35_gemm_##name##_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, \
                                float *y, int64_t ldy) {                                             \
        const q35_i8_steps st = {1.0f, !(is_q3), 0};                                                 \
        q35_i8_panel(decode_row_##name, st, q35_vec_dot_##name##_avx2, q35_vec_dot4_##name##_avx2, w, ws, nr, a, as, \
                     nt, n, y, ldy);                                                                 \
    }
DEFINE_DOTS(q2_K_q8_K, 0)
DEFINE_DOTS(q3_K_q8_K, 1)

Q35_AVX2_END
#endif /* Q35_HAVE_X86 */

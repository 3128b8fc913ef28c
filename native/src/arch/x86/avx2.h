/* The AVX2 + FMA + F16C target as the AVX2 kernel files see it.
 *
 * Included by those files only (kernels_avx2.c, the per-type dot files beside
 * it, vecops_avx2.c), after their other includes, where their code begins: it
 * opens an avx2,fma,f16c target region (closed by Q35_AVX2_END at the end of
 * the file), so the rest of the build stays at the baseline ISA; the code is
 * only called after q35_isa_supported(Q35_ISA_AVX2) said yes. Then the small
 * helpers the files share, and the dots of the per-type files, which the table
 * in kernels_avx2.c gathers.
 */
#ifndef Q35_ARCH_AVX2_H
#define Q35_ARCH_AVX2_H

#include <immintrin.h>
#include <stdint.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define Q35_AVX2_END _Pragma("clang attribute pop")
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#define Q35_AVX2_END _Pragma("GCC pop_options")
#endif

/* ------------------------------------------------------------------------- */
/* Helpers the files share (inside the target region).                       */

/* the 8 int32 lanes summed */
static inline int32_t hsum_i32_256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* the 8 lanes summed */
static inline float hsum_ps256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* the 32 floats at x into v[0..3], and their largest |x| (the Q8_0 / Q8_1 converters) */
static inline float load_absmax32(const float *x, __m256 v[4]) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
}

/* 32 int32 (4 registers, in element order) to 32 int8 at dst, undoing the lane interleave of the packs */
static inline void store_packed_i8x32(const __m256i q[4], int8_t *dst) {
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)dst, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

/* one f16 to f32 through a general register: compilers turn _cvtsh_ss into a vpinsrw
 * from memory, which is slow on Zen */
static inline float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

/* pshufb controls broadcasting int16 word j of each 128-bit lane */
#define BCAST_W(j) _mm256_set1_epi16((short)(((2 * (j) + 1) << 8) | (2 * (j))))

/* y[0..3]: the 4 activation rows of a vec_dot4, at a + r * s bytes */
#define ROWS4(T, y, a, s)                                                                            \
    const T *y[4];                                                                                   \
    for (int r_ = 0; r_ < 4; r_++) y[r_] = (const T *)(const void *)((const uint8_t *)(a) + r_ * (s))

/* ------------------------------------------------------------------------- */
/* The dots of the per-type files, with the q35_kernels signatures.          */
/*                                                                           */
/* vec_dot4: one weight row with 4 activation rows (rows at a + r * as       */
/* bytes). Each weight block is loaded and unpacked once and applied to the  */
/* 4 rows; every row keeps the float operations of the single-row kernel in  */
/* the same order (integer sums are exact in any order), so out[r] equals    */
/* vec_dot(w, row r, n) bit for bit. The panels (gemm) keep them as well:    */
/* every value equals vec_dot bit for bit.                                   */

/* codebooks_avx2.c: IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, TQ1_0, TQ2_0 x Q8_K (and their panels) */
#define Q35_CODEBOOK_DOT_DECLS(t)                                                      \
    float q35_vec_dot_##t##_q8_K_avx2(const void *w, const void *a, int64_t n);        \
    void q35_vec_dot4_##t##_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out); \
    void q35_gemm_##t##_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,  \
                                  float *y, int64_t ldy);
Q35_CODEBOOK_DOT_DECLS(iq2_xxs)
Q35_CODEBOOK_DOT_DECLS(iq2_xs)
Q35_CODEBOOK_DOT_DECLS(iq2_s)
Q35_CODEBOOK_DOT_DECLS(iq3_xxs)
Q35_CODEBOOK_DOT_DECLS(iq3_s)
Q35_CODEBOOK_DOT_DECLS(iq1_s)
Q35_CODEBOOK_DOT_DECLS(iq1_m)
Q35_CODEBOOK_DOT_DECLS(tq1_0)
Q35_CODEBOOK_DOT_DECLS(tq2_0)
#undef Q35_CODEBOOK_DOT_DECLS

/* kquants_low_avx2.c: Q2_K and Q3_K (and their panels) */
/* the repacked products (repacked_avx2.c) */
void q35_gemm_packed_q4_K_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q6_K_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q8_0_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q5_K_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_iq4_xs_avx2(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                 int64_t ldy);
float q35_vec_dot_q2_K_q8_K_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_q3_K_q8_K_avx2(const void *w, const void *a, int64_t n);
void q35_vec_dot4_q2_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_q3_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_gemm_q2_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *y,
                             int64_t ldy);
void q35_gemm_q3_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *y,
                             int64_t ldy);

/* blocks32_avx2.c: Q4_1, Q5_0, Q5_1 and IQ4_NL */
float q35_vec_dot_q4_1_q8_1_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_q5_0_q8_0_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_q5_1_q8_1_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_iq4_nl_q8_0_avx2(const void *w, const void *a, int64_t n);
void q35_vec_dot4_q4_1_q8_1_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_q5_0_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_q5_1_q8_1_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_iq4_nl_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_from_float_q8_1_avx2(const float *x, void *dst, int64_t n);

/* float_avx2.c: F32, F16 and BF16 (and the BF16 panel) */
float q35_vec_dot_f32_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_f16_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_bf16_avx2(const void *w, const void *a, int64_t n);
void q35_vec_dot4_f32_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_f16_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_bf16_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_gemm_bf16_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *yo,
                        int64_t ldy);

/* q8_0_avx2.c: Q8_0 x Q8_0, register-tiled */
float q35_vec_dot_q8_0_avx2(const void *w, const void *a, int64_t n);
void q35_vec_dot4_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_gemm_q8_0_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *yo,
                        int64_t ldy);

/* q4_0_iq4_xs_avx2.c: Q4_0 x Q8_0 and IQ4_XS x Q8_K */
float q35_vec_dot_q4_0_q8_0_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_iq4_xs_q8_K_avx2(const void *w, const void *a, int64_t n);
void q35_vec_dot4_q4_0_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_iq4_xs_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);

/* fp4_avx2.c: MXFP4 and NVFP4 x Q8_0 */
float q35_vec_dot_mxfp4_q8_0_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_nvfp4_q8_0_avx2(const void *w, const void *a, int64_t n);
void q35_vec_dot4_mxfp4_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_nvfp4_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);

/* kquants_avx2.c: Q4_K, Q5_K and Q6_K x Q8_K (and their panels) */
float q35_vec_dot_q4_K_q8_K_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_q5_K_q8_K_avx2(const void *w, const void *a, int64_t n);
float q35_vec_dot_q6_K_q8_K_avx2(const void *w, const void *a, int64_t n);
void q35_vec_dot4_q4_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_q5_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_vec_dot4_q6_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);
void q35_gemm_q4_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                             float *yo, int64_t ldy);
void q35_gemm_q5_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                             float *yo, int64_t ldy);
void q35_gemm_q6_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                             float *yo, int64_t ldy);

#endif

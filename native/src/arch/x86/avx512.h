/* The AVX512 intrinsics as kernels_avx512.c and vecops_avx512.c see them.
 *
 * Included by those files only, where their code begins: it opens a target
 * region (closed by Q35_AVX512_END at the end of the file) and makes the
 * _mm512_* names available.
 *
 *  - normal build: <immintrin.h> in an AVX512 F/BW/VL target region (plus
 *    VNNI when Q35_AVX512_VNNI is set, see kernels_avx512vnni.c);
 *  - Q35_AVX512_SIMDE (the self-test's logic check on an AVX2 machine): the
 *    same names resolve to SIMDe's portable emulation in an AVX2 target
 *    region, so the very same kernel source runs on hardware without AVX512.
 *    SIMDe 0.7.4 (Debian bookworm) lacks a few intrinsics the kernels use;
 *    they are defined below on 256-bit halves or lane by lane.
 */
#ifndef Q35_ARCH_AVX512_H
#define Q35_ARCH_AVX512_H

#include <stdint.h>
#include <string.h>

/* the pragma wants a string literal, so one line per target */
#if defined(__clang__)
#if defined(Q35_AVX512_SIMDE)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(Q35_AVX512_VNNI)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#else
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))), apply_to = function)
#endif
#define Q35_AVX512_END _Pragma("clang attribute pop")
#else
#pragma GCC push_options
#if defined(Q35_AVX512_SIMDE)
#pragma GCC target("avx2,fma,f16c")
#elif defined(Q35_AVX512_VNNI)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
#endif
#define Q35_AVX512_END _Pragma("GCC pop_options")
#endif

#if !defined(Q35_AVX512_SIMDE)
#include <immintrin.h>
#else
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>

/* what SIMDe 0.7.4 does not emulate: built from two 256-bit halves (native AVX2 here) */
static inline __m256i q35s_lo_si(__m512i v) { return _mm512_castsi512_si256(v); }
static inline __m256i q35s_hi_si(__m512i v) { return _mm512_extracti64x4_epi64(v, 1); }
static inline __m256 q35s_lo_ps(__m512 v) { return _mm512_castps512_ps256(v); }
static inline __m256 q35s_hi_ps(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
static inline __m512i q35s_join_si(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
static inline __m512 q35s_join_ps(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

static inline __m512 q35s_cvtepi32_ps(__m512i v) {
    return q35s_join_ps(_mm256_cvtepi32_ps(q35s_lo_si(v)), _mm256_cvtepi32_ps(q35s_hi_si(v)));
}
static inline __m512i q35s_cvttps_epi32(__m512 v) {
    return q35s_join_si(_mm256_cvttps_epi32(q35s_lo_ps(v)), _mm256_cvttps_epi32(q35s_hi_ps(v)));
}
static inline __m512 q35s_cvtph_ps(__m256i h) {
    return q35s_join_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)));
}
#define q35s_cvtps_ph(v, rounding) \
    _mm256_set_m128i(_mm256_cvtps_ph(q35s_hi_ps(v), rounding), _mm256_cvtps_ph(q35s_lo_ps(v), rounding))
static inline __m512i q35s_cvtepu8_epi16(__m256i v) {
    return q35s_join_si(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(v)), _mm256_cvtepu8_epi16(_mm256_extracti128_si256(v, 1)));
}
static inline __m512i q35s_cvtepi8_epi32(__m128i v) {
    return q35s_join_si(_mm256_cvtepi8_epi32(v), _mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
}
static inline __m512d q35s_cvtps_pd(__m256 v) {
    return _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_cvtps_pd(_mm256_castps256_ps128(v))),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), 1);
}
/* vpmovdw: the low 16 bits of each 32-bit lane */
static inline __m256i q35s_cvtepi32_epi16(__m512i v) {
    int32_t in[16];
    int16_t out[16];
    memcpy(in, &v, sizeof in);
    for (int i = 0; i < 16; i++) out[i] = (int16_t)in[i];
    __m256i r;
    memcpy(&r, out, sizeof r);
    return r;
}

/* masked loads read only the lanes whose bit is set (zero elsewhere); masked stores write only those */
#define Q35S_MASKZ_LOAD(name, V, T, N)                                      \
    static inline V name(uint64_t m, const void *p) {                       \
        T t[N];                                                             \
        memset(t, 0, sizeof t);                                             \
        for (int i = 0; i < (N); i++)                                       \
            if ((m >> i) & 1) memcpy(&t[i], (const char *)p + i * sizeof(T), sizeof(T)); \
        V r;                                                                \
        memcpy(&r, t, sizeof r);                                            \
        return r;                                                           \
    }
#define Q35S_MASK_STORE(name, V, T, N)                                      \
    static inline void name(void *p, uint64_t m, V v) {                     \
        T t[N];                                                             \
        memcpy(t, &v, sizeof t);                                            \
        for (int i = 0; i < (N); i++)                                       \
            if ((m >> i) & 1) memcpy((char *)p + i * sizeof(T), &t[i], sizeof(T)); \
    }
Q35S_MASKZ_LOAD(q35s_maskz_loadu_ps, __m512, float, 16)
Q35S_MASKZ_LOAD(q35s_maskz_loadu_epi16, __m512i, int16_t, 32)
Q35S_MASKZ_LOAD(q35s_mm256_maskz_loadu_epi16, __m256i, int16_t, 16)
Q35S_MASK_STORE(q35s_mask_storeu_ps, __m512, float, 16)
Q35S_MASK_STORE(q35s_mm256_mask_storeu_epi16, __m256i, int16_t, 16)
#undef Q35S_MASKZ_LOAD
#undef Q35S_MASK_STORE

/* SIMDe 0.7.4's alias of this one takes 4 arguments (a bug): call it directly */
#undef _mm512_madd_epi16
#define _mm512_madd_epi16 simde_mm512_madd_epi16
#define _mm512_cvtepi32_ps q35s_cvtepi32_ps
#define _mm512_cvttps_epi32 q35s_cvttps_epi32
#define _mm512_cvtph_ps q35s_cvtph_ps
#define _mm512_cvtps_ph q35s_cvtps_ph
#define _mm512_cvtepu8_epi16 q35s_cvtepu8_epi16
#define _mm512_cvtepi8_epi32 q35s_cvtepi8_epi32
#define _mm512_cvtps_pd q35s_cvtps_pd
#define _mm512_cvtepi32_epi16 q35s_cvtepi32_epi16
#define _mm512_maskz_loadu_ps q35s_maskz_loadu_ps
#define _mm512_maskz_loadu_epi16 q35s_maskz_loadu_epi16
#define _mm256_maskz_loadu_epi16 q35s_mm256_maskz_loadu_epi16
#define _mm512_mask_storeu_ps q35s_mask_storeu_ps
#define _mm256_mask_storeu_epi16 q35s_mm256_mask_storeu_epi16
#endif /* Q35_AVX512_SIMDE */

/* ------------------------------------------------------------------------- */
/* Helpers both kernel files share (inside the target region).               */

/* the first n lanes of 16 (n <= 16) */
static inline __mmask16 q35_mask16(int64_t n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }
static inline __mmask32 q35_mask32(int64_t n) { return n >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << n) - 1); }

/* horizontal sums: halves added pairwise down to one lane (a fixed order, so
 * every caller that reduces the same vector gets the same float) */
static inline float q35_hsum512(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline double q35_hsum512d(__m512d v) {
    const __m256d s4 = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    const __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}

static inline int32_t q35_hsum512i(__m512i v) {
    const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline float q35_hmax512(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 m8 = _mm256_max_ps(lo, hi);
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

#endif

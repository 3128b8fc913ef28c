/* The AVX512 intrinsics as the AVX512 files see them: kernels_avx512.c,
 * vecops_avx512.c and the panels (kquants_avx512.c, q8_0_avx512.c,
 * float_avx512.c; the *vnni.c files build a source again with VNNI).
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

#include "blocks.h" /* q35_k45_scale_words */

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
static inline __m512i q35s_cvtepu8_epi32(__m128i v) {
    return q35s_join_si(_mm256_cvtepu8_epi32(v), _mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
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
#define _mm512_cvtepu8_epi32 q35s_cvtepu8_epi32
#define _mm512_cvtps_pd q35s_cvtps_pd
#define _mm512_cvtepi32_epi16 q35s_cvtepi32_epi16
#define _mm512_maskz_loadu_ps q35s_maskz_loadu_ps
#define _mm512_maskz_loadu_epi16 q35s_maskz_loadu_epi16
#define _mm256_maskz_loadu_epi16 q35s_mm256_maskz_loadu_epi16
#define _mm512_mask_storeu_ps q35s_mask_storeu_ps
#define _mm256_mask_storeu_epi16 q35s_mm256_mask_storeu_epi16
#endif /* Q35_AVX512_SIMDE */

/* ------------------------------------------------------------------------- */
/* Helpers the AVX512 files share (inside the target region).                */

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

/* ------------------------------------------------------------------------- */
/* The panels (gemm entries), one per table: the plain one and the VNNI one    */
/* (the same source built again with Q35_AVX512_VNNI, as kernels_avx512.c).    */
/* Each value equals its own table's vec_dot bit for bit.                      */

#define Q35_GEMM_ARGS const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *yo, \
                      int64_t ldy
void q35_gemm_q4_K_avx512(Q35_GEMM_ARGS);
void q35_gemm_q5_K_avx512(Q35_GEMM_ARGS);
void q35_gemm_q6_K_avx512(Q35_GEMM_ARGS);
void q35_gemm_iq4_xs_avx512(Q35_GEMM_ARGS);
void q35_gemm_q8_0_avx512(Q35_GEMM_ARGS);
void q35_gemm_bf16_avx512(Q35_GEMM_ARGS);
void q35_gemm_q4_K_avx512vnni(Q35_GEMM_ARGS);
void q35_gemm_q5_K_avx512vnni(Q35_GEMM_ARGS);
void q35_gemm_q6_K_avx512vnni(Q35_GEMM_ARGS);
void q35_gemm_iq4_xs_avx512vnni(Q35_GEMM_ARGS);
void q35_gemm_q8_0_avx512vnni(Q35_GEMM_ARGS);
#undef Q35_GEMM_ARGS
/* the repacked products (repacked_avx512.c) */
void q35_gemm_packed_q4_K_avx512(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q4_K_avx512vnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                     int64_t ldy);
void q35_gemm_packed_q5_K_avx512(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q5_K_avx512vnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                     int64_t ldy);
void q35_gemm_packed_iq4_xs_avx512vnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                       int64_t ldy);
void q35_gemm_packed_q8_0_avx512vnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                     int64_t ldy);
void q35_gemm_packed2_q8_0_avx512vnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                      int64_t ldy);
void q35_gemm_packed_q6_K_avx512(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q6_K_avx512vnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                     int64_t ldy);

/* name_avx512, or name_avx512vnni in the VNNI build of a file; and that build's own table */
#if defined(Q35_AVX512_VNNI)
#define Q35_AVX512_OWN(name) name##_avx512vnni
#define Q35_AVX512_TABLE q35_kernels_avx512vnni
#else
#define Q35_AVX512_OWN(name) name##_avx512
#define Q35_AVX512_TABLE q35_kernels_avx512
#endif

/* keep v in a register: one load shared by its uses (compilers short of registers fold a
 * 64-byte load into every instruction that reads it, and activation rows split cache lines) */
#if defined(Q35_AVX512_SIMDE)
#define Q35_IN_REG(v) ((void)0)
#else
#define Q35_IN_REG(v) __asm__("" : "+v"(v))
#endif

/* ------------------------------------------------------------------------- */
/* The pieces of the dots (kernels_avx512.c) that the panels (kquants_avx512.c, */
/* q8_0_avx512.c, float_avx512.c) share, so both run the very same operations. */
/* dpbusd / dpwssd use VNNI where the including file defines Q35_AVX512_VNNI.   */

/* acc + per int32 lane, the sum of 4 products u8 * s8. Exact for |u| <= 128 and
 * s != -128 (the int16 pair sums of maddubs cannot saturate then). */
static inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
#if defined(Q35_AVX512_VNNI)
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

/* acc + per int32 lane, the sum of 2 products int16 * int16 */
static inline __m512i dpwssd(__m512i acc, __m512i a, __m512i b) {
#if defined(Q35_AVX512_VNNI)
    return _mm512_dpwssd_epi32(acc, a, b);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}

/* signed x signed bytes as unsigned x signed: |x| and y with the sign of x */
static inline void sign_pair(__m512i x, __m512i y, __m512i *ax, __m512i *sy) {
    *ax = _mm512_abs_epi8(x);
    *sy = _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(x), _mm512_setzero_si512(), y);
}

/* 32 packed bytes -> 64: their low nibbles (lanes 0-31), then their high nibbles (32-63) */
static inline __m512i nibbles_lohi(__m256i bits) {
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(bits), bits, 1);
    return _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4)), _mm512_set1_epi8(0xF));
}

/* two 16-byte nibble groups A, B -> lo(A) hi(A) lo(B) hi(B), 16 lanes each
 * (Q4_0 and IQ4_XS: the low nibble of byte j is element j, the high one j + 16) */
static inline __m512i nibbles_2x32(__m128i a, __m128i b) {
    const __m512i ab = _mm512_castsi256_si512(_mm256_set_m128i(b, a));
    const __m512i v = _mm512_shuffle_i32x4(ab, ab, 0x50); /* 128-bit lanes A A B B */
    return _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), _mm512_set1_epi8(0xF));
}

/* int16 lanes 0-15 = a, 16-31 = b: the scales of two 32-quant sub-blocks after maddubs */
static inline __m512i scale_pair16(int a, int b) {
    return _mm512_mask_blend_epi16((__mmask32)0xffff0000u, _mm512_set1_epi16((short)a), _mm512_set1_epi16((short)b));
}

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* BF16: 32 values per register. In a 32-bit lane holding two bf16 the high one
 * is the float after masking off the low half, the low one after a shift by 16;
 * even and odd elements pair the same way in both operands. */
static inline __m512 bf16_even(__m512i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); }
static inline __m512 bf16_odd(__m512i v) {
    return _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));
}

static inline __m512i two_blocks(const int8_t *p0, const int8_t *p1) {
    const __m256i lo = _mm256_loadu_si256((const __m256i *)p0);
    const __m256i hi = p1 ? _mm256_loadu_si256((const __m256i *)p1) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __m512 two_scales(float d0, float d1) {
    return _mm512_mask_blend_ps((__mmask16)0xff00, _mm512_set1_ps(d0), _mm512_set1_ps(d1));
}

/* The 6-bit scales and mins of Q4_K / Q5_K (docs/qwen35.md §4.1) as int16:
 * lanes 0-7 sc_0..7, lanes 8-15 m_0..7. Four bytes at a time, no byte loop. */
static inline __m256i k_scales_mins16(const uint8_t *scales) {
    uint32_t u[3], w[4];
    memcpy(u, scales, 12);
    q35_k45_scale_words(u, w);
    return _mm256_cvtepu8_epi16(_mm_setr_epi32((int)w[0], (int)w[1], (int)w[2], (int)w[3]));
}

static inline int32_t hsum128i(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
    return _mm_cvtsi128_si32(v);
}

/* The mins term of Q4_K / Q5_K, sum_j m_j (bsum_2j + bsum_2j+1), an exact integer
 * (|bsum| <= 16 * 127, so the pair sums fit int16). ms16 as k_scales_mins16. */
static inline int32_t k_mins_dot(__m256i ms16, const int16_t *bsums) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    return hsum128i(_mm_madd_epi16(_mm256_extracti128_si256(ms16, 1), pairs));
}

/* Q6_K's offset sum, sum_j sc_j bsum_j over its 16 int8 scales, an exact integer */
static inline int32_t q6_K_scale_dot(const int8_t *scales, const int16_t *bsums) {
    const __m256i p = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)scales)),
                                        _mm256_loadu_si256((const __m256i *)bsums));
    return hsum128i(_mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
}

/* IQ4_XS's 8 sub-block scales ls_ib - 32 as int16, where ls_ib = nibble ib of
 * scales_l (low nibble first) | bits 2ib, 2ib+1 of scales_h << 4 */
static inline __m128i iq4_xs_scales16(const uint8_t *scales_l, uint16_t scales_h) {
    uint32_t l;
    memcpy(&l, scales_l, 4);
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m128i lb = _mm_cvtsi32_si128((int)l);
    const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(lb, m4), _mm_and_si128(_mm_srli_epi16(lb, 4), m4));
    const __m128i hi = _mm_and_si128(_mm_srlv_epi16(_mm_set1_epi16((short)scales_h), _mm_setr_epi16(0, 2, 4, 6, 8, 10, 12, 14)),
                                     _mm_set1_epi16(3));
    return _mm_sub_epi16(_mm_or_si128(_mm_cvtepu8_epi16(nib), _mm_slli_epi16(hi, 4)), _mm_set1_epi16(32));
}

/* int16 lanes 0-15: v_2c, 16-31: v_2c+1 (as scale_pair16) from 8 int16 scales in the low lanes of v */
static inline __m512i scale_of_chunk(__m512i v, int c) {
    const __m512i idx = _mm512_mask_blend_epi16((__mmask32)0xffff0000u, _mm512_set1_epi16((short)(2 * c)),
                                                _mm512_set1_epi16((short)(2 * c + 1)));
    return _mm512_permutexvar_epi16(idx, v);
}

#endif

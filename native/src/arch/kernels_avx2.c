/* AVX2 + FMA + F16C kernels (x86-64). Compiled with a per-file target so
 * the rest of the build stays at the baseline ISA; only called after
 * q35_isa_supported(Q35_ISA_AVX2) said yes. */
#include "kernels.h"
#include "arch/vecops.h"

#if Q35_HAVE_X86
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "blocks.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#include "arch/avx2.h"

static float dot_f32_avx2(const float *a, const float *b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum_ps256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void quantize_row_q8_0_avx2(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *xb = x + b * QK8_0;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = _cvtss_sh(d, 0);
        /* round half away from zero, as roundf in the scalar reference */
        const __m256 vid = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 t = _mm256_mul_ps(v[k], vid);
            __m256 s = _mm256_and_ps(t, sign);
            t = _mm256_add_ps(_mm256_andnot_ps(sign, t), half);
            t = _mm256_or_ps(_mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC), s);
            q[k] = _mm256_cvttps_epi32(t);
        }
        /* pack 32 int32 -> 32 int8, undoing the lane interleave of packs */
        __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
        __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, p);
    }
}

/* f16 scales of a block pair of both rows -> the two products dW*da, each
 * broadcast: one vcvtph2ps for four halves */
static inline void pair_scales(uint16_t w0, uint16_t w1, uint16_t a0, uint16_t a1, __m256 *d0, __m256 *d1) {
    const uint64_t h = (uint64_t)w0 | ((uint64_t)w1 << 16) | ((uint64_t)a0 << 32) | ((uint64_t)a1 << 48);
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h)); /* dW0 dW1 da0 da1 */
    const __m128 dd = _mm_mul_ps(f, _mm_movehl_ps(f, f));
    *d0 = _mm256_broadcastss_ps(dd);
    *d1 = _mm256_broadcastss_ps(_mm_movehdup_ps(dd));
}

/* ------------------------------------------------------------------------- */
/* Activation converters (from_float).                                       */

static void from_float_f32_avx2(const float *x, void *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
}

/* F16: vcvtps2ph with round to nearest even (overflow to inf, like q35_f2h) */
static void from_float_f16_avx2(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i h0 = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m128i h1 = _mm256_cvtps_ph(_mm256_loadu_ps(x + i + 8), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(y + i), h0);
        _mm_storeu_si128((__m128i *)(y + i + 8), h1);
    }
    for (; i < n; i++) y[i] = (uint16_t)_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* BF16, as q35_f2bf: (u + 0x7fff + ((u >> 16) & 1)) >> 16, NaN -> (u >> 16) | 0x40 */
static inline __m256i f32_to_bf16_lanes(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    const __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                             _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_epi8(r, qnan, isnan);
}

static void from_float_bf16_avx2(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i r0 = f32_to_bf16_lanes(_mm256_loadu_ps(x + i));
        const __m256i r1 = f32_to_bf16_lanes(_mm256_loadu_ps(x + i + 8));
        /* packus interleaves the 128-bit lanes: put them back in order */
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r0, r1), 0xD8);
        _mm256_storeu_si256((__m256i *)(y + i), p);
    }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        y[i] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40)
                                               : (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
    }
}

/* Q8_K, byte-identical to the scalar reference: the same float products,
 * rounded half to even (vroundps), clamped at 127 by the saturating packs. */
static void from_float_q8_K_avx2(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float *xb = x + b * QK_K;
        __m256 m0 = _mm256_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
        for (int k = 0; k < QK_K; k += 32) {
            m0 = _mm256_max_ps(m0, _mm256_and_ps(_mm256_loadu_ps(xb + k), absmask));
            m1 = _mm256_max_ps(m1, _mm256_and_ps(_mm256_loadu_ps(xb + k + 8), absmask));
            m2 = _mm256_max_ps(m2, _mm256_and_ps(_mm256_loadu_ps(xb + k + 16), absmask));
            m3 = _mm256_max_ps(m3, _mm256_and_ps(_mm256_loadu_ps(xb + k + 24), absmask));
        }
        const __m256 m = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        /* the first element whose |x| is the maximum, with its sign */
        const __m256 vamax = _mm256_set1_ps(amax);
        int first = 0;
        for (int k = 0; k < QK_K; k += 8) {
            const int hit = _mm256_movemask_ps(
                _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(xb + k), absmask), vamax, _CMP_EQ_OQ));
            if (hit) { first = k + __builtin_ctz((unsigned)hit); break; }
        }
        const float iscale = -127.0f / xb[first];
        const __m256 vis = _mm256_set1_ps(iscale);
        const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
        __m256i part[8]; /* per 32 quants: lanes 0-3 sum to bsum 2c, lanes 4-7 to bsum 2c+1 */
        for (int c = 0; c < 8; c++) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xb + 32 * c + 8 * k), vis);
                q[k] = _mm256_cvttps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            }
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[b].qs + 32 * c), p);
            part[c] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, p), ones16);
        }
        /* two rounds of hadd: low lanes [b0 b2 b4 b6], high lanes [b1 b3 b5 b7] (and 8..15) */
        const __m256i s0 = _mm256_hadd_epi32(_mm256_hadd_epi32(part[0], part[1]), _mm256_hadd_epi32(part[2], part[3]));
        const __m256i s1 = _mm256_hadd_epi32(_mm256_hadd_epi32(part[4], part[5]), _mm256_hadd_epi32(part[6], part[7]));
        const __m256i ps = _mm256_packs_epi32(s0, s1); /* low: even bsums, high: odd bsums */
        const __m128i ev = _mm256_castsi256_si128(ps), od = _mm256_extracti128_si256(ps, 1);
        _mm_storeu_si128((__m128i *)y[b].bsums, _mm_unpacklo_epi16(ev, od));
        _mm_storeu_si128((__m128i *)(y[b].bsums + 8), _mm_unpackhi_epi16(ev, od));
        y[b].d = 1.0f / iscale;
    }
}

/* ------------------------------------------------------------------------- */
/* Dot products.                                                             */

/* F32 / F16 / BF16 dots keep two accumulator chains per row, 16 elements a
 * step (chain 0 takes elements 0-7, chain 1 elements 8-15; BF16: the even and
 * odd elements), so the 4-row kernels below hold 8 accumulators in registers
 * and still add in exactly this order. */
static inline __m256 load_f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

#define DEFINE_VEC_DOT_FLOAT(name, T, LOAD8, TAIL)                                                    \
    static float name(const void *w, const void *a, int64_t n) {                                      \
        const T *x = w, *y = a;                                                                       \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;                                               \
        int64_t i = 0;                                                                                \
        for (; i + 16 <= n; i += 16) {                                                                \
            acc0 = _mm256_fmadd_ps(LOAD8(x + i), LOAD8(y + i), acc0);                                 \
            acc1 = _mm256_fmadd_ps(LOAD8(x + i + 8), LOAD8(y + i + 8), acc1);                         \
        }                                                                                             \
        if (i + 8 <= n) { acc0 = _mm256_fmadd_ps(LOAD8(x + i), LOAD8(y + i), acc0); i += 8; }         \
        float s = hsum_ps256(_mm256_add_ps(acc0, acc1));                                              \
        for (; i < n; i++) s += TAIL(x[i]) * TAIL(y[i]);                                              \
        return s;                                                                                     \
    }
#define LOAD_F32X8(p) _mm256_loadu_ps(p)
#define TAIL_F32(v) (v)
#define TAIL_F16(v) h2f(v)
DEFINE_VEC_DOT_FLOAT(vec_dot_f32_avx2, float, LOAD_F32X8, TAIL_F32)
DEFINE_VEC_DOT_FLOAT(vec_dot_f16_avx2, uint16_t, load_f16x8, TAIL_F16)

static inline float bf16_to_f32(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* BF16: bf16 << 16 is the float. In a 32-bit lane holding two bf16, the high
 * one is the float after masking off the low half, the low one after a shift
 * by 16: even and odd elements pair the same way in both operands. */
static float vec_dot_bf16_avx2(const void *w, const void *a, int64_t n) {
    const uint16_t *x = w, *y = a;
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i x0 = _mm256_loadu_si256((const __m256i *)(x + i));
        const __m256i y0 = _mm256_loadu_si256((const __m256i *)(y + i));
        acc0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(x0, 16)),
                               _mm256_castsi256_ps(_mm256_slli_epi32(y0, 16)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(x0, hi)),
                               _mm256_castsi256_ps(_mm256_and_si256(y0, hi)), acc1);
    }
    float s = hsum_ps256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += bf16_to_f32(x[i]) * bf16_to_f32(y[i]);
    return s;
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15), then high
 * (16..31). A broadcast load and a per-lane variable shift (cheaper on Zen
 * than shifting a copy and inserting it as the high lane). */
static inline __m256i nibbles_32(const uint8_t *p) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0xF));
}

/* Q4_0 x Q8_0, sum_j (q_j - 8) qa_j = maddubs(q, qa) - maddubs(8, qa) (both
 * int16-safe: 2*15*127 and 2*8*127). Two blocks per step into two
 * accumulators; pair_scales gives the two blocks' dW dA. */
static float vec_dot_q4_0_q8_0_avx2(const void *w, const void *a, int64_t n) {
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

/* The 12 packed bytes of Q4_K / Q5_K -> 16 bytes: sc0..7 then m0..7 (SPEC 4.1). */
static inline __m128i k_scales_mins(const uint8_t *scales) {
    uint32_t u[3];
    memcpy(u, scales, 12);
    const uint32_t sc_lo = u[0] & 0x3f3f3f3fu;
    const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    const uint32_t m_lo = u[1] & 0x3f3f3f3fu;
    const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    return _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)m_lo, (int)m_hi);
}

/* pshufb controls broadcasting int16 word j of each 128-bit lane */
#define BCAST_W(j) _mm256_set1_epi16((short)(((2 * (j) + 1) << 8) | (2 * (j))))

/* int32 x4 mins term of Q4_K / Q5_K: m_j * (bsum_2j + bsum_2j+1), j = 0..7 */
static inline __m128i k_mins_term(__m256i mins_scales16, const int16_t *bsums) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    return _mm_madd_epi16(_mm256_extracti128_si256(mins_scales16, 1), pairs);
}

static float vec_dot_q4_K_q8_K_avx2(const void *w, const void *a, int64_t n) {
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = y[b].d * h2f(x[b].d);
        const float dmin = -y[b].d * h2f(x[b].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(x[b].scales)); /* sc0..7 | m0..7 */
        accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k_mins_term(ms, y[b].bsums)), accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *q4 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        __m256i sumi = _mm256_setzero_si256();
#define Q4K_CHUNK(c)                                                                                       \
        {                                                                                                  \
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q4 + 32 * (c)));                     \
            const __m256i lo = _mm256_and_si256(bits, m4);                                                 \
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);                           \
            const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * (c))));      \
            const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * (c) + 32)));  \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_shuffle_epi8(sc, BCAST_W(2 * (c)))));         \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_shuffle_epi8(sc, BCAST_W(2 * (c) + 1))));     \
        }
        Q4K_CHUNK(0) Q4K_CHUNK(1) Q4K_CHUNK(2) Q4K_CHUNK(3)
#undef Q4K_CHUNK
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    __m128 m = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return hsum_ps256(acc) + _mm_cvtss_f32(m);
}

/* Q5_K: as Q4_K, the fifth bits of chunk c are bits 2c (low) and 2c+1 (high)
 * of qh[l]; shifting qh right by 2 per chunk brings them to bits 0 and 1. */
static float vec_dot_q5_K_q8_K_avx2(const void *w, const void *a, int64_t n) {
    const block_q5_K *x = w;
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0xF), m16 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = y[b].d * h2f(x[b].d);
        const float dmin = -y[b].d * h2f(x[b].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(x[b].scales));
        accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k_mins_term(ms, y[b].bsums)), accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *q5 = x[b].qs;
        const int8_t *q8 = y[b].qs;
        __m256i hb = _mm256_loadu_si256((const __m256i *)x[b].qh);
        __m256i sumi = _mm256_setzero_si256();
#define Q5K_CHUNK(c)                                                                                       \
        {                                                                                                  \
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q5 + 32 * (c)));                     \
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4),                                \
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 4), m16));           \
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),           \
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), m16));           \
            hb = _mm256_srli_epi16(hb, 2);                                                                 \
            const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * (c))));      \
            const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * (c) + 32)));  \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_shuffle_epi8(sc, BCAST_W(2 * (c)))));         \
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_shuffle_epi8(sc, BCAST_W(2 * (c) + 1))));     \
        }
        Q5K_CHUNK(0) Q5K_CHUNK(1) Q5K_CHUNK(2) Q5K_CHUNK(3)
#undef Q5K_CHUNK
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    __m128 m = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return hsum_ps256(acc) + _mm_cvtss_f32(m);
}

/* Q6_K: unsigned 6-bit quants (0..63) with maddubs, the -32 folded in once per
 * super-block as 32 * sum_j sc_j * bsum_j. The 16 int8 scales are widened to
 * int16; each 128-element half broadcasts its 8 scales to both lanes, then a
 * pshufb picks scale 2k (low lane) and 2k+1 (high lane) for 32 quants. */
static float vec_dot_q6_K_q8_K_avx2(const void *w, const void *a, int64_t n) {
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const __m256i m15 = _mm256_set1_epi8(0xF), m48 = _mm256_set1_epi8(0x30);
    const __m256i sel0 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    const __m256i step = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float d = y[b].d * h2f(x[b].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales));
        const __m256i bs = _mm256_loadu_si256((const __m256i *)y[b].bsums);
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *q8 = y[b].qs;
        for (int h = 0; h < 2; h++) {
            const __m256i sch = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
            const __m256i hv = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m48));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m48));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m15), _mm256_and_si256(hv, m48));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m15),
                                               _mm256_and_si256(_mm256_srli_epi16(hv, 2), m48));
            const int8_t *qa = q8 + 128 * h;
            const __m256i p0 = _mm256_maddubs_epi16(q0, _mm256_loadu_si256((const __m256i *)qa));
            const __m256i p1 = _mm256_maddubs_epi16(q1, _mm256_loadu_si256((const __m256i *)(qa + 32)));
            const __m256i p2 = _mm256_maddubs_epi16(q2, _mm256_loadu_si256((const __m256i *)(qa + 64)));
            const __m256i p3 = _mm256_maddubs_epi16(q3, _mm256_loadu_si256((const __m256i *)(qa + 96)));
            const __m256i s1 = _mm256_add_epi8(sel0, step);
            const __m256i s2 = _mm256_add_epi8(s1, step);
            const __m256i s3 = _mm256_add_epi8(s2, step);
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_shuffle_epi8(sch, sel0)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_shuffle_epi8(sch, s1)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p2, _mm256_shuffle_epi8(sch, s2)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p3, _mm256_shuffle_epi8(sch, s3)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps256(acc);
}

/* IQ4_XS: nibbles -> kvalues_iq4nl through pshufb, signed x signed dot (sign
 * trick), the 8 sub-block scales (ls - 32) built as int16 once per super-block. */
static float vec_dot_iq4_xs_q8_K_avx2(const void *w, const void *a, int64_t n) {
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

/* ------------------------------------------------------------------------- */
/* vec_dot4: one weight row with 4 activation rows (rows at a + r * a_stride  */
/* bytes). Each weight block is loaded and unpacked once and applied to the   */
/* 4 rows; every row keeps the float operations of the single-row kernel      */
/* above in the same order (integer sums are exact in any order), so out[r]   */
/* equals vec_dot(w, row r, n) bit for bit.                                   */

#define ROWS4(T, y, a, s)                                                                            \
    const T *y[4];                                                                                   \
    for (int r_ = 0; r_ < 4; r_++) y[r_] = (const T *)(const void *)((const uint8_t *)(a) + r_ * (s))

/* F32 and F16: per 16 elements the two chains of the single-row kernel, for 4 rows */
#define DEFINE_VEC_DOT4_FLOAT(name, T, LOAD8, TAIL)                                                   \
    static void name(const void *w, const void *a, int64_t as, int64_t n, float *out) {              \
        const T *x = w;                                                                               \
        ROWS4(T, y, a, as);                                                                           \
        __m256 acc[4][2];                                                                             \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps(); \
        int64_t i = 0;                                                                                \
        for (; i + 16 <= n; i += 16)                                                                  \
            _Pragma("GCC unroll 2") for (int k = 0; k < 2; k++) {                                     \
                const __m256 wk = LOAD8(x + i + 8 * k);                                               \
                _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)                                   \
                    acc[r][k] = _mm256_fmadd_ps(wk, LOAD8(y[r] + i + 8 * k), acc[r][k]);              \
            }                                                                                         \
        if (i + 8 <= n) {                                                                             \
            const __m256 wk = LOAD8(x + i);                                                           \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) acc[r][0] = _mm256_fmadd_ps(wk, LOAD8(y[r] + i), acc[r][0]); \
            i += 8;                                                                                   \
        }                                                                                             \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                         \
            float s = hsum_ps256(_mm256_add_ps(acc[r][0], acc[r][1]));                                \
            for (int64_t j = i; j < n; j++) s += TAIL(x[j]) * TAIL(y[r][j]);                          \
            out[r] = s;                                                                               \
        }                                                                                             \
    }
DEFINE_VEC_DOT4_FLOAT(vec_dot4_f32_avx2, float, LOAD_F32X8, TAIL_F32)
DEFINE_VEC_DOT4_FLOAT(vec_dot4_f16_avx2, uint16_t, load_f16x8, TAIL_F16)

/* BF16 as vec_dot_bf16_avx2 for RN activation rows (out[r * ldo]): per 16 elements, chain 0
 * the even (shifted) and chain 1 the odd (masked) elements of each row */
static inline __attribute__((always_inline)) void bf16_rows(const uint16_t *x, const uint16_t *const *y, const int RN,
                                                            int64_t n, float *out, int64_t ldo) {
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int r = 0; r < RN; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + i));
        const __m256 xe = _mm256_castsi256_ps(_mm256_slli_epi32(xv, 16));
        const __m256 xo = _mm256_castsi256_ps(_mm256_and_si256(xv, hi));
#pragma GCC unroll 6
        for (int r = 0; r < RN; r++) {
            const __m256i yv = _mm256_loadu_si256((const __m256i *)(y[r] + i));
            acc[r][0] = _mm256_fmadd_ps(xe, _mm256_castsi256_ps(_mm256_slli_epi32(yv, 16)), acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(xo, _mm256_castsi256_ps(_mm256_and_si256(yv, hi)), acc[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < RN; r++) {
        float s = hsum_ps256(_mm256_add_ps(acc[r][0], acc[r][1]));
        for (int64_t j = i; j < n; j++) s += bf16_to_f32(x[j]) * bf16_to_f32(y[r][j]);
        out[r * ldo] = s;
    }
}

static void vec_dot4_bf16_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    ROWS4(uint16_t, y, a, as);
    bf16_rows(w, y, 4, n, out, 1);
}

/* A panel of BF16 rows: one weight row with 6 activation rows at a time (12 accumulator
 * chains: the FMA latency no longer bounds it, as with 8), the weights widened once per
 * 6 rows; the rest 4 and 1 at a time. Same chains, same order: every value equals
 * vec_dot bit for bit. */
static void gemm_bf16_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                           float *yo, int64_t ldy) {
    int g6 = nt / 6; /* groups of 6, leaving a multiple of 4 where possible (32 = 4 x 6 + 2 x 4) */
    while (g6 > 0 && (nt - 6 * g6) % 4) g6--;
    int t = 0;
    for (; t < 6 * g6; t += 6) {
        const uint16_t *y[6];
        for (int j = 0; j < 6; j++) y[j] = (const uint16_t *)(const void *)((const uint8_t *)a + (t + j) * as);
        for (int r = 0; r < nr; r++)
            bf16_rows((const uint16_t *)(const void *)((const uint8_t *)w + r * ws), y, 6, n, yo + t * ldy + r, ldy);
    }
    q35_panel_by_dots(vec_dot_bf16_avx2, vec_dot4_bf16_avx2, w, ws, nr, (const uint8_t *)a + t * as, as, nt - t, n,
                      yo + t * ldy, ldy);
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

/* Q4_0 as vec_dot_q4_0_q8_0_avx2. The weights of a block are unpacked once to
 * w = q - 8 and |w|; per row maddubs(|w|, sign(qa, w)) gives the same int16 pair
 * sums (q - 8) qa as maddubs(q, qa) - maddubs(8, qa) (Q8_0 quants are never
 * -128, as for the sign trick of the Q8_0 kernels). */
static void vec_dot4_q4_0_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
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

/* The mins terms of Q4_K / Q5_K for 4 rows. Two rows share a register (lanes
 * 0-3 row 2p, 4-7 row 2p+1): lane-wise the same fmadd as the 128-bit one of
 * the single-row kernels. */
static inline void k_mins4(__m256i ms, const block_q8_K *const *y, int64_t b, float dmw, __m256 *accm) {
#pragma GCC unroll 2
    for (int p = 0; p < 2; p++) {
        const block_q8_K *y0 = &y[2 * p][b], *y1 = &y[2 * p + 1][b];
        const __m256 dmin = _mm256_set_m128(_mm_set1_ps(-y1->d * dmw), _mm_set1_ps(-y0->d * dmw));
        const __m256i t = _mm256_set_m128i(k_mins_term(ms, y1->bsums), k_mins_term(ms, y0->bsums));
        accm[p] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(t), accm[p]);
    }
}

/* One 32-byte chunk c of a Q4_K / Q5_K block for 4 rows: the quants of sub-blocks
 * 2c (lo) and 2c+1 (hi) times the rows' int8 values, weighted by their scales. */
static inline void k_chunk4(__m256i lo, __m256i hi, __m256i scl, __m256i sch, const block_q8_K *const *y,
                            int64_t b, int c, __m256i *sumi) {
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        const int8_t *q8 = y[r][b].qs + 64 * c;
        const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
        const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
        sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(_mm256_madd_epi16(pl, scl), _mm256_madd_epi16(ph, sch)));
    }
}

/* the final sums of Q4_K / Q5_K, as in the single-row kernels */
static inline void k_finish4(const __m256 *acc, const __m256 *accm, float *out) {
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        const __m128 am = (r & 1) ? _mm256_extractf128_ps(accm[r >> 1], 1) : _mm256_castps256_ps128(accm[r >> 1]);
        __m128 m = _mm_add_ps(am, _mm_movehl_ps(am, am));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        out[r] = hsum_ps256(acc[r]) + _mm_cvtss_f32(m);
    }
}

static void vec_dot4_q4_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_q4_K *x = w;
    ROWS4(block_q8_K, y, a, as);
    const __m256i m4 = _mm256_set1_epi8(0xF), four8 = _mm256_set1_epi8(4);
    __m256 acc[4], accm[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float dw = h2f(x[b].d), dmw = h2f(x[b].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(x[b].scales)); /* sc0..7 | m0..7 */
        k_mins4(ms, y, b, dmw, accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *q4 = x[b].qs;
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
        __m256i ctl = BCAST_W(0), cth = BCAST_W(1);
        for (int c = 0; c < 4; c++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q4 + 32 * c));
            const __m256i lo = _mm256_and_si256(bits, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i scl = _mm256_shuffle_epi8(sc, ctl);
            const __m256i sch = _mm256_shuffle_epi8(sc, cth);
            ctl = _mm256_add_epi8(ctl, four8);
            cth = _mm256_add_epi8(cth, four8);
            k_chunk4(lo, hi, scl, sch, y, b, c, sumi);
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][b].d * dw), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    k_finish4(acc, accm, out);
}

/* A panel of Q4_K rows. The per-block work of vec_dot4_q4_K_q8_K_avx2 is done once
 * per panel on each side instead of once per (row, 4 tokens):
 *   each weight row is unpacked once: codes to bytes in value order, each
 *   sub-block scale broadcast to a vector, the mins to both 128-bit lanes, dW and
 *   dminW to floats;
 *   each activation row once: dA, and its bsums summed in pairs, two rows per
 *   vector as k_mins4 lays them out.
 * The row then meets the activation rows 4 at a time with the same float
 * operations as vec_dot4 (the same products, fmadds and sums), so every value
 * equals vec_dot bit for bit. */
#define K_PANEL_MAX 16384 /* values of one row unpacked on the stack */
#define K_PANEL_TOKENS 32 /* activation rows prepared at once */

typedef struct {
    uint8_t codes[K_PANEL_MAX] __attribute__((aligned(32)));
    __m256i scale[K_PANEL_MAX / 32];  /* the sub-block's 6-bit scale in every int16 lane */
    __m256i mins[K_PANEL_MAX / QK_K]; /* Q4_K: m0..7 as int16, in both 128-bit lanes */
    __m256i sc16[K_PANEL_MAX / QK_K]; /* Q6_K: the 16 scales as int16 */
    float dw[K_PANEL_MAX / QK_K], dmw[K_PANEL_MAX / QK_K];
} k_row_unpacked;

typedef struct {
    __m256i pairs[K_PANEL_TOKENS / 2][K_PANEL_MAX / QK_K];  /* bsum_2j + bsum_2j+1 of rows 2p | 2p+1 */
    __m256 neg_d[K_PANEL_TOKENS / 2][K_PANEL_MAX / QK_K];   /* -dA of row 2p (lanes 0-3) | 2p+1 (4-7) */
    float d[K_PANEL_TOKENS][K_PANEL_MAX / QK_K];
} k_act_prepared;

static void unpack_q4_K_row(const void *w, int64_t nb, k_row_unpacked *u) {
    const block_q4_K *x = w;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(x[b].scales));
        u->mins[b] = _mm256_permute2x128_si256(ms, ms, 0x11);
        u->dw[b] = h2f(x[b].d);
        u->dmw[b] = h2f(x[b].dmin);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        for (int c = 0; c < 4; c++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * c));
            uint8_t *out = u->codes + QK_K * b + 64 * c;
            _mm256_store_si256((__m256i *)out, _mm256_and_si256(bits, m4));
            _mm256_store_si256((__m256i *)(out + 32), _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4));
        }
        for (int j = 0; j < 8; j++) u->scale[8 * b + j] = _mm256_shuffle_epi8(sc, BCAST_W(j));
    }
}

/* rows [0, nt) (nt even or not; an odd last row is paired with itself) */
static void prepare_q8_K_rows(const uint8_t *a, int64_t as, int nt, int64_t nb, k_act_prepared *p) {
    for (int t = 0; t < nt; t += 2) {
        const block_q8_K *y0 = (const block_q8_K *)(const void *)(a + t * as);
        const block_q8_K *y1 = t + 1 < nt ? (const block_q8_K *)(const void *)(a + (t + 1) * as) : y0;
        for (int64_t b = 0; b < nb; b++) {
            const __m256i b0 = _mm256_loadu_si256((const __m256i *)y0[b].bsums);
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)y1[b].bsums);
            p->pairs[t / 2][b] = _mm256_set_m128i(_mm_hadd_epi16(_mm256_castsi256_si128(b1), _mm256_extracti128_si256(b1, 1)),
                                                  _mm_hadd_epi16(_mm256_castsi256_si128(b0), _mm256_extracti128_si256(b0, 1)));
            p->neg_d[t / 2][b] = _mm256_set_m128(_mm_set1_ps(-y1[b].d), _mm_set1_ps(-y0[b].d));
            p->d[t][b] = y0[b].d;
            if (t + 1 < nt) p->d[t + 1][b] = y1[b].d;
        }
    }
}

/* block b of an unpacked row against activation rows t..t+3: sumi[r] += the 8 sub-blocks'
 * scale_j * (codes_j . q8_j), then acc[r] += (dA_r dW) * sumi[r], as the 4-row kernels */
static inline __attribute__((always_inline)) void k_unpacked_block4(const k_row_unpacked *u, const k_act_prepared *p,
                                                                    int t, int64_t b, const block_q8_K *const *y,
                                                                    __m256i *sumi, __m256 *acc) {
#pragma GCC unroll 4
    for (int j = 0; j < 8; j++) {
        const __m256i cw = _mm256_load_si256((const __m256i *)(u->codes + QK_K * b + 32 * j));
        const __m256i sc = u->scale[8 * b + j];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m256i q = _mm256_maddubs_epi16(cw, _mm256_loadu_si256((const __m256i *)(y[r][b].qs + 32 * j)));
            sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(q, sc));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(p->d[t + r][b] * u->dw[b]), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
}

/* weight row u against activation rows t..t+3 (t a multiple of 4) */
static void q4_K_panel_dot4(const k_row_unpacked *u, const k_act_prepared *p, int t, int64_t nb,
                            const block_q8_K *const *y, float *out) {
    /* the mins terms first, in a loop of their own (as k_mins4; fewer live registers below) */
    __m256 acc[4], accm[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        const __m256 dmw = _mm256_set1_ps(u->dmw[b]);
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++)
            accm[q] = _mm256_fmadd_ps(_mm256_mul_ps(p->neg_d[t / 2 + q][b], dmw),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(u->mins[b], p->pairs[t / 2 + q][b])), accm[q]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
        k_unpacked_block4(u, p, t, b, y, sumi, acc);
    }
    k_finish4(acc, accm, out);
}

static void vec_dot4_q6_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out);

typedef void (*k_unpack_fn)(const void *w, int64_t nb, k_row_unpacked *u);
typedef void (*k_panel_dot4_fn)(const k_row_unpacked *u, const k_act_prepared *p, int t, int64_t nb,
                                const block_q8_K *const *y, float *out);

/* the panel of a K-quant type: unpack each weight row once, prepare the activation rows
 * once per K_PANEL_TOKENS, 4 activation rows per panel_dot4 call, the rest by vec_dot */
static void k_panel(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *yo,
                    int64_t ldy, k_unpack_fn unpack, k_panel_dot4_fn dot4, q35_vec_dot_fn dot, q35_vec_dot4_fn plain4) {
    const int64_t nb = n / QK_K;
    if (nt < 4 || n > K_PANEL_MAX) { /* decode (row by row), or rows too long for the stack */
        q35_panel_by_dots(dot, plain4, w, ws, nr, a, as, nt, n, yo, ldy);
        return;
    }
    k_row_unpacked u;
    k_act_prepared p;
    for (int t0 = 0; t0 < nt; t0 += K_PANEL_TOKENS) {
        const int tn = nt - t0 < K_PANEL_TOKENS ? nt - t0 : K_PANEL_TOKENS, t4 = tn / 4 * 4;
        const uint8_t *at = (const uint8_t *)a + t0 * as;
        prepare_q8_K_rows(at, as, t4, nb, &p);
        for (int r = 0; r < nr; r++) {
            const void *wr = (const uint8_t *)w + r * ws;
            float *out = yo + t0 * ldy + r;
            if (t4) unpack(wr, nb, &u);
            for (int t = 0; t < t4; t += 4) {
                ROWS4(block_q8_K, y, at + t * as, as);
                float o[4];
                dot4(&u, &p, t, nb, y, o);
                for (int i = 0; i < 4; i++) out[(t + i) * ldy] = o[i];
            }
            for (int t = t4; t < tn; t++) out[t * ldy] = dot(wr, at + t * as, n);
        }
    }
}

static void gemm_q4_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                                float *yo, int64_t ldy) {
    k_panel(w, ws, nr, a, as, nt, n, yo, ldy, unpack_q4_K_row, q4_K_panel_dot4, vec_dot_q4_K_q8_K_avx2,
            vec_dot4_q4_K_q8_K_avx2);
}

/* Q6_K: the 6-bit codes (0..63) to bytes in the order of vec_dot_q6_K_q8_K_avx2's
 * groups (value order), each group's pair of 16-value scales as its shuffle made them */
static void unpack_q6_K_row(const void *w, int64_t nb, k_row_unpacked *u) {
    const block_q6_K *x = w;
    const __m256i m15 = _mm256_set1_epi8(0xF), m48 = _mm256_set1_epi8(0x30);
    const __m256i sel0 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales));
        u->sc16[b] = sc16;
        u->dw[b] = h2f(x[b].d);
        for (int h = 0; h < 2; h++) {
            const __m256i sch = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[b].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x[b].ql + 64 * h + 32));
            const __m256i hv = _mm256_loadu_si256((const __m256i *)(x[b].qh + 32 * h));
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m48)),
                _mm256_or_si256(_mm256_and_si256(l1, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m48)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m15), _mm256_and_si256(hv, m48)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m15), _mm256_and_si256(_mm256_srli_epi16(hv, 2), m48)),
            };
            for (int k = 0; k < 4; k++) {
                _mm256_store_si256((__m256i *)(u->codes + QK_K * b + 128 * h + 32 * k), q[k]);
                u->scale[8 * b + 4 * h + k] = _mm256_shuffle_epi8(sch, _mm256_add_epi8(sel0, _mm256_set1_epi8((char)(4 * k))));
            }
        }
    }
}

static void q6_K_panel_dot4(const k_row_unpacked *u, const k_act_prepared *p, int t, int64_t nb,
                            const block_q8_K *const *y, float *out) {
    __m256 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) { /* the -32 offset of the codes: -32 sum_j sc_j bsum_j */
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y[r][b].bsums);
            sumi[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, u->sc16[b]), 5));
        }
        k_unpacked_block4(u, p, t, b, y, sumi, acc);
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) out[r] = hsum_ps256(acc[r]);
}

static void gemm_q6_K_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                                float *yo, int64_t ldy) {
    k_panel(w, ws, nr, a, as, nt, n, yo, ldy, unpack_q6_K_row, q6_K_panel_dot4, vec_dot_q6_K_q8_K_avx2,
            vec_dot4_q6_K_q8_K_avx2);
}

static void vec_dot4_q5_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_q5_K *x = w;
    ROWS4(block_q8_K, y, a, as);
    const __m256i m4 = _mm256_set1_epi8(0xF), m16 = _mm256_set1_epi8(0x10), four8 = _mm256_set1_epi8(4);
    __m256 acc[4], accm[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float dw = h2f(x[b].d), dmw = h2f(x[b].dmin);
        const __m256i ms = _mm256_cvtepu8_epi16(k_scales_mins(x[b].scales));
        k_mins4(ms, y, b, dmw, accm);
        const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
        const uint8_t *q5 = x[b].qs;
        __m256i hb = _mm256_loadu_si256((const __m256i *)x[b].qh);
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
        __m256i ctl = BCAST_W(0), cth = BCAST_W(1);
        for (int c = 0; c < 4; c++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q5 + 32 * c));
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m16));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), m16));
            hb = _mm256_srli_epi16(hb, 2);
            const __m256i scl = _mm256_shuffle_epi8(sc, ctl);
            const __m256i sch = _mm256_shuffle_epi8(sc, cth);
            ctl = _mm256_add_epi8(ctl, four8);
            cth = _mm256_add_epi8(cth, four8);
            k_chunk4(lo, hi, scl, sch, y, b, c, sumi);
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][b].d * dw), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    k_finish4(acc, accm, out);
}

/* Q6_K: the four 32-quant groups of each half one at a time (quants and their
 * scale pattern built once), each applied to the 4 rows. */
static void vec_dot4_q6_K_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_q6_K *x = w;
    ROWS4(block_q8_K, y, a, as);
    const __m256i m15 = _mm256_set1_epi8(0xF), m48 = _mm256_set1_epi8(0x30);
    const __m256i sel0 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    const __m256i step = _mm256_set1_epi8(4);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float dw = h2f(x[b].d);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales));
        __m256i sumi[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y[r][b].bsums);
            sumi[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5));
        }
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i sch = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
            const __m256i hv = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            __m256i q[4]; /* the quants of groups 0..3 (elements 32k..32k+31 of the half) */
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m48));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m15), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m48));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m15), _mm256_and_si256(hv, m48));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m15),
                                   _mm256_and_si256(_mm256_srli_epi16(hv, 2), m48));
            __m256i sel = sel0;
#pragma GCC unroll 1
            for (int k = 0; k < 4; k++) {
                const __m256i s = _mm256_shuffle_epi8(sch, sel);
                sel = _mm256_add_epi8(sel, step);
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(y[r][b].qs + 128 * h + 32 * k)));
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(p, s));
                }
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r][b].d * dw), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) out[r] = hsum_ps256(acc[r]);
}

static void vec_dot4_iq4_xs_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
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

#undef ROWS4

/* The fused delta rule (engine/deltanet.c has the math): per token one pass
 * over S for vp = S^T k and op = S^T q, then S = d S + k vn^T. The state rows
 * are Sv floats; columns go in blocks of 32 (8 accumulators in registers). */
void q35_dn_fused(const q35_dn_head *h);

static void dn_fused_avx2(const q35_dn_head *h) {
    const int Sk = h->Sk, Sv = h->Sv;
    if (Sv % 32 || Sv > 512) { q35_dn_fused(h); return; }
    const float scale = 1.0f / sqrtf((float)Sk);
    float *S = h->S;
    float vn[512] __attribute__((aligned(32)));
    for (int t = 0; t < h->T; t++) {
        const float *q = h->q + t * h->ldqk, *k = h->k + t * h->ldqk, *v = h->v + t * h->ldv;
        const float d = expf(h->g[t * h->ldgb]), beta = h->beta[t * h->ldgb];
        float *o = h->o + t * h->ldo;
        const float kq = dot_f32_avx2(k, q, Sk);
        const __m256 vd = _mm256_set1_ps(d), vbeta = _mm256_set1_ps(beta);
        const __m256 vscale = _mm256_set1_ps(scale), vkq = _mm256_set1_ps(kq);
        for (int cb = 0; cb < Sv; cb += 32) {
            __m256 p0 = _mm256_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;   /* S^T k */
            __m256 q0 = p0, q1 = p0, q2 = p0, q3 = p0;                    /* S^T q */
            for (int i = 0; i < Sk; i++) {
                const float *row = S + (int64_t)i * Sv + cb;
                const __m256 ki = _mm256_set1_ps(k[i]), qi = _mm256_set1_ps(q[i]);
                const __m256 r0 = _mm256_loadu_ps(row), r1 = _mm256_loadu_ps(row + 8);
                const __m256 r2 = _mm256_loadu_ps(row + 16), r3 = _mm256_loadu_ps(row + 24);
                p0 = _mm256_fmadd_ps(r0, ki, p0); q0 = _mm256_fmadd_ps(r0, qi, q0);
                p1 = _mm256_fmadd_ps(r1, ki, p1); q1 = _mm256_fmadd_ps(r1, qi, q1);
                p2 = _mm256_fmadd_ps(r2, ki, p2); q2 = _mm256_fmadd_ps(r2, qi, q2);
                p3 = _mm256_fmadd_ps(r3, ki, p3); q3 = _mm256_fmadd_ps(r3, qi, q3);
            }
            const __m256 P[4] = {p0, p1, p2, p3}, Q[4] = {q0, q1, q2, q3};
            for (int c = 0; c < 4; c++) {
                const int j = cb + 8 * c;
                /* vn = beta (v - d vp);  o = scale (d op + kq vn) */
                const __m256 n = _mm256_mul_ps(vbeta, _mm256_fnmadd_ps(vd, P[c], _mm256_loadu_ps(v + j)));
                _mm256_store_ps(vn + j, n);
                _mm256_storeu_ps(o + j, _mm256_mul_ps(vscale, _mm256_fmadd_ps(vkq, n, _mm256_mul_ps(vd, Q[c]))));
            }
        }
        for (int i = 0; i < Sk; i++) {
            float *row = S + (int64_t)i * Sv;
            const __m256 ki = _mm256_set1_ps(k[i]);
            for (int j = 0; j < Sv; j += 8)
                _mm256_storeu_ps(row + j, _mm256_fmadd_ps(ki, _mm256_load_ps(vn + j),
                                                          _mm256_mul_ps(vd, _mm256_loadu_ps(row + j))));
        }
    }
}


const q35_kernels q35_kernels_avx2 = {
    .name = "avx2",
    Q35_VECOPS_ENTRIES(avx2),
    .dn_fused = dn_fused_avx2,
    .dot_f32 = dot_f32_avx2,
    .from_float = {
        [Q35_TYPE_F32] = from_float_f32_avx2,
        [Q35_TYPE_F16] = from_float_f16_avx2,
        [Q35_TYPE_BF16] = from_float_bf16_avx2,
        [Q35_TYPE_Q8_0] = quantize_row_q8_0_avx2,
        [Q35_TYPE_Q8_K] = from_float_q8_K_avx2,
    },
    .vec_dot = {
        [Q35_TYPE_F32] = vec_dot_f32_avx2,
        [Q35_TYPE_F16] = vec_dot_f16_avx2,
        [Q35_TYPE_BF16] = vec_dot_bf16_avx2,
        [Q35_TYPE_Q4_0] = vec_dot_q4_0_q8_0_avx2,
        [Q35_TYPE_Q8_0] = q35_vec_dot_q8_0_avx2,
        [Q35_TYPE_Q4_K] = vec_dot_q4_K_q8_K_avx2,
        [Q35_TYPE_Q5_K] = vec_dot_q5_K_q8_K_avx2,
        [Q35_TYPE_Q6_K] = vec_dot_q6_K_q8_K_avx2,
        [Q35_TYPE_IQ4_XS] = vec_dot_iq4_xs_q8_K_avx2,
    },
    .vec_dot4 = {
        [Q35_TYPE_F32] = vec_dot4_f32_avx2,
        [Q35_TYPE_F16] = vec_dot4_f16_avx2,
        [Q35_TYPE_BF16] = vec_dot4_bf16_avx2,
        [Q35_TYPE_Q4_0] = vec_dot4_q4_0_q8_0_avx2,
        [Q35_TYPE_Q8_0] = q35_vec_dot4_q8_0_avx2,
        [Q35_TYPE_Q4_K] = vec_dot4_q4_K_q8_K_avx2,
        [Q35_TYPE_Q5_K] = vec_dot4_q5_K_q8_K_avx2,
        [Q35_TYPE_Q6_K] = vec_dot4_q6_K_q8_K_avx2,
        [Q35_TYPE_IQ4_XS] = vec_dot4_iq4_xs_q8_K_avx2,
    },
    .gemm = {
        [Q35_TYPE_Q8_0] = q35_gemm_q8_0_avx2,
        [Q35_TYPE_Q4_K] = gemm_q4_K_q8_K_avx2,
        [Q35_TYPE_Q6_K] = gemm_q6_K_q8_K_avx2,
        [Q35_TYPE_BF16] = gemm_bf16_avx2,
    },
};

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* Q35_HAVE_X86 */

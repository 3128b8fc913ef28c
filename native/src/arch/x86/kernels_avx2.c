/* The AVX2 + FMA + F16C kernel table (x86-64): the activation converters, the
 * float dot and the fused delta rule are here; the dots come from the per-type
 * files beside it (float_avx2.c, fp4_avx2.c, q4_0_iq4_xs_avx2.c, q8_0_avx2.c,
 * kquants_avx2.c), the row kernels from vecops_avx2.c. Per-file target
 * (arch/x86/avx2.h); only called after q35_isa_supported(Q35_ISA_AVX2) said
 * yes. */
#include "kernels.h"
#include "arch/vecops.h"

#if Q35_HAVE_X86
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "arch/x86/avx2.h" /* opens the target region */

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

static void quantize_row_q8_0_avx2(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        __m256 v[4];
        const float amax = load_absmax32(x + b * QK8_0, v);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = _cvtss_sh(d, 0);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) /* rounded half to even */
            q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        store_packed_i8x32(q, y[b].qs);
    }
}

/* ------------------------------------------------------------------------- */
/* KV cache readers (to_float), the scalar reference's exact values.         */

static void to_float_f32_avx2(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }

static void to_float_f16_avx2(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) y[i] = h2f(h[i]);
}

/* BF16: the 16 bits become the high half of the float */
static void to_float_bf16_avx2(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; i < n; i++) {
        const uint32_t u = (uint32_t)h[i] << 16;
        memcpy(y + i, &u, 4);
    }
}

static void to_float_q8_0_avx2(const void *x, float *y, int64_t n) {
    const block_q8_0 *b = x;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const __m256 d = _mm256_set1_ps(h2f(b[i].d));
        for (int k = 0; k < 4; k++) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b[i].qs + 8 * k)));
            _mm256_storeu_ps(y + i * QK8_0 + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
        }
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
        [Q35_TYPE_Q8_1] = q35_from_float_q8_1_avx2,
    },
    .to_float = {
        [Q35_TYPE_F32] = to_float_f32_avx2,
        [Q35_TYPE_F16] = to_float_f16_avx2,
        [Q35_TYPE_BF16] = to_float_bf16_avx2,
        [Q35_TYPE_Q8_0] = to_float_q8_0_avx2,
    },
    .vec_dot = {
        [Q35_TYPE_F32] = q35_vec_dot_f32_avx2,
        [Q35_TYPE_F16] = q35_vec_dot_f16_avx2,
        [Q35_TYPE_BF16] = q35_vec_dot_bf16_avx2,
        [Q35_TYPE_Q4_0] = q35_vec_dot_q4_0_q8_0_avx2,
        [Q35_TYPE_Q8_0] = q35_vec_dot_q8_0_avx2,
        [Q35_TYPE_Q4_K] = q35_vec_dot_q4_K_q8_K_avx2,
        [Q35_TYPE_Q5_K] = q35_vec_dot_q5_K_q8_K_avx2,
        [Q35_TYPE_Q6_K] = q35_vec_dot_q6_K_q8_K_avx2,
        [Q35_TYPE_IQ4_XS] = q35_vec_dot_iq4_xs_q8_K_avx2,
        [Q35_TYPE_MXFP4] = q35_vec_dot_mxfp4_q8_0_avx2,
        [Q35_TYPE_NVFP4] = q35_vec_dot_nvfp4_q8_0_avx2,
        [Q35_TYPE_Q4_1] = q35_vec_dot_q4_1_q8_1_avx2,
        [Q35_TYPE_Q5_0] = q35_vec_dot_q5_0_q8_0_avx2,
        [Q35_TYPE_Q5_1] = q35_vec_dot_q5_1_q8_1_avx2,
        [Q35_TYPE_IQ4_NL] = q35_vec_dot_iq4_nl_q8_0_avx2,
        [Q35_TYPE_IQ2_XXS] = q35_vec_dot_iq2_xxs_q8_K_avx2,
        [Q35_TYPE_IQ2_XS] = q35_vec_dot_iq2_xs_q8_K_avx2,
        [Q35_TYPE_IQ2_S] = q35_vec_dot_iq2_s_q8_K_avx2,
        [Q35_TYPE_IQ3_XXS] = q35_vec_dot_iq3_xxs_q8_K_avx2,
        [Q35_TYPE_IQ3_S] = q35_vec_dot_iq3_s_q8_K_avx2,
        [Q35_TYPE_IQ1_S] = q35_vec_dot_iq1_s_q8_K_avx2,
        [Q35_TYPE_IQ1_M] = q35_vec_dot_iq1_m_q8_K_avx2,
        [Q35_TYPE_TQ1_0] = q35_vec_dot_tq1_0_q8_K_avx2,
        [Q35_TYPE_TQ2_0] = q35_vec_dot_tq2_0_q8_K_avx2,
        [Q35_TYPE_Q2_K] = q35_vec_dot_q2_K_q8_K_avx2,
        [Q35_TYPE_Q3_K] = q35_vec_dot_q3_K_q8_K_avx2,
    },
    .vec_dot4 = {
        [Q35_TYPE_F32] = q35_vec_dot4_f32_avx2,
        [Q35_TYPE_F16] = q35_vec_dot4_f16_avx2,
        [Q35_TYPE_BF16] = q35_vec_dot4_bf16_avx2,
        [Q35_TYPE_Q4_0] = q35_vec_dot4_q4_0_q8_0_avx2,
        [Q35_TYPE_Q8_0] = q35_vec_dot4_q8_0_avx2,
        [Q35_TYPE_Q4_K] = q35_vec_dot4_q4_K_q8_K_avx2,
        [Q35_TYPE_Q5_K] = q35_vec_dot4_q5_K_q8_K_avx2,
        [Q35_TYPE_Q6_K] = q35_vec_dot4_q6_K_q8_K_avx2,
        [Q35_TYPE_IQ4_XS] = q35_vec_dot4_iq4_xs_q8_K_avx2,
        [Q35_TYPE_MXFP4] = q35_vec_dot4_mxfp4_q8_0_avx2,
        [Q35_TYPE_NVFP4] = q35_vec_dot4_nvfp4_q8_0_avx2,
        [Q35_TYPE_Q4_1] = q35_vec_dot4_q4_1_q8_1_avx2,
        [Q35_TYPE_Q5_0] = q35_vec_dot4_q5_0_q8_0_avx2,
        [Q35_TYPE_Q5_1] = q35_vec_dot4_q5_1_q8_1_avx2,
        [Q35_TYPE_IQ4_NL] = q35_vec_dot4_iq4_nl_q8_0_avx2,
        [Q35_TYPE_IQ2_XXS] = q35_vec_dot4_iq2_xxs_q8_K_avx2,
        [Q35_TYPE_IQ2_XS] = q35_vec_dot4_iq2_xs_q8_K_avx2,
        [Q35_TYPE_IQ2_S] = q35_vec_dot4_iq2_s_q8_K_avx2,
        [Q35_TYPE_IQ3_XXS] = q35_vec_dot4_iq3_xxs_q8_K_avx2,
        [Q35_TYPE_IQ3_S] = q35_vec_dot4_iq3_s_q8_K_avx2,
        [Q35_TYPE_IQ1_S] = q35_vec_dot4_iq1_s_q8_K_avx2,
        [Q35_TYPE_IQ1_M] = q35_vec_dot4_iq1_m_q8_K_avx2,
        [Q35_TYPE_TQ1_0] = q35_vec_dot4_tq1_0_q8_K_avx2,
        [Q35_TYPE_TQ2_0] = q35_vec_dot4_tq2_0_q8_K_avx2,
        [Q35_TYPE_Q2_K] = q35_vec_dot4_q2_K_q8_K_avx2,
        [Q35_TYPE_Q3_K] = q35_vec_dot4_q3_K_q8_K_avx2,
    },
    .gemm = {
        [Q35_TYPE_Q8_0] = q35_gemm_q8_0_avx2,
        [Q35_TYPE_Q4_K] = q35_gemm_q4_K_q8_K_avx2,
        [Q35_TYPE_Q5_K] = q35_gemm_q5_K_q8_K_avx2,
        [Q35_TYPE_Q6_K] = q35_gemm_q6_K_q8_K_avx2,
        [Q35_TYPE_BF16] = q35_gemm_bf16_avx2,
        [Q35_TYPE_Q2_K] = q35_gemm_q2_K_q8_K_avx2,
        [Q35_TYPE_Q3_K] = q35_gemm_q3_K_q8_K_avx2,
        [Q35_TYPE_IQ2_XXS] = q35_gemm_iq2_xxs_q8_K_avx2,
        [Q35_TYPE_IQ2_XS] = q35_gemm_iq2_xs_q8_K_avx2,
        [Q35_TYPE_IQ2_S] = q35_gemm_iq2_s_q8_K_avx2,
        [Q35_TYPE_IQ3_XXS] = q35_gemm_iq3_xxs_q8_K_avx2,
        [Q35_TYPE_IQ3_S] = q35_gemm_iq3_s_q8_K_avx2,
        [Q35_TYPE_IQ1_S] = q35_gemm_iq1_s_q8_K_avx2,
        [Q35_TYPE_IQ1_M] = q35_gemm_iq1_m_q8_K_avx2,
        [Q35_TYPE_TQ1_0] = q35_gemm_tq1_0_q8_K_avx2,
        [Q35_TYPE_TQ2_0] = q35_gemm_tq2_0_q8_K_avx2,
    },
    .gemm_packed = {[Q35_TYPE_Q4_K] = q35_gemm_packed_q4_K_avx2, [Q35_TYPE_Q5_K] = q35_gemm_packed_q5_K_avx2,
                    [Q35_TYPE_Q6_K] = q35_gemm_packed_q6_K_avx2,
                    [Q35_TYPE_Q8_0] = q35_gemm_packed_q8_0_avx2, [Q35_TYPE_IQ4_XS] = q35_gemm_packed_iq4_xs_avx2},
};

Q35_AVX2_END
#endif /* Q35_HAVE_X86 */

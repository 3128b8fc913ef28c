/* AVX512 (F/BW/VL) kernels (x86-64). Per-file target as in kernels_avx2.c;
 * only called after q35_isa_supported(Q35_ISA_AVX512) said yes. */
#include "kernels.h"

#if Q35_HAVE_X86
#include <immintrin.h>

#include "blocks.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
#endif

static float dot_f32_avx512(const float *a, const float *b, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    acc0 = _mm512_add_ps(acc0, acc1);
    if (i < n) { /* masked tail: up to 31 elements */
        for (; i < n; i += 16) {
            int64_t left = n - i;
            __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
        }
    }
    return _mm512_reduce_add_ps(acc0);
}

static void quantize_row_q8_0_avx512(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *xb = x + b * QK8_0;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = _cvtss_sh(d, 0);
        /* round half away from zero: trunc(|t| + 0.5) with the sign put back */
        const __m512 vid = _mm512_set1_ps(id), half = _mm512_set1_ps(0.5f);
        __m512 t0 = _mm512_mul_ps(v0, vid), t1 = _mm512_mul_ps(v1, vid);
        __m512 r0 = _mm512_roundscale_ps(_mm512_add_ps(_mm512_abs_ps(t0), half), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m512 r1 = _mm512_roundscale_ps(_mm512_add_ps(_mm512_abs_ps(t1), half), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m512i q0 = _mm512_cvttps_epi32(r0), q1 = _mm512_cvttps_epi32(r1);
        q0 = _mm512_mask_sub_epi32(q0, _mm512_cmp_ps_mask(t0, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_si512(), q0);
        q1 = _mm512_mask_sub_epi32(q1, _mm512_cmp_ps_mask(t1, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_si512(), q1);
        _mm_storeu_si128((__m128i *)y[b].qs, _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), _mm512_cvtsepi32_epi8(q1));
    }
}

static float dot_q8_0_q8_0_avx512(const void *w, const void *a, int64_t n) {
    const block_q8_0 *x = w, *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK8_0; b++) {
        /* widen int8 -> int16 and madd: exact, no maddubs sign trick needed */
        const __m512i qx = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)x[b].qs));
        const __m512i qy = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)y[b].qs));
        const __m512i p = _mm512_madd_epi16(qx, qy); /* 16 x int32 */
        const __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(p), _mm512_extracti64x4_epi64(p, 1));
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[b].d) * _cvtsh_ss(y[b].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

const q35_kernels q35_kernels_avx512 = {
    .name = "avx512",
    .dot_f32 = dot_f32_avx512,
    .from_float = {[Q35_TYPE_Q8_0] = quantize_row_q8_0_avx512},
    .vec_dot = {[Q35_TYPE_Q8_0] = dot_q8_0_q8_0_avx512},
};

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* Q35_HAVE_X86 */

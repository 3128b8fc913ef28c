/* MXFP4 x Q8_0 and NVFP4 x Q8_0 on AVX2 + FMA + F16C, one pair and one weight row with 4
 * activation rows. The e2m1 codes become their (doubled) values through pshufb on the 16-entry
 * table, then a signed x signed int8 dot as the IQ4 kernels do it (maddubs(|w|, sign(qa, w)),
 * int16-safe: 2 * 12 * 127), one float scale per 8 int32 lanes (MXFP4: one per 32-value block;
 * NVFP4: its two 16-value sub-blocks' scales, 4 lanes each). */
#include "kernels.h"

#if Q35_HAVE_X86
#include "blocks.h"
#include "fp4.h"
#include "arch/x86/avx2.h" /* opens the target region */

/* 16 bytes of codes -> the 32 values, low nibbles (0..15) then high (16..31) */
static inline __m256i fp4_values_32(const uint8_t *p, __m256i table) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    const __m256i codes = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0xF));
    return _mm256_shuffle_epi8(table, codes);
}

static inline __m256i fp4_table(void) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q35_kvalues_fp4));
}

/* sum over 4 consecutive values of w * qa, as 8 int32 lanes (w signed, qa a Q8_0 block) */
static inline __m256i dot_lanes(__m256i wv, __m256i aw, const int8_t *qa) {
    const __m256i a = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)qa), wv);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, a), _mm256_set1_epi16(1));
}

/* ------------------------------------------------------------------------- */
/* MXFP4: one E8M0 scale per 32 values, one Q8_0 block.                      */

float q35_vec_dot_mxfp4_q8_0_avx2(const void *w, const void *a, int64_t n) {
    const block_mxfp4 *x = w;
    const block_q8_0 *y = a;
    const __m256i table = fp4_table();
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_MXFP4; b++) {
        const __m256i wv = fp4_values_32(x[b].qs, table);
        const __m256 d = _mm256_set1_ps(h2f(y[b].d) * q35_e8m0_half(x[b].e));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_lanes(wv, _mm256_sign_epi8(wv, wv), y[b].qs)), acc);
    }
    return hsum_ps256(acc);
}

void q35_vec_dot4_mxfp4_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_mxfp4 *x = w;
    ROWS4(block_q8_0, y, a, as);
    const __m256i table = fp4_table();
    __m256 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_MXFP4; b++) {
        const __m256i wv = fp4_values_32(x[b].qs, table), aw = _mm256_sign_epi8(wv, wv);
        const float dx = q35_e8m0_half(x[b].e);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m256 d = _mm256_set1_ps(h2f(y[r][b].d) * dx);
            acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_lanes(wv, aw, y[r][b].qs)), acc[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) out[r] = hsum_ps256(acc[r]);
}

/* ------------------------------------------------------------------------- */
/* NVFP4: 64 values, 4 UE4M3 scales (one per 16), two Q8_0 blocks.           */

/* the 32 values of sub-blocks 2c and 2c+1 in element order: the codes of sub-block s are 8 bytes,
 * low nibbles its values 0..7, high 8..15, so fp4_values_32's (lo of 16 bytes, hi of 16 bytes)
 * holds the 8-byte quarters (s lo, s+1 lo, s hi, s+1 hi): quarters 0, 2, 1, 3 in order */
static inline __m256i nvfp4_values_32(const uint8_t *p, __m256i table) {
    return _mm256_permute4x64_epi64(fp4_values_32(p, table), 0xD8);
}

/* the scales of a 32-value half: dy * ue4m3(d0) on lanes 0-3, dy * ue4m3(d1) on lanes 4-7 */
static inline __m256 nvfp4_scales(float dy, uint8_t d0, uint8_t d1) {
    const __m128 lo = _mm_set1_ps(dy * q35_ue4m3_half(d0)), hi = _mm_set1_ps(dy * q35_ue4m3_half(d1));
    return _mm256_set_m128(hi, lo);
}

float q35_vec_dot_nvfp4_q8_0_avx2(const void *w, const void *a, int64_t n) {
    const block_nvfp4 *x = w;
    const block_q8_0 *y = a;
    const __m256i table = fp4_table();
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_NVFP4; b++) {
        const __m256i w0 = nvfp4_values_32(x[b].qs, table), w1 = nvfp4_values_32(x[b].qs + 16, table);
        const __m256 s0 = nvfp4_scales(h2f(y[2 * b].d), x[b].d[0], x[b].d[1]);
        const __m256 s1 = nvfp4_scales(h2f(y[2 * b + 1].d), x[b].d[2], x[b].d[3]);
        acc0 = _mm256_fmadd_ps(s0, _mm256_cvtepi32_ps(dot_lanes(w0, _mm256_sign_epi8(w0, w0), y[2 * b].qs)), acc0);
        acc1 = _mm256_fmadd_ps(s1, _mm256_cvtepi32_ps(dot_lanes(w1, _mm256_sign_epi8(w1, w1), y[2 * b + 1].qs)), acc1);
    }
    return hsum_ps256(_mm256_add_ps(acc0, acc1));
}

void q35_vec_dot4_nvfp4_q8_0_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    const block_nvfp4 *x = w;
    ROWS4(block_q8_0, y, a, as);
    const __m256i table = fp4_table();
    __m256 acc0[4], acc1[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_NVFP4; b++) {
        const __m256i w0 = nvfp4_values_32(x[b].qs, table), w1 = nvfp4_values_32(x[b].qs + 16, table);
        const __m256i aw0 = _mm256_sign_epi8(w0, w0), aw1 = _mm256_sign_epi8(w1, w1);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m256 s0 = nvfp4_scales(h2f(y[r][2 * b].d), x[b].d[0], x[b].d[1]);
            const __m256 s1 = nvfp4_scales(h2f(y[r][2 * b + 1].d), x[b].d[2], x[b].d[3]);
            acc0[r] = _mm256_fmadd_ps(s0, _mm256_cvtepi32_ps(dot_lanes(w0, aw0, y[r][2 * b].qs)), acc0[r]);
            acc1[r] = _mm256_fmadd_ps(s1, _mm256_cvtepi32_ps(dot_lanes(w1, aw1, y[r][2 * b + 1].qs)), acc1[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) out[r] = hsum_ps256(_mm256_add_ps(acc0[r], acc1[r]));
}

Q35_AVX2_END
#endif

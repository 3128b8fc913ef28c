/* AVX512 F/BW/VL kernels (x86-64): dots, activation converters, the fused
 * delta rule. Per-file target (arch/x86/avx512.h); only called after
 * q35_isa_supported(Q35_ISA_AVX512) said yes.
 *
 * This file is compiled three ways (one source):
 *   - as itself: table q35_kernels_avx512;
 *   - included by kernels_avx512vnni.c with Q35_AVX512_VNNI: the integer dots
 *     again with vpdpbusd / vpdpwssd, table q35_kernels_avx512vnni, which
 *     dispatch lays over the plain one on CPUs with AVX512-VNNI;
 *   - with Q35_AVX512_SIMDE (self-test only): on SIMDe's emulation, so the
 *     lane, mask, tail and reduction logic is checked on AVX2 machines.
 *
 * Every dot is written once for up to 4 activation rows (the *_rows helpers,
 * always inlined with nr = 1 or 4): each row runs the same float operations in
 * the same order either way, so vec_dot4 equals 4 vec_dots bit for bit and
 * logits never depend on how tokens were batched.
 *
 * The panels (gemm entries of both tables) are in kquants_avx512.c (Q4_K, Q5_K,
 * Q6_K, IQ4_XS), q8_0_avx512.c and float_avx512.c (BF16), each value bit for bit
 * its table's vec_dot; the pieces both need (dpbusd, sign_pair, nibble and scale
 * unpacking, ...) are in avx512.h, so both run the very same operations. */
#include "kernels.h"

#if Q35_HAVE_X86
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "arch/vecops.h"
#include "arch/x86/avx512.h" /* opens the target region */

#define ROWS_FN static inline __attribute__((always_inline))

/* the 4 activation rows (or 1) of a dot, at a + r * stride bytes */
#define ROW(T, a, r, stride) ((const T *)(const void *)((const uint8_t *)(a) + (r) * (stride)))

/* dpbusd, dpwssd, sign_pair, nibbles_*, scale_pair16, scale_of_chunk, h2f, bf16_even / bf16_odd,
 * two_blocks, two_scales, k_scales_mins16, k_mins_dot, q6_K_scale_dot, iq4_xs_scales16: in arch/x86/avx512.h, shared with the panels */

/* ------------------------------------------------------------------------- */
/* Float rows: F32, F16, BF16. Per row 4 accumulators of 16 lanes over steps  */
/* of 64 elements, then 16 (32 for BF16) at a time, then one masked step.    */

ROWS_FN void f32_rows(const float *x, const void *a, int64_t as, int64_t n, float *out, const int nr) {
    __m512 acc[4][4];
    for (int r = 0; r < nr; r++)
        for (int k = 0; k < 4; k++) acc[r][k] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; k++) {
            const __m512 w = _mm512_loadu_ps(x + i + 16 * k);
            for (int r = 0; r < nr; r++)
                acc[r][k] = _mm512_fmadd_ps(w, _mm512_loadu_ps(ROW(float, a, r, as) + i + 16 * k), acc[r][k]);
        }
    for (; i < n; i += 16) { /* the last step masked */
        const __mmask16 m = q35_mask16(n - i);
        const __m512 w = _mm512_maskz_loadu_ps(m, x + i);
        for (int r = 0; r < nr; r++)
            acc[r][0] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, ROW(float, a, r, as) + i), acc[r][0]);
    }
    for (int r = 0; r < nr; r++)
        out[r] = q35_hsum512(_mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3])));
}

static inline __m512 load_f16x16(const uint16_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

ROWS_FN void f16_rows(const uint16_t *x, const void *a, int64_t as, int64_t n, float *out, const int nr) {
    __m512 acc[4][4];
    for (int r = 0; r < nr; r++)
        for (int k = 0; k < 4; k++) acc[r][k] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; k++) {
            const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16 * k)));
            for (int r = 0; r < nr; r++) {
                const __m256i h = _mm256_loadu_si256((const __m256i *)(ROW(uint16_t, a, r, as) + i + 16 * k));
                acc[r][k] = _mm512_fmadd_ps(w, _mm512_cvtph_ps(h), acc[r][k]);
            }
        }
    for (; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        const __m512 w = load_f16x16(x + i, m);
        for (int r = 0; r < nr; r++)
            acc[r][0] = _mm512_fmadd_ps(w, load_f16x16(ROW(uint16_t, a, r, as) + i, m), acc[r][0]);
    }
    for (int r = 0; r < nr; r++)
        out[r] = q35_hsum512(_mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3])));
}

ROWS_FN void bf16_rows(const uint16_t *x, const void *a, int64_t as, int64_t n, float *out, const int nr) {
    __m512 acc[4][4];
    for (int r = 0; r < nr; r++)
        for (int k = 0; k < 4; k++) acc[r][k] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int h = 0; h < 2; h++) {
            const __m512i w = _mm512_loadu_si512((const void *)(x + i + 32 * h));
            const __m512 we = bf16_even(w), wo = bf16_odd(w);
            for (int r = 0; r < nr; r++) {
                const __m512i y = _mm512_loadu_si512((const void *)(ROW(uint16_t, a, r, as) + i + 32 * h));
                acc[r][2 * h] = _mm512_fmadd_ps(we, bf16_even(y), acc[r][2 * h]);
                acc[r][2 * h + 1] = _mm512_fmadd_ps(wo, bf16_odd(y), acc[r][2 * h + 1]);
            }
        }
    for (; i < n; i += 32) { /* masked lanes load as 0 and add nothing */
        const __mmask32 m = q35_mask32(n - i);
        const __m512i w = _mm512_maskz_loadu_epi16(m, x + i);
        const __m512 we = bf16_even(w), wo = bf16_odd(w);
        for (int r = 0; r < nr; r++) {
            const __m512i y = _mm512_maskz_loadu_epi16(m, ROW(uint16_t, a, r, as) + i);
            acc[r][0] = _mm512_fmadd_ps(we, bf16_even(y), acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(wo, bf16_odd(y), acc[r][1]);
        }
    }
    for (int r = 0; r < nr; r++)
        out[r] = q35_hsum512(_mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3])));
}

/* ------------------------------------------------------------------------- */
/* Q8_0 and Q4_0 with Q8_0 activations: two 32-quant blocks per register     */
/* (lanes 0-7 block b, 8-15 block b+1), one scale dW*da per half.            */

ROWS_FN void q8_0_rows(const block_q8_0 *x, const void *a, int64_t as, int64_t n, float *out, const int nr) {
    const int64_t nb = n / QK8_0;
    __m512 acc[4];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        const int two = b + 1 < nb;
        const __m512i w = two_blocks(x[b].qs, two ? x[b + 1].qs : NULL);
        const float dw0 = h2f(x[b].d), dw1 = two ? h2f(x[b + 1].d) : 0.0f;
        for (int r = 0; r < nr; r++) {
            const block_q8_0 *y = ROW(block_q8_0, a, r, as);
            __m512i aw, sy;
            sign_pair(w, two_blocks(y[b].qs, two ? y[b + 1].qs : NULL), &aw, &sy);
            const __m512i p = dpbusd(_mm512_setzero_si512(), aw, sy);
            const __m512 d = two_scales(dw0 * h2f(y[b].d), two ? dw1 * h2f(y[b + 1].d) : 0.0f);
            acc[r] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) out[r] = q35_hsum512(acc[r]);
}

/* Q4_0: sum_j (q_j - 8) qa_j = dot(q, qa) - dot(8, qa), both u8 x s8 */
ROWS_FN void q4_0_rows(const block_q4_0 *x, const void *a, int64_t as, int64_t n, float *out, const int nr) {
    const int64_t nb = n / QK4_0;
    const __m512i eight = _mm512_set1_epi8(8);
    __m512 acc[4];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        const int two = b + 1 < nb;
        const __m128i q0 = _mm_loadu_si128((const __m128i *)x[b].qs);
        /* a missing second block is all 8s: its weights are 0 */
        const __m128i q1 = two ? _mm_loadu_si128((const __m128i *)x[b + 1].qs) : _mm_set1_epi8((char)0x88);
        const __m512i w = nibbles_2x32(q0, q1);
        const float dw0 = h2f(x[b].d), dw1 = two ? h2f(x[b + 1].d) : 0.0f;
        for (int r = 0; r < nr; r++) {
            const block_q8_0 *y = ROW(block_q8_0, a, r, as);
            const __m512i qa = two_blocks(y[b].qs, two ? y[b + 1].qs : NULL);
            const __m512i p = _mm512_sub_epi32(dpbusd(_mm512_setzero_si512(), w, qa),
                                               dpbusd(_mm512_setzero_si512(), eight, qa));
            const __m512 d = two_scales(dw0 * h2f(y[b].d), two ? dw1 * h2f(y[b + 1].d) : 0.0f);
            acc[r] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) out[r] = q35_hsum512(acc[r]);
}

/* ------------------------------------------------------------------------- */
/* K-quants and IQ4_XS with Q8_K activations: per super-block of 256, four    */
/* 64-quant chunks; each chunk's int16 pair sums (maddubs) times the int16    */
/* sub-block scales accumulate in int32 (exact), then one float fma per row.  */

/* Q4_K / Q5_K share everything but the fifth bit (qh, Q5_K only): chunk c holds
 * sub-blocks 2c (low nibbles of qs[32c..]) and 2c+1 (high nibbles). The mins
 * term is integer: sum_j m_j (bsum_2j + bsum_2j+1). */
ROWS_FN void k45_rows(const uint8_t *base, int64_t bstride, int has_qh, const void *a, int64_t as, int64_t n,
                      float *out, const int nr) {
    const __m512i one = _mm512_set1_epi8(1);
    __m512 acc[4];
    float accm[4] = {0, 0, 0, 0};
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        /* block_q4_K and block_q5_K start alike: d, dmin, scales; then Q5_K's qh, then qs */
        const uint8_t *blk = base + b * bstride;
        const block_q4_K *hdr = (const block_q4_K *)(const void *)blk;
        const uint8_t *qh = has_qh ? ((const block_q5_K *)(const void *)blk)->qh : NULL;
        const uint8_t *qs = has_qh ? ((const block_q5_K *)(const void *)blk)->qs : hdr->qs;
        const __m256i ms16 = k_scales_mins16(hdr->scales); /* sc0..7 | m0..7 */
        const __m512i sc16 = _mm512_castsi256_si512(ms16); /* upper lanes unused */
        const float dw = h2f(hdr->d), dmw = h2f(hdr->dmin);
        __m512i sumi[4];
        for (int r = 0; r < nr; r++) sumi[r] = _mm512_setzero_si512();
        const __m256i hbits = has_qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m512i q = nibbles_lohi(_mm256_loadu_si256((const __m256i *)(qs + 32 * c)));
            if (has_qh) { /* bit 2c of qh[l] for the low half, bit 2c+1 for the high half */
                const __m512i h2 = _mm512_inserti64x4(_mm512_castsi256_si512(hbits), hbits, 1);
                const __m512i sh = _mm512_setr_epi64(2 * c, 2 * c, 2 * c, 2 * c, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1);
                const __m512i bit = _mm512_and_si512(_mm512_srlv_epi64(h2, sh), one);
                q = _mm512_or_si512(q, _mm512_slli_epi16(bit, 4));
            }
            const __m512i s = scale_of_chunk(sc16, c);
            for (int r = 0; r < nr; r++) {
                const block_q8_K *y = ROW(block_q8_K, a, r, as) + b;
                const __m512i p = _mm512_maddubs_epi16(q, _mm512_loadu_si512((const void *)(y->qs + 64 * c)));
                sumi[r] = dpwssd(sumi[r], p, s);
            }
        }
        for (int r = 0; r < nr; r++) {
            const block_q8_K *y = ROW(block_q8_K, a, r, as) + b;
            const int32_t summ = k_mins_dot(ms16, y->bsums);
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(y->d * dw), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = fmaf(-(y->d * dmw), (float)summ, accm[r]); /* one rounding, as the panels */
        }
    }
    for (int r = 0; r < nr; r++) out[r] = q35_hsum512(acc[r]) + accm[r];
}

/* Q6_K: chunk 2h+0 = elements 128h..128h+63: low nibbles of ql[64h..64h+63]
 * with bits 0-1 (first 32) and 2-3 (next 32) of qh[32h..]; chunk 2h+1 = the
 * high nibbles with bits 4-5 and 6-7. Quants 0..63 go through maddubs
 * unsigned; the -32 is folded in once per super-block as -32 sum_j sc_j bsum_j.
 * Scales: 16 int8, one per 16 quants = 8 int16 pair sums. */
static const int16_t q6k_scale_idx[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};

ROWS_FN void q6_K_rows(const block_q6_K *x, const void *a, int64_t as, int64_t n, float *out, const int nr) {
    const __m512i m15 = _mm512_set1_epi8(0xF), m3 = _mm512_set1_epi8(3);
    const __m512i idx0 = _mm512_loadu_si512((const void *)q6k_scale_idx);
    __m512 acc[4];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales)));
        __m512i sumi[4];
        for (int r = 0; r < nr; r++) {
            const block_q8_K *y = ROW(block_q8_K, a, r, as) + b;
            const int32_t corr = q6_K_scale_dot(x[b].scales, y->bsums);
            sumi[r] = _mm512_mask_set1_epi32(_mm512_setzero_si512(), 1, -32 * corr);
        }
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m512i l = _mm512_loadu_si512((const void *)(x[b].ql + 64 * h));
            const __m256i hq = _mm256_loadu_si256((const __m256i *)(x[b].qh + 32 * h));
            const __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(hq), hq, 1);
#pragma GCC unroll 2
            for (int part = 0; part < 2; part++) {
                const int k = 2 * h + part; /* chunk: elements 64k..64k+63 */
                const __m512i nib = part ? _mm512_and_si512(_mm512_srli_epi16(l, 4), m15) : _mm512_and_si512(l, m15);
                const int s0 = 4 * part, s1 = 4 * part + 2;
                const __m512i hi2 = _mm512_and_si512(_mm512_srlv_epi64(hh, _mm512_setr_epi64(s0, s0, s0, s0, s1, s1, s1, s1)), m3);
                const __m512i q = _mm512_or_si512(nib, _mm512_slli_epi16(hi2, 4));
                const __m512i s = _mm512_permutexvar_epi16(_mm512_add_epi16(idx0, _mm512_set1_epi16((short)(4 * k))), sc16);
                for (int r = 0; r < nr; r++) {
                    const block_q8_K *y = ROW(block_q8_K, a, r, as) + b;
                    const __m512i p = _mm512_maddubs_epi16(q, _mm512_loadu_si512((const void *)(y->qs + 64 * k)));
                    sumi[r] = dpwssd(sumi[r], p, s);
                }
            }
        }
        const float dw = h2f(x[b].d);
        for (int r = 0; r < nr; r++) {
            const block_q8_K *y = ROW(block_q8_K, a, r, as) + b;
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(y->d * dw), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) out[r] = q35_hsum512(acc[r]);
}

/* IQ4_XS: nibbles -> the non-linear grid through vpshufb (signed values),
 * signed x signed via sign_pair, sub-block scales ls - 32 */
ROWS_FN void iq4_xs_rows(const block_iq4_xs *x, const void *a, int64_t as, int64_t n, float *out, const int nr) {
    const __m512i grid = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)q35_kvalues_iq4nl));
    __m512 acc[4];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const __m512i ls16 = _mm512_castsi128_si512(iq4_xs_scales16(x[b].scales_l, x[b].scales_h));
        __m512i sumi[4];
        for (int r = 0; r < nr; r++) sumi[r] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) { /* sub-blocks 2c, 2c+1 */
            const uint8_t *qs = x[b].qs + 32 * c;
            const __m512i k = _mm512_shuffle_epi8(grid, nibbles_2x32(_mm_loadu_si128((const __m128i *)qs),
                                                                     _mm_loadu_si128((const __m128i *)(qs + 16))));
            const __m512i s = scale_of_chunk(ls16, c);
            for (int r = 0; r < nr; r++) {
                const block_q8_K *y = ROW(block_q8_K, a, r, as) + b;
                __m512i ak, sy;
                sign_pair(k, _mm512_loadu_si512((const void *)(y->qs + 64 * c)), &ak, &sy);
                sumi[r] = dpwssd(sumi[r], _mm512_maddubs_epi16(ak, sy), s);
            }
        }
        const float dw = h2f(x[b].d);
        for (int r = 0; r < nr; r++) {
            const block_q8_K *y = ROW(block_q8_K, a, r, as) + b;
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(y->d * dw), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) out[r] = q35_hsum512(acc[r]);
}

/* vec_dot (1 row) and vec_dot4 (4 rows) of every weight type from its *_rows */
#define DEFINE_DOTS(name, CALL)                                                                      \
    static float vec_dot_##name(const void *w, const void *a, int64_t n) {                         \
        float o;                                                                                     \
        const int64_t as = 0;                                                                        \
        CALL(w, a, as, n, &o, 1);                                                                    \
        return o;                                                                                    \
    }                                                                                                \
    static void vec_dot4_##name(const void *w, const void *a, int64_t as, int64_t n, float *out) {   \
        CALL(w, a, as, n, out, 4);                                                                   \
    }
#define CALL_Q8_0(w, a, as, n, o, nr) q8_0_rows((const block_q8_0 *)(w), a, as, n, o, nr)
#define CALL_Q4_0(w, a, as, n, o, nr) q4_0_rows((const block_q4_0 *)(w), a, as, n, o, nr)
#define CALL_Q4_K(w, a, as, n, o, nr) k45_rows((const uint8_t *)(w), sizeof(block_q4_K), 0, a, as, n, o, nr)
#define CALL_Q5_K(w, a, as, n, o, nr) k45_rows((const uint8_t *)(w), sizeof(block_q5_K), 1, a, as, n, o, nr)
#define CALL_Q6_K(w, a, as, n, o, nr) q6_K_rows((const block_q6_K *)(w), a, as, n, o, nr)
#define CALL_IQ4_XS(w, a, as, n, o, nr) iq4_xs_rows((const block_iq4_xs *)(w), a, as, n, o, nr)
DEFINE_DOTS(q8_0, CALL_Q8_0)
DEFINE_DOTS(q4_0, CALL_Q4_0)
DEFINE_DOTS(q4_K, CALL_Q4_K)
DEFINE_DOTS(q5_K, CALL_Q5_K)
DEFINE_DOTS(q6_K, CALL_Q6_K)
DEFINE_DOTS(iq4_xs, CALL_IQ4_XS)

#if !defined(Q35_AVX512_VNNI)
#define CALL_F32(w, a, as, n, o, nr) f32_rows((const float *)(w), a, as, n, o, nr)
#define CALL_F16(w, a, as, n, o, nr) f16_rows((const uint16_t *)(w), a, as, n, o, nr)
#define CALL_BF16(w, a, as, n, o, nr) bf16_rows((const uint16_t *)(w), a, as, n, o, nr)
DEFINE_DOTS(f32, CALL_F32)
DEFINE_DOTS(f16, CALL_F16)
DEFINE_DOTS(bf16, CALL_BF16)

static float dot_f32_avx512(const float *a, const float *b, int64_t n) {
    float o;
    f32_rows(a, b, 0, n, &o, 1);
    return o;
}

/* ------------------------------------------------------------------------- */
/* Activation converters (from_float).                                       */

static void from_float_f32_avx512(const float *x, void *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
}

/* F16: vcvtps2ph, round to nearest even (overflow to inf, as q35_f2h) */
static void from_float_f16_avx512(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(y + i, m, h);
    }
}

/* BF16, as q35_f2bf: (u + 0x7fff + ((u >> 16) & 1)) >> 16, NaN -> (u >> 16) | 0x40 */
static void from_float_bf16_avx512(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
        const __m512i hi = _mm512_srli_epi32(u, 16);
        const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, bias), _mm512_and_si512(hi, one)), 16);
        const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, absmask), inf);
        const __m512i v = _mm512_mask_blend_epi32(nan, r, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtepi32_epi16(v));
    }
}

/* Q8_0: per 32 values d = max|x|/127, q = round(x/d) half away from zero
 * (trunc(|t| + 0.5) with the sign put back), as roundf in the scalar reference */
static void from_float_q8_0_avx512(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *xb = x + b * QK8_0;
        const __m512 v[2] = {_mm512_loadu_ps(xb), _mm512_loadu_ps(xb + 16)};
        const float amax = q35_hmax512(_mm512_max_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = (uint16_t)_cvtss_sh(d, 0);
        for (int k = 0; k < 2; k++) { /* rounded half to even */
            const __m512i q = _mm512_cvttps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v[k], _mm512_set1_ps(id)),
                                                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            _mm_storeu_si128((__m128i *)(y[b].qs + 16 * k), _mm512_cvtsepi32_epi8(q));
        }
    }
}

/* Q8_K, byte-identical to the scalar reference: the first element of largest
 * |x| maps to -127; the same float products rounded half to even, capped at 127 */
static void from_float_q8_K_avx512(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float *xb = x + b * QK_K;
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < QK_K; k += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(xb + k)));
        const float amax = q35_hmax512(m);
        if (amax == 0.0f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        int first = 0;
        for (int k = 0; k < QK_K; k += 16) {
            const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(xb + k)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (hit) { first = k + __builtin_ctz((unsigned)hit); break; }
        }
        const float iscale = -127.0f / xb[first];
        const __m512 vis = _mm512_set1_ps(iscale);
        for (int k = 0; k < QK_K; k += 16) {
            const __m512 t = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(xb + k), vis), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            const __m512i q = _mm512_min_epi32(_mm512_cvttps_epi32(t), _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(y[b].qs + k), _mm512_cvtsepi32_epi8(q));
            y[b].bsums[k / 16] = (int16_t)q35_hsum512i(q);
        }
        y[b].d = 1.0f / iscale;
    }
}

/* ------------------------------------------------------------------------- */
/* The fused delta rule (engine/deltanet.c has the math): per token one pass  */
/* over S for vp = S^T k and op = S^T q, then S = d S + k vn^T. Columns go in */
/* blocks of up to 128 (8 registers, the last ones masked), so any Sv works; */
/* at Sv = 128 a pass reads S as one contiguous stream.                       */
#define DN_VECS 8
static void dn_fused_avx512(const q35_dn_head *h) {
    const int Sk = h->Sk, Sv = h->Sv;
    const float scale = 1.0f / sqrtf((float)Sk);
    float *S = h->S;
    float vn[512];
    for (int t = 0; t < h->T; t++) {
        const float *q = h->q + t * h->ldqk, *k = h->k + t * h->ldqk, *v = h->v + t * h->ldv;
        const float d = expf(h->g[t * h->ldgb]), beta = h->beta[t * h->ldgb];
        float *o = h->o + t * h->ldo;
        const float kq = dot_f32_avx512(k, q, Sk);
        const __m512 vd = _mm512_set1_ps(d), vbeta = _mm512_set1_ps(beta);
        const __m512 vscale = _mm512_set1_ps(scale), vkq = _mm512_set1_ps(kq);
        for (int cb = 0; cb < Sv; cb += 16 * DN_VECS) {
            __mmask16 m[DN_VECS];
            for (int c = 0; c < DN_VECS; c++) m[c] = cb + 16 * c < Sv ? q35_mask16(Sv - cb - 16 * c) : 0;
            __m512 P[DN_VECS], Q[DN_VECS]; /* S^T k and S^T q of these columns */
            for (int c = 0; c < DN_VECS; c++) P[c] = Q[c] = _mm512_setzero_ps();
            for (int i = 0; i < Sk; i++) {
                const float *row = S + (int64_t)i * Sv + cb;
                const __m512 ki = _mm512_set1_ps(k[i]), qi = _mm512_set1_ps(q[i]);
#pragma GCC unroll 8
                for (int c = 0; c < DN_VECS; c++) {
                    const __m512 s = _mm512_maskz_loadu_ps(m[c], row + 16 * c);
                    P[c] = _mm512_fmadd_ps(s, ki, P[c]);
                    Q[c] = _mm512_fmadd_ps(s, qi, Q[c]);
                }
            }
            for (int c = 0; c < DN_VECS; c++) {
                const int j = cb + 16 * c;
                if (!m[c]) break;
                /* vn = beta (v - d vp);  o = scale (d op + kq vn) */
                const __m512 nv = _mm512_mul_ps(vbeta, _mm512_fnmadd_ps(vd, P[c], _mm512_maskz_loadu_ps(m[c], v + j)));
                _mm512_mask_storeu_ps(vn + j, m[c], nv);
                _mm512_mask_storeu_ps(o + j, m[c], _mm512_mul_ps(vscale, _mm512_fmadd_ps(vkq, nv, _mm512_mul_ps(vd, Q[c]))));
            }
        }
        for (int i = 0; i < Sk; i++) {
            float *row = S + (int64_t)i * Sv;
            const __m512 ki = _mm512_set1_ps(k[i]);
            int j = 0;
            for (; j + 16 <= Sv; j += 16)
                _mm512_storeu_ps(row + j, _mm512_fmadd_ps(ki, _mm512_loadu_ps(vn + j), _mm512_mul_ps(vd, _mm512_loadu_ps(row + j))));
            if (j < Sv) {
                const __mmask16 mj = q35_mask16(Sv - j);
                const __m512 s = _mm512_maskz_loadu_ps(mj, row + j);
                _mm512_mask_storeu_ps(row + j, mj, _mm512_fmadd_ps(ki, _mm512_maskz_loadu_ps(mj, vn + j), _mm512_mul_ps(vd, s)));
            }
        }
    }
}

#ifdef Q35_AVX512_SIMDE
#define Q35_AVX512_NAME "avx512 (SIMDe emulation)"
#else
#define Q35_AVX512_NAME "avx512"
#endif

const q35_kernels q35_kernels_avx512 = {
    .name = Q35_AVX512_NAME,
    Q35_VECOPS_ENTRIES(avx512),
    .dn_fused = dn_fused_avx512,
    .dot_f32 = dot_f32_avx512,
    .from_float = {
        [Q35_TYPE_F32] = from_float_f32_avx512,
        [Q35_TYPE_F16] = from_float_f16_avx512,
        [Q35_TYPE_BF16] = from_float_bf16_avx512,
        [Q35_TYPE_Q8_0] = from_float_q8_0_avx512,
        [Q35_TYPE_Q8_K] = from_float_q8_K_avx512,
    },
    .vec_dot = {
        [Q35_TYPE_F32] = vec_dot_f32,
        [Q35_TYPE_F16] = vec_dot_f16,
        [Q35_TYPE_BF16] = vec_dot_bf16,
        [Q35_TYPE_Q4_0] = vec_dot_q4_0,
        [Q35_TYPE_Q8_0] = vec_dot_q8_0,
        [Q35_TYPE_Q4_K] = vec_dot_q4_K,
        [Q35_TYPE_Q5_K] = vec_dot_q5_K,
        [Q35_TYPE_Q6_K] = vec_dot_q6_K,
        [Q35_TYPE_IQ4_XS] = vec_dot_iq4_xs,
    },
    .vec_dot4 = {
        [Q35_TYPE_F32] = vec_dot4_f32,
        [Q35_TYPE_F16] = vec_dot4_f16,
        [Q35_TYPE_BF16] = vec_dot4_bf16,
        [Q35_TYPE_Q4_0] = vec_dot4_q4_0,
        [Q35_TYPE_Q8_0] = vec_dot4_q8_0,
        [Q35_TYPE_Q4_K] = vec_dot4_q4_K,
        [Q35_TYPE_Q5_K] = vec_dot4_q5_K,
        [Q35_TYPE_Q6_K] = vec_dot4_q6_K,
        [Q35_TYPE_IQ4_XS] = vec_dot4_iq4_xs,
    },
    .gemm = {
        [Q35_TYPE_Q8_0] = q35_gemm_q8_0_avx512,
        [Q35_TYPE_BF16] = q35_gemm_bf16_avx512,
        [Q35_TYPE_Q4_K] = q35_gemm_q4_K_avx512,
        [Q35_TYPE_Q5_K] = q35_gemm_q5_K_avx512,
        [Q35_TYPE_Q6_K] = q35_gemm_q6_K_avx512,
        [Q35_TYPE_IQ4_XS] = q35_gemm_iq4_xs_avx512,
    },
    .gemm_packed = {[Q35_TYPE_Q4_K] = q35_gemm_packed_q4_K_avx512, [Q35_TYPE_Q5_K] = q35_gemm_packed_q5_K_avx512,
                    [Q35_TYPE_Q6_K] = q35_gemm_packed_q6_K_avx512},
};
#else /* Q35_AVX512_VNNI: only the integer dots differ; dispatch fills the rest from q35_kernels_avx512 */
const q35_kernels q35_kernels_avx512vnni = {
    .name = "avx512+vnni",
    .vec_dot = {
        [Q35_TYPE_Q4_0] = vec_dot_q4_0,
        [Q35_TYPE_Q8_0] = vec_dot_q8_0,
        [Q35_TYPE_Q4_K] = vec_dot_q4_K,
        [Q35_TYPE_Q5_K] = vec_dot_q5_K,
        [Q35_TYPE_Q6_K] = vec_dot_q6_K,
        [Q35_TYPE_IQ4_XS] = vec_dot_iq4_xs,
    },
    .vec_dot4 = {
        [Q35_TYPE_Q4_0] = vec_dot4_q4_0,
        [Q35_TYPE_Q8_0] = vec_dot4_q8_0,
        [Q35_TYPE_Q4_K] = vec_dot4_q4_K,
        [Q35_TYPE_Q5_K] = vec_dot4_q5_K,
        [Q35_TYPE_Q6_K] = vec_dot4_q6_K,
        [Q35_TYPE_IQ4_XS] = vec_dot4_iq4_xs,
    },
    .gemm = {
        [Q35_TYPE_Q8_0] = q35_gemm_q8_0_avx512vnni,
        [Q35_TYPE_Q4_K] = q35_gemm_q4_K_avx512vnni,
        [Q35_TYPE_Q5_K] = q35_gemm_q5_K_avx512vnni,
        [Q35_TYPE_Q6_K] = q35_gemm_q6_K_avx512vnni,
        [Q35_TYPE_IQ4_XS] = q35_gemm_iq4_xs_avx512vnni,
    },
    .gemm_packed = {[Q35_TYPE_Q4_K] = q35_gemm_packed_q4_K_avx512vnni, [Q35_TYPE_Q5_K] = q35_gemm_packed_q5_K_avx512vnni,
                    [Q35_TYPE_Q6_K] = q35_gemm_packed_q6_K_avx512vnni,
                    [Q35_TYPE_Q8_0] = q35_gemm_packed_q8_0_avx512vnni,
                    [Q35_TYPE_IQ4_XS] = q35_gemm_packed_iq4_xs_avx512vnni},
    .gemm_packed2 = {[Q35_TYPE_Q8_0] = q35_gemm_packed2_q8_0_avx512vnni},
    .prepare_packed = {[Q35_TYPE_Q8_0] = q35_prepare_packed_q8_0_plus128_avx2},
};
#endif /* Q35_AVX512_VNNI */

Q35_AVX512_END
#endif /* Q35_HAVE_X86 */

/* F32, F16 and BF16 dots on AVX2 + FMA + F16C: one pair, one weight row with
 * 4 activation rows, and the BF16 panel (6 activation rows at a time). */
#include "kernels.h"

#if Q35_HAVE_X86
#include <string.h>

#include "arch/x86/avx2.h" /* opens the target region */

/* F32 / F16 / BF16 dots keep two accumulator chains per row, 16 elements a
 * step (chain 0 takes elements 0-7, chain 1 elements 8-15; BF16: the even and
 * odd elements), so the 4-row kernels below hold 8 accumulators in registers
 * and still add in exactly this order. */
static inline __m256 load_f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

#define DEFINE_VEC_DOT_FLOAT(name, T, LOAD8, TAIL)                                                    \
    float name(const void *w, const void *a, int64_t n) {                                             \
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
DEFINE_VEC_DOT_FLOAT(q35_vec_dot_f32_avx2, float, LOAD_F32X8, TAIL_F32)
DEFINE_VEC_DOT_FLOAT(q35_vec_dot_f16_avx2, uint16_t, load_f16x8, TAIL_F16)

static inline float bf16_to_f32(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* BF16: bf16 << 16 is the float. In a 32-bit lane holding two bf16, the high
 * one is the float after masking off the low half, the low one after a shift
 * by 16: even and odd elements pair the same way in both operands. */
float q35_vec_dot_bf16_avx2(const void *w, const void *a, int64_t n) {
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

/* ------------------------------------------------------------------------- */
/* 4 activation rows (see arch/x86/avx2.h) and the BF16 panel.               */

/* F32 and F16: per 16 elements the two chains of the single-row kernel, for 4 rows */
#define DEFINE_VEC_DOT4_FLOAT(name, T, LOAD8, TAIL)                                                   \
    void name(const void *w, const void *a, int64_t as, int64_t n, float *out) {                     \
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
DEFINE_VEC_DOT4_FLOAT(q35_vec_dot4_f32_avx2, float, LOAD_F32X8, TAIL_F32)
DEFINE_VEC_DOT4_FLOAT(q35_vec_dot4_f16_avx2, uint16_t, load_f16x8, TAIL_F16)

/* BF16 as q35_vec_dot_bf16_avx2 for RN activation rows (out[r * ldo]): per 16 elements, chain 0
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

void q35_vec_dot4_bf16_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    ROWS4(uint16_t, y, a, as);
    bf16_rows(w, y, 4, n, out, 1);
}

/* A panel of BF16 rows: one weight row with 6 activation rows at a time (12 accumulator
 * chains: the FMA latency no longer bounds it, as with 8), the weights widened once per
 * 6 rows; the rest 4 and 1 at a time. Same chains, same order: every value equals
 * vec_dot bit for bit. */
void q35_gemm_bf16_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
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
    q35_panel_by_dots(q35_vec_dot_bf16_avx2, q35_vec_dot4_bf16_avx2, w, ws, nr, (const uint8_t *)a + t * as, as,
                      nt - t, n, yo + t * ldy, ldy);
}

Q35_AVX2_END
#endif /* Q35_HAVE_X86 */

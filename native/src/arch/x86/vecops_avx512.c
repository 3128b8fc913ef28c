/* Elementwise and row float kernels, AVX512F. Tails are masked (no scalar
 * loop), so every element goes through the same vector code. exp is the
 * polynomial of vecops_avx2.c (reduction by ln 2, degree 6), with the power of
 * two applied by vscalefps. Compiled natively and, for the self-test, on SIMDe
 * (arch/x86/avx512.h). */
#include "kernels.h"
#include "arch/vecops.h"

#if Q35_HAVE_X86
#include <math.h>

#include "arch/x86/avx512.h" /* opens the target region */

static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    /* x = n ln2 + r, |r| <= ln2/2 */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n); /* p 2^n */
}

/* 1 / (1 + exp(-x)) */
static inline __m512 sigmoid512(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

static inline __m512 silu512(__m512 v) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

void q35_silu_avx512(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        _mm512_mask_storeu_ps(x + i, m, silu512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void q35_swiglu_avx512(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
        const __m512 s = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

void q35_axpy_avx512(float *y, float a, const float *x, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

void q35_fmadd_avx512(float *acc, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        _mm512_mask_storeu_ps(acc + i, m, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i),
                                                           _mm512_maskz_loadu_ps(m, acc + i)));
    }
}

/* 64 channels (four vectors, the last masked) at a time down a block of tokens; one accumulator
 * (a register, not an array) per vector */
void q35_conv_silu_avx512(float *x, int64_t ldx, int T, const float *s, int64_t lds, const float *w, int64_t ldw,
                          int K, int64_t n) {
    for (int t1 = T; t1 > 0; t1 -= Q35_CONV_TOK_BLOCK)
        for (int64_t c0 = 0; c0 < n; c0 += 64)
            for (int t = t1 - 1; t >= 0 && t >= t1 - Q35_CONV_TOK_BLOCK; t--)
                for (int64_t c = c0; c < c0 + 64 && c < n; c += 16) {
                    const __mmask16 m = q35_mask16(n - c);
                    __m512 acc = _mm512_setzero_ps();
                    for (int i = 0; i < K; i++)
                        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + (int64_t)i * ldw + c),
                                              _mm512_maskz_loadu_ps(m, Q35_CONV_ROW(t + i) + c), acc);
                    _mm512_mask_storeu_ps(x + (int64_t)t * ldx + c, m, silu512(acc));
                }
}

void q35_scale_avx512(float *x, float a, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* sum of x^2 in double lanes, as the scalar reference sums in double */
static inline double sumsq_pd(const float *x, int64_t n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(q35_mask16(n - i), x + i);
        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        a0 = _mm512_fmadd_pd(lo, lo, a0);
        a1 = _mm512_fmadd_pd(hi, hi, a1);
    }
    return q35_hsum512d(_mm512_add_pd(a0, a1));
}

void q35_rmsnorm_avx512(const float *x, const float *w, float *y, int64_t n, float eps) {
    const __m512 vs = _mm512_set1_ps(1.0f / sqrtf((float)(sumsq_pd(x, n) / n) + eps));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i)));
    }
}

void q35_l2norm_avx512(float *x, int64_t n, float eps) {
    q35_scale_avx512(x, 1.0f / sqrtf((float)sumsq_pd(x, n) + eps), n);
}

/* NeoX RoPE: pairs (i, i + n_rot/2), cos and sin of one position in cs */
void q35_rope_avx512(float *x, const float *cs, int n_rot) {
    const int half = n_rot / 2;
    for (int i = 0; i < half; i += 16) {
        const __mmask16 m = q35_mask16(half - i);
        const __m512 c = _mm512_maskz_loadu_ps(m, cs + i), sn = _mm512_maskz_loadu_ps(m, cs + half + i);
        const __m512 a = _mm512_maskz_loadu_ps(m, x + i), b = _mm512_maskz_loadu_ps(m, x + half + i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, sn)));
        _mm512_mask_storeu_ps(x + half + i, m, _mm512_fmadd_ps(a, sn, _mm512_mul_ps(b, c)));
    }
}

void q35_softmax_avx512(float *x, int64_t n) {
    __m512 vmx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) { /* masked-off lanes keep -inf */
        const __mmask16 m = q35_mask16(n - i);
        vmx = _mm512_mask_max_ps(vmx, m, vmx, _mm512_maskz_loadu_ps(m, x + i));
    }
    q35_scale_avx512(x, (float)(1.0 / q35_exp_sum_avx512(x, n, q35_hmax512(vmx))), n);
}

void q35_sigmoid_mul_avx512(float *x, const float *g, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(v, sigmoid512(_mm512_maskz_loadu_ps(m, g + i))));
    }
}

/* tiles of up to 4 rows by 4 registers of columns (the last masked), each running through the m
 * rows of X: per element the fmas of m axpy calls, in order */
#define AXPY_TILE_ROWS 4
#define AXPY_TILE_VECS 4
static inline __attribute__((always_inline)) void axpy_tile512(float *Y, int64_t ldy, const int nr, const float *A,
                                                               int64_t lda, const float *X, int64_t ldx, int64_t m,
                                                               int64_t i, int64_t n) {
    __mmask16 mk[AXPY_TILE_VECS];
    __m512 acc[AXPY_TILE_ROWS][AXPY_TILE_VECS];
#pragma GCC unroll 4
    for (int c = 0; c < AXPY_TILE_VECS; c++) mk[c] = i + 16 * c < n ? q35_mask16(n - i - 16 * c) : 0;
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < AXPY_TILE_VECS; c++) acc[r][c] = _mm512_maskz_loadu_ps(mk[c], Y + r * ldy + i + 16 * c);
    for (int64_t j = 0; j < m; j++) {
        __m512 x[AXPY_TILE_VECS];
#pragma GCC unroll 4
        for (int c = 0; c < AXPY_TILE_VECS; c++) x[c] = _mm512_maskz_loadu_ps(mk[c], X + j * ldx + i + 16 * c);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const __m512 a = _mm512_set1_ps(A[r * lda + j]);
#pragma GCC unroll 4
            for (int c = 0; c < AXPY_TILE_VECS; c++) acc[r][c] = _mm512_fmadd_ps(a, x[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < AXPY_TILE_VECS; c++) _mm512_mask_storeu_ps(Y + r * ldy + i + 16 * c, mk[c], acc[r][c]);
}

void q35_axpy_panel_avx512(float *Y, int64_t ldy, int ny, const float *A, int64_t lda, const float *X, int64_t ldx,
                           int64_t m, int64_t n) {
    for (int r0 = 0; r0 < ny; r0 += AXPY_TILE_ROWS)
        for (int64_t i = 0; i < n; i += 16 * AXPY_TILE_VECS) {
            float *y = Y + r0 * ldy;
            const float *a = A + r0 * lda;
            switch (ny - r0 < AXPY_TILE_ROWS ? ny - r0 : AXPY_TILE_ROWS) {
            case 1: axpy_tile512(y, ldy, 1, a, lda, X, ldx, m, i, n); break;
            case 2: axpy_tile512(y, ldy, 2, a, lda, X, ldx, m, i, n); break;
            case 3: axpy_tile512(y, ldy, 3, a, lda, X, ldx, m, i, n); break;
            default: axpy_tile512(y, ldy, 4, a, lda, X, ldx, m, i, n); break;
            }
        }
}

double q35_exp_sum_avx512(float *x, int64_t n, float m) {
    const __m512 vm = _mm512_set1_ps(m);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = q35_mask16(n - i);
        /* masked-off lanes: exp of 0 - m is stored nowhere and zeroed before the sum */
        const __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm)));
        _mm512_mask_storeu_ps(x + i, k, e);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return q35_hsum512d(_mm512_add_pd(s0, s1));
}

/* tiles of up to 4 keys by 4 query rows, one accumulator per dot over steps of 16 (the last
 * masked), each summed by q35_hsum512 */
#define DOT_TILE 4
static inline __attribute__((always_inline)) void dot_tile512(const float *K, int64_t ldk, const int nk,
                                                              const float *Q, int64_t ldq, const int nq, int64_t n,
                                                              float *out, int64_t ldo) {
    __m512 acc[DOT_TILE][DOT_TILE];
#pragma GCC unroll 4
    for (int q = 0; q < nq; q++)
#pragma GCC unroll 4
        for (int k = 0; k < nk; k++) acc[q][k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = q35_mask16(n - i);
        __m512 kv[DOT_TILE];
#pragma GCC unroll 4
        for (int k = 0; k < nk; k++) kv[k] = _mm512_maskz_loadu_ps(m, K + k * ldk + i);
#pragma GCC unroll 4
        for (int q = 0; q < nq; q++) {
            const __m512 qv = _mm512_maskz_loadu_ps(m, Q + q * ldq + i);
#pragma GCC unroll 4
            for (int k = 0; k < nk; k++) acc[q][k] = _mm512_fmadd_ps(kv[k], qv, acc[q][k]);
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < nq; q++)
#pragma GCC unroll 4
        for (int k = 0; k < nk; k++) out[q * ldo + k] = q35_hsum512(acc[q][k]);
}

#define DOT_TILE_KEYS(nq)                                                                                 \
    switch (nk - k0 < DOT_TILE ? nk - k0 : DOT_TILE) {                                                 \
    case 1: dot_tile512(K + k0 * ldk, ldk, 1, Q + q0 * ldq, ldq, nq, n, out + q0 * ldo + k0, ldo); break; \
    case 2: dot_tile512(K + k0 * ldk, ldk, 2, Q + q0 * ldq, ldq, nq, n, out + q0 * ldo + k0, ldo); break; \
    case 3: dot_tile512(K + k0 * ldk, ldk, 3, Q + q0 * ldq, ldq, nq, n, out + q0 * ldo + k0, ldo); break; \
    default: dot_tile512(K + k0 * ldk, ldk, 4, Q + q0 * ldq, ldq, nq, n, out + q0 * ldo + k0, ldo); break; \
    }

void q35_dot_panel_f32_avx512(const float *K, int64_t ldk, int nk, const float *Q, int64_t ldq, int nq, int64_t n,
                              float *out, int64_t ldo) {
    for (int q0 = 0; q0 < nq; q0 += DOT_TILE)
        for (int k0 = 0; k0 < nk; k0 += DOT_TILE) {
            switch (nq - q0 < DOT_TILE ? nq - q0 : DOT_TILE) {
            case 1: DOT_TILE_KEYS(1) break;
            case 2: DOT_TILE_KEYS(2) break;
            case 3: DOT_TILE_KEYS(3) break;
            default: DOT_TILE_KEYS(4) break;
            }
        }
}

Q35_AVX512_END
#endif /* Q35_HAVE_X86 */

/* Elementwise float kernels, AVX2 + FMA. exp is a Cephes-style polynomial
 * (range reduction by ln 2, degree-6 polynomial, exponent by integer add),
 * within 2 ulp of expf over the range used here. */
#include "kernels.h"
#include "arch/vecops.h"

#if Q35_HAVE_X86
#include <math.h>

#include "arch/x86/avx2.h" /* opens the target region */

static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    /* x = n ln2 + r, |r| <= ln2/2 */
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* times 2^n */
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

static inline __m256 silu256(__m256 x) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

void q35_silu_avx2(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, silu256(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

void q35_swiglu_avx2(float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(g + i, _mm256_mul_ps(silu256(_mm256_loadu_ps(g + i)), _mm256_loadu_ps(u + i)));
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void q35_axpy_avx2(float *y, float a, const float *x, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

void q35_fmadd_avx2(float *acc, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), _mm256_loadu_ps(acc + i)));
    for (; i < n; i++) acc[i] += a[i] * b[i];
}

/* 64 channels at a time down a block of tokens, one accumulator (a register, not an array) per
 * vector; the channels past the last whole vector as fmadd_f32 and silu_f32 take them */
void q35_conv_silu_avx2(float *x, int64_t ldx, int T, const float *s, int64_t lds, const float *w, int64_t ldw,
                        int K, int64_t n) {
    const int64_t nvec = n - n % 8; /* channels in whole vectors */
    for (int t1 = T; t1 > 0; t1 -= Q35_CONV_TOK_BLOCK)
        for (int64_t c0 = 0; c0 < nvec; c0 += 64)
            for (int t = t1 - 1; t >= 0 && t >= t1 - Q35_CONV_TOK_BLOCK; t--)
                for (int64_t c = c0; c < c0 + 64 && c < nvec; c += 8) {
                    __m256 acc = _mm256_setzero_ps();
                    for (int i = 0; i < K; i++)
                        acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + (int64_t)i * ldw + c), _mm256_loadu_ps(Q35_CONV_ROW(t + i) + c), acc);
                    _mm256_storeu_ps(x + (int64_t)t * ldx + c, silu256(acc));
                }
    if (nvec < n)
        q35_conv_silu_by_rows(q35_fmadd_avx2, q35_silu_avx2, x + nvec, ldx, T, s + nvec, lds, w + nvec, ldw, K, n - nvec);
}

void q35_scale_avx2(float *x, float a, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] *= a;
}

/* sum of x^2 in double lanes, as the scalar reference sums in double */
static inline double sumsq_pd(const float *x, int64_t n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        a0 = _mm256_fmadd_pd(lo, lo, a0);
        a1 = _mm256_fmadd_pd(hi, hi, a1);
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(a0, a1));
    double ss = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++) ss += (double)x[i] * x[i];
    return ss;
}

void q35_rmsnorm_avx2(const float *x, const float *w, float *y, int64_t n, float eps) {
    const float scale = 1.0f / sqrtf((float)(sumsq_pd(x, n) / n) + eps);
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

void q35_l2norm_avx2(float *x, int64_t n, float eps) {
    q35_scale_avx2(x, 1.0f / sqrtf((float)sumsq_pd(x, n) + eps), n);
}

void q35_rope_avx2(float *x, const float *cs, int n_rot) {
    const int half = n_rot / 2;
    int i = 0;
    for (; i + 8 <= half; i += 8) {
        const __m256 c = _mm256_loadu_ps(cs + i), sn = _mm256_loadu_ps(cs + half + i);
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + half + i);
        _mm256_storeu_ps(x + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, sn)));
        _mm256_storeu_ps(x + half + i, _mm256_fmadd_ps(a, sn, _mm256_mul_ps(b, c)));
    }
    for (; i < half; i++) {
        const float c = cs[i], sn = cs[half + i], a = x[i], b = x[i + half];
        x[i] = a * c - b * sn;
        x[i + half] = a * sn + b * c;
    }
}

void q35_softmax_avx2(float *x, int64_t n) {
    __m256 vmx = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(x + i));
    float t[8];
    _mm256_storeu_ps(t, vmx);
    float mx = t[0];
    for (int j = 1; j < 8; j++) mx = t[j] > mx ? t[j] : mx;
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    q35_scale_avx2(x, (float)(1.0 / q35_exp_sum_avx2(x, n, mx)), n);
}

void q35_sigmoid_mul_avx2(float *x, const float *g, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_loadu_ps(g + i)));
        _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) x[i] *= 1.0f / (1.0f + expf(-g[i]));
}

/* tiles of up to 4 rows by 3 registers of columns, each running through the m rows of X: per
 * element the fmas of m axpy calls, in order; the columns past the last full register as axpy's
 * tail */
#define AXPY_TILE_ROWS 4
#define AXPY_TILE_VECS 3
static inline __attribute__((always_inline)) void axpy_tile256(float *Y, int64_t ldy, const int nr, const int nv,
                                                               const float *A, int64_t lda, const float *X,
                                                               int64_t ldx, int64_t m, int64_t i) {
    __m256 acc[AXPY_TILE_ROWS][AXPY_TILE_VECS] = {{_mm256_setzero_ps()}}, x[AXPY_TILE_VECS] = {_mm256_setzero_ps()};
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 3
        for (int c = 0; c < nv; c++) acc[r][c] = _mm256_loadu_ps(Y + r * ldy + i + 8 * c);
    for (int64_t j = 0; j < m; j++) {
#pragma GCC unroll 3
        for (int c = 0; c < nv; c++) x[c] = _mm256_loadu_ps(X + j * ldx + i + 8 * c);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const __m256 a = _mm256_set1_ps(A[r * lda + j]);
#pragma GCC unroll 3
            for (int c = 0; c < nv; c++) acc[r][c] = _mm256_fmadd_ps(a, x[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 3
        for (int c = 0; c < nv; c++) _mm256_storeu_ps(Y + r * ldy + i + 8 * c, acc[r][c]);
}

#define AXPY_TILE256_ROWS(nv)                                                                            \
    switch (ny - r0 < AXPY_TILE_ROWS ? ny - r0 : AXPY_TILE_ROWS) {                                    \
    case 1: axpy_tile256(y, ldy, 1, nv, a, lda, X, ldx, m, i); break;                                 \
    case 2: axpy_tile256(y, ldy, 2, nv, a, lda, X, ldx, m, i); break;                                 \
    case 3: axpy_tile256(y, ldy, 3, nv, a, lda, X, ldx, m, i); break;                                 \
    default: axpy_tile256(y, ldy, 4, nv, a, lda, X, ldx, m, i); break;                                \
    }

void q35_axpy_panel_avx2(float *Y, int64_t ldy, int ny, const float *A, int64_t lda, const float *X, int64_t ldx,
                         int64_t m, int64_t n) {
    const int64_t full = n / 8 * 8;
    for (int r0 = 0; r0 < ny; r0 += AXPY_TILE_ROWS) {
        float *y = Y + r0 * ldy;
        const float *a = A + r0 * lda;
        for (int64_t i = 0; i < full; i += 8 * AXPY_TILE_VECS) {
            switch ((full - i) / 8 < AXPY_TILE_VECS ? (int)((full - i) / 8) : AXPY_TILE_VECS) {
            case 1: AXPY_TILE256_ROWS(1) break;
            case 2: AXPY_TILE256_ROWS(2) break;
            default: AXPY_TILE256_ROWS(3) break;
            }
        }
    }
    /* the tail columns (t outermost: no empty loop over r and j when there are none; each element
     * still adds its j in order) */
    for (int64_t t = full; t < n; t++)
        for (int r = 0; r < ny; r++)
            for (int64_t j = 0; j < m; j++) Y[r * ldy + t] += A[r * lda + j] * X[j * ldx + t];
}

double q35_exp_sum_avx2(float *x, int64_t n, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double d[4];
    _mm256_storeu_pd(d, _mm256_add_pd(s0, s1));
    double sum = (d[0] + d[1]) + (d[2] + d[3]);
    for (; i < n; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    return sum;
}

/* tiles of up to 2 keys by 4 query rows, one accumulator per dot over steps of 8, each summed by
 * hsum_ps256, then the tail (n % 8) added in order */
#define DOT_TILE_K 2
#define DOT_TILE_Q 4
static inline __attribute__((always_inline)) void dot_tile256(const float *K, int64_t ldk, const int nk,
                                                              const float *Q, int64_t ldq, const int nq, int64_t n,
                                                              float *out, int64_t ldo) {
    __m256 acc[DOT_TILE_Q][DOT_TILE_K] = {{_mm256_setzero_ps()}}, kv[DOT_TILE_K] = {_mm256_setzero_ps()};
    const int64_t full = n / 8 * 8;
    for (int64_t i = 0; i < full; i += 8) {
#pragma GCC unroll 2
        for (int k = 0; k < nk; k++) kv[k] = _mm256_loadu_ps(K + k * ldk + i);
#pragma GCC unroll 4
        for (int q = 0; q < nq; q++) {
            const __m256 qv = _mm256_loadu_ps(Q + q * ldq + i);
#pragma GCC unroll 2
            for (int k = 0; k < nk; k++) acc[q][k] = _mm256_fmadd_ps(kv[k], qv, acc[q][k]);
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < nq; q++)
#pragma GCC unroll 2
        for (int k = 0; k < nk; k++) {
            float s = hsum_ps256(acc[q][k]);
            for (int64_t i = full; i < n; i++) s += K[k * ldk + i] * Q[q * ldq + i];
            out[q * ldo + k] = s;
        }
}

#define DOT_TILE256_KEYS(nq)                                                                              \
    if (nk - k0 >= DOT_TILE_K) dot_tile256(K + k0 * ldk, ldk, 2, Q + q0 * ldq, ldq, nq, n, out + q0 * ldo + k0, ldo); \
    else dot_tile256(K + k0 * ldk, ldk, 1, Q + q0 * ldq, ldq, nq, n, out + q0 * ldo + k0, ldo);

void q35_dot_panel_f32_avx2(const float *K, int64_t ldk, int nk, const float *Q, int64_t ldq, int nq, int64_t n,
                            float *out, int64_t ldo) {
    for (int q0 = 0; q0 < nq; q0 += DOT_TILE_Q)
        for (int k0 = 0; k0 < nk; k0 += DOT_TILE_K) {
            switch (nq - q0 < DOT_TILE_Q ? nq - q0 : DOT_TILE_Q) {
            case 1: DOT_TILE256_KEYS(1) break;
            case 2: DOT_TILE256_KEYS(2) break;
            case 3: DOT_TILE256_KEYS(3) break;
            default: DOT_TILE256_KEYS(4) break;
            }
        }
}

Q35_AVX2_END
#endif /* Q35_HAVE_X86 */

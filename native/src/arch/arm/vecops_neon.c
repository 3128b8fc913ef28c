/* Elementwise / row float kernels, AArch64 Advanced SIMD (baseline armv8-a:
 * every AArch64 CPU runs them). exp is a polynomial: range reduction by ln 2,
 * a degree-6 polynomial on |r| <= ln2/2, and 2^n added to the exponent bits;
 * within 2 ulp of expf over the clamped range. Sums of squares and softmax
 * sums run in double lanes, as the scalar reference sums in double. */
#include "kernels.h"
#include "arch/vecops.h"

#if Q35_HAVE_NEON
#include <arm_neon.h>
#include <math.h>

/* e^x, x clamped to [-87.3, 88.3] (beyond that expf under- or overflows) */
static inline float32x4_t exp4(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.3f));
    /* x = n ln2 + r: n rounded to nearest, ln2 split in a short high part
     * (exact product with n) and a correction */
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    /* e^r = 1 + r + r^2 (1/2 + r/6 + ...), minimax coefficients */
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    /* times 2^n: add n to the biased exponent field (bits 23..30) */
    const int32x4_t e = vshlq_n_s32(vcvtq_s32_f32(n), 23);
    return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), e));
}

/* 1 / (1 + e^-x) */
static inline float32x4_t sigmoid4(float32x4_t x) {
    return vdivq_f32(vdupq_n_f32(1.0f), vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(x))));
}

static inline float32x4_t silu4(float32x4_t x) {
    return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(x))));
}

void q35_silu_neon(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, silu4(vld1q_f32(x + i)));
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

void q35_swiglu_neon(float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(g + i, vmulq_f32(silu4(vld1q_f32(g + i)), vld1q_f32(u + i)));
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void q35_axpy_neon(float *y, float a, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

void q35_fmadd_neon(float *acc, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(acc + i, vfmaq_f32(vld1q_f32(acc + i), vld1q_f32(a + i), vld1q_f32(b + i)));
    for (; i < n; i++) acc[i] += a[i] * b[i];
}

/* 64 channels at a time down a block of tokens, one accumulator (a register, not an array) per
 * vector; the channels past the last whole vector as fmadd_f32 and silu_f32 take them */
void q35_conv_silu_neon(float *x, int64_t ldx, int T, const float *s, int64_t lds, const float *w, int64_t ldw,
                        int K, int64_t n) {
    const int64_t nvec = n - n % 4; /* channels in whole vectors */
    for (int t1 = T; t1 > 0; t1 -= Q35_CONV_TOK_BLOCK)
        for (int64_t c0 = 0; c0 < nvec; c0 += 64)
            for (int t = t1 - 1; t >= 0 && t >= t1 - Q35_CONV_TOK_BLOCK; t--)
                for (int64_t c = c0; c < c0 + 64 && c < nvec; c += 4) {
                    float32x4_t acc = vdupq_n_f32(0.0f);
                    for (int i = 0; i < K; i++)
                        acc = vfmaq_f32(acc, vld1q_f32(w + (int64_t)i * ldw + c), vld1q_f32(Q35_CONV_ROW(t + i) + c));
                    vst1q_f32(x + (int64_t)t * ldx + c, silu4(acc));
                }
    if (nvec < n)
        q35_conv_silu_by_rows(q35_fmadd_neon, q35_silu_neon, x + nvec, ldx, T, s + nvec, lds, w + nvec, ldw, K, n - nvec);
}

void q35_scale_neon(float *x, float a, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), a));
    for (; i < n; i++) x[i] *= a;
}

/* sum of x^2, each float widened to double (products of floats are exact there) */
static double sumsq_f64(const float *x, int64_t n) {
    float64x2_t a0 = vdupq_n_f64(0.0), a1 = vdupq_n_f64(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(x + i);
        const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        a0 = vfmaq_f64(a0, lo, lo);
        a1 = vfmaq_f64(a1, hi, hi);
    }
    double ss = vaddvq_f64(vaddq_f64(a0, a1));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    return ss;
}

void q35_rmsnorm_neon(const float *x, const float *w, float *y, int64_t n, float eps) {
    const float scale = 1.0f / sqrtf((float)(sumsq_f64(x, n) / n) + eps);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
    for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

void q35_l2norm_neon(float *x, int64_t n, float eps) {
    q35_scale_neon(x, 1.0f / sqrtf((float)sumsq_f64(x, n) + eps), n);
}

/* NeoX pairs (i, i + half): a' = a c - b s, b' = a s + b c */
void q35_rope_neon(float *x, const float *cs, int n_rot) {
    const int half = n_rot / 2;
    int i = 0;
    for (; i + 4 <= half; i += 4) {
        const float32x4_t c = vld1q_f32(cs + i), s = vld1q_f32(cs + half + i);
        const float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + half + i);
        vst1q_f32(x + i, vfmsq_f32(vmulq_f32(a, c), b, s));
        vst1q_f32(x + half + i, vfmaq_f32(vmulq_f32(b, c), a, s));
    }
    for (; i < half; i++) {
        const float c = cs[i], s = cs[half + i], a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = a * s + b * c;
    }
}

void q35_softmax_neon(float *x, int64_t n) {
    float32x4_t vmx = vdupq_n_f32(-INFINITY);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vmx = vmaxq_f32(vmx, vld1q_f32(x + i));
    float mx = vmaxvq_f32(vmx);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    q35_scale_neon(x, (float)(1.0 / q35_exp_sum_neon(x, n, mx)), n);
}

void q35_sigmoid_mul_neon(float *x, const float *g, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), sigmoid4(vld1q_f32(g + i))));
    for (; i < n; i++) x[i] *= 1.0f / (1.0f + expf(-g[i]));
}

/* tiles of up to 4 rows by 4 registers of columns, each running through the m rows of X: per
 * element the fmas of m axpy calls, in order; the columns past the last full register as axpy's
 * tail */
#define AXPY_TILE_ROWS 4
#define AXPY_TILE_VECS 4
static inline __attribute__((always_inline)) void axpy_tile_neon(float *Y, int64_t ldy, const int nr, const int nv,
                                                                 const float *A, int64_t lda, const float *X,
                                                                 int64_t ldx, int64_t m, int64_t i) {
    float32x4_t acc[AXPY_TILE_ROWS][AXPY_TILE_VECS] = {{vdupq_n_f32(0)}}, x[AXPY_TILE_VECS] = {vdupq_n_f32(0)};
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++) acc[r][c] = vld1q_f32(Y + r * ldy + i + 4 * c);
    for (int64_t j = 0; j < m; j++) {
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++) x[c] = vld1q_f32(X + j * ldx + i + 4 * c);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const float a = A[r * lda + j];
#pragma GCC unroll 4
            for (int c = 0; c < nv; c++) acc[r][c] = vfmaq_n_f32(acc[r][c], x[c], a);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++) vst1q_f32(Y + r * ldy + i + 4 * c, acc[r][c]);
}

void q35_axpy_panel_neon(float *Y, int64_t ldy, int ny, const float *A, int64_t lda, const float *X, int64_t ldx,
                         int64_t m, int64_t n) {
    const int64_t full = n / 4 * 4;
    for (int r0 = 0; r0 < ny; r0 += AXPY_TILE_ROWS) {
        const int nr = ny - r0 < AXPY_TILE_ROWS ? ny - r0 : AXPY_TILE_ROWS;
        for (int64_t i = 0; i < full; i += 4 * AXPY_TILE_VECS) {
            const int nv = (full - i) / 4 < AXPY_TILE_VECS ? (int)((full - i) / 4) : AXPY_TILE_VECS;
            float *y = Y + r0 * ldy;
            const float *a = A + r0 * lda;
            if (nr == AXPY_TILE_ROWS && nv == AXPY_TILE_VECS) axpy_tile_neon(y, ldy, AXPY_TILE_ROWS, AXPY_TILE_VECS, a, lda, X, ldx, m, i);
            else axpy_tile_neon(y, ldy, nr, nv, a, lda, X, ldx, m, i);
        }
    }
    /* the tail columns (t outermost: no empty loop over r and j when there are none; each element
     * still adds its j in order) */
    for (int64_t t = full; t < n; t++)
        for (int r = 0; r < ny; r++)
            for (int64_t j = 0; j < m; j++) Y[r * ldy + t] += A[r * lda + j] * X[j * ldx + t];
}

double q35_exp_sum_neon(float *x, int64_t n, float m) {
    const float32x4_t vm = vdupq_n_f32(m);
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), vm));
        vst1q_f32(x + i, e);
        s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(e)));
        s1 = vaddq_f64(s1, vcvt_high_f64_f32(e));
    }
    double sum = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++) { x[i] = expf(x[i] - m); sum += x[i]; }
    return sum;
}

/* tiles of up to 4 keys by 4 query rows, one accumulator per dot over steps of 4, each summed by
 * vaddvq_f32, then the tail (n % 4) added in order */
#define DOT_TILE 4
static inline __attribute__((always_inline)) void dot_tile_neon(const float *K, int64_t ldk, const int nk,
                                                                const float *Q, int64_t ldq, const int nq, int64_t n,
                                                                float *out, int64_t ldo) {
    float32x4_t acc[DOT_TILE][DOT_TILE] = {{vdupq_n_f32(0)}}, kv[DOT_TILE] = {vdupq_n_f32(0)};
    const int64_t full = n / 4 * 4;
    for (int64_t i = 0; i < full; i += 4) {
#pragma GCC unroll 4
        for (int k = 0; k < nk; k++) kv[k] = vld1q_f32(K + k * ldk + i);
#pragma GCC unroll 4
        for (int q = 0; q < nq; q++) {
            const float32x4_t qv = vld1q_f32(Q + q * ldq + i);
#pragma GCC unroll 4
            for (int k = 0; k < nk; k++) acc[q][k] = vfmaq_f32(acc[q][k], kv[k], qv);
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < nq; q++)
#pragma GCC unroll 4
        for (int k = 0; k < nk; k++) {
            float s = vaddvq_f32(acc[q][k]);
            for (int64_t i = full; i < n; i++) s += K[k * ldk + i] * Q[q * ldq + i];
            out[q * ldo + k] = s;
        }
}

void q35_dot_panel_f32_neon(const float *K, int64_t ldk, int nk, const float *Q, int64_t ldq, int nq, int64_t n,
                            float *out, int64_t ldo) {
    for (int q0 = 0; q0 < nq; q0 += DOT_TILE)
        for (int k0 = 0; k0 < nk; k0 += DOT_TILE) {
            const int tq = nq - q0 < DOT_TILE ? nq - q0 : DOT_TILE, tk = nk - k0 < DOT_TILE ? nk - k0 : DOT_TILE;
            const float *Kt = K + k0 * ldk, *Qt = Q + q0 * ldq;
            float *o = out + q0 * ldo + k0;
            if (tq == DOT_TILE && tk == DOT_TILE) dot_tile_neon(Kt, ldk, DOT_TILE, Qt, ldq, DOT_TILE, n, o, ldo);
            else dot_tile_neon(Kt, ldk, tk, Qt, ldq, tq, n, o, ldo);
        }
}
#endif /* Q35_HAVE_NEON */

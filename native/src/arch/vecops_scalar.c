/* Elementwise and row float kernels, scalar reference (the definitions the
 * SIMD variants are checked against). */
#include <math.h>
#include <stdint.h>

#include "vecops.h"

/* x <- x * sigmoid(x) */
void q35_silu_scalar(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

/* g <- silu(g) * u */
void q35_swiglu_scalar(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* y <- y + a x */
void q35_axpy_scalar(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

/* acc <- acc + a * b, elementwise */
void q35_fmadd_scalar(float *acc, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) acc[i] += a[i] * b[i];
}

void q35_conv_silu_scalar(float *x, int64_t ldx, int T, const float *s, int64_t lds, const float *w, int64_t ldw,
                          int K, int64_t n) {
    q35_conv_silu_by_rows(q35_fmadd_scalar, q35_silu_scalar, x, ldx, T, s, lds, w, ldw, K, n);
}

/* x <- a x */
void q35_scale_scalar(float *x, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] *= a;
}

/* y = x * w / sqrt(mean(x^2) + eps); y may alias x (sum of squares in double, as ggml) */
void q35_rmsnorm_scalar(const float *x, const float *w, float *y, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

/* x <- x / sqrt(sum(x^2) + eps)  (docs/qwen35.md §2.4.5) */
void q35_l2norm_scalar(float *x, int64_t n, float eps) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float scale = 1.0f / sqrtf((float)ss + eps);
    for (int64_t i = 0; i < n; i++) x[i] *= scale;
}

/* NeoX RoPE on the first n_rot dims: pair (i, i + n_rot/2) rotated by the angle
 * whose cosine is cs[i] and sine cs[n_rot/2 + i] (one position's table row) */
void q35_rope_scalar(float *x, const float *cs, int n_rot) {
    const int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        const float c = cs[i], sn = cs[half + i], a = x[i], b = x[i + half];
        x[i] = a * c - b * sn;
        x[i + half] = a * sn + b * c;
    }
}

/* x <- exp(x - max x) / sum exp(x - max x) */
void q35_softmax_scalar(float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    const float inv = (float)(1.0 / q35_exp_sum_scalar(x, n, mx));
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

/* x <- x * sigmoid(g) */
void q35_sigmoid_mul_scalar(float *x, const float *g, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] *= 1.0f / (1.0f + expf(-g[i]));
}

void q35_axpy_panel_scalar(float *Y, int64_t ldy, int ny, const float *A, int64_t lda, const float *X, int64_t ldx,
                           int64_t m, int64_t n) {
    for (int r = 0; r < ny; r++)
        for (int64_t j = 0; j < m; j++) q35_axpy_scalar(Y + r * ldy, A[r * lda + j], X + j * ldx, n);
}

double q35_exp_sum_scalar(float *x, int64_t n, float m) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    return sum;
}

void q35_dot_panel_f32_scalar(const float *K, int64_t ldk, int nk, const float *Q, int64_t ldq, int nq, int64_t n,
                              float *out, int64_t ldo) {
    for (int q = 0; q < nq; q++)
        for (int k = 0; k < nk; k++) {
            float s = 0.0f;
            for (int64_t i = 0; i < n; i++) s += K[k * ldk + i] * Q[q * ldq + i];
            out[q * ldo + k] = s;
        }
}

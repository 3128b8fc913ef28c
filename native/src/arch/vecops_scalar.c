/* Elementwise float kernels, scalar reference: silu, SwiGLU, axpy. */
#include <math.h>
#include <stdint.h>

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

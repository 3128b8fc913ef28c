/* Scalar reference kernels: the meaning of every entry of q35_kernels.
 * SIMD variants (kernels_avx2.c, kernels_avx512.c, kernels_neon.c) must
 * agree with these within float rounding. */
#include <math.h>

#include "blocks.h"
#include "fp16.h"
#include "kernels.h"

static float dot_f32_scalar(const float *a, const float *b, int64_t n) {
    /* 8 partial sums, like an 8-lane vector, to keep the rounding pattern
     * comparable with the SIMD variants */
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (int j = 0; j < 8; j++) s += acc[j];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Q8_0 activation quantization: per 32 values d = max|x|/127, q = round(x/d)
 * (round half away from zero), d stored as f16. */
static void quantize_row_q8_0_scalar(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *xb = x + b * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = q35_f2h(d);
        for (int j = 0; j < QK8_0; j++) y[b].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

static float dot_q8_0_q8_0_scalar(const void *w, const void *a, int64_t n) {
    const block_q8_0 *x = w, *y = a;
    float s = 0.0f;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        int32_t acc = 0;
        for (int j = 0; j < QK8_0; j++) acc += (int32_t)x[b].qs[j] * y[b].qs[j];
        s += q35_h2f(x[b].d) * q35_h2f(y[b].d) * (float)acc;
    }
    return s;
}

const q35_kernels q35_kernels_scalar = {
    .name = "scalar",
    .dot_f32 = dot_f32_scalar,
    .quantize_row_q8_0 = quantize_row_q8_0_scalar,
    .dot_q8_0_q8_0 = dot_q8_0_q8_0_scalar,
};

/* NEON kernels (AArch64 Advanced SIMD, baseline on every AArch64 CPU). */
#include "kernels.h"

#if Q35_HAVE_NEON
#include <arm_neon.h>
#include <math.h>

#include "blocks.h"
#include "fp16.h"

static float dot_f32_neon(const float *a, const float *b, int64_t n) {
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void quantize_row_q8_0_neon(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *xb = x + b * QK8_0;
        float32x4_t v[8], m = vdupq_n_f32(0);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(xb + 4 * k);
            m = vmaxq_f32(m, vabsq_f32(v[k]));
        }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = q35_f2h(d);
        for (int k = 0; k < 8; k++) {
            /* vcvtaq: round to nearest, ties away from zero (= roundf) */
            int32x4_t q = vcvtaq_s32_f32(vmulq_n_f32(v[k], id));
            int16x4_t q16 = vqmovn_s32(q);
            int8x8_t q8 = vqmovn_s16(vcombine_s16(q16, q16));
            vst1_lane_u32((uint32_t *)(y[b].qs + 4 * k), vreinterpret_u32_s8(q8), 0);
        }
    }
}

static float dot_q8_0_q8_0_neon(const void *w, const void *a, int64_t n) {
    const block_q8_0 *x = w, *y = a;
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t b = 0; b < n / QK8_0; b++) {
        int32x4_t s = vdupq_n_s32(0);
        for (int k = 0; k < 2; k++) {
            const int8x16_t qx = vld1q_s8(x[b].qs + 16 * k), qy = vld1q_s8(y[b].qs + 16 * k);
            const int16x8_t lo = vmull_s8(vget_low_s8(qx), vget_low_s8(qy));
            const int16x8_t hi = vmull_s8(vget_high_s8(qx), vget_high_s8(qy));
            s = vaddq_s32(s, vaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi)));
        }
        acc = vmlaq_n_f32(acc, vcvtq_f32_s32(s), q35_h2f(x[b].d) * q35_h2f(y[b].d));
    }
    return vaddvq_f32(acc);
}

const q35_kernels q35_kernels_neon = {
    .name = "neon",
    .dot_f32 = dot_f32_neon,
    .from_float = {[Q35_TYPE_Q8_0] = quantize_row_q8_0_neon},
    .vec_dot = {[Q35_TYPE_Q8_0] = dot_q8_0_q8_0_neon},
};
#endif /* Q35_HAVE_NEON */

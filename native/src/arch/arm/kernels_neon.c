/* NEON kernels (AArch64 Advanced SIMD, baseline armv8-a).
 *
 * Two tables: q35_kernels_neon (int8 products by widening multiplies) and
 * q35_kernels_neon_dotprod (the same, with sdot for the int8 products). They
 * share everything but the integer dot products (kernels_neon_int8.h, compiled
 * once per flavour); q35_neon_table() picks one at run time from the CPU's
 * HWCAP_ASIMDDP bit, so the build itself stays armv8-a. */
#include "kernels.h"
#include "arch/vecops.h"

#if Q35_HAVE_NEON
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "fp16.h"

#define Q35_NEON_INLINE __attribute__((always_inline))
/* loops over the (at most 4) activation rows and over small register arrays
 * are unrolled so that those arrays stay in registers */
#define UNROLL _Pragma("GCC unroll 8")
#define FOR_ROWS(r, R) UNROLL for (int r = 0; r < (R); r++)

/* IEEE half -> float: exact, done by the FPU */
static inline float h2f(uint16_t h) {
    __fp16 f;
    memcpy(&f, &h, sizeof f);
    return (float)f;
}

/* activation row r of a 4-row call (rows at a + r * as bytes) */
static inline const void *row_ptr(const void *a, int64_t as, int r) { return (const uint8_t *)a + r * as; }

/* 16 bytes -> their 16 low nibbles and their 16 high nibbles (values 0..15) */
static inline void nibbles16(const uint8_t *p, uint8x16_t *lo, uint8x16_t *hi) {
    const uint8x16_t v = vld1q_u8(p);
    *lo = vandq_u8(v, vdupq_n_u8(0xF));
    *hi = vshrq_n_u8(v, 4);
}

/* The 12 bytes of Q4_K / Q5_K scales -> 8 six-bit scales and 8 six-bit mins
 * (docs/qwen35.md §4.1): bytes 0-3 hold sc0..3 in bits 0-5, bytes 4-7 m0..3; bytes 8-11
 * hold the low 4 bits of sc4..7 (low nibble) and m4..7 (high nibble), whose
 * top 2 bits are bits 6-7 of bytes 0-3 (sc) and 4-7 (m). */
static inline void k_scales_mins(const uint8_t *q, uint8_t *sc, uint8_t *m) {
    uint32_t u[3], s[2], mm[2];
    memcpy(u, q, 12);
    s[0] = u[0] & 0x3f3f3f3fu;
    mm[0] = u[1] & 0x3f3f3f3fu;
    s[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    mm[1] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    memcpy(sc, s, 8);
    memcpy(m, mm, 8);
}

/* sum_j m_j (bsum_2j + bsum_2j+1), j = 0..7: the mins term of Q4_K / Q5_K */
static inline int32_t k_mins_dot(int16x8_t m16, const int16_t *bsums) {
    const int16x8_t pairs = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
    int32x4_t t = vmull_s16(vget_low_s16(pairs), vget_low_s16(m16));
    t = vmlal_high_s16(t, pairs, m16);
    return vaddvq_s32(t);
}

/* ------------------------------------------------------------------------- */
/* The integer dot products, twice.                                          */

#define NEON_CAT2(a, b) a##_##b
#define NEON_CAT(a, b) NEON_CAT2(a, b)
#define NEON_FN(name) NEON_CAT(name, NEON_SUFFIX)

#define NEON_SDOT 0
#define NEON_SUFFIX mull
#include "kernels_neon_int8.h"
#undef NEON_SDOT
#undef NEON_SUFFIX

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#define NEON_SDOT 1
#define NEON_SUFFIX sdot
#include "kernels_neon_int8.h"
#undef NEON_SDOT
#undef NEON_SUFFIX
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* ------------------------------------------------------------------------- */
/* Float dot products.                                                       */

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

/* 4 consecutive elements of an F32, F16 or BF16 row as floats (bf16 << 16 is the float) */
static inline Q35_NEON_INLINE float32x4_t load4(const void *p, int64_t i, const int type) {
    if (type == Q35_TYPE_F32) return vld1q_f32((const float *)p + i);
    const uint16x4_t h = vld1_u16((const uint16_t *)p + i);
    if (type == Q35_TYPE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

static inline Q35_NEON_INLINE float load1(const void *p, int64_t i, const int type) {
    if (type == Q35_TYPE_F32) return ((const float *)p)[i];
    const uint16_t h = ((const uint16_t *)p)[i];
    return type == Q35_TYPE_F16 ? h2f(h) : q35_bf2f(h);
}

/* One weight row (F32 / F16 / BF16) with R rows of the same type: 16 elements
 * a step in 4 accumulators per row, then 4 at a time, then one at a time. */
static inline Q35_NEON_INLINE void float_rows(const void *x, const void *a, int64_t as, int64_t n, float *out,
                                              const int R, const int type) {
    const void *y[4];
    float32x4_t acc[4][4];
    FOR_ROWS(r, R) {
        y[r] = row_ptr(a, as, r);
        UNROLL for (int k = 0; k < 4; k++) acc[r][k] = vdupq_n_f32(0.0f);
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        UNROLL for (int k = 0; k < 4; k++) {
            const float32x4_t wk = load4(x, i + 4 * k, type);
            FOR_ROWS(r, R) acc[r][k] = vfmaq_f32(acc[r][k], wk, load4(y[r], i + 4 * k, type));
        }
    for (; i + 4 <= n; i += 4) {
        const float32x4_t wk = load4(x, i, type);
        FOR_ROWS(r, R) acc[r][0] = vfmaq_f32(acc[r][0], wk, load4(y[r], i, type));
    }
    FOR_ROWS(r, R) {
        float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[r][0], acc[r][1]), vaddq_f32(acc[r][2], acc[r][3])));
        for (int64_t j = i; j < n; j++) s = fmaf(load1(x, j, type), load1(y[r], j, type), s);
        out[r] = s;
    }
}

#define FLOAT_DOTS(name, type)                                                                   \
    static float vec_dot_##name##_neon(const void *w, const void *a, int64_t n) {                \
        float s;                                                                                 \
        float_rows(w, a, 0, n, &s, 1, type);                                                     \
        return s;                                                                                \
    }                                                                                            \
    static void vec_dot4_##name##_neon(const void *w, const void *a, int64_t as, int64_t n, float *out) { \
        float_rows(w, a, as, n, out, 4, type);                                                   \
    }
FLOAT_DOTS(f32, Q35_TYPE_F32)
FLOAT_DOTS(f16, Q35_TYPE_F16)
FLOAT_DOTS(bf16, Q35_TYPE_BF16)
#undef FLOAT_DOTS

/* ------------------------------------------------------------------------- */
/* Activation converters (from_float).                                       */

static void from_float_f32_neon(const float *x, void *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
}

/* F16: the FPU's conversion rounds to nearest even, like q35_f2h */
static void from_float_f16_neon(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) y[i] = q35_f2h(x[i]);
}

/* BF16 as q35_f2bf: (u + 0x7fff + ((u >> 16) & 1)) >> 16, a NaN -> (u >> 16) | 0x40 */
static void from_float_bf16_neon(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(x + i));
        const uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
        const uint32x4_t rounded = vshrq_n_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7fff)), lsb), 16);
        const uint32x4_t qnan = vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40));
        const uint32x4_t isnan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffff)), vdupq_n_u32(0x7f800000));
        vst1_u16(y + i, vmovn_u32(vbslq_u32(isnan, qnan, rounded)));
    }
    for (; i < n; i++) y[i] = q35_f2bf(x[i]);
}

/* Q8_0: per 32 values d = max|x| / 127, q = x / d rounded half away from zero
 * (vcvtaq, as roundf in the scalar reference), d stored as f16 */
static void from_float_q8_0_neon(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *xb = x + b * QK8_0;
        float32x4_t v[8], m = vdupq_n_f32(0);
        UNROLL for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(xb + 4 * k);
            m = vmaxq_f32(m, vabsq_f32(v[k]));
        }
        const float amax = vmaxvq_f32(m), d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = q35_f2h(d);
        UNROLL for (int k = 0; k < 8; k += 2) { /* rounded half to even (vcvtnq) */
            const int32x4_t q0 = vcvtnq_s32_f32(vmulq_n_f32(v[k], id));
            const int32x4_t q1 = vcvtnq_s32_f32(vmulq_n_f32(v[k + 1], id));
            vst1_s8(y[b].qs + 4 * k, vqmovn_s16(vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1))));
        }
    }
}

/* Q8_K, byte-identical to the scalar quantizer: the element with the largest
 * |x| (the first one) maps to -127; q = iscale x rounded half to even (vcvtnq,
 * as nearest_int), at most 127 (the saturating narrows); bsums per 16 quants.
 * A block without a finite nonzero maximum (all zero, or NaN) is all zero. */
static void from_float_q8_K_neon(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float *xb = x + b * QK_K;
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < QK_K; k += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(xb + k))); /* NaN-ignoring */
        const float amax = vmaxnmvq_f32(m);
        if (!(amax > 0.0f)) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        int first = 0;
        while (first < QK_K && fabsf(xb[first]) != amax) first++;
        const float iscale = -127.0f / xb[first];
        for (int k = 0; k < QK_K; k += 16) {
            int16x4_t h[4];
            UNROLL for (int j = 0; j < 4; j++) h[j] = vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(xb + k + 4 * j), iscale)));
            const int8x16_t q = vcombine_s8(vqmovn_s16(vcombine_s16(h[0], h[1])), vqmovn_s16(vcombine_s16(h[2], h[3])));
            vst1q_s8(y[b].qs + k, q);
            y[b].bsums[k / 16] = (int16_t)vaddlvq_s8(q);
        }
        y[b].d = 1.0f / iscale;
    }
}

/* ------------------------------------------------------------------------- */
/* The fused delta rule (engine/deltanet.c has the math): per token one pass  */
/* over S for vp = S^T k and op = S^T q, then S = d S + k vn^T. Columns go in */
/* blocks of 16 (4 + 4 accumulators of 4 lanes).                              */

void q35_dn_fused(const q35_dn_head *h);

static void dn_fused_neon(const q35_dn_head *h) {
    const int Sk = h->Sk, Sv = h->Sv;
    if (Sv % 16 || Sv > 512) { q35_dn_fused(h); return; }
    const float scale = 1.0f / sqrtf((float)Sk);
    float *S = h->S;
    float vn[512];
    for (int t = 0; t < h->T; t++) {
        const float *q = h->q + t * h->ldqk, *k = h->k + t * h->ldqk, *v = h->v + t * h->ldv;
        const float d = expf(h->g[t * h->ldgb]), beta = h->beta[t * h->ldgb];
        float *o = h->o + t * h->ldo;
        const float kq = dot_f32_neon(k, q, Sk);
        for (int cb = 0; cb < Sv; cb += 16) {
            float32x4_t P[4], Q[4]; /* S^T k and S^T q for columns cb .. cb + 15 */
            UNROLL for (int c = 0; c < 4; c++) P[c] = Q[c] = vdupq_n_f32(0.0f);
            for (int i = 0; i < Sk; i++) {
                const float *row = S + (int64_t)i * Sv + cb;
                UNROLL for (int c = 0; c < 4; c++) {
                    const float32x4_t s = vld1q_f32(row + 4 * c);
                    P[c] = vfmaq_n_f32(P[c], s, k[i]);
                    Q[c] = vfmaq_n_f32(Q[c], s, q[i]);
                }
            }
            UNROLL for (int c = 0; c < 4; c++) {
                const int j = cb + 4 * c;
                /* vn = beta (v - d vp);  o = scale (d op + kq vn) */
                const float32x4_t nv = vmulq_n_f32(vfmsq_n_f32(vld1q_f32(v + j), P[c], d), beta);
                vst1q_f32(vn + j, nv);
                vst1q_f32(o + j, vmulq_n_f32(vfmaq_n_f32(vmulq_n_f32(Q[c], d), nv, kq), scale));
            }
        }
        for (int i = 0; i < Sk; i++) {
            float *row = S + (int64_t)i * Sv;
            for (int j = 0; j < Sv; j += 4)
                vst1q_f32(row + j, vfmaq_n_f32(vmulq_n_f32(vld1q_f32(row + j), d), vld1q_f32(vn + j), k[i]));
        }
    }
}

/* ------------------------------------------------------------------------- */
/* The two tables: identical but for the integer dot products (SFX mull / sdot). */

#define NEON_TABLE(label, SFX, ...)                                                                \
    {                                                                                              \
        .name = label,                                                                             \
        __VA_ARGS__                                                                                \
        Q35_VECOPS_ENTRIES(neon),                                                                  \
        .dn_fused = dn_fused_neon,                                                                 \
        .dot_f32 = dot_f32_neon,                                                                   \
        .from_float = {                                                                            \
            [Q35_TYPE_F32] = from_float_f32_neon,                                                  \
            [Q35_TYPE_F16] = from_float_f16_neon,                                                  \
            [Q35_TYPE_BF16] = from_float_bf16_neon,                                                \
            [Q35_TYPE_Q8_0] = from_float_q8_0_neon,                                                \
            [Q35_TYPE_Q8_K] = from_float_q8_K_neon,                                                \
        },                                                                                         \
        .vec_dot = {                                                                               \
            [Q35_TYPE_F32] = vec_dot_f32_neon,                                                     \
            [Q35_TYPE_F16] = vec_dot_f16_neon,                                                     \
            [Q35_TYPE_BF16] = vec_dot_bf16_neon,                                                   \
            [Q35_TYPE_Q4_0] = vec_dot_q4_0_##SFX,                                                  \
            [Q35_TYPE_Q8_0] = vec_dot_q8_0_##SFX,                                                  \
            [Q35_TYPE_Q4_K] = vec_dot_q4_K_##SFX,                                                  \
            [Q35_TYPE_Q5_K] = vec_dot_q5_K_##SFX,                                                  \
            [Q35_TYPE_Q6_K] = vec_dot_q6_K_##SFX,                                                  \
            [Q35_TYPE_IQ4_XS] = vec_dot_iq4_xs_##SFX,                                              \
        },                                                                                         \
        .vec_dot4 = {                                                                              \
            [Q35_TYPE_F32] = vec_dot4_f32_neon,                                                    \
            [Q35_TYPE_F16] = vec_dot4_f16_neon,                                                    \
            [Q35_TYPE_BF16] = vec_dot4_bf16_neon,                                                  \
            [Q35_TYPE_Q4_0] = vec_dot4_q4_0_##SFX,                                                 \
            [Q35_TYPE_Q8_0] = vec_dot4_q8_0_##SFX,                                                 \
            [Q35_TYPE_Q4_K] = vec_dot4_q4_K_##SFX,                                                 \
            [Q35_TYPE_Q5_K] = vec_dot4_q5_K_##SFX,                                                 \
            [Q35_TYPE_Q6_K] = vec_dot4_q6_K_##SFX,                                                 \
            [Q35_TYPE_IQ4_XS] = vec_dot4_iq4_xs_##SFX,                                             \
        },                                                                                         \
    }

const q35_kernels q35_kernels_neon = NEON_TABLE("neon", mull, .gemm_packed = {[Q35_TYPE_BF16] = q35_gemm_packed_bf16_neon}, );
/* with the repacked products (repacked_neon.c), which are built on sdot by lane */
const q35_kernels q35_kernels_neon_dotprod = NEON_TABLE(
    "neon+dotprod", sdot,
    .gemm_packed = {[Q35_TYPE_Q4_K] = q35_gemm_packed_q4_K_sdot, [Q35_TYPE_Q5_K] = q35_gemm_packed_q5_K_sdot,
                    [Q35_TYPE_Q6_K] = q35_gemm_packed_q6_K_sdot, [Q35_TYPE_Q8_0] = q35_gemm_packed_q8_0_sdot,
                    [Q35_TYPE_IQ4_XS] = q35_gemm_packed_iq4_xs_sdot, [Q35_TYPE_BF16] = q35_gemm_packed_bf16_neon},);
#undef NEON_TABLE

const q35_kernels *q35_neon_table(void) {
    q35_cpu_features f;
    q35_cpu_detect(&f);
    return f.dotprod ? &q35_kernels_neon_dotprod : &q35_kernels_neon;
}
#endif /* Q35_HAVE_NEON */

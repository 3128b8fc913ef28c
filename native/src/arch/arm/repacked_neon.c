/* The repacked products on NEON with the dot-product extension (gemm_packed entries of
 * q35_kernels_neon_dotprod; repacked.h gives the layout and the rule).
 *
 * A 64-byte vector of the layout is 4 NEON registers of 4 rows each ("quads", rows 4g..4g+3).
 * sdot by lane (vdotq_laneq_s32) multiplies the 4 bytes of each row by 4 activation bytes
 * picked out of a loaded register, so there is no broadcast: each row sums inside its own
 * lane, signed by signed (no +128 offsets, unlike vpdpbusd). Per quad: the sub-block sums,
 * one integer multiply by the 4 rows' scales, then per super-block (Q8_0: per block) the
 * float steps of the rule. Up to TN activation rows share each unpacked weight register. */
#include "kernels.h"

#if Q35_HAVE_NEON
#include <arm_neon.h>
#include <string.h>

#include "repacked.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif

#define TN 4 /* activation rows per tile */
#define QUADS (Q35_PACK_ROWS / 4)
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

/* 4 f16 -> float, exact */
static inline float32x4_t h2f4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

static inline float h2f(uint16_t h) {
    __fp16 f;
    memcpy(&f, &h, sizeof f);
    return (float)f;
}

/* 4 bytes (u8 or s8) -> int32 lanes */
static inline int32x4_t u8x4(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vcreate_u8(v)))));
}
static inline int32x4_t s8x4(const int8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return vmovl_s16(vget_low_s16(vmovl_s8(vcreate_s8(v))));
}

/* sdot of 4 rows' bytes w with activation bytes 4l..4l+3 of a; l a constant */
#define SDOT_LANE(acc, w, a, l) vdotq_laneq_s32((acc), (w), (a), (l))

/* The 4-bit products, Q4_K (the codes), Q5_K (the codes with their fifth bits, q5) and IQ4_XS
 * (the codes' grid values, iq4): sub-block sums times the sub-block scales, then the rule's float
 * steps. */
INLINE void nibble_r16_tile(const uint8_t *x0, int64_t stride, int64_t nb, const uint8_t *a, int64_t as, const int RN,
                            float *y, int64_t ldy, const int iq4, const int q5) {
    const uint8x16_t m4 = vdupq_n_u8(0xF);
    const int8x16_t grid = vld1q_s8(q35_kvalues_iq4nl);
    const block_q8_K *q[TN];
    UNROLL for (int j = 0; j < RN; j++) q[j] = (const block_q8_K *)(const void *)(a + j * as);
    float32x4_t acc[TN][QUADS];
    UNROLL for (int j = 0; j < RN; j++) UNROLL for (int g = 0; g < QUADS; g++) acc[j][g] = vdupq_n_f32(0);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *xb = x0 + b * stride;
        const block_q4_K_r16 *k4 = (const block_q4_K_r16 *)(const void *)xb;
        const block_iq4_xs_r16 *i4 = (const block_iq4_xs_r16 *)(const void *)xb;
        const uint8_t(*qs)[64] = iq4 ? i4->qs : k4->qs;
        const uint8_t(*qh)[64] = q5 ? ((const block_q5_K_r16 *)(const void *)xb)->qh : NULL;
        for (int g = 0; g < QUADS; g++) {
            int32x4_t isum[TN];
            UNROLL for (int j = 0; j < RN; j++) isum[j] = vdupq_n_s32(0);
            for (int sj = 0; sj < 8; sj++) {
                int32x4_t s[TN];
                UNROLL for (int j = 0; j < RN; j++) s[j] = vdupq_n_s32(0);
                UNROLL for (int k = 0; k < 4; k++) {
                    const uint8x16_t raw = vld1q_u8(qs[4 * sj + k] + 16 * g);
                    int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(raw, m4)), hi = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
                    if (iq4) lo = vqtbl1q_s8(grid, vreinterpretq_u8_s8(lo)), hi = vqtbl1q_s8(grid, vreinterpretq_u8_s8(hi));
                    if (q5) { /* bit 2k of a qh byte is its low nibble's fifth bit, bit 2k + 1 its high one's */
                        const uint8x16_t h = vld1q_u8(qh[sj] + 16 * g), b16 = vdupq_n_u8(0x10);
                        lo = vorrq_s8(lo, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(h, vdupq_n_u8(1 << (2 * k))), b16)));
                        hi = vorrq_s8(hi, vreinterpretq_s8_u8(vandq_u8(vtstq_u8(h, vdupq_n_u8(2 << (2 * k))), b16)));
                    }
                    UNROLL for (int j = 0; j < RN; j++) {
                        /* positions 32sj + 8k + 0..3 (lo) and + 4..7 (hi) */
                        const int8x16_t av = vld1q_s8(q[j][b].qs + 32 * sj + 16 * (k / 2));
                        if (k % 2 == 0) s[j] = SDOT_LANE(SDOT_LANE(s[j], lo, av, 0), hi, av, 1);
                        else s[j] = SDOT_LANE(SDOT_LANE(s[j], lo, av, 2), hi, av, 3);
                    }
                }
                const int32x4_t sc = iq4 ? s8x4(i4->ls[sj] + 4 * g) : u8x4(k4->sc[sj] + 4 * g);
                UNROLL for (int j = 0; j < RN; j++) isum[j] = vmlaq_s32(isum[j], s[j], sc);
            }
            const float32x4_t dw = h2f4((iq4 ? i4->d : k4->d) + 4 * g);
            UNROLL for (int j = 0; j < RN; j++) {
                acc[j][g] = vfmaq_f32(acc[j][g], vmulq_n_f32(dw, q[j][b].d), vcvtq_f32_s32(isum[j]));
                if (!iq4) { /* the mins: fma(-(da dmin), msum, acc) */
                    const int16_t *bs = q[j][b].bsums;
                    int32x4_t msum = vdupq_n_s32(0);
                    UNROLL for (int sj = 0; sj < 8; sj++)
                        msum = vmlaq_n_s32(msum, u8x4(k4->m[sj] + 4 * g), bs[2 * sj] + bs[2 * sj + 1]);
                    const float32x4_t dm = vnegq_f32(vmulq_n_f32(h2f4(k4->dmin + 4 * g), q[j][b].d));
                    acc[j][g] = vfmaq_f32(acc[j][g], dm, vcvtq_f32_s32(msum));
                }
            }
        }
    }
    UNROLL for (int j = 0; j < RN; j++) UNROLL for (int g = 0; g < QUADS; g++) vst1q_f32(y + j * ldy + 4 * g, acc[j][g]);
}

INLINE void q4_K_r16_tile(const block_q4_K_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    nibble_r16_tile((const uint8_t *)x, sizeof *x, nb, a, as, RN, y, ldy, 0, 0);
}

INLINE void q5_K_r16_tile(const block_q5_K_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    nibble_r16_tile((const uint8_t *)x, sizeof *x, nb, a, as, RN, y, ldy, 0, 1);
}

INLINE void iq4_xs_r16_tile(const block_iq4_xs_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN,
                            float *y, int64_t ldy) {
    nibble_r16_tile((const uint8_t *)x, sizeof *x, nb, a, as, RN, y, ldy, 1, 0);
}

/* Q6_K: the codes (0..63) of sub-block sj, quad g, as 4 registers (positions 16sj + 4e + 0..3) */
INLINE void q6_K_r16_codes(const block_q6_K_r16 *x, int sj, int g, int8x16_t c[4]) {
    const uint8x16_t m4 = vdupq_n_u8(0xF);
    const uint8x16_t l0 = vld1q_u8(x->sub[sj].ql[0] + 16 * g), l1 = vld1q_u8(x->sub[sj].ql[1] + 16 * g);
    const uint8x16_t h = vld1q_u8(x->sub[sj].qh + 16 * g);
    c[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(h, vdupq_n_u8(0x03)), 4)));
    c[1] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(h, vdupq_n_u8(0x0C)), 2)));
    c[2] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, m4), vandq_u8(h, vdupq_n_u8(0x30))));
    c[3] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l1, 4), vshrq_n_u8(vandq_u8(h, vdupq_n_u8(0xC0)), 2)));
}

INLINE void q6_K_r16_tile(const block_q6_K_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    const block_q8_K *q[TN];
    UNROLL for (int j = 0; j < RN; j++) q[j] = (const block_q8_K *)(const void *)(a + j * as);
    float32x4_t acc[TN][QUADS];
    UNROLL for (int j = 0; j < RN; j++) UNROLL for (int g = 0; g < QUADS; g++) acc[j][g] = vdupq_n_f32(0);
    for (int64_t b = 0; b < nb; b++) {
        for (int g = 0; g < QUADS; g++) {
            int32x4_t isum[TN];
            UNROLL for (int j = 0; j < RN; j++) isum[j] = vdupq_n_s32(0);
            for (int sj = 0; sj < 16; sj++) {
                int8x16_t c[4];
                q6_K_r16_codes(&x[b], sj, g, c);
                const int32x4_t sc = s8x4(x[b].sc[sj] + 4 * g);
                UNROLL for (int j = 0; j < RN; j++) {
                    const int8x16_t av = vld1q_s8(q[j][b].qs + 16 * sj);
                    int32x4_t s = vdupq_n_s32(-32 * q[j][b].bsums[sj]); /* the -32 offset, exact */
                    s = SDOT_LANE(s, c[0], av, 0);
                    s = SDOT_LANE(s, c[1], av, 1);
                    s = SDOT_LANE(s, c[2], av, 2);
                    s = SDOT_LANE(s, c[3], av, 3);
                    isum[j] = vmlaq_s32(isum[j], s, sc);
                }
            }
            const float32x4_t dw = h2f4(x[b].d + 4 * g);
            UNROLL for (int j = 0; j < RN; j++)
                acc[j][g] = vfmaq_f32(acc[j][g], vmulq_n_f32(dw, q[j][b].d), vcvtq_f32_s32(isum[j]));
        }
    }
    UNROLL for (int j = 0; j < RN; j++) UNROLL for (int g = 0; g < QUADS; g++) vst1q_f32(y + j * ldy + 4 * g, acc[j][g]);
}

/* Q8_0: signed by signed, so the activation rows go in as from_float makes them */
INLINE void q8_0_r16_tile(const block_q8_0_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    const block_q8_0 *q[TN];
    UNROLL for (int j = 0; j < RN; j++) q[j] = (const block_q8_0 *)(const void *)(a + j * as);
    float32x4_t acc[TN][QUADS];
    UNROLL for (int j = 0; j < RN; j++) UNROLL for (int g = 0; g < QUADS; g++) acc[j][g] = vdupq_n_f32(0);
    for (int64_t b = 0; b < nb; b++) {
        float da[TN];
        UNROLL for (int j = 0; j < RN; j++) da[j] = h2f(q[j][b].d);
        for (int g = 0; g < QUADS; g++) {
            int8x16_t w[8];
            UNROLL for (int k = 0; k < 8; k++) w[k] = vld1q_s8(x[b].qs[k] + 16 * g);
            const float32x4_t dw = h2f4(x[b].d + 4 * g);
            UNROLL for (int j = 0; j < RN; j++) {
                const int8x16_t a0 = vld1q_s8(q[j][b].qs), a1 = vld1q_s8(q[j][b].qs + 16);
                int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
                s0 = SDOT_LANE(s0, w[0], a0, 0);
                s1 = SDOT_LANE(s1, w[1], a0, 1);
                s0 = SDOT_LANE(s0, w[2], a0, 2);
                s1 = SDOT_LANE(s1, w[3], a0, 3);
                s0 = SDOT_LANE(s0, w[4], a1, 0);
                s1 = SDOT_LANE(s1, w[5], a1, 1);
                s0 = SDOT_LANE(s0, w[6], a1, 2);
                s1 = SDOT_LANE(s1, w[7], a1, 3);
                acc[j][g] = vfmaq_f32(acc[j][g], vmulq_n_f32(dw, da[j]), vcvtq_f32_s32(vaddq_s32(s0, s1)));
            }
        }
    }
    UNROLL for (int j = 0; j < RN; j++) UNROLL for (int g = 0; g < QUADS; g++) vst1q_f32(y + j * ldy + 4 * g, acc[j][g]);
}

void q35_gemm_packed_q4_K_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                       int64_t ldy) {
    Q35_PACKED_DRIVER(q4_K_r16_tile, block_q4_K_r16, QK_K, TN)
}

void q35_gemm_packed_q5_K_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                               int64_t ldy) {
    Q35_PACKED_DRIVER(q5_K_r16_tile, block_q5_K_r16, QK_K, TN)
}

void q35_gemm_packed_q6_K_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                       int64_t ldy) {
    Q35_PACKED_DRIVER(q6_K_r16_tile, block_q6_K_r16, QK_K, TN)
}

void q35_gemm_packed_q8_0_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                       int64_t ldy) {
    Q35_PACKED_DRIVER(q8_0_r16_tile, block_q8_0_r16, QK8_0, TN)
}

void q35_gemm_packed_iq4_xs_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                         int64_t ldy) {
    Q35_PACKED_DRIVER(iq4_xs_r16_tile, block_iq4_xs_r16, QK_K, TN)
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* BF16 (plain NEON, in both tables): the rule is VDPBF16PS's (repacked.h), one fused multiply-add
 * per position, the inputs' and results' subnormals flushed by FPCR.FZ, which the entry point sets
 * around the panels and puts back. bf16 << 16 is the float. vld2q splits a vector's pairs: the even
 * positions of 8 rows, then their odd ones. */
static inline float32x4_t bf16_lo(uint16x8_t v) { return vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16)); }
static inline float32x4_t bf16_hi(uint16x8_t v) { return vreinterpretq_f32_u32(vshll_high_n_u16(v, 16)); }
static inline float bf16_f(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

INLINE void bf16_r16_tile(const block_bf16_r16 *x, int64_t nb, const uint8_t *a, int64_t as, const int RN, float *y,
                          int64_t ldy) {
    const uint16_t *q[TN];
    UNROLL for (int j = 0; j < RN; j++) q[j] = (const uint16_t *)(const void *)(a + j * as);
    float32x4_t acc[TN][QUADS];
    UNROLL for (int j = 0; j < RN; j++) UNROLL for (int g = 0; g < QUADS; g++) acc[j][g] = vdupq_n_f32(0);
    for (int64_t b = 0; b < nb; b++)
        for (int p = 0; p < 16; p++) {
            const uint16x8x2_t r0 = vld2q_u16(x[b].w[p]), r8 = vld2q_u16(x[b].w[p] + 16); /* rows 0..7, 8..15 */
            const float32x4_t even[QUADS] = {bf16_lo(r0.val[0]), bf16_hi(r0.val[0]), bf16_lo(r8.val[0]), bf16_hi(r8.val[0])};
            const float32x4_t odd[QUADS] = {bf16_lo(r0.val[1]), bf16_hi(r0.val[1]), bf16_lo(r8.val[1]), bf16_hi(r8.val[1])};
            UNROLL for (int j = 0; j < RN; j++) {
                const uint16_t *qa = q[j] + b * Q35_BF16_R16_ELEMS + 2 * p;
                const float ae = bf16_f(qa[0]), ao = bf16_f(qa[1]);
                UNROLL for (int g = 0; g < QUADS; g++) { /* the odd position first */
                    acc[j][g] = vfmaq_n_f32(acc[j][g], odd[g], ao);
                    acc[j][g] = vfmaq_n_f32(acc[j][g], even[g], ae);
                }
            }
        }
    UNROLL for (int j = 0; j < RN; j++) UNROLL for (int g = 0; g < QUADS; g++) vst1q_f32(y + j * ldy + 4 * g, acc[j][g]);
}

static __attribute__((noinline)) void bf16_panels(const void *wp, const void *a, int64_t as, int nt, int64_t n,
                                                  float *y, int64_t ldy) {
    Q35_PACKED_DRIVER(bf16_r16_tile, block_bf16_r16, Q35_BF16_R16_ELEMS, TN)
}

#define FPCR_FZ (UINT64_C(1) << 24) /* flush subnormal inputs and results to (signed) zero */

void q35_gemm_packed_bf16_neon(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    uint64_t fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr)::"memory");
    __asm__ __volatile__("msr fpcr, %0" ::"r"(fpcr | FPCR_FZ) : "memory");
    bf16_panels(wp, a, as, nt, n, y, ldy);
    __asm__ __volatile__("msr fpcr, %0" ::"r"(fpcr) : "memory");
}
#endif /* Q35_HAVE_NEON */

/* The integer dot products of the NEON variant (Q8_0, Q4_0 with Q8_0
 * activations; Q4_K, Q5_K, Q6_K, IQ4_XS with Q8_K activations).
 *
 * Not an ordinary header: kernels_neon.c includes it twice, once plain
 * (NEON_SDOT 0: int8 products by widening multiplies, vmull_s8 + vpadalq_s16,
 * baseline armv8-a) and once inside #pragma GCC target("+dotprod")
 * (NEON_SDOT 1: sdot, vdotq_s32). NEON_FN(name) gives each copy its own names.
 *
 * Every kernel is one body over R = 1 or 4 activation rows (vec_dot and
 * vec_dot4): each weight block is unpacked once and applied to the R rows, and
 * row r sees the same float operations in the same order whatever R is, so
 * vec_dot4 equals vec_dot bit for bit (integer sums are exact in any order). */

/* acc + the products a_i b_i of 16 int8 pairs, summed into the 4 int32 lanes.
 * Which lane gets which product differs between the two copies; callers only
 * use the total of the 4 lanes for one scale. */
static inline Q35_NEON_INLINE int32x4_t NEON_FN(dot_i8)(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if NEON_SDOT
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* dot of 32 int8 pairs given as two halves of 16 */
static inline Q35_NEON_INLINE int32x4_t NEON_FN(dot_i8x32)(int8x16_t a0, int8x16_t a1, const int8_t *b) {
    return NEON_FN(dot_i8)(NEON_FN(dot_i8)(vdupq_n_s32(0), a0, vld1q_s8(b)), a1, vld1q_s8(b + 16));
}

/* Q8_0 x Q8_0: per block of 32, dW da sum_j w_j a_j */
static inline Q35_NEON_INLINE void NEON_FN(q8_0_rows)(const void *w, const void *a, int64_t as, int64_t n,
                                                      float *out, const int R) {
    const block_q8_0 *x = w, *y[4];
    float32x4_t acc[4];
    FOR_ROWS(r, R) { y[r] = row_ptr(a, as, r); acc[r] = vdupq_n_f32(0.0f); }
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const int8x16_t w0 = vld1q_s8(x[b].qs), w1 = vld1q_s8(x[b].qs + 16);
        const float dw = h2f(x[b].d);
        FOR_ROWS(r, R) {
            const int32x4_t p = NEON_FN(dot_i8x32)(w0, w1, y[r][b].qs);
            acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(p), dw * h2f(y[r][b].d));
        }
    }
    FOR_ROWS(r, R) out[r] = vaddvq_f32(acc[r]);
}

/* Q4_0 x Q8_0: byte j holds element j (low nibble) and j + 16 (high); w = q - 8 */
static inline Q35_NEON_INLINE void NEON_FN(q4_0_rows)(const void *w, const void *a, int64_t as, int64_t n,
                                                      float *out, const int R) {
    const block_q4_0 *x = w;
    const block_q8_0 *y[4];
    float32x4_t acc[4];
    FOR_ROWS(r, R) { y[r] = row_ptr(a, as, r); acc[r] = vdupq_n_f32(0.0f); }
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t b = 0; b < n / QK4_0; b++) {
        uint8x16_t lo, hi;
        nibbles16(x[b].qs, &lo, &hi);
        const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(lo), eight), w1 = vsubq_s8(vreinterpretq_s8_u8(hi), eight);
        const float dw = h2f(x[b].d);
        FOR_ROWS(r, R) {
            const int32x4_t p = NEON_FN(dot_i8x32)(w0, w1, y[r][b].qs);
            acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(p), dw * h2f(y[r][b].d));
        }
    }
    FOR_ROWS(r, R) out[r] = vaddvq_f32(acc[r]);
}

/* Q4_K / Q5_K x Q8_K, per super-block of 256:
 *   da (dW sum_j sc_j sum_{l in j} q_l a_l  -  dmin sum_j m_j (bsum_2j + bsum_2j+1))
 * The 128 bytes of qs are 4 chunks of 32: byte l of chunk c holds element
 * 64c + l (low nibble, sub-block 2c) and 64c + 32 + l (high nibble, 2c + 1).
 * Q5_K's fifth bit of sub-block j is bit j of qh[l], l = 0..31: kept in two
 * registers (l < 16, l >= 16) shifted right by 2 per chunk, so bits 0 and 1
 * are always the current chunk's. */
static inline Q35_NEON_INLINE void NEON_FN(qK_rows)(const void *w, const void *a, int64_t as, int64_t n,
                                                    float *out, const int R, const int five_bits) {
    const block_q8_K *y[4];
    float32x4_t acc[4];
    float accm[4];
    FOR_ROWS(r, R) { y[r] = row_ptr(a, as, r); acc[r] = vdupq_n_f32(0.0f); accm[r] = 0.0f; }
    const uint8x16_t bit4 = vdupq_n_u8(0x10);
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_q4_K *x4 = (const block_q4_K *)w + b;
        const block_q5_K *x5 = (const block_q5_K *)w + b;
        const uint8_t *scales = five_bits ? x5->scales : x4->scales, *qs = five_bits ? x5->qs : x4->qs;
        const float dw = h2f(five_bits ? x5->d : x4->d), dmw = h2f(five_bits ? x5->dmin : x4->dmin);
        uint8_t sc[8], m[8];
        k_scales_mins(scales, sc, m);
        uint8x16_t hb0 = vdupq_n_u8(0), hb1 = hb0;
        if (five_bits) { hb0 = vld1q_u8(x5->qh); hb1 = vld1q_u8(x5->qh + 16); }
        int32x4_t sumi[4];
        FOR_ROWS(r, R) sumi[r] = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            uint8x16_t lo0, hi0, lo1, hi1;
            nibbles16(qs + 32 * c, &lo0, &hi0);
            nibbles16(qs + 32 * c + 16, &lo1, &hi1);
            if (five_bits) { /* bit 0 -> bit 4 of the low nibbles' byte, bit 1 -> bit 4 of the high */
                lo0 = vorrq_u8(lo0, vandq_u8(vshlq_n_u8(hb0, 4), bit4));
                lo1 = vorrq_u8(lo1, vandq_u8(vshlq_n_u8(hb1, 4), bit4));
                hi0 = vorrq_u8(hi0, vandq_u8(vshlq_n_u8(hb0, 3), bit4));
                hi1 = vorrq_u8(hi1, vandq_u8(vshlq_n_u8(hb1, 3), bit4));
                hb0 = vshrq_n_u8(hb0, 2);
                hb1 = vshrq_n_u8(hb1, 2);
            }
            const int8x16_t l0 = vreinterpretq_s8_u8(lo0), l1 = vreinterpretq_s8_u8(lo1);
            const int8x16_t h0 = vreinterpretq_s8_u8(hi0), h1 = vreinterpretq_s8_u8(hi1);
            FOR_ROWS(r, R) {
                const int8_t *qa = y[r][b].qs + 64 * c;
                sumi[r] = vmlaq_n_s32(sumi[r], NEON_FN(dot_i8x32)(l0, l1, qa), sc[2 * c]);
                sumi[r] = vmlaq_n_s32(sumi[r], NEON_FN(dot_i8x32)(h0, h1, qa + 32), sc[2 * c + 1]);
            }
        }
        const int16x8_t m16 = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m)));
        FOR_ROWS(r, R) {
            acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(sumi[r]), y[r][b].d * dw);
            accm[r] = fmaf(y[r][b].d * dmw, (float)k_mins_dot(m16, y[r][b].bsums), accm[r]);
        }
    }
    FOR_ROWS(r, R) out[r] = vaddvq_f32(acc[r]) - accm[r];
}

/* Q6_K x Q8_K: da dW sum_{j<16} sc_j sum_{l in j} (q_l - 32) a_l. Each half h
 * of 128 elements has ql[64h..64h+63] and qh[32h..32h+31]; for l < 32:
 *   element l      = ql[l] low nibble      | qh[l] bits 0-1 << 4
 *   element l + 32 = ql[l + 32] low nibble | qh[l] bits 2-3 << 4
 *   element l + 64 = ql[l] high nibble     | qh[l] bits 4-5 << 4
 *   element l + 96 = ql[l + 32] high nibble| qh[l] bits 6-7 << 4
 * taken 16 l at a time, so each group of 16 quants has one scale. */
static inline Q35_NEON_INLINE void NEON_FN(q6_K_rows)(const void *w, const void *a, int64_t as, int64_t n,
                                                      float *out, const int R) {
    const block_q6_K *x = w;
    const block_q8_K *y[4];
    float32x4_t acc[4];
    FOR_ROWS(r, R) { y[r] = row_ptr(a, as, r); acc[r] = vdupq_n_f32(0.0f); }
    const uint8x16_t m4 = vdupq_n_u8(0xF), m48 = vdupq_n_u8(0x30);
    const int8x16_t m32 = vdupq_n_s8(32);
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32x4_t sumi[4];
        FOR_ROWS(r, R) sumi[r] = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            for (int lb = 0; lb < 2; lb++) {
                const uint8x16_t l0 = vld1q_u8(x[b].ql + 64 * h + 16 * lb);
                const uint8x16_t l1 = vld1q_u8(x[b].ql + 64 * h + 32 + 16 * lb);
                const uint8x16_t hb = vld1q_u8(x[b].qh + 32 * h + 16 * lb);
                const uint8x16_t q[4] = {
                    vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8(hb, 4), m48)),
                    vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8(hb, 2), m48)),
                    vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, m48)),
                    vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hb, 2), m48)),
                };
                UNROLL for (int g = 0; g < 4; g++) {
                    const int j = 8 * h + 2 * g + lb; /* elements 16j .. 16j + 15 */
                    const int8x16_t wq = vsubq_s8(vreinterpretq_s8_u8(q[g]), m32);
                    FOR_ROWS(r, R) {
                        const int32x4_t p = NEON_FN(dot_i8)(vdupq_n_s32(0), wq, vld1q_s8(y[r][b].qs + 16 * j));
                        sumi[r] = vmlaq_n_s32(sumi[r], p, x[b].scales[j]);
                    }
                }
            }
        }
        const float dw = h2f(x[b].d);
        FOR_ROWS(r, R) acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(sumi[r]), y[r][b].d * dw);
    }
    FOR_ROWS(r, R) out[r] = vaddvq_f32(acc[r]);
}

/* IQ4_XS x Q8_K: da dW sum_ib (ls_ib - 32) sum_{l in ib} K[nibble_l] a_l, the
 * nibbles of sub-block ib as in Q4_0 (byte j: element j low, j + 16 high),
 * K the non-linear grid (a table lookup), ls_ib 4 low bits from scales_l and
 * 2 high bits from scales_h. */
static inline Q35_NEON_INLINE void NEON_FN(iq4_xs_rows)(const void *w, const void *a, int64_t as, int64_t n,
                                                        float *out, const int R) {
    const block_iq4_xs *x = w;
    const block_q8_K *y[4];
    float32x4_t acc[4];
    FOR_ROWS(r, R) { y[r] = row_ptr(a, as, r); acc[r] = vdupq_n_f32(0.0f); }
    const int8x16_t grid = vld1q_s8(q35_kvalues_iq4nl);
    for (int64_t b = 0; b < n / QK_K; b++) {
        int32x4_t sumi[4];
        FOR_ROWS(r, R) sumi[r] = vdupq_n_s32(0);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = q35_iq4_xs_scale(&x[b], ib);
            uint8x16_t lo, hi;
            nibbles16(x[b].qs + 16 * ib, &lo, &hi);
            const int8x16_t k0 = vqtbl1q_s8(grid, lo), k1 = vqtbl1q_s8(grid, hi);
            FOR_ROWS(r, R)
                sumi[r] = vmlaq_n_s32(sumi[r], NEON_FN(dot_i8x32)(k0, k1, y[r][b].qs + 32 * ib), ls - 32);
        }
        const float dw = h2f(x[b].d);
        FOR_ROWS(r, R) acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(sumi[r]), y[r][b].d * dw);
    }
    FOR_ROWS(r, R) out[r] = vaddvq_f32(acc[r]);
}

/* the table entries: vec_dot (one row) and vec_dot4 (4 rows) from each body */
static float NEON_FN(vec_dot_q8_0)(const void *w, const void *a, int64_t n) {
    float s; NEON_FN(q8_0_rows)(w, a, 0, n, &s, 1); return s;
}
static void NEON_FN(vec_dot4_q8_0)(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    NEON_FN(q8_0_rows)(w, a, as, n, out, 4);
}
static float NEON_FN(vec_dot_q4_0)(const void *w, const void *a, int64_t n) {
    float s; NEON_FN(q4_0_rows)(w, a, 0, n, &s, 1); return s;
}
static void NEON_FN(vec_dot4_q4_0)(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    NEON_FN(q4_0_rows)(w, a, as, n, out, 4);
}
static float NEON_FN(vec_dot_q4_K)(const void *w, const void *a, int64_t n) {
    float s; NEON_FN(qK_rows)(w, a, 0, n, &s, 1, 0); return s;
}
static void NEON_FN(vec_dot4_q4_K)(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    NEON_FN(qK_rows)(w, a, as, n, out, 4, 0);
}
static float NEON_FN(vec_dot_q5_K)(const void *w, const void *a, int64_t n) {
    float s; NEON_FN(qK_rows)(w, a, 0, n, &s, 1, 1); return s;
}
static void NEON_FN(vec_dot4_q5_K)(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    NEON_FN(qK_rows)(w, a, as, n, out, 4, 1);
}
static float NEON_FN(vec_dot_q6_K)(const void *w, const void *a, int64_t n) {
    float s; NEON_FN(q6_K_rows)(w, a, 0, n, &s, 1); return s;
}
static void NEON_FN(vec_dot4_q6_K)(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    NEON_FN(q6_K_rows)(w, a, as, n, out, 4);
}
static float NEON_FN(vec_dot_iq4_xs)(const void *w, const void *a, int64_t n) {
    float s; NEON_FN(iq4_xs_rows)(w, a, 0, n, &s, 1); return s;
}
static void NEON_FN(vec_dot4_iq4_xs)(const void *w, const void *a, int64_t as, int64_t n, float *out) {
    NEON_FN(iq4_xs_rows)(w, a, as, n, out, 4);
}

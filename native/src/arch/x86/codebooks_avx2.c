/* The codebook and ternary types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
 * IQ3_S, TQ1_0, TQ2_0) x Q8_K on AVX2 + FMA, one weight row with one or 4
 * activation rows.
 *
 * The IQ types: per group of 32 values the grid points are loaded into one
 * register of unsigned magnitudes w (4 points of 8 bytes or 8 of 4; IQ1: |8 point +
 * delta|; scalar loads, which beat the gather instructions on Zen 4 except for
 * IQ3_S's 8 points, ggml_dots.c in reports/types/2026-12-06-iq), the group's signs become a register of +-1 bytes, and maddubs(w, qa with
 * those signs) gives int16 pair sums (w <= 62, |qa| <= 127: no saturation); a madd
 * with the group's two sub-block scales (one per 128-bit lane) adds 8 int32 into the
 * block sum. The TQ types are decoded to their integer values v first (codebooks.h)
 * and summed in ggml's x86 lanes: maddubs(v + 1, qa), then lane l less the sum of qa
 * over values 32 l .. 32 l + 31 (Q8_K's bsums), so that each int32 lane, and so each
 * float rounding, is ggml's. The float steps are those of ggml's x86 dots: per block
 * acc += (dW dA) * float(sums) (the TQ types: a product, then a sum, as ggml's), one
 * 8-lane accumulator, summed at the end and times the type's c. The 4-row dot decodes
 * a group once for the 4 rows and keeps the single dot's float order, so they agree
 * bit for bit. */
#include "kernels.h"

#if Q35_HAVE_X86
#include <string.h>

#include "blocks.h"
#include "arch/x86/avx2.h" /* opens the target region */
#include "arch/x86/int8_panel_avx2.h"
#include "codebooks.h" /* after the region opens: its decoders, where not inlined, are compiled for AVX2 too */

#define INLINE static inline __attribute__((always_inline))

/* +1 / -1 bytes from four sign bytes (byte l: the signs of values 8 l .. 8 l + 7; bit j set:
 * value j negative): byte l spread over its 8 lanes, each lane tests its own bit */
INLINE __m256i sign_bytes(uint32_t four) {
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)four),
                                               _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                                                 0x0101010101010101ll, 0));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(1));
}

/* the +-1 bytes of four 7-bit sign indices (ggml's ksigns_iq2xs, as bytes in q35_ksign_bytes) */
INLINE __m256i ksign_vector(uint32_t k0, uint32_t k1, uint32_t k2, uint32_t k3) {
    return _mm256_set_epi64x((long long)q35_ksign_bytes[k3], (long long)q35_ksign_bytes[k2],
                             (long long)q35_ksign_bytes[k1], (long long)q35_ksign_bytes[k0]);
}

/* the same for the four indices in bits 0..27 of an IQ2_XXS / IQ3_XXS group word */
INLINE __m256i ksign_word_vector(uint32_t aux) {
    return ksign_vector(aux & 127, aux >> 7 & 127, aux >> 14 & 127, aux >> 21 & 127);
}

/* group g (values 32 g .. 32 g + 31) of an IQ block: magnitudes, signs, the two scales */
typedef struct { __m256i w, s; int16_t ls0, ls1; } group32;

INLINE group32 iq_group(int type, const uint8_t *x, int g) {
    group32 o;
    int ls0, ls1;
    if (type == Q35_TYPE_IQ2_XXS) { /* 4 byte indices, a word of 4 x 7 sign bits and the scale */
        const uint8_t *q = x + 2 + 8 * g;
        const uint32_t aux = q35_le32(q + 4);
        o.w = _mm256_set_epi64x((long long)q35_iq2xxs_grid[q[3]], (long long)q35_iq2xxs_grid[q[2]],
                                (long long)q35_iq2xxs_grid[q[1]], (long long)q35_iq2xxs_grid[q[0]]);
        o.s = ksign_word_vector(aux);
        ls0 = ls1 = 2 * (int)(aux >> 28) + 1;
    } else if (type == Q35_TYPE_IQ2_XS) { /* 4 words of a 9-bit index and 7 sign bits */
        const uint8_t *q = x + 2 + 8 * g;
        o.w = _mm256_set_epi64x((long long)q35_iq2xs_grid[q35_le16(q + 6) & 511], (long long)q35_iq2xs_grid[q35_le16(q + 4) & 511],
                                (long long)q35_iq2xs_grid[q35_le16(q + 2) & 511], (long long)q35_iq2xs_grid[q35_le16(q) & 511]);
        o.s = ksign_vector(q[1] >> 1, q[3] >> 1, q[5] >> 1, q[7] >> 1);
        ls0 = 2 * (x[66 + g] & 0xF) + 1;
        ls1 = 2 * (x[66 + g] >> 4) + 1;
    } else if (type == Q35_TYPE_IQ2_S) { /* 10-bit indices: qs[4g + l] and bits 2l, 2l+1 of qh[g] */
        const uint8_t *qs = x + 2 + 4 * g;
        const int qh = x[66 + g];
        o.w = _mm256_set_epi64x((long long)q35_iq2s_grid[qs[3] | (qh << 2 & 0x300)], (long long)q35_iq2s_grid[qs[2] | (qh << 4 & 0x300)],
                                (long long)q35_iq2s_grid[qs[1] | (qh << 6 & 0x300)], (long long)q35_iq2s_grid[qs[0] | (qh << 8 & 0x300)]);
        o.s = sign_bytes(q35_le32(x + 34 + 4 * g));
        ls0 = 2 * (x[74 + g] & 0xF) + 1;
        ls1 = 2 * (x[74 + g] >> 4) + 1;
    } else if (type == Q35_TYPE_IQ3_XXS) { /* 8 byte indices of 4-value points, a sign / scale word */
        const uint32_t aux = q35_le32(x + 66 + 4 * g);
        const uint8_t *q3 = x + 2 + 8 * g;
        o.w = _mm256_setr_epi32((int)q35_iq3xxs_grid[q3[0]], (int)q35_iq3xxs_grid[q3[1]], (int)q35_iq3xxs_grid[q3[2]],
                                (int)q35_iq3xxs_grid[q3[3]], (int)q35_iq3xxs_grid[q3[4]], (int)q35_iq3xxs_grid[q3[5]],
                                (int)q35_iq3xxs_grid[q3[6]], (int)q35_iq3xxs_grid[q3[7]]);
        o.s = ksign_word_vector(aux);
        ls0 = ls1 = 2 * (int)(aux >> 28) + 1;
    } else if (type == Q35_TYPE_IQ1_S || type == Q35_TYPE_IQ1_M) {
        /* 11-bit indices into points of -1 / 0 / 1 bytes; values 8 point + delta (-9 .. 9, never 0),
         * as magnitudes and +-1 signs */
        uint16_t qh;
        int step; /* index bits of point l at bit step * l of qh */
        __m256i delta;
        if (type == Q35_TYPE_IQ1_S) { /* qh word: 4 x 3 index bits, 3-bit scale, the delta sign */
            qh = q35_le16(x + 34 + 2 * g);
            step = 3;
            delta = _mm256_set1_epi8(qh & 0x8000 ? -1 : 1);
            ls0 = ls1 = 2 * ((qh >> 12) & 7) + 1;
        } else { /* two qh bytes: per point 3 index bits and a delta sign; 3-bit scales per 16 */
            const uint16_t sc = q35_le16(x + 48 + 2 * (g / 2));
            qh = q35_le16(x + 32 + 2 * g);
            step = 4;
            /* point l's delta sign, bit 4l + 3, over its 8 bytes: -1 where set, +1 where clear */
            const __m256i set = _mm256_and_si256(_mm256_set1_epi64x(qh), _mm256_setr_epi64x(1 << 3, 1 << 7, 1 << 11, 1 << 15));
            const __m256i clear = _mm256_cmpeq_epi64(set, _mm256_setzero_si256());
            delta = _mm256_or_si256(_mm256_xor_si256(clear, _mm256_set1_epi8(-1)), _mm256_set1_epi8(1));
            ls0 = 2 * ((sc >> (6 * (g % 2))) & 7) + 1;
            ls1 = 2 * ((sc >> (6 * (g % 2) + 3)) & 7) + 1;
        }
        const uint8_t *qs = x + (type == Q35_TYPE_IQ1_S ? 2 : 0) + 4 * g;
#define P(l) (long long)q35_iq1s_grid[qs[l] | (qh >> (step * (l)) & 7) << 8]
        const __m256i point = _mm256_set_epi64x(P(3), P(2), P(1), P(0));
#undef P
        const __m256i v = _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), point), delta);
        o.w = _mm256_sign_epi8(v, v);
        o.s = _mm256_sign_epi8(_mm256_set1_epi8(1), v);
    } else { /* IQ3_S: 9-bit indices, the ninth bit of point k is bit k of qh[g] */
        const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x + 2 + 8 * g)));
        const __m256i hi = _mm256_and_si256(_mm256_sllv_epi32(_mm256_set1_epi32(x[66 + g]),
                                                              _mm256_setr_epi32(8, 7, 6, 5, 4, 3, 2, 1)),
                                            _mm256_set1_epi32(256));
        o.w = _mm256_i32gather_epi32((const int *)q35_iq3s_grid, _mm256_or_si256(lo, hi), 4); /* faster here */
        o.s = sign_bytes(q35_le32(x + 74 + 4 * g));
        ls0 = ls1 = 2 * ((x[106 + g / 2] >> (4 * (g % 2))) & 0xF) + 1;
    }
    o.ls0 = (int16_t)ls0;
    o.ls1 = (int16_t)ls1;
    return o;
}

/* a TQ block decoded (codebooks.h), called directly so the decoder is compiled here, for AVX2 */
/* base-3 digit k of every byte of q, minus 1 (q35_trit: (q 3^k mod 256) * 3 >> 8), in 16-bit lanes: the
 * byte moved to a lane's high half, multiplied there (the product mod 256 stays in the high half), then
 * mulhi by 3 leaves (t * 3) >> 8 in the low half */
INLINE __m256i trits_minus_one(__m256i q, int k) {
    static const short pow3[5] = {1, 3, 9, 27, 81};
    const __m256i c = _mm256_set1_epi16(pow3[k]), three = _mm256_set1_epi16(3);
    const __m256i even = _mm256_mulhi_epu16(_mm256_mullo_epi16(_mm256_slli_epi16(q, 8), c), three);
    const __m256i odd = _mm256_mulhi_epu16(_mm256_mullo_epi16(_mm256_and_si256(q, _mm256_set1_epi16((short)0xFF00)), c),
                                           three);
    return _mm256_sub_epi8(_mm256_or_si256(even, _mm256_slli_epi16(odd, 8)), _mm256_set1_epi8(1));
}

/* TQ1_0 as q35_decode_tq1_0 gives it: qs[0..31] and qs[32..47] five digits each in registers, qh's
 * 16 values one by one */
INLINE void decode_tq1_0_avx2(const uint8_t *x, q35_codebook_block *o) {
    o->d = h2f(q35_le16(x + 52));
    for (int s = 0; s < 16; s++) o->ls[s] = 1;
    const __m256i q32 = _mm256_loadu_si256((const __m256i *)x);
    const __m256i q16 = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(x + 32)));
    for (int k = 0; k < 5; k++) {
        _mm256_storeu_si256((__m256i *)(o->v + 32 * k), trits_minus_one(q32, k));
        _mm_storeu_si128((__m128i *)(o->v + 160 + 16 * k), _mm256_castsi256_si128(trits_minus_one(q16, k)));
    }
    for (int k = 0; k < 4; k++)
        for (int m = 0; m < 4; m++) o->v[240 + 4 * k + m] = (int8_t)(q35_trit(x[48 + m], k) - 1);
}

INLINE void decode_tq(int type, const uint8_t *x, q35_codebook_block *cb) {
    if (type == Q35_TYPE_TQ1_0)
        decode_tq1_0_avx2(x, cb);
    else
        q35_decode_tq2_0(x, cb);
}

/* IQ1_M's f16 block scale, from the top nibbles of its four scale words */
INLINE uint16_t iq1_m_scale(const uint8_t *x) {
    return (uint16_t)((x[49] >> 4) | (x[51] & 0xF0) | (x[53] >> 4) << 8 | (x[55] & 0xF0) << 8);
}

/* madd(pair sums, the two scales): 8 int32 of sum ls w sign qa over the group */
INLINE __m256i group_sums(__m256i w, __m256i signed_qa, int16_t ls0, int16_t ls1) {
    const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(ls1), _mm_set1_epi16(ls0));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, signed_qa), sc);
}

INLINE const block_q8_K *act_block(const void *a, int64_t as, int r, int64_t b) {
    return (const block_q8_K *)(const void *)((const uint8_t *)a + r * as) + b;
}

/* acc += (dW dA) float(sums): a fused multiply-add, or ggml's product then sum for the TQ types */
INLINE __m256 add_block(int type, __m256 acc, float d, __m256i sums) {
    const __m256 f = _mm256_cvtepi32_ps(sums), dv = _mm256_set1_ps(d);
    if (type == Q35_TYPE_TQ1_0 || type == Q35_TYPE_TQ2_0) return _mm256_add_ps(_mm256_mul_ps(f, dv), acc);
    return _mm256_fmadd_ps(dv, f, acc);
}

INLINE void codebook_rows(int type, const void *w, const void *a, int64_t as, int64_t n, float *out, const int nr) {
    int block_bytes;
    q35_codebook_decoder(type, &block_bytes);
    const int gathered = type != Q35_TYPE_TQ1_0 && type != Q35_TYPE_TQ2_0; /* the IQ types: points loaded per group */
    __m256 acc[4];
    for (int r = 0; r < nr; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *x = (const uint8_t *)w + b * block_bytes;
        __m256i sums[4];
        for (int r = 0; r < nr; r++) sums[r] = _mm256_setzero_si256();
        float d;
        if (gathered) {
            d = h2f(type == Q35_TYPE_IQ1_M ? iq1_m_scale(x) : q35_le16(x));
            for (int g = 0; g < 8; g++) {
                const group32 grp = iq_group(type, x, g);
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(act_block(a, as, r, b)->qs + 32 * g));
                    sums[r] = _mm256_add_epi32(sums[r], group_sums(grp.w, _mm256_sign_epi8(q, grp.s), grp.ls0, grp.ls1));
                }
            }
        } else {
            q35_codebook_block cb;
            decode_tq(type, x, &cb);
            d = cb.d;
            /* ggml's lanes: the digits t = v + 1 (0..2) against qa, less the bsums of the lane's 32 values */
            for (int g = 0; g < 8; g++) {
                const __m256i t = _mm256_add_epi8(_mm256_loadu_si256((const __m256i *)(cb.v + 32 * g)), _mm256_set1_epi8(1));
                for (int r = 0; r < nr; r++) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(act_block(a, as, r, b)->qs + 32 * g));
                    sums[r] = _mm256_add_epi32(sums[r], group_sums(t, q, 1, 1));
                }
            }
            for (int r = 0; r < nr; r++) sums[r] = _mm256_sub_epi32(sums[r], q35_i8_bsum_pairs(act_block(a, as, r, b)));
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) acc[r] = add_block(type, acc[r], d * act_block(a, as, r, b)->d, sums[r]);
    }
    for (int r = 0; r < nr; r++) out[r] = q35_codebook_c(type) * hsum_ps256(acc[r]);
}

/* a row decoded for a panel (int8_panel_avx2.h): the groups' w with their signs as signed bytes */
INLINE void decode_row(int type, const uint8_t *x, int64_t nb, q35_i8_row *row) {
    int block_bytes;
    q35_codebook_decoder(type, &block_bytes);
    for (int64_t b = 0; b < nb; b++, x += block_bytes) {
        if (type == Q35_TYPE_TQ1_0 || type == Q35_TYPE_TQ2_0) {
            q35_codebook_block cb;
            decode_tq(type, x, &cb);
            memcpy(row->v + 256 * b, cb.v, 256);
            memcpy(row->ls + 16 * b, cb.ls, sizeof cb.ls);
            row->d[b] = cb.d;
            continue;
        }
        row->d[b] = h2f(type == Q35_TYPE_IQ1_M ? iq1_m_scale(x) : q35_le16(x));
        for (int g = 0; g < 8; g++) {
            const group32 grp = iq_group(type, x, g);
            _mm256_storeu_si256((__m256i *)(row->v + 256 * b + 32 * g), _mm256_sign_epi8(grp.w, grp.s));
            row->ls[16 * b + 2 * g] = grp.ls0;
            row->ls[16 * b + 2 * g + 1] = grp.ls1;
        }
    }
}

#define CODEBOOK_DOTS(tname, type)                                                                      \
    float q35_vec_dot_##tname##_q8_K_avx2(const void *w, const void *a, int64_t n) {                   \
        float out;                                                                                      \
        codebook_rows(type, w, a, 0, n, &out, 1);                                                       \
        return out;                                                                                     \
    }                                                                                                   \
    void q35_vec_dot4_##tname##_q8_K_avx2(const void *w, const void *a, int64_t as, int64_t n, float *out) { \
        codebook_rows(type, w, a, as, n, out, 4);                                                       \
    }                                                                                                   \
    static void decode_row_##tname(const uint8_t *x, int64_t nb, q35_i8_row *row) { decode_row(type, x, nb, row); } \
    void q35_gemm_##tname##_q8_K_avx2(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt,    \
                                      int64_t n, float *y, int64_t ldy) {                               \
        const q35_i8_steps st = {q35_codebook_c(type), 0, type == Q35_TYPE_TQ1_0 || type == Q35_TYPE_TQ2_0};  \
        q35_i8_panel(decode_row_##tname, st, q35_vec_dot_##tname##_q8_K_avx2, q35_vec_dot4_##tname##_q8_K_avx2,  \
                     w, ws, nr, a, as, nt, n, y, ldy);                                                  \
    }
CODEBOOK_DOTS(iq2_xxs, Q35_TYPE_IQ2_XXS)
CODEBOOK_DOTS(iq2_xs, Q35_TYPE_IQ2_XS)
CODEBOOK_DOTS(iq2_s, Q35_TYPE_IQ2_S)
CODEBOOK_DOTS(iq3_xxs, Q35_TYPE_IQ3_XXS)
CODEBOOK_DOTS(iq3_s, Q35_TYPE_IQ3_S)
CODEBOOK_DOTS(iq1_s, Q35_TYPE_IQ1_S)
CODEBOOK_DOTS(iq1_m, Q35_TYPE_IQ1_M)
CODEBOOK_DOTS(tq1_0, Q35_TYPE_TQ1_0)
CODEBOOK_DOTS(tq2_0, Q35_TYPE_TQ2_0)
#undef CODEBOOK_DOTS

Q35_AVX2_END
#endif

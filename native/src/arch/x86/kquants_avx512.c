/* The K-quant and IQ4_XS panels on AVX512 (gemm entries of Q4_K, Q5_K, Q6_K, IQ4_XS x Q8_K).
 *
 * This file is compiled twice, like kernels_avx512.c: as itself (the panels of
 * q35_kernels_avx512) and from kquants_avx512vnni.c with Q35_AVX512_VNNI (those of
 * q35_kernels_avx512vnni, with vpdpwssd). Each panel value equals its own table's
 * vec_dot bit for bit: per (weight row, activation row) the float operations of
 * k45_rows / q6_K_rows / iq4_xs_rows in kernels_avx512.c, in their order,
 *
 *     per super-block b:  acc  = fma(dA_b * dW_b, float(sumi_b), acc)          (16 lanes)
 *                         accm = accm - (dA_b * dminW_b) * float(summ_b)        (Q4_K, Q5_K; one rounding)
 *     dot = hsum512(acc) (+ accm)
 *
 * where sumi_b holds, lane by lane, the same exact integers as there (the same code
 * bytes, scale vectors and integer instructions per lane) and summ_b, like Q6_K's
 * -32 sum_j sc_j bsum_j, is the same exact integer sum. What changes is where the
 * work happens:
 *   - the per-row numbers (dW, dminW, the mins / Q6_K scales) of the up to 16 weight
 *     rows of a pass are laid out one row per lane, so that the products dA dW, the
 *     mins terms and the Q6_K offsets of one activation row come out for 16 weight
 *     rows per vector, the bsums read straight from the activation block;
 *   - each weight row is unpacked once per pass (codes to bytes, the sub-block
 *     scales to vectors; IQ4_XS: |code| and the sign masks);
 *   - tiles of 2 weight rows x 4 activation rows keep 8 int32 and 8 float
 *     accumulators in registers: each activation chunk is loaded once for 2 rows,
 *     each code and scale vector once for 4.
 * Long rows go in segments of SEG super-blocks (the accumulators kept between
 * them), so any length runs here. Panels of fewer than 4 activation rows (decode)
 * go through the table's own vec_dot / vec_dot4. */
#include "kernels.h"

#if Q35_HAVE_X86
#include <string.h>

#include "blocks.h"
#include "arch/x86/avx512.h" /* opens the target region */

#define SEG 8   /* super-blocks per segment (2048 values) */
#define TOK 32  /* activation rows per pass */
#define ROWS 16 /* weight rows per pass: one per lane */
#define TM 2    /* tile: weight rows */
#define TN 4    /* tile: activation rows */

#define INLINE static inline __attribute__((always_inline))

enum { KIND_MINS, KIND_Q6, KIND_SIGNED }; /* Q4_K / Q5_K, Q6_K, IQ4_XS */

/* the per-row numbers of a pass's weight rows for one segment, row r in lane r */
typedef struct {
    float dw[SEG][ROWS], dmw[SEG][ROWS];
    int32_t pair[SEG][8][ROWS]; /* int16 pairs against bsum words (bsum_2k, bsum_2k+1):
                                   (m_k, m_k) for Q4_K / Q5_K, (sc_2k, sc_2k+1) for Q6_K */
} krows;

/* what each activation row of a pass needs, for its 16 weight rows (row r in lane r) */
typedef struct {
    float dd[TOK][SEG][ROWS];    /* dA * dW */
    int32_t off[TOK][SEG][ROWS]; /* Q6_K: -32 sum_j sc_j bsum_j */
    float accm[TOK][ROWS];       /* Q4_K / Q5_K: the mins chain, kept over the segments */
} kterms;

/* one weight row unpacked, one segment */
typedef struct {
    __m512i codes[4 * SEG];   /* 64-value chunk c of block b at 4b + c, as the dot's q (IQ4_XS: |k|) */
    __m512i scale[4 * SEG];   /* its int16 scale vector, as the dot's s */
    uint64_t neg[4 * SEG];    /* IQ4_XS: the lanes whose grid value is negative */
} krow;

/* the 6-bit scales (sc[0..7]) and mins (m[0..7]) of Q4_K / Q5_K, as k_scales_mins, 4 bytes at a time */
static inline void k_scales_mins4(const uint8_t *scales, uint32_t sc[2], uint32_t m[2]) {
    uint32_t u[3], w[4];
    memcpy(u, scales, 12);
    q35_k45_scale_words(u, w);
    sc[0] = w[0], sc[1] = w[1], m[0] = w[2], m[1] = w[3];
}

/* ------------------------------------------------------------------------- */
/* The per-row numbers (lane r = row r of the pass).                         */

/* the 8 int32 of v to k->pair[b][0..7][r] */
static inline void put_pairs(krows *k, int b, int r, __m256i v) {
    int32_t p[8];
    _mm256_storeu_si256((__m256i *)p, v);
    for (int j = 0; j < 8; j++) k->pair[b][j][r] = p[j];
}

static void row_numbers(const uint8_t *row, int64_t b0, int nbs, int r, int wtype, krows *k) {
    for (int b = 0; b < nbs; b++) {
        if (wtype == Q35_TYPE_Q4_K || wtype == Q35_TYPE_Q5_K) {
            const int64_t bstride = wtype == Q35_TYPE_Q4_K ? sizeof(block_q4_K) : sizeof(block_q5_K);
            const block_q4_K *hdr = (const block_q4_K *)(const void *)(row + (b0 + b) * bstride); /* same head */
            uint32_t sc[2], m[2];
            k_scales_mins4(hdr->scales, sc, m);
            k->dw[b][r] = h2f(hdr->d);
            k->dmw[b][r] = h2f(hdr->dmin);
            /* (m_j, m_j) as int16 pairs */
            const __m256i m32 = _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)m[1], (int)m[0]));
            put_pairs(k, b, r, _mm256_or_si256(m32, _mm256_slli_epi32(m32, 16)));
        } else if (wtype == Q35_TYPE_Q6_K) {
            const block_q6_K *x = (const block_q6_K *)(const void *)row + b0 + b;
            k->dw[b][r] = h2f(x->d);
            /* the 16 int8 scales as int16: int32 j is the pair (sc_2j, sc_2j+1) */
            put_pairs(k, b, r, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales)));
        } else {
            k->dw[b][r] = h2f(((const block_iq4_xs *)(const void *)row + b0 + b)->d);
        }
    }
}

/* dA dW, the Q6_K offsets and the mins chain of activation rows [0, tn) for all weight rows */
static void act_terms(const uint8_t *at, int64_t as, int tn, int64_t b0, int nbs, int first, const int kind,
                      const krows *k, kterms *e) {
    for (int t = 0; t < tn; t++) {
        const block_q8_K *y = (const block_q8_K *)(const void *)(at + t * as) + b0;
        __m512 am = first ? _mm512_setzero_ps() : _mm512_loadu_ps(e->accm[t]);
        for (int b = 0; b < nbs; b++) {
            const __m512 da = _mm512_set1_ps(y[b].d);
            _mm512_storeu_ps(e->dd[t][b], _mm512_mul_ps(da, _mm512_loadu_ps(k->dw[b]))); /* y->d * dw */
            if (kind == KIND_SIGNED) continue;
            int32_t wk[8]; /* the bsum words (bsum_2k, bsum_2k+1) */
            memcpy(wk, y[b].bsums, sizeof wk);
            __m512i s2[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()}; /* two chains: integers, any order */
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                s2[j & 1] = dpwssd(s2[j & 1], _mm512_loadu_si512((const void *)k->pair[b][j]), _mm512_set1_epi32(wk[j]));
            const __m512i s = _mm512_add_epi32(s2[0], s2[1]);
            if (kind == KIND_Q6) /* -32 * corr */
                _mm512_storeu_si512((void *)e->off[t][b], _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 5)));
            else /* accm - (y->d * dmw) * summ, one rounding */
                am = _mm512_fnmadd_ps(_mm512_mul_ps(da, _mm512_loadu_ps(k->dmw[b])), _mm512_cvtepi32_ps(s), am);
        }
        if (kind == KIND_MINS) _mm512_storeu_ps(e->accm[t], am);
    }
}

/* ------------------------------------------------------------------------- */
/* Unpacking a weight row: the very code of the dots' per-block preparation. */

static void unpack_k45(const uint8_t *row, int64_t bstride, int has_qh, int64_t b0, int nbs, krow *u) {
    const __m512i one = _mm512_set1_epi8(1);
    for (int b = 0; b < nbs; b++) {
        const uint8_t *blk = row + (b0 + b) * bstride;
        const block_q4_K *hdr = (const block_q4_K *)(const void *)blk;
        const uint8_t *qh = has_qh ? ((const block_q5_K *)(const void *)blk)->qh : NULL;
        const uint8_t *qs = has_qh ? ((const block_q5_K *)(const void *)blk)->qs : hdr->qs;
        uint32_t sc[2], m[2];
        k_scales_mins4(hdr->scales, sc, m);
        const __m512i sc8 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)sc[1], (int)sc[0])));
        const __m256i hbits = has_qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m512i q = nibbles_lohi(_mm256_loadu_si256((const __m256i *)(qs + 32 * c)));
            if (has_qh) {
                const __m512i h2 = _mm512_inserti64x4(_mm512_castsi256_si512(hbits), hbits, 1);
                const __m512i sh = _mm512_setr_epi64(2 * c, 2 * c, 2 * c, 2 * c, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1);
                const __m512i bit = _mm512_and_si512(_mm512_srlv_epi64(h2, sh), one);
                q = _mm512_or_si512(q, _mm512_slli_epi16(bit, 4));
            }
            u->codes[4 * b + c] = q;
            u->scale[4 * b + c] = scale_of_chunk(sc8, c);
        }
    }
}

static void unpack_q4_K(const uint8_t *row, int64_t b0, int nbs, krow *u) { unpack_k45(row, sizeof(block_q4_K), 0, b0, nbs, u); }
static void unpack_q5_K(const uint8_t *row, int64_t b0, int nbs, krow *u) { unpack_k45(row, sizeof(block_q5_K), 1, b0, nbs, u); }

static const int16_t q6k_idx[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};

static void unpack_q6_K(const uint8_t *row, int64_t b0, int nbs, krow *u) {
    const block_q6_K *x = (const block_q6_K *)(const void *)row + b0;
    const __m512i m15 = _mm512_set1_epi8(0xF), m3 = _mm512_set1_epi8(3);
    const __m512i idx0 = _mm512_loadu_si512((const void *)q6k_idx);
    for (int b = 0; b < nbs; b++) {
        const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales)));
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m512i l = _mm512_loadu_si512((const void *)(x[b].ql + 64 * h));
            const __m256i hq = _mm256_loadu_si256((const __m256i *)(x[b].qh + 32 * h));
            const __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(hq), hq, 1);
#pragma GCC unroll 2
            for (int part = 0; part < 2; part++) {
                const int k = 2 * h + part;
                const __m512i nib = part ? _mm512_and_si512(_mm512_srli_epi16(l, 4), m15) : _mm512_and_si512(l, m15);
                const int s0 = 4 * part, s1 = 4 * part + 2;
                const __m512i hi2 = _mm512_and_si512(_mm512_srlv_epi64(hh, _mm512_setr_epi64(s0, s0, s0, s0, s1, s1, s1, s1)), m3);
                u->codes[4 * b + k] = _mm512_or_si512(nib, _mm512_slli_epi16(hi2, 4));
                u->scale[4 * b + k] = _mm512_permutexvar_epi16(_mm512_add_epi16(idx0, _mm512_set1_epi16((short)(4 * k))), sc16);
            }
        }
    }
}

static void unpack_iq4_xs(const uint8_t *row, int64_t b0, int nbs, krow *u) {
    const block_iq4_xs *x = (const block_iq4_xs *)(const void *)row + b0;
    const __m512i grid = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)q35_kvalues_iq4nl));
    for (int b = 0; b < nbs; b++) {
        int ls[8];
        for (int ib = 0; ib < 8; ib++)
            ls[ib] = q35_iq4_xs_scale(&x[b], ib) - 32;
        for (int c = 0; c < 4; c++) {
            const uint8_t *qs = x[b].qs + 32 * c;
            const __m512i k = _mm512_shuffle_epi8(grid, nibbles_2x32(_mm_loadu_si128((const __m128i *)qs),
                                                                     _mm_loadu_si128((const __m128i *)(qs + 16))));
            u->codes[4 * b + c] = _mm512_abs_epi8(k); /* sign_pair's halves: |k| here, the mask for the activations */
            u->neg[4 * b + c] = (uint64_t)_mm512_movepi8_mask(k);
            u->scale[4 * b + c] = scale_pair16(ls[2 * c], ls[2 * c + 1]);
        }
    }
}

typedef void (*unpack_fn)(const uint8_t *row, int64_t b0, int nbs, krow *u);

/* ------------------------------------------------------------------------- */
/* The tile: RM weight rows (u[i], pass rows rr + i) by RN activation rows (t + j). */

typedef struct {
    const uint8_t *at;  /* the pass's activation rows */
    int64_t as, b0;
    int nbs, first, last, rr;
    const kterms *e;
    __m512 *state;      /* [ROWS][TOK] accumulators between segments */
    float *out;         /* the pass's output corner */
    int64_t ldy;
} kjob;

INLINE void ktile(const krow *const *u, const int RM, int t, const int RN, const int kind, const kjob *jb) {
    const kterms *e = jb->e;
    const int rr = jb->rr;
    const block_q8_K *y[TN];
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) y[j] = (const block_q8_K *)(const void *)(jb->at + (t + j) * jb->as) + jb->b0;
    __m512 acc[TM][TN];
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) acc[i][j] = jb->first ? _mm512_setzero_ps() : jb->state[(rr + i) * TOK + t + j];
    for (int b = 0; b < jb->nbs; b++) {
        __m512i sumi[TM][TN];
#pragma GCC unroll 4
        for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++)
                sumi[i][j] = kind == KIND_Q6 ? _mm512_mask_set1_epi32(_mm512_setzero_si512(), 1, e->off[t + j][b][rr + i])
                                             : _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m512i cw[TM], sc[TM];
            __mmask64 ng[TM];
#pragma GCC unroll 4
            for (int i = 0; i < RM; i++) {
                cw[i] = u[i]->codes[4 * b + c];
                sc[i] = u[i]->scale[4 * b + c];
                if (kind == KIND_SIGNED) ng[i] = (__mmask64)u[i]->neg[4 * b + c];
            }
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) {
                __m512i yv = _mm512_loadu_si512((const void *)(y[j][b].qs + 64 * c));
                Q35_IN_REG(yv);
#pragma GCC unroll 4
                for (int i = 0; i < RM; i++) {
                    const __m512i ys = kind == KIND_SIGNED ? _mm512_mask_sub_epi8(yv, ng[i], _mm512_setzero_si512(), yv) : yv;
                    sumi[i][j] = dpwssd(sumi[i][j], _mm512_maddubs_epi16(cw[i], ys), sc[i]);
                }
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++)
                acc[i][j] = _mm512_fmadd_ps(_mm512_set1_ps(e->dd[t + j][b][rr + i]), _mm512_cvtepi32_ps(sumi[i][j]), acc[i][j]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            if (!jb->last) {
                jb->state[(rr + i) * TOK + t + j] = acc[i][j];
                continue;
            }
            float v = q35_hsum512(acc[i][j]);
            if (kind == KIND_MINS) v = v + e->accm[t + j][rr + i];
            jb->out[(t + j) * jb->ldy + rr + i] = v;
        }
}

#define TILE_CASES(kind)                                                                        \
    switch (rm * 8 + rn) {                                                                      \
    case 2 * 8 + 4: ktile(u, 2, t, 4, kind, jb); break;                                         \
    case 2 * 8 + 3: ktile(u, 2, t, 3, kind, jb); break;                                         \
    case 2 * 8 + 2: ktile(u, 2, t, 2, kind, jb); break;                                         \
    case 2 * 8 + 1: ktile(u, 2, t, 1, kind, jb); break;                                         \
    case 1 * 8 + 4: ktile(u, 1, t, 4, kind, jb); break;                                         \
    case 1 * 8 + 3: ktile(u, 1, t, 3, kind, jb); break;                                         \
    case 1 * 8 + 2: ktile(u, 1, t, 2, kind, jb); break;                                         \
    default: ktile(u, 1, t, 1, kind, jb); break;                                                \
    }

static void tiles_mins(const krow *const *u, int rm, int t, int rn, const kjob *jb) { TILE_CASES(KIND_MINS) }
static void tiles_q6(const krow *const *u, int rm, int t, int rn, const kjob *jb) { TILE_CASES(KIND_Q6) }
static void tiles_signed(const krow *const *u, int rm, int t, int rn, const kjob *jb) { TILE_CASES(KIND_SIGNED) }

/* ------------------------------------------------------------------------- */
/* The panel driver.                                                         */

INLINE void kpanel(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *yo,
                   int64_t ldy, int wtype, unpack_fn unpack, const int kind) {
    if (nt < TN) { /* decode-sized: the dots themselves, nothing to share */
        q35_panel_by_dots(Q35_AVX512_TABLE.vec_dot[wtype], Q35_AVX512_TABLE.vec_dot4[wtype], w, ws, nr, a, as, nt,
                          n, yo, ldy);
        return;
    }
    const int64_t nb = n / QK_K;
    const int64_t nseg = (nb + SEG - 1) / SEG;
    krows k;
    kterms e;
    krow u[TM];
    __m512 state[nseg > 1 ? ROWS * TOK : 1]; /* only long rows keep accumulators between segments */
    for (int r0 = 0; r0 < nr; r0 += ROWS) {
        const int rn = nr - r0 < ROWS ? nr - r0 : ROWS;
        const uint8_t *wp = (const uint8_t *)w + r0 * ws;
        if (rn < ROWS) memset(&k, 0, sizeof k); /* idle lanes stay finite */
        for (int t0 = 0; t0 < nt; t0 += TOK) {
            const int tn = nt - t0 < TOK ? nt - t0 : TOK;
            kjob jb = {.at = (const uint8_t *)a + t0 * as, .as = as, .e = &e, .state = state, .out = yo + t0 * ldy + r0,
                       .ldy = ldy};
            for (int64_t s = 0; s < nseg; s++) {
                jb.b0 = s * SEG;
                jb.nbs = (int)(nb - jb.b0 < SEG ? nb - jb.b0 : SEG);
                jb.first = s == 0;
                jb.last = s == nseg - 1;
                for (int r = 0; r < rn; r++) row_numbers(wp + r * ws, jb.b0, jb.nbs, r, wtype, &k);
                act_terms(jb.at, as, tn, jb.b0, jb.nbs, jb.first, kind, &k, &e);
                for (int rr = 0; rr < rn; rr += TM) {
                    const int rm = rn - rr < TM ? rn - rr : TM;
                    for (int i = 0; i < rm; i++) unpack(wp + (rr + i) * ws, jb.b0, jb.nbs, &u[i]);
                    jb.rr = rr;
                    const krow *up[TM] = {&u[0], &u[1]};
                    for (int t = 0; t < tn; t += TN) {
                        const int tk = tn - t < TN ? tn - t : TN;
                        if (kind == KIND_MINS) tiles_mins(up, rm, t, tk, &jb);
                        else if (kind == KIND_Q6) tiles_q6(up, rm, t, tk, &jb);
                        else tiles_signed(up, rm, t, tk, &jb);
                    }
                }
            }
        }
    }
}

void Q35_AVX512_OWN(q35_gemm_q4_K)(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                                   float *yo, int64_t ldy) {
    kpanel(w, ws, nr, a, as, nt, n, yo, ldy, Q35_TYPE_Q4_K, unpack_q4_K, KIND_MINS);
}

void Q35_AVX512_OWN(q35_gemm_q5_K)(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                                   float *yo, int64_t ldy) {
    kpanel(w, ws, nr, a, as, nt, n, yo, ldy, Q35_TYPE_Q5_K, unpack_q5_K, KIND_MINS);
}

void Q35_AVX512_OWN(q35_gemm_q6_K)(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                                   float *yo, int64_t ldy) {
    kpanel(w, ws, nr, a, as, nt, n, yo, ldy, Q35_TYPE_Q6_K, unpack_q6_K, KIND_Q6);
}

void Q35_AVX512_OWN(q35_gemm_iq4_xs)(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                                     float *yo, int64_t ldy) {
    kpanel(w, ws, nr, a, as, nt, n, yo, ldy, Q35_TYPE_IQ4_XS, unpack_iq4_xs, KIND_SIGNED);
}

Q35_AVX512_END
#endif /* Q35_HAVE_X86 */

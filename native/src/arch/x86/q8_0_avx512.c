/* The Q8_0 panel on AVX512 (gemm entry of Q8_0 x Q8_0).
 *
 * Compiled twice, like kernels_avx512.c: as itself (q35_kernels_avx512) and from
 * q8_0_avx512vnni.c with Q35_AVX512_VNNI (q35_kernels_avx512vnni, with vpdpbusd).
 * Each value equals its own table's vec_dot bit for bit: per (weight row,
 * activation row) the float operations of q8_0_rows in kernels_avx512.c, in order,
 *
 *     per pair of blocks b, b+1:  acc = fma(d, float(p), acc)
 *         d: dW_b dA_b in lanes 0-7, dW_b+1 dA_b+1 in lanes 8-15 (0 for a missing last block)
 *         p: the int32 lane sums of sign_pair + dpbusd over the 64 quants, as there
 *     dot = hsum512(acc)
 *
 * What changes is where the work happens: each weight row is unpacked once per pass
 * (|qW| and its sign mask per block pair, dW of both blocks as a vector); each
 * activation row's scales once per pass (to floats); tiles of 4 weight rows x 4
 * activation rows keep 16 accumulators in registers, each activation pair loaded
 * once for 4 rows and each weight pair for 4. Long rows go in segments (the
 * accumulators kept between them). */
#include "kernels.h"

#if Q35_HAVE_X86
#include <string.h>

#include "blocks.h"
#include "arch/x86/avx512.h" /* opens the target region */

#define SEG 32  /* block pairs per segment (2048 values) */
#define TOK 32  /* activation rows per pass */
#define ROWS 16 /* weight rows per pass */
#define TM 4    /* tile: weight rows */
#define TN 4    /* tile: activation rows */

#define INLINE static inline __attribute__((always_inline))

typedef struct {
    __m512i aw[SEG];   /* |qW| of blocks 2p, 2p+1 (zero for a missing one) */
    __m512 dw[SEG];    /* dW of block 2p in lanes 0-7, of 2p+1 in lanes 8-15 (0 for a missing one) */
    uint64_t neg[SEG]; /* the lanes whose qW is negative */
} q8row;

typedef struct {
    const uint8_t *at; /* the pass's activation rows */
    int64_t as, nb;    /* nb: blocks of the whole row */
    int64_t p0;        /* first block pair of the segment */
    int nps, first, last, rr;
    const float (*da)[SEG][2]; /* [TOK][SEG][2]: dA of blocks 2p, 2p+1 (0 for a missing one) */
    __m512 *state;     /* [ROWS][TOK] accumulators between segments */
    float *out;
    int64_t ldy;
} qjob;

static void unpack_row(const block_q8_0 *x, int64_t nb, int64_t p0, int nps, q8row *u) {
    for (int p = 0; p < nps; p++) {
        const int64_t b = 2 * (p0 + p);
        const int two = b + 1 < nb;
        const __m512i w = two_blocks(x[b].qs, two ? x[b + 1].qs : NULL);
        u->aw[p] = _mm512_abs_epi8(w); /* sign_pair's halves: |qW| here, the mask for the activations */
        u->neg[p] = (uint64_t)_mm512_movepi8_mask(w);
        u->dw[p] = two_scales(h2f(x[b].d), two ? h2f(x[b + 1].d) : 0.0f);
    }
}

/* one block pair of the tile; two = 0: the last block of an odd row alone */
INLINE void pair_step(const q8row *const *u, const int RM, const block_q8_0 *const *y, const int RN, int t, int p,
                      int64_t b, const int two, const qjob *jb, __m512 (*acc)[TN]) {
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512i aw[TM];
    __mmask64 ng[TM];
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++) {
        aw[i] = u[i]->aw[p];
        ng[i] = (__mmask64)u[i]->neg[p];
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) {
        __m512i yv = two_blocks(y[j][b].qs, two ? y[j][b + 1].qs : NULL);
        Q35_IN_REG(yv);
        long long d2; /* dA of both blocks, one 8-byte load, then to lanes 0-7 and 8-15 */
        memcpy(&d2, jb->da[t + j][p], sizeof d2);
        const __m512 da = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_castsi128_ps(_mm_cvtsi64_si128(d2))));
#pragma GCC unroll 4
        for (int i = 0; i < RM; i++) {
            const __m512i sy = _mm512_mask_sub_epi8(yv, ng[i], _mm512_setzero_si512(), yv);
            const __m512i pr = dpbusd(_mm512_setzero_si512(), aw[i], sy);
            acc[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(u[i]->dw[p], da), _mm512_cvtepi32_ps(pr), acc[i][j]);
        }
    }
}

INLINE void qtile(const q8row *const *u, const int RM, int t, const int RN, const qjob *jb) {
    const int rr = jb->rr;
    const block_q8_0 *y[TN];
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) y[j] = (const block_q8_0 *)(const void *)(jb->at + (t + j) * jb->as);
    __m512 acc[TM][TN];
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) acc[i][j] = jb->first ? _mm512_setzero_ps() : jb->state[(rr + i) * TOK + t + j];
    int p = 0;
    for (; p < jb->nps && 2 * (jb->p0 + p) + 1 < jb->nb; p++) pair_step(u, RM, y, RN, t, p, 2 * (jb->p0 + p), 1, jb, acc);
    if (p < jb->nps) pair_step(u, RM, y, RN, t, p, 2 * (jb->p0 + p), 0, jb, acc);
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            if (jb->last) jb->out[(t + j) * jb->ldy + rr + i] = q35_hsum512(acc[i][j]);
            else jb->state[(rr + i) * TOK + t + j] = acc[i][j];
        }
}

#define QTILE_ROWS(RM)                                         \
    switch (rn) {                                              \
    case 4: qtile(u, RM, t, 4, jb); break;                     \
    case 3: qtile(u, RM, t, 3, jb); break;                     \
    case 2: qtile(u, RM, t, 2, jb); break;                     \
    default: qtile(u, RM, t, 1, jb); break;                    \
    }

static void tiles(const q8row *const *u, int rm, int t, int rn, const qjob *jb) {
    switch (rm) {
    case 4: QTILE_ROWS(4) break;
    case 3: QTILE_ROWS(3) break;
    case 2: QTILE_ROWS(2) break;
    default: QTILE_ROWS(1) break;
    }
}

void Q35_AVX512_OWN(q35_gemm_q8_0)(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n,
                                   float *yo, int64_t ldy) {
    if (nt < TN) { /* decode-sized: the dots themselves, nothing to share */
        q35_panel_by_dots(Q35_AVX512_TABLE.vec_dot[Q35_TYPE_Q8_0], Q35_AVX512_TABLE.vec_dot4[Q35_TYPE_Q8_0], w, ws, nr,
                          a, as, nt, n, yo, ldy);
        return;
    }
    const int64_t nb = n / QK8_0, npairs = (nb + 1) / 2, nseg = (npairs + SEG - 1) / SEG;
    q8row u[TM];
    float da[TOK][SEG][2];
    __m512 state[nseg > 1 ? ROWS * TOK : 1]; /* only long rows keep accumulators between segments */
    for (int r0 = 0; r0 < nr; r0 += ROWS) {
        const int rn = nr - r0 < ROWS ? nr - r0 : ROWS;
        const uint8_t *wp = (const uint8_t *)w + r0 * ws;
        for (int t0 = 0; t0 < nt; t0 += TOK) {
            const int tn = nt - t0 < TOK ? nt - t0 : TOK;
            qjob jb = {.at = (const uint8_t *)a + t0 * as, .as = as, .nb = nb, .da = (const float(*)[SEG][2])da,
                       .state = state, .out = yo + t0 * ldy + r0, .ldy = ldy};
            for (int64_t s = 0; s < nseg; s++) {
                jb.p0 = s * SEG;
                jb.nps = (int)(npairs - jb.p0 < SEG ? npairs - jb.p0 : SEG);
                jb.first = s == 0;
                jb.last = s == nseg - 1;
                for (int t = 0; t < tn; t++) {
                    const block_q8_0 *y = (const block_q8_0 *)(const void *)(jb.at + t * as);
                    for (int p = 0; p < jb.nps; p++) {
                        const int64_t b = 2 * (jb.p0 + p);
                        da[t][p][0] = h2f(y[b].d);
                        da[t][p][1] = b + 1 < nb ? h2f(y[b + 1].d) : 0.0f;
                    }
                }
                for (int rr = 0; rr < rn; rr += TM) {
                    const int rm = rn - rr < TM ? rn - rr : TM;
                    for (int i = 0; i < rm; i++)
                        unpack_row((const block_q8_0 *)(const void *)(wp + (rr + i) * ws), nb, jb.p0, jb.nps, &u[i]);
                    jb.rr = rr;
                    const q8row *up[TM] = {&u[0], &u[1], &u[2], &u[3]};
                    for (int t = 0; t < tn; t += TN) tiles(up, rm, t, tn - t < TN ? tn - t : TN, &jb);
                }
            }
        }
    }
}

Q35_AVX512_END
#endif /* Q35_HAVE_X86 */

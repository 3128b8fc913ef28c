/* The BF16 panel on AVX512 (gemm entry of BF16 x BF16; the VNNI table has no BF16
 * dot of its own and takes both from q35_kernels_avx512).
 *
 * Each value equals vec_dot (bf16_rows in kernels_avx512.c) bit for bit: per
 * (weight row, activation row) the same 4 accumulator chains, steps of 64 values
 * (chain 2h: the even values of half h, 2h+1: the odd ones), then masked steps of
 * 32 into chains 0 and 1, and the same final sums. Tiles of 2 weight rows x 3
 * activation rows hold their 24 chains in registers: each weight vector is widened
 * once for 3 activation rows, each activation vector once for 2 weight rows. */
#include "kernels.h"

#if Q35_HAVE_X86
#include "arch/x86/avx512.h" /* opens the target region */

#define TM 2 /* tile: weight rows */
#define TN 3 /* tile: activation rows */

static inline __attribute__((always_inline)) void btile(const uint16_t *const *x, const int RM, const uint16_t *const *y,
                                                        const int RN, int64_t n, float *out, int64_t ldy) {
    __m512 acc[TM][TN][4];
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++)
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) acc[i][j][k] = _mm512_setzero_ps();
    int64_t e = 0;
    for (; e + 64 <= n; e += 64)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m512 we[TM], wo[TM];
#pragma GCC unroll 4
            for (int i = 0; i < RM; i++) {
                const __m512i w = _mm512_loadu_si512((const void *)(x[i] + e + 32 * h));
                we[i] = bf16_even(w);
                wo[i] = bf16_odd(w);
            }
#pragma GCC unroll 4
            for (int j = 0; j < RN; j++) {
                const __m512i v = _mm512_loadu_si512((const void *)(y[j] + e + 32 * h));
                const __m512 ye = bf16_even(v), yo = bf16_odd(v);
#pragma GCC unroll 4
                for (int i = 0; i < RM; i++) {
                    acc[i][j][2 * h] = _mm512_fmadd_ps(we[i], ye, acc[i][j][2 * h]);
                    acc[i][j][2 * h + 1] = _mm512_fmadd_ps(wo[i], yo, acc[i][j][2 * h + 1]);
                }
            }
        }
    for (; e < n; e += 32) { /* masked lanes load as 0 and add nothing */
        const __mmask32 m = q35_mask32(n - e);
        __m512 we[TM], wo[TM];
#pragma GCC unroll 4
        for (int i = 0; i < RM; i++) {
            const __m512i w = _mm512_maskz_loadu_epi16(m, x[i] + e);
            we[i] = bf16_even(w);
            wo[i] = bf16_odd(w);
        }
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++) {
            const __m512i v = _mm512_maskz_loadu_epi16(m, y[j] + e);
            const __m512 ye = bf16_even(v), yo = bf16_odd(v);
#pragma GCC unroll 4
            for (int i = 0; i < RM; i++) {
                acc[i][j][0] = _mm512_fmadd_ps(we[i], ye, acc[i][j][0]);
                acc[i][j][1] = _mm512_fmadd_ps(wo[i], yo, acc[i][j][1]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
        for (int j = 0; j < RN; j++)
            out[j * ldy + i] = q35_hsum512(_mm512_add_ps(_mm512_add_ps(acc[i][j][0], acc[i][j][1]),
                                                         _mm512_add_ps(acc[i][j][2], acc[i][j][3])));
}

static void btiles(const uint16_t *const *x, int rm, const uint16_t *const *y, int rn, int64_t n, float *out,
                   int64_t ldy) {
    switch (rm * 8 + rn) {
    case 2 * 8 + 3: btile(x, 2, y, 3, n, out, ldy); break;
    case 2 * 8 + 2: btile(x, 2, y, 2, n, out, ldy); break;
    case 2 * 8 + 1: btile(x, 2, y, 1, n, out, ldy); break;
    case 1 * 8 + 3: btile(x, 1, y, 3, n, out, ldy); break;
    case 1 * 8 + 2: btile(x, 1, y, 2, n, out, ldy); break;
    default: btile(x, 1, y, 1, n, out, ldy); break;
    }
}

void q35_gemm_bf16_avx512(const void *w, int64_t ws, int nr, const void *a, int64_t as, int nt, int64_t n, float *yo,
                          int64_t ldy) {
    for (int t = 0; t < nt; t += TN) {
        const int rn = nt - t < TN ? nt - t : TN;
        const uint16_t *y[TN];
        for (int j = 0; j < rn; j++) y[j] = (const uint16_t *)(const void *)((const uint8_t *)a + (t + j) * as);
        for (int r = 0; r < nr; r += TM) {
            const int rm = nr - r < TM ? nr - r : TM;
            const uint16_t *x[TM];
            for (int i = 0; i < rm; i++) x[i] = (const uint16_t *)(const void *)((const uint8_t *)w + (r + i) * ws);
            btiles(x, rm, y, rn, n, yo + t * ldy + r, ldy);
        }
    }
}

Q35_AVX512_END
#endif /* Q35_HAVE_X86 */

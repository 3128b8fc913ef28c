/* The repacked BF16 product with vdpbf16ps (AVX512-BF16): the gemm_packed entry of BF16 that
 * dispatch puts in the AVX512 table where the CPU has the extension (repacked.h gives the layout
 * and the rule, which is this instruction's arithmetic).
 *
 * One register holds the same 2 positions of all 16 rows; the 2 activation values they meet are
 * broadcast, and vdpbf16ps adds both products into each row's lane, the odd position first. Up to
 * TN activation rows share each loaded weight vector; each row is one chain of vdpbf16ps (the rule
 * has one accumulator per row), so the tile's rows are what hides the instruction's latency. Not in
 * the SIMDe build (its emulation does not flush subnormals). */
#include "kernels.h"

#if Q35_HAVE_X86 && !defined(Q35_AVX512_SIMDE)
#include <immintrin.h>
#include <string.h>

#include "repacked.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")
#endif

#define TN 16 /* activation rows per tile: 16 chains of vdpbf16ps hide its latency */

/* the 2 bf16 values at p in every lane */
static inline __m512bh bcast_pair(const uint16_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return (__m512bh)_mm512_set1_epi32(v);
}

static inline __attribute__((always_inline)) void bf16_r16_tile(const block_bf16_r16 *x, int64_t nb, const uint8_t *a,
                                                                int64_t as, const int RN, float *y, int64_t ldy) {
    const uint16_t *q[TN];
#pragma GCC unroll 16
    for (int j = 0; j < RN; j++) q[j] = (const uint16_t *)(const void *)(a + j * as);
    __m512 acc[TN];
#pragma GCC unroll 16
    for (int j = 0; j < RN; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
#pragma GCC unroll 4
        for (int p = 0; p < 16; p++) {
            const __m512bh w = (__m512bh)_mm512_loadu_si512((const void *)x[b].w[p]);
#pragma GCC unroll 16
            for (int j = 0; j < RN; j++) acc[j] = _mm512_dpbf16_ps(acc[j], w, bcast_pair(q[j] + b * Q35_BF16_R16_ELEMS + 2 * p));
        }
#pragma GCC unroll 16
    for (int j = 0; j < RN; j++) _mm512_storeu_ps(y + j * ldy, acc[j]);
}

void q35_gemm_packed_bf16_avx512bf16(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                     int64_t ldy) {
    Q35_PACKED_DRIVER(bf16_r16_tile, block_bf16_r16, Q35_BF16_R16_ELEMS, TN)
}

/* two groups (32 rows) by up to TN2 activation rows: each broadcast pair meets both groups' weight
 * vectors, so a vdpbf16ps takes half a broadcast instead of one (the broadcasts, not the products,
 * bounded the one-group tile); every row still one chain in the same order: the same bits */
#define TN2 8

static inline __attribute__((always_inline)) void bf16_r16_tile2(const block_bf16_r16 *x, int64_t nb, const uint8_t *a,
                                                                 int64_t as, const int RN, float *y, int64_t ldy) {
    const block_bf16_r16 *x2 = x + nb; /* the next group */
    const uint16_t *q[TN2];
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) q[j] = (const uint16_t *)(const void *)(a + j * as);
    __m512 acc[TN2], acc2[TN2];
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) acc[j] = acc2[j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++)
#pragma GCC unroll 4
        for (int p = 0; p < 16; p++) {
            const __m512bh w = (__m512bh)_mm512_loadu_si512((const void *)x[b].w[p]);
            const __m512bh w2 = (__m512bh)_mm512_loadu_si512((const void *)x2[b].w[p]);
#pragma GCC unroll 8
            for (int j = 0; j < RN; j++) {
                const __m512bh ap = bcast_pair(q[j] + b * Q35_BF16_R16_ELEMS + 2 * p);
                acc[j] = _mm512_dpbf16_ps(acc[j], w, ap);
                acc2[j] = _mm512_dpbf16_ps(acc2[j], w2, ap);
            }
        }
#pragma GCC unroll 8
    for (int j = 0; j < RN; j++) {
        _mm512_storeu_ps(y + j * ldy, acc[j]);
        _mm512_storeu_ps(y + j * ldy + Q35_PACK_ROWS, acc2[j]);
    }
}

void q35_gemm_packed2_bf16_avx512bf16(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                      int64_t ldy) {
    Q35_PACKED_DRIVER(bf16_r16_tile2, block_bf16_r16, Q35_BF16_R16_ELEMS, TN2)
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* Q35_HAVE_X86 && !Q35_AVX512_SIMDE */

/* Repacked weight layouts: 16 rows of a tensor interleaved so that one vector
 * register holds the same 4 positions of all 16 rows (one 32-bit lane per row).
 * A panel then streams one contiguous buffer, broadcasts 4 activation bytes per
 * multiply-add and sums each row inside its own lane: no horizontal sums, no
 * per-panel unpacking, and the scales come one row per lane.
 *
 * The rule of a repacked product (every ISA, the scalar reference included, gives
 * the same bits): per row r and super-block b, with the integer sums exact,
 *
 *     isum = sum_j sc_j,r * sum_{l in sub-block j} q_l,r * qa_l
 *     msum = sum_j  m_j,r * (bsum_2j + bsum_2j+1)
 *     acc  = fma(da_b * d_b,r, float(isum), acc)
 *     acc  = fma(-(da_b * dmin_b,r), float(msum), acc)          (Q4_K)
 *
 * starting from acc = 0, super-blocks in order. This differs from the table's
 * vec_dot (which sums lanes at the end) by float rounding only, so a session runs
 * prefill and decode of a repacked tensor through this one product: logits still
 * never depend on batching. */
#ifndef Q35_REPACKED_H
#define Q35_REPACKED_H

#include <stdint.h>

#include "blocks.h"
#include "q35.h" /* Q35_PACK_ROWS */

/* Q4_K, 16 rows, one super-block (2368 bytes, a multiple of 64). */
typedef struct {
    uint16_t d[Q35_PACK_ROWS], dmin[Q35_PACK_ROWS]; /* f16, row r at r */
    uint8_t sc[8][Q35_PACK_ROWS];                    /* 6-bit scale of sub-block j, row r */
    uint8_t m[8][Q35_PACK_ROWS];                     /* 6-bit min of sub-block j, row r */
    /* codes: vector 4j + k holds sub-block j's positions 8k..8k+3 in its low nibbles and
     * 8k+4..8k+7 in its high nibbles, byte 4r + i = row r, position +i */
    uint8_t qs[32][64];
} block_q4_K_r16;
_Static_assert(sizeof(block_q4_K_r16) == 2368 && sizeof(block_q4_K_r16) % 64 == 0, "q4_K_r16 size");

/* Q5_K, 16 rows, one super-block (2880 bytes): Q4_K's layout for the low 4 bits, then the fifth
 * bits. qh vector j serves sub-block j: byte 4r + i holds in bit 2k the fifth bit of position
 * 32j + 8k + i (the low nibble of codes vector 4j + k), in bit 2k + 1 that of 32j + 8k + 4 + i (its
 * high nibble). The rule is Q4_K's with the codes 0..31. */
typedef struct {
    block_q4_K_r16 lo;   /* d, dmin, sc, m and the low 4 bits, as Q4_K */
    uint8_t qh[8][64];
} block_q5_K_r16;
_Static_assert(sizeof(block_q5_K_r16) == 2880 && sizeof(block_q5_K_r16) % 64 == 0, "q5_K_r16 size");

/* Q6_K, 16 rows, one super-block (3360 bytes: 16 stored blocks). Rule, per row and super-block,
 * with the codes q in 0..63 and the 16 sub-blocks j of 16 positions:
 *     isum = sum_j sc_j,r * (sum_{l in j} q_l,r qa_l  -  32 (bsum_j))
 *     acc  = fma(da_b * d_b,r, float(isum), acc) */
typedef struct {
    uint16_t d[Q35_PACK_ROWS];    /* f16 */
    int8_t sc[16][Q35_PACK_ROWS]; /* scale of sub-block j, row r */
    /* sub-block j (positions 16j..16j+15), its bytes in the order they are read: two vectors of
     * low 4 bits, ql[0] holding positions +0..3 (low nibbles) and +4..7 (high nibbles), ql[1]
     * +8..11 and +12..15, byte 4r + i = row r, position +i; then the high 2 bits, qh byte b
     * holding in bits 2e..2e+1 those of position +4e + (b % 4) of row b / 4 */
    struct {
        uint8_t ql[2][64];
        uint8_t qh[64];
    } sub[16];
} block_q6_K_r16;
_Static_assert(sizeof(block_q6_K_r16) == 3360, "q6_K_r16 size");

/* Q8_0, 16 rows, one block of 32 positions (544 bytes: 16 stored blocks). Rule, per row and block:
 *     acc = fma(da_b * d_b,r, float(sum_l q_l,r qa_l), acc) */
typedef struct {
    uint16_t d[Q35_PACK_ROWS]; /* f16 */
    int8_t qs[8][64];          /* vector k: positions 4k..4k+3, byte 4r + i = row r, position 4k + i */
} block_q8_0_r16;
_Static_assert(sizeof(block_q8_0_r16) == 544, "q8_0_r16 size");

/* IQ4_XS, 16 rows, one super-block (2208 bytes). Rule, per row and super-block, with k the grid
 * values (q35_kvalues_iq4nl) of the codes and ls the sub-block scales (-32..31):
 *     isum = sum_j ls_j,r * sum_{l in sub-block j} k_l,r qa_l
 *     acc  = fma(da_b * d_b,r, float(isum), acc) */
typedef struct {
    uint16_t d[Q35_PACK_ROWS];   /* f16 */
    int8_t ls[8][Q35_PACK_ROWS]; /* scale of sub-block j (32 positions), row r */
    uint8_t qs[32][64];          /* the 4-bit codes, laid out as block_q4_K_r16's qs */
} block_iq4_xs_r16;
_Static_assert(sizeof(block_iq4_xs_r16) == 2208, "iq4_xs_r16 size");

/* BF16, 16 rows, one block of 32 positions (1024 bytes). Rule, per row, the pairs of positions in
 * order, each pair its odd position first (VDPBF16PS: DAZ on the inputs, each sum rounded to
 * nearest even, FTZ on the results):
 *     acc = ftz(fma(daz(w_2p+1,r), daz(qa_2p+1), acc));  acc = ftz(fma(daz(w_2p,r), daz(qa_2p), acc))
 * The product is exact and is neither rounded nor flushed on its own, even below FLT_MIN: Zen 4's
 * vdpbf16ps does so (the self-test's case of subnormals and flushes, which a rule flushing the
 * products fails). */
typedef struct {
    uint16_t w[16][2 * Q35_PACK_ROWS]; /* vector p: element 2r + e = row r, position 2p + e */
} block_bf16_r16;
_Static_assert(sizeof(block_bf16_r16) == 1024, "bf16_r16 size");
#define Q35_BF16_R16_ELEMS 32

/* The lines Q35_PACKED_PREFETCH_AHEAD bytes past a repacked block, fetched toward the cache while it
 * is multiplied: AVX2's gemm_packed tiles of fewer tokens than their tile size (decode) call it once
 * per block, in half 0 (half 1 reads the group again from cache). There a decode-sized product
 * otherwise waits on each load of its stream (perf: 60% of the Q8_0 tile's decode samples on the
 * weight load; 0.8b Q8_0 tg64 at 2 threads 54 -> 61-63 t/s with 8 KB; 16 KB no better). Prefill tiles
 * reuse each group over many tokens and ran slower with it (pp512 0.966). AVX512's tiles, which read
 * a whole 64-byte vector at once, showed no change with it (tg64 0.970 [0.855, 1.040]): not used there
 * (their Q5_K tile prefetches toward L2: below). */
#define Q35_PACKED_PREFETCH_AHEAD 8192
static inline void q35_packed_prefetch_ahead(const void *block, int64_t bytes) {
    const uintptr_t p = (uintptr_t)block + Q35_PACKED_PREFETCH_AHEAD; /* may pass the buffer's end: a prefetch never faults */
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch((const void *)(p + (uintptr_t)o), 0, 3);
}

/* The same lines fetched toward L2 only (prefetcht1): AVX512's Q5_K decode tile, whose stream
 * otherwise runs at half of Q4_K's, and AVX2's K-quant and IQ4_XS tiles. One thread from DRAM
 * (`gemm_bench TYPE 1024 131072 1 ISA packed`, Zen 4): AVX512 Q5_K no prefetch 10.7-13.3 GMAC/s,
 * into L1 17-19, into L2 32-37 (at 4, 8, 16 or 32 KB ahead alike); the AVX512 Q4_K, Q6_K, Q8_0 and
 * IQ4_XS tiles ran 25-35% slower with it (none is best there). AVX2, L1 -> L2: Q4_K 21 -> 34, Q5_K
 * 18 -> 26, Q6_K 18 -> 25, IQ4_XS 23 -> 33; Q8_0 28 -> 23, so its tile keeps the L1 prefetch. */
static inline void q35_packed_prefetch_ahead_l2(const void *block, int64_t bytes) {
    const uintptr_t p = (uintptr_t)block + Q35_PACKED_PREFETCH_AHEAD;
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch((const void *)(p + (uintptr_t)o), 0, 2);
}

/* The body of a gemm_packed entry (parameters wp, a, as, nt, n, y, ldy): tiles of tn activation
 * rows, then one of 8 where tn > 8 and 8 are left, then the rest (1-7) in one tile.
 * tile(x, nb, a, as, RN, y, ldy) runs RN rows against the group's nb blocks; RN is a constant at
 * every call, so the tile unrolls (and a case of more rows than tn is never instantiated). */
#define Q35_PACKED_DRIVER(tile, block_type, block_elems, tn)                                         \
    const block_type *x = wp;                                                                     \
    const int64_t nb = n / (block_elems);                                                         \
    const uint8_t *at = a;                                                                        \
    int t = 0;                                                                                    \
    for (; t + (tn) <= nt; t += (tn)) tile(x, nb, at + t * as, as, (tn), y + t * ldy, ldy);       \
    if ((tn) > 8 && nt - t >= 8) {                                                                \
        tile(x, nb, at + t * as, as, (tn) > 8 ? 8 : 1, y + t * ldy, ldy);                         \
        t += 8;                                                                                   \
    }                                                                                             \
    switch (nt - t) {                                                                             \
    case 7: if (7 < (tn)) tile(x, nb, at + t * as, as, 7 < (tn) ? 7 : 1, y + t * ldy, ldy); break; \
    case 6: if (6 < (tn)) tile(x, nb, at + t * as, as, 6 < (tn) ? 6 : 1, y + t * ldy, ldy); break; \
    case 5: if (5 < (tn)) tile(x, nb, at + t * as, as, 5 < (tn) ? 5 : 1, y + t * ldy, ldy); break; \
    case 4: if (4 < (tn)) tile(x, nb, at + t * as, as, 4 < (tn) ? 4 : 1, y + t * ldy, ldy); break; \
    case 3: tile(x, nb, at + t * as, as, 3, y + t * ldy, ldy); break;                             \
    case 2: tile(x, nb, at + t * as, as, 2, y + t * ldy, ldy); break;                             \
    case 1: tile(x, nb, at + t * as, as, 1, y + t * ldy, ldy); break;                             \
    default: break;                                                                               \
    }

#endif

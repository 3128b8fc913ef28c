/* Weights into the repacked layouts of repacked.h (done once, when a session starts). */
#include <string.h>

#include "repacked.h"

/* the 4 low bits of position l (0..255) of a Q4_K / Q5_K block's qs: chunk l/64, low nibble for
 * l%64 < 32 */
static uint8_t k45_nibble(const uint8_t qs[QK_K / 2], int l) {
    const uint8_t byte = qs[32 * (l / 64) + l % 32];
    return (l % 64) < 32 ? byte & 0xF : byte >> 4;
}

/* row r of a Q4_K_r16 group from one stored row's d, dmin, packed scales and its 256 codes (the low
 * 4 bits of each go to the codes vectors) */
static void k45_row_into(block_q4_K_r16 *o, int r, uint16_t d, uint16_t dmin, const uint8_t scales[12],
                         const uint8_t codes[QK_K]) {
    o->d[r] = d;
    o->dmin[r] = dmin;
    uint32_t u[3], w[4]; /* bytes: the 8 scales, then the 8 mins */
    memcpy(u, scales, sizeof u);
    q35_k45_scale_words(u, w);
    for (int j = 0; j < 8; j++) {
        o->sc[j][r] = (uint8_t)(w[j / 4] >> (8 * (j % 4)));
        o->m[j][r] = (uint8_t)(w[2 + j / 4] >> (8 * (j % 4)));
    }
    for (int j = 0; j < 8; j++)
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < 4; i++) {
                const int l = 32 * j + 8 * k + i;
                o->qs[4 * j + k][4 * r + i] = (uint8_t)((codes[l] & 0xF) | (codes[l + 4] & 0xF) << 4);
            }
}

static void repack_q4_K_group(const block_q4_K *rows[Q35_PACK_ROWS], int64_t nb, block_q4_K_r16 *out) {
    uint8_t codes[QK_K];
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            const block_q4_K *x = rows[r] + b;
            for (int l = 0; l < QK_K; l++) codes[l] = k45_nibble(x->qs, l);
            k45_row_into(out + b, r, x->d, x->dmin, x->scales, codes);
        }
}

/* the code (0..31) of position l of a Q5_K block: Q4_K's nibble, the fifth bit in qh[l % 32] bit l / 32 */
static uint8_t q5_K_code(const block_q5_K *x, int l) {
    return (uint8_t)(k45_nibble(x->qs, l) | ((x->qh[l % 32] >> (l / 32)) & 1) << 4);
}

static void repack_q5_K_group(const block_q5_K *rows[Q35_PACK_ROWS], int64_t nb, block_q5_K_r16 *out) {
    uint8_t codes[QK_K];
    for (int64_t b = 0; b < nb; b++) {
        block_q5_K_r16 *o = out + b;
        memset(o->qh, 0, sizeof o->qh);
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            const block_q5_K *x = rows[r] + b;
            for (int l = 0; l < QK_K; l++) codes[l] = q5_K_code(x, l);
            k45_row_into(&o->lo, r, x->d, x->dmin, x->scales, codes);
            for (int j = 0; j < 8; j++)
                for (int k = 0; k < 4; k++)
                    for (int i = 0; i < 4; i++) {
                        const int l = 32 * j + 8 * k + i;
                        o->qh[j][4 * r + i] |= (uint8_t)((codes[l] >> 4) << (2 * k) | (codes[l + 4] >> 4) << (2 * k + 1));
                    }
        }
    }
}

/* the code (0..63) of position p of a Q6_K block: half p/128, quarter g of it (docs/qwen35.md §4.1) */
static uint8_t q6_K_code(const block_q6_K *x, int p) {
    const int h = p / 128, g = (p % 128) / 32, l = p % 32;
    const uint8_t lb = x->ql[64 * h + l + 32 * (g & 1)];
    const uint8_t low = g < 2 ? lb & 0xF : lb >> 4;
    return (uint8_t)(low | ((x->qh[32 * h + l] >> (2 * g)) & 3) << 4);
}

static void repack_q6_K_group(const block_q6_K *rows[Q35_PACK_ROWS], int64_t nb, block_q6_K_r16 *out) {
    for (int64_t b = 0; b < nb; b++) {
        block_q6_K_r16 *o = out + b;
        memset(o->sub, 0, sizeof o->sub);
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            const block_q6_K *x = rows[r] + b;
            o->d[r] = x->d;
            for (int j = 0; j < 16; j++) o->sc[j][r] = x->scales[j];
            for (int j = 0; j < 16; j++)
                for (int e = 0; e < 4; e++)   /* positions 16j + 4e + i */
                    for (int i = 0; i < 4; i++) {
                        const uint8_t q = q6_K_code(x, 16 * j + 4 * e + i);
                        o->sub[j].ql[e / 2][4 * r + i] |= (uint8_t)((q & 0xF) << (4 * (e % 2)));
                        o->sub[j].qh[4 * r + i] |= (uint8_t)((q >> 4) << (2 * e));
                    }
        }
    }
}

static void repack_iq4_xs_group(const block_iq4_xs *rows[Q35_PACK_ROWS], int64_t nb, block_iq4_xs_r16 *out) {
    for (int64_t b = 0; b < nb; b++) {
        block_iq4_xs_r16 *o = out + b;
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            const block_iq4_xs *x = rows[r] + b;
            o->d[r] = x->d;
            for (int j = 0; j < 8; j++)
                o->ls[j][r] = (int8_t)(q35_iq4_xs_scale(x, j) - 32);
            for (int v = 0; v < 32; v++)     /* vector v = 4j + k: positions 32j + 8k + i and + 4 */
                for (int i = 0; i < 4; i++) {
                    const int p = 32 * (v / 4) + 8 * (v % 4) + i, q = p + 4;
                    /* position 32j + l: byte 16j + l % 16 of qs, low nibble for l < 16 */
                    const uint8_t lo = (x->qs[16 * (p / 32) + p % 16] >> (4 * ((p % 32) / 16))) & 0xF;
                    const uint8_t hi = (x->qs[16 * (q / 32) + q % 16] >> (4 * ((q % 32) / 16))) & 0xF;
                    o->qs[v][4 * r + i] = (uint8_t)(lo | hi << 4);
                }
        }
    }
}

static void repack_q8_0_group(const block_q8_0 *rows[Q35_PACK_ROWS], int64_t nb, block_q8_0_r16 *out) {
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            out[b].d[r] = rows[r][b].d;
            for (int l = 0; l < QK8_0; l++) out[b].qs[l / 4][4 * r + l % 4] = rows[r][b].qs[l];
        }
}

static void repack_bf16_group(const uint16_t *rows[Q35_PACK_ROWS], int64_t nb, block_bf16_r16 *out) {
    for (int64_t b = 0; b < nb; b++)
        for (int p = 0; p < 16; p++)
            for (int r = 0; r < Q35_PACK_ROWS; r++)
                for (int e = 0; e < 2; e++) out[b].w[p][2 * r + e] = rows[r][b * Q35_BF16_R16_ELEMS + 2 * p + e];
}

int64_t q35_packed_bytes(int type, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0 || rows % Q35_PACK_ROWS) return 0;
    if (type == Q35_TYPE_BF16)
        return cols % Q35_BF16_R16_ELEMS ? 0 : rows / Q35_PACK_ROWS * (cols / Q35_BF16_R16_ELEMS) * (int64_t)sizeof(block_bf16_r16);
    if (type == Q35_TYPE_Q8_0)
        return cols % QK8_0 ? 0 : rows / Q35_PACK_ROWS * (cols / QK8_0) * (int64_t)sizeof(block_q8_0_r16);
    if (cols % QK_K) return 0;
    switch (type) {
    case Q35_TYPE_Q4_K: return rows / Q35_PACK_ROWS * (cols / QK_K) * (int64_t)sizeof(block_q4_K_r16);
    case Q35_TYPE_Q5_K: return rows / Q35_PACK_ROWS * (cols / QK_K) * (int64_t)sizeof(block_q5_K_r16);
    case Q35_TYPE_Q6_K: return rows / Q35_PACK_ROWS * (cols / QK_K) * (int64_t)sizeof(block_q6_K_r16);
    case Q35_TYPE_IQ4_XS: return rows / Q35_PACK_ROWS * (cols / QK_K) * (int64_t)sizeof(block_iq4_xs_r16);
    default: return 0;
    }
}

int q35_repack(int type, const void *w, int64_t rows, int64_t cols, void *out) {
    if (!q35_packed_bytes(type, rows, cols)) return -1;
    if (type == Q35_TYPE_BF16) {
        const int64_t nb = cols / Q35_BF16_R16_ELEMS;
        for (int64_t g = 0; g < rows / Q35_PACK_ROWS; g++) {
            const uint16_t *r16[Q35_PACK_ROWS];
            for (int r = 0; r < Q35_PACK_ROWS; r++) r16[r] = (const uint16_t *)w + (g * Q35_PACK_ROWS + r) * cols;
            repack_bf16_group(r16, nb, (block_bf16_r16 *)out + g * nb);
        }
        return 0;
    }
    const int64_t nb = cols / (type == Q35_TYPE_Q8_0 ? QK8_0 : QK_K);
    for (int64_t g = 0; g < rows / Q35_PACK_ROWS; g++) {
        if (type == Q35_TYPE_Q8_0) {
            const block_q8_0 *r16[Q35_PACK_ROWS];
            for (int r = 0; r < Q35_PACK_ROWS; r++) r16[r] = (const block_q8_0 *)w + (g * Q35_PACK_ROWS + r) * nb;
            repack_q8_0_group(r16, nb, (block_q8_0_r16 *)out + g * nb);
        } else if (type == Q35_TYPE_IQ4_XS) {
            const block_iq4_xs *r16[Q35_PACK_ROWS];
            for (int r = 0; r < Q35_PACK_ROWS; r++) r16[r] = (const block_iq4_xs *)w + (g * Q35_PACK_ROWS + r) * nb;
            repack_iq4_xs_group(r16, nb, (block_iq4_xs_r16 *)out + g * nb);
        } else if (type == Q35_TYPE_Q5_K) {
            const block_q5_K *r16[Q35_PACK_ROWS];
            for (int r = 0; r < Q35_PACK_ROWS; r++) r16[r] = (const block_q5_K *)w + (g * Q35_PACK_ROWS + r) * nb;
            repack_q5_K_group(r16, nb, (block_q5_K_r16 *)out + g * nb);
        } else if (type == Q35_TYPE_Q4_K) {
            const block_q4_K *r16[Q35_PACK_ROWS];
            for (int r = 0; r < Q35_PACK_ROWS; r++) r16[r] = (const block_q4_K *)w + (g * Q35_PACK_ROWS + r) * nb;
            repack_q4_K_group(r16, nb, (block_q4_K_r16 *)out + g * nb);
        } else {
            const block_q6_K *r16[Q35_PACK_ROWS];
            for (int r = 0; r < Q35_PACK_ROWS; r++) r16[r] = (const block_q6_K *)w + (g * Q35_PACK_ROWS + r) * nb;
            repack_q6_K_group(r16, nb, (block_q6_K_r16 *)out + g * nb);
        }
    }
    return 0;
}

/* Quantized block layouts, byte-identical to ggml (ggml-common.h).
 * QK_K = 256 elements per super-block for the K and IQ types. */
#ifndef Q35_BLOCKS_H
#define Q35_BLOCKS_H

#include <stdint.h>

#define QK4_0 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;          /* 18 B  */
typedef struct { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;               /* 34 B  */
typedef struct {                                                           /* 144 B */
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min) */
    uint8_t qs[QK_K / 2];
} block_q4_K;
typedef struct {                                                           /* 176 B */
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
typedef struct {                                                           /* 210 B */
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d; /* last */
} block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K; /* 292 B */
typedef struct {                                                           /* 136 B */
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
} block_iq4_xs;

/* FP4 (e2m1) codes, two a byte: MXFP4 shares one E8M0 scale over 32 values,
 * NVFP4 has one UE4M3 scale per 16 values (4 per 64-value block) */
#define QK_MXFP4 32
#define QK_NVFP4 64
#define QK_NVFP4_SUB 16
typedef struct { uint8_t e; uint8_t qs[QK_MXFP4 / 2]; } block_mxfp4;       /* 17 B  */
typedef struct { uint8_t d[QK_NVFP4 / QK_NVFP4_SUB]; uint8_t qs[QK_NVFP4 / 2]; } block_nvfp4; /* 36 B */

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(block_mxfp4) == 17, "mxfp4 size");
_Static_assert(sizeof(block_nvfp4) == 36, "nvfp4 size");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K size");
_Static_assert(sizeof(block_iq4_xs) == 136, "iq4_xs size");

/* the IQ4_NL / IQ4_XS non-linear grid */
static const int8_t q35_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

/* e2m1 values times two (ggml's kvalues_mxfp4): the scales below carry the 1/2 */
static const int8_t q35_kvalues_fp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

#endif

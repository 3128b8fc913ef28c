/* The scales of the FP4 block types (blocks.h), as ggml reads and writes them (ggml-impl.h):
 * E8M0 (MXFP4: a power of two) and UE4M3 (NVFP4: unsigned, 4 exponent bits with bias 7, 3
 * mantissa bits; 0x7F is NaN and reads as 0), both returned times 1/2 to go with the doubled
 * e2m1 values of q35_kvalues_fp4. */
#ifndef Q35_FP4_H
#define Q35_FP4_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 2^(e - 127) / 2; e < 2 gives a subnormal */
static inline float q35_e8m0_half(uint8_t e) {
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* 2^k as a float, for -126 <= k <= 127 */
static inline float q35_pow2f(int k) {
    const uint32_t bits = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ggml: exp 0 -> man * 2^-9, else (1 + man/8) * 2^(exp-7); then * 1/2. The same values as small
 * integers times powers of two (every step exact): man * 2^-10, or (8 + man) * 2^(exp-11). */
static inline float q35_ue4m3_half(uint8_t x) {
    if (x == 0 || x == 0x7F) return 0.0f;
    const int exp = (x >> 3) & 0xF, man = x & 7;
    return exp == 0 ? (float)man * q35_pow2f(-10) : (float)(8 + man) * q35_pow2f(exp - 11);
}

/* the UE4M3 code nearest x (x > 448 saturates to 0x7E, the largest finite value) */
static inline uint8_t q35_f32_to_ue4m3(float x) {
    if (!(x > 0.0f)) return 0;
    if (x > 448.0f) x = 448.0f;
    uint32_t bits;
    memcpy(&bits, &x, 4);
    const int e = (int)((bits >> 23) & 0xFF) - 127 + 7;
    if (e <= 0) { /* subnormal: man * 2^-9 */
        int man = (int)(x * 512.0f + 0.5f);
        if (man > 7) man = 7;
        return man < 1 ? 0 : (uint8_t)man;
    }
    if (e >= 15) return 0x7E;
    int man = (int)((bits >> 20) & 7) + (int)((bits >> 19) & 1); /* round half up on the 4th bit */
    int exp = e;
    if (man > 7) {
        man = 0;
        if (++exp >= 15) return 0x7E;
    }
    return (uint8_t)((exp << 3) | man);
}

#endif

/* IEEE binary16 and bfloat16 <-> float, portable C, round to nearest even. */
#ifndef Q35_FP16_H
#define Q35_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t q35_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float q35_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float q35_h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return q35_bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return q35_bits_f32(sign);
        /* subnormal: man * 2^-24 */
        float f = (float)man * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    return q35_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t q35_f2h(float f) {
    uint32_t u = q35_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0); /* inf / nan */
    if (a >= 0x477ff000u) return sign | 0x7c00;  /* rounds to >= 65520: overflow to inf */
    if (a < 0x38800000u) {                         /* below 2^-14: subnormal half or zero */
        /* value * 2^24 rounded to nearest even integer, computed exactly */
        uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
        if (e < 102) return sign;                  /* < 2^-25: rounds to 0 */
        uint32_t shift = 126 - e;                  /* m * 2^(e-150) * 2^24 = m >> (126-e) */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    /* normal: rebias exponent, round 13 dropped mantissa bits to nearest even */
    uint32_t r = a - 0x38000000u;                  /* exponent 127 -> 15 */
    r += 0xfff + ((r >> 13) & 1);
    return sign | (uint16_t)(r >> 13);
}

static inline float q35_bf2f(uint16_t h) { return q35_bits_f32((uint32_t)h << 16); }

static inline uint16_t q35_f2bf(float f) {
    uint32_t u = q35_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

#endif

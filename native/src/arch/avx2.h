/* Small AVX2 helpers shared by the AVX2 kernel files. Include after the file's
 * target pragma (avx2,fma,f16c), so that these compile for that target. */
#ifndef Q35_ARCH_AVX2_H
#define Q35_ARCH_AVX2_H

#include <immintrin.h>
#include <stdint.h>

/* the 8 lanes summed */
static inline float hsum_ps256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* one f16 to f32 through a general register: compilers turn _cvtsh_ss into a vpinsrw
 * from memory, which is slow on Zen */
static inline float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

#endif

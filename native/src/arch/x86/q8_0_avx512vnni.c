/* The Q8_0 panel of q8_0_avx512.c once more, with AVX512-VNNI (vpdpbusd): the gemm
 * entry of q35_kernels_avx512vnni, equal to its own dot. */
#define Q35_AVX512_VNNI 1
#include "q8_0_avx512.c"

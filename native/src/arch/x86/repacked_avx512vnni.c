/* The repacked products of repacked_avx512.c once more, with AVX512-VNNI (vpdpbusd,
 * vpdpwssd): the gemm_packed entries of q35_kernels_avx512vnni. Same bits. */
#define Q35_AVX512_VNNI 1
#include "repacked_avx512.c"

/* The K-quant and IQ4_XS panels of kquants_avx512.c once more, with AVX512-VNNI
 * (vpdpwssd): the gemm entries of q35_kernels_avx512vnni, equal to its own dots. */
#define Q35_AVX512_VNNI 1
#include "kquants_avx512.c"

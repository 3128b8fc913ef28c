/* The integer dots of kernels_avx512.c once more, with AVX512-VNNI
 * (vpdpbusd / vpdpwssd in place of vpmaddubsw + vpmaddwd + vpaddd): table
 * q35_kernels_avx512vnni, which dispatch lays over q35_kernels_avx512 on CPUs
 * that report avx512vnni. One source, two targets. */
#define Q35_AVX512_VNNI 1
#include "kernels_avx512.c"

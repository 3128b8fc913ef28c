/* Which instructions a repacked int8 product can add beside vpdpbusd zmm for free: eight
 * independent vpdpbusd chains per step, then one or two instructions of one kind; the rate of
 * vpdpbusd that is left says whether that kind shares its unit. On the Zen 4 VM of 2026-12-08
 * (3.64 G vpdpbusd/s alone): vfmadd231ps, vmulps, vpmulld and vpdpwssd each cost a whole vpdpbusd
 * slot (3.21-3.24, 8/9 of the rate), while two vpaddd, vcvtdq2ps, vcvtph2ps, vpmovzxbd, two vpshufb
 * and vpbroadcastd (from a register or memory) cost nothing (3.59-3.64; one earlier run gave 3.39
 * with the two vpaddd). So the scales multiply (vpmulld) and the float steps of a tile are what its
 * kernel pays for beside the products.
 *
 *     gcc -O2 -mavx512f -mavx512bw -mavx512vnni -o port_mix reports/comparisons/port_mix.c && ./port_mix
 *
 * AVX512-VNNI only (the program dies of an illegal instruction elsewhere). */
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define DP8                                                                                        \
    "vpdpbusd %%zmm1,%%zmm2,%%zmm10\n vpdpbusd %%zmm1,%%zmm2,%%zmm11\n vpdpbusd %%zmm1,%%zmm2,%%zmm12\n" \
    "vpdpbusd %%zmm1,%%zmm2,%%zmm13\n vpdpbusd %%zmm1,%%zmm2,%%zmm14\n vpdpbusd %%zmm1,%%zmm2,%%zmm15\n" \
    "vpdpbusd %%zmm1,%%zmm2,%%zmm16\n vpdpbusd %%zmm1,%%zmm2,%%zmm17\n"
#define CLOBBERS "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "eax"
#define STEPS 20000000L
/* 8 steps per loop pass, 8 vpdpbusd per step */
#define RATE(name, extra)                                                                          \
    do {                                                                                           \
        const double t0 = now();                                                                   \
        for (long i = 0; i < STEPS; i++)                                                           \
            __asm__ volatile(DP8 extra DP8 extra DP8 extra DP8 extra DP8 extra DP8 extra DP8 extra DP8 extra \
                             :                                                                     \
                             : "r"(buf)                                                            \
                             : CLOBBERS);                                                          \
        printf("%-28s %.2f G vpdpbusd/s\n", name, STEPS * 64 / (now() - t0) / 1e9);               \
    } while (0)

int main(void) {
    static int buf[16] __attribute__((aligned(64)));
    RATE("vpdpbusd alone", "");
    RATE("+ vfmadd231ps", "vfmadd231ps %%zmm1,%%zmm2,%%zmm18\n");
    RATE("+ vmulps", "vmulps %%zmm1,%%zmm2,%%zmm18\n");
    RATE("+ vpmulld", "vpmulld %%zmm1,%%zmm2,%%zmm18\n");
    RATE("+ vpdpwssd", "vpdpwssd %%zmm1,%%zmm2,%%zmm18\n");
    RATE("+ 2 vpaddd", "vpaddd %%zmm1,%%zmm2,%%zmm18\n vpaddd %%zmm1,%%zmm2,%%zmm19\n");
    RATE("+ vcvtdq2ps", "vcvtdq2ps %%zmm1,%%zmm18\n");
    RATE("+ vcvtph2ps", "vcvtph2ps %%ymm1,%%zmm18\n");
    RATE("+ vpmovzxbd", "vpmovzxbd %%xmm1,%%zmm18\n");
    RATE("+ 2 vpshufb", "vpshufb %%zmm1,%%zmm2,%%zmm18\n vpshufb %%zmm1,%%zmm2,%%zmm19\n");
    RATE("+ vpbroadcastd (register)", "vpbroadcastd %%eax,%%zmm18\n");
    RATE("+ vpbroadcastd (memory)", "vpbroadcastd (%0),%%zmm18\n");
    return 0;
}

/* The instruction bound of a product kernel: how many multiply-adds one core retires per second
 * with the instruction a kernel is built on, when nothing but that instruction runs (12
 * independent accumulator chains, registers only, inline assembly so no compiler spills or
 * reorders). A prefill product's GMAC/s (harness bench --profile) over this figure times the
 * threads is how close the kernel is to what the core can do.
 *
 *     gcc -O2 -o mac_peak reports/comparisons/mac_peak.c && ./mac_peak [seconds]
 *
 * MACs per instruction: vfmadd231ps 8 (ymm) / 16 (zmm); vdpbf16ps zmm 32 (bf16 pairs into f32);
 * vpdpbusd 32 (ymm) / 64 (zmm) (u8 x s8 quads into i32); the AVX2 int8 sequence (vpmaddubsw,
 * vpmaddwd by ones, vpaddd) 32 per three instructions. Instructions the CPU lacks are skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define REPS 50 /* blocks of 12 instructions per asm statement */
#define X12(ins, r, a, b)                                                                                      \
    ins " %%" r "14, %%" r "15, %%" r "0\n\t" ins " %%" r "14, %%" r "15, %%" r "1\n\t" ins " %%" r "14, %%" r   \
        "15, %%" r "2\n\t" ins " %%" r "14, %%" r "15, %%" r "3\n\t" ins " %%" r "14, %%" r "15, %%" r "4\n\t" ins \
        " %%" r "14, %%" r "15, %%" r "5\n\t" ins " %%" r "14, %%" r "15, %%" r "6\n\t" ins " %%" r "14, %%" r    \
        "15, %%" r "7\n\t" ins " %%" r "14, %%" r "15, %%" r "8\n\t" ins " %%" r "14, %%" r "15, %%" r "9\n\t" ins \
        " %%" r "14, %%" r "15, %%" r "10\n\t" ins " %%" r "14, %%" r "15, %%" r "11\n\t"

#define CLOBBER "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
                "xmm12", "xmm13", "xmm14", "xmm15"

/* every register of the loop zeroed first (zero inputs: no subnormal slow paths) */
#define ZERO_ALL "vzeroall\n\t"

#define LOOP(name, isa, body)                                                                              \
    __attribute__((target(isa), noinline)) static void name(long n) {                                     \
        __asm__ volatile(ZERO_ALL ::: CLOBBER);                                                              \
        for (long i = 0; i < n; i++) __asm__ volatile(".rept 50\n\t" body ".endr\n\t" ::: CLOBBER);      \
        __asm__ volatile("vzeroupper" ::: CLOBBER);                                                          \
    }

LOOP(fma_ymm, "avx2,fma", X12("vfmadd231ps", "ymm", 14, 15))
LOOP(fma_zmm, "avx512f", X12("vfmadd231ps", "zmm", 14, 15))
LOOP(bf16_zmm, "avx512f,avx512bf16", X12("vdpbf16ps", "zmm", 14, 15))
LOOP(vnni_ymm, "avx512f,avx512vl,avx512vnni", X12("vpdpbusd", "ymm", 14, 15))
LOOP(vnni_zmm, "avx512f,avx512vnni", X12("vpdpbusd", "zmm", 14, 15))

/* AVX2 int8: t = maddubs(a, b); t = madd(t, ones); acc += t, four independent streams
 * (ymm0-3 accumulators, ymm4-7 temporaries, ymm12 ones) */
#define INT8_BODY                                                                                            \
    "vpmaddubsw %%ymm14, %%ymm15, %%ymm4\n\t vpmaddubsw %%ymm14, %%ymm15, %%ymm5\n\t"                         \
    "vpmaddubsw %%ymm14, %%ymm15, %%ymm6\n\t vpmaddubsw %%ymm14, %%ymm15, %%ymm7\n\t"                         \
    "vpmaddwd %%ymm12, %%ymm4, %%ymm4\n\t vpmaddwd %%ymm12, %%ymm5, %%ymm5\n\t"                               \
    "vpmaddwd %%ymm12, %%ymm6, %%ymm6\n\t vpmaddwd %%ymm12, %%ymm7, %%ymm7\n\t"                               \
    "vpaddd %%ymm4, %%ymm0, %%ymm0\n\t vpaddd %%ymm5, %%ymm1, %%ymm1\n\t"                                     \
    "vpaddd %%ymm6, %%ymm2, %%ymm2\n\t vpaddd %%ymm7, %%ymm3, %%ymm3\n\t"
LOOP(int8_avx2, "avx2", INT8_BODY INT8_BODY INT8_BODY)

typedef struct {
    const char *name, *feature;
    void (*run)(long);
    double macs_per_block; /* multiply-adds per asm block (one .rept pass) */
} probe;

int main(int argc, char **argv) {
    const double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    const probe probes[] = {
        {"vfmadd231ps ymm (f32)", "fma", fma_ymm, 12 * 8},
        {"vfmadd231ps zmm (f32)", "avx512f", fma_zmm, 12 * 16},
        {"vdpbf16ps zmm (bf16)", "avx512bf16", bf16_zmm, 12 * 32},
        {"vpmaddubsw+vpmaddwd+vpaddd ymm (int8)", "avx2", int8_avx2, 12 * 32},
        {"vpdpbusd ymm (int8)", "avx512vnni", vnni_ymm, 12 * 32},
        {"vpdpbusd zmm (int8)", "avx512vnni", vnni_zmm, 12 * 64},
    };
    __builtin_cpu_init();
    printf("%-40s %12s\n", "instruction (one thread)", "GMAC/s");
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        const probe *p = &probes[i];
        int ok = 0;
        if (!__builtin_strcmp(p->feature, "fma")) ok = __builtin_cpu_supports("fma");
        else if (!__builtin_strcmp(p->feature, "avx2")) ok = __builtin_cpu_supports("avx2");
        else if (!__builtin_strcmp(p->feature, "avx512f")) ok = __builtin_cpu_supports("avx512f");
        else if (!__builtin_strcmp(p->feature, "avx512bf16")) ok = __builtin_cpu_supports("avx512bf16");
        else if (!__builtin_strcmp(p->feature, "avx512vnni")) ok = __builtin_cpu_supports("avx512vnni") &&
                                                                  __builtin_cpu_supports("avx512vl");
        if (!ok) {
            printf("%-40s %12s\n", p->name, "(not here)");
            continue;
        }
        long n = 1000;
        double t = now(), dt;
        p->run(n);                                   /* warm up, then grow n to about `seconds` */
        while ((dt = now() - t) < seconds / 4) { n *= 2; t = now(); p->run(n); }
        double best = 0;
        for (int rep = 0; rep < 5; rep++) {
            t = now();
            p->run(n);
            dt = now() - t;
            const double gmacs = n * REPS * p->macs_per_block / dt / 1e9;
            if (gmacs > best) best = gmacs;
        }
        printf("%-40s %12.1f\n", p->name, best);
    }
    return 0;
}

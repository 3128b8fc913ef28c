/* One weight row dot, ours against ggml's own, on this CPU: the same random blocks (n = 16384 values;
 * quantized, or random valid codes for the IQ types), the same Q8_K activations, best of 15 x 2000 calls.
 * Build from the repository root, with llama.cpp built from the llama-cpp-python 0.3.36 sdist in $LC:
 *   gcc -O2 -std=gnu11 -Inative/include -Inative/src -I$LC/ggml/include -o /tmp/ggml_dots \
 *       $(find native/src -name '*.c') reports/types/2026-12-06-iq/ggml_dots.c \
 *       $LC/build/ggml/src/libggml-cpu.a $LC/build/ggml/src/libggml-base.a -lstdc++ -lm -pthread -fopenmp
 *   /tmp/ggml_dots [ISA number: 1 avx2 (default), 2 avx512] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ggml-cpu.h"
#include "ggml.h"
#include "q35.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    static const struct { int type; const char *name; } TYPES[] = {
        {16, "iq2_xxs"}, {17, "iq2_xs"}, {22, "iq2_s"}, {18, "iq3_xxs"}, {21, "iq3_s"}, {19, "iq1_s"},
        {29, "iq1_m"},   {34, "tq1_0"},  {35, "tq2_0"}, {10, "q2_k"},    {11, "q3_k"},  {12, "q4_k"},
    };
    enum { N = 16384, CALLS = 2000, TRIALS = 15 };
    ggml_cpu_init();
    const q35_kernels *k = q35_kernels_for(argc > 1 ? atoi(argv[1]) : Q35_ISA_AVX2);
    if (!k) { fprintf(stderr, "ISA not supported here\n"); return 2; }
    float *x = malloc(N * sizeof *x);
    unsigned char *w = malloc(N * 4), *a = malloc(N * 2);
    for (int i = 0; i < N; i++) x[i] = (float)((i * 7919) % 1000 - 500) / 500.0f;
    q35_quantize(Q35_TYPE_Q8_K, x, a, 1, N);
    for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++) {
        const int type = TYPES[t].type;
        if (q35_quantize(type, x, w, 1, N)) q35_random_blocks(type, 1, 0.1f, w, N / 256);
        const struct ggml_type_traits_cpu *tr = ggml_get_type_traits_cpu((enum ggml_type)type);
        double best_ggml = 1e9, best_ours = 1e9;
        float sink = 0, theirs = 0;
        for (int trial = 0; trial < TRIALS; trial++) {
            const double t0 = now();
            for (int i = 0; i < CALLS; i++) { tr->vec_dot(N, &theirs, 0, w, 0, a, 0, 1); sink += theirs; }
            const double t1 = now();
            for (int i = 0; i < CALLS; i++) sink += k->vec_dot[type](w, a, N);
            const double t2 = now();
            if ((t1 - t0) / CALLS < best_ggml) best_ggml = (t1 - t0) / CALLS;
            if ((t2 - t1) / CALLS < best_ours) best_ours = (t2 - t1) / CALLS;
        }
        printf("%-8s ggml %6.0f ns  ours %6.0f ns  ours/ggml %.2f  values %.6g %.6g%s\n", TYPES[t].name,
               best_ggml * 1e9, best_ours * 1e9, best_ours / best_ggml, theirs, k->vec_dot[type](w, a, N),
               sink == 12345.0f ? " " : "");
    }
    return 0;
}

/* Our dot kernels and activation converters against ggml-cpu's own, bit for bit.
 *
 * For each weight type named on the command line: ROWS random rows of N values (quantized by our
 * quantizer, or random valid codes where we have none), activations quantized by ggml's from_float
 * for that type's vec_dot_type; prints "dot TYPE DIFFERING ROWS" where DIFFERING counts the rows on
 * which our variant's vec_dot and ggml's vec_dot give different float bits. Then, for Q8_0, Q8_1
 * and Q8_K, "act TYPE DIFFERING ROWS": rows whose activation blocks differ in any byte (ties at
 * .5 included). Built by tests/support/llama_cpp/build.py against llama.cpp's static ggml libraries.
 *
 *   ggml_bitwise ISA TYPE_ID [TYPE_ID ...]     (ISA: 0 scalar, 1 avx2, 2 avx512, 3 neon) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "ggml.h"
#include "q35.h"

enum { N = 1024, ROWS = 500 };

/* values in [-scale/2, scale/2); every third row on a 1/127 lattice, so that x / d lands on ties */
static void fill(float *x, int row, unsigned *seed) {
    const float scale = (float)(1 + row % 7);
    for (int i = 0; i < N; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        const float u = (float)(*seed >> 8) / 16777216.0f;
        x[i] = row % 3 == 0 ? (float)((int)(u * 255.0f) - 127) / 254.0f : (u - 0.5f) * scale;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ISA TYPE_ID [TYPE_ID ...]\n", argv[0]);
        return 2;
    }
    ggml_cpu_init();
    const q35_kernels *k = q35_kernels_for(atoi(argv[1]));
    if (!k) {
        fprintf(stderr, "ISA %s is not supported on this CPU\n", argv[1]);
        return 2;
    }
    static float x[N], wf[N];
    static unsigned char w[N * 4], a[N * 4], ours[N * 4];
    for (int i = 2; i < argc; i++) {
        const int t = atoi(argv[i]);
        const struct ggml_type_traits_cpu *tw = ggml_get_type_traits_cpu((enum ggml_type)t);
        const struct ggml_type_traits_cpu *ta = ggml_get_type_traits_cpu(tw->vec_dot_type);
        if (!k->vec_dot[t] || !tw->vec_dot || !ta->from_float) {
            printf("dot %d missing\n", t);
            continue;
        }
        unsigned seed = 12345u + (unsigned)t;
        int differ = 0;
        for (int r = 0; r < ROWS; r++) {
            fill(x, r, &seed);
            fill(wf, r + 1, &seed);
            ta->from_float(x, a, N);
            if (q35_quantize(t, wf, w, 1, N)) q35_random_blocks(t, (uint64_t)r, 0.1f, w, N / ggml_blck_size((enum ggml_type)t));
            float theirs, mine;
            tw->vec_dot(N, &theirs, 0, w, 0, a, 0, 1);
            mine = k->vec_dot[t](w, a, N);
            differ += memcmp(&theirs, &mine, sizeof mine) != 0;
        }
        printf("dot %d %d %d\n", t, differ, ROWS);
    }
    static const int acts[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q8_1, GGML_TYPE_Q8_K};
    for (size_t j = 0; j < sizeof acts / sizeof acts[0]; j++) {
        const int t = acts[j];
        if (!k->from_float[t]) continue;
        const size_t bytes = ggml_row_size((enum ggml_type)t, N);
        unsigned seed = 777u + (unsigned)t;
        int differ = 0;
        for (int r = 0; r < ROWS; r++) {
            fill(x, r, &seed);
            ggml_get_type_traits_cpu((enum ggml_type)t)->from_float(x, a, N);
            k->from_float[t](x, ours, N);
            differ += memcmp(a, ours, bytes) != 0;
        }
        printf("act %d %d %d\n", t, differ, ROWS);
    }
    return 0;
}

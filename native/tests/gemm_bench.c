/* One matrix product W x X the way the engine's prefill runs it on one thread: the
 * activation rows converted to the paired format, then panels of 16 weight rows by 32
 * tokens through the table's gemm entry (or its 4-token and single dots where a variant
 * has no panel kernel). Best of 10. The same shape as llama.cpp's product in
 * reports/comparisons/2026-11-23-session3-final-llama.cpp-0.8b/ggml_mul_mat.c:
 *   make -C native gemm-bench && $(BUILD)/gemm_bench TYPE K ROWS TOKENS [ISA] [packed]
 * TYPE is the ggml type number (8 Q8_0, 12 Q4_K, 14 Q6_K, 16 IQ2_XXS, 30 BF16, ...).
 * "packed": the weights repacked once (not timed), then the ISA's repacked product
 * (gemm_packed) over the same panels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "q35.h"

#define ROW_PANEL 16
#define TOK_PANEL 32

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int64_t row_bytes(int type, int64_t n) { return n / q35_type_block_elems(type) * q35_type_block_bytes(type); }

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s TYPE K ROWS TOKENS [scalar|avx2|avx512|neon]\n", argv[0]); return 2; }
    const int type = atoi(argv[1]), at = q35_act_type(type);
    const int64_t k = atoll(argv[2]), rows = atoll(argv[3]), tokens = atoll(argv[4]);
    int isa = q35_isa_best();
    for (int i = 0; argc > 5 && i < Q35_ISA_COUNT; i++)
        if (!strcmp(argv[5], q35_isa_name(i))) isa = i;
    const q35_kernels *kt = q35_kernels_for(isa);
    if (at < 0 || !kt || k <= 0 || rows <= 0 || tokens <= 0 || k % q35_type_block_elems(type) ||
        k % q35_type_block_elems(at)) {
        fprintf(stderr, "gemm_bench: unsupported type, ISA or sizes\n");
        return 2;
    }
    /* activation rows apart as the engine lays them out (matmul.c's act_stride: a multiple of 2 KiB
     * gets one more cache line) */
    const int64_t wrb = row_bytes(type, k), arb = row_bytes(at, k) + (row_bytes(at, k) % 2048 == 0 ? 64 : 0);
    float *wf = malloc(sizeof(float) * k * rows), *x = malloc(sizeof(float) * k * tokens);
    float *y = malloc(sizeof(float) * rows * tokens), v[TOK_PANEL * ROW_PANEL];
    uint8_t *w = malloc(wrb * rows), *a = malloc(arb * tokens);
    if (!wf || !x || !y || !w || !a) { fprintf(stderr, "gemm_bench: out of memory\n"); return 1; }
    srand(1);
    for (int64_t i = 0; i < k * rows; i++) wf[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int64_t i = 0; i < k * tokens; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    /* the IQ codebook types have no quantizer: random valid codes (the speed does not depend on them) */
    if (q35_quantize(type, wf, w, rows, k) && q35_random_blocks(type, 1, 0.3f, w, rows * k / q35_type_block_elems(type))) {
        fprintf(stderr, "gemm_bench: cannot quantize type %d\n", type);
        return 2;
    }
    const int packed = argc > 6 && !strcmp(argv[6], "packed");
    uint8_t *wp = NULL;
    if (packed) {
        const int64_t pb = q35_packed_bytes(type, rows, k);
        if (!pb || !kt->gemm_packed[type] || !(wp = aligned_alloc(64, (size_t)(pb + 63) / 64 * 64)) ||
            q35_repack(type, w, rows, k, wp)) {
            fprintf(stderr, "gemm_bench: no repacked product of type %d on %s for these sizes\n", type, q35_isa_name(isa));
            return 2;
        }
    }
    const int64_t group_bytes = packed ? q35_packed_bytes(type, ROW_PANEL, k) : 0;
    double best = 1e30;
    for (int rep = 0; rep < 10; rep++) {
        const double t0 = now();
        for (int64_t t = 0; t < tokens; t++) kt->from_float[at](x + t * k, a + t * arb, k);
        if (packed && kt->prepare_packed[type]) kt->prepare_packed[type](a, arb, (int)tokens, k);
        for (int64_t r0 = 0; r0 < rows; r0 += ROW_PANEL) {
            const int nr = rows - r0 < ROW_PANEL ? (int)(rows - r0) : ROW_PANEL;
            for (int64_t t0p = 0; t0p < tokens; t0p += TOK_PANEL) {
                const int nt = tokens - t0p < TOK_PANEL ? (int)(tokens - t0p) : TOK_PANEL;
                if (packed)
                    kt->gemm_packed[type](wp + r0 / ROW_PANEL * group_bytes, a + t0p * arb, arb, nt, k, v, ROW_PANEL);
                else if (kt->gemm[type])
                    kt->gemm[type](w + r0 * wrb, wrb, nr, a + t0p * arb, arb, nt, k, v, ROW_PANEL);
                else
                    q35_panel_by_dots(kt->vec_dot[type], kt->vec_dot4[type], w + r0 * wrb, wrb, nr, a + t0p * arb, arb, nt,
                                      k, v, ROW_PANEL);
                for (int t = 0; t < nt; t++) memcpy(y + (t0p + t) * rows + r0, v + t * ROW_PANEL, sizeof(float) * nr);
            }
        }
        if (now() - t0 < best) best = now() - t0;
    }
    printf("ours %s type %d, k %lld, rows %lld, tokens %lld, 1 thread: %.2f ms, %.1f GMAC/s (%s; y[0] %g)\n",
           q35_isa_name(isa), type, (long long)k, (long long)rows, (long long)tokens, best * 1e3,
           (double)k * rows * tokens / best / 1e9, packed ? "repacked" : kt->gemm[type] ? "panel kernel" : "4-token dots", y[0]);
    free(wp); free(wf); free(x); free(y); free(w); free(a);
    return 0;
}

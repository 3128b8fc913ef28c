/* Times one llama.cpp (ggml CPU backend) matrix product W x X, as its prefill runs it:
 * W [rows x k] in a quant type, X [tokens x k] f32, best of 10. Build against the
 * llama.cpp tree of the llama-cpp-python sdist (see README.md in this folder):
 *   ./ggml_mul_mat TYPE K ROWS TOKENS THREADS    (TYPE: ggml type number, 12 = Q4_K) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ggml-cpu.h"
#include "ggml.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: %s TYPE K ROWS TOKENS THREADS\n", argv[0]); return 2; }
    const int type = atoi(argv[1]), k = atoi(argv[2]), rows = atoi(argv[3]), tokens = atoi(argv[4]), threads = atoi(argv[5]);
    struct ggml_init_params ip = {(size_t)1 << 30, NULL, false};
    struct ggml_context *ctx = ggml_init(ip);
    struct ggml_tensor *w = ggml_new_tensor_2d(ctx, type, k, rows);
    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, tokens);
    float *wf = malloc(sizeof(float) * (size_t)k * rows);
    srand(1);
    for (long i = 0; i < (long)k * rows; i++) wf[i] = (float)rand() / RAND_MAX - 0.5f;
    ggml_quantize_chunk(type, wf, w->data, 0, rows, k, NULL);
    for (long i = 0; i < (long)k * tokens; i++) ((float *)x->data)[i] = (float)rand() / RAND_MAX - 0.5f;
    struct ggml_cgraph *g = ggml_new_graph(ctx);
    ggml_build_forward_expand(g, ggml_mul_mat(ctx, w, x));
    double best = 1e30;
    for (int rep = 0; rep < 10; rep++) {
        const double t0 = now();
        ggml_graph_compute_with_ctx(ctx, g, threads);
        if (now() - t0 < best) best = now() - t0;
    }
    printf("ggml type %d, k %d, rows %d, tokens %d, threads %d: %.2f ms, %.1f GMAC/s\n", type, k, rows, tokens, threads,
           best * 1e3, (double)k * rows * tokens / best / 1e9);
    free(wf);
    ggml_free(ctx);
    return 0;
}

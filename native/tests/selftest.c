/*
 * q35 self-test: built from native/ alone, no Python.
 *
 * Checks every kernel of every ISA variant this CPU can run against the scalar
 * variant on seeded random inputs, and the quantization formats (round trips
 * within each format's error). Prints one line per check; exits 0 when all
 * passed, 1 on any mismatch, 77 when a variant asked for with --isa cannot
 * run on this machine.
 *
 *   selftest [--isa scalar|avx2|avx512|neon|all]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q35.h"

static int failures = 0, checks = 0;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* xorshift64*, uniform in [-1, 1) */
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / (float)(1 << 23) - 1.0f;
}
static void fill(float *x, int64_t n, float scale) { for (int64_t i = 0; i < n; i++) x[i] = scale * frand(); }

static void report(const char *isa, const char *what, double err, double tol) {
    int ok = err <= tol;
    checks++;
    if (!ok) failures++;
    printf("%-7s %-36s max rel err %.2e (tol %.0e) %s\n", isa, what, err, tol, ok ? "ok" : "MISMATCH");
}

/* one ISA variant against the scalar reference */
static void check_variant(int isa) {
    const q35_kernels *ref = q35_kernels_for(Q35_ISA_SCALAR), *k = q35_kernels_for(isa);
    const char *name = q35_isa_name(isa);
    enum { N = 4096 + 29 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    double worst = 0;
    for (int rep = 0; rep < 50; rep++) {
        int64_t n = 1 + (int64_t)((frand() + 1.0f) * 0.5f * (N - 1)); /* odd lengths: tails */
        fill(a, n, 1.0f); fill(b, n, 1.0f);
        double want = ref->dot_f32(a, b, n), got = k->dot_f32(a, b, n), mag = 0;
        for (int64_t i = 0; i < n; i++) mag += fabs((double)a[i] * b[i]);
        worst = fmax(worst, fabs(got - want) / (mag + 1e-30));
    }
    report(name, "dot_f32 vs scalar", worst, 1e-6);

    /* Q8_0: quantization identical up to rare round-half ties, dots within float rounding */
    enum { NQ = 4096 };
    unsigned char qa[NQ / 32 * 34], qb[NQ / 32 * 34], qr[NQ / 32 * 34];
    int64_t differing = 0;
    worst = 0;
    for (int rep = 0; rep < 20; rep++) {
        fill(a, NQ, 3.0f); fill(b, NQ, 0.5f);
        k->from_float[Q35_TYPE_Q8_0](a, qa, NQ);
        ref->from_float[Q35_TYPE_Q8_0](a, qr, NQ);
        for (int i = 0; i < NQ / 32 * 34; i++) differing += qa[i] != qr[i];
        ref->from_float[Q35_TYPE_Q8_0](b, qb, NQ);
        double want = ref->vec_dot[Q35_TYPE_Q8_0](qr, qb, NQ), got = k->vec_dot[Q35_TYPE_Q8_0](qr, qb, NQ), mag = 0;
        for (int i = 0; i < NQ; i++) mag += fabs((double)a[i] * b[i]);
        worst = fmax(worst, fabs(got - want) / (mag + 1e-30));
    }
    report(name, "quantize_row_q8_0 vs scalar (bytes)", (double)differing / (20.0 * NQ), 1e-3);
    report(name, "dot_q8_0_q8_0 vs scalar", worst, 1e-6);

    /* activation converters: the same bytes as the scalar variant. F16/BF16 round to nearest
     * even; Q8_K rounds the same float products half to even, so AVX2 matches byte for byte,
     * but a variant is allowed rare differences at exact ties, as for Q8_0. */
    static const struct { int type; const char *name; } acts[] = {
        {Q35_TYPE_F32, "F32"}, {Q35_TYPE_F16, "F16"}, {Q35_TYPE_BF16, "BF16"}, {Q35_TYPE_Q8_K, "Q8_K"},
    };
    unsigned char *ya = malloc(N * 4), *yr = malloc(N * 4), *wq = malloc(N * 4);
    float *b4 = malloc(4 * N * sizeof *b4);
    unsigned char *y4 = malloc(4 * N * 4);
    for (size_t t = 0; t < sizeof acts / sizeof acts[0]; t++) {
        int64_t differing_bytes = 0, total = 0;
        for (int rep = 0; rep < 10; rep++) {
            int64_t n = acts[t].type == Q35_TYPE_Q8_K ? 256 * (1 + rep % 16) : 1 + (int64_t)((frand() + 1.0f) * 0.5f * (N - 1));
            fill(a, n, rep % 3 == 0 ? 1e-3f : 5.0f);
            if (rep == 1) memset(a, 0, 256 * sizeof *a); /* an all-zero block */
            int64_t bytes = n / q35_type_block_elems(acts[t].type) * q35_type_block_bytes(acts[t].type);
            k->from_float[acts[t].type](a, ya, n);
            ref->from_float[acts[t].type](a, yr, n);
            for (int64_t i = 0; i < bytes; i++) differing_bytes += ya[i] != yr[i];
            total += bytes;
        }
        char what[64];
        snprintf(what, sizeof what, "from_float %s vs scalar (bytes)", acts[t].name);
        report(name, what, (double)differing_bytes / (double)total, acts[t].type == Q35_TYPE_Q8_K ? 1e-3 : 0.0);
    }

    /* dot products of every weight type with its activation format */
    static const struct { int type; const char *name; } wts[] = {
        {Q35_TYPE_F32, "F32 x F32"},     {Q35_TYPE_F16, "F16 x F16"},     {Q35_TYPE_BF16, "BF16 x BF16"},
        {Q35_TYPE_Q4_0, "Q4_0 x Q8_0"},  {Q35_TYPE_Q4_K, "Q4_K x Q8_K"},  {Q35_TYPE_Q5_K, "Q5_K x Q8_K"},
        {Q35_TYPE_Q6_K, "Q6_K x Q8_K"},  {Q35_TYPE_IQ4_XS, "IQ4_XS x Q8_K"}, {Q35_TYPE_Q8_0, "Q8_0 x Q8_0"},
    };
    for (size_t t = 0; t < sizeof wts / sizeof wts[0]; t++) {
        const int wt = wts[t].type, at = q35_act_type(wt);
        const int64_t blk = q35_type_block_elems(wt) > q35_type_block_elems(at) ? q35_type_block_elems(wt)
                                                                                : q35_type_block_elems(at);
        worst = 0;
        for (int rep = 0; rep < 20; rep++) {
            /* float rows: any length (SIMD tails); block rows: up to 16 super-blocks */
            int64_t n = blk == 1 ? 1 + (int64_t)((frand() + 1.0f) * 0.5f * (N - 1)) : blk * (1 + rep % (4096 / blk));
            fill(a, n, 0.1f); fill(b, n, 2.0f);
            if (q35_quantize(wt, a, wq, 1, n)) { worst = INFINITY; break; }
            ref->from_float[at](b, yr, n);
            double want = ref->vec_dot[wt](wq, yr, n), got = k->vec_dot[wt](wq, yr, n), mag = 0;
            for (int64_t i = 0; i < n; i++) mag += fabs((double)a[i] * b[i]);
            worst = fmax(worst, fabs(got - want) / (mag + 1e-30));
        }
        char what[64];
        snprintf(what, sizeof what, "vec_dot %s vs scalar", wts[t].name);
        report(name, what, worst, 1e-5);

        /* vec_dot4: one weight row with 4 activation rows at a stride, against 4 scalar vec_dots.
         * A variant may have none for a type (its matmul then runs vec_dot per token). */
        if (!k->vec_dot4[wt]) {
            printf("%-7s vec_dot4 %-26s not provided (matmul uses vec_dot per token)\n", name, wts[t].name);
            continue;
        }
        worst = 0;
        for (int rep = 0; rep < 10; rep++) {
            int64_t n = blk == 1 ? 1 + (int64_t)((frand() + 1.0f) * 0.5f * (N - 1)) : blk * (1 + (3 * rep) % (4096 / blk));
            const int64_t stride = n / q35_type_block_elems(at) * q35_type_block_bytes(at);
            fill(a, n, 0.1f);
            if (q35_quantize(wt, a, wq, 1, n)) { worst = INFINITY; break; }
            for (int r = 0; r < 4; r++) {
                fill(b4 + r * N, n, 2.0f);
                ref->from_float[at](b4 + r * N, y4 + r * stride, n);
            }
            float got[4];
            k->vec_dot4[wt](wq, y4, stride, n, got);
            for (int r = 0; r < 4; r++) {
                double want = ref->vec_dot[wt](wq, y4 + r * stride, n), mag = 0;
                for (int64_t i = 0; i < n; i++) mag += fabs((double)a[i] * b4[r * N + i]);
                worst = fmax(worst, fabs(got[r] - want) / (mag + 1e-30));
            }
        }
        snprintf(what, sizeof what, "vec_dot4 %s vs scalar", wts[t].name);
        report(name, what, worst, 1e-5);
    }
    free(b4); free(y4);
    free(ya); free(yr); free(wq);
    free(a); free(b);
}

/* quantization formats: round trip error relative to the signal RMS */
static void check_formats(void) {
    static const struct { int type; const char *name; double tol; } fmts[] = {
        {Q35_TYPE_F16, "F16", 1e-3}, {Q35_TYPE_BF16, "BF16", 5e-3}, {Q35_TYPE_Q8_0, "Q8_0", 1e-2},
        {Q35_TYPE_Q6_K, "Q6_K", 4e-2}, {Q35_TYPE_Q5_K, "Q5_K", 6e-2}, {Q35_TYPE_Q4_K, "Q4_K", 0.12},
        {Q35_TYPE_Q4_0, "Q4_0", 0.15}, {Q35_TYPE_IQ4_XS, "IQ4_XS", 0.12}, {Q35_TYPE_Q8_K, "Q8_K", 1e-2},
    };
    enum { ROWS = 8, COLS = 1024 };
    float *x = malloc(ROWS * COLS * sizeof *x), *y = malloc(ROWS * COLS * sizeof *y);
    unsigned char *q = malloc(ROWS * COLS * 4);
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        for (int i = 0; i < ROWS * COLS; i++) /* roughly Gaussian: sum of uniforms */
            x[i] = frand() + frand() + frand() + frand();
        double se = 0, ss = 0;
        if (q35_quantize(fmts[f].type, x, q, ROWS, COLS) || q35_dequantize(fmts[f].type, q, y, ROWS, COLS)) {
            report("format", fmts[f].name, INFINITY, fmts[f].tol);
            continue;
        }
        for (int i = 0; i < ROWS * COLS; i++) { se += (x[i] - y[i]) * (double)(x[i] - y[i]); ss += (double)x[i] * x[i]; }
        char what[64];
        snprintf(what, sizeof what, "%s quantize/dequantize round trip", fmts[f].name);
        report("format", what, sqrt(se / ss), fmts[f].tol);
    }
    free(x); free(y); free(q);
}

int main(int argc, char **argv) {
    const char *want = "all";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--isa") && i + 1 < argc) want = argv[++i];
        else { fprintf(stderr, "usage: %s [--isa scalar|avx2|avx512|neon|all]\n", argv[0]); return 2; }
    }
    q35_cpu_features f;
    q35_cpu_detect(&f);
    printf("cpu: avx2=%d fma=%d f16c=%d avx512f=%d avx512bw=%d avx512vl=%d avx512vnni=%d neon=%d dotprod=%d\n",
           f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512vl, f.avx512vnni, f.neon, f.dotprod);
    int ran = 0;
    for (int isa = 0; isa < Q35_ISA_COUNT; isa++) {
        const char *name = q35_isa_name(isa);
        if (strcmp(want, "all") && strcmp(want, name)) continue;
        if (!q35_isa_supported(isa)) {
            printf("%-7s skipped: %s\n", name, q35_isa_compiled(isa) ? "this CPU cannot run it" : "not compiled for this target");
            if (strcmp(want, "all")) return 77;
            continue;
        }
        if (isa != Q35_ISA_SCALAR) check_variant(isa);
        ran++;
    }
    if (!ran) { fprintf(stderr, "unknown ISA %s\n", want); return 2; }
    check_formats();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

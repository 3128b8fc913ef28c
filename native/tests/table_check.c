/*
 * q35 table check: the kernel-table entries that selftest.c does not check
 * yet, for every ISA variant this CPU runs, against the scalar variant on
 * seeded random inputs. Built from native/ alone (no Python), like selftest.c,
 * and written the same way (one function per group, one report line per
 * check) so that its checks can move into selftest.c.
 *
 *   - the float row kernels: silu, swiglu, axpy, fmadd, scale, rmsnorm,
 *     l2norm, rope, softmax, sigmoid_mul (odd lengths: vector tails run too);
 *   - the three delta-net algorithms (recurrent and chunked run on the table's
 *     vector primitives, fused is its own entry), head sizes on and off the
 *     vector width;
 *   - vec_dot4 equal to vec_dot bit for bit, for every weight type (the engine
 *     relies on it: logits do not depend on how tokens are batched).
 *
 * Prints which table each variant resolved to (e.g. "neon+dotprod"); exits 0
 * when all passed, 1 on any mismatch, 77 when a variant asked for with --isa
 * cannot run here.
 *
 *   table_check [--isa scalar|avx2|avx512|neon|all]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q35.h"

static int failures = 0, checks = 0;

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
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

/* max |got - want| over max |want| */
static double rel_err(const float *got, const float *want, int64_t n) {
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)got[i] - want[i]));
        m = fmax(m, fabs((double)want[i]));
    }
    return e / (m + 1e-30);
}

/* max over i of |got_i - want_i| / |want_i|: for results that keep their
 * relative precision everywhere (exp-based ones) */
static double elem_rel_err(const float *got, const float *want, int64_t n) {
    double e = 0;
    for (int64_t i = 0; i < n; i++) e = fmax(e, fabs((double)got[i] - want[i]) / (fabs((double)want[i]) + 1e-37));
    return e;
}

/* ------------------------------------------------------------------------- */
/* The float row kernels: the exp-based ones (silu, swiglu, softmax,        */
/* sigmoid_mul) element by element, the others against the row's largest    */
/* value (they may differ by an FMA's rounding, which cancellation inflates). */

enum { N = 1000 + 13 };

static void check_vecops(int isa) {
    const q35_kernels *ref = q35_kernels_for(Q35_ISA_SCALAR), *k = q35_kernels_for(isa);
    const char *name = q35_isa_name(isa);
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *z = malloc(N * sizeof *z);
    float *got = malloc(N * sizeof *got), *want = malloc(N * sizeof *want);
    double err[10] = {0};
    enum { SILU, SWIGLU, AXPY, FMADD, SCALE, RMSNORM, L2NORM, ROPE, SOFTMAX, SIGMUL };
    static const char *const what[10] = {"silu", "swiglu", "axpy", "fmadd", "scale",
                                         "rmsnorm", "l2norm", "rope", "softmax", "sigmoid_mul"};
    static const double tol[10] = {2e-6, 2e-6, 1e-6, 1e-6, 1e-7, 1e-6, 1e-6, 1e-6, 2e-6, 2e-6};
    static const int per_element[10] = {1, 1, 0, 0, 0, 0, 0, 0, 1, 1};
    for (int rep = 0; rep < 20; rep++) {
        const int64_t n = rep < 8 ? 1 + rep : 1 + (int64_t)((frand() + 1.0f) * 0.5f * (N - 1));
        fill(x, n, 20.0f); fill(y, n, 4.0f); fill(z, n, 2.0f);
        const float a = frand() * 3.0f;
#define ELEMENTWISE(op, call_got, call_want)                                                         \
        memcpy(got, x, n * sizeof *x); memcpy(want, x, n * sizeof *x);                               \
        call_got; call_want;                                                                         \
        err[op] = fmax(err[op], per_element[op] ? elem_rel_err(got, want, n) : rel_err(got, want, n));
        ELEMENTWISE(SILU, k->silu_f32(got, n), ref->silu_f32(want, n))
        ELEMENTWISE(SWIGLU, k->swiglu_f32(got, y, n), ref->swiglu_f32(want, y, n))
        ELEMENTWISE(AXPY, k->axpy_f32(got, a, y, n), ref->axpy_f32(want, a, y, n))
        ELEMENTWISE(FMADD, k->fmadd_f32(got, y, z, n), ref->fmadd_f32(want, y, z, n))
        ELEMENTWISE(SCALE, k->scale_f32(got, a, n), ref->scale_f32(want, a, n))
        ELEMENTWISE(RMSNORM, k->rmsnorm_f32(got, y, got, n, 1e-6f), ref->rmsnorm_f32(want, y, want, n, 1e-6f))
        ELEMENTWISE(L2NORM, k->l2norm_f32(got, n, 1e-6f), ref->l2norm_f32(want, n, 1e-6f))
        ELEMENTWISE(SOFTMAX, k->softmax_f32(got, n), ref->softmax_f32(want, n))
        ELEMENTWISE(SIGMUL, k->sigmoid_mul_f32(got, y, n), ref->sigmoid_mul_f32(want, y, n))
        /* rope: n_rot even, up to n; the table row holds a real cos/sin pair per i */
        const int n_rot = 2 * (int)(n / 2 < 128 ? n / 2 : 128);
        for (int i = 0; i < n_rot / 2; i++) {
            const float ang = (float)(rep + 1) * powf(1e4f, -2.0f * i / (n_rot ? n_rot : 1));
            z[i] = cosf(ang);
            z[n_rot / 2 + i] = sinf(ang);
        }
        ELEMENTWISE(ROPE, k->rope_f32(got, z, n_rot), ref->rope_f32(want, z, n_rot))
#undef ELEMENTWISE
    }
    for (int op = 0; op < 10; op++) {
        char w[64];
        snprintf(w, sizeof w, "%s vs scalar", what[op]);
        report(name, w, err[op], tol[op]);
    }
    free(x); free(y); free(z); free(got); free(want);
}

/* ------------------------------------------------------------------------- */
/* The delta-net algorithms: one head over T tokens, variant vs scalar.      */

static void l2normalize(float *x, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    for (int i = 0; i < n; i++) x[i] = (float)(x[i] / sqrt(ss + 1e-12));
}

static void check_deltanet(int isa) {
    const char *name = q35_isa_name(isa);
    static const struct { int algo; const char *name; } algos[] = {
        {Q35_DN_RECURRENT, "recurrent"}, {Q35_DN_FUSED, "fused"}, {Q35_DN_CHUNKED, "chunked"},
    };
    static const int shapes[][3] = {{1, 32, 32}, {70, 128, 128}, {9, 24, 40}, {5, 16, 20}}; /* T, Sk, Sv */
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
        double worst = 0;
        int failed_call = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int T = shapes[s][0], Sk = shapes[s][1], Sv = shapes[s][2];
            float *q = malloc(sizeof(float) * T * Sk), *kk = malloc(sizeof(float) * T * Sk);
            float *v = malloc(sizeof(float) * T * Sv), *g = malloc(sizeof(float) * T), *beta = malloc(sizeof(float) * T);
            float *S0 = malloc(sizeof(float) * Sk * Sv), *S1 = malloc(sizeof(float) * Sk * Sv);
            float *o0 = malloc(sizeof(float) * T * Sv), *o1 = malloc(sizeof(float) * T * Sv);
            fill(q, (int64_t)T * Sk, 1.0f); fill(kk, (int64_t)T * Sk, 1.0f); fill(v, (int64_t)T * Sv, 1.0f);
            for (int t = 0; t < T; t++) {
                l2normalize(q + t * Sk, Sk);
                l2normalize(kk + t * Sk, Sk);
                g[t] = -(frand() + 1.0f);                   /* log decay in (-2, 0] */
                beta[t] = 1.0f / (1.0f + expf(-2.0f * frand()));
            }
            fill(S0, (int64_t)Sk * Sv, 0.1f);
            memcpy(S1, S0, sizeof(float) * Sk * Sv);
            q35_dn_head h0 = {.q = q, .k = kk, .v = v, .g = g, .beta = beta, .ldqk = Sk, .ldv = Sv, .ldgb = 1,
                              .ldo = Sv, .S = S0, .o = o0, .T = T, .Sk = Sk, .Sv = Sv};
            q35_dn_head h1 = h0;
            h1.S = S1;
            h1.o = o1;
            failed_call |= q35_deltanet_head(Q35_ISA_SCALAR, algos[a].algo, &h0) != 0;
            failed_call |= q35_deltanet_head(isa, algos[a].algo, &h1) != 0;
            worst = fmax(worst, rel_err(o1, o0, (int64_t)T * Sv));
            worst = fmax(worst, rel_err(S1, S0, (int64_t)Sk * Sv));
            free(q); free(kk); free(v); free(g); free(beta); free(S0); free(S1); free(o0); free(o1);
        }
        char w[64];
        snprintf(w, sizeof w, "delta-net %s vs scalar", algos[a].name);
        report(name, w, failed_call ? INFINITY : worst, 1e-5);
    }
}

/* ------------------------------------------------------------------------- */
/* vec_dot4 against the variant's own vec_dot: bit for bit.                 */

static void check_dot4_identity(int isa) {
    const q35_kernels *k = q35_kernels_for(isa);
    const char *name = q35_isa_name(isa);
    static const struct { int type; const char *name; } wts[] = {
        {Q35_TYPE_F32, "F32"},   {Q35_TYPE_F16, "F16"},   {Q35_TYPE_BF16, "BF16"},
        {Q35_TYPE_Q8_0, "Q8_0"}, {Q35_TYPE_Q4_0, "Q4_0"}, {Q35_TYPE_Q4_K, "Q4_K"},
        {Q35_TYPE_Q5_K, "Q5_K"}, {Q35_TYPE_Q6_K, "Q6_K"}, {Q35_TYPE_IQ4_XS, "IQ4_XS"},
    };
    enum { NMAX = 2048 + 17 };
    float *w = malloc(NMAX * sizeof *w), *act = malloc(4 * NMAX * sizeof *act);
    unsigned char *wq = malloc(NMAX * 4), *aq = malloc(4 * NMAX * 4);
    for (size_t t = 0; t < sizeof wts / sizeof wts[0]; t++) {
        const int wt = wts[t].type, at = q35_act_type(wt);
        if (!k->vec_dot4[wt]) {
            printf("%-7s vec_dot4 %-27s not provided (matmul uses vec_dot per token)\n", name, wts[t].name);
            continue;
        }
        const int64_t blk = q35_type_block_elems(wt) > q35_type_block_elems(at) ? q35_type_block_elems(wt)
                                                                                : q35_type_block_elems(at);
        int64_t differing = 0, total = 0;
        for (int rep = 0; rep < 6; rep++) {
            const int64_t n = blk == 1 ? 1 + (int64_t)((frand() + 1.0f) * 0.5f * (NMAX - 1)) : blk * (1 + rep);
            const int64_t stride = n / q35_type_block_elems(at) * q35_type_block_bytes(at);
            fill(w, n, 0.1f);
            q35_quantize(wt, w, wq, 1, n);
            for (int r = 0; r < 4; r++) {
                fill(act + r * NMAX, n, 2.0f);
                k->from_float[at](act + r * NMAX, aq + r * stride, n);
            }
            float four[4];
            k->vec_dot4[wt](wq, aq, stride, n, four);
            for (int r = 0; r < 4; r++) {
                const float one = k->vec_dot[wt](wq, aq + r * stride, n);
                differing += memcmp(&one, &four[r], sizeof one) != 0;
                total++;
            }
        }
        char what[64];
        snprintf(what, sizeof what, "vec_dot4 %s == vec_dot (bits)", wts[t].name);
        report(name, what, (double)differing / (double)total, 0.0);
    }
    free(w); free(act); free(wq); free(aq);
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
    int known = 0;
    for (int isa = 0; isa < Q35_ISA_COUNT; isa++) {
        const char *name = q35_isa_name(isa);
        if (strcmp(want, "all") && strcmp(want, name)) continue;
        known = 1;
        if (!q35_isa_supported(isa)) {
            printf("%-7s skipped: %s\n", name, q35_isa_compiled(isa) ? "this CPU cannot run it" : "not compiled for this target");
            if (strcmp(want, "all")) return 77;
            continue;
        }
        printf("%-7s kernel table: %s\n", name, q35_kernels_for(isa)->name);
        check_dot4_identity(isa);
        if (isa != Q35_ISA_SCALAR) {
            check_vecops(isa);
            check_deltanet(isa);
        }
    }
    if (!known) { fprintf(stderr, "unknown ISA %s\n", want); return 2; }
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

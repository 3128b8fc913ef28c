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
 *     relies on it: logits do not depend on how tokens are batched);
 *   - a whole forward pass (prefill and decode) of a small random model in
 *     memory, for every weight type.
 *
 * Prints which table each variant resolved to (e.g. "neon+dotprod"); exits 0
 * when all passed, 1 on any mismatch, 77 when a variant asked for with --isa
 * cannot run here.
 *
 *   table_check [--isa scalar|avx2|avx512|neon|all] [--no-forward]
 *
 * --no-forward leaves out the forward passes (the slow part under qemu).
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

/* rows of x (uniform in [-scale, scale)) quantized to type, or, for the types without a
 * quantizer (the IQ codebooks), random valid codes of the same spread */
static void quantize_or_random(int type, const float *x, void *q, int64_t rows, int64_t cols, float scale) {
    if (q35_quantize(type, x, q, rows, cols) == 0) return;
    frand();
    q35_random_blocks(type, rng_state, scale / sqrtf(3.0f), q, rows * cols / q35_type_block_elems(type));
}

static void report(const char *isa, const char *what, double err, double tol) {
    int ok = err <= tol;
    checks++;
    if (!ok) failures++;
    printf("%-7s %-36s max rel err %.2e (tol %.2g) %s\n", isa, what, err, tol, ok ? "ok" : "MISMATCH");
}

/* max |got - want| over max |want|; a NaN anywhere is an infinite error */
static double rel_err(const float *got, const float *want, int64_t n) {
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - want[i]), w = fabs((double)want[i]);
        if (isnan(d)) return INFINITY;
        if (d > e) e = d;
        if (w > m) m = w;
    }
    return e / (m + 1e-30);
}

/* max over i of |got_i - want_i| / |want_i| (NaN: infinite): for results that
 * keep their relative precision everywhere (exp-based ones) */
static double elem_rel_err(const float *got, const float *want, int64_t n) {
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - want[i]) / (fabs((double)want[i]) + 1e-37);
        if (isnan(d)) return INFINITY;
        if (d > e) e = d;
    }
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
        {Q35_TYPE_MXFP4, "MXFP4"}, {Q35_TYPE_NVFP4, "NVFP4"}, {Q35_TYPE_Q4_1, "Q4_1"},
        {Q35_TYPE_Q5_0, "Q5_0"}, {Q35_TYPE_Q5_1, "Q5_1"}, {Q35_TYPE_IQ4_NL, "IQ4_NL"},
        {Q35_TYPE_Q2_K, "Q2_K"}, {Q35_TYPE_Q3_K, "Q3_K"}, {Q35_TYPE_IQ2_XXS, "IQ2_XXS"},
        {Q35_TYPE_IQ2_XS, "IQ2_XS"}, {Q35_TYPE_IQ2_S, "IQ2_S"}, {Q35_TYPE_IQ3_XXS, "IQ3_XXS"},
        {Q35_TYPE_IQ3_S, "IQ3_S"}, {Q35_TYPE_IQ1_S, "IQ1_S"}, {Q35_TYPE_IQ1_M, "IQ1_M"},
        {Q35_TYPE_TQ1_0, "TQ1_0"}, {Q35_TYPE_TQ2_0, "TQ2_0"},
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
            quantize_or_random(wt, w, wq, 1, n, 0.1f);
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

/* ------------------------------------------------------------------------- */
/* A whole forward pass: a small random model (3 delta-net layers, then one   */
/* attention layer), all matrices of one weight type, prefill in u-batches of */
/* 8, 8 and 5 tokens (chunked, chunked, fused delta-net; 4-token and single-  */
/* token dots) then 3 decode steps, on 2 threads; the variant's logits        */
/* against the scalar variant's.                                              */

enum { MAX_BUFS = 64 };
static void *bufs[MAX_BUFS];
static int nbufs;

static void *keep(void *p) { bufs[nbufs++] = p; return p; }

/* a small F32 tensor: offset + scale * uniform(-1, 1) */
static q35_tensor f32_tensor(int64_t rows, int64_t cols, float scale, float offset) {
    float *f = keep(malloc(sizeof(float) * rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) f[i] = offset + scale * frand();
    return (q35_tensor){.data = f, .type = Q35_TYPE_F32, .rows = rows, .cols = cols};
}

/* Every matrix of the model has 256 columns. The K-quant quantizers are slow
 * (more so under qemu), so each type quantizes two pools of rows once and the
 * matrices are windows into them at random row offsets. */
enum { COLS = 256, POOL_ROWS = 768, OUT_POOL_ROWS = 384 };

typedef struct { const uint8_t *in, *out; int64_t row_bytes; int type; } weight_pool;

static const uint8_t *quantized_rows(int type, int64_t rows, float scale) {
    float *f = malloc(sizeof(float) * rows * COLS);
    for (int64_t i = 0; i < rows * COLS; i++) f[i] = scale * frand();
    uint8_t *q = keep(malloc((size_t)(rows * COLS / q35_type_block_elems(type) * q35_type_block_bytes(type))));
    quantize_or_random(type, f, q, rows, COLS, scale);
    free(f);
    return q;
}

static q35_tensor window(const weight_pool *p, int out, int64_t rows) {
    const int64_t pool_rows = out ? OUT_POOL_ROWS : POOL_ROWS;
    const int64_t first = (int64_t)((frand() + 1.0f) * 0.5f * (float)(pool_rows - rows));
    return (q35_tensor){.data = (out ? p->out : p->in) + first * p->row_bytes, .type = p->type, .rows = rows, .cols = COLS};
}

static q35_model *random_model(int wt) {
    /* sizes: every matrix COLS wide, a whole number of 256-element super-blocks */
    q35_config c = {.n_layer = 4, .n_embd = COLS, .n_ff = COLS, .n_head = 2, .n_head_kv = 1, .head_dim = 128,
                    .rope_dims = 32, .rope_theta = 1e7f, .rms_eps = 1e-6f, .conv_kernel = 4, .ssm_state = 128,
                    .ssm_k_heads = 1, .ssm_v_heads = 2, .vocab_size = 256, .recurrent = {1, 1, 1, 0}};
    q35_model *m = q35_model_new(&c);
    if (!m) return NULL;
    const int64_t E = c.n_embd, F = c.n_ff, Sk = c.ssm_state, Hv = c.ssm_v_heads;
    const int64_t KD = c.ssm_k_heads * Sk, VD = Hv * Sk, HD = (int64_t)c.n_head * c.head_dim;
    const int64_t KVD = (int64_t)c.n_head_kv * c.head_dim;
    /* ~ 1/sqrt(E): activations stay O(1); the layers' output matrices smaller, so the
     * residual stream carries the embedding and each layer adds a fraction to it */
    const float w = 1.0f / 16.0f;
    const weight_pool p = {.in = quantized_rows(wt, POOL_ROWS, w), .out = quantized_rows(wt, OUT_POOL_ROWS, 0.3f * w),
                           .row_bytes = COLS / q35_type_block_elems(wt) * q35_type_block_bytes(wt), .type = wt};
    q35_model_set(m, -1, Q35_W_TOKEN_EMBD, window(&p, 0, c.vocab_size));
    q35_model_set(m, -1, Q35_W_OUTPUT_NORM, f32_tensor(1, E, 0.2f, 1.0f));
    q35_model_set(m, -1, Q35_W_OUTPUT, window(&p, 0, c.vocab_size));
    for (int il = 0; il < c.n_layer; il++) {
        q35_model_set(m, il, Q35_W_ATTN_NORM, f32_tensor(1, E, 0.2f, 1.0f));
        q35_model_set(m, il, Q35_W_POST_NORM, f32_tensor(1, E, 0.2f, 1.0f));
        q35_model_set(m, il, Q35_W_FFN_GATE, window(&p, 0, F));
        q35_model_set(m, il, Q35_W_FFN_UP, window(&p, 0, F));
        q35_model_set(m, il, Q35_W_FFN_DOWN, window(&p, 1, E));
        if (c.recurrent[il]) {
            q35_model_set(m, il, Q35_W_SSM_QKV, window(&p, 0, 2 * KD + VD));
            q35_model_set(m, il, Q35_W_SSM_GATE, window(&p, 0, VD));
            q35_model_set(m, il, Q35_W_SSM_CONV, f32_tensor(2 * KD + VD, c.conv_kernel, 0.5f, 0.0f));
            q35_model_set(m, il, Q35_W_SSM_DT, f32_tensor(1, Hv, 0.5f, 0.0f));
            q35_model_set(m, il, Q35_W_SSM_A, f32_tensor(1, Hv, 0.5f, -1.0f)); /* decay rate < 0 */
            q35_model_set(m, il, Q35_W_SSM_BETA, window(&p, 0, Hv));
            q35_model_set(m, il, Q35_W_SSM_ALPHA, window(&p, 0, Hv));
            q35_model_set(m, il, Q35_W_SSM_NORM, f32_tensor(1, Sk, 0.2f, 1.0f));
            q35_model_set(m, il, Q35_W_SSM_OUT, window(&p, 1, E));
        } else {
            q35_model_set(m, il, Q35_W_ATTN_Q, window(&p, 0, 2 * HD));
            q35_model_set(m, il, Q35_W_ATTN_K, window(&p, 0, KVD));
            q35_model_set(m, il, Q35_W_ATTN_V, window(&p, 0, KVD));
            q35_model_set(m, il, Q35_W_ATTN_Q_NORM, f32_tensor(1, c.head_dim, 0.2f, 1.0f));
            q35_model_set(m, il, Q35_W_ATTN_K_NORM, f32_tensor(1, c.head_dim, 0.2f, 1.0f));
            q35_model_set(m, il, Q35_W_ATTN_OUTPUT, window(&p, 1, E));
        }
    }
    return m;
}

enum { PREFILL = 21, DECODE = 3, VOCAB = 256 };

/* logits of PREFILL prompt tokens (all rows) then DECODE tokens, one at a time; 0 or -1 */
static int run_model(const q35_model *m, int isa, const int32_t *tokens, float *logits) {
    const q35_session_params p = {.isa = isa, .n_threads = 2, .ubatch = 8, .fdn_threshold = 6,
                                  .dn_algo = Q35_DN_AUTO, .n_ctx = 32, .profile = 0};
    q35_session *s = q35_session_new(m, &p);
    if (!s) return -1;
    int rc = q35_session_forward(s, tokens, PREFILL, logits, 1);
    for (int t = 0; t < DECODE && !rc; t++)
        rc = q35_session_forward(s, tokens + PREFILL + t, 1, logits + (int64_t)(PREFILL + t) * VOCAB, 0);
    q35_session_free(s);
    return rc ? -1 : 0;
}

static void check_engine(int isa) {
    /* F32 weights: float rounding only. Otherwise the activations are rounded to F16, BF16
     * or int8 steps, and a float that differs in its last bit can land on the other side of
     * a rounding boundary; such flips, carried through the layers, were seen to move the
     * logits by up to about one step of the format (relative to the largest logit): the
     * tolerance is 4 steps. A wrong kernel moves them by far more. */
    static const struct { int type; const char *name; double tol; } wts[] = {
        {Q35_TYPE_F32, "F32", 1e-5},   {Q35_TYPE_F16, "F16", 4.0 / 2048}, {Q35_TYPE_BF16, "BF16", 4.0 / 256},
        {Q35_TYPE_Q8_0, "Q8_0", 4.0 / 127}, {Q35_TYPE_Q4_0, "Q4_0", 4.0 / 127}, {Q35_TYPE_Q4_K, "Q4_K", 4.0 / 127},
        {Q35_TYPE_Q5_K, "Q5_K", 4.0 / 127}, {Q35_TYPE_Q6_K, "Q6_K", 4.0 / 127}, {Q35_TYPE_IQ4_XS, "IQ4_XS", 4.0 / 127},
        {Q35_TYPE_MXFP4, "MXFP4", 4.0 / 127}, {Q35_TYPE_NVFP4, "NVFP4", 4.0 / 127},
        {Q35_TYPE_Q4_1, "Q4_1", 4.0 / 127}, {Q35_TYPE_Q5_0, "Q5_0", 4.0 / 127},
        {Q35_TYPE_Q5_1, "Q5_1", 4.0 / 127}, {Q35_TYPE_IQ4_NL, "IQ4_NL", 4.0 / 127},
        {Q35_TYPE_Q2_K, "Q2_K", 4.0 / 127}, {Q35_TYPE_Q3_K, "Q3_K", 4.0 / 127},
        {Q35_TYPE_IQ2_XXS, "IQ2_XXS", 4.0 / 127}, {Q35_TYPE_IQ2_XS, "IQ2_XS", 4.0 / 127},
        {Q35_TYPE_IQ2_S, "IQ2_S", 4.0 / 127}, {Q35_TYPE_IQ3_XXS, "IQ3_XXS", 4.0 / 127},
        {Q35_TYPE_IQ3_S, "IQ3_S", 4.0 / 127}, {Q35_TYPE_IQ1_S, "IQ1_S", 4.0 / 127},
        {Q35_TYPE_IQ1_M, "IQ1_M", 4.0 / 127}, {Q35_TYPE_TQ1_0, "TQ1_0", 4.0 / 127},
        {Q35_TYPE_TQ2_0, "TQ2_0", 4.0 / 127},
    };
    int32_t tokens[PREFILL + DECODE];
    for (int t = 0; t < PREFILL + DECODE; t++) tokens[t] = (int32_t)((frand() + 1.0f) * 0.5f * (VOCAB - 1));
    float *want = malloc(sizeof(float) * (PREFILL + DECODE) * VOCAB);
    float *got = malloc(sizeof(float) * (PREFILL + DECODE) * VOCAB);
    for (size_t t = 0; t < sizeof wts / sizeof wts[0]; t++) {
        nbufs = 0;
        /* each type's model from a seed of its own: adding a check elsewhere does not redraw it */
        rng_state = 0x2545F4914F6CDD1Dull ^ ((uint64_t)wts[t].type + 1) * 0x9E3779B97F4A7C15ull;
        q35_model *m = random_model(wts[t].type);
        const int failed = !m || run_model(m, Q35_ISA_SCALAR, tokens, want) || run_model(m, isa, tokens, got);
        char what[64];
        snprintf(what, sizeof what, "forward pass %s vs scalar (logits)", wts[t].name);
        report(q35_isa_name(isa), what, failed ? INFINITY : rel_err(got, want, (PREFILL + DECODE) * VOCAB),
               wts[t].tol);
        q35_model_free(m);
        for (int i = 0; i < nbufs; i++) free(bufs[i]);
    }
    free(want); free(got);
}

int main(int argc, char **argv) {
    const char *want = "all";
    int forward = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--isa") && i + 1 < argc) want = argv[++i];
        else if (!strcmp(argv[i], "--no-forward")) forward = 0;
        else { fprintf(stderr, "usage: %s [--isa scalar|avx2|avx512|neon|all] [--no-forward]\n", argv[0]); return 2; }
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
            if (forward) check_engine(isa);
        }
    }
    if (!known) { fprintf(stderr, "unknown ISA %s\n", want); return 2; }
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

/*
 * q35 self-test: built from native/ alone, no Python.
 *
 *   selftest [--isa scalar|avx2|avx512|neon|all] [--model FILE.q35m]
 *
 * For every ISA variant asked for that this machine can run, every entry of
 * its kernel table is checked against the scalar variant on seeded random
 * inputs (odd lengths for the tails, and edge values: all zeros, large
 * magnitudes, a single spike), then the three delta-net algorithms through
 * q35_deltanet_head, then (with --model) a whole forward pass, prefill and
 * decode, against the scalar variant's logits. On x86 the AVX512 table is
 * checked with and without its VNNI dots where both can run. The
 * quantization formats get a round-trip check once.
 *
 * Tolerances (err is printed next to each):
 *   dots (dot_f32, vec_dot, vec_dot4)   |got - want| / sum_i |a_i b_i|           <= 1e-5
 *   F32 / F16 / BF16 converters         bytes differing                           0
 *   Q8_0 / Q8_K converters              fraction of bytes differing (round-half ties) <= 1e-3
 *   scale                               same bits                                 0
 *   axpy, fmadd, rope                   |got - want| / (|terms| summed)           <= 1e-6
 *   rmsnorm, l2norm                     |got - want| / max |want|                 <= 1e-6
 *   silu, swiglu, sigmoid_mul, softmax  |got - want| / (|want| + 1e-4 max |want|) <= 1e-5
 *   delta-net (o and S)                 max |got - want| / max |want|             <= 1e-4
 *   forward pass logits                 max |got - want| / rms(want)              <= 0.3
 *     Loose on purpose: activations are re-quantized (Q8_0 / Q8_K / F16 / BF16)
 *     before every matrix, so the last-bit differences of any two summation
 *     orders move some values across a rounding boundary, and the random
 *     weights of the synthetic model amplify that layer by layer (AVX2 vs
 *     scalar on the mixed tiny model: 0.13; on F32 weights only: 6e-6; the
 *     engine's own prefill vs decode differ as much). A wrong kernel or a
 *     miswired table entry gives errors of order 1. The kernels themselves
 *     are held to the tight bounds above.
 *
 * Exit status: 0 all passed, 1 any mismatch (or a model file that does not
 * load), 2 bad arguments, 77 the variant asked for cannot run here (the reason
 * is printed).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q35.h"
#include "kernels.h" /* the raw per-variant tables, for the AVX512 VNNI check */
#include "repacked.h" /* Q35_BF16_R16_ELEMS */

static int failures = 0, checks = 0;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* xorshift64*, uniform in [-1, 1) */
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / (float)(1 << 23) - 1.0f;
}
static void fill(float *x, int64_t n, float scale) { for (int64_t i = 0; i < n; i++) x[i] = scale * frand(); }
static int64_t rand_len(int64_t max) { return 1 + (int64_t)((frand() + 1.0f) * 0.5f * (float)(max - 1)); }

static void report(const char *isa, const char *what, double err, double tol) {
    const int ok = err <= tol; /* NaN fails */
    checks++;
    if (!ok) failures++;
    printf("%-12s %-40s err %.2e (tol %.0e) %s\n", isa, what, err, tol, ok ? "ok" : "MISMATCH");
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "selftest: out of memory\n"); exit(1); }
    return p;
}

static double max_abs(const float *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

/* edge inputs shared by the checks: rep 0 all zeros, rep 1 large magnitudes,
 * rep 2 one spike among small values, else random at the given scale */
static void fill_case(float *x, int64_t n, int rep, float scale) {
    if (rep == 0) { memset(x, 0, (size_t)n * sizeof *x); return; }
    fill(x, n, rep == 1 ? scale * 300.0f : scale);
    if (rep == 2) x[n / 2] = -scale * 40.0f;
}

/* ------------------------------------------------------------------------- */
/* dots and converters                                                       */

static const struct { int type; const char *name; } WEIGHTS[] = {
    {Q35_TYPE_F32, "F32 x F32"},     {Q35_TYPE_F16, "F16 x F16"},     {Q35_TYPE_BF16, "BF16 x BF16"},
    {Q35_TYPE_Q4_0, "Q4_0 x Q8_0"},  {Q35_TYPE_Q8_0, "Q8_0 x Q8_0"},  {Q35_TYPE_Q4_K, "Q4_K x Q8_K"},
    {Q35_TYPE_Q5_K, "Q5_K x Q8_K"},  {Q35_TYPE_Q6_K, "Q6_K x Q8_K"},  {Q35_TYPE_IQ4_XS, "IQ4_XS x Q8_K"},
    {Q35_TYPE_MXFP4, "MXFP4 x Q8_0"}, {Q35_TYPE_NVFP4, "NVFP4 x Q8_0"}, {Q35_TYPE_Q4_1, "Q4_1 x Q8_1"},
    {Q35_TYPE_Q5_0, "Q5_0 x Q8_0"},  {Q35_TYPE_Q5_1, "Q5_1 x Q8_1"},  {Q35_TYPE_IQ4_NL, "IQ4_NL x Q8_0"},
    {Q35_TYPE_Q2_K, "Q2_K x Q8_K"},  {Q35_TYPE_Q3_K, "Q3_K x Q8_K"},  {Q35_TYPE_IQ2_XXS, "IQ2_XXS x Q8_K"},
    {Q35_TYPE_IQ2_XS, "IQ2_XS x Q8_K"}, {Q35_TYPE_IQ2_S, "IQ2_S x Q8_K"}, {Q35_TYPE_IQ3_XXS, "IQ3_XXS x Q8_K"},
    {Q35_TYPE_IQ3_S, "IQ3_S x Q8_K"}, {Q35_TYPE_IQ1_S, "IQ1_S x Q8_K"}, {Q35_TYPE_IQ1_M, "IQ1_M x Q8_K"},
    {Q35_TYPE_TQ1_0, "TQ1_0 x Q8_K"}, {Q35_TYPE_TQ2_0, "TQ2_0 x Q8_K"},
};

enum { N = 4096 + 29 };

static int64_t row_bytes(int type, int64_t n) { return n / q35_type_block_elems(type) * q35_type_block_bytes(type); }

/* a weight row of type wt made from the floats a: quantized, or random valid codes for the
 * types without a quantizer (the IQ codebooks), a then overwritten with that row's values */
static int make_weight_row(int wt, float *a, uint8_t *wq, int64_t n) {
    if (q35_quantize(wt, a, wq, 1, n) == 0) return 0;
    frand();
    if (q35_random_blocks(wt, rng_state, 0.05f, wq, n / q35_type_block_elems(wt))) return -1;
    return q35_dequantize(wt, wq, a, 1, n);
}

static void check_packed(const char *name, const q35_kernels *k, const q35_kernels *ref);
static void check_packed2(const char *name, const q35_kernels *k);
static void check_packed_bf16_edges(const char *name, const q35_kernels *k, const q35_kernels *ref);

static void check_dots(const char *name, const q35_kernels *k, const q35_kernels *ref) {
    float *a = xmalloc(N * sizeof *a), *b = xmalloc(4 * N * sizeof *b);
    uint8_t *wq = xmalloc(N * 4), *act = xmalloc(4 * (size_t)N * 4);
    char what[80];
    double worst = 0;
    for (int rep = 0; rep < 40; rep++) {
        const int64_t n = rand_len(N);
        fill_case(a, n, rep, 1.0f);
        fill_case(b, n, rep == 0 ? 3 : rep, 1.0f);
        double mag = 0;
        for (int64_t i = 0; i < n; i++) mag += fabs((double)a[i] * b[i]);
        worst = fmax(worst, fabs((double)k->dot_f32(a, b, n) - ref->dot_f32(a, b, n)) / (mag + 1e-30));
    }
    report(name, "dot_f32", worst, 1e-5);

    for (size_t t = 0; t < sizeof WEIGHTS / sizeof WEIGHTS[0]; t++) {
        const int wt = WEIGHTS[t].type, at = q35_act_type(wt);
        const int64_t blk = q35_type_block_elems(wt) > q35_type_block_elems(at) ? q35_type_block_elems(wt)
                                                                                : q35_type_block_elems(at);
        double worst1 = 0, worst4 = 0, worstg = 0;
        for (int rep = 0; rep < 24; rep++) {
            /* float rows: any length (SIMD tails); block rows: 1 to 16 super-blocks, odd counts included */
            const int64_t n = blk == 1 ? rand_len(N) : blk * (1 + rep % (4096 / blk));
            const int64_t stride = row_bytes(at, n);
            fill_case(a, n, rep, 0.1f);
            if (make_weight_row(wt, a, wq, n)) { worst1 = INFINITY; break; }
            for (int r = 0; r < 4; r++) {
                fill_case(b + r * N, n, rep == 0 && r ? 3 : rep, 2.0f);
                ref->from_float[at](b + r * N, act + r * stride, n);
            }
            float got4[4] = {0, 0, 0, 0};
            if (k->vec_dot4[wt]) k->vec_dot4[wt](wq, act, stride, n, got4);
            for (int r = 0; r < 4; r++) {
                const uint8_t *ar = act + r * stride;
                const double want = ref->vec_dot[wt](wq, ar, n);
                double mag = 0;
                for (int64_t i = 0; i < n; i++) mag += fabs((double)a[i] * b[r * N + i]);
                worst1 = fmax(worst1, fabs(k->vec_dot[wt](wq, ar, n) - want) / (mag + 1e-30));
                if (k->vec_dot4[wt]) worst4 = fmax(worst4, fabs(got4[r] - want) / (mag + 1e-30));
            }
            if (k->gemm[wt]) { /* 3 weight rows (the same row, stride 0) by 4 and by 1 activation rows, then
                                * by 6 and 11 (tiles of 6 and a tail): activation row 0 again and again (stride 0) */
                for (int c = 0; c < 4; c++) {
                    const int nt = (int[]){4, 1, 6, 11}[c];
                    const int64_t as = c < 2 ? stride : 0;
                    float gy[11 * 3];
                    k->gemm[wt](wq, 0, 3, act, as, nt, n, gy, 3);
                    for (int r = 0; r < nt; r++) {
                        const int ra = as ? r : 0; /* the activation row it took */
                        const float own = k->vec_dot[wt](wq, act + ra * stride, n);
                        double mag = 0;
                        for (int64_t i = 0; i < n; i++) mag += fabs((double)a[i] * b[ra * N + i]);
                        for (int i = 0; i < 3; i++) /* bit for bit the variant's own dot, near the reference */
                            worstg = fmax(worstg, memcmp(&gy[r * 3 + i], &own, sizeof own)
                                                      ? INFINITY
                                                      : fabs(own - ref->vec_dot[wt](wq, act + ra * stride, n)) / (mag + 1e-30));
                    }
                }
            }
        }
        snprintf(what, sizeof what, "vec_dot %s", WEIGHTS[t].name);
        report(name, what, worst1, 1e-5);
        snprintf(what, sizeof what, "vec_dot4 %s", WEIGHTS[t].name);
        if (k->vec_dot4[wt]) report(name, what, worst4, 1e-5);
        else printf("%-12s %-40s not provided (matmul uses vec_dot per token)\n", name, what);
        snprintf(what, sizeof what, "gemm %s", WEIGHTS[t].name);
        if (k->gemm[wt]) report(name, what, worstg, 1e-5);
    }
    free(a); free(b); free(wq); free(act);
    check_packed(name, k, ref);
    check_packed2(name, k);
    check_packed_bf16_edges(name, k, ref);
}

/* the repacked products: 16 weight rows repacked, by 1 to 9 activation rows (decode, every
 * partial tile of the tile sizes in use, a tile and more); every value bit for bit the scalar rule's */
static void check_packed(const char *name, const q35_kernels *k, const q35_kernels *ref) {
    enum { NT = 9, NB = 5 };
    const int64_t n = NB * 256;
    float *a = xmalloc(n * sizeof *a), *b = xmalloc(n * sizeof *b);
    for (int wt = 0; wt < Q35_TYPE_COUNT; wt++) {
        if (!k->gemm_packed[wt] || !ref->gemm_packed[wt]) continue;
        const int at = q35_act_type(wt);
        const int64_t wrb = row_bytes(wt, n), arb = row_bytes(at, n), pb = q35_packed_bytes(wt, Q35_PACK_ROWS, n);
        uint8_t *wq = xmalloc((size_t)(wrb * Q35_PACK_ROWS)), *act = xmalloc((size_t)(arb * NT));
        uint8_t *wp = aligned_alloc(64, (size_t)(pb + 63) / 64 * 64);
        float got[NT * Q35_PACK_ROWS], want[NT * Q35_PACK_ROWS];
        double worst = 0;
        for (int r = 0; r < Q35_PACK_ROWS; r++) {
            fill_case(a, n, r, 0.1f);
            if (make_weight_row(wt, a, wq + r * wrb, n)) worst = INFINITY;
            if (wt == Q35_TYPE_Q8_0) ((block_q8_0 *)(void *)(wq + r * wrb))[r % NB].qs[r] = -128; /* a file may hold it */
        }
        for (int t = 0; t < NT; t++) {
            fill_case(b, n, t + 1, 2.0f);
            ref->from_float[at](b, act + t * arb, n);
        }
        if (!wp || q35_repack(wt, wq, Q35_PACK_ROWS, n, wp)) worst = INFINITY;
        /* each table's product takes the rows its own prepare_packed made */
        uint8_t *kact = xmalloc((size_t)(arb * NT));
        memcpy(kact, act, (size_t)(arb * NT));
        if (k->prepare_packed[wt]) k->prepare_packed[wt](kact, arb, NT, n);
        if (ref->prepare_packed[wt]) ref->prepare_packed[wt](act, arb, NT, n);
        for (int nt = 1; nt <= NT && worst == 0; nt++) {
            k->gemm_packed[wt](wp, kact, arb, nt, n, got, Q35_PACK_ROWS);
            ref->gemm_packed[wt](wp, act, arb, nt, n, want, Q35_PACK_ROWS);
            if (memcmp(got, want, sizeof(float) * (size_t)(nt * Q35_PACK_ROWS))) worst = INFINITY;
        }
        char what[80];
        snprintf(what, sizeof what, "gemm_packed type %d (the scalar rule)", wt);
        report(name, what, worst, 1e-5);
        free(wq); free(act); free(kact); free(wp);
    }
    free(a); free(b);
}

/* gemm_packed2 (two groups at once) against gemm_packed on each group: bit for bit, by 1 to 19
 * activation rows (its tiles and their tails), y rows wider than the 32 values */
static void check_packed2(const char *name, const q35_kernels *k) {
    enum { NT = 19, NB = 3, LDY = 2 * Q35_PACK_ROWS + 5 };
    const int64_t n = NB * 256;
    float *a = xmalloc(n * sizeof *a), *b = xmalloc(n * sizeof *b);
    for (int wt = 0; wt < Q35_TYPE_COUNT; wt++) {
        if (!k->gemm_packed2[wt]) continue;
        const int at = q35_act_type(wt);
        const int64_t wrb = row_bytes(wt, n), arb = row_bytes(at, n), pb = q35_packed_bytes(wt, Q35_PACK_ROWS, n);
        uint8_t *wq = xmalloc((size_t)(wrb * 2 * Q35_PACK_ROWS)), *act = xmalloc((size_t)(arb * NT));
        uint8_t *wp = aligned_alloc(64, (size_t)(2 * pb + 63) / 64 * 64);
        float got[NT * LDY], want[NT * LDY];
        double worst = 0;
        for (int r = 0; r < 2 * Q35_PACK_ROWS; r++) {
            fill_case(a, n, r, 0.1f);
            if (make_weight_row(wt, a, wq + r * wrb, n)) worst = INFINITY;
        }
        for (int t = 0; t < NT; t++) {
            fill_case(b, n, t + 1, 2.0f);
            k->from_float[at](b, act + t * arb, n);
        }
        if (k->prepare_packed[wt]) k->prepare_packed[wt](act, arb, NT, n);
        if (!wp || q35_repack(wt, wq, 2 * Q35_PACK_ROWS, n, wp)) worst = INFINITY;
        for (int nt = 1; nt <= NT && worst == 0; nt++) {
            memset(got, 0, sizeof got); memset(want, 0, sizeof want);
            k->gemm_packed2[wt](wp, act, arb, nt, n, got, LDY);
            k->gemm_packed[wt](wp, act, arb, nt, n, want, LDY);
            k->gemm_packed[wt](wp + pb, act, arb, nt, n, want + Q35_PACK_ROWS, LDY);
            if (memcmp(got, want, sizeof got)) worst = INFINITY;
        }
        char what[80];
        snprintf(what, sizeof what, "gemm_packed2 type %d = two gemm_packed (bits)", wt);
        report(name, what, worst, 0);
        free(wq); free(act); free(wp);
    }
    free(a); free(b);
}

/* The repacked BF16 rule's number handling, which random values near 1 never reach. The values'
 * exponents are 2^-87..2^-57, so the products (2^-174..2^-114) straddle FLT_MIN and the ones the
 * rule flushes would still move the sums' last bits; one weight in 8 is subnormal and, in every
 * other activation row, one value in 8 is near 2^75, so a subnormal weight read as itself (no DAZ)
 * would swamp the sum. Bit for bit the scalar rule's, by 1, 4 and 9 rows. */
static uint16_t bf16_case(int field_lo, int field_span) {
    const uint32_t sign = frand() < 0 ? 0x8000u : 0, mant = (uint32_t)((frand() + 1.0f) * 64.0f) & 0x7F;
    const uint32_t field = (uint32_t)field_lo + ((uint32_t)((frand() + 1.0f) * 0.5f * (float)field_span) % field_span);
    return (uint16_t)(sign | field << 7 | mant);
}

static void check_packed_bf16_edges(const char *name, const q35_kernels *k, const q35_kernels *ref) {
    enum { NT = 9, N = 4 * Q35_BF16_R16_ELEMS };
    const int wt = Q35_TYPE_BF16;
    if (!k->gemm_packed[wt] || !ref->gemm_packed[wt]) return;
    const int64_t n = N;
    uint16_t w[Q35_PACK_ROWS * N], act[NT * N];
    for (int i = 0; i < Q35_PACK_ROWS * N; i++) w[i] = i % 8 == 3 ? bf16_case(0, 1) : bf16_case(40, 31);
    for (int i = 0; i < NT * N; i++) act[i] = (i / N) % 2 && i % 8 == 3 ? bf16_case(200, 4) : bf16_case(40, 31);
    const int64_t pb = q35_packed_bytes(wt, Q35_PACK_ROWS, n), arb = n * 2;
    uint8_t *wp = aligned_alloc(64, (size_t)(pb + 63) / 64 * 64);
    float got[NT * Q35_PACK_ROWS], want[NT * Q35_PACK_ROWS];
    double worst = !wp || q35_repack(wt, w, Q35_PACK_ROWS, n, wp) ? INFINITY : 0;
    int nonzero = 0;
    for (int nt = 1; nt <= NT && worst == 0; nt += nt == 1 ? 3 : 5) {
        k->gemm_packed[wt](wp, act, arb, nt, n, got, Q35_PACK_ROWS);
        ref->gemm_packed[wt](wp, act, arb, nt, n, want, Q35_PACK_ROWS);
        if (memcmp(got, want, sizeof(float) * (size_t)(nt * Q35_PACK_ROWS))) worst = INFINITY;
        for (int i = 0; i < nt * Q35_PACK_ROWS; i++) nonzero += want[i] != 0;
    }
    if (nonzero == 0) worst = INFINITY; /* the case would not test the sums */
    report(name, "gemm_packed BF16, subnormals and flushes", worst, 1e-5);
    free(wp);
}

static void check_converters(const char *name, const q35_kernels *k, const q35_kernels *ref) {
    static const struct { int type; const char *name; double tol; } acts[] = {
        {Q35_TYPE_F32, "F32", 0}, {Q35_TYPE_F16, "F16", 0}, {Q35_TYPE_BF16, "BF16", 0},
        {Q35_TYPE_Q8_0, "Q8_0", 1e-3}, {Q35_TYPE_Q8_K, "Q8_K", 1e-3}, {Q35_TYPE_Q8_1, "Q8_1", 0},
    };
    float *x = xmalloc(N * sizeof *x), *back = xmalloc(N * sizeof *back), *back_ref = xmalloc(N * sizeof *back_ref);
    uint8_t *got = xmalloc((size_t)N * 4), *want = xmalloc((size_t)N * 4);
    for (size_t t = 0; t < sizeof acts / sizeof acts[0]; t++) {
        const int64_t blk = q35_type_block_elems(acts[t].type);
        const int has_to_float = ref->to_float[acts[t].type] != NULL;   /* the KV cache types */
        int64_t differing = 0, total = 0, back_differing = 0, back_total = 0;
        for (int rep = 0; rep < 24; rep++) {
            const int64_t n = blk == 1 ? rand_len(N) : blk * (1 + rep % (4096 / blk));
            fill_case(x, n, rep, rep % 3 ? 5.0f : 1e-3f);
            if (rep == 3) for (int64_t i = 0; i < n; i += 7) x[i] = 1e5f;   /* F16 overflow, equal maxima */
            if (rep == 4) for (int64_t i = 0; i < n; i += 5) x[i] = -x[i / 5]; /* |max| ties of both signs */
            const int64_t bytes = row_bytes(acts[t].type, n);
            k->from_float[acts[t].type](x, got, n);
            ref->from_float[acts[t].type](x, want, n);
            for (int64_t i = 0; i < bytes; i++) differing += got[i] != want[i];
            total += bytes;
            if (has_to_float) {     /* reading the stored row back: every float bit for bit */
                k->to_float[acts[t].type](want, back, n);
                ref->to_float[acts[t].type](want, back_ref, n);
                back_differing += memcmp(back, back_ref, (size_t)n * sizeof(float)) != 0;
                back_total++;
            }
        }
        char what[80];
        snprintf(what, sizeof what, "from_float %s (bytes differing)", acts[t].name);
        report(name, what, (double)differing / (double)total, acts[t].tol);
        if (has_to_float) {
            snprintf(what, sizeof what, "to_float %s (rows differing)", acts[t].name);
            report(name, what, (double)back_differing / (double)back_total, 0);
        }
    }
    free(x); free(back); free(back_ref); free(got); free(want);
}

/* ------------------------------------------------------------------------- */
/* elementwise and row kernels                                               */

/* |got - want| / (|want| + 1e-4 max|want|) */
static double rel_err(const float *got, const float *want, int64_t n) {
    const double floor = 1e-4 * max_abs(want, n) + 1e-30;
    double e = 0;
    for (int64_t i = 0; i < n; i++) e = fmax(e, fabs((double)got[i] - want[i]) / (fabs((double)want[i]) + floor));
    return e;
}

static double scaled_err(const float *got, const float *want, int64_t n) {
    const double m = max_abs(want, n) + 1e-30;
    double e = 0;
    for (int64_t i = 0; i < n; i++) e = fmax(e, fabs((double)got[i] - want[i]) / m);
    return e;
}

static void check_vecops(const char *name, const q35_kernels *k, const q35_kernels *ref) {
    enum { V = 2048 + 13 };
    float *x = xmalloc(V * sizeof *x), *u = xmalloc(V * sizeof *u), *w = xmalloc(V * sizeof *w);
    float *g = xmalloc(V * sizeof *g), *r = xmalloc(V * sizeof *r);
    double e[14] = {0};
    enum { SILU, SWIGLU, AXPY, FMADD, SCALE, RMS, L2, ROPE, SOFTMAX, SIGMUL, EXPSUM, PANEL, DOTS, DOTS_TILED };
    for (int rep = 0; rep < 30; rep++) {
        const int64_t n = rand_len(V);
        /* activations over the range where exp matters: up to +-90 on the large-magnitude rep */
        fill_case(x, n, rep, 0.3f);
        fill(u, n, 2.0f); fill(w, n, 1.5f);
        memcpy(g, x, (size_t)n * sizeof *g); memcpy(r, x, (size_t)n * sizeof *r);
        k->silu_f32(g, n); ref->silu_f32(r, n);
        e[SILU] = fmax(e[SILU], rel_err(g, r, n));

        memcpy(g, x, (size_t)n * sizeof *g); memcpy(r, x, (size_t)n * sizeof *r);
        k->swiglu_f32(g, u, n); ref->swiglu_f32(r, u, n);
        e[SWIGLU] = fmax(e[SWIGLU], rel_err(g, r, n));

        memcpy(g, x, (size_t)n * sizeof *g); memcpy(r, x, (size_t)n * sizeof *r);
        k->sigmoid_mul_f32(g, u, n); ref->sigmoid_mul_f32(r, u, n);
        e[SIGMUL] = fmax(e[SIGMUL], rel_err(g, r, n));

        const float a = frand() * 3.0f;
        memcpy(g, u, (size_t)n * sizeof *g); memcpy(r, u, (size_t)n * sizeof *r);
        k->axpy_f32(g, a, x, n); ref->axpy_f32(r, a, x, n);
        for (int64_t i = 0; i < n; i++) e[AXPY] = fmax(e[AXPY], fabs((double)g[i] - r[i]) / (fabs(u[i]) + fabs((double)a * x[i]) + 1e-30));

        memcpy(g, u, (size_t)n * sizeof *g); memcpy(r, u, (size_t)n * sizeof *r);
        k->fmadd_f32(g, x, w, n); ref->fmadd_f32(r, x, w, n);
        for (int64_t i = 0; i < n; i++) e[FMADD] = fmax(e[FMADD], fabs((double)g[i] - r[i]) / (fabs(u[i]) + fabs((double)x[i] * w[i]) + 1e-30));

        memcpy(g, x, (size_t)n * sizeof *g); memcpy(r, x, (size_t)n * sizeof *r);
        k->scale_f32(g, a, n); ref->scale_f32(r, a, n);
        for (int64_t i = 0; i < n; i++) e[SCALE] = fmax(e[SCALE], g[i] != r[i]);

        if (rep > 0) { /* rmsnorm / l2norm of a zero row: 0 / sqrt(eps), checked via the zeros in other reps */
            k->rmsnorm_f32(x, w, g, n, 1e-6f); ref->rmsnorm_f32(x, w, r, n, 1e-6f);
            e[RMS] = fmax(e[RMS], scaled_err(g, r, n));
            memcpy(g, x, (size_t)n * sizeof *g); memcpy(r, x, (size_t)n * sizeof *r);
            k->l2norm_f32(g, n, 1e-6f); ref->l2norm_f32(r, n, 1e-6f);
            e[L2] = fmax(e[L2], scaled_err(g, r, n));
        }

        /* rope: n_rot even, up to 256 dims; cs = cos then sin of random angles */
        const int n_rot = 2 * (int)(1 + (n - 1) % 128);
        for (int i = 0; i < n_rot / 2; i++) { const float t = 3.0f * frand(); u[i] = cosf(t); u[n_rot / 2 + i] = sinf(t); }
        memcpy(g, x, (size_t)n_rot * sizeof *g); memcpy(r, x, (size_t)n_rot * sizeof *r);
        if (n_rot <= n) {
            k->rope_f32(g, u, n_rot); ref->rope_f32(r, u, n_rot);
            for (int i = 0; i < n_rot / 2; i++) {
                const double m = fabs(x[i]) + fabs(x[i + n_rot / 2]) + 1e-30;
                e[ROPE] = fmax(e[ROPE], fmax(fabs((double)g[i] - r[i]), fabs((double)g[i + n_rot / 2] - r[i + n_rot / 2])) / m);
            }
        }

        memcpy(g, x, (size_t)n * sizeof *g); memcpy(r, x, (size_t)n * sizeof *r);
        for (int64_t i = 0; i < n; i++) { g[i] *= 20.0f; r[i] *= 20.0f; } /* attention-like score spread */
        k->softmax_f32(g, n); ref->softmax_f32(r, n);
        e[SOFTMAX] = fmax(e[SOFTMAX], rel_err(g, r, n));

        /* exp_sum: exp(x - m) and its sum, against the reference */
        memcpy(g, x, (size_t)n * sizeof *g); memcpy(r, x, (size_t)n * sizeof *r);
        for (int64_t i = 0; i < n; i++) { g[i] *= 20.0f; r[i] *= 20.0f; }
        float mx = g[0]; /* the row's max, as attention passes it: the largest term is 1 */
        for (int64_t i = 1; i < n; i++) mx = g[i] > mx ? g[i] : mx;
        const double sg = k->exp_sum_f32(g, n, mx), sr = ref->exp_sum_f32(r, n, mx);
        e[EXPSUM] = fmax(fmax(e[EXPSUM], rel_err(g, r, n)), fabs(sg - sr) / (fabs(sr) + 1e-30));

        /* axpy_panel: ny rows of y against m rows of x, bit for bit the table's own axpy calls */
        enum { NY = 6, M = 5 };
        const int64_t pn = n / NY - 3; /* columns: up to 340, odd lengths too */
        float *yg = g, *yw = r;          /* NY rows of pn, row stride pn + 3 */
        const int64_t ld = pn + 3;
        if (pn >= 1) {
            for (int64_t i = 0; i < NY * ld; i++) yg[i] = yw[i] = u[i];
            for (int rr = 0; rr < NY; rr++)
                for (int j = 0; j < M; j++) k->axpy_f32(yw + rr * ld, w[rr * M + j], x + j * pn, pn);
            k->axpy_panel_f32(yg, ld, NY, w, M, x, pn, M, pn);
            for (int64_t i = 0; i < NY * ld; i++) e[PANEL] = fmax(e[PANEL], memcmp(&yg[i], &yw[i], sizeof(float)) != 0);
        }

        /* dot_panel: NY query rows (x) by NK key rows (u), rows of dn values, stride dn + 3: against
         * the reference, and each dot the same bits as that dot alone (a 1 x 1 panel) */
        enum { NK = 11 };
        const int64_t dn = n / NK - 3, dld = dn + 3;
        if (dn >= 1) {
            float dg[NY * NK], dr[NY * NK], one;
            k->dot_panel_f32(u, dld, NK, x, dld, NY, dn, dg, NK);
            ref->dot_panel_f32(u, dld, NK, x, dld, NY, dn, dr, NK);
            for (int q = 0; q < NY; q++)
                for (int kk = 0; kk < NK; kk++) {
                    double mag = 0;
                    for (int64_t i = 0; i < dn; i++) mag += fabs((double)u[kk * dld + i] * x[q * dld + i]);
                    e[DOTS] = fmax(e[DOTS], fabs((double)dg[q * NK + kk] - dr[q * NK + kk]) / (mag + 1e-30));
                    k->dot_panel_f32(u + kk * dld, dld, 1, x + q * dld, dld, 1, dn, &one, 1);
                    e[DOTS_TILED] = fmax(e[DOTS_TILED], memcmp(&one, &dg[q * NK + kk], sizeof one) != 0);
                }
        }
    }
    static const char *names[14] = {"silu", "swiglu", "axpy", "fmadd", "scale (bits differing)",
                                    "rmsnorm", "l2norm", "rope", "softmax", "sigmoid_mul",
                                    "exp_sum", "axpy_panel = its axpy calls (bits differing)",
                                    "dot_panel", "dot_panel = each dot alone (bits differing)"};
    static const double tols[14] = {1e-5, 1e-5, 1e-6, 1e-6, 0, 1e-6, 1e-6, 1e-6, 1e-5, 1e-5, 1e-5, 0, 1e-6, 0};
    for (int i = 0; i < 14; i++) report(name, names[i], e[i], tols[i]);
    free(x); free(u); free(w); free(g); free(r);
}

/* conv_silu_f32 (the delta-net's conv): T rows of n channels (row stride n + 5, the rest of a row
 * left alone) after K-1 state rows, against the definition through the variant's own fmadd_f32 and
 * silu_f32 (a zeroed row, one fmadd per tap in order, then silu: bit for bit) and against the
 * reference variant */
static void check_conv(const char *name, const q35_kernels *k, const q35_kernels *ref) {
    enum { NMAX = 300, TMAX = 23, KMAX = 5 };
    const int64_t ld = NMAX + 5;
    float *x0 = xmalloc(sizeof(float) * TMAX * ld), *xg = xmalloc(sizeof(float) * TMAX * ld);
    float *xd = xmalloc(sizeof(float) * TMAX * ld), *xr = xmalloc(sizeof(float) * TMAX * ld);
    float *st = xmalloc(sizeof(float) * (KMAX - 1) * NMAX), *w = xmalloc(sizeof(float) * KMAX * NMAX);
    float *acc = xmalloc(sizeof(float) * NMAX);
    double bits = 0, err = 0;
    for (int rep = 0; rep < 24; rep++) {
        const int64_t n = rep < 6 ? 1 + 13 * rep : rand_len(NMAX);
        const int T = 1 + rep % TMAX, K = 2 + rep % (KMAX - 1);
        fill(x0, TMAX * ld, 3.0f); fill(st, (K - 1) * n, 3.0f); fill(w, K * n, 1.0f);
        memcpy(xg, x0, sizeof(float) * TMAX * ld); memcpy(xd, x0, sizeof(float) * TMAX * ld);
        memcpy(xr, x0, sizeof(float) * TMAX * ld);
        k->conv_silu_f32(xg, ld, T, st, n, w, n, K, n);
        ref->conv_silu_f32(xr, ld, T, st, n, w, n, K, n);
        for (int t = T - 1; t >= 0; t--) { /* the definition; rows t .. t+K-1 of u are still raw */
            memset(acc, 0, sizeof(float) * n);
            for (int i = 0; i < K; i++) {
                const int j = t + i;
                k->fmadd_f32(acc, w + i * n, j < K - 1 ? st + j * n : xd + (j - (K - 1)) * ld, n);
            }
            memcpy(xd + t * ld, acc, sizeof(float) * n);
            k->silu_f32(xd + t * ld, n);
        }
        for (int64_t i = 0; i < TMAX * ld; i++) bits = fmax(bits, memcmp(&xg[i], &xd[i], sizeof(float)) != 0);
        /* against the sum of the taps' magnitudes: a channel's sum may cancel, and silu moves no error more than 1.1x */
        for (int t = 0; t < T; t++)
            for (int64_t c = 0; c < n; c++) {
                double mag = 1e-30;
                for (int i = 0; i < K; i++) {
                    const int j = t + i;
                    mag += fabs((double)w[i * n + c] * (j < K - 1 ? st[j * n + c] : x0[(j - (K - 1)) * ld + c]));
                }
                err = fmax(err, fabs((double)xg[t * ld + c] - xr[t * ld + c]) / mag);
            }
    }
    report(name, "conv_silu = its fmadd and silu (bits differing)", bits, 0);
    report(name, "conv_silu", err, 1e-5);
    free(x0); free(xg); free(xd); free(xr); free(st); free(w); free(acc);
}

/* ------------------------------------------------------------------------- */
/* delta-net: the three algorithms of one variant against the same algorithm */
/* on the scalar variant (and, for scalar itself, against each other)        */

static const char *ALGO_NAMES[4] = {"auto", "recurrent", "fused", "chunked"};

static int run_head(int isa, int algo, int T, int Sk, int Sv, uint64_t seed, float *o, float *S) {
    const uint64_t saved = rng_state;
    rng_state = seed;
    float *q = xmalloc(sizeof(float) * T * Sk), *k = xmalloc(sizeof(float) * T * Sk), *v = xmalloc(sizeof(float) * T * Sv);
    float *g = xmalloc(sizeof(float) * T), *beta = xmalloc(sizeof(float) * T);
    for (int t = 0; t < T; t++) { /* q, k L2-normed like the model's; decay in (-0.6, 0]; gate in (0, 1) */
        double nq = 0, nk = 0;
        for (int i = 0; i < Sk; i++) {
            q[t * Sk + i] = frand(); k[t * Sk + i] = frand();
            nq += q[t * Sk + i] * (double)q[t * Sk + i]; nk += k[t * Sk + i] * (double)k[t * Sk + i];
        }
        for (int i = 0; i < Sk; i++) { q[t * Sk + i] /= (float)sqrt(nq); k[t * Sk + i] /= (float)sqrt(nk); }
        for (int j = 0; j < Sv; j++) v[t * Sv + j] = frand();
        g[t] = -0.3f * (frand() + 1.0f);
        beta[t] = 0.5f * (frand() + 1.0f);
    }
    for (int i = 0; i < Sk * Sv; i++) S[i] = 0.1f * frand(); /* a carried-in state */
    rng_state = saved;
    const q35_dn_head h = {.q = q, .k = k, .v = v, .g = g, .beta = beta, .ldqk = Sk, .ldv = Sv, .ldgb = 1,
                           .ldo = Sv, .S = S, .o = o, .T = T, .Sk = Sk, .Sv = Sv};
    const int rc = q35_deltanet_head(isa, algo, &h);
    free(q); free(k); free(v); free(g); free(beta);
    return rc;
}

static void check_deltanet(int isa, const char *name) {
    static const int shapes[][3] = {{150, 32, 32}, {70, 19, 37}, {20, 128, 128}}; /* T, Sk, Sv */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int T = shapes[s][0], Sk = shapes[s][1], Sv = shapes[s][2];
        float *o = xmalloc(sizeof(float) * T * Sv), *S = xmalloc(sizeof(float) * Sk * Sv);
        float *o_ref = xmalloc(sizeof(float) * T * Sv), *S_ref = xmalloc(sizeof(float) * Sk * Sv);
        for (int algo = Q35_DN_RECURRENT; algo <= Q35_DN_CHUNKED; algo++) {
            /* scalar: each algorithm against the recurrent one; others: against scalar's same algorithm */
            const int ref_algo = isa == Q35_ISA_SCALAR ? Q35_DN_RECURRENT : algo;
            if (isa == Q35_ISA_SCALAR && algo == Q35_DN_RECURRENT) continue;
            const uint64_t seed = 0x1234567ull + s;
            double err = INFINITY;
            if (run_head(isa, algo, T, Sk, Sv, seed, o, S) == 0 &&
                run_head(Q35_ISA_SCALAR, ref_algo, T, Sk, Sv, seed, o_ref, S_ref) == 0)
                err = fmax(scaled_err(o, o_ref, (int64_t)T * Sv), scaled_err(S, S_ref, (int64_t)Sk * Sv));
            char what[80];
            snprintf(what, sizeof what, "deltanet %s T=%d Sk=%d Sv=%d%s", ALGO_NAMES[algo], T, Sk, Sv,
                     isa == Q35_ISA_SCALAR ? " vs recurrent" : "");
            report(name, what, err, 1e-4);
        }
        free(o); free(S); free(o_ref); free(S_ref);
    }
}

/* ------------------------------------------------------------------------- */
/* the model file written by harness/selftest.py (all little-endian):        */
/*   "Q35MODEL" u32 version=1 u32 n_tensors                                  */
/*   i32 n_layer n_embd n_ff n_head n_head_kv head_dim rope_dims             */
/*   f32 rope_theta rms_eps  i32 conv_kernel ssm_state ssm_k_heads           */
/*   ssm_v_heads vocab_size  u8 recurrent[n_layer]                           */
/*   per tensor: i32 layer slot type, i64 rows cols nbytes, then nbytes of   */
/*   data, zero-padded to a multiple of 64 from the start of the file        */

typedef struct {
    q35_model *m;
    uint8_t *buf;
    int32_t vocab;
} model_file;

typedef struct { const uint8_t *p; size_t left; } reader;
static int rd(reader *r, void *dst, size_t n) {
    if (r->left < n) return -1;
    memcpy(dst, r->p, n);
    r->p += n; r->left -= n;
    return 0;
}

/* 0, or -1 with the reason in err */
static int load_model(const char *path, model_file *mf, char *err, size_t errn) {
    memset(mf, 0, sizeof *mf);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errn, "cannot open %s", path); return -1; }
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 16 || size > (1L << 30) || fseek(f, 0, SEEK_SET)) {
        fclose(f); snprintf(err, errn, "%s: not a model file of a sane size", path); return -1;
    }
    uint8_t *buf = aligned_alloc(64, ((size_t)size + 63) / 64 * 64);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fclose(f); free(buf); snprintf(err, errn, "%s: cannot read", path); return -1;
    }
    fclose(f);
    reader r = {buf, (size_t)size};
    char magic[8];
    uint32_t version, n_tensors;
    q35_config c;
    memset(&c, 0, sizeof c);
    int bad = rd(&r, magic, 8) || memcmp(magic, "Q35MODEL", 8) || rd(&r, &version, 4) || version != 1 ||
              rd(&r, &n_tensors, 4);
    int32_t ints[7], tail[5];
    float fl[2];
    bad = bad || rd(&r, ints, sizeof ints) || rd(&r, fl, sizeof fl) || rd(&r, tail, sizeof tail);
    if (!bad) {
        c.n_layer = ints[0]; c.n_embd = ints[1]; c.n_ff = ints[2]; c.n_head = ints[3]; c.n_head_kv = ints[4];
        c.head_dim = ints[5]; c.rope_dims = ints[6]; c.rope_theta = fl[0]; c.rms_eps = fl[1];
        c.conv_kernel = tail[0]; c.ssm_state = tail[1]; c.ssm_k_heads = tail[2]; c.ssm_v_heads = tail[3];
        c.vocab_size = tail[4];
        bad = c.n_layer < 1 || c.n_layer > Q35_MAX_LAYERS || rd(&r, c.recurrent, (size_t)c.n_layer);
    }
    if (bad) { free(buf); snprintf(err, errn, "%s: bad header (not written by harness selftest?)", path); return -1; }
    q35_model *m = q35_model_new(&c);
    if (!m) { free(buf); snprintf(err, errn, "%s: configuration out of range", path); return -1; }
    for (uint32_t i = 0; i < n_tensors; i++) {
        int32_t h[3];
        int64_t dims[3];
        if (rd(&r, h, sizeof h) || rd(&r, dims, sizeof dims)) { snprintf(err, errn, "%s: truncated at tensor %u", path, i); goto fail; }
        const int64_t elems = q35_type_block_elems(h[2]), rows = dims[0], cols = dims[1], nbytes = dims[2];
        if (elems <= 0 || rows < 1 || cols < 1 || cols % elems || rows > (1 << 24) || cols > (1 << 24) ||
            nbytes != rows * (cols / elems) * q35_type_block_bytes(h[2]) || (uint64_t)nbytes > r.left) {
            snprintf(err, errn, "%s: tensor %u: bad type %d / shape %lld x %lld / %lld bytes", path, i, h[2],
                     (long long)rows, (long long)cols, (long long)nbytes);
            goto fail;
        }
        const q35_tensor t = {.data = r.p, .type = h[2], .rows = rows, .cols = cols};
        if (q35_model_set(m, h[0], h[1], t)) { snprintf(err, errn, "%s: tensor %u: bad layer %d / slot %d", path, i, h[0], h[1]); goto fail; }
        r.p += nbytes; r.left -= (size_t)nbytes;
        const size_t pad = (64 - (size_t)(r.p - buf) % 64) % 64;
        if (r.left < pad) { snprintf(err, errn, "%s: truncated after tensor %u", path, i); goto fail; }
        r.p += pad; r.left -= pad;
    }
    if (r.left) { snprintf(err, errn, "%s: %zu bytes after the last tensor", path, r.left); goto fail; }
    if (q35_model_check(m)) { snprintf(err, errn, "%s: the tensors do not make a complete model", path); goto fail; }
    mf->m = m; mf->buf = buf; mf->vocab = c.vocab_size;
    return 0;
fail:
    q35_model_free(m);
    free(buf);
    return -1;
}

enum { FWD_PREFILL = 16, FWD_DECODE = 6 };

/* logits [FWD_PREFILL + FWD_DECODE][vocab]: a prefill in u-batches of 8 (the
 * larger than fdn_threshold = 4, so the chunked delta-net), then decodes (fused) */
static int forward(const model_file *mf, int isa, int repack, int unfused, float *logits) {
    const q35_session_params p = {.isa = isa, .n_threads = 1, .ubatch = 8, .fdn_threshold = 4,
                                  .dn_algo = Q35_DN_AUTO, .n_ctx = 64, .profile = 0, .repack = repack,
                                  .unfused_swiglu = unfused};
    q35_session *s = q35_session_new(mf->m, &p);
    if (!s) return -1;
    int32_t tokens[FWD_PREFILL + FWD_DECODE];
    uint64_t st = 0x5EEDull;
    for (int i = 0; i < FWD_PREFILL + FWD_DECODE; i++) { st = st * 6364136223846793005ull + 1442695040888963407ull; tokens[i] = (int32_t)((st >> 33) % (uint64_t)mf->vocab); }
    int rc = q35_session_forward(s, tokens, FWD_PREFILL, logits, 1);
    for (int i = 0; i < FWD_DECODE && rc == 0; i++)
        rc = q35_session_forward(s, tokens + FWD_PREFILL + i, 1, logits + (int64_t)(FWD_PREFILL + i) * mf->vocab, 0);
    q35_session_free(s);
    return rc;
}

static void check_forward(const model_file *mf, int isa, int repack, const char *name, const float *ref) {
    const int64_t n = (int64_t)(FWD_PREFILL + FWD_DECODE) * mf->vocab;
    float *got = xmalloc(sizeof(float) * (size_t)n);
    double err = INFINITY;
    if (forward(mf, isa, repack, 0, got) == 0) {
        double ss = 0, e = 0;
        for (int64_t i = 0; i < n; i++) { ss += (double)ref[i] * ref[i]; e = fmax(e, fabs((double)got[i] - ref[i])); }
        err = e / (sqrt(ss / n) + 1e-30); /* NaN stays NaN and fails */
        for (int64_t i = 0; i < n; i++) if (!isfinite(got[i])) err = INFINITY;
    }
    char what[80];
    snprintf(what, sizeof what, "forward %d prefill + %d decode logits%s", FWD_PREFILL, FWD_DECODE,
             repack ? ", repacked" : "");
    report(name, what, err, 0.3);
    if (repack) { /* the SwiGLU folded into the repacked gate/up product: the same bits as apart */
        float *apart = xmalloc(sizeof(float) * (size_t)n);
        const int rc = forward(mf, isa, repack, 1, apart);
        report(name, "forward, repacked: SwiGLU folded = apart (bits differing)",
               rc == 0 ? memcmp(got, apart, sizeof(float) * (size_t)n) != 0 : INFINITY, 0);
        free(apart);
    }
    free(got);
}

/* ------------------------------------------------------------------------- */
/* quantization formats: round trip error relative to the signal RMS        */

static void check_formats(void) {
    static const struct { int type; const char *name; double tol; } fmts[] = {
        {Q35_TYPE_F16, "F16", 1e-3}, {Q35_TYPE_BF16, "BF16", 5e-3}, {Q35_TYPE_Q8_0, "Q8_0", 1e-2},
        {Q35_TYPE_Q6_K, "Q6_K", 4e-2}, {Q35_TYPE_Q5_K, "Q5_K", 6e-2}, {Q35_TYPE_Q4_K, "Q4_K", 0.12},
        {Q35_TYPE_Q4_0, "Q4_0", 0.15}, {Q35_TYPE_IQ4_XS, "IQ4_XS", 0.12}, {Q35_TYPE_Q8_K, "Q8_K", 1e-2},
        {Q35_TYPE_MXFP4, "MXFP4", 0.25}, {Q35_TYPE_NVFP4, "NVFP4", 0.15}, {Q35_TYPE_Q4_1, "Q4_1", 0.15},
        {Q35_TYPE_Q5_0, "Q5_0", 8e-2}, {Q35_TYPE_Q5_1, "Q5_1", 6e-2}, {Q35_TYPE_IQ4_NL, "IQ4_NL", 0.12},
        {Q35_TYPE_Q8_1, "Q8_1", 1e-2}, {Q35_TYPE_Q2_K, "Q2_K", 0.6}, {Q35_TYPE_Q3_K, "Q3_K", 0.3},
        {Q35_TYPE_TQ1_0, "TQ1_0", 0.8}, {Q35_TYPE_TQ2_0, "TQ2_0", 0.8},
    };
    enum { ROWS = 8, COLS = 1024 };
    float *x = xmalloc(ROWS * COLS * sizeof *x), *y = xmalloc(ROWS * COLS * sizeof *y);
    unsigned char *q = xmalloc(ROWS * COLS * 4);
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        for (int i = 0; i < ROWS * COLS; i++) x[i] = frand() + frand() + frand() + frand(); /* roughly Gaussian */
        char what[80];
        snprintf(what, sizeof what, "%s quantize/dequantize round trip", fmts[f].name);
        if (q35_quantize(fmts[f].type, x, q, ROWS, COLS) || q35_dequantize(fmts[f].type, q, y, ROWS, COLS)) {
            report("format", what, INFINITY, fmts[f].tol);
            continue;
        }
        double se = 0, ss = 0;
        for (int i = 0; i < ROWS * COLS; i++) { se += (x[i] - y[i]) * (double)(x[i] - y[i]); ss += (double)x[i] * x[i]; }
        report("format", what, sqrt(se / ss), fmts[f].tol);
    }
    free(x); free(y); free(q);
}

/* ------------------------------------------------------------------------- */

static void check_variant(int isa, const model_file *mf, const float *ref_logits) {
    const q35_kernels *ref = q35_kernels_for(Q35_ISA_SCALAR), *k = q35_kernels_for(isa);
    const char *name = q35_isa_name(isa);
    printf("== %s: kernel table \"%s\"\n", name, k->name);
    if (isa != Q35_ISA_SCALAR) {
        check_dots(name, k, ref);
        check_converters(name, k, ref);
        check_vecops(name, k, ref);
        check_conv(name, k, ref);
    }
#if Q35_HAVE_X86
    if (isa == Q35_ISA_AVX512) { /* the other AVX512 table too: with VNNI dots if auto chose without, and back */
        q35_kernels other = q35_kernels_avx512vnni;
        const char *other_name = "avx512+vnni";
#if defined(Q35_AVX512_SIMDE)
        const int can_vnni = 1;
#else
        q35_cpu_features f;
        q35_cpu_detect(&f);
        const int can_vnni = f.avx512vnni;
#endif
        if (q35_avx512_vnni_usable()) { other = q35_kernels_avx512; other_name = "avx512-novnni"; }
        if (q35_avx512_vnni_usable() || can_vnni) {
            q35_kernels_fill(&other, &q35_kernels_avx512);
            q35_kernels_fill(&other, q35_kernels_for(Q35_ISA_AVX2));
            printf("== %s: kernel table \"%s\"\n", other_name, other.name);
            check_dots(other_name, &other, ref);
        } else {
            printf("%-12s skipped: this CPU has no avx512vnni\n", "avx512+vnni");
        }
    }
#endif
#if Q35_HAVE_AVXVNNI
    if (isa == Q35_ISA_AVX2) { /* the other AVX2 table too: with the AVX-VNNI products if auto chose without, and back */
        q35_cpu_features f;
        q35_cpu_detect(&f);
        q35_kernels other = *q35_compiled_table(Q35_ISA_AVX2);
        const char *other_name = "avx2-novnni";
        if (!q35_avx_vnni_usable()) { q35_avxvnni_fill(&other); other_name = "avx2+avxvnni"; }
        if (q35_avx_vnni_usable() || f.avxvnni) {
            q35_kernels_fill(&other, ref);
            printf("== %s: kernel table \"%s\"\n", other_name, other.name);
            check_dots(other_name, &other, ref);
        } else {
            printf("%-12s skipped: this CPU has no avxvnni\n", "avx2+avxvnni");
        }
    }
#endif
    check_deltanet(isa, name);
    if (mf->m) {
        if (isa == Q35_ISA_SCALAR) { /* prefill and decode of the same tokens agree */
            printf("%-12s forward logits are the reference of the other variants\n", name);
        } else {
            check_forward(mf, isa, 0, name, ref_logits);
        }
        if (q35_kernels_for(isa)->gemm_packed[Q35_TYPE_Q4_K]) check_forward(mf, isa, 1, name, ref_logits);
    }
}

int main(int argc, char **argv) {
    const char *want = "all", *model_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--isa") && i + 1 < argc) want = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
        else { fprintf(stderr, "usage: %s [--isa scalar|avx2|avx512|neon|all] [--model FILE.q35m]\n", argv[0]); return 2; }
    }
    int known = !strcmp(want, "all");
    for (int isa = 0; isa < Q35_ISA_COUNT; isa++) known |= !strcmp(want, q35_isa_name(isa));
    if (!known) { fprintf(stderr, "selftest: unknown ISA %s (scalar, avx2, avx512, neon, all)\n", want); return 2; }

    q35_cpu_features f;
    q35_cpu_detect(&f);
    printf("cpu: avx2=%d fma=%d f16c=%d avxvnni=%d avx512f=%d avx512bw=%d avx512vl=%d avx512vnni=%d neon=%d dotprod=%d\n",
           f.avx2, f.fma, f.f16c, f.avxvnni, f.avx512f, f.avx512bw, f.avx512vl, f.avx512vnni, f.neon, f.dotprod);
#if defined(Q35_AVX512_SIMDE)
    printf("build: the avx512 variant runs on SIMDe's emulation of the AVX512 intrinsics (a logic check)\n");
#endif

    model_file mf = {0};
    float *ref_logits = NULL;
    if (model_path) {
        char err[512];
        if (load_model(model_path, &mf, err, sizeof err)) { fprintf(stderr, "selftest: %s\n", err); return 1; }
        const int64_t n = (int64_t)(FWD_PREFILL + FWD_DECODE) * mf.vocab;
        ref_logits = xmalloc(sizeof(float) * (size_t)n);
        double err_pd = INFINITY;
        /* the scalar reference run; decode rows vs a prefill of the same tokens: same math, other u-batching */
        if (forward(&mf, Q35_ISA_SCALAR, 0, 0, ref_logits) == 0) {
            err_pd = 0;
            for (int64_t i = 0; i < n; i++) if (!isfinite(ref_logits[i])) err_pd = INFINITY;
        }
        report("scalar", "forward logits finite", err_pd, 0);
    } else {
        printf("forward pass: skipped (no --model FILE; `harness selftest` writes one)\n");
    }

    for (int isa = 0; isa < Q35_ISA_COUNT; isa++) {
        const char *name = q35_isa_name(isa);
        if (strcmp(want, "all") && strcmp(want, name)) continue;
        if (!q35_isa_supported(isa)) {
            const char *why = !q35_isa_compiled(isa) ? "not compiled for this target" : "this CPU cannot run it";
            printf("%-12s skipped: %s\n", name, why);
            if (strcmp(want, "all")) {
                printf("0 passed, 0 failed (%s cannot run here: %s)\n", name, why);
                return 77;
            }
            continue;
        }
        check_variant(isa, &mf, ref_logits);
    }
    check_formats();
    printf("%d passed, %d failed\n", checks - failures, failures);
    if (mf.m) { q35_model_free(mf.m); free(mf.buf); }
    free(ref_logits);
    return failures ? 1 : 0;
}

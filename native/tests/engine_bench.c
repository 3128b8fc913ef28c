/* engine_bench: the engine's prefill and decode speed on a synthetic dense Qwen3.5 model,
 * with no Python, no model file and no network: a standalone driver over the public C API
 * (q35.h), meant to be linked statically and copied to a machine that has nothing else.
 *
 *   gcc -O2 -std=gnu11 -Inative/include -Inative/src $(find native/src -name '*.c') \
 *       native/tests/engine_bench.c -static -lm -pthread -o engine_bench-static
 *
 *   engine_bench --preset 0.8b|2b|4b|9b|tiny --quant q4_k_m|q8_0|bf16 --isa scalar|avx2|avx512|neon
 *                -t THREADS -p N_PROMPT -n N_GEN -r REPS [--ubatch 512] [--fdn-threshold 512]
 *                [--dn-algo auto|recurrent|fused|chunked] [--warmup short|full|none] [--seed S] [--tag STR]
 *   engine_bench --bandwidth [-t THREADS] [--bw-mb 1024] [-r REPS] [--tag STR]
 *
 * -t, -p, -n and --isa take comma lists (-t 1,2,4,8,16): every combination runs on one model,
 * which is built once (threads outer, ISA inner, then pp before tg). -p 0 or -n 0 skips a test.
 *
 * Output (stdout), one JSON object per line: first a header (CPU features from q35_cpu_detect,
 * the best ISA, online / usable CPUs, the model's bytes and how long building it took), then one
 * line per test ("pp512", "tg128") with the tok/s of every rep. Progress and errors go to stderr.
 *
 * The model: the preset's shapes (as harness/presets.py), delta-net and full-attention layers
 * interleaved by full_attention_interval = 4, LM head tied to the token embedding. Weight types
 * follow harness/synth.py's quant plan: q4_k_m = Q4_K everywhere except the embedding / LM head
 * (Q6_K) and attn_v / delta-net attn_qkv and ffn_down in the layers llama.cpp's use_more_bits()
 * picks (Q6_K); q8_0 = every matrix Q8_0; bf16 = every matrix BF16; norms, ssm_a, ssm_dt and
 * ssm_conv1d F32 always. Quantized blocks hold pseudo-random bytes (xorshift) with their f16
 * scale fields overwritten by small normal f16 values chosen so that weights are about zero-mean
 * with a std of a few 1e-2; BF16 weights are random normal bf16 values of the same size; the F32
 * tensors are drawn like synth.py's. Speed does not depend on the values, but this keeps every
 * activation finite and away from denormals; each timed forward's logits are checked and the
 * count of non-finite logits is reported ("nonfinite", 0 expected).
 *
 * pp: N_PROMPT random tokens from an empty session (reset before every rep), logits only for the
 * last token. tg: a 1-token prompt (untimed), then N_GEN single-token forwards, timed together,
 * each with its logits. Before the timed reps of each test one warm-up run: --warmup short (the
 * default) prefills min(N_PROMPT, 32) / decodes min(N_GEN, 4) tokens (the weights are already
 * resident: the fill touched every page), full repeats the whole test once, none skips it.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "q35.h"

/* ------------------------------------------------------------------------- */
/* presets (harness/presets.py)                                              */

typedef struct {
    const char *name;
    int n_layer, n_embd, n_ff, n_head, n_head_kv, ssm_k_heads, ssm_v_heads;
    int head_dim, rope_dims, ssm_state, conv_kernel, vocab, fa_interval;
} preset;

static const preset PRESETS[] = {
    {"tiny", 8, 256, 512, 4, 2, 4, 8, 64, 16, 32, 4, 4096, 4},
    {"0.8b", 24, 1024, 3584, 8, 2, 16, 16, 256, 64, 128, 4, 248320, 4},
    {"2b", 24, 2048, 6144, 8, 2, 16, 16, 256, 64, 128, 4, 248320, 4},
    {"4b", 32, 2560, 9216, 16, 4, 16, 32, 256, 64, 128, 4, 248320, 4},
    {"9b", 32, 4096, 12288, 16, 4, 16, 32, 256, 64, 128, 4, 248320, 4},  /* untied in the real model */
};
#define N_PRESETS ((int)(sizeof PRESETS / sizeof PRESETS[0]))

/* ------------------------------------------------------------------------- */
/* small helpers                                                             */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline uint64_t xs64(uint64_t *s) {   /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t seed_mix(uint64_t a, uint64_t b) {   /* splitmix64 of a combination: never 0 */
    uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 0x1234567ULL;
}

static double urand(uint64_t *s) { return (double)(xs64(s) >> 11) * (1.0 / 9007199254740992.0); }

static void die(const char *msg) {
    fprintf(stderr, "engine_bench: %s\n", msg);
    exit(1);
}

/* f16 with the given exponent (value in [2^e, 2^(e+1))) and a random mantissa: always normal */
static uint16_t f16_normal(int e, uint64_t r) {
    if (e < -14) e = -14;
    if (e > 15) e = 15;
    return (uint16_t)(((e + 15) << 10) | (r & 0x3FF));
}

/* ------------------------------------------------------------------------- */
/* the model's tensors                                                       */

typedef struct {
    int layer, slot, type;
    int64_t rows, cols, bytes, off;
    int kind;   /* 0 quantized / bf16 matrix (filled by the threads); 1 F32 (filled serially) */
    int f32_init;   /* F32 only: 0 norm, 1 ssm_a, 2 ssm_dt, 3 conv */
} tdesc;

typedef struct {
    tdesc *t;
    int n, cap;
    int64_t total;
} tlist;

static void add_tensor(tlist *L, int layer, int slot, int type, int64_t rows, int64_t cols, int f32_init) {
    if (L->n == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 256;
        L->t = realloc(L->t, sizeof(tdesc) * (size_t)L->cap);
        if (!L->t) die("out of memory (tensor list)");
    }
    const int64_t be = q35_type_block_elems(type), bb = q35_type_block_bytes(type);
    if (be <= 0 || bb <= 0 || cols % be) {
        fprintf(stderr, "engine_bench: type %d does not fit a row of %lld\n", type, (long long)cols);
        exit(1);
    }
    tdesc d = {layer, slot, type, rows, cols, rows * (cols / be) * bb, 0, type == Q35_TYPE_F32, f32_init};
    d.off = (L->total + 63) & ~(int64_t)63;
    L->total = d.off + d.bytes;
    L->t[L->n++] = d;
}

/* llama-quant.cpp: first eighth, last eighth, and every third layer in between */
static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

typedef struct { const char *name; int base, lm_head, more_bits; const char *recipe; } quant_plan;
static const quant_plan QUANTS[] = {
    {"q4_k_m", Q35_TYPE_Q4_K, Q35_TYPE_Q6_K, Q35_TYPE_Q6_K,
     "Q4_K everywhere except: token embedding / tied LM head Q6_K; attn_v / delta-net attn_qkv and "
     "ffn_down Q6_K in the layers use_more_bits() picks (first 1/8, last 1/8, every 3rd between); "
     "norms, ssm_a, ssm_dt, ssm_conv1d F32"},
    {"q8_0", Q35_TYPE_Q8_0, Q35_TYPE_Q8_0, Q35_TYPE_Q8_0, "every matrix Q8_0; norms and small delta-net tensors F32"},
    {"bf16", Q35_TYPE_BF16, Q35_TYPE_BF16, Q35_TYPE_BF16, "every matrix BF16; norms and small delta-net tensors F32"},
};
#define N_QUANTS ((int)(sizeof QUANTS / sizeof QUANTS[0]))

static void plan_model(const preset *P, const quant_plan *Q, tlist *L, q35_config *c) {
    memset(c, 0, sizeof *c);
    c->n_layer = P->n_layer; c->n_embd = P->n_embd; c->n_ff = P->n_ff;
    c->n_head = P->n_head; c->n_head_kv = P->n_head_kv; c->head_dim = P->head_dim; c->rope_dims = P->rope_dims;
    c->rope_theta = 1e7f; c->rms_eps = 1e-6f; c->conv_kernel = P->conv_kernel; c->ssm_state = P->ssm_state;
    c->ssm_k_heads = P->ssm_k_heads; c->ssm_v_heads = P->ssm_v_heads; c->vocab_size = P->vocab;
    for (int i = 0; i < P->n_layer; i++) c->recurrent[i] = (uint8_t)((i + 1) % P->fa_interval != 0);

    const int64_t E = P->n_embd, V = P->vocab, F = P->n_ff, Hv = P->ssm_v_heads;
    const int64_t KD = (int64_t)P->ssm_k_heads * P->ssm_state, VD = Hv * P->ssm_state, CD = 2 * KD + VD;
    const int64_t HD = (int64_t)P->n_head * P->head_dim, KVD = (int64_t)P->n_head_kv * P->head_dim;
    const int B = Q->base;
    add_tensor(L, -1, Q35_W_TOKEN_EMBD, Q->lm_head, V, E, 0);   /* tied: also the LM head */
    add_tensor(L, -1, Q35_W_OUTPUT_NORM, Q35_TYPE_F32, 1, E, 0);
    for (int il = 0; il < P->n_layer; il++) {
        /* every layer has exactly one attn_v / attn_qkv, so its index among them is il */
        const int more = use_more_bits(il, P->n_layer);
        add_tensor(L, il, Q35_W_ATTN_NORM, Q35_TYPE_F32, 1, E, 0);
        add_tensor(L, il, Q35_W_POST_NORM, Q35_TYPE_F32, 1, E, 0);
        if (c->recurrent[il]) {
            add_tensor(L, il, Q35_W_SSM_QKV, more ? Q->more_bits : B, CD, E, 0);
            add_tensor(L, il, Q35_W_SSM_GATE, B, VD, E, 0);
            add_tensor(L, il, Q35_W_SSM_CONV, Q35_TYPE_F32, CD, P->conv_kernel, 3);
            add_tensor(L, il, Q35_W_SSM_DT, Q35_TYPE_F32, 1, Hv, 2);
            add_tensor(L, il, Q35_W_SSM_A, Q35_TYPE_F32, 1, Hv, 1);
            add_tensor(L, il, Q35_W_SSM_BETA, B, Hv, E, 0);
            add_tensor(L, il, Q35_W_SSM_ALPHA, B, Hv, E, 0);
            add_tensor(L, il, Q35_W_SSM_NORM, Q35_TYPE_F32, 1, P->ssm_state, 0);
            add_tensor(L, il, Q35_W_SSM_OUT, B, E, VD, 0);
        } else {
            add_tensor(L, il, Q35_W_ATTN_Q, B, 2 * HD, E, 0);
            add_tensor(L, il, Q35_W_ATTN_K, B, KVD, E, 0);
            add_tensor(L, il, Q35_W_ATTN_V, more ? Q->more_bits : B, KVD, E, 0);
            add_tensor(L, il, Q35_W_ATTN_Q_NORM, Q35_TYPE_F32, 1, P->head_dim, 0);
            add_tensor(L, il, Q35_W_ATTN_K_NORM, Q35_TYPE_F32, 1, P->head_dim, 0);
            add_tensor(L, il, Q35_W_ATTN_OUTPUT, B, E, HD, 0);
        }
        add_tensor(L, il, Q35_W_FFN_GATE, B, F, E, 0);
        add_tensor(L, il, Q35_W_FFN_UP, B, F, E, 0);
        add_tensor(L, il, Q35_W_FFN_DOWN, more ? Q->more_bits : B, E, F, 0);
    }
}

/* bytes a decoded token reads: every trunk matrix, the LM head, one embedding row */
static int64_t bytes_per_token(const tlist *L) {
    int64_t n = 0;
    for (int i = 0; i < L->n; i++) {
        n += L->t[i].bytes;
        if (L->t[i].layer < 0 && L->t[i].slot == Q35_W_TOKEN_EMBD) n += L->t[i].bytes / L->t[i].rows;
    }
    return n;
}

/* ---- the fill: every thread takes its share of every matrix's blocks ---- */

typedef struct { uint8_t *base; const tlist *L; int ith, nth; uint64_t seed; } fill_arg;

static void fill_blocks(uint8_t *p, int64_t nblk, int type, uint64_t *s) {
    const int64_t bb = q35_type_block_bytes(type);
    /* random bytes, 8 at a time (memcpy keeps unaligned stores legal) */
    const int64_t n = nblk * bb;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) { uint64_t r = xs64(s); memcpy(p + i, &r, 8); }
    if (i < n) { uint64_t r = xs64(s); memcpy(p + i, &r, (size_t)(n - i)); }
    /* scale fields: weights about zero-mean, std a few 1e-2 */
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *blk = p + b * bb;
        const uint64_t r = xs64(s);
        uint16_t h[2];
        switch (type) {
        case Q35_TYPE_Q4_K:   /* w = d sc q - dmin m, sc, m in 0..63, q in 0..15: dmin = 7.5 d zeroes the mean */
            h[0] = f16_normal(-13, r);                       /* d in [1.2e-4, 2.4e-4): std(w) ~ 0.05 */
            h[1] = q35_fp32_to_fp16(7.5f * q35_fp16_to_fp32(h[0]));
            memcpy(blk, h, 4);
            break;
        case Q35_TYPE_Q6_K:   /* w = d sc (q - 32), sc int8, q in 0..63: std(w) ~ 1370 d */
            h[0] = f16_normal(-14, r);                       /* d in [6.1e-5, 1.2e-4): std ~ 0.1 */
            memcpy(blk + bb - 2, h, 2);
            break;
        case Q35_TYPE_Q8_0:   /* w = d q, q int8: std ~ 74 d */
            h[0] = f16_normal(-12, r);                       /* d in [2.4e-4, 4.9e-4): std ~ 0.03 */
            memcpy(blk, h, 2);
            break;
        case Q35_TYPE_Q4_0:   /* w = d (q - 8) */
            h[0] = f16_normal(-8, r);
            memcpy(blk, h, 2);
            break;
        default:
            break;
        }
    }
}

static void fill_bf16(uint16_t *p, int64_t n, uint64_t *s) {
    /* sign random, exponent 2^-8 .. 2^-5 (so |w| in [0.004, 0.06)), mantissa random: never
     * zero, denormal, inf or NaN */
    for (int64_t i = 0; i < n; i++) {
        const uint64_t r = xs64(s);
        const uint32_t sign = (uint32_t)(r >> 63), e = 127 - 8 + (uint32_t)((r >> 7) & 3), m = (uint32_t)(r & 0x7F);
        p[i] = (uint16_t)((sign << 15) | (e << 7) | m);
    }
}

static void *fill_thread(void *argp) {
    fill_arg *a = argp;
    for (int i = 0; i < a->L->n; i++) {
        const tdesc *t = &a->L->t[i];
        if (t->kind) continue;
        uint64_t s = seed_mix(a->seed, (uint64_t)i * 1024 + (uint64_t)a->ith);
        uint8_t *p = a->base + t->off;
        if (t->type == Q35_TYPE_BF16 || t->type == Q35_TYPE_F16) {
            const int64_t n = t->rows * t->cols, lo = n * a->ith / a->nth, hi = n * (a->ith + 1) / a->nth;
            if (t->type == Q35_TYPE_BF16) fill_bf16((uint16_t *)p + lo, hi - lo, &s);
            else for (int64_t k = lo; k < hi; k++) ((uint16_t *)p)[k] = f16_normal(-8 + (int)(xs64(&s) & 3), xs64(&s)) | (uint16_t)((xs64(&s) & 1) << 15);
        } else {
            const int64_t nblk = t->rows * (t->cols / q35_type_block_elems(t->type));
            const int64_t lo = nblk * a->ith / a->nth, hi = nblk * (a->ith + 1) / a->nth;
            fill_blocks(p + lo * q35_type_block_bytes(t->type), hi - lo, t->type, &s);
        }
    }
    return NULL;
}

static void fill_f32(float *w, const tdesc *t, int conv_kernel, uint64_t seed) {
    uint64_t s = seed_mix(seed, (uint64_t)t->off);
    const int64_t n = t->rows * t->cols;
    for (int64_t i = 0; i < n; i++) {
        const double u = urand(&s);
        switch (t->f32_init) {
        case 0: w[i] = (float)(1.0 + 0.2 * (u - 0.5)); break;          /* norms: 1 +- 0.1 */
        case 1: w[i] = (float)-(1.0 + 15.0 * u); break;                /* ssm_a = -exp(A_log), A in [1, 16] */
        case 2: {                                                       /* softplus^-1(dt), dt in [1e-3, 1e-1] */
            const double dt = exp(log(1e-3) + u * (log(1e-1) - log(1e-3)));
            w[i] = (float)(dt + log(-expm1(-dt)));
            break;
        }
        default: w[i] = (float)((2.0 * u - 1.0) * sqrt(3.0) / sqrt((double)conv_kernel)); break;  /* std 1/sqrt(Kc) */
        }
    }
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int affinity_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
}

/* ------------------------------------------------------------------------- */
/* command line                                                              */

#define MAX_LIST 32
typedef struct { int v[MAX_LIST]; int n; } ilist;

static void parse_ilist(const char *s, ilist *out, const char *what, int lo) {
    out->n = 0;
    char *dup = strdup(s), *save = NULL;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(tok, &end, 10);
        if (*end || end == tok || v < lo || v > 1000000 || out->n == MAX_LIST) {
            fprintf(stderr, "engine_bench: bad %s value '%s'\n", what, tok);
            exit(2);
        }
        out->v[out->n++] = (int)v;
    }
    free(dup);
    if (out->n == 0) { fprintf(stderr, "engine_bench: empty %s list\n", what); exit(2); }
}

static int isa_by_name(const char *s) {
    for (int i = 0; i < Q35_ISA_COUNT; i++)
        if (!strcmp(s, q35_isa_name(i))) return i;
    if (!strcmp(s, "auto") || !strcmp(s, "best")) return q35_isa_best();
    return -1;
}

static void usage(void) {
    fprintf(stderr,
            "usage: engine_bench --preset 0.8b|2b|4b|9b|tiny --quant q4_k_m|q8_0|bf16 --isa scalar|avx2|avx512|neon|auto\n"
            "                    -t THREADS -p N_PROMPT -n N_GEN -r REPS [--ubatch 512] [--fdn-threshold 512]\n"
            "                    [--dn-algo auto|recurrent|fused|chunked] [--warmup short|full|none] [--seed S] [--tag STR]\n"
            "       engine_bench --bandwidth [-t THREADS] [--bw-mb 1024] [-r REPS] [--tag STR]\n"
            "-t, -p, -n and --isa take comma lists; -p 0 / -n 0 skip a test.\n");
}

/* ------------------------------------------------------------------------- */
/* results                                                                   */

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
    double *c = malloc(sizeof(double) * (size_t)n);
    memcpy(c, v, sizeof(double) * (size_t)n);
    qsort(c, (size_t)n, sizeof(double), cmp_d);
    const double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

typedef struct { int64_t nonfinite; double absmax; } logit_check;

static void check_logits(const float *l, int64_t n, logit_check *c) {
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(l[i])) c->nonfinite++;
        else if (fabsf(l[i]) > c->absmax) c->absmax = fabsf(l[i]);
    }
}

int main(int argc, char **argv) {
    const char *preset_name = "0.8b", *quant_name = "q4_k_m", *isa_arg = NULL, *warmup = "short", *dn_name = "auto";
    const char *tag = "";
    ilist threads = {{1}, 1}, n_prompt = {{512}, 1}, n_gen = {{128}, 1}, isas = {{0}, 0};
    int reps = 5, ubatch = 512, fdn_threshold = 512, bandwidth = 0, bw_mb = 1024, threads_given = 0;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED() do { if (!v) { fprintf(stderr, "engine_bench: %s needs a value\n", a); return 2; } i++; } while (0)
        if (!strcmp(a, "--preset")) { NEED(); preset_name = v; }
        else if (!strcmp(a, "--quant")) { NEED(); quant_name = v; }
        else if (!strcmp(a, "--isa")) { NEED(); isa_arg = v; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { NEED(); parse_ilist(v, &threads, "threads", 1); threads_given = 1; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) { NEED(); parse_ilist(v, &n_prompt, "n_prompt", 0); }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) { NEED(); parse_ilist(v, &n_gen, "n_gen", 0); }
        else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) { NEED(); reps = atoi(v); }
        else if (!strcmp(a, "--ubatch") || !strcmp(a, "-ub")) { NEED(); ubatch = atoi(v); }
        else if (!strcmp(a, "--fdn-threshold")) { NEED(); fdn_threshold = atoi(v); }
        else if (!strcmp(a, "--dn-algo")) { NEED(); dn_name = v; }
        else if (!strcmp(a, "--warmup")) { NEED(); warmup = v; }
        else if (!strcmp(a, "--seed")) { NEED(); seed = strtoull(v, NULL, 10); }
        else if (!strcmp(a, "--bandwidth")) { bandwidth = 1; }
        else if (!strcmp(a, "--tag")) { NEED(); tag = v; }
        else if (!strcmp(a, "--bw-mb")) { NEED(); bw_mb = atoi(v); }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else { fprintf(stderr, "engine_bench: unknown argument '%s'\n", a); usage(); return 2; }
#undef NEED
    }
    for (const char *c = tag; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) { fprintf(stderr, "engine_bench: --tag must not hold quotes, backslashes or control characters\n"); return 2; }
    if (reps < 1 || ubatch < 1 || fdn_threshold < 0 || bw_mb < 1) { fprintf(stderr, "engine_bench: bad -r/--ubatch/--fdn-threshold/--bw-mb\n"); return 2; }
    int dn_algo = -1;
    const char *dn_names[] = {"auto", "recurrent", "fused", "chunked"};
    for (int i = 0; i < 4; i++) if (!strcmp(dn_name, dn_names[i])) dn_algo = i;
    if (dn_algo < 0) { fprintf(stderr, "engine_bench: unknown --dn-algo '%s'\n", dn_name); return 2; }
    if (strcmp(warmup, "short") && strcmp(warmup, "full") && strcmp(warmup, "none")) {
        fprintf(stderr, "engine_bench: --warmup must be short, full or none\n");
        return 2;
    }

    const int ncpu = online_cpus(), naff = affinity_cpus();
    q35_cpu_features f;
    q35_cpu_detect(&f);

    /* ISAs: refuse one this CPU (or this build) cannot run, with one line */
    if (isa_arg) {
        char *dup = strdup(isa_arg), *save = NULL;
        for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            const int isa = isa_by_name(tok);
            if (isa < 0) { fprintf(stderr, "engine_bench: unknown ISA '%s'\n", tok); return 2; }
            if (!q35_isa_supported(isa)) {
                printf("{\"error\": \"isa %s is not supported on this CPU%s\"}\n", q35_isa_name(isa),
                       q35_isa_compiled(isa) ? "" : " (not compiled into this build)");
                fprintf(stderr, "engine_bench: ISA %s is not supported on this CPU%s\n", q35_isa_name(isa),
                        q35_isa_compiled(isa) ? "" : " (not compiled into this build)");
                return 1;
            }
            if (isas.n < MAX_LIST) isas.v[isas.n++] = isa;
        }
        free(dup);
    } else {
        isas.v[0] = q35_isa_best();
        isas.n = 1;
    }

    /* header: the machine */
    printf("{\"type\": \"header\", \"tool\": \"engine_bench\", \"tag\": \"%s\", \"cpu\": {\"avx2\": %d, \"fma\": %d, \"f16c\": %d, "
           "\"avx512f\": %d, \"avx512bw\": %d, \"avx512vl\": %d, \"avx512vnni\": %d, \"neon\": %d, \"dotprod\": %d}, "
           "\"isa_supported\": {",
           tag, f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512vl, f.avx512vnni, f.neon, f.dotprod);
    for (int i = 0; i < Q35_ISA_COUNT; i++) printf("%s\"%s\": %d", i ? ", " : "", q35_isa_name(i), q35_isa_supported(i));
    printf("}, \"best_isa\": \"%s\", \"online_cpus\": %d, \"affinity_cpus\": %d, \"compiler\": \"%s\"",
           q35_isa_name(q35_isa_best()), ncpu, naff,
#ifdef __VERSION__
           __VERSION__
#else
           "?"
#endif
    );

    if (bandwidth) {
        printf("}\n");
        fflush(stdout);
        if (!threads_given) { threads.v[0] = 1; threads.v[1] = ncpu; threads.n = ncpu > 1 ? 2 : 1; }
        const size_t bytes = (size_t)bw_mb << 20;
        for (int i = 0; i < threads.n; i++) {
            const double t0 = now_s();
            const double gbps = q35_read_bandwidth(bytes, threads.v[i] > 256 ? 256 : threads.v[i], reps < 3 ? 3 : reps);
            printf("{\"tag\": \"%s\", \"test\": \"read_bw\", \"threads\": %d, \"bytes\": %zu, \"gbps\": %.3f, \"seconds\": %.3f}\n",
                   tag, threads.v[i], bytes, gbps, now_s() - t0);
            fflush(stdout);
        }
        return 0;
    }

    const preset *P = NULL;
    for (int i = 0; i < N_PRESETS; i++) if (!strcmp(preset_name, PRESETS[i].name)) P = &PRESETS[i];
    const quant_plan *Q = NULL;
    for (int i = 0; i < N_QUANTS; i++) if (!strcmp(quant_name, QUANTS[i].name)) Q = &QUANTS[i];
    if (!P || !Q) {
        printf("}\n");
        fprintf(stderr, "engine_bench: unknown %s '%s'\n", P ? "quant" : "preset", P ? quant_name : preset_name);
        return 2;
    }

    /* build the model: plan, one arena, parallel fill, slots */
    const double tb0 = now_s();
    tlist L = {0};
    q35_config cfg;
    plan_model(P, Q, &L, &cfg);
    uint8_t *arena = NULL;
    if (posix_memalign((void **)&arena, 4096, (size_t)L.total)) {
        printf("}\n");
        fprintf(stderr, "engine_bench: cannot allocate %lld bytes of weights\n", (long long)L.total);
        return 1;
    }
    const int nfill = ncpu > 64 ? 64 : ncpu;
    pthread_t tids[64];
    fill_arg fa[64];
    for (int i = 0; i < nfill; i++) {
        fa[i] = (fill_arg){arena, &L, i, nfill, seed};
        if (pthread_create(&tids[i], NULL, fill_thread, &fa[i])) die("pthread_create failed");
    }
    for (int i = 0; i < nfill; i++) pthread_join(tids[i], NULL);
    for (int i = 0; i < L.n; i++)
        if (L.t[i].kind) fill_f32((float *)(arena + L.t[i].off), &L.t[i], P->conv_kernel, seed);
    q35_model *m = q35_model_new(&cfg);
    if (!m) die("q35_model_new refused the configuration");
    for (int i = 0; i < L.n; i++) {
        const tdesc *t = &L.t[i];
        q35_tensor qt = {arena + t->off, t->type, t->rows, t->cols};
        if (q35_model_set(m, t->layer, t->slot, qt)) die("q35_model_set refused a tensor");
    }
    if (q35_model_check(m)) die("q35_model_check: the tensor table does not fit the engine");
    const double build_s = now_s() - tb0;

    printf(", \"preset\": \"%s\", \"quant\": \"%s\", \"recipe\": \"%s\", \"model_bytes\": %lld, "
           "\"bytes_per_token\": %lld, \"n_tensors\": %d, \"build_s\": %.3f, \"fill_threads\": %d}\n",
           P->name, Q->name, Q->recipe, (long long)L.total, (long long)bytes_per_token(&L), L.n, build_s, nfill);
    fflush(stdout);
    fprintf(stderr, "engine_bench: %s %s: %.1f MB of weights built in %.2f s\n", P->name, Q->name, L.total / 1e6, build_s);

    int max_p = 0, max_n = 0;
    for (int i = 0; i < n_prompt.n; i++) max_p = n_prompt.v[i] > max_p ? n_prompt.v[i] : max_p;
    for (int i = 0; i < n_gen.n; i++) max_n = n_gen.v[i] > max_n ? n_gen.v[i] : max_n;
    const int n_ctx = (max_p > max_n + 1 ? max_p : max_n + 1) + 1;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)(n_ctx + 1));
    float *logits = malloc(sizeof(float) * (size_t)P->vocab);
    double *samples = malloc(sizeof(double) * (size_t)reps);
    if (!toks || !logits || !samples) die("out of memory");
    uint64_t ts = seed_mix(seed, 77);
    int failures = 0;

    for (int it = 0; it < threads.n; it++) {
        for (int ii = 0; ii < isas.n; ii++) {
            const int nt = threads.v[it], isa = isas.v[ii];
            q35_session_params sp = {isa, nt, ubatch, fdn_threshold, dn_algo, n_ctx, 0};
            const double ts0 = now_s();
            q35_session *s = q35_session_new(m, &sp);
            const double session_s = now_s() - ts0;
            if (!s) {
                fprintf(stderr, "engine_bench: q35_session_new failed (isa %s, %d threads, ctx %d)\n", q35_isa_name(isa), nt, n_ctx);
                failures++;
                continue;
            }
            for (int kind = 0; kind < 2; kind++) {
                const ilist *lens = kind == 0 ? &n_prompt : &n_gen;
                for (int li = 0; li < lens->n; li++) {
                    const int n = lens->v[li];
                    if (n == 0) continue;
                    logit_check lc = {0, 0.0};
                    int rc = 0;
                    const double tw0 = now_s();
                    /* warm-up */
                    if (strcmp(warmup, "none")) {
                        const int full = !strcmp(warmup, "full");
                        q35_session_reset(s);
                        if (kind == 0) {
                            const int w = full ? n : (n < 32 ? n : 32);
                            for (int k = 0; k < w; k++) toks[k] = (int32_t)(xs64(&ts) % (uint64_t)P->vocab);
                            rc |= q35_session_forward(s, toks, w, logits, 0);
                        } else {
                            const int w = full ? n : (n < 4 ? n : 4);
                            toks[0] = (int32_t)(xs64(&ts) % (uint64_t)P->vocab);
                            rc |= q35_session_forward(s, toks, 1, logits, 0);
                            for (int k = 0; k < w; k++) {
                                toks[0] = (int32_t)(xs64(&ts) % (uint64_t)P->vocab);
                                rc |= q35_session_forward(s, toks, 1, logits, 0);
                            }
                        }
                    }
                    const double warm_s = now_s() - tw0;
                    for (int r = 0; r < reps; r++) {
                        q35_session_reset(s);
                        double dt;
                        if (kind == 0) {
                            for (int k = 0; k < n; k++) toks[k] = (int32_t)(xs64(&ts) % (uint64_t)P->vocab);
                            const double t0 = now_s();
                            rc |= q35_session_forward(s, toks, n, logits, 0);
                            dt = now_s() - t0;
                            check_logits(logits, P->vocab, &lc);
                        } else {
                            for (int k = 0; k <= n; k++) toks[k] = (int32_t)(xs64(&ts) % (uint64_t)P->vocab);
                            rc |= q35_session_forward(s, toks, 1, logits, 0);   /* the 1-token prompt, untimed */
                            const double t0 = now_s();
                            for (int k = 1; k <= n; k++) rc |= q35_session_forward(s, toks + k, 1, logits, 0);
                            dt = now_s() - t0;
                            check_logits(logits, P->vocab, &lc);
                        }
                        samples[r] = n / dt;
                    }
                    double mn = samples[0], mx = samples[0], sum = 0;
                    for (int r = 0; r < reps; r++) {
                        mn = samples[r] < mn ? samples[r] : mn;
                        mx = samples[r] > mx ? samples[r] : mx;
                        sum += samples[r];
                    }
                    printf("{\"tag\": \"%s\", \"preset\": \"%s\", \"quant\": \"%s\", \"isa\": \"%s\", \"threads\": %d, \"test\": \"%s%d\", "
                           "\"n_prompt\": %d, \"n_gen\": %d, \"reps\": %d, \"tps_median\": %.3f, \"tps_mean\": %.3f, "
                           "\"tps_min\": %.3f, \"tps_max\": %.3f, \"samples\": [",
                           tag, P->name, Q->name, q35_isa_name(isa), nt, kind == 0 ? "pp" : "tg", n, kind == 0 ? n : 0,
                           kind == 0 ? 0 : n, reps, median(samples, reps), sum / reps, mn, mx);
                    for (int r = 0; r < reps; r++) printf("%s%.3f", r ? ", " : "", samples[r]);
                    printf("], \"weight_bytes\": %lld, \"bytes_per_token\": %lld, \"ubatch\": %d, \"fdn_threshold\": %d, "
                           "\"dn_algo\": \"%s\", \"warmup\": \"%s\", \"warmup_s\": %.3f, \"session_new_s\": %.4f, "
                           "\"rc\": %d, \"nonfinite\": %lld, \"logit_absmax\": %.4g}\n",
                           (long long)L.total, (long long)bytes_per_token(&L), ubatch, fdn_threshold, dn_name, warmup,
                           warm_s, session_s, rc, (long long)lc.nonfinite, lc.absmax);
                    fflush(stdout);
                    if (rc || lc.nonfinite) failures++;
                }
            }
            q35_session_free(s);
        }
    }
    q35_model_free(m);
    free(arena);
    free(L.t);
    free(toks);
    free(logits);
    free(samples);
    return failures ? 3 : 0;
}

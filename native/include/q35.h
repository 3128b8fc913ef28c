/*
 * q35: the C side of the Qwen3.5 CPU harness.
 *
 * Plain C11, no Python headers: the same sources build into the cffi
 * extension (harness._native) and into the standalone self-test program.
 * Every size passed in here has been checked by the caller (Python or the
 * self-test); the C code does not re-validate model files.
 */
#ifndef Q35_H
#define Q35_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/* Tensor types: the ggml type ids, as stored in GGUF tensor-info records.   */

enum q35_type {
    Q35_TYPE_F32 = 0,
    Q35_TYPE_F16 = 1,
    Q35_TYPE_Q4_0 = 2,
    Q35_TYPE_Q4_1 = 3,
    Q35_TYPE_Q5_0 = 6,
    Q35_TYPE_Q5_1 = 7,
    Q35_TYPE_Q8_0 = 8,
    Q35_TYPE_Q8_1 = 9, /* activations only */
    Q35_TYPE_Q2_K = 10,
    Q35_TYPE_Q3_K = 11,
    Q35_TYPE_Q4_K = 12,
    Q35_TYPE_Q5_K = 13,
    Q35_TYPE_Q6_K = 14,
    Q35_TYPE_Q8_K = 15, /* activations only, never stored in files */
    Q35_TYPE_IQ2_XXS = 16,
    Q35_TYPE_IQ2_XS = 17,
    Q35_TYPE_IQ3_XXS = 18,
    Q35_TYPE_IQ1_S = 19,
    Q35_TYPE_IQ4_NL = 20,
    Q35_TYPE_IQ3_S = 21,
    Q35_TYPE_IQ2_S = 22,
    Q35_TYPE_IQ4_XS = 23,
    Q35_TYPE_IQ1_M = 29,
    Q35_TYPE_BF16 = 30,
    Q35_TYPE_TQ1_0 = 34,
    Q35_TYPE_TQ2_0 = 35,
    Q35_TYPE_MXFP4 = 39,
    Q35_TYPE_NVFP4 = 40,
};

/* Elements per block and bytes per block; both 0 for a type we do not know. */
int64_t q35_type_block_elems(int type);
int64_t q35_type_block_bytes(int type);

/* ------------------------------------------------------------------------- */
/* Quantization formats (quant.c). Block layouts are byte-identical to ggml. */

/* Quantize nrows rows of ncols floats each into dst (rows packed back to
 * back, row size = ncols / block_elems * block_bytes). ncols must be a
 * multiple of the type's block size. Returns 0, or -1 for an unknown type,
 * a type without a quantizer (the IQ1 / IQ2 / IQ3 codebook types) or a bad ncols. Thread-safe: callers split rows across threads. */
int q35_quantize(int type, const float *src, void *dst, int64_t nrows, int64_t ncols);

/* The inverse: nrows rows of quantized data to floats. Same return codes. */
int q35_dequantize(int type, const void *src, float *dst, int64_t nrows, int64_t ncols);

/* nblocks random valid blocks of a codebook type (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS,
 * IQ2_S, IQ3_XXS, IQ3_S) or a ternary one (TQ1_0, TQ2_0), for synthetic models:
 * random codes (uniform trits for TQ) under one block scale chosen so the values
 * have about the standard deviation std. The IQ types have no quantizer here
 * (q35_quantize returns -1 for them). Deterministic in seed. Returns 0, or -1 for
 * another type or a bad count or std. */
int q35_random_blocks(int type, uint64_t seed, float std, void *dst, int64_t nblocks);

/* IEEE half and bfloat16 conversions (round to nearest even, like numpy
 * and ggml). */
float q35_fp16_to_fp32(uint16_t h);
uint16_t q35_fp32_to_fp16(float f);
float q35_bf16_to_fp32(uint16_t h);
uint16_t q35_fp32_to_bf16(float f);

/* ------------------------------------------------------------------------- */
/* CPU features and ISA variants (cpu.c, dispatch.c).                       */

enum q35_isa {
    Q35_ISA_SCALAR = 0,
    Q35_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
    Q35_ISA_AVX512 = 2, /* AVX512 F/BW/VL (+VNNI where present) */
    Q35_ISA_NEON = 3,   /* AArch64 Advanced SIMD (+dotprod where present) */
    Q35_ISA_COUNT = 4,
};

typedef struct {
    int avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16;
    int avxvnni; /* VEX-encoded vpdpbusd on ymm (Alder Lake, Zen 5) */
    int neon, dotprod;
} q35_cpu_features;

void q35_cpu_detect(q35_cpu_features *out);
const char *q35_isa_name(int isa);
int q35_isa_compiled(int isa);  /* 1 if this build contains the variant */
int q35_isa_supported(int isa); /* compiled, and this CPU can run it */
int q35_isa_best(void);         /* the best supported variant */

/* Activations are converted to the format ggml pairs with each weight type
 * before a dot product: F32 -> F32, F16 -> F16, BF16 -> BF16, Q8_0, Q4_0,
 * Q5_0, IQ4_NL, MXFP4 and NVFP4 -> Q8_0, Q4_1 and Q5_1 -> Q8_1, Q2_K / Q3_K /
 * Q4_K / Q5_K / Q6_K / IQ4_XS and the codebook and ternary types (IQ1_S, IQ1_M,
 * IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, TQ1_0, TQ2_0) -> Q8_K. Returns -1 for
 * other types. */
int q35_act_type(int weight_type);

#define Q35_TYPE_COUNT 41

/* x (n floats) to n values of an activation format (n a multiple of its block) */
typedef void (*q35_from_float_fn)(const float *x, void *y, int64_t n);
/* the inverse for the KV cache types (F32, F16, BF16, Q8_0): n values back to floats */
typedef void (*q35_to_float_fn)(const void *x, float *y, int64_t n);
/* dot of one weight row with one activation row in the paired format, n elements */
typedef float (*q35_vec_dot_fn)(const void *w, const void *a, int64_t n);
/* dot of one weight row with 4 activation rows (paired format, each row at a[i*a_stride] bytes):
 * out[i] = vec_dot(w, a + i*a_stride, n) for i = 0..3, same rounding rules */
typedef void (*q35_vec_dot4_fn)(const void *w, const void *a, int64_t a_stride, int64_t n, float *out);
/* a panel of dots, nr weight rows (row r at w + r*w_stride bytes) by nt activation rows (row t at
 * a + t*a_stride): y[t*ldy + r] = vec_dot(row r, row t, n), each bit for bit the variant's vec_dot */
typedef void (*q35_gemm_fn)(const void *w, int64_t w_stride, int nr, const void *a, int64_t a_stride, int nt,
                            int64_t n, float *y, int64_t ldy);

/* Repacked weights (native/src/repacked.h): groups of Q35_PACK_ROWS rows interleaved. A
 * packed product runs one group: y[t*ldy + r] for rows r < Q35_PACK_ROWS of the group at wp
 * (n values each) by activation rows t < nt (paired format, row t at a + t*a_stride), each
 * value by the repacked rule, the same bits on every ISA (the scalar entry is the rule). */
#define Q35_PACK_ROWS 16
typedef void (*q35_gemm_packed_fn)(const void *wp, const void *a, int64_t a_stride, int nt, int64_t n, float *y,
                                   int64_t ldy);
/* A variant's packed product may take its activation rows prepared once per u-batch, in place
 * (the same size): e.g. the Q8_0 codes as qa + 128 for vpdpbusd. Callers run the table's own
 * prepare_packed (where not NULL) on rows from from_float before its gemm_packed. */
typedef void (*q35_prepare_packed_fn)(void *a, int64_t a_stride, int nt, int64_t n);

/* One value head of the gated delta rule over T tokens (see engine/deltanet.c).
 * q, k: Sk floats per token at stride ldqk (L2-normed, not yet scaled by
 * 1/sqrt(Sk)); v: Sv per token at stride ldv; g (log decay) and beta: one per
 * token at stride ldgb; S: the state [Sk][Sv], updated in place; o: Sv per
 * token at stride ldo. Sk and Sv are at most 512. */
typedef struct {
    const float *q, *k, *v, *g, *beta;
    int64_t ldqk, ldv, ldgb, ldo;
    float *S, *o;
    int32_t T, Sk, Sv;
} q35_dn_head;

/* One table of kernels per ISA variant; every entry has the same signature
 * in every variant (the scalar one is the reference). A variant may leave an
 * entry NULL: q35_kernels_for() then fills it from the next variant down
 * (avx512 -> avx2 -> scalar, neon -> scalar). */
typedef struct {
    const char *name;
    /* sum_i a[i]*b[i] */
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    /* indexed by activation type: F32 (copy), F16, BF16, Q8_0, Q8_K */
    q35_from_float_fn from_float[Q35_TYPE_COUNT];
    /* indexed by KV cache type: F32 (copy), F16, BF16, Q8_0; each value exactly what
     * q35_dequantize gives */
    q35_to_float_fn to_float[Q35_TYPE_COUNT];
    /* indexed by weight type; the second operand is in q35_act_type(weight type) */
    q35_vec_dot_fn vec_dot[Q35_TYPE_COUNT];
    /* the same dot for 4 activation rows at once: each weight block unpacked once */
    q35_vec_dot4_fn vec_dot4[Q35_TYPE_COUNT];
    /* the same dots for a panel of weight rows and activation rows, register-tiled where a
     * variant has one (NULL: callers loop over vec_dot4 / vec_dot) */
    q35_gemm_fn gemm[Q35_TYPE_COUNT];
    /* the product of repacked weights, indexed by weight type (NULL: that type is not repacked
     * on this variant; never filled from another variant, so a session repacks a type only
     * where its own ISA has the kernel) */
    q35_gemm_packed_fn gemm_packed[Q35_TYPE_COUNT];
    /* two consecutive groups (2 Q35_PACK_ROWS rows: y's rows 0-15 from the group at wp, 16-31 from
     * the next) at once, each value the bits of gemm_packed; NULL where a variant has none (callers
     * then run gemm_packed per group; never filled from another variant) */
    q35_gemm_packed_fn gemm_packed2[Q35_TYPE_COUNT];
    /* the activation rows' preparation for this variant's gemm_packed (NULL: none; never filled
     * from another variant, like gemm_packed) */
    q35_prepare_packed_fn prepare_packed[Q35_TYPE_COUNT];
    /* the fused delta rule: S read once and read-written once per token */
    void (*dn_fused)(const q35_dn_head *h);
    /* elementwise: x <- silu(x);  g <- silu(g) * u;  y <- y + a x;  acc <- acc + a * b */
    void (*silu_f32)(float *x, int64_t n);
    void (*swiglu_f32)(float *g, const float *u, int64_t n);
    void (*axpy_f32)(float *y, float a, const float *x, int64_t n);
    void (*fmadd_f32)(float *acc, const float *a, const float *b, int64_t n);
    /* causal depthwise conv + SiLU over n channels, in place: with u = [the K-1 state rows (s, lds
     * apart), then the T rows of x (ldx apart)], x[t][c] <- silu(sum_i w[i][c] u[t+i][c]), i < K (w
     * rows ldw apart, row 0 the oldest tap). Bit for bit fmadd_f32 of each tap in order into a zeroed
     * row, then silu_f32, but each channel in registers, in one pass (the delta-net's conv) */
    void (*conv_silu_f32)(float *x, int64_t ldx, int T, const float *s, int64_t lds, const float *w, int64_t ldw,
                          int K, int64_t n);
    /* x <- a x */
    void (*scale_f32)(float *x, float a, int64_t n);
    /* y = x w / sqrt(mean(x^2) + eps), one row; y may alias x */
    void (*rmsnorm_f32)(const float *x, const float *w, float *y, int64_t n, float eps);
    /* x <- x / sqrt(sum(x^2) + eps) */
    void (*l2norm_f32)(float *x, int64_t n, float eps);
    /* NeoX RoPE of pairs (i, i + n_rot/2); cs = cos[n_rot/2] then sin[n_rot/2] of one position */
    void (*rope_f32)(float *x, const float *cs, int n_rot);
    /* x <- softmax(x) */
    void (*softmax_f32)(float *x, int64_t n);
    /* x <- x sigmoid(g) */
    void (*sigmoid_mul_f32)(float *x, const float *g, int64_t n);
    /* Y_r <- Y_r + sum_j A_r[j] X_j for rows r < ny (Y_r at Y + r*ldy, A_r at A + r*lda, X_j at
     * X + j*ldx, j < m, n values): bit for bit, per row, m calls of axpy_f32 in order; register-
     * tiled, each X_j loaded once for several rows (attention's probabilities times values) */
    void (*axpy_panel_f32)(float *Y, int64_t ldy, int ny, const float *A, int64_t lda, const float *X, int64_t ldx,
                           int64_t m, int64_t n);
    /* x <- exp(x - m), elementwise; returns the sum of the new x, summed in double (softmax_f32 is
     * this with m = max x, then x scaled by 1 / sum) */
    double (*exp_sum_f32)(float *x, int64_t n, float m);
    /* out[q*ldo + k] = K_k . Q_q for rows k < nk (K + k*ldk) and q < nq (Q + q*ldq), n values: each
     * dot one accumulator over vector-width steps, then the variant's horizontal sum (the tail
     * added last), so every dot has the same bits however the panel is tiled (attention scores) */
    void (*dot_panel_f32)(const float *K, int64_t ldk, int nk, const float *Q, int64_t ldq, int nq, int64_t n,
                          float *out, int64_t ldo);
} q35_kernels;

/* Bytes of the repacked copy of a rows x cols tensor of a type, or 0 when the type has no
 * repacked layout or the shape does not fit one (rows a multiple of Q35_PACK_ROWS, cols of
 * the type's super-block). */
int64_t q35_packed_bytes(int type, int64_t rows, int64_t cols);
/* Repack w (rows x cols of type, rows contiguous) into out (q35_packed_bytes of it): group g
 * of rows [16 g, 16 g + 16) at out + g * q35_packed_bytes(type, 16, cols). 0, or -1 when
 * the type or shape has no repacked layout. */
int q35_repack(int type, const void *w, int64_t rows, int64_t cols, void *out);

/* The table for an ISA, or NULL when it is not supported on this CPU. */
const q35_kernels *q35_kernels_for(int isa);

/* ------------------------------------------------------------------------- */
/* The engine: a model (weights are borrowed, never copied) and sessions     */
/* (per-sequence state plus scratch) that run the forward pass (engine/).    */

#define Q35_MAX_LAYERS 256

typedef struct {
    int32_t n_layer;      /* trunk layers */
    int32_t n_embd;       /* E */
    int32_t n_ff;         /* F */
    int32_t n_head, n_head_kv, head_dim, rope_dims;
    float rope_theta, rms_eps;
    int32_t conv_kernel;  /* Kc */
    int32_t ssm_state;    /* Sk = Sv */
    int32_t ssm_k_heads;  /* Hk */
    int32_t ssm_v_heads;  /* Hv */
    int32_t vocab_size;
    uint8_t recurrent[Q35_MAX_LAYERS]; /* 1 = Gated DeltaNet, 0 = full attention */
    /* mixture of experts (qwen35moe); n_expert = 0: the dense FFN of n_ff */
    int32_t n_expert;     /* NE routed experts, at most Q35_MAX_EXPERTS */
    int32_t n_expert_used;/* k experts per token */
    int32_t n_ff_expert;  /* Fe */
    int32_t n_ff_shared;  /* Fs (the shared expert) */
} q35_config;

#define Q35_MAX_EXPERTS 1024

typedef struct {
    const void *data;     /* NULL = absent */
    int32_t type;         /* enum q35_type */
    int64_t rows, cols;   /* numpy shape (rows of cols values) */
} q35_tensor;

/* weight slots; global ones use layer -1 */
enum q35_slot {
    Q35_W_TOKEN_EMBD, Q35_W_OUTPUT_NORM, Q35_W_OUTPUT,
    Q35_W_ATTN_NORM, Q35_W_POST_NORM, Q35_W_FFN_GATE, Q35_W_FFN_UP, Q35_W_FFN_DOWN,
    Q35_W_ATTN_Q, Q35_W_ATTN_K, Q35_W_ATTN_V, Q35_W_ATTN_QKV,
    Q35_W_ATTN_Q_NORM, Q35_W_ATTN_K_NORM, Q35_W_ATTN_OUTPUT,
    Q35_W_SSM_QKV, Q35_W_SSM_GATE, Q35_W_SSM_CONV, Q35_W_SSM_DT, Q35_W_SSM_A,
    Q35_W_SSM_BETA, Q35_W_SSM_ALPHA, Q35_W_SSM_NORM, Q35_W_SSM_OUT,
    /* MoE FFN (instead of FFN_GATE/UP/DOWN). A stack of NE experts is passed as one 2-D
     * tensor of NE * R rows (expert e = rows [e R, (e+1) R), as stored in GGUF);
     * GATE_UP_EXPS (R = 2 Fe: gate rows, then up rows) replaces GATE_EXPS + UP_EXPS. */
    Q35_W_FFN_GATE_INP, Q35_W_FFN_GATE_EXPS, Q35_W_FFN_UP_EXPS, Q35_W_FFN_GATE_UP_EXPS,
    Q35_W_FFN_DOWN_EXPS, Q35_W_FFN_GATE_INP_SHEXP, Q35_W_FFN_GATE_SHEXP, Q35_W_FFN_UP_SHEXP,
    Q35_W_FFN_DOWN_SHEXP,
    /* A multi-token-prediction (MTP, "nextn") block run as a one-layer model: its input
     * projection (eh_proj, n_embd rows of 2 n_embd) and the norms of its two inputs, the
     * token's embedding (enorm) and the trunk's hidden state (hnorm). Global, optional: set
     * all three or none (see q35_session_forward_h). */
    Q35_W_NEXTN_EH_PROJ, Q35_W_NEXTN_ENORM, Q35_W_NEXTN_HNORM,
    Q35_W_COUNT
};

typedef struct q35_model q35_model;
typedef struct q35_session q35_session;

q35_model *q35_model_new(const q35_config *c);  /* NULL if the config is out of range */
int q35_model_set(q35_model *m, int layer, int slot, q35_tensor t); /* 0, or -1 for a bad slot */
int q35_model_check(const q35_model *m);         /* 0 when every needed slot is set */
void q35_model_free(q35_model *m);

/* delta-net algorithm: auto = fused for u-batches of at most fdn_threshold
 * tokens and chunked above (decode always fused); the others force one. */
enum q35_dn_algo { Q35_DN_AUTO = 0, Q35_DN_RECURRENT = 1, Q35_DN_FUSED = 2, Q35_DN_CHUNKED = 3 };

/* One value head of the delta rule with one algorithm (not AUTO) on one ISA
 * variant's kernels, outside any session (tests, self-test, benchmarks):
 * 0, or -1 for an unsupported ISA / bad algo / Sk, Sv outside 1..512 / no memory. */
int q35_deltanet_head(int isa, int algo, const q35_dn_head *h);

typedef struct {
    int32_t isa;            /* enum q35_isa; must be supported */
    int32_t n_threads;      /* >= 1 */
    int32_t ubatch;         /* max tokens per u-batch, >= 1 */
    int32_t fdn_threshold;  /* u-batches of at most this many tokens use the fused delta-net */
    int32_t dn_algo;        /* enum q35_dn_algo */
    int32_t n_ctx;          /* KV cache positions */
    int32_t type_k, type_v; /* KV cache types: Q35_TYPE_F32 (0), F16, BF16 or Q8_0 (see
                             * q35_kv_type_ok); rows are written by the ISA's from_float */
    int32_t profile;        /* 1 = record per-op time */
    int32_t repack;         /* 1 = copy each matrix whose type this ISA has a repacked product for
                             * (gemm_packed) into that layout at session start, and run it there */
    int32_t unfused_swiglu; /* 1 = the FFN's SwiGLU as its own pass even where the gate and up products
                             * are repacked (the fused form gives the same bits: for tests and A/B) */
} q35_session_params;

q35_session *q35_session_new(const q35_model *m, const q35_session_params *p); /* NULL on failure */
/* bytes of the repacked weight copies a session on isa with repack = 1 makes (-1: no such ISA) */
int64_t q35_model_packed_bytes(const q35_model *m, int isa);
/* bytes of the session's repacked weight copies (0 when it repacked nothing) */
int64_t q35_session_packed_bytes(const q35_session *s);
/* 1 when the session runs the model's tensor (layer, slot; layer -1 for a global one) from a
 * repacked copy, else 0 */
int q35_session_is_packed(const q35_session *s, int layer, int slot);
/* 1 when type can hold the KV cache of heads of head_dim values (a cache type whose block
 * divides head_dim) */
int q35_kv_type_ok(int type, int32_t head_dim);
void q35_session_free(q35_session *s);
/* Run n tokens (in u-batches) at positions n_past.. and write logits: all n rows
 * (logits_all = 1) or only the last one. Returns 0, -1 if n_past + n > n_ctx,
 * -2 for a token id outside the vocabulary. */
int q35_session_forward(q35_session *s, const int32_t *tokens, int32_t n, float *logits, int32_t logits_all);
/* The general form of q35_session_forward, with hidden states in and out (llama.cpp's
 * graph_mtp and its h_nextn):
 *   h_in   NULL: each token's layer input is its embedding row (every trunk model);
 *          else [n][n_embd] rows h, and the model's NEXTN slots are set: the input is
 *          eh_proj . [rmsnorm(embd(token)) * enorm ; rmsnorm(h) * hnorm]   (MTP block)
 *   logits Q35_LOGITS_NONE (logits may be NULL), _LAST (one row) or _ALL (n rows)
 *   h_out  NULL, or [n][n_embd]: every token's final-norm row, the input of an MTP block
 * Returns as q35_session_forward, and -3 for a mode that is none of these or logits NULL
 * where rows are wanted, -4 for h_in on a model without the NEXTN slots. */
enum q35_logits_mode { Q35_LOGITS_NONE, Q35_LOGITS_LAST, Q35_LOGITS_ALL };
int q35_session_forward_h(q35_session *s, const int32_t *tokens, int32_t n, const float *h_in, float *logits,
                          int32_t logits_mode, float *h_out);
void q35_session_reset(q35_session *s);
int32_t q35_session_n_past(const q35_session *s);
/* Forget positions n_past.. of a model without recurrent layers (an MTP block's drafted
 * positions): 0, or -1 when the model has recurrent layers (their state cannot be rewound:
 * restore a snapshot instead) or n_past is not in 0..the current n_past. */
int q35_session_truncate(q35_session *s, int32_t n_past);
/* Snapshot of the sequence state (conv windows, delta-net states, KV cache up to
 * n_past). save returns the bytes written (0 if cap is too small); load returns 0,
 * or -1 for a snapshot that does not fit this session. */
size_t q35_session_state_size(const q35_session *s);
size_t q35_session_state_save(const q35_session *s, void *dst, size_t cap);
int q35_session_state_load(q35_session *s, const void *src, size_t n);
/* A checkpoint: the same without the KV rows (conv windows, delta-net states and n_past), to
 * rewind a sequence to an earlier point of itself: a forward writes KV rows at n_past and beyond
 * only, so the rows before the checkpoint's n_past are still the sequence's as long as it has run
 * forward since (no reset, no truncate, no state_load in between). load returns 0, or -1 for a
 * checkpoint of another session kind or with an n_past beyond the current one. */
size_t q35_session_checkpoint_size(const q35_session *s);
size_t q35_session_checkpoint_save(const q35_session *s, void *dst, size_t cap);
int q35_session_checkpoint_load(q35_session *s, const void *src, size_t n);

/* Profile: per (layer, op) calls, nanoseconds and weight bytes read; layer
 * index n_layer holds the ops outside the trunk (embedding, final norm, LM head).
 * Expert weight bytes count only the experts a u-batch routed tokens to. */
enum q35_op {
    Q35_OP_EMBED, Q35_OP_NORM, Q35_OP_ACT_QUANT,
    Q35_OP_MM_ATTN_QKV, Q35_OP_MM_ATTN_OUT, Q35_OP_MM_SSM_IN, Q35_OP_MM_SSM_OUT,
    Q35_OP_MM_FFN_UP, Q35_OP_MM_FFN_DOWN, Q35_OP_MM_LM_HEAD,
    Q35_OP_ROPE, Q35_OP_ATTENTION, Q35_OP_CONV, Q35_OP_DELTANET, Q35_OP_GATED_NORM,
    Q35_OP_SWIGLU, Q35_OP_RESIDUAL,
    /* MoE: router matmul + softmax / top-k / grouping, routed experts, shared expert */
    Q35_OP_MOE_ROUTER, Q35_OP_MM_EXP_GATE_UP, Q35_OP_MM_EXP_DOWN,
    Q35_OP_MM_SHEXP_GATE_UP, Q35_OP_MM_SHEXP_DOWN,
    Q35_OP_LM_SCREEN,     /* the screening product of the screened vocab strategy */
    Q35_OP_COUNT
};
typedef struct { int64_t calls, ns, bytes, macs; } q35_op_stats; /* macs: multiply-adds of the weight products */
const char *q35_op_name(int op);
/* copies (n_layer + 1) * Q35_OP_COUNT records, layer-major */
void q35_session_profile(const q35_session *s, q35_op_stats *out);
void q35_session_profile_reset(q35_session *s);

/* ------------------------------------------------------------------------- */
/* Vocabulary projection strategies (engine/vocab.c). Logits a strategy does  */
/* not compute are written as -inf.                                          */

enum q35_vocab_kind {
    Q35_VOCAB_FULL = 0,      /* every row of the LM head as stored: exact */
    Q35_VOCAB_REQUANT = 1,   /* every row of a re-quantized copy: approximate */
    Q35_VOCAB_SUBSET = 2,    /* only the listed rows, exact */
    Q35_VOCAB_SCREENED = 3,  /* exact top-K: a screening product bounds every row, candidates exact */
    Q35_VOCAB_ARGMAX = 4,    /* exact top-1 id and logit, no logits vector */
};

typedef struct {
    int32_t kind;            /* enum q35_vocab_kind */
    q35_tensor weight;       /* REQUANT: the copy [V][E] (any weight type with kernels) */
    const int32_t *ids;      /* SUBSET: n_ids distinct ids in ascending order */
    int32_t n_ids;
    int32_t top_k;           /* SCREENED: K */
    q35_tensor screen;       /* SCREENED: the screening rows u_r, [V][R] */
    const double *proj;      /* SCREENED: [R][E] orthonormal rows P (u_r ~ P w_r), or NULL when
                                R = E and u_r is a low-bit copy of w_r */
    const float *row_norms;  /* SCREENED: [4][V], rounded up: ||w_r||, ||u_r||, ||u_r - P w_r||,
                                ||w_r - P^T P w_r|| (w_r: the head row dequantized; P = I when proj NULL) */
} q35_vocab;

/* Use a strategy from the next forward on (the session borrows the pointers).
 * Returns 0, or -1 when it does not fit the model (shapes, ids, K) or memory runs out. */
int q35_session_set_vocab(q35_session *s, const q35_vocab *v);
/* q35_session_forward plus the greedy id of every logits row in top1 (n or 1 ids);
 * logits may be NULL only under Q35_VOCAB_ARGMAX (returns -3 otherwise). */
int q35_session_forward_top1(q35_session *s, const int32_t *tokens, int32_t n, float *logits, int32_t *top1,
                             int32_t logits_all);
/* logits rows computed under the screened strategy and the candidate rows computed exactly,
 * since the last profile reset */
void q35_session_vocab_stats(const q35_session *s, int64_t *rows, int64_t *candidates);

/* Best-of-reps read bandwidth in GB/s of a bytes-sized buffer streamed by
 * n_threads threads (-1 on bad arguments or no memory). */
double q35_read_bandwidth(size_t bytes, int n_threads, int reps);

#ifdef __cplusplus
}
#endif
#endif /* Q35_H */

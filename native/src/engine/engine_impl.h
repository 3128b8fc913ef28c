/* Internal structures of the engine, shared by its files. */
#ifndef Q35_ENGINE_IMPL_H
#define Q35_ENGINE_IMPL_H

#include <stdint.h>

#include "q35.h"
#include "threadpool.h"

struct q35_model {
    q35_config c;
    int64_t KD, VD, CD, HD, KVD; /* Hk*Sk, Hv*Sv, 2KD+VD, H*D, Hkv*D */
    q35_tensor global[Q35_W_COUNT];
    q35_tensor layer[Q35_MAX_LAYERS][Q35_W_COUNT];
};

/* per logits row numbers of the screened strategy (vocab.c) */
typedef struct {
    double xperp, zn, dx, dz, qxn, qzn; /* ||x - P^T P x||, ||P x||, rounding of x and of z, ||qx||, ||qz|| */
    double L;                           /* the K-th largest lower bound */
} q35_screen_row;

/* the vocabulary strategy of a session and its scratch (vocab.c) */
typedef struct {
    q35_vocab v;
    float *best;                /* ARGMAX: [n_threads][ubatch] running maxima ... */
    int32_t *best_id;           /* ... and their rows */
    double *z;                  /* SCREENED: [ubatch][R] P x in double */
    float *zf;                  /* SCREENED: the same in float, the screening input */
    q35_screen_row *rows;       /* SCREENED: [ubatch] */
    double *heap;               /* SCREENED: [n_threads][K] lower bounds, then the merge buffer */
    int64_t *heap_n;            /* SCREENED: [n_threads] */
    float *tmp;                 /* SCREENED: [n_threads][E] dequantized activation rows */
    int64_t *cand;              /* [n_threads] candidate rows computed, cumulative */
    int64_t n_rows;             /* logits rows run through the screen, cumulative */
} q35_vocab_state;

/* delta-net scratch for the chunked algorithm, one per thread */
typedef struct {
    float *G;   /* [3C] the cumulative gates G, then -G, then one row of Gamma (or the update's weights) */
    float *L, *A, *U, *W, *Vn;
    float *P;   /* [C][Sk] the read-out's coefficients, then [Sk][C] the state update's */
} dn_scratch;

struct q35_session {
    const q35_model *m;
    const q35_kernels *k;
    q35_session_params p;
    q35_pool *pool;
    int32_t n_past;

    /* sequence state */
    float *conv[Q35_MAX_LAYERS];  /* DN: [Kc-1][CD] raw pre-conv rows, oldest first */
    float *ssm[Q35_MAX_LAYERS];   /* DN: [Hv][Sk][Sv] */
    uint8_t *kc[Q35_MAX_LAYERS];  /* attention: [n_ctx] rows of KVD values in p.type_k ... */
    uint8_t *vc[Q35_MAX_LAYERS];  /* ... and in p.type_v */
    int64_t kv_row_k, kv_row_v;   /* bytes of one position's row */

    /* scratch, sized for one u-batch */
    float *x, *xn, *proj, *o, *g, *beta;
    float *att_ws;                /* per thread: attention scratch, att_ws_stride floats each */
    int64_t att_ws_stride;
    float *conv_tmp;              /* per thread: the new conv state, (Kc - 1) * CD */
    float *convw_t[Q35_MAX_LAYERS]; /* DN: the small F32 conv kernel transposed to [Kc][CD] */
    int64_t proj_w;               /* row stride of proj */
    uint8_t *act;
    int64_t act_row_cap;          /* bytes per token per activation segment */
    dn_scratch *dns;
    float *rope_cs;               /* [n_ctx][rope_dims]: cos then sin of each position */

    struct q35_moe_scratch *moe;  /* MoE models only (moe.c) */

    /* repacked copies (p.repack) of m->layer[il][slot] */
    uint8_t *packed[Q35_MAX_LAYERS][Q35_W_COUNT];
    int64_t packed_bytes;

    /* profile */
    q35_op_stats *prof;           /* [(n_layer+1) * Q35_OP_COUNT] */
    int64_t t_mark;

    q35_vocab_state vs;

    /* the u-batch being run */
    const int32_t *tokens;
    int32_t T, pos0;
    float *logits;                /* NULL under the argmax strategy when no vector is wanted */
    int32_t *top1;                /* NULL, or the greedy id of each logits row */
    int32_t out_first, out_n;     /* token rows whose logits are wanted */
    const float *h_in;            /* NULL, or [T][E] hidden rows: the MTP block's second input */
    float *h_out;                 /* NULL, or [T][E]: every row's final-norm output */
};

/* bytes of a row of n values of the given type (n a multiple of its block) */
static inline int64_t q35_row_bytes(int type, int64_t n) {
    return n / q35_type_block_elems(type) * q35_type_block_bytes(type);
}

/* profile.c: the per-op profile. q35_prof_start: thread 0 starts the clock of a u-batch;
 * q35_prof_mark: called by every thread right after a barrier; thread 0 books the
 * wall time since the previous mark to (layer, op) */
void q35_prof_start(q35_session *s, int ith);
void q35_prof_mark(q35_session *s, int ith, int layer, int op, int64_t bytes);
/* q35_prof_macs: thread 0 books the multiply-adds of a weight product (rows x columns x tokens) */
void q35_prof_macs(q35_session *s, int ith, int layer, int op, int64_t macs);

/* weight rows [from, to) (rows of wrb bytes from base) fetched toward the cache ahead of use:
 * the row streams stay ahead of the dots that read them */
#define Q35_PREFETCH_ROWS 2
static inline void q35_prefetch_rows(const void *base, int64_t wrb, int64_t from, int64_t to) {
#ifndef Q35_NO_PREFETCH
    for (const uint8_t *p = (const uint8_t *)base + from * wrb; p < (const uint8_t *)base + to * wrb; p += 64)
        __builtin_prefetch(p, 0, 0);
#else
    (void)base; (void)wrb; (void)from; (void)to;
#endif
}

/* the blocking of the matrix products (matmul.c, moe.c, vocab.c) */
#define Q35_ACT_SEGMENTS 6 /* activation formats at once: 5 paired types, and one prepared for a repacked product */
#define Q35_ROW_BLOCK 16  /* weight rows kept hot while ...           */
#define Q35_TOK_BLOCK 32  /* ... this many activation rows stream by  */

/* matmul.c: y[t][r] (+)= W[r] . x[t] for several weights sharing one input */
typedef struct {
    const q35_tensor *w;
    float *y;
    int64_t ldy;
    int accumulate;
} q35_mm_job;
void q35_matmul(q35_session *s, int ith, int nth, const float *x, int64_t ldx, int T,
                const q35_mm_job *jobs, int njobs, int layer, int op);
/* the gate and up products of a SwiGLU FFN (gate_up[0], gate_up[1]), when both are repacked with the
 * same shape, with the SwiGLU folded in: a thread makes the gate and up tiles of the same rows and
 * tokens, then gate <- silu(gate) * up over them while they are in L1. The same bits as q35_matmul
 * followed by swiglu_f32 over columns split at multiples of 16 (each value meets the same vector
 * code: q35_split_cols). */
int q35_glu_fusable(const q35_session *s, const q35_mm_job *gate_up);
void q35_matmul_glu(q35_session *s, int ith, int nth, const float *x, int64_t ldx, int T, const q35_mm_job *gate_up,
                    int layer, int op);
/* the session's repacked copy of a model matrix, or NULL (engine.c) */
const uint8_t *q35_packed_of(const q35_session *s, const q35_tensor *w);
/* v[t * ldv + r] = W[r] . act[t] for nr weight rows (wrb bytes apart) and nt activation rows (arb
 * bytes apart) of n values: the variant's panel kernel where it has one, else its 4-token and
 * single dots. Either way each value is the variant's vec_dot bit for bit. */
void q35_dot_panel(const q35_kernels *k, int wt, const uint8_t *w, int64_t wrb, int nr, const uint8_t *act,
                   int64_t arb, int nt, int64_t n, float *v, int64_t ldv);

/* layers.c */
void q35_layer_attention(q35_session *s, int ith, int nth, int il);
void q35_layer_deltanet(q35_session *s, int ith, int nth, int il);
void q35_layer_ffn(q35_session *s, int ith, int nth, int il);
void q35_rmsnorm_rows(const q35_kernels *k, const float *x, float *y, const float *w, int64_t n, int64_t rows,
                      int64_t ld, float eps);

/* moe.c: the mixture-of-experts FFN */
int q35_moe_slot_shape(const q35_model *m, int il, int slot, int64_t *rows, int64_t *cols);
int q35_moe_alloc(q35_session *s);    /* 0, or -1 when out of memory; no-op for dense models */
void q35_moe_free(q35_session *s);
void q35_layer_moe(q35_session *s, int ith, int nth, int il);

/* vocab.c: the LM head under the session's strategy, for rows out_first.. of xn */
void q35_vocab_head(q35_session *s, int ith, int nth);
const q35_tensor *q35_lm_head(const q35_model *m);
void q35_vocab_free(q35_vocab_state *vs);

/* deltanet.c: the three algorithms for one value head (q35_dn_head, q35.h) */
void q35_dn_recurrent(const q35_dn_head *h, const q35_kernels *k);
void q35_dn_fused(const q35_dn_head *h);
void q35_dn_chunked(const q35_dn_head *h, dn_scratch *ws, const q35_kernels *k);
#define Q35_DN_CHUNK 64

/* attention (layers.c): query tokens per work item, and keys per block. A K and a V block
 * (2 * KB * head_dim floats, 256 KiB at head_dim 256) stay in L2 while all the item's
 * rows (QB tokens x the heads of a kv group) use them. Scratch per thread: the rows'
 * accumulators [rows][D], running max and sum [rows], their block of scores [rows][KB],
 * and the K and V block as floats [KB][D] each (for cache types other than F32). */
#define Q35_ATT_QB 16
#define Q35_ATT_KB 128
#define Q35_ATT_WS(G, D) ((int64_t)Q35_ATT_QB * (G) * ((D) + 2 + Q35_ATT_KB) + 2 * (int64_t)Q35_ATT_KB * (D))

#endif

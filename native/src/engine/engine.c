/* Model and session lifecycle, the forward pass over u-batches (docs/qwen35.md §2.0),
 * and state snapshots. The per-op profile is in profile.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"

/* ------------------------------------------------------------------------- */
/* model                                                                     */

q35_model *q35_model_new(const q35_config *c) {
    const int moe_bad = c->n_expert < 0 || c->n_expert > Q35_MAX_EXPERTS ||
        (c->n_expert > 0 && (c->n_expert_used < 1 || c->n_expert_used > c->n_expert || c->n_ff_expert < 1 ||
                             c->n_ff_shared < 1));
    if (moe_bad || c->n_layer < 1 || c->n_layer > Q35_MAX_LAYERS || c->n_embd < 1 ||
        (c->n_expert == 0 && c->n_ff < 1) || c->n_head < 1 ||
        c->n_head_kv < 1 || c->n_head % c->n_head_kv || c->head_dim < 2 || c->rope_dims > c->head_dim ||
        c->rope_dims % 2 || c->conv_kernel < 1 || c->conv_kernel > 16 || c->ssm_state < 1 ||
        c->ssm_state > 512 || c->ssm_k_heads < 1 || c->ssm_v_heads % c->ssm_k_heads || c->vocab_size < 1 ||
        !(c->rms_eps > 0) || !(c->rope_theta > 0))
        return NULL;
    q35_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->c = *c;
    m->KD = (int64_t)c->ssm_k_heads * c->ssm_state;
    m->VD = (int64_t)c->ssm_v_heads * c->ssm_state;
    m->CD = 2 * m->KD + m->VD;
    m->HD = (int64_t)c->n_head * c->head_dim;
    m->KVD = (int64_t)c->n_head_kv * c->head_dim;
    return m;
}

void q35_model_free(q35_model *m) { free(m); }

int q35_model_set(q35_model *m, int layer, int slot, q35_tensor t) {
    if (slot < 0 || slot >= Q35_W_COUNT || layer < -1 || layer >= m->c.n_layer) return -1;
    if (layer < 0) m->global[slot] = t;
    else m->layer[layer][slot] = t;
    return 0;
}

/* the shape each slot must have, or rows = 0 for slots a layer kind does not use */
static void slot_shape(const q35_model *m, int il, int slot, int64_t *rows, int64_t *cols) {
    const q35_config *c = &m->c;
    const int64_t E = c->n_embd, Hv = c->ssm_v_heads;
    *rows = 0; *cols = 0;
#define S(r, k) do { *rows = (r); *cols = (k); } while (0)
    if (il < 0) {
        if (slot == Q35_W_TOKEN_EMBD) S(c->vocab_size, E);
        if (slot == Q35_W_OUTPUT_NORM) S(1, E);
        if (slot == Q35_W_OUTPUT) S(c->vocab_size, E);
        if (slot == Q35_W_NEXTN_EH_PROJ) S(E, 2 * E);
        if (slot == Q35_W_NEXTN_ENORM || slot == Q35_W_NEXTN_HNORM) S(1, E);
        return;
    }
    if (q35_moe_slot_shape(m, il, slot, rows, cols)) return;
    switch (slot) {
    case Q35_W_ATTN_NORM: case Q35_W_POST_NORM: S(1, E); return;
    case Q35_W_FFN_GATE: case Q35_W_FFN_UP: if (!c->n_expert) S(c->n_ff, E); return;
    case Q35_W_FFN_DOWN: if (!c->n_expert) S(E, c->n_ff); return;
    }
    if (c->recurrent[il]) {
        switch (slot) {
        case Q35_W_SSM_QKV: S(m->CD, E); break;
        case Q35_W_SSM_GATE: S(m->VD, E); break;
        case Q35_W_SSM_CONV: S(m->CD, c->conv_kernel); break;
        case Q35_W_SSM_DT: case Q35_W_SSM_A: S(1, Hv); break;
        case Q35_W_SSM_BETA: case Q35_W_SSM_ALPHA: S(Hv, E); break;
        case Q35_W_SSM_NORM: S(1, c->ssm_state); break;
        case Q35_W_SSM_OUT: S(E, m->VD); break;
        }
    } else {
        const int fused = m->layer[il][Q35_W_ATTN_QKV].data != NULL;
        switch (slot) {
        case Q35_W_ATTN_Q: if (!fused) S(2 * m->HD, E); break;
        case Q35_W_ATTN_K: case Q35_W_ATTN_V: if (!fused) S(m->KVD, E); break;
        case Q35_W_ATTN_QKV: if (fused) S(2 * m->HD + 2 * m->KVD, E); break;
        case Q35_W_ATTN_Q_NORM: case Q35_W_ATTN_K_NORM: S(1, c->head_dim); break;
        case Q35_W_ATTN_OUTPUT: S(E, m->HD); break;
        }
    }
#undef S
}

static int f32_only(int slot) {
    return slot == Q35_W_OUTPUT_NORM || slot == Q35_W_ATTN_NORM || slot == Q35_W_POST_NORM ||
           slot == Q35_W_ATTN_Q_NORM || slot == Q35_W_ATTN_K_NORM || slot == Q35_W_SSM_CONV ||
           slot == Q35_W_SSM_DT || slot == Q35_W_SSM_A || slot == Q35_W_SSM_NORM ||
           slot == Q35_W_FFN_GATE_INP || slot == Q35_W_FFN_GATE_INP_SHEXP || slot == Q35_W_NEXTN_ENORM ||
           slot == Q35_W_NEXTN_HNORM;
}

static int is_nextn(int slot) {
    return slot == Q35_W_NEXTN_EH_PROJ || slot == Q35_W_NEXTN_ENORM || slot == Q35_W_NEXTN_HNORM;
}

/* the model is an MTP block: its input projection and both norms are set */
static int has_nextn(const q35_model *m) { return m->global[Q35_W_NEXTN_EH_PROJ].data != NULL; }

static int check_tensor(const q35_model *m, int il, int slot, const q35_tensor *t) {
    int64_t rows, cols;
    slot_shape(m, il, slot, &rows, &cols);
    if (rows == 0) return 0;                         /* not used here */
    if (!t->data) return il < 0 && (slot == Q35_W_OUTPUT || is_nextn(slot)) ? 0 : -1;   /* output may be tied */
    if (t->rows * t->cols != rows * cols || t->cols != cols) return -1;
    if (f32_only(slot)) return t->type == Q35_TYPE_F32 ? 0 : -1;
    if (q35_act_type(t->type) < 0 || cols % q35_type_block_elems(t->type)) return -1;
    return 0;
}

int q35_model_check(const q35_model *m) {
    const int nextn = (m->global[Q35_W_NEXTN_EH_PROJ].data != NULL) + (m->global[Q35_W_NEXTN_ENORM].data != NULL) +
                      (m->global[Q35_W_NEXTN_HNORM].data != NULL);
    if (nextn != 0 && nextn != 3) return -1;    /* an MTP block needs all three */
    for (int slot = 0; slot < Q35_W_COUNT; slot++)
        if (check_tensor(m, -1, slot, &m->global[slot])) return -1;
    for (int il = 0; il < m->c.n_layer; il++)
        for (int slot = 0; slot < Q35_W_COUNT; slot++)
            if (check_tensor(m, il, slot, &m->layer[il][slot])) return -1;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* session                                                                   */

static void *zalloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64)) return NULL;
    memset(p, 0, n);
    return p;
}

void q35_session_free(q35_session *s) {
    if (!s) return;
    if (s->pool) q35_pool_free(s->pool);
    q35_vocab_free(&s->vs);
    for (int il = 0; il < Q35_MAX_LAYERS; il++) {
        free(s->conv[il]); free(s->ssm[il]); free(s->kc[il]); free(s->vc[il]); free(s->convw_t[il]);
    }
    free(s->x); free(s->xn); free(s->proj); free(s->o); free(s->g); free(s->beta);
    free(s->att_ws); free(s->conv_tmp); free(s->act); free(s->rope_cs); free(s->prof);
    q35_moe_free(s);
    for (int il = 0; il < Q35_MAX_LAYERS; il++)
        for (int slot = 0; slot < Q35_W_COUNT; slot++) free(s->packed[il][slot]);
    if (s->dns) {
        for (int i = 0; i < s->p.n_threads; i++) {
            free(s->dns[i].G); free(s->dns[i].L); free(s->dns[i].A); free(s->dns[i].U);
            free(s->dns[i].W); free(s->dns[i].Vn); free(s->dns[i].P);
        }
        free(s->dns);
    }
    free(s);
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* every matrix of the model has a dot kernel and an activation converter */
static int kernels_cover(const q35_model *m, const q35_kernels *k) {
    for (int il = -1; il < m->c.n_layer; il++) {
        const q35_tensor *ts = il < 0 ? m->global : m->layer[il];
        for (int slot = 0; slot < Q35_W_COUNT; slot++) {
            if (!ts[slot].data || f32_only(slot) || (il < 0 && slot == Q35_W_TOKEN_EMBD && m->global[Q35_W_OUTPUT].data))
                continue;
            const int at = q35_act_type(ts[slot].type);
            if (at < 0 || !k->vec_dot[ts[slot].type] || !k->from_float[at]) return 0;
        }
    }
    return 1;
}

int q35_kv_type_ok(int type, int32_t head_dim) {
    switch (type) {
    case Q35_TYPE_F32: case Q35_TYPE_F16: case Q35_TYPE_BF16: case Q35_TYPE_Q8_0:
        return head_dim > 0 && head_dim % q35_type_block_elems(type) == 0;
    default: return 0;
    }
}

/* the matrices of a layer that can be repacked: the dense ones (q35_matmul) and the expert
 * stacks (moe.c), whose experts must each start a group of 16 rows */
static const int packable_slots[] = {
    Q35_W_FFN_GATE, Q35_W_FFN_UP, Q35_W_FFN_DOWN, Q35_W_ATTN_Q, Q35_W_ATTN_K, Q35_W_ATTN_V, Q35_W_ATTN_QKV,
    Q35_W_ATTN_OUTPUT, Q35_W_SSM_QKV, Q35_W_SSM_GATE, Q35_W_SSM_BETA, Q35_W_SSM_ALPHA, Q35_W_SSM_OUT,
    Q35_W_FFN_GATE_INP, Q35_W_FFN_GATE_INP_SHEXP, Q35_W_FFN_GATE_SHEXP, Q35_W_FFN_UP_SHEXP, Q35_W_FFN_DOWN_SHEXP,
    Q35_W_FFN_GATE_EXPS, Q35_W_FFN_UP_EXPS, Q35_W_FFN_GATE_UP_EXPS, Q35_W_FFN_DOWN_EXPS,
};

static int is_expert_stack(int slot) {
    return slot == Q35_W_FFN_GATE_EXPS || slot == Q35_W_FFN_UP_EXPS || slot == Q35_W_FFN_GATE_UP_EXPS ||
           slot == Q35_W_FFN_DOWN_EXPS;
}

/* bytes of the repacked copy of t (in slot) under table k, or 0 when its type has no repacked
 * product there or the shape does not fit the layout */
static int64_t packed_size(const q35_model *m, const q35_kernels *k, const q35_tensor *t, int slot) {
    if (!t->data || !k->gemm_packed[t->type]) return 0;
    /* an expert's rows (gate, up: Fe each; down: E) must be whole groups */
    if (is_expert_stack(slot) && (m->c.n_ff_expert % Q35_PACK_ROWS || m->c.n_embd % Q35_PACK_ROWS)) return 0;
    return q35_packed_bytes(t->type, t->rows, t->cols);
}

int64_t q35_model_packed_bytes(const q35_model *m, int isa) {
    const q35_kernels *k = q35_kernels_for(isa);
    if (!k) return -1;
    int64_t total = 0;
    for (int il = 0; il < m->c.n_layer; il++)
        for (size_t i = 0; i < sizeof packable_slots / sizeof packable_slots[0]; i++)
            total += packed_size(m, k, &m->layer[il][packable_slots[i]], packable_slots[i]);
    return total;
}

/* a buffer for the repacked copy of t (in slot), or NULL when it has none (packed_size); *failed
 * set when memory runs out */
static uint8_t *packed_buffer(q35_session *s, const q35_tensor *t, int slot, int *failed) {
    const int64_t bytes = packed_size(s->m, s->k, t, slot);
    if (!bytes) return NULL;
    uint8_t *buf = aligned_alloc(64, (size_t)((bytes + 63) / 64 * 64));
    if (!buf) *failed = 1;
    else s->packed_bytes += bytes;
    return buf;
}

/* every thread repacks its share of the groups of 16 rows of each tensor (q35_repack of whole
 * groups: a range of groups is the same bytes as in the repacking of the whole tensor) */
typedef struct {
    q35_session *s;
    int failed; /* set by any thread; the pool's join orders it before the caller reads it */
} repack_job;

static void repack_task(void *arg, int ith, int nth) {
    repack_job *job = arg;
    const q35_session *s = job->s;
    const q35_model *m = s->m;
    for (int il = 0; il < m->c.n_layer; il++)
        for (size_t i = 0; i < sizeof packable_slots / sizeof packable_slots[0]; i++) {
            const int slot = packable_slots[i];
            const q35_tensor *t = &m->layer[il][slot];
            uint8_t *out = s->packed[il][slot];
            if (!out) continue;
            const int64_t wrb = q35_row_bytes(t->type, t->cols), gb = q35_packed_bytes(t->type, Q35_PACK_ROWS, t->cols);
            int64_t lo, hi;
            q35_split(t->rows / Q35_PACK_ROWS, ith, nth, &lo, &hi);
            if (lo < hi && q35_repack(t->type, (const uint8_t *)t->data + lo * Q35_PACK_ROWS * wrb, (hi - lo) * Q35_PACK_ROWS, t->cols,
                                      out + lo * gb))
                __atomic_store_n(&job->failed, 1, __ATOMIC_RELAXED);
        }
}

static int repack_weights(q35_session *s) {
    const q35_model *m = s->m;
    int failed = 0;
    for (int il = 0; il < m->c.n_layer && !failed; il++)
        for (size_t i = 0; i < sizeof packable_slots / sizeof packable_slots[0] && !failed; i++)
            s->packed[il][packable_slots[i]] = packed_buffer(s, &m->layer[il][packable_slots[i]], packable_slots[i], &failed);
    if (failed) return -1;
    repack_job job = {s, 0};
    q35_pool_run(s->pool, repack_task, &job);
    /* the LM head stays as stored: the vocab strategies (vocab.c) read it so, and their logits equal
     * the full head's bit for bit */
    return __atomic_load_n(&job.failed, __ATOMIC_RELAXED) ? -1 : 0;
}

const uint8_t *q35_packed_of(const q35_session *s, const q35_tensor *w) {
    const q35_model *m = s->m;
    const uintptr_t first = (uintptr_t)&m->layer[0][0], at = (uintptr_t)w;
    if (at >= first && at < (uintptr_t)(&m->layer[0][0] + Q35_MAX_LAYERS * Q35_W_COUNT)) {
        const int64_t i = (int64_t)((at - first) / sizeof(q35_tensor));
        return s->packed[i / Q35_W_COUNT][i % Q35_W_COUNT];
    }
    return NULL;
}

int64_t q35_session_packed_bytes(const q35_session *s) { return s->packed_bytes; }

int q35_session_is_packed(const q35_session *s, int layer, int slot) {
    if (slot < 0 || slot >= Q35_W_COUNT || layer < -1 || layer >= s->m->c.n_layer) return 0;
    const q35_tensor *t = layer < 0 ? &s->m->global[slot] : &s->m->layer[layer][slot];
    return q35_packed_of(s, t) != NULL;
}

q35_session *q35_session_new(const q35_model *m, const q35_session_params *p) {
    if (q35_model_check(m) || p->n_threads < 1 || p->n_threads > 1024 || p->ubatch < 1 || p->n_ctx < 1 ||
        p->fdn_threshold < 0 || p->dn_algo < 0 || p->dn_algo > Q35_DN_CHUNKED ||
        !q35_kv_type_ok(p->type_k, m->c.head_dim) || !q35_kv_type_ok(p->type_v, m->c.head_dim))
        return NULL;
    const q35_kernels *k = q35_kernels_for(p->isa);
    if (!k || !kernels_cover(m, k)) return NULL;
    q35_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    const q35_config *c = &m->c;
    s->m = m; s->k = k; s->p = *p;
    const int64_t U = p->ubatch, E = c->n_embd, Sk = c->ssm_state;
    s->kv_row_k = q35_row_bytes(p->type_k, m->KVD);
    s->kv_row_v = q35_row_bytes(p->type_v, m->KVD);
    int ok = 1;
    for (int il = 0; il < c->n_layer; il++) {
        if (c->recurrent[il]) {
            ok &= (s->conv[il] = zalloc(sizeof(float) * (size_t)((c->conv_kernel - 1) * m->CD))) != NULL;
            ok &= (s->ssm[il] = zalloc(sizeof(float) * (size_t)(m->VD * Sk))) != NULL;
            ok &= (s->convw_t[il] = zalloc(sizeof(float) * (size_t)(c->conv_kernel * m->CD))) != NULL;
            if (s->convw_t[il]) {
                const float *w = m->layer[il][Q35_W_SSM_CONV].data;
                for (int64_t ch = 0; ch < m->CD; ch++)
                    for (int i = 0; i < c->conv_kernel; i++) s->convw_t[il][i * m->CD + ch] = w[ch * c->conv_kernel + i];
            }
        } else {
            ok &= (s->kc[il] = zalloc((size_t)(p->n_ctx * s->kv_row_k))) != NULL;
            ok &= (s->vc[il] = zalloc((size_t)(p->n_ctx * s->kv_row_v))) != NULL;
        }
    }
    s->proj_w = max64(max64(m->CD + m->VD + 2 * c->ssm_v_heads, 2 * m->HD + 2 * m->KVD), 2 * (int64_t)c->n_ff);
    s->proj_w = max64(s->proj_w, 2 * (int64_t)c->n_ff_shared);
    int64_t in_max = max64(max64(max64(E, c->n_ff), max64(m->VD, m->HD)), c->n_ff_shared);
    if (has_nextn(m)) {             /* proj holds the MTP block's [enorm ; hnorm] input rows */
        s->proj_w = max64(s->proj_w, 2 * E);
        in_max = max64(in_max, 2 * E);
    }
    s->act_row_cap = in_max * 4 + 64; /* F32 is the widest activation format (+ matmul.c's act_stride) */
    ok &= (s->x = zalloc(sizeof(float) * (size_t)(U * E))) != NULL;
    ok &= (s->xn = zalloc(sizeof(float) * (size_t)(U * E))) != NULL;
    ok &= (s->proj = zalloc(sizeof(float) * (size_t)(U * s->proj_w))) != NULL;
    ok &= (s->o = zalloc(sizeof(float) * (size_t)(U * max64(m->VD, m->HD)))) != NULL;
    ok &= (s->g = zalloc(sizeof(float) * (size_t)(U * c->ssm_v_heads))) != NULL;
    ok &= (s->beta = zalloc(sizeof(float) * (size_t)(U * c->ssm_v_heads))) != NULL;
    s->att_ws_stride = Q35_ATT_WS(c->n_head / c->n_head_kv, c->head_dim);
    ok &= (s->att_ws = zalloc(sizeof(float) * (size_t)s->att_ws_stride * p->n_threads)) != NULL;
    ok &= (s->conv_tmp = zalloc(sizeof(float) * (size_t)((c->conv_kernel - 1) * m->CD) * p->n_threads)) != NULL;
    ok &= (s->act = zalloc((size_t)(Q35_ACT_SEGMENTS * U * s->act_row_cap))) != NULL;
    ok &= (s->rope_cs = zalloc(sizeof(float) * (size_t)p->n_ctx * (size_t)(c->rope_dims + 1))) != NULL;
    ok &= (s->prof = zalloc(sizeof(q35_op_stats) * (size_t)(c->n_layer + 1) * Q35_OP_COUNT)) != NULL;
    ok &= (s->dns = calloc((size_t)p->n_threads, sizeof *s->dns)) != NULL;
    if (ok) {
        const int64_t C = Q35_DN_CHUNK;
        for (int i = 0; i < p->n_threads; i++) {
            dn_scratch *d = &s->dns[i];
            ok &= (d->G = zalloc(sizeof(float) * 3 * C)) != NULL;
            ok &= (d->L = zalloc(sizeof(float) * C * C)) != NULL;
            ok &= (d->A = zalloc(sizeof(float) * C * C)) != NULL;
            ok &= (d->U = zalloc(sizeof(float) * C * Sk)) != NULL;
            ok &= (d->W = zalloc(sizeof(float) * C * Sk)) != NULL;
            ok &= (d->Vn = zalloc(sizeof(float) * C * Sk)) != NULL;
            ok &= (d->P = zalloc(sizeof(float) * C * Sk)) != NULL;
        }
    }
    if (ok) ok &= q35_moe_alloc(s) == 0;
    if (ok) ok &= (s->pool = q35_pool_new(p->n_threads)) != NULL;
    if (ok && p->repack) ok &= repack_weights(s) == 0;
    if (!ok) { q35_session_free(s); return NULL; }
    /* RoPE table: angle pos * theta^(-2i/R) (frequency rounded to float, angle in double) */
    const int half = c->rope_dims / 2;
    for (int i = 0; i < half; i++) {
        const float inv_freq = (float)pow((double)c->rope_theta, -2.0 * i / c->rope_dims);
        for (int64_t pos = 0; pos < p->n_ctx; pos++) {
            const double ang = (double)pos * inv_freq;
            s->rope_cs[pos * c->rope_dims + i] = (float)cos(ang);
            s->rope_cs[pos * c->rope_dims + half + i] = (float)sin(ang);
        }
    }
    return s;
}

void q35_session_reset(q35_session *s) {
    const q35_model *m = s->m;
    for (int il = 0; il < m->c.n_layer; il++) {
        if (m->c.recurrent[il]) {
            memset(s->conv[il], 0, sizeof(float) * (size_t)((m->c.conv_kernel - 1) * m->CD));
            memset(s->ssm[il], 0, sizeof(float) * (size_t)(m->VD * m->c.ssm_state));
        }
        /* KV rows past n_past are never read: no need to clear them */
    }
    s->n_past = 0;
}

int32_t q35_session_n_past(const q35_session *s) { return s->n_past; }

/* ------------------------------------------------------------------------- */
/* forward                                                                   */

static void forward_ubatch(void *arg, int ith, int nth) {
    q35_session *s = arg;
    const q35_model *m = s->m;
    const q35_config *c = &m->c;
    const int64_t E = c->n_embd;
    q35_prof_start(s, ith);

    /* embedding rows (dequantized from any type) */
    const q35_tensor *emb = &m->global[Q35_W_TOKEN_EMBD];
    const int64_t erb = q35_row_bytes(emb->type, E);
    int64_t lo, hi;
    q35_split(s->T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        q35_dequantize(emb->type, (const uint8_t *)emb->data + (int64_t)s->tokens[t] * erb, s->x + t * E, 1, E);
    if (s->h_in) {  /* MTP block: x = eh_proj . [rmsnorm(e) * enorm ; rmsnorm(h) * hnorm] */
        const int64_t ld = 2 * E;
        for (int64_t t = lo; t < hi; t++) {
            s->k->rmsnorm_f32(s->x + t * E, m->global[Q35_W_NEXTN_ENORM].data, s->proj + t * ld, E, c->rms_eps);
            s->k->rmsnorm_f32(s->h_in + t * E, m->global[Q35_W_NEXTN_HNORM].data, s->proj + t * ld + E, E, c->rms_eps);
        }
        q35_pool_barrier(s->pool);
        const q35_mm_job job = {&m->global[Q35_W_NEXTN_EH_PROJ], s->x, E, 0};
        q35_matmul(s, ith, nth, s->proj, ld, s->T, &job, 1, c->n_layer, Q35_OP_EMBED);
    } else {
        q35_pool_barrier(s->pool);
    }
    q35_prof_mark(s, ith, c->n_layer, Q35_OP_EMBED, erb * s->T);

    for (int il = 0; il < c->n_layer; il++) {
        if (c->recurrent[il]) q35_layer_deltanet(s, ith, nth, il);
        else q35_layer_attention(s, ith, nth, il);
        if (c->n_expert) q35_layer_moe(s, ith, nth, il);
        else q35_layer_ffn(s, ith, nth, il);
    }

    if (s->h_out) {   /* every row's final norm (h_nextn), for an MTP block */
        q35_split(s->T, ith, nth, &lo, &hi);
        q35_rmsnorm_rows(s->k, s->x + lo * E, s->h_out + lo * E, m->global[Q35_W_OUTPUT_NORM].data, E, hi - lo, E,
                         c->rms_eps);
        if (s->out_n == 0) q35_pool_barrier(s->pool);
    }
    if (s->out_n == 0) return;
    /* final norm and LM head, only for the rows whose logits are wanted */
    q35_split(s->out_n, ith, nth, &lo, &hi);
    q35_rmsnorm_rows(s->k, s->x + (s->out_first + lo) * E, s->xn + lo * E, m->global[Q35_W_OUTPUT_NORM].data,
                     E, hi - lo, E, c->rms_eps);
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, c->n_layer, Q35_OP_NORM, (int64_t)sizeof(float) * E);
    q35_vocab_head(s, ith, nth);
}

/* the u-batch loop behind every forward entry point; mode: enum q35_logits_mode */
static int forward(q35_session *s, const int32_t *tokens, int32_t n, const float *h_in, float *logits,
                   int32_t *top1, int32_t mode, float *h_out) {
    const q35_config *c = &s->m->c;
    const int64_t E = c->n_embd;
    if (n < 1 || (int64_t)s->n_past + n > s->p.n_ctx) return -1;
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size) return -2;
    if (mode < Q35_LOGITS_NONE || mode > Q35_LOGITS_ALL) return -3;
    if (mode != Q35_LOGITS_NONE && !logits && s->vs.v.kind != Q35_VOCAB_ARGMAX) return -3;
    if (h_in && !has_nextn(s->m)) return -4;
    for (int32_t b = 0; b < n; b += s->p.ubatch) {
        const int32_t T = n - b < s->p.ubatch ? n - b : s->p.ubatch;
        const int last = b + T == n;
        s->tokens = tokens + b;
        s->T = T;
        s->pos0 = s->n_past;
        s->logits = NULL;
        s->top1 = NULL;
        s->h_in = h_in ? h_in + (int64_t)b * E : NULL;
        s->h_out = h_out ? h_out + (int64_t)b * E : NULL;
        if (mode == Q35_LOGITS_NONE) {
            s->out_first = 0; s->out_n = 0;
        } else if (mode == Q35_LOGITS_ALL) {
            s->out_first = 0; s->out_n = T;
            if (logits) s->logits = logits + (int64_t)b * c->vocab_size;
            if (top1) s->top1 = top1 + b;
        } else if (last) {
            s->out_first = T - 1; s->out_n = 1; s->logits = logits; s->top1 = top1;
        } else {
            s->out_first = 0; s->out_n = 0;
        }
        q35_pool_run(s->pool, forward_ubatch, s);
        s->n_past += T;
    }
    s->h_in = NULL; s->h_out = NULL;
    return 0;
}

int q35_session_forward_top1(q35_session *s, const int32_t *tokens, int32_t n, float *logits, int32_t *top1,
                             int32_t logits_all) {
    return forward(s, tokens, n, NULL, logits, top1, logits_all ? Q35_LOGITS_ALL : Q35_LOGITS_LAST, NULL);
}

int q35_session_forward(q35_session *s, const int32_t *tokens, int32_t n, float *logits, int32_t logits_all) {
    return q35_session_forward_top1(s, tokens, n, logits, NULL, logits_all);
}

int q35_session_forward_h(q35_session *s, const int32_t *tokens, int32_t n, const float *h_in, float *logits,
                          int32_t logits_mode, float *h_out) {
    return forward(s, tokens, n, h_in, logits, NULL, logits_mode, h_out);
}

int q35_session_truncate(q35_session *s, int32_t n_past) {
    for (int il = 0; il < s->m->c.n_layer; il++)
        if (s->m->c.recurrent[il]) return -1;
    if (n_past < 0 || n_past > s->n_past) return -1;
    s->n_past = n_past;     /* rows past n_past are never read */
    return 0;
}

/* ------------------------------------------------------------------------- */
/* state snapshots: [n_past (int64)][type_k, type_v (int32)][conv states][delta states]
 * [K, V rows 0..n_past-1 in the cache types]. A checkpoint is the same without the KV rows. */

static size_t state_bytes(const q35_session *s, int64_t np, int with_kv) {
    const q35_model *m = s->m;
    size_t n = sizeof(int64_t) + 2 * sizeof(int32_t);
    for (int il = 0; il < m->c.n_layer; il++) {
        if (m->c.recurrent[il]) n += sizeof(float) * (size_t)((m->c.conv_kernel - 1) * m->CD + m->VD * m->c.ssm_state);
        else if (with_kv) n += (size_t)(np * (s->kv_row_k + s->kv_row_v));
    }
    return n;
}

static size_t state_save(const q35_session *s, void *dst, size_t cap, int with_kv) {
    const size_t need = state_bytes(s, s->n_past, with_kv);
    if (cap < need) return 0;
    const q35_model *m = s->m;
    uint8_t *p = dst;
    const int64_t np = s->n_past;
    memcpy(p, &np, sizeof np); p += sizeof np;
    memcpy(p, &s->p.type_k, sizeof(int32_t)); p += sizeof(int32_t);
    memcpy(p, &s->p.type_v, sizeof(int32_t)); p += sizeof(int32_t);
    for (int il = 0; il < m->c.n_layer; il++) {
        if (m->c.recurrent[il]) {
            size_t a = sizeof(float) * (size_t)((m->c.conv_kernel - 1) * m->CD), b = sizeof(float) * (size_t)(m->VD * m->c.ssm_state);
            memcpy(p, s->conv[il], a); p += a;
            memcpy(p, s->ssm[il], b); p += b;
        } else if (with_kv) {
            const size_t a = (size_t)(np * s->kv_row_k), b = (size_t)(np * s->kv_row_v);
            memcpy(p, s->kc[il], a); p += a;
            memcpy(p, s->vc[il], b); p += b;
        }
    }
    return need;
}

/* max_np: the largest n_past the state may hold (a checkpoint: the current one, since the KV
 * rows before it must still be those of the sequence it was taken from) */
static int state_load(q35_session *s, const void *src, size_t n, int with_kv, int64_t max_np) {
    const q35_model *m = s->m;
    const uint8_t *p = src;
    int64_t np;
    int32_t tk, tv;
    if (n < sizeof np + 2 * sizeof(int32_t)) return -1;
    memcpy(&np, p, sizeof np); p += sizeof np;
    memcpy(&tk, p, sizeof tk); p += sizeof tk;
    memcpy(&tv, p, sizeof tv); p += sizeof tv;
    if (np < 0 || np > max_np || tk != s->p.type_k || tv != s->p.type_v) return -1;
    if (state_bytes(s, np, with_kv) != n) return -1;
    s->n_past = (int32_t)np;
    for (int il = 0; il < m->c.n_layer; il++) {
        if (m->c.recurrent[il]) {
            size_t a = sizeof(float) * (size_t)((m->c.conv_kernel - 1) * m->CD), b = sizeof(float) * (size_t)(m->VD * m->c.ssm_state);
            memcpy(s->conv[il], p, a); p += a;
            memcpy(s->ssm[il], p, b); p += b;
        } else if (with_kv) {
            const size_t a = (size_t)(np * s->kv_row_k), b = (size_t)(np * s->kv_row_v);
            memcpy(s->kc[il], p, a); p += a;
            memcpy(s->vc[il], p, b); p += b;
        }
    }
    return 0;
}

size_t q35_session_state_size(const q35_session *s) { return state_bytes(s, s->n_past, 1); }
size_t q35_session_state_save(const q35_session *s, void *dst, size_t cap) { return state_save(s, dst, cap, 1); }
int q35_session_state_load(q35_session *s, const void *src, size_t n) {
    return state_load(s, src, n, 1, s->p.n_ctx);
}

size_t q35_session_checkpoint_size(const q35_session *s) { return state_bytes(s, s->n_past, 0); }
size_t q35_session_checkpoint_save(const q35_session *s, void *dst, size_t cap) { return state_save(s, dst, cap, 0); }
int q35_session_checkpoint_load(q35_session *s, const void *src, size_t n) {
    return state_load(s, src, n, 0, s->n_past);
}

/* The mixture-of-experts FFN of Qwen3.5-MoE (docs/qwen35.md §2.6), run by all threads of the pool.
 *
 * For each token with normed input f:
 *   p = softmax(W_router f) over all NE experts; the k most probable (ties: lowest id);
 *   w_e = p_e / sum of the selected p;   routed = sum_e w_e Down_e(silu(Gate_e f) * Up_e f)
 *   shared = Down_s(silu(Gate_s f) * Up_s f) * sigmoid(w_shgate . f);   x += routed + shared
 *
 * Prefill groups the u-batch's (token, expert) pairs by expert, so that each selected
 * expert's weights are streamed once per u-batch for all of its tokens; experts no token
 * picked are never read (decode reads exactly k experts). Expert e of a stack with R rows
 * per expert is rows [e R, (e+1) R), as stored or, where the session repacked the stack
 * (R a multiple of 16), groups [e R / 16, (e+1) R / 16) of the repacked copy.
 *
 * Work split: gate/up rows of all active experts form one list, cut into equal shares of
 * dot products (a row of an expert with n tokens costs n), so threads split across experts
 * and rows; the down projection splits output rows, so each thread owns its columns of
 * the routed sum and adds the experts in ascending id order, race-free and independent of
 * the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"

#define MIN_WEIGHT_SUM 6.103515625e-5f   /* llama.cpp's guard when renormalizing */

typedef struct q35_moe_scratch {
    float *probs;        /* [U][NE] router logits, then probabilities */
    float *shg;          /* [U] the shared expert's gate logit */
    int32_t *sel;        /* [U][k] selected experts */
    float *selw;         /* [U][k] their renormalized weights */
    int32_t *count;      /* [NE] tokens routed to each expert */
    int32_t *start;      /* [NE] first grouped position of each expert */
    int32_t *active;     /* [NE] experts with tokens, ascending; n_active of them */
    int32_t n_active;
    int32_t *ptok;       /* [U k] token of each grouped position */
    float *pw;           /* [U k] its routing weight */
    uint8_t *xa[2];      /* [U k] expert inputs in the gate / up activation formats, grouped order */
    float *h;            /* [U k][2 Fe] gate | up outputs; then h = silu(gate) * up in the first Fe */
    uint8_t *ha;         /* [U k] h in the down weight's activation format */
    float *y;            /* [U][E] routed sum */
    float *sh;           /* [U][E] shared expert output */
} q35_moe_scratch;

/* ------------------------------------------------------------------------- */
/* slots and scratch                                                         */

int q35_moe_slot_shape(const q35_model *m, int il, int slot, int64_t *rows, int64_t *cols) {
    const q35_config *c = &m->c;
    const int64_t E = c->n_embd, NE = c->n_expert, Fe = c->n_ff_expert, Fs = c->n_ff_shared;
    if (slot < Q35_W_FFN_GATE_INP || slot > Q35_W_FFN_DOWN_SHEXP) return 0;
    *rows = 0; *cols = 0;
    if (!NE) return 1;                                /* dense model: slots unused */
    const int fused = m->layer[il][Q35_W_FFN_GATE_UP_EXPS].data != NULL;
    switch (slot) {
    case Q35_W_FFN_GATE_INP: *rows = NE; *cols = E; break;
    case Q35_W_FFN_GATE_EXPS: case Q35_W_FFN_UP_EXPS: if (!fused) { *rows = NE * Fe; *cols = E; } break;
    case Q35_W_FFN_GATE_UP_EXPS: if (fused) { *rows = NE * 2 * Fe; *cols = E; } break;
    case Q35_W_FFN_DOWN_EXPS: *rows = NE * E; *cols = Fe; break;
    case Q35_W_FFN_GATE_INP_SHEXP: *rows = 1; *cols = E; break;
    case Q35_W_FFN_GATE_SHEXP: case Q35_W_FFN_UP_SHEXP: *rows = Fs; *cols = E; break;
    case Q35_W_FFN_DOWN_SHEXP: *rows = E; *cols = Fs; break;
    }
    return 1;
}

static void *alloc64(size_t n) {
    void *p = NULL;
    return posix_memalign(&p, 64, n ? n : 64) ? NULL : p;
}

void q35_moe_free(q35_session *s) {
    q35_moe_scratch *ms = s->moe;
    if (!ms) return;
    free(ms->probs); free(ms->shg); free(ms->sel); free(ms->selw); free(ms->count); free(ms->start);
    free(ms->active); free(ms->ptok); free(ms->pw); free(ms->xa[0]); free(ms->xa[1]); free(ms->h);
    free(ms->ha); free(ms->y); free(ms->sh);
    free(ms);
    s->moe = NULL;
}

/* the widest activation row the experts of any layer need: gate / up inputs (E values), and
 * down inputs (Fe values) */
static void act_row_sizes(const q35_model *m, int64_t *in_gu, int64_t *in_d) {
    const q35_config *c = &m->c;
    *in_gu = *in_d = 0;
    for (int il = 0; il < c->n_layer; il++) {
        const q35_tensor *L = m->layer[il];
        const int fused = L[Q35_W_FFN_GATE_UP_EXPS].data != NULL;
        const int tg = fused ? L[Q35_W_FFN_GATE_UP_EXPS].type : L[Q35_W_FFN_GATE_EXPS].type;
        const int tu = fused ? tg : L[Q35_W_FFN_UP_EXPS].type;
        const int ag = q35_act_type(tg), au = q35_act_type(tu), ad = q35_act_type(L[Q35_W_FFN_DOWN_EXPS].type);
        const int64_t g = q35_row_bytes(ag, c->n_embd), u = q35_row_bytes(au, c->n_embd);
        const int64_t d = q35_row_bytes(ad, c->n_ff_expert);
        *in_gu = g > *in_gu ? g : *in_gu;
        *in_gu = u > *in_gu ? u : *in_gu;
        *in_d = d > *in_d ? d : *in_d;
    }
}

int q35_moe_alloc(q35_session *s) {
    const q35_config *c = &s->m->c;
    if (!c->n_expert) return 0;
    q35_moe_scratch *ms = calloc(1, sizeof *ms);
    if (!ms) return -1;
    s->moe = ms;
    const size_t U = (size_t)s->p.ubatch, NE = (size_t)c->n_expert, K = (size_t)c->n_expert_used;
    const size_t E = (size_t)c->n_embd, Fe = (size_t)c->n_ff_expert;
    int ok = 1;
    ok &= (ms->probs = alloc64(sizeof(float) * U * NE)) != NULL;
    ok &= (ms->shg = alloc64(sizeof(float) * U)) != NULL;
    ok &= (ms->sel = alloc64(sizeof(int32_t) * U * K)) != NULL;
    ok &= (ms->selw = alloc64(sizeof(float) * U * K)) != NULL;
    ok &= (ms->count = alloc64(sizeof(int32_t) * NE)) != NULL;
    ok &= (ms->start = alloc64(sizeof(int32_t) * NE)) != NULL;
    ok &= (ms->active = alloc64(sizeof(int32_t) * NE)) != NULL;
    ok &= (ms->ptok = alloc64(sizeof(int32_t) * U * K)) != NULL;
    ok &= (ms->pw = alloc64(sizeof(float) * U * K)) != NULL;
    int64_t in_gu, in_d;
    act_row_sizes(s->m, &in_gu, &in_d);
    ok &= (ms->xa[0] = alloc64((size_t)in_gu * U * K)) != NULL;
    ok &= (ms->xa[1] = alloc64((size_t)in_gu * U * K)) != NULL;   /* up's own rows: another format, or prepared */
    ok &= (ms->h = alloc64(sizeof(float) * U * K * 2 * Fe)) != NULL;
    ok &= (ms->ha = alloc64((size_t)in_d * U * K)) != NULL;
    ok &= (ms->y = alloc64(sizeof(float) * U * E)) != NULL;
    ok &= (ms->sh = alloc64(sizeof(float) * U * E)) != NULL;
    if (!ok) { q35_moe_free(s); return -1; }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* routing                                                                   */

/* logits [NE] -> probabilities in place; the K most probable experts (lowest id first
 * among equals) and their renormalized weights */
static void route_token(float *p, int NE, int K, int32_t *ids, float *w) {
    float mx = p[0];
    for (int e = 1; e < NE; e++) mx = p[e] > mx ? p[e] : mx;
    double sum = 0.0;
    for (int e = 0; e < NE; e++) { p[e] = expf(p[e] - mx); sum += p[e]; }
    const float inv = (float)(1.0 / sum);
    for (int e = 0; e < NE; e++) p[e] *= inv;
    uint8_t taken[Q35_MAX_EXPERTS];
    memset(taken, 0, (size_t)NE);
    float wsum = 0.0f;
    for (int j = 0; j < K; j++) {
        int best = -1;
        for (int e = 0; e < NE; e++)              /* strict >: the first (lowest id) maximum wins */
            if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
        taken[best] = 1;
        ids[j] = best;
        w[j] = p[best];
        wsum += p[best];
    }
    const float d = wsum > MIN_WEIGHT_SUM ? wsum : MIN_WEIGHT_SUM;
    for (int j = 0; j < K; j++) w[j] /= d;
}

/* counting sort of the T*K (token, expert) pairs by expert, tokens ascending in a group */
static void group_by_expert(q35_moe_scratch *ms, int T, int NE, int K) {
    memset(ms->count, 0, sizeof(int32_t) * (size_t)NE);
    for (int i = 0; i < T * K; i++) ms->count[ms->sel[i]]++;
    int32_t pos = 0;
    ms->n_active = 0;
    for (int e = 0; e < NE; e++) {
        ms->start[e] = pos;
        pos += ms->count[e];
        if (ms->count[e]) ms->active[ms->n_active++] = e;
    }
    /* fill: reuse count as the cursor, then restore it */
    for (int e = 0; e < NE; e++) ms->count[e] = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < K; j++) {
            const int e = ms->sel[t * K + j];
            const int32_t p = ms->start[e] + ms->count[e]++;
            ms->ptok[p] = t;
            ms->pw[p] = ms->selw[t * K + j];
        }
}

/* ------------------------------------------------------------------------- */
/* expert rows                                                               */

/* one expert stack: row r of expert e at base + (e * stride + r) * rb as stored, or, where the
 * session repacked the stack, in the group of 16 rows packed + (e * stride + r) / 16 * gb */
typedef struct {
    const uint8_t *base, *packed;
    int type;
    int64_t rb, stride, gb;
    q35_prepare_packed_fn prep;    /* what the repacked product asks of its activation rows, or NULL */
} stack_view;

static stack_view stack_at(const q35_session *s, const q35_tensor *t, int64_t in, int64_t stride, int64_t first) {
    const uint8_t *packed = q35_packed_of(s, t);
    stack_view v = {t->data, packed, t->type, q35_row_bytes(t->type, in), stride, 0, NULL};
    v.base += first * v.rb;
    if (packed) {
        v.gb = q35_packed_bytes(t->type, Q35_PACK_ROWS, in);
        v.packed += first / Q35_PACK_ROWS * v.gb;
        v.prep = s->k->prepare_packed[t->type];
    }
    return v;
}

/* Rows [r0, r1) of expert e (`in` values each; for a repacked stack r0 a multiple of 16) against
 * n activation rows (act + i * arb). Without dst: out[i * ldo + (r - r0)] = dot. With dst:
 * out[dst[i] * ldo + (r - r0)] += scale[i] * dot. */
static void rows_dot(const q35_kernels *k, const stack_view *sv, int e, int64_t r0, int64_t r1, int64_t in,
                     const uint8_t *act, int64_t arb, int n, float *out, int64_t ldo, const int32_t *dst,
                     const float *scale) {
    const uint8_t *w = sv->base + (int64_t)e * sv->stride * sv->rb;
    for (int64_t rb = r0; rb < r1; rb += Q35_ROW_BLOCK) {
        const int64_t re = rb + Q35_ROW_BLOCK < r1 ? rb + Q35_ROW_BLOCK : r1;
        if (!sv->packed)
            q35_prefetch_rows(w, sv->rb, re, re + Q35_PREFETCH_ROWS < r1 ? re + Q35_PREFETCH_ROWS : r1);
        else if (re < r1)   /* the next group: an expert's few tokens leave the product waiting on memory */
            q35_prefetch_rows(sv->packed + ((int64_t)e * sv->stride + re) / Q35_PACK_ROWS * sv->gb, sv->gb, 0, 1);
        for (int tb = 0; tb < n; tb += Q35_TOK_BLOCK) {
            const int te = tb + Q35_TOK_BLOCK < n ? tb + Q35_TOK_BLOCK : n;
            float v[Q35_TOK_BLOCK * Q35_ROW_BLOCK];
            if (sv->packed)   /* one whole group: re - rb == 16 */
                k->gemm_packed[sv->type](sv->packed + ((int64_t)e * sv->stride + rb) / Q35_PACK_ROWS * sv->gb,
                                         act + tb * arb, arb, te - tb, in, v, Q35_ROW_BLOCK);
            else
                q35_dot_panel(k, sv->type, w + rb * sv->rb, sv->rb, (int)(re - rb), act + tb * arb, arb, te - tb,
                              in, v, Q35_ROW_BLOCK);
            for (int t = tb; t < te; t++) {
                const float *vt = v + (t - tb) * Q35_ROW_BLOCK;
                if (!dst) {
                    float *o = out + t * ldo + (rb - r0);
                    for (int64_t r = 0; r < re - rb; r++) o[r] = vt[r];
                } else {
                    float *o = out + dst[t] * ldo + (rb - r0);
                    for (int64_t r = 0; r < re - rb; r++) o[r] += scale[t] * vt[r];
                }
            }
        }
    }
}

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : a / b; }
static int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : x > hi ? hi : x; }
static int64_t round_up(int64_t x, int64_t b) { return (x + b - 1) / b * b; }

/* ------------------------------------------------------------------------- */
/* the layer                                                                 */

void q35_layer_moe(q35_session *s, int ith, int nth, int il) {
    const q35_model *m = s->m;
    const q35_config *c = &m->c;
    const q35_kernels *k = s->k;
    q35_moe_scratch *ms = s->moe;
    const int T = s->T, NE = c->n_expert, K = c->n_expert_used;
    const int64_t E = c->n_embd, Fe = c->n_ff_expert, Fs = c->n_ff_shared, pw = s->proj_w;
    const q35_tensor *L = m->layer[il];
    int64_t lo, hi;

    /* pre-FFN norm */
    q35_split(T, ith, nth, &lo, &hi);
    q35_rmsnorm_rows(s->k, s->x + lo * E, s->xn + lo * E, L[Q35_W_POST_NORM].data, E, hi - lo, E, c->rms_eps);
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_NORM, (int64_t)sizeof(float) * E);

    /* router logits and the shared expert's gate logit (F32 weights, F32 activations) */
    q35_mm_job jr[2] = {{&L[Q35_W_FFN_GATE_INP], ms->probs, NE, 0}, {&L[Q35_W_FFN_GATE_INP_SHEXP], ms->shg, 1, 0}};
    q35_matmul(s, ith, nth, s->xn, E, T, jr, 2, il, Q35_OP_MOE_ROUTER);
    q35_split(T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) route_token(ms->probs + t * NE, NE, K, ms->sel + t * K, ms->selw + t * K);
    q35_pool_barrier(s->pool);
    if (ith == 0) group_by_expert(ms, T, NE, K);
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_MOE_ROUTER, 0);

    /* the stacks: gate and up (separate or fused), down */
    stack_view g, u, d;
    if (L[Q35_W_FFN_GATE_UP_EXPS].data) {
        g = stack_at(s, &L[Q35_W_FFN_GATE_UP_EXPS], E, 2 * Fe, 0);
        u = stack_at(s, &L[Q35_W_FFN_GATE_UP_EXPS], E, 2 * Fe, Fe);
    } else {
        g = stack_at(s, &L[Q35_W_FFN_GATE_EXPS], E, Fe, 0);
        u = stack_at(s, &L[Q35_W_FFN_UP_EXPS], E, Fe, 0);
    }
    d = stack_at(s, &L[Q35_W_FFN_DOWN_EXPS], Fe, E, 0);

    /* expert inputs, one row per grouped position, in the formats the gate / up weights pair
     * with (and prepared for a repacked product where it asks); up shares gate's rows when the same */
    const int at_g = q35_act_type(g.type), at_u = q35_act_type(u.type), at_d = q35_act_type(d.type);
    const int64_t arb_g = q35_row_bytes(at_g, E), arb_u = q35_row_bytes(at_u, E), arb_d = q35_row_bytes(at_d, Fe);
    const int own_u = at_u != at_g || u.prep != g.prep;
    const uint8_t *xu = own_u ? ms->xa[1] : ms->xa[0];
    const int P = T * K;
    q35_split(P, ith, nth, &lo, &hi);
    for (int64_t p = lo; p < hi; p++) {
        const float *x = s->xn + (int64_t)ms->ptok[p] * E;
        k->from_float[at_g](x, ms->xa[0] + p * arb_g, E);
        if (g.prep) g.prep(ms->xa[0] + p * arb_g, arb_g, 1, E);
        if (own_u) {
            k->from_float[at_u](x, ms->xa[1] + p * arb_u, E);
            if (u.prep) u.prep(ms->xa[1] + p * arb_u, arb_u, 1, E);
        }
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_ACT_QUANT, 0);

    /* gate | up: the rows (2 Fe per expert) of all active experts, split in equal shares of
     * dot products, cut at whole blocks of 16 rows (a repacked group); h row p = [gate (Fe) |
     * up (Fe)] of grouped position p */
    int64_t total = 0;
    for (int a = 0; a < ms->n_active; a++) total += 2 * Fe * ms->count[ms->active[a]];
    const int64_t c_lo = total * ith / nth, c_hi = total * (ith + 1) / nth;
    int64_t base = 0;
    for (int a = 0; a < ms->n_active; a++) {
        const int e = ms->active[a], n = ms->count[e], p0 = ms->start[e];
        const int64_t r0 = clamp64(round_up(ceil_div(c_lo - base, n), Q35_ROW_BLOCK), 0, 2 * Fe);
        const int64_t r1 = clamp64(round_up(ceil_div(c_hi - base, n), Q35_ROW_BLOCK), 0, 2 * Fe);
        base += 2 * Fe * n;
        float *h = ms->h + (int64_t)p0 * 2 * Fe;
        if (r0 < Fe && r0 < r1) {          /* gate rows */
            const int64_t e1 = r1 < Fe ? r1 : Fe;
            rows_dot(k, &g, e, r0, e1, E, ms->xa[0] + (int64_t)p0 * arb_g, arb_g, n, h + r0, 2 * Fe, NULL, NULL);
        }
        if (r1 > Fe && r0 < r1) {          /* up rows */
            const int64_t b0 = (r0 > Fe ? r0 : Fe) - Fe, b1 = r1 - Fe;
            rows_dot(k, &u, e, b0, b1, E, xu + (int64_t)p0 * arb_u, arb_u, n, h + Fe + b0, 2 * Fe, NULL, NULL);
        }
    }
    q35_pool_barrier(s->pool);
    q35_prof_macs(s, ith, il, Q35_OP_MM_EXP_GATE_UP, (int64_t)P * 2 * Fe * E); /* P (token, expert) pairs */
    q35_prof_mark(s, ith, il, Q35_OP_MM_EXP_GATE_UP,
                  (int64_t)ms->n_active * Fe * (g.rb + u.rb));

    /* h = silu(gate) * up, then into the down weight's activation format */
    q35_split(P, ith, nth, &lo, &hi);
    for (int64_t p = lo; p < hi; p++) {
        float *h = ms->h + p * 2 * Fe;
        k->swiglu_f32(h, h + Fe, Fe);
        k->from_float[at_d](h, ms->ha + p * arb_d, Fe);
        if (d.prep) d.prep(ms->ha + p * arb_d, arb_d, 1, Fe);
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_SWIGLU, 0);

    /* down: this thread's output rows (whole blocks of 16) of every active expert, added in
     * ascending expert id */
    q35_split((E + Q35_ROW_BLOCK - 1) / Q35_ROW_BLOCK, ith, nth, &lo, &hi);
    lo *= Q35_ROW_BLOCK;
    hi = hi * Q35_ROW_BLOCK < E ? hi * Q35_ROW_BLOCK : E;
    for (int t = 0; t < T; t++) memset(ms->y + t * E + lo, 0, sizeof(float) * (size_t)(hi - lo));
    for (int a = 0; a < ms->n_active && lo < hi; a++) {
        const int e = ms->active[a], n = ms->count[e], p0 = ms->start[e];
        rows_dot(k, &d, e, lo, hi, Fe, ms->ha + (int64_t)p0 * arb_d, arb_d, n, ms->y + lo, E, ms->ptok + p0, ms->pw + p0);
    }
    q35_pool_barrier(s->pool);
    q35_prof_macs(s, ith, il, Q35_OP_MM_EXP_DOWN, (int64_t)P * Fe * E);
    q35_prof_mark(s, ith, il, Q35_OP_MM_EXP_DOWN, (int64_t)ms->n_active * E * d.rb);

    /* the shared expert (an ordinary SwiGLU FFN of width Fs) */
    q35_mm_job js[2] = {{&L[Q35_W_FFN_GATE_SHEXP], s->proj, pw, 0}, {&L[Q35_W_FFN_UP_SHEXP], s->proj + Fs, pw, 0}};
    q35_matmul(s, ith, nth, s->xn, E, T, js, 2, il, Q35_OP_MM_SHEXP_GATE_UP);
    q35_split_cols(Fs, ith, nth, &lo, &hi);
    for (int t = 0; t < T; t++) {
        float *row = s->proj + t * pw;
        k->swiglu_f32(row + lo, row + Fs + lo, hi - lo);
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_SWIGLU, 0);
    q35_mm_job jd = {&L[Q35_W_FFN_DOWN_SHEXP], ms->sh, E, 0};
    q35_matmul(s, ith, nth, s->proj, pw, T, &jd, 1, il, Q35_OP_MM_SHEXP_DOWN);

    /* x += routed + sigmoid(gate) * shared */
    q35_split(E, ith, nth, &lo, &hi);
    for (int t = 0; t < T; t++) {
        const float sg = 1.0f / (1.0f + expf(-ms->shg[t]));
        float *x = s->x + t * E;
        const float *y = ms->y + t * E, *sh = ms->sh + t * E;
        for (int64_t i = lo; i < hi; i++) x[i] += y[i] + sg * sh[i];
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_RESIDUAL, 0);
}

/* The LM head under a vocabulary-projection strategy (q35_vocab, q35.h).
 *
 *   full      every row of the head as stored                      exact
 *   requant   every row of a re-quantized copy                     approximate
 *   subset    the listed rows only, the rest -inf                  exact on the subset
 *   argmax    every row, but only a running maximum per token      exact top-1 id and logit
 *   screened  a cheap screening product over all rows, then the    exact top-K ids and logits
 *             exact product for the candidate rows only, the rest -inf
 *
 * Screening (the bound in screen_eps): the exact logit is e_r = fl(w_r . qx), qx the activation
 * row in the format paired with the head's type; the screened score is s_r = fl(u_r . qz), with
 * z = P x (P = I for a low-bit copy) and qz its activation row. Then
 *     w.qx - u.qz = w.(qx - x) + (w - P^T P w).x_perp - (u - P w).z + u.(z - qz)
 * (the residual w - P^T P w is orthogonal to the rows of P), so by Cauchy-Schwarz
 *     |e_r - s_r| <= ||w - P^T P w|| ||x_perp|| + ||u - P w|| ||z|| + ||w|| ||qx - x||
 *                    + ||u|| ||qz - z|| + gamma_E (||w|| ||qx|| + ||u|| (||qz|| + ||z||)) = eps_r
 * where the last term bounds the float rounding of both dot products (a sum of at most E rounded
 * terms: gamma_E = E u / (1 - E u), u = 2^-24). With L the K-th largest lower bound s_r - eps_r,
 * K rows have e >= L, so a row whose upper bound s_r + eps_r is below L is beaten by K rows:
 * every row of the exact top-K is a candidate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"

const q35_tensor *q35_lm_head(const q35_model *m) {
    return m->global[Q35_W_OUTPUT].data ? &m->global[Q35_W_OUTPUT] : &m->global[Q35_W_TOKEN_EMBD];
}

/* ------------------------------------------------------------------------- */
/* setup                                                                     */

void q35_vocab_free(q35_vocab_state *vs) {
    free(vs->best); free(vs->best_id); free(vs->z); free(vs->zf); free(vs->rows);
    free(vs->heap); free(vs->heap_n); free(vs->tmp); free(vs->cand);
    memset(vs, 0, sizeof *vs);
}

/* a matrix [V][n] this session's kernels can multiply */
static int usable(const q35_session *s, const q35_tensor *t, int64_t V, int64_t n) {
    const int at = q35_act_type(t->type);
    return t->data && t->rows == V && t->cols == n && at >= 0 && n % q35_type_block_elems(t->type) == 0 &&
           s->k->vec_dot[t->type] && s->k->from_float[at];
}

static int fits(const q35_session *s, const q35_vocab *v) {
    const int64_t V = s->m->c.vocab_size, E = s->m->c.n_embd;
    switch (v->kind) {
    case Q35_VOCAB_FULL: case Q35_VOCAB_ARGMAX:
        return 1;
    case Q35_VOCAB_REQUANT:
        return usable(s, &v->weight, V, E);
    case Q35_VOCAB_SUBSET:
        if (!v->ids || v->n_ids < 1 || v->n_ids > V) return 0;
        for (int32_t i = 0; i < v->n_ids; i++)
            if (v->ids[i] < 0 || v->ids[i] >= V || (i && v->ids[i] <= v->ids[i - 1])) return 0;
        return 1;
    case Q35_VOCAB_SCREENED: {
        const int64_t R = v->screen.cols;
        return v->top_k >= 1 && v->top_k <= V && v->row_norms && usable(s, &v->screen, V, R) &&
               (v->proj ? R <= E : R == E);
    }
    }
    return 0;
}

int q35_session_set_vocab(q35_session *s, const q35_vocab *v) {
    if (!fits(s, v)) return -1;
    const int64_t U = s->p.ubatch, nth = s->p.n_threads, E = s->m->c.n_embd;
    q35_vocab_free(&s->vs);
    q35_vocab_state *vs = &s->vs;
    vs->v = *v;
    int ok = (vs->cand = calloc((size_t)nth, sizeof *vs->cand)) != NULL;
    if (v->kind == Q35_VOCAB_ARGMAX) {
        ok &= (vs->best = malloc(sizeof(float) * (size_t)(nth * U))) != NULL;
        ok &= (vs->best_id = malloc(sizeof(int32_t) * (size_t)(nth * U))) != NULL;
    }
    if (v->kind == Q35_VOCAB_SCREENED) {
        const int64_t R = v->screen.cols, K = v->top_k;
        ok &= (vs->z = malloc(sizeof(double) * (size_t)(U * R))) != NULL;
        ok &= (vs->zf = malloc(sizeof(float) * (size_t)(U * R))) != NULL;
        ok &= (vs->rows = calloc((size_t)U, sizeof *vs->rows)) != NULL;
        ok &= (vs->heap = malloc(sizeof(double) * (size_t)(nth * K))) != NULL;
        ok &= (vs->heap_n = calloc((size_t)nth, sizeof *vs->heap_n)) != NULL;
        ok &= (vs->tmp = malloc(sizeof(float) * (size_t)(nth * E))) != NULL;
    }
    if (!ok) {
        q35_vocab_free(vs);   /* back to full */
        return -1;
    }
    return 0;
}

void q35_session_vocab_stats(const q35_session *s, int64_t *rows, int64_t *candidates) {
    *rows = s->vs.n_rows;
    *candidates = 0;
    for (int i = 0; s->vs.cand && i < s->p.n_threads; i++) *candidates += s->vs.cand[i];
}

/* ------------------------------------------------------------------------- */
/* helpers                                                                   */

/* T rows of n floats (stride ld) to the activation format of weight type wt, in segment seg of
 * s->act; this thread converts its share of the rows */
static uint8_t *to_act(q35_session *s, int ith, int nth, const float *x, int64_t ld, int64_t n, int T, int wt,
                       int seg) {
    const int at = q35_act_type(wt);
    uint8_t *base = s->act + (int64_t)seg * s->act_row_cap * s->p.ubatch;
    const int64_t arb = q35_row_bytes(at, n);
    int64_t lo, hi;
    q35_split(T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) s->k->from_float[at](x + t * ld, base + t * arb, n);
    return base;
}

/* out[t] = w_r . act_t for tokens tb..te-1 (te - tb <= Q35_TOK_BLOCK), 4 at a time where a kernel exists */
static void row_dots(const q35_kernels *k, int wt, const uint8_t *wr, const uint8_t *act, int64_t arb, int64_t n,
                     int tb, int te, float *out) {
    int t = tb;
    if (k->vec_dot4[wt])
        for (; t + 4 <= te; t += 4) k->vec_dot4[wt](wr, act + t * arb, arb, n, out + (t - tb));
    for (; t < te; t++) out[t - tb] = k->vec_dot[wt](wr, act + t * arb, n);
}

static void fill_neg_inf(float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = -INFINITY;
}

/* ------------------------------------------------------------------------- */
/* subset: the listed rows, exact                                            */

static void head_subset(q35_session *s, int ith, int nth) {
    const q35_model *m = s->m;
    const q35_vocab *v = &s->vs.v;
    const q35_tensor *w = q35_lm_head(m);
    const int64_t V = m->c.vocab_size, E = m->c.n_embd, wrb = q35_row_bytes(w->type, E);
    const int64_t arb = q35_row_bytes(q35_act_type(w->type), E);
    const int T = s->out_n;
    const uint8_t *act = to_act(s, ith, nth, s->xn, E, E, T, w->type, 0);
    int64_t lo, hi;
    q35_split(V, ith, nth, &lo, &hi);
    for (int t = 0; t < T; t++) fill_neg_inf(s->logits + t * V + lo, hi - lo);
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, m->c.n_layer, Q35_OP_ACT_QUANT, 0);

    q35_split(v->n_ids, ith, nth, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        const int64_t r = v->ids[i];
        const uint8_t *wr = (const uint8_t *)w->data + r * wrb;
        for (int tb = 0; tb < T; tb += Q35_TOK_BLOCK) {
            const int te = tb + Q35_TOK_BLOCK < T ? tb + Q35_TOK_BLOCK : T;
            float val[Q35_TOK_BLOCK];
            row_dots(s->k, w->type, wr, act, arb, E, tb, te, val);
            for (int t = tb; t < te; t++) s->logits[t * V + r] = val[t - tb];
        }
    }
    q35_pool_barrier(s->pool);
    q35_prof_macs(s, ith, m->c.n_layer, Q35_OP_MM_LM_HEAD, v->n_ids * E * T);
    q35_prof_mark(s, ith, m->c.n_layer, Q35_OP_MM_LM_HEAD, v->n_ids * wrb);
}

/* ------------------------------------------------------------------------- */
/* argmax: every row exact, a running maximum per token, no logits vector    */

static void head_argmax(q35_session *s, int ith, int nth) {
    const q35_model *m = s->m;
    q35_vocab_state *vs = &s->vs;
    const q35_tensor *w = q35_lm_head(m);
    const int64_t V = m->c.vocab_size, E = m->c.n_embd, wrb = q35_row_bytes(w->type, E);
    const int64_t arb = q35_row_bytes(q35_act_type(w->type), E), U = s->p.ubatch;
    const int T = s->out_n;
    const uint8_t *act = to_act(s, ith, nth, s->xn, E, E, T, w->type, 0);
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, m->c.n_layer, Q35_OP_ACT_QUANT, 0);

    float *best = vs->best + ith * U;
    int32_t *best_id = vs->best_id + ith * U;
    for (int t = 0; t < T; t++) { best[t] = -INFINITY; best_id[t] = -1; }
    int64_t lo, hi;
    q35_split(V, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + r * wrb;
        if (r + Q35_PREFETCH_ROWS < hi) q35_prefetch_rows(w->data, wrb, r + Q35_PREFETCH_ROWS, r + Q35_PREFETCH_ROWS + 1);
        for (int tb = 0; tb < T; tb += Q35_TOK_BLOCK) {
            const int te = tb + Q35_TOK_BLOCK < T ? tb + Q35_TOK_BLOCK : T;
            float val[Q35_TOK_BLOCK];
            row_dots(s->k, w->type, wr, act, arb, E, tb, te, val);
            for (int t = tb; t < te; t++)   /* strict >: the first maximum, as numpy's argmax */
                if (best_id[t] < 0 || val[t - tb] > best[t]) { best[t] = val[t - tb]; best_id[t] = (int32_t)r; }
        }
    }
    q35_pool_barrier(s->pool);
    q35_prof_macs(s, ith, m->c.n_layer, Q35_OP_MM_LM_HEAD, V * E * T);
    q35_prof_mark(s, ith, m->c.n_layer, Q35_OP_MM_LM_HEAD, V * wrb);

    /* threads hold ascending row ranges: the first thread with the maximum wins ties */
    q35_split(T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        float bv = -INFINITY;
        int32_t bi = -1;
        for (int i = 0; i < nth; i++) {
            const float cv = vs->best[i * U + t];
            const int32_t ci = vs->best_id[i * U + t];
            if (ci >= 0 && (bi < 0 || cv > bv)) { bv = cv; bi = ci; }
        }
        if (s->top1) s->top1[t] = bi;
        if (s->logits) {
            fill_neg_inf(s->logits + t * V, V);
            s->logits[t * V + bi] = bv;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* screened: exact top-K                                                     */

/* min-heap of the k largest values seen */
static void heap_push(double *h, int64_t *n, int64_t k, double x) {
    int64_t i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && h[(i - 1) / 2] > x) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
        h[i] = x;
        return;
    }
    if (x <= h[0]) return;
    i = 0;   /* replace the root, sift down */
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= k) break;
        if (c + 1 < k && h[c + 1] < h[c]) c++;
        if (h[c] >= x) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* the k-th largest of a[0..n) (k <= n); reorders a */
static double kth_largest(double *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1, want = k - 1;   /* index in descending order */
    while (lo < hi) {
        const double pivot = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] > pivot) i++;
            while (a[j] < pivot) j--;
            if (i <= j) { double t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return a[want];
    }
    return a[want];
}

static double norm2(const double *x, int64_t n) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    return sqrt(ss);
}

/* the screening error bound of row r for one logits row (module comment) */
static inline double screen_eps(const float *nrm, int64_t V, int64_t r, const q35_screen_row *q, double gamma) {
    const double wn = nrm[r], un = nrm[V + r], qe = nrm[2 * V + r], re = nrm[3 * V + r];
    return (re * q->xperp + qe * q->zn + wn * q->dx + un * q->dz + gamma * (wn * q->qxn + un * (q->qzn + q->zn))) *
           (1.0 + 1e-5);   /* covers the rounding of this expression and of the stored norms */
}

static void head_screened(q35_session *s, int ith, int nth) {
    const q35_model *m = s->m;
    q35_vocab_state *vs = &s->vs;
    const q35_vocab *v = &vs->v;
    const q35_tensor *w = q35_lm_head(m), *sc = &v->screen;
    const int64_t V = m->c.vocab_size, E = m->c.n_embd, R = sc->cols, K = v->top_k;
    const int64_t wrb = q35_row_bytes(w->type, E), axb = q35_row_bytes(q35_act_type(w->type), E);
    const int64_t azb = q35_row_bytes(q35_act_type(sc->type), R);
    const int T = s->out_n, L = m->c.n_layer;
    const double gamma = (double)E * 0x1p-24 / (1.0 - (double)E * 0x1p-24);

    /* 1. z = P x in double (or x itself), and the part of x outside the rows of P */
    int64_t lo, hi;
    q35_split(T, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *x = s->xn + t * E;
        double *z = vs->z + t * R;
        q35_screen_row *q = &vs->rows[t];
        if (v->proj) {
            for (int64_t i = 0; i < R; i++) {
                const double *p = v->proj + i * E;
                double acc = 0.0;
                for (int64_t j = 0; j < E; j++) acc += p[j] * x[j];
                z[i] = acc;
                vs->zf[t * R + i] = (float)acc;
            }
            double ss = 0.0;   /* ||x - P^T z|| */
            for (int64_t j = 0; j < E; j++) {
                double d = x[j];
                for (int64_t i = 0; i < R; i++) d -= v->proj[i * E + j] * z[i];
                ss += d * d;
            }
            q->xperp = sqrt(ss);
        } else {
            for (int64_t j = 0; j < E; j++) z[j] = x[j];
            q->xperp = 0.0;
        }
        q->zn = norm2(z, R);
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, L, Q35_OP_LM_SCREEN, 0);

    /* 2. the screening scores, written where the logits go */
    const float *zin = v->proj ? vs->zf : s->xn;
    q35_mm_job job = {sc, s->logits, V, 0};
    q35_matmul(s, ith, nth, zin, R, T, &job, 1, L, Q35_OP_LM_SCREEN);

    /* 3. the exact product's activations, and how far both activation formats round */
    const uint8_t *ax = to_act(s, ith, nth, s->xn, E, E, T, w->type, 1);
    const uint8_t *az = to_act(s, ith, nth, zin, R, R, T, sc->type, 2);
    float *tmp = vs->tmp + ith * E;
    q35_split(T, ith, nth, &lo, &hi);    /* the rows this thread just converted */
    for (int64_t t = lo; t < hi; t++) {
        q35_screen_row *q = &vs->rows[t];
        double d2 = 0.0, n2 = 0.0;
        q35_dequantize(q35_act_type(w->type), ax + t * axb, tmp, 1, E);
        for (int64_t j = 0; j < E; j++) {
            const double d = (double)tmp[j] - s->xn[t * E + j];
            d2 += d * d; n2 += (double)tmp[j] * tmp[j];
        }
        q->dx = sqrt(d2); q->qxn = sqrt(n2);
        d2 = n2 = 0.0;
        q35_dequantize(q35_act_type(sc->type), az + t * azb, tmp, 1, R);
        for (int64_t j = 0; j < R; j++) {
            const double d = (double)tmp[j] - vs->z[t * R + j];
            d2 += d * d; n2 += (double)tmp[j] * tmp[j];
        }
        q->dz = sqrt(d2); q->qzn = sqrt(n2);
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, L, Q35_OP_ACT_QUANT, 0);

    /* 4. per logits row: the K-th largest lower bound, then the candidates exactly */
    q35_split(V, ith, nth, &lo, &hi);
    int64_t cand = 0;
    for (int t = 0; t < T; t++) {
        float *y = s->logits + (int64_t)t * V;
        q35_screen_row *q = &vs->rows[t];
        double *h = vs->heap + ith * K;
        int64_t n = 0;
        for (int64_t r = lo; r < hi; r++) heap_push(h, &n, K, (double)y[r] - screen_eps(v->row_norms, V, r, q, gamma));
        vs->heap_n[ith] = n;
        q35_pool_barrier(s->pool);
        if (ith == 0) {
            if (nth == 1) q->L = h[0];     /* n = K: the root is the K-th largest */
            else {
                /* gather every thread's heap behind thread 0's, then select */
                int64_t c = vs->heap_n[0];
                for (int i = 1; i < nth; i++) {
                    memmove(vs->heap + c, vs->heap + i * K, sizeof(double) * (size_t)vs->heap_n[i]);
                    c += vs->heap_n[i];
                }
                q->L = kth_largest(vs->heap, c, K);
            }
        }
        q35_pool_barrier(s->pool);
        const double Lt = q->L;
        for (int64_t r = lo; r < hi; r++) {
            if ((double)y[r] + screen_eps(v->row_norms, V, r, q, gamma) >= Lt) {
                y[r] = s->k->vec_dot[w->type]((const uint8_t *)w->data + r * wrb, ax + t * axb, E);
                cand++;
            } else {
                y[r] = -INFINITY;
            }
        }
    }
    vs->cand[ith] += cand;
    vs->heap_n[ith] = cand;   /* the heaps are done with: this call's count, for the profile */
    q35_pool_barrier(s->pool);
    int64_t total = 0;
    for (int i = 0; i < nth; i++) total += vs->heap_n[i];
    if (ith == 0) vs->n_rows += T;
    q35_prof_macs(s, ith, L, Q35_OP_MM_LM_HEAD, total * E);   /* total: (row, token) candidates */
    q35_prof_mark(s, ith, L, Q35_OP_MM_LM_HEAD, total * wrb);
}

/* ------------------------------------------------------------------------- */

void q35_vocab_head(q35_session *s, int ith, int nth) {
    const q35_model *m = s->m;
    const int64_t V = m->c.vocab_size;
    const q35_vocab *v = &s->vs.v;
    switch (v->kind) {
    case Q35_VOCAB_ARGMAX: head_argmax(s, ith, nth); return;   /* it writes top1 itself */
    case Q35_VOCAB_SUBSET: head_subset(s, ith, nth); break;
    case Q35_VOCAB_SCREENED: head_screened(s, ith, nth); break;
    default: {
        q35_mm_job j = {v->kind == Q35_VOCAB_REQUANT ? &v->weight : q35_lm_head(m), s->logits, V, 0};
        q35_matmul(s, ith, nth, s->xn, m->c.n_embd, s->out_n, &j, 1, m->c.n_layer, Q35_OP_MM_LM_HEAD);
    }
    }
    if (!s->top1) return;
    int64_t lo, hi;
    q35_split(s->out_n, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        const float *y = s->logits + t * V;
        int64_t bi = 0;
        for (int64_t r = 1; r < V; r++)
            if (y[r] > y[bi]) bi = r;
        s->top1[t] = (int32_t)bi;
    }
}

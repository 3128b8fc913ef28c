/* The three layer kinds of Qwen3.5 (docs/qwen35.md §2), run by all threads of the
 * pool together; each step splits its work over the threads and ends at a barrier.
 * Buffers: s->x residual stream [T][E]; s->xn normed input; s->proj projections
 * [T][proj_w]; s->o mixer output before its output projection. */
#include <math.h>
#include <string.h>

#include "engine_impl.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline float softplusf(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* RMSNorm of `rows` rows of n at stride ld */
void q35_rmsnorm_rows(const q35_kernels *k, const float *x, float *y, const float *w, int64_t n, int64_t rows,
                      int64_t ld, float eps) {
    for (int64_t r = 0; r < rows; r++) k->rmsnorm_f32(x + r * ld, w, y + r * ld, n, eps);
}

static void norm_input(q35_session *s, int ith, int nth, int il, int slot) {
    const q35_model *m = s->m;
    int64_t lo, hi;
    q35_split(s->T, ith, nth, &lo, &hi);
    q35_rmsnorm_rows(s->k, s->x + lo * m->c.n_embd, s->xn + lo * m->c.n_embd, m->layer[il][slot].data,
                     m->c.n_embd, hi - lo, m->c.n_embd, m->c.rms_eps);
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_NORM, (int64_t)sizeof(float) * m->c.n_embd);
}

/* ------------------------------------------------------------------------- */
/* gated full attention (docs/qwen35.md §2.2)                                */

static inline int min_int(int a, int b) { return a < b ? a : b; }

/* Keys (or values) j0 .. j0 + jn - 1 of kv head g as float rows, ld floats apart: the cache
 * itself when it holds F32, else those rows converted into buf [jn][D]. */
static const float *kv_rows(const q35_session *s, const uint8_t *cache, int type, int64_t row_bytes, int g,
                            int j0, int jn, float *buf, int64_t *ld) {
    const int D = s->m->c.head_dim;
    const uint8_t *base = cache + (int64_t)j0 * row_bytes + q35_row_bytes(type, (int64_t)g * D);
    if (type == Q35_TYPE_F32) {
        *ld = row_bytes / (int64_t)sizeof(float);
        return (const float *)base;
    }
    for (int j = 0; j < jn; j++) s->k->to_float[type](base + j * row_bytes, buf + (int64_t)j * D, D);
    *ld = D;
    return buf;
}

/* Query tokens [t0, t1) x heads [h0, h0 + nh) (all of kv head g) against the cache, one
 * flash-attention pass (Dao et al. 2022, online softmax): for each key block j and row r,
 *   s_j = scale q_r.k_j,  m' = max(m, max_j s_j),  c = exp(m - m'),
 *   l <- c l + sum_j exp(s_j - m'),  acc <- c acc + sum_j exp(s_j - m') v_j,
 * and at the end o_r = acc / l, gated: o_r <- o_r sigmoid(gate_r). A row sees keys
 * 0 .. pos0 + t (causal). The scores of a token's nh heads against a key block are one
 * panel of dots (each key row read once for all heads); a cache of another type than F32
 * is read as floats, one block at a time. ws: Q35_ATT_WS(nh, D) floats of scratch. */
static void attention_item(q35_session *s, int il, int t0, int t1, int h0, int nh, int g, float scale, float *ws) {
    const q35_config *c = &s->m->c;
    const int D = c->head_dim, type_k = s->p.type_k, type_v = s->p.type_v;
    const int64_t HD = s->m->HD, pw = s->proj_w;
    const int R = (t1 - t0) * nh;
    float *acc = ws, *mx = acc + (int64_t)R * D, *l = mx + R, *sc = l + R;
    float *kbuf = sc + (int64_t)R * Q35_ATT_KB, *vbuf = kbuf + (int64_t)Q35_ATT_KB * D;
    memset(acc, 0, sizeof(float) * (size_t)R * D);
    for (int r = 0; r < R; r++) { mx[r] = -INFINITY; l[r] = 0.0f; }
    const int n_kv_max = s->pos0 + t1;
    for (int j0 = 0; j0 < n_kv_max; j0 += Q35_ATT_KB) {
        const int jblk = min_int(Q35_ATT_KB, n_kv_max - j0);
        int64_t ldk, ldv;
        const float *K = kv_rows(s, s->kc[il], type_k, s->kv_row_k, g, j0, jblk, kbuf, &ldk);
        const float *V = kv_rows(s, s->vc[il], type_v, s->kv_row_v, g, j0, jblk, vbuf, &ldv);
        for (int t = t0; t < t1; t++) {
            const int jn = min_int(Q35_ATT_KB, s->pos0 + t + 1 - j0);
            float *st = sc + (int64_t)(t - t0) * nh * Q35_ATT_KB;   /* [nh][KB] */
            if (jn <= 0) { /* no key of this block is visible to token t: weights 0 */
                memset(st, 0, sizeof(float) * (size_t)nh * Q35_ATT_KB);
                continue;
            }
            s->k->dot_panel_f32(K, ldk, jn, s->proj + t * pw + (int64_t)h0 * 2 * D, 2 * D, nh, D, st, Q35_ATT_KB);
            for (int hh = 0; hh < nh; hh++) {
                const int r = (t - t0) * nh + hh;
                float *p = st + (int64_t)hh * Q35_ATT_KB;
                float m_blk = -INFINITY;
                for (int j = 0; j < jn; j++) {
                    p[j] *= scale;
                    m_blk = fmaxf(m_blk, p[j]);
                }
                const float m_new = fmaxf(mx[r], m_blk), corr = expf(mx[r] - m_new);
                if (corr != 1.0f) s->k->scale_f32(acc + (int64_t)r * D, corr, D);
                l[r] = l[r] * corr + (float)s->k->exp_sum_f32(p, jn, m_new);   /* p_j <- exp(s_j - m') */
                mx[r] = m_new;
                for (int j = jn; j < jblk; j++) p[j] = 0.0f;   /* causal: the block's later keys */
            }
        }
        /* acc_r += sum_j p_r,j v_j for all rows at once: per row the axpy of each key in order (a
         * weight 0 adds exactly nothing: the values are finite and acc is never -0) */
        s->k->axpy_panel_f32(acc, D, R, sc, Q35_ATT_KB, V, ldv, jblk, D);
    }
    for (int t = t0; t < t1; t++)
        for (int hh = 0; hh < nh; hh++) {
            const int r = (t - t0) * nh + hh, h = h0 + hh;
            float *o = s->o + t * HD + (int64_t)h * D;
            memcpy(o, acc + (int64_t)r * D, sizeof(float) * D);
            s->k->scale_f32(o, 1.0f / l[r], D);
            s->k->sigmoid_mul_f32(o, s->proj + t * pw + (int64_t)h * 2 * D + D, D);
        }
}

void q35_layer_attention(q35_session *s, int ith, int nth, int il) {
    const q35_model *m = s->m;
    const q35_config *c = &m->c;
    const int T = s->T, H = c->n_head, Hkv = c->n_head_kv, D = c->head_dim;
    const int64_t HD = m->HD, KVD = m->KVD, pw = s->proj_w;
    const q35_tensor *L = m->layer[il];

    norm_input(s, ith, nth, il, Q35_W_ATTN_NORM);
    /* proj row: [q_0 gate_0 q_1 gate_1 ... (2HD) | k (KVD) | v (KVD)] */
    if (L[Q35_W_ATTN_QKV].data) {
        q35_mm_job j = {&L[Q35_W_ATTN_QKV], s->proj, pw, 0};
        q35_matmul(s, ith, nth, s->xn, c->n_embd, T, &j, 1, il, Q35_OP_MM_ATTN_QKV);
    } else {
        q35_mm_job j[3] = {{&L[Q35_W_ATTN_Q], s->proj, pw, 0},
                           {&L[Q35_W_ATTN_K], s->proj + 2 * HD, pw, 0},
                           {&L[Q35_W_ATTN_V], s->proj + 2 * HD + KVD, pw, 0}};
        q35_matmul(s, ith, nth, s->xn, c->n_embd, T, j, 3, il, Q35_OP_MM_ATTN_QKV);
    }

    /* q/k norms and RoPE, then k and v into the cache */
    const float *qn = L[Q35_W_ATTN_Q_NORM].data, *kn = L[Q35_W_ATTN_K_NORM].data;
    int64_t lo, hi;
    q35_split((int64_t)T * (H + Hkv), ith, nth, &lo, &hi);
    for (int64_t it = lo; it < hi; it++) {
        const int t = (int)(it / (H + Hkv)), h = (int)(it % (H + Hkv)), pos = s->pos0 + t;
        float *row = s->proj + t * pw;
        if (h < H) {
            float *q = row + (int64_t)h * 2 * D;
            s->k->rmsnorm_f32(q, qn, q, D, c->rms_eps);
            s->k->rope_f32(q, s->rope_cs + (int64_t)pos * c->rope_dims, c->rope_dims);
        } else {
            const int g = h - H;
            float *kk = row + 2 * HD + (int64_t)g * D;
            s->k->rmsnorm_f32(kk, kn, kk, D, c->rms_eps);
            s->k->rope_f32(kk, s->rope_cs + (int64_t)pos * c->rope_dims, c->rope_dims);
            const int tk = s->p.type_k, tv = s->p.type_v;
            s->k->from_float[tk](kk, s->kc[il] + pos * s->kv_row_k + q35_row_bytes(tk, (int64_t)g * D), D);
            s->k->from_float[tv](row + 2 * HD + KVD + (int64_t)g * D,
                                 s->vc[il] + pos * s->kv_row_v + q35_row_bytes(tv, (int64_t)g * D), D);
        }
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_ROPE, (int64_t)sizeof(float) * 2 * D);  /* q/k norm weights */

    /* causal softmax attention, grouped GQA (kv head = h / G), scale 1/sqrt(D), then the
     * sigmoid output gate. Work items are (kv head, block of query tokens, heads of the
     * group); each runs flash-style over key blocks (attention_item) so a K/V block is read
     * once for all the item's rows. With fewer (kv head, token block) pairs than threads
     * (decode on a many-thread pool) an item takes one head, so every thread has work. Every
     * row's arithmetic is the same however items are cut: results do not depend on threads. */
    const int G = H / Hkv, n_tb = (T + Q35_ATT_QB - 1) / Q35_ATT_QB;
    const int heads_per_item = (int64_t)Hkv * n_tb < nth ? 1 : G;
    const int64_t n_items = (int64_t)Hkv * (G / heads_per_item) * n_tb;
    const float scale = 1.0f / sqrtf((float)D);
    float *ws = s->att_ws + (int64_t)ith * s->att_ws_stride;
    /* items interleaved over threads, token blocks fastest: later tokens see more keys */
    for (int64_t it = ith; it < n_items; it += nth) {
        const int tb = (int)(it % n_tb), sub = (int)(it / n_tb % (G / heads_per_item));
        const int g = (int)(it / n_tb / (G / heads_per_item));
        attention_item(s, il, tb * Q35_ATT_QB, min_int(T, (tb + 1) * Q35_ATT_QB), g * G + sub * heads_per_item,
                       heads_per_item, g, scale, ws);
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_ATTENTION, 0);

    q35_mm_job j = {&L[Q35_W_ATTN_OUTPUT], s->x, c->n_embd, 1};   /* residual add */
    q35_matmul(s, ith, nth, s->o, HD, T, &j, 1, il, Q35_OP_MM_ATTN_OUT);
}

/* ------------------------------------------------------------------------- */
/* Gated DeltaNet (docs/qwen35.md §2.4)                                      */

void q35_layer_deltanet(q35_session *s, int ith, int nth, int il) {
    const q35_model *m = s->m;
    const q35_config *c = &m->c;
    const int T = s->T, Hk = c->ssm_k_heads, Hv = c->ssm_v_heads, Sk = c->ssm_state, Sv = c->ssm_state;
    const int Kc = c->conv_kernel;
    const int64_t KD = m->KD, VD = m->VD, CD = m->CD, pw = s->proj_w;
    const q35_tensor *L = m->layer[il];

    norm_input(s, ith, nth, il, Q35_W_ATTN_NORM);
    /* proj row: [qkv (CD) | z (VD) | b (Hv) | a (Hv)] */
    q35_mm_job j[4] = {{&L[Q35_W_SSM_QKV], s->proj, pw, 0},
                       {&L[Q35_W_SSM_GATE], s->proj + CD, pw, 0},
                       {&L[Q35_W_SSM_BETA], s->proj + CD + VD, pw, 0},
                       {&L[Q35_W_SSM_ALPHA], s->proj + CD + VD + Hv, pw, 0}};
    q35_matmul(s, ith, nth, s->xn, c->n_embd, T, j, 4, il, Q35_OP_MM_SSM_IN);

    /* causal depthwise conv over u = [state rows (Kc-1), new rows (T)] + SiLU, in place
     * (conv_silu_f32), channels split over threads; the new state (the last Kc-1 rows of u)
     * is taken first */
    const float *wt = s->convw_t[il];                 /* [Kc][CD] */
    float *cs = s->conv[il];                          /* [Kc-1][CD] */
    float *newst = s->conv_tmp + (int64_t)ith * (Kc - 1) * CD;
    int64_t lo, hi;
    q35_split_cols(CD, ith, nth, &lo, &hi);
    const int64_t nc = hi - lo;
    for (int i = 0; i < Kc - 1; i++) {
        const int j = T + i;   /* row j of u */
        const float *src = j < Kc - 1 ? cs + (int64_t)j * CD : s->proj + (int64_t)(j - (Kc - 1)) * pw;
        memcpy(newst + (int64_t)i * CD + lo, src + lo, sizeof(float) * nc);
    }
    s->k->conv_silu_f32(s->proj + lo, pw, T, cs + lo, CD, wt + lo, CD, Kc, nc);
    for (int i = 0; i < Kc - 1; i++) memcpy(cs + (int64_t)i * CD + lo, newst + (int64_t)i * CD + lo, sizeof(float) * nc);
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_CONV, (int64_t)sizeof(float) * CD * Kc);

    /* L2-norm q and k per head; beta = sigmoid(b), g = ssm_a * softplus(a + dt) */
    const float *ssm_a = L[Q35_W_SSM_A].data, *dt = L[Q35_W_SSM_DT].data;
    q35_split((int64_t)T * (2 * Hk + Hv), ith, nth, &lo, &hi);
    for (int64_t it = lo; it < hi; it++) {
        const int t = (int)(it / (2 * Hk + Hv)), r = (int)(it % (2 * Hk + Hv));
        float *row = s->proj + t * pw;
        if (r < 2 * Hk) {
            s->k->l2norm_f32(row + (int64_t)r * Sk, Sk, c->rms_eps);  /* q heads then k heads */
        } else {
            const int h = r - 2 * Hk;
            s->beta[t * Hv + h] = sigmoidf(row[CD + VD + h]);
            s->g[t * Hv + h] = ssm_a[h] * softplusf(row[CD + VD + Hv + h] + dt[h]);
        }
    }
    q35_pool_barrier(s->pool);

    /* the delta rule, one value head per work item; value head h reads key head
     * h mod Hk (GGUF value heads are tiled) */
    int algo = s->p.dn_algo;
    if (algo == Q35_DN_AUTO) algo = T <= s->p.fdn_threshold ? Q35_DN_FUSED : Q35_DN_CHUNKED;
    q35_split(Hv, ith, nth, &lo, &hi);
    for (int64_t h = lo; h < hi; h++) {
        const int kh = (int)(h % Hk);
        q35_dn_head hd = {
            .q = s->proj + (int64_t)kh * Sk, .k = s->proj + KD + (int64_t)kh * Sk,
            .v = s->proj + 2 * KD + h * Sv, .g = s->g + h, .beta = s->beta + h,
            .ldqk = pw, .ldv = pw, .ldgb = Hv, .ldo = VD,
            .S = s->ssm[il] + h * Sk * Sv, .o = s->o + h * Sv, .T = T, .Sk = Sk, .Sv = Sv};
        if (algo == Q35_DN_RECURRENT) q35_dn_recurrent(&hd, s->k);
        else if (algo == Q35_DN_FUSED) s->k->dn_fused(&hd);
        else q35_dn_chunked(&hd, &s->dns[ith], s->k);
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_DELTANET, (int64_t)sizeof(float) * 2 * Hv);  /* ssm_a, dt */

    /* gated RMSNorm per value head: RMSNorm(o_h, ssm_norm) * silu(z_h) */
    const float *wn = L[Q35_W_SSM_NORM].data;
    q35_split((int64_t)T * Hv, ith, nth, &lo, &hi);
    for (int64_t it = lo; it < hi; it++) {
        const int t = (int)(it / Hv), h = (int)(it % Hv);
        float *o = s->o + t * VD + (int64_t)h * Sv;
        float *z = s->proj + t * pw + CD + (int64_t)h * Sv;
        s->k->rmsnorm_f32(o, wn, o, Sv, c->rms_eps);
        s->k->swiglu_f32(z, o, Sv);              /* z <- silu(z) * o; z is not needed after this */
        memcpy(o, z, sizeof(float) * Sv);
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, il, Q35_OP_GATED_NORM, (int64_t)sizeof(float) * Sv);

    q35_mm_job jo = {&L[Q35_W_SSM_OUT], s->x, c->n_embd, 1};   /* residual add */
    q35_matmul(s, ith, nth, s->o, VD, T, &jo, 1, il, Q35_OP_MM_SSM_OUT);
}

/* ------------------------------------------------------------------------- */
/* SwiGLU FFN (docs/qwen35.md §2.3): x += W_down (silu(W_gate f) * W_up f)   */

void q35_layer_ffn(q35_session *s, int ith, int nth, int il) {
    const q35_model *m = s->m;
    const int T = s->T;
    const int64_t F = m->c.n_ff, pw = s->proj_w;
    const q35_tensor *L = m->layer[il];

    norm_input(s, ith, nth, il, Q35_W_POST_NORM);
    q35_mm_job j[2] = {{&L[Q35_W_FFN_GATE], s->proj, pw, 0}, {&L[Q35_W_FFN_UP], s->proj + F, pw, 0}};
    if (!s->p.unfused_swiglu && q35_glu_fusable(s, j)) {
        q35_matmul_glu(s, ith, nth, s->xn, m->c.n_embd, T, j, il, Q35_OP_MM_FFN_UP); /* swiglu included */
    } else {
        q35_matmul(s, ith, nth, s->xn, m->c.n_embd, T, j, 2, il, Q35_OP_MM_FFN_UP);
        int64_t lo, hi;
        q35_split_cols(F, ith, nth, &lo, &hi);  /* columns, so every thread works even for one token */
        for (int t = 0; t < T; t++) {
            float *row = s->proj + t * pw;
            s->k->swiglu_f32(row + lo, row + F + lo, hi - lo);
        }
        q35_pool_barrier(s->pool);
        q35_prof_mark(s, ith, il, Q35_OP_SWIGLU, 0);
    }

    q35_mm_job jd = {&L[Q35_W_FFN_DOWN], s->x, m->c.n_embd, 1};
    q35_matmul(s, ith, nth, s->proj, pw, T, &jd, 1, il, Q35_OP_MM_FFN_DOWN);
}

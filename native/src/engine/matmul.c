/* Quantized matrix products: y[t][r] (+)= W[r] . x[t].
 *
 * The activations are converted once per u-batch to the format ggml pairs with
 * each weight type (Q8_0, Q8_K, F16, BF16 or F32). The weights run as stored
 * (dots and panels), or, where the session repacked them (q35_session_params.
 * repack), as groups of 16 interleaved rows through the ISA's gemm_packed, for
 * prefill and decode alike (two groups per call, gemm_packed2, for prefill where the
 * ISA has it). Several weights that read the same input (q/k/v,
 * gate/up, ...) run in one parallel region, their rows split evenly over the
 * threads in blocks of 16. */
#include "engine_impl.h"
#include "kernels.h"

#include <string.h>

_Static_assert(Q35_PACK_ROWS == Q35_ROW_BLOCK, "a repacked group is one row block");

#define MAX_ACT_TYPES Q35_ACT_SEGMENTS

/* bytes from one activation row to the next: a row size that is a multiple of 2 KiB (BF16 or F32
 * rows of 1024, 2048 ... values) gets one more cache line, or the rows a tile broadcasts from would
 * all fall in the same L1 sets (4 KiB apart) and evict each other */
static int64_t act_stride(int at, int64_t in) {
    const int64_t b = q35_row_bytes(at, in);
    return b % 2048 == 0 ? b + 64 : b;
}

/* y[t][r] (+)= v[t][r] for nt <= Q35_TOK_BLOCK tokens of a row block (v has Q35_ROW_BLOCK values per
 * token). The rows of y are often a multiple of 4 KiB apart (n_embd floats), so every token's y[t]
 * has the same low 12 address bits: a load of the next token's y right after a store to this one's
 * waits on a false store-to-load dependency (4K aliasing). So the sums of a whole block are made
 * first, all its loads before its stores. */
static void store_tile(float *y, int64_t ldy, const float *v, int64_t ldv, int nt, int nr, int accumulate) {
    if (accumulate) {
        float sum[Q35_TOK_BLOCK][Q35_ROW_BLOCK];
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++) sum[t][r] = y[t * ldy + r] + v[t * ldv + r];
        for (int t = 0; t < nt; t++) memcpy(y + t * ldy, sum[t], sizeof(float) * (size_t)nr);
    } else {
        for (int t = 0; t < nt; t++) memcpy(y + t * ldy, v + t * ldv, sizeof(float) * (size_t)nr);
    }
}

/* two repacked groups at once (gemm_packed2) from this many tokens: a decode-sized product is bound by
 * streaming the weights, and one group after another is one contiguous stream (two at once ran Q8_0
 * decode 7.5% slower) */
#define PACKED2_MIN_TOKENS 4

static int64_t macs_of(const q35_mm_job *jobs, int njobs, int64_t in, int T) {
    int64_t rows = 0;
    for (int j = 0; j < njobs; j++) rows += jobs[j].w->rows;
    return rows * in * T;
}

/* the activation rows of a product, converted once per u-batch: one segment per distinct pair of
 * (paired format, repacked preparation) among the jobs */
typedef struct {
    int nacts, act_of_job[8];
    int acts[MAX_ACT_TYPES];
    int64_t seg; /* bytes per segment */
} act_layout;

static void prepare_activations(q35_session *s, int ith, int nth, const float *x, int64_t ldx, int T,
                                const q35_mm_job *jobs, int njobs, int layer, act_layout *L) {
    const q35_kernels *k = s->k;
    const int64_t in = jobs[0].w->cols;
    q35_prepare_packed_fn preps[MAX_ACT_TYPES];
    L->nacts = 0;
    for (int j = 0; j < njobs; j++) {
        const int a = q35_act_type(jobs[j].w->type);
        const q35_prepare_packed_fn prep = q35_packed_of(s, jobs[j].w) ? k->prepare_packed[jobs[j].w->type] : NULL;
        int idx = 0;
        while (idx < L->nacts && !(L->acts[idx] == a && preps[idx] == prep)) idx++;
        if (idx == L->nacts) L->acts[L->nacts] = a, preps[L->nacts++] = prep;
        L->act_of_job[j] = idx;
    }
    L->seg = s->act_row_cap * s->p.ubatch;
    int64_t lo, hi;
    q35_split((int64_t)L->nacts * T, ith, nth, &lo, &hi);
    for (int64_t it = lo; it < hi; it++) {
        const int a = (int)(it / T), t = (int)(it % T);
        const int64_t arb = act_stride(L->acts[a], in);
        uint8_t *row = s->act + a * L->seg + t * arb;
        k->from_float[L->acts[a]](x + t * ldx, row, in);
        if (preps[a]) preps[a](row, arb, 1, in);
    }
    q35_pool_barrier(s->pool);
    q35_prof_mark(s, ith, layer, Q35_OP_ACT_QUANT, 0);
}

void q35_matmul(q35_session *s, int ith, int nth, const float *x, int64_t ldx, int T,
                const q35_mm_job *jobs, int njobs, int layer, int op) {
    const q35_kernels *k = s->k;
    const int64_t in = jobs[0].w->cols;

    /* 1. activation rows in each distinct paired format, and prepared for a repacked product
     * where its variant asks (prepare_packed) */
    act_layout A;
    prepare_activations(s, ith, nth, x, ldx, T, jobs, njobs, layer, &A);
    const int64_t seg = A.seg;
    const int *acts = A.acts, *act_of_job = A.act_of_job;
    int64_t lo, hi;

    /* 2. rows of all jobs, concatenated, split over threads in blocks of Q35_ROW_BLOCK rows (the
     * size of a repacked group), so a thread's share of a job starts at a block */
    int64_t blocks = 0, bytes = 0;
    for (int j = 0; j < njobs; j++) {
        blocks += (jobs[j].w->rows + Q35_ROW_BLOCK - 1) / Q35_ROW_BLOCK;
        bytes += q35_row_bytes(jobs[j].w->type, in) * jobs[j].w->rows;
    }
    q35_split(blocks, ith, nth, &lo, &hi);
    int64_t base = 0; /* first block of job j */
    for (int j = 0; j < njobs && lo < hi; j++) {
        const q35_tensor *w = jobs[j].w;
        const int64_t nblk = (w->rows + Q35_ROW_BLOCK - 1) / Q35_ROW_BLOCK;
        const int64_t b0 = lo > base ? lo - base : 0, b1 = hi - base < nblk ? hi - base : nblk;
        base += nblk;
        if (b0 >= b1) continue;
        const int64_t r0 = b0 * Q35_ROW_BLOCK, r1 = b1 * Q35_ROW_BLOCK < w->rows ? b1 * Q35_ROW_BLOCK : w->rows;
        const int at = acts[act_of_job[j]];
        const int64_t wrb = q35_row_bytes(w->type, in), arb = act_stride(at, in);
        const q35_vec_dot_fn dot = k->vec_dot[w->type];
        const uint8_t *act = s->act + act_of_job[j] * seg;
        const uint8_t *wd = w->data;
        const uint8_t *packed = q35_packed_of(s, w);
        const int64_t group_bytes = packed ? q35_packed_bytes(w->type, Q35_PACK_ROWS, in) : 0;
        const q35_gemm_packed_fn packed2 = packed && T >= PACKED2_MIN_TOKENS ? k->gemm_packed2[w->type] : NULL;
        float *y = jobs[j].y;
        const int64_t ldy = jobs[j].ldy;
        for (int64_t rb = r0; rb < r1; rb += Q35_ROW_BLOCK) {
            const int64_t re = rb + Q35_ROW_BLOCK < r1 ? rb + Q35_ROW_BLOCK : r1;
            if (packed2 && rb + 2 * Q35_PACK_ROWS <= r1) { /* two groups at once: straight into y, or
                                                            * into v2 and added to y a group at a time */
                for (int tb = 0; tb < T; tb += Q35_TOK_BLOCK) {
                    const int nt = tb + Q35_TOK_BLOCK < T ? Q35_TOK_BLOCK : T - tb;
                    const uint8_t *group = packed + rb / Q35_PACK_ROWS * group_bytes;
                    if (!jobs[j].accumulate) {
                        packed2(group, act + tb * arb, arb, nt, in, y + tb * ldy + rb, ldy);
                        continue;
                    }
                    float v2[Q35_TOK_BLOCK * 2 * Q35_PACK_ROWS];
                    for (int t = tb; t < tb + nt; t++) __builtin_prefetch(y + t * ldy + rb, 1);
                    packed2(group, act + tb * arb, arb, nt, in, v2, 2 * Q35_PACK_ROWS);
                    for (int g = 0; g < 2; g++)
                        store_tile(y + tb * ldy + rb + g * Q35_PACK_ROWS, ldy, v2 + g * Q35_PACK_ROWS,
                                   2 * Q35_PACK_ROWS, nt, Q35_PACK_ROWS, 1);
                }
                rb += Q35_PACK_ROWS; /* the loop adds the other */
                continue;
            }
            for (int tb = 0; tb < T; tb += Q35_TOK_BLOCK) {
                const int te = tb + Q35_TOK_BLOCK < T ? tb + Q35_TOK_BLOCK : T;
                float v[Q35_TOK_BLOCK * Q35_ROW_BLOCK];
                if (jobs[j].accumulate) /* y's lines of this block, while the product runs (each in its own page) */
                    for (int t = tb; t < te; t++) __builtin_prefetch(jobs[j].y + t * jobs[j].ldy + rb, 1);
                if (packed) { /* one repacked group (Q35_PACK_ROWS == Q35_ROW_BLOCK, rows a multiple of it),
                               * any number of tokens; straight into y unless it adds to y */
                    const int direct = !jobs[j].accumulate;
                    k->gemm_packed[w->type](packed + rb / Q35_PACK_ROWS * group_bytes, act + tb * arb, arb, te - tb,
                                            in, direct ? jobs[j].y + tb * jobs[j].ldy + rb : v,
                                            direct ? jobs[j].ldy : Q35_ROW_BLOCK);
                    if (direct) continue;
                } else if (T < 4) { /* decode-sized, memory-bound: row by row, the prefetch spread along; each
                              * value the row's vec_dot (a panel's, bit for bit, without its calls) */
                    for (int64_t r = rb; r < re; r++) {
                        const int64_t ahead = r + Q35_PREFETCH_ROWS;
                        if (tb == 0 && ahead < r1) q35_prefetch_rows(wd, wrb, ahead, ahead + 1);
                        for (int t = tb; t < te; t++)
                            v[(t - tb) * Q35_ROW_BLOCK + (r - rb)] = dot(wd + r * wrb, act + t * arb, in);
                    }
                } else { /* compute-bound: one panel */
                    if (tb == 0) q35_prefetch_rows(wd, wrb, rb + Q35_PREFETCH_ROWS, re + Q35_PREFETCH_ROWS < r1 ? re + Q35_PREFETCH_ROWS : r1);
                    q35_dot_panel(k, w->type, wd + rb * wrb, wrb, (int)(re - rb), act + tb * arb, arb, te - tb, in, v,
                                  Q35_ROW_BLOCK);
                }
                store_tile(jobs[j].y + tb * jobs[j].ldy + rb, jobs[j].ldy, v, Q35_ROW_BLOCK, te - tb, (int)(re - rb),
                           jobs[j].accumulate);
            }
        }
    }
    q35_pool_barrier(s->pool);
    q35_prof_macs(s, ith, layer, op, macs_of(jobs, njobs, in, T));
    q35_prof_mark(s, ith, layer, op, bytes);
}

int q35_glu_fusable(const q35_session *s, const q35_mm_job *gate_up) {
    const q35_tensor *g = gate_up[0].w, *u = gate_up[1].w;
    return q35_packed_of(s, g) && q35_packed_of(s, u) && g->rows == u->rows && g->cols == u->cols &&
           !gate_up[0].accumulate && !gate_up[1].accumulate;
}

void q35_matmul_glu(q35_session *s, int ith, int nth, const float *x, int64_t ldx, int T, const q35_mm_job *gate_up,
                    int layer, int op) {
    const q35_kernels *k = s->k;
    const q35_tensor *wg = gate_up[0].w, *wu = gate_up[1].w;
    const int64_t in = wg->cols;
    act_layout A;
    prepare_activations(s, ith, nth, x, ldx, T, gate_up, 2, layer, &A);
    const uint8_t *ag = s->act + A.act_of_job[0] * A.seg, *au = s->act + A.act_of_job[1] * A.seg;
    const int64_t argb = act_stride(A.acts[A.act_of_job[0]], in), arub = act_stride(A.acts[A.act_of_job[1]], in);
    const uint8_t *pg = q35_packed_of(s, wg), *pu = q35_packed_of(s, wu);
    const int64_t gbg = q35_packed_bytes(wg->type, Q35_PACK_ROWS, in), gbu = q35_packed_bytes(wu->type, Q35_PACK_ROWS, in);
    float *yg = gate_up[0].y, *yu = gate_up[1].y;
    const int64_t ldg = gate_up[0].ldy, ldu = gate_up[1].ldy;

    /* the row blocks of the gate, each with the up block of the same rows; two at once where both
     * types have gemm_packed2 and the thread has two left */
    int64_t lo, hi;
    q35_split(wg->rows / Q35_PACK_ROWS, ith, nth, &lo, &hi);
    const q35_gemm_packed_fn g2 = T >= PACKED2_MIN_TOKENS ? k->gemm_packed2[wg->type] : NULL,
                             u2 = T >= PACKED2_MIN_TOKENS ? k->gemm_packed2[wu->type] : NULL;
    for (int64_t b = lo; b < hi;) {
        const int64_t rb = b * Q35_PACK_ROWS;
        const int ng = g2 && u2 && b + 2 <= hi ? 2 : 1;
        for (int tb = 0; tb < T; tb += Q35_TOK_BLOCK) {
            const int nt = tb + Q35_TOK_BLOCK < T ? Q35_TOK_BLOCK : T - tb;
            (ng == 2 ? g2 : k->gemm_packed[wg->type])(pg + b * gbg, ag + tb * argb, argb, nt, in, yg + tb * ldg + rb, ldg);
            (ng == 2 ? u2 : k->gemm_packed[wu->type])(pu + b * gbu, au + tb * arub, arub, nt, in, yu + tb * ldu + rb, ldu);
            for (int t = tb; t < tb + nt; t++)
                k->swiglu_f32(yg + t * ldg + rb, yu + t * ldu + rb, (int64_t)ng * Q35_PACK_ROWS);
        }
        b += ng;
    }
    q35_pool_barrier(s->pool);
    q35_prof_macs(s, ith, layer, op, macs_of(gate_up, 2, in, T));
    q35_prof_mark(s, ith, layer, op, q35_row_bytes(wg->type, in) * wg->rows + q35_row_bytes(wu->type, in) * wu->rows);
}

void q35_dot_panel(const q35_kernels *k, int wt, const uint8_t *w, int64_t wrb, int nr, const uint8_t *act,
                   int64_t arb, int nt, int64_t n, float *v, int64_t ldv) {
    if (k->gemm[wt]) {
        k->gemm[wt](w, wrb, nr, act, arb, nt, n, v, ldv);
        return;
    }
    q35_panel_by_dots(k->vec_dot[wt], k->vec_dot4[wt], w, wrb, nr, act, arb, nt, n, v, ldv);
}

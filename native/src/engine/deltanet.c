/* The gated delta rule (docs/qwen35.md §2.4.7, §3), three exact algorithms.
 *
 * Per value head, state S [Sk][Sv] (key index i, value index j; v contiguous),
 * scale s = 1/sqrt(Sk), per token: decay d = exp(g) (g <= 0), gate beta:
 *     S <- d S;  u = S^T k;  delta = beta (v - u);  S <- S + k delta^T;  o = s S^T q
 * The read-out uses the updated state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"

/* recurrent: the textbook order above, one token at a time (4 passes over S),
 * on the vector primitives of the kernel table k (so every ISA variant runs it) */
void q35_dn_recurrent(const q35_dn_head *h, const q35_kernels *k) {
    const int Sk = h->Sk, Sv = h->Sv;
    const float scale = 1.0f / sqrtf((float)Sk);
    float *S = h->S;
    float u[512], delta[512];
    for (int t = 0; t < h->T; t++) {
        const float *q = h->q + t * h->ldqk, *kt = h->k + t * h->ldqk, *v = h->v + t * h->ldv;
        const float d = expf(h->g[t * h->ldgb]), beta = h->beta[t * h->ldgb];
        float *o = h->o + t * h->ldo;
        k->scale_f32(S, d, (int64_t)Sk * Sv);
        memset(u, 0, sizeof(float) * Sv);
        for (int i = 0; i < Sk; i++) k->axpy_f32(u, kt[i], S + (int64_t)i * Sv, Sv);      /* u = S^T k */
        for (int j = 0; j < Sv; j++) delta[j] = beta * (v[j] - u[j]);
        for (int i = 0; i < Sk; i++) k->axpy_f32(S + (int64_t)i * Sv, kt[i], delta, Sv);  /* S += k delta^T */
        memset(o, 0, sizeof(float) * Sv);
        for (int i = 0; i < Sk; i++) k->axpy_f32(o, q[i], S + (int64_t)i * Sv, Sv);       /* o = S^T q */
        k->scale_f32(o, scale, Sv);
    }
}

/* fused: the same recurrence rearranged so S is read once and read-written
 * once per token, with S staying hot in cache over the whole u-batch:
 *   vp = S^T k, op = S^T q                 (one pass, old S)
 *   vn = beta (v - d vp)                   (= delta)
 *   o  = s (d op + (k.q) vn)               (= s S_new^T q)
 *   S  = d S + k vn^T                      (second pass) */
void q35_dn_fused(const q35_dn_head *h) {
    const int Sk = h->Sk, Sv = h->Sv;
    const float scale = 1.0f / sqrtf((float)Sk);
    float *S = h->S;
    float vp[512], op[512], vn[512];
    for (int t = 0; t < h->T; t++) {
        const float *q = h->q + t * h->ldqk, *k = h->k + t * h->ldqk, *v = h->v + t * h->ldv;
        const float d = expf(h->g[t * h->ldgb]), beta = h->beta[t * h->ldgb];
        float *o = h->o + t * h->ldo;
        float kq = 0.0f;
        for (int i = 0; i < Sk; i++) kq += k[i] * q[i];
        for (int j = 0; j < Sv; j++) vp[j] = op[j] = 0.0f;
        for (int i = 0; i < Sk; i++) {
            const float *row = S + (int64_t)i * Sv;
            const float ki = k[i], qi = q[i];
            for (int j = 0; j < Sv; j++) { vp[j] += row[j] * ki; op[j] += row[j] * qi; }
        }
        for (int j = 0; j < Sv; j++) {
            vn[j] = beta * (v[j] - d * vp[j]);
            o[j] = scale * (d * op[j] + kq * vn[j]);
        }
        for (int i = 0; i < Sk; i++) {
            float *row = S + (int64_t)i * Sv;
            const float ki = k[i];
            for (int j = 0; j < Sv; j++) row[j] = d * row[j] + ki * vn[j];
        }
    }
}

/* chunked (WY / UT transform), chunks of C = 64 tokens (docs/qwen35.md §3.4). Within a chunk,
 * with G = cumsum(g), Gamma[r][c] = exp(G_r - G_c) for c <= r (masked before exp):
 *   L  = strictly_lower(beta_r (k_r.k_c) Gamma)       solve (I + L) U = beta V,
 *                                                     and   (I + L) W = diag(beta e^G) K
 *   A  = lower_incl_diag((q_r.k_c) Gamma)             (q scaled by s)
 *   Vn = U - W S;   O = diag(e^G) Q S + A Vn;   S <- e^{G_last} S + (diag(e^{G_last - G}) K)^T Vn
 * A final partial chunk is run at its own length (no padding). Like the recurrent
 * form it runs on the vector primitives of the kernel table k; the products with S and Vn
 * are register-tiled panels (axpy_panel_f32, per row the same bits as its axpy calls). The
 * chunk keeps -L and -W (negation is exact), so every product is a sum. */
#define DN_ROWS 8     /* rows of a triangular product per panel call */
void q35_dn_chunked(const q35_dn_head *h, dn_scratch *ws, const q35_kernels *k) {
    const int Sk = h->Sk, Sv = h->Sv;
    const float scale = 1.0f / sqrtf((float)Sk);
    float *S = h->S;
    float *G = ws->G, *NG = ws->G + Q35_DN_CHUNK, *E = ws->G + 2 * Q35_DN_CHUNK; /* G, -G, a row of exps */
    float *NL = ws->L, *A = ws->A, *U = ws->U, *NW = ws->W, *Vn = ws->Vn, *P = ws->P;
    for (int c0 = 0; c0 < h->T; c0 += Q35_DN_CHUNK) {
        const int C = h->T - c0 < Q35_DN_CHUNK ? h->T - c0 : Q35_DN_CHUNK;
#define QR(r) (h->q + (int64_t)(c0 + (r)) * h->ldqk)
#define KR(r) (h->k + (int64_t)(c0 + (r)) * h->ldqk)
#define VR(r) (h->v + (int64_t)(c0 + (r)) * h->ldv)
#define BETA(r) (h->beta[(int64_t)(c0 + (r)) * h->ldgb])
        float acc = 0.0f;
        for (int r = 0; r < C; r++) { acc += h->g[(int64_t)(c0 + r) * h->ldgb]; G[r] = acc; NG[r] = -acc; }
        /* -L and A (row r, columns c <= r; zero beyond, so whole rows can enter a panel): the
         * dots k_r.k_c and q_r.k_c as panels, a block of DN_ROWS rows against the keys up to its last */
        for (int r0 = 0; r0 < C; r0 += DN_ROWS) {
            const int nr = C - r0 < DN_ROWS ? C - r0 : DN_ROWS;
            k->dot_panel_f32(KR(0), h->ldqk, r0 + nr, KR(r0), h->ldqk, nr, Sk, NL + r0 * C, C);
            k->dot_panel_f32(KR(0), h->ldqk, r0 + nr, QR(r0), h->ldqk, nr, Sk, A + r0 * C, C);
        }
        for (int r = 0; r < C; r++) {
            /* Gamma's row r as the table's exp: exp(-G_c - (-G_r)) = exp(G_r - G_c), the subtraction exact alike */
            memcpy(E, NG, sizeof(float) * (size_t)(r + 1));
            k->exp_sum_f32(E, r + 1, NG[r]);
            for (int c = 0; c <= r; c++) {
                NL[r * C + c] = c < r ? -(BETA(r) * NL[r * C + c] * E[c]) : 0.0f;
                A[r * C + c] = scale * A[r * C + c] * E[c];
            }
            for (int c = r + 1; c < C; c++) NL[r * C + c] = A[r * C + c] = 0.0f;
        }
        /* forward substitution: U_r = beta_r v_r - sum_{c<r} L[r][c] U_c; -W likewise. The rows
         * before a block of DN_ROWS enter as one panel, the block's own rows one by one after,
         * so each row still adds its c in ascending order */
        for (int r0 = 0; r0 < C; r0 += DN_ROWS) {
            const int nr = C - r0 < DN_ROWS ? C - r0 : DN_ROWS;
            for (int r = r0; r < r0 + nr; r++) {
                float *ur = U + (int64_t)r * Sv, *wr = NW + (int64_t)r * Sk;
                const float *vr = VR(r), *kr = KR(r);
                const float b = BETA(r), eg = expf(G[r]);
                memcpy(ur, vr, sizeof(float) * Sv);         /* b v_r */
                k->scale_f32(ur, b, Sv);
                memcpy(wr, kr, sizeof(float) * Sk);         /* -(b e^G_r) k_r */
                k->scale_f32(wr, -(b * eg), Sk);
            }
            k->axpy_panel_f32(U + (int64_t)r0 * Sv, Sv, nr, NL + r0 * C, C, U, Sv, r0, Sv);
            k->axpy_panel_f32(NW + (int64_t)r0 * Sk, Sk, nr, NL + r0 * C, C, NW, Sk, r0, Sk);
            for (int r = r0 + 1; r < r0 + nr; r++)
                for (int c = r0; c < r; c++) {
                    k->axpy_f32(U + (int64_t)r * Sv, NL[r * C + c], U + (int64_t)c * Sv, Sv);
                    k->axpy_f32(NW + (int64_t)r * Sk, NL[r * C + c], NW + (int64_t)c * Sk, Sk);
                }
        }
        /* Vn = U - W S;  O = (s e^G Q) S + A Vn */
        memcpy(Vn, U, sizeof(float) * (size_t)C * Sv);
        k->axpy_panel_f32(Vn, Sv, C, NW, Sk, S, Sv, Sk, Sv);
        for (int r = 0; r < C; r++) {
            const float *qr = QR(r);
            const float eg = expf(G[r]);
            memcpy(P + (int64_t)r * Sk, qr, sizeof(float) * Sk);
            k->scale_f32(P + (int64_t)r * Sk, scale * eg, Sk);
            memset(h->o + (int64_t)(c0 + r) * h->ldo, 0, sizeof(float) * Sv);
        }
        k->axpy_panel_f32(h->o + (int64_t)c0 * h->ldo, h->ldo, C, P, Sk, S, Sv, Sk, Sv);
        for (int r0 = 0; r0 < C; r0 += DN_ROWS) {      /* A is lower triangular: columns up to the block's last row */
            const int nr = C - r0 < DN_ROWS ? C - r0 : DN_ROWS;
            k->axpy_panel_f32(h->o + (int64_t)(c0 + r0) * h->ldo, h->ldo, nr, A + r0 * C, C, Vn, Sv, r0 + nr, Sv);
        }
        /* S <- e^{G_last} S + sum_c (e^{G_last - G_c} k_c) Vn_c^T: row i of S adds P[i][c] Vn_c */
        const float glast = G[C - 1];
        k->scale_f32(S, expf(glast), (int64_t)Sk * Sv);
        memcpy(E, NG, sizeof(float) * (size_t)C);           /* E_c = exp(G_last - G_c) */
        k->exp_sum_f32(E, C, -glast);
        for (int i = 0; i < Sk; i++)                         /* P = (diag(E) K)^T, written row by row */
            for (int c = 0; c < C; c++) P[i * C + c] = E[c] * KR(c)[i];
        k->axpy_panel_f32(S, Sv, Sk, P, C, Vn, Sv, C, Sv);
#undef QR
#undef KR
#undef VR
#undef BETA
    }
}

int q35_deltanet_head(int isa, int algo, const q35_dn_head *h) {
    const q35_kernels *k = q35_kernels_for(isa);
    if (!k || h->Sk < 1 || h->Sk > 512 || h->Sv < 1 || h->Sv > 512 || h->T < 0) return -1;
    if (algo == Q35_DN_RECURRENT) { q35_dn_recurrent(h, k); return 0; }
    if (algo == Q35_DN_FUSED) { k->dn_fused(h); return 0; }
    if (algo != Q35_DN_CHUNKED) return -1;
    const int64_t C = Q35_DN_CHUNK, Smax = h->Sk > h->Sv ? h->Sk : h->Sv;
    float *buf = malloc(sizeof(float) * (size_t)(3 * C + 2 * C * C + 4 * C * Smax));
    if (!buf) return -1;
    float *rest = buf + 3 * C;
    dn_scratch ws = {.G = buf, .L = rest, .A = rest + C * C, .U = rest + 2 * C * C,
                     .W = rest + 2 * C * C + C * Smax, .Vn = rest + 2 * C * C + 2 * C * Smax,
                     .P = rest + 2 * C * C + 3 * C * Smax};
    q35_dn_chunked(h, &ws, k);
    free(buf);
    return 0;
}

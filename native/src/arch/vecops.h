/* Elementwise / row float kernels, one set per ISA (arch/vecops_scalar.c,
 * arch/x86/vecops_avx2.c, arch/x86/vecops_avx512.c, arch/arm/vecops_neon.c).
 * Every variant has the same signature; the kernel tables point at them. */
#ifndef Q35_VECOPS_H
#define Q35_VECOPS_H

#include <stdint.h>

#define Q35_DECLARE_VECOPS(isa)                                                              \
    void q35_silu_##isa(float *x, int64_t n);                                                \
    void q35_swiglu_##isa(float *g, const float *u, int64_t n);                              \
    void q35_axpy_##isa(float *y, float a, const float *x, int64_t n);                       \
    void q35_fmadd_##isa(float *acc, const float *a, const float *b, int64_t n);             \
    void q35_conv_silu_##isa(float *x, int64_t ldx, int T, const float *s, int64_t lds, const float *w, \
                             int64_t ldw, int K, int64_t n);                                 \
    void q35_scale_##isa(float *x, float a, int64_t n);                                      \
    void q35_rmsnorm_##isa(const float *x, const float *w, float *y, int64_t n, float eps);  \
    void q35_l2norm_##isa(float *x, int64_t n, float eps);                                   \
    void q35_rope_##isa(float *x, const float *cs, int n_rot);                               \
    void q35_softmax_##isa(float *x, int64_t n);                                             \
    void q35_sigmoid_mul_##isa(float *x, const float *g, int64_t n);                         \
    void q35_axpy_panel_##isa(float *Y, int64_t ldy, int ny, const float *A, int64_t lda, const float *X,   \
                              int64_t ldx, int64_t m, int64_t n);                                            \
    double q35_exp_sum_##isa(float *x, int64_t n, float m);                                   \
    void q35_dot_panel_f32_##isa(const float *K, int64_t ldk, int nk, const float *Q, int64_t ldq, int nq,   \
                                 int64_t n, float *out, int64_t ldo);

/* the table entries, in q35_kernels field order */
#define Q35_VECOPS_ENTRIES(isa)                                                              \
    .silu_f32 = q35_silu_##isa, .swiglu_f32 = q35_swiglu_##isa, .axpy_f32 = q35_axpy_##isa, \
    .fmadd_f32 = q35_fmadd_##isa, .conv_silu_f32 = q35_conv_silu_##isa,                     \
    .scale_f32 = q35_scale_##isa,                                                            \
    .rmsnorm_f32 = q35_rmsnorm_##isa, .l2norm_f32 = q35_l2norm_##isa,                       \
    .rope_f32 = q35_rope_##isa, .softmax_f32 = q35_softmax_##isa,                           \
    .sigmoid_mul_f32 = q35_sigmoid_mul_##isa, .axpy_panel_f32 = q35_axpy_panel_##isa,          \
    .exp_sum_f32 = q35_exp_sum_##isa, .dot_panel_f32 = q35_dot_panel_f32_##isa

/* the conv's row u[j] of conv_silu_f32: a state row below K-1, else a row of x */
#define Q35_CONV_ROW(j) ((j) < K - 1 ? s + (int64_t)(j) * lds : x + (int64_t)((j) - (K - 1)) * ldx)

/* conv_silu_f32 runs down the tokens in blocks of this many, all its channels for one block before
 * the block below, so the block's rows stay in cache across the channels and each row is read as
 * one sequential stream */
#define Q35_CONV_TOK_BLOCK 16

/* conv_silu_f32 through a variant's own fmadd_f32 and silu_f32, 16 channels at a time: its
 * definition, and the channels past a variant's last full vector. Tokens run backwards, so the rows
 * an output reads (t .. t+K-1 of u) are not yet overwritten. */
static inline void q35_conv_silu_by_rows(void (*fmadd)(float *, const float *, const float *, int64_t),
                                         void (*silu)(float *, int64_t), float *x, int64_t ldx, int T,
                                         const float *s, int64_t lds, const float *w, int64_t ldw, int K, int64_t n) {
    for (int t1 = T; t1 > 0; t1 -= Q35_CONV_TOK_BLOCK)
        for (int64_t c = 0; c < n; c += 16) {
            const int64_t m = n - c < 16 ? n - c : 16;
            for (int t = t1 - 1; t >= 0 && t >= t1 - Q35_CONV_TOK_BLOCK; t--) {
                float acc[16] = {0};
                for (int i = 0; i < K; i++) fmadd(acc, w + (int64_t)i * ldw + c, Q35_CONV_ROW(t + i) + c, m);
                for (int64_t j = 0; j < m; j++) x[(int64_t)t * ldx + c + j] = acc[j];
                silu(x + (int64_t)t * ldx + c, m);
            }
        }
}

Q35_DECLARE_VECOPS(scalar)
Q35_DECLARE_VECOPS(avx2)
Q35_DECLARE_VECOPS(avx512)
Q35_DECLARE_VECOPS(neon)

#endif

/* The kernel tables as callers see them: each variant's own entries, with the
 * gaps filled from the next variant down, so every entry is callable. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

const q35_kernels *q35_compiled_table(int isa) {
    switch (isa) {
    case Q35_ISA_SCALAR: return &q35_kernels_scalar;
#if Q35_HAVE_X86
    case Q35_ISA_AVX2: return &q35_kernels_avx2;
    case Q35_ISA_AVX512: return &q35_kernels_avx512;
#endif
#if Q35_HAVE_NEON
    case Q35_ISA_NEON: return q35_neon_table();
#endif
    default: return NULL;
    }
}

/* the variant whose entries fill the gaps of another */
static int fallback_of(int isa) {
    switch (isa) {
    case Q35_ISA_AVX512: return Q35_ISA_AVX2;
    case Q35_ISA_AVX2: return Q35_ISA_SCALAR;
    case Q35_ISA_NEON: return Q35_ISA_SCALAR;
    default: return -1;
    }
}

void q35_kernels_fill(q35_kernels *k, const q35_kernels *base) {
#define INHERIT(f) if (!k->f) k->f = base->f
    INHERIT(dot_f32); INHERIT(dn_fused);
    INHERIT(silu_f32); INHERIT(swiglu_f32); INHERIT(axpy_f32); INHERIT(fmadd_f32); INHERIT(conv_silu_f32);
    INHERIT(scale_f32); INHERIT(rmsnorm_f32); INHERIT(l2norm_f32); INHERIT(rope_f32);
    INHERIT(softmax_f32); INHERIT(sigmoid_mul_f32); INHERIT(axpy_panel_f32); INHERIT(exp_sum_f32); INHERIT(dot_panel_f32);
#undef INHERIT
    for (int t = 0; t < Q35_TYPE_COUNT; t++) {
        if (!k->from_float[t]) k->from_float[t] = base->from_float[t];
        if (!k->to_float[t]) k->to_float[t] = base->to_float[t];
        /* a variant with its own dot but no 4-token dot gets none: its matmul then
         * uses its own dot for every token, so logits never depend on batching */
        if (!k->vec_dot4[t] && !k->vec_dot[t]) k->vec_dot4[t] = base->vec_dot4[t];
        if (!k->gemm[t] && !k->vec_dot[t]) k->gemm[t] = base->gemm[t]; /* the same rule for panels */
        if (!k->vec_dot[t]) k->vec_dot[t] = base->vec_dot[t];
    }
}

void q35_panel_by_dots(q35_vec_dot_fn dot, q35_vec_dot4_fn dot4, const void *w, int64_t ws, int nr, const void *a,
                       int64_t as, int nt, int64_t n, float *y, int64_t ldy) {
    for (int r = 0; r < nr; r++) {
        const uint8_t *wr = (const uint8_t *)w + r * ws;
        int t = 0;
        if (dot4) /* one pass over the weight row for 4 tokens */
            for (; t + 4 <= nt; t += 4) {
                float o[4];
                dot4(wr, (const uint8_t *)a + t * as, as, n, o);
                for (int i = 0; i < 4; i++) y[(t + i) * ldy + r] = o[i];
            }
        for (; t < nt; t++) y[t * ldy + r] = dot(wr, (const uint8_t *)a + t * as, n);
    }
}

int q35_avx512_bf16_usable(void) {
#if Q35_HAVE_X86 && !defined(Q35_AVX512_SIMDE)
    q35_cpu_features f;
    q35_cpu_detect(&f);
    return f.avx512bf16;
#else
    return 0; /* the SIMDe build has no BF16 product */
#endif
}

int q35_avx512_vnni_usable(void) {
#if Q35_HAVE_X86 && !defined(Q35_AVX512_SIMDE)
    q35_cpu_features f;
    q35_cpu_detect(&f);
    return f.avx512vnni;
#else
    return 0; /* the SIMDe build: the self-test checks the VNNI table on its own */
#endif
}

int q35_avx_vnni_usable(void) {
#if Q35_HAVE_AVXVNNI
    q35_cpu_features f;
    q35_cpu_detect(&f);
    const char *env = getenv("HARNESS_AVXVNNI"); /* "0": the plain AVX2 products (a peer built without) */
    return f.avxvnni && f.avx2 && f.fma && f.f16c && !(env && !strcmp(env, "0"));
#else
    return 0;
#endif
}

#if Q35_HAVE_AVXVNNI
void q35_avxvnni_fill(q35_kernels *k) {
    k->name = "avx2+avxvnni";
    k->gemm_packed[Q35_TYPE_Q8_0] = q35_gemm_packed_q8_0_avxvnni;
    k->prepare_packed[Q35_TYPE_Q8_0] = q35_prepare_packed_q8_0_plus128_avx2;
    k->gemm_packed[Q35_TYPE_IQ4_XS] = q35_gemm_packed_iq4_xs_avxvnni;
    k->gemm_packed[Q35_TYPE_Q6_K] = q35_gemm_packed_q6_K_avxvnni;
    k->gemm_packed[Q35_TYPE_Q4_K] = q35_gemm_packed_q4_K_avxvnni;
    k->gemm_packed[Q35_TYPE_Q5_K] = q35_gemm_packed_q5_K_avxvnni;
}
#endif

static q35_kernels filled[Q35_ISA_COUNT];
static pthread_once_t filled_once = PTHREAD_ONCE_INIT;

static void fill_tables(void) {
    /* scalar first, then the variants built on it, then avx512 on avx2 */
    static const int order[] = {Q35_ISA_SCALAR, Q35_ISA_AVX2, Q35_ISA_NEON, Q35_ISA_AVX512};
    for (int o = 0; o < Q35_ISA_COUNT; o++) {
        int isa = order[o];
        const q35_kernels *own = q35_compiled_table(isa);
        if (!own) continue;
        q35_kernels k = *own;
#if Q35_HAVE_X86
        if (isa == Q35_ISA_AVX512 && q35_avx512_vnni_usable()) { /* VNNI dots over the plain ones */
            k = q35_kernels_avx512vnni;
            q35_kernels_fill(&k, own);
        }
#if Q35_HAVE_AVXVNNI
        if (isa == Q35_ISA_AVX2 && q35_avx_vnni_usable()) q35_avxvnni_fill(&k); /* vpdpbusd products */
#endif
#if !defined(Q35_AVX512_SIMDE)
        if (isa == Q35_ISA_AVX512 && q35_avx512_bf16_usable()) { /* the repacked BF16 product (vdpbf16ps) */
            k.gemm_packed[Q35_TYPE_BF16] = q35_gemm_packed_bf16_avx512bf16;
            k.gemm_packed2[Q35_TYPE_BF16] = q35_gemm_packed2_bf16_avx512bf16;
        }
#endif
#endif
        int fb = fallback_of(isa);
        if (fb >= 0 && q35_compiled_table(fb)) q35_kernels_fill(&k, &filled[fb]);
        filled[isa] = k;
    }
}

const q35_kernels *q35_kernels_for(int isa) {
    if (!q35_isa_supported(isa)) return NULL;
    pthread_once(&filled_once, fill_tables);
    return &filled[isa];
}

int q35_act_type(int weight_type) {
    switch (weight_type) {
    case Q35_TYPE_F32: return Q35_TYPE_F32;
    case Q35_TYPE_F16: return Q35_TYPE_F16;
    case Q35_TYPE_BF16: return Q35_TYPE_BF16;
    case Q35_TYPE_Q8_0:
    case Q35_TYPE_Q4_0:
    case Q35_TYPE_Q5_0:
    case Q35_TYPE_IQ4_NL:
    case Q35_TYPE_MXFP4:
    case Q35_TYPE_NVFP4: return Q35_TYPE_Q8_0;
    case Q35_TYPE_Q4_1:
    case Q35_TYPE_Q5_1: return Q35_TYPE_Q8_1;
    case Q35_TYPE_Q2_K:
    case Q35_TYPE_Q3_K:
    case Q35_TYPE_Q4_K:
    case Q35_TYPE_Q5_K:
    case Q35_TYPE_Q6_K:
    case Q35_TYPE_IQ4_XS:
    case Q35_TYPE_IQ2_XXS:
    case Q35_TYPE_IQ2_XS:
    case Q35_TYPE_IQ2_S:
    case Q35_TYPE_IQ3_XXS:
    case Q35_TYPE_IQ3_S:
    case Q35_TYPE_IQ1_S:
    case Q35_TYPE_IQ1_M:
    case Q35_TYPE_TQ1_0:
    case Q35_TYPE_TQ2_0: return Q35_TYPE_Q8_K;
    default: return -1;
    }
}

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
    Q35_TYPE_Q8_0 = 8,
    Q35_TYPE_Q4_K = 12,
    Q35_TYPE_Q5_K = 13,
    Q35_TYPE_Q6_K = 14,
    Q35_TYPE_Q8_K = 15, /* activations only, never stored in files */
    Q35_TYPE_IQ4_XS = 23,
    Q35_TYPE_BF16 = 30,
};

/* Elements per block and bytes per block; both 0 for a type we do not know. */
int64_t q35_type_block_elems(int type);
int64_t q35_type_block_bytes(int type);

/* ------------------------------------------------------------------------- */
/* Quantization formats (quant.c). Block layouts are byte-identical to ggml. */

/* Quantize nrows rows of ncols floats each into dst (rows packed back to
 * back, row size = ncols / block_elems * block_bytes). ncols must be a
 * multiple of the type's block size. Returns 0, or -1 for an unknown type
 * or a bad ncols. Thread-safe: callers split rows across threads. */
int q35_quantize(int type, const float *src, void *dst, int64_t nrows, int64_t ncols);

/* The inverse: nrows rows of quantized data to floats. Same return codes. */
int q35_dequantize(int type, const void *src, float *dst, int64_t nrows, int64_t ncols);

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
    int avx512f, avx512bw, avx512vl, avx512vnni;
    int neon, dotprod;
} q35_cpu_features;

void q35_cpu_detect(q35_cpu_features *out);
const char *q35_isa_name(int isa);
int q35_isa_compiled(int isa);  /* 1 if this build contains the variant */
int q35_isa_supported(int isa); /* compiled, and this CPU can run it */
int q35_isa_best(void);         /* the best supported variant */

/* One table of kernels per ISA variant; every entry has the same signature
 * in every variant (the scalar one is the reference). */
typedef struct {
    const char *name;
    /* sum_i a[i]*b[i] */
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    /* n floats (n % 32 == 0) to Q8_0 blocks: d = max|x|/127, q = round(x/d) */
    void (*quantize_row_q8_0)(const float *x, void *dst, int64_t n);
    /* dot of two Q8_0 rows of n elements: sum_b d_w*d_a*sum_j qw_j*qa_j */
    float (*dot_q8_0_q8_0)(const void *w, const void *a, int64_t n);
} q35_kernels;

/* The table for an ISA, or NULL when it is not supported on this CPU. */
const q35_kernels *q35_kernels_for(int isa);

#ifdef __cplusplus
}
#endif
#endif /* Q35_H */

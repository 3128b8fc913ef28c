/* The per-ISA kernel tables (arch/kernels_scalar.c, arch/x86/kernels_avx2.c,
 * arch/x86/kernels_avx512.c, arch/arm/kernels_neon.c) and what dispatch and
 * the kernels share. */
#ifndef Q35_KERNELS_H
#define Q35_KERNELS_H

#include "q35.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define Q35_HAVE_X86 1
#else
#define Q35_HAVE_X86 0
#endif
/* the AVX-VNNI products (arch/x86/repacked_avxvnni.c): compilers that know the target (not the
 * SIMDe build, whose AVX512 slot is an emulation) */
#if Q35_HAVE_X86 && !defined(Q35_AVX512_SIMDE) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11))
#define Q35_HAVE_AVXVNNI 1
#else
#define Q35_HAVE_AVXVNNI 0
#endif
#if defined(__aarch64__)
#define Q35_HAVE_NEON 1
#else
#define Q35_HAVE_NEON 0
#endif

extern const q35_kernels q35_kernels_scalar;
#if Q35_HAVE_X86
extern const q35_kernels q35_kernels_avx2;
extern const q35_kernels q35_kernels_avx512;
extern const q35_kernels q35_kernels_avx512vnni; /* the integer dots only, with VNNI */
#endif
#if Q35_HAVE_NEON
/* int8 products by widening multiplies / by sdot (armv8.2 dot-product extension) */
extern const q35_kernels q35_kernels_neon, q35_kernels_neon_dotprod;
const q35_kernels *q35_neon_table(void); /* the dotprod one where the CPU has it */
/* the repacked products with sdot by lane (arch/arm/repacked_neon.c) */
void q35_gemm_packed_q4_K_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                       int64_t ldy);
void q35_gemm_packed_q5_K_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                               int64_t ldy);
void q35_gemm_packed_bf16_neon(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q6_K_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                       int64_t ldy);
void q35_gemm_packed_q8_0_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                       int64_t ldy);
void q35_gemm_packed_iq4_xs_sdot(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                         int64_t ldy);
#endif

/* the table a variant defines (entries may be NULL), or NULL if not compiled */
const q35_kernels *q35_compiled_table(int isa);

/* k's NULL entries taken from base (the gap filling of q35_kernels_for; the
 * self-test uses it to build the AVX512 table with and without VNNI) */
void q35_kernels_fill(q35_kernels *k, const q35_kernels *base);

/* a panel (the gemm contract) through 4-token and single dots: the fallback of every panel */
void q35_panel_by_dots(q35_vec_dot_fn dot, q35_vec_dot4_fn dot4, const void *w, int64_t ws, int nr, const void *a,
                       int64_t as, int nt, int64_t n, float *y, int64_t ldy);

/* the repacked products' rule (arch/repacked_scalar.c) */
void q35_gemm_packed_q4_K_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q5_K_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q6_K_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q8_0_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_iq4_xs_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                   int64_t ldy);
void q35_gemm_packed_bf16_scalar(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
#if Q35_HAVE_X86
/* with vdpbf16ps (arch/x86/repacked_avx512bf16.c); dispatch puts it in the AVX512 table where the CPU
 * has AVX512-BF16 */
void q35_gemm_packed_bf16_avx512bf16(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                     int64_t ldy);
void q35_gemm_packed2_bf16_avx512bf16(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                      int64_t ldy);
#endif
#if Q35_HAVE_X86
/* Q8_0 activation rows as qa + 128 (codes ^ 0x80, in place): the prepare_packed of both VNNI tables'
 * Q8_0 products, whose vpdpbusd takes an unsigned first operand (AVX2 code, arch/x86/repacked_avx2.c) */
void q35_prepare_packed_q8_0_plus128_avx2(void *a, int64_t as, int nt, int64_t n);
#endif
#if Q35_HAVE_AVXVNNI
/* with vpdpbusd on ymm (arch/x86/repacked_avxvnni.c); dispatch puts them in the AVX2 table where the
 * CPU has AVX-VNNI, unless HARNESS_AVXVNNI=0 */
void q35_gemm_packed_q8_0_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_iq4_xs_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y,
                                    int64_t ldy);
void q35_gemm_packed_q4_K_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q5_K_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
void q35_gemm_packed_q6_K_avxvnni(const void *wp, const void *a, int64_t as, int nt, int64_t n, float *y, int64_t ldy);
/* the AVX2 table with them laid over its own (the self-test checks both tables) */
void q35_avxvnni_fill(q35_kernels *k);
#endif
/* whether dispatch puts the AVX-VNNI products in the AVX2 table on this CPU (HARNESS_AVXVNNI=0: never) */
int q35_avx_vnni_usable(void);

/* whether dispatch lays the VNNI dots over the AVX512 table on this CPU */
int q35_avx512_vnni_usable(void);
/* whether dispatch puts the vdpbf16ps product of BF16 in the AVX512 table on this CPU */
int q35_avx512_bf16_usable(void);

#endif

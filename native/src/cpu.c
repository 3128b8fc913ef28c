/* CPU feature detection and the choice of ISA variant. */
#include "q35.h"
#include "kernels.h"

#include <string.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

void q35_cpu_detect(q35_cpu_features *f) {
    memset(f, 0, sizeof *f);
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    /* libgcc's checks include OS support (XGETBV) for the AVX state */
    __builtin_cpu_init();
    f->avx2 = !!__builtin_cpu_supports("avx2");
    f->fma = !!__builtin_cpu_supports("fma");
    f->f16c = 0;
#if defined(__clang__) || __GNUC__ >= 11
    f->f16c = !!__builtin_cpu_supports("f16c");
#endif
    f->avx512f = !!__builtin_cpu_supports("avx512f");
    f->avx512bw = !!__builtin_cpu_supports("avx512bw");
    f->avx512vl = !!__builtin_cpu_supports("avx512vl");
    f->avx512vnni = !!__builtin_cpu_supports("avx512vnni");
    f->avx512bf16 = !!__builtin_cpu_supports("avx512bf16");
#if defined(__clang__) ? __clang_major__ >= 12 : __GNUC__ >= 11
    f->avxvnni = !!__builtin_cpu_supports("avxvnni");
#endif
#elif defined(__aarch64__)
    f->neon = 1; /* Advanced SIMD is mandatory on AArch64 */
#if defined(__linux__)
    f->dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
#endif
}

static const char *const isa_names[Q35_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

const char *q35_isa_name(int isa) {
    return (isa >= 0 && isa < Q35_ISA_COUNT) ? isa_names[isa] : "unknown";
}

int q35_isa_compiled(int isa) { return q35_compiled_table(isa) != NULL; }

int q35_isa_supported(int isa) {
    if (!q35_isa_compiled(isa)) return 0;
    q35_cpu_features f;
    q35_cpu_detect(&f);
    switch (isa) {
    case Q35_ISA_SCALAR: return 1;
    case Q35_ISA_AVX2: return f.avx2 && f.fma && f.f16c;
#if defined(Q35_AVX512_SIMDE) /* the self-test's build: the avx512 slot holds SIMDe's emulation */
    case Q35_ISA_AVX512: return f.avx2 && f.fma && f.f16c;
#else
    case Q35_ISA_AVX512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx2 && f.fma && f.f16c;
#endif
    case Q35_ISA_NEON: return f.neon;
    default: return 0;
    }
}

int q35_isa_best(void) {
    static const int order[] = {Q35_ISA_AVX512, Q35_ISA_AVX2, Q35_ISA_NEON};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (q35_isa_supported(order[i])) return order[i];
    return Q35_ISA_SCALAR;
}

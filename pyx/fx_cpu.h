/*
 * fx_cpu.h: which instruction sets this CPU and OS can run, and how this
 * translation unit was built.  Compiled only at the baseline level, so it is
 * safe to call on any CPU before a wider kernel module is imported.
 */
#ifndef FX_CPU_H
#define FX_CPU_H

#ifdef _OPENMP
#include <omp.h>
static int fx_openmp_enabled(void) { return 1; }
static int fx_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static int fx_openmp_enabled(void) { return 0; }
static int fx_omp_max_threads(void) { return 1; }
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define FX_X86 1
#else
#define FX_X86 0
#endif

#if FX_X86 && defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#include <immintrin.h>
/* AVX2 needs the OS to save ymm state (XCR0 bits 1-2), AVX-512 also the
   opmask and zmm state (bits 5-7) */
static int fx_xcr0_has(unsigned long long bits)
{
    int info[4];
    __cpuid(info, 1);
    if (!(info[2] & (1 << 27))) return 0;   /* OSXSAVE */
    return (_xgetbv(0) & bits) == bits;
}
static int fx_cpu_has_avx2_fma(void)
{
    int info[4];
    __cpuid(info, 1);
    if (!(info[2] & (1 << 12))) return 0;   /* FMA */
    __cpuidex(info, 7, 0);
    return (info[1] & (1 << 5)) && fx_xcr0_has(0x6);
}
static int fx_cpu_has_avx512(void)
{
    int info[4];
    __cpuidex(info, 7, 0);
    /* F, DQ, BW, VL */
    return (info[1] & (1 << 16)) && (info[1] & (1 << 17)) && (info[1] & (1 << 30))
           && (info[1] & (1u << 31)) && fx_xcr0_has(0xE6) && fx_cpu_has_avx2_fma();
}
#elif FX_X86 && (defined(__GNUC__) || defined(__clang__))
/* __builtin_cpu_supports consults CPUID and XCR0 (OS support) */
static int fx_cpu_has_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int fx_cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return fx_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f")
           && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl");
}
#else
static int fx_cpu_has_avx2_fma(void) { return 0; }
static int fx_cpu_has_avx512(void) { return 0; }
#endif

#if defined(__clang__)
#define FX_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define FX_STR2(x) #x
#define FX_STR(x) FX_STR2(x)
#define FX_COMPILER "gcc " FX_STR(__GNUC__) "." FX_STR(__GNUC_MINOR__) "." FX_STR(__GNUC_PATCHLEVEL__)
#elif defined(_MSC_VER)
#define FX_STR2(x) #x
#define FX_STR(x) FX_STR2(x)
#define FX_COMPILER "MSVC " FX_STR(_MSC_VER)
#else
#define FX_COMPILER "unknown"
#endif

static const char *fx_compiler(void) { return FX_COMPILER; }
static int fx_is_x86(void) { return FX_X86; }

#endif /* FX_CPU_H */

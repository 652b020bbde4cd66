/*
 * fx_math.h: branch-free exp for float and double that gcc, clang and MSVC
 * vectorize.
 *
 * Why not libm: a call to expf/exp in a loop stops vectorization (glibc's
 * vector variants need -ffast-math), and the forward of a cross-entropy is
 * nothing but exps.  These functions are plain arithmetic plus selects, so
 * the compiler turns a loop over them into SIMD at the width the translation
 * unit is compiled for (SSE2, AVX2+FMA or AVX-512: see setup.py).
 *
 * Method (Cody-Waite): x = n*ln2 + r with |r| <= ln2/2, n an integer found
 * with the 1.5*2^k "magic number" round-to-nearest; exp(r) from a polynomial;
 * 2^n built directly in the exponent bits.
 *   float : Cephes' degree-6 minimax polynomial, <= 2 ulp on [-87.3, 88.7]
 *   double: degree-13 Taylor polynomial (truncation 4e-18), <= 2 ulp on
 *           [-708.3, 709.7]
 * Outside the range: 0 below, +inf above; NaN in gives NaN out.  Results
 * that would be subnormal are returned as 0 (relative to any sum that holds
 * the row's maximum, which contributes 1, they are invisible).
 *
 * Build without -ffast-math: the selects below rely on NaN and inf obeying
 * IEEE rules.
 */
#ifndef FX_MATH_H
#define FX_MATH_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#if defined(_MSC_VER)
#define FX_INLINE static __forceinline
#else
#define FX_INLINE static inline __attribute__((always_inline))
#endif

FX_INLINE float fx_bits_to_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
FX_INLINE uint32_t fx_f_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
FX_INLINE double fx_bits_to_d(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
FX_INLINE uint64_t fx_d_to_bits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

/* The shared core of the exps below: xc (clamped by the caller) = n ln2 + r,
 * n = *ni; returns exp(r).  Each exp then builds 2^n in its own way. */
FX_INLINE float fx_expf_split(float xc, int32_t *ni)
{
    const float magic = 12582912.0f;   /* 1.5 * 2^23 */
    float t = xc * 1.44269504088896341f + magic;
    float n = t - magic;
    /* the low mantissa bits of t hold n as a two's complement integer */
    *ni = (int32_t)(fx_f_to_bits(t) - fx_f_to_bits(magic));
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1.0f;
}

FX_INLINE double fx_exp_split(double xc, int64_t *ni)
{
    const double magic = 6755399441055744.0;   /* 1.5 * 2^52 */
    double t = xc * 1.4426950408889634 + magic;
    double n = t - magic;
    *ni = (int64_t)(fx_d_to_bits(t) - fx_d_to_bits(magic));
    double r = xc - n * 6.93145751953125e-1;
    r = r - n * 1.42860682030941723212e-6;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    return p * r * r + r + 1.0;
}

FX_INLINE float fx_expf(float x)
{
    const float lo = -87.33654f;   /* exp(lo) is the smallest normal float */
    const float hi = 88.72283f;
    float xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    int32_t ni;
    float p = fx_expf_split(xc, &ni);
    /* n can reach 128 at hi: split the scale in two so 2^n never overflows
       the exponent field before the multiply */
    int32_t n1 = ni >> 1;
    int32_t n2 = ni - n1;
    float s1 = fx_bits_to_f((uint32_t)(n1 + 127) << 23);
    float s2 = fx_bits_to_f((uint32_t)(n2 + 127) << 23);
    float y = p * s1 * s2;
    y = x < lo ? 0.0f : y;
    y = x > hi ? INFINITY : y;
    return y;
}

FX_INLINE double fx_exp(double x)
{
    const double lo = -708.3964185322641;   /* exp(lo) is the smallest normal double */
    const double hi = 709.782712893384;
    double xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    int64_t ni;
    double p = fx_exp_split(xc, &ni);
    int64_t n1 = ni >> 1;
    int64_t n2 = ni - n1;
    double s1 = fx_bits_to_d((uint64_t)(n1 + 1023) << 52);
    double s2 = fx_bits_to_d((uint64_t)(n2 + 1023) << 52);
    double y = p * s1 * s2;
    y = x < lo ? 0.0 : y;
    y = x > hi ? INFINITY : y;
    return y;
}

/*
 * exp for x <= 0 (and NaN), the only arguments a log-sum-exp shifted by the
 * row max produces: no upper clamp, and 2^n (0 >= n >= -127 / -1023 after
 * the lower clamp) is one number built in the exponent bits, so the scale is
 * one multiply and there are no selects after it: a quarter fewer
 * instructions than fx_expf / fx_exp in the hot loops.
 */
FX_INLINE float fx_expf_neg(float x)
{
    /* Clamped at -88, n bottoms out at -127 where the exponent field of the
       scale is 0: the scale is +0.0 and exp(-inf) = 0 exactly, without a
       final select.  (Results below ~1.2e-38 become 0.) */
    const float lo = -88.0f;
    float xc = x < lo ? lo : x;
    int32_t ni;
    float p = fx_expf_split(xc, &ni);
    return p * fx_bits_to_f((uint32_t)(ni + 127) << 23);
}

FX_INLINE double fx_exp_neg(double x)
{
    const double lo = -709.0;   /* n bottoms out at -1023: scale +0.0, as above */
    double xc = x < lo ? lo : x;
    int64_t ni;
    double p = fx_exp_split(xc, &ni);
    return p * fx_bits_to_d((uint64_t)(ni + 1023) << 52);
}

/*
 * log (musl's logf / log, after fdlibm): x = 2^k * m with m in
 * [sqrt(1/2), sqrt(2)), f = m - 1, s = f / (2 + f) and
 * log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), R a minimax polynomial
 * (degree 4 in s for float, 14 for double); k ln2 is added in two parts
 * (hi + lo).  <= 1 ulp on the normal range.  Subnormal inputs are scaled
 * into the normal range first.  Special values by select: log(0) = -inf,
 * log(x < 0) = NaN, log(inf) = inf, NaN -> NaN.
 */
FX_INLINE float fx_logf(float x)
{
    const int tiny = x < 1.17549435e-38f;   /* subnormal (or 0, negative) */
    float xs = tiny ? x * 33554432.0f : x;  /* 2^25 */
    uint32_t ix = fx_f_to_bits(xs) + (0x3f800000u - 0x3f3504f3u);
    int32_t k = (int32_t)(ix >> 23) - 0x7f - (tiny ? 25 : 0);
    float f = fx_bits_to_f((ix & 0x007fffffu) + 0x3f3504f3u) - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float w = z * z;
    float t1 = w * (0.40000972152f + w * 0.24279078841f);
    float t2 = z * (0.66666662693f + w * 0.28498786688f);
    float hfsq = 0.5f * f * f;
    float dk = (float)k;
    float y = s * (hfsq + t2 + t1) + dk * 9.0580006145e-06f - hfsq + f + dk * 6.9313812256e-01f;
    y = x > 0.0f ? y : (x == 0.0f ? -INFINITY : NAN);
    return x == INFINITY ? x : y;
}

FX_INLINE double fx_log(double x)
{
    const int tiny = x < 2.2250738585072014e-308;
    double xs = tiny ? x * 18014398509481984.0 : x;   /* 2^54 */
    uint64_t ix = fx_d_to_bits(xs) + ((uint64_t)(0x3ff00000u - 0x3fe6a09eu) << 32);
    int64_t k = (int64_t)(ix >> 52) - 0x3ff - (tiny ? 54 : 0);
    double f = fx_bits_to_d((ix & 0x000fffffffffffffULL) + ((uint64_t)0x3fe6a09eu << 32)) - 1.0;
    double s = f / (2.0 + f);
    double z = s * s;
    double w = z * z;
    double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
    double t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01
                     + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    double hfsq = 0.5 * f * f;
    double dk = (double)k;
    double y = s * (hfsq + t2 + t1) + dk * 1.90821492927058770002e-10 - hfsq + f
               + dk * 6.93147180369123816490e-01;
    y = x > 0.0 ? y : (x == 0.0 ? -INFINITY : NAN);
    return x == INFINITY ? x : y;
}

#endif /* FX_MATH_H */

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

FX_INLINE float fx_expf(float x)
{
    const float lo = -87.33654f;   /* exp(lo) is the smallest normal float */
    const float hi = 88.72283f;
    const float magic = 12582912.0f;   /* 1.5 * 2^23 */
    float xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    float t = xc * 1.44269504088896341f + magic;
    float n = t - magic;
    /* the low mantissa bits of t hold n as a two's complement integer */
    int32_t ni = (int32_t)(fx_f_to_bits(t) - fx_f_to_bits(magic));
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
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
    const double magic = 6755399441055744.0;   /* 1.5 * 2^52 */
    double xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    double t = xc * 1.4426950408889634 + magic;
    double n = t - magic;
    int64_t ni = (int64_t)(fx_d_to_bits(t) - fx_d_to_bits(magic));
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
    p = p * r * r + r + 1.0;
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
    const float magic = 12582912.0f;
    float xc = x < lo ? lo : x;
    float t = xc * 1.44269504088896341f + magic;
    float n = t - magic;
    int32_t ni = (int32_t)(fx_f_to_bits(t) - fx_f_to_bits(magic));
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * fx_bits_to_f((uint32_t)(ni + 127) << 23);
}

FX_INLINE double fx_exp_neg(double x)
{
    const double lo = -709.0;   /* n bottoms out at -1023: scale +0.0, as above */
    const double magic = 6755399441055744.0;
    double xc = x < lo ? lo : x;
    double t = xc * 1.4426950408889634 + magic;
    double n = t - magic;
    int64_t ni = (int64_t)(fx_d_to_bits(t) - fx_d_to_bits(magic));
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
    p = p * r * r + r + 1.0;
    return p * fx_bits_to_d((uint64_t)(ni + 1023) << 52);
}

#endif /* FX_MATH_H */

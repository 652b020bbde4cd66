/*
 * fx_logistic.h: branch-free log, log1p and softplus for float and double,
 * and the element-wise row loops of the sigmoid / binary losses built on
 * them (fx_logistic_impl.h, instantiated twice below).
 *
 * Why: libm's log/log1p in a loop stops vectorization just as exp does (see
 * fx_math.h), and every sigmoid loss is a softplus per element.
 *
 * log (musl's logf / log, after fdlibm): x = 2^k * m with m in
 * [sqrt(1/2), sqrt(2)), f = m - 1, s = f / (2 + f) and
 * log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), R a minimax polynomial
 * (degree 4 in s for float, 14 for double); k ln2 is added in two parts
 * (hi + lo).  <= 1 ulp on the normal range in musl; here about the same.
 * Subnormal inputs are scaled into the normal range first.  Special values
 * by select: log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, NaN -> NaN.
 *
 * log1p(x) = log(u) + (x - (u - 1)) / u with u = 1 + x rounded: the second
 * term is the first-order correction for the rounding of u, exact enough
 * for x in (-1, 1] (u - 1 is exact there), the only range used here.
 *
 * softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): exp of a
 * non-positive argument only (fx_math.h's fx_expf_neg / fx_exp_neg), log1p
 * of a value in [0, 1]: no overflow for any x, +inf at x = +inf.
 *
 * Build without -ffast-math: the selects rely on IEEE inf and NaN.
 */
#ifndef FX_LOGISTIC_H
#define FX_LOGISTIC_H

#include <Python.h>   /* Py_ssize_t */
#include "fx_math.h"

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

FX_INLINE float fx_log1pf(float x)
{
    float u = 1.0f + x;
    float c = (x - (u - 1.0f)) / u;
    c = (u == 0.0f || u == INFINITY) ? 0.0f : c;
    return fx_logf(u) + c;
}

FX_INLINE double fx_log1p(double x)
{
    double u = 1.0 + x;
    double c = (x - (u - 1.0)) / u;
    c = (u == 0.0 || u == INFINITY) ? 0.0 : c;
    return fx_log(u) + c;
}

/* log1p(exp(-|x|)), the part of softplus(x) and softplus(-x) they share */
FX_INLINE float fx_softplus_tailf(float x)
{
    return fx_log1pf(fx_expf_neg(x < 0.0f ? x : -x));
}

FX_INLINE double fx_softplus_tail(double x)
{
    return fx_log1p(fx_exp_neg(x < 0.0 ? x : -x));
}

/* the probability clip of Keras 3 (backend.epsilon()) */
#define FX_PROB_EPS 1e-7

/* values a block holds: the block's outputs live in local arrays, so the
   loops that compute them vectorize whatever the caller's pointers alias
   (out = the input itself is allowed), then are copied out */
#define FX_BLOCK 256

#define FX_T float
#define FX_SUF f
#define FX_LANES 16
#define FX_EXPNEG fx_expf_neg
#define FX_LOG fx_logf
#define FX_LOG1P fx_log1pf
#include "fx_logistic_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXPNEG
#undef FX_LOG
#undef FX_LOG1P

#define FX_T double
#define FX_SUF d
#define FX_LANES 8
#define FX_EXPNEG fx_exp_neg
#define FX_LOG fx_log
#define FX_LOG1P fx_log1p
#include "fx_logistic_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXPNEG
#undef FX_LOG
#undef FX_LOG1P

#endif /* FX_LOGISTIC_H */

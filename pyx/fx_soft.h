/*
 * fx_soft.h: C primitives of the softmax family beyond the sparse form
 * (soft targets, probabilities, Hessian diagonal, class axis in the middle),
 * for float and double; fx_soft_impl.h is the template, instantiated twice.
 *
 * Row functions take one contiguous row (the Cython loops gather strided rows
 * into scratch first).  Column functions take a tile of `width` positions of
 * an (outer, classes, inner) array at one outer index: x[c * sc + i * si],
 * looping over classes outside and positions inside, so when the inner axis
 * is contiguous (si == 1, PyTorch's (N, C, H, W)) the inner loop is SIMD.
 *
 * Every exp is FX_EXP (x <= 0) of a value minus its max; the only log per
 * element (probabilities) is fx_log_*, branch-free so that it vectorizes.
 */
#ifndef FX_SOFT_H
#define FX_SOFT_H

#include <Python.h>   /* Py_ssize_t */
#include "fx_math.h"

/*
 * Natural log of a positive normal number, branch-free (musl's logf/log:
 * x = 2^k * m with m in [sqrt(1/2), sqrt(2)), log(m) = log(1 + f) from
 * s = f / (2 + f) and a minimax polynomial in s^2; <= 1 ulp).  Zero,
 * subnormal, negative and inf inputs are not handled: callers clip first.
 * NaN in gives NaN out.
 */
FX_INLINE float fx_logf(float x)
{
    const float ln2_hi = 6.9313812256e-01f, ln2_lo = 9.0580006145e-06f;
    const float Lg1 = 0.66666662693f, Lg2 = 0.40000972152f, Lg3 = 0.28498786688f, Lg4 = 0.24279078841f;
    uint32_t ix = fx_f_to_bits(x) + (0x3f800000u - 0x3f3504f3u);
    float k = (float)((int32_t)(ix >> 23) - 0x7f);
    float m = fx_bits_to_f((ix & 0x007fffffu) + 0x3f3504f3u);
    float f = m - 1.0f, s = f / (2.0f + f), z = s * s, w = z * z;
    float r = z * (Lg1 + w * Lg3) + w * (Lg2 + w * Lg4);
    float hfsq = 0.5f * f * f;
    float y = s * (hfsq + r) + k * ln2_lo - hfsq + f + k * ln2_hi;
    return x == x ? y : x;
}

FX_INLINE double fx_log(double x)
{
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                 Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                 Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                 Lg7 = 1.479819860511658591e-01;
    uint64_t u = fx_d_to_bits(x);
    uint32_t hx = (uint32_t)(u >> 32) + (0x3ff00000u - 0x3fe6a09eu);
    double k = (double)((int32_t)(hx >> 20) - 0x3ff);
    hx = (hx & 0x000fffffu) + 0x3fe6a09eu;
    double m = fx_bits_to_d(((uint64_t)hx << 32) | (u & 0xffffffffu));
    double f = m - 1.0, hfsq = 0.5 * f * f, s = f / (2.0 + f), z = s * s, w = z * z;
    double r = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7))) + w * (Lg2 + w * (Lg4 + w * Lg6));
    double y = s * (hfsq + r) + k * ln2_lo - hfsq + f + k * ln2_hi;
    return x == x ? y : x;
}

/* what fx_col_write_* writes */
enum { FX_COL_GRAD = 0, FX_COL_HESS = 1, FX_COL_LOG = 2 };

#define FX_T float
#define FX_SUF f
#define FX_LANES 16
#define FX_EXP fx_expf_neg
#define FX_LOG fx_logf
#include "fx_soft_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXP
#undef FX_LOG

#define FX_T double
#define FX_SUF d
#define FX_LANES 8
#define FX_EXP fx_exp_neg
#define FX_LOG fx_log
#include "fx_soft_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXP
#undef FX_LOG

#endif /* FX_SOFT_H */

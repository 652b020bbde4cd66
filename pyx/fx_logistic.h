/*
 * fx_logistic.h: branch-free log1p and softplus for float and double,
 * and the element-wise row loops of the sigmoid / binary losses built on
 * them (fx_logistic_impl.h, instantiated twice below).
 *
 * Why: libm's log/log1p in a loop stops vectorization just as exp does (see
 * fx_math.h), and every sigmoid loss is a softplus per element.
 *
 * log is fx_math.h's fx_logf / fx_log.
 *
 * log1p(x) = log(u) + (x - (u - 1)) / u with u = 1 + x rounded: the second
 * term is the first-order correction for the rounding of u, exact enough
 * for x in (-1, 1] (u - 1 is exact there), the only range used here.
 * The correction is zeroed where u is 0 or inf by two separate selects:
 * gcc 12 does not vectorize a loop holding the one select on
 * (u == 0 || u == inf) (it folds it into an ordered/unordered compare pair
 * it cannot widen), which left every sigmoid-from-logits loop scalar.
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
#include "fx_rows.h"   /* fx_row_sum_{f,d}: block sums in double */

FX_INLINE float fx_log1pf(float x)
{
    float u = 1.0f + x;
    float c = (x - (u - 1.0f)) / u;
    c = u == 0.0f ? 0.0f : c;
    c = u == INFINITY ? 0.0f : c;
    return fx_logf(u) + c;
}

FX_INLINE double fx_log1p(double x)
{
    double u = 1.0 + x;
    double c = (x - (u - 1.0)) / u;
    c = u == 0.0 ? 0.0 : c;
    c = u == INFINITY ? 0.0 : c;
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
#define FX_EXP fx_expf
#define FX_LOG fx_logf
#define FX_LOG1P fx_log1pf
#include "fx_logistic_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXPNEG
#undef FX_EXP
#undef FX_LOG
#undef FX_LOG1P

#define FX_T double
#define FX_SUF d
#define FX_LANES 8
#define FX_EXPNEG fx_exp_neg
#define FX_EXP fx_exp
#define FX_LOG fx_log
#define FX_LOG1P fx_log1p
#include "fx_logistic_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXPNEG
#undef FX_EXP
#undef FX_LOG
#undef FX_LOG1P

#endif /* FX_LOGISTIC_H */

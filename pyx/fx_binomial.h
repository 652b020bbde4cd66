/*
 * fx_binomial.h: the half binomial loss (logistic loss, sigmoid
 * cross-entropy) of one raw prediction, its gradient and its hessian, in
 * double, branch-free so a loop over samples vectorizes.
 *
 * Every form goes through e = exp(-|raw|) in (0, 1] (fx_exp_neg: never
 * overflows) and the log1p of a number in [0, 1] below, so no libm call sits
 * in the loop.  These are O(rows) computations; double keeps them exact to a
 * few ulp for float32 and float64 inputs alike.
 */
#ifndef FX_BINOMIAL_H
#define FX_BINOMIAL_H

#include "fx_math.h"

/*
 * log(1 + t) for t in [0, 1] (and NaN -> NaN).
 *
 * 1 + t = m * 2^k with k in {0, 1} and m in [1/sqrt2, sqrt2]; then
 * log(1 + t) = k ln2 + 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716, and
 * atanh(s) = s (1 + z/3 + z^2/5 + ...) with z = s^2 <= 0.0295: eleven terms
 * leave a truncation below 1e-18.  s is formed from t directly
 * (t / (t + 2), or (t - 1) / (t + 3) when k = 1), never from the rounded
 * 1 + t, so a tiny t keeps all its digits: log1p(t) -> t.
 */
FX_INLINE double fx_log1p_unit(double t)
{
    const double ln2 = 0.693147180559945309417;
    const int upper = t > 0.41421356237309504880;   /* 1 + t > sqrt2: k = 1 */
    double s = upper ? (t - 1.0) / (t + 3.0) : t / (t + 2.0);
    double z = s * s;
    double p = 1.0 / 21.0;
    p = p * z + 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    p = p * z * s + s;
    return (upper ? ln2 : 0.0) + 2.0 * p;
}

/* log(1 + exp(raw)) - y raw, as max(raw, 0) - y raw + log1p(exp(-|raw|)),
   with the linear part formed first so that y = 1, raw >> 0 gives exactly
   log1p(exp(-raw)) rather than (raw + tiny) - raw */
FX_INLINE double fx_binomial_loss(double raw, double y)
{
    double e = fx_exp_neg(-fabs(raw));
    double linear = raw > 0 ? (1.0 - y) * raw : -y * raw;
    return linear + fx_log1p_unit(e);
}

/* expit(raw) - y without cancellation (scikit-learn's stable form):
   ((1 - y) e - y) / (1 + e) for raw < 0, ((1 - y) - y e) / (1 + e) else */
FX_INLINE double fx_binomial_gradient(double raw, double y)
{
    double e = fx_exp_neg(-fabs(raw));
    double numerator = raw < 0 ? (1.0 - y) * e - y : (1.0 - y) - y * e;
    return numerator / (1.0 + e);
}

/* expit(raw) (1 - expit(raw)) = e / (1 + e)^2 */
FX_INLINE double fx_binomial_hessian(double raw)
{
    double e = fx_exp_neg(-fabs(raw));
    return e / ((1.0 + e) * (1.0 + e));
}

#endif /* FX_BINOMIAL_H */

/*
 * Template of fx_linear.h, instantiated for float (FX_SUF = f) and double
 * (FX_SUF = d).  Include only from fx_linear.h.
 */

#define FX_CAT_(a, b) a##_##b
#define FX_CAT(a, b) FX_CAT_(a, b)
#define FX_FN(name) FX_CAT(name, FX_SUF)

FX_INLINE FX_T FX_FN(fx_tanh)(FX_T z)
{
    FX_T e = FX_EXP((FX_T)-2 * (z < 0 ? -z : z));
    FX_T t = ((FX_T)1 - e) / ((FX_T)1 + e);
    return z < 0 ? -t : t;
}

/* x[j] = cap * tanh(x[j] / cap), in place over x[0:n] */
static void FX_FN(fx_softcap)(FX_T *x, Py_ssize_t n, double cap)
{
    const FX_T c = (FX_T)cap, inv = (FX_T)(1.0 / cap);
    Py_ssize_t j;
    for (j = 0; j < n; j++)
        x[j] = c * FX_FN(fx_tanh)(x[j] * inv);
}

/*
 * The gradient row of a softmax cross-entropy over the (soft-capped) logits
 * s[0:n], in place:
 *     s[j] <- (prob_scale * exp(s[j] - lse) - shift) * (1 - (s[j] * inv_cap)^2)
 * lse is passed as its parts (row max, log of the sum; see fx_rows_impl.h);
 * the last factor is d(cap tanh(x / cap)) / dx written with the capped value
 * itself, and is left out when inv_cap = 0 (no soft-capping).
 */
static void FX_FN(fx_grad_row)(FX_T *s, Py_ssize_t n, double max, double log_sum,
                               double prob_scale, double shift, double inv_cap)
{
    const FX_T m = (FX_T)max, ls = (FX_T)log_sum, a = (FX_T)prob_scale;
    const FX_T b = (FX_T)shift, ic = (FX_T)inv_cap;
    Py_ssize_t j;
    if (inv_cap == 0.0) {
        /* no cap, no factor: t = s * 0 would be NaN for a masked (-inf) logit */
        for (j = 0; j < n; j++)
            s[j] = a * FX_EXP((s[j] - m) - ls) - b;
        return;
    }
    for (j = 0; j < n; j++) {
        FX_T t = s[j] * ic;
        s[j] = (a * FX_EXP((s[j] - m) - ls) - b) * ((FX_T)1 - t * t);
    }
}

/*
 * fx_grad_row without the soft cap for a row kept as exps e[j] = exp(s[j] -
 * m_b) (fx_exp_row, m_b the block's max): exp(s[j] - lse) = e[j] exp(m_b -
 * lse), so  s[j] <- scale * e[j] - shift  with scale = prob_scale *
 * exp(m_b - lse): one multiply per value instead of an exp.
 */
static void FX_FN(fx_grad_row_exps)(FX_T *s, Py_ssize_t n, double scale, double shift)
{
    const FX_T a = (FX_T)scale, b = (FX_T)shift;
    Py_ssize_t j;
    for (j = 0; j < n; j++)
        s[j] = a * s[j] - b;
}

#undef FX_FN
#undef FX_CAT
#undef FX_CAT_

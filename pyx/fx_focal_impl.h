/*
 * Categorical focal rows, instantiated by fx_focal.h for float (FX_SUF f)
 * and double (FX_SUF d).  Include only from fx_focal.h.
 *
 * Class weights are w_j = alpha_j t'_j with t' = keep t + spread (label
 * smoothing); a class whose weight is 0 contributes nothing, even where its
 * logit is -inf.  Row sums use FX_LANES double accumulators, so results do
 * not depend on the SIMD width.
 */

#define FX_CAT_(a, b) a##_##b
#define FX_CAT(a, b) FX_CAT_(a, b)
#define FX_FN(name) FX_CAT(name, FX_SUF)

/*
 * One class from its log-probability l <= 0 and weight w:
 *   loss = w (1 - p)^gamma (-l)
 *   dl   = dloss/dl = w (1 - p)^gamma (gamma p l / (1 - p) - 1)
 * l / (1 - p) -> -1 as p -> 1, so dl is finite and exact at p = 1 for any
 * gamma (written with (1 - p)^(gamma - 1) it would be 0 * inf for gamma < 1).
 * *p = p, *rest = 1 - p.
 */
FX_INLINE void FX_FN(fx_focal_logp_term)(FX_T l, FX_T w, FX_T gamma, FX_T *p, FX_T *rest,
                                         FX_T *loss, FX_T *dl)
{
    FX_T u = FX_EXPNEG(l);
    FX_T q = u == 1 ? -l : (u == 0 ? (FX_T)1 : (1 - u) * (l / FX_LOG(u)));   /* -expm1(l) */
    FX_T focal = gamma == 0 ? (FX_T)1 : FX_EXPNEG(gamma * FX_LOG(q));
    FX_T slope = u == 0 ? (FX_T)0 : gamma * u * (q == 0 ? (FX_T)-1 : l / q);
    *p = u;
    *rest = q;
    *loss = w == 0 ? (FX_T)0 : w * focal * -l;
    *dl = w == 0 ? (FX_T)0 : w * focal * (slope - 1);
}

/*
 * One class from its normalised probability q = y / S, clipped as Keras:
 *   loss = w (1 - c)^gamma (-log c),  c = clip(q, eps, 1 - eps)
 *   dq   = dloss/dq = w (1 - c)^gamma (gamma log c / (1 - c) - 1 / c)
 * inside [eps, 1 - eps] (its closed range, as torch.clamp), 0 outside;
 * 1 - c >= eps, so no power of 0 arises.
 */
FX_INLINE void FX_FN(fx_focal_prob_term)(FX_T q, FX_T w, FX_T gamma, FX_T *loss, FX_T *dq)
{
    const FX_T lo = (FX_T)FX_FOCAL_EPS, hi = (FX_T)(1.0 - FX_FOCAL_EPS);
    FX_T c = q < lo ? lo : (q > hi ? hi : q);
    FX_T log_c = FX_LOG(c), rest = 1 - c;
    FX_T focal = gamma == 0 ? (FX_T)1 : FX_EXPNEG(gamma * FX_LOG(rest));
    int inside = q >= lo && q <= hi;
    *loss = w == 0 ? (FX_T)0 : w * focal * -log_c;
    *dq = (w == 0 || !inside) ? (FX_T)0 : w * focal * (gamma * log_c / rest - 1 / c);
}

/* dense target rows from logits: returns the row's loss; with want_grad,
   grad_j = grad_scale (g_j - p_j G), G = sum_k g_k, written as
   g_j (1 - p_j) - p_j (G - g_j) so a one-hot row's target class is exact */
FX_INLINE double FX_FN(fx_focal_logits_core)(const FX_T *x, const FX_T *t, const double *alpha, Py_ssize_t n,
                                             FX_T max, FX_T log_sum, FX_T keep, FX_T spread, FX_T gamma,
                                             FX_T *grad, FX_T grad_scale, const int want_grad)
{
    double acc[FX_LANES], dacc[FX_LANES];
    double total = 0.0, dtotal = 0.0;
    Py_ssize_t j = 0, l;
#define FX_TERM(k) FX_T p, q, loss, dl;                                                        \
    FX_FN(fx_focal_logp_term)((x[k] - max) - log_sum, (FX_T)alpha[k] * (keep * t[k] + spread), \
                              gamma, &p, &q, &loss, &dl)
    for (l = 0; l < FX_LANES; l++) { acc[l] = 0.0; dacc[l] = 0.0; }
    for (; j + FX_LANES <= n; j += FX_LANES)
        for (l = 0; l < FX_LANES; l++) {
            FX_TERM(j + l);
            acc[l] += (double)loss;
            dacc[l] += (double)dl;
        }
    for (; j < n; j++) {
        FX_TERM(j);
        total += (double)loss;
        dtotal += (double)dl;
    }
    for (l = 0; l < FX_LANES; l++) { total += acc[l]; dtotal += dacc[l]; }
    if (want_grad) {
        const FX_T dsum = (FX_T)dtotal;
        for (j = 0; j < n; j++) {
            FX_TERM(j);
            grad[j] = grad_scale * (dl * q - p * (dsum - dl));
        }
    }
#undef FX_TERM
    return total;
}

/* dense target rows from probabilities: grad_j = grad_scale (h_j - H) / S,
   H = sum_k h_k q_k, h = dloss/dq */
FX_INLINE double FX_FN(fx_focal_probs_core)(const FX_T *y, const FX_T *t, const double *alpha, Py_ssize_t n,
                                            FX_T sum_y, FX_T keep, FX_T spread, FX_T gamma,
                                            FX_T *grad, FX_T grad_scale, const int want_grad)
{
    double acc[FX_LANES], dacc[FX_LANES];
    double total = 0.0, dtotal = 0.0;
    Py_ssize_t j = 0, l;
#define FX_TERM(k) FX_T q = y[k] / sum_y, loss, dq;                                              \
    FX_FN(fx_focal_prob_term)(q, (FX_T)alpha[k] * (keep * t[k] + spread), gamma, &loss, &dq)
    for (l = 0; l < FX_LANES; l++) { acc[l] = 0.0; dacc[l] = 0.0; }
    for (; j + FX_LANES <= n; j += FX_LANES)
        for (l = 0; l < FX_LANES; l++) {
            FX_TERM(j + l);
            acc[l] += (double)loss;
            dacc[l] += (double)(dq * q);
        }
    for (; j < n; j++) {
        FX_TERM(j);
        total += (double)loss;
        dtotal += (double)(dq * q);
    }
    for (l = 0; l < FX_LANES; l++) { total += acc[l]; dtotal += dacc[l]; }
    if (want_grad) {
        /* divided by S last: 1 / S overflows for a row of subnormal probabilities */
        const FX_T dsum = (FX_T)dtotal;
        for (j = 0; j < n; j++) {
            FX_TERM(j);
            grad[j] = grad_scale * ((dq - dsum) / sum_y);
        }
    }
#undef FX_TERM
    return total;
}

/* One row of Keras' categorical focal loss against target row t (logits
   with their log-sum-exp max + log_sum, or probabilities); grad NULL: the
   loss only.  grad may be x or t. */
static double FX_FN(fx_focal_row)(const FX_T *x, const FX_T *t, const double *alpha, Py_ssize_t n,
                                  int from_logits, double max, double log_sum, double sum_y,
                                  double keep, double spread, double gamma, FX_T *grad, double grad_scale)
{
    const FX_T k = (FX_T)keep, s = (FX_T)spread, g = (FX_T)gamma, sc = (FX_T)grad_scale;
    if (from_logits) {
        const FX_T m = (FX_T)max, ls = (FX_T)log_sum;
        if (grad != NULL)
            return FX_FN(fx_focal_logits_core)(x, t, alpha, n, m, ls, k, s, g, grad, sc, 1);
        return FX_FN(fx_focal_logits_core)(x, t, alpha, n, m, ls, k, s, g, NULL, 0, 0);
    }
    if (grad != NULL)
        return FX_FN(fx_focal_probs_core)(x, t, alpha, n, (FX_T)sum_y, k, s, g, grad, sc, 1);
    return FX_FN(fx_focal_probs_core)(x, t, alpha, n, (FX_T)sum_y, k, s, g, NULL, 0, 0);
}

/* One row with an integer label (checked by the caller): the loss of the
   label's class; with grad, the whole row's gradient (grad may be x):
   logits: grad_j = grad_scale g (delta_j - p_j), the label's g (1 - p);
   probabilities: grad_j = grad_scale h (delta_j - q) / S */
static double FX_FN(fx_sparse_focal_row)(const FX_T *x, Py_ssize_t n, Py_ssize_t label, double alpha,
                                         int from_logits, double max, double log_sum, double sum_y,
                                         double gamma, FX_T *grad, double grad_scale)
{
    const FX_T w = (FX_T)alpha, g = (FX_T)gamma, sc = (FX_T)grad_scale;
    FX_T p, q, loss, d;
    Py_ssize_t j;
    if (from_logits) {
        const FX_T m = (FX_T)max, ls = (FX_T)log_sum;
        FX_FN(fx_focal_logp_term)((x[label] - m) - ls, w, g, &p, &q, &loss, &d);
        if (grad != NULL) {
            const FX_T a = -sc * d;
            for (j = 0; j < n; j++)
                grad[j] = a * FX_EXPNEG((x[j] - m) - ls);
            grad[label] = sc * d * q;
        }
        return (double)loss;
    }
    q = x[label] / (FX_T)sum_y;
    FX_FN(fx_focal_prob_term)(q, w, g, &loss, &d);
    if (grad != NULL) {
        /* divided by S last: sc d / S alone can overflow where its product with q does not */
        const FX_T a = sc * d, other = -(a * q) / (FX_T)sum_y;
        for (j = 0; j < n; j++)
            grad[j] = other;
        grad[label] = (a * (1 - q)) / (FX_T)sum_y;
    }
    return (double)loss;
}

#undef FX_FN
#undef FX_CAT
#undef FX_CAT_

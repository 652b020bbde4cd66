/*
 * Element-wise row loops of the sigmoid / binary losses, instantiated by
 * fx_logistic.h for float (FX_SUF = f) and double (FX_SUF = d).  Include
 * only from fx_logistic.h.
 *
 * Each loop walks one contiguous row in blocks of FX_BLOCK: the block's
 * losses (and gradient, Hessian) are computed into local arrays by a loop
 * the compiler vectorizes, then copied to the caller's buffers, which may
 * be the inputs themselves.  Row sums are accumulated in double, in
 * FX_LANES independent lanes (the same order at every SIMD width).
 * Targets are smoothed on the fly: t = target * keep + shift (keep = 1,
 * shift = 0 without label smoothing).
 */

#define FX_CAT_(a, b) a##_##b
#define FX_CAT(a, b) FX_CAT_(a, b)
#define FX_FN(name) FX_CAT(name, FX_SUF)

FX_INLINE void FX_FN(fx_copy)(FX_T *dst, const FX_T *src, Py_ssize_t n)
{
    if (dst != NULL)
        memcpy(dst, src, (size_t)n * sizeof(FX_T));
}

/*
 * Sigmoid cross-entropy with logits x and targets t, weights as PyTorch's
 * BCEWithLogitsLoss (pos_weight per column, weight per element):
 *   loss = w (pw t softplus(-x) + (1 - t) softplus(x))
 *   grad = w (c_neg sigmoid(x) - c_pos sigmoid(-x)) * grad_scale
 *   hess = w (c_pos + c_neg) sigmoid(x) sigmoid(-x) * grad_scale
 * with c_pos = pw t, c_neg = 1 - t.  With pw = w = 1 the loss is TF's
 * max(x, 0) - x t + log1p(exp(-|x|)).  A term whose coefficient is 0 is 0
 * even when its softplus is inf (x = +-inf with a hard target): the limit.
 * grad as c_neg s - c_pos (1 - s), never s - t, so both tails keep their
 * relative precision.  The weight multiplies each coefficient before its
 * softplus, so a term overflows (inf) only where its value does: w = 0.5
 * with pw t = 1.5 and x = -3.4e38 costs 2.6e38 in float32, not inf.
 */
FX_INLINE double FX_FN(fx_sigmoid_core)(Py_ssize_t n, const FX_T *x, const FX_T *t, const FX_T *pw,
                                         const FX_T *w, FX_T keep, FX_T shift, FX_T *loss, FX_T *grad,
                                         FX_T *hess, FX_T grad_scale, const int has_pw, const int has_w,
                                         const int want_grad, const int want_hess)
{
    FX_T block_loss[FX_BLOCK], block_grad[FX_BLOCK], block_hess[FX_BLOCK];
    double total = 0.0;
    Py_ssize_t start, j;
    for (start = 0; start < n; start += FX_BLOCK) {
        Py_ssize_t len = n - start < FX_BLOCK ? n - start : FX_BLOCK;
        const FX_T *xb = x + start, *tb = t + start;
        for (j = 0; j < len; j++) {
            FX_T v = xb[j];
            FX_T e = FX_EXPNEG(v < 0 ? v : -v);
            FX_T tail = FX_LOG1P(e);
            FX_T sp_pos = (v > 0 ? v : 0) + tail;   /* softplus(x) = -log sigmoid(-x) */
            FX_T sp_neg = (v < 0 ? -v : 0) + tail;  /* softplus(-x) = -log sigmoid(x) */
            FX_T target = tb[j] * keep + shift;
            FX_T c_pos = has_pw ? pw[start + j] * target : target;
            FX_T c_neg = 1 - target;
            FX_T weight = has_w ? w[start + j] : (FX_T)1;
            block_loss[j] = (c_pos == 0 ? (FX_T)0 : (weight * c_pos) * sp_neg)
                          + (c_neg == 0 ? (FX_T)0 : (weight * c_neg) * sp_pos);
            if (want_grad || want_hess) {
                FX_T inv = 1 / (1 + e);
                FX_T sig = v >= 0 ? inv : e * inv;
                FX_T sig_neg = v >= 0 ? e * inv : inv;
                FX_T scale = weight * grad_scale;
                if (want_grad)
                    block_grad[j] = scale * (c_neg * sig - c_pos * sig_neg);
                if (want_hess)
                    block_hess[j] = scale * (c_pos + c_neg) * (e * inv * inv);
            }
        }
        total += FX_FN(fx_row_sum)(block_loss, len);
        FX_FN(fx_copy)(loss == NULL ? NULL : loss + start, block_loss, len);
        if (want_grad)
            FX_FN(fx_copy)(grad + start, block_grad, len);
        if (want_hess)
            FX_FN(fx_copy)(hess + start, block_hess, len);
    }
    return total;
}

/* one row: dispatch the NULL-or-not arguments to a specialised loop */
static double FX_FN(fx_sigmoid_row)(Py_ssize_t n, const FX_T *x, const FX_T *t, const FX_T *pw,
                                    const FX_T *w, double keep, double shift, FX_T *loss, FX_T *grad,
                                    FX_T *hess, double grad_scale)
{
    const int flags = (pw != NULL) | (w != NULL) << 1 | (grad != NULL) << 2 | (hess != NULL) << 3;
    const FX_T k = (FX_T)keep, s = (FX_T)shift, g = (FX_T)grad_scale;
#define FX_CASE(F) case F: return FX_FN(fx_sigmoid_core)(n, x, t, pw, w, k, s, loss, grad, hess, g, \
                                   (F) & 1, (F) >> 1 & 1, (F) >> 2 & 1, (F) >> 3 & 1);
    switch (flags) {
        FX_CASE(0) FX_CASE(1) FX_CASE(2) FX_CASE(3) FX_CASE(4) FX_CASE(5) FX_CASE(6) FX_CASE(7)
        FX_CASE(8) FX_CASE(9) FX_CASE(10) FX_CASE(11) FX_CASE(12) FX_CASE(13) FX_CASE(14) FX_CASE(15)
    }
#undef FX_CASE
    return NAN;
}

/*
 * log p and log(1 - p), both clipped to [eps, 1 - eps] the same way, so the
 * loss is symmetric: BCE(t, p) == BCE(1 - t, 1 - p) whenever 1 - p is exact
 * (always for p in [1/2, 1], in particular BCE(0, 1) == BCE(1, 0) =
 * -log(eps)).  Keras clips p once and takes log(1 - clip(p)), which in
 * float32 gives -log(1.19e-7) for p = 1 but -log(1e-7) for p = 0.
 * *inside is 1 where neither side is clipped (the gradient is 0 elsewhere).
 */
FX_INLINE void FX_FN(fx_clipped_logs)(FX_T p, FX_T *log_p, FX_T *log_q, int *inside)
{
    const FX_T eps = (FX_T)FX_PROB_EPS;
    const FX_T log_eps = (FX_T)log((double)eps);
    const FX_T log_1m_eps = (FX_T)log1p(-(double)eps);
    FX_T q = 1 - p;
    int low_p = p < eps, low_q = q < eps;
    *log_p = low_p ? log_eps : (low_q ? log_1m_eps : FX_LOG(p));
    *log_q = low_q ? log_eps : (low_p ? log_1m_eps : FX_LOG1P(-p));
    *inside = !(low_p | low_q);
}

/*
 * Binary cross-entropy from probabilities p, Keras' clipping made symmetric:
 *   loss = -(t log p + (1 - t) log(1 - p)),  grad = ((1 - t)/(1 - p) - t/p) * grad_scale
 */
FX_INLINE double FX_FN(fx_bce_core)(Py_ssize_t n, const FX_T *p, const FX_T *t, FX_T keep, FX_T shift,
                                     FX_T *loss, FX_T *grad, FX_T grad_scale, const int want_grad)
{
    FX_T block_loss[FX_BLOCK], block_grad[FX_BLOCK];
    double total = 0.0;
    Py_ssize_t start, j;
    for (start = 0; start < n; start += FX_BLOCK) {
        Py_ssize_t len = n - start < FX_BLOCK ? n - start : FX_BLOCK;
        const FX_T *pb = p + start, *tb = t + start;
        for (j = 0; j < len; j++) {
            FX_T v = pb[j], log_p, log_q;
            int inside;
            FX_FN(fx_clipped_logs)(v, &log_p, &log_q, &inside);
            FX_T target = tb[j] * keep + shift;
            block_loss[j] = -(target * log_p + (1 - target) * log_q);
            if (want_grad)
                block_grad[j] = inside ? grad_scale * ((1 - target) / (1 - v) - target / v) : (FX_T)0;
        }
        total += FX_FN(fx_row_sum)(block_loss, len);
        FX_FN(fx_copy)(loss == NULL ? NULL : loss + start, block_loss, len);
        if (want_grad)
            FX_FN(fx_copy)(grad + start, block_grad, len);
    }
    return total;
}

static double FX_FN(fx_bce_row)(Py_ssize_t n, const FX_T *p, const FX_T *t, double keep, double shift,
                                FX_T *loss, FX_T *grad, double grad_scale)
{
    if (grad != NULL)
        return FX_FN(fx_bce_core)(n, p, t, (FX_T)keep, (FX_T)shift, loss, grad, (FX_T)grad_scale, 1);
    return FX_FN(fx_bce_core)(n, p, t, (FX_T)keep, (FX_T)shift, loss, NULL, 0, 0);
}

/*
 * Binary focal cross-entropy (Keras: focal = (1 - p_t)^gamma, times
 * alpha t + (1 - alpha)(1 - t) when balanced).
 * From logits everything stays in log space:
 *   bce = t softplus(-x) + (1 - t) softplus(x)
 *   log(1 - p_t) = log(t sigmoid(-x) + (1 - t) sigmoid(x))
 *                = logaddexp(log t - softplus(x), log(1 - t) - softplus(-x))
 * so a large logit gives its exact (tiny) loss, never a clipped 1 - eps.
 * From probabilities bce is the symmetric clipped BCE above and
 * 1 - p_t = t (1 - p) + (1 - t) p, as Keras.
 * (1 - p_t)^gamma = exp(gamma log(1 - p_t)), 1 when gamma = 0 (as pow).
 * A "probability" outside [0, 1] can make 1 - p_t > 1 or < 0: the power is
 * then pow's, exp(gamma log|1 - p_t|) with pow's sign (negative base: the
 * sign of an odd integer gamma, NaN for a non-integer gamma), as Keras'
 * ops.power, and a clipped element's bce term (dbce = 0) adds 0 to the
 * gradient even where the power overflows.
 *
 * Gradient, with miss = 1 - p_t, balance weight b and s = sigmoid(x):
 *   logits: b miss^gamma (dbce/dx + gamma (1 - 2t) bce s (1 - s) / miss),
 *     dbce/dx = (1 - t) s - t (1 - s); s (1 - s) / miss is s or 1 - s for a
 *     hard target and has miss >= min(t, 1 - t) for a soft one: never 0 / 0,
 *     and its product with bce is 0 where it is 0 (a logit of +-inf);
 *   probabilities: b (miss^gamma dbce/dp + gamma (1 - 2t) miss^(gamma-1) bce),
 *     dbce/dp as fx_bce_core (0 where clipped); miss = 0 gives pow's
 *     derivative (0 for gamma > 1, 1 for gamma = 1, inf below).
 */
FX_INLINE double FX_FN(fx_focal_core)(Py_ssize_t n, const FX_T *y_pred, const FX_T *t, FX_T keep, FX_T shift,
                                       FX_T gamma, FX_T alpha, int balance, FX_T *loss, FX_T *grad,
                                       FX_T grad_scale, const int from_logits, const int want_grad)
{
    FX_T block_loss[FX_BLOCK], block_grad[FX_BLOCK];
    double total = 0.0;
    Py_ssize_t start, j;
    /* pow's sign for a negative base (probabilities only): of miss^gamma and miss^(gamma - 1) */
    const int gamma_is_int = floor((double)gamma) == (double)gamma;
    const int gamma_is_odd = gamma_is_int && fmod((double)gamma, 2.0) != 0.0;
    const FX_T sign_focal = gamma_is_int ? (gamma_is_odd ? (FX_T)-1 : (FX_T)1) : (FX_T)NAN;
    const FX_T sign_power = gamma_is_int ? (gamma_is_odd ? (FX_T)1 : (FX_T)-1) : (FX_T)NAN;
    for (start = 0; start < n; start += FX_BLOCK) {
        Py_ssize_t len = n - start < FX_BLOCK ? n - start : FX_BLOCK;
        const FX_T *pb = y_pred + start, *tb = t + start;
        for (j = 0; j < len; j++) {
            FX_T v = pb[j], target = tb[j] * keep + shift, bce, log_miss, focal, dbce = 0, power = 0;
            if (from_logits) {
                FX_T e = FX_EXPNEG(v < 0 ? v : -v);
                FX_T tail = FX_LOG1P(e);
                FX_T sp_pos = (v > 0 ? v : 0) + tail, sp_neg = (v < 0 ? -v : 0) + tail;
                bce = (target == 0 ? (FX_T)0 : target * sp_neg) + (target == 1 ? (FX_T)0 : (1 - target) * sp_pos);
                FX_T a = FX_LOG(target) - sp_pos, b = FX_LOG1P(-target) - sp_neg;
                FX_T hi = a > b ? a : b, lo = a > b ? b : a;
                FX_T d = hi == -INFINITY ? (FX_T)0 : lo - hi;   /* both -inf: no inf - inf */
                log_miss = hi + FX_LOG1P(FX_EXPNEG(d));
                focal = gamma == 0 ? (FX_T)1 : FX_EXPNEG(gamma * log_miss);
                if (want_grad) {
                    FX_T inv = 1 / (1 + e);
                    FX_T sig = v >= 0 ? inv : e * inv, sig_neg = v >= 0 ? e * inv : inv;
                    FX_T miss = target * sig_neg + (1 - target) * sig;
                    FX_T ratio = target == 1 ? sig : (target == 0 ? sig_neg : sig * sig_neg / miss);
                    dbce = (1 - target) * sig - target * sig_neg;
                    power = focal * ratio;
                }
            } else {
                FX_T log_p, log_q;
                int inside;
                FX_FN(fx_clipped_logs)(v, &log_p, &log_q, &inside);
                bce = -(target * log_p + (1 - target) * log_q);
                FX_T miss = target * (1 - v) + (1 - target) * v;
                int negative = miss < 0;
                log_miss = FX_LOG(negative ? -miss : miss);
                /* gamma = 2 (Keras' default) as products: exact, where exp(log) rounds past the max */
                focal = gamma == 0 ? (FX_T)1
                      : (gamma == 2 ? miss * miss : FX_EXP(gamma * log_miss) * (negative ? sign_focal : (FX_T)1));
                if (want_grad) {
                    dbce = inside ? (1 - target) / (1 - v) - target / v : (FX_T)0;
                    power = gamma == 1 ? (FX_T)1
                          : (gamma == 2 ? miss
                                        : FX_EXP((gamma - 1) * log_miss) * (negative ? sign_power : (FX_T)1));
                }
            }
            FX_T balance_w = balance ? alpha * target + (1 - alpha) * (1 - target) : (FX_T)1;
            block_loss[j] = balance_w * focal * bce;
            if (want_grad) {
                /* the scales first: a product overflows only where its value does */
                FX_T scale = grad_scale * balance_w;
                FX_T curve = (gamma == 0 || power == 0) ? (FX_T)0
                                                        : ((scale * gamma * (1 - 2 * target)) * power) * bce;
                block_grad[j] = (dbce == 0 ? (FX_T)0 : (scale * focal) * dbce) + curve;
            }
        }
        total += FX_FN(fx_row_sum)(block_loss, len);
        FX_FN(fx_copy)(loss == NULL ? NULL : loss + start, block_loss, len);
        if (want_grad)
            FX_FN(fx_copy)(grad + start, block_grad, len);
    }
    return total;
}

static double FX_FN(fx_focal_row)(Py_ssize_t n, const FX_T *y_pred, const FX_T *t, double keep, double shift,
                                  double gamma, double alpha, int balance, int from_logits, FX_T *loss,
                                  FX_T *grad, double grad_scale)
{
    const FX_T k = (FX_T)keep, s = (FX_T)shift, g = (FX_T)gamma, a = (FX_T)alpha, sc = (FX_T)grad_scale;
    const int flags = (from_logits != 0) | (grad != NULL) << 1;
#define FX_CASE(F) case F: return FX_FN(fx_focal_core)(n, y_pred, t, k, s, g, a, balance, loss, grad, sc, \
                                                       (F) & 1, (F) >> 1 & 1);
    switch (flags) {
        FX_CASE(0) FX_CASE(1) FX_CASE(2) FX_CASE(3)
    }
#undef FX_CASE
    return NAN;
}

#undef FX_FN
#undef FX_CAT
#undef FX_CAT_

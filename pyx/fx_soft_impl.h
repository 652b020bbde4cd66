/*
 * Softmax-family primitives, instantiated by fx_soft.h for float (FX_SUF f)
 * and double (FX_SUF d).  Include only from fx_soft.h.
 *
 * As in fx_rows_impl.h, row reductions use FX_LANES independent double
 * accumulators, so the result does not depend on the SIMD width.  Column
 * functions are written once with the inner stride as an argument of an
 * always-inline body, called with the constant 1 when the inner axis is
 * contiguous: that copy is the one the compiler vectorizes.
 */

#define FX_CAT_(a, b) a##_##b
#define FX_CAT(a, b) FX_CAT_(a, b)
#define FX_FN(name) FX_CAT(name, FX_SUF)

/* ---- rows ------------------------------------------------------------- */

/* sum_j w_j t_j (max - x_j) and *mass = sum_j w_j t_j (w NULL: w_j = 1).
   A zero target contributes nothing even where x_j = -inf (a masked class). */
static double FX_FN(fx_soft_dot)(const FX_T *x, const FX_T *t, const FX_T *w, Py_ssize_t n,
                                 double max, double *mass)
{
    double acc[FX_LANES], tacc[FX_LANES];
    double total = 0.0, ttotal = 0.0;
    Py_ssize_t j = 0, l;
    for (l = 0; l < FX_LANES; l++) { acc[l] = 0.0; tacc[l] = 0.0; }
    for (; j + FX_LANES <= n; j += FX_LANES)
        for (l = 0; l < FX_LANES; l++) {
            double tw = (double)t[j + l] * (w ? (double)w[j + l] : 1.0);
            double term = tw * (max - (double)x[j + l]);
            acc[l] += tw != 0.0 ? term : 0.0;
            tacc[l] += tw;
        }
    for (; j < n; j++) {
        double tw = (double)t[j] * (w ? (double)w[j] : 1.0);
        total += tw != 0.0 ? tw * (max - (double)x[j]) : 0.0;
        ttotal += tw;
    }
    for (l = 0; l < FX_LANES; l++) { total += acc[l]; ttotal += tacc[l]; }
    *mass = ttotal;
    return total;
}

/* out_j = a * softmax_j - (b * t_j + c) * w_j  (w NULL: w_j = 1); out may be
   x or t: each element is read before it is written */
static void FX_FN(fx_soft_grad)(const FX_T *x, const FX_T *t, const FX_T *w, Py_ssize_t n, FX_T *out,
                                double max, double log_sum, double a, double b, double c)
{
    const FX_T m = (FX_T)max, ls = (FX_T)log_sum, fa = (FX_T)a, fb = (FX_T)b, fc = (FX_T)c;
    Py_ssize_t j;
    if (w) {
        for (j = 0; j < n; j++)
            out[j] = fa * FX_EXP((x[j] - m) - ls) - (fb * t[j] + fc) * w[j];
    } else {
        for (j = 0; j < n; j++)
            out[j] = fa * FX_EXP((x[j] - m) - ls) - (fb * t[j] + fc);
    }
}

/* out_j = a * p_j (1 - p_j), p = softmax(x); out may be x */
static void FX_FN(fx_softmax_hess)(const FX_T *x, Py_ssize_t n, FX_T *out,
                                   double max, double log_sum, double a)
{
    const FX_T m = (FX_T)max, ls = (FX_T)log_sum, fa = (FX_T)a;
    Py_ssize_t j;
    for (j = 0; j < n; j++) {
        FX_T p = FX_EXP((x[j] - m) - ls);
        out[j] = fa * p * ((FX_T)1 - p);
    }
}

/*
 * Keras' categorical cross-entropy from probabilities, one row:
 *   q_j = y_j / sum_y, c_j = clip(q_j, eps, 1 - eps), t'_j = ta t_j + tc,
 *   loss = -sum_j t'_j log(c_j)
 * and *u_dot = sum_j u_j q_j with u_j = t'_j [eps <= q_j <= 1 - eps] / c_j,
 * which the gradient needs (the clip passes a gradient on its closed range,
 * as torch.clamp does).  Computed in the row's precision as Keras does.
 */
static double FX_FN(fx_probs_xent)(const FX_T *y, const FX_T *t, Py_ssize_t n, FX_T sum_y,
                                   double ta, double tc, double *u_dot)
{
    const FX_T lo = (FX_T)1e-7, hi = (FX_T)(1.0 - 1e-7), fa = (FX_T)ta, fc = (FX_T)tc;
    double acc[FX_LANES], uacc[FX_LANES];
    double total = 0.0, utotal = 0.0;
    Py_ssize_t j = 0, l;
    for (l = 0; l < FX_LANES; l++) { acc[l] = 0.0; uacc[l] = 0.0; }
#define FX_PROBS_TERM(k, lossv, uv) {                                      \
        FX_T q = y[k] / sum_y, tt = fa * t[k] + fc;                         \
        FX_T cl = q < lo ? lo : (q > hi ? hi : q);                          \
        lossv += (double)(-tt * FX_LOG(cl));                                \
        uv += (q >= lo && q <= hi) ? (double)(tt / cl * q) : 0.0; }
    for (; j + FX_LANES <= n; j += FX_LANES)
        for (l = 0; l < FX_LANES; l++)
            FX_PROBS_TERM(j + l, acc[l], uacc[l])
    for (; j < n; j++)
        FX_PROBS_TERM(j, total, utotal)
#undef FX_PROBS_TERM
    for (l = 0; l < FX_LANES; l++) { total += acc[l]; utotal += uacc[l]; }
    *u_dot = utotal;
    return total;
}

/* gradient of fx_probs_xent's loss w.r.t. y: out_j = (u_dot - u_j) / sum_y;
   out may be y or t */
static void FX_FN(fx_probs_grad)(const FX_T *y, const FX_T *t, Py_ssize_t n, FX_T *out, FX_T sum_y,
                                 double ta, double tc, double u_dot)
{
    const FX_T lo = (FX_T)1e-7, hi = (FX_T)(1.0 - 1e-7), fa = (FX_T)ta, fc = (FX_T)tc;
    const FX_T ud = (FX_T)u_dot;
    Py_ssize_t j;
    for (j = 0; j < n; j++) {
        FX_T q = y[j] / sum_y, tt = fa * t[j] + fc;
        FX_T cl = q < lo ? lo : (q > hi ? hi : q);
        FX_T u = (q >= lo && q <= hi) ? tt / cl : (FX_T)0;
        out[j] = (ud - u) / sum_y;
    }
}

/* ---- columns: a tile of `width` positions of (outer, classes, inner) --- */

/* m[i] = max_c x[c, i] (NaN skipped, as fx_chunk_max); -inf if all are */
FX_INLINE void FX_FN(fx_col_max_body)(const FX_T *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si,
                                      Py_ssize_t width, FX_T *m)
{
    Py_ssize_t c, i;
    for (i = 0; i < width; i++) m[i] = -INFINITY;
    for (c = 0; c < n_classes; c++)
        for (i = 0; i < width; i++) {
            FX_T v = x[c * sc + i * si];
            m[i] = v > m[i] ? v : m[i];
        }
}

static void FX_FN(fx_col_max)(const FX_T *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si,
                              Py_ssize_t width, FX_T *m)
{
    if (si == 1) FX_FN(fx_col_max_body)(x, n_classes, sc, 1, width, m);
    else FX_FN(fx_col_max_body)(x, n_classes, sc, si, width, m);
}

/* s[i] = sum_c exp(x[c, i] - shift[i]) (shift: the max, 0 where it is -inf) */
FX_INLINE void FX_FN(fx_col_sumexp_body)(const FX_T *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si,
                                         Py_ssize_t width, const FX_T *shift, double *s)
{
    Py_ssize_t c, i;
    for (i = 0; i < width; i++) s[i] = 0.0;
    for (c = 0; c < n_classes; c++)
        for (i = 0; i < width; i++)
            s[i] += (double)FX_EXP(x[c * sc + i * si] - shift[i]);
}

static void FX_FN(fx_col_sumexp)(const FX_T *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si,
                                 Py_ssize_t width, const FX_T *shift, double *s)
{
    if (si == 1) FX_FN(fx_col_sumexp_body)(x, n_classes, sc, 1, width, shift, s);
    else FX_FN(fx_col_sumexp_body)(x, n_classes, sc, si, width, shift, s);
}

/* acc[i] = sum_c w_c t[c, i] (shift[i] - x[c, i]), mass[i] = sum_c w_c t[c, i]
   (t NULL: t = 1, w NULL: w = 1) */
FX_INLINE void FX_FN(fx_col_dot_body)(const FX_T *x, Py_ssize_t sc, Py_ssize_t si,
                                      const FX_T *t, Py_ssize_t tsc, Py_ssize_t tsi,
                                      const FX_T *w, Py_ssize_t n_classes, Py_ssize_t width,
                                      const FX_T *shift, double *acc, double *mass)
{
    Py_ssize_t c, i;
    for (i = 0; i < width; i++) { acc[i] = 0.0; mass[i] = 0.0; }
    for (c = 0; c < n_classes; c++) {
        const double wc = w ? (double)w[c] : 1.0;
        for (i = 0; i < width; i++) {
            double tw = (t ? (double)t[c * tsc + i * tsi] : 1.0) * wc;
            double term = tw * ((double)shift[i] - (double)x[c * sc + i * si]);
            acc[i] += tw != 0.0 ? term : 0.0;
            mass[i] += tw;
        }
    }
}

static void FX_FN(fx_col_dot)(const FX_T *x, Py_ssize_t sc, Py_ssize_t si,
                              const FX_T *t, Py_ssize_t tsc, Py_ssize_t tsi,
                              const FX_T *w, Py_ssize_t n_classes, Py_ssize_t width,
                              const FX_T *shift, double *acc, double *mass)
{
    /* t == NULL gets its own copy: with t a run-time value, gcc vectorizes
       `t ? t[...] : 1` into loads masked by t != NULL, and a masked-off load
       from an address near NULL costs a microcode (fault-suppression)
       assist per vector (the float64 gradient with the class axis in the
       middle measured 2.5-4x slower for it in fx_col_write) */
    if (t == NULL) {
        if (si == 1) FX_FN(fx_col_dot_body)(x, sc, 1, NULL, 0, 0, w, n_classes, width, shift, acc, mass);
        else FX_FN(fx_col_dot_body)(x, sc, si, NULL, 0, 0, w, n_classes, width, shift, acc, mass);
    } else if (si == 1 && tsi == 1) {
        FX_FN(fx_col_dot_body)(x, sc, 1, t, tsc, 1, w, n_classes, width, shift, acc, mass);
    } else {
        FX_FN(fx_col_dot_body)(x, sc, si, t, tsc, tsi, w, n_classes, width, shift, acc, mass);
    }
}

/*
 * out[c, i] = a[i] * softmax[c, i] - (b * t[c, i] + k[i]) * w_c, with
 * softmax = exp((x - shift) - log_sum); t NULL means t = 0, w NULL w = 1.
 * Also the writer of softmax (a = 1, k = 0), the Hessian diagonal
 * (hess: a[i] * p (1 - p)) and log_softmax (log_out).  out may be x or t.
 */
FX_INLINE void FX_FN(fx_col_write_body)(const FX_T *x, Py_ssize_t sc, Py_ssize_t si,
                                        const FX_T *t, Py_ssize_t tsc, Py_ssize_t tsi,
                                        const FX_T *w, Py_ssize_t n_classes, Py_ssize_t width,
                                        FX_T *out, Py_ssize_t osc, Py_ssize_t osi,
                                        const FX_T *shift, const FX_T *log_sum,
                                        const FX_T *a, FX_T b, const FX_T *k, int kind)
{
    Py_ssize_t c, i;
    for (c = 0; c < n_classes; c++) {
        const FX_T wc = w ? w[c] : (FX_T)1;
        for (i = 0; i < width; i++) {
            FX_T z = (x[c * sc + i * si] - shift[i]) - log_sum[i];
            FX_T v;
            if (kind == FX_COL_LOG) {
                v = z;
            } else {
                FX_T p = FX_EXP(z);
                if (kind == FX_COL_HESS)
                    v = a[i] * p * ((FX_T)1 - p);
                else
                    v = a[i] * p - ((t ? b * t[c * tsc + i * tsi] : (FX_T)0) + k[i]) * wc;
            }
            out[c * osc + i * osi] = v;
        }
    }
}

static void FX_FN(fx_col_write)(const FX_T *x, Py_ssize_t sc, Py_ssize_t si,
                                const FX_T *t, Py_ssize_t tsc, Py_ssize_t tsi,
                                const FX_T *w, Py_ssize_t n_classes, Py_ssize_t width,
                                FX_T *out, Py_ssize_t osc, Py_ssize_t osi,
                                const FX_T *shift, const FX_T *log_sum,
                                const FX_T *a, FX_T b, const FX_T *k, int kind)
{
    int unit = si == 1 && osi == 1 && (t == NULL || tsi == 1);
    /* t == NULL as a constant: see fx_col_dot */
#define FX_COL_CALL(K, T)                                                                       \
    if (unit) FX_FN(fx_col_write_body)(x, sc, 1, T, tsc, 1, w, n_classes, width, out, osc, 1,   \
                                       shift, log_sum, a, b, k, K);                             \
    else FX_FN(fx_col_write_body)(x, sc, si, T, tsc, tsi, w, n_classes, width, out, osc, osi,   \
                                  shift, log_sum, a, b, k, K);
    if (kind == FX_COL_LOG) { FX_COL_CALL(FX_COL_LOG, NULL) }
    else if (kind == FX_COL_HESS) { FX_COL_CALL(FX_COL_HESS, NULL) }
    else if (t == NULL) { FX_COL_CALL(FX_COL_GRAD, NULL) }
    else { FX_COL_CALL(FX_COL_GRAD, t) }
#undef FX_COL_CALL
}

#undef FX_FN
#undef FX_CAT
#undef FX_CAT_

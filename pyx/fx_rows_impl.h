/*
 * Per-row primitives over one contiguous row, instantiated by fx_rows.h for
 * float (FX_T = float, FX_SUF = f) and double (FX_SUF = d).  Include only
 * from fx_rows.h.
 *
 * Reductions are written as FX_LANES independent accumulators updated by a
 * fixed-length inner loop: the compiler vectorizes that without being
 * allowed to reassociate floating-point sums (no -ffast-math), and the order
 * of the additions, hence the result, does not depend on the SIMD width.
 */

#define FX_CAT_(a, b) a##_##b
#define FX_CAT(a, b) FX_CAT_(a, b)
#define FX_FN(name) FX_CAT(name, FX_SUF)

/* max of x[0:n]; NaNs are skipped here (they poison the sum instead).
   A max reduction gives the same result in any order, so letting the
   compiler reorder it (omp simd, -fopenmp-simd) is exact; without that
   pragma gcc refuses to vectorize a float max unless -ffinite-math-only. */
FX_INLINE FX_T FX_FN(fx_chunk_max)(const FX_T *x, Py_ssize_t n)
{
    FX_T m = -INFINITY;
    Py_ssize_t j;
#pragma omp simd reduction(max:m)
    for (j = 0; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

/* sum of exp(x[j] - shift) over x[0:n], in the row's precision per lane;
   a chunk is short (FX_CHUNK), the running total is double.  store: the
   exps also replace x's values (inlined with a constant, the test goes
   away; x is written through one pointer, so the loop needs no alias check) */
FX_INLINE double FX_FN(fx_chunk_sumexp)(FX_T *x, Py_ssize_t n, FX_T shift, const int store)
{
    FX_T acc[FX_LANES], e;
    Py_ssize_t j = 0, l;
    double total = 0.0;
    for (l = 0; l < FX_LANES; l++) acc[l] = 0;
    for (; j + FX_LANES <= n; j += FX_LANES)
        for (l = 0; l < FX_LANES; l++) {
            e = FX_EXP(x[j + l] - shift);
            if (store)
                x[j + l] = e;
            acc[l] += e;
        }
    for (; j < n; j++) {
        e = FX_EXP(x[j] - shift);
        if (store)
            x[j] = e;
        total += e;
    }
    for (l = 0; l < FX_LANES; l++) total += acc[l];
    return total;
}

/*
 * Online log-sum-exp of x[0:n] in one read of the row: each chunk's max is
 * found while the chunk sits in L1, the running sum is rescaled when that
 * max beats the running one, then the chunk's exps are added.  Returns the
 * pair (*max, *sum) with lse = max + log(sum); pairs from pieces of a row
 * combine with fx_lse_merge.
 *
 * Special values: a NaN anywhere makes the sum NaN; +inf makes it NaN
 * (inf - inf), as in PyTorch; -inf entries contribute 0; a row of only
 * -inf gives max = -inf, sum = 0, hence lse = -inf.
 */
static void FX_FN(fx_lse_partial)(const FX_T *x, Py_ssize_t n, double *max_out, double *sum_out)
{
    FX_T m = -INFINITY;
    double s = 0.0;
    Py_ssize_t c;
    for (c = 0; c < n; c += FX_CHUNK) {
        Py_ssize_t len = n - c < FX_CHUNK ? n - c : FX_CHUNK;
        FX_T cm = FX_FN(fx_chunk_max)(x + c, len);
        if (cm > m) {
            s *= exp((double)m - (double)cm);
            m = cm;
        }
        /* while every value so far is -inf (or NaN), shift by 0: the -infs
           then add exp(-inf) = 0 and a NaN still adds NaN */
        s += FX_FN(fx_chunk_sumexp)((FX_T *)x + c, len, m == -INFINITY ? (FX_T)0 : m, 0);   /* reads only */
    }
    *max_out = (double)m;
    *sum_out = s;
}

/*
 * fx_lse_partial's pair for a row that is then kept as its exps: *max_out is
 * the row's max and x[j] becomes exp(x[j] - max) in place; returns their sum
 * (the same lanes as fx_lse_partial).  Two reads of the row, not one: meant
 * for a row in L1 or L2 (a block of the fused linear kernel's panel, which
 * turns the exps into the gradient with a multiply, fx_grad_row_exps,
 * instead of a second exp).  Special values as fx_lse_partial; a row of
 * only -inf becomes zeros.
 */
static double FX_FN(fx_exp_row)(FX_T *x, Py_ssize_t n, double *max_out)
{
    FX_T m = FX_FN(fx_chunk_max)(x, n);
    double s = 0.0;
    Py_ssize_t c;
    for (c = 0; c < n; c += FX_CHUNK) {
        Py_ssize_t len = n - c < FX_CHUNK ? n - c : FX_CHUNK;
        s += FX_FN(fx_chunk_sumexp)(x + c, len, m == -INFINITY ? (FX_T)0 : m, 1);
    }
    *max_out = (double)m;
    return s;
}

/* sum of x[0:n] in double (label smoothing needs the row's sum of logits) */
static double FX_FN(fx_row_sum)(const FX_T *x, Py_ssize_t n)
{
    double acc[FX_LANES];
    double total = 0.0;
    Py_ssize_t j = 0, l;
    for (l = 0; l < FX_LANES; l++) acc[l] = 0.0;
    for (; j + FX_LANES <= n; j += FX_LANES)
        for (l = 0; l < FX_LANES; l++)
            acc[l] += (double)x[j + l];
    for (; j < n; j++) total += (double)x[j];
    for (l = 0; l < FX_LANES; l++) total += acc[l];
    return total;
}

/* mean of x[0:n] in double, each value scaled by 1/n before it is added, so
   no partial sum overflows even when the values are near the dtype's max
   (label smoothing needs the row's mean logit) */
static double FX_FN(fx_row_mean)(const FX_T *x, Py_ssize_t n)
{
    double acc[FX_LANES];
    double total = 0.0;
    const double inv_n = 1.0 / (double)n;
    Py_ssize_t j = 0, l;
    for (l = 0; l < FX_LANES; l++) acc[l] = 0.0;
    for (; j + FX_LANES <= n; j += FX_LANES)
        for (l = 0; l < FX_LANES; l++)
            acc[l] += (double)x[j + l] * inv_n;
    for (; j < n; j++) total += (double)x[j] * inv_n;
    for (l = 0; l < FX_LANES; l++) total += acc[l];
    return total;
}

/*
 * The two writers below take lse as its parts (row max, log of the sum):
 * x - max is exact for the large entries and log_sum is small, whereas
 * x - lse in float32 would round lse to the ulp of the logits' magnitude.
 */

/* out[j] = scale * exp(x[j] - lse); out may be x (in place) */
static void FX_FN(fx_row_softmax)(const FX_T *x, Py_ssize_t n, FX_T *out,
                                  double max, double log_sum, double scale)
{
    const FX_T m = (FX_T)max, ls = (FX_T)log_sum, sc = (FX_T)scale;
    Py_ssize_t j;
    for (j = 0; j < n; j++)
        out[j] = sc * FX_EXP((x[j] - m) - ls);
}

/* out[j] = x[j] - lse; out may be x (in place) */
static void FX_FN(fx_row_log_softmax)(const FX_T *x, Py_ssize_t n, FX_T *out,
                                      double max, double log_sum)
{
    const FX_T m = (FX_T)max, ls = (FX_T)log_sum;
    Py_ssize_t j;
    for (j = 0; j < n; j++)
        out[j] = (x[j] - m) - ls;
}

#undef FX_FN
#undef FX_CAT
#undef FX_CAT_

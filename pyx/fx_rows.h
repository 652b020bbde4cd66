/*
 * fx_rows.h: the per-row primitives every kernel is built from, for float
 * and double (fx_rows_impl.h is the template, instantiated twice here).
 *
 * A row is a contiguous run of n values; the Cython loops in pyx/ hand
 * rows to these functions and split rows (or, for very long rows, pieces of
 * a row) between OpenMP threads.  FX_EXP is the x <= 0 exp: every exp here
 * is of a value minus the row's max or log-sum-exp.
 */
#ifndef FX_ROWS_H
#define FX_ROWS_H

#include <Python.h>   /* Py_ssize_t */
#include "fx_math.h"

/* values a chunk holds: 2 KiB of float, 2 KiB of double, well inside L1 */
#define FX_CHUNK 512

#define FX_T float
#define FX_SUF f
#define FX_LANES 16
#define FX_EXP fx_expf_neg
#include "fx_rows_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXP

#define FX_T double
#define FX_SUF d
#define FX_LANES 8
#define FX_EXP fx_exp_neg
#include "fx_rows_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXP

/* combine the (max, sum) pairs of two pieces of one row */
static inline void fx_lse_merge(double *max, double *sum, double other_max, double other_sum)
{
    if (other_max > *max) {
        *sum = *sum * exp(*max - other_max) + other_sum;
        *max = other_max;
    } else if (other_max == *max || other_max != other_max) {
        *sum += other_sum;   /* equal maxima, or NaN: plain add (keeps NaN) */
    } else {
        *sum += other_sum * exp(other_max - *max);
    }
}

#endif /* FX_ROWS_H */

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
 * element (probabilities) is fx_math.h's branch-free fx_logf / fx_log.
 */
#ifndef FX_SOFT_H
#define FX_SOFT_H

#include <Python.h>   /* Py_ssize_t */
#include "fx_math.h"

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

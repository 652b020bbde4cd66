/*
 * fx_focal.h: the categorical focal loss (Keras' categorical_focal_crossentropy
 * and its sparse-label form) and its gradient, one row at a time, for float
 * and double; fx_focal_impl.h is the template, instantiated twice.
 *
 * From logits everything is in log space: l = log p = (x - max) - log_sum,
 * and 1 - p = -expm1(l) by Kahan's formula (1 - u) l / log(u), u = exp(l)
 * rounded, which keeps 1 - p's digits near p = 1 with the vectorized exp and
 * log of fx_math.h (no libm in the per-class loops).
 *
 * The gradient through the softmax: with g_j = dloss/dl_j,
 *   dloss/dx_k = g_k - p_k sum_j g_j,
 * so a row is read once for the log-sum-exp, once for the loss and sum_j g_j,
 * and once more to write the gradient (each element read before it is
 * written: the gradient may overwrite the logits).  From probabilities
 * (rows divided by their sum S, then clipped, as Keras) the same holds with
 * q = y / S: dloss/dy_k = (h_k - sum_j h_j q_j) / S, h_j = dloss/dq_j.
 */
#ifndef FX_FOCAL_H
#define FX_FOCAL_H

#include <Python.h>   /* Py_ssize_t */
#include "fx_math.h"

/* the probability clip of Keras 3 (backend.epsilon()) */
#define FX_FOCAL_EPS 1e-7

#define FX_T float
#define FX_SUF f
#define FX_LANES 16
#define FX_EXPNEG fx_expf_neg
#define FX_LOG fx_logf
#include "fx_focal_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXPNEG
#undef FX_LOG

#define FX_T double
#define FX_SUF d
#define FX_LANES 8
#define FX_EXPNEG fx_exp_neg
#define FX_LOG fx_log
#include "fx_focal_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_LANES
#undef FX_EXPNEG
#undef FX_LOG

#endif /* FX_FOCAL_H */

/*
 * fx_linear.h: the per-row primitives of the fused linear + cross-entropy
 * kernel (pyx/_linear.pyx) that fx_rows.h does not have: logit soft-capping
 * and the gradient row with the soft-cap chain rule.  Float and double, from
 * the template fx_linear_impl.h.
 *
 * tanh(z) = sign(z) (1 - e) / (1 + e), e = exp(-2|z|): one exp of a value
 * <= 0 (fx_exp*_neg) and selects, so loops over it vectorize.  Its absolute
 * error is a few units of the last place of 1 (relative error grows as
 * |z| -> 0, but the soft-capped logit cap * tanh(x / cap) only needs an
 * absolute error small next to 1: that is what the softmax sees).
 */
#ifndef FX_LINEAR_H
#define FX_LINEAR_H

#include <Python.h>   /* Py_ssize_t */
#include "fx_math.h"

#define FX_T float
#define FX_SUF f
#define FX_EXP fx_expf_neg
#include "fx_linear_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_EXP

#define FX_T double
#define FX_SUF d
#define FX_EXP fx_exp_neg
#include "fx_linear_impl.h"
#undef FX_T
#undef FX_SUF
#undef FX_EXP

#endif /* FX_LINEAR_H */

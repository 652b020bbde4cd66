# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""scikit-learn's HalfMultinomialLoss and HalfBinomialLoss over raw
predictions: per-sample losses, gradients, diagonal hessians, probabilities.

Design
a) Multinomial, one row at a time: the row's log-sum-exp in one read
   (row_lse_partial), the loss w (lse - raw[label]) from the label's index,
   then, only if a (rows x classes) output was asked for, the softmax row p
   is written once into the first output (the gradient, else the
   probabilities) and the others are derived from it in the same pass over
   the row while it is in cache: gradient w (p - onehot), hessian diagonal
   w p (1 - p), probabilities p.  The loss is computed before any output is
   written, so an output may be the raw predictions themselves (in place).
b) Sums of exps and the losses are accumulated in double; exps are in the
   raw predictions' dtype.  Losses go to a double (n_rows,) buffer.
c) Threads split the rows (static schedule: rows cost the same).
d) The class axis may have any stride: a row that is not contiguous (or
   whose first output is not) goes through that thread's scratch row
   (n_threads x n_classes, given by the caller only when needed).
e) Binomial: one value per sample, every form computed in double by the
   branch-free functions of fx_binomial.h (no libm in the loop).

Arguments are tagged IN / OUT.  Labels, targets and weights are checked by
the Python layer; a label outside [0, n_classes) still only yields a NaN
row here, never an out-of-range read.
"""
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.math cimport log, NAN

from fx_rows cimport row_lse_partial, row_softmax, gather, scatter

ctypedef fused index_t:
    int
    long long

cdef extern from "fx_binomial.h" nogil:
    double fx_binomial_loss(double raw, double y)
    double fx_binomial_gradient(double raw, double y)
    double fx_binomial_hessian(double raw)
    double fx_log1p_unit(double t)


cdef inline Py_ssize_t class_stride(const floating[:, :] a) noexcept nogil:
    """Stride of the class axis in items (1 for a missing or one-class array)."""
    if a is None or a.shape[1] <= 1:
        return 1
    return a.strides[1] // sizeof(floating)


cdef void multinomial_row(const floating *x,      # IN  one contiguous row of raw predictions
                          Py_ssize_t n_classes,
                          long long label,        # IN  checked again: never read out of range
                          double weight,          # IN  the sample's weight
                          double *loss,           # OUT the weighted loss, or NULL
                          floating *p,            # OUT first output row (contiguous) or NULL; may be x
                          bint p_is_grad,         # IN  p receives the gradient (else probabilities)
                          floating *hess,         # OUT hessian row or NULL
                          Py_ssize_t hess_stride,
                          floating *proba,        # OUT probability row (when p is the gradient) or NULL
                          Py_ssize_t proba_stride) noexcept nogil:
    """loss = w (lse - x[label]); grad = w (p - onehot); hess = w p (1 - p)."""
    cdef double row_max, sum_exp, log_sum
    cdef Py_ssize_t j
    cdef bint derived = hess != NULL or proba != NULL
    if label < 0 or label >= n_classes:
        if loss != NULL:
            loss[0] = NAN
        if p != NULL:
            for j in range(n_classes):
                p[j] = NAN
        return
    row_lse_partial(x, n_classes, &row_max, &sum_exp)
    log_sum = log(sum_exp)
    if loss != NULL:
        # (max - x_t) + log_sum: exact for huge, close raw predictions
        loss[0] = weight * ((row_max - x[label]) + log_sum)
    if p == NULL:
        return
    # the weight goes straight into the softmax when nothing else needs p
    row_softmax(x, n_classes, p, row_max, log_sum, weight if p_is_grad and not derived else 1.0)
    if proba != NULL:
        for j in range(n_classes):
            proba[j * proba_stride] = p[j]
    if hess != NULL:
        for j in range(n_classes):
            hess[j * hess_stride] = <floating>(weight * p[j] * (1.0 - p[j]))
    if p_is_grad:
        if derived:
            for j in range(n_classes):
                p[j] = <floating>(weight * p[j])
        p[label] = p[label] - <floating>weight


def multinomial(const floating[:, :] raw,              # IN  (n_rows, n_classes), any strides
                const index_t[::1] labels,             # IN  (n_rows,), checked by the caller
                const double[::1] sample_weight,       # IN  (n_rows,) or None (all 1)
                double[::1] loss,                      # OUT (n_rows,) weighted losses, or None
                floating[:, :] grad,                   # OUT (n_rows, n_classes) or None; may be raw
                floating[:, :] hess,                   # OUT (n_rows, n_classes) or None; may be raw
                floating[:, :] proba,                  # OUT (n_rows, n_classes) or None; may be raw
                floating[:, ::1] scratch,              # (n_threads, n_classes) when a row needs it, else None
                int n_threads):
    """Any subset of the outputs; `hess` requires `grad`."""
    cdef Py_ssize_t n_rows = raw.shape[0], n_classes = raw.shape[1]
    cdef Py_ssize_t x_stride = class_stride(raw)
    cdef Py_ssize_t hess_stride = class_stride(hess)
    cdef Py_ssize_t proba_stride = class_stride(proba)
    cdef bint want_loss = loss is not None
    cdef bint want_grad = grad is not None
    cdef bint want_hess = hess is not None
    # the first output receives p; the other ones are derived from it
    cdef bint want_p = want_grad or proba is not None
    cdef bint extra_proba = want_grad and proba is not None
    cdef bint has_weight = sample_weight is not None
    cdef Py_ssize_t p_stride
    cdef Py_ssize_t row
    cdef const floating *x
    cdef floating *p
    cdef floating *p_dest
    cdef floating *tmp
    cdef double *row_loss
    cdef double weight
    if n_rows == 0 or n_classes == 0:
        return
    if want_hess and not want_grad:
        raise ValueError("the hessian is computed with the gradient")
    p_stride = class_stride(grad) if want_grad else class_stride(proba)
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            x = &raw[row, 0]
            if x_stride != 1:
                gather(x, x_stride, n_classes, tmp)
                x = tmp
            p_dest = NULL
            if want_grad:
                p_dest = &grad[row, 0]
            elif want_p:
                p_dest = &proba[row, 0]
            p = p_dest
            if want_p and p_stride != 1:
                p = tmp
            weight = sample_weight[row] if has_weight else 1.0
            row_loss = &loss[row] if want_loss else NULL
            multinomial_row(x, n_classes, labels[row], weight, row_loss, p, want_grad,
                            &hess[row, 0] if want_hess else NULL, hess_stride,
                            &proba[row, 0] if extra_proba else NULL, proba_stride)
            if want_p and p != p_dest:
                scatter(p, n_classes, p_dest, p_stride)


def binomial(const floating[:] raw,                  # IN  (n_rows,), any stride
             const double[::1] targets,              # IN  (n_rows,) in [0, 1]
             const double[::1] sample_weight,        # IN  (n_rows,) or None (all 1)
             double[::1] loss,                       # OUT (n_rows,) weighted losses, or None
             floating[:] grad,                       # OUT (n_rows,) or None; may be raw
             floating[:] hess,                       # OUT (n_rows,) or None; may be raw
             int n_threads):
    """loss = w (log(1 + e^raw) - y raw); grad = w (expit(raw) - y);
    hess = w expit(raw) (1 - expit(raw))."""
    cdef Py_ssize_t n_rows = raw.shape[0], row
    cdef bint want_loss = loss is not None
    cdef bint want_grad = grad is not None
    cdef bint want_hess = hess is not None
    cdef bint has_weight = sample_weight is not None
    cdef double r, y, weight
    if n_rows == 0:
        return
    with nogil:
        for row in prange(n_rows, schedule='static', num_threads=n_threads):
            r = raw[row]    # read before any output overwrites it (in place)
            y = targets[row]
            weight = sample_weight[row] if has_weight else 1.0
            if want_loss:
                loss[row] = weight * fx_binomial_loss(r, y)
            if want_grad:
                grad[row] = <floating>(weight * fx_binomial_gradient(r, y))
            if want_hess:
                hess[row] = <floating>(weight * fx_binomial_hessian(r))


def log1p_values(const double[::1] t,     # IN  values in [0, 1]
                 double[::1] out):        # OUT
    """out = log1p(t) with the vectorizable log1p the binomial kernel uses;
    for the accuracy tests."""
    cdef Py_ssize_t j
    with nogil:
        for j in range(t.shape[0]):
            out[j] = fx_log1p_unit(t[j])

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Sigmoid cross-entropy, binary cross-entropy and binary focal loss.

Design
a) Element-wise losses over a (rows, cols) walk of the caller's buffers:
   the Python layer views any input as 2-D without copying (a contiguous
   array of any shape as rows of fixed length; an N-D array as
   (prod(leading), last); stride-0 broadcast weights as they come).  The
   per-row sums are what the Keras forms need (the mean over the last axis)
   and what the other reductions add up, in double.
b) The maths is in fx_logistic.h: softplus(x) = max(x, 0) +
   log1p(exp(-|x|)) with a vectorizable exp and log1p, so nothing
   overflows for any |x|; rows are processed in blocks computed into local
   arrays (vectorized whatever the outputs alias) then copied out, so
   out= may be the input itself.
c) Threads split the rows (static schedule: rows cost the same).  Row
   sums do not depend on the thread count.
d) A row whose elements are not contiguous (a column slice, a transposed
   array, a broadcast weight) is gathered into the thread's scratch row
   (n_threads x SLOTS*cols, given by the caller) and its outputs scattered
   back, as in _sparse.

Arguments are tagged IN / OUT.  Nothing here knows about Python objects
beyond typed memoryviews; validation and defaults live in fastxent/.
"""
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid

from fx_rows cimport gather, scatter

cdef extern from "fx_logistic.h" nogil:
    float fx_logf(float x)
    double fx_log(double x)
    float fx_log1pf(float x)
    double fx_log1p(double x)
    float fx_softplus_tailf(float x)
    double fx_softplus_tail(double x)
    double fx_sigmoid_row_f(Py_ssize_t n, const float *x, const float *t, const float *pw, const float *w,
                            double keep, double shift, float *loss, float *grad, float *hess,
                            double grad_scale)
    double fx_sigmoid_row_d(Py_ssize_t n, const double *x, const double *t, const double *pw,
                            const double *w, double keep, double shift, double *loss, double *grad,
                            double *hess, double grad_scale)
    double fx_bce_row_f(Py_ssize_t n, const float *p, const float *t, double keep, double shift,
                        float *loss, float *grad, double grad_scale)
    double fx_bce_row_d(Py_ssize_t n, const double *p, const double *t, double keep, double shift,
                        double *loss, double *grad, double grad_scale)
    double fx_focal_row_f(Py_ssize_t n, const float *y_pred, const float *t, double keep, double shift,
                          double gamma, double alpha, int balance, int from_logits, float *loss, float *grad,
                          double grad_scale)
    double fx_focal_row_d(Py_ssize_t n, const double *y_pred, const double *t, double keep, double shift,
                          double gamma, double alpha, int balance, int from_logits, double *loss,
                          double *grad, double grad_scale)

# scratch rows a thread may need: inputs (2, + weight) and outputs (loss, grad, hess)
SLOTS = 6


cdef inline const floating *row_in(const floating[:, :] a, Py_ssize_t row, floating *slot) noexcept nogil:
    """Row `row` of `a` as a contiguous pointer: in place, or gathered into `slot`."""
    if a.shape[1] <= 1 or a.strides[1] == sizeof(floating):
        return &a[row, 0]
    gather(&a[row, 0], a.strides[1] // <Py_ssize_t>sizeof(floating), a.shape[1], slot)
    return slot


cdef inline floating *row_out(floating[:, :] a, Py_ssize_t row, floating *slot) noexcept nogil:
    """Where row `row` of output `a` is written: in place, or `slot` (then scatter_out)."""
    if a.shape[1] <= 1 or a.strides[1] == sizeof(floating):
        return &a[row, 0]
    return slot


cdef inline void scatter_out(floating[:, :] a, Py_ssize_t row, const floating *slot) noexcept nogil:
    if a.shape[1] <= 1 or a.strides[1] == sizeof(floating):
        return
    scatter(slot, a.shape[1], &a[row, 0], a.strides[1] // <Py_ssize_t>sizeof(floating))


# the element-wise losses binary_rows computes
cdef enum:
    ROWS_SIGMOID   # sigmoid cross-entropy of logits (fx_sigmoid_row: pos_weight, weight, Hessian)
    ROWS_BCE       # binary cross-entropy of probabilities (fx_bce_row)
    ROWS_FOCAL     # binary focal loss of probabilities or logits (fx_focal_row)

SIGMOID = ROWS_SIGMOID
BCE = ROWS_BCE
FOCAL = ROWS_FOCAL


cdef inline double loss_row(int kind, Py_ssize_t n, const floating *x, const floating *t,
                            const floating *pw, const floating *w, double keep, double shift,
                            double gamma, double alpha, bint balance, bint from_logits,
                            floating *loss, floating *grad, floating *hess, double grad_scale) noexcept nogil:
    if floating is float:
        if kind == ROWS_SIGMOID:
            return fx_sigmoid_row_f(n, x, t, pw, w, keep, shift, loss, grad, hess, grad_scale)
        if kind == ROWS_FOCAL:
            return fx_focal_row_f(n, x, t, keep, shift, gamma, alpha, balance, from_logits, loss, grad,
                                  grad_scale)
        return fx_bce_row_f(n, x, t, keep, shift, loss, grad, grad_scale)
    else:
        if kind == ROWS_SIGMOID:
            return fx_sigmoid_row_d(n, x, t, pw, w, keep, shift, loss, grad, hess, grad_scale)
        if kind == ROWS_FOCAL:
            return fx_focal_row_d(n, x, t, keep, shift, gamma, alpha, balance, from_logits, loss, grad,
                                  grad_scale)
        return fx_bce_row_d(n, x, t, keep, shift, loss, grad, grad_scale)


def binary_rows(int kind,                          # SIGMOID, BCE or FOCAL
                const floating[:, :] y_pred,       # IN  logits (SIGMOID; FOCAL from_logits) or probabilities,
                                                   #     (n_rows, n_cols), any strides
                const floating[:, :] targets,      # IN  same shape, any strides
                const floating[::1] pos_weight,    # IN  (n_cols,) or None (SIGMOID only)
                const floating[:, :] weight,       # IN  same shape (strides may be 0) or None (SIGMOID only)
                double keep, double shift,         # targets become targets * keep + shift
                double gamma, double alpha, bint balance, bint from_logits,   # FOCAL only
                floating[:, :] loss,               # OUT element-wise losses or None
                double[::1] row_loss,              # OUT (n_rows,) sum of each row's losses
                floating[:, :] grad,               # OUT gradient w.r.t. y_pred or None; may be y_pred
                floating[:, :] hess,               # OUT diagonal Hessian or None (SIGMOID only)
                double grad_scale,
                floating[:, ::1] scratch,          # (n_threads, SLOTS * n_cols) if any stride != 1, else None
                int n_threads):
    """An element-wise binary loss (and its gradient, and for SIGMOID its
    diagonal Hessian) row by row, with each row's sum."""
    cdef Py_ssize_t n_rows = y_pred.shape[0], n_cols = y_pred.shape[1], row
    cdef bint want_loss = loss is not None, want_grad = grad is not None, want_hess = hess is not None
    cdef bint has_w = weight is not None
    cdef const floating *pw = &pos_weight[0] if pos_weight is not None and n_cols > 0 else NULL
    cdef const floating *x
    cdef const floating *t
    cdef const floating *w
    cdef floating *l
    cdef floating *g
    cdef floating *h
    cdef floating *tmp
    if n_rows == 0 or n_cols == 0:
        row_loss[:] = 0.0
        return
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            x = row_in(y_pred, row, tmp)
            t = row_in(targets, row, tmp + n_cols)
            w = row_in(weight, row, tmp + 2 * n_cols) if has_w else NULL
            l = row_out(loss, row, tmp + 3 * n_cols) if want_loss else NULL
            g = row_out(grad, row, tmp + 4 * n_cols) if want_grad else NULL
            h = row_out(hess, row, tmp + 5 * n_cols) if want_hess else NULL
            row_loss[row] = loss_row(kind, n_cols, x, t, pw, w, keep, shift, gamma, alpha, balance,
                                     from_logits, l, g, h, grad_scale)
            if want_loss:
                scatter_out(loss, row, l)
            if want_grad:
                scatter_out(grad, row, g)
            if want_hess:
                scatter_out(hess, row, h)


def math_values(const floating[::1] x,   # IN
                floating[::1] out,       # OUT
                str which):
    """out = log(x), log1p(x) or log1p(exp(-|x|)) ("log", "log1p",
    "softplus_tail") with the vectorized functions the kernels use; for the
    accuracy tests."""
    cdef Py_ssize_t j
    cdef int kind = {"log": 0, "log1p": 1, "softplus_tail": 2}[which]
    with nogil:
        for j in range(x.shape[0]):
            if floating is float:
                out[j] = fx_logf(x[j]) if kind == 0 else (fx_log1pf(x[j]) if kind == 1
                                                          else fx_softplus_tailf(x[j]))
            else:
                out[j] = fx_log(x[j]) if kind == 0 else (fx_log1p(x[j]) if kind == 1
                                                         else fx_softplus_tail(x[j]))

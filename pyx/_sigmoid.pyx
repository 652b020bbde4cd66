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
    cdef Py_ssize_t n = a.shape[1], stride, j
    cdef const floating *src = &a[row, 0]
    if n <= 1 or a.strides[1] == sizeof(floating):
        return src
    stride = a.strides[1] // <Py_ssize_t>sizeof(floating)
    for j in range(n):
        slot[j] = src[j * stride]
    return slot


cdef inline floating *row_out(floating[:, :] a, Py_ssize_t row, floating *slot) noexcept nogil:
    """Where row `row` of output `a` is written: in place, or `slot` (then scatter_out)."""
    if a.shape[1] <= 1 or a.strides[1] == sizeof(floating):
        return &a[row, 0]
    return slot


cdef inline void scatter_out(floating[:, :] a, Py_ssize_t row, const floating *slot) noexcept nogil:
    cdef Py_ssize_t n = a.shape[1], stride, j
    cdef floating *dst = &a[row, 0]
    if n <= 1 or a.strides[1] == sizeof(floating):
        return
    stride = a.strides[1] // <Py_ssize_t>sizeof(floating)
    for j in range(n):
        dst[j * stride] = slot[j]


def sigmoid_xent(const floating[:, :] logits,      # IN  (n_rows, n_cols), any strides
                 const floating[:, :] targets,     # IN  same shape, any strides
                 const floating[::1] pos_weight,   # IN  (n_cols,) or None
                 const floating[:, :] weight,      # IN  same shape (strides may be 0) or None
                 double keep, double shift,        # targets become targets * keep + shift
                 floating[:, :] loss,              # OUT element-wise losses or None
                 double[::1] row_loss,             # OUT (n_rows,) sum of each row's losses
                 floating[:, :] grad,              # OUT gradient or None; may be logits
                 floating[:, :] hess,              # OUT diagonal Hessian or None
                 double grad_scale,
                 floating[:, ::1] scratch,         # (n_threads, SLOTS * n_cols) if any stride != 1, else None
                 int n_threads):
    cdef Py_ssize_t n_rows = logits.shape[0], n_cols = logits.shape[1], row
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
            x = row_in(logits, row, tmp)
            t = row_in(targets, row, tmp + n_cols)
            w = row_in(weight, row, tmp + 2 * n_cols) if has_w else NULL
            l = row_out(loss, row, tmp + 3 * n_cols) if want_loss else NULL
            g = row_out(grad, row, tmp + 4 * n_cols) if want_grad else NULL
            h = row_out(hess, row, tmp + 5 * n_cols) if want_hess else NULL
            if floating is float:
                row_loss[row] = fx_sigmoid_row_f(n_cols, x, t, pw, w, keep, shift, l, g, h, grad_scale)
            else:
                row_loss[row] = fx_sigmoid_row_d(n_cols, x, t, pw, w, keep, shift, l, g, h, grad_scale)
            if want_loss:
                scatter_out(loss, row, l)
            if want_grad:
                scatter_out(grad, row, g)
            if want_hess:
                scatter_out(hess, row, h)


def binary_rows(const floating[:, :] y_pred,     # IN  probabilities (or logits, focal only), (n_rows, n_cols)
                const floating[:, :] targets,    # IN  same shape
                double keep, double shift,
                bint focal,                      # focal loss (gamma, alpha, balance, from_logits), else BCE
                double gamma, double alpha, bint balance, bint from_logits,
                floating[:, :] loss,             # OUT element-wise losses or None
                double[::1] row_loss,            # OUT (n_rows,)
                floating[:, :] grad,             # OUT gradient w.r.t. y_pred or None; may be y_pred
                double grad_scale,
                floating[:, ::1] scratch,
                int n_threads):
    """Binary cross-entropy of probabilities (fx_bce_row) or the binary focal
    loss (fx_focal_row), row by row."""
    cdef Py_ssize_t n_rows = y_pred.shape[0], n_cols = y_pred.shape[1], row
    cdef bint want_loss = loss is not None, want_grad = grad is not None
    cdef const floating *p
    cdef const floating *t
    cdef floating *l
    cdef floating *g
    cdef floating *tmp
    if n_rows == 0 or n_cols == 0:
        row_loss[:] = 0.0
        return
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            p = row_in(y_pred, row, tmp)
            t = row_in(targets, row, tmp + n_cols)
            l = row_out(loss, row, tmp + 3 * n_cols) if want_loss else NULL
            g = row_out(grad, row, tmp + 4 * n_cols) if want_grad else NULL
            if floating is float:
                if focal:
                    row_loss[row] = fx_focal_row_f(n_cols, p, t, keep, shift, gamma, alpha, balance,
                                                   from_logits, l, g, grad_scale)
                else:
                    row_loss[row] = fx_bce_row_f(n_cols, p, t, keep, shift, l, g, grad_scale)
            else:
                if focal:
                    row_loss[row] = fx_focal_row_d(n_cols, p, t, keep, shift, gamma, alpha, balance,
                                                   from_logits, l, g, grad_scale)
                else:
                    row_loss[row] = fx_bce_row_d(n_cols, p, t, keep, shift, l, g, grad_scale)
            if want_loss:
                scatter_out(loss, row, l)
            if want_grad:
                scatter_out(grad, row, g)


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

# Declarations of the categorical focal rows (fx_focal.h) and fused-type
# inline wrappers, so the kernels in _softmax.pyx are written once.
from cython cimport floating

cdef extern from "fx_focal.h" nogil:
    double fx_focal_row_f(const float *x, const float *t, const double *alpha, Py_ssize_t n, int from_logits,
                          double max, double log_sum, double sum_y, double keep, double spread, double gamma,
                          float *grad, double grad_scale)
    double fx_focal_row_d(const double *x, const double *t, const double *alpha, Py_ssize_t n,
                          int from_logits, double max, double log_sum, double sum_y, double keep,
                          double spread, double gamma, double *grad, double grad_scale)
    double fx_sparse_focal_row_f(const float *x, Py_ssize_t n, Py_ssize_t label, double alpha, int from_logits,
                                 double max, double log_sum, double sum_y, double gamma, float *grad,
                                 double grad_scale)
    double fx_sparse_focal_row_d(const double *x, Py_ssize_t n, Py_ssize_t label, double alpha,
                                 int from_logits, double max, double log_sum, double sum_y, double gamma,
                                 double *grad, double grad_scale)


cdef inline double focal_row(const floating *x, const floating *t, const double *alpha, Py_ssize_t n,
                             bint from_logits, double max, double log_sum, double sum_y, double keep,
                             double spread, double gamma, floating *grad, double grad_scale) noexcept nogil:
    if floating is float:
        return fx_focal_row_f(x, t, alpha, n, from_logits, max, log_sum, sum_y, keep, spread, gamma, grad,
                              grad_scale)
    else:
        return fx_focal_row_d(x, t, alpha, n, from_logits, max, log_sum, sum_y, keep, spread, gamma, grad,
                              grad_scale)


cdef inline double sparse_focal_row(const floating *x, Py_ssize_t n, Py_ssize_t label, double alpha,
                                    bint from_logits, double max, double log_sum, double sum_y, double gamma,
                                    floating *grad, double grad_scale) noexcept nogil:
    if floating is float:
        return fx_sparse_focal_row_f(x, n, label, alpha, from_logits, max, log_sum, sum_y, gamma, grad,
                                     grad_scale)
    else:
        return fx_sparse_focal_row_d(x, n, label, alpha, from_logits, max, log_sum, sum_y, gamma, grad,
                                     grad_scale)

# Declarations of the C row primitives (fx_rows.h) and fused-type inline
# wrappers, so the kernels are written once for float and double; and the
# copies between a strided row and a thread's contiguous scratch row.
from cython cimport floating

cdef extern from "fx_rows.h" nogil:
    void fx_lse_partial_f(const float *x, Py_ssize_t n, double *max_out, double *sum_out)
    void fx_lse_partial_d(const double *x, Py_ssize_t n, double *max_out, double *sum_out)
    double fx_exp_row_f(float *x, Py_ssize_t n, double *max_out)
    double fx_exp_row_d(double *x, Py_ssize_t n, double *max_out)
    double fx_row_sum_f(const float *x, Py_ssize_t n)
    double fx_row_sum_d(const double *x, Py_ssize_t n)
    double fx_row_mean_f(const float *x, Py_ssize_t n)
    double fx_row_mean_d(const double *x, Py_ssize_t n)
    void fx_row_softmax_f(const float *x, Py_ssize_t n, float *out, double max, double log_sum, double scale)
    void fx_row_softmax_d(const double *x, Py_ssize_t n, double *out, double max, double log_sum, double scale)
    void fx_row_log_softmax_f(const float *x, Py_ssize_t n, float *out, double max, double log_sum)
    void fx_row_log_softmax_d(const double *x, Py_ssize_t n, double *out, double max, double log_sum)
    void fx_lse_merge(double *max, double *sum, double other_max, double other_sum)
    float fx_expf(float x)
    double fx_exp(double x)
    float fx_expf_neg(float x)
    double fx_exp_neg(double x)


cdef inline void row_lse_partial(const floating *x, Py_ssize_t n, double *max_out, double *sum_out) noexcept nogil:
    if floating is float:
        fx_lse_partial_f(x, n, max_out, sum_out)
    else:
        fx_lse_partial_d(x, n, max_out, sum_out)


cdef inline double row_exps(floating *x, Py_ssize_t n, double *max_out) noexcept nogil:
    if floating is float:
        return fx_exp_row_f(x, n, max_out)
    else:
        return fx_exp_row_d(x, n, max_out)


cdef inline double row_sum(const floating *x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fx_row_sum_f(x, n)
    else:
        return fx_row_sum_d(x, n)


cdef inline double row_mean(const floating *x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fx_row_mean_f(x, n)
    else:
        return fx_row_mean_d(x, n)


cdef inline void row_softmax(const floating *x, Py_ssize_t n, floating *out,
                             double max, double log_sum, double scale) noexcept nogil:
    if floating is float:
        fx_row_softmax_f(x, n, out, max, log_sum, scale)
    else:
        fx_row_softmax_d(x, n, out, max, log_sum, scale)


cdef inline void row_log_softmax(const floating *x, Py_ssize_t n, floating *out,
                                 double max, double log_sum) noexcept nogil:
    if floating is float:
        fx_row_log_softmax_f(x, n, out, max, log_sum)
    else:
        fx_row_log_softmax_d(x, n, out, max, log_sum)


cdef inline void gather(const floating *src, Py_ssize_t stride, Py_ssize_t n, floating *dst) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        dst[j] = src[j * stride]


cdef inline void scatter(const floating *src, Py_ssize_t n, floating *dst, Py_ssize_t stride) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        dst[j * stride] = src[j]


cdef inline double weights_total(const floating *weight, Py_ssize_t n) noexcept nogil:
    """The sum of n class weights, in double."""
    cdef double total = 0.0
    cdef Py_ssize_t j
    for j in range(n):
        total += weight[j]
    return total

# Declarations of the softmax-family C primitives (fx_soft.h) and fused-type
# inline wrappers, so the kernels in _softmax.pyx are written once.
from cython cimport floating

cdef extern from "fx_soft.h" nogil:
    enum:
        FX_COL_GRAD
        FX_COL_HESS
        FX_COL_LOG
    float fx_logf(float x)
    double fx_log(double x)
    double fx_soft_dot_f(const float *x, const float *t, const float *w, Py_ssize_t n, double max, double *mass)
    double fx_soft_dot_d(const double *x, const double *t, const double *w, Py_ssize_t n, double max, double *mass)
    void fx_soft_grad_f(const float *x, const float *t, const float *w, Py_ssize_t n, float *out,
                        double max, double log_sum, double a, double b, double c)
    void fx_soft_grad_d(const double *x, const double *t, const double *w, Py_ssize_t n, double *out,
                        double max, double log_sum, double a, double b, double c)
    void fx_softmax_hess_f(const float *x, Py_ssize_t n, float *out, double max, double log_sum, double a)
    void fx_softmax_hess_d(const double *x, Py_ssize_t n, double *out, double max, double log_sum, double a)
    double fx_probs_xent_f(const float *y, const float *t, Py_ssize_t n, float sum_y, double ta, double tc,
                           double *u_dot)
    double fx_probs_xent_d(const double *y, const double *t, Py_ssize_t n, double sum_y, double ta, double tc,
                           double *u_dot)
    void fx_probs_grad_f(const float *y, const float *t, Py_ssize_t n, float *out, float sum_y,
                         double ta, double tc, double u_dot)
    void fx_probs_grad_d(const double *y, const double *t, Py_ssize_t n, double *out, double sum_y,
                         double ta, double tc, double u_dot)
    void fx_col_max_f(const float *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si, Py_ssize_t width,
                      float *m)
    void fx_col_max_d(const double *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si, Py_ssize_t width,
                      double *m)
    void fx_col_sumexp_f(const float *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si,
                         Py_ssize_t width, const float *shift, double *s)
    void fx_col_sumexp_d(const double *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si,
                         Py_ssize_t width, const double *shift, double *s)
    void fx_col_dot_f(const float *x, Py_ssize_t sc, Py_ssize_t si, const float *t, Py_ssize_t tsc,
                      Py_ssize_t tsi, const float *w, Py_ssize_t n_classes, Py_ssize_t width,
                      const float *shift, double *acc, double *mass)
    void fx_col_dot_d(const double *x, Py_ssize_t sc, Py_ssize_t si, const double *t, Py_ssize_t tsc,
                      Py_ssize_t tsi, const double *w, Py_ssize_t n_classes, Py_ssize_t width,
                      const double *shift, double *acc, double *mass)
    void fx_col_write_f(const float *x, Py_ssize_t sc, Py_ssize_t si, const float *t, Py_ssize_t tsc,
                        Py_ssize_t tsi, const float *w, Py_ssize_t n_classes, Py_ssize_t width,
                        float *out, Py_ssize_t osc, Py_ssize_t osi, const float *shift,
                        const float *log_sum, const float *a, float b, const float *k, int kind)
    void fx_col_write_d(const double *x, Py_ssize_t sc, Py_ssize_t si, const double *t, Py_ssize_t tsc,
                        Py_ssize_t tsi, const double *w, Py_ssize_t n_classes, Py_ssize_t width,
                        double *out, Py_ssize_t osc, Py_ssize_t osi, const double *shift,
                        const double *log_sum, const double *a, double b, const double *k, int kind)


cdef inline double soft_dot(const floating *x, const floating *t, const floating *w, Py_ssize_t n,
                            double max, double *mass) noexcept nogil:
    if floating is float:
        return fx_soft_dot_f(x, t, w, n, max, mass)
    else:
        return fx_soft_dot_d(x, t, w, n, max, mass)


cdef inline void soft_grad(const floating *x, const floating *t, const floating *w, Py_ssize_t n,
                           floating *out, double max, double log_sum, double a, double b,
                           double c) noexcept nogil:
    if floating is float:
        fx_soft_grad_f(x, t, w, n, out, max, log_sum, a, b, c)
    else:
        fx_soft_grad_d(x, t, w, n, out, max, log_sum, a, b, c)


cdef inline void softmax_hess(const floating *x, Py_ssize_t n, floating *out, double max,
                              double log_sum, double a) noexcept nogil:
    if floating is float:
        fx_softmax_hess_f(x, n, out, max, log_sum, a)
    else:
        fx_softmax_hess_d(x, n, out, max, log_sum, a)


cdef inline double probs_xent(const floating *y, const floating *t, Py_ssize_t n, floating sum_y,
                              double ta, double tc, double *u_dot) noexcept nogil:
    if floating is float:
        return fx_probs_xent_f(y, t, n, sum_y, ta, tc, u_dot)
    else:
        return fx_probs_xent_d(y, t, n, sum_y, ta, tc, u_dot)


cdef inline void probs_grad(const floating *y, const floating *t, Py_ssize_t n, floating *out,
                            floating sum_y, double ta, double tc, double u_dot) noexcept nogil:
    if floating is float:
        fx_probs_grad_f(y, t, n, out, sum_y, ta, tc, u_dot)
    else:
        fx_probs_grad_d(y, t, n, out, sum_y, ta, tc, u_dot)


cdef inline void col_max(const floating *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si,
                         Py_ssize_t width, floating *m) noexcept nogil:
    if floating is float:
        fx_col_max_f(x, n_classes, sc, si, width, m)
    else:
        fx_col_max_d(x, n_classes, sc, si, width, m)


cdef inline void col_sumexp(const floating *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si,
                            Py_ssize_t width, const floating *shift, double *s) noexcept nogil:
    if floating is float:
        fx_col_sumexp_f(x, n_classes, sc, si, width, shift, s)
    else:
        fx_col_sumexp_d(x, n_classes, sc, si, width, shift, s)


cdef inline void col_dot(const floating *x, Py_ssize_t sc, Py_ssize_t si, const floating *t,
                         Py_ssize_t tsc, Py_ssize_t tsi, const floating *w, Py_ssize_t n_classes,
                         Py_ssize_t width, const floating *shift, double *acc, double *mass) noexcept nogil:
    if floating is float:
        fx_col_dot_f(x, sc, si, t, tsc, tsi, w, n_classes, width, shift, acc, mass)
    else:
        fx_col_dot_d(x, sc, si, t, tsc, tsi, w, n_classes, width, shift, acc, mass)


cdef inline void col_write(const floating *x, Py_ssize_t sc, Py_ssize_t si, const floating *t,
                           Py_ssize_t tsc, Py_ssize_t tsi, const floating *w, Py_ssize_t n_classes,
                           Py_ssize_t width, floating *out, Py_ssize_t osc, Py_ssize_t osi,
                           const floating *shift, const floating *log_sum, const floating *a,
                           floating b, const floating *k, int kind) noexcept nogil:
    if floating is float:
        fx_col_write_f(x, sc, si, t, tsc, tsi, w, n_classes, width, out, osc, osi, shift, log_sum,
                       a, b, k, kind)
    else:
        fx_col_write_d(x, sc, si, t, tsc, tsi, w, n_classes, width, out, osc, osi, shift, log_sum,
                       a, b, k, kind)

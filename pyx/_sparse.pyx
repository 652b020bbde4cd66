# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Softmax cross-entropy from integer labels, and the log-sum-exp family.

Design
a) One row at a time, straight from the caller's buffers: the row's
   log-sum-exp is found in one read (fx_lse_partial: chunked online max and
   sum of exp), the target logit is gathered by index; no one-hot row, no
   softmax row, no (rows x classes) array exists unless the caller asked for
   the gradient or the softmax itself.
b) Sums of exps and the per-row losses are accumulated in double whatever
   the logits' dtype; the exps themselves are computed in the logits' dtype,
   which is what makes float32 twice as wide in SIMD.
c) Threads split the rows (static schedule: rows cost the same).  When there
   are fewer rows than threads and the rows are long (an inference server
   scoring one sequence against a huge vocabulary), threads split each row's
   classes instead and the partial (max, sum) pairs are merged.
d) The class axis may have any stride: a row that is not contiguous is
   gathered into that thread's scratch row (n_threads x n_classes, given by
   the caller), processed there, and its gradient scattered back.
e) Labels are checked before anything is read with them (check_labels); the
   row kernel checks again, so even a misuse of this module never turns a
   label into an out-of-bounds read.

Arguments are tagged IN / OUT.  Nothing here knows about Python objects
beyond typed memoryviews; validation and defaults live in fastxent/.
"""
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.math cimport log, NAN, INFINITY

from fx_rows cimport (row_lse_partial, row_mean, row_softmax, row_log_softmax, fx_lse_merge,
                      fx_expf, fx_exp, fx_expf_neg, fx_exp_neg, gather, scatter, weights_total)

ctypedef fused index_t:
    int
    long long

cdef extern from *:
    """
    #ifndef FX_ISA_NAME
    #define FX_ISA_NAME "unknown"
    #endif
    """
    const char *FX_ISA_NAME

ISA = FX_ISA_NAME.decode()

# Below this many classes a row is never split between threads: the pieces
# would be too short to pay for the thread start-up.
cdef enum:
    SPLIT_MIN_CLASSES = 32768


def check_labels(const index_t[::1] labels,      # IN (n_rows,)
                 Py_ssize_t n_classes,
                 bint has_ignore, long long ignore_index):
    """Return (first row whose label is outside [0, n_classes) and is not
    ignore_index, or -1; number of rows not ignored)."""
    cdef Py_ssize_t row, n_valid = 0
    cdef long long label
    with nogil:
        for row in range(labels.shape[0]):
            label = labels[row]
            if has_ignore and label == ignore_index:
                continue
            if label < 0 or label >= n_classes:
                with gil:
                    return row, n_valid
            n_valid += 1
    return -1, n_valid


cdef double sparse_row(const floating *x,          # IN  one contiguous row of logits
                       Py_ssize_t n_classes,
                       long long label,            # IN  checked again: never read out of range
                       const floating *weight,     # IN  class weights or NULL
                       double weight_sum,          # IN  sum of weight (n_classes if NULL)
                       double smoothing,
                       floating *grad,             # OUT gradient row or NULL; may be x
                       double grad_scale) noexcept nogil:
    """Loss of one row (weighted, smoothed as PyTorch), gradient on request.

    loss = (1 - eps) w_t (lse - x_t) + eps / C * sum_j w_j (lse - x_j)
    grad_j = scale * [(1 - eps) w_t + eps / C * W] softmax_j
             - scale * (1 - eps) w_t [j == t] - scale * eps / C * w_j
    """
    cdef double row_max, sum_exp, log_sum, w_target, loss, coef
    cdef double smooth_mass = smoothing / n_classes
    cdef Py_ssize_t j
    if label < 0 or label >= n_classes:
        if grad != NULL:
            for j in range(n_classes):
                grad[j] = NAN
        return NAN
    row_lse_partial(x, n_classes, &row_max, &sum_exp)
    log_sum = log(sum_exp)
    w_target = weight[label] if weight != NULL else 1.0
    # lse - x_t as (max - x_t) + log_sum: exact when the logits are huge and
    # close together, where max + log_sum would absorb log_sum
    loss = (1.0 - smoothing) * w_target * ((row_max - x[label]) + log_sum)
    if smoothing != 0.0:
        if weight != NULL:
            # halves are exact and their difference cannot overflow, even for
            # logits near the float64 max
            coef = 0.0
            for j in range(n_classes):
                coef = coef + (2.0 * smooth_mass * weight[j]) * (0.5 * row_max - 0.5 * x[j])
            loss = loss + coef + smooth_mass * weight_sum * log_sum
        else:
            loss = loss + smoothing * ((row_max - row_mean(x, n_classes)) + log_sum)
    if grad != NULL:
        coef = (1.0 - smoothing) * w_target + smooth_mass * weight_sum
        row_softmax(x, n_classes, grad, row_max, log_sum, grad_scale * coef)
        grad[label] = grad[label] - <floating>(grad_scale * (1.0 - smoothing) * w_target)
        if smoothing != 0.0:
            if weight != NULL:
                for j in range(n_classes):
                    grad[j] = grad[j] - <floating>(grad_scale * smooth_mass * weight[j])
            else:
                for j in range(n_classes):
                    grad[j] = grad[j] - <floating>(grad_scale * smooth_mass)
    return loss


cdef inline double sparse_strided_row(const floating[:, :] logits, Py_ssize_t row, long long label,
                                      bint has_ignore, long long ignore_index,
                                      const floating *weight, double weight_sum, double smoothing,
                                      floating[:, :] grad,   # OUT or None; may be logits
                                      double grad_scale,
                                      floating *tmp          # a scratch row, or NULL if both are contiguous
                                      ) noexcept nogil:
    """sparse_row on row `row` of logits and grad, through the scratch row
    when either is strided along the classes."""
    cdef Py_ssize_t n_classes = logits.shape[1], j
    cdef bint want_grad = grad is not None
    cdef const floating *x
    cdef floating *g
    cdef double loss
    if has_ignore and label == ignore_index:
        if want_grad:
            for j in range(n_classes):
                grad[row, j] = 0
        return 0.0
    x = &logits[row, 0]
    g = &grad[row, 0] if want_grad else NULL
    if tmp != NULL:
        gather(x, logits.strides[1] // sizeof(floating), n_classes, tmp)
        x = tmp
        g = tmp if want_grad else NULL
    loss = sparse_row(x, n_classes, label, weight, weight_sum, smoothing, g, grad_scale)
    if tmp != NULL and want_grad:
        scatter(tmp, n_classes, &grad[row, 0], grad.strides[1] // sizeof(floating))
    return loss


def sparse_xent(const floating[:, :] logits,        # IN  (n_rows, n_classes), any strides
                const index_t[::1] labels,          # IN  (n_rows,), checked by check_labels
                bint has_ignore, long long ignore_index,
                const floating[::1] class_weight,   # IN  (n_classes,) or None
                double smoothing,
                double[::1] loss,                   # OUT (n_rows,) per-row losses
                floating[:, :] grad,                # OUT (n_rows, n_classes) or None; may be logits
                double grad_scale,
                floating[:, ::1] scratch,           # (n_threads, n_classes) if a stride is not 1, else None
                int n_threads):
    """Fill `loss` (and `grad` when given); return the sum of `loss`."""
    cdef Py_ssize_t n_rows = logits.shape[0], n_classes = logits.shape[1]
    cdef const floating *weight = NULL
    cdef double weight_sum = n_classes
    cdef Py_ssize_t row
    cdef floating *tmp
    if n_rows == 0 or n_classes == 0:
        return 0.0
    if class_weight is not None:
        weight = &class_weight[0]
        weight_sum = weights_total(weight, n_classes)
    if n_rows < n_threads and scratch is None and n_classes >= SPLIT_MIN_CLASSES:
        for row in range(n_rows):
            loss[row] = sparse_row_split(logits, row, labels[row], has_ignore, ignore_index,
                                         weight, weight_sum, smoothing, grad, grad_scale, n_threads)
        return sum_rows(loss)
    if n_threads == 1:
        # no parallel region: its start-up is a measurable part of a small call
        with nogil:
            tmp = &scratch[0, 0] if scratch is not None else NULL
            for row in range(n_rows):
                loss[row] = sparse_strided_row(logits, row, labels[row], has_ignore, ignore_index, weight,
                                               weight_sum, smoothing, grad, grad_scale, tmp)
        return sum_rows(loss)
    with nogil, parallel(num_threads=n_threads):
        tmp = NULL
        if scratch is not None:
            tmp = &scratch[threadid(), 0]
        for row in prange(n_rows, schedule='static'):
            loss[row] = sparse_strided_row(logits, row, labels[row], has_ignore, ignore_index, weight,
                                           weight_sum, smoothing, grad, grad_scale, tmp)
    return sum_rows(loss)


cdef double sum_rows(const double[::1] loss) noexcept:
    """Serial sum of the per-row losses: the same for any thread count."""
    cdef double total = 0.0
    cdef Py_ssize_t row
    for row in range(loss.shape[0]):
        total += loss[row]
    return total


cdef double sparse_row_split(const floating[:, :] logits, Py_ssize_t row, long long label,
                             bint has_ignore, long long ignore_index,
                             const floating *weight, double weight_sum, double smoothing,
                             floating[:, :] grad, double grad_scale, int n_threads) noexcept:
    """One contiguous row's loss (and gradient) with its classes split
    between n_threads threads; used when rows are fewer than threads."""
    cdef Py_ssize_t n_classes = logits.shape[1]
    cdef Py_ssize_t piece = (n_classes + n_threads - 1) // n_threads
    cdef Py_ssize_t part, start, stop, j
    cdef double maxes[256]
    cdef double sums[256]
    cdef double row_max, sum_exp, log_sum, total, w_target, coef
    cdef double smooth_mass = smoothing / n_classes
    cdef const floating *x = &logits[row, 0]
    cdef bint want_grad = grad is not None
    cdef floating *g = &grad[row, 0] if want_grad else NULL
    if has_ignore and label == ignore_index:
        if want_grad:
            for j in range(n_classes):
                g[j] = 0
        return 0.0
    if label < 0 or label >= n_classes or n_threads > 256 or (weight != NULL and smoothing != 0.0):
        # rare combinations take the one-thread path
        return sparse_row(x, n_classes, label, weight, weight_sum, smoothing, g, grad_scale)
    with nogil:
        for part in prange(n_threads, num_threads=n_threads, schedule='static'):
            start = part * piece
            stop = min(start + piece, n_classes)
            maxes[part] = -1.0 / 0.0
            sums[part] = 0.0
            if start < stop:
                row_lse_partial(x + start, stop - start, &maxes[part], &sums[part])
        row_max = maxes[0]
        sum_exp = sums[0]
        for part in range(1, n_threads):
            fx_lse_merge(&row_max, &sum_exp, maxes[part], sums[part])
        log_sum = log(sum_exp)
        w_target = weight[label] if weight != NULL else 1.0
        total = (1.0 - smoothing) * w_target * ((row_max - x[label]) + log_sum)
        if smoothing != 0.0:
            total = total + smoothing * ((row_max - row_mean(x, n_classes)) + log_sum)
        if want_grad:
            coef = (1.0 - smoothing) * w_target + smooth_mass * weight_sum
            for part in prange(n_threads, num_threads=n_threads, schedule='static'):
                start = part * piece
                stop = min(start + piece, n_classes)
                if start < stop:
                    row_softmax(x + start, stop - start, g + start, row_max, log_sum, grad_scale * coef)
                    if smoothing != 0.0:
                        for j in range(start, stop):
                            g[j] = g[j] - <floating>(grad_scale * smooth_mass)
            g[label] = g[label] - <floating>(grad_scale * (1.0 - smoothing) * w_target)
    return total


cdef inline double row_logsumexp(const floating *x, Py_ssize_t n) noexcept nogil:
    # the (max, sum) pair lives in this call's frame: private to its thread
    cdef double row_max, sum_exp
    row_lse_partial(x, n, &row_max, &sum_exp)
    cdef Py_ssize_t j
    if row_max == INFINITY:
        # as numpy / torch.logsumexp: +inf unless a NaN is there too (the
        # losses stay NaN: inf - inf); a rare path, so a plain scan
        for j in range(n):
            if x[j] != x[j]:
                return NAN
        return INFINITY
    return row_max + log(sum_exp)


def logsumexp_rows(const floating[:, :] x,          # IN  (n_rows, n_classes)
                   floating[::1] lse,                # OUT (n_rows,)
                   floating[:, ::1] scratch, int n_threads):
    cdef Py_ssize_t n_rows = x.shape[0], n_classes = x.shape[1]
    cdef Py_ssize_t stride = x.strides[1] // sizeof(floating) if n_classes > 1 else 1
    cdef Py_ssize_t row
    cdef const floating *p
    cdef floating *tmp
    if n_rows == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            p = &x[row, 0] if n_classes > 0 else NULL
            if stride != 1:
                gather(p, stride, n_classes, tmp)
                p = tmp
            lse[row] = <floating>row_logsumexp(p, n_classes)


def exp_values(const floating[::1] x,     # IN
               floating[::1] out,         # OUT
               bint nonpositive):
    """out = exp(x) with the vectorized exp the kernels use (the x <= 0
    variant when `nonpositive`); for the accuracy tests."""
    cdef Py_ssize_t j
    with nogil:
        for j in range(x.shape[0]):
            if floating is float:
                out[j] = fx_expf_neg(x[j]) if nonpositive else fx_expf(x[j])
            else:
                out[j] = fx_exp_neg(x[j]) if nonpositive else fx_exp(x[j])

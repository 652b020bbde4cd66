# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The softmax family beyond integer labels: soft targets, probabilities
(Keras' categorical forms), the Hessian diagonal, softmax / log-softmax, and
every form with the class axis in the middle (PyTorch's (N, C, d1, ...)).

Design
a) Rows (class axis last, any strides): as pyx/_sparse.pyx, one row at a
   time from the caller's buffers; the log-sum-exp in one read
   (row_lse_partial), then one more read that dots the targets with
   (max - logits), so loss = dot + mass * log_sum with mass = sum_j w_j t_j:
   no softmax row, no log-probability row, no (rows x classes) temporary.
   A row whose class axis is not contiguous is gathered into the thread's
   scratch row(s) (n_threads x 2 x n_classes: logits and targets).
b) Columns (class axis in the middle of (outer, classes, inner)): positions
   of the inner axis are processed in tiles of `tile` positions; per tile,
   one pass over the classes finds each position's max, a second sums the
   exps, a third (only when asked) writes the gradient / softmax.  Loops run
   over classes outside and positions inside, so a contiguous inner axis is
   SIMD; a tile (classes x tile values) is sized by the caller to stay in
   cache between the passes.  Scratch is O(threads x tile), never O(rows).
c) Sums of exps, dot products and per-row (per-position) losses are
   accumulated in double; exps and the written values in the input's dtype.
d) Threads split rows (or (outer, tile) pairs) with a static schedule.
e) Labels are checked by the caller (fastxent._validate); the kernels
   check again before any label is used as an index.

Arguments are tagged IN / OUT.  Validation and defaults live in fastxent/.
"""
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.math cimport log, isfinite, NAN, INFINITY

from fx_rows cimport (row_lse_partial, row_mean, row_sum, row_softmax, row_log_softmax, gather, scatter,
                     weights_total)
from fx_focal cimport focal_row, sparse_focal_row
from fx_soft cimport (soft_dot, soft_grad, softmax_hess, probs_xent as row_probs_xent, probs_grad as row_probs_grad,
                      col_max, col_sumexp, col_dot, col_write, FX_COL_GRAD, FX_COL_HESS, FX_COL_LOG)

ctypedef fused index_t:
    int
    long long

# clip bounds of Keras' probability forms (keras.backend.epsilon())
cdef double EPSILON = 1e-7


cdef inline const floating *row_in(const floating *p, Py_ssize_t stride, Py_ssize_t n,
                                   floating *tmp) noexcept nogil:
    """The row at p as a contiguous pointer: p itself, or gathered into tmp."""
    if stride == 1:
        return p
    gather(p, stride, n, tmp)
    return tmp


cdef inline Py_ssize_t class_stride(Py_ssize_t n_classes, Py_ssize_t stride_bytes, Py_ssize_t itemsize) noexcept:
    return stride_bytes // itemsize if n_classes > 1 else 1


# ---- rows: class axis last ---------------------------------------------------------------

def soft_xent(const floating[:, :] logits,         # IN  (n_rows, n_classes), any strides
              const floating[:, :] targets,        # IN  (n_rows, n_classes), any strides
              const floating[::1] class_weight,    # IN  (n_classes,) or None
              double smoothing,
              double[::1] loss,                    # OUT (n_rows,) per-row losses
              double[::1] mass,                    # OUT (n_rows,) smoothed weighted target mass, or None
              floating[:, :] grad,                 # OUT (n_rows, n_classes) or None; may be logits or targets
              double grad_scale,
              floating[:, ::1] scratch,            # (n_threads, 2 * n_classes) if a stride is not 1
              int n_threads):
    """loss = sum_j w_j t'_j (lse - x_j) with t' = (1 - eps) t + eps / C;
    grad = scale * (sum_j w_j t'_j) softmax - scale * w t'."""
    cdef Py_ssize_t n_rows = logits.shape[0], n_classes = logits.shape[1]
    cdef Py_ssize_t xs = class_stride(n_classes, logits.strides[1], sizeof(floating))
    cdef Py_ssize_t ts = class_stride(n_classes, targets.strides[1], sizeof(floating))
    cdef Py_ssize_t gs = 1
    cdef bint want_grad = grad is not None, want_mass = mass is not None
    cdef const floating *weight = NULL
    cdef double weight_sum = n_classes, keep = 1.0 - smoothing, spread = 0.0
    cdef double row_max, sum_exp, log_sum, dot, t_mass, smooth_dot, unused, row_mass
    cdef Py_ssize_t row
    cdef const floating *x
    cdef const floating *t
    cdef floating *g
    cdef floating *tmp
    if n_rows == 0:
        return
    if n_classes == 0:
        loss[:] = 0.0
        if want_mass:
            mass[:] = 0.0
        return
    spread = smoothing / n_classes
    if want_grad and n_classes > 1:
        gs = grad.strides[1] // sizeof(floating)
    if class_weight is not None:
        weight = &class_weight[0]
        weight_sum = weights_total(weight, n_classes)
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            # assigned here so that each thread has its own (their addresses are passed below)
            row_max = 0.0
            sum_exp = 0.0
            t_mass = 0.0
            unused = 0.0
            x = row_in(&logits[row, 0], xs, n_classes, tmp)
            t = row_in(&targets[row, 0], ts, n_classes, tmp + n_classes if tmp != NULL else NULL)
            row_lse_partial(x, n_classes, &row_max, &sum_exp)
            log_sum = log(sum_exp)
            dot = soft_dot(x, t, weight, n_classes, row_max, &t_mass)
            row_mass = keep * t_mass
            dot = keep * dot
            if smoothing != 0.0:
                # eps / C * sum_j w_j (max - x_j): the targets' uniform part
                if weight != NULL:
                    smooth_dot = soft_dot(x, weight, <const floating *>NULL, n_classes, row_max, &unused)
                else:
                    smooth_dot = n_classes * (row_max - row_mean(x, n_classes))
                dot = dot + spread * smooth_dot
                row_mass = row_mass + spread * weight_sum
            # lse - x_j as (max - x_j) + log_sum (exact for huge, close logits)
            loss[row] = dot + row_mass * log_sum
            if want_mass:
                mass[row] = row_mass
            if want_grad:
                g = &grad[row, 0]
                if gs != 1:
                    g = tmp      # x and t were read from tmp or the caller: overwrite is safe
                soft_grad(x, t, weight, n_classes, g, row_max, log_sum, grad_scale * row_mass,
                          grad_scale * keep, grad_scale * spread)
                if gs != 1:
                    scatter(tmp, n_classes, &grad[row, 0], gs)


def softmax_hessian(const floating[:, :] logits,   # IN  (n_rows, n_classes), any strides
                    const double[::1] mass,        # IN  (n_rows,) each row's target mass (0: ignored)
                    double scale,
                    floating[:, :] hess,           # OUT (n_rows, n_classes); may be logits
                    floating[:, ::1] scratch,      # (n_threads, n_classes) if a stride is not 1
                    int n_threads):
    """hess = scale * mass_row * p (1 - p), the diagonal of the Hessian of
    mass * lse(x) - <t, x> with respect to the logits."""
    cdef Py_ssize_t n_rows = logits.shape[0], n_classes = logits.shape[1]
    cdef Py_ssize_t xs = class_stride(n_classes, logits.strides[1], sizeof(floating))
    cdef Py_ssize_t hs = class_stride(n_classes, hess.strides[1], sizeof(floating))
    cdef Py_ssize_t row, j
    cdef double row_max, sum_exp
    cdef const floating *x
    cdef floating *h
    cdef floating *tmp
    if n_rows == 0 or n_classes == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            # assigned here so that each thread has its own (their addresses are passed below)
            row_max = 0.0
            sum_exp = 0.0
            if mass[row] == 0.0:
                for j in range(n_classes):
                    hess[row, j] = 0
                continue
            x = row_in(&logits[row, 0], xs, n_classes, tmp)
            h = tmp if hs != 1 else &hess[row, 0]
            row_lse_partial(x, n_classes, &row_max, &sum_exp)
            softmax_hess(x, n_classes, h, row_max, log(sum_exp), scale * mass[row])
            if hs != 1:
                scatter(tmp, n_classes, &hess[row, 0], hs)


def softmax_rows(const floating[:, :] x,          # IN  (n_rows, n_classes), any strides
                 floating[:, :] out,              # OUT (n_rows, n_classes); may be x
                 bint log_space,                  # log_softmax instead of softmax
                 floating[:, ::1] scratch,        # (n_threads, n_classes) if a stride is not 1
                 int n_threads):
    cdef Py_ssize_t n_rows = x.shape[0], n_classes = x.shape[1]
    cdef Py_ssize_t xs = class_stride(n_classes, x.strides[1], sizeof(floating))
    cdef Py_ssize_t os = class_stride(n_classes, out.strides[1], sizeof(floating))
    cdef Py_ssize_t row
    cdef double row_max, sum_exp
    cdef const floating *p
    cdef floating *o
    cdef floating *tmp
    if n_rows == 0 or n_classes == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            # assigned here so that each thread has its own (their addresses are passed below)
            row_max = 0.0
            sum_exp = 0.0
            p = row_in(&x[row, 0], xs, n_classes, tmp)
            o = tmp if os != 1 else &out[row, 0]
            row_lse_partial(p, n_classes, &row_max, &sum_exp)
            if log_space:
                row_log_softmax(p, n_classes, o, row_max, log(sum_exp))
            else:
                row_softmax(p, n_classes, o, row_max, log(sum_exp), 1.0)
            if os != 1:
                scatter(tmp, n_classes, &out[row, 0], os)


cdef inline bint not_a_distribution(floating sum_y) noexcept nogil:
    """Keras' probability forms divide a row by its sum: a sum of 0, NaN, +-inf
    or beyond the dtype's range (a row holding NaN or +-inf, or huge values)
    normalizes nothing, and the row is NaN (loss and gradient)."""
    return sum_y == 0 or not isfinite(sum_y)


cdef inline void nan_row(double[::1] loss, floating[:, :] grad, Py_ssize_t row, Py_ssize_t n_classes,
                         bint want_grad) noexcept nogil:
    cdef Py_ssize_t j
    loss[row] = NAN
    if want_grad:
        for j in range(n_classes):
            grad[row, j] = NAN


def probs_xent(const floating[:, :] probs,        # IN  (n_rows, n_classes), any strides
               const floating[:, :] targets,      # IN  (n_rows, n_classes), any strides
               double smoothing,
               double[::1] loss,                  # OUT (n_rows,)
               floating[:, :] grad,               # OUT (n_rows, n_classes) or None; may be probs or targets
               double grad_scale,
               floating[:, ::1] scratch,          # (n_threads, 2 * n_classes) if a stride is not 1
               int n_threads):
    """Keras' categorical cross-entropy from probabilities: rows divided by
    their sum, clipped to [1e-7, 1 - 1e-7], targets smoothed toward 1 / C;
    the gradient is with respect to the (unnormalized) probabilities."""
    cdef Py_ssize_t n_rows = probs.shape[0], n_classes = probs.shape[1]
    cdef Py_ssize_t ys = class_stride(n_classes, probs.strides[1], sizeof(floating))
    cdef Py_ssize_t ts = class_stride(n_classes, targets.strides[1], sizeof(floating))
    cdef Py_ssize_t gs = 1
    cdef bint want_grad = grad is not None
    cdef double keep = 1.0 - smoothing, spread = 0.0, u_dot
    cdef floating sum_y
    cdef Py_ssize_t row, j
    cdef const floating *y
    cdef const floating *t
    cdef floating *g
    cdef floating *tmp
    if n_rows == 0:
        return
    if n_classes == 0:
        loss[:] = 0.0
        return
    spread = smoothing / n_classes
    if want_grad and n_classes > 1:
        gs = grad.strides[1] // sizeof(floating)
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            # assigned here so that each thread has its own (their addresses are passed below)
            u_dot = 0.0
            y = row_in(&probs[row, 0], ys, n_classes, tmp)
            t = row_in(&targets[row, 0], ts, n_classes, tmp + n_classes if tmp != NULL else NULL)
            sum_y = <floating>row_sum(y, n_classes)
            if not_a_distribution(sum_y):
                nan_row(loss, grad, row, n_classes, want_grad)
                continue
            loss[row] = row_probs_xent(y, t, n_classes, sum_y, keep, spread, &u_dot)
            if want_grad:
                g = tmp if gs != 1 else &grad[row, 0]
                row_probs_grad(y, t, n_classes, g, sum_y, keep * grad_scale, spread * grad_scale,
                           u_dot * grad_scale)
                if gs != 1:
                    scatter(tmp, n_classes, &grad[row, 0], gs)


def sparse_probs_xent(const floating[:, :] probs,     # IN  (n_rows, n_classes), any strides
                      const index_t[::1] labels,      # IN  (n_rows,), checked by the caller
                      bint has_ignore, long long ignore_index,
                      double[::1] loss,               # OUT (n_rows,)
                      floating[:, :] grad,            # OUT (n_rows, n_classes) or None; may be probs
                      double grad_scale,
                      floating[:, ::1] scratch,       # (n_threads, n_classes) if a stride is not 1
                      int n_threads):
    """Keras' sparse categorical cross-entropy from probabilities:
    -log(clip(y_label / sum(y), 1e-7, 1 - 1e-7)) per row; ignored rows 0."""
    cdef Py_ssize_t n_rows = probs.shape[0], n_classes = probs.shape[1]
    cdef Py_ssize_t ys = class_stride(n_classes, probs.strides[1], sizeof(floating))
    cdef Py_ssize_t gs = 1
    cdef bint want_grad = grad is not None
    cdef floating lo = <floating>EPSILON, hi = <floating>(1.0 - EPSILON)
    cdef floating sum_y, q, clipped, u
    cdef long long label
    cdef Py_ssize_t row, j
    cdef const floating *y
    cdef floating *tmp
    if n_rows == 0:
        return
    if want_grad and n_classes > 1:
        gs = grad.strides[1] // sizeof(floating)
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            label = labels[row]
            if (has_ignore and label == ignore_index) or label < 0 or label >= n_classes:
                loss[row] = 0.0 if has_ignore and label == ignore_index else NAN
                if want_grad:
                    for j in range(n_classes):
                        grad[row, j] = 0 if has_ignore and label == ignore_index else NAN
                continue
            y = row_in(&probs[row, 0], ys, n_classes, tmp)
            sum_y = <floating>row_sum(y, n_classes)
            if not_a_distribution(sum_y):
                nan_row(loss, grad, row, n_classes, want_grad)
                continue
            q = y[label] / sum_y
            clipped = lo if q < lo else (hi if q > hi else q)
            loss[row] = -log(<double>clipped)
            if want_grad:
                # d/dy_k of -log(clip(y_t / S)) = (u q_t - u [k == t]) / S, u = [q_t in range] / clip
                u = 1 / clipped if (q >= lo and q <= hi) else 0
                for j in range(n_classes):
                    grad[row, j] = <floating>(grad_scale * (u * q / sum_y))
                grad[row, label] = <floating>(grad_scale * ((u * q - u) / sum_y))


# ---- columns: (outer, classes, inner), class axis in the middle -------------------------

cdef inline void tile_lse(const floating *x, Py_ssize_t n_classes, Py_ssize_t sc, Py_ssize_t si,
                          Py_ssize_t width, floating *shift, floating *log_sum, double *sums) noexcept nogil:
    """shift[i] = the max over classes (0 where it is -inf), log_sum[i] =
    log(sum_c exp(x - shift)): lse = shift + log_sum."""
    cdef Py_ssize_t i
    col_max(x, n_classes, sc, si, width, shift)
    for i in range(width):
        if shift[i] == -INFINITY:
            shift[i] = 0
    col_sumexp(x, n_classes, sc, si, width, shift, sums)
    for i in range(width):
        log_sum[i] = <floating>log(sums[i])


def col_sparse_xent(const floating[:, :, :] logits,    # IN  (outer, n_classes, inner), any strides
                    const index_t[:, ::1] labels,      # IN  (outer, inner), checked by the caller
                    bint has_ignore, long long ignore_index,
                    const floating[::1] class_weight,  # IN  (n_classes,) or None
                    double smoothing,
                    double[:, ::1] loss,               # OUT (outer, inner)
                    floating[:, :, :] grad,            # OUT like logits, or None; may be logits
                    double grad_scale,
                    floating[:, :, ::1] scratch,       # (n_threads, 4, tile)
                    double[:, :, ::1] dscratch,        # (n_threads, 2, tile)
                    int n_threads):
    """As _sparse.sparse_xent (PyTorch's weights, smoothing, ignore_index)
    for the class axis in the middle."""
    cdef Py_ssize_t n_outer = logits.shape[0], n_classes = logits.shape[1], n_inner = logits.shape[2]
    cdef Py_ssize_t tile = scratch.shape[2]
    cdef Py_ssize_t n_tiles = (n_inner + tile - 1) // tile
    cdef Py_ssize_t sc = logits.strides[1] // sizeof(floating), si = logits.strides[2] // sizeof(floating)
    cdef Py_ssize_t gsc = 0, gsi = 0
    cdef bint want_grad = grad is not None
    cdef const floating *weight = NULL
    cdef double weight_sum = n_classes, keep = 1.0 - smoothing, spread = 0.0
    cdef double w_target, value
    cdef Py_ssize_t job, outer, start, width, i, j
    cdef long long label
    cdef const floating *x
    cdef floating *shift
    cdef floating *log_sum
    cdef floating *a
    cdef floating *k
    cdef double *sums
    cdef double *smooth
    if n_outer == 0 or n_inner == 0 or n_classes == 0:
        return
    spread = smoothing / n_classes
    if want_grad:
        gsc = grad.strides[1] // sizeof(floating)
        gsi = grad.strides[2] // sizeof(floating)
    if class_weight is not None:
        weight = &class_weight[0]
        weight_sum = weights_total(weight, n_classes)
    with nogil, parallel(num_threads=n_threads):
        shift = &scratch[threadid(), 0, 0]
        log_sum = &scratch[threadid(), 1, 0]
        a = &scratch[threadid(), 2, 0]
        k = &scratch[threadid(), 3, 0]
        sums = &dscratch[threadid(), 0, 0]
        smooth = &dscratch[threadid(), 1, 0]
        for job in prange(n_outer * n_tiles, schedule='static'):
            outer = job // n_tiles
            start = (job % n_tiles) * tile
            width = min(tile, n_inner - start)
            x = &logits[outer, 0, start]
            tile_lse(x, n_classes, sc, si, width, shift, log_sum, sums)
            if smoothing != 0.0:
                col_dot(x, sc, si, <const floating *>NULL, 0, 0, weight, n_classes, width, shift,
                        smooth, sums)
            for i in range(width):
                label = labels[outer, start + i]
                if (has_ignore and label == ignore_index) or label < 0 or label >= n_classes:
                    loss[outer, start + i] = 0.0 if has_ignore and label == ignore_index else NAN
                    a[i] = 0
                    k[i] = 0
                    continue
                w_target = weight[label] if weight != NULL else 1.0
                value = keep * w_target * ((shift[i] - x[label * sc + i * si]) + log_sum[i])
                if smoothing != 0.0:
                    value = value + spread * (smooth[i] + weight_sum * log_sum[i])
                loss[outer, start + i] = value
                a[i] = <floating>(grad_scale * (keep * w_target + spread * weight_sum))
                k[i] = <floating>(grad_scale * spread)
            if want_grad:
                col_write(x, sc, si, <const floating *>NULL, 0, 0, weight, n_classes, width,
                          &grad[outer, 0, start], gsc, gsi, shift, log_sum, a, 0, k, FX_COL_GRAD)
                for i in range(width):
                    label = labels[outer, start + i]
                    if (has_ignore and label == ignore_index) or label < 0 or label >= n_classes:
                        # 0 whatever the logits: col_write's 0 x p is NaN where p is
                        for j in range(n_classes):
                            grad[outer, j, start + i] = 0 if has_ignore and label == ignore_index else NAN
                        continue
                    w_target = weight[label] if weight != NULL else 1.0
                    grad[outer, label, start + i] = grad[outer, label, start + i] - <floating>(
                        grad_scale * keep * w_target)


def col_soft_xent(const floating[:, :, :] logits,     # IN  (outer, n_classes, inner), any strides
                  const floating[:, :, :] targets,    # IN  like logits
                  const floating[::1] class_weight,   # IN  (n_classes,) or None
                  double smoothing,
                  double[:, ::1] loss,                # OUT (outer, inner)
                  double[:, ::1] mass,                # OUT (outer, inner) or None
                  floating[:, :, :] grad,             # OUT like logits, or None; may be logits or targets
                  double grad_scale,
                  floating[:, :, ::1] scratch,        # (n_threads, 4, tile)
                  double[:, :, ::1] dscratch,         # (n_threads, 4, tile)
                  int n_threads):
    """As soft_xent for the class axis in the middle."""
    cdef Py_ssize_t n_outer = logits.shape[0], n_classes = logits.shape[1], n_inner = logits.shape[2]
    cdef Py_ssize_t tile = scratch.shape[2]
    cdef Py_ssize_t n_tiles = (n_inner + tile - 1) // tile
    cdef Py_ssize_t sc = logits.strides[1] // sizeof(floating), si = logits.strides[2] // sizeof(floating)
    cdef Py_ssize_t tsc = targets.strides[1] // sizeof(floating), tsi = targets.strides[2] // sizeof(floating)
    cdef Py_ssize_t gsc = 0, gsi = 0
    cdef bint want_grad = grad is not None, want_mass = mass is not None
    cdef const floating *weight = NULL
    cdef double weight_sum = n_classes, keep = 1.0 - smoothing, spread = 0.0, row_mass, value
    cdef Py_ssize_t job, outer, start, width, i
    cdef const floating *x
    cdef floating *shift
    cdef floating *log_sum
    cdef floating *a
    cdef floating *k
    cdef double *sums
    cdef double *dots
    cdef double *masses
    cdef double *smooth
    if n_outer == 0 or n_inner == 0:
        return
    if n_classes == 0:
        loss[:, :] = 0.0
        if want_mass:
            mass[:, :] = 0.0
        return
    spread = smoothing / n_classes
    if want_grad:
        gsc = grad.strides[1] // sizeof(floating)
        gsi = grad.strides[2] // sizeof(floating)
    if class_weight is not None:
        weight = &class_weight[0]
        weight_sum = weights_total(weight, n_classes)
    with nogil, parallel(num_threads=n_threads):
        shift = &scratch[threadid(), 0, 0]
        log_sum = &scratch[threadid(), 1, 0]
        a = &scratch[threadid(), 2, 0]
        k = &scratch[threadid(), 3, 0]
        sums = &dscratch[threadid(), 0, 0]
        dots = &dscratch[threadid(), 1, 0]
        masses = &dscratch[threadid(), 2, 0]
        smooth = &dscratch[threadid(), 3, 0]
        for job in prange(n_outer * n_tiles, schedule='static'):
            outer = job // n_tiles
            start = (job % n_tiles) * tile
            width = min(tile, n_inner - start)
            x = &logits[outer, 0, start]
            tile_lse(x, n_classes, sc, si, width, shift, log_sum, sums)
            col_dot(x, sc, si, &targets[outer, 0, start], tsc, tsi, weight, n_classes, width, shift,
                    dots, masses)
            if smoothing != 0.0:
                col_dot(x, sc, si, <const floating *>NULL, 0, 0, weight, n_classes, width, shift,
                        smooth, sums)
            for i in range(width):
                row_mass = keep * masses[i]
                value = keep * dots[i]
                if smoothing != 0.0:
                    row_mass = row_mass + spread * weight_sum
                    value = value + spread * smooth[i]
                loss[outer, start + i] = value + row_mass * log_sum[i]
                if want_mass:
                    mass[outer, start + i] = row_mass
                a[i] = <floating>(grad_scale * row_mass)
                k[i] = <floating>(grad_scale * spread)
            if want_grad:
                col_write(x, sc, si, &targets[outer, 0, start], tsc, tsi, weight, n_classes, width,
                          &grad[outer, 0, start], gsc, gsi, shift, log_sum, a,
                          <floating>(grad_scale * keep), k, FX_COL_GRAD)


cdef inline double inf_slice_lse(const floating *x, Py_ssize_t n, Py_ssize_t stride) noexcept nogil:
    """logsumexp of a slice whose max is +inf: +inf as numpy / torch.logsumexp,
    NaN if a NaN is there too."""
    cdef Py_ssize_t j
    for j in range(n):
        if x[j * stride] != x[j * stride]:
            return NAN
    return INFINITY


def col_softmax(const floating[:, :, :] x,          # IN  (outer, n_classes, inner), any strides
                floating[:, :, :] out,              # OUT like x, or None; may be x
                floating[:, ::1] lse,               # OUT (outer, inner) or None
                const double[:, ::1] mass,          # IN  (outer, inner) for the Hessian, else None
                double scale,
                int kind,                           # 0 softmax, 1 Hessian diagonal, 2 log_softmax
                floating[:, :, ::1] scratch,        # (n_threads, 4, tile)
                double[:, :, ::1] dscratch,         # (n_threads, 1, tile)
                int n_threads):
    """softmax, log_softmax, the Hessian diagonal scale * mass * p (1 - p),
    or just the log-sum-exp, along the middle axis."""
    cdef Py_ssize_t n_outer = x.shape[0], n_classes = x.shape[1], n_inner = x.shape[2]
    cdef Py_ssize_t tile = scratch.shape[2]
    cdef Py_ssize_t n_tiles = (n_inner + tile - 1) // tile
    cdef Py_ssize_t sc = x.strides[1] // sizeof(floating), si = x.strides[2] // sizeof(floating)
    cdef Py_ssize_t osc = 0, osi = 0
    cdef bint want_out = out is not None, want_lse = lse is not None
    cdef Py_ssize_t job, outer, start, width, i, j
    cdef const floating *p
    cdef floating *shift
    cdef floating *log_sum
    cdef floating *a
    cdef floating *k
    cdef double *sums
    if n_outer == 0 or n_inner == 0:
        return
    if want_out:
        osc = out.strides[1] // sizeof(floating)
        osi = out.strides[2] // sizeof(floating)
    with nogil, parallel(num_threads=n_threads):
        shift = &scratch[threadid(), 0, 0]
        log_sum = &scratch[threadid(), 1, 0]
        a = &scratch[threadid(), 2, 0]
        k = &scratch[threadid(), 3, 0]
        sums = &dscratch[threadid(), 0, 0]
        for job in prange(n_outer * n_tiles, schedule='static'):
            outer = job // n_tiles
            start = (job % n_tiles) * tile
            width = min(tile, n_inner - start)
            p = &x[outer, 0, start]
            tile_lse(p, n_classes, sc, si, width, shift, log_sum, sums)
            if want_lse:
                for i in range(width):
                    lse[outer, start + i] = shift[i] + log_sum[i]
                    if shift[i] == INFINITY:
                        lse[outer, start + i] = inf_slice_lse(p + i * si, n_classes, sc)
            if want_out and n_classes > 0:
                for i in range(width):
                    a[i] = <floating>(scale * mass[outer, start + i]) if mass is not None else 1
                    k[i] = 0
                col_write(p, sc, si, <const floating *>NULL, 0, 0, <const floating *>NULL, n_classes,
                          width, &out[outer, 0, start], osc, osi, shift, log_sum, a, 0, k, kind)
                if mass is not None:
                    # a position of mass 0 (ignored) has Hessian 0 whatever its logits, as the
                    # row kernel: col_write's 0 x p (1 - p) is NaN where p is
                    for i in range(width):
                        if mass[outer, start + i] == 0.0:
                            for j in range(n_classes):
                                out[outer, j, start + i] = 0


def focal_rows(const floating[:, :] y,            # IN  (n_rows, n_classes) logits or probabilities
               const floating[:, :] targets,      # IN  (n_rows, n_classes)
               const double[::1] alpha,           # IN  (n_classes,) class balancing
               double gamma, double smoothing,
               bint from_logits,
               double[::1] loss,                  # OUT (n_rows,)
               floating[:, :] grad,               # OUT (n_rows, n_classes) or None; may be y or targets
               double grad_scale,
               floating[:, ::1] scratch,          # (n_threads, 2 * n_classes) if a stride is not 1
               int n_threads):
    """Keras' categorical focal loss, sum_j alpha_j t'_j (1 - p_j)^gamma (-log p_j),
    and its gradient with respect to y (fx_focal.h).  From logits, log p =
    x - lse exactly (no softmax-then-clip: large logits stay exact); from
    probabilities, p is the row divided by its sum and clipped to
    [1e-7, 1 - 1e-7], as Keras."""
    cdef Py_ssize_t n_rows = y.shape[0], n_classes = y.shape[1]
    cdef Py_ssize_t ys = class_stride(n_classes, y.strides[1], sizeof(floating))
    cdef Py_ssize_t ts = class_stride(n_classes, targets.strides[1], sizeof(floating))
    cdef Py_ssize_t gs = 1
    cdef bint want_grad = grad is not None
    cdef double keep = 1.0 - smoothing, spread = 0.0
    cdef double row_max, sum_exp, sum_y
    cdef Py_ssize_t row
    cdef const floating *p
    cdef const floating *t
    cdef floating *g
    cdef floating *tmp
    if n_rows == 0:
        return
    if n_classes == 0:
        loss[:] = 0.0
        return
    spread = smoothing / n_classes
    if want_grad and n_classes > 1:
        gs = grad.strides[1] // sizeof(floating)
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            # assigned here so that each thread has its own (their addresses are passed below)
            row_max = 0.0
            sum_exp = 1.0
            sum_y = 1.0
            p = row_in(&y[row, 0], ys, n_classes, tmp)
            t = row_in(&targets[row, 0], ts, n_classes, tmp + n_classes if tmp != NULL else NULL)
            if from_logits:
                row_lse_partial(p, n_classes, &row_max, &sum_exp)
            else:
                sum_y = <floating>row_sum(p, n_classes)
                if not_a_distribution(<floating>sum_y):
                    nan_row(loss, grad, row, n_classes, want_grad)
                    continue
            g = NULL
            if want_grad:
                g = tmp if gs != 1 else &grad[row, 0]   # each element is read before it is written
            loss[row] = focal_row(p, t, &alpha[0], n_classes, from_logits, row_max, log(sum_exp), sum_y,
                                  keep, spread, gamma, g, grad_scale)
            if want_grad and gs != 1:
                scatter(tmp, n_classes, &grad[row, 0], gs)


def sparse_focal_rows(const floating[:, :] y,         # IN  (n_rows, n_classes) logits or probabilities
                      const index_t[::1] labels,      # IN  (n_rows,), checked by the caller
                      bint has_ignore, long long ignore_index,
                      const double[::1] alpha,        # IN  (n_classes,) class balancing
                      double gamma, bint from_logits,
                      double[::1] loss,               # OUT (n_rows,)
                      floating[:, :] grad,            # OUT (n_rows, n_classes) or None; may be y
                      double grad_scale,
                      floating[:, ::1] scratch,       # (n_threads, n_classes) if a stride is not 1
                      int n_threads):
    """The focal loss from integer labels, alpha_y (1 - p_y)^gamma (-log p_y),
    and its gradient: one log-sum-exp (or row sum) read, one write.
    Ignored rows get 0 (loss and gradient)."""
    cdef Py_ssize_t n_rows = y.shape[0], n_classes = y.shape[1]
    cdef Py_ssize_t ys = class_stride(n_classes, y.strides[1], sizeof(floating))
    cdef Py_ssize_t gs = 1
    cdef bint want_grad = grad is not None
    cdef double row_max, sum_exp, sum_y
    cdef long long label
    cdef Py_ssize_t row, j
    cdef const floating *p
    cdef floating *g
    cdef floating *tmp
    if n_rows == 0:
        return
    if want_grad and n_classes > 1:
        gs = grad.strides[1] // sizeof(floating)
    with nogil, parallel(num_threads=n_threads):
        tmp = &scratch[threadid(), 0] if scratch is not None else NULL
        for row in prange(n_rows, schedule='static'):
            # assigned here so that each thread has its own (their addresses are passed below)
            row_max = 0.0
            sum_exp = 1.0
            sum_y = 1.0
            label = labels[row]
            if (has_ignore and label == ignore_index) or label < 0 or label >= n_classes:
                loss[row] = 0.0 if has_ignore and label == ignore_index else NAN
                if want_grad:
                    for j in range(n_classes):
                        grad[row, j] = 0 if has_ignore and label == ignore_index else NAN
                continue
            p = row_in(&y[row, 0], ys, n_classes, tmp)
            if from_logits:
                row_lse_partial(p, n_classes, &row_max, &sum_exp)
            else:
                sum_y = <floating>row_sum(p, n_classes)
                if not_a_distribution(<floating>sum_y):
                    nan_row(loss, grad, row, n_classes, want_grad)
                    continue
            g = NULL
            if want_grad:
                g = tmp if gs != 1 else &grad[row, 0]
            loss[row] = sparse_focal_row(p, n_classes, label, alpha[label], from_logits, row_max, log(sum_exp),
                                         sum_y, gamma, g, grad_scale)
            if want_grad and gs != 1:
                scatter(tmp, n_classes, &grad[row, 0], gs)

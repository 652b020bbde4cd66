"""Softmax cross-entropy against soft targets (TensorFlow's
softmax_cross_entropy_with_logits, PyTorch's F.cross_entropy with probability
targets), the Hessian diagonal of both softmax forms, N-D layouts, and
PyTorch's `cross_entropy` (class axis 1, index or probability targets)."""
import numpy as np

from . import _layout, _threads
from . import _validate as v
from ._dispatch import kernels
from .sparse import reduce_rows


def softmax_cross_entropy_with_logits(labels, logits, *, axis=-1, reduction="none", class_weight=None,
                                      label_smoothing=0.0, n_threads=None):
    """Cross-entropy of softmax(logits) against soft (or one-hot) target rows.

    loss = sum_j w_j t_j (logsumexp(x) - x_j) per position, from one read for
    the log-sum-exp and one dot with the targets: no softmax, no log-softmax
    and no other (rows x classes) temporary.

    Parameters
    ----------
    labels : target distributions, same shape and dtype as logits (TensorFlow's
        name; any non-negative weights work, rows need not sum to 1).
    logits : float32 or float64, any shape and memory layout; `axis` is the
        class axis (-1: last, TensorFlow's default; 1: PyTorch's (N, C, d1, ...)).
    reduction : "none" (the default: one loss per position, the logits' shape
        without `axis`), "sum", or "mean" (over positions, as PyTorch does for
        probability targets, class weights or not).
    class_weight : (classes,) weights w_j (PyTorch's ``weight``).
    label_smoothing : eps in [0, 1]: targets become (1 - eps) t + eps / classes.
    n_threads : OpenMP threads (default: OpenMP's default; small inputs use one).
    """
    loss, _, _ = _soft(labels, logits, axis, reduction, class_weight, label_smoothing, n_threads)
    return loss


def softmax_cross_entropy_with_logits_and_grad(labels, logits, *, axis=-1, reduction="none",
                                               class_weight=None, label_smoothing=0.0, out=None,
                                               n_threads=None):
    """The loss and its gradient with respect to the logits in one call:
    grad = (sum_j w_j t_j) softmax(x) - w t per position, times 1/positions for
    reduction="mean".  out: None (new array), an array like logits, or logits
    (or labels) itself to write in place.  Returns (loss, grad)."""
    loss, grad, _ = _soft(labels, logits, axis, reduction, class_weight, label_smoothing, n_threads,
                          want_grad=True, grad_out=out)
    return loss, grad


def softmax_cross_entropy_with_logits_grad_hess(labels, logits, *, axis=-1, reduction="none",
                                                class_weight=None, label_smoothing=0.0, grad_out=None,
                                                hess_out=None, n_threads=None):
    """Loss, gradient and the diagonal of the Hessian (Newton steps, gradient
    boosting): hess = (sum_j w_j t_j) p (1 - p) with p = softmax(x), scaled as
    the gradient.  grad_out may be logits or labels; hess_out may be logits
    (not the same buffer as grad_out).  Returns (loss, grad, hess)."""
    return _soft(labels, logits, axis, reduction, class_weight, label_smoothing, n_threads,
                 want_grad=True, grad_out=grad_out, want_hess=True, hess_out=hess_out)


def sparse_softmax_cross_entropy_with_logits_grad_hess(labels, logits, *, axis=-1, reduction="none",
                                                       ignore_index=None, class_weight=None,
                                                       label_smoothing=0.0, grad_out=None, hess_out=None,
                                                       n_threads=None):
    """As sparse_softmax_cross_entropy_with_logits_and_grad, plus the diagonal
    of the Hessian: hess = m p (1 - p) per position with m = (1 - eps) w_label
    + eps / C * sum(w) (0 for ignored positions), scaled as the gradient.
    Any N-D layout (`axis`).  Returns (loss, grad, hess)."""
    return sparse_nd(labels, logits, axis, reduction, ignore_index, class_weight, label_smoothing,
                     n_threads, want_grad=True, grad_out=grad_out, want_hess=True, hess_out=hess_out)


def cross_entropy(logits, target, *, axis=1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, n_threads=None):
    """PyTorch's F.cross_entropy(input, target, ...): the class axis is 1
    ((N, C) or (N, C, d1, ...); 0 for a 1-D input) unless `axis` says
    otherwise; integer targets are class indices (shape without the class
    axis), float targets are probabilities (same shape as the logits).
    The mean over all-ignored positions is 0 (PyTorch: NaN)."""
    return _cross_entropy(logits, target, axis, weight, ignore_index, reduction, label_smoothing,
                          n_threads, want_grad=False, out=None)[0]


def cross_entropy_and_grad(logits, target, *, axis=1, weight=None, ignore_index=-100, reduction="mean",
                           label_smoothing=0.0, out=None, n_threads=None):
    """cross_entropy and its gradient with respect to the logits: (loss, grad)."""
    return _cross_entropy(logits, target, axis, weight, ignore_index, reduction, label_smoothing,
                          n_threads, want_grad=True, out=out)


def _cross_entropy(logits, target, axis, weight, ignore_index, reduction, label_smoothing, n_threads,
                   want_grad, out):
    x = v.float_array(logits, "logits")
    if x.ndim == 1 and axis == 1:
        axis = 0
    if np.asarray(target).dtype.kind == "f":
        loss, grad, _ = _soft(target, x, axis, reduction, weight, label_smoothing, n_threads,
                              want_grad=want_grad, grad_out=out, labels_name="target")
    else:
        loss, grad, _ = sparse_nd(target, x, axis, reduction, ignore_index, weight, label_smoothing,
                                  n_threads, want_grad=want_grad, grad_out=out, labels_name="target")
    return loss, grad


# ---- cores -----------------------------------------------------------------------------

def _outputs(x, want_grad, grad_out, want_hess, hess_out, inputs):
    grad = v.output(grad_out, x.shape, x.dtype, name="grad_out" if want_hess else "out",
                    inputs=inputs) if want_grad else None
    hess = v.output(hess_out, x.shape, x.dtype, name="hess_out", inputs=(x,)) if want_hess else None
    if hess is not None:
        # inputs[1:] are the targets (soft forms only); integer labels are never written
        others = [(targets, "labels") for targets in inputs[1:]] + [(grad, "grad_out")]
        for other, name in others:
            if other is not None and np.shares_memory(hess, other):
                raise ValueError(f"hess_out shares memory with {name}; pass a separate array "
                                 f"(only the logits may be overwritten by the Hessian)")
    return grad, hess


def _soft(labels, logits, axis, reduction, class_weight, label_smoothing, n_threads, want_grad=False,
          grad_out=None, want_hess=False, hess_out=None, labels_name="labels"):
    x = v.float_array(logits, "logits")
    k = _layout.class_axis(x.ndim, axis)
    t = v.float_array(labels, labels_name)
    if t.shape != x.shape:
        raise ValueError(f"{labels_name} must have the logits' shape {x.shape}, got {t.shape}")
    if t.dtype != x.dtype:
        raise TypeError(f"{labels_name} must have the logits' dtype {x.dtype}, got {t.dtype}")
    v.check_reduction(reduction)
    smoothing = v.check_fraction(label_smoothing, "label_smoothing")
    n_classes = x.shape[k]
    weight = v.class_weight_1d(class_weight, n_classes, x.dtype)
    grad, hess = _outputs(x, want_grad, grad_out, want_hess, hess_out, (x, t))
    threads = _threads.resolve(n_threads, work=x.size)

    positions = _layout.position_shape(x.shape, k)
    n_positions = int(np.prod(positions, dtype=np.int64))
    grad_scale = 1.0 / n_positions if reduction == "mean" and n_positions else 1.0
    rows = np.zeros(positions, dtype=np.float64)   # kernels write nothing when there are no classes
    mass = np.zeros(positions, dtype=np.float64) if want_hess else None
    # a gradient written over the logits must come after the Hessian has read them
    grad_first = grad is not None and not (want_hess and np.shares_memory(grad, x))
    for (xv, tv, gv), (rv, mv) in _layout.blocks([x, t, grad if grad_first else None], [rows, mass], k):
        if xv.ndim == 2:
            scratch = v.row_scratch((xv, tv, gv), threads, 2 * xv.shape[1], x.dtype)
            kernels.softmax.soft_xent(xv, tv, weight, smoothing, rv, mv, gv, grad_scale, scratch, threads)
        else:
            scratch, dscratch = _layout.col_scratch(threads, xv.shape[1], x.dtype)
            kernels.softmax.col_soft_xent(xv, tv, weight, smoothing, rv, mv, gv, grad_scale, scratch,
                                          dscratch, threads)
    if want_hess:
        _hessian(x, k, mass, grad_scale, hess, threads)
    if grad is not None and not grad_first:
        for (xv, tv, gv), (rv,) in _layout.blocks([x, t, grad], [rows], k):
            if xv.ndim == 2:
                scratch = v.row_scratch((xv, tv, gv), threads, 2 * xv.shape[1], x.dtype)
                kernels.softmax.soft_xent(xv, tv, weight, smoothing, rv, None, gv, grad_scale, scratch,
                                          threads)
            else:
                scratch, dscratch = _layout.col_scratch(threads, xv.shape[1], x.dtype)
                kernels.softmax.col_soft_xent(xv, tv, weight, smoothing, rv, None, gv, grad_scale, scratch,
                                              dscratch, threads)
    return reduce_rows(rows, reduction, float(n_positions), x.dtype), grad, hess


def _hessian(x, k, mass, scale, hess, threads):
    """hess = scale * mass * p (1 - p), p = softmax(x) along axis k."""
    for (xv, hv), (mv,) in _layout.blocks([x, hess], [mass], k):
        if xv.ndim == 2:
            scratch = v.row_scratch((xv, hv), threads, xv.shape[1], x.dtype)
            kernels.softmax.softmax_hessian(xv, np.ascontiguousarray(mv), scale, hv, scratch, threads)
        else:
            scratch, dscratch = _layout.col_scratch(threads, xv.shape[1], x.dtype, rows=1)
            kernels.softmax.col_softmax(xv, hv, None, mv, scale, 1, scratch, dscratch, threads)


def labels_nd(labels, positions, n_classes, ignore_index, name="labels"):
    """Integer labels of shape `positions`, C-contiguous int32/int64 (a
    conversion is O(positions)), checked; returns (labels, positions kept)."""
    y = np.asarray(labels)
    if y.dtype.kind in "iu" and y.shape != positions:
        raise ValueError(f"{name} must have the logits' shape without the class axis, {positions}, "
                         f"got {y.shape}")
    flat, n_valid = v.labels_1d(y.reshape(-1) if y.dtype.kind in "iu" else y,
                                int(np.prod(positions, dtype=np.int64)), n_classes, ignore_index, name)
    return flat.reshape(positions), n_valid


def sparse_nd(labels, logits, axis, reduction, ignore_index, class_weight, label_smoothing, n_threads,
              want_grad=False, grad_out=None, want_hess=False, hess_out=None, labels_name="labels"):
    """Integer labels, class axis anywhere: kernels.sparse for the rows
    layout, kernels.softmax.col_sparse_xent for a class axis in the middle."""
    x = v.float_array(logits, "logits")
    k = _layout.class_axis(x.ndim, axis)
    v.check_reduction(reduction)
    smoothing = v.check_fraction(label_smoothing, "label_smoothing")
    n_classes = x.shape[k]
    weight = v.class_weight_1d(class_weight, n_classes, x.dtype)
    positions = _layout.position_shape(x.shape, k)
    y, n_valid = labels_nd(labels, positions, n_classes, ignore_index, labels_name)
    grad, hess = _outputs(x, want_grad, grad_out, want_hess, hess_out, (x,))
    threads = _threads.resolve(n_threads, work=x.size)

    has_ignore = ignore_index is not None
    ignore = v.check_ignore_index(ignore_index)
    kept = y != ignore_index if has_ignore else None      # O(positions)
    if weight is None:
        denominator = float(n_valid)
    else:
        denominator = float(np.sum(weight[y[kept] if has_ignore else y], dtype=np.float64))
    grad_scale = 1.0 / denominator if reduction == "mean" and denominator != 0 else 1.0
    if reduction == "mean" and denominator == 0:
        grad_scale = 0.0

    if want_hess:
        w_label = weight[np.where(kept, y, 0) if has_ignore else y] if weight is not None else 1.0
        weight_sum = float(np.sum(weight, dtype=np.float64)) if weight is not None else n_classes
        mass = np.broadcast_to((1.0 - smoothing) * np.asarray(w_label, np.float64)
                               + (smoothing / n_classes * weight_sum if n_classes else 0.0), positions)
        mass = np.where(kept, mass, 0.0) if has_ignore else np.ascontiguousarray(mass, dtype=np.float64)
    rows = np.zeros(positions, dtype=np.float64)   # kernels write nothing when there are no classes
    grad_first = grad is not None and not np.shares_memory(grad, x)
    if want_hess and not grad_first:
        _hessian(x, k, mass, grad_scale, hess, threads)
    for (xv, gv), (yv, rv) in _layout.blocks([x, grad], [y, rows], k):
        if xv.ndim == 2:
            scratch = v.row_scratch((xv, gv), threads, xv.shape[1], x.dtype)
            kernels.sparse.sparse_xent(xv, yv, has_ignore, ignore, weight, smoothing, rv, gv, grad_scale,
                                       scratch, threads)
        else:
            scratch, dscratch = _layout.col_scratch(threads, xv.shape[1], x.dtype, rows=2)
            kernels.softmax.col_sparse_xent(xv, yv, has_ignore, ignore, weight, smoothing, rv, gv,
                                            grad_scale, scratch, dscratch, threads)
    if want_hess and grad_first:
        _hessian(x, k, mass, grad_scale, hess, threads)
    return reduce_rows(rows, reduction, denominator, x.dtype), grad, hess

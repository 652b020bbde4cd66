"""Sigmoid cross-entropy with logits, element-wise over any shape
(TensorFlow's sigmoid_cross_entropy_with_logits and
weighted_cross_entropy_with_logits, PyTorch's F.binary_cross_entropy_with_logits
with pos_weight and weight)."""
import math

import numpy as np

from . import _elementwise as ew
from . import _validate as v
from ._dispatch import kernels


def sigmoid_cross_entropy_with_logits(labels, logits, *, pos_weight=None, weight=None, reduction="none",
                                      n_threads=None):
    """Sigmoid cross-entropy, element by element:

        loss = max(x, 0) - x z + log1p(exp(-|x|))

    exact for every finite x (no overflow up to the dtype's max).

    Parameters
    ----------
    labels : targets z in [0, 1] (0/1 or soft), the shape and dtype of logits.
    logits : float32 or float64 array of any shape and memory layout.
    pos_weight : weight of the positive term, a scalar or one per entry of
        the last axis (PyTorch's ``pos_weight``, TF's weighted form):
        loss = pw z softplus(-x) + (1 - z) softplus(x).
    weight : per-element weights broadcast to the logits' shape (PyTorch's ``weight``).
    reduction : "none" (element-wise, the default), "sum" or "mean" (over all elements).
    n_threads : OpenMP threads (default: OpenMP's default; small inputs use one).

    A +-inf logit gives the limit: 0 when the target agrees (z = 1 for +inf),
    inf otherwise; NaN gives NaN.
    """
    return _sigmoid_xent(labels, logits, pos_weight, weight, reduction, n_threads, None, None, False, False)[0]


def weighted_cross_entropy_with_logits(labels, logits, pos_weight, *, weight=None, reduction="none",
                                       n_threads=None):
    """TensorFlow's weighted_cross_entropy_with_logits: the sigmoid
    cross-entropy with the positive term weighted by pos_weight,

        loss = (1 - z) x + (1 + (pw - 1) z) log(1 + exp(-x)).
    """
    return sigmoid_cross_entropy_with_logits(labels, logits, pos_weight=pos_weight, weight=weight,
                                             reduction=reduction, n_threads=n_threads)


def sigmoid_cross_entropy_with_logits_and_grad(labels, logits, *, pos_weight=None, weight=None,
                                               reduction="none", out=None, n_threads=None):
    """The loss and its gradient with respect to the logits in one call.

    grad = w (c_neg sigmoid(x) - c_pos sigmoid(-x)) with c_pos = pw z and
    c_neg = 1 - z (= sigmoid(x) - z without weights), divided by the number
    of elements for reduction="mean".

    out : where the gradient goes: None (a new array), an array of the
        logits' shape and dtype, or ``logits`` itself (in place).

    Returns (loss, grad).
    """
    loss, grad, _ = _sigmoid_xent(labels, logits, pos_weight, weight, reduction, n_threads, out, None,
                                  True, False)
    return loss, grad


def weighted_cross_entropy_with_logits_and_grad(labels, logits, pos_weight, *, weight=None, reduction="none",
                                                out=None, n_threads=None):
    """weighted_cross_entropy_with_logits and its gradient: (loss, grad)."""
    return sigmoid_cross_entropy_with_logits_and_grad(labels, logits, pos_weight=pos_weight, weight=weight,
                                                      reduction=reduction, out=out, n_threads=n_threads)


def sigmoid_cross_entropy_with_logits_and_hessian(labels, logits, *, pos_weight=None, weight=None,
                                                  reduction="none", out=None, hess_out=None, n_threads=None):
    """The loss, its gradient and the diagonal of its Hessian with respect
    to the logits (what Newton and gradient-boosting estimators need):

        hess = w (pw z + 1 - z) sigmoid(x) sigmoid(-x)

    scaled like the gradient.  out / hess_out: where the gradient and the
    Hessian go (None: new arrays; out may be ``logits`` itself; hess_out
    must be separate from the gradient).

    Returns (loss, grad, hess).
    """
    return _sigmoid_xent(labels, logits, pos_weight, weight, reduction, n_threads, out, hess_out, True, True)


def pos_weight_1d(pos_weight, shape, dtype):
    """pos_weight as a contiguous (last axis,) array of the logits' dtype (O(columns))."""
    if pos_weight is None:
        return None
    pw = np.asarray(pos_weight)
    if pw.dtype.kind not in "fiu":
        raise TypeError(f"pos_weight must be a real scalar or array, got {pw.dtype}")
    n_cols = shape[-1] if shape else 1
    if pw.ndim > 1 or (pw.ndim == 1 and pw.shape[0] not in (1, n_cols)):
        raise ValueError(f"pos_weight must be a scalar or have shape ({n_cols},), one weight per entry of "
                         f"the last axis, got {pw.shape}")
    return np.ascontiguousarray(np.broadcast_to(pw, (n_cols,)), dtype=dtype)


def element_weight(weight, shape, dtype):
    """weight broadcast to `shape` (a view: stride 0 where broadcast)."""
    if weight is None:
        return None
    w = np.asarray(weight)
    if w.dtype.kind not in "fiu":
        raise TypeError(f"weight must be a real array, got {w.dtype}")
    if w.dtype != dtype:
        if w.size == math.prod(shape) and w.size > 1:
            raise TypeError(f"weight must have the logits' dtype ({dtype}), got {w.dtype}: convert it "
                            f"with weight.astype(np.{dtype}) (fastxent makes no hidden full-size copies)")
        w = w.astype(dtype)
    try:
        return np.broadcast_to(v.float_array(w, "weight"), shape)
    except ValueError:
        raise ValueError(f"weight of shape {w.shape} does not broadcast to the logits' shape {shape}") from None


def _sigmoid_xent(labels, logits, pos_weight, weight, reduction, n_threads, out, hess_out, want_grad,
                  want_hess):
    x, z = ew.pair(logits, labels, "logits", "labels")
    v.check_reduction(reduction)
    pw = pos_weight_1d(pos_weight, x.shape, x.dtype)
    w = element_weight(weight, x.shape, x.dtype)
    grad = v.output(out, x.shape, x.dtype, inputs=(x, z)) if want_grad else None
    hess = v.output(hess_out, x.shape, x.dtype, name="hess_out", inputs=(x, z)) if want_hess else None
    if hess is not None and np.shares_memory(hess, grad):
        raise ValueError("hess_out must not share memory with the gradient (out)")
    loss = np.empty(x.shape, dtype=x.dtype) if reduction == "none" else None
    n = x.size
    grad_scale = 1.0 / n if reduction == "mean" and n else 1.0
    # pos_weight runs along the last axis: the walk's rows must be that axis
    rowwise = pw is not None

    def kernel(views, row_sums, scratch, threads):
        xv, zv, wv, lv, gv, hv = views
        kernels.sigmoid.binary_rows(kernels.sigmoid.SIGMOID, xv, zv, pw, wv, 1.0, 0.0, 0.0, 0.0, False, False,
                                    lv, row_sums, gv, hv, grad_scale, scratch, threads)

    row_sums = ew.run(kernel, [x, z, w, loss, grad, hess], x.shape, rowwise, n_threads, x.dtype)
    if reduction == "none":
        result = loss
    else:
        total = float(np.sum(row_sums))
        result = x.dtype.type(total if reduction == "sum" else (total / n if n else 0.0))
    return result, grad, hess

"""Softmax cross-entropy from integer labels (TensorFlow's
sparse_softmax_cross_entropy_with_logits, PyTorch's F.cross_entropy with
class-index targets)."""
import numpy as np

from . import _threads
from . import _validate as v
from ._dispatch import kernels


def sparse_softmax_cross_entropy_with_logits(labels, logits, *, reduction="none", ignore_index=None,
                                             class_weight=None, label_smoothing=0.0, n_threads=None):
    """Cross-entropy of softmax(logits) against integer labels, row by row.

    loss[i] = logsumexp(logits[i]) - logits[i, labels[i]], computed in one read
    of each row, with no one-hot matrix and no (rows x classes) temporary.

    Parameters
    ----------
    labels : (rows,) integer array, each in [0, classes) or equal to ignore_index.
    logits : (rows, classes) float32 or float64 array, any memory layout.
    reduction : "none" (per-row losses, the default), "sum" or "mean".
    ignore_index : rows with this label get loss 0 and are left out of the mean.
        None (default) ignores nothing; PyTorch's convention is -100.
    class_weight : (classes,) weights; the mean is then the weighted mean
        sum(w[y_i] loss_i) / sum(w[y_i]), as PyTorch's ``weight``.
    label_smoothing : eps in [0, 1]: the target is (1 - eps) one-hot + eps / classes.
    n_threads : OpenMP threads (default: OpenMP's default; small inputs use one).

    Returns
    -------
    (rows,) array of the logits' dtype for reduction="none", else a scalar of
    that dtype.  The mean over rows that are all ignored is 0 (PyTorch: NaN).
    """
    loss, _ = _sparse_xent(labels, logits, reduction, ignore_index, class_weight,
                           label_smoothing, n_threads, want_grad=False, out=None)
    return loss


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, *, reduction="none", ignore_index=None,
                                                      class_weight=None, label_smoothing=0.0, out=None,
                                                      n_threads=None):
    """The loss and its gradient with respect to the logits, in one call.

    grad = softmax(logits) - onehot(labels) per row (with class weights and
    label smoothing folded in), scaled to match the reduction: 1/n for "mean"
    (n = the rows not ignored, or their summed class weights), 1 otherwise.

    out : where the gradient goes: None (a new array), an array of the logits'
        shape and dtype, or ``logits`` itself to overwrite the logits in place
        (a training step then needs no memory beyond the logits).

    Returns (loss, grad), loss as in sparse_softmax_cross_entropy_with_logits.
    """
    return _sparse_xent(labels, logits, reduction, ignore_index, class_weight,
                        label_smoothing, n_threads, want_grad=True, out=out)


def _sparse_xent(labels, logits, reduction, ignore_index, class_weight, label_smoothing,
                 n_threads, want_grad, out):
    x = v.logits_2d(logits)
    n_rows, n_classes = x.shape
    v.check_reduction(reduction)
    smoothing = v.check_fraction(label_smoothing, "label_smoothing")
    weight = v.class_weight_1d(class_weight, n_classes, x.dtype)
    y, n_valid = v.labels_1d(labels, n_rows, n_classes, ignore_index)
    grad = v.output(out, x.shape, x.dtype, inputs=(x,)) if want_grad else None
    threads = _threads.resolve(n_threads, work=x.size)

    if weight is None:
        denominator = float(n_valid)
    else:
        kept = y if ignore_index is None else y[y != ignore_index]   # O(rows)
        denominator = float(np.sum(weight[kept], dtype=np.float64))
    grad_scale = 1.0
    if reduction == "mean":
        grad_scale = 1.0 / denominator if denominator != 0 else 0.0

    rows = np.zeros(n_rows, dtype=np.float64)   # the kernel writes nothing when there are no classes
    scratch = v.row_scratch((x, grad), threads, n_classes, x.dtype)
    total = kernels.sparse.sparse_xent(x, y, ignore_index is not None, v.check_ignore_index(ignore_index),
                                       weight, smoothing, rows, grad, grad_scale, scratch, threads)
    return reduce_rows(rows, reduction, denominator, x.dtype, total), grad


def reduce_rows(rows, reduction, denominator, dtype, total=None):
    """Per-row float64 losses -> the reduction in `dtype`.

    `total`, when the kernel returns it, is the rows' float64 sum added
    serially; otherwise numpy's pairwise sum is used.  Either is the same for
    any thread count.  A mean over nothing (all rows ignored) is 0.
    """
    if reduction == "none":
        return rows.astype(dtype)
    if total is None:
        total = float(rows.sum())
    if reduction == "sum":
        return dtype.type(total)
    return dtype.type(total / denominator if denominator != 0 else 0.0)

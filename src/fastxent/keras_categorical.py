"""Keras 3's categorical losses (keras.losses.*): the same argument order
(y_true, y_pred), from_logits=False by default, axis=-1, per-sample results;
probabilities divided by their sum and clipped to [1e-7, 1 - 1e-7] as Keras
does.  Focal losses from logits are computed in log space (see README)."""
import numbers

import numpy as np

from . import _layout, _threads
from . import _validate as v
from ._dispatch import kernels
from ._keras_loss import KerasLoss, reduce_weighted
from .softmax import _soft, labels_nd, sparse_nd


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1, *,
                                    n_threads=None):
    """Cross-entropy from integer labels; positions whose label is ignore_class
    get 0.  Shape: y_pred's without `axis`."""
    return _sparse(y_true, y_pred, from_logits, ignore_class, axis, n_threads=n_threads)[0]


def sparse_categorical_crossentropy_and_grad(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1,
                                             out=None, *, n_threads=None):
    """Per-sample losses and the gradient of their sum with respect to y_pred
    (logits or probabilities); out: None, an array like y_pred, or y_pred."""
    losses, _, _, grad = _sparse(y_true, y_pred, from_logits, ignore_class, axis, want_grad=True, out=out,
                                 n_threads=n_threads)
    return losses, grad


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1, *, n_threads=None):
    """Cross-entropy from target rows (one-hot or soft, y_pred's dtype);
    label_smoothing moves the targets toward 1 / classes."""
    return _categorical(y_true, y_pred, from_logits, label_smoothing, axis, n_threads, want_grad=False,
                        out=None)[0]


def categorical_crossentropy_and_grad(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1,
                                      out=None, *, n_threads=None):
    """Per-sample losses and the gradient of their sum with respect to y_pred
    (the logits, or the probabilities through Keras' normalization and clip,
    which passes a gradient on its closed range as torch.clamp does).
    out: None, an array like y_pred, or y_pred / y_true itself."""
    return _categorical(y_true, y_pred, from_logits, label_smoothing, axis, n_threads, want_grad=True, out=out)


def _categorical(y_true, y_pred, from_logits, label_smoothing, axis, n_threads, want_grad, out):
    p = v.float_array(y_pred, "y_pred")
    k = _layout.class_axis(p.ndim, axis)
    smoothing = v.check_fraction(label_smoothing, "label_smoothing")
    if from_logits:
        loss, grad, _ = _soft(y_true, p, k, "none", None, smoothing, n_threads, want_grad=want_grad,
                              grad_out=out, labels_name="y_true")
        return loss, grad
    t = _targets_like(y_true, p)
    grad = v.output(out, p.shape, p.dtype, inputs=(p, t)) if want_grad else None
    rows = np.empty(_layout.position_shape(p.shape, k), dtype=np.float64)
    threads = _threads.resolve(n_threads, work=p.size)
    for (pv, tv, gv), (rv,) in _last_axis_blocks([p, t, grad], [rows], k):
        scratch = v.row_scratch((pv, tv, gv), threads, 2 * pv.shape[1], p.dtype)
        kernels.softmax.probs_xent(pv, tv, smoothing, rv, gv, 1.0, scratch, threads)
    return rows.astype(p.dtype), grad


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                   label_smoothing=0.0, axis=-1, *, n_threads=None):
    """Keras' focal loss, sum_j alpha_j t_j (1 - p_j)^gamma (-log p_j) per
    sample; alpha a scalar or one value per class.  From logits, log p is the
    exact log-softmax (Keras softmaxes, then clips p to [1e-7, 1 - 1e-7])."""
    return _categorical_focal(y_true, y_pred, alpha, gamma, from_logits, label_smoothing, axis, n_threads,
                              want_grad=False, out=None)[0]


def categorical_focal_crossentropy_and_grad(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                            label_smoothing=0.0, axis=-1, *, out=None, n_threads=None):
    """Per-sample focal losses and the gradient of their sum with respect to
    y_pred: the logits (through the exact log-softmax, finite for any finite
    logit), or the probabilities (through Keras' normalization and clip,
    which passes a gradient on its closed range as torch.clamp does).
    out: None, an array like y_pred, or y_pred / y_true itself."""
    return _categorical_focal(y_true, y_pred, alpha, gamma, from_logits, label_smoothing, axis, n_threads,
                              want_grad=True, out=out)


def sparse_categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                          ignore_class=None, axis=-1, *, n_threads=None):
    """The focal loss from integer labels (no peer has it):
    alpha_y (1 - p_y)^gamma (-log p_y) per sample, with log p_y = x_y - lse
    from the row's log-sum-exp and one gathered logit (from_logits), or the
    clipped normalized probability as Keras' other forms.  alpha: a scalar or
    one value per class; positions labelled ignore_class get 0."""
    return _sparse_focal(y_true, y_pred, alpha, gamma, from_logits, ignore_class, axis, n_threads,
                         want_grad=False, out=None)[0]


def sparse_categorical_focal_crossentropy_and_grad(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                                   ignore_class=None, axis=-1, *, out=None, n_threads=None):
    """Per-sample sparse focal losses and the gradient of their sum with
    respect to y_pred (logits or probabilities; 0 at ignored positions),
    from one read for the log-sum-exp and one write: no one-hot row.
    out: None, an array like y_pred, or y_pred itself."""
    return _sparse_focal(y_true, y_pred, alpha, gamma, from_logits, ignore_class, axis, n_threads,
                         want_grad=True, out=out)


def _categorical_focal(y_true, y_pred, alpha, gamma, from_logits, label_smoothing, axis, n_threads, want_grad,
                       out):
    p = v.float_array(y_pred, "y_pred")
    k = _layout.class_axis(p.ndim, axis)
    t = _targets_like(y_true, p)
    smoothing = v.check_fraction(label_smoothing, "label_smoothing")
    alphas = _alpha(alpha, p.shape[k])
    gamma = _gamma(gamma)
    grad = v.output(out, p.shape, p.dtype, inputs=(p, t)) if want_grad else None
    rows = np.empty(_layout.position_shape(p.shape, k), dtype=np.float64)

    def kernel(views, positions, scratch, threads):
        kernels.softmax.focal_rows(views[0], views[1], alphas, gamma, smoothing, bool(from_logits), positions[0],
                                   views[2], 1.0, scratch, threads)

    _row_blocks(kernel, [p, t, grad], [rows], k, n_threads)
    return rows.astype(p.dtype), grad


def _sparse_focal(y_true, y_pred, alpha, gamma, from_logits, ignore_class, axis, n_threads, want_grad, out):
    p = v.float_array(y_pred, "y_pred")
    k = _layout.class_axis(p.ndim, axis)
    alphas = _alpha(alpha, p.shape[k])
    gamma = _gamma(gamma)
    positions = _layout.position_shape(p.shape, k)
    labels, _ = labels_nd(_label_array(y_true, p, k), positions, p.shape[k], ignore_class, "y_true")
    ignore = v.check_ignore_index(ignore_class)
    grad = v.output(out, p.shape, p.dtype, inputs=(p,)) if want_grad else None
    rows = np.empty(positions, dtype=np.float64)

    def kernel(views, position_views, scratch, threads):
        kernels.softmax.sparse_focal_rows(views[0], position_views[0], ignore_class is not None, ignore, alphas,
                                          gamma, bool(from_logits), position_views[1], views[1], 1.0, scratch,
                                          threads)

    _row_blocks(kernel, [p, grad], [labels, rows], k, n_threads)
    return rows.astype(p.dtype), grad


class SparseCategoricalCrossentropy(KerasLoss):
    """keras.losses.SparseCategoricalCrossentropy: positions labelled
    ignore_class are masked out of the reduction, as Keras does."""

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size", axis=-1,
                 name="sparse_categorical_crossentropy", n_threads=None):
        super().__init__(reduction=reduction, name=name)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis
        self.n_threads = n_threads

    def per_sample(self, y_true, y_pred):
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits, self.ignore_class, self.axis,
                                               n_threads=self.n_threads)

    def __call__(self, y_true, y_pred, sample_weight=None):
        losses, _, kept = _sparse(y_true, y_pred, self.from_logits, self.ignore_class, self.axis,
                                  n_threads=self.n_threads)
        return reduce_masked(losses, kept, sample_weight, self.reduction)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": self.ignore_class,
                "axis": self.axis}


class CategoricalCrossentropy(KerasLoss):
    """keras.losses.CategoricalCrossentropy."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", n_threads=None):
        super().__init__(reduction=reduction, name=name)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis
        self.n_threads = n_threads

    def per_sample(self, y_true, y_pred):
        return categorical_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing, self.axis,
                                        n_threads=self.n_threads)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class CategoricalFocalCrossentropy(KerasLoss):
    """keras.losses.CategoricalFocalCrossentropy."""

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_focal_crossentropy", n_threads=None):
        super().__init__(reduction=reduction, name=name)
        self.alpha, self.gamma, self.from_logits = alpha, gamma, from_logits
        self.label_smoothing, self.axis = label_smoothing, axis
        self.n_threads = n_threads

    def per_sample(self, y_true, y_pred):
        return categorical_focal_crossentropy(y_true, y_pred, self.alpha, self.gamma, self.from_logits,
                                              self.label_smoothing, self.axis, n_threads=self.n_threads)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma,
                "from_logits": self.from_logits, "label_smoothing": self.label_smoothing, "axis": self.axis}


def reduce_masked(losses, kept, sample_weight, reduction):
    """Keras 3's apply_mask then reduce_weighted_values: masked positions get
    weight 0, and for "sum_over_batch_size"/"mean" the kept ones get
    total / kept, so the mean is over the kept positions."""
    if kept is None:
        return reduce_weighted(losses, sample_weight, reduction)
    if reduction in ("sum_over_batch_size", "mean"):
        n_kept = int(np.count_nonzero(kept))
        mask = np.where(kept, kept.size / n_kept if n_kept else 0.0, 0.0)
    else:
        mask = kept.astype(np.float64)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        while sample_weight.ndim > mask.ndim and sample_weight.shape[-1] == 1:
            sample_weight = sample_weight[..., 0]
        try:
            mask = mask * sample_weight
        except ValueError:   # the message reduce_weighted gives without a mask
            raise ValueError(f"sample_weight of shape {sample_weight.shape} does not broadcast to "
                             f"the per-sample losses' shape {losses.shape}") from None
    return reduce_weighted(losses, mask.astype(losses.dtype), reduction)


# ---- helpers ---------------------------------------------------------------------------

def _sparse(y_true, y_pred, from_logits, ignore_class, axis, want_grad=False, out=None, n_threads=None):
    """(per-sample losses, labels as used, kept mask or None[, gradient])."""
    p = v.float_array(y_pred, "y_pred")
    k = _layout.class_axis(p.ndim, axis)
    y = _label_array(y_true, p, k)
    if from_logits:
        losses, grad, _ = sparse_nd(y, p, k, "none", ignore_class, None, 0.0, n_threads, want_grad=want_grad,
                                    grad_out=out, labels_name="y_true")
        labels, _ = labels_nd(y, losses.shape, p.shape[k], ignore_class, "y_true")
    else:
        positions = _layout.position_shape(p.shape, k)
        labels, _ = labels_nd(y, positions, p.shape[k], ignore_class, "y_true")
        grad = v.output(out, p.shape, p.dtype, inputs=(p,)) if want_grad else None
        rows = np.empty(positions, dtype=np.float64)
        threads = _threads.resolve(n_threads, work=p.size)
        for (pv, gv), (yv, rv) in _last_axis_blocks([p, grad], [labels, rows], k):
            scratch = v.row_scratch((pv, gv), threads, pv.shape[1], p.dtype)
            kernels.softmax.sparse_probs_xent(pv, yv, ignore_class is not None,
                                              v.check_ignore_index(ignore_class), rv, gv, 1.0,
                                              scratch, threads)
        losses = rows.astype(p.dtype)
    kept = labels != ignore_class if ignore_class is not None else None
    return (losses, labels, kept, grad) if want_grad else (losses, labels, kept)


def _label_array(y_true, p, k):
    """Sparse labels as Keras takes them: (batch, 1) squeezed, integral floats cast (O(positions))."""
    y = np.asarray(y_true)
    if y.ndim == p.ndim and y.shape[k] == 1:
        y = np.squeeze(y, axis=k)            # Keras accepts (batch, 1) labels
    if y.dtype.kind == "f":                  # Keras casts labels to integers
        if not np.all(np.isfinite(y)) or np.any(y != np.trunc(y)):
            raise ValueError("y_true holds non-integer values; sparse labels must be class indices")
        y = y.astype(np.int64)               # O(positions)
    return y


def _row_blocks(kernel, class_arrays, position_arrays, k, n_threads):
    """kernel(class views, position views, scratch, threads) over the row
    blocks of _last_axis_blocks; scratch: per-thread rows (2 x classes
    values) when a class axis is strided, else None."""
    p = class_arrays[0]
    threads = _threads.resolve(n_threads, work=p.size)
    for views, position_views in _last_axis_blocks(class_arrays, position_arrays, k):
        scratch = v.row_scratch(views, threads, 2 * views[0].shape[1], p.dtype)
        kernel(views, position_views, scratch, threads)


def _last_axis_blocks(class_arrays, position_arrays, k):
    """Row blocks with the class axis moved last (a view; strided rows are
    gathered by the kernels): the probability forms have row kernels only."""
    moved = [None if a is None else np.moveaxis(a, k, -1) for a in class_arrays]
    return _layout.blocks(moved, position_arrays, moved[0].ndim - 1)


def _targets_like(y_true, p):
    t = v.float_array(y_true, "y_true")
    if t.dtype != p.dtype:
        raise TypeError(f"y_true must have y_pred's dtype {p.dtype}, got {t.dtype} (convert it: fastxent "
                        f"makes no hidden full-size copies)")
    if t.shape != p.shape:
        raise ValueError(f"y_true must have y_pred's shape {p.shape}, got {t.shape}")
    return t


def _alpha(alpha, n_classes):
    a = np.asarray(alpha, dtype=np.float64) if not isinstance(alpha, str) else None
    if a is None or a.dtype.kind != "f":
        raise TypeError(f"alpha must be a float or a sequence of floats, got {type(alpha).__name__}")
    if a.ndim == 0:
        return np.full(n_classes, float(a))
    if a.shape != (n_classes,):
        raise ValueError(f"alpha must be a scalar or have shape ({n_classes},), one value per class, "
                         f"got {a.shape}")
    return np.ascontiguousarray(a)


def _gamma(gamma):
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise TypeError(f"gamma must be a non-negative float, got {type(gamma).__name__}")
    if not gamma >= 0:
        raise ValueError(f"gamma must be a non-negative float, got {gamma}")
    return float(gamma)

"""Keras 3 style binary cross-entropy and binary focal cross-entropy:
(y_true, y_pred) argument order, per-sample results (the mean over `axis`),
from_logits=False by default, probabilities clipped to [1e-7, 1 - 1e-7]."""
import numpy as np

from . import _elementwise as ew
from . import _validate as v
from ._dispatch import kernels
from ._keras_loss import KerasLoss


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1, *, n_threads=None):
    """Keras' binary_crossentropy: the element-wise binary cross-entropy,
    averaged over `axis`; returns an array of y_pred's shape without that axis.

    from_logits=True: y_pred are logits (computed as
    sigmoid_cross_entropy_with_logits, exact for any logit).  Otherwise
    probabilities, clipped to [1e-7, 1 - 1e-7] on both sides alike:
    BCE(0, 1) == BCE(1, 0) == -log(1e-7) (Keras gives 15.94 and 16.12 in
    float32).  label_smoothing s: targets become t (1 - s) + s / 2.
    """
    return _binary(y_true, y_pred, from_logits, label_smoothing, axis, n_threads, None, False)[0]


def binary_crossentropy_and_grad(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1, *,
                                 out=None, n_threads=None):
    """binary_crossentropy and the gradient of the sum of its per-sample
    results with respect to y_pred (the logits, or the probabilities: 0 where
    a probability is clipped).  out: None (a new array), an array of
    y_pred's shape and dtype, or y_pred itself.  Returns (losses, grad)."""
    return _binary(y_true, y_pred, from_logits, label_smoothing, axis, n_threads, out, True)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1, *, n_threads=None):
    """Keras' binary_focal_crossentropy, averaged over `axis`:

        focal_factor * bce, focal_factor = (1 - p_t)^gamma,
        times alpha t + (1 - alpha)(1 - t) with apply_class_balancing.

    from_logits=True is computed in log space (log-sigmoid), never as a
    sigmoid then a clip, so large logits keep their exact (tiny or large)
    loss where Keras saturates at the clip.  Probabilities are handled as
    binary_crossentropy (symmetric clip), p_t from the unclipped values as
    Keras.
    """
    return _focal(y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis,
                  n_threads, None, False)[0]


def binary_focal_crossentropy_and_grad(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                                       from_logits=False, label_smoothing=0.0, axis=-1, *, out=None,
                                       n_threads=None):
    """binary_focal_crossentropy and the gradient of the sum of its
    per-sample results with respect to y_pred (the logits, exact and finite
    for any finite logit; or the probabilities, the bce part 0 where a
    probability is clipped).  out: None (a new array), an array of y_pred's
    shape and dtype, or y_pred itself.  Returns (losses, grad)."""
    return _focal(y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis,
                  n_threads, out, True)


def _focal(y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis, n_threads,
           out, want_grad):
    x, t, keep, shift, axis = _prepare(y_true, y_pred, label_smoothing, axis)
    balance = bool(apply_class_balancing)
    alpha = ew.check_real(alpha, "alpha")
    gamma = ew.check_real(gamma, "gamma", minimum=0.0)
    grad = v.output(out, x.shape, x.dtype, inputs=(x, t)) if want_grad else None
    x, t, grad_last = last(x, axis), last(t, axis), last(grad, axis)
    grad_scale = 1.0 / x.shape[-1] if x.shape[-1] else 1.0

    def kernel(views, row_sums, scratch, threads):
        kernels.sigmoid.binary_rows(kernels.sigmoid.FOCAL, views[0], views[1], None, None, keep, shift,
                                    gamma, alpha, balance, bool(from_logits), views[3], row_sums, views[2],
                                    None, grad_scale, scratch, threads)

    return _per_sample(kernel, [x, t, grad_last], n_threads), grad


def _prepare(y_true, y_pred, label_smoothing, axis):
    x, t = ew.pair(y_pred, y_true, "y_pred", "y_true")
    smoothing = v.check_fraction(label_smoothing, "label_smoothing")
    if x.ndim == 0:
        raise ValueError("y_pred must have at least one dimension (the axis averaged over), got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must be an integer in [{-x.ndim}, {x.ndim}), got {axis!r}")
    return x, t, 1.0 - smoothing, 0.5 * smoothing, int(axis) % x.ndim


def last(a, axis):
    """`a` with the averaged axis moved last, as a view: the kernels walk rows along it."""
    return None if a is None else np.moveaxis(a, axis, -1)


def _per_sample(kernel, arrays, n_threads):
    """The mean over the last axis of the element-wise losses that
    kernel(views + [loss view or None], ...) computes."""
    x = arrays[0]
    if x.shape[-1] == 1:
        # one element per sample: the element-wise losses are the result, and
        # the arrays are walked flat (rows of one element would cost a call each)
        losses = np.empty(x.shape[:-1], dtype=x.dtype)
        ew.run(kernel, [None if a is None else a[..., 0] for a in arrays] + [losses], losses.shape, False,
               n_threads, x.dtype)
        return losses
    row_sums = ew.run(kernel, arrays + [None], x.shape, True, n_threads, x.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):   # an empty axis gives NaN, as Keras
        means = row_sums / x.shape[-1]
    return means.astype(x.dtype).reshape(x.shape[:-1])


def _binary(y_true, y_pred, from_logits, label_smoothing, axis, n_threads, out, want_grad):
    x, t, keep, shift, axis = _prepare(y_true, y_pred, label_smoothing, axis)
    grad = v.output(out, x.shape, x.dtype, inputs=(x, t)) if want_grad else None
    x, t, grad_last = last(x, axis), last(t, axis), last(grad, axis)
    grad_scale = 1.0 / x.shape[-1] if x.shape[-1] else 1.0

    kind = kernels.sigmoid.SIGMOID if from_logits else kernels.sigmoid.BCE

    def kernel(views, row_sums, scratch, threads):
        kernels.sigmoid.binary_rows(kind, views[0], views[1], None, None, keep, shift, 0.0, 0.0, False, False,
                                    views[3], row_sums, views[2], None, grad_scale, scratch, threads)

    losses = _per_sample(kernel, [x, t, grad_last], n_threads)
    return losses, grad


def _same_rank(y_true, y_pred):
    """Keras' squeeze_or_expand_to_same_rank for a trailing axis of 1 (views only)."""
    y_true = y_true if isinstance(y_true, np.ndarray) else np.asarray(y_true)
    y_pred = y_pred if isinstance(y_pred, np.ndarray) else np.asarray(y_pred)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_pred = y_pred[..., 0]
    return y_true, y_pred


class BinaryCrossentropy(KerasLoss):
    """Keras' BinaryCrossentropy: binary_crossentropy per sample, then
    sample_weight and the reduction ("sum_over_batch_size" by default)."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", n_threads=None):
        super().__init__(reduction=reduction, name=name)
        self.from_logits = from_logits
        self.label_smoothing = v.check_fraction(label_smoothing, "label_smoothing")
        self.axis = axis
        self.n_threads = n_threads

    def per_sample(self, y_true, y_pred):
        y_true, y_pred = _same_rank(y_true, y_pred)
        return binary_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing, self.axis,
                                   n_threads=self.n_threads)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class BinaryFocalCrossentropy(KerasLoss):
    """Keras' BinaryFocalCrossentropy: binary_focal_crossentropy per sample,
    then sample_weight and the reduction."""

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_focal_crossentropy", n_threads=None):
        super().__init__(reduction=reduction, name=name)
        self.apply_class_balancing = apply_class_balancing
        self.alpha = ew.check_real(alpha, "alpha")
        self.gamma = ew.check_real(gamma, "gamma", minimum=0.0)
        self.from_logits = from_logits
        self.label_smoothing = v.check_fraction(label_smoothing, "label_smoothing")
        self.axis = axis
        self.n_threads = n_threads

    def per_sample(self, y_true, y_pred):
        y_true, y_pred = _same_rank(y_true, y_pred)
        return binary_focal_crossentropy(y_true, y_pred, self.apply_class_balancing, self.alpha, self.gamma,
                                         self.from_logits, self.label_smoothing, self.axis,
                                         n_threads=self.n_threads)

    def get_config(self):
        return {**super().get_config(), "apply_class_balancing": self.apply_class_balancing,
                "alpha": self.alpha, "gamma": self.gamma, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}

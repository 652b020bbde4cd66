"""Keras 3's loss-object protocol: per-sample losses, then sample weights and
a reduction.  The Keras-style classes (SparseCategoricalCrossentropy, ...)
subclass KerasLoss and provide `per_sample(y_true, y_pred)`."""
import numpy as np

KERAS_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def reduce_weighted(losses, sample_weight, reduction):
    """Keras 3's reduce_weighted_values: losses * sample_weight, then
    "sum", "sum_over_batch_size"/"mean" (sum / number of losses),
    "mean_with_sample_weight" (sum / sum of weights) or "none"/None."""
    losses = np.asarray(losses)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=losses.dtype)
        while sample_weight.ndim > losses.ndim and sample_weight.shape[-1] == 1:
            sample_weight = sample_weight[..., 0]   # Keras squeezes a trailing 1
        try:
            weighted = losses * sample_weight
        except ValueError:
            raise ValueError(f"sample_weight of shape {sample_weight.shape} does not broadcast to "
                             f"the per-sample losses' shape {losses.shape}") from None
    else:
        weighted = losses
    if reduction in ("none", None):
        return weighted
    total = np.sum(weighted, dtype=np.float64)
    if reduction == "sum":
        return losses.dtype.type(total)
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        denominator = float(np.sum(np.broadcast_to(sample_weight, losses.shape), dtype=np.float64))
    else:
        denominator = float(losses.size)
    return losses.dtype.type(total / denominator if denominator else 0.0)


class KerasLoss:
    """Base of the Keras-style loss classes: `loss(y_true, y_pred, sample_weight=None)`."""

    def __init__(self, reduction="sum_over_batch_size", name=None):
        if reduction not in KERAS_REDUCTIONS:
            raise ValueError(f"reduction must be one of {KERAS_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.name = name or type(self).__name__

    def per_sample(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        return reduce_weighted(self.per_sample(y_true, y_pred), sample_weight, self.reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

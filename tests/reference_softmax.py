"""Plain float64 numpy formulas for the softmax family (soft targets, the
Hessian diagonal, Keras' probability forms and focal losses).  Test code:
they form whole (rows x classes) arrays, for clarity."""
import numpy as np

from reference import log_softmax

EPSILON = 1e-7


def soft_xent(targets, logits, class_weight=None, label_smoothing=0.0):
    """Per-row losses (PyTorch's F.cross_entropy with probability targets),
    the gradient and the Hessian diagonal of their sum; class axis last."""
    x = np.asarray(logits, dtype=np.float64)
    n_classes = x.shape[-1]
    t = np.asarray(targets, dtype=np.float64) * (1 - label_smoothing) + label_smoothing / max(n_classes, 1)
    w = np.ones(n_classes) if class_weight is None else np.asarray(class_weight, dtype=np.float64)
    wt = w * t
    logp = log_softmax(x)
    losses = -np.where(wt != 0, wt * logp, 0.0).sum(axis=-1)
    mass = wt.sum(axis=-1, keepdims=True)
    p = np.exp(logp)
    return losses, mass * p - wt, mass * p * (1 - p)


def sparse_hessian(labels, logits, ignore_index=None, class_weight=None, label_smoothing=0.0):
    """Hessian diagonal of the summed sparse losses, class axis last."""
    x = np.asarray(logits, dtype=np.float64)
    n_classes = x.shape[-1]
    w = np.ones(n_classes) if class_weight is None else np.asarray(class_weight, dtype=np.float64)
    labels = np.asarray(labels)
    keep = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    mass = (1 - label_smoothing) * w[np.where(keep, labels, 0)] + label_smoothing / n_classes * w.sum()
    mass = np.where(keep, mass, 0.0)[..., None]
    p = np.exp(log_softmax(x))
    return mass * p * (1 - p)


def keras_probs(y_pred):
    """Keras: rows divided by their sum, clipped to [eps, 1 - eps]."""
    p = np.asarray(y_pred, dtype=np.float64)
    return np.clip(p / p.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)


def smooth(y_true, label_smoothing):
    t = np.asarray(y_true, dtype=np.float64)
    return t * (1 - label_smoothing) + label_smoothing / t.shape[-1]


def categorical_probs(y_true, y_pred, label_smoothing=0.0):
    return -(smooth(y_true, label_smoothing) * np.log(keras_probs(y_pred))).sum(axis=-1)


def focal(y_true, log_p, alpha, gamma, label_smoothing=0.0):
    """sum_j alpha_j t_j (1 - p_j)^gamma (-log p_j) from exact log p."""
    t = smooth(y_true, label_smoothing)
    return (np.asarray(alpha) * t * (-np.expm1(log_p)) ** gamma * -log_p).sum(axis=-1)

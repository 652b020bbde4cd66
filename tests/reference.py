"""Plain float64 numpy formulas: the independent reference every test checks
the kernels against.  Written for clarity, not speed (they may form whole
(rows x classes) arrays: they are test code, never used by the library)."""
import numpy as np


def logsumexp(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def log_softmax(x, axis=-1):
    """(x - max) - log(sum(exp(x - max))): exact for huge logits close together,
    where x - logsumexp(x) would lose log(sum) against the max."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    shifted = x - np.where(np.isfinite(m), m, 0.0)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def sparse_xent(labels, logits, ignore_index=None, class_weight=None, label_smoothing=0.0):
    """Per-row losses (PyTorch's F.cross_entropy with reduction='none'), the
    denominator of the mean, and the gradient of the *sum* of the losses."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    n_rows, n_classes = logits.shape
    w = np.ones(n_classes) if class_weight is None else np.asarray(class_weight, dtype=np.float64)
    keep = np.ones(n_rows, bool) if ignore_index is None else labels != ignore_index
    safe = np.where(keep, labels, 0)
    logp = log_softmax(logits) if n_classes else logits
    eps = label_smoothing
    target = np.zeros_like(logits)
    target[np.arange(n_rows), safe] = (1 - eps) * w[safe]
    target += eps / n_classes * w[None, :]
    target[~keep] = 0
    # a class with target 0 contributes 0, even where log p = -inf (a masked class)
    losses = -np.where(target != 0, target * logp, 0.0).sum(axis=1)
    denominator = w[safe][keep].sum()
    grad = target.sum(axis=1, keepdims=True) * np.exp(logp) - target
    return losses, denominator, grad


def reduce(losses, denominator, grad, reduction):
    if reduction == "none":
        return losses, grad
    if reduction == "sum":
        return losses.sum(), grad
    if denominator == 0:
        return 0.0, grad * 0
    return losses.sum() / denominator, grad / denominator

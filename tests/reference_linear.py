"""Plain float64 numpy reference of the fused linear + cross-entropy: the
logits formed in full, then the loss and the chain rule written out (test
code only: it builds (rows x classes) arrays)."""
import numpy as np

from reference import logsumexp


def linear_xent(x, weight, labels, bias=None, ignore_index=None, label_smoothing=0.0, z_loss=0.0,
                softcap=None):
    """Per-row losses, the number of rows kept, the per-row lse, and the
    gradients (dx, dweight, dbias) of the *sum* of the losses."""
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    n_rows, n_classes = x.shape[0], weight.shape[0]
    raw = x @ weight.T
    if bias is not None:
        raw = raw + np.asarray(bias, dtype=np.float64)
    logits = raw if softcap is None else softcap * np.tanh(raw / softcap)
    keep = np.ones(n_rows, bool) if ignore_index is None else labels != ignore_index
    safe = np.where(keep, labels, 0)
    lse = logsumexp(logits) if n_classes else np.full(n_rows, -np.inf)
    eps = label_smoothing
    target = np.zeros_like(logits)
    target[np.arange(n_rows), safe] = 1 - eps
    target += eps / max(n_classes, 1)
    # a class with target 0 contributes 0, even where its logit is -inf (a masked class)
    dot = np.where(target != 0, target * logits, 0.0).sum(axis=1)
    losses = np.where(keep, lse * target.sum(axis=1) - dot + z_loss * lse**2, 0.0)
    probs = np.exp(logits - lse[:, None])
    grad_logits = (1 + 2 * z_loss * lse[:, None]) * probs - target
    grad_logits[~keep] = 0
    if softcap is not None:
        grad_logits *= 1 - (logits / softcap) ** 2
    dbias = grad_logits.sum(axis=0)
    return losses, int(keep.sum()), lse, grad_logits @ weight, grad_logits.T @ x, dbias

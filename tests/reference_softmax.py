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


def clip_bounds(dtype=np.float64):
    """[eps, 1 - eps] as the dtype holds them (float32: 1 - 1.19e-7)."""
    return float(np.dtype(dtype).type(EPSILON)), float(np.dtype(dtype).type(1 - EPSILON))


def normalized(y_pred, dtype=np.float64):
    """(q = p / sum(p), sum(p)) as Keras forms them in `dtype` (the sum in
    double, rounded to the dtype, the quotient in the dtype), class axis last."""
    p = np.asarray(y_pred, dtype=np.float64)
    with np.errstate(all="ignore"):
        total = p.sum(axis=-1, keepdims=True).astype(dtype)
        return (p.astype(dtype) / total).astype(np.float64), total.astype(np.float64)


def keras_probs(y_pred, dtype=np.float64):
    """Keras: rows divided by their sum, clipped to [eps, 1 - eps] (in `dtype`'s precision)."""
    return np.clip(normalized(y_pred, dtype)[0], *clip_bounds(dtype))


def smooth(y_true, label_smoothing):
    t = np.asarray(y_true, dtype=np.float64)
    return t * (1 - label_smoothing) + label_smoothing / t.shape[-1]


def categorical_probs(y_true, y_pred, label_smoothing=0.0):
    return -(smooth(y_true, label_smoothing) * np.log(keras_probs(y_pred))).sum(axis=-1)


def focal(y_true, log_p, alpha, gamma, label_smoothing=0.0):
    """sum_j alpha_j t_j (1 - p_j)^gamma (-log p_j) from exact log p."""
    t = smooth(y_true, label_smoothing)
    return (np.asarray(alpha) * t * (-np.expm1(log_p)) ** gamma * -log_p).sum(axis=-1)


def through_probs(y_pred, dloss_dclipped, dtype=np.float64):
    """The gradient with respect to y_pred of a loss of Keras' clipped
    probabilities c = clip(p / sum(p), eps, 1 - eps), given dloss/dc; the clip
    passes the gradient on its closed range, as torch.clamp.  Class axis last."""
    q, total = normalized(y_pred, dtype)
    low, high = clip_bounds(dtype)
    g = np.where((q >= low) & (q <= high), dloss_dclipped, 0.0)
    return (g - (g * q).sum(axis=-1, keepdims=True)) / total


def categorical_probs_and_grad(y_true, y_pred, label_smoothing=0.0, dtype=np.float64):
    """Keras' categorical cross-entropy of probabilities and its gradient, class axis last."""
    t = smooth(y_true, label_smoothing)
    c = keras_probs(y_pred, dtype)
    return -(t * np.log(c)).sum(axis=-1), through_probs(y_pred, -t / c, dtype)


def focal_probs_and_grad(y_true, y_pred, alpha, gamma, label_smoothing=0.0, dtype=np.float64):
    """Keras' focal loss of clipped probabilities, sum_j a_j t_j (1 - c_j)^gamma (-log c_j), and its gradient."""
    t = np.asarray(alpha) * smooth(y_true, label_smoothing)
    c = keras_probs(y_pred, dtype)
    loss = (t * (1 - c) ** gamma * -np.log(c)).sum(axis=-1)
    dloss_dc = t * (gamma * (1 - c) ** (gamma - 1) * np.log(c) - (1 - c) ** gamma / c)
    return loss, through_probs(y_pred, dloss_dc, dtype)


def focal_logits_and_grad(y_true, logits, alpha, gamma, label_smoothing=0.0):
    """The focal loss from the exact log-softmax l = log p, sum_j a_j t_j f(l_j)
    with f(l) = (1 - e^l)^gamma (-l), and its gradient u - p sum(u) where
    u_j = a_j t_j f'(l_j), f'(l) = (1 - p)^gamma (gamma p l / (1 - p) - 1).
    A zero target contributes nothing, even at a -inf logit."""
    t = np.asarray(alpha) * smooth(y_true, label_smoothing)
    log_p = log_softmax(logits)
    p = np.exp(log_p)
    miss = -np.expm1(log_p)
    # l / (1 - p) -> -1 as p -> 1; p l -> 0 as p -> 0
    ratio = np.where(miss == 0, -1.0, log_p / miss)
    p_ratio = np.where(p == 0, 0.0, p * ratio)
    loss = np.where(t != 0, t * miss ** gamma * -log_p, 0.0).sum(axis=-1)
    u = np.where(t != 0, t * miss ** gamma * (gamma * p_ratio - 1), 0.0)
    return loss, u - p * u.sum(axis=-1, keepdims=True)

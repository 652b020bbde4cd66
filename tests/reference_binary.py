"""Plain float64 formulas for the sigmoid / binary family (test code only)."""
import numpy as np
from scipy.special import expit

EPS = 1e-7


def wide(values):
    """`values` as float64, or as long double when given so (for a range beyond float64's)."""
    values = np.asarray(values)
    return values.astype(np.result_type(values.dtype, np.float64))


def softplus(x):
    return np.logaddexp(0.0, x)


def times(coef, value):
    """coef * value with 0 * inf = 0 (the limit the losses take)."""
    with np.errstate(invalid="ignore"):
        return np.where(coef == 0, 0.0, coef * value)


def sigmoid_xent(labels, logits, pos_weight=None, weight=None):
    """(loss, grad, hess) element-wise, PyTorch's BCEWithLogitsLoss(reduction='none')."""
    x = wide(logits)
    z = np.asarray(labels, dtype=x.dtype)
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=np.float64)
    w = 1.0 if weight is None else np.asarray(weight, dtype=np.float64)
    c_pos, c_neg = pw * z, 1.0 - z
    loss = w * (times(c_pos, softplus(-x)) + times(c_neg, softplus(x)))
    grad = w * (c_neg * expit(x) - c_pos * expit(-x))
    hess = w * (c_pos + c_neg) * expit(x) * expit(-x)
    return loss, grad, hess


def smooth(targets, label_smoothing):
    return wide(targets) * (1 - label_smoothing) + 0.5 * label_smoothing


def bce(targets, probs, label_smoothing=0.0):
    """(loss, grad w.r.t. probs) element-wise, both sides clipped to [eps, 1 - eps]
    (a clipped side passes no gradient; NaN gives NaN)."""
    p = wide(probs)
    t = smooth(targets, label_smoothing)
    q = 1.0 - p
    loss = -(t * np.log(np.clip(p, EPS, 1 - EPS)) + (1 - t) * np.log(np.clip(q, EPS, 1 - EPS)))
    inside = (p >= EPS) & (q >= EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = np.where(inside | np.isnan(p), (1 - t) / q - t / p, 0.0)
    return loss, grad


def focal(targets, y_pred, balance=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    """Element-wise binary focal cross-entropy (Keras' formula, unclipped logits)."""
    t = smooth(targets, label_smoothing)
    y = np.asarray(y_pred, dtype=np.float64)
    if from_logits:
        loss = sigmoid_xent(t, y)[0]
        miss = t * expit(-y) + (1 - t) * expit(y)
    else:
        loss = bce(t, y)[0]
        miss = t * (1 - y) + (1 - t) * y
    loss = miss ** gamma * loss
    if balance:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss


def focal_and_grad(targets, y_pred, balance=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    """Element-wise binary focal loss (focal()'s formula) and its derivative
    with respect to y_pred: L = b m^gamma bce with m = 1 - p_t and b the
    class-balancing factor, so dL = b (gamma m^(gamma - 1) dm bce + m^gamma dbce)."""
    t = smooth(targets, label_smoothing)
    y = wide(y_pred)
    with np.errstate(all="ignore"):
        if from_logits:
            loss, dloss = sigmoid_xent(t, y)[:2]
            miss = t * expit(-y) + (1 - t) * expit(y)
            dmiss_over_miss = (1 - 2 * t) * expit(y) * expit(-y) / miss
            focal_factor = miss ** gamma
            # gamma m^(gamma - 1) dm bce as gamma (m^gamma bce) (dm / m): its limit 0 where either factor is 0
            # (a right answer at +-inf logits, a soft target at an infinite logit, gamma = 0)
            first = np.where((focal_factor * loss == 0) | (dmiss_over_miss == 0) | (gamma == 0), 0.0,
                             gamma * focal_factor * loss * dmiss_over_miss)
        else:
            loss, dloss = bce(t, y)
            miss = t * (1 - y) + (1 - t) * y          # p_t from the unclipped probabilities, as Keras
            focal_factor = miss ** gamma
            first = 0.0 if gamma == 0 else gamma * miss ** (gamma - 1) * (1 - 2 * t) * loss
        grad = first + times(dloss, focal_factor)   # a clipped element's 0 stays 0 where the power overflows
        loss = times(focal_factor, loss)
    weight = alpha * t + (1 - alpha) * (1 - t) if balance else 1.0
    return weight * loss, weight * grad

"""Plain float64 numpy formulas for the objective tests (they form whole
(rows x classes) arrays: test code only)."""
import numpy as np

from reference import log_softmax


def multinomial(y, raw, sample_weight=None):
    """(losses, gradient, hessian diagonal, probabilities), weighted per sample."""
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    n_rows, n_classes = raw.shape
    w = np.ones(n_rows) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    logp = log_softmax(raw) if n_classes else raw
    proba = np.exp(logp)
    onehot = np.zeros_like(raw)
    onehot[np.arange(n_rows), y] = 1.0
    losses = -w * logp[np.arange(n_rows), y]
    return losses, w[:, None] * (proba - onehot), w[:, None] * proba * (1 - proba), proba


def expit(r):
    """1 / (1 + exp(-r)) without overflow."""
    r = np.asarray(r, dtype=np.float64)
    e = np.exp(-np.abs(r))
    return np.where(r >= 0, 1 / (1 + e), e / (1 + e))


def binomial(y, raw, sample_weight=None):
    """(losses, gradient, hessian), weighted per sample, from the symmetric forms
    y log(1 + e^-r) + (1 - y) log(1 + e^r) and (1 - y) expit(r) - y expit(-r),
    which cancel nowhere."""
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(raw.shape) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    losses = y * np.logaddexp(0, -raw) + (1 - y) * np.logaddexp(0, raw)
    grad = (1 - y) * expit(raw) - y * expit(-raw)
    hess = expit(raw) * expit(-raw)
    return w * losses, w * grad, w * hess


def linear_objective(X, y, coef, n_classes, sample_weight=None, alpha=0.0, fit_intercept=True):
    """(f, gradient) of the penalised weighted-mean multinomial objective, coef
    laid out as W (classes, features) in C order then b."""
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
    n_rows, n_features = X.shape
    W = coef[:n_classes * n_features].reshape(n_classes, n_features)
    b = coef[n_classes * n_features:] if fit_intercept else np.zeros(n_classes)
    w = np.ones(n_rows) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    losses, grad_raw, _, _ = multinomial(y, X @ W.T + b, w)
    f = losses.sum() / w.sum() + 0.5 * alpha * np.sum(W * W)
    grad_W = grad_raw.T @ X / w.sum() + alpha * W
    parts = [grad_W.ravel()] + ([grad_raw.sum(axis=0) / w.sum()] if fit_intercept else [])
    return f, np.concatenate(parts)

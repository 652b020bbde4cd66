"""PyTorch transcriptions of Keras 3's focal losses (keras/src/losses/losses.py),
float64, for autograd gradients in the tests (test code only).  Keras' own
formulas, with two differences fastxent documents: the binary probability
clip is symmetric (both p and 1 - p clipped), and a label smoothing of the
sparse form does not exist."""
import torch
import torch.nn.functional as F

EPS = 1e-7


def binary_focal(y_true, y_pred, balance=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    """Per-sample binary focal losses (mean over the last axis)."""
    t = y_true * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        bce = F.binary_cross_entropy_with_logits(y_pred, t, reduction="none")
        p = torch.sigmoid(y_pred)
    else:
        bce = -(t * torch.log(torch.clamp(y_pred, EPS, 1 - EPS))
                + (1 - t) * torch.log(torch.clamp(1 - y_pred, EPS, 1 - EPS)))
        p = y_pred
    p_t = t * p + (1 - t) * (1 - p)
    loss = torch.pow(1 - p_t, gamma) * bce
    if balance:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.mean(dim=-1)


def _probs(y_pred, from_logits):
    p = torch.softmax(y_pred, dim=-1) if from_logits else y_pred / y_pred.sum(dim=-1, keepdim=True)
    return torch.clamp(p, EPS, 1 - EPS)


def categorical_focal(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    """Per-sample categorical focal losses, class axis last; alpha a scalar or per class."""
    t = y_true * (1 - label_smoothing) + label_smoothing / y_pred.shape[-1]
    p = _probs(y_pred, from_logits)
    alpha = torch.as_tensor(alpha, dtype=y_pred.dtype)
    return (alpha * torch.pow(1 - p, gamma) * -t * torch.log(p)).sum(dim=-1)


def sparse_focal(labels, y_pred, alpha=0.25, gamma=2.0, from_logits=False, ignore_class=None):
    """Per-sample focal losses of the labelled class, 0 where labels == ignore_class."""
    labels = torch.as_tensor(labels)
    kept = torch.ones_like(labels, dtype=torch.bool) if ignore_class is None else labels != ignore_class
    safe = torch.where(kept, labels, 0)
    p = _probs(y_pred, from_logits).gather(-1, safe[..., None])[..., 0]
    alpha = torch.as_tensor(alpha, dtype=y_pred.dtype).expand(y_pred.shape[-1])[safe]
    return torch.where(kept, alpha * torch.pow(1 - p, gamma) * -torch.log(p), 0.0)


def loss_and_grad(fn, y_pred):
    """(fn(y_pred), gradient of its sum w.r.t. y_pred) as numpy float64; fn maps a tensor to losses."""
    x = torch.tensor(y_pred, dtype=torch.float64, requires_grad=True)
    losses = fn(x)
    losses.sum().backward()
    return losses.detach().numpy(), x.grad.numpy()

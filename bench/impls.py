"""The implementations the benchmark times.

Each entry is make(labels, logits, mode, n_threads, floor_library) -> call, where
call() computes the mean loss ("fwd") or the mean loss and its gradient with
respect to the logits ("fwdbwd"), and returns the loss as a float.  make()
imports the library and allocates (and touches) whatever the caller would own
anyway, such as a preallocated gradient buffer, so that the memory measurement
counts only what the call itself allocates.

Modes:
  fwd             mean loss
  fwdbwd          mean loss + gradient (scaled by 1/rows) into a buffer the
                  caller owns, where the library accepts one; PyTorch and JAX
                  return a new gradient array on every call
  fwdbwd-new      (fastxent) the same, returning a new gradient array
  fwdbwd-inplace  (fastxent) the gradient overwrites the logits (out=logits);
                  later calls see the previous gradient as their logits, which
                  changes no timing (values stay in [-1, 1])
  read            (floor) read the logits once (and float targets of their shape)
  read+write      (floor) the same, and write a buffer of the logits' size
"""
import numpy as np

# Below this many logits fastxent runs on one thread (fastxent._threads.SERIAL_BELOW);
# the floor does the same so that it is a floor for small inputs too.
SERIAL_BELOW = 1 << 15


def touched_like(logits):
    """A buffer like `logits`, its pages faulted in: the caller's gradient buffer."""
    out = np.empty_like(logits)
    out.fill(0)
    return out


def fastxent_impl(labels, logits, mode, n_threads, floor_library):
    import fastxent

    loss_only = fastxent.sparse_softmax_cross_entropy_with_logits
    loss_and_grad = fastxent.sparse_softmax_cross_entropy_with_logits_and_grad
    if mode == "fwd":
        return lambda: float(loss_only(labels, logits, reduction="mean", n_threads=n_threads))
    out = {"fwdbwd": touched_like(logits), "fwdbwd-new": None, "fwdbwd-inplace": logits}[mode]
    return lambda: float(loss_and_grad(labels, logits, reduction="mean", out=out, n_threads=n_threads)[0])


def numpy_scipy_impl(labels, logits, mode, n_threads, floor_library):
    """scipy.special.logsumexp and a fancy-index gather; the gradient as
    exp(logits - lse) written into the caller's buffer.  Single-threaded."""
    from scipy.special import logsumexp

    rows = np.arange(logits.shape[0])
    scale = 1.0 / logits.shape[0]

    def forward():
        lse = logsumexp(logits, axis=1)
        return lse, float(np.mean(lse - logits[rows, labels]))

    if mode == "fwd":
        return lambda: forward()[1]
    grad = touched_like(logits)

    def forward_backward():
        lse, loss = forward()
        np.subtract(logits, lse[:, None], out=grad)
        np.exp(grad, out=grad)
        grad[rows, labels] -= 1
        np.multiply(grad, scale, out=grad)
        return loss

    return forward_backward


def torch_impl(labels, logits, mode, n_threads, floor_library):
    """F.cross_entropy on tensors sharing the numpy buffers; the gradient
    from torch.autograd.grad (a new tensor each call, nothing accumulated)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(n_threads)
    x = torch.from_numpy(logits)
    y = torch.from_numpy(labels)
    if mode == "fwd":
        def forward():
            with torch.no_grad():
                return F.cross_entropy(x, y).item()
        return forward
    x.requires_grad_(True)

    def forward_backward():
        loss = F.cross_entropy(x, y)
        torch.autograd.grad(loss, x)
        return loss.item()

    return forward_backward


def sklearn_impl(labels, logits, mode, n_threads, floor_library):
    """sklearn._loss.loss.HalfMultinomialLoss (the loss behind
    LogisticRegression); sample_weight = 1/rows makes the sum of the row
    losses the mean and scales the gradient to match, with no extra pass."""
    from sklearn._loss.loss import HalfMultinomialLoss

    n_rows, n_classes = logits.shape
    loss = HalfMultinomialLoss(n_classes=n_classes)
    y_true = labels.astype(logits.dtype)
    weight = np.full(n_rows, 1.0 / n_rows, dtype=logits.dtype)
    loss_out = np.empty(n_rows, dtype=logits.dtype)
    if mode == "fwd":
        def forward():
            loss.loss(y_true, logits, sample_weight=weight, loss_out=loss_out, n_threads=n_threads)
            return float(np.sum(loss_out, dtype=np.float64))
        return forward
    grad = touched_like(logits)

    def forward_backward():
        loss.loss_gradient(y_true, logits, sample_weight=weight, loss_out=loss_out, gradient_out=grad,
                           n_threads=n_threads)
        return float(np.sum(loss_out, dtype=np.float64))

    return forward_backward


def jax_impl(labels, logits, mode, n_threads, floor_library):
    """optax.softmax_cross_entropy_with_integer_labels under jax.jit; the
    thread count is set through XLA_FLAGS by the parent (cell.py)."""
    import jax
    import optax

    jax.config.update("jax_enable_x64", logits.dtype == np.float64)
    x = jax.device_put(logits)
    y = jax.device_put(labels)

    def mean_loss(x, y):
        return optax.softmax_cross_entropy_with_integer_labels(x, y).mean()

    if mode == "fwd":
        forward = jax.jit(mean_loss)
        return lambda: float(forward(x, y))
    forward_backward = jax.jit(jax.value_and_grad(mean_loss))

    def call():
        loss, grad = forward_backward(x, y)
        grad.block_until_ready()
        return float(loss)

    return call


def floor_impl(labels, logits, mode, n_threads, floor_library):
    """Reads the logits once, and float targets of the logits' shape too (the
    soft and sigmoid forms must read both); integer labels are not counted."""
    import floor

    lib = floor.load(floor_library)
    suffix = "f32" if logits.dtype == np.float32 else "f64"
    threads = n_threads if logits.size >= SERIAL_BELOW else 1
    x = logits.ctypes.data
    read = getattr(lib, f"floor_read_{suffix}")
    if labels.shape == logits.shape and labels.dtype == logits.dtype:
        targets = labels.ctypes.data

        def read_targets():
            return read(targets, labels.size, threads)
    else:
        def read_targets():
            return 0.0
    if mode == "read":
        return lambda: read(x, logits.size, threads) + read_targets()
    out = touched_like(logits)
    read_write = getattr(lib, f"floor_read_write_{suffix}")
    return lambda: read_write(x, out.ctypes.data, logits.size, threads) + read_targets()


# name -> (make, modes, the module that must be importable, what it is)
IMPLS = {
    "fastxent": (fastxent_impl, ("fwd", "fwdbwd", "fwdbwd-new", "fwdbwd-inplace"), "fastxent",
                 "fastxent, this build"),
    "numpy+scipy": (numpy_scipy_impl, ("fwd", "fwdbwd"), "scipy",
                    "scipy.special.logsumexp + fancy-index gather (single-threaded)"),
    "torch": (torch_impl, ("fwd", "fwdbwd"), "torch", "torch.nn.functional.cross_entropy"),
    "sklearn": (sklearn_impl, ("fwd", "fwdbwd"), "sklearn",
                "sklearn._loss.loss.HalfMultinomialLoss loss / loss_gradient"),
    "jax": (jax_impl, ("fwd", "fwdbwd"), "optax", "optax.softmax_cross_entropy_with_integer_labels, jax.jit"),
    "floor": (floor_impl, ("read", "read+write"), None, "OpenMP C loop over the same buffer (bench/floor.c)"),
}

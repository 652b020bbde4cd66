"""The rest of the cross-entropy family for run.py --family: soft targets,
sigmoid, and the N-D layouts, each against numpy+scipy and PyTorch.

A family is its cases (logits shapes), its inputs and its implementations,
the latter with impls.IMPLS's signature make(targets, logits, mode, n_threads,
floor_library) -> call and modes.  The floor reads every input as large as the
logits once (logits and targets for the soft and sigmoid forms; the N-D forms'
integer labels are a class-axis-th of that and are left out, as for the
sparse form).
"""
from collections import namedtuple

import numpy as np

import impls
from impls import floor_impl, touched_like

Family = namedtuple("Family", "cases quick_cases inputs impls axis what")


def uniform_logits(shape, dtype, rng):
    """Uniform in [-4, 4), as the sparse form's logits."""
    logits = rng.random(shape, dtype=dtype)
    logits *= 8
    logits -= 4
    return logits


def sparse_inputs(shape, dtype, axis, seed=0):
    """Integer labels in [0, classes), int64, of the logits' shape without `axis`."""
    rng = np.random.default_rng(seed)
    logits = uniform_logits(shape, dtype, rng)
    positions = tuple(n for i, n in enumerate(shape) if i != axis % len(shape))
    labels = rng.integers(0, shape[axis], positions, dtype=np.int64)
    return labels, logits


def soft_inputs(shape, dtype, axis, seed=0):
    """Target rows: uniform weights normalised to sum to 1 over the class axis."""
    rng = np.random.default_rng(seed)
    logits = uniform_logits(shape, dtype, rng)
    targets = rng.random(shape, dtype=dtype)
    targets /= targets.sum(axis=axis, keepdims=True)
    return targets, logits


def binary_inputs(shape, dtype, axis, seed=0):
    """0/1 targets, half of them ones, in the logits' dtype."""
    rng = np.random.default_rng(seed)
    logits = uniform_logits(shape, dtype, rng)
    targets = rng.integers(0, 2, shape).astype(dtype)
    return targets, logits


def fastxent_modes(loss_only, loss_and_grad, targets, logits, mode, **options):
    """The four fastxent modes of impls.fastxent_impl, for any loss/loss-and-grad pair."""
    if mode == "fwd":
        return lambda: float(loss_only(targets, logits, **options))
    out = {"fwdbwd": touched_like(logits), "fwdbwd-new": None, "fwdbwd-inplace": logits}[mode]
    return lambda: float(loss_and_grad(targets, logits, out=out, **options)[0])


def torch_modes(loss, targets, logits, mode, n_threads):
    """impls.torch_impl's two modes for any loss(x, y) of torch tensors."""
    import torch

    torch.set_num_threads(n_threads)
    x, y = torch.from_numpy(logits), torch.from_numpy(targets)
    if mode == "fwd":
        def forward():
            with torch.no_grad():
                return loss(x, y).item()
        return forward
    x.requires_grad_(True)

    def forward_backward():
        value = loss(x, y)
        torch.autograd.grad(value, x)
        return value.item()

    return forward_backward


def numpy_modes(forward, backward, logits, mode):
    """forward() -> (saved, loss); backward(saved, grad) writes the gradient
    into a caller-owned buffer."""
    if mode == "fwd":
        return lambda: forward()[1]
    grad = touched_like(logits)

    def forward_backward():
        saved, loss = forward()
        backward(saved, grad)
        return loss

    return forward_backward


# ---- soft targets ---------------------------------------------------------------------------

def fastxent_soft(targets, logits, mode, n_threads, floor_library):
    import fastxent

    return fastxent_modes(fastxent.softmax_cross_entropy_with_logits,
                          fastxent.softmax_cross_entropy_with_logits_and_grad, targets, logits, mode,
                          reduction="mean", n_threads=n_threads)


def numpy_soft(targets, logits, mode, n_threads, floor_library):
    """loss = mean(sum(t) lse - t . x), with scipy.special.logsumexp; the
    gradient as sum(t) exp(x - lse) - t, scaled by 1/rows."""
    from scipy.special import logsumexp

    scale = 1.0 / logits.shape[0]

    def forward():
        lse = logsumexp(logits, axis=1)
        mass = targets.sum(axis=1)
        return (lse, mass), float(np.mean(mass * lse - np.einsum("ij,ij->i", targets, logits)))

    def backward(saved, grad):
        lse, mass = saved
        np.subtract(logits, lse[:, None], out=grad)
        np.exp(grad, out=grad)
        grad *= mass[:, None]
        grad -= targets
        grad *= scale

    return numpy_modes(forward, backward, logits, mode)


def torch_soft(targets, logits, mode, n_threads, floor_library):
    """F.cross_entropy with probability targets (the same shape as the input)."""
    import torch.nn.functional as F

    return torch_modes(F.cross_entropy, targets, logits, mode, n_threads)


# ---- sigmoid --------------------------------------------------------------------------------

def fastxent_sigmoid(targets, logits, mode, n_threads, floor_library):
    import fastxent

    return fastxent_modes(fastxent.sigmoid_cross_entropy_with_logits,
                          fastxent.sigmoid_cross_entropy_with_logits_and_grad, targets, logits, mode,
                          reduction="mean", n_threads=n_threads)


def numpy_sigmoid(targets, logits, mode, n_threads, floor_library):
    """The stable formula max(x, 0) - x z + log1p(exp(-|x|)), mean over all
    elements; the gradient as (expit(x) - z) / elements."""
    from scipy.special import expit

    scale = 1.0 / logits.size

    def forward():
        loss = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
        return None, float(np.mean(loss))

    def backward(saved, grad):
        expit(logits, out=grad)
        grad -= targets
        grad *= scale

    return numpy_modes(forward, backward, logits, mode)


def torch_sigmoid(targets, logits, mode, n_threads, floor_library):
    import torch.nn.functional as F

    return torch_modes(F.binary_cross_entropy_with_logits, targets, logits, mode, n_threads)


# ---- N-D layouts ----------------------------------------------------------------------------

def fastxent_nd(axis):
    def make(labels, logits, mode, n_threads, floor_library):
        import fastxent

        return fastxent_modes(lambda y, x, **options: fastxent.cross_entropy(x, y, **options),
                              lambda y, x, **options: fastxent.cross_entropy_and_grad(x, y, **options),
                              labels, logits, mode, axis=axis, reduction="mean", n_threads=n_threads)
    return make


def numpy_nd(axis):
    def make(labels, logits, mode, n_threads, floor_library):
        """scipy.special.logsumexp over the class axis, the label's logit by
        np.take_along_axis; the gradient as exp(x - lse) minus one at the label."""
        from scipy.special import logsumexp

        index = np.expand_dims(labels, axis)
        scale = 1.0 / labels.size

        def forward():
            lse = logsumexp(logits, axis=axis, keepdims=True)
            return lse, float(np.mean(lse - np.take_along_axis(logits, index, axis)))

        def backward(lse, grad):
            np.subtract(logits, lse, out=grad)
            np.exp(grad, out=grad)
            picked = np.take_along_axis(grad, index, axis)
            np.put_along_axis(grad, index, picked - 1, axis)
            grad *= scale

        return numpy_modes(forward, backward, logits, mode)
    return make


def torch_nd(axis):
    def make(labels, logits, mode, n_threads, floor_library):
        """F.cross_entropy on the (N, C, d) input as it is (class axis 1); a
        class-last input viewed as (rows, C), as PyTorch users do (no copy)."""
        import torch.nn.functional as F

        if axis == 1:
            return torch_modes(F.cross_entropy, labels, logits, mode, n_threads)
        n_classes = logits.shape[-1]
        return torch_modes(lambda x, y: F.cross_entropy(x.view(-1, n_classes), y.view(-1)), labels, logits,
                           mode, n_threads)
    return make


def floor_spec(what):
    return (floor_impl, ("read", "read+write"), None, what)


SOFT_IMPLS = {
    "fastxent": (fastxent_soft, impls.IMPLS["fastxent"][1], "fastxent",
                 "fastxent.softmax_cross_entropy_with_logits(_and_grad), this build"),
    "numpy+scipy": (numpy_soft, ("fwd", "fwdbwd"), "scipy",
                    "scipy.special.logsumexp + einsum row dots (single-threaded)"),
    "torch": (torch_soft, ("fwd", "fwdbwd"), "torch", "F.cross_entropy with probability targets"),
    "floor": floor_spec("OpenMP C loop reading the logits and the targets once (bench/floor.c)"),
}
SIGMOID_IMPLS = {
    "fastxent": (fastxent_sigmoid, impls.IMPLS["fastxent"][1], "fastxent",
                 "fastxent.sigmoid_cross_entropy_with_logits(_and_grad), this build"),
    "numpy+scipy": (numpy_sigmoid, ("fwd", "fwdbwd"), "scipy",
                    "max(x, 0) - x z + log1p(exp(-|x|)), gradient via scipy.special.expit (single-threaded)"),
    "torch": (torch_sigmoid, ("fwd", "fwdbwd"), "torch", "F.binary_cross_entropy_with_logits"),
    "floor": floor_spec("OpenMP C loop reading the logits and the targets once (bench/floor.c)"),
}


def nd_impls(axis, torch_what):
    return {
        "fastxent": (fastxent_nd(axis), impls.IMPLS["fastxent"][1], "fastxent",
                     f"fastxent.cross_entropy(_and_grad)(logits, labels, axis={axis}), this build"),
        "numpy+scipy": (numpy_nd(axis), ("fwd", "fwdbwd"), "scipy",
                        "scipy.special.logsumexp + np.take_along_axis (single-threaded)"),
        "torch": (torch_nd(axis), ("fwd", "fwdbwd"), "torch", torch_what),
        "floor": floor_spec("OpenMP C loop reading the logits once (bench/floor.c)"),
    }


FAMILIES = {
    "sparse": Family(None, None, sparse_inputs, impls.IMPLS, -1, "sparse softmax cross-entropy (integer labels)"),
    "soft": Family(((256, 32000), (4096, 32000)), ((32, 1000), (256, 1000)), soft_inputs, SOFT_IMPLS, -1,
                   "softmax cross-entropy against soft target rows"),
    "sigmoid": Family(((65536, 100), (4096, 32000)), ((32, 1000), (256, 1000)), binary_inputs, SIGMOID_IMPLS,
                      -1, "sigmoid cross-entropy, element-wise, 0/1 targets"),
    "nd-axis1": Family(((16, 1000, 256),), ((4, 100, 16),), sparse_inputs,
                       nd_impls(1, "F.cross_entropy on the (N, C, d) input"), 1,
                       "integer labels, PyTorch's (N, C, d) layout, class axis 1"),
    "nd-last": Family(((64, 512, 1000),), ((4, 16, 100),), sparse_inputs,
                      nd_impls(-1, "F.cross_entropy on the input viewed as (N * seq, C)"), -1,
                      "integer labels, (batch, seq, C), class axis last"),
}

"""Soft-target softmax cross-entropy, its gradient and Hessian diagonal, the
sparse Hessian, PyTorch's cross_entropy and the N-D layouts: against the
float64 reference, PyTorch, finite differences, and every error path."""
import numpy as np
import pytest

import fastxent as fx
import reference as ref
import reference_softmax as rs
from conftest import tolerance

loss_fn = fx.softmax_cross_entropy_with_logits
grad_fn = fx.softmax_cross_entropy_with_logits_and_grad
hess_fn = fx.softmax_cross_entropy_with_logits_grad_hess
sparse_hess_fn = fx.sparse_softmax_cross_entropy_with_logits_grad_hess


def make(rng, shape, dtype, scale=3.0):
    logits = (rng.standard_normal(shape) * scale).astype(dtype)
    targets = rng.random(shape).astype(dtype)
    return targets, logits


def reduced(losses, grad, hess, reduction, n):
    if reduction == "none":
        return losses, grad, hess
    if reduction == "sum":
        return losses.sum(), grad, hess
    return losses.sum() / n, grad / n, hess / n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0, 4), (1, 1), (7, 3), (33, 1000), (300, 257), (2, 70001)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_matches_reference(isa, rng, dtype, shape, n_threads):
    targets, logits = make(rng, shape, dtype)
    before = (targets.copy(), logits.copy())
    losses, grad_sum, hess_sum = rs.soft_xent(targets, logits)
    for reduction in ("none", "sum", "mean"):
        expected = reduced(losses, grad_sum, hess_sum, reduction, max(shape[0], 1))
        loss = loss_fn(targets, logits, reduction=reduction, n_threads=n_threads)
        assert np.asarray(loss).dtype == dtype
        np.testing.assert_allclose(loss, expected[0], **tolerance(dtype))
        loss, grad, hess = hess_fn(targets, logits, reduction=reduction, n_threads=n_threads)
        np.testing.assert_allclose(loss, expected[0], **tolerance(dtype))
        np.testing.assert_allclose(grad, expected[1], **tolerance(dtype))
        np.testing.assert_allclose(hess, expected[2], **tolerance(dtype))
    np.testing.assert_array_equal(targets, before[0])
    np.testing.assert_array_equal(logits, before[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_options_match_reference(isa, rng, dtype, weighted, smoothing):
    targets, logits = make(rng, (40, 9), dtype)
    targets[::4] = 0                       # rows with no target mass
    weight = rng.uniform(0.1, 2.0, 9) if weighted else None
    losses, grad_sum, hess_sum = rs.soft_xent(targets, logits, weight, smoothing)
    for reduction in ("none", "sum", "mean"):
        expected = reduced(losses, grad_sum, hess_sum, reduction, 40)
        result = hess_fn(targets, logits, reduction=reduction, class_weight=weight, label_smoothing=smoothing)
        for got, want in zip(result, expected):
            np.testing.assert_allclose(got, want, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_matches_pytorch_probability_targets(rng, dtype, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    targets, logits = make(rng, (5, 7, 3, 2), dtype)           # (N, C, d1, d2)
    weight = rng.uniform(0.2, 3.0, 7).astype(dtype)
    for kwargs in (dict(), dict(label_smoothing=0.15), dict(weight=weight),
                   dict(weight=weight, label_smoothing=0.3)):
        t_logits = torch.tensor(logits, requires_grad=True)
        t_weight = torch.tensor(kwargs["weight"]) if "weight" in kwargs else None
        expected = F.cross_entropy(t_logits, torch.tensor(targets), weight=t_weight, reduction=reduction,
                                   label_smoothing=kwargs.get("label_smoothing", 0.0))
        expected.sum().backward()
        loss, grad = fx.cross_entropy_and_grad(logits, targets, reduction=reduction, **kwargs)
        np.testing.assert_allclose(loss, expected.detach().numpy(), **tolerance(dtype))
        np.testing.assert_allclose(grad, t_logits.grad.numpy(), **tolerance(dtype))
        np.testing.assert_allclose(fx.cross_entropy(logits, targets, reduction=reduction, **kwargs),
                                   expected.detach().numpy(), **tolerance(dtype))
        # TensorFlow's name, class axis 1
        np.testing.assert_allclose(
            loss_fn(targets, logits, axis=1, reduction=reduction, class_weight=kwargs.get("weight"),
                    label_smoothing=kwargs.get("label_smoothing", 0.0)),
            expected.detach().numpy(), **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_sparse_nd_matches_pytorch(rng, dtype, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits = (rng.standard_normal((4, 6, 5, 3)) * 3).astype(dtype)
    labels = rng.integers(0, 6, (4, 5, 3))
    labels[0, ::2] = -100
    weight = rng.uniform(0.2, 3.0, 6).astype(dtype)
    for kwargs in (dict(), dict(label_smoothing=0.2), dict(weight=weight),
                   dict(weight=weight, label_smoothing=0.3)):
        t_logits = torch.tensor(logits, requires_grad=True)
        t_weight = torch.tensor(kwargs["weight"]) if "weight" in kwargs else None
        expected = F.cross_entropy(t_logits, torch.tensor(labels), weight=t_weight, reduction=reduction,
                                   label_smoothing=kwargs.get("label_smoothing", 0.0))
        expected.sum().backward()
        for n_threads in (1, 2):
            loss, grad = fx.cross_entropy_and_grad(logits, labels, reduction=reduction, n_threads=n_threads,
                                                   **kwargs)
            np.testing.assert_allclose(loss, expected.detach().numpy(), **tolerance(dtype))
            np.testing.assert_allclose(grad, t_logits.grad.numpy(), **tolerance(dtype))
        # the same with the class axis last (rows kernel of fastxent.sparse)
        moved = np.ascontiguousarray(np.moveaxis(logits, 1, -1))
        loss, grad = fx.cross_entropy_and_grad(moved, labels, axis=-1, reduction=reduction, **kwargs)
        np.testing.assert_allclose(loss, expected.detach().numpy(), **tolerance(dtype))
        np.testing.assert_allclose(grad, np.moveaxis(t_logits.grad.numpy(), 1, -1), **tolerance(dtype))


def test_hessian_matches_pytorch_autograd(rng):
    torch = pytest.importorskip("torch")
    targets, logits = make(rng, (3, 5), np.float64)
    weight = rng.uniform(0.5, 2.0, 5)

    def total(x):
        return torch.nn.functional.cross_entropy(x, torch.tensor(targets), weight=torch.tensor(weight),
                                                 label_smoothing=0.1, reduction="mean")
    full = torch.autograd.functional.hessian(total, torch.tensor(logits)).numpy().reshape(15, 15)
    _, _, hess = hess_fn(targets, logits, reduction="mean", class_weight=weight, label_smoothing=0.1)
    np.testing.assert_allclose(hess.reshape(-1), np.diag(full), rtol=1e-12, atol=1e-15)
    labels = np.array([0, 4, 2])

    def sparse_total(x):
        return torch.nn.functional.cross_entropy(x, torch.tensor(labels), weight=torch.tensor(weight),
                                                 label_smoothing=0.2, reduction="sum")
    full = torch.autograd.functional.hessian(sparse_total, torch.tensor(logits)).numpy().reshape(15, 15)
    _, _, hess = sparse_hess_fn(labels, logits, reduction="sum", class_weight=weight, label_smoothing=0.2)
    np.testing.assert_allclose(hess.reshape(-1), np.diag(full), rtol=1e-12, atol=1e-15)


def test_gradient_and_hessian_match_finite_differences(rng):
    targets, logits = make(rng, (4, 6), np.float64)
    weight = rng.uniform(0.5, 2.0, 6)
    kwargs = dict(reduction="mean", class_weight=weight, label_smoothing=0.1)
    _, grad, hess = hess_fn(targets, logits, **kwargs)
    h = 1e-5
    numeric_grad, numeric_hess = np.zeros_like(logits), np.zeros_like(logits)
    for index in np.ndindex(logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[index] += h
        minus[index] -= h
        numeric_grad[index] = (loss_fn(targets, plus, **kwargs) - loss_fn(targets, minus, **kwargs)) / (2 * h)
        numeric_hess[index] = (grad_fn(targets, plus, **kwargs)[1][index]
                               - grad_fn(targets, minus, **kwargs)[1][index]) / (2 * h)
    np.testing.assert_allclose(grad, numeric_grad, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(hess, numeric_hess, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_hessian_matches_reference(isa, rng, dtype):
    logits = (rng.standard_normal((50, 8)) * 2).astype(dtype)
    weight = rng.uniform(0.5, 2.0, 8)
    for kwargs in (dict(), dict(ignore_index=-1, class_weight=weight, label_smoothing=0.3)):
        labels = rng.integers(0, 8, 50)
        if "ignore_index" in kwargs:
            labels[::5] = -1
        losses, denominator, grad_sum = ref.sparse_xent(labels, logits, kwargs.get("ignore_index"),
                                                        kwargs.get("class_weight"),
                                                        kwargs.get("label_smoothing", 0.0))
        hess_sum = rs.sparse_hessian(labels, logits, kwargs.get("ignore_index"), kwargs.get("class_weight"),
                                     kwargs.get("label_smoothing", 0.0))
        loss, grad, hess = sparse_hess_fn(labels, logits, reduction="mean", **kwargs)
        np.testing.assert_allclose(loss, losses.sum() / denominator, **tolerance(dtype))
        np.testing.assert_allclose(grad, grad_sum / denominator, **tolerance(dtype))
        np.testing.assert_allclose(hess, hess_sum / denominator, **tolerance(dtype))
        # class axis 1 of a 3-D input: the column kernels
        x3 = np.ascontiguousarray(np.moveaxis(logits.reshape(5, 10, 8), -1, 1))
        loss3, grad3, hess3 = sparse_hess_fn(labels.reshape(5, 10), x3, axis=1, reduction="mean", **kwargs)
        np.testing.assert_allclose(loss3, loss, **tolerance(dtype))
        np.testing.assert_allclose(np.moveaxis(grad3, 1, -1).reshape(50, 8), grad, **tolerance(dtype))
        np.testing.assert_allclose(np.moveaxis(hess3, 1, -1).reshape(50, 8), hess, **tolerance(dtype))


def nd_views(base):
    """Views of `base` (N, C, H, W) class axis 1, with the axis each has."""
    n, c, h, w = base.shape
    doubled = np.ascontiguousarray(np.repeat(base, 2, axis=-1))
    last = np.ascontiguousarray(np.moveaxis(base, 1, -1))             # (N, H, W, C)
    return {
        "pytorch": (base, 1),
        "class_last": (last, -1),
        "class_last_transposed_batch": (np.ascontiguousarray(last.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3),
                                        3),
        "class_first": (np.ascontiguousarray(np.moveaxis(base, 1, 0)), 0),
        "strided_inner": (doubled[..., ::2], 1),
        "fortran": (np.asfortranarray(base), 1),
        "class_last_strided": (np.asfortranarray(last), -1),
    }


def to_nchw(a, axis):
    return np.moveaxis(a, axis, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_nd_layouts_without_copies(isa, rng, dtype, n_threads):
    targets_base, logits_base = make(rng, (3, 5, 4, 6), dtype)
    moved = np.moveaxis
    losses, grad_sum, hess_sum = rs.soft_xent(moved(targets_base, 1, -1), moved(logits_base, 1, -1), None, 0.1)
    t_views, x_views = nd_views(targets_base), nd_views(logits_base)
    for name, (x, axis) in x_views.items():
        t = t_views[name][0]
        np.testing.assert_array_equal(to_nchw(x, axis), logits_base)
        loss, grad, hess = hess_fn(t, x, axis=axis, label_smoothing=0.1, n_threads=n_threads)
        np.testing.assert_allclose(loss, losses, **tolerance(dtype), err_msg=name)
        np.testing.assert_allclose(moved(to_nchw(grad, axis), 1, -1), grad_sum, **tolerance(dtype), err_msg=name)
        np.testing.assert_allclose(moved(to_nchw(hess, axis), 1, -1), hess_sum, **tolerance(dtype), err_msg=name)
        # in place over the logits and over the targets, in that layout
        work = x.copy(order="K") if name not in ("strided_inner",) else None
        if work is not None:
            _, out = grad_fn(t, work, axis=axis, label_smoothing=0.1, out=work)
            assert out is work
            np.testing.assert_allclose(moved(to_nchw(work, axis), 1, -1), grad_sum, **tolerance(dtype))
    labels = rng.integers(0, 5, (3, 4, 6))
    expected = ref.sparse_xent(labels.reshape(-1), moved(logits_base, 1, -1).reshape(-1, 5))
    for name, (x, axis) in x_views.items():
        loss, grad = fx.cross_entropy_and_grad(x, labels, axis=axis, reduction="none", n_threads=n_threads)
        np.testing.assert_allclose(loss.reshape(-1), expected[0], **tolerance(dtype), err_msg=name)
        np.testing.assert_allclose(moved(to_nchw(grad, axis), 1, -1).reshape(-1, 5), expected[2],
                                   **tolerance(dtype), err_msg=name)


def test_serial_equals_parallel(rng):
    targets, logits = make(rng, (513, 300), np.float32)
    one = hess_fn(targets, logits, reduction="mean", n_threads=1)
    two = hess_fn(targets, logits, reduction="mean", n_threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_and_in_place(rng, dtype):
    targets, logits = make(rng, (50, 40), dtype)
    _, expected_grad, expected_hess = hess_fn(targets, logits)
    out = np.full_like(logits, 7.0)
    _, grad = grad_fn(targets, logits, out=out)
    assert grad is out
    np.testing.assert_array_equal(out, expected_grad)
    work = targets.copy()
    grad_fn(work, logits, out=work)                       # over the targets
    np.testing.assert_array_equal(work, expected_grad)
    # gradient over the logits, Hessian into a new array: the Hessian reads them first
    work = logits.copy()
    _, grad, hess = hess_fn(targets, work, grad_out=work)
    assert grad is work
    np.testing.assert_array_equal(grad, expected_grad)
    np.testing.assert_array_equal(hess, expected_hess)
    # Hessian over the logits
    work = logits.copy()
    _, grad, hess = hess_fn(targets, work, hess_out=work)
    assert hess is work
    np.testing.assert_array_equal(grad, expected_grad)
    np.testing.assert_array_equal(hess, expected_hess)
    labels = np.arange(50) % 40
    _, g1, h1 = sparse_hess_fn(labels, logits)
    work = logits.copy()
    _, g2, h2 = sparse_hess_fn(labels, work, grad_out=work)
    np.testing.assert_array_equal(g2, g1)
    np.testing.assert_array_equal(h2, h1)
    work = logits.copy()
    _, g2, h2 = sparse_hess_fn(labels, work, hess_out=work)
    np.testing.assert_array_equal(g2, g1)
    np.testing.assert_array_equal(h2, h1)


def test_extreme_and_masked_values(isa):
    x = np.array([[1e4, -1e4, 0.0], [0.0, -np.inf, 1.0]], dtype=np.float32)
    t = np.array([[0.5, 0.5, 0.0], [0.25, 0.0, 0.75]], dtype=np.float32)
    loss, grad = grad_fn(t, x)
    np.testing.assert_allclose(loss[0], 0.5 * 2e4, rtol=1e-6)
    expected = rs.soft_xent(t[1:], np.array([[0.0, -1e30, 1.0]]))[0][0]
    np.testing.assert_allclose(loss[1], expected, rtol=1e-6)      # a zero target at -inf adds nothing
    assert grad[1, 1] == 0.0
    x64 = np.array([[1e300, -1e300]])
    np.testing.assert_allclose(loss_fn(np.array([[0.0, 1.0]]), x64), [2e300], rtol=1e-12)
    assert np.isnan(loss_fn(np.array([[1.0, 0.0]]), np.array([[np.nan, 0.0]])))[0]


def test_memmap_read_only(tmp_path, rng):
    targets, logits = make(rng, (20, 11), np.float32)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "t.npy", targets)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "t.npy", mmap_mode="r")
    np.testing.assert_allclose(loss_fn(mapped[1], mapped[0]), rs.soft_xent(targets, logits)[0], rtol=2e-5)


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("targets, kwargs, exc, message", [
    (np.zeros((2, 4), np.float32), {}, ValueError, r"labels must have the logits' shape \(2, 3\)"),
    (np.zeros((2, 3), np.float64), {}, TypeError, "labels must have the logits' dtype float32"),
    (np.zeros((2, 3), np.int64), {}, TypeError, "labels must be float32 or float64, got int64"),
    (np.zeros((2, 3), np.float32), dict(axis=2), ValueError, r"axis=2 is out of range"),
    (np.zeros((2, 3), np.float32), dict(axis=1.0), TypeError, "axis must be an integer"),
    (np.zeros((2, 3), np.float32), dict(reduction="avg"), ValueError, "reduction must be one of"),
    (np.zeros((2, 3), np.float32), dict(label_smoothing=2.0), ValueError, "label_smoothing must be in"),
    (np.zeros((2, 3), np.float32), dict(class_weight=np.ones(2)), ValueError, r"class_weight must have shape"),
    (np.zeros((2, 3), np.float32), dict(n_threads=0), ValueError, "n_threads must be a positive"),
])
def test_bad_arguments(targets, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        loss_fn(targets, np.zeros((2, 3), np.float32), **kwargs)


def test_bad_outputs_leave_buffers_untouched():
    logits = np.arange(6, dtype=np.float32).reshape(2, 3)
    targets = np.ones((2, 3), np.float32)
    saved = logits.copy()
    with pytest.raises(ValueError, match="hess_out shares memory with grad_out"):
        hess_fn(targets, logits, grad_out=logits, hess_out=logits)
    with pytest.raises(ValueError, match="hess_out shares memory with labels"):
        hess_fn(targets, logits, hess_out=targets)
    with pytest.raises(TypeError, match="out must have dtype float32"):
        grad_fn(targets, logits, out=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="overlaps an input"):
        grad_fn(targets, logits, out=logits[:, ::-1])
    with pytest.raises(ValueError, match=r"labels\[1\] = 5 is outside \[0, 3\)"):
        sparse_hess_fn([0, 5], logits, grad_out=logits)
    np.testing.assert_array_equal(logits, saved)
    with pytest.raises(ValueError, match=r"target must have the logits' shape without the class axis"):
        fx.cross_entropy(np.zeros((2, 3, 4), np.float32), np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="float32 or float64, got float16"):
        fx.cross_entropy(np.zeros((2, 3), np.float16), np.zeros(2, np.int64))

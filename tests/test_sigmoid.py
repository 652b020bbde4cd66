"""sigmoid_cross_entropy_with_logits and its weighted, _and_grad and
_and_hessian forms against the float64 reference, PyTorch, TensorFlow's
documented formula, finite differences, extremes and every error path."""
import numpy as np
import pytest

import fastxent as fx
import reference_binary as ref
from conftest import tolerance
from fastxent import _dispatch

SHAPES = [(0,), (1,), (7,), (3, 0), (5000,), (9000,), (3, 4), (40, 301), (4, 5, 6), (2, 3, 1)]


def make(rng, shape, dtype, scale=4.0):
    logits = (rng.standard_normal(shape) * scale).astype(dtype)
    labels = rng.uniform(0, 1, shape).astype(dtype)
    labels.reshape(-1)[::3] = np.round(labels.reshape(-1)[::3])   # hard and soft targets
    return labels, logits


def reduce(values, reduction):
    if reduction == "none":
        return values
    total = values.sum()
    return total if reduction == "sum" else (total / values.size if values.size else 0.0)


def grad_scale(n, reduction):
    return 1.0 / n if reduction == "mean" and n else 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which", ["log", "log1p", "softplus_tail"])
def test_math_functions_within_two_ulp(isa, rng, dtype, which):
    info = np.finfo(dtype)
    if which == "log":
        x = np.concatenate([np.exp(rng.uniform(np.log(float(info.smallest_subnormal)), np.log(float(info.max)),
                                               20000)), rng.uniform(0, 4, 20000)])
        expected_fn = np.log
    elif which == "log1p":
        x = np.concatenate([rng.uniform(-1, 1, 20000), -np.exp(rng.uniform(-80, 0, 10000)),
                            np.exp(rng.uniform(-80, 0, 10000))])
        expected_fn = np.log1p
    else:
        x = rng.standard_normal(40000) * 30
        def expected_fn(a):
            return np.log1p(np.exp(-np.abs(a)))
    x = x.astype(dtype)
    out = np.empty_like(x)
    _dispatch.kernels.sigmoid.math_values(x, out, which)
    expected = expected_fn(x.astype(np.longdouble))
    keep = np.abs(expected) > info.tiny
    ulps = np.abs(out[keep] - expected[keep]) / np.spacing(np.abs(expected[keep]).astype(dtype))
    assert ulps.max() <= 2.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_math_functions_special_values(dtype):
    x = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1.0], dtype=dtype)
    out = np.empty_like(x)
    _dispatch.kernels.sigmoid.math_values(x, out, "log")
    np.testing.assert_array_equal(out, [-np.inf, -np.inf, np.nan, np.inf, np.nan, np.nan, 0.0])
    _dispatch.kernels.sigmoid.math_values(x, out, "log1p")
    np.testing.assert_array_equal(out[[0, 2, 6]], [0.0, -np.inf, np.log1p(dtype(1))])
    _dispatch.kernels.sigmoid.math_values(x, out, "softplus_tail")
    np.testing.assert_array_equal(out[3:6], [0.0, 0.0, np.nan])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("weights", ["none", "pos_weight", "weight", "both"])
def test_matches_reference(isa, rng, dtype, shape, n_threads, weights):
    labels, logits = make(rng, shape, dtype)
    n_cols = shape[-1]
    pos_weight = rng.uniform(0.2, 3.0, n_cols) if weights in ("pos_weight", "both") else None
    weight = rng.uniform(0, 2, shape[-1:]).astype(dtype) if weights in ("weight", "both") else None
    before = logits.copy()
    loss, grad, hess = ref.sigmoid_xent(labels, logits, pos_weight, weight)
    kw = dict(pos_weight=pos_weight, weight=weight, n_threads=n_threads)
    for reduction in ("none", "sum", "mean"):
        got = fx.sigmoid_cross_entropy_with_logits(labels, logits, reduction=reduction, **kw)
        assert np.asarray(got).dtype == dtype and np.shape(got) == (shape if reduction == "none" else ())
        np.testing.assert_allclose(got, reduce(loss, reduction), **tolerance(dtype))
        scale = grad_scale(logits.size, reduction)
        got_loss, got_grad, got_hess = fx.sigmoid_cross_entropy_with_logits_and_hessian(
            labels, logits, reduction=reduction, **kw)
        np.testing.assert_allclose(got_loss, reduce(loss, reduction), **tolerance(dtype))
        np.testing.assert_allclose(got_grad, grad * scale, **tolerance(dtype))
        np.testing.assert_allclose(got_hess, hess * scale, **tolerance(dtype))
        got_loss, got_grad = fx.sigmoid_cross_entropy_with_logits_and_grad(labels, logits, reduction=reduction,
                                                                            **kw)
        np.testing.assert_allclose(got_grad, grad * scale, **tolerance(dtype))
    np.testing.assert_array_equal(logits, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_matches_torch(rng, dtype, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    labels, logits = make(rng, (6, 50, 7), dtype)
    pos_weight = rng.uniform(0.2, 3.0, 7).astype(dtype)
    weight = rng.uniform(0, 2, (50, 1)).astype(dtype)
    for kw in ({}, {"pos_weight": pos_weight}, {"weight": weight}, {"pos_weight": pos_weight, "weight": weight}):
        x = torch.tensor(logits, requires_grad=True)
        expected = F.binary_cross_entropy_with_logits(x, torch.tensor(labels), reduction=reduction,
                                                      **{k: torch.tensor(a) for k, a in kw.items()})
        expected.sum().backward()
        loss, grad = fx.sigmoid_cross_entropy_with_logits_and_grad(labels, logits, reduction=reduction, **kw)
        np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)
        # float32: PyTorch forms sigmoid(x) - z, which cancels; ours does not
        np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-5, atol=2e-6 if dtype == np.float32 else 1e-14)


def test_weighted_form_is_tensorflows_formula(rng):
    labels, logits = make(rng, (20, 9), np.float64)
    pos_weight = rng.uniform(0.2, 3.0, 9)
    x, z = logits, labels
    tf_formula = (1 - z) * x + (1 + (pos_weight - 1) * z) * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))
    np.testing.assert_allclose(fx.weighted_cross_entropy_with_logits(labels, logits, pos_weight), tf_formula,
                               rtol=1e-12, atol=1e-13)
    scalar = fx.weighted_cross_entropy_with_logits(labels, logits, 2.5)
    np.testing.assert_allclose(scalar, ref.sigmoid_xent(labels, logits, 2.5)[0], rtol=1e-12)
    plain = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    np.testing.assert_allclose(fx.sigmoid_cross_entropy_with_logits(labels, logits), plain, rtol=1e-12)
    loss, grad = fx.weighted_cross_entropy_with_logits_and_grad(labels, logits, pos_weight, reduction="sum")
    np.testing.assert_allclose(loss, tf_formula.sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, ref.sigmoid_xent(labels, logits, pos_weight)[1], rtol=1e-12, atol=1e-15)


def test_gradient_and_hessian_match_finite_differences(rng):
    labels, logits = make(rng, (8, 5), np.float64, scale=2.0)
    pos_weight, weight = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, (8, 5))
    kw = dict(pos_weight=pos_weight, weight=weight, reduction="sum")
    _, grad, hess = fx.sigmoid_cross_entropy_with_logits_and_hessian(labels, logits, **kw)
    h = 1e-6
    for index in [(0, 0), (3, 2), (7, 4)]:
        up, down = logits.copy(), logits.copy()
        up[index] += h
        down[index] -= h
        numeric = (fx.sigmoid_cross_entropy_with_logits(labels, up, **kw)
                   - fx.sigmoid_cross_entropy_with_logits(labels, down, **kw)) / (2 * h)
        assert numeric == pytest.approx(grad[index], rel=1e-6, abs=1e-9)
        grad_up = fx.sigmoid_cross_entropy_with_logits_and_grad(labels, up, **kw)[1][index]
        grad_down = fx.sigmoid_cross_entropy_with_logits_and_grad(labels, down, **kw)[1][index]
        assert (grad_up - grad_down) / (2 * h) == pytest.approx(hess[index], rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("dtype, big", [(np.float32, 1e4), (np.float64, 1e300), (np.float32, 3.4e38),
                                        (np.float64, np.finfo(np.float64).max)])
def test_extreme_logits(isa, dtype, big):
    logits = np.array([big, -big, big, -big, np.inf, -np.inf, np.inf, -np.inf, np.nan, 0.0], dtype=dtype)
    labels = np.array([1, 1, 0, 0, 1, 1, 0, 0, 1, 0.5], dtype=dtype)
    loss, grad, hess = fx.sigmoid_cross_entropy_with_logits_and_hessian(labels, logits)
    b = dtype(big)
    np.testing.assert_array_equal(loss, np.array([0, b, b, 0, 0, np.inf, np.inf, 0, np.nan, np.log(2)],
                                                 dtype=dtype))
    np.testing.assert_array_equal(grad, np.array([0, -1, 1, 0, 0, -1, 1, 0, np.nan, 0], dtype=dtype))
    np.testing.assert_array_equal(hess, np.array([0] * 8 + [np.nan, 0.25], dtype=dtype))
    soft = fx.sigmoid_cross_entropy_with_logits(np.full(2, 0.5, dtype), np.array([big, -big], dtype))
    np.testing.assert_allclose(soft, [b / 2, b / 2], rtol=1e-6)
    # NaN stays in its own element; an inf loss makes the mean inf
    assert np.isfinite(loss[:4]).all()
    assert fx.sigmoid_cross_entropy_with_logits(labels[:8], logits[:8], reduction="mean") == np.inf


def test_large_but_finite_losses_keep_relative_precision():
    x = np.array([-30.0, 30.0, -80.0, 80.0], dtype=np.float32)
    z = np.array([0.0, 1.0, 0.0, 1.0], dtype=np.float32)
    np.testing.assert_allclose(fx.sigmoid_cross_entropy_with_logits(z, x), np.log1p(np.exp(-np.abs(x.astype(
        np.float64)))), rtol=1e-6)


def layouts(rng, dtype):
    """(labels, logits) pairs in layouts that are not C-contiguous."""
    labels, logits = make(rng, (12, 20, 9), dtype)
    yield labels.transpose(2, 0, 1), logits.transpose(2, 0, 1)        # leading axes not mergeable
    yield labels[:, ::2, ::-1], logits[:, ::2, ::-1]                  # negative column stride
    yield labels[::3, 1], logits[::3, 1]
    yield np.asfortranarray(labels[0]), np.asfortranarray(logits[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_strided_layouts_without_copies(isa, rng, dtype, n_threads):
    for labels, logits in layouts(rng, dtype):
        pos_weight = rng.uniform(0.5, 2, logits.shape[-1])
        loss, grad, hess = ref.sigmoid_xent(labels, logits, pos_weight)
        got = fx.sigmoid_cross_entropy_with_logits_and_hessian(labels, logits, pos_weight=pos_weight,
                                                               n_threads=n_threads)
        for value, expected in zip(got, (loss, grad, hess)):
            np.testing.assert_allclose(value, expected, **tolerance(dtype))
        out = np.zeros_like(logits.copy()).transpose()[...].transpose()   # another strided caller array
        _, written = fx.sigmoid_cross_entropy_with_logits_and_grad(labels, logits, out=out, n_threads=n_threads)
        assert written is out
        np.testing.assert_allclose(out, ref.sigmoid_xent(labels, logits)[1], **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_and_caller_buffers(rng, dtype):
    labels, logits = make(rng, (50, 33), dtype)
    expected_loss, expected_grad, expected_hess = ref.sigmoid_xent(labels, logits)
    hess = np.empty_like(logits)
    loss, grad, hess_back = fx.sigmoid_cross_entropy_with_logits_and_hessian(
        labels, logits, reduction="sum", out=logits, hess_out=hess)
    assert grad is logits and hess_back is hess
    np.testing.assert_allclose(grad, expected_grad, **tolerance(dtype))
    np.testing.assert_allclose(hess, expected_hess, **tolerance(dtype))
    np.testing.assert_allclose(loss, expected_loss.sum(), rtol=1e-5 if dtype == np.float32 else 1e-12)
    # in place on a strided view: each row is gathered before it is overwritten
    labels, logits = make(rng, (50, 33), dtype)
    view = logits[::2, ::-3]
    expected = ref.sigmoid_xent(labels[::2, ::-3], view)[1]
    fx.sigmoid_cross_entropy_with_logits_and_grad(labels[::2, ::-3], view, out=view)
    np.testing.assert_allclose(view, expected, **tolerance(dtype))


def test_read_only_and_broadcast_inputs(rng, tmp_path):
    labels, logits = make(rng, (30, 8), np.float32)
    path = tmp_path / "logits.npy"
    np.save(path, logits)
    mapped = np.load(path, mmap_mode="r")
    weight = np.broadcast_to(np.float32(0.5), (30, 8))   # read-only, stride 0
    got = fx.sigmoid_cross_entropy_with_logits(labels, mapped, weight=weight)
    np.testing.assert_allclose(got, 0.5 * ref.sigmoid_xent(labels, logits)[0], rtol=2e-6)
    got = fx.sigmoid_cross_entropy_with_logits(labels, logits, weight=[[2.0]] * 30)   # Python data
    np.testing.assert_allclose(got, 2 * ref.sigmoid_xent(labels, logits)[0], rtol=2e-6)
    python_labels = fx.sigmoid_cross_entropy_with_logits([[1, 0]], np.array([[3.0, -1.0]]))
    np.testing.assert_allclose(python_labels, ref.sigmoid_xent([[1, 0]], [[3.0, -1.0]])[0], rtol=1e-12)


def test_serial_equals_parallel(rng):
    labels, logits = make(rng, (400, 301), np.float32)
    one = fx.sigmoid_cross_entropy_with_logits_and_hessian(labels, logits, reduction="mean", n_threads=1)
    two = fx.sigmoid_cross_entropy_with_logits_and_hessian(labels, logits, reduction="mean", n_threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_empty_mean_is_zero():
    assert fx.sigmoid_cross_entropy_with_logits(np.zeros(0), np.zeros(0), reduction="mean") == 0.0


def test_errors(rng):
    labels, logits = make(rng, (4, 3), np.float64)
    call = fx.sigmoid_cross_entropy_with_logits
    with pytest.raises(TypeError, match="float16"):
        call(labels, logits.astype(np.float16))
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        call(labels, np.zeros((4, 3), np.int64))
    with pytest.raises(TypeError, match="labels must have the dtype of logits"):
        call(labels.astype(np.float32), logits)
    with pytest.raises(TypeError, match="labels must have the dtype of logits"):
        call(labels.astype(np.int64), logits)
    with pytest.raises(TypeError, match="real array"):
        call([["a", "b", "c"]] * 4, logits)
    with pytest.raises(ValueError, match=r"labels must have the shape of logits, \(4, 3\), got \(4,\)"):
        call(labels[:, 0], logits)
    with pytest.raises(ValueError, match="pos_weight must be a scalar or have shape"):
        call(labels, logits, pos_weight=np.ones(4))
    with pytest.raises(TypeError, match="pos_weight must be a real"):
        call(labels, logits, pos_weight="x")
    with pytest.raises(ValueError, match="does not broadcast"):
        call(labels, logits, weight=np.ones(4))
    with pytest.raises(TypeError, match="weight must be a real"):
        call(labels, logits, weight=np.array(["a"]))
    with pytest.raises(TypeError, match="weight must have the logits' dtype"):
        call(labels, logits, weight=np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="reduction must be one of"):
        call(labels, logits, reduction="avg")
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        call(labels, logits, n_threads=0)
    grad_fn = fx.sigmoid_cross_entropy_with_logits_and_grad
    with pytest.raises(ValueError, match="out must have shape"):
        grad_fn(labels, logits, out=np.empty((3, 4)))
    with pytest.raises(TypeError, match="out must have dtype"):
        grad_fn(labels, logits, out=np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match="overlaps an input"):
        big = np.zeros((5, 3))
        big[:4] = logits
        grad_fn(labels, big[:4], out=big[1:])
    read_only = np.empty((4, 3))
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        grad_fn(labels, logits, out=read_only)
    grad = np.empty((4, 3))
    with pytest.raises(ValueError, match="hess_out must not share memory"):
        fx.sigmoid_cross_entropy_with_logits_and_hessian(labels, logits, out=grad, hess_out=grad)
    before = grad.copy()
    with pytest.raises(ValueError):
        grad_fn(labels, logits, out=grad, reduction="bad")
    np.testing.assert_array_equal(grad, before)

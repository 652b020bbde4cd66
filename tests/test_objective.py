"""MultinomialLoss, BinomialLoss and LinearModelObjective against the float64
reference, scikit-learn's private losses where importable, finite
differences, and every error path."""
import tracemalloc

import numpy as np
import pytest

import fastxent
from conftest import tolerance
from fastxent import BinomialLoss, LinearModelObjective, MultinomialLoss
from fastxent._dispatch import kernels
import reference_objective as ref

MULTI_SHAPES = [(0, 3), (1, 1), (1, 2), (7, 3), (33, 1000), (300, 257)]


def make_multi(rng, shape, dtype, scale=3.0):
    raw = (rng.standard_normal(shape) * scale).astype(dtype)
    y = rng.integers(0, max(shape[1], 1), shape[0])
    return y, raw


def check_all_methods(loss, y, raw, sw, dtype, n_threads=None):
    """Every method of a MultinomialLoss against the reference."""
    losses, grad, hess, proba = ref.multinomial(y, raw, sw)
    tol = tolerance(dtype)
    out = loss.loss(y, raw, sw, n_threads=n_threads)
    assert out.dtype == dtype and out.shape == losses.shape
    np.testing.assert_allclose(out, losses, **tol)
    out_loss, out_grad = loss.loss_gradient(y, raw, sw, n_threads=n_threads)
    np.testing.assert_allclose(out_loss, losses, **tol)
    np.testing.assert_allclose(out_grad, grad, **tol)
    np.testing.assert_allclose(loss.gradient(y, raw, sw, n_threads=n_threads), grad, **tol)
    out_grad, out_hess = loss.gradient_hessian(y, raw, sw, n_threads=n_threads)
    np.testing.assert_allclose(out_grad, grad, **tol)
    np.testing.assert_allclose(out_hess, hess, **tol)
    out_grad, out_proba = loss.gradient_proba(y, raw, sw, n_threads=n_threads)
    np.testing.assert_allclose(out_grad, grad, **tol)
    np.testing.assert_allclose(out_proba, proba, **tol)
    for a in (out_grad, out_hess, out_proba):
        assert a.dtype == dtype and a.shape == raw.shape


# -- MultinomialLoss ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", MULTI_SHAPES)
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_multinomial_matches_reference(isa, rng, dtype, shape, n_threads, weighted):
    y, raw = make_multi(rng, shape, dtype)
    sw = rng.uniform(0.1, 3.0, shape[0]) if weighted else None
    before = raw.copy()
    check_all_methods(MultinomialLoss(), y, raw, sw, dtype, n_threads)
    np.testing.assert_array_equal(raw, before)


@pytest.mark.parametrize("label_dtype", [np.float64, np.float32, np.int64, np.int32, np.uint8, np.int16])
def test_multinomial_label_dtypes(rng, label_dtype):
    y, raw = make_multi(rng, (40, 6), np.float64)
    expected = ref.multinomial(y, raw)[0]
    np.testing.assert_allclose(MultinomialLoss().loss(y.astype(label_dtype), raw), expected, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_multinomial_matches_sklearn(rng, dtype, weighted):
    loss_module = pytest.importorskip("sklearn._loss.loss")
    y, raw = make_multi(rng, (200, 11), dtype)
    y_float = y.astype(dtype)   # scikit-learn's convention: labels as floats
    sw = rng.uniform(0.1, 3.0, 200).astype(dtype) if weighted else None
    sk = loss_module.HalfMultinomialLoss(n_classes=11)
    ours = MultinomialLoss(n_classes=11)
    tol = tolerance(dtype)
    np.testing.assert_allclose(ours.loss(y_float, raw, sw), sk.loss(y_float, raw, sw), **tol)
    for method in ("loss_gradient", "gradient_hessian", "gradient_proba"):
        for a, b in zip(getattr(ours, method)(y_float, raw, sw), getattr(sk, method)(y_float, raw, sw)):
            np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(ours.gradient(y_float, raw, sw), sk.gradient(y_float, raw, sw), **tol)


def test_multinomial_is_a_linear_model_loss_base(rng):
    """Drop-in as scikit-learn's LinearModelLoss(base_loss=...)."""
    linear_loss = pytest.importorskip("sklearn.linear_model._linear_loss")
    loss_module = pytest.importorskip("sklearn._loss.loss")
    X = rng.standard_normal((60, 4))
    y = rng.integers(0, 5, 60).astype(np.float64)
    coef = rng.standard_normal((5, 5))
    theirs = linear_loss.LinearModelLoss(loss_module.HalfMultinomialLoss(n_classes=5), True)
    ours = linear_loss.LinearModelLoss(MultinomialLoss(n_classes=5), True)
    for a, b in zip(ours.loss_gradient(coef, X, y, l2_reg_strength=0.1),
                    theirs.loss_gradient(coef, X, y, l2_reg_strength=0.1)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multinomial_any_layout(isa, rng, dtype):
    """Fortran-order and column-sliced raw predictions and outputs."""
    y, raw = make_multi(rng, (50, 9), dtype)
    losses, grad, hess, proba = ref.multinomial(y, raw)
    tol = tolerance(dtype)
    for view in (np.asfortranarray(raw), np.repeat(raw, 2, axis=1)[:, ::2], raw[::-1][::-1]):
        np.testing.assert_allclose(MultinomialLoss().loss(y, view), losses, **tol)
        g_out = np.empty((9, 50), dtype).T             # strided class axis
        h_out = np.empty((50, 18), dtype)[:, ::2]
        g, h = MultinomialLoss().gradient_hessian(y, view, gradient_out=g_out, hessian_out=h_out, n_threads=2)
        assert g is g_out and h is h_out
        np.testing.assert_allclose(g, grad, **tol)
        np.testing.assert_allclose(h, hess, **tol)
        p_out = np.empty((9, 50), dtype).T
        g, p = MultinomialLoss().gradient_proba(y, view, proba_out=p_out)
        assert p is p_out
        np.testing.assert_allclose(g, grad, **tol)
        np.testing.assert_allclose(p, proba, **tol)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("which", ["gradient_out", "hessian_out"])
def test_multinomial_in_place(rng, order, which):
    y, raw = make_multi(rng, (30, 7), np.float64)
    raw = np.asarray(raw, order=order)
    losses, grad, hess, _ = ref.multinomial(y, raw)
    g, h = MultinomialLoss().gradient_hessian(y, raw, **{which: raw})
    assert (g if which == "gradient_out" else h) is raw
    np.testing.assert_allclose(g, grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h, hess, rtol=1e-12, atol=1e-15)


def test_multinomial_loss_gradient_in_place(rng):
    y, raw = make_multi(rng, (30, 7), np.float32)
    losses, grad, _, _ = ref.multinomial(y, raw)
    out_loss, out_grad = MultinomialLoss().loss_gradient(y, raw, gradient_out=raw)
    assert out_grad is raw
    np.testing.assert_allclose(out_loss, losses, **tolerance(np.float32))
    np.testing.assert_allclose(out_grad, grad, **tolerance(np.float32))


@pytest.mark.parametrize("loss_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("contiguous", [True, False])
def test_loss_out(rng, loss_dtype, contiguous):
    y, raw = make_multi(rng, (25, 4), np.float64)
    buffer = np.full(50, -1.0, dtype=loss_dtype)
    loss_out = buffer[:25] if contiguous else buffer[::2]
    result = MultinomialLoss().loss(y, raw, loss_out=loss_out)
    assert result is loss_out
    np.testing.assert_allclose(result, ref.multinomial(y, raw)[0], **tolerance(loss_dtype))
    if not contiguous:
        assert np.all(buffer[1::2] == -1)


def test_multinomial_gradient_matches_finite_differences(rng):
    y, raw = make_multi(rng, (5, 6), np.float64)
    sw = rng.uniform(0.5, 2.0, 5)
    loss = MultinomialLoss()
    grad, hess = loss.gradient_hessian(y, raw, sw)
    eps = 1e-6
    for row in range(5):
        for k in range(6):
            step = np.zeros_like(raw)
            step[row, k] = eps
            numeric = (loss.loss(y, raw + step, sw).sum() - loss.loss(y, raw - step, sw).sum()) / (2 * eps)
            assert abs(numeric - grad[row, k]) < 1e-7
            numeric = (loss.gradient(y, raw + step, sw)[row, k]
                       - loss.gradient(y, raw - step, sw)[row, k]) / (2 * eps)
            assert abs(numeric - hess[row, k]) < 1e-7


def test_multinomial_special_values():
    raw = np.array([[0.0, np.nan, 1.0], [1.0, 2.0, 3.0], [-np.inf, 0.0, 1.0], [1e300, 1e300, -1e300]])
    y = np.array([0, 1, 2, 0])
    losses, grad = MultinomialLoss().loss_gradient(y, raw)
    assert np.isnan(losses[0]) and np.all(np.isnan(grad[0]))
    expected = ref.multinomial(y[1:3], raw[1:3])
    np.testing.assert_allclose(losses[1:3], expected[0], rtol=1e-13)
    np.testing.assert_allclose(grad[1:3], expected[1], rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(losses[3], np.log(2), rtol=1e-13)   # huge, equal raw predictions
    np.testing.assert_allclose(grad[3], [-0.5, 0.5, 0.0])


def test_serial_equals_parallel(rng):
    y, raw = make_multi(rng, (777, 300), np.float32)
    sw = rng.uniform(0.1, 2, 777)
    one = MultinomialLoss().gradient_hessian(y, raw, sw, n_threads=1)
    two = MultinomialLoss().gradient_hessian(y, raw, sw, n_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_multinomial_errors(rng):
    y, raw = make_multi(rng, (6, 4), np.float64)
    loss = MultinomialLoss()
    with pytest.raises(ValueError, match=r"y_true\[2\] = 1.5 is not an integer class index"):
        loss.loss(np.array([0, 1, 1.5, 0, 0, 0]), raw)
    with pytest.raises(ValueError, match=r"y_true\[1\] = 4.0 is outside \[0, 4\)"):
        loss.loss(np.array([0, 4.0, 1, 0, 0, 0]), raw)
    with pytest.raises(ValueError, match=r"y_true\[0\] = nan is outside"):
        loss.loss(np.array([np.nan, 0, 1, 0, 0, 0]), raw)
    with pytest.raises(ValueError, match=r"y_true\[3\] = -1 is outside \[0, 4\)"):
        loss.loss(np.array([0, 1, 2, -1, 0, 0]), raw)
    with pytest.raises(ValueError, match=r"y_true must have shape \(6,\)"):
        loss.loss(y[:5], raw)
    with pytest.raises(ValueError, match=r"y_true must have shape \(6,\)"):
        loss.loss(y[:5].astype(float), raw)
    with pytest.raises(TypeError, match="y_true must hold integer class indices.*got bool"):
        loss.loss(y > 1, raw)
    with pytest.raises(TypeError, match="raw_prediction must be float32 or float64, got float16"):
        loss.loss(y, raw.astype(np.float16))
    with pytest.raises(ValueError, match=r"raw_prediction must have shape \(rows, classes\)"):
        loss.loss(y, raw[:, 0])
    with pytest.raises(ValueError, match="raw_prediction must have 5 columns"):
        MultinomialLoss(n_classes=5).loss(y, raw)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(6,\)"):
        loss.loss(y, raw, np.ones(5))
    with pytest.raises(TypeError, match="sample_weight must be a real array"):
        loss.loss(y, raw, np.array(["a"] * 6))
    with pytest.raises(TypeError, match="gradient_out must have dtype float64"):
        loss.gradient(y, raw, gradient_out=np.empty((6, 4), np.float32))
    with pytest.raises(ValueError, match=r"hessian_out must have shape \(6, 4\)"):
        loss.gradient_hessian(y, raw, hessian_out=np.empty((6, 5)))
    with pytest.raises(TypeError, match="loss_out must be float32 or float64, got int64"):
        loss.loss(y, raw, loss_out=np.empty(6, np.int64))
    with pytest.raises(ValueError, match="loss_out overlaps an input"):
        loss.loss(y, raw, loss_out=raw[:, 0])
    shared = np.empty((6, 4))
    with pytest.raises(ValueError, match="gradient_out and hessian_out share memory"):
        loss.gradient_hessian(y, raw, gradient_out=shared, hessian_out=shared)
    with pytest.raises(ValueError, match="gradient_out overlaps an input"):
        loss.gradient(y, raw, gradient_out=raw[::-1])
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        loss.loss(y, raw, n_threads=0)
    untouched = np.full((6, 4), 7.0)
    with pytest.raises(ValueError):
        loss.gradient(np.array([0, 1, 2, 3, 4, 0]), raw, gradient_out=untouched)
    assert np.all(untouched == 7.0)   # validated before any output is written


def test_hessian_needs_gradient_in_kernel(rng):
    y, raw = make_multi(rng, (3, 3), np.float64)
    with pytest.raises(ValueError, match="hessian is computed with the gradient"):
        kernels.objective.multinomial(raw, y, None, None, None, np.empty_like(raw), None, None, 1)


def test_kernel_never_reads_out_of_range_label(rng):
    y, raw = make_multi(rng, (3, 4), np.float64)
    y[1] = 99   # bypasses the Python checks
    losses = np.empty(3)
    grad = np.empty_like(raw)
    kernels.objective.multinomial(raw, y, None, losses, grad, None, None, None, 1)
    assert np.isnan(losses[1]) and np.all(np.isnan(grad[1]))
    assert np.all(np.isfinite(losses[[0, 2]]))


# -- BinomialLoss ---------------------------------------------------------------------------


def make_binary(rng, n_rows, dtype, scale=5.0, soft=False):
    raw = (rng.standard_normal(n_rows) * scale).astype(dtype)
    y = rng.uniform(0, 1, n_rows) if soft else rng.integers(0, 2, n_rows).astype(np.float64)
    return y, raw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_rows", [0, 1, 17, 5000])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("soft", [False, True])
def test_binomial_matches_reference(isa, rng, dtype, n_rows, n_threads, weighted, soft):
    y, raw = make_binary(rng, n_rows, dtype, soft=soft)
    sw = rng.uniform(0.1, 3.0, n_rows) if weighted else None
    before = raw.copy()
    losses, grad, hess = ref.binomial(y, raw, sw)
    # soft targets: expit(raw) - y cancels in any formula, hence the atol
    tol = {"rtol": 1e-6, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-15}
    loss = BinomialLoss()
    out = loss.loss(y, raw, sw, n_threads=n_threads)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, losses, **tol)
    out_loss, out_grad = loss.loss_gradient(y, raw, sw, n_threads=n_threads)
    np.testing.assert_allclose(out_loss, losses, **tol)
    np.testing.assert_allclose(out_grad, grad, **tol)
    np.testing.assert_allclose(loss.gradient(y, raw, sw, n_threads=n_threads), grad, **tol)
    out_grad, out_hess = loss.gradient_hessian(y, raw, sw, n_threads=n_threads)
    assert out_grad.dtype == out_hess.dtype == dtype
    np.testing.assert_allclose(out_grad, grad, **tol)
    np.testing.assert_allclose(out_hess, hess, **tol)
    np.testing.assert_array_equal(raw, before)


def test_binomial_extremes():
    """No overflow, no cancellation: |raw| up to the dtype's limit."""
    raw = np.array([-1e308, -800, -700, -40, -1e-10, 0, 1e-10, 40, 700, 800, 1e308])
    for y_value in (0.0, 1.0, 0.3):
        y = np.full(raw.shape, y_value)
        losses, grad, hess = ref.binomial(y, raw)
        out_loss, out_grad = BinomialLoss().loss_gradient(y, raw)
        _, out_hess = BinomialLoss().gradient_hessian(y, raw)
        np.testing.assert_allclose(out_loss, losses, rtol=1e-14, atol=0)
        np.testing.assert_allclose(out_grad, grad, rtol=1e-14, atol=0)
        # exp(-|raw|) below the smallest normal double is flushed to 0 (fx_exp_neg)
        np.testing.assert_allclose(out_hess, hess, rtol=1e-14, atol=3e-308)
    raw32 = np.array([-3e38, -100, 100, 3e38], dtype=np.float32)
    y32 = np.array([1.0, 0.0, 1.0, 0.0])
    losses = BinomialLoss().loss(y32, raw32)
    np.testing.assert_allclose(losses, ref.binomial(y32, raw32)[0], rtol=1e-6, atol=1e-44)   # 3.7e-44 stays


def test_binomial_nan_stays_in_its_row():
    raw = np.array([0.5, np.nan, -0.5])
    losses, grad = BinomialLoss().loss_gradient(np.array([1.0, 0.0, 1.0]), raw)
    assert np.isnan(losses[1]) and np.isnan(grad[1])
    assert np.all(np.isfinite(losses[[0, 2]])) and np.all(np.isfinite(grad[[0, 2]]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binomial_matches_sklearn(rng, dtype):
    loss_module = pytest.importorskip("sklearn._loss.loss")
    y, raw = make_binary(rng, 300, dtype, scale=10.0, soft=True)
    y = y.astype(dtype)
    sw = rng.uniform(0.1, 3.0, 300).astype(dtype)
    sk = loss_module.HalfBinomialLoss()
    tol = {"rtol": 1e-6, "atol": 1e-7} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-15}
    np.testing.assert_allclose(BinomialLoss().loss(y, raw, sw), sk.loss(y, raw, sw), **tol)
    for method in ("loss_gradient", "gradient_hessian"):
        for a, b in zip(getattr(BinomialLoss(), method)(y, raw, sw), getattr(sk, method)(y, raw, sw)):
            np.testing.assert_allclose(a, b, **tol)


def test_binomial_shapes_layouts_and_outputs(rng):
    y, raw = make_binary(rng, 40, np.float64)
    losses, grad, hess = ref.binomial(y, raw)
    column = raw[:, None]
    np.testing.assert_allclose(BinomialLoss().loss(y, column), losses, rtol=1e-13)
    strided = np.repeat(raw, 3)[::3]
    g_out = np.empty((40, 1))
    h_out = np.empty(80)[::2]
    g, h = BinomialLoss().gradient_hessian(y, strided, gradient_out=g_out, hessian_out=h_out)
    assert np.shares_memory(g, g_out) and h is h_out
    np.testing.assert_allclose(g_out[:, 0], grad, rtol=1e-13)
    np.testing.assert_allclose(h, hess, rtol=1e-13)
    work = raw.copy()
    out_loss, g = BinomialLoss().loss_gradient(y, work, gradient_out=work)   # in place
    assert g is work
    np.testing.assert_allclose(out_loss, losses, rtol=1e-13)
    np.testing.assert_allclose(g, grad, rtol=1e-13)


def test_binomial_gradient_matches_finite_differences(rng):
    y, raw = make_binary(rng, 8, np.float64, scale=2.0, soft=True)
    sw = rng.uniform(0.5, 2.0, 8)
    grad, hess = BinomialLoss().gradient_hessian(y, raw, sw)
    eps = 1e-6
    numeric = (BinomialLoss().loss(y, raw + eps, sw) - BinomialLoss().loss(y, raw - eps, sw)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-9)
    numeric = (BinomialLoss().gradient(y, raw + eps, sw) - BinomialLoss().gradient(y, raw - eps, sw)) / (2 * eps)
    np.testing.assert_allclose(hess, numeric, rtol=1e-7, atol=1e-9)


def test_binomial_errors(rng):
    y, raw = make_binary(rng, 5, np.float64)
    with pytest.raises(ValueError, match=r"y_true\[1\] = 2.0 is outside \[0, 1\]"):
        BinomialLoss().loss(np.array([0, 2.0, 1, 0, 0]), raw)
    with pytest.raises(ValueError, match=r"y_true must have shape \(5,\)"):
        BinomialLoss().loss(y[:4], raw)
    with pytest.raises(TypeError, match="y_true must be a real array"):
        BinomialLoss().loss(np.array(["a"] * 5), raw)
    with pytest.raises(ValueError, match=r"raw_prediction must have shape \(samples,\) or \(samples, 1\)"):
        BinomialLoss().loss(y, np.zeros((5, 2)))
    with pytest.raises(TypeError, match="gradient_out must have dtype float64"):
        BinomialLoss().gradient(y, raw, gradient_out=np.empty(5, np.float32))
    with pytest.raises(ValueError, match="gradient_out and hessian_out share memory"):
        out = np.empty(5)
        BinomialLoss().gradient_hessian(y, raw, gradient_out=out, hessian_out=out)


def test_log1p_accuracy():
    t = np.concatenate([np.linspace(0, 1, 200_001), np.geomspace(1e-300, 1, 2000), [np.sqrt(2) - 1]])
    out = np.empty_like(t)
    kernels.objective.log1p_values(t, out)
    expected = np.log1p(t)
    ulp = np.spacing(np.maximum(expected, np.finfo(float).tiny))
    assert np.max(np.abs(out - expected) / ulp) <= 2.0
    nan_out = np.empty(1)
    kernels.objective.log1p_values(np.array([np.nan]), nan_out)
    assert np.isnan(nan_out[0])


# -- LinearModelObjective ---------------------------------------------------------------------


def make_linear(rng, n_rows=97, n_features=6, n_classes=5, dtype=np.float64, sparse=False):
    X = rng.standard_normal((n_rows, n_features)).astype(dtype)
    if sparse:
        scipy_sparse = pytest.importorskip("scipy.sparse")
        X[rng.uniform(size=X.shape) < 0.6] = 0
        X = scipy_sparse.csr_matrix(X)
    y = rng.integers(0, n_classes, n_rows)
    return X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("block_rows", [None, 10])
def test_linear_objective_matches_reference(rng, dtype, sparse, fit_intercept, weighted, block_rows):
    X, y = make_linear(rng, dtype=dtype, sparse=sparse)
    sw = rng.uniform(0.2, 2.0, X.shape[0]) if weighted else None
    objective = LinearModelObjective(X, y, n_classes=5, sample_weight=sw, alpha=0.3,
                                     fit_intercept=fit_intercept, block_rows=block_rows)
    coef = rng.standard_normal(objective.n_coef)
    f, grad = ref.linear_objective(X, y, coef, 5, sw, 0.3, fit_intercept)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}
    out_f, out_grad = objective.loss_gradient(coef)
    assert isinstance(out_f, float) and out_grad.dtype == np.float64 and out_grad.shape == coef.shape
    np.testing.assert_allclose(out_f, f, **tol)
    np.testing.assert_allclose(out_grad, grad, **tol)
    np.testing.assert_allclose(objective.loss(coef), f, **tol)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_linear_objective_matches_sklearn(rng, fit_intercept, weighted):
    linear_loss = pytest.importorskip("sklearn.linear_model._linear_loss")
    loss_module = pytest.importorskip("sklearn._loss.loss")
    X, y = make_linear(rng)
    sw = rng.uniform(0.2, 2.0, X.shape[0]) if weighted else None
    objective = LinearModelObjective(X, y.astype(float), n_classes=5, sample_weight=sw, alpha=0.7,
                                     fit_intercept=fit_intercept, block_rows=16)
    theirs = linear_loss.LinearModelLoss(loss_module.HalfMultinomialLoss(n_classes=5), fit_intercept)
    coef = rng.standard_normal(objective.n_coef)
    W, b = objective.unpack(coef)
    sk_coef = np.hstack([W, b[:, None]]) if fit_intercept else W.copy()   # (classes, dof)

    def ours_layout(sk_array):
        return objective.pack(sk_array[:, :6], sk_array[:, 6] if fit_intercept else None)

    f, grad = theirs.loss_gradient(sk_coef, X, y.astype(float), sw, l2_reg_strength=0.7)
    out_f, out_grad = objective.loss_gradient(coef)
    np.testing.assert_allclose(out_f, f, rtol=1e-12)
    np.testing.assert_allclose(out_grad, ours_layout(grad), rtol=1e-11, atol=1e-14)
    grad, hessp = theirs.gradient_hessian_product(sk_coef, X, y.astype(float), sw, l2_reg_strength=0.7)
    out_grad, out_hessp = objective.gradient_hessian_product(coef)
    np.testing.assert_allclose(out_grad, ours_layout(grad), rtol=1e-11, atol=1e-14)
    s = rng.standard_normal(objective.n_coef)
    S, sb = objective.unpack(s)
    expected = hessp(np.hstack([S, sb[:, None]]) if fit_intercept else S.copy())
    np.testing.assert_allclose(out_hessp(s), ours_layout(expected), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("sparse", [False, True])
def test_linear_objective_finite_differences(rng, sparse):
    X, y = make_linear(rng, n_rows=40, n_features=3, n_classes=4, sparse=sparse)
    sw = rng.uniform(0.2, 2.0, 40)
    objective = LinearModelObjective(X, y, n_classes=4, sample_weight=sw, alpha=0.2, block_rows=7)
    coef = rng.standard_normal(objective.n_coef)
    _, grad = objective.loss_gradient(coef)
    _, hessp = objective.gradient_hessian_product(coef)
    eps = 1e-6
    for index in range(objective.n_coef):
        step = np.zeros_like(coef)
        step[index] = eps
        numeric = (objective.loss(coef + step) - objective.loss(coef - step)) / (2 * eps)
        assert abs(numeric - grad[index]) < 1e-7
        column = (objective.loss_gradient(coef + step)[1] - objective.loss_gradient(coef - step)[1]) / (2 * eps)
        np.testing.assert_allclose(hessp(step / eps), column, rtol=1e-6, atol=1e-7)


def test_linear_objective_minimize_reaches_stationary_point(rng):
    optimize = pytest.importorskip("scipy.optimize")
    X, y = make_linear(rng, n_rows=300, n_features=5, n_classes=4)
    objective = LinearModelObjective(X, y, alpha=0.01)
    result = optimize.minimize(objective.loss_gradient, objective.zero_coef(), jac=True, method="L-BFGS-B",
                               options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 500})
    assert result.success
    assert np.max(np.abs(objective.loss_gradient(result.x)[1])) < 1e-7
    newton = optimize.minimize(objective.loss, objective.zero_coef(), method="trust-ncg",
                               jac=lambda c: objective.loss_gradient(c)[1],
                               hessp=lambda c, s: objective.gradient_hessian_product(c)[1](s),
                               options={"gtol": 1e-10})
    np.testing.assert_allclose(newton.x, result.x, rtol=1e-5, atol=1e-6)


def test_linear_objective_memory_is_blockwise(rng):
    """The sweep never holds the (samples x classes) raw predictions."""
    n_rows, n_classes = 20_000, 50
    X, y = make_linear(rng, n_rows=n_rows, n_features=4, n_classes=n_classes)
    objective = LinearModelObjective(X, y, n_classes=n_classes, block_rows=1000)
    coef = rng.standard_normal(objective.n_coef)
    full = n_rows * n_classes * 8
    for call in (objective.loss_gradient, lambda c: objective.gradient_hessian_product(c)[1](c)):
        tracemalloc.start()
        call(coef)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < full / 4, (peak, full)


def test_linear_objective_uses_fused_kernel_when_available(rng, monkeypatch):
    """Dense, unweighted: fastxent.linear_cross_entropy(_and_grad) with the
    issue-6 signature, when installed; never for sparse X or sample weights."""
    X, y = make_linear(rng, n_rows=50, n_features=4, n_classes=3)
    calls = []

    def fake_and_grad(x, weight, labels, bias=None, *, reduction="mean", n_threads=None):
        calls.append((x, weight.shape, bias is None, reduction))
        logits = x @ weight.T + (0 if bias is None else bias)
        losses, grad_raw, _, _ = ref.multinomial(labels, logits)
        n = x.shape[0]
        return (losses.mean(), grad_raw @ weight / n, grad_raw.T @ x / n,
                None if bias is None else grad_raw.sum(axis=0) / n)

    def fake_loss(x, weight, labels, bias=None, *, reduction="mean", n_threads=None):
        return fake_and_grad(x, weight, labels, bias, reduction=reduction)[0]

    monkeypatch.setattr(fastxent, "linear_cross_entropy_and_grad", fake_and_grad, raising=False)
    monkeypatch.setattr(fastxent, "linear_cross_entropy", fake_loss, raising=False)
    for fit_intercept in (True, False):
        objective = LinearModelObjective(X, y, n_classes=3, alpha=0.1, fit_intercept=fit_intercept)
        coef = rng.standard_normal(objective.n_coef)
        f, grad = ref.linear_objective(X, y, coef, 3, None, 0.1, fit_intercept)
        calls.clear()
        out_f, out_grad = objective.loss_gradient(coef)
        assert len(calls) == 1 and calls[0][0] is X and calls[0][2] == (not fit_intercept)
        np.testing.assert_allclose(out_f, f, rtol=1e-12)
        np.testing.assert_allclose(out_grad, grad, rtol=1e-12)
        np.testing.assert_allclose(objective.loss(coef), f, rtol=1e-12)
    calls.clear()
    LinearModelObjective(X, y, sample_weight=np.ones(50)).loss_gradient(np.zeros(15))
    assert not calls


def test_linear_objective_errors(rng):
    X, y = make_linear(rng, n_rows=10, n_features=3, n_classes=3)
    with pytest.raises(TypeError, match="X must be float32 or float64, got int64"):
        LinearModelObjective(X.astype(np.int64), y)
    with pytest.raises(ValueError, match=r"X must have shape \(samples, features\)"):
        LinearModelObjective(X[:, 0], y)
    with pytest.raises(ValueError, match=r"y\[0\] = 3 is outside \[0, 3\)"):
        LinearModelObjective(X, np.full(10, 3), n_classes=3)
    with pytest.raises(ValueError, match=r"y\[0\] = 0.5 is not an integer"):
        LinearModelObjective(X, np.full(10, 0.5))
    with pytest.raises(ValueError, match="alpha must be a non-negative number"):
        LinearModelObjective(X, y, alpha=-1.0)
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        LinearModelObjective(X, y, n_classes=0)
    with pytest.raises(ValueError, match="block_rows must be a positive integer"):
        LinearModelObjective(X, y, block_rows=0)
    with pytest.raises(ValueError, match="sample weights must have a positive sum"):
        LinearModelObjective(X, y, sample_weight=np.zeros(10))
    objective = LinearModelObjective(X, y, n_classes=3)
    with pytest.raises(ValueError, match=r"coef must have shape \(12,\)"):
        objective.loss_gradient(np.zeros(11))
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="sparse X must be in CSR format, got csc"):
        LinearModelObjective(scipy_sparse.csc_matrix(X), y)
    with pytest.raises(TypeError, match="X must be float32 or float64, got int64"):
        LinearModelObjective(scipy_sparse.csr_matrix(X.astype(np.int64)), y)

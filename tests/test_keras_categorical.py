"""Keras-style categorical losses against Keras 3 itself (KERAS_BACKEND=torch,
set in conftest.py), the float64 reference and PyTorch autograd."""
import numpy as np
import pytest

import fastxent as fx
import reference as ref
import reference_softmax as rs
from conftest import tolerance

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
# keras's torch backend converts with np.array(x), which numpy 2 warns about
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def keras_np(value):
    return keras.ops.convert_to_numpy(value)


def make(rng, dtype, shape=(6, 3, 5)):
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    probs = rng.uniform(0.0, 1.0, shape).astype(dtype)
    probs[(0,) * (len(shape) - 1)] = np.eye(shape[-1])[0]             # clipped on both sides
    targets = rng.random(shape).astype(dtype)
    labels = rng.integers(0, shape[-1], shape[:-1])
    return logits, probs, targets, labels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [True, False])
def test_functions_match_keras(isa, rng, dtype, from_logits):
    logits, probs, targets, labels = make(rng, dtype)
    y_pred = logits if from_logits else probs
    tol = tolerance(dtype) if dtype == np.float32 else dict(rtol=1e-7, atol=1e-7)   # keras' float32 constants
    for ignore_class in (None, 2):
        np.testing.assert_allclose(
            fx.sparse_categorical_crossentropy(labels, y_pred, from_logits, ignore_class),
            keras_np(keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits, ignore_class)),
            **tol)
    for smoothing in (0.0, 0.2):
        np.testing.assert_allclose(
            fx.categorical_crossentropy(targets, y_pred, from_logits, smoothing),
            keras_np(keras.losses.categorical_crossentropy(targets, y_pred, from_logits, smoothing)), **tol)
    # (batch, 1) labels are squeezed, float labels cast, as Keras does
    np.testing.assert_allclose(
        fx.sparse_categorical_crossentropy(labels[:, :1].astype(dtype), y_pred[:, 0], from_logits),
        keras_np(keras.losses.sparse_categorical_crossentropy(labels[:, :1].astype(dtype), y_pred[:, 0],
                                                              from_logits)), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [True, False])
def test_focal_matches_keras_inside_the_clip_range(rng, dtype, from_logits):
    logits, probs, targets, _ = make(rng, dtype)
    logits = logits / 3                                              # p well inside [1e-7, 1 - 1e-7]
    probs = probs + 0.1
    y_pred = logits if from_logits else probs
    for alpha, gamma, smoothing in ((0.25, 2.0, 0.0), ([0.1, 0.2, 0.3, 0.4, 0.5], 1.5, 0.1), (1.0, 0.0, 0.0)):
        expected = keras_np(keras.losses.categorical_focal_crossentropy(
            targets, y_pred, alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=smoothing))
        got = fx.categorical_focal_crossentropy(targets, y_pred, alpha, gamma, from_logits, smoothing)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=2e-6 if dtype == np.float32 else 1e-7, atol=1e-7)


def test_focal_from_logits_is_exact_for_large_logits():
    logits = np.array([[200.0, 0.0, -200.0], [0.0, 60.0, 0.0]])
    onehot = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    log_p = ref.log_softmax(logits)
    expected = rs.focal(onehot, log_p, 0.25, 2.0)
    got = fx.categorical_focal_crossentropy(onehot, logits, from_logits=True)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[0] > 99                           # Keras clips p at 1e-7 and reports 0.25 * 16.1 = 4.03
    sparse = fx.sparse_categorical_focal_crossentropy([2, 0], logits, from_logits=True)
    np.testing.assert_allclose(sparse, expected, rtol=1e-12)
    # near p = 1: 1 - p = -expm1(log p) keeps its digits (1 - p = 2.06e-9 here)
    near_one = np.array([[20.0, 0.0]])
    minus_log_p = np.log1p(np.exp(-20.0))
    got = fx.sparse_categorical_focal_crossentropy([0], near_one, gamma=1.0, alpha=1.0, from_logits=True)
    np.testing.assert_allclose(got, [-np.expm1(-minus_log_p) * minus_log_p], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_focal_matches_categorical_focal(rng, dtype):
    logits, probs, _, labels = make(rng, dtype)
    onehot = np.eye(5, dtype=dtype)[labels]
    alpha = [0.1, 0.2, 0.3, 0.4, 0.5]
    for y_pred, from_logits in ((logits, True), (probs, False)):
        expected = fx.categorical_focal_crossentropy(onehot, y_pred, alpha, 2.0, from_logits)
        got = fx.sparse_categorical_focal_crossentropy(labels, y_pred, alpha, 2.0, from_logits)
        np.testing.assert_allclose(got, expected, **tolerance(dtype))
        masked = fx.sparse_categorical_focal_crossentropy(labels, y_pred, alpha, 2.0, from_logits,
                                                          ignore_class=1)
        np.testing.assert_allclose(masked, np.where(labels == 1, 0.0, expected), **tolerance(dtype))
    # axis=1 (PyTorch layout) gives the same
    np.testing.assert_allclose(
        fx.sparse_categorical_focal_crossentropy(labels, np.moveaxis(logits, -1, 1), alpha, 2.0, True, axis=1),
        fx.sparse_categorical_focal_crossentropy(labels, logits, alpha, 2.0, True), **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight", "none"])
def test_classes_match_keras(rng, dtype, reduction):
    logits, probs, targets, labels = make(rng, dtype)
    weights = rng.random(labels.shape)
    pairs = [
        (fx.SparseCategoricalCrossentropy(from_logits=True, ignore_class=2, reduction=reduction),
         keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=2, reduction=reduction,
                                                    dtype=dtype.__name__), labels, logits),
        (fx.SparseCategoricalCrossentropy(reduction=reduction),
         keras.losses.SparseCategoricalCrossentropy(reduction=reduction, dtype=dtype.__name__), labels, probs),
        (fx.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, reduction=reduction),
         keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, reduction=reduction,
                                              dtype=dtype.__name__), targets, logits),
        (fx.CategoricalFocalCrossentropy(alpha=0.5, gamma=1.0, reduction=reduction),
         keras.losses.CategoricalFocalCrossentropy(alpha=0.5, gamma=1.0, reduction=reduction,
                                                   dtype=dtype.__name__), targets, probs),
    ]
    for ours, theirs, y_true, y_pred in pairs:
        for sample_weight in (None, weights):
            expected = keras_np(theirs(y_true, y_pred, sample_weight=sample_weight))
            got = ours(y_true, y_pred, sample_weight=sample_weight)
            assert np.asarray(got).dtype == dtype
            np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-6, err_msg=type(ours).__name__)
    assert fx.CategoricalFocalCrossentropy(alpha=0.5).get_config()["alpha"] == 0.5
    assert fx.SparseCategoricalCrossentropy(ignore_class=3).get_config()["ignore_class"] == 3


def keras_grad(fn, y_true, y_pred, **kwargs):
    pred = torch.tensor(y_pred, requires_grad=True)
    fn(torch.tensor(y_true), pred, **kwargs).sum().backward()
    return pred.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [True, False])
def test_gradients_match_keras_autograd(rng, dtype, from_logits):
    logits, probs, targets, labels = make(rng, dtype)
    y_pred = logits if from_logits else probs
    loss, grad = fx.categorical_crossentropy_and_grad(targets, y_pred, from_logits, 0.1)
    np.testing.assert_allclose(loss, fx.categorical_crossentropy(targets, y_pred, from_logits, 0.1))
    expected = keras_grad(keras.losses.categorical_crossentropy, targets, y_pred, from_logits=from_logits,
                          label_smoothing=0.1)
    np.testing.assert_allclose(grad, expected, rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-5)
    loss, grad = fx.sparse_categorical_crossentropy_and_grad(labels, y_pred, from_logits, ignore_class=2)
    expected = keras_grad(keras.losses.sparse_categorical_crossentropy, labels, y_pred,
                          from_logits=from_logits, ignore_class=2)
    np.testing.assert_allclose(grad, expected, rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-5)
    # in place, and the class axis in the middle
    work = y_pred.copy()
    _, grad = fx.sparse_categorical_crossentropy_and_grad(labels, work, from_logits, ignore_class=2, out=work)
    assert grad is work
    np.testing.assert_allclose(work, expected, rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-5)
    moved = np.moveaxis(y_pred, -1, 1)
    _, grad = fx.categorical_crossentropy_and_grad(np.moveaxis(targets, -1, 1), moved, from_logits, 0.1, axis=1)
    np.testing.assert_allclose(np.moveaxis(grad, 1, -1),
                               fx.categorical_crossentropy_and_grad(targets, y_pred, from_logits, 0.1)[1],
                               **tolerance(dtype))


def test_probability_gradient_matches_finite_differences(rng):
    _, probs, targets, _ = make(rng, np.float64, (4, 6))
    probs += 0.05                           # no value on a clip bound, where the derivative jumps
    _, grad = fx.categorical_crossentropy_and_grad(targets, probs, label_smoothing=0.1)
    h = 1e-7
    numeric = np.zeros_like(probs)
    for index in np.ndindex(probs.shape):
        plus, minus = probs.copy(), probs.copy()
        plus[index] += h
        minus[index] -= h
        numeric[index] = (fx.categorical_crossentropy(targets, plus, label_smoothing=0.1).sum()
                          - fx.categorical_crossentropy(targets, minus, label_smoothing=0.1).sum()) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_probability_forms_match_reference(rng):
    _, probs, targets, labels = make(rng, np.float64, (30, 7))
    labels[0] = 1                           # its probability is 0 (clipped to 1e-7)
    np.testing.assert_allclose(fx.categorical_crossentropy(targets, probs, label_smoothing=0.3),
                               rs.categorical_probs(targets, probs, 0.3), rtol=1e-12)
    np.testing.assert_allclose(fx.sparse_categorical_crossentropy(labels, probs),
                               -np.log(rs.keras_probs(probs)[np.arange(30), labels]), rtol=1e-12)


def test_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match="y_true must have y_pred's dtype float32, got float64"):
        fx.categorical_crossentropy(np.zeros((2, 3)), x)
    with pytest.raises(ValueError, match=r"y_true must have y_pred's shape \(2, 3\)"):
        fx.categorical_crossentropy(np.zeros((2, 4), np.float32), x)
    with pytest.raises(ValueError, match="non-integer values"):
        fx.sparse_categorical_crossentropy(np.array([0.5, 1.0]), x)
    with pytest.raises(ValueError, match=r"y_true\[1\] = 3 is outside \[0, 3\)"):
        fx.sparse_categorical_crossentropy([0, 3], x, from_logits=True)
    with pytest.raises(ValueError, match=r"alpha must be a scalar or have shape \(3,\)"):
        fx.categorical_focal_crossentropy(np.zeros((2, 3), np.float32), x, alpha=[0.1, 0.2])
    with pytest.raises(ValueError, match="gamma must be a non-negative"):
        fx.sparse_categorical_focal_crossentropy([0, 1], x, gamma=-1.0)
    with pytest.raises(TypeError, match="gamma must be a non-negative"):
        fx.sparse_categorical_focal_crossentropy([0, 1], x, gamma="2")
    with pytest.raises(ValueError, match="reduction must be one of"):
        fx.CategoricalCrossentropy(reduction="avg")

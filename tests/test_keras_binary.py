"""Keras 3 style binary_crossentropy, binary_focal_crossentropy and their
classes against Keras 3 itself (torch backend), PyTorch, the float64
reference and finite differences."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
F = torch.nn.functional

import fastxent as fx  # noqa: E402
import reference_binary as ref  # noqa: E402
from conftest import tolerance  # noqa: E402

# Keras computes in float32 whatever it is given (floatx): compare at that precision
KERAS_TOL = {"rtol": 2e-5, "atol": 2e-6}


def keras_value(fn, *args, **kwargs):
    return keras.ops.convert_to_numpy(fn(*args, **kwargs))


def make(rng, shape, dtype, from_logits, scale=2.0):
    targets = (rng.uniform(size=shape) < 0.5).astype(dtype)
    if from_logits:
        return targets, (rng.standard_normal(shape) * scale).astype(dtype)
    return targets, rng.uniform(0.01, 0.99, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(16,), (1,), (12, 5), (3, 4, 6), (40, 1), (5, 6, 1)])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_binary_crossentropy_matches_keras(isa, rng, dtype, shape, from_logits, smoothing):
    targets, y_pred = make(rng, shape, dtype, from_logits)
    for axis in range(-1, len(shape) - 1 if len(shape) > 1 else 0):
        expected = keras_value(keras.losses.binary_crossentropy, targets, y_pred, from_logits=from_logits,
                               label_smoothing=smoothing, axis=axis)
        got = fx.binary_crossentropy(targets, y_pred, from_logits, smoothing, axis)
        assert got.dtype == dtype and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, **KERAS_TOL)
        element = (ref.sigmoid_xent(ref.smooth(targets, smoothing), y_pred)[0] if from_logits
                   else ref.bce(targets, y_pred, smoothing)[0])
        np.testing.assert_allclose(got, element.mean(axis=axis), **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probabilities_match_torch_binary_cross_entropy(rng, dtype):
    targets = rng.uniform(size=(30, 7)).astype(dtype)
    probs = rng.uniform(0.001, 0.999, (30, 7)).astype(dtype)
    p = torch.tensor(probs, requires_grad=True)
    expected = F.binary_cross_entropy(p, torch.tensor(targets), reduction="none").mean(dim=-1)
    expected.sum().backward()
    losses, grad = fx.binary_crossentropy_and_grad(targets, probs)
    np.testing.assert_allclose(losses, expected.detach().numpy(), **tolerance(dtype))
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=2e-5 if dtype == np.float32 else 1e-10)


def test_logits_gradient_matches_torch(rng):
    targets, logits = make(rng, (9, 4), np.float64, True)
    x = torch.tensor(logits, requires_grad=True)
    ls = 0.1
    smoothed = torch.tensor(targets * (1 - ls) + 0.5 * ls)
    F.binary_cross_entropy_with_logits(x, smoothed, reduction="none").mean(dim=-1).sum().backward()
    losses, grad = fx.binary_crossentropy_and_grad(targets, logits, from_logits=True, label_smoothing=ls)
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_symmetric_clip_where_keras_is_not():
    """Where we differ from Keras on purpose: both sides clipped alike."""
    probs = np.array([[1.0], [0.0]], dtype=np.float32)
    targets = np.array([[0.0], [1.0]], dtype=np.float32)
    ours = fx.binary_crossentropy(targets, probs)
    assert ours[0] == ours[1]
    np.testing.assert_allclose(ours, -np.log(1e-7), rtol=1e-6)
    keras_losses = keras_value(keras.losses.binary_crossentropy, targets, probs)
    assert abs(keras_losses[0] - keras_losses[1]) > 0.1   # 15.94 against 16.12
    # correct, confident predictions cost -log(1 - 1e-7) on both sides
    correct = fx.binary_crossentropy(probs, probs)
    assert correct[0] == correct[1] == pytest.approx(1e-7, rel=1e-3)
    # and the gradient is 0 where the probability is clipped
    _, grad = fx.binary_crossentropy_and_grad(targets, np.array([[1.0], [1e-9]], np.float32))
    np.testing.assert_array_equal(grad, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("balance", [False, True])
@pytest.mark.parametrize("gamma", [0.0, 1.5, 2.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_focal_matches_keras(isa, rng, dtype, from_logits, balance, gamma, smoothing):
    # logits in [-3, 3]: Keras' sigmoid-then-clip is accurate there
    targets, y_pred = make(rng, (20, 6), dtype, from_logits, scale=1.0)
    y_pred = np.clip(y_pred, -3, 3)
    args = (balance, 0.3, gamma, from_logits, smoothing)
    expected = keras_value(keras.losses.binary_focal_crossentropy, targets, y_pred, *args)
    got = fx.binary_focal_crossentropy(targets, y_pred, *args)
    assert got.dtype == dtype and got.shape == (20,)
    np.testing.assert_allclose(got, expected, **KERAS_TOL)
    np.testing.assert_allclose(got, ref.focal(targets, y_pred, *args).mean(axis=-1), **tolerance(dtype))


@pytest.mark.parametrize("dtype, big", [(np.float32, 20.0), (np.float32, 1e4), (np.float64, 100.0),
                                        (np.float64, 1e300)])
def test_focal_from_logits_is_exact_for_large_logits(dtype, big):
    logits = np.array([[big, -big, big, -big, 5.0]], dtype=dtype)
    targets = np.array([[1.0, 0.0, 0.0, 1.0, 0.7]], dtype=dtype)
    got = fx.binary_focal_crossentropy(targets, logits, from_logits=True, axis=0)
    expected = ref.focal(targets, logits.astype(np.float64), from_logits=True)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert got[3] == pytest.approx(big, rel=1e-6)   # Keras: -log(1e-7) = 16.12, the clip
    if big < 1000:   # a tiny exact loss, where Keras' sigmoid-then-clip gives 0
        assert 0 < got[0] < 1e-25


def test_focal_special_values():
    logits = np.array([[np.inf, -np.inf, np.nan]], dtype=np.float64)
    targets = np.array([[1.0, 0.0, 1.0]])
    got = fx.binary_focal_crossentropy(targets, logits, from_logits=True, axis=0)
    np.testing.assert_array_equal(got, [0.0, 0.0, np.nan])
    wrong = fx.binary_focal_crossentropy(1 - targets[:, :2], logits[:, :2], from_logits=True, axis=0)
    np.testing.assert_array_equal(wrong, [np.inf, np.inf])


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight", "none"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_classes_match_keras(rng, reduction, from_logits):
    targets, y_pred = make(rng, (10, 3), np.float32, from_logits, scale=1.0)
    sample_weight = rng.uniform(0, 2, 10).astype(np.float32)
    pairs = [(keras.losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=0.1, reduction=reduction),
              fx.BinaryCrossentropy(from_logits=from_logits, label_smoothing=0.1, reduction=reduction)),
             (keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.0, from_logits=from_logits,
                                                   reduction=reduction),
              fx.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.0, from_logits=from_logits,
                                         reduction=reduction))]
    for keras_loss, ours in pairs:
        for weight in (None, sample_weight):
            expected = keras.ops.convert_to_numpy(keras_loss(targets, y_pred, sample_weight=weight))
            np.testing.assert_allclose(ours(targets, y_pred, sample_weight=weight), expected, **KERAS_TOL)
        assert ours.get_config()["reduction"] == reduction and ours.get_config()["from_logits"] == from_logits


def test_class_aligns_a_trailing_axis_of_one(rng):
    targets, probs = make(rng, (8, 1), np.float32, False)
    expected = keras.ops.convert_to_numpy(keras.losses.BinaryCrossentropy()(targets[:, 0], probs))
    np.testing.assert_allclose(fx.BinaryCrossentropy()(targets[:, 0], probs), expected, **KERAS_TOL)
    np.testing.assert_allclose(fx.BinaryFocalCrossentropy()(targets, probs[:, 0]),
                               keras.ops.convert_to_numpy(keras.losses.BinaryFocalCrossentropy()(targets,
                                                                                                probs[:, 0])),
                               **KERAS_TOL)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
def test_gradient_matches_finite_differences(rng, from_logits, axis):
    targets, y_pred = make(rng, (6, 5), np.float64, from_logits)
    _, grad = fx.binary_crossentropy_and_grad(targets, y_pred, from_logits, 0.1, axis)
    h = 1e-7
    for index in [(0, 0), (2, 3), (5, 4)]:
        up, down = y_pred.copy(), y_pred.copy()
        up[index] += h
        down[index] -= h
        numeric = (fx.binary_crossentropy(targets, up, from_logits, 0.1, axis).sum()
                   - fx.binary_crossentropy(targets, down, from_logits, 0.1, axis).sum()) / (2 * h)
        assert numeric == pytest.approx(grad[index], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_strided_in_place_and_threads(rng, n_threads):
    targets, logits = make(rng, (40, 30, 9), np.float32, True)
    view_t, view_x = targets.transpose(1, 2, 0)[:, ::2], logits.transpose(1, 2, 0)[:, ::2]
    expected_loss = ref.sigmoid_xent(view_t, view_x)[0].mean(axis=-1)
    expected_grad = ref.sigmoid_xent(view_t, view_x)[1] / view_x.shape[-1]
    losses, grad = fx.binary_crossentropy_and_grad(view_t, view_x, from_logits=True, out=view_x,
                                                   n_threads=n_threads)
    assert grad is view_x
    np.testing.assert_allclose(losses, expected_loss, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(view_x, expected_grad, rtol=2e-5, atol=2e-7)
    # a last axis of one, strided: the element-wise path
    targets, probs = make(rng, (50, 3), np.float32, False)
    losses, grad = fx.binary_crossentropy_and_grad(targets[::2, 1:2], probs[::2, 1:2], n_threads=n_threads)
    expected_loss, expected_grad = ref.bce(targets[::2, 1:2], probs[::2, 1:2])
    assert losses.shape == (25,)
    np.testing.assert_allclose(losses, expected_loss[:, 0], rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=2e-5, atol=2e-6)
    focal = fx.binary_focal_crossentropy(targets[::2, 1:2], probs[::2, 1:2], n_threads=n_threads)
    np.testing.assert_allclose(focal, ref.focal(targets[::2, 1:2], probs[::2, 1:2])[:, 0], rtol=2e-5, atol=2e-6)


def test_empty_axis_gives_nan_as_keras():
    got = fx.binary_crossentropy(np.zeros((3, 0)), np.zeros((3, 0)))
    assert got.shape == (3,) and np.isnan(got).all()


def test_errors(rng):
    targets, probs = make(rng, (4, 3), np.float64, False)
    with pytest.raises(ValueError, match="at least one dimension"):
        fx.binary_crossentropy(np.float64(1), np.float64(0.5))
    with pytest.raises(ValueError, match="axis must be an integer in"):
        fx.binary_crossentropy(targets, probs, axis=2)
    with pytest.raises(ValueError, match="axis must be an integer in"):
        fx.binary_crossentropy(targets, probs, axis=1.0)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        fx.binary_crossentropy(targets, probs, label_smoothing=1.5)
    with pytest.raises(TypeError, match="y_true must have the dtype of y_pred"):
        fx.binary_crossentropy(targets.astype(np.int64), probs)
    with pytest.raises(ValueError, match="y_true must have the shape of y_pred"):
        fx.binary_crossentropy(targets[:, :2], probs)
    with pytest.raises(TypeError, match="float16"):
        fx.binary_crossentropy(targets, probs.astype(np.float16))
    with pytest.raises(ValueError, match="gamma must be a number >= 0.0"):
        fx.binary_focal_crossentropy(targets, probs, gamma=-1.0)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        fx.binary_focal_crossentropy(targets, probs, alpha="0.25")
    with pytest.raises(ValueError, match="alpha must not be NaN"):
        fx.BinaryFocalCrossentropy(alpha=float("nan"))
    with pytest.raises(ValueError, match="reduction must be one of"):
        fx.BinaryCrossentropy(reduction="avg")
    with pytest.raises(ValueError, match="sample_weight of shape"):
        fx.BinaryCrossentropy()(targets, probs, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="out must have shape"):
        fx.binary_crossentropy_and_grad(targets, probs, out=np.empty((3, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_focal_probabilities_outside_0_1(dtype):
    """A "probability" outside [0, 1] makes 1 - p_t leave [0, 1]: the focal
    factor is then pow's (Keras' ops.power), not exp of a positive argument
    through the negative-only exp (which gave a negative loss at the float32
    max), and a clipped element's bce term adds 0 to the gradient even where
    the factor overflows (it was inf x 0 = NaN)."""
    big = float(np.finfo(dtype).max) if dtype == np.float32 else 1e300
    y_pred = np.array([[big, -big, 1.5, -0.5, 2.0]], dtype=dtype)
    targets = np.array([[0.3, 0.3, 1.0, 1.0, 1.0]], dtype=dtype)
    for gamma in (2.0, 1.5, 3.0):
        losses, grad = fx.binary_focal_crossentropy_and_grad(targets, y_pred, gamma=gamma, axis=0)
        with np.errstate(all="ignore"):   # Keras' formula in long double, rounded to the dtype
            expected_loss, expected_grad = (v[0].astype(dtype) for v in
                                            ref.focal_and_grad(targets, y_pred.astype(np.longdouble), gamma=gamma))
        np.testing.assert_allclose(losses, expected_loss, rtol=1e-5, equal_nan=True)
        np.testing.assert_allclose(grad[0], expected_grad, rtol=1e-5, equal_nan=True)
    # a negative 1 - p_t: an integer gamma keeps pow's sign, a fractional one is NaN (as pow)
    odd = fx.binary_focal_crossentropy(np.array([[1.0]], dtype), np.array([[2.0]], dtype), gamma=3.0)
    assert odd[0] < 0
    assert np.isnan(fx.binary_focal_crossentropy(np.array([[1.0]], dtype), np.array([[2.0]], dtype), gamma=0.5))

"""Gradients of the focal losses (binary_focal_crossentropy_and_grad,
categorical_focal_crossentropy_and_grad, sparse_categorical_focal_
crossentropy_and_grad): PyTorch autograd on a transcription of Keras'
formulas, finite differences, gamma = 0 against the cross-entropy
gradients, extreme logits, every parameter, out= and in place, errors."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the references are torch transcriptions of Keras' formulas

import fastxent as fx  # noqa: E402
import reference_focal as rf  # noqa: E402
from conftest import tolerance

# float32 gradients carry the rounding of a few float32 exps and logs
GRAD_TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-13}}
DTYPES = [np.float32, np.float64]


def binary_data(rng, shape, dtype, from_logits):
    targets = (rng.uniform(size=shape) < 0.5).astype(dtype)
    targets.flat[::3] = rng.uniform(size=targets.flat[::3].shape)          # some soft targets
    if from_logits:
        return targets, (rng.standard_normal(shape) * 2).astype(dtype)
    return targets, rng.uniform(0.01, 0.99, shape).astype(dtype)


def categorical_data(rng, shape, dtype, from_logits):
    targets = rng.random(shape).astype(dtype)
    targets[0] = np.eye(shape[-1], dtype=dtype)[1]                           # a one-hot row
    labels = rng.integers(0, shape[-1], shape[:-1])
    if from_logits:
        return targets, labels, (rng.standard_normal(shape) * 2).astype(dtype)
    return targets, labels, rng.uniform(0.05, 1.0, shape).astype(dtype)


def tensor(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def check(got, expected, dtype):
    losses, grad = got
    expected_losses, expected_grad = expected
    assert losses.dtype == dtype and grad.dtype == dtype
    np.testing.assert_allclose(losses, expected_losses, **tolerance(dtype) if dtype == np.float64 else
                               {"rtol": 2e-5, "atol": 2e-6})
    np.testing.assert_allclose(grad, expected_grad, **GRAD_TOL[dtype])


# ---- PyTorch autograd on Keras' formulas --------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("balance", [False, True])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_binary_matches_torch_autograd(isa, rng, dtype, from_logits, balance, gamma, smoothing):
    targets, y_pred = binary_data(rng, (7, 5), dtype, from_logits)
    args = (balance, 0.3, gamma, from_logits, smoothing)
    expected = rf.loss_and_grad(lambda x: rf.binary_focal(tensor(targets), x, *args), y_pred)
    got = fx.binary_focal_crossentropy_and_grad(targets, y_pred, *args)
    check(got, expected, dtype)
    np.testing.assert_allclose(got[0], fx.binary_focal_crossentropy(targets, y_pred, *args), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("alpha, gamma, smoothing", [(0.25, 2.0, 0.0), ([0.1, 0.2, 0.3, 0.4, 0.5], 1.5, 0.1),
                                                     (1.0, 0.0, 0.0), (0.5, 0.5, 0.3), (2.0, 4.0, 0.0)])
def test_categorical_matches_torch_autograd(isa, rng, dtype, from_logits, alpha, gamma, smoothing):
    targets, _, y_pred = categorical_data(rng, (6, 5), dtype, from_logits)
    args = (alpha, gamma, from_logits, smoothing)
    expected = rf.loss_and_grad(lambda x: rf.categorical_focal(tensor(targets), x, *args), y_pred)
    got = fx.categorical_focal_crossentropy_and_grad(targets, y_pred, *args)
    check(got, expected, dtype)
    np.testing.assert_allclose(got[0], fx.categorical_focal_crossentropy(targets, y_pred, *args), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ignore_class", [None, 2])
@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), ([0.1, 0.2, 0.3, 0.4, 0.5], 0.5), (1.0, 0.0)])
def test_sparse_matches_torch_autograd(isa, rng, dtype, from_logits, ignore_class, alpha, gamma):
    _, labels, y_pred = categorical_data(rng, (9, 5), dtype, from_logits)
    labels[1::4] = 2
    args = (alpha, gamma, from_logits, ignore_class)
    expected = rf.loss_and_grad(lambda x: rf.sparse_focal(labels, x, *args), y_pred)
    got = fx.sparse_categorical_focal_crossentropy_and_grad(labels, y_pred, *args)
    check(got, expected, dtype)
    np.testing.assert_allclose(got[0], fx.sparse_categorical_focal_crossentropy(labels, y_pred, *args), **tolerance(dtype))
    if ignore_class is not None:
        np.testing.assert_array_equal(got[1][labels == ignore_class], 0)


def test_probability_clip_passes_no_gradient_as_torch_clamp(rng):
    """Clipped probabilities (0 and 1 among them) against torch.clamp's gradient."""
    targets = np.array([[1.0, 0.0, 1.0, 0.0, 0.3]])
    probs = np.array([[0.0, 1.0, 1e-9, 0.5, 1.0]])
    for gamma in (1.0, 2.0):
        expected = rf.loss_and_grad(lambda x: rf.binary_focal(tensor(targets), x, gamma=gamma), probs)
        got = fx.binary_focal_crossentropy_and_grad(targets, probs, gamma=gamma)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-15)
    onehot = np.eye(4)[[0, 3]]
    rows = np.array([[1.0, 0.0, 0.0, 0.0], [0.3, 1e-12, 0.2, 0.5]])                 # q = 1, q < 1e-7
    for labels_first in (False, True):
        expected = rf.loss_and_grad(lambda x: rf.categorical_focal(tensor(onehot), x), rows)
        got = (fx.sparse_categorical_focal_crossentropy_and_grad([0, 3], rows) if labels_first
               else fx.categorical_focal_crossentropy_and_grad(onehot, rows))
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-15)


# ---- finite differences (float64) ------------------------------------------------------------

def finite_differences(loss_fn, y_pred, step=1e-6):
    grad = np.empty_like(y_pred)
    for index in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[index] += step
        down[index] -= step
        grad[index] = (loss_fn(up).sum() - loss_fn(down).sum()) / (2 * step)
    return grad


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("gamma", [0.0, 0.7, 2.0])
def test_gradients_match_finite_differences(rng, from_logits, gamma):
    targets, y_pred = binary_data(rng, (3, 4), np.float64, from_logits)
    kwargs = dict(apply_class_balancing=True, alpha=0.4, gamma=gamma, from_logits=from_logits,
                  label_smoothing=0.1)
    _, grad = fx.binary_focal_crossentropy_and_grad(targets, y_pred, **kwargs)
    expected = finite_differences(lambda y: fx.binary_focal_crossentropy(targets, y, **kwargs), y_pred)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-9)

    targets, labels, y_pred = categorical_data(rng, (3, 4), np.float64, from_logits)
    kwargs = dict(alpha=[0.2, 0.5, 1.0, 0.3], gamma=gamma, from_logits=from_logits)
    _, grad = fx.categorical_focal_crossentropy_and_grad(targets, y_pred, label_smoothing=0.1, **kwargs)
    expected = finite_differences(
        lambda y: fx.categorical_focal_crossentropy(targets, y, label_smoothing=0.1, **kwargs), y_pred)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-9)

    labels[1] = 2
    _, grad = fx.sparse_categorical_focal_crossentropy_and_grad(labels, y_pred, ignore_class=2, **kwargs)
    expected = finite_differences(
        lambda y: fx.sparse_categorical_focal_crossentropy(labels, y, ignore_class=2, **kwargs), y_pred)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-9)


# ---- gamma = 0 is the cross-entropy ----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("from_logits", [False, True])
def test_gamma_zero_gives_the_cross_entropy_gradients(isa, rng, dtype, from_logits):
    targets, y_pred = binary_data(rng, (6, 7), dtype, from_logits)
    focal = fx.binary_focal_crossentropy_and_grad(targets, y_pred, gamma=0.0, from_logits=from_logits,
                                                  label_smoothing=0.2)
    plain = fx.binary_crossentropy_and_grad(targets, y_pred, from_logits=from_logits, label_smoothing=0.2)
    for a, b in zip(focal, plain):
        np.testing.assert_allclose(a, b, **tolerance(dtype))

    targets, labels, y_pred = categorical_data(rng, (6, 7), dtype, from_logits)
    focal = fx.categorical_focal_crossentropy_and_grad(targets, y_pred, alpha=1.0, gamma=0.0,
                                                       from_logits=from_logits, label_smoothing=0.2)
    plain = fx.categorical_crossentropy_and_grad(targets, y_pred, from_logits=from_logits, label_smoothing=0.2)
    for a, b in zip(focal, plain):
        np.testing.assert_allclose(a, b, **tolerance(dtype))

    labels[2] = 4
    focal = fx.sparse_categorical_focal_crossentropy_and_grad(labels, y_pred, alpha=1.0, gamma=0.0,
                                                              from_logits=from_logits, ignore_class=4)
    plain = fx.sparse_categorical_crossentropy_and_grad(labels, y_pred, from_logits=from_logits, ignore_class=4)
    for a, b in zip(focal, plain):
        np.testing.assert_allclose(a, b, **tolerance(dtype))


# ---- extreme logits ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, big", [(np.float32, 1e4), (np.float64, 1e300)])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_extreme_logits_give_finite_exact_gradients(dtype, big, gamma):
    # binary, one sample of 5 elements: right, right, wrong, wrong, soft
    logits = np.array([big, -big, big, -big, big], dtype=dtype)
    targets = np.array([1.0, 0.0, 0.0, 1.0, 0.75], dtype=dtype)
    losses, grad = fx.binary_focal_crossentropy_and_grad(targets, logits, apply_class_balancing=True, alpha=0.25,
                                                         gamma=gamma, from_logits=True)
    balance = 0.25 * targets + 0.75 * (1 - targets)
    # per element: wrong ones cost |x| with gradient +-1, the soft one 0.25 |x| 0.25^gamma with
    # gradient 0.25^(gamma + 1), right ones 0 (all times the balance weight, over 5 elements)
    expected = balance * np.array([0.0, 0.0, 1.0, -1.0, 0.25 ** (gamma + 1)]) / 5
    np.testing.assert_allclose(grad, expected.astype(dtype), rtol=1e-6, atol=0)
    expected_loss = np.sum(balance * np.array([0.0, 0.0, big, big, 0.25 ** (gamma + 1) * big])) / 5
    np.testing.assert_allclose(losses, expected_loss, rtol=1e-6)

    # categorical / sparse: the label on the top class, the middle one, the bottom one
    row = np.array([big, 0.0, -big], dtype=dtype)
    logits = np.stack([row, row, row])
    labels = np.array([0, 1, 2])
    alpha = [0.5, 0.25, 2.0]
    expected_grad = np.array([[0.0, 0.0, 0.0], [0.25, -0.25, 0.0], [2.0, 0.0, -2.0]])
    expected_loss = np.array([0.0, 0.25 * big, 2.0 * 2 * big])
    for losses, grad in (fx.categorical_focal_crossentropy_and_grad(np.eye(3, dtype=dtype), logits, alpha, gamma,
                                                                    from_logits=True),
                         fx.sparse_categorical_focal_crossentropy_and_grad(labels, logits, alpha, gamma,
                                                                           from_logits=True)):
        assert np.all(np.isfinite(grad)) and grad.dtype == dtype
        np.testing.assert_array_equal(grad, expected_grad)
        np.testing.assert_allclose(losses, expected_loss, rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_large_logits_match_log_space_autograd(gamma):
    """Where Keras' clip is active, against torch autograd on the exact log-space formulas."""
    logits = np.array([[30.0, 0.0, -30.0, 5.0], [-40.0, 2.0, 35.0, 0.0]])
    onehot = np.eye(4)[[0, 2]]
    alpha = np.array([0.3, 1.0, 0.7, 0.5])

    def categorical(x):
        log_p = torch.log_softmax(x, dim=-1)
        return (tensor(alpha) * tensor(onehot) * torch.pow(-torch.expm1(log_p), gamma) * -log_p).sum(dim=-1)

    expected = rf.loss_and_grad(categorical, logits)
    for got in (fx.categorical_focal_crossentropy_and_grad(onehot, logits, alpha, gamma, from_logits=True),
                fx.sparse_categorical_focal_crossentropy_and_grad([0, 2], logits, alpha, gamma, from_logits=True)):
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-9, atol=1e-300)

    # binary: torch's own sigmoid(x) - t loses the tails' digits; 50-digit numerical derivatives instead
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    targets = [1.0, 0.0, 1.0, 0.0, 0.6]
    binary_logits = np.array([[30.0, -30.0, -35.0, 40.0, 25.0]])

    def element(t, x):
        s = 1 / (1 + mp.exp(-x))
        bce = -(t * mp.log(s) + (1 - t) * mp.log(1 - s))
        return (t * (1 - s) + (1 - t) * s) ** gamma * bce

    got = fx.binary_focal_crossentropy_and_grad(np.array([targets]), binary_logits, gamma=gamma, from_logits=True)
    expected_loss = sum(element(t, mp.mpf(x)) for t, x in zip(targets, binary_logits[0])) / 5
    expected_grad = [mp.diff(lambda x: element(t, x), mp.mpf(x0)) / 5 for t, x0 in zip(targets, binary_logits[0])]
    np.testing.assert_allclose(got[0], [float(expected_loss)], rtol=1e-14)
    np.testing.assert_allclose(got[1][0], [float(g) for g in expected_grad], rtol=1e-12, atol=1e-300)


def test_special_values():
    logits = np.array([[np.inf, -np.inf, np.inf, -np.inf]])
    targets = np.array([[1.0, 0.0, 0.0, 1.0]])
    _, grad = fx.binary_focal_crossentropy_and_grad(targets, logits, from_logits=True, axis=0)
    np.testing.assert_array_equal(grad, [[0.0, 0.0, 1.0, -1.0]])
    # a masked class (logit -inf) with no target weight contributes nothing
    masked = np.array([[1.0, -np.inf, 0.5]])
    losses, grad = fx.categorical_focal_crossentropy_and_grad(np.array([[1.0, 0.0, 0.0]]), masked, from_logits=True)
    assert np.all(np.isfinite(grad)) and grad[0, 1] == 0
    _, sparse_grad = fx.sparse_categorical_focal_crossentropy_and_grad([0], masked, from_logits=True)
    np.testing.assert_allclose(sparse_grad, grad, rtol=1e-15)


# ---- layouts, out=, in place, threads -------------------------------------------------------------

CASES = {
    "binary": lambda t, labels, y, **kw: fx.binary_focal_crossentropy_and_grad(t, y, True, 0.3, 1.5, True, 0.1,
                                                                               **kw),
    "categorical": lambda t, labels, y, **kw: fx.categorical_focal_crossentropy_and_grad(
        t, y, [0.1, 0.2, 0.3, 0.4, 0.5] * 4, 1.5, True, 0.1, **kw),
    "sparse": lambda t, labels, y, **kw: fx.sparse_categorical_focal_crossentropy_and_grad(
        labels, y, [0.1, 0.2, 0.3, 0.4, 0.5] * 4, 1.5, True, 3, **kw),
}


def case_data(rng, dtype, shape=(12, 20)):
    targets, labels, logits = categorical_data(rng, shape, dtype, True)
    return targets, labels, logits


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_out_and_in_place(rng, dtype, name):
    call = CASES[name]
    targets, labels, logits = case_data(rng, dtype)
    expected_losses, expected = call(targets, labels, logits)
    out = np.full_like(logits, np.nan)
    losses, grad = call(targets, labels, logits, out=out)
    assert grad is out
    np.testing.assert_array_equal(grad, expected)
    np.testing.assert_array_equal(losses, expected_losses)
    strided = np.empty(logits.shape[::-1], dtype).T                     # class axis not contiguous
    assert call(targets, labels, logits, out=strided)[1] is strided
    np.testing.assert_array_equal(strided, expected)
    in_place = logits.copy()
    losses, grad = call(targets, labels, in_place, out=in_place)
    assert grad is in_place
    np.testing.assert_array_equal(grad, expected)
    np.testing.assert_array_equal(losses, expected_losses)
    if name != "sparse":                                                # the targets may be overwritten too
        over_targets = targets.copy()
        assert call(over_targets, labels, logits, out=over_targets)[1] is over_targets
        np.testing.assert_array_equal(over_targets, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_strided_and_nd_inputs(rng, dtype, name):
    call = CASES[name]
    targets, labels, logits = case_data(rng, dtype, (4, 3, 20))
    expected_losses, expected = call(targets, labels, logits)
    # class axis in the middle (PyTorch's layout), as a view
    moved_losses, moved = call(np.moveaxis(targets, -1, 1), labels, np.moveaxis(logits, -1, 1), axis=1)
    np.testing.assert_allclose(moved_losses, expected_losses, **tolerance(dtype))
    np.testing.assert_allclose(np.moveaxis(moved, 1, -1), expected, **tolerance(dtype))
    # strided views of wider arrays, read-only inputs
    wide_logits = np.repeat(logits, 2, axis=-1)
    wide_targets = np.repeat(targets, 2, axis=-1)
    wide_logits.flags.writeable = wide_targets.flags.writeable = False
    strided_losses, strided = call(wide_targets[..., ::2], labels, wide_logits[..., ::2])
    np.testing.assert_array_equal(strided_losses, expected_losses)
    np.testing.assert_array_equal(strided, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_thread_counts_agree(isa, rng, dtype, name):
    call = CASES[name]
    targets, labels, logits = case_data(rng, dtype, (640, 20))       # above the serial threshold
    one = call(targets, labels, logits, n_threads=1)
    two = call(targets, labels, logits, n_threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    expected = {
        "binary": lambda x: rf.binary_focal(tensor(targets), x, True, 0.3, 1.5, True, 0.1),
        "categorical": lambda x: rf.categorical_focal(tensor(targets), x, [0.1, 0.2, 0.3, 0.4, 0.5] * 4, 1.5,
                                                      True, 0.1),
        "sparse": lambda x: rf.sparse_focal(labels, x, [0.1, 0.2, 0.3, 0.4, 0.5] * 4, 1.5, True, 3),
    }[name]
    check(two, rf.loss_and_grad(expected, logits), dtype)


def test_empty_inputs():
    for name, call in CASES.items():
        losses, grad = call(np.zeros((0, 20)), np.zeros(0, np.int64), np.zeros((0, 20)))
        assert losses.shape == (0,) and grad.shape == (0, 20)


# ---- errors: raised before anything is written ---------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_out_errors(rng, name):
    call = CASES[name]
    targets, labels, logits = case_data(rng, np.float32)
    with pytest.raises(TypeError, match="out must have dtype float32"):
        call(targets, labels, logits, out=np.empty(logits.shape, np.float64))
    with pytest.raises(ValueError, match="out must have shape"):
        call(targets, labels, logits, out=np.empty((12, 19), np.float32))
    with pytest.raises(TypeError, match="out must be a numpy array"):
        call(targets, labels, logits, out=[[0.0] * 20] * 12)
    read_only = np.zeros_like(logits)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        call(targets, labels, logits, out=read_only)
    with pytest.raises(ValueError, match="overlaps an input"):
        call(targets, labels, logits, out=logits[::-1])
    with pytest.raises(TypeError, match="float32 or float64"):
        call(targets, labels, logits.astype(np.float16))


def test_parameter_errors_leave_out_untouched(rng):
    targets, labels, logits = case_data(rng, np.float64)
    out = np.full_like(logits, 7.0)
    with pytest.raises(ValueError, match="gamma"):
        fx.binary_focal_crossentropy_and_grad(targets, logits, gamma=-1.0, out=out)
    with pytest.raises(TypeError, match="alpha"):
        fx.binary_focal_crossentropy_and_grad(targets, logits, alpha="0.25", out=out)
    with pytest.raises(ValueError, match="label_smoothing"):
        fx.binary_focal_crossentropy_and_grad(targets, logits, label_smoothing=1.5, out=out)
    with pytest.raises(ValueError, match="shape"):
        fx.binary_focal_crossentropy_and_grad(targets[:, :5], logits, out=out)
    with pytest.raises(ValueError, match="gamma"):
        fx.categorical_focal_crossentropy_and_grad(targets, logits, gamma=-0.5, out=out)
    with pytest.raises(ValueError, match=r"alpha must be a scalar or have shape \(20,\)"):
        fx.categorical_focal_crossentropy_and_grad(targets, logits, alpha=[0.1, 0.2], out=out)
    with pytest.raises(TypeError, match="y_true must have y_pred's dtype"):
        fx.categorical_focal_crossentropy_and_grad(targets.astype(np.float32), logits, out=out)
    with pytest.raises(ValueError, match="label_smoothing"):
        fx.categorical_focal_crossentropy_and_grad(targets, logits, label_smoothing=-0.1, out=out)
    bad = labels.copy()
    bad[3] = 20
    with pytest.raises(ValueError, match=r"y_true\[3\] = 20 is outside \[0, 20\)"):
        fx.sparse_categorical_focal_crossentropy_and_grad(bad, logits, out=out)
    with pytest.raises(ValueError, match="non-integer"):
        fx.sparse_categorical_focal_crossentropy_and_grad(labels + 0.5, logits, out=out)
    with pytest.raises(TypeError, match="gamma"):
        fx.sparse_categorical_focal_crossentropy_and_grad(labels, logits, gamma="2", out=out)
    with pytest.raises(ValueError, match="n_threads"):
        fx.sparse_categorical_focal_crossentropy_and_grad(labels, logits, out=out, n_threads=0)
    np.testing.assert_array_equal(out, 7.0)

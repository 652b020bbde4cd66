"""sparse_softmax_cross_entropy_with_logits(_and_grad) against the float64
reference, PyTorch where installed, finite differences, and every error path."""
import numpy as np
import pytest

import fastxent as fx
from conftest import tolerance
import reference as ref

loss_fn = fx.sparse_softmax_cross_entropy_with_logits
grad_fn = fx.sparse_softmax_cross_entropy_with_logits_and_grad

SHAPES = [(0, 5), (1, 1), (1, 2), (7, 3), (33, 1000), (300, 257), (2, 70001)]


def make(rng, shape, dtype, scale=3.0):
    logits = (rng.standard_normal(shape) * scale).astype(dtype)
    labels = rng.integers(0, max(shape[1], 1), shape[0])
    return labels, logits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_matches_reference(isa, rng, dtype, shape, n_threads):
    labels, logits = make(rng, shape, dtype)
    before = logits.copy()
    losses, denominator, grad_sum = ref.sparse_xent(labels, logits)
    for reduction in ("none", "sum", "mean"):
        expected_loss, expected_grad = ref.reduce(losses, denominator, grad_sum, reduction)
        loss = loss_fn(labels, logits, reduction=reduction, n_threads=n_threads)
        assert np.asarray(loss).dtype == dtype
        np.testing.assert_allclose(loss, expected_loss, **tolerance(dtype))
        loss2, grad = grad_fn(labels, logits, reduction=reduction, n_threads=n_threads)
        np.testing.assert_allclose(loss2, expected_loss, **tolerance(dtype))
        assert grad.dtype == dtype and grad.shape == logits.shape
        np.testing.assert_allclose(grad, expected_grad, **tolerance(dtype))
    np.testing.assert_array_equal(logits, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ignore_index", [None, -100, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_options_match_reference(isa, rng, dtype, ignore_index, weighted, smoothing):
    labels, logits = make(rng, (64, 9), dtype)
    if ignore_index is not None:
        labels[::3] = ignore_index
    weight = rng.uniform(0.1, 2.0, 9) if weighted else None
    losses, denominator, grad_sum = ref.sparse_xent(labels, logits, ignore_index, weight, smoothing)
    for reduction in ("none", "sum", "mean"):
        expected_loss, expected_grad = ref.reduce(losses, denominator, grad_sum, reduction)
        kwargs = dict(reduction=reduction, ignore_index=ignore_index, class_weight=weight,
                      label_smoothing=smoothing)
        np.testing.assert_allclose(loss_fn(labels, logits, **kwargs), expected_loss, **tolerance(dtype))
        loss, grad = grad_fn(labels, logits, **kwargs)
        np.testing.assert_allclose(loss, expected_loss, **tolerance(dtype))
        np.testing.assert_allclose(grad, expected_grad, **tolerance(dtype))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_split_row_path_matches_reference(rng, smoothing):
    """Fewer rows than threads and long rows: classes are split between threads."""
    labels, logits = make(rng, (1, 200_003), np.float64)
    losses, denominator, grad_sum = ref.sparse_xent(labels, logits, label_smoothing=smoothing)
    for n_threads in (1, 2, 3):
        loss, grad = grad_fn(labels, logits, label_smoothing=smoothing, n_threads=n_threads)
        np.testing.assert_allclose(loss, losses, rtol=1e-12)
        np.testing.assert_allclose(grad, grad_sum, rtol=1e-10, atol=1e-16)


def test_serial_equals_parallel(rng):
    labels, logits = make(rng, (513, 300), np.float32)
    one = grad_fn(labels, logits, reduction="mean", n_threads=1)
    two = grad_fn(labels, logits, reduction="mean", n_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_gradient_matches_finite_differences(rng):
    labels, logits = make(rng, (4, 6), np.float64)
    weight = rng.uniform(0.5, 2.0, 6)
    kwargs = dict(reduction="mean", class_weight=weight, label_smoothing=0.1, ignore_index=None)
    _, grad = grad_fn(labels, logits, **kwargs)
    h = 1e-6
    numeric = np.zeros_like(logits)
    for index in np.ndindex(logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[index] += h
        minus[index] -= h
        numeric[index] = (loss_fn(labels, plus, **kwargs) - loss_fn(labels, minus, **kwargs)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_and_in_place(rng, dtype):
    labels, logits = make(rng, (50, 40), dtype)
    _, expected = grad_fn(labels, logits)
    out = np.full_like(logits, 7.0)
    loss, grad = grad_fn(labels, logits, out=out)
    assert grad is out
    np.testing.assert_array_equal(out, expected)
    work = logits.copy()
    loss_in_place, grad = grad_fn(labels, work, out=work)
    assert np.shares_memory(grad, work)
    np.testing.assert_array_equal(work, expected)
    np.testing.assert_array_equal(loss_in_place, loss)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layouts(isa, rng, dtype):
    labels, base = make(rng, (40, 30), dtype)
    expected, _, expected_grad = ref.sparse_xent(labels, base)
    views = {
        "fortran": np.asfortranarray(base),
        "column_slice": np.ascontiguousarray(np.repeat(base, 2, axis=1))[:, ::2],
        "negative_strides": base[::-1, ::-1].copy()[::-1, ::-1],
        "read_only": base.copy(),
    }
    views["read_only"].flags.writeable = False
    for name, logits in views.items():
        np.testing.assert_array_equal(logits, base)
        loss = loss_fn(labels, logits, n_threads=2)
        np.testing.assert_allclose(loss, expected, **tolerance(dtype), err_msg=name)
        _, grad = grad_fn(labels, logits, n_threads=2)
        np.testing.assert_allclose(grad, expected_grad, **tolerance(dtype), err_msg=name)
    # in place into a non-contiguous buffer goes through the per-thread scratch row
    work = np.asfortranarray(base)
    grad_fn(labels, work, out=work)
    np.testing.assert_allclose(work, expected_grad, **tolerance(dtype))


def test_memmap_read_only(tmp_path, rng):
    labels, logits = make(rng, (20, 11), np.float32)
    path = tmp_path / "logits.npy"
    np.save(path, logits)
    mapped = np.load(path, mmap_mode="r")
    np.testing.assert_allclose(loss_fn(labels, mapped), ref.sparse_xent(labels, logits)[0], rtol=2e-5)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
                                   np.int64, np.uint64])
def test_label_dtypes(rng, dtype):
    labels, logits = make(rng, (30, 5), np.float64)
    expected = ref.sparse_xent(labels, logits)[0]
    np.testing.assert_allclose(loss_fn(labels.astype(dtype), logits), expected, rtol=1e-12)
    np.testing.assert_allclose(loss_fn(list(labels), logits), expected, rtol=1e-12)


def test_extreme_values_are_exact(isa):
    labels = np.array([0, 1, 1])
    x32 = np.array([[1e4, -1e4], [1e4, -1e4], [-1e4, -1e4]], dtype=np.float32)
    np.testing.assert_allclose(loss_fn(labels, x32), [0.0, 2e4, np.log(2)], rtol=1e-6)
    x64 = np.array([[1e300, -1e300], [1e300, -1e300], [-1e300, -1e300]])
    np.testing.assert_allclose(loss_fn(labels, x64), [0.0, 2e300, np.log(2)], rtol=1e-12)
    _, grad = grad_fn(labels, x64)
    np.testing.assert_allclose(grad, [[0, 0], [1, -1], [0.5, -0.5]], atol=1e-15)


def test_masked_classes_and_nan_rows(isa):
    logits = np.array([[0.0, -np.inf, 1.0], [np.nan, 0.0, 1.0], [2.0, 1.0, 0.0],
                       [-np.inf, -np.inf, 3.0]])
    labels = np.array([2, 2, 0, 2])
    loss, grad = grad_fn(labels, logits)
    np.testing.assert_allclose(loss[0], np.log1p(np.exp(-1.0)), rtol=1e-14)
    assert grad[0, 1] == 0.0
    assert np.isnan(loss[1]) and np.isnan(grad[1]).all()
    np.testing.assert_allclose(loss[2], ref.sparse_xent(labels[2:3], logits[2:3])[0][0], rtol=1e-14)
    assert loss[3] == 0.0
    # a masked row longer than one chunk, its -infs before the first finite value
    long_row = np.full((1, 2000), -np.inf)
    long_row[0, 1500] = 0.0
    assert loss_fn([1500], long_row)[0] == 0.0


def test_all_rows_ignored_mean_is_zero():
    logits = np.ones((3, 4), dtype=np.float32)
    loss, grad = grad_fn([-1, -1, -1], logits, reduction="mean", ignore_index=-1)
    assert loss == 0.0 and not grad.any()


# --- errors: a clear message, and nothing written ---------------------------------------

def test_label_out_of_range_names_the_row():
    logits = np.zeros((5, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"labels\[3\] = 7 is outside \[0, 4\)"):
        loss_fn([0, 1, 2, 7, 0], logits)
    with pytest.raises(ValueError, match=r"labels\[1\] = -1 is outside"):
        loss_fn([0, -1, 2, 3, 0], logits, ignore_index=-100)
    with pytest.raises(ValueError, match=r"labels\[0\] = 1099511627776"):
        loss_fn(np.array([2**40, 0, 0, 0, 0]), logits)
    with pytest.raises(ValueError, match=r"labels\[2\] = 18446744073709551615"):
        loss_fn(np.array([0, 0, 2**64 - 1, 0, 0], dtype=np.uint64), logits)


def test_errors_leave_buffers_untouched():
    logits = np.arange(20, dtype=np.float32).reshape(5, 4)
    saved = logits.copy()
    out = np.full_like(logits, 3.0)
    with pytest.raises(ValueError):
        grad_fn([0, 1, 2, 9, 0], logits, out=out)
    with pytest.raises(ValueError):
        grad_fn([0, 1, 2, 9, 0], logits, out=logits)
    np.testing.assert_array_equal(out, 3.0)
    np.testing.assert_array_equal(logits, saved)


@pytest.mark.parametrize("logits, exc, message", [
    (np.zeros((2, 3), np.float16), TypeError, "float32 or float64, got float16"),
    (np.zeros((2, 3), np.int64), TypeError, "float32 or float64, got int64"),
    (np.zeros((2, 3), np.complex64), TypeError, "float32 or float64, got complex64"),
    (np.zeros((2, 3), ">f4"), TypeError, "native byte order"),
    (np.zeros(3, np.float32), ValueError, r"shape \(rows, classes\), got 1 dimension"),
    (np.zeros((2, 3, 1), np.float32), ValueError, "got 3 dimension"),
])
def test_bad_logits(logits, exc, message):
    with pytest.raises(exc, match=message):
        loss_fn(np.zeros(logits.shape[0] if logits.ndim else 1, np.int64), logits)


def test_misaligned_logits_refused():
    raw = np.zeros(2 * 3 * 4 + 1, np.uint8)
    logits = np.frombuffer(raw.data, dtype=np.float32, offset=1, count=6).reshape(2, 3)
    with pytest.raises(ValueError, match="not aligned"):
        loss_fn([0, 1], logits)


@pytest.mark.parametrize("labels, exc, message", [
    (np.zeros(2, np.float32), TypeError, "integer array, got float32"),
    (np.zeros(2, bool), TypeError, "integer array, got bool"),
    (np.zeros(3, np.int64), ValueError, r"shape \(2,\) to match the logits' rows, got \(3,\)"),
    (np.zeros((2, 1), np.int64), ValueError, r"got \(2, 1\)"),
])
def test_bad_labels(labels, exc, message):
    with pytest.raises(exc, match=message):
        loss_fn(labels, np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(reduction="avg"), ValueError, "reduction must be one of"),
    (dict(n_threads=0), ValueError, "n_threads must be a positive integer"),
    (dict(n_threads=1.5), TypeError, "n_threads must be a positive integer"),
    (dict(ignore_index=1.0), TypeError, "ignore_index must be an integer"),
    (dict(label_smoothing=1.5), ValueError, r"label_smoothing must be in \[0, 1\]"),
    (dict(label_smoothing="x"), TypeError, "label_smoothing must be a float"),
    (dict(class_weight=np.ones(4)), ValueError, r"class_weight must have shape \(3,\)"),
    (dict(class_weight=np.array(["a", "b", "c"])), TypeError, "class_weight must be a real array"),
])
def test_bad_options(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        loss_fn([0, 1], np.zeros((2, 3), np.float32), **kwargs)


@pytest.mark.parametrize("make_out, exc, message", [
    (lambda x: np.zeros((2, 3), np.float64), TypeError, "out must have dtype float32"),
    (lambda x: np.zeros((3, 2), np.float32), ValueError, r"out must have shape \(2, 3\)"),
    (lambda x: [[0.0] * 3] * 2, TypeError, "out must be a numpy array"),
    (lambda x: x[:, ::-1], ValueError, "overlaps an input"),
])
def test_bad_out(make_out, exc, message):
    logits = np.zeros((2, 3), np.float32)
    with pytest.raises(exc, match=message):
        grad_fn([0, 1], logits, out=make_out(logits))


def test_read_only_out_refused():
    out = np.zeros((2, 3), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        grad_fn([0, 1], np.zeros((2, 3), np.float32), out=out)


# --- PyTorch, where installed ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_matches_pytorch(rng, dtype, reduction):
    torch = pytest.importorskip("torch")
    labels, logits = make(rng, (97, 31), dtype)
    labels[::5] = -100
    weight = rng.uniform(0.2, 3.0, 31).astype(dtype)
    for kwargs in (dict(), dict(label_smoothing=0.15), dict(class_weight=weight),
                   dict(class_weight=weight, label_smoothing=0.3)):
        t_logits = torch.tensor(logits, requires_grad=True)
        t_weight = torch.tensor(kwargs["class_weight"]) if "class_weight" in kwargs else None
        expected = torch.nn.functional.cross_entropy(
            t_logits, torch.tensor(labels), weight=t_weight, ignore_index=-100, reduction=reduction,
            label_smoothing=kwargs.get("label_smoothing", 0.0))
        expected.sum().backward()
        loss, grad = grad_fn(labels, logits, reduction=reduction, ignore_index=-100, **kwargs)
        np.testing.assert_allclose(loss, expected.detach().numpy(), **tolerance(dtype))
        np.testing.assert_allclose(grad, t_logits.grad.numpy(), **tolerance(dtype))

"""logsumexp, softmax, log_softmax and target_log_prob against PyTorch and the
float64 reference, on every layout, out= and in place."""
import numpy as np
import pytest

import fastxent as fx
import reference as ref
from conftest import tolerance

torch = pytest.importorskip("torch")


def layouts(rng, dtype):
    base = (rng.standard_normal((3, 6, 5, 4)) * 4).astype(dtype)
    doubled = np.ascontiguousarray(np.repeat(base, 2, axis=-1))
    return base, [
        (base, 1), (base, -1), (base, 0), (base, 2),
        (np.asfortranarray(base), 1), (doubled[..., ::2], 1), (doubled[..., ::2], -1),
        (base[:, :, 0, 0], 1), (base[:, :, 0, 0], 0), (base[0, :, 0, 0], 0),
        (np.ascontiguousarray(base.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3), -1),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_match_pytorch_on_every_layout(isa, rng, dtype, n_threads):
    _, cases = layouts(rng, dtype)
    for x, axis in cases:
        t = torch.tensor(np.ascontiguousarray(x))
        np.testing.assert_allclose(fx.logsumexp(x, axis, n_threads=n_threads),
                                   torch.logsumexp(t, axis).numpy(), **tolerance(dtype))
        np.testing.assert_allclose(fx.log_softmax(x, axis, n_threads=n_threads),
                                   torch.log_softmax(t, axis).numpy(), **tolerance(dtype))
        np.testing.assert_allclose(fx.softmax(x, axis, n_threads=n_threads),
                                   torch.softmax(t, axis).numpy(), **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_target_log_prob(isa, rng, dtype):
    logits = (rng.standard_normal((5, 7, 3)) * 3).astype(dtype)
    labels = rng.integers(0, 7, (5, 3))
    expected = -torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels),
                                                  reduction="none").numpy()
    np.testing.assert_allclose(fx.target_log_prob(labels, logits, axis=1), expected, **tolerance(dtype))
    last = np.ascontiguousarray(np.moveaxis(logits, 1, -1))
    result = fx.target_log_prob(labels, last)
    assert result.dtype == dtype and result.shape == (5, 3)
    np.testing.assert_allclose(result, expected, **tolerance(dtype))
    np.testing.assert_allclose(fx.target_log_prob(labels[:, 0], last[:, 0]),
                               ref.log_softmax(last[:, 0])[np.arange(5), labels[:, 0]], **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_and_in_place(rng, dtype):
    base, _ = layouts(rng, dtype)
    for fn, reference in ((fx.softmax, torch.softmax), (fx.log_softmax, torch.log_softmax)):
        for axis in (1, -1):
            expected = reference(torch.tensor(base), axis).numpy()
            out = np.empty_like(base)
            assert fn(base, axis, out=out) is out
            np.testing.assert_allclose(out, expected, **tolerance(dtype))
            work = base.copy()
            assert fn(work, axis, out=work) is work
            np.testing.assert_allclose(work, expected, **tolerance(dtype))
            work = np.asfortranarray(base)
            fn(work, axis, out=work)
            np.testing.assert_allclose(work, expected, **tolerance(dtype))


def test_inputs_unchanged_and_special_values(isa):
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [np.nan, 0.0, 0.0], [1e4, 1e4, -1e4]],
                 dtype=np.float32)
    saved = x.copy()
    lse = fx.logsumexp(x)
    np.testing.assert_allclose(lse[0], np.logaddexp(0.0, 1.0), rtol=1e-6)
    assert lse[1] == -np.inf and np.isnan(lse[2])
    np.testing.assert_allclose(lse[3], 1e4 + np.log(2), rtol=1e-7)
    p = fx.softmax(x)
    assert p[0, 1] == 0.0 and np.isnan(p[2]).all()
    np.testing.assert_allclose(fx.log_softmax(x)[3], [-np.log(2), -np.log(2), -2e4 - np.log(2)], rtol=1e-6)
    np.testing.assert_array_equal(x, saved)
    # class axis in the middle: the same special values
    x3 = np.ascontiguousarray(x.T[None])                              # (1, 3, 4)
    lse3 = fx.logsumexp(x3, 1)[0]
    np.testing.assert_array_equal(np.isnan(lse3), np.isnan(lse))
    np.testing.assert_allclose(lse3[[0, 1, 3]], lse[[0, 1, 3]], rtol=1e-6)


def test_errors():
    with pytest.raises(TypeError, match="x must be float32 or float64, got int64"):
        fx.logsumexp(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="axis=3 is out of range"):
        fx.softmax(np.zeros((2, 3)), axis=3)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        fx.log_softmax(np.float64(1.0))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\)"):
        fx.softmax(np.zeros((2, 3)), out=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"labels\[1\] = 3 is outside \[0, 3\)"):
        fx.target_log_prob([0, 3], np.zeros((2, 3)))

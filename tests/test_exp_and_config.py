"""The vectorized exp against numpy's, at every instruction-set level, and
what show_config reports."""
import numpy as np
import pytest

import fastxent as fx
from fastxent import _dispatch

ULPS = 3


@pytest.mark.parametrize("dtype, lo, hi", [(np.float32, -87.3, 88.7), (np.float64, -708.3, 709.7)])
def test_exp_within_a_few_ulp(isa, dtype, lo, hi):
    x = np.concatenate([np.linspace(lo, hi, 200_001), [0.0, -0.0, 1e-30, -1e-30]]).astype(dtype)
    for nonpositive in (False, True):
        values = x[x <= 0] if nonpositive else x
        out = np.empty_like(values)
        _dispatch.kernels.sparse.exp_values(values, out, nonpositive)
        exact = np.exp(values.astype(np.float64))
        ulp = np.spacing(exact.astype(dtype)).astype(np.float64)
        assert np.max(np.abs(out - exact) / ulp) <= ULPS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_special_values(isa, dtype):
    x = np.array([-np.inf, np.inf, np.nan, -1e6, 1e6], dtype=dtype)
    out = np.empty_like(x)
    _dispatch.kernels.sparse.exp_values(x, out, False)
    assert out[0] == 0 and out[1] == np.inf and np.isnan(out[2]) and out[3] == 0 and out[4] == np.inf
    x = np.array([-np.inf, np.nan, -1e6], dtype=dtype)
    out = np.empty_like(x)
    _dispatch.kernels.sparse.exp_values(x, out, True)
    assert out[0] == 0 and np.isnan(out[1]) and out[2] == 0


def test_show_config(capsys):
    fx.show_config()
    printed = capsys.readouterr().out
    config = fx.config()
    assert config["version"] == fx.__version__ in printed
    assert config["isa"] == _dispatch.LEVEL and config["isa"] in printed
    assert config["isa"] in config["isa_supported"]
    assert isinstance(config["openmp"], bool) and config["default_threads"] >= 1
    assert config["compiler"] in printed


def test_forcing_an_unavailable_level_raises():
    with pytest.raises(ValueError, match="FASTXENT_ISA must be one of"):
        _dispatch.use_level("sse9")

import os

import numpy as np
import pytest

from fastxent import _dispatch

os.environ.setdefault("KERAS_BACKEND", "torch")   # before any keras import: no TensorFlow needed


@pytest.fixture(params=_dispatch.supported_levels())
def isa(request):
    """Runs the test once per instruction-set level this machine supports."""
    previous = _dispatch.LEVEL
    _dispatch.use_level(request.param)
    yield request.param
    _dispatch.use_level(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def tolerance(dtype):
    return {"rtol": 2e-5, "atol": 2e-6} if np.dtype(dtype) == np.float32 else {"rtol": 1e-12, "atol": 1e-13}

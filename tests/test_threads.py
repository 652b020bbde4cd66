"""Kernels called from several Python threads at once: they keep no global
state and release the GIL, so on free-threaded CPython (3.14t) the calls run
truly in parallel.  The same test runs on every interpreter; on a free-threaded
one it also checks that importing fastxent did not switch the GIL back on
(CPython does that for an extension module not declared thread-safe)."""
import os
import sys
import sysconfig
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastxent as fx

N_CALLERS = 4
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded CPython build")
def test_import_keeps_the_gil_disabled():
    if os.environ.get("PYTHON_GIL") == "1":
        pytest.skip("PYTHON_GIL=1 forces the GIL on")
    assert not sys._is_gil_enabled()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_concurrent_callers_get_their_own_results(dtype, n_threads):
    rng = np.random.default_rng(7)
    # 33 rows x 1,500 classes: above the one-thread cut-off, so n_threads=2
    # opens an OpenMP team inside each Python thread
    batches = [(rng.integers(0, 1500, 33), (rng.standard_normal((33, 1500)) * 3).astype(dtype))
               for _ in range(N_CALLERS)]
    expected = [(fx.sparse_softmax_cross_entropy_with_logits(labels, logits, reduction="mean", n_threads=1),
                 *fx.sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, n_threads=1))
                for labels, logits in batches]
    start = threading.Barrier(N_CALLERS)

    def call(batch):
        labels, logits = batch
        start.wait()   # all callers inside the kernels together
        results = []
        for _ in range(20):
            loss = fx.sparse_softmax_cross_entropy_with_logits(labels, logits, reduction="mean",
                                                               n_threads=n_threads)
            per_row, grad = fx.sparse_softmax_cross_entropy_with_logits_and_grad(
                labels, logits, n_threads=n_threads)
            results.append((loss, per_row, grad))
        return results

    with ThreadPoolExecutor(N_CALLERS) as pool:
        outcomes = list(pool.map(call, batches))
    for (loss_1, per_row_1, grad_1), results in zip(expected, outcomes):
        for loss, per_row, grad in results:
            # bitwise: results depend neither on the thread count nor on other callers
            assert loss == loss_1
            np.testing.assert_array_equal(per_row, per_row_1)
            np.testing.assert_array_equal(grad, grad_1)

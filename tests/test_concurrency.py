"""8 Python threads calling every public function at once, with one and two
OpenMP threads inside each call, give bit-for-bit the results of serial
calls.

The kernels hold no global mutable state: the only module-level names in
pyx/*.pyx are constants (ISA, enums), the C headers define functions and
constants only, and every scratch buffer is allocated per call by the
Python layer (per-thread rows of one call) or on the stack.  The GIL is
released inside the kernels, so these calls really overlap.
"""
import importlib
import threading

import numpy as np
import pytest

from fastxent import _dispatch

from public_calls import IDS, REGISTRY, with_options

N_PYTHON_THREADS = 8
ROUNDS = 3


def copy_args(args):
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}


def workloads(call, dtype):
    """One distinct input per Python thread, large enough (rows x classes >
    32,768) that n_threads=2 really runs two OpenMP threads; the options
    cycle through the entry's list."""
    options = call.options(300, dtype)
    return [with_options(call.make(np.random.default_rng(seed), 160, 300, dtype), options[seed % len(options)])
            for seed in range(N_PYTHON_THREADS)]


@pytest.mark.parametrize("call", REGISTRY, ids=IDS)
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_match_serial(call, n_threads, dtype):
    inputs = workloads(call, dtype)
    for args in inputs:
        args["n_threads"] = n_threads
    serial = [call(copy_args(args)) for args in inputs]
    results = [None] * N_PYTHON_THREADS
    errors = []
    start = threading.Barrier(N_PYTHON_THREADS)

    def work(index):
        try:
            start.wait()
            results[index] = [call(copy_args(inputs[index])) for _ in range(ROUNDS)]
        except Exception as error:   # re-raised below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(N_PYTHON_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    for index, rounds in enumerate(results):
        for result in rounds:
            for got, want in zip(result, serial[index]):
                np.testing.assert_array_equal(got, want, err_msg=f"python thread {index}")


def test_kernel_modules_hold_no_mutable_state():
    """Every public attribute of a kernel module is a function, a class or an
    immutable constant: nothing a call could mutate and another observe."""
    for module_name in _dispatch.MODULES.values():
        for level in _dispatch.supported_levels():
            module = importlib.import_module(f"fastxent.{module_name}_{level}")
            for name, value in vars(module).items():
                if name.startswith("__"):
                    continue
                immutable = isinstance(value, (str, int, float, bool, bytes, tuple, frozenset))
                assert callable(value) or immutable, f"{module.__name__}.{name}: {type(value).__name__}"

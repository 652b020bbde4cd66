"""Keeps BLAS single-threaded while a fused kernel runs.

The fused kernels (_linear.pyx) call gemm from inside their own OpenMP
threads, one logits block per call.  A threaded BLAS would then start its
own team inside each of ours: scipy's OpenBLAS (pthreads build) serializes
concurrent threaded calls on a lock and oversubscribes the cores, which
measured 1.6 to 7.5 times slower than the same calls with BLAS on one thread.
threadpoolctl sets the loaded BLAS libraries (whichever scipy was built
with: OpenBLAS, MKL, BLIS, ...) to one thread for the duration of the call
and restores them afterwards.  The limit is process-wide: other Python
threads calling BLAS meanwhile also run it on one thread.  Concurrent fused
calls share one limit: the first to enter sets it, the last to leave
restores it.
"""
import contextlib
import threading

_lock = threading.Lock()
_active = 0
_limiter = None
_controller = None


def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, found once (scipy's
    BLAS is loaded by the time a fused kernel module has been imported)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


@contextlib.contextmanager
def single_threaded():
    global _active, _limiter
    with _lock:
        if _active == 0:
            _limiter = _blas_controller().limit(limits=1)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                _limiter.restore_original_limits()
                _limiter = None

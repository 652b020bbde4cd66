"""Inference-server primitives from the same kernels: logsumexp, softmax,
log_softmax along any axis, and the log-probability of each row's target
(scoring without softmaxing the row into memory)."""
import numpy as np

from . import _layout, _threads
from . import _validate as v
from ._dispatch import kernels
from .softmax import sparse_nd

SOFTMAX, LOG_SOFTMAX = 0, 2   # the kinds of kernels.softmax.col_softmax


def logsumexp(x, axis=-1, *, n_threads=None):
    """log(sum(exp(x), axis)) in one read, as an array of x's dtype with
    `axis` removed.  A slice of only -inf gives -inf; a NaN gives NaN."""
    x = v.float_array(x, "x")
    k = _layout.class_axis(x.ndim, axis)
    threads = _threads.resolve(n_threads, work=x.size)
    lse = np.empty(_layout.position_shape(x.shape, k), dtype=x.dtype)
    for (xv,), (lv,) in _layout.blocks([x], [lse], k):
        if xv.ndim == 2:
            scratch = v.row_scratch((xv,), threads, xv.shape[1], x.dtype)
            kernels.sparse.logsumexp_rows(xv, lv, scratch, threads)
        else:
            scratch, dscratch = _layout.col_scratch(threads, xv.shape[1], x.dtype, rows=1)
            kernels.softmax.col_softmax(xv, None, lv, None, 1.0, SOFTMAX, scratch, dscratch, threads)
    return lse


def softmax(x, axis=-1, *, out=None, n_threads=None):
    """exp(x - logsumexp(x)) along `axis`, into a new array, `out`, or x itself (out=x)."""
    return _softmax(x, axis, out, n_threads, log_space=False)


def log_softmax(x, axis=-1, *, out=None, n_threads=None):
    """x - logsumexp(x) along `axis`, into a new array, `out`, or x itself (out=x)."""
    return _softmax(x, axis, out, n_threads, log_space=True)


def _softmax(x, axis, out, n_threads, log_space):
    x = v.float_array(x, "x")
    k = _layout.class_axis(x.ndim, axis)
    out = v.output(out, x.shape, x.dtype, inputs=(x,))
    threads = _threads.resolve(n_threads, work=x.size)
    for (xv, ov), _ in _layout.blocks([x, out], [], k):
        if xv.ndim == 2:
            scratch = v.row_scratch((xv, ov), threads, xv.shape[1], x.dtype)
            kernels.softmax.softmax_rows(xv, ov, log_space, scratch, threads)
        else:
            scratch, dscratch = _layout.col_scratch(threads, xv.shape[1], x.dtype, rows=1)
            kernels.softmax.col_softmax(xv, ov, None, None, 1.0, LOG_SOFTMAX if log_space else SOFTMAX,
                                        scratch, dscratch, threads)
    return out


def target_log_prob(labels, logits, axis=-1, *, n_threads=None):
    """log softmax(logits)[label] per position (= -cross-entropy), from the
    position's log-sum-exp and one gathered logit: the softmax is never
    written anywhere.  Shape: the logits' shape without `axis`."""
    loss, _, _ = sparse_nd(labels, logits, axis, "none", None, None, 0.0, n_threads)
    return np.negative(loss, out=loss)

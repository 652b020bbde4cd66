"""Plumbing shared by the element-wise (sigmoid / binary) losses: checking
a (predictions, targets) pair, and walking arrays of any shape and layout
as 2-D (rows, cols) views without copying them."""
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import _threads
from . import _validate as v

# row length of the 2-D walk of contiguous inputs when rows do not matter
# (element-wise results, or their sum): long enough to vectorize, short
# enough to split a large array between threads
FLAT_ROW = 4096
# scratch rows per thread the kernels may use (_sigmoid.SLOTS)
SLOTS = 6


def pair(y_pred, targets, pred_name, target_name):
    """(predictions, targets) as float arrays of one dtype and shape.

    The predictions must be float32 or float64 (never converted).  Targets
    given as an ndarray must already have that dtype: converting them would
    be a hidden full-size copy.  Targets given as Python data (lists,
    scalars) are converted, as is a broadcast of fewer elements.
    """
    x = v.float_array(y_pred, pred_name)
    if isinstance(targets, np.ndarray) and targets.size == x.size and targets.dtype != x.dtype:
        raise TypeError(f"{target_name} must have the dtype of {pred_name} ({x.dtype}), got {targets.dtype}: "
                        f"convert it with {target_name}.astype(np.{x.dtype}) (fastxent makes no hidden "
                        f"full-size copies)")
    t = np.asarray(targets)
    if t.dtype.kind not in "fiub":
        raise TypeError(f"{target_name} must be a real array (0/1 or soft targets), got {t.dtype}")
    if t.dtype != x.dtype:
        t = t.astype(x.dtype)
    t = v.float_array(t, target_name)
    if t.shape != x.shape:
        raise ValueError(f"{target_name} must have the shape of {pred_name}, {x.shape}, got {t.shape}")
    return x, t


def check_real(value, name, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be a number >= {minimum}, got {value}" if minimum is not None
                         else f"{name} must not be NaN")
    return value


def as_2d(a):
    """`a` viewed as (prod(shape[:-1]), shape[-1]) without copying, or None
    when its leading axes cannot be merged into one strided axis."""
    if a.ndim == 0:
        return a.reshape(1, 1)
    cols = a.shape[-1]
    rows = math.prod(a.shape[:-1])
    lead = [(n, s) for n, s in zip(a.shape[:-1], a.strides[:-1]) if n != 1]
    for (_, outer), (n, inner) in zip(lead, lead[1:]):
        if outer != n * inner:
            return None
    row_stride = lead[-1][1] if lead else 0
    return as_strided(a, (rows, cols), (row_stride, a.strides[-1]), writeable=a.flags.writeable)


def blocks(arrays, shape, rowwise):
    """Yield (2-D views of `arrays` (None stays None), first row, end row).

    rowwise: the rows are the last axis (each row's sum is needed).  Else,
    when every array is C-contiguous, they are walked as rows of FLAT_ROW
    elements (plus one shorter row): the row sums then only add up to the
    total.  Leading axes that cannot be merged are looped over here.
    """
    present = [a for a in arrays if a is not None]
    if not rowwise and all(a.flags.c_contiguous and a.shape == shape for a in present):
        n = math.prod(shape)
        full, rest = divmod(n, FLAT_ROW)
        flat = [None if a is None else a.reshape(-1) for a in arrays]
        if full:
            yield [None if f is None else f[:full * FLAT_ROW].reshape(full, FLAT_ROW) for f in flat], 0, full
        if rest:
            yield [None if f is None else f[full * FLAT_ROW:].reshape(1, rest) for f in flat], full, full + 1
        return
    views = [None if a is None else as_2d(a) for a in arrays]
    if all(view is not None for view, a in zip(views, arrays) if a is not None):
        yield views, 0, math.prod(shape[:-1]) if shape else 1
        return
    per_item = math.prod(shape[1:-1])
    for i in range(shape[0]):
        sub = [None if a is None else a[i] for a in arrays]
        for views, start, stop in blocks(sub, shape[1:], True):
            yield views, i * per_item + start, i * per_item + stop


def n_row_sums(shape, rowwise, contiguous):
    """How many row sums blocks() produces for this shape."""
    if not rowwise and contiguous:
        return -(-math.prod(shape) // FLAT_ROW)
    return math.prod(shape[:-1]) if shape else 1


def run(kernel, arrays, shape, rowwise, n_threads, dtype):
    """Call kernel(views, row_sums, scratch, threads) over blocks(arrays)
    and return the float64 row sums (one per row of the walk)."""
    present = [a for a in arrays if a is not None]
    contiguous = all(a.flags.c_contiguous and a.shape == shape for a in present)
    row_sums = np.zeros(n_row_sums(shape, rowwise, contiguous), dtype=np.float64)
    threads = _threads.resolve(n_threads, work=math.prod(shape))
    itemsize = np.dtype(dtype).itemsize
    for views, start, stop in blocks(arrays, shape, rowwise):
        cols = views[0].shape[1]
        strided = any(view is not None and cols > 1 and view.strides[1] != itemsize for view in views)
        scratch = np.empty((threads, SLOTS * cols), dtype=dtype) if strided else None
        kernel(views, row_sums[start:stop], scratch, threads)
    return row_sums

"""N-D inputs as the 2-D and 3-D views the kernels take, never a copy.

An input with the class axis k is viewed as (rows, classes) when k is the
last axis, else as (outer, classes, inner) (PyTorch's (N, C, d1, ...) has
outer = N, inner = d1 * ...).  Merging axes into one is a view only when their
strides allow it; when they do not (a transposed batch, say), `blocks` peels
the first non-class axis and recurses on the slices, which are views too.
Per-position arrays (labels, losses: the shape without the class axis) are
created C-contiguous by the caller, so they always merge.
"""
import numbers

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Positions per tile of the (outer, classes, inner) kernels: a tile of
# classes x TILE values should stay in L2 between the kernel's passes.
TILE_BYTES = 1 << 17


def class_axis(ndim, axis, name="axis"):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(axis).__name__}")
    if ndim == 0:
        raise ValueError("logits must have at least 1 dimension (the classes), got a scalar")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an input of {ndim} dimension(s)")
    return int(axis) % ndim


def merge(a, start, stop):
    """`a` with axes [start, stop) merged into one, as a view; None if the
    strides do not allow it."""
    shape, strides = a.shape, a.strides
    kept = [k for k in range(start, stop) if shape[k] != 1]
    size = int(np.prod(shape[start:stop], dtype=np.int64))
    if size != 0:
        for outer, inner in zip(kept, kept[1:]):
            if strides[outer] != shape[inner] * strides[inner]:
                return None
    stride = strides[kept[-1]] if kept else a.itemsize
    return as_strided(a, shape[:start] + (size,) + shape[stop:], strides[:start] + (stride,) + strides[stop:],
                      writeable=a.flags.writeable)


def as_kernel_view(a, axis):
    """(rows, classes) if the class axis is last, else (outer, classes, inner); or None."""
    if a is None:
        return None
    if axis == a.ndim - 1:
        return merge(a, 0, axis)
    inner = merge(a, axis + 1, a.ndim)
    return None if inner is None else merge(inner, 0, axis)


def blocks(class_arrays, position_arrays, axis):
    """Yield (class views, position views) covering the arrays, each class
    view 2-D (class axis last) or 3-D (class axis 1).  None entries stay None."""
    views = [as_kernel_view(a, axis) for a in class_arrays]
    if all(v is not None or a is None for v, a in zip(views, class_arrays)):
        shape = views[0].shape[:1] + views[0].shape[2:]
        yield views, [None if p is None else p.reshape(shape) for p in position_arrays]
        return
    peel = 0 if axis != 0 else 1
    sub_axis = axis - 1 if peel < axis else axis
    index = (slice(None),) * peel
    for i in range(class_arrays[0].shape[peel]):
        yield from blocks([None if a is None else a[index + (i,)] for a in class_arrays],
                          [None if p is None else p[i] for p in position_arrays], sub_axis)


def col_scratch(n_threads, n_classes, dtype, rows=4):
    """Per-thread tiles for the (outer, classes, inner) kernels: O(threads x tile)."""
    itemsize = np.dtype(dtype).itemsize
    tile = max(16, min(1024, TILE_BYTES // (max(n_classes, 1) * itemsize)) // 16 * 16)
    return (np.empty((n_threads, 4, tile), dtype=dtype),
            np.empty((n_threads, rows, tile), dtype=np.float64))


def position_shape(shape, axis):
    return shape[:axis] + shape[axis + 1:]

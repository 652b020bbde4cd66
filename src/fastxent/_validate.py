"""Input checks shared by every public function.

Everything is checked here, before a kernel runs, so a bad call raises with a
message naming what was expected and what came, and no output buffer has been
touched.  Nothing here copies a (rows x classes) array: a float input in the
wrong dtype or byte order is refused, not converted.  Only O(rows) or
O(classes) inputs (labels, class weights) are converted when needed.
"""
import numbers

import numpy as np

from ._dispatch import kernels

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# int32 and int64 (under each platform's names) go to the kernels as they are
KERNEL_LABEL_CHARS = {np.dtype(t).char for t in (np.int32, np.int64, np.intc, np.longlong)}
REDUCTIONS = ("none", "sum", "mean")


def float_array(x, name):
    """`x` as an ndarray of float32 or float64, never a converted copy."""
    x = np.asarray(x)
    dtype = x.dtype
    if dtype.char in "fd" and dtype.isnative and x.flags.aligned:
        return x   # the common case, checked in a few hundred nanoseconds
    if dtype == np.float16:
        raise TypeError(f"{name} must be float32 or float64, got float16: convert it with "
                        f"{name}.astype(np.float32) (fastxent makes no hidden full-size copies)")
    if dtype.kind != "f" or dtype.newbyteorder("=") not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    if not dtype.isnative:
        raise TypeError(f"{name} must be in native byte order, got {dtype.str}: "
                        f"convert it with {name}.astype({name}.dtype.newbyteorder('='))")
    if not x.flags.aligned:
        raise ValueError(f"{name} is not aligned to its {dtype} items (a buffer at an odd "
                         f"offset): copy it with np.require({name}, requirements='A')")
    return x


def logits_2d(logits, name="logits"):
    x = float_array(logits, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (rows, classes), got {x.ndim} dimension(s) "
                         f"with shape {x.shape}")
    return x


def labels_1d(labels, n_rows, n_classes, ignore_index, name="labels"):
    """Labels as contiguous int32 or int64 (other integer dtypes converted,
    O(rows)), checked to lie in [0, n_classes) unless equal to ignore_index.

    Returns (labels, number of rows not ignored).
    """
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got {y.dtype}")
    if y.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},) to match the logits' rows, got {y.shape}")
    if y.dtype.kind == "u" and y.dtype.itemsize == 8 and n_rows and y.max() > np.iinfo(np.int64).max:
        # would not survive the int64 the kernels read: find the first bad row here
        bad = y >= n_classes
        if ignore_index is not None and 0 <= check_ignore_index(ignore_index):
            bad &= y != ignore_index
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{row}] = {int(y[row])} is outside [0, {n_classes})")
    flags = y.flags
    kernel_ready = (y.dtype.char in KERNEL_LABEL_CHARS and y.dtype.isnative and flags.c_contiguous
                    and flags.aligned)   # the kernels never load a label misaligned
    if not kernel_ready:
        y = np.require(y, dtype=np.int64, requirements=["C", "A"])   # O(rows)
    has_ignore = ignore_index is not None
    ignore = check_ignore_index(ignore_index)
    bad_row, n_valid = kernels.sparse.check_labels(y, n_classes, has_ignore, ignore)
    if bad_row >= 0:
        raise ValueError(f"{name}[{bad_row}] = {int(np.asarray(labels)[bad_row])} is outside "
                         f"[0, {n_classes})" + ("" if not has_ignore else
                                                f" and is not ignore_index={ignore_index}"))
    return y, n_valid


def check_ignore_index(ignore_index):
    if ignore_index is None:
        return 0
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an integer or None, got {type(ignore_index).__name__}")
    value = int(ignore_index)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"ignore_index must fit in int64, got {value}")
    return value


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_fraction(value, name):
    if type(value) is float and 0.0 <= value <= 1.0:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1], got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def class_weight_1d(class_weight, n_classes, dtype):
    """Per-class weights as a contiguous array of the logits' dtype (O(classes))."""
    if class_weight is None:
        return None
    w = np.asarray(class_weight)
    if w.dtype.kind not in "fiu":
        raise TypeError(f"class_weight must be a real array, got {w.dtype}")
    if w.shape != (n_classes,):
        raise ValueError(f"class_weight must have shape ({n_classes},), one weight per class, got {w.shape}")
    return np.require(w, dtype=dtype, requirements=["C", "A"])


def output(out, shape, dtype, name="out", inputs=()):
    """A new C-contiguous array, or the caller's `out` checked to fit.

    `out` may be one of `inputs` itself (the same buffer, same layout: the
    kernels write each row after reading it), never a partial overlap.
    """
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} to match the input, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if not out.flags.aligned:
        raise ValueError(f"{name} is not aligned to its {dtype} items")
    for x in inputs:
        if x is not None and np.shares_memory(out, x) and not same_view(out, x):
            raise ValueError(f"{name} overlaps an input without being the same array; "
                             f"pass the input itself to work in place, or a separate array")
    return out


def same_view(a, b):
    # .ctypes.data, not __array_interface__: the latter builds a dict whose
    # memory numpy keeps per array (measured: ~1 MiB retained over many calls)
    return a.ctypes.data == b.ctypes.data and a.strides == b.strides and a.shape == b.shape


def row_scratch(arrays, n_threads, n_classes, dtype):
    """Per-thread scratch rows when some array's class axis is not contiguous
    (n_threads x n_classes: O(threads), not O(rows)); None otherwise."""
    itemsize = dtype.itemsize
    for a in arrays:
        if a is not None and a.strides[-1] != itemsize and a.shape[-1] > 1:
            return np.empty((n_threads, n_classes), dtype=dtype)
    return None

"""Fused linear + softmax cross-entropy: the loss of a classifier head
(logits = x @ weight.T + bias, weight in nn.Linear's (classes, hidden) layout)
and its gradients, with the logits computed block by block and never stored."""
import numbers

import numpy as np

from . import _blas, _threads
from . import _validate as v
from ._dispatch import kernels
from .sparse import reduce_rows

# A logits block is BLOCK_ROWS x BLOCK_CLASSES values per thread (4 MiB of
# float32, 8 MiB of float64), and every gemm call packs both its operands:
# weight's block once per block of rows, x's block once per block of
# classes.  A square block packs the least in all.  Measured on a 2-core
# AMD EPYC (1 MiB L2 per core, 32 MiB L3) with scipy's OpenBLAS, 2 threads,
# float32, against 512 x 2048: the forward 4 % faster at 2048 x 1024 x
# 128256 and 17-22 % at 1024 x 512 x 32000 and 8192 x 256 x 4096, the
# tile sweep's gradient 3 % faster (2048 x 512: as fast in the forward).
# Every thread's block stays in the L3 while it is turned into the softmax
# gradient and read back by gemm.
BLOCK_ROWS = 1024
BLOCK_CLASSES = 1024
# The forward's blocks of rows when the products are fx_gemm.h's (the
# AVX-512 build, C-ordered x and weight): each thread transposes a block of
# x once for all of its tile's blocks of classes, and the logits walk a
# block of weight once per 64 rows.  Measured against the BLAS blocks
# (2 threads, float32, forward / unfused forward, alternating calls):
# 0.81 against 0.82 at 2048 x 1024 x 128256, 11.6 s against 11.8 s at 8192
# rows; 128 to 1024 rows per block within the noise.  As fast, with 2 MiB
# per thread instead of 4 (D = 1024).
BLOCK_ROWS_TILED = 256
# ... and its blocks of classes: a 256 x 1024 float32 block is the whole
# 1 MiB L2, next to the 1 MiB of transposed x (D = 1024) the products read.
# Measured 2026-11-24, forward, float32, 2 threads, medians in shuffled
# order, seconds, 1024 / 512 / 256 classes per block: 11.19 / 10.46 / 10.47
# at 8192 x 1024 x 128256 (3 calls each), 2.654 / 2.637 / 2.629 at 2048
# rows (8 calls), 1.608 / 1.572 / 1.576 at 4096 x 768 x 50257 (6 calls),
# 0.175 / 0.173 / 0.175 at 1024 x 512 x 32000 (30 calls).
BLOCK_CLASSES_TILED = 512
# The gradient's panel of rows x all classes (see _panel_rows).  Measured
# on the same machine, float32, 2 threads, seconds (best of 2), with
# OpenBLAS's gemm (any build but AVX-512):
#     panel rows            32     64     96    128    201    512   tile sweep
#     1024 x 512 x 32000  1.06   0.81   0.73   0.67                    0.74
#     2048 x 1024 x 128256       12.3   11.1   10.5    9.3    8.7     12.1
# gemm packs weight's block once per call, twice per panel, so thin panels
# pay for it: below 96 rows the tile sweep is as fast and smaller.  With the
# AVX-512 build's register-tiled products (pyx/fx_gemm.h), nothing is
# packed, and panels win from 64 rows (2026-11-24, one run each, first
# version of fx_gemm.h):
#     panel rows            32     48     64     96    128    201   tile sweep
#     1024 x 512 x 32000  0.99   0.79   0.68   0.64   0.57           0.85
#     2048 x 1024 x 128256              10.7   10.4          9.9     12.4
# With fx_gemm.h's blocking and edges now, 204-row panels at 2048 x 1024 x
# 128256 took 8.9-9.0 s against 9.2-9.8 s for the unfused route (medians of
# alternating calls).
# The floor: at 1024 x 512 x 32000 float32, 2 threads (fused calls alone,
# shuffled order, one process, 2026-11-24), panels of 80 / 96 / 112 rows
# (12 / 14 / 16 MiB floors) took 0.541 / 0.529 / 0.529 s (medians of 30),
# 0.558 / 0.546 / 0.544 (of 20; 128 rows 0.543): 96 rows buy the 2 %, and
# 14 MiB is 3.7 % of PyTorch's temporaries there, 12 MiB 3.1 %.
PANEL_BYTES = 256 << 20
PANEL_FLOOR_BYTES = 14 << 20
MIN_PANEL_ROWS = 96
# With fx_gemm.h's products now, at 1920 x 1024 x 128256 float32 (2
# threads, 2026-11-24, seconds): the tile sweep 10.7, panels of 16 / 32 /
# 48 / 64 / 192 rows 11.5-12.0 / 9.8 / 8.1-8.3 / 7.7 / 7.4, the unfused
# route 8.4-8.8; at 1024 rows, the tile sweep 5.7, 32-row panels 5.1,
# unfused 4.8.  So panels from 32 rows, and 1/30 of the logits (a 1/40
# share held 46 rows at 1920, 32 in whole vectors, and at 1024 rows the
# 14 MiB floor's 27 rows are 16: both took the tile sweep).
MIN_PANEL_ROWS_TILED = 32
# 1/30 of the logits: with the gradients and BLAS's own pack buffers (a
# few MiB per thread) the extra peak stays under 5 % of the logits' size
# from a few hundred MiB of logits up (tests/test_linear.py checks it at
# 512 MiB: 19.3 MiB of the 25.6 allowed, 2026-11-24).
PANEL_FRACTION = 30


def linear_cross_entropy(x, weight, labels, bias=None, *, ignore_index=None, label_smoothing=0.0,
                         reduction="mean", z_loss=0.0, softcap=None, return_lse=False, n_threads=None):
    """Softmax cross-entropy of the logits x @ weight.T + bias against integer
    labels, without forming the (rows x classes) logits.

    Parameters
    ----------
    x : (rows, hidden) float32 or float64 array (the head's input).
    weight : (classes, hidden) array of x's dtype (nn.Linear's layout; a
        Keras kernel of shape (hidden, classes) is passed as ``kernel.T``).
        x and weight need one contiguous axis (C or Fortran order, rows may
        be strided); anything else is refused, not copied.
    labels : (rows,) integer array, each in [0, classes) or equal to ignore_index.
    bias : (classes,) array of x's dtype, or None.
    ignore_index : rows with this label get loss 0 and are left out of the
        mean. None (default) ignores nothing; PyTorch's convention is -100.
    label_smoothing : eps in [0, 1]: the target is (1 - eps) one-hot + eps / classes.
    reduction : "mean" (default, over the rows not ignored), "sum" or "none".
    z_loss : coefficient of the auxiliary term z_loss * lse**2 added to each
        row's loss (PaLM's z-loss; lse = log-sum-exp of the row's logits).
    softcap : None, or c > 0: the logits become c * tanh(logits / c) before
        the loss (Gemma 2's logit soft-capping).
    return_lse : also return the per-row log-sum-exp of the (capped) logits.
    n_threads : OpenMP threads (default: OpenMP's default; small inputs use one).

    Returns
    -------
    loss, a scalar of x's dtype, or (rows,) for reduction="none"; with
    return_lse, (loss, lse) with lse of shape (rows,) in x's dtype.
    """
    args = _prepare(x, weight, labels, bias, ignore_index, label_smoothing, reduction, z_loss, softcap,
                    n_threads, want_grad=False)
    loss, _, _, _, lse = _run(args)
    return (loss, lse) if return_lse else loss


def linear_cross_entropy_and_grad(x, weight, labels, bias=None, *, ignore_index=None, label_smoothing=0.0,
                                  reduction="mean", z_loss=0.0, softcap=None, return_lse=False,
                                  n_threads=None):
    """The loss of linear_cross_entropy and its gradients with respect to x,
    weight and bias, in one call.

    The gradients are of the reduced loss ("mean": divided by the number of
    rows not ignored; "none": of the sum of the per-row losses).  Extra
    memory, besides the gradients: a panel of rows x classes logits, and a
    panel rows x hidden slice of dx per thread, together at most 1/30 of
    the whole logits' size (or 14 MiB, or 256 MiB, see _panel_rows) plus
    O(rows), never O(rows x classes).  The compute is three
    matrix products of the head's size (logits, dx, dweight), like a path
    that stores the logits; when even a 96-row panel (32 rows when the
    products are the AVX-512 build's own) does not fit that budget, a sweep
    with one block per thread and a fourth product (the logits computed
    twice) is used.

    Returns (loss, dx, dweight, dbias), dbias None when bias is None, and lse
    appended when return_lse.  dx and dweight are new C-ordered arrays of
    x's and weight's shapes and dtype.
    """
    args = _prepare(x, weight, labels, bias, ignore_index, label_smoothing, reduction, z_loss, softcap,
                    n_threads, want_grad=True)
    loss, dx, dweight, dbias, lse = _run(args)
    result = (loss, dx, dweight, dbias)
    return result + (lse,) if return_lse else result


def _prepare(x, weight, labels, bias, ignore_index, label_smoothing, reduction, z_loss, softcap, n_threads,
             want_grad):
    """Every check, before anything is computed; returns the kernel's arguments."""
    x = v.float_array(x, "x")
    weight = v.float_array(weight, "weight")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (rows, hidden), got {x.ndim} dimension(s) with shape {x.shape}")
    if weight.ndim != 2:
        raise ValueError(f"weight must have shape (classes, hidden), got {weight.ndim} dimension(s) "
                         f"with shape {weight.shape}")
    if weight.dtype != x.dtype:
        raise TypeError(f"weight must have x's dtype {x.dtype}, got {weight.dtype}")
    n_rows, n_hidden = x.shape
    n_classes = weight.shape[0]
    if weight.shape[1] != n_hidden:
        raise ValueError(f"weight must have shape (classes, {n_hidden}) to match x's {n_hidden} columns, "
                         f"got {weight.shape}")
    if bias is not None:
        bias = v.float_array(bias, "bias")
        if bias.dtype != x.dtype:
            raise TypeError(f"bias must have x's dtype {x.dtype}, got {bias.dtype}")
        if bias.shape != (n_classes,):
            raise ValueError(f"bias must have shape ({n_classes},), one value per row of weight, "
                             f"got {bias.shape}")
        bias = np.ascontiguousarray(bias)   # O(classes)
    if n_hidden >= 2**31:
        raise ValueError(f"x's {n_hidden} columns exceed BLAS's 32-bit integers")
    x_layout = _blas_layout(x, "x")
    weight_layout = _blas_layout(weight, "weight")
    v.check_reduction(reduction)
    smoothing = v.check_fraction(label_smoothing, "label_smoothing")
    z_loss = _check_nonnegative(z_loss, "z_loss")
    if softcap is not None:
        softcap = _check_nonnegative(softcap, "softcap")
        if softcap == 0.0:
            raise ValueError("softcap must be None or positive, got 0")
    y, n_valid = v.labels_1d(labels, n_rows, n_classes, ignore_index)
    threads = _threads.resolve(n_threads, work=n_rows * n_classes)
    return dict(x=x, x_layout=x_layout, weight=weight, weight_layout=weight_layout, bias=bias, labels=y,
                n_valid=n_valid, ignore_index=ignore_index, smoothing=smoothing, z_loss=z_loss,
                softcap=softcap, reduction=reduction, threads=threads, want_grad=want_grad)


def _blas_layout(a, name):
    """(row_major, leading dimension) of a 2-D array BLAS can read in place:
    one axis of unit stride, the other a positive multiple of the item size."""
    itemsize = a.itemsize
    n_rows, n_cols = a.shape
    s_rows, s_cols = a.strides
    if a.size == 0:
        return True, max(n_cols, 1)
    if n_cols <= 1 or s_cols == itemsize:
        if n_rows <= 1:
            return True, max(n_cols, 1)
        if s_rows % itemsize == 0 and s_rows // itemsize >= max(n_cols, 1):
            return True, _fits_int(s_rows // itemsize, name)
    if n_rows <= 1 or s_rows == itemsize:
        if n_cols <= 1:
            return False, max(n_rows, 1)
        if s_cols % itemsize == 0 and s_cols // itemsize >= max(n_rows, 1):
            return False, _fits_int(s_cols // itemsize, name)
    raise ValueError(f"{name} must have one contiguous axis (C or Fortran order, the other axis "
                     f"strided by whole rows) for BLAS, got strides {a.strides} for shape {a.shape} "
                     f"and {a.dtype}: copy it with np.ascontiguousarray({name})")


def _fits_int(ld, name):
    if ld >= 2**31:
        raise ValueError(f"{name}'s row stride ({ld} items) exceeds BLAS's 32-bit integers")
    return ld


def _check_nonnegative(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative float, got {type(value).__name__}")
    value = float(value)
    if not (np.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite non-negative float, got {value}")
    return value


def _tile_groups(threads, n_rows, n_classes):
    """Groups the rows and the classes are each cut into for the tile sweep
    (its tiles are groups x groups):
    up to 4 per thread, so threads that finish early take more, but not so
    many that a group holds less than one full block (gemm then runs below
    its peak); a multiple of the threads (see _panel_groups)."""
    return _whole_rounds(threads, 4, n_rows // BLOCK_ROWS, n_classes // BLOCK_CLASSES)


def _panel_groups(threads, n_classes):
    """Class groups of the panel sweep: every panel step ends at a barrier,
    so several per thread keep the last thread's tail short, none smaller
    than one block of classes, and a multiple of the threads, or the last
    group of a step runs alone.  Measured at 1024 x 512 x 32000 float32, 2
    threads, seconds (medians of 15 calls in shuffled order): 31 groups
    0.565, 15 groups 0.572, 30 or 32 groups 0.550-0.554, 12 or 16 groups
    0.540-0.543; at 2048 x 1024 x 128256 (192-row panels) 16 and 32 groups
    as fast (8.15 and 8.16 s)."""
    return _whole_rounds(threads, 8, n_classes // BLOCK_CLASSES)


def _whole_rounds(threads, per_thread, *most):
    """Groups of work for dynamically scheduled threads: per_thread rounds
    of `threads` groups, fewer if that exceeds any of `most`, at least one."""
    if threads == 1:
        return 1
    return threads * max(1, min(per_thread, *(m // threads for m in most)))


def _panel_rows(n_rows, n_classes, n_hidden, threads, itemsize, tiled):
    """Rows of the gradient's panel (rows x all classes, see pyx/_linear.pyx),
    or 0 for the tile sweep.  The panel, the threads' dx slices and the
    transposed panel of x (rows x hidden each) take at most 1/PANEL_FRACTION
    of the logits' size (so the extra memory stays a small fraction of what
    the logits would take) or PANEL_FLOOR_BYTES if that is more (below it the
    memory is negligible next to the gradients), never more than PANEL_BYTES; and
    at least MIN_PANEL_ROWS (MIN_PANEL_ROWS_TILED when the products are
    fx_gemm.h's) rows (thinner panels make the three products slower than
    the tile sweep's four) unless it holds every row; then the rows are
    spread evenly over as many panels as that takes."""
    budget = min(PANEL_BYTES, max(PANEL_FLOOR_BYTES, n_rows * n_classes * itemsize // PANEL_FRACTION))
    rows = min(n_rows, budget // max((n_classes + (threads + 1) * n_hidden) * itemsize, 1))
    min_rows = MIN_PANEL_ROWS_TILED if tiled else MIN_PANEL_ROWS
    if rows < max(1, min(min_rows, n_rows)) or n_classes >= 2**31:
        return 0
    # fx_gemm.h's logits hold a vector of consecutive rows per register, so
    # a panel of whole vectors computes no padding: measured at 1024 x 512 x
    # 32000 float32, 2 threads (medians of 15 calls in shuffled order), 86-row
    # panels (6 vectors of 16, 10 rows of padding) 0.548 s, 80 rows 0.536 s
    lanes = kernels.linear.VECTOR_BYTES // itemsize if tiled else 1
    if rows < n_rows:
        rows -= rows % lanes
    # panels of equal rows: each panel walks all of weight and dweight, and
    # a thin last one (1024 rows in 93-row panels: a last panel of 1 row)
    # would cost that walk for almost no work; each but the last then
    # rounded up to whole vectors (never above the budget's rows)
    n_panels = -(-n_rows // rows)
    rows = -(-n_rows // n_panels)
    return min(n_rows, -(-rows // lanes) * lanes)


def _transposed_rows(n_hidden_rows, n_rows, dtype):
    """fx_gemm.h's xt: n_rows rows of x as columns, padded to a multiple of
    XT_PAD with zeros (the products read whole vectors); n_hidden_rows is
    n_hidden, or n_hidden per thread for the forward's per-thread slices."""
    pad = kernels.linear.XT_PAD
    return np.zeros((n_hidden_rows, (n_rows + pad - 1) // pad * pad), dtype=dtype)


def _run(a):
    x, weight = a["x"], a["weight"]
    n_rows, n_hidden = x.shape
    n_classes = weight.shape[0]
    dtype = x.dtype
    threads = a["threads"]
    denominator = float(a["n_valid"])
    grad_scale = 1.0
    if a["reduction"] == "mean":
        grad_scale = 1.0 / denominator if denominator != 0 else 0.0

    loss_rows = np.empty(n_rows, dtype=np.float64)
    stats = np.empty((2, n_rows), dtype=np.float64)
    tiled = kernels.linear.tiled_products(a["x_layout"][0], a["weight_layout"][0], n_hidden)
    panel_rows = _panel_rows(n_rows, n_classes, n_hidden, threads, dtype.itemsize, tiled) if a["want_grad"] else 0
    dx_parts = xt = block_max = None
    if panel_rows:
        scratch = np.empty((1, panel_rows, n_classes), dtype=dtype)
        dx_parts = np.empty((threads, panel_rows, n_hidden), dtype=dtype)
        if tiled:
            xt = _transposed_rows(n_hidden, panel_rows, dtype)
        n_groups = _panel_groups(threads, n_classes)
        partials = np.empty((3, n_groups, panel_rows), dtype=np.float64)
        if a["softcap"] is None:
            # the panel keeps exps and each block's row maxima (pyx/_linear.pyx, forward_block);
            # as panel_group cuts them: a group's classes (at most), then its blocks
            group_classes = -(-n_classes // n_groups)
            group_blocks = -(-group_classes // BLOCK_CLASSES)
            block_max = np.empty((n_groups * group_blocks, panel_rows), dtype=np.float64)
    else:
        # the forward with fx_gemm.h's products: blocks of fewer rows, each
        # transposed once per thread into its slice of xt (see BLOCK_ROWS_TILED)
        forward_tiled = tiled and not a["want_grad"]
        block_rows = max(1, min(BLOCK_ROWS_TILED if forward_tiled else BLOCK_ROWS, n_rows))
        block_classes = BLOCK_CLASSES_TILED if forward_tiled else BLOCK_CLASSES
        scratch = np.empty((threads, block_rows, max(1, min(block_classes, n_classes))), dtype=dtype)
        if forward_tiled:
            xt = _transposed_rows(threads * n_hidden, block_rows, dtype)
        n_groups = _tile_groups(threads, n_rows, n_classes)
        partials = np.empty((3, n_groups, n_rows), dtype=np.float64)
    dx = dweight = dbias = None
    if a["want_grad"]:
        dx = np.zeros((n_rows, n_hidden), dtype=dtype)
        dweight = np.zeros((n_classes, n_hidden), dtype=dtype)
        if a["bias"] is not None:
            dbias = np.zeros(n_classes, dtype=np.float64)
    ignore_index = a["ignore_index"]
    with _blas.single_threaded():
        total = kernels.linear.linear_xent(
            x, *a["x_layout"], weight, *a["weight_layout"], a["bias"], a["labels"],
            ignore_index is not None, v.check_ignore_index(ignore_index),
            a["smoothing"], a["z_loss"], a["softcap"] or 0.0, loss_rows, stats, dx, dweight, dbias,
            grad_scale, scratch, dx_parts, xt, bool(panel_rows), BLOCK_CLASSES, partials, block_max, threads)
    loss = reduce_rows(loss_rows, a["reduction"], denominator, dtype, total)
    lse = (stats[0] + stats[1]).astype(dtype)
    if dbias is not None:
        dbias = dbias.astype(dtype)
    return loss, dx, dweight, dbias, lse

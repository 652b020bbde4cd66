"""linear_cross_entropy(_and_grad) against the float64 reference, fastxent's
own unfused path (x @ weight.T + bias, then the sparse kernel), PyTorch's
autograd, and every error path; its memory in a fresh process."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastxent as fx
from fastxent import linear
import reference_linear as ref

loss_fn = fx.linear_cross_entropy
grad_fn = fx.linear_cross_entropy_and_grad


def close(actual, expected, dtype):
    """Products over the hidden or class axis: absolute errors scale with the
    largest value, relative ones alone do not hold for the near-zero entries."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    if np.dtype(dtype) == np.float32:
        np.testing.assert_allclose(actual, expected, rtol=2e-4, atol=2e-5 * scale)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-11, atol=1e-12 * scale)


def make(rng, n_rows, n_hidden, n_classes, dtype, bias=True):
    x = rng.standard_normal((n_rows, n_hidden)).astype(dtype)
    weight = (rng.standard_normal((n_classes, n_hidden)) * 2 / np.sqrt(max(n_hidden, 1))).astype(dtype)
    b = rng.standard_normal(n_classes).astype(dtype) if bias else None
    labels = rng.integers(0, max(n_classes, 1), n_rows)
    return x, weight, labels, b


def expected(x, weight, labels, bias, reduction, **options):
    losses, n_valid, lse, dx, dweight, dbias = ref.linear_xent(x, weight, labels, bias, **options)
    if reduction == "none":
        return losses, lse, dx, dweight, dbias
    if reduction == "sum":
        return losses.sum(), lse, dx, dweight, dbias
    scale = 1.0 / n_valid if n_valid else 0.0
    return losses.sum() * scale, lse, dx * scale, dweight * scale, dbias * scale


def check(x, weight, labels, bias, reduction="mean", n_threads=None, **options):
    dtype = x.dtype
    want_loss, want_lse, want_dx, want_dweight, want_dbias = expected(x, weight, labels, bias, reduction,
                                                                      **options)
    loss, lse = loss_fn(x, weight, labels, bias, reduction=reduction, return_lse=True, n_threads=n_threads,
                        **options)
    assert np.asarray(loss).dtype == dtype and lse.dtype == dtype
    close(loss, want_loss, dtype)
    close(lse, want_lse, dtype)
    loss, dx, dweight, dbias = grad_fn(x, weight, labels, bias, reduction=reduction, n_threads=n_threads,
                                       **options)
    close(loss, want_loss, dtype)
    assert dx.dtype == dtype and dx.shape == x.shape and dweight.shape == weight.shape
    close(dx, want_dx, dtype)
    close(dweight, want_dweight, dtype)
    if bias is None:
        assert dbias is None
    else:
        assert dbias.dtype == dtype and dbias.shape == bias.shape
        close(dbias, want_dbias, dtype)


@pytest.fixture(params=["tiles", "panels"])
def small_blocks(request, monkeypatch):
    """Blocks of 7 rows x 33 classes, and the gradient by either sweep (the
    tile sweep, or panels of 5 rows x all classes): small inputs then span
    many blocks and panels, with partial ones at the edges."""
    monkeypatch.setattr(linear, "BLOCK_ROWS", 7)
    monkeypatch.setattr(linear, "BLOCK_ROWS_TILED", 7)
    monkeypatch.setattr(linear, "BLOCK_CLASSES", 33)
    monkeypatch.setattr(linear, "BLOCK_CLASSES_TILED", 33)
    panel_rows = 0 if request.param == "tiles" else 5
    monkeypatch.setattr(linear, "_panel_rows", lambda n_rows, *_: min(n_rows, panel_rows))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 2), (67, 19, 301), (40, 1, 500), (3, 8, 2500)])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
def test_matches_reference(isa, rng, small_blocks, dtype, shape, n_threads, bias):
    x, weight, labels, b = make(rng, *shape, dtype, bias=bias)
    before = [a.copy() for a in (x, weight, labels)]
    for reduction in ("none", "sum", "mean"):
        check(x, weight, labels, b, reduction=reduction, n_threads=n_threads)
    for a, copy in zip((x, weight, labels), before):
        np.testing.assert_array_equal(a, copy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads, n_rows", [(1, 600), (2, 1100)])
@pytest.mark.parametrize("n_hidden", [8, 64])
def test_default_blocks_with_partial_edges(rng, dtype, n_threads, n_rows, n_hidden):
    # each thread's rows and 2100 classes: full and partial blocks each way,
    # by BLAS (8 hidden) or, in the AVX-512 build, fx_gemm.h (64 hidden: the
    # forward's 256 x 512 blocks, 4 full and one of 52 classes)
    x, weight, labels, b = make(rng, n_rows, n_hidden, 2100, dtype)
    check(x, weight, labels, b, n_threads=n_threads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_rows, n_hidden, n_classes, panel_rows, block_classes", [
    (100, 70, 301, 29, 33), (100, 130, 301, 29, 33), (40, 64, 301, 29, 33),   # full, moved-back tiles
    (100, 70, 301, 40, 33),                                    # last strip of xt: 1 to 3 vectors
    (40, 70, 301, 5, 33), (40, 70, 5, 29, 33),                 # narrower than a tile
    (600, 300, 700, 256, 700), (600, 300, 700, 300, 700)])     # k in chunks, hidden in L2 blocks
@pytest.mark.parametrize("n_threads", [1, 2])
def test_panels_with_full_and_partial_tiles(isa, rng, monkeypatch, dtype, n_rows, n_hidden, n_classes,
                                            panel_rows, block_classes, n_threads):
    """Panels of 5 to 300 rows, blocks of 33 to 700 classes, 64 to 300
    hidden: in the AVX-512 build the three products (pyx/fx_gemm.h) run full
    6-row tiles (64 floats or 32 doubles wide), moved-back edge tiles on both
    axes, last strips of xt 1 to 4 vectors wide, a thinner last panel, the
    narrow path (5 rows, 5 classes), and k in chunks of at most 256 steps
    (more than 256 panel rows or classes in a block) with hidden in blocks
    (300 hidden: two blocks).  The forward (linear_cross_entropy) runs the
    same logits product on blocks of as many rows."""
    monkeypatch.setattr(linear, "BLOCK_CLASSES", block_classes)
    monkeypatch.setattr(linear, "_panel_rows", lambda n, *_: min(n, panel_rows))
    monkeypatch.setattr(linear, "BLOCK_ROWS_TILED", panel_rows)   # the forward's blocks of rows
    monkeypatch.setattr(linear, "BLOCK_CLASSES_TILED", block_classes)   # ... and of classes
    x, weight, labels, b = make(rng, n_rows, n_hidden, n_classes, dtype)
    check(x, weight, labels, b, n_threads=n_threads)
    check(x, weight, labels, None, reduction="sum", n_threads=n_threads, softcap=3.0, label_smoothing=0.1)


def test_tiled_products_rule(isa):
    """fx_gemm.h's products in the AVX-512 build (GCC/Clang) for C-ordered x
    and weight with at least 64 hidden values; BLAS otherwise."""
    from fastxent._dispatch import kernels
    assert kernels.linear.tiled_products(True, True, 64) == (isa == "avx512")
    for layout in ((False, True, 64), (True, False, 64), (True, True, 63)):
        assert not kernels.linear.tiled_products(*layout)


def test_group_policy():
    """Class groups (and the tile sweep's row groups) come in whole rounds of
    the threads, so no step ends with one group running alone; none holds
    less than a block."""
    block = linear.BLOCK_CLASSES
    assert linear._panel_groups(1, 10**6) == 1
    assert linear._panel_groups(2, 32000) == 16        # 8 per thread (31 blocks would allow 31)
    assert linear._panel_groups(2, 15 * block) == 14   # 15 blocks: 7 rounds of 2, not 15
    assert linear._panel_groups(3, 4 * block) == 3     # one round even below a block per group
    assert linear._panel_groups(2, 100) == 2
    assert linear._tile_groups(1, 10**6, 10**6) == 1
    assert linear._tile_groups(2, 5 * linear.BLOCK_ROWS, 10**6) == 4   # 5 row blocks: 2 rounds
    assert linear._tile_groups(2, 10**6, 3 * block) == 2
    assert linear._tile_groups(2, 10**6, 10**6) == 8   # 4 per thread
    assert linear._tile_groups(4, 100, 100) == 4


@pytest.mark.parametrize("tiled", [False, True])
def test_panel_policy(tiled):
    """The panel, the threads' dx slices and x's transposed panel fit 1/30 of
    the logits (or the floor, or the cap); thinner than MIN_PANEL_ROWS (32
    rows when the products are fx_gemm.h's, which pack nothing), the tile
    sweep is used."""
    min_rows = linear.MIN_PANEL_ROWS_TILED if tiled else linear.MIN_PANEL_ROWS
    n_rows, n_classes, n_hidden, threads = 8192, 128256, 1024, 2
    row_bytes = (n_classes + (threads + 1) * n_hidden) * 4
    most = n_rows * n_classes * 4 // linear.PANEL_FRACTION // row_bytes   # 266 rows fit 1/30 of the logits
    rows = linear._panel_rows(n_rows, n_classes, n_hidden, threads, 4, tiled)
    assert min_rows <= rows <= most
    n_panels = -(-n_rows // rows)
    if tiled:
        # whole vectors of 16 floats: 256 rows fit, 32 panels of 256 rows
        assert n_panels == -(-n_rows // (most // 16 * 16)) == 32 and rows == 256
    else:
        # as few panels as the budget allows (31), of equal rows: 265, 265, ..., 242
        assert n_panels == -(-n_rows // most) == 31 and rows == 265
    # float64 (8 doubles a vector): the 256 MiB cap holds 255 rows
    assert linear._panel_rows(n_rows, n_classes, n_hidden, threads, 8, tiled) == (248 if tiled else 249)
    assert linear._panel_rows(2048, n_classes, n_hidden, threads, 4, tiled) == (64 if tiled else 0)   # 66 fit
    assert linear._panel_rows(1536, n_classes, n_hidden, threads, 4, tiled) == (48 if tiled else 0)   # 50 fit
    assert linear._panel_rows(1024, n_classes, n_hidden, threads, 4, tiled) == (32 if tiled else 0)   # 33 fit
    assert linear._panel_rows(960, n_classes, n_hidden, threads, 4, tiled) == 0   # 31 fit: 16 in vectors
    floor_rows = linear._panel_rows(1024, 16000, 512, threads, 4, tiled)   # the floor: 209 rows fit
    assert linear.PANEL_FLOOR_BYTES // ((16000 + (threads + 1) * 512) * 4) == 209
    assert floor_rows == (208 if tiled else 205) >= min_rows   # 5 panels
    # 109 fit: 10 panels of 103, not 9 + 43 rows; tiled: 11 of 96 (the last 64), not 94 rows in 96 lanes
    assert linear._panel_rows(1024, 32000, 512, threads, 4, tiled) == (96 if tiled else 103)
    assert linear._panel_rows(1000, 32000, 512, threads, 4, tiled) == (96 if tiled else 100)   # 11 x 91 -> 96
    assert linear._panel_rows(1024, 50257, 512, threads, 4, tiled) == (64 if tiled else 0)   # 70 fit
    assert linear._panel_rows(200, 10, 4, threads, 4, tiled) == 200   # every row fits one panel (not 208)
    huge = linear._panel_rows(10**6, 50_000, 64, threads, 4, tiled)
    assert huge * (50_000 + (threads + 1) * 64) * 4 <= linear.PANEL_BYTES


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ignore_index", [None, -100, 3])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("z_loss", [0.0, 1e-3])
@pytest.mark.parametrize("softcap", [None, 2.5])
def test_options_match_reference(rng, small_blocks, dtype, ignore_index, smoothing, z_loss, softcap):
    x, weight, labels, b = make(rng, 41, 6, 210, dtype)
    if ignore_index is not None:
        labels[::4] = ignore_index
    options = dict(ignore_index=ignore_index, label_smoothing=smoothing, z_loss=z_loss, softcap=softcap)
    for reduction in ("none", "mean"):
        check(x, weight, labels, b, reduction=reduction, n_threads=2, **options)


def test_serial_equals_parallel_closely(rng, small_blocks):
    x, weight, labels, b = make(rng, 90, 10, 400, np.float64)
    one = grad_fn(x, weight, labels, b, n_threads=1)
    two = grad_fn(x, weight, labels, b, n_threads=2)
    for a, c in zip(one, two):
        np.testing.assert_allclose(a, c, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_unfused_sparse_path(rng, dtype):
    x, weight, labels, b = make(rng, 129, 16, 700, dtype)
    labels[5] = -100
    logits = x @ weight.T + b
    loss, grad = fx.sparse_softmax_cross_entropy_with_logits_and_grad(
        labels, logits, reduction="mean", ignore_index=-100, label_smoothing=0.2)
    fused = grad_fn(x, weight, labels, b, ignore_index=-100, label_smoothing=0.2, n_threads=2)
    close(fused[0], loss, dtype)
    close(fused[1], grad @ weight, dtype)
    close(fused[2], grad.T @ x, dtype)
    close(fused[3], grad.sum(axis=0), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_matches_pytorch_autograd(rng, dtype, reduction):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, weight, labels, b = make(rng, 50, 12, 333, dtype)
    labels[::7] = -100
    z_loss, softcap, smoothing = 1e-2, 3.0, 0.05
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, b))
    ty = torch.tensor(labels)
    logits = softcap * torch.tanh(functional.linear(tx, tw, tb) / softcap)
    losses = functional.cross_entropy(logits, ty, ignore_index=-100, label_smoothing=smoothing,
                                      reduction="none")
    kept = ty != -100
    losses = losses + z_loss * torch.logsumexp(logits, dim=1) ** 2 * kept
    total = losses.sum() / kept.sum() if reduction == "mean" else losses.sum()
    total.backward()
    loss, dx, dweight, dbias = grad_fn(x, weight, labels, b, ignore_index=-100, label_smoothing=smoothing,
                                       z_loss=z_loss, softcap=softcap, reduction=reduction, n_threads=2)
    close(loss, total.item(), dtype)
    close(dx, tx.grad.numpy(), dtype)
    close(dweight, tw.grad.numpy(), dtype)
    close(dbias, tb.grad.numpy(), dtype)


def test_gradient_matches_finite_differences(rng):
    x, weight, labels, b = make(rng, 6, 4, 9, np.float64)
    options = dict(label_smoothing=0.1, z_loss=0.01, softcap=2.0)
    _, dx, dweight, dbias = grad_fn(x, weight, labels, b, **options)
    step = 1e-6
    for array, grad in ((x, dx), (weight, dweight), (b, dbias)):
        for index in [(0,) * array.ndim, tuple(s - 1 for s in array.shape)]:
            saved = array[index]
            array[index] = saved + step
            up = loss_fn(x, weight, labels, b, **options)
            array[index] = saved - step
            down = loss_fn(x, weight, labels, b, **options)
            array[index] = saved
            assert abs((up - down) / (2 * step) - grad[index]) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layouts(rng, small_blocks, dtype):
    """Fortran-ordered x and weight (a Keras kernel passed as kernel.T),
    strided rows, and a read-only input give the same results."""
    x, weight, labels, b = make(rng, 33, 9, 120, dtype)
    want = grad_fn(x, weight, labels, b, n_threads=2)
    wide = np.zeros((33, 20), dtype=dtype)
    wide[:, 3:12] = x
    strided = wide[:, 3:12]
    readonly = weight.copy()
    readonly.flags.writeable = False
    for xs, ws in ((np.asfortranarray(x), weight), (x, np.ascontiguousarray(weight.T).T),
                   (strided, np.asfortranarray(weight)), (x, readonly)):
        got = grad_fn(xs, ws, labels, b, n_threads=2)
        for a, c in zip(got, want):
            close(a, c, dtype)


def test_label_dtypes_and_list_inputs(rng):
    x, weight, labels, b = make(rng, 10, 3, 7, np.float64)
    want = loss_fn(x, weight, labels, b)
    for dtype in (np.int32, np.int64, np.uint8, np.uint64, np.int16):
        assert loss_fn(x, weight, labels.astype(dtype), b) == want
    assert loss_fn(x.tolist(), weight.tolist(), labels.tolist(), b.tolist()) == want


def test_all_rows_ignored_and_empty_inputs():
    x = np.ones((4, 3))
    weight = np.ones((5, 3))
    labels = np.full(4, -100)
    loss, dx, dweight, dbias = grad_fn(x, weight, labels, np.zeros(5), ignore_index=-100)
    assert loss == 0.0 and not dx.any() and not dweight.any() and not dbias.any()
    loss, lse = loss_fn(np.ones((0, 3)), weight, np.zeros(0, int), return_lse=True)
    assert loss == 0.0 and lse.shape == (0,)
    loss, lse = loss_fn(x, np.ones((0, 3)), labels, ignore_index=-100, reduction="none", return_lse=True)
    assert not loss.any() and np.all(lse == -np.inf)
    # no hidden units: the logits are the bias
    bias = np.array([0.0, 1.0, 2.0])
    loss, dx, dweight, dbias = grad_fn(np.ones((2, 0)), np.ones((3, 0)), [0, 2], bias)
    lse = np.log(np.exp(bias).sum())
    np.testing.assert_allclose(loss, lse - 1.0)
    assert dx.shape == (2, 0) and dweight.shape == (3, 0)
    np.testing.assert_allclose(dbias, np.exp(bias - lse) - [0.5, 0, 0.5])


def test_errors(rng):
    x, weight, labels, b = make(rng, 4, 3, 5, np.float32)
    with pytest.raises(TypeError, match="weight must have x's dtype float32, got float64"):
        loss_fn(x, weight.astype(np.float64), labels)
    with pytest.raises(TypeError, match="bias must have x's dtype"):
        loss_fn(x, weight, labels, b.astype(np.float64))
    with pytest.raises(TypeError, match="x must be float32 or float64, got float16"):
        loss_fn(x.astype(np.float16), weight, labels)
    with pytest.raises(TypeError, match="x must be float32 or float64, got int64"):
        loss_fn(x.astype(np.int64), weight, labels)
    with pytest.raises(ValueError, match=r"x must have shape \(rows, hidden\), got 1"):
        loss_fn(x[0], weight, labels)
    with pytest.raises(ValueError, match=r"weight must have shape \(classes, hidden\), got 3"):
        loss_fn(x, weight[None], labels)
    with pytest.raises(ValueError, match=r"weight must have shape \(classes, 3\) to match x's 3 columns, "
                                         r"got \(3, 5\)"):
        loss_fn(x, weight.T, labels)
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        loss_fn(x, weight, labels, b[:4])
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        loss_fn(x, weight, labels[:3])
    with pytest.raises(ValueError, match=r"labels\[2\] = 5 is outside \[0, 5\)"):
        loss_fn(x, weight, [0, 1, 5, 2])
    with pytest.raises(ValueError, match=r"labels\[1\] = -1 is outside \[0, 5\) and is not ignore_index"):
        loss_fn(x, weight, [0, -1, 2, 2], ignore_index=-100)
    with pytest.raises(TypeError, match="labels must be an integer array"):
        loss_fn(x, weight, labels.astype(np.float32))
    with pytest.raises(ValueError, match="x must have one contiguous axis"):
        loss_fn(np.zeros((4, 6), np.float32)[:, ::2], weight, labels)
    with pytest.raises(ValueError, match="weight must have one contiguous axis"):
        loss_fn(x, np.zeros((10, 6), np.float32)[::2, ::2], labels)
    with pytest.raises(ValueError, match="reduction must be one of"):
        loss_fn(x, weight, labels, reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        loss_fn(x, weight, labels, label_smoothing=1.5)
    with pytest.raises(ValueError, match="z_loss must be a finite non-negative float, got -0.1"):
        loss_fn(x, weight, labels, z_loss=-0.1)
    with pytest.raises(TypeError, match="z_loss must be a non-negative float, got str"):
        loss_fn(x, weight, labels, z_loss="0.1")
    with pytest.raises(ValueError, match="softcap must be None or positive, got 0"):
        loss_fn(x, weight, labels, softcap=0)
    with pytest.raises(ValueError, match="softcap must be a finite non-negative float, got inf"):
        loss_fn(x, weight, labels, softcap=float("inf"))
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        grad_fn(x, weight, labels, n_threads=0)


MEMORY_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import fastxent

    def rss(field):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024

    n_rows, n_hidden, n_classes = 8192, 32, 16384
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_rows, n_hidden), dtype=np.float32)
    weight = rng.standard_normal((n_classes, n_hidden), dtype=np.float32)
    labels = rng.integers(0, n_classes, n_rows)
    call = {"forward": fastxent.linear_cross_entropy,
            "grad": fastxent.linear_cross_entropy_and_grad}[sys.argv[1]]
    # warm-up at full block size: loads BLAS and its per-thread buffers
    call(x[:1024], weight[:4096], labels[:1024] % 4096, n_threads=2)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")   # VmHWM := VmRSS
    before = rss("VmRSS:")
    call(x, weight, labels, n_threads=2)
    print(rss("VmHWM:") - before)
""")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("call", ["forward", "grad"])
def test_extra_memory_is_a_small_fraction_of_the_logits(call):
    """8192 x 16384 float32 logits would take 512 MiB; each fused call's extra
    peak memory, in a fresh process of its own (freed heap left by another
    call would count), counting its outputs (dweight 2 MiB, dx 1 MiB), the
    forward's scratch blocks (2 x 4 MiB), the gradient's panel (1/30 of the
    logits) and BLAS's pack buffers, stays under 5 % of that."""
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, call], capture_output=True, text=True,
                            check=True, timeout=120)
    extra = int(result.stdout)
    assert extra < 0.05 * 8192 * 16384 * 4, f"{call}: {extra / 2**20:.1f} MiB"


def test_blas_thread_limit_is_restored(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [(lib["filepath"], lib["num_threads"]) for lib in threadpoolctl.threadpool_info()]
    x, weight, labels, b = make(rng, 30, 4, 400, np.float32)
    grad_fn(x, weight, labels, b, n_threads=2)
    with pytest.raises(ValueError):
        grad_fn(x, weight, labels[:3], b)
    assert [(lib["filepath"], lib["num_threads"]) for lib in threadpoolctl.threadpool_info()] == before


def test_masked_logit_gradient():
    """A -inf logit (a masked class, here from an infinite weight) contributes
    nothing, as in the sparse family: the row's gradient is p - onehot, finite."""
    x = np.array([[0.314, -1.09, 0.528]])
    weight = np.array([[0.5, -2.03, 1.0], [-np.inf, -0.957, -0.892]])   # class 1's logit is -inf
    labels = np.array([0])
    loss, dx, dweight, _ = fx.linear_cross_entropy_and_grad(x, weight, labels, reduction="sum")
    assert loss == 0.0   # p = (1, 0): the label has all the mass
    # grad_logits = p - onehot = (0, 0), so dx = 0 @ weight: 0 x (-inf) is NaN in a product, but the
    # masked class's zero row contributes exactly nothing
    np.testing.assert_array_equal(dweight, np.zeros(weight.shape))
    assert np.isfinite(dx[0, 1:]).all()

"""Differential fuzzing of every public function (tests/public_calls.py)
against its float64 reference or its documented error, with hypothesis:
shapes, float and label dtypes, memory layouts, special values, options.

The "ci" profile (default) is derandomized and small enough for the whole
file to run in well under a minute; HYPOTHESIS_PROFILE=thorough searches
ten times longer with fresh randomness.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import tolerance
from public_calls import (IDS, REFUSED_FLOATS, REGISTRY, WITH_IGNORE, WITH_IGNORE_IDS, WITH_LABELS,
                          WITH_LABELS_IDS, holds, label_error, with_options)

# float32 results of huge logits overflow to inf, as their float64 reference cast to float32 does
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FLOAT_DTYPES = [np.float32, np.float64]
LABEL_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
                ">i4", ">i8", ">u2"]


def layout(x, name):
    """A view of the values of `x` (C-contiguous) in the named memory layout."""
    if name == "C":
        return x
    if name == "fortran":
        return np.asfortranarray(x)
    if name == "rows_strided":
        return np.repeat(x, 2, axis=0)[::2]
    if name == "classes_strided":       # the class axis is not contiguous
        return np.repeat(x, 2, axis=1)[:, ::2]
    if name == "negative_strides":
        return np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    if name == "read_only":
        y = x.copy()
        y.flags.writeable = False
        return y
    raise ValueError(name)


FLOAT_LAYOUTS = ["C", "fortran", "rows_strided", "classes_strided", "negative_strides", "read_only"]
OUT_LAYOUTS = ["C", "fortran", "classes_strided", "negative_strides"]


def label_layout(y, name):
    """1-d labels in the named layout (labels are O(rows): any layout works)."""
    if name == "contiguous":
        return y
    if name == "strided":
        return np.repeat(y, 3)[::3]
    if name == "negative_stride":
        return y[::-1].copy()[::-1]
    if name == "misaligned":
        raw = np.zeros(y.nbytes + 1, dtype=np.uint8)
        z = np.frombuffer(raw.data, dtype=y.dtype, offset=1, count=y.size)
        raw[1:] = y.view(np.uint8)
        return z
    if name == "list":   # not when empty: numpy makes [] float64, refused as labels
        return y.tolist() if y.size else y
    raise ValueError(name)


LABEL_LAYOUTS = ["contiguous", "strided", "negative_stride", "misaligned", "list"]


def special_values(dtype, n_classes):
    """Special logits.  "max" is the dtype's largest finite value for float32
    (sums run in double); in float64 a row's sums may overflow beyond
    max / n_classes (see test_smoothing_near_float64_max), so there it is that."""
    info = np.finfo(dtype)
    top = info.max if dtype == np.float32 else info.max / (2 * n_classes)
    return {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "max": top, "-max": -top,
            "huge": top / 8, "-huge": -top / 8, "subnormal": info.smallest_subnormal,
            "-subnormal": -info.smallest_subnormal, "-0": -0.0, "tiny": info.tiny}


SPECIAL_KINDS = sorted(special_values(np.float32, 1)) + ["row of -inf", "row of -inf but one"]


def poison(x, injections):
    """Writes special values into `x` (C-contiguous, in place) at the drawn positions."""
    n_rows, n_classes = x.shape
    if x.size == 0:
        return
    values = special_values(x.dtype, n_classes)
    for row, column, kind in injections:
        row, column = row % n_rows, column % n_classes
        if kind == "row of -inf":
            x[row] = -np.inf
        elif kind == "row of -inf but one":
            x[row] = -np.inf
            x[row, column] = 0.0
        else:
            x[row, column] = values[kind]


def fit_labels(labels, dtype):
    """Labels that fit `dtype` (a class count above its range wraps the labels)."""
    top = int(np.iinfo(dtype).max)
    return np.asarray(labels) % (top + 1) if labels.size and labels.max() > top else labels


def representable(value, dtype):
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def build_valid_call(data, call, n_rows, n_classes, dtype):
    """A valid call's arguments for `call`, with drawn options, layouts,
    special values and ignored rows; returns (args, out buffer or None)."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    args = with_options(call.make(rng, n_rows, n_classes, dtype),
                        data.draw(st.sampled_from(call.options(n_classes, dtype)), label="options"))
    kinds = st.sampled_from((call.specials(args) if callable(call.specials) else call.specials) or SPECIAL_KINDS)
    injections = st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), kinds)
    layouts = st.sampled_from([name for name in FLOAT_LAYOUTS if name not in call.refused_layouts])
    for name in call.float_inputs:
        poison(args[name], data.draw(st.lists(injections, max_size=6), label=f"{name} specials"))
        args[name] = layout(args[name], data.draw(layouts, label=f"{name} layout"))
    for name in call.targets:
        args[name] = layout(args[name], data.draw(layouts, label=f"{name} layout"))
    if call.labels:
        label_dtype = data.draw(st.sampled_from(LABEL_DTYPES), label="label dtype")
        labels = fit_labels(args[call.labels], label_dtype)
        ignore_index = args.get(call.ignore)
        if ignore_index is not None and n_rows and representable(ignore_index, label_dtype):
            ignored = data.draw(st.lists(st.integers(0, n_rows - 1), max_size=n_rows), label="ignored rows")
            labels[ignored] = ignore_index
        labels = np.asarray(labels).astype(label_dtype)
        labels_layout = data.draw(st.sampled_from(LABEL_LAYOUTS), label="labels layout")
        args[call.labels] = label_layout(labels, labels_layout)
    out = None
    if call.out:
        mode = data.draw(st.sampled_from(["none", "new", "in place"]), label="out")
        target = args[call.in_place]
        if mode == "new":
            out = layout(np.full(target.shape, 7.0, dtype=target.dtype),
                         data.draw(st.sampled_from(OUT_LAYOUTS), label="out layout"))
        elif mode == "in place" and target.flags.writeable:
            out = target
        if out is not None:
            args[call.out] = out
    return args, out


def assert_matches(results, expected, dtype):
    assert len(results) == len(expected)
    for got, want in zip(results, expected):
        if want is None:   # an optional result not asked for (linear_cross_entropy's dbias without bias)
            assert got is None
            continue
        got = np.asarray(got)
        assert got.dtype == dtype
        with np.errstate(over="ignore", invalid="ignore"):
            want = np.asarray(want).astype(dtype)   # float32 results overflow where float64 does not
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, equal_nan=True, **tolerance(dtype))


def snapshot(args, call):
    return {name: np.array(args[name], copy=True) for name in (*call.float_inputs, *call.targets, call.labels)
            if name}


def assert_unchanged(args, saved, skip=None):
    for name, before in saved.items():
        if args[name] is not skip:
            np.testing.assert_array_equal(np.asarray(args[name]), before, err_msg=f"{name} was modified")


@pytest.mark.parametrize("call", REGISTRY, ids=IDS)
@given(data=st.data(), n_rows=st.integers(0, 24), n_classes=st.integers(1, 40),
       dtype=st.sampled_from(FLOAT_DTYPES))
def test_valid_inputs_match_reference(call, data, n_rows, n_classes, dtype):
    """Any shape, layout, label dtype, special value and option: the float64
    reference (with the documented special-value policy); inputs untouched
    unless given as out=; out= returned, not copied."""
    args, out = build_valid_call(data, call, n_rows, n_classes, dtype)
    saved = snapshot(args, call)
    expected = call.reference({**args, **saved})
    results = call(args)
    assert_matches(results, expected, np.dtype(dtype))
    assert_unchanged(args, saved, skip=out)
    if out is not None:
        assert any(holds(result, out) for result in results)


@pytest.mark.slow
@pytest.mark.parametrize("call", REGISTRY, ids=IDS)
@settings(max_examples=4)
@given(data=st.data(), n_rows=st.integers(1, 3), n_classes=st.integers(65_536, 70_001),
       dtype=st.sampled_from(FLOAT_DTYPES), n_threads=st.sampled_from([1, 2]))
def test_many_classes_match_reference(call, data, n_rows, n_classes, dtype, n_threads):
    """~70k classes, fewer rows than threads: the path that splits a row's classes."""
    args, _ = build_valid_call(data, call, n_rows, n_classes, dtype)
    args["n_threads"] = n_threads
    expected = call.reference({**args, **snapshot(args, call)})
    assert_matches(call(args), expected, np.dtype(dtype))


def out_of_range_values(n_classes, dtype, ignore_index):
    info = np.iinfo(dtype)
    candidates = [n_classes, n_classes + 1, -1, -2, 2**31 - 1, 2**31, 2**40, 2**63 - 1, -(2**63),
                  int(info.max), int(info.min)]
    return sorted({v for v in candidates if representable(v, dtype) and not 0 <= v < n_classes
                   and v != ignore_index})


@pytest.mark.parametrize("call", WITH_LABELS, ids=WITH_LABELS_IDS)
@given(data=st.data(), n_rows=st.integers(1, 24), n_classes=st.integers(1, 40),
       dtype=st.sampled_from(FLOAT_DTYPES))
def test_bad_labels_raise_and_write_nothing(call, data, n_rows, n_classes, dtype):
    """Out-of-range, negative and huge labels (every integer dtype): the
    documented ValueError naming the first bad row; out= and in-place
    logits untouched."""
    args, out = build_valid_call(data, call, n_rows, n_classes, dtype)
    labels = np.array(args[call.labels])
    label_dtype = labels.dtype
    bad = out_of_range_values(n_classes, label_dtype, args.get(call.ignore))
    assume(bad)
    rows = data.draw(st.lists(st.integers(0, n_rows - 1), min_size=1, max_size=3), label="bad rows")
    for row in rows:
        labels[row] = data.draw(st.sampled_from(bad), label="bad label")
    args[call.labels] = labels
    saved = snapshot(args, call)
    out_before = None if out is None else out.copy()
    # the error names a bad row and its label (the first one, but for uint64:
    # see test_uint64_labels_name_the_first_bad_row)
    errors = [label_error(call.labels, row, int(labels[row]), n_classes) for row in sorted(set(rows))]
    with pytest.raises(errors[0][0], match="|".join(f"(?:{match})" for _, match in errors)):
        call(args)
    assert_unchanged(args, saved)
    if out is not None:
        np.testing.assert_array_equal(out, out_before)


@pytest.mark.parametrize("call", REGISTRY, ids=IDS)
@given(data=st.data(), n_rows=st.integers(1, 12), n_classes=st.integers(1, 12),
       dtype=st.sampled_from(FLOAT_DTYPES), refusal=st.sampled_from(sorted(REFUSED_FLOATS)))
def test_refused_floats_raise_and_write_nothing(call, data, n_rows, n_classes, dtype, refusal):
    """float16, byte-swapped and misaligned (rows x classes) inputs are
    refused with the documented error, never silently copied."""
    args, out = build_valid_call(data, call, n_rows, n_classes, dtype)
    name = data.draw(st.sampled_from(call.float_inputs), label="refused input")
    transform, exception, match = REFUSED_FLOATS[refusal]
    if args.get(call.out) is args[name]:
        args[call.out] = out = np.full(args[name].shape, 7.0, args[name].dtype)
    args[name] = transform(args[name])
    out_before = None if out is None else out.copy()
    with pytest.raises(exception, match=match):
        call(args)
    if out is not None:
        np.testing.assert_array_equal(out, out_before)


@pytest.mark.parametrize("call", REGISTRY, ids=IDS)
@pytest.mark.parametrize("shape", [(0, 5), (0, 1), (1, 1), (5, 1), (1, 7)])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_edge_shapes(call, shape, dtype):
    """Zero rows, one row, one class, with every option set."""
    for options in call.options(shape[1], dtype):
        args = with_options(call.make(np.random.default_rng(0), *shape, dtype), options)
        assert_matches(call(args), call.reference(args), np.dtype(dtype))


@pytest.mark.parametrize("call", REGISTRY, ids=IDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_read_only_memmap(tmp_path, call, dtype):
    """Memory-mapped, read-only (rows x classes) inputs are read in place."""
    args = call.make(np.random.default_rng(1), 9, 6, dtype)
    for name in call.float_inputs:
        np.save(tmp_path / f"{name}.npy", args[name])
        args[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
    assert_matches(call(args), call.reference(args), np.dtype(dtype))


def test_smoothing_near_float64_max():
    """The smoothing term eps * (lse - mean(x)) is finite here although sum(x)
    (or sum w_j (lse - x_j)) would overflow: the kernel scales each term first."""
    top = np.finfo(np.float64).max
    for logits in ([[top, top, 0.0]], [[0.0, -top, -top]]):
        args = {"labels": np.array([0]), "logits": np.array(logits), "label_smoothing": 0.2}
        expected = REGISTRY[0].reference(args)[0]
        assert np.isfinite(expected).all()
        np.testing.assert_allclose(REGISTRY[0](args)[0], expected, rtol=1e-12)


def misaligned(x):
    """`x` copied into a buffer one byte past an aligned address."""
    raw = np.zeros(x.nbytes + 1, dtype=np.uint8)
    raw[1:] = np.ascontiguousarray(x).view(np.uint8).ravel()
    return np.frombuffer(raw.data, dtype=x.dtype, offset=1, count=x.size).reshape(x.shape)


@pytest.mark.parametrize("call", WITH_LABELS, ids=WITH_LABELS_IDS)
@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
def test_misaligned_labels_and_weights_are_accepted(call, label_dtype):
    """Labels and class weights are O(rows) / O(classes): a misaligned buffer
    is copied, never read misaligned by the kernel (the sanitizer build
    reports a misaligned load; on x86 the values would still come out right)."""
    args = call.make(np.random.default_rng(2), 8, 5, np.float64)
    args[call.labels] = misaligned(args[call.labels].astype(label_dtype))
    assert not args[call.labels].flags.aligned
    expected = call.reference(args)
    assert_matches(call(args), expected, np.dtype(np.float64))
    if "class_weight" in call.options(5, np.float64)[-2]:
        args["class_weight"] = misaligned(np.linspace(0.5, 2.0, 5))
        assert_matches(call(args), call.reference(args), np.dtype(np.float64))


def takes_reduction(call):
    return any("reduction" in options for options in call.options(3, np.float64))


# every reduction of the functions that take one; the per-sample result of those that do not (Keras')
ZERO_CLASS_CASES = [(call, reduction) for call in WITH_IGNORE
                    for reduction in (("none", "sum", "mean") if takes_reduction(call) else (None,))]


@pytest.mark.parametrize("call, reduction", ZERO_CLASS_CASES,
                         ids=[f"{call.name}-{reduction}" for call, reduction in ZERO_CLASS_CASES])
def test_zero_classes(call, reduction):
    """(rows, 0) logits: a label can only be ignore_index (loss 0, as any
    ignored row); any other label is out of [0, 0)."""
    args = call.make(np.random.default_rng(4), 3, 0, np.float64)
    with pytest.raises(ValueError, match=rf"{call.labels}\[0\] = 0 is outside \[0, 0\)"):
        call(args)
    args.update({call.labels: np.full(3, -100), call.ignore: -100})
    if reduction is not None:
        args["reduction"] = reduction
    dirty = [np.full(3, 12345.0) for _ in range(64)]   # freed small buffers numpy hands out again
    del dirty
    results = call(args)
    assert np.shape(results[0]) == ((3,) if reduction in ("none", None) else ())
    for result in results:
        if result is not None:   # linear_cross_entropy's dbias without a bias
            np.testing.assert_array_equal(result, np.zeros(np.shape(result)))


def test_uint64_labels_name_the_first_bad_row():
    labels = np.array([0, 5, 2**64 - 1], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"labels\[1\] = 5 is outside \[0, 3\)"):
        REGISTRY[0]({"labels": labels, "logits": np.zeros((3, 3))})


@pytest.mark.parametrize("func", ["sparse_softmax_cross_entropy_with_logits_grad_hess", "cross_entropy"])
def test_zero_classes_nd_forms_give_zero_loss(func):
    import fastxent as fx
    dirty = [np.full(3, 12345.0) for _ in range(64)]   # freed small buffers numpy hands out again
    del dirty
    loss = getattr(fx, func)(np.full(3, -100), np.zeros((3, 0)), ignore_index=-100, reduction="none") \
        if func != "cross_entropy" else fx.cross_entropy(np.zeros((3, 0)), np.full(3, -100), reduction="none")
    if isinstance(loss, tuple):
        loss = loss[0]
    np.testing.assert_array_equal(np.asarray(loss), np.zeros(3))


def test_logsumexp_of_inf_is_inf():
    """The primitive follows numpy, scipy and torch.logsumexp: +inf, where the
    losses follow F.cross_entropy: NaN (inf - inf)."""
    import fastxent as fx
    np.testing.assert_array_equal(fx.logsumexp(np.array([[np.inf, 0.0], [1.0, np.inf]])), [np.inf, np.inf])
    np.testing.assert_array_equal(fx.logsumexp(np.array([[np.inf, 0.0]]).T, axis=0), [np.inf])
    np.testing.assert_array_equal(fx.logsumexp(np.full((2, 3, 2), np.inf), axis=1), np.full((2, 2), np.inf))


def test_ignored_nd_positions_are_zero_whatever_their_logits():
    """The column kernels (class axis in the middle) as the row kernels: an
    ignored position's gradient and Hessian are 0 even where its logits are
    NaN or +inf (0 x NaN was NaN there)."""
    import fastxent as fx
    logits = np.array([[[np.nan, 0.5], [1.0, np.inf], [0.0, 2.0]]])   # (N=1, C=3, d=2)
    labels = np.array([[-100, -100]])
    loss, grad, hess = fx.sparse_softmax_cross_entropy_with_logits_grad_hess(labels, logits, axis=1,
                                                                             ignore_index=-100, reduction="sum")
    assert loss == 0.0
    np.testing.assert_array_equal(grad, np.zeros(logits.shape))
    np.testing.assert_array_equal(hess, np.zeros(logits.shape))
    np.testing.assert_array_equal(fx.cross_entropy_and_grad(logits, labels)[1], np.zeros(logits.shape))

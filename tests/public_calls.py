"""Every public function of fastxent, one entry each: the single table the
reliability tests (test_fuzz, test_no_partial_writes, test_concurrency,
test_leaks, test_interrupt) iterate over.

How to add a public function
----------------------------
1. Write `make_<name>(rng, n_rows, n_classes, dtype)`: the keyword arguments
   of one valid call, with C-contiguous (rows x classes) float inputs of
   `dtype` and, when the function takes integer labels, labels in
   [0, n_classes).  No options here: those come from `options`.
2. Write `options_<name>(n_classes, dtype)`: a short list of option dicts
   (reduction, ignore_index, weights, ...) the tests pick from; {} first.
3. Write `reference_<name>(args)`: the float64 values the call must return,
   as a tuple in the order the function returns them (a single result is a
   1-tuple), including the documented special-value policy (NaN rows, ...).
   Reuse the formulas of tests/reference.py.
4. Append `PublicCall(...)` to REGISTRY, naming the (rows x classes) float
   arguments the fuzzer may re-lay-out and poison with special values
   (`float_inputs`), the integer labels argument (`labels`, or None), the
   `out=` argument (or None), the input `out` may be for in-place work
   (`in_place`, or None), and `errors`: the documented errors of the
   function's own options, as ErrorCase(what, mutate(args) -> args, exception,
   regex).  The refusals shared by every float input (float16, byte order,
   alignment) and every labels input (out of range) are in REFUSED_FLOATS
   and label_error and need no entry.

Beyond that shape
-----------------
- Float targets of the predictions' shape (soft targets, y_true) go in
  `targets`: the fuzzer re-lays them out, but poisons only `float_inputs`
  (the special-value policy is about logits and probabilities).
- An option may be a function of the made arguments, for what needs the
  row count or the other inputs (per-row sample weights, y_pred as logits
  for from_logits=True); `with_options` applies a dict of options.
- `classes(args)`: the class count, when it is not the second axis of the
  first float input (linear_cross_entropy: weight's rows).
- `ignore`: the option naming an ignored label (Keras' ignore_class).
- `specials` / `refused_layouts`: the special values the fuzzer may inject
  (a tuple, or a function of the arguments: from_logits or probabilities)
  and the documented layouts a function refuses, where not all apply.
- An out= buffer of shape (samples, 1) may come back as its (samples,)
  view (scikit-learn's convention): `holds` says which result it is.
- LinearModelObjective has no entry: it is a thin driver of
  MultinomialLoss's kernel and linear_cross_entropy (both here) around BLAS
  products, taking the whole data set at construction, not per call.
"""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import fastxent as fx
import reference as ref
import reference_binary as ref_binary
import reference_linear as ref_linear
import reference_objective as ref_objective
import reference_softmax as ref_soft


@dataclass(frozen=True)
class ErrorCase:
    what: str
    mutate: Callable[[dict], dict]   # a valid call's arguments -> invalid ones
    exception: type
    match: str                       # regex the message must match


@dataclass(frozen=True)
class PublicCall:
    name: str
    func: Callable
    make: Callable           # (rng, n_rows, n_classes, dtype) -> dict of arguments
    options: Callable        # (n_classes, dtype) -> list of dicts of options
    reference: Callable      # arguments -> tuple of float64 expected results
    float_inputs: tuple      # names of the (rows x classes) float arguments
    labels: str = None       # name of the integer labels argument
    out: str = None          # name of the out= argument
    in_place: str = None     # the argument `out` may be, to work in place
    errors: tuple = field(default=(), repr=False)   # (a failing example prints the entry)
    targets: tuple = ()      # float targets of the predictions' shape (re-laid out, not poisoned)
    ignore: str = "ignore_index"   # the option whose value marks ignored labels
    classes: Callable = None       # arguments -> class count (default: float_inputs[0].shape[1])
    specials: object = None        # the special kinds the fuzzer may inject, or args -> kinds (None: all)
    refused_layouts: tuple = ()    # layouts of float inputs the function documents as refused

    def __call__(self, args):
        """The results as a tuple, whatever the function returns."""
        result = self.func(**args)
        return result if isinstance(result, tuple) else (result,)

    def n_classes(self, args):
        return self.classes(args) if self.classes else np.shape(args[self.float_inputs[0]])[1]


def with_options(args, options):
    """`args` updated by `options`; an option that is a function of the
    arguments is called on them."""
    return {**args, **{name: value(args) if callable(value) else value for name, value in options.items()}}


def holds(result, out):
    """Whether `result` is the out= buffer `out` itself, or `out` without its
    axis of length 1 (scikit-learn's convention for (samples, 1) buffers)."""
    return result is out or (isinstance(result, np.ndarray) and out.ndim == 2 and out.shape[1] == 1
                             and result.shape == out.shape[:1] and result.strides == out.strides[:1]
                             and result.ctypes.data == out.ctypes.data)


# Refusals shared by every (rows x classes) float input (fastxent._validate.float_array):
# input transform -> (exception, regex)
REFUSED_FLOATS = {
    "float16": (lambda x: x.clip(-1e4, 1e4).astype(np.float16), TypeError,
                r"must be float32 or float64, got float16"),
    "byte_swapped": (lambda x: x.astype(x.dtype.newbyteorder()), TypeError, r"must be in native byte order"),
    "misaligned": (lambda x: misaligned_copy(x), ValueError, r"is not aligned to its float"),
}


def label_error(name, row, value, n_classes):
    """The documented error for a label outside [0, n_classes): (exception, regex)."""
    return ValueError, rf"{name}\[{row}\] = {value} is outside \[0, {n_classes}\)"


def misaligned_copy(x):
    """A C-contiguous copy of `x` whose data starts one byte past an aligned
    address (np.frombuffer at an odd offset)."""
    raw = np.zeros(x.nbytes + 1, dtype=np.uint8)
    y = np.frombuffer(raw.data, dtype=x.dtype, offset=1, count=x.size).reshape(x.shape)
    raw[1:] = np.ascontiguousarray(x).view(np.uint8).ravel()
    return y


# --- sparse_softmax_cross_entropy_with_logits(_and_grad) ---------------------------------

def make_sparse(rng, n_rows, n_classes, dtype):
    return {"labels": rng.integers(0, max(n_classes, 1), n_rows),
            "logits": (rng.standard_normal((n_rows, n_classes)) * 3).astype(dtype)}


def options_sparse(n_classes, dtype):
    weight = np.linspace(0.25, 2.0, n_classes)
    return [{}, {"reduction": "mean"}, {"reduction": "sum", "label_smoothing": 0.1},
            {"reduction": "mean", "ignore_index": -100}, {"ignore_index": 0, "reduction": "mean"},
            {"class_weight": weight, "reduction": "mean", "ignore_index": -100},
            {"class_weight": weight, "label_smoothing": 0.2, "reduction": "sum"},
            {"n_threads": 2, "reduction": "mean", "label_smoothing": 0.3}]


def sparse_policy_reference(args):
    """The float64 reference with the README's special-value policy: a row
    holding NaN or +inf has NaN loss and gradient; an ignored row has loss 0
    and gradient 0 whatever its logits; -inf logits contribute nothing."""
    logits = np.asarray(args["logits"], dtype=np.float64)
    labels = np.asarray(args["labels"]).astype(np.int64)
    ignore_index = args.get("ignore_index")
    with np.errstate(all="ignore"):
        losses, denominator, grad = ref.sparse_xent(labels, logits, ignore_index, args.get("class_weight"),
                                                    args.get("label_smoothing", 0.0))
    keep = np.ones(len(labels), bool) if ignore_index is None else labels != ignore_index
    poisoned = keep & (np.isnan(logits) | (logits == np.inf)).any(axis=1)
    losses[~keep], grad[~keep] = 0.0, 0.0
    losses[poisoned], grad[poisoned] = np.nan, np.nan
    with np.errstate(all="ignore"):
        return ref.reduce(losses, denominator, grad, args.get("reduction", "none"))


def reference_sparse_loss(args):
    return sparse_policy_reference(args)[:1]


def reference_sparse_loss_and_grad(args):
    return sparse_policy_reference(args)


def set_arg(name, value):
    return lambda args: {**args, name: value}


SPARSE_ERRORS = (
    ErrorCase("float labels", lambda a: {**a, "labels": a["labels"].astype(np.float32)},
              TypeError, r"labels must be an integer array, got float32"),
    ErrorCase("labels of the wrong length", lambda a: {**a, "labels": np.append(a["labels"], 0)},
              ValueError, r"labels must have shape \(\d+,\) to match the logits' rows"),
    ErrorCase("1-d logits", lambda a: {**a, "logits": a["logits"][0]},
              ValueError, r"logits must have shape \(rows, classes\)"),
    ErrorCase("integer logits", lambda a: {**a, "logits": a["logits"].astype(np.int64)},
              TypeError, r"logits must be float32 or float64, got int64"),
    ErrorCase("unknown reduction", set_arg("reduction", "avg"), ValueError, r"reduction must be one of"),
    ErrorCase("zero threads", set_arg("n_threads", 0), ValueError, r"n_threads must be a positive integer"),
    ErrorCase("float ignore_index", set_arg("ignore_index", 1.0), TypeError,
              r"ignore_index must be an integer"),
    ErrorCase("label_smoothing > 1", set_arg("label_smoothing", 1.5), ValueError,
              r"label_smoothing must be in \[0, 1\]"),
    ErrorCase("class_weight of the wrong length",
              lambda a: {**a, "class_weight": np.ones(a["logits"].shape[1] + 1)},
              ValueError, r"class_weight must have shape"),
)

SPARSE_GRAD_ERRORS = SPARSE_ERRORS + (
    ErrorCase("out of another dtype", lambda a: {**a, "out": np.zeros(a["logits"].shape, np.float16)},
              TypeError, r"out must have dtype"),
    ErrorCase("out of another shape",
              lambda a: {**a, "out": np.zeros(a["logits"].T.shape, a["logits"].dtype)},
              ValueError, r"out must have shape"),
    ErrorCase("misaligned out", lambda a: {**a, "out": misaligned_copy(np.zeros_like(a["logits"]))},
              ValueError, r"out is not aligned"),
    ErrorCase("read-only out", lambda a: {**a, "out": read_only(np.zeros_like(a["logits"]))},
              ValueError, r"out is read-only"),
    ErrorCase("out overlapping the logits", lambda a: {**a, "out": a["logits"][::-1]},
              ValueError, r"out overlaps an input"),
)


# --- the softmax family: soft targets, Hessians, cross_entropy, primitives ---------------

def make_soft(rng, n_rows, n_classes, dtype):
    targets = rng.random((n_rows, n_classes))
    targets /= np.maximum(targets.sum(axis=1, keepdims=True), 1e-300)
    return {"labels": targets.astype(dtype),
            "logits": (rng.standard_normal((n_rows, n_classes)) * 3).astype(dtype)}


def options_soft(n_classes, dtype):
    weight = np.linspace(0.25, 2.0, n_classes)
    return [{}, {"reduction": "mean"}, {"reduction": "sum", "label_smoothing": 0.1},
            {"class_weight": weight, "reduction": "mean"},
            {"class_weight": weight, "label_smoothing": 0.2, "reduction": "none"},
            {"n_threads": 2, "reduction": "mean", "label_smoothing": 0.3}]


def soft_reference(args, targets="labels", weight="class_weight", reduction="none"):
    """(loss, grad, hess) of the soft-target forms, reduced; mean over rows."""
    with np.errstate(all="ignore"):
        losses, grad, hess = ref_soft.soft_xent(args[targets], args["logits"], args.get(weight),
                                                args.get("label_smoothing", 0.0))
        n_rows = np.shape(args["logits"])[0]
        reduction = args.get("reduction", reduction)
        loss, grad = ref.reduce(losses, n_rows, grad, reduction)
        return nan_rows((loss, grad, ref.reduce(losses, n_rows, hess, reduction)[1]), args["logits"])



def nan_rows(results, x):
    """The README's row policy on `results` (float64): a row of `x` holding
    NaN or +inf is NaN in every per-row result and gradient, and makes a
    reduced (scalar) result NaN."""
    x = np.asarray(x, dtype=np.float64)
    poisoned = (np.isnan(x) | (x == np.inf)).any(axis=1)
    poisoned |= (x == -np.inf).all(axis=1) & (x.shape[1] > 0)   # log-sum-exp -inf: NaN, whatever the targets
    out = []
    for result in results:
        result = np.array(result, dtype=np.float64)
        if result.ndim == 0:
            result = np.float64(np.nan) if poisoned.any() else result
        else:
            result[poisoned] = np.nan
        out.append(result)
    return tuple(out)

def sparse_hess_reference(args):
    loss, grad = sparse_policy_reference(args)
    labels = np.asarray(args["labels"]).astype(np.int64)
    ignore_index = args.get("ignore_index")
    keep = np.ones(len(labels), bool) if ignore_index is None else labels != ignore_index
    with np.errstate(all="ignore"):
        hess = ref_soft.sparse_hessian(np.where(keep, labels, -1 if ignore_index is None else ignore_index),
                                       args["logits"], ignore_index, args.get("class_weight"),
                                       args.get("label_smoothing", 0.0)) if len(labels) else grad * 0
        logits = np.asarray(args["logits"], dtype=np.float64)
        hess[~keep] = 0.0
        hess[keep & (np.isnan(logits) | (logits == np.inf)).any(axis=1)] = np.nan
        denominator = sparse_denominator(args, labels, keep)
        if args.get("reduction", "none") == "mean":
            hess = hess / denominator if denominator else hess * 0
    return loss, grad, hess


def sparse_denominator(args, labels, keep):
    weight = args.get("class_weight")
    return keep.sum() if weight is None else np.asarray(weight, np.float64)[labels[keep]].sum()


def make_cross_entropy(rng, n_rows, n_classes, dtype):
    args = make_sparse(rng, n_rows, n_classes, dtype)
    return {"logits": args["logits"], "target": args["labels"]}


def options_cross_entropy(n_classes, dtype):
    weight = np.linspace(0.25, 2.0, n_classes)
    return [{}, {"reduction": "none"}, {"reduction": "sum", "label_smoothing": 0.1},
            {"ignore_index": 0}, {"weight": weight, "ignore_index": 1},
            {"weight": weight, "label_smoothing": 0.2, "reduction": "sum"},
            {"n_threads": 2, "label_smoothing": 0.3}]


def cross_entropy_reference(args):
    """PyTorch's defaults: ignore_index=-100, reduction="mean"."""
    renamed = {"labels": args["target"], "logits": args["logits"], "class_weight": args.get("weight"),
               "ignore_index": args.get("ignore_index", -100), "reduction": args.get("reduction", "mean"),
               "label_smoothing": args.get("label_smoothing", 0.0)}
    return sparse_policy_reference(renamed)


def make_x(rng, n_rows, n_classes, dtype):
    return {"x": (rng.standard_normal((n_rows, n_classes)) * 3).astype(dtype)}


def options_primitive(n_classes, dtype):
    return [{}, {"axis": 1}, {"n_threads": 2}, {"axis": -1, "n_threads": 1}]


def make_target_log_prob(rng, n_rows, n_classes, dtype):
    return make_sparse(rng, n_rows, n_classes, dtype)


def target_log_prob_reference(args):
    return (-sparse_policy_reference({"labels": args["labels"], "logits": args["logits"]})[0],)


def log_softmax_reference(args):
    with np.errstate(all="ignore"):
        return nan_rows((ref.log_softmax(args["x"]),), args["x"])


def softmax_reference(args):
    with np.errstate(all="ignore"):
        return nan_rows((np.exp(ref.log_softmax(args["x"])),), args["x"])


def logsumexp_reference(args):
    x = np.asarray(args["x"], dtype=np.float64)
    with np.errstate(all="ignore"):
        lse = ref.logsumexp(x) if np.shape(x)[1] else np.full(len(x), -np.inf)
    # as numpy / torch.logsumexp: +inf where the row holds +inf, NaN where it holds NaN
    lse = np.where(np.isposinf(x).any(axis=1), np.inf, lse)
    return (np.where(np.isnan(x).any(axis=1), np.nan, lse),)


SHAPE_AND_REDUCTION_ERRORS = (
    ErrorCase("unknown reduction", set_arg("reduction", "avg"), ValueError, r"reduction must be one of"),
    ErrorCase("zero threads", set_arg("n_threads", 0), ValueError, r"n_threads must be a positive integer"),
    ErrorCase("label_smoothing > 1", set_arg("label_smoothing", 1.5), ValueError,
              r"label_smoothing must be in \[0, 1\]"),
)

def read_only(x):
    x.flags.writeable = False
    return x



def out_errors(name, logits="logits"):
    """The documented errors of an out= argument `name` for the input `logits`."""
    return (
        ErrorCase("out of another dtype", lambda a: {**a, name: np.zeros(a[logits].shape, np.float16)},
                  TypeError, rf"{name} must have dtype"),
        ErrorCase("out of another shape", lambda a: {**a, name: np.zeros(a[logits].T.shape, a[logits].dtype)},
                  ValueError, rf"{name} must have shape"),
        ErrorCase("misaligned out", lambda a: {**a, name: misaligned_copy(np.zeros_like(a[logits]))},
                  ValueError, rf"{name} is not aligned"),
        ErrorCase("read-only out", lambda a: {**a, name: read_only(np.zeros_like(a[logits]))},
                  ValueError, rf"{name} is read-only"),
        ErrorCase("out overlapping the input", lambda a: {**a, name: a[logits][::-1]},
                  ValueError, r"overlaps an input"),
    )

SOFT_ERRORS = SHAPE_AND_REDUCTION_ERRORS + (
    ErrorCase("targets of another shape", lambda a: {**a, "labels": a["labels"][:-1]},
              ValueError, r"labels must have the logits' shape"),
    ErrorCase("targets of another dtype",
              lambda a: {**a, "labels": a["labels"].astype(np.float32 if a["logits"].dtype == np.float64
                                                            else np.float64)},
              TypeError, r"labels must have the logits' dtype"),
    ErrorCase("class_weight of the wrong length",
              lambda a: {**a, "class_weight": np.ones(a["logits"].shape[1] + 1)},
              ValueError, r"class_weight must have shape"),
)

def hess_out_errors(grad_out, shared):
    """The errors of hess_out beside the gradient's buffer `grad_out` (`shared`: the message's regex)."""
    return (
        ErrorCase("hess_out of another shape",
                  lambda a: {**a, "hess_out": np.zeros(a["logits"].T.shape, a["logits"].dtype)},
                  ValueError, r"hess_out must have shape"),
        ErrorCase(f"hess_out the same array as {grad_out}",
                  lambda a: {**a, **dict.fromkeys((grad_out, "hess_out"), np.zeros_like(a["logits"]))},
                  ValueError, shared),
    )


HESS_OUT_ERRORS = hess_out_errors("grad_out", r"hess_out shares memory with grad_out")

SPARSE_HESS_ERRORS = tuple(case for case in SPARSE_ERRORS if case.what not in ("labels of the wrong length",
                                                                              "1-d logits")) + (
    ErrorCase("labels of the wrong length", lambda a: {**a, "labels": np.append(a["labels"], 0)},
              ValueError, r"labels must have the logits' shape without the class axis"),
) + out_errors("grad_out") + HESS_OUT_ERRORS

CROSS_ENTROPY_ERRORS = (
    ErrorCase("bool targets", lambda a: {**a, "target": a["target"].astype(bool)},
              TypeError, r"target must be an integer array, got bool"),
    ErrorCase("targets of the wrong length", lambda a: {**a, "target": np.append(a["target"], 0)},
              ValueError, r"target must have the logits' shape without the class axis"),
    ErrorCase("float ignore_index", set_arg("ignore_index", 1.0), TypeError, r"ignore_index must be an integer"),
    ErrorCase("weight of the wrong length", lambda a: {**a, "weight": np.ones(a["logits"].shape[1] + 1)},
              ValueError, r"class_weight must have shape|weight must have shape"),
) + SHAPE_AND_REDUCTION_ERRORS

PRIMITIVE_ERRORS = (
    ErrorCase("axis out of range", set_arg("axis", 2), ValueError, r"axis=2 is out of range"),
    ErrorCase("integer x", lambda a: {**a, "x": a["x"].astype(np.int64)},
              TypeError, r"x must be float32 or float64, got int64"),
    ErrorCase("zero threads", set_arg("n_threads", 0), ValueError, r"n_threads must be a positive integer"),
)

TARGET_LOG_PROB_ERRORS = (
    ErrorCase("float labels", lambda a: {**a, "labels": a["labels"].astype(np.float32)},
              TypeError, r"labels must be an integer array, got float32"),
    ErrorCase("labels of the wrong length", lambda a: {**a, "labels": np.append(a["labels"], 0)},
              ValueError, r"labels must have the logits' shape without the class axis"),
    ErrorCase("zero threads", set_arg("n_threads", 0), ValueError, r"n_threads must be a positive integer"),
)

REGISTRY = [
    PublicCall("sparse_softmax_cross_entropy_with_logits", fx.sparse_softmax_cross_entropy_with_logits,
               make_sparse, options_sparse, reference_sparse_loss,
               float_inputs=("logits",), labels="labels", errors=SPARSE_ERRORS),
    PublicCall("sparse_softmax_cross_entropy_with_logits_and_grad",
               fx.sparse_softmax_cross_entropy_with_logits_and_grad,
               make_sparse, options_sparse, reference_sparse_loss_and_grad,
               float_inputs=("logits",), labels="labels", out="out", in_place="logits",
               errors=SPARSE_GRAD_ERRORS),
    PublicCall("softmax_cross_entropy_with_logits", fx.softmax_cross_entropy_with_logits,
               make_soft, options_soft, lambda a: soft_reference(a)[:1],
               float_inputs=("logits",), targets=("labels",), errors=SOFT_ERRORS),
    PublicCall("softmax_cross_entropy_with_logits_and_grad", fx.softmax_cross_entropy_with_logits_and_grad,
               make_soft, options_soft, lambda a: soft_reference(a)[:2],
               float_inputs=("logits",), targets=("labels",), out="out", in_place="logits",
               errors=SOFT_ERRORS + out_errors("out")),
    PublicCall("softmax_cross_entropy_with_logits_grad_hess", fx.softmax_cross_entropy_with_logits_grad_hess,
               make_soft, options_soft, soft_reference,
               float_inputs=("logits",), targets=("labels",), out="grad_out", in_place="logits",
               errors=SOFT_ERRORS + out_errors("grad_out") + HESS_OUT_ERRORS + (
                   ErrorCase("hess_out the targets", lambda a: {**a, "hess_out": a["labels"]},
                             ValueError, r"hess_out shares memory with labels"),)),
    PublicCall("sparse_softmax_cross_entropy_with_logits_grad_hess",
               fx.sparse_softmax_cross_entropy_with_logits_grad_hess,
               make_sparse, options_sparse, sparse_hess_reference,
               float_inputs=("logits",), labels="labels", out="grad_out", in_place="logits",
               errors=SPARSE_HESS_ERRORS),
    PublicCall("cross_entropy", fx.cross_entropy, make_cross_entropy, options_cross_entropy,
               lambda a: cross_entropy_reference(a)[:1],
               float_inputs=("logits",), labels="target", errors=CROSS_ENTROPY_ERRORS),
    PublicCall("cross_entropy_and_grad", fx.cross_entropy_and_grad, make_cross_entropy, options_cross_entropy,
               cross_entropy_reference, float_inputs=("logits",), labels="target", out="out",
               in_place="logits", errors=CROSS_ENTROPY_ERRORS + out_errors("out")),
    PublicCall("logsumexp", fx.logsumexp, make_x, options_primitive, logsumexp_reference,
               float_inputs=("x",), errors=PRIMITIVE_ERRORS),
    PublicCall("log_softmax", fx.log_softmax, make_x, options_primitive, log_softmax_reference,
               float_inputs=("x",), out="out", in_place="x", errors=PRIMITIVE_ERRORS + out_errors("out", "x")),
    PublicCall("softmax", fx.softmax, make_x, options_primitive, softmax_reference,
               float_inputs=("x",), out="out", in_place="x", errors=PRIMITIVE_ERRORS + out_errors("out", "x")),
    PublicCall("target_log_prob", fx.target_log_prob, make_target_log_prob,
               lambda n_classes, dtype: [{}, {"n_threads": 2}], target_log_prob_reference,
               float_inputs=("logits",), labels="labels", errors=TARGET_LOG_PROB_ERRORS),
]


# --- the sigmoid family: element-wise, TensorFlow / PyTorch style -------------------------

def make_sigmoid(rng, n_rows, n_classes, dtype):
    targets = rng.uniform(0, 1, (n_rows, n_classes))
    targets.flat[::3] = np.round(targets.flat[::3])      # hard and soft targets
    return {"labels": targets.astype(dtype),
            "logits": (rng.standard_normal((n_rows, n_classes)) * 4).astype(dtype)}


def make_weighted(rng, n_rows, n_classes, dtype):
    return {**make_sigmoid(rng, n_rows, n_classes, dtype), "pos_weight": 1.5}   # a required argument


def row_column(args, name, dtype_of=None):
    """Weights 0.5 ... 2 as a (rows, 1) column: one weight per row, broadcast along the row."""
    rows = np.shape(args[name])[0]
    return np.linspace(0.5, 2.0, rows)[:, None].astype(np.asarray(args[dtype_of or name]).dtype)


def options_sigmoid(n_classes, dtype):
    per_column = np.linspace(0.5, 3.0, n_classes)
    return [{}, {"reduction": "mean"}, {"pos_weight": per_column, "reduction": "sum"}, {"pos_weight": 2.5},
            {"weight": per_column.astype(dtype), "reduction": "mean"},
            {"weight": lambda a: row_column(a, "logits"), "pos_weight": per_column},
            {"n_threads": 2, "weight": dtype(0.5), "reduction": "sum"}]


def sigmoid_reference(args):
    """(loss, grad, hess), reduced over all elements ("mean": gradient and
    Hessian scaled by 1/n, the mean of no elements 0).  The policy is the
    limit: an infinite logit costs 0 when the target agrees, inf otherwise;
    NaN stays in its element."""
    with np.errstate(all="ignore"):
        loss, grad, hess = ref_binary.sigmoid_xent(args["labels"], args["logits"], args.get("pos_weight"),
                                                   args.get("weight"))
        n = loss.size
        reduction = args.get("reduction", "none")
        if reduction != "none":
            loss = in_dtype(loss, args["logits"]).sum()
        if reduction == "mean" and n:
            loss, grad, hess = loss / n, grad / n, hess / n
    return loss, grad, hess


def in_dtype(values, like):
    """float64 `values` rounded to the dtype of `like`: the kernels form each
    element's loss in the input's dtype (beyond its range: inf) and sum those
    in double."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values).astype(np.asarray(like).dtype).astype(np.float64)


def other_float(x):
    return np.float32 if np.asarray(x).dtype == np.float64 else np.float64


SIGMOID_ERRORS = (
    ErrorCase("labels of another dtype", lambda a: {**a, "labels": a["labels"].astype(other_float(a["logits"]))},
              TypeError, r"labels must have the dtype of logits"),
    ErrorCase("labels of another shape", lambda a: {**a, "labels": a["labels"][:-1]},
              ValueError, r"labels must have the shape of logits"),
    ErrorCase("string labels", lambda a: {**a, "labels": np.full(a["labels"].shape, "a").tolist()},
              TypeError, r"labels must be a real array"),
    ErrorCase("pos_weight of the wrong length",
              lambda a: {**a, "pos_weight": np.ones(a["logits"].shape[1] + 1)},
              ValueError, r"pos_weight must be a scalar or have shape"),
    ErrorCase("string pos_weight", set_arg("pos_weight", "x"), TypeError, r"pos_weight must be a real"),
    ErrorCase("weight that does not broadcast", lambda a: {**a, "weight": np.ones(a["logits"].shape[1] + 1)},
              ValueError, r"does not broadcast to the logits' shape"),
    ErrorCase("string weight", set_arg("weight", np.array(["a"])), TypeError, r"weight must be a real array"),
    ErrorCase("full-size weight of another dtype",
              lambda a: {**a, "weight": np.ones(a["logits"].shape, other_float(a["logits"]))},
              TypeError, r"weight must have the logits' dtype"),
    ErrorCase("unknown reduction", set_arg("reduction", "avg"), ValueError, r"reduction must be one of"),
    ErrorCase("zero threads", set_arg("n_threads", 0), ValueError, r"n_threads must be a positive integer"),
)

SIGMOID_HESS_ERRORS = SIGMOID_ERRORS + out_errors("out") + hess_out_errors(
    "out", r"hess_out must not share memory with the gradient")


def sigmoid_calls(name, make, func, n_results, out=None, errors=SIGMOID_ERRORS):
    return PublicCall(name, func, make, options_sigmoid, lambda a: sigmoid_reference(a)[:n_results],
                      float_inputs=("logits",), targets=("labels",), out=out, in_place=out and "logits",
                      errors=errors)


# --- Keras' binary losses: (y_true, y_pred), the mean over an axis per sample --------------

def make_probs(rng, n_rows, n_classes, dtype):
    """Soft and hard targets, probabilities, some exactly 0 or 1 (on the clip)."""
    probs = rng.uniform(0, 1, (n_rows, n_classes))
    probs.flat[::5] = np.round(probs.flat[::5])
    return {"y_true": make_sigmoid(rng, n_rows, n_classes, dtype)["labels"], "y_pred": probs.astype(dtype)}


def as_logits(args):
    """y_pred (probabilities in [0, 1]) spread to logits in [-6, 6], for from_logits=True."""
    y_pred = args["y_pred"]
    return ((y_pred.astype(np.float64) - 0.5) * 12).astype(y_pred.dtype)


LOGITS = {"from_logits": True, "y_pred": as_logits}


def options_binary(n_classes, dtype):
    return [{}, LOGITS, {"label_smoothing": 0.1}, {**LOGITS, "label_smoothing": 0.2, "axis": 0}, {"axis": 0},
            {"n_threads": 2, "label_smoothing": 0.3}, {**LOGITS, "n_threads": 1, "axis": -2}]


NO_HUGE = ("nan", "inf", "-inf", "subnormal", "-subnormal", "-0", "tiny", "row of -inf", "row of -inf but one")


def probability_specials(args):
    """Every special logit; no huge negative "probability": a row holding
    +huge and -huge sums to what the summation order leaves of the rest."""
    return None if args.get("from_logits") else NO_HUGE + ("max", "huge")


def focal_specials(args):
    """Every special logit; no probability near the float max: (1 - p_t)^gamma
    of such a "probability" is exp(gamma log(1 - p_t)) with an argument near
    700, whose relative error (~1e-10) exceeds the float64 tolerance
    (test_keras_binary.py::test_focal_probabilities_outside_0_1 covers them)."""
    return None if args.get("from_logits") else NO_HUGE


def options_binary_focal(n_classes, dtype):
    return [{}, LOGITS, {"apply_class_balancing": True, "alpha": 0.4, "gamma": 0.5},
            {**LOGITS, "apply_class_balancing": True, "gamma": 0.0, "label_smoothing": 0.1},
            {"gamma": 1.5, "label_smoothing": 0.2, "axis": 0}, {**LOGITS, "n_threads": 2, "gamma": 3.0}]


def per_sample(elementwise, args):
    """(per-sample means over `axis`, gradient of their sum) from
    elementwise(y_true, y_pred) -> (losses, derivatives), both with the axis
    last.  The mean over an empty axis is NaN, as Keras'.  In long double
    (on x86 its exponent reaches 1e4932): a derivative whose 1/n-scaled value
    fits float64 must not overflow before the scaling."""
    axis = args.get("axis", -1)
    y_true, y_pred = (np.moveaxis(np.asarray(args[name], dtype=np.longdouble), axis, -1)
                      for name in ("y_true", "y_pred"))
    with np.errstate(all="ignore"):
        loss, grad = elementwise(y_true, y_pred)
        n = y_pred.shape[-1]
        return (in_dtype(loss, args["y_pred"]).sum(axis=-1) / n,
                np.moveaxis((grad / max(n, 1)).astype(np.float64), -1, axis))


def binary_reference(args):
    """Logits: the sigmoid family's limits.  Probabilities: p and 1 - p each
    clipped to [1e-7, 1 - 1e-7] (Keras' clip, made symmetric), gradient 0
    where the clip is active; NaN stays in its element (its sample's mean)."""
    smoothing = args.get("label_smoothing", 0.0)
    if args.get("from_logits", False):
        return per_sample(lambda t, x: ref_binary.sigmoid_xent(ref_binary.smooth(t, smoothing), x)[:2], args)
    return per_sample(lambda t, p: ref_binary.bce(t, p, smoothing), args)


def binary_focal_reference(args):
    options = [args.get(name, default) for name, default in (("apply_class_balancing", False), ("alpha", 0.25),
                                                             ("gamma", 2.0), ("from_logits", False),
                                                             ("label_smoothing", 0.0))]
    return per_sample(lambda t, y: ref_binary.focal_and_grad(t, y, *options), args)


KERAS_ERRORS = (
    ErrorCase("y_pred of another dtype than y_true",
              lambda a: {**a, "y_true": a["y_true"].astype(other_float(a["y_pred"]))},
              TypeError, r"y_true must have (the dtype of y_pred|y_pred's dtype)"),
    ErrorCase("y_true of another shape", lambda a: {**a, "y_true": a["y_true"][:-1]},
              ValueError, r"y_true must have (the shape of y_pred|y_pred's shape)"),
    ErrorCase("axis out of range", set_arg("axis", 2), ValueError, r"axis"),
    ErrorCase("label_smoothing > 1", set_arg("label_smoothing", 1.5), ValueError,
              r"label_smoothing must be in \[0, 1\]"),
    ErrorCase("zero threads", set_arg("n_threads", 0), ValueError, r"n_threads must be a positive integer"),
)

BINARY_ERRORS = KERAS_ERRORS + (
    ErrorCase("axis not an integer", set_arg("axis", 1.0), ValueError, r"axis must be an integer in \[-2, 2\)"),
    ErrorCase("scalars", lambda a: {**a, "y_true": a["y_true"][0, 0], "y_pred": a["y_pred"][0, 0]},
              ValueError, r"y_pred must have at least one dimension"),
)

FOCAL_PARAMETER_ERRORS = (
    ErrorCase("string alpha", set_arg("alpha", "0.25"), TypeError, r"alpha must be"),
    ErrorCase("negative gamma", set_arg("gamma", -1.0), ValueError, r"gamma must be"),
    ErrorCase("string gamma", set_arg("gamma", "2"), TypeError, r"gamma must be"),
)

BINARY_FOCAL_ERRORS = BINARY_ERRORS + FOCAL_PARAMETER_ERRORS + (
    ErrorCase("NaN alpha", set_arg("alpha", float("nan")), ValueError, r"alpha must not be NaN"),
)


def keras_call(name, func, make, options, reference, errors, labels=None, targets=("y_true",), out=False,
               specials=None):
    return PublicCall(name, func, make, options, reference, float_inputs=("y_pred",), labels=labels,
                      targets=targets, out="out" if out else None, in_place="y_pred" if out else None,
                      errors=errors + (out_errors("out", "y_pred") if out else ()), ignore="ignore_class",
                      specials=specials)


# --- Keras' categorical losses --------------------------------------------------------------

def make_categorical(rng, n_rows, n_classes, dtype):
    targets = rng.random((n_rows, n_classes))
    targets[:1] = 0.0                                    # a one-hot row
    targets[:1, :1] = 1.0
    probs = make_probs(rng, n_rows, n_classes, dtype)["y_pred"]
    return {"y_true": targets.astype(dtype), "y_pred": probs}


def make_sparse_categorical(rng, n_rows, n_classes, dtype):
    return {"y_true": rng.integers(0, max(n_classes, 1), n_rows),
            "y_pred": make_probs(rng, n_rows, n_classes, dtype)["y_pred"]}


def class_axis_first(transform=None):
    """y_pred with the class axis first (for axis=0): (classes, rows)."""
    return lambda a: np.ascontiguousarray((transform(a) if transform else a["y_pred"]).T)


def options_categorical(n_classes, dtype):
    return [{}, LOGITS, {"label_smoothing": 0.1}, {**LOGITS, "label_smoothing": 0.2}, {"axis": 0},
            {**LOGITS, "axis": 0}, {"n_threads": 2, "label_smoothing": 0.3}]


def options_sparse_categorical(n_classes, dtype):
    return [{}, LOGITS, {"ignore_class": 0}, {**LOGITS, "ignore_class": -1},
            {"axis": 0, "y_pred": class_axis_first()},
            {"from_logits": True, "axis": 0, "y_pred": class_axis_first(as_logits), "ignore_class": 1},
            {"n_threads": 2, "ignore_class": 1}]


def options_categorical_focal(n_classes, dtype):
    alpha = np.linspace(0.1, 0.9, n_classes)
    return [{}, LOGITS, {"alpha": alpha, "gamma": 0.5}, {**LOGITS, "alpha": alpha, "gamma": 0.0, "label_smoothing": 0.1},
            {"gamma": 1.5, "label_smoothing": 0.2, "axis": 0}, {**LOGITS, "n_threads": 2, "gamma": 3.0, "alpha": 0.5}]


def options_sparse_focal(n_classes, dtype):
    alpha = np.linspace(0.1, 0.9, n_classes)
    return [{}, LOGITS, {"ignore_class": 0, "alpha": alpha, "gamma": 0.5},
            {**LOGITS, "ignore_class": -1, "alpha": alpha, "gamma": 0.0},
            {"axis": 0, "y_pred": class_axis_first(), "gamma": 1.5},
            {"n_threads": 2, **LOGITS, "gamma": 3.0, "ignore_class": 1}]


def class_axis_last(args):
    """(y_true, y_pred) as float64 with the class axis last (y_true: labels stay as they are)."""
    axis = args.get("axis", -1)
    y_true = np.asarray(args["y_true"])
    y_pred = np.moveaxis(np.asarray(args["y_pred"], dtype=np.float64), axis, -1)
    if y_true.dtype.kind == "f":
        y_true = np.moveaxis(y_true.astype(np.float64), axis, -1)
    return y_true, y_pred


def categorical_results(args, rows, probs, logits):
    """(per-position losses, gradient) of the categorical forms, class axis
    last: probs(t, p) for probabilities, logits(t, x) from logits, with the
    softmax family's row policy (a row holding NaN or +inf is NaN) for logits;
    no classes: loss 0 (an empty sum)."""
    y_true, y_pred = rows
    if y_pred.shape[-1] == 0:
        loss, grad = np.zeros(y_pred.shape[:-1]), y_pred.copy()
    else:
        with np.errstate(all="ignore"):
            if args.get("from_logits", False):
                loss, grad = nan_rows(logits(y_true, y_pred), y_pred)
            else:
                loss, grad = probs(y_true, y_pred)
                # a row whose sum is 0, NaN, +-inf or beyond the dtype normalizes nothing: NaN
                total = in_dtype(y_pred.sum(axis=-1), args["y_pred"])
                unusable = (total == 0) | ~np.isfinite(total)
                loss, grad = np.where(unusable, np.nan, loss), np.where(unusable[..., None], np.nan, grad)
    return loss, np.moveaxis(grad, -1, args.get("axis", -1))


def categorical_reference(args):
    smoothing, dtype = args.get("label_smoothing", 0.0), args["y_pred"].dtype
    return categorical_results(args, class_axis_last(args),
                               lambda t, p: ref_soft.categorical_probs_and_grad(t, p, smoothing, dtype),
                               lambda t, x: ref_soft.soft_xent(t, x, None, smoothing)[:2])


def categorical_focal_reference(args):
    alpha, gamma, smoothing = args.get("alpha", 0.25), args.get("gamma", 2.0), args.get("label_smoothing", 0.0)
    dtype = args["y_pred"].dtype
    return categorical_results(args, class_axis_last(args),
                               lambda t, p: ref_soft.focal_probs_and_grad(t, p, alpha, gamma, smoothing, dtype),
                               lambda t, x: ref_soft.focal_logits_and_grad(t, x, alpha, gamma, smoothing))


def one_hot_rows(args):
    """(one-hot target rows, 0 where ignored; kept positions; y_pred with the class axis last)."""
    labels, y_pred = class_axis_last(args)
    labels = labels.astype(np.int64)
    ignore_class = args.get("ignore_class")
    kept = np.ones(labels.shape, bool) if ignore_class is None else labels != ignore_class
    one_hot = np.zeros(y_pred.shape)
    one_hot[np.flatnonzero(kept), labels[kept]] = 1.0
    return one_hot, kept, y_pred


def sparse_results(args, results):
    """The sparse forms: the categorical results of the one-hot rows, and
    loss 0 and gradient 0 at ignored positions whatever their y_pred."""
    one_hot, kept, y_pred = one_hot_rows(args)
    loss, grad = results(args, (one_hot, y_pred))
    loss = np.where(kept, loss, 0.0)
    grad = np.moveaxis(np.where(kept[:, None], np.moveaxis(grad, args.get("axis", -1), -1), 0.0), -1,
                       args.get("axis", -1))
    return loss, grad


def sparse_categorical_reference(args):
    dtype = args["y_pred"].dtype
    return sparse_results(args, lambda a, rows: categorical_results(
        a, rows, lambda t, p: ref_soft.categorical_probs_and_grad(t, p, 0.0, dtype),
        lambda t, x: ref_soft.soft_xent(t, x)[:2]))


def sparse_focal_reference(args):
    alpha, gamma, dtype = args.get("alpha", 0.25), args.get("gamma", 2.0), args["y_pred"].dtype
    return sparse_results(args, lambda a, rows: categorical_results(
        a, rows, lambda t, p: ref_soft.focal_probs_and_grad(t, p, alpha, gamma, 0.0, dtype),
        lambda t, x: ref_soft.focal_logits_and_grad(t, x, alpha, gamma)))


CATEGORICAL_ERRORS = KERAS_ERRORS + (
    ErrorCase("float16 y_true", lambda a: {**a, "y_true": a["y_true"].astype(np.float16)},
              TypeError, r"y_true must be float32 or float64, got float16"),
)

SPARSE_CATEGORICAL_ERRORS = tuple(case for case in KERAS_ERRORS if "label_smoothing" not in case.what
                                  and "y_true" not in case.what) + (
    ErrorCase("non-integer float labels", lambda a: {**a, "y_true": a["y_true"] + 0.5},
              ValueError, r"y_true holds non-integer values"),
    ErrorCase("labels of the wrong length", lambda a: {**a, "y_true": np.append(a["y_true"], 0)},
              ValueError, r"y_true must have the logits' shape without the class axis"),
    ErrorCase("float ignore_class", set_arg("ignore_class", 1.0), TypeError, r"ignore_index must be an integer"),
)

ALPHA_ERRORS = (
    ErrorCase("alpha of the wrong length", lambda a: {**a, "alpha": np.full(a["y_pred"].shape[1] + 1, 0.5)},
              ValueError, r"alpha must be a scalar or have shape"),
)


# --- Keras' loss classes: an instance called on (y_true, y_pred, sample_weight) ---------------

def keras_class(cls):
    """Calls cls(**constructor options)(y_true, y_pred, sample_weight): the
    arguments of one call of an instance, as one dict."""
    def call(y_true, y_pred, sample_weight=None, **options):
        return cls(**options)(y_true, y_pred, sample_weight=sample_weight)
    call.__name__ = cls.__name__
    return call


def sample_weights(args):
    return np.linspace(0.25, 2.0, len(args["y_true"]))


REDUCTIONS = ["sum_over_batch_size", "sum", "mean_with_sample_weight", "none", None, "mean"]


def options_class(function_options):
    """The function's options, each with one of Keras' reductions in turn,
    and per-sample weights where the samples are the rows (not with axis=0)."""
    def options(n_classes, dtype):
        return [{**o, "reduction": REDUCTIONS[i % len(REDUCTIONS)],
                 **({} if "axis" in o or i % 3 == 2 else {"sample_weight": sample_weights})}
                for i, o in enumerate(function_options(n_classes, dtype))]
    return options


def keras_reduce(losses, kept, args):
    """Keras 3's reduction of per-sample losses (sample weights, then
    "sum_over_batch_size" = "mean", "sum", "mean_with_sample_weight", "none"),
    positions not `kept` masked out: the means are over kept positions."""
    weights = np.ones(losses.shape) if args.get("sample_weight") is None else np.asarray(args["sample_weight"],
                                                                                           dtype=np.float64)
    weights = weights * kept
    with np.errstate(all="ignore"):
        weighted = np.where(kept, losses * weights, 0.0)
    reduction = args.get("reduction", "sum_over_batch_size")
    if reduction in ("none", None):
        return weighted
    total = weighted.sum()
    if reduction == "sum":
        return total
    denominator = weights.sum() if reduction == "mean_with_sample_weight" else kept.sum()
    return total / denominator if denominator else 0.0


def class_reference(function_reference, kept=lambda args, losses: np.ones(losses.shape, bool)):
    def reference(args):
        losses = function_reference(args)[0]
        return (keras_reduce(losses, kept(args, losses), args),)
    return reference


def kept_labels(args, losses):
    ignore_class = args.get("ignore_class")
    return np.ones(losses.shape, bool) if ignore_class is None else np.asarray(args["y_true"]) != ignore_class


CLASS_ERRORS = (
    ErrorCase("unknown reduction", set_arg("reduction", "avg"), ValueError, r"reduction must be one of"),
    ErrorCase("sample_weight of the wrong length", lambda a: {**a, "sample_weight": np.ones(len(a["y_true"]) + 1)},
              ValueError, r"sample_weight of shape"),
)

MASKED_CLASS_ERRORS = CLASS_ERRORS + (
    ErrorCase("sample_weight of the wrong length, masked",
              lambda a: {**a, "sample_weight": np.ones(len(a["y_true"]) + 1), "ignore_class": 0},
              ValueError, r"sample_weight of shape"),
)


# --- scikit-learn's HalfMultinomialLoss / HalfBinomialLoss API ---------------------------------

def make_multinomial(rng, n_rows, n_classes, dtype):
    args = make_sparse(rng, n_rows, n_classes, dtype)
    return {"y_true": args["labels"], "raw_prediction": args["logits"]}


def loss_out(args):
    """A strided loss_out of the raw predictions' dtype (the kernel writes a float64 buffer, then copies)."""
    raw = args["raw_prediction"]
    return np.full(2 * len(raw), 7.0, raw.dtype)[::2]


def per_sample_weight(args):
    return np.linspace(0.25, 2.0, len(args["y_true"]))


def options_objective(with_loss_out, with_n_classes, extra=()):
    def options(n_classes, dtype):
        more = [{"loss_out": loss_out}, {"loss_out": loss_out, "sample_weight": per_sample_weight}] \
            if with_loss_out else []
        return [{}, {"sample_weight": per_sample_weight}, {"n_threads": 2, "sample_weight": per_sample_weight},
                *([{"n_classes": n_classes}] if with_n_classes else []), *more, *extra]
    return options


def method_of(cls, method):
    """Calls cls(n_classes)'s `method` (n_classes: MultinomialLoss's constructor option)."""
    def call(n_classes=None, **args):
        instance = cls(n_classes) if n_classes is not None else cls()
        return getattr(instance, method)(**args)
    call.__name__ = f"{cls.__name__}.{method}"
    return call


def multinomial_reference(args, results):
    """(losses, gradient, hessian, probabilities) weighted per sample, with
    the softmax family's row policy, in the order `results` names them."""
    with np.errstate(all="ignore"):
        values = ref_objective.multinomial(args["y_true"], args["raw_prediction"], args.get("sample_weight"))
    values = dict(zip("lghp", nan_rows(values, args["raw_prediction"])))
    return tuple(values[name] for name in results)


OBJECTIVE_ERRORS = (
    ErrorCase("sample_weight of the wrong length", lambda a: {**a, "sample_weight": np.ones(len(a["y_true"]) + 1)},
              ValueError, r"sample_weight must have shape"),
    ErrorCase("string sample_weight", lambda a: {**a, "sample_weight": np.full(len(a["y_true"]), "a")},
              TypeError, r"sample_weight must be a real array"),
    ErrorCase("zero threads", set_arg("n_threads", 0), ValueError, r"n_threads must be a positive integer"),
)

MULTINOMIAL_ERRORS = OBJECTIVE_ERRORS + (
    ErrorCase("non-integer float labels", lambda a: {**a, "y_true": a["y_true"] + 0.5},
              ValueError, r"y_true\[0\] = \d+\.5 is not an integer class index"),
    ErrorCase("NaN label", lambda a: {**a, "y_true": np.where(np.arange(len(a["y_true"])) == 1, np.nan, a["y_true"])},
              ValueError, r"y_true\[1\] = nan is outside"),
    ErrorCase("bool labels", lambda a: {**a, "y_true": a["y_true"] > 1},
              TypeError, r"y_true must hold integer class indices"),
    ErrorCase("labels of the wrong length", lambda a: {**a, "y_true": a["y_true"][:-1]},
              ValueError, r"y_true must have shape"),
    ErrorCase("1-d raw predictions", lambda a: {**a, "raw_prediction": a["raw_prediction"][:, 0]},
              ValueError, r"raw_prediction must have shape \(rows, classes\)"),
    ErrorCase("n_classes not the raw predictions' columns",
              lambda a: {**a, "n_classes": a["raw_prediction"].shape[1] + 1},
              ValueError, r"raw_prediction must have \d+ columns \(n_classes\)"),
)

LOSS_OUT_ERRORS = (
    ErrorCase("integer loss_out", lambda a: {**a, "loss_out": np.zeros(len(a["y_true"]), np.int64)},
              TypeError, r"loss_out must be float32 or float64, got int64"),
    ErrorCase("loss_out of the wrong length", lambda a: {**a, "loss_out": np.zeros(len(a["y_true"]) + 1)},
              ValueError, r"loss_out must have shape"),
    ErrorCase("loss_out overlapping the raw predictions",
              # with gradient_out=raw_prediction, the outputs' own overlap is found first
              lambda a: {**a, "loss_out": a["raw_prediction"][::-1, 0]}, ValueError,
              r"loss_out (overlaps an input|and gradient_out share memory)"),
)


def shared_outputs(first, second):
    return ErrorCase(f"{first} and {second} the same array",
                     lambda a: {**a, **dict.fromkeys((first, second), np.zeros_like(a["raw_prediction"]))},
                     ValueError, rf"{first} and {second} share memory")


def make_binomial(rng, n_rows, n_classes, dtype):
    """Targets in [0, 1] (hard and soft, float64), raw predictions as a (samples, 1) column."""
    targets = make_sigmoid(rng, n_rows, 1, np.float64)
    return {"y_true": targets["labels"][:, 0], "raw_prediction": targets["logits"].astype(dtype)}


def binomial_reference(args, results):
    """(losses, gradient, hessian) weighted per sample: a sigmoid
    cross-entropy, with scikit-learn's HalfBinomialLoss policy at infinite
    raw predictions: the loss of a hard target that agrees (+inf with 1,
    -inf with 0) is NaN (0 x inf) where the sigmoid family takes the limit 0;
    the gradient and Hessian take their limits."""
    y, raw = np.asarray(args["y_true"], dtype=np.float64), np.asarray(args["raw_prediction"])[:, 0]
    with np.errstate(all="ignore"):
        loss, grad, hess = ref_binary.sigmoid_xent(y, raw, weight=args.get("sample_weight"))
    loss = np.where(((raw == np.inf) & (y == 1)) | ((raw == -np.inf) & (y == 0)), np.nan, loss)
    return tuple(dict(zip("lgh", (loss, grad, hess)))[name] for name in results)


BINOMIAL_ERRORS = OBJECTIVE_ERRORS + (
    ErrorCase("target above 1", lambda a: {**a, "y_true": np.where(np.arange(len(a["y_true"])) == 1, 2.0,
                                                                     a["y_true"])},
              ValueError, r"y_true\[1\] = 2.0 is outside \[0, 1\]"),
    ErrorCase("NaN target", lambda a: {**a, "y_true": np.where(np.arange(len(a["y_true"])) == 0, np.nan,
                                                                 a["y_true"])},
              ValueError, r"y_true\[0\] = nan is outside \[0, 1\]"),
    ErrorCase("targets of the wrong length", lambda a: {**a, "y_true": a["y_true"][:-1]},
              ValueError, r"y_true must have shape"),
    ErrorCase("string targets", lambda a: {**a, "y_true": np.full(len(a["y_true"]), "a")},
              TypeError, r"y_true must be a real array"),
    ErrorCase("two columns", lambda a: {**a, "raw_prediction": np.repeat(a["raw_prediction"], 2, axis=1)},
              ValueError, r"raw_prediction must have shape \(samples,\) or \(samples, 1\)"),
)


def objective_calls(cls, make, reference, errors):
    """The loss, loss_gradient, gradient, gradient_hessian (and, when present, gradient_proba) methods."""
    out_grad = out_errors("gradient_out", "raw_prediction")
    methods = [("loss", "l", None, LOSS_OUT_ERRORS), ("loss_gradient", "lg", "gradient_out", LOSS_OUT_ERRORS + out_grad),
               ("gradient", "g", "gradient_out", out_grad),
               ("gradient_hessian", "gh", "gradient_out", out_grad + (shared_outputs("gradient_out", "hessian_out"),))]
    extra = {"gradient_hessian": [{"hessian_out": lambda a: np.empty_like(a["raw_prediction"])}]}
    if hasattr(cls, "gradient_proba"):
        methods.append(("gradient_proba", "gp", "gradient_out",
                        out_grad + (shared_outputs("gradient_out", "proba_out"),)))
        extra["gradient_proba"] = [{"proba_out": lambda a: np.empty_like(a["raw_prediction"])}]
    return [PublicCall(f"{cls.__name__}.{method}", method_of(cls, method), make,
                       options_objective("l" in results, cls is fx.MultinomialLoss, extra.get(method, ())),
                       lambda a, r=results: reference(a, r), float_inputs=("raw_prediction",),
                       labels="y_true" if cls is fx.MultinomialLoss else None, out=out,
                       in_place=out and "raw_prediction", errors=errors + method_errors)
            for method, results, out, method_errors in methods]


# --- linear_cross_entropy: x (rows, hidden) and weight (classes, hidden) -------------------------

N_HIDDEN = 3   # small: the fuzzer's cost is in the calls, not in the products


def make_linear(rng, n_rows, n_classes, dtype):
    return {"x": rng.standard_normal((n_rows, N_HIDDEN)).astype(dtype),
            "weight": rng.standard_normal((n_classes, N_HIDDEN)).astype(dtype),
            "labels": rng.integers(0, max(n_classes, 1), n_rows),
            "bias": (rng.standard_normal(n_classes) * 0.5).astype(dtype)}


def options_linear(n_classes, dtype):
    return [{}, {"reduction": "none", "bias": None}, {"reduction": "sum", "label_smoothing": 0.1},
            {"ignore_index": -100}, {"ignore_index": 0, "z_loss": 1e-3, "reduction": "none"},
            {"softcap": 2.0, "return_lse": True, "bias": None}, {"ignore_index": 1, "reduction": "sum", "return_lse": True},
            {"n_threads": 2, "label_smoothing": 0.3, "z_loss": 0.01, "softcap": 5.0}]


def linear_reference(args, want_grad):
    """The float64 logits x @ weight.T + bias formed in full, then the
    sparse family's loss (its policy follows: a row whose logits hold NaN or
    +inf is NaN); (loss[, dx, dweight, dbias][, lse])."""
    ignore_index = args.get("ignore_index")
    with np.errstate(all="ignore"):
        losses, n_kept, lse, dx, dweight, dbias = ref_linear.linear_xent(
            args["x"], args["weight"], args["labels"], args.get("bias"), ignore_index,
            args.get("label_smoothing", 0.0), args.get("z_loss", 0.0), args.get("softcap"))
        loss, scale = losses, 1.0
        reduction = args.get("reduction", "mean")
        if reduction != "none":
            loss = losses.sum()
        if reduction == "mean":
            loss, scale = (loss / n_kept, 1.0 / n_kept) if n_kept else (0.0, 0.0)
        # the sparse family's row policy on the float64 logits: a kept row holding NaN or +inf
        # (after the cap) has NaN loss, lse and logit gradient, which reaches every dweight and
        # dbias entry through the sums over rows
        logits = np.asarray(args["x"], np.float64) @ np.asarray(args["weight"], np.float64).T
        if args.get("bias") is not None:
            logits = logits + np.asarray(args["bias"], np.float64)
        if args.get("softcap") is not None:
            logits = args["softcap"] * np.tanh(logits / args["softcap"])
        labels = np.asarray(args["labels"])
        kept = np.ones(len(labels), bool) if ignore_index is None else labels != ignore_index
        poisoned = (np.isnan(logits) | (logits == np.inf)).any(axis=1)
        lse = np.where(poisoned, np.nan, lse)
        if (poisoned & kept).any():
            losses = np.where(poisoned & kept, np.nan, losses)
            loss = losses if reduction == "none" else np.float64(np.nan)
            dx, dweight, dbias = dx.copy(), np.full_like(dweight, np.nan), np.full_like(dbias, np.nan)
            dx[poisoned & kept] = np.nan
    results = (loss,) + ((dx * scale, dweight * scale, None if args.get("bias") is None else dbias * scale)
                         if want_grad else ())
    return results + ((lse,) if args.get("return_lse") else ())


LINEAR_ERRORS = (
    ErrorCase("weight of another dtype", lambda a: {**a, "weight": a["weight"].astype(other_float(a["x"]))},
              TypeError, r"weight must have x's dtype"),
    ErrorCase("bias of another dtype", lambda a: {**a, "bias": a["bias"].astype(other_float(a["x"]))},
              TypeError, r"bias must have x's dtype"),
    ErrorCase("1-d x", lambda a: {**a, "x": a["x"][0]}, ValueError, r"x must have shape \(rows, hidden\)"),
    ErrorCase("3-d weight", lambda a: {**a, "weight": a["weight"][None]},
              ValueError, r"weight must have shape \(classes, hidden\)"),
    ErrorCase("weight of another hidden size", lambda a: {**a, "weight": np.repeat(a["weight"], 2, axis=1)},
              ValueError, r"weight must have shape \(classes, \d+\) to match x's"),
    ErrorCase("bias of the wrong length", lambda a: {**a, "bias": a["bias"][:-1]},
              ValueError, r"bias must have shape"),
    ErrorCase("labels of the wrong length", lambda a: {**a, "labels": a["labels"][:-1]},
              ValueError, r"labels must have shape"),
    ErrorCase("float labels", lambda a: {**a, "labels": a["labels"].astype(np.float32)},
              TypeError, r"labels must be an integer array"),
    ErrorCase("x with no contiguous axis", lambda a: {**a, "x": np.repeat(a["x"], 2, axis=1)[:, ::2]},
              ValueError, r"x must have one contiguous axis"),
    ErrorCase("weight with no contiguous axis",
              lambda a: {**a, "weight": np.ascontiguousarray(a["weight"][::-1, ::-1])[::-1, ::-1]},
              ValueError, r"weight must have one contiguous axis"),
    ErrorCase("negative z_loss", set_arg("z_loss", -0.1), ValueError, r"z_loss must be a finite non-negative"),
    ErrorCase("string z_loss", set_arg("z_loss", "0.1"), TypeError, r"z_loss must be a non-negative float"),
    ErrorCase("zero softcap", set_arg("softcap", 0), ValueError, r"softcap must be None or positive"),
    ErrorCase("infinite softcap", set_arg("softcap", float("inf")), ValueError, r"softcap must be a finite"),
    ErrorCase("float ignore_index", set_arg("ignore_index", 1.0), TypeError, r"ignore_index must be an integer"),
) + SHAPE_AND_REDUCTION_ERRORS


def linear_call(name, func, want_grad):
    return PublicCall(name, func, make_linear, options_linear, lambda a: linear_reference(a, want_grad),
                      float_inputs=("x", "weight"), labels="labels", errors=LINEAR_ERRORS,
                      classes=lambda a: np.shape(a["weight"])[0],
                      # no values near the float max: their products overflow or not as BLAS
                      # orders its sums
                      specials=("nan", "inf", "-inf", "subnormal", "-subnormal", "-0", "tiny"),
                      refused_layouts=("classes_strided", "negative_strides"))


REGISTRY += [
    sigmoid_calls("sigmoid_cross_entropy_with_logits", make_sigmoid, fx.sigmoid_cross_entropy_with_logits, 1),
    sigmoid_calls("sigmoid_cross_entropy_with_logits_and_grad", make_sigmoid,
                  fx.sigmoid_cross_entropy_with_logits_and_grad, 2, out="out",
                  errors=SIGMOID_ERRORS + out_errors("out")),
    sigmoid_calls("sigmoid_cross_entropy_with_logits_and_hessian", make_sigmoid,
                  fx.sigmoid_cross_entropy_with_logits_and_hessian, 3, out="out", errors=SIGMOID_HESS_ERRORS),
    sigmoid_calls("weighted_cross_entropy_with_logits", make_weighted, fx.weighted_cross_entropy_with_logits, 1),
    sigmoid_calls("weighted_cross_entropy_with_logits_and_grad", make_weighted,
                  fx.weighted_cross_entropy_with_logits_and_grad, 2, out="out",
                  errors=SIGMOID_ERRORS + out_errors("out")),
    keras_call("binary_crossentropy", fx.binary_crossentropy, make_probs, options_binary,
               lambda a: binary_reference(a)[:1], BINARY_ERRORS),
    keras_call("binary_crossentropy_and_grad", fx.binary_crossentropy_and_grad, make_probs, options_binary,
               binary_reference, BINARY_ERRORS, out=True),
    keras_call("binary_focal_crossentropy", fx.binary_focal_crossentropy, make_probs, options_binary_focal,
               lambda a: binary_focal_reference(a)[:1], BINARY_FOCAL_ERRORS, specials=focal_specials),
    keras_call("binary_focal_crossentropy_and_grad", fx.binary_focal_crossentropy_and_grad, make_probs,
               options_binary_focal, binary_focal_reference, BINARY_FOCAL_ERRORS, out=True,
               specials=focal_specials),
    keras_call("categorical_crossentropy", fx.categorical_crossentropy, make_categorical, options_categorical,
               lambda a: categorical_reference(a)[:1], CATEGORICAL_ERRORS, specials=probability_specials),
    keras_call("categorical_crossentropy_and_grad", fx.categorical_crossentropy_and_grad, make_categorical,
               options_categorical, categorical_reference, CATEGORICAL_ERRORS, out=True, specials=probability_specials),
    keras_call("sparse_categorical_crossentropy", fx.sparse_categorical_crossentropy, make_sparse_categorical,
               options_sparse_categorical, lambda a: sparse_categorical_reference(a)[:1],
               SPARSE_CATEGORICAL_ERRORS, labels="y_true", targets=(), specials=probability_specials),
    keras_call("sparse_categorical_crossentropy_and_grad", fx.sparse_categorical_crossentropy_and_grad,
               make_sparse_categorical, options_sparse_categorical, sparse_categorical_reference,
               SPARSE_CATEGORICAL_ERRORS, labels="y_true", targets=(), out=True, specials=probability_specials),
    keras_call("categorical_focal_crossentropy", fx.categorical_focal_crossentropy, make_categorical,
               options_categorical_focal, lambda a: categorical_focal_reference(a)[:1],
               CATEGORICAL_ERRORS + FOCAL_PARAMETER_ERRORS + ALPHA_ERRORS, specials=probability_specials),
    keras_call("categorical_focal_crossentropy_and_grad", fx.categorical_focal_crossentropy_and_grad,
               make_categorical, options_categorical_focal, categorical_focal_reference,
               CATEGORICAL_ERRORS + FOCAL_PARAMETER_ERRORS + ALPHA_ERRORS, out=True, specials=probability_specials),
    keras_call("sparse_categorical_focal_crossentropy", fx.sparse_categorical_focal_crossentropy,
               make_sparse_categorical, options_sparse_focal, lambda a: sparse_focal_reference(a)[:1],
               SPARSE_CATEGORICAL_ERRORS + FOCAL_PARAMETER_ERRORS + ALPHA_ERRORS, labels="y_true", targets=(),
               specials=probability_specials),
    keras_call("sparse_categorical_focal_crossentropy_and_grad", fx.sparse_categorical_focal_crossentropy_and_grad,
               make_sparse_categorical, options_sparse_focal, sparse_focal_reference,
               SPARSE_CATEGORICAL_ERRORS + FOCAL_PARAMETER_ERRORS + ALPHA_ERRORS, labels="y_true", targets=(),
               out=True, specials=probability_specials),
    keras_call("BinaryCrossentropy", keras_class(fx.BinaryCrossentropy), make_probs,
               options_class(options_binary), class_reference(binary_reference), CLASS_ERRORS + BINARY_ERRORS),
    keras_call("BinaryFocalCrossentropy", keras_class(fx.BinaryFocalCrossentropy), make_probs,
               options_class(options_binary_focal), class_reference(binary_focal_reference),
               CLASS_ERRORS + BINARY_FOCAL_ERRORS, specials=focal_specials),
    keras_call("CategoricalCrossentropy", keras_class(fx.CategoricalCrossentropy), make_categorical,
               options_class(options_categorical), class_reference(categorical_reference),
               CLASS_ERRORS + CATEGORICAL_ERRORS, specials=probability_specials),
    keras_call("CategoricalFocalCrossentropy", keras_class(fx.CategoricalFocalCrossentropy), make_categorical,
               options_class(options_categorical_focal), class_reference(categorical_focal_reference),
               CLASS_ERRORS + CATEGORICAL_ERRORS + FOCAL_PARAMETER_ERRORS + ALPHA_ERRORS,
               specials=probability_specials),
    keras_call("SparseCategoricalCrossentropy", keras_class(fx.SparseCategoricalCrossentropy),
               make_sparse_categorical, options_class(options_sparse_categorical),
               class_reference(sparse_categorical_reference, kept_labels),
               MASKED_CLASS_ERRORS + SPARSE_CATEGORICAL_ERRORS,
               labels="y_true", targets=(), specials=probability_specials),
    *objective_calls(fx.MultinomialLoss, make_multinomial, multinomial_reference, MULTINOMIAL_ERRORS),
    *objective_calls(fx.BinomialLoss, make_binomial, binomial_reference, BINOMIAL_ERRORS),
    linear_call("linear_cross_entropy", fx.linear_cross_entropy, False),
    linear_call("linear_cross_entropy_and_grad", fx.linear_cross_entropy_and_grad, True),
]

IDS = [call.name for call in REGISTRY]
WITH_LABELS = [call for call in REGISTRY if call.labels]
WITH_LABELS_IDS = [call.name for call in WITH_LABELS]
WITH_IGNORE = [call for call in WITH_LABELS if any(call.ignore in o for o in call.options(3, np.float64))]
WITH_IGNORE_IDS = [call.name for call in WITH_IGNORE]


def documented_errors(call):
    """Every documented error of `call`: its own, the float refusals of each
    float input, out-of-range labels (shapes: n_rows >= 3)."""
    cases = list(call.errors)
    for name in call.float_inputs:
        for kind, (transform, exception, match) in REFUSED_FLOATS.items():
            cases.append(ErrorCase(f"{kind} {name}", lambda a, n=name, t=transform: {**a, n: t(a[n])},
                                   exception, match))
    if call.labels:
        for value in (-1, "n_classes", 2**40, 2**63 - 1):
            def mutate(args, value=value, name=call.labels):
                labels = np.array(args[name], dtype=np.int64)
                labels[2] = call.n_classes(args) if value == "n_classes" else value
                return {**args, name: labels}
            cases.append(ErrorCase(f"label {value}", mutate, ValueError,
                                   r"\[2\] = -?\d+ is outside \[0, \d+\)"))
    return cases

"""Every public function of fastxent, one entry each: the single table the
reliability tests (test_fuzz, test_no_partial_writes, test_concurrency,
test_leaks) iterate over.

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
"""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import fastxent as fx
import reference as ref
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
    errors: tuple = field(default=())

    def __call__(self, args):
        """The results as a tuple, whatever the function returns."""
        result = self.func(**args)
        return result if isinstance(result, tuple) else (result,)


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

HESS_OUT_ERRORS = (
    ErrorCase("hess_out of another shape",
              lambda a: {**a, "hess_out": np.zeros(a["logits"].T.shape, a["logits"].dtype)},
              ValueError, r"hess_out must have shape"),
    ErrorCase("hess_out the same array as grad_out",
              lambda a: {**a, **dict.fromkeys(("grad_out", "hess_out"), np.zeros_like(a["logits"]))},
              # the sparse form names the grad_out "labels" in this message (reported)
              ValueError, r"hess_out shares memory with (grad_out|labels)"),
)

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
               float_inputs=("logits",), errors=SOFT_ERRORS),
    PublicCall("softmax_cross_entropy_with_logits_and_grad", fx.softmax_cross_entropy_with_logits_and_grad,
               make_soft, options_soft, lambda a: soft_reference(a)[:2],
               float_inputs=("logits",), out="out", in_place="logits",
               errors=SOFT_ERRORS + out_errors("out")),
    PublicCall("softmax_cross_entropy_with_logits_grad_hess", fx.softmax_cross_entropy_with_logits_grad_hess,
               make_soft, options_soft, soft_reference,
               float_inputs=("logits",), out="grad_out", in_place="logits",
               errors=SOFT_ERRORS + out_errors("grad_out") + HESS_OUT_ERRORS),
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

IDS = [call.name for call in REGISTRY]
WITH_LABELS = [call for call in REGISTRY if call.labels]
WITH_LABELS_IDS = [call.name for call in WITH_LABELS]
WITH_IGNORE = [call for call in WITH_LABELS if any("ignore_index" in o for o in call.options(3, np.float64))]
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
                labels[2] = args["logits"].shape[1] if value == "n_classes" else value
                return {**args, name: labels}
            cases.append(ErrorCase(f"label {value}", mutate, ValueError,
                                   r"\[2\] = -?\d+ is outside \[0, \d+\)"))
    return cases

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


def read_only(x):
    x.flags.writeable = False
    return x


REGISTRY = [
    PublicCall("sparse_softmax_cross_entropy_with_logits", fx.sparse_softmax_cross_entropy_with_logits,
               make_sparse, options_sparse, reference_sparse_loss,
               float_inputs=("logits",), labels="labels", errors=SPARSE_ERRORS),
    PublicCall("sparse_softmax_cross_entropy_with_logits_and_grad",
               fx.sparse_softmax_cross_entropy_with_logits_and_grad,
               make_sparse, options_sparse, reference_sparse_loss_and_grad,
               float_inputs=("logits",), labels="labels", out="out", in_place="logits",
               errors=SPARSE_GRAD_ERRORS),
]

IDS = [call.name for call in REGISTRY]
WITH_LABELS = [call for call in REGISTRY if call.labels]
WITH_LABELS_IDS = [call.name for call in WITH_LABELS]


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

"""Objectives for scikit-learn-style estimators.

`MultinomialLoss` and `BinomialLoss` have the methods and argument names of
scikit-learn's private `HalfMultinomialLoss` and `HalfBinomialLoss`
(sklearn/_loss/loss.py): per-sample losses, gradients, diagonal hessians over
raw predictions, with `sample_weight`, `n_threads` and `*_out` buffers.

`LinearModelObjective` is the penalised multinomial logistic regression
objective of a flat coefficient vector, ready for
``scipy.optimize.minimize(objective.loss_gradient, x0, jac=True,
method="L-BFGS-B")``.  It never forms the (samples x classes) raw predictions:
they are computed block by block of rows (or by fastxent's fused linear +
cross-entropy kernel, when installed).
"""
import numbers

import numpy as np

import fastxent

from . import _threads
from . import _validate as v
from ._dispatch import kernels

# Rows per block of the linear-model sweep: a block's raw predictions hold at
# most this many values (32 MiB in float64), and at most 4096 rows.
BLOCK_VALUES = 1 << 22
BLOCK_ROWS = 4096


def class_labels(y, n_rows, n_classes, name="y_true"):
    """Class indices as contiguous int32/int64, from an integer array or a
    float array holding integers (scikit-learn passes labels as floats);
    checked to lie in [0, n_classes).  O(rows)."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if y.shape != (n_rows,):
            raise ValueError(f"{name} must have shape ({n_rows},) to match the raw predictions' rows, "
                             f"got {y.shape}")
        bad = np.flatnonzero(~((y >= 0) & (y < n_classes)))   # NaN included
        if bad.size:
            row = int(bad[0])
            raise ValueError(f"{name}[{row}] = {y[row]} is outside [0, {n_classes})")
        bad = np.flatnonzero(y != np.floor(y))
        if bad.size:
            row = int(bad[0])
            raise ValueError(f"{name}[{row}] = {y[row]} is not an integer class index")
        return y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class indices (an integer array, or floats holding "
                        f"integers), got {y.dtype}")
    return v.labels_1d(y, n_rows, n_classes, None, name=name)[0]


def binary_targets(y, n_rows, name="y_true"):
    """Targets in [0, 1] (0/1 labels or soft targets) as contiguous float64."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real array of targets in [0, 1], got {y.dtype}")
    if y.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},) to match the raw predictions, got {y.shape}")
    y = np.ascontiguousarray(y, dtype=np.float64)
    bad = np.flatnonzero(~((y >= 0) & (y <= 1)))
    if bad.size:
        row = int(bad[0])
        raise ValueError(f"{name}[{row}] = {y[row]} is outside [0, 1]")
    return y


def sample_weights(sample_weight, n_rows):
    """None, or the weights as contiguous float64 (n_rows,).  O(rows)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be a real array, got {w.dtype}")
    if w.shape != (n_rows,):
        raise ValueError(f"sample_weight must have shape ({n_rows},), one weight per sample, got {w.shape}")
    return np.ascontiguousarray(w, dtype=np.float64)


def loss_output(loss_out, n_rows, dtype, raw):
    """The caller's loss_out (float32 or float64, (n_rows,), not overlapping
    the raw predictions) or a new array."""
    if loss_out is None:
        return np.empty(n_rows, dtype=dtype)
    if not isinstance(loss_out, np.ndarray):
        raise TypeError(f"loss_out must be a numpy array, got {type(loss_out).__name__}")
    if loss_out.dtype not in v.FLOAT_DTYPES:
        raise TypeError(f"loss_out must be float32 or float64, got {loss_out.dtype}")
    return v.output(loss_out, (n_rows,), loss_out.dtype, name="loss_out", inputs=(raw,))


def distinct_outputs(**outputs):
    """Two outputs may not share memory (each may still be the input)."""
    given = [(name, a) for name, a in outputs.items() if a is not None]
    for i, (name, a) in enumerate(given):
        for other, b in given[i + 1:]:
            if np.shares_memory(a, b):
                raise ValueError(f"{name} and {other} share memory; pass separate arrays")


def check_threads(n_threads):
    """Validate n_threads now (before any output is written)."""
    return _threads.resolve(n_threads)


def finish_loss(rows, loss_out):
    """The kernel's float64 losses into the caller's (or a new) array."""
    if rows is not loss_out:
        loss_out[...] = rows
    return loss_out


def kernel_loss_buffer(loss_out):
    """A float64 contiguous buffer the kernel can write: loss_out itself when it is one."""
    if loss_out.dtype == np.float64 and loss_out.flags.c_contiguous:
        return loss_out
    return np.empty(loss_out.shape, dtype=np.float64)


class _PointwiseLoss:
    """The per-sample methods scikit-learn's losses share; _call does the
    work and returns (losses, gradient, hessian, ...), each None unless asked
    for.  The gradient and Hessian have raw_prediction's shape."""

    def loss(self, y_true, raw_prediction, sample_weight=None, loss_out=None, n_threads=None):
        """Per-sample weighted losses, (samples,)."""
        return self._call(y_true, raw_prediction, sample_weight, n_threads, loss_out=loss_out,
                          want_loss=True)[0]

    def loss_gradient(self, y_true, raw_prediction, sample_weight=None, loss_out=None, gradient_out=None,
                      n_threads=None):
        """(losses, gradient)."""
        return self._call(y_true, raw_prediction, sample_weight, n_threads, loss_out=loss_out,
                          want_loss=True, gradient_out=gradient_out, want_grad=True)[:2]

    def gradient(self, y_true, raw_prediction, sample_weight=None, gradient_out=None, n_threads=None):
        """Gradient with respect to raw_prediction."""
        return self._call(y_true, raw_prediction, sample_weight, n_threads,
                          gradient_out=gradient_out, want_grad=True)[1]

    def gradient_hessian(self, y_true, raw_prediction, sample_weight=None, gradient_out=None,
                         hessian_out=None, n_threads=None):
        """(gradient, diagonal of the Hessian)."""
        return self._call(y_true, raw_prediction, sample_weight, n_threads,
                          gradient_out=gradient_out, want_grad=True,
                          hessian_out=hessian_out, want_hess=True)[1:3]


class MultinomialLoss(_PointwiseLoss):
    """Categorical cross-entropy of softmax(raw_prediction), per sample.

    scikit-learn's HalfMultinomialLoss, public and with the same methods::

        loss_i = sample_weight_i * (logsumexp(raw_i) - raw_i[y_i])
        gradient_ik = sample_weight_i * (softmax(raw_i)_k - [y_i == k])
        hessian_ik = sample_weight_i * p_ik (1 - p_ik)      (the class-diagonal part)

    y_true holds class indices, as integers or as floats holding integers.
    raw_prediction is (samples, classes) float32 or float64, any layout.
    Losses are returned in raw_prediction's dtype unless loss_out says
    otherwise; (samples x classes) outputs are new arrays, the caller's
    `*_out` arrays, or raw_prediction itself (in place).  n_threads=None
    uses OpenMP's default (scikit-learn's default is 1).

    Also usable as the ``base_loss`` of scikit-learn's LinearModelLoss.
    """

    is_multiclass = True

    def __init__(self, n_classes=None):
        self.n_classes = n_classes

    def gradient_proba(self, y_true, raw_prediction, sample_weight=None, gradient_out=None,
                       proba_out=None, n_threads=None):
        """(gradient, softmax probabilities), as scikit-learn's solvers use
        for the full hessian-vector product."""
        _, grad, _, proba = self._call(y_true, raw_prediction, sample_weight, n_threads,
                                       gradient_out=gradient_out, want_grad=True,
                                       proba_out=proba_out, want_proba=True)
        return grad, proba

    def _call(self, y_true, raw_prediction, sample_weight, n_threads, *, loss_out=None, want_loss=False,
              gradient_out=None, want_grad=False, hessian_out=None, want_hess=False,
              proba_out=None, want_proba=False):
        raw = v.logits_2d(raw_prediction, "raw_prediction")
        n_rows, n_classes = raw.shape
        if self.n_classes is not None and n_classes != self.n_classes:
            raise ValueError(f"raw_prediction must have {self.n_classes} columns (n_classes), "
                             f"got {n_classes}")
        labels = class_labels(y_true, n_rows, n_classes)
        weight = sample_weights(sample_weight, n_rows)
        threads = check_threads(n_threads)
        distinct_outputs(loss_out=loss_out, gradient_out=gradient_out, hessian_out=hessian_out,
                         proba_out=proba_out)
        loss = loss_output(loss_out, n_rows, raw.dtype, raw) if want_loss else None
        grad = v.output(gradient_out, raw.shape, raw.dtype, "gradient_out", (raw,)) if want_grad else None
        hess = v.output(hessian_out, raw.shape, raw.dtype, "hessian_out", (raw,)) if want_hess else None
        proba = v.output(proba_out, raw.shape, raw.dtype, "proba_out", (raw,)) if want_proba else None
        threads = _threads.resolve(threads, work=raw.size)
        rows = kernel_loss_buffer(loss) if want_loss else None
        first = grad if want_grad else proba
        scratch = v.row_scratch((raw, first), threads, n_classes, raw.dtype)
        kernels.objective.multinomial(raw, labels, weight, rows, grad, hess, proba, scratch, threads)
        return (finish_loss(rows, loss) if want_loss else None), grad, hess, proba


class BinomialLoss(_PointwiseLoss):
    """Logistic loss of sigmoid(raw_prediction), per sample.

    scikit-learn's HalfBinomialLoss, public and with the same methods::

        loss_i = sample_weight_i * (log(1 + exp(raw_i)) - y_i raw_i)
        gradient_i = sample_weight_i * (expit(raw_i) - y_i)
        hessian_i = sample_weight_i * expit(raw_i) (1 - expit(raw_i))

    y_true in [0, 1] (0/1 labels or soft targets); raw_prediction is
    (samples,) or (samples, 1), float32 or float64.  Computed in stable
    forms (log1p(exp(-|raw|)), no overflow for any finite raw).
    """

    is_multiclass = False
    n_classes = 2

    def _call(self, y_true, raw_prediction, sample_weight, n_threads, *, loss_out=None, want_loss=False,
              gradient_out=None, want_grad=False, hessian_out=None, want_hess=False):
        raw = v.float_array(raw_prediction, "raw_prediction")
        if raw.ndim == 2 and raw.shape[1] == 1:   # scikit-learn accepts (samples, 1) too
            raw = raw[:, 0]
        if raw.ndim != 1:
            raise ValueError(f"raw_prediction must have shape (samples,) or (samples, 1), got {raw.shape}")
        n_rows = raw.shape[0]
        targets = binary_targets(y_true, n_rows)
        weight = sample_weights(sample_weight, n_rows)
        threads = check_threads(n_threads)
        distinct_outputs(loss_out=loss_out, gradient_out=gradient_out, hessian_out=hessian_out)
        loss = loss_output(loss_out, n_rows, raw.dtype, raw) if want_loss else None
        grad = self._output(gradient_out, raw, "gradient_out") if want_grad else None
        hess = self._output(hessian_out, raw, "hessian_out") if want_hess else None
        rows = kernel_loss_buffer(loss) if want_loss else None
        kernels.objective.binomial(raw, targets, weight, rows, grad, hess, threads)
        return (finish_loss(rows, loss) if want_loss else None), grad, hess

    @staticmethod
    def _output(out, raw, name):
        if isinstance(out, np.ndarray) and out.ndim == 2 and out.shape[1:] == (1,):
            out = out[:, 0]
        return v.output(out, raw.shape, raw.dtype, name, (raw,))


class LinearModelObjective:
    """Penalised multinomial logistic regression as a function of a flat
    coefficient vector, for scipy.optimize::

        f(coef) = sum_i s_i loss_i / sum_i s_i + alpha / 2 * ||W||^2
        loss_i  = logsumexp(raw_i) - raw_i[y_i],  raw = X @ W.T + b

    This is scikit-learn's convention (LinearModelLoss): a weighted mean of
    the per-sample losses plus an L2 penalty on the weights, not on the
    intercept.  LogisticRegression(C=C) corresponds to
    alpha = 1 / (C * sum_i s_i).

    coef is W (n_classes, n_features) in C order, flattened, followed by the
    intercept b (n_classes,) when fit_intercept: ``W = coef[:C * D].reshape(C, D)``
    (torch.nn.Linear's layout; scikit-learn's LinearModelLoss orders classes
    fastest instead).  The gradient has the same layout.

    Parameters
    ----------
    X : (samples, features) float32 or float64 array, or a scipy.sparse CSR
        matrix/array (used as is, never densified).
    y : (samples,) class indices in [0, n_classes) (integers, or floats
        holding integers).
    n_classes : number of classes (default: max(y) + 1).
    sample_weight : (samples,) weights s_i, or None (all 1).
    alpha : L2 strength (>= 0).
    fit_intercept : whether coef ends with an intercept per class.
    n_threads : OpenMP threads of the loss kernels (None: OpenMP's default).
        The default is 1: the kernels run between two BLAS products, and an
        OpenMP team woken there competes with BLAS's own spinning threads
        (measured here: 10x slower on small blocks, no gain on large ones;
        scikit-learn's LogisticRegression uses one thread for the same
        reason).  The matrix products use numpy's BLAS threads either way.
    block_rows : rows per block of the sweep (default: as many as keep a
        block's raw predictions under 4M values, at most 4096).

    Memory: the raw predictions exist one block at a time (block_rows x
    classes), never (samples x classes).  With a dense X and no sample weights,
    `loss` uses the fused fastxent.linear_cross_entropy instead (same memory
    bound, one BLAS pass).
    """

    def __init__(self, X, y, *, n_classes=None, sample_weight=None, alpha=0.0, fit_intercept=True,
                 n_threads=1, block_rows=None):
        self.X, self.is_sparse = design_matrix(X)
        n_rows, n_features = self.X.shape
        if n_classes is None:
            y_arr = np.asarray(y)
            top = np.max(y_arr) if y_arr.size and y_arr.dtype.kind in "iuf" else 0
            n_classes = int(top) + 1 if np.isfinite(top) and top >= 0 else 1   # class_labels reports the rest
        if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 1:
            raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
        self.n_classes = int(n_classes)
        self.y = class_labels(y, n_rows, self.n_classes, name="y")
        self.sample_weight = sample_weights(sample_weight, n_rows)
        self.weight_sum = float(n_rows if self.sample_weight is None else np.sum(self.sample_weight))
        if not self.weight_sum > 0:
            raise ValueError(f"the sample weights must have a positive sum, got {self.weight_sum}")
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha >= 0:
            raise ValueError(f"alpha must be a non-negative number, got {alpha!r}")
        self.alpha = float(alpha)
        self.fit_intercept = bool(fit_intercept)
        self.n_threads = check_threads(n_threads)
        if block_rows is None:
            block_rows = max(1, min(BLOCK_ROWS, BLOCK_VALUES // self.n_classes))
        if isinstance(block_rows, bool) or not isinstance(block_rows, numbers.Integral) or block_rows < 1:
            raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
        self.block_rows = int(block_rows)
        self.n_coef = self.n_classes * (n_features + int(self.fit_intercept))

    # -- coefficient layout ---------------------------------------------------------

    def zero_coef(self):
        return np.zeros(self.n_coef)

    def unpack(self, coef):
        """(W (classes, features), b (classes,) or None): views of coef."""
        coef = np.asarray(coef)
        if coef.shape != (self.n_coef,):
            raise ValueError(f"coef must have shape ({self.n_coef},), got {coef.shape}")
        n_weights = self.n_classes * self.X.shape[1]
        weight = coef[:n_weights].reshape(self.n_classes, self.X.shape[1])
        return weight, (coef[n_weights:] if self.fit_intercept else None)

    def pack(self, weight, intercept):
        return np.concatenate([np.ravel(weight)] + ([np.ravel(intercept)] if self.fit_intercept else []))

    # -- the objective ----------------------------------------------------------------

    def loss(self, coef):
        """f(coef)."""
        weight, intercept = self.unpack(coef)
        fused = self._fused()
        if fused is not None:
            w, b = self._cast(weight, intercept)
            mean = float(fused(self.X, w, self.y, bias=b, reduction="mean", n_threads=self.n_threads))
        else:
            mean = self._sweep(weight, intercept, want_grad=False)[0] / self.weight_sum
        return mean + self._penalty(weight)

    def loss_gradient(self, coef):
        """(f(coef), gradient of f as a flat float64 vector)."""
        weight, intercept = self.unpack(coef)
        # not the fused kernel here: it also computes dx (samples x features),
        # which a linear model does not need, and needs four matrix products
        # where this sweep needs two
        total, grad_w, grad_b = self._sweep(weight, intercept, want_grad=True)
        mean = total / self.weight_sum
        grad_w /= self.weight_sum
        if grad_b is not None:
            grad_b /= self.weight_sum
        grad_w = grad_w + self.alpha * weight
        return mean + self._penalty(weight), self.pack(grad_w, grad_b)

    def gradient_hessian_product(self, coef):
        """(gradient, hessp): hessp(s) is the product of the hessian of f at
        coef with a flat vector s (scikit-learn's newton-cg interface).

        The full multinomial hessian, not only its class-diagonal part.  Each
        hessp call recomputes the probabilities block by block rather than
        keeping a (samples x classes) array between calls.
        """
        _, grad = self.loss_gradient(coef)
        w_t, b = self._operands(*self.unpack(coef))

        def hessp(s):
            s_weight, s_intercept = self.unpack(s)
            sw_t, sb = self._operands(s_weight, s_intercept)
            out_w = np.zeros(s_weight.shape)
            out_b = np.zeros(self.n_classes) if self.fit_intercept else None
            for rows, Xb in self._blocks():
                proba = self._raw(Xb, w_t, b)
                self._kernel(proba, rows, proba_out=proba)
                # direction of the raw predictions, then H_i t_i = p_i (t_i - <p_i, t_i>) s_i
                t = self._raw(Xb, sw_t, sb)
                t -= np.einsum("ij,ij->i", proba, t)[:, None]
                t *= proba
                if self.sample_weight is not None:
                    t *= self.sample_weight[rows, None]
                self._accumulate(t, Xb, out_w, out_b)
            out_w = out_w / self.weight_sum + self.alpha * s_weight
            return self.pack(out_w, None if out_b is None else out_b / self.weight_sum)

        return grad, hessp

    # -- internals ----------------------------------------------------------------------

    def _penalty(self, weight):
        return 0.5 * self.alpha * float(np.dot(weight.ravel(), weight.ravel())) if self.alpha else 0.0

    def _cast(self, weight, intercept):
        """Coefficients in X's dtype (O(classes x features))."""
        dtype = self.X.dtype
        return (np.ascontiguousarray(weight, dtype=dtype),
                None if intercept is None else np.ascontiguousarray(intercept, dtype=dtype))

    def _operands(self, weight, intercept):
        """(W.T as a C-contiguous (features, classes) array, b) in X's dtype:
        X @ W.T with W C-contiguous is up to 30x slower in numpy's matmul."""
        w, b = self._cast(weight, intercept)
        return np.ascontiguousarray(w.T), b

    def _fused(self):
        """fastxent.linear_cross_entropy when it applies: dense X, unweighted
        samples (looked up at call time, so tests can wrap it)."""
        if self.is_sparse or self.sample_weight is not None:
            return None
        return fastxent.linear_cross_entropy

    def _blocks(self):
        n_rows = self.X.shape[0]
        for start in range(0, n_rows, self.block_rows):
            rows = slice(start, min(start + self.block_rows, n_rows))
            yield rows, self.X[rows]

    def _raw(self, Xb, weight_t, intercept):
        """Xb @ W.T + intercept: one block's raw predictions."""
        raw = np.ascontiguousarray(Xb @ weight_t)   # the kernel needs contiguous rows (no scratch)
        if intercept is not None:
            raw += intercept
        return raw

    def _kernel(self, raw, rows, loss_out=None, gradient_out=None, proba_out=None):
        threads = _threads.resolve(self.n_threads, work=raw.size)
        weight = None if self.sample_weight is None else self.sample_weight[rows]
        kernels.objective.multinomial(raw, self.y[rows], weight, loss_out, gradient_out, None, proba_out,
                                      None, threads)

    def _accumulate(self, grad_raw, Xb, out_w, out_b):
        """out_w += grad_raw.T @ Xb; out_b += column sums of grad_raw."""
        out_w += (Xb.T @ grad_raw).T if self.is_sparse else grad_raw.T @ Xb
        if out_b is not None:
            out_b += np.sum(grad_raw, axis=0, dtype=np.float64)

    def _sweep(self, weight, intercept, want_grad):
        """(sum_i s_i loss_i, sum_i s_i dloss_i/dW, .../db) over row blocks."""
        w_t, b = self._operands(weight, intercept)
        losses = np.empty(self.X.shape[0])
        grad_w = np.zeros(weight.shape) if want_grad else None
        grad_b = np.zeros(self.n_classes) if want_grad and self.fit_intercept else None
        for rows, Xb in self._blocks():
            raw = self._raw(Xb, w_t, b)
            self._kernel(raw, rows, loss_out=losses[rows], gradient_out=raw if want_grad else None)
            if want_grad:
                self._accumulate(raw, Xb, grad_w, grad_b)
        return float(np.sum(losses)), grad_w, grad_b


def design_matrix(X):
    """(X, is_sparse): a float32/float64 2-D array, or a CSR matrix/array of
    those dtypes used as is."""
    if isinstance(X, np.ndarray) or not hasattr(X, "tocsr"):
        X = v.float_array(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must have shape (samples, features), got {X.shape}")
        return X, False
    if X.format != "csr":
        raise TypeError(f"a sparse X must be in CSR format, got {X.format}: convert it with X.tocsr()")
    if X.dtype not in v.FLOAT_DTYPES:
        raise TypeError(f"X must be float32 or float64, got {X.dtype}")
    return X, True

"""SoftmaxRegression: a scikit-learn multinomial logistic regression on
fastxent's objective.

scikit-learn and scipy are needed by this module only (``pip install
scikit-learn``); importing fastxent does not import them.
"""
import numbers
import warnings

import numpy as np
from scipy import optimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _threads
from ._dispatch import kernels
from .objective import BLOCK_ROWS, BLOCK_VALUES, LinearModelObjective

FLOAT_DTYPES = (np.float64, np.float32)


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    """Multinomial (softmax) logistic regression, L2-penalised, fitted by
    L-BFGS-B on fastxent's memory-lean objective.

    It minimises scikit-learn's LogisticRegression(solver="lbfgs") objective::

        sum_i s_i loss_i / sum_i s_i + alpha / 2 * ||W||^2,
        alpha = 1 / (C * sum_i s_i)   (unless `alpha` is given)

    with loss_i the cross-entropy of softmax(W x_i + b) at the true class, so
    with the same C, tol and max_iter it reaches the same solution, but the
    (samples x classes) raw predictions and gradient exist one block of rows
    at a time instead of whole (see fastxent.LinearModelObjective).

    Parameters
    ----------
    C : float > 0, inverse regularisation strength, as LogisticRegression's.
    alpha : float >= 0 or None. When given, the L2 strength per mean sample
        loss directly (as above), and C is ignored.
    fit_intercept : bool, fit one intercept per class (not penalised).
    max_iter : int, L-BFGS-B iterations at most.
    tol : float, L-BFGS-B's projected-gradient tolerance (gtol), as
        LogisticRegression's.
    warm_start : bool, start from the previous fit's coefficients when the
        classes and features match.
    n_threads : int or None, OpenMP threads of the loss kernels (None:
        OpenMP's default; default 1, see LinearModelObjective for why).  The
        matrix products use numpy's BLAS threads.

    Attributes
    ----------
    classes_ : (n_classes,) the labels seen in fit (any sortable labels).
    coef_ : (n_classes, n_features).  Two classes are fitted as a
        two-class softmax, so coef_ has two rows (LogisticRegression fits
        one sigmoid and has one); predictions and probabilities are the same
        model, and decision_function returns raw_1 - raw_0 for two classes,
        as scikit-learn's convention requires.
    intercept_ : (n_classes,) (zeros when fit_intercept=False).
    n_iter_ : (1,) int array, the iterations L-BFGS-B ran.
    n_features_in_, feature_names_in_ : as every scikit-learn estimator.
    """

    def __init__(self, C=1.0, *, alpha=None, fit_intercept=True, max_iter=100, tol=1e-4,
                 warm_start=False, n_threads=1):
        self.C = C
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit on X (dense, or sparse: used as CSR without densifying) and labels y."""
        self._check_params()
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=FLOAT_DTYPES)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                             f"but the data contains only one class: {self.classes_.tolist()[0]!r}")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        weight_sum = X.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        alpha = self.alpha if self.alpha is not None else 1.0 / (self.C * weight_sum)
        objective = LinearModelObjective(X, labels, n_classes=n_classes, sample_weight=sample_weight,
                                         alpha=alpha, fit_intercept=self.fit_intercept,
                                         n_threads=self.n_threads)
        result = optimize.minimize(
            objective.loss_gradient, self._initial_coef(objective, n_classes, X.shape[1]),
            method="L-BFGS-B", jac=True,
            options={"maxiter": self.max_iter, "maxls": 50, "gtol": self.tol,
                     "ftol": 64 * np.finfo(float).eps},   # LogisticRegression's settings
        )
        if not result.success:
            warnings.warn(f"L-BFGS-B did not converge in {result.nit} iterations ({result.message}); "
                          f"increase max_iter or scale the data", ConvergenceWarning, stacklevel=2)
        self.n_iter_ = np.array([min(result.nit, self.max_iter)], dtype=np.int32)
        weight, intercept = objective.unpack(result.x)
        self.coef_ = weight.copy()
        self.intercept_ = intercept.copy() if intercept is not None else np.zeros(n_classes)
        return self

    def decision_function(self, X):
        """Raw predictions X @ coef_.T + intercept_, (samples, classes);
        (samples,) raw_1 - raw_0 for two classes."""
        X = self._validate_X(X)
        weight_t, intercept = self._coefficients(X.dtype)
        if len(self.classes_) == 2:
            return np.asarray(X @ (weight_t[:, 1] - weight_t[:, 0])) + (intercept[1] - intercept[0])
        return self._raw(X, weight_t, intercept)

    def predict(self, X):
        """The most probable class of each sample (argmax computed block by block)."""
        X = self._validate_X(X)
        weight_t, intercept = self._coefficients(X.dtype)
        best = np.empty(X.shape[0], dtype=np.intp)
        for rows in self._blocks(X.shape[0]):
            best[rows] = np.argmax(self._raw(X[rows], weight_t, intercept), axis=1)
        return self.classes_[best]

    def predict_log_proba(self, X):
        """Log-probabilities log softmax(raw), (samples, classes), in X's dtype."""
        return self._log_proba(X, exponentiate=False)

    def predict_proba(self, X):
        """Probabilities softmax(raw), (samples, classes), in X's dtype."""
        return self._log_proba(X, exponentiate=True)

    # -- internals ----------------------------------------------------------------------

    def _check_params(self):
        for name, low, strict in (("C", 0, True), ("tol", 0, False)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    value > low if strict else value >= low):
                raise ValueError(f"{name} must be a {'positive' if strict else 'non-negative'} number, "
                                 f"got {value!r}")
        if self.alpha is not None and (isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real)
                                       or not self.alpha >= 0):
            raise ValueError(f"alpha must be None or a non-negative number, got {self.alpha!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral) \
                or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        _threads.resolve(self.n_threads)

    def _initial_coef(self, objective, n_classes, n_features):
        if (self.warm_start and hasattr(self, "coef_") and self.coef_.shape == (n_classes, n_features)):
            return objective.pack(self.coef_, self.intercept_ if self.fit_intercept else None)
        return objective.zero_coef()

    def _validate_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, accept_sparse="csr", dtype=FLOAT_DTYPES)

    def _coefficients(self, dtype):
        """(coef_.T C-contiguous, intercept_) in X's dtype: no product upcasts a
        copy of X, and numpy's matmul is fastest with that layout."""
        return np.ascontiguousarray(self.coef_.T, dtype=dtype), self.intercept_.astype(dtype, copy=False)

    def _blocks(self, n_rows):
        block = max(1, min(BLOCK_ROWS, BLOCK_VALUES // len(self.classes_)))
        for start in range(0, n_rows, block):
            yield slice(start, min(start + block, n_rows))

    @staticmethod
    def _raw(X, weight_t, intercept):
        raw = np.ascontiguousarray(X @ weight_t)
        raw += intercept
        return raw

    def _log_proba(self, X, exponentiate):
        """log softmax (or softmax) of the raw predictions, written block by
        block into the one (samples x classes) array returned."""
        X = self._validate_X(X)
        weight_t, intercept = self._coefficients(X.dtype)
        out = np.empty((X.shape[0], len(self.classes_)), dtype=X.dtype)
        lse = np.empty(min(X.shape[0], BLOCK_ROWS), dtype=X.dtype)
        for rows in self._blocks(X.shape[0]):
            block = out[rows]
            if isinstance(X, np.ndarray):
                np.matmul(X[rows], weight_t, out=block)
            else:
                block[...] = X[rows] @ weight_t
            block += intercept
            block_lse = lse[:block.shape[0]]
            kernels.sparse.logsumexp_rows(block, block_lse, None, _threads.resolve(self.n_threads,
                                                                                   work=block.size))
            block -= block_lse[:, None]
            if exponentiate:
                np.exp(block, out=block)
        return out

"""fastxent.sklearn.SoftmaxRegression: scikit-learn's estimator checks, and
the same model as LogisticRegression(solver="lbfgs")."""
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from fastxent.sklearn import SoftmaxRegression  # noqa: E402
from reference import log_softmax  # noqa: E402


@pytest.fixture(scope="module")
def many_classes():
    X, y = make_classification(6000, 20, n_informative=15, n_redundant=2, n_classes=10,
                               n_clusters_per_class=1, random_state=0)
    return X[:5000], X[5000:], y[:5000], y[5000:]


def test_check_estimator():
    results = check_estimator(SoftmaxRegression(), on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed
    assert sum(r["status"] == "passed" for r in results) >= 50


def test_accuracy_and_solution_match_logistic_regression(many_classes):
    X_train, X_test, y_train, y_test = many_classes
    ours = SoftmaxRegression(C=0.5).fit(X_train, y_train)
    theirs = LogisticRegression(C=0.5).fit(X_train, y_train)
    assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.005
    # the same objective and solver settings: the same optimum
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X_test), theirs.predict_proba(X_test), atol=1e-5)


def test_sample_weight_matches_logistic_regression(many_classes):
    X_train, _, y_train, _ = many_classes
    X, y = X_train[:400], y_train[:400]
    weight = np.random.default_rng(0).uniform(0.1, 3.0, 400)
    ours = SoftmaxRegression(tol=1e-7, max_iter=1000).fit(X, y, sample_weight=weight)
    theirs = LogisticRegression(tol=1e-7, max_iter=1000).fit(X, y, sample_weight=weight)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)


def test_predictions_are_the_softmax_of_the_decision(many_classes):
    X_train, X_test, y_train, _ = many_classes
    model = SoftmaxRegression().fit(X_train, y_train)
    raw = X_test @ model.coef_.T + model.intercept_
    np.testing.assert_allclose(model.decision_function(X_test), raw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.predict_log_proba(X_test), log_softmax(raw), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X_test), np.exp(log_softmax(raw)), rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(model.predict(X_test), model.classes_[np.argmax(raw, axis=1)])


def test_blocks_and_float32(many_classes, monkeypatch):
    """Predictions cross block boundaries; float32 X is used without a float64 copy."""
    import fastxent.sklearn as module
    X_train, X_test, y_train, _ = many_classes
    model = SoftmaxRegression().fit(X_train, y_train)
    expected = model.predict_proba(X_test)
    monkeypatch.setattr(module, "BLOCK_ROWS", 37)
    np.testing.assert_allclose(model.predict_proba(X_test), expected, rtol=1e-12)
    X32 = X_test.astype(np.float32)
    proba = model.predict_proba(X32)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    model32 = SoftmaxRegression().fit(X_train.astype(np.float32), y_train)
    # L-BFGS-B stops (tol=1e-4) at a slightly different point on float32 gradients
    np.testing.assert_allclose(model32.coef_, model.coef_, atol=5e-3)
    assert np.mean(model32.predict(X32) == model.predict(X_test)) > 0.99


def test_sparse_input_equals_dense(many_classes):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X_train, X_test, y_train, _ = many_classes
    X = np.where(np.abs(X_train) > 1.0, X_train, 0.0)[:600]
    dense = SoftmaxRegression(tol=1e-8, max_iter=500).fit(X, y_train[:600])
    sparse = SoftmaxRegression(tol=1e-8, max_iter=500).fit(scipy_sparse.csr_matrix(X), y_train[:600])
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-6)
    np.testing.assert_allclose(sparse.predict_proba(scipy_sparse.csr_matrix(X_test)),
                               dense.predict_proba(X_test), atol=1e-6)


def test_arbitrary_labels_and_binary():
    X, y = make_classification(400, 5, n_informative=3, n_classes=2, random_state=1)
    labels = np.array(["no", "yes"])[y]
    model = SoftmaxRegression().fit(X, labels)
    np.testing.assert_array_equal(model.classes_, ["no", "yes"])
    assert model.coef_.shape == (2, 5)
    decision = model.decision_function(X)
    assert decision.shape == (400,)
    np.testing.assert_array_equal(model.predict(X), np.where(decision > 0, "yes", "no"))
    # a two-class softmax is the same model as a sigmoid on raw_1 - raw_0 (penalised
    # differently: the softmax penalises both rows), so the predictions agree closely
    theirs = LogisticRegression().fit(X, labels)
    assert np.mean(model.predict(X) == theirs.predict(X)) > 0.98


def test_alpha_overrides_C(many_classes):
    X_train, _, y_train, _ = many_classes
    n = 1000
    by_C = SoftmaxRegression(C=2.0, tol=1e-8).fit(X_train[:n], y_train[:n])
    by_alpha = SoftmaxRegression(C=123.0, alpha=1 / (2.0 * n), tol=1e-8).fit(X_train[:n], y_train[:n])
    np.testing.assert_allclose(by_alpha.coef_, by_C.coef_, rtol=1e-6, atol=1e-8)


def test_no_intercept(many_classes):
    X_train, _, y_train, _ = many_classes
    model = SoftmaxRegression(fit_intercept=False).fit(X_train, y_train)
    np.testing.assert_array_equal(model.intercept_, 0.0)
    theirs = LogisticRegression(fit_intercept=False).fit(X_train, y_train)
    np.testing.assert_allclose(model.coef_, theirs.coef_, atol=1e-4)


def test_warm_start_continues(many_classes):
    X_train, _, y_train, _ = many_classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SoftmaxRegression(max_iter=5, warm_start=True).fit(X_train, y_train)
        first = model.coef_.copy()
        model.fit(X_train, y_train)
    cold = SoftmaxRegression(max_iter=5).fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_allclose(cold(X_train, y_train).coef_, first)   # the cold fit repeats itself
    full = SoftmaxRegression().fit(X_train, y_train)
    assert np.linalg.norm(model.coef_ - full.coef_) < np.linalg.norm(first - full.coef_)


def test_convergence_warning_and_n_iter(many_classes):
    X_train, _, y_train, _ = many_classes
    with pytest.warns(ConvergenceWarning, match="did not converge in 3 iterations"):
        model = SoftmaxRegression(max_iter=3).fit(X_train, y_train)
    assert model.n_iter_.tolist() == [3]


@pytest.mark.parametrize("params, message", [
    ({"C": 0}, "C must be a positive number"),
    ({"C": "1"}, "C must be a positive number"),
    ({"tol": -1}, "tol must be a non-negative number"),
    ({"alpha": -0.1}, "alpha must be None or a non-negative number"),
    ({"max_iter": 0}, "max_iter must be a positive integer"),
    ({"max_iter": 2.5}, "max_iter must be a positive integer"),
])
def test_bad_parameters(params, message):
    X, y = make_classification(50, 4, n_informative=2, random_state=0)
    with pytest.raises(ValueError, match=message):
        SoftmaxRegression(**params).fit(X, y)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="only one class: 1"):
        SoftmaxRegression().fit(np.ones((5, 2)), np.ones(5, dtype=int))

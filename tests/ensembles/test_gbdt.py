"""Tests of mlnotes.ensembles.gbdt (chapter book/ensembles/gbdt.ipynb)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import ensemble as sk
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from mlnotes.ensembles.gbdt import (
    AbsoluteError,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HuberLoss,
    LogLoss,
    SquaredError,
    check_exercise_1,
    check_exercise_2,
    weighted_quantile,
)


# --------------------------------------------------------------------------- data
def tie_free(n: int = 250, d: int = 4, seed: int = 0):
    """Features that are permutations of 0..n-1 (exact bins for n <= 255, exact in float32),
    continuous targets and weights (no ties between split gains), and test points between grid values."""
    rng = np.random.default_rng(seed)
    X = np.stack([rng.permutation(n) for _ in range(d)], axis=1).astype(np.float64)
    y = 0.1 * X[:, 0] + np.sin(X[:, 1] / 20) + rng.normal(size=n)
    weight = rng.uniform(0.5, 2.0, size=n)
    X_test = rng.integers(-5, n + 5, size=(200, d)) + 0.25
    return X, y, weight, X_test, rng


def split(X, y):
    return train_test_split(X, y, test_size=0.25, random_state=0)


# --------------------------------------------------------------------------- (1) scikit-learn conformance
# No expected failures: every check passes.
@parametrize_with_checks(
    [
        GradientBoostingRegressor(n_estimators=8, random_state=0),
        GradientBoostingRegressor(loss="huber", n_estimators=8, random_state=0),
        GradientBoostingRegressor(loss="absolute_error", n_estimators=8, random_state=0),
        GradientBoostingClassifier(n_estimators=8, random_state=0),
    ]
)
def test_sklearn_conformance(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- (2) golden tests
# Leaves of a few rows are avoided: two features may then cut a small node's rows into the same two
# groups, the training fit is identical but a test point can fall on different sides of the two cuts.
@pytest.mark.parametrize(
    "params",
    [
        dict(min_samples_leaf=10),
        dict(learning_rate=0.3, max_depth=2, n_estimators=40, min_samples_leaf=5),
        dict(max_depth=4, n_estimators=30, min_samples_leaf=8),
    ],
)
def test_squared_error_regressor_equals_sklearn(params):
    X, y, weight, X_test, _ = tie_free()
    ours = GradientBoostingRegressor(**params).fit(X, y, sample_weight=weight)
    ref = sk.GradientBoostingRegressor(loss="squared_error", **params).fit(X, y, sample_weight=weight)
    np.testing.assert_allclose(ours.predict(X_test), ref.predict(X_test), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.train_score_, ref.train_score_, rtol=1e-9)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, atol=1e-9)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_log_loss_classifier_equals_sklearn(n_classes):
    X, _, weight, X_test, rng = tie_free(seed=1)
    score = X[:, 0] + X[:, 1] + rng.normal(scale=60, size=len(X))
    y = np.searchsorted(np.quantile(score, np.arange(1, n_classes) / n_classes), score)
    params = dict(n_estimators=30, min_samples_leaf=5)
    ours = GradientBoostingClassifier(**params).fit(X, y, sample_weight=weight)
    ref = sk.GradientBoostingClassifier(**params).fit(X, y, sample_weight=weight)
    np.testing.assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-9)
    np.testing.assert_allclose(ours.decision_function(X_test), ref.decision_function(X_test), atol=1e-8)
    # scikit-learn reports the binomial deviance, twice the mean log loss, for two classes.
    factor = 2 if n_classes == 2 else 1
    np.testing.assert_allclose(factor * ours.train_score_, ref.train_score_, rtol=1e-9)


@pytest.mark.parametrize("data, n_estimators", [("digits", 20), ("breast_cancer", 50), ("classification", 30)])
def test_accuracy_parity(data, n_estimators):
    """Within 1.5 accuracy points of GradientBoostingClassifier and of HistGradientBoostingClassifier
    with comparable settings (depth-3 trees, no leaf-count limit, no early stopping)."""
    if data == "classification":
        X, y = make_classification(n_samples=4000, n_features=20, n_informative=10, random_state=0)
    else:
        X, y = {"digits": load_digits, "breast_cancer": load_breast_cancer}[data](return_X_y=True)
    X_train, X_test, y_train, y_test = split(X, y)
    ours = GradientBoostingClassifier(n_estimators=n_estimators, random_state=0).fit(X_train, y_train)
    references = [
        sk.GradientBoostingClassifier(n_estimators=n_estimators, random_state=0),
        sk.HistGradientBoostingClassifier(
            max_iter=n_estimators, max_depth=3, max_leaf_nodes=None, min_samples_leaf=1, early_stopping=False,
            random_state=0,
        ),
    ]
    with threadpool_limits(1):  # OpenMP threads on a busy 2-core machine only slow it down
        for ref in references:
            ref.fit(X_train, y_train)
            assert abs(ours.score(X_test, y_test) - ref.score(X_test, y_test)) <= 0.015, type(ref).__name__


# --------------------------------------------------------------------------- (3) properties
def numerical_gradient(loss, y, raw, eps=1e-6):
    """-dL_i/dF_ik by central differences of the per-row loss, shape like raw."""
    grad = np.zeros_like(raw)
    for i in range(len(y)):
        for k in range(raw.shape[1]):
            up, down = raw[i : i + 1].copy(), raw[i : i + 1].copy()
            up[0, k] += eps
            down[0, k] -= eps
            w = np.ones(1)
            grad[i, k] = -(loss(y[i : i + 1], up, w) - loss(y[i : i + 1], down, w)) / (2 * eps)
    return grad


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n_classes=st.integers(2, 4))
def test_pseudo_residuals_are_negative_gradients(seed, n_classes):
    rng = np.random.default_rng(seed)
    n = 12
    y_reg = rng.normal(size=n) * 3
    raw_reg = rng.normal(size=(n, 1))
    huber = HuberLoss(alpha=0.7)
    huber.begin_stage(y_reg, raw_reg, np.ones(n))
    # Squared error drops the factor 2 of its gradient (it only rescales the tree; the leaf refit undoes it).
    cases = [
        (SquaredError(), y_reg, raw_reg, 0.5),
        (AbsoluteError(), y_reg, raw_reg, 1.0),
        (huber, y_reg, raw_reg, 1.0),
    ]
    log_loss = LogLoss(n_classes)
    y_cls = rng.integers(0, n_classes, size=n)
    cases.append((log_loss, y_cls, rng.normal(size=(n, log_loss.n_trees_per_stage)), 1.0))
    for loss, y, raw, scale in cases:
        np.testing.assert_allclose(loss.negative_gradient(y, raw), scale * numerical_gradient(loss, y, raw), atol=1e-5)


def test_squared_error_pseudo_residual_is_the_residual():
    y = np.array([1.0, -2.0, 3.5])
    raw = np.array([[0.5], [0.0], [4.0]])
    np.testing.assert_array_equal(SquaredError().negative_gradient(y, raw)[:, 0], y - raw[:, 0])


# Huber's prior is the median (as scikit-learn), a robust start rather than the Huber minimiser.
@pytest.mark.parametrize("loss", [SquaredError(), AbsoluteError(), LogLoss(2), LogLoss(3)])
def test_prior_minimises_the_loss_among_constants(loss):
    rng = np.random.default_rng(0)
    n = 101
    y = rng.integers(0, 3 if isinstance(loss, LogLoss) else 100, size=n)
    if isinstance(loss, LogLoss) and loss.n_classes == 2:
        y = y % 2
    y = y if isinstance(loss, LogLoss) else rng.standard_cauchy(n)
    w = rng.uniform(0.5, 2, size=n)
    f0 = loss.init_raw(y, w)
    best = loss(y, np.tile(f0, (n, 1)), w)
    for shift in rng.normal(scale=0.3, size=(20, len(f0))):
        assert best <= loss(y, np.tile(f0 + shift, (n, 1)), w) + 1e-9


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.integers(-20, 20), min_size=1, max_size=30),
    q=st.sampled_from([0.1, 0.25, 0.5, 0.9, 1.0]),
)
def test_weighted_quantile_matches_numpy_with_unit_weights(values, q):
    values = np.array(values, dtype=np.float64)
    got = weighted_quantile(values, np.ones(len(values)), q)[0]
    assert got == pytest.approx(np.quantile(values, q, method="averaged_inverted_cdf"))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_weighted_quantile_of_integer_weights_equals_repeating_rows(data):
    n = data.draw(st.integers(1, 15))
    values = np.array(data.draw(st.lists(st.floats(-5, 5), min_size=n, max_size=n)))
    counts = np.array(data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)))
    groups = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    present, groups = np.unique(groups, return_inverse=True)
    q = data.draw(st.sampled_from([0.3, 0.5, 0.9]))
    weighted = weighted_quantile(values, counts.astype(float), q, groups, len(present))
    repeated = weighted_quantile(
        np.repeat(values, counts), np.ones(counts.sum()), q, np.repeat(groups, counts), len(present)
    )
    np.testing.assert_allclose(weighted, repeated)


def leaf_rows(model, X):
    """Leaf index of each row in the first tree."""
    return model.estimators_[0, 0].tree_.apply(X)


def test_absolute_error_leaves_hold_the_median_residual():
    X, y, _, _, _ = tie_free()
    model = GradientBoostingRegressor(loss="absolute_error", n_estimators=1, learning_rate=1.0).fit(X, y)
    residual = y - np.median(y)
    leaves = leaf_rows(model, X)
    for leaf in np.unique(leaves):
        assert model.estimators_[0, 0].tree_.value[leaf, 0] == pytest.approx(np.median(residual[leaves == leaf]))


def test_huber_leaves_take_friedmans_robust_step():
    X, y, _, _, _ = tie_free()
    model = GradientBoostingRegressor(loss="huber", alpha=0.8, n_estimators=1, learning_rate=1.0).fit(X, y)
    residual = y - np.median(y)
    delta = np.quantile(np.abs(residual), 0.8, method="averaged_inverted_cdf")
    leaves = leaf_rows(model, X)
    for leaf in np.unique(leaves):
        r = residual[leaves == leaf]
        median = np.median(r)
        expected = median + np.mean(np.sign(r - median) * np.minimum(delta, np.abs(r - median)))
        assert model.estimators_[0, 0].tree_.value[leaf, 0] == pytest.approx(expected)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_log_loss_leaves_take_one_newton_step(n_classes):
    X, _, _, _, rng = tie_free()
    y = rng.integers(0, n_classes, size=len(X))
    model = GradientBoostingClassifier(n_estimators=1).fit(X, y)
    prior = np.bincount(y) / len(y)
    for k in range(model.n_trees_per_iteration_):
        p = prior[1] if n_classes == 2 else prior[k]
        target = (y == (1 if n_classes == 2 else k)).astype(float)
        tree = model.estimators_[0, k].tree_
        leaves = tree.apply(X)
        for leaf in np.unique(leaves):
            r = target[leaves == leaf] - p
            expected = r.sum() / (len(r) * p * (1 - p)) * (1 if n_classes == 2 else (n_classes - 1) / n_classes)
            assert tree.value[leaf, 0] == pytest.approx(expected)


def test_squared_error_training_loss_never_increases():
    X, y, weight, _, _ = tie_free()
    for rate in (0.1, 0.5, 1.0):
        model = GradientBoostingRegressor(learning_rate=rate, n_estimators=40).fit(X, y, sample_weight=weight)
        assert np.all(np.diff(model.train_score_) <= 1e-9)


@pytest.mark.parametrize("subsample", [1.0, 0.6])
def test_training_predictions_are_updated_without_repredicting(subsample):
    """train_score_ comes from raw predictions updated in place during fit (in-bag rows through
    leaf_of_row, out-of-bag rows through the tree); it must equal the loss of the staged predictions."""
    X, y, _, _, _ = tie_free()
    model = GradientBoostingRegressor(subsample=subsample, n_estimators=15, random_state=3).fit(X, y)
    rng = np.random.default_rng(3)  # replays fit's per-stage draws of the in-bag rows
    n_in_bag = int(subsample * len(X))
    for stage, pred in enumerate(model.staged_predict(X)):
        rows = np.arange(len(X))
        if n_in_bag < len(X):
            rows = rng.choice(len(X), n_in_bag, replace=False)
        assert np.mean((y[rows] - pred[rows]) ** 2) == pytest.approx(model.train_score_[stage], rel=1e-10)


def test_staged_outputs_are_consistent():
    X, y = load_breast_cancer(return_X_y=True)
    model = GradientBoostingClassifier(n_estimators=12, random_state=0).fit(X, y)
    staged = list(model.staged_predict_proba(X))
    assert len(staged) == 12
    np.testing.assert_allclose(staged[-1], model.predict_proba(X))
    np.testing.assert_allclose(staged[-1].sum(axis=1), 1.0)
    np.testing.assert_array_equal(list(model.staged_predict(X))[-1], model.predict(X))
    np.testing.assert_allclose(list(model.staged_decision_function(X))[-1], model.decision_function(X))
    reg = GradientBoostingRegressor(n_estimators=7).fit(X, y.astype(float))
    np.testing.assert_allclose(list(reg.staged_predict(X))[-1], reg.predict(X))
    assert model.feature_importances_.sum() == pytest.approx(1.0)


def test_robust_losses_resist_outliers():
    """5% of the targets are shifted by 5 to 10; the error is measured against the clean curve."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 6, size=(400, 1))
    y = np.sin(X[:, 0]) + rng.normal(scale=0.1, size=400)
    outliers = rng.choice(400, 20, replace=False)
    y[outliers] += rng.choice([-1, 1], 20) * rng.uniform(5, 10, 20)
    X_test = np.linspace(0, 6, 300)[:, None]
    error = {}
    for loss in ("squared_error", "absolute_error", "huber"):
        pred = GradientBoostingRegressor(loss=loss).fit(X, y).predict(X_test)
        error[loss] = np.mean((pred - np.sin(X_test[:, 0])) ** 2)
    assert error["huber"] < error["squared_error"] / 5
    assert error["absolute_error"] < error["squared_error"] / 5


def test_subsampling_is_seeded():
    X, y, _, X_test, _ = tie_free()
    a = GradientBoostingRegressor(subsample=0.5, n_estimators=10, random_state=1).fit(X, y).predict(X_test)
    b = GradientBoostingRegressor(subsample=0.5, n_estimators=10, random_state=1).fit(X, y).predict(X_test)
    c = GradientBoostingRegressor(subsample=0.5, n_estimators=10, random_state=2).fit(X, y).predict(X_test)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_exercise_checkers(capsys):
    assert check_exercise_1(2 / 3)
    assert not check_exercise_1(0.0)
    assert check_exercise_2([-1, -0.5, 0.2, 1])
    assert not check_exercise_2([-3, -0.5, 0.2, 4])
    assert "Not yet" in capsys.readouterr().out


# --------------------------------------------------------------------------- (4) smoke
@pytest.mark.parametrize(
    "model",
    [
        GradientBoostingRegressor(loss="squared_error", n_estimators=5),
        GradientBoostingRegressor(loss="absolute_error", n_estimators=5),
        GradientBoostingRegressor(loss="huber", n_estimators=5, subsample=0.7, random_state=0),
        GradientBoostingClassifier(n_estimators=5),
        GradientBoostingClassifier(n_estimators=5, subsample=0.5, max_features="sqrt", random_state=0),
    ],
)
def test_tiny_budget_improves_the_objective(model):
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    if isinstance(model, GradientBoostingRegressor):
        y = y.astype(float)
    model.fit(X, y)
    n = len(y)
    loss = model._loss
    prior = np.tile(model.init_raw_, (n, 1))
    if isinstance(loss, HuberLoss):
        loss.begin_stage(y, prior, np.ones(n))
    assert model.train_score_.shape == (5,)
    assert model.train_score_[-1] < loss(y, prior, np.ones(n))


# --------------------------------------------------------------------------- (5) bad input
@pytest.mark.parametrize(
    "params, match",
    [
        (dict(loss="exponential"), "loss must be one of"),
        (dict(learning_rate=0.0), "learning_rate must be a positive"),
        (dict(learning_rate="fast"), "learning_rate must be a positive"),
        (dict(n_estimators=0), "n_estimators must be an int >= 1"),
        (dict(subsample=1.5), r"subsample must be a number in \(0.0, 1.0\]"),
        (dict(subsample=0.0), r"subsample must be a number in \(0.0, 1.0\]"),
        (dict(max_depth=0), "max_depth must be an int >= 1"),
        (dict(min_samples_leaf=0), "min_samples_leaf must be an int >= 1"),
        (dict(max_bins=300), "max_bins must be <= 256"),
        (dict(max_features=50), r"max_features must be in \[1, n_features=4\]"),
        (dict(alpha=1.0), r"alpha must be a number in \(0, 1\)"),
    ],
)
def test_bad_parameters_are_named(params, match):
    X, y, _, _, _ = tie_free(n=30)
    with pytest.raises(ValueError, match=match):
        GradientBoostingRegressor(**params).fit(X, y)


def test_bad_inputs_are_named():
    X, y, _, _, _ = tie_free(n=30)
    model = GradientBoostingRegressor(n_estimators=2)
    with pytest.raises(NotFittedError):
        model.predict(X)
    with pytest.raises(NotFittedError):
        next(GradientBoostingClassifier().staged_predict_proba(X))
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.fit(X_nan, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.fit(X, y[:-1])
    model.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but GradientBoostingRegressor is expecting 4"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        model.fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="1 class with positive sample weight"):
        GradientBoostingClassifier().fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="Unknown label type"):
        GradientBoostingClassifier().fit(X, y)

"""Tests of mlnotes/ensembles/adaboost.py, taught in book/ensembles/adaboost.ipynb."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from sklearn import ensemble as sk_ensemble
from sklearn import tree as sk_tree
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlnotes.ensembles import AdaBoostClassifier, DecisionTreeClassifier
from mlnotes.ensembles.adaboost import (
    adaboost_binary,
    binary_alpha,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    margins,
    reweight,
    samme_alpha,
    training_error_bound,
)


def sk_stump() -> sk_tree.DecisionTreeClassifier:
    return sk_tree.DecisionTreeClassifier(max_depth=1)


def continuous_problem(n_classes: int, n_samples: int = 200, seed: int = 0):
    """Continuous features (no two splits tie), at most 255 distinct values per feature (our binning is exact)."""
    return make_classification(
        n_samples=n_samples, n_features=6, n_informative=4, n_classes=n_classes, n_clusters_per_class=1, random_state=seed
    )


def assert_same_ensemble(ours, ref, X):
    np.testing.assert_allclose(ours.estimator_weights_, ref.estimator_weights_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.estimator_errors_, ref.estimator_errors_, rtol=1e-10, atol=1e-12)
    assert len(ours.estimators_) == len(ref.estimators_)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-10)


# --------------------------------------------------------------------------- (1) conformance
# No expected failures: every check passes (scikit-learn's AdaBoostClassifier passes them all too).
@parametrize_with_checks(
    [
        AdaBoostClassifier(n_estimators=5, learning_rate=0.5),
        AdaBoostClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=5),
        AdaBoostClassifier(sk_stump(), n_estimators=5),
    ]
)
def test_sklearn_conformance(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- (2) golden tests
@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("learning_rate", [1.0, 0.3])
def test_same_ensemble_as_sklearn_with_sklearn_stumps(n_classes, learning_rate):
    X, y = continuous_problem(n_classes, n_samples=400)
    kwargs = dict(n_estimators=30, learning_rate=learning_rate, random_state=0)
    ours = AdaBoostClassifier(sk_stump(), **kwargs).fit(X, y)
    ref = sk_ensemble.AdaBoostClassifier(sk_stump(), **kwargs).fit(X, y)
    assert_same_ensemble(ours, ref, X)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, atol=1e-12)
    for a, b in zip(ours.staged_decision_function(X), ref.staged_decision_function(X), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_our_stumps_give_sklearns_ensemble_when_binning_is_exact(n_classes):
    X, y = continuous_problem(n_classes, n_samples=200, seed=1)
    ours = AdaBoostClassifier(n_estimators=25).fit(X, y)  # default learner: our own stump
    ref = sk_ensemble.AdaBoostClassifier(n_estimators=25, random_state=0).fit(X, y)
    assert_same_ensemble(ours, ref, X)


def test_sample_weights_and_string_labels_match_sklearn():
    X, y = continuous_problem(3, n_samples=300, seed=2)
    labels = np.array(["cat", "dog", "emu"])[y]
    weight = np.random.default_rng(0).uniform(0, 2, len(y))
    ours = AdaBoostClassifier(sk_stump(), n_estimators=20, random_state=0).fit(X, labels, weight)
    ref = sk_ensemble.AdaBoostClassifier(sk_stump(), n_estimators=20, random_state=0).fit(X, labels, weight)
    assert_same_ensemble(ours, ref, X)


def test_perfect_first_learner_stops_like_sklearn():
    X = np.linspace(0, 1, 40)[:, None]
    y = (X[:, 0] > 0.5).astype(int)
    ours = AdaBoostClassifier(n_estimators=10).fit(X, y)
    ref = sk_ensemble.AdaBoostClassifier(n_estimators=10).fit(X, y)
    assert len(ours.estimators_) == 1
    assert_same_ensemble(ours, ref, X)


def test_conflicting_duplicates_match_sklearn():
    """Rows that no learner can separate keep every error high: the run is long and tight."""
    X = np.array([[0.0], [0.0], [0.0], [1.0], [1.0], [2.0]])
    y = np.array([0, 0, 1, 1, 0, 1])
    ours = AdaBoostClassifier(n_estimators=15).fit(X, y)
    ref = sk_ensemble.AdaBoostClassifier(n_estimators=15, random_state=0).fit(X, y)
    assert_same_ensemble(ours, ref, X)


@pytest.mark.parametrize(
    ("loader", "depth", "n_estimators"),
    [(load_breast_cancer, 1, 100), (load_digits, 1, 100), (load_digits, 3, 30)],
)
def test_accuracy_parity_with_sklearn(loader, depth, n_estimators):
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    ours = AdaBoostClassifier(DecisionTreeClassifier(max_depth=depth), n_estimators=n_estimators, random_state=0)
    ref = sk_ensemble.AdaBoostClassifier(
        sk_tree.DecisionTreeClassifier(max_depth=depth), n_estimators=n_estimators, random_state=0
    )
    ours_acc = ours.fit(X_train, y_train).score(X_test, y_test)
    ref_acc = ref.fit(X_train, y_train).score(X_test, y_test)
    assert abs(ours_acc - ref_acc) <= 0.015, (ours_acc, ref_acc)


# --------------------------------------------------------------------------- (3) properties
@settings(max_examples=60, deadline=None)
@given(
    error=st.floats(0.01, 0.85),
    n_classes=st.integers(2, 10),
    seed=st.integers(0, 2**16),
)
def test_reweighting_leaves_the_last_learner_at_chance(error, n_classes, seed):
    """After the update the learner just used has weighted error exactly 1 - 1/K, chance level."""
    assume(error < 1 - 1 / n_classes)
    rng = np.random.default_rng(seed)
    weight = rng.uniform(0.1, 1, 50)
    incorrect = np.zeros(50, dtype=bool)
    incorrect[:10] = True
    weight[incorrect] *= error / weight[incorrect].sum()
    weight[~incorrect] *= (1 - error) / weight[~incorrect].sum()
    alpha = samme_alpha(error, n_classes)
    new = reweight(weight, incorrect, alpha)
    assert new.sum() == pytest.approx(1.0)
    assert new[incorrect].sum() == pytest.approx(1 - 1 / n_classes, rel=1e-9)
    # Mistakes gain exp(alpha) relative to correct points; the relative weights within each group are unchanged.
    ratio = (new / weight)[incorrect] / (new / weight)[~incorrect][0]
    np.testing.assert_allclose(ratio, np.exp(alpha), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(error=st.floats(0.01, 0.49), n_classes=st.integers(2, 8))
def test_alphas_minimise_the_exponential_loss(error, n_classes):
    """binary: argmin (1-e) exp(-a) + e exp(a) = 1/2 ln((1-e)/e);
    SAMME: argmin (1-e) exp(-b/(K-1)) + e exp(b/(K-1)^2) = (K-1)^2/K * alpha_SAMME."""
    binary = minimize_scalar(lambda a: (1 - error) * np.exp(-a) + error * np.exp(a), bracket=(0, 1), tol=1e-12)
    assert binary.x == pytest.approx(binary_alpha(error), abs=1e-6)
    K = n_classes
    loss = minimize_scalar(
        lambda b: (1 - error) * np.exp(-b / (K - 1)) + error * np.exp(b / (K - 1) ** 2), bracket=(0, 1), tol=1e-12
    )
    assert loss.x == pytest.approx((K - 1) ** 2 / K * samme_alpha(error, K), rel=1e-5, abs=1e-6)
    assert samme_alpha(error, 2) == pytest.approx(2 * binary_alpha(error))


def test_binary_adaboost_and_samme_agree():
    X, y = continuous_problem(2, n_samples=400, seed=3)
    binary = adaboost_binary(X, y, n_estimators=40, estimator=sk_stump(), random_state=0)
    samme = AdaBoostClassifier(sk_stump(), n_estimators=40, random_state=0).fit(X, y)
    np.testing.assert_allclose(samme.estimator_weights_, 2 * binary.alphas, rtol=1e-10)
    np.testing.assert_allclose(samme.estimator_errors_, binary.errors, rtol=1e-10)
    X_new = np.random.default_rng(1).normal(size=(500, X.shape[1])) * 2
    np.testing.assert_array_equal(samme.predict(X_new), binary.predict(X_new))
    # scikit-learn's two-class score is 2 (V_1 - V_0) / sum(alpha_SAMME) = 4 F / sum(alpha_SAMME).
    np.testing.assert_allclose(
        samme.decision_function(X_new) * samme.estimator_weights_.sum() / 4, binary.decision_function(X_new), atol=1e-10
    )


def test_binary_weights_follow_the_update_rule():
    X, y = continuous_problem(2, n_samples=150, seed=4)
    model = adaboost_binary(X, y, n_estimators=10, random_state=0)
    sign = np.where(y == model.classes[1], 1, -1)
    for t in range(len(model.weights) - 1):
        h = np.where(model.estimators[t].predict(X) == model.classes[1], 1, -1)
        expected = model.weights[t] * np.exp(-model.alphas[t] * sign * h)
        np.testing.assert_allclose(model.weights[t + 1], expected / expected.sum(), rtol=1e-12)
        assert model.weights[t][h != sign].sum() == pytest.approx(model.errors[t])


def test_training_error_stays_under_the_bounds():
    X, y = load_breast_cancer(return_X_y=True)
    model = AdaBoostClassifier(n_estimators=60, random_state=0).fit(X, y)
    train_error = 1 - np.fromiter(model.staged_score(X, y), float)
    product, exponential = training_error_bound(model.estimator_errors_[: len(model.estimators_)])
    assert np.all(train_error <= product) and np.all(product <= exponential)
    # The product bound is (1/n) sum exp(-y F): check the identity with the loop version.
    binary = adaboost_binary(X, y, n_estimators=30, random_state=0)
    sign = np.where(y == binary.classes[1], 1, -1)
    np.testing.assert_allclose(binary.normalizers, 2 * np.sqrt(binary.errors * (1 - binary.errors)), rtol=1e-10)
    np.testing.assert_allclose(
        np.mean(np.exp(-sign * binary.decision_function(X))), np.prod(binary.normalizers), rtol=1e-8
    )


def test_learning_rate_scales_every_vote():
    X, y = continuous_problem(3, n_samples=200)
    model = AdaBoostClassifier(n_estimators=15, learning_rate=0.25, random_state=0).fit(X, y)
    e = model.estimator_errors_
    np.testing.assert_allclose(model.estimator_weights_, 0.25 * (np.log((1 - e) / e) + np.log(2)), rtol=1e-12)


def test_predictions_are_consistent():
    X, y = continuous_problem(4, n_samples=300)
    model = AdaBoostClassifier(n_estimators=20, random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], model.predict(X))
    np.testing.assert_allclose(model.decision_function(X).sum(axis=1), 0.0, atol=1e-12)  # symmetric SAMME codes
    *_, last = model.staged_predict(X)
    np.testing.assert_array_equal(last, model.predict(X))
    assert list(model.staged_score(X, y))[-1] == pytest.approx(model.score(X, y))
    importances = model.feature_importances_
    assert importances.sum() == pytest.approx(1.0) and np.all(importances >= 0)


def test_margins_are_positive_exactly_on_correct_points():
    X, y = continuous_problem(3, n_samples=300)
    model = AdaBoostClassifier(n_estimators=30, random_state=0).fit(X, y)
    m = margins(model, X, y)
    assert np.all(np.abs(m) <= 1 + 1e-12)
    correct = model.predict(X) == y
    assert np.all(m[correct] >= 0) and np.all(m[~correct] <= 0)
    X2, y2 = continuous_problem(2, n_samples=200)
    binary = AdaBoostClassifier(n_estimators=10, random_state=0).fit(X2, y2)
    alpha_sum = binary.estimator_weights_.sum()
    sign = np.where(y2 == 1, 1, -1)
    # two classes: margin = y (V_1 - V_0) / sum(alpha) = y * decision / 2
    np.testing.assert_allclose(margins(binary, X2, y2), sign * binary.decision_function(X2) / 2, atol=1e-12)
    assert margins(binary, X2, y2, n_rounds=1).shape == (200,) and alpha_sum > 0


def test_row_order_does_not_matter():
    X, y = continuous_problem(3, n_samples=300, seed=5)
    perm = np.random.default_rng(0).permutation(len(y))
    a = AdaBoostClassifier(n_estimators=20).fit(X, y)
    b = AdaBoostClassifier(n_estimators=20).fit(X[perm], y[perm])
    np.testing.assert_allclose(a.estimator_weights_, b.estimator_weights_, rtol=1e-9)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


# --------------------------------------------------------------------------- (4) smoke
def test_tiny_budget_lowers_the_exponential_loss():
    X, y = load_breast_cancer(return_X_y=True)
    sign = np.where(y == 1, 1, -1)
    model = AdaBoostClassifier(n_estimators=3, random_state=0).fit(X, y)
    # (1/n) sum exp(-y F_t) with F_t = sum_s alpha_s h_s (binary coding): it starts at 1 and must fall.
    staged_F = [d * model.estimator_weights_[: t + 1].sum() / 4 for t, d in enumerate(model.staged_decision_function(X))]
    losses = [1.0] + [np.mean(np.exp(-sign * F)) for F in staged_F]
    assert np.all(np.diff(losses) < 0), losses
    binary = adaboost_binary(X, y, n_estimators=3, random_state=0)
    assert np.prod(binary.normalizers) < 1 and binary.predict(X).shape == y.shape


# --------------------------------------------------------------------------- (5) bad input
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_estimators": 0}, "n_estimators must be an int >= 1"),
        ({"n_estimators": 2.5}, "n_estimators must be an int >= 1"),
        ({"learning_rate": 0.0}, "learning_rate must be a positive finite number"),
        ({"learning_rate": -1}, "learning_rate must be a positive finite number"),
        ({"learning_rate": float("inf")}, "learning_rate must be a positive finite number"),
        ({"learning_rate": "fast"}, "learning_rate must be a positive finite number"),
        ({"estimator": KNeighborsClassifier()}, "estimator must accept sample_weight"),
    ],
)
def test_bad_parameters_raise_value_error(params, match):
    X, y = continuous_problem(2, n_samples=50)
    with pytest.raises(ValueError, match=match):
        AdaBoostClassifier(**params).fit(X, y)


def test_bad_estimator_type_raises_type_error():
    X, y = continuous_problem(2, n_samples=50)
    with pytest.raises(TypeError, match="estimator must be a scikit-learn style classifier"):
        AdaBoostClassifier(estimator="stump").fit(X, y)


def test_bad_data_raises():
    X, y = continuous_problem(2, n_samples=50)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AdaBoostClassifier().fit(X_nan, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        AdaBoostClassifier().fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        AdaBoostClassifier().fit(X, y + 0.5)
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        AdaBoostClassifier().fit(X, y, sample_weight=-np.ones(len(y)))
    model = AdaBoostClassifier(n_estimators=3).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="only labels from model.classes_"):
        margins(model, X, y + 7)
    with pytest.raises(ValueError, match="n_rounds must be at most the number of fitted learners"):
        margins(model, X, y, n_rounds=4)


def test_unfitted_raises_not_fitted_error():
    X, _ = continuous_problem(2, n_samples=20)
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(AdaBoostClassifier(), method)(X)
    with pytest.raises(NotFittedError):
        AdaBoostClassifier().feature_importances_


def test_a_first_learner_at_chance_cannot_start():
    X = np.zeros((10, 2))  # nothing to split on: the stump predicts one class and errs on half
    y = np.array([0, 1] * 5)
    with pytest.raises(ValueError, match="no better than chance"):
        AdaBoostClassifier().fit(X, y)
    with pytest.raises(ValueError, match="no better than chance"):
        adaboost_binary(X, y, n_estimators=3)


def test_adaboost_binary_rejects_other_than_two_classes():
    X, y = continuous_problem(3, n_samples=60)
    with pytest.raises(ValueError, match="two classes"):
        adaboost_binary(X, y, n_estimators=2)
    with pytest.raises(ValueError, match="n_estimators must be an int >= 1"):
        adaboost_binary(X, y % 2, n_estimators=0)


def test_exercise_checkers(capsys):
    assert check_exercise_1(0.5 * np.log(4))
    assert not check_exercise_1(0.2)
    assert check_exercise_2(np.log(0.15 / 0.85) + np.log(9))
    assert not check_exercise_2(np.log(0.15 / 0.85))
    assert check_exercise_3(2 / 3)
    assert not check_exercise_3(0.5)
    assert not check_exercise_3("2/3")
    assert "Hint" in capsys.readouterr().out

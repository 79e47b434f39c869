"""Tests of mlnotes/ensembles/random_forest.py, taught in book/ensembles/random_forest.ipynb."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import ensemble as sk_ensemble
from sklearn import tree as sk_tree
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, make_classification, make_friedman1
from sklearn.exceptions import NotFittedError
from sklearn.inspection import permutation_importance
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlnotes.ensembles import RandomForestClassifier, RandomForestRegressor
from mlnotes.ensembles._base import bootstrap_counts
from mlnotes.ensembles.cart import DecisionTreeClassifier, DecisionTreeRegressor
from mlnotes.ensembles.random_forest import check_exercise_1, check_exercise_2, tree_correlation


def split(X, y, seed: int = 0, test_size: float = 0.25):
    return train_test_split(X, y, test_size=test_size, random_state=seed)


# --------------------------------------------------------------------------- (1) conformance
def _expected_failed_checks(estimator):
    # scikit-learn's own RandomForestClassifier/Regressor fail this check too (verified with
    # sklearn 1.9: check_estimator(RandomForestClassifier(n_estimators=5), on_fail=None) reports it
    # failed): a bootstrap draws rows, not weight units, so weight 2 is not the same as a repeated row.
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "bootstrap samples rows, so integer weights are not equivalent to repeated rows (sklearn's forests fail it too)"
        )
    }


@parametrize_with_checks(
    [RandomForestClassifier(n_estimators=5, random_state=0), RandomForestRegressor(n_estimators=5, random_state=0)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_conformance(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- (2) golden tests
@pytest.mark.parametrize("loader", [load_digits, load_breast_cancer])
def test_accuracy_parity_with_sklearn(loader):
    """Mean held-out accuracy over three seeds within 1.5 points of scikit-learn's forest."""
    X_train, X_test, y_train, y_test = split(*loader(return_X_y=True))
    ours, ref = [], []
    for seed in range(3):
        ours.append(RandomForestClassifier(n_estimators=40, random_state=seed).fit(X_train, y_train).score(X_test, y_test))
        ref.append(sk_ensemble.RandomForestClassifier(n_estimators=40, random_state=seed).fit(X_train, y_train).score(X_test, y_test))
    assert abs(np.mean(ours) - np.mean(ref)) <= 0.015, (ours, ref)


def test_regression_parity_with_sklearn():
    X_train, X_test, y_train, y_test = split(*make_friedman1(n_samples=600, random_state=0))
    ours = RandomForestRegressor(n_estimators=20, random_state=0).fit(X_train, y_train).score(X_test, y_test)
    ref = sk_ensemble.RandomForestRegressor(n_estimators=20, random_state=0).fit(X_train, y_train).score(X_test, y_test)
    assert abs(ours - ref) <= 0.03, (ours, ref)


def test_forest_without_randomness_is_sklearns_tree():
    """No bootstrap and all features: every tree is plain CART, equal to scikit-learn's on exactly binned data."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 250, size=(600, 5)) / 8.0
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 3, 600) > 20).astype(int)
    w = rng.uniform(0.5, 1.5, 600)  # continuous weights: no two different splits tie
    forest = RandomForestClassifier(n_estimators=3, max_features=None, bootstrap=False, max_depth=4).fit(X, y, w)
    # min_impurity_decrease: scikit-learn would otherwise split nodes whose impurity is rounding noise.
    ref = sk_tree.DecisionTreeClassifier(max_depth=4, random_state=0, min_impurity_decrease=1e-9).fit(X, y, w)
    X_new = rng.uniform(-1, 33, size=(400, 5))
    np.testing.assert_allclose(forest.predict_proba(X_new), ref.predict_proba(X_new), atol=1e-12)
    np.testing.assert_allclose(forest.feature_importances_, ref.feature_importances_, atol=1e-9)


def test_importances_find_the_informative_features_like_sklearn():
    # shuffle=False: the first 3 columns are the informative ones, the other 7 are noise.
    X, y = make_classification(n_samples=600, n_features=10, n_informative=3, n_redundant=0, shuffle=False, random_state=0)
    ours = RandomForestClassifier(n_estimators=40, random_state=0).fit(X, y)
    ref = sk_ensemble.RandomForestClassifier(n_estimators=40, random_state=0).fit(X, y)
    assert set(np.argsort(ours.feature_importances_)[-3:]) == {0, 1, 2}
    assert set(np.argsort(ref.feature_importances_)[-3:]) == {0, 1, 2}
    assert np.abs(ours.feature_importances_ - ref.feature_importances_).max() < 0.04
    perm = permutation_importance(ours, X, y, n_repeats=3, random_state=0).importances_mean
    assert set(np.argsort(perm)[-3:]) == {0, 1, 2}


# --------------------------------------------------------------------------- (3) properties
def test_forest_averages_its_trees():
    X, y = load_breast_cancer(return_X_y=True)
    labels = np.array(["benign", "malignant"])[y]  # arbitrary labels go through classes_
    forest = RandomForestClassifier(n_estimators=7, random_state=0).fit(X, labels)
    proba = forest.predict_proba(X)
    np.testing.assert_allclose(proba, np.mean([t.predict_proba(X) for t in forest.estimators_], axis=0))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(forest.predict(X)) <= set(labels)
    assert all(isinstance(t, DecisionTreeClassifier) for t in forest.estimators_)
    assert forest.apply(X).shape == (len(X), 7)


def test_each_tree_is_cart_on_its_bootstrap_counts():
    """Tree b's seed regenerates its bootstrap draw; refitting one CART tree with those counts as weights gives tree b."""
    X, y = make_friedman1(n_samples=300, random_state=0)
    X = np.round(X * 200) / 200  # at most 201 distinct values per feature: binning the subset changes nothing
    forest = RandomForestRegressor(n_estimators=4, max_features=None, max_depth=6, random_state=1).fit(X, y)
    for b, tree in enumerate(forest.estimators_):
        counts = bootstrap_counts(len(X), np.random.default_rng(tree.random_state))
        np.testing.assert_array_equal(np.bincount(forest.estimators_samples_[b], minlength=len(X)), counts)
        refit = DecisionTreeRegressor(max_depth=6).fit(X, y, sample_weight=counts)
        np.testing.assert_allclose(tree.predict(X), refit.predict(X))


def test_oob_attributes_match_a_direct_computation():
    X, y = load_breast_cancer(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=25, oob_score=True, random_state=0).fit(X, y)
    total, n_oob = np.zeros((len(X), 2)), np.zeros(len(X))
    for tree in forest.estimators_:
        out = bootstrap_counts(len(X), np.random.default_rng(tree.random_state)) == 0
        total[out] += tree.predict_proba(X[out])
        n_oob += out
    assert n_oob.min() > 0
    np.testing.assert_allclose(forest.oob_decision_function_, total / n_oob[:, None])
    assert forest.oob_score_ == pytest.approx(np.mean(np.argmax(total, axis=1) == y))
    staged = forest.staged_oob_score(X, y)
    assert staged.shape == (25,) and staged[-1] == pytest.approx(forest.oob_score_)

    Xr, yr = load_diabetes(return_X_y=True)
    reg = RandomForestRegressor(n_estimators=25, max_depth=5, oob_score=True, random_state=0).fit(Xr, yr)
    assert reg.staged_oob_score(Xr, yr)[-1] == pytest.approx(reg.oob_score_)
    assert np.all(np.isfinite(reg.oob_prediction_))


def test_oob_error_tracks_the_held_out_error():
    X, y = make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)
    X_train, X_test, y_train, y_test = split(X, y, test_size=0.5)
    forest = RandomForestClassifier(n_estimators=60, oob_score=True, random_state=0).fit(X_train, y_train)
    # 1000 test rows: the standard error of the difference of two accuracies near 0.87 is about 0.015.
    assert abs(forest.oob_score_ - forest.score(X_test, y_test)) <= 0.03


def test_too_few_trees_leave_rows_without_oob_prediction():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.warns(UserWarning, match="no OOB prediction"):
        forest = RandomForestClassifier(n_estimators=2, oob_score=True, random_state=0).fit(X, y)
    assert np.isnan(forest.oob_decision_function_).any()
    assert 0 < forest.oob_score_ <= 1


def test_feature_sampling_decorrelates_trees():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, _ = split(X, y)
    rho = [
        tree_correlation(RandomForestClassifier(n_estimators=8, max_features=k, random_state=0).fit(X_train, y_train), X_test)
        for k in (1, 64)
    ]
    assert rho[0] < rho[1]
    assert RandomForestClassifier(max_features="log2").fit(X_train[:100], y_train[:100]).estimators_[0].tree_.feature.max() < 64


def test_sample_weight_multiplies_the_counts():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 4)), rng.normal(size=80)
    counts = rng.integers(0, 4, size=80)
    kwargs = dict(n_estimators=3, max_features=None, bootstrap=False, max_depth=5, random_state=0)
    a = RandomForestRegressor(**kwargs).fit(X, y, sample_weight=counts)
    b = RandomForestRegressor(**kwargs).fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    X_new = rng.normal(size=(100, 4))
    np.testing.assert_allclose(a.predict(X_new), b.predict(X_new))
    # With bootstrap, zero-weight rows are absent: the same draws happen as on the rows that remain.
    keep = counts > 0
    c = RandomForestRegressor(n_estimators=3, random_state=0).fit(X, y, sample_weight=keep.astype(float))
    d = RandomForestRegressor(n_estimators=3, random_state=0).fit(X[keep], y[keep])
    np.testing.assert_allclose(c.predict(X_new), d.predict(X_new))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_regression_forest_stays_within_the_target_range(seed, n_estimators):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    forest = RandomForestRegressor(n_estimators=n_estimators, random_state=seed).fit(X, y)
    pred = forest.predict(rng.normal(scale=3, size=(50, 3)))
    assert np.all((pred >= y.min() - 1e-12) & (pred <= y.max() + 1e-12))
    importances = forest.feature_importances_
    assert np.all(importances >= 0) and importances.sum() == pytest.approx(1.0)


def test_random_state_makes_forests_reproducible():
    X, y = load_breast_cancer(return_X_y=True)
    a = RandomForestClassifier(n_estimators=5, random_state=3).fit(X, y).predict_proba(X)
    b = RandomForestClassifier(n_estimators=5, random_state=3).fit(X, y).predict_proba(X)
    c = RandomForestClassifier(n_estimators=5, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_exercise_checkers(capsys):
    assert check_exercise_1(float(np.exp(-1)))
    assert not check_exercise_1(0.5)
    assert check_exercise_2(0.3 + 0.7 / 50)
    assert not check_exercise_2(0.3 / 50)
    assert "Not quite" in capsys.readouterr().out


# --------------------------------------------------------------------------- (4) smoke
def test_small_forests_beat_their_baselines():
    X_train, X_test, y_train, y_test = split(*load_digits(return_X_y=True))
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, y_train)
    single = DecisionTreeClassifier(random_state=0).fit(X_train, y_train)
    assert forest.score(X_test, y_test) > single.score(X_test, y_test) + 0.05
    Xr_train, Xr_test, yr_train, yr_test = split(*make_friedman1(n_samples=300, random_state=0))
    assert RandomForestRegressor(n_estimators=5, random_state=0).fit(Xr_train, yr_train).score(Xr_test, yr_test) > 0.5


# --------------------------------------------------------------------------- (5) bad input
@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(n_estimators=0), ValueError, "n_estimators must be an int >= 1"),
        (dict(bootstrap="yes"), TypeError, "bootstrap must be a bool"),
        (dict(oob_score=1), TypeError, "oob_score must be a bool"),
        (dict(bootstrap=False, oob_score=True), ValueError, "oob_score=True needs bootstrap=True"),
        (dict(max_features="cube"), ValueError, "max_features must be"),
        (dict(criterion="squared_error"), ValueError, "criterion must be one of"),
        (dict(max_depth=-2), ValueError, "max_depth must be an int >= 0"),
        (dict(max_bins=1), ValueError, "max_bins must be an int >= 2"),
    ],
)
def test_bad_parameters_are_named(params, error, message):
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.arange(30) % 2
    with pytest.raises(error, match=message):
        RandomForestClassifier(**{"n_estimators": 2, **params}).fit(X, y)


def test_bad_data_is_named():
    X, y = np.random.default_rng(0).normal(size=(30, 4)), np.arange(30) % 2
    for method in ("predict", "predict_proba", "apply"):
        with pytest.raises(NotFittedError):
            getattr(RandomForestClassifier(), method)(X)
    with pytest.raises(NotFittedError):
        RandomForestRegressor().feature_importances_
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RandomForestClassifier(n_estimators=2).fit(bad, y)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        RandomForestClassifier(n_estimators=2).fit(X, y, sample_weight=-np.ones(30))
    with pytest.raises(ValueError, match="Found input variables with inconsistent numbers of samples"):
        RandomForestClassifier(n_estimators=2).fit(X, y[:10])
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        forest.predict(X[:, :3])
    with pytest.raises(ValueError, match="must be the 30 training rows"):
        forest.staged_oob_score(X[:10], y[:10])
    with pytest.raises(ValueError, match="at least 2 trees"):
        tree_correlation(RandomForestClassifier(n_estimators=1).fit(X, y), X)

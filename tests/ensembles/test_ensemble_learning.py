"""Tests of mlnotes.ensembles.ensemble_learning (chapter book/ensembles/ensemble_learning.ipynb)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, make_classification, make_friedman1
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import BaggingClassifier as SkBaggingClassifier
from sklearn.ensemble import BaggingRegressor as SkBaggingRegressor
from sklearn.ensemble import StackingClassifier as SkStackingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, Perceptron
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlnotes.ensembles import BaggingClassifier, BaggingRegressor, StackingClassifier
from mlnotes.ensembles.cart import DecisionTreeClassifier, DecisionTreeRegressor
from mlnotes.ensembles.ensemble_learning import (
    bias_variance_decomposition,
    check_exercise_1,
    check_exercise_2,
    check_exercise_3,
    majority_vote_accuracy,
    stratified_folds,
)


def _split(X, y, seed=0):
    return train_test_split(X, y, test_size=0.25, random_state=seed)


class Memoriser(ClassifierMixin, BaseEstimator):
    """Knows the label of every row it was trained on and nothing else (uniform probabilities elsewhere)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.memory_ = {row.tobytes(): label for row, label in zip(np.asarray(X, dtype=np.float64), y)}
        return self

    def predict_proba(self, X):
        proba = np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))
        for i, row in enumerate(np.asarray(X, dtype=np.float64)):
            if row.tobytes() in self.memory_:
                proba[i] = self.classes_ == self.memory_[row.tobytes()]
        return proba

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class TreeWithoutWeights(DecisionTreeClassifier):
    """Our tree with a fit that does not accept sample_weight: bagging must repeat the rows instead."""

    def fit(self, X, y):
        return super().fit(X, y)


def _stacking_members():
    """The chapter's members: a memorising deep tree, a smooth kNN, naive Bayes and a linear model."""
    return [
        ("deep_tree", DecisionTreeClassifier()),
        ("knn", make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=15))),
        ("naive_bayes", GaussianNB()),
        ("logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))),
    ]


@pytest.fixture(scope="module")
def chapter_stack():
    """The chapter's stacking experiment: data, the fitted stack and each member's held-out accuracy."""
    X, y = make_classification(
        n_samples=2000, n_features=20, n_informative=6, n_redundant=4, flip_y=0.05, class_sep=0.8, random_state=1
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    stack = StackingClassifier(_stacking_members(), random_state=0).fit(X_train, y_train)
    return stack, X_train, X_test, y_train, y_test


# --------------------------------------------------------------------------- (1) scikit-learn conformance
# No expected failures: every check passes for all three estimators. The stacking instance uses a
# naive Bayes final estimator because the default LogisticRegression makes these checks five times slower;
# the default is exercised by the tests below.
@parametrize_with_checks(
    [
        BaggingClassifier(n_estimators=5, random_state=0),
        BaggingRegressor(n_estimators=5, random_state=0),
        StackingClassifier(
            [("tree", DecisionTreeClassifier(max_depth=3)), ("nb", GaussianNB())], GaussianNB(), cv=3, random_state=0
        ),
    ]
)
def test_sklearn_conformance(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


# --------------------------------------------------------------------------- (2) golden tests
# scipy's binomial overflows for p near the smallest normal float, so p stays away from 0 and 1 there.
@given(p=st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(1e-9, 1 - 1e-9)), n=st.integers(1, 400))
@settings(max_examples=40, deadline=None)
def test_majority_vote_matches_scipy_binomial(p, n):
    expected = binom.sf(n // 2, n, p) if n % 2 else binom.sf(n // 2, n, p) + 0.5 * binom.pmf(n // 2, n, p)
    assert majority_vote_accuracy(p, n) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("p, n", [(0.51, 1031), (0.5, 5000), (0.499, 20001)])
def test_majority_vote_does_not_overflow_for_many_voters(p, n):
    assert math.comb(n, n // 2).bit_length() > 1024  # as a float this coefficient would overflow
    expected = binom.sf(n // 2, n, p) if n % 2 else binom.sf(n // 2, n, p) + 0.5 * binom.pmf(n // 2, n, p)
    assert majority_vote_accuracy(p, n) == pytest.approx(expected, abs=1e-10)


def test_majority_vote_by_hand():
    p = 0.7
    assert majority_vote_accuracy(p, 1) == pytest.approx(p)
    assert majority_vote_accuracy(p, 2) == pytest.approx(p**2 + 0.5 * 2 * p * (1 - p))  # tie: coin flip
    assert majority_vote_accuracy(p, 3) == pytest.approx(p**3 + 3 * p**2 * (1 - p))


@pytest.mark.parametrize(
    "loader, n_estimators, n_seeds", [(load_digits, 20, 2), (load_breast_cancer, 15, 4)], ids=["digits", "breast_cancer"]
)
def test_bagging_accuracy_parity_with_sklearn(loader, n_estimators, n_seeds):
    """Same base tree, same sizes: mean held-out accuracy over seeds within 1.5 points of scikit-learn's.

    One seed is not enough on breast_cancer: a bagged ensemble's accuracy on its 143 test rows moves
    by about one point from seed to seed, for scikit-learn's bagging as much as for ours.
    """
    X_train, X_test, y_train, y_test = _split(*loader(return_X_y=True))
    seeds = range(n_seeds)
    ours = [
        BaggingClassifier(n_estimators=n_estimators, random_state=s).fit(X_train, y_train).score(X_test, y_test)
        for s in seeds
    ]
    theirs = [
        SkBaggingClassifier(DecisionTreeClassifier(), n_estimators=n_estimators, random_state=s)
        .fit(X_train, y_train)
        .score(X_test, y_test)
        for s in seeds
    ]
    assert abs(np.mean(ours) - np.mean(theirs)) <= 0.015, (np.mean(ours), np.mean(theirs))


def test_bagging_regressor_parity_with_sklearn():
    X_train, X_test, y_train, y_test = _split(*make_friedman1(n_samples=600, noise=1.0, random_state=0))
    ours = BaggingRegressor(n_estimators=20, random_state=0).fit(X_train, y_train).score(X_test, y_test)
    theirs = (
        SkBaggingRegressor(DecisionTreeRegressor(), n_estimators=20, random_state=0)
        .fit(X_train, y_train)
        .score(X_test, y_test)
    )
    assert abs(ours - theirs) <= 0.03, (ours, theirs)


@pytest.mark.parametrize("loader", [load_digits, load_breast_cancer], ids=["digits", "breast_cancer"])
def test_stacking_accuracy_parity_with_sklearn(loader):
    """Same members, same final estimator; only the fold assignment differs."""
    X_train, X_test, y_train, y_test = _split(*loader(return_X_y=True))
    members = [("tree", DecisionTreeClassifier(max_depth=5)), ("nb", GaussianNB())]
    final = LogisticRegression(max_iter=2000)
    ours = StackingClassifier(members, final, random_state=0).fit(X_train, y_train)
    theirs = SkStackingClassifier(members, final).fit(X_train, y_train)
    assert ours.transform(X_test).shape == theirs.transform(X_test).shape
    assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.015


def test_bias_variance_matches_closed_form_for_the_mean_predictor():
    """Predicting the training mean of y = x + noise, x ~ U(0, 1): every term has a closed form."""
    n_train, noise_var = 10, 0.25

    def sample(rng):
        X = rng.uniform(0, 1, size=(n_train, 1))
        return X, X[:, 0] + np.sqrt(noise_var) * rng.standard_normal(n_train)

    X_test = np.linspace(0, 1, 101)[:, None]
    result = bias_variance_decomposition(DummyRegressor, sample, X_test, X_test[:, 0], noise_var, 4000, rng=0)
    bias2 = np.mean((0.5 - X_test[:, 0]) ** 2)  # the mean prediction is E[y] = 1/2
    variance = (1 / 12 + noise_var) / n_train  # Var of a mean of n iid y's
    assert result["bias2"] == pytest.approx(bias2, abs=0.003)
    assert result["variance"] == pytest.approx(variance, rel=0.06)
    assert result["error"] == pytest.approx(bias2 + variance + noise_var, rel=0.03)


# --------------------------------------------------------------------------- (3) properties and chapter claims
def test_condorcet_more_voters_help_only_above_one_half():
    odd = range(1, 202, 2)
    for p in (0.55, 0.7):
        acc = [majority_vote_accuracy(p, n) for n in odd]
        assert np.all(np.diff(acc) > 0) and acc[-1] > 0.9
    acc = [majority_vote_accuracy(0.45, n) for n in odd]
    assert np.all(np.diff(acc) < 0) and acc[-1] < 0.1
    assert all(majority_vote_accuracy(0.5, n) == pytest.approx(0.5) for n in range(1, 30))


@given(
    labels=st.lists(st.integers(0, 3), min_size=4, max_size=80),
    n_splits=st.integers(2, 4),
    seed=st.integers(0, 1000),
)
@settings(max_examples=50, deadline=None)
def test_stratified_folds_balance_every_class(labels, n_splits, seed):
    y = np.array(labels)
    fold = stratified_folds(y, n_splits, seed)
    assert fold.shape == y.shape and set(fold) <= set(range(n_splits))
    sizes = np.bincount(fold, minlength=n_splits)
    assert sizes.max() - sizes.min() <= 1
    for label in np.unique(y):
        per_fold = np.bincount(fold[y == label], minlength=n_splits)
        assert per_fold.max() - per_fold.min() <= 1
    np.testing.assert_array_equal(fold, stratified_folds(y, n_splits, seed))


def test_bias_variance_terms_add_up_and_bagging_cuts_variance():
    """The chapter's claim: bagged deep trees keep the bias of one deep tree and have far less variance."""
    noise_var = 0.09

    def sample(rng):
        X = rng.uniform(0, 3, size=(60, 1))
        return X, np.sin(4 * X[:, 0]) + X[:, 0] + np.sqrt(noise_var) * rng.standard_normal(60)

    X_test = np.linspace(0, 3, 100)[:, None]
    f_true = np.sin(4 * X_test[:, 0]) + X_test[:, 0]
    tree = bias_variance_decomposition(DecisionTreeRegressor, sample, X_test, f_true, noise_var, 20, rng=0)
    bag = bias_variance_decomposition(
        lambda: BaggingRegressor(n_estimators=15), sample, X_test, f_true, noise_var, 20, rng=0
    )
    assert bag["variance"] < 0.65 * tree["variance"]
    assert abs(bag["bias2"] - tree["bias2"]) < 0.01
    for r in (tree, bag):
        assert r["bias2"] + r["variance"] + r["noise"] == pytest.approx(r["error"], rel=0.1)
        assert r["predictions"].shape == (20, 100)


def test_bootstrap_weights_equal_repeated_rows():
    """Counts passed as sample_weight and rows repeated that many times grow the same trees."""
    X, y = load_breast_cancer(return_X_y=True)
    weighted = BaggingClassifier(DecisionTreeClassifier(), n_estimators=5, random_state=3).fit(X, y)
    repeated = BaggingClassifier(TreeWithoutWeights(), n_estimators=5, random_state=3).fit(X, y)
    for a, b in zip(weighted.estimators_samples_, repeated.estimators_samples_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X))


def test_bagging_feature_subsets_and_oob_recomputed_from_attributes():
    X, y = load_breast_cancer(return_X_y=True)
    bag = BaggingClassifier(n_estimators=20, max_features=0.5, oob_score=True, random_state=0).fit(X, y)
    assert all(len(f) == 15 and len(np.unique(f)) == 15 for f in bag.estimators_features_)
    assert all(m.n_features_in_ == 15 for m in bag.estimators_)
    # OOB by hand: average each row over the members whose sample does not contain it.
    total, count = np.zeros((len(X), 2)), np.zeros(len(X))
    for member, features, drawn in zip(bag.estimators_, bag.estimators_features_, bag.estimators_samples_):
        out = np.setdiff1d(np.arange(len(X)), drawn)
        total[out] += member.predict_proba(X[np.ix_(out, features)])
        count[out] += 1
    covered = count > 0
    np.testing.assert_allclose(bag.oob_decision_function_[covered], total[covered] / count[covered, None])
    expected = np.mean(np.argmax(total[covered], axis=1) == y[covered])
    assert bag.oob_score_ == pytest.approx(expected)


def test_hard_votes_when_members_have_no_predict_proba():
    X, y = load_digits(return_X_y=True)
    bag = BaggingClassifier(Perceptron(), n_estimators=8, random_state=0).fit(X, y)
    proba = bag.predict_proba(X[:50])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba * 8, np.round(proba * 8))  # vote fractions


def test_bagging_handles_bootstraps_that_miss_a_class():
    X = np.arange(12, dtype=float)[:, None]
    y = np.array(["a"] * 10 + ["b", "c"])
    bag = BaggingClassifier(n_estimators=10, random_state=0).fit(X, y)
    proba = bag.predict_proba(X)
    assert proba.shape == (12, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(bag.predict(X)) <= {"a", "b", "c"}


def test_oof_meta_features_come_from_models_that_never_saw_the_row():
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    stack = StackingClassifier([("memo", Memoriser()), ("nb", GaussianNB())], cv=4, random_state=0).fit(X, y)
    memo_block = stack.oof_meta_features_[:, :10]
    assert stack.oof_meta_features_.shape == (300, 20)  # 10 probability columns per member
    np.testing.assert_allclose(memo_block, 0.1)  # out of fold: the memoriser never recognises the row
    in_sample = stack.transform(X)[:, :10]  # the refitted members saw every row
    np.testing.assert_array_equal(np.argmax(in_sample, axis=1), y)


def test_stacking_meta_feature_shapes():
    X, y = load_breast_cancer(return_X_y=True)
    members = [("tree", DecisionTreeClassifier(max_depth=2)), ("p", Perceptron())]
    stack = StackingClassifier(members, GaussianNB(), cv=3, passthrough=True, random_state=0).fit(X, y)
    assert stack.stack_method_ == ["predict_proba", "decision_function"]
    assert stack.transform(X).shape == (569, 1 + 1 + 30)  # binary: one column per member, then X
    proba = stack.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(stack.predict(X), stack.classes_[np.argmax(proba, axis=1)])


def test_stacking_beats_each_member_on_held_out_data(chapter_stack):
    stack, _, X_test, _, y_test = chapter_stack
    member_acc = [np.mean(stack.classes_[m.predict(X_test)] == y_test) for m in stack.estimators_]
    assert stack.score(X_test, y_test) > max(member_acc) + 0.005, (stack.score(X_test, y_test), member_acc)


def test_in_sample_meta_features_leak(chapter_stack):
    """Trained on in-sample predictions, the meta-learner trusts the memorising tree most and does worse."""
    stack, X_train, X_test, y_train, y_test = chapter_stack
    leaky = LogisticRegression().fit(stack.transform(X_train), y_train)
    assert np.argmax(leaky.coef_[0]) == 0  # the deep tree
    assert np.argmax(stack.final_estimator_.coef_[0]) != 0
    assert leaky.score(stack.transform(X_test), y_test) < stack.score(X_test, y_test) - 0.02


# --------------------------------------------------------------------------- (4) smoke tests
@pytest.mark.parametrize(
    "estimator",
    [
        BaggingClassifier(n_estimators=3, random_state=0),
        StackingClassifier([("tree", DecisionTreeClassifier(max_depth=2)), ("nb", GaussianNB())], cv=2, random_state=0),
    ],
    ids=["bagging", "stacking"],
)
def test_classifiers_smoke(estimator):
    X, y = load_breast_cancer(return_X_y=True)
    assert estimator.fit(X[:200], y[:200]).score(X[200:], y[200:]) > 0.8  # the majority class scores about 0.66


def test_bagging_regressor_smoke():
    X, y = load_diabetes(return_X_y=True)
    with pytest.warns(UserWarning, match="no out-of-bag estimate"):  # 3 members leave some rows uncovered
        bag = BaggingRegressor(n_estimators=3, oob_score=True, random_state=0).fit(X, y)
    assert bag.score(X, y) > 0.5 and bag.oob_prediction_.shape == (len(y),)
    uncovered = np.isnan(bag.oob_prediction_)
    assert 0 < uncovered.sum() < len(y) and np.isfinite(bag.oob_score_)


def test_exercise_checkers(capsys):
    assert check_exercise_1(0.7**3 + 3 * 0.7**2 * 0.3) and not check_exercise_1(0.7)
    assert check_exercise_2((49 / 50) ** 50) and not check_exercise_2(1 / np.e + 0.01)
    answer_3 = next(n for n in range(1, 1001, 2) if binom.sf(n // 2, n, 0.55) >= 0.9)  # scipy, not our function
    assert check_exercise_3(answer_3) and not check_exercise_3(answer_3 - 2) and not check_exercise_3(answer_3 + 2)
    assert not check_exercise_3(0.5)
    assert not check_exercise_1("0.78") and "Expected a number" in capsys.readouterr().out


# --------------------------------------------------------------------------- (5) bad input
@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_estimators": 0}, "n_estimators must be an int >= 1"),
        ({"max_samples": 1.5}, "max_samples must be"),
        ({"max_samples": 0}, "max_samples"),
        ({"max_features": 0.0}, "max_features must be"),
        ({"max_features": 31}, r"max_features as an int must be in \[1, n_features=30\]"),
        ({"bootstrap": "yes"}, "bootstrap must be True or False"),
        ({"oob_score": True, "bootstrap": False}, "oob_score=True needs bootstrap=True"),
    ],
)
def test_bagging_rejects_bad_parameters(params, match):
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        BaggingClassifier(**params).fit(X, y)


def test_bagging_rejects_bad_estimator_and_data():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(TypeError, match="estimator must have fit and predict"):
        BaggingClassifier(estimator=object()).fit(X, y)
    with pytest.raises(NotFittedError):
        BaggingClassifier().predict(X)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BaggingClassifier(n_estimators=2).fit(X_nan, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        BaggingClassifier(n_estimators=2).fit(X, y[:-1])
    bag = BaggingClassifier(n_estimators=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        bag.predict(X[:, :5])
    with pytest.raises(ValueError, match="Unknown label type"):
        BaggingClassifier(n_estimators=2).fit(X, X[:, 0])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"estimators": []}, ValueError, "estimators must be a non-empty list"),
        ({"estimators": [GaussianNB()]}, ValueError, r"\(name, estimator\) pairs"),
        ({"estimators": [("a", GaussianNB()), ("a", GaussianNB())]}, ValueError, "unique names"),
        ({"estimators": [("a", "nb")]}, TypeError, "estimator 'a' must have a fit method"),
        ({"cv": 1}, ValueError, "cv must be an int >= 2"),
        ({"stack_method": "vote"}, ValueError, "stack_method must be 'auto' or one of"),
        ({"stack_method": "decision_function"}, ValueError, "'nb' has none of the stack methods"),
        ({"final_estimator": 3}, TypeError, "final_estimator must have a fit method"),
    ],
)
def test_stacking_rejects_bad_parameters(kwargs, error, match):
    X, y = load_breast_cancer(return_X_y=True)
    kwargs = {"estimators": [("nb", GaussianNB())], **kwargs}
    with pytest.raises(error, match=match):
        StackingClassifier(**kwargs).fit(X, y)
    with pytest.raises(NotFittedError):
        StackingClassifier([("nb", GaussianNB())]).predict(X)


def test_function_arguments_are_checked():
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        majority_vote_accuracy(1.2, 3)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        majority_vote_accuracy(0.6, 0)
    with pytest.raises(ValueError, match="n_splits=5 cannot be greater than the number of samples"):
        stratified_folds(np.array([0, 1, 0]), 5)
    X_test = np.zeros((4, 1))
    sample = lambda rng: (rng.normal(size=(5, 1)), rng.normal(size=5))  # noqa: E731
    with pytest.raises(ValueError, match="X_test must be 2-D"):
        bias_variance_decomposition(DummyRegressor, sample, np.zeros(4), np.zeros(4), 0.1, 5)
    with pytest.raises(ValueError, match=r"f_true must have shape \(n_test,\)"):
        bias_variance_decomposition(DummyRegressor, sample, X_test, np.zeros(3), 0.1, 5)
    with pytest.raises(ValueError, match="noise_var must be a number >= 0"):
        bias_variance_decomposition(DummyRegressor, sample, X_test, np.zeros(4), -1.0, 5)
    with pytest.raises(ValueError, match="n_rounds must be an int >= 2"):
        bias_variance_decomposition(DummyRegressor, sample, X_test, np.zeros(4), 0.1, 1)

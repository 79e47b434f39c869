"""Ensemble learning: majority votes, the bias-variance decomposition, bagging and stacking.

This module backs the opening chapter of Part 2, ``book/ensembles/ensemble_learning.ipynb``.
It implements

* :func:`majority_vote_accuracy`, the exact binomial accuracy of a majority of
  independent voters (Condorcet's jury theorem);
* :func:`bias_variance_decomposition`, a Monte Carlo estimate of the squared-loss
  decomposition :cite:p:`geman1992bias`;
* :class:`BaggingClassifier` and :class:`BaggingRegressor`, bootstrap aggregating
  :cite:p:`breiman1996bagging` of any scikit-learn estimator, with random feature
  subsets per member (the random subspace method) and out-of-bag estimates;
* :class:`StackingClassifier`, stacked generalisation :cite:p:`wolpert1992stacked`:
  a final estimator learns from out-of-fold predictions of the members
  :cite:p:`breiman1996stacked`, with the stratified folds of :func:`stratified_folds`.

Why ensembles work at all (statistical, computational and representational
reasons) follows :cite:p:`dietterich2000ensemble`. Boosting, the third family,
has its own chapters (``adaboost`` and ``gbdt``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.special import gammaln
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data

from mlnotes.ensembles._base import as_generator, bootstrap_counts, check_positive_int
from mlnotes.ensembles.cart import DecisionTreeClassifier, DecisionTreeRegressor

__all__ = [
    "BaggingClassifier",
    "BaggingRegressor",
    "StackingClassifier",
    "bias_variance_decomposition",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
    "majority_vote_accuracy",
    "stratified_folds",
]

RandomState = int | np.random.Generator | np.random.RandomState | None


# --------------------------------------------------------------------------- majority votes
def majority_vote_accuracy(p: float, n: int) -> float:
    """Probability that a majority of ``n`` independent voters, each right with probability ``p``, is right.

    With ``K ~ Binomial(n, p)`` correct votes,

    .. math::

        P(\\text{majority right}) = \\sum_{k > n/2} \\binom{n}{k} p^k (1-p)^{n-k}
        \\; + \\; [n \\text{ even}]\\, \\tfrac12 \\binom{n}{n/2} p^{n/2} (1-p)^{n/2},

    where a tie (possible only for even ``n``) is broken by a fair coin. The sum
    is evaluated exactly, term by term, in log space so that large ``n`` does
    not overflow.

    Parameters
    ----------
    p : float
        Accuracy of each voter, in ``[0, 1]``.
    n : int
        Number of voters, ``>= 1``.

    Returns
    -------
    float
        The accuracy of the majority vote.

    Examples
    --------
    >>> round(majority_vote_accuracy(0.7, 3), 3)  # p^3 + 3 p^2 (1 - p)
    0.784
    """
    if isinstance(p, bool) or not isinstance(p, Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    check_positive_int(n, "n")
    if p in (0.0, 1.0):
        return float(p)
    k = np.arange(n + 1)
    log_pmf = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) + k * np.log(p) + (n - k) * np.log1p(-p)
    pmf = np.exp(log_pmf)
    weight = np.where(2 * k > n, 1.0, np.where(2 * k == n, 0.5, 0.0))
    return float(np.sum(weight * pmf))


# --------------------------------------------------------------------------- bias and variance
def bias_variance_decomposition(
    make_estimator: Callable[[], Any],
    sample_data: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
    X_test: np.ndarray,
    f_true: np.ndarray,
    noise_var: float,
    n_rounds: int = 100,
    rng: RandomState = 0,
) -> dict[str, Any]:
    """Estimate bias², variance and noise of a regressor under squared loss by repeated fitting.

    Each round draws a fresh training set, fits a fresh estimator and predicts at
    the fixed test inputs. With :math:`\\bar f(x)` the mean prediction over rounds,

    .. math::

        \\mathbb E\\,(y - \\hat f(x))^2 = \\underbrace{(\\bar f(x) - f(x))^2}_{\\text{bias}^2}
        + \\underbrace{\\mathbb E\\,(\\hat f(x) - \\bar f(x))^2}_{\\text{variance}} + \\underbrace{\\sigma^2}_{\\text{noise}},

    averaged over the test inputs. ``error`` is measured independently of the
    three terms, against fresh noisy targets ``f_true + N(0, noise_var)``, so that
    ``bias2 + variance + noise ~= error`` is a check, not an identity.

    Parameters
    ----------
    make_estimator : callable
        ``make_estimator()`` returns an unfitted regressor. When it has a
        ``random_state`` parameter, each round sets it to a fresh seed drawn from ``rng``.
    sample_data : callable
        ``sample_data(rng)`` returns one training set ``(X, y)``, ``X`` of shape
        ``(n_train, n_features)`` and ``y`` of shape ``(n_train,)``.
    X_test : ndarray of shape (n_test, n_features)
        Fixed inputs where predictions are compared.
    f_true : ndarray of shape (n_test,)
        The noise-free target at ``X_test``.
    noise_var : float
        Variance of the zero-mean noise on the targets (``>= 0``).
    n_rounds : int, default=100
        Number of training sets (``>= 2``).
    rng : int, numpy Generator or None, default=0
        Source of the training sets, seeds and test noise.

    Returns
    -------
    dict
        ``bias2``, ``variance``, ``noise``, ``error`` (floats) and ``predictions``,
        an array of shape ``(n_rounds, n_test)``.
    """
    if not callable(make_estimator) or not callable(sample_data):
        raise TypeError("make_estimator and sample_data must be callables")
    X_test = np.asarray(X_test, dtype=np.float64)
    f_true = np.asarray(f_true, dtype=np.float64)
    if X_test.ndim != 2:
        raise ValueError(f"X_test must be 2-D of shape (n_test, n_features), got shape {X_test.shape}")
    if f_true.shape != (len(X_test),):
        raise ValueError(f"f_true must have shape (n_test,) = ({len(X_test)},), got {f_true.shape}")
    if isinstance(noise_var, bool) or not isinstance(noise_var, Real) or not noise_var >= 0:
        raise ValueError(f"noise_var must be a number >= 0, got {noise_var!r}")
    check_positive_int(n_rounds, "n_rounds", 2)
    rng = as_generator(rng)

    predictions = np.empty((n_rounds, len(X_test)))
    squared_error = np.empty(n_rounds)
    for r in range(n_rounds):
        X, y = sample_data(rng)
        estimator = make_estimator()
        if "random_state" in estimator.get_params(deep=False):
            estimator.set_params(random_state=int(rng.integers(2**31 - 1)))
        predictions[r] = estimator.fit(X, y).predict(X_test)
        y_test = f_true + np.sqrt(noise_var) * rng.standard_normal(len(f_true))
        squared_error[r] = np.mean((predictions[r] - y_test) ** 2)

    mean_prediction = predictions.mean(axis=0)
    return {
        "bias2": float(np.mean((mean_prediction - f_true) ** 2)),
        "variance": float(np.mean(predictions.var(axis=0))),
        "noise": float(noise_var),
        "error": float(squared_error.mean()),
        "predictions": predictions,
    }


# --------------------------------------------------------------------------- bagging
def _check_bool(value: object, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _resolve_size(value: object, name: str, total: int, what: str) -> int:
    """An int count from an int in ``[1, total]`` or a fraction in ``(0, 1]`` of ``total``."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        if not 1 <= value <= total:
            raise ValueError(f"{name} as an int must be in [1, {what}={total}], got {value}")
        return int(value)
    if isinstance(value, Real) and not isinstance(value, bool) and 0.0 < value <= 1.0:
        return max(1, int(value * total))
    raise ValueError(f"{name} must be an int in [1, {what}] or a float in (0, 1], got {value!r}")


class _BaseBagging(BaseEstimator):
    """Bootstrap aggregating: fit clones of one estimator on resampled rows and random feature subsets."""

    def __init__(
        self,
        estimator: Any = None,
        n_estimators: int = 10,
        *,
        max_samples: int | float = 1.0,
        max_features: int | float = 1.0,
        bootstrap: bool = True,
        oob_score: bool = False,
        random_state: RandomState = None,
    ) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.random_state = random_state

    def _default_estimator(self) -> Any:
        raise NotImplementedError

    def _check_params(self, n_samples: int, n_features: int) -> tuple[int, int, Any]:
        """Validate the parameters; return the rows drawn and features kept per member, and the base estimator."""
        check_positive_int(self.n_estimators, "n_estimators")
        _check_bool(self.bootstrap, "bootstrap")
        _check_bool(self.oob_score, "oob_score")
        if self.oob_score and not self.bootstrap:
            raise ValueError("oob_score=True needs bootstrap=True: without it no row is left out of bag")
        if self.bootstrap and isinstance(self.max_samples, Integral) and not isinstance(self.max_samples, bool):
            check_positive_int(self.max_samples, "max_samples")  # draws with replacement may exceed n_samples
            n_draws = int(self.max_samples)
        else:
            n_draws = _resolve_size(self.max_samples, "max_samples", n_samples, "n_samples")
        n_kept = _resolve_size(self.max_features, "max_features", n_features, "n_features")
        base = self._default_estimator() if self.estimator is None else self.estimator
        if not hasattr(base, "fit") or not hasattr(base, "predict"):
            raise TypeError(f"estimator must have fit and predict methods, got {type(base).__name__}")
        return n_draws, n_kept, base

    def _fit_members(self, X: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
        """Fit every member; returns how often each member drew each row, arrays of shape ``(n_samples,)``."""
        n_samples, n_features = X.shape
        n_draws, n_kept, base = self._check_params(n_samples, n_features)
        uses_weight = has_fit_parameter(base, "sample_weight")
        rng = as_generator(self.random_state)
        self.estimators_, self.estimators_features_, self.estimators_samples_ = [], [], []
        all_counts = []
        for _ in range(self.n_estimators):
            features = np.sort(rng.choice(n_features, n_kept, replace=False))
            if self.bootstrap:
                counts = bootstrap_counts(n_samples, rng, n_draws)
            else:
                counts = np.zeros(n_samples, dtype=np.intp)
                counts[rng.choice(n_samples, n_draws, replace=False)] = 1
            member = clone(base)
            if "random_state" in member.get_params(deep=False):
                member.set_params(random_state=int(rng.integers(2**31 - 1)))
            drawn = np.repeat(np.arange(n_samples), counts)  # the bootstrap sample, repetitions included
            if uses_weight:  # counts as weights: the same fit as on the repeated rows, without the copies
                rows = np.flatnonzero(counts)
                member.fit(X[np.ix_(rows, features)], target[rows], sample_weight=counts[rows].astype(np.float64))
            else:
                member.fit(X[np.ix_(drawn, features)], target[drawn])
            self.estimators_.append(member)
            self.estimators_features_.append(features)
            self.estimators_samples_.append(drawn)
            all_counts.append(counts)
        return all_counts

    def _oob_average(self, X: np.ndarray, all_counts: list[np.ndarray], width: int) -> np.ndarray:
        """Each row's member output averaged over the members that did not draw it, shape ``(n_samples, width)``."""
        total = np.zeros((len(X), width))
        n_oob = np.zeros(len(X), dtype=np.intp)
        for member, features, counts in zip(self.estimators_, self.estimators_features_, all_counts):
            out = np.flatnonzero(counts == 0)
            total[out] += self._member_output(member, X[np.ix_(out, features)])
            n_oob[out] += 1
        if np.any(n_oob == 0):
            warnings.warn(
                f"{np.sum(n_oob == 0)} rows were drawn by every member and have no out-of-bag estimate "
                "(NaN); the OOB score uses the other rows. Use more estimators.",
                UserWarning,
                stacklevel=3,
            )
        with np.errstate(invalid="ignore"):
            return total / n_oob[:, None]

    def _average(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        total = sum(self._member_output(m, X[:, f]) for m, f in zip(self.estimators_, self.estimators_features_))
        return total / len(self.estimators_)

    def _member_output(self, member: Any, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class BaggingClassifier(ClassifierMixin, _BaseBagging):
    """Bootstrap aggregating of a classifier, with soft voting.

    Each member is a clone of ``estimator`` fitted on a bootstrap sample of the
    rows (drawn counts passed as ``sample_weight`` when the estimator's ``fit``
    accepts it, the rows repeated otherwise) and on a random subset of the
    features. The ensemble averages the members' ``predict_proba``; a member
    without ``predict_proba`` contributes a one-hot vote.

    Parameters
    ----------
    estimator : classifier, default=None
        The base estimator; ``None`` means :class:`~mlnotes.ensembles.cart.DecisionTreeClassifier`
        grown to full depth (low bias, high variance: what bagging needs).
    n_estimators : int, default=10
        Number of members.
    max_samples : int or float, default=1.0
        Rows drawn per member: an int, or a fraction of ``n_samples``.
    max_features : int or float, default=1.0
        Features (drawn without replacement) per member: an int, or a fraction of ``n_features``.
    bootstrap : bool, default=True
        Draw rows with replacement; ``False`` draws them without (pasting).
    oob_score : bool, default=False
        Estimate the accuracy on the rows each member did not draw.
    random_state : int, numpy Generator or None, default=None
        Seed of the draws (and of the members' own ``random_state``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    estimators_ : list of fitted classifiers
        Fitted on the class codes ``0..n_classes-1``, not on the original labels.
    estimators_features_ : list of ndarray of int
        The feature indices each member sees.
    estimators_samples_ : list of ndarray of int
        The rows each member drew (with repetitions).
    oob_score_ : float
        Out-of-bag accuracy (only with ``oob_score=True``).
    oob_decision_function_ : ndarray of shape (n_samples, n_classes)
        Out-of-bag class probabilities (NaN for rows every member drew).

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> bag = BaggingClassifier(n_estimators=20, oob_score=True, random_state=0).fit(X, y)
    >>> bag.oob_score_ > 0.9
    True
    """

    def _default_estimator(self) -> Any:
        return DecisionTreeClassifier()

    def fit(self, X: np.ndarray, y: np.ndarray) -> BaggingClassifier:
        """Fit the members on ``X`` of shape ``(n_samples, n_features)`` and labels ``y`` of shape ``(n_samples,)``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        all_counts = self._fit_members(X, codes)
        if self.oob_score:
            self.oob_decision_function_ = self._oob_average(X, all_counts, len(self.classes_))
            covered = ~np.isnan(self.oob_decision_function_[:, 0])
            self.oob_score_ = float(np.mean(np.argmax(self.oob_decision_function_[covered], axis=1) == codes[covered]))
        return self

    def _member_output(self, member: Any, X: np.ndarray) -> np.ndarray:
        """A member's class probabilities over all ``n_classes`` columns (a one-hot vote without ``predict_proba``)."""
        out = np.zeros((len(X), len(self.classes_)))
        if hasattr(member, "predict_proba"):
            out[:, np.asarray(member.classes_, dtype=np.intp)] = member.predict_proba(X)
        else:
            out[np.arange(len(X)), np.asarray(member.predict(X), dtype=np.intp)] = 1.0
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Members' class probabilities averaged (soft voting), shape ``(n_samples, n_classes)``."""
        return self._average(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The class with the highest averaged probability, shape ``(n_samples,)``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class BaggingRegressor(RegressorMixin, _BaseBagging):
    """Bootstrap aggregating of a regressor: the members' predictions averaged.

    Parameters are those of :class:`BaggingClassifier`; ``estimator=None``
    means a fully grown :class:`~mlnotes.ensembles.cart.DecisionTreeRegressor`.

    Attributes
    ----------
    n_features_in_ : int
    estimators_, estimators_features_, estimators_samples_ : list
        As in :class:`BaggingClassifier`.
    oob_score_ : float
        Out-of-bag :math:`R^2` (only with ``oob_score=True``).
    oob_prediction_ : ndarray of shape (n_samples,)
        Out-of-bag predictions (NaN for rows every member drew).
    """

    def _default_estimator(self) -> Any:
        return DecisionTreeRegressor()

    def fit(self, X: np.ndarray, y: np.ndarray) -> BaggingRegressor:
        """Fit the members on ``X`` of shape ``(n_samples, n_features)`` and targets ``y`` of shape ``(n_samples,)``."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        y = y.astype(np.float64)
        all_counts = self._fit_members(X, y)
        if self.oob_score:
            self.oob_prediction_ = self._oob_average(X, all_counts, 1)[:, 0]
            covered = ~np.isnan(self.oob_prediction_)
            residual = np.sum((y[covered] - self.oob_prediction_[covered]) ** 2)
            self.oob_score_ = float(1.0 - residual / np.sum((y[covered] - y[covered].mean()) ** 2))
        return self

    def _member_output(self, member: Any, X: np.ndarray) -> np.ndarray:
        return np.asarray(member.predict(X), dtype=np.float64).reshape(len(X), 1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Members' predictions averaged, shape ``(n_samples,)``."""
        return self._average(X)[:, 0]


# --------------------------------------------------------------------------- stacking
def stratified_folds(y: np.ndarray, n_splits: int, rng: RandomState = None) -> np.ndarray:
    """Assign each row to one of ``n_splits`` folds, keeping class proportions in every fold.

    The rows of each class are shuffled and dealt round-robin to the folds; the
    deal continues from class to class, so fold sizes differ by at most one and
    so do the counts of each class in different folds.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Class labels.
    n_splits : int
        Number of folds, in ``[2, n_samples]``.
    rng : int, numpy Generator or None
        Source of the shuffles.

    Returns
    -------
    ndarray of int, shape (n_samples,)
        The fold ``0..n_splits-1`` of each row.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D of shape (n_samples,), got shape {y.shape}")
    check_positive_int(n_splits, "n_splits", 2)
    if n_splits > len(y):
        raise ValueError(f"n_splits={n_splits} cannot be greater than the number of samples n_samples={len(y)}")
    rng = as_generator(rng)
    fold = np.empty(len(y), dtype=np.intp)
    dealt = 0
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        fold[rows] = (dealt + np.arange(len(rows))) % n_splits
        dealt += len(rows)
    return fold


_STACK_METHODS = ("predict_proba", "decision_function", "predict")


class StackingClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Stacked generalisation: a final classifier learns from the members' out-of-fold predictions.

    ``fit`` splits the rows into ``cv`` stratified folds (:func:`stratified_folds`);
    for each fold, clones of the members fitted on the other folds predict its rows.
    These out-of-fold predictions, the *meta-features*, come from models that
    never saw the row they describe, so the final estimator learns how the
    members behave on new data. The members are then refitted on all rows.

    Parameters
    ----------
    estimators : list of (str, estimator)
        The named members (classifiers).
    final_estimator : classifier, default=None
        Learns from the meta-features; ``None`` means
        :class:`sklearn.linear_model.LogisticRegression` with its defaults (the
        meta-learner is not this chapter's lesson, and a regularised linear model
        is the usual choice).
    cv : int, default=5
        Number of stratified folds for the out-of-fold predictions (``>= 2``).
    stack_method : {"auto", "predict_proba", "decision_function", "predict"}, default="auto"
        Member output used as meta-features; ``"auto"`` takes the first of these
        that each member has. With two classes, ``predict_proba`` keeps only the
        second column (the first is redundant).
    passthrough : bool, default=False
        Append the original features to the meta-features.
    random_state : int, numpy Generator or None, default=None
        Seed of the fold assignment.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    estimators_ : list of fitted classifiers
        The members refitted on all rows (on class codes ``0..n_classes-1``).
    final_estimator_ : fitted classifier
    stack_method_ : list of str
        The method used for each member.
    oof_meta_features_ : ndarray of shape (n_samples, n_meta_features)
        The out-of-fold meta-features the final estimator was trained on.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.naive_bayes import GaussianNB
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> members = [("tree", DecisionTreeClassifier(max_depth=3)), ("nb", GaussianNB())]
    >>> stack = StackingClassifier(members, random_state=0).fit(X, y)
    >>> stack.transform(X).shape  # one probability column per member (binary task)
    (569, 2)
    """

    def __init__(
        self,
        estimators: list[tuple[str, Any]],
        final_estimator: Any = None,
        *,
        cv: int = 5,
        stack_method: str = "auto",
        passthrough: bool = False,
        random_state: RandomState = None,
    ) -> None:
        self.estimators = estimators
        self.final_estimator = final_estimator
        self.cv = cv
        self.stack_method = stack_method
        self.passthrough = passthrough
        self.random_state = random_state

    def _check_params(self) -> list[str]:
        """Validate the parameters; return the stack method of each member."""
        if not isinstance(self.estimators, (list, tuple)) or len(self.estimators) == 0:
            raise ValueError(f"estimators must be a non-empty list of (name, estimator) pairs, got {self.estimators!r}")
        for pair in self.estimators:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ValueError(f"estimators must hold (name, estimator) pairs with str names, got {pair!r}")
            if not hasattr(pair[1], "fit"):
                raise TypeError(f"estimator {pair[0]!r} must have a fit method, got {type(pair[1]).__name__}")
        names = [name for name, _ in self.estimators]
        if len(set(names)) != len(names):
            raise ValueError(f"estimators must have unique names, got {names}")
        if self.final_estimator is not None and not hasattr(self.final_estimator, "fit"):
            raise TypeError(f"final_estimator must have a fit method, got {type(self.final_estimator).__name__}")
        check_positive_int(self.cv, "cv", 2)
        _check_bool(self.passthrough, "passthrough")
        if self.stack_method != "auto" and self.stack_method not in _STACK_METHODS:
            raise ValueError(f"stack_method must be 'auto' or one of {_STACK_METHODS}, got {self.stack_method!r}")
        methods = []
        for name, est in self.estimators:
            wanted = _STACK_METHODS if self.stack_method == "auto" else (self.stack_method,)
            found = [m for m in wanted if hasattr(est, m)]
            if not found:
                raise ValueError(f"estimator {name!r} has none of the stack methods {wanted}")
            methods.append(found[0])
        return methods

    def _member_block(self, member: Any, method: str, X: np.ndarray) -> np.ndarray:
        """One member's meta-features for rows ``X``, shape ``(n_rows, width)``."""
        n_classes = len(self.classes_)
        seen = np.asarray(member.classes_, dtype=np.intp)
        if method == "predict":
            return np.asarray(member.predict(X), dtype=np.float64).reshape(-1, 1)
        if method == "predict_proba":
            block = np.zeros((len(X), n_classes))
            block[:, seen] = member.predict_proba(X)  # a fold may lack a class: its column stays 0
            return block[:, 1:] if n_classes == 2 else block
        if len(seen) != n_classes:
            raise ValueError(
                f"a member trained on {len(seen)} of {n_classes} classes has no full decision_function; "
                "use fewer folds (cv) or stack_method='predict_proba'"
            )
        return np.asarray(member.decision_function(X), dtype=np.float64).reshape(len(X), -1)

    def _meta_features(self, members: list[Any], X: np.ndarray) -> np.ndarray:
        blocks = [self._member_block(m, method, X) for m, method in zip(members, self.stack_method_)]
        if self.passthrough:
            blocks.append(X)
        return np.hstack(blocks)

    def fit(self, X: np.ndarray, y: np.ndarray) -> StackingClassifier:
        """Fit on ``X`` of shape ``(n_samples, n_features)`` and labels ``y`` of shape ``(n_samples,)``.

        Out-of-fold meta-features train the final estimator; then every member
        is refitted on all rows.
        """
        methods = self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.stack_method_ = methods
        fold = stratified_folds(codes, self.cv, as_generator(self.random_state))

        blocks = []
        for (_, est), method in zip(self.estimators, methods):
            block = None
            for k in range(self.cv):
                train, test = fold != k, fold == k
                member = clone(est).fit(X[train], codes[train])
                out = self._member_block(member, method, X[test])
                if block is None:
                    block = np.empty((len(X), out.shape[1]))
                block[test] = out
            blocks.append(block)
        if self.passthrough:
            blocks.append(X)
        self.oof_meta_features_ = np.hstack(blocks)

        final = LogisticRegression() if self.final_estimator is None else self.final_estimator
        self.final_estimator_ = clone(final).fit(self.oof_meta_features_, codes)
        self.estimators_ = [clone(est).fit(X, codes) for _, est in self.estimators]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Meta-features of ``X`` from the refitted members, shape ``(n_samples, n_meta_features)``."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._meta_features(self.estimators_, X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The final estimator's class for each row, shape ``(n_samples,)``."""
        meta = self.transform(X)
        codes = np.asarray(self.final_estimator_.predict(meta), dtype=np.intp)
        return self.classes_[codes]

    def _final_has_proba(self) -> bool:
        final = getattr(self, "final_estimator_", None)
        if final is None:
            final = LogisticRegression() if self.final_estimator is None else self.final_estimator
        return hasattr(final, "predict_proba")

    @available_if(_final_has_proba)
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The final estimator's class probabilities, shape ``(n_samples, n_classes)``."""
        meta = self.transform(X)
        proba = self.final_estimator_.predict_proba(meta)
        out = np.zeros((len(proba), len(self.classes_)))
        out[:, np.asarray(self.final_estimator_.classes_, dtype=np.intp)] = proba
        return out


# --------------------------------------------------------------------------- exercises
def _check_number(answer: object, expected: float, tol: float, hint: str) -> bool:
    if isinstance(answer, bool) or not isinstance(answer, Real) or not np.isfinite(answer):
        print(f"Expected a number, got {answer!r}. {hint}")
        return False
    if abs(float(answer) - expected) <= tol:
        print(f"Correct: {float(answer):.4f}.")
        return True
    print(f"Not quite: {float(answer):.4f} is off by more than {tol}. {hint}")
    return False


def check_exercise_1(answer: float) -> bool:
    """Exercise 1: majority-vote accuracy of three independent voters, each right with probability 0.7."""
    return _check_number(
        answer,
        majority_vote_accuracy(0.7, 3),
        1e-3,
        "The majority is right when 2 or 3 of the 3 voters are: add the two binomial terms.",
    )


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: probability that a given row is out of bag for one bootstrap sample of n = 50 draws from 50 rows."""
    return _check_number(
        answer,
        (1 - 1 / 50) ** 50,
        1e-3,
        "Each of the 50 draws misses the row with probability 1 - 1/50, independently.",
    )


def check_exercise_3(answer: int) -> bool:
    """Exercise 3: the smallest odd number of independent 0.55-voters whose majority is right 90 % of the time."""
    n_needed = next(n for n in range(1, 1001, 2) if majority_vote_accuracy(0.55, n) >= 0.9)
    if isinstance(answer, bool) or not isinstance(answer, Integral):
        print(f"Expected a whole number of voters, got {answer!r}.")
        return False
    if answer == n_needed:
        print(f"Correct: {answer} voters reach {majority_vote_accuracy(0.55, int(answer)):.4f}.")
        return True
    if answer > 0 and majority_vote_accuracy(0.55, int(answer)) >= 0.9:
        print(f"{answer} voters are enough, but fewer would do: look for the smallest odd n.")
    else:
        print(f"Not enough: an odd n near {answer} stays below 0.9. Scan n = 1, 3, 5, ... with majority_vote_accuracy.")
    return False

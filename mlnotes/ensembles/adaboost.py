"""AdaBoost: discrete boosting with reweighted samples, binary and multi-class (SAMME).

The chapter ``book/ensembles/adaboost.ipynb`` teaches this module.

AdaBoost :cite:p:`freund1997adaboost` fits a weak learner ``h_t`` to weighted
data, gives it a vote ``alpha_t`` that grows as its weighted error ``e_t``
shrinks, multiplies the weight of every point it got wrong by ``exp(alpha_t)``
and repeats. The binary algorithm uses labels in ``{-1, +1}`` and

.. math::

    \\alpha_t = \\tfrac12 \\ln\\frac{1 - e_t}{e_t}, \\qquad
    F_T(x) = \\sum_{t=1}^T \\alpha_t h_t(x), \\qquad \\hat y = \\operatorname{sign} F_T(x).

SAMME :cite:p:`zhu2009samme` extends it to ``K`` classes with

.. math::

    \\alpha_t = \\ln\\frac{1 - e_t}{e_t} + \\ln(K - 1),

which is twice the binary vote when ``K = 2`` (a factor that changes no
prediction). Both are forward stagewise fits of an additive model under the
exponential loss :cite:p:`friedman2000additive`.

Public API
----------
:class:`AdaBoostClassifier`
    SAMME with scikit-learn's estimator API and conventions.
:func:`adaboost_binary`
    The original two-class algorithm written as a plain loop, returning a
    :class:`BinaryAdaBoost`; it exists to be compared with SAMME.
:func:`samme_alpha`, :func:`binary_alpha`, :func:`reweight`
    The three formulas of one boosting round.
:func:`training_error_bound`, :func:`margins`
    The quantities of the chapter's theory: the bound on the training error and
    the normalised voting margins.
:func:`check_exercise_1` ... :func:`check_exercise_3`
    Answer checkers for the chapter's exercises.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, has_fit_parameter, validate_data

from mlnotes.ensembles._base import as_generator, check_positive_int
from mlnotes.ensembles.cart import BinMapper, DecisionTreeClassifier

__all__ = [
    "AdaBoostClassifier",
    "BinaryAdaBoost",
    "adaboost_binary",
    "binary_alpha",
    "check_exercise_1",
    "check_exercise_2",
    "check_exercise_3",
    "margins",
    "reweight",
    "samme_alpha",
    "training_error_bound",
]

# Sample weights never fall below this (relative to a total of one): a weight that
# underflows to zero would silently remove a point from every later round.
_WEIGHT_FLOOR = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------- one round
def samme_alpha(error: float, n_classes: int, learning_rate: float = 1.0) -> float:
    """SAMME's vote for a learner with weighted error ``error`` on ``n_classes`` classes.

    ``alpha = learning_rate * (ln((1 - e) / e) + ln(K - 1))``; it is positive
    exactly when the learner beats random guessing, ``e < 1 - 1/K``.

    Parameters
    ----------
    error : float in (0, 1)
        Weighted misclassification rate of the learner.
    n_classes : int >= 2
    learning_rate : float > 0
        Shrinks every vote by the same factor.

    Returns
    -------
    float
    """
    return float(learning_rate * (np.log((1.0 - error) / error) + np.log(n_classes - 1.0)))


def binary_alpha(error: float) -> float:
    """The vote ``alpha = 1/2 ln((1 - e) / e)`` of two-class AdaBoost (Freund and Schapire).

    It minimises ``sum_i w_i exp(-alpha y_i h(x_i))`` over ``alpha`` for labels
    and predictions in ``{-1, +1}``; it equals ``samme_alpha(error, 2) / 2``.
    """
    return float(0.5 * np.log((1.0 - error) / error))


def reweight(sample_weight: np.ndarray, incorrect: np.ndarray, alpha: float) -> np.ndarray:
    """Multiply the weight of every misclassified point by ``exp(alpha)`` and renormalise.

    Parameters
    ----------
    sample_weight : ndarray of shape (n_samples,)
        Current non-negative weights.
    incorrect : ndarray of bool, shape (n_samples,)
        Whether the learner of this round misclassified each point.
    alpha : float
        The learner's vote.

    Returns
    -------
    ndarray of shape (n_samples,)
        New weights summing to one; points with zero weight keep zero weight.
    """
    new = sample_weight * np.exp(alpha * incorrect)
    return new / new.sum()


# --------------------------------------------------------------------------- theory helpers
def training_error_bound(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two bounds on the training error of binary AdaBoost after each round.

    With ``gamma_t = 1/2 - e_t`` (the learner's edge over a coin flip),

    ``training error after T rounds <= prod_t 2 sqrt(e_t (1 - e_t)) <= exp(-2 sum_t gamma_t^2)``.

    Parameters
    ----------
    errors : ndarray of shape (n_rounds,)
        Weighted errors ``e_t`` of the learners, each in ``[0, 1/2)``.

    Returns
    -------
    product_bound, exponential_bound : ndarray of shape (n_rounds,)
        The two bounds after rounds ``1, ..., n_rounds``.
    """
    errors = np.asarray(errors, dtype=np.float64)
    product_bound = np.cumprod(2.0 * np.sqrt(errors * (1.0 - errors)))
    exponential_bound = np.exp(-2.0 * np.cumsum((0.5 - errors) ** 2))
    return product_bound, exponential_bound


def _votes(estimators: list, weights: np.ndarray, classes: np.ndarray, X: np.ndarray) -> Iterator[np.ndarray]:
    """Running totals ``V_k(x) = sum_t alpha_t [h_t(x) = k]``, shape ``(n_samples, n_classes)``, one per round."""
    votes = np.zeros((len(X), len(classes)))
    for estimator, alpha in zip(estimators, weights):
        votes += alpha * (estimator.predict(X)[:, None] == classes[None, :])
        yield votes


def margins(model: AdaBoostClassifier, X: np.ndarray, y: np.ndarray, n_rounds: int | None = None) -> np.ndarray:
    """Normalised voting margins of a fitted ensemble, each in ``[-1, 1]``.

    The margin of ``(x, y)`` is the share of the total vote that goes to the true
    class minus the largest share that goes to any other class
    :cite:p:`schapire1998margin`; it is positive exactly when the point is
    classified correctly. For two classes with ``y`` in ``{-1, +1}`` it is
    ``y F(x) / sum_t alpha_t``.

    Parameters
    ----------
    model : AdaBoostClassifier
        A fitted ensemble.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        True labels (values from ``model.classes_``).
    n_rounds : int, optional
        Use only the first ``n_rounds`` learners (default: all).

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    check_is_fitted(model, "estimators_")
    X = validate_data(model, X, reset=False, dtype=np.float64)
    n_fitted = len(model.estimators_)
    n_rounds = n_fitted if n_rounds is None else n_rounds
    check_positive_int(n_rounds, "n_rounds")
    if n_rounds > n_fitted:
        raise ValueError(f"n_rounds must be at most the number of fitted learners ({n_fitted}), got {n_rounds}")
    weights = model.estimator_weights_[:n_rounds]
    truth = np.asarray(y)[:, None] == model.classes_[None, :]
    if not truth.any(axis=1).all():
        raise ValueError("y must hold only labels from model.classes_")
    *_, votes = _votes(model.estimators_[:n_rounds], weights, model.classes_, X)
    share = votes / weights.sum()
    true_share = share[truth]
    other_share = np.where(truth, -np.inf, share).max(axis=1)
    return true_share - other_share


# --------------------------------------------------------------------------- estimator
def _check_learning_rate(value: object) -> None:
    if not isinstance(value, Real) or isinstance(value, bool) or not 0 < value < np.inf:
        raise ValueError(f"learning_rate must be a positive finite number, got {value!r}")


def _check_estimator(estimator: object) -> BaseEstimator:
    """A clone-able classifier that accepts ``sample_weight``; ``None`` means a stump."""
    if estimator is None:
        return DecisionTreeClassifier(max_depth=1)
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict") and hasattr(estimator, "get_params")):
        raise TypeError(
            f"estimator must be a scikit-learn style classifier with fit and predict, got {type(estimator).__name__}"
        )
    if not has_fit_parameter(estimator, "sample_weight"):
        raise ValueError(f"estimator must accept sample_weight in fit; {type(estimator).__name__}.fit does not")
    return estimator


def _seed_member(member: BaseEstimator, rng: np.random.Generator) -> int:
    """Give every ``random_state`` parameter of ``member`` its own seed; return the seed."""
    seed = int(rng.integers(np.iinfo(np.int32).max))
    keys = [k for k in member.get_params(deep=True) if k == "random_state" or k.endswith("__random_state")]
    if keys:
        member.set_params(**dict.fromkeys(keys, seed))
    return seed


class AdaBoostClassifier(ClassifierMixin, BaseEstimator):
    """Multi-class AdaBoost (SAMME) over any classifier that accepts sample weights.

    Each round fits a clone of ``estimator`` to the weighted training set,
    measures its weighted error ``e``, gives it the vote
    ``alpha = learning_rate * (ln((1 - e) / e) + ln(K - 1))`` and multiplies the
    weight of each misclassified point by ``exp(alpha)``. Boosting stops early
    when a learner is perfect (it is kept, with vote 1, as scikit-learn does) or
    no better than chance, ``e >= 1 - 1/K`` (it is discarded).

    Parameters
    ----------
    estimator : classifier or None, default=None
        The weak learner; its ``fit`` must accept ``sample_weight``. ``None``
        means a stump, :class:`~mlnotes.ensembles.DecisionTreeClassifier` with
        ``max_depth=1``.
    n_estimators : int, default=50
        Maximum number of boosting rounds.
    learning_rate : float, default=1.0
        Shrinks every vote (and hence every reweighting) by this factor.
    random_state : int, numpy Generator or None, default=None
        Seeds the ``random_state`` of each member, where it has one.

    Attributes
    ----------
    estimator_ : classifier
        The unfitted prototype that members are cloned from.
    estimators_ : list of classifiers
        The fitted members, at most ``n_estimators``.
    estimator_weights_ : ndarray of shape (n_estimators,)
        The votes ``alpha_t``; zero for rounds that were never run.
    estimator_errors_ : ndarray of shape (n_estimators,)
        The weighted errors ``e_t``; one for rounds that were never run.
    classes_ : ndarray of shape (n_classes,)
    n_classes_ : int
    n_features_in_ : int
    feature_importances_ : ndarray of shape (n_features,)
        Members' importances averaged with weights ``alpha_t``.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = AdaBoostClassifier(n_estimators=20, random_state=0).fit(X, y)
    >>> model.score(X, y) > 0.95
    True
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        n_estimators: int = 50,
        learning_rate: float = 1.0,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.random_state = random_state

    # ----------------------------------------------------------------- fitting
    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> AdaBoostClassifier:
        """Boost on ``X`` of shape ``(n_samples, n_features)`` with labels ``y`` of shape ``(n_samples,)``.

        ``sample_weight`` (shape ``(n_samples,)``, non-negative) sets the
        initial weights; by default every point starts with ``1 / n_samples``.
        """
        check_positive_int(self.n_estimators, "n_estimators")
        _check_learning_rate(self.learning_rate)
        self.estimator_ = _check_estimator(self.estimator)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        weight = _check_sample_weight(sample_weight, X, dtype=np.float64, copy=True, ensure_non_negative=True)
        if weight.sum() <= 0:
            raise ValueError("sample_weight must have at least one positive entry")
        weight /= weight.sum()
        self.classes_, y_code = np.unique(y, return_inverse=True)
        self.n_classes_ = n_classes = len(self.classes_)
        rng = as_generator(self.random_state)

        self.estimators_ = []
        self.estimator_weights_ = np.zeros(self.n_estimators)
        self.estimator_errors_ = np.ones(self.n_estimators)
        originally_zero = weight == 0
        fit_member = self._member_fitter(X, y, y_code, ~originally_zero)
        for t in range(self.n_estimators):
            weight = np.where(originally_zero, 0.0, np.maximum(weight, _WEIGHT_FLOOR))
            member, predicted_code = fit_member(weight, rng)
            incorrect = predicted_code != y_code
            error = float(weight[incorrect].sum() / weight.sum())
            if error <= 0.0:  # a perfect learner: keep it and stop, nothing is left to reweight
                self.estimators_.append(member)
                self.estimator_weights_[t], self.estimator_errors_[t] = 1.0, 0.0
                break
            if error >= 1.0 - 1.0 / n_classes:  # no better than chance: its vote would be <= 0
                if not self.estimators_:
                    raise ValueError(
                        f"the first learner's weighted error {error:.4f} is no better than chance "
                        f"(1 - 1/K = {1 - 1 / n_classes:.4f}); AdaBoost cannot start"
                    )
                break
            alpha = samme_alpha(error, n_classes, self.learning_rate)
            self.estimators_.append(member)
            self.estimator_weights_[t], self.estimator_errors_[t] = alpha, error
            weight = reweight(weight, incorrect, alpha)
            if not np.isfinite(weight).all():
                raise FloatingPointError(f"sample weights overflowed at round {t}; lower learning_rate")
        return self

    def _member_fitter(self, X: np.ndarray, y: np.ndarray, y_code: np.ndarray, used: np.ndarray):
        """A function ``(weight, rng) -> (fitted member, predicted class codes on X)``.

        Our own trees take a fast path: the features are binned once for the
        whole ensemble and each round grows a tree on the codes. The bins come
        from the rows with positive weight (``used``) only, so that a row of
        weight zero changes nothing, as if it were absent. Any other classifier
        is cloned and fitted on ``X`` as usual.
        """
        prototype = self.estimator_
        if type(prototype) is DecisionTreeClassifier:
            bins = BinMapper.fit(X[used], prototype.max_bins)
            codes = bins.transform(X)

            def fit_tree(weight: np.ndarray, rng: np.random.Generator):
                member = clone(prototype)
                seed = _seed_member(member, rng)
                keep = weight > 0  # the tree engine requires positive weights
                member._fit_codes(codes[keep], bins, y_code[keep], weight[keep], self.n_classes_, as_generator(seed))
                member.classes_, member.n_classes_ = self.classes_, self.n_classes_
                return member, np.argmax(member.tree_.predict(X), axis=1)

            return fit_tree

        def fit_any(weight: np.ndarray, rng: np.random.Generator):
            member = clone(prototype)
            _seed_member(member, rng)
            member.fit(X, y, sample_weight=weight)
            return member, np.searchsorted(self.classes_, member.predict(X))

        return fit_any

    # ----------------------------------------------------------------- prediction
    def _check_X(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        return validate_data(self, X, reset=False, dtype=np.float64)

    def _decision_from_votes(self, votes: np.ndarray, total_weight: float) -> np.ndarray:
        """SAMME's symmetric scores from the class votes ``V``, shape ``(n, K)`` (or ``(n,)`` for two classes).

        Each learner adds ``alpha`` to the class it predicts and
        ``-alpha / (K - 1)`` to every other class, so the scores sum to zero:
        ``f_k = (K V_k - A) / (K - 1)`` with ``A = sum_t alpha_t``. Dividing by
        ``A`` keeps them in ``[-1, 1]``. With two classes only
        ``f_1 - f_0 = 2 (V_1 - V_0) / A`` is returned, as scikit-learn does.
        """
        K = self.n_classes_
        if K == 1:
            return np.zeros((len(votes), 1))
        scores = (K * votes - total_weight) / ((K - 1) * total_weight)
        return scores[:, 1] - scores[:, 0] if K == 2 else scores

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Weighted SAMME scores; shape ``(n_samples,)`` for two classes, else ``(n_samples, n_classes)``.

        For two classes, positive values favour ``classes_[1]``.
        """
        *_, last = self.staged_decision_function(X)
        return last

    def staged_decision_function(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """:meth:`decision_function` after each boosting round (a generator)."""
        X = self._check_X(X)
        weights = self.estimator_weights_
        for t, votes in enumerate(_votes(self.estimators_, weights, self.classes_, X)):
            yield self._decision_from_votes(votes, weights[: t + 1].sum())

    def _label(self, decision: np.ndarray) -> np.ndarray:
        if self.n_classes_ == 2:
            return self.classes_[(decision > 0).astype(np.intp)]
        return self.classes_[np.argmax(decision, axis=1)]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The class with the largest weighted vote, shape ``(n_samples,)``."""
        return self._label(self.decision_function(X))

    def staged_predict(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """:meth:`predict` after each boosting round (a generator)."""
        for decision in self.staged_decision_function(X):
            yield self._label(decision)

    def staged_score(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> Iterator[float]:
        """Accuracy on ``(X, y)`` after each boosting round (a generator)."""
        for predicted in self.staged_predict(X):
            yield accuracy_score(y, predicted, sample_weight=sample_weight)

    def _proba(self, decision: np.ndarray) -> np.ndarray:
        """``softmax(f / (K - 1))``, the probabilities of Zhu et al. (2009), eq. 15."""
        K = self.n_classes_
        if K == 1:
            return np.ones((len(decision), 1))
        logits = np.stack([-decision, decision], axis=1) / 2 if K == 2 else decision / (K - 1)
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``softmax(f(x) / (K - 1))``, shape ``(n_samples, n_classes)``."""
        return self._proba(self.decision_function(X))

    def staged_predict_proba(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """:meth:`predict_proba` after each boosting round (a generator)."""
        for decision in self.staged_decision_function(X):
            yield self._proba(decision)

    def predict_log_proba(self, X: np.ndarray) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`, shape ``(n_samples, n_classes)``."""
        return np.log(self.predict_proba(X))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Members' ``feature_importances_`` averaged with weights ``alpha_t``, shape ``(n_features,)``."""
        check_is_fitted(self, "estimators_")
        if not hasattr(self.estimators_[0], "feature_importances_"):
            raise AttributeError(f"{type(self.estimators_[0]).__name__} has no feature_importances_")
        weights = self.estimator_weights_[: len(self.estimators_)]
        stacked = np.array([member.feature_importances_ for member in self.estimators_])
        return weights @ stacked / weights.sum()


# --------------------------------------------------------------------------- the original binary loop
@dataclass
class BinaryAdaBoost:
    """A fitted two-class AdaBoost from :func:`adaboost_binary`.

    Attributes
    ----------
    classes : ndarray of shape (2,)
        ``classes[0]`` is coded ``-1``, ``classes[1]`` is coded ``+1``.
    estimators : list of classifiers
    alphas : ndarray of shape (n_rounds,)
        Votes ``alpha_t = 1/2 ln((1 - e_t) / e_t)``.
    errors : ndarray of shape (n_rounds,)
        Weighted errors ``e_t``.
    normalizers : ndarray of shape (n_rounds,)
        ``Z_t = sum_i D_t(i) exp(-alpha_t y_i h_t(x_i))``, equal to
        ``2 sqrt(e_t (1 - e_t))``.
    weights : list of ndarray of shape (n_samples,)
        The distributions ``D_1, ..., D_T`` the learners were fitted to.
    """

    classes: np.ndarray
    estimators: list = field(default_factory=list)
    alphas: np.ndarray = field(default_factory=lambda: np.zeros(0))
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    normalizers: np.ndarray = field(default_factory=lambda: np.zeros(0))
    weights: list = field(default_factory=list)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """``F(x) = sum_t alpha_t h_t(x)`` with ``h_t(x)`` in ``{-1, +1}``, shape ``(n_samples,)``."""
        X = np.asarray(X, dtype=np.float64)
        return sum(a * np.where(h.predict(X) == self.classes[1], 1.0, -1.0) for a, h in zip(self.alphas, self.estimators))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``classes[1]`` where ``F(x) > 0``, else ``classes[0]``; shape ``(n_samples,)``."""
        return self.classes[(self.decision_function(X) > 0).astype(np.intp)]


def adaboost_binary(
    X: np.ndarray,
    y: np.ndarray,
    n_estimators: int = 50,
    estimator: BaseEstimator | None = None,
    random_state: int | np.random.Generator | None = None,
) -> BinaryAdaBoost:
    """Two-class AdaBoost as Freund and Schapire (1997) state it, written as a plain loop.

    With labels ``y_i`` in ``{-1, +1}`` and ``D_1(i) = 1/n``, each round fits
    ``h_t`` to ``D_t``, sets ``e_t = sum_{h_t(x_i) != y_i} D_t(i)``,
    ``alpha_t = 1/2 ln((1 - e_t) / e_t)`` and
    ``D_{t+1}(i) = D_t(i) exp(-alpha_t y_i h_t(x_i)) / Z_t``. The stopping rules
    and the random seeds of the members are those of :class:`AdaBoostClassifier`
    with two classes, so the two fit the same learners.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Exactly two distinct labels.
    n_estimators : int, default=50
    estimator : classifier or None
        Weak learner accepting ``sample_weight`` (default: a stump).
    random_state : int, numpy Generator or None

    Returns
    -------
    BinaryAdaBoost
    """
    check_positive_int(n_estimators, "n_estimators")
    prototype = _check_estimator(estimator)
    X = np.asarray(X, dtype=np.float64)
    classes, y_code = np.unique(np.asarray(y), return_inverse=True)
    if len(classes) != 2 or X.ndim != 2 or len(X) != len(y_code):
        raise ValueError(
            f"adaboost_binary needs X of shape (n, d) and y of shape (n,) with two classes; "
            f"got X {X.shape}, y with {len(classes)} classes and {len(y_code)} rows"
        )
    sign = np.where(y_code == 1, 1.0, -1.0)
    rng = as_generator(random_state)
    model = BinaryAdaBoost(classes=classes)
    alphas, errors, normalizers = [], [], []
    weight = np.full(len(X), 1.0 / len(X))
    for _ in range(n_estimators):
        weight = np.maximum(weight, _WEIGHT_FLOOR)
        member = clone(prototype)
        _seed_member(member, rng)
        member.fit(X, classes[y_code], sample_weight=weight)
        h = np.where(member.predict(X) == classes[1], 1.0, -1.0)
        error = float(weight[h != sign].sum() / weight.sum())
        if error >= 0.5:
            break
        model.estimators.append(member)
        model.weights.append(weight)
        if error == 0.0:  # perfect: keep it with the vote AdaBoostClassifier gives (1), halved
            alphas.append(0.5), errors.append(0.0), normalizers.append(0.0)
            break
        alpha = binary_alpha(error)
        unnormalised = weight * np.exp(-alpha * sign * h)
        alphas.append(alpha), errors.append(error), normalizers.append(unnormalised.sum() / weight.sum())
        weight = unnormalised / unnormalised.sum()
    if not model.estimators:
        raise ValueError(f"the first learner's weighted error {error:.4f} is no better than chance (0.5)")
    model.alphas, model.errors, model.normalizers = np.array(alphas), np.array(errors), np.array(normalizers)
    return model


# --------------------------------------------------------------------------- exercises
def _check_number(answer: object, expected: float, what: str, hint: str, rtol: float = 1e-3) -> bool:
    if not isinstance(answer, Real) or isinstance(answer, bool):
        print(f"Expected a number for {what}, got {answer!r}.")
        return False
    if np.isclose(float(answer), expected, rtol=rtol, atol=1e-6):
        print(f"Correct: {what} = {expected:.4f}.")
        return True
    print(f"Not quite: {answer!r} is not {what}. Hint: {hint}")
    return False


def check_exercise_1(answer: float) -> bool:
    """Exercise 1: the binary AdaBoost vote of a stump with weighted error 0.2."""
    return _check_number(answer, binary_alpha(0.2), "alpha for e = 0.2", "alpha = 1/2 ln((1 - e) / e).")


def check_exercise_2(answer: float) -> bool:
    """Exercise 2: SAMME's vote of a learner with error 0.85 on the ten digit classes."""
    return _check_number(
        answer,
        samme_alpha(0.85, 10),
        "SAMME's alpha for e = 0.85, K = 10",
        "alpha = ln((1 - e) / e) + ln(K - 1); an error above 1/2 can still earn a positive vote.",
    )


def check_exercise_3(answer: float) -> bool:
    """Exercise 3: after one SAMME round with K classes, the share of weight on the learner's mistakes.

    The answer is a function of ``K`` only; give it for ``K = 3``.
    """
    return _check_number(
        answer,
        2.0 / 3.0,
        "the weight share of the mistakes after reweighting (K = 3)",
        "multiply the mistakes' total e by exp(alpha) and the rest by 1, then normalise; e cancels.",
    )

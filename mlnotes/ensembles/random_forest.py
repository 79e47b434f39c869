"""Random forests: bagged CART trees that also draw features at random at every node.

Implements Breiman's random forest :cite:p:`breiman2001random` for classification
and regression on top of the shared CART engine :mod:`mlnotes.ensembles.cart`
:cite:p:`breiman1984cart`. Each tree is grown, unpruned, on a bootstrap sample
of the rows :cite:p:`breiman1996bagging`, and every node searches only ``k`` of the
``d`` features, drawn afresh at that node (``max_features``; scikit-learn's
default ``"sqrt"`` for classification, ``"log2"`` as in the study notes). The
forest predicts by averaging its trees:

.. math::

    \\hat p(y = c \\mid x) = \\frac{1}{M} \\sum_{m=1}^{M} \\hat p_m(y = c \\mid x),
    \\qquad
    \\hat f(x) = \\frac{1}{M} \\sum_{m=1}^{M} \\hat f_m(x).

Rows that a tree did not draw are its *out-of-bag* (OOB) rows; averaging each
training row over the trees that left it out gives an almost free estimate of
the test error (``oob_score=True``).

Implementation in brief: the data are binned once per forest
(:class:`~mlnotes.ensembles.cart.BinMapper`); each tree's bootstrap draw becomes
integer sample weights (rows drawn zero times are dropped before growing); each
tree is a real fitted :class:`~mlnotes.ensembles.cart.DecisionTreeClassifier` or
:class:`~mlnotes.ensembles.cart.DecisionTreeRegressor`, grown through its
``_fit_codes`` hook on the shared codes.

The chapter ``book/ensembles/random_forest.ipynb`` teaches this module (and the
CART engine underneath it).
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from mlnotes.ensembles._base import as_generator, bootstrap_counts, check_positive_int, oob_average
from mlnotes.ensembles.cart import BinMapper, DecisionTreeClassifier, DecisionTreeRegressor

__all__ = [
    "RandomForestClassifier",
    "RandomForestRegressor",
    "tree_correlation",
    "check_exercise_1",
    "check_exercise_2",
]


class _BaseForest(BaseEstimator):
    """Fitting logic shared by the two forests: bin once, bootstrap, grow, keep OOB statistics."""

    _tree_class: type = DecisionTreeClassifier

    def __init__(
        self,
        n_estimators: int,
        *,
        criterion: str,
        max_depth: int | None,
        min_samples_split: int,
        min_samples_leaf: int,
        max_features: str | int | float | None,
        bootstrap: bool,
        oob_score: bool,
        max_bins: int,
        random_state: int | np.random.Generator | None,
    ) -> None:
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.max_bins = max_bins
        self.random_state = random_state

    def _make_tree(self, seed: int) -> DecisionTreeClassifier | DecisionTreeRegressor:
        return self._tree_class(
            criterion=self.criterion,
            max_depth=self.max_depth,
            min_samples_split=self.min_samples_split,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_bins=self.max_bins,
            random_state=seed,
        )

    def _check_forest_params(self, n_features: int) -> None:
        check_positive_int(self.n_estimators, "n_estimators", 1)
        for name in ("bootstrap", "oob_score"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.oob_score and not self.bootstrap:
            raise ValueError("oob_score=True needs bootstrap=True: without bootstrap no row is out of bag")
        # The trees check criterion, depth, leaf sizes, max_features and max_bins; do it once, before any work.
        self._make_tree(0)._check_params(n_features)

    def _grow_forest(self, X: np.ndarray, target: np.ndarray, sample_weight: np.ndarray | None, n_classes: int) -> None:
        """Grow ``n_estimators`` trees on ``X`` of shape ``(n_samples, n_features)`` and ``target`` of shape ``(n_samples,)``."""
        weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(weight < 0):
            raise ValueError("sample_weight must be non-negative")
        if not np.any(weight > 0):
            raise ValueError("sample_weight must have at least one positive entry")
        self._check_forest_params(X.shape[1])
        # Rows of zero weight are treated as absent: the bootstrap draws among the others only.
        self._sampled_rows = np.flatnonzero(weight > 0)
        self._n_samples = X.shape[0]
        bins = BinMapper.fit(X[self._sampled_rows], self.max_bins)
        codes = bins.transform(X)
        # One seed per tree: tree b draws its bootstrap sample, then its node features, from its own stream.
        self._tree_seeds = as_generator(self.random_state).integers(0, 2**31 - 1, size=self.n_estimators)
        self.estimators_ = []
        for b in range(self.n_estimators):
            counts, tree_rng = self._draw_sample(b)
            rows = np.flatnonzero(counts)
            tree = self._make_tree(int(self._tree_seeds[b]))
            tree._fit_codes(codes[rows], bins, target[rows], counts[rows] * weight[rows], n_classes, tree_rng)
            self.estimators_.append(tree)
        self.n_features_in_ = X.shape[1]

    def _draw_sample(self, b: int) -> tuple[np.ndarray, np.random.Generator]:
        """Tree ``b``'s integer weight of every training row, shape ``(n_samples,)``, and its generator after the draw."""
        rng = np.random.default_rng(int(self._tree_seeds[b]))
        counts = np.zeros(self._n_samples, dtype=np.intp)
        rows = self._sampled_rows
        counts[rows] = bootstrap_counts(len(rows), rng) if self.bootstrap else 1
        return counts, rng

    @property
    def estimators_samples_(self) -> list[np.ndarray]:
        """Indices of the training rows each tree drew (with repetitions), one array per tree, as in scikit-learn."""
        check_is_fitted(self, "estimators_")
        rows = np.arange(self._n_samples)
        return [np.repeat(rows, self._draw_sample(b)[0]) for b in range(len(self.estimators_))]

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean over trees of each tree's normalised impurity decrease, shape ``(n_features,)``, summing to one.

        Trees that are a single leaf carry no information and are skipped, as in scikit-learn.
        """
        check_is_fitted(self, "estimators_")
        per_tree = [t.feature_importances_ for t in self.estimators_ if t.tree_.node_count > 1]
        if not per_tree:
            return np.zeros(self.n_features_in_)
        mean = np.mean(per_tree, axis=0)
        return mean / mean.sum()

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf index of every sample in every tree, shape ``(n_samples, n_estimators)``."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return np.stack([t.tree_.apply(X) for t in self.estimators_], axis=1)

    def _mean_tree_output(self, X: np.ndarray) -> np.ndarray:
        """Average of the trees' leaf values for validated ``X``, shape ``(n_samples, n_outputs)``."""
        total = self.estimators_[0].tree_.predict(X).copy()
        for tree in self.estimators_[1:]:
            total += tree.tree_.predict(X)
        return total / len(self.estimators_)

    def _oob_predictions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each training row's mean output over the trees that did not draw it, and how many such trees."""
        predictions = [t.tree_.predict(X) for t in self.estimators_]
        in_bag = [self._draw_sample(b)[0] > 0 for b in range(len(self.estimators_))]
        average, n_oob = oob_average(predictions, in_bag)
        if np.any(n_oob == 0):
            warnings.warn(
                f"{int(np.sum(n_oob == 0))} training rows were drawn by every tree and have no OOB prediction; "
                "the OOB score ignores them (use more trees)",
                UserWarning,
                stacklevel=3,
            )
        return average, n_oob

    def staged_oob_score(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """OOB score of the first ``b`` trees, for ``b = 1 .. n_estimators``, shape ``(n_estimators,)``.

        ``X`` and ``y`` must be the training data. Each entry averages, for every
        row, only the first ``b`` trees that left the row out, and scores the rows
        that have at least one such tree (accuracy for a classifier, R^2 for a
        regressor); the last entry equals ``oob_score_``.
        """
        check_is_fitted(self, "estimators_")
        if not self.bootstrap:
            raise ValueError("staged_oob_score needs a forest fitted with bootstrap=True")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if len(X) != self._n_samples or len(y) != self._n_samples:
            raise ValueError(
                f"X and y must be the {self._n_samples} training rows, got {len(X)} rows of X and {len(y)} of y"
            )
        target = self._encode_target(np.asarray(y))
        total, n_oob, scores = None, np.zeros(self._n_samples, dtype=np.intp), []
        for b, tree in enumerate(self.estimators_):
            out_of_bag = self._draw_sample(b)[0] == 0
            prediction = np.where(out_of_bag[:, None], tree.tree_.predict(X), 0.0)
            total = prediction if total is None else total + prediction
            n_oob += out_of_bag
            seen = n_oob > 0
            scores.append(self._score_outputs(target[seen], total[seen] / n_oob[seen, None]) if seen.any() else np.nan)
        return np.array(scores)


class RandomForestClassifier(ClassifierMixin, _BaseForest):
    """A random forest of CART classification trees.

    Parameters
    ----------
    n_estimators : int, default=100
        Number of trees ``M``.
    criterion : {"gini", "entropy"}, default="gini"
        Impurity measure of every tree's splits.
    max_depth : int or None, default=None
        Maximum depth of each tree; ``None`` grows them until leaves are pure.
    min_samples_split : int, default=2
        A node with fewer (distinct, in-bag) rows becomes a leaf.
    min_samples_leaf : int, default=1
        A split may not leave fewer rows than this on either side.
    max_features : {"sqrt", "log2"}, int, float or None, default="sqrt"
        Features ``k`` drawn without replacement at each node: ``"sqrt"`` gives
        ``floor(sqrt(d))``, ``"log2"`` gives ``floor(log2(d))``, a float is a
        fraction of ``d``, ``None`` means all (plain bagging of trees).
    bootstrap : bool, default=True
        Grow each tree on a bootstrap sample (``False``: on all rows, so only the
        feature draws make trees differ).
    oob_score : bool, default=False
        Estimate the accuracy from out-of-bag rows (needs ``bootstrap=True``).
    max_bins : int, default=255
        Bins per feature (at most 256), shared by all trees.
    random_state : int, numpy Generator or None
        Seed of the bootstrap samples and the feature draws.

    Attributes
    ----------
    estimators_ : list of DecisionTreeClassifier
        The fitted trees; ``estimators_[b].random_state`` is the seed of tree ``b``.
    classes_ : ndarray of shape (n_classes,)
    n_classes_ : int
    n_features_in_ : int
    feature_importances_ : ndarray of shape (n_features,)
        Mean decrease in impurity, averaged over the trees.
    oob_score_ : float
        Accuracy of the OOB predictions (only with ``oob_score=True``).
    oob_decision_function_ : ndarray of shape (n_samples, n_classes)
        OOB class probabilities of each training row; NaN for a row that every
        tree drew (only with ``oob_score=True``).

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=30, oob_score=True, random_state=0).fit(X, y)
    >>> bool(forest.oob_score_ > 0.9)
    True
    """

    _tree_class = DecisionTreeClassifier

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: Literal["gini", "entropy"] = "gini",
        max_depth: int | None = None,
        min_samples_split: int = 2,
        min_samples_leaf: int = 1,
        max_features: str | int | float | None = "sqrt",
        bootstrap: bool = True,
        oob_score: bool = False,
        max_bins: int = 255,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            n_estimators,
            criterion=criterion,
            max_depth=max_depth,
            min_samples_split=min_samples_split,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            bootstrap=bootstrap,
            oob_score=oob_score,
            max_bins=max_bins,
            random_state=random_state,
        )

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> RandomForestClassifier:
        """Grow the forest on ``X`` of shape ``(n_samples, n_features)`` and labels ``y`` of shape ``(n_samples,)``.

        ``sample_weight`` (shape ``(n_samples,)``) multiplies each tree's bootstrap counts.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, target = np.unique(y, return_inverse=True)
        self.n_classes_ = len(self.classes_)
        self._grow_forest(X, target, sample_weight, self.n_classes_)
        for tree in self.estimators_:
            tree.classes_, tree.n_classes_ = self.classes_, self.n_classes_
        if self.oob_score:
            proba, n_oob = self._oob_predictions(X)
            self.oob_decision_function_ = proba
            self.oob_score_ = self._score_outputs(target[n_oob > 0], proba[n_oob > 0])
        return self

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        """Class labels to indices into ``classes_``."""
        return np.searchsorted(self.classes_, y)

    def _score_outputs(self, target: np.ndarray, outputs: np.ndarray) -> float:
        """Accuracy of mean class probabilities ``outputs`` (n, n_classes) against class indices ``target``."""
        return float(accuracy_score(target, np.argmax(outputs, axis=1)))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Mean of the trees' class probabilities, shape ``(n_samples, n_classes)``."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._mean_tree_output(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class with the highest mean probability (soft voting), shape ``(n_samples,)``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class RandomForestRegressor(RegressorMixin, _BaseForest):
    """A random forest of CART regression trees (squared error).

    Parameters are those of :class:`RandomForestClassifier`, except
    ``criterion="squared_error"`` (the only one) and ``max_features=1.0`` by
    default (all features, as in scikit-learn).

    Attributes
    ----------
    estimators_ : list of DecisionTreeRegressor
    n_features_in_ : int
    feature_importances_ : ndarray of shape (n_features,)
    oob_score_ : float
        R^2 of the OOB predictions (only with ``oob_score=True``).
    oob_prediction_ : ndarray of shape (n_samples,)
        OOB prediction of each training row; NaN for a row that every tree drew.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True)
    >>> forest = RandomForestRegressor(n_estimators=30, oob_score=True, random_state=0).fit(X, y)
    >>> bool(0.3 < forest.oob_score_ < 0.6)
    True
    """

    _tree_class = DecisionTreeRegressor

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: Literal["squared_error"] = "squared_error",
        max_depth: int | None = None,
        min_samples_split: int = 2,
        min_samples_leaf: int = 1,
        max_features: str | int | float | None = 1.0,
        bootstrap: bool = True,
        oob_score: bool = False,
        max_bins: int = 255,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            n_estimators,
            criterion=criterion,
            max_depth=max_depth,
            min_samples_split=min_samples_split,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            bootstrap=bootstrap,
            oob_score=oob_score,
            max_bins=max_bins,
            random_state=random_state,
        )

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> RandomForestRegressor:
        """Grow the forest on ``X`` of shape ``(n_samples, n_features)`` and targets ``y`` of shape ``(n_samples,)``.

        ``sample_weight`` (shape ``(n_samples,)``) multiplies each tree's bootstrap counts.
        """
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        target = y.astype(np.float64)
        self._grow_forest(X, target, sample_weight, 0)
        if self.oob_score:
            prediction, n_oob = self._oob_predictions(X)
            self.oob_prediction_ = prediction[:, 0]
            self.oob_score_ = self._score_outputs(target[n_oob > 0], prediction[n_oob > 0])
        return self

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        return y.astype(np.float64)

    def _score_outputs(self, target: np.ndarray, outputs: np.ndarray) -> float:
        """R^2 of mean predictions ``outputs`` (n, 1) against ``target``."""
        return float(r2_score(target, outputs[:, 0]))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Mean of the trees' predictions, shape ``(n_samples,)``."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._mean_tree_output(X)[:, 0]


# --------------------------------------------------------------------------- analysis helpers
def tree_correlation(forest: RandomForestClassifier | RandomForestRegressor, X: np.ndarray) -> float:
    """Mean pairwise correlation between the trees' outputs on ``X`` (shape ``(n_samples, n_features)``).

    For a classifier the output is each tree's probability of the last class
    (binary problems) or, for more classes, its probability of the class that
    the forest predicts; for a regressor, the prediction. This is the ``rho``
    of the variance formula ``rho * sigma^2 + (1 - rho) * sigma^2 / M`` taught in
    the chapter.
    """
    check_is_fitted(forest, "estimators_")
    X = validate_data(forest, X, reset=False, dtype=np.float64)
    outputs = np.stack([t.tree_.predict(X) for t in forest.estimators_])  # (B, n, n_outputs)
    if outputs.shape[2] == 1:
        per_tree = outputs[:, :, 0]
    else:
        chosen = np.argmax(outputs.mean(axis=0), axis=1) if outputs.shape[2] > 2 else np.full(len(X), 1)
        per_tree = outputs[:, np.arange(len(X)), chosen]
    if len(per_tree) < 2:
        raise ValueError(f"tree_correlation needs a forest of at least 2 trees, got {len(per_tree)}")
    corr = np.corrcoef(per_tree)
    off_diagonal = corr[~np.eye(len(corr), dtype=bool)]
    return float(np.nanmean(off_diagonal))


def check_exercise_1(answer: float) -> bool:
    """Exercise 1: the probability that a given row is out of bag for one tree, as ``n -> infinity``.

    Prints whether ``answer`` is right to three decimals, with a hint if not.
    """
    truth = float(np.exp(-1.0))
    if not isinstance(answer, (int, float, np.floating)) or not np.isfinite(answer):
        print(f"Expected a number, got {answer!r}.")
        return False
    if abs(answer - truth) < 5e-4:
        print(f"Right: (1 - 1/n)^n -> 1/e = {truth:.3f}; about 37% of the rows are out of bag for each tree.")
        return True
    print("Not quite. A row is missed by one draw with probability 1 - 1/n; a bootstrap makes n independent draws.")
    return False


def check_exercise_2(answer: float, rho: float = 0.3, sigma2: float = 1.0, n_trees: int = 50) -> bool:
    """Exercise 2: the variance of the mean of ``n_trees`` identically distributed trees with correlation ``rho``.

    Each tree's prediction has variance ``sigma2``. Prints whether ``answer`` is right.
    """
    if not isinstance(n_trees, Integral) or n_trees < 1:
        raise ValueError(f"n_trees must be an int >= 1, got {n_trees!r}")
    truth = rho * sigma2 + (1 - rho) * sigma2 / n_trees
    if not isinstance(answer, (int, float, np.floating)) or not np.isfinite(answer):
        print(f"Expected a number, got {answer!r}.")
        return False
    if abs(answer - truth) <= 1e-6 * max(1.0, abs(truth)):
        print(f"Right: rho*sigma^2 + (1-rho)*sigma^2/M = {truth:.4f}; more trees only remove the second term.")
        return True
    print("Not quite. Write Var(mean) = (1/M^2) * sum_i sum_j Cov(T_i, T_j) and split the diagonal from the rest.")
    return False

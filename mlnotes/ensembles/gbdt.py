"""Gradient boosting with regression trees (GBDT, also called GBM, GBRT or MART).

The chapter ``book/ensembles/gbdt.ipynb`` teaches this module.

Gradient boosting :cite:p:`friedman2001greedy` builds an additive model

.. math::

    F_M(x) = F_0 + \\nu \\sum_{m=1}^{M} h_m(x)

by gradient descent in function space. At stage ``m`` it computes the
*pseudo-residuals*, the negative gradient of the loss at the current
predictions of the training rows,

.. math::

    r_{im} = -\\left[\\frac{\\partial L(y_i, F)}{\\partial F}\\right]_{F = F_{m-1}(x_i)},

fits a small CART regression tree to them (squared error), and then *refits
the value of each leaf* so that it minimises the actual loss of the rows in that
leaf (a line search per leaf). Shrinkage multiplies every tree by the learning
rate ``nu``. Stochastic gradient boosting :cite:p:`friedman2002stochastic`
grows each stage on a random subsample drawn without replacement.

Losses (:class:`SquaredError`, :class:`AbsoluteError`, :class:`HuberLoss`,
:class:`LogLoss`) each provide the constant prior ``F_0``, the pseudo-residuals
and the leaf refit; the estimators :class:`GradientBoostingRegressor` and
:class:`GradientBoostingClassifier` follow scikit-learn's API and defaults.
Features are binned once per fit (:class:`~mlnotes.ensembles.cart.BinMapper`)
and every tree is grown by the shared level-wise histogram engine
:func:`~mlnotes.ensembles.cart.grow_tree`.
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Real

import numpy as np
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from mlnotes.ensembles._base import as_generator, check_fraction, check_positive_int
from mlnotes.ensembles.cart import _LEAF, BinMapper, DecisionTreeRegressor, resolve_max_features
from mlnotes.exercises import report as _report

__all__ = [
    "AbsoluteError",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "HuberLoss",
    "LogLoss",
    "SquaredError",
    "check_exercise_1",
    "check_exercise_2",
    "weighted_quantile",
]


# --------------------------------------------------------------------------- quantiles
def weighted_quantile(
    values: np.ndarray,
    weights: np.ndarray,
    q: float,
    groups: np.ndarray | None = None,
    n_groups: int = 1,
) -> np.ndarray:
    """Weighted ``q``-quantile of ``values``, for every group at once.

    The quantile is the smallest value whose cumulative weight reaches
    ``q * total``; when the cumulative weight lands exactly on ``q * total``
    it is averaged with the next value (NumPy's ``"averaged_inverted_cdf"``),
    so that ``q = 0.5`` with unit weights is the ordinary median.

    Parameters
    ----------
    values, weights : ndarray of shape (n,)
        Weights must be positive.
    q : float
        Quantile level in ``(0, 1]``.
    groups : ndarray of int, shape (n,), optional
        Group ``0..n_groups-1`` of each value (for example the leaf of each
        row); every group must be non-empty. ``None``: one group.
    n_groups : int
        Number of groups.

    Returns
    -------
    ndarray of shape (n_groups,)
    """
    groups = np.zeros(len(values), dtype=np.intp) if groups is None else groups
    order = np.lexsort((values, groups))
    v, w, g = values[order], weights[order], groups[order]
    total = np.bincount(g, weights=w, minlength=n_groups)
    start = np.concatenate([[0.0], np.cumsum(total)[:-1]])
    within = np.cumsum(w) - start[g]  # cumulative weight inside each group
    target = q * total[g]
    tol = 1e-12 * total[g]
    reached = np.flatnonzero(within >= target - tol)
    _, first = np.unique(g[reached], return_index=True)  # values are sorted by group
    pos = reached[first]
    exact = np.abs(within[pos] - target[pos]) <= tol[pos]
    last_of_group = np.cumsum(np.bincount(g, minlength=n_groups)) - 1
    nxt = np.minimum(pos + 1, last_of_group)
    return np.where(exact, (v[pos] + v[nxt]) / 2, v[pos])


def _leaf_mean(values: np.ndarray, weight: np.ndarray, leaf: np.ndarray, n_leaves: int) -> np.ndarray:
    """Weighted mean of ``values`` within each leaf, shape ``(n_leaves,)``."""
    return np.bincount(leaf, weights=weight * values, minlength=n_leaves) / np.bincount(
        leaf, weights=weight, minlength=n_leaves
    )


# --------------------------------------------------------------------------- losses
class _Loss:
    """What gradient boosting needs from a loss: a prior, a gradient, a leaf refit and the loss itself.

    Raw predictions ``raw`` have shape ``(n_samples, n_trees_per_stage)``;
    targets ``y`` have shape ``(n_samples,)`` (class codes for classification).
    """

    n_trees_per_stage: int = 1

    def init_raw(self, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """The constant prior ``F_0``, shape ``(n_trees_per_stage,)``: the best constant (Huber: the median)."""
        raise NotImplementedError

    def begin_stage(self, y: np.ndarray, raw: np.ndarray, weight: np.ndarray) -> None:
        """Adapt to the current predictions before a stage (only Huber uses it)."""

    def negative_gradient(self, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Pseudo-residuals ``-dL/dF``, shape ``(n_samples, n_trees_per_stage)``."""
        raise NotImplementedError

    def leaf_values(
        self,
        y: np.ndarray,
        raw: np.ndarray,
        residual: np.ndarray,
        weight: np.ndarray,
        leaf: np.ndarray,
        n_leaves: int,
        k: int,
    ) -> np.ndarray:
        """Refit the ``n_leaves`` leaf values of tree ``k`` of a stage, shape ``(n_leaves,)``.

        ``leaf`` holds each row's leaf as ``0..n_leaves-1`` and ``residual`` the
        pseudo-residuals of shape ``(n_samples, n_trees_per_stage)``.
        """
        raise NotImplementedError

    def __call__(self, y: np.ndarray, raw: np.ndarray, weight: np.ndarray) -> float:
        """Weighted mean loss of predictions ``raw`` of shape ``(n_samples, n_trees_per_stage)``."""
        raise NotImplementedError


class SquaredError(_Loss):
    """``L(y, F) = (y - F)^2``: prior the mean, pseudo-residual ``y - F`` (up to a factor 2), leaf the mean residual.

    The factor 2 of the gradient is dropped, as everywhere: it only rescales
    the tree, and the leaf refit undoes any rescaling.
    """

    def init_raw(self, y, weight):
        return np.array([np.average(y, weights=weight)])

    def negative_gradient(self, y, raw):
        return (y - raw[:, 0])[:, None]

    def leaf_values(self, y, raw, residual, weight, leaf, n_leaves, k):
        return _leaf_mean(residual[:, 0], weight, leaf, n_leaves)

    def __call__(self, y, raw, weight):
        return float(np.average((y - raw[:, 0]) ** 2, weights=weight))


class AbsoluteError(_Loss):
    """``L(y, F) = |y - F|``: prior the median, pseudo-residual ``sign(y - F)``, leaf the median residual."""

    def init_raw(self, y, weight):
        return weighted_quantile(y, weight, 0.5)

    def negative_gradient(self, y, raw):
        return np.sign(y - raw[:, 0])[:, None]

    def leaf_values(self, y, raw, residual, weight, leaf, n_leaves, k):
        return weighted_quantile(y - raw[:, 0], weight, 0.5, leaf, n_leaves)

    def __call__(self, y, raw, weight):
        return float(np.average(np.abs(y - raw[:, 0]), weights=weight))


class HuberLoss(_Loss):
    """Huber's loss with a threshold ``delta`` re-chosen at every stage (Friedman 2001, section 4.4).

    .. math::

        L(y, F) = \\begin{cases} \\tfrac12 (y - F)^2 & |y - F| \\le \\delta \\\\
                  \\delta (|y - F| - \\tfrac12 \\delta) & \\text{otherwise,} \\end{cases}

    with ``delta`` the ``alpha``-quantile of the current absolute residuals,
    so that a fraction ``1 - alpha`` of the rows is treated as outliers.
    Pseudo-residuals are the residuals clipped to ``[-delta, delta]``; a leaf
    takes the median ``m`` of its residuals plus the mean clipped deviation
    from it, ``m + mean(sign(r - m) * min(delta, |r - m|))``.

    Parameters
    ----------
    alpha : float, default=0.9
        Quantile of the absolute residuals used as ``delta``.
    """

    def __init__(self, alpha: float = 0.9) -> None:
        self.alpha = alpha
        self.delta = np.nan

    def init_raw(self, y, weight):
        return weighted_quantile(y, weight, 0.5)

    def begin_stage(self, y, raw, weight):
        self.delta = float(weighted_quantile(np.abs(y - raw[:, 0]), weight, self.alpha)[0])

    def negative_gradient(self, y, raw):
        return np.clip(y - raw[:, 0], -self.delta, self.delta)[:, None]

    def leaf_values(self, y, raw, residual, weight, leaf, n_leaves, k):
        diff = y - raw[:, 0]
        median = weighted_quantile(diff, weight, 0.5, leaf, n_leaves)
        dev = diff - median[leaf]
        step = np.sign(dev) * np.minimum(self.delta, np.abs(dev))
        return median + _leaf_mean(step, weight, leaf, n_leaves)

    def __call__(self, y, raw, weight):
        r = np.abs(y - raw[:, 0])
        d = self.delta
        return float(np.average(np.where(r <= d, 0.5 * r**2, d * (r - 0.5 * d)), weights=weight))


class LogLoss(_Loss):
    """Negative log-likelihood of the binomial (two classes) or multinomial model.

    Two classes: one raw score ``F`` per row, ``p = sigmoid(F)``, prior the
    log-odds of the positive class. ``K > 2`` classes: one score per class,
    ``p = softmax(F)``, one tree per class per stage, prior the class
    log-priors centred to sum to zero (as scikit-learn). The pseudo-residual
    of class ``k`` is ``[y = k] - p_k``; a leaf takes one Newton step
    ``sum(w r) / sum(w p (1 - p))``, times ``(K - 1) / K`` for ``K > 2``
    (Friedman 2001, algorithm 6).

    Parameters
    ----------
    n_classes : int
        Number of classes, at least 2.
    """

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        self.n_trees_per_stage = 1 if n_classes == 2 else n_classes

    def _indicator(self, y: np.ndarray) -> np.ndarray:
        if self.n_classes == 2:
            return y[:, None].astype(np.float64)
        return (y[:, None] == np.arange(self.n_classes)).astype(np.float64)

    def proba(self, raw: np.ndarray) -> np.ndarray:
        """Class probabilities from raw scores, shape ``(n_samples, n_classes)``."""
        if self.n_classes == 2:
            p = expit(raw[:, 0])
            return np.stack([1 - p, p], axis=1)
        return softmax(raw, axis=1)

    def init_raw(self, y, weight):
        eps = np.finfo(np.float64).eps
        prior = np.bincount(y, weights=weight, minlength=self.n_classes) / weight.sum()
        prior = np.clip(prior, eps, 1 - eps)
        if self.n_classes == 2:
            return np.array([np.log(prior[1] / prior[0])])
        return np.log(prior) - np.log(prior).mean()

    def negative_gradient(self, y, raw):
        p = self.proba(raw)
        return self._indicator(y) - (p[:, 1:] if self.n_classes == 2 else p)

    def leaf_values(self, y, raw, residual, weight, leaf, n_leaves, k):
        r = residual[:, k]
        p = self._indicator(y)[:, k] - r
        num = np.bincount(leaf, weights=weight * r, minlength=n_leaves)
        den = np.bincount(leaf, weights=weight * p * (1 - p), minlength=n_leaves)
        if self.n_trees_per_stage > 1:
            num *= (self.n_classes - 1) / self.n_classes
        # A leaf whose rows are all predicted with certainty has no curvature and gets no update.
        safe = np.abs(den) >= 1e-150
        return np.where(safe, num / np.where(safe, den, 1.0), 0.0)

    def __call__(self, y, raw, weight):
        if self.n_classes == 2:
            # -log p(y) = log(1 + e^F) - y F, computed stably.
            nll = np.logaddexp(0.0, raw[:, 0]) - y * raw[:, 0]
        else:
            nll = -log_softmax(raw, axis=1)[np.arange(len(y)), y]
        return float(np.average(nll, weights=weight))


# --------------------------------------------------------------------------- estimators
class _BaseGradientBoosting(BaseEstimator):
    """The boosting loop shared by the regressor and the classifier."""

    def __init__(
        self,
        *,
        loss: str,
        learning_rate: float,
        n_estimators: int,
        subsample: float,
        max_depth: int | None,
        min_samples_split: int,
        min_samples_leaf: int,
        max_features: str | int | float | None,
        max_bins: int,
        random_state: int | np.random.Generator | None,
    ) -> None:
        self.loss = loss
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.subsample = subsample
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_bins = max_bins
        self.random_state = random_state

    _losses: tuple[str, ...] = ()

    def _check_params(self, n_features: int) -> None:
        if self.loss not in self._losses:
            raise ValueError(f"loss must be one of {self._losses}, got {self.loss!r}")
        ok = isinstance(self.learning_rate, Real) and not isinstance(self.learning_rate, bool)
        if not ok or not 0 < self.learning_rate < np.inf:
            raise ValueError(f"learning_rate must be a positive finite number, got {self.learning_rate!r}")
        check_positive_int(self.n_estimators, "n_estimators", 1)
        check_fraction(self.subsample, "subsample")
        check_positive_int(self.max_depth, "max_depth", 1, allow_none=True)
        check_positive_int(self.min_samples_split, "min_samples_split", 2)
        check_positive_int(self.min_samples_leaf, "min_samples_leaf", 1)
        check_positive_int(self.max_bins, "max_bins", 2)
        if self.max_bins > 256:
            raise ValueError(f"max_bins must be <= 256, got {self.max_bins}")
        resolve_max_features(self.max_features, n_features)

    def _prepare_weight(self, X: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
        weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(weight < 0):
            raise ValueError("sample_weight must be non-negative")
        if not np.any(weight > 0):
            raise ValueError("sample_weight must have at least one positive entry")
        return weight

    def _boost(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray, loss: _Loss) -> None:
        """Fit ``n_estimators`` stages; sets the fitted attributes.

        Rows with zero weight are dropped first: they change nothing but the bins.
        """
        keep = weight > 0
        X, y, weight = X[keep], y[keep], weight[keep]
        n_samples = len(X)
        n_trees = loss.n_trees_per_stage
        bins = BinMapper.fit(X, self.max_bins)
        codes = bins.transform(X)
        rng = as_generator(self.random_state)

        self.init_raw_ = loss.init_raw(y, weight)
        raw = np.tile(self.init_raw_, (n_samples, 1))
        n_in_bag = max(1, int(self.subsample * n_samples))
        estimators = np.empty((self.n_estimators, n_trees), dtype=object)
        train_score = np.empty(self.n_estimators)
        for stage in range(self.n_estimators):
            if n_in_bag < n_samples:  # Friedman (2002): a subsample without replacement per stage
                in_bag = np.zeros(n_samples, dtype=bool)
                in_bag[rng.choice(n_samples, n_in_bag, replace=False)] = True
                rows, out_rows = np.flatnonzero(in_bag), np.flatnonzero(~in_bag)
            else:
                rows, out_rows = np.arange(n_samples), np.arange(0)
            y_bag, w_bag, raw_bag, codes_bag = y[rows], weight[rows], raw[rows], codes[rows]
            loss.begin_stage(y_bag, raw_bag, w_bag)
            residual = loss.negative_gradient(y_bag, raw_bag)
            for k in range(n_trees):
                tree = DecisionTreeRegressor(
                    max_depth=self.max_depth,
                    min_samples_split=self.min_samples_split,
                    min_samples_leaf=self.min_samples_leaf,
                    max_features=self.max_features,
                    max_bins=self.max_bins,
                )
                leaf_of_row = tree._fit_codes(codes_bag, bins, residual[:, k], w_bag, 0, rng)
                leaf_ids = np.flatnonzero(tree.tree_.feature == _LEAF)
                leaf = np.empty(tree.tree_.node_count, dtype=np.intp)
                leaf[leaf_ids] = np.arange(len(leaf_ids))
                leaf = leaf[leaf_of_row]  # leaves numbered 0..n_leaves-1
                values = loss.leaf_values(y_bag, raw_bag, residual, w_bag, leaf, len(leaf_ids), k)
                tree.tree_.value[leaf_ids, 0] = values
                raw[rows, k] += self.learning_rate * values[leaf]
                if len(out_rows):
                    raw[out_rows, k] += self.learning_rate * tree.tree_.predict(X[out_rows])[:, 0]
                estimators[stage, k] = tree
            train_score[stage] = loss(y_bag, raw[rows], w_bag)

        self.estimators_ = estimators
        self.train_score_ = train_score
        self.n_estimators_ = self.n_estimators
        self.n_trees_per_iteration_ = n_trees
        self._loss = loss

    def _staged_raw(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """Raw predictions after each stage, each of shape ``(n_samples, n_trees_per_iteration_)``."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        raw = np.tile(self.init_raw_, (len(X), 1))
        for stage in self.estimators_:
            for k, tree in enumerate(stage):
                raw[:, k] += self.learning_rate * tree.tree_.predict(X)[:, 0]
            yield raw.copy()

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        raw = None
        for raw in self._staged_raw(X):
            pass
        return raw

    @property
    def feature_importances_(self) -> np.ndarray:
        """Impurity-based importances, shape ``(n_features,)``, summing to one.

        Each tree's total weighted decrease of squared error per feature,
        divided by the tree's total weight, averaged over the trees that split
        at least once and normalised (scikit-learn's definition).
        """
        check_is_fitted(self, "estimators_")
        per_tree = [
            tree.tree_.impurity_decrease(self.n_features_in_) / tree.tree_.weighted_n_node_samples[0]
            for tree in self.estimators_.ravel()
            if tree.tree_.node_count > 1
        ]
        if not per_tree:
            return np.zeros(self.n_features_in_)
        mean = np.mean(per_tree, axis=0)
        return mean / mean.sum()


class GradientBoostingRegressor(RegressorMixin, _BaseGradientBoosting):
    """Gradient boosting of regression trees for regression.

    Parameters
    ----------
    loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
        The loss minimised: see :class:`SquaredError`, :class:`AbsoluteError`
        and :class:`HuberLoss`.
    learning_rate : float, default=0.1
        Shrinkage ``nu`` multiplying every tree.
    n_estimators : int, default=100
        Number of boosting stages.
    subsample : float, default=1.0
        Fraction of the rows drawn (without replacement) to grow each stage;
        below 1 this is stochastic gradient boosting.
    max_depth : int or None, default=3
        Depth of each tree.
    min_samples_split : int, default=2
    min_samples_leaf : int, default=1
    max_features : {"sqrt", "log2"}, int, float or None, default=None
        Features examined at each node.
    max_bins : int, default=255
        Bins per feature (at most 256); features are binned once per fit.
    alpha : float, default=0.9
        Quantile of the absolute residuals used as the Huber threshold.
    random_state : int, numpy Generator or None
        Seed of the subsampling and feature draws.

    Attributes
    ----------
    init_raw_ : ndarray of shape (1,)
        The constant prior ``F_0`` (weighted mean or median of ``y``).
    estimators_ : ndarray of DecisionTreeRegressor, shape (n_estimators, 1)
        The trees; their leaves hold the refitted values (before shrinkage).
    train_score_ : ndarray of shape (n_estimators,)
        Loss on the in-bag rows after each stage (mean squared error, mean
        absolute error or mean Huber loss).
    feature_importances_ : ndarray of shape (n_features,)
    n_estimators_, n_trees_per_iteration_, n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 6, 200)[:, None]
    >>> model = GradientBoostingRegressor(n_estimators=50).fit(X, np.sin(X[:, 0]))
    >>> model.score(X, np.sin(X[:, 0])) > 0.99
    True
    """

    _losses = ("squared_error", "absolute_error", "huber")

    def __init__(
        self,
        loss: str = "squared_error",
        learning_rate: float = 0.1,
        n_estimators: int = 100,
        subsample: float = 1.0,
        max_depth: int | None = 3,
        min_samples_split: int = 2,
        min_samples_leaf: int = 1,
        max_features: str | int | float | None = None,
        max_bins: int = 255,
        alpha: float = 0.9,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            loss=loss,
            learning_rate=learning_rate,
            n_estimators=n_estimators,
            subsample=subsample,
            max_depth=max_depth,
            min_samples_split=min_samples_split,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            max_bins=max_bins,
            random_state=random_state,
        )
        self.alpha = alpha

    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> GradientBoostingRegressor:
        """Boost on ``X`` of shape ``(n_samples, n_features)`` and targets ``y`` of shape ``(n_samples,)``."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        self._check_params(X.shape[1])
        ok = isinstance(self.alpha, Real) and not isinstance(self.alpha, bool)
        if not ok or not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be a number in (0, 1), got {self.alpha!r}")
        weight = self._prepare_weight(X, sample_weight)
        loss = {"squared_error": SquaredError, "absolute_error": AbsoluteError}.get(self.loss)
        self._boost(X, y.astype(np.float64), weight, loss() if loss else HuberLoss(self.alpha))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions ``F_M(x)``, shape ``(n_samples,)``."""
        return self._raw_predict(X)[:, 0]

    def staged_predict(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """Predictions after each stage: ``n_estimators`` arrays of shape ``(n_samples,)``."""
        for raw in self._staged_raw(X):
            yield raw[:, 0]


class GradientBoostingClassifier(ClassifierMixin, _BaseGradientBoosting):
    """Gradient boosting of regression trees for classification (log loss).

    Two classes grow one tree per stage on the log-odds; ``K > 2`` classes
    grow ``K`` trees per stage, one per class score (see :class:`LogLoss`).
    The parameters other than ``loss`` are those of
    :class:`GradientBoostingRegressor` (without ``alpha``).

    Parameters
    ----------
    loss : {"log_loss"}, default="log_loss"
        The negative log-likelihood of the binomial or multinomial model.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_classes_ : int
    init_raw_ : ndarray of shape ``(n_trees_per_iteration_,)``
        The constant prior: log-odds of the positive class, or the centred
        class log-priors.
    estimators_ : ndarray of DecisionTreeRegressor, shape ``(n_estimators, n_trees_per_iteration_)``
    train_score_ : ndarray of shape (n_estimators,)
        Mean log loss (negative log-likelihood) on the in-bag rows after each
        stage. scikit-learn reports twice this (the deviance) for two classes.
    feature_importances_ : ndarray of shape (n_features,)
    n_estimators_, n_trees_per_iteration_, n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> GradientBoostingClassifier(n_estimators=20).fit(X, y).score(X, y) > 0.95
    True
    """

    _losses = ("log_loss",)

    def __init__(
        self,
        loss: str = "log_loss",
        learning_rate: float = 0.1,
        n_estimators: int = 100,
        subsample: float = 1.0,
        max_depth: int | None = 3,
        min_samples_split: int = 2,
        min_samples_leaf: int = 1,
        max_features: str | int | float | None = None,
        max_bins: int = 255,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            loss=loss,
            learning_rate=learning_rate,
            n_estimators=n_estimators,
            subsample=subsample,
            max_depth=max_depth,
            min_samples_split=min_samples_split,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            max_bins=max_bins,
            random_state=random_state,
        )

    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> GradientBoostingClassifier:
        """Boost on ``X`` of shape ``(n_samples, n_features)`` and labels ``y`` of shape ``(n_samples,)``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self._check_params(X.shape[1])
        weight = self._prepare_weight(X, sample_weight)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.n_classes_ = len(self.classes_)
        n_weighted = np.count_nonzero(np.bincount(codes, weights=weight, minlength=self.n_classes_))
        if n_weighted < 2:
            raise ValueError(
                f"y has {n_weighted} class with positive sample weight; "
                "GradientBoostingClassifier needs at least 2 classes"
            )
        self._boost(X, codes, weight, LogLoss(self.n_classes_))
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Raw scores: log-odds, shape ``(n_samples,)``, or class scores, shape ``(n_samples, n_classes)``."""
        raw = self._raw_predict(X)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def staged_decision_function(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """:meth:`decision_function` after each stage."""
        for raw in self._staged_raw(X):
            yield raw[:, 0] if raw.shape[1] == 1 else raw

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``."""
        raw = self._raw_predict(X)
        return self._loss.proba(raw)

    def staged_predict_proba(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """:meth:`predict_proba` after each stage."""
        for raw in self._staged_raw(X):
            yield self._loss.proba(raw)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class, shape ``(n_samples,)``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def staged_predict(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """:meth:`predict` after each stage."""
        for proba in self.staged_predict_proba(X):
            yield self.classes_[np.argmax(proba, axis=1)]


# --------------------------------------------------------------------------- exercises

def check_exercise_1(answer: float) -> bool:
    """Exercise 1: the Newton leaf value of a log-loss leaf.

    A leaf holds three rows with labels ``y = (1, 1, 0)``, all currently
    predicted with ``p = 0.5`` (raw score 0). Which value does the leaf get?
    """
    y = np.array([1, 1, 0])
    loss = LogLoss(2)
    raw = np.zeros((3, 1))
    r = loss.negative_gradient(y, raw)
    expected = loss.leaf_values(y, raw, r, np.ones(3), np.zeros(3, dtype=np.intp), 1, 0)[0]
    try:
        ok = bool(np.isclose(float(answer), expected, rtol=1e-3))
    except (TypeError, ValueError):
        ok = False
    return _report(
        ok,
        "Correct: sum of residuals / sum of p(1-p).",
        "Not yet: the residuals are y - p; divide their sum by the sum of p(1 - p) over the leaf.",
    )


def check_exercise_2(answer: np.ndarray) -> bool:
    """Exercise 2: Huber pseudo-residuals.

    Residuals ``y - F = (-3, -0.5, 0.2, 4)``, threshold ``delta = 1``: what
    are the pseudo-residuals (an array of four numbers)?
    """
    residual = np.array([-3.0, -0.5, 0.2, 4.0])
    loss = HuberLoss()
    loss.delta = 1.0
    expected = loss.negative_gradient(residual, np.zeros((4, 1)))[:, 0]
    try:
        ok = bool(np.allclose(np.asarray(answer, dtype=float), expected))
    except (TypeError, ValueError):
        ok = False
    return _report(
        ok,
        "Correct: small residuals pass unchanged, large ones are clipped to +-delta.",
        "Not yet: the negative gradient of Huber's loss is the residual clipped to [-delta, delta].",
    )

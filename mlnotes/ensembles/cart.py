"""CART decision trees grown level by level with histogram split search.

This is the shared tree engine of Part 2 (ensembles). The chapter
``book/ensembles/random_forest.ipynb`` teaches it; bagging, random forests,
AdaBoost and gradient boosting all grow their trees with it.

Classification and Regression Trees (CART) :cite:p:`breiman1984cart` split a
node on one feature at one threshold, choosing the split that lowers a
weighted impurity the most:

.. math::

    \\Delta(s) = W_P\\, I(P) - W_L\\, I(L) - W_R\\, I(R),

where ``W`` is the total sample weight of a node and ``I`` is Gini impurity
:math:`1 - \\sum_k p_k^2`, entropy :math:`-\\sum_k p_k \\log p_k` or the weighted
variance of the target.

Two ideas make the search fast in plain NumPy:

* **Binning.** Each feature is mapped once to at most ``max_bins`` ordered
  integer codes. A feature with at most ``max_bins`` distinct values keeps every
  distinct value (the search is then exact, as in CART); otherwise the cut
  points are quantiles, as in LightGBM :cite:p:`ke2017lightgbm`.
* **One histogram per level.** All nodes of one depth are searched together:
  a single ``numpy.bincount`` over ``(node, feature, bin, class)`` keys builds
  every histogram of the level, a cumulative sum over bins gives the statistics
  left of every candidate threshold, and one ``argmax`` per node picks the
  best split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from mlnotes.ensembles._base import as_generator, check_positive_int

__all__ = [
    "BinMapper",
    "Tree",
    "grow_tree",
    "resolve_max_features",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
]

Criterion = Literal["gini", "entropy", "squared_error"]
_LEAF = -1


# --------------------------------------------------------------------------- binning
def _midpoints(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Halfway between ``low < high``; ``(a + b) / 2`` can round up to ``b``, and then ``a`` separates them."""
    mids = (low + high) / 2
    return np.where(mids == high, low, mids)


@dataclass
class BinMapper:
    """Maps each feature to ordered integer codes (bins).

    ``edges[f]`` is an increasing array of thresholds; a value ``x`` gets the
    code ``number of edges < x``, so ``code <= b`` exactly when ``x <= edges[f][b]``.
    A split found on codes therefore becomes the real-valued rule
    ``x[f] <= edges[f][b]``.

    Attributes
    ----------
    edges : list of ndarray
        One array of thresholds per feature, of length ``n_bins_f - 1``.
    lowest, highest : list of ndarray
        The smallest and largest training value in each bin (length
        ``n_bins_f``); a split places its threshold halfway between the
        largest value on its left and the smallest on its right, as CART does.
    """

    edges: list[np.ndarray] = field(default_factory=list)
    lowest: list[np.ndarray] = field(default_factory=list)
    highest: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def fit(cls, X: np.ndarray, max_bins: int = 255) -> BinMapper:
        """Choose the thresholds from data ``X`` of shape ``(n_samples, n_features)``.

        Thresholds are midpoints between consecutive distinct values; when a
        feature has more than ``max_bins`` distinct values, between
        consecutive quantiles instead.
        """
        if not 2 <= max_bins <= 256:
            raise ValueError(f"max_bins must be in [2, 256], got {max_bins}")
        mapper = cls()
        for column in np.asarray(X, dtype=np.float64).T:
            distinct = np.unique(column)
            cuts = distinct
            if len(distinct) > max_bins:
                quantiles = np.linspace(0, 1, max_bins + 1)[1:-1]
                cuts = np.unique(np.quantile(distinct, quantiles, method="nearest"))
            edges = _midpoints(cuts[:-1], cuts[1:])
            code = np.searchsorted(edges, distinct, side="left")
            bins = np.arange(len(edges) + 1)
            mapper.edges.append(edges)
            mapper.lowest.append(distinct[np.searchsorted(code, bins, side="left")])
            mapper.highest.append(distinct[np.searchsorted(code, bins, side="right") - 1])
        return mapper

    @property
    def n_bins(self) -> np.ndarray:
        """Number of bins of each feature, shape ``(n_features,)``."""
        return np.array([len(e) + 1 for e in self.edges])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Codes of ``X``, shape ``(n_samples, n_features)``, dtype ``uint8``."""
        X = np.asarray(X, dtype=np.float64)
        codes = np.empty(X.shape, dtype=np.uint8)
        for f, edges in enumerate(self.edges):
            codes[:, f] = np.searchsorted(edges, X[:, f], side="left")
        return codes


# --------------------------------------------------------------------------- the tree
@dataclass
class Tree:
    """A fitted binary tree stored as flat arrays (node 0 is the root).

    Attributes
    ----------
    feature : ndarray of int, shape (n_nodes,)
        Feature tested at each node, ``-1`` for a leaf.
    threshold : ndarray of float, shape (n_nodes,)
        Samples with ``x[feature] <= threshold`` go to ``left``.
    left, right : ndarray of int, shape (n_nodes,)
        Children of each node, ``-1`` for a leaf.
    value : ndarray of float, shape (n_nodes, n_outputs)
        Class probabilities (classification) or the mean target (regression).
    impurity : ndarray of float, shape (n_nodes,)
    n_node_samples : ndarray of int, shape (n_nodes,)
    weighted_n_node_samples : ndarray of float, shape (n_nodes,)
    depth : ndarray of int, shape (n_nodes,)
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    impurity: np.ndarray
    n_node_samples: np.ndarray
    weighted_n_node_samples: np.ndarray
    depth: np.ndarray

    @property
    def node_count(self) -> int:
        return len(self.feature)

    @property
    def max_depth(self) -> int:
        return int(self.depth.max())

    @property
    def n_leaves(self) -> int:
        return int(np.sum(self.feature == _LEAF))

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Index of the leaf each row of ``X`` (shape ``(n, n_features)``) falls into."""
        node = np.zeros(len(X), dtype=np.intp)
        rows = np.flatnonzero(self.feature[node] != _LEAF)
        while len(rows):
            at = node[rows]
            go_left = X[rows, self.feature[at]] <= self.threshold[at]
            node[rows] = np.where(go_left, self.left[at], self.right[at])
            rows = rows[self.feature[node[rows]] != _LEAF]
        return node

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``value`` of the leaf of each row, shape ``(n, n_outputs)``."""
        return self.value[self.apply(X)]

    def impurity_decrease(self, n_features: int) -> np.ndarray:
        """Total weighted impurity decrease per feature, shape ``(n_features,)``."""
        inner = np.flatnonzero(self.feature != _LEAF)
        w, imp = self.weighted_n_node_samples, self.impurity
        l, r = self.left[inner], self.right[inner]
        gain = w[inner] * imp[inner] - w[l] * imp[l] - w[r] * imp[r]
        return np.bincount(self.feature[inner], weights=gain, minlength=n_features)


def _node_cost(stats: np.ndarray, criterion: str) -> np.ndarray:
    """Weighted impurity ``W * I(node)`` from statistics with the channel axis first.

    ``stats`` has shape ``(n_classes, ...)`` of weighted class counts for
    classification, or ``(3, ...)`` holding ``(sum w, sum w y, sum w y^2)`` for
    regression.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if criterion == "squared_error":
            w, wy, wyy = stats[0], stats[1], stats[2]
            return np.where(w > 0, np.maximum(wyy - wy**2 / w, 0.0), 0.0)
        total = stats.sum(axis=0)
        if criterion == "gini":
            return np.where(total > 0, total - (stats**2).sum(axis=0) / total, 0.0)
        return -np.where(stats > 0, stats * np.log(stats / total), 0.0).sum(axis=0)


def _split_score(left: np.ndarray, right: np.ndarray, w_left: np.ndarray, w_right: np.ndarray, criterion: str):
    """A score that grows as a split gets better: the parent's cost minus the children's, up to a constant.

    ``left`` and ``right`` hold the channels first (as in :func:`_node_cost`);
    for squared error only ``(sum w, sum w y)`` are needed. Gini and squared
    error reduce to sums of ``c^2 / W`` terms, which skips a logarithm on the
    large histogram arrays.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if criterion == "gini":
            return (left**2).sum(axis=0) / w_left + (right**2).sum(axis=0) / w_right
        if criterion == "squared_error":
            return left[1] ** 2 / w_left + right[1] ** 2 / w_right
        return -(_node_cost(left, criterion) + _node_cost(right, criterion))


def _parent_score(stats: np.ndarray, criterion: str) -> np.ndarray:
    """The score of not splitting at all, on the scale of :func:`_split_score`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if criterion == "gini":
            return (stats**2).sum(axis=0) / stats.sum(axis=0)
        if criterion == "squared_error":
            return stats[1] ** 2 / stats[0]
        return -_node_cost(stats, criterion)


def _node_value(stats: np.ndarray, criterion: str) -> np.ndarray:
    """Leaf predictions from node statistics of shape ``(n_nodes, n_channels)``."""
    if criterion == "squared_error":
        return stats[:, 1:2] / stats[:, :1]
    return stats / stats.sum(axis=1, keepdims=True)


def resolve_max_features(max_features: str | int | float | None, n_features: int) -> int:
    """Number of features drawn at each node: ``"sqrt"``, ``"log2"``, an int, a fraction or ``None`` (all)."""
    if max_features is None:
        return n_features
    if isinstance(max_features, str):
        if max_features == "sqrt":
            return max(1, int(np.sqrt(n_features)))
        if max_features == "log2":
            return max(1, int(np.log2(n_features)))
        raise ValueError(f"max_features must be 'sqrt', 'log2', an int, a float or None, got {max_features!r}")
    if isinstance(max_features, Integral) and not isinstance(max_features, bool):
        if not 1 <= max_features <= n_features:
            raise ValueError(f"max_features must be in [1, n_features={n_features}], got {max_features}")
        return int(max_features)
    if isinstance(max_features, Real) and 0.0 < max_features <= 1.0:
        return max(1, int(max_features * n_features))
    raise ValueError(f"max_features must be 'sqrt', 'log2', an int, a float in (0, 1] or None, got {max_features!r}")


def _pick_best(score: np.ndarray, group_start: np.ndarray, group_of: np.ndarray) -> np.ndarray:
    """Index of the best candidate of each group (groups are contiguous runs of ``score``).

    Scores within a relative ``1e-10`` of the group's best are ties, won by the
    first candidate, so the choice does not hinge on the order in which rows
    were summed (or on repeated rows versus integer weights).
    """
    top = np.maximum.reduceat(score, group_start)[group_of]
    near = np.flatnonzero(score >= top - 1e-10 * np.abs(top))
    first = np.flatnonzero(np.r_[True, group_of[near][1:] != group_of[near][:-1]])
    return near[first]


def _channel_sums(index, size, rows, k, n_ch, classes, hist_weights):
    """Per-channel weight sums of the entries of ``index`` (shape ``(n_rows, k)``), shape ``(n_ch, size)``."""
    flat = index.ravel()
    if classes is not None:
        keyed = flat + np.repeat(classes[rows] * size, index.shape[1])
        return np.bincount(keyed, weights=np.repeat(hist_weights[0][rows], k), minlength=n_ch * size).reshape(n_ch, -1)
    return np.stack([np.bincount(flat, weights=np.repeat(v[rows], k), minlength=size) for v in hist_weights])


def _dense_search(key, rows, m, k, n_bins, parent, total_w, counts, n_ch, classes, hist_weights, criterion, msl):
    """Best split of each of ``m`` nodes from full ``(node, feature, bin)`` histograms.

    Returns per node the feature slot ``j``, the bin ``b`` (left is ``bin <= b``),
    the first occupied bin right of ``b`` and the split score (``-inf`` if none).
    """
    size = m * k * n_bins
    hist = _channel_sums(key, size, rows, k, n_ch, classes, hist_weights).reshape(n_ch, m, k, n_bins)
    left = np.cumsum(hist, axis=3)[..., :-1]  # rows with bin <= b, for b < n_bins - 1
    right = parent[:, :, None, None] - left
    w_left, w_right = (left.sum(axis=0), right.sum(axis=0)) if classes is not None else (left[0], right[0])
    # Cumulative sums are not exact: a right side lighter than rounding noise is empty.
    valid = (w_left > 0) & (w_right > 1e-10 * total_w[:, None, None])
    if msl > 1:
        n_left = np.cumsum(np.bincount(key.ravel(), minlength=size).reshape(m, k, n_bins), axis=2)[..., :-1]
        valid &= (n_left >= msl) & (counts[:, None, None] - n_left >= msl)
    score = np.where(valid, _split_score(left, right, w_left, w_right, criterion), -np.inf).ravel()
    per_node = k * (n_bins - 1)
    best = _pick_best(score, np.arange(m) * per_node, np.repeat(np.arange(m), per_node)) - np.arange(m) * per_node
    best_j, best_b = np.divmod(best, n_bins - 1)
    occupied = (hist.sum(axis=0) if classes is not None else hist[0]) > 0
    after = occupied[np.arange(m), best_j] & (np.arange(n_bins) > best_b[:, None])
    return best_j, best_b, np.argmax(after, axis=1), score[np.arange(m) * per_node + best]


def _sparse_search(key, rows, m, k, n_bins, parent, total_w, counts, n_ch, classes, hist_weights, criterion, msl):
    """The same result as :func:`_dense_search`, keeping only the occupied ``(node, feature, bin)`` cells.

    The occupied cells are sorted, so each ``(node, feature)`` pair is a run of
    cells in increasing bin order. Packing the runs into rows of a small array
    (as long as the longest run, not ``n_bins``) and summing along them adds
    the same numbers in the same order as the dense search: the splits are
    identical, down to rounding, however skewed the sample weights.
    """
    cell, inverse = np.unique(key.ravel(), return_inverse=True)
    n_cells = len(cell)
    sums = _channel_sums(inverse.reshape(key.shape), n_cells, rows, k, n_ch, classes, hist_weights)
    run = cell // n_bins  # node * k + j
    new_run = np.r_[True, run[1:] != run[:-1]]
    run_start = np.flatnonzero(new_run)
    run_of = np.cumsum(new_run) - 1
    position = np.arange(n_cells) - run_start[run_of]
    node = run // k

    def cumsum_along_runs(x: np.ndarray) -> np.ndarray:
        packed = np.zeros(x.shape[:-1] + (len(run_start), position.max() + 1), dtype=x.dtype)
        packed[..., run_of, position] = x
        return np.cumsum(packed, axis=-1)[..., run_of, position]

    left = cumsum_along_runs(sums)
    right = parent[:, node] - left
    w_left, w_right = (left.sum(axis=0), right.sum(axis=0)) if classes is not None else (left[0], right[0])
    valid = (w_left > 0) & (w_right > 1e-10 * total_w[node])
    if msl > 1:
        n_left = cumsum_along_runs(np.bincount(inverse, minlength=n_cells))
        valid &= (n_left >= msl) & (counts[node] - n_left >= msl)
    score = np.where(valid, _split_score(left, right, w_left, w_right, criterion), -np.inf)
    best = _pick_best(score, np.flatnonzero(np.r_[True, node[1:] != node[:-1]]), node)
    bin_of = cell % n_bins
    return run[best] % k, bin_of[best], bin_of[np.minimum(best + 1, n_cells - 1)], score[best]


def _level_stats(rows, row_node, m, target, weight, n_classes):
    """Statistics of the ``m`` nodes of a level, shape ``(m, n_channels)``."""
    w = weight[rows]
    if n_classes:
        key = row_node * n_classes + target[rows]
        return np.bincount(key, weights=w, minlength=m * n_classes).reshape(m, n_classes)
    y = target[rows]
    return np.stack([np.bincount(row_node, weights=v, minlength=m) for v in (w, w * y, w * y * y)], axis=1)


def grow_tree(
    codes: np.ndarray,
    bins: BinMapper,
    target: np.ndarray,
    weight: np.ndarray,
    *,
    n_classes: int,
    criterion: Criterion,
    max_depth: int | None = None,
    min_samples_split: int = 2,
    min_samples_leaf: int = 1,
    max_features: int | None = None,
    rng: np.random.Generator | None = None,
    dense_limit: float = 1.0,
) -> tuple[Tree, np.ndarray]:
    """Grow one CART tree, all nodes of a depth at once.

    Internal engine behind every tree of Part 2; the public estimators
    validate their inputs and call it.

    Parameters
    ----------
    codes : ndarray of uint8, shape (n_samples, n_features)
        Binned features from ``bins.transform``.
    bins : BinMapper
        The thresholds that turn bin splits into real-valued rules.
    target : ndarray, shape (n_samples,)
        Class codes ``0..n_classes-1`` (classification) or real targets (regression).
    weight : ndarray of float, shape (n_samples,)
        Positive sample weights (rows with zero weight must be removed first).
    n_classes : int
        Number of classes; ``0`` means regression.
    criterion : {"gini", "entropy", "squared_error"}
    max_depth, min_samples_split, min_samples_leaf :
        Stopping rules with scikit-learn's meaning.
    max_features : int or None
        Features drawn without replacement at each node (``None``: all).
    rng : numpy.random.Generator, optional
        Source of the feature draws; needed when ``max_features`` is set.
    dense_limit : float, default=1.0
        A level is searched with dense histograms while ``nodes * n_bins <=
        dense_limit * rows``, and through its occupied bins only beyond that.
        Both searches choose the same splits; this only trades speed
        (``0`` forces the sparse search, ``inf`` the dense one).

    Returns
    -------
    tree : Tree
    leaf_of_row : ndarray of int, shape (n_samples,)
        The leaf each training row ends in (gradient boosting refits leaf
        values with it).
    """
    n_samples, n_features = codes.shape
    k = n_features if max_features is None else int(max_features)
    if k < n_features and rng is None:
        raise ValueError("rng is required when max_features < n_features")
    n_bins = int(bins.n_bins.max())
    max_depth = np.iinfo(np.int32).max if max_depth is None else max_depth
    # Channels summed in the split histograms: one weight per class, or (w, w*y).
    hist_weights = [weight] if n_classes else [weight, weight * target]
    n_ch = n_classes if n_classes else 2

    # Smallest and largest training value of every (feature, bin), padded to one table.
    lowest = np.full((n_features, n_bins), np.nan)
    highest = np.full((n_features, n_bins), np.nan)
    for f in range(n_features):
        lowest[f, : len(bins.lowest[f])] = bins.lowest[f]
        highest[f, : len(bins.highest[f])] = bins.highest[f]

    # The tree as parallel lists, one entry per node, appended level by level.
    feature, threshold, left, right = [_LEAF], [np.nan], [_LEAF], [_LEAF]
    depth, node_stats, node_n = [0], [None], [0]

    rows = np.arange(n_samples)
    row_node = np.zeros(n_samples, dtype=np.intp)  # position of each row's node in the current level
    level_ids = np.array([0])
    leaf_of_row = np.zeros(n_samples, dtype=np.intp)
    level = 0

    while len(level_ids):
        m = len(level_ids)
        counts = np.bincount(row_node, minlength=m)
        level_stats = _level_stats(rows, row_node, m, target, weight, n_classes)  # (m, channels)
        for i, node_id in enumerate(level_ids):
            node_n[node_id], node_stats[node_id] = int(counts[i]), level_stats[i]
        total_w = level_stats.sum(axis=1) if n_classes else level_stats[:, 0]
        can_split = (
            (level < max_depth)
            & (n_bins > 1)  # every feature constant: nothing to split on
            & (counts >= min_samples_split)
            & (counts >= 2 * min_samples_leaf)
            & (_node_cost(level_stats.T, criterion) > 1e-12 * total_w)
        )
        done = ~can_split[row_node]
        leaf_of_row[rows[done]] = level_ids[row_node[done]]
        if not can_split.any():
            break
        split_nodes = np.flatnonzero(can_split)
        remap = np.full(m, -1)
        remap[split_nodes] = np.arange(len(split_nodes))
        rows, row_node = rows[~done], remap[row_node[~done]]
        ids, counts, total_w = level_ids[split_nodes], counts[split_nodes], total_w[split_nodes]
        parent = level_stats[split_nodes, :n_ch].T  # (n_ch, m)
        m = len(split_nodes)

        # Features examined at each node, shape (m, k), and the rows' codes for them, shape (n_rows, k).
        if k < n_features:
            feats = np.argsort(rng.random((m, n_features)), axis=1)[:, :k]
            row_codes = codes[rows[:, None], feats[row_node]]
        else:
            feats = np.broadcast_to(np.arange(n_features), (m, n_features))
            row_codes = codes[rows]
        # Histograms of the level: dense arrays while nodes are few and large, sorted
        # occupied bins once nodes are many and small (most of their bins are empty).
        key = (row_node[:, None] * k + np.arange(k)) * n_bins + row_codes  # (node * k + j) * n_bins + bin
        search = _dense_search if m * n_bins <= dense_limit * len(rows) else _sparse_search
        best_j, best_b, b_right, best_score = search(
            key, rows, m, k, n_bins, parent, total_w, counts, n_ch, target if n_classes else None, hist_weights,
            criterion, min_samples_leaf,
        )
        no_split = _parent_score(parent, criterion)
        improves = np.isfinite(best_score) & (best_score > no_split + 1e-10 * np.abs(no_split))

        # Children of the nodes that split; the threshold lies halfway between the largest value
        # on the left and the smallest on the right, as in CART.
        splitting = np.flatnonzero(improves)
        best_f = feats[splitting, best_j[splitting]]
        first_child = len(feature) + 2 * np.arange(len(splitting))
        for i, f, child in zip(ids[splitting].tolist(), best_f.tolist(), first_child.tolist()):
            feature[i], left[i], right[i] = f, child, child + 1
        thresholds = _midpoints(highest[best_f, best_b[splitting]], lowest[best_f, b_right[splitting]])
        for i, t in zip(ids[splitting].tolist(), thresholds.tolist()):
            threshold[i] = t
        n_new = 2 * len(splitting)
        feature += [_LEAF] * n_new
        threshold += [np.nan] * n_new
        left += [_LEAF] * n_new
        right += [_LEAF] * n_new
        depth += [level + 1] * n_new
        node_stats += [None] * n_new
        node_n += [0] * n_new
        child_left = np.full(m, -1)
        child_left[splitting] = 2 * np.arange(len(splitting))

        stays = improves[row_node]
        leaf_of_row[rows[~stays]] = ids[row_node[~stays]]
        rows, row_node, row_codes = rows[stays], row_node[stays], row_codes[stays]
        goes_right = row_codes[np.arange(len(rows)), best_j[row_node]] > best_b[row_node]
        row_node = child_left[row_node] + goes_right
        level_ids = np.repeat(first_child, 2) + np.tile([0, 1], len(splitting))
        level += 1

    all_stats = np.array(node_stats)
    weighted = all_stats.sum(axis=1) if n_classes else all_stats[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        impurity = np.where(weighted > 0, _node_cost(all_stats.T, criterion) / weighted, 0.0)
    tree = Tree(
        feature=np.array(feature, dtype=np.intp),
        threshold=np.array(threshold, dtype=np.float64),
        left=np.array(left, dtype=np.intp),
        right=np.array(right, dtype=np.intp),
        value=_node_value(all_stats, criterion),
        impurity=impurity,
        n_node_samples=np.array(node_n, dtype=np.intp),
        weighted_n_node_samples=weighted,
        depth=np.array(depth, dtype=np.intp),
    )
    return tree, leaf_of_row


# --------------------------------------------------------------------------- estimators
class _BaseDecisionTree(BaseEstimator):
    """Shared fitting logic of the two CART estimators."""

    _criteria: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        criterion: str,
        max_depth: int | None = None,
        min_samples_split: int = 2,
        min_samples_leaf: int = 1,
        max_features: str | int | float | None = None,
        max_bins: int = 255,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_bins = max_bins
        self.random_state = random_state

    def _check_params(self, n_features: int) -> int:
        if self.criterion not in self._criteria:
            raise ValueError(f"criterion must be one of {self._criteria}, got {self.criterion!r}")
        check_positive_int(self.max_depth, "max_depth", 0, allow_none=True)
        check_positive_int(self.min_samples_split, "min_samples_split", 2)
        check_positive_int(self.min_samples_leaf, "min_samples_leaf", 1)
        check_positive_int(self.max_bins, "max_bins", 2)
        if self.max_bins > 256:
            raise ValueError(f"max_bins must be <= 256, got {self.max_bins}")
        return resolve_max_features(self.max_features, n_features)

    def _fit_codes(
        self,
        codes: np.ndarray,
        bins: BinMapper,
        target: np.ndarray,
        weight: np.ndarray,
        n_classes: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Fit on already binned data (ensembles bin once and grow many trees); returns leaf of each row."""
        k = self._check_params(codes.shape[1])
        self.tree_, leaf_of_row = grow_tree(
            codes,
            bins,
            target,
            weight,
            n_classes=n_classes,
            criterion=self.criterion,
            max_depth=self.max_depth,
            min_samples_split=self.min_samples_split,
            min_samples_leaf=self.min_samples_leaf,
            max_features=k,
            rng=rng,
        )
        self.n_features_in_ = codes.shape[1]
        return leaf_of_row

    def _fit(self, X: np.ndarray, target: np.ndarray, sample_weight: np.ndarray | None, n_classes: int) -> None:
        weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(weight < 0):
            raise ValueError("sample_weight must be non-negative")
        keep = weight > 0
        if not keep.any():
            raise ValueError("sample_weight must have at least one positive entry")
        self._check_params(X.shape[1])
        X, target, weight = X[keep], target[keep], weight[keep]
        bins = BinMapper.fit(X, self.max_bins)
        rng = as_generator(self.random_state)
        self._fit_codes(bins.transform(X), bins, target, weight, n_classes, rng)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Index of the leaf that each sample lands in, shape ``(n_samples,)``."""
        check_is_fitted(self, "tree_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.tree_.apply(X)

    def get_depth(self) -> int:
        """Depth of the fitted tree (a single leaf has depth 0)."""
        check_is_fitted(self, "tree_")
        return self.tree_.max_depth

    def get_n_leaves(self) -> int:
        """Number of leaves of the fitted tree."""
        check_is_fitted(self, "tree_")
        return self.tree_.n_leaves

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean decrease in impurity of each feature, normalised to sum to one, shape ``(n_features,)``."""
        check_is_fitted(self, "tree_")
        gain = self.tree_.impurity_decrease(self.n_features_in_)
        total = gain.sum()
        return gain / total if total > 0 else gain


class DecisionTreeClassifier(ClassifierMixin, _BaseDecisionTree):
    """A CART classification tree (histogram split search).

    Parameters
    ----------
    criterion : {"gini", "entropy"}, default="gini"
        Impurity measure minimised by each split.
    max_depth : int or None, default=None
        Maximum depth; ``None`` grows until leaves are pure or too small.
    min_samples_split : int, default=2
        A node with fewer samples becomes a leaf.
    min_samples_leaf : int, default=1
        A split may not leave fewer samples than this on either side.
    max_features : {"sqrt", "log2"}, int, float or None, default=None
        Features drawn at random (without replacement) at each node.
    max_bins : int, default=255
        Bins per feature (at most 256); exact CART when every feature has at
        most this many distinct values.
    random_state : int, numpy Generator or None
        Seed of the feature draws (only used when ``max_features`` is set).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_classes_ : int
    n_features_in_ : int
    tree_ : Tree
    feature_importances_ : ndarray of shape (n_features,)

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> DecisionTreeClassifier(max_depth=2).fit(X, y).score(X, y) > 0.9
    True
    """

    _criteria = ("gini", "entropy")

    def __init__(
        self,
        criterion: Literal["gini", "entropy"] = "gini",
        max_depth: int | None = None,
        min_samples_split: int = 2,
        min_samples_leaf: int = 1,
        max_features: str | int | float | None = None,
        max_bins: int = 255,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            criterion=criterion,
            max_depth=max_depth,
            min_samples_split=min_samples_split,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            max_bins=max_bins,
            random_state=random_state,
        )

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> DecisionTreeClassifier:
        """Grow the tree on ``X`` of shape ``(n_samples, n_features)`` and labels ``y`` of shape ``(n_samples,)``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.n_classes_ = len(self.classes_)
        self._fit(X, codes, sample_weight, self.n_classes_)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (weighted class fractions of the leaf), shape ``(n_samples, n_classes)``."""
        check_is_fitted(self, "tree_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.tree_.predict(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class of each sample, shape ``(n_samples,)``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class DecisionTreeRegressor(RegressorMixin, _BaseDecisionTree):
    """A CART regression tree minimising squared error (histogram split search).

    Parameters are those of :class:`DecisionTreeClassifier`, with
    ``criterion="squared_error"`` the only criterion.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 1, 50)[:, None]
    >>> tree = DecisionTreeRegressor(max_depth=3).fit(X, np.sin(6 * X[:, 0]))
    >>> tree.get_n_leaves()
    8
    """

    _criteria = ("squared_error",)

    def __init__(
        self,
        criterion: Literal["squared_error"] = "squared_error",
        max_depth: int | None = None,
        min_samples_split: int = 2,
        min_samples_leaf: int = 1,
        max_features: str | int | float | None = None,
        max_bins: int = 255,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            criterion=criterion,
            max_depth=max_depth,
            min_samples_split=min_samples_split,
            min_samples_leaf=min_samples_leaf,
            max_features=max_features,
            max_bins=max_bins,
            random_state=random_state,
        )

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> DecisionTreeRegressor:
        """Grow the tree on ``X`` of shape ``(n_samples, n_features)`` and targets ``y`` of shape ``(n_samples,)``."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        self._fit(X, y.astype(np.float64), sample_weight, 0)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Mean target of the leaf of each sample, shape ``(n_samples,)``."""
        check_is_fitted(self, "tree_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.tree_.predict(X)[:, 0]

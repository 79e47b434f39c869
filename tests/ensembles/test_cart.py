"""Tests of the shared CART engine (mlnotes/ensembles/cart.py), taught in book/ensembles/random_forest.ipynb."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import tree as sk_tree
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlnotes.ensembles.cart import (
    BinMapper,
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    _node_cost,
    grow_tree,
    resolve_max_features,
)


# --------------------------------------------------------------------------- helpers
def structure(tree_arrays, node: int = 0):
    """The tree as nested ``(feature, threshold, left, right)`` tuples, ``None`` for a leaf.

    scikit-learn numbers nodes depth first, our engine level by level; the nested
    form compares the two regardless of numbering.
    """
    feature, threshold, left, right = tree_arrays
    if left[node] == -1:
        return None
    return (
        int(feature[node]),
        float(threshold[node]),
        structure(tree_arrays, left[node]),
        structure(tree_arrays, right[node]),
    )


def ours_structure(model):
    t = model.tree_
    return structure((t.feature, t.threshold, t.left, t.right))


def sk_structure(model):
    t = model.tree_
    return structure((t.feature, t.threshold, t.children_left, t.children_right))


def first_difference(a, b, path: str = ""):
    """Path (``"LR..."``) to the first node where two nested structures differ, or ``None``."""
    if a == b:
        return None
    if a is None or b is None or a[:2] != b[:2]:
        return path
    return first_difference(a[2], b[2], path + "L") or first_difference(a[3], b[3], path + "R")


def rows_at(path: str, nested, X: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``X`` that reach the node at ``path`` of a nested structure."""
    mask = np.ones(len(X), dtype=bool)
    for step in path:
        f, th = nested[0], nested[1]
        mask &= X[:, f] <= th if step == "L" else X[:, f] > th
        nested = nested[2] if step == "L" else nested[3]
    return mask


def weighted_cost(y: np.ndarray, w: np.ndarray, criterion: str) -> float:
    """``W * I(node)`` written directly from the definitions (independent of the engine)."""
    W = w.sum()
    if W == 0:
        return 0.0
    if criterion == "squared_error":
        mean = np.sum(w * y) / W
        return float(np.sum(w * (y - mean) ** 2))
    p = np.array([w[y == c].sum() for c in np.unique(y)]) / W
    if criterion == "gini":
        return float(W * (1 - np.sum(p**2)))
    return float(-W * np.sum(p * np.log(p)))


def tie_free_problem(seed: int, n: int = 1000, d: int = 6):
    """Features with at most 250 distinct float32-exact values (binning is exact), noisy labels, continuous weights.

    Continuous weights make two *different* partitions almost never score exactly the same.
    """
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 250, size=(n, d)) / 8.0
    y_class = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 3, n) > 20).astype(int) + (X[:, 2] + rng.normal(0, 3, n) > 15)
    y_reg = 0.3 * X[:, 0] + np.sin(X[:, 1]) + rng.normal(0, 1, n)
    weight = rng.uniform(0.5, 1.5, n)
    return X, y_class, y_reg, weight


def fit_pair(criterion: str, seed: int, max_depth: int | None, min_samples_leaf: int = 5):
    """Our tree and scikit-learn's on the same tie-free problem, with the same stopping rules.

    scikit-learn splits a node even when the best split lowers the impurity by zero
    (it only tests ``improvement + eps < min_impurity_decrease``), so a pure node whose
    float impurity rounds to 1e-16 gets split; our engine requires a strictly positive
    decrease. ``min_impurity_decrease=1e-9`` aligns the two stopping rules.
    """
    X, y_class, y_reg, weight = tie_free_problem(seed)
    kwargs = dict(max_depth=max_depth, min_samples_leaf=min_samples_leaf)
    if criterion == "squared_error":
        ours = DecisionTreeRegressor(**kwargs).fit(X, y_reg, weight)
        ref = sk_tree.DecisionTreeRegressor(**kwargs, random_state=seed, min_impurity_decrease=1e-9)
        ref.fit(X, y_reg, weight)
        return ours, ref, X, y_reg, weight
    ours = DecisionTreeClassifier(criterion=criterion, **kwargs).fit(X, y_class, weight)
    ref = sk_tree.DecisionTreeClassifier(criterion=criterion, **kwargs, random_state=seed, min_impurity_decrease=1e-9)
    ref.fit(X, y_class, weight)
    return ours, ref, X, y_class, weight


# --------------------------------------------------------------------------- (1) conformance
@parametrize_with_checks([DecisionTreeClassifier(), DecisionTreeRegressor(), DecisionTreeClassifier(max_features=2)])
def test_sklearn_conformance(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- (2) golden tests
@pytest.mark.parametrize("criterion", ["gini", "entropy", "squared_error"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_tree_as_sklearn_when_binning_is_exact(criterion, seed):
    ours, ref, X, _, _ = fit_pair(criterion, seed, max_depth=5)
    assert ours_structure(ours) == sk_structure(ref)
    X_new = np.random.default_rng(100 + seed).uniform(-1, 33, size=(500, X.shape[1]))
    if criterion == "squared_error":
        np.testing.assert_allclose(ours.predict(X_new), ref.predict(X_new), rtol=1e-10)
    else:
        np.testing.assert_allclose(ours.predict_proba(X_new), ref.predict_proba(X_new), atol=1e-12)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, atol=1e-9)


@pytest.mark.parametrize("criterion", ["gini", "entropy", "squared_error"])
def test_deep_trees_differ_from_sklearn_only_at_ties(criterion):
    """Fully grown trees reach small nodes where two features give the same best split.

    scikit-learn then keeps whichever feature its random visiting order met first, our
    engine the lowest feature index; wherever the two trees first differ, both splits
    must lower the impurity by the same amount.
    """
    n_ties = 0
    for seed in range(4):
        ours, ref, X, y, w = fit_pair(criterion, seed, max_depth=None, min_samples_leaf=1)
        a, b = ours_structure(ours), sk_structure(ref)
        path = first_difference(a, b)
        if path is None:
            continue
        n_ties += 1
        node = rows_at(path, b, X)
        parent = weighted_cost(y[node], w[node], criterion)
        gains = []
        for nested in (a, b):
            for step in path:
                nested = nested[2] if step == "L" else nested[3]
            if nested is None:
                gains.append(0.0)
                continue
            left = node & (X[:, nested[0]] <= nested[1])
            right = node & ~left
            gains.append(parent - weighted_cost(y[left], w[left], criterion) - weighted_cost(y[right], w[right], criterion))
        assert gains[0] == pytest.approx(gains[1], rel=1e-9, abs=1e-9), (seed, path, gains)
    assert n_ties >= 1  # the seeds were chosen so that every criterion meets a tie: the test is not vacuous


def test_node_cost_matches_definitions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    w = rng.uniform(0.1, 2, 40)
    class_stats = np.array([w[y == c].sum() for c in range(3)])[:, None]  # (channels, 1 node)
    for criterion in ("gini", "entropy"):
        assert _node_cost(class_stats, criterion)[0] == pytest.approx(weighted_cost(y, w, criterion))
    t = rng.normal(size=40)
    reg_stats = np.array([w.sum(), (w * t).sum(), (w * t * t).sum()])[:, None]
    assert _node_cost(reg_stats, "squared_error")[0] == pytest.approx(weighted_cost(t, w, "squared_error"))


# --------------------------------------------------------------------------- (3) properties
@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e6, 1e6, allow_nan=False)),
    st.integers(2, 256),
)
def test_bin_codes_follow_the_edges(column, max_bins):
    X = column[:, None]
    bins = BinMapper.fit(X, max_bins)
    codes = bins.transform(X)[:, 0].astype(int)
    edges = bins.edges[0]
    assert np.all(np.diff(edges) > 0)
    assert bins.n_bins[0] <= max_bins
    # code <= b exactly when x <= edges[b]: the split rule on codes is a threshold rule on values
    for b in range(len(edges)):
        np.testing.assert_array_equal(codes <= b, column <= edges[b])
    order = np.argsort(column, kind="stable")
    assert np.all(np.diff(codes[order]) >= 0)
    if len(np.unique(column)) <= max_bins:  # exact binning: one bin per distinct value
        assert bins.n_bins[0] == len(np.unique(column))


def test_grow_tree_leaf_of_row_matches_apply():
    X, y = load_digits(return_X_y=True)
    bins = BinMapper.fit(X, 255)
    tree, leaf_of_row = grow_tree(
        bins.transform(X), bins, y, np.ones(len(y)), n_classes=10, criterion="gini", max_depth=6,
        max_features=8, rng=np.random.default_rng(0),
    )
    np.testing.assert_array_equal(leaf_of_row, tree.apply(X))
    assert tree.max_depth <= 6
    assert np.all(tree.feature[leaf_of_row] == -1)


@pytest.mark.parametrize("weights", ["integer", "skewed"])
@pytest.mark.parametrize(
    ("criterion", "max_features", "min_samples_leaf"),
    [("gini", None, 1), ("entropy", 5, 1), ("gini", 5, 4), ("squared_error", None, 1), ("squared_error", 3, 3)],
)
def test_dense_and_sparse_split_search_grow_the_same_tree(criterion, max_features, min_samples_leaf, weights):
    # grow_tree switches from dense histograms to occupied cells as nodes get small;
    # forcing either search everywhere must give the same tree, node for node.
    rng = np.random.default_rng(7)
    X = np.column_stack([rng.normal(size=600), rng.integers(0, 12, 600), rng.uniform(size=(600, 6))])
    regression = criterion == "squared_error"
    y = X[:, 0] + np.sin(3 * X[:, 2]) + rng.normal(0, 0.3, 600)
    target, n_classes = (y, 0) if regression else (np.digitize(y, [-0.5, 0.5]), 3)
    if weights == "integer":
        weight = rng.integers(1, 4, 600).astype(float)
    else:  # weights over twenty orders of magnitude, as late boosting rounds produce
        weight = 10.0 ** rng.uniform(-20, 0, 600)
    bins = BinMapper.fit(X, 255)
    codes = bins.transform(X)
    grown = [
        grow_tree(codes, bins, target, weight, n_classes=n_classes, criterion=criterion, max_features=max_features,
                  min_samples_leaf=min_samples_leaf, rng=np.random.default_rng(0), dense_limit=limit)
        for limit in (0.0, np.inf, 1.0)
    ]
    (reference, reference_leaves), others = grown[0], grown[1:]
    assert reference.node_count > 50
    for tree, leaves in others:
        for name in ("feature", "threshold", "left", "right", "n_node_samples", "value", "impurity"):
            np.testing.assert_array_equal(getattr(tree, name), getattr(reference, name), err_msg=name)
        np.testing.assert_array_equal(leaves, reference_leaves)



@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["gini", "entropy"]))
def test_monotone_feature_transform_keeps_the_partition(seed, criterion):
    """CART only compares feature values, so a strictly increasing map of a feature changes no partition."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] + X[:, 1] ** 2 + rng.normal(0, 0.3, 80) > 0.5).astype(int)
    a = DecisionTreeClassifier(criterion=criterion, max_depth=4).fit(X, y)
    b = DecisionTreeClassifier(criterion=criterion, max_depth=4).fit(np.exp(X), y)
    np.testing.assert_array_equal(a.apply(X), b.apply(np.exp(X)))


def test_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = rng.normal(size=60)
    counts = rng.integers(0, 4, size=60)
    a = DecisionTreeRegressor(max_depth=4).fit(X, y, sample_weight=counts)
    b = DecisionTreeRegressor(max_depth=4).fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    X_new = rng.normal(size=(200, 4))
    np.testing.assert_allclose(a.predict(X_new), b.predict(X_new))


def test_fully_grown_tree_fits_unique_rows_and_respects_stopping_rules():
    X, y = load_digits(return_X_y=True)
    full = DecisionTreeClassifier().fit(X, y)
    assert full.score(X, y) == 1.0  # digits has no duplicate image with two labels
    small = DecisionTreeClassifier(max_depth=5, min_samples_leaf=7).fit(X, y)
    leaves = small.tree_.feature == -1
    assert small.get_depth() <= 5
    assert small.tree_.n_node_samples[leaves].min() >= 7
    proba = small.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert small.feature_importances_.sum() == pytest.approx(1.0)
    assert np.all(small.feature_importances_ >= 0)


def test_regression_leaves_hold_weighted_means():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = X[:, 0] + rng.normal(0, 0.1, 200)
    w = rng.uniform(0.5, 2, 200)
    model = DecisionTreeRegressor(max_depth=3).fit(X, y, w)
    leaf = model.apply(X)
    for node in np.unique(leaf):
        rows = leaf == node
        assert model.tree_.value[node, 0] == pytest.approx(np.average(y[rows], weights=w[rows]))


def test_feature_sampling_is_seeded():
    X, y = load_digits(return_X_y=True)
    a = DecisionTreeClassifier(max_features="sqrt", random_state=3).fit(X, y)
    b = DecisionTreeClassifier(max_features="sqrt", random_state=3).fit(X, y)
    c = DecisionTreeClassifier(max_features="sqrt", random_state=4).fit(X, y)
    assert ours_structure(a) == ours_structure(b)
    assert ours_structure(a) != ours_structure(c)
    assert resolve_max_features("sqrt", 64) == 8
    assert resolve_max_features("log2", 64) == 6
    assert resolve_max_features(0.5, 64) == 32
    assert resolve_max_features(None, 64) == 64


# --------------------------------------------------------------------------- (4) smoke
def test_deeper_trees_fit_the_training_data_better():
    X, y = load_digits(return_X_y=True)
    scores = [DecisionTreeClassifier(max_depth=d).fit(X, y).score(X, y) for d in (1, 3, 6)]
    assert scores[0] < scores[1] < scores[2]
    assert DecisionTreeRegressor(max_depth=0).fit(X, y).get_n_leaves() == 1


# --------------------------------------------------------------------------- (5) bad input
@pytest.mark.parametrize(
    "params, message",
    [
        (dict(criterion="mse"), "criterion must be one of"),
        (dict(max_depth=-1), "max_depth must be an int >= 0"),
        (dict(min_samples_split=1), "min_samples_split must be an int >= 2"),
        (dict(min_samples_leaf=0), "min_samples_leaf must be an int >= 1"),
        (dict(max_bins=300), "max_bins must be <= 256"),
        (dict(max_features="cube"), "max_features must be"),
        (dict(max_features=0), r"max_features must be in \[1, n_features=4\]"),
        (dict(max_features=1.5), "max_features must be"),
    ],
)
def test_bad_parameters_are_named(params, message):
    X, y = np.random.default_rng(0).normal(size=(20, 4)), np.arange(20) % 2
    with pytest.raises(ValueError, match=message):
        DecisionTreeClassifier(**params).fit(X, y)


def test_bad_data_is_named():
    X, y = np.random.default_rng(0).normal(size=(20, 4)), np.arange(20) % 2
    with pytest.raises(NotFittedError):
        DecisionTreeClassifier().predict(X)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DecisionTreeClassifier().fit(bad, y)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        DecisionTreeClassifier().fit(X, y, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="at least one (positive|non-zero)"):
        DecisionTreeClassifier().fit(X, y, sample_weight=np.zeros(20))
    model = DecisionTreeClassifier().fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="max_bins must be in"):
        BinMapper.fit(X, 1)

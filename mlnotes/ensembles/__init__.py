"""Part 2 · Ensemble learning: trees, bagging, random forests, boosting and stacking.

Every estimator follows scikit-learn's API (``fit``/``predict``/``predict_proba``,
``get_params``, clone-able) and is written from scratch in NumPy on top of the
shared CART engine in :mod:`mlnotes.ensembles.cart`.
"""

from mlnotes.ensembles.cart import DecisionTreeClassifier, DecisionTreeRegressor

__all__ = ["DecisionTreeClassifier", "DecisionTreeRegressor"]

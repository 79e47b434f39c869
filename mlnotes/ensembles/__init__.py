"""Part 2 · Ensemble learning: trees, bagging, random forests, boosting and stacking.

Every estimator follows scikit-learn's API (``fit``/``predict``/``predict_proba``,
``get_params``, clone-able) and is written from scratch in NumPy on top of the
shared CART engine in :mod:`mlnotes.ensembles.cart`.
"""

from mlnotes.ensembles.adaboost import AdaBoostClassifier
from mlnotes.ensembles.cart import DecisionTreeClassifier, DecisionTreeRegressor
from mlnotes.ensembles.gbdt import GradientBoostingClassifier, GradientBoostingRegressor
from mlnotes.ensembles.ensemble_learning import BaggingClassifier, BaggingRegressor, StackingClassifier
from mlnotes.ensembles.random_forest import RandomForestClassifier, RandomForestRegressor

__all__ = ["AdaBoostClassifier", "BaggingClassifier", "BaggingRegressor", "StackingClassifier", "DecisionTreeClassifier", "DecisionTreeRegressor", "RandomForestClassifier", "RandomForestRegressor", "GradientBoostingClassifier", "GradientBoostingRegressor"]

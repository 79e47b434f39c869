"""Small pieces shared by the estimators of Part 2: argument checks, seeding and bootstrap draws."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from mlnotes import runtime

__all__ = ["as_generator", "bootstrap_counts", "check_positive_int", "check_fraction", "oob_average"]


def check_positive_int(value: object, name: str, minimum: int = 1, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an int ``>= minimum`` (or ``None`` when allowed)."""
    if value is None and allow_none:
        return
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {minimum}{extra}, got {value!r}")


def check_fraction(value: object, name: str, *, low: float = 0.0, high: float = 1.0, closed_low: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a real number in ``(low, high]`` (``[low, high]`` if ``closed_low``)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and (value >= low if closed_low else value > low)
    if not ok or value > high:
        bracket = "[" if closed_low else "("
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")


def as_generator(random_state: int | np.random.Generator | np.random.RandomState | None) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from scikit-learn's ``random_state`` conventions.

    The estimators of Part 2 follow scikit-learn, whose ``random_state`` may also be
    ``None`` (fresh entropy from the operating system) or a legacy ``RandomState``
    (which seeds a new generator from its stream); ints and generators are handled by
    :func:`mlnotes.runtime.as_generator`, the book's own convention.
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    return runtime.as_generator(random_state, name="random_state")


def bootstrap_counts(n_samples: int, rng: np.random.Generator, n_draws: int | None = None) -> np.ndarray:
    """How often each of ``n_samples`` rows is drawn in a bootstrap sample of ``n_draws`` (default ``n_samples``).

    Returns an int array of shape ``(n_samples,)``; rows with count 0 are out of bag.
    Using the counts as sample weights is equivalent to fitting on the drawn rows.
    """
    draws = rng.integers(0, n_samples, size=n_samples if n_draws is None else n_draws)
    return np.bincount(draws, minlength=n_samples)


def oob_average(predictions: list[np.ndarray], in_bag: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Average each row's predictions over the members that did not see it.

    Parameters
    ----------
    predictions : list of ndarray, each of shape (n_samples, n_outputs)
        Every member's prediction for every training row.
    in_bag : list of ndarray of bool, each of shape (n_samples,)
        Whether the member was trained on the row.

    Returns
    -------
    average : ndarray of shape (n_samples, n_outputs)
        NaN for rows that every member saw.
    n_oob : ndarray of int, shape (n_samples,)
        How many members left each row out.
    """
    total = np.zeros_like(predictions[0], dtype=np.float64)
    n_oob = np.zeros(len(total), dtype=np.intp)
    for pred, seen in zip(predictions, in_bag):
        total[~seen] += pred[~seen]
        n_oob += ~seen
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / n_oob[:, None], n_oob

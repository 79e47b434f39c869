"""Where and how big things run: device choice, seeding, the small/full budget switch.

Every chapter runs twice over: a *small* configuration that a 2-core laptop CPU
executes in minutes (the stored outputs of the book), and a *full* one meant for a
GPU. Chapters write the two sizes side by side with :func:`pick`::

    from mlnotes.runtime import pick
    n_estimators = pick(small=50, full=500)

The environment chooses between them:

``MLNOTES_BUDGET``
    ``small`` or ``full``. Unset: ``full`` when CUDA is available, else ``small``.
``MLNOTES_DEVICE``
    A PyTorch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``) or ``auto``,
    read by :func:`get_device` when no device is passed.

Randomness is explicit in this book: functions take a ``numpy.random.Generator``
(or a ``torch.Generator``) or a seed. :func:`seed_everything` exists for the code
that does not (third-party libraries, PyTorch's weight initialisation).

PyTorch is imported lazily, inside the functions that need it, so that chapters
without PyTorch never pay for importing it.
"""

from __future__ import annotations

import functools
import os
import random
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "BUDGET_ENV",
    "DEVICE_ENV",
    "Budget",
    "as_generator",
    "budget",
    "get_device",
    "pick",
    "seed_everything",
]

BUDGET_ENV = "MLNOTES_BUDGET"
DEVICE_ENV = "MLNOTES_DEVICE"

Budget = Literal["small", "full"]
_BUDGETS: tuple[Budget, ...] = ("small", "full")
_DEVICE_TYPES = ("cpu", "cuda", "mps")

T = TypeVar("T")


@functools.cache
def _cuda_available() -> bool:
    """Whether PyTorch is installed and sees a CUDA device (probed once per process)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the PyTorch device to compute on.

    Parameters
    ----------
    prefer : str or torch.device, optional
        The device to use, such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``;
        ``"auto"`` means the default choice. When omitted, the ``MLNOTES_DEVICE``
        environment variable is read, and when that is unset too, the default
        choice is made: the first CUDA device if one is available, else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    TypeError
        If `prefer` is neither a string nor a ``torch.device``.
    ValueError
        If the requested device is not a valid device string.
    RuntimeError
        If the requested device is valid but not available on this machine.

    Examples
    --------
    >>> get_device("cpu")
    device(type='cpu')
    """
    import torch

    source = "prefer"
    if prefer is None:
        prefer = os.environ.get(DEVICE_ENV) or "auto"
        source = f"the {DEVICE_ENV} environment variable"
    if not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"prefer must be a str or torch.device, got {type(prefer).__name__}")
    if isinstance(prefer, str) and prefer.strip().lower() == "auto":
        return torch.device("cuda" if _cuda_available() else "cpu")
    try:
        device = torch.device(prefer.strip() if isinstance(prefer, str) else prefer)
    except RuntimeError:
        device = None
    if device is None or device.type not in _DEVICE_TYPES:
        raise ValueError(
            f"{source} must name a device of type {', '.join(_DEVICE_TYPES)} (or 'auto'), got {prefer!r}"
        )
    if device.type == "cuda":
        count = torch.cuda.device_count() if _cuda_available() else 0
        if count == 0:
            raise RuntimeError(f"{source} asks for {str(device)!r}, but PyTorch sees no CUDA device here")
        if device.index is not None and device.index >= count:
            raise RuntimeError(f"{source} asks for {str(device)!r}, but only {count} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"{source} asks for 'mps', but the MPS backend is not available here")
    return device


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's, NumPy's global and PyTorch's random number generators.

    The book passes generators explicitly; this is for code that draws from global
    state (third-party libraries, PyTorch's default weight initialisation).
    ``PYTHONHASHSEED`` cannot be set from inside a running process; ``make execute``
    sets it for the notebooks.

    Parameters
    ----------
    seed : int
        A seed in ``[0, 2**32)``.

    Returns
    -------
    numpy.random.Generator
        A fresh generator seeded with `seed`, to pass on explicitly.

    Raises
    ------
    TypeError
        If `seed` is not an integer.
    ValueError
        If `seed` is outside ``[0, 2**32)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.manual_seed(seed)  # seeds every CUDA device too
    return np.random.default_rng(seed)


def as_generator(rng: np.random.Generator | int, *, name: str = "rng") -> np.random.Generator:
    """Turn a seed or a generator into a ``numpy.random.Generator``.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        A generator (returned as it is, so that draws continue its stream) or a
        non-negative integer seed.
    name : str, default "rng"
        The argument's name in the caller, used in error messages.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    TypeError
        If `rng` is neither a generator nor an integer (``None`` included: the book
        makes randomness explicit).
    ValueError
        If `rng` is a negative integer.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise TypeError(f"{name} must be a numpy.random.Generator or an int seed, got {type(rng).__name__}")
    if rng < 0:
        raise ValueError(f"{name} must be a non-negative seed, got {rng}")
    return np.random.default_rng(int(rng))


def budget() -> Budget:
    """Return the current compute budget, ``"small"`` or ``"full"``.

    Read from the ``MLNOTES_BUDGET`` environment variable at every call; when it is
    unset or empty, ``"full"`` if CUDA is available and ``"small"`` otherwise.

    Returns
    -------
    {"small", "full"}

    Raises
    ------
    ValueError
        If ``MLNOTES_BUDGET`` holds anything else.
    """
    value = os.environ.get(BUDGET_ENV, "").strip().lower()
    if not value:
        return "full" if _cuda_available() else "small"
    if value not in _BUDGETS:
        raise ValueError(f"the {BUDGET_ENV} environment variable must be 'small' or 'full', got {value!r}")
    return value  # type: ignore[return-value]  # checked against _BUDGETS above


def pick(*, small: T, full: T) -> T:
    """Return `small` or `full`, whichever the current :func:`budget` selects.

    Both values are keyword-only, so a call reads the same everywhere:
    ``n_estimators = pick(small=50, full=500)``.

    Parameters
    ----------
    small : object
        The value for the CPU configuration that the book's stored outputs use.
    full : object
        The value for the full-size configuration (meant for a GPU).

    Returns
    -------
    object
        `small` or `full`.
    """
    return small if budget() == "small" else full

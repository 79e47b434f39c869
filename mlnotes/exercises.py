"""What every chapter's ``check_exercise_*`` helper needs: read an answer, say whether it is right.

The checkers live in the chapter modules (they know the answers); these two functions
are the part they share.
"""

from __future__ import annotations

import math

__all__ = ["as_float", "report"]


def as_float(answer: object) -> float | None:
    """`answer` as a finite float, or None when it is not a number (a placeholder, a string, NaN)."""
    try:
        value = float(answer)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def report(ok: bool, correct: str, hint: str) -> bool:
    """Print `correct` when `ok`, else `hint`, and return `ok`."""
    print(correct if ok else hint)
    return ok

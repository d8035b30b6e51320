"""Argument checks shared by the core modules (one wording for every "must be > 0" error)."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ParameterError

__all__ = ["positive"]


def positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (``>= 0`` with ``allow_zero``), else a ParameterError.

    Parameters
    ----------
    value : Any
        The argument as given.
    name : str
        Its name, for the message.
    allow_zero : bool, optional
        Accept 0 (default False).

    Returns
    -------
    float

    Raises
    ------
    ParameterError
        For a non-number, NaN, inf, a negative value, or 0 unless allowed.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name} must be a finite number {bound}; got {value!r}")
    return v

"""Argument checks shared by the core modules (one wording for every "must be > 0" error)."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ParameterError

__all__ = ["MIN_FRAMES_BOUND", "WINDOW_TRACE_RATIO", "frames_within_data", "positive"]

#: A window or kernel width in frames may be at most this many times the data's length ...
WINDOW_TRACE_RATIO = 10
#: ... or this many frames, whichever is larger (short traces keep their usual windows).
MIN_FRAMES_BOUND = 100_000


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


def frames_within_data(
    frames: float, n_frames: int, name: str, value: Any, unit: str = "s"
) -> float:
    """``frames`` unchanged when a window of that many frames is one the data can need.

    Windows, smoothing widths and kernels given in seconds become frame counts, and the arrays
    built from them (padding, kernels) grow with those counts. A width of more than
    :data:`WINDOW_TRACE_RATIO` times the data's length (or :data:`MIN_FRAMES_BOUND` frames for
    short data) describes nothing the data holds, so it is refused before any allocation.

    Parameters
    ----------
    frames : float
        The width in frames, as computed from the argument.
    n_frames : int
        Frames in the data it applies to.
    name, value, unit : str, Any, str
        The argument's name, its value as given and its unit, for the message.

    Returns
    -------
    float
        `frames`.

    Raises
    ------
    ParameterError
        When ``frames`` exceeds the bound; the message names the argument and the limit.
    """
    limit = max(WINDOW_TRACE_RATIO * int(n_frames), MIN_FRAMES_BOUND)
    if not frames <= limit:
        raise ParameterError(
            f"{name}={value!r}{' ' + unit if unit else ''} is too large: it spans {frames:,.0f} "
            f"frames for data of {int(n_frames):,} frames (at most {limit:,} frames: "
            f"{WINDOW_TRACE_RATIO}x the data, or {MIN_FRAMES_BOUND:,}); check the value and the "
            "frame rate"
        )
    return frames

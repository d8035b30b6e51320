"""Wall-time measurement of the benchmarked code.

:func:`time_call` runs a call after untimed warm-up calls and returns a :class:`Timing` with the
best and median of the repeated calls (``time.perf_counter``), optionally with the peak RSS
increase sampled by :class:`~_harness.memory.RssSampler`.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _harness.memory import RssSampler

__all__ = [
    "Timing",
    "time_call",
]


@dataclass(frozen=True)
class Timing:
    """Wall times of repeated calls.

    Attributes
    ----------
    times : tuple of float
        Seconds of each timed call (``time.perf_counter``), warm-up calls excluded.
    peak_rss_delta_bytes : int or None
        With ``time_call(..., memory=True)``: the largest RSS increase over any timed call
        (see :class:`RssSampler`); otherwise None.
    """

    times: tuple[float, ...]
    peak_rss_delta_bytes: int | None = None

    @property
    def best(self) -> float:
        """Fastest call in seconds: the least disturbed by other load on the machine."""
        return min(self.times)

    @property
    def median(self) -> float:
        """Median call in seconds."""
        return statistics.median(self.times)

    @property
    def repeat(self) -> int:
        """Number of timed calls."""
        return len(self.times)


def time_call(
    fn: Callable[[], Any],
    *,
    repeat: int = 3,
    warmup: int = 1,
    memory: bool = False,
) -> Timing:
    """Time `fn()` `repeat` times after `warmup` untimed calls.

    Parameters
    ----------
    fn : callable
        Called with no arguments (wrap arguments with ``functools.partial`` or a lambda). Its
        result is dropped after each call, before the next one starts, so one result at a time is
        alive. To time a lazy computation, let `fn` call ``.compute()``.
    repeat : int, optional
        Number of timed calls (at least 1).
    warmup : int, optional
        Untimed calls first: JIT compilation (numba), FFT plans, imports and caches.
    memory : bool, optional
        Sample the RSS during each timed call (:class:`RssSampler`) and report the largest
        increase in ``Timing.peak_rss_delta_bytes``. The sampling thread costs little.

    Returns
    -------
    Timing
        ``.best`` and ``.median`` seconds, ``.times``, ``.peak_rss_delta_bytes``.

    Examples
    --------
    >>> t = time_call(lambda: sum(range(1000)), repeat=3, warmup=1)
    >>> t.repeat, t.best <= t.median
    (3, True)
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    for _ in range(max(0, int(warmup))):
        result = fn()
        del result
    times: list[float] = []
    peak: int | None = None
    for _ in range(int(repeat)):
        gc.collect()
        sampler = RssSampler() if memory else contextlib.nullcontext()
        with sampler:
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
        del result
        times.append(elapsed)
        if isinstance(sampler, RssSampler) and sampler.peak_delta_bytes is not None:
            peak = max(peak or 0, sampler.peak_delta_bytes)
    return Timing(times=tuple(times), peak_rss_delta_bytes=peak)

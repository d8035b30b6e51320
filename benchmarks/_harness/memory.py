"""Memory measurement of the benchmarked code.

:func:`max_rss_bytes` (the process's own high-water mark, ``VmHWM``), :func:`current_rss_bytes`
(``/proc/self/statm``), :class:`RssSampler` (peak RSS while one block of code runs, sampled in a
thread), :func:`traced_peak_bytes` (peak numpy/Python allocation of one call, via
``tracemalloc``) and the binary unit :data:`MiB`.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "MiB",
    "RssSampler",
    "current_rss_bytes",
    "max_rss_bytes",
    "traced_peak_bytes",
]

MiB = 2**20


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes.

    Returns
    -------
    int
        The high-water mark of this process's own memory map (``VmHWM`` in
        ``/proc/self/status``); it never goes down, so it only describes a single call when that
        call is the largest the process made. Use :class:`RssSampler` for one call.

    Notes
    -----
    ``VmHWM`` starts afresh when a program is executed. ``getrusage``'s ``ru_maxrss``, the fallback
    where there is no ``/proc`` (KiB on Linux, bytes on macOS), does not: Linux carries the
    high-water mark across ``execve``, so a child started from a large parent reports the
    parent's peak at the fork.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value if sys.platform == "darwin" else value * 1024)


def current_rss_bytes() -> int | None:
    """Current resident set size in bytes (from ``/proc/self/statm``), None where unavailable.

    Returns
    -------
    int or None
        Resident pages times the page size.
    """
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Context manager that samples this process's RSS in a thread and keeps the peak.

    Unlike ``ru_maxrss`` it describes one block of code: ``peak_delta_bytes`` is the largest RSS
    seen while the block ran minus the RSS when it started (so it includes the block's result
    while it is alive). Sampling misses spikes shorter than `interval_s`.

    Parameters
    ----------
    interval_s : float, optional
        Time between samples in seconds.

    Attributes
    ----------
    start_bytes, peak_bytes, peak_delta_bytes : int or None
        RSS at entry, the largest sample, and their difference; None where the RSS cannot be read
        (no ``/proc``), in which case ``peak_bytes`` falls back to ``ru_maxrss``.

    Examples
    --------
    >>> with RssSampler() as rss:
    ...     block = bytearray(50 * 2**20)
    >>> rss.peak_delta_bytes is None or rss.peak_delta_bytes >= 0
    True
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = float(interval_s)
        self.start_bytes: int | None = None
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def peak_delta_bytes(self) -> int | None:
        """Peak RSS during the block minus RSS at its start (bytes), None if not measurable."""
        if self.start_bytes is None or self.peak_bytes is None:
            return None
        return max(0, self.peak_bytes - self.start_bytes)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = current_rss_bytes()
            if rss is not None and (self.peak_bytes is None or rss > self.peak_bytes):
                self.peak_bytes = rss

    def __enter__(self) -> RssSampler:
        self.start_bytes = current_rss_bytes()
        self.peak_bytes = self.start_bytes
        if self.start_bytes is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            rss = current_rss_bytes()  # the block's result is usually still alive here
            if rss is not None and self.peak_bytes is not None:
                self.peak_bytes = max(self.peak_bytes, rss)
        else:
            self.peak_bytes = max_rss_bytes()


def traced_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak Python-heap + numpy allocation of one call of `fn`, measured with ``tracemalloc``.

    numpy reports its data buffers to ``tracemalloc``, so this counts arrays (and the call's
    result) but not memory that native libraries allocate themselves (FFTW/pocketfft plans, BLAS,
    numba or CUDA buffers). tracemalloc slows Python-level code down: never time under it.

    Parameters
    ----------
    fn : callable
        Called once with no arguments; its result is dropped before returning.

    Returns
    -------
    int
        Peak traced bytes during the call, above what was traced before it.
    """
    gc.collect()
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if not already:
            tracemalloc.stop()
    return max(0, peak - before)

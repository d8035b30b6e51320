"""Spread a serial ``nogil`` numba kernel over threads (the CPU fast paths' one splitter)."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba

__all__ = ["in_threads"]


def in_threads(kernel: Any, args: tuple, n_items: int, name: str = "napari-calcium") -> None:
    """Run ``kernel(*args, start, stop)`` over ``range(n_items)`` split across threads.

    The kernels are serial ``nogil`` functions, so plain threads use every core (as many as
    ``numba.get_num_threads()``, i.e. ``NUMBA_NUM_THREADS``). Unlike ``parallel=True`` this
    compiles 3x faster and is safe to call from dask's worker threads with any threading layer.
    """
    n_parts = max(1, min(numba.get_num_threads(), n_items))
    if n_parts == 1:
        kernel(*args, 0, n_items)
        return
    bounds = [part * n_items // n_parts for part in range(n_parts + 1)]
    with ThreadPoolExecutor(n_parts, thread_name_prefix=name) as pool:
        futures = [pool.submit(kernel, *args, a, b) for a, b in itertools.pairwise(bounds)]
        for future in futures:
            future.result()

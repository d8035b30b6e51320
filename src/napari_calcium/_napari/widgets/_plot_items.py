"""Reusable pieces of the trace plot dock: per-row bounds cache and a pool of text labels.

Both exist for redraw speed on click (``benchmarks/bench_plot.py``): the stacked view needs each
shown row's min/max for its offset and the y range, and making ``TextItem`` objects anew on
every click costs more than moving and relabelling kept ones.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pyqtgraph as pg

__all__ = ["RowBounds", "TextPool", "bounds"]


def bounds(y: np.ndarray) -> tuple[float, float]:
    """(min, max) of a 1-D array ignoring NaN; (0, 0) when nothing is finite."""
    lo, hi = float(np.min(y)), float(np.max(y))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return 0.0, 0.0
    return lo, hi


class RowBounds:
    """Memoised :func:`bounds` of rows of stored 2-D arrays, keyed by (array, row index).

    The arrays are kept referenced so their ``id`` stays unique while cached; ``clear`` drops all.
    """

    def __init__(self, max_rows: int = 4096) -> None:
        self._arrays: dict[int, np.ndarray] = {}
        self._rows: dict[tuple[int, int], tuple[float, float]] = {}
        self._max = max_rows

    def __call__(self, array: np.ndarray, i: int) -> tuple[float, float]:
        key = (id(array), int(i))
        hit = self._rows.get(key)
        if hit is None:
            if len(self._rows) >= self._max:
                self.clear()
            self._arrays[id(array)] = array
            hit = self._rows[key] = bounds(array[i])
        return hit

    def clear(self) -> None:
        self._arrays.clear()
        self._rows.clear()


class TextPool:
    """Text labels of one plot, made once and reused (moved, relabelled, hidden when unused)."""

    def __init__(self, plot: Any) -> None:
        self.plot = plot
        self.items: list[pg.TextItem] = []
        self.used = 0

    def start(self) -> None:
        """Begin a redraw: no label is in use."""
        self.used = 0

    def show(self, text: str, x: float, y: float, color: Any) -> pg.TextItem:
        """The next label, showing ``text`` with its bottom-left corner at (x, y)."""
        if self.used == len(self.items):
            item = pg.TextItem(text, color=color, anchor=(0, 1))
            self.plot.addItem(item, ignoreBounds=True)
            self.items.append(item)
        item = self.items[self.used]
        self.used += 1
        if item.toPlainText() != text:
            item.setText(text)
        item.setColor(color)
        item.setPos(x, y)
        item.setVisible(True)
        return item

    def finish(self) -> None:
        """End a redraw: hide the labels not used by it."""
        for item in self.items[self.used :]:
            if item.isVisible():
                item.setVisible(False)

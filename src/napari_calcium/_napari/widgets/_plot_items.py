"""Reusable pieces of the trace plot dock: per-row bounds cache, a pool of text labels, helpers.

Both exist for redraw speed on click (``benchmarks/bench_plot.py``): the stacked view needs each
shown row's min/max for its offset and the y range, and making ``TextItem`` objects anew on
every click costs more than moving and relabelling kept ones.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pyqtgraph as pg

__all__ = ["RowBounds", "TextPool", "bounds", "color_hex", "dff_flags", "parse_ids"]


def parse_ids(text: str) -> list[int]:
    """ROI ids from text such as ``"3, 5 7-9"`` (ranges inclusive), in order, without repeats."""
    ids: list[int] = []
    for a, b in re.findall(r"(\d+)(?:\s*-\s*(\d+))?", text):
        ids.extend(range(int(a), int(b or a) + 1))
    return list(dict.fromkeys(ids))


def dff_flags(res: Any, index: int) -> str:
    """Short words for the quality flags of row `index` of a DffResult (``""``: none).

    Parameters
    ----------
    res : DffResult or None
        From :func:`~napari_calcium.compute_dff` (None: no flags).
    index : int
        Row (not ROI id).

    Returns
    -------
    str
        ``"neuropil-dominated"`` (corrected baseline <= f x the raw one) and/or ``"dF/F NaN
        (baseline not positive)"``, comma-separated; ``""`` for an unflagged row.
    """
    if res is None or not 0 <= index < len(np.atleast_1d(res.baseline_ok)):
        return ""
    words = []
    dominated = getattr(res, "neuropil_dominated", None)
    if dominated is not None and bool(np.asarray(dominated)[index]):
        words.append("neuropil-dominated")
    if not bool(np.asarray(res.baseline_ok)[index]):
        words.append("dF/F NaN (baseline not positive)")
    return ", ".join(words)


def color_hex(color: Any) -> str:
    """A napari theme colour (or any colour text) as ``"#rrggbb"`` text for pyqtgraph."""
    return color.as_hex() if hasattr(color, "as_hex") else str(color)


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


def stored(layer: Any) -> dict:
    """The napari-calcium entries stored with a layer (``metadata["napari_calcium"]``)."""
    from .._layers import METADATA_KEY

    return (getattr(layer, "metadata", None) or {}).get(METADATA_KEY) or {}


class LabelsLayerPicker:
    """The Labels-layer choice shared by the plot docks (trace plot, spike raster).

    The dock has ``viewer``, ``layer``, a ``layer_box`` QComboBox, ``set_layer``, ``redraw`` and
    ``_on_metadata``; layers holding :attr:`STORE_KEY` in their store are listed first.
    """

    STORE_KEY = "traces"
    #: the width (px) a plot dock asks for: the canvas keeps most of the window; drag to widen
    DOCK_WIDTH = 420

    def sizeHint(self):  # Qt's name: the size a dock asks for
        from qtpy.QtCore import QSize

        hint = super().sizeHint()
        return QSize(min(hint.width(), self.DOCK_WIDTH), hint.height())

    def _candidates(self) -> list:
        if self.viewer is None:
            return []
        labels = [ly for ly in self.viewer.layers if ly._type_string == "labels"]
        holding = [ly for ly in labels if stored(ly).get(self.STORE_KEY) is not None]
        return holding + [ly for ly in labels if ly not in holding]

    def _refresh_layers(self, event: Any = None) -> None:
        layers = self._candidates()
        current = self.layer if self.layer in layers else (layers[0] if layers else None)
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        for ly in layers:
            self.layer_box.addItem(ly.name, ly)
        if current is not None:
            self.layer_box.setCurrentIndex(layers.index(current))
        self.layer_box.blockSignals(False)
        if current is not self.layer:
            self.set_layer(current)
        elif current is None:
            self.redraw()

    def _on_layer_chosen(self, index: int) -> None:
        self.set_layer(self.layer_box.itemData(index) if index >= 0 else None)

    def _attach(self, layer: Any, on_selected: Any) -> None:
        """Make `layer` the shown one: move the event connections and sync the combo box.

        ``on_selected`` follows the layer's selected label; results stored with the layer after
        the dock opened reach ``_on_metadata``.
        """
        if self.layer is not None:
            self.layer.events.selected_label.disconnect(on_selected)
            self.layer.events.metadata.disconnect(self._on_metadata)
        self.layer = layer
        if layer is not None:
            layer.events.selected_label.connect(on_selected)
            layer.events.metadata.connect(self._on_metadata)
            index = self.layer_box.findText(layer.name)
            if index >= 0 and self.layer_box.currentIndex() != index:
                self.layer_box.blockSignals(True)
                self.layer_box.setCurrentIndex(index)
                self.layer_box.blockSignals(False)

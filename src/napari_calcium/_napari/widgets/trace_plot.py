"""Trace plot dock: the stored traces of the ROIs clicked in the viewer, linked to the time slider.

The widget only displays what the "Extract traces" / "dF/F" widgets stored in a Labels layer's
``metadata["napari_calcium"]`` (``"traces"``: a TraceSet, ``"dff"``: a DffResult); it never
computes traces. Curves hold the stored rows themselves: the stacked view offsets a curve with
an item transform (``setPos``), so ``curve.yData`` is always the stored array. Long traces are
decimated for display only (pyqtgraph auto downsampling, "peak" mode, clip to view).

The dF/F widget's live preview of the selected ROI (``"dff_preview"``: ``id``, ``dff``,
``baseline``, ``method``, ``source``) is drawn dashed for that ROI, named "... preview" and
noted in the message: its baseline over the fluorescence, its dF/F in the dF/F plot (also before
any dF/F is stored). It is never mistaken for, nor replaces, the stored arrays.

dF/F quality flags (issue 17: ``DffResult.neuropil_dominated``, or ``baseline_ok`` False) are shown
for every selected ROI that has one: the dF/F plot's title says "ROI n flagged: neuropil-dominated",
the stacked view's label of its dF/F reads "ROI n (flagged: ...)", and the message gives the reason
(:meth:`~napari_calcium.core.traces.dff.DffResult.flag_reasons`).

Spike inference (``"spikes"``, a DeconvolutionResult, and the Deconvolve widget's
``"spikes_preview"``) is drawn by :class:`._plot_spikes.SpikesMixin`: the reconvolved fit over
the trace it was computed from, the activity in a third plot ("spikes" box).

pyqtgraph was chosen over a matplotlib canvas by measured redraw time on click
(``benchmarks/bench_plot.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from .._layers import METADATA_KEY, first_frame_time_s
from ._base import compact_picker, wrapping_label
from ._plot_items import (
    LabelsLayerPicker,
    RowBounds,
    TextPool,
    bounds,
    dff_flags,
    parse_ids,
    stored,
)
from ._plot_items import color_hex as _color_hex
from ._plot_spikes import SPIKE_COLORS, SPIKE_STYLES, SpikesMixin

__all__ = ["KINDS", "TracePlotWidget", "parse_ids"]

#: trace kinds: key -> (label, plot row); row 0 is fluorescence (movie units), row 1 is dF/F,
#: row 2 the deconvolved activity ("spikes" also draws the fit over its input trace)
KINDS: dict[str, tuple[str, int]] = {
    "F": ("raw F", 0),
    "Fneu": ("neuropil", 0),
    "corrected": ("corrected", 0),
    "dff": ("dF/F", 1),
    "spikes": ("spikes", 2),
}
_KIND_COLORS = {
    "F": "#4c9be8",
    "Fneu": "#9a9a9a",
    "corrected": "#f0a030",
    "dff": "#50c878",
    "baseline preview": "#e05050",
    "dff preview": "#50c878",
    **SPIKE_COLORS,
}
_KIND_STYLES = {
    "F": Qt.PenStyle.SolidLine,
    "Fneu": Qt.PenStyle.DotLine,
    "corrected": Qt.PenStyle.SolidLine,
    "dff": Qt.PenStyle.SolidLine,
    # the dF/F widget's live preview (not stored): dashed
    "baseline preview": Qt.PenStyle.DashLine,
    "dff preview": Qt.PenStyle.DashLine,
    **{k: getattr(Qt.PenStyle, f"{v.title()}Line") for k, v in SPIKE_STYLES.items()},
}
MODES = ("overlay", "stacked")


_store = stored


class TracePlotWidget(SpikesMixin, LabelsLayerPicker, QWidget):
    """Dock showing raw F / neuropil / corrected / dF/F / spikes of the selected ROIs vs time (s).

    Click a label in the viewer (shift-click adds or removes it) or type ids; a vertical line
    follows the time slider, and a click in the plot moves the slider to that frame.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.layer: Any = None
        self.selected_ids: list[int] = []
        #: ``(roi id, kind) -> PlotDataItem`` of what is drawn now
        self.curves: dict[tuple[int, str], pg.PlotDataItem] = {}
        self._x_cache: tuple[int, float, int, np.ndarray] | None = None
        self._unknown: list[int] = []
        self._pool: list[list[pg.PlotDataItem]] = [[], [], []]
        self._text = "#ffffff"
        self._bounds = RowBounds()  # (min, max) of stored rows: stacked offsets and y range
        self._bounds_of: Any = None
        self._use_spikes = False  # the "spikes" box is shown and checked
        self._dff_title: str | None = None  # the dF/F plot's title now (flagged ROIs)

        self.layer_box = QComboBox()
        compact_picker(self.layer_box)
        self.ids_edit = QLineEdit()
        self.ids_edit.setPlaceholderText("click a label, or type ids: 3, 5, 7-9")
        self.mode_box = QComboBox()
        self.mode_box.addItems(MODES)
        self.kind_boxes = {k: QCheckBox(label) for k, (label, _) in KINDS.items()}
        for k, box in self.kind_boxes.items():
            box.setChecked(k != "Fneu")
        self.message = QLabel("")
        wrapping_label(self.message)

        self.graphics = pg.GraphicsLayoutWidget()
        self.plots = [self.graphics.addPlot(row=r, col=0) for r in range(3)]
        self.cursors = []
        for plot, ylabel in zip(self.plots, ("F (movie units)", "dF/F", "activity"), strict=True):
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.setLabel("left", ylabel)
            plot.setLabel("bottom", "time", units="s")
            plot.showGrid(x=True, y=True, alpha=0.2)
            cursor = pg.InfiniteLine(pos=0.0, angle=90, movable=False)
            plot.addItem(cursor, ignoreBounds=True)
            self.cursors.append(cursor)
        self.plots[1].setXLink(self.plots[0])
        self.plots[2].setXLink(self.plots[0])
        self._texts = [TextPool(plot) for plot in self.plots]  # the stacked view's "ROI n"
        self.graphics.scene().sigMouseClicked.connect(self._on_plot_clicked)

        top = QHBoxLayout()
        top.addWidget(QLabel("ROI layer"))
        top.addWidget(self.layer_box, 1)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("ROIs"))
        row2.addWidget(self.ids_edit, 1)
        row2.addWidget(self.mode_box)
        row3 = QHBoxLayout()
        for box in self.kind_boxes.values():
            row3.addWidget(box)
        layout = QVBoxLayout(self)
        for row in (top, row2, row3):
            layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(self.graphics, 1)
        self.setMinimumHeight(300)

        self.layer_box.currentIndexChanged.connect(self._on_layer_chosen)
        self.ids_edit.editingFinished.connect(
            lambda: self.show_rois(parse_ids(self.ids_edit.text()))
        )
        self.mode_box.currentTextChanged.connect(lambda _: self.redraw())
        for box in self.kind_boxes.values():
            box.toggled.connect(lambda _: self.redraw())
        if napari_viewer is not None:
            napari_viewer.layers.events.inserted.connect(self._refresh_layers)
            napari_viewer.layers.events.removed.connect(self._refresh_layers)
            napari_viewer.dims.events.current_step.connect(self._update_cursor)
            napari_viewer.events.theme.connect(self._apply_theme)
            napari_viewer.mouse_drag_callbacks.append(self._on_viewer_click)
        self._apply_theme()
        self._refresh_layers()

    # ------------------------------------------------------------------ layers and data
    def set_layer(self, layer: Any) -> None:
        """Show traces from this Labels layer (None: none); its selected label is shown first."""
        self._attach(layer, self._on_selected_label)
        traces = self.traces
        label = getattr(layer, "selected_label", 0)
        keep = [i for i in self.selected_ids if traces is not None and i in traces.ids]
        self.show_rois(keep or ([label] if traces is not None and label in traces.ids else []))

    def _on_metadata(self, _event: Any = None) -> None:
        self.set_layer(self.layer)

    @property
    def traces(self) -> Any:
        """The TraceSet stored with the chosen layer, or None."""
        return _store(self.layer).get("traces") if self.layer is not None else None

    @property
    def dff(self) -> Any:
        """The DffResult stored with the chosen layer, or None (then the dF/F box is hidden)."""
        return _store(self.layer).get("dff") if self.layer is not None else None

    def flags_of(self, roi: int) -> str:
        """The stored dF/F's quality flags of ROI id `roi` in short words (``""``: none).

        ``"neuropil-dominated"`` and/or ``"dF/F NaN (baseline not positive)"``; see
        :func:`._plot_items.dff_flags`.
        """
        traces, dff = self.traces, self.dff
        if traces is None or dff is None or np.shape(dff.dff)[0] != traces.n_rois:
            return ""
        hits = np.flatnonzero(np.asarray(traces.ids) == int(roi))
        return dff_flags(dff, int(hits[0])) if hits.size else ""

    def frame_rate_hz(self) -> float | None:
        """Frames per second: from the traces, else the layer metadata, else the movie's scale."""
        traces = self.traces
        if traces is not None and traces.frame_rate_hz:
            return float(traces.frame_rate_hz)
        if _store(self.layer).get("frame_rate_hz"):
            return float(_store(self.layer)["frame_rate_hz"])
        movie = self.movie_layer()
        if movie is not None and float(movie.scale[0]) != 1.0:
            return 1.0 / float(movie.scale[0])
        return None

    def first_time_s(self) -> float:
        """Time of the first frame (s) when the frame rate is known, so the plot's time axis
        matches the movie's (a Bruker volume's first time point is at 0.18 s); else 0."""
        if not self.frame_rate_hz():
            return 0.0
        t0 = first_frame_time_s(_store(self.layer))
        movie = self.movie_layer()
        if t0 is None and movie is not None:
            t0 = first_frame_time_s(movie.metadata.get(METADATA_KEY) or {})
        return t0 or 0.0

    def movie_layer(self) -> Any:
        """The movie the traces came from: ``derived_from`` if present, else a matching movie."""
        if self.viewer is None:
            return None
        movies = [
            ly
            for ly in self.viewer.layers
            if ly._type_string == "image" and ly.ndim >= 3 and not ly.rgb
        ]
        source = _store(self.layer).get("derived_from")
        traces = self.traces
        n = traces.n_frames if traces is not None else None
        for test in (
            lambda ly: ly.name == source,
            lambda ly: ly.data.shape[0] == n,
            lambda ly: True,
        ):
            hits = [ly for ly in movies if test(ly)]
            if hits:
                return hits[0]
        return None

    def _time_axis(self) -> tuple[np.ndarray, bool]:
        """(x values, True if in seconds) shared by all curves; cached per traces object."""
        traces = self.traces
        rate = self.frame_rate_hz()
        t0 = self.first_time_s()
        key = (id(traces), rate or 0.0, traces.n_frames, t0)
        if self._x_cache is None or self._x_cache[:4] != key:
            x = np.arange(traces.n_frames, dtype=np.float64)
            if rate:
                x = x / rate + t0
            self._x_cache = (*key, x)
        return self._x_cache[4], bool(rate)

    # ------------------------------------------------------------------ selection
    def _on_selected_label(self, event: Any = None) -> None:
        label = int(self.layer.selected_label)
        traces = self.traces
        if traces is not None and label in traces.ids and [label] != self.selected_ids:
            self.show_rois([label])

    def _on_viewer_click(self, viewer: Any, event: Any):
        """Click (without drag) on a label of the chosen layer shows it; shift toggles it."""
        if self.layer is None or self.traces is None:
            return
        start = np.asarray(event.position)
        yield
        while event.type == "mouse_move":
            if np.abs(np.asarray(event.position) - start).max() > 0:
                return  # a drag (pan, paint): not a pick
            yield
        self.pick(event.position, add=any(m == "Shift" for m in event.modifiers))

    def pick(self, world_position: Any, *, add: bool = False) -> int | None:
        """Show the ROI under this viewer (world) position; ``add`` toggles it in the selection."""
        value = self.layer.get_value(world_position, world=True)
        traces = self.traces
        if value is None or traces is None or int(value) not in traces.ids:
            return None
        roi = int(value)
        if not add:
            self.show_rois([roi])
        elif roi in self.selected_ids:
            self.show_rois([i for i in self.selected_ids if i != roi])
        else:
            self.show_rois([*self.selected_ids, roi])
        return roi

    def show_rois(self, ids: list[int]) -> None:
        """Select these ROI ids (unknown ids are reported and dropped) and redraw."""
        traces = self.traces
        known = set() if traces is None else {int(i) for i in traces.ids}
        self.selected_ids = [int(i) for i in ids if int(i) in known]
        self._unknown = [int(i) for i in ids if int(i) not in known]
        self.ids_edit.setText(", ".join(map(str, self.selected_ids)))
        self.redraw()

    @property
    def mode(self) -> str:
        """``"overlay"`` or ``"stacked"``."""
        return self.mode_box.currentText()

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {value!r}")
        self.mode_box.setCurrentText(value)

    # ------------------------------------------------------------------ drawing
    def _rows(self, kind: str) -> Any:
        if kind == "spikes":
            return None  # drawn per ROI by the SpikesMixin (fit and activity)
        if kind == "dff":
            dff = self.dff
            return None if dff is None else dff.dff
        return getattr(self.traces, kind, None)

    def _pen(self, roi: int, kind: str) -> Any:
        if len(self.selected_ids) > 1:
            rgba = self.layer.get_color(roi)
            color = pg.mkColor(*(np.asarray(rgba) * 255).astype(int)) if rgba is not None else "w"
        else:
            color = _KIND_COLORS[kind]
        return pg.mkPen(color, width=1, style=_KIND_STYLES[kind])

    def _preview(self, traces: Any) -> dict | None:
        """The dF/F widget's live preview stored with the layer, if it fits the traces."""
        preview = _store(self.layer).get("dff_preview") if self.layer is not None else None
        if not preview or traces is None or int(preview.get("id", -1)) not in traces.ids:
            return None
        if any(np.shape(preview.get(k)) != (traces.n_frames,) for k in ("dff", "baseline")):
            return None  # stale: made from other traces
        return preview

    def _items(self, roi: int, i: int, kinds: list[str], preview: dict | None) -> list[tuple]:
        """(name, plot row, y, (min, max) of y, stacking anchor) of the curves of one ROI.

        The anchor is the minimum a curve is aligned on in the stacked view: its own, except
        for the preview baseline, which moves with the trace it was computed from.
        """
        items = []
        for kind in kinds:
            lo, hi = self._bounds(self._rows(kind), i)
            items.append((kind, KINDS[kind][1], self._rows(kind)[i], (lo, hi), lo))
        if self._use_spikes:
            items += self._spike_items(roi, i, self._spikes_preview(self.traces))
        if preview is None or int(preview["id"]) != roi:
            return items
        source = "F" if preview.get("source") == "F" else "corrected"
        if any(KINDS[k][1] == 0 for k in kinds) and self._rows(source) is not None:
            base = np.asarray(preview["baseline"])
            anchor = self._bounds(self._rows(source), i)[0]
            items.append(("baseline preview", 0, base, bounds(base), anchor))
        if self.kind_boxes["dff"].isChecked():
            y = np.asarray(preview["dff"])
            lo, hi = bounds(y)
            items.append(("dff preview", 1, y, (lo, hi), lo))
        return items

    def redraw(self) -> None:
        """Show the selected ROIs' checked kinds: the stored rows, set on reused curve items.

        The y range comes from the rows' cached bounds and the stacked offsets (no autorange
        over all data); the curve offsets are item transforms, so ``yData`` is the stored row.
        """
        self.curves = {}
        n_rows = len(self.plots)
        used = [0] * n_rows
        for pool in self._texts:
            pool.start()
        traces = self.traces
        preview = self._preview(traces)
        if traces is not self._bounds_of:
            self._bounds.clear()
            self._bounds_of = traces
        self.kind_boxes["dff"].setVisible(self.dff is not None or preview is not None)
        self.kind_boxes["Fneu"].setVisible(traces is None or traces.Fneu is not None)
        self.kind_boxes["spikes"].setVisible(self._has_spikes(traces))
        message = self._message(traces, preview)
        self.message.setText(message)
        self.message.setVisible(bool(message))
        use_dff = self.kind_boxes["dff"].isVisibleTo(self) and self.kind_boxes["dff"].isChecked()
        box = self.kind_boxes["spikes"]
        self._use_spikes = box.isVisibleTo(self) and box.isChecked()
        spike_rows = self._spike_rows(traces) if self._use_spikes else set()
        self.plots[1].setVisible(use_dff or 1 in spike_rows)
        self.plots[2].setVisible(2 in spike_rows)
        self._show_flags_title(use_dff)
        if traces is None or not self.selected_ids:
            self._hide_unused(used)
            return
        x, in_seconds = self._time_axis()
        kinds = [
            k
            for k, box in self.kind_boxes.items()
            if box.isChecked() and box.isVisibleTo(self) and self._rows(k) is not None
        ]
        stacked = self.mode == "stacked" and len(self.selected_ids) > 1
        offsets = [0.0] * n_rows
        y_range = [[np.inf, -np.inf] for _ in range(n_rows)]
        plan = []  # (plot row, roi, name, y, shift): ranges are known before any curve changes
        for roi in self.selected_ids:
            i = int(np.flatnonzero(traces.ids == roi)[0])
            spans = [-np.inf] * n_rows  # height above the offset, per plot
            for name, row, y, (lo, hi), anchor in self._items(roi, i, kinds, preview):
                shift = offsets[row] - anchor if stacked else 0.0
                spans[row] = max(spans[row], hi - anchor)
                y_range[row] = [min(y_range[row][0], lo + shift), max(y_range[row][1], hi + shift)]
                plan.append((row, roi, name, y, shift))
            if stacked:
                flags = self.flags_of(roi)
                for row in range(n_rows):
                    if spans[row] > 0:  # as before: a flat row gets no label
                        text = f"ROI {roi}" + (f" (flagged: {flags})" if flags and row == 1 else "")
                        self._texts[row].show(text, float(x[0]), offsets[row], self._text)
                        offsets[row] += 1.1 * spans[row]
        counts = [sum(p[0] == row for p in plan) for row in range(n_rows)]
        for row, pool in enumerate(self._pool):
            for curve in pool[: counts[row]]:
                curve.clear()  # the range change below then recomputes nothing
        self._hide_unused(counts)
        self._set_ranges(x, y_range, in_seconds)
        for row, roi, name, y, shift in plan:
            curve = self._curve(row, used[row])
            used[row] += 1
            if curve.pos().y() != shift:  # the item transform, without a display update
                pg.GraphicsObject.setPos(curve, 0.0, shift)
            # the pen with the data: one display computation per curve, for the final view
            curve.setData(x, y, name=f"{roi} {name}", pen=self._pen(roi, name))
            if not curve.isVisible():
                curve.setVisible(True)
            self.curves[(roi, name)] = curve
        self._update_cursor()

    def _show_flags_title(self, use_dff: bool) -> None:
        """The dF/F plot's title names the shown ROIs with a quality flag (none: no title)."""
        flagged = [(roi, self.flags_of(roi)) for roi in self.selected_ids] if use_dff else []
        flagged = [(roi, f) for roi, f in flagged if f]
        title = "; ".join(f"ROI {roi} flagged: {f}" for roi, f in flagged) or None
        if title != self._dff_title:  # a title changes the layout: only when it changes
            self.plots[1].setTitle(title, color="#e0a030" if title else None)
            self._dff_title = title

    @property
    def dff_title(self) -> str | None:
        """The dF/F plot's title: the flagged ROIs shown, or None."""
        return self._dff_title

    def _set_ranges(self, x: np.ndarray, y_range: list, in_seconds: bool) -> None:
        """All data in view: x from the time axis, y from the planned curves' bounds."""
        x_range = (float(x[0]), float(x[-1]))
        for row, plot in enumerate(self.plots):
            plot.setLabel(
                "bottom", "time" if in_seconds else "frame", units="s" if in_seconds else ""
            )
            y = tuple(y_range[row]) if np.isfinite(y_range[row][0]) else None
            if row == 0 or y is not None:  # plot 1 follows plot 0's x through the link
                plot.setRange(xRange=x_range if row == 0 else None, yRange=y)

    def _curve(self, row: int, k: int) -> pg.PlotDataItem:
        """The k-th curve item of plot `row`, made once (reusing items is ~3x faster than new)."""
        pool = self._pool[row]
        if k == len(pool):
            curve = pg.PlotDataItem(autoDownsample=True, downsampleMethod="peak", clipToView=True)
            self.plots[row].addItem(curve)
            pool.append(curve)
        return pool[k]

    def _hide_unused(self, used: list[int]) -> None:
        for pool in self._texts:
            pool.finish()
        for row, pool in enumerate(self._pool):
            for curve in pool[used[row] :]:
                if curve.isVisible():
                    curve.setVisible(False)
                    curve.clear()  # drop the reference to the stored row

    def _message(self, traces: Any, preview: dict | None = None) -> str:
        if self.layer is None:
            return "No Labels layer: detect or draw ROIs, then run 'Extract traces'."
        if traces is None:
            return (
                f"Layer {self.layer.name!r} has no traces: run 'Extract traces' on it "
                "(movie + this ROI layer) first."
            )
        parts = []
        if not self.selected_ids:
            parts.append("Click a label in the viewer (shift-click adds) or type ROI ids.")
        if self._unknown:
            parts.append(f"No traces for ROI id(s) {', '.join(map(str, self._unknown))}.")
        if self.frame_rate_hz() is None:
            parts.append("Frame rate unknown: time axis in frames.")
        reasons = self._flag_reasons(traces)
        if reasons:
            parts.append("Flagged: " + "; ".join(reasons) + ".")
        if preview is not None and int(preview["id"]) in self.selected_ids:
            flags = preview.get("flags")
            parts.append(
                f"Dashed: dF/F widget preview of ROI {int(preview['id'])} "
                f"({preview.get('method', '?')}, baseline and dF/F; not stored"
                + (f"; flagged: {flags}" if flags else "")
                + ")."
            )
        parts.append(self._spikes_message(traces))
        return " ".join(p for p in parts if p)

    def _flag_reasons(self, traces: Any) -> list[str]:
        """``"ROI n: <reason>"`` for the selected ROIs flagged in the stored dF/F."""
        dff = self.dff
        if dff is None or traces is None or np.shape(dff.dff)[0] != traces.n_rois:
            return []
        if not any(self.flags_of(roi) for roi in self.selected_ids):
            return []
        reasons = dff.flag_reasons()
        out = []
        for roi in self.selected_ids:
            i = int(np.flatnonzero(np.asarray(traces.ids) == roi)[0])
            if reasons[i]:
                out.append(f"ROI {roi}: {reasons[i]}")
        return out

    # ------------------------------------------------------------------ time link
    def current_frame(self) -> int:
        """The movie frame shown by the viewer's time slider (axis 0)."""
        movie = self.movie_layer()
        if movie is None:
            return int(self.viewer.dims.current_step[0])
        point = float(self.viewer.dims.point[0])
        return round((point - float(movie.translate[0])) / float(movie.scale[0]))

    def _x_of_frame(self, frame: int) -> float:
        rate = self.frame_rate_hz()
        return self.first_time_s() + frame / rate if rate else float(frame)

    def frame_at(self, x: float) -> int:
        """The frame at plot x (seconds, or frames without a rate), clipped to the traces."""
        rate = self.frame_rate_hz()
        frame = round((x - self.first_time_s()) * rate) if rate else round(x)
        n = self.traces.n_frames if self.traces is not None else frame + 1
        return min(max(frame, 0), n - 1)

    def _update_cursor(self, event: Any = None) -> None:
        if self.viewer is None or self.viewer.dims.ndim < 3:
            return
        x = self._x_of_frame(self.current_frame())
        for cursor in self.cursors:
            cursor.setValue(x)

    @property
    def cursor_x(self) -> float:
        """Where the time cursor is (seconds)."""
        return float(self.cursors[0].value())

    def go_to(self, x: float) -> int:
        """Move the viewer's time slider to the frame at plot x; returns that frame."""
        frame = self.frame_at(x)
        movie = self.movie_layer()
        if movie is None:
            self.viewer.dims.set_current_step(0, frame)
        else:
            world = float(movie.translate[0]) + frame * float(movie.scale[0])
            self.viewer.dims.set_point(0, world)
        return frame

    def _on_plot_clicked(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.traces is None:
            return
        pos = event.scenePos()
        for plot in self.plots:
            if plot.isVisible() and plot.vb.sceneBoundingRect().contains(pos):
                self.go_to(plot.vb.mapSceneToView(pos).x())
                return

    # ------------------------------------------------------------------ theme
    def _apply_theme(self, event: Any = None) -> None:
        from napari.utils.theme import get_theme

        name = getattr(self.viewer, "theme", "dark") if self.viewer is not None else "dark"
        theme = get_theme(name)
        self._text = _color_hex(theme.text)
        self.graphics.setBackground(_color_hex(theme.background))
        for plot in self.plots:
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(_color_hex(theme.foreground))
                axis.setTextPen(self._text)
        for cursor in self.cursors:
            cursor.setPen(pg.mkPen(_color_hex(theme.highlight), width=2))

    def closeEvent(self, event: Any) -> None:
        """Disconnect from the viewer when the dock closes."""
        if self.viewer is not None:
            self.viewer.dims.events.current_step.disconnect(self._update_cursor)
            self.viewer.events.theme.disconnect(self._apply_theme)
            self.viewer.layers.events.inserted.disconnect(self._refresh_layers)
            self.viewer.layers.events.removed.disconnect(self._refresh_layers)
            if self._on_viewer_click in self.viewer.mouse_drag_callbacks:
                self.viewer.mouse_drag_callbacks.remove(self._on_viewer_click)
        if self.layer is not None:
            self.layer.events.selected_label.disconnect(self._on_selected_label)
        super().closeEvent(event)

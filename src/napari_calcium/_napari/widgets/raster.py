"""Spike raster dock: the deconvolved activity of every ROI as an image, linked to the viewer.

Rows are ROIs (in the stored order, ROI ids on the left axis), columns are frames placed at their
time in seconds (frames without a frame rate). The image holds the stored ``activity`` (or ``s``
or ``c``) array itself; only the colour levels are chosen for display. A vertical line follows the
time slider; clicking a row selects that ROI's label in the Labels layer (which the trace plot
and the Deconvolve preview follow), and the selected row is outlined. Nothing is computed here:
the dock shows the ``"spikes"`` DeconvolutionResult that the Deconvolve widget stored in the
layer's ``metadata["napari_calcium"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import QRectF, Qt
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ._base import compact_picker, wrapping_label
from ._plot_items import LabelsLayerPicker, color_hex, stored

__all__ = ["RASTER_ARRAYS", "SpikeRasterWidget"]

#: arrays of a DeconvolutionResult the raster can show, default first
RASTER_ARRAYS = ("activity", "s", "c")
_MAX_TICKS = 40  # ROI id ticks on the left axis up to this many rows


_store = stored


class SpikeRasterWidget(LabelsLayerPicker, QWidget):
    """ROIs × time image of the stored spike inference of a Labels layer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    STORE_KEY = "spikes"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.layer: Any = None
        self._shown: Any = None  # the result the image was made from
        self.layer_box = QComboBox()
        compact_picker(self.layer_box)
        self.array_box = QComboBox()
        self.array_box.addItems(RASTER_ARRAYS)
        self.message = QLabel("")
        wrapping_label(self.message)
        self.graphics = pg.GraphicsLayoutWidget()
        self.plot = self.graphics.addPlot(row=0, col=0)
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.setLabel("left", "ROI")
        self.plot.invertY(True)  # first ROI on top
        self.plot.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.plot.addItem(self.image)
        self.cursor = pg.InfiniteLine(pos=0.0, angle=90, movable=False)
        self.plot.addItem(self.cursor, ignoreBounds=True)
        self.row_box = pg.LinearRegionItem(
            orientation="horizontal", movable=False, brush=(0, 0, 0, 0)
        )
        self.row_box.setVisible(False)
        self.plot.addItem(self.row_box, ignoreBounds=True)
        self.graphics.scene().sigMouseClicked.connect(self._on_clicked)

        top = QHBoxLayout()
        top.addWidget(QLabel("ROI layer"))
        top.addWidget(self.layer_box, 1)
        top.addWidget(QLabel("show"))
        top.addWidget(self.array_box)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(self.graphics, 1)
        self.setMinimumHeight(250)

        self.layer_box.currentIndexChanged.connect(self._on_layer_chosen)
        self.array_box.currentTextChanged.connect(lambda _: self.redraw())
        if napari_viewer is not None:
            napari_viewer.layers.events.inserted.connect(self._refresh_layers)
            napari_viewer.layers.events.removed.connect(self._refresh_layers)
            napari_viewer.dims.events.current_step.connect(self._update_cursor)
            napari_viewer.events.theme.connect(self._apply_theme)
        self._apply_theme()
        self._refresh_layers()

    # ------------------------------------------------------------------ layers and data
    def set_layer(self, layer: Any) -> None:
        """Show the spikes stored with this Labels layer (None: none)."""
        self._attach(layer, self._show_selected)
        self._shown = None
        self.redraw()

    def _on_metadata(self, _event: Any = None) -> None:
        if self.spikes is not self._shown:  # a preview stored with the layer changes nothing
            self.redraw()

    @property
    def spikes(self) -> Any:
        """The DeconvolutionResult stored with the chosen layer, or None."""
        return _store(self.layer).get("spikes") if self.layer is not None else None

    @property
    def data(self) -> np.ndarray | None:
        """The array shown: the chosen field of the stored result, (n_rois, n_frames)."""
        spikes = self.spikes
        return None if spikes is None else np.asarray(getattr(spikes, self.array_box.currentText()))

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        """Put the stored array into the image, placed at (time in s, row) and with ROI ticks."""
        spikes = self.spikes
        self._shown = spikes
        data = self.data
        if data is None or data.size == 0:
            self.image.clear()
            self.row_box.setVisible(False)
            self.message.setText(
                "No Labels layer: detect or draw ROIs first."
                if self.layer is None
                else f"Layer {self.layer.name!r} has no spikes: run 'Deconvolve' on it first."
            )
            self.message.setVisible(True)
            self.graphics.setVisible(False)  # no empty axes: the message says what to do
            return
        self.message.setVisible(False)
        self.graphics.setVisible(True)
        rate = float(spikes.frame_rate_hz) if spikes.frame_rate_hz else None
        n_rois, n_frames = data.shape
        width = n_frames / rate if rate else float(n_frames)
        finite = data[np.isfinite(data)]
        hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        lo = min(0.0, float(finite.min())) if finite.size else 0.0
        self.image.setImage(data, autoLevels=False, levels=(lo, hi if hi > lo else lo + 1.0))
        self.image.setRect(QRectF(0.0, 0.0, width, float(n_rois)))
        self.plot.setLabel("bottom", "time" if rate else "frame", units="s" if rate else "")
        ids = np.asarray(spikes.ids)
        step = max(1, int(np.ceil(n_rois / _MAX_TICKS)))
        ticks = [(k + 0.5, str(int(ids[k]))) for k in range(0, n_rois, step)]
        self.plot.getAxis("left").setTicks([ticks])
        self.plot.setRange(xRange=(0.0, width), yRange=(0.0, float(n_rois)), padding=0)
        self._show_selected()
        self._update_cursor()

    def _show_selected(self, _event: Any = None) -> None:
        """Outline the row of the layer's selected label (hidden when it has no row)."""
        spikes = self.spikes
        label = int(getattr(self.layer, "selected_label", 0) or 0)
        hits = np.flatnonzero(np.asarray(spikes.ids) == label) if spikes is not None else []
        if len(hits) == 0:
            self.row_box.setVisible(False)
            return
        self.row_box.setRegion((float(hits[0]), float(hits[0]) + 1.0))
        self.row_box.setVisible(True)

    # ------------------------------------------------------------------ viewer links
    def row_at(self, y: float) -> int | None:
        """The row index at plot y (None outside the rows)."""
        spikes = self.spikes
        if spikes is None or not 0.0 <= y < spikes.n_rois:
            return None
        return int(np.floor(y))

    def select_row(self, row: int) -> int:
        """Select this row's ROI label in the layer; returns the ROI id."""
        roi = int(np.asarray(self.spikes.ids)[row])
        self.layer.selected_label = roi
        return roi

    def _on_clicked(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.spikes is None:
            return
        pos = event.scenePos()
        if not self.plot.vb.sceneBoundingRect().contains(pos):
            return
        row = self.row_at(self.plot.vb.mapSceneToView(pos).y())
        if row is not None:
            self.select_row(row)

    def _movie(self) -> Any:
        spikes = self.spikes
        movies = [
            ly
            for ly in getattr(self.viewer, "layers", [])
            if ly._type_string == "image" and ly.ndim >= 3 and not ly.rgb
        ]
        source = _store(self.layer).get("derived_from")
        for test in (
            lambda ly: ly.name == source,
            lambda ly: spikes is not None and ly.data.shape[0] == spikes.n_frames,
        ):
            hits = [ly for ly in movies if test(ly)]
            if hits:
                return hits[0]
        return movies[0] if movies else None

    def current_frame(self) -> int:
        """The movie frame shown by the viewer's time slider (axis 0)."""
        movie = self._movie()
        if movie is None:
            return int(self.viewer.dims.current_step[0])
        point = float(self.viewer.dims.point[0])
        return round((point - float(movie.translate[0])) / float(movie.scale[0]))

    def _update_cursor(self, event: Any = None) -> None:
        spikes = self.spikes
        if self.viewer is None or self.viewer.dims.ndim < 3 or spikes is None:
            return
        frame = self.current_frame()
        rate = spikes.frame_rate_hz
        self.cursor.setValue(frame / float(rate) if rate else float(frame))

    @property
    def cursor_x(self) -> float:
        """Where the time cursor is (seconds)."""
        return float(self.cursor.value())

    # ------------------------------------------------------------------ theme
    def _apply_theme(self, event: Any = None) -> None:
        from napari.utils.theme import get_theme

        name = getattr(self.viewer, "theme", "dark") if self.viewer is not None else "dark"
        theme = get_theme(name)
        self.graphics.setBackground(color_hex(theme.background))
        for side in ("left", "bottom"):
            axis = self.plot.getAxis(side)
            axis.setPen(color_hex(theme.foreground))
            axis.setTextPen(color_hex(theme.text))
        highlight = color_hex(theme.highlight)
        self.cursor.setPen(pg.mkPen(highlight, width=2))
        for line in self.row_box.lines:
            line.setPen(pg.mkPen(highlight, width=1))

    def closeEvent(self, event: Any) -> None:
        """Disconnect from the viewer when the dock closes."""
        if self.viewer is not None:
            self.viewer.dims.events.current_step.disconnect(self._update_cursor)
            self.viewer.events.theme.disconnect(self._apply_theme)
            self.viewer.layers.events.inserted.disconnect(self._refresh_layers)
            self.viewer.layers.events.removed.disconnect(self._refresh_layers)
        if self.layer is not None:
            self.layer.events.selected_label.disconnect(self._show_selected)
            self.layer.events.metadata.disconnect(self._on_metadata)
        super().closeEvent(event)

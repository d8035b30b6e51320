"""Spike raster dock in a real viewer: the stored activity as an image, time cursor, row click."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QPointF, Qt

from conftest import add_movie, add_rois, dock_widget, simulate_traces
from napari_calcium._napari.widgets.raster import SpikeRasterWidget
from napari_calcium.core.spikes.deconvolution.api import deconvolve

pytestmark = pytest.mark.gui

FS = 30.0


@pytest.fixture(scope="module")
def data():
    rec, rois, traces, dff = simulate_traces(n_frames=300, seed=5, frame_rate_hz=FS)
    spikes = deconvolve(dff.dff, frame_rate_hz=FS, ids=traces.ids)
    return rec, rois, traces, dff, spikes


@pytest.fixture
def viewer(make_napari_viewer, data):
    rec, rois, traces, dff, _ = data
    viewer = make_napari_viewer()
    add_movie(viewer, rec)
    add_rois(viewer, rois, traces=traces, dff=dff)
    return viewer


def _store_spikes(layer, spikes):
    meta = {**layer.metadata["napari_calcium"], "spikes": spikes, "spikes_source": "dff"}
    layer.metadata = {**layer.metadata, "napari_calcium": meta}


class _Click:
    def __init__(self, pos):
        self._pos = pos

    def button(self):
        return Qt.MouseButton.LeftButton

    def scenePos(self):
        return self._pos


def test_raster_shows_the_stored_activity_and_follows_the_layer(viewer, data, qtbot):
    *_, spikes = data
    layer = viewer.layers["rois"]
    _, widget = viewer.window.add_plugin_dock_widget("napari-calcium", "Spike raster")
    assert isinstance(widget, SpikeRasterWidget) and widget.layer is layer
    assert "Deconvolve" in widget.message.text() and widget.image.image is None
    _store_spikes(layer, spikes)  # stored after the dock opened: shown at once
    image = widget.image.image
    assert image.shape == (spikes.n_rois, spikes.n_frames)
    np.testing.assert_array_equal(image, spikes.activity)  # the stored array itself
    # x in seconds, one row per ROI
    rect = widget.image.mapRectToParent(widget.image.boundingRect())
    assert rect.left() == pytest.approx(0.0) and rect.top() == pytest.approx(0.0)
    assert rect.width() == pytest.approx(spikes.n_frames / FS)
    assert rect.height() == pytest.approx(spikes.n_rois)
    ticks = widget.plot.getAxis("left")._tickLevels[0]
    assert [t for _, t in ticks] == [str(int(i)) for i in spikes.ids]
    widget.array_box.setCurrentText("s")
    np.testing.assert_array_equal(widget.image.image, spikes.s)
    widget.array_box.setCurrentText("activity")

    viewer.dims.set_current_step(0, 120)  # the cursor follows the time slider
    assert widget.cursor_x == pytest.approx(120 / FS)


def test_clicking_a_row_selects_the_label(viewer, data, qtbot):
    *_, spikes = data
    layer = viewer.layers["rois"]
    _store_spikes(layer, spikes)
    widget = SpikeRasterWidget(viewer)
    qtbot.addWidget(widget)
    widget.resize(500, 400)
    widget.show()
    qtbot.waitExposed(widget)
    widget.plot.vb.updateMatrix()
    _, deconv = viewer.window.add_plugin_dock_widget("napari-calcium", "Deconvolve")
    deconv.rois_box.value = layer
    for row in (3, 7):
        pos = widget.plot.vb.mapViewToScene(QPointF(2.0, row + 0.5))
        widget._on_clicked(_Click(pos))
        roi = int(spikes.ids[row])
        assert layer.selected_label == roi
        assert widget.row_box.isVisible()
        assert widget.row_box.getRegion() == pytest.approx((row, row + 1))
        # the selection reaches the Deconvolve preview like a click in the viewer
        assert deconv.preview.value.startswith(f"ROI {roi}:")
    assert widget.row_at(-0.5) is None and widget.row_at(spikes.n_rois + 0.1) is None
    layer.selected_label = 0  # background: no row outlined
    assert not widget.row_box.isVisible()


def test_empty_state_shows_a_message_not_empty_axes(viewer, data, qtbot):
    """Issue 16, point 8: without spikes the dock showed meaningless axes beside its message."""
    widget = dock_widget(viewer, "Spike raster")  # as a user opens it
    layer = viewer.layers["rois"]
    widget.set_layer(layer)
    # isHidden: hidden by the dock itself (the test viewer's window is not shown)
    assert not widget.message.isHidden() and "run 'Deconvolve'" in widget.message.text()
    assert widget.graphics.isHidden()
    _store_spikes(layer, data[4])  # Deconvolve stores its result: the raster appears
    assert not widget.graphics.isHidden() and widget.message.isHidden()

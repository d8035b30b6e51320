"""Trace plot dock in a real viewer: stored traces on click, time cursor, click-to-seek, views."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyqtgraph as pg
import pytest
from qtpy.QtCore import QPointF, Qt

from conftest import add_movie, add_rois, simulate_traces
from napari_calcium._napari.widgets.trace_plot import TracePlotWidget, parse_ids

pytestmark = pytest.mark.gui

FS = 30.0


@pytest.fixture(scope="module")
def data():
    return simulate_traces(n_frames=300, seed=5, frame_rate_hz=FS)


@pytest.fixture
def viewer(make_napari_viewer, data):
    rec = data[0]
    viewer = make_napari_viewer()
    add_movie(viewer, rec)
    return viewer


@pytest.fixture
def widget(viewer, data, qtbot):
    _, rois, traces, dff = data
    add_rois(viewer, rois, traces=traces, dff=dff)
    widget = TracePlotWidget(viewer)
    qtbot.addWidget(widget)
    return widget


class _Click:
    """Stand-in for a pyqtgraph MouseClickEvent at a scene position."""

    def __init__(self, pos):
        self._pos = pos

    def button(self):
        return Qt.MouseButton.LeftButton

    def scenePos(self):
        return self._pos


def test_parse_ids():
    assert parse_ids("3, 5 7-9, 3") == [3, 5, 7, 8, 9]
    assert parse_ids("") == []


def test_clicking_a_label_shows_its_stored_traces(widget, viewer, data):
    _, rois, traces, dff = data
    layer = viewer.layers["rois"]
    assert widget.layer is layer
    roi = int(rois.ids[3])
    layer.selected_label = roi
    assert widget.selected_ids == [roi]
    i = int(np.flatnonzero(traces.ids == roi)[0])
    expected = {"F": traces.F[i], "corrected": traces.corrected[i], "dff": dff.dff[i]}
    assert set(widget.curves) == {(roi, k) for k in expected}  # neuropil off by default
    for (_, kind), curve in widget.curves.items():
        np.testing.assert_array_equal(curve.yData, expected[kind])  # stored values, not display
        np.testing.assert_allclose(curve.xData, np.arange(traces.n_frames) / FS)
    widget.kind_boxes["Fneu"].setChecked(True)
    np.testing.assert_array_equal(widget.curves[(roi, "Fneu")].yData, traces.Fneu[i])

    # a click in the viewer on another ROI's centroid (world coordinates, 2 µm per pixel)
    other = int(rois.ids[6])
    cy, cx = np.argwhere(layer.data == other).mean(axis=0).round()
    assert widget.pick((0.0, cy * 2.0, cx * 2.0)) == other
    assert widget.selected_ids == [other]
    widget.pick((0.0, cy * 2.0, cx * 2.0), add=True)  # shift-click toggles it off again
    assert widget.selected_ids == []
    assert widget.pick((0.0, 0.0, 0.0)) is None or layer.data[0, 0] != 0


def test_cursor_follows_the_time_slider_and_plot_click_seeks(widget, viewer, data, qtbot):
    widget.show_rois([int(data[1].ids[0])])
    viewer.dims.set_current_step(0, 120)
    assert widget.cursor_x == pytest.approx(120 / FS)
    assert widget.go_to(2.0) == 60
    assert viewer.dims.current_step[0] == 60
    assert widget.cursor_x == pytest.approx(2.0)

    widget.resize(600, 400)
    widget.show()
    qtbot.waitExposed(widget)
    plot = widget.plots[0]
    plot.setXRange(0, 10, padding=0)
    plot.vb.updateMatrix()
    pos = plot.vb.mapViewToScene(QPointF(5.0, float(np.mean(plot.vb.viewRange()[1]))))
    widget._on_plot_clicked(_Click(pos))
    assert abs(viewer.dims.current_step[0] - 150) <= 1
    assert widget.frame_at(-3.0) == 0 and widget.frame_at(1e6) == data[2].n_frames - 1


def test_overlay_and_stacked_views_keep_stored_data(widget, data):
    _, rois, traces, _ = data
    ids = [int(r) for r in rois.ids[:3]]
    widget.ids_edit.setText(", ".join(map(str, ids)) + ", 999")
    widget.ids_edit.editingFinished.emit()
    assert widget.selected_ids == ids
    assert "999" in widget.message.text()
    assert {k[0] for k in widget.curves} == set(ids)
    assert all(c.pos().y() == 0 for c in widget.curves.values())
    widget.mode = "stacked"
    ys = [widget.curves[(r, "corrected")].pos().y() for r in ids]
    assert ys[0] < ys[1] < ys[2]  # offsets through the item transform...
    for r in ids:  # ...never in the data
        i = int(np.flatnonzero(traces.ids == r)[0])
        np.testing.assert_array_equal(widget.curves[(r, "corrected")].yData, traces.corrected[i])
    # "ROI n" labels are kept and reused; the y range holds every shifted curve
    labels = [t for t in widget.plots[0].items if isinstance(t, pg.TextItem)]
    assert sorted(t.toPlainText() for t in labels if t.isVisible()) == [f"ROI {r}" for r in ids]
    widget.redraw()
    assert [t for t in widget.plots[0].items if isinstance(t, pg.TextItem)] == labels
    lo, hi = widget.plots[0].vb.viewRange()[1]
    for (_, kind), curve in widget.curves.items():
        if kind != "dff":
            y = curve.yData + curve.pos().y()
            assert lo <= np.nanmin(y) and np.nanmax(y) <= hi
    widget.show_rois(ids[:1])  # reused curve items: the others are hidden, not left on screen
    visible = [c for plot in widget.plots for c in plot.items if c.isVisible() and c.name()]
    assert sorted(c.name() for c in visible) == sorted(f"{ids[0]} {k}" for _, k in widget.curves)


def test_missing_dff_and_missing_traces(viewer, data, qtbot):
    _, rois, traces, _ = data
    add_rois(viewer, rois, name="no traces")
    add_rois(viewer, rois, name="no dff", traces=traces)
    widget = TracePlotWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.layer.name == "no dff"  # layers with traces come first
    widget.show_rois([int(rois.ids[0])])
    assert not widget.kind_boxes["dff"].isVisibleTo(widget)
    assert not widget.plots[1].isVisible()
    assert all(kind != "dff" for _, kind in widget.curves)
    widget.set_layer(viewer.layers["no traces"])
    assert "has no traces" in widget.message.text() and "Extract traces" in widget.message.text()
    assert widget.curves == {}
    viewer.layers.remove("no traces")
    assert widget.layer.name == "no dff"


# ----------------------------------------------------------------------------- spike inference
def _spikes(traces, dff):
    from napari_calcium.core.spikes.deconvolution.api import deconvolve

    return deconvolve(dff.dff, frame_rate_hz=FS, ids=traces.ids, tau_decay_s=None)


def test_stored_spikes_draw_fit_over_their_input_and_activity_below(viewer, data, qtbot):
    _, rois, traces, dff = data
    spikes = _spikes(traces, dff)
    layer = add_rois(viewer, rois, traces=traces, dff=dff, spikes=spikes, spikes_source="dff")
    widget = TracePlotWidget(viewer)
    qtbot.addWidget(widget)
    roi = int(rois.ids[2])
    layer.selected_label = roi
    k = spikes.row(roi)
    assert widget.kind_boxes["spikes"].isVisibleTo(widget)
    fit, activity = widget.curves[(roi, "fit")], widget.curves[(roi, "activity")]
    np.testing.assert_array_equal(fit.yData, spikes.fit[k])  # stored values
    np.testing.assert_array_equal(activity.yData, spikes.activity[k])
    assert fit in widget.plots[1].items  # over the dF/F it was computed from
    assert activity in widget.plots[2].items and widget.plots[2].isVisible()
    assert fit.opts["pen"].style() == Qt.PenStyle.SolidLine
    widget.kind_boxes["spikes"].setChecked(False)  # the box hides them and the activity plot
    assert not any(kind in ("fit", "activity") for _, kind in widget.curves)
    assert not widget.plots[2].isVisible()
    widget.kind_boxes["spikes"].setChecked(True)

    # stacked: the fit moves with its dF/F trace, the data stay the stored rows
    ids = [int(r) for r in rois.ids[:3]]
    widget.show_rois(ids)
    widget.mode = "stacked"
    for r in ids:
        assert widget.curves[(r, "fit")].pos().y() == widget.curves[(r, "dff")].pos().y()
        np.testing.assert_array_equal(widget.curves[(r, "fit")].yData, spikes.fit[spikes.row(r)])

    # spikes of the corrected traces: the fit goes over the fluorescence
    meta = {**layer.metadata["napari_calcium"], "spikes_source": "corrected"}
    layer.metadata = {**layer.metadata, "napari_calcium": meta}
    widget.show_rois([roi])
    assert widget.curves[(roi, "fit")] in widget.plots[0].items


def test_spikes_preview_is_dashed_and_stale_spikes_are_not_drawn(viewer, data, qtbot):
    _, rois, traces, dff = data
    roi = int(rois.ids[1])
    preview = {
        "id": roi, "fit": dff.dff[1] * 0.5, "activity": np.abs(dff.dff[1]), "method": "oasis-ar1",
        "source": "dff",
    }  # fmt: skip
    short = _spikes(traces, dff)
    short = dataclasses.replace(short, c=short.c[:, :10])  # from other traces
    layer = add_rois(viewer, rois, traces=traces, dff=dff, spikes=short, spikes_preview=preview)
    widget = TracePlotWidget(viewer)
    qtbot.addWidget(widget)
    layer.selected_label = roi
    assert (roi, "fit") not in widget.curves and (roi, "activity") not in widget.curves
    assert "do not fit these traces" in widget.message.text()
    fit, act = widget.curves[(roi, "fit preview")], widget.curves[(roi, "activity preview")]
    np.testing.assert_array_equal(fit.yData, preview["fit"])
    np.testing.assert_array_equal(act.yData, preview["activity"])
    assert fit.opts["pen"].style() == Qt.PenStyle.DashLine
    assert act in widget.plots[2].items and fit in widget.plots[1].items
    assert "Deconvolve preview" in widget.message.text()
    widget.show_rois([int(rois.ids[0])])  # another ROI: no preview drawn for it
    assert not any("preview" in kind for _, kind in widget.curves)


def test_deconvolve_widget_preview_and_result_reach_the_plot(viewer, data, qtbot):
    _, rois, traces, dff = data
    layer = add_rois(viewer, rois, traces=traces, dff=dff)
    _, plot = viewer.window.add_plugin_dock_widget("napari-calcium", "Trace plot")
    _, deconv = viewer.window.add_plugin_dock_widget("napari-calcium", "Deconvolve")
    plot.set_layer(layer)
    deconv.rois_box.value = layer
    roi = int(rois.ids[5])
    layer.selected_label = roi
    expected = deconv.preview_result
    np.testing.assert_array_equal(plot.curves[(roi, "fit preview")].yData, expected.fit[0])
    job = deconv.start()
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    spikes = layer.metadata["napari_calcium"]["spikes"]
    np.testing.assert_array_equal(
        plot.curves[(roi, "activity")].yData, spikes.activity[spikes.row(roi)]
    )


# ----------------------------------------------------------------------------- dF/F flags (17)
def test_flagged_rois_are_named_in_title_message_and_stacked_labels(viewer, data, qtbot):
    from napari_calcium import compute_dff

    _, rois, traces, _ = data
    # a threshold between the ROIs' baseline shares: some ROIs flagged, some not
    share = compute_dff(traces, frame_rate_hz=FS).baseline_fraction
    dff = compute_dff(traces, frame_rate_hz=FS, min_baseline_fraction=float(np.median(share)))
    flagged = [int(i) for i in traces.ids[dff.neuropil_dominated]]
    clean = [int(i) for i in traces.ids[~dff.neuropil_dominated]]
    assert flagged and clean
    add_rois(viewer, rois, traces=traces, dff=dff)
    widget = TracePlotWidget(viewer)
    qtbot.addWidget(widget)
    widget.show_rois([flagged[0]])
    assert widget.dff_title == f"ROI {flagged[0]} flagged: neuropil-dominated"
    assert f"Flagged: ROI {flagged[0]}: neuropil-dominated" in widget.message.text()
    np.testing.assert_array_equal(widget.curves[(flagged[0], "dff")].yData,
                                  dff.dff[traces.ids == flagged[0]][0])  # fmt: skip
    widget.show_rois([clean[0]])
    assert widget.dff_title is None and "Flagged" not in widget.message.text()
    widget.show_rois([clean[0], flagged[0]])
    widget.mode = "stacked"
    texts = [t.toPlainText() for t in widget.plots[1].items
             if isinstance(t, pg.TextItem) and t.isVisible()]  # fmt: skip
    assert sorted(texts) == sorted(
        [f"ROI {clean[0]}", f"ROI {flagged[0]} (flagged: neuropil-dominated)"]
    )
    fluorescence = [t.toPlainText() for t in widget.plots[0].items
                    if isinstance(t, pg.TextItem) and t.isVisible()]  # fmt: skip
    assert sorted(fluorescence) == sorted(f"ROI {r}" for r in (clean[0], flagged[0]))

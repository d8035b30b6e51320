"""Layer pickers choose by what a step needs (issue 16, point 2), in a real viewer.

A new layer must not steal a picker: a movie widget lists movies (not a volume's mean image,
which also has three axes), and the steps that read traces (dF/F, Deconvolve, Events, Save
traces) pick a ROI layer that holds traces, following Extract traces when it stores them with a
layer, unless the user chose another layer.
"""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from conftest import FOUR_PLANE, add_movie, add_rois, dock_widget, run_job, shared_data

pytestmark = pytest.mark.gui


def test_movie_widgets_pick_the_volume_not_its_mean_image(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    (volume,) = viewer.open(str(shared_data(*FOUR_PLANE)), plugin="napari-calcium")
    summary = dock_widget(viewer, "Summary images")
    assert summary.layer_box.value is volume
    summary.kind.value = "mean"
    summary.run_button.clicked.emit()  # Run, as a user clicks it
    qtbot.waitUntil(lambda: summary.job is not None and summary.job.done, timeout=120_000)
    (mean,) = summary.last_layers
    assert mean.ndim == 3 and tuple(mean.axis_labels) == ("z", "y", "x")  # (planes, y, x)
    assert viewer.layers[-1] is mean  # the newest layer ...
    for name in ("Detect ROIs", "Motion correction", "Filter movie", "Summary images"):
        widget = dock_widget(viewer, name)
        assert widget.layer_box.value is volume, name  # ... is not taken for a movie
        assert mean not in widget.layer_box.choices, name


def test_trace_steps_pick_the_roi_layer_with_traces(make_napari_viewer, qtbot):
    rec = nc.simulate_recording(n_frames=300, shape=(64, 64), n_neurons=6, seed=4)
    viewer = make_napari_viewer(show=True)
    movie = add_movie(viewer, rec)
    rois = add_rois(viewer, nc.RoiSet.from_label_image(rec.truth.labels), name="rois")
    # steps that read traces, docked before any traces exist
    docked = {name: dock_widget(viewer, name) for name in ("dF/F", "Deconvolve", "Events")}
    extract = dock_widget(viewer, "Extract traces")
    assert extract.movie_box.value is movie and extract.rois_box.value is rois
    extract.run_button.clicked.emit()
    qtbot.waitUntil(lambda: extract.job is not None and extract.job.done, timeout=120_000)
    assert rois.metadata["napari_calcium"].get("traces") is not None
    # a newer ROI layer without traces (a hand-drawn edit, say) does not steal the pickers
    edit = viewer.add_labels(np.zeros((64, 64), np.int32), name="edit", scale=rois.scale)
    docked["Save traces"] = dock_widget(viewer, "Save traces")
    for name, widget in docked.items():
        assert widget.rois_box.value is rois, name
        assert list(widget.rois_box.choices) == [rois, edit], name  # with traces first
    # an explicit choice is the user's: kept, and the step says what is missing
    dff = docked["dF/F"]
    dff.rois_box.value = edit
    viewer.add_labels(np.zeros((64, 64), np.int32), name="another", scale=rois.scale)
    assert dff.rois_box.value is edit
    run_job(docked["Events"], qtbot)  # events on the layer with traces
    assert len(rois.metadata["napari_calcium"]["events"]) == len(rec.truth.spikes)
    assert dff.start() is None and "Extract traces" in dff.status.value


def test_plugins_menu_lists_the_widgets_in_analysis_order(make_napari_viewer):
    """Plugins > napari-calcium: open, motion, filters, summary, ROIs, traces, spikes, save."""
    viewer = make_napari_viewer()
    (submenu,) = [
        action.menu()
        for action in viewer.window.plugins_menu.actions()
        if action.menu() is not None and action.text() == "napari-calcium"
    ]
    names = [action.text().removesuffix(" (napari-calcium)") for action in submenu.actions()]
    stage_of = {
        "Recording properties": 0, "Convert recording": 0, "Motion correction": 1,
        "Filter movie": 2, "Crop, bin, detrend": 2, "Summary images": 3, "Detect ROIs": 4,
        "Shapes → ROIs": 4, "Import ROIs": 4, "Neuropil masks": 4, "Match sessions": 4,
        "Save ROIs": 4, "Extract traces": 5, "dF/F": 6, "Deconvolve": 7, "Events": 7,
        "Trace plot": 8, "Spike raster": 8, "Save traces": 9, "Run pipeline": 10,
        "Open results": 10,
    }  # fmt: skip
    assert sorted(names) == sorted(stage_of)
    stages = [stage_of[name] for name in names]
    assert stages == sorted(stages), names


def test_long_layer_names_do_not_widen_the_docks(make_napari_viewer, qtbot):
    """Issue 16, point 3: an 80-character PrairieView name made a dock ~1,300 px wide."""
    rec = nc.simulate_recording(n_frames=60, shape=(64, 64), n_neurons=4, seed=5)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    movie = add_movie(viewer, rec)
    rois = add_rois(viewer, nc.RoiSet.from_label_image(rec.truth.labels), name="rois")
    movie.name = "TSeries-" + "x300_y009n_z1425t1530_p110t131_APr_VSleft-007_" * 3 + "Ch2"
    rois.name = movie.name + " ROIs"
    docks = [dock_widget(viewer, name) for name in ("Detect ROIs", "Extract traces", "dF/F")]
    plot = dock_widget(viewer, "Trace plot")
    # a long preview line (a flagged ROI's reasons) wraps instead of widening the dF/F dock
    docks[2].preview.value = "ROI 12: flagged: neuropil-dominated: corrected baseline " * 4
    for widget in docks:
        assert widget.native.sizeHint().width() < 500, widget.title
    assert plot.sizeHint().width() <= 420
    qtbot.wait(100)
    for name, inner in viewer.window.dock_widgets.items():
        native = getattr(inner, "native", inner)  # magicgui containers wrap a QWidget
        assert native.width() <= 500, name
    canvas = viewer.window._qt_viewer.canvas.native.width()
    # the layer list and one dock column beside it: the canvas keeps ~40 % (was ~310 px)
    assert canvas > 0.35 * viewer.window._qt_window.width(), canvas
    pickers = [docks[0].layer_box, docks[1].movie_box, docks[1].rois_box]
    assert [box.value for box in pickers] == [movie, movie, rois]
    assert docks[1].rois_box.native.toolTip() == rois.name  # the whole name is one hover away

"""Extract traces and dF/F widgets in a real viewer: results stored with the ROI layer."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

import napari_calcium as nc
from conftest import dock_widget, run_job
from napari_calcium._napari._layers import movie_layer_kwargs
from napari_calcium._napari._rois import rois_labels_kwargs

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def recording():
    return nc.simulate_recording(n_frames=600, shape=(96, 96), n_neurons=10, seed=2)


@pytest.fixture
def viewer(make_napari_viewer, recording):
    viewer = make_napari_viewer()
    viewer.add_image(recording.movie, **movie_layer_kwargs(recording.metadata, name="movie"))
    rois = nc.RoiSet.from_label_image(recording.truth.labels)
    data, kwargs = rois_labels_kwargs(rois, name="rois", reference=viewer.layers["movie"])
    viewer.add_labels(data, **kwargs)
    return viewer


def test_extract_then_dff_store_results_with_the_roi_layer(viewer, qtbot, recording):
    labels = viewer.layers["rois"]
    extract = dock_widget(viewer, "Extract traces")
    extract.movie_box.value = viewer.layers["movie"]
    extract.rois_box.value = labels
    run_job(extract, qtbot)
    meta = labels.metadata["napari_calcium"]
    traces = meta["traces"]
    rate = recording.truth.frame_rate_hz
    # the widget calls the core function with its settings: same numbers as a script
    rois = nc.RoiSet.from_label_image(recording.truth.labels)
    expected = nc.extract_traces(recording.movie, rois, frame_rate_hz=rate)
    np.testing.assert_array_equal(traces.corrected, expected.corrected)
    assert traces.frame_rate_hz == pytest.approx(rate)
    np.testing.assert_allclose(labels.features["mean_F"], traces.F.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(labels.features["neuropil_coefficient"], 0.7, rtol=1e-6)

    dff = dock_widget(viewer, "dF/F")
    dff.rois_box.value = labels
    labels.selected_label = int(traces.ids[3])
    assert dff.preview.value.startswith(f"ROI {int(traces.ids[3])}:"), dff.preview.value
    before = dff.preview.value
    dff.method.value = "maximin"  # the preview follows the settings
    assert dff.preview.value != before
    dff.method.value = "robust"
    run_job(dff, qtbot)
    stored = labels.metadata["napari_calcium"]["dff"]
    # the widget passes the raw F along (the denominator rule and flags of issue 17)
    script = nc.compute_dff(traces, frame_rate_hz=rate)
    np.testing.assert_array_equal(stored.dff, script.dff)
    assert not script.neuropil_dominated.any()  # nothing flagged: the same as before the rule
    np.testing.assert_array_equal(
        stored.dff, nc.compute_dff(traces.corrected, frame_rate_hz=rate).dff
    )
    np.testing.assert_allclose(labels.features["dff_snr"], nc.snr(stored.dff))
    # the dF/F follows the true calcium (the same criterion as the scripting test)
    truth = recording.truth.calcium
    active = np.flatnonzero(truth.std(axis=1) > 0)
    r = [np.corrcoef(stored.dff[i], truth[i])[0, 1] for i in active]
    assert np.median(r) > 0.9

    # estimating the coefficient; a new extraction drops the stale dF/F
    extract.estimate.value = True
    run_job(extract, qtbot)
    meta = labels.metadata["napari_calcium"]
    assert meta["dff"] is None
    np.testing.assert_allclose(
        labels.features["neuropil_coefficient"], meta["traces"].coefficients, rtol=1e-6
    )
    assert not np.allclose(labels.features["neuropil_coefficient"], 0.7)


def test_extract_refuses_rois_of_another_size(viewer, qtbot):
    viewer.add_labels(np.ones((50, 50), np.int32), name="small")
    extract = dock_widget(viewer, "Extract traces")
    extract.movie_box.value = viewer.layers["movie"]
    extract.rois_box.value = viewer.layers["small"]
    assert extract.start() is None
    assert "error" in extract.status.value and "(50, 50)" in extract.status.value


def test_trace_plot_shows_traces_as_soon_as_they_are_extracted(viewer, qtbot):
    labels = viewer.layers["rois"]
    plot = dock_widget(viewer, "Trace plot")
    plot.set_layer(labels)
    labels.selected_label = 2
    assert not plot.curves  # nothing stored yet
    extract = dock_widget(viewer, "Extract traces")
    extract.movie_box.value = viewer.layers["movie"]
    extract.rois_box.value = labels
    run_job(extract, qtbot)
    traces = labels.metadata["napari_calcium"]["traces"]
    curve = plot.curves[(2, "corrected")]
    np.testing.assert_array_equal(curve.yData, traces.by_id(2).corrected)


def test_dff_preview_is_drawn_dashed_in_the_trace_plot(viewer, qtbot, recording):
    labels = viewer.layers["rois"]
    rate = recording.truth.frame_rate_hz
    rois = nc.RoiSet.from_label_image(recording.truth.labels)
    traces = nc.extract_traces(recording.movie, rois, frame_rate_hz=rate)
    meta = {**labels.metadata["napari_calcium"], "traces": traces}
    labels.metadata = {**labels.metadata, "napari_calcium": meta}
    plot = dock_widget(viewer, "Trace plot")
    plot.set_layer(labels)
    dff = dock_widget(viewer, "dF/F")
    dff.rois_box.value = labels
    roi = int(traces.ids[3])
    row = traces.corrected[3][None, :]
    labels.selected_label = roi
    dff.method.value = "maximin"
    expected = nc.compute_dff(row, frame_rate_hz=rate, method="maximin")
    stored = labels.metadata["napari_calcium"]["dff_preview"]
    assert stored["id"] == roi and stored["method"] == "maximin"
    # visible before "Compute dF/F for all ROIs": no solid dF/F yet, the dashed preview is there
    assert plot.dff is None and (roi, "dff") not in plot.curves
    assert plot.plots[1].isVisible()
    preview = plot.curves[(roi, "dff preview")]
    np.testing.assert_array_equal(preview.yData, expected.dff[0])
    baseline = plot.curves[(roi, "baseline preview")]
    np.testing.assert_array_equal(baseline.yData, expected.baseline[0])
    assert preview.opts["pen"].style() == Qt.PenStyle.DashLine
    assert "preview" in plot.message.text() and "maximin" in plot.message.text()

    dff.method.value = "robust"
    run_job(dff, qtbot)  # the solid curve: the stored dF/F
    solid = plot.curves[(roi, "dff")]
    stored_dff = labels.metadata["napari_calcium"]["dff"].dff
    np.testing.assert_array_equal(solid.yData, stored_dff[3])
    dff.method.value = "percentile"  # the preview follows the settings...
    expected = nc.compute_dff(row, frame_rate_hz=rate, method="percentile")
    np.testing.assert_array_equal(plot.curves[(roi, "dff preview")].yData, expected.dff[0])
    assert not np.array_equal(expected.dff[0], stored_dff[3])
    solid = plot.curves[(roi, "dff")]  # ...the stored dF/F does not
    np.testing.assert_array_equal(solid.yData, stored_dff[3])
    assert solid.opts["pen"].style() == Qt.PenStyle.SolidLine

    plot.show_rois([int(traces.ids[0])])  # another ROI: no preview drawn for it
    assert not any("preview" in kind for _, kind in plot.curves)


def test_dff_flags_a_roi_on_a_dark_region(make_napari_viewer, qtbot, recording):
    """A ROI drawn where the movie is blank (F = 0): flagged in the preview, status and features."""
    movie, labels = np.array(recording.movie), np.array(recording.truth.labels)
    corners = [(slice(0, 14), slice(0, 14)), (slice(0, 14), slice(-14, None)),
               (slice(-14, None), slice(0, 14)), (slice(-14, None), slice(-14, None))]  # fmt: skip
    corner = next(c for c in corners if not labels[c].any())  # one without a cell
    movie[(slice(None), *corner)] = 0  # a blanked corner (outside the field stop, say)
    dark = int(labels.max()) + 1
    labels[corner][3:9, 3:9] = dark
    viewer = make_napari_viewer()
    viewer.add_image(movie, **movie_layer_kwargs(recording.metadata, name="movie"))
    data, kwargs = rois_labels_kwargs(
        nc.RoiSet.from_label_image(labels), name="rois", reference=viewer.layers["movie"]
    )
    layer = viewer.add_labels(data, **kwargs)
    extract = dock_widget(viewer, "Extract traces")
    run_job(extract, qtbot)
    dff = dock_widget(viewer, "dF/F")
    assert dff.rois_box.value is layer
    layer.selected_label = dark
    assert "flagged, dF/F is NaN" in dff.preview.value, dff.preview.value
    layer.selected_label = 1
    assert dff.preview.value.startswith("ROI 1: F0"), dff.preview.value
    run_job(dff, qtbot)
    assert "1 ROI(s) flagged" in dff.status.value
    flags = dict(zip(layer.features["index"], layer.features["baseline_ok"], strict=True))
    assert flags[dark] == False and all(v for k, v in flags.items() if k != dark)  # noqa: E712


@pytest.fixture(scope="module")
def bright_neuropil():
    """A recording whose neuropil outshines half of its somata once r = 0.7 is subtracted (the true
    contamination is 0.5): ROIs 3, 4, 5, 7 and 10 are neuropil-dominated, 3 and 7 have F0c <= 0."""
    return nc.simulate_recording(
        n_frames=600, shape=(96, 96), n_neurons=10, seed=2, neuropil_photons=100,
        neuropil_coefficient=0.5, f0_photons=(10, 60), frame_rate_hz=7.5,
    )  # fmt: skip


def _click(widget, qtbot, timeout: int = 120_000) -> None:
    """Click the widget's run button as a user would and wait for its job to finish."""
    widget.run_button.native.click()
    job = widget.job
    assert job is not None, widget.status.value
    qtbot.waitUntil(lambda: job.done, timeout=timeout)
    assert ": done" in widget.status.value, widget.status.value


def test_dff_flags_neuropil_dominated_rois_in_preview_features_and_plot(
    make_napari_viewer, qtbot, bright_neuropil
):
    rec = bright_neuropil
    viewer = make_napari_viewer(show=True)
    viewer.add_image(rec.movie, **movie_layer_kwargs(rec.metadata, name="movie"))
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    data, kwargs = rois_labels_kwargs(rois, name="rois", reference=viewer.layers["movie"])
    layer = viewer.add_labels(data, **kwargs)
    extract = dock_widget(viewer, "Extract traces")
    extract.movie_box.value, extract.rois_box.value = viewer.layers["movie"], layer
    _click(extract, qtbot)
    traces = layer.metadata["napari_calcium"]["traces"]
    expected = nc.compute_dff(traces, frame_rate_hz=7.5)  # the script's default: the same rule
    dominated = [int(i) for i in traces.ids[expected.neuropil_dominated]]
    assert dominated == [3, 4, 5, 7, 10]
    plot = dock_widget(viewer, "Trace plot")
    plot.set_layer(layer)

    dff = dock_widget(viewer, "dF/F")
    dff.rois_box.value = layer
    assert dff.denominator.value == "floored" and dff.min_fraction.value == pytest.approx(0.1)
    layer.selected_label = 3  # F0c <= 0: floored, finite, flagged in the preview
    assert "flagged: neuropil-dominated" in dff.preview.value, dff.preview.value
    assert "NaN" not in dff.preview.value
    dff.denominator.value = "corrected"  # the rule before issue 17: NaN for this ROI
    assert "flagged, dF/F is NaN" in dff.preview.value, dff.preview.value
    dff.denominator.value = "floored"
    layer.selected_label = 2
    assert "flagged" not in dff.preview.value, dff.preview.value

    _click(dff, qtbot)
    assert "5 ROI(s) flagged neuropil-dominated" in dff.status.value, dff.status.value
    stored = layer.metadata["napari_calcium"]["dff"]
    np.testing.assert_array_equal(stored.dff, expected.dff)
    features = layer.features.set_index("index")
    np.testing.assert_array_equal(
        features.loc[traces.ids, "neuropil_dominated"].to_numpy() == 1, expected.neuropil_dominated
    )
    np.testing.assert_allclose(
        features.loc[traces.ids, "baseline_fraction"], expected.baseline_fraction, rtol=1e-6
    )
    assert (features.loc[traces.ids, "baseline_ok"] == 1).all()  # none NaN: floored

    # the trace plot says so: in the dF/F plot's title and in the message
    plot.show_rois([3])
    assert plot.dff_title == "ROI 3 flagged: neuropil-dominated"
    assert plot.plots[1].titleLabel.isVisible()
    assert "Flagged: ROI 3: neuropil-dominated" in plot.message.text()
    plot.show_rois([2])
    assert plot.dff_title is None and "Flagged" not in plot.message.text()

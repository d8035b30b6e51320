"""Deconvolve and Events widgets in a real viewer: results stored with the ROI layer."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from conftest import add_movie, add_rois, dock_widget, run_job, simulate_traces
from napari_calcium._napari.widgets import spikes as spikes_widgets
from napari_calcium.core.spikes.deconvolution import api
from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.spikes.event_detection import detect_events
from napari_calcium.core.spikes.events import event_counts, identify_events

pytestmark = pytest.mark.gui

FS = 30.0


@pytest.fixture(scope="module")
def data():
    return simulate_traces(n_frames=600, seed=2, frame_rate_hz=FS)


@pytest.fixture
def viewer(make_napari_viewer, data):
    rec, rois, traces, dff = data
    viewer = make_napari_viewer()
    add_movie(viewer, rec)
    add_rois(viewer, rois, rois=rois, traces=traces, dff=dff)
    return viewer


def _assert_same_result(a, b):
    for name in ("c", "s", "activity", "baseline", "lam", "tau_decay_s", "tau_rise_s", "noise"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if name == "noise":  # Welch's FFT over a block of rows may round differently per batch
            np.testing.assert_allclose(x, y, rtol=1e-12)
        else:
            assert x.tobytes() == y.tobytes(), name  # bit-identical
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.method == b.method and a.frame_rate_hz == b.frame_rate_hz
    assert a.parameters == b.parameters  # per-ROI lists joined across chunks too


def test_deconvolve_all_rois_equals_the_core_function(viewer, qtbot, data, monkeypatch):
    rec, _, traces, dff = data
    monkeypatch.setattr(spikes_widgets, "_CHUNK_ROIS", 3)  # 10 ROIs: 4 chunks, joined
    labels = viewer.layers["rois"]
    widget = dock_widget(viewer, "Deconvolve")
    widget.rois_box.value = labels
    assert not widget.lam_noise.value and widget.lam.value == 0.0
    assert widget.tau_decay.value == 0.0 and not widget.sparse.value
    run_job(widget, qtbot)
    meta = labels.metadata["napari_calcium"]
    stored = meta["spikes"]
    assert meta["spikes_source"] == "dff"  # dF/F is stored: it is the input
    expected = deconvolve(dff.dff, frame_rate_hz=FS, ids=traces.ids, tau_decay_s=None)
    _assert_same_result(stored, expected)
    np.testing.assert_array_equal(labels.features["tau_decay_s"], stored.tau_decay_s)
    np.testing.assert_allclose(labels.features["spike_rate_hz"], stored.activity.mean(axis=1) * FS)
    np.testing.assert_array_equal(labels.features["deconv_noise"], stored.noise)
    # the quality flag, joined over the chunks like the rest and shown per ROI
    np.testing.assert_array_equal(labels.features["activity_reliable"], expected.reliable)
    np.testing.assert_array_equal(labels.features["activity_snr"], expected.transient_snr)
    # realistic data: the inferred activity follows the true spikes
    truth = rec.truth.spikes.astype(float)
    active = np.flatnonzero(truth.sum(axis=1) > 0)
    r = [
        np.corrcoef(gaussian_filter1d(stored.s[i], 2), gaussian_filter1d(truth[i], 2))[0, 1]
        for i in active
    ]
    assert np.median(r) > 0.5, r

    # explicit settings map onto the core arguments: corrected traces, τ and λ given
    widget.source.value = "corrected"
    widget.tau_decay.value = 0.4
    widget.lam.value = 2.5
    assert widget.kwargs(FS) == {
        "frame_rate_hz": FS, "method": "oasis-ar1", "tau_decay_s": 0.4, "lam": 2.5,
    }  # fmt: skip
    # an indicator preset, the noise-constrained λ and sparse spikes map onto their arguments
    widget.indicator.value = "GCaMP6f"
    widget.lam_noise.value = True
    widget.sparse.value = True
    assert not widget.lam.enabled
    assert widget.kwargs(FS) == {
        "frame_rate_hz": FS, "method": "oasis-ar1", "tau_decay_s": 0.4, "lam": "noise",
        "indicator": "GCaMP6f", "s_min": "noise",
    }  # fmt: skip
    widget.indicator.value = spikes_widgets.INDICATOR_CHOICES[0]
    widget.lam_noise.value = False
    widget.sparse.value = False
    run_job(widget, qtbot)
    meta = labels.metadata["napari_calcium"]
    assert meta["spikes_source"] == "corrected"
    expected = deconvolve(
        traces.corrected, frame_rate_hz=FS, ids=traces.ids, tau_decay_s=0.4, lam=2.5
    )
    _assert_same_result(meta["spikes"], expected)
    np.testing.assert_allclose(labels.features["tau_decay_s"], 0.4)


def test_preview_follows_settings_and_the_selected_label(viewer, data):
    _, _, traces, dff = data
    labels = viewer.layers["rois"]
    widget = dock_widget(viewer, "Deconvolve")
    widget.rois_box.value = labels
    roi, i = int(traces.ids[4]), 4
    labels.selected_label = roi
    assert widget.preview.value.startswith(f"ROI {roi}:"), widget.preview.value
    assert "τ decay" in widget.preview.value and "λ" in widget.preview.value
    expected = deconvolve(dff.dff[i][None, :], frame_rate_hz=FS, ids=[roi], tau_decay_s=None)
    preview = labels.metadata["napari_calcium"]["spikes_preview"]
    assert preview["id"] == roi and preview["source"] == "dff"
    assert preview["method"] == expected.method
    np.testing.assert_array_equal(preview["fit"], expected.fit[0])
    np.testing.assert_array_equal(preview["activity"], expected.activity[0])
    assert "spikes" not in labels.metadata["napari_calcium"]  # a preview stores no result

    widget.tau_decay.value = 1.5  # the preview follows a setting
    expected = deconvolve(dff.dff[i][None, :], frame_rate_hz=FS, ids=[roi], tau_decay_s=1.5)
    np.testing.assert_array_equal(
        labels.metadata["napari_calcium"]["spikes_preview"]["fit"], expected.fit[0]
    )
    other = int(traces.ids[7])  # ... and the selected label
    labels.selected_label = other
    preview = labels.metadata["napari_calcium"]["spikes_preview"]
    assert preview["id"] == other
    expected = deconvolve(dff.dff[7][None, :], frame_rate_hz=FS, ids=[other], tau_decay_s=1.5)
    np.testing.assert_array_equal(preview["activity"], expected.activity[0])

    # Estimate τ: deconvolve the selected ROI with τ unknown, fill the box, preview again
    estimated = deconvolve(dff.dff[7][None, :], frame_rate_hz=FS, tau_decay_s=None)
    decay, _ = widget.estimate_tau()
    assert decay == float(estimated.tau_decay_s[0])
    assert widget.tau_decay.value == pytest.approx(decay, abs=5e-4)  # the box's 3 decimals
    assert f"τ decay {widget.tau_decay.value:.3f} s" in widget.preview.value

    widget.method.value = "oasis-ar2"  # τ rise is offered (0 = estimate) and passed on
    assert not widget.tau_rise.native.isHidden() and widget.lam.enabled
    assert widget.kwargs(FS)["tau_rise_s"] is None and widget.kwargs(FS)["lam"] == 0.0
    assert labels.metadata["napari_calcium"]["spikes_preview"]["method"] == "oasis-ar2"
    widget.method.value = "oasis-ar1"
    assert widget.tau_rise.native.isHidden() and "tau_rise_s" not in widget.kwargs(FS)

    labels.selected_label = 0  # background: no trace, no preview
    assert "select a ROI" in widget.preview.value
    assert labels.metadata["napari_calcium"]["spikes_preview"] is None


def test_cancel_leaves_no_spikes(viewer, qtbot, monkeypatch):
    labels = viewer.layers["rois"]
    monkeypatch.setattr(spikes_widgets, "_CHUNK_ROIS", 1)
    real = api.deconvolve

    def slow(*args, **kwargs):
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "deconvolve", slow)
    widget = dock_widget(viewer, "Deconvolve")
    widget.rois_box.value = labels
    job = widget.start()
    assert job is not None
    widget.cancel()
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    assert "cancelled" in widget.status.value, widget.status.value
    assert labels.metadata["napari_calcium"].get("spikes") is None
    assert "tau_decay_s" not in labels.features.columns
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_deconvolve_needs_traces(viewer):
    viewer.add_labels(np.zeros((96, 96), np.int32), name="empty")
    widget = dock_widget(viewer, "Deconvolve")
    widget.rois_box.value = viewer.layers["empty"]
    assert widget.start() is None
    assert "Extract traces" in widget.status.value
    assert "Extract traces" in widget.preview.value


def test_events_stored_with_features_and_points(viewer, qtbot, data):
    _, rois, traces, dff = data
    labels = viewer.layers["rois"]
    widget = dock_widget(viewer, "Events")
    widget.rois_box.value = labels
    run_job(widget, qtbot)
    meta = labels.metadata["napari_calcium"]
    # default: the noise-model detector at 0.3 false events per minute of pure noise
    expected = detect_events(dff.dff, frame_rate_hz=FS, smooth_s=0.075, false_rate_hz=0.3 / 60,
                             timeout_s=0.5)  # fmt: skip
    assert meta["events_source"] == "dff"
    assert len(meta["events"]) == traces.n_rois
    for got, want in zip(meta["events"], expected, strict=True):
        np.testing.assert_array_equal(got, want)
    counts = event_counts(expected)
    assert counts.sum() > 0
    np.testing.assert_array_equal(labels.features["event_count"], counts)
    np.testing.assert_allclose(labels.features["event_rate_hz"], counts / (traces.n_frames / FS))
    np.testing.assert_allclose(labels.features["event_threshold_sigma"], expected.threshold_sigma)
    assert " σ" in widget.status.value  # the thresholds, in noise SDs

    # the Points layer: (frame, y, x) at the ROI centroids, placed like the movie and the ROIs
    (points,) = widget.last_layers
    assert points._type_string == "points" and points.name == "rois events"
    assert len(points.data) == counts.sum()
    movie = viewer.layers["movie"]
    np.testing.assert_allclose(points.scale, (movie.scale[0], *labels.scale))
    centroids = dict(zip(rois.ids.tolist(), rois.centroids.tolist(), strict=True))
    for (frame, y, x), roi in zip(points.data, points.features["roi_id"], strict=True):
        assert (y, x) == pytest.approx(tuple(centroids[int(roi)]))
        i = int(np.flatnonzero(traces.ids == roi)[0])
        assert int(frame) in set(expected[i].tolist())
    # the events blink with the movie: only the current frame's points are in the slice
    frame = int(points.data[0, 0])
    viewer.dims.set_point(0, movie.translate[0] + frame * movie.scale[0])
    shown = points._view_indices
    assert len(shown) > 0 and np.all(points.data[shown, 0] == frame)

    # corrected traces, no points layer
    widget.source.value = "corrected"
    widget.points.value = False
    n_layers = len(viewer.layers)
    run_job(widget, qtbot)
    assert len(viewer.layers) == n_layers
    expected = detect_events(traces.corrected, frame_rate_hz=FS, smooth_s=0.075,
                             false_rate_hz=0.3 / 60, timeout_s=0.5)  # fmt: skip
    got = labels.metadata["napari_calcium"]["events"]
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))

    # CalSciPy's rule, under its own name: its own smoothing default and threshold in SDs
    widget.method.value = "calscipy"
    assert not widget.threshold.native.isHidden() and widget.false_rate.native.isHidden()
    assert widget.smooth.value == pytest.approx(0.1)
    run_job(widget, qtbot)
    expected = identify_events(traces.corrected, frame_rate_hz=FS, smooth_s=0.1, threshold_sd=0.5,
                               timeout_s=0.5)  # fmt: skip
    got = labels.metadata["napari_calcium"]["events"]
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def test_new_dff_makes_spikes_from_dff_stale_but_not_from_corrected(viewer, qtbot):
    labels = viewer.layers["rois"]
    decon = dock_widget(viewer, "Deconvolve")
    decon.rois_box.value = labels
    decon.tau_decay.value = 0.5
    run_job(decon, qtbot)
    meta = labels.metadata["napari_calcium"]
    assert meta["spikes_source"] == "dff" and meta["spikes"] is not None
    dff_widget = dock_widget(viewer, "dF/F")
    dff_widget.rois_box.value = labels
    run_job(dff_widget, qtbot)  # a new dF/F: spikes computed from the old one are dropped
    meta = labels.metadata["napari_calcium"]
    assert meta.get("spikes") is None and meta.get("spikes_source") is None

    decon.source.value = "corrected"
    run_job(decon, qtbot)
    run_job(dff_widget, qtbot)  # spikes from the corrected traces stay valid
    meta = labels.metadata["napari_calcium"]
    assert meta["spikes_source"] == "corrected" and meta["spikes"] is not None

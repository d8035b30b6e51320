"""Save traces widget: exact NPZ/CSV from the ROI layer, NWB only with real metadata."""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium._napari._layers import movie_layer_kwargs
from napari_calcium._napari._rois import rois_labels_kwargs

pytestmark = pytest.mark.gui


@pytest.fixture
def labels(make_napari_viewer):
    rec = nc.simulate_recording(n_frames=300, shape=(64, 64), n_neurons=6, seed=7)
    viewer = make_napari_viewer()
    viewer.add_image(rec.movie, **movie_layer_kwargs(rec.metadata, name="movie"))
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    data, kwargs = rois_labels_kwargs(rois, name="rois", reference=viewer.layers["movie"])
    layer = viewer.add_labels(data, **kwargs)
    traces = nc.extract_traces(rec.movie, rois, frame_rate_hz=30.0)
    dff = nc.compute_dff(traces.corrected, frame_rate_hz=30.0)
    meta = {**layer.metadata["napari_calcium"], "traces": traces, "dff": dff}
    layer.metadata = {**layer.metadata, "napari_calcium": meta}
    return viewer, layer


def test_save_npz_csv_and_nwb_from_the_roi_layer(labels, tmp_path):
    viewer, layer = labels
    _, widget = viewer.window.add_plugin_dock_widget("napari-calcium", "Save traces")
    widget.rois_box.value = layer
    meta = layer.metadata["napari_calcium"]

    widget.path.value = tmp_path / "session"
    widget.format.value = "npz"
    assert widget.nwb_box.native.isHidden()
    widget.start()
    assert widget.status.value.startswith("saved"), widget.status.value
    traces, dff, sidecar = nc.load_traces(tmp_path / "session.npz")
    np.testing.assert_array_equal(traces.corrected, meta["traces"].corrected)
    np.testing.assert_array_equal(dff.dff, meta["dff"].dff)
    assert sidecar["transform"] == "none"
    widget.start()  # refuses to overwrite
    assert "exist" in widget.status.value, widget.status.value

    widget.format.value = "csv"
    widget.start()  # the same stem: its JSON sidecar exists already, so nothing is written
    assert "exist" in widget.status.value and not (tmp_path / "session_F.csv").exists()
    widget.path.value = tmp_path / "table"
    widget.start()
    assert any(p.name == "table_dff.csv" for p in widget.written), widget.status.value

    widget.format.value = "nwb"
    assert not widget.nwb_box.native.isHidden()  # the NWB form appears for NWB only
    widget.start()  # no metadata typed in: refused, naming what is missing
    assert "NWB needs" in widget.status.value and "subject id" in widget.status.value
    for name, value in (
        ("session", "test session"), ("identifier", "abc"), ("subject_id", "m1"),
        ("device", "2p"), ("device_desc", "resonant"), ("manufacturer", "Bruker"),
        ("indicator", "GCaMP6f"), ("location", "V1"),
    ):  # fmt: skip
        getattr(widget, name).value = value
    widget.start()
    assert widget.written == [tmp_path / "table.nwb"], widget.status.value
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(tmp_path / "table.nwb"), "r") as io:
        nwb = io.read()
        series = nwb.processing["ophys"]["DfOverF"].roi_response_series
        (dff_series,) = series.values()
        np.testing.assert_array_equal(dff_series.data[:], meta["dff"].dff.T)
        assert nwb.subject.subject_id == "m1"


def test_stored_spikes_are_saved_with_the_traces(labels, tmp_path):
    from napari_calcium.core.spikes.deconvolution.api import deconvolve

    viewer, layer = labels
    meta = layer.metadata["napari_calcium"]
    traces = meta["traces"]
    spikes = deconvolve(meta["dff"].dff, frame_rate_hz=30.0, ids=traces.ids)
    layer.metadata = {
        **layer.metadata,
        "napari_calcium": {**meta, "spikes": spikes, "spikes_source": "dff"},
    }
    _, widget = viewer.window.add_plugin_dock_widget("napari-calcium", "Save traces")
    widget.rois_box.value = layer
    widget.path.value = tmp_path / "with_spikes"
    widget.start()
    assert widget.status.value.startswith("saved"), widget.status.value
    _, _, loaded, sidecar = nc.load_traces(tmp_path / "with_spikes.npz", with_spikes=True)
    for name in ("c", "s", "activity", "baseline", "tau_decay_s", "lam", "noise"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(spikes, name))
    assert sidecar["deconvolution"]["input"] == "dff"

    # spikes of older traces (another length) are left out, and the status says so
    stale = deconvolve(meta["dff"].dff[:, :100], frame_rate_hz=30.0, ids=traces.ids)
    layer.metadata = {
        **layer.metadata,
        "napari_calcium": {**layer.metadata["napari_calcium"], "spikes": stale},
    }
    widget.path.value = tmp_path / "stale"
    widget.start()
    assert "not saved" in widget.status.value, widget.status.value
    assert nc.load_traces(tmp_path / "stale.npz", with_spikes=True)[2] is None


def test_empty_or_invalid_paths_give_a_message(labels, tmp_path, monkeypatch):
    """Issue 16, point 8: clicking Save with no file named said nothing (an uncaught error)."""
    viewer, layer = labels
    _, widget = viewer.window.add_plugin_dock_widget("napari-calcium", "Save traces")
    widget.rois_box.value = layer
    work = tmp_path / "work"  # an empty box used to write <cwd>.npz beside the working folder
    work.mkdir()
    monkeypatch.chdir(work)
    for value, expected in (
        (None, '"save as" is empty'),  # nothing typed, as the widget opens
        ("   ", '"save as" is empty'),
        (tmp_path, "is a folder"),
        (tmp_path / "missing" / "session", "does not exist"),
    ):
        if value is not None:
            widget.path.line_edit.value = str(value)
        widget.run_button.clicked.emit()  # Save, as a user clicks it
        assert widget.status.value.startswith("error:"), widget.status.value
        assert expected in widget.status.value, widget.status.value
    assert [p.name for p in tmp_path.iterdir()] == ["work"] and not any(work.iterdir())
    widget.path.value = tmp_path / "session"
    widget.run_button.clicked.emit()
    assert (tmp_path / "session.npz") in widget.written, widget.status.value

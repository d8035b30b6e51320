"""Save traces widget: exact NPZ/CSV from the ROI layer, NWB only with real metadata."""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from conftest import add_movie, add_rois, dock_widget, run_job, simulate_traces
from napari_calcium._napari._layers import movie_layer_kwargs
from napari_calcium._napari._rois import rois_labels_kwargs

pytestmark = pytest.mark.gui


@pytest.fixture
def labels(make_napari_viewer):
    rec = nc.simulate_recording(n_frames=300, shape=(64, 64), n_neurons=6, seed=7)
    viewer = make_napari_viewer(show=True)
    viewer.add_image(rec.movie, **movie_layer_kwargs(rec.metadata, name="movie"))
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    data, kwargs = rois_labels_kwargs(rois, name="rois", reference=viewer.layers["movie"])
    layer = viewer.add_labels(data, **kwargs)
    traces = nc.extract_traces(rec.movie, rois, frame_rate_hz=30.0)
    dff = nc.compute_dff(traces.corrected, frame_rate_hz=30.0)
    meta = {**layer.metadata["napari_calcium"], "traces": traces, "dff": dff}
    layer.metadata = {**layer.metadata, "napari_calcium": meta}
    return viewer, layer


def _fill_nwb_form(widget) -> None:
    for name, value in (
        ("session", "test session"), ("identifier", "abc"), ("subject_id", "m1"),
        ("device", "2p"), ("device_desc", "resonant"), ("manufacturer", "Bruker"),
        ("indicator", "GCaMP6f"), ("location", "V1"),
    ):  # fmt: skip
        getattr(widget, name).value = value


def _assert_same_traces(loaded, stored) -> None:
    for name in ("F", "Fneu", "corrected", "coefficients", "ids"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(stored, name))


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
    widget.start()  # the same name as CSV: its own sidecar, nothing of the NPZ touched
    assert widget.status.value.startswith("saved"), widget.status.value
    assert (tmp_path / "session_F.csv").exists()
    widget.path.value = tmp_path / "table"
    widget.start()
    assert any(p.name == "table_dff.csv" for p in widget.written), widget.status.value

    widget.format.value = "nwb"
    assert not widget.nwb_box.native.isHidden()  # the NWB form appears for NWB only
    widget.start()  # no metadata typed in: refused, naming what is missing
    assert "NWB needs" in widget.status.value and "subject id" in widget.status.value
    _fill_nwb_form(widget)
    widget.start()
    assert widget.written == [tmp_path / "table.nwb"], widget.status.value
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(tmp_path / "table.nwb"), "r") as io:
        nwb = io.read()
        series = nwb.processing["ophys"]["DfOverF"].roi_response_series
        (dff_series,) = series.values()
        np.testing.assert_array_equal(dff_series.data[:], meta["dff"].dff.T)
        assert nwb.subject.subject_id == "m1"


def test_csv_after_npz_of_the_same_name_both_load_back(labels, tmp_path):
    """Issue 16, point 8: CSV after NPZ with one name was refused (both used session.json)."""
    viewer, layer = labels
    meta = layer.metadata["napari_calcium"]
    widget = dock_widget(viewer, "Save traces")
    widget.rois_box.value = layer
    widget.path.line_edit.value = str(tmp_path / "session")
    widget.format.value = "npz"
    widget.run_button.native.click()  # Save, as a user clicks it
    assert widget.status.value.startswith("saved"), widget.status.value
    npz_files = list(widget.written)
    npz_bytes = {p: p.read_bytes() for p in npz_files}

    widget.format.value = "csv"
    widget.run_button.native.click()
    assert widget.status.value.startswith("saved"), widget.status.value
    csv_files = list(widget.written)
    assert not set(npz_files) & set(csv_files)  # no file shared between the two formats
    assert {p: p.read_bytes() for p in npz_files} == npz_bytes  # the NPZ set is untouched
    assert npz_files[-1].name == "session.json" and csv_files[-1].name == "session.csv.json"

    for entry, fmt in (
        (tmp_path / "session.npz", "npz"), (npz_files[-1], "npz"),
        (tmp_path / "session.csv", "csv"), (tmp_path / "session_dff.csv", "csv"),
        (csv_files[-1], "csv"),
    ):  # fmt: skip
        traces, dff, sidecar = nc.load_traces(entry)
        _assert_same_traces(traces, meta["traces"])
        np.testing.assert_array_equal(dff.dff, meta["dff"].dff)
        np.testing.assert_array_equal(dff.baseline, meta["dff"].baseline)
        assert sidecar["file_format"] == fmt, entry
    names = {f["name"] for f in nc.load_traces(tmp_path / "session.npz")[2]["files"]}
    assert names == {"session.npz"}  # each sidecar checks its own files only


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


FS = 30.0


@pytest.fixture(scope="module")
def recording():
    return simulate_traces(n_frames=600, seed=2, frame_rate_hz=FS)


def test_events_found_in_the_viewer_are_saved_and_reload(make_napari_viewer, qtbot, recording,
                                                          tmp_path):  # fmt: skip
    """Issue 16, point 8: the events of the Events step were not saved with the traces."""
    rec, rois, traces, dff = recording
    viewer = make_napari_viewer(show=True)
    add_movie(viewer, rec)
    layer = add_rois(viewer, rois, rois=rois, traces=traces, dff=dff)
    finder = dock_widget(viewer, "Events")
    finder.rois_box.value = layer
    run_job(finder, qtbot)  # Find events, as a user clicks it
    meta = layer.metadata["napari_calcium"]
    events = meta["events"]
    assert sum(len(e) for e in events) > 0 and meta["events_source"] == "dff"

    widget = dock_widget(viewer, "Save traces")
    widget.rois_box.value = layer
    widget.path.line_edit.value = str(tmp_path / "session")
    for fmt in ("npz", "csv"):
        widget.format.value = fmt
        widget.run_button.native.click()
        assert widget.status.value.startswith("saved"), widget.status.value
        assert "with the events: " in widget.status.value, widget.status.value
        loaded, _, back, sidecar = nc.load_traces(tmp_path / f"session.{fmt}", with_events=True)
        _assert_same_traces(loaded, traces)
        assert len(back) == len(events) == traces.n_rois
        for got, want in zip(back, events, strict=True):
            assert got.dtype == np.intp and np.array_equal(got, want)
        assert sidecar["events"]["source"] == "dff"
        assert sidecar["events"]["n_events"] == sum(len(e) for e in events)

    # the CSV set has a long table a spreadsheet opens: one row per event
    table = tmp_path / "session_events.csv"
    assert table in widget.written
    lines = table.read_text().splitlines()
    assert lines[0] == "roi_id,frame,time_s"
    rows = [(int(roi), int(f)) for roi, ev in zip(traces.ids, events, strict=True) for f in ev]
    got = np.loadtxt(table, delimiter=",", skiprows=1, ndmin=2)
    np.testing.assert_array_equal(got[:, :2], rows)
    np.testing.assert_allclose(got[:, 2], got[:, 1] / FS)

    # events of other traces (another number of ROIs) are left out, and the status says so
    layer.metadata = {**layer.metadata, "napari_calcium": {**meta, "events": events[:3]}}
    widget.format.value = "npz"
    widget.path.line_edit.value = str(tmp_path / "stale")
    widget.run_button.native.click()
    assert "events do not fit" in widget.status.value, widget.status.value
    assert nc.load_traces(tmp_path / "stale.npz", with_events=True)[2] is None

    # NWB has no place for them here: the status says they were not written
    layer.metadata = {**layer.metadata, "napari_calcium": meta}
    widget.format.value = "nwb"
    _fill_nwb_form(widget)
    widget.run_button.native.click()
    assert widget.written == [tmp_path / "stale.nwb"], widget.status.value
    assert "events are not written to NWB" in widget.status.value, widget.status.value


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
        # an extension that is no format was silently replaced (session.txt -> session.npz)
        (tmp_path / "session.txt", "unknown extension"),
        (tmp_path / "session.tar.gz", "unknown extension"),
        # an extension of another format than the one chosen
        (tmp_path / "session.csv", "but the format is npz"),
    ):
        if value is not None:
            widget.path.line_edit.value = str(value)
        widget.run_button.native.click()  # Save, as a user clicks it
        assert widget.status.value.startswith("error:"), widget.status.value
        assert expected in widget.status.value, widget.status.value
    assert [p.name for p in tmp_path.iterdir()] == ["work"] and not any(work.iterdir())
    widget.path.value = tmp_path / "session"
    widget.run_button.native.click()
    assert (tmp_path / "session.npz") in widget.written, widget.status.value
    widget.path.line_edit.value = str(tmp_path / "other.NPZ")  # the chosen format's extension
    widget.run_button.native.click()
    assert (tmp_path / "other.npz") in widget.written, widget.status.value

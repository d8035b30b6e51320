"""Run pipeline on a layer computed in the viewer, and on one plane of a volume (issue 16, point 4).

Picking the registered movie used to run the raw file. Now a derived layer's own data is written
to a binary stack beside the output folder and the pipeline runs on it (with the layer's frame
rate and pixel size), and provenance.json says which layer, derived from which file by which
steps. A volume layer runs "plane k" (``[open] plane``) or "all planes" (one run per plane).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import napari_calcium as nc
from conftest import FOUR_PLANE, click_run, dock_widget, shared_data

pytestmark = pytest.mark.gui

#: 30 time points are too few to deconvolve (>= 32): the rest of the default pipeline runs
CONFIG = "[deconvolve]\nenabled = false\n"


def same_traces(a, b) -> None:
    np.testing.assert_array_equal(a.traces.ids, b.traces.ids)
    for name in ("F", "Fneu", "corrected"):
        x, y = getattr(a.traces, name), getattr(b.traces, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name  # bit-identical
    assert a.dff.dff.tobytes() == b.dff.dff.tobytes()


def test_a_registered_movie_layer_runs_its_own_data(make_napari_viewer, qtbot, tmp_path):
    """A single-plane TIFF with motion: the registered layer's pipeline reads registered frames."""
    from napari_calcium.io.tiff import write_tiff_stack

    rec = nc.simulate_recording(
        n_frames=200, shape=(64, 64), n_neurons=8, frame_rate_hz=20.0, pixel_size_um=2.0,
        seed=7, motion_px=3.0,
    )  # fmt: skip
    tif = write_tiff_stack(tmp_path / "moving.tif", rec.movie, frame_rate_hz=20.0,
                           pixel_size_um=2.0)  # fmt: skip
    viewer = make_napari_viewer(show=True)
    (raw,) = viewer.open(str(tif), plugin="napari-calcium")
    motion = dock_widget(viewer, "Motion correction")
    click_run(motion, qtbot)
    (registered,) = motion.last_layers
    assert registered.metadata["napari_calcium"]["derived_from"] == raw.name

    widget = dock_widget(viewer, "Run pipeline")
    assert widget.input_box.value is registered  # the newest movie
    widget.open_after.value = False
    out = tmp_path / "registered-results"
    widget.out_dir.value = out
    click_run(widget, qtbot, expect="steps:")
    assert widget.last_run is not None, widget.status.value
    inputs = json.loads((out / "provenance.json").read_text())["inputs"]
    written = tmp_path / "registered-results-input" / "movie.bin"
    ran = Path(inputs[0]["path"])
    assert ran == written.resolve(), "ran the raw file, not the registered layer"
    got = nc.load_results(out)
    stack = nc.save_binary(tmp_path / "registered.bin", np.asarray(registered.data),
                           frame_rate_hz=20.0, pixel_size_um=2.0)  # fmt: skip
    nc.run_pipeline(stack, tmp_path / "direct")
    same_traces(got, nc.load_results(tmp_path / "direct"))
    nc.run_pipeline(tif, tmp_path / "raw")  # what picking the registered layer used to run
    raw_f = nc.load_results(tmp_path / "raw").traces.F
    assert raw_f.shape != got.traces.F.shape or not np.array_equal(raw_f, got.traces.F)


def test_run_pipeline_on_the_registered_layer_runs_the_registered_data(
    make_napari_viewer, qtbot, tmp_path
):
    folder = shared_data(*FOUR_PLANE)
    viewer = make_napari_viewer(show=True)
    (volume,) = viewer.open(str(folder), plugin="napari-calcium")
    motion = dock_widget(viewer, "Motion correction")
    motion.layer_box.value = volume
    motion.plane_box.value = "plane 2"
    click_run(motion, qtbot)
    (registered,) = motion.last_layers
    meta = registered.metadata["napari_calcium"]
    rate, px = meta["frame_rate_hz"], meta["pixel_size_um"]

    widget = dock_widget(viewer, "Run pipeline")
    widget.input_box.value = registered
    assert widget.plane_box.native.isHidden()  # one plane already
    widget.config_text = CONFIG
    out = tmp_path / "registered-results"
    widget.out_dir.value = out
    widget.open_after.value = False
    click_run(widget, qtbot, expect="steps:")
    assert "30 frames at 5.50685 Hz" in widget.status.value, widget.status.value
    assert widget.last_run.out_dir == out
    got = nc.load_results(out)

    # the pipeline core on the same array (written as the widget does) gives the same traces
    stack = nc.save_binary(tmp_path / "registered.bin", np.asarray(registered.data),
                           frame_rate_hz=rate, pixel_size_um=px)  # fmt: skip
    nc.run_pipeline(stack, tmp_path / "direct-results", {"deconvolve": {"enabled": False}})
    same_traces(got, nc.load_results(tmp_path / "direct-results"))

    # ... and not the traces of the raw plane (what picking the registered layer used to run)
    raw = tmp_path / "raw-results"
    nc.run_pipeline(folder, raw, {"open": {"plane": 2}, "deconvolve": {"enabled": False}})
    raw_f = nc.load_results(raw).traces.F
    assert raw_f.shape != got.traces.F.shape or not np.array_equal(raw_f, got.traces.F)

    # provenance: the input is the layer's stack, derived from the file by motion correction
    provenance = json.loads((out / "provenance.json").read_text())
    written = tmp_path / "registered-results-input" / "movie.bin"
    assert Path(provenance["inputs"][0]["path"]) == written.resolve()
    opened = provenance["config"]["open"]
    assert opened["frame_rate_hz"] == rate and opened["pixel_size_um"] == px[0]
    layer = provenance["input_layer"]
    assert layer["layer"] == registered.name and layer["derived_from"] == volume.name
    assert layer["source_path"] == str(folder) and layer["plane"] == 2
    assert [s["step"] for s in layer["steps"]] == ["motion correction"]
    assert layer["stack"] == str(written) and layer["shape"] == [30, 256, 256]
    beside = json.loads(written.with_name("movie.layer.json").read_text())
    assert beside["layer"] == registered.name and beside["steps"] == layer["steps"]

    # again: the same data, every step up to date
    click_run(widget, qtbot, expect="steps:")
    assert "7 skipped, 4 disabled" in widget.status.value, widget.status.value


def test_run_pipeline_plane_2_of_the_four_plane_folder(make_napari_viewer, qtbot, tmp_path):
    folder = shared_data(*FOUR_PLANE)
    viewer = make_napari_viewer(show=True)
    (volume,) = viewer.open(str(folder), plugin="napari-calcium")
    widget = dock_widget(viewer, "Run pipeline")
    assert widget.input_box.value is volume
    assert not widget.plane_box.native.isHidden()
    assert list(widget.plane_box.choices) == [f"plane {k}" for k in range(4)] + ["all planes"]
    widget.plane_box.value = "plane 2"
    assert widget.default_output() == folder.parent / f"{folder.name}-plane2-results"
    widget.config_text = CONFIG
    out = tmp_path / "plane2"
    widget.out_dir.value = out
    click_run(widget, qtbot, expect="steps:")
    assert "plane 2: " in widget.status.value and "7 ran" in widget.status.value
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["config"]["open"]["plane"] == 2
    assert Path(provenance["inputs"][0]["path"]) == folder.resolve()
    assert "input_layer" not in provenance
    direct = tmp_path / "direct"
    nc.run_pipeline(folder, direct, {"open": {"plane": 2}, "deconvolve": {"enabled": False}})
    same_traces(nc.load_results(out), nc.load_results(direct))
    # the results were opened: a (t, y, x) movie of plane 2 and its ROIs
    movie = viewer.layers["plane2 movie"]
    assert movie.data.shape == (30, 256, 256)
    assert movie.metadata["napari_calcium"]["plane"] == 2


def test_all_planes_and_a_plane_of_a_derived_volume(make_napari_viewer, qtbot, tmp_path):
    """Four different planes: one run per plane; plane 1 of a filtered volume runs its data."""
    planes = [
        nc.simulate_recording(
            n_frames=120, shape=(48, 48), n_neurons=5, frame_rate_hz=10.0, pixel_size_um=2.0,
            seed=20 + k,
        ).movie
        for k in range(4)
    ]  # fmt: skip
    path = nc.save_binary(tmp_path / "volume.bin", np.stack(planes, axis=1).astype(np.float32),
                          frame_rate_hz=10.0, pixel_size_um=2.0)  # fmt: skip
    viewer = make_napari_viewer(show=True)
    (volume,) = viewer.open(str(path), plugin="napari-calcium")
    widget = dock_widget(viewer, "Run pipeline")
    widget.input_box.value = volume
    assert widget.plane_box.value == "all planes"
    widget.config_text = CONFIG
    widget.open_after.value = False
    out = tmp_path / "every"
    widget.out_dir.value = out
    click_run(widget, qtbot, expect="steps:")
    assert len(widget.last_runs) == 4, widget.status.value
    results = [nc.load_results(out / f"plane{k}") for k in range(4)]
    for k in range(4):
        provenance = json.loads((out / f"plane{k}" / "provenance.json").read_text())
        assert provenance["config"]["open"]["plane"] == k
    direct = tmp_path / "direct-plane3"
    nc.run_pipeline(path, direct, {"open": {"plane": 3}, "deconvolve": {"enabled": False}})
    same_traces(results[3], nc.load_results(direct))
    assert results[0].traces.F.shape != results[3].traces.F.shape or not np.array_equal(
        results[0].traces.F, results[3].traces.F
    )

    # a volume computed in the viewer: plane 1 of it runs that plane's filtered data
    filt = dock_widget(viewer, "Filter movie")
    filt.layer_box.value = volume
    filt.plane_box.value = "all planes"
    filt.axes.value = "space only (y, x)"
    click_run(filt, qtbot)
    (filtered,) = filt.last_layers
    assert filtered.ndim == 4
    widget.input_box.value = filtered
    widget.plane_box.value = "plane 1"
    out = tmp_path / "filtered-plane1"
    widget.out_dir.value = out
    click_run(widget, qtbot, expect="steps:")
    assert widget.last_run is not None, widget.status.value
    stack = nc.save_binary(tmp_path / "filtered-p1.bin",
                           np.asarray(filtered.data[:, 1]), frame_rate_hz=10.0,
                           pixel_size_um=2.0)  # fmt: skip
    nc.run_pipeline(stack, tmp_path / "direct-filtered-results", {"deconvolve": {"enabled": False}})
    same_traces(nc.load_results(out), nc.load_results(tmp_path / "direct-filtered-results"))
    layer = json.loads((out / "provenance.json").read_text())["input_layer"]
    assert layer["layer"] == filtered.name and layer["plane"] == 1
    assert layer["steps"][-1]["step"] == "filter" and layer["derived_from"] == volume.name


def test_the_widget_says_what_the_cli_says_about_flags_and_warnings(
    make_napari_viewer, qtbot, tmp_path
):
    """Issue 17: the summary line of Run pipeline names flagged ROIs and detection warnings."""
    viewer = make_napari_viewer(show=True)
    (volume,) = viewer.open(shared_data(*FOUR_PLANE), plugin="napari-calcium")  # 30 volumes
    widget = dock_widget(viewer, "Run pipeline")
    widget.input_box.value = volume
    widget.plane_box.value = "plane 2"
    widget.config_text = CONFIG
    widget.out_dir.value = tmp_path / "results"
    click_run(widget, qtbot, expect="steps:")
    assert "warning: activity-based ROI detection is unreliable: too short" in widget.status.value

"""Run pipeline and Open results widgets in a real viewer: same results as run_pipeline, layers
placed like the recording, traces in the Trace plot dock."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import napari_calcium as nc
from conftest import dock_widget
from napari_calcium._napari.widgets import pipeline as pw
from napari_calcium._napari.widgets.trace_plot import TracePlotWidget
from napari_calcium.io.tiff import write_tiff_stack
from napari_calcium.pipeline import steps as pipeline_steps

pytestmark = pytest.mark.gui

FS, PX = 30.0, 2.0


@pytest.fixture(scope="module")
def movie_path(tmp_path_factory):
    rec = nc.simulate_recording(
        n_frames=200, shape=(48, 48), n_neurons=5, seed=4, frame_rate_hz=FS, pixel_size_um=PX
    )
    folder = tmp_path_factory.mktemp("pipeline_widget")
    return write_tiff_stack(folder / "movie.tif", rec.movie, frame_rate_hz=FS, pixel_size_um=PX)


@pytest.fixture(scope="module")
def direct(movie_path, tmp_path_factory):
    """run_pipeline called directly with the default config, and its results."""
    out = tmp_path_factory.mktemp("direct") / "results"
    nc.run_pipeline(movie_path, out)
    return nc.load_results(out)


def _wait(widget, job, qtbot, expect=": "):
    assert job is not None, widget.status.value
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=5_000)
    assert expect in widget.status.value, widget.status.value


def _same_traces(a, b):
    for name in ("F", "Fneu", "corrected"):
        x, y = getattr(a.traces, name), getattr(b.traces, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name  # bit-identical
    np.testing.assert_array_equal(a.traces.ids, b.traces.ids)
    assert a.dff.dff.tobytes() == b.dff.dff.tobytes()
    assert a.spikes.s.tobytes() == b.spikes.s.tobytes()


def _no_partial_files(folder):
    return [p for p in folder.rglob("*") if p.name.endswith(".partial")]


def test_run_pipeline_on_a_movie_layer_equals_run_pipeline(
    make_napari_viewer, qtbot, movie_path, direct, tmp_path
):
    viewer = make_napari_viewer()
    (movie_layer,) = viewer.open(str(movie_path), plugin="napari-calcium")
    widget = dock_widget(viewer, "Run pipeline")
    assert widget.input_box.value is movie_layer  # a layer read from a file is the default
    assert widget.input() == movie_path
    assert widget.config_text == pw.default_config_text()
    assert "[dff]" in widget.config_text and "<ROI file>" in widget.config_text  # plain text
    out = tmp_path / "widget-results"
    widget.out_dir.value = out
    _wait(widget, widget.start(), qtbot, "ROIs")
    status = widget.status.value
    assert "200 frames at 30 Hz" in status and "8 ran, 3 disabled" in status, status
    assert "events" in status and "opened widget-results" in status, status
    _same_traces(nc.load_results(out), direct)

    # the results were opened: summary images, the movie and the ROIs, on the movie's grid
    names = [ly.name for ly in widget.last_layers]
    assert names[-2:] == ["widget-results movie", "widget-results ROIs"], names
    assert {f"widget-results {k}" for k in direct.summary_images} <= set(names)
    labels = viewer.layers["widget-results ROIs"]
    meta = labels.metadata["napari_calcium"]
    assert meta["traces"].F.tobytes() == direct.traces.F.tobytes()
    assert meta["spikes_source"] == "dff" and meta["frame_rate_hz"] == FS
    plot = viewer.window._wrapped_dock_widgets["Trace plot (napari-calcium)"].inner_widget()
    assert plot.layer is labels and plot.selected_ids == [int(direct.traces.ids[0])]

    # again: every step is up to date and skipped
    _wait(widget, widget.start(), qtbot, "8 skipped, 3 disabled")


def test_edited_config_is_used_and_a_bad_one_starts_nothing(
    make_napari_viewer, qtbot, movie_path, tmp_path
):
    viewer = make_napari_viewer()
    widget = pw.RunPipelineWidget(viewer)
    qtbot.addWidget(widget.native)
    assert widget.input_box.value == pw._FILE  # no movie layer: the path below
    widget.input_path.value = movie_path
    out = tmp_path / "maximin"
    widget.out_dir.value = out

    # an unknown key: the error names the section and the key, and nothing runs
    widget.config_text = widget.config_text.replace('method = "robust"', 'metod = "robust"')
    assert widget.start() is None
    assert widget.status.value.startswith("error: config: [dff] metod: unknown key")
    widget.config_text = "[dff\nmethod = 1"
    assert widget.start() is None and "not valid TOML" in widget.status.value
    widget.config_text = '[dff]\nmethod = "nope"'
    assert widget.start() is None and "[dff] method: must be one of" in widget.status.value
    assert not out.exists()

    # save / load round trip; the edited method is what runs
    widget.reset_config()
    widget.config_text = widget.config_text.replace('method = "robust"', 'method = "maximin"')
    saved = tmp_path / "edited.toml"
    widget.save_config_file(saved)
    assert "config saved" in widget.status.value and "error" not in widget.status.value
    widget.reset_config()
    widget.load_config_file(saved)
    assert 'method = "maximin"' in widget.config_text
    assert widget.config().dff.method == "maximin" and widget.config().source == str(saved)
    widget.open_after.value = False
    _wait(widget, widget.start(), qtbot, "8 ran")
    assert widget.last_layers == [] and len(viewer.layers) == 0
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["config"]["dff"]["method"] == "maximin"
    expected = nc.load_results(out)
    ref = tmp_path / "maximin-direct"
    nc.run_pipeline(movie_path, ref, {"dff": {"method": "maximin"}})
    assert nc.load_results(ref).dff.dff.tobytes() == expected.dff.dff.tobytes()

    # a YAML-free round trip of a config object through TOML text
    text = pw.config_to_toml(widget.config())
    assert pw.parse_config_text(text) == widget.config()


def test_cancel_leaves_no_partial_files_and_a_rerun_completes(
    make_napari_viewer, qtbot, movie_path, direct, tmp_path, monkeypatch
):
    viewer = make_napari_viewer()
    widget = pw.RunPipelineWidget(viewer)
    qtbot.addWidget(widget.native)
    widget.input_path.value = movie_path
    out = tmp_path / "cancelled"
    widget.out_dir.value = out
    widget.open_after.value = False
    entered = threading.Event()
    original = pipeline_steps.STEPS["extract"]

    def slow_extract(ctx, source):
        entered.set()
        for _ in range(600):  # wait (at most 30 s) for Cancel, then run the real step
            if ctx.should_stop():
                break
            threading.Event().wait(0.05)
        return original(ctx, source)

    monkeypatch.setitem(pipeline_steps.STEPS, "extract", slow_extract)
    job = widget.start()
    qtbot.waitUntil(entered.is_set, timeout=30_000)
    widget.cancel_button.changed.emit(True)  # the Cancel button
    _wait(widget, job, qtbot, "cancelled")
    assert job.cancelled and widget.last_run is None
    assert _no_partial_files(out) == []
    provenance = json.loads((out / "provenance.json").read_text())
    steps = provenance["steps"]
    assert steps["rois"]["status"] == "ran" and steps["extract"]["status"] == "cancelled"
    recorded = {o["path"] for s in steps.values() for o in s.get("outputs", [])}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk - recorded == {"provenance.json"}  # nothing but finished steps' outputs

    monkeypatch.setitem(pipeline_steps.STEPS, "extract", original)
    _wait(widget, widget.start(), qtbot, "ROIs")
    status = {s.name: s.status for s in widget.last_run.steps}
    assert status["open"] == status["rois"] == "skipped" and status["extract"] == "ran"
    _same_traces(nc.load_results(out), direct)
    assert _no_partial_files(out) == []


def test_a_layer_without_a_file_runs_its_own_data(make_napari_viewer, qtbot, tmp_path):
    """A movie added from Python is listed too: its data is written and analysed."""
    rec = nc.simulate_recording(
        n_frames=200, shape=(48, 48), n_neurons=5, seed=4, frame_rate_hz=FS, pixel_size_um=PX
    )
    viewer = make_napari_viewer()
    bare = viewer.add_image(rec.movie, name="no metadata")
    widget = pw.RunPipelineWidget(viewer)
    qtbot.addWidget(widget.native)
    assert widget.input_box.value is bare and pw.is_derived(bare)
    assert widget.start() is None and "choose an output folder" in widget.status.value
    widget.out_dir.value = tmp_path / "bare"
    assert widget.start() is None and "frame rate is unknown" in widget.status.value
    meta = {"frame_rate_hz": FS, "pixel_size_um": [PX, PX]}
    movie = viewer.add_image(rec.movie, name="from python", metadata={"napari_calcium": meta})
    widget.input_box.value = movie
    out = tmp_path / "from-python"
    widget.out_dir.value = out
    widget.open_after.value = False
    _wait(widget, widget.start(), qtbot, "8 ran")
    stack = nc.save_binary(tmp_path / "same.bin", rec.movie, frame_rate_hz=FS, pixel_size_um=PX)
    nc.run_pipeline(stack, tmp_path / "direct-bin")
    _same_traces(nc.load_results(out), nc.load_results(tmp_path / "direct-bin"))
    record = json.loads((out / "provenance.json").read_text())["input_layer"]
    assert record["layer"] == "from python" and record["source_path"] is None
    assert record["frame_rate_hz"] == FS and record["pixel_size_um"] == [PX, PX]


def test_open_results_adds_layers_the_trace_plot_shows(make_napari_viewer, qtbot, direct, tmp_path):
    viewer = make_napari_viewer()
    widget = dock_widget(viewer, "Open results")

    # not a results folder: the error, no layers
    widget.folder.value = tmp_path
    _wait(widget, widget.start(), qtbot, "error:")
    assert "not a pipeline results folder" in widget.status.value and len(viewer.layers) == 0

    widget.dock_plot.value = False
    widget.folder.value = direct.folder
    _wait(widget, widget.start(), qtbot, "open results: done")
    name = direct.folder.name
    movie = viewer.layers[f"{name} movie"]
    assert movie.data.shape == (200, 48, 48)
    np.testing.assert_allclose(movie.scale, (1 / FS, PX, PX))
    assert [str(u) for u in movie.units] == ["second", "micrometer", "micrometer"]
    for kind, image in direct.summary_images.items():
        layer = viewer.layers[f"{name} {kind}"]
        np.testing.assert_array_equal(layer.data, image)
        np.testing.assert_allclose(layer.scale, (PX, PX))
    labels = viewer.layers[f"{name} ROIs"]
    np.testing.assert_allclose(labels.scale, (PX, PX))
    np.testing.assert_array_equal(labels.data, direct.rois.to_label_image())
    meta = labels.metadata["napari_calcium"]
    assert meta["rois"].n_rois == direct.rois.n_rois
    assert meta["traces"] is widget.loaded.results.traces
    assert meta["spikes_source"] == "dff" and meta["events_source"] == "dff"
    assert meta["frame_rate_hz"] == FS and meta["derived_from"] == movie.name
    assert len(meta["events"]) == direct.traces.n_rois
    np.testing.assert_array_equal(labels.features["index"], direct.rois.ids)
    np.testing.assert_allclose(labels.features["mean_F"], direct.traces.F.mean(axis=1))
    np.testing.assert_array_equal(labels.features["tau_decay_s"], direct.spikes.tau_decay_s)

    plot = TracePlotWidget(viewer)
    qtbot.addWidget(plot)
    plot.set_layer(labels)
    roi, i = int(direct.traces.ids[-1]), len(direct.traces.ids) - 1
    labels.selected_label = roi
    assert plot.selected_ids == [roi]
    expected = {
        "F": direct.traces.F[i], "corrected": direct.traces.corrected[i],
        "dff": direct.dff.dff[i],
        "fit": direct.spikes.baseline[i] + direct.spikes.c[i],
        "activity": direct.spikes.activity[i],
    }  # fmt: skip
    shown = {kind for _, kind in plot.curves}
    assert {"F", "corrected", "dff", "fit", "activity"} <= shown, shown
    for (_, kind), curve in plot.curves.items():
        if kind in expected:
            np.testing.assert_array_equal(curve.yData, expected[kind])
        np.testing.assert_allclose(curve.xData, np.arange(direct.traces.n_frames) / FS)

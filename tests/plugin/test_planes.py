"""Multi-plane recordings analysed in the viewer (issue 16, point 2), in a real viewer.

A 4-plane PrairieView folder opens as one ``(t, z, y, x)`` layer. Every movie widget offers its
planes ("plane 0" ... "plane 3", and "all planes" where the step runs per plane) once that layer
is chosen; one plane comes back as a ``(t, y, x)`` (or ``(y, x)``) layer named and described as
that plane's, equal to the core function on ``movie[:, k]``, and "all planes" stacks the per-plane
results. The real folder's four planes are byte-identical copies (a property of that CalSciPy
test export), so a synthetic volume with four different planes checks that plane k is plane k.
"""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from conftest import FOUR_PLANE, add_movie, click_run, dock_widget, shared_data

pytestmark = pytest.mark.gui

MOVIE_WIDGETS = (
    "Filter movie", "Motion correction", "Summary images", "Crop, bin, detrend", "Detect ROIs",
)  # fmt: skip
PLANES = ["plane 0", "plane 1", "plane 2", "plane 3"]


def shown(widget) -> bool:
    """Whether a widget of a dock is shown (not hidden), whether or not its dock is on top."""
    row = widget._labeled_widget()  # the widget with its label
    return not widget.native.isHidden() and (row is None or not row.native.isHidden())


def open_volume(viewer):
    (volume,) = viewer.open(str(shared_data(*FOUR_PLANE)), plugin="napari-calcium")
    return volume


@pytest.fixture(scope="module")
def distinct_planes(tmp_path_factory):
    """A 4-plane ``.bin`` volume whose planes are four different simulated recordings."""
    planes = [
        nc.simulate_recording(
            n_frames=120, shape=(64, 64), n_neurons=6, frame_rate_hz=10.0, pixel_size_um=2.0,
            seed=10 + k, motion_px=2.0 if k == 1 else 0.0,
        ).movie
        for k in range(4)
    ]  # fmt: skip
    volume = np.stack(planes, axis=1).astype(np.float32)  # (t, z, y, x)
    path = tmp_path_factory.mktemp("volume") / "volume.bin"
    nc.save_binary(path, volume, frame_rate_hz=10.0, pixel_size_um=2.0)
    return path, volume


def test_every_movie_widget_offers_the_planes_of_a_volume(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    volume = open_volume(viewer)
    rec = nc.simulate_recording(n_frames=40, shape=(32, 32), n_neurons=2, seed=3)
    movie = add_movie(viewer, rec)
    for name in MOVIE_WIDGETS:
        widget = dock_widget(viewer, name)
        widget.layer_box.value = volume
        assert shown(widget.plane_box), name
        assert list(widget.plane_box.choices) == [*PLANES, "all planes"], name
        assert widget.plane_box.value == "all planes", name
        widget.plane_box.value = "plane 2"
        widget.layer_box.value = movie  # a (t, y, x) movie: no plane to choose
        assert not shown(widget.plane_box), name
        widget.layer_box.value = volume  # back: the plane chosen is kept
        assert widget.plane_box.value == "plane 2", name
    pipeline = dock_widget(viewer, "Run pipeline")
    pipeline.input_box.value = volume
    assert shown(pipeline.plane_box) and list(pipeline.plane_box.choices)[-1] == "all planes"
    pipeline.input_box.value = movie
    assert not shown(pipeline.plane_box)


def test_reading_a_plane_is_lazy(make_napari_viewer, count_reads):
    from napari_calcium._napari.widgets._base import PlaneView, select_plane

    viewer = make_napari_viewer(show=True)
    volume = open_volume(viewer)
    count_reads.clear()  # opening sampled a few frames for the display range
    plane = select_plane(volume, "plane 2")
    assert isinstance(plane, PlaneView) and plane.name == f"{volume.name} plane 2"
    data = plane.data
    assert type(data).__module__.startswith("dask") and data.shape == (30, 256, 256)
    assert count_reads == []  # choosing a plane reads nothing; the step reads it block by block
    assert select_plane(volume, "all planes") is volume


def test_plane_2_motion_summary_rois_traces(make_napari_viewer, qtbot):
    """Motion correction of plane 2, then its summary image, ROIs and traces, as 3-D/2-D layers."""
    viewer = make_napari_viewer(show=True)
    volume = open_volume(viewer)
    raw = volume.data[:, 2]
    meta = volume.metadata["napari_calcium"]
    rate, px = meta["frame_rate_hz"], float(meta["pixel_size_um"][0])

    motion = dock_widget(viewer, "Motion correction")
    motion.layer_box.value = volume
    motion.plane_box.value = "plane 2"
    (registered,) = click_run(motion, qtbot)
    assert registered.name == f"{volume.name} plane 2 registered"
    assert registered.data.shape == (30, 256, 256)
    assert tuple(registered.axis_labels) == ("t", "y", "x")
    np.testing.assert_allclose(registered.scale, np.asarray(volume.scale)[[0, 2, 3]])
    assert [str(u) for u in registered.units] == ["second", "micrometer", "micrometer"]
    reg_meta = registered.metadata["napari_calcium"]
    assert reg_meta["plane"] == 2 and reg_meta["derived_from"] == volume.name
    assert reg_meta["steps"][-1]["step"] == "motion correction"
    assert reg_meta["steps"][-1]["plane"] == 2
    expected = nc.motion_correct(raw, max_shift_px=10.0, n_template_iterations=2, border="edge")
    reg = np.asarray(registered.data)
    np.testing.assert_array_equal(reg, np.asarray(expected.movie))
    np.testing.assert_array_equal(reg_meta["shifts_px"], expected.shifts)

    summary = dock_widget(viewer, "Summary images")
    summary.layer_box.value = registered
    assert not shown(summary.plane_box)  # one plane already
    summary.kind.value = "correlation"
    (corr,) = click_run(summary, qtbot)
    assert corr.data.shape == (256, 256) and corr.metadata["napari_calcium"]["plane"] == 2
    np.testing.assert_array_equal(corr.data, nc.correlation_image(reg, neighbours=8))

    detect = dock_widget(viewer, "Detect ROIs")
    detect.layer_box.value = registered
    (labels,) = click_run(detect, qtbot)
    assert labels.name == f"{registered.name} ROIs" and labels.data.shape == (256, 256)
    assert labels.metadata["napari_calcium"]["plane"] == 2
    rois = nc.detect_rois(reg, frame_rate_hz=rate, pixel_size_um=px)
    rois = nc.evaluate_rois(reg, rois, frame_rate_hz=rate)
    assert len(rois) > 10
    np.testing.assert_array_equal(labels.data, rois.to_label_image())

    extract = dock_widget(viewer, "Extract traces")
    extract.movie_box.value = registered
    extract.rois_box.value = labels
    click_run(extract, qtbot, expect=None)
    traces = labels.metadata["napari_calcium"]["traces"]
    direct = nc.extract_traces(reg, rois, frame_rate_hz=rate)
    assert traces.F.shape == (len(rois), 30)
    np.testing.assert_array_equal(traces.F, direct.F)
    np.testing.assert_array_equal(traces.corrected, direct.corrected)


def test_all_planes_runs_each_plane_and_stacks_the_results(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    volume = open_volume(viewer)

    filt = dock_widget(viewer, "Filter movie")
    filt.layer_box.value = volume
    assert filt.plane_box.value == "all planes"
    filt.axes.value = "space only (y, x)"
    (filtered,) = click_run(filt, qtbot)
    assert filtered.data.shape == (30, 4, 256, 256) and filtered.ndim == 4
    assert type(filtered.data).__module__.startswith("dask")  # lazy in, lazy out
    assert tuple(filtered.axis_labels) == ("t", "z", "y", "x")
    np.testing.assert_allclose(filtered.scale, volume.scale)
    assert filtered.metadata["napari_calcium"]["steps"][-1]["plane"] == "all planes"
    for k in (0, 3):
        expected = nc.median_filter(volume.data[:10, k], size=3, axes="yx")
        np.testing.assert_array_equal(np.asarray(filtered.data[:10, k]), np.asarray(expected))

    summary = dock_widget(viewer, "Summary images")
    summary.layer_box.value = volume
    summary.kind.value = "correlation"
    (corr,) = click_run(summary, qtbot)
    assert corr.data.shape == (4, 256, 256)
    assert tuple(corr.axis_labels) == ("z", "y", "x")
    expected = np.stack([nc.correlation_image(volume.data[:, k]) for k in range(4)])
    np.testing.assert_array_equal(corr.data, expected)

    detect = dock_widget(viewer, "Detect ROIs")
    detect.layer_box.value = volume
    assert detect.plane_box.value == "all planes"
    layers = click_run(detect, qtbot)  # one Labels layer per plane: different cells
    assert [ly.name for ly in layers] == [f"{volume.name} plane {k} ROIs" for k in range(4)]
    for k, layer in enumerate(layers):
        assert layer.data.shape == (256, 256)
        assert layer.metadata["napari_calcium"]["plane"] == k
        assert layer.metadata["napari_calcium"]["derived_from"] == volume.name
    detect.plane_box.value = "plane 2"
    (one,) = click_run(detect, qtbot)
    np.testing.assert_array_equal(one.data, layers[2].data)


def test_plane_k_is_plane_k(make_napari_viewer, qtbot, distinct_planes):
    """Four different planes: plane 1 registered, all planes registered, a plane of a crop."""
    path, volume_data = distinct_planes
    viewer = make_napari_viewer(show=True)
    (volume,) = viewer.open(str(path), plugin="napari-calcium")
    assert volume.ndim == 4 and tuple(volume.axis_labels) == ("t", "z", "y", "x")

    motion = dock_widget(viewer, "Motion correction")
    motion.layer_box.value = volume
    motion.max_shift.value = 6
    motion.plane_box.value = "plane 1"
    (one,) = click_run(motion, qtbot)
    expected = nc.motion_correct(volume.data[:, 1], max_shift_px=6.0, n_template_iterations=2,
                                 border="edge")  # fmt: skip
    np.testing.assert_array_equal(np.asarray(one.data), np.asarray(expected.movie))
    assert np.abs(one.metadata["napari_calcium"]["shifts_px"]).max() > 0.5  # plane 1 moves

    motion.plane_box.value = "all planes"
    (every,) = click_run(motion, qtbot)
    assert every.data.shape == volume_data.shape
    shifts = every.metadata["napari_calcium"]["shifts_px"]
    assert shifts.shape == (4, 120, 2)
    np.testing.assert_array_equal(np.asarray(every.data[:, 1]), np.asarray(one.data))
    np.testing.assert_array_equal(shifts[1], one.metadata["napari_calcium"]["shifts_px"])
    still = nc.motion_correct(volume.data[:, 3], max_shift_px=6.0, n_template_iterations=2,
                              border="edge")  # fmt: skip
    np.testing.assert_array_equal(np.asarray(every.data[:, 3]), np.asarray(still.movie))

    summary = dock_widget(viewer, "Summary images")
    summary.layer_box.value = volume
    summary.kind.value = "mean"
    summary.plane_box.value = "plane 3"
    (mean3,) = click_run(summary, qtbot)
    assert mean3.name == f"{volume.name} plane 3 mean"
    np.testing.assert_allclose(mean3.data, volume_data[:, 3].mean(axis=0), rtol=1e-5)
    assert not np.allclose(mean3.data, volume_data[:, 0].mean(axis=0), rtol=1e-2)

    reshape = dock_widget(viewer, "Crop, bin, detrend")
    reshape.layer_box.value = volume
    reshape.plane_box.value = "plane 2"
    reshape.operation.value = "crop"
    reshape.t0.value, reshape.t1.value = 10, 50
    reshape.y0.value, reshape.x0.value = 8, 4
    (crop,) = click_run(reshape, qtbot)
    np.testing.assert_array_equal(np.asarray(crop.data), volume_data[10:50, 2, 8:, 4:])
    assert crop.ndim == 3 and crop.metadata["napari_calcium"]["plane"] == 2
    np.testing.assert_allclose(crop.translate, (10 / 10.0, 8 * 2.0, 4 * 2.0))

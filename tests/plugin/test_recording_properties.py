"""Recording properties widget (issue 16, point 1): give a frame rate in the viewer, then analyse.

Driven as a user would in a real viewer under Xvfb: buttons clicked, fields typed, on the real
neurofinder TIFF (which states no frame rate) and the real 4-plane PrairieView folder.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import napari_calcium as nc
from conftest import click_run, dock_widget, shared_data

pytestmark = pytest.mark.gui

NEUROFINDER = shared_data("neurofinder_crop")
FOUR_PLANES = shared_data(
    "bruker_calscipy_4plane_tseries", "reg1_x300_y009n_z1425t1530_p110t131_APr_VSleft-007"
)


@pytest.fixture
def tiff_with_traces(make_napari_viewer, qtbot):
    """The neurofinder TIFF opened by our reader, its ROIs imported, its traces extracted."""
    viewer = make_napari_viewer(show=True)
    (movie,) = viewer.open(NEUROFINDER / "movie.tif", plugin="napari-calcium")
    importer = dock_widget(viewer, "Import ROIs")
    importer.image_box.value = movie
    importer.path.value = NEUROFINDER / "regions.json"
    importer.run_button.native.click()
    rois = viewer.layers["regions ROIs"]
    extract = dock_widget(viewer, "Extract traces")
    extract.movie_box.value, extract.rois_box.value = movie, rois
    click_run(extract, qtbot)
    return viewer, movie, rois


def test_a_tiff_without_frame_rate_is_analysed_after_typing_the_rate(tiff_with_traces, qtbot):
    viewer, movie, rois = tiff_with_traces
    assert rois.metadata["napari_calcium"]["traces"].frame_rate_hz is None
    dff = dock_widget(viewer, "dF/F")
    dff.rois_box.value = rois
    dff.run_button.native.click()  # refused: the traces have no frame rate
    assert "frame rate" in dff.status.value.lower(), dff.status.value
    assert "Recording properties" in dff.status.value  # where to give it

    props = dock_widget(viewer, "Recording properties")
    props.layer_box.value = movie
    # unknown values are blank with a hint, known ones prefilled
    assert props.frame_rate.value == ""
    assert "unknown" in props.frame_rate.native.placeholderText()
    assert props.channel.value == "Ch1"
    props.frame_rate.value = "not a rate"
    props.apply_button.native.click()
    assert props.status.value.startswith("error:") and "frame rate" in props.status.value
    assert movie.metadata["napari_calcium"].get("frame_rate_hz") is None  # nothing changed

    props.frame_rate.value = "7.5"
    props.pixel_size.value = "1.15"
    props.apply_button.native.click()
    assert "applied" in props.status.value, props.status.value
    # the movie's time axis is now in seconds, space in µm
    np.testing.assert_allclose(movie.scale, (1 / 7.5, 1.15, 1.15))
    assert [str(u) for u in movie.units] == ["second", "micrometer", "micrometer"]
    meta = movie.metadata["napari_calcium"]
    assert meta["frame_rate_hz"] == 7.5 and meta["overridden"] == {
        "frame_rate_hz": None, "pixel_size_um": None,
    }  # fmt: skip
    # the ROI layer's stored traces (extracted from this movie) take the rate
    traces = rois.metadata["napari_calcium"]["traces"]
    assert traces.frame_rate_hz == 7.5
    np.testing.assert_allclose(rois.scale, (1.15, 1.15))

    # dF/F -> Deconvolve -> Events, all clicked, all computed at 7.5 Hz
    click_run(dff, qtbot)
    stored = rois.metadata["napari_calcium"]["dff"]
    with warnings.catch_warnings():  # real ROIs: some have neuropil brighter than the cell
        warnings.simplefilter("ignore", nc.errors.DegenerateTraceWarning)
        expected = nc.compute_dff(traces, frame_rate_hz=7.5, method=dff.method.value)
    np.testing.assert_allclose(stored.dff, expected.dff)
    deconvolve = dock_widget(viewer, "Deconvolve")
    deconvolve.rois_box.value = rois
    click_run(deconvolve, qtbot)
    spikes = rois.metadata["napari_calcium"]["spikes"]
    assert spikes.frame_rate_hz == 7.5 and spikes.activity.shape == traces.F.shape
    events = dock_widget(viewer, "Events")
    events.rois_box.value = rois
    click_run(events, qtbot)
    assert rois.metadata["napari_calcium"]["events"] is not None
    (points,) = events.last_layers  # the events as points over the movie, in seconds
    assert points.scale[0] == pytest.approx(1 / 7.5)

    # a new rate makes results computed with the old one stale: they are dropped, and said so
    props.layer_box.value = movie
    assert props.frame_rate.value == "7.5"
    props.frame_rate.value = "15"
    props.apply_button.native.click()
    assert "cleared" in props.status.value and "dff" in props.status.value, props.status.value
    meta = rois.metadata["napari_calcium"]
    assert meta["traces"].frame_rate_hz == 15.0
    assert meta["dff"] is None and meta["spikes"] is None and meta["events"] is None
    assert points.scale[0] == pytest.approx(1 / 15) == movie.scale[0]  # still on the movie
    assert meta["traces"] is not traces and np.shares_memory(meta["traces"].F, traces.F)


def test_the_rate_can_be_given_on_the_roi_layer_itself(tiff_with_traces, qtbot):
    viewer, movie, rois = tiff_with_traces
    props = dock_widget(viewer, "Recording properties")
    props.layer_box.value = rois
    props.frame_rate.value = "8"
    props.derived_too.value = False
    props.apply_button.native.click()
    assert rois.metadata["napari_calcium"]["traces"].frame_rate_hz == 8.0
    assert movie.metadata["napari_calcium"].get("frame_rate_hz") is None  # only the chosen layer
    dff = dock_widget(viewer, "dF/F")
    dff.rois_box.value = rois
    click_run(dff, qtbot)


def test_bruker_volume_time_axis_starts_at_the_first_frame(make_napari_viewer):
    """PrairieView's first 4-plane volume is at 0.18 s: the time axis starts there, not at 0."""
    viewer = make_napari_viewer(show=True)
    (layer,) = viewer.open(FOUR_PLANES, plugin="napari-calcium")
    rec = nc.open_recording(FOUR_PLANES)
    t0 = float(rec.metadata.timestamps_s[0])
    assert t0 > 0.1
    assert layer.translate[0] == pytest.approx(t0)
    assert layer.scale[0] == pytest.approx(rec.metadata.frame_period_s)
    props = dock_widget(viewer, "Recording properties")
    props.layer_box.value = layer
    assert float(props.first_time.value) == pytest.approx(t0, rel=1e-5)
    assert float(props.frame_rate.value) == pytest.approx(rec.metadata.frame_rate_hz, rel=1e-5)
    assert float(props.pixel_size.value) == pytest.approx(rec.metadata.pixel_size_um[0], rel=1e-5)
    assert props.plane.value == "" and props.plane.native.placeholderText() == "all planes"
    # the user moves the start to 0 and gives the pixel size per axis
    props.first_time.value = "0"
    props.pixel_size.value = "2, 1.5"
    props.apply_button.native.click()
    assert layer.translate[0] == 0.0
    np.testing.assert_allclose(layer.scale[2:], (2.0, 1.5))
    assert layer.scale[1] == pytest.approx(rec.metadata.z_step_um)  # the z step is kept


def test_pipeline_results_keep_the_first_frame_time(make_napari_viewer, tmp_path):
    """Open results: the movie's time axis starts where the opened folder's does (0.18 s)."""
    from napari_calcium._napari.widgets.results import add_results_layers, read_results

    out = tmp_path / "results"
    nc.run_pipeline(FOUR_PLANES, out, {"open": {"plane": 2}, "deconvolve": {"enabled": False}})
    viewer = make_napari_viewer()
    add_results_layers(viewer, read_results(out))
    (movie,) = [ly for ly in viewer.layers if ly.ndim == 3]
    t0 = float(nc.open_recording(FOUR_PLANES).metadata.timestamps_s[0])
    assert movie.translate[0] == pytest.approx(t0)
    assert movie.metadata["napari_calcium"]["plane"] == 2


def test_a_cropped_layer_keeps_its_offset(make_napari_viewer):
    """A crop starting 10 frames and (4, 6) px in stays there when rate and pixel size change."""
    from napari_calcium._napari._layers import movie_layer_kwargs
    from napari_calcium._napari.widgets.properties import apply_properties, layer_properties

    viewer = make_napari_viewer()
    meta = {"frame_rate_hz": 10.0, "frame_period_s": 0.1, "pixel_size_um": [2.0, 2.0],
            "first_frame_time_s": 0.5}  # fmt: skip
    kwargs = movie_layer_kwargs(meta, name="crop")
    kwargs["translate"] = (0.5 + 10 * 0.1, 4 * 2.0, 6 * 2.0)
    layer = viewer.add_image(np.zeros((20, 8, 8), np.float32), **kwargs)
    values = {**layer_properties(layer), "frame_rate_hz": 20.0, "pixel_size_um": (1.0, 0.5)}
    apply_properties(layer, {**values, "first_frame_time_s": 1.0})
    np.testing.assert_allclose(layer.scale, (0.05, 1.0, 0.5))
    np.testing.assert_allclose(layer.translate, (1.0 + 10 * 0.05, 4 * 1.0, 6 * 0.5))
    # unknown rate: frames from 0, still 10 frames in
    apply_properties(layer, {**values, "frame_rate_hz": None, "first_frame_time_s": None})
    np.testing.assert_allclose(layer.translate[0], 10.0)
    assert str(layer.units[0]) == "pixel"

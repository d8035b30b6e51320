"""Filter, summary images, motion correction and reshape widgets in a real viewer."""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from conftest import dock_widget, run_job

pytestmark = pytest.mark.gui


@pytest.fixture
def viewer_with_movie(make_napari_viewer):
    """A viewer holding the synthetic sample movie (with napari-calcium metadata)."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-calcium", "synthetic")
    return viewer


def _run(widget, qtbot, timeout=60_000):
    run_job(widget, qtbot, timeout)
    return widget.last_layers


def test_filter_widget_keeps_scale_and_records_parameters(viewer_with_movie, qtbot):
    viewer = viewer_with_movie
    movie = viewer.layers["synthetic movie"]
    widget = dock_widget(viewer, "Filter movie")
    assert widget.layer is movie
    widget.kind.value = "median"
    widget.size.value = 3
    (out,) = _run(widget, qtbot)
    assert out.data.shape == movie.data.shape and out.data.dtype == movie.data.dtype
    np.testing.assert_allclose(out.scale, movie.scale)
    assert [str(u) for u in out.units] == [str(u) for u in movie.units]
    steps = out.metadata["napari_calcium"]["steps"]
    assert steps[-1] == {"step": "filter", "filter": "median", "size": 3, "axes": "tyx"}
    from scipy import ndimage

    np.testing.assert_array_equal(
        np.asarray(out.data[:20]), ndimage.median_filter(movie.data, size=3)[:20]
    )


def test_filter_widget_lazy_in_lazy_out(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    rec = nc.simulate_recording(n_frames=120, shape=(64, 64), n_neurons=5, seed=1, lazy=True)
    viewer.add_image(rec.movie, name="lazy", metadata={"napari_calcium": rec.metadata})
    widget = dock_widget(viewer, "Filter movie")
    widget.kind.value = "gaussian"
    widget.sigma.value = 1.0
    (out,) = _run(widget, qtbot)
    assert type(out.data).__module__.startswith("dask")


def test_summary_images_widget(viewer_with_movie, qtbot):
    viewer = viewer_with_movie
    movie = viewer.layers["synthetic movie"]
    widget = dock_widget(viewer, "Summary images")
    for kind in ("mean", "correlation", "peak-to-noise"):
        widget.kind.value = kind
        (out,) = _run(widget, qtbot)
        assert out.data.shape == movie.data.shape[1:]
        np.testing.assert_allclose(out.scale, movie.scale[1:])
        assert [str(u) for u in out.units] == ["micrometer", "micrometer"]
    mean = viewer.layers["synthetic movie mean"].data
    np.testing.assert_allclose(mean, movie.data.mean(axis=0), rtol=1e-5)


def test_motion_correction_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    rec = nc.simulate_recording(n_frames=200, shape=(96, 96), n_neurons=15, seed=4, motion_px=3)
    viewer.add_image(rec.movie, name="moving", metadata={"napari_calcium": rec.metadata})
    widget = dock_widget(viewer, "Motion correction")
    widget.max_shift.value = 8
    (out,) = _run(widget, qtbot)
    shifts = out.metadata["napari_calcium"]["shifts_px"]
    err = (shifts - shifts.mean(0)) - (rec.truth.shifts - rec.truth.shifts.mean(0))
    assert np.sqrt((err**2).mean()) < 0.2
    assert out.data.shape == rec.movie.shape
    # the border is filled from the edge, as the pipeline does: NaN pixels shifted in from
    # outside the frame made the traces of ROIs at the edge NaN (and dF/F then refused them)
    assert np.isfinite(np.asarray(out.data)).all()
    assert out.metadata["napari_calcium"]["steps"][-1]["border"] == "edge"


def test_reshape_widget_crop_and_bin(viewer_with_movie, qtbot):
    viewer = viewer_with_movie
    movie = viewer.layers["synthetic movie"]
    widget = dock_widget(viewer, "Crop, bin, detrend")
    widget.operation.value = "crop"
    widget.t0.value, widget.t1.value = 30, 90
    widget.y0.value, widget.y1.value = 10, 74
    widget.x0.value, widget.x1.value = 20, 52
    (out,) = _run(widget, qtbot)
    np.testing.assert_array_equal(np.asarray(out.data), movie.data[30:90, 10:74, 20:52])
    # placed where it was cut from: world coordinates unchanged
    np.testing.assert_allclose(out.translate, (30 / 30, 10, 20))
    assert out.metadata["napari_calcium"]["steps"][-1]["offset_yx"] == [10, 20]
    widget.operation.value = "bin frames"
    widget.factor.value = 3
    (binned,) = _run(widget, qtbot)
    assert binned.data.shape[0] == movie.data.shape[0] // 3
    np.testing.assert_allclose(binned.scale[0], 3 * movie.scale[0])
    meta = binned.metadata["napari_calcium"]
    assert meta["frame_rate_hz"] == pytest.approx(10.0)  # 30 Hz binned by 3
    assert len(meta["timestamps_s"]) == binned.data.shape[0]


def test_layer_menus_list_our_widgets(make_napari_viewer):
    from napari._app_model import get_app_model

    make_napari_viewer()
    menus = get_app_model().menus
    found = {}
    for menu_id in ("napari/layers/filter", "napari/layers/register", "napari/layers/project"):
        found[menu_id] = [
            item.command.id for item in menus.get_menu(menu_id) if hasattr(item, "command")
        ]
    assert "napari-calcium.filter_movie" in found["napari/layers/filter"]
    assert "napari-calcium.motion_correction" in found["napari/layers/register"]
    assert "napari-calcium.summary_images" in found["napari/layers/project"]

"""ROI widgets in a real viewer: Shapes → ROIs, painting, Detect ROIs, Neuropil masks, sessions."""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from conftest import dock_widget
from napari_calcium._napari._layers import movie_layer_kwargs
from napari_calcium._napari._rois import rois_from_labels_layer, rois_labels_kwargs

pytestmark = pytest.mark.gui


def _wait(widget, qtbot, timeout=120_000):
    job = widget.start()
    assert job is not None, widget.status.value
    qtbot.waitUntil(lambda: job.done, timeout=timeout)
    return widget.last_layers


@pytest.fixture(scope="module")
def recording():
    """A small synthetic recording at 2 µm per pixel (so world and pixel coordinates differ)."""
    return nc.simulate_recording(
        n_frames=400, shape=(96, 96), n_neurons=14, pixel_size_um=2.0, seed=3
    )


@pytest.fixture
def viewer(make_napari_viewer, recording):
    viewer = make_napari_viewer()
    kwargs = movie_layer_kwargs(recording.metadata, name="movie")
    viewer.add_image(recording.movie, **kwargs)
    return viewer


def test_shapes_to_rois_maps_world_coordinates_to_pixels(viewer, qtbot):
    movie = viewer.layers["movie"]
    # drawn in world units (µm): the Shapes layer has scale 1, the movie 2 µm per pixel
    rect = np.array([[20.0, 40.0], [20.0, 60.0], [40.0, 60.0], [40.0, 40.0]])
    ellipse = np.array([[100.0, 100.0], [100.0, 130.0], [120.0, 130.0], [120.0, 100.0]])
    viewer.add_shapes([rect, ellipse], shape_type=["rectangle", "ellipse"], name="drawn")
    widget = dock_widget(viewer, "Shapes → ROIs")
    widget.shapes_box.value = viewer.layers["drawn"]
    widget.image_box.value = movie
    widget.start()
    (labels,) = widget.last_layers
    assert labels.data.shape == movie.data.shape[1:]
    np.testing.assert_allclose(labels.scale, movie.scale[1:])
    expected = nc.RoiSet.from_shapes(
        [rect / 2.0, ellipse / 2.0], (96, 96), kinds=["rectangle", "ellipse"]
    )
    np.testing.assert_array_equal(labels.data, expected.to_label_image())
    # the rectangle covers pixel centres 10..20 x 20..30 (µm 20..40 x 40..60 at 2 µm/px)
    assert set(np.unique(np.nonzero(labels.data == 1)[0])) == set(range(10, 21))
    features = labels.features
    assert list(features["index"]) == [1, 2] and list(features["label"]) == [1, 2]
    assert features["area"].iloc[0] == 11 * 11


def test_painting_and_erasing_are_read_back(viewer):
    rng = np.random.default_rng(0)
    lab = np.zeros((96, 96), np.int32)
    lab[10:20, 10:20] = 1
    lab[40:50, 40:52] = 2
    base = nc.RoiSet.from_label_image(lab)
    # give ROI 2 real weights and a score: both must survive while nobody touches it
    weights = base.masks.copy()
    weights.data = rng.uniform(0.2, 1.0, weights.data.size).astype(np.float32)
    rois = base.replace(masks=weights).with_scores(snr=[3.0, 7.5])
    data, kwargs = rois_labels_kwargs(rois, name="rois", reference=viewer.layers["movie"])
    layer = viewer.add_labels(data, **kwargs)
    assert rois_from_labels_layer(layer) is rois  # untouched: the stored set itself

    layer.brush_size = 5
    layer.paint((70, 70), 7, refresh=True)  # a new ROI painted by hand
    layer.selected_label = 0
    layer.data[10:20, 10:13] = 0  # part of ROI 1 erased
    layer.refresh()
    back = rois_from_labels_layer(layer)
    assert back.ids.tolist() == [1, 2, 7]
    assert back.source.tolist() == ["edited", "labels", "painted"]
    assert back.area[0] == 70 and back.area[2] == int((layer.data == 7).sum()) > 10
    i2 = back.index_of(2)
    np.testing.assert_array_equal(back.masks[[i2]].toarray(), rois.masks[[1]].toarray())
    assert back.scores["snr"][i2] == 7.5 and np.isnan(back.scores["snr"][0])


def test_detect_rois_widget_finds_the_cells(viewer, qtbot, recording):
    widget = dock_widget(viewer, "Detect ROIs")
    widget.layer_box.value = viewer.layers["movie"]
    (labels,) = _wait(widget, qtbot)
    assert ": done" in widget.status.value, widget.status.value
    rois = rois_from_labels_layer(labels)
    assert len(labels.features) == len(rois) > 0
    assert {"snr", "r_value"} <= set(labels.features.columns)
    truth = nc.RoiSet.from_label_image(recording.truth.labels)
    score = nc.detection_scores(rois, truth, criterion="centroid", threshold=4.0)
    assert score.f1 >= 0.8, score
    np.testing.assert_allclose(labels.scale, viewer.layers["movie"].scale[1:])
    step = labels.metadata["napari_calcium"]["steps"][-1]
    assert step["step"] == "detect ROIs" and step["pixel_size_um"] == 2.0
    assert step["frame_rate_hz"] == pytest.approx(recording.truth.frame_rate_hz)
    assert rois.pixel_size_um == (2.0, 2.0)  # areas in µm² in the features table
    np.testing.assert_allclose(labels.features["area_um2"], 4.0 * labels.features["area"])


def test_neuropil_widget_previews_masks_outside_cells(viewer, qtbot, recording):
    truth = nc.RoiSet.from_label_image(recording.truth.labels)
    data, kwargs = rois_labels_kwargs(truth, name="truth", reference=viewer.layers["movie"])
    viewer.add_labels(data, **kwargs)
    widget = dock_widget(viewer, "Neuropil masks")
    widget.rois_box.value = viewer.layers["truth"]
    widget.min_pixels.value = 200
    (preview,) = _wait(widget, qtbot)
    assert "neuropil for" in widget.status.value, widget.status.value
    assert preview.data.shape == data.shape
    assert not np.any((preview.data > 0) & (data > 0))  # never on a cell pixel
    assert set(np.unique(preview.data)) - {0} <= set(truth.ids.tolist())
    masks = preview.metadata["napari_calcium"]["neuropil"]
    assert len(masks) == len(truth) and (masks.area >= 200).all()
    # the status gives the real range of mask sizes (it always said "0–N px")
    expected = f"{int(masks.area.min())}–{int(masks.area.max())} px each"
    assert expected in widget.status.value, widget.status.value


def test_match_sessions_widget_pairs_shifted_rois(viewer, qtbot, recording):
    lab_a = recording.truth.labels.astype(np.int32)
    mean_a = np.asarray(recording.movie).mean(axis=0)
    lab_b = np.roll(lab_a, (3, -2), axis=(0, 1))
    mean_b = np.roll(mean_a, (3, -2), axis=(0, 1))
    viewer.add_labels(lab_a, name="A")
    viewer.add_labels(lab_b, name="B")
    viewer.add_image(mean_a, name="mean A")
    viewer.add_image(mean_b, name="mean B")
    widget = dock_widget(viewer, "Match sessions")
    widget.rois_a.value = viewer.layers["A"]
    widget.rois_b.value = viewer.layers["B"]
    widget.image_a.value = viewer.layers["mean A"]
    widget.image_b.value = viewer.layers["mean B"]
    layers = _wait(widget, qtbot)
    assert widget.result is not None and len(layers) == 1, widget.status.value
    (out,) = layers
    n = len(np.unique(lab_a)) - 1
    assert widget.result.n_matched >= n - 1  # a cell rolled across the border may be lost
    # matched ROIs carry session A's ids: the aligned B labels coincide with A's
    both = (out.data > 0) & (lab_a > 0)
    assert np.mean(out.data[both] == lab_a[both]) > 0.95


def test_import_suite2p_rois_then_save_and_reload(make_napari_viewer, tmp_path):
    from conftest import shared_data

    plane = shared_data("suite2p_output_calscipy", "plane0")
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((512, 512), np.float32), name="mean", scale=(1.5, 1.5))
    widget = dock_widget(viewer, "Import ROIs")
    widget.image_box.value = viewer.layers["mean"]
    widget.path.value = plane
    widget.start()  # pickled stat.npy: refused until trusted
    assert widget.last_layers == [] and "allow_pickle" in widget.status.value, widget.status.value
    widget.trust.value = True
    widget.start()
    (labels,) = widget.last_layers
    assert len(labels.features) == 107 and labels.features["is_cell"].sum() == 30
    np.testing.assert_allclose(labels.scale, (1.5, 1.5))

    saver = dock_widget(viewer, "Save ROIs")
    saver.labels_box.value = labels
    saver.path.value = tmp_path / "rois.npz"
    saver.start()
    assert saver.status.value.startswith("saved 107"), saver.status.value
    saver.start()  # no silent overwrite
    assert "exists" in saver.status.value, saver.status.value
    back = nc.load_rois(tmp_path / "rois.npz")
    stored = rois_from_labels_layer(labels)
    assert (back.masks != stored.masks).nnz == 0
    np.testing.assert_array_equal(back.ids, stored.ids)

"""Tests of automatic ROI detection (core.detection) on synthetic and real (neurofinder) data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_data
from napari_calcium.core.rois.detection.detect import detect_rois, estimate_cell_diameter
from napari_calcium.core.rois.matching import detection_scores
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.synthetic.recording import simulate_recording
from napari_calcium.errors import OperationCancelled, ParameterError, ShapeError


@pytest.fixture(scope="module")
def small():
    return simulate_recording(n_frames=400, shape=(96, 96), n_neurons=10, seed=5)


def _f1(rois: RoiSet, labels: np.ndarray) -> float:
    return detection_scores(rois, RoiSet.from_label_image(labels), criterion="iou").f1


def test_default_scene_f1_with_metadata():
    """The default synthetic scene (256x256, 50 cells, 1000 frames at 30 Hz): F1 >= 0.95."""
    rec = simulate_recording(seed=0)
    rois = detect_rois(
        rec.movie,
        cell_diameter_um=12.0,
        pixel_size_um=rec.metadata["pixel_size_um"],
        frame_rate_hz=rec.metadata["frame_rate_hz"],
    )
    scores = detection_scores(rois, RoiSet.from_label_image(rec.truth.labels), criterion="iou")
    assert scores.f1 >= 0.95, scores
    assert scores.n_truth == 50


def test_default_scene_f1_without_any_metadata():
    """Nothing given: the cell size is estimated from the mean image, frames are not binned."""
    rec = simulate_recording(seed=2)
    rois = detect_rois(rec.movie)
    assert _f1(rois, rec.truth.labels) >= 0.95


def test_estimate_cell_diameter_from_data():
    rec = simulate_recording(n_frames=50, shape=(160, 160), n_neurons=25, seed=1)
    d = estimate_cell_diameter(np.asarray(rec.movie).mean(axis=0))
    assert 9.0 <= d <= 15.0  # the scene's mean diameter is 12 px (sizes vary +-15 %)


def test_estimate_cell_diameter_default_scene_within_15_percent():
    rec = simulate_recording(n_frames=100, seed=0)
    d = estimate_cell_diameter(np.asarray(rec.movie).mean(axis=0))
    assert 0.85 * 12 <= d <= 1.15 * 12


def test_estimate_cell_diameter_real_ring_somata():
    """Ring-shaped somata (dark nuclei): label areas give ~9 px; puncta alone gave 6.8 px."""
    movie, _ = _neurofinder()
    d = estimate_cell_diameter(movie.astype(np.float32).mean(axis=0))
    assert 7.5 <= d <= 11.5


def test_small_scene_result_and_scores(small):
    rois = detect_rois(small.movie, cell_diameter_px=12, frame_rate_hz=30)
    assert isinstance(rois, RoiSet) and rois.shape == (96, 96)
    assert set(rois.source.tolist()) == {"detected"}
    for key in ("corr", "pnr", "activity", "blob", "ring", "seed_corr", "grown_by_activity"):
        assert rois.scores[key].shape == (len(rois),)
    assert _f1(rois, small.truth.labels) >= 0.9
    # no pixel belongs to two ROIs, weights are in (0, 1]
    assert rois.binary().sum(axis=0).max() == 1
    assert rois.masks.data.min() > 0 and rois.masks.data.max() <= 1
    # areas respect the default range (0.5 - 2.5 x the expected disk)
    expected = np.pi * 36
    assert rois.area.min() >= 0.5 * expected and rois.area.max() <= 2.5 * expected


def test_max_rois_keeps_strongest(small):
    full = detect_rois(small.movie, cell_diameter_px=12)
    top = detect_rois(small.movie, cell_diameter_px=12, max_rois=3)
    assert len(top) == 3
    assert (top.masks != full.masks[[0, 1, 2]]).nnz == 0


def test_dask_and_memmap_inputs_match_numpy(small, tmp_path):
    da = pytest.importorskip("dask.array")
    movie = np.asarray(small.movie)
    ref = detect_rois(movie, cell_diameter_px=12)
    lazy = detect_rois(da.from_array(movie, chunks=(64, 96, 96)), cell_diameter_px=12)
    path = tmp_path / "movie.bin"
    movie.tofile(path)
    mm = np.memmap(path, dtype=movie.dtype, mode="r", shape=movie.shape)
    mapped = detect_rois(mm, cell_diameter_px=12, block_frames=50)
    for other in (lazy, mapped):
        assert len(other) == len(ref)
        assert abs(other.masks - ref.masks).max() < 1e-4


def test_progress_and_cancel(small):
    calls = []

    class Bar:
        def __init__(self, total, desc):
            self.n = 0

        def update(self, n):
            self.n += n
            calls.append(n)

        def close(self):
            pass

    detect_rois(small.movie, cell_diameter_px=12, progress=Bar, block_frames=100)
    assert sum(calls) == 400
    with pytest.raises(OperationCancelled):
        detect_rois(small.movie, cell_diameter_px=12, should_stop=lambda: True)


def test_pure_noise_gives_few_rois():
    """Thresholds are robust z-scores, so noise yields a few ROIs at most (~40 would fit)."""
    rng = np.random.default_rng(0)
    movie = rng.normal(100, 5, (200, 64, 64)).astype(np.float32)
    assert len(detect_rois(movie, cell_diameter_px=10)) <= 3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"cell_diameter_px": -3}, ParameterError),
        ({"cell_diameter_px": 2}, ParameterError),
        ({"cell_diameter_um": 12}, ParameterError),  # no pixel size
        ({"cell_diameter_px": 12, "cell_diameter_um": 12, "pixel_size_um": 1}, ParameterError),
        ({"pixel_size_um": (1.0, 2.0), "cell_diameter_um": 10}, ParameterError),
        ({"frame_rate_hz": 0}, ParameterError),
        ({"min_corr": 1.5}, ParameterError),
        ({"area_range": (2, 1)}, ParameterError),
        ({"max_rois": 0}, ParameterError),
        ({"max_binned_frames": 4}, ParameterError),
    ],
)
def test_bad_parameters(kwargs, error):
    movie = np.zeros((20, 32, 32), np.float32)
    with pytest.raises(error):
        detect_rois(movie, **kwargs)


def test_bad_shapes():
    with pytest.raises(ShapeError):
        detect_rois(np.zeros((32, 32)))
    with pytest.raises(ShapeError):
        detect_rois(np.zeros((2, 32, 32)))
    with pytest.raises(ShapeError):
        estimate_cell_diameter(np.zeros((4, 4)))


def _neurofinder():
    import tifffile

    folder = shared_data("neurofinder_crop")
    movie = tifffile.imread(folder / "movie.tif")
    regions = json.loads((folder / "regions.json").read_text())
    pixels = [tuple(np.asarray(r["coordinates"]).T) for r in regions]
    return movie, RoiSet.from_pixels(pixels, movie.shape[1:], source="neurofinder")


def test_real_neurofinder_default_settings():
    """Default settings, nothing tuned on these labels (see the detection module notes)."""
    movie, truth = _neurofinder()
    rois = detect_rois(movie)
    centroid = detection_scores(rois, truth, criterion="centroid", threshold=5.0)
    iou = detection_scores(rois, truth, criterion="iou")
    assert truth.n_rois == 106
    # measured 0.463 / 0.272. suite2p 1.1 with its defaults scored 0.216 / 0.059 in our
    # benchmark, and the figure for its best setting is 0.30 / 0.18: the floors sit
    # above both and a little below what is reached
    assert centroid.f1 >= 0.42, centroid
    assert iou.f1 >= 0.24, iou
    # the nuclear-shadow seeds carry most of it: they alone must beat suite2p's best figure
    rings = rois[(rois.scores["grown_by_activity"] == 0) & (rois.scores["ring"] >= 3.0)]
    assert detection_scores(rings, truth, criterion="centroid", threshold=5.0).precision > 0.45


def test_no_rois_where_there_is_no_tissue(small):
    """A dark scan-turnaround band with correlated line noise seeds no ROI."""
    movie = np.asarray(small.movie, np.float32).copy()
    rng = np.random.default_rng(0)
    n = movie.shape[0]
    # 12 dark columns whose rows flicker together (shared traces: high local correlation)
    flicker = rng.normal(0.0, 4.0, size=(n, movie.shape[1], 1)) + rng.normal(0.0, 1.0, (n, 1, 12))
    movie[:, :, :12] = 5.0 + np.abs(flicker)
    rois = detect_rois(movie, cell_diameter_px=12, frame_rate_hz=30)
    assert len(rois) >= 5  # the cells away from the band are still found
    # (without the no-tissue rule an activity ROI grows in the band, at x ~ 5)
    assert (rois.centroids[:, 1] > 12).all(), rois.centroids[rois.centroids[:, 1] <= 12]

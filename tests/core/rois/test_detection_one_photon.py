"""One-photon detection: CNMF-E's correlation x PNR seeds after spatial + temporal high-pass."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

import napari_calcium as nc
from napari_calcium.core.rois.detection.detect import detect_rois
from napari_calcium.core.rois.detection.one_photon import (
    detect_rois_one_photon,
    one_photon_seed_image,
)
from napari_calcium.core.rois.matching import detection_scores
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.errors import ParameterError, ShapeError

SCENE = {
    "n_frames": 1000, "shape": (192, 192), "n_neurons": 40, "frame_rate_hz": 20.0,
    "modality": "one_photon",
}  # fmt: skip


@pytest.fixture(scope="module")
def scene():
    return nc.simulate_recording(**SCENE, seed=1)


def _f1(rois, rec) -> float:
    truth = RoiSet.from_label_image(rec.truth.labels)
    return detection_scores(rois, truth, criterion="centroid").f1


def test_seed_image_separates_cells_from_the_background(scene):
    t = scene.truth
    img = one_photon_seed_image(scene.movie, cell_diameter_px=12, frame_rate_hz=20.0)
    assert img.seed.shape == img.pnr.shape == img.correlation.shape == img.z.shape == (192, 192)
    assert img.z.dtype == np.float32
    far = ~ndimage.binary_dilation(t.labels > 0, iterations=6)
    centres = np.round(t.centers_px).astype(int)
    at_cells = np.array(
        [img.seed[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3].max() for y, x in centres]
    )
    assert (at_cells > img.seed[far].max()).mean() > 0.8


def test_one_photon_detection_reaches_f1_08(scene):
    rois = detect_rois_one_photon(scene.movie, cell_diameter_px=12, frame_rate_hz=20.0)
    f1 = _f1(rois, scene)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = _f1(detect_rois(scene.movie, cell_diameter_px=12, frame_rate_hz=20.0), scene)
    print(f"centroid F1: one-photon path {f1:.3f}, default detect_rois {default:.3f}")
    assert f1 >= 0.8
    assert f1 > default + 0.15
    assert set(rois.scores) >= {"pnr", "corr", "seed_z"}
    assert (rois.scores["seed_z"] >= 4.0).all()


def test_pure_noise_gives_few_rois():
    rng = np.random.default_rng(0)
    movie = rng.poisson(400, (600, 96, 96)).astype(np.uint16)
    rois = detect_rois_one_photon(movie, cell_diameter_px=12, frame_rate_hz=20.0)
    assert len(rois) <= 1


def test_bad_arguments():
    movie = np.zeros((40, 32, 32), np.float32)
    with pytest.raises(ShapeError):
        detect_rois_one_photon(np.zeros((8, 32, 32)), cell_diameter_px=8)
    with pytest.raises(ParameterError, match="cell_diameter_px"):
        detect_rois_one_photon(movie, cell_diameter_px=0)
    with pytest.raises(ParameterError, match="min_corr"):
        detect_rois_one_photon(movie, cell_diameter_px=8, min_corr=1.5)
    with pytest.raises(ParameterError, match="frame_rate_hz"):
        one_photon_seed_image(movie, cell_diameter_px=8, frame_rate_hz=-1)


def test_detect_rois_modality_one_photon(scene):
    """``detect_rois(modality="one_photon")`` is the one-photon path; the diameter estimated."""
    given = detect_rois(scene.movie, cell_diameter_px=12, frame_rate_hz=20.0, modality="one_photon")
    direct = detect_rois_one_photon(scene.movie, cell_diameter_px=12, frame_rate_hz=20.0)
    np.testing.assert_array_equal(given.to_label_image(), direct.to_label_image())
    estimated = detect_rois(scene.movie, frame_rate_hz=20.0, modality="one_photon")
    assert _f1(estimated, scene) >= 0.75  # diameter from the mean image (13.8 px here, truth 12)
    with pytest.raises(ParameterError, match="modality"):
        detect_rois(scene.movie, cell_diameter_px=12, modality="miniscope")

"""A one-photon ground truth saves and loads (issue 19): background factors, deformation."""

from __future__ import annotations

import numpy as np

from napari_calcium import simulate_recording
from napari_calcium.core.synthetic.one_photon import OnePhotonGroundTruth
from napari_calcium.io.groundtruth import load_ground_truth, save_ground_truth


def test_one_photon_truth_round_trip(tmp_path):
    rec = simulate_recording(
        n_frames=60, shape=64, n_neurons=5, modality="one_photon", nonrigid_px=2.0, seed=1
    )
    truth = rec.truth
    path = save_ground_truth(tmp_path / "truth.npz", truth)
    back = load_ground_truth(path)
    assert isinstance(back, OnePhotonGroundTruth) and back.modality == "one_photon"
    for name in ("background_spatial", "background_temporal", "vignetting", "vessels", "shifts"):
        np.testing.assert_array_equal(getattr(back, name), getattr(truth, name))
    np.testing.assert_array_equal(back.background_movie(0, 10), truth.background_movie(0, 10))
    # the dense deformation is rebuilt (lazily) from its stored rigid and modal parts
    np.testing.assert_array_equal(np.asarray(back.deformation), np.asarray(truth.deformation))
    assert (back.labels == truth.labels).all() and back.nonrigid_px == truth.nonrigid_px
    # without non-rigid motion there is no deformation, before and after
    still = simulate_recording(n_frames=20, shape=48, n_neurons=3, modality="one_photon", seed=2)
    again = load_ground_truth(save_ground_truth(tmp_path / "still.npz", still.truth))
    assert still.truth.deformation is None and again.deformation is None

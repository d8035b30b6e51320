"""The default pipeline on a Miniscope folder of a one-photon scene (issue 19's goal).

The folder is written in the Miniscope DAQ layout (``write_miniscope``) from the one-photon
simulator, scaled to 8 bits as the cameras record. ``[rois] modality = "auto"`` (the default)
sees a Miniscope recording and detects with CNMF-E's seeds after a background high-pass.
Centroid F1 on this scene (seed 1): 0.873 through the pipeline (the diameter estimated);
0.889 / 0.794 / 0.933 on seeds 1-3 with the diameter given (docs/rois.md).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.core.rois.matching import detection_scores


@pytest.fixture(scope="module")
def miniscope_folder(tmp_path_factory):
    rec = nc.simulate_recording(
        n_frames=1000, shape=(192, 192), n_neurons=40, frame_rate_hz=20.0,
        modality="one_photon", seed=1,
    )  # fmt: skip
    movie = np.asarray(rec.movie, dtype=np.float64)
    lo, hi = np.percentile(movie, [0.01, 99.99])
    movie8 = np.clip(np.rint((movie - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
    folder = nc.write_miniscope(
        tmp_path_factory.mktemp("miniscope") / "exp", movie8, frame_rate_hz=20.0
    )
    return folder, nc.RoiSet.from_label_image(rec.truth.labels)


def test_default_pipeline_finds_one_photon_cells(miniscope_folder, tmp_path):
    folder, truth = miniscope_folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # detection warnings of the two-photon run below
        run = nc.run_pipeline(folder, tmp_path / "auto")
        forced = nc.run_pipeline(folder, tmp_path / "2p", {"rois": {"modality": "two_photon"}})
    auto = detection_scores(nc.load_results(run.out_dir).rois, truth, criterion="centroid")
    two_p = detection_scores(nc.load_results(forced.out_dir).rois, truth, criterion="centroid")
    assert auto.f1 >= 0.8, auto
    assert auto.f1 >= two_p.f1 + 0.2, (auto, two_p)  # the two-photon seeds drown
    assert run.summary["n_rois"] == auto.n_detected
    # the Miniscope metadata reached the run: its frame rate from the time stamps
    assert run.summary["frame_rate_hz"] == pytest.approx(20.0, rel=0.02)

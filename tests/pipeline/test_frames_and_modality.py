"""The pipeline's ``[frames]`` step (corrupted miniscope frames) and ``[rois] modality``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.io.metadata import recording_modality
from napari_calcium.io.tiff import write_tiff_stack
from napari_calcium.pipeline import load_results, run_pipeline


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    """A one-photon movie (uint16) with a band of check-pattern rows in frames 40 and 41."""
    rec = nc.simulate_recording(
        n_frames=200, shape=(64, 64), n_neurons=6, modality="one_photon", seed=3
    )
    movie = np.asarray(rec.movie).copy()
    check = (np.indices((12, 64)).sum(axis=0) % 2) * int(movie.max())
    for t in (40, 41):
        movie[t, 20:32] = check.astype(movie.dtype)
    folder = tmp_path_factory.mktemp("frames")
    path = write_tiff_stack(
        folder / "movie.tif", movie, frame_rate_hz=20.0, pixel_size_um=1.0
    )  # fmt: skip
    return path, movie


@pytest.mark.parametrize("repair", ["report", "interpolate", "drop"])
def test_frames_step(corrupted, tmp_path, repair):
    path, movie = corrupted
    config = {"frames": {"repair": repair}, "deconvolve": {"enabled": False}}
    run = run_pipeline(path, tmp_path / "out", config)
    report = json.loads((run.out_dir / "steps" / "frames.json").read_text())
    assert report["corrupted"] == [40, 41] and report["repair"] == repair
    assert run.summary["n_corrupted_frames"] == 2
    repaired = run.out_dir / "frames_repaired.bin"
    if repair == "report":
        assert not repaired.exists()
        return
    fixed = np.asarray(nc.open_recording(repaired).movie)
    if repair == "interpolate":
        assert fixed.shape == movie.shape
        expected = np.round((movie[39].astype(float) * 2 + movie[42]) / 3)
        np.testing.assert_allclose(fixed[40], expected, atol=1)
        np.testing.assert_array_equal(fixed[:40], movie[:40])
    else:
        kept = np.delete(np.arange(len(movie)), [40, 41])
        assert report["source_frames"] == kept.tolist()
        np.testing.assert_array_equal(fixed, movie[kept])
    assert load_results(run.out_dir).rois.n_rois > 0  # the later steps read the repaired movie


def test_rois_modality_from_the_recording():
    assert recording_modality({"source_format": "miniscope"}) == "one_photon"
    nwb_1p = {"source_format": "nwb", "extra": {"neurodata_type": "OnePhotonSeries"}}
    assert recording_modality(nwb_1p) == "one_photon"
    assert recording_modality({"source_format": "tiff", "extra": {}}) == "two_photon"
    assert recording_modality({}) == "two_photon"

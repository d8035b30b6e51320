"""The one-photon simulator: strong structured background, soft overlapping somata, motion field."""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.core.synthetic.one_photon import OnePhotonGroundTruth, simulate_one_photon
from napari_calcium.errors import ParameterError

SMALL = {"n_frames": 120, "shape": (96, 112), "n_neurons": 15, "seed": 4, "modality": "one_photon"}


@pytest.fixture(scope="module")
def rec():
    return nc.simulate_recording(**SMALL, nonrigid_px=3.0, motion_px=1.0)


def test_truth_shapes_and_dispatch(rec):
    t = rec.truth
    frames, (y, x), n = SMALL["n_frames"], SMALL["shape"], SMALL["n_neurons"]
    assert isinstance(t, OnePhotonGroundTruth) and t.modality == "one_photon"
    assert rec.movie.shape == (frames, y, x) and rec.movie.dtype == np.uint16
    assert rec.metadata["modality"] == "one_photon"
    assert t.labels.shape == (y, x) and set(np.unique(t.labels)) == set(range(n + 1))
    assert t.spikes.shape == t.calcium.shape == t.neuropil.shape == (n, frames)
    k = len(t.background_spatial)
    assert t.background_spatial.shape == (k, y, x) and t.background_temporal.shape == (k, frames)
    assert t.background_movie(10, 20).shape == (10, y, x)
    assert t.vignetting.shape == t.vessels.shape == (y, x)
    assert t.deformation.shape == (frames, y, x, 2) and t.deformation.dtype == np.float32
    assert t.deformation_modes.shape[1:] == (y, x, 2)
    assert t.deformation_weights.shape == (frames, len(t.deformation_modes))
    assert t.shifts.shape == (frames, 2)
    assert t.parameters["modality"] == "one_photon" and t.parameters["nonrigid_px"] == 3.0


def test_reproducible_per_seed(rec):
    again = nc.simulate_recording(**SMALL, nonrigid_px=3.0, motion_px=1.0)
    np.testing.assert_array_equal(rec.movie, again.movie)
    np.testing.assert_array_equal(rec.truth.deformation, again.truth.deformation)
    np.testing.assert_array_equal(rec.truth.background_spatial, again.truth.background_spatial)
    other = nc.simulate_recording(**{**SMALL, "seed": 5}, nonrigid_px=3.0, motion_px=1.0)
    assert not np.array_equal(rec.movie, other.movie)


def test_lazy_equals_eager():
    kw = {**SMALL, "n_frames": 40, "nonrigid_px": 2.0}
    eager = nc.simulate_recording(**kw, lazy=False)
    lazy = nc.simulate_recording(**kw, lazy=True)
    assert not isinstance(lazy.movie, np.ndarray)
    np.testing.assert_array_equal(eager.movie, lazy.movie.compute())
    np.testing.assert_array_equal(eager.truth.deformation, lazy.truth.deformation.compute())


def test_background_several_times_brighter_than_cells(rec):
    t = rec.truth
    background = t.background_movie()
    assert background.mean() > 3.0 * t.baseline_f0.mean()
    # the background is structured in space (vessels, vignetting, haze) and varies in time
    mean_bg = background.mean(axis=0)
    assert mean_bg.std() / mean_bg.mean() > 0.1
    assert t.vessels.min() < 0.7 and t.vignetting.min() < t.vignetting.max() - 0.2
    per_frame = background[:, mean_bg > np.median(mean_bg)].mean(axis=1) / t.bleaching
    assert per_frame.std() / per_frame.mean() > 0.002
    # photobleaching drifts the movie down
    movie = np.asarray(rec.movie, float)
    assert movie[-10:].mean() < movie[:10].mean()


def test_somata_large_soft_and_overlapping():
    t = simulate_one_photon(n_frames=5, shape=(128, 128), n_neurons=40, seed=2).truth
    assert t.cell_diameter_px == pytest.approx(16.0)
    fp = t.footprints
    overlapping = ((fp > 0.2).sum(axis=0) > 1).sum()
    assert overlapping > 50  # pixels where two somata overlap
    pairs = sum(1 for i in range(40) for j in range(i) if np.minimum(fp[i], fp[j]).max() > 0.3)
    assert pairs >= 3
    # soft edges: plenty of weights between 0.1 and 0.9
    soft = ((fp > 0.1) & (fp < 0.9)).sum() / (fp >= 0.9).sum()
    assert soft > 0.5


def test_image_model_reconstructs_the_noise_free_movie():
    rec = nc.simulate_recording(**{**SMALL, "n_frames": 30}, noise=False)
    t = rec.truth
    assert t.deformation is None
    soma = t.footprints_sparse.T @ (t.baseline_f0[:, None] * (1.0 + t.calcium))
    clean = soma * t.bleaching[None, :]
    clean = clean.T.reshape(30, *t.labels.shape) + t.background_movie() + t.offset_adu
    np.testing.assert_allclose(rec.movie, np.rint(clean), atol=1.0)
    # the inherited two-photon slots describe the same background
    k = len(t.neuropil_spatial)
    npl = (t.neuropil_spatial.reshape(k, -1).T @ t.neuropil_temporal).T
    two_photon_view = (npl.reshape(30, *t.labels.shape) + t.background) * t.bleaching[:, None, None]
    np.testing.assert_allclose(two_photon_view, t.background_movie(), rtol=1e-4, atol=1e-2)


def test_motion_field_amplitude_and_spatial_variation(rec):
    t = rec.truth
    nonrigid = t.deformation - t.shifts[:, None, None, :].astype(np.float32)
    assert 2.7 <= np.abs(nonrigid).max() <= 3.3
    # varies across the field: per frame, the spread over pixels is a sizeable part of the peak
    spread = nonrigid.reshape(len(nonrigid), -1, 2).std(axis=1).max()
    assert spread > 0.3
    # and over time
    assert np.abs(np.diff(nonrigid, axis=0)).max() > 0.01
    # smooth: neighbouring pixels move almost alike
    assert np.abs(np.diff(nonrigid, axis=1)).max() < 0.5
    # the movie follows the field: a frame warped back matches the motion-free scene better
    still = nc.simulate_recording(**SMALL, noise=False)
    moving = nc.simulate_recording(**SMALL, nonrigid_px=3.0, motion_px=1.0, noise=False)
    from scipy import ndimage

    i = int(np.argmax(np.abs(nonrigid).reshape(len(nonrigid), -1).max(axis=1)))
    d = moving.truth.deformation[i]
    yy, xx = np.mgrid[: d.shape[0], : d.shape[1]].astype(np.float32)
    back = ndimage.map_coordinates(
        moving.movie[i].astype(float), [yy + d[..., 0], xx + d[..., 1]], order=3, mode="nearest"
    )
    inner = (slice(8, -8), slice(8, -8))
    ref = still.movie[i].astype(float)[inner]
    err_back = np.abs(back[inner] - ref).mean()
    err_raw = np.abs(moving.movie[i].astype(float)[inner] - ref).mean()
    assert err_back < 0.3 * err_raw


def test_low_snr():
    rec = simulate_one_photon(n_frames=200, shape=(96, 96), n_neurons=10, seed=1)
    movie = np.asarray(rec.movie, float)
    noise = np.diff(movie, axis=0).std() / np.sqrt(2)
    signal = rec.truth.baseline_f0 * rec.truth.dff_per_spike
    assert np.median(signal / noise) < 2.0  # one spike is below the single-frame noise


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"modality": "three_photon"}, "modality"),
        ({"nonrigid_px": 2.0}, "nonrigid_px"),  # two-photon: not simulated
        ({"modality": "one_photon", "nonrigid_px": -1.0}, "nonrigid_px"),
        ({"modality": "one_photon", "nonrigid_px": 40.0}, "nonrigid_px"),
        ({"modality": "one_photon", "n_frames": 0}, "n_frames"),
    ],
)
def test_bad_parameters(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        nc.simulate_recording(**{"n_frames": 10, "shape": (64, 64), "n_neurons": 2, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"background_ratio": 0}, "background_ratio"),
        ({"n_vessels": -1}, "n_vessels"),
        ({"n_vessels": 2.5}, "n_vessels"),
        ({"vignetting": 1.5}, "vignetting"),
        ({"overlap": 0.9}, "overlap"),
        ({"vessel_depth": -0.1}, "vessel_depth"),
    ],
)
def test_bad_one_photon_options(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        simulate_one_photon(n_frames=10, shape=(64, 64), n_neurons=2, **kwargs)


def test_deformation_none_without_nonrigid_motion():
    t = nc.simulate_recording(**{**SMALL, "n_frames": 10}, motion_px=2.0).truth
    assert t.deformation is None and t.deformation_modes is None
    assert np.abs(t.shifts).max() == pytest.approx(2.0)

"""Trace extraction: exactness against dense references, neuropil correction on synthetic
ground truth, per-ROI coefficient estimation, real Neurofinder data, errors and cancellation."""

from __future__ import annotations

import json

import array_api_strict as xps
import dask.array as da
import numpy as np
import pytest
import tifffile

from conftest import shared_data
from napari_calcium.core.rois.neuropil import extraction_masks
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.synthetic.recording import simulate_recording
from napari_calcium.core.traces.extraction import (
    RoiTraces,
    TraceSet,
    estimate_neuropil_coefficients,
    extract_traces,
)
from napari_calcium.errors import OperationCancelled, ParameterError, ShapeError

SHAPE = (40, 48)


def random_rois(n: int = 12, seed: int = 0) -> RoiSet:
    """Weighted disks (some overlapping, some touching the border) on a 40 x 48 image."""
    rng = np.random.default_rng(seed)
    pixels = []
    for _ in range(n):
        cy, cx, r = rng.uniform(0, SHAPE[0]), rng.uniform(0, SHAPE[1]), rng.uniform(2.5, 4.5)
        yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
        keep = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        pixels.append((yy[keep], xx[keep], rng.uniform(0.2, 2.0, keep.sum()).astype(np.float32)))
    return RoiSet.from_pixels(pixels, SHAPE)


def dense_reference(movie, rois, **kwargs):
    m = extraction_masks(rois, **kwargs)
    cells = m.cells.masks.toarray().reshape(len(rois), *SHAPE).astype(np.float64)
    neuropil = m.neuropil.masks.toarray().reshape(len(rois), *SHAPE).astype(np.float64)
    mov = np.asarray(movie, np.float64)
    return np.einsum("nyx,tyx->nt", cells, mov), np.einsum("nyx,tyx->nt", neuropil, mov)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(1)
    movie = (rng.random((37, *SHAPE)) * 1000).astype(np.float32)
    rois = random_rois()
    return movie, rois, dense_reference(movie, rois, min_pixels=60)


@pytest.mark.parametrize("kind", ["numpy", "memmap", "dask", "array_api_strict"])
@pytest.mark.parametrize("block_frames", [None, 1, 5, 36])
def test_exact_against_dense_reference(small, tmp_path, kind, block_frames):
    movie, rois, (F_ref, Fneu_ref) = small
    if kind == "memmap":
        mm = np.memmap(tmp_path / "m.bin", np.float32, "w+", shape=movie.shape)
        mm[:] = movie
        mm.flush()
        data = np.memmap(tmp_path / "m.bin", np.float32, "r", shape=movie.shape)
    elif kind == "dask":
        data = da.from_array(movie, chunks=(7, 20, 48))
    elif kind == "array_api_strict":  # the generic (cupy-like) block path, on CPU
        data = xps.asarray(movie)
    else:
        data = movie
    tr = extract_traces(data, rois, min_pixels=60, block_frames=block_frames, frame_rate_hz=10)
    assert tr.F.dtype == np.float32 and tr.F.shape == (12, 37)
    np.testing.assert_allclose(tr.F, F_ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(tr.Fneu, Fneu_ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(tr.corrected, F_ref - 0.7 * Fneu_ref, rtol=1e-5, atol=2e-3)
    np.testing.assert_array_equal(tr.coefficients, np.float32(0.7))
    np.testing.assert_allclose(tr.time_s[:3], [0.0, 0.1, 0.2])


def test_uint16_overlap_and_precomputed_masks(small):
    movie, rois, _ = small
    movie16 = movie.astype(np.uint16)
    F_ref, Fneu_ref = dense_reference(movie16, rois, allow_overlap=True, min_pixels=60)
    masks = extraction_masks(rois, allow_overlap=True, min_pixels=60)
    for tr in (
        extract_traces(movie16, rois, allow_overlap=True, min_pixels=60, block_frames=6),
        extract_traces(movie16, rois, masks=masks),
    ):
        np.testing.assert_allclose(tr.F, F_ref, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(tr.Fneu, Fneu_ref, rtol=1e-5, atol=1e-3)
    assert extract_traces(movie16, rois, masks=masks).parameters["masks"] == "precomputed"


def test_without_neuropil_and_second_channel(small):
    movie, rois, (F_ref, _) = small
    tr = extract_traces(movie, rois, neuropil=False, min_pixels=60)
    assert tr.Fneu is None and tr.F_chan2 is None
    np.testing.assert_allclose(tr.F, F_ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(tr.corrected, tr.F)
    np.testing.assert_array_equal(tr.coefficients, 0)
    red = movie[:, ::-1, :] * 0.5 + 3
    F2_ref, Fneu2_ref = dense_reference(red, rois, min_pixels=60)
    tr2 = extract_traces(
        movie,
        rois,
        second_channel=da.from_array(red, chunks=(4, -1, -1)),
        min_pixels=60,
        block_frames=9,
    )
    np.testing.assert_allclose(tr2.F, F_ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(tr2.F_chan2, F2_ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(tr2.Fneu_chan2, Fneu2_ref, rtol=1e-5, atol=1e-3)
    assert tr2.parameters["second_channel"] is True


def test_traceset_indexing(small):
    movie, rois, _ = small
    tr = extract_traces(movie, rois, neuropil_coefficient=np.linspace(0.5, 0.9, 12), min_pixels=60)
    assert isinstance(tr, TraceSet) and tr.n_rois == len(tr) == 12 and tr.n_frames == 37
    assert tr.time_s is None
    one = tr[3]
    assert isinstance(one, RoiTraces) and one.id == rois.ids[3]
    np.testing.assert_array_equal(one.corrected, tr.corrected[3])
    assert one.coefficient == pytest.approx(0.5 + 3 * 0.4 / 11)
    assert tr.by_id(int(rois.ids[5])).id == rois.ids[5]
    sub = tr[2:5]
    assert isinstance(sub, TraceSet) and sub.n_rois == 3
    np.testing.assert_array_equal(sub.Fneu, tr.Fneu[2:5])
    with pytest.raises(KeyError):
        tr.by_id(10_000)
    with pytest.raises(IndexError):
        tr[12]
    assert tr.parameters["coefficient_method"] == "fixed" and tr.parameters["min_pixels"] == 60


def test_errors(small):
    movie, rois, _ = small
    with pytest.raises(ShapeError, match="ROIs were drawn on"):
        extract_traces(movie[:, :30], rois)
    with pytest.raises(ShapeError, match="second_channel"):
        extract_traces(movie, rois, second_channel=movie[:10])
    with pytest.raises(ShapeError):
        extract_traces(movie[0], rois)
    for bad in (-0.1, np.nan, "auto", [0.7, 0.7]):
        with pytest.raises(ParameterError):
            extract_traces(movie, rois, neuropil_coefficient=bad)
    with pytest.raises(ParameterError, match="should_stop"):
        extract_traces(movie, rois, should_stop=True)
    with pytest.raises(ParameterError, match="progress"):
        extract_traces(movie, rois, progress="bar")
    with pytest.raises(ParameterError, match="RoiSet"):
        extract_traces(movie, np.zeros(SHAPE))
    with pytest.raises(ShapeError):
        estimate_neuropil_coefficients(np.zeros((3, 10)), np.zeros((2, 10)))
    with pytest.raises(ParameterError):
        estimate_neuropil_coefficients(np.zeros((3, 10)), np.zeros((3, 10)), quantile=0.9)


def test_cancel_and_progress(small):
    movie, rois, _ = small
    updates = []

    class Bar:
        def __init__(self, total, desc):
            self.total = total

        def update(self, n):
            updates.append(n)

        def close(self):
            updates.append("closed")

    extract_traces(movie, rois, block_frames=10, progress=Bar, min_pixels=60)
    assert updates == [10, 10, 10, 7, "closed"]
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(OperationCancelled, match="20 of 37"):
        extract_traces(movie, rois, block_frames=10, should_stop=stop, min_pixels=60)


def _median_corr(traces, truth, bleaching):
    # the dF/F baseline, not extraction, removes bleaching: divide it out before comparing
    c = traces / bleaching[None, :]
    r = [np.corrcoef(c[i], truth[i])[0, 1] for i in range(len(c)) if truth[i].std() > 0]
    return float(np.median(r))


@pytest.fixture(scope="module")
def contaminated():
    rec = simulate_recording(
        n_frames=1500, shape=(128, 128), n_neurons=20, seed=1, neuropil_coefficient=1.0
    )
    rois = RoiSet.from_label_image(rec.truth.labels)
    return rec, rois


def test_synthetic_default_contamination_correlates_with_truth():
    rec = simulate_recording(n_frames=1500, shape=(128, 128), n_neurons=20, seed=2)
    rois = RoiSet.from_label_image(rec.truth.labels)
    tr = extract_traces(rec.movie, rois, frame_rate_hz=rec.truth.frame_rate_hz)
    truth = rec.truth.calcium[rois.ids - 1]  # label i + 1 is neuron i
    corrected = _median_corr(tr.corrected, truth, rec.truth.bleaching)
    raw = _median_corr(tr.F, truth, rec.truth.bleaching)
    assert corrected >= 0.95, corrected
    assert corrected > raw + 0.02, (corrected, raw)  # the correction is what gets us there


def test_estimated_coefficients_beat_fixed_on_other_contamination(contaminated):
    rec, rois = contaminated
    fixed = extract_traces(rec.movie, rois)
    est = extract_traces(rec.movie, rois, neuropil_coefficient="estimate")
    truth_r = rec.truth.contamination[rois.ids - 1]
    assert np.median(np.abs(est.coefficients - truth_r)) < 0.1
    assert abs(np.median(est.coefficients) - np.median(truth_r)) < 0.08
    truth = rec.truth.calcium[rois.ids - 1]
    c_fixed = _median_corr(fixed.corrected, truth, rec.truth.bleaching)
    c_est = _median_corr(est.corrected, truth, rec.truth.bleaching)
    assert c_est > c_fixed + 0.005, (c_est, c_fixed)
    assert est.parameters["coefficient_method"] == "estimate"
    # the public function gives the same numbers from the traces
    np.testing.assert_allclose(
        estimate_neuropil_coefficients(est.F, est.Fneu), est.coefficients, rtol=1e-5
    )


def test_estimate_recovers_known_slope_and_clips():
    rng = np.random.default_rng(0)
    t = 3000
    neu = 100 + 10 * np.cumsum(rng.standard_normal((3, t)), axis=1) / 30
    spikes = (rng.random((3, t)) < 0.01).astype(float)
    cell = 40 * np.apply_along_axis(
        lambda s: np.convolve(s, np.exp(-np.arange(60) / 15))[:t], 1, spikes
    )
    drift = np.linspace(0, 20, t)
    true = np.array([0.3, 0.8, 3.0])
    F = 200 + drift + cell + true[:, None] * neu + rng.normal(0, 2, (3, t))
    est = estimate_neuropil_coefficients(F, neu)
    np.testing.assert_allclose(est[:2], true[:2], atol=0.06)
    assert est[2] == 1.5  # clipped to the bounds
    flat = estimate_neuropil_coefficients(F, np.ones_like(F))  # no neuropil variance: fallback
    np.testing.assert_array_equal(flat, 0.7)


def test_real_neurofinder_plain_mask_mean():
    d = shared_data("neurofinder_crop")
    movie = tifffile.imread(d / "movie.tif")
    regions = json.loads((d / "regions.json").read_text())
    rois = RoiSet.from_neurofinder(regions, (256, 256))
    tr = extract_traces(movie, rois, allow_overlap=True, frame_rate_hz=7.0)
    assert tr.F.shape == tr.Fneu.shape == tr.corrected.shape == (106, 400)
    assert np.isfinite(tr.F).all() and np.isfinite(tr.Fneu).all()
    # PROVENANCE.md's formula: the plain mean over each ROI's pixels
    masks = np.zeros((len(regions), 256, 256), bool)
    for i, r in enumerate(regions):
        rc = np.asarray(r["coordinates"])
        masks[i, rc[:, 0], rc[:, 1]] = True
    flat = movie.reshape(len(movie), -1).astype(np.float64)
    ref = (flat @ masks.reshape(len(masks), -1).T.astype(np.float64)) / masks.sum((1, 2))
    np.testing.assert_array_equal(tr.ids, np.arange(1, 107))  # file order
    np.testing.assert_allclose(tr.F, ref.T, rtol=1e-5)
    # neuropil is dimmer-or-similar to somata on average, and lies within the movie's range
    assert movie.min() <= tr.Fneu.min() and tr.Fneu.max() <= movie.max()

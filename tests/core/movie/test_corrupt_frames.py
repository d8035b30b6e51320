"""Corrupted miniscope frames: found without false alarms, then interpolated or dropped lazily."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.core.movie.corrupt_frames import (
    CorruptedFrames,
    RepairedMovie,
    detect_corrupted_frames,
    repair_corrupted_frames,
)
from napari_calcium.errors import ParameterError, ShapeError

STRONG = {"dff_per_spike": 1.0, "firing_rate_hz": (1.0, 5.0)}  # bright, frequent transients


@pytest.fixture(scope="module")
def one_photon():
    rec = nc.simulate_recording(
        n_frames=300, shape=(128, 128), n_neurons=25, seed=2, modality="one_photon",
        nonrigid_px=3.0, motion_px=3.0, **STRONG,
    )  # fmt: skip
    return np.asarray(rec.movie)


@pytest.fixture(scope="module")
def two_photon():
    rec = nc.simulate_recording(
        n_frames=300, shape=(128, 128), n_neurons=30, seed=1, motion_px=4.0, **STRONG
    )
    return np.asarray(rec.movie)


def _inject(movie: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    rng = np.random.default_rng(7)
    out = movie.copy()
    hi = int(movie.max())
    y, x = movie.shape[1:]
    where = {"noise frame": 25, "checker band": 90, "noise block": 150, "zero band": 151}
    out[25] = rng.integers(0, hi, (y, x))  # a whole frame of noise
    out[90, 40:46] = (np.indices((6, x)).sum(axis=0) % 2) * hi  # 6 rows of check pattern
    out[150, 60:84, 20:44] = rng.integers(0, hi, (24, 24))  # a 24 x 24 px block
    out[151, 100:108] = 0  # a band of rows lost (zeros), right after another bad frame
    return out, where


def test_injected_corruptions_are_all_found(one_photon):
    movie, where = _inject(one_photon)
    result = detect_corrupted_frames(movie)
    assert isinstance(result, CorruptedFrames)
    assert result.indices.tolist() == sorted(where.values())
    assert result.scores.shape == (len(movie),) and result.scores.dtype == np.float32
    clean = np.delete(result.scores, list(where.values()))
    assert result.scores[list(where.values())].min() > 1.4 * result.threshold
    assert clean.max() < 0.75 * result.threshold
    assert 40 <= result.worst_rows[90] <= 46
    assert result.mask.sum() == len(where)


def test_sparse_noise_and_short_runs(one_photon):
    rng = np.random.default_rng(3)
    movie = one_photon.copy()
    hi = int(movie.max())
    movie[60, 70:] = movie[10, 70:] // 2  # lower part: a dimmed copy of an old frame
    movie[120][rng.random(movie.shape[1:]) < 0.02] = hi  # 2 % salt
    movie[200:203, 30:38] = (np.indices((8, movie.shape[2])).sum(axis=0) % 2) * hi  # 3 in a row
    result = detect_corrupted_frames(movie)
    assert result.indices.tolist() == [60, 120, 200, 201, 202]


def test_injected_corruptions_in_two_photon(two_photon):
    movie, where = _inject(two_photon)
    assert detect_corrupted_frames(movie).indices.tolist() == sorted(where.values())


@pytest.mark.parametrize("name", ["one_photon", "two_photon"])
def test_no_false_positives_with_motion_and_strong_activity(name, request):
    movie = request.getfixturevalue(name)
    result = detect_corrupted_frames(movie)
    assert result.indices.size == 0
    assert result.scores.max() < 0.85 * result.threshold


def test_blockwise_and_dask_give_the_same_scores(one_photon):
    movie, _ = _inject(one_photon)
    whole = detect_corrupted_frames(movie, block_frames=len(movie))
    small = detect_corrupted_frames(movie, block_frames=7)
    lazy = detect_corrupted_frames(da.from_array(movie, chunks=(64, -1, -1)))
    np.testing.assert_array_equal(whole.scores, small.scores)
    np.testing.assert_allclose(whole.scores, lazy.scores, rtol=1e-6)
    np.testing.assert_array_equal(whole.indices, lazy.indices)


def test_short_and_empty_movies():
    rng = np.random.default_rng(0)
    movie = rng.poisson(200, (12, 32, 48)).astype(np.uint16)
    movie[5, 10:14] = (np.indices((4, 48)).sum(axis=0) % 2) * 4000
    assert detect_corrupted_frames(movie).indices.tolist() == [5]
    empty = detect_corrupted_frames(np.zeros((0, 8, 8), np.uint8))
    assert empty.indices.size == 0 and empty.scores.size == 0


def test_interpolation_is_exact_on_a_linear_ramp():
    frames = np.arange(20, dtype=np.float32)
    ramp = frames[:, None, None] * 3.0 + np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    broken = ramp.copy()
    bad = [4, 5, 6, 11, 19]
    broken[bad] = -999.0
    fixed = repair_corrupted_frames(broken, bad, mode="interpolate")
    assert isinstance(fixed, RepairedMovie) and isinstance(fixed.movie, da.Array)
    assert fixed.movie.dtype == np.float32 and fixed.movie.shape == ramp.shape
    out = fixed.movie.compute()
    np.testing.assert_allclose(out[:19], ramp[:19], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(out[19], ramp[18])  # the last frame: copy of the nearest good
    np.testing.assert_array_equal(fixed.source_frames, np.arange(20))
    np.testing.assert_array_equal(fixed.replaced, bad)


def test_interpolation_of_integer_movies_rounds_and_keeps_dtype():
    ramp = (np.arange(10, dtype=np.uint16)[:, None, None] * 10 + 100) * np.ones(
        (1, 4, 4), np.uint16
    )
    broken = ramp.copy()
    broken[[0, 3]] = 65535
    fixed = repair_corrupted_frames(broken, [0, 3]).movie
    assert fixed.dtype == np.uint16
    np.testing.assert_array_equal(fixed.compute()[1:], ramp[1:])
    np.testing.assert_array_equal(fixed.compute()[0], ramp[1])  # first frame: nearest good copy
    # uneven gap: frames 3 and 4 between 2 and 5 -> 1/3 and 2/3
    two = repair_corrupted_frames(np.asarray(broken, np.float64), [3, 4]).movie.compute()
    np.testing.assert_allclose(two[3], 130.0)
    np.testing.assert_allclose(two[4], 140.0)


def test_drop_returns_the_kept_frames():
    movie = np.arange(30 * 4, dtype=np.uint16).reshape(30, 2, 2)
    dropped = repair_corrupted_frames(movie, [0, 7, 8, 29], mode="drop")
    kept = np.setdiff1d(np.arange(30), [0, 7, 8, 29])
    np.testing.assert_array_equal(dropped.source_frames, kept)
    np.testing.assert_array_equal(dropped.movie.compute(), movie[kept])
    assert dropped.mode == "drop"
    timestamps = np.arange(30) / 20.0
    assert timestamps[dropped.source_frames].shape == (26,)


def test_repair_takes_detection_results_masks_and_dask(one_photon):
    movie, _ = _inject(one_photon)
    result = detect_corrupted_frames(movie)
    lazy = da.from_array(movie, chunks=(50, -1, -1))
    a = repair_corrupted_frames(lazy, result).movie
    b = repair_corrupted_frames(movie, result.mask).movie
    assert a.chunks[0] == lazy.chunks[0]
    np.testing.assert_array_equal(a.compute(), b.compute())
    fixed = a.compute()
    assert detect_corrupted_frames(fixed).indices.size == 0
    # nothing to repair: the movie comes back as it was
    none = repair_corrupted_frames(movie, [])
    np.testing.assert_array_equal(none.movie.compute(), movie)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"indices": [0], "mode": "median"}, "mode"),
        ({"indices": [12]}, "out of range"),
        ({"indices": [0.5]}, "whole"),
        ({"indices": np.ones(3, bool)}, "mask"),
        ({"indices": list(range(10))}, "all 10 frames"),
    ],
)
def test_repair_bad_arguments(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        repair_corrupted_frames(np.zeros((10, 4, 4)), **kwargs)


def test_detect_bad_arguments():
    with pytest.raises(ShapeError, match="frames, y, x"):
        detect_corrupted_frames(np.zeros((5, 2, 8, 8)))
    with pytest.raises(ShapeError):
        detect_corrupted_frames(np.zeros((5, 8, 8), complex))
    for kwargs in ({"threshold": -1}, {"window_frames": 1}, {"segments": 0}, {"threshold": "x"}):
        with pytest.raises(ParameterError):
            detect_corrupted_frames(np.zeros((5, 8, 8)), **kwargs)


def test_array_api_path_matches_numpy():
    """The non-numpy branch (cupy on a GPU) is the same algorithm (array-api-strict)."""
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(1)
    movie = rng.normal(300.0, 20.0, (40, 48, 80)).astype(np.float32)
    movie[13, 20:26] = (np.indices((6, 80)).sum(axis=0) % 2) * 3000.0
    ref = detect_corrupted_frames(movie, block_frames=16)
    strict = detect_corrupted_frames(xps.asarray(movie), block_frames=16)
    np.testing.assert_allclose(strict.scores, ref.scores, rtol=1e-3, atol=1e-3)
    assert strict.indices.tolist() == ref.indices.tolist() == [13]


def test_dark_border_progress_and_cancel(one_photon):
    """A dark region outside the lens (8-bit-like zeros with rare counts) raises no alarm."""
    from napari_calcium.errors import OperationCancelled

    movie = one_photon.copy()
    yy, xx = np.mgrid[:128, :128]
    outside = np.hypot(yy - 63.5, xx - 63.5) > 60
    rng = np.random.default_rng(5)
    movie[:, outside] = (rng.random((len(movie), int(outside.sum()))) < 0.01).astype(np.uint16)
    movie[44, 50:54] = (np.indices((4, 128)).sum(axis=0) % 2) * int(movie.max())
    calls = []

    class Bar:
        def __init__(self, total, desc):
            calls.append(total)

        def update(self, n):
            calls.append(n)

        def close(self):
            calls.append("closed")

    result = detect_corrupted_frames(movie, progress=Bar, block_frames=100)
    assert result.indices.tolist() == [44]
    assert calls == [300, 100, 100, 100, "closed"]
    with pytest.raises(OperationCancelled):
        detect_corrupted_frames(movie, should_stop=lambda: True)

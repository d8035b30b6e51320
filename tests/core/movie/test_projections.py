"""Tests of napari_calcium.core.movie.projections: mean, max, min, median, std, range.

Accuracy is checked against plain numpy; every path is checked chunked == whole and numpy == dask
== memmap == array-api-strict (the cupy code path).
"""

from __future__ import annotations

import array_api_strict as xps
import dask.array as da
import numpy as np
import pytest

from napari_calcium.core.movie import projections as proj
from napari_calcium.core.movie.projections import PROJECTIONS, project, projections

NUMPY = {
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
    "median": np.median,
    "std": np.std,
    "range": np.ptp,
}


def make_movie(n_frames=41, shape=(7, 9), seed=0, dtype=np.uint16):
    rng = np.random.default_rng(seed)
    return rng.integers(100, 4000, size=(n_frames, *shape)).astype(dtype)


# --------------------------------------------------------------------------------------------------
# Projections
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int16])
@pytest.mark.parametrize("kind", PROJECTIONS)
def test_project_equals_numpy(kind, dtype):
    movie = make_movie(dtype=dtype)
    exact = movie.astype(np.float64) if movie.dtype.kind == "f" else movie  # np.std(float32) is
    expected = NUMPY[kind](exact, axis=0).astype(np.float32)  # accumulated in float32
    for block_frames in (None, 1, 6):
        got = project(movie, kind, block_frames=block_frames)
        assert got.dtype == np.float32 and got.shape == movie.shape[1:]
        np.testing.assert_allclose(got, expected, rtol=2.5e-7)


def test_projections_dask_memmap_and_4d(tmp_path):
    movie = make_movie(n_frames=30, shape=(3, 5, 6))  # (frames, planes, y, x)
    path = tmp_path / "m.bin"
    movie.tofile(path)
    mm = np.memmap(path, dtype=movie.dtype, mode="r", shape=movie.shape)
    ref = projections(movie, PROJECTIONS)
    for other in (da.from_array(movie, chunks=(7, 3, 5, 6)), mm):
        got = projections(other, PROJECTIONS, block_frames=4)
        for kind in PROJECTIONS:
            np.testing.assert_array_equal(got[kind], ref[kind])
    assert list(ref) == list(PROJECTIONS)


@pytest.mark.parametrize("n_frames", [40, 41])
@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.int16, np.float32, np.float64])
def test_median_of_dask_by_radix_selection_is_exact(n_frames, dtype):
    rng = np.random.default_rng(n_frames)
    movie = (rng.normal(0, 300, (n_frames, 6, 7)) + (200 if dtype != np.int16 else 0)).clip(
        0 if np.dtype(dtype).kind == "u" else None, 255 if dtype == np.uint8 else None
    )
    movie = movie.astype(dtype)
    movie[:, 0, 0] = movie[0, 0, 0]  # a constant pixel
    movie[: n_frames // 2, 1, 1] = movie[0, 1, 1]  # ties at the middle
    lazy = da.from_array(movie, chunks=(9, 6, 7))
    got = project(lazy, "median", block_frames=9)
    np.testing.assert_array_equal(got, np.median(movie, axis=0).astype(np.float32))


def test_median_over_pixel_tiles(monkeypatch, tmp_path):
    monkeypatch.setattr(proj, "DEFAULT_BLOCK_BYTES", 3 * 40 * 9 * 8)  # 3 rows per tile
    movie = make_movie(n_frames=40, shape=(8, 9))
    path = tmp_path / "m.bin"
    movie.tofile(path)
    mm = np.memmap(path, dtype=movie.dtype, mode="r", shape=movie.shape)
    calls = []

    class Bar:
        def __init__(self, total, desc):
            calls.append(("total", total))

        def update(self, n):
            calls.append(("update", n))

        def close(self):
            calls.append(("close",))

    got = project(mm, "median", progress=Bar)
    np.testing.assert_array_equal(got, np.median(movie, axis=0).astype(np.float32))
    assert calls[0] == ("total", 8) and calls[-1] == ("close",)
    assert [c[1] for c in calls if c[0] == "update"] == [3, 3, 2]
    strict = project(xps.asarray(movie), "median")
    np.testing.assert_array_equal(np.asarray(strict), np.median(movie, axis=0))


def test_projections_run_on_array_api_strict():
    movie = make_movie()
    got = projections(xps.asarray(movie), ["mean", "std", "max", "range"], block_frames=5)
    ref = projections(movie, ["mean", "std", "max", "range"])
    for kind, image in got.items():
        assert isinstance(image, type(xps.asarray(0)))
        np.testing.assert_allclose(np.asarray(image), ref[kind], rtol=1e-6)

"""Tests of napari_calcium.core.movie.reshape: binning and cropping.

Binning and cropping are exact and compared with numpy reshapes and slices.
"""

from __future__ import annotations

import array_api_strict as xps
import dask.array as da
import numpy as np
import pytest

from napari_calcium.core._backend import is_dask_array
from napari_calcium.core.movie.reshape import BIN_METHODS, bin_frames, bin_pixels, crop
from napari_calcium.errors import OperationCancelled, ParameterError, ShapeError

REDUCE = {"mean": np.mean, "sum": np.sum, "max": np.max, "min": np.min}


def make_movie(n_frames=23, shape=(7, 9), seed=0, dtype=np.uint16):
    rng = np.random.default_rng(seed)
    return rng.integers(100, 4000, size=(n_frames, *shape)).astype(dtype)


# --------------------------------------------------------------------------------------------------
# Binning
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", BIN_METHODS)
def test_bin_frames_is_exact(method):
    movie = make_movie()  # 23 frames: 7 bins of 3, the last 2 frames dropped
    expected = REDUCE[method](movie[:21].reshape(7, 3, 7, 9), axis=1)
    for block_frames in (None, 1, 4, 9):
        got = bin_frames(movie, 3, method=method, block_frames=block_frames)
        assert got.dtype == (np.float32 if method in ("mean", "sum") else np.uint16)
        np.testing.assert_array_equal(got, expected.astype(got.dtype))
    lazy = bin_frames(da.from_array(movie, chunks=(5, 4, 9)), 3, method=method)
    assert is_dask_array(lazy) and lazy.shape == (7, 7, 9)
    np.testing.assert_array_equal(lazy.compute(), expected.astype(lazy.dtype))
    strict = bin_frames(xps.asarray(movie), 3, method=method, block_frames=6)
    np.testing.assert_array_equal(np.asarray(strict), expected.astype(lazy.dtype))


@pytest.mark.parametrize("method", BIN_METHODS)
def test_bin_pixels_is_exact(method):
    movie = make_movie(shape=(7, 9))  # 2x2 bins: 3 x 4, the last row and column dropped
    expected = REDUCE[method](movie[:, :6, :8].reshape(23, 3, 2, 4, 2), axis=(2, 4))
    got = bin_pixels(movie, 2, method=method, block_frames=5)
    np.testing.assert_array_equal(got, expected.astype(got.dtype))
    lazy = bin_pixels(da.from_array(movie, chunks=(4, 3, 5)), (2, 2), method=method)
    assert is_dask_array(lazy)
    np.testing.assert_array_equal(lazy.compute(), got)
    volume = make_movie(n_frames=5, shape=(2, 6, 6))  # (frames, planes, y, x)
    got = bin_pixels(volume, (3, 2), method=method, dtype=np.float64)
    expected = REDUCE[method](volume.reshape(5, 2, 2, 3, 3, 2), axis=(3, 5))
    np.testing.assert_array_equal(got, expected.astype(np.float64))


def test_binning_validates_and_reports_progress():
    movie = make_movie()
    with pytest.raises(ParameterError, match="factor"):
        bin_frames(movie, 0)
    with pytest.raises(ParameterError, match="method"):
        bin_frames(movie, 2, method="median")
    with pytest.raises(ShapeError, match="fewer than factor"):
        bin_frames(movie, 24)
    with pytest.raises(ShapeError):
        bin_pixels(movie, 8)
    seen = []

    class Bar:
        def __init__(self, total, desc):
            seen.append(total)

        def update(self, n):
            seen.append(n)

        def close(self):
            seen.append("closed")

    bin_frames(movie, 4, block_frames=8, progress=Bar)
    assert seen == [23, 8, 8, 7, "closed"]
    with pytest.raises(OperationCancelled):
        bin_pixels(movie, 2, should_stop=lambda: True)


# --------------------------------------------------------------------------------------------------
# Crop
# --------------------------------------------------------------------------------------------------
def test_crop_slices_and_records_coordinates(tmp_path):
    movie = make_movie(n_frames=10, shape=(6, 8))
    c = crop(movie, y=(1, 5), x=(2, -1), frames=(3, None))
    np.testing.assert_array_equal(c.movie, movie[3:10, 1:5, 2:7])
    assert np.shares_memory(c.movie, movie)  # a view: nothing copied
    assert (c.offset_yx, c.frames, c.y, c.x, c.source_shape) == (
        (1, 2),
        (3, 10),
        (1, 5),
        (2, 7),
        (10, 6, 8),
    )
    assert c.record == {
        "y": [1, 5],
        "x": [2, 7],
        "frames": [3, 10],
        "offset_yx": [1, 2],
        "source_shape": [10, 6, 8],
    }
    lazy = crop(da.from_array(movie, chunks=(4, 6, 8)), x=(0, 3))
    assert is_dask_array(lazy.movie) and lazy.frames == (0, 10) and lazy.y == (0, 6)
    np.testing.assert_array_equal(lazy.movie.compute(), movie[:, :, :3])
    path = tmp_path / "m.bin"
    movie.tofile(path)
    mm = np.memmap(path, dtype=movie.dtype, mode="r", shape=movie.shape)
    assert isinstance(crop(mm, y=(0, 2)).movie, np.memmap)
    volume = np.zeros((4, 3, 6, 8))
    assert crop(volume, y=(1, 3), x=(4, 8)).movie.shape == (4, 3, 2, 4)
    for bad in ({"y": (5, 5)}, {"x": (0, 9)}, {"frames": (2, 1)}, {"y": (1, 2, 3)}):
        with pytest.raises(ParameterError):
            crop(movie, **bad)
    assert crop(movie, y=(0, 1), progress=lambda **kw: None, should_stop=lambda: False).y == (0, 1)
    with pytest.raises(OperationCancelled):
        crop(movie, should_stop=lambda: True)

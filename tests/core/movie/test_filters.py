"""Tests of napari_calcium.core.movie.filters: exact against scipy.ndimage, seamless blockwise, all
paths.

The numba kernels and their array-API twins (the cupy code path) are compared with each other on
the CPU; under ``array_api_strict`` the public filters run the twin end to end. Real-GPU parity
tests are marked ``gpu`` and skipped without a device.
"""

from __future__ import annotations

import array_api_strict as xps
import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi

import napari_calcium as nc
from napari_calcium.core._backend import array_module, gpu_available, is_dask_array, to_host
from napari_calcium.core.movie import _filter_kernels as fk
from napari_calcium.core.movie.filters import (
    _extend,
    gaussian_filter,
    median_filter,
    uniform_filter,
)
from napari_calcium.errors import OperationCancelled, ParameterError, ShapeError

SHAPES = [(1, 5, 4), (2, 3, 7), (9, 8, 11), (13, 1, 6)]
MODES = ["reflect", "nearest", "mirror", "constant"]


def make_movie(shape=(9, 8, 11), dtype=np.uint16, seed=0, high=6):
    """Few distinct values, so that ties (the hard case for a median) are everywhere."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, high, size=shape).astype(dtype)


def close(a, b):
    """float32 result against a float64 reference: float32 rounding of the data range."""
    scale = max(1.0, float(np.abs(b).max(initial=0)))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6 * scale)


# --------------------------------------------------------------------------------------------------
# Exactness against scipy.ndimage
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_median_equals_scipy_exactly(shape, dtype):
    movie = make_movie(shape, dtype)
    for mode in MODES:
        for size, ref_size in [(3, 3), ((3, 3), (1, 3, 3)), ((3, 1, 5),) * 2, ((2, 2), (1, 2, 2))]:
            got = median_filter(movie, size=size, mode=mode)
            want = ndi.median_filter(movie, size=ref_size, mode=mode)
            assert got.dtype == movie.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"{size=} {mode=}")
    got = median_filter(movie, size=3, axes="yx", mode="wrap")
    np.testing.assert_array_equal(got, ndi.median_filter(movie, size=(1, 3, 3), mode="wrap"))


def test_median_exact_on_wide_range_and_special_floats():
    rng = np.random.default_rng(1)
    ints = rng.integers(-(2**31), 2**31 - 1, size=(7, 9, 10)).astype(np.int32)
    np.testing.assert_array_equal(median_filter(ints, size=3), ndi.median_filter(ints, size=3))
    floats = rng.normal(size=(7, 9, 10)).astype(np.float32)
    floats[0, 0, 0], floats[1, 1, 1], floats[2, 2, 2] = np.inf, -np.inf, -0.0
    np.testing.assert_array_equal(median_filter(floats, size=3), ndi.median_filter(floats, size=3))
    floats[rng.random(floats.shape) < 0.05] = np.nan  # NaN blocks fall back to scipy's own result
    for axes, ref_size in [("tyx", 3), ("yx", (1, 3, 3))]:
        got = median_filter(floats, size=3, axes=axes, block_frames=2)
        want = ndi.median_filter(floats, size=ref_size)
        np.testing.assert_array_equal(got, want, strict=True)


def test_median_footprint():
    movie = make_movie((6, 7, 8))
    cross = ndi.generate_binary_structure(3, 1)
    got = median_filter(movie, footprint=cross, block_frames=2)
    np.testing.assert_array_equal(got, ndi.median_filter(movie, footprint=cross))
    box = np.ones((3, 3), bool)  # 2-D footprint: per frame, the 3x3 network
    np.testing.assert_array_equal(
        median_filter(movie, footprint=box), ndi.median_filter(movie, size=(1, 3, 3))
    )


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_gaussian_matches_scipy(shape, dtype):
    movie = make_movie(shape, dtype, high=60000)
    reference = movie.astype(np.float64)
    for mode in MODES:
        for sigma in [1.0, (0.5, 2.0, 0.7), (0, 1.5, 1.0), 2.5]:
            got = gaussian_filter(movie, sigma=sigma, mode=mode, block_frames=3)
            assert got.dtype == np.float32
            close(got, ndi.gaussian_filter(reference, sigma, mode=mode))
    close(gaussian_filter(movie, sigma=(1.0, 2.0)), ndi.gaussian_filter(reference, (0, 1.0, 2.0)))
    close(
        gaussian_filter(movie, sigma=1.2, truncate=2.0, axes="yx", mode="wrap"),
        ndi.gaussian_filter(reference, (0, 1.2, 1.2), truncate=2.0, mode="wrap"),
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_uniform_matches_scipy(shape):
    movie = make_movie(shape, np.float32, high=1000)
    for mode in MODES:
        for size in [3, (2, 3, 4), (1, 5, 2), (4, 1, 1), (5, 5)]:
            got = uniform_filter(movie, size=size, mode=mode, block_frames=2)
            ref_size = (1, *size) if len(np.atleast_1d(size)) == 2 else size
            close(got, ndi.uniform_filter(movie.astype(np.float64), ref_size, mode=mode))


def test_realistic_movie_and_output_dtypes():
    movie = nc.simulate_recording(n_frames=24, shape=(32, 40), n_neurons=4, seed=3).movie
    movie = np.asarray(movie)
    np.testing.assert_array_equal(median_filter(movie), ndi.median_filter(movie, size=3))
    out = np.empty(movie.shape, np.float64)
    assert gaussian_filter(movie, sigma=1.0, out=out) is out
    close(out, ndi.gaussian_filter(movie.astype(np.float64), 1.0))
    out32 = np.empty(movie.shape, np.float32)  # a median cast into another dtype
    median_filter(movie, out=out32)
    np.testing.assert_array_equal(out32, ndi.median_filter(movie, size=3).astype(np.float32))


# --------------------------------------------------------------------------------------------------
# Blockwise: seamless, and the same through numpy, memmap and dask
# --------------------------------------------------------------------------------------------------
def calscipy_block_mode(images, filter_fn, block_size, block_buffer):
    """CalSciPy 0.8's block mode: overlapping blocks filtered in place, one after the other.

    Each block is filtered on its own (so its edges see the boundary mode, not the neighbours)
    and written back before the next block, which then reads already-filtered frames.
    """
    images = images.copy()
    start = 0
    while start < images.shape[0]:
        block = slice(start, min(start + block_size, images.shape[0]))
        images[block] = filter_fn(images[block])
        start += block_size - block_buffer
    return images


@pytest.mark.parametrize("block_frames", [1, 2, 5])
def test_blockwise_has_no_seams_where_calscipy_block_mode_has(block_frames):
    movie = make_movie((20, 12, 13), np.float32, seed=4, high=1000)
    whole_median = ndi.median_filter(movie, size=3)
    whole_gauss = ndi.gaussian_filter(movie.astype(np.float64), 1.5)
    np.testing.assert_array_equal(median_filter(movie, block_frames=block_frames), whole_median)
    close(gaussian_filter(movie, sigma=1.5, block_frames=block_frames), whole_gauss)

    peer = calscipy_block_mode(movie, lambda b: ndi.median_filter(b, size=3), 5, 1)
    seams = np.flatnonzero(np.any(peer != whole_median, axis=(1, 2)))
    assert seams.size, "the peer's block mode should differ at block edges"
    peer = calscipy_block_mode(movie, lambda b: ndi.gaussian_filter(b, 1.5), 5, 2)
    assert np.abs(peer - whole_gauss).max() > 1.0


def test_numpy_memmap_and_dask_agree(tmp_path):
    movie = make_movie((17, 10, 9), np.uint16, high=5000)
    mm = np.lib.format.open_memmap(tmp_path / "in.npy", "w+", np.uint16, movie.shape)
    mm[:] = movie
    mm.flush()
    lazy = da.from_array(movie, chunks=(1, 5, 9))  # chunks shallower than the filter's reach
    for f, kw in [
        (median_filter, {"size": 3}),
        (median_filter, {"size": (5, 1, 3)}),
        (gaussian_filter, {"sigma": 2.0}),
        (uniform_filter, {"size": (4, 3, 3)}),
    ]:
        expected = f(movie, **kw)
        out = np.lib.format.open_memmap(tmp_path / "out.npy", "w+", expected.dtype, movie.shape)
        assert f(mm, out=out, block_frames=4, **kw) is out
        np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
        result = f(lazy, **kw)
        assert is_dask_array(result) and result.dtype == expected.dtype
        np.testing.assert_array_equal(result.compute(), expected)
        eager = np.empty_like(expected)  # dask in, out given: computed block by block
        f(lazy, out=eager, block_frames=3, **kw)
        np.testing.assert_array_equal(eager, expected)
        del out


def test_empty_and_single_frame_movies():
    assert median_filter(np.zeros((0, 4, 4), np.uint16)).shape == (0, 4, 4)
    one = make_movie((1, 1, 1), np.float32)
    np.testing.assert_array_equal(median_filter(one), one)
    close(gaussian_filter(one, sigma=3.0), one)


# --------------------------------------------------------------------------------------------------
# One algorithm, two kernels: numba and its array-API twin (the cupy path)
# --------------------------------------------------------------------------------------------------
def _maps(shape, mode, k=3):
    n, ny, nx = shape
    h = k // 2
    tmap = _extend(np.arange(n)[:, None] + np.arange(-h, h + 1), n, mode)
    ymap = _extend(np.arange(ny)[:, None] + np.arange(-h, h + 1), ny, mode)
    return tmap, ymap, _extend(np.arange(-h, nx + h), nx, mode)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_numba_kernels_and_twins_agree(dtype):
    movie = make_movie((6, 7, 9), dtype, high=60000)
    tmap, _, _ = _maps(movie.shape, "mirror")
    pad_y = _extend(np.arange(-1, 8), 7, "mirror")
    pad_x = _extend(np.arange(-1, 10), 9, "mirror")
    for kernel in ("numba", "xp"):
        got = fk.median_3x3x3(movie, tmap, pad_y, pad_x, xp=np, kernel=kernel)
        np.testing.assert_array_equal(got, ndi.median_filter(movie, size=3, mode="mirror"))
        got = fk.median_3x3(movie, pad_y, pad_x, xp=np, kernel=kernel)
        np.testing.assert_array_equal(got, ndi.median_filter(movie, (1, 3, 3), mode="mirror"))
    w = np.array([0.1, 0.2, 0.4, 0.2, 0.1], np.float32)
    for mode in ("reflect", "constant"):
        tmap, ymap, xmap = _maps(movie.shape, mode, k=5)
        args = (movie, tmap, w, ymap, w, xmap, w, 7.5)
        numba_result = fk.separable(*args, xp=np, kernel="numba")
        np.testing.assert_array_equal(numba_result, fk.separable(*args, xp=np, kernel="xp"))


def test_median_network_exact_by_the_zero_one_principle():
    """All 2**27 0-1 inputs of the 3x3x3 network, 64 per machine word (min = and, max = or).

    A min/max network that selects the median of every 0-1 input selects it for every input.
    """
    lo, hi = np.bitwise_and, np.bitwise_or
    words = np.arange(2**15, dtype=np.uint64)
    patterns = [sum(1 << b for b in range(64) if (b >> k) & 1) for k in range(6)]
    combos = np.arange(2**21, dtype=np.uint64)
    for chunk in range(64):
        v = [np.full(words.shape, patterns[k], np.uint64) for k in range(6)]
        v += [np.where((words >> np.uint64(k)) & np.uint64(1), ~np.uint64(0), 0) for k in range(15)]
        v += [np.full(words.shape, ~np.uint64(0) if chunk >> k & 1 else 0) for k in range(6)]
        v = [a.astype(np.uint64) for a in v]  # input (t, y, x) is bit 9t + 3y + x of the combo
        triples = [fk._net_sort3(v[i], v[9 + i], v[18 + i], lo, hi) for i in range(9)]
        cols = [fk._net_sort9(triples[x], triples[3 + x], triples[6 + x], lo, hi) for x in range(3)]
        got = fk._net_median27(*cols, lo, hi)
        ones = np.bitwise_count(combos | np.uint64(chunk << 21))
        want = np.packbits(ones >= 14, bitorder="little").view(np.uint64)
        np.testing.assert_array_equal(got, want)
    for bits in range(2**9):  # the 3x3 network, directly
        x = [(bits >> i) & 1 for i in range(9)]
        cols = [fk._net_sort3(x[c], x[3 + c], x[6 + c], min, max) for c in range(3)]
        assert fk._net_median9(*cols, min, max) == (sum(x) >= 5)


def test_public_filters_run_the_twin_under_array_api_strict():
    movie = make_movie((7, 6, 5), np.uint16, high=3000)
    strict = xps.asarray(movie)
    for f, kw in [(median_filter, {}), (median_filter, {"axes": "yx"})]:
        got = f(strict, block_frames=3, **kw)
        assert array_module(got) is xps
        np.testing.assert_array_equal(to_host(got), f(movie, **kw))
    for f, kw in [(gaussian_filter, {"sigma": 1.0}), (uniform_filter, {"size": 3})]:
        for mode in ("reflect", "constant"):
            got = f(strict, mode=mode, cval=3.0, block_frames=3, **kw)
            assert array_module(got) is xps
            np.testing.assert_array_equal(to_host(got), f(movie, mode=mode, cval=3.0, **kw))


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a working CUDA device")
def test_gpu_matches_cpu():
    import cupy as cp

    movie = make_movie((21, 33, 40), np.uint16, high=60000)
    on_gpu = cp.asarray(movie)
    for kw in [{}, {"axes": "yx"}, {"size": 5}, {"mode": "constant"}]:
        got = median_filter(on_gpu, block_frames=6, **kw)
        assert array_module(got) is cp
        np.testing.assert_array_equal(to_host(got), median_filter(movie, **kw))
    for f, kw in [(gaussian_filter, {"sigma": 1.0}), (uniform_filter, {"size": (3, 5, 5)})]:
        got = f(on_gpu, block_frames=6, **kw)
        assert array_module(got) is cp
        np.testing.assert_allclose(to_host(got), f(movie, **kw), rtol=1e-6, atol=1e-3)
    lazy = da.from_array(movie, chunks=(5, 33, 40))
    lazy = lazy.map_blocks(cp.asarray, meta=cp.empty((0, 0, 0), np.uint16))
    np.testing.assert_array_equal(to_host(median_filter(lazy).compute()), median_filter(movie))


# --------------------------------------------------------------------------------------------------
# Progress, cancellation, errors
# --------------------------------------------------------------------------------------------------
class Recorder:
    def __init__(self, total=None, desc=None):
        self.total, self.desc, self.n, self.closed = total, desc, 0, False
        Recorder.last = self

    def update(self, n):
        self.n += n

    def close(self):
        self.closed = True


def test_progress_and_should_stop():
    movie = make_movie((10, 4, 4))
    median_filter(movie, block_frames=3, progress=Recorder)
    bar = Recorder.last
    assert (bar.total, bar.n, bar.closed, bar.desc) == (10, 10, True, "median_filter")
    calls = []

    def stop_after_two():
        calls.append(1)
        return len(calls) > 2

    out = np.full(movie.shape, -1, np.float32)
    with pytest.raises(OperationCancelled, match="6 of 10"):
        gaussian_filter(movie, sigma=1.0, out=out, block_frames=3, should_stop=stop_after_two)
    assert np.all(out[:6] >= 0) and np.all(out[6:] == -1)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: gaussian_filter(m, sigma=-1.0), ParameterError, "sigma"),
        (lambda m: gaussian_filter(m, sigma=(1, np.nan, 1)), ParameterError, "sigma"),
        (lambda m: gaussian_filter(m, sigma=(1, 1), axes="tyx"), ParameterError, "sigma"),
        (lambda m: gaussian_filter(m, sigma=1, truncate=0), ParameterError, "truncate"),
        (lambda m: median_filter(m, size=0), ParameterError, "size"),
        (lambda m: median_filter(m, size=2.5), ParameterError, "size"),
        (lambda m: uniform_filter(m, size=(3, 3, 3, 3)), ParameterError, "size"),
        (lambda m: median_filter(m, axes="xy"), ParameterError, "axes"),
        (lambda m: median_filter(m, mode="edge"), ParameterError, "mode"),
        (lambda m: median_filter(m, mode="wrap"), ParameterError, "wrap"),
        (lambda m: median_filter(m, size=3, footprint=np.ones((3, 3))), ParameterError, "both"),
        (lambda m: median_filter(m, footprint=np.zeros((3, 3))), ParameterError, "footprint"),
        (lambda m: median_filter(m, block_frames=0), ParameterError, "block_frames"),
        (lambda m: median_filter(m, out=m), ParameterError, "share memory"),
        (lambda m: median_filter(m, out=np.empty((2, 2, 2))), ShapeError, "out"),
        (lambda m: median_filter(m[0]), ShapeError, r"\(frames, y, x\)"),
        (lambda m: gaussian_filter(m[None], sigma=1), ShapeError, "plane"),
        (lambda m: uniform_filter(m.astype(complex), size=3), ShapeError, "real"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(make_movie((4, 5, 6)))

"""Tests of napari_calcium.core.chunking: frame blocks over numpy, memmap, dask and array-API."""

from __future__ import annotations

import dataclasses

import array_api_strict as xps
import dask.array as da
import numpy as np
import pytest
from scipy.ndimage import uniform_filter1d

from napari_calcium.core._backend import (
    array_module,
    device_array_module,
    gpu_available,
    is_dask_array,
    to_host,
)
from napari_calcium.core.chunking import (
    FrameBlock,
    apply_blockwise,
    auto_block_frames,
    frame_blocks,
    iter_frame_blocks,
)
from napari_calcium.errors import OperationCancelled, ParameterError, ShapeError


def make_movie(n_frames=23, shape=(4, 5), seed=0, dtype=np.uint16):
    """Integer-valued movie: running sums in the filters are exact, so results compare equal."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1000, size=(n_frames, *shape)).astype(dtype)


def smooth5(block):
    """Temporal boxcar of 5 frames (reach 2 frames each side)."""
    return uniform_filter1d(block.astype(np.float32), size=5, axis=0)


# --------------------------------------------------------------------------------------------------
# frame_blocks
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_frames", [1, 2, 7, 23, 64])
@pytest.mark.parametrize("block_frames", [1, 3, 7, 100])
@pytest.mark.parametrize("overlap", [0, 1, 5, 40])
def test_frame_blocks_tile_and_read_ranges(n_frames, block_frames, overlap):
    blocks = frame_blocks(n_frames, block_frames=block_frames, overlap=overlap)
    covered = np.zeros(n_frames, dtype=int)
    for i, b in enumerate(blocks):
        covered[b.start : b.stop] += 1
        assert 0 < b.n_frames <= block_frames
        assert b.read_start == max(0, b.start - overlap)
        assert b.read_stop == min(n_frames, b.stop + overlap)
        frames = np.arange(n_frames)[b.read_start : b.read_stop]
        np.testing.assert_array_equal(frames[b.core], np.arange(b.start, b.stop))
        assert b.n_read == b.read_stop - b.read_start
        if i:
            assert b.start == blocks[i - 1].stop
    np.testing.assert_array_equal(covered, 1)
    assert blocks[0].start == 0 and blocks[-1].stop == n_frames
    assert blocks[0].read_start == 0 and blocks[-1].read_stop == n_frames


def test_frame_blocks_small_cases():
    assert frame_blocks(0, block_frames=4, overlap=2) == []
    assert frame_blocks(1, block_frames=4, overlap=2) == [FrameBlock(0, 1, 0, 1)]
    blocks = frame_blocks(10, block_frames=2, overlap=5)  # overlap larger than a block
    assert blocks[2] == FrameBlock(4, 6, 0, 10)
    assert blocks[2].core == slice(4, 6)
    assert blocks[2].frames == slice(4, 6) and blocks[2].read_frames == slice(0, 10)
    assert [
        (b.start, b.stop, b.read_start, b.read_stop)
        for b in frame_blocks(10, block_frames=4, overlap=1)
    ] == [(0, 4, 0, 5), (4, 8, 3, 9), (8, 10, 7, 10)]


def test_frame_block_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FrameBlock(0, 1, 0, 1).start = 3


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_frames": -1, "block_frames": 2}, "n_frames"),
        ({"n_frames": 5, "block_frames": 0}, "block_frames"),
        ({"n_frames": 5, "block_frames": 2.5}, "block_frames"),
        ({"n_frames": 5, "block_frames": True}, "block_frames"),
        ({"n_frames": 5, "block_frames": 2, "overlap": -1}, "overlap"),
    ],
)
def test_frame_blocks_validates_arguments(kwargs, name):
    n_frames = kwargs.pop("n_frames")
    with pytest.raises(ParameterError, match=name):
        frame_blocks(n_frames, **kwargs)


def test_frame_blocks_accepts_numpy_integers():
    assert len(frame_blocks(np.int64(10), block_frames=np.int32(5))) == 2


# --------------------------------------------------------------------------------------------------
# auto_block_frames
# --------------------------------------------------------------------------------------------------
def test_auto_block_frames_from_budget_and_dask_chunks():
    movie = np.zeros((100, 8, 8), dtype=np.uint16)  # 256 bytes per float32 frame
    assert auto_block_frames(movie, budget_bytes=256 * 20) == 20
    assert auto_block_frames(movie, budget_bytes=1) == 1
    assert auto_block_frames(movie) == 100  # small movie: one block
    d = da.zeros((100, 8, 8), chunks=(7, 8, 8))
    assert auto_block_frames(d, budget_bytes=256 * 20) == 14  # two whole chunks
    assert auto_block_frames(d, budget_bytes=256 * 5) == 7  # one chunk, a bit over budget
    big_chunks = da.zeros((100, 8, 8), chunks=(100, 8, 8))
    assert auto_block_frames(big_chunks, budget_bytes=256 * 5) == 5  # chunk far over budget
    assert auto_block_frames(np.zeros((0, 4, 4))) == 1


# --------------------------------------------------------------------------------------------------
# iter_frame_blocks: inputs
# --------------------------------------------------------------------------------------------------
def _check_blocks(movie_np, pairs, block_frames, overlap):
    expected = frame_blocks(len(movie_np), block_frames=block_frames, overlap=overlap)
    assert [b for b, _ in pairs] == expected
    for b, arr in pairs:
        assert type(arr) is np.ndarray
        assert arr.dtype == movie_np.dtype
        np.testing.assert_array_equal(arr, movie_np[b.read_start : b.read_stop])


def test_iter_frame_blocks_numpy():
    movie = make_movie()
    pairs = list(iter_frame_blocks(movie, block_frames=5, overlap=2))
    _check_blocks(movie, pairs, 5, 2)
    assert np.shares_memory(pairs[0][1], movie)  # views, not copies


def test_iter_frame_blocks_4d_and_default_block_size():
    movie = make_movie(n_frames=9, shape=(2, 3, 4))
    pairs = list(iter_frame_blocks(movie))
    assert len(pairs) == 1
    np.testing.assert_array_equal(pairs[0][1], movie)


def test_iter_frame_blocks_memmap(tmp_path):
    movie = make_movie()
    mm = np.memmap(tmp_path / "movie.bin", dtype=movie.dtype, mode="w+", shape=movie.shape)
    mm[:] = movie
    mm.flush()
    ro = np.memmap(tmp_path / "movie.bin", dtype=movie.dtype, mode="r", shape=movie.shape)
    pairs = list(iter_frame_blocks(ro, block_frames=4, overlap=1))
    _check_blocks(movie, pairs, 4, 1)  # blocks are in-memory copies, not memmaps


class RecordingDataset:
    """h5py/zarr-like wrapper around a memmap that logs every read and forbids reading it whole."""

    def __init__(self, array):
        self._array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim
        self.requests = []

    def __getitem__(self, key):
        self.requests.append(key)
        return self._array[key]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole dataset was materialised")


def test_iter_frame_blocks_reads_only_each_block_from_a_memmap(tmp_path):
    movie = make_movie(n_frames=30)
    mm = np.memmap(tmp_path / "movie.bin", dtype=movie.dtype, mode="w+", shape=movie.shape)
    mm[:] = movie
    dataset = RecordingDataset(mm)
    pairs = list(iter_frame_blocks(dataset, block_frames=8, overlap=3))
    _check_blocks(movie, pairs, 8, 3)
    assert dataset.requests == [(b.read_frames, Ellipsis) for b, _ in pairs]


def test_iter_frame_blocks_dask_computes_only_the_needed_chunks():
    movie = make_movie(n_frames=30)
    computed = []

    def record(block, block_info=None):
        computed.append(block_info[0]["chunk-location"][0])
        return block

    base = da.from_array(movie, chunks=(7, 4, 5))
    counted = base.map_blocks(record, dtype=movie.dtype, meta=np.empty((0, 0, 0), movie.dtype))
    iterator = iter_frame_blocks(counted, block_frames=5, overlap=2)
    n_blocks = 0
    for block, arr in iterator:
        n_blocks += 1
        assert type(arr) is np.ndarray
        np.testing.assert_array_equal(arr, movie[block.read_frames])
        needed = list(range(block.read_start // 7, (block.read_stop - 1) // 7 + 1))
        assert sorted(computed) == needed, block
        computed.clear()
    assert n_blocks == 6


def test_iter_frame_blocks_array_api_strict_keeps_namespace():
    movie = make_movie(n_frames=10)
    strict = xps.asarray(movie)
    pairs = list(iter_frame_blocks(strict, block_frames=4, overlap=1))
    assert all(array_module(arr) is xps for _, arr in pairs)
    for b, arr in pairs:
        np.testing.assert_array_equal(to_host(arr), movie[b.read_frames])


@pytest.mark.parametrize("bad", [np.zeros(5), np.float32(3.0), [1.0, 2.0]])
def test_iter_frame_blocks_rejects_1d_at_call_time(bad):
    with pytest.raises(ShapeError, match=r"shape \("):
        iter_frame_blocks(bad)  # no iteration needed


def test_iter_frame_blocks_validates_at_call_time():
    movie = make_movie(n_frames=4)
    with pytest.raises(ParameterError, match="block_frames"):
        iter_frame_blocks(movie, block_frames=0)
    with pytest.raises(ParameterError, match="overlap"):
        iter_frame_blocks(movie, block_frames=2, overlap=-2)
    with pytest.raises(ParameterError, match="progress"):
        iter_frame_blocks(movie, progress="yes")
    with pytest.raises(ParameterError, match="should_stop"):
        iter_frame_blocks(movie, should_stop=True)


def test_iter_frame_blocks_zero_frames():
    assert list(iter_frame_blocks(np.zeros((0, 3, 3)), block_frames=2)) == []


# --------------------------------------------------------------------------------------------------
# progress and should_stop
# --------------------------------------------------------------------------------------------------
class FakeBar:
    """A tqdm-like bar: update(n) and close()."""

    def __init__(self, total=None, desc=None):
        self.total = total
        self.desc = desc
        self.updates = []
        self.closed = 0

    def update(self, n):
        self.updates.append(n)

    def close(self):
        self.closed += 1


class FakeContextBar(FakeBar):
    """A bar used as a context manager (like napari.utils.progress)."""

    def __init__(self, total=None, desc=None):
        super().__init__(total, desc)
        self.entered = 0
        self.exit_types = []

    def __enter__(self):
        self.entered += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        self.exit_types.append(exc_type)
        self.close()


class Factory:
    def __init__(self, cls=FakeBar):
        self.cls = cls
        self.bars = []

    def __call__(self, **kwargs):
        bar = self.cls(**kwargs)
        self.bars.append(bar)
        return bar


@pytest.mark.parametrize("cls", [FakeBar, FakeContextBar])
def test_progress_total_updates_and_close(cls):
    movie = make_movie(n_frames=23)
    factory = Factory(cls)
    blocks = list(iter_frame_blocks(movie, block_frames=5, overlap=2, progress=factory, desc="f"))
    assert len(factory.bars) == 1
    bar = factory.bars[0]
    assert (bar.total, bar.desc) == (23, "f")
    assert bar.updates == [b.n_frames for b, _ in blocks] == [5, 5, 5, 5, 3]
    assert sum(bar.updates) == 23
    assert bar.closed == 1
    if cls is FakeContextBar:
        assert bar.entered == 1 and bar.exit_types == [None]


def test_progress_not_created_until_iteration():
    factory = Factory()
    iterator = iter_frame_blocks(make_movie(), block_frames=5, progress=factory)
    assert factory.bars == []
    next(iterator)
    assert len(factory.bars) == 1
    iterator.close()
    assert factory.bars[0].closed == 1


@pytest.mark.parametrize("cls", [FakeBar, FakeContextBar])
def test_progress_closed_when_consumer_breaks(cls):
    factory = Factory(cls)
    for i, _ in enumerate(iter_frame_blocks(make_movie(), block_frames=5, progress=factory)):
        if i == 1:
            break
    bar = factory.bars[0]
    assert bar.closed == 1
    assert bar.updates == [5]  # the block being consumed when the loop broke is not counted


@pytest.mark.parametrize("cls", [FakeBar, FakeContextBar])
def test_progress_closed_when_consumer_raises(cls):
    factory = Factory(cls)

    def consume():
        for i, _ in enumerate(iter_frame_blocks(make_movie(), block_frames=5, progress=factory)):
            if i == 2:
                raise KeyError("boom")

    with pytest.raises(KeyError):
        consume()
    assert factory.bars[0].closed == 1
    assert factory.bars[0].updates == [5, 5]


def test_progress_true_uses_tqdm(monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    factory = Factory()
    monkeypatch.setattr(tqdm, "tqdm", factory)
    list(iter_frame_blocks(make_movie(n_frames=12), block_frames=5, progress=True, desc="x"))
    assert factory.bars[0].total == 12 and sum(factory.bars[0].updates) == 12


def test_progress_none_and_false_show_nothing():
    for progress in (None, False):
        assert len(list(iter_frame_blocks(make_movie(), block_frames=5, progress=progress))) == 5


class StopAfter:
    """should_stop that says stop on its (k+1)-th call."""

    def __init__(self, k):
        self.k = k
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.calls > self.k


@pytest.mark.parametrize("cls", [FakeBar, FakeContextBar])
def test_should_stop_cancels_after_k_blocks(cls):
    factory = Factory(cls)
    seen = []
    with pytest.raises(OperationCancelled, match="after 10 of 23 frames") as info:
        for block, _ in iter_frame_blocks(
            make_movie(), block_frames=5, progress=factory, should_stop=StopAfter(2), desc="mean"
        ):
            seen.append(block)
    assert "mean" in str(info.value)
    assert len(seen) == 2
    bar = factory.bars[0]
    assert bar.closed == 1 and sum(bar.updates) == 10
    if cls is FakeContextBar:
        assert bar.exit_types == [OperationCancelled]


def test_should_stop_before_first_block():
    with pytest.raises(OperationCancelled, match="after 0 of"):
        next(iter_frame_blocks(make_movie(), block_frames=5, should_stop=lambda: True))


# --------------------------------------------------------------------------------------------------
# apply_blockwise
# --------------------------------------------------------------------------------------------------
def test_apply_blockwise_numpy_equals_whole_array():
    movie = make_movie()
    want = smooth5(movie)
    for block_frames in (1, 3, 5, 8, 100):
        got = apply_blockwise(movie, smooth5, block_frames=block_frames, overlap=2)
        assert got.dtype == np.float32 and got.shape == movie.shape
        np.testing.assert_array_equal(got, want)
    # too little overlap differs (guards the test itself)
    assert not np.array_equal(apply_blockwise(movie, smooth5, block_frames=5, overlap=1), want)


def test_apply_blockwise_dtype_and_progress():
    movie = make_movie(n_frames=11)
    factory = Factory()
    got = apply_blockwise(
        movie, smooth5, block_frames=4, overlap=2, dtype=np.float64, progress=factory
    )
    assert got.dtype == np.float64
    assert sum(factory.bars[0].updates) == 11 and factory.bars[0].closed == 1


def test_apply_blockwise_memmap_into_memmap_out(tmp_path):
    movie = make_movie(n_frames=29)
    src = np.memmap(tmp_path / "in.bin", dtype=movie.dtype, mode="w+", shape=movie.shape)
    src[:] = movie
    src.flush()
    src = np.memmap(tmp_path / "in.bin", dtype=movie.dtype, mode="r", shape=movie.shape)
    out = np.memmap(tmp_path / "out.bin", dtype=np.float32, mode="w+", shape=movie.shape)
    got = apply_blockwise(src, smooth5, block_frames=6, overlap=2, out=out)
    assert got is out
    reread = np.fromfile(tmp_path / "out.bin", dtype=np.float32).reshape(movie.shape)
    np.testing.assert_array_equal(reread, smooth5(movie))


def test_apply_blockwise_dask_is_lazy_and_equal():
    movie = make_movie(n_frames=30)
    d = da.from_array(movie, chunks=(7, 2, 5))  # spatial chunks too: rechunked to whole frames
    calls = []

    def spy(block):
        calls.append(block.shape)
        return smooth5(block)

    lazy = apply_blockwise(d, spy, overlap=2)
    assert is_dask_array(lazy)
    assert lazy.dtype == np.float32 and lazy.shape == movie.shape
    assert calls == []  # nothing computed yet
    np.testing.assert_array_equal(lazy.compute(), smooth5(movie))
    assert all(shape[1:] == movie.shape[1:] for shape in calls)


def test_apply_blockwise_dask_with_out_fills_eagerly():
    movie = make_movie(n_frames=30)
    d = da.from_array(movie, chunks=(7, 4, 5))
    out = np.zeros(movie.shape, dtype=np.float32)
    factory = Factory()
    got = apply_blockwise(d, smooth5, overlap=2, block_frames=7, out=out, progress=factory)
    assert got is out
    np.testing.assert_array_equal(out, smooth5(movie))
    assert sum(factory.bars[0].updates) == 30


def drop_first_frame(block):
    return block[1:]


def test_apply_blockwise_wrong_frame_count_raises_naming_func():
    movie = make_movie()
    with pytest.raises(ShapeError, match="drop_first_frame"):
        apply_blockwise(movie, drop_first_frame, block_frames=5, overlap=2)
    with pytest.raises(ShapeError, match="func"):
        apply_blockwise(movie, lambda b: b.mean(axis=0), block_frames=5)
    lazy = apply_blockwise(da.from_array(movie, chunks=(7, 4, 5)), drop_first_frame, overlap=2)
    with pytest.raises(ShapeError, match="drop_first_frame"):
        lazy.compute()


def test_apply_blockwise_checks_out_and_dtype():
    movie = make_movie(n_frames=6)
    with pytest.raises(ShapeError, match="out"):
        apply_blockwise(movie, smooth5, out=np.zeros((5, 4, 5), np.float32))
    with pytest.raises(ParameterError, match="dtype"):
        apply_blockwise(movie, smooth5, out=np.zeros(movie.shape, np.float32), dtype=np.float64)
    with pytest.raises(ParameterError, match="func"):
        apply_blockwise(movie, "not callable")


def test_apply_blockwise_cancel_leaves_partial_out():
    movie = make_movie()
    out = np.full(movie.shape, -1, dtype=np.float32)
    with pytest.raises(OperationCancelled):
        apply_blockwise(
            movie, smooth5, block_frames=5, overlap=2, out=out, should_stop=StopAfter(2)
        )
    np.testing.assert_array_equal(out[:10], smooth5(movie)[:10])
    assert (out[10:] == -1).all()


def moving_mean3(block):
    """xp-generic 3-frame moving mean (edges repeat the end frames); reach 1 frame."""
    xp = array_module(block)
    block = xp.astype(block, xp.float32)
    padded = xp.concat([block[:1, ...], block, block[-1:, ...]], axis=0)
    return (padded[:-2, ...] + padded[1:-1, ...] + padded[2:, ...]) / 3


def test_apply_blockwise_under_array_api_strict():
    movie = make_movie(n_frames=13)
    got = apply_blockwise(xps.asarray(movie), moving_mean3, block_frames=4, overlap=1)
    assert array_module(got) is xps
    np.testing.assert_array_equal(to_host(got), moving_mean3(movie))
    np.testing.assert_array_equal(
        apply_blockwise(movie, moving_mean3, block_frames=4, overlap=1), moving_mean3(movie)
    )


# --------------------------------------------------------------------------------------------------
# Real GPU (skipped without one)
# --------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a working CUDA device")
def test_gpu_blocks_stay_on_device_and_match_cpu():
    cp = device_array_module("gpu")
    ndi = pytest.importorskip("cupyx.scipy.ndimage")
    movie = make_movie(n_frames=20)
    on_gpu = cp.asarray(movie)
    for _, arr in iter_frame_blocks(on_gpu, block_frames=6, overlap=2):
        assert array_module(arr) is cp

    def smooth5_gpu(block):
        return ndi.uniform_filter1d(block.astype(cp.float32), size=5, axis=0)

    got = apply_blockwise(on_gpu, smooth5_gpu, block_frames=6, overlap=2)
    assert array_module(got) is cp
    np.testing.assert_allclose(to_host(got), smooth5(movie), rtol=1e-6)
    out = np.zeros(movie.shape, np.float32)  # host out from device blocks
    apply_blockwise(on_gpu, smooth5_gpu, block_frames=6, overlap=2, out=out)
    np.testing.assert_allclose(out, smooth5(movie), rtol=1e-6)

"""detect_rois under a memory budget: the binned copy spills to a temporary file, same ROIs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from napari_calcium.core.movie.reshape import bin_frames
from napari_calcium.core.rois.detection.binned_store import SpilledMovie, build_binned
from napari_calcium.core.rois.detection.detect import detect_rois
from napari_calcium.core.synthetic.recording import simulate_recording
from napari_calcium.errors import OperationCancelled, ParameterError


@pytest.fixture(scope="module")
def recording():
    return simulate_recording(n_frames=400, shape=(96, 96), n_neurons=10, seed=3)


def _same(a, b) -> None:
    assert a.n_rois == b.n_rois > 0
    for i in range(a.n_rois):
        for xa, xb in zip(a.pixels(i), b.pixels(i), strict=True):
            np.testing.assert_array_equal(xa, xb)
    assert a.scores.keys() == b.scores.keys()
    for key in a.scores:
        np.testing.assert_array_equal(a.scores[key], b.scores[key])


def _spill_files() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("napari-calcium-binned-*"))


@pytest.mark.parametrize("lazy", [False, True])
def test_spilled_binned_movie_gives_the_same_rois(recording, lazy):
    import dask.array as da

    movie = da.from_array(recording.movie, chunks=(37, 96, 96)) if lazy else recording.movie
    before = _spill_files()
    kwargs = {"frame_rate_hz": 30.0, "cell_diameter_px": 12, "block_frames": 50}
    in_ram = detect_rois(movie, binned_memory_mib=None, **kwargs)
    spilled = detect_rois(movie, binned_memory_mib=0, **kwargs)
    _same(in_ram, spilled)
    assert _spill_files() == before  # the temporary file is gone


def test_default_budget_keeps_a_small_binned_movie_in_ram(recording):
    binned, mean = build_binned(recording.movie, 3, budget_bytes=256 * 2**20)
    assert isinstance(binned, np.ndarray) and binned.dtype == np.float32
    expected = bin_frames(recording.movie, 3)
    np.testing.assert_array_equal(binned, expected)
    np.testing.assert_array_equal(mean, expected.mean(axis=0))  # bit for bit


def test_build_binned_over_budget_writes_a_file_with_the_same_frames(recording):
    expected = bin_frames(recording.movie, 3)
    nbytes = expected.nbytes
    binned, mean = build_binned(recording.movie, 3, budget_bytes=nbytes - 1, block_frames=30)
    try:
        assert isinstance(binned, SpilledMovie) and binned.shape == expected.shape
        assert binned.path.stat().st_size == nbytes
        np.testing.assert_array_equal(binned[:], expected)
        np.testing.assert_array_equal(binned[5:17, ...], expected[5:17])
        np.testing.assert_array_equal(binned[:, 10:20, 30:41], expected[:, 10:20, 30:41])
        for key in (
            (slice(2, 9), slice(0, 5)),  # frames and rows
            (slice(None), slice(90, 200), slice(50, None)),  # clipped at the edges
            (slice(4, 4), slice(None), slice(None)),  # empty
            (Ellipsis, 3),  # not a window: read through a map
            (slice(None, None, 2), slice(1, 3), slice(None)),  # a step: likewise
        ):
            np.testing.assert_array_equal(binned[key], expected[key])
        np.testing.assert_array_equal(mean, expected.mean(axis=0))
    finally:
        binned.close()
    assert not binned.path.exists()


def test_spilled_file_is_removed_when_detection_is_cancelled(recording):
    before = _spill_files()
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3  # after the binned movie is on disk

    with pytest.raises(OperationCancelled):
        detect_rois(recording.movie, cell_diameter_px=12, binned_memory_mib=0, should_stop=stop,
                    block_frames=100)  # fmt: skip
    assert _spill_files() == before


def test_binned_copy_in_ram_only_within_the_budget():
    """In RAM the binned copy is allocated whole; over budget only a block of it at a time."""
    import tracemalloc

    movie = np.random.default_rng(0).poisson(50, size=(600, 128, 128)).astype(np.uint16)
    binned_bytes = 4 * movie.size  # factor 1: one float32 frame per frame

    def peak(budget):
        tracemalloc.start()
        try:
            binned, _ = build_binned(movie, 1, budget_bytes=budget, block_frames=30)
            if isinstance(binned, SpilledMovie):
                binned.close()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(None) >= binned_bytes
    assert peak(binned_bytes // 4) < binned_bytes // 2  # blocks of 30 of 600 frames


@pytest.mark.parametrize("bad", [-1, "x", True])
def test_binned_memory_mib_is_checked(recording, bad):
    with pytest.raises((ParameterError, TypeError)):
        detect_rois(recording.movie, cell_diameter_px=12, binned_memory_mib=bad)

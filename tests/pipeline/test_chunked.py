"""One movie's per-frame steps chunked across the workers of a LocalCluster of two processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.errors import OperationCancelled
from napari_calcium.io.binary import load_binary, open_binary
from napari_calcium.io.tiff import write_tiff_stack
from napari_calcium.pipeline._chunked import motion_correct_on_cluster, store_on_cluster
from napari_calcium.pipeline.cluster import run_batch

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

CONFIG = {
    "motion": {"enabled": True, "max_shift_px": 4},
    "filter": {"enabled": True, "kind": "median", "size": 3, "axes": "tyx"},
    "summary": {"correlation": False},
}


@pytest.fixture(scope="module")
def moving():
    """200 frames with up to 3 px of rigid motion and its ground truth."""
    return nc.simulate_recording(n_frames=200, shape=(64, 64), n_neurons=8, motion_px=3, seed=4)


def _workers_that_ran(stream: list[dict], name: str) -> set[str]:
    keys = ((t["key"][0] if isinstance(t["key"], tuple) else t["key"], t["worker"]) for t in stream)
    return {worker for key, worker in keys if str(key).startswith(name)}


def test_motion_on_the_cluster_equals_motion_correct(client, moving, tmp_path):
    movie = moving.movie.astype(np.float32)
    lazy = da.from_array(movie, chunks=(30, -1, -1))  # 7 chunks for 2 workers
    with distributed.get_task_stream(client) as ts:
        result = motion_correct_on_cluster(client, lazy, max_shift_px=4, border="edge")
        path = store_on_cluster(client, result["movie"], tmp_path / "mc.bin", frame_rate_hz=30.0)
    reference = nc.motion_correct(movie, max_shift_px=4, border="edge")
    np.testing.assert_allclose(result["shifts"], reference.shifts, atol=1e-9)
    np.testing.assert_allclose(result["peak_correlation"], reference.peak_correlation, atol=1e-6)
    np.testing.assert_allclose(result["template"], np.asarray(reference.template), atol=1e-4)
    assert tuple(result["valid_box"]) == tuple(reference.valid_box)
    stored = open_binary(path)
    assert stored.metadata.frame_rate_hz == 30.0
    np.testing.assert_allclose(np.asarray(stored.movie), reference.movie, atol=1e-3)
    # the shifts recover the true motion (up to the common median offset)
    truth = moving.truth.shifts - np.median(moving.truth.shifts, axis=0)
    assert np.abs(result["shifts"] - truth).max() < 0.5
    # both workers measured and wrote frames
    assert len(_workers_that_ran(ts.data, "_estimate_chunk")) == 2
    assert len(_workers_that_ran(ts.data, "_write_frames")) == 2


def test_filter_on_the_cluster_is_exact_across_chunk_edges(client, moving, tmp_path):
    movie = moving.movie
    lazy = nc.median_filter(da.from_array(movie, chunks=(25, -1, -1)), size=3, axes="tyx")
    path = store_on_cluster(client, lazy, tmp_path / "f.bin", pixel_size_um=1.5)
    stored = open_binary(path)
    expected = nc.median_filter(movie, size=3, axes="tyx")
    np.testing.assert_array_equal(np.asarray(stored.movie), expected)
    assert stored.metadata.pixel_size_um == (1.5, 1.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "f.json"]


def test_a_cancel_or_a_failing_chunk_leaves_no_file(client, moving, tmp_path):
    lazy = da.from_array(moving.movie, chunks=(20, -1, -1))
    calls = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(OperationCancelled):
        store_on_cluster(client, lazy, tmp_path / "c.bin", should_stop=stop_after_two)

    def broken(block):
        if block.size:
            raise ValueError("a chunk that cannot be computed")
        return block

    bad = lazy.astype(np.float32).map_blocks(broken, dtype=np.float32)
    with pytest.raises(ValueError, match="cannot be computed"):
        store_on_cluster(client, bad, tmp_path / "e.bin")
    client.run(lambda: None)  # let cancelled chunk tasks settle
    assert list(tmp_path.iterdir()) == []


def test_one_recording_on_a_cluster_is_split_across_workers(client, tmp_path):
    rec = nc.simulate_recording(n_frames=600, shape=(128, 128), n_neurons=12, motion_px=2, seed=7)
    # float32 128 x 128 frames: the TIFF reader's ~16 MiB chunks give 3 chunks of frames
    movie = write_tiff_stack(tmp_path / "big.tif", rec.movie.astype(np.float32),
                             frame_rate_hz=30.0)  # fmt: skip
    assert len(nc.open_recording(movie).movie.chunks[0]) >= 3
    (serial,) = run_batch(movie, tmp_path / "serial", CONFIG)
    with distributed.get_task_stream(client) as ts:
        (chunked,) = run_batch(movie, tmp_path / "chunked", CONFIG, scheduler=client)
    assert serial.ok and chunked.ok, (serial.error, chunked.error)
    assert len(_workers_that_ran(ts.data, "_write_frames")) == 2
    a, b = Path(serial.out_dir), Path(chunked.out_dir)
    for name in ("motion_corrected.bin", "filtered.bin"):
        np.testing.assert_allclose(load_binary(b / name), load_binary(a / name), atol=1e-3)
    with np.load(a / "motion.npz") as ma, np.load(b / "motion.npz") as mb:
        np.testing.assert_allclose(mb["shifts"], ma["shifts"], atol=1e-4)  # px; float32 sums
    ra, rb = nc.load_results(a), nc.load_results(b)
    assert ra.rois.n_rois == rb.rois.n_rois > 0
    np.testing.assert_allclose(rb.traces.corrected, ra.traces.corrected, rtol=1e-4, atol=1e-2)
    assert chunked.summary["n_rois"] == serial.summary["n_rois"]

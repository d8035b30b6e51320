"""run_batch: recordings one after another, and in parallel on a dask.distributed LocalCluster."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.errors import BackendError, ParameterError
from napari_calcium.io.tiff import write_tiff_stack
from napari_calcium.pipeline.cluster import BatchItem, output_folders, run_batch
from napari_calcium.pipeline.provenance import read_provenance

distributed = pytest.importorskip("distributed")

SEEDS = (11, 12, 13)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("batch")
    paths = []
    for i, seed in enumerate(SEEDS):
        rec = nc.simulate_recording(n_frames=200, shape=(48, 48), n_neurons=5, seed=seed)
        paths.append(write_tiff_stack(folder / f"rec{i}.tif", rec.movie, frame_rate_hz=30.0))
    return paths


@pytest.fixture(scope="module")
def serial(recordings, tmp_path_factory) -> list[BatchItem]:
    return run_batch(recordings, tmp_path_factory.mktemp("serial"))


def _assert_same_results(a: Path, b: Path) -> None:
    ra, rb = nc.load_results(a), nc.load_results(b)
    np.testing.assert_array_equal(ra.rois.to_label_image(), rb.rois.to_label_image())
    for name in ("F", "Fneu", "corrected"):
        np.testing.assert_array_equal(getattr(ra.traces, name), getattr(rb.traces, name))
    np.testing.assert_array_equal(ra.dff.dff, rb.dff.dff)
    np.testing.assert_array_equal(ra.spikes.s, rb.spikes.s)
    assert len(ra.events) == len(rb.events)
    for ea, eb in zip(ra.events, rb.events, strict=True):
        np.testing.assert_array_equal(ea, eb)
    for key, image in ra.summary_images.items():
        np.testing.assert_array_equal(image, rb.summary_images[key])


def _assert_consistent(folder: Path) -> None:
    """No temporary files, and every step recorded as run has all of its outputs."""
    assert not [p for p in folder.rglob("*") if p.name.endswith(".partial")]
    record = read_provenance(folder)
    if record is None:
        return
    for name, step in record["steps"].items():
        if step["status"] in ("ran", "skipped"):
            for out in step["outputs"]:
                path = folder / out["path"]
                assert path.is_file() and path.stat().st_size == out["size"], (name, out)
        else:
            assert step.get("key") is None, name


def test_serial_batch_runs_each_recording_into_its_folder(serial, recordings):
    assert [item.status for item in serial] == ["done"] * 3
    assert [item.input for item in serial] == [p.resolve() for p in recordings]
    for item, path in zip(serial, recordings, strict=True):
        assert item.out_dir.name == path.stem and item.error is None
        assert item.summary["n_frames"] == 200 and item.summary["n_rois"] > 0
        assert item.steps["extract"] == "ran" and item.steps["motion"] == "disabled"


def test_cluster_batch_is_bit_identical_to_the_serial_run(client, recordings, serial, tmp_path):
    finished = []
    items = run_batch(recordings, tmp_path, scheduler=client, on_done=finished.append)
    assert [item.status for item in items] == ["done"] * 3
    assert sorted(i.input for i in finished) == sorted(i.input for i in items)
    for a, b in zip(serial, items, strict=True):
        assert a.summary["n_rois"] == b.summary["n_rois"]
        _assert_same_results(a.out_dir, b.out_dir)
        _assert_consistent(b.out_dir)
    again = run_batch(recordings, tmp_path, scheduler=client)  # resumes: nothing to redo
    assert all(set(i.steps.values()) == {"skipped", "disabled"} for i in again)
    assert client.status == "running"


def test_a_broken_recording_fails_alone(client, recordings, tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00 this is not a TIFF")
    tiny = write_tiff_stack(tmp_path / "tiny.tif", np.ones((5, 1, 1), np.uint16))
    inputs = [recordings[0], broken, tiny, recordings[1]]
    items = run_batch(inputs, tmp_path / "out", scheduler=client)
    assert [i.status for i in items] == ["done", "failed", "failed", "done"]
    for item in items[1:3]:
        assert item.error and item.summary is None and not item.steps
    assert "broken.tif" in items[1].error
    assert nc.load_results(items[3].out_dir).traces.n_frames == 200


def test_scheduler_local_starts_and_closes_its_own_cluster(recordings, serial, tmp_path):
    items = run_batch(recordings[:2], tmp_path, scheduler="local", workers=2)
    assert [i.status for i in items] == ["done", "done"]
    _assert_same_results(serial[1].out_dir, items[1].out_dir)


def test_an_interrupted_cluster_batch_stops_and_resumes(client, recordings, tmp_path):
    def interrupt(item):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(recordings, tmp_path, scheduler=client, on_done=interrupt)
    for path in recordings:
        _assert_consistent(tmp_path / path.stem)
    items = run_batch(recordings, tmp_path, scheduler=client)  # the stop request was this batch's
    assert [i.status for i in items] == ["done"] * 3
    assert any("skipped" in i.steps.values() for i in items)


def test_mistakes_are_reported_before_any_work(recordings, tmp_path, monkeypatch):
    with pytest.raises(ParameterError, match="share the output folder"):
        output_folders([recordings[0], recordings[0].with_suffix(".tiff")], tmp_path)
    with pytest.raises(ParameterError, match="no recordings"):
        run_batch([], tmp_path)
    with pytest.raises(ParameterError, match="scheduler must be"):
        run_batch(recordings[:1], tmp_path / "x", scheduler=42)
    with pytest.raises(ParameterError, match="workers must be"):
        run_batch(recordings[:1], tmp_path / "x", scheduler="local", workers=0)
    with pytest.raises(ParameterError):
        run_batch(recordings[:1], tmp_path / "x", {"dff": {"window": 3}}, scheduler="local")
    assert not (tmp_path / "x").exists()
    monkeypatch.setitem(sys.modules, "distributed", None)  # not installed
    with pytest.raises(BackendError, match=r"napari-calcium\[cluster\]"):
        run_batch(recordings[:1], tmp_path / "x", scheduler="local")


def test_one_recording_goes_into_out_dir_itself(recordings, tmp_path):
    (item,) = run_batch(str(recordings[2]), tmp_path / "one")
    assert item.ok and item.out_dir == (tmp_path / "one").resolve()
    assert nc.load_results(tmp_path / "one").traces.n_frames == 200

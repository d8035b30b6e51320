"""Writers: atomic, refuse to overwrite, metadata that reads back."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import napari_calcium as nc
from napari_calcium.errors import OperationCancelled, OutputExistsError, RecordingError, ShapeError
from napari_calcium.io._atomic import atomic_output
from napari_calcium.io.groundtruth import load_ground_truth, save_ground_truth
from napari_calcium.io.tiff import write_tiff_stack


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


def test_atomic_output_renames_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_text("done")
        assert not target.exists()  # nothing visible until the block finishes
    assert target.read_text() == "done"
    assert _leftovers(tmp_path) == []


def test_atomic_output_leaves_nothing_on_error_and_keeps_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target, overwrite=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_output_refuses_to_overwrite(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(OutputExistsError, match=r"out\.txt"), atomic_output(target):
        pass
    assert target.read_text() == "old"
    with (
        pytest.raises(RecordingError, match=r"does not exist"),
        atomic_output(tmp_path / "no" / "x"),
    ):
        pass


def test_tiff_stack_round_trip_with_metadata(tmp_path):
    rec = nc.simulate_recording(n_frames=50, shape=(40, 48), n_neurons=3, seed=2)
    path = write_tiff_stack(
        tmp_path / "m.tif", rec.movie, frame_rate_hz=15.0, pixel_size_um=(0.8, 0.5)
    )
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(tif.asarray(), rec.movie)
        assert tif.is_imagej
        assert tif.imagej_metadata["finterval"] == pytest.approx(1 / 15)
        assert tif.imagej_metadata["unit"] == "um"
        page = tif.pages[0]
        xres = page.tags["XResolution"].value
        yres = page.tags["YResolution"].value
        assert xres[1] / xres[0] == pytest.approx(0.5, rel=1e-4)
        assert yres[1] / yres[0] == pytest.approx(0.8, rel=1e-4)
    with pytest.raises(OutputExistsError):
        write_tiff_stack(path, rec.movie)
    write_tiff_stack(path, rec.movie[:10], overwrite=True)
    assert tifffile.imread(path).shape == (10, 40, 48)


def test_tiff_stack_from_lazy_movie_and_cancel(tmp_path):
    rec = nc.simulate_recording(n_frames=60, shape=(32, 32), n_neurons=2, seed=2, lazy=True)
    path = write_tiff_stack(tmp_path / "lazy.tif", rec.movie)
    np.testing.assert_array_equal(tifffile.imread(path), rec.movie.compute())
    with pytest.raises(OperationCancelled):
        write_tiff_stack(tmp_path / "cancelled.tif", rec.movie, should_stop=lambda: True)
    assert not (tmp_path / "cancelled.tif").exists() and _leftovers(tmp_path) == []
    with pytest.raises(ShapeError, match="frames, y, x"):
        write_tiff_stack(tmp_path / "bad.tif", np.zeros((4, 4)))


def test_ground_truth_round_trip(tmp_path):
    truth = nc.simulate_recording(
        n_frames=90, shape=(48, 48), n_neurons=6, seed=4, motion_px=1.5
    ).truth
    path = save_ground_truth(tmp_path / "truth.npz", truth)
    back = load_ground_truth(path)
    for name in (
        "labels",
        "spikes",
        "calcium",
        "baseline_f0",
        "neuropil",
        "shifts",
        "bleaching",
        "footprints",
        "neuropil_spatial",
        "centers_px",
    ):
        np.testing.assert_array_equal(getattr(back, name), getattr(truth, name), err_msg=name)
    for a, b in zip(back.spike_times_s, truth.spike_times_s, strict=True):
        np.testing.assert_array_equal(a, b)
    assert back.tau_decay_s == truth.tau_decay_s and back.indicator == "GCaMP6f"
    assert back.parameters["motion_px"] == 1.5
    with pytest.raises(OutputExistsError):
        save_ground_truth(path, truth)


def test_ground_truth_bad_files(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(RecordingError, match=r"missing\.npz: file not found"):
        load_ground_truth(missing)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(RecordingError, match=r"junk\.npz: not a readable"):
        load_ground_truth(junk)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.arange(3))
    with pytest.raises(RecordingError, match=r"other\.npz: not napari-calcium ground truth"):
        load_ground_truth(other)


def test_save_images_into_a_missing_folder_is_our_error(tmp_path):
    from napari_calcium.io.tiff import save_images

    movie = np.zeros((3, 4, 4), np.uint16)
    with pytest.raises(RecordingError, match="output folder does not exist"):
        save_images(tmp_path / "missing" / "x.tif", movie)
    assert not (tmp_path / "missing").exists()

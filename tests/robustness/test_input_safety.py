"""Damaged inputs are never dropped in silence (issue 15).

1. A batch (``napari-calcium run DIR``, ``run_batch(DIR)``) reports every entry that looks like a
   recording but does not open (a truncated TIFF, a ``.bin`` shorter than its ``.json`` says):
   named on stderr with our error's message, a failed ``BatchItem``, exit status 1, while the
   good recordings still run.
2. A Bruker folder with a stray frame file of another channel keeps the full series of the
   complete channel, with and without the main ``.xml``, and warns naming the stray file; a
   folder where no channel covers the series is a ``RecordingError`` naming it.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.cli import main
from napari_calcium.errors import RecordingError
from napari_calcium.pipeline.cluster import find_recordings, run_batch


# ------------------------------------------------------------------------------ 1. batch runs
@pytest.fixture(scope="module")
def batch_folder(tmp_path_factory) -> Path:
    """good.tif, cut.tif (a truncated copy), short.bin + short.json (cut short), notes.txt."""
    folder = tmp_path_factory.mktemp("batch") / "sessions"
    folder.mkdir()
    movie = nc.simulate_recording(n_frames=200, shape=(48, 48), n_neurons=4, seed=1).movie
    (good,) = nc.save_images(folder / "good.tif", movie, frame_rate_hz=30.0)
    data = good.read_bytes()
    (folder / "cut.tif").write_bytes(data[: len(data) // 2])
    short = nc.save_binary(folder / "short.bin", movie, frame_rate_hz=30.0)
    short.write_bytes(short.read_bytes()[: short.stat().st_size // 3])
    (folder / "notes.txt").write_text("not a recording")
    return folder


def _problem(path: Path) -> str:
    """Our error's message for a recording that does not open (without the path)."""
    with pytest.raises(RecordingError) as info:
        nc.open_recording(path)
    return info.value.problem


def test_cli_batch_reports_damaged_recordings_and_runs_the_good_one(batch_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(batch_folder), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "1 of 3 recordings done; failed: 2" in captured.out
    assert "good.tif: " in captured.out
    err = captured.err
    assert "Traceback" not in err and "notes.txt" not in err
    lines = err.strip().splitlines()
    cut = [line for line in lines if "cut.tif" in line]
    short = [line for line in lines if "short.bin" in line]
    assert len(cut) == 1 and _problem(batch_folder / "cut.tif") in cut[0], err
    assert len(short) == 1 and _problem(batch_folder / "short.bin") in short[0], err
    assert cut[0].startswith("napari-calcium run: error: ")
    assert cut[0].count(str(batch_folder / "cut.tif")) == 1  # named once, not twice
    assert nc.load_results(out / "good").rois.n_rois > 0


def test_run_batch_returns_a_failed_item_for_each_damaged_recording(batch_folder, tmp_path):
    assert [p.name for p in find_recordings(batch_folder)] == ["cut.tif", "good.tif", "short.bin"]
    items = {item.input.name: item for item in run_batch(batch_folder, tmp_path / "out")}
    assert sorted(items) == ["cut.tif", "good.tif", "short.bin"]
    assert items["good.tif"].ok and items["good.tif"].error is None
    for name in ("cut.tif", "short.bin"):
        item = items[name]
        assert item.status == "failed" and not item.ok
        assert name in item.error and _problem(batch_folder / name) in item.error


def test_a_damaged_bruker_folder_is_one_failing_recording(tmp_path):
    folder = _bruker(tmp_path, "TSeries-s-001", xml=False)
    for t in range(10, 20):  # the second half of the frames as another channel
        src = folder / f"{folder.name}_Cycle00001_Ch2_{t + 1:06d}.ome.tif"
        src.rename(src.with_name(src.name.replace("_Ch2_", "_Ch9_")))
    with pytest.raises(RecordingError, match="no channel has image files") as info:
        find_recordings(folder)  # never its 20 frame files as 20 recordings
    assert info.value.path == str(folder)


# ---------------------------------------------------------------- 2. Bruker: a stray channel
N_FRAMES = 20


def _bruker(tmp_path: Path, name: str, *, xml: bool) -> Path:
    movie = np.arange(N_FRAMES, dtype=np.uint16)[:, None, None] + np.zeros((1, 6, 8), np.uint16)
    folder = nc.write_prairieview(tmp_path / name, movie, frame_rate_hz=10.0)
    if not xml:
        (folder / f"{name}.xml").unlink()
    return folder


def _add_stray(folder: Path) -> str:
    """A copy of frame 1 renamed as channel 9: a stray file of another channel."""
    stray = f"{folder.name}_Cycle00001_Ch9_000001.ome.tif"
    shutil.copy(folder / f"{folder.name}_Cycle00001_Ch2_000001.ome.tif", folder / stray)
    return stray


@pytest.mark.parametrize("xml", [True, False], ids=["with-xml", "file-names"])
def test_a_stray_channel_file_is_left_out_and_the_series_kept(tmp_path, xml):
    folder = _bruker(tmp_path, "TSeries-x-001", xml=xml)
    stray = _add_stray(folder)
    with pytest.warns(UserWarning, match=stray.replace(".", r"\.")):
        rec = nc.open_recording(folder)
    assert list(rec.channels) == ["Ch2"]
    assert rec.channels["Ch2"].shape == (N_FRAMES, 6, 8)
    np.testing.assert_array_equal(rec.channels["Ch2"][:, 0, 0].compute(), np.arange(N_FRAMES))


def test_convert_keeps_every_frame_of_a_folder_with_a_stray_channel(tmp_path, capsys):
    folder = _bruker(tmp_path, "TSeries-c-001", xml=False)
    _add_stray(folder)
    out = tmp_path / "bin"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert main(["convert", str(folder), str(out), "--quiet"]) == 0
    assert [p.name for p in out.glob("*.bin")] == [f"{folder.name}_Ch2.bin"]
    assert nc.open_recording(out / f"{folder.name}_Ch2.bin").shape == (N_FRAMES, 6, 8)


@pytest.mark.parametrize("xml", [True, False], ids=["with-xml", "file-names"])
def test_a_complete_folder_opens_without_a_warning(tmp_path, xml):
    folder = _bruker(tmp_path, "TSeries-ok-001", xml=xml)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nc.open_recording(folder).channels["Ch2"].shape == (N_FRAMES, 6, 8)


def test_no_channel_covering_the_series_is_an_error_naming_the_folder(tmp_path):
    folder = _bruker(tmp_path, "TSeries-h-001", xml=False)
    for t in range(10, N_FRAMES):
        src = folder / f"{folder.name}_Cycle00001_Ch2_{t + 1:06d}.ome.tif"
        src.rename(src.with_name(src.name.replace("_Ch2_", "_Ch9_")))
    with pytest.raises(RecordingError, match=r"Ch2 has 10, Ch9 has 10") as info:
        nc.open_recording(folder)
    assert info.value.path == str(folder)


def test_a_stray_plane_file_is_an_error_naming_it(tmp_path):
    import tifffile

    folder = tmp_path / "TSeries-v-001"
    folder.mkdir()
    for cycle in range(1, 6):
        for plane in range(1, 5):
            name = f"{folder.name}_Cycle{cycle:05d}_Ch2_{plane:06d}.ome.tif"
            tifffile.imwrite(folder / name, np.full((6, 8), plane, np.uint16))
    assert nc.open_recording(folder).channels["Ch2"].shape == (5, 4, 6, 8)
    stray = f"{folder.name}_Cycle00003_Ch2_000005.ome.tif"
    tifffile.imwrite(folder / stray, np.zeros((6, 8), np.uint16))
    with pytest.raises(RecordingError, match=r"plane 5 of 5.* only 1 of the 5 time points") as info:
        nc.open_recording(folder)
    assert info.value.path == str(folder / stray)

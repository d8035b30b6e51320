"""TIFF: lazy open with metadata (ImageJ, OME, ScanImage, tags), folders, split writing, damage."""

from __future__ import annotations

import pickle
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile

import napari_calcium as nc
from napari_calcium.errors import (
    OperationCancelled,
    OutputExistsError,
    ParameterError,
    RecordingError,
)
from napari_calcium.io import _common
from napari_calcium.io import tiff as tiff_module
from napari_calcium.io._common import MappedArray, TiffPages
from napari_calcium.io._tiff_metadata import scanimage_fields, scanimage_layout
from napari_calcium.io.tiff import load_images, open_tiff, open_tiff_folder, save_images

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NEUROFINDER = DATA / "neurofinder_crop" / "movie.tif"


@pytest.fixture(scope="module")
def movie() -> np.ndarray:
    return nc.simulate_recording(n_frames=60, shape=(40, 48), n_neurons=3, seed=2).movie


@pytest.fixture
def no_pixel_reads(monkeypatch):
    """Fail on any pixel read, through either lazy path or tifffile itself."""

    def fail(*args, **kwargs):
        pytest.fail("pixel data was read")

    for target, name in [
        (MappedArray, "__getitem__"),
        (TiffPages, "_read"),
        (tifffile.TiffFile, "asarray"),
        (tifffile.TiffPage, "asarray"),
        (tifffile.FileHandle, "read_segments"),
        (tifffile.FileHandle, "read_array"),
        (np, "fromfile"),
    ]:
        monkeypatch.setattr(target, name, fail)
    return monkeypatch


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------ real data


def test_neurofinder_movie_opens_lazily_with_tifffile_values(no_pixel_reads):
    rec = open_tiff(NEUROFINDER)
    no_pixel_reads.undo()
    assert rec.shape == (400, 256, 256) and rec.movie.dtype == np.uint16
    assert isinstance(rec.movie, da.Array) and list(rec.channels) == ["Ch1"]
    expected = tifffile.imread(NEUROFINDER)
    np.testing.assert_array_equal(rec.movie[123].compute(), expected[123])
    np.testing.assert_array_equal(rec.movie.compute(), expected)
    meta = rec.metadata
    assert meta.source_format == "tiff" and meta.n_planes == 1
    # the crop was written by tifffile without calibration: nothing is invented
    assert meta.frame_period_s is None and meta.pixel_size_um is None and meta.bit_depth is None
    assert meta.timestamps_s is None


# ------------------------------------------------------------------ round trips


def test_save_open_round_trip_imagej(tmp_path, movie):
    (path,) = save_images(tmp_path / "m.tif", movie, frame_rate_hz=15.0, pixel_size_um=(0.8, 0.5))
    assert path == tmp_path / "m.tif"
    rec = open_tiff(path)
    assert rec.shape == (60, 40, 48) and rec.movie.dtype == np.uint16
    np.testing.assert_array_equal(rec.movie.compute(), movie)
    meta = rec.metadata
    assert meta.source_format == "imagej-tiff"
    assert meta.frame_period_s == pytest.approx(1 / 15, rel=1e-9)
    assert meta.pixel_size_um == pytest.approx((0.8, 0.5), rel=1e-6)
    np.testing.assert_allclose(meta.timestamps_s, np.arange(60) / 15)
    assert meta.channel_names == ("Ch1",) and meta.z_step_um is None


@pytest.mark.parametrize("dtype", [np.float32, np.uint32, np.float64])
def test_round_trip_other_dtypes_and_bigtiff_tags(tmp_path, movie, dtype):
    data = movie.astype(dtype)
    (path,) = save_images(tmp_path, data, frame_rate_hz=7.5, pixel_size_um=0.6)
    assert path == tmp_path / "images.tif"  # CalSciPy's default name in a folder
    rec = open_tiff(path)
    assert rec.movie.dtype == dtype
    np.testing.assert_array_equal(rec.movie.compute(), data)
    assert rec.metadata.frame_period_s == pytest.approx(1 / 7.5)
    assert rec.metadata.pixel_size_um == pytest.approx((0.6, 0.6), rel=1e-6)
    with tifffile.TiffFile(path) as tif:  # ImageJ cannot hold these: standard pixels/cm tags
        assert tif.is_imagej == (dtype == np.float32)
        if not tif.is_imagej:
            assert tif.pages.first.resolutionunit == tifffile.RESUNIT.CENTIMETER


def test_volume_round_trip_and_dask_input(tmp_path, movie):
    volume = da.from_array(movie.reshape(15, 4, 40, 48), chunks=(4, 4, 40, 48))
    (path,) = save_images(tmp_path / "v.tif", volume, frame_rate_hz=2.0)
    rec = open_tiff(path)
    assert rec.shape == (15, 4, 40, 48) and rec.metadata.n_planes == 4
    np.testing.assert_array_equal(rec.movie.compute(), volume.compute())
    np.testing.assert_array_equal(load_images(path), volume.compute())


def test_split_writing_reads_back_as_one_movie_in_order(tmp_path, movie):
    files = save_images(tmp_path / "out", movie, 0.0001, frame_rate_hz=20.0, pixel_size_um=1.2)
    frame_bytes = 40 * 48 * 2
    per = int(0.0001e9 // frame_bytes)  # 26 frames per file
    assert [f.name for f in files] == ["images_00000.tif", "images_00001.tif", "images_00002.tif"]
    assert _files(tmp_path / "out") == [f.name for f in files]
    assert per * frame_bytes <= 0.0001e9  # the cap counts pixel bytes; headers add a little
    assert all(f.stat().st_size <= 0.0001e9 + per * 256 for f in files)
    rec = open_tiff_folder(tmp_path / "out")
    assert rec.metadata.extra["frames_per_file"] == [per, per, 60 - 2 * per]
    np.testing.assert_array_equal(rec.movie.compute(), movie)
    meta = rec.metadata
    assert meta.source_format == "tiff-folder" and meta.frame_period_s == pytest.approx(0.05)
    assert meta.pixel_size_um == pytest.approx((1.2, 1.2), rel=1e-6)
    assert len(meta.timestamps_s) == 60
    np.testing.assert_array_equal(load_images(tmp_path / "out"), movie)


def test_folder_natural_order_and_lazy(tmp_path, movie, monkeypatch):
    for name, (a, b) in zip(
        ["part2.tif", "part10.tif", "part100.tiff"], [(0, 10), (10, 25), (25, 60)], strict=True
    ):  # natural, not lexical, order; compressed and contiguous parts mixed
        compression = None if name == "part10.tif" else "zlib"
        tifffile.imwrite(tmp_path / name, movie[a:b], compression=compression)
    (tmp_path / "notes.txt").write_text("not a tiff")
    with monkeypatch.context() as m:
        m.setattr(TiffPages, "_read", lambda *a: pytest.fail("pixel data was read"))
        m.setattr(MappedArray, "__getitem__", lambda *a: pytest.fail("pixel data was read"))
        rec = open_tiff_folder(tmp_path)
    assert rec.metadata.extra["files"] == ["part2.tif", "part10.tif", "part100.tiff"]
    np.testing.assert_array_equal(rec.movie.compute(), movie)


def test_page_reader_slicing_and_open_handle_cap(tmp_path, movie):
    for i in range(40):  # more compressed stacks than handles kept open
        tifffile.imwrite(tmp_path / f"s{i}.tif", movie[i : i + 1], compression="zlib")
    rec = open_tiff_folder(tmp_path)
    np.testing.assert_array_equal(rec.movie.compute(), movie[:40])
    still_open = [r() for r in _common._open_readers.values()]
    assert sum(r is not None and r._tif is not None for r in still_open) <= _common._MAX_OPEN
    source = TiffPages(tmp_path / "s3.tif", (1, 40, 48), np.uint16, 1, {})
    np.testing.assert_array_equal(source[0, 5:9, ::-2], movie[3, 5:9, ::-2])
    assert source[1:1, 2:4].shape == (0, 2, 48) and source[..., 7].shape == (1, 40)
    source.close()


# ------------------------------------------------------------------ formats and metadata


def test_ome_channels_planes_and_physical_sizes(tmp_path, movie):
    data = movie[:40].reshape(5, 4, 2, 40, 48)  # T Z C Y X
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(
        path, data, ome=True, compression="zlib",
        metadata={
            "axes": "TZCYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.25, "PhysicalSizeZ": 3.0,
            "TimeIncrement": 200.0, "TimeIncrementUnit": "ms",
            "Channel": {"Name": ["GCaMP", "tdT"]},
        },
    )  # fmt: skip
    rec = open_tiff(path)
    assert list(rec.channels) == ["GCaMP", "tdT"] and rec.shape == (5, 4, 40, 48)
    np.testing.assert_array_equal(rec.channels["tdT"].compute(), data[:, :, 1])
    meta = rec.metadata
    assert meta.source_format == "ome-tiff" and meta.source_version.startswith("tifffile")
    assert meta.pixel_size_um == (0.25, 0.5) and meta.z_step_um == 3.0 and meta.n_planes == 4
    assert meta.frame_period_s == pytest.approx(0.2)
    assert meta.bit_depth is None  # tifffile states SignificantBits=16 for uint16: storage only


def test_imagej_hyperstack_units_and_slices_as_frames(tmp_path, movie):
    data = movie[:48].reshape(8, 3, 2, 40, 48)  # T Z C Y X
    tifffile.imwrite(
        tmp_path / "hyper.tif", data, imagej=True, resolution=(2.0, 4.0),
        metadata={"axes": "TZCYX", "spacing": 2.5, "unit": "micron", "finterval": 50,
                  "tunit": "ms"},
    )  # fmt: skip
    rec = open_tiff(tmp_path / "hyper.tif")
    assert list(rec.channels) == ["Ch1", "Ch2"] and rec.shape == (8, 3, 40, 48)
    np.testing.assert_array_equal(rec.channels["Ch2"].compute(), data[:, :, 1])
    meta = rec.metadata
    assert meta.frame_period_s == pytest.approx(0.05) and meta.z_step_um == 2.5
    assert meta.pixel_size_um == pytest.approx((0.25, 0.5)) and meta.source_version == "1.11a"
    # a plain ImageJ stack is "slices": read as frames, and its spacing is not a z step
    tifffile.imwrite(
        tmp_path / "slices.tif", movie[:12], imagej=True, metadata={"axes": "ZYX", "spacing": 2}
    )
    rec = open_tiff(tmp_path / "slices.tif")
    assert rec.shape == (12, 40, 48) and rec.metadata.n_planes == 1
    assert rec.metadata.z_step_um is None and rec.metadata.pixel_size_um is None


def test_generic_pages_resolution_units_and_pickled_graph(tmp_path, movie):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tw:  # pages with IFDs in between: not contiguous
        for frame in movie[:20]:
            tw.write(
                frame, contiguous=False, metadata=None, resolution=(2e3, 4e3),
                resolutionunit="MILLIMETER",
            )  # fmt: skip
    rec = open_tiff(path)
    assert rec.metadata.pixel_size_um == pytest.approx((0.25, 0.5))  # 4000 and 2000 px/mm
    clone = pickle.loads(pickle.dumps(rec.movie))  # the open TiffFile is not pickled
    np.testing.assert_array_equal(clone[::3].compute(), movie[:20:3])
    tifffile.imwrite(tmp_path / "dpi.tif", movie[:5], resolution=(72, 72), resolutionunit="INCH")
    assert open_tiff(tmp_path / "dpi.tif").metadata.pixel_size_um is None  # a dpi is no pixel size


def test_scanimage_frame_data_parsing():
    framedata = {
        "SI.VERSION_MAJOR": 2020, "SI.VERSION_MINOR": 1,
        "SI.hRoiManager.scanFramePeriod": 0.0333, "SI.hRoiManager.scanVolumeRate": 7.5,
        "SI.hStackManager.enable": True, "SI.hFastZ.enable": True,
        "SI.hStackManager.numSlices": 4, "SI.hStackManager.stackZStepSize": 15,
        "SI.hStackManager.framesPerSlice": 1, "SI.hFastZ.discardFlybackFrames": True,
        "SI.hChannels.channelSave": [[1], [2]], "SI.hChannels.channelName": ["G", "R", "3", "4"],
        "SI.hChannels.channelAdcResolution": [14, 14, 14, 14],
        "SI.hRoiManager.imagingFovUm": [[-256, -128], [256, -128], [256, 128], [-256, 128]],
    }  # fmt: skip
    fields = scanimage_fields(framedata, (128, 256))
    assert fields["frame_period_s"] == pytest.approx(1 / 7.5) and fields["z_step_um"] == 15
    assert fields["pixel_size_um"] == (2.0, 2.0) and fields["channel_names"] == ("G", "R")
    assert fields["bit_depth"] == 14 and fields["source_version"] == "2020.1"
    # 10 volumes x 4 slices x 2 channels, plus 3 pages of an aborted volume
    layout = scanimage_layout({"FrameData": framedata}, 83, (83,), "I")
    assert layout == ((10, 4, 1, 2), "TZIC", 3)
    single = {"SI.hRoiManager.scanFramePeriod": 0.05, "SI.hScan2D.logAverageFactor": 2}
    assert scanimage_fields(single, (8, 8))["frame_period_s"] == pytest.approx(0.1)
    assert scanimage_layout({"FrameData": single}, 30, (30,), "I") == ((30, 1, 1, 1), "TZIC", 0)


def test_load_images_multichannel_needs_channel(tmp_path, movie):
    data = movie[:10].reshape(5, 2, 40, 48)
    tifffile.imwrite(tmp_path / "two.tif", data, imagej=True, metadata={"axes": "TCYX"})
    with pytest.raises(ParameterError, match="pass channel="):
        load_images(tmp_path / "two.tif")
    np.testing.assert_array_equal(load_images(tmp_path / "two.tif", channel=1), data[:, 1])
    np.testing.assert_array_equal(load_images(tmp_path / "two.tif", channel="Ch1"), data[:, 0])
    with pytest.raises(ParameterError, match="no channel 'green'"):
        load_images(tmp_path / "two.tif", channel="green")


# ------------------------------------------------------------------ writer behaviour


def test_overwrite_refusal_and_stale_parts(tmp_path, movie):
    files = save_images(tmp_path, movie, 0.0001)
    assert len(files) == 3
    with pytest.raises(OutputExistsError, match=r"images_00000\.tif"):
        save_images(tmp_path, movie)
    with pytest.raises(OutputExistsError, match=r"images_00000\.tif"):
        save_images(tmp_path / "images.tif", movie[:5])  # parts of the same output set exist
    assert _files(tmp_path) == [f.name for f in files]
    save_images(tmp_path, movie[:30], 0.0001, overwrite=True)  # 2 parts; the third is stale
    assert _files(tmp_path) == ["images_00000.tif", "images_00001.tif"]
    np.testing.assert_array_equal(open_tiff_folder(tmp_path).movie.compute(), movie[:30])
    save_images(tmp_path, movie[:4], overwrite=True)
    assert _files(tmp_path) == ["images.tif"]


def test_cancel_and_failure_leave_no_part(tmp_path, monkeypatch, movie):
    with pytest.raises(OperationCancelled):
        save_images(tmp_path, movie, 0.0001, should_stop=lambda: True)
    assert _files(tmp_path) == []
    calls = []
    original = tiff_module._write_part

    def second_part_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    monkeypatch.setattr(tiff_module, "_write_part", second_part_fails)
    with pytest.raises(OSError, match="disk full"):
        save_images(tmp_path, movie, 0.0001)
    assert _files(tmp_path) == []  # the finished first part was never renamed into place
    with pytest.raises(ParameterError, match="smaller than one frame"):
        save_images(tmp_path, movie, 1e-9)
    with pytest.raises(ParameterError, match="size_cap"):
        save_images(tmp_path, movie, 0)


# ------------------------------------------------------------------ bad input


def _contiguous(path, movie):
    tifffile.imwrite(path, movie, imagej=True, metadata={"axes": "TYX"})


def _compressed(path, movie):
    tifffile.imwrite(path, movie, compression="zlib", metadata={"axes": "TYX"})


def _pages(path, movie):
    with tifffile.TiffWriter(path) as tw:
        for frame in movie:
            tw.write(frame, contiguous=False, metadata=None)


@pytest.mark.parametrize("writer", [_contiguous, _compressed, _pages])
@pytest.mark.parametrize("fraction", [0.003, 0.05, 0.4, 0.8, 0.97, 0.999])
def test_truncated_files_raise_recording_error(tmp_path, movie, writer, fraction):
    whole = tmp_path / "whole.tif"
    writer(whole, movie)
    cut = tmp_path / "cut.tif"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(RecordingError, match=r"cut\.tif") as info:
        open_tiff(cut)
    assert "truncated" in str(info.value) or "damaged" in str(info.value)


def test_truncated_real_movie(tmp_path):
    data = NEUROFINDER.read_bytes()
    (tmp_path / "half.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match=r"half\.tif: truncated"):
        open_tiff(tmp_path / "half.tif")


def test_corrupt_pixel_data_fails_at_read_with_our_error(tmp_path, movie):
    path = tmp_path / "flip.tif"
    _compressed(path, movie[:10])
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[4].dataoffsets[0]
    data = bytearray(path.read_bytes())
    data[offset : offset + 64] = bytes(64)  # zero the start of page 4's zlib stream
    path.write_bytes(bytes(data))
    rec = open_tiff(path)
    np.testing.assert_array_equal(rec.movie[0].compute(), movie[0])
    with pytest.raises(RecordingError, match=r"flip\.tif: cannot read pages 4-4"):
        rec.movie[4].compute()


def test_not_tiff_zero_pages_and_folders(tmp_path, movie):
    (tmp_path / "fake.tif").write_text("hello, I am a text file")
    with pytest.raises(RecordingError, match=r"fake\.tif: not a readable TIFF"):
        open_tiff(tmp_path / "fake.tif")
    (tmp_path / "zero.tif").write_bytes(b"II*\x00\x00\x00\x00\x00")
    with pytest.raises(RecordingError, match=r"zero\.tif: contains no images"):
        open_tiff(tmp_path / "zero.tif")
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(RecordingError, match=r"empty\.tif"):
        open_tiff(tmp_path / "empty.tif")
    with pytest.raises(RecordingError, match="no such file"):
        open_tiff(tmp_path / "missing.tif")
    with pytest.raises(RecordingError, match="use open_tiff_folder"):
        open_tiff(tmp_path)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(RecordingError, match=r"nothing: no \.tif/\.tiff files"):
        open_tiff_folder(tmp_path / "nothing")
    with pytest.raises(RecordingError, match="not a folder"):
        open_tiff_folder(tmp_path / "zero.tif")


def test_folder_with_odd_stack_names_it(tmp_path, movie):
    tifffile.imwrite(tmp_path / "a_1.tif", movie[:10])
    tifffile.imwrite(tmp_path / "a_2.tif", movie[:10, :30])
    with pytest.raises(RecordingError, match=r"a_2\.tif: holds .* of 30x48 uint16 but a_1\.tif"):
        open_tiff_folder(tmp_path)
    (tmp_path / "a_2.tif").unlink()
    tifffile.imwrite(tmp_path / "a_3.tif", movie[:10].astype(np.float32))
    with pytest.raises(RecordingError, match=r"a_3\.tif: holds .* float32"):
        open_tiff_folder(tmp_path)
    (tmp_path / "a_3.tif").unlink()
    (tmp_path / "a_4.tif").write_bytes(b"MM\x00*garbage")
    with pytest.raises(RecordingError, match=r"a_4\.tif"):
        open_tiff_folder(tmp_path)

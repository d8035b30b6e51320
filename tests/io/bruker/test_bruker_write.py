"""Writing synthetic PrairieView T-series folders (io.bruker_write) and reading them back."""

from __future__ import annotations

import xml.etree.ElementTree as ET

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
    ShapeError,
)
from napari_calcium.io.bruker.series import parse_prairieview_xml
from napari_calcium.io.bruker.write import write_prairieview


def _movie(n=12, y=16, x=20, seed=0):
    return np.random.default_rng(seed).integers(0, 65536, (n, y, x), dtype=np.uint16)


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir())


def test_round_trip_is_exact_with_metadata(tmp_path):
    movie = _movie()
    folder = write_prairieview(
        tmp_path / "TSeries-demo-001", movie, frame_rate_hz=30.0, pixel_size_um=(0.8, 1.1)
    )
    assert folder == tmp_path / "TSeries-demo-001" and _leftovers(tmp_path) == [folder.name]
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "TSeries-demo-001.xml"
    assert names[1] == "TSeries-demo-001_Cycle00001_Ch2_000001.ome.tif"
    assert names[-1] == "TSeries-demo-001_Cycle00001_Ch2_000012.ome.tif"
    rec = nc.open_recording(folder)
    assert rec.metadata.source_format == "bruker"
    assert list(rec.channels) == ["Ch2"] and rec.metadata.channel_names == ("Ch2",)
    assert rec.movie.dtype == np.uint16
    np.testing.assert_array_equal(np.asarray(rec.movie), movie)
    assert rec.metadata.frame_rate_hz == pytest.approx(30.0, rel=1e-12)
    assert rec.metadata.pixel_size_um == pytest.approx((0.8, 1.1))
    np.testing.assert_allclose(rec.metadata.timestamps_s, np.arange(12) / 30.0, atol=1e-12)
    extra = rec.metadata.extra
    assert extra["lines_per_frame"] == 16 and extra["pixels_per_line"] == 20
    assert extra["layout"] == "time-series" and extra["sequence_type"] == "TSeries Timed Element"


def test_xml_looks_like_prairieview(tmp_path):
    folder = write_prairieview(tmp_path / "TSeries-a-001", _movie(n=3), frame_rate_hz=20.0)
    raw = (folder / "TSeries-a-001.xml").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf<?xml")  # PrairieView's UTF-8 BOM
    root = ET.fromstring(raw.decode("utf-8-sig"))
    assert root.tag == "PVScan" and root.get("version", "").startswith("5.")
    state = {v.get("key"): v.get("value") for v in root.find("PVStateShard")}
    assert float(state["framePeriod"]) == pytest.approx(0.05)
    assert "micronsPerPixel" not in state and "bitDepth" not in state  # not given: not claimed
    (seq,) = root.findall("Sequence")
    frames = seq.findall("Frame")
    assert seq.get("type") == "TSeries Timed Element" and len(frames) == 3
    assert [f.get("index") for f in frames] == ["1", "2", "3"]
    assert float(frames[2].get("relativeTime")) == pytest.approx(0.1)
    assert float(frames[2].get("absoluteTime")) > float(frames[2].get("relativeTime"))
    file_ = frames[1].find("File")
    assert file_.attrib == {
        "channel": "2",
        "channelName": "Ch2",
        "filename": "TSeries-a-001_Cycle00001_Ch2_000002.ome.tif",
    }
    doc = parse_prairieview_xml(folder / "TSeries-a-001.xml")  # our parser, too
    assert doc.sequences[0].frames[0].state["framePeriod"] == state["framePeriod"]
    with tifffile.TiffFile(folder / file_.get("filename")) as tif:
        page = tif.pages[0]
        assert len(tif.pages) == 1 and page.dtype == np.uint16 and page.compression == 1
        assert "napari-calcium" in page.software and tif.is_ome


def test_bit_depth(tmp_path):
    folder = write_prairieview(tmp_path / "t", _movie(n=2) >> 3, frame_rate_hz=5, bit_depth=13)
    assert nc.open_recording(folder).metadata.bit_depth == 13
    with pytest.raises(ParameterError, match="bit_depth"):
        write_prairieview(tmp_path / "u", _movie(n=2), frame_rate_hz=5, bit_depth=17)


def test_channel_name_and_default_name_from_folder(tmp_path):
    folder = write_prairieview(tmp_path / "run7", _movie(n=2), frame_rate_hz=5, channel=3)
    assert (folder / "run7_Cycle00001_Ch3_000001.ome.tif").exists()
    rec = nc.open_recording(folder)
    assert list(rec.channels) == ["Ch3"]
    other = write_prairieview(tmp_path / "x", _movie(n=2), frame_rate_hz=5, name="TSeries-b-002")
    assert (other / "TSeries-b-002.xml").exists()


def test_reader_is_lazy(tmp_path):
    movie = _movie(n=40)
    folder = write_prairieview(tmp_path / "TSeries-lazy-001", movie, frame_rate_hz=30.0)
    rec = nc.open_recording(folder)
    assert isinstance(rec.movie, da.Array) and rec.movie.numblocks[0] > 1
    # pixels are read when computed, not when opened: a frame changed after opening shows up
    changed = np.full(movie.shape[1:], 7, dtype=np.uint16)
    tifffile.imwrite(folder / "TSeries-lazy-001_Cycle00001_Ch2_000031.ome.tif", changed)
    np.testing.assert_array_equal(np.asarray(rec.movie[30]), changed)
    np.testing.assert_array_equal(np.asarray(rec.movie[29]), movie[29])


def test_float_dask_input_and_progress(tmp_path):
    movie = _movie(n=30).astype(np.float32) + 0.3
    lazy = da.from_array(movie, chunks=(7, -1, -1))
    seen = []

    class Bar:
        def __init__(self, total, desc=None):
            seen.append(total)

        def update(self, n):
            seen.append(n)

        def close(self):
            seen.append("closed")

    folder = write_prairieview(tmp_path / "TSeries-f-001", lazy, frame_rate_hz=10, progress=Bar)
    np.testing.assert_array_equal(np.asarray(nc.open_recording(folder).movie), np.rint(movie))
    assert seen[0] == 30 and sum(v for v in seen[1:-1]) == 30 and seen[-1] == "closed"


def test_refuses_to_overwrite_unless_asked(tmp_path):
    target = tmp_path / "TSeries-demo-001"
    write_prairieview(target, _movie(seed=1), frame_rate_hz=30.0)
    xml = target / "TSeries-demo-001.xml"
    before = xml.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        write_prairieview(target, _movie(seed=2), frame_rate_hz=15.0)
    assert xml.read_bytes() == before and _leftovers(tmp_path) == [target.name]
    write_prairieview(target, _movie(n=5, seed=2), frame_rate_hz=15.0, overwrite=True)
    rec = nc.open_recording(target)
    np.testing.assert_array_equal(np.asarray(rec.movie), _movie(n=5, seed=2))
    assert rec.metadata.frame_rate_hz == pytest.approx(15.0)
    assert _leftovers(tmp_path) == [target.name]  # the old frames are gone, no temp folders


def test_overwrite_never_replaces_a_foreign_folder(tmp_path):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.docx").write_text("years of work")
    with pytest.raises(RecordingError, match="not a PrairieView folder"):
        write_prairieview(precious, _movie(), frame_rate_hz=30.0, overwrite=True)
    assert _leftovers(precious) == ["chapter1.docx"] and _leftovers(tmp_path) == ["thesis"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(RecordingError, match="not a folder"):
        write_prairieview(afile, _movie(), frame_rate_hz=30.0, overwrite=True)
    assert afile.read_text() == "x"


@pytest.mark.parametrize(
    ("movie", "kwargs", "error", "match"),
    [
        (np.zeros((4, 5), np.uint16), {}, ShapeError, "frames, y, x"),
        (np.zeros((2, 1, 4, 5), np.uint16), {}, ShapeError, r"got shape \(2, 1, 4, 5\)"),
        (np.zeros((0, 4, 5), np.uint16), {}, ShapeError, "no empty axis"),
        (np.zeros((2, 4, 5), complex), {}, ShapeError, "complex"),
        (np.zeros((2, 4, 5)), {"frame_rate_hz": 0}, ParameterError, "frame_rate_hz"),
        (np.zeros((2, 4, 5)), {"frame_rate_hz": -3.0}, ParameterError, "frame_rate_hz"),
        (np.zeros((2, 4, 5)), {"frame_rate_hz": None}, ParameterError, "frame_rate_hz"),
        (np.zeros((2, 4, 5)), {"pixel_size_um": 0}, ParameterError, "pixel_size_um"),
        (np.zeros((2, 4, 5)), {"channel": 0}, ParameterError, "channel"),
        (np.zeros((2, 4, 5)), {"name": "a/b"}, ParameterError, "name="),
        (np.zeros((2, 4, 5)), {"name": "x_Cycle00002_y"}, ParameterError, "name="),
        (np.full((2, 4, 5), 70000.0), {}, ParameterError, "uint16"),
        (np.full((2, 4, 5), -1, np.int16), {}, ParameterError, "uint16"),
        (np.full((2, 4, 5), np.nan), {}, ParameterError, "NaN"),
    ],
)
def test_bad_input_is_named_and_leaves_nothing(tmp_path, movie, kwargs, error, match):
    kwargs = {"frame_rate_hz": 30.0, **kwargs}
    with pytest.raises(error, match=match):
        write_prairieview(tmp_path / "TSeries-bad-001", movie, **kwargs)
    assert _leftovers(tmp_path) == []


def test_bad_values_late_in_the_movie_leave_nothing(tmp_path):
    movie = np.zeros((20, 8, 8), np.float32)
    movie[17, 3, 3] = 1e6  # found only when the last block is written
    lazy = da.from_array(movie, chunks=(5, -1, -1))
    with pytest.raises(ParameterError, match="frame 17 holds 0 to 1e"):
        write_prairieview(tmp_path / "TSeries-bad-001", lazy, frame_rate_hz=30.0)
    assert _leftovers(tmp_path) == []


def test_cancelled_or_failed_write_leaves_nothing(tmp_path):
    lazy = da.from_array(_movie(n=20), chunks=(5, -1, -1))
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 7

    with pytest.raises(OperationCancelled, match="after 7 of 20 frames"):
        write_prairieview(tmp_path / "TSeries-c-001", lazy, frame_rate_hz=30.0, should_stop=stop)
    assert len(calls) == 8 and _leftovers(tmp_path) == []

    def boom(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 2:
            raise OSError(28, "No space left on device")
        return block

    failing = lazy.map_blocks(boom, dtype=np.uint16)
    with pytest.raises(OSError, match="No space left"):
        write_prairieview(tmp_path / "TSeries-c-001", failing, frame_rate_hz=30.0)
    assert _leftovers(tmp_path) == []


def test_missing_parent_folder(tmp_path):
    with pytest.raises(RecordingError, match="does not exist"):
        write_prairieview(tmp_path / "no" / "TSeries-x-001", _movie(), frame_rate_hz=30.0)

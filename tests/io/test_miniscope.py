"""UCLA Miniscope DAQ folders: written by write_miniscope in the DAQ software's layout, read back
lazily over all segments in numeric order, with time stamps, dropped frames and device metadata."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import av
import numpy as np
import pytest

from napari_calcium.errors import (
    MetadataError,
    OutputExistsError,
    ParameterError,
    RecordingError,
)
from napari_calcium.io import video as video_mod
from napari_calcium.io.miniscope import (
    DroppedFramesWarning,
    is_miniscope_folder,
    open_miniscope,
    read_head_orientation,
    read_timestamps,
    write_miniscope,
)

N, H, W, RATE, SEG = 60, 24, 32, 30.0, 5  # 12 segments: 0.avi ... 11.avi


def _movie(n: int = N) -> np.ndarray:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:H, :W]
    return np.stack([(xx * 5 + yy + 3 * t) % 180 + rng.integers(0, 60, (H, W)) for t in range(n)])


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("miniscope")
    movie = _movie().astype(np.uint8)
    out = {}
    for codec in ("ffv1", "rawvideo", "mpeg4"):
        out[codec] = write_miniscope(
            root / f"exp_{codec}", movie, frame_rate_hz=RATE, segment_frames=SEG, codec=codec,
            device_name="My V4 Miniscope", gain="Medium", led_power_percent=23, ewl=-12,
            head_orientation=True,
        )  # fmt: skip
    return out


def _stamps_ms(kept: np.ndarray) -> np.ndarray:
    return np.rint(kept * 1000.0 / RATE)


@pytest.mark.parametrize("codec", ["ffv1", "rawvideo"])
def test_lossless_round_trip_over_twelve_segments_in_numeric_order(folders, codec):
    folder = folders[codec]
    device = folder / "My_V4_Miniscope"
    names = sorted(p.name for p in device.glob("*.avi"))
    assert names[:4] == ["0.avi", "1.avi", "10.avi", "11.avi"]  # lexical order is wrong
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped: no warning
        rec = open_miniscope(folder)
    assert rec.shape == (N, H, W) and rec.movie.dtype == np.uint8
    np.testing.assert_array_equal(rec.movie.compute(), _movie())
    extra = rec.metadata.extra
    assert extra["segments"] == [f"{i}.avi" for i in range(12)]
    assert extra["segment_frames"] == [SEG] * 12
    assert extra["dropped_frames"] == [] and extra["n_dropped_frames"] == 0
    np.testing.assert_array_equal(rec.metadata.timestamps_s, _stamps_ms(np.arange(N)) / 1000)
    assert rec.movie.chunks[0] == (SEG,) * 12  # one chunk never spans two files


def test_metadata_from_the_device_and_experiment_files(folders):
    rec = open_miniscope(folders["ffv1"])
    meta = rec.metadata
    assert meta.source_format == "miniscope" and meta.source_version == "Miniscope_V4_BNO"
    assert meta.frame_rate_hz == pytest.approx(RATE, rel=2e-3)  # whole-ms time stamps
    assert meta.channel_names == ("My V4 Miniscope",) and meta.bit_depth == 8
    extra = meta.extra
    assert extra["device_name"] == "My V4 Miniscope" and extra["device_type"] == "Miniscope_V4_BNO"
    assert extra["nominal_frame_rate_hz"] == RATE and extra["gain"] == "Medium"
    assert extra["led_power_percent"] == 23 and extra["focus"] == -12
    assert extra["compression"] == "FFV1" and extra["frames_per_file"] == SEG
    assert extra["roi"] == {"height": H, "leftEdge": 0, "topEdge": 0, "width": W}
    assert extra["start_time"] is not None and extra["codec"] == "ffv1"
    assert extra["devices"] == ["My_V4_Miniscope"]
    head = read_head_orientation(extra["head_orientation_file"])
    assert head.shape == (N, 5)
    np.testing.assert_array_equal(head[:, 0], _stamps_ms(np.arange(N)))
    json.dumps(meta.to_dict())  # JSON-friendly


def test_device_folder_and_single_segment(folders):
    device = folders["ffv1"] / "My_V4_Miniscope"
    assert open_miniscope(device).shape == (N, H, W)
    one = open_miniscope(device / "10.avi")
    assert one.shape == (SEG, H, W) and one.path == device / "10.avi"
    np.testing.assert_array_equal(one.movie.compute(), _movie()[50:55])
    np.testing.assert_array_equal(one.metadata.timestamps_s, _stamps_ms(np.arange(50, 55)) / 1000)


def test_is_miniscope_folder(folders, tmp_path):
    device = folders["ffv1"] / "My_V4_Miniscope"
    assert is_miniscope_folder(folders["ffv1"]) and is_miniscope_folder(device)
    assert is_miniscope_folder(device / "3.avi")
    assert not is_miniscope_folder(tmp_path) and not is_miniscope_folder(device / "metaData.json")
    assert not is_miniscope_folder(tmp_path / "nothing")


def test_opening_decodes_no_frame(folders, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("opening must not decode")

    monkeypatch.setattr(video_mod._Reader, "decoded", refuse)
    monkeypatch.setattr(video_mod, "_scan_packets", refuse)
    assert open_miniscope(folders["ffv1"]).n_frames == N


def test_mpeg4_random_access_equals_sequential_decode(folders):
    device = folders["mpeg4"] / "My_V4_Miniscope"
    reference = []
    for i in range(12):
        with av.open(str(device / f"{i}.avi")) as container:
            stream = container.streams.video[0]
            reference += [f.to_ndarray(format="gray") for f in container.decode(stream)]
    reference = np.stack(reference)
    movie = open_miniscope(folders["mpeg4"]).movie
    for k in np.random.default_rng(1).permutation(N)[:15]:
        np.testing.assert_array_equal(movie[int(k)].compute(), reference[k])
    np.testing.assert_array_equal(movie.compute(scheduler="threads"), reference)
    assert np.abs(reference.astype(int) - _movie()).mean() < 12  # lossy, but the same movie


def test_dropped_frame_is_reported(tmp_path):
    movie = _movie(20).astype(np.uint8)
    folder = write_miniscope(tmp_path / "exp", movie, frame_rate_hz=RATE, segment_frames=8,
                             dropped=[11])  # fmt: skip
    with pytest.warns(DroppedFramesWarning, match="after frame 10"):
        rec = open_miniscope(folder)
    np.testing.assert_array_equal(rec.movie.compute(), np.delete(movie, 11, axis=0))
    (drop,) = rec.metadata.extra["dropped_frames"]
    assert drop["after_frame"] == 10 and drop["n_missing"] == 1 and drop["source"] == "time stamps"
    assert drop["gap_s"] == pytest.approx(0.067)
    kept = np.delete(np.arange(20), 11)
    np.testing.assert_array_equal(rec.metadata.timestamps_s, _stamps_ms(kept) / 1000)


def test_frame_count_mismatch_is_reported(tmp_path):
    folder = write_miniscope(tmp_path / "exp", _movie(12).astype(np.uint8), frame_rate_hz=RATE,
                             segment_frames=5)  # fmt: skip
    csv = folder / "Miniscope" / "timeStamps.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:-2]) + "\n")  # two time stamps fewer than frames
    with pytest.warns(DroppedFramesWarning, match="frame count"):
        rec = open_miniscope(folder)
    (drop,) = rec.metadata.extra["dropped_frames"]
    assert drop["n_missing"] == 2 and "10 rows" in drop["source"] and "12 frames" in drop["source"]
    assert rec.metadata.timestamps_s.shape == (12,)
    assert np.all(np.diff(rec.metadata.timestamps_s) > 0)


def test_read_timestamps_and_wrong_columns(folders, tmp_path):
    frames, times = read_timestamps(folders["ffv1"] / "My_V4_Miniscope")
    np.testing.assert_array_equal(frames, np.arange(N))
    np.testing.assert_array_equal(times, _stamps_ms(np.arange(N)))
    folder = write_miniscope(tmp_path / "exp", _movie(6).astype(np.uint8), frame_rate_hz=RATE)
    csv = folder / "Miniscope" / "timeStamps.csv"
    csv.write_text("frame,time\n0,0\n1,33\n")
    with pytest.raises(MetadataError, match="unexpected columns") as err:
        open_miniscope(folder)
    assert str(csv) in str(err.value)
    csv.write_text("Frame Number,Time Stamp (ms),Buffer Index\n0,0,0\n1,abc,0\n")
    with pytest.raises(MetadataError, match="line 3") as err:
        open_miniscope(folder)
    assert str(csv) in str(err.value)


def test_bad_folders_raise_recording_error_naming_the_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RecordingError, match="no Miniscope recording") as err:
        open_miniscope(empty)
    assert str(empty) in str(err.value)
    folder = write_miniscope(tmp_path / "cut", _movie(30).astype(np.uint8), frame_rate_hz=RATE,
                             segment_frames=10)  # fmt: skip
    avi = folder / "Miniscope" / "2.avi"
    data = avi.read_bytes()
    avi.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match="cut short") as err:
        open_miniscope(folder)
    assert str(avi) in str(err.value)
    (folder / "Miniscope" / "1.avi").unlink()
    with pytest.raises(RecordingError, match=r"segment 1\.avi is missing"):
        open_miniscope(folder)
    bad_json = write_miniscope(tmp_path / "json", _movie(4).astype(np.uint8), frame_rate_hz=RATE)
    meta = bad_json / "Miniscope" / "metaData.json"
    meta.write_text("{not json")
    with pytest.raises(MetadataError) as err:
        open_miniscope(bad_json)
    assert str(meta) in str(err.value)


def test_writer_refuses_to_overwrite_and_leaves_nothing_on_failure(tmp_path):
    movie = _movie(6).astype(np.uint8)
    folder = write_miniscope(tmp_path / "exp", movie, frame_rate_hz=RATE)
    with pytest.raises(OutputExistsError):
        write_miniscope(folder, movie, frame_rate_hz=RATE)
    write_miniscope(folder, movie[:3], frame_rate_hz=RATE, overwrite=True)
    assert open_miniscope(folder).n_frames == 3
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(RecordingError, match="not a Miniscope folder"):
        write_miniscope(other, movie, frame_rate_hz=RATE, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"
    with pytest.raises(ParameterError, match="0-255"):
        write_miniscope(tmp_path / "bad", movie.astype(np.int16) * 100, frame_rate_hz=RATE)
    with pytest.raises(ParameterError, match="codec"):
        write_miniscope(tmp_path / "bad", movie, frame_rate_hz=RATE, codec="h265")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp", "other"]  # no partial folder


def test_timestamps_without_buffer_index_and_an_empty_file(tmp_path):
    folder = write_miniscope(tmp_path / "exp", _movie(6).astype(np.uint8), frame_rate_hz=RATE)
    csv = folder / "Miniscope" / "timeStamps.csv"
    csv.write_text("Frame Number,Time Stamp (ms)\n" + "".join(f"{i},{i * 50}\n" for i in range(6)))
    rec = open_miniscope(folder)
    np.testing.assert_allclose(rec.metadata.timestamps_s, np.arange(6) * 0.05)
    assert rec.metadata.frame_rate_hz == pytest.approx(20.0)
    csv.write_text("")
    with pytest.raises(MetadataError, match="unexpected columns") as err:
        open_miniscope(folder)
    assert str(csv) in str(err.value)


def test_experiment_with_a_camera_and_two_miniscopes(tmp_path):
    import shutil

    folder = write_miniscope(tmp_path / "exp", _movie(6).astype(np.uint8), frame_rate_hz=RATE)
    camera = folder / "BehavCam_0"
    shutil.copytree(folder / "Miniscope", camera)
    meta = json.loads((camera / "metaData.json").read_text())
    (camera / "metaData.json").write_text(json.dumps({**meta, "deviceType": "WebCam-320x240"}))
    assert open_miniscope(folder).metadata.extra["devices"] == ["Miniscope"]  # camera skipped
    second = folder / "Scope_2"
    shutil.copytree(folder / "Miniscope", second)
    meta = json.loads((second / "metaData.json").read_text())
    (second / "metaData.json").write_text(json.dumps({**meta, "deviceName": "Scope 2"}))
    rec = open_miniscope(folder)
    assert rec.metadata.extra["device_name"] == "Miniscope"  # the one metaData.json lists
    assert rec.metadata.extra["devices"] == ["Miniscope", "Scope_2"]
    assert open_miniscope(folder, device="Scope 2").metadata.extra["device_name"] == "Scope 2"
    with pytest.raises(RecordingError, match="no Miniscope device 'nope'"):
        open_miniscope(folder, device="nope")


def test_without_timestamps_the_nominal_rate_times_the_frames(tmp_path):
    folder = write_miniscope(tmp_path / "exp", _movie(7).astype(np.uint8), frame_rate_hz=20.0)
    (folder / "Miniscope" / "timeStamps.csv").unlink()
    rec = open_miniscope(folder)
    assert rec.metadata.frame_rate_hz == pytest.approx(20.0)
    np.testing.assert_allclose(rec.metadata.timestamps_s, np.arange(7) / 20.0)
    assert rec.metadata.extra["timestamps_file"] is None
    meta = folder / "Miniscope" / "metaData.json"
    data = json.loads(meta.read_text())
    del data["frameRate"]
    meta.write_text(json.dumps(data))
    rec = open_miniscope(folder)
    assert rec.metadata.frame_period_s is None and rec.metadata.timestamps_s is None

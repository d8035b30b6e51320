"""Video files as lazy movies (PyAV): exact lossless round trips, random access = sequential
decode for every codec, lazy opening, chunking, colour/16-bit, and clear errors."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from napari_calcium.errors import RecordingError
from napari_calcium.io import video as video_mod
from napari_calcium.io.video import (
    VideoFrames,
    is_video_file,
    open_video,
    probe_video,
    video_array,
)

N, H, W = 40, 32, 48


def _movie(n: int = N, seed: int = 0) -> np.ndarray:
    """Moving gradient + noise: lossy codecs keep it recognisable, every frame differs."""
    yy, xx = np.mgrid[:H, :W]
    rng = np.random.default_rng(seed)
    frames = [((xx * 4 + yy * 2 + 5 * t) % 200 + rng.integers(0, 40, (H, W))) for t in range(n)]
    return np.stack(frames).astype(np.uint8)


def write_video(
    path: Path, movie: np.ndarray, codec: str, *, pix_fmt: str, fmt: str | None = None,
    gop: int | None = None, in_format: str = "gray", rate: int = 20,
) -> Path:  # fmt: skip
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = movie.shape[2], movie.shape[1]
        stream.pix_fmt = pix_fmt
        if gop is not None:
            stream.codec_context.gop_size = gop
        for frame in movie:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format=in_format)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _sequential(path: Path) -> np.ndarray:
    """PyAV's own decode of every frame, in order: the reference for lossy codecs."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(stream)])


CASES = {
    "avi-rawvideo": dict(codec="rawvideo", pix_fmt="gray", fmt="avi", name="a.avi"),
    "avi-ffv1-gop12": dict(codec="ffv1", pix_fmt="gray", fmt="avi", gop=12, name="b.avi"),
    "avi-mjpeg": dict(codec="mjpeg", pix_fmt="yuvj420p", fmt="avi", name="c.avi"),
    "avi-mpeg4-gop10": dict(codec="mpeg4", pix_fmt="yuv420p", fmt="avi", gop=10, name="d.avi"),
    "mp4-mpeg4": dict(codec="mpeg4", pix_fmt="yuv420p", fmt="mp4", gop=10, name="e.mp4"),
    "mkv-ffv1": dict(codec="ffv1", pix_fmt="gray", fmt="matroska", gop=7, name="f.mkv"),
}
LOSSLESS = {"avi-rawvideo", "avi-ffv1-gop12", "mkv-ffv1"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    movie = _movie()
    out = {}
    for key, case in CASES.items():
        case = dict(case)
        name = case.pop("name")
        out[key] = write_video(folder / name, movie, **case)
    return out


@pytest.mark.parametrize("key", list(CASES))
def test_full_read_and_random_access_equal_sequential_decode(videos, key):
    path = videos[key]
    rec = open_video(path)
    assert rec.shape == (N, H, W) and rec.movie.dtype == np.uint8
    reference = _sequential(path)
    if key in LOSSLESS:
        np.testing.assert_array_equal(reference, _movie())
    np.testing.assert_array_equal(rec.movie.compute(), reference)
    order = np.random.default_rng(3).permutation(N)
    for k in order[:12]:  # one frame at a time, in random order, through dask
        np.testing.assert_array_equal(rec.movie[int(k)].compute(), reference[k])
    frames = VideoFrames([probe_video(path)])
    np.testing.assert_array_equal(frames[order], reference[order])  # fancy, unsorted
    np.testing.assert_array_equal(frames[N - 1 :: -3, 5:9, ::2], reference[N - 1 :: -3, 5:9, ::2])
    np.testing.assert_array_equal(frames[..., 3], reference[..., 3])
    np.testing.assert_array_equal(frames[[5, 5, 2]], reference[[5, 5, 2]])


@pytest.mark.parametrize("key", ["avi-mpeg4-gop10", "mp4-mpeg4"])
def test_inter_codec_seeks_to_the_keyframe_before(videos, key):
    info = probe_video(videos[key])
    frames = VideoFrames([info])
    frames[13]  # GOP of 10: key frame 10, decodes 10, 11, 12, 13
    assert frames.decoded_frames == 4
    if info.keyframes is not None:
        np.testing.assert_array_equal(info.keyframes, [0, 10, 20, 30])


def test_intra_frames_decode_alone_and_sequential_reads_decode_each_frame_once(videos):
    info = probe_video(videos["avi-rawvideo"])
    frames = VideoFrames([info])
    frames[17]
    assert frames.decoded_frames == 1
    frames = VideoFrames([info])
    for lo in range(0, N, 7):  # chunk after chunk: the open container goes on without seeking
        frames[lo : lo + 7]
    assert frames.decoded_frames == N
    gop = VideoFrames([probe_video(videos["avi-mpeg4-gop10"])])
    for lo in range(0, N, 7):
        gop[lo : lo + 7]
    assert gop.decoded_frames == N


def test_opening_decodes_nothing_and_avi_reads_no_packets(videos, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("opening must not decode or scan")

    monkeypatch.setattr(video_mod._Reader, "decoded", refuse)
    monkeypatch.setattr(video_mod, "_scan_packets", refuse)
    rec = open_video(videos["avi-ffv1-gop12"])  # AVI: header and index only
    assert rec.n_frames == N
    monkeypatch.undo()
    monkeypatch.setattr(video_mod._Reader, "decoded", refuse)
    assert open_video(videos["mkv-ffv1"]).n_frames == N  # packet scan, still no decoding


def test_metadata_and_timestamps(videos):
    for key in ("avi-ffv1-gop12", "mp4-mpeg4", "mkv-ffv1"):
        meta = open_video(videos[key]).metadata
        assert meta.source_format == "video"
        assert meta.frame_rate_hz == pytest.approx(20.0)
        np.testing.assert_allclose(meta.timestamps_s, np.arange(N) / 20.0, atol=1e-9)
        assert meta.bit_depth == 8 and meta.channel_names == ("Ch1",)
        assert meta.extra["codec"] == CASES[key]["codec"]


def test_chunks_never_span_files_and_the_graph_pickles(videos):
    infos = [probe_video(videos["avi-ffv1-gop12"]), probe_video(videos["avi-rawvideo"])]
    movie = video_array(infos, chunk_bytes=H * W * 15)
    assert movie.shape == (2 * N, H, W)
    assert movie.chunks[0] == (12, 12, 12, 4, 15, 15, 10)  # FFV1: from key frame to key frame
    mpeg4 = video_array([probe_video(videos["avi-mpeg4-gop10"])], chunk_bytes=H * W * 15)
    assert mpeg4.chunks[0] == (10, 10, 10, 10)
    gop = video_array([probe_video(videos["avi-mpeg4-gop10"])], chunk_bytes=H * W * 4)
    assert gop.chunks[0] == (10, 10, 10, 10)  # a GOP is not split up to 4x the chunk size
    assert video_array(infos, chunk_bytes=H * W * 2).chunks[0][:7] == (2,) * 6 + (2,)  # split
    expected = np.concatenate([_movie(), _movie()])
    np.testing.assert_array_equal(movie.compute(scheduler="threads"), expected)
    clone = pickle.loads(pickle.dumps(movie))
    np.testing.assert_array_equal(clone[35:45].compute(), expected[35:45])


def test_colour_becomes_luma_and_16_bit_stays_16_bit(tmp_path):
    rgb = np.zeros((4, H, W, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    path = write_video(tmp_path / "rgb.avi", rgb, "rawvideo", pix_fmt="bgr24", fmt="avi",
                       in_format="rgb24")  # fmt: skip
    gray = open_video(path).movie.compute()
    assert gray.shape == (4, H, W)
    luma = 0.299 * 200 + 0.587 * 100 + 0.114 * 50
    assert np.abs(gray.astype(float) - luma).max() <= 2
    deep = (np.arange(3 * H * W, dtype=np.uint16).reshape(3, H, W) * 13) % 65535
    path = write_video(tmp_path / "deep.mkv", deep, "ffv1", pix_fmt="gray16le", fmt="matroska",
                       in_format="gray16le")  # fmt: skip
    rec = open_video(path)
    assert rec.movie.dtype == np.uint16 and rec.metadata.bit_depth == 16
    np.testing.assert_array_equal(rec.movie.compute(), deep)


def test_bad_files_raise_recording_error_naming_the_file(tmp_path, videos):
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    data = videos["avi-ffv1-gop12"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 6 // 10])
    for path in (empty, junk, cut, tmp_path / "missing.avi", tmp_path):
        with pytest.raises(RecordingError) as info:
            open_video(path)
        assert str(path) in str(info.value)
    with pytest.raises(RecordingError, match="cut short"):
        open_video(cut)


def test_a_damaged_frame_is_a_recording_error_at_read_time(tmp_path, videos):
    data = bytearray(videos["avi-rawvideo"].read_bytes())
    info = probe_video(videos["avi-rawvideo"])
    path = tmp_path / "damaged.avi"
    path.write_bytes(bytes(data))
    frames = VideoFrames([info.__class__(**{**info.__dict__, "path": path, "n_frames": N + 3})])
    with pytest.raises(RecordingError, match="ends before frame") as err:
        frames[N + 1]
    assert str(path) in str(err.value)


def test_missing_pyav_says_how_to_install(videos, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(RecordingError, match=r"pip install napari-calcium\[video\]"):
        open_video(videos["avi-rawvideo"])


def test_is_video_file(videos, tmp_path):
    assert is_video_file(videos["avi-rawvideo"]) and is_video_file(videos["mkv-ffv1"])
    assert not is_video_file(tmp_path) and not is_video_file(tmp_path / "nope.avi")
    (tmp_path / "x.tif").write_bytes(b"")
    assert not is_video_file(tmp_path / "x.tif")

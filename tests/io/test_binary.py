"""Binary movies: CalSciPy .bin + .json (read, lazy open, write) and suite2p data.bin + ops.npy."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.errors import (
    MetadataError,
    OperationCancelled,
    OutputExistsError,
    ParameterError,
    RecordingError,
    ShapeError,
)
from napari_calcium.io._common import MappedArray
from napari_calcium.io.binary import load_binary, open_binary, save_binary
from napari_calcium.io.suite2p_binary import open_suite2p_binary

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SUITE2P_PLANE = DATA / "suite2p_output_calscipy" / "plane0"


@pytest.fixture(scope="module")
def movie() -> np.ndarray:
    return nc.simulate_recording(n_frames=40, shape=(24, 32), n_neurons=3, seed=5).movie


def _calscipy_pair(folder: Path, array: np.ndarray, name: str = "binary_video", **meta) -> Path:
    """Files as CalSciPy writes them: raw bytes + {"frames", "y", "x", "dtype"}."""
    folder.mkdir(parents=True, exist_ok=True)
    array.tofile(folder / f"{name}.bin")
    keys = {"frames": array.shape[0], "y": array.shape[1], "x": array.shape[2]}
    keys["dtype"] = str(array.dtype)
    keys.update(meta)
    (folder / f"{name}.json").write_text(json.dumps(keys))
    return folder / f"{name}.bin"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------ round trips


def test_save_open_round_trip_values_dtype_metadata(tmp_path, movie):
    path = save_binary(tmp_path / "out", movie, frame_rate_hz=15.0, pixel_size_um=(0.8, 0.5))
    assert path == tmp_path / "out" / "binary_video.bin"  # CalSciPy's default name in a folder
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar == {
        "frames": 40, "y": 24, "x": 32, "dtype": "uint16",
        "frame_rate_hz": 15.0, "pixel_size_um": [0.8, 0.5],
    }  # fmt: skip
    rec = open_binary(tmp_path / "out")
    assert isinstance(rec.movie, da.Array) and rec.shape == (40, 24, 32)
    assert rec.movie.dtype == np.uint16
    np.testing.assert_array_equal(rec.movie.compute(), movie)
    meta = rec.metadata
    assert meta.source_format == "binary" and meta.channel_names == ("Ch1",)
    assert meta.frame_period_s == pytest.approx(1 / 15) and meta.frame_rate_hz == pytest.approx(15)
    assert meta.pixel_size_um == (0.8, 0.5) and meta.n_planes == 1
    np.testing.assert_allclose(meta.timestamps_s, np.arange(40) / 15)
    assert meta.bit_depth is None and meta.z_step_um is None
    for spelled in (path, path.with_suffix(".json"), path.with_suffix("")):  # file, json, stem
        np.testing.assert_array_equal(load_binary(spelled), movie)


def test_plain_save_is_exactly_calscipy_and_unknowns_are_none(tmp_path, movie):
    path = save_binary(tmp_path / "m.bin", movie.astype(np.float32))
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar == {"frames": 40, "y": 24, "x": 32, "dtype": "float32"}
    meta = open_binary(path).metadata
    assert meta.frame_period_s is None and meta.timestamps_s is None
    assert meta.pixel_size_um is None and meta.frame_rate_hz is None


def test_volume_and_dask_input_round_trip(tmp_path, movie):
    volume = da.from_array(movie.reshape(10, 4, 24, 32), chunks=(3, 4, 24, 32))
    path = save_binary(tmp_path / "vol.bin", volume, frame_rate_hz=2.5)
    rec = open_binary(path)
    assert rec.shape == (10, 4, 24, 32) and rec.metadata.n_planes == 4
    assert json.loads(path.with_suffix(".json").read_text())["planes"] == 4
    np.testing.assert_array_equal(rec.movie.compute(), volume.compute())
    np.testing.assert_array_equal(load_binary(path, mapped=True), volume.compute())


def test_reads_calscipy_files_memmap_and_inference(tmp_path, movie):
    path = _calscipy_pair(tmp_path / "cs", movie)
    mapped = load_binary(tmp_path / "cs", mapped=True)
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.uint16
    np.testing.assert_array_equal(mapped, movie)
    with pytest.raises(ValueError):
        mapped[0, 0, 0] = 1  # read-only unless asked for mode="r+"
    del mapped
    # one dimension missing from the json: inferred from the file size, as CalSciPy does
    for missing in ("frames", "y", "x"):
        meta = {"frames": 40, "y": 24, "x": 32, "dtype": "uint16"}
        meta[missing] = None
        path.with_suffix(".json").write_text(json.dumps(meta))
        rec = open_binary(path)
        assert rec.shape == (40, 24, 32) and rec.metadata.extra["inferred"] == missing
    # no json at all: the caller supplies the shape (one may be None) and dtype
    path.with_suffix(".json").unlink()
    back = load_binary(path, missing_shape=(None, 24, 32), dtype="uint16")
    np.testing.assert_array_equal(back, movie)
    calscipy = load_binary(
        path, missing_metadata={"frames": 40, "y": 24, "x": None, "dtype": "<u2"}
    )
    np.testing.assert_array_equal(calscipy, movie)
    assert open_binary(path, missing_shape=(40, 24, 32), dtype=np.uint16).shape == (40, 24, 32)


def test_open_is_lazy_and_reads_only_requested_frames(tmp_path, monkeypatch, movie):
    path = save_binary(tmp_path / "lazy.bin", movie)
    calls = []
    original = MappedArray.__getitem__

    def spy(self, key):
        calls.append(key)
        return original(self, key)

    monkeypatch.setattr(MappedArray, "__getitem__", spy)
    monkeypatch.setattr(np, "fromfile", lambda *a, **k: pytest.fail("pixel read at open"))
    rec = open_binary(path)
    assert calls == []  # opening read no pixel
    frame = rec.movie[7].compute()
    np.testing.assert_array_equal(frame, movie[7])
    assert len(calls) == 1 and calls[0][0] == 7  # dask fused the slice into the read
    clone = pickle.loads(pickle.dumps(rec.movie))  # the graph travels without the pixels
    np.testing.assert_array_equal(clone[3:5].compute(), movie[3:5])


# ------------------------------------------------------------------ writer behaviour


def test_save_refuses_to_overwrite_either_file(tmp_path, movie):
    path = save_binary(tmp_path / "a.bin", movie)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match=r"a\.bin"):
        save_binary(path, movie[:5])
    assert path.read_bytes() == before
    path.unlink()  # only the json remains: still refused, and no .bin is written
    with pytest.raises(OutputExistsError, match=r"a\.json"):
        save_binary(path, movie[:5])
    assert not path.exists() and _leftovers(tmp_path) == ["a.json"]
    save_binary(path, movie[:5], overwrite=True)
    assert open_binary(path).shape == (5, 24, 32)


def test_save_cancel_and_errors_leave_nothing(tmp_path, monkeypatch, movie):
    lazy = da.from_array(movie, chunks=(10, 24, 32))
    with pytest.raises(OperationCancelled):
        save_binary(tmp_path / "c.bin", lazy, should_stop=lambda: True)
    assert _leftovers(tmp_path) == []
    with monkeypatch.context() as m:  # the .json fails after the .bin was renamed into place
        m.setattr(json, "dumps", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError, match="disk full"):
            save_binary(tmp_path / "c.bin", movie)
    assert _leftovers(tmp_path) == []
    with pytest.raises(ShapeError, match="frames, y, x"):
        save_binary(tmp_path / "d.bin", movie[0])
    with pytest.raises(ShapeError, match="dtype"):
        save_binary(tmp_path / "d.bin", movie.astype(complex))
    with pytest.raises(ParameterError, match="frame_rate_hz"):
        save_binary(tmp_path / "d.bin", movie, frame_rate_hz=-3)
    with pytest.raises(ParameterError, match="pixel_size_um"):
        save_binary(tmp_path / "d.bin", movie, pixel_size_um=(1.0, 0.0))
    assert _leftovers(tmp_path) == []


def test_save_reports_progress(tmp_path, movie):
    seen = []

    class Bar:
        def __init__(self, total, desc):
            seen.append(("start", total, desc))

        def update(self, n):
            seen.append(("update", n))

        def close(self):
            seen.append(("close",))

    save_binary(tmp_path / "p.bin", movie, progress=Bar)
    assert seen[0] == ("start", 40, "writing p.bin") and seen[-1] == ("close",)
    assert sum(s[1] for s in seen if s[0] == "update") == 40


# ------------------------------------------------------------------ bad input


def test_size_disagreeing_with_json_names_both_files(tmp_path, movie):
    path = _calscipy_pair(tmp_path, movie)
    with open(path, "ab") as fh:
        fh.write(b"\0" * 10)
    with pytest.raises(RecordingError, match=r"binary_video\.bin has 61450 bytes but binary_video"
                       r"\.json describes 40x24x32 uint16 = 61440 bytes"):  # fmt: skip
        open_binary(path)
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.raises(RecordingError, match=r"1000 bytes"):
        load_binary(path)


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ({"frames": 40, "y": 24, "x": 32, "dtype": "uint99"}, "unknown dtype 'uint99'"),
        ({"frames": 40, "y": 24, "x": 32, "dtype": "U8"}, "unknown dtype"),
        ({"frames": 40, "y": 24, "x": 32, "dtype": 16}, "unknown dtype 16"),
        ({"frames": 40, "y": 24, "x": 32}, "no dtype"),
        ({"frames": 0, "y": 24, "x": 32, "dtype": "uint16"}, "frames must be a positive integer"),
        ({"frames": 40, "y": -24, "x": 32, "dtype": "uint16"}, "y must be a positive integer"),
        ({"frames": 40, "y": 2.5, "x": 32, "dtype": "uint16"}, "y must be a positive integer"),
        ({"frames": 40, "y": "24", "x": 32, "dtype": "uint16"}, "y must be a positive integer"),
        ({"y": 24, "dtype": "uint16"}, "frames and x are unknown"),
        ({"frames": 40, "y": 24, "x": 32, "dtype": "uint16", "frame_rate_hz": -1}, "frame_rate"),
        ({"frames": 40, "y": 24, "x": 32, "dtype": "uint16", "pixel_size_um": "big"}, "pixel"),
        ([1, 2, 3], "JSON object"),
    ],
)
def test_bad_sidecars_raise_metadata_error_naming_the_json(tmp_path, movie, sidecar, message):
    path = _calscipy_pair(tmp_path, movie)
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(MetadataError, match=message) as info:
        open_binary(path)
    assert info.value.path == str(path.with_suffix(".json"))


def test_other_bad_inputs(tmp_path, movie):
    path = _calscipy_pair(tmp_path / "one", movie)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        load_binary(path)
    path.with_suffix(".json").write_text(
        json.dumps({"frames": None, "y": 7, "x": 32, "dtype": "u2"})
    )
    with pytest.raises(RecordingError, match="not a whole number of frames"):
        open_binary(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(MetadataError, match="metadata file not found; pass missing_shape"):
        open_binary(path)
    with pytest.raises(ParameterError, match="missing_shape"):
        load_binary(path, missing_shape=(40, 24), dtype="uint16")
    with pytest.raises(RecordingError, match="no such file"):
        open_binary(tmp_path / "nothing.bin")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordingError, match=r"no \.bin file"):
        open_binary(tmp_path / "empty")
    _calscipy_pair(tmp_path / "two", movie, name="a")
    _calscipy_pair(tmp_path / "two", movie, name="b")
    with pytest.raises(RecordingError, match=r"several binary movies.*a\.bin, b\.bin"):
        open_binary(tmp_path / "two")
    assert open_binary(tmp_path / "two" / "b.json").shape == (40, 24, 32)


# ------------------------------------------------------------------ suite2p


def _ops(**entries) -> np.ndarray:
    return np.array(dict(entries), dtype=object)


def test_suite2p_needs_explicit_pickle_opt_in(tmp_path):
    np.save(tmp_path / "ops.npy", _ops(Ly=4, Lx=5, nframes=3, fs=10.0), allow_pickle=True)
    np.zeros((3, 4, 5), np.int16).tofile(tmp_path / "data.bin")
    with pytest.raises(ParameterError, match=r"ops\.npy.*pickle.*allow_pickle=True"):
        open_suite2p_binary(tmp_path)
    rec = open_suite2p_binary(tmp_path, allow_pickle=True)
    assert rec.shape == (3, 4, 5) and list(rec.channels) == ["data"]


def test_suite2p_real_ops_end_to_end(tmp_path):
    """The real suite2p 0.12 ops.npy (512x512, 5322 frames) with a sparse data.bin beside it."""
    ops = np.load(SUITE2P_PLANE / "ops.npy", allow_pickle=True).item()
    ly, lx, n = ops["Ly"], ops["Lx"], ops["nframes"]
    assert (ly, lx, n) == (512, 512, 5322)
    (tmp_path / "ops.npy").write_bytes((SUITE2P_PLANE / "ops.npy").read_bytes())
    first = np.arange(ly * lx, dtype=np.int16).reshape(ly, lx)
    with open(tmp_path / "data.bin", "wb") as fh:  # sparse: only two frames hold data
        fh.write(first.tobytes())
        fh.seek((n - 1) * ly * lx * 2)
        fh.write((-first).tobytes())
    rec = open_suite2p_binary(tmp_path / "ops.npy", allow_pickle=True)
    assert rec.shape == (5322, 512, 512) and rec.movie.dtype == np.int16
    np.testing.assert_array_equal(rec.movie[0].compute(), first)
    np.testing.assert_array_equal(rec.movie[-1].compute(), -first)
    assert not rec.movie[2000].compute().any()
    meta = rec.metadata
    assert meta.source_format == "suite2p-binary" and meta.source_version == "0.12.0"
    assert meta.frame_period_s == pytest.approx(1 / 30) and meta.frame_rate_hz == pytest.approx(30)
    assert meta.pixel_size_um is None and meta.n_planes == 1
    assert meta.extra["Ly"] == 512 and meta.extra["nframes"] == 5322 and meta.extra["tau"] == 1.5
    assert "meanImg" not in meta.extra  # arrays stay in ops.npy
    json.dumps(meta.extra)  # what travels to layer metadata is plain data


def test_suite2p_real_ops_without_data_bin(tmp_path):
    with pytest.raises(RecordingError, match=r"no data\.bin or data_raw\.bin"):
        open_suite2p_binary(SUITE2P_PLANE, allow_pickle=True)


def test_suite2p_raw_second_channel_and_size_errors(tmp_path):
    frames = np.arange(6 * 4 * 5, dtype=np.int16).reshape(6, 4, 5)
    np.save(tmp_path / "ops.npy", _ops(Ly=4, Lx=5, nframes=6, fs=0.0), allow_pickle=True)
    frames.tofile(tmp_path / "data_raw.bin")
    (-frames).tofile(tmp_path / "data_chan2_raw.bin")
    rec = open_suite2p_binary(tmp_path, allow_pickle=True)
    assert list(rec.channels) == ["data_raw", "data_chan2_raw"]
    np.testing.assert_array_equal(rec.channels["data_chan2_raw"].compute(), -frames)
    assert rec.metadata.frame_period_s is None  # fs=0 says nothing
    frames[:5].tofile(tmp_path / "data.bin")  # registered movie, one frame short
    with pytest.raises(RecordingError, match=r"data\.bin has 200 bytes but ops\.npy says "
                       r"nframes=6, Ly=4, Lx=5"):  # fmt: skip
        open_suite2p_binary(tmp_path / "data.bin", allow_pickle=True)


@pytest.mark.parametrize(
    ("ops_bytes", "message"),
    [
        (None, "does not hold a dict"),
        (b"garbage that is not npy", "not a readable suite2p ops.npy"),
        ("no_ly", "no Ly/Lx"),
        ("bad_ly", "Ly must be a positive integer"),
    ],
)
def test_suite2p_bad_ops(tmp_path, ops_bytes, message):
    np.zeros((2, 4, 5), np.int16).tofile(tmp_path / "data.bin")
    ops_path = tmp_path / "ops.npy"
    if ops_bytes is None:
        np.save(ops_path, np.arange(3))
    elif ops_bytes == "no_ly":
        np.save(ops_path, _ops(fs=3.0), allow_pickle=True)
    elif ops_bytes == "bad_ly":
        np.save(ops_path, _ops(Ly=-4, Lx=5), allow_pickle=True)
    else:
        ops_path.write_bytes(ops_bytes)
    with pytest.raises(MetadataError, match=message):
        open_suite2p_binary(tmp_path, allow_pickle=True)


def test_suite2p_missing_files(tmp_path):
    with pytest.raises(RecordingError, match="no such file"):
        open_suite2p_binary(tmp_path / "nope", allow_pickle=True)
    np.zeros((2, 4, 5), np.int16).tofile(tmp_path / "data.bin")
    with pytest.raises(RecordingError, match=r"ops\.npy: not found"):
        open_suite2p_binary(tmp_path, allow_pickle=True)

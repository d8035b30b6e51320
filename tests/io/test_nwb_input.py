"""NWB input: OnePhotonSeries / TwoPhotonSeries read lazily with their metadata (io.nwb_input)."""

from __future__ import annotations

import pickle
import warnings
from datetime import datetime, timezone
from pathlib import Path

import h5py  # the testing extra installs pynwb (and h5py): these tests never skip
import numpy as np
import pynwb
import pytest
from pynwb.ophys import OnePhotonSeries, OpticalChannel, TwoPhotonSeries

from napari_calcium.errors import ParameterError, RecordingError
from napari_calcium.io import nwb_input
from napari_calcium.io.nwb_input import (
    NwbDataset,
    is_nwb_file,
    list_nwb_series,
    open_nwb,
)

START = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def _nwbfile(source_script: str | None = None) -> pynwb.NWBFile:
    kwargs = {} if source_script is None else {
        "source_script": source_script, "source_script_file_name": "convert.py"
    }  # fmt: skip
    return pynwb.NWBFile(
        session_description="test session", identifier="id-1", session_start_time=START, **kwargs
    )


def _plane(nwb, name="ImagingPlane", *, grid=None, unit="meters", device_name="Microscope"):
    with warnings.catch_warnings():  # pynwb >= 3.1 prefers a DeviceModel for the manufacturer
        warnings.simplefilter("ignore", DeprecationWarning)
        device = nwb.create_device(
            name=device_name, description="a 2p scope", manufacturer="Bruker"
        )
    channel = OpticalChannel(name="green", description="GCaMP emission", emission_lambda=525.0)
    kwargs = {} if grid is None else {"grid_spacing": grid, "grid_spacing_unit": unit}
    return nwb.create_imaging_plane(
        name=name,
        optical_channel=channel,
        description="layer 2/3",
        device=device,
        excitation_lambda=920.0,
        indicator="GCaMP6f",
        location="V1",
        imaging_rate=30.0,
        **kwargs,
    )


def _write(nwb, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(path, "w") as io:
            io.write(nwb)
    return path


def _num_samples(n: int) -> dict:
    """pynwb >= 4 wants ``num_samples`` for an external series timed by a rate."""
    args = {a["name"] for a in TwoPhotonSeries.__init__.__docval__["args"]}
    return {"num_samples": n} if "num_samples" in args else {}


def _movie(shape, seed=0, dtype=np.uint16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, size=shape).astype(dtype)


@pytest.fixture
def counted(monkeypatch):
    """Every stored read of NwbDataset: (dataset, key)."""
    reads: list[tuple[str, tuple]] = []
    original = NwbDataset._read_stored

    def spy(self, key):
        reads.append((self.dataset, key))
        return original(self, key)

    monkeypatch.setattr(NwbDataset, "_read_stored", spy)
    return reads


def test_two_photon_rate_pixels_and_metadata(tmp_path):
    movie = _movie((12, 6, 8))
    nwb = _nwbfile()
    plane = _plane(nwb, grid=[2e-6, 1.5e-6])
    nwb.add_acquisition(
        TwoPhotonSeries(
            name="TwoPhotonSeries",
            data=movie,
            imaging_plane=plane,
            rate=30.0,
            starting_time=2.0,
            unit="a.u.",
            description="raw scan",
        )
    )
    path = _write(nwb, tmp_path / "tp.nwb")
    assert is_nwb_file(path)
    rec = open_nwb(path)
    assert list(rec.channels) == ["TwoPhotonSeries"]
    assert rec.shape == (12, 6, 8) and rec.movie.dtype == np.uint16
    np.testing.assert_array_equal(rec.movie.compute(), movie)
    meta = rec.metadata
    assert meta.source_format == "nwb" and meta.source_version
    assert meta.frame_rate_hz == pytest.approx(30.0)
    np.testing.assert_allclose(meta.timestamps_s, 2.0 + np.arange(12) / 30.0)
    assert meta.pixel_size_um == pytest.approx((2.0, 1.5))
    assert meta.n_planes == 1 and meta.channel_names == ("TwoPhotonSeries",)
    extra = meta.extra
    assert extra["device"] == {
        "name": "Microscope", "description": "a 2p scope", "manufacturer": "Bruker"
    }  # fmt: skip
    assert extra["indicator"] == "GCaMP6f" and extra["location"] == "V1"
    assert extra["excitation_lambda_nm"] == 920.0
    assert extra["imaging_plane"] == "ImagingPlane"
    assert extra["imaging_plane_description"] == "layer 2/3"
    assert extra["optical_channels"][0]["emission_lambda_nm"] == 525.0
    assert extra["neurodata_type"] == "TwoPhotonSeries" and extra["description"] == "raw scan"
    assert extra["series_path"] == "/acquisition/TwoPhotonSeries"
    assert extra["data_unit"] == "a.u." and extra["other_series"] == []
    assert extra["nwb_layout"] == "tyx" and extra["starting_time_s"] == 2.0
    assert extra["session_description"] == "test session"
    pickle.dumps(meta.to_dict())  # JSON/pickle friendly
    assert "nwb" in repr(rec)


def test_one_photon_timestamps_and_units(tmp_path):
    movie = _movie((10, 5, 7), seed=1, dtype=np.float32)
    stamps = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5]) + 1.0
    nwb = _nwbfile()
    plane = _plane(nwb, grid=[3.0, 3.0], unit="micrometers", device_name="Miniscope")
    nwb.add_acquisition(
        OnePhotonSeries(
            name="OnePhotonSeries",
            data=movie,
            imaging_plane=plane,
            timestamps=stamps,
            unit="n.a.",
            exposure_time=0.01,
            binning=2,
        )
    )
    rec = open_nwb(_write(nwb, tmp_path / "op.nwb"))
    np.testing.assert_array_equal(rec.movie.compute(), movie)
    assert rec.movie.dtype == np.float32
    meta = rec.metadata
    np.testing.assert_allclose(meta.timestamps_s, stamps)
    assert meta.frame_period_s == pytest.approx(0.05)  # median interval, a dropped frame ignored
    assert meta.pixel_size_um == pytest.approx((3.0, 3.0))
    assert meta.extra["timing_source"] == "timestamps"
    assert meta.extra["device"]["name"] == "Miniscope"
    assert meta.extra["exposure_time_s"] == 0.01 and meta.extra["binning"] == 2


def test_field_of_view_gives_pixel_size(tmp_path):
    nwb = _nwbfile()
    plane = _plane(nwb)  # no grid_spacing
    nwb.add_acquisition(
        TwoPhotonSeries(
            name="tp",
            unit="a.u.",
            data=_movie((3, 4, 8)),
            imaging_plane=plane,
            rate=10.0,
            field_of_view=[40e-6, 40e-6],
        )
    )
    meta = open_nwb(_write(nwb, tmp_path / "fov.nwb")).metadata
    assert meta.pixel_size_um == pytest.approx((10.0, 5.0))
    assert meta.extra["pixel_size_source"] == "field_of_view / image size"


def test_lazy_open_reads_no_pixels(tmp_path, counted):
    """A 10,000-frame file: opening reads nothing, one frame reads one frame."""
    n = 10_000
    movie = np.arange(n * 4 * 4, dtype=np.uint16).reshape(n, 4, 4)
    nwb = _nwbfile()
    nwb.add_acquisition(
        TwoPhotonSeries(unit="a.u.", name="tp", data=movie, imaging_plane=_plane(nwb), rate=30.0)
    )
    path = _write(nwb, tmp_path / "long.nwb")
    rec = open_nwb(path)
    assert rec.n_frames == n and counted == []
    np.testing.assert_array_equal(rec.movie[9_999].compute(), movie[9_999])
    assert len(counted) == 1
    dataset, key = counted[0]
    assert dataset == "/acquisition/tp/data"
    assert key[0] in (9_999, slice(9_999, 10_000, 1))
    np.testing.assert_array_equal(rec.movie[17:20, 1:3].compute(), movie[17:20, 1:3])
    # the graph pickles (no open handle) and reads in the other process's way: by path
    again = pickle.loads(pickle.dumps(rec.movie))
    np.testing.assert_array_equal(again[5].compute(), movie[5])


def test_nwb_dataset_indexing(tmp_path):
    stored = _movie((5, 4, 6, 3), seed=3)  # (time, rows, cols, z)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"] = stored
    out = stored.transpose(0, 3, 1, 2)
    src = NwbDataset(tmp_path / "d.h5", "/data", stored.shape, stored.dtype, (0, 3, 1, 2))
    assert src.shape == out.shape
    for key in [
        (slice(None),), 2, (1, 2), (slice(1, 4), 0, slice(None, None, 2)), (-1, ..., 3),
        (slice(None, None, -1), 1), ([3, 0, 3], slice(None), 2), (slice(3, 1),),
        (np.array([True, False, True, False, False]),), (..., slice(2, 5)),
    ]:  # fmt: skip
        np.testing.assert_array_equal(src[key], out[key], err_msg=str(key))
    with pytest.raises(IndexError):
        src[5]


def test_two_series_default_choice_and_series_argument(tmp_path):
    small, big = _movie((4, 3, 3), seed=4), _movie((6, 5, 5), seed=5)
    nwb = _nwbfile()
    plane = _plane(nwb, grid=[1e-6, 1e-6])
    for name, data in (("a_small", small), ("b_big", big)):
        nwb.add_acquisition(
            TwoPhotonSeries(unit="a.u.", name=name, data=data, imaging_plane=plane, rate=5.0)
        )
    path = _write(nwb, tmp_path / "two.nwb")
    rec = open_nwb(path)
    assert list(rec.channels) == ["b_big"]  # the largest
    np.testing.assert_array_equal(rec.movie.compute(), big)
    assert [s["name"] for s in rec.metadata.extra["other_series"]] == ["a_small"]
    assert rec.metadata.extra["other_series"][0]["shape"] == [4, 3, 3]
    rec = open_nwb(path, series="a_small")
    np.testing.assert_array_equal(rec.movie.compute(), small)
    rec = open_nwb(path, series="/acquisition/a_small")
    assert rec.shape == (4, 3, 3)
    with pytest.raises(RecordingError, match="no image series named 'nope'") as info:
        open_nwb(path, series="nope")
    assert "/acquisition/a_small" in str(info.value) and "/acquisition/b_big" in str(info.value)
    assert str(path) in str(info.value)
    names = [s["name"] for s in list_nwb_series(path)]
    assert names == ["a_small", "b_big"]


def test_processing_module_series_and_plain_image_series(tmp_path):
    from pynwb.base import TimeSeries
    from pynwb.image import ImageSeries
    from pynwb.ophys import CorrectedImageStack, MotionCorrection

    raw, corrected = _movie((5, 4, 4), seed=6), _movie((5, 4, 4), seed=7)
    nwb = _nwbfile()
    plane = _plane(nwb)
    ophys = nwb.create_processing_module("ophys", "processed")
    ophys.add(
        TwoPhotonSeries(unit="a.u.", name="denoised", data=raw, imaging_plane=plane, rate=20.0)
    )
    original = ImageSeries(name="original", data=raw, unit="a.u.", rate=20.0)
    nwb.add_acquisition(original)  # a plain ImageSeries in acquisition is not chosen either
    stack = CorrectedImageStack(
        corrected=ImageSeries(name="corrected", data=corrected, unit="a.u.", rate=20.0),
        original=original,
        xy_translation=TimeSeries(
            name="xy_translation", data=np.zeros((5, 2)), unit="pixels", rate=20.0
        ),
    )
    ophys.add(MotionCorrection(corrected_image_stacks=[stack]))
    path = _write(nwb, tmp_path / "proc.nwb")
    rec = open_nwb(path)  # plain ImageSeries are not chosen by default
    assert list(rec.channels) == ["denoised"]
    assert rec.metadata.extra["series_path"] == "/processing/ophys/denoised"
    np.testing.assert_array_equal(rec.movie.compute(), raw)
    rec = open_nwb(path, series="corrected")
    np.testing.assert_array_equal(rec.movie.compute(), corrected)
    assert rec.metadata.extra["neurodata_type"] == "ImageSeries"
    assert rec.metadata.extra["series_path"].endswith("CorrectedImageStack/corrected")
    assert rec.metadata.extra["other_series"][0]["name"] == "denoised"
    rec = open_nwb(path, series="original")
    np.testing.assert_array_equal(rec.movie.compute(), raw)
    assert rec.metadata.frame_rate_hz == pytest.approx(20.0)


def test_neuroconv_layout_and_volumes(tmp_path):
    frames = _movie((4, 6, 8), seed=8)  # (time, height, width) as we mean them
    vol = _movie((3, 6, 8, 2), seed=9)  # (time, height, width, z)
    nwb = _nwbfile(source_script="Created using NeuroConv v0.6.0")
    plane = _plane(nwb, grid=[1e-6, 2e-6, 5e-6])  # (x, y, z) in NeuroConv's order
    nwb.add_acquisition(
        TwoPhotonSeries(
            unit="a.u.", name="flat", data=frames.transpose(0, 2, 1), imaging_plane=plane, rate=9.0
        )
    )
    nwb.add_acquisition(
        TwoPhotonSeries(
            name="volume",
            unit="a.u.",
            data=vol.transpose(0, 2, 1, 3),
            imaging_plane=plane,
            rate=3.0,
        )
    )
    path = _write(nwb, tmp_path / "nc.nwb")
    rec = open_nwb(path, series="flat")
    assert rec.metadata.extra["nwb_layout"] == "txy"
    assert "NeuroConv" in rec.metadata.extra["nwb_layout_reason"]
    np.testing.assert_array_equal(rec.movie.compute(), frames)
    assert rec.metadata.pixel_size_um == pytest.approx((2.0, 1.0))  # (y, x)
    np.testing.assert_array_equal(rec.movie[2, 1:4, ::3].compute(), frames[2, 1:4, ::3])
    rec = open_nwb(path, series="volume")
    assert rec.shape == (3, 2, 6, 8) and rec.metadata.n_planes == 2
    np.testing.assert_array_equal(rec.movie.compute(), vol.transpose(0, 3, 1, 2))
    assert rec.metadata.z_step_um == pytest.approx(5.0)
    # forcing the layout reads the stored order as (time, y, x)
    rec = open_nwb(path, series="flat", layout="tyx")
    np.testing.assert_array_equal(rec.movie.compute(), frames.transpose(0, 2, 1))
    with pytest.raises(ParameterError, match="layout"):
        open_nwb(path, layout="xyt")


def test_external_tiff_series(tmp_path):
    import tifffile

    parts = [_movie((3, 4, 5), seed=10), _movie((2, 4, 5), seed=11)]
    for i, part in enumerate(parts):
        tifffile.imwrite(tmp_path / f"part{i}.tif", part, photometric="minisblack")
    nwb = _nwbfile()
    nwb.add_acquisition(
        TwoPhotonSeries(
            name="ext",
            imaging_plane=_plane(nwb, grid=[1e-6, 1e-6]),
            rate=7.0,
            format="external",
            external_file=["part0.tif", "part1.tif"],
            starting_frame=[0, 3],
            dimension=[4, 5],
            **_num_samples(5),
        )
    )
    path = _write(nwb, tmp_path / "ext.nwb")
    rec = open_nwb(path)
    np.testing.assert_array_equal(rec.movie.compute(), np.concatenate(parts))
    assert rec.metadata.frame_rate_hz == pytest.approx(7.0)
    assert rec.metadata.pixel_size_um == pytest.approx((1.0, 1.0))
    assert rec.metadata.extra["external_file"] == ["part0.tif", "part1.tif"]
    # suite2p's way: absolute paths from another machine, starting_frame all 0
    nwb = _nwbfile()
    nwb.add_acquisition(
        TwoPhotonSeries(
            name="s2p",
            imaging_plane=_plane(nwb),
            rate=7.0,
            format="external",
            external_file=["/elsewhere/part0.tif", "/elsewhere/part1.tif"],
            starting_frame=[0, 0],
            dimension=[4, 5],
            **_num_samples(5),
        )
    )
    rec = open_nwb(_write(nwb, tmp_path / "s2p.nwb"))
    np.testing.assert_array_equal(rec.movie.compute(), np.concatenate(parts))
    assert "starting_frame" in rec.metadata.extra["starting_frame_mismatch"]
    (tmp_path / "part1.tif").unlink()
    with pytest.raises(RecordingError, match=r"external file 'part1\.tif'"):
        open_nwb(path)


def test_errors_name_the_file(tmp_path):
    text = tmp_path / "notes.nwb"
    text.write_text("not hdf5")
    assert not is_nwb_file(text)
    with pytest.raises(RecordingError, match="not an NWB file") as info:
        open_nwb(text)
    assert str(text) in str(info.value)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    assert not is_nwb_file(plain)
    with pytest.raises(RecordingError, match="not NWB"):
        open_nwb(plain)
    with pytest.raises(RecordingError, match="no such file"):
        open_nwb(tmp_path / "missing.nwb")
    assert not is_nwb_file(tmp_path / "missing.nwb") and not is_nwb_file(tmp_path)
    nwb = _nwbfile()  # an NWB file without imaging
    path = _write(nwb, tmp_path / "empty.nwb")
    assert is_nwb_file(path)
    with pytest.raises(RecordingError, match="no OnePhotonSeries or TwoPhotonSeries"):
        open_nwb(path)


def test_missing_h5py_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    path = tmp_path / "x.nwb"
    with h5py.File(path, "w") as f:
        f.attrs["nwb_version"] = "2.8.0"
    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("no h5py")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    with pytest.raises(RecordingError, match=r"napari-calcium\[nwb\]"):
        nwb_input.open_nwb(path)
    assert not is_nwb_file(path)


def test_our_own_nwb_export_has_no_movie(tmp_path):
    """save_nwb writes ROIs and traces only: opening it as a movie says so, naming the file."""
    from napari_calcium.core.rois.roiset import RoiSet
    from napari_calcium.core.traces.extraction import extract_traces
    from napari_calcium.io._nwb import save_nwb

    labels = np.zeros((8, 8), np.int32)
    labels[1:4, 1:4], labels[5:7, 4:7] = 1, 2
    movie = _movie((20, 8, 8), seed=12).astype(np.float32)
    rois = RoiSet.from_label_image(labels)
    traces = extract_traces(movie, rois, frame_rate_hz=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = save_nwb(
            tmp_path / "export.nwb",
            traces,
            rois=rois,
            session_description="export",
            identifier="e-1",
            session_start_time=START,
            subject={"subject_id": "m1", "species": "Mus musculus"},
            device={"name": "2p", "description": "scope", "manufacturer": "Bruker"},
            imaging_plane={
                "indicator": "GCaMP6s",
                "location": "V1",
                "excitation_lambda": 920.0,
                "emission_lambda": 510.0,
            },
        )
    assert is_nwb_file(out)
    assert list_nwb_series(out) == []
    with pytest.raises(RecordingError, match="holds no imaging movie") as info:
        open_nwb(out)
    assert str(out) in str(info.value)


def test_dask_chunks_hold_whole_hdf5_chunks(tmp_path, counted):
    from hdmf.backends.hdf5 import H5DataIO

    movie = _movie((50, 4, 4), seed=13)
    nwb = _nwbfile()
    data = H5DataIO(movie, chunks=(7, 4, 4), compression="gzip")
    nwb.add_acquisition(
        TwoPhotonSeries(unit="a.u.", name="gz", data=data, imaging_plane=_plane(nwb), rate=1.0)
    )
    rec = open_nwb(_write(nwb, tmp_path / "gz.nwb"))
    assert all(c % 7 == 0 for c in rec.movie.chunks[0][:-1])
    np.testing.assert_array_equal(rec.movie.compute(), movie)
    assert len(counted) == len(rec.movie.chunks[0])

"""Trace export: NPZ / CSV exactly as stored, JSON sidecar, atomic sets, NWB read back."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pytest
import scipy

import napari_calcium as nc
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.traces.extraction import TraceSet
from napari_calcium.errors import (
    OutputExistsError,
    ParameterError,
    RecordingError,
    ShapeError,
)
from napari_calcium.io import trace_files
from napari_calcium.io._nwb import save_nwb
from napari_calcium.io.trace_files import load_traces, save_traces


@pytest.fixture(scope="module")
def scene():
    rec = nc.simulate_recording(n_frames=200, shape=(64, 64), n_neurons=6, seed=1)
    rois = RoiSet.from_label_image(rec.truth.labels)
    ts = nc.extract_traces(rec.movie, rois, frame_rate_hz=30)
    dff = nc.compute_dff(ts.corrected, frame_rate_hz=30)
    return rec, rois, ts, dff


def _bits_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _assert_same(ts, dff, ts2, dff2):
    for name in ("F", "Fneu", "corrected", "coefficients"):
        assert _bits_equal(getattr(ts, name), getattr(ts2, name)), name
    assert ts2.F.dtype == np.float32
    np.testing.assert_array_equal(ts2.ids, ts.ids)
    assert ts2.frame_rate_hz == ts.frame_rate_hz
    assert dict(ts2.parameters) == json.loads(json.dumps(dict(ts.parameters)))
    assert _bits_equal(np.asarray(dff.dff, np.float32), dff2.dff)
    assert _bits_equal(np.asarray(dff.baseline, np.float32), dff2.baseline)
    assert dff2.method == dff.method


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["npz", "csv"])
def test_round_trip_is_bit_exact(tmp_path, scene, fmt):
    _, rois, ts, dff = scene
    assert ts.F.dtype == np.float32 and np.asarray(dff.dff).dtype == np.float32
    files = save_traces(tmp_path / f"run.{fmt}", ts, dff=dff, rois=rois)
    assert all(f.is_file() for f in files)
    ts2, dff2, side = load_traces(files[0])
    _assert_same(ts, dff, ts2, dff2)
    assert side["transform"] == "none"
    # the sidecar path loads the same set
    ts3, _, _ = load_traces(tmp_path / "run.json")
    assert _bits_equal(ts3.corrected, ts.corrected)


def test_npz_layout_and_no_pickles(tmp_path, scene):
    _, _rois, ts, dff = scene
    files = save_traces(tmp_path / "a.npz", ts, dff=dff)
    assert [f.name for f in files] == ["a.npz", "a.json"]
    with np.load(files[0], allow_pickle=False) as z:
        for name in ("F", "Fneu", "corrected", "coefficients", "ids", "time_s", "dff", "baseline"):
            assert name in z.files
        assert z["F"].dtype == np.float32
        assert _bits_equal(z["F"], ts.F)  # stored values, not transformed
        np.testing.assert_allclose(z["time_s"], np.arange(200) / 30.0)


def test_csv_layout_labels_and_digits(tmp_path, scene):
    _, _rois, ts, dff = scene
    files = save_traces(tmp_path / "b.csv", ts, dff=dff)
    names = [f.name for f in files]
    for n in ("F", "Fneu", "corrected", "dff", "baseline", "coefficients"):
        assert f"b_{n}.csv" in names
    assert names[-1] == "b.json"
    lines = (tmp_path / "b_F.csv").read_text().splitlines()
    assert lines[0] == "time_s," + ",".join(f"roi_{i}" for i in ts.ids)
    assert len(lines) == 1 + ts.n_frames
    first = lines[1].split(",")
    assert float(first[0]) == 0.0
    # each value is the float32 itself, re-read independently of load_traces
    assert np.float32(first[1]) == ts.F[0, 0]
    table = np.loadtxt(tmp_path / "b_corrected.csv", delimiter=",", skiprows=1)
    assert _bits_equal(table[:, 1:].T.astype(np.float32), ts.corrected)


def test_csv_without_neuropil_or_rate(tmp_path, scene):
    rec, rois, _, _ = scene
    ts = nc.extract_traces(rec.movie, rois, neuropil=False)
    files = save_traces(tmp_path / "c.csv", ts)
    assert not (tmp_path / "c_Fneu.csv").exists()
    assert (tmp_path / "c_F.csv").read_text().startswith("frame,roi_")
    ts2, dff2, _ = load_traces(files[0])
    assert ts2.Fneu is None and dff2 is None and ts2.frame_rate_hz is None
    assert _bits_equal(ts2.F, ts.F)


# ------------------------------------------------------------------------------- sidecar
def test_sidecar_contents(tmp_path, scene):
    _, rois, ts, dff = scene
    files = save_traces(
        tmp_path / "s.csv", ts, dff=dff, rois=rois, metadata={"animal": "m1", "depth_um": 150.0}
    )
    side = json.loads(files[-1].read_text())
    assert side["transform"] == "none"
    assert side["frame_rate_hz"] == 30.0
    assert side["extraction"] == json.loads(json.dumps(dict(ts.parameters)))
    assert side["dff"]["method"] == dff.method
    assert side["dff"]["parameters"] == json.loads(json.dumps(dff.parameters))
    sw = side["software"]
    assert sw["napari-calcium"] == nc.__version__
    assert sw["numpy"] == np.__version__ and sw["scipy"] == scipy.__version__
    assert dt.datetime.fromisoformat(side["created"]).tzinfo is not None
    assert side["rois"]["ids"] == rois.ids.tolist()
    assert side["rois"]["area_px"] == rois.area.tolist()
    np.testing.assert_allclose(side["rois"]["centroid_y_px"], rois.centroids[:, 0])
    assert side["metadata"] == {"animal": "m1", "depth_um": 150.0}
    listed = {f["name"]: f["sha256"] for f in side["files"]}
    assert set(listed) == {f.name for f in files[:-1]}
    for f in files[:-1]:
        assert hashlib.sha256(f.read_bytes()).hexdigest() == listed[f.name]


# ------------------------------------------------------------------------------- overwriting
@pytest.mark.parametrize("fmt", ["npz", "csv"])
def test_refuses_overwrite_and_replaces_when_asked(tmp_path, scene, fmt):
    _, _rois, ts, dff = scene
    save_traces(tmp_path / f"o.{fmt}", ts, dff=dff)
    before = _snapshot(tmp_path)
    other = ts[::-1]  # different content, same shapes
    with pytest.raises(OutputExistsError):
        save_traces(tmp_path / f"o.{fmt}", other, dff=dff)
    assert _snapshot(tmp_path) == before
    # only the sidecar exists: still refused, and nothing new appears
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(OutputExistsError, match=r"p\.json"):
        save_traces(tmp_path / f"p.{fmt}", ts)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "p.json"])
    save_traces(tmp_path / f"o.{fmt}", other, dff=dff, overwrite=True)
    ts2, _, _ = load_traces(tmp_path / f"o.{fmt}" if fmt == "npz" else tmp_path / "o.json")
    assert _bits_equal(ts2.F, other.F)
    np.testing.assert_array_equal(ts2.ids, ts.ids[::-1])


def test_failure_mid_write_leaves_nothing(tmp_path, scene, monkeypatch):
    _, _rois, ts, dff = scene
    save_traces(tmp_path / "old.csv", ts, dff=dff)  # an earlier, complete set
    before = _snapshot(tmp_path)
    real = trace_files._write_csv
    calls = []

    def flaky(tmp, name, arrays, rate):
        calls.append(name)
        if len(calls) == 3:
            raise OSError("disk full")
        real(tmp, name, arrays, rate)

    monkeypatch.setattr(trace_files, "_write_csv", flaky)
    with pytest.raises(OSError, match="disk full"):
        save_traces(tmp_path / "new.csv", ts, dff=dff)
    assert _snapshot(tmp_path) == before  # no new files, no temp files
    calls.clear()
    with pytest.raises(OSError, match="disk full"):  # overwriting: the old set stays whole
        save_traces(tmp_path / "old.csv", ts[::-1], dff=dff, overwrite=True)
    assert _snapshot(tmp_path) == before


# ------------------------------------------------------------------------------- errors
def test_bad_inputs(tmp_path, scene):
    _, rois, ts, _dff = scene
    bad = TraceSet(ts.F, ts.Fneu, ts.corrected, ts.coefficients, ts.ids[:-1], 30.0)
    with pytest.raises(ShapeError, match="ids"):
        save_traces(tmp_path / "x.npz", bad)
    short = TraceSet(ts.F, ts.Fneu[:, :10], ts.corrected, ts.coefficients, ts.ids, 30.0)
    with pytest.raises(ShapeError, match="Fneu"):
        save_traces(tmp_path / "x.npz", short)
    with pytest.raises(ParameterError, match="format"):
        save_traces(tmp_path / "x.xlsx", ts)
    with pytest.raises(ParameterError, match="format"):
        save_traces(tmp_path / "x.npz", ts, format="hdf5")
    with pytest.raises(ParameterError, match="ids"):
        save_traces(tmp_path / "x.npz", ts, rois=rois[::-1])
    assert list(tmp_path.iterdir()) == []


def test_corrupted_files_raise_recording_error(tmp_path, scene):
    _, _, ts, dff = scene
    files = save_traces(tmp_path / "k.npz", ts, dff=dff)
    files[0].write_bytes(files[0].read_bytes()[:100])
    with pytest.raises(RecordingError, match=r"k\.npz"):
        load_traces(files[0])
    files[-1].unlink()  # without the sidecar the truncated npz itself fails to parse
    with pytest.raises(RecordingError, match=r"k\.npz"):
        load_traces(files[0])
    files = save_traces(tmp_path / "j.csv", ts)
    files[-1].write_text("{not json")
    with pytest.raises(RecordingError, match=r"j\.json"):
        load_traces(files[0])
    files = save_traces(tmp_path / "m.csv", ts)
    with open(files[0], "a") as fh:
        fh.write("1,2\n")  # a changed data file no longer matches its recorded sha256
    with pytest.raises(RecordingError, match=r"m_F\.csv"):
        load_traces(files[0])
    (tmp_path / "other.npz").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(RecordingError, match=r"other\.npz"):
        load_traces(tmp_path / "other.npz")


# ------------------------------------------------------------------------------- NWB
_SUBJECT = {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P90D"}
_DEVICE = {"name": "2p", "description": "two-photon microscope", "manufacturer": "Bruker"}
_PLANE = {
    "indicator": "GCaMP6s",
    "location": "V1 L2/3",
    "excitation_lambda": 920.0,
    "emission_lambda": 510.0,
}


def _nwb_kwargs(**changes):
    kw = dict(
        session_description="synthetic scene",
        identifier="test-0001",
        session_start_time=dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc),
        subject=_SUBJECT,
        device=_DEVICE,
        imaging_plane=_PLANE,
    )
    kw.update(changes)
    return kw


def test_nwb_round_trip(tmp_path, scene):
    from pynwb import NWBHDF5IO

    rec, rois, ts, dff = scene
    out = tmp_path / "s.nwb"
    save_nwb(
        out, ts, rois=rois, dff=dff, movie_shape=rec.movie.shape, pixel_size_um=(1.0, 1.0),
        **_nwb_kwargs(),
    )  # fmt: skip
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert nwb.subject.subject_id == "m1" and nwb.subject.species == "Mus musculus"
        assert nwb.devices["2p"].manufacturer == "Bruker"
        plane = nwb.imaging_planes["ImagingPlane"]
        assert plane.indicator == "GCaMP6s" and plane.excitation_lambda == 920.0
        assert plane.optical_channel[0].emission_lambda == 510.0
        ophys = nwb.processing["ophys"]
        ps = ophys["ImageSegmentation"]["PlaneSegmentation"]
        np.testing.assert_array_equal(ps.id[:], ts.ids)
        for i in range(len(rois)):
            ypix, xpix, lam = rois.pixels(i)
            mask = np.asarray(ps["pixel_mask"][i].tolist())
            np.testing.assert_array_equal(mask[:, 0], xpix)  # NWB: (x, y, weight)
            np.testing.assert_array_equal(mask[:, 1], ypix)
            np.testing.assert_array_equal(mask[:, 2].astype(np.float32), lam)
        fl = ophys["Fluorescence"]
        for name in ("F", "Fneu", "corrected", "baseline"):
            s = fl[name]
            expected = getattr(ts, name) if name != "baseline" else np.asarray(dff.baseline)
            assert s.data.shape == (ts.n_frames, ts.n_rois)  # (time, rois)
            assert _bits_equal(s.data[:], expected.T)
            assert s.rate == 30.0
        d = ophys["DfOverF"]["dff"]
        assert _bits_equal(d.data[:], np.asarray(dff.dff).T) and d.rate == 30.0
        np.testing.assert_array_equal(
            d.rois.data[:], np.arange(ts.n_rois)
        )  # region covers every ROI in order
    with pytest.raises(OutputExistsError):
        save_nwb(out, ts, rois=rois, **_nwb_kwargs())
    model = {**_DEVICE, "model_name": "Ultima", "model_number": "U-2"}
    save_nwb(out, ts, rois=rois, overwrite=True, **_nwb_kwargs(device=model))
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        device = nwb.devices["2p"]
        maker = device.model.manufacturer if getattr(device, "model", None) else device.manufacturer
        assert maker == "Bruker"
        assert "dff" not in nwb.processing["ophys"].data_interfaces
        assert _bits_equal(nwb.processing["ophys"]["Fluorescence"]["F"].data[:], ts.F.T)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"subject": {"species": "Mus musculus"}}, "subject_id"),
        ({"subject": {"subject_id": "m1"}}, "species"),
        ({"device": {"name": "2p"}}, "description, manufacturer"),
        ({"imaging_plane": {"indicator": "GCaMP6s"}}, "location, excitation_lambda"),
        ({"session_start_time": dt.datetime(2024, 5, 1)}, "timezone"),
        ({"identifier": ""}, "identifier"),
    ],
)
def test_nwb_missing_metadata_is_named(tmp_path, scene, change, named):
    _, rois, ts, _ = scene
    with pytest.raises(ParameterError, match=named):
        save_nwb(tmp_path / "x.nwb", ts, rois=rois, **_nwb_kwargs(**change))
    assert not list(tmp_path.iterdir())


def test_nwb_without_pynwb_says_how_to_install(tmp_path, scene, monkeypatch):
    import sys

    from napari_calcium.errors import BackendError

    _, rois, ts, _ = scene
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb -> ImportError
    with pytest.raises(BackendError, match=r"napari-calcium\[nwb\]"):
        save_nwb(tmp_path / "x.nwb", ts, rois=rois, **_nwb_kwargs())


# ------------------------------------------------------------------------------- spikes
@pytest.fixture(scope="module")
def spikes(scene):
    from napari_calcium.core.spikes.deconvolution.api import deconvolve

    _, _, ts, dff = scene
    return deconvolve(dff.dff, frame_rate_hz=30, ids=ts.ids)


def _assert_same_spikes(a, b):
    for name in ("c", "s", "activity", "baseline", "lam", "tau_decay_s", "tau_rise_s", "noise"):
        assert _bits_equal(getattr(a, name), getattr(b, name)), name
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.method == b.method and a.frame_rate_hz == b.frame_rate_hz
    assert b.parameters == json.loads(json.dumps(a.parameters))


@pytest.mark.parametrize("fmt", ["npz", "csv"])
def test_spikes_round_trip_is_bit_exact(tmp_path, scene, spikes, fmt):
    _, rois, ts, dff = scene
    files = save_traces(
        tmp_path / f"run.{fmt}", ts, dff=dff, rois=rois, spikes=spikes, spikes_input="dff"
    )
    if fmt == "csv":
        names = {f.name for f in files}
        assert {"run_deconv_c.csv", "run_deconv_s.csv", "run_deconv_activity.csv",
                "run_deconv_baseline.csv", "run_baseline.csv"} <= names  # fmt: skip
    ts2, dff2, spikes2, side = load_traces(files[0], with_spikes=True)
    _assert_same(ts, dff, ts2, dff2)  # the dF/F baseline is not the deconvolution's
    _assert_same_spikes(spikes, spikes2)
    np.testing.assert_array_equal(spikes2.fit, spikes.fit)
    info = side["deconvolution"]
    assert side["version"] == 2 and info["input"] == "dff" and info["method"] == spikes.method
    np.testing.assert_array_equal(info["per_roi"]["deconv_tau_decay_s"], spikes.tau_decay_s)
    assert load_traces(files[-1], with_spikes=True)[2] is not None  # the sidecar path too
    assert len(load_traces(files[0])) == 3  # the 3-tuple API is unchanged


def test_sets_without_spikes_stay_version_1(tmp_path, scene):
    _, _, ts, dff = scene
    files = save_traces(tmp_path / "a.npz", ts, dff=dff)
    side = json.loads(files[-1].read_text())
    assert side["version"] == 1 and "deconvolution" not in side
    with np.load(files[0], allow_pickle=False) as z:
        assert int(z["version"]) == 1 and not any(n.startswith("deconv") for n in z.files)
    assert load_traces(files[0], with_spikes=True)[2] is None


def test_spikes_of_other_traces_are_refused(tmp_path, scene, spikes):
    import dataclasses

    _, _, ts, _ = scene
    with pytest.raises(ParameterError, match="different ROI ids"):
        save_traces(tmp_path / "a.npz", ts, spikes=dataclasses.replace(spikes, ids=spikes.ids + 1))
    with pytest.raises(ShapeError):
        save_traces(tmp_path / "a.npz", ts, spikes=dataclasses.replace(spikes, c=spikes.c[:, :5]))
    with pytest.raises(ParameterError, match="DeconvolutionResult"):
        save_traces(tmp_path / "a.npz", ts, spikes=spikes.c)
    assert not list(tmp_path.iterdir())


def test_nwb_with_spikes(tmp_path, scene, spikes):
    from pynwb import NWBHDF5IO

    _, rois, ts, dff = scene
    out = tmp_path / "s.nwb"
    save_nwb(out, ts, rois=rois, dff=dff, spikes=spikes, spikes_input="dff", **_nwb_kwargs())
    with NWBHDF5IO(str(out), "r") as io:
        ophys = io.read().processing["ophys"]
        pairs = {"deconvolved": "activity", "deconvolved_s": "s", "deconvolved_c": "c"}
        pairs["deconvolved_baseline"] = "baseline"
        for nwb_name, name in pairs.items():
            series = ophys[nwb_name]
            assert _bits_equal(series.data[:], np.asarray(getattr(spikes, name)).T), nwb_name
            assert series.rate == 30.0 and "dff" in series.comments
        ps = ophys["ImageSegmentation"]["PlaneSegmentation"]
        np.testing.assert_array_equal(ps["deconv_tau_decay_s"][:], spikes.tau_decay_s)
        np.testing.assert_array_equal(ps["deconv_noise"][:], spikes.noise)

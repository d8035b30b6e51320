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
    # the sidecar, and the name the set was saved as, load the same set
    for entry in (files[-1], tmp_path / f"run.{fmt}"):
        ts3, _, _ = load_traces(entry)
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
    assert names[-1] == "b.csv.json"
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
    side = "p.json" if fmt == "npz" else "p.csv.json"
    (tmp_path / side).write_text("{}")
    with pytest.raises(OutputExistsError, match=side.replace(".", r"\.")):
        save_traces(tmp_path / f"p.{fmt}", ts)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, side])
    save_traces(tmp_path / f"o.{fmt}", other, dff=dff, overwrite=True)
    ts2, _, _ = load_traces(tmp_path / f"o.{fmt}")
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
    with pytest.raises(RecordingError, match=r"j\.csv\.json"):
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


# ------------------------------------------------------------------------------- sidecar names
@pytest.mark.parametrize("first", ["npz", "csv"])
def test_npz_and_csv_of_one_name_never_collide(tmp_path, scene, spikes, first):
    """Issue 16, point 8: ``out.npz`` and ``out.csv`` both wrote the sidecar ``out.json``."""
    _, rois, ts, dff = scene
    second = "csv" if first == "npz" else "npz"
    a = save_traces(tmp_path / f"out.{first}", ts, dff=dff, rois=rois)
    before = _snapshot(tmp_path)
    b = save_traces(tmp_path / f"out.{second}", ts, dff=dff, rois=rois, spikes=spikes)
    assert not {f.name for f in a} & {f.name for f in b}
    after = _snapshot(tmp_path)
    assert {name: after[name] for name in before} == before  # the first set is untouched
    sets = {first: a, second: b}
    assert sets["npz"][-1].name == "out.json" and sets["csv"][-1].name == "out.csv.json"
    for fmt, files in sets.items():
        for entry in (files[0], files[-1], tmp_path / f"out.{fmt}"):
            ts2, dff2, spikes2, side = load_traces(entry, with_spikes=True)
            _assert_same(ts, dff, ts2, dff2)
            assert side["file_format"] == fmt, entry
            assert (spikes2 is None) == (files is a), entry  # each set reads its own sidecar
    # overwriting one set leaves the other as it was, and it still loads
    kept = {f.name: f.read_bytes() for f in b}
    save_traces(tmp_path / f"out.{first}", ts[::-1], dff=dff, overwrite=True)
    assert {f.name: f.read_bytes() for f in b} == kept
    assert _bits_equal(load_traces(tmp_path / f"out.{second}")[0].F, ts.F)
    assert _bits_equal(load_traces(tmp_path / f"out.{first}")[0].F, ts[::-1].F)


def test_an_npz_named_like_a_csv_set_gets_its_own_sidecar(tmp_path, scene):
    _, _, ts, dff = scene
    npz = save_traces(tmp_path / "x.csv.npz", ts, dff=dff)
    csv = save_traces(tmp_path / "x.csv", ts[::-1])
    assert npz[-1].name == "x.csv.npz.json" and csv[-1].name == "x.csv.json"
    for entry in (npz[0], npz[-1]):
        ts2, dff2, side = load_traces(entry)
        _assert_same(ts, dff, ts2, dff2)
        assert side["file_format"] == "npz"
    for entry in (csv[0], csv[-1], tmp_path / "x.csv"):
        assert _bits_equal(load_traces(entry)[0].F, ts[::-1].F)


@pytest.mark.parametrize("fmt", ["npz", "csv"])
def test_sidecars_named_by_earlier_versions_still_load(tmp_path, scene, fmt):
    """Sets written before the CSV sidecar was ``<stem>.csv.json`` had it as ``<stem>.json``."""
    _, rois, ts, dff = scene
    files = save_traces(tmp_path / f"old.{fmt}", ts, dff=dff, rois=rois)
    legacy = tmp_path / "old.json"
    if files[-1] != legacy:
        files[-1].rename(legacy)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f.name for f in files[:-1]] + ["old.json"]
    )
    for entry in (*files[:-1], legacy, tmp_path / f"old.{fmt}"):
        ts2, dff2, side = load_traces(entry)
        _assert_same(ts, dff, ts2, dff2)
        assert side["file_format"] == fmt, entry
    # its checksums are still checked
    with open(files[0], "ab") as fh:
        fh.write(b"\n")
    with pytest.raises(RecordingError, match=files[0].name.replace(".", r"\.")):
        load_traces(legacy)


def test_an_old_csv_sidecar_is_not_taken_for_an_npz(tmp_path, scene):
    """An earlier version let a CSV set replace the NPZ's ``<stem>.json`` (overwrite=True)."""
    _, _, ts, dff = scene
    npz = save_traces(tmp_path / "s.npz", ts, dff=dff)[0]
    (tmp_path / "s.json").unlink()
    csv = save_traces(tmp_path / "s.csv", ts[::-1])
    csv[-1].rename(tmp_path / "s.json")  # the old, shared sidecar name, now the CSV set's
    ts2, dff2, side = load_traces(npz)  # read alone, not through the CSV set's sidecar
    _assert_same(ts, dff, ts2, dff2)
    assert side == {}
    assert _bits_equal(load_traces(csv[0])[0].F, ts[::-1].F)


def test_a_csv_set_without_its_sidecar_names_what_is_missing(tmp_path, scene):
    _, _, ts, _ = scene
    files = save_traces(tmp_path / "n.csv", ts)
    files[-1].unlink()
    with pytest.raises(RecordingError, match=r"n\.csv\.json"):
        load_traces(files[0])


# ------------------------------------------------------------------------------- events
@pytest.fixture(scope="module")
def events(scene):
    from napari_calcium.core.spikes.events import identify_events

    _, _, ts, dff = scene
    found = identify_events(dff.dff, frame_rate_hz=30)
    found[1] = np.zeros(0, np.intp)  # a ROI without events
    assert sum(len(e) for e in found) > 5 and len(found) == ts.n_rois
    return found


def _assert_same_events(got, want):
    assert isinstance(got, list) and len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == np.intp and np.array_equal(a, b)


@pytest.mark.parametrize("fmt", ["npz", "csv"])
def test_events_round_trip(tmp_path, scene, spikes, events, fmt):
    """Issue 16, point 8: events are saved with the traces and load back equal."""
    _, rois, ts, dff = scene
    files = save_traces(
        tmp_path / f"ev.{fmt}", ts, dff=dff, rois=rois, spikes=spikes, spikes_input="dff",
        events=events, events_input="dff",
    )  # fmt: skip
    for entry in (files[0], files[-1], tmp_path / f"ev.{fmt}"):
        ts2, dff2, spikes2, events2, side = load_traces(entry, with_spikes=True, with_events=True)
        _assert_same(ts, dff, ts2, dff2)
        _assert_same_spikes(spikes, spikes2)
        _assert_same_events(events2, events)
        assert side["events"]["source"] == "dff"
        assert side["events"]["n_events"] == sum(len(e) for e in events)
        assert side["events"]["counts"] == [len(e) for e in events]
    ts2, _, events2, _ = load_traces(files[0], with_events=True)
    _assert_same_events(events2, events)
    assert len(load_traces(files[0])) == 3  # the 3-tuple API is unchanged
    # a set saved without events has none
    other = save_traces(tmp_path / f"none.{fmt}", ts, dff=dff)
    assert load_traces(other[0], with_events=True)[2] is None
    assert "events" not in json.loads(other[-1].read_text())


def test_npz_events_are_plain_arrays(tmp_path, scene, events):
    _, _, ts, _ = scene
    files = save_traces(tmp_path / "e.npz", ts, events=events, events_input="corrected")
    assert [f.name for f in files] == ["e.npz", "e.json"]
    with np.load(files[0], allow_pickle=False) as z:
        roi, frame = z["events_roi_id"], z["events_frame"]
        assert roi.dtype == np.int64 and frame.dtype == np.int64
        np.testing.assert_array_equal(roi, np.repeat(ts.ids, [len(e) for e in events]))
        np.testing.assert_array_equal(frame, np.concatenate(events))
        assert json.loads(str(z["events_parameters"]))["source"] == "corrected"
    files[-1].unlink()  # the NPZ alone holds them
    _assert_same_events(load_traces(files[0], with_events=True)[2], events)


def test_events_csv_is_one_row_per_event(tmp_path, scene, events):
    rec, rois, ts, _ = scene
    files = save_traces(tmp_path / "e.csv", ts, events=events, events_input="dff")
    table = tmp_path / "e_events.csv"
    assert table in files and files[-1].name == "e.csv.json"
    lines = table.read_text().splitlines()
    assert lines[0] == "roi_id,frame,time_s"
    assert len(lines) == 1 + sum(len(e) for e in events)
    rows = np.loadtxt(table, delimiter=",", skiprows=1, ndmin=2)  # independent of load_traces
    expected = [(roi, f) for roi, ev in zip(ts.ids, events, strict=True) for f in ev]
    np.testing.assert_array_equal(rows[:, :2], expected)
    np.testing.assert_allclose(rows[:, 2], rows[:, 1] / 30.0, rtol=0, atol=1e-12)
    side = json.loads(files[-1].read_text())
    assert side["events"]["file"] == "e_events.csv"
    assert side["events"]["columns"] == ["roi_id", "frame", "time_s"]
    _assert_same_events(load_traces(table, with_events=True)[2], events)  # any file of the set
    # without a frame rate: frames only; with no event at all: the header only
    no_rate = nc.extract_traces(rec.movie, rois, neuropil=False)
    empty = [np.zeros(0, np.intp) for _ in range(no_rate.n_rois)]
    for name, ev, header in (("r", events, "roi_id,frame"), ("z", empty, "roi_id,frame")):
        files = save_traces(tmp_path / f"{name}.csv", no_rate, events=ev)
        assert (tmp_path / f"{name}_events.csv").read_text().splitlines()[0] == header
        _assert_same_events(load_traces(files[0], with_events=True)[2], ev)


def test_events_that_do_not_fit_the_traces_are_refused(tmp_path, scene, events):
    _, _, ts, _ = scene
    with pytest.raises(ShapeError, match="ROIs"):
        save_traces(tmp_path / "a.npz", ts, events=events[:3])
    late = [*events[:-1], np.array([ts.n_frames])]
    with pytest.raises(ParameterError, match="outside"):
        save_traces(tmp_path / "a.csv", ts, events=late)
    with pytest.raises(ParameterError, match="whole frame indices"):
        save_traces(tmp_path / "a.csv", ts, events=[np.array([0.5])] * ts.n_rois)
    with pytest.raises(ParameterError, match="events"):
        save_traces(tmp_path / "a.npz", ts, events="frames")
    assert not list(tmp_path.iterdir())


def _reseal(sidecar_path, name):
    """Record the current sha256 of ``name`` in the sidecar (a damaged file that passes it)."""
    side = json.loads(sidecar_path.read_text())
    for entry in side["files"]:
        if entry["name"] == name:
            entry["sha256"] = hashlib.sha256((sidecar_path.parent / name).read_bytes()).hexdigest()
    sidecar_path.write_text(json.dumps(side))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("roi,frame\n", "header"),
        ("roi_id,frame,time_s\n1,0.5,0\n", "whole"),
        ("roi_id,frame,time_s\n999,0,0\n", "ROI id"),
        ("roi_id,frame,time_s\n1,200,6.6\n", "outside"),
        ("roi_id,frame,time_s\n1,2\n", "values"),
        ("roi_id,frame,time_s\n1,x,0\n", "cannot read"),
    ],
)
def test_damaged_events_csv_is_named(tmp_path, scene, events, text, words):
    _, _, ts, _ = scene
    files = save_traces(tmp_path / "d.csv", ts, events=events)
    table = tmp_path / "d_events.csv"
    table.write_text(text)
    with pytest.raises(RecordingError, match=r"d_events\.csv.*sha256"):
        load_traces(files[0], with_events=True)  # a changed file fails its checksum
    _reseal(files[-1], table.name)
    with pytest.raises(RecordingError, match=r"d_events\.csv") as info:
        load_traces(files[0], with_events=True)
    assert words in info.value.problem, info.value


def test_failure_writing_events_leaves_nothing(tmp_path, scene, events, monkeypatch):
    _, _, ts, dff = scene
    save_traces(tmp_path / "old.csv", ts, dff=dff, events=events)
    before = _snapshot(tmp_path)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(trace_files, "_write_events_csv", broken)
    for path, overwrite in ((tmp_path / "new.csv", False), (tmp_path / "old.csv", True)):
        with pytest.raises(OSError, match="disk full"):
            save_traces(path, ts[::-1], dff=dff, events=events, overwrite=overwrite)
        assert _snapshot(tmp_path) == before  # no new files, no temp files, the old set whole


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"events_frame": np.array([0, 10**6])}, "outside"),
        ({"events_roi_id": np.array([999, 999])}, "not among"),
        ({"events_frame": np.array([0.0, 1.0])}, "not integer"),
        ({"events_frame": None}, "only one of the event arrays"),
    ],
)
def test_damaged_npz_events_are_named(tmp_path, scene, change, words):
    _, _, ts, _ = scene
    events = [np.array([1, 5])] + [np.zeros(0, np.intp)] * (ts.n_rois - 1)
    files = save_traces(tmp_path / "d.npz", ts, events=events)
    files[-1].unlink()  # the NPZ alone: its checksum is not what stops it
    with np.load(files[0], allow_pickle=False) as z:
        members = {name: z[name] for name in z.files}
    for name, value in change.items():
        if value is None:
            del members[name]
        else:
            members[name] = value
    np.savez(files[0], **members)
    with pytest.raises(RecordingError, match=r"d\.npz") as info:
        load_traces(files[0], with_events=True)
    assert words in info.value.problem, info.value

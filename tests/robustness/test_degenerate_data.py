"""Degenerate data never turns into silent NaN or inf (issue 15).

An ROI that cannot give a trace (no pixels, or every pixel shared with other ROIs) is refused by
``extract_traces`` with our error naming it, before a frame is read. A trace whose baseline F0 is
not positive (an all-zero ROI, a neuropil brighter than the cell) is flagged by ``compute_dff``:
``DffResult.baseline_ok`` is False for it, its dF/F is NaN (never ±inf or a huge number), and one
:class:`DegenerateTraceWarning` names it; no numpy ``RuntimeWarning`` escapes. The functions that
read dF/F downstream (``snr``, ``standardized_noise``, ``identify_events``, trace processing) pass
such flagged rows through as NaN / no events instead of failing or inventing values.

Every case starts from a small synthetic recording with one ROI made degenerate.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.core.traces import processing
from napari_calcium.core.traces.dff import DFF_METHODS, DegenerateTraceWarning
from napari_calcium.errors import ParameterError

FS = 30.0


@pytest.fixture(scope="module")
def recording():
    """A 64 x 64, 300-frame recording with 6 cells and its true ROIs (ids 1..6)."""
    rec = nc.simulate_recording(
        n_frames=300, shape=(64, 64), n_neurons=6, frame_rate_hz=FS, pixel_size_um=2.0, seed=3
    )
    movie = np.asarray(rec.movie)
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    assert len(rois) >= 4
    return movie, rois


@pytest.fixture(scope="module")
def traces(recording):
    movie, rois = recording
    return nc.extract_traces(movie, rois, frame_rate_hz=FS, min_pixels=100)


class _CountingMovie:
    """A (frames, y, x) movie that counts how often frames are read."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.reads = data, 0
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim

    def __getitem__(self, key):
        self.reads += 1
        return self.data[key]


@pytest.fixture
def no_runtime_warnings():
    """Fail on any numpy RuntimeWarning (divide by zero, invalid value, empty slice)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# ------------------------------------------------------------------------- extraction: refuse
def test_roi_moved_outside_the_image_is_refused_before_any_frame_is_read(recording):
    movie, rois = recording
    gone = nc.shift_rois(rois[[2]], (200, 0))  # the row stays, with no pixel left
    assert gone.area.tolist() == [0]
    bad = rois.concat(gone.replace(ids=[42]))
    counting = _CountingMovie(movie)
    with pytest.raises(ParameterError) as err:
        nc.extract_traces(counting, bad, frame_rate_hz=FS)
    message = str(err.value)
    assert f"rows [{len(rois)}]" in message and "ids [42]" in message
    assert "no pixels" in message and "rois[rois.area > 0]" in message
    assert counting.reads == 0
    good = nc.extract_traces(movie, bad[bad.area > 0], frame_rate_hz=FS, min_pixels=100)
    assert good.ids.tolist() == rois.ids.tolist()


def test_roi_built_from_an_empty_pixel_list_is_refused(recording):
    movie, rois = recording
    pixels = [rois.pixels(i)[:2] for i in range(len(rois))]
    pixels.insert(1, (np.zeros(0, int), np.zeros(0, int)))
    bad = nc.RoiSet.from_pixels(pixels, rois.shape)
    with pytest.raises(ParameterError, match=r"rows \[1\] \(ids \[2\]\)"):
        nc.extract_traces(movie, bad, frame_rate_hz=FS, neuropil=False)


def test_roi_whose_every_pixel_is_shared_is_refused_unless_overlap_is_allowed(recording):
    movie, rois = recording
    ypix, xpix, _ = rois.pixels(0)
    inner = nc.RoiSet.from_pixels([(ypix[: ypix.size // 2], xpix[: xpix.size // 2])], rois.shape)
    nested = rois.concat(inner.replace(ids=[99]))  # a small ROI drawn inside ROI 1
    counting = _CountingMovie(movie)
    with pytest.raises(ParameterError) as err:
        nc.extract_traces(counting, nested, frame_rate_hz=FS)
    message = str(err.value)
    assert f"rows [{len(rois)}] (ids [99])" in message and "allow_overlap=True" in message
    assert counting.reads == 0
    both = nc.extract_traces(movie, nested, frame_rate_hz=FS, allow_overlap=True, min_pixels=100)
    assert np.all(both.F[-1] > 0)


def test_roi_without_neuropil_pixels_is_flagged_and_left_uncorrected(recording):
    movie, rois = recording
    labels = rois.to_label_image()
    background = nc.RoiSet.from_dense((labels == 0)[None])  # one ROI over all the rest
    covered = rois.concat(background.replace(ids=[500]))
    with pytest.warns(DegenerateTraceWarning, match="no neuropil pixels") as record:
        tr = nc.extract_traces(movie, covered, frame_rate_hz=FS, min_pixels=100)
    assert len(record) == 1 and "ids [1, 2" in str(record[0].message)
    assert np.all(tr.coefficients == 0)  # no correction was applied, and the result says so
    np.testing.assert_array_equal(tr.corrected, tr.F)
    assert tr.parameters["no_neuropil_ids"] == covered.ids.tolist()


# ------------------------------------------------------------------------------ dF/F: flag
@pytest.mark.parametrize("method", DFF_METHODS)
def test_all_zero_trace_is_flagged_nan_and_warned(traces, method, no_runtime_warnings):
    x = traces.corrected.copy()
    x[1] = 0.0  # e.g. a ROI in the zero-padded border of a motion-corrected movie
    with pytest.warns(DegenerateTraceWarning) as record:
        res = nc.compute_dff(x, frame_rate_hz=FS, method=method)
    assert len(record) == 1
    message = str(record[0].message)
    assert "rows [1]" in message and "F0 = 0" in message
    assert res.dff.shape == x.shape
    assert res.baseline_ok.tolist() == [i != 1 for i in range(len(x))]
    assert np.isnan(res.dff[1]).all()
    assert np.isfinite(np.delete(res.dff, 1, axis=0)).all()
    alone = nc.compute_dff(np.delete(x, 1, axis=0), frame_rate_hz=FS, method=method)
    np.testing.assert_array_equal(np.delete(res.dff, 1, axis=0), alone.dff)
    assert res.baseline_problems()[1].startswith("F0 = 0")
    assert res.baseline_problems()[0] == ""


def test_neuropil_brighter_than_the_cell_is_flagged(recording, no_runtime_warnings):
    movie, rois = recording
    dim = movie.copy()
    cell = rois.to_label_image() == rois.ids[2]
    dim[:, cell] = (dim[:, cell] * 0.3).astype(dim.dtype)  # a dim soma in bright neuropil
    tr = nc.extract_traces(dim, rois, frame_rate_hz=FS, min_pixels=100)
    assert np.median(tr.corrected[2]) < 0  # F - 0.7 Fneu below zero, as on real recordings
    with pytest.warns(DegenerateTraceWarning, match=r"rows \[2\]") as record:
        res = nc.compute_dff(tr.corrected, frame_rate_hz=FS)
    assert "F0 <= 0" in str(record[0].message) and "neuropil" in str(record[0].message)
    assert not res.baseline_ok[2] and res.baseline_ok.sum() == len(rois) - 1
    assert np.isnan(res.dff[2]).all()
    assert np.nanmax(np.abs(res.dff)) < 50  # nothing explodes


def test_in_place_dff_flags_the_same_rows(traces, no_runtime_warnings):
    x = traces.corrected.copy()
    x[3] = 0.0
    with pytest.warns(DegenerateTraceWarning):
        expected = nc.compute_dff(x.copy(), frame_rate_hz=FS, method="percentile")
    with pytest.warns(DegenerateTraceWarning):
        res = nc.compute_dff(x, frame_rate_hz=FS, method="percentile", in_place=True)
    assert res.dff is x and np.isnan(x[3]).all()
    np.testing.assert_array_equal(x, expected.dff)
    assert res.baseline_ok.tolist() == expected.baseline_ok.tolist()


def test_positive_offset_clears_the_flag(traces, no_runtime_warnings):
    x = traces.corrected.copy()
    x[1] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateTraceWarning)
        res = nc.compute_dff(x, frame_rate_hz=FS, method="percentile", offset=10.0)
    assert res.baseline_ok.all() and np.isfinite(res.dff).all()


def test_flags_survive_a_save_and_load(tmp_path, traces):
    x = traces.corrected.copy()
    x[0] = 0.0
    with pytest.warns(DegenerateTraceWarning):
        res = nc.compute_dff(x, frame_rate_hz=FS)
    nc.save_traces(tmp_path / "t.npz", traces, dff=res)
    _, loaded, _ = nc.load_traces(tmp_path / "t.npz")
    assert loaded.baseline_ok.tolist() == res.baseline_ok.tolist()
    assert loaded.baseline_problems() == res.baseline_problems()


# ------------------------------------------------------------------ downstream of flagged rows
@pytest.fixture
def flagged(traces):
    x = traces.corrected.copy()
    x[1] = 0.0
    with pytest.warns(DegenerateTraceWarning):
        return nc.compute_dff(x, frame_rate_hz=FS)


def test_snr_and_noise_pass_flagged_rows_as_nan(flagged, no_runtime_warnings):
    good = np.delete(flagged.dff, 1, axis=0)
    for values, alone in (
        (nc.snr(flagged.dff), nc.snr(good)),
        (
            nc.standardized_noise(flagged.dff, frame_rate_hz=FS),
            nc.standardized_noise(good, frame_rate_hz=FS),
        ),
    ):
        assert np.isnan(values[1])
        np.testing.assert_array_equal(np.delete(values, 1), alone)


def test_partly_nan_traces_are_still_refused(flagged):
    x = flagged.dff.copy()
    x[0, 10] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        nc.snr(x)
    with pytest.raises(ParameterError, match="NaN"):
        nc.identify_events(x, frame_rate_hz=FS)


def test_snr_of_a_constant_trace_is_nan_not_inf(traces, no_runtime_warnings):
    dff = nc.compute_dff(traces.corrected, frame_rate_hz=FS).dff.copy()
    dff[2] = 0.0  # a constant trace: no noise, no signal
    with pytest.warns(DegenerateTraceWarning, match=r"rows \[2\]"):
        values = nc.snr(dff)
    assert np.isnan(values[2]) and np.isfinite(np.delete(values, 2)).all()


def test_events_skip_flagged_rows_with_a_warning(flagged, no_runtime_warnings):
    with pytest.warns(DegenerateTraceWarning, match=r"rows \[1\]"):
        events = nc.identify_events(flagged.dff, frame_rate_hz=FS)
    alone = nc.identify_events(np.delete(flagged.dff, 1, axis=0), frame_rate_hz=FS)
    assert len(events) == len(flagged.dff) and events[1].size == 0
    assert [e.tolist() for i, e in enumerate(events) if i != 1] == [e.tolist() for e in alone]


@pytest.mark.parametrize(
    "call",
    [
        lambda x: processing.detrend_polynomial(x, order=2),
        lambda x: processing.perona_malik(x),
        lambda x: processing.bandpass(x, frame_rate_hz=FS, low_hz=0.1, high_hz=5.0),
        lambda x: processing.smooth(x, frame_rate_hz=FS, sigma_s=0.1),
        lambda x: processing.smooth(x, frame_rate_hz=FS, method="savgol", window_s=0.3),
    ],
    ids=["detrend", "perona_malik", "bandpass", "gaussian", "savgol"],
)
def test_processing_keeps_degenerate_rows_to_themselves(flagged, call, no_runtime_warnings):
    x = flagged.dff.copy()
    x[2] = 0.0  # a constant row next to the flagged (NaN) row 1
    out = call(x)
    assert np.isnan(out[1]).all() and np.isfinite(out[2]).all()
    np.testing.assert_allclose(out[[0, 3]], call(x[[0, 3]]), rtol=1e-5, atol=1e-6)


def test_whole_chain_with_a_dead_roi(recording, no_runtime_warnings):
    """Movie -> traces -> dF/F -> events, SNR, noise with one ROI's pixels at 0 throughout."""
    movie, rois = recording
    dead = movie.copy()
    dead[:, rois.to_label_image() == rois.ids[0]] = 0
    tr = nc.extract_traces(dead, rois, frame_rate_hz=FS, neuropil=False)
    assert np.all(tr.F[0] == 0)
    with pytest.warns(DegenerateTraceWarning, match=r"rows \[0\]"):
        res = nc.compute_dff(tr.corrected, frame_rate_hz=FS)
    with pytest.warns(DegenerateTraceWarning):
        events = nc.identify_events(res.dff, frame_rate_hz=FS)
    assert events[0].size == 0 and sum(e.size for e in events[1:]) > 0
    assert np.isnan(nc.snr(res.dff)[0]) and np.isfinite(nc.snr(res.dff)[1:]).all()

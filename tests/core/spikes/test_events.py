"""Tests of napari_calcium.core.spikes.events on synthetic traces with known event times."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcium.core.spikes.events import (
    calc_firing_rates,
    calc_mean_firing_rates,
    collect_waveforms,
    event_counts,
    event_onset_intensities,
    generate_raster,
    identify_events,
    identify_events_calscipy,
    inter_event_intervals,
    normalize_firing_rates,
    scale_waveforms,
)
from napari_calcium.errors import ParameterError, ShapeError

FS = 30.0


def transients(onsets_per_roi, n_frames=3000, noise=0.02, tau_s=1.0, seed=0):
    """Traces with an instantaneous rise at each onset frame and exponential decay."""
    rng = np.random.default_rng(seed)
    x = np.zeros((len(onsets_per_roi), n_frames))
    for i, onsets in enumerate(onsets_per_roi):
        for k in onsets:
            x[i, k:] += rng.uniform(0.8, 1.5) * np.exp(-np.arange(n_frames - k) / (tau_s * FS))
    return x + rng.normal(scale=noise, size=x.shape)


def random_onsets(rng, n_frames=3000, n=12, spacing=45):
    return np.sort(rng.choice(np.arange(40, n_frames - 40, spacing), n, replace=False))


# --------------------------------------------------------------------------------------------------
# identify_events
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise", [0.0, 0.03])
def test_identify_events_finds_known_onsets(noise):
    rng = np.random.default_rng(3)
    truth = [random_onsets(rng) for _ in range(4)]
    traces = transients(truth, noise=noise, seed=4)
    found = identify_events(traces, frame_rate_hz=FS, threshold_sd=2.0)
    assert len(found) == 4
    for ev, tr in zip(found, truth, strict=True):
        assert ev.dtype == np.intp
        assert ev.size == tr.size
        assert np.abs(ev - tr).max() <= 1


def test_identify_events_calscipy_defaults_noiseless_exact():
    onsets = [60, 300, 333, 900]
    x = transients([onsets], noise=0.0)[0]  # 1-D input: one ROI
    found = identify_events(x, frame_rate_hz=FS)
    assert len(found) == 1
    np.testing.assert_array_equal(found[0], onsets)


def test_identify_events_timeout():
    # 8 frames apart: merged by a 0.5 s (15 frame) timeout, kept with 0.2 s (6 frames).
    x = transients([[200, 208, 600]], noise=0.0)
    merged = identify_events(x, frame_rate_hz=FS, timeout_s=0.5)[0]
    assert merged.size == 2 and merged[1] == 600 and merged[0] in (200, 208)
    split = identify_events(x, frame_rate_hz=FS, timeout_s=0.2)[0]
    assert split.size == 3 and np.abs(split - [200, 208, 600]).max() <= 1  # overlapping smoothing
    # noisy trace, low threshold: many events, none closer than the timeout
    rng = np.random.default_rng(5)
    noisy = rng.normal(size=(3, 2000))
    for timeout_s in (0.3, 1.0):
        frames = round(timeout_s * FS)
        for ev in identify_events(noisy, frame_rate_hz=FS, timeout_s=timeout_s):
            assert ev.size > 5
            assert np.diff(ev).min() >= frames


def test_identify_events_threshold_and_flat():
    x = np.zeros((2, 500))
    x[0, 100:] = 1.0  # one step
    found = identify_events(x, frame_rate_hz=FS, smooth_s=None)
    np.testing.assert_array_equal(found[0], [100])
    assert found[1].size == 0  # flat ROI
    # a falling step is not an event with force_nonneg (negative derivative clipped)
    down = identify_events(1 - x[0], frame_rate_hz=FS)[0]
    assert down.size == 0


def test_identify_events_bad_input():
    with pytest.raises(ParameterError, match="frame_rate_hz"):
        identify_events(np.zeros(10), frame_rate_hz=0)
    with pytest.raises(ParameterError, match="timeout_s"):
        identify_events(np.zeros(10), frame_rate_hz=FS, timeout_s=-1)
    with pytest.raises(ShapeError, match="traces"):
        identify_events(np.zeros((2, 3, 4)), frame_rate_hz=FS)
    with pytest.raises(ParameterError, match="NaN"):
        identify_events(np.array([0.0, np.nan, 1.0]), frame_rate_hz=FS)


def _identify_events_reference(x, fs, smooth_s=0.1, threshold_sd=0.5, timeout_s=0.5):
    """A frozen copy of the CalSciPy rule as ``identify_events`` implemented it before issue 17
    (numpy/scipy only): its results must not change now that ``detect_events`` is the default."""
    import scipy.ndimage
    import scipy.signal

    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    d = np.zeros_like(x)
    d[:, 1:] = (x[:, 1:] - x[:, :-1]) * fs
    if smooth_s:
        d = scipy.ndimage.gaussian_filter1d(d, smooth_s * fs, axis=-1, mode="nearest")
    d = np.clip(d, 0, None)
    sd = d.std(axis=1)
    out = []
    for i in range(x.shape[0]):
        if not sd[i] > 0:
            out.append(np.zeros(0, np.intp))
            continue
        peaks, _ = scipy.signal.find_peaks(
            d[i], height=threshold_sd * sd[i], distance=max(1, round(timeout_s * fs))
        )
        out.append(peaks)
    return out


@pytest.mark.parametrize(
    ("fs", "kwargs"),
    [
        (30.0, {}),
        (7.0, {}),
        (100.0, {"smooth_s": 0.2, "threshold_sd": 1.5, "timeout_s": 0.3}),
        (30.0, {"smooth_s": None, "threshold_sd": 2.0}),
    ],
)
def test_calscipy_rule_keeps_its_results(fs, kwargs):
    # pure noise plus transients: every frame of the old output must come back
    rng = np.random.default_rng(21)
    x = rng.normal(scale=0.05, size=(5, 4000))
    for i in range(4):
        for k in rng.choice(np.arange(50, 3950), 10, replace=False):
            x[i, k:] += rng.uniform(0.2, 1.0) * np.exp(-np.arange(4000 - k) / (0.8 * fs))
    ref = _identify_events_reference(x, fs, **{"smooth_s": 0.1, **kwargs})
    for fn in (identify_events, identify_events_calscipy):
        got = fn(x, frame_rate_hz=fs, **kwargs)
        assert len(got) == 5
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_array_equal(a, b)
    # the known weakness kept under its own name: ~1 event/s of pure noise (row 4)
    assert len(identify_events_calscipy(x[4], frame_rate_hz=30.0)[0]) / (4000 / 30.0) > 0.5


# --------------------------------------------------------------------------------------------------
# onset intensities, intervals, counts
# --------------------------------------------------------------------------------------------------
def test_onsets_intervals_counts():
    rng = np.random.default_rng(7)
    traces = rng.normal(size=(3, 200))
    events = [[10, 40, 100], [], np.array([5, 199])]
    vals = event_onset_intensities(traces, events)
    np.testing.assert_array_equal(vals[0], traces[0, [10, 40, 100]])
    assert vals[1].size == 0
    np.testing.assert_array_equal(vals[2], traces[2, [5, 199]])
    iei = inter_event_intervals(events, frame_rate_hz=20.0)
    np.testing.assert_allclose(iei[0], [1.5, 3.0])
    assert iei[1].size == 0
    np.testing.assert_allclose(iei[2], [194 / 20.0])
    np.testing.assert_array_equal(event_counts(events), [3, 0, 2])
    # unsorted input, a dict (ACE) and a boolean raster give the same answers
    assert inter_event_intervals([[100, 10, 40]], frame_rate_hz=20.0)[0].tolist() == [1.5, 3.0]
    np.testing.assert_array_equal(event_counts({1: [3], 0: [1, 2]}), [2, 1])
    np.testing.assert_array_equal(event_counts(generate_raster(events, 200)), [3, 0, 2])


def test_event_input_errors():
    traces = np.zeros((2, 50))
    with pytest.raises(ParameterError, match="outside"):
        event_onset_intensities(traces, [[1], [50]])
    with pytest.raises(ParameterError, match="outside"):
        event_counts([[-1, 3]])
    with pytest.raises(ShapeError, match="lists 1 ROIs"):
        event_onset_intensities(traces, [[1]])
    with pytest.raises(ParameterError, match="whole frame"):
        event_counts([[1.5]])
    with pytest.raises(ParameterError, match="sequence"):
        event_counts(5)


# --------------------------------------------------------------------------------------------------
# firing rates
# --------------------------------------------------------------------------------------------------
def test_firing_rates_in_hz():
    rng = np.random.default_rng(11)
    prob = rng.uniform(0, 0.2, size=(5, 600))
    rates = calc_firing_rates(prob, FS)
    np.testing.assert_allclose(rates, prob * FS)
    np.testing.assert_allclose(calc_firing_rates(prob, bin_duration_s=0.5), prob * 2)
    assert not np.shares_memory(rates, prob)
    work = prob.copy()
    assert calc_firing_rates(work, FS, in_place=True) is work
    # a raster with a known number of spikes: mean rate = spikes / duration
    raster = np.zeros((3, 600), dtype=np.int64)
    for i, n in enumerate((0, 30, 120)):
        raster[i, rng.choice(600, n, replace=False)] = 1
    mean = calc_mean_firing_rates(calc_firing_rates(raster, FS))
    np.testing.assert_allclose(mean, np.array([0, 30, 120]) / (600 / FS))
    # NaN frames ignored
    r = np.array([[1.0, np.nan, 3.0]])
    np.testing.assert_allclose(calc_mean_firing_rates(r), [2.0])
    with pytest.raises(ParameterError, match="exactly one"):
        calc_firing_rates(prob)
    with pytest.raises(ParameterError, match="exactly one"):
        calc_firing_rates(prob, FS, bin_duration_s=0.1)
    with pytest.raises(ParameterError, match="in_place"):
        calc_firing_rates(raster, FS, in_place=True)


def test_normalize_firing_rates():
    rng = np.random.default_rng(12)
    r = rng.uniform(0, 10, size=(4, 100))
    r[2] = 0.0  # silent ROI
    r[3, 5] = -1.0  # negative value clipped
    out = normalize_firing_rates(r)
    np.testing.assert_allclose(out.max(axis=1), [1, 1, 0, 1])
    np.testing.assert_allclose(out[0], r[0] / r[0].max())
    assert out[3, 5] == 0.0 and out.min() >= 0
    trials = rng.uniform(0, 5, size=(2, 3, 40))
    np.testing.assert_allclose(normalize_firing_rates(trials).max(axis=-1), 1.0)
    work = r.copy()
    assert normalize_firing_rates(work, in_place=True) is work
    with pytest.raises(ShapeError):
        normalize_firing_rates(np.zeros((1, 1, 1, 1)))


# --------------------------------------------------------------------------------------------------
# waveforms
# --------------------------------------------------------------------------------------------------
def test_collect_waveforms_centred_on_events():
    n = 300
    traces = np.stack([np.arange(n) * 1.0, 1000 + np.arange(n) * 1.0])  # value = frame index
    events = [[50, 120, 5], [200, 290]]
    w = collect_waveforms(traces, events, window=(10, 20))
    assert w.shape == (5, 30)
    # each row holds frames e-10 .. e+19: the event sits at column 10
    starts = [5, 50, 120, 200, 290]
    for row, e, off in zip(w, starts, [0, 0, 0, 1000, 1000], strict=True):
        expected = off + np.arange(e - 10, e + 20, dtype=float)
        valid = (expected - off >= 0) & (expected - off < n)
        np.testing.assert_array_equal(row[valid], expected[valid])
        assert np.isnan(row[~valid]).all()
        assert row[10] == off + e
    dropped = collect_waveforms(traces, events, window=(10, 20), edge="drop")
    np.testing.assert_array_equal(dropped[:, 10], [50, 120, 1200])
    per = collect_waveforms(traces, events, window=(10, 20), per_roi=True)
    assert [p.shape[0] for p in per] == [3, 2]
    with pytest.raises(ParameterError, match="window"):
        collect_waveforms(traces, events, window=(-1, 5))
    with pytest.raises(ParameterError, match="edge"):
        collect_waveforms(traces, events, window=(1, 5), edge="clip")


def test_scale_waveforms():
    rng = np.random.default_rng(13)
    w = rng.normal(loc=3, scale=2, size=(6, 40))
    w[5] = 7.0  # flat
    s = scale_waveforms(w)
    np.testing.assert_allclose(s[:5].mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(s[:5].std(axis=1), 1)
    np.testing.assert_array_equal(s[5], 0)
    # axis=0 is StandardScaler on (events, samples): columns standardised
    s0 = scale_waveforms(w[:5], axis=0)
    expected = (w[:5] - w[:5].mean(axis=0)) / w[:5].std(axis=0)
    np.testing.assert_allclose(s0, expected)
    assert len(scale_waveforms([w, w[:2]])) == 2
    with pytest.raises(ShapeError):
        scale_waveforms(np.zeros(5))


# --------------------------------------------------------------------------------------------------
# raster
# --------------------------------------------------------------------------------------------------
def test_generate_raster_equals_known_spikes():
    rng = np.random.default_rng(14)
    truth = rng.random((5, 400)) < 0.05
    truth[3] = False  # a silent ROI
    events = [np.flatnonzero(row) for row in truth]
    raster = generate_raster(events, 400)
    assert raster.dtype == bool and raster.shape == (5, 400)
    np.testing.assert_array_equal(raster, truth)
    # default length: last event + 1 (CalSciPy)
    short = generate_raster([[2, 7], [0]])
    np.testing.assert_array_equal(short, [[0, 0, 1, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0]])
    assert generate_raster([[1]], 3, dtype=np.int32).dtype == np.int32
    # identify_events -> raster -> events round trip
    x = transients([[100, 400], [250]], n_frames=600, noise=0.0)
    ev = identify_events(x, frame_rate_hz=FS)
    r = generate_raster(ev, 600)
    assert [np.flatnonzero(row).tolist() for row in r] == [[100, 400], [250]]
    with pytest.raises(ParameterError, match="n_frames"):
        generate_raster([[], []])
    with pytest.raises(ParameterError, match="outside"):
        generate_raster([[5]], 5)
    with pytest.raises(ParameterError, match="n_frames"):
        generate_raster([[1]], 0)

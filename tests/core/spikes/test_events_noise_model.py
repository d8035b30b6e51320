"""detect_events (issue 17): the noise model, its false-event rate on noise, and its result type.

Goal: at the defaults, pure noise — white, AR(1) and pink, at 7, 30 and 100 Hz — gives at most
0.01 false events per second. The traces are long (8 ROIs x 1,000 s = 8,000 s per case: about
40 expected events at the default 0.005/s, so the bound of 80 is not luck) and the seeds fixed.
The CalSciPy rule (``identify_events``) fails the same check by two orders of magnitude; a test
below keeps that on record.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import scipy.signal
from scipy.stats import norm

from napari_calcium.core.spikes.event_detection import (
    DEFAULT_FALSE_RATE_HZ,
    EventList,
    detect_events,
    noise_false_rate_hz,
    threshold_for_false_rate,
)
from napari_calcium.core.spikes.events import (
    event_counts,
    generate_raster,
    identify_events,
    inter_event_intervals,
)
from napari_calcium.core.traces.dff import DegenerateTraceWarning
from napari_calcium.errors import ParameterError, ShapeError

GOAL_HZ = 0.01  # issue 17: false events per second on noise, at the defaults
N_ROIS, DURATION_S = 8, 1000.0


def noise(kind: str, fs: float, n_rois: int = N_ROIS, duration_s: float = DURATION_S, seed=0):
    """Unit-σ noise ``(n_rois, n_frames)``: white, AR(1) with τ = 0.5 s, or pink (1/f power)."""
    rng = np.random.default_rng([seed, int(fs), len(kind)])
    n = round(duration_s * fs)
    w = rng.standard_normal((n_rois, n))
    if kind == "white":
        return w
    if kind == "ar1":
        g = np.exp(-1.0 / (0.5 * fs))
        return scipy.signal.lfilter([np.sqrt(1 - g * g)], [1.0, -g], w, axis=1)
    spec = np.fft.rfft(w, axis=1)  # pink
    f = np.fft.rfftfreq(n, d=1.0 / fs)
    spec[:, 1:] /= np.sqrt(f[1:])
    spec[:, 0] = 0.0
    x = np.fft.irfft(spec, n=n, axis=1)
    return x / x.std(axis=1, keepdims=True)


def rate(events, n_rois=N_ROIS, duration_s=DURATION_S) -> float:
    return sum(len(e) for e in events) / (n_rois * duration_s)


# --------------------------------------------------------------------------------------------------
# the goal on noise
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["white", "ar1", "pink"])
@pytest.mark.parametrize("fs", [7.0, 30.0, 100.0])
def test_noise_gives_at_most_goal_false_events_at_defaults(kind, fs):
    x = noise(kind, fs)
    ev = detect_events(x, frame_rate_hz=fs)
    assert rate(ev) <= GOAL_HZ, (kind, fs, rate(ev))
    # and it is the rate asked for, not zero by accident: within a factor 2.5 of 0.005/s
    assert rate(ev) >= DEFAULT_FALSE_RATE_HZ / 2.5
    # scale does not matter: the same events at 1000x the amplitude (or 1e-3x)
    for scale in (1e3, 1e-3):
        for a, b in zip(detect_events(x[:2] * scale, frame_rate_hz=fs), ev[:2], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fs", [7.0, 30.0, 100.0])
def test_calscipy_rule_fails_the_noise_goal(fs):
    # the same check on the old defaults: ~1 event/s, 100x the goal (issue 17)
    x = noise("white", fs, n_rois=2, duration_s=500.0)
    assert rate(identify_events(x, frame_rate_hz=fs), 2, 500.0) > 50 * GOAL_HZ


@pytest.mark.parametrize("fs", [7.0, 30.0, 100.0])
@pytest.mark.parametrize("smooth_s", [0.0, 0.075, 0.3])
@pytest.mark.parametrize("kind", ["white", "ar1"])
def test_false_rate_is_calibrated_for_rate_smoothing_and_colour(fs, smooth_s, kind):
    # at a high rate there are enough events to check the calibration itself (Poisson SD ≤ 5 %)
    x = noise(kind, fs, n_rois=4, duration_s=500.0 if fs == 100.0 else 1000.0)
    asked = 0.2
    ev = detect_events(x, frame_rate_hz=fs, smooth_s=smooth_s, false_rate_hz=asked, timeout_s=0)
    got = rate(ev, 4, x.shape[1] / fs)
    assert 0.8 * asked <= got <= 1.2 * asked, (got, ev.threshold_sigma)


def test_noise_model_formulas():
    # independent frames: P(z[t-1] < k <= z[t]) = Φ(k) (1 - Φ(k))
    k = np.array([0.5, 2.0, 3.5])
    np.testing.assert_allclose(noise_false_rate_hz(k, 0.0, 10.0), 10 * norm.cdf(k) * norm.sf(k))
    # up-crossings at the median: arccos(ρ) / 2π per frame
    for rho in (-0.5, 0.3, 0.9):
        np.testing.assert_allclose(
            noise_false_rate_hz(0.0, rho, 1.0), np.arccos(rho) / (2 * np.pi), rtol=1e-9
        )
    # the threshold inverts the rate, per ROI
    rho = np.array([-0.5, 0.0, 0.95, 0.999])
    thr = threshold_for_false_rate(0.005, rho, 30.0)
    np.testing.assert_allclose(noise_false_rate_hz(thr, rho, 30.0), 0.005, rtol=1e-6)
    assert np.all(np.diff(threshold_for_false_rate(np.array([1.0, 0.1, 0.01]), 0.5, 30.0)) > 0)
    assert threshold_for_false_rate(29.0, 0.0, 30.0) == 0.0  # more than noise can give


# --------------------------------------------------------------------------------------------------
# activity, not noise: quiet ROIs get nothing, active ones their transients
# --------------------------------------------------------------------------------------------------
def _with_transients(fs=30.0, n_frames=6000, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=[[0.02], [0.2], [0.05], [0.05]], size=(4, n_frames))
    onsets = np.sort(rng.choice(np.arange(100, n_frames - 100, 90), 20, replace=False))
    for k in onsets:
        x[2:, k:] += 0.4 * np.exp(-np.arange(n_frames - k) / (1.0 * fs))
    return x, onsets


def test_quiet_rois_get_no_events_and_active_ones_their_transients():
    x, onsets = _with_transients()
    ev = detect_events(x, frame_rate_hz=30.0)
    assert isinstance(ev, EventList) and len(ev) == 4
    assert ev.counts[:2].sum() <= 2  # two pure-noise ROIs, σ 0.02 and 0.2: ~0 events
    for i in (2, 3):  # 20 transients of 8 σ, all found at ±1 frame; ≤ 2 false events in 200 s
        assert 20 <= ev.counts[i] <= 22
        near = np.abs(ev[i][:, None] - onsets[None, :]).min(axis=0)
        assert near.max() <= 1
        true = np.abs(ev[i][:, None] - onsets[None, :]).min(axis=1) <= 1
        assert np.all(ev.snr[i][true] > 5) and np.all(ev.snr[i][~true] < 3)
        # rises of 0.4 measured on the trace smoothed by 0.075 s: 0.28-0.42
        assert np.all((ev.amplitude[i][true] > 0.28) & (ev.amplitude[i][true] < 0.42))
        np.testing.assert_allclose(ev.snr[i], ev.amplitude[i] / ev.noise_sd[i])
        assert np.all(ev.score[i] >= ev.threshold_sigma[i])
    np.testing.assert_allclose(ev.noise_sd, [0.02, 0.2, 0.05, 0.05], rtol=0.1)
    # the old rule: the quiet ROIs get as many events as the active ones (issue 17)
    old = event_counts(identify_events(x, frame_rate_hz=30.0))
    assert old[:2].min() > 50


def test_parameters_move_the_threshold():
    x, _ = _with_transients(seed=5)
    base = detect_events(x, frame_rate_hz=30.0)
    strict = detect_events(x, frame_rate_hz=30.0, false_rate_hz=1e-5)
    assert np.all(strict.threshold_sigma > base.threshold_sigma)
    assert np.all(strict.counts <= base.counts)
    fixed = detect_events(x, frame_rate_hz=30.0, threshold_sigma=6.0)
    np.testing.assert_array_equal(fixed.threshold_sigma, 6.0)
    assert np.all(fixed.false_rate_hz < 1e-6)
    assert fixed.parameters["threshold_sigma"] == 6.0 and fixed.parameters["false_rate_hz"] is None
    assert base.parameters == {
        "method": "noise-model", "frame_rate_hz": 30.0, "smooth_s": 0.075,
        "false_rate_hz": 0.005, "threshold_sigma": None, "timeout_s": 0.5,
        "activity_window_s": 3.0,
    }  # fmt: skip
    # a burst is one event at its first rise; a shorter timeout splits it
    y = np.random.default_rng(1).normal(scale=0.02, size=3000)
    for k in (1000, 1012):
        y[k:] += 0.4 * np.exp(-np.arange(3000 - k) / 30.0)
    near = lambda e: e[(e > 900) & (e < 1100)].tolist()  # noqa: E731
    assert near(detect_events(y, frame_rate_hz=30.0)[0]) == [1000]
    assert near(detect_events(y, frame_rate_hz=30.0, timeout_s=0.2)[0]) == [1000, 1012]


# --------------------------------------------------------------------------------------------------
# the result type: the list of onset frames every event function takes
# --------------------------------------------------------------------------------------------------
def test_eventlist_is_the_onset_list():
    x, _ = _with_transients()
    ev = detect_events(x, frame_rate_hz=30.0)
    assert isinstance(ev, list) and all(e.dtype == np.intp for e in ev)
    np.testing.assert_array_equal(event_counts(ev), ev.counts)
    raster = generate_raster(ev, x.shape[1])
    assert raster.shape == x.shape and raster.sum() == ev.counts.sum()
    assert len(inter_event_intervals(ev, frame_rate_hz=30.0)[2]) == ev.counts[2] - 1
    table = ev.table()
    assert set(table) == {"roi", "frame", "time_s", "amplitude", "snr", "score"}
    assert {len(v) for v in table.values()} == {int(ev.counts.sum())}
    np.testing.assert_allclose(table["time_s"], table["frame"] / 30.0)
    back = pickle.loads(pickle.dumps(ev))
    assert isinstance(back, EventList) and back.parameters == ev.parameters
    np.testing.assert_array_equal(back.snr[2], ev.snr[2])
    assert "4 ROIs" in repr(ev)
    with pytest.raises(ShapeError, match="one value per event"):
        EventList([np.array([1, 2])], amplitude=[np.zeros(1)], snr=[np.zeros(2)],
                  score=[np.zeros(2)], noise_sd=[1.0], threshold_sigma=[3.0],
                  false_rate_hz=[0.005], frame_rate_hz=30.0, parameters={})  # fmt: skip


def test_eventlist_goes_through_save_traces(tmp_path):
    # save_traces(events=...) takes "one array of onset frames per ROI": an EventList is one
    import napari_calcium as nc
    from napari_calcium.io.trace_files import load_traces, save_traces

    rec = nc.simulate_recording(n_frames=600, shape=(48, 48), n_neurons=4, seed=2)
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    ts = nc.extract_traces(rec.movie, rois, frame_rate_hz=30.0)
    dff = nc.compute_dff(ts.corrected, frame_rate_hz=30.0)
    ev = detect_events(dff.dff, frame_rate_hz=30.0)
    assert ev.counts.sum() > 0
    files = save_traces(tmp_path / "t.npz", ts, dff=dff, events=ev, events_input="dff")
    _, _, back, _ = load_traces(files[0], with_events=True)
    assert len(back) == len(ev)
    for a, b in zip(back, ev, strict=True):
        np.testing.assert_array_equal(a, b)


def test_flagged_rows_flat_rows_and_bad_input():
    x, _ = _with_transients()
    x = np.vstack([x, np.full((1, x.shape[1]), np.nan), np.zeros((1, x.shape[1]))])
    with pytest.warns(DegenerateTraceWarning, match=r"detect_events: rows \[4\]"):
        ev = detect_events(x, frame_rate_hz=30.0)
    assert len(ev) == 6 and ev[4].size == 0 and np.isnan(ev.noise_sd[4])
    assert ev[5].size == 0 and ev.noise_sd[5] == 0  # a constant trace: no events
    np.testing.assert_array_equal(ev[2], detect_events(x[2], frame_rate_hz=30.0)[0])
    # a 1-D trace is one ROI
    assert len(detect_events(x[2], frame_rate_hz=30.0)) == 1
    bad = [
        ({"frame_rate_hz": 0}, "frame_rate_hz"),
        ({"frame_rate_hz": 30.0, "false_rate_hz": 0}, "false_rate_hz"),
        ({"frame_rate_hz": 30.0, "false_rate_hz": 30.0}, "below the frame rate"),
        ({"frame_rate_hz": 30.0, "threshold_sigma": -1}, "threshold_sigma"),
        ({"frame_rate_hz": 30.0, "timeout_s": float("nan")}, "timeout_s"),
        ({"frame_rate_hz": 30.0, "smooth_s": -0.1}, "smooth_s"),
        ({"frame_rate_hz": 30.0, "activity_window_s": -1}, "activity_window_s"),
        ({"frame_rate_hz": 1e12}, "smooth_s"),
    ]
    for kwargs, word in bad:
        with pytest.raises(ParameterError, match=word):
            detect_events(x[:2], **kwargs)
    with pytest.raises(ParameterError, match="at least 8"):
        detect_events(np.zeros(5), frame_rate_hz=30.0)
    with pytest.raises(ParameterError, match="NaN"):
        detect_events(np.array([0.0, 1.0, np.nan] * 10), frame_rate_hz=30.0)
    with pytest.raises(ShapeError):
        detect_events(np.zeros((2, 3, 40)), frame_rate_hz=30.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detect_events(np.ones((2, 100)), frame_rate_hz=30.0)  # flat: no warning, no events

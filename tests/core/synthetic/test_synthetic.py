"""The synthetic generator: truth must describe the movie exactly, and look like real data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, optimize

import napari_calcium as nc
from napari_calcium.core.spikes.indicators import INDICATORS, double_exponential, kernel_peak_time_s
from napari_calcium.core.synthetic import recording as synthetic
from napari_calcium.errors import OperationCancelled, ParameterError

SMALL = {"n_frames": 240, "shape": (80, 96), "n_neurons": 10, "seed": 3}


@pytest.fixture(scope="module")
def default_rec():
    """Generator defaults (noise, neuropil, bleaching on), long enough to average transients."""
    return nc.simulate_recording(n_frames=2400, shape=(160, 160), n_neurons=40, seed=11)


def _occlusion(truth) -> np.ndarray:
    coverage = np.minimum(1.0, np.asarray(truth.footprints_sparse.sum(axis=0)).ravel())
    return 1.0 - (1.0 - truth.neuropil_coefficient) * coverage


def _reconstruct(truth) -> np.ndarray:
    """The noise-free movie rebuilt from the truth alone, following the documented image model."""
    n_frames = truth.calcium.shape[1]
    soma = truth.footprints_sparse.T @ (truth.baseline_f0[:, None] * (1.0 + truth.calcium))
    k = len(truth.neuropil_spatial)
    npl = truth.neuropil_spatial.reshape(k, -1).T @ truth.neuropil_temporal
    npl *= _occlusion(truth)[:, None]
    clean = (soma + npl + truth.background.reshape(-1, 1)) * truth.bleaching[None, :]
    return (clean.T + truth.offset_adu).reshape(n_frames, *truth.labels.shape)


def test_shapes_dtypes_and_labels():
    rec = nc.simulate_recording(**SMALL)
    t = rec.truth
    n, frames, (y, x) = 10, 240, SMALL["shape"]
    assert rec.movie.shape == (frames, y, x) and rec.movie.dtype == np.uint16
    assert t.labels.shape == (y, x) and t.labels.dtype == np.int32
    assert t.footprints.shape == (n, y, x)
    assert t.spikes.shape == t.calcium.shape == t.neuropil.shape == (n, frames)
    assert t.baseline_f0.shape == t.dff_per_spike.shape == t.contamination.shape == (n,)
    assert t.shifts.shape == (frames, 2) and not t.shifts.any()
    assert t.bleaching.shape == (frames,) and t.bleaching[0] == 1.0
    # ids 1..n, each label sits on its own cell, in neuron order
    assert set(np.unique(t.labels)) == set(range(n + 1))
    for i in range(n):
        cy, cx = ndimage.center_of_mass(t.labels == i + 1)
        assert np.hypot(cy - t.centers_px[i, 0], cx - t.centers_px[i, 1]) < 2.0
        assert t.footprints[i].max() == pytest.approx(1.0)
        # a labelled pixel is where this cell's weight is the largest and >= 0.5
        inside = t.labels == i + 1
        assert (t.footprints[i][inside] >= 0.5).all()
        assert (t.footprints[i][inside] >= t.footprints[:, inside].max(axis=0) - 1e-6).all()
    assert t.frame_rate_hz == 30.0 and t.pixel_size_um == 1.0
    assert t.cell_diameter_px == pytest.approx(12.0)
    assert rec.metadata["frame_period_s"] == pytest.approx(1 / 30)


def test_somata_vary_in_size_and_some_overlap():
    t = nc.simulate_recording(n_frames=10, shape=(256, 256), n_neurons=80, seed=5).truth
    areas = np.bincount(t.labels.ravel())[1:]
    assert areas.std() / areas.mean() > 0.15  # sizes vary
    expected = np.pi * (t.cell_diameter_px / 2) ** 2
    assert 0.5 * expected < np.median(areas) < 1.5 * expected
    support = (t.footprints > 0.2).sum(axis=0)
    assert (support > 1).sum() > 0  # some footprints overlap


def test_deterministic_per_seed_and_lazy_equals_eager():
    a = nc.simulate_recording(**SMALL)
    b = nc.simulate_recording(**SMALL)
    np.testing.assert_array_equal(a.movie, b.movie)
    np.testing.assert_array_equal(a.truth.spikes, b.truth.spikes)
    c = nc.simulate_recording(**{**SMALL, "seed": 4})
    assert not np.array_equal(a.movie, c.movie)
    lazy = nc.simulate_recording(**SMALL, lazy=True)
    assert type(lazy.movie).__module__.startswith("dask")
    assert lazy.movie.dtype == np.uint16 and lazy.movie.shape == a.movie.shape
    np.testing.assert_array_equal(lazy.movie[37:129].compute(), a.movie[37:129])
    np.testing.assert_array_equal(lazy.movie.compute(), a.movie)


def test_large_movies_are_lazy_by_default(monkeypatch):
    monkeypatch.setattr(synthetic, "LAZY_THRESHOLD_BYTES", 2**20)
    rec = nc.simulate_recording(n_frames=200, shape=(64, 64), n_neurons=3, seed=0)
    assert type(rec.movie).__module__.startswith("dask")  # 1.6 MiB > 1 MiB
    assert rec.movie.chunks[0][0] < 200 or len(rec.movie.chunks[0]) == 1


def test_truth_rebuilds_the_noise_free_movie_exactly():
    """Every term of the documented image model is in the truth, in the right units."""
    rec = nc.simulate_recording(**SMALL, noise=False)
    rebuilt = _reconstruct(rec.truth)
    assert np.abs(rebuilt - rec.movie).max() <= 0.5 + 1e-3  # rounding to integer ADU only


def test_projection_onto_footprints_recovers_calcium():
    """Noise and neuropil off: least-squares projection onto the footprints gives the calcium."""
    rec = nc.simulate_recording(
        n_frames=900, shape=(128, 128), n_neurons=30, seed=7, noise=False, neuropil=False
    )
    t = rec.truth
    y = rec.movie.reshape(len(rec.movie), -1).astype(np.float64) - t.offset_adu
    y = y / t.bleaching[:, None] - t.background.ravel()[None, :]
    a = t.footprints_sparse.toarray().T  # (pixels, n)
    coef, *_ = np.linalg.lstsq(a, y.T, rcond=None)  # (n, frames) = f0 * (1 + c)
    active = t.calcium.std(axis=1) > 0
    assert active.sum() >= 25
    for i in np.flatnonzero(active):
        r = np.corrcoef(coef[i], t.calcium[i])[0, 1]
        assert r >= 0.99, (i, r)
    # and the scale is right: F0 and ΔF/F come back, not just the shape
    f0_est = np.median(coef / (1 + t.calcium), axis=1)
    np.testing.assert_allclose(f0_est, t.baseline_f0, rtol=0.01)


def _fit_decay(
    trace: np.ndarray, spike_frames: np.ndarray, fs: float, tau_rise: float, tau_decay: float
) -> float:
    """Spike-triggered average of isolated transients, then an exponential fit of its decay."""
    pre, post = int(0.3 * fs), int(5 * tau_decay * fs)
    start = int(np.ceil((kernel_peak_time_s(tau_rise, tau_decay) + 3 * tau_rise) * fs))
    snippets = []
    for f in spike_frames:
        if f - pre < 0 or f + post >= len(trace):
            continue
        seg = trace[f - pre : f + post]
        snippets.append(seg - seg[:pre].mean())
    sta = np.mean(snippets, axis=0)[pre:]
    t = np.arange(len(sta)) / fs
    sel = slice(start, None)

    def model(tt, a, tau, b):
        return a * np.exp(-tt / tau) + b

    popt, _ = optimize.curve_fit(model, t[sel], sta[sel], p0=(sta.max(), tau_decay, 0.0))
    return popt[1]


def _isolated_spike_frames(spike_times: np.ndarray, fs: float, before_s: float, after_s: float):
    t = np.asarray(spike_times)
    if t.size == 0:
        return np.empty(0, int)
    gap_before = np.diff(t, prepend=-np.inf)
    gap_after = np.diff(t, append=np.inf)
    keep = (gap_before > before_s) & (gap_after > after_s)
    return (t[keep] * fs).astype(int)


def test_transients_decay_with_the_indicator_tau(default_rec):
    """From the movie itself (defaults: noise, neuropil, bleaching): fitted τ within 10 %."""
    rec = default_rec
    t = rec.truth
    assert t.tau_decay_s == INDICATORS["GCaMP6f"].tau_decay_s
    movie = rec.movie.reshape(len(rec.movie), -1).astype(np.float32)
    fs = t.frame_rate_hz
    traces, frames = [], []
    for i in range(t.n_neurons):
        roi = (t.labels == i + 1).ravel()
        f = movie[:, roi].mean(axis=1)
        sp = _isolated_spike_frames(t.spike_times_s[i], fs, 1.0, 5 * t.tau_decay_s + 0.1)
        # normalise each neuron by its resting level so bright cells do not dominate
        traces.append(f / np.median(f))
        frames.append(sp)
    taus = []
    for trace, sp in zip(traces, frames, strict=True):
        if len(sp) >= 3:
            taus.append((trace, sp))
    assert sum(len(sp) for _, sp in taus) >= 40
    stacked = np.concatenate([tr for tr, _ in taus])
    offsets = np.cumsum([0] + [len(tr) for tr, _ in taus[:-1]])
    all_frames = np.concatenate([sp + o for (_, sp), o in zip(taus, offsets, strict=True)])
    tau = _fit_decay(stacked, all_frames, fs, t.tau_rise_s, t.tau_decay_s)
    assert tau == pytest.approx(t.tau_decay_s, rel=0.10)


def test_tau_follows_the_indicator_preset():
    rec = nc.simulate_recording(
        n_frames=3000,
        shape=(96, 96),
        n_neurons=12,
        seed=2,
        indicator="GCaMP6s",
        firing_rate_hz=(0.1, 0.4),
        noise=False,
        neuropil=False,
    )
    t = rec.truth
    assert t.indicator == "GCaMP6s" and t.tau_decay_s == INDICATORS["GCaMP6s"].tau_decay_s
    trace = np.concatenate([t.calcium[i] for i in range(t.n_neurons)])
    offs = np.arange(t.n_neurons) * t.calcium.shape[1]
    frames = np.concatenate(
        [
            _isolated_spike_frames(t.spike_times_s[i], 30.0, 1.0, 5 * t.tau_decay_s + 0.1) + offs[i]
            for i in range(t.n_neurons)
        ]
    )
    tau = _fit_decay(trace, frames, 30.0, t.tau_rise_s, t.tau_decay_s)
    assert tau == pytest.approx(1.2, rel=0.05)


def test_calcium_is_the_kernel_sum_at_frame_centres():
    t = nc.simulate_recording(n_frames=300, shape=(32, 32), n_neurons=3, seed=1).truth
    fs = t.frame_rate_hz
    centres = (np.arange(300) + 0.5) / fs
    for i in range(3):
        expected = sum(
            double_exponential(centres - s, t.tau_rise_s, t.tau_decay_s) for s in t.spike_times_s[i]
        )
        np.testing.assert_allclose(t.calcium[i], t.dff_per_spike[i] * expected, atol=1e-5)
        counts = np.bincount((t.spike_times_s[i] * fs).astype(int), minlength=300)
        np.testing.assert_array_equal(t.spikes[i], counts)


def test_spike_statistics_rates_and_bursts():
    kw = {"n_frames": 30 * 600, "shape": (48, 48), "n_neurons": 12, "seed": 9, "noise": False}
    t = nc.simulate_recording(**kw).truth
    duration = 600.0
    assert (t.firing_rate_hz >= 0.1).all() and (t.firing_rate_hz <= 2.0).all()
    counts = np.array([len(s) for s in t.spike_times_s])
    # Poisson-ish counts around the drawn rate (bursts inflate the variance: allow 4 sd of 3x var)
    sd = np.sqrt(3 * t.firing_rate_hz * duration)
    assert (np.abs(counts - t.firing_rate_hz * duration) < 4 * sd + 5).all()
    isi = np.concatenate([np.diff(s) for s in t.spike_times_s])
    assert 0.05 < (isi < 0.03).mean() < 0.6  # bursts: many short intervals
    assert isi.min() >= 0.002  # refractory period
    no_burst = nc.simulate_recording(**kw, burst_probability=0.0).truth
    isi0 = np.concatenate([np.diff(s) for s in no_burst.spike_times_s])
    assert (isi0 < 0.03).mean() < 0.05  # only chance coincidences of a Poisson process


def test_neuropil_contaminates_somata_and_is_smooth_and_slow(default_rec):
    t = default_rec.truth
    np.testing.assert_allclose(t.contamination, 0.7, atol=0.1)
    # spatially smooth: neighbouring pixels of the fluctuation maps nearly identical
    for m in t.neuropil_spatial:
        r = np.corrcoef(m[:, :-5].ravel(), m[:, 5:].ravel())[0, 1]
        assert r > 0.9
    # slow: little power above 2 Hz
    for course in t.neuropil_temporal[1:]:
        spec = np.abs(np.fft.rfft(course - course.mean())) ** 2
        f = np.fft.rfftfreq(len(course), 1 / t.frame_rate_hz)
        assert spec[f > 2].sum() < 0.01 * spec.sum()
    # tied to population activity (as cortical neuropil is)
    pop = t.calcium.mean(axis=0)
    assert np.corrcoef(t.neuropil.mean(axis=0), pop)[0, 1] > 0.3
    # and it really is in the somata: soma ROI traces correlate with the neuropil at the cell
    movie = default_rec.movie
    i = int(np.argmin(t.spikes.sum(axis=1)))  # the quietest cell: mostly neuropil + noise
    f = movie[:, t.labels == i + 1].mean(axis=1)
    assert np.corrcoef(f, t.neuropil[i])[0, 1] > 0.5


def test_noise_is_shot_plus_read_noise():
    kw = {**SMALL, "neuropil": True}
    noisy = nc.simulate_recording(**kw).movie.astype(np.float64)
    clean = nc.simulate_recording(**kw, noise=False).movie.astype(np.float64)
    t = nc.simulate_recording(**kw, noise=False).truth
    expected_var = t.adu_per_photon * (clean - t.offset_adu) + t.read_noise_adu**2 + 1 / 12
    ratio = ((noisy - clean) ** 2).mean() / expected_var.mean()
    assert ratio == pytest.approx(1.0, abs=0.05)
    # bright pixels are noisier than dim ones (shot noise)
    bright = clean > np.percentile(clean, 90)
    dim = clean < np.percentile(clean, 10)
    assert (noisy - clean)[bright].std() > 1.3 * (noisy - clean)[dim].std()


def test_bleaching_and_bit_depth():
    # an empty field (background only) dims exactly as the bleaching factor says
    rec = nc.simulate_recording(
        **{**SMALL, "n_neurons": 0}, bleach_fraction=0.3, noise=False, neuropil=False
    )
    assert rec.truth.bleaching[-1] == pytest.approx(0.7, rel=1e-6)
    assert rec.truth.labels.max() == 0 and rec.truth.spikes.shape == (0, 240)
    m = rec.movie.reshape(len(rec.movie), -1).mean(axis=1) - rec.truth.offset_adu
    assert m[-1] / m[0] == pytest.approx(0.7, abs=0.01)
    sat = nc.simulate_recording(**SMALL, bit_depth=8)
    assert sat.movie.max() == 255  # clipped to the digitiser's range


def test_motion_shifts_are_the_ones_applied():
    common = {"n_frames": 120, "shape": (64, 64), "seed": 5}
    # one cell, nothing else: the centroid moves exactly by the recorded shift
    bare = {
        "n_neurons": 1,
        "noise": False,
        "neuropil": False,
        "background_photons": 0.0,
        "offset_adu": 0.0,
        "bleach_fraction": 0.0,
        "cell_diameter_um": 14.0,
    }
    still = nc.simulate_recording(**common, **bare)
    moving = nc.simulate_recording(**common, **bare, motion_px=3.0)
    np.testing.assert_array_equal(still.truth.labels, moving.truth.labels)
    shifts = moving.truth.shifts
    assert np.abs(shifts).max() == pytest.approx(3.0)
    assert np.abs(np.diff(shifts, axis=0)).max() < 1.0  # smooth, subpixel steps
    assert np.unique(np.round(shifts % 1, 2)).size > 10  # genuinely subpixel
    for k in range(0, 120, 7):
        c0 = np.array(ndimage.center_of_mass(still.movie[k].astype(float)))
        c1 = np.array(ndimage.center_of_mass(moving.movie[k].astype(float)))
        np.testing.assert_allclose(c1 - c0, shifts[k], atol=0.03)
    # a full scene: shifting the still frame by the recorded shift (spline, an independent
    # interpolator) matches the moving frame much better than a shift off by 0.3 px
    full_still = nc.simulate_recording(**common, n_neurons=12, noise=False)
    full_moving = nc.simulate_recording(**common, n_neurons=12, noise=False, motion_px=3.0)
    for k in (10, 60, 110):
        ref = full_still.movie[k].astype(float)
        obs = full_moving.movie[k].astype(float)[8:-8, 8:-8]
        s = full_moving.truth.shifts[k]
        good = ndimage.shift(ref, s, order=3, mode="nearest")[8:-8, 8:-8]
        bad = ndimage.shift(ref, s + 0.3, order=3, mode="nearest")[8:-8, 8:-8]
        assert np.abs(good - obs).mean() < 0.35 * np.abs(bad - obs).mean()


def test_progress_and_cancel():
    calls = []

    class Bar:
        def __init__(self, total, desc=None):
            calls.append(("init", total))

        def update(self, n):
            calls.append(("update", n))

        def close(self):
            calls.append(("close", None))

    nc.simulate_recording(**SMALL, progress=Bar)
    assert calls[0] == ("init", 240) and calls[-1] == ("close", None)
    assert sum(n for k, n in calls if k == "update") == 240
    with pytest.raises(OperationCancelled):
        nc.simulate_recording(**SMALL, should_stop=lambda: True)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_frames": 0}, "n_frames"),
        ({"shape": (4, 100)}, "shape"),
        ({"frame_rate_hz": -1}, "frame_rate_hz"),
        ({"indicator": "GFP-nope"}, "indicator"),
        ({"tau_rise_s": 0.5, "tau_decay_s": 0.2}, "tau_decay_s"),
        ({"firing_rate_hz": (2.0, 0.1)}, "firing_rate_hz"),
        ({"neuropil_coefficient": 1.5}, "neuropil_coefficient"),
        ({"bit_depth": 20}, "bit_depth"),
        ({"n_neurons": 400, "shape": (40, 40)}, "n_neurons"),
        ({"cell_diameter_um": 1.0}, "cell_diameter_um"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        nc.simulate_recording(**{**SMALL, **kwargs})

"""detect_events on synthetic calcium with known spikes (issue 17): recall and false events.

Two levels of the package's simulator (:mod:`napari_calcium.core.synthetic`):

* traces: spikes from ``draw_spike_times`` (Poisson, 20 % bursts of 2-6 spikes), calcium from
  ``calcium_from_spikes`` (GCaMP6f/6s/8m-like kernels, ΔF/F 0.2 per spike), plus Gaussian noise,
  at 7, 30 and 100 Hz;
* a movie: ``nc.simulate_recording`` (shot noise, neuropil), traces of the true ROIs, dF/F.

Scored with :func:`score_events` (events within -0.2/+0.5 s of a spike detect it; false events are
counted in stretches of ≥ 5 s without spikes).
"""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.core.spikes.event_detection import (
    detect_events,
    score_events,
    summarize_scores,
)
from napari_calcium.core.spikes.events import identify_events
from napari_calcium.core.synthetic.scene import calcium_from_spikes, draw_spike_times


def _traces(fs, *, n_rois=12, duration_s=600.0, tau=(0.05, 0.7), dff_per_spike=0.2, noise=0.04):
    rng = np.random.default_rng(int(fs))
    n = round(duration_s * fs)
    spikes, x = [], np.empty((n_rois, n))
    for i in range(n_rois):
        st = draw_spike_times(rng, rng.uniform(0.05, 0.3), duration_s, burst_probability=0.2)
        spikes.append(st)
        c = calcium_from_spikes(st, n, fs, tau_rise_s=tau[0], tau_decay_s=tau[1])
        x[i] = dff_per_spike * c + rng.normal(scale=noise, size=n)
    return x, spikes


def _score(events, spikes, fs, n):
    t = (np.arange(n) + 0.5) / fs  # frame k samples t = (k + 0.5) / f in the simulator
    return summarize_scores(
        [
            score_events(t[e], s, start_s=0.0, stop_s=n / fs)
            for e, s in zip(events, spikes, strict=True)
        ]
    )


@pytest.mark.parametrize("fs", [7.0, 30.0, 100.0])
@pytest.mark.parametrize("tau", [(0.05, 0.7), (0.15, 1.5), (0.01, 0.3)], ids=["6f", "6s", "8m"])
def test_recall_of_known_spikes(fs, tau):
    # one spike is ΔF/F 0.2 against noise 0.04 per frame: 5 σ, detectable at every rate, except
    # that at 7 Hz a GCaMP8m-like transient (τ 0.3 s) is two frames long: 0.69 measured
    x, spikes = _traces(fs, tau=tau)
    s = _score(detect_events(x, frame_rate_hz=fs), spikes, fs, x.shape[1])
    assert s["isolated"] > 100 and s["bursts"] > 20
    assert s["isolated_recall"] >= (0.6 if (fs, tau[1]) == (7.0, 0.3) else 0.9), s
    assert s["burst_recall"] >= 0.95, s
    assert s["false_rate_hz"] <= 0.02, s
    # the CalSciPy rule finds them too, with ~20x the false events
    old = _score(identify_events(x, frame_rate_hz=fs), spikes, fs, x.shape[1])
    assert old["false_rate_hz"] > 0.1


def test_recall_falls_with_snr_and_false_rate_does_not():
    # at 30 Hz, GCaMP6f: single spikes of 5, 2.5 and 1.25 σ per frame; false events stay rare
    recalls = []
    for noise in (0.04, 0.08, 0.16):
        x, spikes = _traces(30.0, noise=noise)
        s = _score(detect_events(x, frame_rate_hz=30.0), spikes, 30.0, x.shape[1])
        recalls.append(s["isolated_recall"])
        assert s["false_rate_hz"] <= 0.02, (noise, s)
    assert recalls[0] > recalls[1] > recalls[2]
    assert recalls[1] >= 0.5


def test_simulated_recording_end_to_end():
    rec = nc.simulate_recording(
        n_frames=3000, shape=(64, 64), n_neurons=8, seed=3, firing_rate_hz=(0.05, 0.5)
    )
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    traces = nc.extract_traces(rec.movie, rois, frame_rate_hz=30.0)
    dff = nc.compute_dff(traces.corrected, frame_rate_hz=30.0)
    spikes = [rec.truth.spike_times_s[int(r) - 1] for r in rois.ids]  # label k is neuron k - 1
    new = _score(detect_events(dff.dff, frame_rate_hz=30.0), spikes, 30.0, 3000)
    old = _score(identify_events(dff.dff, frame_rate_hz=30.0), spikes, 30.0, 3000)
    assert new["isolated"] >= 20
    assert new["isolated_recall"] >= 0.9 and new["burst_recall"] >= 0.9, new
    assert new["false_rate_hz"] <= 0.02, new
    assert old["false_rate_hz"] > 0.1, old

"""The activity's delay on real ground truth: nine shared sets, native rate and 30 Hz (issue 18).

The two constants of the delay (``DELAY_PER_RISE`` = 0.3, ``MAX_DELAY_S`` = 0.1 s) were chosen
on these nine sets, leave-one-dataset-out (``benchmarks/bench_spike_timing.py``): each set was
scored with the values chosen on the other eight, which gave mean r 0.493 (CASCADE sets) and 0.431
(spikefinder) at the native rate, 0.470 / 0.434 at 30 Hz. The floors below are those
leave-one-dataset-out figures less 0.01; the shipped defaults score 0.501 / 0.432 and
0.475 / 0.437 (in-sample for the two constants, so they are not the floors). Where the
autocovariance's τ hits its bounds, τ comes from the decay of the ROI's average transient (no
constant fitted).
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.signal import resample_poly

from conftest import SPIKE_GROUNDTRUTH_SETS, spike_groundtruth
from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.spikes.deconvolution.evaluation import time_binned_correlation

FLOORS = {None: (0.483, 0.421), 30.0: (0.46, 0.424)}  # (CASCADE, spikefinder) means


def _at(x, t, fs, target):
    if target is None or fs <= 1.05 * target:
        return x, t, fs
    q = Fraction(target / fs).limit_denominator(200)
    y = resample_poly(x, q.numerator, q.denominator, padtype="line")
    fs2 = fs * q.numerator / q.denominator
    return y, t[0] + np.arange(y.size) / fs2, fs2


@pytest.fixture(scope="module", params=[None, 30.0], ids=["native", "30Hz"])
def scores(request):
    """``{dataset: {"default", "no delay", "derivative": r}}`` (mean per neuron, then set)."""
    target = request.param
    out = {}
    reliability = []  # (r of the default activity, its `reliable` flag) per recording
    for name in SPIKE_GROUNDTRUTH_SETS:
        per: dict[str, dict[str, list[float]]] = {}
        for x, t, fs, spikes, neuron in spike_groundtruth(name):
            x, t, fs = _at(x, t, fs, target)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = deconvolve(x, frame_rate_hz=fs)
                acts = {
                    "default": res.activity[0],
                    "no delay": deconvolve(x, frame_rate_hz=fs, tau_rise_s=0.0).activity[0],
                }
            r = time_binned_correlation(res.activity[0], t, spikes)
            reliability.append((r, bool(res.reliable[0])))
            d = np.clip(np.diff(gaussian_filter1d(x, 0.1 * fs), prepend=x[0]), 0, None)
            acts["derivative"] = d
            for key, a in acts.items():
                per.setdefault(key, {}).setdefault(neuron, []).append(
                    time_binned_correlation(a, t, spikes)
                )
        out[name] = {k: float(np.mean([np.mean(v) for v in n.values()])) for k, n in per.items()}
    return target, out, np.array(reliability)


def test_delay_lifts_the_mean_to_the_leave_one_dataset_out_floor(scores):
    target, s, _ = scores
    cascade = np.mean([s[n]["default"] for n in s if n.startswith("DS")])
    spikefinder = np.mean([s[n]["default"] for n in s if n.startswith("SF")])
    old = np.mean([s[n]["no delay"] for n in s if n.startswith("DS")])
    assert cascade >= FLOORS[target][0] and spikefinder >= FLOORS[target][1], s
    assert cascade >= old + 0.05, (cascade, old)  # no delay: 0.415 native, 0.376 at 30 Hz


def test_beats_the_smoothed_derivative_except_sf6(scores):
    """Before the delay it lost to the derivative on 5 of 9 sets; now only on SF6 (GCaMP5k?)."""
    _, s, _ = scores
    losing = sorted(n for n in s if s[n]["default"] <= s[n]["derivative"])
    assert set(losing) <= {"SF6"}, {n: s[n] for n in losing}
    before = sorted(n for n in s if s[n]["no delay"] <= s[n]["derivative"])
    assert len(before) >= 3, before  # the gap this closes (native: DS06, DS07, DS08, DS13, SF5)


def test_the_reliable_flag_separates_good_from_poor_estimates(scores):
    """``DeconvolutionResult.reliable`` (transient z-score >= 20 and >= 3 per transient).

    The threshold 20 was chosen leaving one dataset out on these sets (20 in 6 of 9 folds;
    held out, 19 flagged recordings had mean r 0.30, the other 202 0.55 at the native rate);
    here it is the shipped constant on all of them, so the figures are in-sample for it.
    """
    _, _, rel = scores
    r, ok = rel[:, 0], rel[:, 1].astype(bool)
    assert 0.03 * r.size <= (~ok).sum() <= 0.25 * r.size, (~ok).sum()
    assert np.nanmean(r[ok]) >= np.nanmean(r[~ok]) + 0.15, (np.nanmean(r[ok]), np.nanmean(r[~ok]))

"""Indicator presets: the jGCaMP8 family from its published single-AP half-times (issue 18)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.spikes.deconvolution.evaluation import smoothed_correlation
from napari_calcium.core.spikes.indicators import INDICATORS, double_exponential, get_indicator

# Zhang et al. 2023 (Nature 615:884), 1 AP in cultured neurons: half-rise, half-decay (ms)
HALF_TIMES_MS = {"jGCaMP8f": (7.1, 67.4), "jGCaMP8m": (7.1, 118.3), "jGCaMP8s": (10.1, 306.7)}


@pytest.mark.parametrize("name", ["jGCaMP8f", "jGCaMP8s"])
def test_jgcamp8_presets_follow_the_published_half_times(name):
    k = get_indicator(name.lower())  # case-insensitive
    rise_ms, decay_ms = HALF_TIMES_MS[name]
    assert k.tau_decay_s == pytest.approx(decay_ms / 1000 / math.log(2), rel=0.03)
    assert k.tau_rise_s == pytest.approx(rise_ms / 1000 / math.log(2), abs=0.0011)
    # the family is ordered as published: f faster than m faster than s
    decays = [INDICATORS[n].tau_decay_s for n in ("jGCaMP8f", "jGCaMP8m", "jGCaMP8s")]
    assert decays == sorted(decays)


@pytest.mark.parametrize("name", ["jGCaMP8f", "jGCaMP8s"])
def test_new_presets_deconvolve_their_own_kernel(name):
    """A trace built from the preset's kernel is deconvolved with it (AR(2)): spikes recovered."""
    k = INDICATORS[name]
    fs = 100.0
    rng = np.random.default_rng(0)
    spikes = rng.poisson(0.5 / fs, 20000).astype(np.float64)
    kernel = k.dff_per_spike * double_exponential(np.arange(400) / fs, k.tau_rise_s, k.tau_decay_s)
    x = np.convolve(spikes, kernel)[: spikes.size] + rng.normal(0, 0.02, spikes.size)
    res = deconvolve(x, frame_rate_hz=fs, indicator=name, method="oasis-ar2")
    # the preset is a prior the data move; on its own kernel the data agree with it
    assert res.tau_decay_s[0] == pytest.approx(k.tau_decay_s, rel=0.2)
    assert f"{name} preset" in res.parameters["kinetics"]
    # the sampled kernel is 0 at the spike's own frame, so s comes one frame later (measured
    # 0.991 / 0.999 there, 0.93 unshifted)
    s_next = np.roll(res.s[0], -1)
    assert smoothed_correlation(s_next, spikes, sigma_frames=2.0) > 0.98

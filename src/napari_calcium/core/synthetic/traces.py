"""Synthetic fluorescence traces with a known baseline F0 (for baselines and dF/F).

:func:`simulate_drifting_traces` draws traces whose F0 bleaches and wobbles slowly under sparse
GCaMP6s-like activity, so a baseline estimator can be scored against the true F0 (tests,
``benchmarks/bench_dff.py`` and the accuracy table of :mod:`napari_calcium.core.traces.dff`).
"""

from __future__ import annotations

import numpy as np

from ...errors import ParameterError
from ..spikes.indicators import double_exponential
from .recording import _check_positive, _check_whole

__all__ = ["simulate_drifting_traces"]

#: largest ``n_rois * n_frames`` (the simulation holds ~100 bytes per sample at its peak)
MAX_SAMPLES = 2**23
#: frames per second; the calcium kernel is ``6 * frame_rate_hz`` samples long
MAX_FRAME_RATE_HZ = 1000.0


def simulate_drifting_traces(
    n_rois: int = 100,
    n_frames: int = 9000,
    *,
    frame_rate_hz: float = 30.0,
    seed: int = 0,
    noise: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Traces ``F = F0(t) (1 + c(t)) + noise`` with a slow drifting ``F0`` and sparse activity.

    ``F0`` (200–1000 ADU) bleaches by 20–40 % (τ 100–300 s) and wobbles ±5–12 % (period 60–200 s);
    ``c`` is GCaMP6s-like ΔF/F (double exponential, τ 0.1/1.2 s, 0.25 per spike) driven by Poisson
    spikes at 0.02–0.2 Hz, a third of them in bursts of 2–5; the noise is shot-like, σ =
    `noise` · F0̄ · √(F/F0̄) (F0̄ the trace's mean baseline).

    Returns
    -------
    traces, f0, calcium : numpy.ndarray, (n_rois, n_frames) float32, float64, float64

    Raises
    ------
    ParameterError
        A size, rate or noise level out of range, or beyond what the simulation holds in memory
        (``n_rois * n_frames`` at most :data:`MAX_SAMPLES`, ~100 bytes each; `frame_rate_hz` at
        most :data:`MAX_FRAME_RATE_HZ`, the kernel being 6 s long); checked before any work.
    """
    n_rois = _check_whole("n_rois", n_rois, low=1)
    n_frames = _check_whole("n_frames", n_frames, low=1)
    if n_rois * n_frames > MAX_SAMPLES:
        raise ParameterError(
            f"n_frames={n_frames} is too large: at most {MAX_SAMPLES // n_rois:,} frames for "
            f"{n_rois} ROIs (at most {MAX_SAMPLES:,} samples in all)"
        )
    frame_rate_hz = _check_positive("frame_rate_hz", frame_rate_hz, most=MAX_FRAME_RATE_HZ)
    noise = _check_positive("noise", noise, allow_zero=True, most=10.0)
    seed = _check_whole("seed", seed, low=0)
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / frame_rate_hz
    u = lambda lo, hi: rng.uniform(lo, hi, (n_rois, 1))  # noqa: E731
    f0 = u(200, 1000) * (1 - u(0.2, 0.4) * (1 - np.exp(-t / u(100, 300))))
    f0 *= 1 + u(0.05, 0.12) * np.sin(2 * np.pi * t / u(60, 200) + u(0, 2 * np.pi))
    rate = u(0.02, 0.2) / frame_rate_hz
    spikes = rng.poisson(np.broadcast_to(rate, (n_rois, n_frames))).astype(np.float64)
    bursts = (spikes > 0) & (rng.random(spikes.shape) < 1 / 3)
    spikes[bursts] += rng.integers(1, 5, int(bursts.sum()))
    kernel = 0.25 * double_exponential(np.arange(int(6 * frame_rate_hz)) / frame_rate_hz, 0.1, 1.2)
    calcium = np.stack([np.convolve(s, kernel)[:n_frames] for s in spikes])
    clean = f0 * (1 + calcium)
    scale = f0.mean(axis=1, keepdims=True)
    traces = clean + noise * scale * np.sqrt(clean / scale) * rng.standard_normal(clean.shape)
    return traces.astype(np.float32), f0, calcium

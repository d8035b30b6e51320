"""Synthetic fluorescence traces with a known baseline F0 (for baselines and dF/F).

:func:`simulate_drifting_traces` draws traces whose F0 bleaches and wobbles slowly under sparse
GCaMP6s-like activity, so a baseline estimator can be scored against the true F0 (tests,
``benchmarks/bench_dff.py`` and the accuracy table of :mod:`napari_calcium.core.traces.dff`).
"""

from __future__ import annotations

import numpy as np

from ..spikes.indicators import double_exponential

__all__ = ["simulate_drifting_traces"]


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
    """
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

"""Building blocks of the synthetic recording: cell footprints, spikes, calcium, neuropil, motion.

Each function draws from its own random generator, so changing one part of a simulation (say the
motion) leaves the others (cells, spikes) as they were for the same seed. The public entry point is
:func:`napari_calcium.simulate_recording` in :mod:`napari_calcium.core.synthetic.recording`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal, sparse

from ...errors import ParameterError
from ..spikes.indicators import kernel_peak_time_s

__all__ = [
    "Cells",
    "Neuropil",
    "calcium_from_spikes",
    "draw_spike_times",
    "make_cells",
    "make_motion",
    "make_neuropil",
    "rng_for",
    "smooth_field",
]

# independent random streams per part of the simulation
REFRACTORY_S = 0.002

STREAM_CELLS, STREAM_SPIKES, STREAM_NEUROPIL, STREAM_MOTION, STREAM_NOISE = range(5)


def rng_for(seed: int, stream: int, *extra: int) -> np.random.Generator:
    """A generator for one part of the simulation, independent of every other part."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream), *map(int, extra)]))


# --------------------------------------------------------------------------------------------
# Cells


@dataclass(frozen=True)
class Cells:
    """Soma footprints on a canvas.

    Attributes
    ----------
    weights : scipy.sparse.csr_array
        ``(n, height * width)`` footprint weights in [0, 1], peak 1 per cell, row-major pixels.
    canvas_shape : tuple of int
        ``(height, width)`` of the canvas the weights live on.
    centers_px : numpy.ndarray
        ``(n, 2)`` cell centres (y, x) in canvas pixels.
    radius_px : numpy.ndarray
        ``(n,)`` mean soma radius in pixels.
    """

    weights: sparse.csr_array
    canvas_shape: tuple[int, int]
    centers_px: np.ndarray
    radius_px: np.ndarray


def _place_centers(
    rng: np.random.Generator, n: int, radii: np.ndarray, region: tuple[int, int, int, int]
) -> np.ndarray:
    """Random centres inside ``region = (y0, y1, x0, x1)`` that keep cells mostly apart.

    Two cells may overlap at their soft edges: centres are at least ``0.8 (r_i + r_j)`` apart,
    relaxed step by step when the field is crowded.
    """
    y0, y1, x0, x1 = region
    centers = np.empty((n, 2))
    min_factor = 0.8
    for i in range(n):
        for attempt in range(2000):
            if attempt and attempt % 400 == 0:
                min_factor *= 0.85  # crowded: allow more overlap
            c = rng.uniform((y0, x0), (y1, x1))
            if i == 0:
                break
            d = np.hypot(*(centers[:i] - c).T)
            if np.all(d >= min_factor * (radii[:i] + radii[i])):
                break
        else:
            raise ParameterError(
                f"n_neurons={n} cells of radius ~{radii.mean():.1f} px do not fit into a "
                f"{y1 - y0:.0f} x {x1 - x0:.0f} px field; use fewer neurons, a larger shape or a "
                "smaller cell_diameter_um"
            )
        centers[i] = c
    return centers


def make_cells(
    rng: np.random.Generator,
    n: int,
    *,
    canvas_shape: tuple[int, int],
    visible: tuple[int, int, int, int],
    diameter_px: float,
) -> Cells:
    """Draw ``n`` soma footprints of varying size and shape.

    Each soma is an ellipse (axis ratio up to ~1.7, random orientation) with a slightly irregular
    outline (2nd-4th harmonics of the radius), a soft edge, and in most cells a dimmer nucleus
    (GCaMP is excluded from the nucleus, giving the familiar ring-shaped somata).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Number of cells.
    canvas_shape : (int, int)
        Canvas ``(height, width)`` in pixels (the visible field plus any motion margin).
    visible : (int, int, int, int)
        ``(y0, y1, x0, x1)``: the visible field inside the canvas; centres fall inside it.
    diameter_px : float
        Mean soma diameter in pixels.
    """
    mean_r = diameter_px / 2.0
    radii = mean_r * np.clip(rng.lognormal(0.0, 0.15, n), 0.65, 1.5)
    y0, y1, x0, x1 = visible
    inset = 0.3 * mean_r  # centres a little inside the field, so every cell is mostly visible
    centers = _place_centers(rng, n, radii, (y0 + inset, y1 - inset, x0 + inset, x1 - inset))
    height, width = canvas_shape
    rows, cols, vals = [], [], []
    for i in range(n):
        elong = rng.uniform(0.0, 0.3)
        a, b = radii[i] * (1 + elong), radii[i] / (1 + elong)  # semi-axes, area ~ pi r^2
        theta = rng.uniform(0, np.pi)
        harm = rng.normal(0.0, 0.04, 3)
        phase = rng.uniform(0, 2 * np.pi, 3)
        nucleus = rng.uniform(0.0, 0.6) if rng.random() < 0.8 else 0.0
        edge = rng.uniform(0.08, 0.14)
        half = math.ceil(1.6 * a) + 1
        cy, cx = centers[i]
        yy, xx = np.mgrid[
            max(0, int(cy) - half) : min(height, int(cy) + half + 1),
            max(0, int(cx) - half) : min(width, int(cx) + half + 1),
        ]
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        rho = np.hypot(u / a, v / b)
        ang = np.arctan2(v, u)
        outline = 1.0 + sum(harm[k] * np.cos((k + 2) * ang + phase[k]) for k in range(3))
        rho = rho / outline
        w = 1.0 / (1.0 + np.exp((rho - 1.0) / edge))
        w *= 1.0 - nucleus * np.exp(-((rho / 0.45) ** 2))
        w /= w.max()
        keep = w >= 0.02
        rows.append(np.full(keep.sum(), i))
        cols.append((yy[keep] * width + xx[keep]).ravel())
        vals.append(w[keep].astype(np.float32))
    weights = sparse.csr_array(
        (
            np.concatenate(vals) if vals else np.empty(0, np.float32),
            (
                np.concatenate(rows) if rows else np.empty(0, int),
                np.concatenate(cols) if cols else np.empty(0, int),
            ),
        ),
        shape=(n, height * width),
    )
    return Cells(weights, (height, width), centers, radii)


def labels_from_weights(weights: sparse.csr_array, shape: tuple[int, int]) -> np.ndarray:
    """Label image: each pixel goes to the cell with the largest weight there, if that is ≥ 0.5.

    Returns an ``int32`` image of ``shape`` with ids ``1..n`` in cell order and 0 for background.
    """
    n = weights.shape[0]
    if n == 0:
        return np.zeros(shape, np.int32)
    per_pixel = sparse.csr_array(weights.T)  # (pixels, n)
    strongest = np.asarray(per_pixel.max(axis=1).todense()).ravel()
    owner = np.asarray(per_pixel.argmax(axis=1)).ravel()  # ties: the lower id wins
    labels = np.where(strongest >= 0.5, owner + 1, 0).astype(np.int32)
    present = np.unique(labels)
    if n and present.size - (present[0] == 0) < n:
        missing = sorted(set(range(1, n + 1)) - set(present.tolist()))
        raise ParameterError(
            f"cells {missing} are hidden under their neighbours; the field is too crowded for "
            "n_neurons at this cell size"
        )
    return labels.reshape(shape)


# --------------------------------------------------------------------------------------------
# Spikes and calcium


def draw_spike_times(
    rng: np.random.Generator,
    rate_hz: float,
    duration_s: float,
    *,
    burst_probability: float,
) -> np.ndarray:
    """Spike times (s) of one neuron: a Poisson process of events, some of which are bursts.

    An event is a single spike, or with probability ``burst_probability`` a burst of 2-6 spikes
    with inter-spike intervals of 5-25 ms. The event rate is set so that the mean *spike* rate is
    ``rate_hz``.
    """
    mean_burst = 1.0 + 1.5  # 2 + Poisson(1.5) truncated at 6 has mean ~3.4; see below
    burst_sizes = np.minimum(2 + rng.poisson(mean_burst - 1.0, 64), 6)
    spikes_per_event = 1.0 + burst_probability * (burst_sizes.mean() - 1.0)
    event_rate = rate_hz / spikes_per_event
    n_events = rng.poisson(event_rate * duration_s)
    starts = np.sort(rng.uniform(0.0, duration_s, n_events))
    times = [starts]
    is_burst = rng.random(n_events) < burst_probability
    for t0 in starts[is_burst]:
        k = min(2 + rng.poisson(mean_burst - 1.0), 6)
        times.append(t0 + np.cumsum(rng.uniform(0.005, 0.025, k - 1)))
    out = np.sort(np.concatenate(times))
    out = out[out < duration_s]
    # absolute refractory period: drop a spike closer than 2 ms to the last one kept (one pass,
    # left to right: the same spikes as deleting the first offender and looking again, in O(n))
    if out.size > 1 and (np.diff(out) < REFRACTORY_S).any():
        keep = np.ones(out.size, bool)
        last = out[0]
        for i in range(1, out.size):
            if out[i] - last < REFRACTORY_S:
                keep[i] = False
            else:
                last = out[i]
        out = out[keep]
    return out


def calcium_from_spikes(
    spike_times_s: np.ndarray,
    n_frames: int,
    frame_rate_hz: float,
    *,
    tau_rise_s: float,
    tau_decay_s: float,
) -> np.ndarray:
    """ΔF/F-shaped calcium trace (peak 1 per isolated spike) sampled at frame centres.

    Parameters
    ----------
    spike_times_s : numpy.ndarray
        Spike times in seconds (sub-frame precision).
    n_frames : int
        Number of frames; frame ``k`` is sampled at ``t = (k + 0.5) / frame_rate_hz``.
    frame_rate_hz : float
        Frames per second.
    tau_rise_s, tau_decay_s : float
        Kernel time constants, seconds.

    Returns
    -------
    numpy.ndarray
        ``(n_frames,)`` float64, the sum of the kernels of all spikes evaluated exactly at each
        frame's sample time.

    Notes
    -----
    ``exp(-(t_k - t_s)/τ) = exp(-(t_j - t_s)/τ) · γ^(k-j)`` with ``γ = exp(-1/(f τ))`` and
    ``t_j`` the first sample at or after the spike, so each exponential is an AR(1) filter fed
    with exact sub-frame amplitudes: O(n_frames), no truncation of the kernel.
    """
    t_peak = kernel_peak_time_s(tau_rise_s, tau_decay_s)
    peak = math.exp(-t_peak / tau_decay_s) - math.exp(-t_peak / tau_rise_s)
    first = np.ceil(spike_times_s * frame_rate_hz - 0.5).astype(np.int64)
    ok = first < n_frames
    first, st = first[ok], spike_times_s[ok]
    t_first = (first + 0.5) / frame_rate_hz
    out = np.zeros(n_frames)
    for tau, sign in ((tau_decay_s, 1.0), (tau_rise_s, -1.0)):
        drive = np.bincount(first, weights=np.exp(-(t_first - st) / tau), minlength=n_frames)
        gamma = math.exp(-1.0 / (frame_rate_hz * tau))
        out += sign * signal.lfilter([1.0], [1.0, -gamma], drive)
    return out / peak


# --------------------------------------------------------------------------------------------
# Neuropil


@dataclass(frozen=True)
class Neuropil:
    """A spatially smooth, slowly fluctuating neuropil field ``N(x, t) = Σ_k S_k(x) T_k(t)``.

    Attributes
    ----------
    spatial : numpy.ndarray
        ``(k, height, width)`` float32 maps on the canvas, in photons per pixel per frame.
        ``spatial[0]`` is the mean level; the others are fluctuation modes.
    temporal : numpy.ndarray
        ``(k, n_frames)`` float32 time courses; ``temporal[0]`` is 1.
    """

    spatial: np.ndarray
    temporal: np.ndarray


def smooth_field(
    rng: np.random.Generator,
    canvas_shape: tuple[int, int],
    sigma_px: float,
    origin: tuple[int, int] = (0, 0),
    n_modes: int = 64,
) -> np.ndarray:
    """A smooth Gaussian random field (zero mean, unit variance) on a canvas.

    A sum of ``n_modes`` plane waves whose wave vectors are drawn from the spectrum of white noise
    smoothed by a Gaussian of ``sigma_px`` (spectral random-phase method). Unlike filtering noise
    on a grid, the field is defined in continuous scene coordinates: the same seed gives the same
    field wherever the canvas is and however large it is (``origin`` is the scene coordinate of
    the canvas pixel ``(0, 0)``), so adding a motion margin does not change the scene.
    """
    k = rng.normal(0.0, 1.0 / (2 * np.pi * sigma_px), (n_modes, 2))  # cycles per pixel
    phase = rng.uniform(0.0, 2 * np.pi, n_modes)
    yy = np.arange(canvas_shape[0]) + origin[0]
    xx = np.arange(canvas_shape[1]) + origin[1]
    field = np.zeros(canvas_shape)
    for (ky, kx), ph in zip(k, phase, strict=True):
        ay = 2 * np.pi * ky * yy + ph
        ax = 2 * np.pi * kx * xx
        field += np.outer(np.cos(ay), np.cos(ax)) - np.outer(np.sin(ay), np.sin(ax))
    return field * math.sqrt(2.0 / n_modes)


def _slow_signal(rng: np.random.Generator, n_frames: int, sigma_frames: float) -> np.ndarray:
    x = ndimage.gaussian_filter1d(rng.standard_normal(n_frames + 1), sigma_frames, mode="reflect")
    x = x[:n_frames]
    return (x - x.mean()) / (x.std() + 1e-12)


def make_neuropil(
    rng: np.random.Generator,
    *,
    canvas_shape: tuple[int, int],
    origin: tuple[int, int],
    n_frames: int,
    frame_rate_hz: float,
    diameter_px: float,
    level_photons: float,
    population_activity: np.ndarray,
    fluctuation: float = 0.12,
) -> Neuropil:
    """Neuropil: smooth in space (~4 cell diameters), slow in time (~1 s), tied to activity.

    The mean level varies ±25 % across the field. Two fluctuation modes of relative size
    ``fluctuation`` follow (a) the smoothed population calcium, so neuropil and somata are
    correlated as in cortex, and (b) independent slow noise.
    """
    sigma_px = 4.0 * diameter_px
    mean_map = level_photons * np.clip(
        1.0 + 0.25 * smooth_field(rng, canvas_shape, sigma_px, origin), 0.4, None
    )
    modes = [mean_map]
    temporal = [np.ones(n_frames)]
    pop = population_activity - population_activity.mean()
    pop_s = ndimage.gaussian_filter1d(pop, 0.5 * frame_rate_hz) if n_frames > 1 else pop
    pop_s = pop_s / (pop_s.std() + 1e-12)
    slow = _slow_signal(rng, n_frames, 1.0 * frame_rate_hz)
    for course in (pop_s, slow):
        shape_map = 1.0 + 0.5 * smooth_field(rng, canvas_shape, sigma_px, origin)
        modes.append(fluctuation / math.sqrt(2) * mean_map * np.clip(shape_map, 0.0, None))
        temporal.append(np.clip(course, -3.0, 3.0))
    return Neuropil(np.asarray(modes, np.float32), np.asarray(temporal, np.float32))


# --------------------------------------------------------------------------------------------
# Motion


def make_motion(
    rng: np.random.Generator, n_frames: int, frame_rate_hz: float, motion_px: float
) -> np.ndarray:
    """Rigid per-frame shifts ``(n_frames, 2)`` (dy, dx) in pixels, subpixel.

    Slow drift (a smoothed random walk), breathing-like oscillation (~0.3 Hz) and fast jitter
    (~0.1 s), scaled so that the largest displacement along either axis is ``motion_px``.
    """
    if motion_px == 0 or n_frames == 0:
        return np.zeros((n_frames, 2))
    t = np.arange(n_frames) / frame_rate_hz
    out = np.empty((n_frames, 2))
    for axis in range(2):
        drift = np.cumsum(rng.standard_normal(n_frames))
        drift = ndimage.gaussian_filter1d(drift, 2.0 * frame_rate_hz)
        drift -= drift.mean()
        drift /= np.abs(drift).max() + 1e-12
        breath = np.sin(2 * np.pi * rng.uniform(0.2, 0.4) * t + rng.uniform(0, 2 * np.pi))
        jitter = ndimage.gaussian_filter1d(rng.standard_normal(n_frames), 0.1 * frame_rate_hz)
        jitter /= np.abs(jitter).max() + 1e-12
        out[:, axis] = 0.5 * drift + 0.3 * breath + 0.2 * jitter
    return out * (motion_px / np.abs(out).max())

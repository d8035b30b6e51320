"""Synthetic two-photon recordings with known ground truth.

:func:`simulate_recording` draws a field of neurons, gives them spikes, turns the spikes into
calcium transients, adds a neuropil that contaminates the somata, background, photobleaching,
rigid motion and shot + read noise, and returns the movie with everything that went into it.
Later steps (motion correction, ROI detection, extraction, dF/F, deconvolution) are measured on it.

The image model, per frame ``t`` and pixel ``x`` (in photons, before motion and noise)::

    P(x, t) = b(t) * [ B(x) + Σ_i w_i(x) f0_i (1 + c_i(t)) + o(x) N(x, t) ]

with ``w_i`` the footprint of cell ``i`` (peak 1), ``f0_i`` its resting brightness, ``c_i`` its
calcium (ΔF/F), ``N`` the neuropil, ``o(x) = 1 - (1 - r) min(1, Σ_i w_i(x))`` the share of
neuropil light that reaches a pixel covered by somata (``r`` = ``neuropil_coefficient``),
``B`` a dim autofluorescence background and ``b(t)`` the photobleaching factor. The frame is then
shifted by ``shifts[t]``, photon (Poisson) noise and Gaussian read noise are drawn, and the result
is converted to ADU: ``offset_adu + adu_per_photon * photons``, rounded and clipped to the bit
depth.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft as sp_fft
from scipy import sparse

from ...errors import ParameterError
from ..chunking import frame_blocks, track_blocks
from ..spikes.indicators import INDICATORS, get_indicator
from .scene import (
    STREAM_CELLS,
    STREAM_MOTION,
    STREAM_NEUROPIL,
    STREAM_NOISE,
    STREAM_SPIKES,
    calcium_from_spikes,
    draw_spike_times,
    labels_from_weights,
    make_cells,
    make_motion,
    make_neuropil,
    rng_for,
    smooth_field,
)

__all__ = ["INDICATORS", "GroundTruth", "SyntheticRecording", "simulate_recording"]

#: movies larger than this many bytes are returned as lazy dask arrays when ``lazy=None``
LAZY_THRESHOLD_BYTES = 512 * 2**20

# Limits of simulate_recording: far beyond any test, demo or benchmark, and small enough that the
# simulation (scene, ground truth and an eager movie together) stays within a few GiB. A request
# beyond one is refused before anything is allocated, naming the parameter and the largest value.
#: the movie (uint16 frames), lazy or not: 4 GiB
MAX_MOVIE_BYTES = 4 * 2**30
#: a side of the frame, pixels
MAX_SIDE_PX = 4096
#: the canvas (the frame plus the motion margin on each side): 4096 x 4096 pixels, ~100 B each
MAX_CANVAS_PIXELS = 2**24
#: neurons (their placement is quadratic in the count)
MAX_NEURONS = 10_000
#: n_neurons * n_frames: the ground-truth traces take ~30 bytes per sample (~1 GiB)
MAX_TRUTH_SAMPLES = 2**25
#: frames per second (the temporal smoothing kernels grow with it)
MAX_FRAME_RATE_HZ = 10_000.0
#: the expected number of spikes of all neurons together
MAX_SPIKES = 10_000_000
#: mean firing rate of one neuron, Hz
MAX_FIRING_RATE_HZ = 100.0
#: photons per pixel per frame of any light source (Poisson draws fail near 1e19)
MAX_PHOTONS = 1e6
#: peak ΔF/F of one spike
MAX_DFF_PER_SPIKE = 100.0
#: indicator time constants, s
MAX_TAU_S = 3600.0


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Everything that went into a synthetic movie. Traces are ``(n_neurons, n_frames)``.

    Attributes
    ----------
    labels : numpy.ndarray
        ``(y, x)`` int32 label image: ids ``1..n`` in neuron order, each pixel to the cell whose
        footprint weight there is largest and at least 0.5; 0 is background.
    footprints_sparse : scipy.sparse.csr_array
        ``(n, y * x)`` footprint weights (peak 1), row-major pixels. See :attr:`footprints`.
    spikes : numpy.ndarray
        ``(n, frames)`` int16 spike counts; frame ``k`` counts spikes in
        ``[k, k + 1) / frame_rate_hz`` seconds.
    spike_times_s : tuple of numpy.ndarray
        Exact spike times of each neuron, seconds from the start of frame 0.
    calcium : numpy.ndarray
        ``(n, frames)`` float32 ΔF/F of each soma (unitless) at frame centres
        ``(k + 0.5) / frame_rate_hz``; ``dff_per_spike * h(t)`` summed over spikes.
    baseline_f0 : numpy.ndarray
        ``(n,)`` resting fluorescence in ADU above the offset at footprint weight 1, frame 0.
        The soma's contribution to pixel ``x`` in frame ``t`` (before motion and noise) is
        ``footprints[i, x] * baseline_f0[i] * (1 + calcium[i, t]) * bleaching[t]``.
    dff_per_spike : numpy.ndarray
        ``(n,)`` peak ΔF/F of one isolated spike.
    firing_rate_hz : numpy.ndarray
        ``(n,)`` mean spike rate each neuron was drawn with (Hz).
    centers_px : numpy.ndarray
        ``(n, 2)`` soma centres (y, x) in pixels.
    neuropil : numpy.ndarray
        ``(n, frames)`` float32 neuropil at each neuron in ADU: the footprint-weighted mean of
        the neuropil field (with bleaching) before somata occlude it.
    contamination : numpy.ndarray
        ``(n,)`` share of that neuropil present in the soma signal: the footprint-weighted
        mean of ``o(x)``. It is close to ``neuropil_coefficient``.
    neuropil_coefficient : float
        Share ``r`` of neuropil light that reaches pixels fully covered by a soma.
    neuropil_spatial, neuropil_temporal : numpy.ndarray
        ``(k, y, x)`` maps in ADU and ``(k, frames)`` time courses; the neuropil field before
        bleaching is ``Σ_k spatial[k] * temporal[k, t]``.
    background : numpy.ndarray
        ``(y, x)`` float32 autofluorescence in ADU above the offset (before bleaching).
    bleaching : numpy.ndarray
        ``(frames,)`` multiplicative photobleaching factor, 1 at frame 0.
    shifts : numpy.ndarray
        ``(frames, 2)`` rigid displacement (dy, dx) in pixels of each frame relative to the
        ground-truth coordinates: ``movie[t, y, x] ≈ scene(y - dy, x - dx)``. To correct a
        frame, shift it by ``-shifts[t]``.
    frame_rate_hz, pixel_size_um, cell_diameter_px : float
        Acquisition rate (frames/s), pixel size (µm/px) and mean soma diameter (px).
    tau_rise_s, tau_decay_s : float
        Kernel time constants (s) used for every neuron.
    indicator : str or None
        Preset the kinetics came from, if any.
    offset_adu, adu_per_photon, read_noise_adu : float
        Detector model.
    parameters : dict
        The arguments :func:`simulate_recording` was called with.
    """

    labels: np.ndarray
    footprints_sparse: sparse.csr_array
    spikes: np.ndarray
    spike_times_s: tuple[np.ndarray, ...]
    calcium: np.ndarray
    baseline_f0: np.ndarray
    dff_per_spike: np.ndarray
    firing_rate_hz: np.ndarray
    centers_px: np.ndarray
    neuropil: np.ndarray
    contamination: np.ndarray
    neuropil_coefficient: float
    neuropil_spatial: np.ndarray
    neuropil_temporal: np.ndarray
    background: np.ndarray
    bleaching: np.ndarray
    shifts: np.ndarray
    frame_rate_hz: float
    pixel_size_um: float
    cell_diameter_px: float
    tau_rise_s: float
    tau_decay_s: float
    indicator: str | None
    offset_adu: float
    adu_per_photon: float
    read_noise_adu: float
    parameters: dict = field(default_factory=dict)

    @property
    def n_neurons(self) -> int:
        """Number of simulated neurons."""
        return self.footprints_sparse.shape[0]

    @property
    def footprints(self) -> np.ndarray:
        """``(n, y, x)`` float32 footprint weights (dense; built on each access)."""
        return self.footprints_sparse.toarray().reshape(self.n_neurons, *self.labels.shape)


@dataclass(frozen=True, eq=False)
class SyntheticRecording:
    """A simulated movie and its ground truth.

    Attributes
    ----------
    movie : numpy.ndarray or dask.array.Array
        ``(frames, y, x)`` uint16 in ADU; a lazy dask array for large sizes.
    truth : GroundTruth
        What went into the movie.
    metadata : dict
        Acquisition metadata as a reader would report it (``frame_rate_hz``,
        ``frame_period_s``, ``pixel_size_um`` (y, x), ``bit_depth``, ``source_format``, ...).
    """

    movie: Any
    truth: GroundTruth
    metadata: dict


def _label(name: str, value: Any, names: Mapping[str, str] | None) -> str:
    """How a message names a parameter: ``n_frames=10`` (or the CLI's ``--frames 10``)."""
    if names and name in names:
        return names[name]
    return f"{name}={value!r}"


def _check_positive(
    name: str,
    value: float,
    *,
    allow_zero: bool = False,
    most: float | None = None,
    names: Mapping[str, str] | None = None,
) -> float:
    label = _label(name, value, names)
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"{label} must be a number") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ParameterError(f"{label} must be a finite number {'>= 0' if allow_zero else '> 0'}")
    if most is not None and v > most:
        raise ParameterError(f"{label} is too large: at most {most:g}")
    return v


def _check_whole(
    name: str,
    value: Any,
    *,
    low: int,
    high: int | None = None,
    names: Mapping[str, str] | None = None,
) -> int:
    """`value` as an int in ``[low, high]``; a float is fine if it is a whole number."""
    label = _label(name, value, names)
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, numbers.Integral):
            v = int(value)
        else:
            f = float(value)
            if not f.is_integer():
                raise ValueError
            v = int(f)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"{label} must be a whole number >= {low}") from None
    if v < low:
        raise ParameterError(f"{label} must be >= {low}")
    if high is not None and v > high:
        raise ParameterError(f"{label} is too large: at most {high:,}")
    return v


def _check_range(
    name: str, value: Any, *, most: float, names: Mapping[str, str] | None = None
) -> tuple[float, float]:
    label = _label(name, value, names)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"{label} must be a (low, high) pair") from None
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ParameterError(f"{label} must satisfy 0 < low <= high")
    if hi > most:
        raise ParameterError(f"{label} is too large: high at most {most:g}")
    return lo, hi


def _check_sizes(
    params: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Check :func:`simulate_recording`'s arguments before anything is allocated.

    Parameters
    ----------
    params : mapping
        Every keyword argument of :func:`simulate_recording` (its defaults filled in).
    names : mapping, optional
        Parameter name -> how the message names it (the CLI passes ``{"n_frames": "--frames
        1e11"}``); default ``name=value``.

    Returns
    -------
    dict
        The checked values, converted (``n_frames``, ``shape``, ``n_neurons``, ``fs``,
        ``motion_px``, ``pixel_size_um``, ``diameter_px``, ``tau_rise``, ``tau_decay``,
        ``preset``, ``amp``, ``rates``, ``f0``, ``gain``, ``seed``, ``bit_depth``).

    Raises
    ------
    ParameterError
        A value out of range, or a size beyond the limits above (``MAX_*``); the message names
        the parameter and the largest value allowed.
    """
    p = params

    def label(name: str) -> str:
        return _label(name, p[name], names)

    out: dict[str, Any] = {}
    n_frames = _check_whole("n_frames", p["n_frames"], low=1, names=names)
    raw_shape = p["shape"]
    try:
        sides = [raw_shape, raw_shape] if np.isscalar(raw_shape) else list(raw_shape)
    except TypeError:
        raise ParameterError(f"{label('shape')} must be (y, x)") from None
    if len(sides) != 2:
        raise ParameterError(f"{label('shape')} must be (y, x) with both >= 8 pixels")
    shape = tuple(_check_whole("shape", s, low=8, names=names) for s in sides)
    if max(shape) > MAX_SIDE_PX:
        raise ParameterError(
            f"{label('shape')} is too large: at most {MAX_SIDE_PX} x {MAX_SIDE_PX} px"
        )
    frame_bytes = 2 * shape[0] * shape[1]
    most_frames = MAX_MOVIE_BYTES // frame_bytes
    if n_frames > most_frames:
        raise ParameterError(
            f"{label('n_frames')} is too large: at most {most_frames:,} frames of "
            f"{shape[0]} x {shape[1]} px (a {MAX_MOVIE_BYTES / 2**30:g} GiB movie)"
        )
    n_neurons = _check_whole("n_neurons", p["n_neurons"], low=0, high=MAX_NEURONS, names=names)
    if n_neurons * n_frames > MAX_TRUTH_SAMPLES:
        raise ParameterError(
            f"{label('n_frames')} is too large: at most {MAX_TRUTH_SAMPLES // n_neurons:,} frames "
            f"with {n_neurons} neurons (the ground-truth traces hold at most "
            f"{MAX_TRUTH_SAMPLES:,} neuron-frames)"
        )
    fs = _check_positive("frame_rate_hz", p["frame_rate_hz"], most=MAX_FRAME_RATE_HZ, names=names)
    motion_px = _check_positive("motion_px", p["motion_px"], allow_zero=True, names=names)
    # the motion margin: pad = ceil(motion_px) + 16 on each side; the canvas has a pixel limit
    y, x = shape
    root = math.sqrt((y + x) ** 2 - 4 * (y * x - MAX_CANVAS_PIXELS))
    most_motion = max(0, min(min(shape), math.floor((root - (y + x)) / 4) - 16))
    if motion_px > most_motion:
        raise ParameterError(
            f"{label('motion_px')} is too large: at most {most_motion} px for a {y} x {x} px "
            "frame (the motion can be at most the frame's smaller side, and the frame plus its "
            f"motion margin at most {MAX_CANVAS_PIXELS:,} pixels)"
        )
    pixel_size_um = _check_positive("pixel_size_um", p["pixel_size_um"], names=names)
    cell_um = _check_positive("cell_diameter_um", p["cell_diameter_um"], names=names)
    diameter_px = cell_um / pixel_size_um
    if diameter_px < 3:
        raise ParameterError(
            f"cell_diameter_um={p['cell_diameter_um']} at {label('pixel_size_um')} is "
            f"{diameter_px:.1f} px; somata need at least 3 px"
        )
    if diameter_px > max(shape):
        raise ParameterError(
            f"cell_diameter_um={p['cell_diameter_um']} at {label('pixel_size_um')} is "
            f"{diameter_px:.3g} px; somata can be at most the frame ({max(shape)} px)"
        )
    indicator = p["indicator"]
    preset = get_indicator(indicator) if indicator is not None else None
    tau_rise = (
        p["tau_rise_s"] if p["tau_rise_s"] is not None else getattr(preset, "tau_rise_s", None)
    )
    tau_decay = (
        p["tau_decay_s"] if p["tau_decay_s"] is not None else getattr(preset, "tau_decay_s", None)
    )
    if tau_rise is None or tau_decay is None:
        raise ParameterError("give indicator= or both tau_rise_s and tau_decay_s")
    tau_rise = _check_positive("tau_rise_s", tau_rise, most=MAX_TAU_S, names=names)
    tau_decay = _check_positive("tau_decay_s", tau_decay, most=MAX_TAU_S, names=names)
    amp = (
        p["dff_per_spike"]
        if p["dff_per_spike"] is not None
        else getattr(preset, "dff_per_spike", 0.2)
    )
    amp = _check_positive("dff_per_spike", amp, most=MAX_DFF_PER_SPIKE, names=names)
    rates = _check_range(
        "firing_rate_hz", p["firing_rate_hz"], most=MAX_FIRING_RATE_HZ, names=names
    )
    spikes = n_neurons * rates[1] * n_frames / fs
    if spikes > MAX_SPIKES:
        culprit = "frame_rate_hz" if fs < 1 else "n_frames"
        problem = "too small" if culprit == "frame_rate_hz" else "too large"
        raise ParameterError(
            f"{label(culprit)} is {problem}: {n_frames:,} frames at {fs:g} Hz last "
            f"{n_frames / fs:.3g} s, about {spikes:.3g} spikes for {n_neurons} neurons at up to "
            f"{rates[1]:g} Hz; at most {MAX_SPIKES:,} (raise frame_rate_hz, or lower n_frames, "
            "n_neurons or firing_rate_hz)"
        )
    f0 = _check_range("f0_photons", p["f0_photons"], most=MAX_PHOTONS, names=names)
    for name, low, high in (
        ("burst_probability", 0.0, 1.0),
        ("neuropil_coefficient", 0.0, 1.0),
    ):
        v = p[name]
        if not (isinstance(v, numbers.Real) and low <= v <= high):
            raise ParameterError(f"{label(name)} must be in [{low:g}, {high:g}]")
    v = p["bleach_fraction"]
    if not (isinstance(v, numbers.Real) and 0 <= v < 1):
        raise ParameterError(f"{label('bleach_fraction')} must be in [0, 1)")
    for name in ("neuropil_photons", "background_photons"):
        _check_positive(name, p[name], allow_zero=True, most=MAX_PHOTONS, names=names)
    for name in ("read_noise_adu", "offset_adu"):
        _check_positive(name, p[name], allow_zero=True, most=2.0**16, names=names)
    gain = _check_positive("adu_per_photon", p["adu_per_photon"], most=2.0**16, names=names)
    bit_depth = _check_whole("bit_depth", p["bit_depth"], low=8, high=16, names=names)
    seed = _check_whole("seed", p["seed"], low=0, names=names)
    out.update(
        n_frames=n_frames, shape=shape, n_neurons=n_neurons, fs=fs, motion_px=motion_px,
        pixel_size_um=pixel_size_um, diameter_px=diameter_px, tau_rise=tau_rise,
        tau_decay=tau_decay, preset=preset, amp=amp, rates=rates, f0=f0, gain=gain, seed=seed,
        bit_depth=bit_depth,
    )  # fmt: skip
    return out


class _Renderer:
    """Renders any range of frames from the (small) precomputed scene; picklable for dask."""

    def __init__(
        self,
        *,
        seed,
        shape,
        pad,
        weights,
        f0,
        calcium,
        occlusion,
        neuropil,
        background,
        bleaching,
        shifts,
        noise,
        offset_adu,
        adu_per_photon,
        read_noise_adu,
        max_adu,
    ):
        self.seed = seed
        self.shape = shape
        self.pad = pad
        # float32 throughout: the renderer's arithmetic is memory-bound
        self.weights_t = sparse.csr_array((weights.T * f0[None, :]).astype(np.float32))
        self.calcium = calcium.astype(np.float32)  # (n, frames)
        self.occlusion = occlusion.astype(np.float32)[:, None]  # (canvas pixels, 1)
        self.np_spatial_t = np.ascontiguousarray(
            neuropil.spatial.reshape(len(neuropil.spatial), -1).T, np.float32
        )  # (canvas pixels, k)
        self.np_temporal = neuropil.temporal.astype(np.float32)
        self.background = background.astype(np.float32).reshape(-1, 1)
        self.bleaching = bleaching.astype(np.float32)
        self.shifts = shifts
        self.noise = noise
        self.offset_adu = offset_adu
        self.adu_per_photon = adu_per_photon
        self.read_noise_adu = read_noise_adu
        self.max_adu = max_adu

    @property
    def canvas_shape(self) -> tuple[int, int]:
        return (self.shape[0] + 2 * self.pad, self.shape[1] + 2 * self.pad)

    def clean_photons(self, start: int, stop: int) -> np.ndarray:
        """``(frames, canvas_y, canvas_x)`` float32 expected photons, no motion, no noise."""
        img = self.weights_t @ (1.0 + self.calcium[:, start:stop])  # (pixels, frames)
        npl = self.np_spatial_t @ self.np_temporal[:, start:stop]
        npl *= self.occlusion
        img += npl
        img += self.background
        img *= self.bleaching[None, start:stop]
        return np.ascontiguousarray(img.T).reshape(stop - start, *self.canvas_shape)

    def _shift(self, frames: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        """Fourier (band-limited, exact subpixel) shift of each frame by ``shifts[t]``."""
        ky = sp_fft.fftfreq(frames.shape[1])[:, None]
        kx = sp_fft.rfftfreq(frames.shape[2])[None, :]
        out = np.empty_like(frames)
        for i, (dy, dx) in enumerate(shifts):
            spec = sp_fft.rfft2(frames[i], workers=-1)
            spec *= np.exp(-2j * np.pi * (ky * dy + kx * dx))
            out[i] = sp_fft.irfft2(spec, s=frames.shape[1:], workers=-1)
        return out

    def __call__(self, start: int, stop: int) -> np.ndarray:
        photons = self.clean_photons(start, stop)
        if self.pad:
            photons = self._shift(photons, self.shifts[start:stop])
            p = self.pad
            photons = photons[:, p : p + self.shape[0], p : p + self.shape[1]]
        photons = np.maximum(photons, 0.0)
        out = np.empty((stop - start, *self.shape), np.uint16)
        for i, frame in enumerate(photons):
            if self.noise:
                rng = rng_for(self.seed, STREAM_NOISE, start + i)
                adu = rng.poisson(frame) * self.adu_per_photon
                adu += rng.normal(0.0, self.read_noise_adu, frame.shape)
            else:
                adu = frame * self.adu_per_photon
            adu += self.offset_adu
            np.clip(np.rint(adu), 0, self.max_adu, out=adu)
            out[i] = adu
        return out

    def dask_block(self, block_info=None) -> np.ndarray:
        start, stop = block_info[None]["array-location"][0]
        return self(start, stop)


def simulate_recording(
    *,
    n_frames: int = 1000,
    shape: tuple[int, int] | int = (256, 256),
    n_neurons: int = 50,
    frame_rate_hz: float = 30.0,
    seed: int = 0,
    motion_px: float = 0.0,
    indicator: str = "GCaMP6f",
    tau_rise_s: float | None = None,
    tau_decay_s: float | None = None,
    dff_per_spike: float | None = None,
    firing_rate_hz: tuple[float, float] = (0.1, 2.0),
    burst_probability: float = 0.2,
    pixel_size_um: float = 1.0,
    cell_diameter_um: float = 12.0,
    f0_photons: tuple[float, float] = (30.0, 90.0),
    neuropil: bool = True,
    neuropil_photons: float = 25.0,
    neuropil_coefficient: float = 0.7,
    background_photons: float = 4.0,
    bleach_fraction: float = 0.1,
    noise: bool = True,
    adu_per_photon: float = 4.0,
    read_noise_adu: float = 6.0,
    offset_adu: float = 100.0,
    bit_depth: int = 13,
    lazy: bool | None = None,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SyntheticRecording:
    """Simulate a two-photon calcium-imaging recording with known ground truth.

    Parameters
    ----------
    n_frames : int
        Number of frames.
    shape : (int, int) or int
        Frame size ``(y, x)`` in pixels.
    n_neurons : int
        Number of somata in the field.
    frame_rate_hz : float
        Frames per second.
    seed : int
        Random seed. The same arguments and seed give the same movie bit for bit, eager or lazy.
        Cells, spikes, neuropil, motion and noise draw from separate streams, so e.g. changing
        ``motion_px`` keeps the same cells and spikes.
    motion_px : float
        Largest rigid displacement along either axis, in pixels (0: no motion). Shifts are
        subpixel and recorded in ``truth.shifts``.
    indicator : str
        Kinetics preset (see :data:`INDICATORS`): ``"GCaMP6f"``, ``"GCaMP6m"``, ``"GCaMP6s"``,
        ``"jGCaMP7f"``, ``"jGCaMP8m"``, ``"OGB-1"``.
    tau_rise_s, tau_decay_s : float, optional
        Kernel time constants in seconds; override the preset's.
    dff_per_spike : float, optional
        Mean peak ΔF/F of one spike (the preset's by default); each neuron varies around it
        (log-normal, 30 %).
    firing_rate_hz : (float, float)
        Range of mean spike rates; each neuron's is drawn log-uniformly from it (Hz).
    burst_probability : float
        Probability that a firing event is a burst of 2-6 spikes rather than a single spike.
    pixel_size_um : float
        Pixel size in µm (square pixels).
    cell_diameter_um : float
        Mean soma diameter in µm (sizes vary ±15 %, shapes are irregular ellipses).
    f0_photons : (float, float)
        Range of resting soma brightness in photons per pixel per frame (log-uniform per neuron).
    neuropil : bool
        Add the neuropil field (smooth in space, slow in time, correlated with population
        activity) that contaminates the somata.
    neuropil_photons : float
        Mean neuropil brightness in photons per pixel per frame.
    neuropil_coefficient : float
        Share of neuropil light that reaches pixels covered by a soma (suite2p's 0.7 by default).
    background_photons : float
        Mean autofluorescence background, photons per pixel per frame.
    bleach_fraction : float
        Fraction of fluorescence lost to photobleaching by the last frame (exponential decay).
    noise : bool
        Draw photon (Poisson) and read (Gaussian) noise. With ``False`` the movie is the expected
        value, rounded to integer ADU.
    adu_per_photon, read_noise_adu, offset_adu : float
        Detector: gain, read-noise standard deviation and dark offset, in ADU.
    bit_depth : int
        Digitiser bit depth (8-16); values are clipped to ``2**bit_depth - 1`` and stored as uint16.
    lazy : bool, optional
        Return the movie as a dask array computed on demand. Default: lazy when the movie
        would exceed 512 MiB.
    progress : callable, optional
        tqdm-like factory, called as ``progress(total=n_frames, desc=...)``, for eager movies.
    should_stop : callable, optional
        Checked between frame blocks of an eager movie; raise
        :class:`~napari_calcium.errors.OperationCancelled` when it returns True.

    Returns
    -------
    SyntheticRecording
        ``.movie`` ``(n_frames, y, x)`` uint16, ``.truth`` (:class:`GroundTruth`) and
        ``.metadata``.

    Notes
    -----
    Spikes follow a Poisson process of events, 20 % of them bursts; each spike adds
    ``dff_per_spike * h(t - t_spike)`` to the neuron's ΔF/F with the double-exponential kernel
    ``h`` of :func:`napari_calcium.core.spikes.indicators.double_exponential`, evaluated at
    sub-frame precision. The neuropil follows the contamination model of suite2p
    (``F_soma + r * F_neuropil``; Pachitariu et al. 2017, bioRxiv 061507); the noise model is the
    standard photon-counting one (Poisson shot noise plus Gaussian read noise).

    Examples
    --------
    >>> rec = simulate_recording(n_frames=60, shape=(64, 64), n_neurons=5, seed=1)
    >>> rec.movie.shape, rec.movie.dtype, int(rec.truth.labels.max())
    ((60, 64, 64), dtype('uint16'), 5)
    """
    params = {k: v for k, v in locals().items() if k not in ("progress", "should_stop")}
    checked = _check_sizes(params)  # before anything is allocated
    n_frames, shape, n_neurons = checked["n_frames"], checked["shape"], checked["n_neurons"]
    fs, motion_px, seed = checked["fs"], checked["motion_px"], checked["seed"]
    pixel_size_um, diameter_px = checked["pixel_size_um"], checked["diameter_px"]
    tau_rise, tau_decay, preset = checked["tau_rise"], checked["tau_decay"], checked["preset"]
    amp, gain, bit_depth = checked["amp"], checked["gain"], checked["bit_depth"]
    rate_lo, rate_hi = checked["rates"]
    f0_lo, f0_hi = checked["f0"]

    # --- scene: cells on a canvas with a margin for motion
    pad = math.ceil(motion_px) + 16 if motion_px > 0 else 0
    canvas = (shape[0] + 2 * pad, shape[1] + 2 * pad)
    visible = (pad, pad + shape[0], pad, pad + shape[1])
    rng_cells = rng_for(seed, STREAM_CELLS)
    cells = make_cells(
        rng_cells, n_neurons, canvas_shape=canvas, visible=visible, diameter_px=diameter_px
    )
    f0 = np.exp(rng_cells.uniform(np.log(f0_lo), np.log(f0_hi), n_neurons))
    amps = amp * rng_cells.lognormal(-0.5 * 0.3**2, 0.3, n_neurons)

    # --- activity
    rng_spk = rng_for(seed, STREAM_SPIKES)
    rates = np.exp(rng_spk.uniform(np.log(rate_lo), np.log(rate_hi), n_neurons))
    duration = n_frames / fs
    spike_times = tuple(
        draw_spike_times(rng_spk, r, duration, burst_probability=burst_probability) for r in rates
    )
    spikes = np.zeros((n_neurons, n_frames), np.int16)
    calcium = np.zeros((n_neurons, n_frames))
    for i, st in enumerate(spike_times):
        np.add.at(spikes[i], np.minimum((st * fs).astype(np.int64), n_frames - 1), 1)
        calcium[i] = amps[i] * calcium_from_spikes(
            st, n_frames, fs, tau_rise_s=tau_rise, tau_decay_s=tau_decay
        )

    # --- neuropil, background, bleaching, motion
    rng_np = rng_for(seed, STREAM_NEUROPIL)
    npl = make_neuropil(
        rng_np,
        canvas_shape=canvas,
        origin=(-pad, -pad),
        n_frames=n_frames,
        frame_rate_hz=fs,
        diameter_px=diameter_px,
        level_photons=neuropil_photons if neuropil else 0.0,
        population_activity=calcium.mean(axis=0) if n_neurons else np.zeros(n_frames),
    )
    smooth = smooth_field(rng_np, canvas, 2 * diameter_px, origin=(-pad, -pad))
    background = background_photons * np.clip(1 + 0.3 * smooth, 0.3, None)
    coverage = np.minimum(1.0, np.asarray(cells.weights.sum(axis=0)).ravel())
    occlusion = 1.0 - (1.0 - neuropil_coefficient) * coverage
    t = np.arange(n_frames)
    bleaching = (1.0 - bleach_fraction) ** (t / max(n_frames - 1, 1))
    shifts = make_motion(rng_for(seed, STREAM_MOTION), n_frames, fs, motion_px)

    renderer = _Renderer(
        seed=seed,
        shape=shape,
        pad=pad,
        weights=cells.weights,
        f0=f0,
        calcium=calcium,
        occlusion=occlusion,
        neuropil=npl,
        background=background,
        bleaching=bleaching,
        shifts=shifts,
        noise=noise,
        offset_adu=offset_adu,
        adu_per_photon=gain,
        read_noise_adu=read_noise_adu,
        max_adu=2 ** int(bit_depth) - 1,
    )
    movie = _make_movie(renderer, n_frames, shape, params, lazy, progress, should_stop)

    # --- truth in visible coordinates and ADU
    weights = _crop_weights(cells.weights, canvas, visible)
    wsum = np.asarray(weights.sum(axis=1)).ravel()
    wsum[wsum == 0] = 1.0
    crop = (slice(visible[0], visible[1]), slice(visible[2], visible[3]))
    np_spatial = npl.spatial[:, crop[0], crop[1]] * gain
    np_field = weights @ np_spatial.reshape(len(np_spatial), -1).T  # (n, k)
    neuropil_at_cells = (np_field @ npl.temporal) / wsum[:, None] * bleaching[None, :]
    occ_vis = occlusion.reshape(canvas)[crop].ravel()
    truth = GroundTruth(
        labels=labels_from_weights(weights, shape),
        footprints_sparse=weights,
        spikes=spikes,
        spike_times_s=spike_times,
        calcium=calcium.astype(np.float32),
        baseline_f0=(f0 * gain).astype(np.float32),
        dff_per_spike=amps.astype(np.float32),
        firing_rate_hz=rates,
        centers_px=cells.centers_px - pad,
        neuropil=neuropil_at_cells.astype(np.float32),
        contamination=(weights @ occ_vis) / wsum,
        neuropil_coefficient=float(neuropil_coefficient),
        neuropil_spatial=np_spatial.astype(np.float32),
        neuropil_temporal=npl.temporal,
        background=(background[crop] * gain).astype(np.float32),
        bleaching=bleaching.astype(np.float32),
        shifts=shifts,
        frame_rate_hz=fs,
        pixel_size_um=pixel_size_um,
        cell_diameter_px=diameter_px,
        tau_rise_s=float(tau_rise),
        tau_decay_s=float(tau_decay),
        indicator=preset.name if preset is not None and tau_rise_s is None else None,
        offset_adu=float(offset_adu),
        adu_per_photon=gain,
        read_noise_adu=float(read_noise_adu),
        parameters=params,
    )
    metadata = {
        "source_format": "napari-calcium synthetic",
        "frame_rate_hz": fs,
        "frame_period_s": 1.0 / fs,
        "timestamps_s": t / fs,
        "pixel_size_um": (pixel_size_um, pixel_size_um),
        "bit_depth": int(bit_depth),
        "n_planes": 1,
        "channel_names": ["green"],
        "indicator": truth.indicator,
    }
    return SyntheticRecording(movie=movie, truth=truth, metadata=metadata)


def _crop_weights(weights: sparse.csr_array, canvas: tuple[int, int], visible) -> sparse.csr_array:
    """Footprints on the canvas -> footprints on the visible field (row-major pixels)."""
    y0, y1, x0, x1 = visible
    if (y0, x0) == (0, 0) and (y1, x1) == canvas:
        return sparse.csr_array(weights, dtype=np.float32)
    coo = weights.tocoo()
    yy, xx = np.divmod(coo.col, canvas[1])
    keep = (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
    cols = (yy[keep] - y0) * (x1 - x0) + (xx[keep] - x0)
    return sparse.csr_array(
        (coo.data[keep].astype(np.float32), (coo.row[keep], cols)),
        shape=(weights.shape[0], (y1 - y0) * (x1 - x0)),
    )


def _make_movie(renderer, n_frames, shape, params, lazy, progress, should_stop):
    frame_bytes = 2 * shape[0] * shape[1]
    if lazy is None:
        lazy = n_frames * frame_bytes > LAZY_THRESHOLD_BYTES
    block = max(1, min(n_frames, (32 * 2**20) // frame_bytes))
    if lazy:
        import dask.array as da
        from dask.base import tokenize

        chunks = tuple(b.stop - b.start for b in frame_blocks(n_frames, block_frames=block))
        return da.map_blocks(
            renderer.dask_block,
            dtype=np.uint16,
            chunks=(chunks, (shape[0],), (shape[1],)),
            meta=np.empty((0, 0, 0), np.uint16),
            name="simulate-recording-" + tokenize(sorted(params.items(), key=str)),
        )
    movie = np.empty((n_frames, *shape), np.uint16)
    blocks = frame_blocks(n_frames, block_frames=block)
    for blk in track_blocks(blocks, progress=progress, should_stop=should_stop, desc="simulating"):
        movie[blk.start : blk.stop] = renderer(blk.start, blk.stop)
    return movie

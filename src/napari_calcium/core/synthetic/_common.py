"""What the synthetic generators share: limits, argument checks, the truth and result types.

:mod:`.recording` (two-photon, and the public ``simulate_recording``) and :mod:`.one_photon`
(one-photon scenes) both build on these; they live here so that neither imports the other's
module at import time (``recording`` dispatches to ``one_photon``, which extends the types below).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from ...errors import ParameterError
from ..chunking import frame_blocks, track_blocks
from ..spikes.indicators import get_indicator

__all__ = ["GroundTruth", "SyntheticRecording"]

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


def make_movie(
    renderer, n_frames, shape, params, lazy, progress, should_stop, *, lazy_threshold_bytes
):
    """The movie from a renderer: eager in 32 MiB blocks, or a lazy dask array.

    ``renderer(start, stop)`` returns frames ``[start, stop)`` as ``(k, y, x)`` uint16;
    ``renderer.dask_block`` is its dask block function. ``lazy=None`` is lazy above
    `lazy_threshold_bytes`.
    """
    frame_bytes = 2 * shape[0] * shape[1]
    if lazy is None:
        lazy = n_frames * frame_bytes > lazy_threshold_bytes
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

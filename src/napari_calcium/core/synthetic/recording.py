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

``simulate_recording(modality="one_photon")`` hands over to :mod:`.one_photon` (miniscope scenes).
The truth and result types, the limits and the argument checks live in :mod:`._common` and are
imported here, so ``recording.GroundTruth`` and friends keep working.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import fft as sp_fft
from scipy import sparse

from ...errors import ParameterError
from ..spikes.indicators import INDICATORS
from ._common import (  # noqa: F401 - the limits and checks are part of this module's namespace
    MAX_CANVAS_PIXELS,
    MAX_DFF_PER_SPIKE,
    MAX_FIRING_RATE_HZ,
    MAX_FRAME_RATE_HZ,
    MAX_MOVIE_BYTES,
    MAX_NEURONS,
    MAX_PHOTONS,
    MAX_SIDE_PX,
    MAX_SPIKES,
    MAX_TAU_S,
    MAX_TRUTH_SAMPLES,
    GroundTruth,
    SyntheticRecording,
    _check_positive,
    _check_range,
    _check_sizes,
    _check_whole,
    _crop_weights,
    _label,
    make_movie,
)
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
    nonrigid_px: float = 0.0,
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
    modality: str = "two_photon",
    lazy: bool | None = None,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SyntheticRecording:
    """Simulate a two-photon (or one-photon) calcium-imaging recording with known ground truth.

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
    nonrigid_px : float
        One-photon only: largest displacement of the smooth, spatially varying (non-rigid) part
        of the motion, in pixels (0: none); recorded in ``truth.deformation``.
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
    modality : {"two_photon", "one_photon"}
        ``"two_photon"`` (default): the scene described above. ``"one_photon"``: a miniscope
        scene (large soft overlapping somata under a strong structured, fluctuating background,
        vessels, vignetting, optional non-rigid motion) made by
        :func:`~napari_calcium.core.synthetic.one_photon.simulate_one_photon` with these
        arguments; its truth is a
        :class:`~napari_calcium.core.synthetic.one_photon.OnePhotonGroundTruth`.
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
    if modality == "one_photon":
        from .one_photon import simulate_one_photon  # one_photon imports _common, not this

        kwargs = {k: v for k, v in params.items() if k != "modality"}
        return simulate_one_photon(
            **kwargs, progress=progress, should_stop=should_stop, _parameters=params
        )
    if modality != "two_photon":
        raise ParameterError(
            f"modality={modality!r} is not known: use 'two_photon' or 'one_photon'"
        )
    if nonrigid_px != 0:
        raise ParameterError(
            f"nonrigid_px={nonrigid_px!r}: non-rigid motion is simulated for "
            "modality='one_photon' only; use motion_px for rigid motion"
        )
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


def _make_movie(renderer, n_frames, shape, params, lazy, progress, should_stop):
    return make_movie(
        renderer, n_frames, shape, params, lazy, progress, should_stop,
        lazy_threshold_bytes=LAZY_THRESHOLD_BYTES,
    )  # fmt: skip

"""Synthetic one-photon (miniscope / widefield) recordings with known ground truth.

:func:`simulate_one_photon` (reached through ``simulate_recording(..., modality="one_photon")``)
draws large, soft, overlapping somata under a strong background that is structured in space and
fluctuates in time, as seen through a head-mounted one-photon microscope: out-of-focus
fluorescence (smooth fields, slow dynamics, partly tied to population activity), dark blood
vessels crossing the field, a radial vignetting fall-off, photobleaching, optional rigid *and*
non-rigid (smoothly varying) motion, and photon-limited noise.

The image model, per frame ``t`` and output pixel ``x`` (photons, before motion and noise)::

    P(x, t) = b(t) * [ Σ_i w_i(x) f0_i (1 + c_i(t)) + Σ_k S_k(x) T_k(t) + A(x) ]

with ``w_i`` the footprint of cell ``i`` (peak 1), ``f0_i`` its resting brightness (the
vignetting at the soma centre is folded in), ``c_i`` its calcium (ΔF/F), ``S_k`` / ``T_k`` the
out-of-focus background modes (``S_k`` includes the vessel shadows ``V(x)`` and the vignetting
``G(x)``; ``T_0 = 1`` is the static haze, the others fluctuate slowly), ``A = G · a(x)`` a dim
autofluorescence floor and ``b(t)`` the bleaching factor. This is the two-photon model of
:mod:`.recording` with ``neuropil_coefficient = 1`` (no occlusion) and the background in the
neuropil slots, so the same reconstruction formula holds. The scene is then displaced by the
motion field ``d(t, x)`` (``movie[t, x] ≈ P(x - d(t, x), t)``), photon (Poisson) and Gaussian read
noise are drawn and the result is converted to ADU as in :mod:`.recording`.

Memory: the scene is held as a few maps on the canvas (``k + 6`` float32 frames), the footprints
(sparse) and the traces; frames are rendered on demand (eagerly in blocks of 32 MiB, or lazily by
dask). The dense deformation field ``(frames, y, x, 2)`` float32 (8 bytes per pixel per frame)
is returned as a numpy array when it is at most :data:`MAX_EAGER_DEFORMATION_BYTES` and the movie
is eager, otherwise as a lazy dask array; it is always reconstructible from its factors
``deformation_modes`` / ``deformation_weights`` (see :class:`OnePhotonGroundTruth`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage, sparse

from ...errors import ParameterError
from ._common import (
    MAX_CANVAS_PIXELS,
    GroundTruth,
    SyntheticRecording,
    _check_positive,
    _check_sizes,
    _crop_weights,
    make_movie,
)
from .scene import (
    STREAM_CELLS,
    STREAM_MOTION,
    STREAM_NEUROPIL,
    STREAM_NOISE,
    STREAM_SPIKES,
    _slow_signal,
    calcium_from_spikes,
    draw_spike_times,
    labels_from_weights,
    make_motion,
    rng_for,
    smooth_field,
)

__all__ = [
    "MAX_EAGER_DEFORMATION_BYTES",
    "OnePhotonGroundTruth",
    "simulate_one_photon",
]

#: movies larger than this many bytes are returned as lazy dask arrays when ``lazy=None``
LAZY_THRESHOLD_BYTES = 512 * 2**20
#: a dense deformation field larger than this is returned as a lazy dask array (bytes)
MAX_EAGER_DEFORMATION_BYTES = 256 * 2**20
#: largest non-rigid displacement, pixels (also at most a quarter of the frame's smaller side)
MAX_NONRIGID_PX = 32.0
#: largest number of vessels
MAX_VESSELS = 64
#: largest background / cell brightness ratio
MAX_BACKGROUND_RATIO = 1000.0

# random streams of the one-photon parts (after the five of scene.py)
STREAM_VESSELS, STREAM_DEFORMATION = 5, 6
#: modes of the non-rigid field per axis
N_DEFORMATION_MODES = 3


@dataclass(frozen=True, eq=False)
class OnePhotonGroundTruth(GroundTruth):
    """:class:`~napari_calcium.core.synthetic.recording.GroundTruth` of a one-photon scene.

    All inherited fields keep their meaning (see the module's image model): ``neuropil_spatial``
    / ``neuropil_temporal`` hold the out-of-focus background modes ``S_k`` (ADU, vignetting and
    vessel shadows included) and ``T_k`` (before bleaching), ``background`` the autofluorescence
    floor ``A`` (ADU, before bleaching), ``neuropil_coefficient`` is 1 and ``contamination`` is 1,
    ``neuropil`` is the footprint-weighted background at each cell (ADU, with bleaching) and
    ``baseline_f0`` includes the vignetting at the cell centre. ``shifts`` is the rigid part of
    the motion.

    Attributes
    ----------
    modality : str
        ``"one_photon"``.
    background_spatial : numpy.ndarray
        ``(k + 1, y, x)`` float32 maps in ADU: the ``k`` out-of-focus modes, then the floor.
    background_temporal : numpy.ndarray
        ``(k + 1, frames)`` float32 time courses *including* bleaching, so that the whole
        background movie (ADU above the offset, before motion and noise) is the low-rank product
        ``Σ_j background_spatial[j] * background_temporal[j, t]``; see :meth:`background_movie`.
        We store the factorisation, not the movie (``(k + 1) (y x + frames)`` values instead of
        ``frames y x``).
    vignetting : numpy.ndarray
        ``(y, x)`` float32 radial fall-off ``G`` in (0, 1], 1 at the frame centre.
    vessels : numpy.ndarray
        ``(y, x)`` float32 transmission ``V`` of the vessel shadows in (0, 1] (1: no vessel).
    deformation : numpy.ndarray or dask.array.Array or None
        ``(frames, y, x, 2)`` float32 displacement ``(dy, dx)`` in pixels of each output pixel,
        rigid part included: ``movie[t, y, x] ≈ scene(y - dy, x - dx)``; to correct, sample each
        frame at ``(y + dy, x + dx)``. None when there is no non-rigid motion (``nonrigid_px=0``).
        Numpy when at most 256 MiB and the movie is eager; otherwise dask (computed on demand).
    deformation_modes : numpy.ndarray or None
        ``(m, y, x, 2)`` float32 spatial modes of the non-rigid part (pixels).
    deformation_weights : numpy.ndarray or None
        ``(frames, m)`` float32 weights: ``deformation[t] = shifts[t] +
        Σ_j deformation_weights[t, j] * deformation_modes[j]``.
    nonrigid_px : float
        Largest non-rigid displacement (over frames, pixels and both axes), pixels.
    """

    modality: str = "one_photon"
    background_spatial: np.ndarray | None = None
    background_temporal: np.ndarray | None = None
    vignetting: np.ndarray | None = None
    vessels: np.ndarray | None = None
    deformation: Any = None
    deformation_modes: np.ndarray | None = None
    deformation_weights: np.ndarray | None = None
    nonrigid_px: float = 0.0

    def background_movie(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The background of frames ``[start, stop)`` in ADU above the offset, before motion.

        Returns
        -------
        numpy.ndarray
            ``(stop - start, y, x)`` float32, ``Σ_j background_spatial[j] *
            background_temporal[j, t]``.
        """
        k = len(self.background_spatial)
        temporal = self.background_temporal[:, start:stop]
        flat = self.background_spatial.reshape(k, -1).T @ temporal
        return np.ascontiguousarray(flat.T).reshape(temporal.shape[1], *self.labels.shape)


# --------------------------------------------------------------------------------------------
# Scene parts


def _place_overlapping(
    rng: np.random.Generator,
    n: int,
    radii: np.ndarray,
    region: tuple[float, float, float, float],
    overlap: float,
) -> np.ndarray:
    """Centres inside ``region`` at least ``(1 - overlap) (r_i + r_j)`` apart."""
    y0, y1, x0, x1 = region
    centers = np.empty((n, 2))
    factor = 1.0 - overlap
    for i in range(n):
        for attempt in range(2000):
            if attempt and attempt % 400 == 0:
                factor *= 0.9
            c = rng.uniform((y0, x0), (y1, x1))
            if i == 0 or np.all(np.hypot(*(centers[:i] - c).T) >= factor * (radii[:i] + radii[i])):
                break
        else:
            raise ParameterError(
                f"n_neurons={n} cells of radius ~{radii.mean():.1f} px do not fit into a "
                f"{y1 - y0:.0f} x {x1 - x0:.0f} px field; use fewer neurons, a larger shape or a "
                "smaller cell_diameter_um"
            )
        centers[i] = c
    return centers


def _soft_somata(
    rng: np.random.Generator,
    n: int,
    *,
    canvas_shape: tuple[int, int],
    visible: tuple[int, int, int, int],
    diameter_px: float,
    overlap: float,
) -> tuple[sparse.csr_array, np.ndarray]:
    """Soft, slightly elliptical somata blurred by scattering, as a one-photon microscope sees them.

    Each footprint is a logistic soft disk (edge width 15-25 % of the radius, axis ratio up to
    ~1.5) convolved with a Gaussian of 0.2 radii (out-of-focus blur), peak 1, support where the
    weight is >= 0.02.

    Returns
    -------
    weights : scipy.sparse.csr_array
        ``(n, canvas pixels)`` float32.
    centers : numpy.ndarray
        ``(n, 2)`` canvas coordinates (y, x).
    """
    mean_r = diameter_px / 2.0
    radii = mean_r * np.clip(rng.lognormal(0.0, 0.12, n), 0.7, 1.4)
    y0, y1, x0, x1 = visible
    inset = 0.3 * mean_r
    centers = _place_overlapping(
        rng, n, radii, (y0 + inset, y1 - inset, x0 + inset, x1 - inset), overlap
    )
    height, width = canvas_shape
    rows, cols, vals = [], [], []
    for i in range(n):
        elong = rng.uniform(0.0, 0.2)
        a, b = radii[i] * (1 + elong), radii[i] / (1 + elong)
        theta = rng.uniform(0, np.pi)
        edge = rng.uniform(0.15, 0.25)
        half = math.ceil(2.0 * a) + 2
        cy, cx = centers[i]
        iy, ix = int(cy), int(cx)
        yy, xx = np.mgrid[
            max(0, iy - half) : min(height, iy + half + 1),
            max(0, ix - half) : min(width, ix + half + 1),
        ]
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        rho = np.hypot(u / a, v / b)
        w = 1.0 / (1.0 + np.exp((rho - 1.0) / edge))
        w = ndimage.gaussian_filter(w, 0.2 * radii[i], mode="constant")
        w /= w.max()
        keep = w >= 0.02
        rows.append(np.full(int(keep.sum()), i))
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
    return weights, centers


def _vessel_map(
    rng: np.random.Generator,
    canvas_shape: tuple[int, int],
    origin: tuple[int, int],
    visible_shape: tuple[int, int],
    n_vessels: int,
    depth: float,
) -> np.ndarray:
    """Transmission ``V`` in (0, 1]: dark, curved tubes (quadratic Bézier curves) across the field.

    Each vessel runs between two random points on the border of the visible field through a
    random control point, is 1.5-5 px wide (Gaussian profile) and absorbs ``depth`` × 0.6-1 of
    the light at its axis. Defined in scene coordinates, so a motion margin does not change it.
    """
    h, w = visible_shape
    out = np.zeros(canvas_shape, np.float32)

    def border_point() -> np.ndarray:
        side, s = rng.integers(4), rng.random()
        return np.array(
            [(0.0, s * w), (h, s * w), (s * h, 0.0), (s * h, w)][side], dtype=np.float64
        )

    for _ in range(n_vessels):
        p0, p2 = border_point(), border_point()
        p1 = rng.uniform((0.0, 0.0), (h, w))
        width = rng.uniform(1.5, 5.0)
        strength = depth * rng.uniform(0.6, 1.0)
        s = np.linspace(0.0, 1.0, max(16, int(2 * (h + w))))[:, None]
        pts = (1 - s) ** 2 * p0 + 2 * (1 - s) * s * p1 + s**2 * p2  # (m, 2) along the curve
        tube = np.zeros(canvas_shape, np.float32)
        iy = np.round(pts[:, 0] - origin[0]).astype(int)
        ix = np.round(pts[:, 1] - origin[1]).astype(int)
        ok = (iy >= 0) & (iy < canvas_shape[0]) & (ix >= 0) & (ix < canvas_shape[1])
        tube[iy[ok], ix[ok]] = 1.0
        # distance to the curve -> Gaussian cross-section
        dist = ndimage.distance_transform_edt(tube == 0)
        out = np.maximum(out, strength * np.exp(-0.5 * (dist / width) ** 2).astype(np.float32))
    return 1.0 - np.clip(out, 0.0, 0.95)


def _vignetting(
    canvas_shape: tuple[int, int], origin: tuple[int, int], visible_shape: tuple[int, int], v: float
) -> np.ndarray:
    """Radial fall-off ``G = 1 - v (r / r_corner)^2``: 1 at the centre, ``1 - v`` at corners."""
    cy, cx = (visible_shape[0] - 1) / 2.0, (visible_shape[1] - 1) / 2.0
    r_corner = math.hypot(cy, cx) or 1.0
    yy = (np.arange(canvas_shape[0]) + origin[0] - cy)[:, None]
    xx = (np.arange(canvas_shape[1]) + origin[1] - cx)[None, :]
    r2 = (yy**2 + xx**2) / r_corner**2
    return np.clip(1.0 - v * r2, 0.05, 1.0).astype(np.float32)


def _deformation_factors(
    rng: np.random.Generator,
    shape: tuple[int, int],
    n_frames: int,
    frame_rate_hz: float,
    nonrigid_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Modes ``(m, y, x, 2)`` and weights ``(frames, m)`` of a smooth non-rigid displacement.

    ``m = 2 · N_DEFORMATION_MODES``: smooth random fields (correlation length a quarter of the
    frame's smaller side) for each axis, each driven by a motion-like time course (drift,
    breathing, jitter; :func:`make_motion`). Scaled so that the largest displacement, over frames,
    a 64 × 64 grid of pixels and both axes, is ``nonrigid_px``.
    """
    m = N_DEFORMATION_MODES
    sigma = max(2.0, min(shape) / 4.0)
    modes = np.zeros((2 * m, *shape, 2), np.float32)
    for axis in range(2):
        for j in range(m):
            modes[axis * m + j, ..., axis] = smooth_field(rng, shape, sigma, n_modes=32)
    weights = np.empty((n_frames, 2 * m))
    for j in range(m):  # one make_motion call gives two independent courses
        courses = make_motion(rng, n_frames, frame_rate_hz, 1.0)
        weights[:, j], weights[:, m + j] = courses[:, 0], courses[:, 1]
    # the peak on a grid of at most 64 x 64 pixels (the field is smooth on the scale sigma)
    gy = np.unique(np.linspace(0, shape[0] - 1, min(64, shape[0])).round().astype(int))
    gx = np.unique(np.linspace(0, shape[1] - 1, min(64, shape[1])).round().astype(int))
    coarse = modes[:, gy][:, :, gx].reshape(2 * m, -1)  # (m, grid * 2)
    peak = 0.0
    for start in range(0, n_frames, 1024):
        peak = max(peak, float(np.abs(weights[start : start + 1024] @ coarse).max(initial=0.0)))
    scale = nonrigid_px / peak if peak > 0 else 0.0
    return modes, (weights * scale).astype(np.float32)


def _deformation_block(
    shifts: np.ndarray, modes: np.ndarray, weights: np.ndarray, start: int, stop: int
) -> np.ndarray:
    """Dense ``(stop - start, y, x, 2)`` float32 deformation of frames ``[start, stop)``."""
    m = len(modes)
    out = (weights[start:stop] @ modes.reshape(m, -1)).reshape(stop - start, *modes.shape[1:])
    out += shifts[start:stop, None, None, :].astype(np.float32)
    return out


def deformation_field(
    shifts: np.ndarray, modes: np.ndarray, weights: np.ndarray, *, eager: bool = True
) -> Any:
    """The dense deformation ``(frames, y, x, 2)`` float32 from its rigid and modal parts.

    ``deformation[t] = shifts[t] + Σ_j weights[t, j] * modes[j]``; a numpy array when `eager`
    and at most :data:`MAX_EAGER_DEFORMATION_BYTES`, else a lazy dask array (blocks of ~64 MiB).
    """
    n_frames, shape = len(weights), modes.shape[1:3]
    nbytes = n_frames * shape[0] * shape[1] * 2 * 4
    if eager and nbytes <= MAX_EAGER_DEFORMATION_BYTES:
        return _deformation_block(shifts, modes, weights, 0, n_frames)
    import dask.array as da

    block = max(1, min(n_frames, (64 * 2**20) // (shape[0] * shape[1] * 8)))
    chunks = tuple(min(block, n_frames - s) for s in range(0, n_frames, block))
    return da.map_blocks(
        _DeformationBlock(shifts, modes, weights),
        dtype=np.float32,
        chunks=(chunks, (shape[0],), (shape[1],), (2,)),
        meta=np.empty((0, 0, 0, 0), np.float32),
    )


class _DeformationBlock:
    """Dask block function for the lazy deformation field (picklable)."""

    def __init__(self, shifts, modes, weights):
        self.shifts, self.modes, self.weights = shifts, modes, weights

    def __call__(self, block_info=None) -> np.ndarray:
        start, stop = block_info[None]["array-location"][0]
        return _deformation_block(self.shifts, self.modes, self.weights, start, stop)


# --------------------------------------------------------------------------------------------
# Rendering


class _OnePhotonRenderer:
    """Renders any range of frames from the precomputed scene; picklable for dask."""

    def __init__(
        self,
        *,
        seed,
        shape,
        pad,
        weights,
        f0,
        calcium,
        bg_spatial,
        bg_temporal,
        bleaching,
        shifts,
        def_modes,
        def_weights,
        noise,
        offset_adu,
        adu_per_photon,
        read_noise_adu,
        max_adu,
    ):
        self.seed = seed
        self.shape = shape
        self.pad = pad
        self.weights_t = sparse.csr_array((weights.T * f0[None, :]).astype(np.float32))
        self.calcium = calcium.astype(np.float32)
        self.bg_spatial_t = np.ascontiguousarray(
            bg_spatial.reshape(len(bg_spatial), -1).T, np.float32
        )  # (canvas pixels, k + 1)
        self.bg_temporal = bg_temporal.astype(np.float32)
        self.bleaching = bleaching.astype(np.float32)
        self.shifts = shifts
        self.def_modes = def_modes
        self.def_weights = def_weights
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
        img = self.weights_t @ (1.0 + self.calcium[:, start:stop])
        img += self.bg_spatial_t @ self.bg_temporal[:, start:stop]
        img *= self.bleaching[None, start:stop]
        return np.ascontiguousarray(img.T).reshape(stop - start, *self.canvas_shape)

    def _move(self, frames: np.ndarray, start: int, stop: int) -> np.ndarray:
        p = self.pad
        h, w = self.shape
        if self.def_modes is None:  # rigid: exact Fourier shift, as the two-photon renderer
            ky = sp_fft.fftfreq(frames.shape[1])[:, None]
            kx = sp_fft.rfftfreq(frames.shape[2])[None, :]
            out = np.empty((len(frames), h, w), np.float32)
            for i, (dy, dx) in enumerate(self.shifts[start:stop]):
                spec = sp_fft.rfft2(frames[i], workers=-1)
                spec *= np.exp(-2j * np.pi * (ky * dy + kx * dx))
                out[i] = sp_fft.irfft2(spec, s=frames.shape[1:], workers=-1)[p : p + h, p : p + w]
            return out
        grid_y, grid_x = np.mgrid[p : p + h, p : p + w].astype(np.float32)
        field = _deformation_block(self.shifts, self.def_modes, self.def_weights, start, stop)
        out = np.empty((len(frames), h, w), np.float32)
        for i in range(len(frames)):
            coords = np.stack([grid_y - field[i, ..., 0], grid_x - field[i, ..., 1]])
            out[i] = ndimage.map_coordinates(frames[i], coords, order=3, mode="nearest")
        return out

    def __call__(self, start: int, stop: int) -> np.ndarray:
        photons = self.clean_photons(start, stop)
        if self.pad:
            photons = self._move(photons, start, stop)
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


# --------------------------------------------------------------------------------------------
# Entry point


def _check_one_photon(
    nonrigid_px: Any,
    background_ratio: Any,
    n_vessels: Any,
    vessel_depth: Any,
    vignetting: Any,
    background_fluctuation: Any,
    overlap: Any,
    shape: tuple[int, int],
) -> dict[str, Any]:
    most_nonrigid = min(MAX_NONRIGID_PX, min(shape) / 4.0)
    nonrigid = _check_positive("nonrigid_px", nonrigid_px, allow_zero=True)
    if nonrigid > most_nonrigid:
        raise ParameterError(
            f"nonrigid_px={nonrigid_px!r} is too large: at most {most_nonrigid:g} px for a "
            f"{shape[0]} x {shape[1]} px frame (a quarter of its smaller side, at most "
            f"{MAX_NONRIGID_PX:g})"
        )
    ratio = _check_positive("background_ratio", background_ratio, most=MAX_BACKGROUND_RATIO)
    if isinstance(n_vessels, bool) or not isinstance(n_vessels, numbers.Integral):
        raise ParameterError(f"n_vessels={n_vessels!r} must be a whole number >= 0")
    if not 0 <= n_vessels <= MAX_VESSELS:
        raise ParameterError(f"n_vessels={n_vessels!r} must be in [0, {MAX_VESSELS}]")
    for name, value, high in (
        ("vessel_depth", vessel_depth, 0.95),
        ("vignetting", vignetting, 0.9),
        ("background_fluctuation", background_fluctuation, 1.0),
        ("overlap", overlap, 0.6),
    ):
        if not (isinstance(value, numbers.Real) and 0 <= value <= high):
            raise ParameterError(f"{name}={value!r} must be in [0, {high:g}]")
    return {"nonrigid_px": nonrigid, "background_ratio": ratio}


def simulate_one_photon(
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
    cell_diameter_um: float = 16.0,
    f0_photons: tuple[float, float] = (30.0, 90.0),
    neuropil: bool = True,
    neuropil_photons: float = 25.0,
    neuropil_coefficient: float = 0.7,
    background_photons: float = 4.0,
    background_ratio: float = 8.0,
    background_fluctuation: float = 0.15,
    n_vessels: int = 3,
    vessel_depth: float = 0.5,
    vignetting: float = 0.4,
    overlap: float = 0.35,
    bleach_fraction: float = 0.1,
    noise: bool = True,
    adu_per_photon: float = 4.0,
    read_noise_adu: float = 6.0,
    offset_adu: float = 100.0,
    bit_depth: int = 13,
    lazy: bool | None = None,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    _parameters: dict | None = None,
) -> SyntheticRecording:
    """Simulate a one-photon (miniscope) calcium-imaging recording with known ground truth.

    The parameters shared with :func:`~napari_calcium.core.synthetic.recording.
    simulate_recording` mean the same; ``simulate_recording(modality="one_photon", ...)`` calls
    this function with them (and the one-photon options below at their defaults).

    Parameters
    ----------
    n_frames, shape, n_neurons, frame_rate_hz, seed, indicator, tau_rise_s, tau_decay_s,
    dff_per_spike, firing_rate_hz, burst_probability, pixel_size_um, f0_photons, bleach_fraction,
    noise, adu_per_photon, read_noise_adu, offset_adu, bit_depth, lazy, progress, should_stop
        As in ``simulate_recording``.
    motion_px : float
        Largest *rigid* displacement along either axis, pixels (``truth.shifts``).
    nonrigid_px : float
        Largest displacement of the smooth, spatially varying part of the motion, pixels (0: no
        non-rigid motion and ``truth.deformation`` is None). At most a quarter of the frame's
        smaller side and 32 px. 2-4 px is typical of miniscopes.
    cell_diameter_um : float
        Mean soma diameter in µm (default 16: 16 px at 1 µm/px; sizes vary ±12 %).
    neuropil : bool
        Let the out-of-focus background fluctuate in time (False: static haze).
    neuropil_photons, neuropil_coefficient : float
        Two-photon only; ignored (the one-photon background is set by ``background_ratio`` and
        is not occluded by somata: ``truth.neuropil_coefficient`` is 1).
    background_photons : float
        Mean autofluorescence floor, photons per pixel per frame (before vignetting).
    background_ratio : float
        Mean out-of-focus background over the mean resting soma brightness (geometric mean of
        ``f0_photons``), before vignetting and vessels. Real miniscope data: 3-10.
    background_fluctuation : float
        Relative size of the slow temporal fluctuations of the background (0: static).
    n_vessels : int
        Number of dark blood vessels crossing the field (0-64).
    vessel_depth : float
        Largest share of background light a vessel absorbs at its axis (0-0.95).
    vignetting : float
        Relative fall-off of the illumination at the frame corners (0-0.9).
    overlap : float
        How much neighbouring somata may overlap: centres are at least ``(1 - overlap) (r_i +
        r_j)`` apart (0-0.6).

    Returns
    -------
    SyntheticRecording
        ``.movie`` ``(n_frames, y, x)`` uint16, ``.truth`` (:class:`OnePhotonGroundTruth`) and
        ``.metadata`` (with ``"modality": "one_photon"``).

    Notes
    -----
    Out-of-focus fluorescence is the dominant background of one-photon imaging and the reason
    CNMF-E models it explicitly (Zhou et al. 2018, eLife 7:e28728); the non-rigid motion is what
    NoRMCorre corrects (Pnevmatikakis & Giovannucci 2017, J Neurosci Methods 291:83). The noise
    model is photon counting (Poisson) plus Gaussian read noise.

    Examples
    --------
    >>> rec = simulate_one_photon(n_frames=20, shape=(64, 64), n_neurons=4, nonrigid_px=2, seed=1)
    >>> rec.movie.shape, rec.truth.deformation.shape, rec.truth.background_spatial.ndim
    ((20, 64, 64), (20, 64, 64, 2), 3)
    """
    params = _parameters
    if params is None:
        params = {
            k: v for k, v in locals().items() if k not in ("progress", "should_stop", "_parameters")
        }
        params["modality"] = "one_photon"
    checked = _check_sizes({**params, "motion_px": motion_px})
    extra = _check_one_photon(
        nonrigid_px,
        background_ratio,
        n_vessels,
        vessel_depth,
        vignetting,
        background_fluctuation,
        overlap,
        checked["shape"],
    )
    n_frames, shape, n_neurons = checked["n_frames"], checked["shape"], checked["n_neurons"]
    fs, motion_px, seed = checked["fs"], checked["motion_px"], checked["seed"]
    pixel_size_um, diameter_px = checked["pixel_size_um"], checked["diameter_px"]
    tau_rise, tau_decay, preset = checked["tau_rise"], checked["tau_decay"], checked["preset"]
    amp, gain, bit_depth = checked["amp"], checked["gain"], checked["bit_depth"]
    rate_lo, rate_hi = checked["rates"]
    f0_lo, f0_hi = checked["f0"]
    nonrigid = extra["nonrigid_px"]

    # --- canvas with a margin for motion
    total_motion = motion_px + nonrigid
    pad = math.ceil(total_motion) + 16 if total_motion > 0 else 0
    canvas = (shape[0] + 2 * pad, shape[1] + 2 * pad)
    if canvas[0] * canvas[1] > MAX_CANVAS_PIXELS:
        raise ParameterError(
            f"nonrigid_px={nonrigid_px!r} with motion_px={motion_px:g} is too large for a "
            f"{shape[0]} x {shape[1]} px frame: the frame plus its motion margin may have at "
            f"most {MAX_CANVAS_PIXELS:,} pixels"
        )
    origin = (-pad, -pad)
    visible = (pad, pad + shape[0], pad, pad + shape[1])

    # --- cells
    rng_cells = rng_for(seed, STREAM_CELLS)
    weights, centers = _soft_somata(
        rng_cells,
        n_neurons,
        canvas_shape=canvas,
        visible=visible,
        diameter_px=diameter_px,
        overlap=float(overlap),
    )
    f0 = np.exp(rng_cells.uniform(np.log(f0_lo), np.log(f0_hi), n_neurons))
    amps = amp * rng_cells.lognormal(-0.5 * 0.3**2, 0.3, n_neurons)
    gmap = _vignetting(canvas, origin, shape, float(vignetting))
    if n_neurons:
        cyx = np.clip(np.round(centers).astype(int), 0, np.array(canvas) - 1)
        f0 = f0 * gmap[cyx[:, 0], cyx[:, 1]]

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

    # --- background: out-of-focus haze (static + slow modes), vessels, vignetting, floor
    rng_bg = rng_for(seed, STREAM_NEUROPIL)
    level = extra["background_ratio"] * math.sqrt(f0_lo * f0_hi)
    haze_sigma = 5.0 * diameter_px
    haze = level * np.clip(1.0 + 0.35 * smooth_field(rng_bg, canvas, haze_sigma, origin), 0.3, None)
    vmap = _vessel_map(
        rng_for(seed, STREAM_VESSELS), canvas, origin, shape, int(n_vessels), float(vessel_depth)
    )
    shade = (vmap * gmap).astype(np.float32)
    modes = [haze]
    temporal = [np.ones(n_frames)]
    fluct = float(background_fluctuation) if neuropil else 0.0
    if fluct > 0:
        pop = calcium.mean(axis=0) if n_neurons else np.zeros(n_frames)
        pop = pop - pop.mean()
        if n_frames > 1:
            pop = ndimage.gaussian_filter1d(pop, 1.0 * fs)
        pop = pop / (pop.std() + 1e-12) if pop.std() > 0 else pop
        courses = [
            pop,
            _slow_signal(rng_bg, n_frames, 2.0 * fs),
            _slow_signal(rng_bg, n_frames, 5.0 * fs),
        ]
        for j, course in enumerate(courses):
            sigma = haze_sigma / (1.0 + 0.5 * j)
            shape_map = np.clip(1.0 + 0.5 * smooth_field(rng_bg, canvas, sigma, origin), 0.0, None)
            modes.append(fluct / math.sqrt(len(courses)) * haze * shape_map)
            temporal.append(np.clip(course, -3.0, 3.0))
    floor = background_photons * np.clip(
        1.0 + 0.3 * smooth_field(rng_bg, canvas, 2.0 * diameter_px, origin), 0.3, None
    )
    np_spatial = np.asarray(modes, np.float32) * shade[None]  # photons, canvas
    np_temporal = np.asarray(temporal, np.float32)
    floor = (floor * gmap).astype(np.float32)

    t = np.arange(n_frames)
    bleaching = (1.0 - bleach_fraction) ** (t / max(n_frames - 1, 1))

    # --- motion: rigid shifts + smooth non-rigid field
    shifts = make_motion(rng_for(seed, STREAM_MOTION), n_frames, fs, motion_px)
    def_modes = def_weights = None
    if nonrigid > 0:
        def_modes, def_weights = _deformation_factors(
            rng_for(seed, STREAM_DEFORMATION), shape, n_frames, fs, nonrigid
        )

    renderer = _OnePhotonRenderer(
        seed=seed,
        shape=shape,
        pad=pad,
        weights=weights,
        f0=f0,
        calcium=calcium,
        bg_spatial=np.concatenate([np_spatial, floor[None]]),
        bg_temporal=np.concatenate([np_temporal, np.ones((1, n_frames), np.float32)]),
        bleaching=bleaching,
        shifts=shifts,
        def_modes=def_modes,
        def_weights=def_weights,
        noise=noise,
        offset_adu=offset_adu,
        adu_per_photon=gain,
        read_noise_adu=read_noise_adu,
        max_adu=2 ** int(bit_depth) - 1,
    )
    movie = make_movie(
        renderer, n_frames, shape, params, lazy, progress, should_stop,
        lazy_threshold_bytes=LAZY_THRESHOLD_BYTES,
    )  # fmt: skip

    # --- truth in visible coordinates and ADU
    deformation = None
    if def_modes is not None:
        deformation = deformation_field(
            shifts, def_modes, def_weights, eager=isinstance(movie, np.ndarray)
        )
    crop = (slice(visible[0], visible[1]), slice(visible[2], visible[3]))
    vis_weights = _crop_weights(weights, canvas, visible)
    wsum = np.asarray(vis_weights.sum(axis=1)).ravel()
    wsum[wsum == 0] = 1.0
    bg_spatial_vis = (np_spatial[:, crop[0], crop[1]] * gain).astype(np.float32)
    floor_vis = (floor[crop] * gain).astype(np.float32)
    at_cells = vis_weights @ bg_spatial_vis.reshape(len(bg_spatial_vis), -1).T  # (n, k)
    neuropil_at_cells = (at_cells @ np_temporal) / wsum[:, None] * bleaching[None, :]
    truth = OnePhotonGroundTruth(
        labels=labels_from_weights(vis_weights, shape),
        footprints_sparse=vis_weights,
        spikes=spikes,
        spike_times_s=spike_times,
        calcium=calcium.astype(np.float32),
        baseline_f0=(f0 * gain).astype(np.float32),
        dff_per_spike=amps.astype(np.float32),
        firing_rate_hz=rates,
        centers_px=centers - pad,
        neuropil=neuropil_at_cells.astype(np.float32),
        contamination=np.ones(n_neurons),
        neuropil_coefficient=1.0,
        neuropil_spatial=bg_spatial_vis,
        neuropil_temporal=np_temporal,
        background=floor_vis,
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
        modality="one_photon",
        background_spatial=np.concatenate([bg_spatial_vis, floor_vis[None]]),
        background_temporal=(
            np.concatenate([np_temporal, np.ones((1, n_frames), np.float32)])
            * bleaching[None, :].astype(np.float32)
        ),
        vignetting=gmap[crop].copy(),
        vessels=vmap[crop].astype(np.float32),
        deformation=deformation,
        deformation_modes=def_modes,
        deformation_weights=def_weights,
        nonrigid_px=nonrigid,
    )
    metadata = {
        "source_format": "napari-calcium synthetic",
        "modality": "one_photon",
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

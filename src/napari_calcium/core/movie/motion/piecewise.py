"""Piecewise-rigid motion correction (NoRMCorre): per-patch shifts, a smooth dense shift field.

The non-rigid half of :func:`~napari_calcium.core.movie.motion.rigid.motion_correct`
(``piecewise=True``), after Pnevmatikakis & Giovannucci (2017) [1]_, written once for numpy and
cupy:

- :func:`patch_grid` / :class:`PatchGrid`: overlapping square-ish patches tiling the frame
  (size and overlap in pixels, or in µm with the pixel size: :func:`resolve_patch_px`);
- :class:`PatchEstimator`: each frame's patches registered to the template's same patches by
  phase correlation (the rigid path's whitening, smoothing and subpixel refinement,
  :mod:`.phase_correlation`), each patch's window offset by the frame's whole-pixel rigid shift
  and its shift kept within ``max_deviation_px`` of the rigid one; patches whose correlation peak
  is low are outliers, replaced by the median of their neighbours (:func:`replace_outliers`);
- :func:`estimate_patch_shifts`: that, block by block over the movie, and
  :func:`estimate_rigid_and_patch_shifts`: the rigid and patch shifts in one pass (what
  ``motion_correct`` uses), with :func:`recentre_patch_shifts` for a moved template;
- the dense shift field and the warp of the frames by it are in :mod:`.warp`
  (:func:`~.warp.apply_patch_shifts`, :func:`~.warp.dense_shift_field`), re-exported here.

Sign convention (the rigid one, per pixel): a patch shift ``(dy, dx)`` is the displacement of the
frame's content relative to the template near the patch centre, and the correction samples
``corrected[t, y, x] = movie[t, y + dy(y, x), x + dx(y, x)]``.

References
----------
.. [1] E. A. Pnevmatikakis and A. Giovannucci, "NoRMCorre: An online algorithm for piecewise
   rigid motion correction of calcium imaging data", J. Neurosci. Methods 291, 83-94 (2017).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ....errors import ParameterError
from ..._backend import array_module, fft_module, ndimage_module, to_host
from ..._threads import in_threads
from ...chunking import iter_frame_blocks
from .phase_correlation import (
    _fft_kwargs,
    _gaussian_weights,
    _half_spectrum_weights,
    _refine_subpixel,
    _whiten,
    int_at_least,
    number,
)
from .warp import PIECEWISE_INTERPOLATIONS, apply_patch_shifts, dense_shift_field

__all__ = [
    "PIECEWISE_INTERPOLATIONS",
    "PatchEstimate",
    "PatchEstimator",
    "PatchGrid",
    "apply_patch_shifts",
    "dense_shift_field",
    "estimate_patch_shifts",
    "estimate_rigid_and_patch_shifts",
    "patch_grid",
    "resolve_patch_px",
]

#: Memory budget (bytes) of the patch spectra of one estimation batch.
_PATCH_BUDGET_BYTES = 48 * 2**20
#: Relative floor of the outlier test: a patch whose correlation peak is below this share of its
#: frame's median patch peak is replaced (see :func:`replace_outliers`).
DEFAULT_OUTLIER_RATIO = 0.5


# --------------------------------------------------------------------------------------------------
# The patch grid
# --------------------------------------------------------------------------------------------------
def _pair(value: Any, name: str) -> tuple[Any, Any]:
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ParameterError(f"{name} must be a number or a (y, x) pair, got {value!r}")
        return value[0], value[1]
    return value, value


def resolve_patch_px(
    shape: tuple[int, int],
    *,
    patch_px: int | tuple[int, int] = 128,
    overlap_px: int | tuple[int, int] = 32,
    patch_um: float | tuple[float, float] | None = None,
    overlap_um: float | tuple[float, float] | None = None,
    pixel_size_um: float | tuple[float, float] | None = None,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Patch size and overlap in whole pixels (y, x), checked against the frame.

    Parameters
    ----------
    shape : (int, int)
        Frame shape (y, x) in pixels.
    patch_px, overlap_px : int or (int, int), optional
        Patch side and the overlap of neighbouring patches, in pixels (CaImAn's
        ``strides + overlaps`` and ``overlaps``).
    patch_um, overlap_um : float or (float, float), optional
        The same in µm; when given they replace `patch_px` / `overlap_px` (rounded to whole
        pixels) and need `pixel_size_um`.
    pixel_size_um : float or (float, float), optional
        Pixel size (y, x) in µm.

    Returns
    -------
    patch, overlap : (int, int), (int, int)

    Raises
    ------
    ParameterError
        For a negative or non-integer size, an overlap not smaller than the patch, a patch larger
        than the frame or smaller than 8 px, or µm without a pixel size.
    """
    if (patch_um is not None or overlap_um is not None) and pixel_size_um is None:
        raise ParameterError(
            "patch_um / overlap_um need pixel_size_um (µm per pixel) to convert them to pixels; "
            "give pixel_size_um or use patch_px / overlap_px"
        )
    size = None
    if pixel_size_um is not None:
        size = tuple(number(v, "pixel_size_um", 0.0, open_lo=True)
                     for v in _pair(pixel_size_um, "pixel_size_um"))  # fmt: skip
    values = {}
    for name, px, um in (("patch", patch_px, patch_um), ("overlap", overlap_px, overlap_um)):
        if um is not None:
            pair = _pair(um, f"{name}_um")
            px = tuple(
                round(number(v, f"{name}_um", 0.0) / s) for v, s in zip(pair, size, strict=True)
            )
            label = f"{name}_um={um!r} (= {px} px)"
        else:
            label = f"{name}_px={px!r}"
        pair = _pair(px, f"{name}_px")
        values[name] = tuple(int_at_least(v, f"{name}_px", 0) for v in pair), label
    (patch, patch_label), (overlap, overlap_label) = values["patch"], values["overlap"]
    for axis, p, o, n in zip("yx", patch, overlap, shape, strict=True):
        if p < 8:
            raise ParameterError(f"{patch_label}: patches must be at least 8 px along {axis}")
        if p > n:
            raise ParameterError(
                f"{patch_label} is larger than the frame ({n} px along {axis}); use a patch of at "
                f"most {n} px, or rigid correction (piecewise=False)"
            )
        if o >= p:
            raise ParameterError(
                f"{overlap_label} must be smaller than the patch ({patch_label}) along {axis}"
            )
    return (patch[0], patch[1]), (overlap[0], overlap[1])


@dataclass(frozen=True)
class PatchGrid:
    """Overlapping patches tiling a frame.

    Attributes
    ----------
    shape : (int, int)
        Frame shape (y, x) in pixels.
    patch : (int, int)
        Patch shape (y, x) in pixels.
    starts_y, starts_x : numpy.ndarray of int
        First row / column of each patch row / column; the first is 0, the last ends at the frame
        edge, and the stride between them is nearly even and at most ``patch - overlap``.
    """

    shape: tuple[int, int]
    patch: tuple[int, int]
    starts_y: np.ndarray
    starts_x: np.ndarray

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(n_py, n_px): patches along y and x."""
        return len(self.starts_y), len(self.starts_x)

    @property
    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Patch centres (rows (n_py,), columns (n_px,)) in pixels, float64."""
        return (self.starts_y + (self.patch[0] - 1) / 2.0,
                self.starts_x + (self.patch[1] - 1) / 2.0)  # fmt: skip


def _starts(n: int, patch: int, overlap: int) -> np.ndarray:
    stride = patch - overlap
    count = math.ceil((n - patch) / stride) + 1 if n > patch else 1
    return np.round(np.linspace(0, n - patch, count)).astype(np.int64)


def patch_grid(
    shape: tuple[int, int], patch: tuple[int, int], overlap: tuple[int, int]
) -> PatchGrid:
    """The patches of `patch` px overlapping by at least `overlap` px tiling a frame of `shape`.

    Examples
    --------
    >>> g = patch_grid((256, 256), (64, 64), (32, 32))
    >>> g.grid_shape, g.starts_y[:3].tolist()
    ((7, 7), [0, 32, 64])
    """
    sy = _starts(int(shape[0]), patch[0], overlap[0])
    sx = _starts(int(shape[1]), patch[1], overlap[1])
    return PatchGrid((int(shape[0]), int(shape[1])), (int(patch[0]), int(patch[1])), sy, sx)


# --------------------------------------------------------------------------------------------------
# Estimation
# --------------------------------------------------------------------------------------------------
class PatchEstimate(NamedTuple):
    """Per-frame patch shifts measured by :class:`PatchEstimator`.

    Attributes
    ----------
    shifts : numpy.ndarray, shape (frames, n_py, n_px, 2), float64
        (dy, dx) in px of each patch relative to the template's same patch.
    peak_correlation : numpy.ndarray, shape (frames, n_py, n_px), float32
        Normalised correlation peak (<= 1) of each patch: low values flag unreliable patches.
    """

    shifts: np.ndarray
    peak_correlation: np.ndarray


def _patch_taper(xp: Any, patch: tuple[int, int]) -> Any:
    """Sigmoid edge taper of a patch, float32; slope about patch / 20 px (1 to 3.45 px)."""
    axes = []
    for n in patch:
        slope = min(3.45, max(1.0, n / 20.0))
        half = (n - 1) / 2.0
        d = np.abs(np.arange(n) - half) - half + 2 * slope
        axes.append(1.0 / (1.0 + np.exp(d / slope)))
    return xp.asarray(np.outer(axes[0], axes[1]).astype(np.float32))


@dataclass
class PatchEstimator:
    """Registers the patches of frame blocks to the template's patches.

    Built by :func:`make_patch_estimator`; :meth:`set_template` first, then call it on a block of
    frames with their rigid shifts.
    """

    xp: Any
    grid: PatchGrid
    max_deviation: float
    upsample_factor: int
    highpass_sigma_px: float | None
    smooth_sigma_px: float
    whitening: float
    outlier_ratio: float
    taper: Any = None
    ref_spec: Any = None
    ref_norm: Any = None

    @property
    def search(self) -> int:
        """Whole-pixel search half-width of the correlation window around the expected shift."""
        return math.ceil(self.max_deviation) + 1

    def _prepare_full(self, block: Any) -> Any:
        xp = self.xp
        x = xp.asarray(block, dtype=xp.float32)
        x = x.copy() if x is block else x
        if block.dtype.kind == "f" and bool(xp.isnan(x).any()):
            x = xp.where(xp.isnan(x), xp.nanmean(x, axis=(1, 2), keepdims=True), x)
        if self.highpass_sigma_px:
            ndi = ndimage_module(xp)
            sigma = (0.0, self.highpass_sigma_px, self.highpass_sigma_px)
            x -= ndi.gaussian_filter(x, sigma, mode="reflect")
        return x

    def _patches(self, prepared: Any, offsets: np.ndarray, use_numba: bool = True) -> Any:
        """Patches ``(n, n_patches, py, px)`` at the grid's starts + `offsets` (n, n_patches, 2)."""
        xp = self.xp
        py, px = self.grid.patch
        if xp is np and use_numba:
            native = np.dtype(prepared.dtype) in (np.dtype(np.uint16), np.dtype(np.float32))
            frames = np.ascontiguousarray(prepared, dtype=None if native else np.float32)
            offs = np.ascontiguousarray(
                np.broadcast_to(offsets, (len(frames), *offsets.shape[1:])), dtype=np.int64
            )
            out = np.empty((len(frames), offs.shape[1], py, px), np.float32)
            if len(frames):
                args = (frames, offs, self.taper, out)
                in_threads(_extract_kernel(), args, len(frames), "napari-calcium-patches")
            return out
        rows = offsets[..., 0, None] + np.arange(py)  # (n, p, py)
        cols = offsets[..., 1, None] + np.arange(px)
        frames = np.arange(prepared.shape[0])[:, None, None, None]
        out = prepared[xp.asarray(frames), xp.asarray(rows[..., :, None]),
                       xp.asarray(cols[..., None, :])]  # fmt: skip
        out = out - out.mean(axis=(2, 3), keepdims=True)
        out *= self.taper
        return out

    def _starts(self) -> np.ndarray:
        gy, gx = np.meshgrid(self.grid.starts_y, self.grid.starts_x, indexing="ij")
        return np.stack([gy.ravel(), gx.ravel()], axis=1)  # (n_patches, 2)

    def set_template(self, template: Any) -> None:
        xp = self.xp
        fft = fft_module(xp)
        prepared = self._prepare_full(xp.asarray(template, dtype=xp.float32)[None])
        patches = self._patches(prepared, self._starts()[None])[0]  # (p, py, px)
        spec, _ = _whiten(fft.rfft2(patches, **_fft_kwargs(xp)), xp, self.whitening)
        spec = xp.conj(spec)
        spec *= _gaussian_weights(xp, self.grid.patch, self.smooth_sigma_px)
        spec[:, 0, 0] = 0
        self.ref_spec = spec.astype(xp.complex64, copy=False)
        weight = xp.asarray(_half_spectrum_weights(self.grid.patch[1]).astype(np.float32))
        self.ref_norm = xp.sqrt((xp.abs(self.ref_spec) ** 2 * weight).sum(axis=(1, 2)))

    def _cross_power(self, spec: Any) -> tuple[Any, Any]:
        """Whitened patch spectra times the template's, in place, and their norms.

        `spec` is ``(n * n_patches, py, px // 2 + 1)`` complex64, frame-major. Returns it as the
        cross-power spectrum and the norm (n * n_patches,) float32 of each whitened spectrum
        (for the normalised peak). (A fused numba kernel was no faster than these array
        expressions on 2 cores.)
        """
        xp = self.xp
        weight = _half_spectrum_weights(self.grid.patch[1]).astype(np.float32)
        cross, power = _whiten(spec, xp, self.whitening)
        power *= power
        power *= xp.asarray(weight)
        norm = xp.sqrt(power.sum(axis=(1, 2)))
        del power
        n_patches = int(self.ref_spec.shape[0])
        cross = cross.reshape(-1, n_patches, *cross.shape[1:])
        cross *= self.ref_spec
        return cross.reshape(-1, *cross.shape[2:]), norm

    def batch_frames(self) -> int:
        """Frames per internal batch: keeps the patch spectra within a fixed memory budget."""
        py, px = self.grid.patch
        per_frame = len(self._starts()) * py * (px // 2 + 1) * 8 * 3
        return max(1, _PATCH_BUDGET_BYTES // per_frame)

    def __call__(self, block: Any, rigid: np.ndarray) -> PatchEstimate:
        """Patch shifts ``(n, n_py, n_px, 2)`` and peaks ``(n, n_py, n_px)`` of a block of frames.

        `rigid` is the block's rigid shifts (n, 2) in px, relative to the same template.
        """
        rigid = np.asarray(rigid, dtype=np.float64).reshape(-1, 2)
        n = int(block.shape[0])
        gy, gx = self.grid.grid_shape
        shifts = np.zeros((n, gy, gx, 2))
        peaks = np.zeros((n, gy, gx), np.float32)
        step = self.batch_frames()
        for a in range(0, n, step):
            b = min(n, a + step)
            s, p = self._estimate(block[a:b], rigid[a:b])
            shifts[a:b], peaks[a:b] = s.reshape(b - a, gy, gx, 2), p.reshape(b - a, gy, gx)
        if self.outlier_ratio > 0 and n:
            shifts = replace_outliers(shifts, peaks, rigid, ratio=self.outlier_ratio)
        return PatchEstimate(shifts, peaks)

    def _estimate(self, block: Any, rigid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xp = self.xp
        fft = fft_module(xp)
        kwargs = _fft_kwargs(xp)
        n = int(block.shape[0])
        py, px = self.grid.patch
        ny, nx = self.grid.shape
        starts = self._starts()  # (p, 2)
        n_patches = len(starts)
        # each frame's patch windows follow its whole-pixel rigid shift, inside the frame
        whole = np.round(rigid).astype(np.int64)  # (n, 2)
        limit = np.array([ny - py, nx - px])
        offsets = np.clip(starts[None] + whole[:, None], 0, limit)  # (n, p, 2)
        moved = offsets - starts[None]  # window displacement actually used
        if self.highpass_sigma_px or (block.dtype.kind == "f" and bool(xp.isnan(block).any())):
            block = self._prepare_full(block)
        patches = self._patches(block, offsets)
        spec = fft.rfft2(patches.reshape(n * n_patches, py, px), **kwargs)
        del patches
        cross, frame_norm = self._cross_power(spec)
        # the correlation near the expected residual (rigid - window displacement)
        expected = np.round(rigid[:, None, :] - moved).reshape(-1, 2).astype(np.int64)
        m = self.search
        span = np.arange(-m, m + 1)
        near_y = (expected[:, 0, None] + span) % py  # (N, 2m+1)
        near_x = (expected[:, 1, None] + span) % px
        rows = xp.take_along_axis(
            fft.ifft(cross, axis=1, **kwargs), xp.asarray(near_y)[:, :, None], axis=1
        )
        corr = fft.irfft(rows, n=px, axis=2, **kwargs)
        window = xp.take_along_axis(corr, xp.asarray(near_x)[:, None, :], axis=2)
        window = window.reshape(n * n_patches, -1)
        best = xp.argmax(window, axis=1)
        peak = xp.take_along_axis(window, best[:, None], axis=1)[:, 0]
        ref_norm = xp.tile(self.ref_norm, n)
        peak = peak * (py * px) / xp.maximum(frame_norm * ref_norm, 1e-30)
        iy, ix = np.divmod(to_host(best), 2 * m + 1)
        centre = (expected + np.stack([iy - m, ix - m], axis=1)).astype(np.float64)
        if self.upsample_factor > 1 and len(centre):
            centre = _refine_subpixel(xp, cross, (py, px), centre, self.upsample_factor)
        total = centre.reshape(n, n_patches, 2) + moved
        lo = rigid[:, None, :] - self.max_deviation
        hi = rigid[:, None, :] + self.max_deviation
        return np.clip(total, lo, hi), to_host(peak).astype(np.float32)


def replace_outliers(
    shifts: np.ndarray, peaks: np.ndarray, rigid: np.ndarray, *, ratio: float
) -> np.ndarray:
    """Replace the shifts of patches with a low correlation peak by their neighbours' median.

    A patch is an outlier when its peak is below ``ratio`` times the median peak of its frame's
    patches (a patch without texture, or covered by an artefact). Its shift becomes the median of
    the shifts of the non-outlier patches among its 8 neighbours, or the frame's rigid shift when
    none is left.

    Parameters
    ----------
    shifts : ndarray, shape (frames, n_py, n_px, 2)
    peaks : ndarray, shape (frames, n_py, n_px)
    rigid : ndarray, shape (frames, 2)
    ratio : float

    Returns
    -------
    ndarray, shape (frames, n_py, n_px, 2), float64
        A copy with the outliers replaced.
    """
    shifts = np.array(shifts, dtype=np.float64)
    n, gy, gx = peaks.shape
    flat = peaks.reshape(n, -1).astype(np.float64)
    bad = flat < ratio * np.median(flat, axis=1, keepdims=True)
    bad = bad.reshape(n, gy, gx)
    if not bad.any():
        return shifts
    original = shifts.copy()
    for i, j in zip(*np.nonzero(bad.any(axis=0)), strict=True):
        frames = np.flatnonzero(bad[:, i, j])
        i0, i1, j0, j1 = max(0, i - 1), min(gy, i + 2), max(0, j - 1), min(gx, j + 2)
        good = ~bad[frames, i0:i1, j0:j1].reshape(len(frames), -1)  # (f, k)
        values = original[frames, i0:i1, j0:j1].reshape(len(frames), -1, 2)
        masked = np.where(good[..., None], values, np.nan)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(masked, axis=1)  # (f, 2)
        none = ~good.any(axis=1)
        median[none] = rigid[frames[none]]
        shifts[frames, i, j] = median
    return shifts


def make_patch_estimator(
    movie: Any,
    grid: PatchGrid,
    *,
    max_deviation_px: float,
    upsample_factor: int,
    highpass_sigma_px: float | None,
    smooth_sigma_px: float,
    whitening: float,
    outlier_ratio: float = DEFAULT_OUTLIER_RATIO,
) -> PatchEstimator:
    """A :class:`PatchEstimator` with its options checked (ParameterError names the bad one)."""
    xp = array_module(movie)
    max_dev = number(max_deviation_px, "max_deviation_px", 0.0)
    if 2 * (math.ceil(max_dev) + 1) + 1 > min(grid.patch):
        raise ParameterError(
            f"max_deviation_px={max_deviation_px!r} is too large for patches of {grid.patch} px; "
            f"it must be below about a third of the patch"
        )
    return PatchEstimator(
        xp,
        grid,
        max_deviation=max_dev,
        upsample_factor=int_at_least(upsample_factor, "upsample_factor", 1),
        highpass_sigma_px=None
        if highpass_sigma_px is None
        else number(highpass_sigma_px, "highpass_sigma_px", 0.0, open_lo=True),
        smooth_sigma_px=number(smooth_sigma_px, "smooth_sigma_px", 0.0),
        whitening=number(whitening, "whitening", 0.0, 1.0),
        outlier_ratio=number(outlier_ratio, "patch_outlier_ratio", 0.0, 1.0),
        taper=_patch_taper(xp, grid.patch),
    )


def estimate_patch_shifts(
    movie: Any,
    template: Any,
    rigid_shifts: Any,
    estimator: PatchEstimator,
    *,
    block_frames: int | None = None,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PatchEstimate:
    """Each frame's patch shifts, block by block (frames are independent given the template).

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask or cupy.
    template : array, shape (y, x)
        The reference the rigid shifts were measured against, on the estimator's array module.
    rigid_shifts : ndarray, shape (frames, 2)
        Rigid (dy, dx) in px of each frame relative to `template`.
    estimator : PatchEstimator
        From :func:`make_patch_estimator`.
    block_frames, progress, should_stop : optional
        As in :func:`~napari_calcium.core.movie.motion.rigid.estimate_shifts`.

    Returns
    -------
    PatchEstimate
        ``shifts`` (frames, n_py, n_px, 2) float64 px and ``peak_correlation``
        (frames, n_py, n_px) float32.
    """
    rigid_shifts = np.asarray(rigid_shifts, dtype=np.float64)
    estimator.set_template(template)
    n = int(movie.shape[0])
    gy, gx = estimator.grid.grid_shape
    shifts = np.zeros((n, gy, gx, 2))
    peaks = np.zeros((n, gy, gx), np.float32)
    blocks = iter_frame_blocks(
        movie,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc="motion correction: estimating patch shifts",
    )
    for block, array in blocks:
        shifts[block.frames], peaks[block.frames] = estimator(array, rigid_shifts[block.frames])
    return PatchEstimate(shifts, peaks)


def estimate_rigid_and_patch_shifts(
    movie: Any,
    rigid_estimator: Callable[[Any], tuple[np.ndarray, np.ndarray]],
    estimator: PatchEstimator,
    *,
    block_frames: int | None = None,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray, PatchEstimate]:
    """Rigid and patch shifts of each frame in one pass over the movie (one read of each block).

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
    rigid_estimator : callable
        Block -> (shifts (n, 2), peaks (n,)), e.g. the rigid
        :class:`~napari_calcium.core.movie.motion.phase_correlation.Estimator`, its template set.
    estimator : PatchEstimator
        Its template set (:meth:`PatchEstimator.set_template`) to the same template.
    block_frames, progress, should_stop : optional
        As in :func:`estimate_patch_shifts`.

    Returns
    -------
    shifts : ndarray, shape (frames, 2), float64
    peak_correlation : ndarray, shape (frames,), float32
    patches : PatchEstimate
    """
    n = int(movie.shape[0])
    gy, gx = estimator.grid.grid_shape
    shifts = np.zeros((n, 2))
    peaks = np.zeros(n, np.float32)
    patch_shifts = np.zeros((n, gy, gx, 2))
    patch_peaks = np.zeros((n, gy, gx), np.float32)
    blocks = iter_frame_blocks(
        movie,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc="motion correction: estimating shifts (rigid and patches)",
    )
    for block, array in blocks:
        shifts[block.frames], peaks[block.frames] = rigid_estimator(array)
        patch_shifts[block.frames], patch_peaks[block.frames] = estimator(
            array, shifts[block.frames]
        )
    return shifts, peaks, PatchEstimate(patch_shifts, patch_peaks)


def recentre_patch_shifts(
    patches: PatchEstimate, median: np.ndarray, rigid: np.ndarray, max_deviation: float
) -> PatchEstimate:
    """Patch shifts referred to a template moved by `median` (as the rigid shifts were).

    ``patch_shifts - median``, kept within `max_deviation` of the recentred rigid shifts
    `rigid` (frames, 2).
    """
    moved = patches.shifts - np.asarray(median, dtype=np.float64)
    lo = rigid[:, None, None, :] - max_deviation
    hi = rigid[:, None, None, :] + max_deviation
    return PatchEstimate(np.clip(moved, lo, hi), patches.peak_correlation)


# --------------------------------------------------------------------------------------------------
# Patch extraction (numba)
# --------------------------------------------------------------------------------------------------
@functools.cache
def _extract_kernel() -> Any:
    """numba CPU kernel: patches at per-frame offsets, made mean-free and tapered (float32).

    Its array twin is the fancy-indexing branch of :meth:`PatchEstimator._patches`.
    """
    import numba

    @numba.njit(cache=True, nogil=True)
    def kernel(frames, offsets, taper, out, start, stop):  # pragma: no cover - compiled
        n_patches, py, px = out.shape[1], out.shape[2], out.shape[3]
        for f in range(start, stop):
            for q in range(n_patches):
                oy, ox = offsets[f, q, 0], offsets[f, q, 1]
                total = 0.0
                for i in range(py):
                    for j in range(px):
                        total += np.float32(frames[f, oy + i, ox + j])
                mean = np.float32(total / (py * px))
                for i in range(py):
                    for j in range(px):
                        out[f, q, i, j] = (np.float32(frames[f, oy + i, ox + j]) - mean) * taper[
                            i, j
                        ]

    return kernel

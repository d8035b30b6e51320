"""Rigid motion correction: phase correlation with subpixel refinement, chunked, numpy or cupy.

``piecewise=True`` adds the non-rigid pass of :mod:`.piecewise` (NoRMCorre) after the rigid one.

:func:`motion_correct` builds a template (:func:`build_template`), measures each frame's
displacement from it (:func:`estimate_shifts`) and removes it (:func:`apply_shifts`). Each piece
walks the movie in blocks of frames, so a recording larger than memory streams through; a dask
movie gives a lazy corrected movie.

Sign convention (the synthetic generator's, :attr:`GroundTruth.shifts`): ``shifts[t] = (dy, dx)``
is the displacement of frame ``t``'s content relative to the template,
``movie[t, y, x] ≈ template(y - dy, x - dx)``. Correcting samples
``corrected[t, y, x] = movie[t, y + dy, x + dx]``. With a template it builds itself,
:func:`motion_correct` refers the shifts to the recording's median position.

This module holds the rigid driver (:func:`motion_correct`, :func:`estimate_shifts` and their
results) and re-exports the public pieces it calls: :func:`build_template`
(:mod:`.template`), :func:`apply_shifts` and :func:`recentre_shifts` (:mod:`.shifting`); the
shifts are measured by :mod:`.phase_correlation`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ....errors import ShapeError
from ..._backend import array_module, is_dask_array, to_host
from ...chunking import iter_frame_blocks
from .phase_correlation import int_at_least, make_estimator
from .piecewise import (
    DEFAULT_OUTLIER_RATIO,
    estimate_rigid_and_patch_shifts,
    make_patch_estimator,
    patch_grid,
    recentre_patch_shifts,
    resolve_patch_px,
)
from .shifting import (
    BORDERS,
    INTERPOLATIONS,
    _check_dtype,
    _check_movie,
    _choice,
    apply_shifts,
    recentre_shifts,
    valid_box,
)
from .template import build_template, template_from_movie
from .warp import PIECEWISE_INTERPOLATIONS, apply_patch_shifts, dense_shift_field, patch_valid_box

__all__ = [
    "MotionCorrectionResult",
    "ShiftEstimate",
    "apply_shifts",
    "build_template",
    "estimate_shifts",
    "motion_correct",
    "recentre_shifts",
]


class ShiftEstimate(NamedTuple):
    """Per-frame displacements measured by :func:`estimate_shifts`.

    Attributes
    ----------
    shifts : numpy.ndarray, shape (frames, 2), float64
        Displacement (dy, dx) in pixels of each frame relative to the template (see the module
        docstring for the sign convention).
    peak_correlation : numpy.ndarray, shape (frames,), float32
        Normalised correlation (<= 1) of the whitened, smoothed frame with the template at the
        peak: low values flag frames whose shift is unreliable.
    """

    shifts: np.ndarray
    peak_correlation: np.ndarray


@dataclass(frozen=True, eq=False)
class MotionCorrectionResult:
    """Result of :func:`motion_correct`.

    Attributes
    ----------
    movie : array, shape (frames, y, x) or cropped
        The corrected movie, on the input's array module (a lazy dask array for dask input).
    shifts : numpy.ndarray, shape (frames, 2), float64
        Displacement (dy, dx) in pixels of each frame relative to `template`; the correction
        moved each frame by ``-shifts[t]``.
    template : array, shape (y, x), float32
        The reference image the frames were registered to.
    peak_correlation : numpy.ndarray, shape (frames,), float32
        See :class:`ShiftEstimate`.
    valid_box : tuple of int
        ``(y0, y1, x0, x1)``: the region of the uncropped corrected frames that holds data in
        every frame (what ``border="crop"`` keeps).
    parameters : dict
        The options used (max shift, upsampling, interpolation, ...), for provenance.
    patch_shifts : numpy.ndarray, shape (frames, n_py, n_px, 2), float64, or None
        Piecewise-rigid correction only (``piecewise=True``): (dy, dx) in px of each patch of each
        frame relative to the template's same patch; `shifts` stays the rigid pass's.
    patch_centres : (numpy.ndarray (n_py,), numpy.ndarray (n_px,)) or None
        Piecewise only: the patch centres (rows, columns) in px of the uncropped frame.
    patch_peak_correlation : numpy.ndarray, shape (frames, n_py, n_px), float32, or None
        Piecewise only: each patch's normalised correlation peak (low: replaced as an outlier).
    """

    movie: Any
    shifts: np.ndarray
    template: Any
    peak_correlation: np.ndarray
    valid_box: tuple[int, int, int, int]
    parameters: dict = field(default_factory=dict)
    patch_shifts: np.ndarray | None = None
    patch_centres: tuple[np.ndarray, np.ndarray] | None = None
    patch_peak_correlation: np.ndarray | None = None

    @property
    def piecewise(self) -> bool:
        """Whether the correction was piecewise-rigid (the result has patch shifts)."""
        return self.patch_shifts is not None

    def shift_field(self, frame: int) -> np.ndarray:
        """The displacement removed from one frame at every pixel.

        Parameters
        ----------
        frame : int
            Frame index.

        Returns
        -------
        numpy.ndarray, shape (2, y, x), float64
            (dy, dx) in px at each pixel of the uncropped frame: the rigid shift everywhere, or
            the patch shifts interpolated as the piecewise correction did
            (:func:`~napari_calcium.core.movie.motion.warp.dense_shift_field`).
        """
        shape = tuple(int(s) for s in np.shape(self.template))
        if self.patch_shifts is None:
            rigid = self.shifts[frame]
            return np.broadcast_to(rigid[:, None, None], (2, *shape)).astype(np.float64)
        return dense_shift_field(self.patch_shifts[frame], self.patch_centres, shape)

    def apply(self, movie: Any, **options: Any) -> Any:
        """Correct another movie of the same recording (e.g. a second channel) the same way.

        Parameters
        ----------
        movie : array_like, shape (frames, y, x)
            Same number and shape of frames as the corrected movie.
        **options
            ``interpolation``, ``border``, ``dtype``, ``block_frames``, ``progress``,
            ``should_stop``; interpolation and border default to those used here.

        Returns
        -------
        array
            As :func:`apply_shifts` (rigid) or
            :func:`~napari_calcium.core.movie.motion.warp.apply_patch_shifts` (piecewise).
        """
        options.setdefault("interpolation", self.parameters.get("interpolation", "cubic"))
        options.setdefault("border", self.parameters.get("border", "nan"))
        if self.patch_shifts is None:
            return apply_shifts(movie, self.shifts, **options)
        return apply_patch_shifts(movie, self.patch_shifts, self.patch_centres, **options)


def _as_template(template: Any, movie: Any, xp: Any) -> Any:
    if is_dask_array(template):
        template = template.compute()
    shape = tuple(getattr(template, "shape", np.shape(template)))
    if shape != tuple(movie.shape[1:]):
        raise ShapeError(
            f"template has shape {shape}; it must be one frame of the movie, "
            f"{tuple(movie.shape[1:])}"
        )
    if array_module(template) is not xp:
        template = to_host(template)
    return xp.asarray(template, dtype=xp.float32)


def estimate_shifts(
    movie: Any,
    template: Any,
    *,
    max_shift_px: float | tuple[float, float] | None = None,
    upsample_factor: int = 10,
    highpass_sigma_px: float | None = None,
    smooth_sigma_px: float = 1.15,
    whitening: float = 1.0,
    block_frames: int | None = None,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ShiftEstimate:
    """Measure each frame's rigid displacement from a template by phase correlation.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy array, ``np.memmap``, dask array or cupy array; read a block of frames at a time.
    template : array_like, shape (y, x)
        Reference image in the movie's units (e.g. from :func:`build_template`).
    max_shift_px : float or (float, float), optional
        Largest displacement searched, in pixels, along both axes or as (y, x); whole pixels
        (the value is floored) and less than half the frame. The returned shifts never exceed
        it. Default: 10 % of the frame size along each axis.
    upsample_factor : int, optional
        Subpixel precision: the correlation peak is located on a grid of ``1 / upsample_factor``
        px by matrix DFTs, then refined by a parabola through the grid maximum and its
        neighbours. 1 gives whole-pixel shifts.
    highpass_sigma_px : float, optional
        Spatial high-pass before estimation, ``frame - gaussian_filter(frame, sigma)`` (the role
        of CaImAn's ``gSig_filt``): use it for one-photon / widefield data, where a bright smooth
        background (vignetting, out-of-focus light) that does not move with the tissue otherwise
        pins the estimate to zero. A value around the soma radius works; it affects estimation
        only, never the corrected pixels.
    smooth_sigma_px : float, optional
        Gaussian smoothing (px) of the phase correlation, applied in the Fourier domain, which
        damps the high spatial frequencies where noise dominates (suite2p's ``smooth_sigma``).
    whitening : float, optional
        Exponent ``p`` of the spectral normalisation ``F / (|F| + eps) ** p``: 1 is phase
        correlation (all frequencies weigh alike), 0 plain cross-correlation.
    block_frames : int, optional
        Frames per block; None picks it from a 64 MiB budget.
    progress : callable, True or None, optional
        tqdm-like factory (see :func:`~napari_calcium.core.chunking.iter_frame_blocks`).
    should_stop : callable, optional
        Polled before each block; returning True raises
        :class:`~napari_calcium.errors.OperationCancelled`.

    Returns
    -------
    ShiftEstimate
        ``shifts`` (frames, 2) float64 in pixels, (dy, dx), with
        ``movie[t, y, x] ≈ template(y - dy, x - dx)``, and ``peak_correlation`` (frames,).

    Raises
    ------
    ShapeError
        If the movie is not (frames, y, x) or the template is not one frame.
    ParameterError
        For an invalid option (the message names it).
    OperationCancelled
        When `should_stop` returns True.

    Notes
    -----
    Each frame and the template are made float32, high-passed if asked, made mean-free and
    tapered to zero at the edges (a sigmoid about 7 px wide), then Fourier transformed. The
    cross-power spectrum ``R = W(F) conj(W(T)) G`` (``W`` the whitening, ``G`` the Gaussian of
    `smooth_sigma_px`) is inverted only within ``±max_shift_px`` of zero; its maximum gives the
    whole-pixel shift. The upsampled DFT of Guizar-Sicairos et al. [1]_ then evaluates ``R``'s
    inverse on a ``1 / upsample_factor`` grid within ±0.75 px, separably: along y at the peak's
    x, then along x at the refined y (one matrix-vector product per frame and axis instead of a
    2-D grid; as accurate on the generator's movies, whose smoothed peaks are nearly
    isotropic). A frame displaced by ``s`` gives ``R ∝ exp(-2πi k·s)``, whose inverse peaks at
    ``+s``: hence the sign convention.
    Frames are independent given the template, so the result does not depend on `block_frames`.
    Rigid only; NoRMCorre [2]_ and suite2p [3]_ add piecewise-rigid registration.

    References
    ----------
    .. [1] M. Guizar-Sicairos, S. T. Thurman and J. R. Fienup, "Efficient subpixel image
       registration algorithms", Opt. Lett. 33, 156-158 (2008).
    .. [2] E. A. Pnevmatikakis and A. Giovannucci, "NoRMCorre: An online algorithm for piecewise
       rigid motion correction of calcium imaging data", J. Neurosci. Methods 291, 83-94 (2017).
    .. [3] M. Pachitariu et al., "Suite2p: beyond 10,000 neurons with standard two-photon
       microscopy", bioRxiv 061507 (2017).

    Examples
    --------
    >>> from napari_calcium.core.synthetic.recording import simulate_recording
    >>> rec = simulate_recording(n_frames=50, shape=(64, 64), n_neurons=8, motion_px=2, seed=0)
    >>> template = build_template(rec.movie, max_shift_px=4)
    >>> est = estimate_shifts(rec.movie, template, max_shift_px=4)
    >>> est.shifts.shape
    (50, 2)
    """
    movie = _check_movie(movie)
    est = make_estimator(
        movie,
        max_shift_px=max_shift_px,
        upsample_factor=upsample_factor,
        highpass_sigma_px=highpass_sigma_px,
        smooth_sigma_px=smooth_sigma_px,
        whitening=whitening,
    )
    est.set_template(_as_template(template, movie, est.xp))
    return _estimate(movie, est, block_frames, progress, should_stop)


def _estimate(movie, est, block_frames, progress, should_stop) -> ShiftEstimate:
    n = int(movie.shape[0])
    shifts = np.zeros((n, 2))
    peaks = np.zeros(n, np.float32)
    blocks = iter_frame_blocks(
        movie,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc="motion correction: estimating shifts",
    )
    for block, array in blocks:
        shifts[block.frames], peaks[block.frames] = est(array)
    return ShiftEstimate(shifts, peaks)


def motion_correct(
    movie: Any,
    *,
    max_shift_px: float | tuple[float, float] | None = None,
    template: Any = None,
    n_template_frames: int = 200,
    n_template_iterations: int = 3,
    upsample_factor: int = 10,
    highpass_sigma_px: float | None = None,
    smooth_sigma_px: float = 1.15,
    whitening: float = 1.0,
    interpolation: str = "cubic",
    border: str = "nan",
    dtype: Any = np.float32,
    block_frames: int | None = None,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    piecewise: bool = False,
    patch_px: int | tuple[int, int] = 128,
    overlap_px: int | tuple[int, int] = 32,
    patch_um: float | tuple[float, float] | None = None,
    overlap_um: float | tuple[float, float] | None = None,
    pixel_size_um: float | tuple[float, float] | None = None,
    max_deviation_px: float = 3.0,
    patch_outlier_ratio: float = DEFAULT_OUTLIER_RATIO,
) -> MotionCorrectionResult:
    """Rigid or piecewise-rigid motion correction: template, phase-correlation shifts, resampling.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy array, ``np.memmap``, dask array or cupy array (any real dtype).
    max_shift_px : float or (float, float), optional
        Largest displacement in pixels along both axes, or (y, x); shifts never exceed it.
        Default: 10 % of the frame size (suite2p's ``maxregshift``; CaImAn's ``max_shifts``).
    template : array_like, shape (y, x), optional
        Reference image; None builds one with :func:`build_template`.
    n_template_frames, n_template_iterations : int, optional
        Sample size and refinement rounds of the built template.
    upsample_factor : int, optional
        Subpixel precision 1 / `upsample_factor` px (refined further by a parabola); 1 gives whole
        pixels.
    highpass_sigma_px : float, optional
        Spatial high-pass (px) before estimation, for one-photon data (CaImAn's ``gSig_filt``);
        see :func:`estimate_shifts`.
    smooth_sigma_px, whitening : float, optional
        Phase-correlation smoothing and spectral whitening; see :func:`estimate_shifts`.
    interpolation : {"cubic", "linear", "fourier"}, optional
        How frames are shifted; see :func:`apply_shifts`.
    border : {"nan", "zero", "edge", "crop"}, optional
        What fills pixels shifted in from outside the frame (CaImAn's ``border_nan``: True is
        "nan", "copy" is "edge"); "crop" keeps the region valid in every frame.
    dtype : numpy dtype, optional
        dtype of the corrected movie (float32 by default).
    block_frames : int, optional
        Frames per block for estimation and application; None picks it from a 64 MiB budget.
    progress : callable, True or None, optional
        tqdm-like factory; one bar for the estimation pass, one for applying (eager output).
    should_stop : callable, optional
        Polled between blocks; returning True raises
        :class:`~napari_calcium.errors.OperationCancelled`.
    piecewise : bool, optional
        Piecewise-rigid correction (NoRMCorre [2]_): after the rigid pass, each frame's
        overlapping patches are registered to the template's same patches and the patch shifts,
        interpolated smoothly to every pixel, are removed (``interpolation`` "cubic" or "linear").
    patch_px, overlap_px : int or (int, int), optional
        Patch side and overlap of neighbouring patches in px (CaImAn's ``strides + overlaps``
        and ``overlaps``; the defaults are CaImAn's 96 + 32 and 32). Piecewise only.
    patch_um, overlap_um : float or (float, float), optional
        The same in µm (replace the px values; need `pixel_size_um`).
    pixel_size_um : float or (float, float), optional
        Pixel size in µm, for `patch_um` / `overlap_um`.
    max_deviation_px : float, optional
        Largest difference (px) of a patch shift from its frame's rigid shift (CaImAn's
        ``max_deviation_rigid``).
    patch_outlier_ratio : float, optional
        A patch whose correlation peak is below this share of its frame's median patch peak is
        an outlier, replaced by the median of its neighbours (0 keeps every patch).

    Returns
    -------
    MotionCorrectionResult
        ``movie`` (corrected; lazy dask for dask input, else the input's array module),
        ``shifts`` (frames, 2) float64 (dy, dx) in px, ``template``, ``peak_correlation``,
        ``valid_box``, ``parameters``; piecewise also ``patch_shifts``
        (frames, n_py, n_px, 2), ``patch_centres`` and ``patch_peak_correlation``, and
        ``result.shift_field(t)`` gives a frame's dense (2, y, x) field.

    Raises
    ------
    ShapeError
        If the movie is not (frames, y, x) or the template is not one frame.
    ParameterError
        For an invalid option (the message names it).
    OperationCancelled
        When `should_stop` returns True.

    Notes
    -----
    Sign convention: ``shifts[t] = (dy, dx)`` is frame ``t``'s displacement from the template,
    ``movie[t, y, x] ≈ template(y - dy, x - dx)``, and the correction samples
    ``movie[t, y + dy, x + dx]``: the convention of the synthetic generator's ``truth.shifts``.
    With a given `template` the shifts are relative to it. A built template is finally moved to
    the *median position of the recording*: ``median(shifts, axis=0) == 0`` (unless clipping at
    `max_shift_px` intervenes), so ``shifts ≈ truth.shifts - median(truth.shifts)`` with no other
    offset, and the returned `template` is that reference. For shifts relative to frame ``k``,
    subtract ``shifts[k]``.

    Passes over the data: one to read the template sample, one to estimate (both eager; a dask
    movie is computed block by block), and the application, which for dask input is lazy and
    recomputes the input when the result is computed. Estimation is phase correlation with
    Fourier-domain smoothing and upsampled-DFT subpixel refinement [1]_; the template is
    refined as in NoRMCorre [2]_ and suite2p [3]_.

    Piecewise-rigid (``piecewise=True``), after NoRMCorre [2]_: each block of frames is read
    once for both estimations, the rigid shift first; then each frame's patches, their windows
    moved by the frame's whole-pixel rigid shift, are phase-correlated with the template's same
    patches (the same whitening, smoothing and subpixel refinement) and each patch shift is kept
    within `max_deviation_px` of the rigid shift; low-peak patches are replaced by their
    neighbours' median. The grid of patch shifts is interpolated to every pixel by separable
    Keys cubic convolution in patch-index space (smooth; a field linear in the patch index is
    reproduced exactly), and the frame is resampled there (Keys cubic or bilinear, a numba
    kernel on the CPU). Frames are independent given the template, so any `block_frames` gives
    the same numbers, bit for bit. The template is the rigid one (not re-estimated piecewise);
    with a built template the patch shifts, like the rigid ones, are referred to the median
    rigid position. Passes over the data: template sample, estimation, application.

    References
    ----------
    .. [1] M. Guizar-Sicairos, S. T. Thurman and J. R. Fienup, "Efficient subpixel image
       registration algorithms", Opt. Lett. 33, 156-158 (2008).
    .. [2] E. A. Pnevmatikakis and A. Giovannucci, "NoRMCorre: An online algorithm for piecewise
       rigid motion correction of calcium imaging data", J. Neurosci. Methods 291, 83-94 (2017).
    .. [3] M. Pachitariu et al., "Suite2p: beyond 10,000 neurons with standard two-photon
       microscopy", bioRxiv 061507 (2017).

    Examples
    --------
    >>> from napari_calcium.core.synthetic.recording import simulate_recording
    >>> rec = simulate_recording(n_frames=60, shape=(64, 64), n_neurons=8, motion_px=2, seed=0)
    >>> result = motion_correct(rec.movie, max_shift_px=4)
    >>> result.movie.shape, result.shifts.shape
    ((60, 64, 64), (60, 2))
    """
    movie = _check_movie(movie)
    template_given = template is not None
    piecewise = bool(piecewise)
    interpolation = _choice(
        interpolation, "interpolation", PIECEWISE_INTERPOLATIONS if piecewise else INTERPOLATIONS
    )
    border = _choice(border, "border", BORDERS)
    out_dtype = _check_dtype(dtype, border)
    n_template_frames = int_at_least(n_template_frames, "n_template_frames", 1)
    n_template_iterations = int_at_least(n_template_iterations, "n_template_iterations", 0)
    if block_frames is not None:
        int_at_least(block_frames, "block_frames", 1)
    est = make_estimator(
        movie,
        max_shift_px=max_shift_px,
        upsample_factor=upsample_factor,
        highpass_sigma_px=highpass_sigma_px,
        smooth_sigma_px=smooth_sigma_px,
        whitening=whitening,
    )
    if piecewise:
        shape = (int(movie.shape[1]), int(movie.shape[2]))
        patch, overlap = resolve_patch_px(
            shape, patch_px=patch_px, overlap_px=overlap_px, patch_um=patch_um,
            overlap_um=overlap_um, pixel_size_um=pixel_size_um,
        )  # fmt: skip
        grid = patch_grid(shape, patch, overlap)
        patch_est = make_patch_estimator(
            movie, grid, max_deviation_px=max_deviation_px, upsample_factor=upsample_factor,
            highpass_sigma_px=highpass_sigma_px, smooth_sigma_px=smooth_sigma_px,
            whitening=whitening, outlier_ratio=patch_outlier_ratio,
        )  # fmt: skip
    if template is None:
        if int(movie.shape[0]) == 0:
            raise ShapeError("movie has no frames; a template needs at least one")
        template = template_from_movie(
            movie, est, n_template_frames, n_template_iterations, interpolation, should_stop
        )
    else:
        template = _as_template(template, movie, est.xp)
    est.set_template(template)
    hooks = {"block_frames": block_frames, "progress": progress, "should_stop": should_stop}
    if piecewise:  # rigid and patch shifts in one pass over the data
        patch_est.set_template(template)
        shifts, peaks, patches = estimate_rigid_and_patch_shifts(movie, est, patch_est, **hooks)
    else:
        shifts, peaks = _estimate(movie, est, block_frames, progress, should_stop)
    if not template_given:  # refer shifts to the recording's median position
        median = np.median(shifts, axis=0) if len(shifts) else np.zeros(2)
        shifts, template = recentre_shifts(
            shifts, template, max_shift_px=est.max_shift, interpolation=interpolation
        )
        if piecewise:
            patches = recentre_patch_shifts(patches, median, shifts, patch_est.max_deviation)
    options = {"interpolation": interpolation, "border": border, "dtype": out_dtype}
    if piecewise:
        centres = grid.centres
        corrected = apply_patch_shifts(movie, patches.shifts, centres, **options, **hooks)
    else:
        corrected = apply_shifts(movie, shifts, **options, **hooks)
    names = ("upsample_factor", "highpass_sigma_px", "smooth_sigma_px", "whitening")
    parameters = {"max_shift_px": est.max_shift, **{name: getattr(est, name) for name in names}}
    parameters.update(
        interpolation=interpolation, border=border, dtype=out_dtype.name,
        n_template_frames=n_template_frames, n_template_iterations=n_template_iterations,
        template_given=template_given,
    )  # fmt: skip
    shape = (int(movie.shape[1]), int(movie.shape[2]))
    if not piecewise:
        box = valid_box(shifts, shape)
        return MotionCorrectionResult(corrected, shifts, template, peaks, box, parameters)
    parameters.update(
        piecewise=True, patch_px=list(patch), overlap_px=list(overlap),
        max_deviation_px=patch_est.max_deviation, patch_outlier_ratio=patch_est.outlier_ratio,
    )  # fmt: skip
    box = patch_valid_box(patches.shifts, centres, shape)
    return MotionCorrectionResult(
        corrected, shifts, template, peaks, box, parameters,
        patch_shifts=patches.shifts, patch_centres=centres,
        patch_peak_correlation=patches.peak_correlation,
    )  # fmt: skip

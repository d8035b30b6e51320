"""Per-ROI quality scores (SNR, spatial r-value) and filtering of ROI sets.

:func:`evaluate_rois` scores every ROI from the movie in two passes over frame blocks, in the
spirit of CaImAn's ``evaluate_components`` (Giovannucci et al. 2019):

* ``snr``: peak-to-noise ratio of the ROI's neuropil-corrected trace;
* ``r_value``: spatial correlation between the ROI's footprint and the movie averaged over the
  ROI's most active frames, in a neighbourhood of the ROI;

:func:`filter_rois` keeps the ROIs that pass thresholds on these scores and on shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import ndimage

from ...errors import ParameterError, ShapeError
from ..chunking import iter_frame_blocks
from ..movie.summary_images import pnr_image
from .neuropil import extraction_masks
from .roiset import RoiSet

__all__ = ["evaluate_rois", "filter_rois"]

Progress = Callable[..., Any] | bool | None
StopHook = Callable[[], bool] | None


def _neighbourhoods(rois: RoiSet, margin: np.ndarray) -> list[np.ndarray]:
    """Flat pixel indices of each ROI's support dilated by `margin` px (inside the image)."""
    ny, nx = rois.shape
    out = []
    for i in range(len(rois)):
        ypix, xpix, _ = rois.pixels(i)
        if ypix.size == 0:
            out.append(np.zeros(0, np.int64))
            continue
        m = int(margin[i])
        y0, y1 = max(0, ypix.min() - m), min(ny, ypix.max() + m + 1)
        x0, x1 = max(0, xpix.min() - m), min(nx, xpix.max() + m + 1)
        box = np.zeros((y1 - y0, x1 - x0), bool)
        box[ypix - y0, xpix - x0] = True
        yy, xx = np.mgrid[-m : m + 1, -m : m + 1]
        grown = ndimage.binary_dilation(box, structure=yy * yy + xx * xx <= m * m)
        gy, gx = np.nonzero(grown)
        out.append(((gy + y0) * nx + gx + x0).astype(np.int64))
    return out


def evaluate_rois(
    movie: Any,
    rois: RoiSet,
    *,
    frame_rate_hz: float | None = None,
    neuropil_coefficient: float = 0.7,
    active_fraction: float = 0.05,
    smooth_s: float = 0.1,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> RoiSet:
    """Score each ROI's signal-to-noise ratio and spatial r-value.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask or h5py-like movie the ROIs were drawn on; read twice, in frame
        blocks.
    rois : RoiSet
        ROIs over ``movie.shape[1:]``.
    frame_rate_hz : float, optional
        Frame rate; with it, traces are averaged over ``smooth_s`` seconds before the peak is
        taken (binning raises the SNR of slow calcium transients the same way for every ROI).
    neuropil_coefficient : float
        ``r`` in ``F - r F_neuropil`` (suite2p's 0.7); the neuropil trace is the mean of
        suite2p's surround mask (:func:`~napari_calcium.core.rois.neuropil.extraction_masks`).
    active_fraction : float
        Share of frames, in (0, 0.5], that count as the ROI's most active (at least 3).
    smooth_s : float
        Bin width in seconds for the SNR when `frame_rate_hz` is known.
    block_frames, progress, should_stop
        As for :func:`~napari_calcium.core.movie.projections.projections`.

    Returns
    -------
    RoiSet
        `rois` with scores ``snr`` (unitless), ``r_value`` (in [-1, 1]; NaN for an empty ROI or
        one whose neighbourhood is constant) and ``noise`` (noise standard deviation of the
        corrected trace, in movie units).

    Raises
    ------
    ShapeError
        If the movie is not ``(frames, y, x)`` with the ROIs' image shape, or has < 8 frames.
    ParameterError
        For a bad coefficient, fraction or rate.

    Notes
    -----
    With ``F`` the footprint-weighted mean trace and ``N`` the neuropil trace, the corrected
    trace is ``C = F - r N``. **SNR** is its peak-to-noise ratio, ``max(C - mean C) / σ`` with
    ``σ`` the high-frequency (Welch, ``[0.25, 0.5]`` cycles/frame) noise level, as in
    :func:`~napari_calcium.core.movie.summary_images.pnr_image` (CNMF-E's PNR, Zhou et al. 2018).
    **r-value**: the ``k = max(3, active_fraction x frames)`` frames with the largest ``C`` are
    averaged and the temporal mean image subtracted; ``r`` is the Pearson correlation, over the
    ROI's pixels and a surround of one ROI radius, between that image and the footprint (the
    ROI's weights, 0 in the surround). This is CaImAn's spatial consistency test
    (``classify_components_ep``), taken over a neighbourhood so that binary masks get a value too.
    A true soma lights up in its own shape when it fires; a mask on background does not.

    References
    ----------
    Giovannucci, A. et al. (2019). CaImAn an open source tool for scalable calcium imaging data
    analysis. eLife 8, e38173.
    Zhou, P. et al. (2018). eLife 7, e28728.
    Pachitariu, M. et al. (2017). Suite2p. bioRxiv 061507.

    Examples
    --------
    >>> from napari_calcium.core.synthetic.recording import simulate_recording
    >>> rec = simulate_recording(n_frames=300, shape=(64, 64), n_neurons=4, seed=3)
    >>> scored = evaluate_rois(rec.movie, RoiSet.from_label_image(rec.truth.labels))
    >>> bool((scored.scores["r_value"] > 0.5).all())
    True
    """
    if not isinstance(rois, RoiSet):
        raise ParameterError(f"rois must be a RoiSet, got {type(rois).__name__}")
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        movie = np.asarray(movie)
    shape = tuple(int(s) for s in movie.shape)
    if len(shape) != 3 or shape[1:] != tuple(rois.shape) or shape[0] < 8:
        raise ShapeError(
            f"movie has shape {shape}; expected (frames >= 8, {rois.shape[0]}, {rois.shape[1]}) "
            "to match the ROIs' image shape"
        )
    if not (isinstance(neuropil_coefficient, int | float) and 0 <= neuropil_coefficient <= 1):
        raise ParameterError(
            f"neuropil_coefficient must be in [0, 1], got {neuropil_coefficient!r}"
        )
    if not (isinstance(active_fraction, int | float) and 0 < active_fraction <= 0.5):
        raise ParameterError(f"active_fraction must be in (0, 0.5], got {active_fraction!r}")
    factor = 1
    if frame_rate_hz is not None:
        fs = float(frame_rate_hz)
        if not (math.isfinite(fs) and fs > 0):
            raise ParameterError(f"frame_rate_hz must be a positive number, got {frame_rate_hz!r}")
        if not (isinstance(smooth_s, int | float) and smooth_s > 0):
            raise ParameterError(f"smooth_s must be > 0 seconds, got {smooth_s!r}")
        factor = max(1, min(round(smooth_s * fs), shape[0] // 8))
    n = len(rois)
    if n == 0:
        return rois.with_scores(snr=np.zeros(0), r_value=np.zeros(0), noise=np.zeros(0))

    masks = extraction_masks(rois, allow_overlap=True)
    both = sp.csr_array(sp.vstack([masks.cells.masks, masks.neuropil.masks]).T)  # (pix, 2n)
    n_frames, npix = shape[0], shape[1] * shape[2]
    traces = np.empty((n_frames, 2 * n), np.float32)
    total = np.zeros(npix)
    hooks = {"block_frames": block_frames, "progress": progress, "should_stop": should_stop}
    for block, arr in iter_frame_blocks(movie, desc="ROI traces", **hooks):
        flat = np.asarray(arr, np.float32).reshape(block.n_frames, npix)
        traces[block.frames] = flat @ both
        total += flat.sum(axis=0, dtype=np.float64)
    mean_image = total / n_frames
    corrected = traces[:, :n] - float(neuropil_coefficient) * traces[:, n:]

    n_bins = n_frames // factor
    binned = corrected[: n_bins * factor].reshape(n_bins, factor, n).mean(axis=1)
    snr = np.asarray(pnr_image(binned[:, None, :], segment_frames=min(64, n_bins)))[0]
    noise = _trace_noise(corrected)

    k = max(3, round(active_fraction * n_frames))
    active = np.argpartition(-corrected, k - 1, axis=0)[:k]  # (k, n) frame indices per ROI
    is_active = np.zeros((n_frames, n), bool)
    is_active[active, np.arange(n)] = True
    hood = _neighbourhoods(rois, np.maximum(2, np.ceil(rois.radius)).astype(int))
    sums = [np.zeros(h.size) for h in hood]
    for block, arr in iter_frame_blocks(movie, desc="ROI r-values", **hooks):
        flat = np.asarray(arr, np.float32).reshape(block.n_frames, npix)
        act = is_active[block.frames]
        for i in np.flatnonzero(act.any(axis=0)):
            sums[i] += flat[act[:, i]][:, hood[i]].sum(axis=0, dtype=np.float64)
    r_value = np.full(n, np.nan)
    dense_row = rois.masks
    for i in range(n):
        if hood[i].size < 3:
            continue
        image = sums[i] / k - mean_image[hood[i]]
        row = dense_row[[i]]
        footprint = np.zeros(hood[i].size)
        pos = np.searchsorted(hood[i], row.indices)
        footprint[pos] = row.data
        if image.std() > 0 and footprint.std() > 0:
            r_value[i] = float(np.corrcoef(footprint, image)[0, 1])
    return rois.with_scores(snr=snr.astype(np.float64), r_value=r_value, noise=noise)


def _trace_noise(traces: np.ndarray) -> np.ndarray:
    """Noise standard deviation of each column (frames, n) from the Welch high-frequency band."""
    from ..movie.summary_images import correlation_pnr

    seg = min(64, traces.shape[0])
    return np.asarray(
        correlation_pnr(traces[:, None, :], neighbours=None, segment_frames=seg).noise
    )[0].astype(np.float64)


def filter_rois(
    rois: RoiSet,
    *,
    min_snr: float | None = None,
    min_r_value: float | None = None,
    min_area: float | None = None,
    max_area: float | None = None,
    max_compactness: float | None = None,
    **min_scores: float,
) -> RoiSet:
    """The ROIs that pass every given threshold (None: no test), in their original order.

    Parameters
    ----------
    rois : RoiSet
        ROIs, scored by :func:`evaluate_rois` when `min_snr` or `min_r_value` is used.
    min_snr, min_r_value : float, optional
        Least score ``snr`` / ``r_value`` (NaN scores fail).
    min_area, max_area : float, optional
        Area bounds in pixels (inclusive).
    max_compactness : float, optional
        Largest :attr:`RoiSet.compactness` (1 for a disk).
    **min_scores : float
        Least value of any other score column by name, e.g. ``min_scores={"pnr": 4}`` passed as
        ``filter_rois(rois, pnr=4)``.

    Returns
    -------
    RoiSet
        The subset (ids, sources and scores kept).

    Raises
    ------
    ParameterError
        If a threshold is not a number, ``min_area > max_area``, or a score the thresholds need
        is missing (the message says to run :func:`evaluate_rois` first).

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((20, 20), int); lab[2:5, 2:5] = 1; lab[8:16, 8:16] = 2
    >>> rois = RoiSet.from_label_image(lab).with_scores(snr=[2.0, 9.0])
    >>> filter_rois(rois, min_snr=3).ids.tolist(), filter_rois(rois, max_area=20).ids.tolist()
    ([2], [1])
    """
    if not isinstance(rois, RoiSet):
        raise ParameterError(f"rois must be a RoiSet, got {type(rois).__name__}")
    thresholds = {"snr": min_snr, "r_value": min_r_value, **min_scores}
    keep = np.ones(len(rois), bool)
    for name, value in (
        *thresholds.items(),
        ("min_area", min_area),
        ("max_area", max_area),
        ("max_compactness", max_compactness),
    ):
        if value is not None and not (
            isinstance(value, int | float | np.number) and not isinstance(value, bool)
        ):
            raise ParameterError(f"threshold {name} must be a number or None, got {value!r}")
    if min_area is not None and max_area is not None and min_area > max_area:
        raise ParameterError(f"min_area ({min_area}) is larger than max_area ({max_area})")
    for name, value in thresholds.items():
        if value is None:
            continue
        if name not in rois.scores:
            raise ParameterError(
                f"the ROIs have no score {name!r} (they have {sorted(rois.scores)}); run "
                "evaluate_rois(movie, rois) first for snr and r_value"
            )
        with np.errstate(invalid="ignore"):
            keep &= np.asarray(rois.scores[name]) >= float(value)
    if min_area is not None:
        keep &= rois.area >= float(min_area)
    if max_area is not None:
        keep &= rois.area <= float(max_area)
    if max_compactness is not None:
        with np.errstate(invalid="ignore"):
            keep &= rois.compactness <= float(max_compactness)
    return rois[keep]

"""Fluorescence traces from a movie and ROI masks, with neuropil correction (suite2p semantics).

:func:`extract_traces` reads the movie once, in frame blocks, and projects every block onto one
sparse matrix that stacks the cell masks and the neuropil masks of
:func:`~napari_calcium.core.rois.neuropil.extraction_masks` (rows normalised to sum 1), so each
frame is read once and multiplied once. :func:`estimate_neuropil_coefficients` fits the neuropil
coefficient of each ROI instead of the conventional 0.7.

Example
-------
>>> import numpy as np
>>> from napari_calcium.core.rois.roiset import RoiSet
>>> labels = np.zeros((32, 32), np.int32)
>>> labels[5:10, 5:10] = 1
>>> movie = np.ones((20, 32, 32), np.float32)
>>> traces = extract_traces(movie, RoiSet.from_label_image(labels), min_pixels=50)
>>> traces.F.shape, float(traces.F[0, 0]), round(float(traces.corrected[0, 0]), 4)
((1, 20), 1.0, 0.3)
"""

from __future__ import annotations

import contextlib
import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from ...errors import ParameterError, ShapeError
from .._backend import array_module
from ..chunking import auto_block_frames, check_real, frame_blocks, iter_frame_blocks, track_blocks
from ..rois.neuropil import ExtractionMasks, extraction_masks
from ..rois.roiset import RoiSet
from . import _extraction_kernels as _k
from .dff import DegenerateTraceWarning, _rows_text

__all__ = [
    "DEFAULT_NEUROPIL_COEFFICIENT",
    "RoiTraces",
    "TraceSet",
    "estimate_neuropil_coefficients",
    "extract_traces",
]

#: suite2p's (and Kerlin et al. 2010's / Chen et al. 2013's) fixed neuropil coefficient
DEFAULT_NEUROPIL_COEFFICIENT = 0.7


class RoiTraces(NamedTuple):
    """The traces of one ROI (1-D arrays of length ``n_frames``; ``Fneu`` None without neuropil)."""

    id: int
    F: np.ndarray
    Fneu: np.ndarray | None
    corrected: np.ndarray
    coefficient: float


@dataclass(frozen=True, eq=False)
class TraceSet:
    """Traces of a set of ROIs, row ``i`` belonging to ROI ``ids[i]``.

    Give the TraceSet itself to :func:`~napari_calcium.core.traces.dff.compute_dff`: it takes
    ``corrected`` with the raw ``F`` alongside, for the denominator rule and the
    ``neuropil_dominated`` flag of ROIs whose neuropil outshines the soma (issue 17).

    Attributes
    ----------
    F : numpy.ndarray of float32, shape (n_rois, n_frames)
        Cell fluorescence: the weighted mean of the movie over the ROI's cell mask, in movie
        units (ADU).
    Fneu : numpy.ndarray of float32, shape (n_rois, n_frames), or None
        Neuropil fluorescence: the mean over the ROI's surround mask (movie units). None when
        extracted with ``neuropil=False``.
    corrected : numpy.ndarray of float32, shape (n_rois, n_frames)
        ``F - coefficients[:, None] * Fneu`` (equal to `F` without neuropil).
    coefficients : numpy.ndarray of float32, shape (n_rois,)
        Neuropil coefficient ``r`` used for each ROI (0 without neuropil).
    ids : numpy.ndarray of int64, shape (n_rois,)
        ROI ids, from the RoiSet.
    frame_rate_hz : float or None
        Frames per second, when known.
    F_chan2, Fneu_chan2 : numpy.ndarray of float32, shape (n_rois, n_frames), or None
        The same masks applied to a second channel (``Fneu_chan2`` None without neuropil).
    parameters : dict
        Everything needed to reproduce the extraction (mask options, coefficient method, ...).
    """

    F: np.ndarray
    Fneu: np.ndarray | None
    corrected: np.ndarray
    coefficients: np.ndarray
    ids: np.ndarray
    frame_rate_hz: float | None = None
    F_chan2: np.ndarray | None = None
    Fneu_chan2: np.ndarray | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_rois(self) -> int:
        """Number of ROIs (rows)."""
        return int(self.F.shape[0])

    @property
    def n_frames(self) -> int:
        """Number of frames (columns)."""
        return int(self.F.shape[1])

    @property
    def time_s(self) -> np.ndarray | None:
        """Frame times in seconds, ``arange(n_frames) / frame_rate_hz`` (None if unknown)."""
        if self.frame_rate_hz is None:
            return None
        return np.arange(self.n_frames) / float(self.frame_rate_hz)

    def __len__(self) -> int:
        return self.n_rois

    def __getitem__(self, index: Any) -> RoiTraces | TraceSet:
        """``traces[i]`` -> :class:`RoiTraces` of row ``i``; a slice / index array -> a TraceSet."""
        if isinstance(index, numbers.Integral):
            i = int(index)
            if not -self.n_rois <= i < self.n_rois:
                raise IndexError(f"ROI index {i} out of range for {self.n_rois} ROIs")
            return RoiTraces(
                int(self.ids[i]),
                self.F[i],
                None if self.Fneu is None else self.Fneu[i],
                self.corrected[i],
                float(self.coefficients[i]),
            )
        rows = np.arange(self.n_rois)[index]
        take = lambda a: None if a is None else a[rows]  # noqa: E731
        return TraceSet(
            F=self.F[rows],
            Fneu=take(self.Fneu),
            corrected=self.corrected[rows],
            coefficients=self.coefficients[rows],
            ids=self.ids[rows],
            frame_rate_hz=self.frame_rate_hz,
            F_chan2=take(self.F_chan2),
            Fneu_chan2=take(self.Fneu_chan2),
            parameters=dict(self.parameters),
        )

    def by_id(self, roi_id: int) -> RoiTraces:
        """Traces of the ROI whose id is `roi_id` (KeyError if there is none)."""
        hits = np.flatnonzero(self.ids == roi_id)
        if hits.size == 0:
            raise KeyError(f"no ROI with id {roi_id} in these traces")
        return self[int(hits[0])]  # type: ignore[return-value]

    def __repr__(self) -> str:
        rate = "" if self.frame_rate_hz is None else f", {self.frame_rate_hz:g} Hz"
        return f"TraceSet({self.n_rois} ROIs x {self.n_frames} frames{rate})"


# -------------------------------------------------------------------------------------- checks
def _movie_shape(movie: Any, name: str, image_shape: tuple[int, int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in getattr(movie, "shape", ()))
    if len(shape) != 3:
        raise ShapeError(f"{name} must be a (frames, y, x) movie, got shape {shape}")
    check_real(movie, name)
    if shape[1:] != tuple(image_shape):
        raise ShapeError(
            f"{name} frames are {shape[1:]} but the ROIs were drawn on a {tuple(image_shape)} "
            "image; use ROIs made for this movie (or crop/pad the movie)"
        )
    return shape  # type: ignore[return-value]


def _check_coefficient(value: Any, n_rois: int) -> np.ndarray | str:
    if isinstance(value, str):
        if value != "estimate":
            raise ParameterError(
                f'neuropil_coefficient must be a number, one per ROI, or "estimate", got {value!r}'
            )
        return value
    try:
        coef = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"neuropil_coefficient must be numeric, got {value!r}") from None
    if coef.ndim == 0:
        coef = np.full(n_rois, float(coef))
    if coef.shape != (n_rois,):
        raise ParameterError(
            f"neuropil_coefficient has shape {coef.shape}; give one number or one per ROI "
            f"({n_rois},)"
        )
    if not np.all(np.isfinite(coef)) or np.any(coef < 0):
        raise ParameterError(
            f"neuropil_coefficient must be finite and >= 0 (typically 0.7), got {value!r}"
        )
    return coef


def _refuse_empty(rois: RoiSet, empty: np.ndarray, problem: str) -> None:
    """:class:`ParameterError` naming the rows and ids of `rois` where `empty` is True.

    A ROI without pixels to average has no trace; extracting it would give F = 0 and a NaN or
    infinite dF/F downstream, so it is refused before the movie is read.
    """
    if not empty.any():
        return
    rows = np.flatnonzero(empty)
    raise ParameterError(
        f"ROIs at rows {_rows_text(rows)} (ids {_rows_text(rois.ids[rows])}) {problem}"
    )


def _stacked_matrix(cells: sp.csr_array, neuropil: sp.csr_array | None, width: int) -> dict:
    """One CSR (cells, then neuropil rows) plus the kernel's arrays and a row order."""
    matrix = sp.csr_array(cells if neuropil is None else sp.vstack([cells, neuropil], "csr"))
    matrix.sort_indices()
    n_pix = matrix.shape[1]
    index_dtype = np.int32 if n_pix < 2**31 else np.int64
    return {
        "matrix": matrix,
        "order": _k.spatial_row_order(matrix, width),
        "indptr": matrix.indptr.astype(np.int64),
        "indices": matrix.indices.astype(index_dtype),
        "data": matrix.data.astype(np.float32),
    }


# -------------------------------------------------------------------------------------- extraction
def extract_traces(
    movie: Any,
    rois: RoiSet,
    *,
    neuropil: bool = True,
    neuropil_coefficient: float | Any = DEFAULT_NEUROPIL_COEFFICIENT,
    allow_overlap: bool = False,
    inner_radius_px: int = 2,
    min_pixels: int = 350,
    lam_percentile: float = 50.0,
    circular: bool = False,
    masks: ExtractionMasks | None = None,
    second_channel: Any = None,
    frame_rate_hz: float | None = None,
    block_frames: int | None = None,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TraceSet:
    """Cell and neuropil fluorescence traces of every ROI, in one pass over the movie.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy array, ``np.memmap``, dask array (blocks computed in turn), cupy array or an
        h5py/zarr-like dataset; any real dtype (uint16 is read without a float copy on CPU).
    rois : RoiSet
        ROIs over ``(y, x)``.
    neuropil : bool, optional
        Also extract the surround (neuropil) traces and subtract them. Without it ``Fneu`` is
        None, ``corrected`` equals ``F`` and the coefficients are 0.
    neuropil_coefficient : float, array of shape (n_rois,), or "estimate", optional
        ``r`` in ``F - r Fneu``: suite2p's 0.7 by default, or one value per ROI, or "estimate"
        to fit it per ROI with :func:`estimate_neuropil_coefficients` (default options).
    allow_overlap, inner_radius_px, min_pixels, lam_percentile, circular
        Mask options of :func:`~napari_calcium.core.rois.neuropil.extraction_masks` (suite2p's
        defaults); ignored when `masks` is given.
    masks : ExtractionMasks, optional
        Precomputed cell and neuropil masks (same ROI order as `rois`).
    second_channel : array_like, shape (frames, y, x), optional
        A second channel of the same shape (e.g. a structural red channel); its traces through
        the same masks go to ``F_chan2`` / ``Fneu_chan2``. Read block by block with the first.
    frame_rate_hz : float, optional
        Stored in the result (``time_s``).
    block_frames : int, optional
        Frames per block; None picks it from a 64 MiB budget (aligned to dask chunks).
    progress : callable, True or None, optional
        tqdm-like factory (see :func:`~napari_calcium.core.chunking.iter_frame_blocks`).
    should_stop : callable, optional
        Checked before each block; True raises
        :class:`~napari_calcium.errors.OperationCancelled`.

    Returns
    -------
    TraceSet
        float32 ``F``, ``Fneu``, ``corrected`` of shape ``(n_rois, frames)``, the coefficients,
        ROI ids and the parameters. Traces always come back as numpy arrays (they are small and
        feed plots and exports), also for a cupy movie.

    Raises
    ------
    ShapeError
        If the movie is not ``(frames, y, x)`` with the ROIs' image shape, or the second channel
        or the masks do not match.
    ParameterError
        For a bad coefficient, ROI set or mask option; for ROIs with no pixels (area 0) or, with
        ``allow_overlap=False``, whose every pixel is shared with other ROIs (their trace would
        be F = 0): the message names their rows and ids. Checked before any frame is read.
    OperationCancelled
        When `should_stop` returns True.

    Warns
    -----
    DegenerateTraceWarning
        For ROIs whose neuropil mask is empty (the surround is covered by other ROIs or
        excluded): they are left uncorrected, with coefficient 0 and ``corrected = F``, and
        their ids are listed in ``parameters["no_neuropil_ids"]``.

    Notes
    -----
    With ``c_i`` the cell weights of ROI ``i`` (``lam`` over its pixels, shared pixels dropped
    unless `allow_overlap`, normalised to ``Σ_p c_i(p) = 1``) and ``n_i`` its neuropil mask
    (uniform ``1 / |N_i|`` over the surround pixels ``N_i``)::

        F_i(t)    = Σ_p c_i(p) movie(t, p)
        Fneu_i(t) = Σ_p n_i(p) movie(t, p)
        corrected_i(t) = F_i(t) - r_i Fneu_i(t)

    Both sets of rows are stacked into one sparse matrix ``M`` of shape ``(2 n, y x)``, and each
    block of ``t`` frames gives ``M @ block.reshape(t, -1).T``, accumulated in float64 and stored
    as float32. On CPU a numba kernel does the product (see
    :mod:`napari_calcium.core.traces._extraction_kernels`); on GPU cuSPARSE does.

    References
    ----------
    .. [1] Pachitariu M. et al. (2017) Suite2p: beyond 10,000 neurons with standard two-photon
       microscopy. bioRxiv 061507.
    .. [2] Kerlin A. M. et al. (2010) Broadly tuned response properties of diverse inhibitory
       neuron subtypes in mouse visual cortex. Neuron 67, 858-871 (r = 0.7).
    .. [3] Chen T.-W. et al. (2013) Ultrasensitive fluorescent proteins for imaging neuronal
       activity. Nature 499, 295-300 (r = 0.7).
    """
    if not isinstance(rois, RoiSet):
        raise ParameterError(
            f"rois must be a RoiSet, got {type(rois).__name__}; build one with "
            "RoiSet.from_label_image, RoiSet.from_pixels or RoiSet.from_neurofinder"
        )
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        movie = np.asarray(movie)
    n_frames = _movie_shape(movie, "movie", rois.shape)[0]
    if second_channel is not None:
        if not hasattr(second_channel, "shape") or not hasattr(second_channel, "__getitem__"):
            second_channel = np.asarray(second_channel)
        shape2 = tuple(int(s) for s in second_channel.shape)
        if shape2 != tuple(int(s) for s in movie.shape):
            raise ShapeError(
                f"second_channel has shape {shape2} but the movie has shape "
                f"{tuple(int(s) for s in movie.shape)}; both channels must match"
            )
    n = len(rois)
    coef_req = _check_coefficient(neuropil_coefficient, n) if neuropil else np.zeros(n)
    _refuse_empty(
        rois,
        rois.area == 0,
        f"have no pixels in the {rois.shape[0]}x{rois.shape[1]} image (area 0), so they have "
        "no trace (a ROI moved out of the field of view, or built from an empty pixel list?); "
        "keep the others with rois[rois.area > 0] (the ids stay with their traces)",
    )

    if masks is None:
        masks = extraction_masks(
            rois,
            allow_overlap=allow_overlap,
            inner_radius_px=inner_radius_px,
            min_pixels=min_pixels,
            lam_percentile=lam_percentile,
            circular=circular,
        )
        mask_source = "computed"
    else:
        if not isinstance(masks, ExtractionMasks):
            raise ParameterError(
                f"masks must be an ExtractionMasks (from extraction_masks), got {type(masks)}"
            )
        for part in masks:
            if part.masks.shape != rois.masks.shape:
                raise ShapeError(
                    f"masks have shape {part.masks.shape} but the ROIs have "
                    f"{rois.masks.shape}; compute them from these ROIs"
                )
        mask_source = "precomputed"
    _refuse_empty(
        rois,
        np.diff(masks.cells.masks.indptr) == 0,
        "share every pixel with other ROIs, so with allow_overlap=False no pixel is left for "
        "their traces; pass allow_overlap=True (shared pixels feed every ROI that has them), or "
        "remove or merge these ROIs"
        if mask_source == "computed" and not allow_overlap
        else "have empty cell masks in the precomputed masks; compute the masks from these ROIs "
        "(extraction_masks) or remove these ROIs",
    )
    no_neuropil = np.zeros(n, bool)
    if neuropil:
        no_neuropil = np.diff(masks.neuropil.masks.indptr) == 0
        if no_neuropil.any():
            rows = np.flatnonzero(no_neuropil)
            warnings.warn(
                f"extract_traces: {rows.size} of {n} ROIs (rows {_rows_text(rows)}, ids "
                f"{_rows_text(rois.ids[rows])}) have no neuropil pixels (their surround is "
                "covered by other ROIs or excluded), so they are not neuropil-corrected: "
                "coefficient 0, corrected = F (parameters['no_neuropil_ids'] lists them)",
                DegenerateTraceWarning,
                stacklevel=2,
            )
    prepared = _stacked_matrix(
        masks.cells.masks, masks.neuropil.masks if neuropil else None, rois.shape[1]
    )
    n_rows = prepared["matrix"].shape[0]
    out = np.empty((n_rows, n_frames), np.float32)
    out2 = np.empty((n_rows, n_frames), np.float32) if second_channel is not None else None

    blocks2 = None
    if second_channel is not None:  # both channels walk the same blocks
        block_frames = auto_block_frames(movie) if block_frames is None else block_frames
        blocks2 = _blocks(second_channel, block_frames, None, None)
    blocks = _blocks(movie, block_frames, progress, should_stop)
    with contextlib.closing(blocks):
        for start, array in blocks:
            _k.project_block(prepared, array, out, start, array_module(array))
            if blocks2 is not None and out2 is not None:
                start2, array2 = next(blocks2)
                _k.project_block(prepared, array2, out2, start2, array_module(array2))
    if blocks2 is not None:
        blocks2.close()

    F = out[:n]
    Fneu = out[n:] if neuropil else None
    if not neuropil:
        coefficients = np.zeros(n, np.float32)
        corrected = F.copy()
        method = "none"
    else:
        if isinstance(coef_req, str):
            coefficients = estimate_neuropil_coefficients(F, Fneu).astype(np.float32)
            method = "estimate"
        else:
            coefficients = coef_req.astype(np.float32)
            method = "fixed"
        coefficients[no_neuropil] = 0.0  # nothing to subtract: say so instead of a fake r
        corrected = (F - coefficients[:, None] * Fneu).astype(np.float32)
    parameters = {
        "neuropil": bool(neuropil),
        "neuropil_coefficient": (coef_req if isinstance(coef_req, str) else coef_req.tolist()),
        "coefficient_method": method,
        "masks": mask_source,
        "allow_overlap": bool(allow_overlap),
        "inner_radius_px": int(inner_radius_px),
        "min_pixels": int(min_pixels),
        "lam_percentile": float(lam_percentile),
        "circular": bool(circular),
        "second_channel": second_channel is not None,
        "frame_rate_hz": None if frame_rate_hz is None else float(frame_rate_hz),
        "movie_shape": [int(s) for s in movie.shape],
        "movie_dtype": str(getattr(movie, "dtype", "")),
        "formula": "F = cells @ movie; Fneu = neuropil @ movie; corrected = F - r * Fneu",
        "no_neuropil_ids": rois.ids[no_neuropil].tolist(),
    }
    if method == "estimate":
        parameters["estimate_options"] = dict(_ESTIMATE_DEFAULTS)
    return TraceSet(
        F=F,
        Fneu=Fneu,
        corrected=corrected,
        coefficients=coefficients,
        ids=np.asarray(rois.ids, np.int64).copy(),
        frame_rate_hz=None if frame_rate_hz is None else float(frame_rate_hz),
        F_chan2=None if out2 is None else out2[:n],
        Fneu_chan2=None if (out2 is None or not neuropil) else out2[n:],
        parameters=parameters,
    )


def _blocks(movie: Any, block_frames: int | None, progress: Any, should_stop: Any) -> Iterator:
    """``(first frame, block array)`` pairs; numpy and memmap blocks are views (no copy)."""
    if should_stop is not None and not callable(should_stop):
        raise ParameterError(f"should_stop must be a callable or None, got {should_stop!r}")
    if not isinstance(movie, np.ndarray):
        for block, array in iter_frame_blocks(
            movie,
            block_frames=block_frames,
            progress=progress,
            should_stop=should_stop,
            desc="extract traces",
        ):
            yield block.start, array
        return
    if block_frames is None:
        block_frames = auto_block_frames(movie)
    blocks = frame_blocks(int(movie.shape[0]), block_frames=block_frames)
    tracked = track_blocks(
        blocks, progress=progress, should_stop=should_stop, desc="extract traces"
    )
    with contextlib.closing(tracked):
        for block in tracked:
            yield block.start, movie[block.start : block.stop].view(np.ndarray)


# -------------------------------------------------------------------------------------- estimation
_ESTIMATE_DEFAULTS = {"quantile": 0.2, "detrend_degree": 2, "bounds": (0.0, 1.5), "max_iter": 20}
_IRLS_FLOOR = 0.1  # |u| floor of the IRLS weights, x the least-squares residual MAD


def estimate_neuropil_coefficients(
    F: Any,
    Fneu: Any,
    *,
    quantile: float = 0.2,
    detrend_degree: int = 2,
    bounds: tuple[float, float] = (0.0, 1.5),
    max_iter: int = 20,
    fallback: float = DEFAULT_NEUROPIL_COEFFICIENT,
) -> np.ndarray:
    """Per-ROI neuropil coefficient by a low-quantile regression of F on Fneu.

    Parameters
    ----------
    F, Fneu : array_like, shape (n_rois, n_frames)
        Cell and neuropil traces (movie units).
    quantile : float, optional
        The conditional quantile fitted, in (0, 0.5]: low values fit the lower envelope of F
        (frames where the cell is quiet) and ignore its transients.
    detrend_degree : int, optional
        Degree of the Legendre polynomial in time fitted jointly as a slowly varying baseline
        (bleaching, drift), so slow trends shared by F and Fneu do not bias ``r``. 0: a constant.
    bounds : (float, float), optional
        Range the estimates are clipped to.
    max_iter : int, optional
        Iterations of the reweighted least squares.
    fallback : float, optional
        Coefficient for ROIs whose neuropil is constant or whose traces are not finite.

    Returns
    -------
    numpy.ndarray of float64, shape (n_rois,)

    Notes
    -----
    The model of suite2p and of Kerlin et al. (2010) is ``F(t) = S(t) + r Fneu(t) + b(t)``
    with ``S >= 0`` the cell's own signal (0 when it is silent) and ``b`` a slow baseline. During
    quiet periods ``F - r Fneu`` is just baseline and noise, so the *low* conditional quantile of
    ``F`` given ``Fneu`` is a line of slope ``r``: transients only push points above it. We fit

    .. math:: \\min_{r, \\beta} \\sum_t \\rho_q(F(t) - r\\,Fneu(t) - \\sum_k \\beta_k P_k(t))

    with the check loss ``ρ_q(u) = u (q - [u < 0])`` (quantile regression, Koenker & Bassett
    1978) and Legendre polynomials ``P_k`` of degree <= `detrend_degree`, by iteratively
    reweighted least squares (weights ``q / |u|`` above the line and ``(1 - q) / |u|`` below,
    ``|u|`` floored at 0.1 x the least-squares residual MAD, a slightly smoothed check loss that
    converges in ~20 iterations, within ~0.01 of the exact fit), batched over ROIs. The fixed
    0.7 (suite2p, Chen et al. 2013) is right only for a contamination of 0.7. The estimate is
    least reliable when Fneu barely varies or follows the cell's own activity closely.

    References
    ----------
    .. [1] Koenker R., Bassett G. (1978) Regression quantiles. Econometrica 46, 33-50.
    .. [2] Kerlin A. M. et al. (2010) Neuron 67, 858-871.
    .. [3] Chen T.-W. et al. (2013) Nature 499, 295-300.
    .. [4] Pachitariu M. et al. (2017) Suite2p. bioRxiv 061507.
    """
    F = np.asarray(F, dtype=np.float64)
    Fneu = np.asarray(Fneu, dtype=np.float64)
    if F.ndim != 2 or F.shape != Fneu.shape:
        raise ShapeError(
            f"F and Fneu must both be (n_rois, n_frames), got {F.shape} and {Fneu.shape}"
        )
    if not 0.0 < float(quantile) <= 0.5:
        raise ParameterError(f"quantile must be in (0, 0.5], got {quantile!r}")
    lo, hi = (float(b) for b in bounds)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ParameterError(f"bounds must be two finite numbers lo <= hi, got {bounds!r}")
    if int(detrend_degree) < 0 or int(max_iter) < 1:
        raise ParameterError("detrend_degree must be >= 0 and max_iter >= 1")
    n, t = F.shape
    out = np.full(n, float(fallback))
    if n == 0 or t < detrend_degree + 3:
        return np.clip(out, lo, hi)
    x = np.linspace(-1.0, 1.0, t)
    trend = np.polynomial.legendre.legvander(x, int(detrend_degree))  # (t, d + 1)
    ok = np.isfinite(F).all(axis=1) & np.isfinite(Fneu).all(axis=1) & (Fneu.std(axis=1) > 0)
    for start in range(0, n, 128):  # batches of ROIs bound the memory
        rows = np.flatnonzero(ok[start : start + 128]) + start
        if rows.size:
            out[rows] = _quantile_slope(F[rows], Fneu[rows], trend, float(quantile), int(max_iter))
    return np.clip(out, lo, hi)


def _quantile_slope(F, Fneu, trend, q, max_iter):
    """Slope on Fneu of the q-quantile regression of F on [Fneu, trend], per row (IRLS)."""
    scale = Fneu.std(axis=1, keepdims=True)
    y = F / scale
    x = (Fneu - Fneu.mean(axis=1, keepdims=True)) / scale  # (b, t)
    k = trend.shape[1] + 1
    pairs = np.einsum("ti,tj->tij", trend, trend).reshape(len(trend), -1)  # (t, (k-1)^2)
    w = np.ones_like(y)
    coef = np.zeros((len(y), k))
    eps = None
    for _ in range(max_iter):  # normal equations of the weighted fit, all by BLAS products
        wx = w * x
        a = np.empty((len(y), k, k))
        a[:, 0, 0] = np.einsum("bt,bt->b", wx, x)
        a[:, 0, 1:] = a[:, 1:, 0] = wx @ trend
        a[:, 1:, 1:] = (w @ pairs).reshape(len(y), k - 1, k - 1)
        rhs = np.concatenate([np.einsum("bt,bt->b", wx, y)[:, None], (w * y) @ trend], 1)
        new = np.linalg.solve(a + 1e-9 * np.eye(k), rhs[..., None])[..., 0]
        resid = y - new[:, :1] * x - new[:, 1:] @ trend.T
        if eps is None:  # floor of |u|, from the least-squares residual MAD
            eps = _IRLS_FLOOR * np.maximum(np.median(np.abs(resid), axis=1, keepdims=True), 1e-12)
        w = np.where(resid > 0, q, 1.0 - q) / np.maximum(np.abs(resid), eps)
        done = np.max(np.abs(new[:, 0] - coef[:, 0])) < 1e-4
        coef = new
        if done:
            break
    return coef[:, 0]

"""Tracking ROIs across imaging sessions: align the fields of view, then match one-to-one.

:func:`register_rois` follows CaImAn's ``register_ROIs`` (Giovannucci et al. 2019): the rigid
displacement between the two sessions' mean images is measured by phase correlation, session
``b``'s masks are moved onto session ``a``'s field of view, and ROIs are paired by the Hungarian
algorithm on their overlap (IoU) or centroid distance. :func:`register_multisession` chains it
over several sessions into a union of tracked ROIs (CaImAn's ``register_multisession``).

Example
-------
>>> import numpy as np
>>> lab = np.zeros((64, 64), np.int32)
>>> lab[10:18, 10:18], lab[30:40, 40:48] = 1, 2
>>> moved = np.roll(lab, (3, -2), axis=(0, 1))     # session b: the field moved by (3, -2)
>>> m = register_rois(RoiSet.from_label_image(lab), RoiSet.from_label_image(moved), shift=(3, -2))
>>> m.pairs.tolist(), m.scores.tolist()
([[0, 0], [1, 1]], [1.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...errors import ParameterError, ShapeError
from ..movie.motion.rigid import estimate_shifts
from .matching import RoiMatch, match_rois
from .roiset import RoiSet

__all__ = [
    "MultiSessionMatch",
    "SessionMatch",
    "estimate_fov_shift",
    "register_multisession",
    "register_rois",
    "shift_rois",
]


@dataclass(frozen=True, eq=False)
class SessionMatch:
    """Result of :func:`register_rois`.

    Attributes
    ----------
    pairs : ndarray of int, shape (k, 2)
        Row indices ``(i_a, i_b)`` of matched ROIs, sorted by ``i_a``.
    ids : ndarray of int, shape (k, 2)
        The ROI ids of those pairs, ``(a.ids[i_a], b.ids[i_b])``.
    scores : ndarray, shape (k,)
        IoU (criterion ``"iou"``) or centroid distance in pixels (``"centroid"``) of each pair,
        measured after alignment.
    unmatched_a, unmatched_b : ndarray of int
        Row indices without a partner.
    shift : ndarray, shape (2,)
        Displacement ``(dy, dx)`` in pixels of session ``b``'s field of view relative to ``a``'s
        (``b[y, x] ≈ a(y - dy, x - dx)``), estimated (sub-pixel) or given; zeros without
        alignment.
    applied_shift : ndarray of int, shape (2,)
        The whole-pixel move applied to ``b``'s masks, ``-round(shift)``.
    b_aligned : RoiSet
        ``b`` moved onto ``a``'s field of view (same rows and ids as ``b``).
    peak_correlation : float
        Phase-correlation peak of the template alignment (NaN when not estimated).
    """

    pairs: np.ndarray
    ids: np.ndarray
    scores: np.ndarray
    unmatched_a: np.ndarray
    unmatched_b: np.ndarray
    shift: np.ndarray
    applied_shift: np.ndarray
    b_aligned: RoiSet
    peak_correlation: float = float("nan")

    @property
    def n_matched(self) -> int:
        """Number of matched pairs."""
        return int(self.pairs.shape[0])


@dataclass(frozen=True, eq=False)
class MultiSessionMatch:
    """Result of :func:`register_multisession`.

    Attributes
    ----------
    union : RoiSet
        Every distinct ROI in session 0's field of view, ids ``1..n_union``; ``source`` names the
        session it was last seen in (``"session<j>"``).
    assignments : ndarray of int, shape (n_union, n_sessions)
        ``assignments[u, j]`` is the row of session ``j``'s ROI tracked as union ROI ``u``, or -1
        where it was not found in that session.
    matchings : list of ndarray of int
        ``matchings[j][i]``: the union row of ROI ``i`` of session ``j``.
    shifts : ndarray, shape (n_sessions, 2)
        Displacement of each session's field of view relative to session 0's (row 0 is zeros).
    """

    union: RoiSet
    assignments: np.ndarray
    matchings: list[np.ndarray]
    shifts: np.ndarray


def shift_rois(rois: RoiSet, shift: Sequence[float]) -> RoiSet:
    """Move every mask by a whole-pixel ``(dy, dx)`` (``shift`` is rounded).

    Pixels that leave the image are dropped; a ROI that leaves it entirely becomes empty (its row
    and id stay, so row indices keep their meaning). Weights are moved, not resampled.

    Parameters
    ----------
    rois : RoiSet
    shift : (float, float)
        ``(dy, dx)`` in pixels: pixel ``(y, x)`` goes to ``(y + dy, x + dx)``.

    Returns
    -------
    RoiSet
    """
    dy, dx = (int(v) for v in np.round(np.asarray(shift, dtype=np.float64)))
    if dy == 0 and dx == 0:
        return rois
    ny, nx = rois.shape
    m = rois.masks
    rows = np.repeat(np.arange(len(rois)), np.diff(m.indptr))
    y, x = np.divmod(m.indices.astype(np.int64), nx)
    y, x = y + dy, x + dx
    keep = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
    masks = sp.csr_array(
        (m.data[keep], (rows[keep], y[keep] * nx + x[keep])), shape=(len(rois), ny * nx)
    )
    return rois.replace(masks=masks)


def _binarise(rois: RoiSet, max_thr: float) -> RoiSet:
    """Keep the pixels whose weight exceeds ``max_thr`` times the ROI's peak (CaImAn max_thr)."""
    if max_thr <= 0:
        return rois
    m = rois.masks
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(len(rois)), counts)
    peak = np.zeros(len(rois), np.float32)
    np.maximum.at(peak, rows, m.data)
    keep = m.data > max_thr * peak[rows]
    masks = sp.csr_array((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)
    return rois.replace(masks=masks)


def estimate_fov_shift(
    template_a: Any,
    template_b: Any,
    *,
    max_shift_px: float | tuple[float, float] | None = None,
    upsample_factor: int = 10,
) -> tuple[np.ndarray, float]:
    """Rigid displacement ``(dy, dx)`` of image ``template_b`` relative to ``template_a``.

    Phase correlation with sub-pixel refinement (:func:`~.motion.rigid.estimate_shifts`), so that
    ``template_b[y, x] ≈ template_a(y - dy, x - dx)``. Returns the shift (float64, pixels) and the
    normalised correlation peak.
    """
    ta = np.asarray(template_a, dtype=np.float32)
    tb = np.asarray(template_b, dtype=np.float32)
    if ta.ndim != 2 or ta.shape != tb.shape:
        raise ShapeError(
            f"templates must be two images of one shape (y, x); got {ta.shape} and {tb.shape}"
        )
    est = estimate_shifts(
        tb[None], ta, max_shift_px=max_shift_px, upsample_factor=upsample_factor, progress=None
    )
    return est.shifts[0].astype(np.float64), float(est.peak_correlation[0])


def register_rois(
    a: RoiSet,
    b: RoiSet,
    *,
    template_a: Any = None,
    template_b: Any = None,
    align: bool = True,
    shift: Sequence[float] | None = None,
    max_shift_px: float | tuple[float, float] | None = None,
    upsample_factor: int = 10,
    criterion: str = "iou",
    threshold: float | None = None,
    max_thr: float = 0.0,
) -> SessionMatch:
    """Pair the ROIs of two sessions of the same field of view, correcting a rigid shift.

    Parameters
    ----------
    a, b : RoiSet
        ROIs of the two sessions, over images of the same shape; ``a`` is the reference.
    template_a, template_b : array_like, shape (y, x), optional
        Summary images (mean images) of the two sessions. With both and ``align=True`` the shift
        of ``b`` relative to ``a`` is estimated from them; give neither to skip alignment.
    align : bool
        Estimate and remove the shift (needs both templates, or ``shift``).
    shift : (float, float), optional
        Known displacement ``(dy, dx)`` of ``b``'s field relative to ``a``'s; skips estimation.
    max_shift_px : float or (float, float), optional
        Largest shift searched (default 10 % of the image size).
    upsample_factor : int
        Sub-pixel precision of the estimate (1 / upsample_factor px).
    criterion : {"iou", "centroid"}
        Matching criterion (:func:`~.matching.match_rois`).
    threshold : float, optional
        Minimum IoU (default 0.5) or maximum centroid distance in px (default 5). CaImAn's
        default ``thresh_cost=0.7`` corresponds to ``threshold=0.3``.
    max_thr : float
        Before IoU, keep only pixels whose weight exceeds ``max_thr`` times the ROI's peak
        (CaImAn's ``max_thr``; 0 keeps every pixel).

    Returns
    -------
    SessionMatch
        Pairs, ids, scores and unmatched rows, the shift, and ``b`` aligned onto ``a``.

    Notes
    -----
    ``b``'s masks are moved by the shift rounded to whole pixels (``-round(shift)``), not
    resampled: the masks stay binary/weighted as they are, and a residual of at most half a pixel
    per axis lowers the IoU of a 10 px cell by only a few percent. Pixels moved outside the image
    are dropped. The matching is the Hungarian algorithm on the admissible pairs (Kuhn 1955), as
    in CaImAn's ``register_ROIs`` [1]_.

    References
    ----------
    .. [1] A. Giovannucci et al., "CaImAn an open source tool for scalable calcium imaging data
       analysis", eLife 8, e38173 (2019).
    """
    if tuple(a.shape) != tuple(b.shape):
        raise ShapeError(f"sessions have different image shapes: {a.shape} and {b.shape}")
    if (template_a is None) != (template_b is None):
        raise ParameterError("give both template_a and template_b (or neither)")
    peak = float("nan")
    if not align:
        est = np.zeros(2)
    elif shift is not None:
        est = np.asarray(shift, dtype=np.float64).reshape(2)
    elif template_a is not None:
        for name, t in (("template_a", template_a), ("template_b", template_b)):
            if np.shape(t) != tuple(a.shape):
                raise ShapeError(f"{name} has shape {np.shape(t)}; the ROIs are over {a.shape}")
        est, peak = estimate_fov_shift(
            template_a, template_b, max_shift_px=max_shift_px, upsample_factor=upsample_factor
        )
    else:
        est = np.zeros(2)
    applied = -np.round(est).astype(np.int64)
    b_aligned = shift_rois(b, applied)
    m: RoiMatch = match_rois(
        _binarise(a, max_thr),
        _binarise(b_aligned, max_thr),
        criterion=criterion,
        threshold=threshold,
    )
    ids = np.stack([a.ids[m.pairs[:, 0]], b.ids[m.pairs[:, 1]]], axis=1)
    return SessionMatch(
        pairs=m.pairs,
        ids=ids.reshape(-1, 2),
        scores=m.scores,
        unmatched_a=m.unmatched_a,
        unmatched_b=m.unmatched_b,
        shift=est + 0.0,
        applied_shift=applied,
        b_aligned=b_aligned,
        peak_correlation=peak,
    )


def register_multisession(
    rois_list: Sequence[RoiSet],
    templates: Sequence[Any] | None = None,
    *,
    align: bool = True,
    **options: Any,
) -> MultiSessionMatch:
    """Track ROIs over several sessions: the union of distinct ROIs and who is where.

    Session 0 is the reference frame. Each later session ``j`` is aligned to session 0 (its
    template against session 0's) and matched against the union so far
    (:func:`register_rois`); matched union ROIs take session ``j``'s mask (as CaImAn does, so a
    slowly changing cell follows its latest shape), unmatched ROIs of ``j`` join the union.

    Parameters
    ----------
    rois_list : sequence of RoiSet
        ROIs of each session (same image shape).
    templates : sequence of array_like, optional
        One mean image per session, for alignment.
    align : bool
        Estimate and remove each session's shift relative to session 0.
    **options
        ``criterion``, ``threshold``, ``max_shift_px``, ``upsample_factor``, ``max_thr`` of
        :func:`register_rois`.

    Returns
    -------
    MultiSessionMatch
    """
    sessions = list(rois_list)
    if not sessions:
        raise ParameterError("register_multisession needs at least one session")
    if templates is not None and len(templates) != len(sessions):
        raise ParameterError(f"got {len(templates)} templates for {len(sessions)} sessions")
    first = sessions[0]
    union = first.replace(ids=np.arange(1, len(first) + 1), source="session0", scores={})
    assign = np.full((len(first), len(sessions)), -1, np.int64)  # -1: absent
    assign[:, 0] = np.arange(len(first))
    shifts = np.zeros((len(sessions), 2))
    for j in range(1, len(sessions)):
        cur = sessions[j]
        tmpl = {}
        if templates is not None:
            tmpl = {"template_a": templates[0], "template_b": templates[j]}
        res = register_rois(union, cur, align=align, **tmpl, **options)
        shifts[j] = res.shift
        aligned = res.b_aligned
        n0, new = len(union), res.unmatched_b
        take = np.arange(n0)
        take[res.pairs[:, 0]] = n0 + res.pairs[:, 1]  # matched: session j's (aligned) mask
        stacked = sp.vstack([union.masks, aligned.masks], format="csr")
        src = union.source.copy()
        src[res.pairs[:, 0]] = f"session{j}"
        assign[res.pairs[:, 0], j] = res.pairs[:, 1]
        union = RoiSet(
            stacked[np.concatenate([take, n0 + new])],
            union.shape,
            ids=np.arange(1, n0 + new.size + 1),
            source=np.concatenate([src, np.full(new.size, f"session{j}")]),
        )
        extra = np.full((new.size, len(sessions)), -1, np.int64)
        extra[:, j] = new
        assign = np.vstack([assign, extra])
    matchings = []
    for j, rs in enumerate(sessions):
        where = np.full(len(rs), -1, np.int64)
        present = assign[:, j] >= 0
        where[assign[present, j]] = np.flatnonzero(present)
        matchings.append(where)
    return MultiSessionMatch(union=union, assignments=assign, matchings=matchings, shifts=shifts)

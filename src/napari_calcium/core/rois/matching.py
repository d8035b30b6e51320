"""Matching two ROI sets one-to-one: overlap (IoU) or centroid distance, Hungarian assignment.

Used to score a detection against ground truth (precision, recall, F1 as in the neurofinder
benchmark) and to pair the ROIs of two sessions (:mod:`.sessions`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from ...errors import ParameterError, ShapeError
from .roiset import RoiSet

__all__ = [
    "CRITERIA",
    "DetectionScores",
    "RoiMatch",
    "centroid_distances",
    "detection_scores",
    "iou_matrix",
    "match_rois",
]

#: Matching criteria and their default thresholds (IoU at least, distance in px at most).
CRITERIA = {"iou": 0.5, "centroid": 5.0}


class RoiMatch(NamedTuple):
    """A one-to-one matching of ROIs of set ``a`` to ROIs of set ``b``.

    Attributes
    ----------
    pairs : ndarray of int, shape (k, 2)
        Row indices ``(i_a, i_b)`` of matched ROIs, sorted by ``i_a``.
    scores : ndarray, shape (k,)
        IoU (criterion ``"iou"``) or centroid distance in pixels (``"centroid"``) of each pair.
    unmatched_a, unmatched_b : ndarray of int
        Row indices left without a partner.
    """

    pairs: np.ndarray
    scores: np.ndarray
    unmatched_a: np.ndarray
    unmatched_b: np.ndarray

    @property
    def n_matched(self) -> int:
        """Number of matched pairs."""
        return int(self.pairs.shape[0])


class DetectionScores(NamedTuple):
    """Precision, recall and F1 of a detection against reference ROIs."""

    precision: float
    recall: float
    f1: float
    n_detected: int
    n_truth: int
    n_matched: int


def _check_pair(a: RoiSet, b: RoiSet) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ShapeError(f"cannot match ROIs over a {a.shape} image with ROIs over {b.shape}")


def iou_matrix(a: RoiSet, b: RoiSet) -> sp.csr_array:
    """Intersection over union of every pair of binary masks, shape ``(len(a), len(b))``.

    Sparse: only overlapping pairs are stored. Weights are ignored (pixel sets compared).
    """
    _check_pair(a, b)
    inter = (a.binary() @ b.binary().T).tocoo()
    union = a.area[inter.row] + b.area[inter.col] - inter.data
    iou = inter.data / np.maximum(union, 1)
    return sp.csr_array((iou, (inter.row, inter.col)), shape=(len(a), len(b)))


def centroid_distances(a: RoiSet, b: RoiSet, max_distance: float) -> sp.csr_array:
    """Centroid distances in pixels of the pairs closer than ``max_distance`` (sparse).

    Pairs at distance exactly 0 are stored as a tiny positive number so they are not lost.
    """
    _check_pair(a, b)
    ca, cb = a.centroids, b.centroids
    if len(a) == 0 or len(b) == 0:
        return sp.csr_array((len(a), len(b)))
    # empty ROIs (NaN centroid) go far away, on opposite sides so two empty ones never pair
    tree_a, tree_b = cKDTree(np.nan_to_num(ca, nan=-1e9)), cKDTree(np.nan_to_num(cb, nan=1e9))
    dist = tree_a.sparse_distance_matrix(tree_b, max_distance, output_type="coo_matrix")
    d = np.maximum(dist.data, 1e-12)
    return sp.csr_array((d, (dist.row, dist.col)), shape=(len(a), len(b)))


def _assign(
    weight: sp.csr_array, n_a: int, n_b: int, keep: np.ndarray, maximize: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian assignment restricted to admissible (stored and kept) pairs."""
    coo = weight.tocoo()
    ok = keep
    rows, cols, vals = coo.row[ok], coo.col[ok], coo.data[ok]
    if rows.size == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    ua, ra = np.unique(rows, return_inverse=True)
    ub, rb = np.unique(cols, return_inverse=True)
    big = 1e6
    cost = np.full((ua.size, ub.size), big)
    cost[ra, rb] = -vals if maximize else vals
    ia, ib = linear_sum_assignment(cost)
    good = cost[ia, ib] < big
    pairs = np.stack([ua[ia[good]], ub[ib[good]]], axis=1).astype(np.int64)
    order = np.argsort(pairs[:, 0], kind="stable")
    pairs = pairs[order]
    scores = np.asarray(weight[pairs[:, 0], pairs[:, 1]]).ravel() if pairs.size else np.zeros(0)
    return pairs, scores


def match_rois(
    a: RoiSet, b: RoiSet, *, criterion: str = "iou", threshold: float | None = None
) -> RoiMatch:
    """Pair ROIs of ``a`` with ROIs of ``b`` one-to-one.

    Parameters
    ----------
    a, b : RoiSet
        ROI sets over the same image shape.
    criterion : {"iou", "centroid"}
        ``"iou"``: pairs need IoU >= ``threshold`` (default 0.5) and the assignment maximises the
        total IoU. ``"centroid"``: centroids within ``threshold`` pixels (default 5, the
        neurofinder criterion) and the assignment minimises the total distance.
    threshold : float, optional
        See ``criterion``.

    Returns
    -------
    RoiMatch

    Notes
    -----
    The optimal assignment is the Hungarian algorithm (Kuhn 1955) as in CaImAn's
    ``register_ROIs`` (Giovannucci et al. 2019), via :func:`scipy.optimize.linear_sum_assignment`.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((8, 8), int); lab[1:4, 1:4] = 1; lab[5:8, 5:8] = 2
    >>> swapped = np.choose(lab, [0, 2, 1])          # the same two squares, ids swapped
    >>> m = match_rois(RoiSet.from_label_image(lab), RoiSet.from_label_image(swapped))
    >>> m.pairs.tolist()
    [[0, 1], [1, 0]]
    """
    if criterion not in CRITERIA:
        raise ParameterError(f"criterion must be one of {sorted(CRITERIA)}; got {criterion!r}")
    thr = CRITERIA[criterion] if threshold is None else float(threshold)
    if criterion == "iou":
        if not 0.0 < thr <= 1.0:
            raise ParameterError(f"an IoU threshold must be in (0, 1]; got {thr}")
        weight = iou_matrix(a, b)
        keep = weight.tocoo().data >= thr
        pairs, scores = _assign(weight, len(a), len(b), keep, maximize=True)
    else:
        if not thr > 0:
            raise ParameterError(f"a distance threshold must be positive; got {thr}")
        weight = centroid_distances(a, b, thr)
        keep = weight.tocoo().data <= thr
        pairs, scores = _assign(weight, len(a), len(b), keep, maximize=False)
        if pairs.size:  # the true distances (the matrix stores 0 as a tiny number)
            diff = a.centroids[pairs[:, 0]] - b.centroids[pairs[:, 1]]
            scores = np.hypot(diff[:, 0], diff[:, 1])
    unmatched_a = np.setdiff1d(np.arange(len(a)), pairs[:, 0])
    unmatched_b = np.setdiff1d(np.arange(len(b)), pairs[:, 1])
    return RoiMatch(pairs, scores, unmatched_a, unmatched_b)


def detection_scores(
    detected: RoiSet, truth: RoiSet, *, criterion: str = "iou", threshold: float | None = None
) -> DetectionScores:
    """Precision, recall and F1 of ``detected`` against ``truth`` (see :func:`match_rois`).

    ``precision = matched / detected``, ``recall = matched / truth``, F1 their harmonic mean
    (0 when nothing matches).
    """
    m = match_rois(detected, truth, criterion=criterion, threshold=threshold)
    k, nd, nt = m.n_matched, len(detected), len(truth)
    precision = k / nd if nd else 0.0
    recall = k / nt if nt else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return DetectionScores(precision, recall, f1, nd, nt, k)

"""IoU / centroid matching, Hungarian optimality, detection scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from napari_calcium.core.rois.matching import (
    centroid_distances,
    detection_scores,
    iou_matrix,
    match_rois,
)
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.errors import ParameterError, ShapeError


def _boxes(shape, boxes) -> RoiSet:
    """One binary ROI per (y0, y1, x0, x1) box (may overlap)."""
    dense = np.zeros((len(boxes), *shape), bool)
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        dense[k, y0:y1, x0:x1] = True
    return RoiSet.from_dense(dense)


def test_iou_by_hand():
    a = _boxes((10, 10), [(0, 2, 0, 4), (5, 8, 5, 8)])  # areas 8 and 9
    b = _boxes((10, 10), [(0, 2, 2, 6), (6, 9, 6, 9), (9, 10, 0, 1)])  # 8, 9, 1
    iou = iou_matrix(a, b).toarray()
    # a0 & b0: 4 shared px, union 12; a1 & b1: 4 shared, union 14; nothing else overlaps
    np.testing.assert_allclose(iou, [[4 / 12, 0, 0], [0, 4 / 14, 0]])
    assert iou_matrix(a, b).nnz == 2  # sparse: only overlapping pairs stored
    # weights are ignored: pixel sets are compared
    w = RoiSet(a.masks * 7.5, a.shape)
    np.testing.assert_allclose(iou_matrix(w, b).toarray(), iou)


def test_hungarian_beats_greedy():
    # IoUs: a0-b0 9/11 (the single best pair), a0-b1 0.8, a1-b0 7/13, a1-b1 4/14 (below 0.4).
    # Greedy takes a0-b0 and strands a1 and b1; the optimal assignment is a0-b1 + a1-b0.
    shape = (1, 20)
    a = _boxes(shape, [(0, 1, 0, 10), (0, 1, 4, 14)])
    b = _boxes(shape, [(0, 1, 1, 11), (0, 1, 0, 8)])
    iou = iou_matrix(a, b).toarray()
    np.testing.assert_allclose(iou, [[9 / 11, 0.8], [7 / 13, 4 / 14]])
    m = match_rois(a, b, threshold=0.4)
    assert m.pairs.tolist() == [[0, 1], [1, 0]]
    np.testing.assert_allclose(m.scores, [0.8, 7 / 13])
    assert m.unmatched_a.size == 0 and m.unmatched_b.size == 0


@pytest.mark.parametrize("seed", range(6))
def test_hungarian_is_optimal_by_brute_force(seed):
    # most pairs first, then the largest total IoU, over all admissible one-to-one assignments
    rng = np.random.default_rng(seed)

    def boxes(n):
        y, x = rng.integers(0, 8, size=(2, n))
        h, w = rng.integers(3, 8, size=(2, n))
        return _boxes((16, 16), list(zip(y, y + h, x, x + w, strict=True)))

    a, b = boxes(4), boxes(5)
    iou = iou_matrix(a, b).toarray()
    thr = 0.15
    best = (0, 0.0)
    for perm in itertools.permutations(range(5), 4):
        vals = iou[np.arange(4), perm]
        ok = vals >= thr
        best = max(best, (int(ok.sum()), float(vals[ok].sum())))
    m = match_rois(a, b, threshold=thr)
    assert m.n_matched == best[0]
    assert m.scores.sum() == pytest.approx(best[1])
    assert (m.scores >= thr).all()
    assert len(set(m.pairs[:, 0])) == len(set(m.pairs[:, 1])) == m.n_matched


def test_iou_threshold_and_identity():
    a = _boxes((20, 20), [(0, 4, 0, 4), (10, 14, 10, 14)])
    b = _boxes((20, 20), [(10, 14, 11, 15), (0, 4, 2, 6)])  # shifted by 1 and by 2 columns
    m = match_rois(a, b, threshold=0.5)
    assert m.pairs.tolist() == [[1, 0]]  # IoU 12/20 = 0.6 passes, 8/24 does not
    assert m.scores.tolist() == [pytest.approx(0.6)]
    same = match_rois(a, a)
    assert same.pairs.tolist() == [[0, 0], [1, 1]] and same.scores.tolist() == [1.0, 1.0]


def test_centroid_criterion():
    a = _boxes((30, 30), [(0, 3, 0, 3), (10, 13, 10, 13), (20, 23, 20, 23)])
    b = _boxes((30, 30), [(10, 13, 13, 16), (0, 3, 0, 3), (20, 23, 27, 30)])
    d = centroid_distances(a, b, 5.0).toarray()
    assert d[1, 0] == pytest.approx(3.0) and d[0, 1] > 0  # 0 stored as a tiny number
    m = match_rois(a, b, criterion="centroid", threshold=5.0)
    assert m.pairs.tolist() == [[0, 1], [1, 0]]
    np.testing.assert_allclose(m.scores, [0.0, 3.0])  # true distances, not the tiny stand-in
    assert m.unmatched_a.tolist() == [2] and m.unmatched_b.tolist() == [2]
    m = match_rois(a, b, criterion="centroid", threshold=8.0)
    assert m.n_matched == 3


def test_empty_sets_and_empty_rois():
    a = _boxes((10, 10), [(0, 2, 0, 2)])
    none = RoiSet.empty((10, 10))
    for crit in ("iou", "centroid"):
        m = match_rois(a, none, criterion=crit)
        assert m.n_matched == 0 and m.unmatched_a.tolist() == [0] and m.unmatched_b.size == 0
        m = match_rois(none, none, criterion=crit)
        assert m.pairs.shape == (0, 2)
    # ROIs without pixels never match each other (their centroids are NaN)
    blank = RoiSet.from_pixels([([], [])], (10, 10))
    assert match_rois(blank, blank, criterion="centroid").n_matched == 0
    assert match_rois(blank, blank).n_matched == 0


def test_detection_scores():
    truth = _boxes((40, 40), [(0, 4, 0, 4), (10, 14, 10, 14), (20, 24, 20, 24), (30, 34, 0, 4)])
    found = _boxes((40, 40), [(0, 4, 0, 4), (10, 14, 11, 15), (30, 34, 30, 34)])
    s = detection_scores(found, truth)
    assert (s.n_detected, s.n_truth, s.n_matched) == (3, 4, 2)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(0.5)
    assert s.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    z = detection_scores(RoiSet.empty((40, 40)), truth)
    assert (z.precision, z.recall, z.f1) == (0.0, 0.0, 0.0)


def test_matching_errors():
    a = _boxes((10, 10), [(0, 2, 0, 2)])
    with pytest.raises(ShapeError):
        match_rois(a, _boxes((10, 11), [(0, 2, 0, 2)]))
    with pytest.raises(ParameterError, match="criterion"):
        match_rois(a, a, criterion="overlap")
    with pytest.raises(ParameterError, match="IoU threshold"):
        match_rois(a, a, threshold=1.5)
    with pytest.raises(ParameterError, match="distance"):
        match_rois(a, a, criterion="centroid", threshold=0)

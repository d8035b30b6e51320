"""Cross-session ROI registration on the synthetic scene: shift recovery and exact matching."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcium import simulate_recording
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.rois.sessions import (
    estimate_fov_shift,
    register_multisession,
    register_rois,
    shift_rois,
)
from napari_calcium.errors import ParameterError, ShapeError

SHIFT = (5, -3)


def _moved(img: np.ndarray, dy: int, dx: int, fill=0) -> np.ndarray:
    """``out[y, x] = img[y - dy, x - dx]``; what enters from outside is ``fill``."""
    out = np.full_like(img, fill)
    ny, nx = img.shape
    out[max(dy, 0) : ny + min(dy, 0), max(dx, 0) : nx + min(dx, 0)] = img[
        max(-dy, 0) : ny + min(-dy, 0), max(-dx, 0) : nx + min(-dx, 0)
    ]
    return out


@pytest.fixture(scope="module")
def scene():
    """Session a from the generator's truth; session b = a's field moved by SHIFT, with some
    ROIs dropped (all that the move pushes across the border among them) and new ones added."""
    rec = simulate_recording(n_frames=200, shape=(128, 128), n_neurons=30, seed=3)
    lab_a = rec.truth.labels
    mean_a = rec.movie.mean(axis=0)
    rois_a = RoiSet.from_label_image(lab_a)
    lab_b = _moved(lab_a, *SHIFT)
    mean_b = _moved(mean_a, *SHIFT, fill=float(np.median(mean_a)))
    cut = [i for i in rois_a.ids if (lab_b == i).sum() != (lab_a == i).sum()]
    rng = np.random.default_rng(0)
    others = [i for i in rois_a.ids if i not in cut]
    drop = set(cut) | set(rng.choice(others, 5, replace=False).tolist())
    for i in drop:
        lab_b[lab_b == i] = 0
    # new cells in b: discs in empty places, ids above a's
    yy, xx = np.mgrid[:128, :128]
    new_ids = []
    for k, (cy, cx) in enumerate([(10, 115), (118, 10), (64, 64), (30, 70), (100, 100)]):
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
        if lab_b[disc].any() or _moved(lab_a, *SHIFT)[disc].any():
            continue
        lab_b[disc] = 100 + k
        new_ids.append(100 + k)
    rois_b = RoiSet.from_label_image(lab_b)
    kept = sorted(int(i) for i in rois_a.ids if i not in drop)
    assert len(new_ids) >= 2 and len(kept) >= 15
    return rois_a, rois_b, mean_a, mean_b, kept, new_ids


def test_register_recovers_shift_and_matches_kept(scene):
    a, b, mean_a, mean_b, kept, new_ids = scene
    m = register_rois(a, b, template_a=mean_a, template_b=mean_b)
    np.testing.assert_allclose(m.shift, SHIFT, atol=0.5)
    assert m.applied_shift.tolist() == [-SHIFT[0], -SHIFT[1]]
    # the label ids are preserved between the sessions, so the right pairs have equal ids
    assert m.ids[:, 0].tolist() == kept
    np.testing.assert_array_equal(m.ids[:, 0], m.ids[:, 1])
    np.testing.assert_allclose(m.scores, 1.0)  # whole-pixel move: identical masks
    assert sorted(b.ids[m.unmatched_b].tolist()) == new_ids
    assert set(a.ids[m.unmatched_a]).isdisjoint(kept)
    assert m.n_matched + m.unmatched_a.size == len(a)
    assert 0 < m.peak_correlation <= 1
    # b_aligned is b in a's frame: matched masks coincide with a's
    for ia, ib in m.pairs:
        assert (m.b_aligned.masks[[ib]] != a.masks[[ia]]).nnz == 0


def test_without_alignment_matching_is_worse(scene):
    a, b, mean_a, mean_b, kept, _ = scene
    unaligned = register_rois(a, b, template_a=mean_a, template_b=mean_b, align=False)
    assert unaligned.shift.tolist() == [0.0, 0.0]
    assert unaligned.n_matched < len(kept) // 2
    no_templates = register_rois(a, b)
    assert no_templates.n_matched == unaligned.n_matched
    # a known shift skips the estimate and gives the same answer as the templates
    known = register_rois(a, b, shift=SHIFT)
    assert known.ids[:, 0].tolist() == kept


def test_centroid_criterion_and_threshold(scene):
    a, b, mean_a, mean_b, kept, _ = scene
    m = register_rois(a, b, template_a=mean_a, template_b=mean_b, criterion="centroid")
    assert m.ids[:, 0].tolist() == kept
    np.testing.assert_allclose(m.scores, 0.0, atol=1e-9)


def test_estimate_fov_shift_subpixel(scene):
    _, _, mean_a, _, _, _ = scene
    from scipy.ndimage import shift as nd_shift

    moved = nd_shift(mean_a, (2.4, -1.3), order=3, mode="nearest")
    est, peak = estimate_fov_shift(mean_a, moved, max_shift_px=6)
    np.testing.assert_allclose(est, (2.4, -1.3), atol=0.2)
    assert peak > 0.3


def test_shift_rois_clips_and_keeps_rows():
    rois = RoiSet.from_pixels([([0, 1], [0, 0], [1.0, 2.0]), ([5], [5])], (6, 6), ids=[4, 8])
    moved = shift_rois(rois, (1.4, 2.0))  # rounds to (1, 2)
    assert moved.ids.tolist() == [4, 8]
    y, x, lam = moved.pixels(0)
    assert y.tolist() == [1, 2] and x.tolist() == [2, 2] and lam.tolist() == [1.0, 2.0]
    assert moved.area.tolist() == [2, 0]  # ROI 8 left the image
    assert shift_rois(rois, (0.2, -0.3)) is rois


def test_max_thr_binarises_weighted_masks():
    a = RoiSet.from_pixels([([0, 0, 0, 0], [0, 1, 2, 3], [1.0, 1.0, 0.1, 0.1])], (2, 6))
    b = RoiSet.from_pixels([([0, 0], [0, 1])], (2, 6))
    assert register_rois(a, b).n_matched == 1  # IoU 0.5
    m = register_rois(a, b, max_thr=0.5)
    assert m.scores.tolist() == [1.0]


def test_register_errors(scene):
    a, b, mean_a, _, _, _ = scene
    with pytest.raises(ParameterError, match="both"):
        register_rois(a, b, template_a=mean_a)
    with pytest.raises(ShapeError):
        register_rois(a, b, template_a=mean_a, template_b=mean_a[:64])
    with pytest.raises(ShapeError):
        register_rois(a, RoiSet.empty((64, 64)))
    with pytest.raises(ParameterError):
        register_multisession([])
    with pytest.raises(ParameterError, match="templates"):
        register_multisession([a, b], [mean_a])


def test_register_multisession(scene):
    a, b, mean_a, mean_b, kept, new_ids = scene
    # session c: b's field moved further, only b's new cells and three kept cells
    lab_b = b.to_label_image()
    lab_c = np.where(np.isin(lab_b, new_ids + kept[:3]), lab_b, 0)
    c = RoiSet.from_label_image(_moved(lab_c, -2, 4))
    mean_c = _moved(mean_b, -2, 4, fill=float(np.median(mean_b)))
    res = register_multisession([a, b, c], [mean_a, mean_b, mean_c])
    np.testing.assert_allclose(res.shifts, [[0, 0], SHIFT, [SHIFT[0] - 2, SHIFT[1] + 4]], atol=0.5)
    n_union = len(a) + len(new_ids)
    assert len(res.union) == n_union and res.assignments.shape == (n_union, 3)
    assert res.union.ids.tolist() == list(range(1, n_union + 1))
    # every ROI of every session is in the union exactly once
    for j, rs in enumerate([a, b, c]):
        rows = res.assignments[:, j]
        assert sorted(rows[rows >= 0].tolist()) == list(range(len(rs)))
        np.testing.assert_array_equal(res.assignments[res.matchings[j], j], np.arange(len(rs)))
    # a's ROIs come first, in order; b's new cells were appended and found again in c
    np.testing.assert_array_equal(res.assignments[: len(a), 0], np.arange(len(a)))
    tracked = res.assignments[len(a) :]
    assert (tracked[:, 0] == -1).all() and (tracked[:, 1] >= 0).all() and (tracked[:, 2] >= 0).all()
    assert b.ids[tracked[:, 1]].tolist() == c.ids[tracked[:, 2]].tolist() == new_ids
    three = res.assignments[:, 2] >= 0
    assert three.sum() == len(new_ids) + 3
    ids_a = a.ids[res.assignments[: len(a), 0][three[: len(a)]]]
    assert ids_a.tolist() == kept[:3]

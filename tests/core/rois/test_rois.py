"""RoiSet: label-image round trips, geometry on known shapes, subsets, joins, validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.errors import ParameterError, ShapeError


def _random_labels(rng: np.random.Generator, shape, n_ids: int, dtype) -> np.ndarray:
    """Blobs with non-contiguous ids, plus isolated single-pixel ROIs."""
    lab = np.zeros(shape, dtype)
    ids = rng.choice(np.arange(1, 5000), size=n_ids, replace=False).astype(dtype)
    for k, rid in enumerate(ids):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        if k % 4 == 0:  # a single pixel
            lab[y, x] = rid
        else:
            h, w = rng.integers(1, 7, size=2)
            lab[y : y + h, x : x + w] = rid
    return lab


@pytest.mark.parametrize("dtype", [np.uint16, np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_image_round_trip_exact(dtype, seed):
    rng = np.random.default_rng(seed)
    n = 40 if dtype != np.uint8 else 10
    lab = _random_labels(rng, (37, 53), n, dtype)
    if dtype == np.uint8:
        lab = lab % 250
    rois = RoiSet.from_label_image(lab)
    present = np.unique(lab[lab > 0])
    assert rois.ids.tolist() == present.tolist()  # ascending label order, gaps kept
    assert rois.area.tolist() == [int((lab == i).sum()) for i in present]
    back = rois.to_label_image()
    np.testing.assert_array_equal(back, lab.astype(np.int64))
    assert rois.to_label_image(dtype=dtype).dtype == dtype


def test_label_image_single_pixels_and_empty():
    lab = np.zeros((5, 6), np.int64)
    lab[0, 0], lab[4, 5], lab[2, 3] = 7, 3, 1000
    rois = RoiSet.from_label_image(lab)
    assert rois.ids.tolist() == [3, 7, 1000]
    assert rois.area.tolist() == [1, 1, 1]
    np.testing.assert_array_equal(rois.centroids, [[4, 5], [0, 0], [2, 3]])
    np.testing.assert_array_equal(rois.to_label_image(), lab)
    empty = RoiSet.from_label_image(np.zeros((4, 4), np.uint16))
    assert len(empty) == 0 and empty.to_label_image().sum() == 0


def test_label_image_rejects_bad_input():
    with pytest.raises(ShapeError):
        RoiSet.from_label_image(np.zeros((2, 3, 4), int))
    with pytest.raises(ParameterError, match="negative"):
        RoiSet.from_label_image(np.array([[0, -1]]))
    with pytest.raises(ParameterError, match="integers"):
        RoiSet.from_label_image(np.array([[0.0, 1.5]]))
    # integral floats are accepted
    assert RoiSet.from_label_image(np.array([[0.0, 2.0]])).ids.tolist() == [2]


def _disk(shape, centre, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= r**2


def test_geometry_of_known_shapes():
    shape = (60, 80)
    disk = _disk(shape, (20, 30), 8)
    line = np.zeros(shape, bool)
    line[50, 5:75] = True
    square = np.zeros(shape, bool)
    square[2:6, 60:64] = True
    rois = RoiSet.from_dense(np.stack([disk, line, square]))
    assert rois.area.tolist() == [int(disk.sum()), 70, 16]
    np.testing.assert_allclose(rois.centroids[0], (20, 30), atol=1e-9)
    np.testing.assert_allclose(rois.centroids[1], (50, 39.5))
    np.testing.assert_allclose(rois.centroids[2], (3.5, 61.5))
    np.testing.assert_allclose(rois.radius, np.sqrt(rois.area / np.pi))
    assert rois.compactness[0] == pytest.approx(1.0, abs=0.01)
    assert rois.compactness[1] > 2.0  # a line is far from compact
    # a 4x4 square: centred between pixels, slightly tighter than a pixel-centred digital disk
    assert 0.95 < rois.compactness[2] < 1.05
    one = RoiSet.from_pixels([([3], [4])], shape)
    assert one.compactness[0] == 1.0 and one.radius[0] == pytest.approx(1 / np.sqrt(np.pi))


def test_weighted_centroid_and_table():
    rois = RoiSet.from_pixels([([0, 0], [0, 4], [1.0, 3.0])], (2, 5), pixel_size_um=(0.5, 2.0))
    np.testing.assert_allclose(rois.centroids, [[0.0, 3.0]])
    table = rois.with_scores(snr=[4.5]).table
    assert list(table)[:6] == ["id", "area", "centroid_y", "centroid_x", "radius", "compactness"]
    assert table["area_um2"].tolist() == [2.0]
    assert table["snr"].tolist() == [4.5]
    assert table["is_cell"].tolist() == [True]


def test_overlap_tie_rule_in_label_image():
    # three ROIs over one pixel (0, 1): relative weights 0.5, 1.0, 1.0 -> ROI 1 (first of the
    # highest) wins; pixel (0, 0) is shared by ROI 0 (rel 1) and ROI 2 (rel 1) -> ROI 0 wins
    rois = RoiSet.from_pixels(
        [
            ([0, 0, 1], [0, 1, 1], [2.0, 1.0, 2.0]),  # peak 2: (0,1) is 0.5 relative
            ([0, 1], [1, 0], [3.0, 3.0]),
            ([0, 0], [0, 1], [5.0, 5.0]),
        ],
        (2, 2),
        ids=[10, 20, 30],
    )
    lab = rois.to_label_image()
    np.testing.assert_array_equal(lab, [[10, 20], [20, 10]])
    # order matters only for exact ties
    np.testing.assert_array_equal(rois[[2, 1, 0]].to_label_image(), [[30, 30], [20, 10]])


def test_subset_concat_with_scores():
    lab = np.zeros((10, 10), int)
    lab[0:2, 0:2], lab[4:6, 4:6], lab[8:10, 8:10] = 3, 5, 9
    rois = RoiSet.from_label_image(lab).with_scores(q=[0.1, 0.2, 0.3])
    sub = rois[np.array([2, 0])]
    assert sub.ids.tolist() == [9, 3] and sub.scores["q"].tolist() == [0.3, 0.1]
    assert rois[rois.ids > 3].ids.tolist() == [5, 9]
    assert rois[1].ids.tolist() == [5]
    assert rois[1:].area.tolist() == [4, 4]
    other = RoiSet.from_label_image(np.where(lab == 5, 5, 0) + np.where(lab == 3, 42, 0))
    joined = rois.concat(other)
    # other's rows are [id 5, id 42]; the clashing 5 is renumbered after the largest id (42)
    assert joined.ids.tolist() == [3, 5, 9, 43, 42]
    np.testing.assert_array_equal(joined.scores["q"][:3], [0.1, 0.2, 0.3])
    assert np.isnan(joined.scores["q"][3:]).all()
    with pytest.raises(ParameterError, match="both sets"):
        rois.concat(other, renumber=False)
    with pytest.raises(ShapeError):
        rois.concat(RoiSet.empty((9, 9)))
    with pytest.raises(ShapeError, match="one value per ROI"):
        rois.with_scores(bad=[1.0, 2.0])
    with pytest.raises(ParameterError, match="clashes"):
        rois.with_scores(area=[1, 2, 3])
    # immutable columns
    with pytest.raises(ValueError):
        rois.ids[0] = 99


def test_validation_errors():
    with pytest.raises(ShapeError):
        RoiSet(sp.csr_array((2, 10)), (3, 4))
    with pytest.raises(ShapeError):
        RoiSet.empty((0, 5))
    with pytest.raises(ShapeError):
        RoiSet.empty("abc")
    with pytest.raises(ParameterError, match="unique"):
        RoiSet(sp.csr_array(np.eye(2, 4)), (2, 2), ids=[1, 1])
    with pytest.raises(ParameterError, match="unique positive"):
        RoiSet(sp.csr_array(np.eye(2, 4)), (2, 2), ids=[0, 1])
    with pytest.raises(ParameterError, match="non-negative"):
        RoiSet(sp.csr_array(-np.eye(2, 4)), (2, 2))
    with pytest.raises(ParameterError, match="non-negative"):
        RoiSet(sp.csr_array(np.eye(2, 4) * np.nan), (2, 2))
    with pytest.raises(ShapeError, match="outside"):
        RoiSet.from_pixels([([0, 3], [0, 0])], (3, 3))
    with pytest.raises(ShapeError, match="outside"):
        RoiSet.from_pixels([([0], [-1])], (3, 3))
    with pytest.raises(ShapeError, match="integers"):
        RoiSet.from_pixels([([0.5], [1])], (3, 3))
    with pytest.raises(ShapeError, match="different lengths"):
        RoiSet.from_pixels([([0, 1], [1])], (3, 3))
    with pytest.raises(ParameterError, match="pixel_size_um"):
        RoiSet.empty((3, 3), pixel_size_um=(0.0, 1.0))
    with pytest.raises(ParameterError, match="no field"):
        RoiSet.empty((3, 3)).replace(colour="red")


def test_from_pixels_sums_repeats_and_drops_zeros():
    rois = RoiSet.from_pixels([([1, 1, 2], [1, 1, 2], [0.5, 0.25, 0.0])], (3, 3))
    y, x, lam = rois.pixels(0)
    assert y.tolist() == [1] and x.tolist() == [1] and lam.tolist() == [0.75]
    assert rois.index_of(1) == 0
    with pytest.raises(ParameterError):
        rois.index_of(2)


def test_dense_binary_and_repr():
    w = np.zeros((2, 3, 4), np.float32)
    w[0, 1, 2] = 0.5
    w[1, 0, :] = 2.0
    rois = RoiSet.from_dense(w)
    np.testing.assert_array_equal(rois.to_dense(), w)
    np.testing.assert_array_equal(rois.binary().toarray().reshape(w.shape), w > 0)
    assert "2 ROIs over 3x4" in repr(rois)

"""Cell and neuropil masks (issue 5): suite2p's semantics, checked on suite2p's own output."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from conftest import shared_data
from napari_calcium.core.rois.neuropil import (
    ExtractionMasks,
    cell_masks,
    cell_pixel_map,
    extraction_masks,
    neuropil_coverage,
    neuropil_label_preview,
    neuropil_masks,
)
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.errors import ParameterError, ShapeError

CROSS = ndimage.generate_binary_structure(2, 1)


# ------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def suite2p_plane():
    folder = shared_data("suite2p_output_calscipy", "plane0")
    ops = np.load(folder / "ops.npy", allow_pickle=True).item()
    stat = np.load(folder / "stat.npy", allow_pickle=True)
    shape = (int(ops["Ly"]), int(ops["Lx"]))
    return stat, shape, RoiSet.from_suite2p_stat(stat, shape)


def random_rois(shape=(96, 96), n=14, seed=0, ids=None) -> RoiSet:
    """Disks of radius 3-6 px with a peaked weight profile; some of them overlap."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    pixels = []
    for _ in range(n):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        r = rng.uniform(3, 6)
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        inside = d2 <= r * r
        if not inside.any():
            inside[int(cy) % shape[0], int(cx) % shape[1]] = True
        ys, xs = np.nonzero(inside)
        lam = np.exp(-d2[ys, xs] / (r * r)) * rng.uniform(0.5, 2.0)
        pixels.append((ys, xs, lam.astype(np.float32)))
    return RoiSet.from_pixels(pixels, shape, ids=ids)


def rows(rois: RoiSet) -> list[np.ndarray]:
    m = rois.masks
    return [m.indices[m.indptr[i] : m.indptr[i + 1]] for i in range(len(rois))]


def reference_neuropil(rois, cell_pix, inner, min_pixels, circular):
    """Slow, literal version of the growth rule with scipy morphology (the test oracle)."""
    ny, nx = rois.shape
    usable = ~cell_pix
    out = []
    for i in range(len(rois)):
        roi = np.zeros((ny, nx), bool)
        ys, xs, _ = rois.pixels(i)
        roi[ys, xs] = True
        ring = ndimage.binary_dilation(roi, CROSS, iterations=inner) if inner else roi
        region = ring.copy()
        for _ in range(100):
            if (usable & region).sum() - (usable & ring).sum() > min_pixels:
                break
            if circular:
                region = ndimage.binary_dilation(region, CROSS, iterations=5)
            else:
                yr, xr = np.nonzero(region)
                region = np.zeros_like(region)
                region[max(yr.min() - 5, 0) : yr.max() + 6, max(xr.min() - 5, 0) : xr.max() + 6] = (
                    True
                )
        out.append(np.flatnonzero(usable & region & ~ring))
    return out


def scipy_cell_pix(rois, percentile, size):
    lammap = np.zeros(rois.shape[0] * rois.shape[1])
    np.maximum.at(lammap, rois.masks.indices, rois.masks.data)
    lammap = lammap.reshape(rois.shape)
    filt = ndimage.percentile_filter(lammap, percentile=percentile, size=size)
    return ~((lammap < filt) | (lammap == 0))


# ------------------------------------------------------------------------------------- real data
def test_neuropil_equals_suite2p_on_its_output(suite2p_plane):
    """ROIs imported from a suite2p stat keep suite2p's radius: the defaults reproduce it."""
    stat, _, rois = suite2p_plane
    assert "suite2p_radius" in rois.scores
    neuropil = neuropil_masks(rois)
    ours = rows(neuropil)
    same = [np.array_equal(o, np.sort(s["neuropil_mask"])) for o, s in zip(ours, stat, strict=True)]
    assert len(same) == 107 and all(same), f"{sum(same)}/107 identical"
    assert list(neuropil.source) == ["neuropil"] * 107
    np.testing.assert_array_equal(neuropil.ids, rois.ids)
    sums = neuropil.masks.sum(axis=1)
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
    window = int(5 * np.median([s["radius"] for s in stat]))  # the same window, given explicitly
    explicit = neuropil_masks(rois.replace(scores={}), percentile_window_px=window)
    assert (explicit.masks != neuropil.masks).nnz == 0


def test_default_window_is_close_to_suite2p(suite2p_plane):
    """Without suite2p's radius the window comes from the equivalent-disk radius (29 px here,
    suite2p's radius gives 31): a few masks differ by a few pixels."""
    stat, _, rois = suite2p_plane
    ours = rows(neuropil_masks(rois.replace(scores={})))
    jaccard = [
        np.intersect1d(o, s["neuropil_mask"]).size / np.union1d(o, s["neuropil_mask"]).size
        for o, s in zip(ours, stat, strict=True)
    ]
    assert min(jaccard) > 0.98
    assert 90 <= sum(j == 1.0 for j in jaccard) < 107


def test_cell_masks_follow_suite2p_overlap(suite2p_plane):
    stat, shape, rois = suite2p_plane
    cells = cell_masks(rois)
    # suite2p had already dropped overlapping ROIs here (no pixel flagged), so this checks the
    # normalisation and that we flag no pixel either; test_cell_masks_overlap_rule covers overlap
    for i, s in enumerate(stat):
        keep = ~s["overlap"]
        pix = np.ravel_multi_index((s["ypix"], s["xpix"]), shape)[keep]
        lam = s["lam"][keep].astype(np.float64)
        order = np.argsort(pix)
        got = cells.masks[[i]]
        np.testing.assert_array_equal(got.indices, pix[order])
        np.testing.assert_allclose(got.data, (lam / lam.sum())[order], rtol=1e-6)
    everything = cell_masks(rois, allow_overlap=True)
    np.testing.assert_array_equal(everything.masks.indptr, rois.masks.indptr)


# ------------------------------------------------------------------------------------- cell pixels
@pytest.mark.parametrize("size", [1, 4, 7, 30, 90])
@pytest.mark.parametrize("percentile", [0.0, 10.0, 50.0, 90.0, 100.0])
def test_cell_pixel_map_equals_percentile_filter_rule(size, percentile):
    rois = random_rois(shape=(40, 56), n=12, seed=size)
    got = cell_pixel_map(rois, lam_percentile=percentile, percentile_window_px=size)
    want = scipy_cell_pix(rois, percentile, size) if percentile else rois.to_label_image() > 0
    np.testing.assert_array_equal(got, want)


def test_lam_percentile_zero_excludes_every_roi_pixel():
    rois = random_rois(shape=(64, 64), n=45, seed=3)  # dense: windows are mostly ROI pixels
    on_roi = (rois.to_label_image() > 0).ravel()
    spared = neuropil_masks(rois, min_pixels=150)  # lam_percentile 50: dim ROI pixels are usable
    assert on_roi[spared.masks.indices].any()
    strict = neuropil_masks(rois, lam_percentile=0, min_pixels=150)
    assert strict.masks.nnz and not on_roi[strict.masks.indices].any()


# ------------------------------------------------------------------------------------- neuropil
@pytest.mark.parametrize("circular", [False, True])
@pytest.mark.parametrize(("inner", "min_pixels"), [(2, 350), (0, 60), (4, 900)])
def test_neuropil_equals_reference_rule(circular, inner, min_pixels):
    rois = random_rois(seed=inner + 7)
    cell_pix = cell_pixel_map(rois, percentile_window_px=20)
    got = neuropil_masks(
        rois,
        inner_radius_px=inner,
        min_pixels=min_pixels,
        circular=circular,
        percentile_window_px=20,
    )
    want = reference_neuropil(rois, cell_pix, inner, min_pixels, circular)
    for i, (g, w) in enumerate(zip(rows(got), want, strict=True)):
        np.testing.assert_array_equal(g, w, err_msg=f"ROI {i}")


def test_neuropil_properties():
    rois = random_rois(shape=(128, 128), n=20, seed=1)
    inner, min_pixels = 3, 300
    neuropil = neuropil_masks(rois, inner_radius_px=inner, min_pixels=min_pixels)
    cell_pix = cell_pixel_map(rois).ravel()
    counts = np.diff(neuropil.masks.indptr)
    assert (counts > min_pixels).all()  # 128 x 128 has room for all of them
    np.testing.assert_allclose(neuropil.masks.sum(axis=1), 1.0, rtol=1e-5)
    assert np.ptp(neuropil.masks.data[neuropil.masks.indptr[0] : neuropil.masks.indptr[1]]) == 0
    for i, pix in enumerate(rows(neuropil)):
        assert not cell_pix[pix].any()
        roi = np.zeros(rois.shape, bool)
        roi[rois.pixels(i)[:2]] = True
        dist = ndimage.distance_transform_cdt(~roi, metric="taxicab").ravel()
        assert dist[pix].min() == inner + 1  # the gap is exactly the inner radius


def test_circular_differs_from_rectangle_and_is_a_city_block_disk():
    rois = random_rois(seed=2)
    rect = neuropil_masks(rois, min_pixels=200)
    disk = neuropil_masks(rois, min_pixels=200, circular=True)
    assert any(not np.array_equal(a, b) for a, b in zip(rows(rect), rows(disk), strict=True))
    for i, pix in enumerate(rows(disk)):
        roi = np.zeros(rois.shape, bool)
        roi[rois.pixels(i)[:2]] = True
        dist = ndimage.distance_transform_cdt(~roi, metric="taxicab").ravel()[pix]
        assert dist.min() > 2 and (dist.max() - 2) % 5 == 0 and pix.size > 200


def test_small_image_stops_at_the_border():
    """20 x 20 cannot hold 350 neuropil pixels: the box is the image, all usable pixels."""
    labels = np.zeros((20, 20), np.int32)
    labels[8:12, 8:12] = 5
    rois = RoiSet.from_label_image(labels)
    (pix,) = rows(neuropil_masks(rois))
    roi = labels > 0
    ring = ndimage.binary_dilation(roi, CROSS, iterations=2)
    np.testing.assert_array_equal(pix, np.flatnonzero(~ring))
    assert pix.size == 400 - ring.sum() < 350


def test_roi_in_the_corner():
    labels = np.zeros((64, 64), np.int32)
    labels[:3, :3] = 1
    rois = RoiSet.from_label_image(labels)
    (pix,) = rows(neuropil_masks(rois, min_pixels=100))
    y, x = np.divmod(pix, 64)
    assert pix.size > 100 and y.min() == 0 and x.min() == 0
    assert not np.isin(pix, np.flatnonzero(ndimage.binary_dilation(labels > 0, CROSS, 2))).any()
    # rectangle: box grows by 5 px per step from the 3x3 ROI plus the 2 px gap, clipped at 0
    assert y.max() == x.max() and (y.max() - 2 - 2) % 5 == 0


def test_exclude_and_ids():
    rois = random_rois(seed=4, ids=np.arange(101, 115))
    exclude = np.zeros(rois.shape, bool)
    exclude[:, 40:50] = True
    neuropil = neuropil_masks(rois, exclude=exclude, min_pixels=150)
    assert not exclude.ravel()[neuropil.masks.indices].any()
    assert (np.diff(neuropil.masks.indptr) > 150).all()
    np.testing.assert_array_equal(neuropil.ids, np.arange(101, 115))
    np.testing.assert_array_equal(neuropil.is_cell, rois.is_cell)


# ------------------------------------------------------------------------------------- cells
def test_cell_masks_overlap_rule():
    labels_a = np.zeros((30, 30), np.int32)
    pixels = [
        (np.array([5, 5, 5, 6]), np.array([5, 6, 7, 6]), np.array([1.0, 2.0, 3.0, 4.0])),
        (np.array([5, 6, 6]), np.array([7, 6, 7]), np.array([1.0, 1.0, 2.0])),
        (np.array([5]), np.array([7]), np.array([1.0])),  # wholly shared: empty
    ]
    rois = RoiSet.from_pixels(pixels, labels_a.shape, ids=[3, 9, 4], scores={"snr": [1, 2, 3]})
    cells = cell_masks(rois)
    d = cells.to_dense()
    np.testing.assert_allclose(d[0, 5, 5:7], [1 / 3, 2 / 3], rtol=1e-6)
    assert d[0].sum() == pytest.approx(1) and d[0, 5, 7] == 0 and d[0, 6, 6] == 0
    np.testing.assert_allclose(d[1, 6, 7], 1.0)
    assert cells.masks[[2]].nnz == 0
    np.testing.assert_array_equal(cells.ids, [3, 9, 4])
    np.testing.assert_array_equal(cells.scores["snr"], [1, 2, 3])
    kept = cell_masks(rois, allow_overlap=True).to_dense()
    np.testing.assert_allclose(kept[0, 5, 5:8], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(kept.sum(axis=(1, 2)), 1.0, rtol=1e-6)


def test_empty_roi_set():
    rois = RoiSet.empty((32, 40))
    masks = extraction_masks(rois)
    assert isinstance(masks, ExtractionMasks)
    assert masks.cells.masks.shape == masks.neuropil.masks.shape == (0, 32 * 40)
    assert not neuropil_coverage(masks.neuropil).any()
    assert not neuropil_label_preview(rois, masks.neuropil).any()


# ------------------------------------------------------------------------------------- display
def test_preview_and_coverage():
    rois = random_rois(seed=5)
    neuropil = neuropil_masks(rois, min_pixels=200)
    dense = neuropil.to_dense() > 0
    coverage = neuropil_coverage(neuropil)
    np.testing.assert_array_equal(coverage, dense.sum(axis=0))
    assert coverage.max() > 1  # surrounds overlap here
    preview = neuropil_label_preview(rois, neuropil)
    np.testing.assert_array_equal(preview > 0, coverage > 0)
    yy, xx = np.mgrid[: rois.shape[0], : rois.shape[1]]
    cy, cx = rois.centroids[:, 0, None, None], rois.centroids[:, 1, None, None]
    dist = np.where(dense, (yy - cy) ** 2 + (xx - cx) ** 2, np.inf)
    nearest = rois.ids[np.argmin(dist, axis=0)]
    np.testing.assert_array_equal(preview[coverage > 0], nearest[coverage > 0])
    with pytest.raises(ShapeError, match="one per ROI"):
        neuropil_label_preview(rois[:3], neuropil)


# ------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"inner_radius_px": -1}, "inner_radius_px must be >= 0"),
        ({"inner_radius_px": 2.5}, "inner_radius_px must be an integer"),
        ({"min_pixels": -5}, "min_pixels must be >= 0"),
        ({"lam_percentile": 101}, r"lam_percentile must be in \[0, 100\]"),
        ({"lam_percentile": float("nan")}, r"lam_percentile must be in \[0, 100\]"),
        ({"percentile_window_px": 0}, "percentile_window_px must be >= 1"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        neuropil_masks(random_rois(n=3), **kwargs)


def test_bad_inputs():
    with pytest.raises(ParameterError, match="must be a RoiSet"):
        cell_masks(np.zeros((4, 4)))
    with pytest.raises(ShapeError, match="exclude has shape"):
        neuropil_masks(random_rois(n=2), exclude=np.zeros((5, 5), bool))

"""Shapes rasterisation, contours, suite2p stat and neurofinder conversions (real files too)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_data
from napari_calcium.core.rois.formats import (
    ellipse_vertices,
    rois_to_contours,
    rois_to_neurofinder,
    rois_to_suite2p_stat,
)
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.errors import ParameterError, ShapeError

SHAPE = (40, 50)
YY, XX = np.mgrid[: SHAPE[0], : SHAPE[1]].astype(float)


def _mask(rois: RoiSet, i: int = 0) -> np.ndarray:
    return rois.to_dense()[i] > 0


def _inside_polygon(verts: np.ndarray) -> np.ndarray:
    """Analytic even-odd test of every pixel centre (no vertex lies on a pixel centre row)."""
    inside = np.zeros(SHAPE, bool)
    n = len(verts)
    for k in range(n):
        (y0, x0), (y1, x1) = verts[k], verts[(k + 1) % n]
        crosses = (y0 > YY) != (y1 > YY)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = x0 + (YY - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (xcross > XX)
    return inside


def test_rectangle_pixel_centres_and_boundary_rule():
    # edges off the pixel grid: exactly the centres inside
    rect = np.array([[2.3, 3.6], [2.3, 9.2], [7.7, 9.2], [7.7, 3.6]])
    rois = RoiSet.from_shapes([rect], SHAPE, kinds="rectangle")
    expect = (YY > 2.3) & (YY < 7.7) & (XX > 3.6) & (XX < 9.2)
    np.testing.assert_array_equal(_mask(rois), expect)
    assert rois.area[0] == 5 * 6  # rows 3..7, columns 4..9
    # edges through pixel centres: boundary centres are included (closed shape)
    rect = np.array([[1, 1], [1, 4], [4, 4], [4, 1]], float)
    np.testing.assert_array_equal(
        _mask(RoiSet.from_shapes([rect], SHAPE, kinds="rectangle"))[:6, :6],
        np.pad(np.ones((4, 4), bool), ((1, 1), (1, 1))),
    )


def test_polygon_matches_analytic_pixel_centre_test():
    rng = np.random.default_rng(3)
    for _ in range(5):
        # a random star-shaped (non-convex) polygon with vertices off the pixel grid
        t = np.sort(rng.uniform(0, 2 * np.pi, 9))
        r = rng.uniform(5, 15, 9)
        verts = np.stack([20 + r * np.sin(t), 25 + r * np.cos(t)], 1) + 0.013
        got = _mask(RoiSet.from_shapes([verts], SHAPE))
        np.testing.assert_array_equal(got, _inside_polygon(verts))


@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 72.5])
def test_ellipse_matches_analytic_pixel_centre_test(angle_deg):
    centre, a, b = np.array([20.2, 24.7]), 14.3, 6.1  # semi-axes along u and v
    th = np.deg2rad(angle_deg)
    u = a * np.array([np.sin(th), np.cos(th)])
    v = b * np.array([np.cos(th), -np.sin(th)])
    corners = np.array([centre - u - v, centre + u - v, centre + u + v, centre - u + v])
    got = _mask(RoiSet.from_shapes([corners], SHAPE, kinds="ellipse"))
    dy, dx = YY - centre[0], XX - centre[1]
    pu = (dy * u[0] + dx * u[1]) / a**2
    pv = (dy * v[0] + dx * v[1]) / b**2
    expect = pu**2 + pv**2 <= 1.0
    np.testing.assert_array_equal(got, expect)
    assert abs(got.sum() - np.pi * a * b) < 0.05 * np.pi * a * b
    # its polygon approximation lies on the ellipse
    verts = ellipse_vertices(corners, 32)
    d = verts - centre
    np.testing.assert_allclose(((d @ u) / a**2) ** 2 + ((d @ v) / b**2) ** 2, 1.0)


def test_shapes_clipping_tiny_and_errors():
    half_out = np.array([[-5, -5], [-5, 3.2], [3.2, 3.2], [3.2, -5]])
    rois = RoiSet.from_shapes([half_out], SHAPE)
    assert rois.area[0] == 16  # rows/cols 0..3
    tiny = np.array([[10.1, 10.1], [10.1, 10.2], [10.2, 10.2]])
    rois = RoiSet.from_shapes([tiny], SHAPE, ids=[7])
    assert rois.area.tolist() == [1] and rois.ids.tolist() == [7]
    with pytest.raises(ParameterError, match="outside"):
        RoiSet.from_shapes([half_out - 100], SHAPE)
    with pytest.raises(ParameterError, match="enclose"):
        RoiSet.from_shapes([half_out], SHAPE, kinds="line")
    with pytest.raises(ParameterError, match="kinds"):
        RoiSet.from_shapes([half_out], SHAPE, kinds=["polygon", "ellipse"])
    with pytest.raises(ShapeError):
        RoiSet.from_shapes([[[1, 2], [3, 4]]], SHAPE)
    assert len(RoiSet.from_shapes([], SHAPE)) == 0


def test_contours_rasterise_back_for_convex_and_simple_rois():
    lab = np.zeros(SHAPE, np.int32)
    disk = (YY - 12) ** 2 + (XX - 12) ** 2 <= 30
    lab[disk] = 1
    lab[30:33, 5:20] = 2  # a bar
    lab[5:15, 35:45] = 3
    lab[10:15, 35:40] = 0  # an L (not convex, still one simple piece)
    lab[37, 47] = 4  # a single pixel
    rois = RoiSet.from_label_image(lab)
    contours = rois_to_contours(rois)
    assert all(c.shape[1] == 2 for c in contours)
    back = RoiSet.from_shapes(contours, SHAPE, ids=rois.ids)
    np.testing.assert_array_equal(back.to_label_image(), lab)
    assert rois_to_contours(RoiSet.empty(SHAPE)) == []


def test_suite2p_real_stat_round_trip():
    folder = shared_data("suite2p_output_calscipy", "plane0")
    stat = np.load(folder / "stat.npy", allow_pickle=True)
    ops = np.load(folder / "ops.npy", allow_pickle=True).item()
    iscell = np.load(folder / "iscell.npy")
    shape = (ops["Ly"], ops["Lx"])
    assert shape == (512, 512) and len(stat) == 107
    rois = RoiSet.from_suite2p_stat(stat, shape, iscell=iscell)
    assert len(rois) == 107 and rois.source[0] == "suite2p"
    assert int(rois.is_cell.sum()) == 30
    np.testing.assert_array_equal(rois.scores["iscell_prob"], iscell[:, 1])
    np.testing.assert_array_equal(rois.scores["skew"], [s["skew"] for s in stat])
    assert "npix" not in rois.scores and "compact" not in rois.scores
    np.testing.assert_array_equal(rois.area, [s["npix"] for s in stat])
    back = rois_to_suite2p_stat(rois)
    for s, t in zip(stat, back, strict=True):
        order_s = np.lexsort((s["xpix"], s["ypix"]))  # ours is row-major
        np.testing.assert_array_equal(t["ypix"], s["ypix"][order_s])
        np.testing.assert_array_equal(t["xpix"], s["xpix"][order_s])
        np.testing.assert_array_equal(t["lam"], np.asarray(s["lam"], np.float32)[order_s])
        assert t["npix"] == s["npix"] and t["skew"] == s["skew"]
        assert t["lam"].dtype == np.float32 and t["overlap"].shape == t["ypix"].shape
    again = RoiSet.from_suite2p_stat(back, shape)
    assert (again.masks != rois.masks).nnz == 0


def test_suite2p_stat_overlap_and_errors():
    stat = [
        {"ypix": np.array([0, 0, 1]), "xpix": np.array([0, 1, 1]), "lam": np.ones(3)},
        {"ypix": np.array([1]), "xpix": np.array([1]), "lam": np.array([2.0]), "snr": 3.0},
    ]
    rois = RoiSet.from_suite2p_stat(stat, (2, 2))
    out = rois_to_suite2p_stat(rois)
    assert out[0]["overlap"].tolist() == [False, False, True]
    assert out[1]["overlap"].tolist() == [True]
    assert np.isnan(out[0]["snr"]) and out[1]["snr"] == 3.0
    with pytest.raises(ParameterError, match="ypix"):
        RoiSet.from_suite2p_stat([{"lam": [1.0]}], (2, 2))
    with pytest.raises(ShapeError, match="iscell"):
        RoiSet.from_suite2p_stat(stat, (2, 2), iscell=np.ones((3, 2)))
    with pytest.raises(ShapeError, match="outside"):
        RoiSet.from_suite2p_stat(stat, (1, 1))


def test_neurofinder_real_round_trip():
    path = shared_data("neurofinder_crop", "regions.json")
    regions = json.loads(path.read_text())
    rois = RoiSet.from_neurofinder(regions, (256, 256))
    assert len(rois) == 106
    assert rois.scores["neurofinder_id"].tolist() == [r["id"] for r in regions]
    back = rois_to_neurofinder(rois)
    for r, t in zip(regions, back, strict=True):
        assert t["id"] == r["id"]
        assert {tuple(c) for c in t["coordinates"]} == {tuple(c) for c in r["coordinates"]}
        assert len(t["coordinates"]) == len(r["coordinates"])
    with pytest.raises(ShapeError, match="outside"):
        RoiSet.from_neurofinder(regions, (100, 100))
    with pytest.raises(ParameterError, match="coordinates"):
        RoiSet.from_neurofinder([{"id": 1}], (10, 10))
    with pytest.raises(ShapeError):
        RoiSet.from_neurofinder([{"id": 1, "coordinates": [1, 2, 3]}], (10, 10))

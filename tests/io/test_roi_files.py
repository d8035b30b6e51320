"""ROI files: our .npz, neurofinder, suite2p, Cellpose, label images, ImageJ; errors."""

from __future__ import annotations

import json
import re
import shutil
import warnings
import zipfile

import imageio.v3 as iio
import numpy as np
import pytest
import roifile
import tifffile

from conftest import shared_data
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.errors import OutputExistsError, ParameterError, RecordingError
from napari_calcium.io.roi_files import load_rois, save_rois


def _labels(shape=(30, 40)) -> np.ndarray:
    lab = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lab[(yy - 8) ** 2 + (xx - 9) ** 2 <= 20] = 3
    lab[20:25, 3:12] = 17
    lab[4:14, 25:35] = 5
    lab[9:14, 25:30] = 0  # an L shape
    lab[28, 39] = 70000  # a single pixel; an id beyond uint16
    return lab


# ------------------------------------------------------------------------------------ .npz
def test_npz_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    base = RoiSet.from_label_image(_labels(), pixel_size_um=(0.8, 1.25))
    weights = base.masks.copy()
    weights.data[:] = rng.uniform(0.01, 3.0, weights.nnz).astype(np.float32)
    rois = base.replace(
        masks=weights,
        source=["a", "detected", "labels", "x"],
        is_cell=[True, False, True, False],
        scores={"snr": [1.5, np.nan, 3.0, -2.0], "r": [0, 1, 2, 3]},
    )
    out = save_rois(rois, tmp_path / "rois.npz")
    assert out == tmp_path / "rois.npz"
    with np.load(out, allow_pickle=False) as z:  # no pickles inside
        assert "data" in z.files
    back = load_rois(out)
    assert (back.masks != rois.masks).nnz == 0
    np.testing.assert_array_equal(back.masks.data, rois.masks.data)
    assert back.shape == rois.shape and back.pixel_size_um == (0.8, 1.25)
    np.testing.assert_array_equal(back.ids, rois.ids)
    np.testing.assert_array_equal(back.source, rois.source)
    np.testing.assert_array_equal(back.is_cell, rois.is_cell)
    assert list(back.scores) == ["snr", "r"]
    np.testing.assert_array_equal(back.scores["snr"], rois.scores["snr"])
    # empty sets and no pixel size survive too
    save_rois(RoiSet.empty((5, 6)), tmp_path / "empty.npz")
    empty = load_rois(tmp_path / "empty.npz")
    assert len(empty) == 0 and empty.shape == (5, 6) and empty.pixel_size_um is None


def test_save_refuses_to_overwrite(tmp_path):
    rois = RoiSet.from_label_image(_labels())
    target = tmp_path / "r.npz"
    save_rois(rois, target)
    before = target.read_bytes()
    with pytest.raises(OutputExistsError):
        save_rois(rois[:1], target)
    assert target.read_bytes() == before
    save_rois(rois[:1], target, overwrite=True)
    assert len(load_rois(target)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["r.npz"]  # no temporary left behind
    with pytest.raises(ParameterError, match="format"):
        save_rois(rois, tmp_path / "r.csv")
    with pytest.raises(ParameterError, match="format"):
        save_rois(rois, tmp_path / "r.x", format="hdf5")
    with pytest.raises(RecordingError, match="does not exist"):
        save_rois(rois, tmp_path / "missing" / "r.npz")


# ------------------------------------------------------------------------ neurofinder, suite2p
def test_neurofinder_real_file(tmp_path):
    path = shared_data("neurofinder_crop", "regions.json")
    with pytest.raises(RecordingError, match=r"shape=\(ny, nx\)"):
        load_rois(path)
    rois = load_rois(path, shape=(256, 256))
    assert len(rois) == 106 and rois.source[0] == "neurofinder"
    regions = json.loads(path.read_text())
    out = save_rois(rois, tmp_path / "regions.json")
    again = json.loads(out.read_text())
    for r, t in zip(regions, again, strict=True):
        assert t["id"] == r["id"]
        assert sorted(map(tuple, t["coordinates"])) == sorted(map(tuple, r["coordinates"]))
    assert (load_rois(out, shape=(256, 256)).masks != rois.masks).nnz == 0


def test_suite2p_real_folder(tmp_path):
    plane = shared_data("suite2p_output_calscipy", "plane0")
    with pytest.raises(RecordingError, match="allow_pickle=True"):
        load_rois(plane)
    rois = load_rois(plane, allow_pickle=True)
    assert len(rois) == 107 and rois.shape == (512, 512) and int(rois.is_cell.sum()) == 30
    stat = np.load(plane / "stat.npy", allow_pickle=True)
    np.testing.assert_array_equal(rois.area, [s["npix"] for s in stat])
    # the parent folder with one plane, and stat.npy itself, give the same
    for other in (plane.parent, plane / "stat.npy"):
        assert (load_rois(other, allow_pickle=True).masks != rois.masks).nnz == 0
    # stat.npy alone: the size must be given
    shutil.copy(plane / "stat.npy", tmp_path / "stat.npy")
    with pytest.raises(RecordingError, match="shape"):
        load_rois(tmp_path / "stat.npy", allow_pickle=True)
    alone = load_rois(tmp_path / "stat.npy", shape=(512, 512), allow_pickle=True)
    assert alone.is_cell.all()  # no iscell.npy beside it
    np.save(tmp_path / "iscell.npy", np.ones((3, 2)))
    with pytest.raises(RecordingError, match=re.escape("iscell.npy")):
        load_rois(tmp_path / "stat.npy", shape=(512, 512), allow_pickle=True)
    with pytest.raises(RecordingError, match="outside"):
        load_rois(plane / "stat.npy", shape=(100, 100), allow_pickle=True)


def test_suite2p_folder_errors(tmp_path):
    with pytest.raises(RecordingError, match=re.escape("no suite2p stat.npy")):
        load_rois(tmp_path)
    for k in (0, 1):
        (tmp_path / f"plane{k}").mkdir()
        np.save(tmp_path / f"plane{k}" / "stat.npy", np.array([{}], dtype=object))
    with pytest.raises(RecordingError, match="several suite2p planes"):
        load_rois(tmp_path)
    with pytest.raises(RecordingError, match="ypix"):
        load_rois(tmp_path / "plane0" / "stat.npy", shape=(4, 4), allow_pickle=True)


# ------------------------------------------------------------------- Cellpose and label images
def test_label_tif_round_trip_and_cellpose_outputs(tmp_path):
    lab = _labels()
    rois = RoiSet.from_label_image(lab)
    out = save_rois(rois, tmp_path / "labels.tif")
    stored = tifffile.imread(out)
    assert stored.dtype == np.uint32  # 70000 does not fit uint16
    np.testing.assert_array_equal(stored, lab)
    np.testing.assert_array_equal(load_rois(out).to_label_image(), lab)
    small = np.where(lab == 70000, 0, lab).astype(np.uint16)
    save_rois(RoiSet.from_label_image(small), tmp_path / "small.tiff")
    assert tifffile.imread(tmp_path / "small.tiff").dtype == np.uint16
    # Cellpose: label PNG / TIFF, and the pickled _seg.npy
    iio.imwrite(tmp_path / "img_cp_masks.png", small)
    cp = load_rois(tmp_path / "img_cp_masks.png")
    assert cp.source[0] == "cellpose"
    np.testing.assert_array_equal(cp.to_label_image(), small)
    np.save(tmp_path / "img_seg.npy", {"masks": small, "diameter": 12.0}, allow_pickle=True)
    with pytest.raises(RecordingError, match="pickle"):
        load_rois(tmp_path / "img_seg.npy")
    seg = load_rois(tmp_path / "img_seg.npy", allow_pickle=True)
    np.testing.assert_array_equal(seg.to_label_image(), small)
    # a plain label array in .npy needs no pickle
    np.save(tmp_path / "labels.npy", lab.astype(np.int64))
    np.testing.assert_array_equal(load_rois(tmp_path / "labels.npy").to_label_image(), lab)


def test_label_image_errors(tmp_path):
    tifffile.imwrite(
        tmp_path / "movie.tif", np.zeros((3, 8, 8), np.uint16), photometric="minisblack"
    )
    with pytest.raises(RecordingError, match="2-D label image"):
        load_rois(tmp_path / "movie.tif")
    iio.imwrite(tmp_path / "rgb.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(RecordingError, match="RGB"):
        load_rois(tmp_path / "rgb.png")
    tifffile.imwrite(tmp_path / "float.tif", np.full((4, 4), 0.5, np.float32))
    with pytest.raises(RecordingError, match=re.escape("float.tif")):
        load_rois(tmp_path / "float.tif")
    np.save(tmp_path / "x_seg.npy", {"outlines": 1}, allow_pickle=True)
    with pytest.raises(RecordingError, match="'masks'"):
        load_rois(tmp_path / "x_seg.npy", allow_pickle=True)
    np.save(tmp_path / "z_seg.npy", {"masks": np.zeros((2, 4, 4), int)}, allow_pickle=True)
    with pytest.raises(RecordingError, match="one plane"):
        load_rois(tmp_path / "z_seg.npy", allow_pickle=True)


# ------------------------------------------------------------------------------------ ImageJ
def test_imagej_roiset_zip_geometry(tmp_path):
    rect = roifile.ImagejRoi(
        roitype=roifile.ROI_TYPE.RECT, left=2, top=3, right=5, bottom=7, name="rect"
    )
    oval = roifile.ImagejRoi(
        roitype=roifile.ROI_TYPE.OVAL, left=10, top=4, right=19, bottom=11, name="oval"
    )
    tri = roifile.ImagejRoi.frompoints(np.array([[20, 20], [28, 20], [20, 28]]), name="tri")
    tri.roitype = roifile.ROI_TYPE.POLYGON
    line = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.LINE, x1=1, y1=1, x2=5, y2=5, name="ln")
    roifile.roiwrite(tmp_path / "RoiSet.zip", [rect, oval, tri, line])
    with pytest.raises(RecordingError, match="shape="):
        load_rois(tmp_path / "RoiSet.zip")
    with pytest.warns(UserWarning, match="ln"):
        rois = load_rois(tmp_path / "RoiSet.zip", shape=(32, 32))
    assert len(rois) == 3 and rois.source.tolist() == ["imagej"] * 3
    dense = rois.to_dense() > 0
    yy, xx = np.mgrid[:32, :32] + 0.5  # pixel centres in ImageJ coordinates
    # rectangle left=2, top=3, right=5, bottom=7: columns 2..4, rows 3..6
    expect = np.zeros((32, 32), bool)
    expect[3:7, 2:5] = True
    np.testing.assert_array_equal(dense[0], expect)
    ell = ((xx - 14.5) / 4.5) ** 2 + ((yy - 7.5) / 3.5) ** 2 <= 1
    np.testing.assert_array_equal(dense[1], ell)
    tri_in = (xx > 20) & (yy > 20) & (xx + yy < 48)
    np.testing.assert_array_equal(dense[2], tri_in)
    # a single .roi file
    rect.tofile(tmp_path / "one.roi")
    np.testing.assert_array_equal(
        load_rois(tmp_path / "one.roi", shape=(32, 32)).to_dense()[0], expect
    )


def test_imagej_subpixel_and_composite(tmp_path):
    sub = roifile.ImagejRoi.frompoints(
        np.array([[1.2, 1.2], [6.8, 1.2], [6.8, 4.9], [1.2, 4.9]]), name="sub"
    )
    # composite ShapeRoi: square 2..10 with a hole 4..8 (even-odd rule)
    path = [0, 2, 2, 1, 10, 2, 1, 10, 10, 1, 2, 10, 4, 0, 4, 4, 1, 8, 4, 1, 8, 8, 1, 4, 8, 4]
    ring = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, left=2, top=2, right=10, bottom=10)
    ring.multi_coordinates = np.array(path, np.float32)
    ring.shape_roi_size = len(path)
    roifile.roiwrite(tmp_path / "s.zip", [sub, ring], name=["sub", "ring"])
    rois = load_rois(tmp_path / "s.zip", shape=(12, 12))
    expect = np.zeros((12, 12), bool)
    expect[1:5, 1:7] = True  # centres 1.5..4.5 (y) inside 1.2..4.9, 1.5..6.5 (x) in 1.2..6.8
    np.testing.assert_array_equal(rois.to_dense()[0] > 0, expect)
    ring_mask = np.zeros((12, 12), bool)
    ring_mask[2:10, 2:10] = True
    ring_mask[4:8, 4:8] = False
    np.testing.assert_array_equal(rois.to_dense()[1] > 0, ring_mask)
    # partly outside is clipped; wholly outside is skipped with a warning naming it
    far = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, left=50, top=50, right=55, bottom=55)
    far.name = "far"
    edge = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, left=-3, top=9, right=2, bottom=20)
    roifile.roiwrite(tmp_path / "far.zip", [far, edge], name=["far", "edge"])
    with pytest.warns(UserWarning, match="far .covers no pixel"):
        clipped = load_rois(tmp_path / "far.zip", shape=(12, 12))
    assert len(clipped) == 1
    expect = np.zeros((12, 12), bool)
    expect[9:12, 0:2] = True
    np.testing.assert_array_equal(clipped.to_dense()[0] > 0, expect)
    far.tofile(tmp_path / "far.roi")
    with pytest.raises(RecordingError, match="no ROI with pixels"), pytest.warns(UserWarning):
        load_rois(tmp_path / "far.roi", shape=(12, 12))


def test_imagej_edge_rule_matches_java_awt(tmp_path):
    # java.awt insideness (ImageJ's polygon filling): a centre on an edge is inside only when
    # the space just right of it (or below it, on a horizontal edge) is inside.
    # A right triangle whose hypotenuse x + y = 48 runs through pixel centres: those are out.
    tri = roifile.ImagejRoi.frompoints(np.array([[20, 20], [28, 20], [20, 28]]), name="tri")
    tri.roitype = roifile.ROI_TYPE.POLYGON
    # a diamond with vertices at pixel centres in ImageJ coordinates
    dia = roifile.ImagejRoi.frompoints(
        np.array([[5.5, 2.5], [8.5, 5.5], [5.5, 8.5], [2.5, 5.5]]), name="dia"
    )
    roifile.roiwrite(tmp_path / "t.zip", [tri, dia])
    rois = load_rois(tmp_path / "t.zip", shape=(32, 32))
    yy, xx = np.mgrid[:32, :32] + 0.5
    np.testing.assert_array_equal(rois.to_dense()[0] > 0, (xx > 20) & (yy > 20) & (xx + yy < 48))
    d = np.abs(xx - 5.5) + np.abs(yy - 5.5)
    # centres on the left edges (and the left vertex) are in; the apexes and right edges not
    on_edge_in = (d == 3) & (xx < 5.5)
    np.testing.assert_array_equal(rois.to_dense()[1] > 0, (d < 3) | on_edge_in)


def test_imagej_save_round_trip(tmp_path):
    lab = _labels()
    rois = RoiSet.from_label_image(lab)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all these shapes are exact, no loss warning
        out = save_rois(rois, tmp_path / "out.zip")
    names = zipfile.ZipFile(out).namelist()
    assert names == ["0003.roi", "0005.roi", "0017.roi", "70000.roi"]
    back = load_rois(out, shape=lab.shape)
    assert back.ids.tolist() == [1, 2, 3, 4]  # ImageJ ROIs are numbered in file order
    assert (back.binary() != rois.binary()).nnz == 0  # the same pixels, L shape and single pixel
    save_rois(rois[:1], tmp_path / "one.roi", format="imagej")
    assert (load_rois(tmp_path / "one.roi", shape=lab.shape).masks != rois[:1].masks).nnz == 0
    with pytest.raises(ParameterError, match="one ROI"):
        save_rois(rois, tmp_path / "many.roi")
    ring = np.zeros((12, 12), np.int32)
    ring[2:10, 2:10] = 1
    ring[4:8, 4:8] = 0
    with pytest.warns(UserWarning, match="holes"):
        save_rois(RoiSet.from_label_image(ring), tmp_path / "ring.zip")


# ------------------------------------------------------------------------------- bad files
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.zip", b"PK\x03\x04 not really a zip"),
        ("bad.roi", b"Iout\x00\x00 truncated"),
        ("junk.roi", b"hello world, this is not an ImageJ ROI at all" * 3),
        ("bad.json", b"{not json"),
        ("wrong.json", b'{"rois": 3}'),
        ("coords.json", b'[{"id": 1, "coordinates": [[1, 2, 3]]}]'),
        ("bad.npz", b"PK\x05\x06" + b"\x00" * 18),
        ("trunc.npz", b"PK\x03\x04\x14\x00\x00\x00"),
        ("bad.npy", b"\x93NUMPY garbage"),
        ("bad.tif", b"II*\x00garbage"),
        ("bad.png", b"\x89PNG\r\n\x1a\n garbage"),
        ("stat.npy", b"\x93NUMPY\x01\x00"),
        ("notes.txt", b"hello"),
    ],
)
def test_bad_files_raise_recording_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RecordingError) as info:
        load_rois(path, shape=(8, 8), allow_pickle=True)
    assert str(path) in str(info.value)


def test_other_npz_and_missing_paths(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(RecordingError, match="format"):
        load_rois(tmp_path / "other.npz")
    rois = RoiSet.from_label_image(_labels())
    save_rois(rois, tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as z:
        arrays = dict(z)
    arrays["indices"] = arrays["indices"] + 10**6  # pixels beyond the image
    np.savez(tmp_path / "corrupt.npz", **arrays)
    with pytest.raises(RecordingError, match=re.escape("corrupt.npz")):
        load_rois(tmp_path / "corrupt.npz")
    arrays["version"] = np.array(99)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(RecordingError, match="newer"):
        load_rois(tmp_path / "future.npz")
    with pytest.raises(RecordingError, match="no such file"):
        load_rois(tmp_path / "nope.zip", shape=(8, 8))
    np.save(tmp_path / "objects.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(RecordingError, match="pickle"):
        load_rois(tmp_path / "objects.npy")
    with pytest.raises(RecordingError, match="neither"):
        load_rois(tmp_path / "objects.npy", allow_pickle=True)


@pytest.mark.parametrize("ext", ["npz", "zip", "json", "tif"])
def test_corrupted_files_only_raise_recording_error(tmp_path, ext):
    rois = RoiSet.from_label_image(_labels())
    good = save_rois(rois, tmp_path / f"good.{ext}").read_bytes()
    rng = np.random.default_rng(7)
    for k in range(80):
        data = bytearray(good)
        if k % 2:
            data = data[: rng.integers(0, len(data))]
        else:
            for _ in range(rng.integers(1, 8)):
                data[rng.integers(0, len(data))] = rng.integers(0, 256)
        path = tmp_path / f"bad{k}.{ext}"
        path.write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                load_rois(path, shape=_labels().shape)
            except RecordingError as exc:
                assert str(path) in str(exc)

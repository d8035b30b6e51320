"""Read and write ROI files as :class:`~napari_calcium.core.rois.roiset.RoiSet`.

:func:`load_rois` recognises, from the path:

- napari-calcium's own lossless ``*.npz`` (written by :func:`save_rois`);
- neurofinder regions ``*.json``, ``[{"id", "coordinates": [[row, col], ...]}]`` (needs shape=);
- ImageJ / Fiji ROI Manager ``RoiSet.zip`` or a single ``*.roi`` (needs shape=);
- Cellpose ``*_seg.npy`` (a pickle; its ``"masks"`` label image);
- label images: ``*.tif``/``*.tiff``/``*.png`` (e.g. Cellpose ``*_cp_masks.png``), 2-D int ``.npy``;
- suite2p ``stat.npy`` or its folder (``plane0``, or a parent with one plane); the image size
  comes from ``ops.npy`` beside it, ``is_cell`` from ``iscell.npy``.

:func:`save_rois` writes ``.npz`` (lossless), neurofinder ``.json`` (pixel sets), a label image
``.tif`` (one owner per pixel) and an ImageJ ``.zip``/``.roi`` (one polygon outline per ROI).

Pickles: suite2p's ``stat.npy``/``ops.npy`` and Cellpose's ``_seg.npy`` are pickled Python
objects, and unpickling can run arbitrary code, so they are read only with ``allow_pickle=True``,
for files you trust. Our ``.npz`` never holds pickles.

ImageJ geometry: ImageJ coordinates are ``(x, y)`` with integer values on pixel *corners*: pixel
``(row, col)`` covers ``[col, col + 1) x [row, row + 1)`` and its centre is at
``(col + 0.5, row + 0.5)``. A pixel belongs to an area ROI when its centre lies inside it (ImageJ's
own rule; a centre exactly on an edge counts when the inside lies just right of it, or just below
it on a horizontal edge, as in ``java.awt``), so a rectangle ``left=2, top=3, right=5, bottom=7``
covers columns 2..4 and rows 3..6. Ovals are tested analytically at the pixel centres. Polygon,
freehand, traced, rectangle, oval and composite (even-odd) ROIs are read; line and point ROIs are
skipped with a warning, as are ROIs covering no pixel centre; z/t positions and names are not kept.
Every bad file raises :class:`~napari_calcium.errors.RecordingError` naming it, and only
regular files are opened (a named pipe or a device is refused, never waited on).
JSON is read as UTF-8 with or without a byte-order mark.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..core.rois.roiset import RoiSet, check_image_shape
from ..errors import NapariCalciumError, ParameterError, RecordingError
from ._atomic import atomic_output, require_regular_file
from ._serial import (
    READ_ERRORS,
    NpzArrays,
    describe_error,
    open_regular,
    read_json,
    read_npy,
)

__all__ = ["ROI_FORMATS", "load_rois", "save_rois"]

#: Formats :func:`save_rois` writes, and the file extensions that select them.
ROI_FORMATS = {
    "npz": (".npz",),
    "neurofinder": (".json",),
    "labels": (".tif", ".tiff"),
    "imagej": (".zip", ".roi"),
}

_NPZ_MAGIC = "napari-calcium-rois"
_NPZ_VERSION = 1
_MAX_LABEL_PIXELS = 2**28  # a larger "label image" is a corrupt header (or not labels)
_MAX_LABEL = 2**53  # larger label values are not exact in float64, nor usable as ROI ids
_READ_ERRORS = READ_ERRORS  # corrupt zip / TIFF / .npy headers included
_PICKLE_HINT = (
    "is a pickle, and loading a pickle can run arbitrary code. Pass allow_pickle=True only for "
    "files you trust."
)


@contextlib.contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Turn any failure while parsing ``path`` into a RecordingError naming it."""
    try:
        yield
    except RecordingError:
        raise
    except _READ_ERRORS as exc:  # includes our ParameterError / ShapeError (ValueErrors)
        detail = str(exc) if isinstance(exc, NapariCalciumError) else describe_error(exc)
        raise RecordingError(path, f"cannot read it as {what}: {detail}") from exc


def _need_shape(path: Path, shape: Any, what: str) -> tuple[int, int]:
    if shape is None:
        raise RecordingError(
            path,
            f"{what} do not record the image size; pass shape=(ny, nx) (the movie's frame shape)",
        )
    return check_image_shape(shape)


# ---------------------------------------------------------------------------------------- loading
def load_rois(
    path: str | os.PathLike, *, shape: Sequence[int] | None = None, allow_pickle: bool = False
) -> RoiSet:
    """Read ROIs from any supported file (see the module docstring for the list).

    Parameters
    ----------
    path : str or os.PathLike
        ROI file, or a suite2p output folder (``.../plane0``, or its parent with one plane).
    shape : (int, int), optional
        Image shape ``(ny, nx)`` in pixels. Required for neurofinder ``.json`` and ImageJ files,
        which do not record it, and for a suite2p ``stat.npy`` without ``ops.npy`` beside it.
    allow_pickle : bool
        Allow reading pickled files (suite2p ``stat.npy``/``ops.npy``, Cellpose ``_seg.npy``).
        Unpickling can run arbitrary code: only for files you trust.

    Returns
    -------
    RoiSet
        ``source`` says where the ROIs came from (``"suite2p"``, ``"cellpose"``, ``"imagej"``,
        ``"neurofinder"``, ``"labels"`` or what the ``.npz`` stored).

    Raises
    ------
    RecordingError
        Missing, unreadable or malformed file, a pickle without ``allow_pickle=True``, or a
        missing ``shape`` (the message names the file and what to do). Also for a named
        pipe, device or socket (refused before it is opened, so the call never blocks), a
        damaged ``.npy`` header or zip member, and coordinates or arrays that are not numbers.
    """
    p = Path(path)
    if not p.exists():
        raise RecordingError(p, "no such file or folder")
    if p.is_dir():
        return _load_suite2p(_find_stat(p), shape, allow_pickle)
    require_regular_file(p, "ROI file")  # a named pipe or a device: refused, never waited on
    name = p.name.lower()
    if name.endswith(".npz"):
        return _load_npz(p)
    if name.endswith(".json"):
        return _load_neurofinder(p, shape)
    if name.endswith((".zip", ".roi")):
        return _load_imagej(p, shape)
    if name.endswith("_seg.npy"):
        return _load_cellpose_seg(p, allow_pickle)
    if name == "stat.npy":
        return _load_suite2p(p, shape, allow_pickle)
    if name.endswith(".npy"):
        return _load_npy(p, shape, allow_pickle)
    if name.endswith((".tif", ".tiff", ".png")):
        return _load_label_image(p)
    raise RecordingError(
        p,
        "not a ROI file napari-calcium knows; expected .npz, neurofinder .json, ImageJ .zip/.roi, "
        "Cellpose _seg.npy or label image (.tif/.png/.npy), or suite2p stat.npy / its folder",
    )


def _labels_to_rois(path: Path, labels: Any, source: str) -> RoiSet:
    lab = np.asarray(labels)
    if lab.ndim == 3 and lab.shape[0] == 1:
        lab = lab[0]
    if lab.ndim != 2:
        raise RecordingError(
            path, f"not a 2-D label image: array of shape {lab.shape} (one plane is needed)"
        )
    if lab.dtype.kind not in "iubf":
        raise RecordingError(path, f"not a label image: dtype {lab.dtype}")
    if lab.size and lab.dtype.kind in "uf":
        top = lab.max()
        if not (np.isfinite(top) and top <= _MAX_LABEL):
            raise RecordingError(path, f"not a label image: label {top} is not a usable ROI id")
    with _reading(path, "a label image"):
        return RoiSet.from_label_image(lab, source=source)


def _load_label_image(path: Path) -> RoiSet:
    source = "cellpose" if "_cp_masks" in path.name else "labels"
    with _reading(path, "a label image"):
        if path.suffix.lower() == ".png":
            import imageio.v3 as iio

            with open_regular(path, "label image") as fh:
                labels = iio.imread(fh.read(), extension=".png")
            if labels.ndim == 3 and labels.shape[-1] in (3, 4):
                raise RecordingError(path, "a colour (RGB) image is not a label image")
        else:
            import tifffile

            with open_regular(path, "label image") as fh, tifffile.TiffFile(fh) as tif:
                dims = tif.series[0].shape
                if math.prod(dims) > _MAX_LABEL_PIXELS:
                    raise RecordingError(path, f"claims a {dims} image: too large for labels")
                labels = tif.series[0].asarray()
    return _labels_to_rois(path, labels, source)


def _npy_dtype(path: Path) -> np.dtype | None:
    """The dtype in a .npy header, without loading; None if the header is unusual."""
    with _reading(path, "a .npy array"), open_regular(path, "ROI file") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            _, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            return None
    return dtype


def _load_pickle_npy(path: Path, allow_pickle: bool, what: str) -> np.ndarray:
    """A pickled .npy (only with ``allow_pickle=True``); any failure names the file."""
    if allow_pickle is not True:
        raise RecordingError(path, f"{what} {_PICKLE_HINT}")
    with open_regular(path, "pickled .npy file") as fh:
        try:
            obj = np.load(fh, allow_pickle=True)
        except Exception as exc:  # unpickling a damaged file can raise anything
            raise RecordingError(path, f"cannot read it as {what}: {describe_error(exc)}") from exc
    if not isinstance(obj, np.ndarray):
        raise RecordingError(path, f"not {what}: not a .npy array")
    return obj


def _load_npy(path: Path, shape: Any, allow_pickle: bool) -> RoiSet:
    dtype = _npy_dtype(path)
    if dtype is not None and not dtype.hasobject:
        return _labels_to_rois(path, read_npy(path, "a label image"), "labels")
    obj = _load_pickle_npy(path, allow_pickle, "this .npy of Python objects")
    item = obj.item() if obj.ndim == 0 else None
    if isinstance(item, dict) and "masks" in item:
        return _labels_to_rois(path, item["masks"], "cellpose")
    if obj.ndim == 1 and obj.size and isinstance(obj[0], dict) and "ypix" in obj[0]:
        return _load_suite2p(path, shape, allow_pickle)
    raise RecordingError(path, "holds Python objects that are neither suite2p stat nor Cellpose")


def _load_cellpose_seg(path: Path, allow_pickle: bool) -> RoiSet:
    obj = _load_pickle_npy(path, allow_pickle, "Cellpose's _seg.npy")
    seg = obj.item() if obj.ndim == 0 else obj
    if not isinstance(seg, dict) or "masks" not in seg:
        raise RecordingError(path, "not a Cellpose _seg.npy: no 'masks' entry")
    return _labels_to_rois(path, seg["masks"], "cellpose")


def _find_stat(folder: Path) -> Path:
    """``stat.npy`` of a suite2p plane folder, or of the single plane under ``folder``.

    Anything named ``stat.npy`` counts (a named pipe too: the reader then refuses it by name
    instead of this saying there is none).
    """
    for base in (folder, folder / "suite2p"):
        if os.path.lexists(base / "stat.npy"):
            return base / "stat.npy"
        planes = sorted(base.glob("plane*/stat.npy"))
        if len(planes) == 1:
            return planes[0]
        if len(planes) > 1:
            names = ", ".join(q.parent.name for q in planes)
            raise RecordingError(folder, f"holds several suite2p planes ({names}); open one")
    raise RecordingError(folder, "no suite2p stat.npy in this folder (or a plane*/ inside it)")


def _ops_shape(ops_path: Path, allow_pickle: bool) -> tuple[int, int]:
    """``(Ly, Lx)`` from suite2p's ``ops.npy``."""
    ops = _load_pickle_npy(ops_path, allow_pickle, "suite2p's ops.npy")
    ops = ops.item() if ops.ndim == 0 else None
    if not isinstance(ops, dict) or "Ly" not in ops or "Lx" not in ops:
        raise RecordingError(ops_path, "not a suite2p ops.npy: no 'Ly'/'Lx' image size")
    size = (ops["Ly"], ops["Lx"])
    ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in size)
    if not ok or min(size) < 1 or math.prod(size) > _MAX_LABEL_PIXELS:
        raise RecordingError(ops_path, f"Ly, Lx = {size!r:.80} is not a usable image size")
    return int(size[0]), int(size[1])


def _load_iscell(path: Path, n_rois: int) -> np.ndarray:
    """suite2p's ``iscell.npy``: ``(n_rois,)`` or ``(n_rois, 2)`` numbers."""
    iscell = read_npy(path, "suite2p's iscell.npy")
    if iscell.dtype.kind not in "biuf" or iscell.ndim not in (1, 2):
        raise RecordingError(
            path, f"not suite2p's iscell.npy: a {iscell.dtype} array of shape {iscell.shape}"
        )
    if iscell.shape[0] != n_rois:
        raise RecordingError(path, f"has {iscell.shape[0]} rows for {n_rois} ROIs in stat.npy")
    if not np.isfinite(iscell).all():
        raise RecordingError(path, "holds values that are not finite numbers")
    return iscell


def _load_suite2p(stat_path: Path, shape: Any, allow_pickle: bool) -> RoiSet:
    stat = _load_pickle_npy(stat_path, allow_pickle, "suite2p's stat.npy")
    if stat.ndim != 1 or not all(isinstance(s, dict) for s in stat):
        raise RecordingError(stat_path, "not a suite2p stat.npy: expected an array of dicts")
    ops_path = stat_path.with_name("ops.npy")
    if shape is None and os.path.lexists(ops_path):
        shape = _ops_shape(ops_path, allow_pickle)
    elif shape is None:
        raise RecordingError(
            stat_path, "no ops.npy beside it gives the image size; pass shape=(Ly, Lx)"
        )
    iscell = None
    iscell_path = stat_path.with_name("iscell.npy")
    if os.path.lexists(iscell_path):
        iscell = _load_iscell(iscell_path, len(stat))
    with _reading(stat_path, "suite2p's stat.npy"):
        return RoiSet.from_suite2p_stat(list(stat), shape, iscell=iscell)


def _load_neurofinder(path: Path, shape: Any) -> RoiSet:
    shape = _need_shape(path, shape, "neurofinder regions")
    regions = read_json(path, "neurofinder regions JSON")
    if isinstance(regions, dict) and "coordinates" in regions:
        regions = [regions]
    if not isinstance(regions, list) or not all(isinstance(r, dict) for r in regions):
        raise RecordingError(path, 'expected a list of {"id", "coordinates"} objects')
    with _reading(path, "neurofinder regions JSON"):
        return RoiSet.from_neurofinder(regions, shape)


def _npz_member(z: NpzArrays, name: str, kinds: str, shape: tuple | None = None) -> np.ndarray:
    """Array ``name`` of a ROI .npz, of a dtype kind in ``kinds`` (and ``shape``/ndim given)."""
    arr = z[name]
    if shape is None:
        ok = True
    elif isinstance(shape, int):
        ok = arr.ndim == shape
    else:
        ok = arr.shape == shape
    if arr.dtype.kind not in kinds or not ok:
        want = f"ndim {shape}" if isinstance(shape, int) else f"shape {shape}"
        raise RecordingError(
            z.path,
            f"array {name!r} is {arr.dtype} of shape {arr.shape}; expected kind {kinds!r}"
            + ("" if shape is None else f", {want}")
            + ": damaged or not written by napari-calcium",
        )
    return arr


def _load_npz(path: Path) -> RoiSet:
    with _reading(path, "a napari-calcium ROI file"), NpzArrays(path, "ROI file") as z:
        if "format" not in z or str(_npz_member(z, "format", "U", ())) != _NPZ_MAGIC:
            raise RecordingError(path, "not a napari-calcium ROI .npz (no 'format' marker)")
        version = int(_npz_member(z, "version", "iu", ()))
        if version > _NPZ_VERSION:
            raise RecordingError(
                path, f"ROI file version {version} is newer than this napari-calcium reads"
            )
        ny, nx = (int(v) for v in _npz_member(z, "shape", "iu", (2,)))
        if min(ny, nx) < 1 or ny * nx > _MAX_LABEL_PIXELS:
            raise RecordingError(path, f"image shape {(ny, nx)} is not a usable image size")
        indptr = _npz_member(z, "indptr", "iu", 1)
        data = _npz_member(z, "data", "fiu", 1)
        indices = _npz_member(z, "indices", "iu", 1)
        if indptr.size < 1:
            raise RecordingError(path, "array 'indptr' is empty: damaged ROI file")
        masks = sp.csr_array((data, indices, indptr), shape=(indptr.size - 1, ny * nx))
        masks.check_format(full_check=True)
        names = [str(n) for n in _npz_member(z, "score_names", "U", 1)]
        scores = {n: _npz_member(z, f"score_{j}", "fiub", 1) for j, n in enumerate(names)}
        psize = _npz_member(z, "pixel_size_um", "f", (2,))
        return RoiSet(
            masks,
            (ny, nx),
            ids=_npz_member(z, "ids", "iu", 1),
            source=_npz_member(z, "source", "U"),
            is_cell=_npz_member(z, "is_cell", "biu"),
            scores=scores,
            pixel_size_um=None if np.isnan(psize).any() else tuple(psize.tolist()),
        )


# ------------------------------------------------------------------------------------ ImageJ
def _imagej_bounds(roi: Any) -> tuple[float, float, float, float]:
    """``(left, top, right, bottom)`` of a rectangle/oval ROI, sub-pixel when stored so."""
    if getattr(roi, "subpixelrect", False):
        left, top = float(roi.xd), float(roi.yd)
        return left, top, left + float(roi.widthd), top + float(roi.heightd)
    return float(roi.left), float(roi.top), float(roi.right), float(roi.bottom)


def _fill_paths(paths: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Flat indices of the pixels whose centre is inside closed ImageJ ``(x, y)`` paths.

    Even-odd rule over all paths (holes of composite ROIs), and java.awt's rule for centres on
    an edge, as ImageJ fills polygons: inside when the interior lies just right of / below it
    (scan lines ``ymin <= yc < ymax`` and spans ``x_left <= xc < x_right``).
    """
    ny, nx = shape
    edges = []
    for xy in paths:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        if len(xy) >= 3:
            ring = np.vstack([xy, xy[:1]])
            edges.append(np.hstack([ring[:-1], ring[1:]]))
    if not edges:
        return np.zeros(0, np.int64)
    x0, y0, x1, y1 = np.vstack(edges).T
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    lo = np.clip(np.ceil(np.minimum(y0, y1) - 0.5), 0, ny).astype(np.int64)
    hi = np.clip(np.ceil(np.maximum(y0, y1) - 0.5), 0, ny).astype(np.int64)
    counts = hi - lo
    edge = np.repeat(np.arange(x0.size), counts)
    row = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + lo[edge]
    yc = row + 0.5
    xc = x0[edge] + (yc - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((xc, row))
    row, xc = row[order], xc[order]
    out = []
    for r in np.unique(row):
        cross = xc[row == r]
        for a, b in zip(cross[0::2], cross[1::2], strict=False):
            c0 = max(int(np.ceil(a - 0.5)), 0)
            c1 = min(int(np.ceil(b - 0.5)), nx)
            if c1 > c0:
                out.append(r * nx + np.arange(c0, c1))
    return np.unique(np.concatenate(out)) if out else np.zeros(0, np.int64)


def _imagej_pixels(roi: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """Flat pixel indices of one ImageJ area ROI; None for a line or point ROI."""
    import roifile

    kind = roifile.ROI_TYPE(roi.roitype)
    if roi.composite:  # ShapeRoi: sub-paths combined by the even-odd rule
        return _fill_paths(list(roi.coordinates(multi=True)), shape)
    if kind == roifile.ROI_TYPE.OVAL:
        left, top, right, bottom = (v - 0.5 for v in _imagej_bounds(roi))
        corners = np.array([[top, left], [top, right], [bottom, right], [bottom, left]])
        try:
            one = RoiSet.from_shapes([corners], shape, kinds="ellipse")
        except ParameterError:  # outside the image
            return np.zeros(0, np.int64)
        return one.masks.indices.astype(np.int64)
    if kind == roifile.ROI_TYPE.RECT:
        left, top, right, bottom = _imagej_bounds(roi)
        box = np.array([[left, top], [right, top], [right, bottom], [left, bottom]])
        return _fill_paths([box], shape)
    if kind in (roifile.ROI_TYPE.POLYGON, roifile.ROI_TYPE.FREEHAND, roifile.ROI_TYPE.TRACED):
        return _fill_paths([roi.coordinates()], shape)
    return None


def _load_imagej(path: Path, shape: Any) -> RoiSet:
    shape = _need_shape(path, shape, "ImageJ ROI files")
    with _reading(path, "an ImageJ ROI file"):
        import roifile

        found = roifile.roiread(path)
        rois = [found] if isinstance(found, roifile.ImagejRoi) else list(found)
        pixels, skipped = [], []
        for k, roi in enumerate(rois):
            label = roi.name or f"#{k + 1}"
            flat = _imagej_pixels(roi, shape)
            if flat is None:
                skipped.append(f"{label} ({roifile.ROI_TYPE(roi.roitype).name.lower()})")
                continue
            if flat.size == 0:
                skipped.append(f"{label} (covers no pixel centre of the image)")
                continue
            pixels.append(np.divmod(np.unique(flat), shape[1]))
    if skipped:
        warnings.warn(f"{path}: skipped ROIs without area: {', '.join(skipped)}", stacklevel=3)
    if not pixels:
        raise RecordingError(
            path, "holds no ROI with pixels in the image (polygon, rectangle, oval, freehand)"
        )
    return RoiSet.from_pixels(pixels, shape, source="imagej")


def _imagej_rois(rois: RoiSet) -> list[Any]:
    """One sub-pixel polygon ImagejRoi per ROI, from its contour (pixel corners at integers)."""
    import roifile

    out, lossy = [], []
    for i, contour in enumerate(rois.to_contours()):
        rid = int(rois.ids[i])
        if contour.shape[0] < 3:
            raise ParameterError(f"ROI {rid} is empty and cannot be written as an ImageJ ROI")
        roi = roifile.ImagejRoi.frompoints(contour[:, ::-1] + 0.5, name=f"{rid:04d}")
        roi.roitype = roifile.ROI_TYPE.POLYGON
        back = _imagej_pixels(roi, rois.shape)
        start, stop = rois.masks.indptr[i], rois.masks.indptr[i + 1]
        if not np.array_equal(back, rois.masks.indices[start:stop]):
            lossy.append(rid)
        out.append(roi)
    if lossy:
        warnings.warn(
            f"ROIs {lossy} have holes or several pieces; the ImageJ outline keeps the largest "
            "piece without holes",
            stacklevel=3,
        )
    return out


# ---------------------------------------------------------------------------------------- saving
def _npz_arrays(rois: RoiSet) -> dict[str, np.ndarray]:
    m = rois.masks
    psize = rois.pixel_size_um
    arrays = {
        "format": np.array(_NPZ_MAGIC),
        "version": np.array(_NPZ_VERSION),
        "shape": np.array(rois.shape, np.int64),
        "data": m.data.astype(np.float32),
        "indices": m.indices.astype(np.int64),
        "indptr": m.indptr.astype(np.int64),
        "ids": rois.ids.astype(np.int64),
        "source": np.asarray(rois.source, dtype=str),
        "is_cell": rois.is_cell.astype(bool),
        "score_names": np.asarray(list(rois.scores), dtype=str),
        "pixel_size_um": np.array(psize if psize is not None else (np.nan, np.nan), np.float64),
    }
    for j, values in enumerate(rois.scores.values()):
        arrays[f"score_{j}"] = np.asarray(values, np.float64)
    return arrays


def _label_dtype(rois: RoiSet) -> np.dtype:
    top = int(rois.ids.max(initial=0))
    for dt in (np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def save_rois(
    rois: RoiSet,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ROIs to a file, atomically (a temporary file renamed into place).

    Parameters
    ----------
    rois : RoiSet
        The ROIs to write.
    path : str or os.PathLike
        Output file.
    format : {"npz", "neurofinder", "labels", "imagej"}, optional
        Default from the extension: ``.npz``; ``.json``; ``.tif``/``.tiff``; ``.zip``/``.roi``.

        - ``"npz"``: lossless (weights, ids, source, is_cell, scores, pixel size); no pickles.
        - ``"neurofinder"``: ``[{"id", "coordinates": [[row, col], ...]}]``; pixel sets only
          (``id`` from the ``neurofinder_id`` score when present, else the ROI id).
        - ``"labels"``: a 2-D label image (uint16, or uint32 for ids above 65535); weights are
          lost and overlapping pixels go to one ROI (:meth:`RoiSet.to_label_image`).
        - ``"imagej"``: a ROI Manager ``.zip`` (or ``.roi`` for one ROI) of sub-pixel polygons
          tracing each ROI's outline, named by id; a ROI with holes or several pieces keeps its
          largest piece (a warning names them); weights are lost.
    overwrite : bool
        Replace an existing file; otherwise :class:`~napari_calcium.errors.OutputExistsError`.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    ParameterError
        Unknown format, a ``.roi`` file for several ROIs, or an empty ROI for ImageJ.
    """
    p = Path(path)
    if not isinstance(rois, RoiSet):
        raise ParameterError(f"save_rois needs a RoiSet; got {type(rois).__name__}")
    if format is None:
        suffix = p.suffix.lower()
        format = next((k for k, exts in ROI_FORMATS.items() if suffix in exts), None)
        if format is None:
            raise ParameterError(
                f"cannot tell the ROI format from {p.name!r}; use an extension "
                f"({', '.join(e for exts in ROI_FORMATS.values() for e in exts)}) or format="
            )
    if format not in ROI_FORMATS:
        raise ParameterError(f"format must be one of {sorted(ROI_FORMATS)}; got {format!r}")
    payload: Any
    if format == "imagej":
        if p.suffix.lower() == ".roi" and len(rois) != 1:
            raise ParameterError(f"a .roi file holds one ROI; use a .zip for {len(rois)} ROIs")
        payload = _imagej_rois(rois)
    with atomic_output(p, overwrite=overwrite) as tmp:
        if format == "npz":
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **_npz_arrays(rois))
        elif format == "neurofinder":
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(rois.to_neurofinder(), fh)
        elif format == "labels":
            import tifffile

            labels = rois.to_label_image(dtype=_label_dtype(rois))
            tifffile.imwrite(tmp, labels, compression="zlib")
        elif p.suffix.lower() == ".roi":
            tmp.write_bytes(payload[0].tobytes())
        else:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for roi in payload:
                    zf.writestr(f"{roi.name}.roi", roi.tobytes())
    return p

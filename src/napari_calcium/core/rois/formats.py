"""Other ROI descriptions held in memory, decoded to pixel lists and encoded from a ROI set.

- polygons, rectangles and ellipses (napari Shapes, ImageJ ROIs) -> rasterised pixel lists;
- masks -> outline contours (for a Shapes layer);
- suite2p ``stat`` dictionaries (``ypix``, ``xpix``, ``lam``, ``overlap`` ...) <-> pixel lists;
- neurofinder regions (``[{"id", "coordinates": [[row, col], ...]}]``) <-> pixel lists.

The decoders return what :meth:`~.roiset.RoiSet.from_pixels` takes; the classmethods
``RoiSet.from_shapes``, ``RoiSet.from_suite2p_stat`` and ``RoiSet.from_neurofinder`` build the
set. The encoders read a ROI set through its public attributes only. This module imports nothing
from :mod:`.roiset`, so the two never import each other.

Reading and writing the files these come in (``stat.npy``, ``regions.json``, ``RoiSet.zip``,
Cellpose ``_seg.npy``) lives in :mod:`napari_calcium.io.roi_files`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from skimage.draw import polygon as _fill_polygon
from skimage.measure import find_contours

from ...errors import ParameterError, ShapeError

if TYPE_CHECKING:  # annotations only: RoiSet imports this module, never the other way round
    from .roiset import RoiSet

__all__ = [
    "SHAPE_KINDS",
    "ellipse_vertices",
    "neurofinder_to_pixels",
    "rois_to_contours",
    "rois_to_neurofinder",
    "rois_to_suite2p_stat",
    "shapes_to_pixels",
    "suite2p_stat_to_pixels",
]

#: Shape kinds :func:`shapes_to_pixels` understands (napari's names).
SHAPE_KINDS = ("polygon", "rectangle", "ellipse")

# suite2p keys that are recomputed from the masks, or are per-pixel, and so are not carried
# (suite2p's own ellipse-fit "radius" and "compact" are kept as scores "suite2p_radius" and
# "suite2p_compact": the neuropil rule sizes its percentile window from suite2p's radius)
_S2P_RENAME = {"radius": "suite2p_radius", "compact": "suite2p_compact"}
_S2P_SKIP = frozenset(
    {
        "ypix",
        "xpix",
        "lam",
        "overlap",
        "med",
        "npix",
        "neuropil_mask",
        "soma_crop",
        "ipix_neuropil",
        "npix_norm",
        "npix_norm_no_crop",
        "npix_soma",
        "footprint",
        "aspect_ratio",
        "ypix_orig",
        "xpix_orig",
    }
)


def ellipse_vertices(corners: Any, n_points: int = 64) -> np.ndarray:
    """Polygon approximating the ellipse inscribed in a (possibly rotated) bounding box.

    Parameters
    ----------
    corners : array_like, shape (4, 2)
        The box corners in order around the box, ``(y, x)`` (napari's ellipse data).
    n_points : int
        Number of polygon vertices.

    Returns
    -------
    ndarray, shape (n_points, 2)
        ``(y, x)`` vertices.
    """
    c = np.asarray(corners, dtype=np.float64)
    if c.shape != (4, 2):
        raise ShapeError(f"an ellipse needs its 4 bounding-box corners (4, 2); got {c.shape}")
    centre = c.mean(axis=0)
    u = (c[1] - c[0]) / 2.0
    v = (c[3] - c[0]) / 2.0
    t = np.linspace(0.0, 2.0 * np.pi, n_points, endpoint=False)
    return centre + np.cos(t)[:, None] * u + np.sin(t)[:, None] * v


def _rasterise(vertices: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixels whose centres lie inside the polygon; a tiny polygon keeps its nearest pixel."""
    rr, cc = _fill_polygon(vertices[:, 0], vertices[:, 1], shape=shape)
    if rr.size == 0:
        y, x = np.round(vertices.mean(axis=0)).astype(int)
        if 0 <= y < shape[0] and 0 <= x < shape[1]:
            rr, cc = np.array([y]), np.array([x])
    return rr, cc


def _rasterise_ellipse(
    corners: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels whose centres lie inside (or on) the ellipse inscribed in a (rotated) box."""
    centre = corners.mean(axis=0)
    axes = np.stack([(corners[1] - corners[0]) / 2.0, (corners[3] - corners[0]) / 2.0], axis=1)
    if abs(np.linalg.det(axes)) < 1e-12:  # degenerate: no area, keep the nearest pixel
        return _rasterise(corners, shape)
    reach = np.abs(axes).sum(axis=1)
    lo = np.maximum(np.floor(centre - reach), 0).astype(int)
    hi = np.minimum(np.ceil(centre + reach), np.asarray(shape) - 1).astype(int)
    yy, xx = np.mgrid[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1]
    pts = np.stack([yy.ravel() - centre[0], xx.ravel() - centre[1]])
    ab = np.linalg.solve(axes, pts)  # coordinates along the two half-axes
    inside = (ab**2).sum(axis=0) <= 1.0 + 1e-9
    rr, cc = yy.ravel()[inside], xx.ravel()[inside]
    if rr.size == 0:
        return _rasterise(ellipse_vertices(corners), shape)
    return rr, cc


def shapes_to_pixels(
    shapes: Sequence[Any], shape: Sequence[int], *, kinds: Sequence[str] | str = "polygon"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rasterise polygons, rectangles or ellipses into the pixels of binary ROIs.

    :meth:`RoiSet.from_shapes <napari_calcium.RoiSet.from_shapes>` builds the ROI set from them.

    Parameters
    ----------
    shapes : sequence of array_like, each (k, 2)
        Vertices in pixel coordinates ``(y, x)``; for ellipses and rectangles, the 4 corners of
        the bounding box as napari stores them.
    shape : (int, int)
        Image shape ``(ny, nx)``.
    kinds : str or sequence of str
        ``"polygon"``, ``"rectangle"`` or ``"ellipse"``, one for all or one per shape.

    Returns
    -------
    list of (rows, cols)
        One pair of pixel index arrays per shape. A pixel belongs to a ROI when its centre lies
        inside the shape or on its boundary
        (ellipses are tested analytically, not through a polygon); parts outside the image
        are clipped. A shape that covers no pixel centre keeps the pixel nearest its centre;
        one entirely outside the image raises.

    Raises
    ------
    ParameterError
        For an unknown kind or a shape outside the image.
    """
    ny, nx = int(shape[0]), int(shape[1])
    kinds_list = [kinds] * len(shapes) if isinstance(kinds, str) else list(kinds)
    if len(kinds_list) != len(shapes):
        raise ParameterError(f"got {len(kinds_list)} kinds for {len(shapes)} shapes")
    pixels = []
    for i, (verts, kind) in enumerate(zip(shapes, kinds_list, strict=True)):
        v = np.asarray(verts, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 2 or v.shape[0] < 3:
            raise ShapeError(f"shape {i}: expected at least 3 (y, x) vertices; got {v.shape}")
        if kind == "ellipse":
            if v.shape != (4, 2):
                raise ShapeError(f"shape {i}: an ellipse needs its 4 box corners; got {v.shape}")
            rr, cc = _rasterise_ellipse(v, (ny, nx))
        elif kind in ("polygon", "rectangle"):
            rr, cc = _rasterise(v, (ny, nx))
        else:
            raise ParameterError(
                f"shape {i} is a {kind!r}; only {', '.join(SHAPE_KINDS)} enclose an area"
            )
        if rr.size == 0:
            raise ParameterError(f"shape {i} ({kind}) lies outside the {ny}x{nx} image")
        pixels.append((rr, cc))
    return pixels


def rois_to_contours(rois: RoiSet) -> list[np.ndarray]:
    """Outline of each ROI as a closed polygon, for a napari Shapes layer.

    Returns
    -------
    list of ndarray, each (k, 2)
        ``(y, x)`` vertices of the longest iso-contour at 0.5 of the ROI's binary mask
        (the boundary between its pixels and the rest), one per ROI; an empty ROI gives an
        empty (0, 2) array.
    """
    out = []
    nx = rois.shape[1]
    for i in range(len(rois)):
        start, stop = rois.masks.indptr[i], rois.masks.indptr[i + 1]
        if stop == start:
            out.append(np.zeros((0, 2)))
            continue
        ypix, xpix = np.divmod(rois.masks.indices[start:stop].astype(np.int64), nx)
        y0, x0 = ypix.min() - 1, xpix.min() - 1
        box = np.zeros((ypix.max() - y0 + 2, xpix.max() - x0 + 2), np.float32)
        box[ypix - y0, xpix - x0] = 1.0
        contours = find_contours(box, 0.5)
        best = max(contours, key=len)
        out.append(best + np.array([y0, x0], dtype=np.float64))
    return out


#: the largest pixel index accepted from a file (far beyond any image; exact in float64)
_MAX_PIXEL_INDEX = 2**31


def _pixel_indices(values: Any, what: str) -> np.ndarray:
    """Integer pixel indices from decoded file content, or ShapeError saying what is wrong.

    Accepts integers and integral floats (``3.0``); refuses text, null, booleans, nested or
    ragged lists, non-finite or fractional numbers and values beyond any image, so a damaged
    file gets a message about its content instead of numpy's ufunc text.
    """
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise ShapeError(f"{what} must be lists of integer pixel indices") from None
    if arr.dtype.kind not in "iuf":
        sample = arr.ravel()[:1].tolist() if arr.size else []
        example = f" (found {sample[0]!r:.40})" if sample else ""
        raise ShapeError(f"{what} must be integer pixel indices, not {arr.dtype}{example}")
    if arr.size:
        if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ShapeError(f"{what} must be whole numbers (integer pixel indices)")
        if arr.max() >= _MAX_PIXEL_INDEX or arr.min() <= -_MAX_PIXEL_INDEX:
            raise ShapeError(f"{what} hold a pixel index far outside any image ({arr.max()})")
    return arr.astype(np.int64)


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return None


def suite2p_stat_to_pixels(
    stat: Iterable[Mapping[str, Any]], *, iscell: Any = None
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], Any, dict[str, np.ndarray]]:
    """Pixels, weights, classification and scores of suite2p's ``stat`` list (Pachitariu 2017).

    :meth:`RoiSet.from_suite2p_stat <napari_calcium.RoiSet.from_suite2p_stat>` builds the ROI
    set from them.

    Parameters
    ----------
    stat : iterable of dict
        suite2p ROI dictionaries with ``ypix``, ``xpix`` and ``lam``.
    iscell : array_like, shape (n_rois,) or (n_rois, 2), optional
        suite2p's ``iscell.npy``: first column the classification, second the probability
        (kept as score ``iscell_prob``).

    Returns
    -------
    pixels : list of (ypix, xpix, lam)
        ``lam`` weights as they are (float32), ``None`` where an entry has none.
    is_cell : bool or ndarray of bool, (n_rois,)
        ``True`` without ``iscell``.
    scores : dict of str to ndarray, (n_rois,)
        Scalar entries of each dict (``skew``, ``std``, ``snr`` ...), NaN where an entry lacks
        one, except those recomputed from the masks (``npix``, ``radius``, ``compact``,
        ``med``); suite2p's ``radius``/``compact`` come as ``suite2p_radius``/``suite2p_compact``.
    """
    stat = list(stat)
    pixels = []
    score_keys: dict[str, list[float]] = {}
    for i, s in enumerate(stat):
        try:
            ypix, xpix = s["ypix"], s["xpix"]
        except (KeyError, TypeError, IndexError):
            raise ParameterError(f"suite2p stat entry {i} has no 'ypix'/'xpix'") from None
        ypix = _pixel_indices(ypix, f"suite2p stat entry {i}: ypix")
        xpix = _pixel_indices(xpix, f"suite2p stat entry {i}: xpix")
        lam = s.get("lam") if hasattr(s, "get") else None
        if lam is not None:
            lam = _weights(lam, f"suite2p stat entry {i}: lam")
        pixels.append((ypix, xpix, lam))
        for key, value in s.items():
            v = _scalar(value)
            key = _S2P_RENAME.get(key, key)
            if v is None or key in _S2P_SKIP:
                continue
            score_keys.setdefault(key, [np.nan] * len(stat))[i] = v
    is_cell: Any = True
    scores = {k: np.asarray(v) for k, v in score_keys.items()}
    if iscell is not None:
        arr = np.asarray(iscell, dtype=np.float64)
        if arr.shape[0] != len(stat):
            raise ShapeError(f"iscell has {arr.shape[0]} rows for {len(stat)} ROIs")
        is_cell = arr[:, 0] > 0.5 if arr.ndim == 2 else arr > 0.5
        if arr.ndim == 2 and arr.shape[1] > 1:
            scores["iscell_prob"] = arr[:, 1]
    return pixels, is_cell, scores


def _weights(values: Any, what: str) -> np.ndarray:
    """Pixel weights as float32, or ShapeError when they are not real numbers."""
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise ShapeError(f"{what} must be a list of numbers") from None
    if arr.dtype.kind not in "biuf":
        raise ShapeError(f"{what} must be numbers, not {arr.dtype}")
    return arr.astype(np.float32)


def _overlap_flags(rois: RoiSet) -> np.ndarray:
    """Per stored pixel: does another ROI also contain it?"""
    m = rois.masks
    counts = np.bincount(m.indices, minlength=m.shape[1])
    return counts[m.indices] > 1


def rois_to_suite2p_stat(rois: RoiSet) -> list[dict[str, Any]]:
    """suite2p ``stat`` dictionaries: ``ypix``, ``xpix``, ``lam``, ``npix``, ``med``,
    ``radius``, ``compact``, ``overlap``, plus every score.

    Pixels come in row-major order; ``lam`` is float32 as stored, so
    ``RoiSet.from_suite2p_stat(stat, shape)`` then this function returns the same pixels and
    weights.
    """
    overlap = _overlap_flags(rois)
    out = []
    for i in range(len(rois)):
        ypix, xpix, lam = rois.pixels(i)
        start, stop = rois.masks.indptr[i], rois.masks.indptr[i + 1]
        entry: dict[str, Any] = {
            "ypix": ypix.astype(np.int32),
            "xpix": xpix.astype(np.int32),
            "lam": lam.astype(np.float32),
            "npix": int(ypix.size),
            "med": [float(np.median(ypix)), float(np.median(xpix))] if ypix.size else [np.nan] * 2,
            "radius": float(rois.radius[i]),
            "compact": float(rois.compactness[i]),
            "overlap": overlap[start:stop].copy(),
        }
        for key, values in rois.scores.items():
            entry[key] = float(values[i])
        out.append(entry)
    return out


def neurofinder_to_pixels(
    regions: Iterable[Mapping[str, Any]],
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[float]]:
    """Pixels and ids of neurofinder regions: ``[{"id": int, "coordinates": [[row, col], ...]}]``.

    :meth:`RoiSet.from_neurofinder <napari_calcium.RoiSet.from_neurofinder>` builds the ROI set:
    coordinates outside the image are an error there (crop the regions first), ROI ids are 1..n
    in file order and the file's own ids (returned here) are kept as score ``neurofinder_id``.
    """
    regions = list(regions)
    pixels, nf_ids = [], []
    for i, r in enumerate(regions):
        try:
            coords = r["coordinates"]
        except (KeyError, TypeError, IndexError):
            raise ParameterError(f"neurofinder region {i} has no 'coordinates'") from None
        rc = _pixel_indices(coords, f"neurofinder region {i}: coordinates")
        if rc.size == 0:
            rc = rc.reshape(0, 2)
        if rc.ndim != 2 or rc.shape[1] != 2:
            raise ShapeError(f"neurofinder region {i}: coordinates must be [[row, col], ...]")
        pixels.append((rc[:, 0], rc[:, 1]))
        rid = r.get("id", i) if hasattr(r, "get") else i
        if rid is None or isinstance(rid, bool) or not isinstance(rid, numbers.Real):
            raise ParameterError(f"neurofinder region {i}: id must be a number; got {rid!r:.40}")
        nf_ids.append(float(rid))
    return pixels, nf_ids


def rois_to_neurofinder(rois: RoiSet) -> list[dict[str, Any]]:
    """neurofinder regions (``id`` from score ``neurofinder_id`` when present, else the ROI id)."""
    nf = rois.scores.get("neurofinder_id")
    out = []
    for i in range(len(rois)):
        ypix, xpix, _ = rois.pixels(i)
        rid = int(nf[i]) if nf is not None and np.isfinite(nf[i]) else int(rois.ids[i])
        coords = np.stack([ypix, xpix], axis=1).tolist()
        out.append({"id": rid, "coordinates": coords})
    return out

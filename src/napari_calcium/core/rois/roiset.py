"""ROI sets: sparse weighted masks plus a per-ROI table.

A :class:`RoiSet` is the one source of truth for regions of interest. Its masks are a
CSR sparse matrix of shape ``(n_rois, ny * nx)``: row ``i`` holds the non-negative weights of ROI
``i`` over the flattened image (pixel index ``y * nx + x``), as suite2p's ``lam`` do. Weighted and
overlapping masks are allowed, which a napari Labels layer cannot hold; label images, Shapes
contours, suite2p ``stat`` lists and neurofinder regions are views converted to and from it
(:mod:`.formats`).

Example
-------
>>> import numpy as np
>>> labels = np.zeros((6, 8), np.int32)
>>> labels[1:3, 1:3] = 4
>>> labels[3:5, 5:8] = 9
>>> rois = RoiSet.from_label_image(labels)
>>> rois.ids.tolist(), rois.area.tolist()
([4, 9], [4, 6])
>>> bool((rois.to_label_image() == labels).all())
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...errors import ParameterError, ShapeError
from . import formats as _formats

__all__ = ["RoiSet"]

PixelTriple = tuple[Any, Any, Any]


def check_image_shape(shape: Any) -> tuple[int, int]:
    """``(ny, nx)`` as positive ints, or :class:`ShapeError` naming what was given."""
    try:
        ny, nx = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ShapeError(f"ROI image shape must be (ny, nx); got {shape!r}") from None
    if ny < 1 or nx < 1:
        raise ShapeError(f"ROI image shape must be positive; got {(ny, nx)}")
    return ny, nx


def _as_column(values: Any, n: int, name: str, dtype: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim == 0:
        arr = np.full(n, arr, dtype=arr.dtype)
    if arr.shape != (n,):
        raise ShapeError(f"{name} must have one value per ROI ({n}); got shape {arr.shape}")
    return arr


def _row_reduce(ufunc: np.ufunc, data: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """``ufunc.reduce`` over each CSR row's data; 0 for empty rows."""
    n = indptr.size - 1
    out = np.zeros(n, dtype=np.result_type(data.dtype, np.float32))
    nonempty = np.diff(indptr) > 0
    if data.size:
        out[nonempty] = ufunc.reduceat(data, indptr[:-1][nonempty])
    return out


def _disk_mean_radius(npix: np.ndarray) -> np.ndarray:
    """Mean centre distance of the ``npix`` pixels nearest a pixel centre (a digital disk)."""
    if npix.size == 0:
        return np.zeros(0)
    top = int(max(npix.max(), 1))
    r = int(np.ceil(np.sqrt(top / np.pi))) + 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    dist = np.sort(np.hypot(yy, xx).ravel())[:top]
    csum = np.concatenate([[0.0], np.cumsum(dist)])
    npix = np.maximum(npix, 1)
    return csum[npix] / npix


@dataclass(frozen=True, eq=False)
class RoiSet:
    """Regions of interest as sparse weighted masks plus a per-ROI table.

    Parameters
    ----------
    masks : scipy.sparse matrix or array, shape (n_rois, ny * nx)
        Non-negative pixel weights, one row per ROI; pixel index ``y * nx + x``. Stored as a
        float32 ``csr_array`` with sorted indices and no explicit zeros.
    shape : (int, int)
        Image shape ``(ny, nx)`` in pixels.
    ids : array_like of int, shape (n_rois,), optional
        Unique positive ROI ids (the label values in a label image). Default ``1..n_rois``.
    source : str or array_like of str, optional
        Where each ROI came from (``"labels"``, ``"detected"``, ``"shapes"``, ``"suite2p"`` ...).
    is_cell : bool or array_like of bool, optional
        Classification flag per ROI (default True).
    scores : mapping of str to array_like, optional
        Numeric per-ROI columns (quality scores such as ``snr`` or ``r_value``).
    pixel_size_um : (float, float), optional
        Pixel size ``(dy, dx)`` in micrometres; adds ``area_um2`` to :attr:`table`.

    Notes
    -----
    ROIs are immutable; methods return new sets. ``rois[index]`` takes a subset (int array, bool
    mask or slice), :meth:`with_scores` adds columns.
    """

    masks: sp.csr_array
    shape: tuple[int, int]
    ids: np.ndarray = None  # type: ignore[assignment]
    source: np.ndarray = "manual"  # type: ignore[assignment]
    is_cell: np.ndarray = True  # type: ignore[assignment]
    scores: Mapping[str, np.ndarray] = field(default_factory=dict)
    pixel_size_um: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        shape = check_image_shape(self.shape)
        npx = shape[0] * shape[1]
        if not sp.issparse(self.masks):
            dense = np.asarray(self.masks)
            if dense.ndim == 1 and dense.size == 0:
                dense = dense.reshape(0, npx)
            masks = sp.csr_array(dense.reshape(dense.shape[0], -1) if dense.ndim == 3 else dense)
        else:
            masks = sp.csr_array(self.masks)
        if masks.ndim != 2 or masks.shape[1] != npx:
            raise ShapeError(
                f"ROI masks have shape {masks.shape}; expected (n_rois, {npx}) for an image of "
                f"shape {shape} (pixel index y * nx + x)"
            )
        masks = masks.astype(np.float32)
        masks.sum_duplicates()
        data = masks.data
        if data.size and (not np.isfinite(data).all() or (data < 0).any()):
            raise ParameterError("ROI mask weights must be finite and non-negative")
        masks.eliminate_zeros()
        masks.sort_indices()
        n = masks.shape[0]
        ids = np.arange(1, n + 1) if self.ids is None else self.ids
        ids = _as_column(ids, n, "ids", np.int64)
        if n and (ids.min() < 1 or np.unique(ids).size != n):
            raise ParameterError("ROI ids must be unique positive integers")
        source = _as_column(self.source, n, "source", object).astype(str)
        is_cell = _as_column(self.is_cell, n, "is_cell", bool)
        scores = {}
        for key, values in dict(self.scores).items():
            if key in _BUILTIN_COLUMNS:
                raise ParameterError(f"score name {key!r} clashes with a built-in ROI column")
            scores[str(key)] = _as_column(values, n, f"score {key!r}", np.float64)
        psize = None
        if self.pixel_size_um is not None:
            psize = tuple(float(v) for v in np.broadcast_to(self.pixel_size_um, (2,)))
            if not all(np.isfinite(psize)) or min(psize) <= 0:
                raise ParameterError(f"pixel_size_um must be positive; got {self.pixel_size_um}")
        for name, value in (
            ("masks", masks),
            ("shape", shape),
            ("ids", ids),
            ("source", source),
            ("is_cell", is_cell),
            ("scores", scores),
            ("pixel_size_um", psize),
        ):
            object.__setattr__(self, name, value)
        for arr in (ids, source, is_cell, *scores.values()):
            arr.flags.writeable = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, shape: Sequence[int], **kwargs: Any) -> RoiSet:
        """A set with no ROIs over an image of ``shape``."""
        shape = check_image_shape(shape)
        return cls(sp.csr_array((0, shape[0] * shape[1]), dtype=np.float32), shape, **kwargs)

    @classmethod
    def from_pixels(
        cls,
        pixels: Iterable[PixelTriple | tuple[Any, Any]],
        shape: Sequence[int],
        *,
        ids: Any = None,
        source: Any = "manual",
        is_cell: Any = True,
        scores: Mapping[str, Any] | None = None,
        pixel_size_um: Any = None,
    ) -> RoiSet:
        """Build from per-ROI pixel lists ``(ypix, xpix[, lam])``.

        Parameters
        ----------
        pixels : iterable of (ypix, xpix) or (ypix, xpix, lam)
            Integer row and column indices of each ROI's pixels and optional weights (default 1).
            Repeated pixels have their weights summed.
        shape : (int, int)
            Image shape ``(ny, nx)``.
        ids, source, is_cell, scores, pixel_size_um
            As for :class:`RoiSet`.

        Raises
        ------
        ShapeError
            If a pixel lies outside the image or the arrays of one ROI differ in length.
        """
        ny, nx = check_image_shape(shape)
        rows, cols, vals = [], [], []
        n = 0
        for i, item in enumerate(pixels):
            ypix = np.asarray(item[0]).ravel()
            xpix = np.asarray(item[1]).ravel()
            lam = item[2] if len(item) > 2 else None
            lam = np.ones(ypix.size, np.float32) if lam is None else np.asarray(lam).ravel()
            if not (ypix.size == xpix.size == lam.size):
                raise ShapeError(
                    f"ROI {i}: ypix, xpix and lam have different lengths "
                    f"({ypix.size}, {xpix.size}, {lam.size})"
                )
            integral = np.issubdtype(ypix.dtype, np.integer) and np.issubdtype(
                xpix.dtype, np.integer
            )
            if ypix.size and not integral:
                ok = np.all(ypix == np.round(ypix)) and np.all(xpix == np.round(xpix))
                if not ok:
                    raise ShapeError(f"ROI {i}: pixel coordinates must be integers")
            ypix = ypix.astype(np.int64)
            xpix = xpix.astype(np.int64)
            if ypix.size and (
                ypix.min() < 0 or xpix.min() < 0 or ypix.max() >= ny or xpix.max() >= nx
            ):
                raise ShapeError(f"ROI {i} has pixels outside the {ny}x{nx} image")
            rows.append(np.full(ypix.size, i, np.int64))
            cols.append(ypix * nx + xpix)
            vals.append(lam.astype(np.float32))
            n = i + 1
        if n == 0:
            rows, cols, vals = [np.zeros(0, np.int64)] * 2 + [np.zeros(0, np.float32)]
        masks = sp.coo_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, ny * nx),
        ).tocsr()
        return cls(
            masks,
            (ny, nx),
            ids=ids,
            source=source,
            is_cell=is_cell,
            scores=scores or {},
            pixel_size_um=pixel_size_um,
        )

    @classmethod
    def from_label_image(
        cls, labels: Any, *, source: Any = "labels", pixel_size_um: Any = None
    ) -> RoiSet:
        """One ROI per non-zero label value; ROI order follows the label ids (ascending).

        Parameters
        ----------
        labels : array_like of int, shape (y, x)
            Label image (0 = background), e.g. a napari Labels layer's data or Cellpose masks.

        Returns
        -------
        RoiSet
            Binary masks (weight 1); ``ids`` are the label values, so
            ``RoiSet.from_label_image(lab).to_label_image()`` equals ``lab``.
        """
        lab = np.asarray(labels)
        if lab.ndim != 2:
            raise ShapeError(f"label image must be 2-D (y, x); got shape {lab.shape}")
        if lab.dtype.kind not in "iub":
            if lab.dtype.kind == "f" and np.all(np.isfinite(lab)) and np.all(lab == np.round(lab)):
                lab = lab.astype(np.int64)
            else:
                raise ParameterError(f"label image must hold integers; got dtype {lab.dtype}")
        if lab.dtype.kind == "i" and lab.size and lab.min() < 0:
            raise ParameterError("label image has negative labels")
        flat = lab.ravel().astype(np.int64)
        pix = np.flatnonzero(flat)
        values = flat[pix]
        ids, row = np.unique(values, return_inverse=True)
        masks = sp.csr_array(
            (np.ones(pix.size, np.float32), (row, pix)), shape=(ids.size, flat.size)
        )
        return cls(masks, lab.shape, ids=ids, source=source, pixel_size_um=pixel_size_um)

    @classmethod
    def from_dense(cls, weights: Any, **kwargs: Any) -> RoiSet:
        """Build from a dense stack of masks, shape ``(n_rois, y, x)`` (bool or weights)."""
        w = np.asarray(weights)
        if w.ndim != 3:
            raise ShapeError(f"dense masks must be (n_rois, y, x); got shape {w.shape}")
        flat = w.reshape(w.shape[0], -1).astype(np.float32)
        return cls(sp.csr_array(flat), w.shape[1:], **kwargs)

    @classmethod
    def from_shapes(
        cls,
        shapes: Sequence[Any],
        shape: Sequence[int],
        *,
        kinds: Sequence[str] | str = "polygon",
        ids: Any = None,
        source: str = "shapes",
        pixel_size_um: Any = None,
    ) -> RoiSet:
        """Rasterise polygons, rectangles or ellipses into binary ROIs.

        Parameters
        ----------
        shapes : sequence of array_like, each (k, 2)
            Vertices in pixel coordinates ``(y, x)``; for ellipses and rectangles, the 4 corners
            of the bounding box as napari stores them.
        shape : (int, int)
            Image shape ``(ny, nx)``.
        kinds : str or sequence of str
            ``"polygon"``, ``"rectangle"`` or ``"ellipse"``, one for all or one per shape.
        ids, source, pixel_size_um
            As for :meth:`from_pixels`.

        Returns
        -------
        RoiSet
            A pixel belongs to a ROI when its centre lies inside the shape or on its boundary
            (see :func:`~.formats.shapes_to_pixels`); parts outside the image are clipped.

        Raises
        ------
        ParameterError
            For an unknown kind or a shape outside the image.
        """
        ny, nx = int(shape[0]), int(shape[1])
        pixels = _formats.shapes_to_pixels(shapes, (ny, nx), kinds=kinds)
        if not pixels:
            return cls.empty((ny, nx), pixel_size_um=pixel_size_um)
        return cls.from_pixels(
            pixels, (ny, nx), ids=ids, source=source, pixel_size_um=pixel_size_um
        )

    @classmethod
    def from_suite2p_stat(
        cls,
        stat: Iterable[Mapping[str, Any]],
        shape: Sequence[int],
        *,
        iscell: Any = None,
        source: str = "suite2p",
    ) -> RoiSet:
        """ROIs from suite2p's ``stat`` list (Pachitariu et al. 2017).

        Parameters
        ----------
        stat : iterable of dict
            suite2p ROI dictionaries with ``ypix``, ``xpix`` and ``lam``.
        shape : (int, int)
            ``(ops["Ly"], ops["Lx"])``.
        iscell : array_like, shape (n_rois,) or (n_rois, 2), optional
            suite2p's ``iscell.npy``: first column the classification, second the probability
            (kept as score ``iscell_prob``).

        Returns
        -------
        RoiSet
            ``lam`` weights as they are (float32); scalar entries of each dict (``skew``,
            ``std``, ``snr`` ...) become scores, except those recomputed from the masks
            (``npix``, ``radius``, ``compact``, ``med``); see
            :func:`~.formats.suite2p_stat_to_pixels`.
        """
        pixels, is_cell, scores = _formats.suite2p_stat_to_pixels(stat, iscell=iscell)
        scores = {k: v for k, v in scores.items() if k not in _BUILTIN_COLUMNS}
        if not pixels:
            return cls.empty(shape)
        return cls.from_pixels(pixels, shape, source=source, is_cell=is_cell, scores=scores)

    @classmethod
    def from_neurofinder(
        cls,
        regions: Iterable[Mapping[str, Any]],
        shape: Sequence[int],
        *,
        source: str = "neurofinder",
    ) -> RoiSet:
        """ROIs from neurofinder regions: ``[{"id": int, "coordinates": [[row, col], ...]}]``.

        Coordinates outside the image are an error (crop the regions first). ROI ids are 1..n
        in file order; the file's own ids are kept as score ``neurofinder_id``.
        """
        pixels, nf_ids = _formats.neurofinder_to_pixels(regions)
        if not pixels:
            return cls.empty(shape)
        return cls.from_pixels(pixels, shape, source=source, scores={"neurofinder_id": nf_ids})

    def to_suite2p_stat(self) -> list[dict[str, Any]]:
        """suite2p ``stat`` dicts; see :func:`.formats.rois_to_suite2p_stat`."""
        return _formats.rois_to_suite2p_stat(self)

    def to_neurofinder(self) -> list[dict[str, Any]]:
        """neurofinder regions; see :func:`.formats.rois_to_neurofinder`."""
        return _formats.rois_to_neurofinder(self)

    def to_contours(self) -> list[np.ndarray]:
        """Outline polygons ``(k, 2)`` in ``(y, x)``; see :func:`.formats.rois_to_contours`."""
        return _formats.rois_to_contours(self)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def n_rois(self) -> int:
        """Number of ROIs."""
        return len(self)

    def __repr__(self) -> str:
        return f"RoiSet({len(self)} ROIs over {self.shape[0]}x{self.shape[1]} px)"

    def __getitem__(self, index: Any) -> RoiSet:
        """A subset, in the order of ``index`` (int array, bool mask or slice)."""
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        return self._replace_rows(idx)

    def _replace_rows(self, idx: np.ndarray) -> RoiSet:
        return RoiSet(
            self.masks[idx],
            self.shape,
            ids=self.ids[idx],
            source=self.source[idx],
            is_cell=self.is_cell[idx],
            scores={k: v[idx] for k, v in self.scores.items()},
            pixel_size_um=self.pixel_size_um,
        )

    def replace(self, **changes: Any) -> RoiSet:
        """A copy with some fields changed (``ids``, ``source``, ``is_cell``, ``scores`` ...)."""
        fields = {
            "masks": self.masks,
            "shape": self.shape,
            "ids": self.ids,
            "source": self.source,
            "is_cell": self.is_cell,
            "scores": self.scores,
            "pixel_size_um": self.pixel_size_um,
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise ParameterError(f"RoiSet has no field(s) {sorted(unknown)}")
        fields.update(changes)
        return RoiSet(**fields)

    def with_scores(self, **columns: Any) -> RoiSet:
        """A copy with score columns added or replaced (one value per ROI each)."""
        return self.replace(scores={**self.scores, **columns})

    def pixels(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ypix, xpix, lam)`` of ROI ``i`` (row-major pixel order)."""
        start, stop = self.masks.indptr[i], self.masks.indptr[i + 1]
        flat = self.masks.indices[start:stop]
        ypix, xpix = np.divmod(flat.astype(np.int64), self.shape[1])
        return ypix, xpix, self.masks.data[start:stop].copy()

    def index_of(self, roi_id: int) -> int:
        """Row index of the ROI with id ``roi_id``."""
        hits = np.flatnonzero(self.ids == int(roi_id))
        if hits.size == 0:
            raise ParameterError(f"no ROI with id {roi_id}")
        return int(hits[0])

    def binary(self) -> sp.csr_array:
        """The masks as 0/1 float32 (every pixel with a positive weight)."""
        out = self.masks.copy()
        out.data[:] = 1.0
        return out

    def to_dense(self) -> np.ndarray:
        """Dense weights, shape ``(n_rois, y, x)`` float32 (mind the memory for many ROIs)."""
        return self.masks.toarray().reshape(len(self), *self.shape)

    def to_label_image(self, dtype: Any = None) -> np.ndarray:
        """Render as a label image, shape ``(y, x)``, pixel value = ROI id, 0 = background.

        Where ROIs overlap, the pixel goes to the ROI whose weight there is highest relative to
        its own peak weight (ties: the earlier ROI). ``dtype`` defaults to int32 (int64 for ids
        beyond its range).
        """
        if dtype is None:
            dtype = np.int32 if (not len(self) or self.ids.max() < 2**31) else np.int64
        out = np.zeros(self.shape[0] * self.shape[1], dtype=dtype)
        m = self.masks
        if m.nnz == 0:
            return out.reshape(self.shape)
        rows = np.repeat(np.arange(len(self)), np.diff(m.indptr))
        peak = _row_reduce(np.maximum, m.data, m.indptr)
        rel = m.data / np.maximum(peak[rows], np.finfo(np.float32).tiny)
        # sort so that for every pixel the winner comes last: by pixel, then rel, then -row
        order = np.lexsort((-rows, rel, m.indices))
        pix = m.indices[order]
        last = np.ones(pix.size, bool)
        last[:-1] = pix[1:] != pix[:-1]
        out[pix[last]] = self.ids[rows[order][last]]
        return out.reshape(self.shape)

    # ------------------------------------------------------------------ per-ROI geometry
    @cached_property
    def area(self) -> np.ndarray:
        """Number of pixels per ROI, shape (n_rois,) int64."""
        return np.diff(self.masks.indptr).astype(np.int64)

    @cached_property
    def centroids(self) -> np.ndarray:
        """Weighted centroids ``(y, x)`` in pixels, shape (n_rois, 2) float64 (NaN if empty)."""
        m = self.masks
        ypix, xpix = np.divmod(m.indices.astype(np.int64), self.shape[1])
        w = m.data.astype(np.float64)
        tot = _row_reduce(np.add, w, m.indptr)
        out = np.full((len(self), 2), np.nan)
        nonempty = self.area > 0
        if m.nnz:
            sy = _row_reduce(np.add, w * ypix, m.indptr)
            sx = _row_reduce(np.add, w * xpix, m.indptr)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[nonempty, 0] = (sy / tot)[nonempty]
                out[nonempty, 1] = (sx / tot)[nonempty]
        return out

    @cached_property
    def radius(self) -> np.ndarray:
        """Equivalent-disk radius ``sqrt(area / pi)`` in pixels, shape (n_rois,)."""
        return np.sqrt(self.area / np.pi)

    @cached_property
    def compactness(self) -> np.ndarray:
        """Mean pixel distance from the centroid over that of a digital disk of the same area.

        1 for a disk, larger for elongated or scattered ROIs (suite2p's ``compact`` idea).
        """
        m = self.masks
        if m.nnz == 0:
            return np.full(len(self), np.nan)
        rows = np.repeat(np.arange(len(self)), np.diff(m.indptr))
        ypix, xpix = np.divmod(m.indices.astype(np.int64), self.shape[1])
        c = self.centroids
        d = np.hypot(ypix - c[rows, 0], xpix - c[rows, 1])
        nonempty = self.area > 0
        mean_d = np.zeros(len(self))
        mean_d[nonempty] = _row_reduce(np.add, d, m.indptr)[nonempty] / self.area[nonempty]
        disk = _disk_mean_radius(self.area)
        out = np.full(len(self), np.nan)
        ok = nonempty & (disk > 0)
        out[ok] = mean_d[ok] / disk[ok]
        out[nonempty & (disk == 0)] = 1.0
        return out

    @property
    def table(self) -> dict[str, np.ndarray]:
        """Per-ROI table as columns: id, area, centroid, radius, compactness, source, is_cell,
        then the scores (and ``area_um2`` when the pixel size is known)."""
        cols: dict[str, np.ndarray] = {
            "id": self.ids,
            "area": self.area,
            "centroid_y": self.centroids[:, 0],
            "centroid_x": self.centroids[:, 1],
            "radius": self.radius,
            "compactness": self.compactness,
        }
        if self.pixel_size_um is not None:
            cols["area_um2"] = self.area * self.pixel_size_um[0] * self.pixel_size_um[1]
        cols["source"] = self.source
        cols["is_cell"] = self.is_cell
        cols.update(self.scores)
        return cols

    # ------------------------------------------------------------------ combining
    def concat(self, other: RoiSet, *, renumber: bool = True) -> RoiSet:
        """This set followed by ``other`` (same image shape); clashing ids of ``other`` are
        renumbered after the largest id when ``renumber`` (else an error)."""
        if tuple(other.shape) != tuple(self.shape):
            raise ShapeError(f"cannot join ROI sets over {self.shape} and {other.shape} images")
        ids = other.ids.copy()
        clash = np.isin(ids, self.ids)
        if clash.any():
            if not renumber:
                raise ParameterError(f"ROI ids {ids[clash].tolist()} occur in both sets")
            start = int(max(self.ids.max(initial=0), ids.max(initial=0))) + 1
            ids[clash] = np.arange(start, start + int(clash.sum()))
        keys = set(self.scores) | set(other.scores)
        n1, n2 = len(self), len(other)
        scores = {
            k: np.concatenate(
                [self.scores.get(k, np.full(n1, np.nan)), other.scores.get(k, np.full(n2, np.nan))]
            )
            for k in keys
        }
        return RoiSet(
            sp.vstack([self.masks, other.masks], format="csr"),
            self.shape,
            ids=np.concatenate([self.ids, ids]),
            source=np.concatenate([self.source, other.source]),
            is_cell=np.concatenate([self.is_cell, other.is_cell]),
            scores=scores,
            pixel_size_um=self.pixel_size_um or other.pixel_size_um,
        )


_BUILTIN_COLUMNS = frozenset(
    {
        "id",
        "area",
        "area_um2",
        "centroid_y",
        "centroid_x",
        "radius",
        "compactness",
        "source",
        "is_cell",
        "index",
    }
)

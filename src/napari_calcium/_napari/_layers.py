"""Recording metadata -> napari layer keyword arguments (scale, units, axis labels, metadata).

Thin conversion only: no computation. Every layer napari-calcium makes carries the recording's
metadata under ``layer.metadata["napari_calcium"]`` so downstream widgets read the frame rate and
pixel size from there instead of asking the user again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METADATA_KEY = "napari_calcium"


def _spatial_scale(metadata: Mapping[str, Any]) -> tuple[tuple[float, float], str]:
    px = metadata.get("pixel_size_um")
    if px is None:
        return (1.0, 1.0), "pixel"
    if not isinstance(px, (tuple, list)):
        px = (px, px)
    return (float(px[0]), float(px[1])), "micrometer"


def movie_layer_kwargs(metadata: Mapping[str, Any], *, name: str, ndim: int = 3) -> dict:
    """Keyword arguments for an Image layer holding a ``(frames, y, x)`` movie.

    Time is scaled to seconds when the frame rate is known, space to µm when the pixel size is.
    No contrast limits: the caller sets them from sampled frames (``_reader.display_range``), as
    the bit depth's full range leaves real recordings almost black.
    """
    (sy, sx), space_unit = _spatial_scale(metadata)
    period = metadata.get("frame_period_s")
    t_scale, t_unit = (float(period), "second") if period else (1.0, "pixel")
    lead = ndim - 3  # (frames, planes, y, x): planes scaled by z step when known
    z = metadata.get("z_step_um")
    scale = (t_scale, *([float(z) if z else 1.0] * lead), sy, sx)
    units = (t_unit, *(["micrometer" if z else "pixel"] * lead), space_unit, space_unit)
    labels = ("t", *(["z"] * lead), "y", "x")
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": scale,
        "units": units,
        "axis_labels": labels,
        "metadata": {METADATA_KEY: dict(metadata)},
    }
    return kwargs


def image2d_layer_kwargs(metadata: Mapping[str, Any], *, name: str) -> dict:
    """Keyword arguments for a ``(y, x)`` layer (labels, summary image) aligned with the movie."""
    (sy, sx), space_unit = _spatial_scale(metadata)
    return {
        "name": name,
        "scale": (sy, sx),
        "units": (space_unit, space_unit),
        "axis_labels": ("y", "x"),
        "metadata": {METADATA_KEY: dict(metadata)},
    }

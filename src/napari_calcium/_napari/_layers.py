"""Recording metadata -> napari layer keyword arguments (scale, units, axis labels, metadata).

Thin conversion only: no computation. Every layer napari-calcium makes carries the recording's
metadata under ``layer.metadata["napari_calcium"]`` so downstream widgets read the frame rate and
pixel size from there instead of asking the user again.
"""

from __future__ import annotations

import math
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


def first_frame_time_s(metadata: Mapping[str, Any]) -> float | None:
    """When the first time point was taken (s from the start of the acquisition), if known.

    ``first_frame_time_s`` when set (the Recording properties widget), else the first of the
    file's per-frame ``timestamps_s`` (PrairieView's ``relativeTime``: a 4-plane volume's first
    time point is at 0.18 s). None when neither is known.
    """
    t0 = metadata.get("first_frame_time_s")
    if t0 is None:
        stamps = metadata.get("timestamps_s")
        t0 = stamps[0] if stamps is not None and len(stamps) else None
    try:
        t0 = None if t0 is None else float(t0)
    except (TypeError, ValueError):
        return None
    return t0 if t0 is not None and math.isfinite(t0) else None


def time_axis(metadata: Mapping[str, Any]) -> tuple[float, float, str]:
    """``(scale, translate, unit)`` of a movie's time axis from its metadata.

    Seconds when the frame rate is known, with the axis starting at the first frame's time;
    frames (unit ``"pixel"``, napari's unitless default) from 0 when it is not.
    """
    period = metadata.get("frame_period_s")
    rate = metadata.get("frame_rate_hz")
    if not period and rate:
        period = 1.0 / float(rate)
    if not period:
        return 1.0, 0.0, "pixel"
    return float(period), first_frame_time_s(metadata) or 0.0, "second"


def movie_layer_kwargs(metadata: Mapping[str, Any], *, name: str, ndim: int = 3) -> dict:
    """Keyword arguments for an Image layer holding a ``(frames, y, x)`` movie.

    Time is scaled to seconds when the frame rate is known (the axis starts at the first frame's
    time, :func:`first_frame_time_s`), space to µm when the pixel size is. No contrast limits:
    the caller sets them from sampled frames (``_reader.display_range``), as the bit depth's full
    range leaves real recordings almost black.
    """
    (sy, sx), space_unit = _spatial_scale(metadata)
    t_scale, t0, t_unit = time_axis(metadata)
    lead = ndim - 3  # (frames, planes, y, x): planes scaled by z step when known
    z = metadata.get("z_step_um")
    scale = (t_scale, *([float(z) if z else 1.0] * lead), sy, sx)
    units = (t_unit, *(["micrometer" if z else "pixel"] * lead), space_unit, space_unit)
    labels = ("t", *(["z"] * lead), "y", "x")
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": scale,
        "translate": (t0, *([0.0] * (lead + 2))),
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

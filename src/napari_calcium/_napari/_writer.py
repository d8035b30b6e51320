"""npe2 writers: an Image layer -> a binary stack (.bin + .json) or a TIFF stack.

napari's Save dialog asks before replacing a file, so these writers overwrite; every write goes
to a temporary file that is renamed when complete, so a failed save never leaves half a file.
"""

from __future__ import annotations

from typing import Any

from ._layers import METADATA_KEY


def _timing_and_scale(attributes: dict) -> tuple[float | None, tuple[float, float] | None]:
    meta = (attributes.get("metadata") or {}).get(METADATA_KEY) or {}
    period = meta.get("frame_period_s")
    rate = 1.0 / period if period else None
    px = meta.get("pixel_size_um")
    if px is not None and not isinstance(px, (list, tuple)):
        px = (px, px)
    return rate, (tuple(float(v) for v in px) if px is not None else None)


def write_binary(path: str, data: Any, attributes: dict) -> list[str]:
    """Write a ``(frames, y, x)`` Image layer as ``.bin`` + ``.json`` (CalSciPy-compatible)."""
    from ..io.binary import save_binary

    rate, px = _timing_and_scale(attributes)
    bin_path = save_binary(path, data, frame_rate_hz=rate, pixel_size_um=px, overwrite=True)
    return [str(bin_path), str(bin_path.with_suffix(".json"))]


def write_tiff(path: str, data: Any, attributes: dict) -> list[str]:
    """Write a ``(frames, y, x)`` Image layer as a TIFF stack (split at 3.9 GB)."""
    from ..io.tiff import save_images

    rate, px = _timing_and_scale(attributes)
    written = save_images(path, data, frame_rate_hz=rate, pixel_size_um=px, overwrite=True)
    return [str(p) for p in written]

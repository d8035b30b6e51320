"""What ``napari-calcium info`` reports about a recording: a JSON-friendly dict and its text form.

Everything comes from an opened :class:`~napari_calcium.io.metadata.Recording` (headers and
metadata only: no pixels are read). Unknown values are ``None`` in the dict and "unknown" in text.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .io.metadata import Recording

__all__ = ["INFO_KEYS", "format_info", "recording_info"]

#: top-level keys of ``info --json``, always present (``None`` when the files do not say)
INFO_KEYS = (
    "path",
    "reader",
    "format",
    "software_version",
    "shape",
    "axes",
    "n_frames",
    "n_planes",
    "height",
    "width",
    "dtype",
    "channels",
    "n_channels",
    "frame_rate_hz",
    "frame_period_s",
    "duration_s",
    "pixel_size_um",
    "z_step_um",
    "bit_depth",
    "nbytes",
    "extra",
)

# extras worth a line of text (the rest is in --json); key -> label
_TEXT_EXTRAS = {
    "acquisition_date": "acquired",
    "layout": "layout",
    "active_mode": "scan mode",
    "optical_zoom": "optical zoom",
    "frame_period_source": "timing from",
    "metadata_files": "metadata files",
    "axes_reinterpreted": "note",
}


_SOFTWARE = {"bruker": "PrairieView", "imagej": "ImageJ", "scanimage": "ScanImage"}


def _plain(value: Any) -> Any:
    """``value`` as JSON types (numpy scalars and arrays, tuples, paths, dict keys)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def recording_info(rec: Recording, reader: str | None = None) -> dict[str, Any]:
    """What a recording holds, as a dict with the keys :data:`INFO_KEYS` (JSON-serialisable).

    Parameters
    ----------
    rec : Recording
        An opened (lazy) recording; no pixels are read.
    reader : str, optional
        The ``open_recording`` format that opened it (``"bruker"``, ``"tiff"``, ...).
    """
    meta = rec.metadata
    shape = rec.shape
    dtype = np.dtype(rec.movie.dtype)
    four_d = len(shape) == 4
    extra = {k: v for k, v in meta.extra.items() if k != "prairieview_state"}
    info = {
        "path": str(rec.path),
        "reader": reader,
        "format": meta.source_format,
        "software_version": meta.source_version,
        "shape": list(shape),
        "axes": ["t", "z", "y", "x"] if four_d else ["t", "y", "x"][-len(shape) :],
        "n_frames": rec.n_frames,
        "n_planes": int(shape[1]) if four_d else int(meta.n_planes),
        "height": int(shape[-2]) if len(shape) >= 2 else None,
        "width": int(shape[-1]) if len(shape) >= 2 else None,
        "dtype": dtype.name,
        "channels": list(rec.channels),
        "n_channels": len(rec.channels),
        "frame_rate_hz": meta.frame_rate_hz,
        "frame_period_s": meta.frame_period_s,
        "duration_s": rec.duration_s,
        "pixel_size_um": list(meta.pixel_size_um) if meta.pixel_size_um else None,
        "z_step_um": meta.z_step_um,
        "bit_depth": meta.bit_depth,
        "nbytes": int(math.prod(shape)) * dtype.itemsize * len(rec.channels),
        "extra": extra,
    }
    return _plain(info)


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.2f} s"
    minutes, sec = divmod(seconds, 60)
    return f"{seconds:.1f} s ({int(minutes)} min {sec:.0f} s)"


def format_info(info: dict[str, Any]) -> str:
    """The text form of :func:`recording_info` (what ``napari-calcium info`` prints)."""
    unknown = "unknown"
    volumes = info["n_planes"] > 1
    what = "volume" if volumes else "frame"
    fmt = info["format"]
    if info["reader"] and info["reader"] != fmt:
        fmt += f" (opened as {info['reader']})"
    software = info["software_version"]
    if software and fmt.split("-")[0] in _SOFTWARE:
        software = f"{_SOFTWARE[fmt.split('-')[0]]} {software}"
    dims = "x".join(str(s) for s in info["shape"])
    axes = ", ".join({"t": "frames", "z": "planes", "y": "y", "x": "x"}[a] for a in info["axes"])
    rows = [
        ("format", fmt),
        ("software", software or unknown),
        ("shape", f"{dims} ({axes}), {_size(info['nbytes'])} of pixels"),
        ("dtype", info["dtype"] + (f", {info['bit_depth']}-bit data" if info["bit_depth"] else "")),
        ("channels", f"{info['n_channels']}: " + ", ".join(info["channels"])),
    ]
    if volumes:
        z = f", {info['z_step_um']:.4g} µm apart" if info["z_step_um"] else ""
        rows.append(("planes", f"{info['n_planes']}{z}"))
    if info["frame_rate_hz"]:
        period = info["frame_period_s"]
        rows.append(
            (
                f"{what} rate",
                f"{info['frame_rate_hz']:.6g} Hz ({what} period {period * 1e3:.5g} ms)",
            )
        )
        rows.append(("duration", _duration(info["duration_s"])))
    else:
        rows.append((f"{what} rate", f"{unknown} (the files do not state it)"))
        rows.append(("duration", unknown))
    px = info["pixel_size_um"]
    if px:
        fov = f"; field of view {px[0] * info['height']:.4g} x {px[1] * info['width']:.4g} µm"
        rows.append(("µm/px", f"{px[0]:.6g} x {px[1]:.6g} (y, x){fov}"))
    else:
        rows.append(("µm/px", unknown))
    extra = info["extra"]
    if extra.get("objective"):
        mag, na = extra.get("objective_magnification"), extra.get("objective_na")
        details = ", ".join(p for p in (mag and f"{mag:g}x", na and f"NA {na:g}") if p)
        rows.append(("objective", extra["objective"] + (f" ({details})" if details else "")))
    for key, label in _TEXT_EXTRAS.items():
        value = extra.get(key)
        if value not in (None, "", [], {}):
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            rows.append((label, text))
    for key, option in (("frame_rate_hz", "--frame-rate-hz"), ("pixel_size_um", "--pixel-size-um")):
        if key in (extra.get("overridden") or {}):  # given on the command line
            was = extra["overridden"][key]
            said = (
                "nothing"
                if was is None
                else f"{was:.6g}"
                if not isinstance(was, list)
                else (" x ".join(f"{v:.6g}" for v in was))
            )
            rows.append(("given", f"{option} (the files say: {said})"))
    width = max(len(label) for label, _ in rows)
    lines = [str(Path(info["path"]))]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines)

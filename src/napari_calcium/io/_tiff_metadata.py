"""Acquisition metadata from TIFF files: ImageJ, OME-XML, ScanImage and baseline resolution tags.

Pure parsing of what tifffile already decoded (no pixel reads). Every value a file does not state
stays None. Precedence, most specific first: OME-XML, ScanImage, ImageJ, tifffile's JSON
description, then the baseline resolution tags (only in cm, mm or µm: the inch-based 72 dpi that
many writers put there by default is not a pixel size).
"""

from __future__ import annotations

import math
import numbers
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

__all__ = [
    "channels_as_frames",
    "length_um",
    "ome_fields",
    "scanimage_fields",
    "scanimage_layout",
    "tiff_metadata",
]

_LENGTH_UM = {
    "um": 1.0, "µm": 1.0, "μm": 1.0, "\\u00b5m": 1.0, "micron": 1.0, "microns": 1.0,
    "micrometer": 1.0, "micrometers": 1.0, "micrometre": 1.0, "nm": 1e-3, "nanometer": 1e-3,
    "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "centimeter": 1e4, "m": 1e6, "meter": 1e6,
    "inch": 25400.0, "in": 25400.0, "å": 1e-4, "angstrom": 1e-4,
}  # fmt: skip
_TIME_S = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3,
    "millisecond": 1e-3, "milliseconds": 1e-3, "µs": 1e-6, "us": 1e-6, "usec": 1e-6,
    "microsecond": 1e-6, "min": 60.0, "minute": 60.0, "minutes": 60.0, "h": 3600.0, "hr": 3600.0,
    "hour": 3600.0, "ns": 1e-9,
}  # fmt: skip
# baseline RESUNIT codes -> µm per unit (1 NONE and 2 INCH deliberately absent)
_RESUNIT_UM = {3: 1e4, 4: 1e3, 5: 1.0}


def length_um(unit: Any) -> float | None:
    """µm per `unit` (``"micron"``, ``"nm"``, ``"\\u00B5m"``...), None if not a length unit."""
    return _LENGTH_UM.get(str(unit).strip().lower()) if isinstance(unit, str) else None


def _time_s(unit: Any) -> float | None:
    return _TIME_S.get(str(unit).strip().lower()) if isinstance(unit, str) else None


def _positive(value: Any) -> float | None:
    """A finite number > 0 from a number or a numeric string; None otherwise."""
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _flat(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def _resolution(page: Any) -> tuple[float, float] | None:
    """Pixels per unit (y, x) from the resolution tags, None when absent or not positive."""
    try:
        rx, ry = (float(v) for v in page.resolution)
    except Exception:  # missing or malformed tags
        return None
    return (ry, rx) if rx > 0 and ry > 0 and math.isfinite(rx * ry) else None


def _pixel(res: tuple[float, float] | None, y_um: float | None, x_um: float | None) -> Any:
    if res is None or not y_um or not x_um:
        return None
    return (y_um / res[0], x_um / res[1])


def imagej_fields(ij: dict, page: Any) -> dict:
    """ImageJ description: ``finterval``/``fps`` (``tunit``), ``unit``/``yunit`` + resolution,
    ``spacing`` (``zunit``)."""
    out: dict[str, Any] = {"source_version": ij.get("ImageJ") or None}
    unit = length_um(ij.get("unit"))
    y_unit = length_um(ij.get("yunit")) or unit
    out["pixel_size_um"] = _pixel(_resolution(page), y_unit, unit)
    spacing = _positive(ij.get("spacing"))
    z_unit = length_um(ij.get("zunit")) or unit
    out["z_step_um"] = spacing * z_unit if spacing and z_unit else None
    interval = _positive(ij.get("finterval"))
    t_unit = _time_s(ij.get("tunit")) or 1.0
    fps = _positive(ij.get("fps"))
    out["frame_period_s"] = interval * t_unit if interval else (1.0 / fps if fps else None)
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def ome_fields(xml: str, storage_bits: int) -> dict:
    """OME-XML of the first Image: PhysicalSize X/Y/Z (+Unit), TimeIncrement (+Unit),
    SignificantBits, Channel names, per-plane DeltaT (first plane of each time point)."""
    root = ET.fromstring(xml)
    image = next((e for e in root.iter() if _local(e.tag) == "Image"), None)
    pixels = None if image is None else next((e for e in image if _local(e.tag) == "Pixels"), None)
    if pixels is None:
        return {"source_version": root.get("Creator")}
    a = pixels.attrib

    def size(axis: str) -> float | None:
        value, unit = _positive(a.get(f"PhysicalSize{axis}")), a.get(f"PhysicalSize{axis}Unit")
        factor = length_um(unit) if unit is not None else 1.0
        return value * factor if value and factor else None

    increment = _positive(a.get("TimeIncrement"))
    t_unit = _time_s(a.get("TimeIncrementUnit", "s"))
    bits = _positive(a.get("SignificantBits"))
    py, px = size("Y"), size("X")
    out: dict[str, Any] = {
        "source_version": root.get("Creator"),
        "pixel_size_um": (py, px) if py and px else None,
        "z_step_um": size("Z"),
        "frame_period_s": increment * t_unit if increment and t_unit else None,
        "bit_depth": int(bits) if bits and bits < storage_bits and bits.is_integer() else None,
    }
    names = [c.get("Name") for c in pixels if _local(c.tag) == "Channel"]
    if names and all(names):
        out["channel_names"] = tuple(names)
    times: dict[int, float] = {}
    for plane in (p for p in pixels if _local(p.tag) == "Plane"):
        if plane.get("TheZ", "0") == "0" and plane.get("TheC", "0") == "0":
            t, unit = plane.get("DeltaT"), _time_s(plane.get("DeltaTUnit", "s"))
            try:
                times[int(plane.get("TheT", "0"))] = float(t) * unit  # type: ignore[arg-type, operator]
            except (TypeError, ValueError):
                return out
    size_t = int(_positive(a.get("SizeT")) or 0)
    if size_t and sorted(times) == list(range(size_t)):
        out["timestamps_s"] = np.array([times[k] for k in range(size_t)], dtype=np.float64)
    return out


def _si(framedata: dict, key: str) -> Any:
    return framedata.get(f"SI.{key}", framedata.get(f"scanimage.SI.{key}"))


def _saved_channels(framedata: dict) -> list[int]:
    ids = [int(c) for c in _flat(_si(framedata, "hChannels.channelSave")) if _positive(c)]
    return ids or [1]


def scanimage_fields(framedata: dict, page_shape: tuple) -> dict:
    """ScanImage 2016+ frame data: frame/volume period, FOV in µm, z step, channels, ADC bits."""
    n_planes = _scanimage_planes(framedata)
    volume_rate = _positive(_si(framedata, "hRoiManager.scanVolumeRate"))
    frame_period = _positive(_si(framedata, "hRoiManager.scanFramePeriod"))
    if frame_period is None:
        rate = _positive(_si(framedata, "hRoiManager.scanFrameRate"))
        frame_period = 1.0 / rate if rate else None
    average = _positive(_si(framedata, "hScan2D.logAverageFactor")) or 1.0
    if n_planes > 1:
        period = 1.0 / volume_rate if volume_rate else None
    else:
        period = frame_period * average if frame_period else None
    major, minor = _si(framedata, "VERSION_MAJOR"), _si(framedata, "VERSION_MINOR")
    out: dict[str, Any] = {
        "source_version": f"{major}.{minor}" if major is not None else None,
        "frame_period_s": period,
        "z_step_um": _positive(_si(framedata, "hStackManager.actualStackZStepSize"))
        or _positive(_si(framedata, "hStackManager.stackZStepSize")),
    }
    fov = _flat(_si(framedata, "hRoiManager.imagingFovUm") or [])
    if len(fov) == 8 and all(isinstance(v, numbers.Real) for v in fov) and len(page_shape) >= 2:
        xs, ys = fov[0::2], fov[1::2]
        width, height = max(xs) - min(xs), max(ys) - min(ys)
        if width > 0 and height > 0:
            out["pixel_size_um"] = (height / page_shape[-2], width / page_shape[-1])
    ids = _saved_channels(framedata)
    names = _flat(_si(framedata, "hChannels.channelName") or [])
    if all(0 < i <= len(names) and isinstance(names[i - 1], str) for i in ids):
        out["channel_names"] = tuple(names[i - 1] for i in ids)
    else:
        out["channel_names"] = tuple(f"Ch{i}" for i in ids)
    adc = _flat(_si(framedata, "hChannels.channelAdcResolution") or [])
    bits = _positive(adc[ids[0] - 1]) if len(adc) >= ids[0] else None
    out["bit_depth"] = int(bits) if bits and bits.is_integer() else None
    return out


def _scanimage_planes(framedata: dict) -> int:
    """Saved frames per volume: slices (+ flyback frames kept when fast-z does not discard)."""
    stack = _si(framedata, "hStackManager.enable")
    fast = _si(framedata, "hFastZ.enable")
    if not (stack or fast):
        return 1
    slices = _positive(_si(framedata, "hStackManager.actualNumSlices")) or _positive(
        _si(framedata, "hStackManager.numSlices")
    )
    planes = int(slices) if slices else 1
    if fast and _si(framedata, "hFastZ.discardFlybackFrames") is False:
        planes += int(_positive(_si(framedata, "hFastZ.numDiscardFlybackFrames")) or 0)
    return planes


def scanimage_layout(meta: Any, n_pages: int, lead_shape: tuple, lead_axes: str) -> tuple:
    """Page order of a ScanImage file as (volumes, slices, frames per slice, channels).

    ScanImage saves, for each volume, each slice, each frame of the slice, each saved channel one
    page. Returns ``(lead_shape, lead_axes, pages_ignored)``: axes ``"TZIC"`` (``I``, frames per
    slice, joins ``T`` as frames); pages of an incomplete last volume are ignored. Falls back to
    tifffile's layout when the frame data does not fit the page count.
    """
    framedata = meta.get("FrameData", {}) if isinstance(meta, dict) else {}
    if not isinstance(framedata, dict) or not framedata:
        return lead_shape, lead_axes, 0
    channels = len(_saved_channels(framedata))
    planes = _scanimage_planes(framedata)
    per_slice = _positive(_si(framedata, "hStackManager.framesPerSlice"))
    per_slice = int(per_slice) if per_slice and planes > 1 and per_slice.is_integer() else 1
    per_volume = planes * per_slice * channels
    volumes = n_pages // per_volume
    if volumes < 1:
        return lead_shape, lead_axes, 0
    return (volumes, planes, per_slice, channels), "TZIC", n_pages - volumes * per_volume


def _baseline_pixel(page: Any, shaped: dict | None) -> tuple[float, float] | None:
    """Resolution tags in cm/mm/µm, or unit NONE with a length ``unit`` in tifffile's JSON."""
    try:
        code = int(page.resolutionunit)
    except Exception:
        return None
    factor = _RESUNIT_UM.get(code)
    if factor is None and code == 1 and shaped:
        factor = length_um(shaped.get("unit"))
    return _pixel(_resolution(page), factor, factor)


def tiff_metadata(tif: Any, series: Any, axes: str, page_shape: tuple) -> dict:
    """RecordingMetadata keyword arguments (plus ``channel_names``/``timestamps_s`` when stated).

    Parameters
    ----------
    tif : tifffile.TiffFile
        The open file (only its tags and decoded metadata are used).
    series : tifffile.TiffPageSeries
        The series being read.
    axes : str
        Its axes as the reader lays them out.
    page_shape : tuple of int
        Shape of one page (its last two entries are y, x).
    """
    page = series.keyframe
    extra: dict[str, Any] = {"axes": axes, "series_kind": series.kind, "n_series": len(tif.series)}
    software = page.tags.get("Software")
    shaped = (tif.shaped_metadata or [None])[0] if tif.is_shaped else None
    fields: dict[str, Any] = {
        "source_format": "tiff",
        "source_version": str(software.value) if software is not None else None,
        "frame_period_s": _positive((shaped or {}).get("finterval")),
        "pixel_size_um": _baseline_pixel(page, shaped),
        "z_step_um": _positive((shaped or {}).get("spacing")),
        "bit_depth": None,
    }
    found: dict[str, Any] = {}
    try:
        if tif.is_ome and tif.ome_metadata:
            fields["source_format"] = "ome-tiff"
            found = ome_fields(tif.ome_metadata, 8 * series.dtype.itemsize)
        elif tif.is_scanimage:
            fields["source_format"] = "scanimage-tiff"
            framedata = (tif.scanimage_metadata or {}).get("FrameData") or {}
            found = scanimage_fields(framedata, page_shape)
        elif tif.is_imagej and tif.imagej_metadata:
            fields["source_format"] = "imagej-tiff"
            found = imagej_fields(tif.imagej_metadata, page)
    except Exception as exc:  # malformed vendor metadata: keep the baseline values, say why
        extra["metadata_error"] = f"{type(exc).__name__}: {exc}"[:300]
    fields.update({k: v for k, v in found.items() if v is not None})
    res = _resolution(page)
    if res is not None:
        extra["resolution_tags"] = {"y": res[0], "x": res[1], "unit": int(page.resolutionunit)}
    fields["extra"] = extra
    return fields


#: more "channels" than this, with no time or z axis, is a movie saved without axes
MAX_CHANNELS = 8


def channels_as_frames(axes: str, shape: tuple, meta: dict) -> str:
    """Read a ``CYX`` stack of many "channels" as frames.

    ``tifffile.imwrite(path, movie, imagej=True)`` without ``metadata={"axes": "TYX"}`` stores a
    ``(frames, y, x)`` movie as channels; no calcium recording has dozens of channels, so such a
    stack is read as frames (and ``extra["axes_reinterpreted"]`` says so).
    """
    sizes = dict(zip(axes, shape, strict=True))
    lead = {a for a, n in sizes.items() if a not in "YX" and n > 1}
    if lead == {"C"} and sizes["C"] > MAX_CHANNELS:
        meta.setdefault("extra", {})["axes_reinterpreted"] = (
            f"{axes} with {sizes['C']} channels read as {axes.replace('C', 'T')} (frames)"
        )
        meta.pop("channel_names", None)
        return axes.replace("C", "T")
    return axes

"""Plugins > napari-calcium > Recording properties: see and correct what a file says about itself.

A TIFF without metadata has no frame rate, so dF/F, Deconvolve and Events refuse to run on its
traces; a Bruker export without its ``.xml`` has no pixel size. This widget shows a layer's frame
rate, pixel size, plane, channel and first-frame time (prefilled from
``layer.metadata["napari_calcium"]``, blank with an "unknown" hint where unknown), and **Apply**
writes what the user typed back into that metadata, the layer's scale, translate and units, the
layers derived from it, and the traces stored with ROI layers, which is where every later widget
reads them from. What the file said is kept under ``"overridden"`` in the metadata.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, Label, LineEdit, PushButton

from ...errors import NapariCalciumError, ParameterError
from ...io.metadata import checked_property
from .._layers import METADATA_KEY, first_frame_time_s
from ._base import compact_picker, is_movie, prefer, wrapping_label
from .traces import STALE_AFTER_TRACES

#: results computed with a frame rate (their windows and time constants are in seconds)
RATE_DEPENDENT = tuple(key for key in STALE_AFTER_TRACES if not key.endswith("_preview"))


def _meta(layer) -> dict:
    return dict(layer.metadata.get(METADATA_KEY) or {})


def layer_properties(layer) -> dict[str, Any]:
    """The recording properties of a layer, from its metadata (None where unknown).

    Returns
    -------
    dict
        ``frame_rate_hz`` (float), ``pixel_size_um`` ((y, x) floats), ``plane`` (int; None for
        all planes of a volume or unknown), ``channel`` (str) and ``first_frame_time_s`` (float).
    """
    meta = _meta(layer)
    traces = meta.get("traces")
    rate = meta.get("frame_rate_hz") or getattr(traces, "frame_rate_hz", None)
    if not rate and meta.get("frame_period_s"):
        rate = 1.0 / float(meta["frame_period_s"])
    px = meta.get("pixel_size_um")
    if px is not None and not isinstance(px, (list, tuple)):
        px = (px, px)
    plane = meta.get("plane")
    return {
        "frame_rate_hz": float(rate) if rate else None,
        "pixel_size_um": tuple(float(v) for v in px) if px is not None else None,
        "plane": int(plane) if plane is not None else None,
        "channel": meta.get("channel"),
        "first_frame_time_s": first_frame_time_s(meta),
    }


def _parse(text: str, what: str, convert) -> Any:
    text = text.strip()
    if not text:
        return None
    return convert(text, what)


def _rate(text: str, what: str) -> float:
    return checked_property(text, "frame_rate_hz", what)


def _pixel_size(text: str, what: str) -> tuple[float, float]:
    parts = [p for p in text.replace(";", ",").replace("x", ",").split(",") if p.strip()]
    if len(parts) not in (1, 2):
        raise ParameterError(f"{what} {text!r}: give one value or 'y, x' in µm")
    values = [checked_property(p.strip(), "pixel_size_um", what) for p in parts]
    return (values[0], values[-1])


def _plane(text: str, what: str) -> int:
    if not text.isdigit():
        raise ParameterError(f"{what} {text!r} must be a plane number (0, 1, …) or empty")
    return int(text)


def _time(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"{what} {text!r} must be a number of seconds") from None
    if not math.isfinite(value):
        raise ParameterError(f"{what} {text!r} must be a finite number of seconds")
    return value


def family(viewer, layer) -> list:
    """``layer`` and every layer of the viewer derived from it, directly or not.

    A layer is derived from another when its metadata names it in ``derived_from`` (every
    napari-calcium step records this), ``traces_from`` (Extract traces records the movie it
    read) or ``events_of`` (the Events step's Points layer names its ROI layer).
    """
    names = {layer.name}
    members = [layer]
    changed = True
    while changed:
        changed = False
        for other in viewer.layers:
            if other in members:
                continue
            meta = _meta(other)
            links = (meta.get(key) for key in ("derived_from", "traces_from", "events_of"))
            if any(link in names for link in links):
                members.append(other)
                names.add(other.name)
                changed = True
    return members


def _axis_index(layer, label: str) -> int | None:
    labels = [str(a) for a in layer.axis_labels]
    return labels.index(label) if label in labels else None


def apply_properties(layer, properties: dict[str, Any]) -> list[str]:
    """Write recording properties into one layer: metadata, scale, translate, units, traces.

    Parameters
    ----------
    layer : napari.layers.Layer
        An Image or Labels layer napari-calcium made (or any layer: it gains the metadata).
    properties : dict
        :func:`layer_properties`' keys; a value of None makes the property unknown.

    Returns
    -------
    list of str
        Stored results that were computed with the old frame rate and were dropped (their
        windows and time constants are in seconds): run those steps again.
    """
    meta = _meta(layer)
    before = layer_properties(layer)
    overridden = dict(meta.get("overridden") or {})
    for key in ("frame_rate_hz", "pixel_size_um"):
        if properties[key] != before[key] and key not in overridden:
            value = before[key]
            overridden[key] = list(value) if isinstance(value, tuple) else value
    rate = properties["frame_rate_hz"]
    px = properties["pixel_size_um"]
    t0 = properties["first_frame_time_s"]
    meta.update(
        frame_rate_hz=rate,
        frame_period_s=1.0 / rate if rate else None,
        pixel_size_um=list(px) if px is not None else None,
        plane=properties["plane"],
        channel=properties["channel"],
        first_frame_time_s=t0,
    )
    if overridden:
        meta["overridden"] = overridden
    if rate != before["frame_rate_hz"]:
        meta.pop("timestamps_s", None)  # the file's times were at the old rate
    dropped: list[str] = []
    traces = meta.get("traces")
    if traces is not None and getattr(traces, "frame_rate_hz", None) != rate:
        meta["traces"] = dataclasses.replace(traces, frame_rate_hz=rate)
        dropped = [key for key in RATE_DEPENDENT if meta.get(key) is not None]
        meta.update(STALE_AFTER_TRACES)
    layer.metadata = {**layer.metadata, METADATA_KEY: meta}

    # a cropped layer starts some frames / pixels in: that offset, in steps, is kept
    scale = list(layer.scale)
    translate = list(layer.translate)
    units = [str(u) for u in layer.units]
    t = _axis_index(layer, "t")
    if t is not None:
        in_seconds = units[t] == "second"
        origin = (before["first_frame_time_s"] or 0.0) if in_seconds else 0.0
        offset = (translate[t] - origin) / scale[t]  # frames
        scale[t] = 1.0 / rate if rate else 1.0
        translate[t] = ((t0 or 0.0) if rate else 0.0) + offset * scale[t]
        units[t] = "second" if rate else "pixel"
    y, x = _axis_index(layer, "y"), _axis_index(layer, "x")
    if y is None or x is None:  # napari's default labels: the last two axes are space
        y, x = layer.ndim - 2, layer.ndim - 1
    sy, sx = px if px is not None else (1.0, 1.0)
    for axis, step in ((y, sy), (x, sx)):
        translate[axis] = translate[axis] / scale[axis] * step  # pixels in, at the new size
        scale[axis] = step
        units[axis] = "micrometer" if px is not None else "pixel"
    layer.scale = scale
    layer.translate = translate
    layer.units = units
    return dropped


class RecordingPropertiesWidget(Container):
    """Frame rate, pixel size, plane, channel and first-frame time of a layer, editable.

    Choose a layer; its values appear (blank where the file does not say, with "unknown" as
    the hint). Type a value and click **Apply**: the layer's time axis becomes seconds, its
    space µm, and the layers derived from it and the traces stored with ROI layers take the
    new values, so dF/F, Deconvolve and Events can run. A changed frame rate drops dF/F, spikes
    and events computed with the old one (the status line says which).
    """

    title = "recording properties"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.layer_box = ComboBox(label="layer", choices=self._layer_choices)
        self.frame_rate = LineEdit(label="frame rate (Hz)")
        self.pixel_size = LineEdit(label="pixel size (µm)", tooltip="one value, or 'y, x'")
        self.plane = LineEdit(label="plane", tooltip="plane number; empty: all planes/unknown")
        self.channel = LineEdit(label="channel")
        self.first_time = LineEdit(label="first frame at (s)")
        self.derived_too = CheckBox(text="also layers derived from it", value=True)
        self.apply_button = PushButton(text="Apply")
        self.revert_button = PushButton(text="Reset to the layer's values")
        self.source = Label(value="")
        self.status = Label(value="")
        super().__init__(
            widgets=[self.layer_box, self.frame_rate, self.pixel_size, self.plane, self.channel,
                     self.first_time, self.derived_too, self.apply_button, self.revert_button,
                     self.source, self.status],
        )  # fmt: skip
        compact_picker(self.layer_box.native)
        wrapping_label(self.status.native)
        wrapping_label(self.source.native)
        self.layer_box.changed.connect(self.show_layer)
        self.apply_button.changed.connect(self.apply)
        self.revert_button.changed.connect(self.show_layer)
        if napari_viewer is not None:
            napari_viewer.layers.events.inserted.connect(self._refresh)
            napari_viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _layer_choices(self, _widget=None) -> list[tuple[str, Any]]:
        if self.viewer is None:
            return []
        newest = list(reversed(list(self.viewer.layers)))
        useful = [ly for ly in newest if ly._type_string in ("image", "labels")]
        movies = [ly for ly in useful if is_movie(ly)]
        return [(ly.name, ly) for ly in movies + [ly for ly in useful if ly not in movies]]

    def _refresh(self, _event=None) -> None:
        self.layer_box.reset_choices()
        prefer(self.layer_box, lambda ly: bool(is_movie(ly)))
        self.show_layer()

    def show_layer(self, *_: Any) -> None:
        """Fill the fields from the chosen layer's metadata ("unknown" hints where blank)."""
        layer = self.layer_box.value
        values = layer_properties(layer) if layer is not None else dict.fromkeys(
            ("frame_rate_hz", "pixel_size_um", "plane", "channel", "first_frame_time_s")
        )  # fmt: skip
        rate, px = values["frame_rate_hz"], values["pixel_size_um"]
        self.frame_rate.value = f"{rate:.6g}" if rate else ""
        self.pixel_size.value = (
            "" if px is None else f"{px[0]:.6g}" if px[0] == px[1] else f"{px[0]:.6g}, {px[1]:.6g}"
        )
        self.plane.value = "" if values["plane"] is None else str(values["plane"])
        self.channel.value = values["channel"] or ""
        t0 = values["first_frame_time_s"]
        self.first_time.value = "" if t0 is None else f"{t0:.6g}"
        volume = layer is not None and _axis_index(layer, "z") is not None
        for edit, hint in (
            (self.frame_rate, "unknown: type the rate"),
            (self.pixel_size, "unknown: type µm per pixel"),
            (self.plane, "all planes" if volume else "unknown"),
            (self.channel, "unknown"),
            (self.first_time, "unknown (0)"),
        ):
            edit.native.setPlaceholderText(hint)
        self.source.value = self._source_text(layer)

    @staticmethod
    def _source_text(layer) -> str:
        if layer is None:
            return "open a recording first"
        meta = _meta(layer)
        where = meta.get("source_path") or meta.get("derived_from")
        text = f"from {where}" if where else "not from a file napari-calcium read"
        overridden = meta.get("overridden") or {}
        if overridden:
            said = ", ".join(
                f"{k} {'unknown' if v is None else v}" for k, v in sorted(overridden.items())
            )
            text += f"; changed here (the file said: {said})"
        return text

    def values(self) -> dict[str, Any]:
        """The fields as properties (None where blank).

        Raises
        ------
        ParameterError
            A field that is not a valid value, named in the message.
        """
        return {
            "frame_rate_hz": _parse(self.frame_rate.value, "frame rate", _rate),
            "pixel_size_um": _parse(self.pixel_size.value, "pixel size", _pixel_size),
            "plane": _parse(self.plane.value, "plane", _plane),
            "channel": self.channel.value.strip() or None,
            "first_frame_time_s": _parse(self.first_time.value, "first frame time", _time),
        }  # fmt: skip

    def apply(self, *_: Any) -> list:
        """Write the fields into the chosen layer (and its derived layers); returns those layers."""
        layer = self.layer_box.value
        if layer is None:
            self.status.value = "choose a layer first"
            return []
        try:
            values = self.values()
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return []
        layers = family(self.viewer, layer) if self.derived_too.value else [layer]
        dropped: dict[str, list[str]] = {}
        for member in layers:
            own = dict(values)
            if member is not layer:  # a derived layer keeps its own plane and channel
                mine = layer_properties(member)
                own["plane"], own["channel"] = mine["plane"], mine["channel"]
            gone = apply_properties(member, own)
            if gone:
                dropped[member.name] = gone
        names = ", ".join(repr(ly.name) for ly in layers)
        text = f"{self.title}: applied to {names}"
        if dropped:
            stale = "; ".join(f"{name}: {', '.join(keys)}" for name, keys in dropped.items())
            text += f". Computed with the old frame rate and cleared, run again: {stale}"
        self.status.value = text
        self.show_layer()
        return layers

"""Save traces: the traces (dF/F, spikes, events) stored with a ROI layer to NPZ, CSV or NWB.

Everything is written exactly as stored with the layer (``layer.metadata["napari_calcium"]``):
``"traces"``, ``"dff"``, ``"spikes"`` (with ``"spikes_source"``) and ``"events"`` (with
``"events_source"``). Spikes or events of other traces (another number of ROIs or frames) are
left out, and the status line says so. NWB takes the traces, dF/F and spikes; events go to NPZ
and CSV.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, LineEdit

from ...errors import NapariCalciumError, ParameterError
from .._layers import METADATA_KEY
from .._rois import rois_from_labels_layer
from ._base import holds_traces, trace_layers
from .rois import _LayerPickers

FORMATS = ("npz", "csv", "nwb")


def _stored_spikes(meta: dict, traces) -> dict:
    """``spikes=`` and ``spikes_input=`` for the writers when spikes fit the traces, else ``{}``."""
    spikes = meta.get("spikes")
    if spikes is None or spikes.n_frames != traces.n_frames:
        return {}
    if not np.array_equal(np.asarray(spikes.ids), np.asarray(traces.ids)):
        return {}
    return {"spikes": spikes, "spikes_input": meta.get("spikes_source")}


def _stored_events(meta: dict, traces) -> dict:
    """``events=`` and ``events_input=`` for the writers when events fit the traces, else ``{}``.

    The Events step stores one array of onset frames per row of the traces; events of other
    traces (another number of ROIs, or frames past their end) do not fit.
    """
    events = meta.get("events")
    if events is None or len(events) != traces.n_rois:
        return {}
    for frames in events:
        frames = np.asarray(frames)
        if frames.size and (frames.min() < 0 or frames.max() >= traces.n_frames):
            return {}
    return {"events": list(events), "events_input": meta.get("events_source")}


class SaveTracesWidget(_LayerPickers):
    """Write a ROI layer's stored traces, dF/F, spikes and events; NWB asks for its metadata."""

    title = "save traces"
    needs = (("rois_box", holds_traces),)  # the ROI layer whose traces this step reads

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.rois_box = ComboBox(label="ROIs with traces", choices=self._labels)
        self.path = FileEdit(label="save as", mode="w")
        self.format = ComboBox(label="format", choices=list(FORMATS), value="npz")
        self.overwrite = CheckBox(text="overwrite existing files", value=False)
        # NWB needs real metadata: nothing is made up
        self.session = LineEdit(label="session description")
        self.identifier = LineEdit(label="identifier")
        self.subject_id = LineEdit(label="subject id")
        self.species = LineEdit(label="species", value="Mus musculus")
        self.device = LineEdit(label="microscope name")
        self.device_desc = LineEdit(label="microscope description")
        self.manufacturer = LineEdit(label="manufacturer")
        self.indicator = LineEdit(label="indicator")
        self.location = LineEdit(label="brain location")
        self.excitation = FloatSpinBox(label="excitation λ (nm)", value=920.0, min=0, max=2000)
        self.emission = FloatSpinBox(label="emission λ (nm)", value=510.0, min=0, max=2000)
        self.nwb_box = Container(
            widgets=[self.session, self.identifier, self.subject_id, self.species, self.device,
                     self.device_desc, self.manufacturer, self.indicator, self.location,
                     self.excitation, self.emission],
        )  # fmt: skip
        super().__init__(
            napari_viewer, [self.rois_box],
            [self.path, self.format, self.overwrite, self.nwb_box], run_text="Save",
        )  # fmt: skip
        self.format.changed.connect(self._show)
        self._show()
        self.written: list[Path] = []

    def _labels(self, _w=None):
        return [(layer.name, layer) for layer in trace_layers(self.viewer)]

    def _show(self, *_) -> None:
        self.nwb_box.visible = self.format.value == "nwb"

    def _nwb_kwargs(self, layer) -> dict:
        text = {
            "session description": self.session.value, "identifier": self.identifier.value,
            "subject id": self.subject_id.value, "species": self.species.value,
            "microscope name": self.device.value, "microscope description": self.device_desc.value,
            "manufacturer": self.manufacturer.value, "indicator": self.indicator.value,
            "brain location": self.location.value,
        }  # fmt: skip
        missing = [name for name, value in text.items() if not str(value).strip()]
        if missing:
            raise ParameterError(f"NWB needs: {', '.join(missing)} (nothing is filled in for you)")
        meta = layer.metadata.get(METADATA_KEY) or {}
        start = meta.get("start_time")
        start = (
            _dt.datetime.fromisoformat(start) if isinstance(start, str) else start
        ) or _dt.datetime.now(_dt.timezone.utc)
        if start.tzinfo is None:
            start = start.astimezone()
        return {
            "session_description": self.session.value,
            "identifier": self.identifier.value,
            "session_start_time": start,
            "subject": {"subject_id": self.subject_id.value, "species": self.species.value},
            "device": {
                "name": self.device.value,
                "description": self.device_desc.value,
                "manufacturer": self.manufacturer.value,
            },
            "imaging_plane": {
                "indicator": self.indicator.value,
                "location": self.location.value,
                "excitation_lambda": float(self.excitation.value),
                "emission_lambda": float(self.emission.value),
            },
        }

    def _target(self, fmt: str) -> Path | None:
        """The file to write from the "save as" box, or None with the reason on the status line.

        The name may end in the chosen format's extension or in none (it is added); another
        extension is refused rather than replaced (``session.txt`` never becomes
        ``session.npz``, nor ``day.3`` ``day.npz``).
        """
        text = str(self.path.line_edit.value or "").strip()  # .value turns "" into "."
        path = Path(text).expanduser() if text else None
        if path is None or text in (".", "..") or path.name in ("", ".", ".."):
            self.status.value = 'error: choose a file to save to ("save as" is empty)'
            return None
        if path.is_dir():
            self.status.value = f"error: {path} is a folder; give a file name inside it"
            return None
        if not path.parent.is_dir():
            self.status.value = f"error: {path.parent} does not exist; choose an existing folder"
            return None
        suffix = path.suffix.lower()
        if suffix and suffix[1:] not in FORMATS:
            self.status.value = (
                f"error: unknown extension {path.suffix!r} in {path.name!r}: end the name in "
                f".{fmt} (or {', '.join('.' + f for f in FORMATS if f != fmt)} with that "
                "format), or leave the extension off"
            )
            return None
        if suffix and suffix[1:] != fmt:
            self.status.value = (
                f"error: {path.name!r} ends in {path.suffix} but the format is {fmt}: choose "
                f"the format {suffix[1:]}, or end the name in .{fmt}"
            )
            return None
        return path.with_suffix("." + fmt)

    def start(self):
        layer = self.rois_box.value
        meta = {} if layer is None else (layer.metadata.get(METADATA_KEY) or {})
        traces = meta.get("traces")
        if traces is None:
            self.status.value = "choose a ROI layer with traces (run Extract traces first)"
            return None
        fmt = self.format.value
        path = self._target(fmt)
        if path is None:
            return None
        spikes = _stored_spikes(meta, traces)
        events = _stored_events(meta, traces)
        try:
            rois = rois_from_labels_layer(layer)
            if fmt == "nwb":
                from ...io._nwb import save_nwb

                written = [
                    save_nwb(
                        path, traces, rois=rois, dff=meta.get("dff"),
                        **spikes, pixel_size_um=rois.pixel_size_um,
                        overwrite=bool(self.overwrite.value), **self._nwb_kwargs(layer),
                    )
                ]  # fmt: skip
            else:
                from ...io.trace_files import save_traces

                written = save_traces(
                    path, traces, dff=meta.get("dff"), rois=rois, **spikes, **events,
                    format=fmt, overwrite=bool(self.overwrite.value),
                )  # fmt: skip
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        self.written = [Path(p) for p in written]
        notes = []
        if meta.get("spikes") is not None and not spikes:
            notes.append("the stored spikes do not fit these traces: not saved")
        if meta.get("events") is not None and not events:
            notes.append("the stored events do not fit these traces: not saved")
        elif events and fmt == "nwb":
            notes.append("events are not written to NWB: save NPZ or CSV for them")
        elif events:
            n_events = sum(len(e) for e in events["events"])
            notes.append(f"with the events: {n_events} in {len(events['events'])} ROI(s)")
        self.status.value = (
            f"saved {len(self.written)} file(s): "
            + ", ".join(p.name for p in self.written)
            + "".join(f" ({note})" for note in notes)
        )
        return None

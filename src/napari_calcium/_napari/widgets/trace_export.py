"""Save traces: the traces (dF/F, spikes) stored with a ROI layer to NPZ, CSV or NWB, exactly."""

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


class SaveTracesWidget(_LayerPickers):
    """Write a ROI layer's stored traces, dF/F and spikes; NWB asks for the metadata it needs."""

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
        """The file to write from the "save as" box, or None with the reason on the status line."""
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
                    path, traces, dff=meta.get("dff"), rois=rois,
                    **spikes, format=fmt, overwrite=bool(self.overwrite.value),
                )  # fmt: skip
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        self.written = [Path(p) for p in written]
        stale = meta.get("spikes") is not None and not spikes
        self.status.value = (
            f"saved {len(self.written)} file(s): "
            + ", ".join(p.name for p in self.written)
            + (" (the stored spikes do not fit these traces: not saved)" if stale else "")
        )
        return None

"""Plugins > napari-calcium > Open results: a pipeline output folder back in the viewer.

Reads a folder with :func:`~napari_calcium.pipeline.load_results` (in a worker) and adds the movie
the traces come from (lazily), the summary images and a ROI Labels layer that stores ``rois``,
``traces``, ``dff``, ``spikes`` and ``events`` in ``metadata["napari_calcium"]`` exactly as the
Extract traces / dF/F / Deconvolve / Events widgets do, so the Trace plot and Spike raster docks
show them at once. Run pipeline (``pipeline.py``) uses the same functions to open what it ran.
Nothing is computed here beyond per-ROI means for the features table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, FileEdit
from napari.layers import Layer

from ...errors import NapariCalciumError, OperationCancelled, RecordingError
from ...pipeline import PipelineResults, load_results
from .._layers import METADATA_KEY, image2d_layer_kwargs, movie_layer_kwargs
from .._rois import rois_labels_kwargs
from ._base import JobWidget, wrapping_label
from .traces import _set_features


@dataclass
class LoadedResults:
    """A results folder read for the viewer (in a worker): results, lazy movie, layer metadata."""

    results: PipelineResults
    movie: Any  # lazy (frames, y, x) array, or None when it cannot be opened
    metadata: dict[str, Any]  # for the layers' metadata["napari_calcium"]
    note: str = ""  # why the movie is missing, if it is
    contrast_limits: tuple[float, float] | None = None


def _recording_info(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "recording.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _open_movie(results: PipelineResults) -> tuple[Any, dict[str, Any], str | None]:
    """The movie the traces come from: the input (with the config's channel/plane) or a .bin."""
    from ...io.open import open_recording

    path = results.movie_path
    cfg = (results.provenance.get("config") or {}).get("open") or {}
    intermediate = path.suffix.lower() == ".bin"
    rec = open_recording(path, format=None if intermediate else cfg.get("format"))
    channel = None if intermediate else cfg.get("channel")
    if channel not in rec.channels:  # the pipeline's default: the first channel
        channel = next(iter(rec.channels))
    movie = rec.channels[channel]
    meta = {k: v for k, v in rec.metadata.to_dict().items() if k != "timestamps_s"}
    stamps = rec.metadata.timestamps_s  # the time axis starts at the first frame, as on opening
    meta["first_frame_time_s"] = float(stamps[0]) if stamps is not None and len(stamps) else None
    if movie.ndim == 4:
        meta["plane"] = int(cfg.get("plane") or 0)
        movie = movie[:, meta["plane"]]
    return movie, meta, channel


def read_results(folder: str | Path, *, progress=None, should_stop=None) -> LoadedResults:
    """:func:`load_results` plus the movie the ROIs and traces come from, opened lazily.

    The frame rate and pixel size are the ones the pipeline used (``recording.json``), so the
    layers match the traces even when the config overrode the file's metadata.

    Raises
    ------
    RecordingError
        Not a (completed) pipeline results folder; see :func:`load_results`.
    """
    from .._reader import display_range

    if should_stop is not None and should_stop():
        raise OperationCancelled("opening the results cancelled")
    results = load_results(folder)
    info = _recording_info(results.folder)
    rate = results.frame_rate_hz or info.get("frame_rate_hz")
    meta: dict[str, Any] = {}
    movie, note, limits = None, "", None
    try:
        movie, meta, channel = _open_movie(results)
        meta.update(source_path=str(results.movie_path), channel=channel)
        limits = display_range(movie)
    except (NapariCalciumError, OSError) as exc:
        note = f"movie not opened ({exc})"
    if rate:
        meta.update(frame_rate_hz=float(rate), frame_period_s=1.0 / float(rate))
    if info.get("pixel_size_um") is not None:
        meta["pixel_size_um"] = [float(v) for v in info["pixel_size_um"]]
    elif meta.get("pixel_size_um") is None and results.rois.pixel_size_um is not None:
        meta["pixel_size_um"] = [float(v) for v in np.ravel(results.rois.pixel_size_um)]
    meta["results_folder"] = str(results.folder)
    return LoadedResults(results, movie, meta, note, limits)


def _spikes_source(results: PipelineResults) -> str | None:
    if results.spikes is None:
        return None
    config = results.provenance.get("config") or {}
    return (config.get("deconvolve") or {}).get("input") or "dff"


def _roi_columns(results: PipelineResults, rate: float | None) -> dict[str, np.ndarray]:
    """The per-ROI feature columns the trace/spike widgets add, from the stored results."""
    traces, spikes, events = results.traces, results.spikes, results.events
    cols = {
        "mean_F": np.asarray(traces.F).mean(axis=1),
        "neuropil_coefficient": np.broadcast_to(traces.coefficients, (traces.n_rois,)),
    }
    if spikes is not None:
        cols["tau_decay_s"] = np.asarray(spikes.tau_decay_s)
        if rate:
            cols["spike_rate_hz"] = np.asarray(spikes.activity).mean(axis=1) * rate
        cols["deconv_noise"] = np.asarray(spikes.noise)
    if events is not None and len(events) == traces.n_rois:
        counts = np.array([len(e) for e in events], dtype=np.float64)
        cols["event_count"] = counts
        if rate:
            cols["event_rate_hz"] = counts / (traces.n_frames / rate)
    return cols


def _dock_trace_plot(viewer, labels) -> Any:
    """Open (or reuse) the Trace plot dock and point it at `labels`."""
    _, plot = viewer.window.add_plugin_dock_widget("napari-calcium", "Trace plot")
    box = plot.layer_box
    for i in range(box.count()):
        if box.itemData(i) is labels:
            box.setCurrentIndex(i)
            break
    if plot.layer is not labels:
        plot.set_layer(labels)
    return plot


def add_results_layers(viewer, loaded: LoadedResults, *, dock_plot: bool = False) -> list:
    """Add the movie, the summary images (hidden) and the ROI Labels layer of loaded results.

    Every layer has the recording's y/x scale (µm when the pixel size is known) and the movie
    its time scale; the Labels layer stores what the Trace plot and Spike raster docks show.
    Returns the new layers (also made when `viewer` is None, then not added).
    """
    res, meta = loaded.results, loaded.metadata
    base = res.folder.name
    rate = meta.get("frame_rate_hz")
    layers: list = []

    def add(data, kwargs, kind):
        layer = Layer.create(data, kwargs, kind)
        if viewer is not None:
            viewer.add_layer(layer)
        layers.append(layer)
        return layer

    for name, image in res.summary_images.items():
        kwargs = image2d_layer_kwargs(meta, name=f"{base} {name}")
        kwargs["metadata"][METADATA_KEY]["summary_image"] = name
        add(image, {**kwargs, "visible": False}, "image")
    movie_layer = None
    if loaded.movie is not None:
        kwargs = movie_layer_kwargs(meta, name=f"{base} movie", ndim=3)
        kwargs["multiscale"] = False
        if loaded.contrast_limits is not None:
            kwargs["contrast_limits"] = loaded.contrast_limits
        movie_layer = add(loaded.movie, kwargs, "image")
    stored = {
        "traces": res.traces,
        "dff": res.dff,
        "spikes": res.spikes,
        "spikes_source": _spikes_source(res),
        "events": res.events,
        "events_source": "dff" if res.events is not None else None,
        "frame_rate_hz": rate,
        "results_folder": str(res.folder),
    }
    data, kwargs = rois_labels_kwargs(
        res.rois, name=f"{base} ROIs", reference=movie_layer, extra_meta=stored
    )
    if movie_layer is None:  # place the labels like the summary images
        place = image2d_layer_kwargs(meta, name="")
        kwargs.update(scale=place["scale"], units=place["units"], axis_labels=place["axis_labels"])
        kwargs["metadata"][METADATA_KEY] = {**meta, **kwargs["metadata"][METADATA_KEY]}
    labels = Layer.create(data, kwargs, "labels")
    _set_features(labels, res.traces.ids, **_roi_columns(res, rate))
    if len(res.traces.ids):
        labels.selected_label = int(res.traces.ids[0])
    if viewer is not None:
        viewer.add_layer(labels)
        if dock_plot and getattr(viewer, "window", None) is not None:
            _dock_trace_plot(viewer, labels)
    layers.append(labels)
    return layers


def _opened_text(loaded: LoadedResults, layers: list) -> str:
    res = loaded.results
    text = (
        f"opened {res.folder.name}: {res.rois.n_rois} ROI(s) × {res.traces.n_frames} frames, "
        f"{len(layers)} layer(s)"
    )
    return text + (f"; {loaded.note}" if loaded.note else "")


def _text_of(edit: FileEdit) -> str:
    return str(edit.line_edit.value).strip()


class OpenResultsWidget(JobWidget):
    """Open a pipeline output folder: movie, summary images, ROIs with features and traces."""

    title = "open results"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.folder = FileEdit(label="results folder", mode="d")
        self.dock_plot = CheckBox(text="show the traces in the Trace plot", value=True)
        super().__init__([self.folder, self.dock_plot], run_text="Open")
        wrapping_label(self.status.native)
        self.last_layers: list = []
        self.loaded: LoadedResults | None = None

    def start(self):
        text = _text_of(self.folder)
        if not text:
            self.status.value = "choose a pipeline results folder (it holds provenance.json)"
            return None
        folder = Path(text).expanduser()
        if not folder.is_dir():
            self.status.value = f"error: {RecordingError(folder, 'folder not found')}"
            return None
        return self.launch(read_results, folder, on_returned=self._done)

    def _done(self, loaded: LoadedResults) -> None:
        self.loaded = loaded
        self.last_layers = add_results_layers(
            self.viewer, loaded, dock_plot=bool(self.dock_plot.value)
        )
        self.status.value = f"{self.title}: done, {_opened_text(loaded, self.last_layers)}"

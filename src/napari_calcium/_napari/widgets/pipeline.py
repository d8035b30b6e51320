"""Pipeline widgets: "Run pipeline" (edit the TOML config, run it in a worker) and "Open results".

"Run pipeline" calls :func:`napari_calcium.pipeline.run_pipeline` on a recording (a movie layer's
file, or a file or folder), with the config typed in a text editor (prefilled with the packaged
``default.toml``), in a background worker with progress bars and Cancel. "Open results" reads a
pipeline output folder with :func:`~napari_calcium.pipeline.load_results` and adds the movie the
traces come from (lazily), the summary images and a ROI Labels layer that stores ``rois``,
``traces``, ``dff``, ``spikes`` and ``events`` in ``metadata["napari_calcium"]`` exactly as the
Extract traces / dF/F / Deconvolve / Events widgets do, so the Trace plot and Spike raster docks
show them at once. Nothing is computed here beyond per-ROI means for the features table.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton, TextEdit
from napari.layers import Layer

from ...errors import NapariCalciumError, OperationCancelled, ParameterError, RecordingError
from ...pipeline import PipelineConfig, PipelineResults, load_config, load_results, run_pipeline
from .._layers import METADATA_KEY, image2d_layer_kwargs, movie_layer_kwargs
from .._rois import rois_labels_kwargs
from ._base import JobWidget, movie_layers, wrapping_label
from .traces import _set_features

__all__ = [
    "LoadedResults",
    "OpenResultsWidget",
    "RunPipelineWidget",
    "add_results_layers",
    "config_to_toml",
    "default_config_text",
    "parse_config_text",
    "read_results",
]

_FILE = "<file or folder>"  # the input choice "the path typed below", not a layer
_CONFIG_FILTER = "Pipeline config (*.toml *.yaml *.yml)"


# --------------------------------------------------------------------------------------------
# config text
# --------------------------------------------------------------------------------------------


def default_config_text() -> str:
    """The packaged ``default.toml``, comments included (what the editor starts with)."""
    files = importlib.resources.files("napari_calcium.pipeline")
    return files.joinpath("default.toml").read_text(encoding="utf-8")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string


def config_to_toml(config: PipelineConfig) -> str:
    """A config as TOML text (keys that are None, i.e. automatic, are written commented out,
    as is the filter parameter its kind does not take)."""
    unused = {"filter": "sigma" if config.filter.kind == "median" else "size"}
    lines = ["# napari-calcium pipeline config", ""]
    for section, values in config.to_dict().items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = ...  (automatic)")
            elif unused.get(section) == key:
                lines.append(f"# {key} = {_toml_value(value)}  (not used by this kind)")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def parse_config_text(
    text: str, *, folder: str | Path | None = None, source: str | None = None
) -> PipelineConfig:
    """Validate TOML text as a pipeline config (what it leaves out takes the defaults).

    A relative ``[rois] path`` is taken relative to `folder` (the folder of the file the text was
    loaded from), else the current folder.

    Raises
    ------
    ParameterError
        Not valid TOML, or an unknown section or key or a bad value; the message names the
        section and the key.
    """
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"config: not valid TOML ({exc})") from None
    try:
        config = load_config(data)
    except ParameterError as exc:
        raise ParameterError(str(exc).replace("<config mapping>", "config", 1)) from None
    path = config.rois.path
    if path and not Path(path).is_absolute():
        base = Path(folder) if folder is not None else Path.cwd()
        config = dataclasses.replace(
            config, rois=dataclasses.replace(config.rois, path=str(base / path))
        )
    return dataclasses.replace(config, source=source)


# --------------------------------------------------------------------------------------------
# results -> layers
# --------------------------------------------------------------------------------------------


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
    if movie.ndim == 4:
        movie = movie[:, int(cfg.get("plane") or 0)]
    meta = {k: v for k, v in rec.metadata.to_dict().items() if k != "timestamps_s"}
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


# --------------------------------------------------------------------------------------------
# widgets
# --------------------------------------------------------------------------------------------


def _file_dialog(mode: str, caption: str, start: str | None = None) -> Path | None:
    from magicgui.application import use_app

    filt = _CONFIG_FILTER if mode != "d" else None
    chosen = use_app().get_obj("show_file_dialog")(mode, caption, start, filt)
    return Path(chosen) if chosen else None


def _text_of(edit: FileEdit) -> str:
    return str(edit.line_edit.value).strip()


def _layer_path(layer) -> Path | None:
    """The file a layer was read from (napari's source, else the reader's metadata)."""
    path = getattr(getattr(layer, "source", None), "path", None)
    path = path or (layer.metadata.get(METADATA_KEY) or {}).get("source_path")
    return Path(path) if path else None


def run_and_load(
    input_path, out_dir, config, *, overwrite=False, load=True, progress=None, should_stop=None
):
    """The worker of "Run pipeline": :func:`run_pipeline`, then (``load``) :func:`read_results`."""
    run = run_pipeline(
        input_path, out_dir, config, progress=progress, should_stop=should_stop,
        overwrite=overwrite,
    )  # fmt: skip
    return run, (read_results(run.out_dir) if load else None)


def summary_text(name: str, run) -> str:
    """One line about a run: ROIs, frames, events, steps ran/skipped/disabled, output folder."""
    s = run.summary
    counts: dict[str, int] = {}
    for step in run.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    steps = ", ".join(f"{n} {status}" for status, n in counts.items())
    events = f", {s['n_events']} events" if s.get("n_events") is not None else ""
    return (
        f"{name}: {s['n_rois']} ROIs, {s['n_frames']} frames at {s['frame_rate_hz']:g} Hz"
        f"{events}; steps: {steps}; {s['seconds']:.1f} s → {run.out_dir}"
    )


class RunPipelineWidget(JobWidget):
    """Edit the pipeline config (TOML) and run it on a recording; open the results when done."""

    title = "pipeline"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.input_box = ComboBox(label="input", choices=self._input_choices)
        self.input_path = FileEdit(label="file or folder", mode="r")
        self.folder_button = PushButton(text="Choose an input folder…")
        self.out_dir = FileEdit(label="output folder", mode="d")
        self.editor = TextEdit(label="config (TOML)")
        native = self.editor.native
        native.setAcceptRichText(False)
        native.setLineWrapMode(native.LineWrapMode.NoWrap)
        native.setMinimumHeight(260)
        from qtpy.QtGui import QFontDatabase

        native.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.load_button = PushButton(text="Load config…")
        self.save_button = PushButton(text="Save config…")
        self.defaults_button = PushButton(text="Defaults")
        buttons = Container(
            widgets=[self.load_button, self.save_button, self.defaults_button],
            layout="horizontal", labels=False,
        )  # fmt: skip
        self.overwrite = CheckBox(text="overwrite (recompute every step)", value=False)
        self.open_after = CheckBox(text="open the results when done", value=True)
        super().__init__(
            [self.input_box, self.input_path, self.folder_button, self.out_dir, self.editor,
             buttons, self.overwrite, self.open_after],
        )  # fmt: skip
        wrapping_label(self.status.native)  # the run summary is long
        self.config_folder: Path | None = None  # folder of the loaded config file
        self._loaded: tuple[str, str] | None = None  # (file, its text) as loaded
        self.last_run = None
        self.last_layers: list = []
        self.config_text = default_config_text()
        self.input_box.changed.connect(self._show)
        self.folder_button.changed.connect(self._choose_folder)
        self.load_button.changed.connect(self._load_clicked)
        self.save_button.changed.connect(self._save_clicked)
        self.defaults_button.changed.connect(self.reset_config)
        if napari_viewer is not None:
            napari_viewer.layers.events.inserted.connect(self._refresh)
            napari_viewer.layers.events.removed.connect(self._refresh)
        self._show()

    # ------------------------------------------------------------------ input and output
    def _input_choices(self, _w=None) -> list[tuple[str, Any]]:
        layers = [(f"layer: {ly.name}", ly) for ly in movie_layers(self.viewer) if _layer_path(ly)]
        return [*layers, ("file or folder (below)", _FILE)]

    def _refresh(self, _event=None) -> None:
        self.input_box.reset_choices()
        self._show()

    def _show(self, *_) -> None:
        from_file = isinstance(self.input_box.value, str)
        self.input_path.enabled = self.folder_button.enabled = from_file

    def _choose_folder(self, *_) -> None:
        chosen = _file_dialog("d", "Recording folder (Bruker T-series, folder of TIFFs, ...)")
        if chosen is not None:
            self.input_path.value = chosen
            self.input_box.value = _FILE

    def input(self) -> Path | None:
        """The recording to run on: the chosen layer's file, or the path typed below."""
        choice = self.input_box.value
        if choice is not None and not isinstance(choice, str):
            return _layer_path(choice)
        text = _text_of(self.input_path)
        return Path(text).expanduser() if text else None

    def output(self, input_path: Path) -> Path:
        """The output folder; empty: ``<input>-results`` beside the input (filled in)."""
        text = _text_of(self.out_dir)
        if text:
            return Path(text).expanduser()
        out = input_path.parent / f"{input_path.stem or input_path.name}-results"
        self.out_dir.value = out
        return out

    # ------------------------------------------------------------------ config
    @property
    def config_text(self) -> str:
        return self.editor.native.toPlainText()

    @config_text.setter
    def config_text(self, text: str) -> None:
        self.editor.native.setPlainText(text)  # plain: "<ROI file>" is not markup

    def reset_config(self, *_) -> None:
        self.config_text = default_config_text()
        self.config_folder, self._loaded = None, None

    def config(self) -> PipelineConfig:
        """The validated config of the editor (ParameterError names the section and key)."""
        text = self.config_text
        source = self._loaded[0] if self._loaded and self._loaded[1] == text else None
        return parse_config_text(text, folder=self.config_folder, source=source)

    def load_config_file(self, path: str | Path) -> None:
        """Put a config file into the editor: TOML as written, YAML validated and as TOML."""
        path = Path(path)
        try:
            if path.suffix.lower() == ".toml":
                text = path.read_text(encoding="utf-8")
            else:
                text = config_to_toml(load_config(path))
        except (NapariCalciumError, OSError) as exc:
            self.status.value = f"error: {exc}"
            return
        self.config_text = text
        self.config_folder, self._loaded = path.resolve().parent, (str(path), text)
        self.status.value = f"config loaded from {path}"

    def save_config_file(self, path: str | Path) -> None:
        """Write the editor's text to a file (a config with an error is saved, and reported)."""
        path = Path(path)
        text = self.config_text
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.status.value = f"error: cannot write {path} ({exc.strerror})"
            return
        self.config_folder, self._loaded = path.resolve().parent, (str(path), text)
        try:
            self.config()
            self.status.value = f"config saved to {path}"
        except NapariCalciumError as exc:
            self.status.value = f"config saved to {path}, but it has an error: {exc}"

    def _load_clicked(self, *_) -> None:
        chosen = _file_dialog("r", "Load a pipeline config")
        if chosen is not None:
            self.load_config_file(chosen)

    def _save_clicked(self, *_) -> None:
        chosen = _file_dialog("w", "Save the pipeline config")
        if chosen is not None:
            self.save_config_file(chosen if chosen.suffix else chosen.with_suffix(".toml"))

    def _with_layer_channel(self, config: PipelineConfig) -> PipelineConfig:
        """A layer of a recording's other channel: analyse that channel (unless set)."""
        choice = self.input_box.value
        if choice is None or isinstance(choice, str) or config.open.channel is not None:
            return config
        meta = choice.metadata.get(METADATA_KEY) or {}
        channel, names = meta.get("channel"), meta.get("channel_names") or []
        if channel and names and channel != names[0]:
            opened = dataclasses.replace(config.open, channel=str(channel))
            config = dataclasses.replace(config, open=opened)
        return config

    # ------------------------------------------------------------------ run
    def start(self):
        path = self.input()
        if path is None:
            self.status.value = "choose an input: a movie layer read from a file, or a path"
            return None
        if not path.exists():
            self.status.value = f"error: {path}: does not exist"
            return None
        try:
            config = self._with_layer_channel(self.config())
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        out = self.output(path)
        self.last_run = None
        return self.launch(
            run_and_load, path, out, config, overwrite=bool(self.overwrite.value),
            load=bool(self.open_after.value), on_returned=lambda r: self._done(path, r),
        )  # fmt: skip

    def _done(self, path: Path, result) -> None:
        run, loaded = result
        self.last_run = run
        text = summary_text(path.name, run)
        self.last_layers = []
        if loaded is not None:
            self.last_layers = add_results_layers(self.viewer, loaded, dock_plot=True)
            text += f"; {_opened_text(loaded, self.last_layers)}"
        self.status.value = text

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, OperationCancelled):
            self.status.value = (
                f"{self.title}: cancelled; the finished steps are kept and Run resumes from there"
            )
        else:
            super()._failed(exc)


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

"""Plugins > napari-calcium > Run pipeline: edit the TOML config, run it in a worker.

"Run pipeline" calls :func:`napari_calcium.pipeline.run_pipeline` on a recording (a movie layer's
file, or a file or folder), with the config typed in a text editor (prefilled with the packaged
``default.toml``), in a background worker with progress bars and Cancel. A layer computed in the
viewer (motion-corrected, filtered, cropped: its metadata names the layer it is ``derived_from``)
is run on its own data: the worker first writes that data to a binary stack beside the output
folder (``<output>-input/movie.bin``, with ``movie.layer.json`` saying which layer, derived from
which file by which steps), runs the pipeline on the stack with the layer's frame rate and pixel
size, and adds the same description to the results' ``provenance.json`` (``"input_layer"``). For
a ``(t, z, y, x)`` layer a plane picker chooses "plane k" (``[open] plane``) or "all planes" (one
run per plane, into ``<output>/plane<k>``). When a run is done its results are opened in the
viewer as "Open results" (``results.py``) opens them.
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

from ...errors import NapariCalciumError, OperationCancelled, ParameterError, RecordingError
from ...pipeline import PipelineConfig, load_config, run_pipeline
from ...pipeline.steps import summary_notes
from .._layers import METADATA_KEY
from ._base import (
    ALL_PLANES,
    JobWidget,
    PlaneView,
    _frame_rate_hz,
    movie_layers,
    n_planes,
    plane_index,
    plane_picker,
    select_plane,
    wrapping_label,
)
from .results import LoadedResults, _opened_text, _text_of, add_results_layers, read_results

__all__ = [
    "PipelineInput",
    "RunPipelineWidget",
    "config_to_toml",
    "default_config_text",
    "is_derived",
    "parse_config_text",
    "run_inputs",
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


# --------------------------------------------------------------------------------------------
# widgets
# --------------------------------------------------------------------------------------------


def _file_dialog(mode: str, caption: str, start: str | None = None) -> Path | None:
    from magicgui.application import use_app

    filt = _CONFIG_FILTER if mode != "d" else None
    chosen = use_app().get_obj("show_file_dialog")(mode, caption, start, filt)
    return Path(chosen) if chosen else None


def _layer_path(layer) -> Path | None:
    """The file a layer was read from (napari's source, else the reader's metadata)."""
    path = getattr(getattr(layer, "source", None), "path", None)
    path = path or (layer.metadata.get(METADATA_KEY) or {}).get("source_path")
    return Path(path) if path else None


def run_and_load(
    input_path, out_dir, config, *, overwrite=False, load=True, progress=None, should_stop=None
):
    """One run of "Run pipeline": :func:`run_pipeline`, then (``load``) :func:`read_results`."""
    run = run_pipeline(
        input_path, out_dir, config, progress=progress, should_stop=should_stop,
        overwrite=overwrite,
    )  # fmt: skip
    return run, (read_results(run.out_dir) if load else None)


#: the binary stack a run on a layer's data reads, in ``<output>-input/`` beside the output folder
STACK_NAME = "movie.bin"
#: beside the stack: which layer it holds, derived from which file by which steps
STACK_RECORD_SUFFIX = ".layer.json"


def is_derived(layer) -> bool:
    """Whether a movie layer holds data computed in the viewer rather than its file's pixels.

    A layer a napari-calcium step made names the layer it is ``derived_from`` (motion
    correction, filter, crop, bin, ...); a layer with no file behind it (added from Python) has
    only its data too. The pipeline runs such a layer on its data, not on the file.
    """
    meta = layer.metadata.get(METADATA_KEY) or {}
    return bool(meta.get("derived_from")) or _layer_path(layer) is None


def _slug(name: str) -> str:
    """A layer name as a file name: letters, digits, ``.-_`` kept, the rest ``_``."""
    text = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip("._")
    return text[:120] or "layer"


def _pixel_size(meta: dict) -> tuple[float, float] | None:
    px = meta.get("pixel_size_um")
    if px is None:
        return None
    values = [float(v) for v in np.ravel(px)]
    return (values[0], values[-1])


def layer_record(layer) -> dict[str, Any]:
    """What a layer's data is, for the provenance of a pipeline run on it.

    Parameters
    ----------
    layer : napari.layers.Image or PlaneView
        The movie layer, or one plane of a volume layer (:func:`~._base.select_plane`).

    Returns
    -------
    dict
        ``layer`` (its name in the viewer), ``plane`` (of the recording, when known),
        ``derived_from``, ``source_path`` (the file it comes from), ``channel``, ``steps`` (what
        was done to it in the viewer, in order), ``frame_rate_hz``, ``pixel_size_um``,
        ``shape`` and ``dtype``: plain JSON values.
    """
    from ...io._serial import jsonable

    meta = layer.metadata.get(METADATA_KEY) or {}
    px = _pixel_size(meta)
    path = _layer_path(layer)
    record = {
        "layer": (layer.volume if isinstance(layer, PlaneView) else layer).name,
        "plane": meta.get("plane"),
        "derived_from": meta.get("derived_from"),
        "source_path": None if path is None else str(path),
        "channel": meta.get("channel"),
        "steps": meta.get("steps", []),
        "frame_rate_hz": _frame_rate_hz(layer),
        "pixel_size_um": None if px is None else list(px),
        "shape": [int(n) for n in layer.data.shape],
        "dtype": str(layer.data.dtype),
    }
    return jsonable(record)


@dataclass(frozen=True)
class PipelineInput:
    """One pipeline run the Run pipeline widget starts.

    Attributes
    ----------
    path : pathlib.Path
        The recording the pipeline opens: the layer's file, or the stack written from ``data``.
    out_dir : pathlib.Path
        Its results folder.
    config : PipelineConfig
        Its config (``[open] plane`` set for one plane of a file; for a stack, the format, the
        layer's frame rate and pixel size where the config leaves them out).
    name : str
        What the status line calls it.
    data : array, optional
        A layer's ``(frames, y, x)`` data (lazy or not) to write to ``path`` before the run.
    record : dict, optional
        :func:`layer_record` of that layer.
    """

    path: Path
    out_dir: Path
    config: PipelineConfig
    name: str
    data: Any = None
    record: dict[str, Any] | None = None


def _write_stack(inp: PipelineInput, *, progress=None, should_stop=None) -> None:
    """Write a layer's data to ``inp.path`` (``.bin`` + ``.json``) and its record beside it."""
    from ...io._atomic import atomic_output
    from ...io.binary import save_binary
    from ...pipeline.provenance import now

    record = dict(inp.record or {})
    inp.path.parent.mkdir(parents=True, exist_ok=True)
    save_binary(
        inp.path, inp.data, frame_rate_hz=record.get("frame_rate_hz"),
        pixel_size_um=record.get("pixel_size_um"), overwrite=True, progress=progress,
        should_stop=should_stop,
    )  # fmt: skip
    record.update(stack=str(inp.path), written=now())
    text = json.dumps(record, indent=2) + "\n"
    target = inp.path.with_name(inp.path.stem + STACK_RECORD_SUFFIX)
    with atomic_output(target, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _note_input_layer(out_dir: Path, inp: PipelineInput) -> None:
    """Add ``"input_layer"`` (what the stack holds) to the results' ``provenance.json``."""
    from ...pipeline.provenance import read_provenance, write_provenance

    record = read_provenance(out_dir)
    if record is not None:
        write_provenance(out_dir, {**record, "input_layer": {**(inp.record or {}),
                                                             "stack": str(inp.path)}})  # fmt: skip


def run_inputs(
    inputs: list[PipelineInput], *, overwrite=False, load=True, progress=None, should_stop=None
) -> list[tuple[PipelineInput, Any, LoadedResults | None]]:
    """The worker of "Run pipeline": each run in turn (a layer's data written first).

    Returns
    -------
    list of (PipelineInput, PipelineRun, LoadedResults or None)
        One per run, with its results read back when ``load``.
    """
    done = []
    for inp in inputs:
        if should_stop is not None and should_stop():
            raise OperationCancelled("pipeline cancelled before the next run")
        if inp.data is not None:
            _write_stack(inp, progress=progress, should_stop=should_stop)
        run, _ = run_and_load(
            inp.path, inp.out_dir, inp.config, overwrite=overwrite, load=False,
            progress=progress, should_stop=should_stop,
        )  # fmt: skip
        if inp.data is not None:
            _note_input_layer(run.out_dir, inp)
        done.append((inp, run, read_results(run.out_dir) if load else None))
    return done


def summary_text(name: str, run) -> str:
    """One line about a run: ROIs, frames, events, steps ran/skipped/disabled, output folder,
    then ROIs with flagged dF/F and detection warnings."""
    s = run.summary
    counts: dict[str, int] = {}
    for step in run.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    steps = ", ".join(f"{n} {status}" for status, n in counts.items())
    events = f", {s['n_events']} events" if s.get("n_events") is not None else ""
    notes = summary_notes(s)  # flagged dF/F, detection warnings: as the CLI says them
    return (
        f"{name}: {s['n_rois']} ROIs, {s['n_frames']} frames at {s['frame_rate_hz']:g} Hz"
        f"{events}; steps: {steps}; {s['seconds']:.1f} s → {run.out_dir}{notes}"
    )


class RunPipelineWidget(JobWidget):
    """Edit the pipeline config (TOML) and run it on a recording; open the results when done.

    The input is a movie layer or a file or folder. A layer read from a file runs the file (its
    channel, and the plane chosen); a layer computed in the viewer (:func:`is_derived`) runs its
    own data. For a volume layer the plane picker chooses one plane or "all planes" (one run per
    plane, into ``<output>/plane<k>``).
    """

    title = "pipeline"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.input_box = ComboBox(label="input", choices=self._input_choices)
        self.plane_box = plane_picker(self.input_layer)
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
            [self.input_box, self.plane_box, self.input_path, self.folder_button, self.out_dir,
             self.editor, buttons, self.overwrite, self.open_after],
        )  # fmt: skip
        wrapping_label(self.status.native)  # the run summary is long
        self.config_folder: Path | None = None  # folder of the loaded config file
        self._loaded: tuple[str, str] | None = None  # (file, its text) as loaded
        self.last_run = None
        self.last_runs: list = []  # one PipelineRun per plane of an "all planes" run
        self.last_layers: list = []
        self._auto_out: str | None = None  # the output folder filled in by default, if it is
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
        layers = [(f"layer: {ly.name}", ly) for ly in movie_layers(self.viewer)]
        return [*layers, ("file or folder (below)", _FILE)]

    def _refresh(self, _event=None) -> None:
        self.input_box.reset_choices()
        self._show()

    def _show(self, *_) -> None:
        from_file = isinstance(self.input_box.value, str)
        self.input_path.enabled = self.folder_button.enabled = from_file
        self.plane_box.follow_layer()

    def input_layer(self):
        """The chosen movie layer (None when the input is the path typed below)."""
        choice = self.input_box.value
        return None if choice is None or isinstance(choice, str) else choice

    def _choose_folder(self, *_) -> None:
        chosen = _file_dialog("d", "Recording folder (Bruker T-series, folder of TIFFs, ...)")
        if chosen is not None:
            self.input_path.value = chosen
            self.input_box.value = _FILE

    def input(self) -> Path | None:
        """The file of the recording: the chosen layer's file, or the path typed below."""
        layer = self.input_layer()
        if layer is not None:
            return _layer_path(layer)
        text = _text_of(self.input_path)
        return Path(text).expanduser() if text else None

    def default_output(self) -> Path | None:
        """``<input>-results`` beside the input file; ``<input>-plane<k>-results`` for plane k.

        A layer computed in the viewer is named after the layer (beside its file), so its
        results never land in the folder of the file's own. "All planes" is a folder holding
        ``plane0``, ``plane1``, ... None when there is no file to put it beside.
        """
        layer = self.input_layer()
        path = self.input()
        if layer is not None and is_derived(layer):
            if path is None:
                return None
            base = _slug(layer.name)
        elif path is not None:
            base = path.stem or path.name
        else:
            return None
        k = plane_index(self.plane_box.value) if n_planes(layer) else None
        return path.parent / f"{base}{'' if k is None else f'-plane{k}'}-results"

    def output(self) -> Path | None:
        """The output folder: the one typed, else :meth:`default_output` (filled in).

        A folder filled in by default follows the input and the plane; one the user typed is
        kept.
        """
        text = _text_of(self.out_dir)
        if text and text != self._auto_out:
            return Path(text).expanduser()
        out = self.default_output()
        if out is not None:
            self.out_dir.value = out
            self._auto_out = _text_of(self.out_dir)
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
        layer = self.input_layer()
        if layer is None or config.open.channel is not None:
            return config
        meta = layer.metadata.get(METADATA_KEY) or {}
        channel, names = meta.get("channel"), meta.get("channel_names") or []
        if channel and names and channel != names[0]:
            opened = dataclasses.replace(config.open, channel=str(channel))
            config = dataclasses.replace(config, open=opened)
        return config

    # ------------------------------------------------------------------ run
    def runs(self) -> list[PipelineInput]:
        """The runs Run starts: one, or one per plane for "all planes".

        Raises
        ------
        NapariCalciumError
            No input, a missing file, a bad config, no output folder, or a layer computed in
            the viewer whose frame rate nothing gives.
        """
        layer = self.input_layer()
        derived = layer is not None and is_derived(layer)
        path = self.input()
        if not derived:
            if path is None:
                raise ParameterError("choose an input: a movie layer, or a file or folder")
            if not path.exists():
                raise RecordingError(path, "does not exist")
        config = self.config()
        out = self.output()
        if out is None:
            raise ParameterError(
                f"choose an output folder ({layer.name!r} was not read from a file)"
            )
        n = n_planes(layer)
        choice = self.plane_box.value if n else None
        every = choice == ALL_PLANES
        planes = list(range(n)) if every else [plane_index(choice)]
        runs = []
        for k in planes:
            run_out = out / f"plane{k}" if every else out
            if derived:
                runs.append(self._layer_run(select_plane(layer, k), run_out, config))
                continue
            cfg = self._with_layer_channel(config)
            plane = k if k is not None else self._plane_of(layer, cfg)
            if plane is not None:
                cfg = dataclasses.replace(cfg, open=dataclasses.replace(cfg.open, plane=plane))
            name = path.name + ("" if k is None else f" plane {k}")
            runs.append(PipelineInput(path, run_out, cfg, name))
        return runs

    @staticmethod
    def _plane_of(layer, config: PipelineConfig) -> int | None:
        """The plane of a 3-D layer that shows one plane of its file (unless the config says)."""
        if layer is None or config.open.plane is not None or layer.ndim != 3:
            return None
        plane = (layer.metadata.get(METADATA_KEY) or {}).get("plane")
        return None if plane is None else int(plane)

    @staticmethod
    def _layer_run(layer, out: Path, config: PipelineConfig) -> PipelineInput:
        """A run on a layer's own data: the stack to write, the config to read it with."""
        record = layer_record(layer)
        rate, px = record["frame_rate_hz"], record["pixel_size_um"]
        opened = config.open
        if opened.frame_rate_hz is None and rate is None:
            raise ParameterError(
                f"{layer.name}: the frame rate is unknown (not in the layer's metadata); set "
                "[open] frame_rate_hz in the config"
            )
        opened = dataclasses.replace(
            opened, format="binary", channel=None, plane=None,
            frame_rate_hz=opened.frame_rate_hz or rate,
            pixel_size_um=opened.pixel_size_um or (px[0] if px and px[0] == px[1] else None),
        )  # fmt: skip
        stack = out.parent / f"{out.name}-input" / STACK_NAME
        config = dataclasses.replace(config, open=opened)
        return PipelineInput(stack, out, config, layer.name, data=layer.data, record=record)

    def start(self):
        try:
            runs = self.runs()
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        self.last_run, self.last_runs = None, []
        return self.launch(
            run_inputs, runs, overwrite=bool(self.overwrite.value),
            load=bool(self.open_after.value), on_returned=self._done,
        )  # fmt: skip

    def _done(self, results: list) -> None:
        self.last_runs = [run for _, run, _ in results]
        self.last_run = self.last_runs[-1] if self.last_runs else None
        self.last_layers = []
        texts = []
        for i, (inp, run, loaded) in enumerate(results):
            text = summary_text(inp.name, run)
            if loaded is not None:
                last = i == len(results) - 1  # the Trace plot shows the last plane's ROIs
                layers = add_results_layers(self.viewer, loaded, dock_plot=last)
                self.last_layers += layers
                text += f"; {_opened_text(loaded, layers)}"
            texts.append(text)
        self.status.value = "\n".join(texts)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, OperationCancelled):
            self.status.value = (
                f"{self.title}: cancelled; the finished steps are kept and Run resumes from there"
            )
        else:
            super()._failed(exc)

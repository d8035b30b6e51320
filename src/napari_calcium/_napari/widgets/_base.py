"""The shape every processing widget shares: pick a movie layer, set parameters, Run / Cancel.

A widget subclass only declares its parameter widgets and says which core function to call with
which arguments; running it in a background worker with a progress bar, cancelling it, reporting
errors and adding the result as a layer with the input's scale, units and metadata happen here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from magicgui.widgets import ComboBox, Container, Label, PushButton, Widget
from napari.layers import Layer
from qtpy.QtWidgets import QComboBox, QLabel, QSizePolicy

from ...errors import NapariCalciumError, OperationCancelled
from .._layers import METADATA_KEY
from .._workers import Job, start_job


def is_movie(layer) -> bool | None:
    """Whether an Image layer is a movie: True, False, or None when nothing says.

    Layers napari-calcium makes label their axes: a movie's first axis is ``"t"``, while a
    summary image of a volume is ``("z", "y", "x")``. A layer with napari's default axis labels
    and three or more axes may be a movie (None).
    """
    if layer._type_string != "image" or layer.ndim < 3 or layer.rgb:
        return False
    labels = tuple(str(a) for a in layer.axis_labels)
    if labels and labels[0] == "t":
        return True
    if labels and labels[0] in ("z", "y", "x", "c"):
        return False  # labelled without a time axis: a summary image of a volume, a z-stack
    return None


def movie_layers(viewer) -> list:
    """Image layers that can be movies: known movies first, then the ones nothing describes.

    Within each group the newest comes first; summary images (even of a volume, which have three
    axes) are left out.
    """
    if viewer is None:
        return []
    newest_first = list(reversed(list(viewer.layers)))
    known = [layer for layer in newest_first if is_movie(layer) is True]
    unknown = [layer for layer in newest_first if is_movie(layer) is None]
    return known + unknown


def holds_traces(layer) -> bool:
    """Whether a ROI (Labels) layer has traces stored with it (Extract traces was run on it)."""
    return (layer.metadata.get(METADATA_KEY) or {}).get("traces") is not None


def trace_layers(viewer) -> list:
    """2-D ROI Labels layers, those holding traces first, newest first within each group."""
    if viewer is None:
        return []
    labels = [ly for ly in reversed(list(viewer.layers)) if ly._type_string == "labels"]
    labels = [ly for ly in labels if ly.ndim == 2]
    return [ly for ly in labels if holds_traces(ly)] + [ly for ly in labels if not holds_traces(ly)]


def prefer(box: ComboBox, suits: Callable[[Any], bool | None]) -> None:
    """Keep the user's choice in ``box`` if it suits the step, else pick the first that does.

    Called after the choices change (a layer added, removed, or given traces): a picker never
    stays on a layer the step cannot use while one it can use is there.
    """
    current = box.value
    if current is not None and suits(current):
        return
    for layer in box.choices:
        if suits(layer):
            box.value = layer
            return


#: characters a layer picker is sized for; longer names are elided (the list shows them whole)
PICKER_CHARS = 28


def compact_picker(combo: QComboBox) -> None:
    """Size a combo box for :data:`PICKER_CHARS` characters, not for its longest item.

    A PrairieView layer name can be 80 characters long; a combo box sized to it widened a dock
    to ~1,300 px and left the canvas a third of the window. The full name stays in the
    drop-down list and in the tooltip.
    """
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(PICKER_CHARS)

    def show_full_name(_index: int = 0) -> None:
        combo.setToolTip(combo.currentText())

    combo.currentIndexChanged.connect(show_full_name)
    show_full_name()


def wrapping_label(label: QLabel) -> None:
    """Let a message wrap to the dock's width instead of widening the dock.

    Word wrap alone does not do it: a long layer name or path has no space to break at, and the
    label would ask for its whole width.
    """
    label.setWordWrap(True)
    policy = label.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    label.setSizePolicy(policy)


def _frame_rate_hz(layer) -> float | None:
    meta = layer.metadata.get(METADATA_KEY) or {}
    if meta.get("frame_rate_hz"):
        return float(meta["frame_rate_hz"])
    period = meta.get("frame_period_s")
    return 1.0 / float(period) if period else None


class JobWidget(Container):
    """Run / Cancel buttons and a status line around one background job at a time.

    Subclasses pass their parameter widgets to ``__init__`` and call :meth:`launch`; results,
    cancellation and our errors are reported on the status line, and the buttons follow the job.
    """

    title = "job"

    def __init__(self, parameters: list[Widget], *, run_text: str = "Run") -> None:
        self.run_button = PushButton(text=run_text)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        super().__init__(widgets=[*parameters, self.run_button, self.cancel_button, self.status])
        for widget in parameters:
            if isinstance(widget, ComboBox) and isinstance(widget.native, QComboBox):
                compact_picker(widget.native)
        wrapping_label(self.status.native)  # a long path in a message wraps, not widens
        self.job: Job | None = None
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)

    def start(self) -> Job | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def launch(self, func: Callable, *args: Any, on_returned: Callable, **kwargs: Any) -> Job:
        """Start ``func(*args, **kwargs)`` (plus progress/should_stop) in a background worker."""
        self.status.value = f"{self.title}: running…"
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.job = start_job(
            func, *args, **kwargs,
            on_returned=on_returned, on_errored=self._failed, on_finished=self._finished,
            on_progress=self._progress,
        )  # fmt: skip
        return self.job

    def _progress(self, text: str) -> None:
        """Show the job's progress (percentage, time left) on the status line while it runs."""
        if self.job is not None and not self.job.done and not self.job.cancelled:
            self.status.value = f"{self.title}: running… {text}"

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.value = "cancelling…"

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, OperationCancelled):
            self.status.value = f"{self.title}: cancelled, nothing was left half-written"
        elif isinstance(exc, NapariCalciumError):
            self.status.value = f"error: {exc}"
        else:
            self.status.value = f"unexpected error: {type(exc).__name__}: {exc}"

    def _finished(self) -> None:
        self.run_button.enabled = True
        self.cancel_button.enabled = False


class StepWidget(JobWidget):
    """Base class: a movie-layer picker, the subclass's parameters, Run, Cancel and a status line.

    Subclasses set :attr:`title`, build parameter widgets in :meth:`parameters`, and implement
    :meth:`call` (return ``(function, args, kwargs)``) and :meth:`outputs` (turn the function's
    result into ``(data, layer_kwargs, layer_type)`` tuples).
    """

    title = "step"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.layer_box = ComboBox(label="movie", choices=self._layer_choices)
        super().__init__([self.layer_box, *self.parameters()])
        self.last_layers: list = []
        if napari_viewer is not None:
            napari_viewer.layers.events.inserted.connect(self._refresh)
            napari_viewer.layers.events.removed.connect(self._refresh)

    # -- to override --------------------------------------------------------------------
    def parameters(self) -> list[Widget]:
        return []

    def call(self, layer) -> tuple[Callable, tuple, dict]:
        raise NotImplementedError

    def outputs(self, layer, result) -> list[tuple[Any, dict, str]]:
        raise NotImplementedError

    # -- shared machinery ------------------------------------------------------------------
    def _layer_choices(self, _widget=None) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in movie_layers(self.viewer)]

    def _refresh(self, _event=None) -> None:
        self.layer_box.reset_choices()
        prefer(self.layer_box, is_movie)

    @property
    def layer(self):
        return self.layer_box.value

    def frame_rate_hz(self, layer) -> float | None:
        """The movie's frame rate from its napari-calcium metadata (None if unknown)."""
        return _frame_rate_hz(layer)

    def derived_kwargs(
        self, layer, *, name: str, parameters: dict, keep_axes: int | None = None
    ) -> dict:
        """Layer kwargs for a result derived from ``layer``: same placement, step recorded.

        ``keep_axes`` keeps only the last axes (2 for a ``(y, x)`` summary image of a movie).
        """
        meta = copy.copy(layer.metadata.get(METADATA_KEY) or {})
        meta["steps"] = [*meta.get("steps", []), {"step": self.title, **parameters}]
        meta["derived_from"] = layer.name
        keep = slice(-keep_axes, None) if keep_axes else slice(None)
        return {
            "name": name,
            "scale": tuple(layer.scale)[keep],
            "translate": tuple(layer.translate)[keep],
            "units": tuple(str(u) for u in layer.units)[keep],
            "axis_labels": tuple(layer.axis_labels)[keep],
            "metadata": {**layer.metadata, METADATA_KEY: meta},
        }

    def start(self) -> Job | None:
        layer = self.layer
        if layer is None:
            self.status.value = "choose a movie layer first"
            return None
        try:
            func, args, kwargs = self.call(layer)
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        return self.launch(func, *args, on_returned=lambda result: self._done(layer, result),
                           **kwargs)  # fmt: skip

    def _done(self, layer, result) -> None:
        self.last_layers = []
        for data, kwargs, kind in self.outputs(layer, result):
            new = Layer.create(data, kwargs, kind)
            if self.viewer is not None:
                self.viewer.add_layer(new)
            self.last_layers.append(new)
        names = ", ".join(layer.name for layer in self.last_layers)
        self.status.value = f"{self.title}: done" + (f" → {names}" if names else "")

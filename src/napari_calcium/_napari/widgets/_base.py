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

from ...errors import NapariCalciumError, OperationCancelled
from .._layers import METADATA_KEY
from .._workers import Job, start_job


def movie_layers(viewer) -> list:
    """Image layers with a time axis (ndim >= 3), newest first."""
    if viewer is None:
        return []
    return [
        layer
        for layer in reversed(list(viewer.layers))
        if layer._type_string == "image" and layer.ndim >= 3 and not layer.rgb
    ]


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
        )  # fmt: skip
        return self.job

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

"""The shape every processing widget shares: pick a movie layer, set parameters, Run / Cancel.

A widget subclass only declares its parameter widgets and says which core function to call with
which arguments; running it in a background worker with a progress bar, cancelling it, reporting
errors and adding the result as a layer with the input's scale, units and metadata happen here.

A multi-plane recording opens as one ``(t, z, y, x)`` layer. Under the movie picker a *plane*
picker (:class:`PlanePicker`) then offers "plane 0", "plane 1", ... and, where the step can run
per plane, "all planes". One plane is read lazily (:func:`select_plane` indexes the dask array)
and handed to the step as a 3-D layer view (:class:`PlaneView`), so its result is a 3-D layer
named and described as that plane's (``metadata["napari_calcium"]["plane"]``); "all planes" runs
the step on each plane in turn and stacks the results back into one ``(t, z, y, x)`` or
``(z, y, x)`` layer (:func:`stack_planes`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, Widget
from napari.layers import Layer
from qtpy.QtWidgets import QComboBox, QLabel, QSizePolicy

from ...core._backend import is_dask_array
from ...core._warmup import start_warm_up
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


#: the plane choice that runs a step on every plane of a volume
ALL_PLANES = "all planes"


def n_planes(layer) -> int:
    """How many planes a ``(t, z, y, x)`` movie layer has; 0 for a layer without a z axis.

    A napari-calcium volume labels its axes ``("t", "z", "y", "x")``; a 4-D movie with napari's
    default labels is taken to be one too (the core functions read volumes that way). Anything
    else (a 3-D movie, a summary image, no layer, the path choice of a picker) has no planes.
    """
    if layer is None or isinstance(layer, str) or getattr(layer, "ndim", 0) != 4:
        return 0
    if is_movie(layer) is False:
        return 0
    labels = tuple(str(a) for a in layer.axis_labels)
    if labels[1] in ("t", "c", "y", "x"):  # labelled, and the second axis is not a plane axis
        return 0
    return int(layer.data.shape[1])


def plane_choices(n: int, *, all_planes: bool = True) -> list[str]:
    """``["plane 0", ..., "plane n-1"]``, then ``"all planes"`` when the step can run on each."""
    if n <= 0:
        return []
    return [f"plane {k}" for k in range(n)] + ([ALL_PLANES] if all_planes else [])


def plane_index(choice: Any) -> int | None:
    """The plane a choice names (``"plane 2"`` or ``2``: 2); None for "all planes" or nothing."""
    if choice is None or choice == ALL_PLANES:
        return None
    if isinstance(choice, (int, np.integer)):
        return int(choice)
    text = str(choice)
    if text.startswith("plane ") and text[6:].isdigit():
        return int(text[6:])
    raise NapariCalciumError(f"{choice!r} is not a plane choice (expected 'plane <k>')")


class PlanePicker(ComboBox):
    """The plane choice of a movie widget: "plane 0", "plane 1", ... and maybe "all planes".

    It follows a layer picker (``layer_of`` returns the chosen layer) and is shown only while
    that layer has a z axis. Its choices are computed, so napari's ``reset_choices`` (called on
    every layer change) keeps them right; call :meth:`follow_layer` when the chosen layer
    changes, to show or hide it and keep the user's plane where the new layer has it.

    Parameters
    ----------
    layer_of : callable
        Returns the chosen layer (or None, or a non-layer choice such as a path).
    all_planes : bool or callable
        Whether "all planes" is offered (a callable is asked each time).
    label : str
        The label beside it.
    """

    def __init__(
        self,
        layer_of: Callable[[], Any],
        *,
        all_planes: bool | Callable[[], bool] = True,
        label: str = "plane",
    ) -> None:
        self._layer_of = layer_of
        self._all_planes = all_planes
        self._chosen: str | None = None  # the user's last plane, kept across layers
        self._following = False
        super().__init__(label=label, choices=self._plane_choices, visible=False)
        self.changed.connect(self._remember)

    def _offers_all(self) -> bool:
        return bool(self._all_planes() if callable(self._all_planes) else self._all_planes)

    def _plane_choices(self, _widget=None) -> list[str]:
        return plane_choices(n_planes(self._layer_of()), all_planes=self._offers_all())

    def _remember(self, value) -> None:
        if value is not None and not self._following:
            self._chosen = value

    def follow_layer(self, *_) -> None:
        """Offer the chosen layer's planes; shown only when it has a z axis.

        The user's plane is kept when the layer has it; otherwise the picker starts on "all
        planes" where it is offered, else on "plane 0".
        """
        self._following = True
        try:
            self.reset_choices()
            choices = list(self.choices)
            if choices:
                default = ALL_PLANES if ALL_PLANES in choices else choices[0]
                wanted = self._chosen if self._chosen in choices else default
                if self.value != wanted:
                    self.value = wanted
        finally:
            self._following = False
        self.visible = bool(choices)


def plane_picker(
    layer_of: Callable[[], Any], *, all_planes: bool | Callable[[], bool] = True
) -> PlanePicker:
    """A :class:`PlanePicker` following ``layer_of()`` (call its ``follow_layer`` on changes).

    Examples
    --------
    In a widget with a movie picker ``self.movie_box``::

        self.plane_box = plane_picker(lambda: self.movie_box.value, all_planes=False)
        self.movie_box.changed.connect(self.plane_box.follow_layer)
        ...
        data = select_plane(self.movie_box.value, self.plane_box.value).data
    """
    return PlanePicker(layer_of, all_planes=all_planes)


class PlaneView:
    """One plane of a ``(t, z, y, x)`` movie layer, looking like a ``(t, y, x)`` movie layer.

    ``data`` indexes the volume's array (lazy for a dask array: nothing is read until the step
    reads its frames); ``name`` is ``"<volume> plane <k>"``; scale, translate, units and axis
    labels are the volume's without the z entry; ``metadata["napari_calcium"]["plane"]`` is
    ``k``. Steps take it where they take a layer, and their results are placed and described
    from it.

    Parameters
    ----------
    volume : napari.layers.Image
        The ``(t, z, y, x)`` layer.
    plane : int
        Index along its z axis.
    """

    _type_string = "image"
    rgb = False

    def __init__(self, volume, plane: int) -> None:
        n = n_planes(volume)
        if not 0 <= int(plane) < n:
            raise NapariCalciumError(
                f"{volume.name!r} has {n} plane(s) (0 .. {n - 1}); there is no plane {plane}"
            )
        self.volume = volume
        self.plane = int(plane)

    def _drop_z(self, values) -> tuple:
        values = tuple(values)
        return values[:1] + values[2:]

    @property
    def data(self):
        return self.volume.data[:, self.plane]

    @property
    def name(self) -> str:
        return f"{self.volume.name} plane {self.plane}"

    @property
    def ndim(self) -> int:
        return self.volume.ndim - 1

    @property
    def scale(self) -> tuple:
        return self._drop_z(self.volume.scale)

    @property
    def translate(self) -> tuple:
        return self._drop_z(self.volume.translate)

    @property
    def units(self) -> tuple:
        return self._drop_z(self.volume.units)

    @property
    def axis_labels(self) -> tuple:
        return self._drop_z(self.volume.axis_labels)

    @property
    def contrast_limits(self):
        return self.volume.contrast_limits

    @property
    def source(self):
        return getattr(self.volume, "source", None)

    @property
    def metadata(self) -> dict:
        meta = dict(self.volume.metadata.get(METADATA_KEY) or {})
        meta["plane"] = self.plane
        return {**self.volume.metadata, METADATA_KEY: meta}


def select_plane(layer, choice: Any):
    """What a step reads for a plane choice: a :class:`PlaneView`, or the layer itself.

    Parameters
    ----------
    layer : napari.layers.Image
        The chosen movie layer.
    choice : str, int or None
        The plane picker's value (``"plane 2"``), a plane index, ``"all planes"`` or None.

    Returns
    -------
    PlaneView or layer
        The plane as a 3-D layer view when ``layer`` has planes and ``choice`` names one;
        ``layer`` itself for "all planes", None, or a layer without a z axis. Its ``data`` is
        what to compute on (``select_plane(layer, choice).data``), lazily indexed.
    """
    k = plane_index(choice)
    if k is None or n_planes(layer) == 0:
        return layer
    return PlaneView(layer, k)


def stack_planes(results: list) -> Any:
    """Per-plane results stacked on a plane axis before their last two (y, x) axes.

    ``(t, y, x)`` movies become ``(t, z, y, x)``, ``(y, x)`` images ``(z, y, x)``; dask arrays
    are stacked lazily.
    """
    axis = len(results[0].shape) - 2
    if any(is_dask_array(r) for r in results):
        import dask.array as da

        return da.stack(results, axis=axis)
    return np.stack([np.asarray(r) for r in results], axis=axis)


def run_each(calls: list, *, progress=None, should_stop=None) -> list:
    """Run ``(func, args, kwargs)`` calls in turn (one per plane), passing on the hooks."""
    results = []
    for func, args, kwargs in calls:
        if should_stop is not None and should_stop():
            raise OperationCancelled("stopped between planes")
        results.append(func(*args, progress=progress, should_stop=should_stop, **kwargs))
    return results


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
            elif isinstance(widget, Label) and isinstance(widget.native, QLabel):
                wrapping_label(widget.native)  # a preview line (dF/F, Deconvolve) wraps too
        wrapping_label(self.status.native)  # a long path in a message wraps, not widens
        self.job: Job | None = None
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        # compile the numba kernels in a background process, once: the first Run is then warm
        start_warm_up(first=self.title)

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
    """Base class: a movie-layer picker, a plane picker, the subclass's parameters, Run, Cancel.

    Subclasses set :attr:`title`, build parameter widgets in :meth:`parameters`, and implement
    :meth:`call` (return ``(function, args, kwargs)``) and :meth:`outputs` (turn the function's
    result into ``(data, layer_kwargs, layer_type)`` tuples). Both get the layer to work on: the
    chosen layer, or a :class:`PlaneView` of the chosen plane of a volume.

    For "all planes" of a volume, :meth:`all_planes_mode` says how the step runs: ``"volume"``
    (its core function takes ``(t, z, y, x)``: :meth:`call` gets the volume), ``"per plane"``
    (:meth:`call` on each plane in turn, then :meth:`combine_planes`) or None (not offered).
    """

    title = "step"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.layer_box = ComboBox(label="movie", choices=self._layer_choices)
        parameters = self.parameters()
        self.plane_box = plane_picker(
            lambda: self.layer_box.value, all_planes=lambda: self.all_planes_mode() is not None
        )
        super().__init__([self.layer_box, self.plane_box, *parameters])
        self.last_layers: list = []
        self._planes_run: str | None = None  # "all planes" while the outputs of one are made
        self.layer_box.changed.connect(self.plane_box.follow_layer)
        self.plane_box.follow_layer()
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

    def all_planes_mode(self) -> str | None:
        """How "all planes" runs: ``"per plane"`` (the default), ``"volume"`` or None."""
        return "per plane"

    def combine_planes(self, volume, planes: list, results: list) -> list[tuple[Any, dict, str]]:
        """Outputs of an "all planes" run: by default the results stacked into one layer.

        ``results[k]`` is :meth:`call`'s result on ``planes[k]`` (a :class:`PlaneView`); the
        stacked result (:func:`stack_planes`) goes to :meth:`outputs` with the volume.
        """
        return self.outputs(volume, stack_planes(results))

    # -- shared machinery ------------------------------------------------------------------
    def _layer_choices(self, _widget=None) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in movie_layers(self.viewer)]

    def _refresh(self, _event=None) -> None:
        self.layer_box.reset_choices()
        prefer(self.layer_box, is_movie)
        self.plane_box.follow_layer()

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
        For a :class:`PlaneView` the result is derived from the volume layer, and the plane is
        recorded in the metadata (``"plane"``) and in the step.
        """
        meta = copy.copy(layer.metadata.get(METADATA_KEY) or {})
        step = {"step": self.title, **parameters}
        if isinstance(layer, PlaneView):
            step["plane"] = layer.plane
        elif self._planes_run is not None:
            step["plane"] = self._planes_run
        meta["steps"] = [*meta.get("steps", []), step]
        meta["derived_from"] = (layer.volume if isinstance(layer, PlaneView) else layer).name
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
        choice = self.plane_box.value if n_planes(layer) else None
        try:
            if choice == ALL_PLANES and self.all_planes_mode() == "per plane":
                planes = [PlaneView(layer, k) for k in range(n_planes(layer))]
                calls = [self.call(plane) for plane in planes]
                return self.launch(
                    run_each, calls,
                    on_returned=lambda results: self._done_planes(layer, planes, results),
                )  # fmt: skip
            target = select_plane(layer, choice)
            func, args, kwargs = self.call(target)
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        planes_run = ALL_PLANES if choice == ALL_PLANES else None
        return self.launch(func, *args, on_returned=lambda result: self._done(target, result,
                           planes_run), **kwargs)  # fmt: skip

    def _done(self, layer, result, planes_run: str | None = None) -> None:
        self._planes_run = planes_run
        try:
            self._add(self.outputs(layer, result))
        finally:
            self._planes_run = None

    def _done_planes(self, volume, planes: list, results: list) -> None:
        self._planes_run = ALL_PLANES
        try:
            self._add(self.combine_planes(volume, planes, results))
        finally:
            self._planes_run = None

    def _add(self, outputs: list[tuple[Any, dict, str]]) -> None:
        self.last_layers = []
        for data, kwargs, kind in outputs:
            new = Layer.create(data, kwargs, kind)
            if self.viewer is not None:
                self.viewer.add_layer(new)
            self.last_layers.append(new)
        names = ", ".join(layer.name for layer in self.last_layers)
        self.status.value = f"{self.title}: done" + (f" → {names}" if names else "")

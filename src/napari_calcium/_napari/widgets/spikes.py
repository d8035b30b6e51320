"""Spike-inference widgets: Deconvolve (with a preview on the selected ROI) and Events.

Both read the traces stored with a ROI Labels layer by "Extract traces" / "dF/F" and store their
result with the same layer, in ``layer.metadata["napari_calcium"]``: ``"spikes"`` (a
:class:`~napari_calcium.core.spikes.deconvolution.result.DeconvolutionResult`, with
``"spikes_source"`` naming the traces it was computed from: ``"dff"`` or ``"corrected"``) and
``"events"``. Per-ROI scalars go into the layer's ``features`` (``tau_decay_s``, ``spike_rate_hz``,
``deconv_noise``, ``activity_snr``, ``activity_reliable``, ``event_count``, ``event_rate_hz``).
The Deconvolve widget's live preview of the selected ROI is stored as ``"spikes_preview"``
(``id``, ``fit``, ``activity``, ``method``, ``source``) for the trace plot, which draws it dashed.
All numbers come from the core functions.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, Label, PushButton

from ...core.spikes.deconvolution.api import DECONVOLUTION_METHODS
from ...core.spikes.indicators import INDICATORS
from ...errors import NapariCalciumError, OperationCancelled
from .._layers import METADATA_KEY
from ._base import holds_traces, trace_layers
from .rois import _LayerPickers
from .traces import RATE_HINT, _meta, _set_features, _store

__all__ = ["SOURCES", "DeconvolveWidget", "EventsWidget", "concat_results", "source_traces"]

#: where the deconvolved traces come from: "auto" is dF/F when stored, else corrected traces
SOURCES = ("auto", "dff", "corrected")
_CHUNK_ROIS = 16  # rows per deconvolve call of "all ROIs": the cancel granularity
#: indicator presets offered for τ (the first entry: none, τ estimated per ROI)
INDICATOR_CHOICES = ("none (estimate τ)", *INDICATORS)


def source_traces(meta: dict, source: str = "auto") -> tuple[np.ndarray, str] | None:
    """The (n_rois, n_frames) input of deconvolution and its name, from the layer's store.

    ``"auto"`` takes the stored dF/F when there is one, else the neuropil-corrected traces.
    None when the traces (or the requested dF/F) are not stored.
    """
    traces, dff = meta.get("traces"), meta.get("dff")
    if traces is None:
        return None
    if source == "dff" or (source == "auto" and dff is not None):
        if dff is None or np.shape(dff.dff) != np.shape(traces.corrected):
            return None
        return np.asarray(dff.dff), "dff"
    return np.asarray(traces.corrected), "corrected"


def concat_results(parts: list):
    """One DeconvolutionResult from results of consecutive row blocks (same settings).

    Every per-ROI array field (and every per-ROI list of the parameters) is concatenated along
    the rows; scalars, the method and the other parameters are taken from the first block.
    """
    first = parts[0]
    if len(parts) == 1:
        return first
    joined = {}
    for f in dataclasses.fields(first):
        value = getattr(first, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == first.n_rois:
            joined[f.name] = np.concatenate([getattr(p, f.name) for p in parts], axis=0)
    params = dict(first.parameters)
    for key, value in first.parameters.items():  # per-ROI lists (smoothing σ, shift)
        if isinstance(value, list) and len(value) == first.n_rois:
            params[key] = [v for p in parts for v in p.parameters[key]]
    return dataclasses.replace(first, parameters=params, **joined)


def _rate(layer, traces) -> float:
    """Frames per second of stored traces (theirs, else the layer's metadata)."""
    return float(traces.frame_rate_hz or _meta(layer).get("frame_rate_hz"))


class DeconvolveWidget(_LayerPickers):
    """Infer activity from the stored traces; a preview of the selected ROI follows the settings."""

    title = "deconvolve"
    needs = (("rois_box", holds_traces),)  # the ROI layer whose traces this step reads

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.rois_box = ComboBox(label="ROIs with traces", choices=self._labels)
        self.source = ComboBox(label="input", choices=list(SOURCES), value="auto")
        self.method = ComboBox(
            label="method", choices=list(DECONVOLUTION_METHODS), value=DECONVOLUTION_METHODS[0]
        )
        self.tau_decay = FloatSpinBox(label="τ decay (s; 0 = estimate)", value=0.0, min=0.0,
                                      max=60.0, step=0.001)  # fmt: skip
        self.tau_rise = FloatSpinBox(label="τ rise (s; 0 = estimate)", value=0.0, min=0.0,
                                     max=10.0, step=0.001)  # fmt: skip
        self.indicator = ComboBox(label="indicator (prior for τ)", choices=INDICATOR_CHOICES,
                                  value=INDICATOR_CHOICES[0])  # fmt: skip
        self.estimate_button = PushButton(text="Estimate τ (selected ROI)")
        self.lam_noise = CheckBox(text="λ from the noise level (constrained)", value=False)
        self.lam = FloatSpinBox(label="λ (input units)", value=0.0, min=0.0, max=1e6, step=0.001)
        self.sparse = CheckBox(text="sparse spikes (s_min = 2 σ)", value=False)
        self.preview = Label(value="")
        super().__init__(
            napari_viewer, [self.rois_box],
            [self.source, self.method, self.tau_decay, self.tau_rise, self.indicator,
             self.estimate_button, self.lam_noise, self.lam, self.sparse, self.preview],
            run_text="Deconvolve all ROIs",
        )  # fmt: skip
        self.result = None
        self.preview_result = None
        self._quiet = False
        self._last_key: tuple | None = None
        self.estimate_button.changed.connect(self.estimate_tau)
        for w in (self.source, self.method, self.tau_decay, self.tau_rise, self.indicator,
                  self.lam_noise, self.lam, self.sparse):  # fmt: skip
            w.changed.connect(self.update_preview)
        self.method.changed.connect(self._show)
        self.lam_noise.changed.connect(self._show)
        self._watched = None
        self.rois_box.changed.connect(self._watch)
        self._show()
        self._watch()

    def _labels(self, _w=None):
        return [(layer.name, layer) for layer in trace_layers(self.viewer)]

    def _show(self, *_) -> None:
        self.tau_rise.visible = self.method.value != "oasis-ar1"
        self.lam.enabled = not self.lam_noise.value
        self.sparse.visible = self.method.value != "fista"

    def _watch(self, *_) -> None:
        layer = self.rois_box.value
        if self._watched is not None:
            self._watched.events.selected_label.disconnect(self.update_preview)
            self._watched.events.metadata.disconnect(self._on_metadata)
            if self._watched is not layer:
                self._show_preview(self._watched, None)  # no stale preview on the old layer
        self._watched = layer
        if layer is not None:
            layer.events.selected_label.connect(self.update_preview)
            layer.events.metadata.connect(self._on_metadata)
        self.update_preview()

    def _on_metadata(self, _event=None) -> None:
        """New traces or dF/F stored with the layer: the preview follows (its own store: no)."""
        layer = self.rois_box.value
        key = self._input_key(layer)
        if key != self._last_key:
            self.update_preview()

    def _input_key(self, layer) -> tuple:
        meta = _meta(layer) if layer is not None else {}
        return (id(meta.get("traces")), id(meta.get("dff")))

    # ------------------------------------------------------------------ settings
    def kwargs(self, rate: float, *, estimate: bool = False) -> dict:
        """Keyword arguments of ``deconvolve`` for the current settings (``estimate``: τ None).

        τ boxes at 0 mean ``None``: estimated per ROI, with the indicator preset as a prior the
        data move when one is chosen (``deconvolve``, step 3); "λ from the noise level" passes
        ``lam="noise"``, otherwise the λ value
        (default 0, the most accurate on real ground truth); "sparse spikes" passes
        ``s_min="noise"`` (OASIS methods).
        """
        kwargs: dict = {"frame_rate_hz": float(rate), "method": self.method.value}
        decay = 0.0 if estimate else float(self.tau_decay.value)
        kwargs["tau_decay_s"] = decay if decay > 0 else None
        if self.method.value != "oasis-ar1":
            rise = 0.0 if estimate else float(self.tau_rise.value)
            kwargs["tau_rise_s"] = rise if rise > 0 else None
        if self.indicator.value != INDICATOR_CHOICES[0] and not estimate:
            kwargs["indicator"] = self.indicator.value
        kwargs["lam"] = "noise" if self.lam_noise.value else float(self.lam.value)
        if self.sparse.value and self.method.value != "fista":
            kwargs["s_min"] = "noise"
        return kwargs

    def _inputs(self, layer):
        """(traces, input rows, input name, frame rate) or a message saying what is missing."""
        meta = _meta(layer) if layer is not None else {}
        traces = meta.get("traces")
        if traces is None:
            return "choose a ROI layer with traces (run Extract traces first)"
        rate = traces.frame_rate_hz or meta.get("frame_rate_hz")
        if not rate:
            return "the traces have no frame rate (τ is in seconds)" + RATE_HINT
        found = source_traces(meta, self.source.value)
        if found is None:
            return "no dF/F stored with this layer: run dF/F first, or choose 'corrected'"
        return traces, found[0], found[1], float(rate)

    def _selected_row(self, layer):
        """(roi id, row index, inputs) of the selected ROI, or a message."""
        inputs = self._inputs(layer)
        if isinstance(inputs, str):
            return inputs
        roi_id = int(layer.selected_label)
        hits = np.flatnonzero(np.asarray(inputs[0].ids) == roi_id)
        if hits.size == 0:
            return f"select a ROI (label {roi_id} has no trace)"
        return roi_id, int(hits[0]), inputs

    # ------------------------------------------------------------------ preview
    def update_preview(self, *_) -> None:
        """Deconvolve the selected ROI only, with the current settings; store it for the plot."""
        from ...core.spikes.deconvolution.api import deconvolve

        if self._quiet:
            return
        layer = self.rois_box.value
        self._last_key = self._input_key(layer)
        picked = self._selected_row(layer)
        if isinstance(picked, str):
            self.preview.value = picked
            self.preview_result = None
            self._show_preview(layer, None)
            return
        roi_id, i, (_, x, source, rate) = picked
        try:
            res = deconvolve(x[i][None, :], ids=[roi_id], **self.kwargs(rate))
        except NapariCalciumError as exc:
            self.preview.value = f"error: {exc}"
            self.preview_result = None
            self._show_preview(layer, None)
            return
        self.preview_result = res
        self.preview.value = self._summary(roi_id, res)
        self._show_preview(layer, {
            "id": roi_id, "fit": np.asarray(res.fit)[0], "activity": np.asarray(res.activity)[0],
            "method": res.method, "source": source,
        })  # fmt: skip

    @staticmethod
    def _summary(roi_id: int, res) -> str:
        tau = float(res.tau_decay_s[0])
        rise = float(res.tau_rise_s[0])
        n_spikes = int(np.count_nonzero(np.asarray(res.s)[0] > 0))
        total = float(np.sum(res.activity[0]))
        rise_text = f", τ rise {rise:.3f} s" if rise > 0 else ""
        return (
            f"ROI {roi_id}: τ decay {tau:.3f} s{rise_text}, λ {float(res.lam[0]):.4g}, "
            f"{n_spikes} spike frame(s), total activity {total:.3g}"
        )

    @staticmethod
    def _show_preview(layer, preview: dict | None) -> None:
        """Store the preview with the layer (a new dict: the trace plot draws it, dashed)."""
        if layer is None or (preview is None and not _meta(layer).get("spikes_preview")):
            return
        _store(layer, spikes_preview=preview)

    def estimate_tau(self, *_) -> tuple[float, float] | None:
        """Estimate τ on the selected ROI and put the values into the boxes (then one preview)."""
        from ...core.spikes.deconvolution.api import deconvolve

        layer = self.rois_box.value
        picked = self._selected_row(layer)
        if isinstance(picked, str):
            self.preview.value = picked
            return None
        roi_id, i, (_, x, _, rate) = picked
        try:
            res = deconvolve(x[i][None, :], ids=[roi_id], **self.kwargs(rate, estimate=True))
        except NapariCalciumError as exc:
            self.preview.value = f"error: {exc}"
            return None
        decay, rise = float(res.tau_decay_s[0]), float(res.tau_rise_s[0])
        self._quiet = True
        try:
            self.tau_decay.value = decay
            if self.method.value != "oasis-ar1":
                self.tau_rise.value = rise
        finally:
            self._quiet = False
        self.update_preview()
        return decay, rise

    # ------------------------------------------------------------------ all ROIs
    def start(self):
        layer = self.rois_box.value
        inputs = self._inputs(layer)
        if isinstance(inputs, str):
            self.status.value = inputs
            return None
        traces, x, source, rate = inputs
        kwargs = self.kwargs(rate)
        ids = np.asarray(traces.ids)

        def run(x, ids, *, progress=None, should_stop=None):
            from ...core.spikes.deconvolution.api import deconvolve

            n = x.shape[0]
            bar = progress(total=n, desc="deconvolve") if progress is not None else None
            parts = []
            try:
                for lo in range(0, n, _CHUNK_ROIS):
                    if should_stop is not None and should_stop():
                        raise OperationCancelled("deconvolution cancelled")
                    hi = min(lo + _CHUNK_ROIS, n)
                    parts.append(deconvolve(x[lo:hi], ids=ids[lo:hi], **kwargs))
                    if bar is not None:
                        bar.update(hi - lo)
            finally:
                if bar is not None:
                    bar.close()
            return concat_results(parts)

        return self.launch(run, x, ids, on_returned=lambda r: self._done(layer, traces, source, r))

    def _done(self, layer, traces, source, res) -> None:
        self.result = res
        _store(layer, spikes=res, spikes_source=source)
        rate = float(res.frame_rate_hz)
        _set_features(
            layer, res.ids,
            tau_decay_s=np.asarray(res.tau_decay_s),
            spike_rate_hz=np.asarray(res.activity).mean(axis=1) * rate,
            deconv_noise=np.asarray(res.noise),
            activity_snr=res.transient_snr,
            activity_reliable=res.reliable,
        )  # fmt: skip
        mean_tau = float(np.nanmean(res.tau_decay_s)) if res.n_rois else math.nan
        unreliable = int(np.count_nonzero(~res.reliable))
        self.status.value = (
            f"{self.title}: done ({res.method} on {source}, mean τ {mean_tau:.3f} s) → "
            f"{res.n_rois} ROI(s) stored with {layer.name!r}"
            + (f"; {unreliable} unreliable (activity_reliable = False)" if unreliable else "")
        )


def _detect_events():
    from ...core.spikes.event_detection import detect_events

    return detect_events


def _identify_events():
    from ...core.spikes.events import identify_events

    return identify_events


#: the Events widget's methods: a label -> a function that imports the detector
EVENT_METHODS = {"noise model": _detect_events, "calscipy": _identify_events}


class EventsWidget(_LayerPickers):
    """Event onsets of every stored trace, above each trace's noise; optional Points layer.

    The default method, ``detect_events``, sets each trace's threshold from a noise model so that
    pure noise gives the false-event rate chosen here; "calscipy" is CalSciPy's rule (a threshold
    in SDs of each trace's own derivative), which fires on noise in quiet traces.
    """

    title = "events"
    needs = (("rois_box", holds_traces),)  # the ROI layer whose traces this step reads

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.rois_box = ComboBox(label="ROIs with traces", choices=self._labels)
        self.source = ComboBox(label="input", choices=list(SOURCES), value="auto")
        self.method = ComboBox(label="method", choices=list(EVENT_METHODS), value="noise model")
        self.smooth = FloatSpinBox(label="smoothing σ (s; 0 = none)", value=0.075, min=0.0,
                                   max=10.0, step=0.005)  # fmt: skip
        self.false_rate = FloatSpinBox(label="false events / min of pure noise", value=0.3,
                                       min=0.01, max=60.0, step=0.1)  # fmt: skip
        self.threshold = FloatSpinBox(label="threshold (SD of the derivative)", value=0.5,
                                      min=0.0, max=100.0, step=0.1, visible=False)  # fmt: skip
        self.timeout = FloatSpinBox(label="minimum interval (s)", value=0.5, min=0.0, max=600.0,
                                    step=0.05)  # fmt: skip
        self.points = CheckBox(text="add a Points layer of the events (ROI centroids)", value=True)
        super().__init__(
            napari_viewer, [self.rois_box],
            [self.source, self.method, self.smooth, self.false_rate, self.threshold,
             self.timeout, self.points],
            run_text="Find events",
        )  # fmt: skip
        self.result = None
        self.method.changed.connect(self._method_changed)

    def _method_changed(self, method: str) -> None:
        """Show the threshold of the chosen method; CalSciPy's smoothing default is 0.1 s."""
        calscipy = method == "calscipy"
        self.threshold.visible = calscipy
        self.false_rate.visible = not calscipy
        self.smooth.value = 0.1 if calscipy else 0.075

    def _labels(self, _w=None):
        return [(layer.name, layer) for layer in trace_layers(self.viewer)]

    def kwargs(self, rate: float) -> dict:
        """Keyword arguments of the chosen method's function for the current settings."""
        common = {
            "frame_rate_hz": float(rate),
            "smooth_s": float(self.smooth.value) or None,
            "timeout_s": float(self.timeout.value),
        }
        if self.method.value == "calscipy":
            return {**common, "threshold_sd": float(self.threshold.value)}
        return {**common, "false_rate_hz": float(self.false_rate.value) / 60.0}

    def start(self):
        layer = self.rois_box.value
        meta = _meta(layer) if layer is not None else {}
        traces = meta.get("traces")
        if traces is None:
            self.status.value = "choose a ROI layer with traces (run Extract traces first)"
            return None
        rate = traces.frame_rate_hz or meta.get("frame_rate_hz")
        if not rate:
            self.status.value = (
                "the traces have no frame rate (the intervals are in seconds)" + RATE_HINT
            )
            return None
        found = source_traces(meta, self.source.value)
        if found is None:
            self.status.value = "no dF/F stored with this layer: run dF/F first, or 'corrected'"
            return None
        x, source = found
        kwargs = self.kwargs(rate)
        detect = EVENT_METHODS[self.method.value]()

        def run(x, *, progress=None, should_stop=None):
            from ...core.spikes.events import event_counts

            if should_stop is not None and should_stop():
                raise OperationCancelled("event detection cancelled")
            events = detect(x, **kwargs)
            return events, event_counts(events)

        return self.launch(run, x, on_returned=lambda r: self._done(layer, traces, source, r))

    def _done(self, layer, traces, source, result) -> None:
        events, counts = result
        self.result = events
        _store(layer, events=events, events_source=source)
        duration_s = traces.n_frames / float(_rate(layer, traces))
        noise = {}
        if getattr(events, "noise_sd", None) is not None:  # detect_events: the noise model's
            noise = {
                "event_noise_sd": np.asarray(events.noise_sd, dtype=np.float64),
                "event_threshold_sigma": np.asarray(events.threshold_sigma, dtype=np.float64),
            }
        _set_features(
            layer, traces.ids, event_count=counts.astype(np.float64),
            event_rate_hz=counts / duration_s, **noise,
        )  # fmt: skip
        self.last_layers = []
        text = f"{self.title}: done → {int(counts.sum())} event(s) in {len(counts)} ROI(s)"
        if noise:
            thr = noise["event_threshold_sigma"]
            thr = thr[np.isfinite(thr)]
            if thr.size:
                text += f", threshold {thr.min():.1f}–{thr.max():.1f} σ"
        if self.points.value:
            try:
                points = self._add_points(layer, traces, events)
                text += f", points layer {points.name!r}"
            except NapariCalciumError as exc:
                text += f" (no points layer: {exc})"
        self.status.value = text + f", stored with {layer.name!r}"

    def _movie(self, layer, n_frames: int):
        """The movie the traces came from (``derived_from`` or a movie with as many frames)."""
        from ._base import movie_layers

        movies = [m for m in movie_layers(self.viewer) if m.ndim == 3]
        source = _meta(layer).get("derived_from")
        for test in (lambda m: m.name == source, lambda m: m.data.shape[0] == n_frames):
            hits = [m for m in movies if test(m)]
            if hits:
                return hits[0]
        return None

    def _add_points(self, layer, traces, events):
        """A (frame, y, x) Points layer at the ROI centroids, placed like the movie and ROIs."""
        from .._rois import rois_from_labels_layer

        rois = _meta(layer).get("rois")
        if rois is None or not np.isin(traces.ids, rois.ids).all():
            rois = rois_from_labels_layer(layer)
        centroids = np.asarray(rois.centroids)
        row_of = {int(r): k for k, r in enumerate(rois.ids)}
        coords, roi_ids = [], []
        for i, frames in enumerate(events):
            roi = int(traces.ids[i])
            if roi not in row_of or not len(frames):
                continue
            cy, cx = centroids[row_of[roi]]
            coords.append(
                np.column_stack([frames, np.full(len(frames), cy), np.full(len(frames), cx)])
            )
            roi_ids.append(np.full(len(frames), roi))
        data = np.concatenate(coords).astype(np.float64) if coords else np.zeros((0, 3))
        ids = np.concatenate(roi_ids) if roi_ids else np.zeros(0, np.int64)
        movie = self._movie(layer, traces.n_frames)
        rate = _rate(layer, traces)
        t_scale = float(movie.scale[0]) if movie is not None else 1.0 / rate
        t_shift = float(movie.translate[0]) if movie is not None else 0.0
        kwargs = {
            "name": f"{layer.name} events",
            "scale": (t_scale, *map(float, layer.scale)),
            "translate": (t_shift, *map(float, layer.translate)),
            "features": {"roi_id": ids, "frame": data[:, 0].astype(np.int64)},
            "size": 8.0,  # data pixels
            "face_color": "yellow",
            "metadata": {METADATA_KEY: {"events_of": layer.name}},
        }
        kwargs["axis_labels"] = ("t", *layer.axis_labels)  # Recording properties finds the t axis
        if movie is not None:
            kwargs["units"] = (str(movie.units[0]), *(str(u) for u in layer.units))
        return self._add(data, kwargs, "points")

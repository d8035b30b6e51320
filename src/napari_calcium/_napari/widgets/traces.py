"""Trace widgets: Extract traces (movie + ROI layer) and dF/F (with a preview on the selected ROI).

Results are stored with the ROI Labels layer, in ``layer.metadata["napari_calcium"]``: ``"traces"``
(a :class:`~napari_calcium.core.traces.extraction.TraceSet`) and ``"dff"`` (a
:class:`~napari_calcium.core.traces.dff.DffResult`), and per-ROI scalars go into the layer's
``features`` table (``mean_F``, ``neuropil_coefficient``, ``dff_snr``, ``noise_nu``, and the dF/F
quality flags ``baseline_ok``, ``neuropil_dominated``, ``baseline_fraction`` of issue 17), so the
trace plot and the exporters read them from there. The widgets only call the core functions.
"""

from __future__ import annotations

import warnings

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, Label, SpinBox

from ...core.traces.dff import DEFAULT_MIN_BASELINE_FRACTION, DFF_DENOMINATORS, DFF_METHODS
from ...errors import DegenerateTraceWarning, NapariCalciumError
from .._layers import METADATA_KEY
from .._rois import rois_from_labels_layer
from ._base import (
    PlaneView,
    _frame_rate_hz,
    holds_traces,
    is_movie,
    movie_layers,
    n_planes,
    plane_picker,
    select_plane,
    trace_layers,
)
from ._plot_items import dff_flags
from .rois import _LayerPickers, _layers_of

#: how to give a frame rate the file did not state (widgets that need one say this)
RATE_HINT = ": type it in Plugins > napari-calcium > Recording properties"

#: metadata entries that a new extraction makes stale (computed from the old traces)
STALE_AFTER_TRACES = {
    key: None
    for key in ("dff", "dff_preview", "spikes", "spikes_preview", "spikes_source", "events",
                "events_source")
}  # fmt: skip


def _store(layer, **items) -> None:
    """Put ``items`` into the layer's napari-calcium metadata (a new dict: napari sees a change)."""
    meta = dict(layer.metadata.get(METADATA_KEY) or {})
    meta.update(items)
    layer.metadata = {**layer.metadata, METADATA_KEY: meta}


def _meta(layer) -> dict:
    return layer.metadata.get(METADATA_KEY) or {}


def _set_features(layer, ids: np.ndarray, **columns: np.ndarray) -> None:
    """Add or replace per-ROI columns of a Labels layer's features, matched by ROI id."""
    features = layer.features.copy()
    if "index" not in features.columns or len(features) == 0:
        return
    row_of = {int(v): i for i, v in enumerate(features["index"])}
    for name, values in columns.items():
        col = np.full(len(features), np.nan)
        for roi_id, value in zip(ids, values, strict=True):
            if int(roi_id) in row_of:
                col[row_of[int(roi_id)]] = float(value)
        features[name] = col
    layer.features = features


class ExtractTracesWidget(_LayerPickers):
    """F, neuropil and corrected traces of every ROI of a Labels layer, from a movie layer."""

    title = "extract traces"
    needs = (("movie_box", is_movie),)

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.movie_box = ComboBox(label="movie", choices=self._movies)
        # a (t, z, y, x) volume: which plane the ROIs are on (shown only for a volume)
        self.plane_box = plane_picker(lambda: self.movie_box.value, all_planes=False)
        self.rois_box = ComboBox(label="ROIs", choices=self._labels)
        self.neuropil = CheckBox(text="neuropil correction", value=True)
        self.estimate = CheckBox(text="estimate the coefficient per ROI", value=False)
        self.coefficient = FloatSpinBox(
            label="coefficient r", value=0.7, min=0.0, max=2.0, step=0.05
        )
        self.inner = SpinBox(label="inner radius (px)", value=2, min=0, max=50)
        self.min_pixels = SpinBox(label="min neuropil pixels", value=350, min=1, max=100_000)
        super().__init__(
            napari_viewer, [self.movie_box, self.plane_box, self.rois_box],
            [self.neuropil, self.estimate, self.coefficient, self.inner, self.min_pixels],
            run_text="Extract",
        )  # fmt: skip
        self.result = None
        self.movie_box.changed.connect(self.plane_box.follow_layer)
        self.movie_box.changed.connect(self._plane_of_rois)
        self.rois_box.changed.connect(self._plane_of_rois)
        self.plane_box.follow_layer()
        self._plane_of_rois()

    def _movies(self, _w=None):
        return [
            (layer.name, layer)
            for layer in movie_layers(self.viewer)
            if layer.ndim == 3 or n_planes(layer)
        ]

    def _plane_of_rois(self, *_) -> None:
        """ROIs found on plane k of a volume (their metadata says so): choose plane k."""
        labels = self.rois_box.value
        plane = None if labels is None else _meta(labels).get("plane")
        if plane is not None and f"plane {plane}" in self.plane_box.choices:
            self.plane_box.value = f"plane {plane}"

    def _labels(self, _w=None):
        return [(layer.name, layer) for layer in _layers_of(self.viewer, "labels", ndim=2)]

    def _settings(self) -> dict:
        coefficient = "estimate" if self.estimate.value else float(self.coefficient.value)
        return {
            "neuropil": bool(self.neuropil.value),
            "neuropil_coefficient": coefficient,
            "inner_radius_px": int(self.inner.value),
            "min_pixels": int(self.min_pixels.value),
        }

    def start(self):
        movie, labels = self.movie_box.value, self.rois_box.value
        if movie is not None:  # one plane of a volume, lazily (a PlaneView)
            movie = select_plane(movie, self.plane_box.value)
        if movie is None or labels is None:
            self.status.value = "choose a (t, y, x) movie layer and a ROI Labels layer"
            return None
        try:
            rois = rois_from_labels_layer(labels)
            if tuple(rois.shape) != tuple(movie.data.shape[-2:]):
                raise NapariCalciumError(
                    f"ROIs {labels.name!r} are {rois.shape}, frames of {movie.name!r} are "
                    f"{tuple(movie.data.shape[-2:])}"
                )
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        settings = self._settings()
        rate = _frame_rate_hz(movie)

        def run(data, rois, *, progress=None, should_stop=None):
            from ...core.traces.extraction import extract_traces

            return rois, extract_traces(
                data, rois, frame_rate_hz=rate, progress=progress, should_stop=should_stop,
                **settings,
            )  # fmt: skip

        source = (movie.volume if isinstance(movie, PlaneView) else movie).name  # a layer name
        return self.launch(
            run, movie.data, rois, on_returned=lambda r: self._done(labels, r, source)
        )

    def _done(self, labels, result, movie_name: str | None = None) -> None:
        rois, traces = result
        self.result = traces
        # a new extraction makes an older dF/F, spikes and events stale: drop them
        _store(
            labels,
            rois=rois,
            traces=traces,
            frame_rate_hz=traces.frame_rate_hz,
            traces_from=movie_name,  # the Recording properties widget follows this link
            **STALE_AFTER_TRACES,
        )
        _set_features(
            labels, traces.ids,
            mean_F=traces.F.mean(axis=1),
            neuropil_coefficient=np.broadcast_to(traces.coefficients, (traces.n_rois,)),
        )  # fmt: skip
        self.status.value = (
            f"{self.title}: done → {traces.n_rois} ROI(s) × {traces.n_frames} frames, stored "
            f"with {labels.name!r}"
        )


class DffWidget(_LayerPickers):
    """ΔF/F of the stored traces; a preview of the selected ROI follows every parameter change.

    From the neuropil-corrected traces, the raw F goes along: the denominator rule (default
    ``"floored"``: ``max(F0c, f · F0raw)``) and the ``neuropil_dominated`` flag of
    :func:`~napari_calcium.compute_dff` apply, and the flags go to the preview, the status and the
    ROI layer's features.
    """

    title = "dF/F"
    needs = (("rois_box", holds_traces),)  # the ROI layer whose traces this step reads

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.rois_box = ComboBox(label="ROIs with traces", choices=self._labels)
        self.method = ComboBox(label="method", choices=list(DFF_METHODS), value=DFF_METHODS[0])
        self.window = FloatSpinBox(label="window (s; 0 = method default)", value=0.0, min=0.0,
                                   max=3600.0, step=1.0)  # fmt: skip
        self.percentile = FloatSpinBox(label="percentile (0 = method default)", value=0.0,
                                       min=0.0, max=99.0, step=1.0)  # fmt: skip
        self.use_corrected = CheckBox(text="from neuropil-corrected traces", value=True)
        self.denominator = ComboBox(
            label="denominator", choices=list(DFF_DENOMINATORS), value=DFF_DENOMINATORS[0],
            tooltip="floored: max(corrected F0, f x raw F0); corrected: corrected F0 (before "
            "issue 17); raw: raw F0 (FISSA, CaImAn)",
        )  # fmt: skip
        self.min_fraction = FloatSpinBox(
            label="min corrected / raw F0", value=DEFAULT_MIN_BASELINE_FRACTION, min=0.01,
            max=0.9, step=0.01,
            tooltip="f: floor of the denominator and threshold of the neuropil-dominated flag",
        )  # fmt: skip
        self.preview = Label(value="")
        super().__init__(
            napari_viewer, [self.rois_box],
            [self.method, self.window, self.percentile, self.use_corrected, self.denominator,
             self.min_fraction, self.preview],
            run_text="Compute dF/F for all ROIs",
        )  # fmt: skip
        self.result = None
        for w in (self.method, self.window, self.percentile, self.use_corrected, self.rois_box,
                  self.denominator, self.min_fraction):  # fmt: skip
            w.changed.connect(self.update_preview)
        self._watched = None
        self.rois_box.changed.connect(self._watch)
        self._watch()

    def _labels(self, _w=None):
        # all ROI layers (traces may be added to one after this list was made)
        return [(layer.name, layer) for layer in trace_layers(self.viewer)]

    def _watch(self, *_) -> None:
        layer = self.rois_box.value
        if self._watched is not None:
            self._watched.events.selected_label.disconnect(self.update_preview)
            if self._watched is not layer:
                self._show_preview(self._watched, None)  # no stale preview on the old layer
        self._watched = layer
        if layer is not None:
            layer.events.selected_label.connect(self.update_preview)
        self.update_preview()

    def _kwargs(self, rate: float) -> dict:
        kwargs: dict = {
            "frame_rate_hz": rate,
            "method": self.method.value,
            "denominator": self.denominator.value,
            "min_baseline_fraction": float(self.min_fraction.value),
        }
        if self.window.value > 0 and self.method.value not in ("calscipy", "percentile"):
            kwargs["window_s"] = float(self.window.value)
        if self.percentile.value > 0 and self.method.value not in ("maximin",):
            kwargs["percentile"] = float(self.percentile.value)
        return kwargs

    def _source(self, traces) -> np.ndarray:
        return traces.corrected if self.use_corrected.value else traces.F

    def _raw(self, traces) -> np.ndarray | None:
        """The raw F for the denominator rule: only for neuropil-corrected traces."""
        return traces.F if self.use_corrected.value and traces.Fneu is not None else None

    def update_preview(self, *_) -> None:
        """dF/F of the selected ROI only, with the current settings: baseline, SNR and ν."""
        from ...core.traces.dff import compute_dff, snr, standardized_noise

        layer = self.rois_box.value
        traces = None if layer is None else (layer.metadata.get(METADATA_KEY) or {}).get("traces")
        if traces is None:
            self.preview.value = "no traces: run Extract traces first"
            self._show_preview(layer, None)
            return
        if traces.frame_rate_hz is None:
            self.preview.value = "the traces have no frame rate" + RATE_HINT
            self._show_preview(layer, None)
            return
        roi_id = int(layer.selected_label)
        hits = np.flatnonzero(np.asarray(traces.ids) == roi_id)
        if hits.size == 0:
            self.preview.value = f"select a ROI (label {roi_id} has no trace)"
            self._show_preview(layer, None)
            return
        row = self._source(traces)[hits[0]][None, :]
        raw = self._raw(traces)
        raw = None if raw is None else raw[hits[0]][None, :]
        try:
            with warnings.catch_warnings():  # the flag is shown here, not as a console warning
                warnings.simplefilter("ignore", DegenerateTraceWarning)
                res = compute_dff(row, raw=raw, **self._kwargs(traces.frame_rate_hz))
        except NapariCalciumError as exc:
            self.preview.value = f"error: {exc}"
            self._show_preview(layer, None)
            return
        if not bool(np.asarray(res.baseline_ok)[0]):
            reason = res.baseline_problems()[0]
            self.preview.value = f"ROI {roi_id}: flagged, dF/F is NaN ({reason})"
            self._show_preview(layer, None)
            return
        f0 = np.asarray(res.baseline)[0]
        nu = float(standardized_noise(res.dff, frame_rate_hz=traces.frame_rate_hz)[0])
        flags = res.flag_reasons()[0]
        self.preview.value = (
            f"ROI {roi_id}: F0 {f0.min():.1f}–{f0.max():.1f}, peak dF/F "
            f"{float(np.max(res.dff)):.2f}, SNR {float(snr(res.dff)[0]):.1f}, ν {nu:.2f}"
            + (f"; flagged: {flags}" if flags else "")
        )
        self.preview_result = res
        self._show_preview(layer, {
            "id": roi_id, "dff": np.asarray(res.dff)[0], "baseline": f0, "method": res.method,
            "source": "corrected" if self.use_corrected.value else "F",
            "flags": dff_flags(res, 0),
        })  # fmt: skip

    @staticmethod
    def _show_preview(layer, preview: dict | None) -> None:
        """Store the preview with the layer (a new dict: the trace plot draws it, dashed)."""
        if layer is None or (preview is None and not _meta(layer).get("dff_preview")):
            return
        _store(layer, dff_preview=preview)

    def start(self):
        layer = self.rois_box.value
        traces = None if layer is None else (layer.metadata.get(METADATA_KEY) or {}).get("traces")
        if traces is None:
            self.status.value = "choose a ROI layer with traces (run Extract traces first)"
            return None
        if traces.frame_rate_hz is None:
            self.status.value = (
                "the traces have no frame rate (dF/F windows are in seconds)" + RATE_HINT
            )
            return None
        kwargs = self._kwargs(traces.frame_rate_hz)
        source, raw = self._source(traces), self._raw(traces)

        def run(x, *, progress=None, should_stop=None):
            from ...core.traces.dff import compute_dff, snr, standardized_noise

            res = compute_dff(x, raw=raw, **kwargs)
            rate = kwargs["frame_rate_hz"]
            return res, snr(res.dff), standardized_noise(res.dff, frame_rate_hz=rate)

        return self.launch(run, source, on_returned=lambda r: self._done(layer, traces, r))

    def _done(self, layer, traces, result) -> None:
        res, snr_values, nu = result
        self.result = res
        # spikes or events computed from the old dF/F are stale now
        meta, stale = _meta(layer), {}
        for kind in ("spikes", "events"):
            if meta.get(f"{kind}_source") == "dff":
                stale.update({kind: None, f"{kind}_source": None})
        if meta.get("spikes_preview"):
            stale["spikes_preview"] = None
        _store(layer, dff=res, **stale)
        ok = np.asarray(res.baseline_ok, dtype=bool)
        n = len(ok)
        dominated = (
            np.zeros(n, bool) if res.neuropil_dominated is None
            else np.asarray(res.neuropil_dominated, dtype=bool)
        )  # fmt: skip
        fraction = (
            np.full(n, np.nan) if res.baseline_fraction is None
            else np.asarray(res.baseline_fraction, dtype=np.float64)
        )  # fmt: skip
        _set_features(
            layer, traces.ids,
            dff_snr=np.asarray(snr_values), noise_nu=np.asarray(nu), baseline_ok=ok,
            neuropil_dominated=dominated, baseline_fraction=fraction,
        )  # fmt: skip
        note = ""
        if dominated.any():
            f = res.parameters.get("min_baseline_fraction", DEFAULT_MIN_BASELINE_FRACTION)
            how = {
                "floored": f"dF/F over max(F0c, {f:g} × raw F0)",
                "corrected": "dF/F over that small F0c: inflated",
                "raw": "dF/F over raw F0",
            }.get(res.parameters.get("denominator"), "")
            note += (
                f"; {int(dominated.sum())} ROI(s) flagged neuropil-dominated (corrected F0 <= "
                f"{f:g} × raw F0: {how})"
            )
        if not ok.all():
            note += f"; {int(np.count_nonzero(~ok))} ROI(s) flagged (baseline not positive: NaN)"
        self.status.value = f"{self.title}: done ({res.method}) → stored with {layer.name!r}{note}"

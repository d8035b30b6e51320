"""ROI widgets: Detect ROIs, Shapes → ROIs, Neuropil masks, Match sessions.

Each is a thin front-end: it reads layers, calls the core function (in a background worker
when it can take a while) and adds the result as a Labels layer whose ``features`` table has one
row per ROI and whose metadata keeps the full :class:`~napari_calcium.core.rois.roiset.RoiSet`.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, LineEdit, SpinBox
from napari.layers import Layer

from ...core.rois.roiset import RoiSet
from ...errors import NapariCalciumError
from .._layers import METADATA_KEY
from .._rois import rois_from_labels_layer, rois_from_shapes_layer, rois_labels_kwargs
from ._base import JobWidget, PlaneView, StepWidget, prefer


def _layers_of(viewer, kind: str, *, ndim: int | None = None) -> list:
    if viewer is None:
        return []
    return [
        layer
        for layer in reversed(list(viewer.layers))
        if layer._type_string == kind and (ndim is None or layer.ndim == ndim)
    ]


def _pixel_size_um(layer) -> float | None:
    px = (layer.metadata.get(METADATA_KEY) or {}).get("pixel_size_um")
    if px is None:
        return None
    px = np.broadcast_to(np.asarray(px, dtype=float), (2,))
    return float(np.sqrt(px[0] * px[1]))


class _LayerPickers(JobWidget):
    """A JobWidget whose layer pickers refresh when layers are added or removed."""

    #: (picker attribute, what suits the step) pairs (see ``_base.prefer``); others keep any choice
    needs: tuple = ()

    def __init__(self, napari_viewer, pickers, parameters, **kwargs) -> None:
        self.viewer = napari_viewer
        self.pickers = pickers
        super().__init__([*pickers, *parameters], **kwargs)
        self.last_layers: list = []
        self._chosen: dict = {}  # picker attribute -> the layer the user chose in it
        for attribute, _suits in self.needs:
            getattr(self, attribute).changed.connect(
                lambda value, attribute=attribute: self._note_choice(attribute, value)
            )
        if napari_viewer is not None:
            napari_viewer.layers.events.inserted.connect(self._on_inserted)
            napari_viewer.layers.events.removed.connect(self._refresh)
            for layer in napari_viewer.layers:
                layer.events.metadata.connect(self._refresh)  # traces stored with a layer
        self._refresh()

    def _on_inserted(self, event=None) -> None:
        if event is not None and getattr(event, "value", None) is not None:
            event.value.events.metadata.connect(self._refresh)
        self._refresh()

    def _note_choice(self, attribute: str, value) -> None:
        if not getattr(self, "_refreshing", False):  # a choice made by the user, not by _refresh
            self._chosen[attribute] = value

    def _refresh(self, _event=None) -> None:
        """Update the pickers; steer a picker the user did not set to a layer the step can use."""
        if getattr(self, "_refreshing", False):  # a choice made here may touch metadata again
            return
        self._refreshing = True
        try:
            for picker in self.pickers:
                picker.reset_choices()
            for attribute, suits in self.needs:
                box = getattr(self, attribute)
                if box.value is None or box.value is not self._chosen.get(attribute):
                    prefer(box, suits)
        finally:
            self._refreshing = False

    def _add(self, data, kwargs, kind: str):
        new = Layer.create(data, kwargs, kind)
        if self.viewer is not None:
            self.viewer.add_layer(new)
        self.last_layers.append(new)
        return new


#: the Detect ROIs widget's modality box
MODALITY_CHOICES = ("auto", "two_photon", "one_photon")


class DetectRoisWidget(StepWidget):
    """Find cell bodies in a movie (activity and anatomy), score them, and add a Labels layer.

    Of a volume: one plane, or "all planes", each detected on its own and added as its own
    ``(y, x)`` Labels layer ("<volume> plane <k> ROIs", ``metadata["napari_calcium"]["plane"]``).
    Planes of a volume are tens of µm apart and hold different cells, and every later step
    (Extract traces, Save ROIs) takes a ``(y, x)`` ROI layer on one plane's frames, as suite2p
    keeps one result per plane.
    """

    title = "detect ROIs"

    def parameters(self):
        self.diameter = FloatSpinBox(
            label="cell diameter (µm, or px if no scale; 0 = estimate)",
            value=0.0, min=0.0, max=500.0, step=0.5,
        )  # fmt: skip
        # "auto": one-photon seeds (CNMF-E's, after a background high-pass) for a Miniscope
        # recording or an NWB OnePhotonSeries, two-photon otherwise (as the pipeline)
        self.modality = ComboBox(label="modality", choices=MODALITY_CHOICES, value="auto")
        self.evaluate = CheckBox(text="score SNR and r-value", value=True)
        self.min_snr = FloatSpinBox(label="keep SNR ≥", value=0.0, min=0.0, max=100.0, step=0.5)
        self.min_r = FloatSpinBox(label="keep r-value ≥", value=-1.0, min=-1.0, max=1.0, step=0.05)
        return [self.diameter, self.modality, self.evaluate, self.min_snr, self.min_r]

    def _detect_kwargs(self, layer) -> dict:
        kwargs: dict = {"frame_rate_hz": self.frame_rate_hz(layer)}
        px = _pixel_size_um(layer)
        if self.diameter.value > 0:
            if px is not None:
                kwargs.update(cell_diameter_um=self.diameter.value, pixel_size_um=px)
            else:
                kwargs["cell_diameter_px"] = self.diameter.value
        elif px is not None:
            kwargs["pixel_size_um"] = px
        modality = self.modality.value
        if modality == "auto":
            from ...io.metadata import recording_modality

            source = layer.volume if isinstance(layer, PlaneView) else layer
            modality = recording_modality(source.metadata.get("napari_calcium") or {})
        kwargs["modality"] = modality
        return kwargs

    def call(self, layer):
        if layer.ndim != 3:
            raise NapariCalciumError(
                f"{layer.name!r} has {layer.ndim} axes; ROI detection needs a (t, y, x) movie "
                "(for a volume, choose a plane, or all planes, in the plane box)"
            )
        kwargs = self._detect_kwargs(layer)
        evaluate = self.evaluate.value
        min_snr = self.min_snr.value or None
        min_r = self.min_r.value if self.min_r.value > -1.0 else None

        caught: list[str] = []
        self._detect_warnings = caught

        def run(movie, *, progress=None, should_stop=None):
            import warnings

            from ...core.rois import quality
            from ...core.rois.detection import detect as detection
            from ...errors import DetectionWarning

            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always", DetectionWarning)
                rois = detection.detect_rois(
                    movie, **kwargs, progress=progress, should_stop=should_stop
                )
            for w in seen:
                if issubclass(w.category, DetectionWarning):
                    caught.append(str(w.message))
                else:  # not ours to swallow
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            if evaluate and len(rois):
                rois = quality.evaluate_rois(
                    movie, rois, frame_rate_hz=kwargs.get("frame_rate_hz"),
                    progress=progress, should_stop=should_stop,
                )  # fmt: skip
                rois = quality.filter_rois(rois, min_snr=min_snr, min_r_value=min_r)
            return rois

        self._params = {k: v for k, v in kwargs.items() if v is not None}
        self._params.update(evaluate=evaluate, min_snr=min_snr, min_r_value=min_r)
        return run, (layer.data,), {}

    def outputs(self, layer, result):
        step = {"step": self.title, **self._params}
        if getattr(self, "_detect_warnings", None):
            step["warnings"] = list(self._detect_warnings)
        extra = {"steps": [step]}
        if isinstance(layer, PlaneView):  # ROIs of one plane of the volume layer
            step["plane"] = layer.plane
            extra["derived_from"] = layer.volume.name
        data, kwargs = rois_labels_kwargs(
            result, name=f"{layer.name} ROIs", reference=layer, extra_meta=extra
        )
        return [(data, kwargs, "labels")]

    def _add(self, outputs):
        """Add the layers; a too-short or too-noisy recording's warning goes on the status line."""
        super()._add(outputs)
        found = getattr(self, "_detect_warnings", None)
        if found:
            self.status.value += " — warning: " + " | ".join(dict.fromkeys(found))

    def combine_planes(self, volume, planes, results):
        """One Labels layer per plane (the planes hold different cells)."""
        return [out for plane, rois in zip(planes, results, strict=True)
                for out in self.outputs(plane, rois)]  # fmt: skip


class ShapesToRoisWidget(_LayerPickers):
    """Polygons, rectangles and ellipses drawn in a Shapes layer → ROIs on an image's pixel grid."""

    title = "shapes → ROIs"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.shapes_box = ComboBox(label="shapes", choices=self._shapes)
        self.image_box = ComboBox(label="on image", choices=self._images)
        self.append_box = ComboBox(label="add to", choices=self._targets)
        super().__init__(napari_viewer, [self.shapes_box, self.image_box, self.append_box], [],
                         run_text="Make ROIs")  # fmt: skip

    def _shapes(self, _w=None):
        return [(layer.name, layer) for layer in _layers_of(self.viewer, "shapes")]

    def _images(self, _w=None):
        return [(layer.name, layer) for layer in _layers_of(self.viewer, "image")]

    def _targets(self, _w=None):
        return [("(new Labels layer)", None)] + [
            (layer.name, layer) for layer in _layers_of(self.viewer, "labels", ndim=2)
        ]

    def start(self):
        self.last_layers = []
        shapes, image, target = self.shapes_box.value, self.image_box.value, self.append_box.value
        if shapes is None or image is None:
            self.status.value = "choose a Shapes layer and the image the ROIs belong to"
            return None
        try:
            rois = rois_from_shapes_layer(shapes, tuple(image.data.shape[-2:]), reference=image)
            if target is not None:
                base = rois_from_labels_layer(target)
                rois = base.concat(rois)
                data, kwargs = rois_labels_kwargs(rois, name=target.name, reference=image)
                target.data = data
                target.features = kwargs["features"]
                meta = kwargs["metadata"][METADATA_KEY]
                target.metadata = {**target.metadata, METADATA_KEY: meta}
                self.last_layers.append(target)
            else:
                data, kwargs = rois_labels_kwargs(rois, name=f"{shapes.name} ROIs", reference=image)
                self._add(data, kwargs, "labels")
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        self.status.value = f"{len(rois)} ROI(s) → {self.last_layers[-1].name}"
        return None


class NeuropilWidget(_LayerPickers):
    """Preview the neuropil surround of every ROI (suite2p's rule) as a Labels layer."""

    title = "neuropil masks"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.rois_box = ComboBox(label="ROIs", choices=self._labels)
        self.inner = SpinBox(label="inner radius (px)", value=2, min=0, max=50)
        self.min_pixels = SpinBox(label="min pixels", value=350, min=1, max=100_000)
        self.lam_pct = FloatSpinBox(label="lam percentile", value=50.0, min=0.0, max=100.0)
        self.circular = CheckBox(text="circular (else rectangular) growth", value=False)
        super().__init__(
            napari_viewer, [self.rois_box],
            [self.inner, self.min_pixels, self.lam_pct, self.circular], run_text="Preview",
        )  # fmt: skip

    def _labels(self, _w=None):
        return [(layer.name, layer) for layer in _layers_of(self.viewer, "labels", ndim=2)]

    def _settings(self) -> dict:
        return {
            "inner_radius_px": int(self.inner.value),
            "min_pixels": int(self.min_pixels.value),
            "lam_percentile": float(self.lam_pct.value),
            "circular": bool(self.circular.value),
        }

    def start(self):
        layer = self.rois_box.value
        if layer is None:
            self.status.value = "choose a Labels layer of ROIs"
            return None
        try:
            rois = rois_from_labels_layer(layer)
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        settings = self._settings()

        def run(rois, *, progress=None, should_stop=None):
            from ...core.rois import neuropil

            masks = neuropil.neuropil_masks(rois, **settings)
            return masks, neuropil.neuropil_label_preview(rois, masks)

        return self.launch(run, rois, on_returned=lambda r: self._done(layer, r))

    def _done(self, layer, result) -> None:
        masks, preview = result
        self.last_layers = []
        meta = {**(layer.metadata.get(METADATA_KEY) or {}), "neuropil": masks,
                "steps": [{"step": self.title, **self._settings()}]}  # fmt: skip
        meta.pop("rois", None)
        kwargs = {
            "name": f"{layer.name} neuropil",
            "scale": tuple(layer.scale),
            "translate": tuple(layer.translate),
            "units": tuple(str(u) for u in layer.units),
            "metadata": {**layer.metadata, METADATA_KEY: meta},
            "opacity": 0.35,
        }
        self._add(preview, kwargs, "labels")
        sizes = np.asarray(masks.area)
        # (min(initial=0) was always 0: the status said "0–N px" whatever the masks were)
        low, high = (int(sizes.min()), int(sizes.max())) if sizes.size else (0, 0)
        self.status.value = (
            f"neuropil for {len(masks)} ROI(s): {low}–{high} px each → {self.last_layers[-1].name}"
        )


class MatchSessionsWidget(_LayerPickers):
    """Align two sessions' mean images and pair their ROIs (IoU, Hungarian assignment)."""

    title = "match sessions"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.rois_a = ComboBox(label="ROIs, session A", choices=self._labels)
        self.rois_b = ComboBox(label="ROIs, session B", choices=self._labels)
        self.image_a = ComboBox(label="mean image A", choices=self._images)
        self.image_b = ComboBox(label="mean image B", choices=self._images)
        self.align = CheckBox(text="align the mean images first", value=True)
        self.threshold = FloatSpinBox(label="IoU ≥", value=0.5, min=0.05, max=1.0, step=0.05)
        self.summary = LineEdit(value="", enabled=False)
        super().__init__(
            napari_viewer, [self.rois_a, self.rois_b, self.image_a, self.image_b],
            [self.align, self.threshold], run_text="Match",
        )  # fmt: skip
        self.result = None

    def _labels(self, _w=None):
        return [(layer.name, layer) for layer in _layers_of(self.viewer, "labels", ndim=2)]

    def _images(self, _w=None):
        return [("(none)", None)] + [
            (layer.name, layer) for layer in _layers_of(self.viewer, "image", ndim=2)
        ]

    def start(self):
        la, lb = self.rois_a.value, self.rois_b.value
        if la is None or lb is None:
            self.status.value = "choose the two sessions' ROI layers"
            return None
        try:
            a, b = rois_from_labels_layer(la), rois_from_labels_layer(lb)
            self._a_ids = a.ids
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        ta = None if self.image_a.value is None else np.asarray(self.image_a.value.data)
        tb = None if self.image_b.value is None else np.asarray(self.image_b.value.data)
        kwargs = {"align": bool(self.align.value) and ta is not None and tb is not None,
                  "threshold": float(self.threshold.value)}  # fmt: skip
        from ...core.rois import sessions

        def run(a, b, *, progress=None, should_stop=None):
            # one alignment and one assignment: quick, no blocks to report or stop between
            return sessions.register_rois(a, b, template_a=ta, template_b=tb, **kwargs)

        return self.launch(run, a, b, on_returned=lambda r: self._done(la, lb, r))

    def _done(self, la, lb, match) -> None:
        self.result = match
        self.last_layers = []
        aligned: RoiSet = match.b_aligned
        matched_id = np.zeros(len(aligned), np.int64)
        iou = np.full(len(aligned), np.nan)
        for (_, ib), (id_a, _), score in zip(match.pairs, match.ids, match.scores, strict=True):
            matched_id[ib] = id_a
            iou[ib] = score
        # matched ROIs of B take A's id (same colour in both layers); the others get ids after
        # every id of A and B, so they never collide with a ROI of A
        new_ids = matched_id.copy()
        start = int(max(self._a_ids.max(initial=0), aligned.ids.max(initial=0)))
        unmatched = new_ids == 0
        new_ids[unmatched] = np.arange(start + 1, start + 1 + int(unmatched.sum()))
        relabelled = aligned.replace(ids=new_ids).with_scores(
            matched_to=np.where(matched_id > 0, matched_id, np.nan),
            iou=iou,
            id_in_b=aligned.ids.astype(float),
        )
        data, kwargs = rois_labels_kwargs(
            relabelled, name=f"{lb.name} matched to {la.name}", reference=la
        )
        self._add(data, kwargs, "labels")
        dy, dx = np.asarray(match.shift, float)
        text = (
            f"{match.n_matched} matched; {len(match.unmatched_a)} only in A, "
            f"{len(match.unmatched_b)} only in B; B moved by ({dy:.2f}, {dx:.2f}) px"
        )
        self.summary.value = text
        self.status.value = f"{self.title}: {text}"

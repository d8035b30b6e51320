"""Plugins > napari-calcium > Summary images (also Layers > Project): projections, correlation."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox

from ...core.movie import projections, summary_images
from ._base import StepWidget

KINDS = ("mean", "max", "min", "median", "std", "range", "correlation", "peak-to-noise")


class SummaryImagesWidget(StepWidget):
    """A ``(y, x)`` summary image of a movie, computed in one streaming pass.

    Of a volume: one plane's ``(y, x)`` image, or "all planes" as a ``(z, y, x)`` image (the
    projections in one pass over the volume, the correlation and peak-to-noise images plane by
    plane).
    """

    title = "summary image"

    def parameters(self):
        self.kind = ComboBox(label="image", choices=KINDS, value="correlation")
        self.eight = CheckBox(text="8 neighbours (else 4)", value=True)
        self.sigma = FloatSpinBox(label="PNR smoothing σ (px)", value=0.0, min=0.0, max=20.0)
        self.kind.changed.connect(self._show)
        self._show()
        return [self.kind, self.eight, self.sigma]

    def _show(self, *_):
        self.eight.visible = self.kind.value == "correlation"
        self.sigma.visible = self.kind.value == "peak-to-noise"

    def all_planes_mode(self) -> str:
        local = self.kind.value in ("correlation", "peak-to-noise")
        return "per plane" if local else "volume"

    def _settings(self) -> dict:
        if self.kind.value == "correlation":
            return {"neighbours": 8 if self.eight.value else 4}
        if self.kind.value == "peak-to-noise":
            return {"gaussian_sigma_px": self.sigma.value or None}
        return {"kind": self.kind.value}

    def call(self, layer):
        if self.kind.value == "correlation":
            return summary_images.correlation_image, (layer.data,), self._settings()
        if self.kind.value == "peak-to-noise":
            return summary_images.pnr_image, (layer.data,), self._settings()
        return projections.project, (layer.data,), self._settings()

    def outputs(self, layer, result):
        image = np.asarray(result)
        planes = image.ndim - 2  # (t, [z,] y, x) -> ([z,] y, x)
        kwargs = self.derived_kwargs(
            layer,
            name=f"{layer.name} {self.kind.value}",
            parameters={"image": self.kind.value, **self._settings()},
            keep_axes=2 + planes,
        )
        finite = image[np.isfinite(image)]
        if finite.size:
            lo, hi = np.percentile(finite, (0.5, 99.8))
            kwargs["contrast_limits"] = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
        kwargs["colormap"] = (
            "magma" if self.kind.value in ("correlation", "peak-to-noise") else "gray"
        )
        return [(image, kwargs, "image")]

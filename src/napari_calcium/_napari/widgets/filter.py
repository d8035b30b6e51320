"""Plugins > napari-calcium > Filter movie (also Layers > Filter): median, gaussian, uniform."""

from __future__ import annotations

from magicgui.widgets import ComboBox, FloatSpinBox, SpinBox

from ...core.movie import filters
from ._base import StepWidget

FILTERS = ("median", "gaussian", "uniform")
AXES = {"space and time (t, y, x)": "tyx", "space only (y, x)": "yx"}


class FilterWidget(StepWidget):
    """Filter a movie in frame blocks (seamless), lazily when the movie is lazy.

    Of a volume: one plane, or "all planes" filtered one plane at a time and stacked back into
    a ``(t, z, y, x)`` movie (lazily too).
    """

    title = "filter"

    def parameters(self):
        self.kind = ComboBox(label="filter", choices=FILTERS, value="median")
        self.axes = ComboBox(label="over", choices=list(AXES), value=next(iter(AXES)))
        self.size = SpinBox(label="size (px, frames)", value=3, min=1, max=51, step=2)
        self.sigma = FloatSpinBox(
            label="sigma (px, frames)", value=1.0, min=0.0, max=50.0, step=0.25
        )
        self.kind.changed.connect(self._show)
        self._show()
        return [self.kind, self.axes, self.size, self.sigma]

    def _show(self, *_):
        gaussian = self.kind.value == "gaussian"
        self.sigma.visible = gaussian
        self.size.visible = not gaussian

    def _settings(self) -> dict:
        axes = AXES[self.axes.value]
        if self.kind.value == "gaussian":
            return {"sigma": self.sigma.value, "axes": axes}
        return {"size": self.size.value, "axes": axes}

    def call(self, layer):
        func = getattr(filters, f"{self.kind.value}_filter")
        return func, (layer.data,), self._settings()

    def outputs(self, layer, result):
        params = {"filter": self.kind.value, **self._settings()}
        detail = ", ".join(f"{k}={v}" for k, v in self._settings().items() if k != "axes")
        kwargs = self.derived_kwargs(
            layer, name=f"{layer.name} {self.kind.value}({detail})", parameters=params
        )
        kwargs["contrast_limits"] = layer.contrast_limits
        return [(result, kwargs, "image")]

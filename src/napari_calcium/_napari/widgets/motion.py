"""Plugins > napari-calcium > Motion correction (also Layers > Register): rigid, subpixel."""

from __future__ import annotations

from magicgui.widgets import CheckBox, FloatSpinBox, SpinBox

from ...core.movie.motion import rigid
from ._base import StepWidget


class MotionCorrectionWidget(StepWidget):
    """Rigid motion correction by phase correlation; adds the corrected movie, keeps the shifts."""

    title = "motion correction"

    def parameters(self):
        self.max_shift = FloatSpinBox(label="max shift (px)", value=10.0, min=1.0, max=200.0)
        self.iterations = SpinBox(label="template iterations", value=2, min=0, max=10)
        self.one_photon = CheckBox(text="1-photon: high-pass before estimating", value=False)
        self.highpass = FloatSpinBox(label="high-pass σ (px)", value=3.0, min=0.5, max=50.0)
        self.one_photon.changed.connect(self._show)
        self._show()
        return [self.max_shift, self.iterations, self.one_photon, self.highpass]

    def _show(self, *_):
        self.highpass.visible = self.one_photon.value

    def _settings(self) -> dict:
        return {
            "max_shift_px": self.max_shift.value,
            "n_template_iterations": self.iterations.value,
            "highpass_sigma_px": self.highpass.value if self.one_photon.value else None,
        }

    def call(self, layer):
        return rigid.motion_correct, (layer.data,), self._settings()

    def outputs(self, layer, result):
        kwargs = self.derived_kwargs(
            layer, name=f"{layer.name} registered", parameters=self._settings()
        )
        meta = kwargs["metadata"]["napari_calcium"]
        meta["shifts_px"] = result.shifts  # (frames, 2), (dy, dx)
        kwargs["contrast_limits"] = layer.contrast_limits
        return [(result.movie, kwargs, "image")]

"""Plugins > napari-calcium > Motion correction (also Layers > Register): rigid, subpixel."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, SpinBox

from ...core.movie.motion import rigid
from ._base import StepWidget, stack_planes

#: what fills the pixels shifted in from outside the frame (``motion_correct(border=)``); "crop"
#: is left out: it changes the frame size (the pipeline's ``[motion] border`` offers it)
BORDERS = ("edge", "zero", "nan")


class MotionCorrectionWidget(StepWidget):
    """Rigid motion correction by phase correlation; adds the corrected movie, keeps the shifts.

    A volume is registered plane by plane ("all planes": each plane to its own template, as
    suite2p does, the shifts kept as ``(planes, frames, 2)``), or one chosen plane.
    """

    title = "motion correction"

    def parameters(self):
        self.max_shift = FloatSpinBox(label="max shift (px)", value=10.0, min=1.0, max=200.0)
        self.iterations = SpinBox(label="template iterations", value=2, min=0, max=10)
        self.one_photon = CheckBox(text="1-photon: high-pass before estimating", value=False)
        self.highpass = FloatSpinBox(label="high-pass σ (px)", value=3.0, min=0.5, max=50.0)
        # "edge", as the pipeline: NaN borders would make the traces of ROIs at the edge NaN
        self.border = ComboBox(label="border fill", choices=BORDERS, value="edge")
        self.one_photon.changed.connect(self._show)
        self._show()
        return [self.max_shift, self.iterations, self.one_photon, self.highpass, self.border]

    def _show(self, *_):
        self.highpass.visible = self.one_photon.value

    def _settings(self) -> dict:
        return {
            "max_shift_px": self.max_shift.value,
            "n_template_iterations": self.iterations.value,
            "highpass_sigma_px": self.highpass.value if self.one_photon.value else None,
            "border": self.border.value,
        }

    def call(self, layer):
        return rigid.motion_correct, (layer.data,), self._settings()

    def outputs(self, layer, result):
        return [self._registered(layer, result.movie, result.shifts)]

    def combine_planes(self, volume, planes, results):
        shifts = np.stack([r.shifts for r in results])  # (planes, frames, 2)
        return [self._registered(volume, stack_planes([r.movie for r in results]), shifts)]

    def _registered(self, layer, movie, shifts) -> tuple:
        kwargs = self.derived_kwargs(
            layer, name=f"{layer.name} registered", parameters=self._settings()
        )
        meta = kwargs["metadata"]["napari_calcium"]
        meta["shifts_px"] = shifts  # ([planes,] frames, 2), (dy, dx)
        kwargs["contrast_limits"] = layer.contrast_limits
        return (movie, kwargs, "image")

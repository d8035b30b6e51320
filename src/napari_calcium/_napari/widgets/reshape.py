"""Plugins > napari-calcium > Crop, bin, detrend: reshape a movie before analysis."""

from __future__ import annotations

from magicgui.widgets import ComboBox, FloatSpinBox, SpinBox

from ...core.movie import detrend, reshape
from ...errors import ParameterError
from ._base import StepWidget

OPERATIONS = ("crop", "bin frames", "bin pixels", "detrend", "dF/F", "dF/sqrt(F)")


class ReshapeWidget(StepWidget):
    """Crop (frames and a y/x box), bin in time or space, remove bleaching, or compute dF/F.

    Of a volume: one plane (a ``(t, y, x)`` result), or "all planes" (the core functions take
    the ``(t, z, y, x)`` volume whole).
    """

    title = "reshape"

    def parameters(self):
        self.operation = ComboBox(label="operation", choices=OPERATIONS, value="crop")
        self.t0 = SpinBox(label="first frame", max=10**9)
        self.t1 = SpinBox(label="stop frame (0: last)", max=10**9)
        self.y0 = SpinBox(label="y from (px)", max=10**6)
        self.y1 = SpinBox(label="y to (0: end)", max=10**6)
        self.x0 = SpinBox(label="x from (px)", max=10**6)
        self.x1 = SpinBox(label="x to (0: end)", max=10**6)
        self.factor = SpinBox(label="factor", value=2, min=1, max=64)
        self.method = ComboBox(label="detrend", choices=("linear", "median"), value="median")
        self.window = FloatSpinBox(label="baseline window (s)", value=30.0, min=0.1, max=3600)
        self.operation.changed.connect(self._show)
        self._show()
        return [
            self.operation,
            self.t0,
            self.t1,
            self.y0,
            self.y1,
            self.x0,
            self.x1,
            self.factor,
            self.method,
            self.window,
        ]

    def all_planes_mode(self) -> str:
        return "volume"

    def _show(self, *_):
        op = self.operation.value
        for w in (self.t0, self.t1, self.y0, self.y1, self.x0, self.x1):
            w.visible = op == "crop"
        self.factor.visible = op.startswith("bin")
        self.method.visible = op == "detrend"
        self.window.visible = op.startswith("dF")

    def call(self, layer):
        op, data = self.operation.value, layer.data
        if op == "crop":
            n, h, w = data.shape[0], data.shape[-2], data.shape[-1]
            box = {
                "frames": (self.t0.value, self.t1.value or n),
                "y": (self.y0.value, self.y1.value or h),
                "x": (self.x0.value, self.x1.value or w),
            }
            return reshape.crop, (data,), box
        if op == "bin frames":
            return reshape.bin_frames, (data, self.factor.value), {}
        if op == "bin pixels":
            return reshape.bin_pixels, (data, self.factor.value), {}
        if op == "detrend":
            return detrend.detrend, (data,), {"method": self.method.value}
        rate = self.frame_rate_hz(layer)
        if rate is None:
            raise ParameterError(
                f"{layer.name}: the frame rate is unknown (no napari-calcium metadata); open the "
                "recording with napari-calcium or set layer.metadata['napari_calcium']"
                "['frame_rate_hz']"
            )
        method = "dff" if op == "dF/F" else "dfsqrtf"
        return (
            detrend.movie_dff,
            (data,),
            {"frame_rate_hz": rate, "window_s": self.window.value, "method": method},
        )

    def outputs(self, layer, result):
        op = self.operation.value
        params = {"operation": op}
        movie = result
        scale = list(layer.scale)
        translate = list(layer.translate)
        if op == "crop":
            movie = result.movie
            t0, (y0, x0) = result.frames[0], result.offset_yx
            params.update(frames=list(result.frames), offset_yx=list(result.offset_yx))
            translate[0] += t0 * scale[0]
            translate[-2] += y0 * scale[-2]
            translate[-1] += x0 * scale[-1]
        elif op == "bin frames":
            params["factor"] = self.factor.value
            scale[0] *= self.factor.value
        elif op == "bin pixels":
            params["factor"] = self.factor.value
            scale[-2] *= self.factor.value
            scale[-1] *= self.factor.value
        kwargs = self.derived_kwargs(layer, name=f"{layer.name} {op}", parameters=params)
        kwargs["scale"], kwargs["translate"] = tuple(scale), tuple(translate)
        _update_acquisition(kwargs["metadata"]["napari_calcium"], op, params, result)
        return [(movie, kwargs, "image")]


def _update_acquisition(meta: dict, op: str, params: dict, result) -> None:
    """Keep frame timing and pixel size true for the reshaped movie (downstream steps read them)."""
    factor = params.get("factor", 1)
    stamps = meta.get("timestamps_s")
    if op == "crop":
        t0, t1 = result.frames
        if stamps is not None:
            meta["timestamps_s"] = list(stamps)[t0:t1]
    elif op == "bin frames":
        for key in ("frame_period_s",):
            if meta.get(key):
                meta[key] = meta[key] * factor
        if meta.get("frame_rate_hz"):
            meta["frame_rate_hz"] = meta["frame_rate_hz"] / factor
        if stamps is not None:  # a bin's time is its first frame's
            meta["timestamps_s"] = list(stamps)[::factor][: len(stamps) // factor]
    elif op == "bin pixels" and meta.get("pixel_size_um") is not None:
        meta["pixel_size_um"] = [float(v) * factor for v in meta["pixel_size_um"]]

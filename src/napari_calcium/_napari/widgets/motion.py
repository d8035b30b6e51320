"""Plugins > napari-calcium > Motion correction (also Layers > Register): rigid or piecewise."""

from __future__ import annotations

import dataclasses

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, SpinBox

from ...core.movie.motion import rigid
from ._base import StepWidget, stack_planes

#: what fills the pixels shifted in from outside the frame (``motion_correct(border=)``); "crop"
#: is left out: it changes the frame size (the pipeline's ``[motion] border`` offers it)
BORDERS = ("edge", "zero", "nan")


def patch_vectors(patch_shifts: np.ndarray, centres: tuple, plane: int | None = None):
    """Vectors-layer data of patch shifts: one arrow per patch and frame, at the patch centre.

    Parameters
    ----------
    patch_shifts : ndarray, shape (frames, n_py, n_px, 2)
        (dy, dx) in px of each patch.
    centres : (ndarray (n_py,), ndarray (n_px,))
        Patch centres in px.
    plane : int, optional
        For a volume: the plane index, inserted as a coordinate after the frame.

    Returns
    -------
    data : ndarray, shape (frames * n_py * n_px, 2, 3 or 4)
        ``[[t, (z,) y, x], [0, (0,) dy, dx]]`` in data (pixel) coordinates.
    features : dict
        ``frame``, ``dy_px``, ``dx_px``, ``magnitude_px`` per vector.
    """
    n, gy, gx, _ = patch_shifts.shape
    t, iy, ix = np.meshgrid(np.arange(n), np.arange(gy), np.arange(gx), indexing="ij")
    cy, cx = (np.asarray(c, dtype=np.float64) for c in centres)
    position = [t.ravel().astype(np.float64), cy[iy.ravel()], cx[ix.ravel()]]
    shift = patch_shifts.reshape(-1, 2)
    direction = [np.zeros(len(shift)), shift[:, 0], shift[:, 1]]
    if plane is not None:
        position.insert(1, np.full(len(shift), float(plane)))
        direction.insert(1, np.zeros(len(shift)))
    data = np.stack([np.stack(position, axis=1), np.stack(direction, axis=1)], axis=1)
    features = {
        "frame": t.ravel(),
        "dy_px": shift[:, 0],
        "dx_px": shift[:, 1],
        "magnitude_px": np.hypot(shift[:, 0], shift[:, 1]),
    }
    return data, features


#: what the widget does with corrupted frames (wireless miniscopes) before correcting motion
CORRUPTED = ("keep", "interpolate", "drop")


def repair_and_correct(
    movie, *, corrupted: str, progress=None, should_stop=None, **settings
) -> rigid.MotionCorrectionResult:
    """Corrupted frames found and interpolated or dropped, then motion correction.

    The core functions in turn (:func:`~napari_calcium.detect_corrupted_frames`,
    :func:`~napari_calcium.repair_corrupted_frames`, :func:`~napari_calcium.motion_correct`);
    the frames found, and after ``"drop"`` the input frame of each output frame, are added to
    the result's ``parameters`` (``corrupted_frames``, ``source_frames``).
    """
    from ...core.movie.corrupt_frames import detect_corrupted_frames, repair_corrupted_frames

    found = detect_corrupted_frames(movie, should_stop=should_stop)
    repaired = repair_corrupted_frames(movie, found, mode=corrupted)
    result = rigid.motion_correct(
        repaired.movie, progress=progress, should_stop=should_stop, **settings
    )
    params = {
        **result.parameters,
        "corrupted": corrupted,
        "corrupted_frames": [int(i) for i in found.indices],
        "source_frames": [int(i) for i in repaired.source_frames],
    }
    return dataclasses.replace(result, parameters=params)


class MotionCorrectionWidget(StepWidget):
    """Rigid or piecewise-rigid (NoRMCorre) motion correction; adds the corrected movie.

    The rigid shifts are kept in the corrected layer's metadata (``shifts_px``). Piecewise
    correction also keeps the patch shifts (``patch_shifts_px``, ``patch_centres_px``) and adds
    them as a Vectors layer: one arrow per patch at its centre, in the current frame, pointing
    along the patch's displacement (drawn 4x longer than it is).

    A volume is registered plane by plane ("all planes": each plane to its own template, as
    suite2p does, the shifts kept as ``(planes, frames, 2)``), or one chosen plane.
    """

    title = "motion correction"
    #: how much longer than the shift the arrows of the patch-shift layer are drawn
    VECTOR_LENGTH = 4.0

    def parameters(self):
        self.max_shift = FloatSpinBox(label="max shift (px)", value=10.0, min=1.0, max=200.0)
        self.iterations = SpinBox(label="template iterations", value=2, min=0, max=10)
        self.one_photon = CheckBox(text="1-photon: high-pass before estimating", value=False)
        self.highpass = FloatSpinBox(label="high-pass σ (px)", value=3.0, min=0.5, max=50.0)
        self.piecewise = CheckBox(text="piecewise-rigid (NoRMCorre patches)", value=False)
        self.patch = SpinBox(label="patch (px)", value=128, min=8, max=4096)
        self.overlap = SpinBox(label="patch overlap (px)", value=32, min=0, max=4096)
        self.max_deviation = FloatSpinBox(
            label="max deviation from rigid (px)", value=3.0, min=0.0, max=100.0
        )
        # "edge", as the pipeline: NaN borders would make the traces of ROIs at the edge NaN
        self.border = ComboBox(label="border fill", choices=BORDERS, value="edge")
        # wireless miniscopes: frames with check-pattern noise, found and repaired first
        self.corrupted = ComboBox(label="corrupted frames", choices=CORRUPTED, value="keep")
        self.one_photon.changed.connect(self._show)
        self.piecewise.changed.connect(self._show)
        self._show()
        return [
            self.max_shift, self.iterations, self.one_photon, self.highpass, self.piecewise,
            self.patch, self.overlap, self.max_deviation, self.border, self.corrupted,
        ]  # fmt: skip

    def _show(self, *_):
        self.highpass.visible = self.one_photon.value
        for box in (self.patch, self.overlap, self.max_deviation):
            box.visible = self.piecewise.value

    def _settings(self) -> dict:
        settings = {
            "max_shift_px": self.max_shift.value,
            "n_template_iterations": self.iterations.value,
            "highpass_sigma_px": self.highpass.value if self.one_photon.value else None,
            "border": self.border.value,
        }
        if self.piecewise.value:
            settings.update(
                piecewise=True,
                patch_px=int(self.patch.value),
                overlap_px=int(self.overlap.value),
                max_deviation_px=float(self.max_deviation.value),
            )
        return settings

    def call(self, layer):
        if self.corrupted.value != "keep":
            settings = {**self._settings(), "corrupted": self.corrupted.value}
            return repair_and_correct, (layer.data,), settings
        return rigid.motion_correct, (layer.data,), self._settings()

    def _done(self, layer, result, planes_run=None) -> None:
        super()._done(layer, result, planes_run)
        found = result.parameters.get("corrupted_frames")
        if found is not None:
            how = "dropped" if result.parameters.get("corrupted") == "drop" else "interpolated"
            shown = ", ".join(map(str, found[:10])) + (", ..." if len(found) > 10 else "")
            self.status.value += f"; {len(found)} corrupted frame(s) {how}" + (
                f" ({shown})" if found else ""
            )

    def outputs(self, layer, result):
        out = [self._registered(layer, result.movie, result.shifts, result)]
        if result.piecewise:
            out.append(self._vectors(layer, [result]))
        return out

    def combine_planes(self, volume, planes, results):
        shifts = np.stack([r.shifts for r in results])  # (planes, frames, 2)
        movie = stack_planes([r.movie for r in results])
        out = [self._registered(volume, movie, shifts, results[0])]
        if results[0].piecewise:
            out[0][1]["metadata"]["napari_calcium"]["patch_shifts_px"] = np.stack(
                [r.patch_shifts for r in results]
            )  # (planes, frames, n_py, n_px, 2)
            out.append(self._vectors(volume, results))
        return out

    def _registered(self, layer, movie, shifts, result) -> tuple:
        kwargs = self.derived_kwargs(
            layer, name=f"{layer.name} registered", parameters=self._settings()
        )
        meta = kwargs["metadata"]["napari_calcium"]
        meta["shifts_px"] = shifts  # ([planes,] frames, 2), (dy, dx)
        if "corrupted_frames" in result.parameters:  # found (and repaired) before correcting
            meta["corrupted_frames"] = result.parameters["corrupted_frames"]
            meta["source_frames"] = result.parameters["source_frames"]
        if result.piecewise:
            meta["patch_shifts_px"] = result.patch_shifts  # (frames, n_py, n_px, 2)
            meta["patch_centres_px"] = [np.asarray(c) for c in result.patch_centres]
        kwargs["contrast_limits"] = layer.contrast_limits
        return (movie, kwargs, "image")

    def _vectors(self, layer, results) -> tuple:
        """The patch shifts of each frame as arrows (a Vectors layer over the movie)."""
        if len(results) == 1:
            data, features = patch_vectors(results[0].patch_shifts, results[0].patch_centres)
        else:  # a volume, plane by plane
            parts = [patch_vectors(r.patch_shifts, r.patch_centres, plane=k)
                     for k, r in enumerate(results)]  # fmt: skip
            data = np.concatenate([p[0] for p in parts])
            features = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
        kwargs = self.derived_kwargs(
            layer, name=f"{layer.name} patch shifts", parameters=self._settings()
        )
        kwargs.pop("contrast_limits", None)
        kwargs.update(
            features=features,
            edge_color="magnitude_px",
            edge_colormap="plasma",
            edge_width=1.5,
            length=self.VECTOR_LENGTH,
            vector_style="arrow",
            out_of_slice_display=False,
        )
        return (data, kwargs, "vectors")

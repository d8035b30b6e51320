"""Write traces, ROIs and dF/F to NWB (Neurodata Without Borders) through pynwb (``nwb`` extra).

Layout: ``processing["ophys"]`` holds ``ImageSegmentation`` -> ``PlaneSegmentation`` (one row
per ROI, table id = ROI id, ``pixel_mask`` from the RoiSet weights, a ``neuropil_coefficient``
column), ``Fluorescence`` -> ``RoiResponseSeries`` ``F``, ``Fneu``, ``corrected`` (and
``baseline`` with dF/F) and ``DfOverF`` -> ``RoiResponseSeries`` ``dff``. A deconvolution adds
``RoiResponseSeries`` ``deconvolved`` (the activity), ``deconvolved_s`` (the sparse activity),
``deconvolved_c`` and ``deconvolved_baseline`` directly in ``ophys`` (NWB has no standard
container for inferred activity), and ``deconv_tau_decay_s``, ``deconv_tau_rise_s``,
``deconv_lam``, ``deconv_noise`` columns of the PlaneSegmentation. NWB stores series as
``(time, rois)``: our ``(n_rois, n_frames)`` arrays are written transposed. NWB's pixel masks are
``(x, y, weight)`` triples: ``x`` is the column, ``y`` the row.

Only metadata the user supplies is written; a missing required field raises
:class:`~napari_calcium.errors.ParameterError` naming it (no placeholder subjects or devices).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..core.rois.roiset import RoiSet
from ..core.spikes.deconvolution.result import DeconvolutionResult
from ..core.traces.dff import DffResult
from ..core.traces.extraction import TraceSet
from ..errors import BackendError, ParameterError, ShapeError
from ._atomic import atomic_output

__all__ = ["NWB_REQUIRED", "save_nwb"]

#: required keys of each metadata dict of :func:`save_nwb`
NWB_REQUIRED = {
    "subject": ("subject_id", "species"),
    "device": ("name", "description", "manufacturer"),
    "imaging_plane": ("indicator", "location", "excitation_lambda", "emission_lambda"),
}
_OPTIONAL = {
    "subject": ("age", "sex", "description", "genotype", "strain", "weight", "date_of_birth"),
    "device": ("serial_number", "model_number", "model_name"),
    "imaging_plane": (
        "name",
        "description",
        "optical_channel_name",
        "optical_channel_description",
        "reference_frame",
    ),
}


def _import_pynwb() -> Any:
    try:
        import pynwb
    except ImportError as exc:
        raise BackendError(
            'writing NWB needs pynwb, which is not installed; pip install "napari-calcium[nwb]"'
        ) from exc
    return pynwb


def _check_meta(kind: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ParameterError(
            f"{kind} must be a dict with at least {', '.join(NWB_REQUIRED[kind])}; got "
            f"{type(value).__name__}"
        )
    missing = [k for k in NWB_REQUIRED[kind] if value.get(k) in (None, "")]
    if missing:
        raise ParameterError(
            f"{kind} is missing required NWB field(s): {', '.join(missing)} (give the real "
            "values; napari-calcium writes no placeholders)"
        )
    unknown = sorted(set(value) - set(NWB_REQUIRED[kind]) - set(_OPTIONAL[kind]))
    if unknown:
        raise ParameterError(
            f"{kind} has unknown field(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(NWB_REQUIRED[kind] + _OPTIONAL[kind])}"
        )
    return dict(value)


def save_nwb(
    path: str | os.PathLike,
    traces: TraceSet,
    *,
    rois: RoiSet,
    dff: DffResult | None = None,
    spikes: DeconvolutionResult | None = None,
    spikes_input: str | None = None,
    movie_shape: tuple[int, ...] | None = None,
    pixel_size_um: tuple[float, float] | None = None,
    session_description: str,
    identifier: str,
    session_start_time: _dt.datetime,
    subject: Mapping[str, Any],
    device: Mapping[str, Any],
    imaging_plane: Mapping[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write an NWB file with the ROIs, the traces and dF/F (exact stored values).

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.nwb`` file (written to a temporary file, renamed on success).
    traces : TraceSet
        Traces with a known ``frame_rate_hz`` (written as the series' ``rate``).
    rois : RoiSet
        The ROIs of `traces` (same ids, same order).
    dff : DffResult, optional
        Written to ``DfOverF`` (``dff``) and ``Fluorescence`` (``baseline``).
    spikes : DeconvolutionResult, optional
        From ``deconvolve`` on these traces (same ids, same order): the ``deconvolved*`` series
        and the per-ROI λ, τ and noise columns.
    spikes_input : str, optional
        What `spikes` was computed from (``"dff"`` or ``"corrected"``), noted in the series.
    movie_shape : tuple of int, optional
        ``(frames, y, x)`` of the movie the traces came from; checked against the ROIs and the
        traces.
    pixel_size_um : (float, float), optional
        ``(dy, dx)`` µm per pixel; default the RoiSet's. Written as the imaging plane's
        ``grid_spacing`` in metres.
    session_description, identifier : str
    session_start_time : datetime.datetime
        Timezone-aware.
    subject : dict
        ``subject_id``, ``species`` (Latin binomial, e.g. ``"Mus musculus"``); optional ``age``
        (ISO 8601, e.g. ``"P90D"``), ``sex``, ``description``, ``genotype``, ``strain``,
        ``weight``, ``date_of_birth``.
    device : dict
        ``name``, ``description``, ``manufacturer``; optional ``serial_number``,
        ``model_number``, ``model_name``.
    imaging_plane : dict
        ``indicator``, ``location``, ``excitation_lambda`` (nm), ``emission_lambda`` (nm, of
        the optical channel); optional ``name``, ``description``, ``optical_channel_name``,
        ``optical_channel_description``, ``reference_frame``.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    BackendError
        pynwb is not installed.
    ParameterError
        A required metadata field is missing (named in the message), or no frame rate.
    ShapeError
        Traces, ROIs and `movie_shape` disagree.
    OutputExistsError
        `path` exists and `overwrite` is False.
    """
    from .trace_files import _check_inputs

    if not isinstance(rois, RoiSet):
        raise ParameterError("save_nwb needs rois=, the RoiSet the traces were extracted from")
    arrays = _check_inputs(traces, dff, rois, spikes)
    for name, value in (
        ("session_description", session_description),
        ("identifier", identifier),
    ):
        if not isinstance(value, str) or not value.strip():
            raise ParameterError(f"{name} is required (a non-empty string)")
    if not isinstance(session_start_time, _dt.datetime) or session_start_time.tzinfo is None:
        raise ParameterError(
            "session_start_time is required: a timezone-aware datetime, e.g. "
            "datetime(2024, 5, 1, 10, 0, tzinfo=ZoneInfo('Europe/Berlin'))"
        )
    subject = _check_meta("subject", subject)
    device = _check_meta("device", device)
    plane = _check_meta("imaging_plane", imaging_plane)
    rate = traces.frame_rate_hz
    if rate is None:
        raise ParameterError("traces.frame_rate_hz is unknown; NWB series need a rate")
    n_rois, n_frames = arrays["F"].shape
    if movie_shape is not None:
        ms = tuple(int(s) for s in movie_shape)
        if len(ms) != 3 or ms[1:] != tuple(rois.shape) or ms[0] != n_frames:
            raise ShapeError(
                f"movie_shape {ms} does not match the ROIs' image {rois.shape} and the traces' "
                f"{n_frames} frames"
            )
    psize = pixel_size_um if pixel_size_um is not None else rois.pixel_size_um

    pynwb = _import_pynwb()
    from pynwb.file import Subject
    from pynwb.ophys import (
        DfOverF,
        Fluorescence,
        ImageSegmentation,
        OpticalChannel,
        RoiResponseSeries,
    )

    nwb = pynwb.NWBFile(
        session_description=session_description,
        identifier=identifier,
        session_start_time=session_start_time,
    )
    nwb.subject = Subject(**subject)
    dev = _create_device(nwb, device)
    emission = float(plane.pop("emission_lambda"))
    channel = OpticalChannel(
        name=plane.pop("optical_channel_name", "OpticalChannel"),
        description=plane.pop("optical_channel_description", f"emission {emission:g} nm"),
        emission_lambda=emission,
    )
    plane_kwargs: dict[str, Any] = {
        "name": plane.pop("name", "ImagingPlane"),
        "optical_channel": channel,
        "device": dev,
        "imaging_rate": float(rate),
        "excitation_lambda": float(plane.pop("excitation_lambda")),
        **plane,
    }
    if psize is not None:
        plane_kwargs["grid_spacing"] = [float(v) * 1e-6 for v in psize]
        plane_kwargs["grid_spacing_unit"] = "meters"
    imaging_plane_obj = nwb.create_imaging_plane(**plane_kwargs)

    ophys = nwb.create_processing_module("ophys", "optical physiology processed by napari-calcium")
    segmentation = ImageSegmentation()
    ophys.add(segmentation)
    ps = segmentation.create_plane_segmentation(
        name="PlaneSegmentation",
        description=f"ROIs on a {rois.shape[0]}x{rois.shape[1]} px image (napari-calcium RoiSet)",
        imaging_plane=imaging_plane_obj,
    )
    ps.add_column("neuropil_coefficient", "neuropil coefficient r of corrected = F - r * Fneu")
    per_roi = [n for n in _SPIKE_COLUMNS if n in arrays]
    for name in per_roi:
        ps.add_column(name, _SPIKE_COLUMNS[name])
    for i in range(n_rois):
        ypix, xpix, lam = rois.pixels(i)
        mask = [(int(x), int(y), float(w)) for y, x, w in zip(ypix, xpix, lam, strict=True)]
        ps.add_roi(
            id=int(rois.ids[i]),
            pixel_mask=mask,
            neuropil_coefficient=float(arrays["coefficients"][i]),
            **{name: float(arrays[name][i]) for name in per_roi},
        )
    region = ps.create_roi_table_region(description="all ROIs", region=list(range(n_rois)))
    params = json.dumps(dict(traces.parameters), default=str)

    def series(name: str, unit: str, what: str) -> Any:
        return RoiResponseSeries(
            name=name,
            data=np.ascontiguousarray(arrays[name].T),  # NWB: (time, rois)
            rois=region,
            unit=unit,
            rate=float(rate),
            description=f"{what}; exact stored values, no transform",
            comments=params,
        )

    fluorescence = Fluorescence(name="Fluorescence")
    ophys.add(fluorescence)
    fluorescence.add_roi_response_series(series("F", "a.u.", "cell fluorescence (movie units)"))
    if "Fneu" in arrays:
        fluorescence.add_roi_response_series(
            series("Fneu", "a.u.", "neuropil fluorescence (movie units)")
        )
    fluorescence.add_roi_response_series(
        series("corrected", "a.u.", "neuropil-corrected F - r * Fneu (movie units)")
    )
    if dff is not None:
        params = json.dumps({"method": dff.method, "parameters": dff.parameters}, default=str)
        fluorescence.add_roi_response_series(
            series("baseline", "a.u.", f"baseline F0 of dF/F ({dff.method})")
        )
        df = DfOverF(name="DfOverF")
        ophys.add(df)
        df.add_roi_response_series(series("dff", "n.a.", f"dF/F, a fraction ({dff.method})"))
    if spikes is not None:
        params = json.dumps(
            {"method": spikes.method, "input": spikes_input, "parameters": spikes.parameters},
            default=str,
        )
        unit = "n.a." if spikes_input == "dff" else "a.u."
        what = f"{spikes.method} deconvolution of the {spikes_input or 'input'} traces"
        for name, nwb_name, text in (
            ("deconv_activity", "deconvolved", "inferred activity per frame"),
            ("deconv_s", "deconvolved_s", "sparse inferred activity s per frame"),
            ("deconv_c", "deconvolved_c", "denoised calcium c above the baseline"),
            ("deconv_baseline", "deconvolved_baseline", "baseline (fit = baseline + c)"),
        ):
            ophys.add(
                RoiResponseSeries(
                    name=nwb_name,
                    data=np.ascontiguousarray(arrays[name].T),
                    rois=region,
                    unit=unit,
                    rate=float(rate),
                    description=f"{text}: {what}; exact stored values, no transform",
                    comments=params,
                )
            )

    import h5py

    out = Path(path)
    with atomic_output(out, overwrite=overwrite) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The file path provided", UserWarning)  # ".partial"
        try:  # atomic_output holds the lock on tmp that marks it alive: HDF5 must not lock it
            h5 = h5py.File(tmp, "w", locking=False)
        except (TypeError, ValueError) as exc:  # h5py < 3.5 or HDF5 < 1.10.7
            raise BackendError(
                f"writing NWB needs h5py >= 3.5 built with HDF5 >= 1.10.7 ({exc}); "
                "pip install -U h5py"
            ) from exc
        with h5, pynwb.NWBHDF5IO(file=h5, mode="w") as io:
            io.write(nwb)
    return out


#: per-ROI values of a deconvolution written as PlaneSegmentation columns
_SPIKE_COLUMNS = {
    "deconv_tau_decay_s": "deconvolution: decay time constant used, seconds",
    "deconv_tau_rise_s": "deconvolution: rise time constant used, seconds (0 for AR(1))",
    "deconv_lam": "deconvolution: sparsity penalty lambda used (input units)",
    "deconv_noise": "deconvolution: noise standard deviation (input units)",
}


def _create_device(nwb: Any, device: dict[str, Any]) -> Any:
    """A Device; with ``model_name`` on pynwb >= 3.1 the manufacturer goes to its DeviceModel."""
    model_name = device.pop("model_name", None)
    if model_name is not None and hasattr(nwb, "create_device_model"):
        model = nwb.create_device_model(
            name=model_name,
            manufacturer=device.pop("manufacturer"),
            model_number=device.pop("model_number", None),
            description=f"model of {device['name']}",
        )
        return nwb.create_device(**device, model=model)
    if model_name is not None:
        device["model_name"] = model_name
    with warnings.catch_warnings():  # pynwb >= 3.1 prefers a DeviceModel, which needs a model name
        warnings.filterwarnings("ignore", "The 'manufacturer' field is deprecated", Warning)
        return nwb.create_device(**device)

"""The deconvolution part of the trace files: checks, sidecar record and reading back."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.spikes.deconvolution.result import DeconvolutionResult
from ..errors import ParameterError, ShapeError
from ._serial import host, jsonable

__all__ = ["SPIKE_PER_ROI", "check_spikes", "spikes_from", "spikes_info"]

#: per-ROI values of a DeconvolutionResult: file name -> attribute
SPIKE_PER_ROI = {
    "deconv_lam": "lam",
    "deconv_tau_decay_s": "tau_decay_s",
    "deconv_tau_rise_s": "tau_rise_s",
    "deconv_noise": "noise",
}


def check_spikes(spikes: DeconvolutionResult, ids: np.ndarray, rate: Any) -> dict:
    """The per-ROI arrays of `spikes` after checking they belong to these traces."""
    if not np.array_equal(np.asarray(spikes.ids), ids):
        raise ParameterError(
            "spikes and traces list different ROI ids (or in another order); pass the "
            "deconvolution of these traces (deconvolve(..., ids=traces.ids))"
        )
    if rate is not None and not math.isclose(float(spikes.frame_rate_hz), float(rate)):
        raise ParameterError(f"spikes are at {spikes.frame_rate_hz} Hz but the traces at {rate} Hz")
    per_roi = {}
    for name, attr in SPIKE_PER_ROI.items():
        arr = host(getattr(spikes, attr))
        if arr.shape != ids.shape or arr.dtype.kind != "f":
            raise ShapeError(
                f"spikes.{attr} must be float, one per ROI; got {arr.dtype} {arr.shape}"
            )
        per_roi[name] = arr
    return per_roi


def spikes_info(spikes: DeconvolutionResult | None, arrays: dict, source: str | None) -> Any:
    """What the sidecar (and the NPZ) records of a deconvolution, per-ROI values included."""
    if spikes is None:
        return None
    return jsonable(
        {
            "method": spikes.method,
            "frame_rate_hz": float(spikes.frame_rate_hz),
            "input": source,
            "parameters": dict(spikes.parameters),
            "per_roi": {name: arrays[name] for name in SPIKE_PER_ROI},
            "per_roi_dtypes": {name: str(arrays[name].dtype) for name in SPIKE_PER_ROI},
        }
    )


def spikes_from(arrays: dict, info: Any, rate: float | None) -> DeconvolutionResult | None:
    """The DeconvolutionResult of a loaded set (None when none was saved)."""
    if "deconv_c" not in arrays:
        return None
    info = info or {}
    return DeconvolutionResult(
        c=arrays["deconv_c"],
        s=arrays["deconv_s"],
        activity=arrays["deconv_activity"],
        baseline=arrays["deconv_baseline"],
        **{attr: arrays[name] for name, attr in SPIKE_PER_ROI.items()},
        method=info.get("method", ""),
        frame_rate_hz=float(info.get("frame_rate_hz") or rate),
        ids=arrays["ids"],
        parameters=info.get("parameters") or {},
    )

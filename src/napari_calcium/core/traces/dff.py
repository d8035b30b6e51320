"""ΔF/F (and ΔF/√F) of traces, standardized noise and SNR.

:func:`compute_dff` picks a baseline estimator of :mod:`.baseline` by name and returns a
:class:`DffResult`. Methods (``F0`` the baseline, plus ``offset``):

==========================  ==============================================================
``"robust"`` (default)      noise-corrected running percentile refined by an asymmetric
                            sigma-clipped running mean (:func:`.baseline.baseline_robust`)
``"calscipy"``              CalSciPy ``calculate_dfof``: 5th percentile after a 1 Hz Hamming
                            FIR low-pass, one constant per ROI
``"sliding_percentile"``    CaImAn ``detrend_df_f``: running 8th percentile over ``window_s``
                            (``fast=True``: on a grid, interpolated)
``"maximin"``               suite2p: gaussian (σ frames), running min then max over ``window_s``
``"percentile"``            constant percentile per ROI
``"dff_sqrt"``              ACE/CaImAn ``delta_f_over_sqrt_f``: ``(F − F0) / √F0`` with the
                            running percentile over ``window_s`` (default 5 s)
==========================  ==============================================================

``dff = (F − F0) / F0`` for all but ``"dff_sqrt"``.

Degenerate rows are flagged, never left as silent NaN or ±inf: a row whose F0 is not positive and
finite in every frame (an all-zero trace, a ROI whose neuropil is brighter than its soma after
``F − r·Fneu``) gets ``DffResult.baseline_ok = False``, all-NaN dF/F (dividing by F0 ≤ 0 would
give ±inf, sign-flipped transients or values of several hundred) and one
:class:`DegenerateTraceWarning` naming the rows and why (:meth:`DffResult.baseline_problems`).
The functions that read dF/F (:func:`snr`, :func:`standardized_noise`,
:func:`~napari_calcium.core.spikes.events.identify_events`) pass such all-NaN rows through as NaN
or no events; a row with only some NaN frames is still an error.

Why ``"robust"`` is the default: on drifting synthetic traces
(:func:`~napari_calcium.core.synthetic.traces.simulate_drifting_traces`, 100 ROIs × 10 min at
30 Hz, sparse GCaMP6s activity, 5 % shot-like noise) the median over ROIs of ``mean |F0_est − F0| /
F0`` is 1.3 % for ``"robust"``, 2.3 % for maximin, 6.0 % for the running 8th percentile, 13 % for
CalSciPy's constant and the constant percentile: a low percentile sits about ``1.3 σ`` below the
baseline under noise, which ``"robust"`` corrects.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import DegenerateTraceWarning, ParameterError, ShapeError
from .._backend import array_module, to_host
from . import baseline as _b

__all__ = [
    "DFF_METHODS",
    "DegenerateTraceWarning",
    "DffResult",
    "compute_dff",
    "snr",
    "standardized_noise",
]

#: Accepted ``method`` names of :func:`compute_dff`, default first.
DFF_METHODS = ("robust", "calscipy", "sliding_percentile", "maximin", "percentile", "dff_sqrt")

_DEFAULT_WINDOW_S = {"robust": 30.0, "sliding_percentile": 20.0, "maximin": 60.0, "dff_sqrt": 5.0}
_DEFAULT_PERCENTILE = {
    "robust": 10.0,
    "calscipy": 5.0,
    "sliding_percentile": 8.0,
    "percentile": 8.0,
    "dff_sqrt": 8.0,
}


def _rows_text(rows: Any, limit: int = 20) -> str:
    """``[1, 4, 7]`` (the first `limit` of them, then ``+ n more``)."""
    rows = [int(r) for r in rows]
    more = f" + {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{rows[:limit]}{more}"


@dataclass(frozen=True)
class DffResult:
    """Result of :func:`compute_dff`.

    Attributes
    ----------
    dff : array, (n_rois, n_frames)
        ΔF/F (or ΔF/√F for ``"dff_sqrt"``), dimensionless fraction (not %). NaN throughout for
        the rows whose ``baseline_ok`` is False.
    baseline : array, (n_rois, n_frames)
        F0 used, offset included, in the traces' units.
    method : str
    parameters : dict
        Every parameter that determined the result (windows, percentile, offset, ...).
    baseline_ok : array of bool, (n_rois,), optional
        True where F0 is finite and > 0 in every frame, so dF/F is defined. Derived from
        `baseline` when not given (as when a saved result is loaded).
    """

    dff: Any
    baseline: Any
    method: str
    parameters: dict = field(default_factory=dict)
    baseline_ok: Any = None

    def __post_init__(self) -> None:
        if self.baseline_ok is None and self.baseline is not None:
            object.__setattr__(self, "baseline_ok", _baseline_ok(self.baseline))

    def baseline_problems(self) -> list[str]:
        """Why each row is flagged: ``""`` where ``baseline_ok``, else a short reason.

        Returns
        -------
        list of str, one per ROI
            e.g. ``"F0 = 0 in every frame (an all-zero or empty trace?)"`` or ``"F0 <= 0 in 120
            of 600 frames (min -7.3): neuropil brighter than the cell? ..."``.
        """
        return _baseline_problems(self.baseline, self.baseline_ok)


def _baseline_ok(f0: Any) -> Any:
    """Rows of F0 that are finite and > 0 in every frame, shape (n_rois,) bool."""
    xp = array_module(f0)
    f0 = f0[None, :] if f0.ndim == 1 else f0
    with np.errstate(invalid="ignore"):
        return xp.all(xp.isfinite(f0) & (f0 > 0), axis=-1)


def _baseline_problems(f0: Any, ok: Any) -> list[str]:
    ok = to_host(ok).astype(bool).ravel()
    out = [""] * ok.size
    bad = np.flatnonzero(~ok)
    if not bad.size:
        return out
    f0 = to_host(f0)
    f0 = (f0[None, :] if f0.ndim == 1 else f0)[bad].astype(np.float64)
    n_frames = f0.shape[-1]
    for row, values in zip(bad, f0, strict=True):
        finite = np.isfinite(values)
        if not finite.all():
            out[row] = f"F0 is NaN or infinite in {int((~finite).sum())} of {n_frames} frames"
        elif not values.any():
            out[row] = "F0 = 0 in every frame (an all-zero or empty trace?)"
        else:
            low = int((values <= 0).sum())
            out[row] = (
                f"F0 <= 0 in {low} of {n_frames} frames (min {values.min():.3g}): neuropil "
                "brighter than the cell? (a lower neuropil_coefficient, or a positive offset)"
            )
    return out


def compute_dff(
    traces: Any,
    *,
    frame_rate_hz: float,
    method: str = "robust",
    window_s: float | None = None,
    percentile: float | None = None,
    sigma_frames: float = 10.0,
    fast: bool = False,
    cutoff_hz: float = 1.0,
    offset: float = 0.0,
    external_reference: Any = None,
    in_place: bool = False,
) -> DffResult:
    """ΔF/F of traces against a baseline F0 estimated by `method`.

    Parameters
    ----------
    traces : array_like, (n_rois, n_frames) or (n_frames,)
        Fluorescence (e.g. neuropil-corrected F). A 1-D trace is one ROI (results are 2-D).
    frame_rate_hz : float
    method : str
        One of :data:`DFF_METHODS` (see the module docstring); default ``"robust"``.
    window_s : float, optional
        Baseline window in seconds; default per method: robust 30, sliding_percentile 20,
        maximin 60 (suite2p ``win_baseline``), dff_sqrt 5 (ACE ``secs_window``).
    percentile : float, optional
        Default per method: robust 10, calscipy 5, sliding_percentile / percentile / dff_sqrt 8.
    sigma_frames : float
        maximin gaussian σ in frames (suite2p ``sig_baseline``).
    fast : bool
        sliding_percentile / dff_sqrt: CaImAn's approximate fast mode.
    cutoff_hz : float
        calscipy low-pass cut-off.
    offset : float
        Added to the baseline before dividing (CalSciPy; useful when traces are near zero).
    external_reference : array_like, optional
        Traces of the same shape from which F0 is estimated instead (CalSciPy; e.g. when the
        traces were factorised).
    in_place : bool
        Write ΔF/F into `traces` (a float32/float64 2-D array, or 1-D viewed as one row) and
        return it as ``dff``; saves one array.

    Returns
    -------
    DffResult
        ``dff = (F − F0) / F0`` (``(F − F0) / √F0`` for ``"dff_sqrt"``), ``F0 = baseline(ref) +
        offset``. Rows whose F0 is not finite and positive in every frame have ``baseline_ok``
        False and NaN dF/F throughout (same shape as `traces`).

    Warns
    -----
    DegenerateTraceWarning
        Once, naming the flagged rows (ROI indices) and the reason for each (all-zero trace, F0
        <= 0 after neuropil subtraction, ...); no numpy ``RuntimeWarning`` escapes.

    Raises
    ------
    ParameterError
        Unknown method, bad numbers, NaN/inf in the traces, in_place on a non-float array.
    ShapeError
        Traces not 1-D/2-D, or an external reference of another shape.

    Examples
    --------
    >>> import numpy as np
    >>> res = compute_dff(np.array([10.0, 10, 20, 10]), frame_rate_hz=1.0, method="percentile",
    ...                   percentile=0)
    >>> res.dff.tolist()
    [[0.0, 0.0, 1.0, 0.0]]
    """
    if method not in DFF_METHODS:
        raise ParameterError(f"method must be one of {', '.join(DFF_METHODS)}; got {method!r}")
    xp = array_module(traces, external_reference)
    if in_place:
        raw = traces
        if not hasattr(raw, "dtype") or raw.dtype not in (xp.float32, xp.float64):
            raise ParameterError(
                "in_place=True needs float32 or float64 array traces to overwrite; "
                f"got {getattr(raw, 'dtype', type(raw).__name__)}"
            )
    x = _b.as_traces(traces)
    ref = x
    if external_reference is not None:
        ref = _b.as_traces(external_reference, "external_reference")
        if ref.shape != x.shape:
            raise ShapeError(
                f"external_reference has shape {ref.shape} but traces have {x.shape}; "
                "they must match frame for frame"
            )
    try:
        off = float(offset)
    except (TypeError, ValueError):
        raise ParameterError(f"offset must be a number; got {offset!r}") from None
    window = _DEFAULT_WINDOW_S.get(method) if window_s is None else window_s
    pct = _DEFAULT_PERCENTILE.get(method) if percentile is None else percentile
    fs = _b._positive("frame_rate_hz", frame_rate_hz)
    params: dict[str, Any] = {"frame_rate_hz": fs, "offset": off}
    if method == "robust":
        f0 = _b.baseline_robust(ref, frame_rate_hz=frame_rate_hz, window_s=window, percentile=pct)
        params.update(window_s=window, percentile=pct)
    elif method == "calscipy":
        f0 = _b.baseline_calscipy(
            ref, frame_rate_hz=frame_rate_hz, cutoff_hz=cutoff_hz, percentile=pct
        )
        params.update(cutoff_hz=cutoff_hz, percentile=pct)
    elif method in ("sliding_percentile", "dff_sqrt"):
        f0 = _b.baseline_sliding_percentile(
            ref, frame_rate_hz=frame_rate_hz, window_s=window, percentile=pct, fast=fast
        )
        params.update(window_s=window, percentile=pct, fast=bool(fast))
    elif method == "maximin":
        f0 = _b.baseline_maximin(
            ref, frame_rate_hz=frame_rate_hz, window_s=window, sigma_frames=sigma_frames
        )
        params.update(window_s=window, sigma_frames=sigma_frames)
    else:
        f0 = _b.baseline_percentile(ref, percentile=pct)
        params.update(percentile=pct)
    if off != 0.0:
        f0 = f0 + xp.asarray(off, dtype=f0.dtype)
    ok = _baseline_ok(f0)
    with np.errstate(divide="ignore", invalid="ignore"):  # flagged rows are set to NaN below
        denom = xp.sqrt(f0) if method == "dff_sqrt" else f0
        if in_place:
            out = traces if traces.ndim == 2 else traces[None, :]
            out -= f0
            out /= denom
            dff = out
        else:
            dff = (x - f0) / denom
    result = DffResult(dff=dff, baseline=f0, method=method, parameters=params, baseline_ok=ok)
    if not bool(xp.all(ok)):
        dff[~ok] = xp.nan
        _warn_flagged(result, stacklevel=3)
    return result


def _warn_flagged(result: DffResult, *, stacklevel: int) -> None:
    problems = result.baseline_problems()
    rows = [i for i, p in enumerate(problems) if p]
    listed = "; ".join(f"row {i}: {problems[i]}" for i in rows[:5])
    more = f"; and {len(rows) - 5} more" if len(rows) > 5 else ""
    warnings.warn(
        f"compute_dff: the baseline F0 is not positive for {len(rows)} of {len(problems)} ROIs "
        f"(rows {_rows_text(rows)}), so their dF/F is undefined and set to NaN "
        f"(DffResult.baseline_ok is False for them): {listed}{more}",
        DegenerateTraceWarning,
        stacklevel=stacklevel,
    )


def standardized_noise(dff: Any, *, frame_rate_hz: float) -> Any:
    """CalSciPy/CASCADE standardized noise ν of ΔF/F traces, in % Hz^(-1/2).

    Parameters
    ----------
    dff : array_like, (n_rois, n_frames) or (n_frames,)
        ΔF/F as a fraction (not %).
    frame_rate_hz : float

    Returns
    -------
    array, (n_rois,)
        ``ν = 100 · median_t |ΔF/F[t+1] − ΔF/F[t]| / √f`` (CalSciPy
        ``calculate_standardized_noise``, Rupprecht et al. 2021). For white noise of standard
        deviation σ, ``median|diff| = √2 · 0.6745 σ = 0.954 σ``, so ``ν ≈ 95.4 σ/√f``; the Allen
        Brain Observatory's best recordings are about 1 % Hz^(-1/2). NaN for rows that are NaN
        throughout (flagged by :func:`compute_dff`).

    Raises
    ------
    ParameterError
        NaN or inf in some frames of a row (rows NaN throughout are passed through).
    """
    x, flagged = _b.as_flagged_traces(dff, "dff")
    xp = array_module(x)
    fs = _b._positive("frame_rate_hz", frame_rate_hz)
    if bool(xp.any(flagged)):
        x = xp.where(flagged[:, None], xp.zeros((), dtype=x.dtype), x)
    nu = 100.0 * xp.median(xp.abs(xp.diff(x, axis=-1)), axis=-1) / math.sqrt(fs)
    return xp.where(flagged, xp.asarray(xp.nan, dtype=nu.dtype), nu)


def snr(dff: Any) -> Any:
    """Peak signal-to-noise ratio of each ΔF/F trace.

    Parameters
    ----------
    dff : array_like, (n_rois, n_frames) or (n_frames,)
        ΔF/F as a fraction; rows that are NaN throughout (flagged by :func:`compute_dff`) are
        passed through.

    Returns
    -------
    array, (n_rois,)
        ``max_t dff / σ`` with ``σ = 1.4826 · median|Δdff| / √2`` the robust white-noise level
        (:func:`.baseline.noise_sigma`). NaN where σ is 0 (a constant trace, or one that does
        not change in most frames: no noise to compare a peak with) and for flagged rows.

    Warns
    -----
    DegenerateTraceWarning
        When σ is 0 for some rows, naming them.

    Raises
    ------
    ParameterError
        NaN or inf in some frames of a row.
    """
    x, flagged = _b.as_flagged_traces(dff, "dff")
    xp = array_module(x)
    if bool(xp.any(flagged)):
        x = xp.where(flagged[:, None], xp.zeros((), dtype=x.dtype), x)
    sigma = _b.noise_sigma(x)
    peak = xp.max(x, axis=-1)
    flat = (sigma <= 0) & ~flagged
    if bool(xp.any(flat)):
        warnings.warn(
            f"snr: the noise level is 0 for rows {_rows_text(np.flatnonzero(to_host(flat)))} "
            "(constant traces, or traces that do not change in most frames), so their SNR is "
            "undefined and set to NaN",
            DegenerateTraceWarning,
            stacklevel=2,
        )
    value = peak / xp.where(sigma > 0, sigma, xp.ones((), dtype=sigma.dtype))
    return xp.where((sigma > 0) & ~flagged, value, xp.asarray(xp.nan, dtype=value.dtype))

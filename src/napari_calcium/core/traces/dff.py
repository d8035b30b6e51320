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

Neuropil-dominated ROIs (issue 17)
----------------------------------
Given neuropil-corrected traces ``Fc = F − r·Fneu`` *and* the raw ``F`` they came from
(``raw=``, or a :class:`~napari_calcium.core.traces.extraction.TraceSet` passed as `traces`), the
chosen method estimates two baselines, ``F0c`` of ``Fc`` and ``F0raw`` of ``F``, and the
``denominator`` rule sets what the corrected change ``Fc − F0c`` is divided by:

==========================  ==============================================================
``"floored"`` (default)     ``max(F0c, f · F0raw)`` with ``f`` = ``min_baseline_fraction``
                            (default 0.1): the corrected baseline, but never less than a
                            fraction ``f`` of the ROI's raw baseline
``"corrected"``             ``F0c``: the rule before issue 17 (what suite2p users compute from
                            ``F − 0.7·Fneu``; suite2p itself only subtracts the baseline)
``"raw"``                   ``F0raw``: FISSA's ``calc_deltaf(use_raw_f0=True)`` and, in effect,
                            CaImAn's ``detrend_df_f`` (its F0 adds the background's baseline)
==========================  ==============================================================

A ROI is **neuropil-dominated** (``DffResult.neuropil_dominated``) when ``F0c ≤ f · F0raw`` in at
least one frame where ``F0raw > 0``: the neuropil subtraction took at least ``1 − f`` of its
baseline away. Every ROI whose corrected baseline is non-positive somewhere is flagged, and the
flagged ROIs are exactly those whose dF/F ``"floored"`` changes: for all others it is
``"corrected"``, number for number. ``DffResult.baseline_fraction`` is ``min_t F0c / F0raw``.

Why ``"floored"``: where the neuropil annulus is brighter than the soma's own resting light (on a
real neurofinder movie F ≈ 200 and Fneu ≈ 292, so F0c ≈ −7 at r = 0.7), ``F0c`` is a small
difference of two large numbers and dF/F over it reaches 45–689 or flips sign. A non-positive
``F0c`` proves that ``r·Fneu`` over-estimates that ROI's contamination, so no value near it can be
trusted. The raw baseline is always positive, but dividing every ROI by it under-reports the
cell's ΔF/F by ``F0c / F0raw`` (0.5 at default synthetic settings, 0.25 on the neurofinder crop):
on synthetic truth its median amplitude error is 4–10 times that of ``"corrected"``. The floor
keeps the more accurate corrected baseline wherever it is a sizeable part of the raw one and
bounds ``|dff| ≤ |Fc − F0c| / (f · F0raw)`` elsewhere. Bounding ``r`` per ROI instead (so that F0c
keeps a share of F0raw) also changes ROIs that are not flagged and, where ``r`` was right, cost
correlation with the truth (median 0.86 → 0.77 at a bright neuropil); an over-estimated ``r`` is
better fitted (``neuropil_coefficient="estimate"``). ``f = 0.1`` was chosen on synthetic
recordings only (``benchmarks/bench_dff_rule.py``: the smallest mean amplitude error over a
sweep of neuropil brightness and coefficient mismatch) and is reported, not tuned, on the real
neurofinder crop and the CASCADE ground truth (``docs/benchmarks.md``, ``docs/traces.md``).

Degenerate rows are flagged, never left as silent NaN or ±inf: a row whose denominator is not
positive and finite in every frame (an all-zero trace; with ``"corrected"``, a ROI whose
neuropil is brighter than its soma after ``F − r·Fneu``) gets ``DffResult.baseline_ok = False``,
all-NaN dF/F (dividing by F0 ≤ 0 would give ±inf, sign-flipped transients or values of several
hundred) and one :class:`DegenerateTraceWarning` naming the rows and why
(:meth:`DffResult.baseline_problems`). The functions that read dF/F (:func:`snr`,
:func:`standardized_noise`, :func:`~napari_calcium.core.spikes.events.identify_events`) pass such
all-NaN rows through as NaN or no events; a row with only some NaN frames is still an error.

Why ``"robust"`` is the default: on drifting synthetic traces
(:func:`~napari_calcium.core.synthetic.traces.simulate_drifting_traces`, 100 ROIs × 10 min at
30 Hz, sparse GCaMP6s activity, 5 % shot-like noise) the median over ROIs of ``mean |F0_est − F0| /
F0`` is 1.3 % for ``"robust"``, 2.3 % for maximin, 6.0 % for the running 8th percentile, 13 % for
CalSciPy's constant and the constant percentile: a low percentile sits about ``1.3 σ`` below the
baseline under noise, which ``"robust"`` corrects.

References
----------
.. [1] Pachitariu M. et al. (2017) Suite2p: beyond 10,000 neurons with standard two-photon
   microscopy. bioRxiv 061507 (``F − 0.7·Fneu``; ``dcnv.preprocess`` subtracts the baseline).
.. [2] Giovannucci A. et al. (2019) CaImAn: an open source tool for scalable calcium imaging data
   analysis. eLife 8:e38173 (``detrend_df_f``: ``(F − Fd) / (Fd + B0)``, B0 the background's).
.. [3] Keemink S. W. et al. (2018) FISSA: a neuropil decontamination toolbox for calcium imaging
   signals. Sci. Rep. 8:3493 (``calc_deltaf``: the separated signal over the raw ROI's f0).
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
    "DEFAULT_MIN_BASELINE_FRACTION",
    "DFF_DENOMINATORS",
    "DFF_METHODS",
    "DegenerateTraceWarning",
    "DffResult",
    "compute_dff",
    "snr",
    "standardized_noise",
]

#: Accepted ``method`` names of :func:`compute_dff`, default first.
DFF_METHODS = ("robust", "calscipy", "sliding_percentile", "maximin", "percentile", "dff_sqrt")

#: Accepted ``denominator`` rules of :func:`compute_dff` (used when the raw F is known), default
#: first.
DFF_DENOMINATORS = ("floored", "corrected", "raw")

#: Default ``min_baseline_fraction`` ``f`` of :func:`compute_dff`: chosen on synthetic recordings
#: (``benchmarks/bench_dff_rule.py``), never on the real data it is reported on.
DEFAULT_MIN_BASELINE_FRACTION = 0.1

_DEFAULT_WINDOW_S = {"robust": 30.0, "sliding_percentile": 20.0, "maximin": 60.0, "dff_sqrt": 5.0}
_DEFAULT_PERCENTILE = {
    "robust": 10.0,
    "calscipy": 5.0,
    "sliding_percentile": 8.0,
    "percentile": 8.0,
    "dff_sqrt": 8.0,
}

#: ``parameters`` key listing the neuropil-dominated rows (kept through a save and load)
_DOMINATED_KEY = "neuropil_dominated_rows"


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
        ΔF/F (or ΔF/√F for ``"dff_sqrt"``), dimensionless fraction (not %):
        ``(traces − baseline) / denominator``. NaN throughout for the rows whose ``baseline_ok``
        is False.
    baseline : array, (n_rois, n_frames)
        F0 subtracted from the traces (``F0c`` of the corrected traces), offset included, in the
        traces' units.
    method : str
    parameters : dict
        Every parameter that determined the result (windows, percentile, offset, denominator
        rule, ``min_baseline_fraction``, ...), and ``"neuropil_dominated_rows"``: the rows
        flagged neuropil-dominated (so the flags survive a save and load).
    baseline_ok : array of bool, (n_rois,), optional
        True where the denominator is finite and > 0 in every frame, so dF/F is defined. Derived
        from `dff` (rows not NaN throughout) when not given, as when a saved result is loaded.
    neuropil_dominated : array of bool, (n_rois,), or None
        True where the corrected baseline ``F0c`` is ``≤ min_baseline_fraction · F0raw`` in at
        least one frame where ``F0raw > 0`` (so also wherever ``F0c ≤ 0``). None when the raw F
        was not given (unknown). Rebuilt from ``parameters`` when a saved result is loaded.
    baseline_fraction : array of float, (n_rois,), or None
        ``min_t F0c / F0raw``, the smallest share of the raw baseline left after the neuropil
        subtraction (NaN where ``F0raw ≤ 0`` in some frame); None without the raw F or after a
        load.
    raw_baseline : array, (n_rois, n_frames), or None
        ``F0raw``: the same method's baseline of the raw F, offset included (movie units); None
        without the raw F or after a load.
    """

    dff: Any
    baseline: Any
    method: str
    parameters: dict = field(default_factory=dict)
    baseline_ok: Any = None
    neuropil_dominated: Any = None
    baseline_fraction: Any = None
    raw_baseline: Any = None

    def __post_init__(self) -> None:
        if self.baseline_ok is None:
            if self.dff is not None:
                object.__setattr__(self, "baseline_ok", _defined_rows(self.dff))
            elif self.baseline is not None:
                object.__setattr__(self, "baseline_ok", _baseline_ok(self.baseline))
        rows = (self.parameters or {}).get(_DOMINATED_KEY)
        if self.neuropil_dominated is None and rows is not None and self.dff is not None:
            n = 1 if self.dff.ndim == 1 else int(self.dff.shape[0])
            flags = np.zeros(n, dtype=bool)
            flags[[int(r) for r in rows if 0 <= int(r) < n]] = True
            object.__setattr__(self, "neuropil_dominated", flags)

    @property
    def denominator(self) -> Any:
        """What the corrected change was divided by (before ``√`` for ``"dff_sqrt"``).

        ``baseline`` for ``"corrected"`` or without the raw F, ``raw_baseline`` for ``"raw"``,
        ``max(baseline, f · raw_baseline)`` for ``"floored"``; array (n_rois, n_frames), or None
        after a load (the raw baseline is not saved).
        """
        rule = self.parameters.get("denominator")
        if rule in (None, "corrected"):
            return self.baseline
        if self.raw_baseline is None:
            return None
        if rule == "raw":
            return self.raw_baseline
        xp = array_module(self.baseline)
        f = float(self.parameters["min_baseline_fraction"])
        return xp.maximum(self.baseline, f * self.raw_baseline)

    @property
    def flagged(self) -> Any:
        """ROIs with any quality flag: ``~baseline_ok | neuropil_dominated``, (n_rois,) bool."""
        bad = ~np.asarray(to_host(self.baseline_ok), dtype=bool)
        if self.neuropil_dominated is not None:
            bad = bad | np.asarray(to_host(self.neuropil_dominated), dtype=bool)
        return bad

    def baseline_problems(self) -> list[str]:
        """Why each row is flagged: ``""`` where ``baseline_ok``, else a short reason.

        Returns
        -------
        list of str, one per ROI
            e.g. ``"F0 = 0 in every frame (an all-zero or empty trace?)"`` or ``"F0 <= 0 in 120
            of 600 frames (min -7.3): neuropil brighter than the cell? ..."``.
        """
        denominator = self.denominator
        return _baseline_problems(
            self.baseline if denominator is None else denominator, self.baseline_ok
        )

    def flag_reasons(self) -> list[str]:
        """Every flag of each row in words: ``""`` for an unflagged row.

        Returns
        -------
        list of str, one per ROI
            :meth:`baseline_problems` for rows whose dF/F is NaN; for neuropil-dominated rows
            e.g. ``"neuropil-dominated: corrected baseline down to -3 % of the raw one; dF/F
            over 0.1 x the raw baseline"``.
        """
        out = self.baseline_problems()
        if self.neuropil_dominated is None:
            return out
        dominated = np.asarray(to_host(self.neuropil_dominated), dtype=bool)
        frac = None if self.baseline_fraction is None else to_host(self.baseline_fraction)
        f = self.parameters.get("min_baseline_fraction")
        rule = self.parameters.get("denominator")
        for row in np.flatnonzero(dominated):
            share = "" if frac is None else f" down to {100 * float(frac[row]):.0f} %"
            text = f"neuropil-dominated: corrected baseline{share} of the raw one (<= {f:g} x)"
            if rule == "floored":
                text += f"; dF/F over {f:g} x the raw baseline where it is lower"
            elif rule == "corrected":
                text += "; dF/F over that small baseline is inflated"
            out[row] = f"{out[row]}; {text}" if out[row] else text
        return out


def _defined_rows(dff: Any) -> Any:
    """Rows of dF/F that are not NaN throughout, shape (n_rois,) bool."""
    xp = array_module(dff)
    dff = dff[None, :] if dff.ndim == 1 else dff
    return ~xp.all(xp.isnan(dff), axis=-1)


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


def _is_trace_set(value: Any) -> bool:
    """A TraceSet (duck-typed: extraction imports this module)."""
    return all(hasattr(value, a) for a in ("F", "corrected", "coefficients", "ids"))


def _estimate_baseline(
    ref: Any, method: str, fs: float, window: Any, pct: Any, sigma_frames: float, fast: bool,
    cutoff_hz: float,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """F0 of `ref` by `method`, and the parameters that determined it."""
    if method == "robust":
        f0 = _b.baseline_robust(ref, frame_rate_hz=fs, window_s=window, percentile=pct)
        return f0, {"window_s": window, "percentile": pct}
    if method == "calscipy":
        f0 = _b.baseline_calscipy(ref, frame_rate_hz=fs, cutoff_hz=cutoff_hz, percentile=pct)
        return f0, {"cutoff_hz": cutoff_hz, "percentile": pct}
    if method in ("sliding_percentile", "dff_sqrt"):
        f0 = _b.baseline_sliding_percentile(
            ref, frame_rate_hz=fs, window_s=window, percentile=pct, fast=fast
        )
        return f0, {"window_s": window, "percentile": pct, "fast": bool(fast)}
    if method == "maximin":
        f0 = _b.baseline_maximin(ref, frame_rate_hz=fs, window_s=window, sigma_frames=sigma_frames)
        return f0, {"window_s": window, "sigma_frames": sigma_frames}
    return _b.baseline_percentile(ref, percentile=pct), {"percentile": pct}


def _check_rule(denominator: Any, fraction: Any) -> float:
    if denominator not in DFF_DENOMINATORS:
        raise ParameterError(
            f"denominator must be one of {', '.join(DFF_DENOMINATORS)}; got {denominator!r}"
        )
    try:
        f = float(fraction)
    except (TypeError, ValueError):
        raise ParameterError(
            f"min_baseline_fraction must be a number in (0, 1); got {fraction!r}"
        ) from None
    if not 0.0 < f < 1.0:
        raise ParameterError(
            f"min_baseline_fraction must be in (0, 1) (a share of the raw baseline, default "
            f"{DEFAULT_MIN_BASELINE_FRACTION}); got {fraction!r}"
        )
    return f


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
    raw: Any = None,
    denominator: str = "floored",
    min_baseline_fraction: float = DEFAULT_MIN_BASELINE_FRACTION,
) -> DffResult:
    """ΔF/F of traces against a baseline F0 estimated by `method`.

    Parameters
    ----------
    traces : array_like, (n_rois, n_frames) or (n_frames,), or TraceSet
        Fluorescence (e.g. neuropil-corrected F). A 1-D trace is one ROI (results are 2-D). A
        :class:`~napari_calcium.core.traces.extraction.TraceSet` stands for its ``corrected``
        traces with ``raw=traces.F`` (when it has neuropil traces).
    frame_rate_hz : float
        Frames per second.
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
        calscipy low-pass cut-off in Hz.
    offset : float
        Added to the baseline(s) before dividing (CalSciPy; useful when traces are near zero),
        in the traces' units.
    external_reference : array_like, optional
        Traces of the same shape from which F0 is estimated instead (CalSciPy; e.g. when the
        traces were factorised). The raw baseline is still estimated from `raw`.
    in_place : bool
        Write ΔF/F into `traces` (a float32/float64 2-D array, or 1-D viewed as one row) and
        return it as ``dff``; saves one array. Not for a TraceSet.
    raw : array_like, (n_rois, n_frames) or (n_frames,), optional
        The uncorrected F of the same ROIs when `traces` are neuropil-corrected
        (``TraceSet.F``); turns on the `denominator` rule and the ``neuropil_dominated`` flags.
        Without it the traces are divided by their own baseline and nothing is flagged
        neuropil-dominated (``neuropil_dominated`` is None: unknown).
    denominator : {"floored", "corrected", "raw"}
        What the corrected change ``traces − F0c`` is divided by when `raw` is known (see the
        module docstring): ``max(F0c, f · F0raw)`` (default), ``F0c`` (the rule before issue
        17) or ``F0raw`` (FISSA / CaImAn).
    min_baseline_fraction : float
        ``f`` in (0, 1), default 0.1: the floor of ``"floored"`` and the threshold of the
        ``neuropil_dominated`` flag, as a share of the raw baseline.

    Returns
    -------
    DffResult
        ``dff = (traces − F0c) / D`` (``/ √D`` for ``"dff_sqrt"``), ``F0c = baseline(ref) +
        offset`` and ``D`` the `denominator` (``F0c`` without `raw`), same shape as `traces`.
        Rows whose ``D`` is not finite and positive in every frame have ``baseline_ok`` False and
        NaN dF/F throughout. With `raw`: ``neuropil_dominated[i]`` is True exactly where
        ``F0c[i, t] ≤ f · F0raw[i, t]`` for some frame ``t`` with ``F0raw[i, t] > 0`` (hence
        wherever ``F0c ≤ 0``); ``baseline_fraction[i] = min_t F0c / F0raw``.

    Warns
    -----
    DegenerateTraceWarning
        Once, naming the rows (ROI indices) whose dF/F is NaN and the reason for each
        (all-zero trace, F0 <= 0 after neuropil subtraction, ...), and, with
        ``denominator="corrected"``, the neuropil-dominated rows whose dF/F is kept although
        inflated; no numpy ``RuntimeWarning`` escapes. Neuropil-dominated rows under
        ``"floored"`` or ``"raw"`` are flagged in the result, not warned about.

    Raises
    ------
    ParameterError
        Unknown method or denominator, bad numbers, NaN/inf in the traces, in_place on a
        non-float array or a TraceSet.
    ShapeError
        Traces not 1-D/2-D, or an external reference or raw F of another shape.

    Examples
    --------
    >>> import numpy as np
    >>> res = compute_dff(np.array([10.0, 10, 20, 10]), frame_rate_hz=1.0, method="percentile",
    ...                   percentile=0)
    >>> res.dff.tolist()
    [[0.0, 0.0, 1.0, 0.0]]

    With the raw F: a corrected baseline of 2 is less than 0.1 × the raw 100, so the ROI is
    flagged and its change of 1 is divided by 10, not 2.

    >>> res = compute_dff(np.array([2.0, 2, 3, 2]), raw=np.array([100.0, 100, 101, 100]),
    ...                   frame_rate_hz=1.0, method="percentile", percentile=0)
    >>> res.dff.tolist(), res.neuropil_dominated.tolist()
    ([[0.0, 0.0, 0.1, 0.0]], [True])
    """
    if method not in DFF_METHODS:
        raise ParameterError(f"method must be one of {', '.join(DFF_METHODS)}; got {method!r}")
    frac = _check_rule(denominator, min_baseline_fraction)
    if _is_trace_set(traces):
        if in_place:
            raise ParameterError(
                "in_place=True needs an array to overwrite; give traces.corrected (and "
                "raw=traces.F), not the TraceSet"
            )
        if raw is None and getattr(traces, "Fneu", None) is not None:
            raw = traces.F
        traces = traces.corrected
    xp = array_module(traces, external_reference, raw)
    if in_place and (not hasattr(traces, "dtype") or traces.dtype not in (xp.float32, xp.float64)):
        raise ParameterError(
            "in_place=True needs float32 or float64 array traces to overwrite; "
            f"got {getattr(traces, 'dtype', type(traces).__name__)}"
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
    raw_x = None
    if raw is not None:
        raw_x = _b.as_traces(raw, "raw")
        if raw_x.shape != x.shape:
            raise ShapeError(
                f"raw has shape {raw_x.shape} but traces have {x.shape}; give the uncorrected F "
                "of the same ROIs and frames (TraceSet.F)"
            )
    try:
        off = float(offset)
    except (TypeError, ValueError):
        raise ParameterError(f"offset must be a number; got {offset!r}") from None
    window = _DEFAULT_WINDOW_S.get(method) if window_s is None else window_s
    pct = _DEFAULT_PERCENTILE.get(method) if percentile is None else percentile
    fs = _b._positive("frame_rate_hz", frame_rate_hz)
    args = (method, frame_rate_hz, window, pct, sigma_frames, fast, cutoff_hz)
    f0, used = _estimate_baseline(ref, *args)
    params: dict[str, Any] = {"frame_rate_hz": fs, "offset": off, **used}
    if off != 0.0:
        f0 = f0 + xp.asarray(off, dtype=f0.dtype)
    f0_raw = dominated = fraction = None
    denom = f0
    if raw_x is None:
        params["denominator"] = None
    else:
        f0_raw = _estimate_baseline(raw_x, *args)[0]
        if off != 0.0:
            f0_raw = f0_raw + xp.asarray(off, dtype=f0_raw.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            floor = f0_raw * xp.asarray(frac, dtype=f0_raw.dtype)
            dominated = xp.any((f0 <= floor) & (f0_raw > 0), axis=-1)
            fraction = xp.where(xp.all(f0_raw > 0, axis=-1), xp.min(f0 / f0_raw, axis=-1), xp.nan)
        if denominator == "floored":
            denom = xp.maximum(f0, floor)
        elif denominator == "raw":
            denom = f0_raw
        params.update(
            denominator=denominator,
            min_baseline_fraction=frac,
            **{_DOMINATED_KEY: np.flatnonzero(to_host(dominated)).tolist()},
        )
    ok = _baseline_ok(denom)
    with np.errstate(divide="ignore", invalid="ignore"):  # flagged rows are set to NaN below
        scale = xp.sqrt(denom) if method == "dff_sqrt" else denom
        if in_place:
            out = traces if traces.ndim == 2 else traces[None, :]
            out -= f0
            out /= scale
            dff = out
        else:
            dff = (x - f0) / scale
    result = DffResult(
        dff=dff, baseline=f0, method=method, parameters=params, baseline_ok=ok,
        neuropil_dominated=dominated, baseline_fraction=fraction, raw_baseline=f0_raw,
    )  # fmt: skip
    if not bool(xp.all(ok)):
        dff[~ok] = xp.nan
    inflated = denominator == "corrected" and dominated is not None and bool(xp.any(dominated & ok))
    if inflated or not bool(xp.all(ok)):
        _warn_flagged(result, stacklevel=3)
    return result


def _warn_flagged(result: DffResult, *, stacklevel: int) -> None:
    """One warning: the rows whose dF/F is NaN, then the inflated neuropil-dominated rows."""
    problems = result.baseline_problems()
    rows = [i for i, p in enumerate(problems) if p]
    parts = []
    if rows:
        listed = "; ".join(f"row {i}: {problems[i]}" for i in rows[:5])
        more = f"; and {len(rows) - 5} more" if len(rows) > 5 else ""
        parts.append(
            f"the baseline F0 is not positive for {len(rows)} of {len(problems)} ROIs "
            f"(rows {_rows_text(rows)}), so their dF/F is undefined and set to NaN "
            f"(DffResult.baseline_ok is False for them): {listed}{more}"
        )
    if (
        result.parameters.get("denominator") == "corrected"
        and result.neuropil_dominated is not None
    ):
        ok = to_host(result.baseline_ok).astype(bool)
        inflated = np.flatnonzero(to_host(result.neuropil_dominated).astype(bool) & ok)
        if inflated.size:
            f = result.parameters["min_baseline_fraction"]
            parts.append(
                f"{inflated.size} ROIs (rows {_rows_text(inflated)}) are neuropil-dominated: "
                f"their corrected baseline falls to <= {f:g} x the raw one, so dF/F over it is "
                "inflated (DffResult.neuropil_dominated); denominator='floored' bounds it"
            )
    warnings.warn("compute_dff: " + "; ".join(parts), DegenerateTraceWarning, stacklevel=stacklevel)


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

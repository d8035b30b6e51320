"""``deconvolve``: one entry point for spike inference on traces (OASIS AR(1)/AR(2), FISTA).

Every method runs the same five steps (see :func:`deconvolve`): remove a drifting baseline,
choose the kinetics (given, an indicator preset, or estimated per ROI), estimate the noise from
the power spectrum, solve the deconvolution, and smooth the sparse activity into a calibrated
rate. The default method and settings (``"oasis-ar1"``, λ = 0, the smoothing of
:mod:`.activity`) are the most accurate of ours on the spikefinder ground truth
(``docs/spikes.md``, ``benchmarks/bench_spikefinder.py``).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from ....errors import ParameterError, ShapeError
from ...traces.dff import DegenerateTraceWarning, _rows_text
from ..indicators import get_indicator
from .activity import (
    DEFAULT_EXPONENT,
    DEFAULT_MIN_SIGMA_S,
    DELAY_PER_RISE,
    MAX_DELAY_S,
    MIN_EVENT_SNR,
    MIN_RISE_EVENTS,
    MIN_TRANSIENT_SNR,
    activity_delay_s,
    average_transients,
    effective_bandwidth_hz,
    estimate_decay_s,
    remove_baseline,
    rise_of_average,
    smooth_activity,
    transient_snr,
)
from .constrained import oasis_constrained_batch
from .fista import fista_deconvolve
from .kernels import kernel_iir, tau_to_ar2
from .kinetics import tau_to_ar1
from .noise import estimate_tau, noise_sigma_psd
from .oasis import oasis_ar1_batch
from .oasis_ar2 import oasis_ar2_batch
from .result import DeconvolutionResult

__all__ = ["DECONVOLUTION_METHODS", "S_MIN_NOISE_SD", "TAU_DECAY_BOUNDS_S", "deconvolve"]

#: Accepted ``method`` names of :func:`deconvolve`, default first.
DECONVOLUTION_METHODS = ("oasis-ar1", "oasis-ar2", "fista")
#: Range an *estimated* decay time constant is clipped to, in seconds (indicators in use decay
#: in 0.1-3 s; estimates outside come from drift, bursts or resampled data).
TAU_DECAY_BOUNDS_S = (0.1, 3.0)
#: ``s_min="noise"`` means this many noise σ (spikes at SNR >= 4 survive, noise blips do not).
S_MIN_NOISE_SD = 2.0
#: Default rise time constant (s) when none is given, no indicator is named and the method needs
#: one (oasis-ar2, fista) but the per-ROI estimate is not usable.
_DEFAULT_TAU_RISE_S = 0.05


def _unwrap(traces: Any, frame_rate_hz: float | None, ids: Any) -> tuple:
    """Traces array, frame rate, ids and flagged rows from an array, a TraceSet or a DffResult.

    Flagged rows are NaN in every frame (as :func:`~napari_calcium.core.traces.dff.compute_dff`
    leaves the rows whose baseline is not positive); any other NaN or inf is an error.
    """
    rate = frame_rate_hz
    if hasattr(traces, "corrected") and hasattr(traces, "ids"):  # TraceSet
        ids = traces.ids if ids is None else ids
        rate = rate if rate is not None else traces.frame_rate_hz
        traces = traces.corrected
    elif hasattr(traces, "dff") and hasattr(traces, "baseline"):  # DffResult
        traces = traces.dff
    if rate is None:
        raise ParameterError("frame_rate_hz is required (the traces carry no frame rate)")
    rate = float(rate)
    if not (np.isfinite(rate) and rate > 0):
        raise ParameterError(f"frame_rate_hz must be a finite number > 0; got {frame_rate_hz!r}")
    x = np.asarray(traces)
    if x.dtype.kind not in "fiub":
        raise ShapeError(f"traces must be a real numeric array; got dtype {x.dtype}")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ShapeError(f"traces must be (n_rois, n_frames) or (n_frames,); got shape {x.shape}")
    if x.shape[1] < 32:
        raise ShapeError(f"traces need at least 32 frames to deconvolve; got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    flagged = np.zeros(x.shape[0], dtype=bool)
    finite = np.isfinite(x)
    if not np.all(finite):
        flagged = np.all(np.isnan(x), axis=1)  # flagged upstream (compute_dff): skipped
        rows = np.flatnonzero(~np.all(finite, axis=1) & ~flagged)
        if rows.size:
            raise ParameterError(
                f"traces must be finite; rows {rows[:10].tolist()} contain NaN or inf "
                "(interpolate or drop those frames first; rows that are NaN throughout, as "
                "compute_dff flags them, are skipped)"
            )
    n = x.shape[0]
    ids_arr = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    if ids_arr.shape != (n,):
        raise ShapeError(f"ids must have one entry per ROI ({n}); got shape {ids_arr.shape}")
    return x, rate, ids_arr, flagged


def _per_roi(value: Any, n: int, name: str, *, low: float, strict: bool) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    _check_length(arr, n, name)
    ok = np.isfinite(arr) & ((arr > low) if strict else (arr >= low))
    if not np.all(ok):
        bound = f"> {low}" if strict else f">= {low}"
        raise ParameterError(f"{name} must be finite and {bound}; got {value!r}")
    return np.broadcast_to(arr, (n,)).copy()


def _check_length(arr: np.ndarray, n: int, name: str) -> None:
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
        raise ShapeError(f"{name} must be a scalar or one value per ROI ({n}); got {arr.shape}")


def _rows_of(value: Any, n: int, keep: np.ndarray, name: str) -> Any:
    """A per-ROI argument restricted to the rows `keep` (scalars, None and words as they are)."""
    if value is None or isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.ndim == 0:
        return value
    _check_length(arr, n, name)
    return arr[keep]


def _skip_flagged(
    result: DeconvolutionResult, keep: np.ndarray, ids: np.ndarray, *, s_min: Any
) -> DeconvolutionResult:
    """`result` of the rows `keep` spread over all ``ids.size`` rows, NaN in the others."""
    n = ids.size
    full = {}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        per_roi = isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == keep.size
        if per_roi and f.name != "ids":  # every per-ROI array: c, s, ..., lam, tau, noise
            out = np.full((n, *value.shape[1:]), np.nan, dtype=value.dtype)
            out[keep] = value
            full[f.name] = out
    parameters = dict(result.parameters)
    per_roi_lists = ("smoothing_s", "activity_shift_s", "response_rise_s", "transient_snr")
    for key in (*per_roi_lists, "reliable"):
        values = [False if key == "reliable" else float("nan")] * n  # a skipped row: unreliable
        for row, v in zip(keep.tolist(), parameters[key], strict=True):
            values[row] = v
        parameters[key] = values
    parameters["s_min"] = np.asarray(s_min).tolist()  # as given, for every row
    return dataclasses.replace(result, ids=ids, parameters=parameters, **full)


def _kinetics(
    y: np.ndarray,
    rate: float,
    method: str,
    tau_decay_s: Any,
    tau_rise_s: Any,
    indicator: str | None,
    noise: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Per-ROI (tau_decay_s, tau_rise_s) and a word on where they came from."""
    n = y.shape[0]
    preset = get_indicator(indicator) if indicator is not None else None
    needs_rise = method != "oasis-ar1"
    source = []
    if tau_decay_s is not None:
        td = _per_roi(tau_decay_s, n, "tau_decay_s", low=0.0, strict=True)
        source.append("tau_decay_s given")
    elif preset is not None:
        td = np.full(n, preset.tau_decay_s)
        source.append(f"tau_decay_s from the {preset.name} preset")
    else:
        td = None
    if tau_rise_s is not None:
        tr = _per_roi(tau_rise_s, n, "tau_rise_s", low=0.0, strict=False)
        source.append("tau_rise_s given")
    elif preset is not None:
        tr = np.full(n, preset.tau_rise_s)
        source.append(f"tau_rise_s from the {preset.name} preset")
    else:
        tr = None
    if td is None or (needs_rise and tr is None):
        if needs_rise:
            est_r, est_d = estimate_tau(y, rate, order=2, sigma=noise)
            est_r = np.clip(np.atleast_1d(est_r), 0.0, None)
        else:
            est_d = estimate_tau(y, rate, order=1, sigma=noise)
            est_r = np.zeros(n)
        est_d = np.clip(np.atleast_1d(est_d), *TAU_DECAY_BOUNDS_S)
        if td is None:
            td = est_d
            source.append("tau_decay_s estimated per ROI from the autocovariance")
        if tr is None:
            tr = est_r
            source.append("tau_rise_s estimated per ROI")
    if tr is None:
        tr = np.zeros(n)
    if needs_rise:
        # a usable double exponential needs 0 < rise < decay, and at least a tenth of a frame
        tr = np.where(np.isfinite(tr) & (tr > 0.1 / rate), tr, max(_DEFAULT_TAU_RISE_S, 0.1 / rate))
        tr = np.minimum(tr, 0.5 * td)
    return td, tr, "; ".join(source)


def _decay_from_data(
    y: np.ndarray, rate: float, lam: Any, s_min: Any, noise: np.ndarray, td: Any = None
) -> tuple:
    """Each ROI's own τ_d (s) and the AR(1) solve at it: ``(td, (c, s, lam, extra))``.

    τ_d from the noise-corrected autocovariance (:func:`.noise.estimate_tau`, clipped to
    :data:`TAU_DECAY_BOUNDS_S`); where that hit a bound (bursts, drift: the 3 s clip on 4 of 9
    real ground-truth sets), from the decay of the ROI's average transient
    (:func:`.activity.estimate_decay_s`, the transients placed by a first solve), with which
    the trace is solved again. `td`: the autocovariance's estimate when already computed.
    """
    lo, hi = TAU_DECAY_BOUNDS_S
    if td is None:
        td = np.clip(np.atleast_1d(estimate_tau(y, rate, order=1, sigma=noise)), lo, hi)
    no_rise = np.zeros_like(td)
    solved = _solve(y, rate, "oasis-ar1", td, no_rise, lam, s_min, noise)
    rows = np.flatnonzero((td <= lo * 1.001) | (td >= hi * 0.999))
    if rows.size:
        s_rows = solved[1][rows]
        td_avg, _ = estimate_decay_s(y[rows], s_rows, frame_rate_hz=rate, bounds_s=(lo, hi))
        ok = np.isfinite(td_avg)
        if ok.any():
            td = td.copy()
            td[rows[ok]] = td_avg[ok]
            solved = _solve(y, rate, "oasis-ar1", td, no_rise, lam, s_min, noise)
    return td, solved


def _noise_sigma(y: np.ndarray, rate: float, band: np.ndarray) -> np.ndarray:
    """Noise σ per row (:func:`.noise.noise_sigma_psd`); upsampled rows measured resampled.

    A trace resampled to a higher rate (its bandwidth `band` below 0.8 x the Nyquist
    frequency: spikefinder's 8-60 Hz recordings given at 100 Hz) has no power above its original
    Nyquist frequency, where the PSD estimate looks for the noise: σ came out 400-1,400x too
    small there. Such rows are measured after resampling to twice their bandwidth
    (``scipy.signal.resample_poly``), i.e. on (about) their original samples.
    """
    from fractions import Fraction

    from scipy.signal import resample_poly

    out = np.atleast_1d(np.asarray(noise_sigma_psd(y), dtype=np.float64)).copy()
    for i in np.flatnonzero(np.asarray(band) < 0.8 * rate / 2.0):
        ratio = Fraction(float(2.0 * band[i] / rate)).limit_denominator(100)
        if ratio.numerator == 0 or y.shape[1] * ratio < 64:  # too few frames for a spectrum
            continue
        row = resample_poly(np.asarray(y[i], dtype=np.float64), ratio.numerator, ratio.denominator)
        out[i] = float(np.atleast_1d(noise_sigma_psd(row))[0])
    return out


def _solve(y, rate, method, td, tr, lam, s_min, noise) -> tuple:
    """(c, s, lam per ROI, extra baseline per ROI) of one method on baseline-free traces."""
    n = y.shape[0]
    constrained = isinstance(lam, str)
    if constrained and lam != "noise":
        raise ParameterError(f"lam must be a number >= 0, one per ROI, or 'noise'; got {lam!r}")
    lam_arr = None if constrained else _per_roi(lam, n, "lam", low=0.0, strict=False)
    if isinstance(s_min, str):
        if s_min != "noise":
            raise ParameterError(f"s_min must be a number >= 0 or 'noise'; got {s_min!r}")
        smin = S_MIN_NOISE_SD * noise
    else:
        smin = _per_roi(s_min, n, "s_min", low=0.0, strict=False)
    if n == 0:  # no ROIs (e.g. none detected): empty results, after checking the options
        empty = np.zeros(0)
        return np.zeros_like(y), np.zeros_like(y), empty, empty
    if method == "fista":
        if np.any(smin > 0):
            raise ParameterError("s_min applies to the OASIS methods only (FISTA has λ)")
        return _solve_fista(y, rate, td, tr, lam_arr, noise)
    if method == "oasis-ar1":
        g = np.array([tau_to_ar1(d, rate) for d in td])
        if constrained:
            res = oasis_constrained_batch(y, g, sigma=noise, order=1, s_min=smin)
            return res.c, res.s, res.lam, np.asarray(res.baseline, dtype=np.float64)
        return _with_baseline_refit(oasis_ar1_batch, y, (g,), lam_arr, smin)
    g12 = np.array([tau_to_ar2(r, d, rate)[:2] for d, r in zip(td, tr, strict=True)])
    if constrained:
        res = oasis_constrained_batch(y, g12, sigma=noise, order=2, s_min=smin)
        return res.c, res.s, res.lam, np.asarray(res.baseline, dtype=np.float64)
    return _with_baseline_refit(oasis_ar2_batch, y, (g12[:, 0], g12[:, 1]), lam_arr, smin)


def _fista_scale(tau_decay_s: float, tau_rise_s: float, rate: float) -> tuple[float, float]:
    """``(A, G)`` of CaLab's peak-normalised kernel ``h[n] = (d^n - r^n) / peak``.

    ``h[n] = A h'[n - 1]`` with ``h'`` the AR(2) impulse response of OASIS (``h'[0] = 1``), so
    FISTA's ``s`` at frame ``t - 1`` is OASIS's ``s`` at ``t`` divided by ``A``; ``G = sum(h)``
    scales CaLab's λ (penalty ``lam G sum(s)``). Both come from :func:`.kernels.kernel_iir`
    (numerator ``[0, A]``, DC gain ``G``).
    """
    b, _, gain = kernel_iir(tau_rise_s, tau_decay_s, rate)
    return float(b[1]), float(gain)


def _solve_fista(y, rate, td, tr, lam_arr, noise) -> tuple:
    """FISTA per group of ROIs sharing kinetics; ``s`` and λ returned in OASIS's convention.

    CaLab's kernel is 0 at the spike's own frame (``h[0] = 0``): its ``s`` is one frame early
    and scaled by ``1 / A`` relative to the AR(2) model ``c_t = g1 c_{t-1} + g2 c_{t-2} + s_t``
    of the OASIS methods. ``s`` is moved one frame later and multiplied by ``A`` so that every
    method reports the same quantity; ``lam`` is reported in that convention too. With
    ``lam=None`` (``"noise"``) λ comes from the noise-constrained AR(2) OASIS solution of the
    same problem (``lam_fista = lam_oasis A / G``).
    """
    n = y.shape[0]
    scale = np.array([_fista_scale(d, r, rate) for d, r in zip(td, tr, strict=True)])
    if lam_arr is None:
        g12 = np.array([tau_to_ar2(r, d, rate)[:2] for d, r in zip(td, tr, strict=True)])
        lam_arr = np.asarray(oasis_constrained_batch(y, g12, sigma=noise, order=2).lam)
    lam_fista = lam_arr * scale[:, 0] / scale[:, 1]
    c = np.empty_like(y)
    s = np.zeros_like(y)
    extra = np.zeros(n)
    keys = np.stack([td, tr], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    for k, (d, r) in enumerate(uniq):
        rows = np.flatnonzero(inverse.ravel() == k)
        res = fista_deconvolve(
            y[rows], frame_rate_hz=rate, tau_rise_s=float(r), tau_decay_s=float(d),
            lam=lam_fista[rows], baseline=True,
        )  # fmt: skip
        c[rows] = res.c
        s[rows, 1:] = np.asarray(res.s)[:, :-1] * scale[rows, :1].astype(y.dtype)
        extra[rows] = np.asarray(res.baseline, dtype=np.float64).reshape(-1)
    return c, s, lam_arr, extra


def _with_baseline_refit(solver, y, kinetics, lam_arr, smin, n_iter: int = 8) -> tuple:
    """Solve; with sparse spikes (``s_min > 0``) refit the constant baseline a few times.

    Given the spikes, the least-squares constant baseline is the mean residual
    ``mean(y - b - c)``; alternating it with the solve converges in a few steps (to 0.005 σ on
    synthetic traces with a known baseline). Without ``s_min`` the fit is non-negative least
    squares, which always gains from a lower baseline, so nothing is refitted.
    """
    n = y.shape[0]
    extra = np.zeros(n)
    c, s = solver(y, *kinetics, lam=lam_arr, s_min=smin)
    rows = np.flatnonzero(smin > 0)
    for _ in range(n_iter if rows.size else 0):
        step = np.mean(y[rows] - extra[rows, None] - c[rows], axis=1)
        extra[rows] += step
        shifted = y[rows] - extra[rows, None].astype(y.dtype)
        kin = tuple(np.broadcast_to(k, (n,))[rows] for k in kinetics)
        c[rows], s[rows] = solver(shifted, *kin, lam=lam_arr[rows], s_min=smin[rows])
        if np.all(np.abs(step) <= 1e-3 * np.maximum(smin[rows], 1e-12)):
            break
    return c, s, lam_arr, extra


def deconvolve(
    traces: Any,
    *,
    frame_rate_hz: float | None = None,
    method: str = "oasis-ar1",
    tau_decay_s: Any = None,
    tau_rise_s: Any = None,
    indicator: str | None = None,
    lam: Any = 0.0,
    s_min: Any = 0.0,
    baseline_window_s: float = 30.0,
    smoothing_s: Any = None,
    exponent: float = DEFAULT_EXPONENT,
    ids: Any = None,
) -> DeconvolutionResult:
    """Infer activity (spikes) from calcium traces, with a calibrated rate as the main output.

    Steps:

    1. **baseline**: a running 8th percentile over ``baseline_window_s`` plus the median of what
       is left is subtracted (slow drift and the offset; :func:`.activity.remove_baseline`);
    2. **noise**: σ per ROI from the high-frequency power spectrum
       (:func:`.noise.noise_sigma_psd`, CaImAn's GetSn idea); a trace upsampled from a lower
       rate is measured resampled to twice its bandwidth
       (:func:`.activity.effective_bandwidth_hz`), i.e. on about its original samples;
    3. **kinetics**: τ given, else estimated per ROI: τ_d from the noise-corrected
       autocovariance (:func:`.noise.estimate_tau`, clipped to :data:`TAU_DECAY_BOUNDS_S`) and,
       where that estimate hit a bound, from the decay of the ROI's average transient
       (:func:`.activity.estimate_decay_s`, the transients placed by a first AR(1) solve). An
       ``indicator`` preset is a prior that the data move: τ_d is the geometric mean of the
       preset's and the ROI's own estimate (equal weights in log τ; a GCaMP6f preparation that
       decays over 3 s gets 1.1 s, not the preset's 0.4 s); its rise is used by ``"oasis-ar2"``
       and ``"fista"``, which without a preset estimate both τ from the autocovariance;
    4. **solver** (`method`):

       * ``"oasis-ar1"`` (default): exact OASIS for ``c_t = g c_{t-1} + s_t``
         (Friedrich et al. 2017), :func:`.oasis.oasis_ar1_batch`;
       * ``"oasis-ar2"``: exact OASIS with rise and decay, :func:`.oasis_ar2.oasis_ar2_batch`;
       * ``"fista"``: CaLab's double-exponential kernel solved by FISTA (numpy or cupy),
         :func:`.fista.fista_deconvolve`;

       with ``lam`` a fixed sparsity penalty, or ``lam="noise"`` for the noise-constrained
       problem (foopsi; λ and a constant baseline chosen so that the residual matches σ,
       :func:`.constrained.oasis_constrained_batch`; for FISTA, λ = σ);
    5. **activity**: ``s`` smoothed by a Gaussian of ``smoothing_s`` seconds (default
       ``max(0.03 s, 1 / (2 f_eff))``, ``f_eff`` the traces' bandwidth), moved earlier for
       AR(1) (whose model has no rise, so ``s`` comes out spread after each spike) by
       ``min(0.3 × rise, 0.1 s)``, with ``rise`` the 10-90 % rise time of each ROI's own
       average transient (:func:`.activity.estimate_response_rise_s`; ``tau_rise_s`` instead
       when it is given), and compressed as ``x ** exponent``
       (:func:`.activity.smooth_activity`).

    Parameters
    ----------
    traces : array_like (n_rois, n_frames) or (n_frames,), TraceSet or DffResult
        Fluorescence: ΔF/F (best), neuropil-corrected F or any linear transform of it. A
        :class:`~napari_calcium.core.traces.extraction.TraceSet` gives its ``corrected`` traces, ids
        and frame rate; a :class:`~napari_calcium.core.traces.dff.DffResult` its ``dff``. Finite, at
        least 32 frames; rows that are NaN in every frame (as
        :func:`~napari_calcium.core.traces.dff.compute_dff` flags the ROIs whose baseline is not
        positive) are skipped.
    frame_rate_hz : float, optional
        Frames per second (required unless a TraceSet with a frame rate is given).
    method : {"oasis-ar1", "oasis-ar2", "fista"}
        Solver (default ``"oasis-ar1"``, the most accurate on the spikefinder ground truth).
    tau_decay_s, tau_rise_s : float or array_like (n_rois,), optional
        Indicator kinetics in seconds. None: from `indicator`, else estimated per ROI.
        ``tau_rise_s`` is used by ``"oasis-ar2"``, ``"fista"`` and, when given, as the AR(1)
        delay (else the delay is measured from the data; an indicator preset's rise is not
        used for it: the same indicator lags 0.01 s in one preparation, 0.10 s in another). Like
        every per-ROI value (``lam``, ``s_min``, ``smoothing_s``), the entry of a skipped row is
        not used (NaN from an earlier result is fine there).
    indicator : str, optional
        A preset of :data:`napari_calcium.core.spikes.indicators.INDICATORS` (e.g.
        ``"GCaMP6s"``): a prior for τ_d that each ROI's data move (step 3), and the rise of
        ``"oasis-ar2"`` and ``"fista"``. Give ``tau_decay_s`` to fix τ_d.
    lam : float, array_like (n_rois,) or "noise", optional
        Sparsity penalty λ >= 0 in the units of the traces (default 0: on real data penalties
        cost accuracy), or ``"noise"`` for the noise-constrained λ.
    s_min : float, array_like (n_rois,) or "noise", optional
        Minimum spike size in the units of the traces (OASIS only; default 0), or ``"noise"``
        for :data:`S_MIN_NOISE_SD` × σ. With ``s_min > 0`` the spikes are sparse and the constant
        baseline is refitted to the mean residual (sharper ``s`` on clean data; on the
        spikefinder ground truth any ``s_min`` lowered the correlation).
    baseline_window_s : float, optional
        Window of the running-percentile baseline, seconds (default 30; capped at the length).
    smoothing_s : float or array_like (n_rois,), optional
        Gaussian σ of the activity in seconds (default: see step 5; 0 = no smoothing).
    exponent : float, optional
        Compression exponent of the activity (default 0.75, fitted on spikefinder data; 1 keeps
        the activity proportional to ``s``).
    ids : array_like of int (n_rois,), optional
        ROI ids (default: from a TraceSet, else ``0..n_rois-1``).

    Returns
    -------
    DeconvolutionResult
        ``c``, ``s``, ``activity``, ``baseline`` (n_rois, n_frames) and per ROI ``lam``,
        ``tau_decay_s``, ``tau_rise_s``, ``noise``; ``parameters`` records every choice. The
        rows solved are exactly what deconvolving them alone gives; a skipped (NaN) row is NaN in
        every per-ROI output, and in the per-ROI lists of ``parameters``.

    Warns
    -----
    DegenerateTraceWarning
        Once, naming the rows (and ROI ids) that are NaN throughout and were skipped.

    Raises
    ------
    ParameterError
        Unknown method or indicator, NaN or inf in some frames of a row (or inf throughout), or
        a parameter out of range.
    ShapeError
        Traces that are not 1-D/2-D, too short, or per-ROI values of the wrong length.

    References
    ----------
    Friedrich, J., Zhou, P. & Paninski, L. (2017). Fast online deconvolution of calcium imaging
    data. *PLoS Comput Biol* 13(3), e1005423.
    Pnevmatikakis, E. A. et al. (2016). Simultaneous denoising, deconvolution, and demixing of
    calcium imaging data. *Neuron* 89(2), 285-299.
    Beck, A. & Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm for linear
    inverse problems. *SIAM J Imaging Sci* 2(1), 183-202.
    Berens, P. et al. (2018). Community-based benchmarking improves spike rate inference from
    two-photon calcium imaging data. *PLoS Comput Biol* 14(5), e1006157.

    Examples
    --------
    >>> from napari_calcium.core.synthetic.recording import simulate_traces  # doctest: +SKIP
    >>> res = deconvolve(dff, frame_rate_hz=30.0, indicator="GCaMP6f")  # doctest: +SKIP
    >>> res.activity.shape == dff.shape  # doctest: +SKIP
    True
    """
    if method not in DECONVOLUTION_METHODS:
        raise ParameterError(f"method must be one of {DECONVOLUTION_METHODS}; got {method!r}")
    x, rate, ids_arr, flagged = _unwrap(traces, frame_rate_hz, ids)
    if flagged.any():  # rows compute_dff flagged: solve the others, NaN for these
        n, keep = x.shape[0], np.flatnonzero(~flagged)
        per_roi = {
            "tau_decay_s": tau_decay_s,
            "tau_rise_s": tau_rise_s,
            "lam": lam,
            "s_min": s_min,
            "smoothing_s": smoothing_s,
        }
        per_roi = {name: _rows_of(value, n, keep, name) for name, value in per_roi.items()}
        rows = np.flatnonzero(flagged)
        named = ids_arr[rows]
        which = "" if np.array_equal(named, rows) else f" (ROI ids {_rows_text(named)})"
        warnings.warn(
            f"deconvolve: rows {_rows_text(rows)}{which} are NaN throughout (flagged, e.g. by "
            "compute_dff where the baseline is not positive) and were skipped; their results "
            "are NaN",
            DegenerateTraceWarning,
            stacklevel=2,
        )
        part = deconvolve(
            x[keep],
            frame_rate_hz=rate,
            method=method,
            indicator=indicator,
            baseline_window_s=baseline_window_s,
            exponent=exponent,
            ids=ids_arr[keep],
            **per_roi,
        )
        return _skip_flagged(part, keep, ids_arr, s_min=s_min)
    window = float(baseline_window_s)
    if not (np.isfinite(window) and window > 0):
        raise ParameterError(f"baseline_window_s must be > 0 seconds; got {baseline_window_s!r}")
    y, base = remove_baseline(x, frame_rate_hz=rate, window_s=window)
    band = effective_bandwidth_hz(x, frame_rate_hz=rate)
    noise = np.maximum(_noise_sigma(y, rate, band), np.finfo(np.float64).tiny)
    td, tr, kin_source = _kinetics(y, rate, method, tau_decay_s, tau_rise_s, indicator, noise)
    preset = get_indicator(indicator) if indicator is not None else None
    solved = None
    if tau_decay_s is None and (method == "oasis-ar1" or preset is not None):
        first = td if preset is None else None  # the autocovariance's, from _kinetics
        td, solved = _decay_from_data(y, rate, lam, s_min, noise, first)
        lo, hi = TAU_DECAY_BOUNDS_S
        own = (
            "estimated per ROI (from the autocovariance; where that hit its bounds "
            f"{lo:g}-{hi:g} s, from the decay of the ROI's average transient)"
        )
        # one sentence for every row, so that chunks of rows agree
        if preset is None:
            kin_source = f"tau_decay_s {own}"
        else:  # the preset is a prior that the data move: equal weights in log τ
            td = np.sqrt(td * preset.tau_decay_s)
            kin_source = (
                f"tau_decay_s the geometric mean of the {preset.name} preset's "
                f"{preset.tau_decay_s:g} s and the value {own}"
            )
            solved = None  # solved again at the combined τ
            if method != "oasis-ar1":
                tr = np.minimum(tr, 0.5 * td)
        if tau_rise_s is not None:
            kin_source += "; tau_rise_s given"
        elif method != "oasis-ar1":
            kin_source += "; " + (
                f"tau_rise_s from the {preset.name} preset"
                if preset is not None
                else "tau_rise_s estimated per ROI"
            )
    if solved is not None and method == "oasis-ar1":
        c, s, lam_arr, extra = solved
    else:
        c, s, lam_arr, extra = _solve(y, rate, method, td, tr, lam, s_min, noise)
    if smoothing_s is None:
        sigma = np.maximum(DEFAULT_MIN_SIGMA_S, 1.0 / (2.0 * band))
    else:
        sigma = _per_roi(smoothing_s, x.shape[0], "smoothing_s", low=0.0, strict=False)
    rise_s = np.full(x.shape[0], np.nan)
    eta, n_events, at = average_transients(y, s, frame_rate_hz=rate)
    snr = transient_snr(eta, n_events, at, noise=noise, frame_rate_hz=rate)
    with np.errstate(invalid="ignore", divide="ignore"):
        reliable = (snr >= MIN_TRANSIENT_SNR) & (snr / np.sqrt(n_events) >= MIN_EVENT_SNR)
    if method != "oasis-ar1":
        shift, delay = np.zeros(x.shape[0]), "none (the solver models the rise)"
    elif tau_rise_s is not None:
        shift, delay = tr, "tau_rise_s given"
    else:  # AR(1) has no rise: move by the delay measured from each ROI's own transients
        rise_s = rise_of_average(eta, at, frame_rate_hz=rate)
        shift = activity_delay_s(rise_s)
        delay = (
            f"{DELAY_PER_RISE:g} x the 10-90 % rise of each ROI's average transient, at most "
            f"{MAX_DELAY_S:g} s (0 with fewer than {MIN_RISE_EVENTS} transients)"
        )
    activity = smooth_activity(s, rate, sigma, shift_s=shift, exponent=exponent)
    baseline = base + extra[:, None]
    dtype = x.dtype
    parameters = {
        "method": method,
        "frame_rate_hz": rate,
        "indicator": indicator,
        "kinetics": kin_source,
        "lam": lam if isinstance(lam, str) else "given",
        "s_min": np.asarray(s_min).tolist(),
        "baseline": f"running 8th percentile over {min(window, x.shape[1] / rate):g} s + median",
        "smoothing_s": sigma.tolist(),
        "activity_shift_s": np.broadcast_to(shift, (x.shape[0],)).tolist(),
        "activity_delay": delay,
        "response_rise_s": [float(r) if np.isfinite(r) else None for r in rise_s],
        "transient_snr": [float(v) if np.isfinite(v) else None for v in snr],
        "reliable": reliable.tolist(),
        "reliable_rule": (
            f"transient_snr >= {MIN_TRANSIENT_SNR:g} (z-score of the ROI's average transient "
            f"against the noise) and >= {MIN_EVENT_SNR:g} per transient; unreliable with fewer "
            f"than {MIN_RISE_EVENTS} transients"
        ),
        "exponent": float(exponent),
    }
    return DeconvolutionResult(
        c=np.asarray(c, dtype=dtype),
        s=np.asarray(s, dtype=dtype),
        activity=np.asarray(activity, dtype=dtype),
        baseline=np.asarray(baseline, dtype=dtype),
        lam=np.asarray(lam_arr, dtype=np.float64),
        tau_decay_s=td,
        tau_rise_s=tr,
        noise=noise,
        method=method,
        frame_rate_hz=rate,
        ids=ids_arr,
        parameters=parameters,
    )

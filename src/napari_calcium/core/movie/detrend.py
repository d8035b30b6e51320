"""Slow trends of a movie: debleaching, linear detrending, movie dF/F and dF/√F.

Each function walks the movie in frame blocks: a first pass gathers what the correction needs
(the per-frame median intensity, per-pixel sums) and a second one applies it, block by block
into a new array (or `out=`, e.g. an ``np.memmap``), or lazily for a dask movie. The sliding
baseline of :func:`movie_dff` needs its neighbours in time, so it reads each block with one
baseline window of overlap on both sides; the result does not depend on the block size.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ...errors import ParameterError, ShapeError
from .._backend import array_module, is_dask_array, to_host
from ..chunking import auto_block_frames, frame_blocks, iter_frame_blocks

__all__ = ["DETREND_METHODS", "DFF_METHODS", "Debleached", "debleach", "detrend", "movie_dff"]

#: Methods of :func:`detrend`.
DETREND_METHODS = ("median", "linear")
#: Outputs of :func:`movie_dff`.
DFF_METHODS = ("dff", "dfsqrtf", "df", "baseline")

Progress = Callable[..., Any] | bool | None
StopHook = Callable[[], bool] | None


def _movie(movie: Any) -> Any:
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        movie = np.asarray(movie)
    if len(movie.shape) < 2 or int(movie.shape[0]) < 1:
        raise ShapeError(
            f"movie has shape {tuple(movie.shape)}; expected frames first with at least one "
            "frame, (frames, y, x) or (frames, planes, y, x)"
        )
    return movie


def _map_frames(
    movie: Any,
    fn: Callable[[Any, int, int], Any],
    *,
    out: Any,
    block_frames: int | None,
    progress: Progress,
    should_stop: StopHook,
    desc: str,
) -> Any:
    """``out[a:b] = fn(movie[a:b], a, b)`` over frame blocks; lazy ``map_blocks`` for dask."""
    if is_dask_array(movie) and out is None:
        meta = array_module(movie._meta).empty((0,) * movie.ndim, dtype=np.float32)

        def located(block: Any, block_info: Any = None) -> Any:
            start, stop = block_info[0]["array-location"][0]
            return fn(block, start, stop)

        whole = movie.rechunk({a: -1 for a in range(1, movie.ndim)})
        return whole.map_blocks(located, dtype=np.float32, meta=meta)
    blocks = iter_frame_blocks(
        movie, block_frames=block_frames, progress=progress, should_stop=should_stop, desc=desc
    )
    for block, arr in blocks:
        res = fn(arr, block.start, block.stop)
        if out is None:
            out = array_module(res).empty(tuple(movie.shape), dtype=res.dtype)
        out[block.start : block.stop, ...] = res
    if isinstance(out, np.memmap):
        out.flush()
    return out


def _frame_stat(xp: Any, arr: Any, statistic: str) -> Any:
    flat = xp.reshape(arr, (int(arr.shape[0]), -1))
    if statistic == "mean":
        return xp.mean(xp.astype(flat, xp.float64), axis=1)
    median = getattr(xp, "median", None)  # numpy, cupy; the array API has only sort
    if median is not None:
        return xp.astype(median(flat, axis=1), xp.float64)
    s = xp.astype(xp.sort(flat, axis=1), xp.float64)
    n = int(flat.shape[1])
    return (s[:, (n - 1) // 2] + s[:, n // 2]) / 2


class Debleached(NamedTuple):
    """Result of :func:`debleach`."""

    movie: Any
    """The corrected movie, float32 (lazy for dask input)."""
    trend: np.ndarray
    """``(frames,)`` float64: the per-frame statistic (median intensity) that was fitted."""
    fit: np.ndarray
    """``(frames,)`` float64: the fitted model, evaluated at every frame."""
    model: str
    """The model actually fitted: ``"exp"`` or ``"linear"`` (the fallback if exp fails)."""
    reference: float
    """The level the corrected frames are brought to: the median of `trend`."""


def _fit_trend(y: np.ndarray, model: str) -> tuple[np.ndarray, str]:
    """CaImAn's debleach fit: ``a exp(-b u) + c`` (u = frame / (frames - 1)), else a line."""
    n = y.size
    u = np.arange(n) / max(n - 1, 1)
    if model == "exp" and n >= 4:
        from scipy.optimize import curve_fit

        def expf(u: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
            return a * np.exp(-b * u) + c

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, _ = curve_fit(expf, u, y, p0=(y[0] - y[-1], 1.0, y[-1]), maxfev=5000)
            fit = expf(u, *p)
            if np.all(np.isfinite(fit)):
                return fit, "exp"
        except (RuntimeError, ValueError):
            pass
    if n < 2:
        return y.astype(np.float64), "linear"
    return np.polyval(np.polyfit(u, y, 1), u), "linear"


def debleach(
    movie: Any,
    *,
    model: str = "exp",
    mode: str = "subtract",
    statistic: str = "median",
    offset: float = 0.0,
    out: Any = None,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> Debleached:
    """Remove photobleaching: fit the median intensity over time and correct every frame by it.

    Parameters
    ----------
    movie : array_like, shape (frames, ...)
        numpy, memmap, dask, cupy or h5py-like movie.
    model : {"exp", "linear"}
        Model of the per-frame statistic ``y(t)``: ``a exp(-b u) + c`` with ``u = t / (T - 1)``
        (falls back to a line when the fit fails), or a straight line.
    mode : {"subtract", "divide"}
        ``subtract`` (CaImAn): ``x - (fit(t) - ref)``; right for additive drift, and keeps ΔF.
        ``divide``: ``offset + (x - offset) * (ref - offset) / (fit(t) - offset)``; right for
        multiplicative bleaching of fluorescence above a dark `offset`, and keeps ΔF/F.
    statistic : {"median", "mean"}
        Per-frame spatial statistic that is fitted (CaImAn: median).
    offset : float
        Dark level (ADU) that does not bleach, for ``mode="divide"``.
    out : array, shape movie.shape, optional
        Preallocated output (e.g. an ``np.memmap`` for a movie larger than memory).
    block_frames, progress, should_stop
        Frame-block size, tqdm-like progress factory and stop hook (see
        :func:`~napari_calcium.core.chunking.iter_frame_blocks`); the progress bar runs once per
        pass (statistic, then correction; only the first for lazy dask output).

    Returns
    -------
    Debleached
        ``movie`` (float32, lazy for dask input without `out`), ``trend``, ``fit``, ``model``,
        ``reference``.

    Notes
    -----
    ``ref`` is the median of ``y`` over time, as in CaImAn's ``movie.debleach``, so the corrected
    movie keeps the recording's typical brightness. The fit runs on the host (``T`` values).

    References
    ----------
    Giovannucci, A. et al. (2019). CaImAn. eLife 8, e38173 (``caiman.base.movies.debleach``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(100.0)
    >>> movie = (100 * np.exp(-t / 50))[:, None, None] + np.ones((100, 2, 2))
    >>> flat = debleach(movie).movie
    >>> bool(np.ptp(flat.mean(axis=(1, 2))) < 1e-3)
    True
    """
    movie = _movie(movie)
    if model not in ("exp", "linear"):
        raise ParameterError(f"model must be 'exp' or 'linear', got {model!r}")
    if mode not in ("subtract", "divide"):
        raise ParameterError(f"mode must be 'subtract' or 'divide', got {mode!r}")
    if statistic not in ("median", "mean"):
        raise ParameterError(f"statistic must be 'median' or 'mean', got {statistic!r}")
    parts = []
    blocks = iter_frame_blocks(
        movie,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc=f"debleach: {statistic} per frame",
    )
    for _, arr in blocks:
        parts.append(to_host(_frame_stat(array_module(arr), arr, statistic)))
    trend = np.concatenate(parts).astype(np.float64)
    fit, used = _fit_trend(trend, model)
    ref, off = float(np.median(trend)), float(offset)
    if mode == "subtract":
        add, gain = ref - fit, np.ones_like(fit)
    else:
        denom = fit - off
        if np.any(denom <= 0):
            raise ParameterError(
                f"offset={offset} is not below the fitted intensity (min {fit.min():.4g}); "
                "mode='divide' needs fit(t) > offset, pass the dark level of the recording"
            )
        gain = (ref - off) / denom
        add = off - off * gain

    def correct(arr: Any, start: int, stop: int) -> Any:
        xp = array_module(arr)
        shape = (stop - start,) + (1,) * (arr.ndim - 1)
        g = xp.reshape(xp.asarray(gain[start:stop].astype(np.float32)), shape)
        a = xp.reshape(xp.asarray(add[start:stop].astype(np.float32)), shape)
        return xp.astype(arr, xp.float32) * g + a

    result = _map_frames(
        movie,
        correct,
        out=out,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc="debleach: correct",
    )
    return Debleached(result, trend, fit, used, ref)


def detrend(
    movie: Any,
    *,
    method: str = "median",
    out: Any = None,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
    **debleach_options: Any,
) -> Any:
    """Remove slow trends: CaImAn-style debleaching (``"median"``) or per-pixel linear detrend.

    Parameters
    ----------
    movie : array_like, shape (frames, ...)
        numpy, memmap, dask, cupy or h5py-like movie.
    method : {"median", "linear"}
        ``median``: :func:`debleach` (fit of the median intensity over time, one correction per
        frame). ``linear``: fit a straight line to every pixel's time course and subtract it,
        keeping the pixel's mean (``scipy.signal.detrend(type="linear")`` plus the mean).
    out, block_frames, progress, should_stop
        See :func:`debleach`.
    **debleach_options
        ``model``, ``mode``, ``statistic``, ``offset`` for ``method="median"``.

    Returns
    -------
    array, shape movie.shape, float32
        The detrended movie (lazy for dask input without `out`).

    Notes
    -----
    Linear: with ``u = t - (T - 1) / 2``, the least-squares slope of pixel ``p`` is
    ``b_p = Σ_t u x_p(t) / Σ_t u²`` (one streaming pass) and the output is ``x_p(t) - b_p u``.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.arange(5.0)[:, None, None] * np.ones((5, 1, 2))
    >>> detrend(ramp, method="linear")[:, 0, 0].tolist()
    [2.0, 2.0, 2.0, 2.0, 2.0]
    """
    movie = _movie(movie)
    if method not in DETREND_METHODS:
        raise ParameterError(f"method must be one of {DETREND_METHODS}, got {method!r}")
    hooks = {"block_frames": block_frames, "progress": progress, "should_stop": should_stop}
    if method == "median":
        return debleach(movie, out=out, **hooks, **debleach_options).movie
    if debleach_options:
        raise ParameterError(f"method='linear' takes no {sorted(debleach_options)}")
    n = int(movie.shape[0])
    centre = (n - 1) / 2
    su = None
    for block, arr in iter_frame_blocks(movie, desc="detrend: fit lines", **hooks):
        xp = array_module(arr)
        u = xp.asarray(np.arange(block.start, block.stop, dtype=np.float64) - centre)
        u = xp.reshape(u, (-1,) + (1,) * (arr.ndim - 1))
        part = xp.sum(xp.astype(arr, xp.float64) * u, axis=0)
        su = part if su is None else su + part
    slope = xp.astype(su / max(n * (n * n - 1) / 12.0, 1e-300), xp.float32)

    def correct(arr: Any, start: int, stop: int) -> Any:
        xq = array_module(arr)
        u = np.arange(start, stop, dtype=np.float64) - centre
        u = xq.reshape(xq.asarray(u.astype(np.float32)), (-1,) + (1,) * (arr.ndim - 1))
        return xq.astype(arr, xq.float32) - u * xq.asarray(slope)

    return _map_frames(movie, correct, out=out, desc="detrend: subtract lines", **hooks)


# --------------------------------------------------------------------------------------------------
# Movie dF/F with a low-quantile baseline
# --------------------------------------------------------------------------------------------------
def _windows(n: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Baseline windows ``[start, start + w)`` from frame 0, the tail one ending at frame n."""
    if n <= w:
        return np.array([0]), np.array([(n - 1) / 2])
    starts = list(range(0, n - w + 1, w))
    if starts[-1] + w < n:
        starts.append(n - w)
    starts = np.asarray(starts)
    return starts, starts + (w - 1) / 2


def _quantile0(xp: Any, a: Any, q: float) -> Any:
    """``np.percentile(a, q, axis=0)`` (linear interpolation) for any namespace, float32."""
    percentile = getattr(xp, "percentile", None)  # numpy, cupy; the array API has only sort
    if percentile is not None:
        return xp.astype(percentile(a, q, axis=0), xp.float32)
    s = xp.astype(xp.sort(a, axis=0), xp.float64)
    pos = q / 100 * (int(a.shape[0]) - 1)
    lo = math.floor(pos)
    hi, frac = min(lo + 1, int(a.shape[0]) - 1), pos - lo
    return xp.astype(s[lo, ...] + frac * (s[hi, ...] - s[lo, ...]), xp.float32)


def _dff_block(arr, read_start, start, stop, n, w, q, method):
    """dF/F of core frames [start, stop) from `arr` = movie[read_start : ...] (absolute frames)."""
    xp = array_module(arr)
    starts, centres = _windows(n, w)
    t = np.arange(start, stop)
    j0 = np.clip(np.searchsorted(centres, t, side="right") - 1, 0, len(centres) - 1)
    j1 = np.minimum(j0 + 1, len(centres) - 1)
    span = centres[j1] - centres[j0]
    frac = np.where(span > 0, (t - centres[j0]) / np.where(span > 0, span, 1), 0.0)
    frac = np.clip(frac, 0.0, 1.0)
    first, last = int(j0.min()), int(j1.max())
    lengths = [min(w, n - s) for s in starts]
    quant = [
        _quantile0(xp, arr[s - read_start : s - read_start + length, ...], q)
        for s, length in zip(starts[first : last + 1], lengths[first : last + 1], strict=True)
    ]
    stack = xp.stack(quant, axis=0)
    shape = (stop - start,) + (1,) * (arr.ndim - 1)
    wgt = xp.reshape(xp.asarray(frac.astype(np.float32)), shape)
    f0 = xp.take(stack, xp.asarray(j0 - first), axis=0) * (1 - wgt)
    f0 = f0 + xp.take(stack, xp.asarray(j1 - first), axis=0) * wgt
    if method == "baseline":
        return f0
    f = xp.astype(arr[start - read_start : stop - read_start, ...], xp.float32)
    if method == "df":
        return f - f0
    ok = f0 > 0
    den = xp.where(ok, f0, xp.ones_like(f0))
    den = den if method == "dff" else xp.sqrt(den)
    return xp.where(ok, (f - f0) / den, xp.full_like(f0, float("nan")))


def movie_dff(
    movie: Any,
    *,
    frame_rate_hz: float,
    window_s: float = 5.0,
    quantile: float = 8.0,
    method: str = "dff",
    out: Any = None,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> Any:
    """Movie dF/F (or dF/√F) against a low-quantile baseline per pixel (CaImAn computeDFF).

    Parameters
    ----------
    movie : array_like, shape (frames, ...)
        numpy, memmap, dask, cupy or h5py-like movie, fluorescence in ADU (subtract a camera
        offset first if the zero level matters).
    frame_rate_hz : float
        Frames per second.
    window_s : float
        Baseline window in seconds (CaImAn ``secsWindow``); ``W = round(window_s * frame_rate_hz)``
        frames, at least 1.
    quantile : float
        Baseline quantile in percent, 0-100 (CaImAn ``quantilMin``).
    method : {"dff", "dfsqrtf", "df", "baseline"}
        ``(F - F0) / F0``, ``(F - F0) / √F0``, ``F - F0`` or ``F0`` itself.
    out : array, shape movie.shape, optional
        Preallocated float32 output (e.g. an ``np.memmap``).
    block_frames, progress, should_stop
        Frame-block size (rounded down to a multiple of ``W``), progress factory and stop hook.

    Returns
    -------
    array, shape movie.shape, float32
        Lazy for dask input without `out`. NaN where ``F0 <= 0`` (dff and dfsqrtf).

    Notes
    -----
    CaImAn's scheme: the frames are cut into consecutive windows of ``W`` frames (from frame 0;
    a last, incomplete window is replaced by the last ``W`` frames), the `quantile` of each
    pixel in each window (``np.percentile``, linear) is placed at the window's centre, and
    ``F0(t)`` interpolates linearly between centres (constant before the first and after the
    last). Compared with CaImAn, which pads the movie by reflection to a whole number of windows
    and stretches the window values with ``scipy.ndimage.zoom``, the windows here are anchored at
    frame 0 so that any block of frames can be processed alone: each block is read with ``W``
    frames of overlap on both sides, and the result is the same for every block size.

    References
    ----------
    Giovannucci, A. et al. (2019). CaImAn. eLife 8, e38173 (``movie.computeDFF``).

    Examples
    --------
    >>> import numpy as np
    >>> f = np.full((60, 1, 1), 100.0)
    >>> f[30] = 150.0
    >>> d = movie_dff(f, frame_rate_hz=10.0, window_s=2.0)
    >>> float(d[30, 0, 0]), float(d[0, 0, 0])
    (0.5, 0.0)
    """
    movie = _movie(movie)
    if method not in DFF_METHODS:
        raise ParameterError(f"method must be one of {DFF_METHODS}, got {method!r}")
    if not (frame_rate_hz > 0 and window_s > 0):
        raise ParameterError(
            f"frame_rate_hz and window_s must be > 0, got {frame_rate_hz} and {window_s}"
        )
    if not 0 <= quantile <= 100:
        raise ParameterError(f"quantile is in percent and must be in [0, 100], got {quantile}")
    n = int(movie.shape[0])
    w = max(1, round(window_s * frame_rate_hz))
    bf = block_frames or auto_block_frames(movie)
    bf = max(w, (bf // w) * w)
    args = (n, w, float(quantile), method)
    if is_dask_array(movie) and out is None:
        import dask
        import dask.array as da

        meta = array_module(movie._meta).empty((0,) * movie.ndim, dtype=np.float32)
        parts = []
        for b in frame_blocks(n, block_frames=bf, overlap=w):
            sub = movie[b.read_start : b.read_stop, ...]
            task = dask.delayed(_dff_block)(sub, b.read_start, b.start, b.stop, *args)
            shape = (b.n_frames, *movie.shape[1:])
            parts.append(da.from_delayed(task, shape=shape, dtype=np.float32, meta=meta))
        return da.concatenate(parts, axis=0)
    blocks = iter_frame_blocks(
        movie,
        block_frames=bf,
        overlap=w,
        progress=progress,
        should_stop=should_stop,
        desc=f"dF/F ({method})",
    )
    for block, arr in blocks:
        res = _dff_block(arr, block.read_start, block.start, block.stop, *args)
        if out is None:
            out = array_module(res).empty(tuple(movie.shape), dtype=res.dtype)
        out[block.start : block.stop, ...] = res
    if isinstance(out, np.memmap):
        out.flush()
    return out

"""Corrupted frames of wireless miniscopes: find them cheaply, then interpolate or drop them.

A wireless (or flaky-cable) miniscope that loses packets delivers frames in which rows or
rectangular blocks are check-pattern or salt-and-pepper noise, zeros, or a piece of another frame
pasted at an offset. Those frames wreck motion correction (the template and the shifts) and leave
spikes in every trace, so they are found first and repaired or dropped before anything else.

:func:`detect_corrupted_frames` walks the movie once, a block of frames at a time, and measures
per *row segment* (one row × a few tens of pixels) the high-frequency energy along the row and
across to the next row. A corrupted packet changes these energies by an order of magnitude;
calcium activity, bleaching and motion change them by tens of per cent, and slowly. Each segment
is compared with the same segment in the four frames before and after (the median of those eight),
in units of its own typical frame-to-frame change (a robust z-score of the log energy), so a
bright, busy or moving region is judged against itself and a transient that lasts longer than a
frame does not count.

:func:`repair_corrupted_frames` returns a lazy (dask) movie with those frames replaced by a
linear interpolation of the nearest good frames, or dropped, with the source frame of every
output frame so that time stamps can follow.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ParameterError, ShapeError
from .._backend import array_module, is_dask_array, to_host
from ..chunking import auto_block_frames, check_real, iter_frame_blocks

__all__ = [
    "CorruptedFrames",
    "RepairedMovie",
    "detect_corrupted_frames",
    "repair_corrupted_frames",
]

#: default number of segments a row is split into (each at least MIN_SEGMENT_PX wide)
DEFAULT_SEGMENTS = 8
MIN_SEGMENT_PX = 16
#: the log-energy scale (natural log) below which a segment's spread is not trusted: 0.1 means that
#: a change by a factor e (2.7x) is a z-score of 10
MIN_LOG_SCALE = 0.1
#: MAD -> standard deviation of a Gaussian
MAD_TO_SD = 1.4826
#: each frame is compared with the median of this many frames on each side
NEIGHBOURS = 4
NEIGHBOUR_OFFSETS = np.array([-4, -3, -2, -1, 1, 2, 3, 4])


@dataclass(frozen=True)
class CorruptedFrames:
    """What :func:`detect_corrupted_frames` found.

    Attributes
    ----------
    indices : numpy.ndarray
        ``(k,)`` int64 sorted indices of the frames whose score exceeds ``threshold``.
    scores : numpy.ndarray
        ``(frames,)`` float32 score of every frame: the largest robust z-score (unitless) of the
        log high-frequency energy over all of its row segments. Clean frames score a few units.
    threshold : float
        The threshold the indices were selected with.
    worst_rows : numpy.ndarray
        ``(frames,)`` int32 row (y) where each frame's score was reached: where to look.
    """

    indices: np.ndarray
    scores: np.ndarray
    threshold: float
    worst_rows: np.ndarray

    @property
    def n_frames(self) -> int:
        """Number of frames examined."""
        return int(self.scores.shape[0])

    @property
    def mask(self) -> np.ndarray:
        """``(frames,)`` bool, True for corrupted frames."""
        out = np.zeros(self.n_frames, bool)
        out[self.indices] = True
        return out


@dataclass(frozen=True)
class RepairedMovie:
    """A movie with its corrupted frames interpolated or dropped.

    Attributes
    ----------
    movie : dask.array.Array
        ``(n_out, y, x)`` (or ``(n_out, ...)``) lazy movie in the input's dtype, chunked like the
        input along frames where possible.
    source_frames : numpy.ndarray
        ``(n_out,)`` int64: the input frame each output frame stands for. ``arange(n)`` for
        ``mode="interpolate"``; the kept frames for ``mode="drop"`` (index time stamps with it:
        ``timestamps_s[source_frames]``).
    replaced : numpy.ndarray
        ``(k,)`` int64 sorted input frames that were interpolated or dropped.
    mode : str
        ``"interpolate"`` or ``"drop"``.
    """

    movie: Any
    source_frames: np.ndarray
    replaced: np.ndarray
    mode: str


def _check_number(name: str, value: Any, *, low: float, integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name}={value!r} must be a number >= {low:g}")
    if integer and not float(value).is_integer():
        raise ParameterError(f"{name}={value!r} must be a whole number >= {low:g}")
    if not math.isfinite(float(value)) or value < low:
        raise ParameterError(f"{name}={value!r} must be a finite number >= {low:g}")
    return int(value) if integer else float(value)


def _segment_edges(width: int, n_segments: int) -> np.ndarray:
    return np.linspace(0, width, n_segments + 1).round().astype(np.int64)


def _segment_means(xp: Any, values: Any, edges: np.ndarray) -> Any:
    """Mean of ``values (frames, rows, width)`` over each ``[edges[s], edges[s+1])`` along x."""
    frames, rows, _ = values.shape
    cumsum = getattr(xp, "cumulative_sum", None) or xp.cumsum
    csum = cumsum(values, axis=2)
    zero = xp.zeros((frames, rows, 1), dtype=values.dtype)
    csum = (
        xp.concat([zero, csum], axis=2)
        if hasattr(xp, "concat")
        else xp.concatenate([zero, csum], axis=2)
    )
    hi = xp.take(csum, xp.asarray(edges[1:]), axis=2)
    lo = xp.take(csum, xp.asarray(edges[:-1]), axis=2)
    width = xp.asarray((edges[1:] - edges[:-1]).astype(np.float32))
    return (hi - lo) / width


def _features(block: Any, edges_h: np.ndarray, edges_v: np.ndarray) -> np.ndarray:
    """``(frames, 2 * rows, segments)`` float32 high-frequency energies of a block of frames.

    Rows ``0..rows-1``: mean ``|x[y, i+1] - x[y, i]|`` per row segment (along the row). Rows
    ``rows..2 rows - 1``: mean ``|x[y+1, i] - x[y, i]|`` per row segment (across to the next
    row, which catches seams and offsets between rows); the last row repeats the one before.
    """
    xp = array_module(block)
    if xp is np:  # the CPU fast path: in-place differences and reduceat (no cumulative sums)
        b = np.asarray(block, dtype=np.float32)
        along = np.subtract(b[:, :, 1:], b[:, :, :-1])
        np.abs(along, out=along)
        across = np.subtract(b[:, 1:, :], b[:, :-1, :])
        np.abs(across, out=across)
        f_along = np.add.reduceat(along, edges_h[:-1], axis=2)
        f_along /= np.diff(edges_h).astype(np.float32)
        f_across = np.add.reduceat(across, edges_v[:-1], axis=2)
        f_across /= np.diff(edges_v).astype(np.float32)
        return np.concatenate([f_along, f_across, f_across[:, -1:]], axis=1)
    # any other array namespace (cupy, array-API): the same quantities through cumulative sums
    concat = getattr(xp, "concat", None) or xp.concatenate
    b = xp.astype(block, xp.float32) if hasattr(xp, "astype") else block.astype(xp.float32)
    along = xp.abs(b[:, :, 1:] - b[:, :, :-1])
    across = xp.abs(b[:, 1:, :] - b[:, :-1, :])
    across = concat([across, across[:, -1:, :]], axis=1)
    f_along = _segment_means(xp, along, edges_h)
    f_across = _segment_means(xp, across, edges_v)
    return np.asarray(to_host(concat([f_along, f_across], axis=1)), np.float32)


def _score_window(
    ext: np.ndarray, lo: int, start: int, stop: int, n_frames: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and worst feature rows of frames ``[start, stop)``.

    ``ext`` holds the features of frames ``[lo, lo + len(ext))``, at least ``NEIGHBOURS`` frames
    beyond the window on each side where the movie has them.
    """
    logf = np.log(ext + np.float32(eps))
    resid = np.empty((stop - start, *ext.shape[1:]), np.float32)
    for a in range(start, stop, 32):  # the neighbour stack is 8x a block: keep it small
        b = min(stop, a + 32)
        t = np.arange(a, b)[:, None] + NEIGHBOUR_OFFSETS[None, :]
        t = np.abs(t)  # reflect at the movie's ends
        t = np.where(t > n_frames - 1, 2 * (n_frames - 1) - t, t)
        t = np.clip(t, 0, n_frames - 1) - lo
        ref = np.median(logf[t], axis=1)  # (frames, rows, segments)
        np.abs(logf[a - lo : b - lo] - ref, out=resid[a - start : b - start])
    scale = np.maximum(MAD_TO_SD * np.median(resid, axis=0), MIN_LOG_SCALE)
    z = (resid / scale).reshape(stop - start, -1)
    where = z.argmax(axis=1)
    return z[np.arange(stop - start), where], where // ext.shape[2]


def _windows(n_frames: int, window_frames: int) -> np.ndarray:
    n_windows = max(1, round(n_frames / window_frames))
    return np.linspace(0, n_frames, n_windows + 1).round().astype(np.int64)


def detect_corrupted_frames(
    movie: Any,
    *,
    threshold: float = 12.0,
    block_frames: int | None = None,
    window_frames: int = 200,
    segments: int = DEFAULT_SEGMENTS,
    progress: Callable | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CorruptedFrames:
    """Find frames with rows or blocks of packet-loss noise, in one blockwise pass.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask (each block computed once), cupy or any lazy array with slicing.
        Integer or float intensities, at least 2 × 2 pixels.
    threshold : float
        Score (a robust z-score, unitless) above which a frame is corrupted. Clean simulated
        one- and two-photon movies with motion and strong activity score below ~9; a band of
        check-pattern rows, a 24 × 24 px noise block, a band of zeros, 2 % salt-and-pepper or a
        frame of noise score 17 and more.
    block_frames : int, optional
        Frames read at a time (default: from a 64 MiB float32 budget, aligned to dask chunks).
        Memory: about 4 × that block as float32, plus the features of one window.
    window_frames : int
        Frames over which the typical frame-to-frame change of each row segment (the z-score's
        unit) is measured; windows are equal and at least half this long. Fewer than half of a
        window's frames may be corrupted.
    segments : int
        Segments each row is split into (each at least 16 px); more find smaller blocks.
    progress : callable, True or None
        tqdm-like factory (see :func:`~napari_calcium.core.chunking.iter_frame_blocks`).
    should_stop : callable, optional
        Polled before each block; True raises
        :class:`~napari_calcium.errors.OperationCancelled`.

    Returns
    -------
    CorruptedFrames
        ``indices`` of the corrupted frames, ``scores`` of all frames, ``worst_rows``.

    Raises
    ------
    ShapeError
        A movie that is not ``(frames, y, x)`` with y, x >= 2 or not real-valued.
    ParameterError
        A bad threshold, block, window or segment count.

    Notes
    -----
    For frame ``t``, row ``y`` and segment ``s`` (columns ``X_s``) the energies are
    ``E_h = mean_{i in X_s} |F[t, y, i+1] - F[t, y, i]|`` and ``E_v = mean_{i in X_s}
    |F[t, y+1, i] - F[t, y, i]|``. Each feature ``e`` is compared in log space with the median
    of the same feature in frames ``t ± 1..4`` (reflected at the movie's ends):
    ``r_t = |log(e_t + ε) - median_{t±1..4} log(e + ε)|``, and
    ``z_t = r_t / max(1.4826 median_W r, 0.1)`` with ``W`` the window of frames around ``t``
    and ``ε`` a quarter of the window's median energy (so dark, flat regions do not amplify
    single counts). The frame score is ``max z`` over its features. Energy *drops* count too (a
    band of zeros, a frozen block). Runs of up to three consecutive frames corrupted at the same
    place are found without flagging their clean neighbours; a longer freeze or dropout is a
    different failure (see the time stamps). A block replaced by a shifted copy of another frame
    is found only where the seam crosses image structure (its energy is otherwise normal).
    The cost is two absolute differences and a sum per pixel (~1.5 ms per 600 × 600 frame on one
    core): reading or decoding the movie dominates.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> movie = rng.poisson(100, (60, 64, 64)).astype(np.uint16)
    >>> movie[17, 20:28] = np.indices((8, 64)).sum(0) % 2 * 1000  # a band of check pattern
    >>> detect_corrupted_frames(movie).indices
    array([17])
    """
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        movie = np.asarray(movie)
    if len(movie.shape) != 3 or movie.shape[1] < 2 or movie.shape[2] < 2:
        raise ShapeError(
            f"movie has shape {tuple(movie.shape)}; expected (frames, y, x) with y, x >= 2 "
            "(detect corrupted frames per plane of a volume)"
        )
    check_real(movie)
    threshold = _check_number("threshold", threshold, low=0.0)
    window_frames = _check_number("window_frames", window_frames, low=2, integer=True)
    segments = _check_number("segments", segments, low=1, integer=True)
    n_frames, height, width = (int(s) for s in movie.shape)
    if n_frames == 0:
        empty = np.zeros(0, np.int64)
        return CorruptedFrames(empty, np.zeros(0, np.float32), threshold, empty.astype(np.int32))
    if block_frames is None:
        block_frames = auto_block_frames(movie, budget_bytes=8 * 2**20)
    n_segments = max(1, min(segments, (width - 1) // MIN_SEGMENT_PX))
    edges_h = _segment_edges(width - 1, n_segments)
    edges_v = _segment_edges(width, n_segments)
    bounds = _windows(n_frames, window_frames)
    scores = np.zeros(n_frames, np.float32)
    worst = np.zeros(n_frames, np.int32)
    buffer: list[np.ndarray] = []
    buffered_from = 0  # the first frame held in the buffer
    next_window = 1
    blocks = iter_frame_blocks(
        movie,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc="corrupted frames",
    )
    for block, array in blocks:
        buffer.append(_features(array, edges_h, edges_v))
        while next_window < len(bounds):
            a, b = int(bounds[next_window - 1]), int(bounds[next_window])
            hi = min(n_frames, b + NEIGHBOURS)
            if block.stop < hi:
                break
            feats = np.concatenate(buffer) if len(buffer) > 1 else buffer[0]
            lo = max(0, a - NEIGHBOURS)
            ext = feats[lo - buffered_from : hi - buffered_from]
            eps = 0.25 * float(np.median(ext[a - lo : b - lo])) + 1e-6
            s, rows = _score_window(ext, lo, a, b, n_frames, eps)
            scores[a:b] = s
            worst[a:b] = rows % height
            keep_from = max(0, b - NEIGHBOURS)
            buffer = [feats[keep_from - buffered_from :]]
            buffered_from = keep_from
            next_window += 1
    indices = np.flatnonzero(scores > threshold).astype(np.int64)
    return CorruptedFrames(indices, scores, threshold, worst)


# --------------------------------------------------------------------------------------------
# Repair


def _as_dask(movie: Any) -> Any:
    import dask.array as da

    if is_dask_array(movie):
        return movie
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        movie = np.asarray(movie)
    block = auto_block_frames(movie)
    chunks = (block, *(int(s) for s in movie.shape[1:]))
    return da.from_array(movie, chunks=chunks, asarray=not isinstance(movie, np.ndarray))


def _check_indices(indices: Any, n_frames: int) -> np.ndarray:
    if isinstance(indices, CorruptedFrames):
        indices = indices.indices
    try:
        idx = np.asarray(indices)
    except Exception:
        raise ParameterError(f"indices={indices!r} must be frame indices") from None
    if idx.dtype == bool:
        if idx.shape != (n_frames,):
            raise ParameterError(
                f"indices is a boolean mask of shape {idx.shape}; expected ({n_frames},)"
            )
        idx = np.flatnonzero(idx)
    idx = idx.ravel()
    if (
        idx.size
        and not np.issubdtype(idx.dtype, np.integer)
        and (not np.issubdtype(idx.dtype, np.floating) or not np.all(np.mod(idx, 1) == 0))
    ):
        raise ParameterError("indices must be whole frame numbers")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < -n_frames or idx.max() >= n_frames):
        raise ParameterError(
            f"indices out of range: the movie has {n_frames} frames "
            f"(got {idx.min()} .. {idx.max()})"
        )
    return np.unique(np.where(idx < 0, idx + n_frames, idx))


def _runs(frames: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive runs ``[(start, stop), ...]`` of sorted frame numbers."""
    if frames.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1)
    starts = np.concatenate([[frames[0]], frames[breaks + 1]])
    stops = np.concatenate([frames[breaks] + 1, [frames[-1] + 1]])
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _interpolated(src: Any, t: int, prev: int, nxt: int) -> Any:
    """Frame ``t`` of ``src`` linearly interpolated from good frames ``prev`` and ``nxt``."""
    import dask.array as da

    if prev < 0 or nxt < 0 or prev == nxt:
        good = prev if prev >= 0 else nxt
        return src[good : good + 1]
    w = (t - prev) / (nxt - prev)
    a = src[prev : prev + 1].astype(np.float64)
    b = src[nxt : nxt + 1].astype(np.float64)
    value = (1.0 - w) * a + w * b
    if np.issubdtype(src.dtype, np.integer):
        info = np.iinfo(src.dtype)
        value = da.clip(da.rint(value), info.min, info.max)
    return value.astype(src.dtype)


def repair_corrupted_frames(
    movie: Any,
    indices: Any,
    *,
    mode: str = "interpolate",
) -> RepairedMovie:
    """Interpolate or drop corrupted frames, lazily.

    Parameters
    ----------
    movie : array_like, shape (frames, ...)
        numpy, memmap, dask or any sliceable lazy array; nothing is read here.
    indices : array_like of int, bool mask or CorruptedFrames
        Frames to replace (negative indices count from the end), a ``(frames,)`` boolean mask,
        or the result of :func:`detect_corrupted_frames`.
    mode : {"interpolate", "drop"}
        ``"interpolate"``: each listed frame becomes ``(1 - w) F[p] + w F[q]`` with ``p``/``q``
        the nearest good frames before and after and ``w = (t - p) / (q - p)``; at the ends, a
        copy of the nearest good frame. Integer movies are rounded to the nearest integer (and
        clipped to the dtype), float movies keep full precision. ``"drop"``: the frames are
        removed.

    Returns
    -------
    RepairedMovie
        ``movie`` (dask, the input's dtype), ``source_frames`` (input frame of each output
        frame), ``replaced`` (the frames interpolated or dropped) and ``mode``.

    Raises
    ------
    ParameterError
        Unknown mode, indices out of range or not whole numbers, or every frame corrupted.
    ShapeError
        A movie without a frame axis.

    Examples
    --------
    >>> ramp = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    >>> fixed = repair_corrupted_frames(ramp, [2], mode="interpolate")
    >>> float(fixed.movie[2, 0, 0].compute())
    2.0
    >>> repair_corrupted_frames(ramp, [2], mode="drop").source_frames
    array([0, 1, 3, 4])
    """
    import dask.array as da

    if mode not in ("interpolate", "drop"):
        raise ParameterError(f"mode={mode!r} is not known: use 'interpolate' or 'drop'")
    if not hasattr(movie, "shape"):
        movie = np.asarray(movie)
    if len(movie.shape) < 1:
        raise ShapeError(f"movie has shape {tuple(movie.shape)}; expected (frames, ...)")
    check_real(movie)
    n_frames = int(movie.shape[0])
    bad = _check_indices(indices, n_frames)
    src = _as_dask(movie)
    frame_chunks = src.chunks[0]
    good = np.setdiff1d(np.arange(n_frames, dtype=np.int64), bad)
    if bad.size and good.size == 0:
        raise ParameterError(
            f"all {n_frames} frames are listed as corrupted; nothing to interpolate from"
        )
    if bad.size == 0:
        return RepairedMovie(src, np.arange(n_frames, dtype=np.int64), bad, mode)
    if mode == "drop":
        pieces = [src[a:b] for a, b in _runs(good)]
        out = da.concatenate(pieces, axis=0)
        target = max(frame_chunks) if frame_chunks else 1
        out = out.rechunk({0: target})
        return RepairedMovie(out, good, bad, mode)
    pos = np.searchsorted(good, bad)
    prev = np.where(pos > 0, good[np.maximum(pos - 1, 0)], -1)
    nxt = np.where(pos < good.size, good[np.minimum(pos, good.size - 1)], -1)
    pieces = []
    cursor = 0
    for t, p, q in zip(bad.tolist(), prev.tolist(), nxt.tolist(), strict=True):
        if t > cursor:
            pieces.append(src[cursor:t])
        pieces.append(_interpolated(src, t, p, q))
        cursor = t + 1
    if cursor < n_frames:
        pieces.append(src[cursor:])
    out = da.concatenate(pieces, axis=0).rechunk({0: frame_chunks})
    return RepairedMovie(out, np.arange(n_frames, dtype=np.int64), bad, mode)

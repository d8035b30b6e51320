"""Applying rigid shifts to a movie, and referring shifts to the recording's median position.

The correcting half of rigid registration, written once for numpy and cupy.
:func:`apply_shifts` samples ``corrected[t, y, x] = movie[t, y + dy, x + dx]`` block by block
(lazily for dask input) and :func:`recentre_shifts` moves shifts measured against a built template
to the median position; :func:`~napari_calcium.core.movie.motion.rigid.motion_correct` (whose
module re-exports both) ends with them. See :mod:`napari_calcium.core.movie.motion.rigid` for the
sign convention.

Beneath them, the shifting of frame blocks: :func:`interpolation_taps` (Keys cubic or linear
weights, computed on the host), :func:`shift_frames` (a numba kernel on numpy blocks, its
array-expression twin elsewhere, or a Fourier phase ramp), :func:`fill_border` and
:func:`valid_box` (pixels whose source lay outside the frame), :func:`correct_block` (shift, fill,
crop, cast) and :func:`correct_frames` (over the blocks of a movie, or lazily by
``map_blocks``; the piecewise correction uses it too); with the options they accept
(:data:`INTERPOLATIONS`, :data:`BORDERS`) and the movie, shifts and dtype checks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ....errors import ParameterError, ShapeError
from ..._backend import array_module, fft_module, is_dask_array, to_host
from ..._threads import in_threads
from ...chunking import iter_frame_blocks
from .phase_correlation import _fft_kwargs, max_shift_pair

__all__ = ["apply_shifts", "recentre_shifts"]

INTERPOLATIONS = ("cubic", "linear", "fourier")
BORDERS = ("nan", "zero", "edge", "crop")


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ParameterError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
        )
    return value


def _check_movie(movie: Any) -> Any:
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        movie = np.asarray(movie)
    shape = tuple(int(s) for s in movie.shape)
    if len(shape) != 3 or min(shape[1:]) < 4:
        raise ShapeError(
            f"movie has shape {shape}; motion correction needs (frames, y, x) with frames at least "
            "4 x 4 pixels (register a volume plane by plane: movie[:, plane])"
        )
    return movie


def _check_shifts(shifts: Any, n_frames: int) -> np.ndarray:
    arr = np.asarray(to_host(shifts), dtype=np.float64)
    if arr.shape != (n_frames, 2):
        raise ShapeError(f"shifts has shape {arr.shape}; expected (frames, 2) = ({n_frames}, 2)")
    if not np.isfinite(arr).all():
        raise ParameterError("shifts must be finite (no NaN or inf)")
    return arr


def _check_dtype(dtype: Any, border: str) -> np.dtype:
    try:
        out = np.dtype(dtype)
    except TypeError:
        raise ParameterError(f"dtype must be a numpy dtype, got {dtype!r}") from None
    if out.kind not in "uif":
        raise ParameterError(f"dtype must be a float or integer dtype, got {out}")
    if out.kind != "f" and border == "nan":
        raise ParameterError(
            f"dtype={out} cannot hold the NaN of border='nan'; use a float dtype or another border"
        )
    return out


def recentre_shifts(
    shifts: Any,
    template: Any,
    *,
    max_shift_px: float | tuple[float, float] | None = None,
    interpolation: str = "cubic",
) -> tuple[np.ndarray, Any]:
    """Refer shifts to the recording's median position, and move the template there.

    :func:`motion_correct` does this with a template it built itself; it is public so that
    shifts measured piecewise (e.g. chunks of one movie on several dask workers, each with
    :func:`estimate_shifts` against one :func:`build_template`) end up exactly as
    :func:`motion_correct`'s.

    Parameters
    ----------
    shifts : array_like, shape (frames, 2)
        (dy, dx) in pixels relative to `template` (:func:`estimate_shifts`).
    template : array, shape (y, x)
        The template the shifts were measured against.
    max_shift_px : float or (float, float), optional
        The estimation's limit (default: 10 % of the frame); the recentred shifts are clipped to it.
    interpolation : {"cubic", "linear", "fourier"}, optional
        How the template is moved (see :func:`apply_shifts`).

    Returns
    -------
    shifts : ndarray, shape (frames, 2), float64
        ``shifts - median(shifts, axis=0)``, clipped to ±`max_shift_px`.
    template : array, shape (y, x), float32
        The template moved by the median shift (edges extended), on its array module.
    """
    shifts = np.asarray(shifts, dtype=np.float64)
    if shifts.ndim != 2 or shifts.shape[1] != 2:
        raise ShapeError(f"shifts must have shape (frames, 2), got {shifts.shape}")
    interpolation = _choice(interpolation, "interpolation", INTERPOLATIONS)
    if not len(shifts):
        return shifts, template
    shape = tuple(int(s) for s in np.shape(template))
    limit = np.asarray(max_shift_pair(max_shift_px, shape[-2:]), dtype=np.float64)
    median = np.median(shifts, axis=0)
    shifts = np.clip(shifts - median, -limit, limit)
    template = correct_block(
        template[None], -median[None], interpolation=interpolation, border="edge",
        dtype=np.dtype(np.float32), box=None,
    )[0]  # fmt: skip
    return shifts, template


def apply_shifts(
    movie: Any,
    shifts: Any,
    *,
    interpolation: str = "cubic",
    border: str = "nan",
    dtype: Any = np.float32,
    block_frames: int | None = None,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Any:
    """Remove per-frame rigid displacements: ``out[t, y, x] = movie[t, y + dy, x + dx]``.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask or cupy.
    shifts : array_like, shape (frames, 2)
        Displacements (dy, dx) in pixels, as returned by :func:`estimate_shifts` (or the
        generator's ``truth.shifts``); each frame is moved by ``-shifts[t]``.
    interpolation : {"cubic", "linear", "fourier"}, optional
        ``"cubic"``: separable Keys cubic convolution (a = -0.5, 4 taps, exact for quadratics);
        ``"linear"``: separable bilinear (smooths more);
        ``"fourier"``: a phase ramp on the FFT (band-limited, exact for periodic band-limited
        frames; content wraps round the edges, which the border then hides). Integer shifts are
        exact with every method.
    border : {"nan", "zero", "edge", "crop"}, optional
        Pixels whose source lies outside the frame become NaN, 0, or the nearest valid pixel of
        the corrected frame; ``"crop"`` keeps only the region valid in every frame
        (``out.shape[1:]`` shrinks; see :func:`motion_correct`'s ``valid_box``).
    dtype : numpy dtype, optional
        Output dtype (float32 by default). Integer dtypes are rounded and clipped to their range
        (then `border` cannot be "nan").
    block_frames : int, optional
        Frames per block (numpy/cupy input); None picks it from a 64 MiB budget.
    progress, should_stop : optional
        As in :func:`estimate_shifts` (unused for dask input, which stays lazy).

    Returns
    -------
    array, shape (frames, y, x) or cropped
        On the movie's array module; a lazy dask array (``map_blocks`` over whole-frame chunks,
        each given its slice of `shifts`) when `movie` is a dask array.

    Raises
    ------
    ShapeError
        If `shifts` is not (frames, 2) or the movie not (frames, y, x).
    ParameterError
        For an invalid option or non-finite shifts.
    OperationCancelled
        When `should_stop` returns True.

    Notes
    -----
    Separable interpolation reads samples beyond the edge as the edge value; the CPU path is a
    numba kernel (parallel over frames), the GPU path the equivalent cupy expression. A pixel is
    outside when its source ``y + dy`` is outside ``[0, ny - 1]`` (same for x): for shifts
    ``(2.5, -1)`` the valid rows are ``[0, ny - 4]`` and the valid columns ``[1, nx - 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> movie = np.zeros((1, 8, 8), np.float32); movie[0, 4, 5] = 1.0
    >>> out = apply_shifts(movie, [[1.0, 2.0]], border="zero")
    >>> np.argwhere(out[0] == 1.0).tolist()
    [[3, 3]]
    """
    movie = _check_movie(movie)
    shifts = _check_shifts(shifts, int(movie.shape[0]))
    interpolation = _choice(interpolation, "interpolation", INTERPOLATIONS)
    border = _choice(border, "border", BORDERS)
    out_dtype = _check_dtype(dtype, border)
    ny, nx = int(movie.shape[1]), int(movie.shape[2])
    box = valid_box(shifts, (ny, nx)) if border == "crop" else (0, ny, 0, nx)
    if border == "crop" and (box[1] <= box[0] or box[3] <= box[2]):
        raise ParameterError(
            "border='crop' leaves no pixel valid in every frame (the shifts span the whole frame); "
            "use border='nan'"
        )
    return correct_frames(
        movie, shifts, correct_block, box=box, dtype=out_dtype, block_frames=block_frames,
        progress=progress, should_stop=should_stop, desc="motion correction: applying shifts",
        interpolation=interpolation, border=border,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Shifting frame blocks
# --------------------------------------------------------------------------------------------------
def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """Keys (1981) cubic convolution (a = -0.5): weights of taps -1, 0, 1, 2 for fractions t."""
    a = -0.5
    out = []
    for d in (1.0 + t, t, 1.0 - t, 2.0 - t):
        near = (a + 2.0) * d**3 - (a + 3.0) * d**2 + 1.0
        far = a * d**3 - 5.0 * a * d**2 + 8.0 * a * d - 4.0 * a
        out.append(np.where(d <= 1.0, near, far))
    return np.stack(out, axis=-1)


def interpolation_taps(shifts: np.ndarray, interpolation: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer bases ``(frames, 2)`` and float32 weights ``(frames, 2, 4)`` of taps -1..2.

    ``out(i) = Σ_k weights[k] in(i + base + k - 1)`` samples ``in(i + shift)`` (linear: taps 0, 1).
    Computed on the host once, so the numba kernel and the array expression use the same numbers.
    """
    base = np.floor(np.asarray(shifts, dtype=np.float64).reshape(-1, 2))
    t = np.asarray(shifts, dtype=np.float64).reshape(-1, 2) - base
    zero = np.zeros_like(t)
    linear = np.stack([zero, 1.0 - t, t, zero], axis=-1)
    weights = linear if interpolation == "linear" else _cubic_weights(t)
    return base.astype(np.int64), weights.astype(np.float32)


def _shift_frames_xp(x: Any, base: np.ndarray, weights: np.ndarray, xp: Any) -> Any:
    """Array-expression twin of the numba kernel (cupy's path): the same taps, the same order."""
    n, ny, nx = x.shape
    out = xp.empty((n, ny, nx), dtype=xp.float32)
    if n == 0:
        return out
    pad = int(np.abs(base).max()) + 3
    padded = xp.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    for f in range(n):
        rows = None
        start = pad + int(base[f, 0]) - 1
        for k in range(4):
            term = padded[f, start + k : start + k + ny, :] * weights[f, 0, k]
            rows = term if rows is None else rows + term
        cols = None
        start = pad + int(base[f, 1]) - 1
        for k in range(4):
            term = rows[:, start + k : start + k + nx] * weights[f, 1, k]
            cols = term if cols is None else cols + term
        out[f] = cols
    return out


@functools.cache
def _shift_kernel() -> Any:
    """numba CPU kernel (compiled once, cached on disk): shift frames by their taps.

    Serial over the frames ``start:stop`` and ``nogil``; :func:`shift_frames` spreads the frames
    over threads (:func:`~napari_calcium.core._threads.in_threads`). Each frame is independent,
    so the result is the same as a ``prange`` over frames, which compiled 3x slower (issue 16).
    """
    import numba

    @numba.njit(cache=True, nogil=True)
    def kernel(frames, base, weights, out, start, stop):  # pragma: no cover - compiled
        ny, nx = frames.shape[1], frames.shape[2]
        for f in range(start, stop):
            by, bx = base[f, 0], base[f, 1]
            wy, wx = weights[f, 0], weights[f, 1]
            w0, w1, w2, w3 = wy[0], wy[1], wy[2], wy[3]
            v0, v1, v2, v3 = wx[0], wx[1], wx[2], wx[3]
            pad = abs(bx) + 2
            line = np.empty(nx + 2 * pad, np.float32)
            for i in range(ny):
                r0 = frames[f, min(max(i + by - 1, 0), ny - 1)]
                r1 = frames[f, min(max(i + by, 0), ny - 1)]
                r2 = frames[f, min(max(i + by + 1, 0), ny - 1)]
                r3 = frames[f, min(max(i + by + 2, 0), ny - 1)]
                for j in range(nx):  # rows first: same order of operations as the xp twin
                    line[pad + j] = (
                        np.float32(r0[j]) * w0
                        + np.float32(r1[j]) * w1
                        + np.float32(r2[j]) * w2
                        + np.float32(r3[j]) * w3
                    )
                for j in range(pad):  # edge values beyond the frame ("nearest")
                    line[j] = line[pad]
                    line[pad + nx + j] = line[pad + nx - 1]
                x0 = pad + bx - 1
                for j in range(nx):
                    out[f, i, j] = (
                        line[x0 + j] * v0
                        + line[x0 + j + 1] * v1
                        + line[x0 + j + 2] * v2
                        + line[x0 + j + 3] * v3
                    )

    return kernel


def shift_frames(
    block: Any, shifts: np.ndarray, xp: Any, *, interpolation: str, use_numba: bool = True
) -> Any:
    """Correct each frame: ``out[f](y, x) = block[f](y + dy[f], x + dx[f])``, float32.

    ``cubic`` and ``linear`` read samples beyond the frame edge as the edge value ("nearest");
    ``fourier`` shifts periodically. Pixels whose source lies outside the frame are left to
    :func:`fill_border`. numpy blocks go through a numba kernel (unless `use_numba` is False),
    other namespaces through the equivalent array expression.
    """
    shifts = np.asarray(shifts, dtype=np.float64).reshape(-1, 2)
    if interpolation == "fourier":
        x = xp.asarray(block, dtype=xp.float32)
        fft = fft_module(xp)
        kwargs = _fft_kwargs(xp)
        ny, nx = x.shape[1:]
        ky = np.fft.fftfreq(ny)[None, :, None]
        kx = np.fft.rfftfreq(nx)[None, None, :]
        ramp_y = np.exp(2j * np.pi * ky * shifts[:, 0, None, None]).astype(np.complex64)
        ramp_x = np.exp(2j * np.pi * kx * shifts[:, 1, None, None]).astype(np.complex64)
        spec = fft.rfft2(x, **kwargs)
        spec *= xp.asarray(ramp_y)
        spec *= xp.asarray(ramp_x)
        return fft.irfft2(spec, s=(ny, nx), **kwargs).astype(xp.float32, copy=False)
    base, weights = interpolation_taps(shifts, interpolation)
    if xp is np and use_numba:  # the CPU fast path: numba, parallel over frames
        native = np.dtype(block.dtype) in (np.dtype(np.uint16), np.dtype(np.float32))
        frames = np.ascontiguousarray(block, dtype=None if native else np.float32)
        out = np.empty(frames.shape, dtype=np.float32)
        if frames.shape[0]:  # two compiled signatures: uint16 (raw data) and float32
            args = (frames, base, weights, out)
            in_threads(_shift_kernel(), args, frames.shape[0], "napari-calcium-shift")
        return out
    return _shift_frames_xp(xp.asarray(block, dtype=xp.float32), base, weights, xp)


def _valid_range(shift: float, length: int) -> tuple[int, int]:
    """Output indices ``[lo, hi)`` whose source ``i + shift`` lies within ``[0, length - 1]``."""
    tol = 1e-6
    lo = max(0, math.ceil(-shift - tol))
    hi = min(length, math.floor(length - 1 - shift + tol) + 1)
    return lo, max(lo, hi)


def valid_box(shifts: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the region whose source lies inside the frame for every shift."""
    box = [0, shape[0], 0, shape[1]]
    for row in np.asarray(shifts, dtype=np.float64).reshape(-1, 2):
        for axis in (0, 1):
            lo, hi = _valid_range(float(row[axis]), shape[axis])
            box[2 * axis], box[2 * axis + 1] = max(box[2 * axis], lo), min(box[2 * axis + 1], hi)
    return box[0], max(box[0], box[1]), box[2], max(box[2], box[3])


def fill_border(frames: Any, shifts: np.ndarray, border: str) -> Any:
    """Fill pixels whose source lay outside the frame: NaN, 0 or the nearest valid pixel."""
    if border == "crop":
        return frames
    ny, nx = frames.shape[1:]
    for f in range(frames.shape[0]):
        y0, y1 = _valid_range(float(shifts[f, 0]), ny)
        x0, x1 = _valid_range(float(shifts[f, 1]), nx)
        frame, edge = frames[f], border == "edge"
        if edge and (y1 <= y0 or x1 <= x0):
            continue
        value = float("nan") if border == "nan" else 0.0
        frame[:y0] = frame[y0] if edge else value
        frame[y1:] = frame[y1 - 1] if edge else value
        frame[:, :x0] = frame[:, x0 : x0 + 1] if edge else value
        frame[:, x1:] = frame[:, x1 - 1 : x1] if edge else value
    return frames


def correct_block(block, shifts, *, interpolation, border, dtype, box, xp=None) -> Any:
    xp = array_module(block) if xp is None else xp
    out = shift_frames(block, shifts, xp, interpolation=interpolation)
    out = fill_border(out, shifts, border)
    if border == "crop":
        out = out[:, box[0] : box[1], box[2] : box[3]]
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        out = xp.clip(xp.rint(out), info.min, info.max)
    return out.astype(dtype, copy=False)


def _map_frames(block, *, correct, per_frame, block_info=None, **options) -> Any:
    """``map_blocks`` function of :func:`correct_frames`: the block's slice of `per_frame`."""
    start, stop = block_info[0]["array-location"][0]
    return correct(block, per_frame[start:stop], **options)


def correct_frames(
    movie: Any,
    per_frame: np.ndarray,
    correct: Callable[..., Any],
    *,
    box: tuple[int, int, int, int],
    dtype: np.dtype,
    block_frames: int | None,
    progress: Any,
    should_stop: Callable[[], bool] | None,
    desc: str,
    **options: Any,
) -> Any:
    """``correct(block, per_frame[frames], box=, dtype=, **options)`` over every frame block.

    The driver of :func:`apply_shifts` (rigid: `per_frame` the shifts, `correct`
    :func:`correct_block`) and of the piecewise correction (the patch shifts): lazily for a
    dask movie (``map_blocks`` over whole-frame chunks, each given its slice of `per_frame`),
    else block by block into one output on the movie's array module, shape
    ``(frames, box[1] - box[0], box[3] - box[2])``.
    """
    options = {**options, "dtype": dtype, "box": box}
    xp = array_module(movie)
    size = (box[1] - box[0], box[3] - box[2])
    if is_dask_array(movie):
        whole = movie.rechunk({1: -1, 2: -1})
        return whole.map_blocks(
            functools.partial(_map_frames, correct=correct, per_frame=per_frame, **options),
            dtype=dtype,
            chunks=(whole.chunks[0], (size[0],), (size[1],)),
            meta=xp.empty((0, 0, 0), dtype=dtype),
        )
    out = xp.empty((int(movie.shape[0]), *size), dtype=dtype)
    blocks = iter_frame_blocks(
        movie, block_frames=block_frames, progress=progress, should_stop=should_stop, desc=desc
    )
    for block, array in blocks:
        out[block.frames] = correct(array, per_frame[block.frames], xp=xp, **options)
    return out

"""Applying rigid shifts to a movie, and referring shifts to the recording's median position.

The last two pieces of :func:`~napari_calcium.core.movie.motion.rigid.motion_correct` (which re-exports
both): :func:`apply_shifts` samples ``corrected[t, y, x] = movie[t, y + dy, x + dx]`` block by
block (lazily for dask input), and :func:`recentre_shifts` moves shifts measured against a built
template to the median position. See :mod:`napari_calcium.core.movie.motion.rigid` for the sign
convention.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ....errors import ParameterError, ShapeError
from ..._backend import array_module, is_dask_array, to_host
from ...chunking import iter_frame_blocks
from . import _machinery as _k

__all__ = ["apply_shifts", "recentre_shifts"]


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
    interpolation = _choice(interpolation, "interpolation", _k.INTERPOLATIONS)
    if not len(shifts):
        return shifts, template
    shape = tuple(int(s) for s in np.shape(template))
    limit = np.asarray(_k.max_shift_pair(max_shift_px, shape[-2:]), dtype=np.float64)
    median = np.median(shifts, axis=0)
    shifts = np.clip(shifts - median, -limit, limit)
    template = _k.correct_block(
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
    interpolation = _choice(interpolation, "interpolation", _k.INTERPOLATIONS)
    border = _choice(border, "border", _k.BORDERS)
    out_dtype = _check_dtype(dtype, border)
    ny, nx = int(movie.shape[1]), int(movie.shape[2])
    box = _k.valid_box(shifts, (ny, nx)) if border == "crop" else (0, ny, 0, nx)
    if border == "crop" and (box[1] <= box[0] or box[3] <= box[2]):
        raise ParameterError(
            "border='crop' leaves no pixel valid in every frame (the shifts span the whole frame); "
            "use border='nan'"
        )
    options = {"interpolation": interpolation, "border": border, "dtype": out_dtype, "box": box}
    if is_dask_array(movie):
        import functools

        whole = movie.rechunk({1: -1, 2: -1})
        xp = array_module(movie)
        out_chunks = (whole.chunks[0], (box[1] - box[0],), (box[3] - box[2],))
        return whole.map_blocks(
            functools.partial(_k.dask_block, shifts=shifts, **options),
            dtype=out_dtype,
            chunks=out_chunks,
            meta=xp.empty((0, 0, 0), dtype=out_dtype),
        )
    xp = array_module(movie)
    out = xp.empty((int(movie.shape[0]), box[1] - box[0], box[3] - box[2]), dtype=out_dtype)
    blocks = iter_frame_blocks(
        movie,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc="motion correction: applying shifts",
    )
    for block, array in blocks:
        out[block.frames] = _k.correct_block(array, shifts[block.frames], xp=xp, **options)
    return out

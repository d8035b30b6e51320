"""Reshaping a movie: temporal and spatial binning, cropping.

Binning walks the movie in frame blocks (numpy, memmap, cupy, h5py-like input: an eager result on
the movie's array module) or, for a dask movie, returns a lazy dask array built from the same
block function. Cropping is slicing: it returns a view (numpy, memmap) or a lazy dask array and
the crop's coordinates, for the output's metadata.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ...errors import OperationCancelled, ParameterError, ShapeError
from .._backend import array_module, is_dask_array
from ..chunking import auto_block_frames, iter_frame_blocks

__all__ = ["BIN_METHODS", "Cropped", "bin_frames", "bin_pixels", "crop"]

#: Reductions accepted by :func:`bin_frames` and :func:`bin_pixels`.
BIN_METHODS = ("mean", "sum", "max", "min")

Progress = Callable[..., Any] | bool | None
StopHook = Callable[[], bool] | None


def _factor(value: Any, name: str) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise ParameterError(f"{name} must be an integer >= 1, got {value!r}") from None
    if number < 1 or isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer >= 1, got {value!r}")
    return int(number)


def _movie(movie: Any, min_ndim: int) -> Any:
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        movie = np.asarray(movie)
    if len(movie.shape) < min_ndim:
        raise ShapeError(
            f"movie has shape {tuple(movie.shape)}; expected at least {min_ndim} dimensions with "
            "frames first, (frames, y, x) or (frames, planes, y, x)"
        )
    return movie


def _out_dtype(method: str, in_dtype: Any, dtype: Any) -> np.dtype:
    if method not in BIN_METHODS:
        raise ParameterError(f"method must be one of {BIN_METHODS}, got {method!r}")
    if dtype is not None:
        return np.dtype(dtype)
    if method in ("mean", "sum"):
        return np.dtype(np.float32)
    try:
        return np.dtype(in_dtype)
    except TypeError:  # an array-API dtype object, e.g. array_api_strict.uint16
        return np.dtype(str(in_dtype).rsplit(".", 1)[-1])


def _reduce(block: Any, axes: tuple[int, ...], method: str, dtype: np.dtype) -> Any:
    """Reduce `axes` of `block` with `method`; sums and means in float64, then `dtype`."""
    xp = array_module(block)
    out_dtype = getattr(xp, dtype.name) if xp is not np else dtype
    if method == "max":
        return xp.astype(xp.max(block, axis=axes), out_dtype)
    if method == "min":
        return xp.astype(xp.min(block, axis=axes), out_dtype)
    total = xp.sum(block, axis=axes, dtype=xp.float64)
    if method == "mean":
        n = 1
        for a in axes:
            n *= int(block.shape[a])
        total = total / n
    return xp.astype(total, out_dtype)


def _binned(
    movie: Any,
    out_shape: tuple[int, ...],
    dtype: np.dtype,
    block_fn: Callable[[Any], Any],
    *,
    frames_per_out: int,
    n_in: int,
    block_frames: int | None,
    progress: Progress,
    should_stop: StopHook,
    desc: str,
) -> Any:
    """Apply `block_fn` to blocks of whole bins (multiples of `frames_per_out` input frames).

    Only the first `n_in` frames are used; `block_fn` gets whole frames (the dask movie is
    rechunked to whole frames and blocks of whole bins).
    """
    per = frames_per_out
    bf = block_frames or auto_block_frames(movie)
    bf = max(per, (bf // per) * per)
    if is_dask_array(movie):
        import dask.array as da  # dask is imported already: the movie is a dask array

        src = movie[:n_in, ...].rechunk({0: bf, **{a: -1 for a in range(1, movie.ndim)}})
        meta = array_module(src._meta).empty((0,) * len(out_shape), dtype=dtype)
        chunks = (tuple(c // per for c in src.chunks[0]), *((s,) for s in out_shape[1:]))
        return da.map_blocks(block_fn, src, chunks=chunks, dtype=dtype, meta=meta)
    out = None
    blocks = iter_frame_blocks(
        movie, block_frames=bf, progress=progress, should_stop=should_stop, desc=desc
    )
    for block, arr in blocks:
        keep = min(block.stop, n_in) - block.start  # the tail that fills no bin is dropped
        if keep <= 0:
            continue
        res = block_fn(arr[:keep, ...] if keep < block.n_frames else arr)
        if out is None:
            out = array_module(res).empty(out_shape, dtype=res.dtype)
        out[block.start // per : block.start // per + int(res.shape[0]), ...] = res
    return out


def bin_frames(
    movie: Any,
    factor: int,
    *,
    method: str = "mean",
    dtype: Any = None,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> Any:
    """Temporal binning: reduce each run of `factor` consecutive frames to one frame.

    Parameters
    ----------
    movie : array_like, shape (frames, ...)
        numpy, memmap, dask, cupy or h5py-like movie.
    factor : int
        Frames per bin (>= 1). The frame rate of the result is ``frame_rate_hz / factor``.
    method : {"mean", "sum", "max", "min"}
        Reduction over each bin. Means and sums are accumulated in float64.
    dtype : numpy dtype-like, optional
        Output dtype; default float32 for ``mean``/``sum`` (a sum of up to 256 uint16 frames is
        exact in float32), the movie's dtype for ``max``/``min``.
    block_frames : int, optional
        Input frames per block; rounded down to a multiple of `factor` (at least `factor`).
    progress : callable or bool, optional
        tqdm-like factory (eager inputs only; see
        :func:`~napari_calcium.core.chunking.iter_frame_blocks`).
    should_stop : callable, optional
        Polled before each block (eager inputs only).

    Returns
    -------
    array, shape (frames // factor, ...)
        The binned movie; the last ``frames % factor`` frames, which do not fill a bin, are
        dropped. Lazy dask for dask input, otherwise on the movie's array module.

    Notes
    -----
    Output frame ``k`` is ``reduce(movie[k * factor : (k + 1) * factor])``, e.g. its mean. Unlike
    CaImAn's ``resize`` (interpolation) this is an exact block reduction.

    Examples
    --------
    >>> import numpy as np
    >>> bin_frames(np.arange(5.0).reshape(5, 1, 1), 2)[:, 0, 0].tolist()
    [0.5, 2.5]
    """
    movie = _movie(movie, 2)
    factor = _factor(factor, "factor")
    out_dtype = _out_dtype(method, movie.dtype, dtype)
    n_out = int(movie.shape[0]) // factor
    if n_out < 1:
        raise ShapeError(f"the movie has {movie.shape[0]} frames, fewer than factor={factor}")
    space = tuple(int(s) for s in movie.shape[1:])

    def block_fn(arr: Any) -> Any:
        xp = array_module(arr)
        n = int(arr.shape[0]) // factor
        return _reduce(xp.reshape(arr, (n, factor, *space)), (1,), method, out_dtype)

    return _binned(
        movie,
        (n_out, *space),
        out_dtype,
        block_fn,
        frames_per_out=factor,
        n_in=n_out * factor,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc=f"bin frames x{factor}",
    )


def bin_pixels(
    movie: Any,
    factor: int | tuple[int, int],
    *,
    method: str = "mean",
    dtype: Any = None,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> Any:
    """Spatial binning: reduce each ``fy × fx`` tile of pixels of every frame to one pixel.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x) or (frames, planes, y, x)
        numpy, memmap, dask, cupy or h5py-like movie; the last two axes are binned.
    factor : int or (int, int)
        Pixels per bin along y and x (one int: the same for both). The pixel size of the result
        is ``pixel_size_um * factor``.
    method, dtype, block_frames, progress, should_stop
        As in :func:`bin_frames`.

    Returns
    -------
    array, shape (frames, ..., y // fy, x // fx)
        Rows and columns that do not fill a bin (at the bottom and right) are dropped. Lazy dask
        for dask input, otherwise on the movie's array module.

    Notes
    -----
    ``out[t, i, j] = reduce(movie[t, i*fy:(i+1)*fy, j*fx:(j+1)*fx])``.

    Examples
    --------
    >>> import numpy as np
    >>> bin_pixels(np.arange(16.0).reshape(1, 4, 4), 2, method="sum")[0].tolist()
    [[10.0, 18.0], [42.0, 50.0]]
    """
    movie = _movie(movie, 3)
    fy, fx = (factor, factor) if not isinstance(factor, tuple | list) else tuple(factor)
    fy, fx = _factor(fy, "factor (y)"), _factor(fx, "factor (x)")
    out_dtype = _out_dtype(method, movie.dtype, dtype)
    *lead, ny, nx = (int(s) for s in movie.shape[1:])
    oy, ox = ny // fy, nx // fx
    if oy < 1 or ox < 1:
        raise ShapeError(f"frames of {ny} x {nx} px are smaller than one bin of {fy} x {fx} px")

    def block_fn(arr: Any) -> Any:
        xp = array_module(arr)
        if (oy * fy, ox * fx) != (ny, nx):  # drop the rows/columns that fill no bin
            arr = arr[..., : oy * fy, : ox * fx]
        tiles = xp.reshape(arr, (int(arr.shape[0]), *lead, oy, fy, ox, fx))
        return _reduce(tiles, (-3, -1), method, out_dtype)

    n = int(movie.shape[0])
    return _binned(
        movie,
        (n, *lead, oy, ox),
        out_dtype,
        block_fn,
        frames_per_out=1,
        n_in=n,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc=f"bin pixels {fy}x{fx}",
    )


class Cropped(NamedTuple):
    """Result of :func:`crop`: the cropped movie and where it came from.

    Coordinates are half-open ``[start, stop)`` ranges in pixels / frames of the source movie.
    """

    movie: Any
    """The cropped movie: a view (numpy, memmap), a lazy dask array, or the sliced object."""
    offset_yx: tuple[int, int]
    """``(y0, x0)``: source coordinates of the cropped movie's pixel (0, 0)."""
    frames: tuple[int, int]
    """``(t0, t1)``: the source frames kept."""
    y: tuple[int, int]
    """``(y0, y1)``: the source rows kept."""
    x: tuple[int, int]
    """``(x0, x1)``: the source columns kept."""
    source_shape: tuple[int, ...]
    """Shape of the source movie."""

    @property
    def record(self) -> dict[str, Any]:
        """JSON-ready description for ``metadata["napari_calcium"]["crop"]``."""
        return {
            "y": list(self.y),
            "x": list(self.x),
            "frames": list(self.frames),
            "offset_yx": list(self.offset_yx),
            "source_shape": list(self.source_shape),
        }


def _range(value: Any, size: int, name: str) -> tuple[int, int]:
    if value is None:
        return 0, size
    try:
        start, stop = value
        start = 0 if start is None else operator.index(start)
        stop = size if stop is None else operator.index(stop)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{name} must be a (start, stop) pair of ints, got {value!r}"
        ) from None
    start = start + size if start < 0 else start
    stop = stop + size if stop < 0 else stop
    if not 0 <= start < stop <= size:
        raise ParameterError(
            f"{name}={value!r} is not a non-empty range inside [0, {size}); give (start, stop) "
            "with start < stop (negative values count from the end)"
        )
    return int(start), int(stop)


def crop(
    movie: Any,
    *,
    y: tuple[int, int] | None = None,
    x: tuple[int, int] | None = None,
    frames: tuple[int, int] | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> Cropped:
    """Crop a movie in space and time and record the coordinates.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x) or (frames, planes, y, x)
        numpy, memmap, dask, cupy or h5py-like movie.
    y, x : (int, int), optional
        Half-open ranges of rows and columns ``(start, stop)`` to keep; None keeps all, a None
        end means the edge, negative values count from the end (as in Python slicing).
    frames : (int, int), optional
        Half-open range of frames to keep.
    progress, should_stop : optional
        Accepted like every movie-level function's (the napari worker passes them); slicing
        reads nothing, so there is no progress to show, and `should_stop` is checked once.

    Returns
    -------
    Cropped
        ``movie`` (a view or lazy array: nothing is read or copied), ``offset_yx``, ``frames``,
        ``y``, ``x`` (normalised, non-negative) and ``source_shape``; ``.record`` gives them as
        a dict for the output's metadata.

    Raises
    ------
    ParameterError
        For a range that is empty or outside the movie.

    Examples
    --------
    >>> import numpy as np
    >>> c = crop(np.zeros((10, 6, 8)), y=(1, 5), x=(2, -1), frames=(0, 4))
    >>> c.movie.shape, c.offset_yx, c.x
    ((4, 4, 5), (1, 2), (2, 7))
    """
    movie = _movie(movie, 3)
    if should_stop is not None and should_stop():
        raise OperationCancelled("crop cancelled before it started")
    shape = tuple(int(s) for s in movie.shape)
    t0, t1 = _range(frames, shape[0], "frames")
    y0, y1 = _range(y, shape[-2], "y")
    x0, x1 = _range(x, shape[-1], "x")
    out = movie[t0:t1, ..., y0:y1, x0:x1]
    return Cropped(out, (y0, x0), (t0, t1), (y0, y1), (x0, x1), shape)

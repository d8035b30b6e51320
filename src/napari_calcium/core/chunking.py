"""Frame-block iteration over numpy, memmap, dask and device arrays.

Every movie-level function (filters, projections, extraction) walks the movie in blocks of whole
frames, so a recording larger than memory is processed a block at a time. Filters that look at
neighbouring frames read each block with ``overlap`` extra frames on both sides and keep only the
block's own *core* frames, so the blockwise result equals the whole-array result exactly.

Movies are ``(frames, y, x)`` or ``(frames, planes, y, x)``; only the first axis is blocked.

Long loops report progress to any tqdm-like factory (``progress=``; the napari glue passes
``napari.utils.progress``) and poll ``should_stop=`` before each block, raising
:class:`~napari_calcium.errors.OperationCancelled` when it returns True.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OperationCancelled, ParameterError, ShapeError
from ._backend import array_module, is_cupy_array, is_dask_array, to_host

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "FrameBlock",
    "apply_blockwise",
    "auto_block_frames",
    "check_real",
    "frame_blocks",
    "iter_frame_blocks",
    "track_blocks",
]

#: Memory budget of one block when ``block_frames=None``: 64 MiB of float32.
DEFAULT_BLOCK_BYTES = 64 * 2**20
# A dask chunk larger than the budget is still read whole (recomputing it per block would cost
# more) as long as it stays below this many budgets.
_MAX_CHUNK_BUDGETS = 8

ProgressFactory = Callable[..., Any]


@dataclass(frozen=True)
class FrameBlock:
    """One block of frames: its own frames ``[start, stop)`` and the range actually read.

    Attributes
    ----------
    start, stop : int
        Frames that belong to this block (its *core*); the cores of all blocks tile the movie.
    read_start, read_stop : int
        Frames read for this block: the core extended by ``overlap`` frames on each side, clipped
        to the movie.
    """

    start: int
    stop: int
    read_start: int
    read_stop: int

    @property
    def core(self) -> slice:
        """Slice of the *read* block that holds this block's own frames (trims the overlap)."""
        return slice(self.start - self.read_start, self.stop - self.read_start)

    @property
    def frames(self) -> slice:
        """Slice of the *movie* that this block's core covers, ``slice(start, stop)``."""
        return slice(self.start, self.stop)

    @property
    def read_frames(self) -> slice:
        """Slice of the *movie* that is read, ``slice(read_start, read_stop)``."""
        return slice(self.read_start, self.read_stop)

    @property
    def n_frames(self) -> int:
        """Number of core frames."""
        return self.stop - self.start

    @property
    def n_read(self) -> int:
        """Number of frames read (core plus overlap)."""
        return self.read_stop - self.read_start


def _as_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {number}")
    return number


def frame_blocks(n_frames: int, *, block_frames: int, overlap: int = 0) -> list[FrameBlock]:
    """Split ``range(n_frames)`` into consecutive blocks, each read with `overlap` extra frames.

    Parameters
    ----------
    n_frames : int
        Number of frames in the movie, >= 0 (0 gives no blocks).
    block_frames : int
        Core frames per block, >= 1 (the last block may be shorter).
    overlap : int, optional
        Extra frames read on each side of a block, >= 0; clipped at the movie's ends. It may be
        larger than `block_frames`.

    Returns
    -------
    list of FrameBlock
        Blocks whose cores tile ``[0, n_frames)`` without gaps or overlap, in order.

    Raises
    ------
    ParameterError
        If an argument is not an integer in range; the message names it.

    Examples
    --------
    >>> [(b.start, b.stop, b.read_start, b.read_stop) for b in frame_blocks(10, block_frames=4,
    ...                                                                     overlap=1)]
    [(0, 4, 0, 5), (4, 8, 3, 9), (8, 10, 7, 10)]
    """
    n_frames = _as_int(n_frames, "n_frames", 0)
    block_frames = _as_int(block_frames, "block_frames", 1)
    overlap = _as_int(overlap, "overlap", 0)
    blocks = []
    for start in range(0, n_frames, block_frames):
        stop = min(start + block_frames, n_frames)
        blocks.append(
            FrameBlock(start, stop, max(0, start - overlap), min(n_frames, stop + overlap))
        )
    return blocks


def auto_block_frames(movie: Any, *, budget_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    """Pick a number of frames per block from a memory budget.

    Parameters
    ----------
    movie : array_like, shape (frames, ...)
        The movie (only its shape, and for dask its chunks, are used).
    budget_bytes : int, optional
        Bytes one block may take as float32 (default 64 MiB), whatever the movie's dtype, because
        most functions compute in float32.

    Returns
    -------
    int
        At least 1 and at most ``max(n_frames, 1)``. For a dask movie the block is a whole number
        of dask chunks along the frame axis (so no chunk is computed twice), or one chunk when a
        chunk alone exceeds the budget but not eight budgets.
    """
    budget_bytes = _as_int(budget_bytes, "budget_bytes", 1)
    shape = tuple(int(s) for s in movie.shape)
    n_frames = shape[0]
    frame_bytes = max(1, math.prod(shape[1:]) * 4)
    frames = max(1, budget_bytes // frame_bytes)
    chunks = getattr(movie, "chunks", None) if is_dask_array(movie) else None
    if chunks and chunks[0] and n_frames > 0:
        chunk = max(1, int(chunks[0][0]))
        if chunk <= frames:
            frames = (frames // chunk) * chunk
        elif chunk * frame_bytes <= _MAX_CHUNK_BUDGETS * budget_bytes:
            frames = chunk
    return max(1, min(frames, max(n_frames, 1)))


def _check_movie(movie: Any) -> Any:
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        movie = np.asarray(movie)
    shape = tuple(movie.shape)
    if len(shape) < 2:
        raise ShapeError(
            f"movie has shape {shape}; expected frames first with at least 2 dimensions, "
            "(frames, y, x) or (frames, planes, y, x)"
        )
    check_real(movie)
    return movie


def check_real(movie: Any, name: str = "movie") -> None:
    """Refuse a movie whose values are not real numbers (complex, object, strings, ...).

    Every compute path works on real-valued intensities; a complex movie would otherwise fail
    deep inside a numba kernel or silently drop its imaginary part.

    Raises
    ------
    ShapeError
        For a dtype that is not bool, integer or float; the message names `name` and its dtype
        (the filters' own dtype check uses the same type).
    """
    try:
        kind = np.dtype(movie.dtype).kind
    except (TypeError, AttributeError):  # array-API dtypes that numpy does not name
        return
    if kind not in "biuf":
        raise ShapeError(
            f"{name} has dtype {movie.dtype}; napari-calcium works on real-valued intensities "
            f"(bool, integer or float): pass np.abs({name}) or {name}.real for complex data"
        )


def _read_block(movie: Any, start: int, stop: int) -> Any:
    """``movie[start:stop]`` as an in-memory array: numpy, or the movie's device namespace."""
    block = movie[start:stop, ...]
    if is_dask_array(block):
        block = block.compute()
    if isinstance(block, np.memmap):
        return np.array(block)  # read just these frames into memory; the file stays unmapped
    if isinstance(block, np.ndarray) or is_cupy_array(block):
        return block
    if hasattr(block, "__array_namespace__"):  # another array-API array (e.g. array_api_strict)
        return block
    return to_host(block)  # h5py / zarr-like datasets, lists


class _Progress:
    """Adapter around a tqdm-like object (or nothing) that is always closed exactly once."""

    def __init__(self, progress: Any, total: int, desc: str | None) -> None:
        self._bar = None
        self._exit = None
        if progress is None or progress is False:
            return
        if progress is True:
            import tqdm  # lazily: only when progress bars are asked for

            progress = tqdm.tqdm
        if not callable(progress):
            raise ParameterError(
                "progress must be None, True or a tqdm-like factory called as "
                f"progress(total=..., desc=...), got {progress!r}"
            )
        obj = progress(total=total, desc=desc)
        enter = getattr(obj, "__enter__", None)
        exit_ = getattr(obj, "__exit__", None)
        if enter is not None and exit_ is not None:
            entered = enter()
            self._bar = entered if entered is not None else obj
            self._exit = exit_
        else:
            self._bar = obj

    def update(self, n: int) -> None:
        if self._bar is not None and n:
            self._bar.update(n)

    def close(self, exc_info: tuple = (None, None, None)) -> None:
        bar, exit_ = self._bar, self._exit
        self._bar = self._exit = None
        if exit_ is not None:
            exit_(*exc_info)
        elif bar is not None:
            close = getattr(bar, "close", None)
            if close is not None:
                close()


def iter_frame_blocks(
    movie: Any,
    *,
    block_frames: int | None = None,
    overlap: int = 0,
    progress: ProgressFactory | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    desc: str | None = None,
) -> Iterator[tuple[FrameBlock, Any]]:
    """Iterate over a movie in blocks of frames, reading only one block at a time.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x) or (frames, planes, y, x)
        numpy array, ``np.memmap`` (only each block's frames are read), dask array (only each
        block's slice is computed), cupy array, another array-API array, or any object with
        ``.shape``, ``.dtype`` and ``__getitem__`` (h5py/zarr-like; read with ``movie[a:b, ...]``).
    block_frames : int, optional
        Core frames per block; None picks it from a 64 MiB float32 budget, aligned to dask chunks
        (see :func:`auto_block_frames`).
    overlap : int, optional
        Extra frames read on each side of a block (clipped at the ends), for temporal filters.
    progress : callable, True or None, optional
        tqdm-like factory, called as ``progress(total=n_frames, desc=desc)``; the object it returns
        gets ``.update(n_core_frames)`` after each block has been consumed and is always closed
        (``.close()``, or ``__exit__`` when it is a context manager), also when the loop stops
        early or raises. True means ``tqdm.tqdm``; None shows nothing.
    should_stop : callable, optional
        Called with no arguments before each block is read; returning True raises
        :class:`~napari_calcium.errors.OperationCancelled`.
    desc : str, optional
        Label for the progress bar.

    Yields
    ------
    block : FrameBlock
        Which frames this is; ``block.core`` trims the overlap from the array.
    array : numpy.ndarray or cupy.ndarray, shape (block.n_read, ...)
        ``movie[block.read_start:block.read_stop]`` in memory, in the movie's dtype: numpy for
        numpy/memmap/dask-of-numpy/h5py-like input, cupy for cupy or dask-of-cupy input, and the
        movie's own namespace for other array-API arrays. Blocks of a numpy input are views of it:
        treat them as read-only.

    Raises
    ------
    ShapeError
        If the movie has fewer than 2 dimensions (raised at the call, before iterating).
    ParameterError
        If `block_frames`, `overlap` or `progress` is invalid (also at the call).
    OperationCancelled
        When `should_stop` returns True; the message says how many frames were done.

    Examples
    --------
    >>> import numpy as np
    >>> movie = np.arange(5 * 2 * 2).reshape(5, 2, 2)
    >>> for block, array in iter_frame_blocks(movie, block_frames=2, overlap=1):
    ...     print(block.start, block.stop, array.shape, array[block.core].shape)
    0 2 (3, 2, 2) (2, 2, 2)
    2 4 (4, 2, 2) (2, 2, 2)
    4 5 (2, 2, 2) (1, 2, 2)
    """
    movie = _check_movie(movie)
    if block_frames is None:
        block_frames = auto_block_frames(movie)
    blocks = frame_blocks(int(movie.shape[0]), block_frames=block_frames, overlap=overlap)
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise ParameterError(
            "progress must be None, True or a tqdm-like factory called as "
            f"progress(total=..., desc=...), got {progress!r}"
        )
    if should_stop is not None and not callable(should_stop):
        raise ParameterError(f"should_stop must be a callable or None, got {should_stop!r}")
    return _iter_blocks(movie, blocks, progress, should_stop, desc)


def track_blocks(
    blocks: list[FrameBlock],
    *,
    progress: ProgressFactory | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    desc: str | None = None,
) -> Iterator[FrameBlock]:
    """Progress and cancellation over frame blocks, for loops that produce frames themselves.

    :func:`iter_frame_blocks` reads an input movie block by block; a producer with no input
    (a simulator, a writer fed by a computation) walks :func:`frame_blocks` through this instead
    and gets the same progress and ``should_stop`` behaviour.

    Parameters
    ----------
    blocks : list of FrameBlock
        From :func:`frame_blocks`; the progress total is the last block's ``stop``.
    progress, should_stop, desc
        As in :func:`iter_frame_blocks`.

    Yields
    ------
    FrameBlock
        Each block, after ``should_stop`` said to go on; progress advances once the consumer
        asks for the next block.
    """
    n_frames = blocks[-1].stop if blocks else 0
    bar = _Progress(progress, n_frames, desc)
    done = 0
    try:
        for block in blocks:
            if should_stop is not None and should_stop():
                label = f" ({desc})" if desc else ""
                raise OperationCancelled(
                    f"operation cancelled{label} after {done} of {n_frames} frames"
                )
            yield block
            done += block.n_frames
            bar.update(block.n_frames)
    except GeneratorExit:  # the consumer stopped early (break, or an error in its loop body)
        bar.close()
        raise
    except BaseException as exc:  # cancelled, or the consumer failed: close the bar, re-raise
        bar.close((type(exc), exc, exc.__traceback__))
        raise
    else:
        bar.close()


def _iter_blocks(
    movie: Any,
    blocks: list[FrameBlock],
    progress: Any,
    should_stop: Callable[[], bool] | None,
    desc: str | None,
) -> Iterator[tuple[FrameBlock, Any]]:
    tracked = track_blocks(blocks, progress=progress, should_stop=should_stop, desc=desc)
    try:
        for block in tracked:
            try:
                array = _read_block(movie, block.read_start, block.read_stop)
            except Exception as exc:  # reading failed: the tracker closes its bar, re-raises
                tracked.throw(exc)
            yield block, array
    finally:
        tracked.close()  # the consumer stopped early: close the progress bar now


def _check_result(result: Any, block_array: Any, func: Callable) -> None:
    result_shape = tuple(getattr(result, "shape", ()))
    if result_shape != tuple(block_array.shape):
        name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
        raise ShapeError(
            f"func {name} returned shape {result_shape} for a block of shape "
            f"{tuple(block_array.shape)}; apply_blockwise needs the same shape (same number of "
            "frames, whole frames)"
        )


def _copy_into(out: Any, frames: slice, value: Any) -> None:
    """``out[frames] = value``, moving `value` between host and device when they differ."""
    out_xp = array_module(out) if not isinstance(out, np.ndarray) else np
    try:
        value_xp = array_module(value)
    except Exception:
        value_xp = np
    if value_xp is not out_xp:
        value = to_host(value)
        if out_xp is not np:
            value = out_xp.asarray(value)
    out[frames.start : frames.stop, ...] = value


def _dtype_name(dtype: Any) -> str:
    """'float32' for np.float32, numpy/cupy dtypes and array-API dtype objects alike."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype).rsplit(".", 1)[-1]


def _namespace_dtype(xp: Any, dtype: Any) -> Any:
    """`dtype` in the form `xp` accepts (numpy and cupy take numpy dtypes)."""
    dtype = np.dtype(dtype)
    if xp is np or getattr(xp, "__name__", "") == "cupy":
        return dtype
    return getattr(xp, dtype.name)


def apply_blockwise(
    movie: Any,
    func: Callable[[Any], Any],
    *,
    block_frames: int | None = None,
    overlap: int = 0,
    out: Any = None,
    dtype: Any = None,
    progress: ProgressFactory | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    desc: str | None = None,
) -> Any:
    """Apply ``func`` to a movie block by block, with `overlap` frames of context on each side.

    Parameters
    ----------
    movie : array_like, shape (frames, ...)
        numpy array, ``np.memmap``, cupy array, dask array or h5py/zarr-like object
        (see :func:`iter_frame_blocks`).
    func : callable
        ``func(block) -> array`` of the *same shape* as `block` (whole frames, in the movie's
        dtype, read with overlap). Only its core frames are kept, so a temporal filter whose reach
        is at most `overlap` frames gives exactly the whole-array result.
    block_frames : int, optional
        Core frames per block; None picks one from a memory budget.
    overlap : int, optional
        Extra frames read on each side of each block (clipped at the movie's ends).
    out : array, shape movie.shape, optional
        Preallocated output (numpy, ``np.memmap`` - flushed at the end - or cupy). Results are
        cast to its dtype and moved to its device if needed.
    dtype : numpy dtype-like, optional
        dtype of the allocated output (default float32); must agree with `out` when both given.
    progress, should_stop, desc
        See :func:`iter_frame_blocks`.

    Returns
    -------
    array, shape movie.shape
        `out`, filled; or a new array on the movie's array module. For a dask `movie` without
        `out` the result is lazy: ``dask.array.map_overlap(func, ...)`` with ``depth={0: overlap}``
        and ``boundary="none"`` on a movie rechunked to whole frames; `progress` and `should_stop`
        are not used then (dask's own progress tools, e.g. ``dask.diagnostics.ProgressBar``,
        apply when it is computed) and a wrong result shape raises at compute time.

    Raises
    ------
    ShapeError
        If the movie has fewer than 2 dimensions, `out` has the wrong shape, or `func` returns an
        array of another shape (the message names `func`).
    ParameterError
        If `dtype` disagrees with `out`, or block arguments are invalid.
    OperationCancelled
        When `should_stop` returns True (`out` then holds a partial result).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import uniform_filter1d
    >>> movie = np.random.default_rng(0).random((10, 3, 3))
    >>> smooth = lambda b: uniform_filter1d(b, size=5, axis=0)
    >>> result = apply_blockwise(movie, smooth, block_frames=3, overlap=2)
    >>> np.allclose(result, uniform_filter1d(movie, size=5, axis=0))
    True
    """
    if not callable(func):
        raise ParameterError(f"func must be callable, got {func!r}")
    movie = _check_movie(movie)
    if out is None and is_dask_array(movie):
        return _apply_dask(movie, func, overlap=overlap, dtype=dtype)

    if out is None:
        xp = array_module(movie)
        out = xp.empty(
            tuple(movie.shape),
            dtype=_namespace_dtype(xp, np.float32 if dtype is None else dtype),
        )
    else:
        if tuple(out.shape) != tuple(movie.shape):
            raise ShapeError(
                f"out has shape {tuple(out.shape)} but the movie has shape {tuple(movie.shape)}; "
                "they must match"
            )
        if dtype is not None and _dtype_name(dtype) != _dtype_name(out.dtype):
            raise ParameterError(
                f"dtype={np.dtype(dtype)} disagrees with out.dtype={out.dtype}; pass only one"
            )

    blocks = iter_frame_blocks(
        movie,
        block_frames=block_frames,
        overlap=overlap,
        progress=progress,
        should_stop=should_stop,
        desc=desc,
    )
    with contextlib.closing(blocks):
        for block, block_array in blocks:
            result = func(block_array)
            _check_result(result, block_array, func)
            _copy_into(out, block.frames, result[block.core.start : block.core.stop, ...])
    flush = getattr(out, "flush", None)
    if isinstance(out, np.memmap) and flush is not None:
        flush()
    return out


def _apply_dask(movie: Any, func: Callable, *, overlap: int, dtype: Any) -> Any:
    import dask.array as da  # a dask array exists, so dask is already imported

    overlap = _as_int(overlap, "overlap", 0)
    out_dtype = np.dtype(np.float32 if dtype is None else dtype)
    meta_xp = array_module(movie._meta)
    whole_frames = movie.rechunk({axis: -1 for axis in range(1, movie.ndim)})
    if overlap >= int(movie.shape[0]):  # the reach spans the movie: one chunk sees it all
        whole_frames, overlap = whole_frames.rechunk({0: -1}), 0

    def checked(block: Any) -> Any:
        result = func(block)
        _check_result(result, block, func)
        return result.astype(out_dtype, copy=False)

    return da.map_overlap(
        checked,
        whole_frames,
        depth={axis: (overlap if axis == 0 else 0) for axis in range(movie.ndim)},
        boundary="none",
        trim=True,
        dtype=out_dtype,
        meta=meta_xp.empty((0,) * movie.ndim, dtype=out_dtype),
    )

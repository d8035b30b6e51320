"""Detection's temporally binned movie under a memory budget: in RAM, or spilled to a file.

:func:`~napari_calcium.core.rois.detection.detect.detect_rois` works on a float32 copy of the movie
binned in time (up to ``max_binned_frames`` frames: 1 GiB for 1,000 frames of 512 × 512). When that
copy is larger than the memory budget (``binned_memory_mib``) it goes to a temporary raw file
instead, written and read back in frame blocks, so detection's memory stays bounded by the budget
and a few blocks whatever the movie. Every operation on the binned movie (its mean, the in-place
spatial band-pass, the correlation / PNR pass, the per-ROI windows) gives bit for bit the same
values in RAM and on disk.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..._backend import is_dask_array, to_host
from ...chunking import auto_block_frames, frame_blocks, track_blocks
from ...movie.reshape import bin_frames

__all__ = [
    "SpilledMovie",
    "bandpass_spilled",
    "binned_blocks",
    "build_binned",
    "fill_missing",
]

MiB = 2**20


class SpilledMovie:
    """A C-order float32 ``(frames, y, x)`` movie in a temporary raw file.

    Reading a range of frames (``movie[a:b]``) goes through ``np.fromfile`` and any other index
    through a read-only memory map that is closed again at once, so no pixel stays mapped (and
    counted in the process's resident memory) between calls.

    Parameters
    ----------
    shape : (int, int, int)
        ``(frames, y, x)``.
    folder : str or os.PathLike, optional
        Where the temporary folder goes (default: :func:`tempfile.gettempdir`, i.e. ``TMPDIR``).

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype
        float32.
    path : pathlib.Path
        The raw file; removed by :meth:`close`.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, shape: tuple[int, int, int], folder: str | os.PathLike | None = None):
        self.shape = tuple(int(s) for s in shape)
        self.ndim = len(self.shape)
        self._frame_items = math.prod(self.shape[1:])
        self._dir = Path(tempfile.mkdtemp(prefix="napari-calcium-binned-", dir=folder))
        self.path = self._dir / "binned.f32"
        with open(self.path, "wb") as fh:
            fh.truncate(self.shape[0] * self._frame_items * self.dtype.itemsize)

    @property
    def nbytes(self) -> int:
        """Size of the movie in bytes."""
        return self.shape[0] * self._frame_items * self.dtype.itemsize

    def _frames(self, key: Any) -> tuple[int, int] | None:
        """``(start, stop)`` when `key` selects a contiguous range of whole frames."""
        if isinstance(key, tuple):
            if not (len(key) == 1 or (len(key) == 2 and key[1] is Ellipsis)):
                return None
            key = key[0]
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(self.shape[0])
            return start, max(start, stop)
        return None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` as a new float32 array, shape ``(stop - start, y, x)``."""
        count = (stop - start) * self._frame_items
        offset = start * self._frame_items * self.dtype.itemsize
        out = np.fromfile(self.path, dtype=self.dtype, count=count, offset=offset)
        return out.reshape(stop - start, *self.shape[1:])

    def write(self, start: int, frames: np.ndarray) -> None:
        """Store `frames` (float32, ``(n, y, x)``) as frames ``[start, start + n)``."""
        frames = np.ascontiguousarray(frames, dtype=self.dtype)
        with open(self.path, "r+b") as fh:
            fh.seek(start * self._frame_items * self.dtype.itemsize)
            frames.tofile(fh)

    def read_window(self, frames: slice, ys: slice, xs: slice) -> np.ndarray:
        """``movie[frames, ys, xs]`` (unit steps) read row block by row block with ``readinto``.

        Only the rows ``ys`` of each frame are read (one contiguous run per frame), and nothing
        is memory-mapped, so the pages read are never counted in this process's RSS.
        """
        t0, t1, _ = frames.indices(self.shape[0])
        y0, y1, _ = ys.indices(self.shape[1])
        x0, x1, _ = xs.indices(self.shape[2])
        t1, y1, x1 = max(t0, t1), max(y0, y1), max(x0, x1)
        out = np.empty((t1 - t0, y1 - y0, x1 - x0), self.dtype)
        rows = np.empty((y1 - y0, self.shape[2]), self.dtype)
        row_bytes = self.shape[2] * self.dtype.itemsize
        with open(self.path, "rb", buffering=0) as fh:
            for i, t in enumerate(range(t0, t1)):
                fh.seek((t * self.shape[1] + y0) * row_bytes)
                fh.readinto(rows)
                out[i] = rows[:, x0:x1]
        return out

    def _window(self, key: Any) -> tuple[slice, slice, slice] | None:
        """``(frames, ys, xs)`` when `key` is three unit-step slices (or two, or ``...``)."""
        if not isinstance(key, tuple):
            return None
        if len(key) == 2 and key[1] is Ellipsis:
            key = key[:1]
        key = key + (slice(None),) * (3 - len(key))
        if len(key) != 3 or not all(isinstance(k, slice) and k.step in (None, 1) for k in key):
            return None
        return key  # type: ignore[return-value]

    def __getitem__(self, key: Any) -> np.ndarray:
        frames = self._frames(key)
        if frames is not None:
            return self.read(*frames)
        window = self._window(key)
        if window is not None:
            return self.read_window(*window)
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", shape=self.shape)
        try:
            return np.array(mapped[key])
        finally:
            del mapped

    def close(self) -> None:
        """Remove the file and its folder (idempotent)."""
        shutil.rmtree(self._dir, ignore_errors=True)


def binned_blocks(
    movie: Any,
    factor: int,
    n_out: int,
    *,
    block_frames: int | None = None,
    progress: Any = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """The movie binned by `factor` in time (means), one block at a time.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask, cupy or h5py-like movie.
    factor : int
        Frames per bin.
    n_out : int
        Bins to produce (``frames // factor``).
    block_frames : int, optional
        Input frames per block (rounded down to a multiple of `factor`); default from the 64 MiB
        float32 block budget of :func:`~napari_calcium.core.chunking.auto_block_frames`.
    progress, should_stop : optional
        As in :func:`~napari_calcium.core.chunking.track_blocks`.

    Yields
    ------
    start : int
        Index of the block's first bin.
    block : numpy.ndarray, shape (n, y, x), float32
        ``bin_frames(movie, factor)[start:start + n]``, bit for bit.
    """
    per = auto_block_frames(movie) if block_frames is None else int(block_frames)
    per = max(factor, per // factor * factor)
    blocks = frame_blocks(n_out * factor, block_frames=per)
    for block in track_blocks(
        blocks, progress=progress, should_stop=should_stop, desc=f"bin frames x{factor}"
    ):
        binned = bin_frames(movie[block.start : block.stop], factor, method="mean")
        binned = binned.compute() if is_dask_array(binned) else binned
        yield block.start // factor, np.ascontiguousarray(to_host(binned), np.float32)


def build_binned(
    movie: Any,
    factor: int,
    *,
    budget_bytes: float | None,
    block_frames: int | None = None,
    progress: Any = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[np.ndarray | SpilledMovie, np.ndarray]:
    """The binned float32 movie (in RAM, or a :class:`SpilledMovie` over budget) and its mean.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        The movie to bin.
    factor : int
        Frames per bin; ``frames // factor`` bins (at least 1).
    budget_bytes : float or None
        Most bytes the binned movie may take in RAM (``4 * y * x`` per bin); a larger one is
        written to a temporary file. None: always in RAM.
    block_frames, progress, should_stop : optional
        As in :func:`binned_blocks`.

    Returns
    -------
    binned : numpy.ndarray or SpilledMovie, shape (frames // factor, y, x), float32
        Close a :class:`SpilledMovie` when done with it.
    mean : numpy.ndarray, shape (y, x), float32
        ``binned.mean(axis=0)``, bit for bit (float32 sums frame by frame, as numpy does).
    """
    n_out = int(movie.shape[0]) // factor
    shape = (n_out, *(int(s) for s in movie.shape[1:]))
    nbytes = 4 * math.prod(shape)
    spill = budget_bytes is not None and nbytes > budget_bytes
    binned: np.ndarray | SpilledMovie = (
        SpilledMovie(shape) if spill else np.empty(shape, np.float32)
    )
    total = np.zeros(shape[1:], np.float32)
    finite: np.ndarray | None = None  # bins with a value, per pixel (once a NaN was seen)
    try:
        hooks = {"block_frames": block_frames, "progress": progress, "should_stop": should_stop}
        for start, block in binned_blocks(movie, factor, n_out, **hooks):
            if spill:
                binned.write(start, block)
            else:
                binned[start : start + len(block)] = block
            good = np.isfinite(block)
            if finite is None and not good.all():
                finite = np.full(shape[1:], start, np.int64)  # the bins before were whole
            if finite is not None:
                finite += good.sum(axis=0)
                block = np.where(good, block, np.float32(0))
            for frame in block:  # numpy's axis-0 float32 reduction: one frame after another
                total += frame
        if finite is None:
            return binned, total / n_out
        mean = fill_missing(binned, total, finite, should_stop=should_stop)
    except BaseException:
        if isinstance(binned, SpilledMovie):
            binned.close()
        raise
    return binned, mean


def fill_missing(
    binned: np.ndarray | SpilledMovie,
    total: np.ndarray,
    finite: np.ndarray,
    *,
    step: int = 64,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Replace NaN / inf pixels of the binned movie by their pixel's mean; return the mean image.

    A motion-corrected movie with ``border="nan"`` has no data where frames were shifted in from
    outside the field of view. Such a pixel takes its mean over the bins where it has data, so
    it is flat there and seeds no ROI; a pixel with no data at all takes the median of the mean
    image. (As suite2p, which detects in the region valid in every frame, the border adds no
    activity.)

    Parameters
    ----------
    binned : numpy.ndarray or SpilledMovie, shape (bins, y, x), float32
        Changed in place.
    total : numpy.ndarray, shape (y, x), float32
        Sum over the bins of the finite values.
    finite : numpy.ndarray, shape (y, x), int
        Number of finite bins per pixel.
    step : int
        Bins per block.
    should_stop : callable, optional
        Polled between blocks.

    Returns
    -------
    numpy.ndarray, shape (y, x), float32
        The mean image over the finite bins (with the fill for pixels that have none).
    """
    have = finite > 0
    mean = np.zeros(total.shape, np.float32)
    mean[have] = total[have] / finite[have].astype(np.float32)
    if not have.all():
        mean[~have] = np.median(mean[have]) if have.any() else np.float32(0)
    for block in track_blocks(frame_blocks(binned.shape[0], block_frames=step),
                              should_stop=should_stop, desc="fill missing pixels"):  # fmt: skip
        if isinstance(binned, SpilledMovie):
            frames = binned.read(block.start, block.stop)
        else:
            frames = binned[block.start : block.stop]
        bad = ~np.isfinite(frames)
        if bad.any():
            np.copyto(frames, np.broadcast_to(mean, frames.shape), where=bad)
            if isinstance(binned, SpilledMovie):
                binned.write(block.start, frames)
    return mean


def bandpass_spilled(
    binned: SpilledMovie,
    bandpass: Callable[[np.ndarray], Any],
    *,
    step: int = 64,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Apply an in-place per-frame filter to a spilled movie, `step` frames at a time."""
    for block in track_blocks(frame_blocks(binned.shape[0], block_frames=step),
                              should_stop=should_stop, desc="band-pass"):  # fmt: skip
        frames = binned.read(block.start, block.stop)
        bandpass(frames)
        binned.write(block.start, frames)

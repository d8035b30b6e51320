"""Projections of a movie over time: mean, max, min, median, std and range images.

Every function here reads the movie once, in blocks of whole frames (:mod:`..chunking`), and keeps
only per-pixel accumulators, so a movie larger than memory works: numpy, ``np.memmap``, dask (each
block is computed in turn), h5py/zarr-like datasets, cupy (cupy in, cupy out) and other array-API
arrays. Images come back as ``(y, x)`` float32 on the movie's array module (numpy for dask).

Accumulators are float64 sums of deviations from the first frame, ``d = x - x[0]``: for integer
movies (uint16 ...) every product and sum is an exact integer below 2**53 (up to ~2 million
frames), so results do not depend on the block size at all (chunked == whole, bit for bit).
The temporal median cannot be streamed this way; :func:`project` says how it is computed. The
local correlation and peak-to-noise ratio images are in :mod:`.summary_images`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...errors import ParameterError, ShapeError
from .._backend import array_module, is_dask_array, to_host
from ..chunking import (
    DEFAULT_BLOCK_BYTES,
    frame_blocks,
    iter_frame_blocks,
    track_blocks,
)

__all__ = ["PROJECTIONS", "project", "projections"]

#: The projection kinds :func:`project` knows.
PROJECTIONS = ("mean", "max", "min", "median", "std", "range")

Progress = Callable[..., Any] | bool | None
StopHook = Callable[[], bool] | None
_SLAB_BYTES = 16 * 2**20  # most bytes of one float64 temporary of the std in projections()


def _f32(xp: Any, a: Any) -> Any:
    return xp.astype(a, xp.float32)


def _check_movie(movie: Any, ndim: tuple[int, ...] = (3,)) -> Any:
    if not hasattr(movie, "shape") or not hasattr(movie, "__getitem__"):
        movie = np.asarray(movie)
    shape = tuple(int(s) for s in movie.shape)
    if len(shape) not in ndim or shape[0] < 1:
        want = " or ".join(f"{n}-D" for n in ndim)
        raise ShapeError(
            f"movie has shape {shape}; expected a {want} movie with frames first and at least "
            "one frame, e.g. (frames, y, x); for a volume pass one plane, movie[:, plane]"
        )
    return movie


def projections(
    movie: Any,
    kinds: Sequence[str] = ("mean", "max", "min", "std", "range"),
    *,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> dict[str, Any]:
    """Several projections over time, from one pass over the movie (two with ``"median"``).

    Parameters
    ----------
    movie : array_like, shape (frames, ...)
        numpy, memmap, dask, cupy or h5py-like movie, any real dtype.
    kinds : sequence of str
        Any of :data:`PROJECTIONS`.
    block_frames : int, optional
        Frames per block (default: a 64 MiB float32 budget).
    progress : callable or bool, optional
        tqdm-like factory (see :func:`~napari_calcium.core.chunking.iter_frame_blocks`).
    should_stop : callable, optional
        Polled before each block; True raises :class:`~napari_calcium.errors.OperationCancelled`.

    Returns
    -------
    dict of str to array
        ``{kind: image}``, each ``movie.shape[1:]`` float32, in the order of `kinds`.

    Examples
    --------
    >>> import numpy as np
    >>> p = projections(np.arange(12).reshape(3, 2, 2), ["mean", "range"])
    >>> p["mean"].tolist(), p["range"].tolist()
    ([[4.0, 5.0], [6.0, 7.0]], [[8.0, 8.0], [8.0, 8.0]])
    """
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    unknown = [k for k in kinds if k not in PROJECTIONS]
    if unknown or not kinds:
        raise ParameterError(f"kinds must be some of {PROJECTIONS}, got {kinds!r}")
    movie = _check_movie(movie, ndim=(2, 3, 4))
    out: dict[str, Any] = {}
    want = set(kinds) - {"median"}
    if want:
        n, s, sq, mx, mn, ref = 0, None, None, None, None, None
        hooks = {"progress": progress, "should_stop": should_stop, "desc": "projections"}
        for _, arr in iter_frame_blocks(movie, block_frames=block_frames, **hooks):
            xp = array_module(arr)
            if n == 0:
                ref = xp.astype(arr[0, ...], xp.float64)
                zero = xp.zeros(ref.shape, dtype=xp.float64)
                s, sq, mx, mn = zero, zero, arr[0, ...], arr[0, ...]
            n += int(arr.shape[0])
            if want & {"mean", "std"}:
                s = s + xp.sum(arr, axis=0, dtype=xp.float64)
            if "std" in want:  # in slabs: float64 temporaries of <= _SLAB_BYTES, not 4x the block
                step = max(1, _SLAB_BYTES // max(1, 8 * math.prod(arr.shape[1:])))
                for i in range(0, nt := int(arr.shape[0]), step):
                    d = xp.astype(arr[i : min(i + step, nt), ...], xp.float64) - ref
                    sq = sq + xp.sum(d * d, axis=0)
            if want & {"max", "range"}:
                mx = xp.maximum(mx, xp.max(arr, axis=0))
            if want & {"min", "range"}:
                mn = xp.minimum(mn, xp.min(arr, axis=0))
        mean = s / n
        if "mean" in want:
            out["mean"] = _f32(xp, mean)
        if "std" in want:
            dm = mean - ref
            out["std"] = _f32(xp, xp.sqrt(xp.clip(sq / n - dm * dm, 0.0, None)))
        out.update({k: _f32(xp, v) for k, v in (("max", mx), ("min", mn)) if k in want})
        if "range" in want:
            out["range"] = _f32(xp, xp.astype(mx, xp.float64) - xp.astype(mn, xp.float64))
    if "median" in kinds:
        out["median"] = _median(movie, block_frames, progress, should_stop)
    return {k: out[k] for k in kinds}


def project(
    movie: Any,
    kind: str = "mean",
    *,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> Any:
    """Project a movie over time: mean, max, min, median, std or range image.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x) or (frames, planes, y, x)
        numpy, memmap, dask, cupy or h5py-like movie, any real dtype.
    kind : {"mean", "max", "min", "median", "std", "range"}
        ``std`` is the population standard deviation (``ddof=0``, as ``np.std``); ``range`` is
        ``max - min`` (``np.ptp``); ``median`` is the exact median (``np.median``: the mean of the
        two middle values for an even number of frames).
    block_frames, progress, should_stop
        See :func:`projections`.

    Returns
    -------
    image : array, shape movie.shape[1:], float32
        On the movie's array module (numpy for dask or memmap input).

    Notes
    -----
    Mean, max, min, std and range stream over frame blocks with float64 accumulators
    (``std = sqrt(Σd²/n - (Σd/n)²)`` with ``d = x - x[0]``, which avoids cancellation).
    The median of each pixel needs all of its frames at once, so it is computed differently:

    * arrays that can be sliced cheaply (numpy, memmap, cupy, h5py-like): over *pixel tiles* of
      rows, each tile holding all frames of a few rows (at most ~64 MiB), so every byte is read
      once and memory stays bounded (a memmap tile is a strided read of the file);
    * dask arrays, whose chunks are whole frames: an exact *radix selection* that streams over
      frame blocks. A first pass finds each pixel's min and max; each further pass histograms the
      next few bits of the values that still match the median's known leading bits (counts in a
      ``(pixels, 2**b)`` table, ``b`` chosen from the memory budget), until every bit is known;
      an even frame count may need one more pass for the upper middle value. A uint16 movie with
      a 13-bit range takes 5-6 passes. Floats are mapped to integers of the same order (sign-bit
      trick) first. NaN is not supported on this path.

    Both give exactly ``np.median(movie, axis=0)`` cast to float32.

    Examples
    --------
    >>> import numpy as np
    >>> project(np.array([[[1, 5]], [[3, 2]], [[2, 9]]]), "median").tolist()
    [[2.0, 5.0]]
    """
    return projections(
        movie, [kind], block_frames=block_frames, progress=progress, should_stop=should_stop
    )[kind]


def _median_of(xp: Any, a: Any, axis: int = 0) -> Any:
    """Exact median along `axis` (np.median semantics) for any namespace, in float64."""
    median = getattr(xp, "median", None)  # numpy, cupy; the array API has only sort
    if median is not None:
        return xp.astype(median(a, axis=axis), xp.float64)
    s = xp.sort(a, axis=axis)
    n = int(a.shape[axis])
    lo = xp.take(s, xp.asarray([(n - 1) // 2]), axis=axis)
    hi = xp.take(s, xp.asarray([n // 2]), axis=axis)
    mid = (xp.astype(lo, xp.float64) + xp.astype(hi, xp.float64)) / 2
    return xp.squeeze(mid, axis=axis)


def _median(movie: Any, block_frames: int | None, progress: Progress, stop: StopHook) -> Any:
    if is_dask_array(movie) and np.dtype(movie.dtype).kind in "iubf" and movie.dtype != np.uint64:
        return _median_radix(movie, block_frames, progress, stop)
    n_frames, n_rows = int(movie.shape[0]), int(movie.shape[1])
    row_bytes = n_frames * math.prod(int(s) for s in movie.shape[2:]) * 8
    tiles = frame_blocks(n_rows, block_frames=max(1, DEFAULT_BLOCK_BYTES // max(row_bytes, 1)))
    out = None
    for tile in track_blocks(tiles, progress=progress, should_stop=stop, desc="median (rows)"):
        part = movie[:, tile.start : tile.stop, ...]
        part = to_host(part) if is_dask_array(part) or not hasattr(part, "dtype") else part
        xp = array_module(part)
        med = _f32(xp, _median_of(xp, part, axis=0))
        if out is None:
            out = xp.empty((n_rows, *med.shape[1:]), dtype=xp.float32)
        out[tile.start : tile.stop, ...] = med
    return out


_TOP, _MAX = np.uint64(1 << 63), np.uint64(2**64 - 1)


def _keys(xp: Any, a: Any) -> Any:
    """uint64 keys in the order of the values (floats: negatives flipped, positives sign-set)."""
    if a.dtype.kind == "f":
        sign = np.dtype(f"uint{a.dtype.itemsize * 8}").type(1 << (a.dtype.itemsize * 8 - 1))
        u = a.view(sign.dtype)
        return xp.where((u & sign) != 0, ~u, u | sign).astype(xp.uint64)
    return a.astype(xp.int64).view(xp.uint64) ^ _TOP


def _values(xp: Any, keys: Any, dtype: np.dtype) -> Any:
    """Inverse of :func:`_keys`, as float64."""
    if dtype.kind == "f":
        sign = np.dtype(f"uint{dtype.itemsize * 8}").type(1 << (dtype.itemsize * 8 - 1))
        u = keys.astype(sign.dtype)
        return xp.where((u & sign) != 0, u ^ sign, ~u).view(dtype).astype(xp.float64)
    return (keys ^ _TOP).view(xp.int64).astype(xp.float64)


def _median_radix(movie: Any, block_frames: int | None, progress: Progress, stop: StopHook) -> Any:
    t, space = int(movie.shape[0]), tuple(int(s) for s in movie.shape[1:])
    npix, dtype, budget, top_key = (
        math.prod(space),
        np.dtype(movie.dtype),
        DEFAULT_BLOCK_BYTES,
        _MAX,
    )

    def passes(desc: str):  # keys of pixels [p0, p1) of each block, ~budget / 8 bytes a piece
        blocks = iter_frame_blocks(
            movie, block_frames=block_frames, progress=progress, should_stop=stop, desc=desc
        )
        for _, arr in blocks:
            xp, n = array_module(arr), int(arr.shape[0])
            flat, step = xp.reshape(arr, (n, npix)), max(1, budget // (64 * n))
            for p0 in range(0, npix, step):
                yield xp, _keys(xp, flat[:, p0 : p0 + step]), p0, min(npix, p0 + step)

    lo = hi = None
    for xp, k, p0, p1 in passes("median: range"):
        if lo is None:
            lo, hi = xp.full((npix,), top_key), xp.zeros((npix,), dtype=xp.uint64)
        lo[p0:p1] = xp.minimum(lo[p0:p1], xp.min(k, axis=0))
        hi[p0:p1] = xp.maximum(hi[p0:p1], xp.max(k, axis=0))
    n_bits = max(1, int(xp.max(hi - lo)).bit_length())
    b = max(1, min(n_bits, int(math.log2(max(2, budget // (npix * 16))))))
    rank = xp.full((npix,), (t - 1) // 2, dtype=xp.int64)  # rank of the lower middle value
    prefix, top = xp.zeros((npix,), dtype=xp.uint64), n_bits
    while top > 0:
        shift = max(top - b, 0)
        nb = 1 << (top - shift)
        counts = xp.zeros((npix * nb,), dtype=xp.int64)
        for xp, k, p0, p1 in passes(f"median: bits {top - 1}..{shift}"):
            d = k - lo[p0:p1]
            sel = (d >> top) == prefix[p0:p1] if top < 64 else xp.ones(d.shape, dtype=bool)
            idx = xp.arange(p1 - p0, dtype=xp.int64) * nb + ((d >> shift) & (nb - 1)).astype(
                xp.int64
            )
            counts[p0 * nb : p1 * nb] += xp.bincount(idx[sel], minlength=(p1 - p0) * nb)
        counts = xp.reshape(counts, (npix, nb))
        cum = xp.cumsum(counts, axis=1)
        j = xp.sum(cum <= rank[:, None], axis=1)
        below = xp.where(j > 0, xp.take_along_axis(cum, xp.maximum(j - 1, 0)[:, None], 1)[:, 0], 0)
        equal = xp.take_along_axis(counts, j[:, None], 1)[:, 0]
        rank, prefix, top = rank - below, (prefix << (top - shift)) | j.astype(xp.uint64), shift
    m1 = _values(xp, lo + prefix, dtype)
    if t % 2:
        return _f32(xp, xp.reshape(m1, space))
    m2_key = lo + prefix
    if bool(xp.any(rank + 1 >= equal)):  # some pixels' upper middle value is the next larger one
        nxt = xp.full((npix,), top_key)
        for xp, k, p0, p1 in passes("median: upper middle"):
            d = k - lo[p0:p1]
            cand = xp.min(xp.where(d > prefix[p0:p1], d, top_key), axis=0)
            nxt[p0:p1] = xp.minimum(nxt[p0:p1], cand)
        m2_key = xp.where(rank + 1 >= equal, lo + nxt, m2_key)
    return _f32(xp, xp.reshape((m1 + _values(xp, m2_key, dtype)) / 2, space))

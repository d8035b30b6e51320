"""Summary images of a movie: projections, local correlation image, peak-to-noise ratio.

Every function here reads the movie once (twice for CaImAn's thresholded correlation in
:func:`correlation_pnr`), in blocks of whole frames (:mod:`.chunking`), and keeps only per-pixel
accumulators, so a movie larger than memory works: numpy, ``np.memmap``, dask (each
block is computed in turn), h5py/zarr-like datasets, cupy (cupy in, cupy out) and other array-API
arrays. Images come back as ``(y, x)`` float32 on the movie's array module (numpy for dask).

Accumulators are float64 sums of deviations from the first frame, ``d = x - x[0]``: for integer
movies (uint16 ...) every product and sum is an exact integer below 2**53 (up to ~2 million
frames), so results do not depend on the block size at all (chunked == whole, bit for bit).
The temporal median cannot be streamed this way; :func:`project` says how it is computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ...errors import ParameterError, ShapeError
from .._backend import array_module, is_dask_array, ndimage_module, to_host
from ..chunking import (
    DEFAULT_BLOCK_BYTES,
    auto_block_frames,
    frame_blocks,
    iter_frame_blocks,
    track_blocks,
)
from ._summary_stats import CorrStats, PNRStats, _f32, psf_kernel

__all__ = [
    "PROJECTIONS",
    "CorrelationPNR",
    "correlation_image",
    "correlation_pnr",
    "pnr_image",
    "project",
    "projections",
]

#: The projection kinds :func:`project` knows.
PROJECTIONS = ("mean", "max", "min", "median", "std", "range")

Progress = Callable[..., Any] | bool | None
StopHook = Callable[[], bool] | None
_SLAB_BYTES = 16 * 2**20  # most bytes of one float64 temporary of the std in projections()


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


def _check_neighbours(neighbours: int) -> int:
    if neighbours not in (4, 8) or isinstance(neighbours, bool):
        raise ParameterError(f"neighbours must be 4 or 8, got {neighbours!r}")
    return int(neighbours)


def correlation_image(
    movie: Any,
    *,
    neighbours: int = 8,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> Any:
    """Local correlation image: mean correlation of each pixel with its 4 or 8 neighbours.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask, cupy or h5py-like movie, any real dtype.
    neighbours : {8, 4}
        8: the horizontal, vertical and diagonal neighbours; 4: horizontal and vertical only.
    block_frames : int, optional
        Frames per block (default: a 64 MiB float32 budget). The result does not depend on it.
    progress, should_stop
        See :func:`projections`.

    Returns
    -------
    image : array, shape (y, x), float32
        Values in [-1, 1], on the movie's array module (numpy for dask or memmap input).

    Notes
    -----
    For pixels ``p`` and ``q`` with time courses ``x_p(t)``, ``t = 1..T``, the Pearson correlation
    ``r_pq = cov(x_p, x_q) / (σ_p σ_q)``; the image is ``mean over q in N(p) of r_pq`` with
    ``N(p)`` the neighbours inside the frame (8 inside, 5 on an edge, 3 in a corner for 8).
    It is the local correlation image of Smith & Häusser (2010) and CaImAn's
    ``local_correlations(Y, eight_neighbours=...)``. One pass accumulates, in float64, the
    sufficient statistics ``Σd``, ``Σd²`` and ``Σ d_p d_q`` of ``d = x - x[0]`` and finishes with
    ``cov = Σ d_p d_q / T - mean(d_p) mean(d_q)``. A constant pixel has no defined correlation;
    it counts as 0 (CaImAn gives NaN). numpy blocks go through a parallel numba kernel, other
    namespaces (cupy) through the same algorithm as array expressions.

    References
    ----------
    Smith, S. L. & Häusser, M. (2010). Parallel processing of visual space by neighboring neurons
    in mouse visual cortex. Nat. Neurosci. 13, 1144-1149.
    Giovannucci, A. et al. (2019). CaImAn an open source tool for scalable calcium imaging data
    analysis. eLife 8, e38173.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(6.0)
    >>> movie = np.stack([t, t, t, -t], axis=1).reshape(6, 2, 2)
    >>> correlation_image(movie, neighbours=4).tolist()
    [[1.0, 0.0], [0.0, -1.0]]
    """
    stats, _ = _stream(
        movie,
        neighbours=_check_neighbours(neighbours),
        segment_frames=None,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc="correlation image",
    )
    return stats.image()


# --------------------------------------------------------------------------------------------------
# Peak-to-noise ratio
# --------------------------------------------------------------------------------------------------
class CorrelationPNR(NamedTuple):
    """Result of :func:`correlation_pnr`: three ``(y, x)`` float32 images."""

    correlation: Any
    """Local correlation image of the (filtered) movie, see :func:`correlation_image`."""
    pnr: Any
    """Peak-to-noise ratio ``max_t(x - mean) / noise``, clipped at 0."""
    noise: Any
    """Noise standard deviation of each pixel (same units as the filtered movie)."""


def _stream(
    movie: Any,
    *,
    neighbours: int,
    segment_frames: int | None,
    block_frames: int | None,
    progress: Progress,
    should_stop: StopHook,
    desc: str,
    transform: Callable[[Any], Any] | None = None,
) -> tuple[CorrStats | None, PNRStats | None]:
    """One pass: correlation sums (neighbours 4/8, 0: none), PNR sums (segment_frames set)."""
    movie = _check_movie(movie)
    n_frames = int(movie.shape[0])
    if segment_frames is not None:  # blocks start at multiples of the segment length
        seg = min(segment_frames, n_frames)
        block_frames = max(seg, -(-(block_frames or auto_block_frames(movie)) // seg) * seg)
    corr = pnr = None
    blocks = iter_frame_blocks(
        movie, block_frames=block_frames, progress=progress, should_stop=should_stop, desc=desc
    )
    for _, arr in blocks:
        f = transform(arr) if transform is not None else arr
        if neighbours:
            corr = CorrStats(f[0, ...], neighbours) if corr is None else corr
            corr.update(f)
        if segment_frames is not None:
            pnr = PNRStats(f[0, ...], segment_frames, n_frames) if pnr is None else pnr
            pnr.update(f)
    return corr, pnr


def correlation_pnr(
    movie: Any,
    *,
    gaussian_sigma_px: float | None = None,
    center_psf: bool = True,
    neighbours: int | None = 8,
    threshold_sigma: float | None = None,
    segment_frames: int = 64,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> CorrelationPNR:
    """Correlation and peak-to-noise-ratio images (CaImAn ``correlation_pnr``), streamed.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask, cupy or h5py-like movie, any real dtype.
    gaussian_sigma_px : float, optional
        Spatially filter every frame first (CaImAn ``gSig``, px); None: no filtering.
    center_psf : bool
        With filtering: subtract the kernel's mean inside its disk, which removes smooth
        background (for one-photon data); False: a plain truncated Gaussian blur.
    neighbours : {8, 4} or None
        For the correlation image; None skips it (``correlation`` is then None).
    threshold_sigma : float, optional
        CaImAn's correlation image of ``z = (x - mean) / noise`` with ``z < threshold_sigma`` set
        to 0 (CaImAn uses 3). It needs a second pass; None (default) correlates the (filtered)
        movie itself in the same single pass as the PNR.
    segment_frames : int
        Segment length of the Welch noise estimate (frames).
    block_frames : int, optional
        Frames per block; rounded up to a multiple of `segment_frames` (results do not depend on
        it).
    progress, should_stop
        See :func:`projections`.

    Returns
    -------
    CorrelationPNR
        ``correlation``, ``pnr`` and ``noise`` images, ``(y, x)`` float32.

    Notes
    -----
    With ``f`` the (filtered) movie, ``PNR = max(0, max_t f - mean_t f) / σ`` where ``σ`` is the
    noise level that CaImAn's ``get_noise_fft`` (``noise_method="mean"``) estimates: the square
    root of the power spectral density averaged over ``[0.25, 0.5]`` cycles/frame, where calcium
    transients have little power. To stream, the PSD is Welch's average over consecutive
    Hann-windowed, mean-removed segments of `segment_frames` frames (aligned to frame 0; a
    shorter tail is left out; one segment of all frames when the movie is shorter), normalised so
    white noise of variance σ² gives σ² in every bin. A pixel with σ = 0 has PNR 0.
    The kernel is CaImAn's: a ``(2⌊1.5σ⌋+1)²`` Gaussian, with ``center_psf`` kept only where it
    exceeds its border maximum and shifted to zero mean there; frames are correlated with it using
    mirror borders (OpenCV's default).

    References
    ----------
    Zhou, P. et al. (2018). Efficient and accurate extraction of in vivo calcium signals from
    microendoscopic video data. eLife 7, e28728.
    Giovannucci, A. et al. (2019). CaImAn. eLife 8, e38173.
    Welch, P. (1967). IEEE Trans. Audio Electroacoust. 15, 70-73.

    Examples
    --------
    >>> import numpy as np
    >>> movie = np.random.default_rng(0).normal(100, 1, (256, 4, 4)).astype(np.float32)
    >>> movie[100:160, 1, 1] += 20 * np.exp(-np.arange(60) / 10)  # a calcium transient
    >>> r = correlation_pnr(movie)
    >>> int(np.argmax(r.pnr)), bool(r.pnr[1, 1] > 10), round(float(np.median(r.noise)), 1)
    (5, True, 1.0)
    """
    if neighbours is not None:
        neighbours = _check_neighbours(neighbours)
    segment_frames, movie = int(segment_frames), _check_movie(movie)
    if segment_frames < 4 or int(movie.shape[0]) < 4:
        raise ParameterError(
            f"the noise estimate needs segment_frames >= 4 and a movie of >= 4 frames, got "
            f"{segment_frames} and {movie.shape[0]}"
        )
    filt = None
    if gaussian_sigma_px is not None:
        if not gaussian_sigma_px > 0:
            raise ParameterError(f"gaussian_sigma_px must be > 0, got {gaussian_sigma_px}")
        kernel = psf_kernel(float(gaussian_sigma_px), bool(center_psf))

        def filt(block: Any) -> Any:
            xp = array_module(block)
            k = xp.asarray(kernel)[None, ...]
            return ndimage_module(xp).correlate(_f32(xp, block), k, mode="mirror")

    two_pass = threshold_sigma is not None and neighbours
    corr, ps = _stream(
        movie,
        neighbours=neighbours if neighbours and not two_pass else 0,
        segment_frames=segment_frames,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
        desc="correlation + PNR" if neighbours and not two_pass else "PNR",
        transform=filt,
    )
    xp = ps.xp
    mean, noise = ps.s / ps.n, ps.noise()
    ok = noise > 0
    safe = xp.where(ok, noise, xp.ones_like(noise))
    peak = xp.clip(xp.astype(ps.mx, xp.float64) - mean, 0.0, None)
    pnr = xp.where(ok, peak / safe, xp.zeros_like(peak))
    if two_pass:
        thr, m32, s32 = float(threshold_sigma), _f32(xp, mean), _f32(xp, safe)

        def zscore(block: Any) -> Any:
            z = (_f32(xp, block if filt is None else filt(block)) - m32) / s32
            return xp.where(z >= thr, z, xp.zeros_like(z))

        corr, _ = _stream(
            movie,
            neighbours=neighbours,
            segment_frames=None,
            block_frames=block_frames,
            progress=progress,
            should_stop=should_stop,
            desc="correlation of z-scores",
            transform=zscore,
        )
    image = corr.image() if corr is not None else None
    return CorrelationPNR(image, _f32(xp, pnr), _f32(xp, noise))


def pnr_image(
    movie: Any,
    *,
    gaussian_sigma_px: float | None = None,
    center_psf: bool = True,
    segment_frames: int = 64,
    block_frames: int | None = None,
    progress: Progress = None,
    should_stop: StopHook = None,
) -> Any:
    """Peak-to-noise ratio image (CNMF-E / CaImAn ``correlation_pnr``'s ``pnr``).

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask, cupy or h5py-like movie.
    gaussian_sigma_px, center_psf, segment_frames, block_frames, progress, should_stop
        See :func:`correlation_pnr`.

    Returns
    -------
    image : array, shape (y, x), float32
        ``max(0, max_t f - mean_t f) / noise`` (unitless), see :func:`correlation_pnr`.

    References
    ----------
    Zhou, P. et al. (2018). eLife 7, e28728.

    Examples
    --------
    >>> import numpy as np
    >>> movie = np.random.default_rng(0).normal(100, 1, (128, 3, 3))
    >>> movie[50, 0, 0] += 30
    >>> int(np.argmax(pnr_image(movie)))
    0
    """
    return correlation_pnr(
        movie,
        gaussian_sigma_px=gaussian_sigma_px,
        center_psf=center_psf,
        neighbours=None,
        segment_frames=segment_frames,
        block_frames=block_frames,
        progress=progress,
        should_stop=should_stop,
    ).pnr

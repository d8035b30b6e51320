"""Local correlation and peak-to-noise ratio images of a movie (CaImAn / CNMF-E seed images).

Like the projections (:mod:`.projections`), every function here reads the movie in blocks of
whole frames and keeps per-pixel float64 accumulators only (twice for CaImAn's thresholded
correlation in :func:`correlation_pnr`), so a movie larger than memory works; images come back as
``(y, x)`` float32 on the movie's array module (numpy for dask).

The streaming sufficient statistics:

* :class:`CorrStats`: ``Σd``, ``Σd²`` and the neighbour cross-products ``Σ d_p d_q`` of
  ``d = x - x[0]``, from which the local correlation image is finished. numpy blocks go through
  the numba kernel :func:`_corr_accumulate_numba` (rows over threads); any other namespace (cupy,
  array-API) through :func:`_corr_accumulate_xp`, the same algorithm as array expressions.
* :class:`PNRStats`: running max and sum, and the Welch power in the high-frequency band
  ``[0.25, 0.5]`` cycles/frame for the noise level, over segments aligned to absolute frames.

References
----------
Zhou P. et al. (2018) Efficient and accurate extraction of in vivo calcium signals from
microendoscopic video data. eLife 7:e28728 (correlation × PNR seeds). Giovannucci A. et al. (2019)
CaImAn, an open source tool for scalable calcium imaging data analysis. eLife 8:e38173.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numba
import numpy as np

from ...errors import ParameterError
from .._backend import array_module, ndimage_module
from .._threads import in_threads
from ..chunking import auto_block_frames, iter_frame_blocks
from .projections import Progress, StopHook, _check_movie, _f32

__all__ = [
    "CorrStats",
    "CorrelationPNR",
    "PNRStats",
    "correlation_image",
    "correlation_pnr",
    "pnr_image",
    "psf_kernel",
]


@numba.njit(cache=True, nogil=True)
def _corr_rows(block, ref, s, q, c_r, c_d, c_dr, c_dl, eight, start, stop):  # pragma: no cover
    """Rows ``start:stop`` of one block's sums, in place; each row's pairs with the row below.

    Serial and ``nogil``: :func:`_corr_accumulate_numba` spreads the rows over threads. Rows are
    independent, so this equals the former ``prange`` kernel, which compiled 3x slower.
    """
    n, ny, nx = block.shape
    for y in range(start, stop):
        d0 = np.empty(nx)
        d1 = np.empty(nx)
        down = y + 1 < ny
        for t in range(n):
            for x in range(nx):
                d0[x] = block[t, y, x] - ref[y, x]
            for x in range(nx):
                s[y, x] += d0[x]
                q[y, x] += d0[x] * d0[x]
            for x in range(nx - 1):
                c_r[y, x] += d0[x] * d0[x + 1]
            if down:
                for x in range(nx):
                    d1[x] = block[t, y + 1, x] - ref[y + 1, x]
                for x in range(nx):
                    c_d[y, x] += d0[x] * d1[x]
                if eight:
                    for x in range(nx - 1):
                        c_dr[y, x] += d0[x] * d1[x + 1]
                        c_dl[y, x] += d0[x + 1] * d1[x]


def _corr_accumulate_numba(block, ref, s, q, c_r, c_d, c_dr, c_dl, eight) -> None:
    """Add one numpy block's sums in place, rows spread over threads (:func:`_corr_rows`)."""
    args = (block, ref, s, q, c_r, c_d, c_dr, c_dl, bool(eight))
    in_threads(_corr_rows, args, int(block.shape[1]), "napari-calcium-corr")


def _corr_accumulate_xp(block, ref, s, q, c_r, c_d, c_dr, c_dl, eight):
    """The numba kernel's algorithm as array expressions (cupy, array-API); returns new sums."""
    xp = array_module(block)
    d = xp.astype(block, xp.float64) - ref
    s, q = s + xp.sum(d, axis=0), q + xp.sum(d * d, axis=0)
    c_r = c_r + xp.sum(d[:, :, :-1] * d[:, :, 1:], axis=0)
    c_d = c_d + xp.sum(d[:, :-1, :] * d[:, 1:, :], axis=0)
    if eight:
        c_dr = c_dr + xp.sum(d[:, :-1, :-1] * d[:, 1:, 1:], axis=0)
        c_dl = c_dl + xp.sum(d[:, :-1, 1:] * d[:, 1:, :-1], axis=0)
    return s, q, c_r, c_d, c_dr, c_dl


_ALL, _HEAD, _TAIL = slice(None), slice(None, -1), slice(1, None)
# (index of the cross-product sum, slice of pixel p, slice of its neighbour q)
_PAIRS4 = ((2, (_ALL, _HEAD), (_ALL, _TAIL)), (3, (_HEAD, _ALL), (_TAIL, _ALL)))
_PAIRS8 = (*_PAIRS4, (4, (_HEAD, _HEAD), (_TAIL, _TAIL)), (5, (_HEAD, _TAIL), (_TAIL, _HEAD)))


class CorrStats:
    """Correlation sufficient statistics of a ``(frames, y, x)`` movie, block by block.

    Parameters
    ----------
    first : array, shape (y, x)
        The movie's first frame: the shift ``ref`` subtracted before accumulating.
    neighbours : {4, 8}
        Which neighbour pairs to accumulate.
    numba_kernel : bool, optional
        Use the numba kernel for numpy blocks (default). False runs the array-expression twin,
        for parity tests.
    """

    def __init__(self, first: Any, neighbours: int, *, numba_kernel: bool = True) -> None:
        xp = self.xp = array_module(first)
        self.ref = xp.astype(first, xp.float64)
        ny, nx = (int(v) for v in first.shape)
        shapes = ((ny, nx), (ny, nx), (ny, nx - 1), (ny - 1, nx), (ny - 1, nx - 1))
        self.sums = [xp.zeros(sh, dtype=xp.float64) for sh in (*shapes, shapes[-1])]
        self.eight, self.n, self.numba_kernel = neighbours == 8, 0, numba_kernel

    def update(self, block: Any) -> None:
        """Add a block of frames, shape ``(n, y, x)``, any real dtype."""
        self.n += int(block.shape[0])
        if self.numba_kernel and isinstance(block, np.ndarray):
            if block.dtype.kind == "b":
                block = block.view(np.uint8)
            elif not block.dtype.isnative:
                block = block.astype(block.dtype.newbyteorder("="))
            _corr_accumulate_numba(block, self.ref, *self.sums, self.eight)
        else:
            self.sums = list(_corr_accumulate_xp(block, self.ref, *self.sums, self.eight))

    def image(self) -> Any:
        """Mean Pearson correlation with the in-frame neighbours, ``(y, x)`` float32."""
        xp, n = self.xp, self.n
        s, q = self.sums[0], self.sums[1]
        m = s / n
        sd = xp.sqrt(xp.clip(q / n - m * m, 0.0, None))
        rho, count = xp.zeros(s.shape, dtype=xp.float64), xp.zeros(s.shape, dtype=xp.float64)
        for i, a, b in _PAIRS8 if self.eight else _PAIRS4:
            cov = self.sums[i] / n - m[a] * m[b]
            den = sd[a] * sd[b]
            ok = den > 0
            r = xp.where(ok, cov / xp.where(ok, den, xp.ones_like(den)), xp.zeros_like(den))
            rho[a] += r
            rho[b] += r
            count[a] += 1.0
            count[b] += 1.0
        return _f32(xp, rho / xp.where(count > 0, count, xp.ones_like(count)))


class PNRStats:
    """Running max, sum and Welch band power of a movie, block by block.

    Blocks must start at multiples of the segment length (the caller aligns them), so segments
    are the same whatever the block size; a last incomplete segment is left out.

    Parameters
    ----------
    first : array, shape (y, x)
        The first frame (starts the running max).
    segment_frames : int
        Welch segment length ``L``; ``min(L, n_frames)`` is used.
    n_frames : int
        Frames in the movie.
    """

    def __init__(self, first: Any, segment_frames: int, n_frames: int) -> None:
        xp = self.xp = array_module(first)
        self.seg = seg = min(segment_frames, n_frames)
        self.mx, self.s, self.n = first, xp.zeros(first.shape, dtype=xp.float64), 0
        self.power, self.n_seg = xp.zeros(first.shape, dtype=xp.float64), 0
        k = np.arange(-(-seg // 4), seg // 2 + 1)  # bins k / L in [0.25, 0.5] cycles/frame
        w = np.hanning(seg + 2)[1:-1] if seg > 2 else np.ones(seg)
        phase = 2 * np.pi * np.outer(k, np.arange(seg)) / seg
        basis = np.concatenate([np.cos(phase) * w, np.sin(phase) * w])  # (2 * bins, L)
        self.basis = xp.asarray(basis.astype(np.float32))
        self.n_bins, self.w2 = len(k), float(np.sum(w * w))

    def update(self, f: Any) -> None:
        """Add a block ``(n, y, x)`` that starts at a multiple of the segment length."""
        xp, n = self.xp, int(f.shape[0])
        self.mx = xp.maximum(self.mx, xp.max(f, axis=0))
        self.s = self.s + xp.sum(f, axis=0, dtype=xp.float64)
        self.n += n
        m = n // self.seg
        if m:
            npix = 1
            for v in f.shape[1:]:
                npix *= int(v)
            seg = xp.reshape(_f32(xp, f[: m * self.seg, ...]), (m, self.seg, npix))
            seg = seg - xp.mean(seg, axis=1, keepdims=True)
            spec = xp.matmul(self.basis, seg)  # (m, 2 * bins, pixels): Re and Im of the DFT
            power = xp.sum(xp.astype(spec * spec, xp.float64), axis=(0, 1))
            self.power = self.power + xp.reshape(power, tuple(self.s.shape))
            self.n_seg += m

    def noise(self) -> Any:
        """Noise standard deviation per pixel, float64: ``sqrt(mean band PSD)``."""
        xp = self.xp
        return xp.sqrt(self.power / (max(self.n_seg, 1) * self.n_bins * self.w2))


def psf_kernel(sigma: float, center: bool) -> np.ndarray:
    """CaImAn's correlation_pnr kernel: Gaussian of size 2*int(1.5σ)+1, optionally mean-centred.

    With `center`, the kernel is kept where it is at least its largest border value (a disk),
    shifted there to zero mean (so smooth background cancels), and zero elsewhere.
    """
    half = max(1, int(1.5 * sigma))
    r = np.arange(-half, half + 1)
    g = np.exp(-(r**2) / (2 * sigma**2))
    k = np.outer(g / g.sum(), g / g.sum())
    if center:
        inside = k >= k[0].max()
        k = np.where(inside, k - k[inside].mean(), 0.0)
    return k.astype(np.float32)


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

"""Streaming sufficient statistics behind the summary images of :mod:`.projections`.

Each accumulator is fed whole frame blocks and keeps per-pixel float64 sums only:

* :class:`CorrStats`: ``Σd``, ``Σd²`` and the neighbour cross-products ``Σ d_p d_q`` of
  ``d = x - x[0]``, from which the local correlation image is finished. numpy blocks go through
  the parallel numba kernel :func:`_corr_accumulate_numba`; any other namespace (cupy,
  array-API) through :func:`_corr_accumulate_xp`, the same algorithm as array expressions.
* :class:`PNRStats`: running max and sum, and the Welch power in the high-frequency band
  ``[0.25, 0.5]`` cycles/frame for the noise level, over segments aligned to absolute frames.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from .._backend import array_module

__all__ = ["CorrStats", "PNRStats", "psf_kernel"]


def _f32(xp: Any, a: Any) -> Any:
    return xp.astype(a, xp.float32)


@numba.njit(parallel=True, cache=True)
def _corr_accumulate_numba(block, ref, s, q, c_r, c_d, c_dr, c_dl, eight):  # pragma: no cover
    """Add one block's sums in place; rows in parallel, each row's pairs with the row below."""
    n, ny, nx = block.shape
    for y in numba.prange(ny):
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

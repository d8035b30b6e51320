"""Compute kernels of :mod:`napari_calcium.core.traces.baseline`: numba on the CPU, cupy twins.

========================  ==============================  =================================
dispatch                  numba (numpy rows)              twin (cupy, ``cupyx.scipy.ndimage``)
========================  ==============================  =================================
:func:`running_rank`      ``_rank_rows`` (radix, bitmap)  ``rank_filter``, size ``(1, w)``
:func:`running_min_max`   ``_minmax_rows`` (van Herk)     ``minimum_filter1d``, ``maximum_…``
:func:`gaussian_rows`     ``_gauss_rows`` (folded FIR)    ``gaussian_filter1d``
:func:`clipped_mean_…`    ``_clipped_mean_rows``          ``_clipped_mean_xp`` (cumsums)
========================  ==============================  =================================

Both sides compute the same order statistics / correlations with the same boundary extension (an
index map built by :func:`pad_index`, i.e. ``scipy.ndimage`` modes), so their results are equal
(exactly for the order statistics, to float rounding for the gaussian).

Running rank (order statistic ``k`` of a window of ``w`` samples), O(n) per row after an O(n)
radix argsort: every padded sample gets its global rank in the row (LSD radix sort of the
order-preserving unsigned-integer image of the float bits, stable, so ranks are distinct); the
window is a bitmap over global ranks. Each step clears one bit and sets one; the ``k``-th set
bit moves to at most its neighbouring set bit, found with a count-trailing/leading-zeros on
64-bit words. Running min/max: van Herk / Gil-Werman prefix and suffix extrema over blocks of
``w``, three comparisons per sample whatever ``w``.

The serial kernels release the GIL; :func:`_in_threads` spreads rows over
``numba.get_num_threads()`` plain threads (safe from dask workers, cheap to compile).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

from .._backend import array_module, ndimage_module
from .._threads import in_threads

__all__ = [
    "clipped_mean_iterations",
    "gaussian_rows",
    "pad_index",
    "running_min_max",
    "running_rank",
]

#: scipy.ndimage boundary modes supported, mapped to the numpy.pad mode building the same index map
PAD_MODES = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap"}


def pad_index(n: int, left: int, right: int, mode: str) -> np.ndarray:
    """Source index of each sample of a row extended by `left`/`right` samples (ndimage `mode`)."""
    return np.pad(np.arange(n, dtype=np.int64), (left, right), mode=PAD_MODES[mode])


def _in_threads(kernel: Any, args: tuple, n_items: int) -> None:
    """:func:`._threads.in_threads` with this module's thread names."""
    in_threads(kernel, args, n_items, "napari-calcium-baseline")


# --------------------------------------------------------------------------------------------------
# Running rank (percentile filter)
# --------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _sortable_keys(vals, keys):
    """Order-preserving unsigned image of float bits: flip all bits of negatives, set the sign."""
    bits = vals.view(keys.dtype)
    top = keys.dtype.type(1) << keys.dtype.type(8 * keys.itemsize - 1)
    for i in range(bits.size):
        b = bits[i]
        keys[i] = ~b if b & top else b | top


@njit(cache=True, nogil=True)
def _radix_argsort(keys, perm, tmp, count):
    """Stable LSD radix argsort of unsigned `keys` (11-bit digits) into `perm`."""
    n = keys.size
    for i in range(n):
        perm[i] = i
    nbits = 8 * keys.itemsize
    shift = 0
    while shift < nbits:
        # plain loops, not ``count.max()`` / ``perm[:] = tmp``: numba's array expressions and
        # their shape-mismatch error path cost ~2 s of compile time (issue 16)
        for d in range(2048):
            count[d] = 0
        for i in range(n):
            count[(keys[i] >> keys.dtype.type(shift)) & keys.dtype.type(2047)] += 1
        largest = 0
        for d in range(2048):
            largest = max(largest, count[d])
        if largest < n:  # skip digits shared by every key
            total = 0
            for d in range(2048):
                c = count[d]
                count[d] = total
                total += c
            for i in range(n):
                p = perm[i]
                d = (keys[p] >> keys.dtype.type(shift)) & keys.dtype.type(2047)
                tmp[count[d]] = p
                count[d] += 1
            for i in range(n):
                perm[i] = tmp[i]
        shift += 11


@njit(cache=True, inline="always")
def _next_set(words, pos):
    """Smallest set bit index > pos (one exists)."""
    wi = (pos + 1) >> 6
    bit = (pos + 1) & 63
    word = words[wi] & (np.uint64(0xFFFFFFFFFFFFFFFF) << np.uint64(bit)) if bit else words[wi]
    while word == 0:
        wi += 1
        word = words[wi]
    return (wi << 6) + trailing_zeros(word)


@njit(cache=True, inline="always")
def _prev_set(words, pos):
    """Largest set bit index < pos (one exists)."""
    wi = (pos - 1) >> 6
    bit = (pos - 1) & 63
    word = words[wi]
    if bit < 63:
        word &= (np.uint64(1) << np.uint64(bit + 1)) - np.uint64(1)
    while word == 0:
        wi -= 1
        word = words[wi]
    return (wi << 6) + 63 - leading_zeros(word)


@njit(cache=True, nogil=True)
def _rank_rows(x, src, w, k, out, keytype, start, stop):
    """Rows ``start:stop``: ``out[r, i]`` = ``k``-th smallest of ``x[r, src[i:i + w]]``."""
    n = out.shape[1]
    m = src.size
    vals = np.empty(m, x.dtype)
    keys = np.empty(m, keytype)
    perm = np.empty(m, np.int64)
    tmp = np.empty(m, np.int64)
    count = np.empty(2048, np.int64)
    rank = np.empty(m, np.int64)
    svals = np.empty(m, x.dtype)
    words = np.empty((m + 63) // 64 + 1, np.uint64)
    for r in range(start, stop):
        for j in range(m):
            vals[j] = x[r, src[j]]
        _sortable_keys(vals, keys)
        _radix_argsort(keys, perm, tmp, count)
        for j in range(m):
            rank[perm[j]] = j
            svals[j] = vals[perm[j]]
        words[:] = 0
        for j in range(w):
            words[rank[j] >> 6] |= np.uint64(1) << np.uint64(rank[j] & 63)
        seen = -1  # k-th set bit: walk up from below the first
        cur = -1
        while seen < k:
            cur = _next_set(words, cur)
            seen += 1
        out[r, 0] = svals[cur]
        for i in range(1, n):
            a = rank[i - 1]
            b = rank[i + w - 1]
            words[a >> 6] &= ~(np.uint64(1) << np.uint64(a & 63))
            words[b >> 6] |= np.uint64(1) << np.uint64(b & 63)
            if a == cur:
                cur = _prev_set(words, cur) if b < cur else _next_set(words, cur)
            elif b < cur and a > cur:
                cur = _prev_set(words, cur)
            elif b > cur and a < cur:
                cur = _next_set(words, cur)
            out[r, i] = svals[cur]


def running_rank(x: Any, window: int, rank: int, mode: str = "reflect") -> Any:
    """Running order statistic along the last axis of 2-D `x`, as ``ndimage.rank_filter``.

    ``out[r, i]`` is the ``rank``-th smallest (0-based) of ``x[r, i - window//2 :][:window]``
    with the row extended by ndimage `mode`. numpy: the numba kernel; cupy: its twin
    ``cupyx.scipy.ndimage.rank_filter`` with size ``(1, window)``.
    """
    xp = array_module(x)
    if xp is not np:
        ndi = ndimage_module(xp)
        return ndi.rank_filter(x, rank, size=(1, window), mode=mode)
    x = np.ascontiguousarray(x)
    n_rows, n = x.shape
    src = pad_index(n, window // 2, window - 1 - window // 2, mode)
    out = np.empty_like(x)
    keytype = np.uint32 if x.itemsize == 4 else np.uint64
    _in_threads(_rank_rows, (x, src, window, rank, out, keytype), n_rows)
    return out


# --------------------------------------------------------------------------------------------------
# Running minimum / maximum (van Herk / Gil-Werman)
# --------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _extremum_row(ext, w, n, out, pre, suf, is_max):
    """``out[i]`` = min (max) of ``ext[i:i + w]`` for ``i < n`` (prefix/suffix block extrema)."""
    m = n + w - 1
    for b0 in range(0, m, w):
        b1 = min(b0 + w, m)
        acc = ext[b0]
        pre[b0] = acc
        for j in range(b0 + 1, b1):
            v = ext[j]
            acc = (v if v > acc else acc) if is_max else (v if v < acc else acc)
            pre[j] = acc
        acc = ext[b1 - 1]
        suf[b1 - 1] = acc
        for j in range(b1 - 2, b0 - 1, -1):
            v = ext[j]
            acc = (v if v > acc else acc) if is_max else (v if v < acc else acc)
            suf[j] = acc
    for i in range(n):
        a = suf[i]
        b = pre[i + w - 1]
        out[i] = (a if a > b else b) if is_max else (a if a < b else b)


@njit(cache=True, nogil=True)
def _minmax_rows(x, src_min, src_max, w, out, start, stop):
    """Rows ``start:stop``: running min over `w`, then running max over `w` of that."""
    n = out.shape[1]
    m = n + w - 1
    ext = np.empty(m, x.dtype)
    pre = np.empty(m, x.dtype)
    suf = np.empty(m, x.dtype)
    mid = np.empty(n, x.dtype)
    for r in range(start, stop):
        for j in range(m):
            ext[j] = x[r, src_min[j]]
        _extremum_row(ext, w, n, mid, pre, suf, False)
        for j in range(m):
            ext[j] = mid[src_max[j]]
        _extremum_row(ext, w, n, out[r], pre, suf, True)


def running_min_max(x: Any, window: int, mode: str = "nearest") -> Any:
    """``maximum_filter1d(minimum_filter1d(x, window), window)`` along the last axis of 2-D `x`.

    numpy: the van Herk numba kernel; cupy: the ``cupyx.scipy.ndimage`` twins. Same `mode` for both
    passes; ``window // 2`` samples before the centre, like ndimage with ``origin=0``.
    """
    xp = array_module(x)
    if xp is not np:
        ndi = ndimage_module(xp)
        low = ndi.minimum_filter1d(x, window, axis=-1, mode=mode)
        return ndi.maximum_filter1d(low, window, axis=-1, mode=mode)
    x = np.ascontiguousarray(x)
    n_rows, n = x.shape
    src = pad_index(n, window // 2, window - 1 - window // 2, mode)
    out = np.empty_like(x)
    _in_threads(_minmax_rows, (x, src, src, window, out), n_rows)
    return out


# --------------------------------------------------------------------------------------------------
# Gaussian smoothing along time
# --------------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, fastmath=True)
def _gauss_rows(x, src, taps, out, start, stop):
    """Rows ``start:stop``: symmetric FIR `taps` (centre first) over rows extended by `src`.

    Accumulates in the input's precision, tap-outer and sample-inner so that LLVM vectorises the
    sample loop (ndimage accumulates in float64: results agree to float rounding).
    """
    n = out.shape[1]
    radius = taps.size - 1
    ext = np.empty(src.size, x.dtype)
    for r in range(start, stop):
        for j in range(src.size):
            ext[j] = x[r, src[j]]
        row = out[r]
        c0 = taps[0]
        for i in range(n):
            row[i] = c0 * ext[i + radius]
        for t in range(1, radius + 1):
            ct = taps[t]
            lo = ext[radius - t : radius - t + n]
            hi = ext[radius + t : radius + t + n]
            for i in range(n):
                row[i] += ct * (lo[i] + hi[i])


def gaussian_rows(x: Any, sigma: float, truncate: float = 4.0, mode: str = "nearest") -> Any:
    """``ndimage.gaussian_filter1d(x, sigma, axis=-1, mode=mode, truncate=truncate)`` for 2-D `x`.

    numpy: a numba FIR with the same taps (in the input's precision); cupy: the ndimage twin.
    """
    xp = array_module(x)
    if sigma <= 0:
        return xp.array(x, copy=True)
    if xp is not np:
        return ndimage_module(xp).gaussian_filter1d(x, sigma, axis=-1, mode=mode, truncate=truncate)
    x = np.ascontiguousarray(x)
    radius = int(truncate * float(sigma) + 0.5)
    t = np.arange(radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * t**2)
    taps = (phi / (phi[0] + 2.0 * phi[1:].sum())).astype(x.dtype)
    n_rows, n = x.shape
    src = pad_index(n, radius, radius, mode)
    out = np.empty_like(x)
    _in_threads(_gauss_rows, (x, src, taps, out), n_rows)
    return out


@njit(cache=True, nogil=True)
def _clipped_mean_rows(x, f0, sigma, a, b, mu, half, n_iter, start, stop):  # pragma: no cover
    """:func:`clipped_mean_iterations` for rows ``start:stop``, in place on ``f0`` (float64)."""
    n = x.shape[1]
    s = np.empty(n + 1)
    c = np.empty(n + 1)
    for row in range(start, stop):
        sg = sigma[row]
        for _ in range(n_iter):
            s[0] = 0.0
            c[0] = 0.0
            for t in range(n):
                r = x[row, t] - f0[row, t]
                if r > -a * sg and r < b * sg:
                    s[t + 1] = s[t] + x[row, t]
                    c[t + 1] = c[t] + 1.0
                else:
                    s[t + 1] = s[t]
                    c[t + 1] = c[t]
            for t in range(n):
                lo = max(t - half, 0)
                hi = min(t + half + 1, n)
                count = c[hi] - c[lo]
                if count >= 10.0:
                    f0[row, t] = (s[hi] - s[lo]) / count - mu * sg


def _clipped_mean_xp(x, f0, sigma, a, b, mu, half, n_iter, xp):
    """The same iterations vectorised over rows (the cupy twin; float64 prefix sums)."""
    n = x.shape[-1]
    zero = xp.zeros((x.shape[0], 1), dtype=xp.float64)
    t = np.arange(n)
    lo = xp.asarray(np.maximum(t - half, 0))
    hi = xp.asarray(np.minimum(t + half + 1, n))
    sg = sigma[:, None]
    for _ in range(n_iter):
        r = x - f0
        keep = (r > -a * sg) & (r < b * sg)
        s = xp.concatenate([zero, xp.cumsum(xp.where(keep, x, 0).astype(xp.float64), axis=-1)], -1)
        c = xp.concatenate([zero, xp.cumsum(keep.astype(xp.float64), axis=-1)], axis=-1)
        count = c[:, hi] - c[:, lo]
        mean = (s[:, hi] - s[:, lo]) / xp.maximum(count, 1.0)
        f0 = xp.where(count >= 10, mean - mu * sg, f0)
    return f0


def clipped_mean_iterations(
    x: Any, f0: Any, sigma: Any, a: float, b: float, mu: float, half: int, n_iter: int
) -> Any:
    """Refine a baseline ``f0`` by `n_iter` asymmetric sigma-clipped running means.

    Each iteration keeps the samples with ``-a σ < x - f0 < b σ`` and sets ``f0`` to their mean
    over ``[t - half, t + half]`` (clipped at the row ends) minus ``mu σ`` (the clipping bias of
    a gaussian), where at least 10 samples were kept; elsewhere ``f0`` stays. Returns float64
    ``(n_rois, n_frames)``. numba over rows on the CPU, the vectorised twin for cupy.
    """
    xp = array_module(x)
    f0 = xp.asarray(f0, dtype=xp.float64)
    sigma = xp.asarray(sigma, dtype=xp.float64).reshape(-1)
    if xp is not np:
        return _clipped_mean_xp(x, f0, sigma, a, b, mu, half, n_iter, xp)
    out = np.array(f0, dtype=np.float64, order="C", copy=True)  # never the caller's array
    xc = np.ascontiguousarray(x)
    args = (xc, out, sigma, float(a), float(b), float(mu), int(half), int(n_iter))
    _in_threads(_clipped_mean_rows, args, xc.shape[0])
    return out

"""Ring-shaped somata (nuclear exclusion) for :mod:`.detection`: nuclear-shadow map and soma size.

GCaMP is a cytosolic indicator and is largely excluded from the nucleus, so in the mean image of
a healthy GCaMP-expressing neuron the soma is a thin bright rim around a dark, round nucleus
whose diameter is roughly 0.6-0.8 of the soma's. Where the rim is barely brighter than the
neuropil (dense labelling) the nucleus -- a compact *dark* blob -- is the most visible part of the
cell. This module finds such nuclear shadows as local maxima of the scale-normalised
Laplacian of Gaussian with dark polarity, ``+σ² ∇²G_σ * E`` (Lindeberg 1998), of the
contrast-normalised mean image ``E`` (suite2p's enhanced mean image, Pachitariu et al. 2017),
at the nucleus scale, and keeps only those that look like a nucleus inside a soma:

* the dark centre is enclosed: the rim annulus is brighter than the centre in every one of 8
  directions (a gap between cells, or the dark side-lobe beside a bright cell, is bright on one
  or two sides only);
* the dark blob is compact: the Hessian eigenvalues at the nucleus scale are both positive and
  of similar size (an elongated blood vessel or a dendrite's shadow has one near zero).

Constants are anatomical priors or were chosen on synthetic scenes; see
:mod:`.detection` for what was (and was not) looked at on real labelled data.

References
----------
Lindeberg, T. (1998). Feature detection with automatic scale selection. Int. J. Comput. Vision
30, 79-116.
Pachitariu, M. et al. (2017). Suite2p: beyond 10,000 neurons with standard two-photon
microscopy. bioRxiv 061507.
Chen, T.-W. et al. (2013). Ultrasensitive fluorescent proteins for imaging neuronal activity.
Nature 499, 295-300 (GCaMP6; nuclear exclusion of the cytosolic indicator in healthy cells).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal

__all__ = ["NUCLEUS_FRACTION", "blob_scales", "ring_guard", "ring_map", "soma_diameters"]

#: Nucleus diameter over soma diameter (anatomical prior for cortical neurons, ~0.6-0.8).
NUCLEUS_FRACTION = 0.7
#: Least rim-over-centre contrast in every direction, in units of the local standard deviation
#: of the contrast-normalised image (rejects shallow dips of a flat background).
MIN_RIM_CONTRAST = 0.25
#: Least ratio of the smaller to the larger Hessian eigenvalue of a nuclear shadow.
MIN_EIGEN_RATIO = 0.3


def _annulus(r0: float, r1: float) -> np.ndarray:
    half = math.ceil(r1)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    d = np.hypot(yy, xx)
    k = ((d >= r0) & (d <= r1)).astype(np.float64)
    return k / max(k.sum(), 1.0)


def _eigen_ratio(image: np.ndarray, sigma: float) -> np.ndarray:
    """Smaller over larger Hessian eigenvalue at scale `sigma` (1 for a round dark blob)."""
    hyy = ndimage.gaussian_filter(image, sigma, order=(2, 0))
    hxx = ndimage.gaussian_filter(image, sigma, order=(0, 2))
    hxy = ndimage.gaussian_filter(image, sigma, order=(1, 1))
    mid = 0.5 * (hxx + hyy)
    dev = np.sqrt(0.25 * (hxx - hyy) ** 2 + hxy * hxy)
    big, small = mid + dev, mid - dev
    return np.where(big > 0, small / np.where(big > 0, big, 1.0), -1.0)


def _sector_kernels(r0: float, r1: float, n_sectors: int) -> list[np.ndarray]:
    """Mean kernels of the `n_sectors` angular sectors of the annulus ``r0 <= ρ <= r1``."""
    half = math.ceil(r1)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    d = np.hypot(yy, xx)
    ang = np.floor((np.arctan2(yy, xx) + np.pi) / (2 * np.pi) * n_sectors).astype(int)
    ring = (d >= r0) & (d <= r1)
    out = []
    for k in range(n_sectors):
        kern = (ring & (ang % n_sectors == k)).astype(np.float64)
        out.append(kern / max(kern.sum(), 1.0))
    return out


def ring_guard(
    enhanced: np.ndarray, radius: float, nucleus_fraction: float, n_sectors: int = 8
) -> np.ndarray:
    """Where a dark, round, nucleus-sized centre is *enclosed* by a brighter rim.

    The rim (``0.55 r <= ρ <= 1.05 r``, ``r`` the soma radius) is cut into `n_sectors` angular
    sectors; a nuclear shadow needs every sector's mean brighter than the centre's
    (``ρ <= max(1, 0.35 r)``) by at least ``MIN_RIM_CONTRAST`` local standard deviations (the
    image is contrast-normalised), and the dark blob must be compact (Hessian eigenvalue ratio at
    the nucleus scale at least ``MIN_EIGEN_RATIO``).

    "Brighter in every direction" is what tells a nucleus from the dark side-lobe beside a
    bright cell or a gap between cells, which are bright on one or two sides only. The rule was
    chosen on the synthetic default scene (cells with dimmer nuclei, smooth neuropil), where
    every strong dark blob is such a gap: all 8 sectors kept 1 of 88 of them, 7 of 8 kept 11,
    6 of 8 kept 27, and the contrast margin removes shallow dips of a flat background. The rim
    is *not* required to be brighter than the
    surround: in densely labelled tissue it is often no brighter than the neuropil.
    """
    rn = nucleus_fraction * radius
    e = np.asarray(enhanced, np.float64)

    def mean_over(kernel: np.ndarray) -> np.ndarray:
        return signal.fftconvolve(e, kernel, mode="same")

    centre = mean_over(_annulus(0.0, max(1.0, 0.35 * radius)))
    enclosed = np.ones(e.shape, bool)
    for kern in _sector_kernels(0.55 * radius, 1.05 * radius, n_sectors):
        enclosed &= mean_over(kern) > centre + MIN_RIM_CONTRAST
    compact = _eigen_ratio(e, rn / math.sqrt(2.0)) >= MIN_EIGEN_RATIO
    return enclosed & compact


def ring_map(
    enhanced: np.ndarray, radius: float, nucleus_fraction: float = NUCLEUS_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Nuclear-shadow response ``+σ² ∇²G_σ * E`` at ``σ = f r / √2`` and its guard mask.

    Returns the raw response (float64; robust z-scored by the caller) and the boolean mask of
    :func:`ring_guard`.
    """
    e = np.asarray(enhanced, np.float64)
    sigma = max(0.7, nucleus_fraction * radius / math.sqrt(2.0))
    response = sigma**2 * ndimage.gaussian_laplace(e, sigma)
    return response, ring_guard(e, radius, nucleus_fraction)


def soma_diameters(
    enhanced: np.ndarray, sigmas: np.ndarray, nucleus_fraction: float = NUCLEUS_FRACTION
) -> np.ndarray:
    """Soma diameters (px) implied by the strongest filled blobs and verified nuclear shadows.

    Filled somata: ``d = 2√2 σ`` at the best bright scale; ring somata: the nucleus diameter
    ``2√2 σ`` at the best dark scale over `nucleus_fraction`, for the dark blobs that pass
    the point form of :func:`ring_guard` without its soma-vs-surround term (centre darker than
    the rim, compact), so nuclei in dense tissue count. In each polarity the strongest
    maxima (top 30 %, at least 10, at least a quarter of the strongest) are used.
    """
    out = []
    for polarity in (1, -1):
        k, y, x, strength = blob_scales(enhanced, sigmas, polarity)
        if k.size == 0:
            continue
        top = np.argsort(strength)[::-1][: max(10, int(0.3 * k.size))]
        top = top[strength[top] >= 0.25 * strength[top[0]]]
        d = 2 * math.sqrt(2) * sigmas[k[top]]
        if polarity < 0:
            ok = np.array(
                [
                    _point_guard(enhanced, y[i], x[i], dn / nucleus_fraction / 2, nucleus_fraction)
                    for i, dn in zip(top, d, strict=True)
                ],
                bool,
            )
            d = d[ok] / nucleus_fraction
        out.append(d)
    return np.concatenate(out) if out else np.zeros(0)


def _point_guard(e: np.ndarray, y: int, x: int, radius: float, nucleus_fraction: float) -> bool:
    """:func:`ring_guard` at one point (soma radius `radius`)."""
    rn = nucleus_fraction * radius
    half = math.ceil(radius + 1.5)
    y0, x0 = max(0, y - half), max(0, x - half)
    w = e[y0 : y + half + 1, x0 : x + half + 1]
    yy, xx = np.mgrid[y0 : y0 + w.shape[0], x0 : x0 + w.shape[1]]
    d = np.hypot(yy - y, xx - x)
    centre, rim = w[d <= max(1.0, 0.6 * rn)], w[(d >= rn) & (d <= radius + 0.5)]
    if centre.size == 0 or rim.size == 0 or not rim.mean() > centre.mean():
        return False
    sigma = rn / math.sqrt(2.0)
    pad = math.ceil(4 * sigma) + 1
    ya, xa = max(0, y - pad), max(0, x - pad)
    patch = e[ya : y + pad + 1, xa : x + pad + 1]
    return bool(_eigen_ratio(patch, sigma)[y - ya, x - xa] >= MIN_EIGEN_RATIO)


def blob_scales(
    enhanced: np.ndarray, sigmas: np.ndarray, polarity: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scale-space maxima of ``∓σ² ∇²G_σ * E`` (polarity +1 bright, -1 dark).

    Returns ``(scale index, y, x, strength)`` of the maxima inside the scale range (a maximum at
    either end of the range is no scale estimate).
    """
    stack = np.stack([-polarity * s * s * ndimage.gaussian_laplace(enhanced, s) for s in sigmas])
    peaks = stack == ndimage.maximum_filter(stack, size=(3, 5, 5), mode="nearest")
    peaks &= stack > 0
    peaks[0] = peaks[-1] = False
    k, y, x = np.nonzero(peaks)
    return k, y, x, stack[k, y, x]

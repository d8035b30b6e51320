"""Detection's images: band-passed binned frames, the activity and anatomy maps, the cell size.

The activity map is CaImAn/CNMF-E's ``correlation x PNR`` seed image as robust z-scores; the
anatomy map is the scale-normalised Laplacian-of-Gaussian of the contrast-normalised mean image
(blobs) plus the nuclear-shadow map of ring-shaped somata (:mod:`.rings`). Everything here works
on in-memory numpy arrays of bounded size (the temporally binned movie of :mod:`.binned_store`);
:func:`~napari_calcium.core.rois.detection.detect.detect_rois` assembles them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .rings import ring_map, soma_diameters

__all__ = [
    "activity_map",
    "anatomy_map",
    "bandpass_frames",
    "estimate_diameter",
    "local_contrast",
    "robust_z",
]


def robust_z(image: np.ndarray) -> np.ndarray:
    """``(image - median) / (1.4826 MAD)`` in float32 (a MAD of 0 falls back to the std)."""
    img = np.asarray(image, np.float64)
    med = float(np.median(img))
    mad = 1.4826 * float(np.median(np.abs(img - med)))
    if not mad > 0:
        mad = float(img.std()) or 1.0
    return ((img - med) / mad).astype(np.float32)


def bandpass_frames(binned: np.ndarray, sigma_small: float, sigma_large: float) -> np.ndarray:
    """Difference of Gaussians of every frame, in place, ``G(σs) * f - G(σl) * f`` (float32).

    Removes the smooth neuropil/background (scale ``σl``) and pixel noise (scale ``σs``), as the
    spatial high-pass of suite2p's detection and the centred kernel of CNMF-E do. Both blurs are
    the separable numba Gaussian of :func:`~napari_calcium.core.movie.filters.gaussian_filter`
    (scipy's kernel and ``reflect`` boundary, on every core), the large one truncated at 3 σ.
    """
    from ...movie.filters import gaussian_filter

    step = 64  # spatial filters: frame blocks are exact and keep the extra memory small
    for start in range(0, binned.shape[0], step):
        block = binned[start : start + step]
        low = gaussian_filter(block, sigma=(0.0, sigma_large, sigma_large), truncate=3.0)
        if sigma_small > 0:
            block[...] = gaussian_filter(block, sigma=(0.0, sigma_small, sigma_small))
        block -= low
    return binned


def local_contrast(image: np.ndarray, sigma: float) -> np.ndarray:
    """Image minus its local mean over its local standard deviation (scale `sigma`, px).

    The "enhanced mean image" idea of suite2p: uneven illumination and expression are flattened,
    so a dim soma in a dim region counts as much as a bright one in a bright region.
    """
    img = np.asarray(image, np.float64)
    hp = img - ndimage.gaussian_filter(img, sigma, mode="reflect")
    sd = np.sqrt(ndimage.gaussian_filter(hp * hp, 2 * sigma, mode="reflect"))
    floor = max(float(np.median(sd)) * 0.1, 1e-12)
    return (hp / np.maximum(sd, floor)).astype(np.float32)


def anatomy_map(
    mean_image: np.ndarray, radius_px: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blob and ring responses of the contrast-normalised mean image at the soma scale.

    Returns
    -------
    blob : ndarray, shape (y, x), float32
        Robust z-score of ``-σ² ∇²G_σ * E`` with ``σ = r / √2`` (the scale at which a disk of
        radius ``r`` gives its largest normalised LoG response; Lindeberg 1998) and ``E`` the
        contrast-normalised mean image: somata with a filled (bright) centre.
    ring : ndarray, shape (y, x), float32
        Robust z-score of the nuclear-shadow response ``+σ² ∇²G_σ * E`` at the nucleus scale
        ``σ = f r / √2`` (:func:`~.rings.ring_map`), clipped to at most 0 where the
        ring guard fails: somata whose indicator is excluded from the nucleus (dark centre,
        bright cytoplasmic rim), the usual look of healthy GCaMP-expressing cells.
    enhanced : ndarray, shape (y, x), float32
        ``E`` smoothed by a Gaussian of ``min(1, r/4)`` px (used to outline inactive somata).
    """
    enhanced = local_contrast(mean_image, 2.0 * radius_px)
    sigma = radius_px / math.sqrt(2.0)
    e64 = enhanced.astype(np.float64)
    log = -(sigma**2) * ndimage.gaussian_laplace(e64, sigma)
    smooth = ndimage.gaussian_filter(enhanced, min(1.0, radius_px / 4))
    # the nuclear-shadow cue works on a broader high-pass (4 r = 2 d): at the soma scale the
    # normalisation itself digs dark side-lobes beside bright cells, which look like nuclei
    broad = local_contrast(mean_image, 4.0 * radius_px).astype(np.float64)
    ring, guard = ring_map(broad, radius_px)
    # the guard is judged at the dark blob's centre (a local maximum of the response), not at
    # any pixel of its flank, where a lopsided neighbourhood could pass it by chance
    z_raw = robust_z(ring)
    centres = (z_raw == ndimage.maximum_filter(z_raw, size=3, mode="nearest")) & guard
    z_ring = np.where(centres, z_raw, np.minimum(z_raw, 0.0)).astype(np.float32)
    return robust_z(log), z_ring, smooth.astype(np.float32)


def activity_map(correlation: np.ndarray, pnr: np.ndarray) -> np.ndarray:
    """Robust z-score of ``correlation x PNR`` (CaImAn/CNMF-E's seed image), float32."""
    return robust_z(np.clip(correlation, 0, None) * np.clip(pnr, 0, None))


def estimate_diameter(
    mean_image: np.ndarray, *, min_px: float = 4.0, max_px: float = 40.0
) -> float:
    """Typical soma diameter (px) from the scale of maximal normalised LoG response.

    Blobs are the strongest local maxima of the scale-normalised Laplacian of Gaussian of the
    contrast-normalised mean image over scales ``σ`` from ``min_px/(2√2)`` to ``max_px/(2√2)``;
    each blob's best scale gives a diameter ``2√2 σ``; the median over the strongest blobs is
    returned (Lindeberg 1998, "Feature detection with automatic scale selection").
    """
    shape = mean_image.shape
    max_px = min(max_px, max(min_px + 1, min(shape) / 3))
    sigmas = np.geomspace(min_px / (2 * math.sqrt(2)), max_px / (2 * math.sqrt(2)), 14)
    enhanced = local_contrast(mean_image, max_px).astype(np.float64)
    d = soma_diameters(enhanced, sigmas)
    if d.size == 0:
        return float(np.sqrt(min_px * max_px))
    return float(np.median(d))

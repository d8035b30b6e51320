"""Building blocks of :func:`napari_calcium.core.rois.detection.detect.detect_rois`.

Summary images (band-passed binned movie, activity and anatomy maps), the cell-size estimate,
seeds, seeded growth and the de-duplication of overlapping candidates. Everything here works on
in-memory numpy arrays of bounded size (the temporally binned movie); reading the movie itself
is done by :mod:`.detection` through :func:`~napari_calcium.core.movie.reshape.bin_frames`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .rings import ring_map, soma_diameters

__all__ = [
    "Candidate",
    "activity_map",
    "anatomy_map",
    "bandpass_frames",
    "estimate_diameter",
    "find_seeds",
    "grow_all",
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
        ``σ = f r / √2`` (:func:`~._detection_rings.ring_map`), clipped to at most 0 where the
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


def find_seeds(z: np.ndarray, threshold: float, min_distance: int) -> np.ndarray:
    """Local maxima of `z` above `threshold`, ``(n, 2)`` int (y, x), strongest first."""
    size = 2 * max(1, int(min_distance)) + 1
    is_max = (z == ndimage.maximum_filter(z, size=size, mode="nearest")) & (z >= threshold)
    y, x = np.nonzero(is_max)
    order = np.argsort(z[y, x])[::-1]
    return np.stack([y[order], x[order]], axis=1)


@dataclass
class Candidate:
    """One grown ROI: pixel coordinates, weights and scores."""

    ypix: np.ndarray
    xpix: np.ndarray
    lam: np.ndarray
    scores: dict[str, float] = field(default_factory=dict)


def _disk(shape: tuple[int, int], center: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius * radius


def _component(mask: np.ndarray, seed: tuple[int, int], near: np.ndarray) -> np.ndarray:
    """Connected component of `mask` that holds `seed` (else the largest touching `near`)."""
    lab, n = ndimage.label(mask)
    if n == 0:
        return mask
    keep = lab[seed]
    if keep == 0:
        hits = np.bincount(lab[near & mask], minlength=n + 1)
        hits[0] = 0
        keep = int(np.argmax(hits))
        if hits[keep] == 0:
            return np.zeros_like(mask)
    return ndimage.binary_fill_holes(lab == keep)


def _regress(traces: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation and regression slope of each column of `traces` (T, p) on `ref`."""
    t = traces - traces.mean(axis=0)
    r = ref - ref.mean()
    rr = float((r * r).sum())
    cov = r @ t
    den = np.sqrt((t * t).sum(axis=0) * rr)
    corr = np.zeros(t.shape[1], np.float32)
    ok = den > 0
    corr[ok] = cov[ok] / den[ok]
    slope = cov / rr if rr > 0 else np.zeros(t.shape[1], np.float32)
    return corr, slope.astype(np.float32)


def _edge_fraction(mask: np.ndarray, seed: tuple[int, int], radius: float) -> float:
    """Share of the outer ring of the search disk that `mask` covers (1: the ROI is unbounded)."""
    ring = _disk(mask.shape, seed, _REACH * radius) & ~_disk(mask.shape, seed, _EDGE * radius)
    return float(mask[ring].mean()) if ring.any() else 0.0


#: An ROI may reach this many expected radii from its seed; its outer ring starts at _EDGE.
_REACH, _EDGE = 1.6, 1.4


def _grow_activity(
    window: np.ndarray, seed: tuple[int, int], radius: float, min_corr: float
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Pixels of `window` (T, wy, wx) that carry the seed's signal: (mask, weights, corr).

    Each pixel's trace is regressed on the ROI trace; the slope is the footprint estimate
    (CNMF's spatial update for one component, without the non-negativity constraint). Pixels
    with a slope of at least half the footprint's peak and a correlation of at least `min_corr`
    that connect to the seed form the ROI; this runs twice, the second time from the ROI's
    footprint-weighted trace.
    """
    t, wy, wx = window.shape
    flat = window.reshape(t, wy * wx)
    core = _disk((wy, wx), seed, max(1.0, radius / 2))
    near = _disk((wy, wx), seed, _REACH * radius)
    ref = flat[:, core.ravel()].mean(axis=1)
    mask = lam = None
    for _ in range(2):  # grow, then re-grow from the ROI's weighted mean trace
        corr, slope = _regress(flat, ref)
        corr, slope = corr.reshape(wy, wx), slope.reshape(wy, wx)
        if float(np.percentile(corr[core], 75)) < min_corr:
            return None
        peak = float(np.percentile(slope[near], 95))
        if not peak > 0:
            return None
        grown = (slope >= 0.5 * peak) & (corr >= min_corr) & near
        grown = _component(grown, seed, core)
        if not grown.any():
            return None
        mask, lam = grown, np.clip(slope / peak, 0.05, 1.0)
        ref = flat[:, mask.ravel()] @ lam[mask]
    if _edge_fraction(mask, seed, radius) > 0.5:
        return None
    return mask, lam, float(np.mean(corr[mask]))


def _grow_anatomy(
    enhanced: np.ndarray, seed: tuple[int, int], radius: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Bright blob around `seed` in the contrast-normalised mean image: half-maximum outline."""
    wy, wx = enhanced.shape
    near = _disk((wy, wx), seed, _REACH * radius)
    core = _disk((wy, wx), seed, max(1.0, radius * 0.7))
    ring = near & ~_disk((wy, wx), seed, 1.0 * radius)
    peak = float(np.percentile(enhanced[core], 90))
    base = float(np.median(enhanced[ring | ~near]))
    if not peak > base:
        return None
    grown = (enhanced >= base + 0.5 * (peak - base)) & near
    grown = _component(grown, seed, core)
    if not grown.any() or _edge_fraction(grown, seed, radius) > 0.5:
        return None
    lam = np.clip((enhanced - base) / (peak - base), 0.05, 1.0)
    return grown, lam


#: A ring (nuclear-shadow) ROI may share at most this fraction of its disk with stronger ROIs.
_MAX_RING_OVERLAP = 0.25


def _grow_ring(
    taken: np.ndarray, seed: tuple[int, int], radius: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """A ring-shaped soma: the disk of the expected radius around its nucleus (nucleus included).

    The rim of such a soma is too thin and dim to outline reliably, so the soma is the disk of
    the expected (or estimated) diameter centred on the nuclear shadow. A disk that overlaps
    ROIs already found by more than ``_MAX_RING_OVERLAP`` is rejected: a dark gap between bright
    cells is no nucleus.
    """
    mask = _disk(taken.shape, seed, radius + 0.25)
    if float(taken[mask].mean()) > _MAX_RING_OVERLAP:
        return None
    return mask, np.ones(mask.shape, np.float32)


def grow_all(
    seeds: np.ndarray,
    *,
    bandpassed: np.ndarray,
    enhanced: np.ndarray,
    z_activity: np.ndarray,
    z_anatomy: np.ndarray,
    z_ring: np.ndarray,
    ring_threshold: float = 3.0,
    radius: float,
    min_corr: float,
    activity_threshold: float,
    area_range: tuple[float, float],
    max_compactness: float,
    should_stop=None,
) -> list[Candidate]:
    """Grow one ROI from each seed, strongest first; pixels already taken are not reused.

    A seed on the activity map (z-score at least `activity_threshold`) whose core pixels follow
    its trace (correlation at least `min_corr`) is grown by correlation; any other seed is
    outlined in the enhanced mean image.
    """
    ny, nx = enhanced.shape
    half = math.ceil(_REACH * radius) + 1
    taken = np.zeros((ny, nx), bool)
    out: list[Candidate] = []
    expected = math.pi * radius * radius
    for i, (y, x) in enumerate(seeds):
        if should_stop is not None and i % 64 == 0 and should_stop():
            from ....errors import OperationCancelled

            raise OperationCancelled(f"ROI detection stopped after {i} of {len(seeds)} seeds")
        if taken[y, x]:
            continue
        y0, y1, x0, x1 = (
            max(0, y - half),
            min(ny, y + half + 1),
            max(0, x - half),
            min(nx, x + half + 1),
        )
        s = (int(y - y0), int(x - x0))
        grown = None
        if z_activity[y, x] >= activity_threshold:
            grown = _grow_activity(bandpassed[:, y0:y1, x0:x1], s, radius, min_corr)
        if grown is not None:
            mask, lam, peak = grown
            kind = 1.0
        else:
            if z_ring[y, x] >= ring_threshold and z_ring[y, x] > z_anatomy[y, x]:
                anat = _grow_ring(taken[y0:y1, x0:x1], s, radius)
            else:
                anat = _grow_anatomy(enhanced[y0:y1, x0:x1], s, radius)
            if anat is None:
                continue
            mask, lam = anat
            peak, kind = 0.0, 0.0
        mask &= ~taken[y0:y1, x0:x1]
        area = int(mask.sum())
        if not (area_range[0] * expected <= area <= area_range[1] * expected):
            continue
        yy, xx = np.nonzero(mask)
        cy, cx = yy.mean(), xx.mean()
        mean_d = np.hypot(yy - cy, xx - cx).mean()
        compact = mean_d / max(0.5, (2.0 / 3.0) * math.sqrt(area / math.pi))
        if compact > max_compactness:
            continue
        taken[y0:y1, x0:x1] |= mask
        out.append(
            Candidate(
                (yy + y0).astype(np.int64),
                (xx + x0).astype(np.int64),
                lam[yy, xx].astype(np.float32),
                {
                    "activity": float(z_activity[y, x]),
                    "blob": float(z_anatomy[y, x]),
                    "ring": float(z_ring[y, x]),
                    "seed_corr": peak,
                    "grown_by_activity": kind,
                },
            )
        )
    return out

"""Detection's candidates: seeds, seeded growth of each ROI and de-duplication.

Seeds are the local maxima of the activity or anatomy map (:mod:`.maps`) above a threshold; each
grows into a candidate ROI (from the correlation of binned traces with the seed for activity,
from the mean image for anatomy, as an annulus for ring-shaped somata), and overlapping
candidates are de-duplicated. Everything works on in-memory numpy arrays of bounded size;
:func:`~napari_calcium.core.rois.detection.detect.detect_rois` drives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

__all__ = ["Candidate", "find_seeds", "grow_all"]


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

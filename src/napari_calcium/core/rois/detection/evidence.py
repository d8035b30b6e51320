"""Evidence that a detected candidate is a cell and not noise; merging; recording checks.

Detection's seeds are local maxima of robust z-score maps, so a movie of pure noise still has
seeds, and a noisy real movie has many chance ones. Each candidate is therefore tested against
what noise alone would give, with the number of chances noise had:

* **activity** (ROIs grown by trace correlation): the peak of the band-passed, binned trace of
  the disk of the expected diameter at the ROI's centroid (not the grown outline, whose pixels
  were chosen for following the seed's noise), smoothed over one event window, in units of the
  trace's own baseline noise σ (taken from the half of the samples below the median, which
  calcium transients do not reach). Under the null (no transient, Gaussian noise) the largest of
  ``n / w`` independent smoothed samples exceeds ``z* = Φ⁻¹(1 - p / (n / w))`` with probability
  ``≈ p``; a candidate needs ``z ≥ z*``. This is CaImAn's event-exceptionality test
  (``compute_event_exceptionality``: the probability of the trace's largest multi-sample event
  under a noise model fitted to the baseline) with the threshold set by the number of
  independent samples (times the soma-sized places the seed was the best of) instead of a fixed
  ``min_SNR``.
* **anatomy** (ROIs outlined in the mean image): the same disk's contrast to its surround in the
  mean image (for ring somata: the rim against the nuclear shadow), over its standard error from
  the pixels' temporal noise, ``σ_pixel / √n``. Under the null a chance blob reaches
  ``z* = Φ⁻¹(1 - p / m)`` with ``m`` the number of soma-sized places in the image.
* **merging**: neighbouring activity ROIs whose traces correlate above a threshold are one cell
  (split by the growth); they are merged (suite2p and CaImAn both merge overlapping components
  with correlated traces, Pachitariu et al. 2017, Giovannucci et al. 2019).

:func:`recording_check` tells whether the movie is long and clean enough for activity-based
detection at all (see :class:`~napari_calcium.errors.DetectionWarning`).

References
----------
Giovannucci, A. et al. (2019). CaImAn an open source tool for scalable calcium imaging data
analysis. eLife 8, e38173.
Pachitariu, M. et al. (2017). Suite2p: beyond 10,000 neurons with standard two-photon
microscopy. bioRxiv 061507.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.special import ndtri

__all__ = [
    "RecordingCheck",
    "anatomy_z",
    "event_z",
    "null_threshold",
    "pixel_noise",
    "recording_check",
    "roi_traces",
]


def null_threshold(p_value: float, n_chances: float) -> float:
    """``Φ⁻¹(1 - p / n)``: what the largest of ``n`` independent N(0, 1) draws exceeds w.p. ~p.

    Parameters
    ----------
    p_value : float
        False-positive probability per candidate, in (0, 1).
    n_chances : float
        Number of independent chances noise had (samples, or places in the image); >= 1.

    Returns
    -------
    float
        The z threshold.

    Examples
    --------
    >>> round(null_threshold(0.05, 1), 3), round(null_threshold(0.001, 1000), 2)
    (1.645, 4.75)
    """
    n = max(1.0, float(n_chances))
    return float(-ndtri(float(p_value) / n))


def pixel_noise(binned: Any, block: int = 64) -> np.ndarray:
    """Temporal noise σ of every pixel of a ``(frames, y, x)`` movie, from frame differences.

    ``σ = sqrt(mean(Δf²) / 2)``: the noise of one frame when successive frames' noise is
    independent and the signal changes little from frame to frame (calcium transients are slow).
    Read in frame blocks (works on :class:`~.binned_store.SpilledMovie`).

    Parameters
    ----------
    binned : array_like, shape (frames, y, x)
        At least 2 frames.
    block : int
        Frames per read.

    Returns
    -------
    numpy.ndarray, shape (y, x), float64
    """
    n = int(binned.shape[0])
    acc = np.zeros(binned.shape[1:], np.float64)
    prev = None
    for start in range(0, n, block):
        arr = np.asarray(binned[start : min(n, start + block)], np.float64)
        if prev is not None:
            acc += (arr[0] - prev) ** 2
        acc += (np.diff(arr, axis=0) ** 2).sum(axis=0)
        prev = arr[-1]
    return np.sqrt(acc / max(1, n - 1) / 2.0)


def roi_traces(binned: Any, footprints: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
               block: int = 256) -> np.ndarray:  # fmt: skip
    """Weighted mean trace of each footprint ``(ypix, xpix, lam)``, shape ``(frames, n)``."""
    n = int(binned.shape[0])
    out = np.zeros((n, len(footprints)), np.float64)
    if not footprints:
        return out
    for start in range(0, n, block):
        arr = np.asarray(binned[start : min(n, start + block)], np.float32)
        for j, (ypix, xpix, lam) in enumerate(footprints):
            w = lam.astype(np.float64) / float(lam.sum())
            out[start : start + len(arr), j] = arr[:, ypix, xpix] @ w
    return out


def event_z(traces: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Peak of each trace smoothed over `window` samples, in baseline-noise units.

    Parameters
    ----------
    traces : numpy.ndarray, shape (frames, n)
    window : int
        Boxcar length in samples (one calcium event's typical duration).

    Returns
    -------
    z : numpy.ndarray, shape (n,)
        ``(max(s) - median(s)) / σ`` with ``s`` the smoothed trace and ``σ`` the root mean square
        of ``s - median(s)`` over the samples below the median (the half-normal estimate, which
        positive transients do not inflate).
    n_independent : numpy.ndarray, shape (n,)
        ``frames / window``, the number of independent smoothed samples.
    """
    t = np.asarray(traces, np.float64)
    w = max(1, min(int(window), t.shape[0]))
    s = ndimage.uniform_filter1d(t, w, axis=0, mode="nearest") if w > 1 else t
    med = np.median(s, axis=0)
    dev = s - med
    low = np.where(dev < 0, dev, np.nan)
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(np.nanmean(low * low, axis=0))
    peak = dev.max(axis=0)
    z = np.where(sigma > 0, peak / np.where(sigma > 0, sigma, 1.0), 0.0)
    return z, np.full(t.shape[1], t.shape[0] / w)


def _disk(shape: tuple[int, int], center: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius * radius


def anatomy_z(
    mean_image: np.ndarray,
    sd_mean: np.ndarray,
    footprint: tuple[np.ndarray, np.ndarray, np.ndarray],
    taken: np.ndarray,
    radius: float,
    *,
    ring: bool,
) -> float:
    """Contrast of one ROI in the mean image over its standard error from temporal noise.

    Parameters
    ----------
    mean_image : numpy.ndarray, shape (y, x)
    sd_mean : numpy.ndarray, shape (y, x)
        Standard error of each mean-image pixel (``σ_pixel / √frames``).
    footprint : (ypix, xpix, lam)
        The ROI.
    taken : numpy.ndarray of bool, shape (y, x)
        Pixels of all candidates (left out of a filled ROI's surround).
    radius : float
        Expected soma radius, px.
    ring : bool
        True for a ring-shaped soma (disk around a nuclear shadow): the contrast is the rim
        (``0.7 r`` to ``r``) minus the nucleus (within ``0.5 r``); otherwise the ROI minus the
        surround ring (1 to ``1 + r`` px outside the ROI's equivalent disk, other ROIs excluded).

    Returns
    -------
    float
        The z-score (0 when a region is empty).
    """
    ypix, xpix, _ = footprint
    shape = mean_image.shape
    cy, cx = float(ypix.mean()), float(xpix.mean())
    half = math.ceil(3 * radius) + 2
    y0, y1 = max(0, int(cy) - half), min(shape[0], int(cy) + half + 1)
    x0, x1 = max(0, int(cx) - half), min(shape[1], int(cx) + half + 1)
    win, sd = mean_image[y0:y1, x0:x1], sd_mean[y0:y1, x0:x1]
    c = (cy - y0, cx - x0)
    if ring:
        inner = _disk(win.shape, c, 0.5 * radius)
        outer = _disk(win.shape, c, radius) & ~_disk(win.shape, c, 0.7 * radius)
        a, b = outer, inner
    else:
        mask = np.zeros(win.shape, bool)
        mask[ypix - y0, xpix - x0] = True
        r_roi = math.sqrt(len(ypix) / math.pi)
        sur = _disk(win.shape, c, r_roi + 1 + radius) & ~_disk(win.shape, c, r_roi + 1)
        a, b = mask, sur & ~taken[y0:y1, x0:x1]
    if a.sum() < 2 or b.sum() < 2:
        return 0.0
    se = math.sqrt(float(np.mean(sd[a] ** 2)) / a.sum() + float(np.mean(sd[b] ** 2)) / b.sum())
    if not se > 0:
        return 0.0
    return (float(win[a].mean()) - float(win[b].mean())) / se


@dataclass(frozen=True)
class RecordingCheck:
    """Whether a movie can support activity-based detection, with the numbers behind it.

    Attributes
    ----------
    n_frames : int
        Frames of the movie.
    n_samples : int
        Independent samples of a soma's trace (binned frames over the event window).
    duration_s : float or None
        Length in seconds (None without a frame rate).
    noise_dff : float
        Noise σ of a soma-sized ROI's trace per binned sample, as a fraction of its mean
        brightness (median over the image; ``σ_pixel / F / √(π r²)``).
    min_dff : float
        Smallest event (ΔF/F, smoothed over the event window) the activity test can accept:
        ``z* x noise_dff / √window``.
    reasons : tuple of str
        Why activity-based detection is unreliable here; empty when it is fine.
    """

    n_frames: int
    n_samples: int
    duration_s: float | None
    noise_dff: float
    min_dff: float
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when nothing argues against activity-based detection."""
        return not self.reasons

    def message(self) -> str:
        """One line for a status bar or a warning."""
        text = "activity-based ROI detection is unreliable: " + "; ".join(self.reasons)
        if not any(r.startswith("too noisy") for r in self.reasons):
            text += (
                f" [noise of a soma-sized trace {100 * self.noise_dff:.3g} % ΔF/F per sample, "
                f"smallest significant event {100 * self.min_dff:.3g} % ΔF/F]"
            )
        return text + "; the ROIs rest mostly on the mean image"

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers and strings (for a result's parameters)."""
        return {
            "n_frames": self.n_frames,
            "n_samples": self.n_samples,
            "duration_s": self.duration_s,
            "noise_dff": round(self.noise_dff, 4),
            "min_dff": round(self.min_dff, 4),
            "reasons": list(self.reasons),
        }


#: Fewest independent samples (binned frames / event window) for activity-based detection.
#: (20: 10 s of 0.5 s events, the shortest recording of the synthetic sweep, found in full.)
MIN_SAMPLES = 20
#: Largest smallest-detectable event, ΔF/F: above it only bursts of several spikes can be told
#: from noise (one action potential gives ~10-25 % ΔF/F with GCaMP6, Chen et al. 2013, Nature
#: 499, 295-300). The synthetic sweep's recordings need 1-6 %, the neurofinder crop 30 % (at
#: 7.5 Hz), the 10-frame Bruker folder 47 % (with 4-frame events; it is too short anyway).
#: ``noise_dff`` divides by the mean brightness including any dark offset, so it errs low.
MAX_MIN_DFF = 0.5


def recording_check(
    n_frames: int,
    n_samples: int,
    window: int,
    fs_binned: float | None,
    mean_image: np.ndarray,
    sd_pixel: np.ndarray,
    radius: float,
    z_star: float,
) -> RecordingCheck:
    """Whether the recording is long and clean enough for activity-based detection.

    Parameters
    ----------
    n_frames : int
        Frames of the movie.
    n_samples : int
        Binned frames.
    window : int
        Event window, binned frames.
    fs_binned : float or None
        Rate of the binned frames (None: unknown).
    mean_image, sd_pixel : numpy.ndarray, shape (y, x)
        Mean image and per-pixel temporal noise σ of the binned frames.
    radius : float
        Expected soma radius, px.
    z_star : float
        The activity test's threshold for this recording.

    Returns
    -------
    RecordingCheck
    """
    n_indep = n_samples // max(1, window)
    base = np.asarray(mean_image, np.float64)
    ok = np.isfinite(base) & (base > 0) & np.isfinite(sd_pixel)
    if ok.any():
        level = float(np.percentile(base[ok], 50))
        bright = ok & (base >= level)
        ratio = float(np.median(sd_pixel[bright] / base[bright]))
    else:
        ratio = float("inf")
    noise_dff = ratio / math.sqrt(max(1.0, math.pi * radius * radius))
    min_dff = z_star * noise_dff / math.sqrt(max(1, window))
    duration = None if fs_binned is None else n_samples / fs_binned
    reasons = []
    if n_indep < MIN_SAMPLES:
        length = f"{n_frames} frames" + ("" if duration is None else f" ({duration:.3g} s)")
        reasons.append(
            f"too short: {length} give {n_indep} independent samples of a trace "
            f"(activity detection needs >= {MIN_SAMPLES})"
        )
    if min_dff > MAX_MIN_DFF:
        reasons.append(
            f"too noisy: a soma-sized ROI's noise is {100 * noise_dff:.3g} % ΔF/F per sample, so "
            f"only events above {100 * min_dff:.3g} % ΔF/F can be told from noise (z >= "
            f"{z_star:.2f}; limit {100 * MAX_MIN_DFF:.0f} %)"
        )
    return RecordingCheck(int(n_frames), int(n_indep), duration, noise_dff, min_dff,
                          tuple(reasons))  # fmt: skip

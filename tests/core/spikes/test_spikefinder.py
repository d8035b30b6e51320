"""Real ground truth: spikefinder training datasets 4 (OGB-1), 5 (GCaMP6s), 6 (GCaMP5k?).

Our default ``deconvolve`` (oasis-ar1, λ = 0, calibrated activity) must beat the smoothed
positive derivative (σ 200 ms), the strongest simple baseline, on every dataset, computed here on
the same cells; the floors are the best peer's score in the issue (suite2p 0.58 on dataset 6)
or just under ours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.spikes.deconvolution.evaluation import spikefinder_correlation

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "spikefinder_groundtruth"
FS = 100.0
INDICATOR = {4: "OGB-1", 5: "GCaMP6s", 6: None}
# measured 0.406 / 0.405 / 0.541 since issue 18 (the AR(1) delay is measured from the data,
# min(0.3 x rise, 0.1 s), and τ_d is the geometric mean of the preset's and the data's: 0.381 on
# set 5 with τ_d fixed; before, the preset's rise was the delay: 0.419 / 0.421 / 0.611. Without
# an indicator these sets scored 0.395 / 0.279 / 0.539 before and 0.386 / 0.408 / 0.514 now, and
# the nine-set means rose: see docs/spikes.md, "Timing, kinetics and noise from the data")
FLOOR = {4: 0.39, 5: 0.38, 6: 0.52}

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"no spikefinder data in {DATA}")


def _read(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()[1:]
    rows = [[float(v) if v.strip() else np.nan for v in r.split(",")] for r in lines if r.strip()]
    return np.asarray(rows).T


@pytest.mark.parametrize("n", [4, 5, 6])
def test_default_beats_smoothed_derivative(n):
    calcium = _read(DATA / f"{n}.train.calcium.csv")
    spikes = _read(DATA / f"{n}.train.spikes.csv")
    ours, deriv = [], []
    for c, s in zip(calcium, spikes, strict=True):
        keep = np.isfinite(c) & np.isfinite(s)
        c, s = c[keep], s[keep]
        # dataset 6's indicator is uncertain: it gets the τ suite2p is given by default
        kin = {"indicator": INDICATOR[n]} if INDICATOR[n] else {"tau_decay_s": 1.0}
        act = deconvolve(c, frame_rate_hz=FS, **kin).activity[0]
        d = np.clip(np.diff(gaussian_filter1d(c, 0.2 * FS), prepend=c[0]), 0, None)
        ours.append(spikefinder_correlation(act, s, frame_rate_hz=FS))
        deriv.append(spikefinder_correlation(d, s, frame_rate_hz=FS))
    ours_mean, deriv_mean = np.mean(ours), np.mean(deriv)
    assert ours_mean > deriv_mean + 0.015, (ours_mean, deriv_mean)
    assert ours_mean > FLOOR[n]

"""How the two free parameters of ``deconvolve``'s activity were fitted, and cross-validated.

The calibrated activity (:mod:`napari_calcium.core.spikes.deconvolution.activity`) has two free
parameters: the smallest smoothing σ (``DEFAULT_MIN_SIGMA_S``) and the compression exponent
(``DEFAULT_EXPONENT``). They are chosen on the spikefinder training datasets 4, 5 and 6 from a grid
(σ 0.02-0.08 s × exponent 0.5 / 0.75 / 1) by the mean over datasets of the per-dataset mean
correlation (40 ms bins). Because that fit sees every cell, the scores that count are
cross-validated:

* **leave-one-cell-out**: for each cell, refit the grid without that cell, score the cell;
* **leave-one-dataset-out**: fit on the other two datasets, score the third (harder: three
  datasets, three indicators).

``s`` comes from ``deconvolve`` with its defaults (oasis-ar1, λ = 0, the indicator presets for
datasets 4 and 5 and τ_d = 1 s for dataset 6); only the smoothing of ``s`` varies, so the grid is
cheap. Rows: the chosen parameters fitted on all cells, LOCO and LODO per dataset, and the shipped
default. Run it: ``python benchmarks/run.py --only spikefinder_cv``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from _harness.peers import skipped_row
from _harness.results import Row
from _harness.timing import time_call
from bench_spikefinder import DATASETS, FS, data_dir, load_dataset
from napari_calcium.core.spikes.deconvolution.activity import (
    DEFAULT_EXPONENT,
    DEFAULT_MIN_SIGMA_S,
    effective_bandwidth_hz,
    smooth_activity,
)
from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.spikes.deconvolution.evaluation import spikefinder_correlation

IMPLEMENTATION = "napari-calcium"
SIGMAS_S = (0.02, 0.03, 0.04, 0.06, 0.08)
EXPONENTS = (0.5, 0.75, 1.0)


def _scores(quick: bool) -> tuple[dict, dict[int, int]]:
    """``{(sigma, exponent): {dataset: per-cell r array}}`` and the cell counts."""
    per: dict = {k: {} for k in itertools.product(SIGMAS_S, EXPONENTS)}
    counts = {}
    for n, ind in DATASETS.items():
        cells = load_dataset(n)
        if quick:
            cells = [(c[:3000], s[:3000]) for c, s in cells[:3]]
        counts[n] = len(cells)
        kin = {"indicator": ind} if ind else {"tau_decay_s": 1.0}
        fits = []
        for c, spikes in cells:
            res = deconvolve(c, frame_rate_hz=FS, **kin)
            band = float(effective_bandwidth_hz(c, frame_rate_hz=FS)[0])
            shift = float(res.parameters["activity_shift_s"][0])
            fits.append((res.s[0].astype(np.float64), band, shift, spikes))
        for (sig, power), table in per.items():
            table[n] = np.array(
                [
                    spikefinder_correlation(
                        smooth_activity(
                            s, FS, max(sig, 1 / (2 * band)), shift_s=shift, exponent=power
                        ),
                        spikes,
                        frame_rate_hz=FS,
                    )
                    for s, band, shift, spikes in fits
                ]
            )
    return per, counts


def run(quick: bool = False) -> list[Row]:
    """Fit, leave-one-cell-out and leave-one-dataset-out scores; see the module docstring."""
    if not (data_dir() / "4.train.calcium.csv").exists():
        return [skipped_row("spikefinder CV", IMPLEMENTATION, "-", f"no data in {data_dir()}")]
    box: dict[str, Any] = {}
    timing = time_call(lambda: box.update(result=_scores(quick)), repeat=1, warmup=0)
    per, counts = box["result"]
    sets = list(DATASETS)
    size = ", ".join(f"{n}: {counts[n]} cells" for n in sets)
    work = {"cells": float(sum(counts.values()))}

    def mean_r(k: Any, skip: tuple[int, int] | None = None) -> list[float]:
        out = []
        for n in sets:
            r = per[k][n]
            if skip is not None and skip[0] == n:
                r = np.delete(r, skip[1])
            out.append(float(np.nanmean(r)))
        return out

    fit_all = max(per, key=lambda k: np.mean(mean_r(k)))
    loco = {}
    for n in sets:
        held = []
        for i in range(counts[n]):
            k = max(per, key=lambda k, n=n, i=i: np.mean(mean_r(k, (n, i))))
            held.append(per[k][n][i])
        loco[n] = float(np.nanmean(held))
    lodo = {}
    for j, n in enumerate(sets):
        k = max(per, key=lambda k, j=j: np.mean([v for i, v in enumerate(mean_r(k)) if i != j]))
        lodo[n] = (k, mean_r(k)[j])
    default = (DEFAULT_MIN_SIGMA_S, DEFAULT_EXPONENT)
    fmt = " / ".join
    rows = [
        Row("spikefinder fit (all cells)", IMPLEMENTATION, size, timing, work,
            notes=f"best σ={fit_all[0]} s, exponent={fit_all[1]}: mean r "
                  f"{fmt(f'{v:.3f}' for v in mean_r(fit_all))} (datasets {sets})"),
        Row("spikefinder leave-one-cell-out", IMPLEMENTATION, size, None, work,
            notes="mean r " + fmt(f"{loco[n]:.3f}" for n in sets)),
        Row("spikefinder leave-one-dataset-out", IMPLEMENTATION, size, None, work,
            notes=fmt(f"{n}: {lodo[n][1]:.3f} (σ={lodo[n][0][0]}, exp={lodo[n][0][1]})"
                      for n in sets)),
    ]  # fmt: skip
    if default in per:
        rows.append(
            Row("spikefinder shipped default", IMPLEMENTATION, size, None, work,
                notes=f"σ={default[0]} s, exponent={default[1]}: mean r "
                      + fmt(f"{v:.3f}" for v in mean_r(default))),
        )  # fmt: skip
    return rows


if __name__ == "__main__":  # python benchmarks/bench_spikefinder_cv.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

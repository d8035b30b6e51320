"""Spike inference on real ground truth: spikefinder training datasets 4, 5 and 6.

Data: ``../shared/data/spikefinder_groundtruth`` (or ``$SPIKEFINDER_DIR``): calcium traces with
simultaneously recorded spikes, all at 100 Hz (dataset 4 OGB-1, 5 GCaMP6s, 6 probably GCaMP5k).
Score: the spikefinder metric, Pearson r per cell after summing prediction and truth into 40 ms
bins (:func:`spikefinder_correlation`); the notes give the mean over the dataset's cells.

Rows per dataset (peers skipped where they do not import):

* napari-calcium ``deconvolve`` with each method: ``"oasis-ar1"`` (the default), ``"oasis-ar2"``,
  ``"fista"`` and the noise-constrained ``lam="noise"``; kinetics from the indicator preset for
  datasets 4 and 5; dataset 6's indicator is not certain, so it gets τ_d = 1 s, the τ suite2p
  is given (τ_r = 0 for AR(1); AR(2) and FISTA use their default rise of 50 ms);
* napari-calcium ``deconvolve`` with τ estimated per cell (no indicator, no τ);
* napari-calcium raw OASIS ``s`` (same τ, λ = 0, no smoothing), for reference;
* smoothed positive derivative: ``max(diff(gaussian(F, σ = 200 ms)), 0)``;
* suite2p 1.1 ``dcnv.oasis(F, batch_size, tau=1.0, fs=100)`` on the raw traces (tau as shipped);
* oasis-deconv ``oasis.functions.deconvolve(y, penalty=1)`` (AR(1), g, σ and b estimated: the
  documented defaults);
* CaLab ``calab.run_deconvolution(traces, fs, tau_r, tau_d, lam=0.01)`` (the README's batch call
  and λ) with τ (rise, decay) = OGB-1 (0.01, 0.7), GCaMP6s (0.1, 1.2), dataset 6 (0.02, 0.5).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import time_call
from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.spikes.deconvolution.evaluation import spikefinder_correlation
from napari_calcium.core.spikes.deconvolution.oasis import oasis_ar1_batch

EXTRA_PACKAGES = ("suite2p", "oasis-deconv", "calab")
IMPLEMENTATION = "napari-calcium"
FS = 100.0
DATASETS = {4: "OGB-1", 5: "GCaMP6s", 6: None}
CALAB_TAU = {4: (0.01, 0.7), 5: (0.1, 1.2), 6: (0.02, 0.5)}
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "spikefinder_groundtruth"


def data_dir() -> Path:
    """Folder of the spikefinder CSVs (``$SPIKEFINDER_DIR`` overrides the default)."""
    return Path(os.environ.get("SPIKEFINDER_DIR", DEFAULT_DIR))


def read_csv(path: Path) -> np.ndarray:
    """One spikefinder CSV as ``(n_cells, n_frames)`` float64, empty fields as NaN."""
    lines = path.read_text().splitlines()[1:]
    rows = [[float(v) if v.strip() else np.nan for v in r.split(",")] for r in lines if r.strip()]
    return np.asarray(rows, dtype=np.float64).T


def load_dataset(n: int, folder: Path | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(calcium, spikes), ...]`` per cell of training dataset `n`, NaN padding removed."""
    folder = data_dir() if folder is None else folder
    calcium = read_csv(folder / f"{n}.train.calcium.csv")
    spikes = read_csv(folder / f"{n}.train.spikes.csv")
    out = []
    for c, s in zip(calcium, spikes, strict=True):
        keep = np.isfinite(c) & np.isfinite(s)
        out.append((c[keep], s[keep]))
    return out


def smoothed_derivative(f: np.ndarray, sigma_s: float = 0.2) -> np.ndarray:
    """``max(diff(gaussian(F, sigma_s)), 0)``, first frame 0."""
    d = np.diff(gaussian_filter1d(f, sigma_s * FS), prepend=f[0])
    d[0] = 0.0
    return np.clip(d, 0, None)


def _methods(n: int) -> dict[str, Any]:
    """name -> (callable on one trace, settings note), or a string saying why it is skipped."""
    ind = DATASETS[n]
    kin = {"indicator": ind} if ind else {}
    g = np.exp(-1 / ((0.7 if n == 4 else 1.2 if n == 5 else 1.0) * FS))
    if not ind:
        kin = {"tau_decay_s": 1.0}

    def ours(**kw: Any) -> Any:
        return lambda f: deconvolve(f, frame_rate_hz=FS, **kin, **kw).activity[0]

    tag = f"indicator={ind}" if ind else "tau_decay_s=1.0"
    m: dict[str, Any] = {
        IMPLEMENTATION + " deconvolve (default, oasis-ar1)": (ours(), f"default; {tag}"),
        IMPLEMENTATION + " deconvolve oasis-ar2": (ours(method="oasis-ar2"), tag),
        IMPLEMENTATION + " deconvolve fista": (ours(method="fista"), tag),
        IMPLEMENTATION + " deconvolve lam='noise'": (ours(lam="noise"), tag),
        IMPLEMENTATION + " deconvolve, tau estimated": (
            lambda f: deconvolve(f, frame_rate_hz=FS).activity[0],
            "oasis-ar1, no indicator: tau from the autocovariance per cell",
        ),
        IMPLEMENTATION + " raw OASIS s": (
            lambda f: oasis_ar1_batch((f - np.median(f))[None], g)[1][0],
            f"AR1, g={g:.4f}, λ=0",
        ),
        "smoothed derivative": (smoothed_derivative, "σ 200 ms, positive part"),
    }
    dcnv = optional_import("suite2p.extraction.dcnv")
    m["suite2p"] = (
        "suite2p is not importable here"
        if dcnv is None
        else (lambda f: dcnv.oasis(f[None].copy(), 2000, 1.0, FS)[0], "dcnv.oasis tau=1.0 fs=100")
    )
    ofun = optional_import("oasis.functions")
    m["oasis-deconv"] = (
        "oasis-deconv is not importable here"
        if ofun is None
        else (lambda f: ofun.deconvolve(f, penalty=1)[1], "deconvolve(penalty=1), AR1 estimated")
    )
    calab = optional_import("calab")
    tr, td = CALAB_TAU[n]
    m["CaLab"] = (
        "calab is not importable here"
        if calab is None
        else (
            lambda f: calab.run_deconvolution(f, fs=FS, tau_r=tr, tau_d=td, lam=0.01),
            f"run_deconvolution tau_r={tr} tau_d={td} lam=0.01",
        )
    )
    return m


def run(quick: bool = False) -> list[Row]:
    """Score every method on datasets 4, 5, 6; see the module docstring."""
    rows: list[Row] = []
    folder = data_dir()
    for n, ind in DATASETS.items():
        bench = f"spikefinder {n} ({ind or 'GCaMP5k?'}), mean r @ 40 ms"
        if not (folder / f"{n}.train.calcium.csv").exists():
            rows.append(skipped_row(bench, IMPLEMENTATION, "-", f"no data in {folder}"))
            continue
        cells = load_dataset(n, folder)
        if quick:
            cells = [(c[:3000], s[:3000]) for c, s in cells[:3]]
        size = f"{len(cells)} cells, {sum(c.size for c, _ in cells)} frames"
        work = {"Msamples": sum(c.size for c, _ in cells) / 1e6}
        for name, spec in _methods(n).items():
            if isinstance(spec, str):
                rows.append(skipped_row(bench, name, size, spec))
                continue
            fn, note = spec
            box: dict[str, Any] = {}

            def call(fn: Any = fn, box: dict[str, Any] = box, cells: Any = cells) -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    box["pred"] = [np.asarray(fn(c), dtype=np.float64) for c, _ in cells]

            timing = time_call(call, repeat=1, warmup=0)
            r = np.array(
                [
                    spikefinder_correlation(p, s, frame_rate_hz=FS)
                    for p, (_, s) in zip(box["pred"], cells, strict=True)
                ]
            )
            text = f"mean r {np.nanmean(r):.3f} (cells {', '.join(f'{v:.2f}' for v in r)}); {note}"
            rows.append(Row(bench, name, size, timing, work, notes=text))
    return rows

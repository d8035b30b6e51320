"""Baselines and dF/F on 1,000 x 20,000 float32 traces (``--quick``: 100 x 6,000).

Rows, per task, napari-calcium beside its peers where they import (bench venv):

* running 8th percentile, window 20 s at 30 Hz (600 frames): ours (numba radix ranks + sliding
  bitmap, exact) and fast grid mode vs ``scipy.ndimage.percentile_filter`` row by row;
* maximin (suite2p defaults: σ 10 frames, 60 s window): ours vs scipy gaussian + min + max filters
  vs suite2p 1.1 ``preprocess(baseline="maximin", device="cpu")``;
* calscipy low-pass 5th percentile: ours vs CalSciPy 0.8.3 ``calculate_dfof(method="low_pass")``;
* dF/sqrt(F), the robust default, the constant percentile.

The notes give each method's F0 error on drifting synthetic traces with known F0
(:func:`napari_calcium.core.baseline.simulate_drifting_traces`, 100 ROIs x 10 min at 30 Hz):
median over ROIs of mean |F0_est - F0| / F0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _harness import Row, optional_import, skipped_row, time_call
from napari_calcium.core import baseline as B
from napari_calcium.core.dff import compute_dff

IMPLEMENTATION = "napari-calcium"
FS = 30.0


def _err(est: np.ndarray, f0: np.ndarray) -> str:
    e = float(np.median(np.mean(np.abs(np.asarray(est, np.float64) - f0) / f0, axis=1)))
    return f"F0 error {100 * e:.2f} %"


def run(quick: bool = False) -> list[Row]:
    """Time the baselines; see the module docstring for the rows."""
    n_rois, n_frames = (100, 6000) if quick else (1000, 20000)
    repeat = 1 if quick else 3
    x = np.random.default_rng(0).normal(500, 20, size=(n_rois, n_frames)).astype(np.float32)
    x += np.linspace(0, 50, n_frames, dtype=np.float32)
    f_acc, f0_acc, _ = B.simulate_drifting_traces(100, 18000, frame_rate_hz=FS, seed=1)
    size = f"{n_rois}x{n_frames} float32"
    work = {"Msamples": n_rois * n_frames / 1e6}
    rows: list[Row] = []
    ndi = optional_import("scipy.ndimage")

    def add(bench: str, impl: str, fn: Any, acc: Any, notes: str = "", warm: int = 1) -> None:
        t = time_call(fn, repeat=repeat, warmup=warm)
        rows.append(Row(bench, impl, size, t, work, notes=f"{_err(acc(), f0_acc)}; {notes}"))

    sp = "running percentile (8th, 20 s)"
    add(
        sp,
        IMPLEMENTATION,
        lambda: B.baseline_sliding_percentile(x, frame_rate_hz=FS, window_s=20),
        lambda: B.baseline_sliding_percentile(f_acc, frame_rate_hz=FS, window_s=20),
        "exact",
    )
    add(
        sp,
        IMPLEMENTATION + " fast",
        lambda: B.baseline_sliding_percentile(x, frame_rate_hz=FS, window_s=20, fast=True),
        lambda: B.baseline_sliding_percentile(f_acc, frame_rate_hz=FS, window_s=20, fast=True),
        "grid every 2 s, linear interpolation (CaImAn use_fast)",
    )

    def scipy_pf(a: np.ndarray) -> np.ndarray:
        return np.stack([ndi.percentile_filter(r, 8, size=600) for r in a])

    add(sp, "scipy", lambda: scipy_pf(x), lambda: scipy_pf(f_acc), "percentile_filter per row", 0)

    mm = "maximin (σ 10 frames, 60 s)"
    add(
        mm,
        IMPLEMENTATION,
        lambda: B.baseline_maximin(x, frame_rate_hz=FS),
        lambda: B.baseline_maximin(f_acc, frame_rate_hz=FS),
        "numba gaussian + van Herk",
    )

    def scipy_mm(a: np.ndarray) -> np.ndarray:
        g = ndi.gaussian_filter1d(a, 10.0, axis=1, mode="nearest", truncate=3.0)
        g = ndi.minimum_filter1d(g, 1801, axis=1, mode="nearest")
        return ndi.maximum_filter1d(g, 1801, axis=1, mode="nearest")

    add(mm, "scipy", lambda: scipy_mm(x), lambda: scipy_mm(f_acc), "gaussian+min+max filters", 0)
    dcnv = optional_import("suite2p.extraction.dcnv")
    if dcnv is None:
        rows.append(skipped_row(mm, "suite2p", size, "suite2p is not importable here"))
    else:
        import torch

        def s2p(a: np.ndarray) -> np.ndarray:
            out = dcnv.preprocess(a.copy(), "maximin", 60.0, 10.0, FS, device=torch.device("cpu"))
            return a - out

        add(mm, "suite2p", lambda: s2p(x), lambda: s2p(f_acc), "preprocess(maximin) on CPU", 0)

    cs = "calscipy low-pass 5th percentile dF/F"
    add(
        cs,
        IMPLEMENTATION,
        lambda: compute_dff(x, frame_rate_hz=FS, method="calscipy"),
        lambda: B.baseline_calscipy(f_acc, frame_rate_hz=FS),
        "vectorised filtfilt",
    )
    traces = optional_import("CalSciPy.traces")
    if traces is None:
        rows.append(skipped_row(cs, "CalSciPy", size, "CalSciPy is not importable here"))
    else:
        from CalSciPy.traces.baseline import low_pass_baseline

        add(
            cs,
            "CalSciPy",
            lambda: traces.calculate_dfof(x, method="low_pass", frame_rate=FS),
            lambda: low_pass_baseline(f_acc.astype(np.float64), frame_rate=FS),
            "calculate_dfof(method='low_pass')",
            0,
        )

    add(
        "dF/sqrt(F) (running 8th percentile, 5 s)",
        IMPLEMENTATION,
        lambda: compute_dff(x, frame_rate_hz=FS, method="dff_sqrt"),
        lambda: B.baseline_sliding_percentile(f_acc, frame_rate_hz=FS, window_s=5),
    )
    add(
        "robust baseline (default dF/F)",
        IMPLEMENTATION,
        lambda: B.baseline_robust(x, frame_rate_hz=FS),
        lambda: B.baseline_robust(f_acc, frame_rate_hz=FS),
        "default of compute_dff",
    )
    add(
        "constant percentile (8th)",
        IMPLEMENTATION,
        lambda: B.baseline_percentile(x),
        lambda: B.baseline_percentile(f_acc),
    )
    return rows

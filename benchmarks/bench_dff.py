"""Baselines and dF/F on 1,000 x 20,000 float32 traces (``--quick``: 100 x 6,000).

Rows, per task, napari-calcium beside its peers where they import (bench venv):

* running 8th percentile, window 20 s at 30 Hz (600 frames): ours (numba radix ranks + sliding
  bitmap, exact) and fast grid mode vs ``scipy.ndimage.percentile_filter`` row by row, and vs
  CaImAn ``detrend_df_f`` where ``caiman`` imports (a 100-ROI subset);
* maximin (suite2p defaults: σ 10 frames, 60 s window): ours vs scipy gaussian + min + max filters
  vs suite2p 1.1 ``preprocess(baseline="maximin", device="cpu")``;
* calscipy low-pass 5th percentile: ours vs CalSciPy 0.8.3 ``calculate_dfof(method="low_pass")``;
* dF/sqrt(F) (no installable peer: ACE is not on PyPI), the robust default;
* the constant percentile: ours vs suite2p ``preprocess(baseline="prctile")``;
* standardized noise ν of the calscipy dF/F: ours vs CalSciPy ``calculate_standardized_noise``.

The notes give each method's F0 error on drifting synthetic traces with known F0
(:func:`napari_calcium.core.synthetic.traces.simulate_drifting_traces`, 100 ROIs x 10 min at 30 Hz):
median over ROIs of mean |F0_est - F0| / F0.

Each peer row also notes its **agreement** with the matching :func:`compute_dff` variant on the
timed input (the drifting float32 traces above): ``max |ours - peer|`` over the whole array and
that difference relative to the data range (peak-to-peak of the peer's output; for ν, of its
largest value). dF/F arrays are compared for ``"calscipy"``, F0 for the other methods (suite2p
returns ``F - F0``: its F0 is ``F - output``). "within float32 rounding" means relative
difference <= 1e-5 (float32 has ~6e-8 relative resolution; filters accumulate a few ulp).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import time_call
from napari_calcium.core.synthetic.traces import simulate_drifting_traces
from napari_calcium.core.traces import baseline as B
from napari_calcium.core.traces.dff import compute_dff, standardized_noise

IMPLEMENTATION = "napari-calcium"
FS = 30.0
FLOAT_TOL = 1e-5  # relative to the data range: "agrees within float32 rounding"


def _err(est: np.ndarray, f0: np.ndarray) -> str:
    e = float(np.median(np.mean(np.abs(np.asarray(est, np.float64) - f0) / f0, axis=1)))
    return f"F0 error {100 * e:.2f} %"


def _agreement(ours: Any, peer: Any, what: str, *, scale: str = "range") -> str:
    """``max |ours - peer|`` of `what` and its size relative to the peer output's range."""
    o = np.asarray(ours, np.float64)
    p = np.asarray(peer, np.float64)
    if o.shape != p.shape:
        return f"agreement ({what}): shapes differ, ours {o.shape} vs peer {p.shape}"
    diff = float(np.max(np.abs(o - p)))
    ref = float(np.ptp(p)) if scale == "range" else float(np.max(np.abs(p)))
    name = "data range" if scale == "range" else "peak"
    rel = diff / ref if ref > 0 else float("inf") if diff > 0 else 0.0
    if diff == 0:
        verdict = "identical"
    elif rel <= FLOAT_TOL:
        verdict = "within float32 rounding"
    else:
        verdict = "DIFFERS"
    return (
        f"agreement ({what}): max |ours - peer| {diff:.3g} = {rel:.2g} of the {name} "
        f"{ref:.4g}, {verdict}"
    )


def run(quick: bool = False) -> list[Row]:
    """Time the baselines; see the module docstring for the rows."""
    n_rois, n_frames = (100, 6000) if quick else (1000, 20000)
    repeat = 1 if quick else 3
    x = np.random.default_rng(0).normal(500, 20, size=(n_rois, n_frames)).astype(np.float32)
    x += np.linspace(0, 50, n_frames, dtype=np.float32)
    f_acc, f0_acc, _ = simulate_drifting_traces(100, 18000, frame_rate_hz=FS, seed=1)
    size = f"{n_rois}x{n_frames} float32"
    work = {"Msamples": n_rois * n_frames / 1e6}
    rows: list[Row] = []
    ndi = optional_import("scipy.ndimage")

    def add(
        bench: str,
        impl: str,
        fn: Any,
        acc: Any = None,
        notes: str = "",
        warm: int = 1,
        *,
        row_size: str = size,
        row_work: dict[str, float] | None = None,
    ) -> tuple[Row, Any]:
        """Time `fn`, append its row; return the row and the output of the last timed call."""
        box: dict[str, Any] = {"calls": 0}
        n_calls = warm + repeat

        def call() -> Any:
            out = fn()
            box["calls"] += 1
            if box["calls"] == n_calls:  # keep only the last output: nothing freed while timed
                box["out"] = out
            return out

        t = time_call(call, repeat=repeat, warmup=warm)
        text = "; ".join(s for s in (_err(acc(), f0_acc) if acc else "", notes) if s)
        row = Row(bench, impl, row_size, t, work if row_work is None else row_work, notes=text)
        rows.append(row)
        return row, box.pop("out")

    def ours(method: str, what: str = "baseline", a: np.ndarray = x) -> np.ndarray:
        res = compute_dff(a, frame_rate_hz=FS, method=method)
        return res.dff if what == "dff" else res.baseline

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

    def scipy_pf(a: np.ndarray, size: int = 600) -> np.ndarray:
        return np.stack([ndi.percentile_filter(r, 8, size=size) for r in a])

    row, out = add(
        sp, "scipy", lambda: scipy_pf(x), lambda: scipy_pf(f_acc), "percentile_filter per row", 0
    )
    ours_sp = ours("sliding_percentile")
    row.add_note(_agreement(ours_sp, out, 'F0 of method="sliding_percentile"'))
    _caiman_rows(rows, sp, x, ours_sp, add)
    del out, ours_sp

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
    cpu = None
    if dcnv is None:
        rows.append(skipped_row(mm, "suite2p", size, "suite2p is not importable here"))
    else:
        import torch

        cpu = torch.device("cpu")

        def s2p(a: np.ndarray) -> np.ndarray:
            out = dcnv.preprocess(a.copy(), "maximin", 60.0, 10.0, FS, device=cpu)
            return a - out

        row, out = add(
            mm, "suite2p", lambda: s2p(x), lambda: s2p(f_acc), "preprocess(maximin) on CPU", 0
        )
        row.add_note(_agreement(ours("maximin"), out, 'F0 of method="maximin"'))
        del out

    cs = "calscipy low-pass 5th percentile dF/F"
    _, ours_cs = add(
        cs,
        IMPLEMENTATION,
        lambda: compute_dff(x, frame_rate_hz=FS, method="calscipy").dff,
        lambda: B.baseline_calscipy(f_acc, frame_rate_hz=FS),
        "vectorised filtfilt",
    )
    traces = optional_import("CalSciPy.traces")
    if traces is None:
        rows.append(skipped_row(cs, "CalSciPy", size, "CalSciPy is not importable here"))
    else:
        from CalSciPy.traces.baseline import low_pass_baseline

        row, out = add(
            cs,
            "CalSciPy",
            lambda: traces.calculate_dfof(x, method="low_pass", frame_rate=FS),
            lambda: low_pass_baseline(f_acc.astype(np.float64), frame_rate=FS),
            "calculate_dfof(method='low_pass')",
            0,
        )
        row.add_note(_agreement(ours_cs, out, 'dF/F of method="calscipy"'))
        del out

    nu = "standardized noise ν (of the calscipy dF/F)"
    nu_work = {"Msamples": n_rois * n_frames / 1e6}
    _, ours_nu = add(
        nu,
        IMPLEMENTATION,
        lambda: standardized_noise(ours_cs, frame_rate_hz=FS),
        notes="100 median|Δ dF/F| / √f",
        row_work=nu_work,
    )
    if traces is None:
        rows.append(skipped_row(nu, "CalSciPy", size, "CalSciPy is not importable here"))
    else:
        row, out = add(
            nu,
            "CalSciPy",
            lambda: traces.calculate_standardized_noise(ours_cs, frame_rate=FS),
            notes="calculate_standardized_noise",
            row_work=nu_work,
        )
        row.add_note(_agreement(ours_nu, out, "ν per ROI", scale="peak"))
        del out

    sq = "dF/sqrt(F) (running 8th percentile, 5 s)"
    row, _ = add(
        sq,
        IMPLEMENTATION,
        lambda: compute_dff(x, frame_rate_hz=FS, method="dff_sqrt"),
        lambda: B.baseline_sliding_percentile(f_acc, frame_rate_hz=FS, window_s=5),
    )
    row.add_note("no installable peer (ACE's dF/√F is not on PyPI; CaImAn is conda-only)")
    if ndi is not None:  # the formula with scipy's running percentile, untimed
        f0 = scipy_pf(x, size=150)
        row.add_note(
            _agreement(
                ours("dff_sqrt", "dff"),
                (x - f0) / np.sqrt(f0),
                "dF/√F vs the formula (F - F0)/√F0 with scipy percentile_filter(size=150)",
            )
        )
        del f0
    add(
        "robust baseline (default dF/F)",
        IMPLEMENTATION,
        lambda: B.baseline_robust(x, frame_rate_hz=FS),
        lambda: B.baseline_robust(f_acc, frame_rate_hz=FS),
        "default of compute_dff",
    )
    cp = "constant percentile (8th)"
    add(
        cp,
        IMPLEMENTATION,
        lambda: B.baseline_percentile(x),
        lambda: B.baseline_percentile(f_acc),
    )
    if dcnv is None:
        rows.append(skipped_row(cp, "suite2p", size, "suite2p is not importable here"))
    else:

        def s2p_prctile(a: np.ndarray) -> np.ndarray:
            out = dcnv.preprocess(a.copy(), "prctile", 60.0, 10.0, FS, 8, device=cpu)
            return a - out

        row, out = add(
            cp,
            "suite2p",
            lambda: s2p_prctile(x),
            lambda: s2p_prctile(f_acc),
            "preprocess(prctile, prctile_baseline=8); the copy of F is timed too",
            0,
        )
        row.add_note(_agreement(ours("percentile"), out, 'F0 of method="percentile"'))
        del out
    return rows


def _caiman_rows(rows: list[Row], bench: str, x: np.ndarray, ours_f0: np.ndarray, add: Any) -> None:
    """CaImAn ``detrend_df_f`` (running 8th percentile, 600 frames) on the first 100 ROIs.

    Called with identity spatial components and no background, ``detrend_df_f`` only detrends
    (``F - Fd``), so its running percentile is ``Fd = F - output``.
    """
    sub = x[:100].astype(np.float64)
    size = f"{sub.shape[0]}x{sub.shape[1]} subset (as float64)"
    utilities = optional_import("caiman.source_extraction.cnmf.utilities")
    if utilities is None or not hasattr(utilities, "detrend_df_f"):
        reason = "caiman (CaImAn) is not importable in the bench venv (conda-only; not installed)"
        rows.append(skipped_row(bench, "CaImAn", size, reason))
        return
    import scipy.sparse

    eye = scipy.sparse.identity(sub.shape[0], format="csc")

    def caiman_f0() -> np.ndarray:
        out = utilities.detrend_df_f(
            eye, None, sub, None, quantileMin=8, frames_window=600, flag_auto=False
        )
        return sub - np.asarray(out)

    try:
        row, out = add(
            bench,
            "CaImAn",
            caiman_f0,
            notes="detrend_df_f(flag_auto=False, frames_window=600), detrend only",
            warm=0,
            row_size=size,
            row_work={"Msamples": sub.size / 1e6},
        )
    except Exception as exc:  # a peer's own failure must not stop the benchmark
        rows.append(skipped_row(bench, "CaImAn", size, f"detrend_df_f failed: {exc!r}"))
        return
    row.add_note(_agreement(ours_f0[:100], out, 'F0 of method="sliding_percentile"'))

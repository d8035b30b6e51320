"""Trace processing (issue 6): polynomial detrend and Perona-Malik beside CalSciPy.

Traces 1,000 ROIs x 20,000 frames float32 (``--quick``: 200 x 4,000): drifting random walks with
noise. Rows:

a. polynomial detrend (4th order, CalSciPy's): napari-calcium ``detrend_polynomial`` (one
   batched least squares), a per-row ``np.polyfit`` loop, and CalSciPy ``detrend_polynomial``;
b. Perona-Malik (iters 25, kappa 0.15, gamma 0.25): napari-calcium ``perona_malik`` (numba,
   rows across threads) and CalSciPy ``perona_malik_diffusion``;
c. band-pass: Butterworth ``bandpass`` (sosfiltfilt) and CaLab's ``bandpass_kernel`` (FFT).

The notes give the agreement with the peer: the largest absolute difference of the outputs and
the same relative to the traces' dynamic range. CalSciPy rows are skipped where it does not
import (it is installed in the bench venv only). Throughput is ROIs per second.
Run it: ``python benchmarks/run.py --only trace_processing [--quick]``.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import numpy as np

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import Timing, time_call
from napari_calcium.core.traces.processing import (
    bandpass,
    bandpass_kernel,
    detrend_polynomial,
    perona_malik,
)

IMPLEMENTATION = "napari-calcium"
EXTRA_PACKAGES = ("CalSciPy",)
FRAME_RATE_HZ = 30.0


def make_traces(n_rois: int, n_frames: int, seed: int = 0) -> np.ndarray:
    """Random walks (slow drift) plus white noise, float32, around 100."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(scale=0.05, size=(n_rois, n_frames)), axis=1)
    return (100 + walk + rng.normal(size=(n_rois, n_frames))).astype(np.float32)


def _agreement(ours: np.ndarray, theirs: np.ndarray, traces: np.ndarray) -> str:
    diff = float(np.abs(ours.astype(np.float64) - theirs).max())
    span = float(np.ptp(traces))
    return f"max abs diff {diff:.2e} ({diff / span:.1e} of the data range)"


def _polyfit_rows(traces: np.ndarray, order: int) -> np.ndarray:
    t = np.arange(traces.shape[1])
    out = traces.copy()
    for i in range(traces.shape[0]):
        out[i] -= np.polyval(np.polyfit(t, out[i], deg=order), t).astype(out.dtype)
    return out


def run(quick: bool = False) -> list[Row]:
    """Time the trace-processing functions; see the module docstring for the rows.

    Parameters
    ----------
    quick : bool, optional
        200 x 4,000 traces and single repeats, a smoke run of a few seconds.

    Returns
    -------
    list of Row
    """
    n_rois, n_frames = (200, 4000) if quick else (1000, 20000)
    repeat = 1 if quick else 3
    traces = make_traces(n_rois, n_frames)
    size = f"{n_rois} x {n_frames} float32"
    work = {"ROIs": float(n_rois)}
    rows: list[Row] = []
    kept: dict[str, Any] = {}

    def row(bench: str, impl: str, timing: Timing, notes: str = "", **params: Any) -> None:
        rows.append(Row(bench, impl, size, timing, work, notes=notes, params=params))

    calscipy = optional_import("CalSciPy.traces")
    try:
        version = importlib.metadata.version("CalSciPy")
    except importlib.metadata.PackageNotFoundError:
        version = "?"

    # a. polynomial detrend -----------------------------------------------------------------------
    bench = "polynomial detrend (order 4)"
    kept["ours"] = detrend_polynomial(traces, order=4)
    t = time_call(lambda: detrend_polynomial(traces, order=4), repeat=repeat)
    row(bench, IMPLEMENTATION, t, "one batched least squares (Legendre basis, float64)")
    ours_row = rows[-1]
    t = time_call(lambda: _polyfit_rows(traces, 4), repeat=1, warmup=0)
    note = _agreement(kept["ours"], _polyfit_rows(traces, 4), traces)
    row(bench, "numpy polyfit per row", t, note)
    ours_row.add_note(f"{t.best / ours_row.seconds:.0f}x faster than per-row polyfit")
    if calscipy is None:
        rows.append(skipped_row(bench, "CalSciPy", size, "CalSciPy is not importable here"))
    else:
        t = time_call(lambda: calscipy.detrend_polynomial(traces), repeat=1, warmup=0)
        note = _agreement(kept["ours"], calscipy.detrend_polynomial(traces), traces)
        row(bench, "CalSciPy", t, f"CalSciPy {version} detrend_polynomial; {note}")
        ours_row.add_note(f"{t.best / ours_row.seconds:.0f}x faster than CalSciPy")

    # b. Perona-Malik ------------------------------------------------------------------------------
    bench = "Perona-Malik (25 iters, kappa 0.15, gamma 0.25)"
    kept["ours"] = perona_malik(traces)  # also compiles the numba kernel (cached on disk)
    t = time_call(lambda: perona_malik(traces), repeat=repeat)
    row(bench, IMPLEMENTATION, t, "numba, rows across threads, in the data's float32")
    ours_row = rows[-1]
    if calscipy is None:
        rows.append(skipped_row(bench, "CalSciPy", size, "CalSciPy is not importable here"))
    else:
        quiet = {"disable": True}
        tqdm_module = optional_import("CalSciPy.traces.smoothing")
        original = getattr(tqdm_module, "tqdm", None)
        if original is not None:  # silence its progress bar, keep the work identical
            tqdm_module.tqdm = lambda *a, **k: original(*a, **{**k, **quiet})
        try:
            theirs = calscipy.perona_malik_diffusion(traces)
            t = time_call(lambda: calscipy.perona_malik_diffusion(traces), repeat=1, warmup=0)
        finally:
            if original is not None:
                tqdm_module.tqdm = original
        note = _agreement(kept["ours"], theirs, traces)
        row(bench, "CalSciPy", t, f"CalSciPy {version} perona_malik_diffusion; {note}")
        ours_row.add_note(f"{t.best / ours_row.seconds:.0f}x faster than CalSciPy")

    # c. band-pass -----------------------------------------------------------------------------
    t = time_call(
        lambda: bandpass(traces, frame_rate_hz=FRAME_RATE_HZ, low_hz=0.05, high_hz=5.0),
        repeat=repeat,
    )
    row("Butterworth band-pass 0.05-5 Hz (order 4)", IMPLEMENTATION, t, "scipy sosfiltfilt")
    t = time_call(
        lambda: bandpass_kernel(
            traces, frame_rate_hz=FRAME_RATE_HZ, tau_rise_s=0.05, tau_decay_s=0.5
        ),
        repeat=repeat,
    )
    row("CaLab kernel band-pass (tau 0.05 / 0.5 s)", IMPLEMENTATION, t, "rfft, float64")
    return rows


if __name__ == "__main__":  # convenience: python benchmarks/bench_trace_processing.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

"""Spike-inference speed and accuracy (issue 7): our solvers beside suite2p, oasis-deconv, CaLab.

Traces: 1,000 ROIs × 20,000 frames float32 at 30 Hz (``--quick``: 100 × 4,000): Poisson spikes
at 0.7 Hz with amplitude 1, AR(1) calcium (τ_d 0.5 s) or double-exponential calcium (τ_r 0.1 s,
τ_d 0.5 s) for the AR(2)/FISTA rows, Gaussian noise σ = 0.2 (SNR 5) on an offset of 2. Every
method gets the true kinetics. Rows per task, with the accuracy in the notes: the median over
ROIs of the correlation of ``s`` with the true spikes, both smoothed by a σ = 2-frame Gaussian
(the issue's synthetic score), so speed is compared at the accuracy each reaches:

a. AR(1), τ given, no penalty: ``oasis_ar1_batch`` (the solver alone), ``deconvolve`` (baseline,
   noise, solver and activity), suite2p ``dcnv.oasis``, oasis-deconv ``oasisAR1``;
b. AR(2), τ given: ``oasis_ar2_batch``, oasis-deconv ``deconvolve(g=(g1, g2))`` (noise-constrained
   with baseline: it has no plain batched AR(2));
c. noise-constrained λ and baseline: ``oasis_constrained_batch`` AR(1) and AR(2),
   oasis-deconv ``deconvolve(g=(g,), penalty=1)`` AR(1);
d. FISTA with the double-exponential kernel: ``fista_deconvolve`` (λ from the AR(2) constrained
   solution, the same as ``deconvolve(method="fista", lam="noise")``), CaLab
   ``run_deconvolution`` (its Rust FISTA, same λ on its scale). Ours runs at CaLab's stopping
   tolerance (1e-6) and at 3e-4, where it stops earlier with an accuracy still above CaLab's.

oasis-deconv and CaLab loop over traces in Python (oasis-deconv) or run one thread (CaLab): they
are timed on the first 100 ROIs and the time is scaled to all ROIs (said in the notes). Run it:
``python benchmarks/run.py --only deconvolution [--quick]``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.signal import lfilter

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import time_call
from napari_calcium.core.spikes.deconvolution.api import _fista_scale, deconvolve
from napari_calcium.core.spikes.deconvolution.constrained import oasis_constrained_batch
from napari_calcium.core.spikes.deconvolution.evaluation import smoothed_correlation
from napari_calcium.core.spikes.deconvolution.fista import fista_deconvolve
from napari_calcium.core.spikes.deconvolution.kernels import tau_to_ar2
from napari_calcium.core.spikes.deconvolution.oasis import oasis_ar1_batch
from napari_calcium.core.spikes.deconvolution.oasis_ar2 import oasis_ar2_batch

IMPLEMENTATION = "napari-calcium"
EXTRA_PACKAGES = ("suite2p", "oasis-deconv", "calab")
FS = 30.0
TAU_D, TAU_R, SIGMA, OFFSET = 0.5, 0.1, 0.2, 2.0
N_SLOW = 100  # rows the slow per-trace peers are timed on (time scaled to all rows)


def make_traces(n_rois: int, n_frames: int, *, ar2: bool, seed: int = 0) -> tuple:
    """(float32 traces, true spikes) as described in the module docstring."""
    rng = np.random.default_rng(seed)
    spikes = rng.poisson(0.7 / FS, (n_rois, n_frames)).astype(np.float64)
    if ar2:
        g1, g2, *_ = tau_to_ar2(TAU_R, TAU_D, FS)
        calcium = lfilter([1.0], [1.0, -g1, -g2], spikes, axis=1)
    else:
        calcium = lfilter([1.0], [1.0, -np.exp(-1 / (TAU_D * FS))], spikes, axis=1)
    y = calcium + SIGMA * rng.standard_normal(spikes.shape) + OFFSET
    return y.astype(np.float32), spikes


def _score(s: np.ndarray, spikes: np.ndarray) -> str:
    r = smoothed_correlation(np.asarray(s, dtype=np.float64), spikes[: len(s)], sigma_frames=2.0)
    return f"smoothed r {float(np.median(r)):.4f}"


def _ratio(ours: Row, theirs: Row, who: str) -> str:
    """``"3.2x faster than who"`` (or slower) from two rows' best times."""
    r = theirs.seconds / ours.seconds
    return f"{r:.1f}x faster than {who}" if r >= 1 else f"{1 / r:.1f}x slower than {who}"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def run(quick: bool = False) -> list[Row]:
    """Time every solver; see the module docstring for the rows."""
    n_rois, n_frames = (100, 4000) if quick else (1000, 20000)
    repeat = 1 if quick else 3
    n_slow = min(N_SLOW, n_rois)
    size = f"{n_rois} x {n_frames} float32"
    work = {"ROIs": float(n_rois)}
    rows: list[Row] = []
    g = float(np.exp(-1 / (TAU_D * FS)))
    g1, g2, *_ = tau_to_ar2(TAU_R, TAU_D, FS)

    def add(bench: str, impl: str, fn: Callable[[], Any], spikes, *, slow=False, note="") -> Any:
        box: dict[str, Any] = {}
        timing = time_call(
            lambda: box.update(s=fn()), repeat=1 if slow else repeat, warmup=0 if slow else 1
        )
        scaled = ""
        if slow and n_slow < n_rois:
            timing = dataclasses.replace(
                timing, times=tuple(t * n_rois / n_slow for t in timing.times)
            )
            scaled = f"; timed on {n_slow} ROIs, scaled ×{n_rois / n_slow:g}"
        rows.append(
            Row(bench, impl, size, timing, work, notes=f"{_score(box['s'], spikes)}{scaled}{note}")
        )
        return rows[-1]

    y1, spk1 = make_traces(n_rois, n_frames, ar2=False)
    y2, spk2 = make_traces(n_rois, n_frames, ar2=True, seed=1)
    sub1, sub2 = y1[:n_slow].astype(np.float64), y2[:n_slow].astype(np.float64)
    s2p = optional_import("suite2p.extraction.dcnv")
    ofun, ometh = optional_import("oasis.functions"), optional_import("oasis.oasis_methods")
    calab = optional_import("calab")

    # a. AR(1), τ given, no penalty ------------------------------------------------------------
    bench = "OASIS AR(1), tau given, lam 0"
    ours = add(bench, IMPLEMENTATION, lambda: oasis_ar1_batch(y1 - OFFSET, g)[1], spk1,
               note="; oasis_ar1_batch (solver only, true offset removed)")  # fmt: skip
    add(bench, IMPLEMENTATION + " deconvolve", lambda: deconvolve(
        y1, frame_rate_hz=FS, tau_decay_s=TAU_D).s, spk1,
        note="; full deconvolve: running baseline, PSD noise, solver, activity")  # fmt: skip
    add(bench, IMPLEMENTATION + " deconvolve, defaults", lambda: deconvolve(
        y1, frame_rate_hz=FS).s, spk1,
        note="; as called by users: tau estimated, rise measured")  # fmt: skip
    if s2p is None:
        rows.append(skipped_row(bench, "suite2p", size, "suite2p is not importable here"))
    else:
        t = add(bench, "suite2p", lambda: s2p.oasis(y1 - OFFSET, 2000, TAU_D, FS), spk1,
                note=f"; suite2p {_version('suite2p')} dcnv.oasis (numba)")  # fmt: skip
        ours.add_note(_ratio(ours, t, "suite2p"))
    if ometh is None:
        rows.append(skipped_row(bench, "oasis-deconv", size, "oasis-deconv is not importable"))
    else:
        t = add(bench, "oasis-deconv",
                lambda: np.array([ometh.oasisAR1(r - OFFSET, g)[1] for r in sub1]), spk1,
                slow=True, note=f"; oasis-deconv {_version('oasis-deconv')} oasisAR1, per trace",
                )  # fmt: skip
        ours.add_note(_ratio(ours, t, "oasis-deconv"))

    # b. AR(2), τ given ---------------------------------------------------------------------------
    bench = "OASIS AR(2), tau given"
    ours = add(bench, IMPLEMENTATION, lambda: oasis_ar2_batch(y2 - OFFSET, g1, g2)[1], spk2,
               note="; oasis_ar2_batch, lam 0 (exact)")  # fmt: skip
    if ofun is None:
        rows.append(skipped_row(bench, "oasis-deconv", size, "oasis-deconv is not importable"))
    else:
        t = add(bench, "oasis-deconv",
                lambda: np.array([ofun.deconvolve(r, g=(g1, g2)).s for r in sub2]), spk2,
                slow=True, note="; deconvolve(g=(g1, g2)): constrained λ and baseline")  # fmt: skip
        ours.add_note(_ratio(ours, t, "oasis-deconv"))

    # c. noise-constrained λ and baseline ----------------------------------------------------
    bench = "OASIS noise-constrained (λ and baseline)"
    ours1 = add(bench, IMPLEMENTATION + " AR(1)", lambda: oasis_constrained_batch(
        y1, g, sigma=SIGMA).s, spk1, note="; oasis_constrained_batch order 1")  # fmt: skip
    add(bench, IMPLEMENTATION + " AR(2)", lambda: oasis_constrained_batch(
        y2, np.array([g1, g2]), sigma=SIGMA, order=2).s, spk2,
        note="; oasis_constrained_batch order 2 (AR(2) traces)")  # fmt: skip
    if ofun is None:
        rows.append(skipped_row(bench, "oasis-deconv", size, "oasis-deconv is not importable"))
    else:
        t = add(bench, "oasis-deconv AR(1)",
                lambda: np.array([ofun.deconvolve(r, g=(g,), sn=SIGMA).s for r in sub1]), spk1,
                slow=True, note="; deconvolve(g=(g,), sn=σ, penalty=1)")  # fmt: skip
        ours1.add_note(_ratio(ours1, t, "oasis-deconv"))

    # d. FISTA ---------------------------------------------------------------------------------
    bench = "FISTA double exponential (λ from the noise)"
    lam_o = np.asarray(oasis_constrained_batch(y2, np.array([g1, g2]), sigma=SIGMA, order=2).lam)
    a, gsum = _fista_scale(TAU_D, TAU_R, FS)
    lam_f = lam_o * a / gsum

    def ours_fista(tol: float) -> np.ndarray:
        s = np.zeros_like(y2)
        s[:, 1:] = fista_deconvolve(
            y2, frame_rate_hz=FS, tau_rise_s=TAU_R, tau_decay_s=TAU_D, lam=lam_f, tol=tol
        ).s[:, :-1]  # CaLab's kernel is 0 at the spike's frame: align with the AR(2) model
        return s

    ours = add(bench, IMPLEMENTATION, lambda: ours_fista(1e-6), spk2,
               note=f"; fista_deconvolve tol 1e-6 (CaLab's), median λ {np.median(lam_f):.3g} "
                    "(CaLab's scale)")  # fmt: skip
    loose = add(bench, IMPLEMENTATION + " tol 3e-4", lambda: ours_fista(3e-4), spk2,
                note="; stopped earlier: still at least CaLab's accuracy")  # fmt: skip
    if calab is None:
        rows.append(skipped_row(bench, "CaLab", size, "calab is not importable here"))
    else:
        lam_c = float(np.median(lam_f))

        def theirs() -> np.ndarray:
            out = np.asarray(calab.run_deconvolution(sub2, FS, TAU_R, TAU_D, lam_c))
            s = np.zeros_like(out)
            s[:, 1:] = out[:, :-1]
            return s

        t = add(bench, "CaLab", theirs, spk2, slow=True,
                note=f"; calab {_version('calab')} run_deconvolution, λ {lam_c:.3g}, s moved "
                "1 frame later")  # fmt: skip
        ours.add_note(_ratio(ours, t, "CaLab"))
        loose.add_note(_ratio(loose, t, "CaLab"))
    return rows


if __name__ == "__main__":  # python benchmarks/bench_deconvolution.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

"""dF/F on neuropil-dominated ROIs (issue 17): the denominator rules side by side.

``compute_dff(traces, ...)`` with a TraceSet divides the corrected change ``Fc − F0c`` by

* ``corrected``: ``F0c`` (the rule before issue 17),
* ``floored``: ``max(F0c, f · F0raw)``, ``f = 0.1`` (the default),
* ``raw``: ``F0raw`` (FISSA ``use_raw_f0``, CaImAn ``detrend_df_f``),

and flags a ROI neuropil-dominated when ``F0c ≤ f · F0raw`` in some frame. The synthetic part also
scores ``bounded r``, the alternative not adopted: ``r`` per ROI lowered to
``(1 − f) · min_t F0raw / F0neu`` where it is above, then the floored rule (its "flagged" counts
use the bounded traces). Three parts, in this
order because ``f`` is **tuned on the first and only reported on the others**:

1. **Synthetic truth** (``nc.simulate_recording``, 2 seeds × 25 neurons, 2,000 frames at 7.5 Hz,
   128 × 128 px, GCaMP6s, soma F0 10–60 photons, the dark offset subtracted from F and Fneu as on
   the neurofinder movie, true ROIs, extraction with r = 0.7). Scenarios: neuropil brightness 25
   (the default: "the old rule was fine"), 100 or 300 photons, and true contamination 0.7 (r right)
   or 0.5 / 0.6 (r = 0.7 over-subtracts: the corrected baseline goes to or below 0, as on real
   movies). Per cell: Pearson r of dF/F with the true ΔF/F (``truth.calcium``) and the amplitude
   gain, the least-squares slope of dF/F on the true ΔF/F (1 is exact); the notes give the median
   ``|log gain|`` over all cells, over the flagged cells, the NaN count and the largest 99th
   percentile ``|dF/F|``. The last rows sweep ``f`` over all scenarios together: the smallest mean
   ``|log gain|`` picks the default.
2. **Real movie, no ground truth** (``shared/data/neurofinder_crop``: 400 frames, 256 × 256, 7.5 Hz
   assumed; the 106 ``regions.json`` ROIs and the ROIs of ``detect_rois`` at defaults): ROIs
   flagged, with ``F0c ≤ 0``, NaN, the largest 99th-percentile ``|dF/F|`` of flagged and unflagged
   ROIs, and the unflagged ROIs above 10.
3. **Real ground truth** (``shared/data/cascade_groundtruth_dev/DS31-GCaMP8m-m-V1``: 65 recordings,
   16 neurons, jGCaMP8m, 120 Hz, cell-attached spikes; the only set here with the raw F and the
   neuropil): r = 0.7 and r = 1.0 (over-subtraction). The notes give the flagged recordings, NaN,
   the largest 99th percentile, and the median response to isolated spikes (no other spike within
   1 s; peak in 0–0.3 s minus the mean of the 0.2 s before), as a ratio to the same recording's
   response at r = 0.7 for the recordings flagged at r = 1.0: a rule that keeps dF/F meaningful
   keeps that ratio near 1.

``python benchmarks/bench_dff_rule.py`` prints the table alone;
``benchmarks/run.py --only dff_rule`` adds the machine header. ``--quick``: one seed, 3 scenarios,
1,000 frames, regions only, 8 DS31 recordings.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import napari_calcium as nc  # noqa: E402
from _harness.peers import skipped_row  # noqa: E402
from _harness.results import Row  # noqa: E402
from _harness.timing import time_call  # noqa: E402

IMPLEMENTATION = "napari-calcium"
DATA = HERE.parent.parent / "shared" / "data"
RULES = ("corrected", "floored", "raw")
FRACTIONS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
FS_SYN = 7.5
FS_NEUROFINDER = 7.5  # movie.tif states none; PROVENANCE: ~7-8 Hz
#: (neuropil photons, true contamination): the first is the simulator's default
SCENARIOS = ((25, 0.7), (100, 0.7), (300, 0.7), (100, 0.5), (200, 0.6), (300, 0.5))


def _dff(traces: Any, fs: float, rule: str, f: float = 0.1) -> Any:
    if rule == "bounded r":
        return _bounded_r(traces, fs, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN rows of "corrected" are counted, not warned
        return nc.compute_dff(traces, frame_rate_hz=fs, denominator=rule, min_baseline_fraction=f)


def _bounded_r(traces: Any, fs: float, f: float) -> Any:
    """The alternative not adopted: r per ROI bounded so that F0c keeps a share f of F0raw,
    ``r_i = min(r, (1 - f) min_t F0raw / F0neu)``, then the floored rule on the new Fc."""
    f0raw = nc.baseline_robust(traces.F, frame_rate_hz=fs)
    f0neu = nc.baseline_robust(traces.Fneu, frame_rate_hz=fs)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = (1.0 - f) * np.min(f0raw / f0neu, axis=1)
    r = np.minimum(traces.coefficients, np.where(np.isfinite(cap), cap, np.inf)).astype(np.float32)
    bounded = nc.TraceSet(
        F=traces.F, Fneu=traces.Fneu, corrected=traces.F - r[:, None] * traces.Fneu,
        coefficients=r, ids=traces.ids, frame_rate_hz=fs,
    )  # fmt: skip
    return _dff(bounded, fs, "floored", f)


def _p99(dff: np.ndarray) -> np.ndarray:
    """99th percentile of |dF/F| per row (NaN for NaN rows)."""
    out = np.full(len(dff), np.nan)
    ok = np.isfinite(dff).all(axis=1)
    if ok.any():
        out[ok] = np.percentile(np.abs(dff[ok]), 99, axis=1)
    return out


def _gain_corr(dff: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope of dF/F on the true ΔF/F (with an intercept) and Pearson r, per active cell."""
    gain = np.full(len(dff), np.nan)
    corr = np.full(len(dff), np.nan)
    for i, (d, t) in enumerate(zip(dff, truth, strict=True)):
        if t.std() == 0 or not np.isfinite(d).all():
            continue
        design = np.c_[t, np.ones_like(t)]
        gain[i] = np.linalg.lstsq(design, d, rcond=None)[0][0]
        corr[i] = np.corrcoef(d, t)[0, 1]
    return gain, corr


def _log_err(gain: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(np.log(np.clip(gain, 1e-3, None)))


# ------------------------------------------------------------------------------- 1. synthetic
def _simulate(npho: float, contamination: float, seed: int, n_frames: int) -> tuple[Any, Any]:
    rec = nc.simulate_recording(
        n_frames=n_frames, shape=(128, 128), n_neurons=25, frame_rate_hz=FS_SYN, seed=seed,
        neuropil_photons=npho, neuropil_coefficient=contamination, f0_photons=(10.0, 60.0),
        indicator="GCaMP6s",
    )  # fmt: skip
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    tr = nc.extract_traces(rec.movie, rois, frame_rate_hz=FS_SYN)
    off = np.float32(rec.truth.offset_adu)  # the dark offset, known here (neurofinder: ~0)
    F, Fneu = tr.F - off, tr.Fneu - off
    traces = nc.TraceSet(
        F=F, Fneu=Fneu, corrected=F - tr.coefficients[:, None] * Fneu,
        coefficients=tr.coefficients, ids=tr.ids, frame_rate_hz=FS_SYN,
    )  # fmt: skip
    return traces, rec.truth.calcium[tr.ids - 1]


def _synthetic(quick: bool) -> list[Row]:
    scenarios = SCENARIOS[:1] + SCENARIOS[3:5] if quick else SCENARIOS
    seeds = (0,) if quick else (0, 1)
    n_frames = 1000 if quick else 2000
    rows: list[Row] = []
    pooled: dict[float, list[np.ndarray]] = {f: [] for f in FRACTIONS}
    for npho, contamination in scenarios:
        sims = [_simulate(npho, contamination, s, n_frames) for s in seeds]
        n_cells = sum(t.n_rois for t, _ in sims)
        bench = f"dF/F rule, synthetic: neuropil {npho} photons, true r {contamination}"
        size = f"{len(sims)} x 25 cells x {n_frames} frames, {FS_SYN:g} Hz"
        for rule in (*RULES, "bounded r"):
            box: dict[str, Any] = {}

            def call(rule: str = rule, box: dict = box, sims: list = sims) -> None:
                box["res"] = [_dff(t, FS_SYN, rule) for t, _ in sims]

            timing = time_call(call, repeat=1, warmup=0)
            gain, corr, p99, flagged, nan = [], [], [], [], 0
            for res, (_, truth) in zip(box["res"], sims, strict=True):
                g, c = _gain_corr(np.asarray(res.dff), truth)
                gain.append(g)
                corr.append(c)
                p99.append(_p99(np.asarray(res.dff)))
                flagged.append(np.asarray(res.neuropil_dominated))
                nan += int(np.count_nonzero(~np.asarray(res.baseline_ok)))
            gain, corr, p99, flagged = map(np.concatenate, (gain, corr, p99, flagged))
            err = _log_err(gain)
            on_flagged = err[flagged & np.isfinite(err)]
            on = float(np.median(on_flagged)) if on_flagged.size else float("nan")
            notes = (
                f"flagged {int(flagged.sum())}/{n_cells}, NaN {nan}; median r "
                f"{np.nanmedian(corr):.3f}; median |log gain| {np.nanmedian(err):.3f} (gain "
                f"{np.nanmedian(gain):.2f}); on flagged cells {on:.3f} ({on_flagged.size} "
                f"scored); max p99 |dF/F| {np.nanmax(p99):.2f}"
            )
            params = {
                "median_abs_log_gain": float(np.nanmedian(err)),
                "n_flagged": int(flagged.sum()),
            }
            rows.append(Row(bench, f"{IMPLEMENTATION} {rule}", size, timing,
                            {"cells": n_cells}, notes=notes, params=params))  # fmt: skip
        for f in FRACTIONS:  # the tuning sweep, pooled over every scenario
            for traces, truth in sims:
                res = _dff(traces, FS_SYN, "floored", f)
                pooled[f].append(_log_err(_gain_corr(np.asarray(res.dff), truth)[0]))
    for f in FRACTIONS:
        err = np.concatenate(pooled[f])
        bench = "dF/F rule, synthetic: tuning f over all scenarios"
        note = f"mean |log gain| {np.nanmean(err):.3f}, median {np.nanmedian(err):.3f}"
        rows.append(Row(bench, f"{IMPLEMENTATION} floored f={f:g}", f"{err.size} cells",
                        None, notes=note, status="ok"))  # fmt: skip
    return rows


# ------------------------------------------------------------------------------ 2. neurofinder
def neurofinder_traces(which: str) -> Any:
    """TraceSet of the neurofinder crop for the ``"regions"`` or ``"detected"`` ROIs."""
    import tifffile

    folder = DATA / "neurofinder_crop"
    movie = tifffile.imread(folder / "movie.tif")
    if which == "regions":
        rois = nc.load_rois(folder / "regions.json", shape=movie.shape[1:])
    else:
        rois = nc.detect_rois(movie, frame_rate_hz=FS_NEUROFINDER)
    return nc.extract_traces(movie, rois, frame_rate_hz=FS_NEUROFINDER)


def _neurofinder(quick: bool) -> list[Row]:
    rows: list[Row] = []
    if not (DATA / "neurofinder_crop" / "movie.tif").exists():
        return [skipped_row("dF/F rule, neurofinder crop", IMPLEMENTATION, "-", f"no {DATA}")]
    for which in ("regions",) if quick else ("regions", "detected"):
        bench = f"dF/F rule, neurofinder crop, {which} ROIs (no truth)"
        try:
            traces = neurofinder_traces(which)
        except Exception as exc:  # e.g. detection being reworked: report, keep the other parts
            rows.append(skipped_row(bench, IMPLEMENTATION, "-", f"no ROIs: {exc!r:.200}"))
            continue
        size = f"{traces.n_rois} ROIs x {traces.n_frames} frames, {FS_NEUROFINDER:g} Hz"
        for rule in RULES:
            box: dict[str, Any] = {}

            def call(rule: str = rule, box: dict = box, traces: Any = traces) -> None:
                box["res"] = _dff(traces, FS_NEUROFINDER, rule)

            timing = time_call(call, repeat=3, warmup=1)
            res = box["res"]
            dff = np.asarray(res.dff)
            p99 = _p99(dff)
            flagged = np.asarray(res.flagged)
            nonpos = int(np.count_nonzero(np.asarray(res.baseline).min(axis=1) <= 0))
            raw99 = _p99((traces.corrected - res.baseline) / res.raw_baseline)
            over = np.flatnonzero(~flagged & ~(p99 <= 10))
            listed = ", ".join(f"row {i}: {p99[i]:.1f} (vs raw F0 {raw99[i]:.1f})" for i in over)
            notes = (
                f"flagged {int(np.asarray(res.neuropil_dominated).sum())} neuropil-dominated, "
                f"F0c <= 0 in {nonpos}, NaN {int(np.count_nonzero(~np.asarray(res.baseline_ok)))};"
                f" max p99 |dF/F| unflagged {np.nanmax(np.where(flagged, np.nan, p99)):.2f}, "
                f"flagged {np.nanmax(np.where(flagged, p99, np.nan)):.2f}; unflagged > 10: "
                f"{len(over)}{' (' + listed + ')' if listed else ''}"
            )
            rows.append(Row(bench, f"{IMPLEMENTATION} {rule}", size, timing,
                            {"ROIs": traces.n_rois}, notes=notes))  # fmt: skip
    return rows


# ---------------------------------------------------------------------------- 3. cascade DS31
def cascade_recordings(limit: int | None = None) -> list[tuple[np.ndarray, ...]]:
    """(time s, F, neuropil, spike times s) of each DS31 recording with a raw F."""
    from scipy.io import loadmat

    out = []
    folder = DATA / "cascade_groundtruth_dev" / "DS31-GCaMP8m-m-V1"
    for path in sorted(folder.glob("*.mat")):
        cells = np.atleast_1d(loadmat(path, squeeze_me=True, struct_as_record=False)["CAttached"])
        for c in cells:
            t = np.asarray(c.fluo_time, float)
            F, N = np.asarray(c.fluo_raw, float), np.asarray(c.neuropil, float)
            keep = np.isfinite(t) & np.isfinite(F) & np.isfinite(N)
            spikes = np.atleast_1d(np.asarray(c.events_AP, float)) / 1e4
            out.append((t[keep], F[keep], N[keep], spikes))
    return out[:limit]


def isolated_spike_response(t: np.ndarray, dff: np.ndarray, spikes: np.ndarray) -> float:
    """Median over isolated spikes (none other within 1 s) of the peak in 0–0.3 s after it minus
    the mean over the 0.2 s before it; NaN when there is none or dF/F is NaN."""
    if not np.isfinite(dff).all():
        return float("nan")
    s = np.sort(spikes[(spikes > t[0] + 1) & (spikes < t[-1] - 1)])
    gaps = np.diff(np.concatenate([[-np.inf], np.sort(spikes), [np.inf]]))
    alone = {float(x) for x, a, b in zip(np.sort(spikes), gaps[:-1], gaps[1:], strict=True)
             if a > 1 and b > 1}  # fmt: skip
    amps = []
    for x in s:
        if float(x) not in alone:
            continue
        pre, post = (t >= x - 0.2) & (t < x), (t >= x) & (t < x + 0.3)
        if pre.any() and post.any():
            amps.append(dff[post].max() - dff[pre].mean())
    return float(np.median(amps)) if amps else float("nan")


def _cascade(quick: bool) -> list[Row]:
    if not (DATA / "cascade_groundtruth_dev").exists():
        return [skipped_row("dF/F rule, CASCADE DS31", IMPLEMENTATION, "-", f"no {DATA}")]
    recs = cascade_recordings(8 if quick else None)
    size = f"{len(recs)} recordings, {sum(len(r[0]) for r in recs)} frames, ~120 Hz"
    results: dict[tuple[float, str], list[Any]] = {}
    rows: list[Row] = []
    for r in (0.7, 1.0):
        for rule in RULES:
            box: dict[str, Any] = {}

            def call(r: float = r, rule: str = rule, box: dict = box) -> None:
                box["out"] = []
                for t, F, N, _ in recs:
                    fs = 1.0 / float(np.median(np.diff(t)))
                    box["out"].append(
                        _dff(nc.TraceSet(F=F[None].astype(np.float32),
                                         Fneu=N[None].astype(np.float32),
                                         corrected=(F - r * N)[None].astype(np.float32),
                                         coefficients=np.array([r], np.float32),
                                         ids=np.array([1])), fs, rule)
                    )  # fmt: skip

            timing = time_call(call, repeat=1, warmup=0)
            results[(r, rule)] = box["out"]
            rows.append((r, rule, timing))
    ref = [
        isolated_spike_response(t, np.asarray(res.dff)[0], sp)
        for (t, _, _, sp), res in zip(recs, results[(0.7, "corrected")], strict=True)
    ]
    out = []
    for r, rule, timing in rows:
        res_list = results[(r, rule)]
        flagged = np.array([bool(np.asarray(x.neuropil_dominated)[0]) for x in res_list])
        nan = sum(not bool(np.asarray(x.baseline_ok)[0]) for x in res_list)
        p99 = np.array([_p99(np.asarray(x.dff))[0] for x in res_list])
        amp = np.array([
            isolated_spike_response(t, np.asarray(x.dff)[0], sp)
            for (t, _, _, sp), x in zip(recs, res_list, strict=True)
        ])  # fmt: skip
        sel = flagged if r != 0.7 and flagged.any() else np.ones(len(recs), bool)
        ratio = amp[sel] / np.asarray(ref)[sel]
        ratio_text = (
            f"1-AP response / r=0.7 corrected on {'flagged' if sel is flagged else 'all'} "
            f"recordings: median {np.nanmedian(ratio):.2f}, max {np.nanmax(ratio):.2f}, "
            f"NaN {int(np.isnan(ratio).sum())}"
        )
        notes = (
            f"r={r:g}: flagged {int(flagged.sum())}/{len(recs)}, NaN {nan}; max p99 |dF/F| "
            f"{np.nanmax(p99):.2f}; 1-AP response median {np.nanmedian(amp):.3f}, max "
            f"{np.nanmax(amp):.2f}; {ratio_text}"
        )
        out.append(Row(f"dF/F rule, CASCADE DS31 jGCaMP8m, neuropil r={r:g}",
                       f"{IMPLEMENTATION} {rule}", size, timing, {"recordings": len(recs)},
                       notes=notes))  # fmt: skip
    return out


def run(quick: bool = False) -> list[Row]:
    """The three parts of the module docstring, in order."""
    return [*_synthetic(quick), *_neurofinder(quick), *_cascade(quick)]


def main(argv: list[str] | None = None) -> int:
    """Print the table (``--quick`` for the small sizes, ``--json FILE`` to keep the rows)."""
    args = sys.argv[1:] if argv is None else argv
    rows = run("--quick" in args)
    for row in rows:
        seconds = "-" if row.seconds is None else f"{row.seconds:.3g} s"
        print(f"| {row.benchmark} | {row.implementation} | {row.size} | {seconds} | {row.notes} |")
    if "--json" in args:
        path = Path(args[args.index("--json") + 1])
        path.write_text(json.dumps([row.__dict__ | {"timing": None} for row in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

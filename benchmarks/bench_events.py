"""Events that mean activity (issue 17): false events and recall, CalSciPy rule vs noise model.

Two detectors side by side, at their defaults:

* **old**: ``identify_events`` (CalSciPy: smoothed derivative, threshold 0.5 SD of the trace's own
  derivative, 0.1 s smoothing, 0.5 s timeout);
* **new**: ``detect_events`` (threshold from a robust noise model as an expected false-event rate,
  0.005/s, 0.05 s smoothing, 0.5 s timeout).

Tables:

1. **Noise**: false events per second on pure noise (white, AR(1) with τ = 0.5 s, pink 1/f) at
   7, 30 and 100 Hz, 8 traces of 2,000 s each (quick: 2 × 500 s).
2. **Ground truth** per dataset at the native frame rate: the six CASCADE sets in
   ``../shared/data/cascade_groundtruth_dev`` (``$CASCADE_GT_DIR``) and spikefinder 4, 5, 6 in
   ``../shared/data/spikefinder_groundtruth`` (``$SPIKEFINDER_DIR``). False events per second in
   silent stretches (≥ 5 s without a spike), recall of isolated spikes (no other spike within
   1 s) and of bursts (≥ 2 spikes within 0.5 s, isolated by 1 s), see
   :func:`napari_calcium.core.spikes.event_detection.score_events`. The datasets are marked
   *tune* (used to choose the defaults) or *held out*.
3. **Tuning** (full run only): the grid of ``smooth_s`` × ``false_rate_hz`` on the tuning
   datasets, the choice it makes, and a leave-one-dataset-out check (each dataset scored with the
   setting chosen on all the *others*).

Run: ``python benchmarks/run.py --only events`` (or ``python benchmarks/bench_events.py`` for the
plain tables).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _harness.results import Row
from _harness.timing import Timing
from napari_calcium.core.spikes.event_detection import (
    DEFAULT_ACTIVITY_WINDOW_S,
    DEFAULT_FALSE_RATE_HZ,
    DEFAULT_SMOOTH_S,
    detect_events,
    score_events,
    summarize_scores,
)
from napari_calcium.core.spikes.events import identify_events

IMPLEMENTATION = "napari-calcium"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CASCADE_SETS = ("DS06", "DS07", "DS08", "DS11", "DS13", "DS31")
SPIKEFINDER_SETS = ("SF4", "SF5", "SF6")
#: datasets the defaults were chosen on; all the others are held out
TUNING_SETS = ("DS06", "DS11", "DS31", "SF4")
#: the grid the defaults were chosen from (the rate is capped at 0.005/s by the noise goal)
SMOOTH_GRID_S = (0.025, 0.05, 0.075, 0.1, 0.15)
RATE_GRID_HZ = (0.001, 0.002, 0.005)
ACTIVITY_GRID_S = (1.0, 2.0, 3.0, 4.0)
#: the tuning rule: every tuning dataset under this false rate (half the goal of 0.1/s) ...
MAX_TUNING_FALSE_RATE_HZ = 0.05
# ... then the highest mean isolated-spike recall over the tuning datasets


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def cascade_dir() -> Path:
    return Path(os.environ.get("CASCADE_GT_DIR", SHARED / "cascade_groundtruth_dev"))


def spikefinder_dir() -> Path:
    return Path(os.environ.get("SPIKEFINDER_DIR", SHARED / "spikefinder_groundtruth"))


def load_cascade(name: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """Recordings of one CASCADE set (``"DS06"``...): dicts with x, t (s), fs (Hz), spikes (s)."""
    import scipy.io

    folder = cascade_dir() if folder is None else folder
    (sub,) = sorted(folder.glob(f"{name}-*"))
    out = []
    for path in sorted(sub.glob("*.mat")):
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["CAttached"]
        for k, rec in enumerate(np.atleast_1d(mat)):
            t = np.asarray(rec.fluo_time, dtype=np.float64).ravel()
            x = np.asarray(rec.fluo_mean, dtype=np.float64).ravel()
            keep = np.isfinite(t) & np.isfinite(x)
            t, x = t[keep], x[keep]
            spikes = np.sort(np.asarray(rec.events_AP, dtype=np.float64).ravel() / 1e4)
            spikes = spikes[(spikes >= t[0]) & (spikes <= t[-1])]
            out.append(
                {"name": f"{path.stem}#{k}", "x": x, "t": t, "fs": 1.0 / np.median(np.diff(t)),
                 "spikes": spikes}
            )  # fmt: skip
    return out


def _read_csv(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()[1:]
    rows = [[float(v) if v.strip() else np.nan for v in r.split(",")] for r in lines if r.strip()]
    return np.asarray(rows, dtype=np.float64).T


def load_spikefinder(name: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """Cells of spikefinder training set ``"SF4"``/``"SF5"``/``"SF6"`` (100 Hz), as above."""
    folder = spikefinder_dir() if folder is None else folder
    n = int(name[2:])
    calcium = _read_csv(folder / f"{n}.train.calcium.csv")
    counts = _read_csv(folder / f"{n}.train.spikes.csv")
    out = []
    for i, (c, s) in enumerate(zip(calcium, counts, strict=True)):
        keep = np.isfinite(c) & np.isfinite(s)
        c, s = c[keep], s[keep]
        t = np.arange(c.size) / 100.0
        out.append(
            {"name": f"{n}.{i}", "x": c, "t": t, "fs": 100.0,
             "spikes": np.repeat(t, s.astype(np.int64))}
        )  # fmt: skip
    return out


def load(name: str) -> list[dict[str, Any]]:
    """Recordings of any dataset name of :data:`CASCADE_SETS` or :data:`SPIKEFINDER_SETS`."""
    return load_spikefinder(name) if name.startswith("SF") else load_cascade(name)


def available() -> list[str]:
    """The datasets whose files are here."""
    names = []
    if cascade_dir().is_dir():
        names += [n for n in CASCADE_SETS if any(cascade_dir().glob(f"{n}-*"))]
    if spikefinder_dir().is_dir():
        names += [
            n
            for n in SPIKEFINDER_SETS
            if (spikefinder_dir() / f"{n[2:]}.train.calcium.csv").exists()
        ]
    return names


# --------------------------------------------------------------------------------------------------
# Detectors and scoring
# --------------------------------------------------------------------------------------------------
def old_detector(x: np.ndarray, fs: float) -> np.ndarray:
    """CalSciPy-style ``identify_events`` at its defaults."""
    return identify_events(x, frame_rate_hz=fs)[0]


def new_detector(**kwargs: Any) -> Callable[[np.ndarray, float], np.ndarray]:
    """``detect_events`` with `kwargs` (defaults otherwise)."""
    return lambda x, fs: detect_events(x, frame_rate_hz=fs, **kwargs)[0]


def evaluate(
    recordings: Sequence[dict[str, Any]], detector: Callable[[np.ndarray, float], np.ndarray]
) -> dict[str, float]:
    """Pooled :func:`score_events` of `detector` over `recordings`."""
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rec in recordings:
            frames = detector(rec["x"], rec["fs"])
            scores.append(
                score_events(rec["t"][frames], rec["spikes"], start_s=rec["t"][0],
                             stop_s=rec["t"][-1])
            )  # fmt: skip
    return summarize_scores(scores)


# --------------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------------
def noise_traces(kind: str, fs: float, n_rois: int, duration_s: float, seed: int) -> np.ndarray:
    """Unit-σ noise ``(n_rois, n_frames)``: ``"white"``, ``"ar1"`` (τ 0.5 s) or ``"pink"`` (1/f)."""
    import scipy.signal

    rng = np.random.default_rng(seed)
    n = round(duration_s * fs)
    w = rng.standard_normal((n_rois, n))
    if kind == "white":
        return w
    if kind == "ar1":
        g = np.exp(-1.0 / (0.5 * fs))
        return scipy.signal.lfilter([np.sqrt(1 - g * g)], [1.0, -g], w, axis=1)
    if kind == "pink":  # 1/f power: amplitude 1/sqrt(f) in the Fourier domain
        spec = np.fft.rfft(w, axis=1)
        f = np.fft.rfftfreq(n, d=1.0 / fs)
        spec[:, 1:] /= np.sqrt(f[1:])
        spec[:, 0] = 0.0
        x = np.fft.irfft(spec, n=n, axis=1)
        return x / x.std(axis=1, keepdims=True)
    raise ValueError(kind)


def noise_rates(quick: bool = False) -> list[dict[str, Any]]:
    """False events per second of each detector on each noise at 7, 30 and 100 Hz."""
    n_rois, duration = (2, 500.0) if quick else (8, 2000.0)
    out = []
    for kind in ("white", "ar1", "pink"):
        for fs in (7.0, 30.0, 100.0):
            x = noise_traces(kind, fs, n_rois, duration, seed=int(fs) + len(kind))
            total = n_rois * duration
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                old = sum(len(e) for e in identify_events(x, frame_rate_hz=fs)) / total
                new = sum(len(e) for e in detect_events(x, frame_rate_hz=fs)) / total
            out.append({"noise": kind, "fs": fs, "seconds": total, "old": old, "new": new})
    return out


# --------------------------------------------------------------------------------------------------
# Tuning: the grid, the rule, leave-one-dataset-out
# --------------------------------------------------------------------------------------------------
Setting = tuple[float, float, float]  # smooth_s, false_rate_hz, activity_window_s


def grid_scores(data: dict[str, list[dict[str, Any]]]) -> dict[Setting, dict]:
    """``{(smooth_s, false_rate_hz, activity_window_s): {dataset: summary}}`` over the grid."""
    out = {}
    for s in SMOOTH_GRID_S:
        for r in RATE_GRID_HZ:
            for a in ACTIVITY_GRID_S:
                det = new_detector(smooth_s=s, false_rate_hz=r, activity_window_s=a)
                out[(s, r, a)] = {n: evaluate(recs, det) for n, recs in data.items()}
    return out


def choose(grid: dict[Setting, dict], names: Sequence[str]) -> Setting:
    """The tuning rule applied to the datasets `names`.

    Every one of them must stay under :data:`MAX_TUNING_FALSE_RATE_HZ` false events/s; among
    those settings, the highest mean isolated-spike recall wins (ties within 0.005: the higher
    mean burst recall, then the smaller smoothing and the shorter activity window).
    """
    best, key = None, None
    for setting, per in grid.items():
        rows = [per[n] for n in names]
        if any(not r["false_rate_hz"] <= MAX_TUNING_FALSE_RATE_HZ for r in rows):
            continue
        iso = float(np.mean([r["isolated_recall"] for r in rows]))
        bur = float(np.mean([r["burst_recall"] for r in rows]))
        cand = (round(iso / 0.005), bur, -setting[0], -setting[2])
        if key is None or cand > key:
            best, key = setting, cand
    if best is None:
        raise RuntimeError("no setting of the grid meets the false-rate rule")
    return best


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------
def _fmt(s: dict[str, float]) -> str:
    return (
        f"{s['false_rate_hz']:.3f} | {s['isolated_recall']:.2f} ({int(s['isolated'])}) | "
        f"{s['burst_recall']:.2f} ({int(s['bursts'])})"
    )


def _table(header: Sequence[str]) -> list[str]:
    return ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]


def _noise_table(quick: bool, rows: list[Row]) -> list[str]:
    lines = ["Pure noise, false events/s (old: identify_events; new: detect_events):"]
    lines += _table(("noise", "Hz", "seconds", "old", "new"))
    for r in noise_rates(quick):
        lines.append(
            f"| {r['noise']} | {r['fs']:g} | {r['seconds']:g} | {r['old']:.3f} | {r['new']:.4f} |"
        )
        note = f"false events/s: old {r['old']:.3f}, new {r['new']:.4f}"
        bench = f"events on {r['noise']} noise @ {r['fs']:g} Hz"
        rows.append(Row(bench, IMPLEMENTATION, f"{r['seconds']:g} s", None, notes=note))
    return lines


def _truth_table(data: dict[str, list[dict[str, Any]]], rows: list[Row]) -> list[str]:
    import time

    lines = [
        "",
        "Ground truth at the native rate; old = identify_events defaults, new = detect_events "
        f"defaults (smooth_s={DEFAULT_SMOOTH_S:g}, false_rate_hz={DEFAULT_FALSE_RATE_HZ:g}, "
        f"activity_window_s={DEFAULT_ACTIVITY_WINDOW_S:g}); "
        "false events/s in silent stretches | recall of isolated spikes (count) | recall of "
        "bursts (count):",
    ]
    lines += _table(
        ("dataset", "role", "recordings", "Hz", "old false/s", "old isolated", "old bursts",
         "new false/s", "new isolated", "new bursts")
    )  # fmt: skip
    for n, recs in data.items():
        role = "tune" if n in TUNING_SETS else "held out"
        rate = "/".join(sorted({f"{r['fs']:.0f}" for r in recs}))
        frames = sum(r["x"].size for r in recs)
        out = {}
        for impl, det in (("identify_events (CalSciPy)", old_detector), ("detect_events", None)):
            t0 = time.perf_counter()
            s = evaluate(recs, det or new_detector())
            secs = time.perf_counter() - t0
            out[impl] = s
            note = (
                f"false {s['false_rate_hz']:.3f}/s in {s['silent_s']:.0f} s silent; isolated "
                f"{s['isolated_recall']:.2f} of {int(s['isolated'])}; bursts "
                f"{s['burst_recall']:.2f} of {int(s['bursts'])}"
            )
            bench = f"events vs ground truth {n} ({role})"
            size = f"{len(recs)} recordings, {frames} frames"
            rows.append(Row(bench, impl, size, Timing((secs,)), {"frames": frames}, notes=note))
        old, new = out.values()
        lines.append(f"| {n} | {role} | {len(recs)} | {rate} | {_fmt(old)} | {_fmt(new)} |")
    return lines


def _tuning_tables(data: dict[str, list[dict[str, Any]]]) -> list[str]:
    grid = grid_scores(data)
    tuning = [n for n in TUNING_SETS if n in data]
    chosen = choose(grid, tuning)
    lines = [
        "",
        f"Tuning grid on {', '.join(tuning)}: worst false events/s over these sets / mean "
        "isolated recall / mean burst recall:",
    ]
    lines += _table(
        ("smooth_s", "activity_window_s", *(f"false_rate_hz {r:g}" for r in RATE_GRID_HZ))
    )
    for s in SMOOTH_GRID_S:
        for a in ACTIVITY_GRID_S:
            cells = []
            for r in RATE_GRID_HZ:
                per = [grid[(s, r, a)][n] for n in tuning]
                worst = max(p["false_rate_hz"] for p in per)
                iso = np.mean([p["isolated_recall"] for p in per])
                bur = np.mean([p["burst_recall"] for p in per])
                cells.append(f"{worst:.3f} / {iso:.3f} / {bur:.3f}")
            lines.append(f"| {s:g} | {a:g} | " + " | ".join(cells) + " |")
    shipped = (DEFAULT_SMOOTH_S, DEFAULT_FALSE_RATE_HZ, DEFAULT_ACTIVITY_WINDOW_S)
    lines += [
        "",
        f"Chosen on {', '.join(tuning)}: smooth_s, false_rate_hz, activity_window_s = "
        f"{', '.join(f'{v:g}' for v in chosen)} (shipped: {', '.join(f'{v:g}' for v in shipped)}).",
        "",
        "Leave one dataset out: the setting chosen by the same rule on the other datasets, "
        "scored on the one left out (false events/s | isolated recall | burst recall):",
    ]
    lines += _table(("left out", "chosen smooth_s, rate, window", "false/s", "isolated", "bursts"))
    for n in data:
        setting = choose(grid, [m for m in data if m != n])
        text = ", ".join(f"{v:g}" for v in setting)
        lines.append(f"| {n} | {text} | {_fmt(grid[setting][n])} |")
    return lines


def tables(quick: bool = False) -> tuple[list[str], list[Row]]:
    """Markdown lines of every table, and the benchmark rows."""
    rows: list[Row] = []
    lines = _noise_table(quick, rows)
    names = available()
    if not names:
        return [*lines, "", "(no ground-truth data found)"], rows
    data = {n: load(n) for n in names}
    if quick:
        data = {n: recs[:2] for n, recs in data.items()}
    lines += _truth_table(data, rows)
    if not quick:
        lines += _tuning_tables(data)
    return lines, rows


def run(quick: bool = False) -> list[Row]:
    """Rows for ``benchmarks/run.py`` (and the markdown tables printed on stdout)."""
    lines, rows = tables(quick)
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    import sys

    print("\n".join(tables(quick="--quick" in sys.argv)[0]))

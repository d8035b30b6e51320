"""Timing of the deconvolved activity on nine ground-truth sets, leave-one-dataset-out (issue 18).

An AR(1) model has no rise, so ``deconvolve``'s activity lags the spikes by part of the
indicator's rise. Since issue 18 it is moved earlier by ``min(a · rise, cap)``, ``rise`` the
10-90 % rise of each ROI's own average transient (``estimate_response_rise_s``). This script
chooses ``a`` and ``cap`` on a grid, leave-one-dataset-out, and prints the tables of
``docs/spikes.md`` ("Timing, kinetics and noise from the data"):

* per dataset, native rate and 30 Hz: the activity with no delay (the default before issue 18,
  ``tau_rise_s=0``), the shipped default, the LODO figure (the held-out set scored with the
  ``(a, cap)`` chosen on the other eight), the indicator preset with the shipped default, the
  smoothed derivative, and oasis-deconv's ``s`` smoothed like ours (bench venv only);
* the ``(a, cap)`` each LODO fold chose.

Data: ``../shared/data/cascade_groundtruth_dev`` (DS06, DS07, DS08 zebrafish GCaMP6f 30 Hz, DS11
mouse GCaMP6f 158 Hz, DS13 mouse GCaMP6s 141-158 Hz, DS31 mouse jGCaMP8m 120 Hz) and
``spikefinder_groundtruth`` (SF4 OGB-1, SF5 GCaMP6s, SF6 GCaMP5k?, all resampled to 100 Hz).
Score (the one in the data's PROVENANCE.md): the activity averaged and the spikes counted in
40 ms bins of time, Pearson r per recording, mean per neuron, mean per dataset. 30 Hz: traces at
higher rates are resampled with ``scipy.signal.resample_poly`` (anti-aliased) first.

Run: ``python benchmarks/bench_spike_timing.py`` (about 1 minute) or
``python benchmarks/run.py --only spike_timing``.
"""

from __future__ import annotations

import itertools
import time
import warnings
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import resample_poly

from _harness.peers import optional_import
from _harness.results import Row
from _harness.timing import Timing
from bench_events import available, load
from napari_calcium.core.spikes.deconvolution.activity import (
    DEFAULT_EXPONENT,
    DELAY_PER_RISE,
    MAX_DELAY_S,
    smooth_activity,
)
from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.spikes.deconvolution.evaluation import time_binned_correlation as score

INDICATOR = {
    "DS06": "GCaMP6f", "DS07": "GCaMP6f", "DS08": "GCaMP6f", "DS11": "GCaMP6f", "DS13": "GCaMP6s",
    "DS31": "jGCaMP8m", "SF4": "OGB-1", "SF5": "GCaMP6s", "SF6": None,
}  # fmt: skip
A_GRID = (0.0, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
CAP_GRID_S = (0.06, 0.08, 0.1, 0.12, 0.15)


def at_rate(rec: dict[str, Any], target_hz: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """The recording's trace, frame times and rate; resampled to `target_hz` if it is faster."""
    x, t, fs = rec["x"], rec["t"], float(rec["fs"])
    if target_hz is None or fs <= 1.05 * target_hz:
        return x, t, fs
    ratio = Fraction(target_hz / fs).limit_denominator(200)
    y = resample_poly(x, ratio.numerator, ratio.denominator, padtype="line")
    fs2 = fs * ratio.numerator / ratio.denominator
    return y, t[0] + np.arange(y.size) / fs2, fs2


def dataset_score(per_recording: list[float], neurons: list[str]) -> float:
    """Mean over neurons of the mean over each neuron's recordings."""
    by: dict[str, list[float]] = {}
    for r, n in zip(per_recording, neurons, strict=True):
        by.setdefault(n, []).append(r)
    return float(np.nanmean([np.nanmean(v) for v in by.values()]))


def _neuron(name: str, rec: dict[str, Any]) -> str:
    return rec["name"].split("#")[0] if name.startswith("DS") else rec["name"]


def smoothed_derivative(x: np.ndarray, fs: float) -> np.ndarray:
    """``max(diff(gaussian(F, σ = 0.1 s)), 0)``."""
    d = np.diff(gaussian_filter1d(x, 0.1 * fs), prepend=x[0])
    d[0] = 0.0
    return np.clip(d, 0.0, None)


def _prepare(data: dict[str, list[dict]], target_hz: float | None) -> dict[str, list[dict]]:
    """Per recording: the undelayed solve (s, σ, rise) and the other methods' activities."""
    ofun = optional_import("oasis.functions")
    out: dict[str, list[dict]] = {}
    for name, recs in data.items():
        out[name] = []
        for rec in recs:
            x, t, fs = at_rate(rec, target_hz)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = deconvolve(x, frame_rate_hz=fs)
                ind = INDICATOR[name]
                preset = deconvolve(x, frame_rate_hz=fs, indicator=ind) if ind else res
                item = {
                    "t": t, "fs": fs, "spikes": rec["spikes"], "neuron": _neuron(name, rec),
                    "s": res.s[0].astype(np.float64), "sigma": res.parameters["smoothing_s"][0],
                    "rise": res.parameters["response_rise_s"][0],
                    "default": res.activity[0], "preset": preset.activity[0],
                    "derivative": smoothed_derivative(x, fs),
                }  # fmt: skip
                if ofun is not None:
                    s_oasis = np.asarray(ofun.deconvolve(x.astype(np.float64), penalty=1)[1])
                    item["oasis-deconv"] = smooth_activity(s_oasis, fs, item["sigma"])
            out[name].append(item)
    return out


def _delayed(item: dict, a: float, cap: float) -> np.ndarray:
    rise = item["rise"]
    shift = 0.0 if rise is None or not np.isfinite(rise) else min(a * rise, cap)
    return smooth_activity(
        item["s"], item["fs"], item["sigma"], shift_s=shift, exponent=DEFAULT_EXPONENT
    )


def _score_key(items: list[dict], key: str) -> float:
    return dataset_score(
        [score(i[key], i["t"], i["spikes"]) for i in items], [i["neuron"] for i in items]
    )


def tables(data: dict[str, list[dict]]) -> tuple[list[str], list[Row]]:
    """Markdown tables (native, 30 Hz) and benchmark rows."""
    lines: list[str] = []
    rows: list[Row] = []
    names = list(data)
    for target in (None, 30.0):
        label = "native rate" if target is None else "30 Hz"
        t0 = time.perf_counter()
        prep = _prepare(data, target)
        grid = {
            (a, cap): {n: dataset_score([score(_delayed(i, a, cap), i["t"], i["spikes"])
                                         for i in prep[n]], [i["neuron"] for i in prep[n]])
                       for n in names}
            for a, cap in itertools.product(A_GRID, CAP_GRID_S)
        }  # fmt: skip
        secs = time.perf_counter() - t0
        chosen = {
            h: max(grid, key=lambda k, h=h: (np.mean([grid[k][n] for n in names if n != h]), -k[0]))
            for h in names
        }
        methods = ["no delay", "default", "LODO", "preset", "smoothed derivative"]
        has_oasis = all("oasis-deconv" in i for n in names for i in prep[n])
        if has_oasis:
            methods.append("oasis-deconv (smoothed)")
        table: dict[str, dict[str, float]] = {m: {} for m in methods}
        for n in names:
            table["no delay"][n] = grid[(0.0, CAP_GRID_S[0])][n]
            table["default"][n] = _score_key(prep[n], "default")
            table["LODO"][n] = grid[chosen[n]][n]
            table["preset"][n] = _score_key(prep[n], "preset")
            table["smoothed derivative"][n] = _score_key(prep[n], "derivative")
            if has_oasis:
                table["oasis-deconv (smoothed)"][n] = _score_key(prep[n], "oasis-deconv")
        lines += [
            "",
            f"Correlation with the true spikes (40 ms bins), {label}; default = "
            f"min({DELAY_PER_RISE:g} x rise, {MAX_DELAY_S:g} s):",
            "",
            "| method | " + " | ".join(names) + " | mean CASCADE | mean spikefinder |",
            "|---" * (len(names) + 3) + "|",
        ]
        for m in methods:
            v = table[m]
            ds = np.mean([v[n] for n in names if n.startswith("DS")])
            sf = np.mean([v[n] for n in names if n.startswith("SF")])
            lines.append(
                f"| {m} | " + " | ".join(f"{v[n]:.3f}" for n in names) + f" | {ds:.3f} | {sf:.3f} |"
            )
            rows.append(
                Row(f"spike timing vs ground truth, {label}", f"napari-calcium {m}"
                    if not m.startswith(("smoothed", "oasis")) else m,
                    f"{len(names)} datasets", Timing((secs,)), {},
                    notes="; ".join(f"{n} {v[n]:.3f}" for n in names)
                    + f"; mean CASCADE {ds:.3f}, spikefinder {sf:.3f}")
            )  # fmt: skip
        lines += ["", f"LODO choices ({label}): " + ", ".join(f"{n} {chosen[n]}" for n in names)]
    return lines, rows


def run(quick: bool = False) -> list[Row]:
    """Rows for ``benchmarks/run.py`` (and the markdown tables printed on stdout)."""
    names = available()
    if not names:
        print("(no ground-truth data found)")
        return []
    data = {n: load(n) for n in names}
    if quick:
        data = {n: recs[:2] for n, recs in data.items()}
    lines, rows = tables(data)
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)

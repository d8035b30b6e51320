"""Fuzz the loaders of napari-calcium's own outputs: a correct result or our own exception.

Issue 15, "data safety under hostile input": mutated copies of what napari-calcium writes (see
``fuzz_output_inputs.py``): truncated, bit-flipped, byte-inserted/deleted files; ``.npz`` files
with members removed, renamed, replaced by arrays of another dtype or shape, object (pickled)
arrays, damaged or lying ``.npy`` headers; JSON with keys removed, values of the wrong type, a
byte-order mark, another encoding or deep nesting; CSV with lines and cells damaged; trace
sidecars resealed with the checksums of the damaged files (so the parser, not the checksum,
meets the damage); named pipes and links to devices in place of any file. Each may only give

* a correct result: ``load_results`` a :class:`PipelineResults` whose ROIs, traces, dF/F,
  spikes, events and summary images agree with each other (one trace row and one event list
  per ROI, 2-D float traces of one shape, 2-D summary images); ``load_rois`` a
  :class:`RoiSet` whose masks fit its image; ``load_traces`` a TraceSet (and DffResult) of
  consistent shapes; an unmutated seed must give exactly what was written;
* an instance of :class:`napari_calcium.errors.NapariCalciumError` with a message.

Anything else fails, printing the family, the input's index, its mutations, where it was raised
and how to rebuild it (``NC_FUZZ_ONLY=family:index``; the input's folder is kept). Every input is
time-boxed (SIGALRM after PER_INPUT_S, and the elapsed time checked), must leave its folder
unchanged, and leaves nothing behind. Inputs come from
``numpy.random.default_rng((SEED, family, index))``, so every run feeds the same inputs; pickled
suite2p files are unpickled only through the allow-list of ``fuzz_inputs.guarded_unpickling``.

========  ======  =================================================================
family    inputs  entry point, inputs
========  ======  =================================================================
results    1,500  load_results on a real pipeline output folder (provenance.json,
                  rois.npz, steps/deconvolve.npz + .json, events.npz, summary_images.npz)
rois       2,500  load_rois: napari-calcium .npz, neurofinder .json, label .tif, ImageJ
                  .zip and .roi, label .npy, suite2p stat.npy (+ ops.npy, iscell.npy, folder)
traces     1,500  load_traces: .npz with and without its sidecar, CSV set, spikes set
========  ======  =================================================================

5,500 inputs in about 25 s on a 2-core machine (``NC_FUZZ_SCALE=10`` runs ten times as many).
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import fuzz_inputs as fz
import fuzz_output_inputs as fo
import numpy as np
import pytest
from fuzz_inputs import (
    Broken,
    Case,
    InputTimeout,
    alarm_clock,
    attempt,
    library_logs_kept_local,
    snapshot,
)

from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.traces.extraction import TraceSet
from napari_calcium.io.roi_files import load_rois
from napari_calcium.io.trace_files import load_traces
from napari_calcium.pipeline import load_results
from napari_calcium.pipeline.results import PipelineResults

SEED = 20_250_715
SCALE = float(os.environ.get("NC_FUZZ_SCALE", "1"))
ONLY = os.environ.get("NC_FUZZ_ONLY", "")  # "family:index": rebuild and run that input alone
PER_INPUT_S = 5.0
INPUTS = {"results": 1500, "rois": 2500, "traces": 1500}
BUDGET_S = {family: 60.0 for family in INPUTS}  # each takes < 15 s on an idle 2-core machine
FAMILY_IDS = {family: k for k, family in enumerate(INPUTS)}
MAX_FAILURES = 10


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> fo.Seeds:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fo.build_seeds(tmp_path_factory.mktemp("fuzz-output-seeds"))


# ---------------------------------------------------------------------------------- harness
def _clear(folder: Path) -> None:
    """Remove the files (pipes and links included) under ``folder``, keeping its subfolders:
    an input is written into the same folders as the one before it (removing and making
    folders costs milliseconds per input on some file systems)."""
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))


def _keep(work: Path, kept: Path) -> None:
    """Copy a failing input for the report; pipes are made anew (copying one would block)."""
    for dirpath, _, filenames in os.walk(work):
        target = kept / Path(dirpath).relative_to(work)
        target.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            src = Path(dirpath, name)
            if src.is_symlink():
                (target / name).symlink_to(os.readlink(src))
            elif stat.S_ISFIFO(src.lstat().st_mode):
                os.mkfifo(target / name)
            else:
                shutil.copy2(src, target / name)


def _describe(family: str, i: int, case: Case | None, exc: BaseException, folder: Path) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    note = case.note if case else "(building the input failed)"
    return (
        f"[{family} #{i}] {type(exc).__name__}: {str(exc)[:400]}\n"
        f"    input: {note[:600]}\n    kept in: {folder}\n"
        f"    at: {where}\n"
        f"    rebuild: NC_FUZZ_ONLY={family}:{i} pytest tests/io/test_fuzz_outputs.py -k {family}"
    )


def run_family(family: str, tmp_path: Path, seeds: fo.Seeds, build, check) -> Counter:
    """Build and check ``INPUTS[family]`` inputs; returns the outcome counts."""
    n = int(INPUTS[family] * SCALE)
    indices: list[int] = list(range(n))
    if ONLY:
        only_family, _, only_index = ONLY.partition(":")
        if only_family == family:
            indices = [int(only_index)]
    root = tmp_path / family
    work = root / "input"
    work.mkdir(parents=True)
    outcomes: Counter = Counter()
    failures: list[str] = []
    slowest = (0.0, -1)
    start = time.perf_counter()
    ran = 0
    with (
        alarm_clock(PER_INPUT_S) as arm,
        warnings.catch_warnings(),
        fz.guarded_unpickling(),
        np.errstate(all="ignore"),
        library_logs_kept_local("tifffile", "roifile"),
    ):
        warnings.simplefilter("ignore")
        for i in indices:
            rng = np.random.default_rng([SEED, FAMILY_IDS[family], i])
            case = None
            try:
                _clear(work)
                case = build(seeds, rng, work, i)
                before = snapshot(work)
                t0 = time.perf_counter()
                with arm(PER_INPUT_S):
                    outcome = check(case)
                elapsed = time.perf_counter() - t0
                if elapsed > PER_INPUT_S:
                    raise Broken(f"took {elapsed:.1f} s (limit {PER_INPUT_S} s)")
                after = snapshot(work)
                if after != before:
                    changed = sorted(set(after.items()) ^ set(before.items()))
                    raise Broken(f"the input folder changed: {changed[:5]}")
            except (Exception, InputTimeout) as exc:
                kept = root / f"failed-{i:05d}"
                _keep(work, kept)
                failures.append(_describe(family, i, case, exc, kept))
                if len(failures) >= MAX_FAILURES:
                    break
                continue
            ran += 1
            outcomes[outcome] += 1
            slowest = max(slowest, (elapsed, i))
            if time.perf_counter() - start > BUDGET_S[family] * SCALE:
                failures.append(f"[{family}] over its {BUDGET_S[family] * SCALE:.0f} s budget "
                                f"after {ran} of {n} inputs")  # fmt: skip
                break
    total = time.perf_counter() - start
    print(
        f"\n{family}: {ran} inputs in {total:.1f} s (slowest #{slowest[1]}: {slowest[0]:.3f} s); "
        f"outcomes {dict(outcomes)}"
    )
    shutil.rmtree(work)
    assert not failures, f"{len(failures)} input(s) broke the contract:\n" + "\n".join(failures)
    assert sorted(os.listdir(root)) == [], "stray files left in the temporary folder"
    assert ran == len(indices)
    if not ONLY:
        ok = outcomes["ok"]
        assert ok > 0 and sum(outcomes.values()) > ok, outcomes
    return outcomes


# ----------------------------------------------------------------------------------- checks
def check_traceset(traces, dff=None, spikes=None) -> None:
    if not isinstance(traces, TraceSet):
        raise Broken(f"not a TraceSet: {type(traces).__name__}")
    F = np.asarray(traces.F)
    if F.ndim != 2 or F.dtype.kind != "f":
        raise Broken(f"F is {F.dtype} {F.shape}")
    for name in ("Fneu", "corrected", "F_chan2", "Fneu_chan2"):
        arr = getattr(traces, name)
        if arr is not None and (np.shape(arr) != F.shape or np.asarray(arr).dtype.kind != "f"):
            raise Broken(f"{name} is {np.asarray(arr).dtype} {np.shape(arr)}, F {F.shape}")
    ids = np.asarray(traces.ids)
    if ids.shape != (F.shape[0],) or ids.dtype.kind not in "iu":
        raise Broken(f"ids {ids.dtype} {ids.shape} for {F.shape[0]} rows")
    if np.shape(traces.coefficients) != (F.shape[0],):
        raise Broken(f"coefficients of shape {np.shape(traces.coefficients)}")
    rate = traces.frame_rate_hz
    if rate is not None and not (np.isfinite(rate) and rate > 0):
        raise Broken(f"frame_rate_hz={rate!r}")
    if dff is not None and (np.shape(dff.dff) != F.shape or np.shape(dff.baseline) != F.shape):
        raise Broken(f"dff {np.shape(dff.dff)} / baseline {np.shape(dff.baseline)}, F {F.shape}")
    if spikes is not None and np.shape(spikes.s) != F.shape:
        raise Broken(f"spikes {np.shape(spikes.s)}, F {F.shape}")


def check_roiset(rois) -> None:
    if not isinstance(rois, RoiSet):
        raise Broken(f"not a RoiSet: {type(rois).__name__}")
    ny, nx = rois.shape
    if rois.masks.shape != (len(rois), ny * nx):
        raise Broken(f"masks {rois.masks.shape} for {len(rois)} ROIs of a {ny}x{nx} image")
    if rois.masks.nnz and not np.isfinite(rois.masks.data).all():
        raise Broken("non-finite mask weights")


def _pixel_sets(rois: RoiSet) -> list[tuple[int, ...]]:
    """Each ROI's pixels (flat indices), sorted: equal for formats that renumber ROIs."""
    m = rois.masks
    return sorted(
        tuple(m.indices[m.indptr[i] : m.indptr[i + 1]].tolist()) for i in range(len(rois))
    )


def check_results(case: Case) -> str:
    outcome, res = attempt(load_results, case.path)
    if res is None:
        return outcome
    if not isinstance(res, PipelineResults):
        raise Broken(f"load_results returned {type(res).__name__}")
    check_roiset(res.rois)
    check_traceset(res.traces, res.dff, res.spikes)
    if res.traces.F.shape[0] != len(res.rois):
        raise Broken(f"{res.traces.F.shape[0]} trace rows for {len(res.rois)} ROIs")
    if res.events is not None:
        if len(res.events) != len(res.rois):
            raise Broken(f"events of {len(res.events)} ROIs for {len(res.rois)} ROIs")
        if any(np.asarray(e).dtype.kind not in "iu" for e in res.events):
            raise Broken("event frames that are not integers")
    for name, image in res.summary_images.items():
        if np.ndim(image) != 2:
            raise Broken(f"summary image {name!r} of shape {np.shape(image)}")
    want = case.expected
    if want is not None:
        same = (
            np.array_equal(res.rois.to_label_image(), want.rois.to_label_image())
            and np.array_equal(res.traces.F, want.traces.F)
            and np.array_equal(res.dff.dff, want.dff.dff, equal_nan=True)
            and np.array_equal(res.spikes.s, want.spikes.s)
            and all(np.array_equal(a, b) for a, b in zip(res.events, want.events, strict=True))
            and sorted(res.summary_images) == sorted(want.summary_images)
        )
        if not same:
            raise Broken("the unmutated results folder reads differently")
    return outcome


def check_rois(case: Case) -> str:
    outcome, rois = attempt(load_rois, case.path, **case.kwargs)
    if rois is None:
        return outcome
    check_roiset(rois)
    if case.expected is not None and _pixel_sets(rois) != _pixel_sets(case.expected):
        raise Broken("an unmutated ROI file reads other pixels")
    return outcome


def check_traces(case: Case) -> str:
    outcome, got = attempt(load_traces, case.path, with_spikes=True)
    if got is None:
        return outcome
    traces, dff, spikes, sidecar = got
    check_traceset(traces, dff, spikes)
    if not isinstance(sidecar, dict):
        raise Broken(f"sidecar of type {type(sidecar).__name__}")
    if case.expected is not None and not np.array_equal(traces.F, case.expected):
        raise Broken("an unmutated trace set reads other values")
    return outcome


# ----------------------------------------------------------------------------------- families
def test_fuzz_load_results(tmp_path, seeds):
    outcomes = run_family("results", tmp_path, seeds, fo.build_results, check_results)
    assert ONLY or outcomes["RecordingError"] > 0.3 * sum(outcomes.values()), outcomes


def test_fuzz_load_rois(tmp_path, seeds):
    run_family("rois", tmp_path, seeds, fo.build_rois, check_rois)


def test_fuzz_load_traces(tmp_path, seeds):
    run_family("traces", tmp_path, seeds, fo.build_traces, check_traces)

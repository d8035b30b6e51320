"""Run the headless pipeline: open -> [motion] -> [filter] -> summary -> rois -> extract -> dff
-> [deconvolve] -> [events] -> export, resumably, into one output folder.

Each step has a key (sha256 of its parameters, the keys of the steps it depends on and, for
``open``, the input checksums). A step whose recorded key matches and whose outputs all verify
(present, with their recorded size and checksum: see
:func:`~napari_calcium.pipeline.provenance.verify_output`) is skipped; changing a parameter
re-runs that step and the steps that depend on it. An output that is missing or does not verify
re-runs its step with a warning naming the file, and so the steps that depend on it (a step
whose dependency ran in this run always runs). ``provenance.json`` is rewritten after every
step, and a step is recorded only once all of its outputs are in place, so a cancelled or killed
run leaves the completed steps valid and no partial files.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OperationCancelled, OutputExistsError, RecordingError
from . import _stepfuncs as sf
from .config import PipelineConfig, load_config
from .provenance import (
    PROVENANCE_FILE,
    environment,
    file_record,
    input_records,
    now,
    read_provenance,
    step_key,
    verify_output,
    write_provenance,
)

__all__ = ["STEPS", "PipelineRun", "StepRecord", "run_pipeline"]

#: step name -> function, in run order
STEPS: dict[str, Callable[[sf.Context, str | None], list[Path]]] = {
    "open": sf.step_open,
    "frames": sf.step_frames,
    "motion": sf.step_motion,
    "filter": sf.step_filter,
    "summary": sf.step_summary,
    "rois": sf.step_rois,
    "extract": sf.step_extract,
    "dff": sf.step_dff,
    "deconvolve": sf.step_deconvolve,
    "events": sf.step_events,
    "export": sf.step_export,
}


@dataclass(frozen=True)
class StepRecord:
    """What happened to one step in a run.

    Attributes
    ----------
    name : str
    status : {"ran", "skipped", "disabled"}
        "skipped": its outputs were up to date (same key) and were reused.
    seconds : float
        Wall time of the step in this run, in seconds (0 when skipped or disabled).
    outputs : list of pathlib.Path
        The files it wrote (absolute paths).
    """

    name: str
    status: str
    seconds: float
    outputs: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class PipelineRun:
    """Result of :func:`run_pipeline`.

    Attributes
    ----------
    out_dir : pathlib.Path
    steps : list of StepRecord
        One per step, in run order.
    summary : dict
        ``n_rois``, ``n_frames``, ``frame_rate_hz``, ``duration_s``, ``n_events`` and
        ``mean_event_rate_hz`` (events per ROI per second; None without the events step),
        ``movie`` (the movie the traces come from) and ``seconds`` (the whole run).
    config : PipelineConfig
    """

    out_dir: Path
    steps: list[StepRecord]
    summary: dict[str, Any]
    config: PipelineConfig

    @property
    def provenance_path(self) -> Path:
        return self.out_dir / PROVENANCE_FILE


def _enabled(config: PipelineConfig, name: str) -> bool:
    return bool(getattr(getattr(config, name), "enabled", True))


def _plan(config: PipelineConfig) -> dict[str, tuple[list[str], str | None]]:
    """step -> (steps it depends on, the movie file it reads)."""
    prev_movie, source = "open", None
    plan: dict[str, tuple[list[str], str | None]] = {"open": ([], None)}
    plan["frames"] = (["open"], None)
    if config.frames.writes_movie:
        prev_movie, source = "frames", sf.FRAMES_MOVIE
    for name, file in (("motion", sf.MOTION_MOVIE), ("filter", sf.FILTERED_MOVIE)):
        plan[name] = ([prev_movie], source)
        if _enabled(config, name):
            prev_movie, source = name, file
    plan["summary"] = ([prev_movie], source)
    plan["rois"] = ([prev_movie], source)
    plan["extract"] = ([prev_movie, "rois"], source)
    plan["dff"] = (["extract"], None)
    plan["deconvolve"] = (["dff"], None)
    plan["events"] = (["dff"], None)
    plan["export"] = (["dff", "deconvolve"] if _enabled(config, "deconvolve") else ["dff"], None)
    return plan


def _finished(record: Mapping[str, Any] | None, key: str) -> bool:
    """The step finished earlier with this key (its outputs still to be verified)."""
    return bool(record) and record.get("key") == key and record.get("status") in ("ran", "skipped")


def _verify_outputs(record: Mapping[str, Any], out_dir: Path) -> tuple[str | None, list]:
    """(the first problem or None, the output records, mtimes refreshed where re-verified)."""
    outputs = record.get("outputs")
    if not isinstance(outputs, list):
        return f"{out_dir / PROVENANCE_FILE}: no outputs recorded", []
    checked = []
    for out in outputs:
        if not isinstance(out, Mapping):
            return f"{out_dir / PROVENANCE_FILE}: a damaged output record", []
        problem, out = verify_output(out_dir, out)
        if problem is not None:
            return problem, []
        checked.append(dict(out))
    return None, checked


def _check_stop(should_stop: Callable[[], bool] | None, before: str) -> None:
    if should_stop is not None and should_stop():
        raise OperationCancelled(f"pipeline cancelled before the {before!r} step")


def _record_failure(out: Path, record: dict, exc: BaseException) -> None:
    """Write the record of a failed step, never hiding the step's own error.

    On a full disk this write can fail too; the record on disk then still says "running" for
    the step (with no key, so the next run recomputes it) and the step's error goes on, with a
    note that the record could not be updated.
    """
    try:
        write_provenance(out, record)
    except Exception as err:  # the step's error is the one to report
        if hasattr(exc, "add_note"):
            exc.add_note(
                f"{out / PROVENANCE_FILE} could not record the failure ({err}); it still shows "
                "the step as running, and the next run recomputes it"
            )


def _start(input_path: Path, out_dir: Path, config: PipelineConfig, overwrite: bool) -> dict:
    """The provenance record to update: the folder's own, or a fresh one."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RecordingError(out_dir, "exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    old = read_provenance(out_dir)
    if old is None and any(out_dir.iterdir()) and not overwrite:
        raise OutputExistsError(out_dir)  # someone else's folder: not ours to fill
    inputs = input_records(input_path, (old or {}).get("inputs", []))
    same_input = [r["path"] for r in (old or {}).get("inputs", [])] == [r["path"] for r in inputs]
    if old is not None and not overwrite and not same_input:
        raise OutputExistsError(out_dir / PROVENANCE_FILE)  # results of another recording
    steps = {} if (old is None or overwrite) else dict(old.get("steps", {}))
    return {
        "napari_calcium_pipeline": 1,
        "created": (old or {}).get("created", now()),
        "updated": now(),
        "config_file": config.source,
        "config": config.to_dict(),
        "environment": environment(),
        "inputs": inputs,
        "movie": None,
        "steps": steps,
    }


def _summary(ctx: sf.Context, source: str | None, ran_events: bool) -> dict[str, Any]:
    from ..io.roi_files import load_rois
    from ..io.trace_files import load_traces

    info = ctx.info
    n_frames, rate = int(info["shape"][0]), float(info["frame_rate_hz"])
    duration = n_frames / rate
    n_rois = load_rois(ctx.out_dir / sf.ROIS).n_rois
    n_events = rate_hz = n_flagged = n_nan = n_dominated = None
    if (ctx.out_dir / sf.DFF).is_file():  # the dF/F quality flags (issue 17)
        dff = load_traces(ctx.out_dir / sf.DFF)[1]
        n_nan = int(np.count_nonzero(~dff.baseline_ok))  # denominator not positive: NaN
        dominated = dff.neuropil_dominated  # None: dF/F without the raw F, unknown
        n_dominated = None if dominated is None else int(np.count_nonzero(dominated))
        n_flagged = int(np.count_nonzero(dff.flagged))
    detection_warnings: list[str] = []
    check = ctx.out_dir / sf.ROIS_CHECK
    if ctx.config.rois.method != "file" and check.is_file():
        from ..io._serial import read_json

        data = read_json(check, "detection check")
        if isinstance(data, dict):
            detection_warnings = [str(w) for w in data.get("warnings", [])]
    n_corrupted = None
    if (ctx.out_dir / sf.FRAMES).is_file() and ctx.config.frames.enabled:
        from ..io._serial import read_json

        frames = read_json(ctx.out_dir / sf.FRAMES, "corrupted frames")
        if isinstance(frames, dict):
            n_corrupted = len(frames.get("corrupted") or ())
    n_unreliable = None
    if (ctx.out_dir / sf.DECONVOLVE).is_file():  # the activity's quality flag (issue 18)
        spikes = load_traces(ctx.out_dir / sf.DECONVOLVE, with_spikes=True)[2]
        if spikes is not None and "reliable" in spikes.parameters:
            n_unreliable = int(np.count_nonzero(~spikes.reliable))
    if ran_events:
        n_events = int(sum(len(e) for e in sf.load_events(ctx.out_dir / sf.EVENTS)))
        rate_hz = n_events / n_rois / duration if n_rois else 0.0
    return {
        "n_rois": int(n_rois),
        "n_frames": n_frames,
        "frame_rate_hz": rate,
        "duration_s": duration,
        "n_events": n_events,
        "mean_event_rate_hz": rate_hz,
        "n_rois_flagged": n_flagged,
        "n_rois_dff_nan": n_nan,
        "n_rois_neuropil_dominated": n_dominated,
        "dff_denominator": None if n_flagged is None else dff.parameters.get("denominator"),
        "min_baseline_fraction": None
        if n_flagged is None
        else dff.parameters.get("min_baseline_fraction"),
        "detection_warnings": detection_warnings,
        "n_rois_unreliable_activity": n_unreliable,
        "n_corrupted_frames": n_corrupted,
        "corrupted_frames_repair": ctx.config.frames.repair,
        "movie": str(ctx.input_path if source is None else ctx.out_dir / source),
    }


def summary_notes(s: dict) -> str:
    """The dF/F quality flags and detection warnings of a run's summary, for its one-line report.

    E.g. ``"; 3 ROI(s) flagged neuropil-dominated (...); warning: activity-based ROI detection
    is unreliable: ..."``, or ``""`` when nothing is flagged. The CLI and the Run pipeline
    widget add it to their summary line.

    The counts come from :func:`napari_calcium.pipeline.steps._summary`: ROIs whose dF/F is NaN
    (baseline not positive), neuropil-dominated ROIs (corrected baseline <= f x the raw one) and
    ROIs whose deconvolved activity is flagged unreliable.
    """
    text = "".join(f"; warning: {w}" for w in s.get("detection_warnings") or ())
    if s.get("n_corrupted_frames"):
        how = {"interpolate": "interpolated", "drop": "dropped"}.get(
            s.get("corrupted_frames_repair"), "kept (listed in steps/frames.json)"
        )
        text += f"; {s['n_corrupted_frames']} corrupted frame(s) {how}"
    if s.get("n_rois_unreliable_activity"):
        text += (
            f"; {s['n_rois_unreliable_activity']} ROI(s) with unreliable spike activity "
            "(transient z-score < 20: few or small transients, see DeconvolutionResult.reliable)"
        )
    if not s.get("n_rois_flagged"):
        return text
    dominated, nan = s.get("n_rois_neuropil_dominated"), s.get("n_rois_dff_nan")
    if dominated:
        f, rule = s.get("min_baseline_fraction"), s.get("dff_denominator")
        how = {
            "floored": f"dF/F over max(F0c, {f:g} x F0raw)",
            "corrected": "dF/F over that small F0c: inflated",
            "raw": "dF/F over F0raw",
        }.get(rule, "")
        text += (
            f"; {dominated} ROI(s) flagged neuropil-dominated (corrected baseline <= {f:g} x raw"
            + (f": {how})" if how else ")")
        )
    if nan:
        text += f"; {nan} ROI(s) flagged (dF/F baseline not positive: NaN, see the dff warning)"
    return text


def run_pipeline(
    input_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: str | os.PathLike | Mapping[str, Any] | PipelineConfig | None = None,
    *,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    overwrite: bool = False,
    client: Any = None,
) -> PipelineRun:
    """Run the pipeline on one recording, resuming what an earlier run already did.

    Parameters
    ----------
    input_path : str or os.PathLike
        Anything :func:`napari_calcium.open_recording` opens (a TIFF, a ``.bin``, a Bruker
        folder, ...).
    out_dir : str or os.PathLike
        Output folder (created if needed). A folder from an earlier run on the same input is
        resumed: up-to-date steps (same key, every output present and matching its recorded
        checksum) are skipped.
    config : path, mapping, PipelineConfig or None
        See :func:`~napari_calcium.pipeline.load_config`; None runs the defaults.
    progress : callable or bool, optional
        tqdm-like factory passed to the movie-level functions (``progress(total=, desc=)``).
    should_stop : callable, optional
        Polled between steps and between blocks of the movie-level steps; True stops the run
        with :class:`~napari_calcium.errors.OperationCancelled`, keeping the completed steps.
    overwrite : bool
        Recompute every step, and allow writing into a folder that holds other files or the
        results of another recording.
    client : distributed.Client, optional
        Run the per-frame steps (motion correction, filter) of this one movie chunk by chunk on
        the client's workers, which must see the input and `out_dir` at the same paths; the
        results are the same as without it. The other steps run in this process.

    Returns
    -------
    PipelineRun
        The folder, one :class:`StepRecord` per step and a summary (ROIs, frames, event rate).

    Raises
    ------
    ParameterError
        A bad config (the message names the file, section and key) or argument, found before
        anything is written: e.g. an ``[export] name`` that is not a plain file name inside
        `out_dir`.
    RecordingError
        The input or a ROI file is missing or unreadable.
    OutputExistsError
        `out_dir` holds files that are not this recording's pipeline results and `overwrite`
        is False.
    OperationCancelled
        `should_stop` returned True.

    Warns
    -----
    UserWarning
        An output of a finished step is missing or does not verify (the message names the
        file); that step and the steps that depend on it are recomputed.
    """
    t_run = time.perf_counter()
    config = load_config(config)
    input_path, out = Path(input_path).resolve(), Path(out_dir).resolve()
    record = _start(input_path, out, config, overwrite)
    plan = _plan(config)
    movie_source = sf.movie_file(config)
    record["movie"] = movie_source or str(input_path)
    write_provenance(out, record)
    ctx = sf.Context(
        input_path, out, config, progress=progress, should_stop=should_stop, client=client
    )
    keys: dict[str, str] = {}
    rerun: set[str] = set()  # steps run (not skipped) in this run: their dependents run too
    done: list[StepRecord] = []
    for name, func in STEPS.items():
        depends, source = plan[name]
        if not _enabled(config, name):
            record["steps"][name] = {"status": "disabled"}
            done.append(StepRecord(name, "disabled", 0.0, []))
            continue
        params = {k: v for k, v in config.section(name).items() if k != "enabled"}
        extra = None
        if name == "open":
            extra = [r["sha256"] for r in record["inputs"]]
        elif name == "rois" and config.rois.method == "file":
            extra = input_records(config.rois.path)[0]["sha256"]
        keys[name] = step_key(name, params, {d: keys[d] for d in depends}, extra)
        old = record["steps"].get(name)
        problem = None
        if not overwrite and not rerun & set(depends) and _finished(old, keys[name]):
            problem, checked = _verify_outputs(old, out)
            if problem is None:
                record["steps"][name] = {**old, "status": "skipped", "outputs": checked}
                outputs = [out / o["path"] for o in checked]
                done.append(StepRecord(name, "skipped", 0.0, outputs))
                continue
            warnings.warn(
                f"{problem}; recomputing the {name!r} step and the steps that depend on it",
                UserWarning,
                stacklevel=2,
            )
        _check_stop(should_stop, name)
        rerun.add(name)
        started, t0 = now(), time.perf_counter()
        record["steps"][name] = {"status": "running", "key": None, "started": started}
        if problem is not None:
            record["steps"][name]["recomputed_because"] = problem
        try:  # a SIGTERM landing in the write below still records the step as cancelled
            write_provenance(out, record)  # its old outputs are no longer vouched for
            outputs = func(ctx, source)
        except BaseException as exc:
            stopped = isinstance(exc, (OperationCancelled, KeyboardInterrupt))  # Ctrl-C, SIGTERM
            status = "cancelled" if stopped else "failed"
            record["steps"][name] = {"status": status, "key": None, "started": started,
                                     "error": f"{type(exc).__name__}: {exc}"}  # fmt: skip
            _record_failure(out, record, exc)
            raise
        seconds = time.perf_counter() - t0
        record["steps"][name] = {
            "status": "ran",
            "key": keys[name],
            "depends": depends,
            "started": started,
            "seconds": round(seconds, 3),
            "outputs": [file_record(p, out) for p in outputs],
        }
        if problem is not None:
            record["steps"][name]["recomputed_because"] = problem
        record["updated"] = now()
        write_provenance(out, record)
        done.append(StepRecord(name, "ran", seconds, list(outputs)))
    summary = _summary(ctx, movie_source, _enabled(config, "events"))
    summary["seconds"] = time.perf_counter() - t_run
    record["summary"] = summary
    record["updated"] = now()
    write_provenance(out, record)
    return PipelineRun(out_dir=out, steps=done, summary=summary, config=config)

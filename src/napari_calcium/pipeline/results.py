"""Read a pipeline output folder back: ROIs, traces, dF/F, spikes, events, summary images."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.rois.roiset import RoiSet
from ..core.spikes.deconvolution.result import DeconvolutionResult
from ..core.traces.dff import DffResult
from ..core.traces.extraction import TraceSet
from ..errors import RecordingError
from ..io._serial import NpzArrays, read_json
from . import _stepfuncs as sf
from .provenance import PROVENANCE_FILE

__all__ = ["PipelineResults", "load_results"]


@dataclass(frozen=True)
class PipelineResults:
    """What :func:`~napari_calcium.pipeline.run_pipeline` left in a folder.

    Attributes
    ----------
    folder : pathlib.Path
    rois : RoiSet
    traces : TraceSet
        ``F``, ``Fneu``, ``corrected`` (float32, ``(n_rois, n_frames)``, movie units).
    dff : DffResult or None
        None when the dff step has not run.
    spikes : DeconvolutionResult or None
        None when deconvolution is disabled or has not run.
    events : list of numpy.ndarray or None
        Event frame indices per ROI (None when the events step is disabled or has not run).
    summary_images : dict of str to numpy.ndarray
        Name (``"mean"``, ``"max"``, ``"std"``, ``"correlation"``, ``"pnr"``, ...) -> ``(y, x)``.
    movie_path : pathlib.Path
        The movie the ROIs and traces come from: the last intermediate movie (a ``.bin``) or
        the input recording.
    frame_rate_hz : float or None
    provenance : dict
        The folder's ``provenance.json``.
    """

    folder: Path
    rois: RoiSet
    traces: TraceSet
    dff: DffResult | None
    spikes: DeconvolutionResult | None
    events: list[np.ndarray] | None
    summary_images: dict[str, np.ndarray]
    movie_path: Path
    frame_rate_hz: float | None
    provenance: dict[str, Any] = field(repr=False)


def _done(provenance: dict[str, Any], step: str) -> bool:
    steps = provenance.get("steps")
    record = steps.get(step) if isinstance(steps, dict) else None
    return isinstance(record, dict) and record.get("status") in ("ran", "skipped")


def _load_events(path: Path) -> list[np.ndarray]:
    """The per-ROI event frames of ``events.npz``, checked: ``counts`` (non-negative integers,
    one per ROI) and ``frames`` (integers, as many as the counts add up to)."""
    with NpzArrays(path, "pipeline events file") as data:
        counts, frames = data["counts"], data["frames"]
    if counts.dtype.kind not in "iu" or counts.ndim != 1 or (counts.size and counts.min() < 0):
        raise RecordingError(path, f"'counts' is {counts.dtype} {counts.shape}, not event counts")
    if frames.dtype.kind not in "iu" or frames.ndim != 1:
        raise RecordingError(path, f"'frames' is {frames.dtype} {frames.shape}, not frame indices")
    if int(counts.sum(dtype=np.int64)) != frames.size:
        raise RecordingError(
            path, f"'counts' add up to {int(counts.sum(dtype=np.int64))} events but 'frames' "
            f"holds {frames.size}: damaged events file"
        )  # fmt: skip
    return list(np.split(frames, np.cumsum(counts)[:-1])) if len(counts) else []


def _load_summary(path: Path) -> dict[str, np.ndarray]:
    """The summary images of ``summary_images.npz``: 2-D real arrays, by name."""
    with NpzArrays(path, "pipeline summary images") as data:
        images = {k: data[k] for k in data.files}
    for name, image in images.items():
        if image.ndim != 2 or image.dtype.kind not in "biuf":
            raise RecordingError(
                path, f"image {name!r} is {image.dtype} of shape {image.shape}, not a 2-D image"
            )
    return images


def load_results(folder: str | os.PathLike) -> PipelineResults:
    """Load the results of a pipeline run, e.g. to continue in a notebook or in napari.

    Parameters
    ----------
    folder : str or os.PathLike
        The pipeline's output folder (with ``provenance.json``).

    Returns
    -------
    PipelineResults

    Raises
    ------
    RecordingError
        The folder does not exist, has no ``provenance.json``, or lacks ROIs or traces (the
        message names the folder and what is missing); or a result file is unreadable or its
        checksum differs from its sidecar. Every file is checked before it is used: a named
        pipe or device in place of a result file is refused by name (never waited on), and a
        truncated, bit-flipped or otherwise damaged file (a bad zip, a damaged ``.npy`` header,
        pickled data, invalid JSON, arrays of the wrong shape or dtype, results that disagree
        on the number of ROIs) raises naming the file and the problem.
    """
    from ..io.roi_files import load_rois
    from ..io.trace_files import load_traces

    root = Path(folder).resolve()
    if not root.is_dir():
        raise RecordingError(root, "pipeline results folder not found")
    record = root / PROVENANCE_FILE
    if not os.path.lexists(record):
        raise RecordingError(root, f"no {PROVENANCE_FILE}: not a pipeline results folder")
    # read_json: only a regular file is opened (a named pipe would block), with or without a
    # byte-order mark, and any damage (deep nesting included) is our error naming the file
    provenance = read_json(record, "pipeline provenance record")
    if not isinstance(provenance, dict) or "steps" not in provenance:
        raise RecordingError(record, "not a napari-calcium provenance record (no 'steps')")
    missing = [s for s in ("open", "rois", "extract") if not _done(provenance, s)]
    if missing:
        raise RecordingError(
            root, f"the pipeline has not completed the {', '.join(missing)} step(s); run it"
        )
    rois = load_rois(root / sf.ROIS)
    if _done(provenance, "deconvolve"):
        traces, dff, spikes, _ = load_traces(root / sf.DECONVOLVE, with_spikes=True)
    elif _done(provenance, "dff"):
        (traces, dff, _), spikes = load_traces(root / sf.DFF), None
    else:
        (traces, dff, _), spikes = load_traces(root / sf.EXTRACT), None
    if not np.array_equal(traces.ids, rois.ids):
        raise RecordingError(
            root, f"the traces (ROI ids {traces.ids[:5].tolist()}...) are not those of the ROIs "
            f"in {sf.ROIS} ({rois.ids[:5].tolist()}...): results of different runs mixed"
        )  # fmt: skip
    events = _load_events(root / sf.EVENTS) if _done(provenance, "events") else None
    if events is not None and len(events) != rois.n_rois:
        raise RecordingError(
            root / sf.EVENTS, f"holds events of {len(events)} ROIs, {sf.ROIS} has {rois.n_rois}"
        )
    images = _load_summary(root / sf.SUMMARY) if _done(provenance, "summary") else {}
    movie = provenance.get("movie")
    if not isinstance(movie, str) or not movie or "\0" in movie:
        raise RecordingError(record, f"records no usable movie path ('movie': {movie!r:.60})")
    movie_path = root / movie if not Path(movie).is_absolute() else Path(movie)
    return PipelineResults(
        folder=root,
        rois=rois,
        traces=traces,
        dff=dff,
        spikes=spikes,
        events=events,
        summary_images=images,
        movie_path=movie_path,
        frame_rate_hz=traces.frame_rate_hz,
        provenance=provenance,
    )

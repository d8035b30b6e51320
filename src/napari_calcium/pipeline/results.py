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
from . import _stepfuncs as sf
from .provenance import PROVENANCE_FILE, read_provenance

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
    return provenance.get("steps", {}).get(step, {}).get("status") in ("ran", "skipped")


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
        checksum differs from its sidecar.
    """
    from ..io.roi_files import load_rois
    from ..io.trace_files import load_traces

    root = Path(folder).resolve()
    if not root.is_dir():
        raise RecordingError(root, "pipeline results folder not found")
    provenance = read_provenance(root)
    if provenance is None:
        raise RecordingError(root, f"no {PROVENANCE_FILE}: not a pipeline results folder")
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
    events = sf.load_events(root / sf.EVENTS) if _done(provenance, "events") else None
    images: dict[str, np.ndarray] = {}
    if _done(provenance, "summary"):
        with np.load(root / sf.SUMMARY, allow_pickle=False) as data:
            images = {k: data[k] for k in data.files}
    movie = provenance.get("movie")
    movie_path = root / movie if movie and not Path(movie).is_absolute() else Path(str(movie))
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

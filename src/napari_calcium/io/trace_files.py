"""Export traces exactly as stored: NPZ, CSV and a JSON sidecar (NWB in :mod:`._nwb`).

:func:`save_traces` writes the arrays of a :class:`~napari_calcium.core.traces.extraction.TraceSet`
(and of a :class:`~napari_calcium.core.traces.dff.DffResult`, a
:class:`~napari_calcium.core.spikes.deconvolution.result.DeconvolutionResult` and the event onsets
of :func:`~napari_calcium.core.spikes.events.identify_events`) **unchanged**: no display scaling,
smoothing, offset or percentage is ever applied, and the sidecar says so (``"transform":
"none"``). suite2p's GUI exported display-transformed values that users then compared with
``F.npy``; this module never does.

Files, for ``save_traces("out/session.npz", ...)`` or ``"out/session.csv"``:

- ``session.npz``: ``F``, ``Fneu``, ``corrected``, ``coefficients``, ``ids``, ``time_s`` (and
  ``F_chan2``, ``Fneu_chan2``, ``dff``, ``baseline`` when present), float32 as stored, plus
  ``frame_rate_hz`` and the parameters as JSON text. With spikes: ``deconv_c``, ``deconv_s``,
  ``deconv_activity``, ``deconv_baseline`` and the per-ROI ``deconv_lam``,
  ``deconv_tau_decay_s``, ``deconv_tau_rise_s``, ``deconv_noise``. With events:
  ``events_roi_id`` and ``events_frame`` (int64, one entry per event, by ROI then frame) and
  ``events_parameters`` (JSON text). No pickles (``np.load(..., allow_pickle=False)`` reads it).
- CSV: one file per array, ``session_F.csv``, ``session_Fneu.csv``, ``session_corrected.csv``,
  ``session_dff.csv``, ``session_baseline.csv``, ...: one row per frame, a ``time_s`` column
  (``frame`` when the frame rate is unknown), then one column per ROI named ``roi_<id>``. Values
  are written with 9 significant digits (``%.9g``), which round-trips float32 bit for bit.
  ``session_coefficients.csv`` holds ``roi_id,neuropil_coefficient``; spikes add
  ``session_deconv_c.csv``, ``session_deconv_s.csv``, ... (their per-ROI λ, τ and noise are in
  the sidecar); events add ``session_events.csv``, a long table with one row per event:
  ``roi_id,frame,time_s`` (``roi_id,frame`` when the frame rate is unknown).
- The sidecar: extraction, dF/F, deconvolution and event parameters, frame rate, ROI table
  summary, package versions, creation time, every data file written with its sha256, and
  ``"transform": "none"``. It is ``session.json`` for the NPZ and ``session.csv.json`` for the
  CSV set, so both formats of one name live side by side (an NPZ whose own name ends in
  ``.csv``, ``x.csv.npz``, has ``x.csv.npz.json``). :func:`load_traces` also reads a CSV set
  whose sidecar is ``session.json``, as earlier versions wrote it.

All files of a set are written to temporary files first and renamed into place only when every
one of them was written, so a failure never leaves a partial set; nothing is overwritten unless
``overwrite=True`` (checked for every target before anything is written).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.rois.roiset import RoiSet
from ..core.spikes.deconvolution.result import DeconvolutionResult
from ..core.spikes.events import _event_list
from ..core.traces.dff import DffResult
from ..core.traces.extraction import TraceSet
from ..errors import NapariCalciumError, ParameterError, RecordingError, ShapeError
from ._atomic import atomic_output, check_target, require_regular_file
from ._serial import (
    READ_ERRORS,
    NpzArrays,
    describe_error,
    host,
    jsonable,
    open_regular,
    read_json,
    sha256,
    versions,
)
from ._trace_spikes import SPIKE_PER_ROI, check_spikes, spikes_from, spikes_info

__all__ = ["TRACE_FORMATS", "load_traces", "save_traces", "trace_file_names"]

#: Formats :func:`save_traces` writes.
TRACE_FORMATS = ("npz", "csv")

_MAGIC = "napari-calcium-traces"
#: the newest file version this module reads; sets without spikes are written as version 1
#: (as before), sets with spikes as 2 so that older readers refuse them instead of misreading
_VERSION = 2
#: trace arrays in file order: (name, where it lives, what it is)
_TRACE_ARRAYS = (
    ("F", "traces", "cell fluorescence, weighted mean over the cell mask (movie units)"),
    ("Fneu", "traces", "neuropil fluorescence, mean over the surround mask (movie units)"),
    ("corrected", "traces", "F - coefficient * Fneu (movie units)"),
    ("F_chan2", "traces", "cell fluorescence of the second channel (movie units)"),
    ("Fneu_chan2", "traces", "neuropil fluorescence of the second channel (movie units)"),
    ("dff", "dff", "dF/F (dF/sqrt(F) for method 'dff_sqrt'), a fraction, not percent"),
    ("baseline", "dff", "baseline F0 used for dff, offset included (movie units)"),
    ("deconv_c", "spikes", "deconvolution: denoised calcium above its baseline (input units)"),
    ("deconv_s", "spikes", "deconvolution: inferred activity per frame, >= 0 (input units)"),
    ("deconv_activity", "spikes", "deconvolution: activity estimate per frame (input units)"),
    ("deconv_baseline", "spikes", "deconvolution: baseline; fit = deconv_baseline + deconv_c"),
)
_ARRAY_NAMES = tuple(name for name, _, _ in _TRACE_ARRAYS)
_READ_ERRORS = READ_ERRORS
#: what names the events file of a CSV set (``<stem>_events.csv``) and marks events in `present`
_EVENTS = "events"
#: the NPZ members of the events: (roi id, frame) of each event, one entry per event
_EVENT_MEMBERS = ("events_roi_id", "events_frame")
_EVENTS_DESCRIPTION = (
    "event onsets: one entry per event, by ROI (in the traces' order) then frame; frame is the "
    "0-based index of the onset frame, time_s = frame / frame_rate_hz"
)


def _check_inputs(traces: Any, dff: Any, rois: Any, spikes: Any = None) -> dict[str, np.ndarray]:
    """The arrays to write, by name, after checking types and shapes (host numpy, as stored)."""
    if not isinstance(traces, TraceSet):
        raise ParameterError(f"save_traces needs a TraceSet; got {type(traces).__name__}")
    if dff is not None and not isinstance(dff, DffResult):
        raise ParameterError(
            f"dff must be a DffResult (from compute_dff); got {type(dff).__name__}"
        )
    if rois is not None and not isinstance(rois, RoiSet):
        raise ParameterError(f"rois must be a RoiSet; got {type(rois).__name__}")
    if spikes is not None and not isinstance(spikes, DeconvolutionResult):
        raise ParameterError(
            f"spikes must be a DeconvolutionResult (from deconvolve); got {type(spikes).__name__}"
        )
    arrays: dict[str, np.ndarray] = {}
    owners = {"traces": traces, "dff": dff, "spikes": spikes}
    for name, owner, _ in _TRACE_ARRAYS:
        source = owners[owner]
        attr = name.removeprefix("deconv_") if owner == "spikes" else name
        value = None if source is None else getattr(source, attr)
        if value is None:
            continue
        arr = host(value)
        if arr.ndim != 2 or arr.dtype.kind != "f":
            raise ShapeError(
                f"{name} must be a 2-D float (n_rois, n_frames) array; got {arr.dtype} {arr.shape}"
            )
        arrays[name] = arr
    shape = arrays["F"].shape
    for name, arr in arrays.items():
        if arr.shape != shape:
            raise ShapeError(f"{name} has shape {arr.shape} but F has {shape} (n_rois, n_frames)")
    ids = np.asarray(traces.ids)
    coef = np.asarray(traces.coefficients)
    if ids.shape != (shape[0],) or coef.shape != (shape[0],):
        raise ShapeError(
            f"traces have {shape[0]} rows but ids has shape {ids.shape} and coefficients "
            f"{coef.shape}; each needs one entry per ROI"
        )
    if ids.dtype.kind not in "iu" or np.unique(ids).size != ids.size:
        raise ParameterError("TraceSet ids must be unique integers")
    if rois is not None and not np.array_equal(np.asarray(rois.ids), ids):
        raise ParameterError(
            "rois and traces list different ROI ids (or in another order); pass the RoiSet the "
            "traces were extracted from"
        )
    rate = traces.frame_rate_hz
    if rate is not None and not (math.isfinite(float(rate)) and float(rate) > 0):
        raise ParameterError(f"frame_rate_hz must be positive; got {rate!r}")
    if spikes is not None:
        arrays.update(check_spikes(spikes, ids, rate))
    arrays["coefficients"] = coef
    arrays["ids"] = ids.astype(np.int64)
    return arrays


def _check_events(events: Any, n_rois: int, n_frames: int) -> list[np.ndarray]:
    """`events` as one sorted ``intp`` array of onset frames per ROI, after checking they fit.

    Raises
    ------
    ParameterError
        Not a per-ROI list of whole frame indices, or frames outside ``[0, n_frames)``.
    ShapeError
        Another number of ROIs than the traces have.
    """
    rows = _event_list(events, "events", n_frames=n_frames)
    if len(rows) != n_rois:
        raise ShapeError(
            f"events list {len(rows)} ROIs but the traces have {n_rois}; pass one list of onset "
            "frames per ROI, in the traces' order (identify_events of these traces)"
        )
    return rows


def _events_long(ids: np.ndarray, rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(roi id, frame) of every event, int64, by ROI (in `ids` order) then frame."""
    roi = np.repeat(ids.astype(np.int64), [len(r) for r in rows])
    frames = [np.asarray(r, np.int64) for r in rows]
    return roi, (np.concatenate(frames) if frames else np.zeros(0, np.int64))


def _format_of(path: Path, format: str | None) -> str:
    if format is None:
        format = path.suffix.lower().lstrip(".")
        if format not in TRACE_FORMATS:
            raise ParameterError(
                f"cannot tell the trace format from {path.name!r}; use .npz or .csv, or format="
            )
    if format not in TRACE_FORMATS:
        raise ParameterError(f"format must be one of {TRACE_FORMATS}; got {format!r}")
    return format


def _stem_path(path: Path) -> Path:
    return path.with_suffix("") if path.suffix.lower() in (".npz", ".csv", ".json") else path


def _sidecar_path(stem: Path, fmt: str) -> Path:
    """The sidecar of the `fmt` set of `stem`; the names of the two formats never meet.

    A CSV set's sidecar is ``<stem>.csv.json``; an NPZ's is ``<stem>.json`` (as it always was),
    unless the stem itself ends in ``.csv``, where that name is a CSV set's: then
    ``<stem>.npz.json``.
    """
    if fmt == "csv":
        return stem.with_name(stem.name + ".csv.json")
    if stem.name.lower().endswith(".csv"):
        return stem.with_name(stem.name + ".npz.json")
    return stem.with_name(stem.name + ".json")


def trace_file_names(
    path: str | os.PathLike, present: tuple[str, ...], format: str | None = None
) -> list[Path]:
    """The files :func:`save_traces` writes for `path` (data files first, the sidecar last).

    Parameters
    ----------
    path : str or os.PathLike
        The path given to :func:`save_traces`.
    present : tuple of str
        The trace arrays that exist (e.g. ``("F", "Fneu", "corrected", "dff", "baseline")``),
        and ``"events"`` when events are saved too (a CSV set then has ``<stem>_events.csv``).
    format : {"npz", "csv"}, optional
        Default from the suffix of `path`.

    Returns
    -------
    list of pathlib.Path
        The data files, then the sidecar: ``<stem>.json`` for an NPZ, ``<stem>.csv.json`` for
        a CSV set.
    """
    p = Path(path)
    fmt = _format_of(p, format)
    stem = _stem_path(p)
    if fmt == "npz":
        files = [stem.with_name(stem.name + ".npz")]
    else:
        names = [n for n in _ARRAY_NAMES if n in present] + ["coefficients"]
        names += [_EVENTS] if _EVENTS in present else []
        files = [stem.with_name(f"{stem.name}_{n}.csv") for n in names]
    return [*files, _sidecar_path(stem, fmt)]


# ------------------------------------------------------------------------------------- writers
def _time_column(n_frames: int, rate: float | None) -> tuple[str, np.ndarray]:
    if rate is None:
        return "frame", np.arange(n_frames, dtype=np.int64)
    return "time_s", np.arange(n_frames, dtype=np.float64) / float(rate)


def _write_npz(tmp: Path, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
    payload = {k: v for k, v in arrays.items()}
    payload.update(
        format=np.array(_MAGIC),
        version=np.array(extra["version"]),
        frame_rate_hz=np.array(
            np.nan if extra["frame_rate_hz"] is None else extra["frame_rate_hz"]
        ),
        extraction_parameters=np.array(json.dumps(extra["extraction"])),
        dff_method=np.array("" if extra["dff"] is None else extra["dff"]["method"]),
        dff_parameters=np.array(json.dumps(None if extra["dff"] is None else extra["dff"])),
    )
    if extra["spikes"] is not None:
        payload["deconv_parameters"] = np.array(json.dumps(extra["spikes"]))
    if extra["events"] is not None:
        roi, frame = _events_long(arrays["ids"], extra["events"])
        payload.update(events_roi_id=roi, events_frame=frame)
        payload["events_parameters"] = np.array(json.dumps(extra["events_info"]))
    if extra["frame_rate_hz"] is not None:
        payload["time_s"] = _time_column(arrays["F"].shape[1], extra["frame_rate_hz"])[1]
    with open(tmp, "wb") as fh:
        np.savez(fh, **payload)


def _write_csv(tmp: Path, name: str, arrays: dict[str, np.ndarray], rate: float | None) -> None:
    """One CSV: rows = frames, ``time_s`` (or ``frame``) then ``roi_<id>`` columns."""
    ids = arrays["ids"]
    if name == "coefficients":
        rows = np.column_stack([ids.astype(np.float64), arrays["coefficients"]])
        fmt = ["%d", "%.17g" if arrays["coefficients"].dtype == np.float64 else "%.9g"]
        header = "roi_id,neuropil_coefficient"
    else:
        data = arrays[name]
        tname, tcol = _time_column(data.shape[1], rate)
        digits = "%.17g" if data.dtype == np.float64 else "%.9g"
        rows = np.column_stack([tcol.astype(np.float64), data.T.astype(np.float64)])
        fmt = ["%d" if rate is None else "%.17g"] + [digits] * data.shape[0]
        header = ",".join([tname] + [f"roi_{int(i)}" for i in ids])
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        np.savetxt(fh, rows, fmt=fmt, delimiter=",", header=header, comments="")


def _event_columns(rate: float | None) -> list[str]:
    return ["roi_id", "frame"] + ([] if rate is None else ["time_s"])


def _write_events_csv(
    tmp: Path, ids: np.ndarray, events: list[np.ndarray], rate: float | None
) -> None:
    """The events table: one row per event, ``roi_id,frame,time_s`` (no time without a rate)."""
    roi, frame = _events_long(ids, events)
    columns = _event_columns(rate)
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(columns) + "\n")
        if rate is None:
            for r, f in zip(roi.tolist(), frame.tolist(), strict=True):
                fh.write(f"{r},{f}\n")
        else:
            for r, f in zip(roi.tolist(), frame.tolist(), strict=True):
                fh.write(f"{r},{f},{f / rate!r}\n")


def _events_info(
    events: list[np.ndarray] | None, source: str | None, fmt: str, file: str, rate: float | None
) -> dict[str, Any] | None:
    """What the sidecar (and the NPZ) records of the events; `file` is the CSV set's table."""
    if events is None:
        return None
    info: dict[str, Any] = {
        "source": source,
        "n_events": sum(len(e) for e in events),
        "counts": [len(e) for e in events],
        "description": _EVENTS_DESCRIPTION,
    }
    if fmt == "csv":
        info.update(file=file, columns=_event_columns(rate))
    else:
        info["arrays"] = list(_EVENT_MEMBERS)
    return info


def _sidecar(arrays, traces, dff, rois, metadata, files, fmt, extra) -> dict[str, Any]:
    n_rois, n_frames = arrays["F"].shape
    rate = None if traces.frame_rate_hz is None else float(traces.frame_rate_hz)
    roi_summary = None
    if rois is not None:
        c = rois.centroids
        roi_summary = {
            "image_shape": list(rois.shape),
            "pixel_size_um": rois.pixel_size_um,
            "ids": rois.ids,
            "area_px": rois.area,
            "centroid_y_px": c[:, 0],
            "centroid_x_px": c[:, 1],
            "is_cell": rois.is_cell,
        }
    if metadata is not None and not isinstance(metadata, Mapping):
        metadata = metadata.to_dict() if hasattr(metadata, "to_dict") else metadata
    described = {n: d for n, _, d in _TRACE_ARRAYS}
    return jsonable(
        {
            "format": _MAGIC,
            "version": extra["version"],
            "file_format": fmt,
            "transform": "none",
            "transform_note": "values are exactly the stored arrays: no scaling, smoothing, "
            "offset or percentage applied on export",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "software": versions(),
            "n_rois": n_rois,
            "n_frames": n_frames,
            "frame_rate_hz": rate,
            "time": "time_s = frame_index / frame_rate_hz" if rate else "frame index only",
            "ids": arrays["ids"],
            "arrays": {
                n: {"dtype": str(a.dtype), "shape": list(a.shape), "description": described[n]}
                for n, a in arrays.items()
                if n in described
            },
            "neuropil_coefficients": arrays["coefficients"],
            "extraction": dict(traces.parameters),
            "dff": None if dff is None else {"method": dff.method, "parameters": dff.parameters},
            **({} if extra["spikes"] is None else {"deconvolution": extra["spikes"]}),
            **({} if extra["events"] is None else {"events": extra["events_info"]}),
            "rois": roi_summary,
            "metadata": metadata,
            "files": files,
        }
    )


def save_traces(
    path: str | os.PathLike,
    traces: TraceSet,
    *,
    dff: DffResult | None = None,
    rois: RoiSet | None = None,
    spikes: DeconvolutionResult | None = None,
    spikes_input: str | None = None,
    events: Sequence[Any] | None = None,
    events_input: str | None = None,
    metadata: Mapping[str, Any] | Any | None = None,
    format: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write traces (dF/F, spikes) exactly as stored, with a JSON sidecar, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        ``<folder>/<stem>.npz`` or ``<folder>/<stem>.csv`` (see the module docstring for the
        files each writes; the sidecar is ``<stem>.json`` for an NPZ, ``<stem>.csv.json`` for a
        CSV set, so an NPZ and a CSV set of one name never share a file).
    traces : TraceSet
        From :func:`~napari_calcium.extract_traces`.
    dff : DffResult, optional
        From :func:`~napari_calcium.compute_dff` on these traces; adds ``dff`` and ``baseline``.
    rois : RoiSet, optional
        The ROIs of `traces` (same ids, same order); their table summary (ids, areas,
        centroids) goes into the sidecar.
    spikes : DeconvolutionResult, optional
        From :func:`~napari_calcium.core.spikes.deconvolution.api.deconvolve` on these traces (same
        ids, same order): adds ``deconv_c``, ``deconv_s``, ``deconv_activity`` and
        ``deconv_baseline``, and its per-ROI λ, τ and noise, method and parameters.
    spikes_input : str, optional
        What `spikes` was computed from (e.g. ``"dff"`` or ``"corrected"``), recorded in the
        sidecar.
    events : list of array_like, optional
        Event onsets of these traces, one sequence of 0-based frame indices per ROI in the
        traces' order, as :func:`~napari_calcium.core.spikes.events.identify_events` returns
        them (any form it accepts: a boolean ``(n_rois, n_frames)`` raster too). NPZ:
        ``events_roi_id`` and ``events_frame``; CSV: ``<stem>_events.csv``, one row per event
        (``roi_id,frame,time_s``).
    events_input : str, optional
        What `events` were found in (e.g. ``"dff"``), recorded in the sidecar.
    metadata : dict or RecordingMetadata, optional
        Anything else to record in the sidecar (JSON-able values).
    format : {"npz", "csv"}, optional
        Default from the suffix of `path`.
    overwrite : bool
        Replace existing files. Otherwise any existing target raises before anything is written.

    Returns
    -------
    list of pathlib.Path
        The files written, data files first, the sidecar last.

    Raises
    ------
    OutputExistsError
        A target exists and `overwrite` is False (nothing was written).
    RecordingError
        A target is not a regular file (a folder, named pipe, device, or a link to one), with
        or without `overwrite` (nothing was written).
    ShapeError
        Arrays of different shapes, ids/coefficients not one per ROI, or `events` for another
        number of ROIs.
    ParameterError
        Unknown format, mismatched `rois`, wrong argument types, or `events` that are not
        whole frame indices inside the traces.
    """
    p = Path(path)
    fmt = _format_of(p, format)
    arrays = _check_inputs(traces, dff, rois, spikes)
    rows = None if events is None else _check_events(events, *arrays["F"].shape)
    targets = trace_file_names(p, (*arrays, *([_EVENTS] if rows is not None else [])), fmt)
    for target in targets:
        check_target(target, overwrite=overwrite)
    rate = None if traces.frame_rate_hz is None else float(traces.frame_rate_hz)
    sidecar_target, data_targets = targets[-1], targets[:-1]
    with contextlib.ExitStack() as stack:
        # the sidecar's context is entered first so it is renamed into place last
        sidecar_tmp = stack.enter_context(atomic_output(sidecar_target, overwrite=overwrite))
        tmps = [stack.enter_context(atomic_output(t, overwrite=overwrite)) for t in data_targets]
        extra = {
            "version": 1 if spikes is None else 2,
            "spikes": spikes_info(spikes, arrays, spikes_input),
            "frame_rate_hz": rate,
            "extraction": jsonable(dict(traces.parameters)),
            "dff": None
            if dff is None
            else {"method": dff.method, "parameters": jsonable(dict(dff.parameters))},
            "events": rows,
            "events_info": jsonable(
                _events_info(rows, events_input, fmt, data_targets[-1].name, rate)
            ),
        }
        if fmt == "npz":
            _write_npz(tmps[0], arrays, extra)
        else:
            for tmp, target in zip(tmps, data_targets, strict=True):
                name = target.stem[len(_stem_path(p).name) + 1 :]
                if name == _EVENTS:
                    _write_events_csv(tmp, arrays["ids"], rows, rate)
                else:
                    _write_csv(tmp, name, arrays, rate)
        files = [
            {"name": t.name, "sha256": sha256(tmp), "bytes": tmp.stat().st_size}
            for t, tmp in zip(data_targets, tmps, strict=True)
        ]
        sidecar = _sidecar(arrays, traces, dff, rois, metadata, files, fmt, extra)
        with open(sidecar_tmp, "w", encoding="utf-8") as fh:
            json.dump(sidecar, fh, indent=1, allow_nan=False)
            fh.write("\n")
    return targets


# ------------------------------------------------------------------------------------- loading
@contextlib.contextmanager
def _reading(path: Path, what: str):
    try:
        yield
    except RecordingError:
        raise
    except _READ_ERRORS as exc:
        detail = str(exc) if isinstance(exc, NapariCalciumError) else describe_error(exc)
        raise RecordingError(path, f"cannot read it as {what}: {detail}") from exc


def _read_sidecar(path: Path) -> dict[str, Any]:
    if not os.path.lexists(path):
        raise RecordingError(path, "sidecar not found; it is written next to the data files")
    data = read_json(path, "napari-calcium trace sidecar")
    if not isinstance(data, dict) or data.get("format") != _MAGIC:
        raise RecordingError(path, "not a napari-calcium trace sidecar (no 'format' marker)")
    version = data.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise RecordingError(path, f"'version' must be an integer; got {version!r:.40}")
    if version > _VERSION:
        raise RecordingError(path, "written by a newer napari-calcium; upgrade to read it")
    files = data.get("files", [])
    ok = isinstance(files, list) and all(
        isinstance(e, dict) and _plain_name(e.get("name")) and isinstance(e.get("sha256"), str)
        for e in files
    )
    if not ok:
        raise RecordingError(
            path, "'files' must list the data files as {\"name\", \"sha256\"} entries, each a "
            "plain file name in the sidecar's folder"
        )  # fmt: skip
    return data


def _plain_name(name: Any) -> bool:
    """A file name without a folder part (a sidecar may only name files beside it)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


def _verify(sidecar: dict[str, Any], folder: Path, sidecar_path: Path) -> None:
    for entry in sidecar.get("files", []):
        f = folder / entry["name"]
        if not os.path.lexists(f):
            continue
        with open_regular(f, "trace file") as fh:
            digest = hashlib.sha256()
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != entry["sha256"]:
            raise RecordingError(
                f,
                f"contents differ from the sha256 recorded in {sidecar_path.name}; the file "
                "was changed or corrupted after it was written",
            )


def _text(z: NpzArrays, name: str) -> str:
    """A 0-d text array of a traces .npz."""
    arr = z[name]
    if arr.dtype.kind != "U" or arr.ndim != 0:
        raise RecordingError(z.path, f"array {name!r} is {arr.dtype} {arr.shape}, not text")
    return str(arr)


def _number(z: NpzArrays, name: str, kinds: str) -> float:
    arr = z[name]
    if arr.dtype.kind not in kinds or arr.ndim != 0:
        raise RecordingError(z.path, f"array {name!r} is {arr.dtype} {arr.shape}, not a number")
    return arr.item()


def _json_member(z: NpzArrays, name: str) -> Any:
    try:
        return json.loads(_text(z, name))
    except (ValueError, RecursionError) as exc:
        raise RecordingError(z.path, f"array {name!r} is not valid JSON ({exc})") from None


def _load_npz(path: Path) -> tuple[dict[str, np.ndarray], float | None, dict, Any, Any]:
    what = "a napari-calcium traces .npz"
    with _reading(path, what), NpzArrays(path, what) as z:
        if "format" not in z or _text(z, "format") != _MAGIC:
            raise RecordingError(path, "not a napari-calcium traces .npz (no 'format' marker)")
        if _number(z, "version", "iu") > _VERSION:
            raise RecordingError(path, "written by a newer napari-calcium; upgrade to read it")
        names = (*_ARRAY_NAMES, *SPIKE_PER_ROI, *_EVENT_MEMBERS, "coefficients", "ids")
        arrays = {n: z[n] for n in names if n in z}
        rate = float(_number(z, "frame_rate_hz", "fiu"))
        params = _json_member(z, "extraction_parameters")
        dff_info = _json_member(z, "dff_parameters")
        spikes_info = _json_member(z, "deconv_parameters") if "deconv_parameters" in z else None
    if any(n in arrays for n in _EVENT_MEMBERS) and not all(n in arrays for n in _EVENT_MEMBERS):
        raise RecordingError(path, f"has only one of the event arrays {_EVENT_MEMBERS}: damaged")
    return arrays, (None if math.isnan(rate) else rate), params, dff_info, spikes_info


def _read_csv(path: Path, ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    with _reading(path, "a napari-calcium traces CSV"), open_regular(path, "trace CSV") as raw:
        fh = io.TextIOWrapper(raw, encoding="utf-8-sig")
        header = fh.readline().strip().split(",")
        if header[0] not in ("time_s", "frame") or not all(
            h.startswith("roi_") and h[4:].isdigit() and len(h) < 24 for h in header[1:]
        ):
            raise RecordingError(path, "header must be time_s (or frame), roi_<id>, ...")
        file_ids = np.array([int(h[4:]) for h in header[1:]], np.int64)
        if ids is not None and not np.array_equal(file_ids, ids):
            raise RecordingError(path, "its roi_<id> columns differ from the other files")
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
        if table.shape[1] != len(header):
            raise RecordingError(path, f"rows have {table.shape[1]} values, header {len(header)}")
    return file_ids, table[:, 1:].T


def _read_events_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(roi id, frame) columns of an events table (its ``time_s`` column is derived: unread)."""
    with _reading(path, "a napari-calcium events CSV"), open_regular(path, "events CSV") as raw:
        fh = io.TextIOWrapper(raw, encoding="utf-8-sig")
        header = fh.readline().strip().split(",")
        if header not in (["roi_id", "frame"], ["roi_id", "frame", "time_s"]):
            raise RecordingError(path, "header must be roi_id,frame,time_s (or roi_id,frame)")
        rest = fh.read()
        if not rest.strip():  # a set without a single event
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        table = np.loadtxt(io.StringIO(rest), delimiter=",", dtype=np.float64, ndmin=2)
        if table.shape[1] != len(header):
            raise RecordingError(path, f"rows have {table.shape[1]} values, header {len(header)}")
    columns = table[:, :2]
    if not np.all(np.isfinite(columns) & (columns == np.round(columns)) & (abs(columns) < 2**53)):
        raise RecordingError(path, "its roi_id and frame columns must hold whole numbers")
    return columns[:, 0].astype(np.int64), columns[:, 1].astype(np.int64)


def _events_from(arrays: dict[str, np.ndarray], n_frames: int, where: Path) -> list | None:
    """The per-ROI onset frames (sorted ``intp`` arrays, in the traces' order), or None."""
    if "events_frame" not in arrays:
        return None
    roi, frame, ids = arrays["events_roi_id"], arrays["events_frame"], arrays["ids"]
    for name, a in (("events_roi_id", roi), ("events_frame", frame)):
        if a.dtype.kind not in "iu" or a.ndim != 1:
            raise RecordingError(where, f"{name!r} is {a.dtype} {a.shape}, not integer numbers")
    if roi.shape != frame.shape:
        raise RecordingError(where, f"{roi.size} event ROI ids but {frame.size} event frames")
    unknown = ~np.isin(roi, ids)
    if unknown.any():
        raise RecordingError(
            where, f"events of ROI id {int(roi[unknown][0])}, which is not among the traces' ROIs"
        )
    outside = (frame < 0) | (frame >= n_frames)
    if outside.any():
        raise RecordingError(
            where, f"event frame {int(frame[outside][0])} is outside the traces' {n_frames} frames"
        )
    if ids.size == 0:
        return []
    order = np.argsort(ids, kind="stable")
    row = order[np.searchsorted(ids, roi, sorter=order)]  # each event's row in the traces
    by_row = np.lexsort((frame, row))
    counts = np.bincount(row, minlength=ids.size)
    return [a.astype(np.intp) for a in np.split(frame[by_row], np.cumsum(counts)[:-1])]


def _float_dtype(value: Any, where: Path, what: str) -> np.dtype:
    """float32 or float64 from a sidecar's dtype name; RecordingError for anything else."""
    try:
        dtype = np.dtype(value) if isinstance(value, str) else None
    except (TypeError, ValueError, SyntaxError):
        dtype = None
    if dtype is None or dtype not in (np.float32, np.float64):
        raise RecordingError(where, f"{what}: dtype {value!r:.40} is not float32 or float64")
    return dtype


def _load_csv_set(sidecar: dict, folder: Path, sidecar_path: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    ids = None
    described = sidecar.get("arrays")
    if not isinstance(described, dict) or not all(isinstance(v, dict) for v in described.values()):
        raise RecordingError(sidecar_path, "'arrays' must describe each array as an object")
    dtypes = {
        n: _float_dtype(info.get("dtype"), sidecar_path, f"array {n!r}")
        for n, info in described.items()
        if n in _ARRAY_NAMES
    }
    events = sidecar.get("events")
    events_file = events.get("file") if isinstance(events, dict) else None
    if events is not None and not (
        isinstance(events, dict)
        and _plain_name(events_file)
        and events_file in {e["name"] for e in sidecar["files"]}
    ):
        raise RecordingError(
            sidecar_path, "'events' must name its CSV file, one of the files the sidecar lists"
        )
    for entry in sidecar["files"]:
        f = folder / entry["name"]
        if entry["name"] == events_file:
            arrays["events_roi_id"], arrays["events_frame"] = _read_events_csv(f)
            continue
        # the longest matching name: "x_deconv_baseline.csv" is not "baseline"
        matches = [n for n in dtypes if entry["name"].endswith(f"_{n}.csv")]
        name = max(matches, key=len) if matches else None
        if entry["name"].endswith("_coefficients.csv"):
            what = "a napari-calcium coefficients CSV"
            with _reading(f, what), open_regular(f, "coefficients CSV") as raw:
                fh = io.TextIOWrapper(raw, encoding="utf-8-sig")
                table = np.loadtxt(fh, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
                if table.shape[1] != 2:
                    raise RecordingError(f, f"rows have {table.shape[1]} values, expected 2")
                if not np.all(np.isfinite(table[:, 0]) & (table[:, 0] == np.round(table[:, 0]))):
                    raise RecordingError(f, "its roi_id column holds values that are not ids")
                arrays["coefficients"] = table[:, 1].astype(np.float32)
                arrays["ids"] = table[:, 0].astype(np.int64)
        elif name is not None:
            ids, values = _read_csv(f, ids)
            arrays[name] = values.astype(dtypes[name])
    if "F" not in arrays:
        raise RecordingError(sidecar_path, "the sidecar lists no F CSV file")
    if "coefficients" not in arrays:
        raise RecordingError(sidecar_path, "the sidecar lists no coefficients CSV file")
    info = sidecar.get("deconvolution")
    if info is not None:  # per-ROI values of the deconvolution live in the sidecar
        with _reading(sidecar_path, "a napari-calcium trace sidecar"):
            for name in SPIKE_PER_ROI:
                values = info["per_roi"][name]
                if not isinstance(values, list) or not all(
                    v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                    for v in values
                ):
                    raise RecordingError(sidecar_path, f"per-ROI {name!r} must be numbers")
                dtype = _float_dtype(info["per_roi_dtypes"][name], sidecar_path, name)
                arrays[name] = np.asarray([math.nan if v is None else v for v in values], dtype)
    return arrays


def _check_loaded(arrays: dict[str, np.ndarray], where: Path) -> None:
    """What the TraceSet needs: 2-D float traces (checked later), float coefficients, int ids."""
    for name in ("F", "corrected", "coefficients", "ids"):
        if name not in arrays:
            raise RecordingError(where, f"no {name!r} array: damaged or not a traces file")
    if arrays["coefficients"].dtype.kind != "f":
        raise RecordingError(where, f"'coefficients' is {arrays['coefficients'].dtype}, not float")
    for name in SPIKE_PER_ROI:
        if name in arrays and (arrays[name].dtype.kind != "f" or arrays[name].ndim != 1):
            raise RecordingError(where, f"{name!r} is {arrays[name].dtype}, not float numbers")


def _set_stem(name: str) -> str | None:
    """The stem of the CSV set a data file ``<stem>_<array>.csv`` belongs to (None: no array)."""
    for n in sorted((*_ARRAY_NAMES, "coefficients", _EVENTS), key=len, reverse=True):
        if name.endswith(f"_{n}") and len(name) > len(n) + 1:
            return name[: -len(n) - 1]
    return None


def _csv_sidecars(p: Path) -> list[Path]:
    """Where the sidecar of the CSV set that `p` names may be, the likeliest first.

    `p` is a data file of the set (``x_F.csv``: its set is ``x``) or the name it was saved as
    (``x.csv``). The sidecar is ``<stem>.csv.json``; sets of earlier versions have
    ``<stem>.json``.
    """
    own = [p.with_name(p.name + ".json"), p.with_suffix(".json")]
    stem = _set_stem(p.stem)
    if stem is None:
        return own
    of_set = [p.with_name(stem + ".csv.json"), p.with_name(stem + ".json")]
    return of_set + own if os.path.lexists(p) else own + of_set


def _find_sidecar(candidates: list[Path], fmt: str) -> tuple[Path | None, dict[str, Any]]:
    """The first candidate that is the sidecar of a `fmt` set (one of another format is passed
    over: an earlier version named both ``<stem>.json``), or ``(None, {})``."""
    for candidate in dict.fromkeys(candidates):
        if os.path.lexists(candidate):
            sidecar = _read_sidecar(candidate)
            if sidecar.get("file_format") == fmt:
                return candidate, sidecar
    return None, {}


def _npz_of_sidecar(side: Path) -> Path:
    """The NPZ an NPZ sidecar belongs to: ``x.json`` -> ``x.npz``, ``x.csv.npz.json`` ->
    ``x.csv.npz``."""
    if side.name.lower().endswith(".npz.json"):
        return side.with_suffix("")
    return side.with_suffix(".npz")


def load_traces(
    path: str | os.PathLike, *, with_spikes: bool = False, with_events: bool = False
) -> tuple:
    """Read traces written by :func:`save_traces`, exactly (bit-identical float32).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz``, its sidecar, the name a CSV set was saved as (``<stem>.csv``), any file
        of a CSV set (``<stem>_<array>.csv``, ``<stem>_events.csv``) or its sidecar
        ``<stem>.csv.json``. A CSV set needs its sidecar (``<stem>.json``, as earlier versions
        named it, is read too); an NPZ reads alone.
    with_spikes : bool
        Also return the saved DeconvolutionResult (or None).
    with_events : bool
        Also return the saved events (or None): one sorted ``intp`` array of onset frames per
        ROI, in the traces' order, as :func:`~napari_calcium.core.spikes.events.identify_events`
        returns them.

    Returns
    -------
    (TraceSet, DffResult or None, dict)
        The traces, the dF/F when it was saved, and the sidecar (``{}`` when an NPZ has none).
        With ``with_spikes=True`` the DeconvolutionResult (or None) comes before the sidecar,
        and with ``with_events=True`` the events (or None) too, after the spikes:
        ``(TraceSet, DffResult, DeconvolutionResult, events, dict)`` with both. The sidecar's
        ``"deconvolution"`` and ``"events"`` say what they were computed from.

    Raises
    ------
    RecordingError
        Missing, corrupted or foreign files (the message names the file), or a file whose
        sha256 differs from the one its sidecar recorded. Only regular files are opened: a
        named pipe, device or socket in place of any file of the set is refused by name,
        never waited on. A sidecar is read as UTF-8 with or without a byte-order mark, and
        may only name data files in its own folder.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        if os.path.lexists(p):
            require_regular_file(p, "trace CSV")
        candidates = _csv_sidecars(p)
        side, _ = _find_sidecar(candidates, "csv")
        if side is None:
            looked = ", ".join(dict.fromkeys(c.name for c in candidates))
            raise RecordingError(
                p, f"no sidecar of a CSV trace set found (looked for {looked}); a CSV set is "
                "read through the sidecar written with it"
            )  # fmt: skip
        p, suffix = side, ".json"
    if not os.path.lexists(p):
        raise RecordingError(p, "file not found")
    require_regular_file(p, "trace file")
    events_at = p
    if suffix == ".json":
        sidecar = _read_sidecar(p)
        _verify(sidecar, p.parent, p)
        if sidecar.get("file_format") == "npz":
            events_at = _npz_of_sidecar(p)
            arrays, rate, params, dff_info, spikes_info = _load_npz(events_at)
        else:
            arrays = _load_csv_set(sidecar, p.parent, p)
            with _reading(p, "a napari-calcium trace sidecar (JSON)"):
                rate, params, dff_info = (
                    sidecar["frame_rate_hz"],
                    sidecar["extraction"],
                    sidecar["dff"],
                )
                spikes_info = sidecar.get("deconvolution")
            if "events_frame" in arrays:
                events_at = p.parent / sidecar["events"]["file"]
        where = p
    elif suffix == ".npz":
        stem = _stem_path(p)
        side, sidecar = _find_sidecar([_sidecar_path(stem, "npz"), p.with_suffix(".json")], "npz")
        if side is not None:
            _verify(sidecar, p.parent, side)
        arrays, rate, params, dff_info, spikes_info = _load_npz(p)
        where = events_at = p
    else:
        raise RecordingError(p, "not a trace file; expected .npz, .csv or the .json sidecar")
    _check_loaded(arrays, where)
    if rate is not None and (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not (math.isfinite(rate) and rate > 0)
    ):
        raise RecordingError(where, f"frame rate {rate!r:.40} is not a positive number")
    for label, value in (("extraction parameters", params), ("dF/F parameters", dff_info)):
        if value is not None and not isinstance(value, dict):
            raise RecordingError(where, f"the {label} are not a JSON object")
    if spikes_info is not None and not isinstance(spikes_info, dict):
        raise RecordingError(where, "the deconvolution parameters are not a JSON object")
    with _reading(where, "napari-calcium traces"):
        traces = TraceSet(
            F=arrays["F"],
            Fneu=arrays.get("Fneu"),
            corrected=arrays["corrected"],
            coefficients=arrays["coefficients"],
            ids=arrays["ids"],
            frame_rate_hz=rate,
            F_chan2=arrays.get("F_chan2"),
            Fneu_chan2=arrays.get("Fneu_chan2"),
            parameters=params or {},
        )
        _check_inputs(traces, None, None)
        dff = None
        if "dff" in arrays:
            info = dff_info or {}
            dff = DffResult(
                arrays["dff"],
                arrays["baseline"],
                str(info.get("method", "")),
                info.get("parameters") or {},
            )
            _check_inputs(traces, dff, None)
        spikes = spikes_from(arrays, spikes_info, rate)
        if spikes is not None:
            _check_inputs(traces, None, None, spikes)
    events = _events_from(arrays, traces.n_frames, events_at)
    return (
        traces,
        dff,
        *((spikes,) if with_spikes else ()),
        *((events,) if with_events else ()),
        sidecar,
    )

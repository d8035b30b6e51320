"""UCLA Miniscope recordings (V3/V4 devices, Miniscope DAQ software folders) as lazy movies.

The layout, as the Miniscope DAQ software (Aharoni-Lab/Miniscope-DAQ-QT-Software, which drives
Miniscope V3, V4 and V4-BNO devices) writes it: ``source/datasaver.cpp`` (folders, file names,
``timeStamps.csv``, ``headOrientation.csv``, both ``metaData.json``), ``deviceConfigs/
miniscopes.json`` (the device controls: ``frameRate`` ``"10FPS"``-``"30FPS"``, ``gain``
Low/Medium/High = 1/2/3.5, ``led0`` 0-100 %, ``ewl`` -127-127), with the device-level
``metaData.json`` example in catalystneuro/roiextractors (``miniscopeimagingextractor.py``)
and the folder tree in catalystneuro/ndx-miniscope's README::

    <experiment>/                  dataDirectory/<date>/<time>/... (the "directoryStructure")
        metaData.json              researcherName, animalName, experimentName, baseDirectory,
                                   year, month, day, hour, minute, second, msec, msecSinceEpoch,
                                   miniscopes: [device names], cameras: [device names]
        notes.csv                  "<ms since start>,<note>" lines
        <device name, " " -> "_">/ e.g. Miniscope/ or My_V4_Miniscope/, one per device
            0.avi 1.avi ... 10.avi framesPerFile frames each (1000 by default), numbered from 0
                                   (numeric order, not lexical); codec per "compression"
                                   (FFV1 by default; MJPG, XVID, GREY), written by OpenCV with
                                   a nominal 60 fps whatever the real rate
            timeStamps.csv         "Frame Number,Time Stamp (ms),Buffer Index": saved-frame
                                   count from 0, ms since the recording started, frames waiting
                                   in the acquisition buffer
            metaData.json          deviceName, deviceType ("Miniscope_V4_BNO", "Miniscope_V3",
                                   ...), deviceID, deviceDirectory, framesPerFile, compression,
                                   and the controls at the start: frameRate ("30FPS"), gain,
                                   led0, ewl, ROI {height, leftEdge, topEdge, width}
            headOrientation.csv    "Time Stamp (ms),qw,qx,qy,qz" (V4 with the BNO055 IMU)
        <behaviour camera>/        the same files for a camera (deviceType of a camera)

Frame times come from ``timeStamps.csv`` (never from the AVI's nominal rate). Dropped frames
are found two ways: an interval between consecutive time stamps longer than 1.5 x the median
interval (the frames that should have been there), and a different number of rows in
``timeStamps.csv`` than frames in the videos. Both go to ``metadata.extra["dropped_frames"]``
with a :class:`DroppedFramesWarning`. The older Miniscope V3 software's ``msCam1.avi`` +
``timestamp.dat`` layout is not read here.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import numbers
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    MetadataError,
    OperationCancelled,
    OutputExistsError,
    ParameterError,
    RecordingError,
    ShapeError,
)
from ._atomic import disk_full_error
from ._common import positive_float
from ._serial import open_regular, read_json
from .metadata import Recording, RecordingMetadata
from .video import is_video_file, open_video, probe_video, video_array

__all__ = [
    "DroppedFramesWarning",
    "is_miniscope_folder",
    "is_video_file",
    "open_miniscope",
    "open_video",
    "read_head_orientation",
    "read_timestamps",
    "write_miniscope",
]

TIMESTAMPS = "timeStamps.csv"
METADATA = "metaData.json"
HEAD_ORIENTATION = "headOrientation.csv"
_SEGMENT = re.compile(r"^(\d+)\.avi$", re.IGNORECASE)
_TS_COLUMNS = ("Frame Number", "Time Stamp (ms)", "Buffer Index")
_HO_COLUMNS = ("Time Stamp (ms)", "qw", "qx", "qy", "qz")
#: an interval this many times the median one means frames were dropped
GAP_FACTOR = 1.5
# writer's codec -> (FFmpeg encoder, pixel format, the DAQ software's "compression" name)
_CODECS = {
    "ffv1": ("ffv1", "gray", "FFV1"),
    "rawvideo": ("rawvideo", "gray", "GREY"),
    "mjpeg": ("mjpeg", "yuvj420p", "MJPG"),
    "mpeg4": ("mpeg4", "yuv420p", "XVID"),
}


class DroppedFramesWarning(UserWarning):
    """A Miniscope recording has frames missing (gaps in its time stamps or fewer frames)."""


# ------------------------------------------------------------------------------------ finding


def _segments(folder: Path) -> list[Path]:
    """The numbered ``<n>.avi`` files of a device folder, in numeric order."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _SEGMENT.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), Path(entry.path)))
    return [p for _, p in sorted(found)]


def _is_device_folder(folder: Path) -> bool:
    return (
        folder.is_dir()
        and ((folder / TIMESTAMPS).is_file() or (folder / METADATA).is_file())
        and bool(_segments(folder))
    )


def _device_type(folder: Path) -> str:
    with contextlib.suppress(RecordingError, AttributeError):
        data = read_json(folder / METADATA, "Miniscope metadata", error=MetadataError)
        return str(data.get("deviceType", ""))
    return ""


def _is_miniscope_device(folder: Path) -> bool:
    kind = _device_type(folder).lower()
    return "miniscope" in kind or (not kind and "miniscope" in folder.name.lower())


def _device_folders(experiment: Path) -> list[Path]:
    """The Miniscope device folders of an experiment folder, in the order its metadata lists."""
    try:
        subs = sorted(p for p in experiment.iterdir() if _is_device_folder(p))
    except OSError:
        return []
    listed: list[str] = []
    with contextlib.suppress(RecordingError, AttributeError, TypeError):
        data = read_json(experiment / METADATA, "Miniscope metadata", error=MetadataError)
        listed = [str(name).replace(" ", "_") for name in data.get("miniscopes") or []]
    by_name = {p.name: p for p in subs}
    ordered = [by_name[name] for name in listed if name in by_name]
    ordered += [p for p in subs if p not in ordered and _is_miniscope_device(p)]
    return ordered


def is_miniscope_folder(path: str | os.PathLike) -> bool:
    """Whether a path is a Miniscope DAQ recording: experiment folder, device folder or segment.

    Cheap (lists folders, reads the small ``metaData.json`` files) and never raises; for readers
    that sniff a path before choosing how to open it.

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    bool
        True for a device folder (numbered ``<n>.avi`` files beside ``timeStamps.csv`` or
        ``metaData.json``), an experiment folder holding a Miniscope device folder, or a
        numbered ``<n>.avi`` inside a device folder.
    """
    try:
        p = Path(path)
        if p.is_file():
            return bool(_SEGMENT.match(p.name)) and _is_device_folder(p.parent)
        if _is_device_folder(p):
            return True
        return p.is_dir() and bool(_device_folders(p))
    except (OSError, TypeError, ValueError):
        return False


def _resolve(path: Path, device: str | None) -> tuple[Path, Path | None, list[str]]:
    """(device folder, the one segment asked for or None, all device folder names)."""
    if path.is_file():
        if not _SEGMENT.match(path.name) or not _is_device_folder(path.parent):
            raise RecordingError(
                path, "not a Miniscope segment: expected a numbered <n>.avi beside "
                f"{TIMESTAMPS} or {METADATA}; open plain videos with open_video"
            )  # fmt: skip
        return path.parent, path, [path.parent.name]
    if not path.exists():
        raise RecordingError(path, "no such file or folder")
    if not path.is_dir():
        raise RecordingError(path, "not a Miniscope folder or .avi file")
    if _is_device_folder(path):
        return path, None, [path.name]
    folders = _device_folders(path)
    names = [f.name for f in folders]
    if not folders:
        inside = sorted(p.name for p in path.iterdir() if p.is_dir())[:8] if path.is_dir() else []
        hint = f" (sub-folders: {', '.join(inside)})" if inside else ""
        raise RecordingError(
            path, "no Miniscope recording here: expected numbered .avi files (0.avi, 1.avi, ...) "
            f"with {TIMESTAMPS} in this folder or in a device sub-folder{hint}"
        )  # fmt: skip
    if device is None:
        return folders[0], None, names
    wanted = device.replace(" ", "_")
    for folder in folders:
        if folder.name == wanted:
            return folder, None, names
    raise RecordingError(path, f"no Miniscope device {device!r} here; found {', '.join(names)}")


# ------------------------------------------------------------------------------------ reading


def _read_table(
    path: Path, columns: Sequence[str], what: str, *, optional_last: bool = False
) -> np.ndarray:
    """A CSV of numbers with a known header: ``(rows, columns)`` float64 (the last column may
    be absent when `optional_last`)."""
    with open_regular(path, what) as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MetadataError(path, f"not a text file (not UTF-8: {exc.reason})") from None
    lines = text.splitlines()
    first = lines[0] if lines else ""
    header = [c.strip().lower() for c in first.split(",")]
    while len(header) > 1 and not header[-1]:  # a trailing comma
        header.pop()
    need = [c.lower() for c in columns]
    short = optional_last and header[: len(need) - 1] == need[:-1]
    if header[: len(need)] != need and not short:
        raise MetadataError(
            path, f"unexpected columns {first[:120]!r} in the first line; "
            f"expected {','.join(columns)!r} ({what} as the Miniscope DAQ software writes it)"
        )  # fmt: skip
    n_cols = len(header)
    rows = [line for line in lines[1:] if line.strip()]
    if not rows:
        return np.empty((0, n_cols))
    try:
        values = np.array(",".join(rows).replace(",", " ").split(), dtype=np.float64)
    except ValueError:
        values = None
    if values is None or values.size != len(rows) * n_cols:
        for number, line in enumerate(lines[1:], start=2):
            parts = line.split(",")
            if line.strip() and len(parts) != n_cols:
                raise MetadataError(path, f"line {number} has {len(parts)} values, not {n_cols}")
            with contextlib.suppress(ValueError):
                [float(p) for p in parts if line.strip()]
                continue
            raise MetadataError(path, f"line {number} is not numbers: {line[:80]!r}")
        raise MetadataError(path, "cannot read the numbers in this file")  # pragma: no cover
    return values.reshape(len(rows), n_cols)


def read_timestamps(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a Miniscope ``timeStamps.csv``.

    Parameters
    ----------
    path : str or os.PathLike
        The file, or the device folder holding it.

    Returns
    -------
    frame_numbers : numpy.ndarray
        ``(rows,)`` int64, the ``Frame Number`` column (saved frames counted from 0).
    times_ms : numpy.ndarray
        ``(rows,)`` float64, the ``Time Stamp (ms)`` column: ms since the recording started.

    Raises
    ------
    MetadataError
        Not the columns ``Frame Number,Time Stamp (ms)[,Buffer Index]``, or a line that is not
        numbers (the line is named).
    RecordingError
        The file is missing or not a regular file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / TIMESTAMPS
    table = _read_table(path, _TS_COLUMNS, "time stamps", optional_last=True)
    return table[:, 0].astype(np.int64), table[:, 1].copy()


def read_head_orientation(path: str | os.PathLike) -> np.ndarray:
    """Read a Miniscope V4 ``headOrientation.csv`` (the BNO055 IMU's quaternions).

    Parameters
    ----------
    path : str or os.PathLike
        The file, or the device folder holding it.

    Returns
    -------
    numpy.ndarray
        ``(rows, 5)`` float64: time stamp in ms since the recording started, ``qw, qx, qy, qz``.

    Raises
    ------
    MetadataError
        Not the columns ``Time Stamp (ms),qw,qx,qy,qz``, or a line that is not numbers.
    """
    path = Path(path)
    if path.is_dir():
        path = path / HEAD_ORIENTATION
    return _read_table(path, _HO_COLUMNS, "head orientation")


def _number(value: Any) -> float | None:
    """A number from a JSON value: 3.5, "3.5", "30FPS" -> 30.0; None when there is none."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        match = re.search(r"[-+]?\d+(?:\.\d+)?", value)
        return float(match.group()) if match else None
    return None


def _read_meta(path: Path) -> dict:
    if not path.is_file():
        return {}
    data = read_json(path, "Miniscope metadata", error=MetadataError)
    if not isinstance(data, dict):
        raise MetadataError(path, "expected a JSON object")
    return data


def _start_time(experiment: dict) -> str | None:
    src = experiment.get("recordingStartTime", experiment)
    if not isinstance(src, dict):
        return None
    try:
        parts = [int(src[k]) for k in ("year", "month", "day", "hour", "minute", "second")]
        stamp = _dt.datetime(*parts, int(src.get("msec", 0)) * 1000)  # type: ignore[misc]
    except (KeyError, TypeError, ValueError):
        return None
    return stamp.isoformat(timespec="milliseconds")


def _find_drops(
    frame_numbers: np.ndarray, times_ms: np.ndarray, n_video: int, csv: Path
) -> tuple[list[dict], float | None]:
    """Dropped frames from the time stamps and the frame count; the regular interval (ms)."""
    drops: list[dict] = []
    period = None
    if times_ms.size >= 3:
        steps = np.diff(times_ms)
        median = float(np.median(steps))
        if median > 0:
            regular = steps[steps <= GAP_FACTOR * median]
            period = float(regular.mean()) if regular.size else median
            for i in np.flatnonzero(steps > GAP_FACTOR * median):
                drops.append({
                    "after_frame": int(i), "n_missing": max(1, round(steps[i] / period) - 1),
                    "gap_s": float(steps[i]) / 1000.0, "source": "time stamps",
                })  # fmt: skip
    if frame_numbers.size >= 2:
        jumps = np.diff(frame_numbers)
        for i in np.flatnonzero(jumps > 1):
            if not any(d["after_frame"] == int(i) for d in drops):
                drops.append({
                    "after_frame": int(i), "n_missing": int(jumps[i] - 1),
                    "gap_s": float(times_ms[i + 1] - times_ms[i]) / 1000.0,
                    "source": "frame numbers",
                })  # fmt: skip
    if times_ms.size != n_video:
        drops.append({
            "after_frame": int(min(times_ms.size, n_video)) - 1,
            "n_missing": int(abs(times_ms.size - n_video)),
            "gap_s": None,
            "source": f"frame count: {csv.name} has {times_ms.size} rows, the videos "
            f"{n_video} frames",
        })  # fmt: skip
    drops.sort(key=lambda d: d["after_frame"])
    return drops, period


def open_miniscope(path: str | os.PathLike, *, device: str | None = None) -> Recording:
    """Open a UCLA Miniscope recording (Miniscope DAQ software folder) as one lazy movie.

    Parameters
    ----------
    path : str or os.PathLike
        The experiment folder (holding device sub-folders), a device folder (numbered
        ``0.avi, 1.avi, ...`` with ``timeStamps.csv`` and ``metaData.json``), or one numbered
        ``.avi`` in a device folder (then that segment alone, with its rows of the time stamps).
    device : str, optional
        Which Miniscope of an experiment folder with several (its ``deviceName`` or folder
        name); default the first one its ``metaData.json`` lists.

    Returns
    -------
    Recording
        One channel named after the device: a dask array ``(frames, y, x)`` uint8 over all
        segments in numeric order (``10.avi`` after ``9.avi``); nothing is decoded until a
        slice is computed. ``metadata``: ``source_format "miniscope"``, ``source_version`` the
        device type, ``timestamps_s`` from ``timeStamps.csv`` (s since the recording started),
        ``frame_period_s`` the mean regular interval between them (without the gaps), and in
        ``extra``: ``device_name``, ``device_type``, ``nominal_frame_rate_hz``, ``gain``,
        ``led_power_percent`` (``led0``), ``focus`` (``ewl``), ``compression``, ``roi``,
        ``frames_per_file``, ``start_time``, ``segments``, ``segment_frames``,
        ``head_orientation_file``, ``devices`` (all device folders), ``device_metadata`` and
        ``experiment_metadata`` (the two JSON files as read), and ``dropped_frames``: a list of
        ``{"after_frame", "n_missing", "gap_s", "source"}`` (``n_dropped_frames`` their sum).

    Raises
    ------
    RecordingError
        No Miniscope recording at ``path``; a numbered segment missing (``0.avi, 1.avi,
        3.avi``); a video unreadable, cut short or of another frame size; PyAV missing. The
        message names the file.
    MetadataError
        ``timeStamps.csv`` or ``metaData.json`` malformed (wrong columns, not numbers, not
        JSON).

    Warns
    -----
    DroppedFramesWarning
        Frames were dropped (see ``extra["dropped_frames"]``).

    Examples
    --------
    >>> rec = open_miniscope("2024_05_01/10_31_07")  # doctest: +SKIP
    >>> rec.metadata.extra["device_type"], rec.movie.shape  # doctest: +SKIP
    ('Miniscope_V4_BNO', (10000, 600, 600))
    """
    path = Path(path)
    folder, single, devices = _resolve(path, device)
    segments = _segments(folder)
    numbers_found = [int(_SEGMENT.match(p.name).group(1)) for p in segments]  # type: ignore[union-attr]
    missing = sorted(set(range(max(numbers_found) + 1)) - set(numbers_found))
    if missing:
        raise RecordingError(
            folder, f"segment {missing[0]}.avi is missing (found "
            f"{', '.join(p.name for p in segments[:12])}{', ...' if len(segments) > 12 else ''}); "
            "open the segments that are there one by one"
        )  # fmt: skip
    infos = [probe_video(p) for p in segments]
    device_meta = _read_meta(folder / METADATA)
    experiment_dir = folder.parent
    experiment_meta = {}
    with contextlib.suppress(RecordingError):
        experiment_meta = _read_meta(experiment_dir / METADATA)
    csv = folder / TIMESTAMPS
    if csv.is_file():
        frame_numbers, times_ms = read_timestamps(csv)
    else:
        frame_numbers, times_ms = np.empty(0, np.int64), np.empty(0)
    offsets = np.cumsum([0] + [i.n_frames for i in infos])
    if single is not None:
        seg = segments.index(single)
        lo, hi = int(offsets[seg]), int(offsets[seg + 1])
        frame_numbers, times_ms = frame_numbers[lo:hi], times_ms[lo:hi]
        infos = [infos[seg]]
        n_video = infos[0].n_frames
    else:
        n_video = int(offsets[-1])
    drops: list[dict] = []
    period_ms = None
    nominal = _number(device_meta.get("frameRate"))
    if csv.is_file():
        drops, period_ms = _find_drops(frame_numbers, times_ms, n_video, csv)
    if period_ms is None and nominal:
        period_ms = 1000.0 / nominal
    stamps_ms: np.ndarray | None = times_ms[:n_video]
    if stamps_ms.size < n_video:  # fewer time stamps than frames: continue at the regular rate
        if period_ms is None:
            stamps_ms = None
        else:
            first = stamps_ms[-1] + period_ms if stamps_ms.size else 0.0
            more = first + period_ms * np.arange(n_video - stamps_ms.size)
            stamps_ms = np.concatenate([stamps_ms, more])
    timestamps_s = None if stamps_ms is None else stamps_ms / 1000.0
    name = str(device_meta.get("deviceName") or folder.name)
    n_dropped = int(sum(d["n_missing"] for d in drops))
    if drops:
        where = ", ".join(f"after frame {d['after_frame']} ({d['source'].split(':')[0]})"
                          for d in drops[:5])  # fmt: skip
        warnings.warn(
            f"{folder}: about {n_dropped} dropped frame(s): {where}"
            f"{', ...' if len(drops) > 5 else ''}; see metadata.extra['dropped_frames']",
            DroppedFramesWarning,
            stacklevel=2,
        )
    movie = video_array(infos)
    ho = folder / HEAD_ORIENTATION
    extra = {
        "device_name": name,
        "device_type": device_meta.get("deviceType"),
        "device_id": device_meta.get("deviceID"),
        "nominal_frame_rate_hz": nominal,
        "gain": device_meta.get("gain"),
        "led_power_percent": _number(device_meta.get("led0")),
        "focus": _number(device_meta.get("ewl")),
        "compression": device_meta.get("compression"),
        "roi": device_meta.get("ROI"),
        "frames_per_file": device_meta.get("framesPerFile"),
        "start_time": _start_time(experiment_meta),
        "segments": [i.path.name for i in infos],
        "segment_frames": [i.n_frames for i in infos],
        "codec": infos[0].codec,
        "timestamps_file": str(csv) if csv.is_file() else None,
        "head_orientation_file": str(ho) if ho.is_file() else None,
        "devices": devices,
        "device_metadata": device_meta,
        "experiment_metadata": experiment_meta,
        "dropped_frames": drops,
        "n_dropped_frames": n_dropped,
    }
    metadata = RecordingMetadata(
        source_format="miniscope",
        source_version=str(device_meta["deviceType"]) if device_meta.get("deviceType") else None,
        frame_period_s=None if period_ms is None else period_ms / 1000.0,
        timestamps_s=timestamps_s,
        channel_names=(name,),
        bit_depth=8 * infos[0].dtype.itemsize,
        extra=extra,
    )
    return Recording(path=single or folder, channels={name: movie}, metadata=metadata)


# ------------------------------------------------------------------------------------ writing


def _as_uint8(block: np.ndarray, start: int) -> np.ndarray:
    if block.dtype == np.uint8:
        return block
    if block.dtype.kind == "f":
        if not np.isfinite(block).all():
            raise ParameterError(f"movie has NaN or infinite values near frame {start}")
        block = np.rint(block)
    if block.size and (block.min() < 0 or block.max() > 255):
        raise ParameterError(
            f"movie values near frame {start} lie outside 0-255; Miniscope videos are 8-bit: "
            "scale the movie first (nothing is rescaled here)"
        )
    return block.astype(np.uint8)


def _replace_folder(tmp: Path, final: Path, overwrite: bool) -> None:
    old = None
    if final.exists() or final.is_symlink():
        if not overwrite:
            raise OutputExistsError(final)
        if not final.is_dir() or final.is_symlink():
            raise RecordingError(final, "exists and is not a folder; remove it or choose another")
        if any(final.iterdir()) and not is_miniscope_folder(final):
            raise RecordingError(
                final, "exists and is not a Miniscope folder; overwrite only replaces Miniscope "
                "folders: remove it yourself or choose another"
            )  # fmt: skip
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.replace(final, old / final.name)
    try:
        os.replace(tmp, final)
    except BaseException:
        if old is not None:
            os.replace(old / final.name, final)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_miniscope(
    folder: str | os.PathLike,
    movie: Any,
    *,
    frame_rate_hz: float,
    segment_frames: int = 1000,
    codec: str = "ffv1",
    dropped: Sequence[int] = (),
    device_name: str = "Miniscope",
    device_type: str = "Miniscope_V4_BNO",
    gain: str | float = "Low",
    led_power_percent: float = 10,
    ewl: float = 0,
    head_orientation: bool = False,
    start_time: _dt.datetime | None = None,
    overwrite: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Write a movie as a Miniscope DAQ software experiment folder (for tests and demos).

    The layout is the one described in the module notes: ``folder/metaData.json``,
    ``folder/notes.csv`` and ``folder/<device_name, " " -> "_">/`` with ``0.avi, 1.avi, ...``
    (`segment_frames` frames each), ``timeStamps.csv``, ``metaData.json`` and, when asked,
    ``headOrientation.csv``. Like the DAQ software, the AVIs state a nominal 60 fps and the
    time stamps are whole milliseconds: frame ``k`` of `movie` at ``round(1000 k /
    frame_rate_hz)`` ms. The folder is built under a hidden temporary name beside it and
    renamed when complete, so a failed write leaves nothing behind.

    Parameters
    ----------
    folder : str or os.PathLike
        The experiment folder to create; its parent must exist.
    movie : array_like, shape (frames, y, x)
        numpy, memmap or dask array; uint8, or integers/floats in 0-255 (rounded, never
        rescaled). Frame sizes must be even for ``codec="mpeg4"``/``"mjpeg"`` (4:2:0 chroma).
    frame_rate_hz : float
        The sensor's frame rate; ``metaData.json`` says ``"<rate>FPS"``.
    segment_frames : int
        Frames per ``.avi`` file (``framesPerFile``; the DAQ software's default is 1000).
    codec : {"ffv1", "rawvideo", "mjpeg", "mpeg4"}
        FFV1 (lossless, the DAQ default, a key frame every 12 frames as OpenCV writes it), raw
        gray (lossless), MJPEG (lossy, every frame a key frame) or MPEG-4 part 2 ("XVID",
        lossy, a key frame every 30 frames).
    dropped : sequence of int
        Frames of `movie` the acquisition "lost": they are written neither to the videos nor
        to ``timeStamps.csv``, which then jumps over their time (frame numbers stay
        consecutive, as the DAQ software counts saved frames).
    device_name, device_type : str
        ``deviceName`` (also the folder name, spaces as ``_``) and ``deviceType``.
    gain, led_power_percent, ewl : str or float
        The controls recorded in the device's ``metaData.json`` (``gain``, ``led0``, ``ewl``).
    head_orientation : bool
        Also write ``headOrientation.csv`` (identity quaternions at every frame's time).
    start_time : datetime.datetime, optional
        The recording's start for the experiment ``metaData.json``; default now.
    overwrite : bool
        Replace an existing Miniscope folder (or an empty folder) at `folder`.
    should_stop : callable, optional
        Asked before every segment; True raises OperationCancelled (nothing is left on disk).

    Returns
    -------
    pathlib.Path
        `folder`; open it with :func:`open_miniscope`.

    Raises
    ------
    ShapeError
        `movie` is not a non-empty 3-D numeric array.
    ParameterError
        A bad `frame_rate_hz`, `segment_frames`, `codec` or `dropped`, or values outside 0-255.
    OutputExistsError
        `folder` exists and `overwrite` is False.
    RecordingError
        The parent folder is missing or not writable, PyAV is missing, or `folder` is not a
        Miniscope folder that `overwrite` may replace.
    """
    final = Path(folder)
    if not hasattr(movie, "shape") or not hasattr(movie, "dtype"):
        movie = np.asarray(movie)
    shape = tuple(int(s) for s in movie.shape)
    if len(shape) != 3 or min(shape) < 1 or np.dtype(movie.dtype).kind not in "biuf":
        raise ShapeError(
            f"{final}: expected a non-empty (frames, y, x) numeric movie, got shape {shape} "
            f"{movie.dtype}"
        )
    rate = positive_float(frame_rate_hz, "frame_rate_hz")
    ok = isinstance(segment_frames, numbers.Integral) and not isinstance(segment_frames, bool)
    if not ok or segment_frames < 1:
        raise ParameterError(f"segment_frames must be a positive integer, got {segment_frames!r}")
    if codec not in _CODECS:
        raise ParameterError(f"codec={codec!r}; choose one of {', '.join(_CODECS)}")
    if codec in ("mjpeg", "mpeg4") and (shape[1] % 2 or shape[2] % 2):
        raise ParameterError(f"codec={codec!r} needs even frame sizes, got {shape[1:]}")
    drop = np.unique(np.asarray(list(dropped), dtype=np.int64))
    if drop.size and (drop[0] < 0 or drop[-1] >= shape[0]):
        raise ParameterError(f"dropped frames must lie in 0-{shape[0] - 1}, got {list(dropped)}")
    keep = np.setdiff1d(np.arange(shape[0]), drop)
    if not keep.size:
        raise ParameterError("dropped lists every frame; nothing would be written")
    if (final.exists() or final.is_symlink()) and not overwrite:
        raise OutputExistsError(final)
    parent = final.parent
    if not parent.is_dir():
        raise RecordingError(parent, "output folder does not exist; create it first")
    try:
        import av
    except ImportError as exc:
        raise RecordingError(final, "writing Miniscope videos needs PyAV: pip install "
                             "napari-calcium[video]") from exc  # fmt: skip
    needed = int(keep.size) * shape[1] * shape[2] + 4096
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        full = disk_full_error(exc, final, needed_bytes=needed, existing_kept=final.exists())
        if full is not None:
            raise full from exc
        raise RecordingError(parent, f"cannot write here ({exc.strerror or exc})") from exc
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        _write_into(
            av, tmp, movie, keep, rate=rate, segment_frames=int(segment_frames), codec=codec,
            device_name=device_name, device_type=device_type, gain=gain,
            led=led_power_percent, ewl=ewl, head_orientation=head_orientation,
            start=start_time or _dt.datetime.now(), should_stop=should_stop,
        )  # fmt: skip
        _replace_folder(tmp, final, overwrite)
    except OSError as exc:
        full = disk_full_error(
            exc, final, partial=tmp, needed_bytes=needed, existing_kept=final.exists()
        )
        shutil.rmtree(tmp, ignore_errors=True)
        if full is None or full is exc:
            raise
        raise full from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _json(path: Path, data: dict) -> None:
    import json

    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        json.dump(data, fh, indent=4, sort_keys=True)
        fh.write("\n")


def _write_into(
    av: Any, tmp: Path, movie: Any, keep: np.ndarray, *, rate: float, segment_frames: int,
    codec: str, device_name: str, device_type: str, gain: Any, led: float, ewl: float,
    head_orientation: bool, start: _dt.datetime, should_stop: Callable[[], bool] | None,
) -> None:  # fmt: skip
    encoder, pix_fmt, compression = _CODECS[codec]
    dev_dir_name = device_name.replace(" ", "_")
    if not dev_dir_name or "/" in dev_dir_name or "\\" in dev_dir_name or dev_dir_name[0] == ".":
        raise ParameterError(f"device_name={device_name!r} cannot name a folder")
    device_dir = tmp / dev_dir_name
    device_dir.mkdir()
    epoch_ms = int(start.timestamp() * 1000)
    _json(tmp / METADATA, {
        "researcherName": "napari-calcium", "animalName": "synthetic",
        "experimentName": "write_miniscope", "baseDirectory": str(tmp.parent / tmp.name),
        "year": start.year, "month": start.month, "day": start.day, "hour": start.hour,
        "minute": start.minute, "second": start.second, "msec": start.microsecond // 1000,
        "msecSinceEpoch": epoch_ms, "miniscopes": [device_name], "cameras": [],
    })  # fmt: skip
    (tmp / "notes.csv").write_text("", encoding="utf-8")
    fps = f"{rate:g}FPS"
    _json(device_dir / METADATA, {
        "deviceName": device_name, "deviceType": device_type, "deviceID": 0,
        "deviceDirectory": str(device_dir), "framesPerFile": segment_frames,
        "compression": compression, "frameRate": fps, "gain": gain, "led0": led, "ewl": ewl,
        "ROI": {"height": int(movie.shape[1]), "leftEdge": 0, "topEdge": 0,
                "width": int(movie.shape[2])},
    })  # fmt: skip
    times = np.rint(keep * (1000.0 / rate)).astype(np.int64)
    with open(device_dir / TIMESTAMPS, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(_TS_COLUMNS) + "\n")
        fh.writelines(f"{i},{t},0\n" for i, t in enumerate(times))
    if head_orientation:
        with open(device_dir / HEAD_ORIENTATION, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(",".join(_HO_COLUMNS) + "\n")
            fh.writelines(f"{t},1,0,0,0\n" for t in times)
    for seg, lo in enumerate(range(0, keep.size, segment_frames)):
        if should_stop is not None and should_stop():
            raise OperationCancelled(
                f"operation cancelled (write Miniscope) after {lo} of {keep.size} frames"
            )
        idx = keep[lo : lo + segment_frames]
        block = _as_uint8(np.asarray(movie[int(idx[0]) : int(idx[-1]) + 1]), int(idx[0]))
        block = block[idx - idx[0]]
        with av.open(str(device_dir / f"{seg}.avi"), mode="w", format="avi") as out:
            stream = out.add_stream(encoder, rate=60)  # OpenCV in the DAQ software: 60 fps
            stream.width, stream.height = int(block.shape[2]), int(block.shape[1])
            stream.pix_fmt = pix_fmt
            if codec == "mpeg4":
                stream.codec_context.gop_size = 30
                stream.codec_context.options = {"qscale": "3"}
            elif codec == "mjpeg":
                stream.codec_context.options = {"qscale": "2"}
            for frame in block:
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), "gray")
                for packet in stream.encode(video_frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)

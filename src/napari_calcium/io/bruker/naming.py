"""PrairieView's file-naming convention, and CalSciPy-compatible Bruker functions.

PrairieView writes one file per frame, ``<name>_CycleNNNNN[_label]_ChK_NNNNNN.ome.tif``: in a
volumetric T-series the 5-digit cycle is the time point and the 6-digit index the plane; in a
single-plane one the cycle is constant and the index is the frame. Channels are 1-based (``Ch2``).

The functions named as in CalSciPy 0.3 (:func:`determine_imaging_content`,
:func:`generate_bruker_naming_convention`, :func:`load_bruker_tifs`) are built on
:func:`napari_calcium.io.bruker.stack.open_bruker`; unlike CalSciPy's, frames come in time order
(not directory order) and any number of planes works.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import numpy as np

from ...errors import ParameterError

__all__ = [
    "FILENAME_RE",
    "determine_imaging_content",
    "generate_bruker_naming_convention",
    "load_bruker_tifs",
    "names_table",
    "parse_bruker_filename",
]

#: PrairieView image file name: ``<base>_Cycle00001[_<label>]_Ch2_000001[.ome].tif``.
FILENAME_RE = re.compile(
    r"^(?P<base>.+?)_Cycle(?P<cycle>\d{5})_(?:(?P<label>\w+?)_)?Ch(?P<channel>\d+)_"
    r"(?P<index>\d{6})(?P<ext>(?:\.ome)?\.tiff?)$",
    re.IGNORECASE,
)


def parse_bruker_filename(name: str) -> dict[str, Any] | None:
    """Split a PrairieView image file name into its parts.

    Parameters
    ----------
    name : str
        A file name (no folder), e.g. ``"TSeries-001_Cycle00002_Ch2_000004.ome.tif"``.

    Returns
    -------
    dict or None
        ``base`` (str), ``cycle``, ``channel``, ``index`` (int), ``label`` (str or None, e.g.
        PV 4's ``"CurrentSettings"``), ``ext`` (str); None if the name does not follow the
        convention.
    """
    match = FILENAME_RE.match(name)
    if match is None:
        return None
    parts = match.groupdict()
    for key in ("cycle", "channel", "index"):
        parts[key] = int(parts[key])
    return parts


def _image_name(base: str, cycle: int, label: str | None, channel: int, index: int, ext: str):
    lab = f"{label}_" if label else ""
    return f"{base}_Cycle{cycle:05d}_{lab}Ch{channel}_{index:06d}{ext}"


def names_table(
    parsed: list[dict[str, Any]], *, volumetric: bool | None = None, bidirectional: bool = False
):
    """Frame table of one recording from its parsed file names alone.

    Parameters
    ----------
    parsed : list of dict
        :func:`parse_bruker_filename` results of one recording (one base name), any order.
    volumetric : bool, optional
        Cycle = time point and index = plane (True), or index = frame (False). None decides from
        the names: volumetric when several cycles each hold several indices.
    bidirectional : bool
        Volumes were scanned alternately down and up (``.env`` ``PVZSeriesController
        bidirectional="True"``): even cycles are acquired in reverse plane order, so their
        indices are reversed to keep each plane at the same z.

    Returns
    -------
    layout : str
        ``"volume-series"``, ``"z-stack"`` (one volumetric cycle) or ``"time-series"``.
    channel_numbers : tuple of int
    names : numpy.ndarray of str
        ``(channels, time points, planes)`` expected file names: every cycle from the first to
        the last, every index from the lowest to the highest (missing ones included, so that
        gaps can be reported by name).
    cycles : numpy.ndarray of int
        ``(time points,)`` cycle of each time point.
    indices : numpy.ndarray of int
        ``(time points, planes)`` 6-digit index of each frame.
    """
    ext = Counter(p["ext"] for p in parsed).most_common(1)[0][0]
    label = Counter(p["label"] for p in parsed).most_common(1)[0][0]
    base = parsed[0]["base"]
    numbers = tuple(sorted({p["channel"] for p in parsed}))
    keys = {(p["cycle"], p["index"]) for p in parsed}
    cycles = sorted({k[0] for k in keys})
    per_cycle = {c: sorted(i for cc, i in keys if cc == c) for c in cycles}
    if volumetric is None:
        volumetric = len(cycles) > 1 and any(len(v) > 1 for v in per_cycle.values())
    all_cycles = range(cycles[0], cycles[-1] + 1)
    if volumetric:
        planes = range(min(k[1] for k in keys), max(k[1] for k in keys) + 1)
        grid = [[(c, i) for i in planes] for c in all_cycles]
        if bidirectional:  # cycle 1 runs down, cycle 2 up, ...
            grid = [row[::-1] if (row[0][0] - 1) % 2 else row for row in grid]
        layout = "volume-series" if len(grid) > 1 else "z-stack"
    else:
        spans = {c: range(v[0], v[-1] + 1) for c, v in per_cycle.items()}
        grid = [[(c, i)] for c in all_cycles for i in spans.get(c, [0])]
        layout = "time-series"
    names = np.array(
        [[[_image_name(base, c, label, ch, i, ext) for c, i in row] for row in grid]
         for ch in numbers],
        dtype=object,
    )  # fmt: skip
    cycle_of = np.array([row[0][0] for row in grid], dtype=np.int64)
    indices = np.array([[i for _, i in row] for row in grid], dtype=np.int64)
    return layout, numbers, names, cycle_of, indices


# ---------------------------------------------------------------------------------------------
# CalSciPy 0.3 names


def determine_imaging_content(folder: str | os.PathLike) -> tuple[int, int, int, int, int]:
    """Channels, planes, frames, height and width of a PrairieView folder.

    Reads the XML (or .env and file names) and one TIFF header, like
    :func:`~napari_calcium.io.bruker.stack.open_bruker`.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder of a PrairieView recording (or its main ``.xml``).

    Returns
    -------
    (channels, planes, frames, height, width) : tuple of int
        ``frames`` counts time points (volumes for multi-plane recordings).

    Raises
    ------
    RecordingError, MetadataError
        As :func:`~napari_calcium.io.bruker.stack.open_bruker`.
    """
    from .stack import open_bruker

    rec = open_bruker(folder)
    shape = rec.shape
    return len(rec.channels), rec.metadata.n_planes, shape[0], shape[-2], shape[-1]


def generate_bruker_naming_convention(
    channel: int, plane: int, num_channels: int = 1, num_planes: int = 1
) -> str:
    """Glob pattern of the files of one channel and plane (CalSciPy's convention).

    Parameters
    ----------
    channel, plane : int
        Zero-based channel and plane. The channel is written ``Ch{channel + 1}``, CalSciPy's
        assumption that the recording's channels are ``Ch1``, ``Ch2``, ...
    num_channels, num_planes : int
        How many channels and planes the recording has.

    Returns
    -------
    str
        ``"*.ome.tif"`` for one channel and plane; ``"*_Ch{channel+1}_*.ome.tif"`` for several
        channels; ``"*_Ch*_{plane+1:06d}.ome.tif"`` for several planes;
        ``"*_Ch{channel+1}_{plane+1:06d}.ome.tif"`` for both. (CalSciPy 0.3 returns
        ``"*00000{plane+1}.ome.tif"``, which fails from the 10th plane on, and drops the ``_``
        between channel and plane; these patterns match the files PrairieView writes.)

    Raises
    ------
    ParameterError
        A negative or out-of-range channel/plane, or a count below 1.
    """
    for arg, value, count in (("channel", channel, num_channels), ("plane", plane, num_planes)):
        if int(count) < 1:
            raise ParameterError(f"num_{arg}s={count}: must be at least 1")
        if not 0 <= int(value) < int(count):
            raise ParameterError(f"{arg}={value}: must be 0..{int(count) - 1} (zero-based)")
    ch = f"Ch{int(channel) + 1}" if num_channels > 1 else "Ch*"
    if num_planes > 1:
        return f"*_{ch}_{int(plane) + 1:06d}.ome.tif"
    return f"*_{ch}_*.ome.tif" if num_channels > 1 else "*.ome.tif"


def load_bruker_tifs(
    folder: str | os.PathLike, channel: int | None = None, plane: int | None = None
) -> tuple[np.ndarray, ...]:
    """Load a PrairieView folder into memory, one array per (channel, plane).

    Parameters
    ----------
    folder : str or os.PathLike
        Folder of a PrairieView recording (or its main ``.xml``).
    channel, plane : int, optional
        Zero-based channel (position in ``open_bruker(folder).channels``) and plane to load;
        None loads all.

    Returns
    -------
    tuple of numpy.ndarray
        ``(frames, y, x)`` arrays in the files' dtype (uint16 for PrairieView), frames in time
        order; one per channel and plane, channel-major (``(c0 p0, c0 p1, ..., c1 p0, ...)``).

    Raises
    ------
    ParameterError
        ``channel`` or ``plane`` out of range.
    RecordingError, MetadataError
        As :func:`~napari_calcium.io.bruker.stack.open_bruker`, or a file that cannot be read.
    """
    from .stack import open_bruker

    rec = open_bruker(folder)
    names, n_planes = list(rec.channels), rec.metadata.n_planes
    for arg, value, count in (("channel", channel, len(names)), ("plane", plane, n_planes)):
        if value is not None and not 0 <= int(value) < count:
            raise ParameterError(
                f"{arg}={value}: {rec.path} has {count} {arg}(s), numbered 0..{count - 1}"
            )
    out = []
    for c in range(len(names)) if channel is None else [int(channel)]:
        movie = rec.channels[names[c]]
        if n_planes == 1:
            out.append(_read_whole(movie))
        elif plane is not None:
            out.append(_read_whole(movie[:, int(plane)]))
        else:  # every plane: one read of the volumes; each plane is a view into it
            volumes = _read_whole(movie)
            out.extend(volumes[:, p] for p in range(n_planes))
    return tuple(out)


def _read_whole(movie) -> np.ndarray:
    """Read a lazy movie into one preallocated array (``compute()`` would hold it twice)."""
    import dask.array as da

    dst = np.empty(movie.shape, movie.dtype)
    da.store(movie, dst, lock=False)
    return dst

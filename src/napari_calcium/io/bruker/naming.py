"""PrairieView's file-naming convention: parsing image file names and building them back.

PrairieView writes one file per frame, ``<name>_CycleNNNNN[_label]_ChK_NNNNNN.ome.tif``: in a
volumetric T-series the 5-digit cycle is the time point and the 6-digit index the plane; in a
single-plane one the cycle is constant and the index is the frame. Channels are 1-based (``Ch2``).

:func:`parse_bruker_filename` splits a name into its parts (:data:`FILENAME_RE`);
:func:`names_table` lays out a recording's frames from its file names alone. The CalSciPy-named
functions are in :mod:`~napari_calcium.io.bruker.calscipy`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

__all__ = [
    "FILENAME_RE",
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

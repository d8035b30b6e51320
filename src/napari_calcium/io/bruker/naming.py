"""PrairieView's file-naming convention: parsing image file names and building them back.

PrairieView writes one file per frame, ``<name>_CycleNNNNN[_label]_ChK_NNNNNN.ome.tif``: in a
volumetric T-series the 5-digit cycle is the time point and the 6-digit index the plane; in a
single-plane one the cycle is constant and the index is the frame. Channels are 1-based (``Ch2``).

:func:`parse_bruker_filename` splits a name into its parts (:data:`FILENAME_RE`);
:func:`names_table` lays out a recording's frames from its file names alone. The CalSciPy-named
functions are in :mod:`~napari_calcium.io.bruker.calscipy`.
"""

from __future__ import annotations

import itertools
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import RecordingError

__all__ = [
    "FILENAME_RE",
    "MAX_GAP",
    "STRAY_FRACTION",
    "names_table",
    "parse_bruker_filename",
]

#: PrairieView image file name: ``<base>_Cycle00001[_<label>]_Ch2_000001[.ome].tif``. Digits are
#: ASCII only (``\d`` would take Arabic-Indic digits too) and a channel number has 1-4 of them.
FILENAME_RE = re.compile(
    r"^(?P<base>.+?)_Cycle(?P<cycle>[0-9]{5})_(?:(?P<label>\w+?)_)?Ch(?P<channel>[0-9]{1,4})_"
    r"(?P<index>[0-9]{6})(?P<ext>(?:\.ome)?\.tiff?)$",
    re.IGNORECASE,
)

#: Frame numbers (cycles, or indices) more than this apart in a recording's file names are not
#: one series: the files beyond such a gap are strays (left out) or the folder is refused.
MAX_GAP = 64
#: At most one stray file per this many files of the series (and at least one) is left out.
STRAY_FRACTION = 20
#: Frame-table cells (channels x time points x planes) allowed per image file (plus
#: :data:`_CELLS_SLACK`): the table is built from the file names, so its size is bounded by the
#: files on disk, never by the numbers a file name carries.
_CELLS_PER_FILE = 16
_CELLS_SLACK = 4096


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
        PV 4's ``"CurrentSettings"``), ``ext`` (str) and ``name`` (``name`` itself); None if
        the name does not follow the convention.
    """
    match = FILENAME_RE.match(name)
    if match is None:
        return None
    parts: dict[str, Any] = match.groupdict()
    for key in ("cycle", "channel", "index"):
        parts[key] = int(parts[key])
    parts["name"] = name
    return parts


def _image_name(base: str, cycle: int, label: str | None, channel: int, index: int, ext: str):
    lab = f"{label}_" if label else ""
    return f"{base}_Cycle{cycle:05d}_{lab}Ch{channel}_{index:06d}{ext}"


def _name_of(p: dict[str, Any]) -> str:
    name = p.get("name")
    return name if name else _image_name(p["base"], p["cycle"], p["label"], p["channel"],
                                         p["index"], p["ext"])  # fmt: skip


def _listed(files: list[str], limit: int = 5) -> str:
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return ", ".join(files[:limit]) + more


def _main_run(counts: Counter) -> tuple[int, int] | None:
    """``(lo, hi)`` of the run of numbers holding the most files; None if all are one run.

    The sorted numbers are cut into runs wherever two neighbours are more than
    :data:`MAX_GAP` apart; ties go to the earliest run.
    """
    values = sorted(counts)
    if all(b - a <= MAX_GAP for a, b in itertools.pairwise(values)):
        return None
    best, best_n = (values[0], values[0]), -1
    start = prev = values[0]
    n = 0
    for v in values:
        if v - prev > MAX_GAP:
            if n > best_n:
                best, best_n = (start, prev), n
            start, n = v, 0
        n += counts[v]
        prev = v
    return (start, prev) if n > best_n else best


def _leave_out_far(parsed: list[dict[str, Any]], where: Path) -> list[dict[str, Any]]:
    """The files whose cycle and index lie with the bulk of the recording's; warn about the rest.

    A file whose cycle (then index) is more than :data:`MAX_GAP` from the run holding most files
    is a stray (a frame renamed by hand, a copy of another recording): one such file, or one per
    :data:`STRAY_FRACTION` kept ones, is left out with a warning naming it. More are not strays
    but a broken series (dropping them would shift the time base of what is kept):
    :class:`~napari_calcium.errors.RecordingError` naming the first of them.
    """
    kept, far, spans = parsed, [], []
    for key, what in (("cycle", "cycle"), ("index", "frame index")):
        run = _main_run(Counter(p[key] for p in kept))
        if run is None:
            continue
        lo, hi = run
        out = [p for p in kept if not lo <= p[key] <= hi]
        if out:
            kept = [p for p in kept if lo <= p[key] <= hi]
            far += out
            spans.append((key, what, lo, hi))
    if not far:
        return parsed
    names = sorted(_name_of(p) for p in far)
    key, what, lo, hi = spans[0]
    first = next(p for p in far if not lo <= p[key] <= hi)
    where_far = f"{what} {first[key]}, more than {MAX_GAP} from the others' ({lo}-{hi})"
    if len(far) > max(1, len(kept) // STRAY_FRACTION):
        raise RecordingError(
            where / _name_of(first),
            f"is {where_far}, and {len(far)} of the {len(parsed)} image files are as far: the "
            "file names do not make one series (a gap in the copy, or files of several "
            "recordings?); move stray files out of the folder, or re-copy it",
        )
    warnings.warn(
        f"{where}: {len(far)} image file(s) carry a cycle or frame index far from the "
        f"recording's other frames (e.g. {where_far}) and are left out as stray files: "
        f"{_listed(names)}",
        stacklevel=5,
    )
    return kept


def _one_file_per_frame(
    parsed: list[dict[str, Any]], ext: str, label: str | None, where: Path
) -> dict[tuple[int, int, int], str]:
    """``(channel, cycle, index)`` -> the file holding that frame; warn about second copies.

    Where two files name one frame (``_000003.tif`` beside ``_000003.ome.tif``, ``Ch02`` beside
    ``Ch2``), the one in the recording's usual spelling is kept.
    """
    files: dict[tuple[int, int, int], str] = {}
    doubles: list[str] = []
    for p in parsed:
        key = (p["channel"], p["cycle"], p["index"])
        name = p.get("name") or _name_of(p)
        held = files.setdefault(key, name)
        if held == name:
            continue
        usual = _image_name(p["base"], p["cycle"], label, p["channel"], p["index"], ext)
        # keep the usual spelling, else the first in sorted order: the same whatever the order
        keep = min((held, name), key=lambda n: (n != usual, n))
        files[key] = keep
        doubles.append(name if keep == held else held)
    if doubles:
        warnings.warn(
            f"{where}: {len(doubles)} image file(s) name a frame another file already holds "
            f"and are left out: {_listed(sorted(doubles))}",
            stacklevel=5,
        )
    return files


def names_table(
    parsed: list[dict[str, Any]],
    *,
    volumetric: bool | None = None,
    bidirectional: bool = False,
    folder: str | os.PathLike | None = None,
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
    folder : str or os.PathLike, optional
        The files' folder, for messages.

    Returns
    -------
    layout : str
        ``"volume-series"``, ``"z-stack"`` (one volumetric cycle) or ``"time-series"``.
    channel_numbers : tuple of int
    names : numpy.ndarray of str
        ``(channels, time points, planes)`` file names: the file present for each frame (its
        own spelling), and for the missing ones (every cycle from the first to the last, every
        index from the lowest to the highest) the name PrairieView would give them, so that
        gaps can be reported by name.
    cycles : numpy.ndarray of int
        ``(time points,)`` cycle of each time point.
    indices : numpy.ndarray of int
        ``(time points, planes)`` 6-digit index of each frame.

    Raises
    ------
    RecordingError
        The names do not make one series: many files far from the others (a few such strays
        are left out with a warning), or so many gaps that the table would hold far more
        frames than there are files (its size is bounded by the files on disk, never by the
        numbers in their names).

    Warns
    -----
    UserWarning
        Stray files (a cycle or index more than :data:`MAX_GAP` from the others) and second
        files of one frame are left out, named.
    """
    where = Path(folder) if folder is not None else Path()
    parsed = _leave_out_far(parsed, where)
    ext = Counter(p["ext"] for p in parsed).most_common(1)[0][0]
    label = Counter(p["label"] for p in parsed).most_common(1)[0][0]
    base = parsed[0]["base"]
    files = _one_file_per_frame(parsed, ext, label, where)
    numbers = tuple(sorted({p["channel"] for p in parsed}))
    keys = {(p["cycle"], p["index"]) for p in parsed}
    cycles = sorted({k[0] for k in keys})
    per_cycle: dict[int, list[int]] = {c: [] for c in cycles}
    for c, i in keys:
        per_cycle[c].append(i)
    for v in per_cycle.values():
        v.sort()
    if volumetric is None:
        volumetric = len(cycles) > 1 and any(len(v) > 1 for v in per_cycle.values())
    all_cycles = range(cycles[0], cycles[-1] + 1)
    if volumetric:
        planes = range(min(k[1] for k in keys), max(k[1] for k in keys) + 1)
        n_cells = len(all_cycles) * len(planes)

        def rows() -> Iterator[list[tuple[int, int]]]:
            for c in all_cycles:
                row = [(c, i) for i in planes]
                # cycle 1 runs down, cycle 2 up, ...
                yield row[::-1] if bidirectional and (c - 1) % 2 else row

    else:
        spans = {c: range(v[0], v[-1] + 1) for c, v in per_cycle.items()}
        n_cells = sum(len(r) for r in spans.values()) + len(all_cycles) - len(spans)

        def rows() -> Iterator[list[tuple[int, int]]]:
            for c in all_cycles:
                for i in spans.get(c, [0]):
                    yield [(c, i)]

    def name(ch: int, c: int, i: int) -> str:
        return files.get((ch, c, i)) or _image_name(base, c, label, ch, i, ext)

    if n_cells * len(numbers) > _CELLS_PER_FILE * len(parsed) + _CELLS_SLACK:
        missing = next(
            name(ch, c, i)
            for row in rows() for c, i in row for ch in numbers if (ch, c, i) not in files
        )  # fmt: skip
        raise RecordingError(
            where / missing,
            f"is missing, and so are most frames the file names ask for: {len(parsed)} image "
            f"files number {n_cells} frames x {len(numbers)} channel(s) (gaps everywhere); "
            "not one recording? Move stray files out of the folder, or re-copy it",
        )
    grid = list(rows())
    layout = ("volume-series" if len(grid) > 1 else "z-stack") if volumetric else "time-series"
    names = np.array(
        [[[name(ch, c, i) for c, i in row] for row in grid] for ch in numbers], dtype=object
    )
    cycle_of = np.array([row[0][0] for row in grid], dtype=np.int64)
    indices = np.array([[i for _, i in row] for row in grid], dtype=np.int64)
    return layout, numbers, names, cycle_of, indices

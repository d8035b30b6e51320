"""Bruker PrairieView metadata: the main ``.xml``, the ``.env`` (or old ``Config.cfg``), file names.

:func:`scan_bruker_folder` turns a PrairieView folder into a :class:`BrukerSeries`: which file and
page holds each channel, time point and plane, and per-frame times, from the XML/.env and one
directory listing. Without the main ``<name>.xml`` the table comes from the file names (see
:mod:`~napari_calcium.io.bruker.naming`). Pixels are read by :mod:`~napari_calcium.io.bruker.stack`.
"""

from __future__ import annotations

import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import MetadataError, RecordingError
from .naming import names_table, parse_bruker_filename
from .pvxml import ENV_ROOTS as _ENV_ROOTS
from .pvxml import iterparse as _iterparse
from .pvxml import num as _num
from .pvxml import sniff_root as _sniff_root

__all__ = [
    "BrukerSeries",
    "PVFrame",
    "PVSequence",
    "PrairieViewEnv",
    "PrairieViewXml",
    "parse_prairieview_env",
    "parse_prairieview_xml",
    "scan_bruker_folder",
]

_SIDE = re.compile(r"_Cycle\d{5}_", re.IGNORECASE)  # voltage/markpoints side files


# ---------------------------------------------------------------------------------------------
# XML / .env parsing
@dataclass(frozen=True, eq=False, slots=True)
class PVFrame:
    """One ``<Frame>``: its files ``(channel, channelName, filename, page or None)`` and state."""

    index: int | None
    relative_time: float | None
    absolute_time: float | None
    files: tuple[tuple[int, str | None, str, int | None], ...]
    state: dict[str, str]


@dataclass(eq=False)
class PVSequence:
    """One ``<Sequence>``: type (``"TSeries Timed Element"``, ``"ZSeries"``, ...), cycle, frames."""

    type: str
    cycle: int | None
    attrs: dict[str, str]
    state: dict[str, str] = field(default_factory=dict)
    frames: list[PVFrame] = field(default_factory=list)


@dataclass(eq=False)
class PrairieViewXml:
    """A parsed main PrairieView ``<name>.xml`` (root ``<PVScan>``)."""

    path: Path
    version: str | None
    date: str | None
    system: str | None
    state: dict[str, str]
    sequences: list[PVSequence]


@dataclass(eq=False)
class PrairieViewEnv:
    """A parsed ``<name>.env`` (root ``<Environment>``) or PV 4 ``<name>Config.cfg``."""

    path: Path
    version: str | None
    date: str | None
    state: dict[str, str]
    tseries: list[tuple[str, dict[str, str]]]  # (element tag, attributes) inside <TSeries>
    zseries: dict[str, str]  # <PVZSeriesController> attributes (bidirectional, ...)


def _parse_shard(elem: ET.Element | None) -> dict[str, str]:
    """Flatten a ``<PVStateShard>``: ``key``, ``key/index``, ``key/index/subindex`` -> value.

    Descriptions (e.g. the laser name of ``laserPower/1``) go to ``<flat key>:description``.
    """
    out: dict[str, str] = {}
    if elem is None:
        return out

    def put(key: str, node: ET.Element) -> None:
        if "value" in node.attrib:
            out[key] = node.attrib["value"]
        if node.get("description"):
            out[key + ":description"] = node.attrib["description"]

    for value in elem:
        key = value.get("key")
        if not key:
            continue
        if value.tag == "Key":  # PV 4.x: micronsPerPixel_XAxis -> micronsPerPixel/XAxis
            put(key.replace("_", "/", 1), value)
            continue
        put(key, value)
        for sub in value:
            index = sub.get("index")
            if sub.tag == "IndexedValue":
                put(f"{key}/{index}", sub)
            elif sub.tag == "SubindexedValues":
                for leaf in sub:
                    put(f"{key}/{index}/{leaf.get('subindex')}", leaf)
    return out


def parse_prairieview_xml(path: str | os.PathLike) -> PrairieViewXml:
    """Parse a main PrairieView ``<name>.xml`` (PV 4.x and 5.x layouts) incrementally.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.xml`` whose root element is ``<PVScan>``.

    Returns
    -------
    PrairieViewXml
        Version, date, document-level state, and every ``<Sequence>`` with its ``<Frame>``
        list (times in s, files, per-frame state overrides).

    Raises
    ------
    MetadataError
        The file is not PrairieView XML, is malformed or cut short, or a ``<File>`` lacks its
        channel or file name.
    """
    path = Path(path)
    stack: list[str] = []
    doc = PrairieViewXml(path, None, None, None, {}, [])
    for event, elem in _iterparse(path, ("PVScan",), "XML"):
        if event == "start":
            stack.append(elem.tag)
            if len(stack) == 1:
                doc.version, doc.date = elem.get("version"), elem.get("date")
            elif len(stack) == 2 and elem.tag == "Sequence":
                attrs = dict(elem.attrib)
                doc.sequences.append(
                    PVSequence(attrs.get("type", ""), _num(attrs.get("cycle"), int), attrs)
                )
            continue
        stack.pop()
        depth = len(stack)
        if elem.tag == "Frame" and depth == 2 and stack[-1] == "Sequence":
            doc.sequences[-1].frames.append(_parse_frame(path, elem, doc.sequences[-1]))
            elem.clear()
        elif elem.tag == "PVStateShard" and depth == 1:
            doc.state = _parse_shard(elem)
        elif elem.tag == "PVStateShard" and depth == 2 and stack[-1] == "Sequence":
            doc.sequences[-1].state = _parse_shard(elem)
        elif elem.tag == "SystemID" and doc.system is None:
            doc.system = elem.get("Description") or None
        elif elem.tag == "Sequence" and depth == 1:
            elem.clear()
    return doc


def _parse_frame(path: Path, elem: ET.Element, seq: PVSequence) -> PVFrame:
    files = []
    for node in elem.iterfind("File"):
        channel, name = _num(node.get("channel"), int), node.get("filename")
        if channel is None or not name:
            raise MetadataError(
                path,
                f"<Frame index={elem.get('index')!r}> of sequence cycle {seq.cycle} has a <File> "
                "without a channel or filename",
            )
        name = name.replace("\\", "/").rsplit("/", 1)[-1]  # a bare file name, never a path
        files.append((channel, node.get("channelName") or None, name, _num(node.get("page"), int)))
    get = elem.get
    times = _num(get("relativeTime")), _num(get("absoluteTime"))
    state = _parse_shard(elem.find("PVStateShard"))
    return PVFrame(_num(get("index"), int), *times, tuple(files), state)


def parse_prairieview_env(path: str | os.PathLike) -> PrairieViewEnv:
    """Parse a PrairieView ``.env`` (PV 5) or ``Config.cfg`` (PV 4).

    Parameters
    ----------
    path : str or os.PathLike
        The environment file.

    Returns
    -------
    PrairieViewEnv
        Version, date, the root ``<PVStateShard>`` (flattened) and the T-series elements (e.g.
        ``PVTSeriesElementZSeries`` with ``repetitions`` and ``repetitionPeriod``).

    Raises
    ------
    MetadataError
        Not a PrairieView environment file, or malformed / cut short.
    """
    path = Path(path)
    env = PrairieViewEnv(path, None, None, {}, [], {})
    stack: list[str] = []
    for event, elem in _iterparse(path, _ENV_ROOTS, "environment file"):
        if event == "start":
            stack.append(elem.tag)
            if len(stack) == 1:
                env.version, env.date = elem.get("version"), elem.get("date")
            continue
        stack.pop()
        depth = len(stack)
        if elem.tag == "PVStateShard" and depth == 1:
            env.state = _parse_shard(elem)
        elif depth == 2 and stack[-1] == "TSeries":
            env.tseries.append((elem.tag, dict(elem.attrib)))
        elif elem.tag == "PVZSeriesController" and depth == 1:
            env.zseries = dict(elem.attrib)
        if depth == 1:
            elem.clear()  # the .env is large; keep only what we extracted
    return env


# ---------------------------------------------------------------------------------------------
# the frame table
@dataclass(frozen=True, eq=False)
class BrukerSeries:
    """A PrairieView recording's frame table and parsed metadata files (no pixel data).

    Attributes
    ----------
    folder : pathlib.Path
        Folder that holds the image files.
    name : str
        Base name of the recording (``<name>.xml``, ``<name>_Cycle...``).
    xml, env : PrairieViewXml or None, PrairieViewEnv or None
        The parsed main XML and ``.env``/``Config.cfg``, where present.
    layout : str
        ``"time-series"``, ``"volume-series"``, ``"z-stack"``, ``"single"`` or ``"linescan"``.
    channel_numbers, channel_names : tuple
        PrairieView channel numbers (``Ch2`` -> 2) and names (XML ``channelName`` or ``"Ch2"``).
    filenames : numpy.ndarray of str
        ``(channels, time points, planes)``: file (relative to ``folder``) holding each frame.
    pages : numpy.ndarray of int
        ``(channels, time points, planes)``: 0-based page of that frame inside its file.
    frame_times_s : numpy.ndarray or None
        ``(time points, planes)``: acquisition time of each frame in s (from the XML).
    cycles, indices : numpy.ndarray of int
        ``(time points,)`` cycle and ``(time points, planes)`` frame index (the 6-digit number).
    xml_frames : list of (PVSequence, PVFrame) or None
        ``(time points,)``: XML sequence and first frame of each time point (their state).
    extra : dict
        Layout facts (sequence types, bidirectional Z, z positions, dropped time points).
    listing : frozenset of str
        Names of the files in ``folder`` when it was scanned.
    """

    folder: Path
    name: str
    xml: PrairieViewXml | None
    env: PrairieViewEnv | None
    layout: str
    channel_numbers: tuple[int, ...]
    channel_names: tuple[str, ...]
    filenames: np.ndarray
    pages: np.ndarray
    frame_times_s: np.ndarray | None
    cycles: np.ndarray
    indices: np.ndarray
    xml_frames: list[tuple[PVSequence, PVFrame]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    listing: frozenset[str] = frozenset()

    @property
    def n_times(self) -> int:
        return int(self.filenames.shape[1])

    @property
    def n_planes(self) -> int:
        return int(self.filenames.shape[2])


def _channels(doc: PrairieViewXml, frames: list[PVFrame]) -> tuple[list[int], list[str]]:
    """PV channel numbers and their names (``channelName``, or ``"Ch2"`` if absent/clashing)."""
    named = {f[0]: f[1] for fr in frames for f in fr.files}
    if not named:
        raise MetadataError(doc.path, "its frames list no image <File>")
    numbers = sorted(named)
    names = [named[n] or f"Ch{n}" for n in numbers]
    return numbers, names if len(set(names)) == len(names) else [f"Ch{n}" for n in numbers]


def _groups_from_xml(doc: PrairieViewXml) -> tuple[str, list[tuple[PVSequence, list[PVFrame]]]]:
    """(layout, [(sequence, frames of one time point)]) from the XML's sequences."""
    seqs = [s for s in doc.sequences if s.frames]
    if not seqs:
        raise MetadataError(doc.path, "lists no frames (no <Frame> in any <Sequence>)")
    types = list(dict.fromkeys(s.type for s in seqs))
    volumes = ["ZSeries" in t for t in types]
    if any(volumes) and not all(volumes):
        raise MetadataError(doc.path, f"mixes sequence types {types}; open one kind at a time")
    if not all(volumes):
        groups = [(s, [fr]) for s in seqs for fr in s.frames]
        single = len(groups) == 1 and types[0] in ("Single", "Linescan")
        return (types[0].lower() if single else "time-series"), groups
    groups = [(s, s.frames) for s in seqs]
    n_z = len(groups[0][1])
    bad = [i for i, (_, g) in enumerate(groups) if len(g) != n_z]
    if bad == [len(groups) - 1] and len(groups[-1][1]) < n_z:
        warnings.warn(
            f"{doc.path}: the last volume has {len(groups[-1][1])} of {n_z} planes "
            "(acquisition stopped?); it is left out",
            stacklevel=4,
        )
        groups = groups[:-1]
    elif bad:
        seq, frames = groups[bad[0]]
        raise MetadataError(
            doc.path,
            f"sequence cycle {seq.cycle} has {len(frames)} frames but the first has {n_z}: "
            "volumes of different sizes",
        )
    return ("z-stack" if len(groups) == 1 else "volume-series"), groups


def _series_from_xml(folder: Path, name: str, doc: PrairieViewXml, env) -> BrukerSeries:
    layout, groups = _groups_from_xml(doc)
    numbers, channel_names = _channels(doc, [fr for _, frames in groups for fr in frames])
    n_c, n_t, n_z = len(numbers), len(groups), len(groups[0][1])
    names = np.empty((n_c, n_t, n_z), dtype=object)
    pages = np.zeros((n_c, n_t, n_z), dtype=np.int64)
    indices = np.zeros((n_t, n_z), dtype=np.int64)
    rel, absolute, zpos = (np.full((n_t, n_z), np.nan) for _ in range(3))
    next_page: Counter = Counter()
    col = {n: i for i, n in enumerate(numbers)}
    for t, (seq, frames) in enumerate(groups):
        for z, fr in enumerate(frames):
            if len({f[0] for f in fr.files}) != n_c:
                missing = sorted(set(numbers) - {f[0] for f in fr.files})
                raise MetadataError(
                    doc.path, f"frame {fr.index} of cycle {seq.cycle} has no file for channel(s) "
                    f"{missing} (or lists one twice)",
                )  # fmt: skip
            for channel, _, fname, page in fr.files:
                names[col[channel], t, z] = fname
                pages[col[channel], t, z] = (
                    page - 1 if page and page > 0 else next_page[(channel, fname)]
                )
                next_page[(channel, fname)] += 1
            indices[t, z] = fr.index if fr.index is not None else z + 1
            for arr, val in ((rel, fr.relative_time), (absolute, fr.absolute_time)):
                arr[t, z] = np.nan if val is None else val
            zval = _z_of(fr.state)
            zpos[t, z] = np.nan if zval is None else zval
    types = list(dict.fromkeys(s.type for s, _ in groups))
    extra: dict[str, Any] = {"sequence_type": types[0], "sequence_types": types}
    if layout == "volume-series":
        _order_planes(groups, (names, pages), (rel, absolute, zpos, indices), extra)
    times, extra["timestamps_source"] = _frame_times(rel, absolute)
    if n_z > 1 and np.isfinite(zpos[0]).all():
        extra["z_positions_um"] = [float(v) for v in zpos[0]]
    cycles = np.array([s.cycle if s.cycle is not None else 1 for s, _ in groups], dtype=np.int64)
    return BrukerSeries(
        folder, name, doc, env, layout, tuple(numbers), tuple(channel_names), names, pages,
        times, cycles, indices, [(s, frames[0]) for s, frames in groups], extra,
    )  # fmt: skip


def _z_of(state: dict[str, str]) -> float | None:
    """Focus of a frame: the sum of its own ``positionCurrent`` Z values (motor + piezo/ETL), µm."""
    vals = [
        _num(v)
        for k, v in state.items()
        if k.startswith("positionCurrent/ZAxis") and not k.endswith(":description")
    ]
    vals = [v for v in vals if v is not None]
    return float(sum(vals)) if vals else None


def _order_planes(groups, per_channel, per_frame, extra) -> None:
    """Make plane index mean the same z in every volume.

    Bidirectional Z scans (``bidirectionalZ="True"``) acquire every other volume bottom-up: those
    volumes are reversed. Without the flag, a volume whose recorded z positions are the first
    volume's in reverse order is reversed too.
    """
    bidir = str(groups[0][0].attrs.get("bidirectionalZ", "")).lower() == "true"
    zpos = per_frame[2]
    ref = zpos[0]
    ref_ok = np.isfinite(ref).all() and len(np.unique(ref)) == len(ref)
    first = groups[0][0].cycle or 1
    flipped = 0
    for t, (seq, _) in enumerate(groups):
        if bidir:
            reverse = ((seq.cycle if seq.cycle is not None else first + t) - first) % 2 == 1
        else:
            tol = 1e-3 + 1e-6 * np.abs(ref).max() if ref_ok else 0.0
            reverse = bool(
                ref_ok and t and np.isfinite(zpos[t]).all()
                and not np.allclose(zpos[t], ref, rtol=0, atol=tol)
                and np.allclose(zpos[t][::-1], ref, rtol=0, atol=tol)
            )  # fmt: skip
        if reverse:
            flipped += 1
            for arr in per_channel:
                arr[:, t] = arr[:, t, ::-1].copy()
            for arr in per_frame:
                arr[t] = arr[t, ::-1].copy()
    extra["bidirectional_z"] = bidir or flipped > 0


def _frame_times(rel: np.ndarray, absolute: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Per-frame times: ``relativeTime`` if it never runs backwards, else ``absoluteTime``."""
    if np.isfinite(rel).all():
        order = np.argsort(absolute.ravel(), kind="stable") if np.isfinite(absolute).all() else None
        seq = rel.ravel() if order is None else rel.ravel()[order]
        if (np.diff(seq) >= 0).all() or order is None:
            return rel.copy(), "relativeTime"
    if np.isfinite(absolute).all():
        return absolute - absolute.min(), "absoluteTime"
    return None, None


def _series_from_names(folder: Path, parsed: list[dict], env) -> BrukerSeries:
    """Frame table from ``_CycleNNNNN_ChK_NNNNNN`` names alone (no main XML)."""
    tags = [tag for tag, _ in env.tseries] if env else []
    volumetric = any("ZSeries" in tag for tag in tags) if tags else None
    bidir = env is not None and env.zseries.get("bidirectional", "").lower() == "true"
    layout, numbers, names, cycles, indices = names_table(
        parsed, volumetric=volumetric, bidirectional=bidir, folder=folder
    )
    extra = {"sequence_type": None, "sequence_types": [], "bidirectional_z": bidir or None}
    return BrukerSeries(
        folder, parsed[0]["base"], None, env, layout, numbers, tuple(f"Ch{n}" for n in numbers),
        names, np.zeros(names.shape, dtype=np.int64), None, cycles, indices, extra=extra,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# folder level
def _recording_files(folder: Path, prefer: str | None):
    """(listing, base name, main xml, env, parsed image names) of the one recording in folder."""
    try:
        with os.scandir(folder) as it:
            files = sorted(e.name for e in it if e.is_file())
    except OSError as exc:
        raise RecordingError(folder, f"cannot list the folder ({exc.strerror or exc})") from None
    xmls = {n[:-4]: n for n in files if n.lower().endswith(".xml") and not _SIDE.search(n)}
    if prefer is not None:
        xmls = {k: v for k, v in xmls.items() if k == prefer}
    pv = {stem: n for stem, n in xmls.items() if _sniff_root(folder / n) == "PVScan"}
    envs = {n[:-10]: n for n in files if n.endswith("Config.cfg")}
    envs.update({n[:-4]: n for n in files if n.lower().endswith(".env")})
    images = [p for p in map(parse_bruker_filename, files) if p is not None]
    named = set(pv) | {p["base"] for p in images}  # an .env of another name must sniff as PV's
    envs = {k: n for k, n in envs.items() if k in named or _sniff_root(folder / n) in _ENV_ROOTS}
    bases = {prefer} if prefer is not None else named | set(envs)
    if len(bases) > 1:
        raise RecordingError(
            folder,
            f"holds more than one recording ({', '.join(sorted(bases))}); open one by passing "
            "its .xml or .env, or move each into its own folder",
        )
    if not bases:
        raise RecordingError(
            folder,
            "is empty" if not files else "holds no PrairieView recording: no <PVScan> .xml, "
            "no .env and no <name>_CycleNNNNN_ChK_NNNNNN.ome.tif files",
        )  # fmt: skip
    base = bases.pop()
    if base in xmls and base not in pv:
        raise MetadataError(folder / xmls[base], "is not a PrairieView XML (no <PVScan> root)")
    images = [p for p in images if p["base"] == base]
    return set(files), base, pv.get(base), envs.get(base), images


def scan_bruker_folder(path: str | os.PathLike) -> BrukerSeries:
    """Read a PrairieView folder's metadata files and build its frame table (no pixel data).

    The table lists what the metadata (or the file names) say was acquired; whether each file
    is here is checked by :func:`napari_calcium.io.bruker.stack.keep_present` when opening.

    Parameters
    ----------
    path : str or os.PathLike
        The folder, or its main ``.xml`` / ``.env`` (which picks that recording when a folder
        holds several).

    Returns
    -------
    BrukerSeries

    Raises
    ------
    RecordingError
        No recording, several recordings, or no main XML and no image files.
    MetadataError
        The XML/.env is not PrairieView's, is malformed or cut short, or is inconsistent.
    """
    path = Path(path)
    prefer = None
    if path.is_file():
        name = path.name
        prefer = name[:-10] if name.endswith("Config.cfg") else path.stem
        if not (name.endswith("Config.cfg") or path.suffix.lower() in (".xml", ".env")):
            raise RecordingError(path, "is not a PrairieView folder, .xml or .env")
        path = path.parent
    elif not path.is_dir():
        raise RecordingError(path, "does not exist")
    listing, base, xml_name, env_name, images = _recording_files(path, prefer)
    env = parse_prairieview_env(path / env_name) if env_name else None
    if xml_name:
        series = _series_from_xml(path, base, parse_prairieview_xml(path / xml_name), env)
    elif images:
        series = _series_from_names(path, images, env)
    else:
        raise RecordingError(
            path / (env_name or base),
            "no main .xml and no <name>_CycleNNNNN_ChK_NNNNNN.ome.tif image files beside it: "
            "nothing to read frames from",
        )
    return replace(series, listing=frozenset(listing))

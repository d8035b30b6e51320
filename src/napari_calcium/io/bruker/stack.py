"""Bruker PrairieView folders as lazy dask stacks: :func:`open_bruker`.

Opening reads the XML/.env, one directory listing and one TIFF header (to learn the frame size
and dtype); no pixel data. Each dask chunk reads several time points' files in one task, so a
2,000-frame folder is ~100 tasks rather than 2,000. Uncompressed single-strip-run TIFFs (what
PrairieView writes) are read straight into the output buffer after a minimal check of their
header; anything else goes through tifffile. A file that turns out missing, truncated, not a TIFF
or of another size when it is read raises :class:`~napari_calcium.errors.RecordingError` naming
that file.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import math
import os
import struct
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import tifffile
from dask.highlevelgraph import HighLevelGraph

from ...errors import ParameterError, RecordingError
from ..metadata import Recording, RecordingMetadata
from .naming import FILENAME_RE
from .pvxml import ENV_ROOTS as _ENV_ROOTS
from .pvxml import num as _num
from .pvxml import sniff_root as _sniff_root
from .series import _SIDE, BrukerSeries, _z_of, scan_bruker_folder

__all__ = ["bruker_metadata", "is_bruker_folder", "keep_present", "lazy_channels", "open_bruker"]

#: Bytes of one dask chunk when ``frames_per_chunk`` is not given (see docs/io.md for timings).
CHUNK_BYTES = 8 * 2**20
MAX_FRAMES_PER_CHUNK = 64

# --------------------------------------------------------------------------------------------
# metadata


def _typed(value: str) -> Any:
    """PrairieView's text values as bool / int / float where they are one, else the string."""
    if value in ("True", "False"):
        return value == "True"
    for kind in (int, float):
        try:
            out = kind(value)
        except ValueError:
            continue
        return out if kind is int or math.isfinite(out) else value
    return value


def _indexed(state: dict[str, str], key: str) -> dict[str, float] | None:
    """``laserPower/1`` (+ description "Insight X3") -> ``{"Insight X3": 300.0}``."""
    out = {}
    for k, v in state.items():
        if k.startswith(key + "/") and not k.endswith(":description") and _num(v) is not None:
            out[state.get(k + ":description") or k[len(key) + 1 :]] = _num(v)
    return out or None


def bruker_metadata(series: BrukerSeries) -> RecordingMetadata:
    """What a PrairieView recording's XML/.env (or file names) say, as RecordingMetadata.

    Parameters
    ----------
    series : BrukerSeries
        From :func:`~napari_calcium.io.bruker.series.scan_bruker_folder` (and :func:`keep_present`).

    Returns
    -------
    RecordingMetadata
        ``frame_period_s`` is the time between time points (volumes for multi-plane): the
        median step of the per-frame times where the XML has them, else the nominal
        ``framePeriod`` (single plane) or ``.env`` ``repetitionPeriod`` (volumes). Values no
        file states are None. Everything else parsed is in ``extra`` (see docs/io.md).
    """
    env, doc = series.env, series.xml
    state: dict[str, str] = dict(env.state) if env else {}
    if doc is not None:
        state.update(doc.state)
    if series.xml_frames:
        seq, frame = series.xml_frames[0]
        state.update(seq.state)
        state.update(frame.state)

    def num(key: str, kind: type = float) -> Any:
        value = _num(state.get(key))
        return None if value is None or not math.isfinite(value) else kind(value)

    def period_of(mapping: dict[str, str], key: str) -> float | None:
        value = _num(mapping.get(key))
        return value if value is not None and 0 < value < math.inf else None

    zelem = next((a for tag, a in (env.tseries if env else []) if "ZSeries" in tag), {})
    volume_period = period_of(zelem, "repetitionPeriod")
    nominal = period_of(doc.state if doc and "framePeriod" in doc.state else state, "framePeriod")
    own_period = (
        period_of(series.xml_frames[0][1].state, "framePeriod") if series.xml_frames else None
    )
    extra: dict[str, Any] = dict(series.extra)
    period, stamps, source = None, None, None
    times = series.frame_times_s
    if times is not None and times.shape[0] >= 2:
        stamps = np.nanmin(times, axis=1)  # a time point starts with its first acquired frame
        period = float(np.median(np.diff(stamps)))
        source = extra.get("timestamps_source")
        if not period > 0:
            period, stamps, source = None, None, None
    elif times is not None:
        stamps = np.nanmin(times, axis=1)
    if period is None and series.layout == "time-series" and (own_period or nominal):
        period, source = own_period or nominal, "framePeriod"
        if stamps is None and doc is None and len(set(series.cycles.tolist())) == 1:
            stamps = (series.indices[:, 0] - 1) * period
    elif period is None and series.layout == "volume-series" and volume_period:
        period, source = volume_period, "repetitionPeriod"
        if stamps is None:
            stamps = (series.cycles - 1) * period  # cycle 1 starts at 0 s
    depth = num("bitDepth", int)  # 1e300 would make napari compute 2**depth for its limits
    pixel = (num("micronsPerPixel/YAxis"), num("micronsPerPixel/XAxis"))
    if series.layout == "linescan" or None in pixel or min(pixel) <= 0:
        pixel = None  # a linescan's y is time; a zero/negative size is not a size
    z_step, z_source = None, None
    if series.n_planes > 1:
        positions = extra.get("z_positions_um")
        if positions is not None and np.ptp(positions) > 0:
            z_step, z_source = float(np.median(np.abs(np.diff(positions)))), "positionCurrent"
        elif num("micronsPerPixel/ZAxis"):
            z_step, z_source = abs(num("micronsPerPixel/ZAxis")), "micronsPerPixel ZAxis (nominal)"
    extra.update(
        layout=series.layout,
        recording_name=series.name,
        channel_numbers=list(series.channel_numbers),
        metadata_files=[
            p.name for p in (getattr(doc, "path", None), getattr(env, "path", None)) if p
        ],
        first_cycle=int(series.cycles[0]),
        first_index=int(series.indices[0, 0]),
        acquisition_date=(doc and doc.date) or (env and env.date) or None,
        system=doc and doc.system,
        frame_period_source=source,
        frame_period_nominal_s=nominal,
        frame_period_per_frame_s=own_period,
        volume_period_nominal_s=volume_period,
        repetitions_planned=_num(zelem.get("repetitions"), int),
        z_step_source=z_source,
        z_focus_um=_z_of(state),
        objective=state.get("objectiveLens"),
        objective_magnification=num("objectiveLensMag"),
        objective_na=num("objectiveLensNA"),
        optical_zoom=num("opticalZoom"),
        laser_power=_indexed(state, "laserPower"),
        pmt_gain=_indexed(state, "pmtGain"),
        active_mode=state.get("activeMode:description") or state.get("activeMode"),
        dwell_time_us=num("dwellTime"),
        scan_line_period_s=num("scanLinePeriod") or num("scanlinePeriod"),
        lines_per_frame=num("linesPerFrame", int),
        pixels_per_line=num("pixelsPerLine", int),
        prairieview_state={k: _typed(v) for k, v in state.items()},
    )
    return RecordingMetadata(
        source_format="bruker",
        source_version=(doc and doc.version) or (env and env.version) or None,
        frame_period_s=period,
        timestamps_s=None if stamps is None else np.asarray(stamps, dtype=np.float64),
        pixel_size_um=pixel,
        z_step_um=z_step,
        n_planes=series.n_planes,
        channel_names=series.channel_names,
        bit_depth=depth if depth is not None and 0 < depth <= 64 else None,
        extra={k: v for k, v in extra.items() if v is not None and not k.startswith("_")},
    )


# --------------------------------------------------------------------------------------------
# files present


def _names(files, limit: int = 5) -> str:
    """``a, b, c and 7 more``: a few file names for a message."""
    files = [str(f) for f in files]
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return ", ".join(files[:limit]) + more


def _warn_unlisted(series: BrukerSeries) -> None:
    """Warn about image files named like this recording's frames that its main XML omits."""
    if series.xml is None:
        return
    listed = set(series.filenames.ravel().tolist())
    unlisted = []
    for name in sorted(series.listing - listed):
        match = FILENAME_RE.match(name)
        if match is not None and match["base"] == series.name:
            unlisted.append(name)
    if unlisted:
        warnings.warn(
            f"{series.folder}: {len(unlisted)} image file(s) named like this recording's frames "
            f"are not listed in {series.xml.path.name} and are left out: {_names(unlisted)}",
            stacklevel=4,
        )


def _partial(present: np.ndarray, covered: np.ndarray) -> tuple[np.ndarray, bool]:
    """Which units (rows of ``present``, ``(units, time points)``) have every covered time point.

    Returns the mask of complete units and whether leaving out the others keeps more frames than
    keeping every unit over only the time points they all share (a stray file of another channel
    or plane covers one time point: keeping it would cut the series to that one).
    """
    complete = (present | ~covered).all(axis=1)
    shared = int(present.all(axis=0).sum())
    leave_out = int(complete.sum()) * int(covered.sum()) >= len(present) * shared
    return complete, leave_out


def _leave_out_partial(series: BrukerSeries, present: np.ndarray):
    """Leave out a channel that covers only part of the series; a partial plane is an error.

    Only where that keeps more frames than cutting the series to the time points every channel
    (plane) covers; otherwise the series is left to :func:`keep_present`'s trimming.
    """
    folder, names = series.folder, series.filenames
    covered = present.any(axis=(0, 2))  # time points with any file here
    if not covered.any():
        return series, present
    n_cov = int(covered.sum())
    complete, leave_out = _partial(present.any(axis=2), covered)
    if not complete.any():
        counts = ", ".join(
            f"{name} has {int(present[c].any(axis=1).sum())}"
            for c, name in enumerate(series.channel_names)
        )
        raise RecordingError(
            folder,
            f"no channel has image files for all {n_cov} time points ({counts}): the files "
            "of different channels do not make one series; re-copy the folder, or move stray "
            "files out of it",
        )
    if not complete.all() and leave_out:
        files = [n for c in np.flatnonzero(~complete) for n in names[c][present[c]].ravel()]
        dropped = [series.channel_names[c] for c in np.flatnonzero(~complete)]
        kept = [series.channel_names[c] for c in np.flatnonzero(complete)]
        warnings.warn(
            f"{folder}: channel {', '.join(dropped)} has image files for only part of the "
            f"{n_cov} time points and is left out ({len(files)} file(s): {_names(files)}); "
            f"{', '.join(kept)} keeps the full series",
            stacklevel=4,
        )
        series = replace(
            series,
            channel_numbers=tuple(np.asarray(series.channel_numbers)[complete].tolist()),
            channel_names=tuple(np.asarray(series.channel_names, dtype=object)[complete]),
            filenames=names[complete],
            pages=series.pages[complete],
        )
        present = present[complete]
        names = series.filenames
    if series.n_planes > 1:
        complete, leave_out = _partial(present.any(axis=0).T, covered)
        if not complete.all() and (leave_out or not complete.any()):
            z = int(np.flatnonzero(~complete)[0])
            files = names[:, :, z][present[:, :, z]].ravel().tolist()
            n_z = int(present[:, :, z].any(axis=0).sum())
            if not files:  # a plane number no file carries: the planes do not make one volume
                raise RecordingError(
                    folder,
                    f"plane {z + 1} of {series.n_planes} has no image file for any of the "
                    f"{n_cov} time points: stray or renamed files? Move them out of the folder, "
                    "or re-copy it",
                )
            raise RecordingError(
                folder / files[0],
                f"is a frame of plane {z + 1} of {series.n_planes}, which has image files for "
                f"only {n_z} of the {n_cov} time points ({_names(files)}): stray files? Move "
                "them out of the folder, or re-copy it",
            )
    return series, present


def keep_present(series: BrukerSeries) -> BrukerSeries:
    """Keep the time points whose files are all in the folder listing.

    Missing ones at the start or the end are dropped with a warning (a copy that starts late, an
    aborted acquisition); a missing one between present ones is an error naming that file. A
    channel whose files cover only part of the time points (a stray file of another channel) is
    left out with a warning naming its files, and the other channels keep the full series; a
    plane that does so is an error naming its files. Image files named like the recording's
    frames that its main XML does not list are left out with a warning naming them.

    Raises
    ------
    RecordingError
        No listed file is present, one is missing inside the sequence, no channel covers the
        series, or a plane covers only part of it.
    """
    _warn_unlisted(series)
    present = np.vectorize(series.listing.__contains__, otypes=[bool])(series.filenames)
    series, present = _leave_out_partial(series, present)
    folder, names = series.folder, series.filenames
    complete = present.all(axis=(0, 2))
    if not complete.any():
        missing = names.ravel()[int(np.flatnonzero(~present.ravel())[0])]
        raise RecordingError(
            folder / missing,
            f"is missing, and so are the other {int((~present).sum()) - 1} image files the "
            "recording lists; no frame can be read (raw files not converted to TIFF yet?)",
        )
    idx = np.flatnonzero(complete)
    t0, t1 = int(idx[0]), int(idx[-1]) + 1
    if not complete[t0:t1].all():
        t = t0 + int(np.flatnonzero(~complete[t0:t1])[0])
        c, z = (int(v[0]) for v in np.nonzero(~present[:, t]))
        raise RecordingError(
            folder / names[c, t, z],
            f"is missing: time point {t + 1} of {names.shape[1]} has no file here while earlier "
            "and later ones do (a gap in the frame sequence; re-copy the folder)",
        )
    if (t0, t1) == (0, len(complete)):
        return series
    warnings.warn(
        f"{folder}: {t0} time point(s) at the start and {len(complete) - t1} at the end have "
        "missing image files and are left out",
        stacklevel=3,
    )
    return replace(
        series,
        filenames=names[:, t0:t1],
        pages=series.pages[:, t0:t1],
        frame_times_s=None if series.frame_times_s is None else series.frame_times_s[t0:t1],
        cycles=series.cycles[t0:t1],
        indices=series.indices[t0:t1],
        xml_frames=None if series.xml_frames is None else series.xml_frames[t0:t1],
        extra={**series.extra, "time_points_dropped": [t0, len(complete) - t1]},
    )


# --------------------------------------------------------------------------------------------
# reading TIFF frames

_QUIET = contextvars.ContextVar("napari_calcium_quiet_tifffile", default=False)


class _QuietFilter(logging.Filter):
    """Drop tifffile's warnings about PrairieView's UIC tags / OME stubs while we read."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_QUIET.get() and record.levelno <= logging.WARNING)


_logger = logging.getLogger("tifffile")
if not any(isinstance(f, _QuietFilter) for f in _logger.filters):
    _logger.addFilter(_QuietFilter())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    token = _QUIET.set(True)
    try:
        with np.errstate(all="ignore"):  # UIC2tag ZDistance 0/0 in every PrairieView file
            yield
    finally:
        _QUIET.reset(token)


def _probe(path: Path, page: int, *, from_xml: bool) -> tuple[tuple[int, int], np.dtype, str]:
    """Frame shape, dtype and Software tag from one TIFF header (no pixel data)."""
    try:
        with _quiet(), tifffile.TiffFile(path, _multifile=False) as tif:
            n_pages = len(tif.pages)
            if page >= n_pages:
                raise RecordingError(
                    path, f"has {n_pages} page(s), the XML puts a frame on page {page + 1}"
                )
            if n_pages > 1 and not from_xml:
                raise RecordingError(
                    path,
                    f"holds {n_pages} frames; without the PrairieView .xml the order of frames "
                    "across multi-page files is unknown (put the .xml beside the files)",
                )
            tpage = tif.pages[page]
            shape, dtype = tuple(tpage.shape), tpage.dtype
            ends = [o + c for o, c in zip(tpage.dataoffsets, tpage.databytecounts, strict=False)]
            stored = sum(tpage.databytecounts) if tpage.compression == 1 else None
            software = str(tif.pages[0].software or "")
        size = path.stat().st_size
    except RecordingError:
        raise
    except FileNotFoundError:
        raise RecordingError(path, "is missing") from None
    except Exception as exc:
        raise RecordingError(
            path, f"is not a readable TIFF ({type(exc).__name__}: {exc})"
        ) from None
    whole = all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape)  # tags can hold junk
    if len(shape) != 2 or not whole or dtype is None:
        raise RecordingError(
            path, f"holds images of shape {shape}; expected 2-D single-channel frames"
        )
    if ends and max(ends) > size:
        raise RecordingError(
            path, f"is truncated: its pixel data ends at byte {max(ends)} but the file has {size}"
        )
    need = math.prod(shape) * np.dtype(dtype).itemsize
    if stored is not None and stored < need:  # uncompressed: the header's size is a lie
        raise RecordingError(
            path, f"is damaged: a {shape[0]}x{shape[1]} {dtype} frame needs {need} bytes but "
            f"its strips hold {stored}"
        )  # fmt: skip
    return shape, np.dtype(dtype), software


_TAGS = {256: "width", 257: "length", 258: "bits", 259: "compression", 273: "offsets",
         277: "spp", 279: "counts", 322: "tiles", 339: "format"}  # fmt: skip
_TYPES = {3: ("H", 2), 4: ("I", 4)}  # SHORT, LONG


def _check_frame(path: Path, shape: tuple, dtype: np.dtype, dst: np.ndarray, ref: str) -> None:
    if tuple(shape) != dst.shape or dtype != dst.dtype:
        raise RecordingError(
            path,
            f"holds a {'x'.join(map(str, shape))} {dtype} frame but the recording's first frame "
            f"({ref}) is {dst.shape[0]}x{dst.shape[1]} {dst.dtype}: frames of different sizes",
        )


def _read_fast(fh, path: Path, dst: np.ndarray, ref: str) -> bool:
    """Read page 0 of an uncompressed classic TIFF straight into ``dst``; False if unsuitable."""
    head = fh.read(8)
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        raise RecordingError(path, "is not a TIFF file (no TIFF header)")
    bo = "<" if head[:2] == b"II" else ">"
    magic, ifd = struct.unpack(bo + "HI", head[2:8])
    if magic != 42:
        return False  # BigTIFF or not a TIFF: tifffile decides
    fh.seek(ifd)
    raw = fh.read(2)
    n = struct.unpack(bo + "H", raw)[0] if len(raw) == 2 else 0
    entries = fh.read(12 * n)
    if n == 0 or len(entries) < 12 * n:
        return False
    tags: dict[str, Any] = {}
    for i in range(n):
        code, typ, count = struct.unpack_from(bo + "HHI", entries, 12 * i)
        if code not in _TAGS:
            continue
        if typ not in _TYPES or not 0 < count <= 1 << 20:
            return False
        fmt, size = _TYPES[typ]
        if count * size <= 4:
            vals = struct.unpack_from(f"{bo}{count}{fmt}", entries, 12 * i + 8)
        else:
            fh.seek(struct.unpack_from(bo + "I", entries, 12 * i + 8)[0])
            buf = fh.read(count * size)
            if len(buf) < count * size:
                return False
            vals = np.frombuffer(buf, bo + fmt).astype(np.int64)
        tags[_TAGS[code]] = vals
    if "tiles" in tags or not {"width", "length", "offsets", "counts"} <= tags.keys():
        return False
    if tags.get("compression", (1,))[0] != 1 or tags.get("spp", (1,))[0] != 1:
        return False
    shape = (int(tags["length"][0]), int(tags["width"][0]))
    kind = {1: "u", 2: "i", 3: "f"}.get(int(tags.get("format", (1,))[0]))
    bits = int(tags.get("bits", (1,))[0])
    if kind is None or bits not in (8, 16, 32, 64) or (kind == "f" and bits == 8):
        return False
    _check_frame(path, shape, np.dtype(f"{kind}{bits // 8}"), dst, ref)
    offsets = np.asarray(tags["offsets"], np.int64)
    counts = np.asarray(tags["counts"], np.int64)
    if len(offsets) != len(counts) or (offsets[1:] != offsets[:-1] + counts[:-1]).any():
        return False
    if counts.sum() < dst.nbytes:
        return False
    fh.seek(int(offsets[0]))
    got = fh.readinto(memoryview(dst).cast("B"))
    if got < dst.nbytes:
        raise RecordingError(
            path, f"is truncated: {got} of the frame's {dst.nbytes} bytes are there"
        )
    if (bo == "<") != (sys.byteorder == "little"):
        dst.byteswap(inplace=True)
    return True


def _read_frame(path: Path, page: int, dst: np.ndarray, handles: dict, ref: str) -> None:
    """Read one frame into ``dst``; any failure is a RecordingError naming ``path``."""
    try:
        if page == 0:
            with open(path, "rb") as fh:
                if _read_fast(fh, path, dst, ref):
                    return
        tif = handles.get(path)
        if tif is None:
            tif = handles[path] = tifffile.TiffFile(path, _multifile=False)
        if page >= len(tif.pages):
            raise RecordingError(
                path, f"has {len(tif.pages)} page(s); frame on page {page + 1} is missing"
            )
        tpage = tif.pages[page]
        _check_frame(path, tpage.shape, tpage.dtype, dst, ref)
        tpage.asarray(out=dst)
    except RecordingError:
        raise
    except FileNotFoundError:
        raise RecordingError(path, "is missing (was it moved or deleted after opening?)") from None
    except Exception as exc:
        raise RecordingError(
            path, f"cannot be read as a TIFF ({type(exc).__name__}: {exc})"
        ) from None


@dataclass(frozen=True)
class _Block:
    """One dask chunk: the files and pages of consecutive time points (planes innermost)."""

    folder: str
    names: tuple[str, ...]
    pages: tuple[int, ...]
    shape: tuple[int, ...]
    dtype: str
    ref: str  # the recording's first file, which set the frame size


def _read_block(block: _Block) -> np.ndarray:
    out = np.empty(block.shape, dtype=block.dtype)
    frames = out.reshape((-1, *block.shape[-2:]))
    handles: dict = {}
    try:
        with _quiet():
            for i, (name, page) in enumerate(zip(block.names, block.pages, strict=True)):
                _read_frame(Path(block.folder, name), page, frames[i], handles, block.ref)
    finally:
        for tif in handles.values():
            tif.close()
    return out


def lazy_channels(
    series: BrukerSeries,
    frame_shape: tuple[int, int],
    dtype: np.dtype,
    *,
    frames_per_chunk: int | None = None,
) -> dict[str, da.Array]:
    """One lazy dask array per channel, ``(frames, y, x)`` or ``(frames, planes, y, x)``.

    Parameters
    ----------
    series : BrukerSeries
        The frame table (files already checked with :func:`keep_present`).
    frame_shape : (int, int)
        ``(y, x)`` of every frame; dtype: their dtype.
    frames_per_chunk : int, optional
        Time points per dask chunk (one task reads all their files). Default: about
        :data:`CHUNK_BYTES` per chunk, between 1 and :data:`MAX_FRAMES_PER_CHUNK`, and at least
        4 chunks (16 frames of 512x512 uint16: 2.2x the full-read speed of one task per
        frame, 3 ms for one frame).

    Returns
    -------
    dict of str to dask.array.Array
        Channel name -> lazy movie in the files' dtype.
    """
    if frames_per_chunk is not None and (
        int(frames_per_chunk) != frames_per_chunk or frames_per_chunk < 1
    ):
        raise ParameterError(f"frames_per_chunk={frames_per_chunk!r}: must be a whole number >= 1")
    n_t, n_z = series.n_times, series.n_planes
    per_tp = n_z * int(np.prod(frame_shape)) * dtype.itemsize
    # ~CHUNK_BYTES per chunk, and at least 4 chunks so that short recordings use several threads
    auto = min(MAX_FRAMES_PER_CHUNK, CHUNK_BYTES // per_tp, -(-n_t // 4))
    step = int(frames_per_chunk or max(1, auto))
    inner = (n_z, *frame_shape) if n_z > 1 else tuple(frame_shape)
    out = {}
    for c, cname in enumerate(series.channel_names):
        names, pages = series.filenames[c], series.pages[c]
        digest = hashlib.sha1("\n".join(names.ravel()).encode())
        digest.update(pages.tobytes() + repr((str(series.folder), inner, dtype.str)).encode())
        key = f"bruker-{cname}-{digest.hexdigest()[:16]}"
        layer = {}
        for i, s in enumerate(range(0, n_t, step)):
            e = min(s + step, n_t)
            block = _Block(
                str(series.folder),
                tuple(names[s:e].ravel().tolist()),
                tuple(pages[s:e].ravel().tolist()),
                (e - s, *inner),
                dtype.str,
                str(series.filenames[0, 0, 0]),
            )
            layer[(key, i) + (0,) * len(inner)] = (_read_block, block)
        chunks = (tuple(min(step, n_t - s) for s in range(0, n_t, step)), *((d,) for d in inner))
        graph = HighLevelGraph.from_collections(key, layer, dependencies=())
        out[cname] = da.Array(graph, key, chunks, dtype=dtype)
    return out


def open_bruker(path: str | os.PathLike, *, frames_per_chunk: int | None = None) -> Recording:
    """Open a Bruker PrairieView folder lazily.

    Reads the main ``.xml`` (or, without it, the ``.env`` and the file names), one directory
    listing and one TIFF header; pixels are read when a slice is computed.

    Parameters
    ----------
    path : str or os.PathLike
        The folder, or its main ``.xml`` / ``.env``.
    frames_per_chunk : int, optional
        Time points per dask chunk (see :func:`lazy_channels`).

    Returns
    -------
    Recording
        ``channels``: channel name (``channelName`` from the XML, else ``"Ch2"``) -> dask array
        ``(frames, y, x)`` or ``(frames, planes, y, x)`` in time order, planes in z order;
        ``metadata``: see :func:`bruker_metadata`.

    Raises
    ------
    RecordingError
        No recording / several recordings / missing files or a gap in the sequence, or the first
        image file is not a readable TIFF. Problems in other files surface when they are read.
    MetadataError
        The XML or .env is not PrairieView's, malformed or cut short.

    Examples
    --------
    >>> rec = open_bruker("TSeries-01142019-1352-1365")  # doctest: +SKIP
    >>> rec.channels["Ch2"].shape, rec.metadata.frame_period_s  # doctest: +SKIP
    ((1812, 256, 256), 1.00025...)
    """
    series = keep_present(scan_bruker_folder(path))
    first = series.folder / series.filenames[0, 0, 0]
    shape, dtype, software = _probe(
        first, int(series.pages[0, 0, 0]), from_xml=series.xml is not None
    )
    metadata = bruker_metadata(series)
    if metadata.source_version is None and software.startswith("Prairie View"):
        metadata = metadata.replace(source_version=software.removeprefix("Prairie View").strip())
    lines, pixels = metadata.extra.get("lines_per_frame"), metadata.extra.get("pixels_per_line")
    if lines and pixels and series.layout != "linescan" and shape != (lines, pixels):
        warnings.warn(
            f"{first}: frames are {shape[0]}x{shape[1]} px but the metadata say {lines}x{pixels} "
            "(linesPerFrame x pixelsPerLine); the TIFF files are trusted",
            stacklevel=2,
        )
    channels = lazy_channels(series, shape, dtype, frames_per_chunk=frames_per_chunk)
    return Recording(path=series.folder, channels=channels, metadata=metadata)


def is_bruker_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a PrairieView folder (or its ``.xml``/``.env``); never raises.

    Cheap: one directory listing and a peek at the first bytes of a few ``.xml``/``.env`` files.
    A folder qualifies with a ``<PVScan>`` XML, an ``<Environment>`` .env (or PV 4
    ``<PVConfig>`` Config.cfg) or ``_CycleNNNNN_ChK_NNNNNN.ome.tif`` files.
    """
    try:
        path = Path(path)
        if path.is_file():
            return _sniff_root(path) in ("PVScan", *_ENV_ROOTS)
        if not path.is_dir():
            return False
        sniffed = 0
        with os.scandir(path) as it:
            for entry in it:
                name, low = entry.name, entry.name.lower()
                if FILENAME_RE.match(name):
                    return True
                if low.endswith((".xml", ".env", "config.cfg")) and not _SIDE.search(name):
                    sniffed += 1
                    if sniffed <= 20 and _sniff_root(path / name) in ("PVScan", *_ENV_ROOTS):
                        return True
        return False
    except Exception:  # sniffing must never raise: napari asks about any path
        return False

"""Write a movie as a Bruker PrairieView single-plane T-series folder (for demos and tests).

Real PrairieView 5.x T-series folders hold one single-page OME-TIFF per frame,
``<name>_Cycle00001_Ch<k>_<index:06d>.ome.tif``, and a main ``<name>.xml`` whose ``<PVScan>`` root
carries the acquisition state (``framePeriod``, ``micronsPerPixel``, ...) and one ``<Frame>`` per
time point with its times and file. :func:`write_prairieview` writes that layout: a reduced but
faithful subset of the XML (see the ``.xml`` files of ``shared/data/prairieview_metadata_swharden``)
that :func:`napari_calcium.open_recording` and other PrairieView readers parse like the real thing.
"""

from __future__ import annotations

import datetime as _dt
import numbers
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import tifffile

from ..._version import __version__
from ...core.chunking import iter_frame_blocks
from ...errors import (
    OperationCancelled,
    OutputExistsError,
    ParameterError,
    RecordingError,
    ShapeError,
)
from .._atomic import disk_full_error
from .._common import pixel_pair, positive_float
from .naming import parse_bruker_filename

__all__ = ["PV_VERSION", "write_prairieview"]

#: the PrairieView version whose XML layout is written (``<PVScan version=...>``)
PV_VERSION = "5.4.64.500"
#: ``absoluteTime`` of the first frame: PrairieView counts from the start of the acquisition,
#: about 1.5 s before the first frame in the real T-series files.
_START_DELAY_S = 1.539
_MAX_FRAMES = 999_999  # six-digit frame index in the file names


def _attrs(**values: Any) -> str:
    return " ".join(f"{k}={quoteattr(str(v))}" for k, v in values.items())


def _num(value: float) -> str:
    """A number as PrairieView writes it: plain decimal, no trailing ``.0`` for integers."""
    text = repr(float(value))  # shortest text that reads back as the same float
    return text[:-2] if text.endswith(".0") else text


def _pv_date(now: _dt.datetime) -> str:
    """``1/25/2019 1:18:22 PM`` (PrairieView's ``date`` attribute, no zero padding)."""
    hour = now.hour % 12 or 12
    ampm = "AM" if now.hour < 12 else "PM"
    return f"{now.month}/{now.day}/{now.year} {hour}:{now.minute:02d}:{now.second:02d} {ampm}"


def _header(*, name: str, shape: tuple[int, int], period: float, pixel, bit_depth) -> str:
    """``<PVScan>`` start, its document-level ``<PVStateShard>`` and the ``<Sequence>`` start."""
    now = _dt.datetime.now()
    lines, pixels = shape
    state = [("activeMode", "Galvo")]
    state += [("bitDepth", str(bit_depth))] if bit_depth is not None else []
    state += [("framePeriod", _num(period)), ("linesPerFrame", str(lines))]
    out = [
        '\ufeff<?xml version="1.0" encoding="utf-8"?>',
        f"<PVScan {_attrs(version=PV_VERSION, date=_pv_date(now), notes=_notes(name))}>",
        '  <SystemIDs SystemID="0000-0000-0000-0000">',
        '    <SystemID SystemID="0" Description="napari-calcium (synthetic)" />',
        "  </SystemIDs>",
        "  <PVStateShard>",
    ]
    out += [f"    <PVStateValue {_attrs(key=k, value=v)} />" for k, v in state]
    if pixel is not None:
        out.append('    <PVStateValue key="micronsPerPixel">')
        out.append(f'      <IndexedValue index="XAxis" value="{_num(pixel[1])}" />')
        out.append(f'      <IndexedValue index="YAxis" value="{_num(pixel[0])}" />')
        out.append("    </PVStateValue>")
    out += [
        '    <PVStateValue key="opticalZoom" value="1" />',
        f'    <PVStateValue key="pixelsPerLine" value="{pixels}" />',
        '    <PVStateValue key="rastersPerFrame" value="1" />',
        f'    <PVStateValue key="scanLinePeriod" value="{_num(period / lines)}" />',
        "  </PVStateShard>",
        "  <Sequence "
        + _attrs(
            type="TSeries Timed Element",
            cycle=1,
            time=now.strftime("%H:%M:%S.%f") + "0",
            xYStageGridDefined="False",
        )
        + ">",
        "    <PVStateShard />",
    ]
    return "\n".join(out) + "\n"


def _notes(name: str) -> str:
    return f"synthetic recording {name} written by napari-calcium {__version__}"


def _frame(index: int, period: float, channel: int, filename: str) -> str:
    rel = (index - 1) * period
    return (
        f"    <Frame {_attrs(relativeTime=_num(rel), absoluteTime=_num(rel + _START_DELAY_S))} "
        f'index="{index}" parameterSet="CurrentSettings">\n'
        f"      <File {_attrs(channel=channel, channelName=f'Ch{channel}', filename=filename)} />\n"
        '      <ExtraParameters lastGoodFrame="0" />\n'
        "      <PVStateShard>\n"
        f'        <PVStateValue key="framePeriod" value="{_num(period)}" />\n'
        "      </PVStateShard>\n"
        "    </Frame>\n"
    )


def _as_uint16(block: np.ndarray, start: int) -> np.ndarray:
    """A block as uint16, or ParameterError naming the frames whose values do not fit."""
    if block.dtype == np.uint16:
        return block
    kind = block.dtype.kind
    if kind == "b":
        return block.astype(np.uint16)
    if kind == "f" and not np.isfinite(block).all():
        bad = start + int(np.flatnonzero(~np.isfinite(block).reshape(len(block), -1).all(1))[0])
        raise ParameterError(f"movie frame {bad} holds NaN or infinite values; uint16 cannot")
    values = np.rint(block) if kind == "f" else block
    flat = values.reshape(len(values), -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    bad = np.flatnonzero((lo < 0) | (hi > 65535))
    if bad.size:
        i = int(bad[0])
        raise ParameterError(
            f"movie values must fit uint16 (0 to 65535), but frame {start + i} holds "
            f"{lo[i]:g} to {hi[i]:g}; rescale or clip the movie first (PrairieView stores "
            "unsigned 16-bit frames)"
        )
    return values.astype(np.uint16)


def _check_args(movie: Any, frame_rate_hz: Any, channel: Any, name: str) -> None:
    if not hasattr(movie, "shape") or not hasattr(movie, "dtype"):
        raise ShapeError(f"movie must be an array, got {type(movie).__name__}")
    shape = tuple(int(s) for s in movie.shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ShapeError(
            f"movie must be a (frames, y, x) single-plane movie with no empty axis, got shape "
            f"{shape}"
        )
    if np.dtype(movie.dtype).kind not in "buif":
        raise ShapeError(f"movie has dtype {movie.dtype}; expected integers or floats")
    if shape[0] > _MAX_FRAMES:
        raise ParameterError(
            f"movie has {shape[0]} frames; a PrairieView T-series numbers at most {_MAX_FRAMES}"
        )
    if frame_rate_hz is None:
        raise ParameterError("frame_rate_hz is required (PrairieView stores the frame period)")
    positive_float(frame_rate_hz, "frame_rate_hz")
    ok = isinstance(channel, numbers.Integral) and not isinstance(channel, bool)
    if not ok or not 1 <= int(channel) <= 99:
        raise ParameterError(f"channel must be a PrairieView channel number 1-99, got {channel!r}")
    parsed = parse_bruker_filename(f"{name}_Cycle00001_Ch{channel}_000001.ome.tif")
    if not name or "/" in name or "\\" in name or parsed is None or parsed["base"] != name:
        raise ParameterError(
            f"name={name!r}: not usable as a PrairieView recording name (no path separators, "
            "no '_CycleNNNNN_' inside, not empty); e.g. 'TSeries-demo-001'"
        )


def _replace_folder(tmp: Path, final: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` folder to ``final`` (setting an older PrairieView one aside)."""
    from .stack import is_bruker_folder

    old = None
    if final.exists() or final.is_symlink():
        if not overwrite:
            raise OutputExistsError(final)  # appeared while we were writing
        if not final.is_dir() or final.is_symlink():
            raise RecordingError(final, "exists and is not a folder; remove it or choose another")
        if any(final.iterdir()) and not is_bruker_folder(final):
            raise RecordingError(
                final,
                "exists and is not a PrairieView folder; overwrite only replaces PrairieView "
                "folders: remove it yourself or choose another",
            )
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.replace(final, old / final.name)
    try:
        os.replace(tmp, final)
    except BaseException:
        if old is not None:  # put the older recording back: a failed write never loses it
            os.replace(old / final.name, final)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_prairieview(
    folder: str | os.PathLike,
    movie: Any,
    *,
    frame_rate_hz: float,
    pixel_size_um: float | tuple[float, float] | None = None,
    channel: int = 2,
    name: str | None = None,
    bit_depth: int | None = None,
    overwrite: bool = False,
    progress: Callable | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Write a movie as a PrairieView 5.x single-plane T-series folder.

    The folder holds one single-page uint16 OME-TIFF per frame,
    ``<name>_Cycle00001_Ch<channel>_<index:06d>.ome.tif`` (index from 000001), and ``<name>.xml``:
    a ``<PVScan>`` document with ``framePeriod``, ``linesPerFrame``, ``pixelsPerLine``,
    ``micronsPerPixel`` and one ``<Frame>`` (``relativeTime``, ``absoluteTime``, ``<File>``) per
    frame, as PrairieView writes them. The folder is built under a hidden temporary name beside
    it and renamed when complete, so a failed or cancelled write leaves nothing behind.

    Parameters
    ----------
    folder : str or os.PathLike
        The recording folder to create, e.g. ``"data/TSeries-demo-001"``. Its parent must exist.
    movie : array_like, shape (frames, y, x)
        numpy, memmap or dask array, read block by block. uint16 is written as is; other integer,
        bool and float data are rounded to the nearest integer and must lie in 0-65535 (nothing
        is rescaled).
    frame_rate_hz : float
        Frames per second; the XML's ``framePeriod`` is ``1 / frame_rate_hz`` s and frame ``i``
        (0-based) gets ``relativeTime = i / frame_rate_hz``.
    pixel_size_um : float or (float, float), optional
        Pixel size (y, x) in µm (``micronsPerPixel``); None leaves it out.
    channel : int
        PrairieView channel number (``Ch2``, PrairieView's usual green channel, by default).
    name : str, optional
        Recording name, used for the ``.xml`` and the image files. Default: the folder's name
        (PrairieView names folder and files alike).
    bit_depth : int, optional
        The digitizer's bit depth (``bitDepth``, 13 on many PrairieView rigs), 1-16; readers
        use it for the display range. None leaves it out (napari then scales to the data).
    overwrite : bool
        Replace an existing PrairieView folder (or an empty one). Without it an existing
        ``folder`` raises :class:`~napari_calcium.errors.OutputExistsError` before anything is
        written; a folder that is not a PrairieView recording is never replaced.
    progress, should_stop : callable, optional
        tqdm-like factory and cancellation callback (see
        :func:`napari_calcium.core.chunking.iter_frame_blocks`); ``should_stop`` is asked before
        every frame.

    Returns
    -------
    pathlib.Path
        The written folder; open it with :func:`napari_calcium.open_recording`.

    Raises
    ------
    ShapeError
        ``movie`` is not a non-empty 3-D numeric array.
    ParameterError
        ``frame_rate_hz`` or ``pixel_size_um`` is not a positive number, ``channel`` or ``name``
        is not usable, or values do not fit uint16 (negative, above 65535, NaN).
    OutputExistsError
        ``folder`` exists and ``overwrite`` is False.
    RecordingError
        The parent folder does not exist or is not writable, or ``folder`` is not a
        PrairieView folder that ``overwrite`` may replace.
    OperationCancelled
        ``should_stop`` returned True (nothing is left on disk).

    Notes
    -----
    The TIFF ``Software`` tag and the XML's ``notes`` and ``SystemID`` say the recording is
    synthetic, written by napari-calcium; ``<PVScan version>`` is :data:`PV_VERSION`, the layout
    written. Frames are uncompressed and contiguous, as PrairieView writes them.

    Examples
    --------
    >>> import numpy as np, napari_calcium as nc
    >>> movie = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    >>> path = write_prairieview("TSeries-demo-001", movie, frame_rate_hz=30.0)  # doctest: +SKIP
    >>> nc.open_recording(path).metadata.frame_rate_hz  # doctest: +SKIP
    30.0
    """
    final = Path(folder)
    name = final.name if name is None else name
    _check_args(movie, frame_rate_hz, channel, name)
    ok = isinstance(bit_depth, numbers.Integral) and not isinstance(bit_depth, bool)
    if bit_depth is not None and not (ok and 1 <= int(bit_depth) <= 16):
        raise ParameterError(f"bit_depth must be a whole number 1-16 or None, got {bit_depth!r}")
    rate = positive_float(frame_rate_hz, "frame_rate_hz")
    pixel = pixel_pair(pixel_size_um)
    if (final.exists() or final.is_symlink()) and not overwrite:
        raise OutputExistsError(final)
    parent = final.parent
    if not parent.is_dir():
        raise RecordingError(parent, "output folder does not exist; create it first")
    # uint16 pixels, and about 1 KiB of TIFF header and XML per frame
    needed = int(movie.shape[0]) * (2 * int(movie.shape[1]) * int(movie.shape[2]) + 1024)
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
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; outputs get the usual permissions
        _write_into(tmp, movie, name=name, period=1.0 / rate, pixel=pixel, channel=int(channel),
                    bit_depth=bit_depth, progress=progress, should_stop=should_stop)  # fmt: skip
        _replace_folder(tmp, final, overwrite)
    except OSError as exc:  # RecordingError included: _write_into's, naming a file in tmp
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


def _write_into(
    tmp: Path, movie, *, name, period, pixel, channel, bit_depth, progress, should_stop
) -> None:
    shape = (int(movie.shape[1]), int(movie.shape[2]))
    software = f"napari-calcium {__version__} (synthetic PrairieView T-series)"
    ome: dict[str, Any] = {"axes": "YX"}
    if pixel is not None:
        ome.update(PhysicalSizeY=pixel[0], PhysicalSizeYUnit="µm")
        ome.update(PhysicalSizeX=pixel[1], PhysicalSizeXUnit="µm")
    try:
        with open(tmp / f"{name}.xml", "w", encoding="utf-8", newline="\n") as xml:
            xml.write(
                _header(name=name, shape=shape, period=period, pixel=pixel, bit_depth=bit_depth)
            )
            blocks = iter_frame_blocks(
                movie, progress=progress, should_stop=should_stop, desc="write PrairieView"
            )
            for block, array in blocks:
                frames = _as_uint16(np.asarray(array), block.start)
                for i, frame in enumerate(frames, start=block.start + 1):
                    if i > block.start + 1 and should_stop is not None and should_stop():
                        raise OperationCancelled(
                            f"operation cancelled (write PrairieView) after {i - 1} of "
                            f"{movie.shape[0]} frames"
                        )  # between blocks, iter_frame_blocks asks
                    filename = f"{name}_Cycle00001_Ch{channel}_{i:06d}.ome.tif"
                    tifffile.imwrite(
                        tmp / filename, frame, photometric="minisblack", software=software,
                        metadata=ome, ome=True,
                    )  # fmt: skip
                    xml.write(_frame(i, period, channel, filename))
            xml.write("  </Sequence>\n</PVScan>\n")
    except OSError as exc:
        if isinstance(exc, RecordingError):
            raise
        where = Path(exc.filename) if getattr(exc, "filename", None) else tmp
        raise RecordingError(where, f"cannot write ({exc.strerror or exc})") from exc

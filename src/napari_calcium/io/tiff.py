"""TIFF stacks through tifffile: lazy reading with real metadata, and (split) writing.

Reading opens the header and the metadata only; pixels are read when a slice is computed.
Uncompressed contiguous data (ImageJ hyperstacks, tifffile/napari-calcium output) is read straight
from the file at its offset; anything else (compressed, pages scattered between IFDs, ScanImage)
page by page through a cached :class:`tifffile.TiffFile`. No ``zarr`` is needed.

tifffile's series axes map to napari-calcium's layout: ``C`` (or ``S`` samples) splits into
channels, ``Z`` becomes planes, ``T`` and every other sequence axis become frames, so each
channel is ``(frames, y, x)`` or ``(frames, planes, y, x)``. A stack with ``Z`` but no time axis is
read as frames, because ImageJ saves plain stacks as "slices". Metadata parsing (ImageJ, OME,
ScanImage, resolution tags) lives in :mod:`napari_calcium.io._tiff_metadata`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..core.chunking import iter_frame_blocks
from ..errors import ParameterError, RecordingError
from ._atomic import atomic_output, check_target, disk_full_error, remove_stale_partials
from ._common import (
    MappedArray,
    TiffPages,
    check_movie,
    lazy_array,
    pixel_pair,
    positive_float,
    tifffile_warnings,
    token,
)
from ._tiff_metadata import channels_as_frames, scanimage_layout, tiff_metadata
from .metadata import Recording, RecordingMetadata

__all__ = ["load_images", "open_tiff", "open_tiff_folder", "save_images", "write_tiff_stack"]

TIFF_SUFFIXES = (".tif", ".tiff")
#: CalSciPy's file name when save_images is given a folder
DEFAULT_NAME = "images"
# tifffile log messages that mean the file is cut short or damaged (others are harmless notes)
_FATAL = (
    "invalid page offset", "corrupted", "circular reference", "suspicious number",
    "invalid value offset", "failed to read", "out of range", "truncated",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------------------------


def _check_damage(path: Path, messages: list[str]) -> None:
    for message in messages:
        if any(pattern in message.lower() for pattern in _FATAL):
            raise RecordingError(path, f"truncated or damaged TIFF ({message[:200]})")


def _check_extent(path: Path, tif: tifffile.TiffFile, series: Any, n_pages: int) -> None:
    """The pixel data of the first and last page (or the contiguous block) lies inside the file."""
    size = tif.filehandle.size
    if series.dataoffset is not None:
        end = series.dataoffset + series.nbytes
        if end > size:
            raise RecordingError(path, f"truncated: pixel data ends at byte {end}, file has {size}")
        return
    for k in {0, n_pages - 1}:
        try:
            page = series[k]
        except (IndexError, ValueError, KeyError) as exc:
            raise RecordingError(
                path, f"truncated or damaged: page {k} of {n_pages} is missing ({exc})"
            ) from exc
        if page is None:
            raise RecordingError(path, f"page {k} of {n_pages} is stored in another file")
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False) if c]
        if ends and max(ends) > size:
            raise RecordingError(
                path, f"truncated: page {k} needs bytes up to {max(ends)}, file has {size}"
            )


def _describe(path: Path, tif: tifffile.TiffFile, kwargs: dict, messages: list) -> dict | None:
    """Layout, lazy source and metadata of the first series; None to retry without OME."""
    if len(tif.pages) == 0:
        raise RecordingError(path, "contains no images (zero pages)")
    series = tif.series[0] if tif.series else None
    if series is None:
        raise RecordingError(path, "contains no image series tifffile can read")
    in_other_files = any(p is None for p in getattr(series, "_pages", ()))
    if kwargs.get("is_ome") is not False and tif.is_ome and in_other_files:
        return None  # the OME-XML describes pages in other files: read this file's pages
    _check_damage(path, messages)
    keyframe = series.keyframe
    page_shape, page_axes = tuple(keyframe.shape), str(keyframe.axes)
    shape, axes = tuple(series.shape), str(series.axes)
    n = len(page_shape)
    if "Y" not in page_axes or "X" not in page_axes or not page_shape or min(page_shape) < 1:
        raise RecordingError(path, f"holds no image data (page shape {page_shape})")
    if shape[len(shape) - n :] != page_shape or not axes.endswith(page_axes):
        raise RecordingError(path, f"unsupported TIFF layout: series {axes} {shape}")
    lead_shape, lead_axes = shape[:-n] or (1,), axes[:-n] or "I"
    n_pages = math.prod(lead_shape)
    if n_pages != len(series):
        raise RecordingError(path, f"series shape {shape} does not match its {len(series)} pages")
    _check_extent(path, tif, series, n_pages)
    _check_damage(path, messages)
    dropped = 0
    if series.kind == "scanimage":  # tifffile's ScanImage axes mix volumes and slices
        layout = scanimage_layout(tif.scanimage_metadata, n_pages, lead_shape, lead_axes)
        lead_shape, lead_axes, dropped = layout
    meta = tiff_metadata(tif, series, lead_axes + page_axes, page_shape)
    meta["extra"].update({"scanimage_pages_ignored": dropped} if dropped else {})
    full = lead_shape + page_shape
    if series.dataoffset is not None and keyframe.is_memmappable:
        dtype = np.dtype(tif.byteorder + series.dtype.char)
        source: Any = MappedArray(path, dtype, full, series.dataoffset)
    else:
        source = TiffPages(path, full, series.dtype, len(lead_shape), kwargs)
    return {"source": source, "axes": lead_axes + page_axes, "meta": meta}


def _arrange(path: Path, movie: Any, axes: str) -> tuple[list[Any], int]:
    """Series axes -> channel list of ``(frames, [planes,] y, x)`` arrays and the plane count."""
    sizes = dict(zip(axes, movie.shape, strict=True))
    chan = [a for a in "CS" if sizes.get(a, 1) > 1]
    if len(chan) > 1:
        raise RecordingError(path, "has both channels (C) and colour samples (S); not supported")
    # only real operations: on a plain (frames, y, x) stack dask then fuses a later slice into
    # the read, so movie[k] reads frame k alone
    drop = tuple(i for i, a in enumerate(axes) if sizes[a] == 1 and a not in "YX")
    movie = movie.squeeze(axis=drop) if drop else movie
    axes = "".join(a for i, a in enumerate(axes) if i not in drop)
    frame_axes = [a for a in axes if a not in "YXCSZ"]
    plane = "Z" if "Z" in axes and frame_axes else ""
    if "Z" in axes and not plane:
        frame_axes = [a for a in axes if a not in "YXCS"]  # a stack of "slices": frames
    order = [axes.index(a) for a in frame_axes + list(plane) + chan + ["Y", "X"]]
    movie = movie.transpose(order) if order != sorted(order) else movie
    if len(frame_axes) != 1:
        n_frames = math.prod(movie.shape[: len(frame_axes)])
        movie = movie.reshape((n_frames, *movie.shape[len(frame_axes) :]))
    n_planes = int(movie.shape[1]) if plane else 1
    if not chan:
        return [movie], n_planes
    return [movie[..., c, :, :] for c in range(movie.shape[-3])], n_planes


def open_tiff(path: str | os.PathLike) -> Recording:
    """Open a TIFF stack lazily: multipage, BigTIFF, ImageJ, OME or ScanImage.

    Parameters
    ----------
    path : str or os.PathLike
        One TIFF file. Only its first image series is read (for OME files: this file's pages).

    Returns
    -------
    Recording
        ``channels``: name -> dask array ``(frames, y, x)`` or ``(frames, planes, y, x)`` in the
        stored dtype, chunked by whole frames (about 16 MiB). Channel names come from OME
        ``Channel@Name`` or ScanImage ``channelName``, else ``"Ch1"``, ``"Ch2"``, ...
        ``metadata``: see ``docs/io.md`` for which tag gives which field; unknown values are None.

    Raises
    ------
    RecordingError
        Missing file, not a TIFF, zero pages, truncated or damaged (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise RecordingError(path, "is a folder; use open_tiff_folder" if path.is_dir() else
                             "no such file")  # fmt: skip
    kwargs: dict[str, Any] = {"_multifile": False}
    info = _read_header(path, kwargs)
    if info is None:
        kwargs["is_ome"] = False
        info = _read_header(path, kwargs)
    assert info is not None
    meta = info["meta"]
    stat = path.stat()
    name = "tiff-" + token(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    source = lazy_array(info["source"], name)
    axes = channels_as_frames(info["axes"], source.shape, meta)
    movies, n_planes = _arrange(path, source, axes)
    names = meta.pop("channel_names", None) or ()
    if len(names) != len(movies) or len(set(names)) != len(names):
        names = tuple(f"Ch{i + 1}" for i in range(len(movies)))
    n_frames = int(movies[0].shape[0])
    period = meta.get("frame_period_s")
    stamps = meta.pop("timestamps_s", None)
    if stamps is None or len(stamps) != n_frames:
        stamps = None if period is None else np.arange(n_frames) * period
    if n_planes == 1:
        if meta.get("z_step_um") is not None:
            meta["extra"]["z_spacing_um"] = meta["z_step_um"]
        meta["z_step_um"] = None
    metadata = RecordingMetadata(
        timestamps_s=stamps, n_planes=n_planes, channel_names=tuple(names), **meta
    )
    return Recording(path=path, channels=dict(zip(names, movies, strict=True)), metadata=metadata)


def _read_header(path: Path, kwargs: dict) -> dict | None:
    with tifffile_warnings() as messages:
        try:
            tif = tifffile.TiffFile(path, **kwargs)
        except OSError as exc:
            raise RecordingError(path, f"cannot open ({exc.strerror or exc})") from exc
        except Exception as exc:  # tifffile raises TiffFileError, struct.error, ValueError, ...
            raise RecordingError(path, f"not a readable TIFF file ({exc})") from exc
        try:
            return _describe(path, tif, kwargs, messages)
        except RecordingError:
            raise
        except Exception as exc:
            raise RecordingError(
                path, f"damaged or unsupported TIFF ({type(exc).__name__}: {exc})"
            ) from exc
        finally:
            tif.close()


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def tiff_files(folder: Path) -> list[Path]:
    """The ``.tif``/``.tiff`` files of a folder (not hidden, not recursive), in natural order."""
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise RecordingError(folder, f"cannot list the folder ({exc.strerror or exc})") from exc
    files = [
        p for p in entries
        if p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]  # fmt: skip
    return sorted(files, key=_natural_key)


def _describe_stack(rec: Recording) -> str:
    shape = "x".join(str(s) for s in rec.shape[1:])
    return f"{len(rec.channels)} channel(s) {list(rec.channels)} of {shape} {rec.movie.dtype}"


def open_tiff_folder(folder: str | os.PathLike) -> Recording:
    """Open a folder of TIFF stacks as one lazy movie, files in natural name order.

    Parameters
    ----------
    folder : str or os.PathLike
        A folder whose ``.tif``/``.tiff`` files are consecutive parts of one recording (e.g. the
        output of :func:`save_images`, or ScanImage's ``_00001.tif`` files).

    Returns
    -------
    Recording
        Each channel concatenated along frames (lazily). Metadata from the first file; a value
        the files disagree on becomes None (listed in ``extra["disagreeing"]``).
        ``extra["files"]`` and ``extra["frames_per_file"]`` record the parts.

    Raises
    ------
    RecordingError
        Not a folder, no TIFF in it, a damaged file, or a file whose channels, planes, y, x or
        dtype differ from the first (the message names that file).
    """
    import dask.array as da

    folder = Path(folder)
    if not folder.is_dir():
        raise RecordingError(folder, "not a folder")
    files = tiff_files(folder)
    if not files:
        raise RecordingError(folder, "no .tif/.tiff files in this folder")
    recs = [open_tiff(f) for f in files]
    first = recs[0]
    for file, rec in zip(files[1:], recs[1:], strict=True):
        same = rec.shape[1:] == first.shape[1:] and rec.movie.dtype == first.movie.dtype
        if not same or list(rec.channels) != list(first.channels):
            raise RecordingError(
                file, f"holds {_describe_stack(rec)} but {files[0].name} holds "
                f"{_describe_stack(first)}; every stack in the folder must have the same "
                "channels, planes, y, x and dtype"
            )  # fmt: skip
    channels = {
        name: da.concatenate([r.channels[name] for r in recs], axis=0) for name in first.channels
    }
    fields: dict[str, Any] = {}
    disagreeing = []
    for key in ("frame_period_s", "pixel_size_um", "z_step_um", "bit_depth", "source_version"):
        values = [getattr(r.metadata, key) for r in recs]
        if all(_same(v, values[0]) for v in values):
            fields[key] = values[0]
        else:
            fields[key], _ = None, disagreeing.append(key)
    n_frames = sum(r.n_frames for r in recs)
    period = fields["frame_period_s"]
    extra = dict(first.metadata.extra)
    extra.update(
        files=[f.name for f in files],
        frames_per_file=[r.n_frames for r in recs],
        file_format=first.metadata.source_format,
    )
    if disagreeing:
        extra["disagreeing"] = disagreeing
    metadata = RecordingMetadata(
        source_format="tiff-folder",
        timestamps_s=None if period is None else np.arange(n_frames) * period,
        n_planes=first.metadata.n_planes,
        channel_names=first.metadata.channel_names,
        extra=extra,
        **fields,
    )
    return Recording(path=folder, channels=channels, metadata=metadata)


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None or isinstance(a, str):
        return a == b
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-6, atol=0))


def load_images(path: str | os.PathLike, *, channel: str | int | None = None) -> np.ndarray:
    """Read a TIFF file or a folder of TIFF stacks into memory (CalSciPy's ``load_images``).

    Parameters
    ----------
    path : str or os.PathLike
        A TIFF file, or a folder whose TIFF stacks are read in natural name order as one movie.
    channel : str or int, optional
        Which channel (name or index) of a multi-channel file; needed only when there are several.

    Returns
    -------
    numpy.ndarray, shape (frames, y, x) or (frames, planes, y, x)
        In the stored dtype.

    Raises
    ------
    RecordingError
        As :func:`open_tiff` / :func:`open_tiff_folder`.
    ParameterError
        Several channels and no (or an unknown) `channel`.
    """
    path = Path(path)
    rec = open_tiff_folder(path) if path.is_dir() else open_tiff(path)
    names = list(rec.channels)
    if channel is None and len(names) > 1:
        raise ParameterError(f"{path}: has channels {names}; pass channel= to choose one")
    if channel is None:
        channel = names[0]
    if isinstance(channel, int) and -len(names) <= channel < len(names):
        channel = names[channel]
    if channel not in rec.channels:
        raise ParameterError(f"{path}: no channel {channel!r}; it has {names}")
    return np.asarray(rec.channels[channel].compute())


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

_IMAGEJ_DTYPES = {np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.float32)}


def _write_part(tmp: Path, pages: Iterator, shape: tuple, dtype: np.dtype, rate, pixel) -> None:
    """One file: ImageJ hyperstack when ImageJ can hold it, else BigTIFF with standard tags."""
    nbytes = math.prod(shape) * dtype.itemsize
    imagej = dtype in _IMAGEJ_DTYPES and nbytes <= 2**32 - 2**25  # classic TIFF < 4 GiB
    metadata: dict[str, Any] = {"axes": "TYX" if len(shape) == 3 else "TZYX"}
    if rate:
        metadata["finterval"] = 1.0 / rate
    kwargs: dict[str, Any] = {}
    if pixel is not None and imagej:  # ImageJ: pixels per µm, unit in the description
        kwargs["resolution"] = (1.0 / pixel[1], 1.0 / pixel[0])
        metadata["unit"] = "um"
    elif pixel is not None:  # baseline TIFF: pixels per centimetre
        kwargs.update(resolution=(1e4 / pixel[1], 1e4 / pixel[0]), resolutionunit="CENTIMETER")
    tifffile.imwrite(
        tmp, pages, shape=shape, dtype=dtype, imagej=imagej, bigtiff=not imagej,
        photometric="minisblack", metadata=metadata, **kwargs,
    )  # fmt: skip


def _write_files(files, bounds, movie, *, rate, pixel, overwrite, progress, should_stop) -> None:
    """Write ``movie[a:b]`` to each file; all appear at the end, or none (error or cancel)."""
    dtype = np.dtype(movie.dtype)
    existed = {f for f in files if f.exists()}
    desc = f"writing {files[0].name}" + (f" and {len(files) - 1} more" if len(files) > 1 else "")
    blocks = iter_frame_blocks(movie, progress=progress, should_stop=should_stop, desc=desc)
    frame_shape = tuple(int(s) for s in movie.shape[1:])

    def frames() -> Iterator[np.ndarray]:
        for _, block in blocks:
            yield from np.asarray(block)

    stream = frames()
    written = False
    frame_bytes = math.prod(frame_shape) * dtype.itemsize
    try:
        with contextlib.ExitStack() as stack:
            tmps = [
                stack.enter_context(
                    atomic_output(f, overwrite=overwrite, needed_bytes=(b - a) * frame_bytes)
                )
                for f, (a, b) in zip(files, bounds, strict=True)
            ]
            for final, tmp, (a, b) in zip(files, tmps, bounds, strict=True):
                pages = (
                    p
                    for f in itertools.islice(stream, b - a)
                    for p in f.reshape(-1, *frame_shape[-2:])
                )
                try:
                    _write_part(tmp, pages, (b - a, *frame_shape), dtype, rate, pixel)
                except OSError as exc:  # name this part, not the last one entered
                    full = disk_full_error(
                        exc, final, partial=tmp, needed_bytes=(b - a) * frame_bytes,
                        existing_kept=final in existed,
                    )  # fmt: skip
                    if full is None or full is exc:
                        raise
                    raise full from exc
            for _ in stream:  # finish the block iterator (closes the progress bar)
                pass
            written = True
    except BaseException:
        if written:  # a rename failed after others succeeded: take back what this call made
            for f in files:
                if f not in existed:
                    f.unlink(missing_ok=True)
        raise
    finally:
        stream.close()
        blocks.close()


def write_tiff_stack(
    path: str | os.PathLike,
    movie: Any,
    *,
    frame_rate_hz: float | None = None,
    pixel_size_um: float | tuple[float, float] | None = None,
    overwrite: bool = False,
    progress: Callable | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Write a ``(frames, y, x)`` movie to one ImageJ-compatible (Big)TIFF, block by block.

    The frame interval and pixel size go into the ImageJ metadata and resolution tags (BigTIFF:
    ``finterval`` in the tifffile JSON description and resolution in pixels/cm), so ImageJ,
    tifffile and :func:`open_tiff` read them back. The file is written under a temporary name
    and renamed when complete.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.tif`` file.
    movie : array_like
        ``(frames, y, x)`` or ``(frames, planes, y, x)`` numpy, memmap or dask array. uint8,
        uint16, int16 and float32 below 4 GiB become ImageJ hyperstacks; others BigTIFF.
    frame_rate_hz : float, optional
        Frames (volumes) per second, stored as the frame interval ``1 / frame_rate_hz``.
    pixel_size_um : float or (float, float), optional
        Pixel size (y, x) in µm.
    overwrite : bool
        Replace an existing file.
    progress, should_stop : callable, optional
        tqdm-like factory and cancellation callback (see
        :func:`napari_calcium.core.chunking.iter_frame_blocks`).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    movie = check_movie(movie, path)
    rate = positive_float(frame_rate_hz, "frame_rate_hz")
    n = int(movie.shape[0])
    _write_files(
        [Path(path)], [(0, n)], movie, rate=rate, pixel=pixel_pair(pixel_size_um),
        overwrite=overwrite, progress=progress, should_stop=should_stop,
    )  # fmt: skip
    return Path(path)


def _images_target(path: Path) -> Path:
    """CalSciPy's rule: a ``.tif``/``.tiff`` path is the file, anything else a folder."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        if not path.parent.is_dir():
            raise RecordingError(path.parent, "output folder does not exist; create it first")
        return path
    if path.exists() and not path.is_dir():
        raise RecordingError(path, "exists and is not a folder; give a .tif path or a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordingError(path, f"cannot create the folder ({exc.strerror or exc})") from exc
    return path / f"{DEFAULT_NAME}.tif"


def save_images(
    path: str | os.PathLike,
    images: Any,
    size_cap: float = 3.9,
    *,
    frame_rate_hz: float | None = None,
    pixel_size_um: float | tuple[float, float] | None = None,
    overwrite: bool = False,
    progress: Callable | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Path]:
    """Save a movie as TIFF, split into several files above `size_cap` GB (CalSciPy's).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.tif``/``.tiff`` file name, or a folder (created if needed) that receives
        ``images.tif``, as in CalSciPy.
    images : array_like, shape (frames, y, x) or (frames, planes, y, x)
        numpy, memmap or dask array; read one block at a time.
    size_cap : float
        Largest file in GB (10⁹ bytes of pixel data; TIFF headers add about 200 bytes a frame,
        and CalSciPy's default 3.9 leaves room below 4 GiB). A movie above it is split into parts
        of whole frames named like CalSciPy's, ``<stem>_00000.tif``, ``<stem>_00001.tif``, ...
        (in order; read them back with :func:`open_tiff_folder`). A movie within it is one
        ``<stem>.tif``.
    frame_rate_hz, pixel_size_um : optional
        Written into every file (see :func:`write_tiff_stack`).
    overwrite : bool
        Replace an existing output. Without it, any file of the output set (``<stem>.tif`` or
        ``<stem>_NNNNN.tif``) raises before anything is written; with it, parts left over from a
        longer earlier save are removed, so the folder holds only this movie's parts.
    progress, should_stop : callable, optional
        As in :func:`write_tiff_stack`.

    Returns
    -------
    list of pathlib.Path
        The files written, in frame order (CalSciPy returns 0).

    Raises
    ------
    OutputExistsError
        A file of the output set exists and `overwrite` is False.
    RecordingError
        A file of the output set is not a regular file (a folder, named pipe, device, or a
        link to one), with or without `overwrite`.
    ParameterError
        `size_cap` is not positive or is smaller than one frame.
    ShapeError
        `images` is not a 3-D/4-D numeric movie.

    Notes
    -----
    All parts are written to temporary files and renamed only when every part is complete, so an
    error or a cancel (``should_stop``) leaves no part of this call behind.
    """
    images = check_movie(images, path)
    rate = positive_float(frame_rate_hz, "frame_rate_hz")
    pixel = pixel_pair(pixel_size_um)
    cap = positive_float(size_cap, "size_cap (GB)") * 1e9  # type: ignore[operator]
    target = _images_target(Path(path))
    n = int(images.shape[0])
    frame_bytes = math.prod(int(s) for s in images.shape[1:]) * np.dtype(images.dtype).itemsize
    if n * frame_bytes <= cap:
        files, bounds = [target], [(0, n)]
    else:
        per = int(cap // frame_bytes)
        if per < 1:
            raise ParameterError(
                f"size_cap={size_cap} GB is smaller than one frame ({frame_bytes} bytes)"
            )
        bounds = [(a, min(a + per, n)) for a in range(0, n, per)]
        files = [
            target.with_name(f"{target.stem}_{i:05d}{target.suffix}") for i in range(len(bounds))
        ]
    part = re.compile(re.escape(target.stem) + r"_\d{5}" + re.escape(target.suffix) + "$")
    stale = sorted(p for p in target.parent.iterdir() if part.match(p.name) and p not in files)
    stale += [target] if target not in files and target.exists() else []
    for f in files + stale:
        check_target(f, overwrite=overwrite)
    # partial files of killed runs, also of parts this split no longer writes
    remove_stale_partials(target.parent, lambda name: name == target.name or bool(part.match(name)))
    _write_files(
        files, bounds, images, rate=rate, pixel=pixel, overwrite=overwrite, progress=progress,
        should_stop=should_stop,
    )  # fmt: skip
    for old in stale:
        old.unlink(missing_ok=True)
    return files

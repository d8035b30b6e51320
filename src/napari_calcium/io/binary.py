"""Raw binary movies: CalSciPy's ``.bin`` + ``.json`` (suite2p's ``data.bin`` + ``ops.npy``:
:mod:`.suite2p_binary`).

A binary movie is the pixels of every frame in C order, little-endian, with nothing else in the
file; its shape and dtype live beside it. Opening maps the file lazily (nothing is read until a
slice is computed); writing goes block by block into a temporary file renamed when complete.

The ``.json`` sidecar is CalSciPy's, ``{"frames": 400, "y": 256, "x": 256, "dtype": "uint16"}``.
napari-calcium adds keys only when they are known: ``"planes"`` (4-D movies), ``"frame_rate_hz"``
and ``"pixel_size_um"`` (``[y, x]``). A sidecar without them is exactly CalSciPy's; CalSciPy's
own loader rejects sidecars that carry them.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.chunking import iter_frame_blocks
from ..errors import (
    MetadataError,
    ParameterError,
    RecordingError,
    ShapeError,
)
from ._atomic import atomic_output, check_target, require_regular_file
from ._common import (
    MappedArray,
    check_movie,
    finite,
    lazy_array,
    pixel_pair,
    positive_float,
    token,
)
from ._serial import read_json
from .metadata import Recording, RecordingMetadata

__all__ = ["load_binary", "open_binary", "save_binary", "write_binary_pair"]

#: CalSciPy's file name when a folder is given
DEFAULT_NAME = "binary_video"
_SHAPE_KEYS = ("frames", "y", "x")


def _positive_int(value: Any, what: str, where: Path) -> int | None:
    """An integer > 0; None for missing (absent, None or -1); MetadataError otherwise."""
    if value is None or (isinstance(value, numbers.Integral) and value == -1):
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not finite(value) or not float(value).is_integer() or value <= 0:
        raise MetadataError(where, f"{what} must be a positive integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# CalSciPy .bin + .json
# --------------------------------------------------------------------------------------------


def _pair(path: Path) -> tuple[Path, Path]:
    """The (``.bin``, ``.json``) a path names: a folder, either file, or their common stem."""
    if path.is_dir():
        default = path / f"{DEFAULT_NAME}.bin"
        if default.is_file():
            return default, default.with_suffix(".json")
        bins = sorted(p for p in path.glob("*.bin") if p.is_file() and not p.name.startswith("."))
        paired = [b for b in bins if b.with_suffix(".json").is_file()]
        if len(paired) == 1 or (len(bins) == 1 and not paired):
            chosen = paired[0] if paired else bins[0]
            return chosen, chosen.with_suffix(".json")
        if not bins:
            raise RecordingError(path, "no .bin file in this folder")
        names = ", ".join(b.name for b in (paired or bins))
        raise RecordingError(path, f"several binary movies in this folder ({names}); open one")
    if path.suffix.lower() in (".bin", ".json"):
        return path.with_suffix(".bin"), path.with_suffix(".json")
    if path.with_suffix(".bin").is_file():  # CalSciPy: the stem without extension
        return path.with_suffix(".bin"), path.with_suffix(".json")
    raise RecordingError(path, "no such file or folder")


def _numeric_dtype(value: Any, where: Path) -> np.dtype:
    dtype = None
    if isinstance(value, str):
        try:
            dtype = np.dtype(value)
        except (TypeError, ValueError, SyntaxError):
            dtype = None
    if dtype is None or dtype.kind not in "biufc":
        raise MetadataError(
            where, f"unknown dtype {value!r}; expected a numeric numpy dtype name such as 'uint16'"
        )
    return dtype if dtype.byteorder in ">|" else dtype.newbyteorder("<")


def _read_json(path: Path) -> dict:
    """The ``.json`` sidecar: UTF-8 with or without a byte-order mark (as Windows editors save
    it), only from a regular file (a named pipe or a device is refused, never waited on)."""
    data = read_json(path, "binary movie's metadata", error=MetadataError, max_bytes=10_000_000)
    if not isinstance(data, dict):
        raise MetadataError(path, "expected a JSON object with frames, y, x and dtype")
    return data


def _fill_in(meta: dict, missing_shape: Any, dtype: Any) -> None:
    """Arguments fill what the sidecar lacks (CalSciPy's ``missing_metadata``)."""
    if missing_shape is not None:
        if isinstance(missing_shape, (str, bytes)) or len(missing_shape) not in (3, 4):
            raise ParameterError(
                "missing_shape must be (frames, y, x) or (frames, planes, y, x) with at most "
                f"one None, got {missing_shape!r}"
            )
        names = ("frames", "planes", "y", "x") if len(missing_shape) == 4 else _SHAPE_KEYS
        for key, value in zip(names, missing_shape, strict=True):
            if meta.get(key) is None:
                meta[key] = value
    if dtype is not None and meta.get("dtype") is None:
        try:
            meta["dtype"] = np.dtype(dtype).name
        except TypeError as exc:
            raise ParameterError(f"dtype={dtype!r} is not a numpy dtype") from exc
    shape_list = meta.get("shape")
    if isinstance(shape_list, list) and not any(k in meta for k in _SHAPE_KEYS):
        keys = ("frames", "planes", "y", "x") if len(shape_list) == 4 else _SHAPE_KEYS
        if len(shape_list) in (3, 4):
            meta.update(zip(keys, shape_list, strict=True))


def _layout(
    bin_path: Path, json_path: Path, missing_shape: Any, dtype: Any
) -> tuple[tuple[int, ...], np.dtype, dict, Path]:
    """Shape, little-endian dtype, sidecar dict and the file the metadata came from.

    One missing dimension of frames/y/x is inferred from the ``.bin`` size, as CalSciPy does.
    """
    if not bin_path.is_file():
        if bin_path.exists():  # a named pipe, a device, a folder: refused by name
            require_regular_file(bin_path, "binary movie (.bin)")
        raise RecordingError(bin_path, "no such file")
    has_json = os.path.lexists(json_path)
    meta = _read_json(json_path) if has_json else {}
    _fill_in(meta, missing_shape, dtype)
    where = json_path if has_json else bin_path
    if not has_json and not meta:
        raise MetadataError(
            json_path,
            "metadata file not found; pass missing_shape=(frames, y, x) (one may be None) and "
            "dtype= to read the .bin without it",
        )
    if meta.get("dtype") is None:
        raise MetadataError(where, "no dtype: the metadata must say the dtype (e.g. 'uint16')")
    file_dtype = _numeric_dtype(meta["dtype"], where)
    dims = {key: _positive_int(meta.get(key), key, where) for key in _SHAPE_KEYS}
    planes = _positive_int(meta.get("planes", 1), "planes", where) or 1
    missing = [key for key, value in dims.items() if value is None]
    size = bin_path.stat().st_size
    if len(missing) > 1:
        raise MetadataError(
            where, f"{' and '.join(missing)} are unknown; at least two of frames, y, x are needed"
        )
    if missing:
        per = math.prod(v for v in dims.values() if v is not None) * planes * file_dtype.itemsize
        if size == 0 or size % per:
            raise RecordingError(
                bin_path, f"{bin_path.name} has {size} bytes, not a whole number of "
                f"{missing[0]} of {per} bytes for the shape in {where.name}"
            )  # fmt: skip
        dims[missing[0]] = size // per
        meta["inferred"] = missing[0]
    shape = (dims["frames"], *((planes,) if planes > 1 else ()), dims["y"], dims["x"])
    expected = math.prod(shape) * file_dtype.itemsize
    if expected != size:
        desc = "x".join(str(s) for s in shape)
        raise RecordingError(
            bin_path, f"{bin_path.name} has {size} bytes but {where.name} describes {desc} "
            f"{file_dtype.name} = {expected} bytes; the files do not belong together or the "
            ".bin is truncated"
        )  # fmt: skip
    return shape, file_dtype, meta, where


def load_binary(
    path: str | os.PathLike,
    mapped: bool = False,
    mode: str = "r",
    *,
    missing_shape: Sequence[int | None] | None = None,
    dtype: Any = None,
    missing_metadata: Mapping[str, Any] | None = None,
) -> np.ndarray | np.memmap:
    """Load a binary movie into memory or memory-mapped (CalSciPy's ``load_binary``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.bin``, its ``.json``, their common stem, or their folder (CalSciPy's default name
        ``binary_video``, else the folder's only ``.bin``).
    mapped : bool
        Return a ``numpy.memmap`` instead of reading the whole file.
    mode : {"r", "r+", "c"}
        Memory-map mode when `mapped`; read-only by default (CalSciPy's default is ``"r+"``).
    missing_shape : (frames, y, x), optional
        Shape where the ``.json`` is missing or lacks it; one entry may be None (inferred from the
        file size). ``(frames, planes, y, x)`` for volumes.
    dtype : numpy dtype-like, optional
        dtype where the ``.json`` is missing or lacks it.
    missing_metadata : mapping, optional
        CalSciPy's spelling of the two above: ``{"frames": ..., "y": ..., "x": ..., "dtype": ...}``.

    Returns
    -------
    numpy.ndarray or numpy.memmap, shape (frames, y, x) or (frames, planes, y, x)
        The movie in its stored dtype.

    Raises
    ------
    RecordingError
        The files are missing, or the ``.bin`` size disagrees with the shape (both files named).
    MetadataError
        The ``.json`` is unreadable, names an unknown dtype, has non-positive sizes, or lacks
        more than one of frames/y/x.

    Examples
    --------
    >>> movie = load_binary("session1/binary_video.bin", mapped=True)  # doctest: +SKIP
    """
    if missing_metadata is not None:
        mm = dict(missing_metadata)
        missing_shape = missing_shape or (mm.get("frames"), mm.get("y"), mm.get("x"))
        dtype = dtype or mm.get("dtype")
    bin_path, json_path = _pair(Path(path))
    shape, file_dtype, _, _ = _layout(bin_path, json_path, missing_shape, dtype)
    if mapped:
        if mode not in ("r", "r+", "c"):
            raise ParameterError(f"mode must be 'r', 'r+' or 'c', got {mode!r}")
        return np.memmap(bin_path, dtype=file_dtype, mode=mode, shape=shape)
    try:
        data = np.fromfile(bin_path, dtype=file_dtype)
    except (OSError, ValueError) as exc:
        raise RecordingError(bin_path, f"cannot read the file ({exc})") from exc
    return data.reshape(shape).astype(file_dtype.newbyteorder("="), copy=False)


def open_binary(
    path: str | os.PathLike,
    *,
    missing_shape: Sequence[int | None] | None = None,
    dtype: Any = None,
) -> Recording:
    """Open a ``.bin`` + ``.json`` movie lazily: no pixel is read until a slice is computed.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.bin``, the ``.json``, their stem, or their folder (see :func:`load_binary`).
    missing_shape, dtype : optional
        As in :func:`load_binary`, for a ``.bin`` whose ``.json`` is missing or incomplete.

    Returns
    -------
    Recording
        One channel ``"Ch1"``: a dask array ``(frames, y, x)`` or ``(frames, planes, y, x)`` in
        the stored dtype, chunked by whole frames (about 16 MiB a chunk). ``frame_period_s``,
        ``pixel_size_um``, ``z_step_um`` and ``bit_depth`` come from the ``.json`` when it has
        them (:func:`save_binary` writes the first two), else they are None.

    Raises
    ------
    RecordingError, MetadataError
        As :func:`load_binary`; also for a frame rate or pixel size that is not a positive number.
    """
    bin_path, json_path = _pair(Path(path))
    shape, file_dtype, meta, where = _layout(bin_path, json_path, missing_shape, dtype)
    rate = positive_float(meta.get("frame_rate_hz"), "frame_rate_hz", where)
    period = positive_float(meta.get("frame_period_s"), "frame_period_s", where)
    period = period or (1.0 / rate if rate else None)
    known = {"frames", "planes", "y", "x", "dtype", "shape", "frame_rate_hz", "frame_period_s"}
    known |= {"pixel_size_um", "z_step_um", "bit_depth"}
    extra = {k: v for k, v in meta.items() if k not in known}
    extra.update(bin_file=bin_path.name, json_file=json_path.name, dtype=file_dtype.name)
    bit_depth = _positive_int(meta.get("bit_depth"), "bit_depth", where)
    if bit_depth is not None and bit_depth > 64:  # napari's contrast limits are 2**bit_depth
        raise MetadataError(where, f"bit_depth must be 1..64, got {bit_depth}")
    metadata = RecordingMetadata(
        source_format="binary",
        frame_period_s=period,
        timestamps_s=None if period is None else np.arange(shape[0]) * period,
        pixel_size_um=pixel_pair(meta.get("pixel_size_um"), where),
        z_step_um=positive_float(meta.get("z_step_um"), "z_step_um", where),
        n_planes=shape[1] if len(shape) == 4 else 1,
        channel_names=("Ch1",),
        bit_depth=bit_depth,
        extra=extra,
    )
    name = "binary-" + token(str(bin_path.resolve()), bin_path.stat().st_mtime_ns, shape)
    movie = lazy_array(MappedArray(bin_path, file_dtype, shape), name)
    return Recording(path=bin_path, channels={"Ch1": movie}, metadata=metadata)


def _output_pair(path: Path) -> tuple[Path, Path]:
    """CalSciPy's rule: a ``.bin``/``.json`` path names the files, anything else a folder."""
    if path.suffix.lower() in (".bin", ".json"):
        return path.with_suffix(".bin"), path.with_suffix(".json")
    if path.exists() and not path.is_dir():
        raise RecordingError(path, "exists and is not a folder; give a .bin path or a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordingError(path, f"cannot create the folder ({exc.strerror or exc})") from exc
    stem = path / DEFAULT_NAME
    return stem.with_suffix(".bin"), stem.with_suffix(".json")


def save_binary(
    path: str | os.PathLike,
    images: Any,
    *,
    frame_rate_hz: float | None = None,
    pixel_size_um: float | tuple[float, float] | None = None,
    overwrite: bool = False,
    progress: Callable | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Write a movie as ``.bin`` + ``.json`` (CalSciPy's ``save_binary``), block by block.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.bin`` (or ``.json``) path names both files; any other path is a folder (created if
        needed) that receives ``binary_video.bin`` and ``binary_video.json``, as in CalSciPy.
    images : array_like, shape (frames, y, x) or (frames, planes, y, x)
        numpy, memmap or dask array of an integer or float dtype; read one block at a time.
    frame_rate_hz : float, optional
        Frames (volumes) per second, stored as ``"frame_rate_hz"`` in the ``.json``.
    pixel_size_um : float or (float, float), optional
        Pixel size (y, x) in µm, stored as ``"pixel_size_um"``.
    overwrite : bool
        Replace existing files. Without it, an existing ``.bin`` or ``.json`` raises before
        anything is written.
    progress : callable or bool, optional
        tqdm-like factory (see :func:`napari_calcium.core.chunking.iter_frame_blocks`).
    should_stop : callable, optional
        Polled before each block; True cancels (``OperationCancelled``) and nothing is left.

    Returns
    -------
    pathlib.Path
        The ``.bin`` written (CalSciPy returns 0).

    Raises
    ------
    OutputExistsError
        A file exists and `overwrite` is False.
    RecordingError
        A target is not a regular file (a folder, named pipe, device, or a link to one), with
        or without `overwrite`.
    ShapeError
        `images` is not a 3-D/4-D numeric movie.
    ParameterError
        `frame_rate_hz` or `pixel_size_um` is not positive.

    Notes
    -----
    The ``.bin`` is written to a temporary file and renamed, then the ``.json`` likewise, so a
    ``.json`` never describes a missing or partial ``.bin``. If writing the ``.json`` fails, the
    new ``.bin`` is removed again.
    """
    images = check_movie(images, path)
    name = _output_pair(Path(path))[0].name

    def fill(tmp_bin: Path, file_dtype: np.dtype) -> None:
        with open(tmp_bin, "wb") as fh:
            blocks = iter_frame_blocks(
                images, progress=progress, should_stop=should_stop,
                desc=f"writing {name}",
            )  # fmt: skip
            for _, block in blocks:
                np.ascontiguousarray(block, dtype=file_dtype).tofile(fh)

    return write_binary_pair(
        path, images.shape, images.dtype, fill,
        frame_rate_hz=frame_rate_hz, pixel_size_um=pixel_size_um, overwrite=overwrite,
    )  # fmt: skip


def write_binary_pair(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    dtype: Any,
    fill: Callable[[Path, np.dtype], None],
    *,
    frame_rate_hz: float | None = None,
    pixel_size_um: float | tuple[float, float] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a ``.bin`` + ``.json`` pair atomically, the ``.bin`` body by ``fill``.

    The writer behind :func:`save_binary`, for producers that fill the ``.bin`` themselves
    (e.g. the workers of a dask cluster writing their frames into it at their offsets).

    Parameters
    ----------
    path : str or os.PathLike
        As in :func:`save_binary`.
    shape : tuple of int
        ``(frames, y, x)`` or ``(frames, planes, y, x)`` of the movie.
    dtype : numpy dtype
        Its dtype; stored little-endian.
    fill : callable
        ``fill(tmp_path, file_dtype)`` writes the whole movie, C order, into the temporary
        ``.bin`` path (an empty file already created), in `file_dtype`.
    frame_rate_hz, pixel_size_um, overwrite
        As in :func:`save_binary`.

    Returns
    -------
    pathlib.Path
        The ``.bin`` written.

    Raises
    ------
    OutputExistsError
        A file exists and `overwrite` is False (raised before `fill` runs).
    RecordingError
        A target is not a regular file (a folder, named pipe, device, or a link to one), with
        or without `overwrite` (raised before `fill` runs).
    ParameterError
        `frame_rate_hz` or `pixel_size_um` is not positive.
    ShapeError
        `fill` wrote a file of the wrong size (nothing is kept).
    """
    rate = positive_float(frame_rate_hz, "frame_rate_hz")
    pixel = pixel_pair(pixel_size_um)
    dtype = np.dtype(dtype)
    file_dtype = dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype
    bin_path, json_path = _output_pair(Path(path))
    for target in (bin_path, json_path):
        check_target(target, overwrite=overwrite)
    shape = tuple(int(s) for s in shape)
    meta: dict[str, Any] = {"frames": shape[0]}
    if len(shape) == 4:
        meta["planes"] = shape[1]
    meta.update(y=shape[-2], x=shape[-1], dtype=file_dtype.name)
    if rate is not None:
        meta["frame_rate_hz"] = rate
    if pixel is not None:
        meta["pixel_size_um"] = list(pixel)
    expected = int(np.prod(shape)) * file_dtype.itemsize
    bin_done = False
    try:
        with atomic_output(json_path, overwrite=overwrite) as tmp_json:
            with atomic_output(bin_path, overwrite=overwrite) as tmp_bin:
                fill(Path(tmp_bin), file_dtype)
                size = Path(tmp_bin).stat().st_size
                if size != expected:
                    raise ShapeError(
                        f"{bin_path}: wrote {size} bytes, expected {expected} for a "
                        f"{shape} {file_dtype.name} movie; nothing was kept"
                    )
            bin_done = True
            tmp_json.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        if bin_done:
            bin_path.unlink(missing_ok=True)
        raise
    return bin_path

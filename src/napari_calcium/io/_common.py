"""Pieces shared by the binary and TIFF readers and writers.

Lazy array-likes that read on ``[...]`` (so opening reads no pixels and a dask graph holding them
pickles cheaply), the dask wrapper that chunks them by whole frames, and the argument checks
common to the writers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..errors import MetadataError, ParameterError, RecordingError, ShapeError

__all__ = [
    "CHUNK_BYTES",
    "MappedArray",
    "TiffPages",
    "check_movie",
    "finite",
    "lazy_array",
    "pixel_pair",
    "positive_float",
    "tifffile_warnings",
    "token",
]

#: target size of one dask chunk of a lazily opened movie (whole frames)
CHUNK_BYTES = 16 * 2**20
_MAX_OPEN = 32  # TiffFile handles kept open by lazy readers, least recently used closed first


class MappedArray:
    """A lazy, picklable view of a raw C-order array stored at an offset in a file.

    Each ``[...]`` maps the file, copies the selected elements and unmaps it, so no file handle
    stays open and a dask graph holding it can travel to other processes.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    dtype : numpy dtype-like
        dtype as stored, with its byte order; slices come back in native byte order.
    shape : tuple of int
        Shape of the stored array.
    offset : int
        Byte offset of the first element.
    """

    def __init__(self, path: str | os.PathLike, dtype: Any, shape: Sequence[int], offset: int = 0):
        self.path = Path(path)
        self.file_dtype = np.dtype(dtype)
        self.dtype = self.file_dtype.newbyteorder("=")
        self.shape = tuple(int(s) for s in shape)
        self.ndim = len(self.shape)
        self.offset = int(offset)

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            mapped = np.memmap(
                self.path, dtype=self.file_dtype, mode="r", offset=self.offset, shape=self.shape
            )
            out = np.array(mapped[key], dtype=self.dtype)
            del mapped
        except (OSError, ValueError) as exc:
            raise RecordingError(
                self.path, f"cannot read pixel data; the file changed or vanished after it was "
                f"opened ({exc})"
            ) from exc  # fmt: skip
        return out


def lazy_array(source: Any, name: str, *, chunk_bytes: int = CHUNK_BYTES) -> Any:
    """A dask array over an array-like whose ``[...]`` reads, chunked along axis 0 only.

    Each chunk holds whole items of axis 0 (frames), about `chunk_bytes` each; dask fuses a
    later slice into the read, so ``movie[k]`` reads frame ``k`` alone.
    """
    import dask.array as da

    per_item = max(1, math.prod(source.shape[1:]) * source.dtype.itemsize)
    rows = max(1, min(int(source.shape[0]), chunk_bytes // per_item))
    meta = np.empty((0,) * source.ndim, dtype=source.dtype)
    return da.from_array(source, chunks=(rows, *source.shape[1:]), name=name, meta=meta)


def token(*parts: Any) -> str:
    """A deterministic dask name fragment for (path, mtime, ...)."""
    from dask.base import tokenize

    return tokenize(*parts)


def finite(value: numbers.Real) -> bool:
    """``math.isfinite`` that is False (not OverflowError) for an int beyond the float range."""
    try:
        return math.isfinite(value)
    except OverflowError:  # e.g. 10**400 in a JSON sidecar or a pickled ops dict
        return False


def positive_float(value: Any, what: str, where: Path | None = None) -> float | None:
    """A finite number > 0, or None; ParameterError (MetadataError with `where`) otherwise."""
    if value is None:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not finite(value) or value <= 0:
        problem = f"{what} must be a positive number, got {value!r}"
        raise MetadataError(where, problem) if where else ParameterError(problem)
    return float(value)


def pixel_pair(value: Any, where: Path | None = None) -> tuple[float, float] | None:
    """``pixel_size_um`` as (y, x) µm from a number or a pair; None stays None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) == 2:
        py, px = (positive_float(v, "pixel_size_um", where) for v in value)
        if py is None or px is None:  # [None, 1]: half a pixel size is none
            problem = f"pixel_size_um must be two positive numbers, got {value!r}"
            raise MetadataError(where, problem) if where else ParameterError(problem)
        return (py, px)
    size = positive_float(value, "pixel_size_um (a number or a (y, x) pair)", where)
    return (size, size)  # type: ignore[return-value]


def check_movie(images: Any, path: Any) -> Any:
    """A ``(frames, y, x)`` or ``(frames, planes, y, x)`` numeric array-like with no empty axis."""
    if not hasattr(images, "shape") or not hasattr(images, "dtype"):
        images = np.asarray(images)
    shape = tuple(int(s) for s in images.shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ShapeError(
            f"{path}: expected a (frames, y, x) or (frames, planes, y, x) movie with no empty "
            f"axis, got shape {shape}"
        )
    if np.dtype(images.dtype).kind not in "biuf":
        raise ShapeError(f"{path}: cannot write dtype {images.dtype}; use an integer or float")
    return images


_open_readers: OrderedDict[int, weakref.ref] = OrderedDict()
_open_lock = threading.Lock()


def _note_open(reader: TiffPages) -> None:
    """Remember a reader with an open handle; close the least recently used beyond the cap."""
    with _open_lock:
        _open_readers[id(reader)] = weakref.ref(reader)
        _open_readers.move_to_end(id(reader))
        old = [_open_readers.popitem(last=False)[1] for _ in range(len(_open_readers) - _MAX_OPEN)]
    for ref in old:
        victim = ref()
        if victim is not None and victim is not reader:
            victim.close(wait=False)


class TiffPages:
    """Lazy array-like over one tifffile series: ``lead_shape + page_shape``.

    ``[...]`` turns the leading (sequence) indices into page numbers of the series and reads those
    pages with :meth:`tifffile.TiffFile.asarray`. The TiffFile stays open between reads (at most
    ``_MAX_OPEN`` across readers); it is dropped when pickled and reopened on first use.
    """

    def __init__(self, path: Path, shape: tuple, dtype: np.dtype, n_lead: int, kwargs: dict):
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)
        self.ndim, self.n_lead, self.kwargs = len(self.shape), n_lead, dict(kwargs)
        self._lock, self._tif = threading.Lock(), None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_tif")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock, self._tif = threading.Lock(), None

    def close(self, wait: bool = True) -> None:
        """Close the file handle (skipped when ``wait=False`` and a read is in progress)."""
        if not self._lock.acquire(blocking=wait):
            return
        try:
            if self._tif is not None:
                self._tif.close()
            self._tif = None
        finally:
            self._lock.release()

    def __del__(self) -> None:
        # no module globals here: at interpreter exit they may already be gone
        tif = getattr(self, "_tif", None)
        if tif is not None:
            try:  # noqa: SIM105 - contextlib may be gone at interpreter exit
                tif.close()
            except Exception:
                pass

    def _read(self, pages: list[int]) -> np.ndarray:
        opened = False
        with self._lock:
            if self._tif is None:
                self._tif = tifffile.TiffFile(self.path, **self.kwargs)
                opened = True
            data = self._tif.asarray(key=pages, series=0)
        if opened:
            _note_open(self)
        return data

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        for i, k in enumerate(key):
            if k is Ellipsis:
                key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
                break
        key = key + (slice(None),) * (self.ndim - len(key))
        lead = self.shape[: self.n_lead]
        index = np.arange(math.prod(lead)).reshape(lead)[key[: self.n_lead]]
        pages = index.ravel().tolist()
        page_shape = self.shape[self.n_lead :]
        within_pages = (slice(None),) * index.ndim + key[self.n_lead :]
        if not pages:
            return np.empty(index.shape + page_shape, self.dtype)[within_pages]
        try:
            data = self._read(pages)
        except Exception as exc:
            raise RecordingError(
                self.path, f"cannot read pages {pages[0]}-{pages[-1]}: damaged or changed since "
                f"it was opened ({type(exc).__name__}: {exc})"
            ) from exc  # fmt: skip
        return np.asarray(data, dtype=self.dtype).reshape(index.shape + page_shape)[within_pages]


class _Capture(logging.Handler):
    """Collects tifffile's warnings from this thread (they are how it reports damage)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            with contextlib.suppress(Exception):
                self.messages.append(record.getMessage())


@contextlib.contextmanager
def tifffile_warnings() -> Iterator[list[str]]:
    """Collect tifffile's log warnings from this thread during the block."""
    logger = logging.getLogger("tifffile")
    handler = _Capture()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)

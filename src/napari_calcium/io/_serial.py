"""Plain-JSON conversion, checksums and versions for the sidecars of the trace files, and the
guarded readers every loader of user files goes through.

The readers (:func:`open_regular`, :func:`read_json`, :func:`read_npy`, :class:`NpzArrays`)
refuse anything but a regular file before reading a byte (a named pipe would block, a device
stream without end), check every ``.npy`` header against the bytes that follow it before
anything is allocated, never unpickle, and turn every failure into a
:class:`~napari_calcium.errors.RecordingError` that names the file and the problem.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import lzma
import math
import os
import pickle
import platform
import stat
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._version import __version__
from ..errors import RecordingError
from ._atomic import kind_of

__all__ = [
    "READ_ERRORS",
    "NpzArrays",
    "describe_error",
    "host",
    "jsonable",
    "open_regular",
    "read_json",
    "read_npy",
    "sha256",
    "versions",
]

#: What numpy's ``.npy``/``.npz`` readers, zipfile, json and the ROI/TIFF libraries raise on
#: damaged bytes (a damaged ``.npy`` header reaches ``tokenize.TokenError`` and ``SyntaxError``
#: through numpy's header parser; a damaged zip ``BadZipFile``, ``zlib.error``, ``LZMAError``,
#: ``NotImplementedError`` or ``RuntimeError``).
READ_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, TypeError, KeyError, IndexError, AttributeError, OSError, EOFError,
    ArithmeticError, MemoryError, RuntimeError, SyntaxError, tokenize.TokenError,
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, struct.error,
    pickle.UnpicklingError, ImportError,
)  # fmt: skip

#: the largest JSON file a loader reads (sidecars and hand-edited ROI lists are far smaller)
MAX_JSON_BYTES = 256 * 2**20
_PICKLED = (
    "holds pickled Python objects (an object array); napari-calcium's own files never do, and "
    "unpickling can run arbitrary code, so it is not read"
)


def jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars/arrays -> numbers/lists; non-finite floats -> None)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return str(value)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    import scipy

    return {
        "napari-calcium": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def host(value: Any) -> np.ndarray:
    if hasattr(value, "get") and not isinstance(value, np.ndarray):  # cupy -> host
        value = value.get()
    return np.asarray(value)


# ------------------------------------------------------------------------------ guarded readers
def describe_error(exc: BaseException) -> str:
    """A read error in words for a message: its type and text (numpy's header parser raises
    ``tokenize.TokenError``/``SyntaxError`` on a damaged ``.npy`` header: said so)."""
    text = str(exc).strip()
    kind = type(exc).__name__
    if isinstance(exc, (tokenize.TokenError, SyntaxError)):
        return f"damaged .npy header ({kind}: {text[:200]})"
    return f"{kind}: {text}" if text else kind


def open_regular(path: str | os.PathLike, what: str = "file") -> IO[bytes]:
    """Open ``path`` for reading in binary mode, only if it is a regular file.

    The file is opened without blocking and checked on the open descriptor, so a named pipe,
    a device or a socket (or a link to one) is refused without waiting for a writer, and a
    file swapped for one between a check and the open is refused as well.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    what : str
        What the file should hold, for the message ("ROI file", "trace sidecar", ...).

    Returns
    -------
    binary file object
        Positioned at the start; the caller closes it.

    Raises
    ------
    RecordingError
        ``path`` is missing, cannot be opened, or is not a regular file (the message names it).
    """
    final = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(final, flags)
    except FileNotFoundError as exc:
        raise RecordingError(final, f"no such {what}") from exc
    except OSError as exc:
        raise RecordingError(final, f"cannot open this {what} ({exc.strerror or exc})") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RecordingError(
                final, f"is {kind_of(mode)}, not a regular file; expected a {what}"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        raw = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    raw.name = os.fspath(final)  # libraries that look at .name see the path, not the fd
    return io.BufferedReader(raw)


def read_json(
    path: str | os.PathLike,
    what: str = "JSON file",
    *,
    error: type[RecordingError] = RecordingError,
    max_bytes: int = MAX_JSON_BYTES,
) -> Any:
    """Parse a JSON file a user may have written or edited by hand.

    UTF-8 with or without a byte-order mark (as Windows editors save it) is read; anything
    else is refused with a message that says so.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file (only a regular file is opened: see :func:`open_regular`).
    what : str
        What it should hold, for the messages.
    error : type
        The RecordingError subclass to raise for an unreadable or invalid file (e.g.
        MetadataError for a movie's sidecar).
    max_bytes : int
        A larger file is refused before it is read.

    Returns
    -------
    object
        The parsed JSON value (any JSON type: the caller checks its structure).

    Raises
    ------
    RecordingError
        Not a regular file, unreadable, too large, not UTF-8, or not valid JSON (``error``
        for the last four).
    """
    with open_regular(path, what) as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise error(path, f"{size} bytes: too large to be {what}")
            raw = fh.read(max_bytes + 1)
        except OSError as exc:
            raise error(path, f"cannot read it ({exc.strerror or exc})") from exc
    if len(raw) > max_bytes:
        raise error(path, f"too large to be {what}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            path,
            f"not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            f"save {what} as UTF-8",
        ) from exc
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise error(path, f"not usable as {what}: JSON nested too deeply") from exc
    except ValueError as exc:
        raise error(path, f"not valid JSON ({exc})") from exc


def _npy_array(fh: IO[bytes], n_bytes: int) -> np.ndarray:
    """Read one ``.npy`` from ``fh`` (``n_bytes`` long) after checking its header.

    Raises ValueError (the caller names the file) when the header cannot be parsed, describes
    Python objects, or describes another amount of data than follows it.
    """
    start = fh.tell()
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f".npy format version {version[0]}.{version[1]} is not one we read")
    if dtype.hasobject:
        raise ValueError(_PICKLED)
    header = fh.tell() - start
    count = math.prod(shape)
    expected = count * dtype.itemsize
    if n_bytes - header != expected:
        raise ValueError(
            f"its .npy header describes a {dtype} array of shape {shape} ({expected} bytes) but "
            f"{n_bytes - header} bytes follow it: truncated or damaged"
        )
    data = bytearray(expected)  # bounded by the file's (or zip member's) size, checked above
    view, got = memoryview(data), 0
    while got < expected:
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    if got != expected:
        raise ValueError(f"only {got} of the {expected} data bytes could be read: truncated")
    array = np.frombuffer(data, dtype=dtype, count=count)
    if fortran:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def read_npy(path: str | os.PathLike, what: str = ".npy array") -> np.ndarray:
    """Read a ``.npy`` file without unpickling, its header checked against its size first.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npy`` file (only a regular file is opened).
    what : str
        What it should hold, for the messages.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    RecordingError
        Not a regular file, a damaged or truncated header or body, or an object array
        (the message names the file and the problem).
    """
    with open_regular(path, what) as fh:
        try:
            return _npy_array(fh, os.fstat(fh.fileno()).st_size)
        except READ_ERRORS as exc:
            raise RecordingError(path, f"cannot read it as {what}: {describe_error(exc)}") from exc


class NpzArrays:
    """The arrays of an ``.npz``, each read and checked when asked for; no pickles.

    A drop-in for the ``NpzFile`` of ``np.load(path, allow_pickle=False)`` (``files``, ``in``,
    ``[name]``, a context manager) for files a user hands us: only a regular file is opened,
    each member's ``.npy`` header is checked against the member's size before anything is
    allocated, and every failure (a damaged zip, a bad CRC, a damaged header, an object array)
    is a :class:`~napari_calcium.errors.RecordingError` naming the file and the member.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.
    what : str
        What it should hold, for the messages.
    """

    def __init__(self, path: str | os.PathLike, what: str = ".npz file") -> None:
        self.path = Path(path)
        self.what = what
        fh = open_regular(self.path, what)
        try:
            self._zip = zipfile.ZipFile(fh)
            infos = self._zip.infolist()
        except READ_ERRORS as exc:
            fh.close()
            raise RecordingError(
                self.path, f"cannot read it as {what}: {describe_error(exc)}"
            ) from exc
        except BaseException:
            fh.close()
            raise
        self._fh = fh
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename.endswith(".npy") and not info.is_dir():
                self._members.setdefault(info.filename[:-4], info)
        self.files = list(self._members)

    def __enter__(self) -> NpzArrays:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._zip.close()
        self._fh.close()

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: str) -> np.ndarray:
        info = self._members.get(key)
        if info is None:
            raise RecordingError(self.path, f"not {self.what}: it has no {key!r} array")
        try:
            with self._zip.open(info) as member:
                return _npy_array(member, info.file_size)
        except READ_ERRORS as exc:
            raise RecordingError(
                self.path, f"cannot read array {key!r} of {self.what}: {describe_error(exc)}"
            ) from exc

"""suite2p's raw binary movie: ``data.bin`` (int16 frames, C order) + ``ops.npy``, opened lazily.

suite2p's ``ops.npy`` is a pickle: loading it can run arbitrary code, so
:func:`open_suite2p_binary` reads it only with ``allow_pickle=True``, for files you trust.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MetadataError, ParameterError, RecordingError
from ._atomic import require_regular_file
from ._common import MappedArray, finite, lazy_array, token
from ._serial import open_regular
from .binary import _positive_int
from .metadata import Recording, RecordingMetadata

__all__ = ["open_suite2p_binary"]

_SUITE2P_EXTRA = (
    "suite2p_version", "fs", "nplanes", "nchannels", "functional_chan", "align_by_chan", "tau",
    "diameter", "nframes", "Ly", "Lx", "data_path", "save_path0", "do_registration", "nonrigid",
    "yrange", "xrange", "aspect",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# suite2p data.bin + ops.npy
# --------------------------------------------------------------------------------------------


def _load_ops(ops_path: Path) -> dict:
    with open_regular(ops_path, "suite2p ops.npy") as fh:
        try:
            loaded = np.load(fh, allow_pickle=True)
            if isinstance(loaded, np.ndarray) and loaded.dtype == object and loaded.shape == ():
                loaded = loaded.item()
        except Exception as exc:  # unpickling can raise anything; it is the file's fault
            raise MetadataError(
                ops_path, f"not a readable suite2p ops.npy ({type(exc).__name__}: {exc})"
            ) from exc
    if not isinstance(loaded, dict):
        close = getattr(loaded, "close", None)
        if callable(close):
            close()
        raise MetadataError(ops_path, "does not hold a dict of suite2p options")
    return loaded


def _plain(value: Any) -> Any:
    """JSON-friendly copy of an ops value (numpy scalars and small arrays), else None."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.size <= 16:
        return value.tolist()
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return list(value)
    return None


def _suite2p_paths(path: Path) -> tuple[Path, Path]:
    if path.exists() and not path.is_dir():  # a named pipe or a device: refused, never opened
        require_regular_file(path, "suite2p ops.npy or data.bin")
    if path.is_dir():
        ops_path = path / "ops.npy"
        folder, bin_path = path, None
    elif path.is_file() and path.suffix.lower() == ".npy":
        ops_path, folder, bin_path = path, path.parent, None
    elif path.is_file() and path.suffix.lower() == ".bin":
        ops_path, folder, bin_path = path.parent / "ops.npy", path.parent, path
    elif not path.exists():
        raise RecordingError(path, "no such file or folder")
    else:
        raise RecordingError(path, "not a suite2p plane folder, ops.npy or data.bin")
    if bin_path is None:
        found = [folder / n for n in ("data.bin", "data_raw.bin") if (folder / n).is_file()]
        if not found:
            raise RecordingError(
                folder, "no data.bin or data_raw.bin here (suite2p deletes them when run with "
                "delete_bin=True); give a suite2p plane folder such as suite2p/plane0"
            )  # fmt: skip
        bin_path = found[0]
    if not ops_path.is_file():
        if ops_path.exists():
            require_regular_file(ops_path, "suite2p ops.npy")
        raise RecordingError(ops_path, "not found; suite2p writes ops.npy next to data.bin")
    return bin_path, ops_path


def open_suite2p_binary(
    folder_or_ops_path: str | os.PathLike, *, allow_pickle: bool = False
) -> Recording:
    """Open suite2p's registered (or raw) movie, ``data.bin``, lazily with its ``ops.npy``.

    Parameters
    ----------
    folder_or_ops_path : str or os.PathLike
        A suite2p plane folder (``suite2p/plane0``), its ``ops.npy``, or a ``.bin`` in it. A folder
        opens ``data.bin`` (registered) or else ``data_raw.bin``.
    allow_pickle : bool
        Must be True: ``ops.npy`` is a pickled dict and unpickling can run arbitrary code, so
        only open suite2p output you trust (your own, or from a source you trust).

    Returns
    -------
    Recording
        Channel ``"data"`` (or ``"data_raw"``): int16 ``(nframes, Ly, Lx)`` dask array, plus
        ``"data_chan2"`` (``"data_chan2_raw"``) when suite2p wrote the second channel.
        ``frame_period_s = 1 / ops["fs"]`` (per plane), ``source_version`` = suite2p version;
        pixel size is None (suite2p does not record it). Selected scalar ops go to ``extra``.

    Raises
    ------
    ParameterError
        `allow_pickle` is not True.
    RecordingError
        A file is missing, or a ``.bin`` size disagrees with ``Ly``, ``Lx`` and ``nframes``.
    MetadataError
        ``ops.npy`` cannot be read or lacks ``Ly``/``Lx``.
    """
    bin_path, ops_path = _suite2p_paths(Path(folder_or_ops_path))
    if allow_pickle is not True:
        raise ParameterError(
            f"{ops_path}: suite2p's ops.npy is a pickle, and loading a pickle can run arbitrary "
            "code. Pass allow_pickle=True only for suite2p output you trust."
        )
    ops = _load_ops(ops_path)
    ly = _positive_int(ops.get("Ly"), "Ly", ops_path)
    lx = _positive_int(ops.get("Lx"), "Lx", ops_path)
    if ly is None or lx is None:
        raise MetadataError(ops_path, "has no Ly/Lx (frame height/width); not suite2p ops?")
    nframes = _positive_int(ops.get("nframes"), "nframes", ops_path)
    frame_bytes = ly * lx * 2
    files = [bin_path]
    if bin_path.name in ("data.bin", "data_raw.bin"):
        second = bin_path.with_name(bin_path.name.replace("data", "data_chan2"))
        files += [second] if second.is_file() else []
    channels = {}
    for file in files:
        size = file.stat().st_size
        n = nframes if nframes is not None else size // frame_bytes
        if size != n * frame_bytes or n == 0:
            said = f"nframes={nframes}, " if nframes is not None else ""
            raise RecordingError(
                file, f"{file.name} has {size} bytes but {ops_path.name} says {said}Ly={ly}, "
                f"Lx={lx} (int16), which needs a multiple of {frame_bytes} bytes"
                + (f" = {n * frame_bytes}" if nframes is not None else "")
            )  # fmt: skip
        if channels and n != next(iter(channels.values())).shape[0]:
            raise RecordingError(
                file, f"{file.name} holds {n} frames but {files[0].name} "
                f"{next(iter(channels.values())).shape[0]}; the channels must be equally long"
            )  # fmt: skip
        name = "suite2p-" + token(str(file.resolve()), file.stat().st_mtime_ns, n, ly, lx)
        channels[file.stem] = lazy_array(MappedArray(file, "<i2", (n, ly, lx)), name)
    n_frames = next(iter(channels.values())).shape[0]
    fs = ops.get("fs")
    ok = isinstance(fs, numbers.Real) and not isinstance(fs, bool) and finite(fs) and fs > 0
    period = 1.0 / float(fs) if ok else None
    extra = {k: _plain(ops[k]) for k in _SUITE2P_EXTRA if k in ops and _plain(ops[k]) is not None}
    extra.update(bin_file=bin_path.name, ops_file=ops_path.name)
    version = ops.get("suite2p_version")
    metadata = RecordingMetadata(
        source_format="suite2p-binary",
        source_version=str(version) if version is not None else None,
        frame_period_s=period,
        timestamps_s=None if period is None else np.arange(n_frames) * period,
        channel_names=tuple(channels),
        extra=extra,
    )
    return Recording(path=bin_path.parent, channels=channels, metadata=metadata)

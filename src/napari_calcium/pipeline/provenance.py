"""The provenance record of a pipeline output folder (``provenance.json``) and step keys.

``provenance.json`` is rewritten atomically after every step. It holds the full config, package
versions, Python and platform, the inputs with their size and sha256, and per step: its key,
status, start time, duration and outputs (path relative to the folder, size, sha256).

A step's key is the sha256 of its name, its parameters, the keys of the steps it depends on and,
for ``open``, the input checksums: equal keys mean the same computation on the same data.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import RecordingError
from ..io._atomic import atomic_output
from ..io._serial import jsonable, sha256

__all__ = [
    "PROVENANCE_FILE",
    "file_record",
    "input_records",
    "package_versions",
    "read_provenance",
    "step_key",
    "write_provenance",
]

PROVENANCE_FILE = "provenance.json"
#: bump when a step's outputs change meaning, so old folders are recomputed rather than reused
FORMAT_VERSION = 1
_PACKAGES = ("numpy", "scipy", "dask", "numba", "tifffile", "zarr", "pynwb", "cupy")


def package_versions() -> dict[str, str | None]:
    """Versions of napari-calcium and of the libraries its results depend on (None: absent)."""
    out: dict[str, str | None] = {"napari-calcium": __version__}
    for name in _PACKAGES:
        try:
            out[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment() -> dict[str, Any]:
    """Python, platform and package versions."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }


def _file_input(path: Path, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    st = path.stat()
    rec = {"path": str(path), "kind": "file", "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if previous and all(previous.get(k) == rec[k] for k in ("path", "kind", "size", "mtime_ns")):
        rec["sha256"] = previous["sha256"]  # unchanged since the last run: no need to re-read it
    else:
        rec["sha256"] = sha256(path)
    return rec


def _folder_input(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    n, total = 0, 0
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        st = p.stat()
        digest.update(
            f"{p.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
        )
        n, total = n + 1, total + st.st_size
    return {
        "path": str(path),
        "kind": "folder",
        "n_files": n,
        "size": total,
        "sha256": digest.hexdigest(),
        "checksum_of": "sorted file list with sizes and mtimes (not the file contents)",
    }


def input_records(
    path: str | os.PathLike, previous: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Size and checksum of an input recording (and of a ``.bin``'s ``.json`` sidecar).

    Parameters
    ----------
    path : str or os.PathLike
        A file, or a folder recording (Bruker, a folder of TIFFs).
    previous : iterable of dict
        Records from an earlier run: a file whose path, size and mtime are unchanged keeps its
        recorded sha256 instead of being read again.

    Returns
    -------
    list of dict
        ``path``, ``kind`` ("file"/"folder"), ``size`` (bytes), ``sha256``; files also
        ``mtime_ns``. A folder's sha256 is over its sorted file list, sizes and mtimes.

    Raises
    ------
    RecordingError
        `path` does not exist.
    """
    p = Path(path).resolve()
    if not p.exists():
        raise RecordingError(p, "input recording not found")
    if p.is_dir():
        return [_folder_input(p)]
    old = {r.get("path"): r for r in previous}
    paths = [p]
    if p.suffix.lower() == ".bin" and p.with_suffix(".json").is_file():
        paths.append(p.with_suffix(".json"))
    return [_file_input(q, old.get(str(q))) for q in paths]


def step_key(name: str, params: Mapping[str, Any], depends: Mapping[str, str], extra: Any = None):
    """sha256 (hex) of a step's name, parameters, the keys it depends on and `extra`."""
    blob = {
        "format": FORMAT_VERSION,
        "step": name,
        "params": jsonable(params),
        "depends": dict(sorted(depends.items())),
        "extra": jsonable(extra),
    }
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def file_record(path: Path, out_dir: Path) -> dict[str, Any]:
    """``path`` (relative to `out_dir`), ``size`` (bytes) and ``sha256`` of an output file."""
    return {
        "path": path.relative_to(out_dir).as_posix(),
        "size": path.stat().st_size,
        "sha256": sha256(path),
    }


def now() -> str:
    """The current time, ISO 8601 with the local UTC offset."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def read_provenance(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's provenance record, or None when it has none.

    Raises
    ------
    RecordingError
        ``provenance.json`` exists but is not valid JSON.
    """
    path = Path(out_dir) / PROVENANCE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordingError(path, f"cannot read the provenance record ({exc})") from None
    if not isinstance(data, dict) or "steps" not in data:
        raise RecordingError(path, "not a napari-calcium provenance record (no 'steps')")
    return data


def write_provenance(out_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``provenance.json`` atomically (replacing the previous one)."""
    path = Path(out_dir) / PROVENANCE_FILE
    text = json.dumps(jsonable(record), indent=2, allow_nan=False) + "\n"
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path

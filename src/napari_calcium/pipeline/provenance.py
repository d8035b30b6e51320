"""The provenance record of a pipeline output folder (``provenance.json``) and step keys.

``provenance.json`` is rewritten atomically after every step. It holds the full config, package
versions, Python and platform, the inputs with their size and sha256, and per step: its key,
status, start time, duration and outputs (path relative to the folder, size, mtime_ns, sha256 and,
for files over :data:`FULL_HASH_MAX_BYTES`, ``sample_sha256``: the hash of a few sampled blocks).

On resume, :func:`verify_output` checks each output of a finished step before it is trusted:
a file up to :data:`FULL_HASH_MAX_BYTES` (64 MiB) is read and hashed in full every time; a larger
one (an intermediate ``.bin`` movie) is trusted when its size and mtime_ns are the recorded ones
and :data:`SAMPLE_BLOCKS` sampled blocks of :data:`SAMPLE_BLOCK_BYTES` (the first, the last and
evenly spaced ones between) hash to the recorded ``sample_sha256``; when its mtime differs (a copy
that did not keep it, a write) it is hashed in full.

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
    "verify_output",
    "write_provenance",
]

PROVENANCE_FILE = "provenance.json"
#: bump when a step's outputs change meaning, so old folders are recomputed rather than reused
FORMAT_VERSION = 1
#: outputs up to this size are hashed in full on every resume; larger ones are sampled
FULL_HASH_MAX_BYTES = 64 * 2**20
#: size of each sampled block of a large output, and how many blocks are sampled
SAMPLE_BLOCK_BYTES = 2**20
SAMPLE_BLOCKS = 16
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


def _sampled_sha256(path: Path, size: int, block: int, n_blocks: int) -> str:
    """sha256 of the size and of `n_blocks` blocks of `block` bytes, first to last, spread."""
    total = -(-size // block)
    if total <= n_blocks:
        starts = list(range(total))
    else:
        starts = sorted({round(i * (total - 1) / (n_blocks - 1)) for i in range(n_blocks)})
    digest = hashlib.sha256(f"{size}\0{block}\0{starts}\0".encode())
    with open(path, "rb") as fh:
        for i in starts:
            fh.seek(i * block)
            digest.update(fh.read(block))
    return digest.hexdigest()


def _sample_fields(path: Path, size: int) -> dict[str, Any]:
    block, n = SAMPLE_BLOCK_BYTES, SAMPLE_BLOCKS
    return {
        "sample_sha256": _sampled_sha256(path, size, block, n),
        "sample_block_bytes": block,
        "sample_blocks": n,
    }


def file_record(path: Path, out_dir: Path) -> dict[str, Any]:
    """The record of an output file, for :func:`verify_output` to check it on resume.

    Parameters
    ----------
    path : pathlib.Path
        The file, inside `out_dir`.
    out_dir : pathlib.Path
        The output folder.

    Returns
    -------
    dict
        ``path`` (relative to `out_dir`, POSIX), ``size`` (bytes), ``mtime_ns``, ``sha256`` (of
        the whole file) and, for a file over :data:`FULL_HASH_MAX_BYTES`, ``sample_sha256``,
        ``sample_block_bytes`` and ``sample_blocks`` (the hash of its sampled blocks).
    """
    st = path.stat()
    rec: dict[str, Any] = {
        "path": path.relative_to(out_dir).as_posix(),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256(path),
    }
    if st.st_size > FULL_HASH_MAX_BYTES:
        rec.update(_sample_fields(path, st.st_size))
    return rec


def verify_output(out_dir: Path, record: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """Check that an output file is still the one :func:`file_record` recorded.

    Parameters
    ----------
    out_dir : pathlib.Path
        The output folder.
    record : mapping
        The file's record in ``provenance.json``.

    Returns
    -------
    problem : str or None
        None when the file verifies; else what is wrong, naming the file (missing, outside the
        folder, another size, contents that differ from the recorded sha256, no checksum).
    record : mapping
        `record`, or, when the file verified by a full hash under another mtime, a copy with
        the current mtime (and sampled hash), so that the next resume of a large file is fast.

    Notes
    -----
    Up to :data:`FULL_HASH_MAX_BYTES` the whole file is hashed. A larger file whose size and
    mtime_ns are the recorded ones is checked by its sampled blocks only (a change that keeps
    the size and the mtime and misses every sampled block goes unnoticed); when its mtime
    differs, or no sampled hash was recorded, it is hashed in full.
    """
    rel = record.get("path")
    if not isinstance(rel, str) or not rel:
        return f"an output of {out_dir} has no path in {PROVENANCE_FILE}", record
    path = out_dir / rel
    try:
        path.resolve().relative_to(out_dir.resolve())
    except ValueError:
        return f"{path}: recorded in {PROVENANCE_FILE} but outside the output folder", record
    if not path.is_file():
        return f"{path}: missing", record
    st = path.stat()
    if st.st_size != record.get("size"):
        return f"{path}: {st.st_size} bytes, {record.get('size')} recorded", record
    expected = record.get("sha256")
    if not isinstance(expected, str):
        return f"{path}: no sha256 recorded in {PROVENANCE_FILE}", record
    large = st.st_size > FULL_HASH_MAX_BYTES
    sampled = record.get("sample_sha256")
    if large and isinstance(sampled, str) and record.get("mtime_ns") == st.st_mtime_ns:
        block = record.get("sample_block_bytes", SAMPLE_BLOCK_BYTES)
        n = record.get("sample_blocks", SAMPLE_BLOCKS)
        if _sampled_sha256(path, st.st_size, block, n) == sampled:
            return None, record
        return f"{path}: sampled blocks differ from those recorded in {PROVENANCE_FILE}", record
    if sha256(path) != expected:
        return f"{path}: contents differ from the sha256 recorded in {PROVENANCE_FILE}", record
    if record.get("mtime_ns") == st.st_mtime_ns and (not large or isinstance(sampled, str)):
        return None, record
    refreshed = {**record, "mtime_ns": st.st_mtime_ns}
    if large:
        refreshed.update(_sample_fields(path, st.st_size))
    return None, refreshed


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

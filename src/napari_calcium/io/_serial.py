"""Plain-JSON conversion, checksums and versions for the sidecars of the trace files."""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__

__all__ = ["host", "jsonable", "sha256", "versions"]


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

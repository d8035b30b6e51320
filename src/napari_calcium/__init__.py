"""napari-calcium: a calcium-imaging workbench for napari and for scripts.

Everything a user types in the napari console or a script is importable from here, e.g.::

    import napari_calcium as nc
    rec = nc.simulate_recording(n_frames=600, shape=(128, 128), n_neurons=20, seed=1)
    rec.movie.shape          # (600, 128, 128), uint16
    rec.truth.labels.max()   # 20

Importing this package loads neither napari nor Qt (the public names below are imported lazily,
on first use), so scripts, the command line and dask workers stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it (relative to this package)
_LAZY: dict[str, str] = {
    "simulate_recording": ".core.synthetic",
    "SyntheticRecording": ".core.synthetic",
    "GroundTruth": ".core.synthetic",
    "INDICATORS": ".core.synthetic",
    "array_module": ".core._backend",
    "to_host": ".core._backend",
    "gpu_available": ".core._backend",
    "iter_frame_blocks": ".core.chunking",
    "errors": ".errors",
}

__all__ = ["__version__", *sorted(_LAZY)]

if TYPE_CHECKING:  # pragma: no cover - for static analysis and IDEs only
    from . import errors
    from .core._backend import array_module, gpu_available, to_host
    from .core.chunking import iter_frame_blocks
    from .core.synthetic import INDICATORS, GroundTruth, SyntheticRecording, simulate_recording


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'napari_calcium' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if name == "errors" else getattr(module, name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

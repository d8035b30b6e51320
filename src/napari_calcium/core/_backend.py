"""The one place that knows about numpy versus cupy.

Every compute function in :mod:`napari_calcium.core` is written once, for both backends::

    def smooth(movie, *, sigma_px=1.0):
        xp = array_module(movie)          # numpy or cupy, picked from the data
        ndi = ndimage_module(xp)          # scipy.ndimage or cupyx.scipy.ndimage
        return ndi.gaussian_filter(xp.asarray(movie, dtype=xp.float32), sigma_px)

numpy in gives numpy out; cupy in gives cupy out. The backend is chosen from the *data*, never from
a default argument or a module-level global. Where a function has to create data from nothing
(a simulation, a loader), :func:`resolve_device` reads the ``NAPARI_CALCIUM_DEVICE`` environment
variable (``cpu``, ``gpu`` or ``auto``) at call time.

cupy is optional (``pip install "napari-calcium[gpu]"``). It is imported only in this module, only
lazily, and only when asked for: inspecting arrays never imports it (a cupy array can only exist
once the user imported cupy, so ``sys.modules`` is checked instead).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import numbers
import os
import sys
import types
from typing import Any

import numpy as np

from ..errors import BackendError, ParameterError

__all__ = [
    "DEVICE_CHOICES",
    "DEVICE_ENV_VAR",
    "array_module",
    "asarray",
    "describe_backend",
    "device_array_module",
    "fft_module",
    "gpu_available",
    "is_cupy_array",
    "is_dask_array",
    "ndimage_module",
    "requested_device",
    "resolve_device",
    "signal_module",
    "to_host",
]

#: Environment variable that picks the compute device for functions that create data.
DEVICE_ENV_VAR = "NAPARI_CALCIUM_DEVICE"
#: Values accepted by ``NAPARI_CALCIUM_DEVICE`` and by the ``device=`` arguments.
DEVICE_CHOICES = ("auto", "cpu", "gpu")

_GPU_INSTALL_HINT = (
    'install the GPU extra with `pip install "napari-calcium[gpu]"` (CuPy for CUDA 12); '
    "a working NVIDIA CUDA device and driver are needed as well"
)

# Names under which the numpy / cupy namespaces may be handed to us (the array-api-compat wrappers
# expose the same functions).
_NUMPY_NAMES = frozenset({"numpy", "array_api_compat.numpy"})
_CUPY_NAMES = frozenset({"cupy", "array_api_compat.cupy"})


# --------------------------------------------------------------------------------------------------
# Recognising arrays
# --------------------------------------------------------------------------------------------------
def is_cupy_array(x: Any) -> bool:
    """Return whether `x` is a cupy array, without importing cupy.

    Parameters
    ----------
    x : object
        Anything.

    Returns
    -------
    bool
        True for a ``cupy.ndarray`` (or a subclass). Always False when cupy was never imported,
        since no cupy array can exist then.
    """
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return False
    ndarray = getattr(cupy, "ndarray", None)
    if isinstance(ndarray, type) and isinstance(x, ndarray):
        return True
    if isinstance(x, np.generic | np.ndarray):  # cheap exit for the common numpy case
        return False
    module = getattr(type(x), "__module__", "") or ""
    return module.partition(".")[0] in ("cupy", "cupyx") and hasattr(x, "shape")


def is_dask_array(x: Any) -> bool:
    """Return whether `x` is a ``dask.array.Array``, without importing dask.

    Parameters
    ----------
    x : object
        Anything.

    Returns
    -------
    bool
        True for a dask array. Always False when ``dask.array`` was never imported.
    """
    dask_array = sys.modules.get("dask.array")
    array_type = getattr(dask_array, "Array", None)
    return isinstance(array_type, type) and isinstance(x, array_type)


def _namespace_of(x: Any) -> types.ModuleType | None:
    """Array namespace that `x` *demands*, or None when `x` goes with any backend.

    None is returned for python numbers, numpy scalars, lists, tuples, None and objects that are
    not arrays; these are promoted by whichever namespace the other inputs decide.
    """
    if x is None or isinstance(x, numbers.Number | np.generic | list | tuple | str | bytes):
        return None
    if isinstance(x, np.ndarray):  # includes np.memmap
        return np
    if is_cupy_array(x):
        return sys.modules["cupy"]
    if is_dask_array(x):
        return _namespace_of(x._meta) or np
    get_namespace = getattr(x, "__array_namespace__", None)
    if get_namespace is not None:
        try:
            return get_namespace()
        except Exception:  # a broken or exotic namespace hook: treat the object as host data
            return None
    return None


def array_module(*arrays: Any) -> types.ModuleType:
    """Return the array module (``numpy`` or ``cupy``) that the inputs live in.

    This is how one function body serves both backends: it starts with ``xp = array_module(x)``
    and then calls ``xp.mean``, ``xp.asarray`` ... (and :func:`ndimage_module` for filters).

    Parameters
    ----------
    *arrays : array_like
        numpy arrays (memmaps included), cupy arrays, dask arrays (dispatched on their ``._meta``,
        so a dask array of cupy blocks gives cupy), other array-API arrays, python numbers, numpy
        scalars, lists or None (ignored).

    Returns
    -------
    module
        ``numpy`` when no input is a device array (also for no inputs at all); the ``cupy``
        module when any input is a cupy array; for an array of another array-API library (e.g.
        ``array_api_strict``) its own namespace, ``x.__array_namespace__()``, so that generic code
        can be tested against the strict standard.

    Raises
    ------
    BackendError
        If arrays of two namespaces are mixed, e.g. a cupy array and a (non-scalar) numpy array.
        Python numbers, numpy scalars and lists mix with anything; a 0-d numpy array does not
        (cupy refuses numpy arrays as operands), wrap it with ``float()`` instead.

    Examples
    --------
    >>> import numpy as np
    >>> array_module(np.zeros(3), 2.0) is np
    True
    >>> array_module([1, 2, 3]) is np
    True
    """
    found: types.ModuleType | None = None
    found_at = -1
    for i, x in enumerate(arrays):
        xp = _namespace_of(x)
        if xp is None:
            continue
        if found is None:
            found, found_at = xp, i
        elif xp is not found:
            raise BackendError(
                "cannot mix arrays of different backends: argument "
                f"{found_at} is a {_type_name(arrays[found_at])} ({found.__name__}) but argument "
                f"{i} is a {_type_name(x)} ({xp.__name__}). Move them to one device first, "
                "e.g. with napari_calcium.to_host(x) for the CPU or "
                "napari_calcium.core._backend.asarray(x, device='gpu') for the GPU."
            )
    return np if found is None else found


def _type_name(x: Any) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


# --------------------------------------------------------------------------------------------------
# scipy-like submodules for a namespace
# --------------------------------------------------------------------------------------------------
def _scipy_like(xp_or_array: Any, submodule: str) -> types.ModuleType:
    is_module = isinstance(xp_or_array, types.ModuleType)
    xp = xp_or_array if is_module else array_module(xp_or_array)
    name = getattr(xp, "__name__", "")
    if name in _NUMPY_NAMES:
        return importlib.import_module(f"scipy.{submodule}")
    if name in _CUPY_NAMES:
        try:
            return importlib.import_module(f"cupyx.scipy.{submodule}")
        except ImportError as exc:
            raise BackendError(
                f"cupyx.scipy.{submodule} cannot be imported ({exc}); {_GPU_INSTALL_HINT}."
            ) from exc
    raise BackendError(
        f"no scipy.{submodule} equivalent is known for the array namespace {name!r}; "
        "napari-calcium supports numpy (CPU) and cupy (GPU) arrays here. "
        "Convert the data with napari_calcium.to_host(x) first."
    )


def ndimage_module(xp: Any) -> types.ModuleType:
    """Return ``scipy.ndimage`` for numpy, ``cupyx.scipy.ndimage`` for cupy.

    Parameters
    ----------
    xp : module or array_like
        An array module (as returned by :func:`array_module`) or an array;
        ``ndimage_module(x)`` is the same as ``ndimage_module(array_module(x))``.

    Returns
    -------
    module
        The ndimage module that works on that backend's arrays.

    Raises
    ------
    BackendError
        For cupy when ``cupyx`` cannot be imported, or for a namespace that is neither numpy nor
        cupy (e.g. ``array_api_strict``).

    Examples
    --------
    >>> import numpy as np, scipy.ndimage
    >>> ndimage_module(np) is scipy.ndimage
    True
    """
    return _scipy_like(xp, "ndimage")


def fft_module(xp: Any) -> types.ModuleType:
    """Return ``scipy.fft`` for numpy, ``cupyx.scipy.fft`` for cupy.

    Parameters
    ----------
    xp : module or array_like
        An array module or an array (see :func:`ndimage_module`).

    Returns
    -------
    module
        The FFT module for that backend.

    Raises
    ------
    BackendError
        See :func:`ndimage_module`.
    """
    return _scipy_like(xp, "fft")


def signal_module(xp: Any) -> types.ModuleType:
    """Return ``scipy.signal`` for numpy, ``cupyx.scipy.signal`` for cupy.

    Parameters
    ----------
    xp : module or array_like
        An array module or an array (see :func:`ndimage_module`).

    Returns
    -------
    module
        The signal-processing module for that backend.

    Raises
    ------
    BackendError
        See :func:`ndimage_module`.
    """
    return _scipy_like(xp, "signal")


# --------------------------------------------------------------------------------------------------
# Moving data
# --------------------------------------------------------------------------------------------------
def to_host(x: Any) -> np.ndarray:
    """Return `x` as a numpy array in host (CPU) memory.

    Parameters
    ----------
    x : array_like
        numpy array (returned unchanged, ``np.memmap`` included, so nothing is read), cupy array
        (copied with ``.get()``), dask array (computed, then moved to the host if its blocks were
        cupy), another array-API array, list or scalar.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as `x`.

    Examples
    --------
    >>> to_host([[1, 2], [3, 4]]).shape
    (2, 2)
    """
    if isinstance(x, np.ndarray):
        return x
    if is_cupy_array(x):
        return x.get()
    if is_dask_array(x):
        return to_host(x.compute())
    if hasattr(x, "__array_namespace__") and not hasattr(x, "__array__"):
        return np.from_dlpack(x)
    return np.asarray(x)


# --------------------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def gpu_available() -> bool:
    """Return whether a CUDA GPU can be used through cupy. Never raises.

    cupy is imported (guarded) and a tiny allocation plus a kernel are run on the device, because
    cupy installs and imports fine on machines without a GPU or driver and fails only at the first
    allocation. The answer is cached; call ``gpu_available.cache_clear()`` to probe again.

    Returns
    -------
    bool
        False when cupy is not installed, no device or driver is found, or any CUDA error occurs.
    """
    try:
        cupy = importlib.import_module("cupy")
    except Exception:  # not installed, or a broken install that fails on import
        return False
    try:
        if not cupy.cuda.is_available():
            return False
        return int((cupy.arange(4) * 2).sum().item()) == 12
    except Exception:  # CUDARuntimeError, driver mismatch, out of memory, ...
        return False


def _validate_device(value: Any, source: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in DEVICE_CHOICES:
        raise ParameterError(
            f"{source} is {value!r}; it must be one of {', '.join(DEVICE_CHOICES)} "
            "(case-insensitive)"
        )
    return text


def requested_device() -> str:
    """Return the device asked for by the ``NAPARI_CALCIUM_DEVICE`` environment variable.

    The variable is read at each call (never at import), stripped and lower-cased; unset or empty
    means ``"auto"``.

    Returns
    -------
    str
        ``"auto"``, ``"cpu"`` or ``"gpu"``.

    Raises
    ------
    ParameterError
        If the variable holds another value; the message names the variable, the value and the
        allowed ones.
    """
    raw = os.environ.get(DEVICE_ENV_VAR, "")
    if not raw.strip():
        return "auto"
    return _validate_device(raw, f"the environment variable {DEVICE_ENV_VAR}")


def resolve_device(device: str | None = None) -> str:
    """Decide on which device new data should be created: ``"cpu"`` or ``"gpu"``.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"} or None
        Explicit choice; it beats the environment. None reads ``NAPARI_CALCIUM_DEVICE``
        (default ``"auto"``). ``"auto"`` means the GPU when :func:`gpu_available`, else the CPU.

    Returns
    -------
    str
        ``"cpu"`` or ``"gpu"``.

    Raises
    ------
    ParameterError
        For a value other than auto/cpu/gpu (in the argument or the variable).
    BackendError
        If the GPU is requested but not usable; the message says how to install it or how to fall
        back to the CPU.
    """
    if device is None:
        choice = requested_device()
        source = f"{DEVICE_ENV_VAR}=gpu"
    else:
        choice = _validate_device(device, "device")
        source = "device='gpu'"
    if choice == "cpu":
        return "cpu"
    available = gpu_available()
    if choice == "auto":
        return "gpu" if available else "cpu"
    if not available:
        raise BackendError(
            f"{source} was requested but no usable GPU was found: {_GPU_INSTALL_HINT}. "
            f"To run on the CPU instead, set {DEVICE_ENV_VAR}=cpu (or auto, which uses the GPU "
            "only when one works) or pass device='cpu'."
        )
    return "gpu"


def device_array_module(device: str | None = None) -> types.ModuleType:
    """Return the array module for a device: ``numpy`` for the CPU, ``cupy`` for the GPU.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"} or None
        See :func:`resolve_device`.

    Returns
    -------
    module
        ``numpy`` or ``cupy``.

    Raises
    ------
    ParameterError, BackendError
        See :func:`resolve_device`.
    """
    if resolve_device(device) == "cpu":
        return np
    return importlib.import_module("cupy")


def asarray(x: Any, *, device: str | None = None, dtype: Any = None) -> Any:
    """Move `x` to the resolved device (and optionally cast it).

    Parameters
    ----------
    x : array_like
        Host or device data. A dask array stays lazy: its blocks are moved when computed.
    device : {"auto", "cpu", "gpu"} or None
        See :func:`resolve_device`.
    dtype : numpy dtype-like, optional
        Cast to this dtype; None keeps the dtype.

    Returns
    -------
    numpy.ndarray or cupy.ndarray or dask.array.Array
        numpy for the CPU (a numpy input is not copied unless the dtype changes), cupy for the GPU.

    Raises
    ------
    ParameterError, BackendError
        See :func:`resolve_device`.
    """
    resolved = resolve_device(device)
    xp = np if resolved == "cpu" else importlib.import_module("cupy")
    if is_dask_array(x):
        out_dtype = np.dtype(x.dtype if dtype is None else dtype)
        return x.map_blocks(
            _move_block,
            resolved,
            out_dtype,
            dtype=out_dtype,
            meta=xp.empty((0,) * x.ndim, dtype=out_dtype),
        )
    return _move_block(x, resolved, dtype)


def _move_block(x: Any, resolved: str, dtype: Any) -> Any:
    if resolved == "cpu":
        return np.asarray(to_host(x), dtype=dtype)
    cupy = importlib.import_module("cupy")
    return cupy.asarray(x, dtype=dtype)


def describe_backend() -> dict[str, Any]:
    """Describe the compute environment, for benchmarks and provenance records. Never raises.

    Returns
    -------
    dict
        ``device`` ("cpu"/"gpu", or None if the request cannot be honoured), ``requested``
        (value of ``NAPARI_CALCIUM_DEVICE`` after validation, or the error text), ``gpu_available``,
        ``numpy``, ``scipy``, ``dask`` and ``cupy`` versions (None when not installed),
        ``cuda_runtime`` version and ``gpu_name`` (None without a usable GPU).
    """
    info: dict[str, Any] = {
        "device": None,
        "requested": None,
        "gpu_available": False,
        "numpy": np.__version__,
        "scipy": _version_of("scipy"),
        "dask": _version_of("dask"),
        "cupy": None,
        "cuda_runtime": None,
        "gpu_name": None,
    }
    try:
        info["requested"] = requested_device()
    except Exception as exc:
        info["requested"] = f"invalid: {exc}"
    try:
        info["gpu_available"] = bool(gpu_available())
    except Exception:
        info["gpu_available"] = False
    try:
        info["device"] = resolve_device()
    except Exception:
        info["device"] = None
    try:
        cupy = sys.modules.get("cupy")
        if cupy is None and importlib.util.find_spec("cupy") is not None:
            cupy = importlib.import_module("cupy")
        if cupy is not None:
            info["cupy"] = str(getattr(cupy, "__version__", "unknown"))
    except Exception:
        cupy = None
    if cupy is not None and info["gpu_available"]:
        with contextlib.suppress(Exception):
            info["cuda_runtime"] = int(cupy.cuda.runtime.runtimeGetVersion())
        with contextlib.suppress(Exception):
            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            name = props["name"]
            info["gpu_name"] = name.decode() if isinstance(name, bytes) else str(name)
    return info


def _version_of(module_name: str) -> str | None:
    try:
        module = importlib.import_module(module_name)
    except Exception:
        return None
    return str(getattr(module, "__version__", "unknown"))

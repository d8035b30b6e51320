"""Description of the machine and software the benchmarks run on.

:func:`machine_info` collects CPU model, cores (logical and usable by this process), RAM, OS,
Python, the versions of :data:`VERSION_PACKAGES` (plus a benchmark's ``EXTRA_PACKAGES``),
napari-calcium's compute backend, the thread-count environment variables and, when threadpoolctl
is installed, the BLAS/OpenMP pools; :func:`format_machine_info` renders it as the header lines
that ``benchmarks/run.py`` prints above the table.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from _harness.peers import optional_import

__all__ = [
    "VERSION_PACKAGES",
    "format_machine_info",
    "machine_info",
]

#: distributions whose versions go into the machine header
VERSION_PACKAGES = ("numpy", "scipy", "dask", "numba", "tifffile", "napari-calcium")


def _cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (x86 ``model name``, ARM fallbacks), else platform."""
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text(errors="replace")
        for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
            for line in text.splitlines():
                name, sep, value = line.partition(":")
                if sep and name.strip() == key and value.strip():
                    return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def _total_ram_bytes() -> int | None:
    """Total physical memory in bytes (/proc/meminfo MemTotal, else sysconf), None if unknown."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def _os_name() -> str:
    """``platform.platform()`` plus the distribution's PRETTY_NAME where /etc/os-release has one."""
    name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip().strip(chr(34))} ({name})"
    return name


def _version(dist: str) -> str | None:
    """Installed version of distribution `dist`, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        module = optional_import(dist.replace("-", "_"))
        return None if module is None else str(getattr(module, "__version__", "unknown"))


def _usable_cores() -> int | None:
    """Cores this process may run on (``sched_getaffinity``), None where that is unavailable."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    try:
        return len(getaffinity(0))
    except OSError:
        return None


def _threadpools() -> list[dict[str, Any]] | None:
    """threadpoolctl's description of the BLAS/OpenMP pools, None when it is not installed."""
    threadpoolctl = optional_import("threadpoolctl")
    if threadpoolctl is None:
        return None
    try:
        pools = threadpoolctl.threadpool_info()
    except Exception:  # a broken native library must not stop the benchmark
        return None
    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer")
    return [{k: pool.get(k) for k in keys if k in pool} for pool in pools]


def machine_info(extra_packages: Iterable[str] = ()) -> dict[str, Any]:
    """Describe the machine and software the benchmarks run on. Never raises.

    Parameters
    ----------
    extra_packages : iterable of str, optional
        More distribution names whose versions to report (e.g. peer libraries of one benchmark).

    Returns
    -------
    dict
        ``cpu_model`` (str), ``logical_cores`` (``os.cpu_count()``), ``usable_cores``
        (``len(os.sched_getaffinity(0))``, None off Linux), ``ram_bytes`` (int or None), ``os``,
        ``python`` (version and implementation), ``versions`` (distribution -> version or None),
        ``backend`` (:func:`napari_calcium.core._backend.describe_backend`, or an ``error`` entry),
        ``thread_env`` (``OMP_NUM_THREADS`` and friends, only those set), ``numba_threads`` and,
        when threadpoolctl is installed, ``threadpools``.
    """
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": _usable_cores(),
        "ram_bytes": _total_ram_bytes(),
        "os": _os_name(),
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "versions": {name: _version(name) for name in (*VERSION_PACKAGES, *extra_packages)},
    }
    try:
        from napari_calcium.core._backend import describe_backend

        info["backend"] = describe_backend()
    except Exception as exc:
        info["backend"] = {"error": f"{type(exc).__name__}: {exc}"}
    env_names = (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS",
        "NAPARI_CALCIUM_DEVICE",
    )
    info["thread_env"] = {k: os.environ[k] for k in env_names if k in os.environ}
    numba = optional_import("numba")
    info["numba_threads"] = getattr(getattr(numba, "config", None), "NUMBA_NUM_THREADS", None)
    pools = _threadpools()
    if pools is not None:
        info["threadpools"] = pools
    return info


def format_machine_info(info: dict[str, Any]) -> str:
    """Render :func:`machine_info` as a few human-readable lines.

    Parameters
    ----------
    info : dict
        As returned by :func:`machine_info`.

    Returns
    -------
    str
        Lines ``cpu:``, ``os:``, ``python:``, ``versions:``, ``backend:`` (and ``threads:`` /
        ``threadpools:`` when there is something to say), without a trailing newline.
    """
    ram = info.get("ram_bytes")
    ram_text = f"{ram / 2**30:.1f} GiB RAM" if ram else "RAM unknown"
    usable = info.get("usable_cores")
    cores = f"{info.get('logical_cores')} logical cores"
    if usable is not None:
        cores += f" ({usable} usable by this process)"
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in info["versions"].items())
    backend = info.get("backend", {})
    if "error" in backend:
        backend_text = backend["error"]
    else:
        backend_text = (
            f"device={backend.get('device')} (requested {backend.get('requested')}), "
            f"gpu_available={backend.get('gpu_available')}, "
            f"cupy {backend.get('cupy') or 'not installed'}"
        )
        if backend.get("gpu_name"):
            backend_text += f", GPU {backend['gpu_name']} (CUDA {backend.get('cuda_runtime')})"
    lines = [
        f"cpu:      {info.get('cpu_model')}, {cores}, {ram_text}",
        f"os:       {info.get('os')}",
        f"python:   {info.get('python')}",
        f"versions: {versions}",
        f"backend:  {backend_text}",
    ]
    threads = dict(info.get("thread_env") or {})
    if info.get("numba_threads") is not None:
        threads["numba threads"] = info["numba_threads"]
    if threads:
        lines.append("threads:  " + ", ".join(f"{k}={v}" for k, v in threads.items()))
    for pool in info.get("threadpools") or []:
        lines.append(
            f"threadpool: {pool.get('internal_api')} {pool.get('version')} "
            f"({pool.get('user_api')}, {pool.get('num_threads')} threads)"
        )
    return "\n".join(lines)

"""Small shared harness for the benchmark scripts in ``benchmarks/``.

A benchmark module ``benchmarks/bench_<name>.py`` exposes ``run(quick: bool) -> list[Row]``;
``benchmarks/run.py`` finds the modules, prints :func:`machine_info` and a :class:`Table` of all
rows, and can write everything as JSON. This module holds the pieces the benchmarks share:

* :func:`machine_info` / :func:`format_machine_info`: CPU, cores, RAM, OS, library versions,
  napari-calcium's compute backend (and threadpoolctl's view of BLAS/OpenMP pools if installed);
* :func:`time_call`: best and median wall time of repeated calls (``time.perf_counter``), with an
  optional peak-RSS sampler;
* :class:`RssSampler`, :func:`max_rss_bytes`, :func:`traced_peak_bytes`: memory helpers;
* :class:`Row` and :class:`Table`: one result line each, printed as aligned text or markdown;
* :func:`optional_import`, :func:`skipped_row`, :func:`add_relative_notes`: for running peer
  libraries (scipy, CalSciPy, suite2p, OASIS, ...) side by side when they are installed.

Speed is measured here, never asserted in the test suite.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
import tracemalloc
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Row",
    "RssSampler",
    "Table",
    "Timing",
    "add_relative_notes",
    "current_rss_bytes",
    "format_machine_info",
    "machine_info",
    "max_rss_bytes",
    "optional_import",
    "skipped_row",
    "time_call",
    "traced_peak_bytes",
    "write_json",
]

#: distributions whose versions go into the machine header
VERSION_PACKAGES = ("numpy", "scipy", "dask", "numba", "tifffile", "napari-calcium")

MB = 1e6  # decimal megabyte: throughput columns are in MB/s (10**6 bytes per second)
MiB = 2**20


# --------------------------------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------
def max_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes (``getrusage`` ``ru_maxrss``).

    Returns
    -------
    int
        The process-wide high-water mark; it never goes down, so it only describes a single call
        when that call is the largest the process made. Use :class:`RssSampler` for one call.

    Notes
    -----
    ``ru_maxrss`` is in KiB on Linux and in bytes on macOS.
    """
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value if sys.platform == "darwin" else value * 1024)


def current_rss_bytes() -> int | None:
    """Current resident set size in bytes (from ``/proc/self/statm``), None where unavailable.

    Returns
    -------
    int or None
        Resident pages times the page size.
    """
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """Context manager that samples this process's RSS in a thread and keeps the peak.

    Unlike ``ru_maxrss`` it describes one block of code: ``peak_delta_bytes`` is the largest RSS
    seen while the block ran minus the RSS when it started (so it includes the block's result
    while it is alive). Sampling misses spikes shorter than `interval_s`.

    Parameters
    ----------
    interval_s : float, optional
        Time between samples in seconds.

    Attributes
    ----------
    start_bytes, peak_bytes, peak_delta_bytes : int or None
        RSS at entry, the largest sample, and their difference; None where the RSS cannot be read
        (no ``/proc``), in which case ``peak_bytes`` falls back to ``ru_maxrss``.

    Examples
    --------
    >>> with RssSampler() as rss:
    ...     block = bytearray(50 * 2**20)
    >>> rss.peak_delta_bytes is None or rss.peak_delta_bytes >= 0
    True
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = float(interval_s)
        self.start_bytes: int | None = None
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def peak_delta_bytes(self) -> int | None:
        """Peak RSS during the block minus RSS at its start (bytes), None if not measurable."""
        if self.start_bytes is None or self.peak_bytes is None:
            return None
        return max(0, self.peak_bytes - self.start_bytes)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = current_rss_bytes()
            if rss is not None and (self.peak_bytes is None or rss > self.peak_bytes):
                self.peak_bytes = rss

    def __enter__(self) -> RssSampler:
        self.start_bytes = current_rss_bytes()
        self.peak_bytes = self.start_bytes
        if self.start_bytes is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            rss = current_rss_bytes()  # the block's result is usually still alive here
            if rss is not None and self.peak_bytes is not None:
                self.peak_bytes = max(self.peak_bytes, rss)
        else:
            self.peak_bytes = max_rss_bytes()


def traced_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak Python-heap + numpy allocation of one call of `fn`, measured with ``tracemalloc``.

    numpy reports its data buffers to ``tracemalloc``, so this counts arrays (and the call's
    result) but not memory that native libraries allocate themselves (FFTW/pocketfft plans, BLAS,
    numba or CUDA buffers). tracemalloc slows Python-level code down: never time under it.

    Parameters
    ----------
    fn : callable
        Called once with no arguments; its result is dropped before returning.

    Returns
    -------
    int
        Peak traced bytes during the call, above what was traced before it.
    """
    gc.collect()
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if not already:
            tracemalloc.stop()
    return max(0, peak - before)


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Wall times of repeated calls.

    Attributes
    ----------
    times : tuple of float
        Seconds of each timed call (``time.perf_counter``), warm-up calls excluded.
    peak_rss_delta_bytes : int or None
        With ``time_call(..., memory=True)``: the largest RSS increase over any timed call
        (see :class:`RssSampler`); otherwise None.
    """

    times: tuple[float, ...]
    peak_rss_delta_bytes: int | None = None

    @property
    def best(self) -> float:
        """Fastest call in seconds: the least disturbed by other load on the machine."""
        return min(self.times)

    @property
    def median(self) -> float:
        """Median call in seconds."""
        return statistics.median(self.times)

    @property
    def repeat(self) -> int:
        """Number of timed calls."""
        return len(self.times)


def time_call(
    fn: Callable[[], Any],
    *,
    repeat: int = 3,
    warmup: int = 1,
    memory: bool = False,
) -> Timing:
    """Time `fn()` `repeat` times after `warmup` untimed calls.

    Parameters
    ----------
    fn : callable
        Called with no arguments (wrap arguments with ``functools.partial`` or a lambda). Its
        result is dropped after each call, before the next one starts, so one result at a time is
        alive. To time a lazy computation, let `fn` call ``.compute()``.
    repeat : int, optional
        Number of timed calls (at least 1).
    warmup : int, optional
        Untimed calls first: JIT compilation (numba), FFT plans, imports and caches.
    memory : bool, optional
        Sample the RSS during each timed call (:class:`RssSampler`) and report the largest
        increase in ``Timing.peak_rss_delta_bytes``. The sampling thread costs little.

    Returns
    -------
    Timing
        ``.best`` and ``.median`` seconds, ``.times``, ``.peak_rss_delta_bytes``.

    Examples
    --------
    >>> t = time_call(lambda: sum(range(1000)), repeat=3, warmup=1)
    >>> t.repeat, t.best <= t.median
    (3, True)
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    for _ in range(max(0, int(warmup))):
        result = fn()
        del result
    times: list[float] = []
    peak: int | None = None
    for _ in range(int(repeat)):
        gc.collect()
        sampler = RssSampler() if memory else contextlib.nullcontext()
        with sampler:
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
        del result
        times.append(elapsed)
        if isinstance(sampler, RssSampler) and sampler.peak_delta_bytes is not None:
            peak = max(peak or 0, sampler.peak_delta_bytes)
    return Timing(times=tuple(times), peak_rss_delta_bytes=peak)


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One benchmark result: one implementation of one task at one size.

    Attributes
    ----------
    benchmark : str
        What is measured, e.g. ``"simulate_recording eager"`` or ``"median filter 3x3x3"``. Rows
        of different implementations of the same task share it (and `size`).
    implementation : str
        Who does it: ``"napari-calcium"``, ``"scipy"``, ``"CalSciPy"``, ``"suite2p"``, ...
    size : str
        Problem size in words, e.g. ``"1000x256x256, 50 cells"``.
    timing : Timing or None
        None for a row that did not run (see `status`).
    work : dict of str to float
        Amount of work per call, unit -> amount, e.g. ``{"frames": 1000, "MB": 131.1}``; the
        throughput column shows ``amount / best seconds`` as ``unit/s`` for each entry. Empty when
        a rate means nothing (e.g. building a lazy graph).
    notes : str
        Free text (parameters, peak memory, relative speed, ...).
    status : str
        ``"ok"``, ``"skipped"`` (e.g. a peer library is not installed) or ``"error"``.
    params : dict
        Machine-readable parameters for the JSON output.
    """

    benchmark: str
    implementation: str
    size: str
    timing: Timing | None = None
    work: dict[str, float] = field(default_factory=dict)
    notes: str = ""
    status: str = "ok"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        """Best time in seconds, None if the row did not run."""
        return None if self.timing is None else self.timing.best

    def throughput(self) -> dict[str, float]:
        """``{"<unit>/s": rate}`` for each entry of `work` (empty if the row did not run)."""
        best = self.seconds
        if not best:
            return {}
        return {f"{unit}/s": amount / best for unit, amount in self.work.items()}

    def add_note(self, text: str) -> None:
        """Append `text` to `notes`, separated by ``"; "``."""
        self.notes = f"{self.notes}; {text}" if self.notes else text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (times in seconds, throughput per unit)."""
        out: dict[str, Any] = {
            "benchmark": self.benchmark,
            "implementation": self.implementation,
            "size": self.size,
            "status": self.status,
            "notes": self.notes,
            "work": dict(self.work),
            "params": _jsonable(self.params),
        }
        if self.timing is not None:
            out.update(
                best_s=self.timing.best,
                median_s=self.timing.median,
                times_s=list(self.timing.times),
                repeat=self.timing.repeat,
                peak_rss_delta_bytes=self.timing.peak_rss_delta_bytes,
                throughput=self.throughput(),
            )
        return out


def _jsonable(value: Any) -> Any:
    """Best-effort conversion of numpy scalars, tuples, paths ... into JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        with contextlib.suppress(Exception):
            return item()
    return str(value)


def skipped_row(benchmark: str, implementation: str, size: str, reason: str) -> Row:
    """A row for an implementation that could not run (e.g. a peer library is not installed).

    Parameters
    ----------
    benchmark, implementation, size : str
        As in :class:`Row`.
    reason : str
        Why it did not run; shown in the notes column.

    Returns
    -------
    Row
        With ``status="skipped"`` and no timing.
    """
    return Row(benchmark, implementation, size, notes=f"skipped: {reason}", status="skipped")


def optional_import(name: str) -> types.ModuleType | None:
    """Import module `name`, or return None when it (or one of its dependencies) is missing.

    Parameters
    ----------
    name : str
        Importable module name, e.g. ``"suite2p"`` or ``"CalSciPy"``.

    Returns
    -------
    module or None
    """
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, or a peer whose import fails for its own reasons
        return None


def add_relative_notes(rows: Sequence[Row], reference: str) -> None:
    """Note each row's speed relative to the `reference` implementation of the same task.

    Rows are grouped by ``(benchmark, size)``; in each group with a timed `reference` row, every
    other timed row gets a note like ``"2.3x faster than scipy"`` or ``"1.5x slower than scipy"``.

    Parameters
    ----------
    rows : sequence of Row
        Modified in place.
    reference : str
        The ``implementation`` to compare with.
    """
    refs = {
        (r.benchmark, r.size): r.seconds
        for r in rows
        if r.implementation == reference and r.seconds
    }
    for row in rows:
        ref = refs.get((row.benchmark, row.size))
        if row.implementation == reference or not ref or not row.seconds:
            continue
        ratio = ref / row.seconds
        if ratio >= 1:
            row.add_note(f"{ratio:.2g}x faster than {reference}")
        else:
            row.add_note(f"{1 / ratio:.2g}x slower than {reference}")


# --------------------------------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------------------------------
def _format_seconds(timing: Timing | None) -> str:
    if timing is None:
        return "-"
    best = timing.best
    text = f"{best:.3g}" if best >= 1e-3 else f"{best:.2e}"
    return f"{text} (best of {timing.repeat})"


def _format_rate(value: float, unit: str) -> str:
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


class Table:
    """Benchmark rows printed as an aligned plain-text or a markdown table.

    Columns: benchmark, implementation, size, seconds (best of N), throughput, notes.

    Parameters
    ----------
    rows : iterable of Row, optional
        Initial rows; more with :meth:`add` / :meth:`extend`.

    Examples
    --------
    >>> t = Table([Row("sum", "python", "1000 ints", Timing((0.5, 0.6)), {"items": 1000})])
    >>> print(t.render(markdown=True).splitlines()[2])
    | sum | python | 1000 ints | 0.5 (best of 2) | 2,000 items/s |  |
    """

    columns = (
        "benchmark",
        "implementation",
        "size",
        "seconds (best of N)",
        "throughput",
        "notes",
    )

    def __init__(self, rows: Iterable[Row] = ()) -> None:
        self.rows: list[Row] = list(rows)

    def add(self, row: Row) -> None:
        """Append one row."""
        self.rows.append(row)

    def extend(self, rows: Iterable[Row]) -> None:
        """Append several rows."""
        self.rows.extend(rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def cells(self) -> list[tuple[str, ...]]:
        """Each row's six cells as strings, in :attr:`columns` order."""
        out = []
        for row in self.rows:
            rates = row.throughput()
            throughput = ", ".join(_format_rate(v, u) for u, v in rates.items()) or "-"
            if row.timing is None:
                throughput = "-"
            out.append(
                (
                    row.benchmark,
                    row.implementation,
                    row.size,
                    _format_seconds(row.timing),
                    throughput,
                    row.notes,
                )
            )
        return out

    def render(self, *, markdown: bool = False) -> str:
        """The table as text.

        Parameters
        ----------
        markdown : bool, optional
            A GitHub-flavoured markdown table (``|`` separated, pipes in cells escaped) instead
            of space-aligned plain text.

        Returns
        -------
        str
            Header, separator and one line per row, without a trailing newline.
        """
        body = self.cells()
        if markdown:
            lines = ["| " + " | ".join(self.columns) + " |"]
            lines.append("|" + "|".join("---" for _ in self.columns) + "|")
            for cells in body:
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            return "\n".join(lines)
        widths = [len(c) for c in self.columns]
        for cells in body:
            widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]
        numeric = {3, 4}  # right-align numbers

        def line(cells: Sequence[str]) -> str:
            parts = [
                c.rjust(w) if i in numeric else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  ".join(parts).rstrip()

        lines = [line(self.columns), "  ".join("-" * w for w in widths)]
        lines.extend(line(cells) for cells in body)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def write_json(path: str | os.PathLike[str], info: dict[str, Any], rows: Iterable[Row]) -> None:
    """Write the machine description and all rows to `path` as JSON.

    Parameters
    ----------
    path : path-like
        Output file (parent folders are created).
    info : dict
        :func:`machine_info`.
    rows : iterable of Row
        The results.
    """
    document = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "machine": _jsonable(info),
        "rows": [r.to_dict() for r in rows],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

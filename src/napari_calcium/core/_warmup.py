"""Compile the numba kernels before the first real call (issue 16: first use is slow and silent).

numba compiles a kernel the first time it meets a new argument signature and, with
``cache=True``, writes the machine code next to the module (``__pycache__``, or
``NUMBA_CACHE_DIR``) so that later processes load it in milliseconds. Only the first run after
installing napari-calcium pays, but it pays 10-15 s of compilation in all, spread over the steps.

:func:`warm_up` runs every step with its default parameters (those of the napari widgets and of
the pipeline's default configuration) on a small made-up movie, once per movie dtype in
:data:`MOVIE_DTYPES`, so that exactly the signatures of the real calls are compiled and cached;
once the cache holds them it costs ~1 s (loading). :func:`start_warm_up` does it in the
background, by default in a separate low-priority process: it holds neither the GIL of the
caller (a napari viewer stays responsive) nor numba's compiler lock (a step started meanwhile
compiles what it still needs at once, instead of queueing behind the warm-up), and it ends with
the process that started it.

Run ``python -m napari_calcium.core._warmup [STEP ...]`` to fill the cache by hand (after
``pip install``, in a Dockerfile); ``NAPARI_CALCIUM_WARMUP=0`` turns :func:`start_warm_up` off.
"""

from __future__ import annotations

import atexit
import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "MOVIE_DTYPES",
    "PIPELINE_STEPS",
    "STEPS",
    "WarmUp",
    "kernel_dispatchers",
    "start_warm_up",
    "warm_up",
]

#: the steps warmed, in the order of an analysis (napari widgets and the pipeline)
STEPS = (
    "motion",
    "filter",
    "summary",
    "detect",
    "neuropil",
    "extract",
    "dff",
    "deconvolve",
    "events",
)

#: the steps the pipeline runs with its default configuration (``napari-calcium run``)
PIPELINE_STEPS = ("summary", "detect", "extract", "dff", "deconvolve", "events")

#: movie dtypes warmed for the movie steps: raw data (uint16) and processed movies (float32)
MOVIE_DTYPES = ("uint16", "float32")

#: widget titles and other names accepted by `first` -> the step they run
_ALIASES = {
    "motion correction": "motion",
    "filter movie": "filter",
    "summary image": "summary",
    "summary images": "summary",
    "detect rois": "detect",
    "neuropil masks": "neuropil",
    "extract traces": "extract",
    "df/f": "dff",
    "spikes": "deconvolve",
    "find events": "events",
}

_FRAME_RATE_HZ = 30.0
_ENV = "NAPARI_CALCIUM_WARMUP"


# --------------------------------------------------------------------------------------------------
# Tiny inputs (a few hundred kB; the kernels do not care about the size, only the signature)
# --------------------------------------------------------------------------------------------------
@functools.cache
def _inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 300 x 64 x 64 uint16 movie of 4 blobs that fire, their labels and calcium (dF/F).

    Made with numpy here (50 ms) rather than by ``simulate_recording``, whose imports alone
    take a second, and so that no step's inputs need another step's kernels (a warm-up racing a
    pipeline must not compile the pipeline's first steps to reach its last ones).
    """
    rng = np.random.default_rng(0)
    n, side = 300, 64
    yy, xx = np.mgrid[:side, :side]
    labels = np.zeros((side, side), np.int32)
    footprints = []
    for k, (cy, cx) in enumerate(((16, 16), (16, 46), (44, 20), (46, 48)), start=1):
        r2 = (yy - cy) ** 2 + (xx - cx) ** 2
        labels[r2 <= 25] = k
        footprints.append(np.exp(-r2 / 18.0))
    t = np.arange(n)
    calcium = np.zeros((len(footprints), n))
    for row in calcium:
        for spike in rng.choice(n - 10, 8, replace=False):
            row[spike:] += 2.0 * np.exp(-(t[spike:] - spike) / 10.0)
    clean = 200.0 + 300.0 * np.einsum("kt,kyx->tyx", 1.0 + calcium, np.array(footprints))
    return rng.poisson(clean).astype(np.uint16), labels, calcium


def _movie(dtype: str) -> np.ndarray:
    return _inputs()[0].astype(dtype, copy=False)


@functools.cache
def _rois() -> Any:
    from .rois.roiset import RoiSet

    return RoiSet.from_label_image(_inputs()[1])


@functools.cache
def _traces() -> np.ndarray:
    """Neuropil-corrected traces as :func:`extract_traces` makes them: float32 (rois, frames)."""
    calcium = _inputs()[2]
    noise = np.random.default_rng(1).normal(0.0, 3.0, calcium.shape)
    return np.ascontiguousarray(100.0 * (1.0 + calcium) + noise, dtype=np.float32)


@functools.cache
def _dff() -> np.ndarray:
    """dF/F as :func:`compute_dff` makes it: float32 (rois, frames)."""
    calcium = _inputs()[2]
    noise = np.random.default_rng(2).normal(0.0, 0.05, calcium.shape)
    return np.ascontiguousarray(calcium + noise, dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# One function per step: the calls the widgets and the pipeline make, with their defaults
# --------------------------------------------------------------------------------------------------
def _motion(dtype: str) -> None:
    from .movie.motion.rigid import motion_correct

    motion_correct(_movie(dtype), max_shift_px=10.0, n_template_iterations=2)
    # piecewise-rigid (NoRMCorre patches): its patch extraction and warp kernels
    motion_correct(
        _movie(dtype), max_shift_px=10.0, n_template_iterations=2, piecewise=True,
        patch_px=32, overlap_px=8,
    )  # fmt: skip


def _filter(dtype: str) -> None:
    from .movie.filters import median_filter

    median_filter(_movie(dtype), size=3, axes="tyx")


def _summary(dtype: str) -> None:
    from .movie.projections import projections
    from .movie.summary_images import correlation_image, correlation_pnr

    movie = _movie(dtype)
    correlation_image(movie, neighbours=8)
    projections(movie, kinds=("mean", "max", "std"))
    correlation_pnr(movie, neighbours=8)


def _detect(dtype: str) -> None:
    from .rois import quality
    from .rois.detection.detect import detect_rois

    movie = _movie(dtype)
    rois = detect_rois(movie, frame_rate_hz=_FRAME_RATE_HZ, pixel_size_um=1.0)
    if not len(rois):  # the ROIs of the truth then, so that scoring compiles all the same
        rois = _rois()
    quality.evaluate_rois(movie, rois, frame_rate_hz=_FRAME_RATE_HZ)


def _neuropil(dtype: str) -> None:
    from .rois.neuropil import neuropil_label_preview, neuropil_masks

    rois = _rois()
    neuropil_label_preview(rois, neuropil_masks(rois))


def _extract(dtype: str) -> None:
    from .traces.extraction import extract_traces

    extract_traces(_movie(dtype), _rois(), frame_rate_hz=_FRAME_RATE_HZ)


def _dff_step(dtype: str) -> None:
    from .traces.dff import compute_dff, snr, standardized_noise

    res = compute_dff(_traces(), frame_rate_hz=_FRAME_RATE_HZ)
    snr(res.dff)
    standardized_noise(res.dff, frame_rate_hz=_FRAME_RATE_HZ)


def _deconvolve(dtype: str) -> None:
    from .spikes.deconvolution.api import deconvolve

    dff = _dff()
    deconvolve(dff, frame_rate_hz=_FRAME_RATE_HZ)  # the widget: oasis-ar1, τ estimated
    deconvolve(dff, frame_rate_hz=_FRAME_RATE_HZ, indicator="GCaMP6f")  # the pipeline


def _events(dtype: str) -> None:
    from .spikes.events import event_counts, identify_events

    event_counts(identify_events(_dff(), frame_rate_hz=_FRAME_RATE_HZ))


#: step -> (function, whether it depends on the movie dtype)
_STEP_FUNCS: dict[str, tuple[Callable[[str], None], bool]] = {
    "motion": (_motion, True),
    "filter": (_filter, True),
    "summary": (_summary, True),
    "detect": (_detect, True),
    "neuropil": (_neuropil, False),
    "extract": (_extract, True),
    "dff": (_dff_step, False),
    "deconvolve": (_deconvolve, False),
    "events": (_events, False),
}


def _resolve(steps: Iterable[str] | None, first: str | None = None) -> list[str]:
    """Step names in run order, `first` (a step or a widget title) moved to the front.

    ``first="pipeline"`` puts the pipeline's steps first, last step first: a pipeline started
    meanwhile compiles its first steps itself while the warm-up fills the cache for its last.
    """
    names = list(STEPS) if steps is None else [str(s) for s in steps]
    unknown = [s for s in names if s not in _STEP_FUNCS]
    if unknown:
        raise ValueError(f"unknown warm-up step(s) {unknown}; known: {', '.join(STEPS)}")
    if first is not None:
        key = str(first).strip().lower()
        key = _ALIASES.get(key, key)
        front = list(reversed(PIPELINE_STEPS)) if key in ("pipeline", "run pipeline") else [key]
        front = [name for name in front if name in names]
        names = front + [name for name in names if name not in front]
    return names


def warm_up(
    steps: Iterable[str] | None = None,
    *,
    dtypes: Sequence[str] = MOVIE_DTYPES,
    first: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, float]:
    """Compile (or load from numba's cache) the kernels of the default steps, here and now.

    Parameters
    ----------
    steps : iterable of str, optional
        Names from :data:`STEPS` (default: all of them, in that order).
    dtypes : sequence of str, optional
        Movie dtypes for the movie steps (default :data:`MOVIE_DTYPES`).
    first : str, optional
        A step (or a widget title such as ``"detect ROIs"``) to warm before the others.
    should_stop : callable, optional
        Checked between steps; True stops the warm-up early.

    Returns
    -------
    dict of str to float
        Seconds spent per step (compiling, or loading from the cache).

    Raises
    ------
    ValueError
        For an unknown step name.

    Examples
    --------
    >>> seconds = warm_up(["events"])
    >>> list(seconds)
    ['events']
    """
    seconds: dict[str, float] = {}
    for name in _resolve(steps, first):
        if should_stop is not None and should_stop():
            break
        func, per_dtype = _STEP_FUNCS[name]
        start = time.perf_counter()
        for dtype in dtypes if per_dtype else ("float32",):
            func(str(np.dtype(dtype)))
        seconds[name] = time.perf_counter() - start
        time.sleep(0)  # let a thread waiting for numba's compiler lock take it
    return seconds


def kernel_dispatchers() -> dict[str, Any]:
    """Every numba dispatcher of napari-calcium's CPU kernels, by ``module.name``.

    Imports the kernel modules (not napari). The closures built on first use
    (``_shift_kernel()``, ``_contract_kernels()``, ``_profile_kernel()``, the piecewise
    ``_warp_kernel()`` and ``_extract_kernel()``) are included.
    """
    import importlib

    from numba.core.registry import CPUDispatcher

    modules = (
        "napari_calcium.core.movie._filter_kernels",
        "napari_calcium.core.movie.summary_images",
        "napari_calcium.core.movie.motion.shifting",
        "napari_calcium.core.movie.motion.phase_correlation",
        "napari_calcium.core.rois._neuropil_kernels",
        "napari_calcium.core.traces._baseline_kernels",
        "napari_calcium.core.traces._extraction_kernels",
        "napari_calcium.core.traces._processing_kernels",
        "napari_calcium.core.spikes.deconvolution._oasis_kernels",
        "napari_calcium.core.spikes.deconvolution._oasis_ar2_kernels",
        "napari_calcium.core.spikes.deconvolution._constrained_kernels",
    )
    found: dict[str, Any] = {}
    for name in modules:
        module = importlib.import_module(name)
        short = name.removeprefix("napari_calcium.core.")
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == name:
                found[f"{short}.{value.py_func.__name__}"] = value
    from .movie.motion.phase_correlation import _contract_kernels, _profile_kernel
    from .movie.motion.piecewise import _extract_kernel
    from .movie.motion.shifting import _shift_kernel
    from .movie.motion.warp import _warp_kernel

    found["movie.motion.shifting.kernel"] = _shift_kernel()
    found["movie.motion.phase_correlation.profile"] = _profile_kernel()
    found["movie.motion.warp.warp"] = _warp_kernel()
    found["movie.motion.piecewise.extract"] = _extract_kernel()
    ky, kx = _contract_kernels()
    found["movie.motion.phase_correlation.contract_ky"] = ky
    found["movie.motion.phase_correlation.contract_kx"] = kx
    return found


# --------------------------------------------------------------------------------------------------
# In the background
# --------------------------------------------------------------------------------------------------
class WarmUp:
    """A warm-up running in the background (a child process or a daemon thread).

    Attributes
    ----------
    steps : list of str
        The steps it warms, in order.
    mode : {"process", "thread", "off"}
    error : BaseException or None
        What a thread warm-up raised, or why no process could start (then ``mode == "off"``);
        a process's own errors go nowhere (it only fills the cache).
    seconds : dict of str to float
        Per step, filled by a thread warm-up as it goes.
    """

    def __init__(self, steps: list[str], mode: str) -> None:
        self.steps, self.mode = steps, mode
        self.error: BaseException | None = None
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def done(self) -> bool:
        """Whether it has finished (or was never started)."""
        if self._process is not None:
            return self._process.poll() is not None
        if self._thread is not None:
            return not self._thread.is_alive()
        return True

    @property
    def returncode(self) -> int | None:
        """A process warm-up's exit status once it has finished (0: done), else None."""
        return None if self._process is None else self._process.poll()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until it has finished or `timeout` seconds passed; True when finished."""
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
        elif self._thread is not None:
            self._thread.join(timeout)
        return self.done

    def stop(self) -> None:
        """Stop early: kill the process, or let the thread end after its current step."""
        self._stop.set()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def _run_thread(self, dtypes: Sequence[str]) -> None:
        try:
            for name in self.steps:
                if self._stop.is_set():
                    return
                self.seconds.update(warm_up([name], dtypes=dtypes))
        except BaseException as exc:  # a background warm-up never raises into the caller
            self.error = exc

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"WarmUp({self.mode}, {state}, steps={self.steps})"


_lock = threading.Lock()
_current: WarmUp | None = None


def start_warm_up(
    steps: Iterable[str] | None = None,
    *,
    first: str | None = None,
    mode: str = "process",
    dtypes: Sequence[str] = MOVIE_DTYPES,
    low_priority: bool = True,
    force: bool = False,
) -> WarmUp:
    """Start :func:`warm_up` in the background, once per process; returns at once.

    Parameters
    ----------
    steps : iterable of str, optional
        As for :func:`warm_up` (default: every step).
    first : str, optional
        A step or widget title to warm first (e.g. the widget the user just opened).
    mode : {"process", "thread"}, optional
        "process" (default): ``python -m napari_calcium.core._warmup`` at a lower priority; it
        fills numba's on-disk cache, from which this process then loads each kernel on its first
        call. "thread": a daemon thread in this process (compiles here; a step called meanwhile
        waits for numba's compiler lock, then finds its kernels compiled).
    dtypes : sequence of str, optional
        Movie dtypes (default :data:`MOVIE_DTYPES`).
    low_priority : bool, optional
        Run the process at a lower CPU priority (default; ``nice 10``): right beside a viewer,
        it only takes idle cores. False lets it compete as an equal, e.g. beside a command-line
        run that leaves other cores idle (``first="pipeline"`` then warms the pipeline's last
        steps while the run compiles its first ones).
    force : bool, optional
        Start another even if one was started before in this process.

    Returns
    -------
    WarmUp
        The running (or earlier) warm-up. With ``NAPARI_CALCIUM_WARMUP=0`` in the environment,
        or numba's JIT disabled, nothing starts (``mode == "off"``).
    """
    global _current
    if mode not in ("process", "thread"):
        raise ValueError(f"mode must be 'process' or 'thread', got {mode!r}")
    names = _resolve(steps, first)
    with _lock:
        if _current is not None and not force:
            return _current
        off = os.environ.get(_ENV, "1").strip().lower() in ("0", "false", "no", "off")
        off = off or os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
        if off:
            _current = WarmUp(names, "off")
            return _current
        if mode == "process" and getattr(sys, "frozen", False):
            mode = "thread"  # a frozen app's executable cannot run `-m`
        job = WarmUp(names, mode)
        if mode == "process":
            nice = ["--nice"] if low_priority else []
            command = [sys.executable, "-m", __name__, *nice, "--dtypes", ",".join(dtypes)]
            kwargs: dict[str, Any] = {}
            if os.name == "nt" and low_priority:  # pragma: no cover - Windows
                kwargs["creationflags"] = subprocess.BELOW_NORMAL_PRIORITY_CLASS
            try:
                job._process = subprocess.Popen(
                    [*command, *names],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    **kwargs,
                )
            except OSError as exc:  # no process to be had: the steps compile on first use
                job.mode, job.error = "off", exc
            else:
                atexit.register(job.stop)  # never outlives this process (cache writes: atomic)
        else:
            job._thread = threading.Thread(
                target=job._run_thread,
                args=(tuple(dtypes),),
                name="napari-calcium-warm-up",
                daemon=True,
            )
            job._thread.start()
        _current = job
        return job


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m napari_calcium.core._warmup [--dtypes uint16,float32] [STEP ...]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m napari_calcium.core._warmup",
        description="Compile napari-calcium's numba kernels into numba's on-disk cache.",
    )
    parser.add_argument("steps", nargs="*", help=f"steps to warm (default all: {' '.join(STEPS)})")
    parser.add_argument("--dtypes", default=",".join(MOVIE_DTYPES), help="movie dtypes")
    parser.add_argument("--nice", action="store_true", help="run at a lower CPU priority")
    args = parser.parse_args(argv)
    if args.nice and hasattr(os, "nice"):
        os.nice(10)  # a background fill of the cache: the viewer and real work come first
    dtypes = [d for d in args.dtypes.split(",") if d]
    seconds = warm_up(args.steps or None, dtypes=dtypes)
    for name, s in seconds.items():
        print(f"{name:<12} {s:6.2f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover - the background process
    sys.exit(_main())

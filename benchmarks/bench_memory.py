"""The headless pipeline under a memory cap (issue 8): a movie 4x larger than the cap.

A synthetic recording is simulated lazily (``simulate_recording(lazy=True)``: 200 cells, 2 px of
motion, photon and read noise, 30 Hz) and written block by block with ``save_binary`` as a uint16
``.bin`` + ``.json``, so it is never whole in memory, not even in this process. Full size:
8,192 × 512 × 512 uint16 = 4 GiB on disk for a 1 GiB cap (``--quick``: 1,024 × 256 × 256 =
128 MiB for a 32 MiB nominal cap, which only shows the machinery: the interpreter alone is
bigger). ``run_pipeline`` then runs with every step enabled (motion correction, a 3 × 3 median
filter, projections and the correlation / PNR images, detection, extraction, dF/F,
deconvolution, events, export) in a child process, so the peak RSS is that run's alone.

The child samples its own RSS (``/proc/self/statm``, every 20 ms) around each step and reports
the peak per step, its RSS once the libraries are imported (the baseline) and
its own high-water mark at the end (``VmHWM``, the kernel's peak, which the sampler can only
underestimate; unlike ``ru_maxrss`` it does not carry the parent's peak across the exec).
Rows: one per step (wall seconds, peak RSS during the step), one for the whole
run with the movie size, the cap and whether the peak stayed under it.

Run it: ``python benchmarks/run.py --only memory [--quick]``, or
``python benchmarks/bench_memory.py [--quick] [--tmp DIR]`` (``--tmp``: the folder for the
temporary files, default the system's). The full size needs about 40 GB
of free disk in the temporary folder (the input, the motion-corrected and the filtered movies,
both float32) and 10-15 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _harness.memory import MiB, max_rss_bytes
from _harness.results import Row
from _harness.timing import Timing

IMPLEMENTATION = "napari-calcium"
GiB = 2**30

#: every step enabled: motion correction and a 3 x 3 median filter on top of the defaults
CONFIG: dict[str, Any] = {
    "motion": {"enabled": True},
    "filter": {"enabled": True, "kind": "median", "size": 3},
    "summary": {"correlation": True},
}

#: (frames, side, cells, cap bytes): the movie is 4x the cap
FULL = (8192, 512, 200, 1 * GiB)
QUICK = (1024, 256, 30, 32 * MiB)


def write_movie(path: Path, n_frames: int, side: int, cells: int, seed: int = 0) -> Path:
    """Simulate a recording lazily and write it block by block as a uint16 ``.bin`` + ``.json``.

    Parameters
    ----------
    path : pathlib.Path
        The ``.bin`` to write (its ``.json`` goes next to it).
    n_frames, side : int
        Movie shape ``(n_frames, side, side)``.
    cells : int
        Number of simulated somata.
    seed : int
        Simulation seed.

    Returns
    -------
    pathlib.Path
        The ``.bin``; its size is ``2 * n_frames * side * side`` bytes.
    """
    from napari_calcium import simulate_recording
    from napari_calcium.io.binary import save_binary

    rec = simulate_recording(
        n_frames=n_frames, shape=(side, side), n_neurons=cells, motion_px=2.0, seed=seed,
        lazy=True,
    )  # fmt: skip
    return save_binary(
        path, rec.movie, frame_rate_hz=rec.metadata["frame_rate_hz"],
        pixel_size_um=rec.metadata["pixel_size_um"], overwrite=True,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# the child process: run the pipeline, sample its own RSS per step
# --------------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakSampler:
    """Samples this process's RSS in a thread; ``take()`` returns and resets the peak (bytes)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, _rss_bytes())

    def take(self) -> int:
        peak, self.peak = max(self.peak, _rss_bytes()), _rss_bytes()
        return peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def child_main(movie: str, out_dir: str, config_json: str) -> dict[str, Any]:
    """Run the pipeline on `movie` in this process and measure its RSS per step.

    Parameters
    ----------
    movie, out_dir : str
        Input movie and output folder of :func:`napari_calcium.run_pipeline`.
    config_json : str
        The config as JSON.

    Returns
    -------
    dict
        ``baseline_bytes`` (RSS once napari-calcium and its step modules are imported),
        ``steps`` (name -> ``{"seconds", "peak_bytes"}``), ``maxrss_bytes`` (the kernel's peak
        RSS of this process), ``n_rois`` and ``seconds``.
    """
    from napari_calcium import run_pipeline
    from napari_calcium.core.movie.motion import rigid as registration  # noqa: F401
    from napari_calcium.pipeline import steps

    baseline = _rss_bytes()
    sampler = _PeakSampler()
    record: dict[str, dict[str, float]] = {}

    def wrap(name: str, func: Any) -> Any:
        def step(ctx: Any, source: Any) -> Any:
            sampler.take()
            t0 = time.perf_counter()
            try:
                return func(ctx, source)
            finally:
                record[name] = {"seconds": time.perf_counter() - t0, "peak_bytes": sampler.take()}

        return step

    for name, func in list(steps.STEPS.items()):
        steps.STEPS[name] = wrap(name, func)
    t0 = time.perf_counter()
    run = run_pipeline(movie, out_dir, json.loads(config_json), overwrite=True)
    seconds = time.perf_counter() - t0
    sampler.stop()
    return {
        "baseline_bytes": baseline,
        "steps": record,
        "maxrss_bytes": max_rss_bytes(),
        "n_rois": run.summary["n_rois"],
        "seconds": seconds,
    }


def run_child(movie: Path, out_dir: Path, config: dict[str, Any], timeout_s: float = 3600) -> dict:
    """:func:`child_main` in a fresh interpreter; its result dict (RSS in bytes)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(movie), str(out_dir),
           json.dumps(config)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pipeline child failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------------


def run(quick: bool = False, tmp_dir: str | None = None) -> list[Row]:
    """The pipeline on a movie 4x the memory cap; see the module docstring."""
    n_frames, side, cells, cap = QUICK if quick else FULL
    movie_bytes = 2 * n_frames * side * side
    size = f"{n_frames}x{side}x{side} uint16 ({movie_bytes / GiB:.2f} GiB), {cells} cells"
    work = {"frames": float(n_frames)}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nc-bench-memory-", dir=tmp_dir) as tmp:
        t0 = time.perf_counter()
        movie = write_movie(Path(tmp) / "movie.bin", n_frames, side, cells)
        write_s = time.perf_counter() - t0
        rows.append(
            Row("memory cap: write synthetic movie", IMPLEMENTATION, size, Timing((write_s,)),
                {"MB": movie_bytes / 1e6},
                notes=f"simulate_recording(lazy=True) + save_binary, "
                      f"{movie.stat().st_size / MiB:,.0f} MiB on disk")
        )  # fmt: skip
        result = run_child(movie, Path(tmp) / "results", CONFIG)
    base = result["baseline_bytes"]
    for name, step in result["steps"].items():
        rows.append(
            Row(f"memory cap step: {name}", IMPLEMENTATION, size, Timing((step["seconds"],)),
                work, notes=f"peak RSS {step['peak_bytes'] / MiB:,.0f} MiB "
                            f"(+{(step['peak_bytes'] - base) / MiB:,.0f} over baseline)")
        )  # fmt: skip
    peak = result["maxrss_bytes"]
    verdict = "under" if peak < cap else "OVER"
    rows.append(
        Row("memory cap: whole pipeline", IMPLEMENTATION, size, Timing((result["seconds"],)),
            work, notes=f"peak RSS {peak / MiB:,.0f} MiB {verdict} the cap of {cap / MiB:,.0f} "
                        f"MiB (movie = {movie_bytes / cap:.1f}x cap); baseline after imports "
                        f"{base / MiB:,.0f} MiB; {result['n_rois']} ROIs",
            params={"cap_bytes": cap, "peak_rss_bytes": peak, "baseline_bytes": base,
                    "movie_bytes": movie_bytes, "under_cap": peak < cap})
    )  # fmt: skip
    return rows


if __name__ == "__main__":  # python benchmarks/bench_memory.py [--quick] [--tmp DIR]
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child_main(*sys.argv[2:5])))
        sys.exit(0)
    from _harness.results import Table

    tmp_dir = sys.argv[sys.argv.index("--tmp") + 1] if "--tmp" in sys.argv else None
    print(Table(run(quick="--quick" in sys.argv, tmp_dir=tmp_dir)).render())

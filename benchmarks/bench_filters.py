"""Speed of the movie filters beside scipy.ndimage and CalSciPy, and an out-of-core run.

The movie is the generator's, uint16 512 x 512 (200 frames; ``--quick``: 24), in memory. Rows:

a. median 3x3x3: napari-calcium, ``scipy.ndimage.median_filter(size=3)``, CalSciPy
   ``images.filters.median_filter(window=(3, 3, 3))`` (its scipy fallback without CuPy);
b. gaussian sigma = 1 in t, y and x: napari-calcium (float32 out), scipy with ``output=float32``,
   CalSciPy ``images.filters.gaussian_filter(sigma=1)`` (uint16 out, like scipy's default);
c. median 3x3 per frame (``axes="yx"``): napari-calcium and scipy ``size=(1, 3, 3)``;
d. median 3x3x3 of the same movie as a dask array (32-frame chunks), lazy result computed;
e. blockwise seams: napari-calcium with ``block_frames=32`` and CalSciPy's block mode
   (``block_size=32, block_buffer=1``): the notes count frames that differ from the whole-array
   result;
f. out of core: a uint16 movie 4x larger than a memory cap (2 GiB vs 512 MiB; ``--quick``:
   1.5 GiB vs 384 MiB) on disk as ``.bin``, median 3x3x3 into a ``np.memmap`` ``.bin``, in a
   child process whose data segment is capped with ``setrlimit(RLIMIT_DATA)`` (file mappings are
   not counted by that limit, anonymous memory is); the notes give its peak RSS (``VmHWM``, file
   pages included) and peak anonymous RSS against the cap, and a spot check against scipy.

Throughput is frames and megabytes (10**6 bytes) of uint16 input per second. CalSciPy rows run
only where it imports (the bench venv, ``benchmarks/make_bench_venv.sh``); otherwise skipped.

Run it: ``python benchmarks/run.py --only filters [--quick]``.
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

import numpy as np
import scipy.ndimage as ndi

from _harness.memory import MiB
from _harness.peers import add_relative_notes, optional_import, skipped_row
from _harness.results import Row
from _harness.timing import Timing, time_call
from napari_calcium.core.movie.filters import gaussian_filter, median_filter
from napari_calcium.core.synthetic.recording import simulate_recording

NC = "napari-calcium"
EXTRA_PACKAGES = ("calscipy",)
SIDE = 512


def _movie(n_frames: int) -> np.ndarray:
    rec = simulate_recording(n_frames=n_frames, shape=SIDE, n_neurons=150, seed=0)
    return np.ascontiguousarray(np.asarray(rec.movie))


def _work(n_frames: int) -> dict[str, float]:
    return {"frames": n_frames, "MB": n_frames * SIDE * SIDE * 2 / 1e6}


def _calscipy_filters() -> Any:
    return optional_import("CalSciPy.images.filters")


def run(quick: bool = False) -> list[Row]:
    """Time the filters and their peers, then the out-of-core row.

    Parameters
    ----------
    quick : bool, optional
        24 frames, one repeat, and a smaller out-of-core movie, for a smoke run.

    Returns
    -------
    list of Row
        Rows (a) to (f) of the module docstring.
    """
    n = 24 if quick else 200
    movie = _movie(n)
    size = f"{n}x{SIDE}x{SIDE} uint16"
    ours, peers = (1, 1) if quick else (5, 1)
    cal = _calscipy_filters()
    no_cal = "CalSciPy not installed (use the bench venv: benchmarks/make_bench_venv.sh)"
    rows: list[Row] = []

    def add(bench: str, impl: str, fn: Any, repeat: int, notes: str = "", **kw: Any) -> None:
        timing = time_call(fn, repeat=repeat, warmup=1 if impl == NC else 0, **kw)
        rows.append(Row(bench, impl, size, timing, _work(n), notes=notes))

    # (a) median 3x3x3
    bench = "median 3x3x3"
    add(bench, NC, lambda: median_filter(movie, size=3), ours, "numba selection network")
    add(bench, "scipy", lambda: ndi.median_filter(movie, size=3), peers, "ndimage.median_filter")
    if cal is None:
        rows.append(skipped_row(bench, "CalSciPy", size, no_cal))
    else:
        add(bench, "CalSciPy", lambda: cal.median_filter(movie, window=(3, 3, 3)), peers)

    # (b) gaussian sigma 1, 3-D
    bench = "gaussian sigma=1 (t, y, x)"
    add(bench, NC, lambda: gaussian_filter(movie, sigma=1.0), ours, "float32 out")
    add(
        bench,
        "scipy",
        lambda: ndi.gaussian_filter(movie, 1.0, output=np.float32),
        max(peers, 2),
        "output=float32",
    )
    if cal is None:
        rows.append(skipped_row(bench, "CalSciPy", size, no_cal))
    else:
        fn = lambda: cal.gaussian_filter(movie, sigma=1.0)  # noqa: E731
        add(bench, "CalSciPy", fn, max(peers, 2), "uint16 out")

    # (c) median 3x3 per frame
    bench = "median 3x3 per frame"
    add(bench, NC, lambda: median_filter(movie, size=3, axes="yx"), ours)
    add(bench, "scipy", lambda: ndi.median_filter(movie, size=(1, 3, 3)), peers)

    # (d) dask in, lazy out, computed
    import dask.array as da

    lazy = da.from_array(movie, chunks=(32, SIDE, SIDE))
    add(
        "median 3x3x3",
        f"{NC} (dask)",
        lambda: median_filter(lazy, size=3).compute(),
        ours,
        "dask threaded scheduler, 32-frame chunks, map_overlap depth 1",
    )
    add_relative_notes(rows, "scipy")

    # (e) seams of blockwise filtering
    rows.extend(_seam_rows(movie, size, cal, no_cal))
    # (f) out of core
    rows.append(_out_of_core_row(quick))
    return rows


def _seam_rows(movie: np.ndarray, size: str, cal: Any, no_cal: str) -> list[Row]:
    whole = median_filter(movie, size=3)
    bench = "median 3x3x3, 32-frame blocks"
    timing = time_call(lambda: median_filter(movie, size=3, block_frames=32), repeat=3)
    bad = int(np.any(median_filter(movie, size=3, block_frames=32) != whole, axis=(1, 2)).sum())
    rows = [
        Row(bench, NC, size, timing, _work(len(movie)), notes=f"{bad} frames differ from whole")
    ]
    if cal is None:
        return [*rows, skipped_row(bench, "CalSciPy", size, no_cal)]
    fn = lambda: cal.median_filter(movie, window=(3, 3, 3), block_size=32, block_buffer=1)  # noqa: E731
    timing = time_call(fn, repeat=1, warmup=0)
    diff = np.any(fn() != whole, axis=(1, 2))
    note = (
        f"block_buffer=1: {int(diff.sum())} of {len(movie)} frames differ from the whole-array "
        f"median (first at {np.flatnonzero(diff)[:6].tolist()})"
    )
    return [*rows, Row(bench, "CalSciPy", size, timing, _work(len(movie)), notes=note)]


# --------------------------------------------------------------------------------------------------
# Out of core: a child process with a capped data segment
# --------------------------------------------------------------------------------------------------
def _write_input(path: Path, n_frames: int) -> None:
    """A uint16 movie on disk, written block by block (the generator's 64 frames, shifted)."""
    base = _movie(64)
    mm = np.memmap(path, dtype=np.uint16, mode="w+", shape=(n_frames, SIDE, SIDE))
    for start in range(0, n_frames, 64):
        stop = min(start + 64, n_frames)
        mm[start:stop] = np.roll(base, start // 64, axis=2)[: stop - start]
        mm.flush()
    del mm


def _out_of_core_row(quick: bool) -> Row:
    cap = (384 if quick else 512) * MiB
    n_frames = 4 * cap // (SIDE * SIDE * 2)
    bench = "median 3x3x3 out of core"
    size = f"{n_frames}x{SIDE}x{SIDE} uint16 ({n_frames * SIDE * SIDE * 2 / 2**30:.2f} GiB)"
    with tempfile.TemporaryDirectory(prefix="nc-bench-filters-") as tmp:
        src, dst = Path(tmp, "movie.bin"), Path(tmp, "median.bin")
        _write_input(src, n_frames)
        args = json.dumps({"src": str(src), "dst": str(dst), "n": n_frames, "cap": cap})
        proc = subprocess.run(
            [sys.executable, __file__, "--out-of-core", args],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-400:].replace("\n", " | ")
        return Row(bench, NC, size, notes=f"error: child failed: {tail}", status="error")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    notes = (
        f"np.memmap .bin in -> np.memmap .bin out; RLIMIT_DATA cap {cap / MiB:.0f} MiB: "
        f"peak RSS {result['hwm'] / MiB:.0f} MiB (VmHWM, file pages included), "
        f"peak anonymous RSS {result['anon'] / MiB:.0f} MiB, peak VmData "
        f"{result['data'] / MiB:.0f} MiB; spot check vs scipy: {result['check']}"
    )
    return Row(
        bench, NC, size, Timing((result["seconds"],)), _work(n_frames), notes=notes,
        params={"cap_bytes": cap, **result},
    )  # fmt: skip


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _child(spec: dict[str, Any]) -> None:  # runs in the capped child process
    import resource

    cap = int(spec["cap"])
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    shape = (int(spec["n"]), SIDE, SIDE)
    movie = np.memmap(spec["src"], dtype=np.uint16, mode="r", shape=shape)
    out = np.memmap(spec["dst"], dtype=np.uint16, mode="w+", shape=shape)
    median_filter(movie[:8], size=3)  # load the compiled kernel from numba's cache
    peaks = {"anon": 0, "data": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peaks["anon"] = max(peaks["anon"], _status_kib("RssAnon"))
            peaks["data"] = max(peaks["data"], _status_kib("VmData"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    median_filter(movie, size=3, out=out)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    hwm = _status_kib("VmHWM")
    k = shape[0] // 2
    check = np.array_equal(out[k : k + 4], ndi.median_filter(movie[k - 1 : k + 5], size=3)[1:5])
    print(
        json.dumps(
            {"seconds": seconds, "hwm": hwm, "check": "equal" if check else "DIFFERS"} | peaks
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--out-of-core":
        _child(json.loads(sys.argv[2]))
    else:  # python benchmarks/bench_filters.py [--quick]
        from _harness.results import Table

        print(Table(run(quick="--quick" in sys.argv)).render())

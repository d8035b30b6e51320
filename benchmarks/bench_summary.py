"""Summary images (issue 4): correlation image, PNR, projections, beside plain numpy references.

One uint16 movie of 1,000 frames of 512 x 512 (``--quick``: 200 frames of 256 x 256), uniform
13-bit noise plus a few correlated blobs, in memory. Rows:

a. local correlation image (8 neighbours): napari-calcium (parallel numba kernel over frame blocks,
   float64 sums); the same algorithm as array expressions (the path cupy takes), run on numpy;
   a plain numpy reference written after CaImAn's ``local_correlations`` (whole movie normalised
   in float32, neighbour products averaged; needs ~3 copies of the movie in memory); and
   napari-calcium on a dask array of 100-frame chunks. Each result is compared with the
   reference (max absolute difference in the notes).
b. 4-neighbour correlation image, napari-calcium.
c. PNR image: napari-calcium ``pnr_image`` (no spatial filter; one pass: max, mean, Welch noise)
   and ``correlation_pnr(gaussian_sigma_px=3, threshold_sigma=3)`` (CaImAn's defaults for 1p:
   filtered frames, two passes).
d. mean and median projections: napari-calcium ``project`` vs ``movie.mean(axis=0)`` /
   ``np.median(movie, axis=0)``; the median also from a dask array (exact radix selection over
   frame blocks, several passes).

Throughput is frames and decimal megabytes of uint16 input per second.
Run it: ``python benchmarks/run.py --only summary [--quick]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _harness.results import Row
from _harness.timing import Timing, time_call
from napari_calcium.core.chunking import iter_frame_blocks
from napari_calcium.core.movie.projections import project
from napari_calcium.core.movie.summary_images import (
    CorrStats,
    correlation_image,
    correlation_pnr,
    pnr_image,
)

IMPLEMENTATION = "napari-calcium"


def make_movie(n_frames: int, side: int, seed: int = 0) -> np.ndarray:
    """uint16 noise (13 bits) with 20 square blobs that share a random time course each."""
    rng = np.random.default_rng(seed)
    movie = rng.integers(100, 8000, size=(n_frames, side, side), dtype=np.uint16)
    for _ in range(20):
        y, x = rng.integers(0, side - 12, size=2)
        movie[:, y : y + 10, x : x + 10] //= 2
        movie[:, y : y + 10, x : x + 10] += rng.integers(0, 3000, n_frames, dtype=np.uint16)[
            :, None, None
        ]
    return movie


def caiman_like_correlation(movie: np.ndarray) -> np.ndarray:
    """Reference: CaImAn-style local correlations (8 neighbours) on the whole movie, float32."""
    z = movie.astype(np.float32)
    z -= z.mean(axis=0)
    z /= z.std(axis=0)
    rho = np.zeros(movie.shape[1:], dtype=np.float32)
    count = np.zeros(movie.shape[1:], dtype=np.float32)
    all_, head, tail = slice(None), slice(None, -1), slice(1, None)
    for a, b in (
        ((all_, head), (all_, tail)),
        ((head, all_), (tail, all_)),
        ((head, head), (tail, tail)),
        ((head, tail), (tail, head)),
    ):
        r = np.mean(z[(slice(None), *a)] * z[(slice(None), *b)], axis=0)
        rho[a] += r
        rho[b] += r
        count[a] += 1
        count[b] += 1
    return rho / count


def xp_twin_correlation(movie: np.ndarray) -> np.ndarray:
    """napari-calcium's array-expression twin of the numba kernel (the cupy path), on numpy."""
    stats = None
    for _, block in iter_frame_blocks(movie, block_frames=32):
        if stats is None:
            stats = CorrStats(block[0], 8, numba_kernel=False)
        stats.update(block)
    return stats.image()


def run(quick: bool = False) -> list[Row]:
    """Time the summary images; see the module docstring for the rows.

    Parameters
    ----------
    quick : bool, optional
        Small movie and single repeats, for a smoke run of a few seconds.

    Returns
    -------
    list of Row
    """
    n_frames, side = (200, 256) if quick else (1000, 512)
    repeat, slow_repeat = (1, 1) if quick else (3, 1)
    movie = make_movie(n_frames, side)
    size = f"{n_frames}x{side}x{side} uint16"
    work = {"frames": n_frames, "MB": movie.nbytes / 1e6}
    rows: list[Row] = []

    def row(bench: str, impl: str, timing: Timing, notes: str = "", **params: Any) -> None:
        rows.append(Row(bench, impl, size, timing, work, notes=notes, params=params))

    def diff(a: Any, b: np.ndarray) -> str:
        return f"max |diff| vs reference {float(np.max(np.abs(np.asarray(a) - b))):.1e}"

    # (a) correlation image, 8 neighbours
    reference = caiman_like_correlation(movie)
    ours = correlation_image(movie)  # also compiles/loads the numba kernel
    t = time_call(lambda: correlation_image(movie), repeat=repeat)
    row(
        "correlation image (8 nb)",
        IMPLEMENTATION,
        t,
        f"numba, float64 sums; {diff(ours, reference)}",
    )
    kept: dict[str, np.ndarray] = {}

    def twin() -> None:
        kept["twin"] = xp_twin_correlation(movie)

    t = time_call(twin, repeat=slow_repeat, warmup=0)
    note = f"array expressions (the cupy path) on numpy; {diff(kept['twin'], reference)}"
    row("correlation image (8 nb)", f"{IMPLEMENTATION} xp twin", t, note)
    t = time_call(lambda: caiman_like_correlation(movie), repeat=slow_repeat, warmup=0)
    row("correlation image (8 nb)", "numpy (CaImAn-like)", t, "whole movie as float32, z-scored")
    import dask.array as da

    lazy = da.from_array(movie, chunks=(100, side, side))
    t = time_call(lambda: correlation_image(lazy), repeat=repeat)
    row("correlation image (8 nb)", f"{IMPLEMENTATION} (dask in)", t, "100-frame chunks")

    # (b) 4 neighbours
    t = time_call(lambda: correlation_image(movie, neighbours=4), repeat=repeat)
    row("correlation image (4 nb)", IMPLEMENTATION, t)

    # (c) PNR
    t = time_call(lambda: pnr_image(movie), repeat=repeat)
    row("PNR image", IMPLEMENTATION, t, "no filter; Welch noise, 64-frame Hann segments")
    t = time_call(
        lambda: correlation_pnr(movie, gaussian_sigma_px=3.0, threshold_sigma=3.0),
        repeat=slow_repeat,
    )
    row("correlation + PNR, gSig=3", IMPLEMENTATION, t, "9x9 centred kernel, 2 passes (3 sigma)")

    # (d) projections
    t = time_call(lambda: project(movie, "mean"), repeat=repeat)
    row("mean projection", IMPLEMENTATION, t, "float64 sums over frame blocks")
    t = time_call(lambda: movie.mean(axis=0), repeat=repeat)
    row("mean projection", "numpy", t, "movie.mean(axis=0)")
    ours = project(movie, "median")
    t = time_call(lambda: project(movie, "median"), repeat=slow_repeat, warmup=0)
    exact = np.array_equal(ours, np.median(movie, axis=0).astype(np.float32))
    row("median projection", IMPLEMENTATION, t, f"pixel tiles; equals np.median: {exact}")
    t = time_call(lambda: np.median(movie, axis=0), repeat=slow_repeat, warmup=0)
    row("median projection", "numpy", t, "np.median(movie, axis=0)")
    t = time_call(lambda: project(lazy, "median"), repeat=slow_repeat, warmup=0)
    row("median projection", f"{IMPLEMENTATION} (dask in)", t, "radix selection, frame blocks")
    return rows


if __name__ == "__main__":  # convenience: python benchmarks/bench_summary.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

"""Trace extraction with neuropil (issue 6), beside suite2p and a plain scipy.sparse product.

500 random ROIs of 80-150 pixels (those of ``bench_masks``) with their suite2p-style cell and
neuropil masks on a 2,000 x 512 x 512 float32 movie (``--quick``: 150 ROIs, 200 frames). Every
row extracts the same masks (cells + neuropil, 2 x n_rois traces). Rows:

* napari-calcium ``extract_traces`` on the in-memory array (default blocks, 64 frames);
* the same on an ``np.memmap`` of a temporary file (page cache warm after the first call);
* a plain scipy.sparse product ``M @ block.reshape(t, -1).T`` per block of 500 frames (the
  approach of suite2p's CPU path before torch);
* suite2p 1.1 ``extraction.extract.extract_traces`` on the CPU (``device=cpu``, its default batch
  of 500 frames) with our masks converted to its lists -- the call ``extraction_wrapper`` makes
  after ``create_masks``. Skipped where suite2p does not import (bench venv only).

Notes give the agreement: max abs difference of ``F`` and ``Fneu`` against suite2p's (and against
the scipy row), in movie units, movie values in [0, 1000). Throughput is frames per second.
Run it: ``python benchmarks/run.py --only extraction [--quick]``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np
import scipy.sparse as sp

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import time_call
from bench_masks import make_rois
from napari_calcium.core.rois.neuropil import extraction_masks
from napari_calcium.core.traces.extraction import extract_traces

IMPLEMENTATION = "napari-calcium"
EXTRA_PACKAGES = ("suite2p", "torch")
SHAPE = (512, 512)


def make_movie(n_frames: int, seed: int = 0) -> np.ndarray:
    """A float32 movie of uniform noise in [0, 1000) (the values do not change the cost)."""
    rng = np.random.default_rng(seed)
    movie = np.empty((n_frames, *SHAPE), np.float32)
    for i in range(0, n_frames, 100):
        movie[i : i + 100] = rng.random((min(100, n_frames - i), *SHAPE), np.float32) * 1000
    return movie


def scipy_extract(movie: np.ndarray, matrix: sp.csr_array, batch: int = 500) -> np.ndarray:
    """``M @ frames.T`` per batch of frames with scipy.sparse (float32)."""
    out = np.empty((matrix.shape[0], len(movie)), np.float32)
    for start in range(0, len(movie), batch):
        block = movie[start : start + batch].reshape(-1, matrix.shape[1])
        out[:, start : start + len(block)] = matrix @ block.T
    return out


def suite2p_masks(masks: Any) -> tuple[list, list]:
    """Our cell/neuropil masks as suite2p's lists: (pixel indices, lam) and pixel indices."""
    c, n = masks.cells.masks, masks.neuropil.masks
    cells = [
        (c.indices[c.indptr[i] : c.indptr[i + 1]], c.data[c.indptr[i] : c.indptr[i + 1]])
        for i in range(c.shape[0])
    ]
    neuropil = [n.indices[n.indptr[i] : n.indptr[i + 1]] for i in range(n.shape[0])]
    return cells, neuropil


def run(quick: bool = False) -> list[Row]:
    """Time the extraction rows described in the module docstring.

    Parameters
    ----------
    quick : bool, optional
        150 ROIs, 200 frames, single repeats.

    Returns
    -------
    list of Row
    """
    n_rois, n_frames = (150, 200) if quick else (500, 2000)
    repeat = 1 if quick else 3
    rois = make_rois(n_rois)
    masks = extraction_masks(rois)
    movie = make_movie(n_frames)
    size = f"{n_rois} ROIs + neuropil, {n_frames}x512x512 float32"
    bench = "extract traces (cells + neuropil)"
    work = {"frames": float(n_frames)}
    rows: list[Row] = []
    kept: dict[str, Any] = {}

    def ours() -> None:
        kept["ours"] = extract_traces(movie, rois, masks=masks)

    t = time_call(ours, repeat=repeat)  # the warm-up call compiles (or loads) the numba kernel
    rows.append(Row(bench, IMPLEMENTATION, size, t, work, notes="numpy in memory, numba kernel"))
    F, Fneu = kept["ours"].F, kept["ours"].Fneu

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "movie.bin")
        mm = np.memmap(path, np.float32, "w+", shape=movie.shape)
        mm[:] = movie
        mm.flush()
        del mm
        data = np.memmap(path, np.float32, "r", shape=movie.shape)
        t = time_call(lambda d=data: extract_traces(d, rois, masks=masks), repeat=repeat)
        rows.append(Row(bench, IMPLEMENTATION, size, t, work, notes="np.memmap (page cache warm)"))
        del data

    matrix = sp.csr_array(sp.vstack([masks.cells.masks, masks.neuropil.masks], "csr"))
    t = time_call(lambda: kept.__setitem__("scipy", scipy_extract(movie, matrix)), repeat=1)
    diff = np.abs(kept["scipy"] - np.concatenate([F, Fneu])).max()
    rows.append(
        Row(
            bench,
            "scipy.sparse",
            size,
            t,
            work,
            notes=f"M @ block.T; max |ours - scipy| {diff:.2g}",
        )
    )

    extract_mod = optional_import("suite2p.extraction.extract")
    torch = optional_import("torch")
    if extract_mod is None or torch is None:
        rows.append(skipped_row(bench, "suite2p", size, "suite2p is not importable here"))
        return rows
    cells, neuropil = suite2p_masks(masks)

    def theirs() -> None:
        kept["s2p"] = extract_mod.extract_traces(
            movie, cells, neuropil, batch_size=500, device=torch.device("cpu")
        )

    t = time_call(theirs, repeat=1 if quick else 2)
    F_s2p, Fneu_s2p = kept["s2p"]
    dF, dN = np.abs(F - F_s2p).max(), np.abs(Fneu - Fneu_s2p).max()
    rows.append(
        Row(
            bench,
            "suite2p",
            size,
            t,
            work,
            notes=f"suite2p {_dist_version('suite2p')} extract_traces, CPU torch "
            f"{torch.get_num_threads()} threads; max |F - F_s2p| {dF:.2g}, "
            f"max |Fneu - Fneu_s2p| {dN:.2g}",
        )
    )
    for row in rows[:-1]:
        row.add_note(f"{t.best / row.seconds:.2g}x suite2p's speed")
    return rows


def _dist_version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":  # convenience: python benchmarks/bench_extraction.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

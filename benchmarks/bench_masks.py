"""Cell and neuropil masks for extraction (issue 5), beside suite2p's ``create_masks``.

500 random ROIs (``--quick``: 150) of 80-150 pixels (disks of radius ~5-7 px with a Gaussian
weight profile, some overlapping) on a 512 x 512 image. suite2p gets the same ROIs as ``stat``
dicts (``ypix``, ``xpix``, ``lam``, ``overlap`` from the pixel counts, and ``radius`` = the
equivalent-disk radius, which is what napari-calcium's default percentile window uses, so both
use the same window). Rows:

a. cell + neuropil masks on suite2p's defaults (inner 2 px, 350 pixels, lam percentile 50,
   rectangular, no overlap): napari-calcium ``extraction_masks`` and suite2p ``create_masks``;
   the notes give the fraction of identical neuropil and cell masks;
b. the same with ``circular=True`` (suite2p calls it "SLOW");
c. the cell-pixel map alone: napari-calcium ``cell_pixel_map`` (exact rank counting) and the
   ``scipy.ndimage.percentile_filter`` it replaces (``size = int(5 * median radius)``).

suite2p rows are skipped rows where suite2p does not import (it is installed in the bench venv
only). Throughput is ROIs per second. Run it: ``python benchmarks/run.py --only masks [--quick]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import Timing, time_call
from napari_calcium.core.rois.neuropil import cell_pixel_map, extraction_masks
from napari_calcium.core.rois.roiset import RoiSet

IMPLEMENTATION = "napari-calcium"
EXTRA_PACKAGES = ("suite2p",)
SHAPE = (512, 512)


def make_rois(n_rois: int, seed: int = 0) -> RoiSet:
    """Random disks of 80-150 px with a peaked weight profile, anywhere in the image."""
    rng = np.random.default_rng(seed)
    pixels = []
    while len(pixels) < n_rois:
        r = rng.uniform(5.0, 7.0)
        cy, cx = rng.uniform(-2, SHAPE[0] + 2), rng.uniform(-2, SHAPE[1] + 2)
        y0, x0 = int(cy - r) - 1, int(cx - r) - 1
        yy, xx = np.mgrid[y0 : y0 + int(2 * r) + 3, x0 : x0 + int(2 * r) + 3]
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        keep = (d2 <= r * r) & (yy >= 0) & (yy < SHAPE[0]) & (xx >= 0) & (xx < SHAPE[1])
        if not 80 <= keep.sum() <= 150:
            continue
        lam = np.exp(-d2[keep] / (r * r)) * rng.uniform(0.5, 2.0)
        pixels.append((yy[keep], xx[keep], lam.astype(np.float32)))
    return RoiSet.from_pixels(pixels, SHAPE, source="detected")


def suite2p_stat(rois: RoiSet) -> list[dict[str, Any]]:
    """The same ROIs as suite2p ``stat`` dicts (overlap from pixel counts, radius sqrt(n / pi))."""
    counts = np.bincount(rois.masks.indices, minlength=rois.masks.shape[1])
    stat = []
    for i in range(len(rois)):
        ypix, xpix, lam = rois.pixels(i)
        flat = ypix * SHAPE[1] + xpix
        stat.append(
            {
                "ypix": ypix,
                "xpix": xpix,
                "lam": lam,
                "overlap": counts[flat] > 1,
                "radius": float(rois.radius[i]),
            }
        )
    return stat


def agreement(ours: Any, cells_s2p: list, neuropil_s2p: list) -> str:
    """Fractions of identical neuropil masks (pixel sets) and cell masks (pixels and weights)."""
    m, c = ours.neuropil.masks, ours.cells.masks
    n = len(neuropil_s2p)
    same_np = sum(
        np.array_equal(m.indices[m.indptr[i] : m.indptr[i + 1]], np.sort(neuropil_s2p[i]))
        for i in range(n)
    )
    same_cell = 0
    for i, (pix, lam) in enumerate(cells_s2p):
        order = np.argsort(pix)
        lo, hi = c.indptr[i], c.indptr[i + 1]
        same_cell += np.array_equal(c.indices[lo:hi], pix[order]) and np.allclose(
            c.data[lo:hi], lam[order], rtol=1e-5
        )
    return f"identical neuropil {same_np}/{n}, identical cell masks {same_cell}/{n}"


def run(quick: bool = False) -> list[Row]:
    """Time the mask builders; see the module docstring for the rows.

    Parameters
    ----------
    quick : bool, optional
        150 ROIs and single repeats, for a smoke run of a few seconds.

    Returns
    -------
    list of Row
    """
    n_rois = 150 if quick else 500
    repeat = 1 if quick else 5
    rois = make_rois(n_rois)
    size = f"{n_rois} ROIs ({int(rois.area.min())}-{int(rois.area.max())} px) on 512x512"
    work = {"ROIs": float(n_rois)}
    window = max(1, int(5 * float(np.median(rois.radius))))
    rows: list[Row] = []

    def row(bench: str, impl: str, timing: Timing, notes: str = "", **params: Any) -> None:
        rows.append(Row(bench, impl, size, timing, work, notes=notes, params=params))

    masks_mod = optional_import("suite2p.extraction.masks")
    stat = suite2p_stat(rois)
    version = _dist_version("suite2p")
    for circular in (False, True):
        bench = "cell + neuropil masks" + (" (circular)" if circular else "")
        kept: dict[str, Any] = {}

        def ours(circular: bool = circular, kept: dict = kept) -> None:
            kept["ours"] = extraction_masks(rois, circular=circular)

        t = time_call(ours, repeat=repeat)  # warm-up call loads/compiles the numba kernels
        row(bench, IMPLEMENTATION, t, f"numba, integral images; window {window} px")
        if masks_mod is None:
            rows.append(skipped_row(bench, "suite2p", size, "suite2p is not importable here"))
            continue

        def theirs(circular: bool = circular, kept: dict = kept) -> None:
            kept["s2p"] = masks_mod.create_masks(
                stat, SHAPE[0], SHAPE[1], circular_neuropil=circular
            )

        t = time_call(theirs, repeat=1 if (quick or circular) else 3, warmup=0)
        note = f"suite2p {version} create_masks; " + agreement(kept["ours"], *kept["s2p"])
        row(bench, "suite2p", t, note)
        rows[-2].add_note(f"{t.best / rows[-2].seconds:.0f}x faster than suite2p")

    t = time_call(lambda: cell_pixel_map(rois), repeat=repeat)
    row("cell-pixel map (lam percentile 50)", IMPLEMENTATION, t, "exact rank counting")
    ndimage = optional_import("scipy.ndimage")
    lammap = np.zeros(SHAPE[0] * SHAPE[1])
    np.maximum.at(lammap, rois.masks.indices, rois.masks.data)
    lammap = lammap.reshape(SHAPE)

    def scipy_map() -> np.ndarray:
        filt = ndimage.percentile_filter(lammap, percentile=50.0, size=window)
        return ~((lammap < filt) | (lammap == 0))

    same = np.array_equal(scipy_map(), cell_pixel_map(rois))
    t = time_call(scipy_map, repeat=1, warmup=0)
    row(
        "cell-pixel map (lam percentile 50)",
        "scipy percentile_filter",
        t,
        f"size {window}x{window}; equal to ours: {same}",
    )
    return rows


def _dist_version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":  # convenience: python benchmarks/bench_masks.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

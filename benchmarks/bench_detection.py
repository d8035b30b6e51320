"""ROI detection (issue 5): speed, synthetic accuracy sweep, real (neurofinder) accuracy.

Rows:

a. ``detect_rois`` wall time on a float32 movie of 2,000 x 512 x 512 (``--quick``: 400 x 256 x
   256), four tiles of one synthetic scene (so ~200 cells), with the frame rate and cell size
   given (30 Hz: 3-frame bins) and with nothing given (no binning beyond the 1,000-frame cap,
   cell size estimated).
b. Synthetic F1 (IoU >= 0.5, one-to-one Hungarian matching) over a noise x density sweep:
   read noise 6 / 30 / 60 ADU (default 6) x 25 / 50 / 100 cells in 256 x 256 (default 50),
   1,000 frames at 30 Hz, seed 0, frame rate and cell size (12 µm at 1 µm/px) given.
   (``--quick``: 2 x 2 corners, 300 frames.) The F1 is in the notes column.
c. Real data: ``../shared/data/neurofinder_crop`` (400 x 256 x 256 uint16, 106 manual ROIs),
   default settings (nothing given, nothing tuned on these labels; cell size estimated from the
   mean image, ring-shaped somata seeded from their nuclear shadow); precision / recall / F1 by
   neurofinder's centroid criterion (<= 5 px) and by IoU >= 0.5, one row per criterion.

suite2p's detection runs beside ours, on the same crop and the same big synthetic movie, in
``bench_detection_peers.py`` (bench venv).
Run it: ``python benchmarks/run.py --only detection [--quick]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from _harness.peers import skipped_row
from _harness.results import Row
from _harness.timing import time_call
from napari_calcium.core.rois.detection.detect import detect_rois
from napari_calcium.core.rois.matching import detection_scores
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.synthetic.recording import simulate_recording

IMPLEMENTATION = "napari-calcium"
NEUROFINDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "neurofinder_crop"


def _tiled_movie(n_frames: int, side: int) -> np.ndarray:
    """float32 movie of ``(n_frames, side, side)``: 2 x 2 tiles of one synthetic scene."""
    rec = simulate_recording(
        n_frames=n_frames, shape=(side // 2, side // 2), n_neurons=50, seed=0, lazy=False
    )
    tile = np.asarray(rec.movie)
    movie = np.empty((n_frames, side, side), np.float32)
    h = side // 2
    for y in (0, h):
        for x in (0, h):
            movie[:, y : y + h, x : x + h] = tile
    return movie


def _f1(rois: RoiSet, labels: np.ndarray) -> tuple[float, float, float]:
    s = detection_scores(rois, RoiSet.from_label_image(labels), criterion="iou")
    return s.precision, s.recall, s.f1


def run(quick: bool = False) -> list[Row]:
    """Time detection and measure its accuracy; see the module docstring for the rows.

    Parameters
    ----------
    quick : bool, optional
        Small sizes for a smoke run.

    Returns
    -------
    list of Row
    """
    rows: list[Row] = []
    n_frames, side = (400, 256) if quick else (2000, 512)
    movie = _tiled_movie(n_frames, side)
    size = f"{n_frames}x{side}x{side} float32"
    work = {"frames": n_frames, "MB": movie.nbytes / 1e6}
    kept: dict[str, RoiSet] = {}

    def with_meta() -> None:
        kept["meta"] = detect_rois(movie, cell_diameter_px=12, frame_rate_hz=30.0)

    def without_meta() -> None:
        kept["none"] = detect_rois(movie)

    t = time_call(with_meta, repeat=1, warmup=0, memory=True)
    peak = (t.peak_rss_delta_bytes or 0) / 2**20
    rows.append(
        Row(
            "detect_rois (d=12 px, 30 Hz)",
            IMPLEMENTATION,
            size,
            t,
            work,
            notes=f"{len(kept['meta'])} ROIs; peak RSS +{peak:.0f} MiB",
        )
    )
    t = time_call(without_meta, repeat=1, warmup=0, memory=True)
    peak = (t.peak_rss_delta_bytes or 0) / 2**20
    rows.append(
        Row(
            "detect_rois (nothing given)",
            IMPLEMENTATION,
            size,
            t,
            work,
            notes=f"{len(kept['none'])} ROIs; peak RSS +{peak:.0f} MiB",
        )
    )

    noises = (6.0, 60.0) if quick else (6.0, 30.0, 60.0)
    densities = (25, 100) if quick else (25, 50, 100)
    frames = 300 if quick else 1000
    for read_noise in noises:
        for n_cells in densities:
            rec = simulate_recording(
                n_frames=frames, n_neurons=n_cells, read_noise_adu=read_noise, seed=0
            )
            out: dict[str, RoiSet] = {}

            def detect(rec=rec, out=out) -> None:
                out["rois"] = detect_rois(
                    rec.movie, cell_diameter_um=12.0, pixel_size_um=1.0, frame_rate_hz=30.0
                )

            t = time_call(detect, repeat=1, warmup=0)
            p, r, f = _f1(out["rois"], rec.truth.labels)
            rows.append(
                Row(
                    "synthetic F1 sweep",
                    IMPLEMENTATION,
                    f"{frames}x256x256, {n_cells} cells, read noise {read_noise:g} ADU",
                    t,
                    {"frames": frames},
                    notes=f"F1 {f:.3f} (P {p:.2f}, R {r:.2f})",
                    params={
                        "read_noise_adu": read_noise,
                        "n_neurons": n_cells,
                        "f1": f,
                        "precision": p,
                        "recall": r,
                    },
                )
            )

    if not (NEUROFINDER / "movie.tif").exists():
        rows.append(
            skipped_row(
                "neurofinder crop",
                IMPLEMENTATION,
                "400x256x256",
                f"data not found at {NEUROFINDER}",
            )
        )
        return rows
    import tifffile

    nf_movie = tifffile.imread(NEUROFINDER / "movie.tif")
    regions = json.loads((NEUROFINDER / "regions.json").read_text())
    truth = RoiSet.from_pixels(
        [tuple(np.asarray(r["coordinates"]).T) for r in regions], nf_movie.shape[1:]
    )
    res: dict[str, RoiSet] = {}

    def nf() -> None:
        res["rois"] = detect_rois(nf_movie)

    t = time_call(nf, repeat=1, warmup=0)
    for crit in ("centroid", "iou"):
        sc = detection_scores(res["rois"], truth, criterion=crit)
        rows.append(
            Row(
                f"neurofinder crop (defaults), {crit}",
                IMPLEMENTATION,
                "400x256x256 uint16, 106 labels",
                t,
                {"frames": 400},
                notes=f"{len(res['rois'])} ROIs; P {sc.precision:.3f} R {sc.recall:.3f} "
                f"F1 {sc.f1:.3f}",
                params={
                    "criterion": crit,
                    "precision": sc.precision,
                    "recall": sc.recall,
                    "f1": sc.f1,
                },
            )
        )
    return rows


if __name__ == "__main__":  # convenience: python benchmarks/bench_detection.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

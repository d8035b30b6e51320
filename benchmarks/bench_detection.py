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

d. Issue 17 (precision on real movies), old defaults (``p_value=None, merge_corr=None``: no
   noise tests, no merging, the same ROIs as before issue 17) against the new defaults:
   a synthetic sweep of 128 x 128 recordings (300 / 1,000 frames x 12 / 25 cells x default SNR
   / low SNR -- read noise 60 ADU, F0 6-18 photons, 12 % dF/F per spike -- x 7.5 / 30 Hz, seed 1;
   ``--quick``: 300 frames only), its mean centroid P / R and IoU F1; the neurofinder crop at
   7.5 Hz (centroid <= 5 px and IoU); ROIs on pure-noise movies (Gaussian and Poisson on a flat
   baseline, 300 x 128 x 128 and 3,000 x 64 x 64); the short noisy Bruker folder (10 x 512 x 512,
   ``../shared/data/bruker_calscipy_1plane_tseries``): ROIs and whether a DetectionWarning came.

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
BRUKER = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "bruker_calscipy_1plane_tseries"
    / "EM0121_PRE-001"
)
#: detect_rois arguments that reproduce the detection before issue 17 (no noise tests, no merge)
OLD_DEFAULTS = {"p_value": None, "merge_corr": None}


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
    rows.extend(_issue17_rows(quick, nf_movie, truth))
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


def _detect_quiet(movie, **kwargs) -> tuple[RoiSet, list[str]]:
    """detect_rois, with the DetectionWarnings it gave (as text) instead of printing them."""
    import warnings

    from napari_calcium.errors import DetectionWarning

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", DetectionWarning)
        rois = detect_rois(movie, **kwargs)
    return rois, [str(w.message) for w in seen if issubclass(w.category, DetectionWarning)]


def _issue17_rows(quick: bool, nf_movie: np.ndarray, truth: RoiSet) -> list[Row]:
    """Rows d. (module docstring): old vs new defaults; synthetic sweep, crop, noise, Bruker."""
    rows: list[Row] = []
    versions = {"old defaults": OLD_DEFAULTS, "new defaults": {}}
    keys = [
        (n_frames, n_cells, snr, fs)
        for n_frames in ((300,) if quick else (300, 1000))
        for n_cells in (12, 25)
        for snr in ("default", "low")
        for fs in (7.5, 30.0)
    ]
    scores: dict[str, list[tuple[float, float, float]]] = {v: [] for v in versions}
    for n_frames, n_cells, snr, fs in keys:
        low = {"read_noise_adu": 60.0, "f0_photons": (6.0, 18.0), "dff_per_spike": 0.12}
        rec = simulate_recording(
            n_frames=n_frames, shape=(128, 128), n_neurons=n_cells, frame_rate_hz=fs, seed=1,
            lazy=False, **(low if snr == "low" else {}),
        )  # fmt: skip
        labels = RoiSet.from_label_image(rec.truth.labels)
        for version, kwargs in versions.items():
            rois, _ = _detect_quiet(rec.movie, frame_rate_hz=fs, **kwargs)
            c = detection_scores(rois, labels, criterion="centroid", threshold=5.0)
            iou = detection_scores(rois, labels, criterion="iou")
            scores[version].append((c.precision, c.recall, iou.f1))
    for version in versions:
        p, r, f = np.mean(scores[version], axis=0)
        rows.append(
            Row(
                f"issue 17 synthetic sweep, {version}",
                IMPLEMENTATION,
                f"{len(keys)} recordings of 128x128",
                None,
                {},
                notes=f"mean centroid P {p:.3f} R {r:.3f}; IoU F1 {f:.3f}",
                params={"precision": p, "recall": r, "iou_f1": f, "n_recordings": len(keys)},
            )
        )
    for version, kwargs in versions.items():
        rois, warned = _detect_quiet(nf_movie, frame_rate_hz=7.5, **kwargs)
        c = detection_scores(rois, truth, criterion="centroid", threshold=5.0)
        iou = detection_scores(rois, truth, criterion="iou")
        rows.append(
            Row(
                f"issue 17 neurofinder crop (7.5 Hz), {version}",
                IMPLEMENTATION,
                "400x256x256 uint16, 106 labels",
                None,
                {},
                notes=f"{len(rois)} ROIs; centroid P {c.precision:.3f} R {c.recall:.3f}; "
                f"IoU F1 {iou.f1:.3f}; warnings {len(warned)}",
                params={"precision": c.precision, "recall": c.recall, "iou_f1": iou.f1},
            )
        )
    rng = np.random.default_rng(0)
    for n_frames, side in ((300, 128), (3000, 64)):
        movies = {
            "Gaussian": rng.normal(1000.0, 30.0, (n_frames, side, side)).astype(np.float32),
            "Poisson": (rng.poisson(200.0, (n_frames, side, side)) * 4 + 100).astype(np.float32),
        }
        for version, kwargs in versions.items():
            counts = [
                len(_detect_quiet(m, frame_rate_hz=fs, **kwargs)[0])
                for m in movies.values()
                for fs in (None, 30.0)
            ]
            rows.append(
                Row(
                    f"issue 17 pure noise, {version}",
                    IMPLEMENTATION,
                    f"{n_frames}x{side}x{side}",
                    None,
                    {},
                    notes="ROIs (Gaussian, Gaussian 30 Hz, Poisson, Poisson 30 Hz): "
                    + ", ".join(map(str, counts)),
                    params={"counts": counts},
                )
            )
    if BRUKER.exists():
        import logging

        import tifffile

        logging.getLogger("tifffile").setLevel(logging.ERROR)
        files = sorted(BRUKER.glob("*_Ch2_*.ome.tif"))
        bruker = np.stack([tifffile.imread(f) for f in files])
        for version, kwargs in versions.items():
            rois, warned = _detect_quiet(bruker, **kwargs)
            rows.append(
                Row(
                    f"issue 17 short noisy Bruker folder, {version}",
                    IMPLEMENTATION,
                    f"{len(bruker)}x512x512 uint16",
                    None,
                    {},
                    notes=f"{len(rois)} ROIs; "
                    + (f"DetectionWarning: {warned[0]}" if warned else "no warning"),
                    params={"n_rois": len(rois), "warned": bool(warned)},
                )
            )
    return rows


if __name__ == "__main__":  # convenience: python benchmarks/bench_detection.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

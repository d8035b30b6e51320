"""ROI detection side by side with suite2p (issue 5), in one run on one machine.

Rows:

a. Real data: ``../shared/data/neurofinder_crop`` (400 x 256 x 256 uint16, 106 manual ROIs,
   frame rate unknown, ~7-8 Hz GCaMP6). Each implementation gets the whole movie once per call:

   * napari-calcium ``detect_rois(movie)`` with its defaults (nothing given);
   * suite2p functional detection with its default settings (``algorithm="sparsery"``,
     ``spatial_scale=0`` = auto, ``threshold_scaling=1``, ``diameter=[12, 12]``, ...), called as
     ``suite2p.detection.detection_wrapper(movie, diameter=[12, 12], tau=1.0, fs=7.5,
     settings=default_settings()["detection"], device=torch.device("cpu"))``: fs set to 7.5 Hz,
     tau left at suite2p's default 1.0 s (its docs suggest 0.7 for GCaMP6f, 1.0 for GCaMP6m,
     1.25-1.5 for GCaMP6s; the indicator of this crop is not known). The movie is handed over as
     an in-memory float32 array (suite2p reads it by slicing, like its ``BinaryFile``);
   * the same ROIs filtered by suite2p's classifier (``iscell``): as in ``pipeline_s2p`` the
     traces are extracted (``extraction_wrapper``, default settings), ``skew`` of
     ``F - 0.7 Fneu`` is stored in each ``stat`` and ``classify`` is run with the user classifier
     if one exists, else the built-in one. Its time is detection + extraction + classification;
   * suite2p anatomical mode (``algorithm="cellpose"``): it needs Cellpose and its model weights;
     the row is skipped when either is missing (suite2p has no Cellpose-free anatomical path;
     without Cellpose it silently falls back to sparsery, which would not be an anatomical row).

   Scores: precision / recall / F1 by neurofinder's centroid criterion (centroid distance
   <= 5 px) and by IoU >= 0.5, both with one-to-one Hungarian matching
   (``detection_scores``), against ``RoiSet.from_neurofinder(regions.json)``.

b. Speed: ``simulate_recording(n_frames=2000, shape=(512, 512), n_neurons=200, seed=0)``
   (``--quick``: 500 x 256 x 256, 50 neurons), float32, generated once. napari-calcium
   ``detect_rois(movie, frame_rate_hz=30, cell_diameter_px=12)`` and suite2p
   ``detection_wrapper(movie, diameter=[12, 12], tau=0.4, fs=30, ...)`` (GCaMP6f-like; bins of
   12 frames), both timed once (after an untimed warm-up on a small crop of the movie, which
   compiles numba kernels) with the peak RSS increase sampled; F1 (IoU >= 0.5) and centroid F1
   against ``rec.truth.labels`` in the notes.

Everything runs on the CPU (suite2p's torch is told ``device="cpu"``). suite2p rows are skipped
rows where suite2p does not import (it is installed in the bench venv only).
Run it: ``python benchmarks/run.py --only detection_peers [--quick] --markdown``.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import Timing, time_call
from napari_calcium.core.rois.detection.detect import detect_rois
from napari_calcium.core.rois.matching import detection_scores
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.synthetic.recording import simulate_recording

IMPLEMENTATION = "napari-calcium"
EXTRA_PACKAGES = ("suite2p",)
NEUROFINDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "neurofinder_crop"
NF_FS = 7.5  # Hz, assumed (neurofinder training sets are ~7-8 Hz)
NF_TAU = 1.0  # s, suite2p's default
SYN_FS, SYN_TAU, SYN_DIAMETER = 30.0, 0.4, 12.0
ISSUE_FIGURE = "issue's figure for suite2p's best setting: centroid F1 0.30, IoU F1 0.18"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _scores(rois: RoiSet, truth: RoiSet) -> tuple[str, dict[str, float]]:
    """Notes text and params for centroid (<= 5 px) and IoU (>= 0.5) scores."""
    texts, params = [], {}
    for crit, threshold in (("centroid", 5.0), ("iou", 0.5)):
        s = detection_scores(rois, truth, criterion=crit, threshold=threshold)
        label = "centroid<=5px" if crit == "centroid" else "IoU>=0.5"
        texts.append(f"{label}: P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f}")
        params.update(
            {f"{crit}_precision": s.precision, f"{crit}_recall": s.recall, f"{crit}_f1": s.f1}
        )
    return "; ".join(texts), params


def _rss_note(timing: Timing) -> str:
    if timing.peak_rss_delta_bytes is None:
        return ""
    return f"peak RSS +{timing.peak_rss_delta_bytes / 2**20:.0f} MiB"


class _Suite2p:
    """The few suite2p 1.1 entry points used here, imported once (None when unavailable)."""

    def __init__(self) -> None:
        self.detection = optional_import("suite2p.detection")
        self.parameters = optional_import("suite2p.parameters")
        self.extraction = optional_import("suite2p.extraction")
        self.classification = optional_import("suite2p.classification")
        self.torch = optional_import("torch")
        self.ok = None not in (
            self.detection,
            self.parameters,
            self.extraction,
            self.classification,
            self.torch,
        )
        self.version = _version("suite2p")
        self.last_scale: Any = None

    def settings(self) -> dict[str, Any]:
        return self.parameters.default_settings()

    def detect(
        self,
        movie: np.ndarray,
        *,
        tau: float,
        fs: float,
        diameter: float = 12.0,
        algorithm: str | None = None,
    ) -> np.ndarray:
        """``detection_wrapper`` on the CPU with default detection settings; returns ``stat``."""
        settings = copy.deepcopy(self.settings()["detection"])  # the wrapper edits it
        if algorithm is not None:
            settings["algorithm"] = algorithm
        out, stat, _ = self.detection.detection_wrapper(
            movie,
            diameter=np.array([diameter, diameter]),
            tau=tau,
            fs=fs,
            settings=settings,
            device=self.torch.device("cpu"),
        )
        self.last_scale = out.get("spatscale_pix")  # sparsery's auto-chosen spatial scale
        return stat

    def classfile(self) -> tuple[Any, str]:
        """The classifier ``pipeline_s2p`` would use with default settings."""
        cls = self.classification
        if cls.user_classfile.is_file():
            return cls.user_classfile, "user"
        return cls.builtin_classfile, "built-in"

    def iscell(self, stat: np.ndarray, movie: np.ndarray) -> np.ndarray:
        """Classifier output ``(n, 2)`` the way ``pipeline_s2p`` computes it (sets ``skew``)."""
        from scipy.stats import skew

        settings = self.settings()["extraction"]
        F, Fneu, _, _ = self.extraction.extraction_wrapper(
            stat, movie, settings=settings, device=self.torch.device("cpu")
        )
        dF = F - settings["neuropil_coefficient"] * Fneu
        snr = 1 - 0.5 * np.diff(dF, axis=1).var(axis=1) / dF.var(axis=1)
        sk, sd = skew(dF, axis=1), np.std(dF, axis=1)
        for k, s in enumerate(stat):
            s["snr"], s["skew"], s["std"] = snr[k], sk[k], sd[k]
        return self.classification.classify(stat=stat, classfile=self.classfile()[0])

    def cellpose_missing(self) -> str | None:
        """Why anatomical (Cellpose) detection cannot run here, None if it can."""
        anatomical = optional_import("suite2p.detection.anatomical")
        if anatomical is None or not getattr(anatomical, "CELLPOSE_INSTALLED", False):
            err = getattr(anatomical, "cellpose_error", "not importable")
            return (
                f"cellpose not installed ({err}); suite2p's anatomical mode needs it "
                "(no Cellpose-free path; it would silently fall back to sparsery)"
            )
        models = optional_import("cellpose.models")
        model = self.settings()["detection"]["cellpose_settings"]["cellpose_model"]
        model_dir = Path(getattr(models, "MODEL_DIR", Path.home() / ".cellpose" / "models"))
        if not (model_dir / model).exists() and not Path(model).exists():
            return (
                f"cellpose {_version('cellpose')} is installed but its default model "
                f"'{model}' is not in {model_dir} (suite2p would download it; "
                "not fetched for this benchmark)"
            )
        return None


def _neurofinder_rows(s2p: _Suite2p, quick: bool) -> list[Row]:
    bench = "neurofinder crop detection"
    size = "400x256x256 uint16, 106 labels"
    if not (NEUROFINDER / "movie.tif").exists():
        return [skipped_row(bench, IMPLEMENTATION, size, f"data not found at {NEUROFINDER}")]
    import tifffile

    movie = tifffile.imread(NEUROFINDER / "movie.tif")
    shape = movie.shape[1:]
    truth = RoiSet.from_neurofinder(json.loads((NEUROFINDER / "regions.json").read_text()), shape)
    work = {"frames": float(movie.shape[0])}
    repeat = 1 if quick else 3
    rows: list[Row] = []
    kept: dict[str, Any] = {}

    def ours() -> None:
        kept["ours"] = detect_rois(movie)

    t = time_call(ours, repeat=repeat, warmup=1)
    text, params = _scores(kept["ours"], truth)
    rows.append(
        Row(
            bench,
            IMPLEMENTATION,
            size,
            t,
            work,
            notes=f"defaults (nothing given); {len(kept['ours'])} ROIs; {text}",
            params=params,
        )
    )

    impl = "suite2p"
    if not s2p.ok:
        reason = "suite2p is not importable here"
        rows.append(skipped_row(bench, f"{impl} sparsery (defaults)", size, reason))
        rows.append(skipped_row(bench, f"{impl} sparsery + iscell", size, reason))
        rows.append(skipped_row(bench, f"{impl} anatomical (cellpose)", size, reason))
        return rows

    movie32 = movie.astype(np.float32)  # outside the timing

    def theirs() -> None:
        kept["s2p"] = s2p.detect(movie32, tau=NF_TAU, fs=NF_FS)

    t = time_call(theirs, repeat=repeat, warmup=1)
    stat = kept["s2p"]
    scale = s2p.last_scale
    rois = RoiSet.from_suite2p_stat(stat, shape)
    text, params = _scores(rois, truth)
    rows.append(
        Row(
            bench,
            f"{impl} {s2p.version} sparsery (defaults)",
            size,
            t,
            work,
            notes=f"all ROIs, fs {NF_FS:g}, tau {NF_TAU:g}, diameter 12 (default), CPU; "
            f"auto spatial scale {scale} px; {len(rois)} ROIs; {text}; {ISSUE_FIGURE}",
            params=params,
        )
    )

    start = time.perf_counter()
    iscell = s2p.iscell(stat, movie32)
    t_cls = time.perf_counter() - start
    cells = stat[iscell[:, 0] > 0]
    total = Timing((t.best + t_cls,))
    if len(cells):
        text, params = _scores(RoiSet.from_suite2p_stat(cells, shape), truth)
    else:
        text, params = "no ROI classified as cell", {}
    rows.append(
        Row(
            bench,
            f"{impl} {s2p.version} sparsery + iscell",
            size,
            total,
            work,
            notes=f"{s2p.classfile()[1]} classifier, skew from extracted traces; "
            f"time = detection (best) + extraction/classify {t_cls:.2f} s; "
            f"{len(cells)}/{len(stat)} ROIs kept; {text}",
            params=params,
        )
    )

    why = s2p.cellpose_missing()
    name = f"{impl} {s2p.version} anatomical (cellpose)"
    if why is not None:
        rows.append(skipped_row(bench, name, size, why))
        return rows

    def anatomical() -> None:
        kept["anat"] = s2p.detect(movie32, tau=NF_TAU, fs=NF_FS, algorithm="cellpose")

    try:
        t = time_call(anatomical, repeat=1, warmup=0)
    except Exception as exc:  # e.g. model download failing
        rows.append(skipped_row(bench, name, size, f"failed: {type(exc).__name__}: {exc}"))
        return rows
    rois = RoiSet.from_suite2p_stat(kept["anat"], shape)
    text, params = _scores(rois, truth)
    rows.append(Row(bench, name, size, t, work, notes=f"{len(rois)} ROIs; {text}", params=params))
    return rows


def _synthetic_rows(s2p: _Suite2p, quick: bool) -> list[Row]:
    n_frames, side, n_neurons = (500, 256, 50) if quick else (2000, 512, 200)
    start = time.perf_counter()
    rec = simulate_recording(
        n_frames=n_frames, shape=(side, side), n_neurons=n_neurons, seed=0, lazy=False
    )
    movie = np.ascontiguousarray(np.asarray(rec.movie), dtype=np.float32)
    gen_s = time.perf_counter() - start
    truth = RoiSet.from_label_image(rec.truth.labels)
    bench = "synthetic detection (d=12 px, 30 Hz)"
    size = f"{n_frames}x{side}x{side} float32, {len(truth)} cells"
    work = {"frames": float(n_frames), "MB": movie.nbytes / 1e6}
    small = np.ascontiguousarray(movie[:300, :128, :128])  # warm-up (numba compile, imports)
    rows: list[Row] = []
    kept: dict[str, Any] = {}

    def ours() -> None:
        kept["ours"] = detect_rois(movie, frame_rate_hz=SYN_FS, cell_diameter_px=SYN_DIAMETER)

    detect_rois(small, frame_rate_hz=SYN_FS, cell_diameter_px=SYN_DIAMETER)
    t = time_call(ours, repeat=1, warmup=0, memory=True)
    found = kept.pop("ours")
    text, params = _scores(found, truth)
    rows.append(
        Row(
            bench,
            IMPLEMENTATION,
            size,
            t,
            work,
            notes=f"frame_rate_hz=30, cell_diameter_px=12; {len(found)} ROIs; {text}; "
            f"{_rss_note(t)}; "
            f"movie generated in {gen_s:.0f} s (not timed)",
            params=params,
        )
    )
    del found

    if not s2p.ok:
        rows.append(skipped_row(bench, "suite2p sparsery", size, "suite2p is not importable"))
        return rows

    def theirs() -> None:
        kept["s2p"] = s2p.detect(movie, tau=SYN_TAU, fs=SYN_FS, diameter=SYN_DIAMETER)

    s2p.detect(small, tau=SYN_TAU, fs=SYN_FS, diameter=SYN_DIAMETER)
    t = time_call(theirs, repeat=1, warmup=0, memory=True)
    found = RoiSet.from_suite2p_stat(kept.pop("s2p"), movie.shape[1:])
    scale = s2p.last_scale
    text, params = _scores(found, truth)
    rows.append(
        Row(
            bench,
            f"suite2p {s2p.version} sparsery",
            size,
            t,
            work,
            notes=f"fs 30, tau 0.4, diameter 12, other settings default, CPU; auto "
            f"spatial scale {scale} px; all ROIs (no iscell); {len(found)} ROIs; {text}; "
            f"{_rss_note(t)}",
            params=params,
        )
    )
    return rows


def run(quick: bool = False) -> list[Row]:
    """Run napari-calcium's and suite2p's detection side by side; see the module docstring.

    Parameters
    ----------
    quick : bool, optional
        One repeat on the neurofinder crop and a 500 x 256 x 256 synthetic movie.

    Returns
    -------
    list of Row
    """
    s2p = _Suite2p()
    rows = _neurofinder_rows(s2p, quick)
    rows.extend(_synthetic_rows(s2p, quick))
    return rows


if __name__ == "__main__":  # convenience: python benchmarks/bench_detection_peers.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

"""The pipeline's steps: one small function each, reading the previous steps' files.

Every step reads what it needs from the output folder (never from the step before it in memory),
so a step runs the same whether the steps before it ran now or were skipped, and writes its
outputs atomically (temporary file + rename). Movies stay on disk: the input and the
intermediate binary movies are opened lazily (dask) and the core functions walk them in blocks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core._backend import is_dask_array
from ..errors import ParameterError, RecordingError, ShapeError
from ..io._atomic import atomic_output
from ..io._serial import host, jsonable
from .config import PipelineConfig, file_name_problem

#: file names inside the output folder
RECORDING = "recording.json"
FRAMES_MOVIE = "frames_repaired.bin"
FRAMES = "steps/frames.json"
MOTION_MOVIE = "motion_corrected.bin"
MOTION_SHIFTS = "motion.npz"
FILTERED_MOVIE = "filtered.bin"
SUMMARY = "summary_images.npz"
ROIS = "rois.npz"
ROIS_CHECK = "steps/rois_check.json"  # detection's DetectionWarning, with its numbers
EXTRACT = "steps/extract.npz"
DFF = "steps/dff.npz"
DECONVOLVE = "steps/deconvolve.npz"
EVENTS = "events.npz"


@dataclass
class Context:
    """What every step gets: the input, the output folder, the config and the hooks."""

    input_path: Path
    out_dir: Path
    config: PipelineConfig
    progress: Any = None
    should_stop: Callable[[], bool] | None = None
    #: a ``distributed.Client``: the per-frame steps (motion, filter) run on its workers
    client: Any = None
    _info: dict[str, Any] | None = field(default=None, repr=False)

    def params(self, section: str, drop: tuple[str, ...] = ()) -> dict[str, Any]:
        """Keyword arguments of a section (tuples kept, the step-choosing keys dropped)."""
        values = dict(vars(getattr(self.config, section)))
        return {k: v for k, v in values.items() if k not in drop}

    @property
    def hooks(self) -> dict[str, Any]:
        return {"progress": self.progress, "should_stop": self.should_stop}

    @property
    def info(self) -> dict[str, Any]:
        """The ``recording.json`` the open step wrote (frame rate, pixel size, shape, ...)."""
        if self._info is None:
            path = self.out_dir / RECORDING
            try:
                self._info = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RecordingError(path, f"cannot read it ({exc}); rerun the open step") from None
        return self._info

    @property
    def frame_rate_hz(self) -> float:
        return float(self.info["frame_rate_hz"])

    @property
    def pixel_size_um(self) -> tuple[float, float] | None:
        px = self.info.get("pixel_size_um")
        return None if px is None else tuple(px)


def movie_file(config: PipelineConfig) -> str | None:
    """The intermediate movie the ROI and trace steps read (None: the input itself)."""
    if config.filter.enabled:
        return FILTERED_MOVIE
    if config.motion.enabled:
        return MOTION_MOVIE
    if config.frames.writes_movie:
        return FRAMES_MOVIE
    return None


def open_input(ctx: Context) -> tuple[Any, Any]:
    """The input movie ``(frames, y, x)``, lazily, and its RecordingMetadata."""
    from ..io.open import open_recording

    cfg = ctx.config.open
    rec = open_recording(ctx.input_path, format=cfg.format)
    if cfg.channel is None:
        movie = rec.movie
    elif cfg.channel in rec.channels:
        movie = rec.channels[cfg.channel]
    else:
        raise ParameterError(
            f"[open] channel: {ctx.input_path} has no channel {cfg.channel!r}; "
            f"it has {', '.join(map(repr, rec.channels))}"
        )
    if movie.ndim == 4:
        if cfg.plane is None or cfg.plane >= movie.shape[1]:
            raise ParameterError(
                f"[open] plane: {ctx.input_path} has {movie.shape[1]} planes; "
                "choose one with plane = 0 .. n_planes - 1"
            )
        movie = movie[:, cfg.plane]
    elif cfg.plane not in (None, 0):
        raise ParameterError(f"[open] plane: {ctx.input_path} is single-plane; got {cfg.plane}")
    if movie.ndim != 3:
        raise ShapeError(f"{ctx.input_path}: expected a (frames, y, x) movie, got {movie.shape}")
    return movie, rec.metadata


def current_movie(ctx: Context, file: str | None) -> Any:
    """The movie a step reads: an intermediate binary movie (lazy) or the input (lazy)."""
    if file is None:
        return open_input(ctx)[0]
    from ..io.binary import open_binary

    return open_binary(ctx.out_dir / file).movie


def save_npz(path: Path, **arrays: Any) -> Path:
    """``np.savez`` atomically (no pickles)."""
    with atomic_output(path, overwrite=True) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
    return path


def _save_json(path: Path, data: Any) -> Path:
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(jsonable(data), indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# the steps: each returns the paths it wrote
# --------------------------------------------------------------------------------------------


def step_open(ctx: Context, source: str | None) -> list[Path]:
    """Open the input lazily, check it and record its shape, frame rate and pixel size."""
    cfg = ctx.config.open
    movie, meta = open_input(ctx)
    rate = cfg.frame_rate_hz or meta.frame_rate_hz
    if not rate:
        raise ParameterError(
            f"{ctx.input_path}: the frame rate is not in the file's metadata; "
            "set [open] frame_rate_hz"
        )
    px = (cfg.pixel_size_um,) * 2 if cfg.pixel_size_um else meta.pixel_size_um
    meta_dict = {k: v for k, v in meta.to_dict().items() if k != "timestamps_s"}
    info = {
        "input": str(ctx.input_path),
        "shape": list(movie.shape),
        "dtype": str(movie.dtype),
        "frame_rate_hz": float(rate),
        "pixel_size_um": None if px is None else [float(p) for p in px],
        "channel": cfg.channel,
        "plane": cfg.plane,
        "metadata": meta_dict,
    }
    ctx._info = None
    return [_save_json(ctx.out_dir / RECORDING, info)]


def _save_movie(ctx: Context, name: str, movie: Any) -> Path:
    from ..io.binary import save_binary

    bin_path = ctx.out_dir / name
    kwargs = {"frame_rate_hz": ctx.frame_rate_hz, "pixel_size_um": ctx.pixel_size_um}
    if ctx.client is not None and is_dask_array(movie):
        from ._chunked import store_on_cluster

        store_on_cluster(ctx.client, movie, bin_path, overwrite=True, **kwargs, **ctx.hooks)
    else:
        save_binary(bin_path, movie, overwrite=True, **kwargs, **ctx.hooks)
    return bin_path


def step_frames(ctx: Context, source: str | None) -> list[Path]:
    """Corrupted frames (wireless miniscopes): found, listed, and interpolated or dropped."""
    from ..core.movie.corrupt_frames import detect_corrupted_frames, repair_corrupted_frames

    cfg = ctx.config.frames
    movie = current_movie(ctx, source)
    found = detect_corrupted_frames(movie, threshold=cfg.threshold, **ctx.hooks)
    report = {
        "repair": cfg.repair,
        "threshold": float(found.threshold),
        "n_frames": int(found.n_frames),
        "corrupted": [int(i) for i in found.indices],
        "scores": [round(float(v), 3) for v in np.asarray(found.scores)[found.indices]],
    }
    outputs = []
    if cfg.writes_movie:
        repaired = repair_corrupted_frames(movie, found, mode=cfg.repair)
        bin_path = _save_movie(ctx, FRAMES_MOVIE, repaired.movie)
        outputs += [bin_path, bin_path.with_suffix(".json")]
        # after "drop", frame k of the movie is this frame of the input
        report["source_frames"] = [int(i) for i in repaired.source_frames]
    (ctx.out_dir / FRAMES).parent.mkdir(parents=True, exist_ok=True)
    return [*outputs, _save_json(ctx.out_dir / FRAMES, report)]


def step_motion(ctx: Context, source: str | None) -> list[Path]:
    """Rigid or piecewise-rigid motion correction; the corrected movie is written block by block.

    With a client, rigid shifts are measured and applied chunk by chunk on the cluster; piecewise
    shifts are measured here (block by block) and the lazy correction is computed on the cluster
    when the movie is written. ``motion.npz`` holds the piecewise patch shifts
    (``patch_shifts`` (frames, n_py, n_px, 2), ``patch_centres_y``, ``patch_centres_x``) too.
    """
    movie = current_movie(ctx, source)
    params = ctx.params("motion", ("enabled",))
    piecewise_keys = ("piecewise", "patch_px", "overlap_px", "max_deviation_px")
    extra: dict[str, Any] = {}
    if ctx.client is not None and is_dask_array(movie) and not params["piecewise"]:
        from ._chunked import motion_correct_on_cluster

        rigid = {k: v for k, v in params.items() if k not in piecewise_keys}
        result = motion_correct_on_cluster(ctx.client, movie, **rigid, **ctx.hooks)
    else:
        from ..core.movie.motion.rigid import motion_correct

        if not params["piecewise"]:
            params = {k: v for k, v in params.items() if k not in piecewise_keys}
        done = motion_correct(movie, **params, **ctx.hooks)
        result = {k: getattr(done, k) for k in ("movie", "shifts", "template",
                                                "peak_correlation", "valid_box")}  # fmt: skip
        if done.piecewise:
            extra = {
                "patch_shifts": done.patch_shifts,
                "patch_peak_correlation": done.patch_peak_correlation,
                "patch_centres_y": done.patch_centres[0],
                "patch_centres_x": done.patch_centres[1],
            }
    bin_path = _save_movie(ctx, MOTION_MOVIE, result["movie"])
    shifts = save_npz(
        ctx.out_dir / MOTION_SHIFTS,
        shifts=result["shifts"],
        template=host(result["template"]),
        peak_correlation=result["peak_correlation"],
        valid_box=np.asarray(result["valid_box"]),
        **extra,
    )
    return [bin_path, bin_path.with_suffix(".json"), shifts]


def step_filter(ctx: Context, source: str | None) -> list[Path]:
    """Median or Gaussian filter (lazy per block), written as a binary movie."""
    from ..core.movie.filters import gaussian_filter, median_filter

    cfg = ctx.config.filter
    movie = current_movie(ctx, source)
    kwargs = {"axes": cfg.axes, "mode": cfg.mode}
    if cfg.kind == "median":
        filtered = median_filter(movie, size=cfg.size, **kwargs)
    else:
        filtered = gaussian_filter(movie, sigma=cfg.sigma, **kwargs)
    bin_path = _save_movie(ctx, FILTERED_MOVIE, filtered)
    return [bin_path, bin_path.with_suffix(".json")]


def step_summary(ctx: Context, source: str | None) -> list[Path]:
    """Projections (and local correlation / PNR images), one pass each over the movie."""
    from ..core.movie.projections import projections
    from ..core.movie.summary_images import correlation_pnr

    cfg = ctx.config.summary
    movie = current_movie(ctx, source)
    images = {k: host(v) for k, v in projections(movie, cfg.kinds, **ctx.hooks).items()}
    if cfg.correlation:
        cp = correlation_pnr(
            movie, gaussian_sigma_px=cfg.gaussian_sigma_px, neighbours=cfg.neighbours, **ctx.hooks
        )
        images.update(correlation=host(cp.correlation), pnr=host(cp.pnr))
    return [save_npz(ctx.out_dir / SUMMARY, **images)]


def step_rois(ctx: Context, source: str | None) -> list[Path]:
    """Detect ROIs in the movie, or load them from a file; saved as ``rois.npz``."""
    from ..io.roi_files import load_rois, save_rois

    cfg = ctx.config.rois
    movie = current_movie(ctx, source)
    if cfg.method == "file":
        rois = load_rois(cfg.path, shape=tuple(movie.shape[-2:]), allow_pickle=cfg.allow_pickle)
    else:
        import warnings

        from ..core.rois.detection.detect import detect_rois
        from ..errors import DetectionWarning

        kwargs = ctx.params("rois", ("method", "path", "allow_pickle"))
        if kwargs["modality"] == "auto":
            from ..io.metadata import recording_modality

            kwargs["modality"] = recording_modality(ctx.info.get("metadata") or {})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DetectionWarning)
            rois = detect_rois(
                movie, frame_rate_hz=ctx.frame_rate_hz, pixel_size_um=ctx.pixel_size_um,
                **kwargs, **ctx.hooks,
            )  # fmt: skip
        for w in caught:  # shown again, so the CLI and the user's own filters still see them
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        found = [w.message for w in caught if issubclass(w.category, DetectionWarning)]
        check = {
            "warnings": [str(m) for m in found],
            "checks": [m.check.as_dict() for m in found if getattr(m, "check", None) is not None],
        }
        saved = save_rois(rois, ctx.out_dir / ROIS, format="npz", overwrite=True)
        (ctx.out_dir / ROIS_CHECK).parent.mkdir(parents=True, exist_ok=True)
        return [saved, _save_json(ctx.out_dir / ROIS_CHECK, check)]
    return [save_rois(rois, ctx.out_dir / ROIS, format="npz", overwrite=True)]


def _save_traces(ctx: Context, name: str, traces: Any, **kwargs: Any) -> list[Path]:
    from ..io.roi_files import load_rois
    from ..io.trace_files import save_traces

    path = ctx.out_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    rois = load_rois(ctx.out_dir / ROIS)
    return list(save_traces(path, traces, rois=rois, overwrite=True, **kwargs))


def step_extract(ctx: Context, source: str | None) -> list[Path]:
    """Cell and neuropil traces from the movie and the saved ROIs."""
    from ..core.traces.extraction import extract_traces
    from ..io.roi_files import load_rois

    movie = current_movie(ctx, source)
    rois = load_rois(ctx.out_dir / ROIS)
    traces = extract_traces(
        movie, rois, frame_rate_hz=ctx.frame_rate_hz, **ctx.params("extract"), **ctx.hooks
    )
    return _save_traces(ctx, EXTRACT, traces)


def step_dff(ctx: Context, source: str | None) -> list[Path]:
    """dF/F of the neuropil-corrected traces, with the raw F for the denominator rule and flags.

    Given the TraceSet, :func:`~napari_calcium.compute_dff` divides by ``max(F0c, 0.1 F0raw)``
    and flags the neuropil-dominated ROIs (their rows are kept in the saved dF/F parameters).
    """
    from ..core.traces.dff import compute_dff
    from ..io.trace_files import load_traces

    traces = load_traces(ctx.out_dir / EXTRACT)[0]
    dff = compute_dff(traces, frame_rate_hz=ctx.frame_rate_hz, **ctx.params("dff"))
    return _save_traces(ctx, DFF, traces, dff=dff)


def step_deconvolve(ctx: Context, source: str | None) -> list[Path]:
    """Spike inference on dF/F (or the corrected traces)."""
    from ..core.spikes.deconvolution.api import deconvolve
    from ..io.trace_files import load_traces

    traces, dff, _ = load_traces(ctx.out_dir / DFF)
    what = ctx.config.deconvolve.input
    x = dff.dff if what == "dff" else traces.corrected
    kwargs = ctx.params("deconvolve", ("enabled", "input"))
    spikes = deconvolve(x, frame_rate_hz=ctx.frame_rate_hz, ids=traces.ids, **kwargs)
    return _save_traces(ctx, DECONVOLVE, traces, dff=dff, spikes=spikes, spikes_input=what)


#: [events] keys each method does not take
_EVENTS_ONLY = {
    "noise": ("threshold_sd", "force_nonneg"),
    "calscipy": ("false_rate_hz", "threshold_sigma", "activity_window_s"),
}


def step_events(ctx: Context, source: str | None) -> list[Path]:
    """Calcium events per ROI from dF/F (frame indices), saved as ``events.npz``.

    ``method = "noise"`` (default): :func:`~napari_calcium.core.spikes.event_detection.
    detect_events`, whose amplitude, SNR and score per event (``amplitude``, ``snr``,
    ``score``, aligned with ``frames``) and noise σ and threshold per ROI (``noise_sd``,
    ``threshold_sigma``) are saved too; ``"calscipy"``: ``identify_events``.
    """
    from ..core.spikes.event_detection import detect_events
    from ..core.spikes.events import identify_events
    from ..io.trace_files import load_traces

    traces, dff, _ = load_traces(ctx.out_dir / DFF)
    method = ctx.config.events.method
    kwargs = ctx.params("events", ("enabled", "method", *_EVENTS_ONLY[method]))
    detect = detect_events if method == "noise" else identify_events
    events = detect(dff.dff, frame_rate_hz=ctx.frame_rate_hz, **kwargs)
    counts = np.array([len(e) for e in events], dtype=np.int64)
    frames = np.concatenate([np.asarray(e, dtype=np.int64) for e in events] or [np.zeros(0, int)])
    extra: dict[str, np.ndarray] = {}
    if method == "noise":
        cat = lambda rows: np.concatenate([np.zeros(0), *rows])  # noqa: E731
        extra = {
            "amplitude": cat(events.amplitude), "snr": cat(events.snr),
            "score": cat(events.score), "noise_sd": events.noise_sd,
            "threshold_sigma": events.threshold_sigma,
        }  # fmt: skip
    path = save_npz(
        ctx.out_dir / EVENTS, ids=traces.ids, counts=counts, frames=frames,
        frame_rate_hz=np.float64(ctx.frame_rate_hz),
        parameters=json.dumps(jsonable({"method": method, **kwargs})), **extra,
    )  # fmt: skip
    return [path]


def step_export(ctx: Context, source: str | None) -> list[Path]:
    """The final trace set (traces, dF/F, spikes, ROI table) in each requested format."""
    from ..io.trace_files import load_traces

    cfg = ctx.config.export
    problem = file_name_problem(cfg.name)  # load_config checked it; this is the last guard
    if problem:  # before writing: nothing is ever written outside the output folder
        raise ParameterError(f"[export] name: {problem}")
    if ctx.config.deconvolve.enabled:
        traces, dff, spikes, _ = load_traces(ctx.out_dir / DECONVOLVE, with_spikes=True)
        spikes_input = ctx.config.deconvolve.input
    else:
        (traces, dff, _), spikes, spikes_input = load_traces(ctx.out_dir / DFF), None, None
    out: list[Path] = []
    for fmt in cfg.formats:
        out += _save_traces(
            ctx, f"{cfg.name}.{fmt}", traces, dff=dff, spikes=spikes,
            spikes_input=spikes_input, format=fmt,
        )  # fmt: skip
    return out


def load_events(path: Path) -> list[np.ndarray]:
    """The per-ROI event frames saved by :func:`step_events`."""
    with np.load(path, allow_pickle=False) as data:
        counts, frames = data["counts"], data["frames"]
    return list(np.split(frames, np.cumsum(counts)[:-1])) if len(counts) else []

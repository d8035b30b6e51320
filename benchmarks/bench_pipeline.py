"""The headless pipeline (issue 8): per-step breakdown on one recording; batch throughput.

One synthetic recording, 2,000 × 512 × 512 uint16 at 30 Hz with 200 cells and 2 px of motion
(``--quick``: 300 × 128 × 128, 20 cells), written to a TIFF in a temporary folder, then
``run_pipeline`` with the default config plus motion correction and a 3 × 3 median filter (so
every step runs). One row per step (from the run's own step records), one for the whole run with
the peak RSS increase, one for a second run that resumes (every step skipped), and the same
movie on a ``distributed.LocalCluster`` of 2 workers, whose motion and filter steps run chunk by
chunk on the workers.

Throughput: 8 synthetic recordings of 900 × 256 × 256 (``--quick``: 4 of 200 × 64 × 64), default
config, through ``run_batch`` serially in this process and on a ``distributed.LocalCluster`` of 1
and 2 worker processes (skipped without ``distributed``). Run it:
``python benchmarks/run.py --only pipeline [--quick]``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from _harness.memory import MiB, RssSampler
from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import Timing
from napari_calcium import run_batch, run_pipeline, simulate_recording
from napari_calcium.io.tiff import write_tiff_stack
from napari_calcium.pipeline.provenance import read_provenance

IMPLEMENTATION = "napari-calcium"
CONFIG = {"motion": {"enabled": True}, "filter": {"enabled": True, "kind": "median", "size": 3}}


def _write(folder: Path, name: str, n_frames: int, side: int, cells: int, seed: int) -> Path:
    rec = simulate_recording(
        n_frames=n_frames, shape=(side, side), n_neurons=cells, motion_px=2.0, seed=seed
    )
    return write_tiff_stack(
        folder / f"{name}.tif",
        rec.movie,
        frame_rate_hz=rec.metadata["frame_rate_hz"],
        pixel_size_um=rec.metadata["pixel_size_um"],
    )


def throughput(quick: bool) -> list[Row]:
    """8 recordings through run_batch: serial, and 1 and 2 dask workers."""
    n_rec, n_frames, side, cells = (4, 200, 64, 6) if quick else (8, 900, 256, 40)
    size = f"{n_rec} recordings of {n_frames}x{side}x{side} uint16, {cells} cells"
    work = {"recordings": float(n_rec), "frames": float(n_rec * n_frames)}
    rows: list[Row] = []
    bench = "pipeline batch throughput"
    with tempfile.TemporaryDirectory(prefix="nc-bench-batch-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        inputs = [_write(folder, f"rec{i}", n_frames, side, cells, seed=i) for i in range(n_rec)]
        runs: list[tuple[str, Any]] = [("serial, this process", None)]
        if optional_import("distributed") is None:
            rows.append(skipped_row(bench, IMPLEMENTATION, size, "distributed not installed"))
        else:
            runs += [
                ("LocalCluster, 1 worker", ("local", 1)),
                ("LocalCluster, 2 workers", ("local", 2)),
            ]
        for label, sched in runs:
            out = Path(tmp) / label.replace(" ", "_").replace(",", "")
            kwargs = {} if sched is None else {"scheduler": sched[0], "workers": sched[1]}
            box: dict[str, Any] = {}
            t0 = time.perf_counter()
            box["items"] = run_batch(inputs, out, progress=False, **kwargs)
            seconds = time.perf_counter() - t0
            done = sum(item.ok for item in box["items"])
            rows.append(
                Row(bench, f"{IMPLEMENTATION} {label}", size, Timing((seconds,)), work,
                    notes=f"{done}/{n_rec} done" + ("" if sched is None else
                                                     "; includes starting the cluster"))
            )  # fmt: skip
    return rows


def run(quick: bool = False) -> list[Row]:
    """Per-step seconds of one pipeline run and batch throughput; see the module docstring."""
    return breakdown(quick) + throughput(quick)


def breakdown(quick: bool) -> list[Row]:
    """Per-step seconds of one pipeline run; see the module docstring."""
    n_frames, side, cells = (300, 128, 20) if quick else (2000, 512, 200)
    size = f"{n_frames}x{side}x{side} uint16, {cells} cells"
    work = {"frames": float(n_frames)}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nc-bench-pipeline-") as tmp:
        rec = simulate_recording(
            n_frames=n_frames, shape=(side, side), n_neurons=cells, motion_px=2.0, seed=0
        )
        movie = write_tiff_stack(
            Path(tmp) / "movie.tif",
            rec.movie,
            frame_rate_hz=rec.metadata["frame_rate_hz"],
            pixel_size_um=rec.metadata["pixel_size_um"],
        )
        del rec
        out = Path(tmp) / "results"
        box: dict[str, Any] = {}
        with RssSampler(interval_s=0.05) as rss:
            box["run"] = run_pipeline(movie, out, CONFIG)
        result = box["run"]
        for step in result.steps:
            if step.status == "disabled":
                continue
            rows.append(
                Row(f"pipeline step: {step.name}", IMPLEMENTATION, size,
                    Timing((float(step.seconds),)), work, notes=step.status)
            )  # fmt: skip
        s = result.summary
        peak = rss.peak_delta_bytes
        peak_text = "n/a" if peak is None else f"{peak / MiB:.0f} MiB"
        rows.append(
            Row("pipeline: whole run", IMPLEMENTATION, size, Timing((float(s["seconds"]),)), work,
                notes=f"{s['n_rois']} ROIs, {s['n_events']} events; peak RSS increase "
                      f"{peak_text} (movie on disk: {movie.stat().st_size / MiB:.0f} MiB)")
        )  # fmt: skip
        again = run_pipeline(movie, out, CONFIG)
        skipped = sum(step.status == "skipped" for step in again.steps)
        rows.append(
            Row("pipeline: rerun (resume)", IMPLEMENTATION, size,
                Timing((float(again.summary["seconds"]),)), work,
                notes=f"{skipped} steps skipped")
        )  # fmt: skip
        rows += _chunked(movie, Path(tmp) / "chunked", size, work)
    return rows


def _chunked(movie: Path, out: Path, size: str, work: dict[str, float]) -> list[Row]:
    """The same movie through run_batch on a LocalCluster of 2 workers: per-frame steps split."""
    bench = "pipeline, one movie on 2 dask workers"
    if optional_import("distributed") is None:
        return [skipped_row(bench, IMPLEMENTATION, size, "distributed not installed")]
    t0 = time.perf_counter()
    (item,) = run_batch(movie, out, CONFIG, scheduler="local", workers=2, progress=False)
    seconds = time.perf_counter() - t0
    if not item.ok:
        return [skipped_row(bench, IMPLEMENTATION, size, f"failed: {item.error}")]
    record = read_provenance(out)
    rows = [
        Row(f"{bench}: {name}", IMPLEMENTATION, size,
            Timing((float(record["steps"][name]["seconds"]),)), work,
            notes="chunks of frames on the workers")
        for name in ("motion", "filter")
    ]  # fmt: skip
    rows.append(
        Row(f"{bench}: whole run", IMPLEMENTATION, size, Timing((seconds,)), work,
            notes="includes starting the cluster; other steps in the client process")
    )  # fmt: skip
    return rows


if __name__ == "__main__":  # python benchmarks/bench_pipeline.py [--quick]
    import sys

    from _harness.results import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

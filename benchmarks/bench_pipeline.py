"""The headless pipeline (issue 8): per-step time breakdown and peak memory on one recording.

One synthetic recording, 2,000 × 512 × 512 uint16 at 30 Hz with 200 cells and 2 px of motion
(``--quick``: 300 × 128 × 128, 20 cells), written to a TIFF in a temporary folder, then
``run_pipeline`` with the default config plus motion correction and a 3 × 3 median filter (so
every step runs). One row per step (from the run's own step records), one for the whole run with
the peak RSS increase, and one for a second run that resumes (every step skipped). Run it:
``python benchmarks/run.py --only pipeline [--quick]``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from _harness import MiB, Row, RssSampler, Timing
from napari_calcium import run_pipeline, simulate_recording
from napari_calcium.io.tiff import write_tiff_stack

IMPLEMENTATION = "napari-calcium"
CONFIG = {"motion": {"enabled": True}, "filter": {"enabled": True, "kind": "median", "size": 3}}


def run(quick: bool = False) -> list[Row]:
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
    return rows


if __name__ == "__main__":  # python benchmarks/bench_pipeline.py [--quick]
    import sys

    from _harness import Table

    print(Table(run(quick="--quick" in sys.argv)).render())

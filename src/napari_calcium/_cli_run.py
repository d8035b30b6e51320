"""``napari-calcium run``: the headless pipeline on one recording or a folder of recordings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import NapariCalciumError, RecordingError

__all__ = ["add_run", "find_recordings", "run"]


def find_recordings(path: Path) -> list[Path]:
    """The recordings at ``path``: itself when it opens, else the entries of a folder that do.

    A ``.json`` sidecar beside a ``.bin`` of the same name is the same recording (kept once).

    Raises
    ------
    RecordingError
        ``path`` does not exist, or is neither a recording nor a folder holding one.
    """
    from .io.open import open_recording

    if not path.exists():
        raise RecordingError(path, "does not exist")
    try:
        open_recording(path)
        return [path]
    except RecordingError:
        if not path.is_dir():
            raise
    found = []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(".") or (
            entry.suffix.lower() == ".json" and entry.with_suffix(".bin").exists()
        ):
            continue
        try:
            open_recording(entry)
        except (RecordingError, OSError):
            continue
        found.append(entry)
    if not found:
        raise RecordingError(
            path, "is not a recording and holds none napari-calcium can open (see `info`)"
        )
    return found


def _summary_line(name: str, result) -> str:
    s = result.summary
    counts = {}
    for step in result.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    steps = ", ".join(f"{n} {status}" for status, n in counts.items())
    rate = s.get("mean_event_rate_hz")
    events = (
        f", {s['n_events']} events ({rate:.3f} per ROI per s)" if s.get("n_events") is not None
        else ""
    )  # fmt: skip
    return (
        f"{name}: {s['n_rois']} ROIs, {s['n_frames']} frames at {s['frame_rate_hz']:g} Hz "
        f"({s['duration_s']:.1f} s){events}; steps: {steps}; {s['seconds']:.1f} s "
        f"-> {result.out_dir}"
    )


def run(args: argparse.Namespace, progress_factory) -> int:
    """Run the pipeline on every recording of ``args.input``; a failure does not stop the rest."""
    from .pipeline import load_config, run_pipeline

    config = load_config(args.config)  # a bad config stops everything, before any work
    inputs = find_recordings(Path(args.input))
    out = Path(args.out) if args.out else Path(f"{Path(args.input).name}-results")
    failed = []
    for rec_path in inputs:
        target = out if len(inputs) == 1 else out / rec_path.stem
        try:
            result = run_pipeline(
                rec_path,
                target,
                config,
                progress=progress_factory(args.quiet),
                overwrite=args.overwrite,
            )
        except NapariCalciumError as exc:
            if len(inputs) == 1:
                raise
            failed.append(rec_path)
            print(f"napari-calcium run: error: {rec_path}: {exc}", file=sys.stderr)
            continue
        print(_summary_line(rec_path.name, result))
    if len(inputs) > 1:
        done = len(inputs) - len(failed)
        print(
            f"{done} of {len(inputs)} recordings done"
            + (f"; failed: {len(failed)}" if failed else "")
        )
    if failed:
        return 1
    print("Load the results with: napari_calcium.load_results(<output folder>)")
    return 0


def add_run(sub, handler) -> None:
    """The ``run`` subparser (``handler(args) -> int`` does the work)."""
    parser = sub.add_parser(
        "run",
        help="run the analysis pipeline (ROIs, traces, dF/F, spikes, events) on recordings",
        description=(
            "Run the pipeline on INPUT: a recording (anything `napari-calcium info` opens) or a "
            "folder of recordings (each gets a subfolder of --out). Steps whose outputs exist "
            "with the same parameters are skipped, so a rerun resumes."
        ),
    )
    parser.add_argument("input", metavar="INPUT", help="recording, or folder of recordings")
    parser.add_argument(
        "--config", metavar="FILE", help="pipeline config (TOML or YAML); default: the built-in"
    )
    parser.add_argument(
        "--out", metavar="DIR", help="output folder (default: ./<INPUT name>-results)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="recompute everything into an existing folder"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=handler)

"""``napari-calcium run``: the headless pipeline on one recording or a folder of recordings."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ParameterError

if TYPE_CHECKING:
    from .pipeline.cluster import BatchItem

__all__ = ["add_run", "find_recordings", "run"]


def find_recordings(path: Path) -> list[Path]:
    """See :func:`napari_calcium.pipeline.cluster.find_recordings` (imported when needed)."""
    from .pipeline.cluster import find_recordings as find

    return find(path)


def _summary_line(item: BatchItem) -> str:
    s = item.summary
    counts: dict[str, int] = {}
    for status in item.steps.values():
        counts[status] = counts.get(status, 0) + 1
    steps = ", ".join(f"{n} {status}" for status, n in counts.items())
    rate = s.get("mean_event_rate_hz")
    events = (
        f", {s['n_events']} events ({rate:.3f} per ROI per s)" if s.get("n_events") is not None
        else ""
    )  # fmt: skip
    from .pipeline.steps import summary_notes

    flags = summary_notes(s)
    return (
        f"{item.input.name}: {s['n_rois']} ROIs, {s['n_frames']} frames at "
        f"{s['frame_rate_hz']:g} Hz ({s['duration_s']:.1f} s){events}; steps: {steps}{flags}; "
        f"{s['seconds']:.1f} s -> {item.out_dir}"
    )


def _report(item: BatchItem) -> None:
    """One line per finished recording: its summary on stdout, or its error on stderr."""
    if item.ok:
        print(_summary_line(item), flush=True)
        return
    error = str(item.error)
    if not error.startswith(str(item.input)):  # our errors lead with the file already
        error = f"{item.input}: {error}"
    print(f"napari-calcium run: error: {error}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, progress_factory) -> int:
    """Run the pipeline on every recording of ``args.input``; a failure does not stop the rest.

    Returns 0 when every recording is done, 1 when any failed. Mistakes found before any work
    (a bad config or option, a missing input, no ``distributed`` for ``--scheduler``) raise
    :class:`~napari_calcium.errors.NapariCalciumError` (status 2 in the command).
    """
    from .pipeline import load_config
    from .pipeline.cluster import output_folders, run_batch

    if args.workers is not None and args.scheduler != "local":
        raise ParameterError("--workers sets the size of --scheduler local; it needs that option")
    workers = 2 if args.workers is None else args.workers
    if workers < 1:
        raise ParameterError(f"--workers must be >= 1, got {workers}")
    config = load_config(args.config)  # a bad config stops everything, before any work
    rate, px = metadata_overrides(args)
    if rate is not None or px is not None:  # [open] of the config, so provenance records them
        given = {"frame_rate_hz": rate, "pixel_size_um": px}
        opened = dataclasses.replace(
            config.open, **{k: v for k, v in given.items() if v is not None}
        )
        config = load_config(dataclasses.replace(config, open=opened))  # checked as a config
    inputs = find_recordings(Path(args.input))
    out = Path(args.out) if args.out else Path(f"{Path(args.input).name}-results")
    output_folders(inputs, out)  # two recordings for one folder: say so before any work
    local = args.scheduler is None
    if not local:
        print(
            f"Running {len(inputs)} recording{'s' if len(inputs) != 1 else ''} on "
            + ("a local cluster of " + str(workers) + " worker processes"
               if args.scheduler == "local" else f"the dask scheduler at {args.scheduler}"),
            flush=True,
        )  # fmt: skip
        if len(inputs) == 1:
            print("Motion correction and filtering run chunk by chunk on the workers", flush=True)
    items = run_batch(
        inputs,
        out,
        config,
        scheduler=args.scheduler,
        workers=workers,
        overwrite=args.overwrite,
        progress=progress_factory(args.quiet) if local or len(inputs) == 1 else None,
        on_done=_report,
    )
    failed = [item for item in items if not item.ok]
    if len(items) > 1:
        done = len(items) - len(failed)
        print(
            f"{done} of {len(items)} recordings done"
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
    parser.add_argument(
        "--scheduler",
        metavar="local|ADDRESS",
        help="run the recordings in parallel on a dask.distributed cluster: 'local' starts one "
        "on this machine, an address (tcp://host:8786) uses a running one (needs "
        "napari-calcium[cluster]); default: one after another in this process",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes of --scheduler local (default 2)",
    )
    add_metadata_overrides(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=handler)


def metadata_overrides(args: argparse.Namespace) -> tuple[float | None, float | None]:
    """``--frame-rate-hz`` and ``--pixel-size-um`` as numbers (None where not given)."""
    values = []
    for option, value in (
        ("--frame-rate-hz", getattr(args, "frame_rate_hz", None)),
        ("--pixel-size-um", getattr(args, "pixel_size_um", None)),
    ):
        if value is None:
            values.append(None)
            continue
        try:
            number = float(value)
        except ValueError:
            raise ParameterError(f"{option} {value}: give a number") from None
        if not (math.isfinite(number) and number > 0):
            raise ParameterError(f"{option} {value}: must be a positive number")
        values.append(number)
    return values[0], values[1]


def add_metadata_overrides(parser: argparse.ArgumentParser) -> None:
    """``--frame-rate-hz`` and ``--pixel-size-um``: for files that do not state them."""
    parser.add_argument(
        "--frame-rate-hz",
        metavar="HZ",
        help="frame rate to use instead of the file's (volumes per second for a multi-plane "
        "recording); for files without one, e.g. a TIFF without metadata",
    )
    parser.add_argument(
        "--pixel-size-um",
        metavar="UM",
        help="pixel size in µm to use instead of the file's",
    )

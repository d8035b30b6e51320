"""The ``napari-calcium`` command: headless work from a terminal (no napari, no Qt).

Subcommands
-----------
``napari-calcium demo OUTDIR``
    Simulate a two-photon recording with ground truth and write it to ``OUTDIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ._version import __version__
from .errors import NapariCalciumError, OutputExistsError, RecordingError

__all__ = ["main"]

DEMO_FILES = ("movie.tif", "ground_truth.npz", "recording.json")


def _progress_factory(quiet: bool):
    if quiet:
        return None
    from tqdm.auto import tqdm

    def factory(total: int, desc: str | None = None):
        return tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, leave=False)

    return factory


def _demo(args: argparse.Namespace) -> int:
    from .core.synthetic import simulate_recording
    from .io.groundtruth import save_ground_truth
    from .io.tiff import write_tiff_stack

    out = Path(args.outdir)
    if out.exists() and not out.is_dir():
        raise RecordingError(out, "exists and is not a folder")
    if not args.overwrite:
        for name in DEMO_FILES:
            if (out / name).exists():
                raise OutputExistsError(out / name)
    out.mkdir(parents=True, exist_ok=True)
    progress = _progress_factory(args.quiet)
    t0 = time.perf_counter()
    rec = simulate_recording(
        n_frames=args.frames,
        shape=tuple(args.shape),
        n_neurons=args.neurons,
        frame_rate_hz=args.frame_rate,
        seed=args.seed,
        motion_px=args.motion,
        indicator=args.indicator,
        pixel_size_um=args.pixel_size,
        progress=progress,
    )
    truth, meta = rec.truth, rec.metadata
    movie_path = write_tiff_stack(
        out / "movie.tif",
        rec.movie,
        frame_rate_hz=meta["frame_rate_hz"],
        pixel_size_um=meta["pixel_size_um"],
        overwrite=args.overwrite,
        progress=progress,
    )
    truth_path = save_ground_truth(out / "ground_truth.npz", truth, overwrite=args.overwrite)
    record = {
        "written_by": f"napari-calcium {__version__}",
        "movie": movie_path.name,
        "ground_truth": truth_path.name,
        "shape": list(rec.movie.shape),
        "dtype": str(rec.movie.dtype),
        **{k: v for k, v in meta.items() if k != "timestamps_s"},
        "n_neurons": truth.n_neurons,
        "tau_rise_s": truth.tau_rise_s,
        "tau_decay_s": truth.tau_decay_s,
        "parameters": truth.parameters,
    }
    from .io._atomic import atomic_output

    with atomic_output(out / "recording.json", overwrite=args.overwrite) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    elapsed = time.perf_counter() - t0
    n, y, x = rec.movie.shape
    size_mb = movie_path.stat().st_size / 2**20
    print(
        f"Simulated {n} frames of {y}x{x} px at {meta['frame_rate_hz']:g} Hz "
        f"({n / meta['frame_rate_hz']:.1f} s), {truth.n_neurons} neurons "
        f"({truth.indicator or 'custom kinetics'}, {int(truth.spikes.sum())} spikes) "
        f"in {elapsed:.1f} s."
    )
    print(f"Wrote {out}/")
    print(
        f"  {movie_path.name:<18} movie, uint16 ImageJ TIFF, {size_mb:.1f} MiB "
        "(frame interval and µm/px in its metadata)"
    )
    print(
        f"  {truth_path.name:<18} ground truth: labels, footprints, spikes, calcium, neuropil, "
        "shifts (napari_calcium.io.groundtruth.load_ground_truth)"
    )
    print("  recording.json     acquisition metadata and simulation parameters")
    print(f"Open it in napari with: napari --plugin napari-calcium {movie_path}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-calcium",
        description="Calcium-imaging analysis from the command line (the napari plugin's engine).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    demo = sub.add_parser(
        "demo",
        help="simulate a two-photon recording with ground truth and write it to OUTDIR",
        description="Simulate a two-photon calcium recording (GCaMP6f-like neurons, neuropil, "
        "bleaching, shot and read noise, optional motion) and write movie.tif, "
        "ground_truth.npz and recording.json to OUTDIR.",
    )
    demo.add_argument("outdir", metavar="OUTDIR", help="folder to write into (created if needed)")
    demo.add_argument("--frames", type=int, default=1800, help="number of frames (default 1800)")
    demo.add_argument(
        "--shape",
        type=int,
        nargs=2,
        default=(256, 256),
        metavar=("Y", "X"),
        help="frame size in pixels (default 256 256)",
    )
    demo.add_argument("--neurons", type=int, default=60, help="number of neurons (default 60)")
    demo.add_argument("--frame-rate", type=float, default=30.0, help="frames per second (30)")
    demo.add_argument("--pixel-size", type=float, default=1.0, help="µm per pixel (1.0)")
    demo.add_argument("--indicator", default="GCaMP6f", help="kinetics preset (GCaMP6f)")
    demo.add_argument(
        "--motion",
        type=float,
        default=0.0,
        help="largest rigid displacement in pixels (default 0: no motion)",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--overwrite", action="store_true", help="replace existing output files")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-calcium`` command; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NapariCalciumError as exc:  # a user's mistake or bad input: message, no traceback
        print(f"napari-calcium {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"napari-calcium {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``napari-calcium`` command: headless work from a terminal (no napari, no Qt).

Subcommands
-----------
``napari-calcium demo OUTDIR``
    Simulate a two-photon recording with ground truth and write it to ``OUTDIR``.
``napari-calcium info PATH [--json]``
    What a recording holds (shape, timing, µm/px, ...), from its headers: no pixels are read.
``napari-calcium convert INPUT OUTPUT [--format bin|tif]``
    Repackage a recording into binary (``.bin`` + ``.json``) or TIFF stacks.
``napari-calcium run INPUT [--config FILE] [--out DIR] [--scheduler local|ADDRESS]``
    The analysis pipeline (:mod:`napari_calcium.pipeline`) on a recording or a folder of them,
    here or on a dask.distributed cluster.

Each subcommand is one ``_<name>(args) -> int`` function and one ``_add_<name>(sub)`` parser
builder; user mistakes raise :class:`~napari_calcium.errors.NapariCalciumError` and :func:`main`
turns them into one ``napari-calcium <command>: error: ...`` line and exit status 2 (1 for an
OSError such as a full disk, 130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ._cli_run import add_metadata_overrides, add_run, metadata_overrides, run
from ._version import __version__
from .errors import NapariCalciumError, OutputExistsError, ParameterError, RecordingError

__all__ = ["main"]

DEMO_FILES = ("movie.tif", "ground_truth.npz", "recording.json")
#: ``demo --bruker`` writes the movie as this PrairieView T-series folder instead of movie.tif
DEMO_BRUKER = "TSeries-demo-001"


#: set by the SIGTERM handler; stays set until the next command starts (see :func:`main`)
_TERMINATED = threading.Event()


def _stop_if_terminated() -> None:
    """Raise :class:`Terminated` if a SIGTERM came, even one whose exception was lost."""
    if _TERMINATED.is_set():
        raise Terminated(signal.SIGTERM)


class _Silent:
    """The progress bar of ``--quiet``: shows nothing, still a point where SIGTERM stops work."""

    def update(self, n: int = 1) -> None:
        _stop_if_terminated()

    def close(self) -> None:
        pass


def _progress_factory(quiet: bool):
    """A tqdm-like factory for the long steps (silent with `quiet`).

    Each ``update`` is also a stop point: once SIGTERM has come, it raises :class:`Terminated`
    there, so work stops at the next block even when the exception the signal handler raised
    was lost (raised inside a ``__del__``, a weakref callback, ...).
    """
    if quiet:
        return lambda total, desc=None: _Silent()
    from tqdm.auto import tqdm

    class _Bar(tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            _stop_if_terminated()
            return super().update(n)

    def factory(total: int, desc: str | None = None):
        return _Bar(total=total, desc=desc, unit="frame", file=sys.stderr, leave=False)

    return factory


def _number(value: str | float) -> int | float | str:
    """An option's text as an int, else a float (``1e11``, ``nan``), else as is (refused later)."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


#: ``demo`` option -> the keyword of :func:`~napari_calcium.simulate_recording` it sets
_DEMO_OPTIONS = {
    "frames": ("n_frames", "--frames"),
    "shape": ("shape", "--shape"),
    "neurons": ("n_neurons", "--neurons"),
    "frame_rate": ("frame_rate_hz", "--frame-rate"),
    "pixel_size": ("pixel_size_um", "--pixel-size"),
    "motion": ("motion_px", "--motion"),
    "seed": ("seed", "--seed"),
    "indicator": ("indicator", "--indicator"),
}


def _demo_parameters(args: argparse.Namespace) -> dict:
    """The demo's keywords for ``simulate_recording``, checked before any work.

    Sizes beyond what the simulator allows (a few GiB in all: see the ``MAX_*`` limits of
    :mod:`napari_calcium.core.synthetic.recording`), negative or NaN values raise
    :class:`~napari_calcium.errors.ParameterError` naming the option as typed and the largest
    value allowed; nothing is allocated or written.
    """
    import inspect

    from .core.synthetic.recording import _check_sizes, simulate_recording

    kwargs, names = {}, {}
    for attr, (keyword, option) in _DEMO_OPTIONS.items():
        raw = getattr(args, attr)
        if attr == "shape":
            kwargs[keyword] = tuple(_number(v) for v in raw)
            text = " ".join(str(v) for v in raw)
        else:
            kwargs[keyword] = _number(raw)
            text = str(raw)
        names[keyword] = f"{option} {text if len(text) <= 40 else text[:37] + '...'}"
    params = {
        name: p.default
        for name, p in inspect.signature(simulate_recording).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    checked = _check_sizes({**params, **kwargs}, names)
    for keyword in ("n_frames", "shape", "n_neurons", "seed"):  # "1e3" -> 1000, not 1000.0
        kwargs[keyword] = checked[keyword]
    return kwargs


def _demo(args: argparse.Namespace) -> int:
    from .core.synthetic.recording import simulate_recording
    from .io.groundtruth import save_ground_truth

    kwargs = _demo_parameters(args)  # absurd sizes: refused before anything is made
    out = Path(args.outdir)
    if out.exists() and not out.is_dir():
        raise RecordingError(out, "exists and is not a folder")
    movie_name = DEMO_BRUKER if args.bruker else DEMO_FILES[0]
    if not args.overwrite:
        for name in (movie_name, *DEMO_FILES[1:]):
            if (out / name).exists():
                raise OutputExistsError(out / name)
    out.mkdir(parents=True, exist_ok=True)
    progress = _progress_factory(args.quiet)
    t0 = time.perf_counter()
    rec = simulate_recording(**kwargs, progress=progress)
    truth, meta = rec.truth, rec.metadata
    if args.bruker:
        from .io.bruker.write import write_prairieview as write
    else:
        from .io.tiff import write_tiff_stack as write
    movie_path = write(
        out / movie_name,
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
    files = sorted(movie_path.iterdir()) if args.bruker else [movie_path]
    size_mb = sum(p.stat().st_size for p in files) / 2**20
    print(
        f"Simulated {n} frames of {y}x{x} px at {meta['frame_rate_hz']:g} Hz "
        f"({n / meta['frame_rate_hz']:.1f} s), {truth.n_neurons} neurons "
        f"({truth.indicator or 'custom kinetics'}, {int(truth.spikes.sum())} spikes) "
        f"in {elapsed:.1f} s."
    )
    print(f"Wrote {out}/")
    if args.bruker:
        print(
            f"  {movie_path.name + '/':<18} movie, PrairieView T-series folder: {n} uint16 "
            f"OME-TIFFs + .xml (frame period, µm/px), {size_mb:.1f} MiB"
        )
    else:
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _open(path: str, args: argparse.Namespace | None = None):
    """Open a recording lazily, apply ``--frame-rate-hz``/``--pixel-size-um``, name the reader."""
    from .io.open import open_recording, sniff_format

    rec = open_recording(path)
    if args is not None:
        rate, px = metadata_overrides(args)
        rec = rec.with_overrides(frame_rate_hz=rate, pixel_size_um=px)
    return rec, sniff_format(path)


def _info(args: argparse.Namespace) -> int:
    from ._cli_info import format_info, recording_info

    rec, reader = _open(args.path, args)
    info = recording_info(rec, reader)
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
    else:
        print(format_info(info))
    return 0


_FORMATS = {"bin": "binary", "binary": "binary", "tif": "tiff", "tiff": "tiff"}


def _selection(values: list[str] | None) -> list[str | int] | None:
    """``--channel``/``--plane`` values (repeatable, comma-separated): digits are indices."""
    if not values:
        return None
    items = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return [int(v) if v.isdigit() else v for v in items] or None


def _convert(args: argparse.Namespace) -> int:
    from .io.convert import convert_recording

    out = Path(args.output)
    if out.suffix.lower() in (".bin", ".json", ".tif", ".tiff") and not out.is_dir():
        raise ParameterError(
            f"{out}: OUTPUT is the folder to write into (the file names come from the recording, "
            f"<recording>_<channel>.bin or .tif); give a folder, e.g. {out.with_suffix('')}"
        )
    planes = _selection(args.plane)
    if planes is not None and not all(isinstance(z, int) for z in planes):
        raise ParameterError(
            f"--plane {','.join(args.plane)}: planes are zero-based indices (0, 1, ...)"
        )
    rec, _ = _open(args.input, args)
    to = _FORMATS[args.format]
    t0 = time.perf_counter()
    written = convert_recording(
        rec,
        out,
        to=to,
        channels=_selection(args.channel),
        planes=planes,
        size_cap_gb=args.size_cap,
        overwrite=args.overwrite,
        progress=_progress_factory(args.quiet),
    )
    elapsed = time.perf_counter() - t0
    shape = "x".join(str(s) for s in rec.shape)
    kind = "binary stacks (.bin + .json)" if to == "binary" else "TIFF stacks"
    channels = _plural(len(rec.channels), "channel")
    print(
        f"Converted {rec.path} ({rec.metadata.source_format}, {channels}, "
        f"{shape} {rec.movie.dtype}) to {kind} in {elapsed:.1f} s."
    )
    print(f"Wrote {out}/")
    for path in written:
        size = path.stat().st_size / 2**20
        side = " + .json" if to == "binary" else ""
        print(f"  {path.name}{side}  {size:.1f} MiB")
    if written:
        print(f"Check one with: napari-calcium info {written[0]}")
    return 0


def _add_demo(sub) -> None:
    demo = sub.add_parser(
        "demo",
        help="simulate a two-photon recording with ground truth and write it to OUTDIR",
        description="Simulate a two-photon calcium recording (GCaMP6f-like neurons, neuropil, "
        "bleaching, shot and read noise, optional motion) and write movie.tif (or, with "
        f"--bruker, a PrairieView folder {DEMO_BRUKER}/), ground_truth.npz and recording.json "
        "to OUTDIR.",
    )
    demo.add_argument("outdir", metavar="OUTDIR", help="folder to write into (created if needed)")
    # numbers are read as text and checked together (names and limits in one error line)
    demo.add_argument(
        "--frames", default="1800", help="number of frames (default 1800; a 4 GiB movie at most)"
    )
    demo.add_argument(
        "--shape",
        nargs=2,
        default=("256", "256"),
        metavar=("Y", "X"),
        help="frame size in pixels (default 256 256; at most 4096 4096)",
    )
    demo.add_argument("--neurons", default="60", help="number of neurons (default 60)")
    demo.add_argument("--frame-rate", default="30", help="frames per second (30)")
    demo.add_argument("--pixel-size", default="1.0", help="µm per pixel (1.0)")
    demo.add_argument("--indicator", default="GCaMP6f", help="kinetics preset (GCaMP6f)")
    demo.add_argument(
        "--motion",
        default="0",
        help="largest rigid displacement in pixels (default 0: no motion; at most the frame's "
        "smaller side)",
    )
    demo.add_argument("--seed", default="0", help="random seed (default 0)")
    demo.add_argument(
        "--bruker",
        action="store_true",
        help=f"write the movie as a Bruker PrairieView T-series folder OUTDIR/{DEMO_BRUKER}/ "
        "(one OME-TIFF per frame + XML) instead of movie.tif",
    )
    demo.add_argument("--overwrite", action="store_true", help="replace existing output files")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)


def _add_info(sub) -> None:
    info = sub.add_parser(
        "info",
        help="what a recording holds: shape, dtype, channels, timing, µm/px (no pixels read)",
        description="Print what a recording holds, read from its headers and metadata only: "
        "format, shape (frames, [planes,] y, x), dtype, channels, frame rate and period, "
        "duration, µm/px, bit depth, and the acquisition software (e.g. PrairieView version).",
    )
    info.add_argument(
        "path",
        metavar="PATH",
        help="a Bruker PrairieView folder, a .bin (with its .json), a TIFF or a folder of TIFFs",
    )
    info.add_argument(
        "--json", action="store_true", help="print one JSON object (stable keys; null = unknown)"
    )
    add_metadata_overrides(info)
    info.set_defaults(func=_info)


def _add_convert(sub) -> None:
    convert = sub.add_parser(
        "convert",
        help="repackage a recording into binary (.bin + .json) or TIFF stacks",
        description="Write each channel (and plane) of a recording as a (frames, y, x) stack named "
        "<recording>_<channel>[_plane<k>] in OUTPUT, with frame rate and µm/px carried over. "
        "Reads and writes block by block (bounded memory). Existing files are never replaced "
        "unless --overwrite is given; a failed or interrupted conversion removes what it wrote.",
    )
    convert.add_argument("input", metavar="INPUT", help="anything `napari-calcium info` reads")
    convert.add_argument(
        "output", metavar="OUTPUT", help="folder to write into (created if needed)"
    )
    convert.add_argument(
        "--format",
        choices=tuple(_FORMATS),
        default="bin",
        metavar="{bin,tif}",
        help="bin: raw .bin + .json (CalSciPy, suite2p-style); tif: ImageJ TIFF (default bin)",
    )
    convert.add_argument(
        "--channel",
        action="append",
        metavar="NAME|INDEX",
        help="channel to write, by name or zero-based index; repeat or separate with commas "
        "(default: all)",
    )
    convert.add_argument(
        "--plane",
        action="append",
        metavar="INDEX",
        help="plane of a multi-plane recording, zero-based; repeat or separate with commas "
        "(default: all, one stack each)",
    )
    convert.add_argument(
        "--size-cap",
        type=float,
        default=3.9,
        metavar="GB",
        help="largest TIFF file before splitting into parts (default 3.9)",
    )
    add_metadata_overrides(convert)
    convert.add_argument("--overwrite", action="store_true", help="replace existing output files")
    convert.add_argument("--quiet", action="store_true", help="no progress bars")
    convert.set_defaults(func=_convert)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-calcium",
        description="Calcium-imaging analysis from the command line (the napari plugin's engine).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (_add_demo, _add_info, _add_convert):
        add(sub)
    add_run(sub, lambda args: run(args, _progress_factory))
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it takes the same path as Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_sigterm(signum, frame) -> None:
    """Remember the signal, then raise :class:`Terminated` wherever the main thread is.

    The flag is what counts: Python runs a handler between any two bytecodes of the main
    thread, also inside a ``__del__`` or a weakref callback, where the exception is printed and
    dropped. The progress bars (:func:`_progress_factory`) then raise it again at their next
    update, and :func:`main` returns 143 whenever the flag is set, however the command ended.
    """
    _TERMINATED.set()
    signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM while cleaning up: stop at once
    raise Terminated(signum)


def _quiet_lost_terminated(previous):
    """An ``unraisablehook`` that drops a :class:`Terminated` Python could not propagate.

    It was raised in a ``__del__`` or callback (and so "ignored"); the flag set by the handler
    still stops the command, so its traceback would only be noise on stderr. After a SIGTERM
    it drops the others too: an object whose construction the signal interrupted can fail in
    its ``__del__`` later (llvmlite's ``OutputString`` when numba was compiling: "no attribute
    '_ptr'"), and that is a consequence of the stop, not news.
    """

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, Terminated) or _TERMINATED.is_set():
            return
        previous(unraisable)

    return hook


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While the command runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt)."""
    _TERMINATED.clear()
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (e.g. main() in a test)
        return
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_lost_terminated(previous_hook)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not _TERMINATED.is_set():  # after a SIGTERM, finalizers still to run stay quiet
            sys.unraisablehook = previous_hook


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-calcium`` command; returns the exit status.

    0: done; 1: the system refused (an OSError) or, for ``run``, a recording failed; 2: a
    user's mistake (one ``error:`` line, no traceback); 130 for Ctrl-C and 143 for SIGTERM,
    which stop the work the same way (finished outputs stay valid, no partial files).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        with _sigterm_as_interrupt():
            status = args.func(args)
            _stop_if_terminated()  # a SIGTERM whose exception was lost: not a success
            return status
    except KeyboardInterrupt as exc:
        print(f"napari-calcium {args.command}: interrupted", file=sys.stderr)
        return 128 + exc.signum if isinstance(exc, Terminated) else 130
    except BaseException as exc:
        if _TERMINATED.is_set():  # the SIGTERM came first; what followed is its consequence
            print(f"napari-calcium {args.command}: interrupted", file=sys.stderr)
            return 128 + signal.SIGTERM
        if isinstance(exc, NapariCalciumError):  # a user's mistake or bad input: no traceback
            print(f"napari-calcium {args.command}: error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, OSError):  # the system refused (permissions, disk full): say so
            print(f"napari-calcium {args.command}: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

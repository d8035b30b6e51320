"""Repackage a recording (Bruker folder, TIFFs, binary) into binary stacks or TIFF stacks."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..errors import ParameterError, RecordingError
from ._atomic import check_target
from .metadata import Recording
from .open import open_recording

__all__ = ["CONVERT_TARGETS", "convert_recording", "repackage_bruker_tifs"]

CONVERT_TARGETS = ("binary", "tiff")


def _safe(name: str, empty: str = "channel") -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or empty


def _channel_labels(names: Sequence[str]) -> dict[str, str]:
    """The file-name part of each channel: its sanitised name, unique by construction.

    A channel whose sanitised name is empty, or equal to another channel's up to case (``"α"``
    and ``"β"`` both sanitise to nothing; ``"Kanal-α"`` and ``"Kanal-β"`` to ``"Kanal-"``; file
    systems may ignore case), is named by its zero-based index in the recording, ``ch<index>``.
    The labels depend on all the recording's channels, not on the ones selected, so a channel
    keeps its file name whichever channels are converted.
    """
    safe = [_safe(n, empty="") for n in names]
    count = Counter(s.casefold() for s in safe)
    return {
        n: s if s and count[s.casefold()] == 1 else f"ch{i}"
        for i, (n, s) in enumerate(zip(names, safe, strict=True))
    }


def _check_unique(jobs: list, suffixes: tuple[str, ...], out: Path, source: Path) -> None:
    """Refuse two outputs that would land on one file (up to case, or as a TIFF part)."""
    owner: dict[str, str] = {}
    for name, ch, _ in jobs:
        owner.setdefault(name.casefold(), ch)
    for name, ch, _ in jobs:
        clash = owner[name.casefold()]
        part = re.fullmatch(r"(.+)_\d{5}", name.casefold())
        if clash == ch and part and suffixes == (".tif",):  # "x_00001.tif": a part of "x.tif"
            clash = owner.get(part[1], ch)
        if clash != ch:
            raise ParameterError(
                f"channels {clash!r} and {ch!r} of {source} would both be written to "
                f"{out / (name + suffixes[0])}; nothing was written: convert them one at a time "
                "(channels=[...], --channel on the command line) into separate folders"
            )


def _output_set(out: Path, name: str, to: str) -> list[Path]:
    """The files a job may write or replace: ``.bin`` + ``.json``, or the TIFF and its parts."""
    if to == "binary":
        return [out / (name + ".bin"), out / (name + ".json")]
    part = re.compile(re.escape(name) + r"_\d{5}\.tif$")
    with os.scandir(out) as it:
        parts = sorted(out / e.name for e in it if part.match(e.name))
    return [out / (name + ".tif"), *parts]


@contextlib.contextmanager
def _set_aside_until_done(out: Path) -> Iterator[Callable[[list[Path]], None]]:
    """Move existing outputs into a hidden folder while the conversion runs.

    Yields ``set_aside(paths)``. If the conversion fails or is cancelled (a full disk, an
    interrupt), every file set aside is put back, so a failed ``overwrite`` conversion leaves
    the earlier outputs as they were; when it succeeds they are removed. A run killed outright
    leaves them in ``.<folder>.<random>.old`` inside `out`.
    """
    aside: Path | None = None
    moved: list[tuple[Path, Path]] = []

    def set_aside(paths: list[Path]) -> None:
        nonlocal aside
        for path in paths:
            if not os.path.lexists(path):
                continue
            if aside is None:
                aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out))
            keep = aside / f"{len(moved)}_{path.name}"
            os.replace(path, keep)
            moved.append((path, keep))

    try:
        yield set_aside
    except BaseException:
        for path, keep in reversed(moved):
            os.replace(keep, path)  # if this fails, `aside` is kept, holding the rest
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _select(names: Sequence, wanted: Sequence | None, what: str, source: Path) -> list:
    if wanted is None:
        return list(names)
    out = []
    for w in wanted:
        if isinstance(w, int) and not isinstance(w, bool):
            if not 0 <= w < len(names):
                raise ParameterError(
                    f"{what} index {w} is out of range: {source} has {len(names)} {what}s "
                    f"({list(names)}); indices are zero-based"
                )
            out.append(names[w])
        elif w in names:
            out.append(w)
        else:
            raise ParameterError(f"{what} {w!r} is not in {source} (it has {list(names)})")
    return out


def convert_recording(
    source: str | os.PathLike | Recording,
    output_folder: str | os.PathLike,
    *,
    to: str = "tiff",
    channels: Sequence[str | int] | None = None,
    planes: Sequence[int] | None = None,
    size_cap_gb: float = 3.9,
    overwrite: bool = False,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Path]:
    """Write each channel (and plane) of a recording as a ``(frames, y, x)`` stack.

    Parameters
    ----------
    source : path or Recording
        Anything :func:`~napari_calcium.open_recording` opens, or an opened recording.
    output_folder : path
        Created if missing. Outputs are named ``<recording>_<channel>[_plane<k>]`` with
        ``.bin``/``.json`` (``to="binary"``) or ``.tif`` (``to="tiff"``, split into parts at
        ``size_cap_gb``). ``<channel>`` is the channel name with characters other than ASCII
        letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``; where that leaves nothing,
        or two channels of the recording alike (ignoring case), it is ``ch<index>`` (zero-based
        index in the recording), so every channel gets its own file.
    to : {"tiff", "binary"}
        Output format.
    channels : sequence of str or int, optional
        Channel names or zero-based indices; all channels by default.
    planes : sequence of int, optional
        Zero-based planes of a multi-plane recording; all by default (one stack per plane).
    size_cap_gb : float
        Largest TIFF file, in GB (10⁹ bytes), before splitting (CalSciPy's 3.9 by default).
    overwrite : bool
        Replace existing regular files. Without it, any existing output stops the conversion
        before anything is written; an output path holding anything but a regular file (a
        folder, a named pipe, a device) stops it with or without `overwrite`. If the
        conversion fails or is cancelled (a full disk included), every file it wrote is removed
        and the files it was replacing are put back as they were (each file is written under a
        temporary name and renamed when complete; existing outputs are set aside in a hidden
        ``.<folder>.<random>.old`` folder until the whole conversion is done; temporary files
        that a killed earlier run left for these outputs are removed).
    progress, should_stop : callable, optional
        tqdm-like factory and cancellation callback, passed to each writer.

    Returns
    -------
    list of pathlib.Path
        The files written (for binary, the ``.bin`` files; their ``.json`` sits beside each).

    Raises
    ------
    ParameterError
        Unknown `to`, a channel or plane not in the recording, or two selected channels whose
        outputs would be one file (e.g. a channel named ``ch1`` beside one that falls back to
        index 1); raised before anything is written.
    OutputExistsError
        An output exists and `overwrite` is False (nothing is written).
    RecordingError
        `output_folder` is not a folder, or an output path is not a regular file; or the disk
        filled up (the error names the output and says the disk is full; nothing is left of
        this conversion and earlier outputs are unchanged).

    Notes
    -----
    Frame period and pixel size travel into each output so that it opens again with the same
    timing and scale. Frames are read and written block by block, so recordings larger than RAM
    convert in bounded memory.
    """
    if to not in CONVERT_TARGETS:
        raise ParameterError(f"to={to!r} must be one of {CONVERT_TARGETS}")
    rec = source if isinstance(source, Recording) else open_recording(source)
    out = Path(output_folder)
    if out.exists() and not out.is_dir():
        raise RecordingError(out, "exists and is not a folder")
    meta = rec.metadata
    chosen = list(dict.fromkeys(_select(list(rec.channels), channels, "channel", rec.path)))
    n_planes = int(rec.movie.shape[1]) if rec.movie.ndim == 4 else 1
    plane_ids = (
        list(dict.fromkeys(_select(list(range(n_planes)), planes, "plane", rec.path)))
        if n_planes > 1
        else [None]
    )
    if n_planes == 1 and planes not in (None, [0], (0,)):
        raise ParameterError(f"planes={planes!r}: {rec.path} has a single plane")
    stem = _safe(rec.path.stem if rec.path.is_file() else rec.path.name)
    labels = _channel_labels(list(rec.channels))
    jobs = []
    for ch in chosen:
        for z in plane_ids:
            name = f"{stem}_{labels[ch]}" + (f"_plane{z}" if z is not None else "")
            movie = rec.channels[ch] if z is None else rec.channels[ch][:, z]
            jobs.append((name, ch, movie))
    suffixes = (".bin", ".json") if to == "binary" else (".tif",)
    _check_unique(jobs, suffixes, out, rec.path)
    for name, _, _ in jobs:
        for suffix in suffixes:
            check_target(out / (name + suffix), overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    kw = {
        "frame_rate_hz": meta.frame_rate_hz,
        "pixel_size_um": meta.pixel_size_um,
        "overwrite": overwrite,
        "progress": progress,
        "should_stop": should_stop,
    }
    written: list[Path] = []
    with _set_aside_until_done(out) as set_aside:
        try:
            for name, _, movie in jobs:
                if overwrite:  # replaced only once every output is written
                    set_aside(_output_set(out, name, to))
                if to == "binary":
                    from .binary import save_binary

                    save_binary(out / (name + ".bin"), movie, **kw)
                    written += [out / (name + ".bin"), out / (name + ".json")]
                else:
                    from .tiff import save_images

                    written += list(save_images(out / (name + ".tif"), movie, size_cap_gb, **kw))
        except BaseException:
            # all or nothing: a failed or cancelled conversion removes what it wrote (and the
            # earlier outputs it was replacing are put back)
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return [p for p in written if p.suffix != ".json"]


def repackage_bruker_tifs(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    channel: int = 0,
    plane: int = 0,
    *,
    overwrite: bool = False,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Path]:
    """CalSciPy-compatible: repackage one channel and plane of a Bruker folder into TIFF stacks.

    Parameters
    ----------
    input_folder : path
        PrairieView folder of single-frame ``.ome.tif`` files.
    output_folder : path
        Folder for the stacks (split below 4 GB, 3.9 GB each).
    channel, plane : int
        Zero-based channel and plane, as in CalSciPy.

    Returns
    -------
    list of pathlib.Path
        The stacks written. (CalSciPy returns None.)
    """
    rec = open_recording(input_folder, format="bruker")
    planes = [plane] if rec.movie.ndim == 4 else None
    if rec.movie.ndim == 3 and plane != 0:
        raise ParameterError(f"plane={plane}: {input_folder} has a single plane")
    return convert_recording(
        rec,
        output_folder,
        to="tiff",
        channels=[channel],
        planes=planes,
        overwrite=overwrite,
        progress=progress,
        should_stop=should_stop,
    )

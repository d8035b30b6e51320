"""One door for every format: :func:`open_recording` and the cheap :func:`sniff_format`."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import NapariCalciumError, ParameterError, RecordingError
from ._atomic import require_regular_file
from ._serial import read_json
from .metadata import Recording

__all__ = ["FORMATS", "open_recording", "sniff_format"]

#: format names accepted by ``open_recording(path, format=...)``
FORMATS = ("bruker", "binary", "suite2p", "tiff", "tiff-folder", "miniscope", "video", "nwb")

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_TIFF_SUFFIXES = (".tif", ".tiff")


def _is_tiff_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in _TIFF_MAGIC
    except OSError:
        return False


def _binary_pair(path: Path) -> tuple[Path, Path] | None:
    """The (``.bin``, ``.json``) pair a path names, if both exist."""
    if path.suffix.lower() in (".bin", ".json"):
        bin_, meta = path.with_suffix(".bin"), path.with_suffix(".json")
        if bin_.is_file() and meta.is_file():
            return bin_, meta
    return None


def _looks_like_binary_json(path: Path) -> bool:
    """A binary movie's sidecar: a JSON object with a dtype (UTF-8, a byte-order mark allowed,
    as Windows editors save it; only a regular file is read, so a named pipe never blocks)."""
    try:
        data = read_json(path, "binary movie's metadata", max_bytes=1_000_000)
    except NapariCalciumError:
        return False
    return isinstance(data, dict) and "dtype" in data


def sniff_format(path: str | os.PathLike) -> str | None:
    """Which format a path is in, from names and a few bytes; None when it is not ours.

    Never raises and never reads pixel data: the napari reader calls it on every dropped path.

    Returns
    -------
    str or None
        ``"bruker"`` (a PrairieView folder), ``"tiff-folder"`` (a folder of TIFF stacks),
        ``"binary"`` (a ``.bin`` + ``.json`` pair, or a folder holding exactly one), ``"tiff"``
        (a file whose first bytes are a TIFF header), ``"miniscope"`` (a UCLA Miniscope DAQ
        experiment or device folder, or one of its numbered ``.avi`` segments), ``"video"`` (any
        other ``.avi``/``.mp4``/``.mkv``/...), ``"nwb"`` (an HDF5 file with ``nwb_version``) or
        None. suite2p's ``data.bin`` is never
        sniffed: reading its ``ops.npy`` unpickles it, so it must be asked for explicitly.
    """
    try:
        p = Path(path)
        if p.is_dir():
            from .bruker.stack import is_bruker_folder

            if is_bruker_folder(p):
                return "bruker"
            from .miniscope import is_miniscope_folder

            if is_miniscope_folder(p):
                return "miniscope"
            entries = [e for e in p.iterdir() if e.is_file()]
            pairs = {_binary_pair(e) for e in entries if e.suffix.lower() == ".bin"} - {None}
            pairs = {pr for pr in pairs if _looks_like_binary_json(pr[1])}
            if len(pairs) == 1:
                return "binary"
            tiffs = [e for e in entries if e.suffix.lower() in _TIFF_SUFFIXES]
            if tiffs and _is_tiff_file(sorted(tiffs)[0]):
                return "tiff-folder"
            return None
        if not p.is_file():
            return None
        suffix = p.suffix.lower()
        if suffix in (".bin", ".json"):
            pair = _binary_pair(p)
            return "binary" if pair and _looks_like_binary_json(pair[1]) else None
        if suffix in _TIFF_SUFFIXES and _is_tiff_file(p):
            return "tiff"
        from .video import is_video_file

        if is_video_file(p):
            from .miniscope import is_miniscope_folder

            return "miniscope" if is_miniscope_folder(p) else "video"
        if suffix == ".nwb":
            from .nwb_input import is_nwb_file

            return "nwb" if is_nwb_file(p) else None
        return None
    except Exception:  # sniffing must never break napari's reader loop
        return None


def open_recording(path: str | os.PathLike, *, format: str | None = None, **kwargs) -> Recording:
    """Open a recording lazily: Bruker, binary, TIFF, Miniscope, video or NWB.

    Parameters
    ----------
    path : str or os.PathLike
        A PrairieView T-series/Z-series folder, a CalSciPy/napari-calcium ``.bin`` (with its
        ``.json``; either file or their folder), a TIFF file (multipage, BigTIFF, OME, ImageJ,
        ScanImage), a folder of TIFF stacks (one movie, in natural name order), a UCLA Miniscope
        DAQ folder (experiment or device folder; its numbered ``.avi`` segments are one movie,
        timed by ``timeStamps.csv``), a video file (``.avi``, ``.mp4``, ``.mkv``; needs the
        ``video`` extra, PyAV) or an NWB file (its ``TwoPhotonSeries`` / ``OnePhotonSeries``;
        ``series=`` picks one; needs h5py, the ``nwb`` extra).
    format : str, optional
        Force a format: one of :data:`FORMATS`. ``"suite2p"`` (a ``data.bin`` + ``ops.npy``
        folder) is only opened when asked for, with ``allow_pickle=True``, because ``ops.npy`` is a
        pickle: open only files you trust.
    **kwargs
        Passed to the format's opener (e.g. ``allow_pickle=True`` for suite2p).

    Returns
    -------
    Recording
        ``.channels`` (name -> lazy dask array, ``(frames, y, x)`` or ``(frames, planes, y, x)``)
        and ``.metadata`` (:class:`~napari_calcium.io.metadata.RecordingMetadata`). Opening reads
        headers and metadata only; pixels are read when a slice is computed.

    Raises
    ------
    RecordingError
        The path does not exist, is not a recording we can read, or is damaged (the message names
        the file and the problem).

    Examples
    --------
    >>> rec = open_recording("TSeries-01142019-1352-1365")  # doctest: +SKIP
    >>> rec.channels["Ch2"].shape, rec.metadata.frame_rate_hz  # doctest: +SKIP
    """
    p = Path(path)
    if not p.exists():
        raise RecordingError(p, "no such file or folder")
    if not p.is_dir():  # a named pipe or a device is refused here, never opened (it would block)
        require_regular_file(p, "recording")
    if format is None:
        format = sniff_format(p)
        if format is None:
            kind = "folder" if p.is_dir() else "file"
            raise RecordingError(
                p,
                f"not a recording napari-calcium can read: this {kind} is not a Bruker "
                "PrairieView folder, a .bin/.json binary stack, a TIFF or a folder of TIFFs, "
                "a Miniscope folder, a video (.avi, .mp4, .mkv) or an NWB file "
                "(for suite2p's data.bin pass format='suite2p', allow_pickle=True)",
            )
    if format == "bruker":
        from .bruker.stack import open_bruker

        return open_bruker(p, **kwargs)
    if format == "binary":
        from .binary import open_binary

        return open_binary(p, **kwargs)
    if format == "suite2p":
        from .suite2p_binary import open_suite2p_binary

        return open_suite2p_binary(p, **kwargs)
    if format == "tiff":
        from .tiff import open_tiff

        return open_tiff(p, **kwargs)
    if format == "tiff-folder":
        from .tiff import open_tiff_folder

        return open_tiff_folder(p, **kwargs)
    if format == "miniscope":
        from .miniscope import open_miniscope

        return open_miniscope(p, **kwargs)
    if format == "video":
        from .video import open_video

        return open_video(p, **kwargs)
    if format == "nwb":
        from .nwb_input import open_nwb

        return open_nwb(p, **kwargs)
    raise ParameterError(f"format={format!r} is not one of {FORMATS}")

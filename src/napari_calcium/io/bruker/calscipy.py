"""CalSciPy-compatible Bruker functions, named as in CalSciPy 0.3.

:func:`determine_imaging_content`, :func:`generate_bruker_naming_convention` and
:func:`load_bruker_tifs` are built on :func:`napari_calcium.io.bruker.stack.open_bruker`; unlike
CalSciPy's, frames come in time order (not directory order) and any number of planes works.
"""

from __future__ import annotations

import os

import dask.array as da
import numpy as np

from ...errors import ParameterError
from .stack import open_bruker

__all__ = [
    "determine_imaging_content",
    "generate_bruker_naming_convention",
    "load_bruker_tifs",
]


def determine_imaging_content(folder: str | os.PathLike) -> tuple[int, int, int, int, int]:
    """Channels, planes, frames, height and width of a PrairieView folder.

    Reads the XML (or .env and file names) and one TIFF header, like
    :func:`~napari_calcium.io.bruker.stack.open_bruker`.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder of a PrairieView recording (or its main ``.xml``).

    Returns
    -------
    (channels, planes, frames, height, width) : tuple of int
        ``frames`` counts time points (volumes for multi-plane recordings).

    Raises
    ------
    RecordingError, MetadataError
        As :func:`~napari_calcium.io.bruker.stack.open_bruker`.
    """
    rec = open_bruker(folder)
    shape = rec.shape
    return len(rec.channels), rec.metadata.n_planes, shape[0], shape[-2], shape[-1]


def generate_bruker_naming_convention(
    channel: int, plane: int, num_channels: int = 1, num_planes: int = 1
) -> str:
    """Glob pattern of the files of one channel and plane (CalSciPy's convention).

    Parameters
    ----------
    channel, plane : int
        Zero-based channel and plane. The channel is written ``Ch{channel + 1}``, CalSciPy's
        assumption that the recording's channels are ``Ch1``, ``Ch2``, ...
    num_channels, num_planes : int
        How many channels and planes the recording has.

    Returns
    -------
    str
        ``"*.ome.tif"`` for one channel and plane; ``"*_Ch{channel+1}_*.ome.tif"`` for several
        channels; ``"*_Ch*_{plane+1:06d}.ome.tif"`` for several planes;
        ``"*_Ch{channel+1}_{plane+1:06d}.ome.tif"`` for both. (CalSciPy 0.3 returns
        ``"*00000{plane+1}.ome.tif"``, which fails from the 10th plane on, and drops the ``_``
        between channel and plane; these patterns match the files PrairieView writes.)

    Raises
    ------
    ParameterError
        A negative or out-of-range channel/plane, or a count below 1.
    """
    for arg, value, count in (("channel", channel, num_channels), ("plane", plane, num_planes)):
        if int(count) < 1:
            raise ParameterError(f"num_{arg}s={count}: must be at least 1")
        if not 0 <= int(value) < int(count):
            raise ParameterError(f"{arg}={value}: must be 0..{int(count) - 1} (zero-based)")
    ch = f"Ch{int(channel) + 1}" if num_channels > 1 else "Ch*"
    if num_planes > 1:
        return f"*_{ch}_{int(plane) + 1:06d}.ome.tif"
    return f"*_{ch}_*.ome.tif" if num_channels > 1 else "*.ome.tif"


def load_bruker_tifs(
    folder: str | os.PathLike, channel: int | None = None, plane: int | None = None
) -> tuple[np.ndarray, ...]:
    """Load a PrairieView folder into memory, one array per (channel, plane).

    Parameters
    ----------
    folder : str or os.PathLike
        Folder of a PrairieView recording (or its main ``.xml``).
    channel, plane : int, optional
        Zero-based channel (position in ``open_bruker(folder).channels``) and plane to load;
        None loads all.

    Returns
    -------
    tuple of numpy.ndarray
        ``(frames, y, x)`` arrays in the files' dtype (uint16 for PrairieView), frames in time
        order; one per channel and plane, channel-major (``(c0 p0, c0 p1, ..., c1 p0, ...)``).

    Raises
    ------
    ParameterError
        ``channel`` or ``plane`` out of range.
    RecordingError, MetadataError
        As :func:`~napari_calcium.io.bruker.stack.open_bruker`, or a file that cannot be read.
    """
    rec = open_bruker(folder)
    names, n_planes = list(rec.channels), rec.metadata.n_planes
    for arg, value, count in (("channel", channel, len(names)), ("plane", plane, n_planes)):
        if value is not None and not 0 <= int(value) < count:
            raise ParameterError(
                f"{arg}={value}: {rec.path} has {count} {arg}(s), numbered 0..{count - 1}"
            )
    out = []
    for c in range(len(names)) if channel is None else [int(channel)]:
        movie = rec.channels[names[c]]
        if n_planes == 1:
            out.append(_read_whole(movie))
        elif plane is not None:
            out.append(_read_whole(movie[:, int(plane)]))
        else:  # every plane: one read of the volumes; each plane is a view into it
            volumes = _read_whole(movie)
            out.extend(volumes[:, p] for p in range(n_planes))
    return tuple(out)


def _read_whole(movie) -> np.ndarray:
    """Read a lazy movie into one preallocated array (``compute()`` would hold it twice)."""
    dst = np.empty(movie.shape, movie.dtype)
    da.store(movie, dst, lock=False)
    return dst

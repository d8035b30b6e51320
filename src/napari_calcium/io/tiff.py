"""TIFF writing through tifffile (reading arrives with the readers issue)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile

from ..core.chunking import iter_frame_blocks
from ..errors import ShapeError
from ._atomic import atomic_output

__all__ = ["write_tiff_stack"]


def write_tiff_stack(
    path: str | os.PathLike,
    movie,
    *,
    frame_rate_hz: float | None = None,
    pixel_size_um: float | tuple[float, float] | None = None,
    overwrite: bool = False,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Write a ``(frames, y, x)`` movie to one ImageJ-compatible (Big)TIFF, block by block.

    The frame interval and pixel size go into the ImageJ metadata and resolution tags, so ImageJ,
    napari-calcium and tifffile read them back. The file is written to a temporary name and
    renamed when complete.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.tif`` file.
    movie : array_like
        ``(frames, y, x)`` numpy, memmap or dask array; uint8, uint16, int16 or float32.
    frame_rate_hz : float, optional
        Frames per second (stored as ImageJ ``finterval``).
    pixel_size_um : float or (float, float), optional
        Pixel size (y, x) in µm.
    overwrite : bool
        Replace an existing file.
    progress, should_stop : callable, optional
        tqdm-like factory and cancellation callback (see
        :func:`napari_calcium.core.chunking.iter_frame_blocks`).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    if getattr(movie, "ndim", None) != 3:
        raise ShapeError(f"{path}: expected a (frames, y, x) movie, got shape {np.shape(movie)}")
    metadata: dict = {"axes": "TYX"}
    if frame_rate_hz:
        metadata["finterval"] = 1.0 / float(frame_rate_hz)
    resolution = None
    if pixel_size_um is not None:
        py, px = (pixel_size_um, pixel_size_um) if np.isscalar(pixel_size_um) else pixel_size_um
        resolution = (1.0 / float(px), 1.0 / float(py))
        metadata["unit"] = "um"
    nbytes = int(np.prod(movie.shape)) * np.dtype(movie.dtype).itemsize
    imagej = nbytes <= 2**32 - 2**25  # ImageJ hyperstacks are classic TIFF (< 4 GiB)

    def frames():
        blocks = iter_frame_blocks(
            movie, progress=progress, should_stop=should_stop, desc=f"writing {Path(path).name}"
        )
        for _, block in blocks:
            yield from np.asarray(block)

    with atomic_output(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(
            tmp,
            frames(),
            shape=tuple(movie.shape),
            dtype=movie.dtype,
            imagej=imagej,
            bigtiff=not imagej,
            resolution=resolution,
            metadata=metadata,
        )
    return Path(path)

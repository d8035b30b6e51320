"""npe2 reader: Bruker folders, binary stacks and TIFFs dropped into napari -> Image layers."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RecordingError
from ..io.metadata import Recording
from ._layers import movie_layer_kwargs


def get_reader(path: str | list[str]):
    """Return a reader for ``path`` if napari-calcium can read it, else None (never raises).

    Sniffing looks at names and a few header bytes only, so it is cheap on any dropped path.
    """
    from ..io.open import sniff_format

    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    fmt = sniff_format(path)
    if fmt is None:
        return None
    return functools.partial(read_recording, format=fmt)


def read_recording(path: str | list[str], *, format: str | None = None) -> list[tuple]:
    """Open a recording lazily and describe one Image layer per channel.

    Bad files raise our :class:`~napari_calcium.errors.RecordingError` naming the file; napari
    shows its message.
    """
    from ..io.open import open_recording

    if isinstance(path, (list, tuple)):
        path = path[0]
    return recording_layer_data(open_recording(path, format=format))


def middle_frame_range(movie: Any) -> tuple[float, float]:
    """Display range from the middle time point (0.1-99.9 percentiles): one frame read.

    Without it napari computes the range itself, which for small lazy movies reads every frame.
    The middle frame is the one napari shows first, so no other part of the movie is touched.
    """
    frame = np.asarray(movie[movie.shape[0] // 2])
    if frame.dtype == bool:  # 1-bit TIFFs: percentiles need numbers
        frame = frame.astype(np.uint8)
    finite = frame[np.isfinite(frame)]  # NaN borders (motion-corrected movies) have no colour
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(finite, (0.1, 99.9)))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def recording_layer_data(rec: Recording) -> list[tuple[Any, dict, str]]:
    """LayerData tuples for a recording: one lazy Image layer per channel.

    Each layer is scaled in seconds (time between time points) and µm when the metadata knows
    them, named ``"<recording> <channel>"``, and carries the metadata dict under
    ``layer.metadata["napari_calcium"]`` (plus ``source_path`` and ``channel``).
    """
    meta = rec.metadata.to_dict()
    base = rec.path.stem if rec.path.is_file() else rec.path.name
    if base.endswith(".ome"):
        base = base[: -len(".ome")]
    layers = []
    for channel, movie in rec.channels.items():
        if np.dtype(movie.dtype).kind not in "biuf":
            raise RecordingError(
                rec.path,
                f"channel {channel!r} has {movie.dtype} pixels; napari-calcium shows real-valued "
                "intensities (bool, integer or float)",
            )
        layer_meta = {**meta, "source_path": str(Path(rec.path)), "channel": channel}
        name = f"{base} {channel}" if len(rec.channels) > 1 or channel else base
        kwargs = movie_layer_kwargs(layer_meta, name=name, ndim=movie.ndim)
        kwargs["multiscale"] = False
        if "contrast_limits" not in kwargs:  # bit depth unknown: look at one frame, not all
            kwargs["contrast_limits"] = middle_frame_range(movie)
        layers.append((movie, kwargs, "image"))
    return layers

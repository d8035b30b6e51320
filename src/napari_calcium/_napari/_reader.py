"""npe2 reader: Bruker folders, binary stacks and TIFFs dropped into napari -> Image layers."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from ..core._warmup import start_warm_up
from ..errors import RecordingError
from ..io.metadata import Recording
from ._layers import first_frame_time_s, movie_layer_kwargs


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
    layers = recording_layer_data(open_recording(path, format=format))
    # the plugin is in use: compile the numba kernels in a background process now, so that the
    # first Run of each step (seconds or minutes later) is as fast as the next ones
    start_warm_up(first="motion correction")
    return layers


#: time points read to set a movie's display range (cheap on a lazy movie)
RANGE_SAMPLES = 3


def sample_times(movie: Any, n_samples: int = RANGE_SAMPLES) -> list[int]:
    """The time points :func:`display_range` reads: spread evenly, within one chunk if lazy.

    A dask movie computes a whole chunk to return one of its frames, so the samples are spread
    over the chunk that holds the middle frame, which is computed once (napari reads that chunk
    anyway when the viewer shows the middle of the recording); an in-memory or memory-mapped
    movie is sampled over its whole length.
    """
    n = int(movie.shape[0])
    start, stop = 0, n
    chunks = getattr(movie, "chunks", None)
    if isinstance(chunks, tuple) and chunks and isinstance(chunks[0], tuple):
        bounds = np.cumsum((0, *chunks[0]))
        k = int(np.searchsorted(bounds, n // 2, side="right")) - 1
        start, stop = int(bounds[k]), int(bounds[k + 1])
    span = stop - start
    return sorted({start + (k * span) // (n_samples + 1) for k in range(1, n_samples + 1)})


def display_range(movie: Any, n_samples: int = RANGE_SAMPLES) -> tuple[float, float]:
    """Display range from a few sampled time points: the 0.1 and 99.9 percentiles of their pixels.

    Reads ``n_samples`` time points (:func:`sample_times`; every plane of each for a volume),
    never the whole movie: without a range napari computes its own, which for a small lazy movie
    reads every frame. Percentiles rather than the bit depth, because real recordings use a small
    part of their range (a 13-bit Bruker volume had 99.9 % of its pixels below 1,216 of 8,191
    and opened almost black). NaN borders (motion-corrected movies) have no colour and are left
    out.

    Parameters
    ----------
    movie : array_like, (frames, ...)
        A lazy or in-memory movie; only the sampled time points are read.
    n_samples : int
        How many time points to read (fewer when the movie is shorter).

    Returns
    -------
    tuple of float
        ``(low, high)`` with ``high > low``; ``(0, 1)`` when no sampled pixel is finite.
    """
    times = sample_times(movie, n_samples)
    if hasattr(movie, "dask") and times:  # one compute of the chunk that holds them all
        block = np.asarray(movie[times[0] : times[-1] + 1])
        frames = [block[t - times[0]] for t in times]
    else:
        frames = [movie[t] for t in times]
    values = []
    for frame in frames:
        frame = np.asarray(frame)
        if frame.dtype == bool:  # 1-bit TIFFs: percentiles need numbers
            frame = frame.astype(np.uint8)
        values.append(frame[np.isfinite(frame)].ravel())
    finite = np.concatenate(values) if values else np.empty(0)
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(finite, (0.1, 99.9)))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def recording_layer_data(rec: Recording) -> list[tuple[Any, dict, str]]:
    """LayerData tuples for a recording: one lazy Image layer per channel.

    Each layer is scaled in seconds (time between time points) and µm when the metadata knows
    them, named ``"<recording> <channel>"``, and carries the metadata dict under
    ``layer.metadata["napari_calcium"]`` (plus ``source_path``, ``channel``, ``plane`` (None: all
    planes) and ``first_frame_time_s``, where the time axis starts). The Recording properties
    widget edits these.
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
        layer_meta = {
            **meta, "source_path": str(Path(rec.path)), "channel": channel,
            "plane": None,  # all planes; a step run on one plane records which
            "first_frame_time_s": first_frame_time_s(meta),
        }  # fmt: skip
        name = f"{base} {channel}" if len(rec.channels) > 1 or channel else base
        kwargs = movie_layer_kwargs(layer_meta, name=name, ndim=movie.ndim)
        kwargs["multiscale"] = False
        # a few sampled time points, not the bit depth (which leaves real data almost black)
        kwargs["contrast_limits"] = display_range(movie)
        layers.append((movie, kwargs, "image"))
    return layers

"""One movie's per-frame steps split across the workers of a dask cluster.

When the pipeline runs one recording with a ``distributed.Client`` (``run_pipeline(...,
client=)``, or ``run_batch`` / ``napari-calcium run --scheduler`` with a single input), the
per-frame steps run as one dask task per chunk of whole frames on the cluster's workers:

* motion correction: the template is built here from its sample of frames (a few hundred
  frames at most); each worker measures the shifts of its chunk against it
  (:func:`~napari_calcium.core.movie.motion.rigid.estimate_shifts`); the shifts are referred to the
  median position here (:func:`~napari_calcium.core.movie.motion.shifting.recentre_shifts`, exactly
  as :func:`~napari_calcium.motion_correct` does), and the workers apply them chunk by chunk;
* the median / Gaussian filter: the lazy filter of the core (chunks read with their temporal
  overlap) computed chunk by chunk on the workers.

Frames are independent given the template (and the filter's overlap makes every chunk exact),
so the results equal the single-process run's. Each worker reads its frames from the input by
path and writes its output frames into the temporary ``.bin`` at their offset (the workers must
see the output folder, as for any cluster run): the movie never passes through this process,
which is why the output is assembled by the workers rather than with ``save_binary``. The
``.bin`` is renamed into place once every chunk is written; a failure or cancel leaves nothing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.chunking import FrameBlock, track_blocks
from ..io._atomic import DISK_FULL_ERRNOS, disk_full_error
from ..io.binary import write_binary_pair

__all__ = ["motion_correct_on_cluster", "store_on_cluster"]

_ESTIMATION_KEYS = (
    "max_shift_px",
    "upsample_factor",
    "highpass_sigma_px",
    "smooth_sigma_px",
    "whitening",
)


def _whole_frames(movie: Any) -> Any:
    return movie.rechunk({axis: -1 for axis in range(1, movie.ndim)})


def _frame_blocks(chunks: Sequence[int]) -> list[FrameBlock]:
    starts = np.concatenate([[0], np.cumsum(chunks)]).astype(int)
    return [FrameBlock(int(a), int(b), int(a), int(b)) for a, b in itertools.pairwise(starts)]


def _gather(
    client: Any,
    tasks: list[Any],
    chunks: Sequence[int],
    *,
    progress: Callable[..., Any] | bool | None,
    should_stop: Callable[[], bool] | None,
    desc: str,
) -> list[Any]:
    """Compute one task per chunk of frames on the cluster; results in chunk order.

    Progress advances by each chunk's frames as the chunks complete in order; `should_stop` is
    polled between chunks. On a cancel, an error or an interrupt, the tasks not yet finished
    are cancelled before the exception goes on.
    """
    futures = client.compute(tasks)
    results = []
    try:
        for i, _ in enumerate(
            track_blocks(_frame_blocks(chunks), progress=progress, should_stop=should_stop,
                         desc=desc)
        ):  # fmt: skip
            results.append(futures[i].result())
    except BaseException:
        client.cancel(futures)
        raise
    return results


def _write_frames(path: str, frame_bytes: int, dtype: str, start: int, block: Any) -> int:
    """On a worker: write `block` (whole frames) into the ``.bin`` at frame `start`."""
    data = np.ascontiguousarray(np.asarray(block), dtype=np.dtype(dtype))
    with open(path, "r+b") as fh:  # never creates the file: a removed temporary stays removed
        fh.seek(start * frame_bytes)
        data.tofile(fh)
    return int(data.shape[0])


def _reserve(tmp: Path, size: int, final: Path) -> None:
    """Give the temporary ``.bin`` its full size, its blocks allocated where the OS can.

    The workers write their frames at their offsets into it: reserving the space up front makes
    a disk too small for the movie fail here, before any work, with the bytes it needs, instead
    of in a worker halfway through (a sparse file from ``truncate`` would only fail then).
    """
    try:
        with open(tmp, "r+b") as fh:
            try:
                os.posix_fallocate(fh.fileno(), 0, size)
            except (AttributeError, OSError) as exc:  # no such call, or not on this file system
                if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
                    raise
                fh.truncate(size)
    except OSError as exc:
        full = disk_full_error(exc, final, partial=tmp, needed_bytes=size)
        if full is None:
            raise
        raise full from exc


def store_on_cluster(
    client: Any,
    movie: Any,
    path: str | os.PathLike,
    *,
    frame_rate_hz: float | None = None,
    pixel_size_um: float | tuple[float, float] | None = None,
    overwrite: bool = False,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Compute a lazy movie on the cluster's workers, writing a ``.bin`` + ``.json`` pair.

    Parameters
    ----------
    client : distributed.Client
    movie : dask.array.Array, shape (frames, y, x)
        Computed one chunk of whole frames per task.
    path : str or os.PathLike
        The ``.bin`` to write (see :func:`napari_calcium.io.binary.save_binary`); the workers
        must see it at the same path.
    frame_rate_hz, pixel_size_um, overwrite
        As in :func:`~napari_calcium.io.binary.save_binary`.
    progress, should_stop : optional
        tqdm-like factory and cancel poll (between chunks).

    Returns
    -------
    pathlib.Path
        The ``.bin`` written.
    """
    movie = _whole_frames(movie)
    frames = tuple(int(c) for c in movie.chunks[0])
    name = Path(path).name

    def fill(tmp: Path, file_dtype: np.dtype) -> None:
        import dask

        frame_bytes = int(np.prod(movie.shape[1:])) * file_dtype.itemsize
        _reserve(tmp, int(movie.shape[0]) * frame_bytes, Path(path))
        write = dask.delayed(_write_frames, pure=False)
        starts = np.concatenate([[0], np.cumsum(frames)[:-1]]).astype(int)
        tasks = [
            write(str(tmp), frame_bytes, file_dtype.str, int(start), block)
            for start, block in zip(starts, movie.to_delayed().ravel(), strict=True)
        ]
        _gather(client, tasks, frames, progress=progress, should_stop=should_stop,
                desc=f"writing {name} on the cluster")  # fmt: skip

    return write_binary_pair(
        path, movie.shape, movie.dtype, fill,
        frame_rate_hz=frame_rate_hz, pixel_size_um=pixel_size_um, overwrite=overwrite,
    )  # fmt: skip


def _estimate_chunk(block: Any, template: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """On a worker: shifts (dy, dx) and peak correlation of each frame, as (frames, 3)."""
    from ..core.movie.motion.rigid import estimate_shifts

    est = estimate_shifts(np.asarray(block), template, **options)
    return np.column_stack([est.shifts, est.peak_correlation.astype(np.float64)])


def motion_correct_on_cluster(
    client: Any,
    movie: Any,
    *,
    n_template_frames: int = 200,
    n_template_iterations: int = 3,
    interpolation: str = "cubic",
    border: str = "nan",
    dtype: Any = np.float32,
    progress: Callable[..., Any] | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    **estimation: Any,
) -> dict[str, Any]:
    """:func:`~napari_calcium.motion_correct` with the per-frame work on the cluster's workers.

    Parameters
    ----------
    client : distributed.Client
    movie : dask.array.Array, shape (frames, y, x)
        The input, lazily (one task per chunk of frames reads its own frames).
    n_template_frames, n_template_iterations, interpolation, border, dtype
        As in :func:`~napari_calcium.motion_correct`.
    progress, should_stop : optional
        tqdm-like factory and cancel poll (between chunks).
    **estimation
        ``max_shift_px``, ``upsample_factor``, ``highpass_sigma_px``, ``smooth_sigma_px``,
        ``whitening`` (see :func:`~napari_calcium.core.movie.motion.rigid.estimate_shifts`).

    Returns
    -------
    dict
        ``movie`` (the corrected movie, lazy: compute it with :func:`store_on_cluster`),
        ``shifts`` (frames, 2) float64 px, ``template`` (y, x) float32, ``peak_correlation``
        (frames,) float32 and ``valid_box`` (y0, y1, x0, x1): the same as
        :func:`~napari_calcium.motion_correct`'s result for the same movie.
    """
    from ..core._backend import to_host
    from ..core.movie.motion.rigid import apply_shifts, build_template, recentre_shifts
    from ..core.movie.motion.shifting import valid_box

    unknown = set(estimation) - set(_ESTIMATION_KEYS)
    if unknown:
        raise TypeError(f"unexpected motion options: {', '.join(sorted(unknown))}")
    movie = _whole_frames(movie)
    template = to_host(
        build_template(
            movie, n_frames=n_template_frames, n_iterations=n_template_iterations,
            interpolation=interpolation, should_stop=should_stop, **estimation,
        )
    )  # fmt: skip
    import dask

    estimate = dask.delayed(_estimate_chunk, pure=True)
    template_ref = client.scatter(template, broadcast=True)
    tasks = [estimate(block, template_ref, estimation) for block in movie.to_delayed().ravel()]
    chunks = tuple(int(c) for c in movie.chunks[0])
    parts = _gather(client, tasks, chunks, progress=progress, should_stop=should_stop,
                    desc="motion correction: estimating shifts on the cluster")  # fmt: skip
    table = np.concatenate(parts, axis=0) if parts else np.zeros((0, 3))
    shifts, template = recentre_shifts(
        table[:, :2], template, max_shift_px=estimation.get("max_shift_px"),
        interpolation=interpolation,
    )  # fmt: skip
    corrected = apply_shifts(movie, shifts, interpolation=interpolation, border=border, dtype=dtype)
    return {
        "movie": corrected,
        "shifts": shifts,
        "template": template,
        "peak_correlation": table[:, 2].astype(np.float32),
        "valid_box": valid_box(shifts, (int(movie.shape[1]), int(movie.shape[2]))),
    }

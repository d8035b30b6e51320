"""The registration template: a reference image built from a sample of the movie.

:func:`build_template` (public) checks its options and calls :func:`template_from_movie`, which
:func:`~napari_calcium.core.movie.motion.rigid.motion_correct` also uses: read about `n_frames`
frames as contiguous runs spread over the recording (:func:`_sample_runs`, :func:`_read_frames`),
seed the template with the mean of the most mutually correlated frames (:func:`_seed_template`, as
in suite2p), then register the sample to it and average the best-correlated 75 % after shifting
them to the sample's median position, a few times (:func:`_build_template`, as in NoRMCorre).
Shifts are measured by :mod:`.phase_correlation` and applied by :mod:`.shifting`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ....errors import ShapeError
from ..._backend import is_dask_array, to_host
from ...chunking import auto_block_frames, frame_blocks, track_blocks
from .phase_correlation import Estimator, int_at_least, make_estimator
from .shifting import INTERPOLATIONS, _check_movie, _choice, fill_border, shift_frames

__all__ = ["build_template"]

#: Share of template frames (the best correlated) averaged into the template at each iteration.
_TEMPLATE_KEEP = 0.75


def build_template(
    movie: Any,
    *,
    n_frames: int = 200,
    n_iterations: int = 3,
    max_shift_px: float | tuple[float, float] | None = None,
    upsample_factor: int = 10,
    highpass_sigma_px: float | None = None,
    smooth_sigma_px: float = 1.15,
    whitening: float = 1.0,
    interpolation: str = "cubic",
    should_stop: Callable[[], bool] | None = None,
) -> Any:
    """Build a registration template from a sample of frames, refined iteratively.

    Parameters
    ----------
    movie : array_like, shape (frames, y, x)
        numpy, memmap, dask or cupy. Only the sample is read (and held in memory).
    n_frames : int, optional
        Frames in the sample, read as 10 contiguous runs spread over the recording (all frames
        when the movie is shorter).
    n_iterations : int, optional
        Register-and-average rounds after the seed (0 keeps the seed average).
    max_shift_px, upsample_factor, highpass_sigma_px, smooth_sigma_px, whitening
        As in :func:`estimate_shifts`.
    interpolation : {"cubic", "linear", "fourier"}, optional
        How sample frames are shifted before averaging (see :func:`apply_shifts`).
    should_stop : callable, optional
        Polled between blocks; returning True raises
        :class:`~napari_calcium.errors.OperationCancelled`.

    Returns
    -------
    array, shape (y, x), float32
        The template on the movie's array module, in the movie's units.

    Notes
    -----
    The seed is the mean of the sampled frame whose best-correlated tenth of the sample
    correlates most with it, together with that tenth (correlations of the prepared frames,
    block-averaged to about 64 px), as in suite2p (Pachitariu et al. 2017). Each round registers
    the sample to the template, keeps the best-correlated 75 % of frames and averages them after
    shifting each by ``-(shift - median shift)``, as in NoRMCorre (Pnevmatikakis & Giovannucci
    2017): the template sits at the *median position of the sample*, not at the seed frames'.
    References: see :func:`motion_correct`.
    """
    movie = _check_movie(movie)
    n_sample = int_at_least(n_frames, "n_frames", 1)
    n_iterations = int_at_least(n_iterations, "n_iterations", 0)
    interpolation = _choice(interpolation, "interpolation", INTERPOLATIONS)
    est = make_estimator(
        movie,
        max_shift_px=max_shift_px,
        upsample_factor=upsample_factor,
        highpass_sigma_px=highpass_sigma_px,
        smooth_sigma_px=smooth_sigma_px,
        whitening=whitening,
    )
    if int(movie.shape[0]) == 0:
        raise ShapeError("movie has no frames; a template needs at least one")
    return template_from_movie(movie, est, n_sample, n_iterations, interpolation, should_stop)


def template_from_movie(
    movie: Any, est: Estimator, n_sample: int, n_iterations: int, interpolation: str, should_stop
) -> Any:
    """Read the template sample of `movie` and build the template from it."""
    runs = _sample_runs(int(movie.shape[0]), n_sample)
    sample = est.xp.concatenate([_read_frames(movie, a, b, est.xp) for a, b in runs], axis=0)
    return _build_template(sample, est, n_iterations, interpolation, should_stop)


def _read_frames(movie: Any, start: int, stop: int, xp: Any) -> Any:
    """``movie[start:stop]`` in memory on `xp` (dask computed, memmap copied)."""
    block = movie[start:stop]
    if is_dask_array(block):
        block = block.compute()
    if isinstance(block, np.memmap):
        return np.array(block)
    return xp.asarray(block)


def _sample_runs(n_frames: int, n_sample: int, n_runs: int = 10) -> list[tuple[int, int]]:
    """About `n_sample` frames as up to `n_runs` contiguous runs spread over the recording.

    Runs rather than single frames: a dask or compressed movie then computes few chunks.
    """
    if n_frames <= n_sample:
        return [(0, n_frames)]
    n_runs = max(1, min(n_runs, n_sample))
    length = math.ceil(n_sample / n_runs)
    starts = np.linspace(0, n_frames - length, n_runs).round().astype(int)
    runs: list[tuple[int, int]] = []
    for s in starts:
        start = max(int(s), runs[-1][1] if runs else 0)
        if start < n_frames:
            runs.append((start, min(n_frames, start + length)))
    return runs


def _binned(prepared: Any, xp: Any, target: int = 64) -> Any:
    """Prepared frames block-averaged down to about `target` px a side, flattened (frames, p)."""
    n, ny, nx = prepared.shape
    b = max(1, min(ny, nx) // target)
    cut = prepared[:, : ny // b * b, : nx // b * b]
    return cut.reshape(n, ny // b, b, nx // b, b).mean(axis=(2, 4)).reshape(n, -1)


def _seed_template(sample: Any, est: Estimator, blocks) -> Any:
    """Mean of the frame most like the others and the frames most like it (correlation)."""
    xp = est.xp
    small = xp.concatenate([_binned(est.prepare(sample[b.frames]), xp) for b in blocks], axis=0)
    small -= small.mean(axis=1, keepdims=True)
    small /= xp.maximum(xp.sqrt((small**2).sum(axis=1, keepdims=True)), 1e-12)
    corr = to_host(small @ small.T).astype(np.float64)
    n = corr.shape[0]
    k = min(n, max(3, n // 10))
    np.fill_diagonal(corr, -np.inf)
    top = -np.sort(-corr, axis=1)[:, : max(1, k - 1)]
    seed = int(np.argmax(top.mean(axis=1)))
    members = np.concatenate([[seed], np.argsort(-corr[seed])[: k - 1]])
    return xp.asarray(sample[xp.asarray(np.sort(members))], dtype=xp.float32).mean(axis=0)


def _build_template(sample: Any, est: Estimator, n_iterations: int, interpolation: str,
                    should_stop) -> Any:  # fmt: skip
    xp = est.xp
    n = int(sample.shape[0])
    budget = auto_block_frames(sample)
    blocks = frame_blocks(n, block_frames=budget)
    template = _seed_template(
        sample, est, track_blocks(blocks, should_stop=should_stop, desc="motion template")
    )
    for _ in range(n_iterations):
        est.set_template(template)
        shifts = np.zeros((n, 2))
        peaks = np.zeros(n, np.float32)
        for b in track_blocks(blocks, should_stop=should_stop, desc="motion template"):
            shifts[b.frames], peaks[b.frames] = est(sample[b.frames])
        shifts -= np.median(shifts, axis=0)  # anchor the template at the median position
        keep = peaks >= np.quantile(peaks, 1.0 - _TEMPLATE_KEEP) if n > 1 else np.ones(1, bool)
        total = xp.zeros(sample.shape[1:], dtype=xp.float32)
        for b in track_blocks(blocks, should_stop=should_stop, desc="motion template"):
            chosen = np.flatnonzero(keep[b.frames])
            if chosen.size == 0:
                continue
            frames = sample[b.frames][xp.asarray(chosen)]
            moved = shift_frames(frames, shifts[b.frames][chosen], xp, interpolation=interpolation)
            total += fill_border(moved, shifts[b.frames][chosen], "edge").sum(axis=0)
        template = total / float(keep.sum())
    return template

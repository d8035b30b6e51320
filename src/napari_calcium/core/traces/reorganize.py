"""Reorganising traces between a matrix, a trial tensor and per-trial factorisations (CalSciPy).

* matrix: ``(n_rois, n_frames)``, the whole recording;
* tensor: ``(n_trials, n_rois, trial_frames)``, one slab per trial (chunk, TIFF file, ...);
* factorised: ``(n_rois, n_trials)`` cells, each a ``(n_components, frames_of_trial)`` array
  (e.g. one NMF/PCA factorisation of each neuron's trace per trial).

Plain array reshuffling: works on numpy and cupy input alike (the result lives where the input
does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ...errors import ParameterError, ShapeError
from .._backend import array_module

__all__ = ["generate_tensor", "merge_factorized_matrices", "merge_tensor"]


def _permute(xp: Any, x: Any, axes: tuple[int, ...]) -> Any:
    permute = getattr(xp, "permute_dims", None)  # array API name; older cupy has transpose
    return permute(x, axes) if permute is not None else xp.transpose(x, axes)


def _concat(xp: Any, parts: list) -> Any:
    concat = getattr(xp, "concat", None)
    return concat(parts, axis=0) if concat is not None else xp.concatenate(parts, axis=0)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def generate_tensor(
    traces: Any,
    chunk_size: int | None = None,
    *,
    trial_starts: Sequence[int] | Any = None,
    trial_frames: int | None = None,
) -> Any:
    """Cut a trace matrix into a trial tensor ``(n_trials, n_rois, trial_frames)``.

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames)
        Traces in matrix form (numpy or cupy).
    chunk_size : int, optional
        CalSciPy's mode: consecutive chunks of `chunk_size` frames covering the whole recording;
        ``n_frames`` must be a multiple of it. Give either this or `trial_starts`.
    trial_starts : sequence of int, optional
        First frame of each trial (e.g. stimulus onsets), in any order; trials may overlap or
        leave gaps. Needs `trial_frames`.
    trial_frames : int, optional
        Frames per trial with `trial_starts`; every trial must end within the recording.

    Returns
    -------
    array, shape (n_trials, n_rois, trial_frames)
        A new array (a copy), same dtype as `traces`; ``out[j] == traces[:, s_j:s_j + L]``.

    Raises
    ------
    ShapeError
        If `traces` is not 2-D, or `chunk_size` does not divide ``n_frames``.
    ParameterError
        For a missing, conflicting or out-of-range chunk or trial specification.

    Notes
    -----
    ``generate_tensor(x, L)`` equals ``np.stack(np.hsplit(x, n_frames // L))`` (CalSciPy's
    ``generate_tensor`` / ``matrix_to_tensor``); :func:`merge_tensor` is its inverse.

    References
    ----------
    O'Neil, D. A. CalSciPy (``reorganization.generate_tensor``).

    Examples
    --------
    >>> import numpy as np
    >>> generate_tensor(np.arange(12).reshape(2, 6), 3).shape
    (2, 2, 3)
    >>> x = np.arange(12).reshape(2, 6)
    >>> generate_tensor(x, trial_starts=[1, 3], trial_frames=2)[1].tolist()
    [[3, 4], [9, 10]]
    """
    if not hasattr(traces, "shape"):
        traces = np.asarray(traces)
    xp = array_module(traces)
    if len(traces.shape) != 2:
        raise ShapeError(
            f"traces has shape {tuple(traces.shape)}; expected a matrix (n_rois, n_frames)"
        )
    n_rois, n_frames = (int(s) for s in traces.shape)
    if (chunk_size is None) == (trial_starts is None):
        raise ParameterError(
            "give either chunk_size (consecutive chunks) or trial_starts with trial_frames"
        )
    if chunk_size is not None:
        if trial_frames is not None:
            raise ParameterError("trial_frames goes with trial_starts, not with chunk_size")
        size = _count(chunk_size, "chunk_size")
        if n_frames % size:
            raise ShapeError(
                f"the {n_frames} frames of traces are not a multiple of chunk_size={size}; "
                "crop the traces or pass trial_starts and trial_frames"
            )
        tensor = _permute(xp, xp.reshape(traces, (n_rois, n_frames // size, size)), (1, 0, 2))
        return xp.asarray(tensor, copy=True)
    if trial_frames is None:
        raise ParameterError("trial_starts needs trial_frames (the length of each trial)")
    length = _count(trial_frames, "trial_frames")
    starts = np.asarray(trial_starts).reshape(-1)
    if starts.size == 0 or not np.issubdtype(starts.dtype, np.integer):
        raise ParameterError(
            f"trial_starts must be a non-empty sequence of integer frames, got {trial_starts!r}"
        )
    bad = (starts < 0) | (starts + length > n_frames)
    if bad.any():
        raise ParameterError(
            f"trials starting at frames {starts[bad].tolist()} with trial_frames={length} "
            f"fall outside the recording's {n_frames} frames"
        )
    return xp.stack([traces[:, int(s) : int(s) + length] for s in starts], axis=0)


def merge_tensor(tensor: Any) -> Any:
    """Concatenate a trial tensor back into one matrix (CalSciPy's ``merge_tensor``).

    Parameters
    ----------
    tensor : array_like, shape (n_trials, n_rois, trial_frames)
        Trials (chunks, files, ...) of the same ROIs, numpy or cupy.

    Returns
    -------
    array, shape (n_rois, n_trials * trial_frames)
        ``np.hstack(tensor)``: the trials one after another along time.

    Raises
    ------
    ShapeError
        If `tensor` is not 3-D.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12).reshape(2, 6)
    >>> bool((merge_tensor(generate_tensor(x, 2)) == x).all())
    True
    """
    if not hasattr(tensor, "shape"):
        tensor = np.asarray(tensor)
    xp = array_module(tensor)
    if len(tensor.shape) != 3:
        raise ShapeError(
            f"tensor has shape {tuple(tensor.shape)}; expected (n_trials, n_rois, trial_frames)"
        )
    n_trials, n_rois, length = (int(s) for s in tensor.shape)
    return xp.reshape(_permute(xp, tensor, (1, 0, 2)), (n_rois, n_trials * length))


def merge_factorized_matrices(factorized: Any, component: int | Iterable[int] = 0) -> Any:
    """Join per-trial factorisations of each ROI into a matrix of one (or several) components.

    Parameters
    ----------
    factorized : array_like, shape (n_rois, n_trials) of arrays (n_components, frames_j)
        Cell ``[i, j]`` is ROI ``i``'s trace in trial ``j`` factorised into components (an
        object array or nested lists, trials may differ in length), or a numeric 4-D array
        ``(n_rois, n_trials, n_components, frames)``.
    component : int or iterable of int, optional
        Which component to keep (CalSciPy: 0); an iterable selects several.

    Returns
    -------
    array
        ``(n_rois, total_frames)`` for one component, ``(n_selected, n_rois, total_frames)``
        for several, where ``total_frames`` sums the trial lengths; the common dtype of the
        cells.

    Raises
    ------
    ShapeError
        If the cells are not 2-D, or two ROIs' trial lengths differ.
    ParameterError
        If a component is out of range for some cell.

    Notes
    -----
    ``out[i] = concatenate_j(factorized[i, j][component])``, CalSciPy's
    ``merge_factorized_matrices`` (whose multi-component form stacks the components first).

    References
    ----------
    O'Neil, D. A. CalSciPy (``reorganization.merge_factorized_matrices``).

    Examples
    --------
    >>> import numpy as np
    >>> cells = [[np.ones((2, 3)), 2 * np.ones((2, 2))]]
    >>> merge_factorized_matrices(cells).tolist()
    [[1.0, 1.0, 1.0, 2.0, 2.0]]
    """
    if isinstance(component, Iterable) and not isinstance(component, str):
        picks = [int(c) for c in component]
        if not picks:
            raise ParameterError("component must name at least one component")
        parts = [merge_factorized_matrices(factorized, c) for c in picks]
        return array_module(parts[0]).stack(parts, axis=0)
    if isinstance(component, bool) or not isinstance(component, int | np.integer):
        raise ParameterError(f"component must be an integer or integers, got {component!r}")
    if hasattr(factorized, "shape") and len(factorized.shape) == 4 and factorized.dtype != object:
        xp = array_module(factorized)
        n_rois, n_trials, n_comp, length = (int(s) for s in factorized.shape)
        if not -n_comp <= component < n_comp:
            raise ParameterError(f"component={component} is out of range for {n_comp} components")
        return xp.reshape(factorized[:, :, component, :], (n_rois, n_trials * length))
    rows = (
        list(factorized)
        if not hasattr(factorized, "shape")
        else [factorized[i] for i in range(int(factorized.shape[0]))]
    )
    if not rows:
        raise ShapeError("factorized is empty; expected (n_rois, n_trials) cells")
    merged = []
    for i, row in enumerate(rows):
        pieces = []
        for j, cell in enumerate(row):
            cell_shape = tuple(getattr(cell, "shape", np.shape(cell)))
            if len(cell_shape) != 2:
                raise ShapeError(
                    f"factorized[{i}][{j}] has shape {cell_shape}; expected (n_components, frames)"
                )
            if not -cell_shape[0] <= component < cell_shape[0]:
                raise ParameterError(
                    f"component={component} is out of range: factorized[{i}][{j}] has "
                    f"{cell_shape[0]} components"
                )
            pieces.append(cell[component])
        xp = array_module(*pieces)
        merged.append(_concat(xp, [xp.asarray(p) for p in pieces]))
    lengths = {int(m.shape[0]) for m in merged}
    if len(lengths) != 1:
        raise ShapeError(
            f"the ROIs' merged traces differ in length ({sorted(lengths)} frames); every ROI "
            "needs the same trials"
        )
    return array_module(*merged).stack(merged, axis=0)

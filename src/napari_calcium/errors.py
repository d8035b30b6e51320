"""Exception types raised by napari-calcium.

Every error a user can cause (a bad file, a bad argument, a missing device) is raised as one of
these, with a message that names the file or argument, says what is wrong and what to do. Each type
also derives from the closest built-in exception, so ``except ValueError`` or ``except OSError``
in user code keeps working.
"""

from __future__ import annotations

import os

__all__ = [
    "BackendError",
    "DegenerateTraceWarning",
    "DetectionWarning",
    "MetadataError",
    "NapariCalciumError",
    "OperationCancelled",
    "OutputExistsError",
    "ParameterError",
    "RecordingError",
    "ShapeError",
]


class NapariCalciumError(Exception):
    """Base class of every napari-calcium error."""


class ParameterError(NapariCalciumError, ValueError):
    """An argument has a value the function cannot use (wrong range, unknown option, ...)."""


class ShapeError(NapariCalciumError, ValueError):
    """An array has the wrong number of dimensions, shape or dtype for the operation."""


class RecordingError(NapariCalciumError, OSError):
    """A recording on disk cannot be read: missing, truncated, inconsistent or not a format we know.

    Parameters
    ----------
    path : str or os.PathLike
        The file or folder at fault; it leads the message.
    problem : str
        What is wrong, and where possible what to do about it.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # keep pickling (dask workers, multiprocessing) working
        return (type(self), (self.path, self.problem))

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class MetadataError(RecordingError):
    """A recording's metadata (XML, .env, JSON sidecar, TIFF tags) is missing or malformed."""


class OutputExistsError(NapariCalciumError, FileExistsError):
    """A writer was asked to write where a file already exists and overwriting was not requested."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        super().__init__(
            f"{self.path}: already exists; choose another output or pass overwrite=True "
            "(--overwrite on the command line)"
        )

    def __reduce__(self):
        return (type(self), (self.path,))

    def __str__(self) -> str:
        return self.args[0]


class BackendError(NapariCalciumError, RuntimeError):
    """A backend is not usable: the requested compute device (GPU), arrays from two devices
    mixed, or an optional library a feature needs (e.g. pynwb for NWB export) is missing."""


class OperationCancelled(NapariCalciumError):
    """A long operation stopped because its ``should_stop`` callback asked it to.

    Raised instead of returning a partial result, so a cancelled run never looks finished.
    """


class DegenerateTraceWarning(UserWarning):
    """Some traces cannot give the number asked for; they are flagged (NaN) rather than faked.

    Warned by :func:`~napari_calcium.compute_dff` (baseline F0 not finite and positive, e.g. an
    all-zero trace or a neuropil brighter than the soma), :func:`~napari_calcium.snr` (no
    measurable noise), :func:`~napari_calcium.identify_events` and
    :func:`~napari_calcium.deconvolve` (flagged, all-NaN rows skipped) and
    :func:`~napari_calcium.extract_traces` (a ROI with no neuropil pixels). The message names the
    rows (ROI indices) and the reason. Turn it into an error with
    ``warnings.simplefilter("error", napari_calcium.errors.DegenerateTraceWarning)``.
    """


class DetectionWarning(UserWarning):
    """A recording is too short or too noisy for activity-based ROI detection.

    Warned by :func:`~napari_calcium.detect_rois` with the numbers that triggered it (frames,
    independent samples, duration, the noise of a soma-sized trace in ΔF/F and the smallest
    event that can be told from noise); ``warning.check`` holds them
    (:class:`~napari_calcium.core.rois.detection.evidence.RecordingCheck`, ``.as_dict()`` for a
    result's parameters). The ROIs returned then rest mostly on the mean image (anatomy).
    """

    def __init__(self, message: str, check: object = None) -> None:
        super().__init__(message)
        self.check = check

"""Save and load the ground truth of a synthetic recording (``.npz``, no pickles)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path

import numpy as np
from scipy import sparse

from ..core.synthetic.recording import GroundTruth
from ..errors import RecordingError
from ._atomic import atomic_output
from ._serial import open_regular

__all__ = ["load_ground_truth", "save_ground_truth"]

_FORMAT = "napari-calcium ground truth 1"


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def save_ground_truth(
    path: str | os.PathLike, truth: GroundTruth, *, overwrite: bool = False
) -> Path:
    """Write ``truth`` to a compressed ``.npz`` (arrays only; loads with ``allow_pickle=False``).

    Footprints are stored as their sparse CSR parts, spike times as one array plus offsets, and the
    scalar fields and simulation parameters as JSON. A one-photon truth's dense ``deformation``
    is not stored: it is rebuilt on loading from its rigid and modal parts (which are).
    """
    arrays: dict[str, np.ndarray] = {}
    scalars: dict = {}
    for f in dataclasses.fields(truth):
        value = getattr(truth, f.name)
        if f.name == "deformation":  # derived from shifts, modes and weights (stored)
            continue
        if f.name == "footprints_sparse":
            csr = sparse.csr_array(value)
            arrays.update(
                footprints_data=csr.data,
                footprints_indices=csr.indices,
                footprints_indptr=csr.indptr,
                footprints_shape=np.asarray(csr.shape),
            )
        elif f.name == "spike_times_s":
            arrays["spike_times_s"] = np.concatenate([np.asarray(v) for v in value] or [[]])
            arrays["spike_times_offsets"] = np.cumsum([0, *map(len, value)])
        elif isinstance(value, np.ndarray):
            arrays[f.name] = value
        elif value is None and f.name.startswith(("background_", "deformation_")):
            continue  # an optional array of a one-photon truth that is not there
        elif f.name == "parameters":
            scalars[f.name] = {k: _jsonable(v) for k, v in value.items()}
        else:
            scalars[f.name] = _jsonable(value)
    meta = json.dumps({"format": _FORMAT, **scalars})
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, _meta=np.asarray(meta), **arrays)
    return Path(path)


def load_ground_truth(path: str | os.PathLike) -> GroundTruth:
    """Read a file written by :func:`save_ground_truth`.

    Raises
    ------
    RecordingError
        The file is missing, not a regular file (a named pipe or a device is refused, never
        waited on), not an ``.npz``, or not napari-calcium ground truth.
    """
    if not os.path.lexists(path):
        raise RecordingError(path, "file not found")
    try:
        with open_regular(path, "ground truth .npz") as fh, np.load(fh, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except RecordingError:
        raise  # not a regular file (a named pipe, a device): refused before it is read
    except Exception as exc:  # zipfile/numpy errors on a file that is not an npz
        raise RecordingError(path, f"not a readable .npz file ({exc})") from None
    try:
        meta = json.loads(str(data.pop("_meta")))
        if not isinstance(meta, dict) or meta.pop("format", None) != _FORMAT:
            raise ValueError("unknown format")
        offsets = data.pop("spike_times_offsets")
        times = data.pop("spike_times_s")
        fp = sparse.csr_array(
            (
                data.pop("footprints_data"),
                data.pop("footprints_indices"),
                data.pop("footprints_indptr"),
            ),
            shape=tuple(data.pop("footprints_shape")),
        )
        spike_times = tuple(times[a:b] for a, b in itertools.pairwise(offsets))
        if meta.get("modality") == "one_photon":
            from ..core.synthetic.one_photon import OnePhotonGroundTruth, deformation_field

            truth = OnePhotonGroundTruth(
                footprints_sparse=fp, spike_times_s=spike_times, **data, **meta
            )
            if truth.deformation_modes is not None and truth.deformation_weights is not None:
                field = deformation_field(
                    truth.shifts, truth.deformation_modes, truth.deformation_weights, eager=False
                )
                truth = dataclasses.replace(truth, deformation=field)
            return truth
        return GroundTruth(footprints_sparse=fp, spike_times_s=spike_times, **data, **meta)
    except (KeyError, ValueError, TypeError) as exc:
        raise RecordingError(path, f"not napari-calcium ground truth ({exc})") from None

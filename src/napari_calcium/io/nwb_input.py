"""Read imaging movies from NWB files: ``OnePhotonSeries`` / ``TwoPhotonSeries``, lazily.

NWB (Neurodata Without Borders 2.x) files are HDF5 files; this module reads them with h5py alone
(installed with ``pip install "napari-calcium[nwb]"``), following the NWB schema's HDF5 layout, so
opening a file does not build pynwb's object tree and reads no pixels. The movie is a dask array
whose chunks each open the file by path, read their slice of the series' ``data`` dataset and
close it again: nothing stays open, and the graph pickles to other processes and threads.

Which series: every ``TwoPhotonSeries`` and ``OnePhotonSeries`` under ``/acquisition`` and
``/processing/<module>`` (also inside containers such as ``MotionCorrection``; soft links are
not followed twice). By default the largest one (most pixels; ties: the first, acquisition before
processing, in the file's order); ``series=`` picks
another by name or HDF5 path, and may also name a plain ``ImageSeries`` (e.g. a motion-corrected
movie in ``MotionCorrection``). The others are listed in ``metadata.extra["other_series"]``.

Axis order. The schema names the data axes ``(frame, x, y)`` / ``(frame, x, y, z)``, but writers
disagree on what ``x`` is: most files written with pynwb straight from a numpy movie store frames
as numpy images, ``(time, height, width)`` (suite2p's export even gives ``dimension=[Ly, Lx]``),
while NeuroConv (the DANDI converters) transposes to ``(time, width, height)``.
``layout="auto"`` reads ``(time, height, width)`` unless the file's ``source_script`` says
NeuroConv wrote it; ``layout="tyx"`` / ``"txy"`` force one. The choice and
its reason are kept in ``metadata.extra["nwb_layout"]`` / ``["nwb_layout_reason"]``. A volume's
``z`` (last stored axis) becomes the plane axis: ``(frames, planes, y, x)``. Each ``grid_spacing``
and ``field_of_view`` entry goes with the stored data axis in the same position, so the pixel size
follows the same transpose as the pixels.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RecordingError
from ._common import CHUNK_BYTES, token
from .metadata import Recording, RecordingMetadata

__all__ = ["IMAGING_SERIES_TYPES", "NwbDataset", "is_nwb_file", "list_nwb_series", "open_nwb"]

#: neurodata types opened by default (``series=`` may also name a plain ``ImageSeries``)
IMAGING_SERIES_TYPES = ("TwoPhotonSeries", "OnePhotonSeries")
_NAMEABLE_TYPES = (*IMAGING_SERIES_TYPES, "ImageSeries")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_LAYOUTS = ("auto", "tyx", "txy")
_INSTALL = 'reading NWB needs h5py; pip install "napari-calcium[nwb]"'
#: grid_spacing / field_of_view units -> µm
_TO_UM = {
    "meters": 1e6, "meter": 1e6, "m": 1e6, "metres": 1e6, "metre": 1e6,
    "centimeters": 1e4, "centimeter": 1e4, "cm": 1e4,
    "millimeters": 1e3, "millimeter": 1e3, "mm": 1e3,
    "micrometers": 1.0, "micrometer": 1.0, "micrometres": 1.0, "microns": 1.0, "micron": 1.0,
    "um": 1.0, "µm": 1.0, "μm": 1.0,
    "nanometers": 1e-3, "nanometer": 1e-3, "nm": 1e-3,
}  # fmt: skip
_MAX_META = 10_000  # elements of a metadata dataset read into memory (timestamps excepted)
_MAX_STAMPS = 100_000_000  # timestamps: one float64 per frame


def _import_h5py(path: Path) -> Any:
    try:
        import h5py
    except ImportError:
        raise RecordingError(path, _INSTALL) from None
    return h5py


def _h5open(path: Path) -> Any:
    """The file read-only; without HDF5 file locking where the file system refuses locks."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        if "lock" not in str(exc).lower():
            raise
        return h5py.File(path, "r", locking=False)


def _has_hdf5_signature(path: Path) -> bool:
    """HDF5's signature at byte 0 (or after a user block of 512, 1024, 2048 ... bytes)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(8) == _HDF5_MAGIC:
                return True
            size = os.fstat(fh.fileno()).st_size
            offset = 512
            while offset + 8 <= min(size, 2**20):
                fh.seek(offset)
                if fh.read(8) == _HDF5_MAGIC:
                    return True
                offset *= 2
    except OSError:
        return False
    return False


def is_nwb_file(path: str | os.PathLike) -> bool:
    """Whether `path` is an NWB file: HDF5's signature and an ``nwb_version`` at the root.

    Cheap (reads the first bytes and the root's attributes, never a dataset) and never raises,
    so the napari reader can call it on every dropped path. NWB 1.x files (``nwb_version`` as a
    root dataset) count too; :func:`open_nwb` then says they are not supported.

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    bool
        False for folders (NWB Zarr stores are not read), non-HDF5 files, HDF5 files that are
        not NWB, and when h5py is not installed.
    """
    try:
        p = Path(path)
        if not p.is_file() or not _has_hdf5_signature(p):
            return False
        import h5py  # noqa: F401  (ImportError -> False)

        with _h5open(p) as f:
            return "nwb_version" in f.attrs or "nwb_version" in f
    except Exception:  # a reader's sniffing must never raise
        return False


# --------------------------------------------------------------------------------------------
# small readers of attributes and metadata datasets
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """An HDF5 value as JSON-friendly Python: str for bytes, float/int/list for numbers."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _plain(value[()])
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _attr(obj: Any, name: str) -> Any:
    try:
        return _plain(obj.attrs[name]) if name in obj.attrs else None
    except Exception:  # an attribute of a type h5py cannot read
        return None


def _field(group: Any, name: str, limit: int = _MAX_META) -> Any:
    """A small field of an NWB object: a dataset (read if at most `limit` elements) or attr."""
    try:
        if name in group:
            obj = group[name]
            if hasattr(obj, "shape") and obj.size <= limit and obj.dtype.kind in "biufSOUa":
                return _plain(obj[()])
            return None
    except Exception:
        return None
    return _attr(group, name)


def _link_target(group: Any, name: str) -> Any:
    """The group a (soft) link of `group` points to, or None."""
    try:
        return group.get(name)
    except Exception:  # a dangling link
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
        return value if math.isfinite(value) else None
    return None


def _basename(obj: Any) -> str:
    return str(obj.name).rstrip("/").rsplit("/", 1)[-1]


def _link_name(group: Any, name: str) -> str:
    """The name of what `group`'s member `name` is: a soft link's target, not the link."""
    try:
        link = group.get(name, getlink=True)
        target = getattr(link, "path", None) or group[name].name
    except Exception:
        target = name
    return str(target).rstrip("/").rsplit("/", 1)[-1]


# --------------------------------------------------------------------------------------------
# finding the series
# --------------------------------------------------------------------------------------------


def _collect(group: Any, depth: int, types: tuple[str, ...], out: list[Any]) -> None:
    """Groups of the given neurodata types under `group`, down to `depth` levels.

    Soft links are not followed: they point at a series found where it is stored (a
    ``CorrectedImageStack``'s ``original`` links to the raw series in ``/acquisition``).
    """
    import h5py

    try:
        names = list(group.keys())
    except Exception:
        return
    for name in names:
        try:
            if isinstance(group.get(name, getlink=True), h5py.SoftLink):
                continue
            child = group[name]
        except Exception:  # a dangling external link
            continue
        if not hasattr(child, "keys"):  # a dataset
            continue
        kind = _attr(child, "neurodata_type")
        if kind in types:
            out.append(child)
        elif depth > 1 and kind not in ("DynamicTable", "PlaneSegmentation", "VectorData"):
            _collect(child, depth - 1, types, out)


def _find_series(f: Any, types: tuple[str, ...] = _NAMEABLE_TYPES) -> list[Any]:
    """Image series in ``/acquisition`` (2 levels) and ``/processing`` (4 levels: a module,
    a container such as ``MotionCorrection``, a ``CorrectedImageStack``, its series), in order."""
    found: list[Any] = []
    if "acquisition" in f:
        _collect(f["acquisition"], 2, types, found)
    if "processing" in f:
        _collect(f["processing"], 4, types, found)
    return found


def _n_elements(series: Any) -> int:
    data = _link_target(series, "data")
    if _attr(series, "format") == "external" or data is None or not hasattr(data, "shape"):
        dims = _field(series, "dimension") or []
        return int(np.prod(dims)) if isinstance(dims, list) and dims else 0
    return int(np.prod(data.shape))


def _describe(series: Any) -> dict[str, Any]:
    """What ``extra["other_series"]`` and :func:`list_nwb_series` say about a series."""
    data = _link_target(series, "data")
    shape = list(data.shape) if data is not None and hasattr(data, "shape") else None
    return {
        "name": _basename(series),
        "path": str(series.name),
        "neurodata_type": _attr(series, "neurodata_type"),
        "shape": shape,
        "format": _attr(series, "format") or "raw",
    }


def _choose(path: Path, f: Any, series: str | None) -> tuple[Any, list[Any]]:
    """The series to open and the other imaging series of the file."""
    found = _find_series(f)
    imaging = [s for s in found if _attr(s, "neurodata_type") in IMAGING_SERIES_TYPES]

    def listing(items: list[Any]) -> str:
        return ", ".join(f"{s.name} ({_attr(s, 'neurodata_type')})" for s in items) or "none"

    if series is None:
        if not imaging:
            others = f"; other image series: {listing(found)} (pass series=)" if found else ""
            raise RecordingError(
                path, "no OnePhotonSeries or TwoPhotonSeries in /acquisition or /processing: "
                f"this NWB file holds no imaging movie{others}"
            )  # fmt: skip
        order = {id(s): i for i, s in enumerate(imaging)}
        chosen = max(imaging, key=lambda s: (_n_elements(s), -order[id(s)]))
    else:
        key = str(series).strip()
        wanted = "/" + key.strip("/") if "/" in key else None
        matches = [s for s in found if (s.name == wanted if wanted else _basename(s) == key)]
        if wanted and not matches:  # a path may name any series with data (an extension's)
            target = f.get(wanted)
            if target is not None and hasattr(target, "keys") and "data" in target:
                matches = [target]
        if not matches:
            raise RecordingError(
                path, f"no image series named {series!r}; available: {listing(found)}"
            )
        if len(matches) > 1:
            raise RecordingError(
                path, f"several image series are named {series!r}: "
                f"{', '.join(s.name for s in matches)}; pass the full path as series="
            )  # fmt: skip
        chosen = matches[0]
    return chosen, [s for s in imaging if s.name != chosen.name]


# --------------------------------------------------------------------------------------------
# the lazy pixel source
# --------------------------------------------------------------------------------------------


def _is_int(k: Any) -> bool:
    return isinstance(k, (numbers.Integral, np.integer)) and not isinstance(k, bool)


class NwbDataset:
    """A lazy, picklable view of an HDF5 dataset, axes reordered: ``[...]`` reads on demand.

    Each ``[...]`` opens the file by path, reads the selected part of the dataset (h5py
    hyperslab: only the chunks it touches) and closes the file, so no handle outlives a read.

    Parameters
    ----------
    path : pathlib.Path
        The NWB (HDF5) file.
    dataset : str
        HDF5 path of the dataset, e.g. ``"/acquisition/TwoPhotonSeries/data"``.
    shape : tuple of int
        The dataset's stored shape.
    dtype : numpy.dtype
        The dataset's dtype.
    order : tuple of int
        ``out = stored.transpose(order)``: output axis ``i`` is stored axis ``order[i]``.
    """

    def __init__(
        self, path: Path, dataset: str, shape: Sequence[int], dtype: Any, order: Sequence[int]
    ) -> None:
        self.path, self.dataset = Path(path), str(dataset)
        self.stored_shape = tuple(int(s) for s in shape)
        self.order = tuple(int(i) for i in order)
        self.shape = tuple(self.stored_shape[i] for i in self.order)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)

    def _read_stored(self, key: tuple) -> np.ndarray:
        """``dataset[key]`` for a key of ints and slices with positive steps (h5py's kind)."""
        with _h5open(self.path) as f:
            return np.asarray(f[self.dataset][key])

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is None for k in key):
            raise IndexError("NwbDataset does not take None (newaxis) in an index")
        for i, k in enumerate(key):
            if k is Ellipsis:
                key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
                break
        key = key + (slice(None),) * (self.ndim - len(key))
        if len(key) != self.ndim:
            raise IndexError(f"too many indices for an array of shape {self.shape}")
        stored: list[Any] = [slice(None)] * self.ndim
        after: list[Any] = [slice(None)] * self.ndim  # applied in numpy, stored axis order
        for out_axis, k in enumerate(key):
            axis = self.order[out_axis]
            n = self.stored_shape[axis]
            if _is_int(k):
                if not -n <= int(k) < n:
                    raise IndexError(f"index {k} is out of bounds for axis {out_axis} of size {n}")
                stored[axis], after[axis] = int(k) % n, None
            elif isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step > 0:
                    stored[axis] = slice(start, max(start, stop), step)
                else:  # h5py takes positive steps only: read the range, reverse in numpy
                    stored[axis], after[axis] = slice(None), k
            else:  # an integer array or list (any order, repeats): the whole axis, then numpy
                index = np.asarray(k)
                index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.intp)
                stored[axis], after[axis] = slice(None), index
        kept = [self.order[i] for i, k in enumerate(key) if not _is_int(k)]
        lengths = tuple(
            len(range(*s.indices(self.stored_shape[a])))
            for a, s in enumerate(stored)
            if isinstance(s, slice)
        )
        if math.prod(lengths) == 0:
            data = np.empty(lengths, self.dtype)
        else:
            try:
                data = self._read_stored(tuple(stored))
            except Exception as exc:
                raise RecordingError(
                    self.path, f"cannot read {self.dataset}: the file is damaged or changed "
                    f"since it was opened ({type(exc).__name__}: {exc})"
                ) from exc  # fmt: skip
        remaining = [a for a in range(self.ndim) if after[a] is not None]
        post = tuple(after[a] for a in remaining)
        if any(not (isinstance(p, slice) and p == slice(None)) for p in post):
            for i, p in enumerate(post):  # one axis at a time: arrays do not broadcast together
                data = data[(slice(None),) * i + (p,)]
        # data axes are the kept stored axes in stored order; put them in output order
        data = np.transpose(data, [sorted(kept).index(a) for a in kept])
        return np.asarray(data, dtype=self.dtype)


def _lazy(source: NwbDataset, chunks_stored: tuple | None, name: str) -> Any:
    """A dask array over `source`, chunked along time: ~16 MiB, in whole HDF5 chunks."""
    import dask.array as da

    per_frame = max(1, math.prod(source.shape[1:]) * source.dtype.itemsize)
    rows = max(1, CHUNK_BYTES // per_frame)
    if chunks_stored:  # whole HDF5 chunks per dask chunk, unless they are huge (> 64 MiB)
        step = max(1, int(chunks_stored[0]))
        if step * per_frame <= 4 * CHUNK_BYTES:
            rows = max(step, rows // step * step)
    rows = min(rows, max(1, source.shape[0]))
    meta = np.empty((0,) * source.ndim, dtype=source.dtype)
    return da.from_array(source, chunks=(rows, *source.shape[1:]), name=name, meta=meta)


# --------------------------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------------------------


def _layout(f: Any, layout: str) -> tuple[str, str]:
    """``("tyx" | "txy", reason)`` for the file."""
    if layout != "auto":
        return layout, "asked for"
    general = _link_target(f, "general")
    script = _text(_field(general, "source_script")) if general is not None else None
    if script and "neuroconv" in script.lower():
        return "txy", f"written by NeuroConv ({script.splitlines()[0][:80]}), which stores " \
            "(time, width, height)"  # fmt: skip
    return "tyx", "default: (time, height, width), as numpy images are stored"


def _to_um(value: Any, unit: Any) -> list[float] | None:
    factor = _TO_UM.get(str(unit or "meters").strip().lower())
    if factor is None or not isinstance(value, list):
        return None
    out = [_number(v) for v in value]
    if not out or any(v is None or v <= 0 for v in out):
        return None
    return [float(v) * factor for v in out]  # type: ignore[operator]


def _pixel_size(
    series: Any, plane: Any, stored: tuple[int, ...], layout: str
) -> tuple[tuple[float, float] | None, float | None, str | None]:
    """(y, x) µm per pixel, z step µm and where they came from; each entry of grid_spacing
    or field_of_view goes with the stored data axis in the same position."""
    spacing, source = None, None
    if plane is not None and "grid_spacing" in plane:
        spacing = _to_um(_field(plane, "grid_spacing"), _attr(plane["grid_spacing"], "unit"))
        source = "imaging_plane.grid_spacing"
    if spacing is None:
        fov = _field(series, "field_of_view")
        fov_um = _to_um(fov, "meters")  # the schema: field_of_view is in meters
        image = stored[1:]
        if fov_um is not None and len(fov_um) <= len(image):
            spacing = [fov_um[i] / image[i] for i in range(len(fov_um))]
            source = "field_of_view / image size"
    if spacing is None or len(spacing) < 2:
        return None, None, None
    first, second = spacing[0], spacing[1]  # stored axes 1 and 2
    pixel = (first, second) if layout == "tyx" else (second, first)
    z = spacing[2] if len(spacing) > 2 and len(stored) == 4 else None
    return pixel, z, source


def _timing(
    path: Path, series: Any, n_frames: int, extra: dict[str, Any]
) -> tuple[float | None, np.ndarray | None]:
    """Frame period (s) and per-frame times (s, session time) from rate or timestamps."""
    starting = _link_target(series, "starting_time")
    if starting is not None:
        rate = _number(_attr(starting, "rate"))
        t0 = _number(_field(series, "starting_time")) or 0.0
        if rate is None or rate <= 0:
            raise RecordingError(path, f"{series.name}/starting_time has no positive rate")
        extra["starting_time_s"] = t0
        extra["timing_source"] = "rate"
        period = 1.0 / rate
        return period, t0 + np.arange(n_frames, dtype=np.float64) * period
    stamps_ds = _link_target(series, "timestamps")
    if stamps_ds is not None and hasattr(stamps_ds, "shape"):
        if stamps_ds.size > _MAX_STAMPS:
            raise RecordingError(path, f"{series.name}/timestamps has {stamps_ds.size} entries")
        stamps = np.asarray(stamps_ds[()], dtype=np.float64).ravel()
        extra["timing_source"] = "timestamps"
        if stamps.size != n_frames:
            extra["timestamps_mismatch"] = (
                f"{stamps.size} timestamps for {n_frames} frames; timestamps not used"
            )
            return None, None
        diffs = np.diff(stamps)
        good = diffs[np.isfinite(diffs)]
        period = float(np.median(good)) if good.size else None
        if period is not None and not period > 0:
            period = None
        if stamps.size:
            extra["starting_time_s"] = float(stamps[0])
        return period, stamps
    return None, None


def _device(device: Any, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    for key in ("description", "manufacturer", "model_number", "model_name", "serial_number"):
        value = _text(_field(device, key))
        if value:
            out[key] = value
    model = _link_target(device, "model")  # NWB >= 2.9: a DeviceModel
    if model is not None and hasattr(model, "attrs"):
        out.setdefault("model_name", _link_name(device, "model"))
        for key in ("manufacturer", "model_number", "description"):
            value = _text(_field(model, key))
            if value:
                out.setdefault(key if key != "description" else "model_description", value)
    return out


def _plane_extra(plane: Any, name: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"imaging_plane": name}
    for key, name in (
        ("description", "imaging_plane_description"),
        ("location", "location"),
        ("indicator", "indicator"),
        ("reference_frame", "reference_frame"),
    ):
        value = _text(_field(plane, key))
        if value:
            extra[name] = value
    for key, name in (("excitation_lambda", "excitation_lambda_nm"), ("imaging_rate", None)):
        value = _number(_field(plane, key))
        if value is not None and not math.isnan(value):
            extra[name or "imaging_plane_rate_hz"] = value
    if "origin_coords" in plane:
        origin = _field(plane, "origin_coords")
        if origin is not None:
            extra["origin_coords"] = origin
            extra["origin_coords_unit"] = _attr(plane["origin_coords"], "unit") or "meters"
    channels = []
    for child in plane.values():
        if hasattr(child, "keys") and _attr(child, "neurodata_type") == "OpticalChannel":
            ch = {"name": _basename(child)}
            description = _text(_field(child, "description"))
            emission = _number(_field(child, "emission_lambda"))
            if description:
                ch["description"] = description
            if emission is not None:
                ch["emission_lambda_nm"] = emission
            channels.append(ch)
    if channels:
        extra["optical_channels"] = channels
    device = _link_target(plane, "device")
    if device is not None and hasattr(device, "attrs"):
        extra["device"] = _device(device, _link_name(plane, "device"))
    return extra


def _series_extra(f: Any, series: Any, data: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "series": _basename(series),
        "series_path": str(series.name),
        "neurodata_type": _attr(series, "neurodata_type"),
    }
    for key in ("description", "comments"):
        value = _text(_attr(series, key))
        if value and value != "no " + key:
            extra[key] = value
    if data is not None:
        extra["dtype"] = str(data.dtype)
        extra["stored_shape"] = list(data.shape)
        for key in ("unit", "conversion", "offset", "resolution"):
            value = _attr(data, key)
            if value is not None:
                extra[f"data_{key}"] = value
    for key, name in (
        ("pmt_gain", "pmt_gain"),
        ("scan_line_rate", "scan_line_rate_hz"),
        ("exposure_time", "exposure_time_s"),
        ("binning", "binning"),
        ("power", "power_w"),
        ("intensity", "intensity_w_per_mm2"),
    ):
        value = _number(_field(series, key))
        if value is not None:
            extra[name] = value
    for key in ("identifier", "session_description", "session_start_time"):
        value = _text(_field(f, key))
        if value:
            extra[key] = value
    device = _link_target(series, "device")
    if device is not None and hasattr(device, "attrs"):
        extra["device"] = _device(device, _link_name(series, "device"))
    return extra


# --------------------------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------------------------


def _check_file(path: Path) -> None:
    from ._atomic import require_regular_file

    if not path.exists():
        raise RecordingError(path, "no such file")
    if path.is_dir():
        raise RecordingError(
            path, "is a folder; NWB Zarr stores are not supported (give an HDF5 .nwb file)"
        )
    require_regular_file(path, "NWB file")
    if not _has_hdf5_signature(path):
        raise RecordingError(path, "not an NWB file: NWB 2 files are HDF5, and this is not one")


def list_nwb_series(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The image series of an NWB file, without reading pixels.

    Parameters
    ----------
    path : str or os.PathLike
        An NWB 2.x (HDF5) file.

    Returns
    -------
    list of dict
        One dict per ``TwoPhotonSeries``, ``OnePhotonSeries`` or ``ImageSeries`` in
        ``/acquisition`` and ``/processing``: ``name``, ``path`` (HDF5), ``neurodata_type``,
        ``shape`` (stored, or None for external files) and ``format`` (``"raw"``, ``"external"``).

    Raises
    ------
    RecordingError
        As :func:`open_nwb` for a file that is missing, not HDF5 or not NWB.
    """
    p = Path(path)
    _check_file(p)
    _import_h5py(p)
    with _open_nwb_file(p) as f:
        return [_describe(s) for s in _find_series(f)]


def _open_nwb_file(path: Path) -> Any:
    try:
        f = _h5open(path)
    except OSError as exc:
        raise RecordingError(path, f"not a readable HDF5 file ({exc})") from exc
    if "nwb_version" not in f.attrs:
        old = "nwb_version" in f
        f.close()
        if old:
            raise RecordingError(
                path, "an NWB 1.x file; only NWB 2.x is read (convert it, e.g. with "
                "NWB's nwb1-to-nwb2 tools)"
            )  # fmt: skip
        raise RecordingError(path, "an HDF5 file but not NWB (no nwb_version attribute)")
    return f


def open_nwb(
    path: str | os.PathLike, *, series: str | None = None, layout: str = "auto"
) -> Recording:
    """Open an imaging movie of an NWB 2.x file lazily: no pixel is read until a slice is.

    Parameters
    ----------
    path : str or os.PathLike
        An NWB file (HDF5).
    series : str, optional
        Name (``"TwoPhotonSeries"``) or HDF5 path (``"/processing/ophys/corrected"``) of the
        series to open: a ``TwoPhotonSeries``, ``OnePhotonSeries`` or plain ``ImageSeries``.
        Default: the largest ``TwoPhotonSeries``/``OnePhotonSeries`` (most pixels; ties: the
        first, acquisition before processing).
    layout : {"auto", "tyx", "txy"}
        How a 3-D series' data are stored: ``"tyx"`` ``(time, height, width)`` (numpy images,
        as most files written with pynwb from a movie array), ``"txy"`` ``(time, width, height)``
        (the schema's ``(frame, x, y)`` read literally; NeuroConv). ``"auto"``: ``"txy"`` when
        the file's ``source_script`` names NeuroConv, else ``"tyx"``. A 4-D series is
        ``(time, ..., ..., z)`` in the same order; z becomes the plane axis.

    Returns
    -------
    Recording
        One channel named after the series: a dask array ``(frames, y, x)`` (or
        ``(frames, planes, y, x)``) in the stored dtype, chunked by whole frames (~16 MiB, whole
        HDF5 chunks). Values are the stored ones: ``data.conversion``/``offset``/``unit`` are in
        ``extra`` and not applied. Metadata:

        - ``frame_period_s``: ``1 / rate``, or the median interval of ``timestamps``;
        - ``timestamps_s``: ``(frames,)`` session times (s from the file's
          ``timestamps_reference_time``): ``starting_time + k / rate``, or ``timestamps``;
        - ``pixel_size_um``: the imaging plane's ``grid_spacing`` (``grid_spacing_unit``
          converted to µm), else the series' ``field_of_view`` (m) / image size;
        - ``z_step_um`` and ``n_planes`` for volumes;
        - ``source_format="nwb"``, ``source_version`` the file's ``nwb_version``;
        - ``extra``: ``series``, ``series_path``, ``neurodata_type``, ``device`` (name,
          description, manufacturer, model), ``indicator``, ``excitation_lambda_nm``,
          ``optical_channels`` (emission λ), ``location``, ``imaging_plane``,
          ``imaging_plane_description``, ``data_unit``/``data_conversion``/``data_offset``,
          ``other_series`` (the file's other imaging series), ``nwb_layout`` and its reason,
          session ``identifier``/``session_description``/``session_start_time``.

    Raises
    ------
    RecordingError
        The file is missing, not HDF5, not NWB (or NWB 1.x), has no imaging series, `series`
        names none (the message lists the available ones) or several, the series' data are not
        ``(time, y, x)``/``(time, y, x, z)`` numbers, its external files cannot be opened, or
        h5py is not installed (``pip install "napari-calcium[nwb]"``).

    Examples
    --------
    >>> rec = open_nwb("sub-01_ses-01_ophys.nwb")  # doctest: +SKIP
    >>> rec.movie.shape, rec.metadata.frame_rate_hz, rec.metadata.extra["other_series"]
    ... # doctest: +SKIP
    """
    p = Path(path)
    if layout not in _LAYOUTS:
        from ..errors import ParameterError

        raise ParameterError(f"layout={layout!r} is not one of {_LAYOUTS}")
    _check_file(p)
    _import_h5py(p)
    with _open_nwb_file(p) as f:
        chosen, others = _choose(p, f, series)
        order, reason = _layout(f, layout)
        external = _attr(chosen, "format") == "external" or "external_file" in chosen
        data = _link_target(chosen, "data")
        data = data if data is not None and hasattr(data, "shape") else None
        extra = _series_extra(f, chosen, None if external else data)
        extra["other_series"] = [_describe(s) for s in others]
        extra["nwb_layout"], extra["nwb_layout_reason"] = order, reason
        plane = _link_target(chosen, "imaging_plane")
        if plane is not None and hasattr(plane, "attrs"):
            extra.update(
                {
                    k: v
                    for k, v in _plane_extra(plane, _link_name(chosen, "imaging_plane")).items()
                    if k not in extra
                }
            )
        version = _text(_attr(f, "nwb_version"))
        if external:
            return _open_external(p, f, chosen, extra, version)
        if data is None:
            raise RecordingError(p, f"{chosen.name} has no data dataset")
        stored = tuple(int(s) for s in data.shape)
        if len(stored) not in (3, 4) or min(stored, default=0) < 1:
            raise RecordingError(
                p, f"{chosen.name}/data has shape {stored}; expected (time, y, x) or "
                "(time, y, x, z) with no empty axis"
            )  # fmt: skip
        if data.dtype.kind not in "biuf":
            raise RecordingError(p, f"{chosen.name}/data has dtype {data.dtype}, not numbers")
        period, stamps = _timing(p, chosen, stored[0], extra)
        pixel, z_step, pixel_source = _pixel_size(chosen, plane, stored, order)
        if pixel_source:
            extra["pixel_size_source"] = pixel_source
        if len(stored) == 4:
            axes = (0, 3, 1, 2) if order == "tyx" else (0, 3, 2, 1)
        else:
            axes = (0, 1, 2) if order == "tyx" else (0, 2, 1)
        dataset_name, chunks = str(data.name), data.chunks
        bits = _number(_field(chosen, "bits_per_pixel"))
        bits = int(bits) if bits is not None and bits.is_integer() and 1 <= bits <= 64 else None
        dtype = data.dtype.newbyteorder("=")
    stat = p.stat()
    source = NwbDataset(p, dataset_name, stored, dtype, axes)
    name = "nwb-" + token(str(p.resolve()), stat.st_mtime_ns, stat.st_size, dataset_name, axes)
    movie = _lazy(source, chunks, name)
    channel = extra["series"]
    metadata = RecordingMetadata(
        source_format="nwb",
        source_version=version,
        frame_period_s=period,
        timestamps_s=stamps,
        pixel_size_um=pixel,
        z_step_um=z_step,
        n_planes=int(movie.shape[1]) if movie.ndim == 4 else 1,
        channel_names=(channel,),
        bit_depth=bits,
        extra=extra,
    )
    return Recording(path=p, channels={channel: movie}, metadata=metadata)


def _open_external(
    path: Path, f: Any, series: Any, extra: dict[str, Any], version: str | None
) -> Recording:
    """A series whose frames live in external files (``external_file``): TIFF or video files,
    opened by their readers and joined along time."""
    import dask.array as da

    from ..errors import NapariCalciumError
    from .tiff import open_tiff
    from .video import is_video_file, open_video

    def open_recording(target: Path) -> Any:  # the two kinds NWB's external_file is used for
        if is_video_file(target):
            return open_video(target)
        return open_tiff(target)

    files = _field(series, "external_file", limit=100_000)
    files = [files] if isinstance(files, str) else files
    if not isinstance(files, list) or not all(isinstance(v, str) for v in files):
        files = []
    files = [v for v in files if v.strip()]
    if not files:  # suite2p's export writes [""] when its ops list no files
        raise RecordingError(
            path, f"{series.name} keeps its frames in external files but names none; open the "
            "movie it was made from directly"
        )  # fmt: skip
    starts = _attr(series["external_file"], "starting_frame") if "external_file" in series else None
    movies, parts = [], []
    for name in files:
        target = Path(name) if Path(name).is_absolute() else path.parent / name
        if not target.exists() and (path.parent / Path(name).name).exists():
            target = path.parent / Path(name).name  # an absolute path from another machine
        try:
            rec = open_recording(target)
        except NapariCalciumError as exc:
            raise RecordingError(
                path, f"{series.name} keeps its frames in the external file {name!r}, which "
                f"cannot be opened: {exc}"
            ) from exc  # fmt: skip
        if len(rec.channels) != 1:
            raise RecordingError(
                path, f"external file {name!r} of {series.name} has {len(rec.channels)} "
                "channels; open it directly"
            )  # fmt: skip
        movies.append(rec.movie)
        parts.append(rec)
    shapes = {tuple(m.shape[1:]) for m in movies}
    if len(shapes) != 1 or len({m.dtype for m in movies}) != 1:
        raise RecordingError(
            path, f"the external files of {series.name} differ in frame shape or dtype; "
            "open them one by one"
        )  # fmt: skip
    if isinstance(starts, list) and len(starts) == len(movies):
        expected = list(np.cumsum([0] + [int(m.shape[0]) for m in movies[:-1]]))
        if [int(s) for s in starts] != expected:  # suite2p writes [0, 0, ...]: note it, go on
            extra["starting_frame_mismatch"] = (
                f"starting_frame {starts} does not match the files' frame counts (expected "
                f"{expected}); the files were joined in the order listed"
            )
    movie = movies[0] if len(movies) == 1 else da.concatenate(movies, axis=0)
    n_frames = int(movie.shape[0])
    extra["external_file"] = list(files)
    extra["external_format"] = parts[0].metadata.source_format
    period, stamps = _timing(path, series, n_frames, extra)
    first = parts[0].metadata
    shape = tuple(int(s) for s in movie.shape)
    pixel, z_step, pixel_source = _pixel_size(
        series, _link_target(series, "imaging_plane"), (shape[0], shape[-2], shape[-1]), "tyx"
    )
    if pixel is None and first.pixel_size_um is not None:
        pixel, pixel_source = first.pixel_size_um, "external file"
    if pixel_source:
        extra["pixel_size_source"] = pixel_source
    if period is None and first.frame_period_s is not None:
        period, extra["timing_source"] = first.frame_period_s, "external file"
        stamps = np.arange(n_frames, dtype=np.float64) * period
    channel = extra["series"]
    metadata = RecordingMetadata(
        source_format="nwb",
        source_version=version,
        frame_period_s=period,
        timestamps_s=stamps,
        pixel_size_um=pixel,
        z_step_um=first.z_step_um if len(shape) == 4 else z_step,
        n_planes=shape[1] if len(shape) == 4 else 1,
        channel_names=(channel,),
        bit_depth=first.bit_depth,
        extra=extra,
    )
    return Recording(path=path, channels={channel: movie}, metadata=metadata)

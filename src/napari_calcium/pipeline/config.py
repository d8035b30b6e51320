"""The pipeline's declarative configuration: TOML, YAML or a mapping -> a frozen dataclass.

A config has one section per step (``[open]``, ``[motion]``, ``[filter]``, ``[summary]``,
``[rois]``, ``[extract]``, ``[dff]``, ``[deconvolve]``, ``[events]``, ``[export]``). Apart from a
few keys that choose what a step does (``enabled``, ``kind``, ``method``, ``path``, ``input``,
``formats``), every key is the keyword argument of the same name of the public function the step
calls (``nc.motion_correct``, ``nc.detect_rois``, ``nc.compute_dff``, ...), with the same default.
Keys left out take the default of :file:`default.toml`; TOML has no null, so an optional argument
is "None" by leaving it out (a mapping or YAML may also give ``None``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import reprlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Union

from ..errors import ParameterError, RecordingError
from ..io._atomic import require_regular_file

__all__ = ["SECTIONS", "PipelineConfig", "default_config", "load_config"]

#: stems of the files the pipeline writes itself (and its ``steps/`` folder): an ``[export]
#: name`` equal to one of them would overwrite them (``recording.json``, ``provenance.json``...)
RESERVED_EXPORT_NAMES = (
    "recording", "frames_repaired", "motion_corrected", "motion", "filtered", "summary_images",
    "rois", "events", "steps", "provenance",
)  # fmt: skip
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL"} | {
    f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10)
}
#: a config file larger than this is not a config (the default one is 4 KiB); the TOML and YAML
#: parsers take time that grows faster than the size with some inputs (long dotted keys)
MAX_CONFIG_BYTES = 64 * 2**10
#: the longest line of a config (room for a long path)
MAX_LINE_CHARS = 8192
#: the deepest nesting of brackets and braces (a config needs 2: ``[section]``, ``[1, 2]``)
MAX_NESTING = 32
#: any whole number in a config, whatever its key: beyond this it would overflow numba's int64
#: arithmetic or size an allocation no machine has
MAX_INT = 2**53


def _choice(*values: str, default: Any) -> Any:
    return field(default=default, metadata={"choices": values})


def _positive(
    default: Any, *, allow_zero: bool = False, most: float | None = None, what: str = ""
) -> Any:
    """A field that must be > 0 (or >= 0) and, where it sizes work or memory, at most `most`.

    `what` says what the value counts (for the message: "at most 10000 frames").
    """
    meta: dict[str, Any] = {"min": 0.0, "allow_zero": allow_zero}
    if most is not None:
        meta.update(max=most, what=what)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class OpenConfig:
    """``[open]``: :func:`napari_calcium.open_recording` and which movie of it to analyse."""

    format: str | None = None
    channel: str | None = None  # default: the first channel
    plane: int | None = _positive(None, allow_zero=True, most=10_000, what="(a plane index)")
    frame_rate_hz: float | None = _positive(None, most=1e6, what="Hz")  # overrides the file's
    pixel_size_um: float | None = _positive(None, most=1e5, what="µm")


@dataclass(frozen=True)
class FramesConfig:
    """``[frames]``: corrupted frames of wireless miniscopes (rows or blocks of check-pattern
    noise from dropped packets), found by :func:`napari_calcium.detect_corrupted_frames` and
    repaired by :func:`napari_calcium.repair_corrupted_frames` before motion correction.

    ``repair``: ``"off"`` (the default: the step does not run), ``"report"`` (find and list
    them in ``steps/frames.json``), ``"interpolate"`` (replace each by the linear interpolation
    of its good neighbours, written as ``frames_repaired.bin``) or ``"drop"`` (leave them out;
    the frame times of what is left are in ``steps/frames.json``)."""

    repair: str = _choice("off", "report", "interpolate", "drop", default="off")
    threshold: float = _positive(12.0, most=1e6)

    @property
    def enabled(self) -> bool:
        return self.repair != "off"

    @property
    def writes_movie(self) -> bool:
        return self.repair in ("interpolate", "drop")


@dataclass(frozen=True)
class MotionConfig:
    """``[motion]``: :func:`napari_calcium.motion_correct` (rigid, or piecewise-rigid with
    ``piecewise = true``: ``patch_px``, ``overlap_px``, ``max_deviation_px``), written as a binary
    movie."""

    enabled: bool = False
    max_shift_px: float | None = _positive(None, most=10_000, what="px")
    n_template_frames: int = _positive(200, most=10_000, what="frames")
    n_template_iterations: int = _positive(3, most=100, what="iterations")
    upsample_factor: int = _positive(10, most=1000)
    highpass_sigma_px: float | None = _positive(None, most=1000, what="px")
    smooth_sigma_px: float = _positive(1.15, allow_zero=True, most=1000, what="px")
    whitening: float = _positive(1.0, allow_zero=True)
    interpolation: str = "cubic"
    border: str = _choice("nan", "zero", "edge", "crop", default="edge")
    #: issue 19: piecewise-rigid (NoRMCorre) correction after the rigid pass
    piecewise: bool = False
    patch_px: int = _positive(128, most=10_000, what="px")
    overlap_px: int = _positive(32, allow_zero=True, most=10_000, what="px")
    max_deviation_px: float = _positive(3.0, allow_zero=True, most=1000, what="px")


@dataclass(frozen=True)
class FilterConfig:
    """``[filter]``: :func:`napari_calcium.median_filter` (``size``) or ``gaussian_filter``
    (``sigma``), written as a binary movie."""

    enabled: bool = False
    kind: str = _choice("median", "gaussian", default="median")
    size: int = _positive(3, most=255, what="px")
    sigma: float = _positive(1.0, most=1000, what="px")
    axes: str | None = field(default=None, metadata={"choices": ("tyx", "yx")})
    mode: str = "reflect"


@dataclass(frozen=True)
class SummaryConfig:
    """``[summary]``: :func:`napari_calcium.projections` and ``correlation_pnr``."""

    kinds: tuple[str, ...] = ("mean", "max", "std")
    correlation: bool = True
    gaussian_sigma_px: float | None = _positive(None, most=1000, what="px")
    neighbours: int = _choice(4, 8, default=8)


@dataclass(frozen=True)
class RoisConfig:
    """``[rois]``: :func:`napari_calcium.detect_rois` (``method = "detect"``) or
    :func:`napari_calcium.load_rois` (``method = "file"``, ``path``)."""

    method: str = _choice("detect", "file", default="detect")
    #: issue 19: "auto" detects one-photon movies (Miniscope folders, NWB OnePhotonSeries) with
    #: CNMF-E's seeds after a background high-pass, everything else as two-photon
    modality: str = _choice("auto", "two_photon", "one_photon", default="auto")
    #: for "file"; relative to the config file's folder
    path: str | None = field(default=None, metadata={"path": True})
    allow_pickle: bool = False
    cell_diameter_px: float | None = _positive(None, most=1000, what="px")
    cell_diameter_um: float | None = _positive(None, most=10_000, what="µm")
    max_rois: int | None = _positive(None, most=10_000_000, what="ROIs")
    activity_threshold: float = 5.0
    anatomy_threshold: float = 4.0
    ring_threshold: float = 3.0
    use_anatomy: bool = True
    use_rings: bool = True
    min_corr: float = 0.2
    area_range: tuple[float, float] = (0.5, 2.5)
    max_compactness: float = _positive(1.6)
    bin_s: float = _positive(0.1, most=3600, what="s")
    max_binned_frames: int = _positive(1000, most=100_000, what="frames")
    binned_memory_mib: float | None = _positive(256.0, allow_zero=True, most=2**20, what="MiB")
    #: issue 17: significance of a ROI's activity/anatomy against noise, and merging
    p_value: float | None = _positive(1e-3, most=0.5)
    event_s: float = _positive(0.5, most=3600, what="s")
    merge_corr: float | None = _positive(0.8, allow_zero=True, most=1.0)


@dataclass(frozen=True)
class ExtractConfig:
    """``[extract]``: :func:`napari_calcium.extract_traces`."""

    neuropil: bool = True
    neuropil_coefficient: float = _positive(0.7, allow_zero=True)
    allow_overlap: bool = False
    inner_radius_px: int = _positive(2, allow_zero=True, most=1000, what="px")
    min_pixels: int = _positive(350, allow_zero=True, most=100_000_000, what="pixels")
    lam_percentile: float = _positive(50.0, allow_zero=True, most=100)
    circular: bool = False


@dataclass(frozen=True)
class DffConfig:
    """``[dff]``: :func:`napari_calcium.compute_dff` on the neuropil-corrected traces."""

    method: str = _choice(
        "robust", "calscipy", "sliding_percentile", "maximin", "percentile", "dff_sqrt",
        default="robust",
    )  # fmt: skip
    window_s: float | None = _positive(None, most=86_400, what="s (a day)")
    percentile: float | None = _positive(None, allow_zero=True, most=100)
    sigma_frames: float = _positive(10.0, allow_zero=True, most=100_000, what="frames")
    fast: bool = False
    cutoff_hz: float = _positive(1.0, most=1e6, what="Hz")
    offset: float = 0.0
    denominator: str = _choice("floored", "corrected", "raw", default="floored")
    min_baseline_fraction: float = _positive(0.1, allow_zero=True, most=1.0)


@dataclass(frozen=True)
class DeconvolveConfig:
    """``[deconvolve]``: :func:`napari_calcium.deconvolve` on dF/F (or the corrected traces)."""

    enabled: bool = True
    input: str = _choice("dff", "corrected", default="dff")
    method: str = _choice("oasis-ar1", "oasis-ar2", "fista", default="oasis-ar1")
    indicator: str | None = "GCaMP6f"
    tau_decay_s: float | None = _positive(None, most=3600, what="s")
    tau_rise_s: float | None = _positive(None, most=3600, what="s")
    lam: Union[float, str] = field(default=0.0, metadata={"choices": ("noise",)})  # noqa: UP007
    s_min: Union[float, str] = field(default=0.0, metadata={"choices": ("noise",)})  # noqa: UP007
    baseline_window_s: float = _positive(30.0, most=86_400, what="s (a day)")
    smoothing_s: float | None = _positive(None, allow_zero=True, most=86_400, what="s (a day)")
    exponent: float = _positive(0.75)


@dataclass(frozen=True)
class EventsConfig:
    """``[events]`` on dF/F: :func:`napari_calcium.detect_events` (``method = "noise"``, the
    threshold an expected false-event rate of a noise model) or CalSciPy's
    :func:`napari_calcium.identify_events` (``method = "calscipy"``).

    ``smooth_s`` and ``timeout_s`` go to both; ``false_rate_hz``, ``threshold_sigma`` and
    ``activity_window_s`` only to ``detect_events``; ``threshold_sd`` and ``force_nonneg`` only to
    ``identify_events`` (CalSciPy's own smoothing is 0.1 s: set it for CalSciPy's results).
    """

    enabled: bool = True
    method: str = _choice("noise", "calscipy", default="noise")
    smooth_s: float | None = _positive(0.075, most=3600, what="s")
    false_rate_hz: float = _positive(0.005, most=1e6, what="Hz")
    threshold_sigma: float | None = _positive(None, allow_zero=True, most=1000, what="σ")
    timeout_s: float = _positive(0.5, allow_zero=True, most=86_400, what="s (a day)")
    activity_window_s: float = _positive(3.0, allow_zero=True, most=86_400, what="s (a day)")
    threshold_sd: float = _positive(0.5, allow_zero=True)
    force_nonneg: bool = True


@dataclass(frozen=True)
class ExportConfig:
    """``[export]``: :func:`napari_calcium.save_traces` of traces, dF/F and spikes."""

    formats: tuple[str, ...] = field(default=("npz",), metadata={"choices": ("npz", "csv")})
    #: a plain file name inside the output folder (see :func:`file_name_problem`)
    name: str = field(default="traces", metadata={"file_name": True})


#: section name -> its dataclass, in step order
SECTIONS: dict[str, type] = {
    "open": OpenConfig,
    "frames": FramesConfig,
    "motion": MotionConfig,
    "filter": FilterConfig,
    "summary": SummaryConfig,
    "rois": RoisConfig,
    "extract": ExtractConfig,
    "dff": DffConfig,
    "deconvolve": DeconvolveConfig,
    "events": EventsConfig,
    "export": ExportConfig,
}


@dataclass(frozen=True)
class PipelineConfig:
    """A validated, immutable pipeline configuration (one attribute per section)."""

    open: OpenConfig = field(default_factory=OpenConfig)
    frames: FramesConfig = field(default_factory=FramesConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    rois: RoisConfig = field(default_factory=RoisConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    dff: DffConfig = field(default_factory=DffConfig)
    deconvolve: DeconvolveConfig = field(default_factory=DeconvolveConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    source: str | None = field(default=None, compare=False)  # the file it was read from

    def section(self, name: str) -> dict[str, Any]:
        """The parameters of section `name` as a plain dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(getattr(self, name)).items()}  # fmt: skip

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Every section as plain JSON-friendly dicts, in step order."""
        return {name: self.section(name) for name in SECTIONS}


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlong = 40
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxset = _SHORT.maxdict = 6
_SHORT.maxlevel = 2


def _short(value: Any) -> str:
    """A bounded repr for messages: a config value may be huge (a YAML alias bomb, 10**5000)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<a {len(str(abs(value))) if value.bit_length() < 13_000 else 'huge'}-digit int>"
    try:
        return _SHORT.repr(value)
    except Exception:  # a repr that fails is still no reason to lose the real message
        return f"<{type(value).__name__}>"


def _fail(where: str, section: Any, key: Any, problem: str) -> ParameterError:
    if not isinstance(section, str) or len(section) > 60:  # keys of YAML may be anything
        section = _short(section)
    if key is not None and (not isinstance(key, str) or len(key) > 60):
        key = _short(key)
    at = f"[{section}]" if key is None else f"[{section}] {key}"
    return ParameterError(f"{where}: {at}: {problem}")


def _scalar(value: Any, kind: type) -> Any:
    """`value` as `kind`; TypeError names the kind expected, ValueError a number too large."""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise ValueError("is too large for a number") from None
    elif kind is str and isinstance(value, str):
        return value
    raise TypeError(kind.__name__)


def _convert(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg)
            except TypeError:
                continue
        raise TypeError(" or ".join(getattr(a, "__name__", str(a)) for a in args))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise TypeError("a list")
        if len(value) > 64:  # no list key takes more than a few items
            raise TypeError("a list of a few items")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_scalar(v, args[0]) for v in value)
        if len(value) != len(args):
            raise TypeError(f"a list of {len(args)} numbers")
        return tuple(_scalar(v, a) for v, a in zip(value, args, strict=True))
    return _scalar(value, hint)


def file_name_problem(name: str) -> str | None:
    """What makes `name` unfit to name a file inside the output folder, or None.

    A config value that becomes a file name (``[export] name``) must stay inside the output
    folder and must not replace a file the pipeline writes itself: no empty name, no path
    separator (``/``, ``\\``), no ``..``, no absolute path or drive (``:``), no NUL or other
    control character, no Windows device name (``CON``, ``NUL``, ...) and none of
    :data:`RESERVED_EXPORT_NAMES`.

    Parameters
    ----------
    name : str

    Returns
    -------
    str or None
        The problem, worded to follow "[section] key: ".
    """
    plain = "it names files inside the output folder, so it must be a plain file name"
    if not name.strip():
        return f"must not be empty; {plain}"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        what = "a NUL character" if "\0" in name else "a control character"
        return f"must not contain {what}; {plain}; got {name!r}"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute():
        return f"must not be an absolute path; {plain}; got {name!r}"
    for bad in ("..", "/", "\\", ":"):
        if bad in name:
            return f"must not contain {bad!r}; {plain}; got {name!r}"
    stem = name.split(".")[0]
    if stem.strip().upper() in _WINDOWS_DEVICES:
        return f"must not be a Windows device name; {plain}; got {name!r}"
    if name.strip(" .").lower() in RESERVED_EXPORT_NAMES:  # case-insensitive file systems too
        reserved = ", ".join(RESERVED_EXPORT_NAMES)
        return (
            f"{name!r} would overwrite the pipeline's own files; choose a name other than "
            f"{reserved}"
        )
    return None


def _check_value(value: Any, meta: Mapping[str, Any]) -> str | None:
    """Problem with a converted value against the field's choices/min/file name, or None."""
    if meta.get("file_name") and isinstance(value, str):
        return file_name_problem(value)
    if meta.get("path") and isinstance(value, str):
        if "\0" in value:
            return f"must not contain a NUL character; got {_short(value)}"
        if len(value) > 4096:
            return f"is {len(value)} characters long; a path has at most 4096"
    choices = meta.get("choices")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        checked = isinstance(item, str) or not any(isinstance(c, str) for c in choices or ())
        if choices is not None and item is not None and checked and item not in choices:
            return f"must be one of {', '.join(map(repr, choices))}; got {_short(item)}"
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        if isinstance(item, float) and not math.isfinite(item):
            return f"must be a finite number; got {item!r}"
        if isinstance(item, int) and abs(item) > MAX_INT:
            return f"is too large: at most {MAX_INT} for any whole number; got {_short(item)}"
        if "min" in meta and (item < 0 or (item == 0 and not meta.get("allow_zero"))):
            return f"must be {'>= 0' if meta.get('allow_zero') else '> 0'}; got {item!r}"
        if "max" in meta and item > meta["max"]:
            unit = f" {meta['what']}" if meta.get("what") else ""
            most = meta["max"]
            most = f"{int(most):,}" if float(most).is_integer() else f"{most:g}"
            return (
                f"is too large: at most {most}{unit}, more than any recording needs "
                f"(it sizes memory or work); got {_short(item)}"
            )
    return None


def _build_section(name: str, values: Any, where: str, base: Any) -> Any:
    cls = SECTIONS[name]
    if not isinstance(values, Mapping):
        raise _fail(where, name, None, f"must be a table of keys, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    fields_ = {f.name: f for f in dataclasses.fields(cls)}
    out = dataclasses.asdict(base)
    for key, value in values.items():
        if key not in fields_:
            known = ", ".join(sorted(fields_))
            raise _fail(where, name, key, f"unknown key; [{name}] takes {known}")
        try:
            converted = _convert(value, hints[key])
        except TypeError as exc:
            raise _fail(where, name, key, f"must be {exc}; got {_short(value)}") from None
        except ValueError as exc:
            raise _fail(where, name, key, f"{exc}; got {_short(value)}") from None
        problem = _check_value(converted, fields_[key].metadata)
        if problem:
            raise _fail(where, name, key, problem)
        out[key] = converted
    return cls(**out)


def _from_mapping(data: Mapping[str, Any], where: str, base: PipelineConfig) -> PipelineConfig:
    if not isinstance(data, Mapping):
        raise ParameterError(f"{where}: a pipeline config must be a table of sections")
    sections = {}
    for name, values in data.items():
        if name not in SECTIONS:
            raise _fail(where, name, None, f"unknown section; sections are {', '.join(SECTIONS)}")
        sections[name] = _build_section(name, values, where, getattr(base, name))
    merged = dataclasses.replace(base, **sections, source=where)
    rois = merged.rois
    if rois.method == "file" and not rois.path:
        raise _fail(where, "rois", "path", 'method = "file" needs path = "<ROI file>"')
    # the other kind's parameter, set to something else than its default (a full dump such
    # as PipelineConfig.to_dict() holds both at their defaults, and loads back)
    given, defaults = data.get("filter", {}), FilterConfig()
    if merged.filter.kind == "gaussian" and given.get("size", defaults.size) != defaults.size:
        raise _fail(where, "filter", "size", 'kind = "gaussian" takes sigma, not size')
    if merged.filter.kind == "median" and given.get("sigma", defaults.sigma) != defaults.sigma:
        raise _fail(where, "filter", "sigma", 'kind = "median" takes size, not sigma')
    return merged


def _check_values(config: PipelineConfig, where: str) -> None:
    """Check a :class:`PipelineConfig` built without :func:`load_config`, field by field.

    The same type, range, bound and file-name checks as a config file gets (a value that names
    a file must be a plain file name, see :func:`file_name_problem`).
    """
    for name, cls in SECTIONS.items():
        section = getattr(config, name)
        if not isinstance(section, cls):
            raise _fail(where, name, None, f"must be a {cls.__name__}, got {_short(section)}")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            try:
                converted = _convert(value, hints[f.name])
            except TypeError as exc:
                raise _fail(where, name, f.name, f"must be {exc}; got {_short(value)}") from None
            except ValueError as exc:
                raise _fail(where, name, f.name, f"{exc}; got {_short(value)}") from None
            problem = _check_value(converted, f.metadata)
            if problem:
                raise _fail(where, name, f.name, problem)


def _resolve_paths(config: PipelineConfig, folder: Path) -> PipelineConfig:
    path = config.rois.path
    if path and not Path(path).is_absolute():
        rois = dataclasses.replace(config.rois, path=str(folder / path))
        config = dataclasses.replace(config, rois=rois)
    return config


def _check_file(path: Path) -> None:
    """Raise unless `path` is a regular file: a FIFO or a device would block or never end."""
    try:
        exists = path.exists() or path.is_symlink()
    except (OSError, ValueError) as exc:  # a NUL in the name, a name too long, ...
        name = _short(str(path))
        raise ParameterError(f"{name}: not a usable config file name ({exc})") from None
    if not exists:
        raise RecordingError(path, "config file not found")
    require_regular_file(path, "pipeline config file (.toml or .yaml)")


def _read_text(path: Path) -> str:
    """The text of a config file (a regular file, see :func:`_check_file`): small, UTF-8."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        why = exc.strerror or exc
        raise RecordingError(path, f"cannot read this config file ({why})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ParameterError(
            f"{path}: too large for a pipeline config (over {MAX_CONFIG_BYTES // 2**10} KiB; "
            "the default one is 4 KiB); is this the right file?"
        )
    try:
        return data.decode("utf-8-sig")  # a leading byte-order mark is fine
    except UnicodeDecodeError as exc:
        raise ParameterError(
            f"{path}: not UTF-8 text (byte {exc.start} is {data[exc.start : exc.start + 1]!r}); "
            "save the config as UTF-8"
        ) from None


def _layout_problem(text: str) -> str | None:
    """What makes `text` too long-lined or too deeply nested to hand to a parser, or None.

    The parsers recurse per level of nesting (a RecursionError deep down) and slow down on long
    lines; a quick scan first keeps their cost bounded. Brackets inside quotes and comments do
    not count (a rough scan that errs only on inputs no config resembles).
    """
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE_CHARS:
            return (
                f"line {number} is {len(line):,} characters long; a config line has at most "
                f"{MAX_LINE_CHARS:,}"
            )
    depth, quote, comment = 0, "", False
    for ch in text:
        if ch == "\n":
            quote, comment = "", False
        elif comment:
            continue
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return f"nested more than {MAX_NESTING} levels deep; a pipeline config needs 2"
        elif ch in "]}":
            depth = max(0, depth - 1)
    return None


def _read_file(path: Path) -> Mapping[str, Any]:
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ParameterError(f"{path}: a pipeline config must be a .toml, .yaml or .yml file")
    text = _read_text(path)
    problem = _layout_problem(text)
    if problem:
        raise ParameterError(f"{path}: {problem}; is this the right file?")
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise ParameterError(
                    f"{path}: reading TOML on Python 3.10 needs tomli; `pip install tomli`"
                ) from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ParameterError(f"{path}: not valid TOML ({exc})") from None
        except RecursionError:
            raise ParameterError(f"{path}: not valid TOML (nested too deeply)") from None
        except ValueError as exc:  # e.g. an integer of more digits than Python converts
            raise ParameterError(f"{path}: not valid TOML ({_short(str(exc))})") from None
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ParameterError(
                f"{path}: reading a YAML config needs PyYAML; `pip install pyyaml` "
                "or write the config as TOML"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ParameterError(f"{path}: not valid YAML ({_short(str(exc))})") from None
        except RecursionError:
            raise ParameterError(f"{path}: not valid YAML (nested too deeply)") from None
        except ValueError as exc:  # e.g. an integer of more digits than Python converts
            raise ParameterError(f"{path}: not valid YAML ({_short(str(exc))})") from None
        return {} if data is None else data
    raise AssertionError(suffix)  # pragma: no cover - checked above


def default_config() -> PipelineConfig:
    """The default configuration, read from the packaged :file:`default.toml`.

    Returns
    -------
    PipelineConfig
    """
    path = Path(__file__).with_name("default.toml")
    return dataclasses.replace(
        _from_mapping(_read_file(path), str(path), PipelineConfig()), source=None
    )


def load_config(
    config: str | os.PathLike | Mapping[str, Any] | PipelineConfig | None = None,
) -> PipelineConfig:
    """Read and validate a pipeline config; what it leaves out takes the defaults.

    Parameters
    ----------
    config : path, mapping, PipelineConfig or None
        A ``.toml`` file, a ``.yaml``/``.yml`` file (needs PyYAML), a mapping of sections
        (``{"dff": {"window_s": 30.0}}``), an existing :class:`PipelineConfig` (returned as is)
        or None (the defaults). A relative ``[rois] path`` is relative to the config file.

    Returns
    -------
    PipelineConfig

    Raises
    ------
    RecordingError
        The config file does not exist, or is not a regular file (a named pipe or a device is
        refused before it is opened, so it cannot block).
    ParameterError
        An unknown section or key, a value of the wrong type or out of range (NaN and infinity
        included), a value larger than any recording needs where it sizes memory or work (the
        field's bound, e.g. ``[rois] max_binned_frames`` at most 100,000), a value that names
        a file but is not a plain file name inside the output folder (``[export] name``, see
        :func:`file_name_problem`), or a file that is not valid TOML/YAML, not UTF-8, larger than
        :data:`MAX_CONFIG_BYTES` or nested deeper than :data:`MAX_NESTING`; the message names
        the file, the section and the key. A :class:`PipelineConfig` given as is gets the same
        value checks.
    """
    if config is None:
        return default_config()
    if isinstance(config, PipelineConfig):
        _check_values(config, config.source or "<PipelineConfig>")  # maybe built without us
        return config
    base = default_config()
    if isinstance(config, Mapping):
        return _from_mapping(config, "<config mapping>", base)
    if not isinstance(config, (str, os.PathLike)):
        raise ParameterError(
            "config must be a path to a .toml/.yaml file, a mapping of sections, a "
            f"PipelineConfig or None, got {_short(config)}"
        )
    path = Path(config)
    loaded = _from_mapping(_read_file(path), str(path), base)
    return _resolve_paths(loaded, path.resolve().parent)

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
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Union

from ..errors import ParameterError, RecordingError

__all__ = ["SECTIONS", "PipelineConfig", "default_config", "load_config"]

#: stems of the files the pipeline writes itself (and its ``steps/`` folder): an ``[export]
#: name`` equal to one of them would overwrite them (``recording.json``, ``provenance.json``...)
RESERVED_EXPORT_NAMES = (
    "recording", "motion_corrected", "motion", "filtered", "summary_images", "rois", "events",
    "steps", "provenance",
)  # fmt: skip
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL"} | {
    f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10)
}


def _choice(*values: str, default: Any) -> Any:
    return field(default=default, metadata={"choices": values})


def _positive(default: Any, *, allow_zero: bool = False) -> Any:
    return field(default=default, metadata={"min": 0.0, "allow_zero": allow_zero})


@dataclass(frozen=True)
class OpenConfig:
    """``[open]``: :func:`napari_calcium.open_recording` and which movie of it to analyse."""

    format: str | None = None
    channel: str | None = None  # default: the first channel
    plane: int | None = _positive(None, allow_zero=True)  # required for multi-plane movies
    frame_rate_hz: float | None = _positive(None)  # overrides / fills in the file's metadata
    pixel_size_um: float | None = _positive(None)


@dataclass(frozen=True)
class MotionConfig:
    """``[motion]``: :func:`napari_calcium.motion_correct` (rigid), written as a binary movie."""

    enabled: bool = False
    max_shift_px: float | None = _positive(None)
    n_template_frames: int = _positive(200)
    n_template_iterations: int = _positive(3)
    upsample_factor: int = _positive(10)
    highpass_sigma_px: float | None = _positive(None)
    smooth_sigma_px: float = _positive(1.15, allow_zero=True)
    whitening: float = _positive(1.0, allow_zero=True)
    interpolation: str = "cubic"
    border: str = _choice("nan", "zero", "edge", "crop", default="edge")


@dataclass(frozen=True)
class FilterConfig:
    """``[filter]``: :func:`napari_calcium.median_filter` (``size``) or ``gaussian_filter``
    (``sigma``), written as a binary movie."""

    enabled: bool = False
    kind: str = _choice("median", "gaussian", default="median")
    size: int = _positive(3)
    sigma: float = _positive(1.0)
    axes: str | None = field(default=None, metadata={"choices": ("tyx", "yx")})
    mode: str = "reflect"


@dataclass(frozen=True)
class SummaryConfig:
    """``[summary]``: :func:`napari_calcium.projections` and ``correlation_pnr``."""

    kinds: tuple[str, ...] = ("mean", "max", "std")
    correlation: bool = True
    gaussian_sigma_px: float | None = _positive(None)
    neighbours: int = _choice(4, 8, default=8)


@dataclass(frozen=True)
class RoisConfig:
    """``[rois]``: :func:`napari_calcium.detect_rois` (``method = "detect"``) or
    :func:`napari_calcium.load_rois` (``method = "file"``, ``path``)."""

    method: str = _choice("detect", "file", default="detect")
    path: str | None = None  # for "file"; relative to the config file's folder
    allow_pickle: bool = False
    cell_diameter_px: float | None = _positive(None)
    cell_diameter_um: float | None = _positive(None)
    max_rois: int | None = _positive(None)
    activity_threshold: float = 5.0
    anatomy_threshold: float = 4.0
    ring_threshold: float = 3.0
    use_anatomy: bool = True
    use_rings: bool = True
    min_corr: float = 0.2
    area_range: tuple[float, float] = (0.5, 2.5)
    max_compactness: float = _positive(1.6)
    bin_s: float = _positive(0.1)
    max_binned_frames: int = _positive(1000)
    binned_memory_mib: float | None = _positive(256.0, allow_zero=True)  # None: in RAM


@dataclass(frozen=True)
class ExtractConfig:
    """``[extract]``: :func:`napari_calcium.extract_traces`."""

    neuropil: bool = True
    neuropil_coefficient: float = _positive(0.7, allow_zero=True)
    allow_overlap: bool = False
    inner_radius_px: int = _positive(2, allow_zero=True)
    min_pixels: int = _positive(350, allow_zero=True)
    lam_percentile: float = _positive(50.0, allow_zero=True)
    circular: bool = False


@dataclass(frozen=True)
class DffConfig:
    """``[dff]``: :func:`napari_calcium.compute_dff` on the neuropil-corrected traces."""

    method: str = _choice(
        "robust", "calscipy", "sliding_percentile", "maximin", "percentile", "dff_sqrt",
        default="robust",
    )  # fmt: skip
    window_s: float | None = _positive(None)
    percentile: float | None = _positive(None, allow_zero=True)
    sigma_frames: float = _positive(10.0, allow_zero=True)
    fast: bool = False
    cutoff_hz: float = _positive(1.0)
    offset: float = 0.0


@dataclass(frozen=True)
class DeconvolveConfig:
    """``[deconvolve]``: :func:`napari_calcium.deconvolve` on dF/F (or the corrected traces)."""

    enabled: bool = True
    input: str = _choice("dff", "corrected", default="dff")
    method: str = _choice("oasis-ar1", "oasis-ar2", "fista", default="oasis-ar1")
    indicator: str | None = "GCaMP6f"
    tau_decay_s: float | None = _positive(None)
    tau_rise_s: float | None = _positive(None)
    lam: Union[float, str] = field(default=0.0, metadata={"choices": ("noise",)})  # noqa: UP007
    s_min: Union[float, str] = field(default=0.0, metadata={"choices": ("noise",)})  # noqa: UP007
    baseline_window_s: float = _positive(30.0)
    smoothing_s: float | None = _positive(None, allow_zero=True)
    exponent: float = _positive(0.75)


@dataclass(frozen=True)
class EventsConfig:
    """``[events]``: :func:`napari_calcium.identify_events` on dF/F."""

    enabled: bool = True
    smooth_s: float | None = _positive(0.1)
    threshold_sd: float = _positive(0.5, allow_zero=True)
    timeout_s: float = _positive(0.5, allow_zero=True)
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


def _fail(where: str, section: str, key: str | None, problem: str) -> ParameterError:
    at = f"[{section}]" if key is None else f"[{section}] {key}"
    return ParameterError(f"{where}: {at}: {problem}")


def _scalar(value: Any, kind: type) -> Any:
    """`value` as `kind`, or raise TypeError."""
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
            return float(value)
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
    choices = meta.get("choices")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        checked = isinstance(item, str) or not any(isinstance(c, str) for c in choices or ())
        if choices is not None and item is not None and checked and item not in choices:
            return f"must be one of {', '.join(map(repr, choices))}; got {item!r}"
        number = isinstance(item, (int, float)) and not isinstance(item, bool)
        if "min" in meta and number and (item < 0 or (item == 0 and not meta.get("allow_zero"))):
            return f"must be {'>= 0' if meta.get('allow_zero') else '> 0'}; got {item!r}"
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
            raise _fail(where, name, key, f"must be {exc}; got {value!r}") from None
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
    if merged.filter.kind == "gaussian" and "size" in data.get("filter", {}):
        raise _fail(where, "filter", "size", 'kind = "gaussian" takes sigma, not size')
    if merged.filter.kind == "median" and "sigma" in data.get("filter", {}):
        raise _fail(where, "filter", "sigma", 'kind = "median" takes size, not sigma')
    return merged


def _check_file_names(config: PipelineConfig, where: str) -> None:
    """Every value that names a file (field metadata ``file_name``) is a plain file name."""
    for name in SECTIONS:
        section = getattr(config, name)
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if f.metadata.get("file_name"):
                problem = file_name_problem(value) if isinstance(value, str) else "must be a str"
                if problem:
                    raise _fail(where, name, f.name, problem)


def _resolve_paths(config: PipelineConfig, folder: Path) -> PipelineConfig:
    path = config.rois.path
    if path and not Path(path).is_absolute():
        rois = dataclasses.replace(config.rois, path=str(folder / path))
        config = dataclasses.replace(config, rois=rois)
    return config


def _read_file(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise RecordingError(path, "config file not found")
    suffix = path.suffix.lower()
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
            with open(path, "rb") as fh:
                return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ParameterError(f"{path}: not valid TOML ({exc})") from None
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ParameterError(
                f"{path}: reading a YAML config needs PyYAML; `pip install pyyaml` "
                "or write the config as TOML"
            ) from None
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ParameterError(f"{path}: not valid YAML ({exc})") from None
        return {} if data is None else data
    raise ParameterError(f"{path}: a pipeline config must be a .toml, .yaml or .yml file")


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
        The config file does not exist.
    ParameterError
        An unknown section or key, a value of the wrong type or out of range, a value that names
        a file but is not a plain file name inside the output folder (``[export] name``, see
        :func:`file_name_problem`; also checked for a :class:`PipelineConfig` given as is), or
        a file that is not valid TOML/YAML; the message names the file, the section and the key.
    """
    if config is None:
        return default_config()
    if isinstance(config, PipelineConfig):
        _check_file_names(config, config.source or "<PipelineConfig>")  # built without us
        return config
    base = default_config()
    if isinstance(config, Mapping):
        return _from_mapping(config, "<config mapping>", base)
    path = Path(config)
    loaded = _from_mapping(_read_file(path), str(path), base)
    return _resolve_paths(loaded, path.resolve().parent)

"""What a recording is: its channels as lazy arrays, and what is known about its acquisition.

Every reader returns a :class:`Recording`. Values a file does not state are ``None``, never
invented: a TIFF without a frame interval has ``frame_period_s=None``, and the napari layer then
stays in frames rather than pretending to know seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Recording", "RecordingMetadata", "recording_modality"]


#: what :func:`checked_property` accepts for each acquisition property: (largest value, unit)
PROPERTY_LIMITS: dict[str, tuple[float, str]] = {
    "frame_rate_hz": (1e6, "Hz"),
    "pixel_size_um": (1e5, "µm"),
}


def checked_property(value: Any, name: str, what: str | None = None) -> float:
    """A frame rate or pixel size a user typed, as a float; a clear error if it is not one.

    Parameters
    ----------
    value : Any
        What was given (a number or a string).
    name : {"frame_rate_hz", "pixel_size_um"}
        Which property, for the limits in :data:`PROPERTY_LIMITS`.
    what : str, optional
        How the message names it (default ``name``; a widget says "frame rate").

    Returns
    -------
    float
        The value, finite, > 0 and at most the property's limit (1 MHz, 10 cm).

    Raises
    ------
    ParameterError
        Not a number, not finite, not positive, or absurdly large.
    """
    from ..errors import ParameterError

    most, unit = PROPERTY_LIMITS[name]
    said = f"{name}={value!r}" if what is None else f"{what} {value!r}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{said} must be a number ({unit})") from None
    if not (math.isfinite(number) and 0 < number <= most):
        raise ParameterError(f"{said} must be > 0 and at most {most:g} {unit}")
    return number


@dataclass(frozen=True, eq=False)
class RecordingMetadata:
    """Acquisition metadata of a recording, as far as its files state it.

    Attributes
    ----------
    source_format : str
        ``"bruker"``, ``"binary"``, ``"suite2p-binary"``, ``"tiff"``, ``"ome-tiff"``,
        ``"imagej-tiff"``, ``"scanimage-tiff"``, ``"tiff-folder"`` or
        ``"napari-calcium synthetic"``.
    source_version : str or None
        Version of the software that wrote it (e.g. PrairieView ``"5.5.64.600"``).
    frame_period_s : float or None
        Time between time points in seconds: between *volumes* for multi-plane recordings.
    timestamps_s : numpy.ndarray or None
        ``(frames,)`` time of each time point in seconds from the start (per-frame times from the
        file where it has them, e.g. PrairieView ``relativeTime``; else ``k * frame_period_s``).
    pixel_size_um : (float, float) or None
        Pixel size (y, x) in µm.
    z_step_um : float or None
        Distance between planes in µm.
    n_planes : int
        Planes per time point (1 for a single-plane movie).
    channel_names : tuple of str
        Names of the channels, in the order of :attr:`Recording.channels`.
    bit_depth : int or None
        Digitiser bit depth (e.g. 13 for PrairieView), so display ranges need no pixel reads.
    extra : dict
        Everything else that was parsed (objective, zoom, laser power, ...), by name.
    """

    source_format: str
    source_version: str | None = None
    frame_period_s: float | None = None
    timestamps_s: np.ndarray | None = None
    pixel_size_um: tuple[float, float] | None = None
    z_step_um: float | None = None
    n_planes: int = 1
    channel_names: tuple[str, ...] = ()
    bit_depth: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_rate_hz(self) -> float | None:
        """Time points per second (volumes per second for multi-plane), or None if unknown."""
        if self.frame_period_s is None or not self.frame_period_s > 0:
            return None
        return 1.0 / self.frame_period_s

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON-friendly: arrays become lists) including ``frame_rate_hz``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        out["frame_rate_hz"] = self.frame_rate_hz
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordingMetadata:
        """Inverse of :meth:`to_dict` (unknown keys go to ``extra``)."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = dict(kwargs.pop("extra", None) or {})
        extra.update({k: v for k, v in data.items() if k not in known and k != "frame_rate_hz"})
        if kwargs.get("timestamps_s") is not None:
            kwargs["timestamps_s"] = np.asarray(kwargs["timestamps_s"], dtype=np.float64)
        if kwargs.get("pixel_size_um") is not None:
            kwargs["pixel_size_um"] = tuple(float(v) for v in kwargs["pixel_size_um"])
        if kwargs.get("channel_names") is not None:
            kwargs["channel_names"] = tuple(kwargs["channel_names"])
        return cls(**kwargs, extra=extra)

    def replace(self, **changes: Any) -> RecordingMetadata:
        """A copy with some fields changed (``extra`` is merged, not replaced)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if "extra" in changes:
            changes["extra"] = {**self.extra, **changes["extra"]}
        values.update(changes)
        return type(self)(**values)

    def summary(self) -> str:
        """One line for humans: timing, pixel size, planes, channels."""
        parts = [self.source_format + (f" {self.source_version}" if self.source_version else "")]
        if self.frame_rate_hz:
            parts.append(f"{self.frame_rate_hz:.4g} Hz")
        if self.pixel_size_um:
            parts.append(f"{self.pixel_size_um[0]:.4g}x{self.pixel_size_um[1]:.4g} µm/px")
        if self.n_planes > 1:
            z = f" ({self.z_step_um:g} µm apart)" if self.z_step_um else ""
            parts.append(f"{self.n_planes} planes{z}")
        if self.channel_names:
            parts.append("channels " + ", ".join(self.channel_names))
        if self.bit_depth:
            parts.append(f"{self.bit_depth}-bit")
        return ", ".join(parts)


@dataclass(frozen=True, eq=False)
class Recording:
    """A recording opened by :func:`napari_calcium.open_recording`.

    Attributes
    ----------
    path : pathlib.Path
        What was opened (a folder or a file).
    channels : dict of str to dask.array.Array
        Channel name -> lazy movie, ``(frames, y, x)`` or ``(frames, planes, y, x)``. Nothing is
        read from disk until a slice is computed.
    metadata : RecordingMetadata
        What the files say about the acquisition.
    """

    path: Path
    channels: dict[str, Any]
    metadata: RecordingMetadata

    @property
    def movie(self) -> Any:
        """The first channel's movie (convenience for single-channel recordings)."""
        return next(iter(self.channels.values()))

    @property
    def n_frames(self) -> int:
        """Number of time points."""
        return int(self.movie.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of each channel's movie."""
        return tuple(int(s) for s in self.movie.shape)

    @property
    def duration_s(self) -> float | None:
        """Recording length in seconds, when the frame period is known."""
        if self.metadata.frame_period_s is None:
            return None
        return self.n_frames * self.metadata.frame_period_s

    def with_overrides(
        self,
        *,
        frame_rate_hz: float | None = None,
        pixel_size_um: float | tuple[float, float] | None = None,
    ) -> Recording:
        """The same recording (same lazy movies) with a frame rate or pixel size you give.

        For files that do not state them (a TIFF without metadata, a Bruker export without its
        ``.xml``), or state them wrong. The values the file gave, if any, are kept in
        ``metadata.extra["overridden"]``, so what was changed stays on record.

        Parameters
        ----------
        frame_rate_hz : float, optional
            Time points per second (volumes per second for a multi-plane recording), > 0. The
            timestamps become ``k / frame_rate_hz``.
        pixel_size_um : float or (float, float), optional
            Pixel size in µm, (y, x) or one value for both, > 0.

        Returns
        -------
        Recording
            A new Recording; ``self`` is unchanged. Nothing is read from disk.

        Raises
        ------
        ParameterError
            A value that is not a finite positive number, or an absurd one (over 1 MHz, 10 cm).
        """
        changes: dict[str, Any] = {}
        before: dict[str, Any] = {}
        if frame_rate_hz is not None:
            rate = checked_property(frame_rate_hz, "frame_rate_hz")
            changes["frame_period_s"] = 1.0 / rate
            changes["timestamps_s"] = np.arange(self.n_frames, dtype=np.float64) / rate
            before["frame_rate_hz"] = self.metadata.frame_rate_hz
        if pixel_size_um is not None:
            values = np.asarray(pixel_size_um, dtype=object).ravel()
            if values.size not in (1, 2):
                from ..errors import ParameterError

                raise ParameterError(
                    f"pixel_size_um={pixel_size_um!r}: give one value or a (y, x) pair, in µm"
                )
            pair = np.broadcast_to(values, (2,))
            changes["pixel_size_um"] = tuple(checked_property(v, "pixel_size_um") for v in pair)
            before["pixel_size_um"] = self.metadata.pixel_size_um
        if not changes:
            return self
        overridden = {**self.metadata.extra.get("overridden", {}), **{
            k: (list(v) if isinstance(v, tuple) else v) for k, v in before.items()
        }}  # fmt: skip
        metadata = self.metadata.replace(**changes, extra={"overridden": overridden})
        return type(self)(path=self.path, channels=self.channels, metadata=metadata)

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.shape)
        dtype = getattr(self.movie, "dtype", "?")
        duration = self.duration_s
        dur = f", {duration:.1f} s" if duration is not None and math.isfinite(duration) else ""
        return (
            f"Recording({str(self.path)!r}: {len(self.channels)} channel(s) "
            f"{list(self.channels)} of {shape} {dtype}{dur}; {self.metadata.summary()})"
        )


def recording_modality(metadata: Mapping[str, Any]) -> str:
    """``"one_photon"`` for a Miniscope recording or an NWB ``OnePhotonSeries``, else
    ``"two_photon"``.

    Parameters
    ----------
    metadata : mapping
        :meth:`RecordingMetadata.to_dict` (as the pipeline's ``recording.json`` and the napari
        layers keep it).
    """
    extra = metadata.get("extra") or {}
    if metadata.get("source_format") == "miniscope":
        return "one_photon"
    if isinstance(extra, Mapping) and extra.get("neurodata_type") == "OnePhotonSeries":
        return "one_photon"
    return "two_photon"

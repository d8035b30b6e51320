"""Video files (``.avi``, ``.mp4``, ``.mkv``, ...) as lazy grayscale movies, decoded by PyAV.

PyAV (the ``av`` package, FFmpeg's libraries bundled in its wheels; ``pip install
napari-calcium[video]``) reads every codec a calcium-imaging video comes in: raw gray, FFV1 and
MJPEG (the UCLA Miniscope DAQ software's choices) and MPEG-4/H.264 (exports, behaviour videos).

Opening reads only what is needed to know every frame's place (see :func:`probe_video`):

* **AVI**: the header alone. FFmpeg's AVI demuxer loads the file's index (``idx1``) when it
  opens the file, gives frame ``k`` the time stamp ``k`` (in units of one frame) and seeks with
  that index; the key frames are read from the same index (``Stream.index_entries``, PyAV >=
  14), so no frame is read or decoded at open.
* **Other containers** (MP4, Matroska, ...): one pass over the compressed packets (demuxing, no
  decoding) lists each frame's presentation time stamp (PTS) and the key frames; frame ``k`` is
  the ``k``-th smallest PTS (B-frames come out of the decoder in presentation order).

Reading frame ``k`` seeks to the key frame at or before it and decodes forward to ``k``; a
decoder already before ``k`` decodes forward instead when no key frame lies in between. Intra-
only streams whose every frame is a key frame (raw video, MJPEG, FFV1 written with a GOP of 1)
land on ``k`` exactly; FFV1 as OpenCV writes it (a key frame every 12 frames: the range coder's
state carries over between frames) and MPEG-4 decode at most one GOP more. A run of frames (one
dask chunk) is decoded by one open container; containers stay open between chunks (a few per
file, per :class:`VideoFrames`) and one positioned at a chunk's first frame continues without
seeking, so a sequential read decodes each frame once.

Colour videos become grayscale: FFmpeg's ``gray`` conversion (swscale), i.e. the luma ``Y`` of
YUV formats (rescaled from limited to full range where the stream is limited range) and
``0.299 R + 0.587 G + 0.114 B`` (BT.601) for RGB formats. Streams of more than 8 bits per sample
become ``uint16`` (``gray16le``: FFmpeg scales 10/12-bit YUV to the 16-bit range; 16-bit gray
is kept as it is); all others ``uint8``. Values are never rescaled otherwise.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RecordingError
from ._atomic import require_regular_file
from ._common import CHUNK_BYTES, token
from .metadata import Recording, RecordingMetadata

__all__ = [
    "VIDEO_SUFFIXES",
    "VideoFrames",
    "VideoInfo",
    "is_video_file",
    "open_video",
    "probe_video",
    "video_array",
]

#: file name endings read as video files
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm")
#: frames decoded forward (instead of seeking) to reach the next wanted frame of a run
_FORWARD_GAP = 32
#: open containers kept per VideoFrames between reads (least recently used closed first)
_MAX_IDLE = 8
_INSTALL = "reading video files needs PyAV: pip install napari-calcium[video] (or pip install av)"


def _import_av(path: str | os.PathLike) -> Any:
    try:
        import av
    except ImportError as exc:
        raise RecordingError(path, _INSTALL) from exc
    return av


def is_video_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an existing regular file named like a video (``.avi``, ``.mp4``, ...).

    Cheap (no file is opened) and never raises; meant for readers that sniff a path.

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    bool
        True for a regular file whose suffix is in :data:`VIDEO_SUFFIXES` (any case).
    """
    try:
        p = Path(path)
        return p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
    except (OSError, TypeError, ValueError):
        return False


@dataclass(frozen=True, eq=False)
class VideoInfo:
    """Where every frame of one video file is, as :func:`probe_video` found it.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    n_frames : int
        Number of frames.
    height, width : int
        Frame size in pixels.
    dtype : numpy.dtype
        ``uint8``, or ``uint16`` for streams of more than 8 bits per sample.
    codec : str
        FFmpeg's decoder name (``"ffv1"``, ``"rawvideo"``, ``"mjpeg"``, ``"mpeg4"``, ...).
    pix_fmt : str or None
        The stream's pixel format (``"gray"``, ``"yuvj420p"``, ``"bgr24"``, ...).
    container : str
        FFmpeg's demuxer name (``"avi"``, ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"matroska,webm"``).
    frame_rate_hz : float or None
        The stream's average frame rate as the file states it.
    time_base : fractions.Fraction
        Seconds per PTS unit.
    start_pts : int
        PTS of frame 0.
    pts : numpy.ndarray or None
        ``(n_frames,)`` int64 PTS of each frame in presentation order; None when frame ``k`` has
        PTS ``start_pts + k`` (AVI).
    keyframes : numpy.ndarray or None
        Indices of the key frames (from the packet scan, or for AVI from the index FFmpeg loads
        at open); None when unknown (then a read decodes forward at most 32 frames before it
        seeks instead).
    mtime_ns, size : int
        The file's modification time and size when probed (for dask names).
    """

    path: Path
    n_frames: int
    height: int
    width: int
    dtype: np.dtype
    codec: str
    pix_fmt: str | None
    container: str
    frame_rate_hz: float | None
    time_base: Fraction
    start_pts: int = 0
    pts: np.ndarray | None = None
    keyframes: np.ndarray | None = None
    mtime_ns: int = 0
    size: int = 0

    @property
    def out_format(self) -> str:
        """FFmpeg pixel format frames are converted to: ``"gray"`` or ``"gray16le"``."""
        return "gray16le" if self.dtype == np.uint16 else "gray"

    @property
    def timestamps_s(self) -> np.ndarray:
        """``(n_frames,)`` presentation time of each frame in seconds, frame 0 at 0."""
        if self.pts is None:
            rate = self.frame_rate_hz or 1.0
            if self.time_base > 0:
                rate = 1.0 / float(self.time_base)
            return np.arange(self.n_frames, dtype=np.float64) / rate
        return (self.pts - self.pts[0]).astype(np.float64) * float(self.time_base)

    @property
    def frame_period_s(self) -> float | None:
        """Median time between frames in seconds (exact for constant-rate streams)."""
        step: Fraction | None = None
        if self.pts is None and self.time_base > 0:
            step = self.time_base
        elif self.pts is not None and self.n_frames > 1 and self.time_base > 0:
            step = int(np.median(np.diff(self.pts))) * self.time_base
        if step is not None and step > 0:
            return float(step)
        return 1.0 / self.frame_rate_hz if self.frame_rate_hz else None

    def pts_of(self, k: int) -> int:
        """PTS of frame ``k``."""
        return int(self.start_pts + k) if self.pts is None else int(self.pts[k])

    def index_of(self, pts: int) -> int | None:
        """Frame index of a PTS, or None when no frame has it."""
        if self.pts is None:
            k = int(pts) - self.start_pts
            return k if 0 <= k < self.n_frames else None
        k = int(np.searchsorted(self.pts, pts))
        return k if k < self.n_frames and int(self.pts[k]) == int(pts) else None


def _open_container(av: Any, path: Path) -> Any:
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise RecordingError(path, f"not a readable video file ({_why(exc)})") from exc
    except OSError as exc:
        raise RecordingError(path, f"cannot open ({exc.strerror or exc})") from exc


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(": '")[0]


def _sample_dtype(stream: Any) -> np.dtype:
    fmt = stream.codec_context.format
    if fmt is None:
        return np.dtype(np.uint8)
    bits = max((c.bits for c in fmt.components), default=8)
    return np.dtype(np.uint16 if bits > 8 else np.uint8)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Index one video file without decoding it: frame count, size, codec, frame time stamps.

    Parameters
    ----------
    path : str or os.PathLike
        A video file FFmpeg can read (``.avi``, ``.mp4``, ``.mkv``, ...).

    Returns
    -------
    VideoInfo
        The file's frame index (see the module notes: AVI from its header and index, others
        from one scan of the compressed packets).

    Raises
    ------
    RecordingError
        PyAV is not installed; the file is missing, empty, not a video, has no video stream or
        no frames, or is an AVI cut short (its header counts more frames than its data holds:
        an interrupted recording or a partial copy). The message names the file.
    """
    path = Path(path)
    av = _import_av(path)
    require_regular_file(path, "video file")
    st = path.stat()
    if st.st_size == 0:
        raise RecordingError(path, "is empty (0 bytes); the recording or the copy failed")
    container = _open_container(av, path)
    try:
        if not container.streams.video:
            raise RecordingError(path, "has no video stream")
        stream = container.streams.video[0]
        cc = stream.codec_context
        height, width = int(cc.height or 0), int(cc.width or 0)
        if height <= 0 or width <= 0:
            raise RecordingError(path, "video stream has no frame size; the file is damaged")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        rate_hz = float(rate) if rate and float(rate) > 0 else None
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(0)
        start = int(stream.start_time or 0)
        fmt_name = container.format.name
        pts = keys = None
        n = int(stream.frames or 0)
        if "avi" in fmt_name.split(",") and n > 0:
            duration = stream.duration
            if duration is not None and 0 <= int(duration) < n:
                raise RecordingError(
                    path, f"is cut short: its header counts {n} frames but the file holds "
                    f"{int(duration)}; the recording was interrupted or the copy is incomplete"
                )  # fmt: skip
            if duration is not None and int(duration) > n:  # the index has more: trust it
                n = int(duration)
            keys = _index_keyframes(stream, n, start)
        else:
            pts, keys = _scan_packets(container, stream, path)
            n = int(pts.size)
            start = int(pts[0]) if n else 0
        if n == 0:
            raise RecordingError(path, "contains no video frames")
        dtype = _sample_dtype(stream)
        return VideoInfo(
            path=path, n_frames=n, height=height, width=width, dtype=dtype, codec=cc.name,
            pix_fmt=cc.format.name if cc.format is not None else None, container=fmt_name,
            frame_rate_hz=rate_hz, time_base=time_base, start_pts=start, pts=pts,
            keyframes=keys, mtime_ns=st.st_mtime_ns, size=st.st_size,
        )  # fmt: skip
    finally:
        container.close()


def _index_keyframes(stream: Any, n: int, start: int) -> np.ndarray | None:
    """Key frames from the index FFmpeg loaded at open (PyAV >= 14 exposes it), else None."""
    entries = getattr(stream, "index_entries", None)
    if entries is None or len(entries) != n:
        return None
    stamps = np.fromiter((e.timestamp for e in entries if e.is_keyframe), dtype=np.int64)
    return np.unique(stamps - start)


def _scan_packets(container: Any, stream: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sorted presentation time stamps of all frames, and the indices of the key frames."""
    av = _import_av(path)
    stamps: list[int] = []
    key_stamps: list[int] = []
    try:
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:  # the flushing packet at the end
                continue
            stamps.append(int(stamp))
            if packet.is_keyframe:
                key_stamps.append(int(stamp))
    except av.error.FFmpegError as exc:
        raise RecordingError(path, f"cannot read the video's packets ({_why(exc)})") from exc
    pts = np.unique(np.asarray(stamps, dtype=np.int64))
    if pts.size != len(stamps):
        raise RecordingError(path, "several frames share one time stamp; cannot index frames")
    keys = np.searchsorted(pts, np.asarray(key_stamps, dtype=np.int64))
    return pts, np.unique(keys)


class _Reader:
    """One open container of one file, its decoder, and the index of the next frame it yields."""

    def __init__(self, av: Any, info: VideoInfo):
        self.av, self.info = av, info
        self.container = _open_container(av, info.path)
        self.stream = self.container.streams.video[0]
        self.frames: Any = None  # the decode iterator
        self.next: int | None = None  # index of the frame the iterator yields next, if known

    def seek(self, k: int) -> None:
        try:
            self.container.seek(self.info.pts_of(k), stream=self.stream, backward=True)
        except self.av.error.FFmpegError as exc:
            raise RecordingError(self.info.path, f"cannot seek to frame {k} ({_why(exc)})") from exc
        self.frames, self.next = None, None

    def decoded(self) -> Any:
        """Yield ``(index, frame)`` from the current position."""
        if self.frames is None:
            self.frames = self.container.decode(self.stream)
        while True:
            try:
                frame = next(self.frames)
            except StopIteration:
                self.next = self.info.n_frames
                return
            except self.av.error.FFmpegError as exc:
                after = "" if self.next is None else f" after frame {self.next - 1}"
                self.frames, self.next = None, None
                raise RecordingError(
                    self.info.path, f"cannot decode a frame{after}: {_why(exc)}; the file is "
                    "damaged"
                ) from exc  # fmt: skip
            stamp = frame.pts
            index = self.next if stamp is None else self.info.index_of(stamp)
            if index is None:
                continue  # a frame outside the index (e.g. before an edit list's start)
            self.next = index + 1
            yield index, frame

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a broken container must not mask anything
            self.container.close()


def _to_array(frame: Any, out: np.ndarray, fmt: str) -> None:
    """Copy one decoded frame into ``out`` (y, x) as gray (see the module notes)."""
    name = frame.format.name
    if name == fmt or (fmt == "gray" and name.startswith("yuvj")):  # Y of full-range YUV = gray
        plane = frame.planes[0]
        itemsize = out.dtype.itemsize
        rows = np.frombuffer(plane, dtype=out.dtype).reshape(-1, plane.line_size // itemsize)
        out[...] = rows[: out.shape[0], : out.shape[1]]
    else:
        out[...] = frame.to_ndarray(format=fmt)


class VideoFrames:
    """A lazy, picklable array-like ``(frames, y, x)`` over one or more video files, end to end.

    ``[...]`` decodes the frames asked for (any index along axis 0: an int, a slice, a list),
    then applies the rest of the index. Open containers are kept between reads (see the module
    notes); they are dropped when pickled and reopened on first use.

    Parameters
    ----------
    infos : sequence of VideoInfo
        The files in movie order (from :func:`probe_video`); all of one frame size and dtype.

    Raises
    ------
    RecordingError
        A file's frame size or sample depth differs from the first file's (named).
    """

    def __init__(self, infos: Sequence[VideoInfo]):
        self.infos = tuple(infos)
        if not self.infos:
            raise ValueError("VideoFrames needs at least one video file")
        first = self.infos[0]
        for info in self.infos[1:]:
            if (info.height, info.width, info.dtype) != (first.height, first.width, first.dtype):
                raise RecordingError(
                    info.path, f"frames are {info.height}x{info.width} {info.dtype}, but "
                    f"{first.path.name}'s are {first.height}x{first.width} {first.dtype}; "
                    "the files do not belong to one movie"
                )  # fmt: skip
        self.offsets = np.cumsum([0] + [i.n_frames for i in self.infos])
        self.shape = (int(self.offsets[-1]), first.height, first.width)
        self.dtype = first.dtype
        self.ndim = 3
        self._setup()

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[int, _Reader]] = []  # least recently used first
        self.decoded_frames = 0  # frames decoded so far by this object (for tests/benchmarks)

    def __getstate__(self) -> dict:
        return {"infos": self.infos, "offsets": self.offsets, "shape": self.shape,
                "dtype": self.dtype, "ndim": self.ndim}  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._setup()

    def __len__(self) -> int:
        return self.shape[0]

    def close(self) -> None:
        """Close the containers kept open between reads."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _, reader in idle:
            reader.close()

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        with contextlib.suppress(Exception):
            self.close()

    # ---------------------------------------------------------------------------------------

    def __getitem__(self, key: Any) -> np.ndarray:
        key = _expand(key, 3)
        picked = np.arange(self.shape[0])[key[0]]
        scalar = picked.ndim == 0
        flat = np.atleast_1d(picked)
        wanted = np.unique(flat)
        frames = self.read_frames(wanted)
        if not (flat.size == wanted.size and np.array_equal(flat, wanted)):
            frames = frames[np.searchsorted(wanted, flat)]
        return frames[(0 if scalar else slice(None), *key[1:])]

    def read_frames(self, wanted: np.ndarray) -> np.ndarray:
        """Decode frames by their indices.

        Parameters
        ----------
        wanted : numpy.ndarray
            ``(n,)`` sorted, distinct frame indices in ``[0, n_frames)``.

        Returns
        -------
        numpy.ndarray
            ``(n, y, x)`` the frames, in the order of `wanted`.
        """
        out = np.empty((len(wanted), *self.shape[1:]), dtype=self.dtype)
        if not len(wanted):
            return out
        segment = np.searchsorted(self.offsets, wanted, side="right") - 1
        for seg in np.unique(segment):
            where = np.flatnonzero(segment == seg)
            local = wanted[where] - self.offsets[seg]
            self._decode(int(seg), local, out, int(where[0]))
        return out

    def _acquire(self, seg: int, start: int) -> _Reader:
        with self._lock:
            best = None
            for pos, (s, reader) in enumerate(self._idle):
                if s != seg:
                    continue
                if reader.next == start:
                    best = pos
                    break
                best = pos if best is None else best
            if best is not None:
                return self._idle.pop(best)[1]
        return _Reader(_import_av(self.infos[seg].path), self.infos[seg])

    def _release(self, seg: int, reader: _Reader) -> None:
        with self._lock:
            self._idle.append((seg, reader))
            old = self._idle[:-_MAX_IDLE] if len(self._idle) > _MAX_IDLE else []
            del self._idle[: len(old)]
        for _, r in old:
            r.close()

    def _decode(self, seg: int, local: np.ndarray, out: np.ndarray, first: int) -> None:
        info = self.infos[seg]
        reader = self._acquire(seg, int(local[0]))
        ok = False
        try:
            i, n = 0, len(local)
            while i < n:
                target = int(local[i])
                if _should_seek(info, reader.next, target):
                    reader.seek(target)
                for index, frame in reader.decoded():
                    self.decoded_frames += 1
                    if index < target:
                        continue
                    if index > target:
                        raise RecordingError(
                            info.path, f"frame {target} is missing from the file (the decoder "
                            f"went from before it to frame {index})"
                        )  # fmt: skip
                    _to_array(frame, out[first + i], info.out_format)
                    i += 1
                    if i == n:
                        break
                    target = int(local[i])
                    if _should_seek(info, index + 1, target):
                        break  # seek instead of decoding the gap
                else:
                    raise RecordingError(
                        info.path, f"ends before frame {target} of {info.n_frames} the file's "
                        "header counts; the file is cut short or damaged"
                    )  # fmt: skip
            ok = True
        finally:
            if ok:
                self._release(seg, reader)
            else:
                reader.close()


def _should_seek(info: VideoInfo, position: int | None, target: int) -> bool:
    """Whether reaching frame `target` from a decoder about to yield frame `position` is
    cheaper by seeking (to the key frame at or before `target`) than by decoding forward."""
    if position is None or target < position:
        return True
    if target == position:
        return False
    if info.keyframes is not None and info.keyframes.size:
        at = int(np.searchsorted(info.keyframes, target, side="right")) - 1
        return at >= 0 and int(info.keyframes[at]) > position
    return target - position > _FORWARD_GAP


def _expand(key: Any, ndim: int) -> tuple:
    """``key`` as a tuple with its Ellipsis spelled out (None entries are not supported)."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is None for k in key):
        raise IndexError("VideoFrames does not support np.newaxis in an index")
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_ell:
        pos = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (ndim - len(key) + 1)
        key = key[:pos] + fill + key[pos + 1 :]
    return key + (slice(None),) * (ndim - len(key))


def _chunk_sizes(n: int, rows: int, keyframes: np.ndarray | None) -> list[int]:
    """Chunk lengths of about `rows` frames for one file, each starting at a key frame where
    they are known (a chunk then decodes no frame it does not return, in whatever order dask
    runs the chunks); a GOP longer than 4 x `rows` is split anyway."""
    if keyframes is None or not keyframes.size:
        full, rest = divmod(n, rows)
        return [rows] * full + ([rest] if rest else [])
    edges = np.unique(np.concatenate([[0], keyframes[(keyframes > 0) & (keyframes < n)], [n]]))
    sizes: list[int] = []
    mergeable = False  # the last chunk is whole GOPs that more may join
    for gop in np.diff(edges).tolist():
        if mergeable and sizes[-1] + gop <= rows:
            sizes[-1] += gop
        elif gop > 4 * rows:  # a very long GOP: split it anyway
            full, rest = divmod(gop, rows)
            sizes += [rows] * full + ([rest] if rest else [])
            mergeable = False
        else:
            sizes.append(gop)
            mergeable = True
    return sizes


def video_array(
    infos: Sequence[VideoInfo], *, name: str | None = None, chunk_bytes: int = CHUNK_BYTES
) -> Any:
    """A lazy dask array ``(frames, y, x)`` over video files, one file after the other.

    Parameters
    ----------
    infos : sequence of VideoInfo
        From :func:`probe_video`, in movie order.
    name : str, optional
        The dask name; default a token of the files' paths, sizes and modification times.
    chunk_bytes : int
        About this many bytes of frames per chunk; chunks never span two files, start at key
        frames where these are known, and each is decoded by one open container.

    Returns
    -------
    dask.array.Array
        ``(frames, y, x)`` uint8 or uint16; ``movie[k]`` decodes frame ``k`` alone (from the
        key frame before it).
    """
    import dask.array as da

    source = VideoFrames(infos)
    per_frame = max(1, source.shape[1] * source.shape[2] * source.dtype.itemsize)
    rows = max(1, chunk_bytes // per_frame)
    chunks: list[int] = []
    for info in source.infos:
        chunks += _chunk_sizes(info.n_frames, rows, info.keyframes)
    if name is None:
        name = "video-" + token(
            *[(str(i.path.resolve()), i.size, i.mtime_ns, i.n_frames) for i in source.infos]
        )
    meta = np.empty((0, 0, 0), dtype=source.dtype)
    return da.from_array(
        source, chunks=(tuple(chunks), *source.shape[1:]), name=name, meta=meta, lock=False
    )


def open_video(path: str | os.PathLike) -> Recording:
    """Open a video file as a lazy grayscale movie.

    Parameters
    ----------
    path : str or os.PathLike
        A video file (``.avi``, ``.mp4``, ``.mkv``, ... anything FFmpeg reads).

    Returns
    -------
    Recording
        One channel ``"Ch1"``: a dask array ``(frames, y, x)``, uint8 (uint16 for deeper
        streams); colour videos as luma (see the module notes). Metadata: ``source_format
        "video"``, the stated frame rate, the frames' presentation times in seconds from frame
        0 (``timestamps_s``), ``bit_depth`` 8 or 16, and in ``extra`` the codec, pixel format,
        container and file size.

    Raises
    ------
    RecordingError
        PyAV is missing (``pip install napari-calcium[video]``), or the file is missing, empty,
        not a video, or damaged; the message names the file.

    Examples
    --------
    >>> rec = open_video("behaviour.mp4")  # doctest: +SKIP
    >>> rec.movie[0].compute().shape  # doctest: +SKIP
    (480, 640)
    """
    info = probe_video(path)
    movie = video_array([info])
    stamps = info.timestamps_s
    period = info.frame_period_s
    metadata = RecordingMetadata(
        source_format="video",
        frame_period_s=period,
        timestamps_s=stamps,
        channel_names=("Ch1",),
        bit_depth=8 * info.dtype.itemsize,
        extra={
            "codec": info.codec,
            "pix_fmt": info.pix_fmt,
            "container": info.container,
            "stated_frame_rate_hz": info.frame_rate_hz,
            "file_bytes": info.size,
        },
    )
    return Recording(path=info.path, channels={"Ch1": movie}, metadata=metadata)

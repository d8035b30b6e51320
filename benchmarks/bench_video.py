"""Readers: UCLA Miniscope folders and video files through PyAV (issue 19).

Folders are written once by ``napari_calcium.io.miniscope.write_miniscope`` in the Miniscope DAQ
software's layout and cached (``$NAPARI_CALCIUM_BENCH_DIR``, default
``<tempdir>/napari-calcium-bench/``): 10 segments x 1,000 frames of 600 x 600 uint8 in FFV1
(the DAQ default; ``--quick``: 3 x 100 of 128 x 128), and one segment of 1,000 frames per codec
for random access: raw gray, FFV1 (a key frame every 12 frames, as OpenCV writes it), MJPEG
(every frame a key frame) and MPEG-4 part 2 (a key frame every 30). Frames are a smooth
vignetted background, drifting blobs and noise (pixel noise sd ~6 grey levels), so FFV1
compresses them about as much as real one-photon data.

Rows:

a. lazy open: ``open_miniscope(folder)`` (10 AVI headers + indices, ``timeStamps.csv``, both
   ``metaData.json``). Goal <= 0.2 s.
b. first frame after open: ``rec.movie[0].compute()``. Goal <= 50 ms.
c. full sequential read, frames decoded and dropped (a sink that keeps nothing, so 3.6 GB need
   not fit in memory): the dask movie with the synchronous scheduler (one core) and with the
   default threaded one; the reference is PyAV's own loop over every segment (``for frame in
   container.decode(stream): frame.to_ndarray()``). Goal: >= 0.8x the reference (one core).
   The three run interleaved, round after round, so load from other processes hits them alike.
d. random access: 100 single frames in random order, ``movie[k].compute()`` each, per codec;
   and the same through a naive PyAV loop that opens, seeks (backward to the key frame) and
   decodes forward for every frame.

Timing is page-cache warm; best of ``repeat``.

Run it: ``python benchmarks/run.py --only video [--quick]``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from _harness.peers import optional_import, skipped_row
from _harness.results import Row
from _harness.timing import Timing, time_call

EXTRA_PACKAGES = ("av",)
NC = "napari-calcium"
REFERENCE = "PyAV decode loop"
LAYOUT_VERSION = 1  # bump when the files written change, so cached folders are rebuilt


@dataclass(frozen=True)
class Size:
    segments: int
    frames_per_segment: int
    side: int

    @property
    def n_frames(self) -> int:
        return self.segments * self.frames_per_segment

    def label(self) -> str:
        s = self.side
        return f"{self.segments}x{self.frames_per_segment} frames {s}x{s}"


class SyntheticMovie:
    """A lazy ``(frames, y, x)`` uint8 miniscope-like movie, generated on ``[a:b]``."""

    def __init__(self, n_frames: int, side: int, seed: int = 0):
        self.shape = (n_frames, side, side)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[:side, :side] / side - 0.5
        self.background = 90 * np.exp(-(xx**2 + yy**2) / 0.18) + 20
        self.noise = rng.normal(0, 6, (16, side, side)).astype(np.float32)
        self.centres = rng.uniform(0.1, 0.9, (40, 2)) * side
        self.rates = rng.uniform(0.002, 0.02, 40)
        self.yy, self.xx = np.mgrid[:side, :side]

    def frame(self, t: int) -> np.ndarray:
        side = self.shape[1]
        img = self.background.copy()
        shift = 3 * np.sin(t / 50.0)
        for (cy, cx), rate in zip(self.centres, self.rates, strict=True):
            amp = 60 * max(0.0, np.sin(t * rate * 6.0))
            if amp > 1:
                r = max(2, side // 60)
                lo_y, hi_y = int(max(0, cy - 3 * r)), int(min(side, cy + 3 * r))
                lo_x, hi_x = int(max(0, cx + shift - 3 * r)), int(min(side, cx + shift + 3 * r))
                sub_y = self.yy[lo_y:hi_y, lo_x:hi_x] - cy
                sub_x = self.xx[lo_y:hi_y, lo_x:hi_x] - cx - shift
                img[lo_y:hi_y, lo_x:hi_x] += amp * np.exp(-(sub_y**2 + sub_x**2) / (2 * r * r))
        img += np.roll(self.noise[t % 16], t % 7, axis=1)
        return np.clip(img, 0, 255).astype(np.uint8)

    def __getitem__(self, key: Any) -> np.ndarray:
        idx = np.arange(self.shape[0])[key[0] if isinstance(key, tuple) else key]
        return np.stack([self.frame(int(t)) for t in np.atleast_1d(idx)])


def _root() -> Path:
    return Path(
        os.environ.get("NAPARI_CALCIUM_BENCH_DIR")
        or Path(tempfile.gettempdir(), "napari-calcium-bench")
    )


def build_folder(size: Size, codec: str) -> Path:
    """Write (once) a Miniscope experiment folder; reused when its ``.complete`` marker exists."""
    from napari_calcium.io.miniscope import write_miniscope

    s = size
    base = (
        _root()
        / f"miniscope-{codec}-{s.segments}x{s.frames_per_segment}x{s.side}-v{LAYOUT_VERSION}"
    )
    folder, marker = base / "experiment", base / ".complete"
    if marker.exists():
        return folder
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    movie = SyntheticMovie(size.n_frames, size.side)
    write_miniscope(
        folder,
        movie,
        frame_rate_hz=30.0,
        segment_frames=size.frames_per_segment,
        codec=codec,
        dropped=[size.n_frames // 2 + 1],
    )
    marker.touch()
    return folder


class _Sink:
    """A ``da.store`` target that keeps nothing (counts frames)."""

    def __init__(self) -> None:
        self.frames = 0

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        self.frames += int(value.shape[0])


def _open(folder: Path) -> Any:
    from napari_calcium.io.miniscope import open_miniscope

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one dropped frame, on purpose
        return open_miniscope(folder)


def _segments(folder: Path) -> list[Path]:
    device = folder / "Miniscope"
    return sorted(device.glob("*.avi"), key=lambda p: int(p.stem))


def pyav_decode_all(files: list[Path]) -> int:
    """The reference: PyAV's own loop over every frame of every file, each to a numpy array."""
    import av

    n = 0
    for path in files:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                frame.to_ndarray(format="gray")
                n += 1
    return n


def pyav_random_frames(path: Path, order: np.ndarray) -> None:
    """A naive PyAV random reader: open, seek to the key frame before, decode forward."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for k in order:
            container.seek(int(k), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts >= k:
                    frame.to_ndarray(format="gray")
                    break


def run(quick: bool = False) -> list[Row]:
    """Time lazy open, first frame, full and random reads of Miniscope folders (see above).

    Parameters
    ----------
    quick : bool, optional
        3 x 100 frames of 128 x 128 and fewer repeats.

    Returns
    -------
    list of Row
    """
    import dask
    import dask.array as da

    from napari_calcium.io.video import VideoFrames, probe_video

    size = Size(3, 100, 128) if quick else Size(10, 1000, 600)
    repeat = 2 if quick else 3
    sz = size.label() + " FFV1"
    folder = build_folder(size, "ffv1")
    files = _segments(folder)
    rows: list[Row] = []
    n = size.n_frames - 1  # one frame "dropped" by the writer
    mb = n * size.side**2 / 1e6

    t_open = time_call(lambda: _open(folder), repeat=5 if quick else 7)
    rec = _open(folder)
    rows.append(
        Row(
            "lazy open",
            NC,
            sz,
            t_open,
            notes=f"open_miniscope: {len(files)} AVI headers + timeStamps.csv; "
            f"{len(rec.movie.chunks[0])} chunks; goal <= 0.2 s",
        )
    )
    t_first = time_call(lambda: _open(folder).movie[0].compute(), repeat=5 if quick else 7)
    rows.append(
        Row(
            "open + first frame",
            NC,
            sz,
            t_first,
            notes="open_miniscope + movie[0].compute(); goal first frame <= 50 ms",
        )
    )
    movie = rec.movie
    t_k = time_call(lambda: movie[size.frames_per_segment * 3 // 2 + 5].compute(), repeat=5)
    rows.append(
        Row(
            "one frame mid-file",
            NC,
            sz,
            t_k,
            notes="movie[k].compute(), k not a key frame (seek + decode forward)",
        )
    )

    work = {"frames": n, "MB": mb}

    def store(scheduler: str) -> None:
        with dask.config.set(scheduler=scheduler):
            da.store(_open(folder).movie, _Sink(), lock=False)

    # interleaved rounds (the PyAV loop, then ours): load from other processes hits both alike
    rounds = repeat if quick else 2  # full size: about a minute per pass
    times: dict[str, list[float]] = {"ref": [], "sync": [], "threads": []}
    calls = {"ref": lambda: pyav_decode_all(files), "sync": lambda: store("synchronous"),
             "threads": lambda: store("threads")}  # fmt: skip
    for _ in range(rounds):
        for key, call in calls.items():
            times[key].append(time_call(call, repeat=1, warmup=0).times[0])
    t_ref, t_sync, t_thr = (Timing(tuple(times[k])) for k in ("ref", "sync", "threads"))
    rows.append(
        Row(
            "full sequential read",
            REFERENCE,
            sz,
            t_ref,
            work=work,
            notes="for frame in container.decode(stream): frame.to_ndarray('gray')",
        )
    )

    rows.append(
        Row(
            "full sequential read",
            NC,
            sz,
            t_sync,
            work=work,
            notes="da.store(open_miniscope(...).movie, sink), synchronous scheduler "
            "(1 core); goal >= 0.8x the PyAV loop",
        )
    )
    rows.append(
        Row(
            "full sequential read",
            NC + " (threads)",
            sz,
            t_thr,
            work=work,
            notes=f"same, dask threaded scheduler ({os.cpu_count()} cores)",
        )
    )
    for row in rows[-2:]:
        row.add_note(f"{t_ref.best / row.timing.best:.2f}x the PyAV loop's speed")

    per_codec = Size(1, 200, 128) if quick else Size(1, 1000, 600)
    n_random = 30 if quick else 100
    order = np.random.default_rng(0).permutation(per_codec.n_frames - 1)[:n_random]
    for codec, what in (
        ("rawvideo", "raw gray"),
        ("ffv1", "FFV1, key frame every 12"),
        ("mjpeg", "MJPEG"),
        ("mpeg4", "MPEG-4, key frame every 30"),
    ):
        cfolder = build_folder(per_codec, codec)
        csz = f"{per_codec.frames_per_segment} frames {per_codec.side}x{per_codec.side} {what}"
        cmovie = _open(cfolder).movie

        def ours(m: Any = cmovie) -> None:
            for k in order:
                m[int(k)].compute()

        t_ours = time_call(ours, repeat=repeat)
        rows.append(
            Row("random single frames", NC, csz, t_ours, work={"frames": n_random},
                notes="movie[k].compute() in random order (dask's per-compute cost included)")
        )  # fmt: skip
        reader = VideoFrames([probe_video(p) for p in _segments(cfolder)])

        def direct(r: Any = reader) -> None:
            for k in order:
                r[int(k)]

        t_direct = time_call(direct, repeat=repeat)
        rows.append(
            Row("random single frames", NC + " reader", csz, t_direct, work={"frames": n_random},
                notes="VideoFrames[k] (the array-like under the dask movie), no dask")
        )  # fmt: skip
        seg = _segments(cfolder)[0]
        t_naive = time_call(lambda s=seg: pyav_random_frames(s, order), repeat=repeat)
        rows.append(
            Row(
                "random single frames",
                "PyAV seek + decode",
                csz,
                t_naive,
                work={"frames": n_random},
                notes="container.seek(k, backward=True), decode to k",
            )
        )
        reference = _open(cfolder).movie.compute(scheduler="synchronous")
        same = all(np.array_equal(cmovie[int(k)].compute(), reference[k]) for k in order[:10])
        rows[-3].add_note("random = sequential decode" if same else "MISMATCH with sequential")
        rows.append(_imageio_row(seg, order, csz, repeat, reference))
    return rows


#: run in a fresh child process: imageio-ffmpeg starts ffmpeg with a ``preexec_fn``, and a fork
#: of this process (PyAV's and dask's threads running) can deadlock before its exec
_IMAGEIO_CHILD = """
import json, sys, time
import numpy as np
import imageio_ffmpeg
path, side, order, repeat = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
times, frames = [], []
for _ in range(repeat):
    frames.clear()
    t = time.perf_counter()
    for k in order:  # the DAQ software's AVIs claim 60 fps: seek by that clock
        gen = imageio_ffmpeg.read_frames(path, input_params=["-ss", f"{k / 60:.6f}"])
        next(gen)
        frames.append(np.frombuffer(next(gen), np.uint8).reshape(side, side, -1)[..., 0].copy())
        gen.close()
    times.append(time.perf_counter() - t)
np.save(sys.argv[5], np.stack(frames))
print(json.dumps(times))
"""


def _imageio_row(seg: Path, order: np.ndarray, size: str, repeat: int, reference) -> Row:
    """imageio-ffmpeg, the other maintained decoder: an ffmpeg process per seek (``-ss``)."""
    import json
    import subprocess
    import sys

    if optional_import("imageio_ffmpeg") is None:
        why = "imageio-ffmpeg is not importable here (pip install imageio-ffmpeg)"
        return skipped_row("random single frames", "imageio-ffmpeg", size, why)
    out = seg.parent / "imageio_frames.npy"
    args = [str(seg), str(reference.shape[1]), json.dumps([int(k) for k in order]), str(repeat)]
    proc = subprocess.run(
        [sys.executable, "-c", _IMAGEIO_CHILD, *args, str(out)],
        capture_output=True, text=True, timeout=1800, check=True,
    )  # fmt: skip
    timing = Timing(times=tuple(json.loads(proc.stdout.strip().splitlines()[-1])))
    got = np.load(out)
    exact = sum(np.array_equal(g, reference[int(k)]) for g, k in zip(got, order, strict=True))
    return Row("random single frames", "imageio-ffmpeg", size, timing, work={"frames": len(order)},
               notes=f"read_frames(-ss t): an ffmpeg process per frame; {exact}/{len(order)} the "
               "right frame")  # fmt: skip

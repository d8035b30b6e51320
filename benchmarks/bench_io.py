"""Readers: opening and reading a Bruker PrairieView T-series folder (issue 3), peers side by side.

The folder is built once and cached (``$NAPARI_CALCIUM_BENCH_DIR``, default
``<tempdir>/napari-calcium-bench/``, keyed by layout and size): one single-plane T-series of
2,000 single-frame 512 x 512 uint16 files ``TSeries-bench-001_Cycle00001_Ch2_000001.ome.tif`` ...
(``--quick``: 200 files of 128 x 128), 13-bit noise, no ``.xml``/``.env`` (napari-calcium reads the
file names; CalSciPy 0.8.3 only ever reads file names). Two header layouts:

* ``PV 5.5 headers`` (every row): each file is laid out byte for byte like a real PrairieView 5.5.64
  file (shared/data/bruker_calscipy_1plane_tseries, from CalSciPy's test data, MIT): 8-byte header,
  the pixels in 64 contiguous uncompressed strips, then the Software/DateTime tags, MetaMorph UIC1-3
  tags and an OME-XML ``<BinaryOnly>`` stub. The non-pixel bytes of that file are embedded below
  (:data:`_PV55_TEMPLATE`, 1,556 bytes) and re-addressed for other frame sizes. Like the real files
  000060-000069, every file carries the stub; the full OME-XML of a real export's frame 000001 is
  not simulated.
* ``minimal headers`` (full-read rows only): ``tifffile.imwrite(..., metadata=None)``: no OME, no
  UIC tags, the cheapest TIFF for tifffile to parse.

Rows:

a. lazy open: ``open_recording(folder)`` vs a dask stack of ``dask.delayed(tifffile.imread)`` over
   the sorted file list (what napari's builtin reader does with a folder of TIFFs; shape and dtype
   from reading the first file; listing included). Goal: <= 0.1 s.
b. first frame after open: ``rec.movie[0].compute()`` vs ``stack[0].compute()``. Goal: < 50 ms.
c. full read into memory: ``rec.movie.compute()`` (open excluded), the same lazy movie stored
   chunk by chunk into a preallocated array (``np.empty`` + ``da.store``: no concatenation, half
   the peak memory), napari-calcium's CalSciPy-named ``load_bruker_tifs(folder)`` (open
   included), ``tifffile.imread(sorted list)`` (the reference, its default ``ioworkers=1``; list
   made outside the timing) and with ``ioworkers=<cores>``, the delayed-tifffile stack's
   ``.compute()``, and CalSciPy 0.8.3 ``load_bruker_tifs(folder, verbose=False)`` (cv2 per file,
   in directory order). Goal: >= 0.9x tifffile. Each result is
   checked against the reference: napari-calcium's must be equal; for CalSciPy the note says how
   many frames land at their time position. "peak memory" is the peak ``tracemalloc`` allocation
   of the untimed warm-up call (numpy buffers; glibc keeps freed heap resident, so RSS deltas
   would depend on what ran before); it is stored in the JSON as ``peak_rss_delta_bytes``.
d. full mode only, if this process may write ``/proc/sys/vm/drop_caches``: open + first frame and
   full read right after dropping the page cache (``sync; echo 3 > drop_caches``, before each
   timed call). This empties the guest's cache only; a VM host may still cache the disk image.

Timing is page-cache warm unless a row says "cold": every warm row runs once untimed first
(warm-up, also used for the checks), then ``repeat`` timed calls; the best is shown.

Run it: ``python benchmarks/run.py --only io [--quick]``; with CalSciPy in the bench venv
(``benchmarks/make_bench_venv.sh``), otherwise its rows are ``skipped``.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import logging
import os
import shutil
import struct
import tempfile
import tracemalloc
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from _harness.memory import MiB
from _harness.peers import add_relative_notes, optional_import, skipped_row
from _harness.results import Row
from _harness.timing import Timing, time_call

EXTRA_PACKAGES = ("calscipy", "opencv-python-headless")
# CalSciPy reads with cv2, whose libtiff warns about PrairieView's UIC tags; only errors, please
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

NC = "napari-calcium"
REFERENCE = "tifffile"
RECORDING = "TSeries-bench-001"
LAYOUT_VERSION = 1  # bump when the files written change, so cached folders are rebuilt

#: zlib+base64 of the first 8 bytes and the 1,548 bytes after the pixel data of a real PrairieView
#: 5.5.64.60 file (EM0121_PRE-001_Cycle00001_Ch2_000060.ome.tif, 512 x 512 uint16, from CalSciPy's
#: test data, MIT, Copyright (c) 2023 Darik A. O'Neil; see shared/data/.../PROVENANCE.md).
_PV55_TEMPLATE = (
    "eNrl0jtv01AUB/Brp48goLyLVBbLUwH57TitlaQWUKBSo1agog5A7dg3xFJiV7FLms1SV0ZGBn8IRgYvfA9/Esrf"
    "josCLHTG0k/n5B6f+3Duzs4j4tXqpE4IqXNggQ0JpJBBDoRBHSywIYEUMsiBsKiDBTYkkEIGOZAa6mCBDQmkkEEO"
    "ZAF1sMCGBFLIIAeyiDpYYEMCKWSQA1lCHSywIYEUMsiBLKMOFtiQQAoZ5MuE4Oz/s/2x4499yr3x6YRriA3R0EVD"
    "lgn+lvJRZVU15Q1TNThFM7VNU2/OClX9JTBz0f0jFvdr5LvjMIjK/IUTx47rkIuHIf/+dOHx3O+LXhbOzwlu2mys"
    "2NohW9wcQmy2uCGEDNjiJhASs7M7XzxXij64Wv2+VsXrVVyp5r2B6MFN+IT+W4ifEW9X761VcR0SjD+s3rtDfmAv"
    "v07IVDm2y8zlLFMr82L2WpUXlubyFYYl35HsLWB19Frll62T1Wqe4kT3L8aZOlljFmf/CnbxoMr3ka9XcxZfTMGc"
    "q8X7GFeR3y1OgLw9t+7bswVyD/Ebxt+dzeb5gvx9lX9lq2/Z2jodDbmPdBz5YdDmFVHmtzqtve42h/EgavODOD42"
    "JWkymYjhMQ3KKxG54fFUDMcfpNfugI6cSEKDpMqKKsgGP+s0TyP/t+6JVnaosqxIh93dWafgB1HsBC5FV+SbUTm4"
    "G7pOXG7n0otzl+6QwhEVTyOP5w4Odp61+ZNxYJ6c+J5JqSerRlMXqKY3BL3ZM4Se0egLnuc0XK+vNrxNl++0nviB"
    "M57uBcMp16Wx4zmx89wf0ja/3cUCytH+q20BRz56OnWHVJbLdKAeyWUqFovHfv+vxZu058qaoQmO0d8Q9E3qCj3P"
    "dbFfXVF0qjXdDY2XOq3iJB3yE71k3+E="
)
_PV55_PIXEL_BYTES = 512 * 512 * 2  # in the template: pixels at bytes 8 .. 8 + this
_PV55_STRIPS = 64
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 11: 4, 12: 8}
_UIC1_OFFSET_IDS = {4, 5, 6, 7, 16, 17, 40, 41}  # UIC1 entries whose value is a file offset


# --------------------------------------------------------------------------------------------------
# The folder
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Size:
    """A single-plane T-series: number of frames (files) and square frame side."""

    n_frames: int
    side: int

    @property
    def frame_bytes(self) -> int:
        return self.side * self.side * 2

    def label(self, layout: str) -> str:
        return f"{self.n_frames}x{self.side}x{self.side}, {layout}"

    def work(self) -> dict[str, float]:
        return {"frames": self.n_frames, "MB": self.n_frames * self.frame_bytes / 1e6}


def pv55_header_and_trailer(side: int) -> tuple[bytes, bytes]:
    """Bytes before and after the pixels of a PrairieView 5.5 file of ``side x side`` uint16.

    The embedded template is re-addressed: all file offsets after the pixels (IFD entries and the
    UIC1 table) move by the change in pixel bytes, and the 64 strips get ``side / 64`` rows each.
    """
    if side % _PV55_STRIPS:
        raise ValueError(f"side={side}: must be a multiple of {_PV55_STRIPS}")
    blob = zlib.decompress(base64.b64decode(_PV55_TEMPLATE))
    head, tail = bytearray(blob[:8]), bytearray(blob[8:])
    start = 8 + _PV55_PIXEL_BYTES  # file offset of tail[0] in the template
    pixel_bytes = side * side * 2
    delta = pixel_bytes - _PV55_PIXEL_BYTES
    ifd = struct.unpack_from("<I", head, 4)[0]
    struct.pack_into("<I", head, 4, ifd + delta)
    at = ifd - start
    (n_entries,) = struct.unpack_from("<H", tail, at)
    entries: dict[int, tuple[int, int, int]] = {}  # code -> (type, count, value position in tail)
    for i in range(n_entries):
        pos = at + 2 + 12 * i
        code, typ, count, value = struct.unpack_from("<HHII", tail, pos)
        entries[code] = (typ, count, pos + 8)
        if count * _TIFF_SIZES[typ] > 4:  # value is an offset to data after the pixels
            struct.pack_into("<I", tail, pos + 8, value + delta)
    for code, value in ((256, side), (257, side), (278, side // _PV55_STRIPS)):
        struct.pack_into("<I", tail, entries[code][2], value)
    strip = pixel_bytes // _PV55_STRIPS
    for code, values in ((273, [8 + i * strip for i in range(_PV55_STRIPS)]),
                         (279, [strip] * _PV55_STRIPS)):  # fmt: skip
        _, count, pos = entries[code]
        assert count == _PV55_STRIPS
        offset = struct.unpack_from("<I", tail, pos)[0] - delta - start
        struct.pack_into(f"<{count}I", tail, offset, *values)
    _, count, pos = entries[33628]  # UIC1: (id, value) pairs
    table = struct.unpack_from("<I", tail, pos)[0] - delta - start
    for i in range(count):
        uid, value = struct.unpack_from("<II", tail, table + 8 * i)
        if uid in _UIC1_OFFSET_IDS:
            struct.pack_into("<I", tail, table + 8 * i + 4, value + delta)
    return bytes(head), bytes(tail)


def _frames(size: Size, seed: int = 0) -> Iterator[np.ndarray]:
    """13-bit noise frames (PrairieView's range), generated in blocks."""
    rng = np.random.default_rng(seed)
    block = 50
    for start in range(0, size.n_frames, block):
        n = min(block, size.n_frames - start)
        yield from rng.integers(0, 8192, size=(n, size.side, size.side), dtype=np.uint16)


def _check_pv55_file(path: Path, side: int) -> None:
    """The written file parses like the real one (shape, UIC name, OME stub, contiguous strips)."""
    with _quiet_tifffile(), tifffile.TiffFile(path, _multifile=False) as tif:
        page = tif.pages[0]
        uic1 = page.tags.valueof(33628) or {}
        ok = (
            page.shape == (side, side)
            and page.dtype == np.uint16
            and page.compression == 1
            and page.dataoffsets[0] == 8
            and str(page.software).startswith("Prairie View 5.5")
            and "BinaryOnly" in page.description
            and uic1.get("CalibrationUnits") == "microns"
            and uic1.get("Name") == "Gattaca"
        )
        pixels_ok = ok and np.array_equal(page.asarray(), tifffile.imread(path))
    if not pixels_ok:
        raise RuntimeError(f"{path}: the PrairieView-layout writer produced an unexpected file")


def build_folder(size: Size, layout: str) -> Path:
    """Write (once) the T-series folder for `size` and `layout` ("pv55" or "minimal").

    Returns the recording folder. A folder is reused when its ``.complete`` marker exists.
    """
    root = Path(
        os.environ.get("NAPARI_CALCIUM_BENCH_DIR")
        or Path(tempfile.gettempdir(), "napari-calcium-bench")
    )
    base = root / f"prairieview-{layout}-{size.n_frames}x{size.side}x{size.side}-v{LAYOUT_VERSION}"
    folder, marker = base / RECORDING, base / ".complete"
    if marker.exists():
        return folder
    shutil.rmtree(base, ignore_errors=True)
    folder.mkdir(parents=True)
    if layout == "pv55":
        head, tail = pv55_header_and_trailer(size.side)
    for i, frame in enumerate(_frames(size), start=1):
        path = folder / f"{RECORDING}_Cycle00001_Ch2_{i:06d}.ome.tif"
        if layout == "pv55":
            with open(path, "wb") as fh:
                fh.write(head)
                fh.write(frame.tobytes())
                fh.write(tail)
        else:
            tifffile.imwrite(path, frame, metadata=None, photometric="minisblack")
    if layout == "pv55":
        _check_pv55_file(folder / f"{RECORDING}_Cycle00001_Ch2_000001.ome.tif", size.side)
    marker.write_text("ok\n")
    return folder


# --------------------------------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's warnings about PrairieView's UIC tags (logged for every file)."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def sorted_files(folder: Path) -> list[str]:
    """The T-series' files in time order (single cycle: zero-padded names sort by frame)."""
    return sorted(str(p) for p in folder.glob("*.ome.tif"))


def dask_tifffile_stack(folder: Path) -> Any:
    """The usual lazy baseline: list, read the first file for shape/dtype, stack delayed reads."""
    import dask
    import dask.array as da

    files = sorted_files(folder)
    first = tifffile.imread(files[0])
    read = dask.delayed(tifffile.imread, pure=True)
    return da.stack([da.from_delayed(read(f), first.shape, first.dtype) for f in files])


def store_into_numpy(movie: Any) -> np.ndarray:
    """Compute a dask array chunk by chunk into one preallocated numpy array."""
    import dask.array as da

    out = np.empty(movie.shape, movie.dtype)
    da.store(movie, out, lock=False)
    return out


def cpu_count() -> int:
    getaffinity = getattr(os, "sched_getaffinity", None)
    return len(getaffinity(0)) if getaffinity else (os.cpu_count() or 1)


def drop_page_cache() -> str | None:
    """``sync; echo 3 > /proc/sys/vm/drop_caches``; None on success, else why not."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
    except OSError as exc:
        return f"cannot drop the page cache ({type(exc).__name__}: {exc})"
    return None


def _fingerprints(movie: np.ndarray) -> list[bytes]:
    return [frame[0, :16].tobytes() for frame in movie]


def order_note(result: np.ndarray, reference: np.ndarray) -> str:
    """How `result` relates to the time-ordered `reference` (same frames? same order?)."""
    if result.shape == reference.shape and np.array_equal(result, reference):
        return "frames in time order, values equal to tifffile"
    if result.shape != reference.shape:
        return f"shape {result.shape} differs from tifffile's {reference.shape}"
    where = {fp: t for t, fp in enumerate(_fingerprints(reference))}
    positions = [where.get(fp, -1) for fp in _fingerprints(result)]
    if -1 in positions or sorted(positions) != list(range(len(positions))):
        return "frames differ from tifffile's"
    in_place = sum(p == t for t, p in enumerate(positions))
    return (
        f"frames NOT in time order: {in_place} of {len(positions)} at their time position "
        "(directory order); same frames as tifffile"
    )


def _time(fn: Callable[[], Any], repeat: int) -> tuple[Timing, Any]:
    """One untimed warm-up call (its result is returned), then `repeat` timed calls."""
    first = fn()
    return time_call(fn, repeat=repeat, warmup=0), first


def _time_read(
    fn: Callable[[], Any], repeat: int, reference: np.ndarray | None = None
) -> tuple[Timing, str]:
    """Like :func:`_time` for a full read.

    The untimed warm-up call runs under ``tracemalloc``: its peak traced allocation (numpy
    buffers, including cv2's, which come from numpy's allocator) goes into the returned Timing's
    ``peak_rss_delta_bytes``. tracemalloc is used rather than RSS because glibc keeps freed heap
    memory resident, which makes RSS deltas depend on what ran before. The warm-up result is
    compared with `reference`, then freed before the timed calls, so that they reuse its memory.
    """
    gc.collect()
    tracemalloc.start()
    try:
        first = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    note = "" if reference is None else order_note(first, reference)
    del first
    timing = time_call(fn, repeat=repeat, warmup=0)
    return Timing(timing.times, peak_rss_delta_bytes=peak), note


def _time_cold(fn: Callable[[], Any], repeat: int) -> Timing:
    """`repeat` calls, each right after dropping the page cache (the drop is not timed)."""
    times = []
    for _ in range(repeat):
        if drop_page_cache() is not None:
            raise RuntimeError("dropping the page cache failed")
        times.extend(time_call(fn, repeat=1, warmup=0).times)
    return Timing(times=tuple(times))


# --------------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------------
def run(quick: bool = False) -> list[Row]:
    """Time lazy open, first frame and full reads of a PrairieView folder (see module docstring).

    Parameters
    ----------
    quick : bool, optional
        200 files of 128 x 128 and fewer repeats, no cold-cache rows.

    Returns
    -------
    list of Row
    """
    size = Size(200, 128) if quick else Size(2000, 512)
    rows: list[Row] = []
    with _quiet_tifffile():  # 2 log lines per PrairieView file otherwise; as a user would
        for layout, label in (("pv55", "PV 5.5 headers"), ("minimal", "minimal headers")):
            folder = build_folder(size, layout)
            full = layout == "pv55"
            rows.extend(_layout_rows(folder, size, size.label(label), quick, full=full))
    out_mib = size.work()["MB"] * 1e6 / MiB
    for row in rows:
        peak = row.timing and row.timing.peak_rss_delta_bytes
        if peak:
            row.add_note(f"peak memory {peak / MiB:,.0f} MiB (output {out_mib:,.0f} MiB)")
    add_relative_notes(rows, REFERENCE)
    return rows


def _layout_rows(folder: Path, size: Size, sz: str, quick: bool, *, full: bool) -> list[Row]:
    """Rows of one folder: (a, b, c, d) when `full`, else only the full reads (c)."""
    from napari_calcium import load_bruker_tifs as nc_load_bruker_tifs
    from napari_calcium import open_recording

    open_repeat, read_repeat = (3, 2) if quick else (5, 5)
    workers = cpu_count()
    files = sorted_files(folder)
    with _quiet_tifffile():
        reference = tifffile.imread(files)  # also warms the page cache
    rows: list[Row] = []
    if full:
        # a. lazy open, b. first frame
        t_open, rec = _time(lambda: open_recording(folder), open_repeat)
        t_stack, stack = _time(lambda: dask_tifffile_stack(folder), open_repeat)
        chunks = rec.movie.chunks[0]
        rows.append(
            Row(
                "lazy open",
                NC,
                sz,
                t_open,
                notes="open_recording(folder): listing + 1 TIFF header; "
                f"{len(chunks)} chunks of <= {max(chunks)} frames; goal <= 0.1 s",
            )
        )
        rows.append(
            Row(
                "lazy open",
                "dask + tifffile",
                sz,
                t_stack,
                notes=f"sorted listing, imread(first file), da.stack of {len(files)} "
                "from_delayed(imread)",
            )
        )
        t_first, frame = _time(lambda: rec.movie[0].compute(), open_repeat)
        wrong = "" if np.array_equal(frame, reference[0]) else "; WRONG VALUES"
        rows.append(
            Row(
                "first frame after open",
                NC,
                sz,
                t_first,
                work={"frames": 1},
                notes=f"rec.movie[0].compute() (reads its chunk: {chunks[0]} files); "
                f"goal < 50 ms{wrong}",
            )
        )
        with _quiet_tifffile():
            t_sfirst, _ = _time(lambda: stack[0].compute(), open_repeat)
        rows.append(
            Row(
                "first frame after open",
                "dask + tifffile",
                sz,
                t_sfirst,
                work={"frames": 1},
                notes="stack[0].compute()",
            )
        )

    # c. full reads
    opened = open_recording(folder)
    t, order = _time_read(lambda: opened.movie.compute(), read_repeat, reference)
    rows.append(
        Row(
            "full read",
            NC,
            sz,
            t,
            work=size.work(),
            notes=f"rec.movie.compute() (open not timed), dask threaded scheduler ({workers} "
            f"threads); {order}",
        )
    )
    t, order = _time_read(lambda: store_into_numpy(opened.movie), read_repeat, reference)
    rows.append(
        Row(
            "full read",
            f"{NC} + da.store",
            sz,
            t,
            work=size.work(),
            notes="np.empty + da.store(rec.movie, out, lock=False) (open not timed): each chunk "
            f"goes into the output, no concatenation; {order}",
        )
    )
    t, order = _time_read(lambda: nc_load_bruker_tifs(folder)[0], read_repeat, reference)
    rows.append(
        Row(
            "full read",
            f"{NC} load_bruker_tifs",
            sz,
            t,
            work=size.work(),
            notes=f"CalSciPy-named API, open included; {order}",
        )
    )
    with _quiet_tifffile():
        t, _ = _time_read(lambda: tifffile.imread(files), read_repeat)
    rows.append(
        Row(
            "full read",
            REFERENCE,
            sz,
            t,
            work=size.work(),
            notes="tifffile.imread(sorted list), default ioworkers=1 (list made outside the "
            "timing); the reference",
        )
    )
    if workers > 1:
        with _quiet_tifffile():
            t, _ = _time_read(lambda: tifffile.imread(files, ioworkers=workers), read_repeat)
        rows.append(
            Row(
                "full read",
                f"tifffile ioworkers={workers}",
                sz,
                t,
                work=size.work(),
                notes=f"tifffile.imread(sorted list, ioworkers={workers})",
            )
        )
    if full:
        with _quiet_tifffile():
            t, _ = _time_read(lambda: stack.compute(), read_repeat)
        rows.append(
            Row(
                "full read",
                "dask + tifffile",
                sz,
                t,
                work=size.work(),
                notes=f"the lazy stack's .compute(): {len(files)} tasks, {workers} threads",
            )
        )
    rows.append(_calscipy_row(folder, size, sz, reference, read_repeat))
    del reference

    # d. cold page cache
    if full and not quick:
        rows.extend(_cold_rows(folder, size, sz, open_recording))
    return rows


def _calscipy_row(folder: Path, size: Size, sz: str, reference: np.ndarray, repeat: int) -> Row:
    """CalSciPy 0.8.3 ``load_bruker_tifs``, or a skipped row where it is not installed."""
    bruker = optional_import("CalSciPy.bruker")
    if bruker is None:
        reason = "CalSciPy not installed (use the bench venv: benchmarks/make_bench_venv.sh)"
        return skipped_row("full read", "CalSciPy", sz, reason)
    t, order = _time_read(
        lambda: bruker.load_bruker_tifs(folder, verbose=False)[0], repeat, reference
    )
    return Row(
        "full read",
        "CalSciPy",
        sz,
        t,
        work=size.work(),
        notes="load_bruker_tifs(folder, verbose=False): cv2.imreadmulti per file; " + order,
    )


def _cold_rows(folder: Path, size: Size, sz: str, open_recording: Callable[..., Any]) -> list[Row]:
    """Rows (d): each timed call starts with an empty page cache; listing and open included."""
    names = (
        ("open + first frame, cold cache", NC),
        ("open + first frame, cold cache", "dask + tifffile"),
        ("full read, cold cache", NC),
        ("full read, cold cache", REFERENCE),
    )
    reason = drop_page_cache()
    if reason is not None:
        return [skipped_row(b, impl, sz, reason) for b, impl in names]

    def first_nc() -> Any:
        return open_recording(folder).movie[0].compute()

    def first_stack() -> Any:
        return dask_tifffile_stack(folder)[0].compute()

    def read_nc() -> Any:
        return open_recording(folder).movie.compute()

    def read_tifffile() -> Any:
        return tifffile.imread(sorted_files(folder))

    cold = "timed right after sync; echo 3 > /proc/sys/vm/drop_caches (guest page cache only)"
    calls = (
        (first_nc, 3, {"frames": 1}, "open_recording(folder).movie[0].compute()"),
        (first_stack, 3, {"frames": 1}, "dask_tifffile_stack(folder)[0].compute()"),
        (read_nc, 2, size.work(), "open_recording(folder).movie.compute()"),
        (read_tifffile, 2, size.work(), "tifffile.imread(sorted(glob(folder)))"),
    )
    out = []
    with _quiet_tifffile():
        for (bench, impl), (fn, repeat, work, what) in zip(names, calls, strict=True):
            timing = _time_cold(fn, repeat)
            out.append(Row(bench, impl, sz, timing, work=work, notes=f"{what}; {cold}"))
    return out

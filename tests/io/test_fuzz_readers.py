"""Fuzz every reader and parser: a correct result, None for "not ours", or our own exception.

Issue 3, "Bad input: a clear error, nothing lost": random and mutated inputs (random bytes of
boundary lengths; truncated, bit-flipped, byte-inserted/deleted and chunk-duplicated copies of the
real files; PrairieView XML/.env with elements and attributes removed, duplicated, moved, renamed or
set to garbage / huge / negative / NaN / empty values, odd prologs, entities and deep nesting; JSON
sidecars with keys removed or of the wrong type; TIFF headers with IFD offsets, entry counts, tag
codes/types/counts, strip offsets and byte counts and description numbers corrupted; pickled
ops.npy and ground-truth .npz damaged as bytes and as members) may only give

* a correct result: an opened recording whose channels share one advertised shape, whose first and
  last time points compute to arrays of that shape and dtype (or raise our exception), and whose
  metadata invents nothing (a frame period, pixel size or z step is None or a positive finite
  number, timestamps have one entry per frame and no NaN, a bit depth is None or 1-64, the
  channel names are the channels'); unmutated seeds must give exactly what tifffile / numpy /
  ElementTree read;
* ``None`` (sniff_format / napari's get_reader: "not ours"); get_reader's reader returns
  LayerData napari can use (finite positive scale, finite contrast limits);
* an instance of :class:`napari_calcium.errors.NapariCalciumError` with a message.

Anything else fails, printing the family, the input's index, its seed and mutations, where it was
raised and how to rebuild it (``NC_FUZZ_ONLY=family:index``; the input's folder is kept). Every
input is time-boxed (SIGALRM after PER_INPUT_S, and the elapsed time checked), must leave its folder
unchanged (names, sizes, mtimes), must not touch ``../shared/data``, and leaves nothing behind in
the temporary folder; each family has an overall time budget. Inputs come from
``numpy.random.default_rng((SEED, family, index))``, so every run feeds the same inputs.

Inputs per run (counted as they run and asserted, per family and per entry point reached;
``NC_FUZZ_SCALE=10`` runs ten times as many). About 80 s on a 2-core machine.

========================  ======  ==========================================================
family                    inputs  entry points fed (each input also goes through sniff_format
                                  and get_reader, plain and as a one-item list)
========================  ======  ==========================================================
xml                        5,000  parse_prairieview_xml
env                        5,000  parse_prairieview_env (.env and PV 4 Config.cfg)
bruker                     1,500  open_bruker -> scan_bruker_folder, both parsers, frame reads
tiff                       2,500  open_tiff, load_images
tiff_folder                1,000  open_tiff_folder, open_tiff (each file), load_images
binary                     5,000  open_binary, load_binary (in memory and memory-mapped)
suite2p                    1,500  open_suite2p_binary(allow_pickle=True)
groundtruth                5,000  load_ground_truth
napari                     5,000  sniff_format, get_reader and the reader it returns, on the
                                  inputs of the families above plus junk files and folders,
                                  FIFOs, dangling and looping links, folders named like files
========================  ======  ==========================================================

That is 31,500 inputs through sniff_format and get_reader. The suite2p family unpickles
mutated copies of the real ``ops.npy`` (and of a copy with its large arrays left out): unpickling
arbitrary bytes can run code, so the inputs are only mutations of that one trusted file, and while
the families run numpy unpickles through an allow-list of the four globals the real file names
(numpy.dtype, numpy.ndarray, numpy.core.multiarray._reconstruct and .scalar); a mutation that
names any other global fails to load, as any damaged pickle does.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import numbers
import os
import shutil
import sys
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import dask
import fuzz_inputs as fz
import numpy as np
import pytest
import tifffile
from bruker_helpers import pv_xml
from fuzz_inputs import (
    Broken,
    Case,
    InputTimeout,
    alarm_clock,
    attempt,
    library_logs_kept_local,
    snapshot,
)

from napari_calcium._napari import _reader
from napari_calcium.core.synthetic.recording import GroundTruth
from napari_calcium.io import binary, groundtruth, suite2p_binary, tiff
from napari_calcium.io import open as open_mod
from napari_calcium.io.bruker import series as bruker
from napari_calcium.io.bruker import stack as bruker_stack
from napari_calcium.io.metadata import Recording

SEED = 20_250_601
SCALE = float(os.environ.get("NC_FUZZ_SCALE", "1"))
ONLY = os.environ.get("NC_FUZZ_ONLY", "")  # "family:index": rebuild and run that input alone
PER_INPUT_S = 5.0
INPUTS = {
    "xml": 5000, "env": 5000, "bruker": 1500, "tiff": 2500, "tiff_folder": 1000, "binary": 5000,
    "suite2p": 1500, "groundtruth": 5000, "napari": 5000,
}  # fmt: skip
BUDGET_S = {family: 60.0 for family in INPUTS}  # each takes < 17 s on a 2-core machine
FAMILY_IDS = {family: k for k, family in enumerate(INPUTS)}
MAX_FAILURES = 10

# the functions whose inputs are counted: (label, module, attribute)
ENTRY_POINTS = [
    ("parse_prairieview_xml", bruker, "parse_prairieview_xml"),
    ("parse_prairieview_env", bruker, "parse_prairieview_env"),
    ("scan_bruker_folder", bruker, "scan_bruker_folder"),
    ("scan_bruker_folder", bruker_stack, "scan_bruker_folder"),
    ("open_bruker", bruker_stack, "open_bruker"),
    ("is_bruker_folder", bruker_stack, "is_bruker_folder"),
    ("open_tiff", tiff, "open_tiff"),
    ("open_tiff_folder", tiff, "open_tiff_folder"),
    ("load_images", tiff, "load_images"),
    ("open_binary", binary, "open_binary"),
    ("load_binary", binary, "load_binary"),
    ("open_suite2p_binary", suite2p_binary, "open_suite2p_binary"),
    ("load_ground_truth", groundtruth, "load_ground_truth"),
    ("sniff_format", open_mod, "sniff_format"),
    ("get_reader", _reader, "get_reader"),
    ("read_recording", _reader, "read_recording"),
]


class Tally:
    """Counts, per entry point, the inputs that reached it (wraps the library's functions)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.current: set[str] = set()
        self.counts: Counter = Counter()
        for label, module, name in ENTRY_POINTS:
            monkeypatch.setattr(module, name, self._wrap(label, getattr(module, name)))

    def _wrap(self, label: str, fn):
        @functools.wraps(fn)
        def counted(*args, **kwargs):
            self.current.add(label)
            return fn(*args, **kwargs)

        return counted

    def close_input(self) -> None:
        self.counts.update(self.current)
        self.current.clear()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> fz.Seeds:
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = fz.build_seeds(folder, _volume_xml)
    leftovers = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    expected = ["3d-u16.bin", "3d-u16.json", "4d-f32.bin", "4d-f32.json", "big.tif",
                "calscipy-i16.bin", "calscipy-i16.json", "si.tif", "si4.tif", "split",
                "split/images_00000.tif", "split/images_00001.tif", "split/images_00002.tif",
                "truth.npz", "u8-rate.bin", "u8-rate.json"]  # fmt: skip
    assert leftovers == expected, "our writers left stray files behind"
    return made


def _volume_xml() -> str:
    seqs = []
    for t in range(3):
        frames = []
        for z in range(3):
            files = [
                (c, f"Ch{c}", f"vol_Cycle{t + 1:05d}_Ch{c}_{z + 1:06d}.ome.tif") for c in (1, 2)
            ]
            frames.append({"rel": t + 0.1 * z, "z": 10 * z, "files": files})
        seqs.append(("TSeries ZSeries Element", t + 1, {"bidirectionalZ": "False"}, frames))
    return pv_xml(seqs)


@pytest.fixture
def tally(monkeypatch) -> Tally:
    return Tally(monkeypatch)


# ---------------------------------------------------------------------------------------------
# harness


# CPython 3.11's _pickle prints (does not raise) this when a damaged pickle's BYTEARRAY8 opcode
# asks for an absurd size; the MemoryError that follows still reaches the reader, which raises
# MetadataError. Reproduce: pickle.loads(b"\x80\x05\x96" + (2**62).to_bytes(8, "little") + b"x")
KNOWN_PRINTED = {("suite2p", SystemError, "deallocated bytearray object has exported buffers")}


@contextlib.contextmanager
def _printed_exceptions():
    """Exceptions handed to sys.excepthook (printed, not raised) while the block runs."""
    printed: list[BaseException] = []
    old, sys.excepthook = sys.excepthook, lambda kind, exc, tb: printed.append(exc)
    try:
        yield printed
    finally:
        sys.excepthook = old


def _describe(family: str, i: int, case: Case | None, exc: BaseException, folder: Path) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    note = case.note if case else "(building the input failed)"
    return (
        f"[{family} #{i}] {type(exc).__name__}: {str(exc)[:400]}\n"
        f"    input: {note[:600]}\n    path: {case.path if case else folder} (kept)\n"
        f"    at: {where}\n"
        f"    rebuild: NC_FUZZ_ONLY={family}:{i} pytest tests/io/test_fuzz_readers.py -k {family}"
    )


def check_sniff(path: Path) -> tuple[str | None, object]:
    """sniff_format and get_reader agree and never raise; a list of one path works the same."""
    fmt = open_mod.sniff_format(path)
    if fmt not in (None, *open_mod.FORMATS):
        raise Broken(f"sniff_format returned {fmt!r}")
    reader = _reader.get_reader(str(path))
    if (reader is None) != (fmt is None) or (reader is not None and not callable(reader)):
        raise Broken(f"get_reader returned {reader!r} where sniff_format says {fmt!r}")
    if (_reader.get_reader([str(path)]) is None) != (fmt is None):
        raise Broken("get_reader([path]) disagrees with get_reader(path)")
    if _reader.get_reader([str(path), str(path)]) is not None:
        raise Broken("get_reader accepted a list of two paths")
    return fmt, reader


def run_family(family: str, tmp_path: Path, seeds: fz.Seeds, tally: Tally, build, check):
    """Build and check ``INPUTS[family]`` inputs; returns (inputs run, outcome counts)."""
    n = int(INPUTS[family] * SCALE)
    indices: list[int] = list(range(n))
    if ONLY:
        only_family, _, only_index = ONLY.partition(":")
        if only_family == family:
            indices = [int(only_index)]
    root = tmp_path / family
    root.mkdir()
    shared_before = snapshot(fz.DATA)
    fz.GuardedUnpickler.refused = 0
    outcomes: Counter = Counter()
    failures: list[str] = []
    slowest = (0.0, -1)
    start = time.perf_counter()
    ran = known_printed = 0
    with (
        dask.config.set(scheduler="sync"),
        alarm_clock(PER_INPUT_S) as arm,
        warnings.catch_warnings(),
        fz.guarded_unpickling(),
        library_logs_kept_local("tifffile"),
        _printed_exceptions() as printed,
    ):
        warnings.simplefilter("ignore")
        for i in indices:
            rng = np.random.default_rng([SEED, FAMILY_IDS[family], i])
            folder = root / f"{i:05d}"
            folder.mkdir()
            case = None
            try:
                case = build(seeds, rng, folder, i)
                before = snapshot(folder)
                t0 = time.perf_counter()
                with arm(PER_INPUT_S):
                    outcome = check(case, rng)
                elapsed = time.perf_counter() - t0
                if elapsed > PER_INPUT_S:
                    raise Broken(f"took {elapsed:.1f} s (limit {PER_INPUT_S} s)")
                for exc in printed:
                    if (family, type(exc), str(exc)) not in KNOWN_PRINTED:
                        raise Broken(f"printed instead of raised: {type(exc).__name__}: {exc}")
                    known_printed += 1
                printed.clear()
                after = snapshot(folder)
                if after != before:
                    changed = sorted(set(after.items()) ^ set(before.items()))
                    raise Broken(f"the input folder changed: {changed[:5]}")
            except (Exception, InputTimeout) as exc:
                failures.append(_describe(family, i, case, exc, folder))
                if len(failures) >= MAX_FAILURES:
                    break
                continue
            finally:
                tally.close_input()
            ran += 1
            outcomes[outcome] += 1
            slowest = max(slowest, (elapsed, i))
            shutil.rmtree(folder)
            if time.perf_counter() - start > BUDGET_S[family] * SCALE:
                failures.append(f"[{family}] over its {BUDGET_S[family] * SCALE:.0f} s budget "
                                f"after {ran} of {n} inputs")  # fmt: skip
                break
    total = time.perf_counter() - start
    print(
        f"\n{family}: {ran} inputs in {total:.1f} s (slowest #{slowest[1]}: {slowest[0]:.3f} s); "
        f"outcomes {dict(outcomes)}; entry points {dict(tally.counts)}; "
        f"pickle globals refused {fz.GuardedUnpickler.refused}; "
        f"known CPython SystemErrors printed {known_printed}"
    )
    assert not failures, f"{len(failures)} input(s) broke the contract:\n" + "\n".join(failures)
    assert snapshot(fz.DATA) == shared_before, "../shared/data changed"
    assert sorted(os.listdir(root)) == [], "stray files left in the temporary folder"
    assert ran == len(indices)
    if not ONLY:
        ok = sum(v for k, v in outcomes.items() if k == "ok" or k.endswith(":ok"))
        assert ok > 0 and sum(outcomes.values()) > ok, outcomes
    return ran, outcomes


def _counts_at_least(tally: Tally, ran: int, labels: tuple[str, ...], share: float = 1.0):
    if ONLY:
        return
    for label in labels:
        assert tally.counts[label] >= share * ran, (label, tally.counts[label], ran)


# ---------------------------------------------------------------------------------------------
# checks


def _positive(value) -> bool:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return real and math.isfinite(value) and value > 0


def check_metadata(md, movie) -> None:
    period, pixel, z, ts = md.frame_period_s, md.pixel_size_um, md.z_step_um, md.timestamps_s
    if period is not None and not _positive(period):
        raise Broken(f"frame_period_s={period!r}")
    if pixel is not None and not (len(pixel) == 2 and all(_positive(v) for v in pixel)):
        raise Broken(f"pixel_size_um={pixel!r}")
    if z is not None and not _positive(z):
        raise Broken(f"z_step_um={z!r}")
    if ts is not None and (len(ts) != movie.shape[0] or np.isnan(ts).any()):
        raise Broken(f"timestamps_s of length {len(ts)} for {movie.shape[0]} frames: {ts[:4]}")
    depth = md.bit_depth
    if depth is not None and not (isinstance(depth, int) and 0 < depth <= 64):
        raise Broken(f"bit_depth={depth!r}")  # no pixel has more bits; napari takes 2**depth
    md.to_dict()
    md.summary()


def check_recording(rec, expected: dict | np.ndarray | None = None) -> None:
    if not isinstance(rec, Recording) or not rec.channels:
        raise Broken(f"not a Recording with channels: {rec!r:.200}")
    if tuple(rec.metadata.channel_names) != tuple(rec.channels):
        raise Broken(f"channel_names {rec.metadata.channel_names} vs {list(rec.channels)}")
    shapes = {movie.shape for movie in rec.channels.values()}
    if len(shapes) != 1:
        raise Broken(f"channels of different shapes: {shapes}")
    for name, movie in rec.channels.items():
        if movie.ndim not in (3, 4) or min(movie.shape) < 1:
            raise Broken(f"channel {name!r} has shape {movie.shape}")
        if rec.metadata.n_planes != (movie.shape[1] if movie.ndim == 4 else 1):
            raise Broken(f"n_planes={rec.metadata.n_planes} for shape {movie.shape}")
        for t in sorted({0, movie.shape[0] - 1}):
            _, frame = attempt(lambda m=movie, t=t: np.asarray(m[t].compute()))
            if frame is not None and (frame.shape != movie.shape[1:] or frame.dtype != movie.dtype):
                raise Broken(f"{name}[{t}] computed {frame.shape} {frame.dtype}, "
                             f"advertised {movie.shape[1:]} {movie.dtype}")  # fmt: skip
        check_metadata(rec.metadata, movie)
    if expected is not None:
        if isinstance(expected, np.ndarray):
            expected = {next(iter(rec.channels)): expected}
        if sorted(expected) != sorted(rec.channels):
            raise Broken(f"channels {list(rec.channels)}, expected {sorted(expected)}")
        for name, want in expected.items():
            got = np.asarray(rec.channels[name].compute())
            if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
                raise Broken(f"unmutated seed: channel {name} reads {got.dtype}{got.shape}, "
                             f"expected {want.dtype}{want.shape} (or other values)")  # fmt: skip


def _xml_reference(path: Path) -> tuple:
    """What ElementTree sees in an unmutated PrairieView XML (an independent reading)."""
    root = fz.parse_tree(path.read_bytes())
    seqs = [
        (seq.get("type"), [
            (int(fr.get("index")), float(fr.get("relativeTime")),
             [(int(f.get("channel")), f.get("filename")) for f in fr.findall("File")])
            for fr in seq.findall("Frame")
        ])
        for seq in root.findall("Sequence")
    ]  # fmt: skip
    shard = root.find("PVStateShard")
    shard = [] if shard is None else shard
    state = {
        v.get("key"): v.get("value") for v in shard if v.tag == "PVStateValue" and v.get("value")
    }
    return root.get("version"), seqs, state


def check_xml(case: Case, rng) -> str:
    outcome, doc = attempt(bruker.parse_prairieview_xml, case.path)
    if doc is not None:
        if not isinstance(doc, bruker.PrairieViewXml) or not isinstance(doc.state, dict):
            raise Broken(f"parse_prairieview_xml returned {doc!r:.200}")
        for seq in doc.sequences:
            assert isinstance(seq, bruker.PVSequence) and isinstance(seq.state, dict)
            for fr in seq.frames:
                for channel, cname, fname, page in fr.files:
                    if not (isinstance(channel, int) and fname and "/" not in fname):
                        raise Broken(f"<File> parsed as {(channel, cname, fname, page)!r:.200}")
        if case.expected == "reference":
            version, seqs, state = _xml_reference(case.path)
            got = [
                (s.type, [(f.index, f.relative_time, [x[:3:2] for x in f.files]) for f in s.frames])
                for s in doc.sequences
            ]
            if (doc.version, got) != (version, seqs):
                raise Broken(f"unmutated XML parsed as {doc.version} {got!r:.300}")
            if any(doc.state.get(k) != v for k, v in state.items()):
                raise Broken("unmutated XML: PVStateShard values differ from ElementTree's")
    check_sniff(case.path)
    check_sniff(case.path.parent)  # a folder with an XML and no frames
    return outcome


def check_env(case: Case, rng) -> str:
    outcome, env = attempt(bruker.parse_prairieview_env, case.path)
    if env is not None:
        if not isinstance(env, bruker.PrairieViewEnv) or not isinstance(env.state, dict):
            raise Broken(f"parse_prairieview_env returned {env!r:.200}")
        if case.expected == "reference":
            root = fz.parse_tree(case.path.read_bytes())
            tseries = [(e.tag, dict(e.attrib)) for t in root.findall("TSeries") for e in t]
            zs = root.find("PVZSeriesController")
            want = (root.get("version"), tseries, dict(zs.attrib) if zs is not None else {})
            if (env.version, env.tseries, env.zseries) != want:
                raise Broken(f"unmutated .env parsed as {(env.version, env.tseries)!r:.300}")
    check_sniff(case.path)
    check_sniff(case.path.parent)
    return outcome


def check_bruker(case: Case, rng) -> str:
    outcome, rec = attempt(bruker_stack.open_bruker, case.path, **case.kwargs)
    if rec is not None:
        check_recording(rec, case.expected)
    check_sniff(case.path)
    return outcome


def check_tiff(case: Case, rng) -> str:
    outcome, rec = attempt(tiff.open_tiff, case.path)
    if rec is not None:
        check_recording(rec, case.expected)
        _, movie = attempt(tiff.load_images, case.path, channel=0)
        first = next(iter(rec.channels.values()))
        if movie is not None and (movie.shape != first.shape or movie.dtype != first.dtype):
            raise Broken(f"load_images gave {movie.shape} {movie.dtype}, open_tiff {first.shape}")
    check_sniff(case.path)
    return outcome


def check_tiff_folder(case: Case, rng) -> str:
    outcome, rec = attempt(tiff.open_tiff_folder, case.path)
    if rec is not None:
        check_recording(rec, case.expected)
        movie = rec.movie
        for t in np.cumsum(rec.metadata.extra["frames_per_file"])[:-1]:  # across file boundaries
            for k in (t - 1, t):
                _, frame = attempt(lambda k=k: np.asarray(movie[k].compute()))
                if frame is not None and frame.shape != movie.shape[1:]:
                    raise Broken(f"frame {k} computed {frame.shape}, advertised {movie.shape}")
        _, whole = attempt(tiff.load_images, case.path, channel=0)
        if whole is not None and (whole.shape != movie.shape or whole.dtype != movie.dtype):
            raise Broken(f"load_images gave {whole.shape} {whole.dtype}, not {movie.shape}")
    check_sniff(case.path)
    return outcome


def check_binary(case: Case, rng) -> str:
    outcome, rec = attempt(binary.open_binary, case.path, **case.kwargs)
    if rec is not None:
        check_recording(rec, case.expected)
    loaded, data = attempt(binary.load_binary, case.path, **case.kwargs)
    _, mapped = attempt(binary.load_binary, case.path, mapped=True, **case.kwargs)
    for arr in (data, mapped):
        if arr is not None and rec is not None:
            movie = np.asarray(rec.movie.compute())
            if arr.shape != movie.shape or not np.array_equal(
                np.asarray(arr), movie, equal_nan=True
            ):
                raise Broken(f"load_binary {arr.shape} {arr.dtype} != open_binary {movie.shape}")
    del mapped, arr
    if rec is not None and data is None:
        raise Broken(f"open_binary opened it but load_binary raised {loaded}")
    check_sniff(case.path)
    return outcome


def check_suite2p(case: Case, rng) -> str:
    outcome, rec = attempt(suite2p_binary.open_suite2p_binary, case.path, **case.kwargs)
    if rec is not None:
        check_recording(rec)
        movie = rec.movie
        if movie.dtype != np.int16:
            raise Broken(f"suite2p movie of dtype {movie.dtype}")
        unmutated = case.expected == "zeros"
        if unmutated and (movie.shape != (5322, 512, 512) or np.asarray(movie[0, :4, :4]).any()):
            raise Broken(f"unmutated ops.npy: movie {movie.shape}")
    check_sniff(case.path)
    return outcome


def check_groundtruth(case: Case, rng) -> str:
    outcome, truth = attempt(groundtruth.load_ground_truth, case.path)
    if truth is not None:
        if not isinstance(truth, GroundTruth):
            raise Broken(f"load_ground_truth returned {type(truth).__name__}")
        if case.expected is not None:
            for name in ("labels", "spikes", "calcium", "shifts", "footprints"):
                if not np.array_equal(getattr(truth, name), getattr(case.expected, name)):
                    raise Broken(f"unmutated ground truth: {name} differs")
    check_sniff(case.path)
    return outcome


_NAPARI_BUILDERS = (
    (fz.build_bruker, "bruker"), (fz.build_tiff, "tiff"), (fz.build_tiff_folder, "tiff_folder"),
    (fz.build_binary, "binary"), (fz.build_suite2p, "suite2p"),
    (fz.build_groundtruth, "groundtruth"), (fz.build_xml, "xml"), (fz.build_env, "env"),
)  # fmt: skip


def build_napari(seeds: fz.Seeds, rng, folder: Path, i: int) -> Case:
    if rng.random() < 0.35:
        path, note = fz.build_junk(rng, folder)
        return Case(path, note)
    build, name = fz.pick(rng, _NAPARI_BUILDERS)
    case = build(seeds, rng, folder, 100 + int(rng.integers(10**6)))  # always mutated
    if rng.random() < 0.2:
        case.path = case.path.parent if case.path != folder else case.path
    case.note = f"{name} input: {case.note}"
    return case


def check_napari(case: Case, rng) -> str:
    fmt, reader = check_sniff(case.path)
    if reader is None:
        return "None"
    outcome, layers = attempt(reader, str(case.path))
    if layers is not None:
        problem = fz.as_layers_ok(layers)
        if problem:
            raise Broken(f"get_reader -> {fmt}: {problem}")
        for data, kwargs, _ in layers:
            t = data.shape[0] // 2
            _, frame = attempt(lambda d=data, t=t: np.asarray(d[t].compute()))
            if frame is not None and (frame.shape != data.shape[1:] or frame.dtype != data.dtype):
                raise Broken(f"layer {kwargs.get('name')!r}[{t}] computed {frame.shape}")
    return f"{fmt}:{outcome}"


# ---------------------------------------------------------------------------------------------
# the families


def test_fuzz_prairieview_xml(tmp_path, seeds, tally):
    ran, _ = run_family("xml", tmp_path, seeds, tally, fz.build_xml, check_xml)
    _counts_at_least(tally, ran, ("parse_prairieview_xml", "sniff_format", "get_reader"))


def test_fuzz_prairieview_env(tmp_path, seeds, tally):
    ran, _ = run_family("env", tmp_path, seeds, tally, fz.build_env, check_env)
    _counts_at_least(tally, ran, ("parse_prairieview_env", "sniff_format", "get_reader"))


def test_fuzz_bruker_folder(tmp_path, seeds, tally):
    ran, _ = run_family("bruker", tmp_path, seeds, tally, fz.build_bruker, check_bruker)
    _counts_at_least(tally, ran, ("open_bruker", "scan_bruker_folder", "sniff_format"))
    _counts_at_least(tally, ran, ("parse_prairieview_xml", "parse_prairieview_env"), 0.3)


def test_fuzz_tiff_file(tmp_path, seeds, tally):
    ran, _ = run_family("tiff", tmp_path, seeds, tally, fz.build_tiff, check_tiff)
    _counts_at_least(tally, ran, ("open_tiff", "sniff_format", "get_reader"))


def test_fuzz_tiff_folder(tmp_path, seeds, tally):
    ran, _ = run_family(
        "tiff_folder", tmp_path, seeds, tally, fz.build_tiff_folder, check_tiff_folder
    )
    _counts_at_least(tally, ran, ("open_tiff_folder", "sniff_format", "get_reader"))
    _counts_at_least(tally, ran, ("open_tiff",), 0.9)  # not when no .tif is left


def test_fuzz_binary(tmp_path, seeds, tally):
    ran, _ = run_family("binary", tmp_path, seeds, tally, fz.build_binary, check_binary)
    _counts_at_least(tally, ran, ("open_binary", "load_binary", "sniff_format", "get_reader"))


def test_fuzz_suite2p(tmp_path, seeds, tally):
    ran, _ = run_family("suite2p", tmp_path, seeds, tally, fz.build_suite2p, check_suite2p)
    _counts_at_least(tally, ran, ("open_suite2p_binary", "sniff_format"))


def test_fuzz_ground_truth(tmp_path, seeds, tally):
    ran, _ = run_family(
        "groundtruth", tmp_path, seeds, tally, fz.build_groundtruth, check_groundtruth
    )
    _counts_at_least(tally, ran, ("load_ground_truth", "sniff_format"))


def test_fuzz_napari_reader(tmp_path, seeds, tally):
    ran, outcomes = run_family("napari", tmp_path, seeds, tally, build_napari, check_napari)
    _counts_at_least(tally, ran, ("sniff_format", "get_reader"))
    if not ONLY:  # every format was dispatched to, and opened at least sometimes
        for fmt in ("bruker", "tiff", "tiff-folder", "binary"):
            assert outcomes[f"{fmt}:ok"] > 0, (fmt, outcomes)
        assert tally.counts["read_recording"] >= 0.3 * ran, tally.counts


def test_seed_tiffs_are_what_they_claim(seeds):
    """The TIFF seeds cover the layouts the fuzzer is meant to start from."""
    kinds = {}
    for name, data in seeds.tiff.items():
        with tifffile.TiffFile(io.BytesIO(data), _multifile=False) as tif:
            kinds[name] = (tif.is_bigtiff, tif.byteorder, tif.pages[0].compression.name)
    assert kinds["bigtiff-f64"][0] and kinds["big-endian"][1] == ">"
    assert kinds["zlib"][2] == "ADOBE_DEFLATE" and kinds["neurofinder-3pages"][2] != "NONE"

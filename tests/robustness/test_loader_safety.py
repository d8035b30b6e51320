"""Loaders under hostile input: never block, never leak a raw exception (issue 15).

1. Special files (named pipes, character devices) in place of any file a loader reads give our
   ``RecordingError`` naming that file, without opening it: ``load_rois`` (every format, a
   suite2p folder whose ``stat.npy``, ``ops.npy`` or ``iscell.npy`` is a pipe), ``load_traces``
   (``.npz``, the CSV set and its ``.json`` sidecar), ``load_results`` (each of its files),
   ``open_binary``'s ``.json`` sidecar, ``load_ground_truth`` and ``open_recording``. Every such
   call runs under an alarm, so a hang fails the test instead of stalling the suite.
2. Corrupt files in a pipeline results folder (truncated or bit-flipped ``.npz``, pickled
   object arrays, damaged JSON, wrong array shapes and dtypes, results that disagree) give our
   error naming the file and the problem.
3. A damaged ``.npy`` header (numpy's parser raises ``tokenize.TokenError``/``SyntaxError``) in
   any ``.npy`` or ``.npz`` member a loader reads gives our error naming the file.
4. Non-numeric ROI coordinates (text, null, booleans, ragged lists, fractions, huge values;
   object or text arrays in a ROI ``.npz``) give our error about the content, not numpy's text.
5. JSON a user may have edited by hand (a binary movie's sidecar, neurofinder regions, a trace
   sidecar) is read with or without a UTF-8 byte-order mark; other encodings get our error.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import signal
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_calcium as nc
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.errors import MetadataError, NapariCalciumError, RecordingError
from napari_calcium.io.binary import open_binary, save_binary
from napari_calcium.io.groundtruth import load_ground_truth
from napari_calcium.io.open import open_recording, sniff_format
from napari_calcium.io.roi_files import load_rois, save_rois
from napari_calcium.io.tiff import write_tiff_stack
from napari_calcium.io.trace_files import load_traces, save_traces
from napari_calcium.pipeline import load_results, run_pipeline

# named pipes and /dev nodes are POSIX matters
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX special files")

HANG_S = 5.0
BOM = b"\xef\xbb\xbf"


class Hung(BaseException):  # not an Exception: a loader's ``except Exception`` cannot eat it
    pass


@contextlib.contextmanager
def no_hang(seconds: float = HANG_S):
    """Fail (raise :class:`Hung`) if the block runs longer than ``seconds``.

    SIGALRM interrupts a blocking ``open`` of a named pipe; off the main thread (where signals
    are not delivered) the block runs unguarded. A time box already running (the suite's own
    per-case alarm) is put back afterwards with the time it had left.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum, frame):
        raise Hung(f"no result after {seconds} s: the loader blocked")

    old = signal.signal(signal.SIGALRM, ring)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer > 0:  # the outer time box goes on with what it had left
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 0.01))


def refused(fn, *args, **kwargs) -> RecordingError:
    """Call ``fn`` under :func:`no_hang`; it must raise our RecordingError: return it."""
    try:
        with no_hang():
            fn(*args, **kwargs)
    except RecordingError as exc:
        return exc
    except Hung as exc:
        pytest.fail(str(exc))
    pytest.fail(f"{fn.__name__} returned instead of raising RecordingError")


def fifo(path: Path) -> Path:
    """Replace ``path`` (if any) by a named pipe."""
    if path.exists():
        path.unlink()
    os.mkfifo(path)
    return path


def device_link(path: Path, device: str) -> Path:
    """Replace ``path`` (if any) by a symbolic link to a device node."""
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(device)
    return path


def assert_special(exc: RecordingError, path: Path, kind: str = "named pipe") -> None:
    assert exc.path == str(path), exc
    assert kind in exc.problem, exc


# ------------------------------------------------------------------------------ fixtures
def _rois() -> RoiSet:
    labels = np.zeros((12, 14), np.uint16)
    labels[2:5, 3:6] = 1
    labels[7:10, 8:12] = 2
    return RoiSet.from_label_image(labels)


def _traces():
    rng = np.random.default_rng(0)
    rois = _rois()
    movie = (100 + 10 * rng.standard_normal((40, 12, 14))).astype(np.float32)
    traces = nc.extract_traces(movie, rois, frame_rate_hz=10.0)
    return rois, traces


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A real pipeline results folder, made on a tiny synthetic movie (about 2 s)."""
    folder = tmp_path_factory.mktemp("loader_results")
    rec = nc.simulate_recording(n_frames=120, shape=(32, 32), n_neurons=3, seed=4)
    movie = write_tiff_stack(
        folder / "movie.tif", rec.movie, frame_rate_hz=rec.metadata["frame_rate_hz"]
    )
    run = run_pipeline(movie, folder / "out")
    assert load_results(run.out_dir).rois.n_rois > 0
    return run.out_dir


@pytest.fixture
def out(results, tmp_path) -> Path:
    """A private copy of the results folder, free to damage."""
    return Path(shutil.copytree(results, tmp_path / "out"))


def _npz_rewrite(path: Path, **changes) -> None:
    """Rewrite an .npz with some members replaced (None removes one); raw bytes allowed."""
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    for name, value in changes.items():
        key = f"{name}.npy"
        if value is None:
            members.pop(key, None)
        elif isinstance(value, bytes):
            members[key] = value
        else:
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=True)
            members[key] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for key, data in members.items():
            zf.writestr(key, data)


def damaged_header(data: bytes) -> bytes:
    """A .npy whose header dict is left unclosed: numpy's parser raises tokenize.TokenError."""
    hlen = int.from_bytes(data[8:10], "little")
    header = data[10 : 10 + hlen].replace(b")", b" ").replace(b"}", b" ")
    return data[:10] + header + data[10 + hlen :]


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


# ------------------------------------------------------------------ 1. special files
ROI_NAMES = [
    "rois.npz", "regions.json", "RoiSet.zip", "one.roi", "labels.npy", "stat.npy",
    "labels.tif", "masks.png", "img_seg.npy",
]  # fmt: skip


@pytest.mark.parametrize("name", ROI_NAMES)
def test_load_rois_refuses_a_named_pipe_of_every_format(tmp_path, name):
    path = fifo(tmp_path / name)
    exc = refused(load_rois, path, shape=(12, 14), allow_pickle=True)
    assert_special(exc, path)


@pytest.mark.parametrize("name", ["regions.json", "labels.npy", "rois.npz", "labels.tif"])
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_load_rois_refuses_a_device(tmp_path, name, device):
    path = device_link(tmp_path / name, device)
    assert_special(refused(load_rois, path, shape=(12, 14)), path, "character device")


@pytest.mark.parametrize("which", ["stat.npy", "ops.npy", "iscell.npy"])
def test_suite2p_folder_with_a_named_pipe(tmp_path, which):
    plane = tmp_path / "suite2p" / "plane0"
    plane.mkdir(parents=True)
    stat = _rois().to_suite2p_stat()
    np.save(plane / "stat.npy", np.array(stat, dtype=object), allow_pickle=True)
    np.save(plane / "ops.npy", np.array({"Ly": 12, "Lx": 14}, dtype=object), allow_pickle=True)
    np.save(plane / "iscell.npy", np.ones((len(stat), 2)))
    assert load_rois(tmp_path, allow_pickle=True).n_rois == 2
    path = fifo(plane / which)
    for where in (tmp_path, plane):
        assert_special(refused(load_rois, where, allow_pickle=True), path)


def test_load_traces_refuses_named_pipes(tmp_path):
    rois, traces = _traces()
    npz_set = save_traces(tmp_path / "a.npz", traces, rois=rois)
    csv_set = save_traces(tmp_path / "b.csv", traces, rois=rois)
    assert load_traces(npz_set[0])[0].n_rois == 2 and load_traces(csv_set[0])[0].n_rois == 2
    # the .npz itself, given directly and through its sidecar
    (tmp_path / "c").mkdir()
    for f in npz_set:
        shutil.copy(f, tmp_path / "c" / f.name)
    npz = fifo(tmp_path / "c" / "a.npz")
    assert_special(refused(load_traces, npz), npz)
    assert_special(refused(load_traces, npz.with_suffix(".json")), npz)
    # a sidecar beside a good .npz
    side = fifo(npz_set[1])
    assert_special(refused(load_traces, npz_set[0]), side)
    # every file of a CSV set, the sidecar included, read through any of them
    for k, f in enumerate(csv_set):
        folder = tmp_path / f"csv{k}"
        folder.mkdir()
        for g in csv_set:
            shutil.copy(g, folder / g.name)
        target = fifo(folder / f.name)
        for entry in (folder / csv_set[0].name, folder / csv_set[-1].name):
            if entry != target or entry.suffix == ".json":
                assert_special(refused(load_traces, entry), target)


RESULT_FILES = [
    "provenance.json", "rois.npz", "steps/deconvolve.npz", "steps/deconvolve.json",
    "events.npz", "summary_images.npz",
]  # fmt: skip


@pytest.mark.parametrize("name", RESULT_FILES)
def test_load_results_refuses_a_named_pipe(out, name):
    path = fifo(out / name)
    assert_special(refused(load_results, out), path)


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/null"])
def test_binary_sidecar_special_file(tmp_path, special):
    movie = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    bin_path = save_binary(tmp_path / "m.bin", movie)
    json_path = bin_path.with_suffix(".json")
    if special == "fifo":
        fifo(json_path)
        kind = "named pipe"
    else:
        device_link(json_path, special)
        kind = "character device"
    assert_special(refused(open_binary, bin_path), json_path, kind)
    with no_hang():
        assert sniff_format(bin_path) is None


def test_ground_truth_and_open_recording_refuse_named_pipes(tmp_path):
    path = fifo(tmp_path / "truth.npz")
    assert_special(refused(load_ground_truth, path), path)
    movie = fifo(tmp_path / "movie.tif")
    for fmt in (None, "tiff"):
        assert_special(refused(open_recording, movie, format=fmt), movie)


# ------------------------------------------------------------- 2. corrupt results folder
READ_MEMBER = {"events.npz": "counts.npy", "summary_images.npz": "mean.npy", "rois.npz": "data.npy"}


def _flip(path: Path, member: str) -> None:
    """Flip one bit in the middle of the stored bytes of ``member`` (one the loader reads)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    data = bytearray(path.read_bytes())
    name_len, extra_len = (int.from_bytes(data[info.header_offset + k : info.header_offset + k + 2],
                                          "little") for k in (26, 28))  # fmt: skip
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.compress_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["events.npz", "summary_images.npz", "rois.npz"])
@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_result_npz_is_named(out, name, damage):
    path = out / name
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "flip":
        _flip(path, READ_MEMBER[name])
    else:
        path.write_bytes(b"")
    exc = refused(load_results, out)
    assert exc.path == str(path), exc


@pytest.mark.parametrize(
    ("name", "member", "value", "words"),
    [
        ("events.npz", "counts", np.array([{"x": 1}], dtype=object), "pickled"),
        ("events.npz", "counts", np.array([1.5, 2.0, 0.5]), "not event counts"),
        ("events.npz", "counts", np.array([1000, 0, 0]), "damaged events file"),
        ("events.npz", "counts", np.array([-1, 1, 0]), "not event counts"),
        ("events.npz", "frames", np.array(["a", "b"]), "not frame indices"),
        ("events.npz", "counts", None, "no 'counts' array"),
        ("summary_images.npz", "mean", np.array([{"x": 1}], dtype=object), "pickled"),
        ("summary_images.npz", "mean", np.zeros(5), "not a 2-D image"),
        ("summary_images.npz", "max", np.array([["a"]]), "not a 2-D image"),
        ("rois.npz", "data", np.array([{"x": 1}], dtype=object), "pickled"),
        ("rois.npz", "data", np.array(["1.0"] * 3), "array 'data' is <U3"),
        ("rois.npz", "indices", np.array([0.5, 1.5]), "array 'indices' is float64"),
        ("rois.npz", "shape", np.array([2**40, 2**40]), "not a usable image size"),
        ("rois.npz", "shape", np.array([32]), "array 'shape'"),
        ("rois.npz", "ids", np.array(["a", "b", "c"]), "array 'ids'"),
        ("rois.npz", "is_cell", np.array(["False"] * 3), "array 'is_cell'"),
        ("rois.npz", "format", np.array(7), "array 'format'"),
    ],
)
def test_wrong_members_in_results_are_named(out, name, member, value, words):
    path = out / name
    _npz_rewrite(path, **{member: value})
    exc = refused(load_results, out)
    assert exc.path == str(path), exc
    assert words in exc.problem, exc


def test_traces_of_another_run_are_refused(out, results):
    rois = load_rois(out / "rois.npz")
    fewer = RoiSet(rois.masks[:-1], rois.shape, ids=rois.ids[:-1])
    save_rois(fewer, out / "rois.npz", overwrite=True)
    exc = refused(load_results, out)
    assert "different runs" in exc.problem and exc.path == str(out)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"steps": ["open", "rois"]}, "not completed"),
        ({"steps": {"open": "ran", "rois": 1, "extract": None}}, "not completed"),
        ({"movie": 42}, "no usable movie path"),
        ({"movie": None}, "no usable movie path"),
    ],
)
def test_provenance_of_the_wrong_shape(out, change, words):
    path = out / "provenance.json"
    record = json.loads(path.read_text())
    record.update(change)
    path.write_text(json.dumps(record))
    exc = refused(load_results, out)
    assert words in str(exc), exc
    assert exc.path in (str(out), str(path)), exc


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b'{"format": "napari-calcium-traces", ', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_damaged_trace_sidecar_in_results(out, text, words):
    path = out / "steps" / "deconvolve.json"
    path.write_bytes(text)
    exc = refused(load_results, out)
    assert exc.path == str(path) and words in exc.problem, exc


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"name": "deconvolve.npz"}, "'files' must list"),
        ([{"name": "../../../etc/passwd", "sha256": "0" * 64}], "plain file name"),
        ([{"name": "/etc/passwd", "sha256": "0" * 64}], "plain file name"),
        ([{"name": 7, "sha256": "0" * 64}], "'files' must list"),
        (["deconvolve.npz"], "'files' must list"),
    ],
)
def test_trace_sidecar_files_must_be_beside_it(out, files, words):
    path = out / "steps" / "deconvolve.json"
    sidecar = json.loads(path.read_text())
    sidecar["files"] = files
    path.write_text(json.dumps(sidecar))
    exc = refused(load_results, out)
    assert exc.path == str(path) and words in exc.problem, exc


# ------------------------------------------------------------ 3. damaged .npy headers
def test_damaged_npy_header_in_result_members(out):
    for name, member in (("events.npz", "counts"), ("summary_images.npz", "mean")):
        folder = out.parent / f"{name}-{member}"
        shutil.copytree(out, folder)
        path = folder / name
        with zipfile.ZipFile(path) as zf:
            raw = zf.read(f"{member}.npy")
        _npz_rewrite(path, **{member: damaged_header(raw)})
        exc = refused(load_results, folder)
        assert exc.path == str(path) and "damaged .npy header" in exc.problem, exc


def test_damaged_npy_header_in_roi_and_trace_files(tmp_path):
    rois, traces = _traces()
    # a label .npy
    lab = tmp_path / "labels.npy"
    lab.write_bytes(damaged_header(npy_bytes(rois.to_label_image())))
    exc = refused(load_rois, lab)
    assert exc.path == str(lab) and "damaged .npy header" in exc.problem, exc
    # a member of a ROI .npz
    roi_npz = save_rois(rois, tmp_path / "rois.npz")
    with zipfile.ZipFile(roi_npz) as zf:
        raw = zf.read("indices.npy")
    _npz_rewrite(roi_npz, indices=damaged_header(raw))
    exc = refused(load_rois, roi_npz)
    assert exc.path == str(roi_npz) and "damaged .npy header" in exc.problem, exc
    # a member of a traces .npz (read alone, without its sidecar)
    tr = save_traces(tmp_path / "t.npz", traces)[0]
    tr.with_suffix(".json").unlink()
    with zipfile.ZipFile(tr) as zf:
        raw = zf.read("F.npy")
    _npz_rewrite(tr, F=damaged_header(raw))
    exc = refused(load_traces, tr)
    assert exc.path == str(tr) and "damaged .npy header" in exc.problem, exc


@pytest.mark.parametrize("which", ["stat.npy", "ops.npy", "iscell.npy"])
def test_damaged_npy_header_in_suite2p_files(tmp_path, which):
    stat = _rois().to_suite2p_stat()
    files = {
        "stat.npy": npy_bytes(np.array(stat, dtype=object)),
        "ops.npy": npy_bytes(np.array({"Ly": 12, "Lx": 14}, dtype=object)),
        "iscell.npy": npy_bytes(np.ones((len(stat), 2))),
    }
    files[which] = damaged_header(files[which])
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    exc = refused(load_rois, tmp_path, allow_pickle=True)
    assert exc.path == str(tmp_path / which), exc
    assert "damaged .npy header" in exc.problem, exc


def test_npy_header_that_lies_about_its_size(tmp_path):
    labels = _rois().to_label_image()
    data = npy_bytes(labels)
    bigger = data.replace(b"(12, 14)", b"(99, 14)")  # same length: a bit-flip-like change
    assert bigger != data
    (tmp_path / "labels.npy").write_bytes(bigger)
    exc = refused(load_rois, tmp_path / "labels.npy")
    assert "truncated or damaged" in exc.problem, exc
    smaller = data.replace(b"(12, 14)", b"(11, 14)")
    (tmp_path / "labels.npy").write_bytes(smaller)
    exc = refused(load_rois, tmp_path / "labels.npy")
    assert "truncated or damaged" in exc.problem, exc


# ----------------------------------------------------------- 4. non-numeric coordinates
@pytest.mark.parametrize(
    "coordinates",
    [
        [["a", "b"]], [[None, None]], [[1, None]], [[[1, 2], [3]]], [[1.5, 2.5]],
        [[10**30, 1]], [[2**62, 1]], [[True, False]], [[{}, 1]], "xy", [[float("nan"), 1]],
        [[1e300, 1]], [[[1, 2]]],
    ],
)  # fmt: skip
def test_non_numeric_neurofinder_coordinates(tmp_path, coordinates):
    path = tmp_path / "regions.json"
    path.write_text(json.dumps([{"id": 1, "coordinates": [[1, 2]]}, {"coordinates": coordinates}]))
    exc = refused(load_rois, path, shape=(12, 14))
    assert exc.path == str(path), exc
    assert "region 1" in exc.problem, exc
    assert "ufunc" not in exc.problem and "inhomogeneous" not in exc.problem, exc


@pytest.mark.parametrize("rid", ["seven", None, [1], {"a": 1}, True])
def test_non_numeric_neurofinder_id(tmp_path, rid):
    path = tmp_path / "regions.json"
    path.write_text(json.dumps([{"id": rid, "coordinates": [[1, 2]]}]))
    exc = refused(load_rois, path, shape=(12, 14))
    assert "id must be a number" in exc.problem, exc


def test_integral_float_coordinates_still_read(tmp_path):
    path = tmp_path / "regions.json"
    path.write_text(json.dumps([{"id": 3, "coordinates": [[1.0, 2.0], [1, 3]]}]))
    rois = load_rois(path, shape=(12, 14))
    assert rois.n_rois == 1 and rois.area.tolist() == [2]


@pytest.mark.parametrize(
    "ypix", [np.array(["1", "2"]), np.array([None, 1], dtype=object), [1.5, 2.0], ["a"]]
)
def test_non_numeric_suite2p_pixels(tmp_path, ypix):
    stat = [{"ypix": ypix, "xpix": np.array([1, 2]), "lam": np.ones(2, np.float32)}]
    np.save(tmp_path / "stat.npy", np.array(stat, dtype=object), allow_pickle=True)
    exc = refused(load_rois, tmp_path / "stat.npy", shape=(12, 14), allow_pickle=True)
    assert exc.path == str(tmp_path / "stat.npy") and "ypix" in exc.problem, exc
    assert "ufunc" not in exc.problem, exc


def test_non_numeric_suite2p_weights_and_image_size(tmp_path):
    stat = [{"ypix": np.array([1, 2]), "xpix": np.array([1, 2]), "lam": np.array(["a", "b"])}]
    np.save(tmp_path / "stat.npy", np.array(stat, dtype=object), allow_pickle=True)
    exc = refused(load_rois, tmp_path / "stat.npy", shape=(12, 14), allow_pickle=True)
    assert "lam must be numbers" in exc.problem, exc
    stat[0]["lam"] = np.ones(2, np.float32)
    np.save(tmp_path / "stat.npy", np.array(stat, dtype=object), allow_pickle=True)
    for size in (
        {"Ly": "12", "Lx": 14},
        {"Ly": float("nan"), "Lx": 14},
        {"Ly": 2**40, "Lx": 2**40},
    ):
        np.save(tmp_path / "ops.npy", np.array(size, dtype=object), allow_pickle=True)
        exc = refused(load_rois, tmp_path / "stat.npy", allow_pickle=True)
        assert exc.path == str(tmp_path / "ops.npy") and "not a usable image size" in exc.problem


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("data", np.array(["a", "b"])),
        ("indices", np.array([{"x": 1}], dtype=object)),
        ("score_names", np.array([1, 2])),
        ("pixel_size_um", np.array(["1", "1"])),
    ],
)
def test_roi_npz_with_object_or_text_arrays(tmp_path, member, value):
    path = save_rois(_rois(), tmp_path / "rois.npz")
    _npz_rewrite(path, **{member: value})
    exc = refused(load_rois, path)
    assert exc.path == str(path) and repr(member) in exc.problem, exc
    assert "ufunc" not in exc.problem, exc


@pytest.mark.parametrize("labels", [np.array([[1e30, 0]]), np.array([[2**63, 0]], np.uint64)])
def test_label_image_with_absurd_labels(tmp_path, labels):
    np.save(tmp_path / "labels.npy", labels)
    exc = refused(load_rois, tmp_path / "labels.npy")
    assert "not a usable ROI id" in exc.problem, exc


# ---------------------------------------------------------------------- 5. JSON encodings
def test_binary_sidecar_with_a_byte_order_mark(tmp_path):
    movie = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    bin_path = save_binary(tmp_path / "m.bin", movie, frame_rate_hz=5.0)
    json_path = bin_path.with_suffix(".json")
    json_path.write_bytes(BOM + json_path.read_bytes())
    rec = open_binary(bin_path)
    assert rec.metadata.frame_period_s == pytest.approx(0.2)
    np.testing.assert_array_equal(rec.movie.compute(), movie)
    assert sniff_format(bin_path) == sniff_format(tmp_path) == "binary"
    assert open_recording(json_path).movie.shape == movie.shape
    json_path.write_bytes(
        json.dumps({"frames": 2, "y": 3, "x": 4, "dtype": "é"}, ensure_ascii=False).encode(
            "latin-1"
        )
    )
    with pytest.raises(MetadataError, match="not UTF-8 text") as info:
        open_binary(bin_path)
    assert info.value.path == str(json_path)


def test_neurofinder_json_with_a_byte_order_mark(tmp_path):
    rois = _rois()
    path = save_rois(rois, tmp_path / "regions.json")
    path.write_bytes(BOM + path.read_bytes())
    back = load_rois(path, shape=rois.shape)
    np.testing.assert_array_equal(back.to_label_image(), rois.to_label_image())
    path.write_bytes('[{"id": 1, "coordinates": [[1, 2]], "name": "ü"}]'.encode("cp1252"))
    exc = refused(load_rois, path, shape=rois.shape)
    assert exc.path == str(path) and "not UTF-8 text" in exc.problem, exc


@pytest.mark.parametrize("fmt", ["npz", "csv"])
def test_trace_sidecar_with_a_byte_order_mark(tmp_path, fmt):
    rois, traces = _traces()
    files = save_traces(tmp_path / f"t.{fmt}", traces, rois=rois)
    side = files[-1]
    side.write_bytes(BOM + side.read_bytes())
    back, _, sidecar = load_traces(side)
    np.testing.assert_array_equal(back.F, traces.F)
    assert sidecar["format"] == "napari-calcium-traces"
    back, _, _ = load_traces(files[0])
    np.testing.assert_array_equal(back.corrected, traces.corrected)


def test_loader_errors_are_ours_and_pickle_the_same(tmp_path):
    """The errors above are plain RecordingErrors: they pickle (dask, multiprocessing)."""
    path = fifo(tmp_path / "rois.npz")
    exc = refused(load_rois, path)
    assert isinstance(exc, NapariCalciumError)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)


def test_label_tiff_through_a_link_still_reads(tmp_path):
    """Only special files are refused: a link to a regular file reads as before."""
    labels = _rois().to_label_image()
    tifffile.imwrite(tmp_path / "real.tif", labels)
    (tmp_path / "link.tif").symlink_to(tmp_path / "real.tif")
    assert load_rois(tmp_path / "link.tif").n_rois == 2

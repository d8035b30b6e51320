"""Writers never lose data: unique convert outputs, stale partials cleaned, special files kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

import napari_calcium as nc
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.traces.extraction import TraceSet
from napari_calcium.errors import OutputExistsError, RecordingError
from napari_calcium.io._atomic import atomic_output
from napari_calcium.io.binary import save_binary
from napari_calcium.io.roi_files import save_rois
from napari_calcium.io.tiff import save_images
from napari_calcium.io.trace_files import save_traces

# named pipes, flock and SIGKILL leftovers are POSIX matters
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file semantics")


def _movie(n=6, shape=(8, 10), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, (n, *shape), dtype=np.uint16)


def _two_channel_ome(path, names) -> np.ndarray:
    data = np.stack([_movie(seed=1), _movie(seed=2)], axis=1)  # T C Y X
    tifffile.imwrite(
        path, data, ome=True, metadata={"axes": "TCYX", "Channel": {"Name": list(names)}}
    )
    return data


def _traces() -> TraceSet:
    f = np.random.default_rng(3).normal(100, 5, (3, 40)).astype(np.float32)
    return TraceSet(
        F=f, Fneu=None, corrected=f.copy(), coefficients=np.zeros(3, np.float32),
        ids=np.arange(1, 4), frame_rate_hz=10.0,
    )  # fmt: skip


def _rois() -> RoiSet:
    labels = np.zeros((12, 14), np.int32)
    labels[2:5, 3:7] = 1
    labels[7:10, 8:12] = 2
    return RoiSet.from_label_image(labels)


# ------------------------------------------------------------------- 1. convert output names
@pytest.mark.parametrize(
    "names",
    [("Kanal-α", "Kanal-β"), ("GCaMP 6s", "GCaMP/6s"), ("α", "β"), ("Ch1", "ch1")],
    ids=["non-ascii", "dropped-characters", "empty-after-sanitising", "case-only"],
)
@pytest.mark.parametrize("to", ["tiff", "binary"])
def test_convert_keeps_every_channel_when_names_collide(tmp_path, names, to):
    src = tmp_path / "rec.ome.tif"
    data = _two_channel_ome(src, names)
    assert list(nc.open_recording(src).channels) == list(names)
    out = tmp_path / "out"
    written = nc.convert_recording(src, out, to=to)
    assert len(written) == 2 and len({p.name.casefold() for p in written}) == 2
    for c, path in enumerate(written):
        np.testing.assert_array_equal(nc.open_recording(path).movie.compute(), data[:, c])
    again = nc.convert_recording(src, out, to=to, overwrite=True)  # stable names, still both
    assert again == written
    for c, path in enumerate(again):
        np.testing.assert_array_equal(nc.open_recording(path).movie.compute(), data[:, c])


def test_convert_names_keep_distinct_channel_names(tmp_path):
    src = tmp_path / "rec.ome.tif"
    _two_channel_ome(src, ("GCaMP", "tdT"))
    written = nc.convert_recording(src, tmp_path / "out")
    assert [p.name for p in written] == ["rec.ome_GCaMP.tif", "rec.ome_tdT.tif"]


def test_convert_refuses_a_remaining_name_clash_before_writing(tmp_path):
    # "β" falls back to its index, "ch1"; a channel really named "ch1" cannot be told apart
    src = tmp_path / "rec.ome.tif"
    _two_channel_ome(src, ("ch1", "β"))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(nc.errors.ParameterError, match="ch1"):
        nc.convert_recording(src, out)
    assert list(out.iterdir()) == []


# ------------------------------------------------------------ 2. stale partials after SIGKILL
def _stale_partial(target, tag="abcd1234", age_s=3600.0):
    partial = target.parent / f".{target.name}.{tag}.partial"
    partial.write_bytes(b"\0" * 4096)
    old = time.time() - age_s
    os.utime(partial, (old, old))
    return partial


def _partials(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_save_binary_removes_stale_partials_of_its_outputs(tmp_path):
    target = tmp_path / "movie.bin"
    stale = [_stale_partial(target), _stale_partial(tmp_path / "movie.json", "x_y9z0k1")]
    other = _stale_partial(tmp_path / "other.bin")  # not an output of this call: kept
    movie = _movie()
    save_binary(target, movie)
    assert not any(p.exists() for p in stale) and other.exists()
    assert _partials(tmp_path) == [other.name]
    np.testing.assert_array_equal(nc.open_recording(target).movie.compute(), movie)


def test_save_images_removes_stale_partials_of_its_outputs(tmp_path):
    target = tmp_path / "movie.tif"
    stale = [_stale_partial(target), _stale_partial(tmp_path / "movie_00003.tif")]
    movie = _movie()
    save_images(target, movie)
    assert not any(p.exists() for p in stale) and _partials(tmp_path) == []
    np.testing.assert_array_equal(tifffile.imread(target), movie)


def test_convert_removes_stale_partials_of_its_outputs(tmp_path):
    src = tmp_path / "rec.ome.tif"
    data = _two_channel_ome(src, ("GCaMP", "tdT"))
    out = tmp_path / "out"
    out.mkdir()
    stale = _stale_partial(out / "rec.ome_tdT.tif")
    written = nc.convert_recording(src, out)
    assert not stale.exists() and _partials(out) == []
    np.testing.assert_array_equal(tifffile.imread(written[1]), data[:, 1])


def test_a_partial_being_written_is_kept(tmp_path):
    target = tmp_path / "movie.bin"
    with atomic_output(target, overwrite=True) as live:
        os.utime(live, (0, 0))  # old mtime: only its lock says it is alive
        save_binary(target, _movie(), overwrite=True)  # another writer of the same target
        assert live.exists()
        live.write_bytes(b"mine")
    assert target.read_bytes() == b"mine" and _partials(tmp_path) == []


_HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_partial_locked_by_another_process_is_kept(tmp_path):
    target = tmp_path / "movie.tif"
    live = _stale_partial(target)
    with subprocess.Popen(  # a live writer in another process: holds the lock, as atomic_output
        [sys.executable, "-c", _HOLD_LOCK, str(live)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as writer:  # fmt: skip
        try:
            assert writer.stdout.readline() == "locked\n"
            save_images(target, _movie())
            assert live.exists()
        finally:
            writer.stdin.close()  # the writer ends
            writer.wait(timeout=30)
    save_images(target, _movie(), overwrite=True)  # its writer is gone: now it is stale
    assert not live.exists()


# -------------------------------------------------------------- 3. special files at the target
def _writers():
    movie, traces, rois = _movie(), _traces(), _rois()
    return {
        "save_binary": ("movie.bin", lambda p, ow: save_binary(p, movie, overwrite=ow)),
        "save_images": ("movie.tif", lambda p, ow: save_images(p, movie, overwrite=ow)),
        "save_traces": ("traces.npz", lambda p, ow: save_traces(p, traces, overwrite=ow)),
        "save_rois": ("rois.npz", lambda p, ow: save_rois(rois, p, overwrite=ow)),
    }


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("how", ["fifo", "symlink-to-fifo", "folder"])
@pytest.mark.parametrize("writer", sorted(_writers()))
def test_writers_refuse_to_replace_a_special_file(tmp_path, writer, how, overwrite):
    name, write = _writers()[writer]
    target = tmp_path / name
    if how == "folder":
        target.mkdir()
        special = target
    else:
        special = tmp_path / "pipe"
        os.mkfifo(special)
        if how == "fifo":
            special = target
            os.replace(tmp_path / "pipe", target)
        else:
            target.symlink_to(special)
    with pytest.raises(RecordingError, match="not a regular file") as err:
        write(target, overwrite)
    assert str(target) in str(err.value)
    assert not isinstance(err.value, OutputExistsError)
    if how == "folder":
        assert target.is_dir()
    else:
        assert special.is_fifo() and (how == "fifo" or target.is_symlink())
    assert _partials(tmp_path) == []


@pytest.mark.parametrize("writer", sorted(_writers()))
def test_writers_still_overwrite_a_regular_file(tmp_path, writer):
    name, write = _writers()[writer]
    target = tmp_path / name
    write(target, False)
    with pytest.raises(OutputExistsError):
        write(target, False)
    write(target, True)
    assert target.is_file() and _partials(tmp_path) == []


def test_atomic_output_refuses_a_fifo_that_appears_while_writing(tmp_path):
    target = tmp_path / "out.npz"
    with (
        pytest.raises(RecordingError, match="not a regular file"),
        atomic_output(target, overwrite=True) as tmp,
    ):
        tmp.write_bytes(b"data")
        os.mkfifo(target)
    assert target.is_fifo() and _partials(tmp_path) == []

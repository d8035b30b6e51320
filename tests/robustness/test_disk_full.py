"""Writes that run out of room: a full disk, a used-up quota, a file-size limit (issue 15).

Every writer turns ``ENOSPC``, ``EDQUOT`` and ``EFBIG`` into our
:class:`~napari_calcium.errors.RecordingError` naming the output the user asked for (never the
temporary file) and saying the disk is full, leaves no partial or temporary file behind and never
damages an existing output. The faults are real where the kernel can make them: a child process
with a low ``RLIMIT_FSIZE`` (SIGXFSZ ignored, so a write past it fails with ``EFBIG``), and, where
user namespaces allow it, a tiny tmpfs that fills up (``ENOSPC``). ``ENOSPC`` is also injected in
process, by a file object whose writes fail once a few bytes are in. Children run under a 4 GiB
address-space limit and a timeout.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pipeline_cases import assert_same_results, write_movie

import napari_calcium as nc
from napari_calcium.errors import RecordingError
from napari_calcium.io._atomic import atomic_output
from napari_calcium.pipeline import run_pipeline
from napari_calcium.pipeline.provenance import read_provenance

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")

LIMIT_AS = 4 * 2**30
FSIZE = 64 * 1024  # every output below is larger than this

# ----------------------------------------------------------------------------- the child runner
CHILD = textwrap.dedent(
    """
    import contextlib, hashlib, json, os, resource, signal, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, ({limit_as}, {limit_as}))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE gets EFBIG
    import numpy as np
    import napari_calcium as nc
    from napari_calcium.core.rois.roiset import RoiSet
    from napari_calcium.core.traces.extraction import TraceSet
    from napari_calcium.io.tiff import write_tiff_stack

    out = Path({out!r})
    rng = np.random.default_rng(0)
    movie = rng.integers(0, 4000, (20, 64, 64), dtype=np.uint16)  # 160 KiB

    def traces():
        f = rng.normal(100, 5, (40, 1000)).astype(np.float32)
        return TraceSet(F=f, Fneu=None, corrected=f.copy(), coefficients=np.zeros(40, np.float32),
                        ids=np.arange(1, 41), frame_rate_hz=10.0)

    def rois():
        labels = np.zeros((256, 256), np.int32)
        for k in range(64):
            y, x = divmod(k, 8)
            labels[32 * y + 2 : 32 * y + 30, 32 * x + 2 : 32 * x + 30] = k + 1
        return RoiSet.from_label_image(labels)

    def snapshot():
        files = {{}}
        for p in sorted(out.rglob("*")):
            rel = str(p.relative_to(out))
            files[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        return files

    @contextlib.contextmanager
    def full_disk():
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, hard) if {fsize} else (soft, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    def attempt(call):
        try:
            with full_disk():
                call()
            return {{"outcome": "returned"}}
        except Exception as exc:
            return {{"outcome": type(exc).__module__ + "." + type(exc).__name__,
                    "message": str(exc), "errno": getattr(exc, "errno", None),
                    "path": str(getattr(exc, "path", ""))}}

    {body}

    before = snapshot()
    result = {{"new": attempt(lambda: write("new", False)),
              "overwrite": attempt(lambda: write("old", True))}}
    result["before"], result["after"] = before, snapshot()
    print(json.dumps(result))
    """
)


def _child(
    body: str, out: Path, *, prefix: tuple[str, ...] = (), fsize: int | None = FSIZE
) -> dict:
    """Run ``body`` (defining ``write(stem, overwrite)``) in a child, writes under the limit."""
    code = CHILD.format(limit_as=LIMIT_AS, out=str(out), fsize=fsize or 0, body=body)
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", code],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_disk_full(outcome: dict, path: Path, code: int | None = None) -> None:
    assert outcome["outcome"] == "napari_calcium.errors.RecordingError", outcome
    assert outcome["path"] == str(path), outcome
    assert "disk full" in outcome["message"] or "disk is full" in outcome["message"], outcome
    assert ".partial" not in outcome["message"], outcome
    if code is not None:
        assert outcome["errno"] == code, outcome


# the writers: each defines write(stem, overwrite) into `out`, and is called once unlimited
# first to make the "old" output that the limited overwrite must leave intact
WRITERS = {
    "save_images": ("nc.save_images(out / f'{stem}.tif', movie, overwrite=overwrite)", "{}.tif"),
    "write_tiff_stack": (
        "write_tiff_stack(out / f'{stem}.tif', movie, frame_rate_hz=5.0, overwrite=overwrite)",
        "{}.tif",
    ),
    "save_binary": ("nc.save_binary(out / f'{stem}.bin', movie, overwrite=overwrite)", "{}.bin"),
    "save_traces_npz": (
        "nc.save_traces(out / f'{stem}.npz', traces(), overwrite=overwrite)",
        "{}.npz",
    ),
    "save_traces_csv": (
        "nc.save_traces(out / f'{stem}.csv', traces(), overwrite=overwrite)",
        None,
    ),
    "save_rois": (
        "nc.save_rois(rois(), out / f'{stem}.json', overwrite=overwrite)",
        "{}.json",
    ),
    "write_prairieview": (
        "nc.write_prairieview(out / stem, rng.integers(0, 4000, (3, 200, 200), np.uint16), "
        "frame_rate_hz=5.0, overwrite=overwrite)",
        "{}",
    ),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_file_size_limit_gives_our_error_and_keeps_old_outputs(tmp_path, writer):
    call, name = WRITERS[writer]
    body = f"def write(stem, overwrite):\n    {call}\n\nwrite('old', False)\n"
    result = _child(body, tmp_path)
    for case, stem in (("new", "new"), ("overwrite", "old")):
        outcome = result[case]
        if name is None:  # a set of files: the error names one of them
            assert outcome["outcome"] == "napari_calcium.errors.RecordingError", outcome
            assert Path(outcome["path"]).name.startswith(stem), outcome
            assert "disk full" in outcome["message"], outcome
            assert outcome["errno"] == errno.EFBIG
        else:
            _assert_disk_full(outcome, tmp_path / name.format(stem), errno.EFBIG)
    assert result["after"] == result["before"]  # nothing new, the old output unchanged
    assert not any(".partial" in p or ".old" in p for p in result["after"])


def test_save_nwb_under_a_file_size_limit(tmp_path):
    pytest.importorskip("pynwb")
    body = textwrap.dedent(
        """
        import datetime as dt
        from napari_calcium.io._nwb import save_nwb
        def write(stem, overwrite):
            t = traces()
            labels = np.zeros((64, 64), np.int32)
            for k in range(40):
                y, x = divmod(k, 8)
                labels[8 * y + 1 : 8 * y + 6, 8 * x + 1 : 8 * x + 6] = k + 1
            save_nwb(out / f"{stem}.nwb", t, rois=RoiSet.from_label_image(labels),
                     session_description="s", identifier="i",
                     session_start_time=dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc),
                     subject={"subject_id": "m", "species": "Mus musculus"},
                     device={"name": "2p", "description": "d", "manufacturer": "m"},
                     imaging_plane={"indicator": "GCaMP6s", "location": "V1",
                                    "excitation_lambda": 920.0, "emission_lambda": 510.0},
                     overwrite=overwrite)
        write("old", False)
        """
    )
    result = _child(body, tmp_path)
    _assert_disk_full(result["new"], tmp_path / "new.nwb")
    _assert_disk_full(result["overwrite"], tmp_path / "old.nwb")
    assert result["after"] == result["before"]


def _two_channel_source(path: Path, fill: int | None = None) -> None:
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(5).integers(0, 4000, (20, 2, 64, 64)).astype(np.uint16)
    if fill is not None:
        data[:] = fill
    tifffile.imwrite(
        path, data, ome=True, metadata={"axes": "TCYX", "Channel": {"Name": ["g", "r"]}}
    )


@pytest.mark.parametrize("to", ["tiff", "binary"])
def test_convert_under_a_file_size_limit(tmp_path, to):
    _two_channel_source(tmp_path / "src" / "rec.tif")
    _two_channel_source(tmp_path / "src_old" / "rec.tif", fill=7)
    nc.convert_recording(tmp_path / "src_old" / "rec.tif", tmp_path / "old", to=to)
    body = (
        "def write(stem, overwrite):\n"
        f"    nc.convert_recording(out / 'src' / 'rec.tif', out / stem, to={to!r}, "
        "overwrite=overwrite)\n"
    )
    result = _child(body, tmp_path)
    suffix = ".tif" if to == "tiff" else ".bin"
    _assert_disk_full(result["new"], tmp_path / "new" / f"rec_g{suffix}", errno.EFBIG)
    _assert_disk_full(result["overwrite"], tmp_path / "old" / f"rec_g{suffix}", errno.EFBIG)
    after = {k: v for k, v in result["after"].items() if k != "new"}
    assert after == result["before"]  # nothing new but the empty folder; old outputs intact
    assert not any(".partial" in p or ".old" in p for p in result["after"])


@pytest.mark.parametrize("to", ["tiff", "binary"])
def test_convert_that_fails_on_its_second_channel_puts_earlier_outputs_back(
    tmp_path, disk_fills, to
):
    """The first channel's output was already replaced when the second's write fails."""
    _two_channel_source(tmp_path / "src" / "rec.tif")
    _two_channel_source(tmp_path / "src_old" / "rec.tif", fill=7)
    out = tmp_path / "out"
    nc.convert_recording(tmp_path / "src_old" / "rec.tif", out, to=to)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    disk_fills("rec_r.tif" if to == "tiff" else "rec_r.json")  # .bin goes through fileno()
    with pytest.raises(RecordingError, match="disk is full") as info:
        nc.convert_recording(tmp_path / "src" / "rec.tif", out, to=to, overwrite=True)
    assert Path(info.value.path).parent == out and "rec_r" in Path(info.value.path).name
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ------------------------------------------------------------------- atomic_output, injected
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
@pytest.mark.parametrize("existing", [False, True])
def test_atomic_output_turns_running_out_of_room_into_our_error(tmp_path, code, existing):
    target = tmp_path / "out.bin"
    if existing:
        target.write_bytes(b"earlier output")
    with pytest.raises(RecordingError) as info, atomic_output(target, overwrite=True) as tmp:
        tmp.write_bytes(b"x" * 1000)
        raise OSError(code, os.strerror(code))
    err = info.value
    assert err.path == str(target) and err.errno == code
    assert "disk" in str(err) and "full" in str(err)
    assert "1000 bytes had been written" in str(err)
    assert ("existing file is unchanged" in str(err)) == existing
    assert isinstance(err.__cause__, OSError) and err.__cause__.errno == code
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.bin"] if existing else [])
    if existing:
        assert target.read_bytes() == b"earlier output"


def test_atomic_output_says_how_much_the_output_needs(tmp_path):
    with (
        pytest.raises(RecordingError, match=r"needs about 5000000 bytes \(4\.8 MiB\)"),
        atomic_output(tmp_path / "x.bin", needed_bytes=5_000_000),
    ):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_writers_own_wrapping_is_renamed_to_the_output(tmp_path):
    """A writer that wrapped ENOSPC in a RecordingError naming its temporary file."""
    target = tmp_path / "out.tif"
    with pytest.raises(RecordingError) as info, atomic_output(target) as tmp:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
        except OSError as exc:
            raise RecordingError(tmp, f"cannot write ({exc.strerror})") from exc
    assert info.value.path == str(target) and "disk is full" in str(info.value)


def test_other_os_errors_pass_unchanged(tmp_path):
    with pytest.raises(PermissionError), atomic_output(tmp_path / "x.bin"):
        raise PermissionError(errno.EACCES, "Permission denied")
    assert list(tmp_path.iterdir()) == []


def test_no_room_for_even_the_temporary_file(tmp_path, monkeypatch):
    import tempfile

    def full(*args, **kwargs):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(tempfile, "mkstemp", full)
    with pytest.raises(RecordingError, match="quota") as info, atomic_output(tmp_path / "x.bin"):
        pass
    assert info.value.path == str(tmp_path / "x.bin") and info.value.errno == errno.EDQUOT


# --------------------------------------------------------------- ENOSPC injected into writers
class _FullWriter(io.BufferedWriter):
    """A file whose writes fail with ENOSPC once ``room`` bytes are in."""

    room = 16

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


@pytest.fixture
def disk_fills(monkeypatch):
    """Make writes to our temporary files whose name holds ``which`` fail with ENOSPC."""
    real_open = builtins.open

    def install(which: str = ""):
        def fake_open(file, mode="r", *args, **kwargs):
            name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else ""
            ours = isinstance(name, str) and name.endswith(".partial") and which in name
            if ours and any(m in mode for m in "wa+"):
                raw = io.FileIO(name, mode.replace("b", "").replace("t", ""))
                buffered = _FullWriter(raw)
                if "b" in mode:
                    return buffered
                return io.TextIOWrapper(buffered, encoding=kwargs.get("encoding"),
                                        newline=kwargs.get("newline"))  # fmt: skip
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)

    return install


def _traces():
    from napari_calcium.core.traces.extraction import TraceSet

    f = np.random.default_rng(3).normal(100, 5, (3, 400)).astype(np.float32)
    return TraceSet(
        F=f, Fneu=None, corrected=f.copy(), coefficients=np.zeros(3, np.float32),
        ids=np.arange(1, 4), frame_rate_hz=10.0,
    )  # fmt: skip


def _rois():
    labels = np.zeros((12, 14), np.int32)
    labels[2:5, 3:7] = 1
    labels[7:10, 8:12] = 2
    return nc.RoiSet.from_label_image(labels)


INJECTED = {
    "save_images": (lambda p: nc.save_images(p, np.ones((4, 16, 16), np.uint16)), "m.tif"),
    "save_traces": (lambda p: nc.save_traces(p, _traces()), "t.npz"),
    "save_rois": (lambda p: nc.save_rois(_rois(), p), "r.npz"),
    "save_rois_json": (lambda p: nc.save_rois(_rois(), p), "r.json"),
}


@pytest.mark.parametrize("writer", list(INJECTED))
def test_enospc_in_a_writer_names_the_output(tmp_path, disk_fills, writer):
    call, name = INJECTED[writer]
    old = tmp_path / "old"
    old.mkdir()
    call(old / name)
    before = {p: p.read_bytes() for p in old.iterdir()}
    disk_fills()
    with pytest.raises(RecordingError) as info:
        call(tmp_path / name)
    assert info.value.path == str(tmp_path / name) and info.value.errno == errno.ENOSPC
    assert "disk is full" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    overwrite_call = {
        "save_images": lambda p: nc.save_images(p, np.ones((4, 16, 16), np.uint16), overwrite=True),
        "save_traces": lambda p: nc.save_traces(p, _traces(), overwrite=True),
        "save_rois": lambda p: nc.save_rois(_rois(), p, overwrite=True),
        "save_rois_json": lambda p: nc.save_rois(_rois(), p, overwrite=True),
    }[writer]
    with pytest.raises(RecordingError, match="existing file is unchanged"):
        overwrite_call(old / name)
    assert {p: p.read_bytes() for p in old.iterdir()} == before


def test_enospc_in_write_prairieview_names_the_folder(tmp_path, monkeypatch):
    import tifffile

    from napari_calcium.io.bruker import write as bw

    real_imwrite = tifffile.imwrite

    def full(path, *args, **kwargs):
        if str(path).endswith("_000002.ome.tif"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_imwrite(path, *args, **kwargs)

    monkeypatch.setattr(bw.tifffile, "imwrite", full)
    target = tmp_path / "TSeries-1"
    with pytest.raises(RecordingError) as info:
        nc.write_prairieview(target, np.ones((3, 8, 8), np.uint16), frame_rate_hz=5.0)
    assert info.value.path == str(target) and info.value.errno == errno.ENOSPC
    assert "disk is full" in str(info.value) and "needs about" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_puts_the_older_prairieview_folder_back(tmp_path, monkeypatch):
    from napari_calcium.io.bruker import write as bw

    target = tmp_path / "TSeries-1"
    nc.write_prairieview(target, np.ones((3, 8, 8), np.uint16), frame_rate_hz=5.0)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    real_replace = os.replace

    def failing(src, dst):
        if Path(src).name.endswith(".partial"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(bw.os, "replace", failing)
    with pytest.raises(RecordingError, match="disk is full"):
        nc.write_prairieview(
            target, np.zeros((3, 8, 8), np.uint16), frame_rate_hz=5.0, overwrite=True
        )
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TSeries-1"]


# ------------------------------------------------------------------------------ the pipeline
@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    return write_movie(tmp_path_factory.mktemp("disk_full_recording"))


@pytest.fixture(scope="module")
def clean_run(movie, tmp_path_factory):
    return run_pipeline(movie, tmp_path_factory.mktemp("disk_full_clean") / "out")


def _no_partials(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".partial")]


def test_pipeline_step_output_hits_enospc_then_resumes(movie, clean_run, tmp_path, disk_fills):
    out = tmp_path / "out"
    disk_fills("summary_images.npz")
    with pytest.raises(RecordingError) as info:
        run_pipeline(movie, out)
    assert info.value.path == str(out / "summary_images.npz")
    assert "disk is full" in str(info.value)
    steps = read_provenance(out)["steps"]
    assert steps["open"]["status"] == "ran"
    assert steps["summary"]["status"] == "failed" and steps["summary"]["key"] is None
    assert "disk is full" in steps["summary"]["error"]
    assert "rois" not in steps and not (out / "summary_images.npz").exists()
    _no_partials(out)
    disk_fills("no file has this name")  # the fault is over: writes work again
    run = run_pipeline(movie, out)
    statuses = {s.name: s.status for s in run.steps}
    assert statuses["open"] == "skipped" and statuses["summary"] == "ran"
    recorded = read_provenance(out)["steps"].values()
    assert all(s["status"] in ("ran", "skipped", "disabled") for s in recorded)
    assert_same_results(out, clean_run.out_dir)
    _no_partials(out)


def test_pipeline_under_a_file_size_limit_then_resumes(movie, clean_run, tmp_path):
    out = tmp_path / "out"
    code = textwrap.dedent(
        f"""
        import json, resource, signal
        resource.setrlimit(resource.RLIMIT_AS, ({LIMIT_AS}, {LIMIT_AS}))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from napari_calcium.pipeline import run_pipeline
        resource.setrlimit(resource.RLIMIT_FSIZE, ({FSIZE}, resource.RLIM_INFINITY))
        try:
            run_pipeline({str(movie)!r}, {str(out)!r})
            print(json.dumps({{"outcome": "returned"}}))
        except Exception as exc:
            print(json.dumps({{"outcome": type(exc).__name__, "message": str(exc),
                              "path": str(getattr(exc, "path", "")),
                              "errno": getattr(exc, "errno", None)}}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome["outcome"] == "RecordingError", outcome
    assert outcome["errno"] == errno.EFBIG and "disk full" in outcome["message"], outcome
    failed = Path(outcome["path"])
    assert failed.parent == out and not failed.exists(), outcome
    steps = read_provenance(out)["steps"]
    bad = [name for name, s in steps.items() if s["status"] not in ("ran", "disabled")]
    assert len(bad) == 1 and steps[bad[0]]["status"] == "failed", steps
    _no_partials(out)
    run = run_pipeline(movie, out)
    assert {s.name: s.status for s in run.steps}[bad[0]] == "ran"
    assert_same_results(out, clean_run.out_dir)
    _no_partials(out)


def test_provenance_that_cannot_record_a_failure_keeps_the_steps_error(
    movie, tmp_path, monkeypatch
):
    """The disk is full for the step's output and for provenance.json alike."""
    from napari_calcium.pipeline import steps as steps_mod

    out = tmp_path / "out"
    calls = {"n": 0}
    real = steps_mod.write_provenance

    def flaky(folder, record):
        statuses = [s.get("status") for s in record["steps"].values()]
        if "failed" in statuses:
            calls["n"] += 1
            raise RecordingError(Path(folder) / "provenance.json", "cannot be written: disk full")
        return real(folder, record)

    def step_fails(ctx, source):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(steps_mod, "write_provenance", flaky)
    monkeypatch.setitem(steps_mod.STEPS, "summary", step_fails)
    with pytest.raises(OSError) as info:
        run_pipeline(movie, out)
    assert info.value.errno == errno.ENOSPC and calls["n"] == 1
    assert any("could not record the failure" in n for n in getattr(info.value, "__notes__", []))
    summary = read_provenance(out)["steps"]["summary"]
    assert summary["status"] == "running" and summary["key"] is None  # never "ran"


# ------------------------------------------------------------- a real full disk (tmpfs, ENOSPC)
def _tmpfs_prefix(mount: Path) -> tuple[str, ...] | None:
    """A command prefix running the child in a user + mount namespace with a 256 KiB tmpfs at
    ``mount``; None where the machine allows no such namespace (no ``unshare``, or mounting
    refused)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    mount.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        [unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o size=256k none {mount}"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return None
    script = f'mount -t tmpfs -o size=256k none "{mount}" && exec "$@"'
    return (unshare, "-rm", "sh", "-c", script, "sh")


def test_a_really_full_disk(tmp_path):
    """A 400 KiB binary movie and a convert that overwrites, where only 256 KiB fit.

    On a 256 KiB tmpfs (ENOSPC) where the machine allows a user namespace; elsewhere the same
    writes meet a 256 KiB ``RLIMIT_FSIZE`` (EFBIG), a real limit too, so the case always runs.
    """
    mount = tmp_path / "small"
    body = textwrap.dedent(
        """
        big = rng.integers(0, 4000, (50, 64, 64), dtype=np.uint16)  # 400 KiB
        nc.save_binary(out / "old.bin", movie[:2])
        def write(stem, overwrite):
            nc.save_binary(out / f"{stem}.bin", big, overwrite=overwrite)
        """
    )
    prefix = _tmpfs_prefix(mount)
    if prefix is not None:  # the child's `out` is the mount point, inside its namespace
        result, code = _child(body, mount, prefix=prefix, fsize=None), errno.ENOSPC
    else:
        mount.mkdir(parents=True, exist_ok=True)
        result, code = _child(body, mount, fsize=256 * 1024), errno.EFBIG
    _assert_disk_full(result["new"], mount / "new.bin", code)
    _assert_disk_full(result["overwrite"], mount / "old.bin", code)
    if code == errno.ENOSPC:
        assert "free there now" in result["new"]["message"]
    assert result["after"] == result["before"]


# ------------------------------------------------------------ the cluster writer's reservation
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG])
def test_cluster_output_reserves_its_size_up_front(tmp_path, monkeypatch, code):
    from napari_calcium.pipeline import _chunked

    def full(fd, offset, length):
        raise OSError(code, os.strerror(code))

    tmp = tmp_path / ".m.bin.x.partial"
    tmp.write_bytes(b"")
    monkeypatch.setattr(_chunked.os, "posix_fallocate", full, raising=False)
    with pytest.raises(RecordingError, match=r"needs about 4194304 bytes \(4\.0 MiB\)") as info:
        _chunked._reserve(tmp, 4 * 2**20, tmp_path / "m.bin")
    assert info.value.path == str(tmp_path / "m.bin") and info.value.errno == code


def test_cluster_output_without_fallocate_is_sized_by_truncate(tmp_path, monkeypatch):
    from napari_calcium.pipeline import _chunked

    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    tmp = tmp_path / ".m.bin.x.partial"
    tmp.write_bytes(b"")
    monkeypatch.setattr(_chunked.os, "posix_fallocate", unsupported, raising=False)
    _chunked._reserve(tmp, 12345, tmp_path / "m.bin")
    assert tmp.stat().st_size == 12345

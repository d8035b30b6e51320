"""Data safety of the headless pipeline (issue 15).

1. Names from a config that become file names stay inside the output folder: ``[export] name``
   with a path separator, ``..``, an absolute path, an empty name or a NUL is refused when the
   config is validated, before anything is written.
2. Resume verifies what it relies on: a finished step whose outputs are missing or do not match
   their recorded checksums is recomputed, and so are the steps after it.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from pipeline_cases import assert_same_results, write_movie

from napari_calcium.cli import main
from napari_calcium.errors import ParameterError
from napari_calcium.pipeline import load_config, load_results, run_pipeline
from napari_calcium.pipeline import provenance as prov
from napari_calcium.pipeline.provenance import read_provenance
from napari_calcium.pipeline.steps import STEPS

ALL_STEPS = list(STEPS)
USER_FILE = b'{"mine": "do not touch"}\n'


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    return write_movie(tmp_path_factory.mktemp("safety_recording"))


@pytest.fixture(scope="module")
def clean_run(movie, tmp_path_factory):
    return run_pipeline(movie, tmp_path_factory.mktemp("safety_clean") / "out")


def _statuses(run) -> dict[str, str]:
    return {s.name: s.status for s in run.steps}


def _flip_middle_byte(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 2)
        byte = fh.read(1)
        fh.seek(size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert path.stat().st_size == size


# --------------------------------------------------------------------------------------------
# 1. export names stay inside the output folder
# --------------------------------------------------------------------------------------------

BAD_NAMES = {
    "../escaped": "..",
    "..": "..",
    "sub/escaped": "/",
    "..\\escaped": "\\",
    "": "empty",
    "   ": "empty",
    "esc\0aped": "NUL",
    "C:escaped": ":",
    "provenance": "pipeline's own",
    "recording": "pipeline's own",
    "rois": "pipeline's own",
    "Provenance": "pipeline's own",  # the same file on a case-insensitive file system
    "CON": "device",
}


@pytest.mark.parametrize("name", list(BAD_NAMES))
def test_bad_export_names_are_refused_by_the_config(name):
    with pytest.raises(ParameterError, match=r"\[export\] name") as info:
        load_config({"export": {"name": name}})
    assert BAD_NAMES[name] in str(info.value)
    assert "<config mapping>" in str(info.value)


def test_absolute_export_name_is_refused(tmp_path):
    with pytest.raises(ParameterError, match=r"\[export\] name: .*absolute"):
        load_config({"export": {"name": str(tmp_path / "escaped")}})


@pytest.mark.parametrize(
    "good", ["traces", "session_01", "my traces", "a.b", "résultats", "rois_v2", "provenance.v2"]
)
def test_plain_export_names_are_accepted(good):
    assert load_config({"export": {"name": good}}).export.name == good


def test_escaping_export_name_writes_nothing(movie, tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "escaped.json").write_bytes(USER_FILE)
    out = parent / "out"
    with pytest.raises(ParameterError, match=r"\[export\] name"):
        run_pipeline(movie, out, {"export": {"name": "../escaped"}})
    assert (parent / "escaped.json").read_bytes() == USER_FILE
    assert sorted(p.name for p in parent.iterdir()) == ["escaped.json"]  # no out, no npz
    assert not out.exists()


def test_absolute_export_name_writes_nothing(movie, tmp_path):
    target = tmp_path / "elsewhere" / "escaped"
    target.parent.mkdir()
    (target.parent / "escaped.json").write_bytes(USER_FILE)
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match=r"\[export\] name"):
        run_pipeline(movie, out, {"export": {"name": str(target)}})
    assert (target.parent / "escaped.json").read_bytes() == USER_FILE
    assert sorted(p.name for p in target.parent.iterdir()) == ["escaped.json"]
    assert not out.exists()  # no provenance left saying "running"


def test_escaping_name_in_a_resumed_folder_leaves_it_as_it_was(clean_run, movie, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(clean_run.out_dir, out)
    before = (out / "provenance.json").read_bytes()
    with pytest.raises(ParameterError, match=r"\[export\] name"):
        run_pipeline(movie, out, {"export": {"name": "../escaped"}})
    assert (out / "provenance.json").read_bytes() == before
    assert not (tmp_path / "escaped.npz").exists() and not (tmp_path / "escaped.json").exists()


def test_a_pipeline_config_object_is_checked_too(movie, tmp_path):
    config = load_config(None)
    bad = dataclasses.replace(config, export=dataclasses.replace(config.export, name="../x"))
    with pytest.raises(ParameterError, match=r"\[export\] name"):
        run_pipeline(movie, tmp_path / "out", bad)
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_cli_run_refuses_an_escaping_export_name(movie, tmp_path, capsys, kind):
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "escaped.json").write_bytes(USER_FILE)
    name = "../escaped" if kind == "relative" else (parent / "escaped").as_posix()
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text(f'[export]\nname = "{name}"\n', encoding="utf-8")
    out = parent / "out"
    status = main(["run", str(movie), "--config", str(cfg), "--out", str(out), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "[export] name" in err and "Traceback" not in err
    assert (parent / "escaped.json").read_bytes() == USER_FILE
    assert sorted(p.name for p in parent.iterdir()) == ["escaped.json"]


def test_reserved_names_cover_every_pipeline_file():
    from napari_calcium.pipeline import _stepfuncs as sf
    from napari_calcium.pipeline.config import RESERVED_EXPORT_NAMES

    files = [v for k, v in vars(sf).items() if k.isupper() and isinstance(v, str)]
    files.append(prov.PROVENANCE_FILE)
    stems = {Path(f).parts[0].split(".")[0] for f in files}
    assert stems <= set(RESERVED_EXPORT_NAMES)


# --------------------------------------------------------------------------------------------
# 2. resume verifies the outputs it relies on
# --------------------------------------------------------------------------------------------


def test_resume_recomputes_a_step_whose_output_was_damaged(clean_run, movie, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(clean_run.out_dir, out)
    _flip_middle_byte(out / "steps" / "extract.npz")
    with pytest.warns(UserWarning, match=r"extract\.npz.*(verify|differ)"):
        run = run_pipeline(movie, out)
    status = _statuses(run)
    assert [s for s in ALL_STEPS if status[s] == "skipped"] == ["open", "summary", "rois"]
    assert [s for s in ALL_STEPS if status[s] == "ran"] == [
        "extract", "dff", "deconvolve", "events", "export",
    ]  # fmt: skip
    assert_same_results(out, clean_run.out_dir)
    assert read_provenance(out)["steps"]["extract"]["status"] == "ran"
    # and now it is trusted again: everything skipped
    again = _statuses(run_pipeline(movie, out))
    assert {again[s] for s in ALL_STEPS if again[s] != "disabled"} == {"skipped"}


def test_damaged_output_then_changed_downstream_parameter(clean_run, movie, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(clean_run.out_dir, out)
    _flip_middle_byte(out / "steps" / "extract.npz")
    with pytest.warns(UserWarning, match=r"extract\.npz"):
        run = run_pipeline(movie, out, {"dff": {"window_s": 5.0}})
    status = _statuses(run)
    assert status["extract"] == "ran" and status["dff"] == "ran" and status["export"] == "ran"
    res = load_results(out)
    assert res.dff.parameters["window_s"] == 5.0
    np.testing.assert_array_equal(
        res.traces.corrected, load_results(clean_run.out_dir).traces.corrected
    )


def test_damaged_final_export_is_rewritten(clean_run, movie, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(clean_run.out_dir, out)
    _flip_middle_byte(out / "traces.npz")
    with pytest.warns(UserWarning, match=r"traces\.npz"):
        run = run_pipeline(movie, out)
    status = _statuses(run)
    assert [s for s in ALL_STEPS if status[s] == "ran"] == ["export"]
    assert_same_results(out, clean_run.out_dir)


def test_damaged_early_output_recomputes_every_later_step(clean_run, movie, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(clean_run.out_dir, out)
    _flip_middle_byte(out / "rois.npz")
    with pytest.warns(UserWarning, match=r"rois\.npz"):
        run = run_pipeline(movie, out)
    status = _statuses(run)
    assert [s for s in ALL_STEPS if status[s] == "skipped"] == ["open", "summary"]
    assert [s for s in ALL_STEPS if status[s] == "ran"] == [
        "rois", "extract", "dff", "deconvolve", "events", "export",
    ]  # fmt: skip
    assert_same_results(out, clean_run.out_dir)


def test_missing_output_recomputes_the_step_and_the_steps_after_it(clean_run, movie, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(clean_run.out_dir, out)
    (out / "steps" / "dff.json").unlink()
    with pytest.warns(UserWarning, match=r"dff\.json.*missing"):
        run = run_pipeline(movie, out)
    status = _statuses(run)
    assert [s for s in ALL_STEPS if status[s] == "ran"] == ["dff", "deconvolve", "events", "export"]
    assert_same_results(out, clean_run.out_dir)


def test_outputs_record_size_mtime_and_checksum(clean_run):
    record = read_provenance(clean_run.out_dir)
    for name, step in record["steps"].items():
        for out in step.get("outputs", []):
            path = clean_run.out_dir / out["path"]
            st = path.stat()
            assert out["size"] == st.st_size and out["mtime_ns"] == st.st_mtime_ns, name
            assert out["sha256"] == prov.sha256(path)


# ------------------------------------------------------------- large files: sampled verification


@pytest.fixture
def small_threshold(monkeypatch):
    """Treat files of 64 KiB and more as "large" (sampled) and use 4 KiB sample blocks."""
    monkeypatch.setattr(prov, "FULL_HASH_MAX_BYTES", 64 * 1024)
    monkeypatch.setattr(prov, "SAMPLE_BLOCK_BYTES", 4096)


def _big_file(folder: Path, n: int = 1 << 20) -> Path:
    path = folder / "movie.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes())
    return path


def test_large_files_unchanged_verify_without_a_full_read(small_threshold, tmp_path, monkeypatch):
    path = _big_file(tmp_path)
    rec = prov.file_record(path, tmp_path)
    assert "sample_sha256" in rec
    monkeypatch.setattr(prov, "sha256", lambda p: pytest.fail("full hash of a large file"))
    assert prov.verify_output(tmp_path, rec) == (None, rec)


def test_large_file_damaged_in_a_sampled_block_fails(small_threshold, tmp_path):
    path = _big_file(tmp_path)
    rec = prov.file_record(path, tmp_path)
    st = path.stat()
    with open(path, "r+b") as fh:  # the first block is always sampled
        fh.seek(10)
        fh.write(b"\x00\x01\x02")
    import os

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with its mtime put back
    problem, _ = prov.verify_output(tmp_path, rec)
    assert problem is not None and "movie.bin" in problem


def test_large_file_touched_is_fully_hashed(small_threshold, tmp_path):
    path = _big_file(tmp_path)
    rec = prov.file_record(path, tmp_path)
    import os

    os.utime(path, ns=(1, 1))  # same contents, another mtime (a copy without -p): full check
    problem, refreshed = prov.verify_output(tmp_path, rec)
    assert problem is None and refreshed["mtime_ns"] == 1 and refreshed["sha256"] == rec["sha256"]
    with open(path, "r+b") as fh:  # not in a sampled block, but the mtime moved: found
        fh.seek(path.stat().st_size // 2 + 12345)
        fh.write(b"\xff\xfe")
    problem, _ = prov.verify_output(tmp_path, refreshed)
    assert problem is not None and "sha256" in problem


def test_small_files_are_fully_hashed_whatever_their_mtime(tmp_path):
    path = tmp_path / "small.npz"
    path.write_bytes(b"x" * 1000)
    rec = prov.file_record(path, tmp_path)
    st = path.stat()
    path.write_bytes(b"x" * 500 + b"y" + b"x" * 499)
    import os

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    problem, _ = prov.verify_output(tmp_path, rec)
    assert problem is not None and "small.npz" in problem


def test_output_records_outside_the_folder_do_not_verify(tmp_path):
    (tmp_path / "outside.npz").write_bytes(b"abc")
    folder = tmp_path / "out"
    folder.mkdir()
    rec = {"path": "../outside.npz", "size": 3, "sha256": prov.sha256(tmp_path / "outside.npz")}
    problem, _ = prov.verify_output(folder, rec)
    assert problem is not None and "outside" in problem

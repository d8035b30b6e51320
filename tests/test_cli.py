"""The `napari-calcium` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_calcium as nc
from conftest import FOUR_PLANE, shared_data
from napari_calcium._cli_info import INFO_KEYS
from napari_calcium.cli import main
from napari_calcium.io.groundtruth import load_ground_truth

SMALL = ["--frames", "60", "--shape", "48", "40", "--neurons", "4", "--seed", "5", "--quiet"]


def test_demo_writes_a_recording_with_truth(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), *SMALL]) == 0
    said = capsys.readouterr().out
    assert "Simulated 60 frames of 48x40 px" in said and "movie.tif" in said
    movie = tifffile.imread(out / "movie.tif")
    expected = nc.simulate_recording(n_frames=60, shape=(48, 40), n_neurons=4, seed=5)
    np.testing.assert_array_equal(movie, expected.movie)
    truth = load_ground_truth(out / "ground_truth.npz")
    np.testing.assert_array_equal(truth.labels, expected.truth.labels)
    record = json.loads((out / "recording.json").read_text())
    assert record["shape"] == [60, 48, 40] and record["frame_rate_hz"] == 30.0
    with tifffile.TiffFile(out / "movie.tif") as tif:
        assert tif.imagej_metadata["finterval"] == pytest.approx(1 / 30)


def test_demo_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), *SMALL]) == 0
    before = (out / "movie.tif").stat().st_mtime_ns
    assert main(["demo", str(out), *SMALL, "--seed", "6"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and "Traceback" not in err
    assert (out / "movie.tif").stat().st_mtime_ns == before
    assert main(["demo", str(out), *SMALL, "--seed", "6", "--overwrite"]) == 0
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]


def test_demo_bad_arguments_are_clear(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "d"), "--frames", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--frames 0 must be >= 1" in err and "Traceback" not in err
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["demo", str(afile), "--quiet"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_console_script_runs(tmp_path):
    exe = Path(sys.executable).with_name("napari-calcium")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and nc.__version__ in proc.stdout
    proc = subprocess.run(
        [str(exe), "demo", str(tmp_path / "d"), *SMALL[:-1]], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "d" / "movie.tif").exists()


@pytest.fixture
def demo_movie(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", str(out), *SMALL, "--frame-rate", "20", "--pixel-size", "0.8"]) == 0
    return out / "movie.tif"


def test_info_on_the_demo_movie(demo_movie, capsys):
    capsys.readouterr()
    meta = nc.open_recording(demo_movie).metadata
    assert main(["info", str(demo_movie)]) == 0
    text = capsys.readouterr().out
    assert str(demo_movie) in text and "60x48x40 (frames, y, x)" in text and "uint16" in text
    assert "frame rate  20 Hz (frame period 50 ms)" in text and "duration    3.00 s" in text
    assert "µm/px       0.8 x 0.8 (y, x)" in text
    assert main(["info", str(demo_movie), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert tuple(info) == INFO_KEYS
    assert info["shape"] == [60, 48, 40] and info["axes"] == ["t", "y", "x"]
    assert info["frame_rate_hz"] == pytest.approx(meta.frame_rate_hz)
    assert info["frame_period_s"] == pytest.approx(meta.frame_period_s)
    assert info["pixel_size_um"] == pytest.approx(list(meta.pixel_size_um))
    assert info["duration_s"] == pytest.approx(3.0) and info["channels"] == ["Ch1"]
    assert info["dtype"] == "uint16" and info["reader"] == "tiff"


def test_info_on_a_real_bruker_folder(capsys):
    folder = shared_data(*FOUR_PLANE)  # missing data fails, never skips
    assert main(["info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "bruker" and info["software_version"] == "5.5.64.600"
    assert info["shape"] == [30, 4, 256, 256] and info["axes"] == ["t", "z", "y", "x"]
    assert info["n_planes"] == 4 and info["bit_depth"] == 13 and info["channels"] == ["Ch2"]
    assert info["frame_period_s"] == pytest.approx(0.181592112)
    assert info["pixel_size_um"] == pytest.approx([1.7664, 1.7664], abs=1e-3)
    assert "prairieview_state" not in info["extra"]
    assert main(["info", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "PrairieView 5.5.64.600" in text and "planes          4, 35 µm apart" in text
    assert "volume rate     5.50685 Hz" in text


def test_info_errors_are_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "movie.tif"
    assert main(["info", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-calcium info: error: ") and str(missing) in err
    assert "no such file" in err and "Traceback" not in err and err.count("\n") == 1
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all")
    assert main(["info", str(junk)]) == 2
    err = capsys.readouterr().err
    assert str(junk) in err and "Traceback" not in err


def test_convert_tif_to_bin_round_trip(demo_movie, tmp_path, capsys):
    out = tmp_path / "converted"
    assert main(["convert", str(demo_movie), str(out), "--quiet"]) == 0
    said = capsys.readouterr().out
    written = out / "movie_Ch1.bin"
    assert "Wrote" in said and written.name in said and written.with_suffix(".json").exists()
    src, dst = nc.open_recording(demo_movie), nc.open_recording(written)
    np.testing.assert_array_equal(np.asarray(dst.movie), np.asarray(src.movie))
    assert dst.metadata.frame_rate_hz == pytest.approx(src.metadata.frame_rate_hz)
    assert dst.metadata.pixel_size_um == pytest.approx(src.metadata.pixel_size_um)
    # and back to TIFF, picking the channel by index
    back = tmp_path / "back"
    assert main(["convert", str(written), str(back), "--format", "tif", "--channel", "0"]) == 0
    [tif] = back.iterdir()
    np.testing.assert_array_equal(tifffile.imread(tif), np.asarray(src.movie))


def test_convert_refuses_to_overwrite(demo_movie, tmp_path, capsys):
    out = tmp_path / "converted"
    assert main(["convert", str(demo_movie), str(out), "--quiet"]) == 0
    target = out / "movie_Ch1.bin"
    before = target.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["convert", str(demo_movie), str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "--overwrite" in err and "Traceback" not in err
    assert target.stat().st_mtime_ns == before
    assert main(["convert", str(demo_movie), str(out), "--quiet", "--overwrite"]) == 0
    assert target.stat().st_mtime_ns != before
    assert sorted(p.name for p in out.iterdir()) == ["movie_Ch1.bin", "movie_Ch1.json"]


def test_convert_mistakes_are_clear(demo_movie, tmp_path, capsys, monkeypatch):
    capsys.readouterr()
    cases = [
        (["--channel", "Red"], "channel 'Red' is not in"),
        (["--plane", "x"], "zero-based"),
    ]
    for extra, message in cases:
        assert main(["convert", str(demo_movie), str(tmp_path / "o"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert main(["convert", str(demo_movie), str(tmp_path / "o.bin")]) == 2
    assert "OUTPUT is the folder" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "none.tif"), str(tmp_path / "o")]) == 2
    assert "none.tif: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse's own errors also exit 2
        main(["convert", str(demo_movie), str(tmp_path / "o"), "--format", "zarr"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("napari_calcium.io.convert.convert_recording", interrupted)
    assert main(["convert", str(demo_movie), str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_info_and_convert_as_a_command(demo_movie, tmp_path):
    def run(*args):
        cmd = [sys.executable, "-m", "napari_calcium.cli", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True)

    proc = run("info", demo_movie, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["shape"] == [60, 48, 40]
    out = tmp_path / "c"
    proc = run("convert", demo_movie, out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "movie_Ch1.bin").exists() and "Traceback" not in proc.stderr
    proc = run("info", tmp_path / "missing")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(tmp_path / "missing") in proc.stderr


# ---------------------------------------------------------------------------------------- run
RUN_DEMO = ["--frames", "300", "--shape", "64", "64", "--neurons", "8", "--seed", "4", "--quiet"]


@pytest.fixture(scope="module")
def run_movie(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "demo"
    assert main(["demo", str(out), *RUN_DEMO]) == 0
    return out / "movie.tif"


def test_run_on_the_demo_prints_a_summary_and_resumes(run_movie, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", str(run_movie), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    res = nc.load_results(out)
    assert f"movie.tif: {res.rois.n_rois} ROIs, 300 frames at 30 Hz" in text
    assert "steps: 8 ran, 3 disabled" in text and str(out) in text
    assert res.spikes is not None and res.traces.n_frames == 300
    truth = nc.RoiSet.from_label_image(
        load_ground_truth(run_movie.parent / "ground_truth.npz").labels
    )
    assert nc.detection_scores(res.rois, truth).f1 >= 0.8
    assert main(["run", str(run_movie), "--out", str(out), "--quiet"]) == 0  # resumes: all skipped
    assert "steps: 8 skipped, 3 disabled" in capsys.readouterr().out


def test_run_with_a_config_file_and_bad_configs(run_movie, tmp_path, capsys):
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text('[dff]\nmethod = "maximin"\n\n[deconvolve]\nmethod = "oasis-ar2"\n')
    out = tmp_path / "r"
    assert main(["run", str(run_movie), "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    res = nc.load_results(out)
    assert res.dff.method == "maximin" and res.spikes.method == "oasis-ar2"
    capsys.readouterr()
    cfg.write_text("[dff]\nwindow = 3\n")  # unknown key: named, one line, exit 2, nothing run
    assert main(["run", str(run_movie), "--config", str(cfg), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "window" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_run_on_a_folder_reports_a_bad_recording_and_finishes_the_others(
    run_movie, tmp_path, capsys
):
    folder = tmp_path / "batch"
    folder.mkdir()
    movie = tifffile.imread(run_movie)
    for name in ("a", "b"):
        tifffile.imwrite(folder / f"{name}.tif", movie, imagej=True, metadata={"finterval": 1 / 30})
    tifffile.imwrite(folder / "c.tif", movie[:, :1, :1], imagej=True)  # too small: fails
    (folder / "notes.txt").write_text("not a recording")
    out = tmp_path / "out"
    assert main(["run", str(folder), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "2 of 3 recordings done; failed: 1" in captured.out
    assert "c.tif" in captured.err and "Traceback" not in captured.err
    assert nc.load_results(out / "a").rois.n_rois > 0 and nc.load_results(out / "b").spikes


# ------------------------------------------------------------------- run: clusters and SIGTERM
def _assert_no_partial_outputs(folder: Path) -> None:
    """No temporary files; every step recorded as done has its outputs, the others no key."""
    assert not [p for p in folder.rglob("*") if p.name.endswith(".partial")]
    record = json.loads((folder / "provenance.json").read_text())
    for name, step in record["steps"].items():
        if step["status"] in ("ran", "skipped"):
            for out in step["outputs"]:
                assert (folder / out["path"]).stat().st_size == out["size"], (name, out)
        else:
            assert step.get("key") is None, (name, step)


def test_run_on_a_local_cluster(run_movie, tmp_path, capsys):
    pytest.importorskip("distributed")
    from napari_calcium.io.binary import save_binary

    folder = tmp_path / "batch"
    folder.mkdir()
    movie = tifffile.imread(run_movie)
    for name in ("a", "b"):  # (a folder of TIFFs would be one recording)
        save_binary(folder / f"{name}.bin", movie, frame_rate_hz=30.0)
    out = tmp_path / "out"
    args = ["run", str(folder), "--out", str(out), "--scheduler", "local", "--workers", "2"]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "on a local cluster of 2 worker processes" in said
    assert "a.bin: " in said and "b.bin: " in said and "2 of 2 recordings done" in said
    a, b = nc.load_results(out / "a"), nc.load_results(out / "b")
    np.testing.assert_array_equal(a.traces.F, b.traces.F)


def test_run_cluster_options_are_checked_before_any_work(run_movie, tmp_path, capsys, monkeypatch):
    out = tmp_path / "x"
    assert main(["run", str(run_movie), "--out", str(out), "--workers", "2"]) == 2
    assert "--scheduler local" in capsys.readouterr().err
    args = ["run", str(run_movie), "--out", str(out), "--scheduler", "local"]
    assert main([*args, "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "distributed", None)  # not installed
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pip install 'napari-calcium[cluster]'" in err and "Traceback" not in err
    assert not out.exists()


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory):
    """A recording and a config (motion + filter) that take a few seconds to run."""
    from napari_calcium.io.tiff import write_tiff_stack

    folder = tmp_path_factory.mktemp("slow")
    rec = nc.simulate_recording(n_frames=1500, shape=(128, 128), n_neurons=20, seed=3)
    movie = write_tiff_stack(folder / "movie.tif", rec.movie, frame_rate_hz=30.0)
    config = folder / "pipeline.toml"
    config.write_text("[motion]\nenabled = true\n\n[filter]\nenabled = true\n")
    return movie, config


def _terminate_when_running(cmd, folders, step="motion"):
    """Start `cmd`, send SIGTERM once `step` runs in one of `folders`; (rc, stdout, stderr)."""
    import signal
    import time

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    running = False
    while not running and time.monotonic() < deadline and proc.poll() is None:
        for folder in folders:
            try:
                steps = json.loads((folder / "provenance.json").read_text())["steps"]
            except (OSError, ValueError, KeyError):
                continue
            running = running or steps.get(step, {}).get("status") == "running"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stdout, stderr


def test_sigterm_stops_a_run_cleanly_and_a_rerun_resumes(slow_run, tmp_path):
    movie, config = slow_run
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "napari_calcium.cli", "run", str(movie), "--out", str(out)]
    cmd += ["--config", str(config), "--quiet"]
    rc, stdout, stderr = _terminate_when_running(cmd, [out])
    assert rc == 143, (stdout, stderr)
    assert stderr.strip().splitlines() == ["napari-calcium run: interrupted"]
    _assert_no_partial_outputs(out)
    steps = json.loads((out / "provenance.json").read_text())["steps"]
    assert steps["open"]["status"] == "ran" and steps["motion"]["status"] != "ran"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 skipped" in proc.stdout and "9 ran" in proc.stdout
    _assert_no_partial_outputs(out)


def test_sigterm_stops_a_cluster_run_cleanly(slow_run, tmp_path):
    pytest.importorskip("distributed")
    from napari_calcium.io.binary import save_binary

    movie, config = slow_run
    folder = tmp_path / "batch"
    folder.mkdir()
    frames = tifffile.imread(movie)
    for name in ("a", "b"):
        save_binary(folder / f"{name}.bin", frames, frame_rate_hz=30.0)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "napari_calcium.cli", "run", str(folder), "--out", str(out)]
    cmd += ["--config", str(config), "--scheduler", "local", "--workers", "2"]
    rc, stdout, stderr = _terminate_when_running(cmd, [out / "a", out / "b"])
    assert rc == 143, (stdout, stderr)
    assert stderr.strip().splitlines()[-1] == "napari-calcium run: interrupted"
    assert "Traceback" not in stderr
    for name in ("a", "b"):
        if not (out / name / "provenance.json").exists():  # its task had not started yet
            assert not [p for p in out.rglob("*") if p.name.endswith(".partial")]
            continue
        _assert_no_partial_outputs(out / name)
        steps = json.loads((out / name / "provenance.json").read_text())["steps"]
        # the worker stopped it, or (on a busy machine) its task had not reached motion yet
        assert steps.get("motion", {}).get("status", "not started") in (
            "cancelled",
            "ran",
            "not started",
        ), steps


def test_sigterm_stops_one_movie_chunked_on_a_cluster(slow_run, tmp_path):
    """One recording with --scheduler: motion runs chunk by chunk on the workers."""
    pytest.importorskip("distributed")
    movie, config = slow_run
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "napari_calcium.cli", "run", str(movie), "--out", str(out)]
    cmd += ["--config", str(config), "--scheduler", "local", "--workers", "2", "--quiet"]
    rc, stdout, stderr = _terminate_when_running(cmd, [out])
    assert rc == 143, (stdout, stderr)
    assert "chunk by chunk on the workers" in stdout
    assert stderr.strip().splitlines()[-1] == "napari-calcium run: interrupted"
    assert "Traceback" not in stderr
    _assert_no_partial_outputs(out)
    steps = json.loads((out / "provenance.json").read_text())["steps"]
    assert steps["open"]["status"] == "ran" and steps["motion"]["status"] == "cancelled"
    assert not (out / "motion_corrected.bin").exists()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "1 skipped" in proc.stdout and "9 ran" in proc.stdout
    assert nc.load_results(out).rois.n_rois > 0


class _SigtermInDestructor:
    """SIGTERM lands while Python runs a ``__del__``: the exception its handler raises is
    "ignored" there (printed, not propagated), the race that once let a run finish with 0."""

    def __del__(self) -> None:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between these bytecodes, inside __del__
            pass


def test_sigterm_swallowed_inside_a_destructor_still_stops_the_command(
    monkeypatch, tmp_path, capsys
):
    import napari_calcium.cli as cli

    done = []

    def work(args):
        _SigtermInDestructor()  # collected at once: the signal arrives inside its __del__
        bar = cli._progress_factory(True)(total=10, desc="x")  # the next check point
        for _ in range(10):
            bar.update(1)
            done.append(1)
        return 0

    monkeypatch.setattr(cli, "_demo", work)
    assert main(["demo", str(tmp_path)]) == 143
    assert not done  # stopped at the first progress check, not at the end
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["napari-calcium demo: interrupted"], err


def test_sigterm_swallowed_where_nothing_checks_still_gives_143(monkeypatch, tmp_path, capsys):
    import napari_calcium.cli as cli

    def work(args):
        _SigtermInDestructor()
        return 0  # the work "finished", but it was asked to stop: not a success

    monkeypatch.setattr(cli, "_demo", work)
    assert main(["demo", str(tmp_path)]) == 143
    assert capsys.readouterr().err.strip().splitlines() == ["napari-calcium demo: interrupted"]
    monkeypatch.setattr(cli, "_demo", lambda args: 0)
    assert main(["demo", str(tmp_path)]) == 0  # the next command starts afresh


def test_after_a_sigterm_finalizer_errors_are_not_printed():
    """A SIGTERM that interrupted numba's compile leaves llvmlite objects whose ``__del__``
    fails later ("'OutputString' object has no attribute '_ptr'", seen once in CI as the last
    line of stderr): after the stop such noise is dropped; before it, nothing is."""
    from napari_calcium import cli

    seen = []
    hook = cli._quiet_lost_terminated(seen.append)

    class Unraisable:
        exc_value = AttributeError("'OutputString' object has no attribute '_ptr'")

    cli._TERMINATED.clear()
    hook(Unraisable)
    assert seen == [Unraisable]  # not terminated: shown as usual
    cli._TERMINATED.set()
    try:
        hook(Unraisable)
        assert seen == [Unraisable]  # terminated: dropped
    finally:
        cli._TERMINATED.clear()

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
    assert "n_frames must be >= 1" in err and "Traceback" not in err
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

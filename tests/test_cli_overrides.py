"""``--frame-rate-hz`` / ``--pixel-size-um`` on info, convert and run (issue 16, point 1).

A TIFF without metadata (a real neurofinder movie, and a plain tifffile stack) has no frame rate:
``run`` stops at dF/F without one; with the option the whole pipeline runs and the provenance
records the value given.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

import napari_calcium as nc
from conftest import shared_data
from napari_calcium.cli import main


def test_info_takes_the_frame_rate_and_pixel_size(capsys):
    movie = shared_data("neurofinder_crop", "movie.tif")
    assert main(["info", str(movie), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["frame_rate_hz"] is None and plain["pixel_size_um"] is None
    args = ["info", str(movie), "--frame-rate-hz", "7", "--pixel-size-um", "1.15"]
    assert main([*args, "--json"]) == 0
    given = json.loads(capsys.readouterr().out)
    assert given["frame_rate_hz"] == pytest.approx(7.0)
    assert given["pixel_size_um"] == pytest.approx([1.15, 1.15])
    assert given["duration_s"] == pytest.approx(400 / 7)
    assert main(args) == 0
    assert "--frame-rate-hz (the files say: nothing)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--frame-rate-hz", "fast", "give a number"),
        ("--frame-rate-hz", "0", "positive"),
        ("--frame-rate-hz", "nan", "positive"),
        ("--pixel-size-um", "-1", "positive"),
        ("--frame-rate-hz", "1e9", "at most"),
    ],
)
def test_bad_values_are_one_line_errors(option, value, message, capsys):
    movie = shared_data("neurofinder_crop", "movie.tif")
    assert main(["info", str(movie), option, value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_convert_carries_the_given_values(tmp_path, capsys):
    movie = shared_data("neurofinder_crop", "movie.tif")
    args = ["convert", str(movie), str(tmp_path / "out"), "--quiet"]
    assert main([*args, "--frame-rate-hz", "7", "--pixel-size-um", "1.15"]) == 0
    (written,) = (tmp_path / "out").glob("*.bin")
    rec = nc.open_recording(written)
    assert rec.metadata.frame_rate_hz == pytest.approx(7.0)
    assert rec.metadata.pixel_size_um == pytest.approx((1.15, 1.15))


def test_run_needs_a_frame_rate_and_takes_it_from_the_option(tmp_path, capsys):
    sim = nc.simulate_recording(n_frames=300, shape=(64, 64), n_neurons=6, seed=2)
    movie = tmp_path / "plain.tif"
    tifffile.imwrite(movie, np.asarray(sim.movie))  # no frame rate, no pixel size
    out = tmp_path / "results"
    assert main(["run", str(movie), "--out", str(out), "--quiet"]) == 1
    assert "frame_rate_hz" in capsys.readouterr().err  # says how to give one
    code = main(["run", str(movie), "--out", str(out), "--quiet", "--frame-rate-hz", "30",
                 "--pixel-size-um", "1"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "300 frames at 30 Hz (10.0 s)" in capsys.readouterr().out
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["config"]["open"]["frame_rate_hz"] == 30.0
    assert provenance["config"]["open"]["pixel_size_um"] == 1.0
    results = nc.load_results(out)
    assert results.frame_rate_hz == pytest.approx(30.0)

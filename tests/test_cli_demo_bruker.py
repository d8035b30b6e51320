"""`napari-calcium demo OUTDIR --bruker`: the synthetic movie as a PrairieView T-series folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

import napari_calcium as nc
from napari_calcium.cli import DEMO_BRUKER, main
from napari_calcium.io.groundtruth import load_ground_truth

SMALL = ["--frames", "60", "--shape", "48", "40", "--neurons", "4", "--seed", "5", "--quiet"]


def test_demo_bruker_writes_a_prairieview_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", str(out), *SMALL, "--bruker", "--frame-rate", "20", "--pixel-size", "0.8"]
    assert main(argv) == 0
    said = capsys.readouterr().out
    folder = out / DEMO_BRUKER
    assert DEMO_BRUKER == "TSeries-demo-001" and f"{DEMO_BRUKER}/" in said
    assert f"napari --plugin napari-calcium {folder}" in said
    assert sorted(p.name for p in out.iterdir()) == [
        DEMO_BRUKER, "ground_truth.npz", "recording.json"
    ]  # fmt: skip
    assert (folder / f"{DEMO_BRUKER}.xml").exists()
    assert (folder / f"{DEMO_BRUKER}_Cycle00001_Ch2_000060.ome.tif").exists()
    expected = nc.simulate_recording(
        n_frames=60, shape=(48, 40), n_neurons=4, seed=5, frame_rate_hz=20, pixel_size_um=0.8
    )
    rec = nc.open_recording(folder)
    np.testing.assert_array_equal(np.asarray(rec.movie), expected.movie)
    assert rec.metadata.frame_rate_hz == pytest.approx(20.0)
    assert rec.metadata.pixel_size_um == pytest.approx((0.8, 0.8))
    truth = load_ground_truth(out / "ground_truth.npz")
    np.testing.assert_array_equal(truth.labels, expected.truth.labels)
    record = json.loads((out / "recording.json").read_text())
    assert record["movie"] == DEMO_BRUKER and record["shape"] == [60, 48, 40]
    assert record["frame_rate_hz"] == 20.0


def test_info_on_the_demo_bruker_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), *SMALL, "--bruker", "--pixel-size", "1.5"]) == 0
    capsys.readouterr()
    folder = out / DEMO_BRUKER
    assert main(["info", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "bruker" in text and "60x48x40 (frames, y, x)" in text
    assert "frame rate      30 Hz (frame period 33.333 ms)" in text
    assert "µm/px           1.5 x 1.5 (y, x)" in text
    assert main(["info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "bruker" and info["channels"] == ["Ch2"]
    assert info["frame_rate_hz"] == pytest.approx(30.0)
    assert info["pixel_size_um"] == pytest.approx([1.5, 1.5])


def test_demo_bruker_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), *SMALL, "--bruker"]) == 0
    xml = out / DEMO_BRUKER / f"{DEMO_BRUKER}.xml"
    before = xml.read_bytes()
    assert main(["demo", str(out), *SMALL, "--bruker", "--seed", "6"]) == 2
    err = capsys.readouterr().err
    assert DEMO_BRUKER in err and "already exists" in err and "Traceback" not in err
    assert xml.read_bytes() == before
    assert main(["demo", str(out), *SMALL, "--bruker", "--frames", "30", "--overwrite"]) == 0
    assert nc.open_recording(out / DEMO_BRUKER).n_frames == 30
    assert sorted(p.name for p in out.iterdir()) == [
        DEMO_BRUKER,
        "ground_truth.npz",
        "recording.json",
    ]  # fmt: skip  (no temporary folders left)
    # without --bruker, movie.tif is not there yet, but ground_truth.npz is: refused all the same
    assert main(["demo", str(out), *SMALL]) == 2
    assert "ground_truth.npz" in capsys.readouterr().err

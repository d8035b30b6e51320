"""open_recording / sniff_format: one door, cheap sniffing, 'not ours' is None."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import napari_calcium as nc
from conftest import FOUR_PLANE, ONE_PLANE, shared_data
from napari_calcium.errors import ParameterError, RecordingError
from napari_calcium.io.open import sniff_format


@pytest.fixture
def small_movie():
    return nc.simulate_recording(n_frames=40, shape=(24, 32), n_neurons=3, seed=1).movie


def test_sniff_real_data():
    assert sniff_format(shared_data(*FOUR_PLANE)) == "bruker"
    assert sniff_format(shared_data(*ONE_PLANE)) == "bruker"
    assert sniff_format(shared_data("neurofinder_crop", "movie.tif")) == "tiff"
    # suite2p output is never sniffed (its ops.npy is a pickle): only on explicit request
    assert sniff_format(shared_data("suite2p_output_calscipy", "plane0")) is None
    assert sniff_format(shared_data("neurofinder_crop", "regions.json")) is None


def test_sniff_files_we_write_and_things_that_are_not_ours(tmp_path, small_movie):
    (tmp_path / "b").mkdir()
    (tmp_path / "t").mkdir()
    nc.save_binary(tmp_path / "b" / "movie.bin", small_movie)
    assert sniff_format(tmp_path / "b" / "movie.bin") == "binary"
    assert sniff_format(tmp_path / "b" / "movie.json") == "binary"
    assert sniff_format(tmp_path / "b") == "binary"
    nc.save_images(tmp_path / "t" / "part.tif", small_movie)
    assert sniff_format(tmp_path / "t") == "tiff-folder"
    fake = tmp_path / "fake.tif"
    fake.write_text("not a tiff")
    assert sniff_format(fake) is None
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    assert sniff_format(tmp_path / "notes.json") is None
    assert sniff_format(tmp_path / "does-not-exist") is None
    (tmp_path / "empty").mkdir()
    assert sniff_format(tmp_path / "empty") is None
    assert sniff_format(None) is None  # never raises, whatever it is given


def test_open_recording_dispatches(tmp_path, small_movie):
    nc.save_binary(tmp_path / "m.bin", small_movie, frame_rate_hz=20.0, pixel_size_um=0.5)
    rec = nc.open_recording(tmp_path / "m.bin")
    assert rec.metadata.source_format == "binary"
    assert rec.metadata.frame_rate_hz == pytest.approx(20.0)
    np.testing.assert_array_equal(rec.movie.compute(), small_movie)
    tifffile.imwrite(tmp_path / "m.tif", small_movie, imagej=True, metadata={"finterval": 0.1})
    rec = nc.open_recording(tmp_path / "m.tif")
    assert rec.metadata.frame_period_s == pytest.approx(0.1)
    assert "Recording(" in repr(rec) and "40x24x32" in repr(rec)
    # tifffile stored that movie as 40 ImageJ "channels" (no axes given): read as frames
    assert list(rec.channels) == ["Ch1"] and "axes_reinterpreted" in rec.metadata.extra
    np.testing.assert_array_equal(rec.movie.compute(), small_movie)
    bruker = nc.open_recording(shared_data(*ONE_PLANE))
    assert bruker.shape == (10, 512, 512) and bruker.metadata.source_format == "bruker"


def test_open_recording_errors(tmp_path):
    with pytest.raises(RecordingError, match="no such file"):
        nc.open_recording(tmp_path / "missing.tif")
    odd = tmp_path / "odd.xyz"
    odd.write_text("?")
    with pytest.raises(RecordingError, match=r"odd\.xyz: not a recording napari-calcium can read"):
        nc.open_recording(odd)
    with pytest.raises(ParameterError, match="format="):
        nc.open_recording(odd, format="mpeg")
    plane = tmp_path / "suite2p" / "plane0"
    plane.mkdir(parents=True)
    (plane / "ops.npy").write_bytes(
        shared_data("suite2p_output_calscipy", "plane0", "ops.npy").read_bytes()
    )
    (plane / "data.bin").write_bytes(b"")
    with pytest.raises(ParameterError, match="allow_pickle"):
        nc.open_recording(plane, format="suite2p")

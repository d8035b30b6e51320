"""convert_recording / repackage_bruker_tifs: Bruker folders -> binary or TIFF stacks."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import napari_calcium as nc
from conftest import FOUR_PLANE, ONE_PLANE, shared_data
from napari_calcium.errors import OperationCancelled, OutputExistsError, ParameterError


@pytest.fixture(scope="module")
def four_plane():
    rec = nc.open_recording(shared_data(*FOUR_PLANE))
    return rec, rec.movie.compute()


def test_bruker_volumes_to_binary_one_stack_per_plane(tmp_path, four_plane):
    rec, data = four_plane
    written = nc.convert_recording(rec.path, tmp_path, to="binary")
    assert [p.name for p in written] == [f"{rec.path.name}_Ch2_plane{z}.bin" for z in range(4)]
    for z, path in enumerate(written):
        back = nc.open_recording(path)
        np.testing.assert_array_equal(back.movie.compute(), data[:, z])
        # timing and scale travel with the data
        assert back.metadata.frame_period_s == pytest.approx(rec.metadata.frame_period_s)
        assert back.metadata.pixel_size_um == pytest.approx(rec.metadata.pixel_size_um)
        assert path.with_suffix(".json").exists()


def test_to_tiff_splits_at_the_size_cap(tmp_path):
    src = shared_data(*ONE_PLANE)
    written = nc.convert_recording(src, tmp_path, to="tiff", size_cap_gb=0.0015)
    assert len(written) >= 2  # 10 frames of 512 KB, 1.5 MB per part
    movie = np.concatenate([tifffile.imread(p) for p in written])
    np.testing.assert_array_equal(movie, nc.open_recording(src).movie.compute())


def test_refuses_to_overwrite_before_writing_anything(tmp_path, four_plane):
    rec, _ = four_plane
    nc.convert_recording(rec.path, tmp_path, to="binary", planes=[3])
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OutputExistsError, match="plane3"):
        nc.convert_recording(rec.path, tmp_path, to="binary")  # planes 0-2 are new, 3 exists
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    nc.convert_recording(rec.path, tmp_path, to="binary", overwrite=True)
    assert len(list(tmp_path.glob("*.bin"))) == 4


def test_cancel_removes_everything_it_wrote(tmp_path, four_plane):
    rec, _ = four_plane
    calls = []

    def stop_after_a_while():
        calls.append(1)
        return len(calls) > 2  # lets the first plane finish, stops inside a later one

    with pytest.raises(OperationCancelled):
        nc.convert_recording(
            rec.path, tmp_path / "out", to="binary", should_stop=stop_after_a_while
        )
    assert not any((tmp_path / "out").iterdir())


def test_select_channels_and_planes(tmp_path, four_plane):
    rec, data = four_plane
    written = nc.convert_recording(rec.path, tmp_path, to="tiff", channels=[0], planes=[1])
    assert len(written) == 1
    np.testing.assert_array_equal(tifffile.imread(written[0]), data[:, 1])
    with pytest.raises(ParameterError, match="channel index 3 is out of range"):
        nc.convert_recording(rec.path, tmp_path, channels=[3])
    with pytest.raises(ParameterError, match="'Red' is not in"):
        nc.convert_recording(rec.path, tmp_path, channels=["Red"])
    with pytest.raises(ParameterError, match="to='avi'"):
        nc.convert_recording(rec.path, tmp_path, to="avi")


def test_repackage_bruker_tifs_calscipy_semantics(tmp_path, four_plane):
    rec, data = four_plane
    written = nc.repackage_bruker_tifs(rec.path, tmp_path, channel=0, plane=2)
    assert len(written) == 1
    np.testing.assert_array_equal(tifffile.imread(written[0]), data[:, 2])
    with tifffile.TiffFile(written[0]) as tif:
        assert tif.imagej_metadata["finterval"] == pytest.approx(rec.metadata.frame_period_s)
    with pytest.raises(ParameterError):
        nc.repackage_bruker_tifs(shared_data(*ONE_PLANE), tmp_path / "x", plane=1)

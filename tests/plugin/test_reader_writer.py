"""npe2 reader and writers: dropped folders/files -> lazy layers with scale, units, metadata."""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from conftest import FOUR_PLANE, ONE_PLANE, shared_data
from napari_calcium._napari._reader import get_reader, sample_times
from napari_calcium._napari._writer import write_binary, write_tiff
from napari_calcium.errors import RecordingError


def test_get_reader_returns_none_for_what_is_not_ours(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.tif").write_text("not a tiff")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "fake.tif")) is None
    assert get_reader(str(tmp_path)) is None  # a folder without a recording
    assert get_reader(str(tmp_path / "missing.tif")) is None
    two = [str(shared_data("neurofinder_crop", "movie.tif"))] * 2
    assert get_reader(two) is None
    assert callable(get_reader(str(shared_data(*FOUR_PLANE))))
    assert callable(get_reader([str(shared_data("neurofinder_crop", "movie.tif"))]))


def test_bruker_folder_layer_data_is_lazy_and_scaled(count_reads):
    folder = shared_data(*FOUR_PLANE)
    layers = get_reader(str(folder))(str(folder))
    assert len(layers) == 1
    data, kwargs, kind = layers[0]
    # opening reads only the chunk that holds the middle frame (8 time points of 4 planes), once,
    # for the display range: the chunk napari reads anyway to show the middle of the recording
    times = sample_times(data)
    assert len(times) == 3 and data.chunks[0][:2] == (8, 8) and 8 <= times[0] < times[-1] < 16
    assert len(count_reads) == 8 * 4 and len(set(count_reads)) == 32
    assert kind == "image" and data.shape == (30, 4, 256, 256)
    assert type(data).__module__.startswith("dask")
    meta = kwargs["metadata"]["napari_calcium"]
    period = meta["frame_period_s"]
    assert period == pytest.approx(0.181592112)
    np.testing.assert_allclose(
        kwargs["scale"], (period, meta["z_step_um"], 1.7664, 1.7664), rtol=1e-4
    )
    assert kwargs["units"] == ("second", "micrometer", "micrometer", "micrometer")
    assert kwargs["axis_labels"] == ("t", "z", "y", "x")
    # robust percentiles of the sampled pixels, not the 13-bit range (which looked almost black)
    sampled = np.stack([np.asarray(data[t]) for t in times])
    np.testing.assert_allclose(kwargs["contrast_limits"], np.percentile(sampled, (0.1, 99.9)))
    assert kwargs["contrast_limits"][1] < 0.25 * (2**13 - 1)
    assert kwargs["name"] == f"{folder.name} Ch2"
    assert meta["source_path"] == str(folder) and meta["channel"] == "Ch2"


def test_bad_recording_raises_our_error(tmp_path):
    folder = tmp_path / "TSeries-broken"
    folder.mkdir()
    for k in (1, 2, 4):  # frame 3 is missing: a gap inside the sequence
        src = shared_data(*ONE_PLANE) / f"EM0121_PRE-001_Cycle00001_Ch2_{59 + k:06d}.ome.tif"
        (folder / f"TSeries-broken_Cycle00001_Ch2_{k:06d}.ome.tif").write_bytes(src.read_bytes())
    reader = get_reader(str(folder))
    assert reader is not None
    with pytest.raises(RecordingError, match="TSeries-broken"):
        reader(str(folder))


@pytest.mark.gui
def test_viewer_opens_bruker_folder(make_napari_viewer, count_reads):
    folder = shared_data(*ONE_PLANE)
    viewer = make_napari_viewer(show=True)
    layers = viewer.open(str(folder), plugin="napari-calcium")
    assert [layer.name for layer in layers] == [f"{folder.name} Ch2"]
    layer = layers[0]
    assert layer.data.shape == (10, 512, 512)
    # this export has neither .xml nor .env: frame rate and pixel size are unknown, not invented
    assert [str(u) for u in layer.units] == ["pixel", "pixel", "pixel"]
    np.testing.assert_allclose(layer.scale, (1, 1, 1))
    assert tuple(layer.axis_labels) == ("t", "y", "x")
    assert layer.metadata["napari_calcium"]["source_format"] == "bruker"
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot[..., :3].std() > 5


@pytest.mark.gui
def test_viewer_reads_one_chunk_of_a_long_folder(make_napari_viewer, count_reads, tmp_path):
    """Opening a 400-frame folder in the viewer reads the frames it shows, not the folder."""
    import tifffile

    folder = tmp_path / "TSeries-long"
    folder.mkdir()
    for k in range(1, 401):
        tifffile.imwrite(
            folder / f"TSeries-long_Cycle00001_Ch2_{k:06d}.ome.tif", np.full((32, 48), k, np.uint16)
        )
    viewer = make_napari_viewer(show=True)
    (layer,) = viewer.open(str(folder), plugin="napari-calcium")
    assert layer.data.shape == (400, 32, 48)
    chunk = layer.data.chunks[0][0]
    # napari slices the new layer at frame 0, then the viewer moves to the middle frame (which
    # is also the one our reader takes the display range from): two chunks at most
    assert chunk < 200
    assert 0 < len(set(count_reads)) <= 2 * chunk
    viewer.dims.set_point(0, 399)
    np.testing.assert_array_equal(np.asarray(layer._slice.image.view), 400)


@pytest.mark.gui
def test_viewer_opens_four_plane_volume(make_napari_viewer, count_reads):
    folder = shared_data(*FOUR_PLANE)
    viewer = make_napari_viewer(show=True)
    (layer,) = viewer.open(str(folder), plugin="napari-calcium")
    np.testing.assert_allclose(layer.scale[0], 0.181592112)
    assert [str(u) for u in layer.units] == ["second"] + ["micrometer"] * 3
    assert len(set(count_reads)) < 120  # not all 30 x 4 files
    lo, hi = layer.contrast_limits
    # the range of what is there: most pixels are not black, few are saturated
    middle = np.asarray(layer.data[15])
    assert np.mean(middle > lo + 0.1 * (hi - lo)) > 0.05 and np.mean(middle >= hi) < 0.01


@pytest.mark.gui
def test_save_layer_with_our_writers(make_napari_viewer, tmp_path):
    rec = nc.simulate_recording(n_frames=30, shape=(32, 40), n_neurons=3, seed=2)
    viewer = make_napari_viewer()
    meta = {"napari_calcium": {"frame_period_s": 0.05, "pixel_size_um": [0.7, 0.7]}}
    layer = viewer.add_image(rec.movie, name="m", metadata=meta)
    for suffix in (".bin", ".tif"):
        path = tmp_path / f"saved{suffix}"
        written = viewer.layers.save(str(path), selected=False, plugin="napari-calcium")
        assert written and str(path) in written
        back = nc.open_recording(path)
        np.testing.assert_array_equal(back.movie.compute(), layer.data)
        assert back.metadata.frame_period_s == pytest.approx(0.05)
        assert back.metadata.pixel_size_um == pytest.approx((0.7, 0.7))


def test_writer_functions_directly(tmp_path):
    movie = nc.simulate_recording(n_frames=12, shape=(16, 16), n_neurons=1, seed=0).movie
    attrs = {"metadata": {"napari_calcium": {"frame_period_s": 0.1, "pixel_size_um": 2.0}}}
    files = write_binary(str(tmp_path / "a.bin"), movie, attrs)
    assert files == [str(tmp_path / "a.bin"), str(tmp_path / "a.json")]
    files = write_tiff(str(tmp_path / "a.tif"), movie, {})
    assert files == [str(tmp_path / "a.tif")]
    assert nc.open_recording(tmp_path / "a.tif").metadata.frame_period_s is None  # not invented


@pytest.mark.gui
def test_folder_preference_documented_in_io_md_works(make_napari_viewer):
    """docs/io.md: extension2reader {"*/": "napari-calcium"} makes dropped folders ours."""
    from napari.settings import get_settings

    settings = get_settings().plugins
    before = dict(settings.extension2reader)
    try:
        settings.extension2reader = {**before, "*/": "napari-calcium"}
        viewer = make_napari_viewer()
        # plugin=None is what drag-and-drop and File > Open do: use the preference
        layers = viewer.open(str(shared_data(*FOUR_PLANE)), plugin=None)
        assert len(layers) == 1
        assert layers[0].metadata["napari_calcium"]["source_format"] == "bruker"
    finally:
        settings.extension2reader = before

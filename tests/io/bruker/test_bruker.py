"""Bruker PrairieView reader: real folders and metadata files, synthetic layouts, CalSciPy names."""

from __future__ import annotations

import fnmatch
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile
from bruker_helpers import (
    FOUR_PLANE,
    ONE_PLANE,
    SHAPE,
    SWHARDEN,
    need,
    pv_xml,
    truncated_frames_xml,
    tseries_folder,
    value,
    write_frame,
)

from napari_calcium.errors import ParameterError, RecordingError
from napari_calcium.io.bruker import stack as bruker_stack
from napari_calcium.io.bruker.calscipy import (
    determine_imaging_content,
    generate_bruker_naming_convention,
    load_bruker_tifs,
)
from napari_calcium.io.bruker.naming import parse_bruker_filename
from napari_calcium.io.bruker.series import parse_prairieview_env, scan_bruker_folder
from napari_calcium.io.bruker.stack import bruker_metadata, is_bruker_folder, open_bruker


def _read(path):
    with tifffile.TiffFile(path, _multifile=False) as tif:
        return tif.pages[0].asarray()


# ---------------------------------------------------------------------------------------------
# real PrairieView folders


def test_four_plane_tseries_from_env_and_names():
    folder = need(FOUR_PLANE)
    rec = open_bruker(folder)
    movie = rec.channels["Ch2"]
    assert list(rec.channels) == ["Ch2"]
    assert movie.shape == (30, 4, 256, 256) and movie.dtype == np.uint16
    data = movie.compute()
    for t, cycle in enumerate(range(2, 32)):  # cycles 2..31 are the time points
        for z in range(4):  # the 6-digit index is the plane
            name = f"{folder.name}_Cycle{cycle:05d}_Ch2_{z + 1:06d}.ome.tif"
            np.testing.assert_array_equal(data[t, z], _read(folder / name))
    m = rec.metadata
    assert m.source_format == "bruker" and m.source_version == "5.5.64.600"
    assert m.frame_period_s == pytest.approx(0.181592112)  # .env repetitionPeriod: per volume
    np.testing.assert_allclose(m.timestamps_s, np.arange(1, 31) * 0.181592112)
    assert m.pixel_size_um == pytest.approx((1.7664, 1.7664), abs=1e-4)
    assert m.bit_depth == 13 and m.n_planes == 4 and m.channel_names == ("Ch2",)
    assert m.z_step_um == 35.0 and m.extra["z_step_source"].startswith("micronsPerPixel")
    assert m.extra["frame_period_nominal_s"] == pytest.approx(0.017699014)
    assert m.extra["repetitions_planned"] == 6609 and m.extra["first_cycle"] == 2
    assert m.extra["objective"] == "Olympus fat 25xb" and m.extra["optical_zoom"] == 1.02
    assert m.extra["layout"] == "volume-series"
    assert m.extra["prairieview_state"]["linesPerFrame"] == 256


def test_one_plane_tseries_from_names_only():
    folder = need(ONE_PLANE)
    rec = open_bruker(folder)
    assert rec.shape == (10, 512, 512) and rec.movie.dtype == np.uint16
    data = rec.movie.compute()
    for t, index in enumerate(range(60, 70)):  # the sequence starts at frame 60: not an error
        np.testing.assert_array_equal(
            data[t], _read(folder / f"EM0121_PRE-001_Cycle00001_Ch2_{index:06d}.ome.tif")
        )
    m = rec.metadata
    assert m.frame_period_s is None and m.timestamps_s is None and m.pixel_size_um is None
    assert m.bit_depth is None and m.z_step_um is None  # nothing states them: not invented
    assert m.source_version == "5.5.64.60"  # from the TIFF Software tag
    assert m.extra["first_index"] == 60


def test_opening_reads_no_pixels_and_one_header(monkeypatch):
    folder = need(FOUR_PLANE)
    opened = []
    real_init = tifffile.TiffFile.__init__

    def counting_init(self, arg, *args, **kwargs):
        opened.append(arg)
        real_init(self, arg, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("pixel data read while opening")

    monkeypatch.setattr(tifffile.TiffFile, "__init__", counting_init)
    for target, attr in [
        (tifffile.TiffPage, "asarray"),
        (tifffile, "imread"),
        (bruker_stack, "_read_frame"),  # every pixel read goes through it
    ]:
        monkeypatch.setattr(target, attr, forbidden)
    rec = open_bruker(folder)
    assert len(opened) <= 1
    monkeypatch.undo()
    assert rec.movie[3, 2].compute().shape == (256, 256)


def test_fast_path_reads_real_prairieview_files(monkeypatch):
    """PrairieView's uncompressed strips are read without tifffile, with identical values."""
    folder = need(ONE_PLANE)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", lambda *a, **k: pytest.fail("slow path"))
    data = open_bruker(folder).movie[:2].compute()
    monkeypatch.undo()
    np.testing.assert_array_equal(data[1], _read(sorted(folder.glob("*.ome.tif"))[1]))


def test_is_bruker_folder(tmp_path):
    assert is_bruker_folder(need(FOUR_PLANE)) and is_bruker_folder(ONE_PLANE)
    for sub in SWHARDEN.iterdir():
        if sub.is_dir():
            assert is_bruker_folder(sub), sub
    assert is_bruker_folder(next(SWHARDEN.glob("TSeries-0114*/*.xml")))
    (tmp_path / "notes.xml").write_text("<notes/>")
    (tmp_path / "movie.tif").write_bytes(b"II*\x00")
    (tmp_path / ".env").write_text("API_KEY=not-prairieview\n")  # a dotenv file
    assert not is_bruker_folder(tmp_path)
    assert not is_bruker_folder(tmp_path / "notes.xml")
    assert not is_bruker_folder(tmp_path / "missing")
    assert not is_bruker_folder(SWHARDEN.parent)  # a folder of folders
    assert not is_bruker_folder("\x00bad")


# ---------------------------------------------------------------------------------------------
# real PrairieView metadata files (XML / .env / .cfg), images absent

SETS = {
    "TSeries-01142019-1352-1365": dict(
        version="5.4.64.500", type="TSeries Timed Element", shape=(2, 1812, 1),
        channels=("Ch1", "Ch2"), nominal=0.928030691589522, pixel=1.17879356364206, bits=13,
    ),
    "TSeries-01252019-1046-1395": dict(
        version="5.4.64.500", type="TSeries Timed Element", shape=(1, 498, 1), channels=("Ch2",),
        nominal=0.01757076, pixel=1.37795275590551, bits=13,
    ),
    "SingleImage-01142019-1352-387": dict(
        version="5.4.64.500", type="Single", shape=(2, 1, 1), channels=("Ch1", "Ch2"),
        nominal=51.4134881792032, pixel=0.147349195455257, bits=13,
    ),
    "ZSeries-09252014-1411-508": dict(
        version="4.3.2.13", type="ZSeries", shape=(2, 1, 4), channels=("Ch1", "Ch2"),
        nominal=25.492335878036, pixel=1.37254901960784, bits=12,
    ),
    "t1BL_dendriteD_1": dict(
        version="5.3.64.400", type="Linescan", shape=(2, 1, 1), channels=("Ch1", "Ch2"),
        nominal=1.02184109702334, pixel=None, bits=12,  # the frame's own says 3.97 s
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SETS))
def test_prairieview_metadata_sets(name):
    want = SETS[name]
    folder = need(SWHARDEN / name)
    series = scan_bruker_folder(folder)
    m = bruker_metadata(series)
    xml = next(p for p in folder.glob("*.xml"))
    frames = ET.parse(xml).getroot().iter("Frame")
    rel = np.array([float(f.get("relativeTime")) for f in frames])
    assert m.source_version == want["version"]
    assert m.extra["sequence_type"] == want["type"]
    assert series.filenames.shape == want["shape"]
    assert m.channel_names == want["channels"] and m.bit_depth == want["bits"]
    assert m.extra["frame_period_nominal_s"] == pytest.approx(want["nominal"])
    px = want["pixel"]
    assert m.pixel_size_um == (None if px is None else pytest.approx((px, px)))
    if series.n_times > 1:
        np.testing.assert_allclose(m.timestamps_s, rel)  # per-frame relativeTime
        assert m.frame_period_s == pytest.approx(np.median(np.diff(rel)))
    else:
        assert m.frame_period_s is None  # one time point: no time between time points
    assert series.filenames[0, 0, 0].startswith(xml.stem)


def test_timed_tseries_per_frame_times_beat_nominal_period():
    m = bruker_metadata(scan_bruker_folder(need(SWHARDEN / "TSeries-01142019-1352-1365")))
    assert m.extra["frame_period_nominal_s"] == pytest.approx(0.928030691589522)
    assert m.frame_period_s == pytest.approx(1.00025097887275)  # what relativeTime says
    assert m.extra["laser_power"]["Insight X3"] == 300.0
    assert m.extra["objective"] == "40X LUMPlanFL/IR" and m.extra["system"]


def test_old_zseries_keys_and_positions():
    series = scan_bruker_folder(need(SWHARDEN / "ZSeries-09252014-1411-508"))
    m = bruker_metadata(series)
    assert series.layout == "z-stack" and m.n_planes == 4
    assert m.extra["z_positions_um"] == [-25.78, -22.78, -19.78, -16.78]
    assert m.z_step_um == pytest.approx(3.0) and m.extra["z_step_source"] == "positionCurrent"
    assert m.extra["metadata_files"][1].endswith("Config.cfg")


def test_env_with_invalid_character_references_parses():
    env = parse_prairieview_env(
        need(SWHARDEN / "t1BL_dendriteD_1") / "LineScan-07132018-1141-2505.env"
    )
    assert env.version is None and env.state["bitDepth"] == "12"  # PV 5.3: no version attribute
    env = parse_prairieview_env(next(need(FOUR_PLANE).glob("*.env")))
    assert ("PVTSeriesElementZSeries", env.tseries[0][1]) == env.tseries[0]
    assert env.tseries[0][1]["repetitionPeriod"] == "0.181592112"


# ---------------------------------------------------------------------------------------------
# synthetic folders under the real XMLs' file names


def test_two_channel_tseries_from_real_xml(tmp_path):
    src = need(SWHARDEN / "TSeries-01142019-1352-1365")
    folder = tmp_path / src.name
    folder.mkdir()
    (folder / f"{src.name}.xml").write_text(truncated_frames_xml(src / f"{src.name}.xml", 20))
    shutil.copy(src / f"{src.name}.env", folder)
    for t in range(20):
        for c in (1, 2):
            write_frame(folder / f"{src.name}_Cycle00001_Ch{c}_{t + 1:06d}.ome.tif", value(t, 0, c))
    with pytest.warns(UserWarning, match="metadata say 256x256"):  # our frames are tiny
        rec = open_bruker(folder)
    assert list(rec.channels) == ["Ch1", "Ch2"] and rec.shape == (20, *SHAPE)
    for c, movie in enumerate(rec.channels.values(), start=1):
        np.testing.assert_array_equal(movie[:, 0, 0].compute(), [value(t, 0, c) for t in range(20)])
    assert rec.metadata.timestamps_s[:3] == pytest.approx([0, 1.00025097887275, 2.0005019577])
    assert rec.metadata.frame_period_s == pytest.approx(1.00025097887275)


def test_zseries_and_single_image_layouts_from_real_xml(tmp_path):
    src = need(SWHARDEN / "ZSeries-09252014-1411-508")
    folder = shutil.copytree(src, tmp_path / src.name)
    for z in range(4):
        for c in (1, 2):
            name = f"{src.name}_Cycle00001_CurrentSettings_Ch{c}_{z + 1:06d}.tif"
            write_frame(folder / name, value(0, z, c))
    with pytest.warns(UserWarning, match="1024x1024"):
        rec = open_bruker(folder)
    assert rec.shape == (1, 4, *SHAPE) and rec.metadata.z_step_um == pytest.approx(3.0)
    np.testing.assert_array_equal(rec.channels["Ch2"][0, :, 0, 0].compute(), [2, 12, 22, 32])
    src = SWHARDEN / "SingleImage-01142019-1352-387"
    folder = shutil.copytree(src, tmp_path / src.name)
    for c in (1, 2):
        write_frame(folder / f"{src.name}_Cycle00001_Ch{c}_000001.ome.tif", value(0, 0, c))
    with pytest.warns(UserWarning, match="2048x2048"):
        rec = open_bruker(folder / f"{src.name}.xml")  # the .xml picks the recording too
    assert rec.shape == (1, *SHAPE) and rec.channels["Ch1"][0, 0, 0].compute() == 1


def _volume_folder(tmp_path, *, bidirectional: bool, flag: bool, n_t=4, n_z=3):
    """Volumes whose even cycles run bottom-up when ``bidirectional``; pixel = true plane."""
    folder = tmp_path / "TSeries-vol-001"
    folder.mkdir()
    seqs = []
    for t in range(n_t):
        order = list(range(n_z))[::-1] if bidirectional and t % 2 else list(range(n_z))
        frames = []
        for k, z in enumerate(order):  # k: acquisition order = the file's 6-digit index
            name = f"{folder.name}_Cycle{t + 1:05d}_Ch2_{k + 1:06d}.ome.tif"
            write_frame(folder / name, value(t, z))
            frames.append(
                {"rel": t * 2.0 + 0.1 * k, "z": 100 + 5 * z, "files": [(2, "Green", name)]}
            )
        attrs = {"bidirectionalZ": "True"} if flag else {}
        seqs.append(("TSeries ZSeries Element", t + 1, attrs, frames))
    (folder / f"{folder.name}.xml").write_text(pv_xml(seqs))
    return folder


@pytest.mark.parametrize("flag", [True, False], ids=["flag", "positions"])
def test_bidirectional_z_keeps_plane_meaning(tmp_path, flag):
    rec = open_bruker(_volume_folder(tmp_path, bidirectional=True, flag=flag))
    assert list(rec.channels) == ["Green"] and rec.shape == (4, 3, *SHAPE)
    got = rec.movie[:, :, 0, 0].compute()
    np.testing.assert_array_equal(got, [[value(t, z) for z in range(3)] for t in range(4)])
    m = rec.metadata
    assert m.extra["bidirectional_z"] and m.z_step_um == pytest.approx(5.0)
    assert m.frame_period_s == pytest.approx(2.0)  # between volume starts
    np.testing.assert_allclose(m.timestamps_s, [0, 2, 4, 6])


def test_unidirectional_volumes_keep_file_order(tmp_path):
    rec = open_bruker(_volume_folder(tmp_path, bidirectional=False, flag=False))
    got = rec.movie[:, :, 0, 0].compute()
    np.testing.assert_array_equal(got, [[value(t, z) for z in range(3)] for t in range(4)])
    assert not rec.metadata.extra["bidirectional_z"]


@pytest.mark.parametrize("pages", [True, False], ids=["page-attribute", "file-order"])
def test_multipage_ome_tif(tmp_path, pages):
    folder = tmp_path / "TSeries-mp-001"
    folder.mkdir()
    frames = []
    for c in (1, 2):
        stack = np.stack([np.full(SHAPE, value(t, 0, c), np.uint16) for t in range(7)])
        tifffile.imwrite(folder / f"{folder.name}_Cycle00001_Ch{c}_000001.ome.tif", stack)
    for t in range(7):
        files = [
            (c, f"Ch{c}", f"{folder.name}_Cycle00001_Ch{c}_000001.ome.tif", t + 1)[
                : 4 if pages else 3
            ]
            for c in (1, 2)
        ]
        frames.append({"rel": 0.25 * t, "files": files})
    (folder / f"{folder.name}.xml").write_text(pv_xml([("TSeries Timed Element", 1, {}, frames)]))
    rec = open_bruker(folder, frames_per_chunk=3)
    for c, movie in enumerate(rec.channels.values(), start=1):
        np.testing.assert_array_equal(movie[:, 0, 0].compute(), [value(t, 0, c) for t in range(7)])


def test_sequence_starting_late_is_fine_and_keeps_its_times(tmp_path):
    folder = tseries_folder(tmp_path, n=8)
    for t in range(3):  # the copy starts at frame 4
        next(folder.glob(f"*_{t + 1:06d}.ome.tif")).unlink()
    with pytest.warns(UserWarning, match="3 time point"):
        rec = open_bruker(folder)
    assert rec.n_frames == 5
    np.testing.assert_array_equal(
        rec.movie[:, 0, 0].compute(), [value(t, 0, 2) for t in range(3, 8)]
    )
    np.testing.assert_allclose(rec.metadata.timestamps_s, 0.5 * np.arange(3, 8))
    assert rec.metadata.extra["time_points_dropped"] == [3, 0]


def test_tiff_variants_big_endian_compressed_and_chunking(tmp_path):
    folder = tseries_folder(tmp_path, n=6, xml=False)
    names = sorted(folder.glob("*.ome.tif"))
    write_frame(names[2], value(2, 0, 2), byteorder=">")
    write_frame(names[3], value(3, 0, 2), compression="zlib")
    write_frame(names[4], value(4, 0, 2), tile=(16, 16))
    for k in (1, 4, None):
        rec = open_bruker(folder, frames_per_chunk=k)
        got = rec.movie[:, 5, 7].compute()
        np.testing.assert_array_equal(got, [value(t, 0, 2) for t in range(6)])


# ---------------------------------------------------------------------------------------------
# CalSciPy-compatible functions


def test_calscipy_functions_on_real_folder():
    folder = need(FOUR_PLANE)
    assert determine_imaging_content(folder) == (1, 4, 30, 256, 256)
    planes = load_bruker_tifs(folder)
    assert len(planes) == 4 and all(p.shape == (30, 256, 256) for p in planes)
    (plane2,) = load_bruker_tifs(folder, channel=0, plane=2)
    np.testing.assert_array_equal(plane2, planes[2])
    np.testing.assert_array_equal(
        plane2[0], _read(folder / f"{folder.name}_Cycle00002_Ch2_000003.ome.tif")
    )
    with pytest.raises(ParameterError, match="plane=4"):
        load_bruker_tifs(folder, plane=4)
    (movie,) = load_bruker_tifs(need(ONE_PLANE))
    assert movie.shape == (10, 512, 512)


def test_generate_bruker_naming_convention():
    names = [p.name for p in need(FOUR_PLANE).glob("*.ome.tif")]
    pattern = generate_bruker_naming_convention(0, 2, num_channels=1, num_planes=4)
    assert pattern == "*_Ch*_000003.ome.tif"
    assert len(fnmatch.filter(names, pattern)) == 30
    assert generate_bruker_naming_convention(0, 0) == "*.ome.tif"
    assert generate_bruker_naming_convention(1, 0, 2, 1) == "*_Ch2_*.ome.tif"
    assert generate_bruker_naming_convention(1, 11, 2, 12) == "*_Ch2_000012.ome.tif"
    with pytest.raises(ParameterError):
        generate_bruker_naming_convention(1, 0, num_channels=1)
    with pytest.raises(ParameterError):
        generate_bruker_naming_convention(0, -1, num_planes=3)


def test_parse_bruker_filename():
    p = parse_bruker_filename("ZSeries-1_Cycle00003_CurrentSettings_Ch1_000012.tif")
    assert (p["base"], p["cycle"], p["label"], p["channel"], p["index"]) == (
        "ZSeries-1",
        3,
        "CurrentSettings",
        1,
        12,
    )
    assert parse_bruker_filename("a_b_Cycle00001_Ch2_000001.ome.tif")["base"] == "a_b"
    assert parse_bruker_filename("x_Cycle00001_VoltageRecording_001.xml") is None
    assert parse_bruker_filename("x-Ch2-16bit-Reference.tif") is None


def test_recording_error_from_a_worker_names_the_file(tmp_path):
    folder = tseries_folder(tmp_path, n=4)
    rec = open_bruker(folder)
    victim = sorted(folder.glob("*.ome.tif"))[2]
    victim.unlink()
    with pytest.raises(RecordingError, match="missing") as info:
        rec.movie.compute()
    assert info.value.path == str(victim)

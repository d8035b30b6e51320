"""Bruker reader on bad input: our exception, naming the file and the problem."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
from bruker_helpers import (
    SWHARDEN,
    need,
    pv_xml,
    truncated_frames_xml,
    tseries_folder,
    value,
    write_frame,
)

from napari_calcium.errors import MetadataError, RecordingError
from napari_calcium.io.bruker.series import parse_prairieview_env, parse_prairieview_xml
from napari_calcium.io.bruker.stack import is_bruker_folder, open_bruker


def _frames(folder):
    return sorted(folder.glob("*.ome.tif"))


@pytest.mark.parametrize("with_xml", [True, False], ids=["xml", "names"])
def test_gap_inside_the_sequence(tmp_path, with_xml):
    folder = tseries_folder(tmp_path, n=10, xml=with_xml)
    gone = _frames(folder)[4]
    gone.unlink()
    with pytest.raises(RecordingError, match="gap in the frame sequence") as info:
        open_bruker(folder)
    assert info.value.path == str(gone)


def test_gap_in_a_volume_names_the_plane_file(tmp_path):
    src = need(SWHARDEN.parent / "bruker_calscipy_4plane_tseries")
    folder = tmp_path / "vol"
    folder.mkdir()
    env = next(src.glob("*/*.env"))
    shutil.copy(env, folder / "vol.env")
    for cycle in range(1, 5):
        for z in range(1, 4):
            write_frame(folder / f"vol_Cycle{cycle:05d}_Ch2_{z:06d}.ome.tif", value(cycle, z))
    (folder / "vol_Cycle00003_Ch2_000002.ome.tif").unlink()
    with pytest.raises(RecordingError, match="time point 3 of 4") as info:
        open_bruker(folder)
    assert info.value.path.endswith("vol_Cycle00003_Ch2_000002.ome.tif")
    # an incomplete last volume (acquisition stopped) is left out with a warning instead
    (folder / "vol_Cycle00003_Ch2_000002.ome.tif").write_bytes(b"")
    (folder / "vol_Cycle00004_Ch2_000003.ome.tif").unlink()
    with pytest.warns(UserWarning) as caught:  # also: tiny frames vs 256x256 in the .env
        rec = open_bruker(folder)
    assert any("1 at the end" in str(w.message) for w in caught)
    assert rec.shape == (3, 3, 6, 8)


def test_missing_channel_file(tmp_path):
    folder = tseries_folder(tmp_path, n=5, channels=(1, 2), xml=False)
    gone = folder / "TSeries-x-001_Cycle00001_Ch1_000003.ome.tif"
    gone.unlink()
    with pytest.raises(RecordingError, match="missing") as info:
        open_bruker(folder)
    assert info.value.path == str(gone)


@pytest.mark.parametrize("where", [0, 3], ids=["first-file-at-open", "later-file-at-compute"])
@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:200]), "truncated|not a readable TIFF|cannot be"),
        (lambda p: p.write_bytes(b"hello, I am not a TIFF\n" * 5), "not a (readable )?TIFF"),
        (lambda p: p.write_bytes(b""), "not a (readable )?TIFF"),
        (lambda p: write_frame(p, 1, shape=(6, 9)), "different sizes"),
        (lambda p: write_frame(p, 1, dtype=np.uint8), "different sizes"),
    ],
    ids=["truncated", "not-tiff", "empty", "other-size", "other-dtype"],
)
def test_damaged_files_are_named(tmp_path, where, damage, message):
    folder = tseries_folder(tmp_path, n=6)
    victim = _frames(folder)[where]
    damage(victim)
    with pytest.raises(RecordingError, match=message) as info:
        open_bruker(folder, frames_per_chunk=2).movie.compute()
    if where == 0 and "sizes" in message:  # the first file sets the size: others are named
        assert f"first frame ({victim.name})" in str(info.value)
    else:
        assert info.value.path == str(victim) and str(victim) in str(info.value)


def test_error_pickles_through_processes(tmp_path):
    err = RecordingError(tmp_path / "x.ome.tif", "is truncated")
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_xml_that_is_not_prairieview(tmp_path):
    folder = tseries_folder(tmp_path, n=3, xml=False)
    xml = folder / f"{folder.name}.xml"
    xml.write_text('<?xml version="1.0"?>\n<Experiment><Frame/></Experiment>')
    with pytest.raises(MetadataError, match="not a PrairieView XML") as info:
        open_bruker(folder)
    assert info.value.path == str(xml)
    with pytest.raises(MetadataError, match="root element is <Experiment>"):
        parse_prairieview_xml(xml)
    xml.write_text('<!DOCTYPE x [<!ENTITY a "aaaa">]><PVScan>&a;</PVScan>')
    with pytest.raises(MetadataError, match="DOCTYPE"):
        parse_prairieview_xml(xml)
    with pytest.raises(MetadataError, match="not a PrairieView environment"):
        parse_prairieview_env(xml)


@pytest.mark.parametrize("keep", [0.5, 0.999, 0.02])
def test_xml_cut_short(tmp_path, keep):
    src = need(SWHARDEN / "TSeries-01252019-1046-1395" / "TSeries-01252019-1046-1395.xml")
    folder = tmp_path / src.parent.name
    folder.mkdir()
    data = src.read_bytes()
    (folder / src.name).write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(MetadataError, match="malformed or cut short") as info:
        open_bruker(folder)
    assert info.value.path == str(folder / src.name)


def test_env_cut_short_and_garbage(tmp_path):
    folder = tseries_folder(tmp_path, n=3, xml=False)
    env = folder / f"{folder.name}.env"
    env.write_bytes(b'\xef\xbb\xbf<?xml version="1.0"?>\n<Environment version="5.5"><PVStateSh')
    with pytest.raises(MetadataError, match="cut short") as info:
        open_bruker(folder)
    assert info.value.path == str(env)
    env.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(MetadataError, match="environment file"):
        open_bruker(folder)


def test_env_without_the_fields_falls_back_to_names(tmp_path):
    folder = tseries_folder(tmp_path, n=4, xml=False)
    (folder / f"{folder.name}.env").write_text(
        '<Environment version="5.7"><PVStateShard/></Environment>'
    )
    rec = open_bruker(folder)
    assert rec.shape == (4, 6, 8)
    m = rec.metadata
    assert m.source_version == "5.7"
    assert (m.frame_period_s, m.pixel_size_um, m.bit_depth, m.timestamps_s) == (None,) * 4
    only_env = tmp_path / "only-env"
    only_env.mkdir()
    (only_env / "x.env").write_text('<Environment version="5.7"><PVStateShard/></Environment>')
    with pytest.raises(RecordingError, match="nothing to read frames from"):
        open_bruker(only_env)


def test_xml_listing_missing_images(tmp_path):
    folder = shutil.copytree(need(SWHARDEN / "TSeries-01252019-1046-1395"), tmp_path / "t")
    with pytest.raises(RecordingError, match="no frame can be read") as info:
        open_bruker(folder)
    assert info.value.path.endswith("TSeries-01252019-1046-1395_Cycle00001_Ch2_000001.ome.tif")


def test_empty_missing_and_foreign_folders(tmp_path):
    with pytest.raises(RecordingError, match="is empty") as info:
        open_bruker(tmp_path)
    assert info.value.path == str(tmp_path)
    with pytest.raises(RecordingError, match="does not exist"):
        open_bruker(tmp_path / "nope")
    (tmp_path / "movie.tif").write_bytes(b"II*\x00")
    with pytest.raises(RecordingError, match="no PrairieView recording"):
        open_bruker(tmp_path)
    with pytest.raises(RecordingError, match="not a PrairieView folder"):
        open_bruker(tmp_path / "movie.tif")


def test_two_recordings_in_one_folder(tmp_path):
    folder = tseries_folder(tmp_path, n=3)
    (folder / ".env").write_text("API_KEY=x\n")  # not a PrairieView .env: ignored
    assert open_bruker(folder).shape == (3, 6, 8)
    other = "TSeries-y-002"
    for t in range(2):
        write_frame(folder / f"{other}_Cycle00001_Ch2_{t + 1:06d}.ome.tif", 7)
    with pytest.raises(RecordingError, match=r"more than one recording \(TSeries-x-001, TSeries-y"):
        open_bruker(folder)
    assert open_bruker(folder / "TSeries-x-001.xml").shape == (3, 6, 8)


def test_inconsistent_xml_tables(tmp_path):
    folder = tmp_path / "TSeries-bad-001"
    folder.mkdir()
    f = f"{folder.name}_Cycle00001_Ch2_000001.ome.tif"
    write_frame(folder / f, 1)
    xml = folder / f"{folder.name}.xml"
    mixed = [
        ("TSeries ZSeries Element", 1, {}, [{"rel": 0, "files": [(2, "Ch2", f)]}]),
        ("TSeries Timed Element", 2, {}, [{"rel": 1, "files": [(2, "Ch2", f)]}]),
    ]
    xml.write_text(pv_xml(mixed))
    with pytest.raises(MetadataError, match="mixes sequence types"):
        open_bruker(folder)
    one_channel_short = [
        ("TSeries Timed Element", 1, {}, [
            {"rel": 0, "files": [(1, "Ch1", f), (2, "Ch2", f)]},
            {"rel": 1, "files": [(2, "Ch2", f)]},
        ]),
    ]  # fmt: skip
    xml.write_text(pv_xml(one_channel_short))
    with pytest.raises(MetadataError, match=r"no file for channel\(s\) \[1\]"):
        open_bruker(folder)
    xml.write_text(pv_xml([]))
    with pytest.raises(MetadataError, match="lists no frames"):
        open_bruker(folder)
    xml.write_text(pv_xml(mixed).replace('filename="', 'file="'))
    with pytest.raises(MetadataError, match="without a channel or filename"):
        open_bruker(folder)


def test_truncated_real_xml_copy_still_parses_when_well_formed(tmp_path):
    src = need(SWHARDEN / "TSeries-01142019-1352-1365" / "TSeries-01142019-1352-1365.xml")
    xml = tmp_path / src.name
    xml.write_text(truncated_frames_xml(src, 3))
    doc = parse_prairieview_xml(xml)
    assert [len(s.frames) for s in doc.sequences] == [3]
    assert is_bruker_folder(tmp_path)

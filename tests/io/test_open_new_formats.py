"""``open_recording``, ``sniff_format`` and the napari reader on the formats of issue 19.

Miniscope folders (and their ``.avi`` segments), plain video files and NWB files go through the
same door as Bruker, binary and TIFF recordings: sniffed from names and a few bytes, opened
lazily by their own reader.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_calcium import open_recording
from napari_calcium._napari._reader import get_reader
from napari_calcium.errors import RecordingError
from napari_calcium.io.open import sniff_format


def _nwb(path, movie):
    from datetime import datetime, timezone

    import pynwb  # the testing extra installs it (and av): these tests never skip
    from pynwb.ophys import OpticalChannel, TwoPhotonSeries

    nwb = pynwb.NWBFile("s", "id", datetime(2026, 1, 1, tzinfo=timezone.utc))
    device = nwb.create_device(name="scope")
    plane = nwb.create_imaging_plane(
        name="plane", optical_channel=OpticalChannel("ch", "green", 525.0), device=device,
        excitation_lambda=920.0, indicator="GCaMP6f", location="V1", imaging_rate=30.0,
    )  # fmt: skip
    nwb.add_acquisition(
        TwoPhotonSeries(name="movie", data=movie, imaging_plane=plane, rate=30.0, unit="a.u.")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(path, "w") as io:
            io.write(nwb)
    return path


def test_nwb_through_open_recording_and_the_reader(tmp_path):
    movie = np.random.default_rng(0).integers(0, 1000, (9, 5, 7)).astype(np.uint16)
    path = _nwb(tmp_path / "session.nwb", movie)
    assert sniff_format(path) == "nwb"
    rec = open_recording(path)
    np.testing.assert_array_equal(rec.movie.compute(), movie)
    assert rec.metadata.frame_rate_hz == pytest.approx(30.0)
    reader = get_reader(str(path))
    assert reader is not None
    (data, _kwargs, kind), *_ = reader(str(path))
    assert kind == "image" and data.shape == movie.shape
    # a .nwb that is not HDF5 is not sniffed, and open_recording names it
    fake = tmp_path / "fake.nwb"
    fake.write_bytes(b"not an hdf5 file")
    assert sniff_format(fake) is None and get_reader(str(fake)) is None
    with pytest.raises(RecordingError, match=r"fake\.nwb"):
        open_recording(fake)


def test_miniscope_folder_segment_and_plain_video(tmp_path):
    from napari_calcium import write_miniscope

    movie = np.random.default_rng(1).integers(0, 255, (25, 16, 24)).astype(np.uint8)
    folder = write_miniscope(tmp_path / "exp", movie, frame_rate_hz=20.0, segment_frames=10)
    device = next(p for p in folder.iterdir() if p.is_dir())
    segment = device / "1.avi"
    # the experiment folder, the device folder and a segment are Miniscope recordings
    assert sniff_format(folder) == sniff_format(device) == sniff_format(segment) == "miniscope"
    rec = open_recording(folder)
    np.testing.assert_array_equal(np.asarray(rec.movie), movie)  # FFV1: lossless
    assert rec.metadata.source_format == "miniscope"
    assert rec.metadata.frame_rate_hz == pytest.approx(20.0, rel=0.02)
    one = open_recording(segment)  # a segment alone: its 10 frames
    np.testing.assert_array_equal(np.asarray(one.movie), movie[10:20])
    # the same .avi outside a Miniscope folder is a plain video
    plain = tmp_path / "plain.avi"
    plain.write_bytes(segment.read_bytes())
    assert sniff_format(plain) == "video"
    np.testing.assert_array_equal(np.asarray(open_recording(plain).movie), movie[10:20])
    # the napari reader takes the folder: one lazy Image layer
    (data, _kwargs, kind), *_ = get_reader(str(folder))(str(folder))
    assert kind == "image" and data.shape == movie.shape
    # a file named .avi that is not a video: our error, naming it
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"RIFF0000AVI junk")
    with pytest.raises(RecordingError, match=r"junk\.avi"):
        open_recording(junk)

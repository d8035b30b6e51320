"""Bruker folders whose file names or XML carry absurd numbers (issue 15).

Every allocation that a file name or an XML number drives is bounded by what the files on disk
can hold: a stray file with a far frame index or cycle number is left out with a warning naming
it (the full series kept), or the folder is refused with our error naming a file; never a
multi-gigabyte frame table. The opens run in a child process under a 4 GiB address-space limit
(``RLIMIT_AS``) and a timeout, so an unbounded allocation fails the test instead of the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_calcium.errors import RecordingError
from napari_calcium.io.bruker.naming import parse_bruker_filename
from napari_calcium.io.bruker.stack import open_bruker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io" / "bruker"))
from bruker_helpers import pv_xml, tseries_folder, value, write_frame

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")

LIMIT_BYTES = 4 * 2**30
NAME = "TSeries-x-001"

CHILD = textwrap.dedent(
    """
    import json, resource, warnings
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from napari_calcium.io.bruker.stack import open_bruker
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rec = open_bruker({folder!r})
            first = next(iter(rec.channels.values()))
            out = {{"outcome": "returned", "shape": list(first.shape),
                    "first_pixels": first[:, 0, 0].compute().tolist()
                    if first.ndim == 3 else None}}
        except Exception as exc:
            out = {{"outcome": type(exc).__module__ + "." + type(exc).__name__,
                    "message": str(exc), "path": str(getattr(exc, "path", ""))}}
    out["warnings"] = [str(w.message) for w in caught]
    print(json.dumps(out))
    """
)


def _open_in_child(folder: Path) -> dict:
    """``open_bruker(folder)`` in a child under the 4 GiB cap: outcome, shape, warnings."""
    code = CHILD.format(limit=LIMIT_BYTES, folder=str(folder))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _stray(folder: Path, cycle: int, index: int, channel: int = 2) -> str:
    name = f"{NAME}_Cycle{cycle:05d}_Ch{channel}_{index:06d}.ome.tif"
    write_frame(folder / name, 7)
    return name


@pytest.mark.parametrize("xml", [False, True], ids=["names-only", "with-xml"])
@pytest.mark.parametrize(
    ("cycle", "index"),
    [(1, 999_999), (99_999, 1), (99_999, 999_999), (50_000, 500_000)],
    ids=["far-index", "far-cycle", "far-both", "far-middle"],
)
def test_a_stray_file_with_a_far_number_is_left_out_and_the_series_kept(
    tmp_path, xml, cycle, index
):
    folder = tseries_folder(tmp_path, n=20, xml=xml)
    stray = _stray(folder, cycle, index)
    result = _open_in_child(folder)
    assert result["outcome"] == "returned", result
    assert result["shape"] == [20, 6, 8]
    assert result["first_pixels"] == [value(t, 0, 2) for t in range(20)]
    assert any(stray in w for w in result["warnings"]), result["warnings"]


def test_a_stray_channel_with_a_far_index_is_left_out(tmp_path):
    folder = tseries_folder(tmp_path, n=20, xml=False)
    stray = _stray(folder, 1, 999_999, channel=9)
    result = _open_in_child(folder)
    assert result["outcome"] == "returned", result
    assert result["shape"] == [20, 6, 8]
    assert any(stray in w for w in result["warnings"]), result["warnings"]


def test_many_far_files_are_refused_naming_one(tmp_path):
    """Half the files far away are no strays: refused naming one, in bounded memory."""
    folder = tseries_folder(tmp_path, n=20, xml=False)
    far = [_stray(folder, 1, 900_000 + 2 * k) for k in range(10)]
    result = _open_in_child(folder)
    assert result["outcome"] == "napari_calcium.errors.RecordingError", result
    assert Path(result["path"]).name in far or Path(result["path"]).parent == folder, result
    assert "stray" in result["message"] or "gap" in result["message"], result


def test_many_gaps_in_a_volume_are_refused_in_bounded_memory(tmp_path):
    """Cycles 60 apart, planes 60 apart: no gap is far, but the grid would be 9,000 x 9,000."""
    folder = tmp_path / NAME
    folder.mkdir()
    for k in range(150):
        for plane in (1, 61, 121):
            write_frame(
                folder / f"{NAME}_Cycle{1 + 60 * k:05d}_Ch2_{plane + 60 * k:06d}.ome.tif", 1
            )
    result = _open_in_child(folder)
    assert result["outcome"] in (
        "napari_calcium.errors.RecordingError",
        "napari_calcium.errors.MetadataError",
    ), result
    assert str(folder) in result["message"]


@pytest.mark.parametrize(
    ("cycle", "index"), [(10**9, 10**12), (2**62, 2**62), (1, 0)], ids=["huge", "int64", "zero"]
)
def test_xml_with_absurd_cycle_and_frame_index(tmp_path, cycle, index):
    folder = tmp_path / NAME
    folder.mkdir()
    frames = []
    for t in range(5):
        fname = f"{NAME}_Cycle00001_Ch2_{t + 1:06d}.ome.tif"
        write_frame(folder / fname, value(t, 0, 2))
        frames.append({"rel": 0.5 * t, "index": index + t, "files": [(2, "Ch2", fname)]})
    seq = [("TSeries Timed Element", cycle, {}, frames)]
    (folder / f"{NAME}.xml").write_text(pv_xml(seq), encoding="utf-8")
    result = _open_in_child(folder)
    assert result["outcome"] == "returned", result
    assert result["shape"] == [5, 6, 8]
    assert result["first_pixels"] == [value(t, 0, 2) for t in range(5)]


# ---------------------------------------------------------------------- odd digits in names
def _named_folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "rec"
    folder.mkdir()
    for t, name in enumerate(names):
        write_frame(folder / name, value(t, 0, 2))
    return folder


@pytest.mark.parametrize(
    "pattern",
    [
        "x_cycle00001_ch2_{:06d}.ome.tif",  # lower case, as some copies write it
        "x_Cycle00001_Ch02_{:06d}.ome.tif",  # a zero-padded channel number
        "x_CYCLE00001_CH2_{:06d}.OME.TIF",
    ],
    ids=["lower-case", "padded-channel", "upper-case"],
)
def test_names_that_parse_are_read_from_their_own_files(tmp_path, pattern):
    folder = _named_folder(tmp_path, [pattern.format(t + 1) for t in range(5)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = open_bruker(folder)
    movie = rec.channels["Ch2"]
    assert movie.shape == (5, 6, 8)
    np.testing.assert_array_equal(movie[:, 0, 0].compute(), [value(t, 0, 2) for t in range(5)])


def test_a_frame_written_twice_under_two_extensions_keeps_the_series(tmp_path):
    names = [f"x_Cycle00001_Ch2_{t + 1:06d}.ome.tif" for t in range(5)]
    folder = _named_folder(tmp_path, names)
    write_frame(folder / "x_Cycle00001_Ch2_000003.tif", 9999)
    with pytest.warns(UserWarning, match=r"x_Cycle00001_Ch2_000003\.tif"):
        rec = open_bruker(folder)
    np.testing.assert_array_equal(
        rec.channels["Ch2"][:, 0, 0].compute(), [value(t, 0, 2) for t in range(5)]
    )


def test_non_ascii_digits_and_overlong_numbers_are_not_frame_names(tmp_path):
    arabic = "".join("٠١٢٣٤٥٦٧٨٩"[int(d)] for d in "000001")
    assert parse_bruker_filename(f"x_Cycle00001_Ch2_{arabic}.ome.tif") is None
    assert parse_bruker_filename("x_Cycle00001_Ch2_" + "9" * 20 + ".ome.tif") is None
    assert parse_bruker_filename("x_Cycle" + "1" * 20 + "_Ch2_000001.ome.tif") is None
    assert parse_bruker_filename("x_Cycle00001_Ch" + "2" * 40 + "_000001.ome.tif") is None
    assert parse_bruker_filename("x_Cycle00001_Ch0002_000001.ome.tif")["channel"] == 2
    folder = _named_folder(tmp_path, [f"x_Cycle00001_Ch2_{t + 1:06d}.ome.tif" for t in range(3)])
    write_frame(folder / f"x_Cycle00001_Ch2_{arabic}.ome.tif", 1)
    write_frame(folder / ("x_Cycle00001_Ch2_" + "9" * 20 + ".ome.tif"), 1)
    assert open_bruker(folder).channels["Ch2"].shape == (3, 6, 8)


def test_an_overlong_channel_number_is_not_a_channel(tmp_path):
    folder = _named_folder(tmp_path, [f"x_Cycle00001_Ch2_{t + 1:06d}.ome.tif" for t in range(3)])
    write_frame(folder / ("x_Cycle00001_Ch" + "9" * 30 + "_000001.ome.tif"), 1)
    rec = open_bruker(folder)
    assert list(rec.channels) == ["Ch2"]


def test_no_folder_at_all_gives_our_error(tmp_path):
    with pytest.raises(RecordingError):
        open_bruker(tmp_path / "missing")

"""Helpers for the Bruker tests: real-data location, tiny TIFFs, synthetic PrairieView XML."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
FOUR_PLANE = (
    DATA / "bruker_calscipy_4plane_tseries" / ("reg1_x300_y009n_z1425t1530_p110t131_APr_VSleft-007")
)
ONE_PLANE = DATA / "bruker_calscipy_1plane_tseries" / "EM0121_PRE-001"
SWHARDEN = DATA / "prairieview_metadata_swharden"
SHAPE = (6, 8)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"real test data not found at {path} (expected ../shared/data beside the repo)")
    return path


def value(t: int, z: int = 0, c: int = 0) -> int:
    """The pixel value a synthetic frame holds: encodes time point, plane and channel."""
    return 1000 * t + 10 * z + c


def write_frame(path: Path, fill: int, shape=SHAPE, dtype=np.uint16, **kwargs) -> None:
    tifffile.imwrite(path, np.full(shape, fill, dtype=dtype), **kwargs)


def pv_xml(sequences, *, version="5.5.64.600", state="", bom=True) -> str:
    """A PrairieView-style XML.

    ``sequences``: list of ``(type, cycle, seq_attrs, frames)`` where each frame is a dict with
    ``rel`` (relativeTime), ``files`` [(channel, channelName, filename[, page])] and optional
    ``z`` (positionCurrent ZAxis) and ``index``.
    """
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<PVScan version="{version}" date="1/1/2024 1:00:00 PM" notes="">',
        "  <PVStateShard>",
        '    <PVStateValue key="bitDepth" value="13" />',
        '    <PVStateValue key="framePeriod" value="0.5" />',
        '    <PVStateValue key="micronsPerPixel">',
        '      <IndexedValue index="XAxis" value="0.8" />',
        '      <IndexedValue index="YAxis" value="0.9" />',
        '      <IndexedValue index="ZAxis" value="7" />',
        "    </PVStateValue>",
        state,
        "  </PVStateShard>",
    ]
    for typ, cycle, attrs, frames in sequences:
        extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
        out.append(f'  <Sequence type="{typ}" cycle="{cycle}"{extra}>')
        for k, fr in enumerate(frames):
            index = fr.get("index", k + 1)
            out.append(
                f'    <Frame relativeTime="{fr["rel"]}" absoluteTime="{fr["rel"] + 2.5}" '
                f'index="{index}" parameterSet="CurrentSettings">'
            )
            for f in fr["files"]:
                page = f' page="{f[3]}"' if len(f) > 3 else ""
                out.append(
                    f'      <File channel="{f[0]}" channelName="{f[1]}"{page} filename="{f[2]}" />'
                )
            out.append("      <PVStateShard>")
            if "z" in fr:
                out.append('        <PVStateValue key="positionCurrent">')
                out.append('          <SubindexedValues index="ZAxis">')
                out.append(f'            <SubindexedValue subindex="0" value="{fr["z"]}" />')
                out.append("          </SubindexedValues>")
                out.append("        </PVStateValue>")
            out.append("      </PVStateShard>")
            out.append("    </Frame>")
        out.append("  </Sequence>")
    out.append("</PVScan>")
    return ("\ufeff" if bom else "") + "\n".join(out)


def truncated_frames_xml(src: Path, n_frames: int) -> str:
    """The real XML ``src`` keeping only its first ``n_frames`` <Frame> elements."""
    text = src.read_text(encoding="utf-8-sig")
    ends = [m.end() for m in re.finditer(r"</Frame>", text)]
    return text[: ends[n_frames - 1]] + "\n  </Sequence>\n</PVScan>\n"


def tseries_folder(tmp_path: Path, n: int = 10, channels=(2,), name="TSeries-x-001", xml=True):
    """A single-plane T-series of ``n`` tiny frames (index 1..n), with or without the XML."""
    folder = tmp_path / name
    folder.mkdir()
    frames = []
    for t in range(n):
        files = []
        for c in channels:
            fname = f"{name}_Cycle00001_Ch{c}_{t + 1:06d}.ome.tif"
            write_frame(folder / fname, value(t, 0, c))
            files.append((c, f"Ch{c}", fname))
        frames.append({"rel": 0.5 * t, "files": files})
    if xml:
        seq = [("TSeries Timed Element", 1, {}, frames)]
        (folder / f"{name}.xml").write_text(pv_xml(seq), encoding="utf-8")
    return folder

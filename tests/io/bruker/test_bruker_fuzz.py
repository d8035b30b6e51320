"""Seeded mutation fuzzing of the Bruker reader: a result, or our exception; nothing else.

Byte-level damage (truncation, bit flips, random bytes, cut-outs) of real PrairieView XML/.env
files and of TIFFs, and field-level damage of a synthetic XML (attributes removed or set to
garbage, elements dropped). Each case runs ``is_bruker_folder``, ``open_bruker`` and a full
compute; the only allowed outcomes are a result or a ``NapariCalciumError``.
"""

from __future__ import annotations

import random
import re
import warnings

import numpy as np
import pytest
import tifffile
from bruker_helpers import SHAPE, SWHARDEN, need, pv_xml, value, write_frame

from napari_calcium.errors import NapariCalciumError
from napari_calcium.io.bruker.stack import is_bruker_folder, open_bruker

N_BYTES_CASES = 240
N_FIELD_CASES = 160
GARBAGE = ["", "nan", "-1", "0", "1e309", "abc", "99999999", "2", "True", "-0.5", "inf", "\u00e9"]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        return bytes(b[: rng.randrange(len(b))])
    if kind == 1:
        for _ in range(rng.randrange(1, 20)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == 2:
        return rng.randbytes(rng.randrange(1, 300))
    i = rng.randrange(len(b))
    if kind == 3:
        return bytes(b[:i] + b[i + rng.randrange(1, 2000) :])
    return bytes(b[:i] + bytes([rng.randrange(256)]) * rng.randrange(1, 50) + b[i:])


def _outcome(folder) -> str:
    is_bruker_folder(folder)  # never raises
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rec = open_bruker(folder, frames_per_chunk=2)
            for movie in rec.channels.values():
                movie.compute(scheduler="sync")
            rec.metadata.to_dict()
        except NapariCalciumError as exc:
            assert str(exc)
            return type(exc).__name__
    return "ok"


def test_byte_level_damage(tmp_path):
    xmls = [
        need(SWHARDEN / name / f"{name}.xml")
        for name in ("TSeries-01252019-1046-1395", "ZSeries-09252014-1411-508")
    ]
    env = SWHARDEN / "t1BL_dendriteD_1" / "LineScan-07132018-1141-2505.env"
    blobs = {p: p.read_bytes() for p in [*xmls, env]}
    rng = random.Random(20240601)
    seen = set()
    for case in range(N_BYTES_CASES):
        folder = tmp_path / f"c{case}"
        folder.mkdir()
        kind = case % 3
        if kind == 0:  # damaged main XML, frames present under the names it lists
            src = rng.choice(xmls)
            (folder / src.name).write_bytes(_mutate(rng, blobs[src]))
            zstack = "ZSeries" in src.name  # PV 4 names: ..._CurrentSettings_Ch1_000001.tif
            label, ext = ("_CurrentSettings", ".tif") if zstack else ("", ".ome.tif")
            for i in (1, 2, 3, 4) if zstack else (1, 2):
                for c in (1, 2) if zstack else (2,):
                    write_frame(folder / f"{src.stem}_Cycle00001{label}_Ch{c}_{i:06d}{ext}", i)
        elif kind == 1:  # damaged .env, frames named by the convention
            (folder / "rec.env").write_bytes(_mutate(rng, blobs[env]))
            for i in (1, 2, 3):
                write_frame(folder / f"rec_Cycle00001_Ch2_{i:06d}.ome.tif", i)
        else:  # damaged TIFFs
            for i in (1, 2, 3):
                path = folder / f"rec_Cycle00001_Ch2_{i:06d}.ome.tif"
                big = rng.random() < 0.5
                tifffile.imwrite(path, np.full(SHAPE, i, np.uint16), photometric="minisblack",
                                 compression="zlib" if big else None)  # fmt: skip
                if rng.random() < 0.7:
                    path.write_bytes(_mutate(rng, path.read_bytes()))
        seen.add(_outcome(folder))
    assert {"ok", "MetadataError", "RecordingError"} <= seen


def test_field_level_damage(tmp_path):
    rng = random.Random(7)
    seen = set()
    for case in range(N_FIELD_CASES):
        folder = tmp_path / f"f{case}"
        folder.mkdir()
        volumes = case % 2 == 0
        seqs = []
        for t in range(3):
            frames = []
            for z in range(3 if volumes else 1):
                files = []
                for c in (1, 2):
                    name = f"f{case}_Cycle{t + 1:05d}_Ch{c}_{z + 1:06d}.ome.tif"
                    write_frame(folder / name, value(t, z, c))
                    files.append((c, f"Ch{c}", name, 1))
                frames.append({"rel": t + 0.1 * z, "z": 10 * z, "files": files})
            typ = "TSeries ZSeries Element" if volumes else "TSeries Timed Element"
            seqs.append((typ, t + 1, {"bidirectionalZ": rng.choice(["True", "False"])}, frames))
        text = pv_xml(seqs)
        for _ in range(rng.randrange(1, 6)):
            match = rng.choice(list(re.finditer(r'(\w+)="([^"]*)"', text)))
            if rng.random() < 0.7:
                a, b = match.span(2)
                text = text[:a] + rng.choice(GARBAGE) + text[b:]
            else:
                a, b = match.span(0)
                text = text[:a] + text[b:]
        if rng.random() < 0.3:
            lines = text.split("\n")
            del lines[rng.randrange(len(lines))]
            text = "\n".join(lines)
        (folder / f"f{case}.xml").write_text(text, encoding="utf-8")
        seen.add(_outcome(folder))
    assert {"ok", "MetadataError"} <= seen


@pytest.mark.parametrize("size", [0, 1, 7, 8, 64])
def test_tiny_and_empty_files(tmp_path, size):
    write_frame(tmp_path / "r_Cycle00001_Ch2_000001.ome.tif", 1)
    (tmp_path / "r_Cycle00001_Ch2_000002.ome.tif").write_bytes(
        b"II*\x00\x08\x00\x00\x00"[:size] * 8
    )
    assert _outcome(tmp_path) == "RecordingError"

"""Seeds, mutators and harness for the fuzz tests (``tests/io/test_fuzz_readers.py``,
``tests/io/test_fuzz_outputs.py``).

Seeds are real files from ``../shared/data`` (PrairieView .xml/.env/.cfg, Bruker .ome.tif frames,
the first pages of the neurofinder TIFF, suite2p's ops.npy), cut down where a whole file would make
each input slow (the Frame list of a long T-series XML; the unrelated controllers and most of the
state shard of an .env), plus
what napari-calcium's own writers produce (save_binary, save_images, write_tiff_stack,
save_ground_truth) and a few tifffile layouts (compressed, tiled, OME, big-endian, RGB, BigTIFF).

Every builder takes a ``numpy.random.Generator`` and a fresh folder, writes one input there and
returns a :class:`Case`; the test seeds the generator with ``(family, index)``, so any input is
rebuilt exactly from its index. Mutated pickles are only ever loaded inside
:func:`guarded_unpickling` (an allow-list of the globals the real ops.npy names).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
import os
import pickle
import re
import signal
import struct
import sys
import threading
import types
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SWHARDEN = DATA / "prairieview_metadata_swharden"
FOUR_PLANE = (
    DATA / "bruker_calscipy_4plane_tseries" / "reg1_x300_y009n_z1425t1530_p110t131_APr_VSleft-007"
)
ONE_PLANE = DATA / "bruker_calscipy_1plane_tseries" / "EM0121_PRE-001"
NEUROFINDER = DATA / "neurofinder_crop" / "movie.tif"
OPS = DATA / "suite2p_output_calscipy" / "plane0" / "ops.npy"
SWHARDEN_XML = {
    "tseries-2ch": "TSeries-01142019-1352-1365",
    "tseries-1ch": "TSeries-01252019-1046-1395",
    "zseries-pv4": "ZSeries-09252014-1411-508",
    "single": "SingleImage-01142019-1352-387",
    "linescan": "LineScan-07132018-1141-2505",
}
_SWHARDEN_DIR = {"linescan": "t1BL_dendriteD_1"}

BOM = b"\xef\xbb\xbf"
DECL = b'<?xml version="1.0" encoding="utf-8"?>\n'
# character references XML 1.0 forbids (PrairieView writes &#x1;); ElementTree refuses them
_BAD_REF = re.compile(
    rb"&#(?:[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F])|0*(?:[0-8]|1[1-2]|1[4-9]|2[0-9]|3[01]));"
)


def need(path: Path) -> Path:
    """``path`` if it exists; otherwise the test fails (it must not pass by not running)."""
    if not path.exists():
        pytest.fail(f"real test data not found at {path} (expected ../shared/data beside the repo)")
    return path


@dataclass
class Case:
    """One fuzz input: what to hand the reader, and how it was made."""

    path: Path
    note: str
    expected: Any = None  # for unmutated seeds: what a correct reader returns
    kwargs: dict = field(default_factory=dict)


def pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


# ---------------------------------------------------------------------------------------------
# byte-level mutation

MAGICS = (
    b"II*\x00", b"MM\x00*", b"II+\x00\x08\x00\x00\x00", b"MM\x00+\x00\x08\x00\x00",
    b"II*\x00\x08\x00\x00\x00", b"<?xml", b"<PVScan", b"<Environment", b"<PVConfig", BOM + b"<",
    b"{", b"[", b'{"dtype": "uint16"', b"PK\x03\x04", b"\x93NUMPY\x01\x00", b"\x80\x04", b"",
)  # fmt: skip
LENGTHS = (0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 511, 512, 4095, 4096, 4097)
_INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x3C, 0x22)


def random_blob(rng: np.random.Generator, max_len: int = 4096) -> bytes:
    """Random bytes of a boundary or random length, often behind a magic number."""
    n = int(pick(rng, LENGTHS)) if rng.random() < 0.4 else int(rng.integers(0, max_len))
    magic = pick(rng, MAGICS) if rng.random() < 0.5 else b""
    return magic + rng.bytes(n)


def _at(rng: np.random.Generator, n: int) -> int:
    return int(rng.integers(0, n)) if n > 0 else 0


def _span(rng: np.random.Generator, n: int) -> int:
    return int(rng.integers(1, 65)) if rng.random() < 0.7 else int(rng.integers(1, max(2, n // 2)))


def _truncate(rng, b: bytearray) -> str:
    n = len(b)
    at = n - int(rng.integers(1, min(n, 64) + 1)) if n and rng.random() < 0.3 else _at(rng, n)
    del b[at:]
    return f"truncate@{at}"


def _flip(rng, b: bytearray) -> str:
    k = int(rng.integers(1, 17))
    for _ in range(k if b else 0):
        b[_at(rng, len(b))] ^= 1 << int(rng.integers(8))
    return f"flip{k}"


def _set_bytes(rng, b: bytearray) -> str:
    k = int(rng.integers(1, 9))
    for _ in range(k if b else 0):
        b[_at(rng, len(b))] = pick(rng, _INTERESTING_BYTES)
    return f"set{k}"


def _insert(rng, b: bytearray) -> str:
    at, n = _at(rng, len(b)), int(rng.integers(1, 65))
    b[at:at] = rng.bytes(n)
    return f"insert{n}@{at}"


def _delete(rng, b: bytearray) -> str:
    at, n = _at(rng, len(b)), _span(rng, len(b))
    del b[at : at + n]
    return f"delete{n}@{at}"


def _duplicate(rng, b: bytearray) -> str:
    a, n, to = _at(rng, len(b)), _span(rng, len(b)), _at(rng, len(b))
    b[to:to] = b[a : a + n]
    return f"dup{n}@{a}->{to}"


def _overwrite(rng, b: bytearray) -> str:
    at, n = _at(rng, len(b)), _span(rng, len(b))
    b[at : at + n] = rng.bytes(len(b[at : at + n]))
    return f"overwrite{n}@{at}"


def _append(rng, b: bytearray) -> str:
    n = int(rng.integers(1, 4097))
    b += rng.bytes(n)
    return f"append{n}"


def _zero(rng, b: bytearray) -> str:
    at, n = _at(rng, len(b)), _span(rng, len(b))
    b[at : at + n] = bytes(len(b[at : at + n]))
    return f"zero{n}@{at}"


BYTE_OPS: tuple[Callable, ...] = (
    _truncate, _flip, _flip, _set_bytes, _insert, _delete, _duplicate, _overwrite, _append, _zero,
)  # fmt: skip


def mutate_bytes(rng: np.random.Generator, data: bytes, rounds: int | None = None):
    """1-3 of: truncation, bit flips, byte sets, insertions, deletions, duplicated chunks, ..."""
    b = bytearray(data)
    notes = [pick(rng, BYTE_OPS)(rng, b) for _ in range(rounds or int(rng.integers(1, 4)))]
    return bytes(b), "bytes:" + ",".join(notes)


# ---------------------------------------------------------------------------------------------
# XML (PrairieView .xml / .env / Config.cfg)

GARBAGE = (
    "", " ", "nan", "NaN", "inf", "-inf", "-1", "0", "-0", "1", "2", "7", "1e309", "-1e309",
    "1e-320", "4294967296", "99999999999999999999", "-99999999999999999999", "2147483648", "3.5",
    "1E3", "abc", "True", "False", "None", "0x10", " 5 ", "5,5", "1/2", "\u00e9", "\u2603",
    "x" * 5000, "../../evil.ome.tif", "/abs/evil.ome.tif",
    "C:\\rig\\data\\rec_Cycle00001_Ch2_000001.ome.tif", "Ch2", "rec_Cycle00001_Ch2_000001.ome.tif",
    "1e308", "-1e308", "18446744073709551616", "1" * 400,
)  # fmt: skip
XML_TAGS = (
    "PVScan", "Sequence", "Frame", "File", "PVStateShard", "PVStateValue", "IndexedValue",
    "SubindexedValues", "SubindexedValue", "Key", "Environment", "PVConfig", "TSeries",
    "PVTSeriesElementZSeries", "PVTSeriesElementSequence", "PVZSeriesController", "SystemID",
    "ExtraParameters", "Junk",
)  # fmt: skip
XML_ATTRS = (
    "key", "value", "index", "subindex", "channel", "channelName", "filename", "page",
    "relativeTime", "absoluteTime", "type", "cycle", "bidirectionalZ", "version", "date",
    "repetitions", "repetitionPeriod", "bidirectional", "description", "Description",
)  # fmt: skip
_KEY_ELEMENTS = {
    "PVScan", "Sequence", "Frame", "File", "Environment", "PVConfig", "TSeries",
    "PVZSeriesController", "PVTSeriesElementZSeries", "PVTSeriesElementSequence", "SystemID",
}  # fmt: skip
_KEY_STATE = {
    "framePeriod", "micronsPerPixel", "bitDepth", "linesPerFrame", "pixelsPerLine", "laserPower",
    "positionCurrent", "objectiveLens", "objectiveLensMag", "opticalZoom", "pmtGain", "dwellTime",
    "activeMode", "scanLinePeriod", "micronsPerPixel_XAxis", "micronsPerPixel_YAxis",
}  # fmt: skip


def parse_tree(data: bytes) -> ET.Element:
    return ET.fromstring(_BAD_REF.sub(b" ", data.removeprefix(BOM)))


def serialize(root: ET.Element, *, bom: bool = True) -> bytes:
    return (BOM if bom else b"") + DECL + ET.tostring(root, encoding="unicode").encode()


def reduce_frames(data: bytes, keep: int = 3) -> bytes:
    """A real PrairieView XML cut after its ``keep``-th ``</Frame>`` (bytes otherwise as is)."""
    ends = [m.end() for m in re.finditer(rb"</Frame>", data)]
    if len(ends) <= keep:
        return data
    return data[: ends[keep - 1]] + b"\r\n  </Sequence>\r\n</PVScan>\r\n"


_ENV_KEEP = {"SystemIDs", "PVZSeriesController", "TSeries", "PVStateShard"}


def reduce_env(data: bytes) -> bytes:
    """A real .env/.cfg keeping the parts the reader uses (+ two small others), re-serialized.

    Its state shard keeps the values napari-calcium reads and the first 40 others (a real
    shard holds ~300, which would only make every input slower).
    """
    root = parse_tree(data)
    for shard in root.findall("PVStateShard"):
        others = [v for v in shard if v.get("key") not in _KEY_STATE]
        for value in others[40:]:
            shard.remove(value)
    small = 0
    for child in list(root):
        if child.tag in _ENV_KEEP:
            continue
        if small < 2 and sum(1 for _ in child.iter()) < 30:
            small += 1
            continue
        root.remove(child)
    return serialize(root)


def _elements(rng: np.random.Generator, root: ET.Element) -> list[ET.Element]:
    every = list(root.iter())
    key = [e for e in every if e.tag in _KEY_ELEMENTS or e.get("key") in _KEY_STATE]
    return key if key and rng.random() < 0.5 else every


def _garbage(rng: np.random.Generator, old: str | None = None) -> str:
    if old and rng.random() < 0.3:  # a nearby value: digits changed, sign flipped, scaled
        choice = int(rng.integers(4))
        if choice == 0:
            return "-" + old
        if choice == 1:
            return old + old
        if choice == 2:
            return re.sub(r"\d", lambda m: str(int(rng.integers(10))), old)
        return old[: _at(rng, len(old))]
    return pick(rng, GARBAGE)


def mutate_tree(rng: np.random.Generator, root: ET.Element) -> str:
    """Remove, duplicate, move, rename, clear elements; remove, add or garble attributes."""
    notes = []
    for _ in range(int(rng.integers(1, 5))):
        if rng.random() < 0.15:  # a value the reader uses: framePeriod, bitDepth, micronsPerPixel
            state = [e for e in root.iter() if e.get("key") in _KEY_STATE]
            values = [v for e in state for v in e.iter() if "value" in v.attrib]
            if values:
                elem = pick(rng, values)
                elem.set("value", _garbage(rng, elem.get("value")))
                notes.append(
                    f"value<{elem.get('key') or elem.get('index')}>={elem.get('value')[:20]!r}"
                )
                continue
        parents = {c: p for p in root.iter() for c in p}
        elems = _elements(rng, root)
        elem = pick(rng, elems)
        op = int(rng.integers(10))
        parent = parents.get(elem)
        if op == 0 and parent is not None:
            parent.remove(elem)
            notes.append(f"drop<{elem.tag}>")
        elif op in (1, 2) and elem.attrib:
            name = pick(rng, sorted(elem.attrib))
            if op == 1:
                del elem.attrib[name]
                notes.append(f"drop@{elem.tag}.{name}")
            else:
                elem.set(name, _garbage(rng, elem.get(name)))
                notes.append(f"garble@{elem.tag}.{name}={elem.get(name)[:20]!r}")
        elif op == 3:
            name = pick(rng, XML_ATTRS)
            elem.set(name, _garbage(rng))
            notes.append(f"set@{elem.tag}.{name}={elem.get(name)[:20]!r}")
        elif op == 4 and parent is not None:
            parent.insert(list(parent).index(elem), copy.deepcopy(elem))
            notes.append(f"dup<{elem.tag}>")
        elif op == 5 and len(elem) > 1:
            kids = list(elem)
            for kid in kids:
                elem.remove(kid)
            for k in rng.permutation(len(kids)):
                elem.append(kids[int(k)])
            notes.append(f"shuffle<{elem.tag}>")
        elif op == 6:
            old, elem.tag = elem.tag, pick(rng, XML_TAGS)
            notes.append(f"retag<{old}->{elem.tag}>")
        elif op == 7:
            elem.clear()
            notes.append(f"clear<{elem.tag}>")
        elif op == 8:
            elem.text = _garbage(rng)
            notes.append(f"text<{elem.tag}>")
        elif parent is not None:
            target = pick(rng, elems)
            if target is not elem and elem not in target.iter():
                parent.remove(elem)
                target.append(elem)
                notes.append(f"move<{elem.tag}->{target.tag}>")
    return ",".join(notes) or "noop"


_BILLION_LAUGHS = (
    '<!DOCTYPE PVScan [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
    '<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">]>'
)
_ODD_DECLARATIONS = (
    "",
    '<?xml version="1.0" encoding="x-bogus"?>',
    '<?xml version="1.0" encoding="utf-16"?>',
    "<?xml version='9.9'?>",
)
_EXTERNAL = '<!DOCTYPE PVScan [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def mutate_xml(rng: np.random.Generator, data: bytes) -> tuple[bytes, str]:
    """Element/attribute damage (re-serialized), odd prologs, entities, deep nesting, cuts."""
    r = rng.random()
    if r < 0.3:
        return mutate_bytes(rng, data)
    try:
        root = parse_tree(data)
        note = "xml:" + mutate_tree(rng, root)
        body = ET.tostring(root, encoding="unicode")
    except (ET.ParseError, LookupError, ValueError, RecursionError):  # damaged or deeply nested
        return mutate_bytes(rng, data)
    r = rng.random()
    if r < 0.06:  # an entity bomb or an external entity, used in an attribute value
        body = body.replace('value="', 'value="&g;', 1) if rng.random() < 0.5 else body
        doctype = (
            _BILLION_LAUGHS if rng.random() < 0.5 else _EXTERNAL.replace("x SYSTEM", "g SYSTEM")
        )
        text, note = DECL.decode() + doctype + body, note + "+doctype"
    elif r < 0.1:  # the root pushed past the reader's 4 KiB sniffing window
        pad = pick(rng, ["<!-- " + "c" * 5000 + " -->", "<?pi x?>" * 700, " " * 5000])
        text, note = DECL.decode() + pad + body, note + "+late-root"
    elif r < 0.14:  # deeply nested elements
        depth = int(pick(rng, [100, 1000, 20000]))
        at = body.rfind("</")
        body = body[:at] + "<d>" * depth + "</d>" * depth + body[at:]
        text, note = DECL.decode() + body, note + f"+nest{depth}"
    elif r < 0.2:
        decl = pick(rng, _ODD_DECLARATIONS)
        text, note = decl + body, note + "+decl"
    else:
        text = DECL.decode() + body
    if r >= 0.2 and rng.random() < 0.05:
        out = text.replace('encoding="utf-8"', 'encoding="utf-16"', 1).encode("utf-16")
        return out, note + "+utf16"
    out = (BOM if rng.random() < 0.5 else b"") + text.encode("utf-8", "surrogatepass")
    r = rng.random()
    if r < 0.15:
        at = _at(rng, len(out))
        return out[:at], note + f"+truncate@{at}"
    if r < 0.25:
        out, more = mutate_bytes(rng, out, rounds=1)
        return out, note + "+" + more
    return out, note


# ---------------------------------------------------------------------------------------------
# TIFF: header fields located with struct, then set to boundary values

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
               16: 8, 17: 8, 18: 8}  # fmt: skip
_ARRAY_TAGS = {258, 273, 279, 324, 325}  # BitsPerSample, Strip/Tile offsets and byte counts
_FMT = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _uint(data: bytes, at: int, size: int, bo: str) -> int:
    return struct.unpack_from(bo + _FMT[size], data, at)[0]


def tiff_fields(data: bytes) -> tuple[str, list[tuple[int, int, str, int]]]:
    """Byte order and ``(offset, size, kind, value)`` of the header fields of the first IFDs.

    Kinds: ``magic``, ``ifd-offset`` (header and next-IFD pointers), ``entry-count``,
    ``tag-code``, ``tag-type``, ``tag-count``, ``tag-value`` (inline value or value offset),
    ``tagNNN-elem`` (an element of StripOffsets, StripByteCounts, TileOffsets, ... arrays) and
    ``description`` (the ImageDescription text: ImageJ, OME-XML or tifffile JSON).
    """
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return "<", []
    bo = "<" if data[:2] == b"II" else ">"
    big = _uint(data, 2, 2, bo) == 43
    if big and len(data) < 16:
        return bo, []
    fields = [(2, 2, "magic", _uint(data, 2, 2, bo))]
    ptr_at, psz = (8, 8) if big else (4, 4)
    csz, esz, vsz = (8, 20, 8) if big else (2, 12, 4)
    seen: set[int] = set()
    for _ in range(6):
        ifd = _uint(data, ptr_at, psz, bo)
        fields.append((ptr_at, psz, "ifd-offset", ifd))
        if ifd == 0 or ifd in seen or ifd + csz > len(data):
            break
        seen.add(ifd)
        n = _uint(data, ifd, csz, bo)
        fields.append((ifd, csz, "entry-count", n))
        for i in range(min(n, 64)):
            e = ifd + csz + i * esz
            if e + esz > len(data):
                break
            code, typ = struct.unpack_from(bo + "HH", data, e)
            count, value = _uint(data, e + 4, vsz, bo), _uint(data, e + 4 + vsz, vsz, bo)
            fields += [
                (e, 2, "tag-code", code),
                (e + 2, 2, "tag-type", typ),
                (e + 4, vsz, "tag-count", count),
                (e + 4 + vsz, vsz, "tag-value", value),
            ]
            size = _TYPE_SIZES.get(typ, 0)
            inline = count * size <= vsz
            if code in _ARRAY_TAGS and size in _FMT and not inline and count:
                for k in sorted({k for k in (0, 1, count - 1) if 0 <= k < count}):
                    at = value + k * size
                    if at + size <= len(data):
                        fields.append((at, size, f"tag{code}-elem", _uint(data, at, size, bo)))
            if code == 270 and typ == 2 and not inline and value + count <= len(data):
                fields.append((value, count, "description", 0))
        ptr_at = ifd + csz + n * esz
        if ptr_at + psz > len(data):
            break
    return bo, fields


_TYPES = (0, 1, 2, 3, 4, 5, 7, 11, 12, 13, 16, 17, 18, 19, 255, 65535)
_CODES = (0, 254, 256, 257, 258, 259, 262, 270, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325,
          339, 65535)  # fmt: skip


def _field_value(rng, kind: str, size: int, old: int, n_bytes: int) -> int:
    if kind == "tag-type":
        return pick(rng, _TYPES)
    if kind == "tag-code":
        return pick(rng, _CODES)
    if kind == "magic":
        return pick(rng, (42, 43, 0, 44, 0x2A00, 0x2B00))
    top = 2 ** (8 * size)
    candidates = (
        0, 1, 2, 3, 8, 16, old - 1, old + 1, old * 2, old // 2, n_bytes - 1, n_bytes, n_bytes + 1,
        n_bytes + 4096, top // 2, top - 1, int(rng.integers(0, min(top, 2**62))),
        _at(rng, n_bytes),
    )  # fmt: skip
    return int(pick(rng, candidates)) % top


def _garble_text(rng, b: bytearray, at: int, size: int) -> str:
    text = bytes(b[at : at + size])
    runs = [m.span() for m in re.finditer(rb"\d+", text)]
    if runs and rng.random() < 0.8:  # same-length digit change keeps every offset valid
        a, z = pick(rng, runs)
        new = pick(rng, [b"0", b"9", b"1"]) * (z - a) if rng.random() < 0.5 else None
        new = new or bytes(int(rng.integers(48, 58)) for _ in range(z - a))
        b[at + a : at + z] = new
        return f"description-digits@{a}={new[:12].decode()}"
    if size:
        i = at + _at(rng, size)
        b[i] = pick(rng, (0x00, 0x3C, 0x22, 0x7B, 0x0A, 0xFF))
        return f"description-byte@{i - at}"
    return "description-empty"


def mutate_tiff(rng: np.random.Generator, data: bytes) -> tuple[bytes, str]:
    """Corrupt header fields (IFD offsets, entry counts, tag codes/types/counts, strip offsets
    and byte counts, ImageJ/OME/JSON description numbers), cut at a structural offset, or
    damage bytes."""
    bo, fields = tiff_fields(data)
    r = rng.random()
    if not fields or r < 0.2:
        return mutate_bytes(rng, data)
    b = bytearray(data)
    if r < 0.3:  # cut at a structural offset: an IFD, a strip, the pixel data, the description
        points = sorted({f[0] for f in fields} | {f[3] for f in fields if f[3] < len(data)})
        at = pick(rng, points) + int(pick(rng, (-1, 0, 1, 2)))
        at = min(max(at, 0), len(data))
        return data[:at], f"tiff:cut@{at}"
    notes = []
    for _ in range(int(rng.integers(1, 4))):
        at, size, kind, old = pick(rng, fields)
        if kind == "description":
            notes.append(_garble_text(rng, b, at, size))
            continue
        new = _field_value(rng, kind, size, old, len(data))
        struct.pack_into(bo + _FMT[size], b, at, new)
        notes.append(f"{kind}@{at}:{old}->{new}")
    return bytes(b), "tiff:" + ",".join(notes)


def tiff_bytes(data: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, **kwargs)
    return buf.getvalue()


def frame_bytes(fill: int, shape=(6, 8)) -> bytes:
    """A tiny PrairieView-like frame (uint16, one strip) filled with ``fill``."""
    return tiff_bytes(np.full(shape, fill, np.uint16), photometric="minisblack")


# ---------------------------------------------------------------------------------------------
# pickles: ops.npy is unpickled by the suite2p reader; mutated pickles are unpickled with only
# the globals the real file names, so no mutation can reach os.system & co.

_PICKLE_GLOBALS = {
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
}  # fmt: skip


class GuardedUnpickler(pickle.Unpickler):
    refused = 0

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            GuardedUnpickler.refused += 1
            raise pickle.UnpicklingError(f"fuzz guard: global {module}.{name} refused")
        return super().find_class(module, name)


def _guarded_load(file, **kwargs):
    return GuardedUnpickler(file, **kwargs).load()


@contextlib.contextmanager
def guarded_unpickling():
    """Make ``np.load(..., allow_pickle=True)`` unpickle through :class:`GuardedUnpickler`."""
    guarded = types.ModuleType("pickle")
    guarded.__dict__.update(pickle.__dict__)
    guarded.load = _guarded_load
    modules = [sys.modules[m] for m in ("numpy.lib._npyio_impl", "numpy.lib._format_impl")]
    saved = [m.pickle for m in modules]
    for m in modules:
        m.pickle = guarded
    try:
        yield
    finally:
        for m, old in zip(modules, saved, strict=True):
            m.pickle = old


def npy_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(obj, dtype=object) if isinstance(obj, dict) else obj,
            allow_pickle=True)  # fmt: skip
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# seeds


@dataclass
class Template:
    """An unmutated Bruker folder: its files, which are metadata and which frames, and what
    a correct reader returns for it (channel -> array)."""

    name: str
    files: dict[str, bytes]
    meta: list[str]
    frames: list[str]
    expected: dict[str, np.ndarray]


@dataclass
class Seeds:
    xml: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, bytes] = field(default_factory=dict)
    bruker: list[Template] = field(default_factory=list)
    tiff: dict[str, bytes] = field(default_factory=dict)
    tiff_expected: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    tiff_folders: dict[str, dict[str, bytes]] = field(default_factory=dict)
    tiff_folder_expected: dict[str, np.ndarray] = field(default_factory=dict)
    binary: dict[str, tuple[bytes, bytes, np.ndarray]] = field(default_factory=dict)
    ops_real: bytes = b""
    ops_small: dict = field(default_factory=dict)
    ops_small_bytes: bytes = b""
    truth: bytes = b""
    truth_members: dict[str, np.ndarray] = field(default_factory=dict)
    truth_object: Any = None


def _swharden(key: str, suffix: str) -> Path:
    name = SWHARDEN_XML[key]
    return need(SWHARDEN / _SWHARDEN_DIR.get(key, name) / f"{name}{suffix}")


def _xml_files(data: bytes) -> list[list[list[tuple[int, str]]]]:
    """(channel, filename) of each <File> of each <Frame> of each <Sequence> (unmutated XML)."""
    root = parse_tree(data)
    return [
        [
            [(int(f.get("channel")), f.get("filename")) for f in fr.iter("File")]
            for fr in seq.iter("Frame")
        ]
        for seq in root.iter("Sequence")
    ]


def _frames_template(name: str, meta: dict[str, bytes], volumes: bool) -> Template:
    """Synthetic frames under the names the XML lists; expected (t[, z], y, x) per channel."""
    seqs = _xml_files(meta[next(n for n in meta if n.endswith(".xml"))])
    files, order = dict(meta), {}
    frames = [frame for seq in seqs for frame in seq]
    for k, frame in enumerate(frames):
        for channel, fname in frame:
            files[fname] = frame_bytes(100 * k + channel)
            order.setdefault(f"Ch{channel}", []).append(np.full((6, 8), 100 * k + channel))
    expected = {}
    for ch, arrs in order.items():
        stack = np.stack(arrs).astype(np.uint16)
        expected[ch] = stack.reshape(len(seqs), -1, 6, 8) if volumes else stack
    frame_names = [n for n in files if n not in meta]
    return Template(name, files, sorted(meta), frame_names, expected)


def _build_bruker(seeds: Seeds, volume_xml: Callable[[], str]) -> None:
    # real 4-plane T-series: .env + file names only (two volumes), real .ome.tif frames
    base = FOUR_PLANE.name
    env = reduce_env(need(FOUR_PLANE / f"{base}.env").read_bytes())
    files, vols = {f"{base}.env": env}, []
    for cycle in (2, 3):
        planes = []
        for z in range(1, 5):
            name = f"{base}_Cycle{cycle:05d}_Ch2_{z:06d}.ome.tif"
            files[name] = need(FOUR_PLANE / name).read_bytes()
            planes.append(tifffile.imread(io.BytesIO(files[name])))
        vols.append(planes)
    expected = {"Ch2": np.asarray(vols)}
    seeds.bruker.append(Template("real-4plane-env", files, [f"{base}.env"],
                                 [n for n in files if n.endswith(".tif")], expected))  # fmt: skip
    # real single-plane T-series without any metadata file (frames 60-62)
    base = ONE_PLANE.name
    files = {}
    for i in (60, 61, 62):
        name = f"{base}_Cycle00001_Ch2_{i:06d}.ome.tif"
        files[name] = need(ONE_PLANE / name).read_bytes()
    expected = {"Ch2": np.stack([tifffile.imread(io.BytesIO(b)) for b in files.values()])}
    seeds.bruker.append(Template("real-1plane", files, [], list(files), expected))
    # the real PrairieView XMLs (Frame lists cut to 3) and .env/.cfg, tiny synthetic frames
    for key in SWHARDEN_XML:
        name = SWHARDEN_XML[key]
        meta = {f"{name}.xml": seeds.xml[key]}
        env_key = f"{key}.cfg" if key == "zseries-pv4" else f"{key}.env"
        meta[f"{name}Config.cfg" if key == "zseries-pv4" else f"{name}.env"] = seeds.env[env_key]
        seeds.bruker.append(_frames_template(f"swharden-{key}", meta, key == "zseries-pv4"))
    # a synthetic 2-channel volume series (3 volumes x 3 planes)
    seeds.bruker.append(
        _frames_template("synthetic-volumes", {"vol.xml": volume_xml().encode()}, True)
    )


def _build_tiff(seeds: Seeds, folder: Path) -> None:
    from napari_calcium.io.tiff import save_images, write_tiff_stack

    with tifffile.TiffFile(need(NEUROFINDER)) as tif:
        offsets = [tif.pages[i].offset for i in range(4)]
        movie = tif.asarray(key=range(6))
    with open(NEUROFINDER, "rb") as fh:
        head = bytearray(fh.read(offsets[3]))
    n = struct.unpack_from("<H", head, offsets[2])[0]
    struct.pack_into("<I", head, offsets[2] + 2 + 12 * n, 0)  # page 3 is now the last
    assert head.count(b"[400, 256") == 1
    real3 = bytes(head).replace(b"[400, 256", b"[  3, 256")  # its JSON description: 3 frames
    crop = movie[:, 100:132, 100:132]
    t = seeds.tiff
    ex = seeds.tiff_expected
    t["neurofinder-3pages"], ex["neurofinder-3pages"] = real3, {"Ch1": movie[:3]}
    t["neurofinder-crop"] = tiff_bytes(crop[:3], photometric="minisblack")
    ex["neurofinder-crop"] = {"Ch1": crop[:3]}
    save_images(
        folder / "si.tif", crop[:4, :16, :16], frame_rate_hz=30.0, pixel_size_um=(1.5, 1.25)
    )
    t["save_images"], ex["save_images"] = (
        (folder / "si.tif").read_bytes(),
        {"Ch1": crop[:4, :16, :16]},
    )
    vol = crop[:4, :8, :8].reshape(2, 2, 8, 8)
    save_images(folder / "si4.tif", vol, frame_rate_hz=2.0)
    t["save_images-4d"], ex["save_images-4d"] = (folder / "si4.tif").read_bytes(), {"Ch1": vol}
    f64 = crop[:3, :8, :8].astype(np.float64) / 7
    write_tiff_stack(folder / "big.tif", f64, pixel_size_um=0.5)
    t["bigtiff-f64"], ex["bigtiff-f64"] = (folder / "big.tif").read_bytes(), {"Ch1": f64}
    z = crop[:3, :16, :16]
    t["zlib"] = tiff_bytes(z, compression="zlib", photometric="minisblack")
    ex["zlib"] = {"Ch1": z}
    tiled = crop[:2]
    t["tiled"], ex["tiled"] = (
        tiff_bytes(tiled, tile=(16, 16), photometric="minisblack"),
        {"Ch1": tiled},
    )
    two = crop[:4, :8, :8].reshape(2, 2, 8, 8)
    names = {"axes": "TCYX", "Channel": {"Name": ["green", "red"]}}
    t["ome-2ch"] = tiff_bytes(two, ome=True, photometric="minisblack", metadata=names)
    ex["ome-2ch"] = {"green": two[:, 0], "red": two[:, 1]}
    be = crop[:3, :8, :8].astype(">i2")
    t["big-endian"] = tiff_bytes(be, byteorder=">", photometric="minisblack")
    ex["big-endian"] = {"Ch1": be.astype(np.int16)}
    rgb = (crop[:2, :8, :24].reshape(2, 8, 8, 3) % 256).astype(np.uint8)
    t["rgb"] = tiff_bytes(rgb, photometric="rgb")
    ex["rgb"] = {f"Ch{c + 1}": rgb[..., c] for c in range(3)}
    real4 = next(n for n in seeds.bruker[0].files if n.endswith("_000001.ome.tif"))
    t["real-ome-4plane"] = seeds.bruker[0].files[real4]
    ex["real-ome-4plane"] = {"Ch1": tifffile.imread(io.BytesIO(t["real-ome-4plane"]))[None]}
    # TIFF folders: save_images' split parts; real Bruker frames as plain TIFFs
    split = crop[:6, :16, :16]
    (folder / "split").mkdir()
    save_images(folder / "split" / "images.tif", split, size_cap=1100e-9, frame_rate_hz=10.0)
    parts = sorted((folder / "split").iterdir())
    assert [p.name for p in parts] == [f"images_{i:05d}.tif" for i in range(3)], parts
    seeds.tiff_folders["save_images-split"] = {p.name: p.read_bytes() for p in parts}
    seeds.tiff_folder_expected["save_images-split"] = split
    frames = {n: b for n, b in seeds.bruker[0].files.items() if n.endswith(".tif")}
    names = sorted(frames)[:3]
    seeds.tiff_folders["real-ome-frames"] = {n: frames[n] for n in names}
    seeds.tiff_folder_expected["real-ome-frames"] = np.stack(
        [tifffile.imread(io.BytesIO(frames[n])) for n in names]
    )
    seeds.tiff_folders["zlib-pair"] = {"a_1.tif": t["zlib"], "a_2.tif": t["zlib"]}
    seeds.tiff_folder_expected["zlib-pair"] = np.concatenate([z, z])


def _build_binary(seeds: Seeds, folder: Path) -> None:
    from napari_calcium.io.binary import save_binary

    movie = tifffile.imread(NEUROFINDER, key=range(4))[:, 50:55, 60:66]
    specs = {
        "3d-u16": (movie, {"frame_rate_hz": 30.0, "pixel_size_um": 1.5}),
        "4d-f32": (movie[:4, :4, :5].reshape(2, 2, 4, 5).astype(np.float32) / 3, {}),
        "calscipy-i16": (movie.astype(np.int16), {}),
        "u8-rate": ((movie % 256).astype(np.uint8), {"frame_rate_hz": 7.5}),
    }
    for name, (arr, kw) in specs.items():
        save_binary(folder / f"{name}.bin", arr, **kw)
        seeds.binary[name] = (
            (folder / f"{name}.bin").read_bytes(), (folder / f"{name}.json").read_bytes(), arr
        )  # fmt: skip
    # CalSciPy's sidecar with one dimension left out (inferred from the .bin size)
    raw, _, arr = seeds.binary["calscipy-i16"]
    seeds.binary["frames-inferred"] = (raw, b'{"y": 5, "x": 6, "dtype": "int16"}', arr)


def _build_suite2p(seeds: Seeds) -> None:
    seeds.ops_real = need(OPS).read_bytes()
    ops = np.load(OPS, allow_pickle=True).item()  # the real file, unmutated: trusted
    seeds.ops_small = {
        k: v for k, v in ops.items()
        if not (isinstance(v, np.ndarray) and v.size > 16) and k != "rigid_offsets"
    }  # fmt: skip
    seeds.ops_small_bytes = npy_bytes(seeds.ops_small)


def _build_truth(seeds: Seeds, folder: Path) -> None:
    import napari_calcium as nc
    from napari_calcium.io.groundtruth import save_ground_truth

    truth = nc.simulate_recording(n_frames=12, shape=(12, 12), n_neurons=3, seed=3).truth
    save_ground_truth(folder / "truth.npz", truth)
    seeds.truth = (folder / "truth.npz").read_bytes()
    with np.load(folder / "truth.npz", allow_pickle=False) as z:
        seeds.truth_members = {k: z[k] for k in z.files}
    seeds.truth_object = truth


def build_seeds(folder: Path, volume_xml: Callable[[], str]) -> Seeds:
    """Every seed, made once. ``folder`` receives what our writers produce."""
    seeds = Seeds()
    for key in SWHARDEN_XML:
        raw = _swharden(key, ".xml").read_bytes()
        seeds.xml[key] = reduce_frames(raw)
        if len(raw) < 20_000:
            seeds.xml[f"{key}-raw"] = raw
    for key in SWHARDEN_XML:
        suffix = "Config.cfg" if key == "zseries-pv4" else ".env"
        raw = _swharden(key, suffix).read_bytes()
        seeds.env[f"{key}.{'cfg' if key == 'zseries-pv4' else 'env'}"] = reduce_env(raw)
        if len(raw) < 60_000:
            seeds.env[f"{key}-raw"] = raw
    seeds.env["real-4plane.env"] = reduce_env(
        need(FOUR_PLANE / f"{FOUR_PLANE.name}.env").read_bytes()
    )
    _build_bruker(seeds, volume_xml)
    _build_tiff(seeds, folder)
    _build_binary(seeds, folder)
    _build_suite2p(seeds)
    _build_truth(seeds, folder)
    return seeds


# ---------------------------------------------------------------------------------------------
# builders: one input each


def build_xml(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    keys = sorted(seeds.xml)
    if i < len(keys):
        key, data, note = keys[i], seeds.xml[keys[i]], "unmutated"
    else:
        key = pick(rng, keys)
        r = rng.random()
        if r < 0.08:
            data, note = random_blob(rng), "random-blob"
        else:
            data, note = mutate_xml(rng, seeds.xml[key])
    path = folder / "rec.xml"
    path.write_bytes(data)
    return Case(path, f"seed={key} {note}", expected="reference" if note == "unmutated" else None)


def build_env(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    keys = sorted(seeds.env)
    if i < len(keys):
        key, data, note = keys[i], seeds.env[keys[i]], "unmutated"
    else:
        key = pick(rng, keys)
        if rng.random() < 0.08:
            data, note = random_blob(rng), "random-blob"
        else:
            data, note = mutate_xml(rng, seeds.env[key])
    path = folder / ("recConfig.cfg" if key.startswith("zseries") else "rec.env")
    path.write_bytes(data)
    return Case(path, f"seed={key} {note}", expected="reference" if note == "unmutated" else None)


def _foreign_file(rng: np.random.Generator, t: Template) -> tuple[str, bytes]:
    frame = t.frames[0] if t.frames else "rec_Cycle00001_Ch2_000001.ome.tif"
    base = frame.split("_Cycle")[0]
    choices = [
        ("other.xml", b'<?xml version="1.0"?><NotPV><a/></NotPV>'),
        (f"{base}.xml", b'<?xml version="1.0"?><Other/>'),
        ("other.env", b'<?xml version="1.0"?><Environment version="5.5"></Environment>'),
        ("other_Cycle00001_Ch2_000001.ome.tif", frame_bytes(7)),
        (re.sub(r"_(\d{6})\.", "_000099.", frame), frame_bytes(9)),  # beyond the last: a gap
        (re.sub(r"_Ch\d+_", "_Ch7_", frame), frame_bytes(9)),  # a channel the metadata lacks
        (re.sub(r"Cycle\d{5}", "Cycle00009", frame), frame_bytes(9)),
        (frame.replace(".ome.tif", ".tif"), b""),
        ("notes.txt", b"hello"),
        (f"{base}_Cycle00001_VoltageRecording_001.xml", b"<VRecSessionEntry/>"),
    ]
    return pick(rng, choices)


def build_bruker(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    n_t = len(seeds.bruker)
    t = seeds.bruker[i % n_t] if i < n_t else seeds.bruker[int(rng.integers(n_t))]
    if t.name == "real-1plane" and i >= n_t and rng.random() < 0.6:  # 1.5 MB: less often
        t = seeds.bruker[0]
    files: dict[str, bytes | None] = dict(t.files)
    notes, dirs = [], []
    if i >= n_t:
        for _ in range(int(rng.integers(1, 3))):
            r = rng.random()
            if r < 0.4 and t.meta:
                name = pick(rng, t.meta)
                if files.get(name) is None:
                    continue
                files[name], note = mutate_xml(rng, files[name])
                notes.append(f"{name}:{note}")
            elif r < 0.75:
                name = pick(rng, t.frames)
                if files.get(name) is None:
                    continue
                files[name], note = mutate_tiff(rng, files[name])
                notes.append(f"{name}:{note}")
            elif r < 0.85:
                name = pick(rng, sorted(files))
                files[name] = None
                notes.append(f"removed {name}")
            elif r < 0.95:
                name, data = _foreign_file(rng, t)
                files[name] = data
                notes.append(f"added {name}")
            else:
                name = pick(rng, t.frames)
                dirs.append(name)
                files[name] = None
                notes.append(f"folder named {name}")
    for name, data in files.items():
        if data is not None:
            (folder / name).write_bytes(data)
    for name in dirs:
        (folder / name).mkdir(exist_ok=True)
    path = folder
    metas = [m for m in t.meta if files.get(m) is not None]
    if metas and rng.random() < 0.15:
        path = folder / pick(rng, metas)
    kwargs = {"frames_per_chunk": int(pick(rng, (1, 2, 64)))} if rng.random() < 0.3 else {}
    note = ", ".join(notes) or "unmutated"
    return Case(path, f"template={t.name} {note}", t.expected if not notes else None, kwargs)


def build_tiff(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    keys = sorted(seeds.tiff)
    if i < len(keys):
        key, data, note = keys[i], seeds.tiff[keys[i]], "unmutated"
    else:
        key = pick(rng, keys)
        r = rng.random()
        if r < 0.05:
            data, note = random_blob(rng), "random-blob"
        elif r < 0.75:
            data, note = mutate_tiff(rng, seeds.tiff[key])
        else:
            data, note = mutate_bytes(rng, seeds.tiff[key])
    path = folder / pick(rng, ("stack.tif", "stack.tiff", "stack.ome.tif", "STACK.TIF"))
    path.write_bytes(data)
    expected = seeds.tiff_expected[key] if note == "unmutated" else None
    return Case(path, f"seed={key} {note}", expected)


def build_tiff_folder(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    keys = sorted(seeds.tiff_folders)
    key = keys[i % len(keys)] if i < len(keys) else pick(rng, keys)
    files: dict[str, bytes | None] = dict(seeds.tiff_folders[key])
    names = sorted(files)
    notes, dirs = [], []
    if i >= len(keys):
        for _ in range(int(rng.integers(1, 3))):
            r = rng.random()
            name = pick(rng, names)
            if r < 0.5 and files.get(name) is not None:
                files[name], note = mutate_tiff(rng, files[name])
                notes.append(f"{name}:{note}")
            elif r < 0.65 and files.get(name) is not None:
                files[name], note = mutate_bytes(rng, files[name])
                notes.append(f"{name}:{note}")
            elif r < 0.75:
                files[name] = None
                notes.append(f"removed {name}")
            elif r < 0.9:  # another stack: other shape, dtype, channels or plain junk
                other = pick(rng, sorted(seeds.tiff))
                new = pick(rng, ("zz_last.tif", "00_first.tif", names[0].replace(".", "_b.")))
                blob = pick(rng, (seeds.tiff[other], b"", b"not a tiff", random_blob(rng)))
                files[new] = blob
                notes.append(f"added {new} ({other if blob is seeds.tiff[other] else 'junk'})")
            else:
                new = pick(rng, ("sub.tif", ".hidden.tif", "notes.txt"))
                if new == "sub.tif":
                    dirs.append(new)
                else:
                    files[new] = random_blob(rng)
                notes.append(f"added {new}")
    for name, data in files.items():
        if data is not None:
            (folder / name).write_bytes(data)
    for name in dirs:
        (folder / name).mkdir(exist_ok=True)
    expected = seeds.tiff_folder_expected[key] if not notes else None
    return Case(folder, f"seed={key} {', '.join(notes) or 'unmutated'}", expected)


_JSON_GARBAGE: tuple[Any, ...] = (
    None, -1, 0, -5, 1, 2, 1.5, 1e308, -1e308, 10**30, 10**400, -(10**400), float("nan"),
    float("inf"), float("-inf"), True, False, "abc", "10", "", [], {}, [1, 2], [0.5], [1, 2, 3],
    ["a", "b"], [None, 1], {"a": 1}, 2**63, 2**64, 1e-300, -0.0,
)  # fmt: skip
_DTYPES = (
    "uint16", "<u2", ">u2", "=u2", "|u1", "uint8", "int8", "int16", "int32", "int64", "uint64",
    "float16", "float32", "float64", "complex64", "complex128", "bool", "?", "b", "V8", "O",
    "object", "U4", "S3", "M8[ns]", "m8", "uint16,uint16", "(2,)u2", "u2 ", "", "uint128",
    "float128", "f8", "i", "l", "Q", "e", "<f4", ">f8", "int", "float", "str", 42, None,
    ["u2"], {"a": 1}, "u2\x00", "[('a', '<u2')]",
)  # fmt: skip
_JSON_KEYS = ("frames", "y", "x", "dtype", "planes", "shape", "frame_rate_hz", "frame_period_s",
              "pixel_size_um", "z_step_um", "bit_depth", "inferred")  # fmt: skip


def mutate_json(rng: np.random.Generator, meta: dict) -> tuple[bytes, str]:
    meta = dict(meta)
    notes = []
    r = rng.random()
    if r < 0.05:
        top = pick(rng, ([], [1, 2], "str", 1, None, [meta]))
        return json.dumps(top).encode(), f"json-top={top!r:.30}"
    if r < 0.08:
        depth = int(pick(rng, (100, 10_000, 200_000)))
        return ("[" * depth + "]" * depth).encode(), f"json-nested{depth}"
    for _ in range(int(rng.integers(1, 4))):
        key = pick(rng, _JSON_KEYS)
        op = rng.random()
        if op < 0.3 and key in meta:
            del meta[key]
            notes.append(f"del {key}")
        elif key == "dtype" or (key in meta and rng.random() < 0.1):
            meta[key] = pick(rng, _DTYPES) if key == "dtype" else pick(rng, _JSON_GARBAGE)
            notes.append(f"{key}={meta[key]!r:.30}")
        elif key in meta and isinstance(meta[key], int) and rng.random() < 0.5:
            meta[key] = int(meta[key]) + int(pick(rng, (-1, 1, -meta[key], meta[key], 10**6)))
            notes.append(f"{key}={meta[key]!r:.30}")
        else:
            meta[key] = pick(rng, _JSON_GARBAGE)
            notes.append(f"{key}={meta[key]!r:.30}")
    text = json.dumps(meta, allow_nan=True)
    if rng.random() < 0.1:
        text, more = mutate_bytes(rng, text.encode())
        return text, "json:" + ",".join(notes) + "+" + more
    return text.encode(), "json:" + ",".join(notes)


def build_binary(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    keys = sorted(seeds.binary)
    key = keys[i % len(keys)] if i < len(keys) else pick(rng, keys)
    raw, text, arr = seeds.binary[key]
    stem = pick(rng, ("movie", "binary_video", "a.b"))
    bin_data: bytes | None = raw
    json_data: bytes | None = text
    notes = []
    if i >= len(keys):
        for _ in range(int(rng.integers(1, 3))):
            r = rng.random()
            if r < 0.55:
                json_data, note = mutate_json(rng, json.loads(text))
            elif r < 0.62 and json_data is not None:
                json_data, note = mutate_bytes(rng, json_data)
            elif r < 0.85 and bin_data is not None:
                itemsize = arr.dtype.itemsize
                frame = arr[0].nbytes
                delta = int(pick(rng, (-1, 1, -itemsize, itemsize, -frame, frame, -len(bin_data),
                                       frame * 1000, int(rng.integers(-64, 65)))))  # fmt: skip
                if delta < 0:
                    bin_data = bin_data[: max(0, len(bin_data) + delta)]
                else:
                    bin_data = bin_data + rng.bytes(delta)
                note = f"bin{delta:+d}"
            elif r < 0.9 and bin_data is not None:
                bin_data = rng.bytes(len(bin_data))  # same size, other pixels: still a movie
                note = "bin-random-pixels"
            elif r < 0.95:
                json_data, note = None, "json removed"
            else:
                bin_data, note = None, "bin removed"
            notes.append(note)
    if bin_data is not None:
        (folder / f"{stem}.bin").write_bytes(bin_data)
    if json_data is not None:
        (folder / f"{stem}.json").write_bytes(json_data)
    if bin_data is None and rng.random() < 0.3:
        (folder / f"{stem}.bin").mkdir()
        notes.append("bin is a folder")
    target = pick(rng, ("bin", "bin", "json", "stem", "folder"))
    path = {"bin": folder / f"{stem}.bin", "json": folder / f"{stem}.json",
            "stem": folder / stem, "folder": folder}[target]  # fmt: skip
    kwargs = {}
    if rng.random() < 0.15:  # what the caller says when the sidecar is missing or incomplete
        shape = [int(s) for s in arr.shape]
        shape[int(rng.integers(len(shape)))] = pick(rng, (None, None, 0, -3, 1, 10**12))
        kwargs = {"missing_shape": tuple(shape), "dtype": pick(rng, _DTYPES[:20])}
    expected = arr if not notes and not kwargs else None
    note = f"seed={key} path={target} {', '.join(notes) or 'unmutated'}"
    return Case(path, note + (f" kwargs={kwargs}" if kwargs else ""), expected, kwargs)


_OPS_GARBAGE: tuple[Any, ...] = (
    None, -1, 0, 1, 3, 512.0, 512.5, -512, 1e308, float("nan"), float("inf"), 10**30, 10**400,
    "512", "abc",
    True, [512], np.int64(512), np.int16(-5), np.float32(30.0), np.uint64(2**64 - 1),
    np.array(512), np.array([512, 512]), np.array("x"), b"512", {"a": 1}, 2**63, complex(1, 1),
)  # fmt: skip
_OPS_KEYS = ("Ly", "Lx", "nframes", "fs", "suite2p_version", "nchannels", "nplanes", "yrange",
             "xrange", "diameter", "aspect", "tau", "save_path0")  # fmt: skip


def _size_for(ops: Any, default: int) -> int:
    try:
        ly, lx, n = (ops[k] for k in ("Ly", "Lx", "nframes"))
        size = int(ly) * int(lx) * int(n) * 2
    except Exception:
        return default
    return size if 0 < size <= 2**40 else default


def build_suite2p(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    """ops.npy derived from the real one (bytes or dict damaged), sparse data.bin beside it."""
    real = seeds.ops_small
    default = 512 * 512 * 5322 * 2
    size, notes, ops_obj = default, [], real
    r = rng.random() if i >= 2 else 1.0
    if i == 0:
        data, note = seeds.ops_real, "real ops.npy unmutated"
    elif i == 1 or r < 0.04:
        data, note = seeds.ops_small_bytes, "reduced ops.npy unmutated"
    elif r < 0.2:
        data, note = mutate_bytes(rng, seeds.ops_real)
        note = "real ops.npy " + note
    elif r < 0.5:
        data, note = mutate_bytes(rng, seeds.ops_small_bytes)
        note = "reduced ops.npy " + note
    else:
        ops_obj = dict(real)
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            key = pick(rng, _OPS_KEYS)
            if rng.random() < 0.25:
                ops_obj.pop(key, None)
                parts.append(f"del {key}")
            else:
                ops_obj[key] = pick(rng, _OPS_GARBAGE)
                parts.append(f"{key}={ops_obj[key]!r:.30}")
        if rng.random() < 0.05:
            ops_obj = pick(rng, ([ops_obj], np.arange(3), None, "ops", 5))
            parts.append(f"ops is {type(ops_obj).__name__}")
        data, note = npy_bytes(ops_obj), "reduced ops dict " + ",".join(parts)
        size = _size_for(ops_obj, default)
    notes.append(note)
    r = rng.random()
    if r < 0.1:
        size = int(pick(rng, (0, 1, size - 1, size + 1, size - 512 * 512 * 2, 512 * 512 * 2)))
        notes.append(f"data.bin size {size}")
    (folder / "ops.npy").write_bytes(data)
    bin_name = "data_raw.bin" if rng.random() < 0.1 else "data.bin"
    with open(folder / bin_name, "wb") as fh:
        fh.truncate(max(size, 0))  # sparse: no disk used
    if rng.random() < 0.1:
        chan2 = bin_name.replace("data", "data_chan2")
        with open(folder / chan2, "wb") as fh:
            fh.truncate(max(size - int(pick(rng, (0, 0, 2, 512 * 512 * 2))), 0))
        notes.append(chan2)
    target = pick(rng, ("folder", "folder", "ops", "bin"))
    path = {"folder": folder, "ops": folder / "ops.npy", "bin": folder / bin_name}[target]
    kwargs = {"allow_pickle": True if rng.random() < 0.97 else pick(rng, (False, None, 1))}
    expected = "zeros" if i < 2 else None
    return Case(path, f"{', '.join(notes)} path={target} {kwargs}", expected, kwargs)


def build_groundtruth(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    path = folder / pick(rng, ("truth.npz", "truth.NPZ", "truth"))
    r = rng.random() if i else 1.0
    if i == 0:
        path.write_bytes(seeds.truth)
        return Case(path, "unmutated", seeds.truth_object)
    if r < 0.05:
        path.write_bytes(random_blob(rng))
        return Case(path, "random-blob")
    if r < 0.35:
        data, note = mutate_bytes(rng, seeds.truth)
        path.write_bytes(data)
        return Case(path, note)
    members = dict(seeds.truth_members)
    notes = []
    for _ in range(int(rng.integers(1, 4))):
        key = pick(rng, sorted(members)) if members else "_meta"
        op = int(rng.integers(8))
        if op == 0:
            members.pop(key, None)
            notes.append(f"del {key}")
        elif op == 1 and key in members:
            members[key + "_x" if rng.random() < 0.5 else "junk"] = members.pop(key)
            notes.append(f"renamed {key}")
        elif (
            op in (2, 3) and key != "_meta" and key in members and members[key].dtype.kind in "biuf"
        ):
            a = members[key]
            members[key] = pick(rng, (
                a.astype(np.float64), a.astype(np.int8), a.astype(bool), a.astype("U3"),
                a.ravel(), a.ravel()[:1], np.empty((0, *a.shape[1:]), a.dtype),
                np.asarray(a.ravel()[0]) if a.size else a, -np.abs(a.astype(np.int64)) - 1,
                a.astype(np.int64) * 1000, np.full(a.shape, np.nan),
            ))  # fmt: skip
            notes.append(f"{key} -> {members[key].dtype}{members[key].shape}")
        elif op == 4 and key in members and key != "_meta":
            members[key] = np.array([{"x": 1}], dtype=object)
            notes.append(f"{key} object")
        else:
            try:
                meta = json.loads(str(members.get("_meta", "{}")))
            except ValueError:
                meta = None
            if isinstance(meta, dict) and meta and rng.random() < 0.8:
                k = pick(rng, sorted(meta))
                if rng.random() < 0.4:
                    del meta[k]
                else:
                    meta[k] = pick(rng, _JSON_GARBAGE)
                if rng.random() < 0.1:
                    meta["unknown_field"] = 1
                text = json.dumps(meta)
                notes.append(f"_meta[{k}]")
            else:
                text = pick(rng, ('"abc"', "123", "[1, 2]", "null", "{", "", '{"format": 1}'))
                notes.append(f"_meta={text!r}")
            members["_meta"] = np.asarray(text)
    buf = io.BytesIO()
    save = np.savez_compressed if rng.random() < 0.5 else np.savez
    save(buf, **members)
    path.write_bytes(buf.getvalue())
    return Case(path, "members:" + ",".join(notes))


# ---------------------------------------------------------------------------------------------
# sniffing / napari: anything a user might drop


_JUNK_NAMES = (
    "movie.tif", "movie.tiff", "MOVIE.TIF", "x.ome.tif", "binary_video.bin", "binary_video.json",
    "rec.xml", "rec.env", "recConfig.cfg", "ops.npy", "truth.npz", "noext", "notes.txt",
    "rec_Cycle00001_Ch2_000001.ome.tif", "rec_Cycle00002_Ch1_000003.tif", ".hidden.tif",
    "a b (1).tif", "\u00e9t\u00e9.tif",
)  # fmt: skip


def build_junk(rng: np.random.Generator, folder: Path) -> tuple[Path, str]:
    """Random files under names readers look at; odd folder entries (FIFOs, links, folders)."""
    r = rng.random()
    if r < 0.4:
        name = pick(rng, _JUNK_NAMES)
        (folder / name).write_bytes(random_blob(rng))
        return (folder / name if rng.random() < 0.7 else folder), f"junk file {name}"
    if r < 0.8:
        names = [pick(rng, _JUNK_NAMES) for _ in range(int(rng.integers(0, 6)))]
        for name in names:
            (folder / name).write_bytes(random_blob(rng))
        if rng.random() < 0.2:
            (folder / "sub.tif").mkdir()
            names.append("sub.tif/")
        return folder, f"junk folder {names}"
    kind = int(rng.integers(6))
    name = pick(rng, ("rec.xml", "rec.env", "movie.tif", "binary_video.bin",
                      "rec_Cycle00001_Ch2_000001.ome.tif"))  # fmt: skip
    target = folder / name
    if kind == 0 and hasattr(os, "mkfifo"):
        os.mkfifo(target)
        note = f"FIFO {name}"
    elif kind == 1:
        target.symlink_to(folder / "missing")
        note = f"dangling link {name}"
    elif kind == 2:
        target.symlink_to(target)
        note = f"self link {name}"
    elif kind == 3:
        target.mkdir()
        note = f"folder named {name}"
    elif kind == 4:
        return folder / "does-not-exist.tif", "missing path"
    else:
        (folder / "binary_video.bin").write_bytes(b"\x00" * 8)
        (folder / "binary_video.json").mkdir()
        return folder / "binary_video.bin", "json sidecar is a folder"
    return (target if rng.random() < 0.5 else folder), note


def as_layers_ok(layers: Any) -> str | None:
    """Why napari could not use ``layers`` (a reader's LayerData list), or None if it can."""
    if not isinstance(layers, list) or not layers:
        return f"reader returned {type(layers).__name__}, not a non-empty list of LayerData"
    for item in layers:
        if not (isinstance(item, tuple) and len(item) == 3 and item[2] == "image"):
            return f"not an (data, kwargs, 'image') tuple: {item!r:.200}"
        data, kwargs, _ = item
        if data.ndim not in (3, 4) or min(data.shape) < 1:
            return f"layer data of shape {data.shape}"
        for key in ("scale", "units", "axis_labels"):
            if len(kwargs.get(key, ())) != data.ndim:
                return f"{key}={kwargs.get(key)!r} for {data.ndim}-D data"
        if not all(math.isfinite(s) and s > 0 for s in kwargs["scale"]):
            return f"scale={kwargs['scale']!r}"
        limits = kwargs.get("contrast_limits")
        try:
            lo, hi = (float(v) for v in limits)
        except (TypeError, ValueError, OverflowError) as exc:
            return f"contrast_limits={limits!r:.80} ({type(exc).__name__}: {exc})"
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            return f"contrast_limits=({lo}, {hi})"
    return None


# ---------------------------------------------------------------------------------- harness
# shared by the fuzz tests of the readers and of the outputs


class Broken(Exception):
    """A reader or loader broke the contract (wrong result, changed files, too slow)."""


class InputTimeout(
    BaseException
):  # not an Exception: ``except Exception`` in a reader can't eat it
    pass


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of everything under ``root`` (links not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return out


def attempt(fn, *args, **kwargs):
    """``("ok", result)``, or ``(our exception's type name, None)``; anything else propagates."""
    from napari_calcium.errors import NapariCalciumError

    try:
        return "ok", fn(*args, **kwargs)
    except NapariCalciumError as exc:
        if not str(exc).strip():
            raise Broken(f"{type(exc).__name__} with an empty message") from exc
        return type(exc).__name__, None


@contextlib.contextmanager
def alarm_clock(per_input_s: float):
    """A per-input alarm (``arm(seconds)``) where signals are available, else a no-op."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()

    def ring(signum, frame):
        raise InputTimeout(f"no result after {per_input_s} s (hang?)")

    @contextlib.contextmanager
    def arm(seconds: float):
        if usable:
            signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            if usable:
                signal.setitimer(signal.ITIMER_REAL, 0)

    old = signal.signal(signal.SIGALRM, ring) if usable else None
    try:
        yield arm
    finally:
        if usable:
            signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def library_logs_kept_local(*names: str):
    """Log records of these libraries (tifffile, roifile) about damaged files still reach the
    readers' own handlers (that is how they detect damage), but neither pytest's log capture,
    which would keep every one of thousands, nor stderr (logging's last resort)."""
    loggers = [logging.getLogger(name) for name in names]
    quiet = logging.NullHandler()
    saved = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.propagate = False
        logger.addHandler(quiet)
    try:
        yield
    finally:
        for logger, old in zip(loggers, saved, strict=True):
            logger.propagate = old
            logger.removeHandler(quiet)

"""Seeds and mutators for the output-loader fuzz test (``tests/io/test_fuzz_outputs.py``).

Seeds are what napari-calcium itself writes: a real pipeline results folder (``run_pipeline`` on
a tiny synthetic movie), ROI files of every format :func:`~napari_calcium.io.roi_files.load_rois`
reads, and trace sets (``.npz`` with and without its sidecar, a CSV set, the pipeline's
deconvolution set with spikes). The mutators work on bytes (:func:`fuzz_inputs.mutate_bytes`),
on ``.npz`` members (removed, renamed, replaced by arrays of another dtype or shape, object
arrays, damaged or lying ``.npy`` headers), on JSON documents (keys removed, values of the wrong
type, a byte-order mark, another encoding, deep nesting) and on CSV text (lines and cells).

Every builder takes a ``numpy.random.Generator`` and a fresh folder, writes one input there and
returns a :class:`fuzz_inputs.Case`; the test seeds the generator with ``(family, index)``, so any
input is rebuilt exactly from its index. Pickled suite2p files are only loaded inside
:func:`fuzz_inputs.guarded_unpickling`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fuzz_inputs as fz
import numpy as np
from fuzz_inputs import Case, pick

import napari_calcium as nc
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.io.roi_files import save_rois
from napari_calcium.io.tiff import write_tiff_stack
from napari_calcium.io.trace_files import save_traces
from napari_calcium.pipeline import run_pipeline

BOM = b"\xef\xbb\xbf"
JSON_GARBAGE = (*fz._JSON_GARBAGE, "é", "\x00", [[1, 2]], [[None]], {"coordinates": []})
#: files of a results folder that load_results reads (when every step ran)
RESULT_FILES = (
    "provenance.json", "rois.npz", "steps/deconvolve.npz", "steps/deconvolve.json",
    "events.npz", "summary_images.npz",
)  # fmt: skip


# ---------------------------------------------------------------------------------- seeds
@dataclass
class Seeds:
    results: dict[str, bytes] = field(default_factory=dict)  # rel path -> bytes (every file)
    results_expected: Any = None
    rois: dict[str, dict[str, bytes]] = field(default_factory=dict)  # kind -> {name: bytes}
    rois_expected: dict[str, RoiSet] = field(default_factory=dict)  # kind -> what was saved
    roi_shape: tuple[int, int] = (12, 14)
    stat: list[dict] = field(default_factory=list)
    traces: dict[str, dict[str, bytes]] = field(default_factory=dict)  # kind -> {name: bytes}
    traces_expected: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> F


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _npy(arr: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def build_seeds(folder: Path) -> Seeds:
    """Write every seed once (about 3 s: one tiny pipeline run)."""
    seeds = Seeds()
    # a pipeline results folder
    rec = nc.simulate_recording(n_frames=120, shape=(32, 32), n_neurons=3, seed=4)
    movie = write_tiff_stack(
        folder / "movie.tif", rec.movie, frame_rate_hz=rec.metadata["frame_rate_hz"]
    )
    run = run_pipeline(movie, folder / "results")
    seeds.results = _files(run.out_dir)
    seeds.results_expected = nc.load_results(run.out_dir)
    # ROI files of every format
    labels = np.zeros(seeds.roi_shape, np.uint16)
    labels[2:5, 3:6] = 1
    labels[7:10, 8:12] = 2
    labels[1, 10:13] = 5
    rois = RoiSet.from_label_image(labels)
    kinds = {"npz": "rois.npz", "neurofinder": "regions.json", "labels": "labels.tif"}
    kinds.update(imagej="RoiSet.zip")
    for kind, name in kinds.items():
        path = save_rois(rois, folder / name)
        seeds.rois[kind] = {name: path.read_bytes()}
    one = RoiSet.from_label_image(np.where(labels == 1, 1, 0).astype(np.uint16))
    seeds.rois["imagej-roi"] = {"one.roi": save_rois(one, folder / "one.roi").read_bytes()}
    seeds.rois["npy"] = {"labels.npy": _npy(labels)}
    seeds.stat = rois.to_suite2p_stat()
    seeds.rois["suite2p"] = {
        "stat.npy": _npy(np.array(seeds.stat, dtype=object)),
        "ops.npy": _npy(np.array({"Ly": 12, "Lx": 14, "fs": 30.0}, dtype=object)),
        "iscell.npy": _npy(np.array([[1.0, 0.9], [0.0, 0.2], [1.0, 0.7]])),
    }
    seeds.rois_expected = {k: rois for k in seeds.rois}
    seeds.rois_expected["imagej-roi"] = one
    # trace sets
    rng = np.random.default_rng(0)
    data = (100 + 10 * rng.standard_normal((30, *seeds.roi_shape))).astype(np.float32)
    traces = nc.extract_traces(data, rois, frame_rate_hz=10.0)
    dff = nc.compute_dff(traces.corrected, frame_rate_hz=10.0, window_s=1.0)
    for kind, name in (("npz", "t.npz"), ("csv", "t.csv")):
        sub = folder / f"traces-{kind}"
        sub.mkdir()
        save_traces(sub / name, traces, dff=dff, rois=rois)
        seeds.traces[kind] = _files(sub)
        seeds.traces_expected[kind] = traces.F
    seeds.traces["spikes"] = {
        name: seeds.results[f"steps/{name}"] for name in ("deconvolve.npz", "deconvolve.json")
    }
    seeds.traces_expected["spikes"] = seeds.results_expected.traces.F
    shutil.rmtree(folder)
    folder.mkdir()
    return seeds


# ------------------------------------------------------------------------------ mutators
def damaged_header(data: bytes) -> bytes:
    """A .npy whose header dict is left unclosed (numpy's parser: tokenize.TokenError)."""
    if data[:6] != b"\x93NUMPY" or len(data) < 10:
        return data[:5]
    hlen = int.from_bytes(data[8:10], "little")
    header = data[10 : 10 + hlen].replace(b")", b" ").replace(b"}", b" ")
    return data[:10] + header + data[10 + hlen :]


def lying_header(rng: np.random.Generator, data: bytes) -> bytes:
    """A .npy whose header states another shape (same length: a plausible bit flip)."""
    head = data[:128]
    digits = [k for k, c in enumerate(head) if 48 <= c <= 57 and k > 10]
    if not digits:
        return data
    k = pick(rng, digits)
    out = bytearray(data)
    out[k] = 48 + (out[k] - 48 + int(rng.integers(1, 10))) % 10
    return bytes(out)


def _wrong_array(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    """``a`` as another dtype or shape, or garbage of the same shape."""
    choices: list[Callable[[], Any]] = [
        lambda: a.astype(np.float64) if a.dtype.kind in "biuf" else np.zeros(3),
        lambda: a.astype("U3"),
        lambda: a.ravel(),
        lambda: a.ravel()[:1],
        lambda: np.empty((0, *a.shape[1:]), a.dtype),
        lambda: np.asarray(a.ravel()[0]) if a.size else a,
        lambda: np.array([{"x": 1}], dtype=object),
        lambda: np.full(a.shape, np.nan),
        lambda: np.full(a.shape, 2**62, np.int64),
        lambda: -np.ones(a.shape, np.int64),
        lambda: a.astype(bool) if a.dtype.kind in "biuf" else a,
        lambda: np.stack([a, a]),
        lambda: a.T,
        lambda: np.array("garbage"),
        lambda: np.zeros((2, 2), complex),
    ]
    return pick(rng, choices)()


def mutate_npz(rng: np.random.Generator, data: bytes) -> tuple[bytes, str]:
    """1-3 member-level changes to an .npz (bytes-level when it is not a readable zip)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {info.filename: zf.read(info) for info in zf.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error):
        out, note = fz.mutate_bytes(rng, data)
        return out, "npz-not-zip+" + note
    notes = []
    for _ in range(int(rng.integers(1, 4))):
        if not members:
            break
        key = pick(rng, sorted(members))
        op = int(rng.integers(8))
        if op == 0:
            del members[key]
            notes.append(f"del {key}")
        elif op == 1:
            new = pick(rng, (key[:-4] + "_x.npy", "junk.npy", key[:-4], key.upper()))
            members[new] = members.pop(key)
            notes.append(f"rename {key}->{new}")
        elif op in (2, 3):
            try:
                arr = np.load(io.BytesIO(members[key]), allow_pickle=False)
                members[key] = _npy(_wrong_array(rng, np.asarray(arr)))
                notes.append(f"{key} wrong array")
            except Exception:
                members[key] = _npy(np.zeros(2))
                notes.append(f"{key} zeros")
        elif op == 4:
            members[key] = damaged_header(members[key])
            notes.append(f"{key} damaged header")
        elif op == 5:
            members[key] = lying_header(rng, members[key])
            notes.append(f"{key} lying header")
        else:
            members[key], note = fz.mutate_bytes(rng, members[key])
            notes.append(f"{key} {note}")
    buf = io.BytesIO()
    compression = zipfile.ZIP_DEFLATED if rng.random() < 0.5 else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return buf.getvalue(), "npz:" + ",".join(notes)


def _nodes(obj: Any, path: tuple = (), depth: int = 0) -> list[tuple]:
    """Paths to every dict value / list item down to depth 3."""
    out = []
    if depth > 3:
        return out
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    )
    for k, v in list(items)[:40]:
        out.append((*path, k))
        out.extend(_nodes(v, (*path, k), depth + 1))
    return out


def mutate_json_doc(rng: np.random.Generator, doc: Any) -> tuple[bytes, str]:
    """A JSON document with 1-3 values removed or replaced by the wrong type, or re-encoded."""
    r = rng.random()
    if r < 0.04:
        top = pick(rng, ([], {}, "str", 1, None, [doc]))
        return json.dumps(top).encode(), f"json-top={top!r:.30}"
    if r < 0.06:
        depth = int(pick(rng, (100, 5_000, 100_000)))
        return ("[" * depth + "]" * depth).encode(), f"json-nested{depth}"
    doc = json.loads(json.dumps(doc))
    notes = []
    for _ in range(int(rng.integers(1, 4))):
        nodes = _nodes(doc)
        if not nodes:
            break
        path = pick(rng, nodes)
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        if rng.random() < 0.35:
            del parent[key]
            notes.append(f"del {'/'.join(map(str, path))}")
        else:
            parent[key] = pick(rng, JSON_GARBAGE)
            notes.append(f"{'/'.join(map(str, path))}={parent[key]!r:.30}")
    text = json.dumps(doc, allow_nan=True, ensure_ascii=rng.random() < 0.7)
    raw = text.encode()
    r = rng.random()
    if r < 0.1:
        raw, note = BOM + raw, "bom"
    elif r < 0.15:
        raw, note = text.encode("latin-1", "replace"), "latin-1"
    elif r < 0.22:
        raw, note = fz.mutate_bytes(rng, raw)
    else:
        note = ""
    return raw, "json:" + ",".join(notes) + (f"+{note}" if note else "")


CSV_GARBAGE = (
    "", "abc", "nan", "inf", "1e309", "1;2", "roi_x", "roi_-1", "roi_" + "9" * 30, "time", "1,2",
    '"1"', "0x10", "é",
)  # fmt: skip


def mutate_csv(rng: np.random.Generator, data: bytes) -> tuple[bytes, str]:
    """Lines removed, duplicated or cut; cells replaced by garbage; or bytes-level changes."""
    if rng.random() < 0.3:
        out, note = fz.mutate_bytes(rng, data)
        return out, "csv+" + note
    lines = data.decode("utf-8", "replace").split("\n")
    notes = []
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(len(lines)))
        op = int(rng.integers(5))
        if op == 0:
            del lines[k]
            notes.append(f"del line {k}")
        elif op == 1:
            lines.insert(k, lines[k])
            notes.append(f"dup line {k}")
        elif op == 2:
            lines[k] = lines[k][: int(rng.integers(len(lines[k]) + 1))]
            notes.append(f"cut line {k}")
        else:
            cells = lines[k].split(",")
            c = int(rng.integers(len(cells)))
            cells[c] = pick(rng, CSV_GARBAGE)
            lines[k] = ",".join(cells)
            notes.append(f"cell {k}:{c}={cells[c]!r}")
    return "\n".join(lines).encode(), "csv:" + ",".join(notes)


def mutate_file(rng: np.random.Generator, name: str, data: bytes) -> tuple[bytes, str]:
    """The structural mutator for a file's kind, or bytes-level changes (35 %)."""
    if rng.random() < 0.35:
        return fz.mutate_bytes(rng, data)
    if name.endswith(".npz"):
        return mutate_npz(rng, data)
    if name.endswith(".json"):
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (ValueError, RecursionError):
            return fz.mutate_bytes(rng, data)
        return mutate_json_doc(rng, doc)
    if name.endswith(".csv"):
        return mutate_csv(rng, data)
    if name.endswith(".npy") and rng.random() < 0.5:
        return (damaged_header(data), "damaged header") if rng.random() < 0.5 else (
            lying_header(rng, data), "lying header")  # fmt: skip
    return fz.mutate_bytes(rng, data)


def special(rng: np.random.Generator, path: Path) -> str:
    """Put a named pipe or a link to a device at ``path``."""
    if path.exists() or path.is_symlink():
        path.unlink()
    if rng.random() < 0.5:
        os.mkfifo(path)
        return "fifo"
    device = pick(rng, ("/dev/null", "/dev/zero"))
    path.symlink_to(device)
    return f"link->{device}"


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _reseal(files: dict[str, bytes], sidecar: str, rng: np.random.Generator) -> str:
    """Update a trace sidecar's sha256 entries to the (mutated) data files: the loader then
    parses the damaged file instead of stopping at the checksum."""
    import hashlib

    try:
        doc = json.loads(files[sidecar].decode("utf-8-sig"))
        for entry in doc["files"]:
            folder = sidecar.rpartition("/")[0]
            rel = f"{folder}/{entry['name']}" if folder else entry["name"]
            entry["sha256"] = hashlib.sha256(files[rel]).hexdigest()
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""
    files[sidecar] = json.dumps(doc).encode()
    return "+resealed"


# ------------------------------------------------------------------------------ builders
def build_results(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    """A results folder with 1-2 of the files load_results reads damaged."""
    out = folder / "out"
    files = {rel: seeds.results[rel] for rel in RESULT_FILES}
    if i == 0:
        _write(out, files)
        return Case(out, "unmutated", seeds.results_expected)
    notes = []
    special_at = None
    for _ in range(1 if rng.random() < 0.8 else 2):
        rel = pick(rng, RESULT_FILES)
        if rng.random() < 0.02:
            special_at = rel
            continue
        files[rel], note = mutate_file(rng, rel, files[rel])
        notes.append(f"{rel}: {note}")
    if any(n.startswith("steps/deconvolve.npz") for n in notes) and rng.random() < 0.6:
        notes.append(_reseal(files, "steps/deconvolve.json", rng))
    _write(out, files)
    if special_at is not None:
        notes.append(f"{special_at}: {special(rng, out / special_at)}")
    return Case(out, "; ".join(notes))


ROI_KINDS = ("npz", "neurofinder", "labels", "imagej", "imagej-roi", "npy", "suite2p")


def _mutate_stat(rng: np.random.Generator, stat: list[dict]) -> tuple[list, str]:
    """suite2p stat dicts with pixel lists, weights or scalars of the wrong kind."""
    stat = [dict(s) for s in stat]
    notes = []
    for _ in range(int(rng.integers(1, 3))):
        if not stat:
            break
        k = int(rng.integers(len(stat)))
        key = pick(rng, ("ypix", "xpix", "lam", "npix", "radius", "skew", "med"))
        value = pick(rng, (
            None, "abc", np.array(["1", "2"]), np.array([None, 1], dtype=object), [1.5, 2.0],
            np.array([2**40]), np.array([-1]), np.array([[1, 2], [3, 4]]), 1e309, [],
            np.array([np.nan]), np.array([True, False]), {"a": 1}, np.zeros(1000, np.int64),
        ))  # fmt: skip
        if rng.random() < 0.2:
            stat[k].pop(key, None)
            notes.append(f"stat[{k}] del {key}")
        else:
            stat[k][key] = value
            notes.append(f"stat[{k}][{key}]={value!r:.30}")
    if rng.random() < 0.1:
        stat.append(pick(rng, ("x", 1, None, {"ypix": [1]})))
        notes.append("stat entry of another type")
    return stat, ",".join(notes)


def build_rois(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    """A ROI file of one of the formats load_rois reads, damaged (index 0..6: unmutated)."""
    kind = ROI_KINDS[i % len(ROI_KINDS)] if i < len(ROI_KINDS) else pick(rng, ROI_KINDS)
    files = dict(seeds.rois[kind])
    main = next(iter(files))
    kwargs: dict[str, Any] = {}
    if kind in ("neurofinder", "imagej", "imagej-roi") or (
        kind == "suite2p" and rng.random() < 0.2
    ):
        kwargs["shape"] = seeds.roi_shape
    if kind == "suite2p":
        kwargs["allow_pickle"] = True
    target = folder / main if kind != "suite2p" or rng.random() < 0.5 else folder
    if i < len(ROI_KINDS):
        _write(folder, files)
        return Case(target, f"unmutated {kind}", seeds.rois_expected[kind], kwargs)
    notes = [kind]
    special_at = None
    if rng.random() < 0.02:
        special_at = pick(rng, sorted(files))
    elif kind == "suite2p" and rng.random() < 0.4:
        stat, note = _mutate_stat(rng, seeds.stat)
        files["stat.npy"] = _npy(np.array([*stat, None], dtype=object)[:-1])
        notes.append(note)
    elif kind == "suite2p" and rng.random() < 0.3:
        which = pick(rng, ("ops.npy", "iscell.npy"))
        if which == "ops.npy":
            ops = {"Ly": 12, "Lx": 14}
            ops[pick(rng, ("Ly", "Lx"))] = pick(rng, (*fz._JSON_GARBAGE, np.int64(12), 12.0))
            files[which] = _npy(np.array(ops, dtype=object))
            notes.append(f"ops={ops!r:.40}")
        else:
            files[which] = _npy(_wrong_array(rng, np.load(io.BytesIO(files[which]))))
            notes.append("iscell wrong array")
    else:
        name = pick(rng, sorted(files))
        files[name], note = mutate_file(rng, name, files[name])
        notes.append(f"{name}: {note}")
    _write(folder, files)
    if special_at is not None:
        notes.append(f"{special_at}: {special(rng, folder / special_at)}")
    return Case(target, "; ".join(notes), None, kwargs)


TRACE_KINDS = ("npz", "npz-alone", "csv", "spikes")


def build_traces(seeds: Seeds, rng: np.random.Generator, folder: Path, i: int) -> Case:
    """A trace set (npz with or without its sidecar, CSV set, spikes) with a file damaged."""
    kind = TRACE_KINDS[i % len(TRACE_KINDS)] if i < len(TRACE_KINDS) else pick(rng, TRACE_KINDS)
    files = dict(seeds.traces["npz" if kind == "npz-alone" else kind])
    if kind == "npz-alone":
        del files["t.json"]
    names = sorted(files)
    sidecar = next((n for n in names if n.endswith(".json")), None)
    data_names = [n for n in names if not n.endswith(".json")]
    entry = pick(rng, names)  # load_traces takes any file of the set
    if kind == "npz" and rng.random() < 0.5:
        entry = "t.npz"
    if i < len(TRACE_KINDS):
        _write(folder, files)
        expected = seeds.traces_expected["npz" if kind == "npz-alone" else kind]
        return Case(folder / entry, f"unmutated {kind}", expected)
    notes = [kind]
    special_at = None
    if rng.random() < 0.02:
        special_at = pick(rng, names)
    else:
        name = pick(rng, data_names + ([sidecar] * 2 if sidecar else []))
        files[name], note = mutate_file(rng, name, files[name])
        notes.append(f"{name}: {note}")
        if sidecar and name != sidecar and rng.random() < 0.6:
            notes.append(_reseal(files, sidecar, rng))
    _write(folder, files)
    if special_at is not None:
        notes.append(f"{special_at}: {special(rng, folder / special_at)}")
    return Case(folder / entry, "; ".join(notes))

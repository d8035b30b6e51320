"""Fuzzing :func:`napari_calcium.pipeline.load_config` (issue 15).

Thousands of deterministic inputs, each a mutation of the packaged ``default.toml`` or of a config
the tests use: keys removed, renamed or duplicated, values of the wrong type, huge, negative, NaN,
infinite or empty, bytes flipped, inserted or cut off, text that is not UTF-8 or starts with a
byte-order mark, deep nesting; as TOML and YAML files and as mappings. The only outcomes allowed
are a valid :class:`PipelineConfig` (which then passes :func:`load_config` again unchanged) or an
instance of :class:`napari_calcium.errors.NapariCalciumError`. Anything else fails, naming the
case and how to rebuild its input (``build_case(i)``).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from napari_calcium.errors import NapariCalciumError
from napari_calcium.pipeline import load_config
from napari_calcium.pipeline.config import PipelineConfig

N_CASES = 2400
DEFAULT = (
    Path(__file__).resolve().parents[2] / "src" / "napari_calcium" / "pipeline" / "default.toml"
).read_text(encoding="utf-8")
#: configs the tests and docs use, beside the default
SEEDS = [
    DEFAULT,
    "[motion]\nenabled = true\n\n[filter]\nenabled = true\n",
    '[dff]\nmethod = "maximin"\n\n[deconvolve]\nmethod = "oasis-ar2"\n',
    '[dff]\nwindow_s = 12.5\n[rois]\nmethod = "file"\npath = "r.npz"\n',
    '[filter]\nenabled = true\nkind = "gaussian"\nsigma = 1.5\n[summary]\nkinds = ["mean"]\n',
    '[export]\nformats = ["npz", "csv"]\nname = "traces"\n[events]\nsmooth_s = 0.2\n',
    "[open]\nframe_rate_hz = 30.0\nplane = 0\n[rois]\narea_range = [0.5, 2.5]\n",
]
HOSTILE_VALUES: list[Any] = [
    10**30, -(10**30), 2**63, 2**64, -1, 0, -0.0, 1e308, -1e308, 1e-320, float("nan"),
    float("inf"), float("-inf"), "", " ", "nan", "\0", "../x", "x" * 5000, [], [1] * 100,
    [[[[1]]]], {}, {"a": 1}, True, False, None, 3.5, 7, "noise", ["mean", "mean"], 10**400,
]  # fmt: skip


def _parse_toml(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
            + "}"
        )
    return '"None"'  # TOML has no null


def _to_toml(data: dict) -> str:
    lines = []
    for name, section in data.items():
        if isinstance(section, dict):
            lines.append(f"[{json.dumps(str(name))}]")
            lines += [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in section.items()]
        else:
            lines.append(f"{json.dumps(str(name))} = {_toml_value(section)}")
    return "\n".join(lines) + "\n"


def _mutate_mapping(rng: random.Random, data: dict) -> dict:
    """Remove, rename, duplicate-by-rename or retype keys and values of a parsed config."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for _ in range(rng.randint(1, 3)):
        if not data:
            data["dff"] = {}
        name = rng.choice(list(data))
        section = data[name]
        op = rng.randrange(9)
        if op == 0:
            del data[name]
        elif op == 1:
            data[name + rng.choice(["x", "_", "S"])] = data.pop(name)
        elif op == 2:
            data[name] = rng.choice(HOSTILE_VALUES)
        elif isinstance(section, dict) and section:
            key = rng.choice(list(section))
            if op == 3:
                del section[key]
            elif op == 4:
                section[rng.choice([key.upper(), key + "_", key[:-1], ""])] = section.pop(key)
            elif op == 5:
                value = section[key]
                section[key] = [value, value] if rng.random() < 0.5 else {"v": value}
            else:
                section[key] = rng.choice(HOSTILE_VALUES)
        else:
            data[name] = {rng.choice(["enabled", "size", "zz"]): rng.choice(HOSTILE_VALUES)}
    return data


def _mutate_bytes(rng: random.Random, raw: bytes) -> bytes:
    """Flip, insert, cut, duplicate or swap bytes and lines."""
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(10)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[pos:pos] = bytes([rng.randrange(256) for _ in range(rng.randint(1, 4))])
        elif op == 2:
            del data[pos:]
        elif op == 3:
            data[pos:pos] = rng.choice([b"\xff\xfe", b"\xe9", b"\xc3", b"\x00", b"\x80\x80"])
        elif op == 4:
            data[:0] = b"\xef\xbb\xbf"  # UTF-8 byte-order mark
        elif op == 5:
            lines = bytes(data).split(b"\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])  # a duplicated key or section
            data = bytearray(b"\n".join(lines))
        elif op == 6:
            lines = bytes(data).split(b"\n")
            del lines[rng.randrange(len(lines))]
            data = bytearray(b"\n".join(lines))
        elif op == 7:
            data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
        elif op == 8:
            data[pos:pos] = rng.choice([b"=", b"[", b"]", b'"', b"'''", b"{", b"#", b"\\u"])
        else:
            data[pos:pos] = str(rng.choice([10**30, 2**64, -1, "nan", "inf", 1e400])).encode()
    return bytes(data)


def _deep(rng: random.Random) -> bytes:
    depth = rng.choice([50, 500, 5000, 50_000])
    kind = rng.randrange(3)
    if kind == 0:
        return b"[dff]\nwindow_s = " + b"[" * depth + b"]" * depth + b"\n"
    if kind == 1:
        return b"[dff]\nwindow_s = " + b"{a = " * depth + b"1" + b"}" * depth + b"\n"
    return ("[" + ".".join(["a"] * depth) + "]\nx = 1\n").encode()


def build_case(i: int) -> tuple[str, Any]:
    """Case `i`: ``("toml" | "yaml", bytes)`` for a file, or ``("mapping", dict)``."""
    rng = random.Random(i)
    seed_text = SEEDS[i % len(SEEDS)]
    kind = i % 8
    if kind in (0, 1):  # a mutated mapping, written as TOML
        return "toml", _to_toml(_mutate_mapping(rng, _parse_toml(seed_text))).encode()
    if kind == 2:  # a mutated mapping, given as is
        return "mapping", _mutate_mapping(rng, _parse_toml(seed_text))
    if kind == 3:  # a mutated mapping as YAML (JSON is YAML)
        data = _mutate_mapping(rng, _parse_toml(seed_text))
        return "yaml", json.dumps(data, default=str, allow_nan=True).encode()
    if kind == 7 and i % 16 == 7:
        return rng.choice(["toml", "yaml"]), _deep(rng)
    return ("yaml" if kind == 6 else "toml"), _mutate_bytes(rng, seed_text.encode())


def _check(i: int, tmp: Path) -> str:
    kind, payload = build_case(i)
    if kind == "mapping":
        source: Any = payload
    else:
        source = tmp / f"case{i}.{kind}"
        source.write_bytes(payload)
    try:
        config = load_config(source)
    except NapariCalciumError:
        return "refused"
    except Exception as exc:  # anything else: a raw exception leaked
        shown = repr(payload)[:300]
        pytest.fail(
            f"fuzz case {i} ({kind}) raised {type(exc).__name__}: {str(exc)[:300]}\n"
            f"rebuild the input with tests/pipeline/test_fuzz_config.py::build_case({i}); "
            f"it starts {shown}"
        )
    assert isinstance(config, PipelineConfig), (i, kind)
    assert load_config(config) is config, f"case {i}: a loaded config fails its own checks"
    return "valid"


def test_fuzzed_configs_give_a_config_or_our_error(tmp_path):
    pytest.importorskip("yaml")
    outcomes = {"valid": 0, "refused": 0}
    for i in range(N_CASES):
        outcomes[_check(i, tmp_path)] += 1
    assert sum(outcomes.values()) == N_CASES >= 2000
    # the mutations must reach both sides of the validation, not only the TOML parser
    assert outcomes["valid"] > 100 and outcomes["refused"] > 1000, outcomes

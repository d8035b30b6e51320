"""Pipeline config files under hostile input (issue 15).

A config that is not UTF-8, a named pipe or a device given as the config, a value that overflows
an integer (it would reach numba), a non-finite float, or a value no recording can need (it would
size an allocation) each get our own error naming the file, the ``[section] key`` and the problem,
before any work. Each case is cheap; the whole file runs in a child under the 4 GiB cap.
"""

from __future__ import annotations

import dataclasses
import os
import threading

import pytest

from napari_calcium.errors import NapariCalciumError, ParameterError, RecordingError
from napari_calcium.pipeline import load_config
from napari_calcium.pipeline.config import PipelineConfig, RoisConfig


def _write(tmp_path, text: str | bytes, name: str = "bad.toml"):
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


@pytest.mark.parametrize("name", ["bad.toml", "bad.yaml"])
def test_a_config_that_is_not_utf8_names_the_file(tmp_path, name):
    path = _write(tmp_path, b'[dff]\nmethod = "r\xe9sum\xe9"\n', name)
    with pytest.raises(ParameterError, match=r"bad\.(toml|yaml).*UTF-8") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_a_utf8_bom_is_accepted(tmp_path):
    path = _write(tmp_path, "\ufeff[dff]\nwindow_s = 30.0\n".encode())
    assert load_config(path).dff.window_s == 30.0


def _fails_within(seconds: float, func):
    """Call `func` in a thread; the error it raised, or fail if it is still running."""
    box: dict = {}

    def target():
        try:
            func()
        except BaseException as exc:  # handed to the test
            box["exc"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "load_config blocked"
    return box.get("exc")


def test_a_fifo_as_config_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    exc = _fails_within(10, lambda: load_config(fifo))
    assert isinstance(exc, RecordingError), exc
    assert str(fifo) in str(exc) and "named pipe" in str(exc) and "not a regular file" in str(exc)


def test_a_device_or_folder_as_config_is_refused(tmp_path):
    exc = _fails_within(10, lambda: load_config("/dev/zero"))
    assert isinstance(exc, RecordingError) and "not a regular file" in str(exc), exc
    folder = tmp_path / "cfg.toml"
    folder.mkdir()
    with pytest.raises(RecordingError, match="folder"):
        load_config(folder)
    with pytest.raises(RecordingError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_a_huge_config_file_is_refused_before_reading(tmp_path):
    path = _write(tmp_path, "# " + "x" * (2 * 2**20) + "\n")
    with pytest.raises(ParameterError, match=r"bad\.toml.*too large"):
        load_config(path)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("extract", "min_pixels", "1" + "0" * 30),  # 10**30: numba int64 overflow
        ("extract", "inner_radius_px", str(2**64)),
        ("motion", "upsample_factor", str(2**63)),
        ("motion", "n_template_frames", "1000000000"),
        ("motion", "n_template_iterations", "1000000"),
        ("filter", "size", "100000"),
        ("rois", "max_binned_frames", str(10**12)),
        ("rois", "max_rois", str(10**15)),
        ("open", "plane", str(2**64)),
        ("dff", "window_s", "1e308"),
        ("dff", "sigma_frames", "1e12"),
        ("deconvolve", "baseline_window_s", "1e300"),
        ("open", "frame_rate_hz", "1e12"),
        ("rois", "cell_diameter_px", "1e9"),
    ],
)
def test_values_no_recording_can_need_are_refused(tmp_path, section, key, value):
    path = _write(tmp_path, f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ParameterError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [{section}] {key}: "), message
    assert "at most" in message and len(message) < 400, message


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
@pytest.mark.parametrize(
    ("section", "key"),
    [("dff", "sigma_frames"), ("dff", "offset"), ("rois", "min_corr"), ("deconvolve", "lam")],
)
def test_non_finite_floats_are_refused(tmp_path, section, key, value):
    path = _write(tmp_path, f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ParameterError, match=rf"\[{section}\] {key}: must be a finite number"):
        load_config(path)


def test_non_finite_list_items_are_refused(tmp_path):
    path = _write(tmp_path, "[rois]\narea_range = [0.5, inf]\n")
    with pytest.raises(ParameterError, match=r"\[rois\] area_range: must be a finite number"):
        load_config(path)


def test_an_int_too_large_for_a_float_names_the_key():
    with pytest.raises(ParameterError, match=r"\[dff\] window_s: .*too large"):
        load_config({"dff": {"window_s": 10**400}})


def test_error_messages_stay_short_for_huge_values(tmp_path):
    huge = [list(range(1000))] * 1000  # a YAML alias bomb builds the same kind of thing
    with pytest.raises(ParameterError) as info:
        load_config({"summary": {"kinds": huge}})
    assert len(str(info.value)) < 400
    with pytest.raises(ParameterError) as info:
        load_config({"dff": {"method": "x" * 100_000}})
    assert len(str(info.value)) < 400


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    pytest.importorskip("yaml")
    items = ["&a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    for i in range(1, 10):  # 9**10 items if expanded
        items.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines = ["summary:", "  kinds: [" + ", ".join(items) + "]"]
    path = _write(tmp_path, "\n".join(lines) + "\n", "bomb.yaml")
    with pytest.raises(ParameterError) as info:
        load_config(path)
    assert str(path) in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize("name", ["deep.toml", "deep.yaml"])
def test_deep_nesting_gets_our_error(tmp_path, name):
    if name.endswith("yaml"):
        pytest.importorskip("yaml")
        text = "dff: " + "[" * 50_000 + "]" * 50_000 + "\n"
    else:
        text = "[dff]\nwindow_s = " + "[" * 50_000 + "]" * 50_000 + "\n"
    path = _write(tmp_path, text, name)
    with pytest.raises(ParameterError, match=str(path).replace(".", r"\.")):
        load_config(path)


def test_a_nul_in_the_rois_path_is_refused(tmp_path):
    path = _write(tmp_path, '[rois]\nmethod = "file"\npath = "ro\\u0000is.zip"\n')
    with pytest.raises(ParameterError, match=r"\[rois\] path: .*NUL"):
        load_config(path)


def test_a_bad_path_argument_gets_our_error():
    with pytest.raises(NapariCalciumError):
        load_config("bad\0.toml")
    with pytest.raises(ParameterError, match="config"):
        load_config(12)  # type: ignore[arg-type]


def test_a_pipeline_config_built_by_hand_is_checked_too():
    config = dataclasses.replace(
        PipelineConfig(), rois=dataclasses.replace(RoisConfig(), max_binned_frames=10**20)
    )
    with pytest.raises(ParameterError, match=r"\[rois\] max_binned_frames: .*at most"):
        load_config(config)
    assert load_config(PipelineConfig()) == PipelineConfig()


def test_values_a_recording_can_need_still_load(tmp_path):
    text = (
        "[motion]\nn_template_frames = 2000\nupsample_factor = 100\n"
        "[filter]\nsize = 31\n[rois]\nmax_binned_frames = 20000\nmax_rois = 50000\n"
        "[extract]\nmin_pixels = 100000\ninner_radius_px = 50\n"
        "[dff]\nwindow_s = 3600.0\nsigma_frames = 300.0\noffset = -1e6\n"
        "[open]\nframe_rate_hz = 10000.0\nplane = 40\n"
    )
    config = load_config(_write(tmp_path, text, "good.toml"))
    assert config.motion.upsample_factor == 100 and config.rois.max_rois == 50000
    assert config.dff.offset == -1e6

"""The pipeline says when a recording is too short or noisy for activity-based ROI detection."""

from __future__ import annotations

import json
import warnings

import pytest

import napari_calcium as nc
from conftest import shared_data
from napari_calcium.cli import main

ONE_PLANE = shared_data("bruker_calscipy_1plane_tseries", "EM0121_PRE-001")
CONFIG = {
    "open": {"frame_rate_hz": 30.0},  # the folder states none
    "deconvolve": {"enabled": False},
    "events": {"enabled": False},
}


def test_short_real_folder_warns_in_results_summary_and_cli(tmp_path, capsys):
    """A 10-frame 512 x 512 PrairieView folder: the warning reaches the summary and the CLI."""
    out = tmp_path / "run"
    with pytest.warns(nc.errors.DetectionWarning, match="too short"):
        run = nc.run_pipeline(ONE_PLANE, out, CONFIG)
    check = json.loads((out / "steps" / "rois_check.json").read_text(encoding="utf-8"))
    assert len(check["warnings"]) == 1 and "too short" in check["warnings"][0]
    assert check["checks"][0]  # the numbers that triggered it
    assert run.summary["detection_warnings"] == check["warnings"]

    config = tmp_path / "c.toml"
    config.write_text("[deconvolve]\nenabled = false\n[events]\nenabled = false\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nc.errors.DetectionWarning)
        code = main(["run", str(ONE_PLANE), "--out", str(tmp_path / "cli"), "--config",
                     str(config), "--frame-rate-hz", "30"])  # fmt: skip
    assert code == 0
    assert "warning: activity-based ROI detection is unreliable" in capsys.readouterr().out


def test_rois_config_defaults_are_detect_rois_defaults():
    """The [rois] keys of issue 17 default to what detect_rois uses (one source of the numbers)."""
    from napari_calcium.core.rois.detection import detect
    from napari_calcium.pipeline.config import RoisConfig

    config = RoisConfig()
    assert config.p_value == detect.DEFAULT_P_VALUE
    assert config.event_s == detect.DEFAULT_EVENT_S
    assert config.merge_corr == detect.DEFAULT_MERGE_CORR

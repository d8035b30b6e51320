"""The npe2 manifest: valid, one source of truth, found inside the installed package."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
from pathlib import Path

import yaml


def test_npe2_validate_with_imports():
    npe2 = Path(sys.executable).with_name("npe2")
    proc = subprocess.run(
        [str(npe2), "validate", "napari-calcium", "--imports"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in proc.stdout


def test_installed_manifest_is_the_repo_manifest(repo_root):
    packaged = importlib.resources.files("napari_calcium").joinpath("napari.yaml").read_text()
    assert packaged == (repo_root / "napari.yaml").read_text()


def test_manifest_is_discovered_by_npe2():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-calcium")
    assert manifest.display_name == "napari-calcium"
    keys = [s.key for s in manifest.contributions.sample_data]
    assert "synthetic" in keys
    # every command points at an importable callable
    for cmd in manifest.contributions.commands:
        module, _, attr = cmd.python_name.partition(":")
        assert callable(getattr(__import__(module, fromlist=[attr]), attr)), cmd.python_name


def test_entry_point_declared(repo_root):
    text = (repo_root / "napari.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["name"] == "napari-calcium"
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="napari.manifest") if ep.name == "napari-calcium"]
    assert eps and eps[0].value == "napari_calcium:napari.yaml"

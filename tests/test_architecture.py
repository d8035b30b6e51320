"""The three rings (core <- io <- _napari) and a headless top-level package."""

from __future__ import annotations

import json
import subprocess
import sys

GUI_MODULES = (
    "napari",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6",
    "qtpy",
    "vispy",
    "magicgui",
    "pyqtgraph",
    "matplotlib",
)


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_is_headless():
    """`import napari_calcium` and its scripting API load no napari and no Qt."""
    mods = _modules_after(
        "import napari_calcium as nc\n"
        "rec = nc.simulate_recording(n_frames=20, shape=(32, 32), n_neurons=2)\n"
        "nc.array_module(rec.movie); nc.gpu_available(); nc.errors.RecordingError"
    )
    assert "napari_calcium.core.synthetic.recording" in mods  # the API really was used
    loaded = sorted(m for m in mods if m.split(".")[0] in GUI_MODULES)
    assert not loaded, loaded
    assert "cupy" not in mods  # optional GPU stack is imported only when asked about a device


def test_cli_is_headless():
    mods = _modules_after("from napari_calcium import cli; cli._build_parser()")
    assert not [m for m in mods if m.split(".")[0] in GUI_MODULES]


def test_import_linter_contracts_hold(repo_root):
    """The layered architecture in pyproject.toml's [tool.importlinter] is kept."""
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(no_cache=True))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " kept, 0 broken" in proc.stdout
    assert "core is headless" in proc.stdout and "Three rings" in proc.stdout


def test_public_names_resolve():
    import napari_calcium as nc

    for name in nc.__all__:
        assert getattr(nc, name) is not None, name
    assert set(nc.__all__) <= set(dir(nc))

"""docs/api.md lists every public name with its current signature and summary."""

from __future__ import annotations

import importlib.util
import inspect

import napari_calcium as nc


def _generator(repo_root):
    spec = importlib.util.spec_from_file_location(
        "api_reference", repo_root / "docs" / "_scripts" / "api_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_current(repo_root):
    """Every public name has its entry and current summary (signatures are not compared: the
    text of annotations can differ between library versions)."""
    generator = _generator(repo_root)
    current = (repo_root / "docs" / "api.md").read_text(encoding="utf-8")
    stale = "docs/api.md is stale: run python docs/_scripts/api_reference.py"
    headings = {line.split("`")[1].split("(")[0] for line in current.splitlines()
                if line.startswith("### `nc.")}  # fmt: skip
    public = {f"nc.{name}" for name in nc.__all__ if name != "__version__"}
    assert headings == public, (sorted(public - headings), sorted(headings - public), stale)
    for name in nc.__all__:
        obj = getattr(nc, name)
        if name != "__version__" and (callable(obj) or inspect.ismodule(obj)):
            assert generator._summary(obj) in current, (name, stale)


def test_every_public_callable_has_a_summary_line():
    missing = [
        name
        for name in nc.__all__
        if name != "__version__"
        and (callable(getattr(nc, name)) or inspect.ismodule(getattr(nc, name)))
        and not (inspect.getdoc(getattr(nc, name)) or "").strip()
    ]
    assert not missing, f"public names without a docstring: {missing}"

"""The architecture: three rings, the stages of core, no import circle, a pinned public API."""

from __future__ import annotations

import ast
import difflib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

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
    assert (
        "Stages of core" in proc.stdout and "shared infrastructure imports no stage" in proc.stdout
    )


def test_public_names_resolve():
    import napari_calcium as nc

    for name in nc.__all__:
        assert getattr(nc, name) is not None, name
    assert set(nc.__all__) <= set(dir(nc))


# --------------------------------------------------------------------------------------------------
# The public scripting API is pinned: names, kinds and signatures (issue 14 moved modules only)
# --------------------------------------------------------------------------------------------------
PUBLIC_API = Path(__file__).with_name("public_api.txt")


def _public_api_lines() -> list[str]:
    """One line per public name (kind and signature), plus one per public method of a class."""
    import napari_calcium as nc

    def sig(obj) -> str:
        try:
            text = str(inspect.signature(obj))
        except (TypeError, ValueError):
            return ""
        text = re.sub(r"napari_calcium(?:\.\w+)*\.(\w+)", r"\1", text)
        return re.sub(r"ForwardRef\('([^']*)'\)", r"'\1'", text)  # as Python versions differ

    lines = []
    for name in sorted(nc.__all__):
        obj = getattr(nc, name)
        if inspect.ismodule(obj):
            kind = "module"
        elif inspect.isclass(obj):
            kind = "class"
        else:
            kind = "function" if callable(obj) else "constant"
        lines.append(
            f"{name} [{kind}] {sig(obj) if kind in ('class', 'function') else ''}".rstrip()
        )
        if kind == "class":
            for attr, value in sorted(vars(obj).items()):
                func = value.__func__ if isinstance(value, classmethod | staticmethod) else value
                if not attr.startswith("_") and callable(func):
                    lines.append(f"  {name}.{attr} {sig(func)}")
    return lines


def test_public_api_is_pinned():
    """`napari_calcium.__all__` and every public signature match tests/public_api.txt.

    A deliberate change of the public API updates that file in the same commit (regenerate it
    with ``python -c "import test_architecture as t; print(*t._public_api_lines(), sep='\\n')"``
    from ``tests/``); anything else is an accident this test catches.
    """
    pinned = PUBLIC_API.read_text(encoding="utf-8").splitlines()
    current = _public_api_lines()
    assert current == pinned, "\n".join(difflib.unified_diff(pinned, current, lineterm=""))


# --------------------------------------------------------------------------------------------------
# No import circle among the package's modules (imports inside functions count too)
# --------------------------------------------------------------------------------------------------
def _module_graph(src: Path) -> dict[str, set[str]]:
    """``module -> modules it imports`` within napari_calcium, from the source (``ast``).

    Every import statement counts, at module level or inside a function, except those under
    ``if TYPE_CHECKING:`` (annotations only, never executed). ``from pkg import name`` points at
    the submodule ``pkg.name`` when there is one, else at ``pkg`` itself.
    """
    files = {}
    for path in src.rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        is_pkg = parts[-1] == "__init__"
        files[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)

    def type_checking_nodes(tree: ast.AST) -> set[int]:
        skip: set[int] = set()
        for node in ast.walk(tree):
            test = getattr(node, "test", None)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test):
                for child in node.body:
                    skip.update(id(n) for n in ast.walk(child))
        return skip

    graph: dict[str, set[str]] = {}
    for module, (path, is_pkg) in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = type_checking_nodes(tree)
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    package = module.split(".") if is_pkg else module.split(".")[:-1]
                    package = package[: len(package) - node.level + 1]
                    base = ".".join(package + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names
                ]
            else:
                continue
            deps.update(t for t in targets if t in files and t != module)
        graph[module] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_module_graph_builder_sees_circles(tmp_path):
    """The graph builder finds a circle made of function-level imports (as rois <-> formats was)."""
    pkg = tmp_path / "napari_calcium" / "core"
    pkg.mkdir(parents=True)
    (tmp_path / "napari_calcium" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from .a import y\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n"
    )
    graph = _module_graph(tmp_path)
    assert _cycles(graph) == [["napari_calcium.core.a", "napari_calcium.core.b"]]
    assert graph["napari_calcium.core.c"] == set()  # annotations only


def test_no_import_circles(repo_root):
    """No two modules of napari_calcium import each other, directly or round a longer loop."""
    graph = _module_graph(repo_root / "src")
    assert len(graph) > 100 and "napari_calcium.core.rois.roiset" in graph
    assert _cycles(graph) == []


def test_where_to_find_table_names_real_files(repo_root):
    """Every module and test named in docs/architecture.md's "Where to find X" table exists.

    A path with a folder is taken from ``src/napari_calcium/`` (modules) or the repository root;
    a bare file name lives in the folder of the path before it in the same cell, or at the top
    of the package; ``*`` is a glob.
    """
    text = (repo_root / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("## Where to find X", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) > 40, "the table has lost its rows"
    missing = []
    for row in rows[1:]:  # the first row is the header
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for cell, bases in ((cells[1], ("src/napari_calcium", ".")), (cells[2], (".",))):
            folder = None
            for name in re.findall(r"`([^`]+)`", cell):
                if "/" in name:
                    candidates = [repo_root / base / name for base in bases]
                    folder = name if name.endswith("/") else str(Path(name).parent)
                else:
                    candidates = [repo_root / base / (folder or "") / name for base in bases]
                if not any(list(c.parent.glob(c.name)) for c in candidates):
                    missing.append(f"{name} ({cells[0]})")
    assert not missing, missing

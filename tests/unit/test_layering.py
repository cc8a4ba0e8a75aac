"""The house's shape, checked on every module's imports (every import form, functions included).

The library (data, features, model, training, evaluation, export, serving, ...) imports only what
lies below it; the application layer (``mtlrec.app``: CLI, API, the composition root, run
directories, experiments) sits on top, is the only importer of ``mtlrec.config``, and is imported
by nothing but the ``python -m mtlrec`` entry point. No module imports itself back through others.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "mtlrec"

#: library package → the mtlrec packages it may import besides itself. ``app`` may import anything.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "nn": set(),
    "architectures": {"nn"},
    "model": {"architectures", "nn"},
    "weighting": set(),
    "losses": set(),
    "expressions": set(),
    "io": {"errors"},
    "features": {"errors", "expressions", "io"},
    "data": {"errors", "features", "io"},
    "evaluation": {"data", "expressions"},
    "training": {"data", "errors", "evaluation", "io", "losses", "weighting"},
    "export": {"data", "errors", "expressions", "features", "io", "losses"},
    "serving": {"data", "errors", "export", "features", "io"},
    "tuning": {"evaluation", "export", "io"},
    "synth": {"errors", "evaluation", "io"},
    "config": {"errors"},
}
#: the package's own files: ``__init__`` (only ``__version__``, importable by all) and ``python -m mtlrec``
ENTRY_POINTS = {"__init__", "__main__"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["mtlrec", *parts])


MODULES = {_module(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every mtlrec module ``path`` imports, resolved to modules of the tree (``from mtlrec import x``,
    ``from mtlrec.a import b`` where b is a module or a name, relative imports, imports inside functions)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "mtlrec")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "mtlrec":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {_existing(name) for name in found}


def _existing(name: str) -> str:
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _top(module: str) -> str:
    """The first component under mtlrec (``__init__``/``__main__`` for the package's own files)."""
    path = MODULES[module]
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


GRAPH = {module: _imports(path) - {module} for module, path in MODULES.items()}


def test_every_top_level_package_is_placed_in_the_layers():
    unplaced = {_top(module) for module in MODULES} - set(ALLOWED) - {"app"} - ENTRY_POINTS
    assert not unplaced, f"classify {sorted(unplaced)} in ALLOWED (or move it under app/)"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _top(m) in ALLOWED))
def test_library_modules_import_only_what_lies_below(module):
    owner = _top(module)
    illegal = {_top(imported) for imported in GRAPH[module]} - ALLOWED[owner] - {owner, "__init__"}
    assert not illegal, f"{module} imports {sorted(illegal)}"


def test_nothing_imports_the_application_layer_but_the_entry_point():
    importers = {m for m, imported in GRAPH.items() if _top(m) != "app" and any(_top(i) == "app" for i in imported)}
    assert importers <= {"mtlrec.__main__"}, sorted(importers)


def test_only_the_application_layer_imports_config():
    importers = {_top(m) for m, imported in GRAPH.items() if any(_top(i) == "config" for i in imported)}
    assert importers - {"config"} <= {"app"}


def test_no_import_circles():
    """Tarjan's strongly connected components over the module graph: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in GRAPH.get(module, ()):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not circles, circles


def test_the_checker_sees_every_import_form(tmp_path):
    """A module using each form: plain, from-package, from-module, relative, inside a function."""
    sample = PACKAGE / "features" / "pipeline.py"
    assert "mtlrec.io" in GRAPH[_module(sample)] or "mtlrec.io.writers" in GRAPH[_module(sample)]
    code = (
        "import mtlrec.io\nfrom mtlrec import config\nfrom mtlrec.app.runs import load_run\n"
        "from ..data import batch\n\ndef f():\n    from mtlrec.export import fusion\n"
    )
    probe = PACKAGE / "features" / "_layering_probe.py"
    try:
        probe.write_text(code)
        MODULES[_module(probe)] = probe
        found = _imports(probe)
    finally:
        probe.unlink()
        MODULES.pop(_module(probe), None)
    assert {"mtlrec.io", "mtlrec.config", "mtlrec.app.runs", "mtlrec.data.batch", "mtlrec.export.fusion"} <= found


def test_importing_serving_loads_no_training_weighting_or_config_code():
    import subprocess
    import sys

    code = "import sys, mtlrec.serving; print(sorted(m for m in sys.modules if m.startswith('mtlrec.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "mtlrec.serving.predictor" in loaded
    for package in ("mtlrec.training", "mtlrec.weighting", "mtlrec.config", "mtlrec.app"):
        assert f"'{package}" not in loaded, package

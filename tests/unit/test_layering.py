"""The dependency direction of the design note, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "mtlrec"

# package (first component under mtlrec) → the mtlrec packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "nn": set(),
    "architectures": {"nn"},
    "weighting": set(),
    "io": {"errors"},
    "features": {"io", "errors", "expressions"},
    "expressions": set(),
    "synth": {"errors", "io", "evaluation"},
    "batch": set(),
    "losses": set(),
    "evaluation": {"batch", "expressions"},
    "training": {"batch", "evaluation", "io", "losses", "run_files", "weighting", "errors"},
    "model": {"architectures", "nn"},
    "datasets": {"batch", "errors", "features", "io"},
    "streaming": {"batch", "errors", "features", "io"},
    "config": {"errors"},
    "reporting": {"errors", "evaluation", "io", "run_files"},
    "tuning": {"evaluation", "export", "io"},
    "export": {"batch", "errors", "expressions", "features", "io", "losses", "model"},
    "serving": {"batch", "errors", "export", "features", "io"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _mtlrec_imports(path: Path) -> set[str]:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mtlrec."):
            imported.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            imported.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mtlrec."))
    return imported


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_dependency_direction(path):
    owner = _module_name(path)
    if owner not in ALLOWED:
        return  # top of the stack: build, api, cli
    illegal = _mtlrec_imports(path) - ALLOWED[owner] - {owner}
    assert not illegal, f"{path.relative_to(PACKAGE)} imports {sorted(illegal)}"


def test_only_the_composition_root_and_front_ends_import_config():
    importers = {_module_name(p) for p in FILES if "config" in _mtlrec_imports(p)} - {"config"}
    # experiments (compare, reproduce) is a front end beside api: it loads configs and trains through api
    assert importers <= {"build", "api", "cli", "experiments"}


def test_importing_serving_loads_no_training_weighting_or_config_code():
    import subprocess
    import sys

    code = "import sys, mtlrec.serving; print(sorted(m for m in sys.modules if m.startswith('mtlrec.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "mtlrec.serving.predictor" in loaded
    for package in ("mtlrec.training", "mtlrec.weighting", "mtlrec.config", "mtlrec.build"):
        assert f"'{package}" not in loaded, package

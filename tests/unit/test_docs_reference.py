"""The generated reference (docs/gen_reference.py) is complete: it names every CLI command, registry
entry, config key and manifest key, compared against the code itself, so a new one without docs fails.

The generator needs no mkdocs: its pages are written into a dict here. ``make docs`` (and ``make test``)
render them with ``mkdocs build --strict``.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", REPO / "docs" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load_generator()


@pytest.fixture(scope="module")
def pages(gen: ModuleType) -> dict[str, str]:
    written: dict[str, str] = {}
    gen.generate(written.__setitem__)
    return written


def _commands(parser: argparse.ArgumentParser, name: str = "mtlrec") -> list[str]:
    found = [name]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                found += _commands(child, f"{name} {sub}")
    return found


def test_every_page_in_the_nav_is_generated(gen: ModuleType, pages: dict[str, str]) -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=Loader)

    def leaves(nav: Any) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        items = nav.values() if isinstance(nav, dict) else nav
        return [leaf for item in items for leaf in leaves(item)]

    reference = {page for page in leaves(config["nav"]) if page.startswith("reference/")}
    assert reference == set(pages) == set(gen.PAGES)
    assert all(text.startswith("# ") for text in pages.values())


def test_cli_page_names_every_command_and_subcommand(pages: dict[str, str]) -> None:
    from mtlrec.app.cli import _parser

    commands = _commands(_parser())
    assert {"mtlrec data synth-cascade", "mtlrec serve", "mtlrec compare", "mtlrec convert"} <= set(commands)
    for command in commands:
        assert f"## `{command}`" in pages["reference/cli.md"], command
    assert "--stage-correlation" in pages["reference/cli.md"]  # the help text itself


def test_registries_page_names_every_registered_entry(gen: ModuleType, pages: dict[str, str]) -> None:
    from mtlrec.architectures import ARCHITECTURES
    from mtlrec.evaluation import METRICS
    from mtlrec.features import ENCODERS
    from mtlrec.losses import LOSSES
    from mtlrec.nn import SEQUENCE_ENCODERS
    from mtlrec.weighting import WEIGHTINGS

    page = pages["reference/registries.md"]
    for registry in (ARCHITECTURES, WEIGHTINGS, LOSSES, METRICS, ENCODERS, SEQUENCE_ENCODERS):
        for name, entry in registry.items():
            target = getattr(entry, "function", entry)
            assert f"| `{name}` |" in page, name
            assert target.__qualname__ in page, name
    # every implementation links to the Python API page: under its package, or in "Other registered implementations"
    for name, cls in ARCHITECTURES.items():
        assert f"][mtlrec.architectures.{cls.__name__}]" in page, name
    assert "][mtlrec.evaluation.calibration.calibration]" in page  # the submodule of that name hides the function
    for path in gen.unexported_entries():
        assert f"::: {path}\n" in pages["reference/python-api.md"]


def test_config_page_has_every_key_with_its_description(gen: ModuleType, pages: dict[str, str]) -> None:
    from mtlrec.config import Config, CsvOptions, DataConfig, TrainConfig

    page = pages["reference/config.md"]
    schema = Config.model_json_schema()
    for section in Config.model_fields:
        assert f"\n## `{section}`\n" in page, section
    for name, model in schema["$defs"].items():
        assert f"### {name} {{ #{name.lower()} }}" in page, name
        for key in model.get("properties", {}):
            assert f"| `{key}` |" in page, f"{name}.{key}"
    for model, key in ((DataConfig, "read_batch_rows"), (CsvOptions, "header"), (Config, "feature_groups")):
        description = model.model_fields[key].description
        assert description and gen._cell(description) in page, key
    for key, field in TrainConfig.model_fields.items():  # one whole model: every description it has
        assert field.description is None or gen._cell(field.description) in page, key


def test_http_page_documents_every_endpoint(gen: ModuleType, pages: dict[str, str]) -> None:
    page = pages["reference/http-api.md"]
    spec = gen.openapi_document()
    for path, methods in spec["paths"].items():
        for method in methods:
            assert f"### `{method.upper()} {path}`" in page
    assert {"/v1/predict", "/v1/metadata", "/healthz"} <= set(spec["paths"])
    assert '??? note "openapi.json"' in page and '"openapi":' in page


def test_artifact_page_explains_every_manifest_key(gen: ModuleType, pages: dict[str, str]) -> None:
    from mtlrec.export import FORMAT_VERSION, package

    function = ast.parse(inspect.getsource(package._manifest)).body[0]
    returned = next(node.value for node in ast.walk(function) if isinstance(node, ast.Return))
    keys = {key.value for key in returned.keys if isinstance(key, ast.Constant)} | {"files"}
    assert keys == set(gen.MANIFEST_KEYS)
    for key in keys:
        assert f"| `{key}` |" in pages["reference/artifact.md"]
    assert f"version **{FORMAT_VERSION}**" in pages["reference/artifact.md"]


def test_python_api_page_renders_every_api_module(gen: ModuleType, pages: dict[str, str]) -> None:
    for name in gen.API_MODULES:
        importlib.import_module(name)
        assert f"::: {name}\n" in pages["reference/python-api.md"]
    assert {"mtlrec.app.api", "mtlrec.config", "mtlrec.architectures", "mtlrec.serving"} <= set(gen.API_MODULES)


def test_mkdocs_config_loads() -> None:
    pytest.importorskip("mkdocs")
    from mkdocs.config import load_config

    config = load_config(str(REPO / "mkdocs.yml"))
    assert config["site_name"] == "mtlrec"
    plugins = {name.rsplit("/", 1)[-1] for name in config["plugins"]}  # Material's is "material/search"
    assert {"search", "gen-files", "mkdocstrings"} <= plugins

"""Generate the reference pages at build time (run by mkdocs-gen-files; nothing is checked in).

Each ``*_page()`` function returns one page's Markdown from the code itself: the config schema, the
CLI's ``--help``, the HTTP server's OpenAPI document, the registries and the artifact format. The
completeness test (tests/unit/test_docs_reference.py) imports this file and calls them directly.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

#: Modules rendered by mkdocstrings on the Python API page, in order.
API_MODULES = [
    "mtlrec.app.api", "mtlrec.config", "mtlrec.architectures", "mtlrec.model", "mtlrec.nn", "mtlrec.features",
    "mtlrec.weighting", "mtlrec.losses", "mtlrec.evaluation", "mtlrec.export", "mtlrec.serving",
    "mtlrec.serving.http",
]  # fmt: skip


def _cell(text: Any) -> str:
    """Text on one line, safe in a Markdown table cell: ``|`` and ``<`` escaped outside code spans."""
    parts = " ".join(str(text).split()).split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|").replace("<", "&lt;") for i, p in enumerate(parts))


def _link(name: str) -> str:
    """A link to the section of a schema (config model, HTTP schema) on the same page."""
    return f"[{name}](#{name.lower()})"


# --- config schema ------------------------------------------------------------------------------


def _type(schema: dict[str, Any]) -> str:
    """A JSON Schema type as Markdown: `int` or `null`, list[[CsvOptions](#csvoptions)], ..."""
    if "$ref" in schema:
        return _link(schema["$ref"].rsplit("/", 1)[-1])
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return " or ".join(dict.fromkeys(_type(option) for option in schema[union]))
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[str, {_type(schema['additionalProperties'])}]"
    names = {"integer": "int", "number": "float", "boolean": "bool", "string": "str", "object": "dict"}
    return f"`{names.get(kind, kind)}`"


def _refs(schema: Any) -> Iterator[str]:
    """The names of the ``$defs`` a schema refers to, in order of appearance."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"].rsplit("/", 1)[-1]
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


def _model(name: str, model: dict[str, Any]) -> list[str]:
    """A heading (anchor: the name in lower case), the description and a table of every key."""
    lines = [f"### {name} {{ #{name.lower()} }}", "", _cell(model.get("description", "")), ""]
    lines += ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    required = set(model.get("required", []))
    for key, prop in model.get("properties", {}).items():
        default = f"`{_cell(json.dumps(prop['default']))}`" if "default" in prop else "*optional*"
        default = "*required*" if key in required else default
        lines.append(f"| `{key}` | {_type(prop)} | {default} | {_cell(prop.get('description', ''))} |")
    return lines + [""]


def config_page() -> str:
    """Every config section, a table per model with every key, nested models resolved through ``$defs``."""
    from mtlrec.config import Config

    schema = Config.model_json_schema()
    defs, done = schema["$defs"], set()
    lines = ["# Config schema", "", _cell(schema.get("description", "")), "",
             "The YAML config of `mtlrec train`, generated from the same JSON Schema that `mtlrec schema` prints. "
             "Every model rejects keys it does not list.", ""]  # fmt: skip
    lines += _model("Config", schema)[2:]
    for section, prop in schema["properties"].items():
        lines += [f"## `{section}`", "", f"Type: {_type(prop)}.", ""]
        if "description" in prop:
            lines += [_cell(prop["description"]), ""]
        pending = list(dict.fromkeys(_refs(prop)))
        while pending:  # this section's models, then the models they refer to
            name = pending.pop(0)
            if name in done:
                continue
            done.add(name)
            lines += _model(name, defs[name])
            pending += [ref for ref in dict.fromkeys(_refs(defs[name])) if ref not in done]
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------------


def cli_commands() -> dict[str, str]:
    """``"mtlrec data synth-cascade"`` → its ``--help``, for the root and every (nested) subcommand."""
    from mtlrec.app.cli import _parser

    helps: dict[str, str] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        helps[name] = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    walk(child, f"{name} {sub}")

    with mock.patch.dict(os.environ, {"COLUMNS": "100"}):  # the same line width wherever the docs are built
        walk(_parser(), "mtlrec")
    return helps


def cli_page() -> str:
    lines = ["# Command line", "", "Every command's `--help`, generated from the parser of `mtlrec`.", ""]
    for name, text in cli_commands().items():
        lines += [f"## `{name}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


# --- HTTP API -----------------------------------------------------------------------------------


class ExamplePredictor:
    """A stand-in for a loaded artifact with two tasks over four example input columns."""

    metadata = {"run": "example", "tasks": [{"name": "ctr"}, {"name": "cvr"}], "model_version": "example-1"}
    task_names = ["ctr", "cvr"]
    separators: dict[str, str] = {}

    @property
    def input_columns(self) -> dict[str, Any]:
        import pyarrow as pa

        return {"user_id": pa.string(), "item_id": pa.string(), "price": pa.float64(), "tags": pa.list_(pa.string())}

    def predict_shared(self, candidates: Any, context: Any, source: str) -> dict[str, Any]:
        raise NotImplementedError("documentation only")


def openapi_document() -> dict[str, Any]:
    from mtlrec.serving.http import create_app

    return create_app(ExamplePredictor()).openapi()


def http_page() -> str:
    spec = openapi_document()
    lines = ["# HTTP API", "", _cell(spec["info"].get("description", "")), "",
             "`mtlrec serve ARTIFACT` serves this API. The request schema lists the artifact's own input columns; "
             "this page shows it for an example artifact with the columns `user_id`, `item_id`, `price` and `tags` "
             "and the tasks `ctr` and `cvr`. A running server returns its own document at `GET /openapi.json`.",
             "", "## Endpoints", ""]  # fmt: skip
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            lines += [f"### `{method.upper()} {path}`", "", operation.get("summary", ""), ""]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                lines += [f"Request body (`application/json`): {_type(body['schema'])}", ""]
            lines += ["| Status | Meaning | Body |", "| --- | --- | --- |"]
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                lines.append(f"| {status} | {_cell(response.get('description', ''))} | {_type(schema)} |")
            lines.append("")
    lines += ["## Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        lines += _model(name, schema)
    document = json.dumps(spec, indent=2).replace("\n", "\n    ")
    lines += ["## OpenAPI document", "", '??? note "openapi.json"', "", "    ```json", f"    {document}", "    ```", ""]
    return "\n".join(lines)


# --- registries ---------------------------------------------------------------------------------


def registries() -> dict[str, dict[str, Any]]:
    """Title → registry (name → class, or an entry with a ``function``), as ``mtlrec list`` shows them."""
    from mtlrec.architectures import ARCHITECTURES
    from mtlrec.evaluation import METRICS
    from mtlrec.features import ENCODERS
    from mtlrec.losses import LOSSES
    from mtlrec.nn import SEQUENCE_ENCODERS
    from mtlrec.weighting import WEIGHTINGS

    return {"Architectures": ARCHITECTURES, "Weightings": WEIGHTINGS, "Losses": LOSSES, "Metrics": METRICS,
            "Feature encoders": ENCODERS, "Sequence encoders": SEQUENCE_ENCODERS}  # fmt: skip


def api_path(obj: Any) -> str | None:
    """The dotted path the Python API page documents ``obj`` under (a package's ``__all__``), if any.

    A name that is also a submodule (``mtlrec.evaluation.calibration``) is the submodule to griffe: no link.
    """
    for name in API_MODULES:
        module = importlib.import_module(name)
        public = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        if obj.__name__ in public and getattr(module, obj.__name__, None) is obj:
            shadowed = hasattr(module, "__path__") and importlib.util.find_spec(f"{name}.{obj.__name__}")
            return None if shadowed else f"{name}.{obj.__name__}"
    return None


def _full_name(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def unexported_entries() -> list[str]:
    """Registered implementations under no package's ``__all__``: rendered at the end of the Python API page."""
    targets = [getattr(entry, "function", entry) for registry in registries().values() for entry in registry.values()]
    return [_full_name(target) for target in targets if api_path(target) is None]


def registries_page() -> str:
    lines = ["# Registries", "", "Every name a config can use, from the registries themselves (`mtlrec list`).", ""]
    for title, registry in registries().items():
        lines += [f"## {title}", "", "| Name | Implementation | Description |", "| --- | --- | --- |"]
        for name, entry in registry.items():
            target = getattr(entry, "function", entry)
            shown = f"[`{target.__qualname__}`][{api_path(target) or _full_name(target)}]"
            summary = (inspect.getdoc(target) or "").split("\n\n")[0]
            lines.append(f"| `{name}` | {shown} | {_cell(summary)} |")
        lines.append("")
    return "\n".join(lines)


# --- artifact format ----------------------------------------------------------------------------

MANIFEST_KEYS = {
    "format": "Always the format name above; anything else is refused.",
    "format_version": "The format version; a reader refuses any other version (export the run again).",
    "created": "UTC time of the export (ISO 8601, seconds).",
    "run": "Name of the exported run directory.",
    "versions": "Versions of mtlrec, torch, numpy, Python, onnx, onnxruntime and pyarrow at export time.",
    "model": "`format` (`onnx` or `torchscript`), `file`, and the exporter's details (exporter, ONNX opset; "
    "for a quantized model, `quantization`: method, weight and activation types, layers quantized).",
    "inputs": "The graph's input tensors: name, feature, role (ids, lengths, weights, dense), dtype, shape "
    '(`["batch", ...]`), and the embedding table and its rows for ids.',
    "features": "Each feature: name, kind and raw columns.",
    "columns": "Raw input column → Arrow type (labels excluded): what a request or batch file must provide.",
    "list_separators": 'Column → separator of list values given as text (`"a|b"`).',
    "csv": "How the run read CSV files (delimiter, header, null values...), reused by batch prediction.",
    "outputs": "The graph's output names: one per task, and the fused `score`.",
    "tasks": "Per task: name, kind, output, unit of the score, trained (false: evaluation only), "
    "classes (multi-class), label_transform (regression labels trained transformed).",
    "fusion": "The fused score: `kind` with `weights`, or `kind: formula` with its `formula`; `output` names it.",
    "parity": "The export-time check of the exported model against the eager one: rows, batch sizes, largest "
    "absolute and scaled differences, worst output, tolerance (1e-5; looser, declared, for a quantized model), "
    "passed.",
    "quantization": "`null` (float32), `int8` (ONNX Runtime dynamic quantization) or `bf16` (TorchScript in "
    "bfloat16): `mtlrec export --quantize`.",
    "accuracy": "Held-out figures of the exported and the fp32 eager model on the same rows (the run's test "
    "split, else validation; `--accuracy-rows`): `rows`, `source`, and per task `metric` (`auc` for binary, "
    "`accuracy` for multi-class tasks), labelled `rows`, `fp32`, `artifact`; `null` when not measured.",
    "files": "Every other file → the sha256 of its bytes, checked before anything is loaded.",
}


def artifact_page() -> str:
    from mtlrec.export import FORMAT_NAME, FORMAT_VERSION, MANIFEST, MODEL_FILES, artifact

    doc = inspect.getdoc(artifact) or ""
    lines = ["# Artifact format", "", doc.replace("::\n", ":\n"), "",
             f"Format name `{FORMAT_NAME}`, version **{FORMAT_VERSION}**. Model file by format: "
             + ", ".join(f"`{kind}` → `{name}`" for kind, name in MODEL_FILES.items()) + ".", "",
             f"## `{MANIFEST}`", "", "| Key | Meaning |", "| --- | --- |"]  # fmt: skip
    lines += [f"| `{key}` | {meaning} |" for key, meaning in MANIFEST_KEYS.items()]
    lines += ["", "An artifact is written to a temporary directory beside its target and renamed into place, so "
              "a failed export (the parity check included) leaves nothing behind.", ""]  # fmt: skip
    return "\n".join(lines)


def python_api_page() -> str:
    lines = ["# Python API", "", "The public names of each package (its `__all__`), from their docstrings.", ""]
    for name in API_MODULES:
        lines += [f"::: {name}", ""]
    lines += ["## Other registered implementations", ""]
    for name in unexported_entries():
        lines += [f"::: {name}", "    options:", "      heading_level: 3", ""]
    return "\n".join(lines)


PAGES = {
    "reference/config.md": config_page,
    "reference/cli.md": cli_page,
    "reference/http-api.md": http_page,
    "reference/registries.md": registries_page,
    "reference/artifact.md": artifact_page,
    "reference/python-api.md": python_api_page,
}


def generate(write: Callable[[str, str], None]) -> None:
    """Write every page through ``write(path, text)`` (a path relative to docs/)."""
    for path, page in PAGES.items():
        write(path, page())


def _write_virtual(path: str, text: str) -> None:
    import mkdocs_gen_files

    with mkdocs_gen_files.open(path, "w") as handle:
        handle.write(text)


if __name__ in {"__main__", "<run_path>"}:  # mkdocs-gen-files runs this file with runpy.run_path
    generate(_write_virtual)
